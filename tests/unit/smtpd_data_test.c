/*
 * Unit tests for smtpd/smtpd_data.c, the DATA/BDAT content decoder.
 *
 * Each table row (input -> output bytes, consumed count, end, problem
 * flags, Received: count, size) is run whole, one byte at a time, split in
 * two at every offset, split in three at every pair of offsets, and
 * through tiny output buffers drained in a loop: all must agree exactly.
 * Every SMTP smuggling variant of CVE-2023-51764/5/6 and the SEC Consult
 * paper is a row. A seeded random run compares the decoder with a
 * reference written the other way round (split on CR LF first, then apply
 * the rules per line).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "smtpd/smtpd_data.h"

#define BIG_BUF ((size_t)1 << 24)
#define PROBLEMS (SMTPD_DATA_BARE_LF | SMTPD_DATA_BARE_CR | SMTPD_DATA_LONG_LINE | SMTPD_DATA_TOO_BIG)

#define LF SMTPD_DATA_BARE_LF
#define CR SMTPD_DATA_BARE_CR
#define LONG SMTPD_DATA_LONG_LINE
#define BIG SMTPD_DATA_TOO_BIG

struct data_row {
	const char *name;
	enum smtpd_data_mode mode;	/* default SMTPD_DATA_DOT */
	const char *in;
	size_t len;		/* 0: strlen(in) */
	const char *out;
	size_t out_len;		/* 0: strlen(out) */
	const char *rest;	/* input left unconsumed; NULL: none */
	bool end;
	unsigned problems;
	unsigned received;
	uint64_t size_max;
	uint64_t line_max;
	uint64_t size;		/* 0: out_len */
	bool reject;		/* run with SMTPD_DATA_REJECT (same decoding) */
};

#define BDAT .mode = SMTPD_DATA_BDAT

static const struct data_row data_rows[] = {
	/* ordinary messages */
	{ "basic", .in = "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", .out = "Subject: x\r\n\r\nbody\r\n", .rest = "QUIT\r\n", .end = true },
	{ "basic, reject mode", .in = "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", .out = "Subject: x\r\n\r\nbody\r\n", .rest = "QUIT\r\n", .end = true, .reject = true },
	{ "empty message", .in = ".\r\n", .out = "", .end = true },
	{ "empty message, pipelined", .in = ".\r\nMAIL FROM:<a@b>\r\n", .out = "", .rest = "MAIL FROM:<a@b>\r\n", .end = true },
	{ "one empty line", .in = "\r\n.\r\n", .out = "\r\n", .end = true },
	{ "8-bit content", .in = "\xc3\xa9t\xc3\xa9\r\n\xff\r\n.\r\n", .out = "\xc3\xa9t\xc3\xa9\r\n\xff\r\n", .end = true },
	{ "unterminated", .in = "abc\r\ndef", .out = "abc\r\ndef" },
	{ "pending CR", .in = "abc\r", .out = "abc" },
	{ "pending dot", .in = "abc\r\n.", .out = "abc\r\n" },
	{ "pending dot CR", .in = "abc\r\n.\r", .out = "abc\r\n" },
	{ "the second end is the next command's", .in = "a\r\n.\r\n.\r\n", .out = "a\r\n", .rest = ".\r\n", .end = true },
	{ "empty input", .in = "", .out = "" },

	/* dot-unstuffing (RFC 5321 4.5.2) */
	{ "..foo", .in = "..foo\r\n.\r\n", .out = ".foo\r\n", .end = true },
	{ "..", .in = "..\r\n.\r\n", .out = ".\r\n", .end = true },
	{ "...", .in = "a\r\n...\r\n.\r\n", .out = "a\r\n..\r\n", .end = true },
	{ ".foo", .in = ".foo\r\n.\r\n", .out = "foo\r\n", .end = true },
	{ "dot not first", .in = "a.\r\n.\r\n", .out = "a.\r\n", .end = true },
	{ "dot space", .in = ". \r\n.\r\n", .out = " \r\n", .end = true },
	{ "two stuffed lines", .in = "..\r\n..\r\n.\r\n", .out = ".\r\n.\r\n", .end = true },
	{ "dot NUL", .in = "a\r\n.\0\r\n.\r\n", .len = 10, .out = "a\r\n\0\r\n", .out_len = 6, .end = true },

	/* SMTP smuggling: none of these ends the message, the real end does */
	{ "smuggle LF.LF", .in = "a\n.\nMAIL FROM:<x>\r\n.\r\n", .out = "a\r\n.\r\nMAIL FROM:<x>\r\n", .end = true, .problems = LF },
	{ "smuggle LF.CRLF", .in = "a\n.\r\nMAIL FROM:<x>\r\n.\r\n", .out = "a\r\n.\r\nMAIL FROM:<x>\r\n", .end = true, .problems = LF },
	{ "smuggle CRLF.LF", .in = "a\r\n.\nMAIL FROM:<x>\r\n.\r\n", .out = "a\r\n\r\nMAIL FROM:<x>\r\n", .end = true, .problems = LF },
	{ "smuggle CR.CRLF", .in = "a\r.\r\nMAIL FROM:<x>\r\n.\r\n", .out = "a\r.\r\nMAIL FROM:<x>\r\n", .end = true, .problems = CR },
	{ "smuggle CRLF.CR", .in = "a\r\n.\rMAIL FROM:<x>\r\n.\r\n", .out = "a\r\n\rMAIL FROM:<x>\r\n", .end = true, .problems = CR },
	{ "smuggle CRLF NUL.CRLF", .in = "a\r\n\0.\r\nMAIL FROM:<x>\r\n.\r\n", .len = 25, .out = "a\r\n\0.\r\nMAIL FROM:<x>\r\n", .out_len = 22, .end = true },
	{ "smuggle CR.CR", .in = "a\r.\rMAIL FROM:<x>\r\n.\r\n", .out = "a\r.\rMAIL FROM:<x>\r\n", .end = true, .problems = CR },
	{ "smuggle LF.LF first", .in = "\n.\nMAIL\r\n.\r\n", .out = "\r\n.\r\nMAIL\r\n", .end = true, .problems = LF },
	{ "smuggle LF.CRLF first", .in = "\n.\r\nMAIL\r\n.\r\n", .out = "\r\n.\r\nMAIL\r\n", .end = true, .problems = LF },
	{ "smuggle CR.CRLF first", .in = "\r.\r\nMAIL\r\n.\r\n", .out = "\r.\r\nMAIL\r\n", .end = true, .problems = CR },
	{ "smuggle .LF first", .in = ".\nMAIL\r\n.\r\n", .out = "\r\nMAIL\r\n", .end = true, .problems = LF },
	{ "smuggle .CR first", .in = ".\rMAIL\r\n.\r\n", .out = "\rMAIL\r\n", .end = true, .problems = CR },
	{ "smuggle CRLF.CR CRLF", .in = "a\r\n.\r\r\nMAIL\r\n.\r\n", .out = "a\r\n\r\r\nMAIL\r\n", .end = true, .problems = CR },
	{ "smuggle CRLF.LF CRLF", .in = "a\r\n.\n\r\n.\r\n", .out = "a\r\n\r\n\r\n", .end = true, .problems = LF },
	{ "smuggle LF LF", .in = "a\n\n.\n\nMAIL\r\n.\r\n", .out = "a\r\n\r\n.\r\n\r\nMAIL\r\n", .end = true, .problems = LF },
	{ "smuggle CR CR", .in = "a\r\r.\r\rMAIL\r\n.\r\n", .out = "a\r\r.\r\rMAIL\r\n", .end = true, .problems = CR },
	{ "smuggle CRLF..CRLF", .in = "a\r\n..\r\nMAIL\r\n.\r\n", .out = "a\r\n.\r\nMAIL\r\n", .end = true },
	{ "smuggle CRLF . CRLF", .in = "a\r\n .\r\nMAIL\r\n.\r\n", .out = "a\r\n .\r\nMAIL\r\n", .end = true },
	/* ... and alone, they never end it */
	{ "only LF.LF", .in = "a\n.\n", .out = "a\r\n.\r\n", .problems = LF },
	{ "only LF.CRLF", .in = "a\n.\r\n", .out = "a\r\n.\r\n", .problems = LF },
	{ "only CRLF.LF", .in = "a\r\n.\n", .out = "a\r\n\r\n", .problems = LF },
	{ "only CR.CRLF", .in = "a\r.\r\n", .out = "a\r.\r\n", .problems = CR },
	{ "only CRLF.CR", .in = "a\r\n.\r", .out = "a\r\n" },
	{ "only CRLF.CR x", .in = "a\r\n.\rx", .out = "a\r\n\rx", .problems = CR },
	{ "only CR.CR", .in = "a\r.\r", .out = "a\r.", .problems = CR },
	{ "only CR CR", .in = "a\r\r.\r\r", .out = "a\r\r.\r", .problems = CR },
	{ "only LF LF", .in = "a\n\n.\n\n", .out = "a\r\n\r\n.\r\n\r\n", .problems = LF },
	/* a real CR LF . CR LF is the end, whatever came before it */
	{ "bare CR then CRLF.CRLF", .in = "a\r\r\n.\r\nX", .out = "a\r\r\n", .rest = "X", .end = true, .problems = CR },
	{ "bare LF then CRLF.CRLF", .in = "a\n\r\n.\r\nX", .out = "a\r\n\r\n", .rest = "X", .end = true, .problems = LF },

	/* Received: in the header section (hop count, RFC 5321 6.3) */
	{ "received count", .in = "Received: a\r\nreceived: b\r\nRECEIVED:c\r\nReceived-SPF: pass\r\nX-Received: no\r\n Received: folded\r\nReceived :x\r\n\r\nReceived: body\r\n.\r\n",
	  .out = "Received: a\r\nreceived: b\r\nRECEIVED:c\r\nReceived-SPF: pass\r\nX-Received: no\r\n Received: folded\r\nReceived :x\r\n\r\nReceived: body\r\n", .end = true, .received = 3 },
	{ "received bare", .in = "Received:\r\n.\r\n", .out = "Received:\r\n", .end = true, .received = 1 },
	{ "receive", .in = "Receive\r\n.\r\n", .out = "Receive\r\n", .end = true },
	{ "received split by CRLF", .in = "Receive\r\nd: x\r\n.\r\n", .out = "Receive\r\nd: x\r\n", .end = true },
	{ "no headers", .in = "\r\nReceived: x\r\n.\r\n", .out = "\r\nReceived: x\r\n", .end = true },
	{ "stuffed received", .in = ".Received: x\r\n.\r\n", .out = "Received: x\r\n", .end = true, .received = 1 },
	{ "double-dot received", .in = "..Received: x\r\n.\r\n", .out = ".Received: x\r\n", .end = true },
	{ "received after bare LF", .in = "Subject: a\nReceived: x\r\n\r\n.\r\n", .out = "Subject: a\r\nReceived: x\r\n\r\n", .end = true, .received = 1, .problems = LF },
	{ "received after bare CR", .in = "Subject: a\rReceived: x\r\n\r\n.\r\n", .out = "Subject: a\rReceived: x\r\n\r\n", .end = true, .problems = CR },
	{ "body after two empty lines", .in = "Received: a\r\n\r\n\r\nReceived: b\r\n.\r\n", .out = "Received: a\r\n\r\n\r\nReceived: b\r\n", .end = true, .received = 1 },
	{ "CR line is not empty", .in = "Received: a\r\n\r\r\nReceived: b\r\n\r\n.\r\n", .out = "Received: a\r\n\r\r\nReceived: b\r\n\r\n", .end = true, .received = 2, .problems = CR },
	{ "received 100 bytes", .in = "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000 0123456789012345678901234567890123456789\r\n.\r\n",
	  .out = "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000 0123456789012345678901234567890123456789\r\n", .end = true, .received = 1 },

	/* size (RFC 1870: CR LF counted, stuffing and the end not) */
	{ "size counts CRLF", .in = "abc\r\n.\r\n", .out = "abc\r\n", .end = true, .size = 5 },
	{ "size 12 of 10", .in = "0123456789\r\n.\r\n", .out = "0123456789", .end = true, .problems = BIG, .size_max = 10, .size = 12 },
	{ "size 12 of 11", .in = "0123456789\r\n.\r\n", .out = "0123456789", .end = true, .problems = BIG, .size_max = 11, .size = 12 },
	{ "size 12 of 12", .in = "0123456789\r\n.\r\n", .out = "0123456789\r\n", .end = true, .size_max = 12 },
	{ "size 13 of 3", .in = "ab\r\ncd\r\n..ef\r\n.\r\nX", .out = "ab", .rest = "X", .end = true, .problems = BIG, .size_max = 3, .size = 13 },
	{ "size stuffed", .in = "..abc\r\n.\r\n", .out = ".abc", .end = true, .problems = BIG, .size_max = 5, .size = 6 },
	{ "size stuffed fits", .in = "..abc\r\n.\r\n", .out = ".abc\r\n", .end = true, .size_max = 6 },
	{ "size bare LF counts 2", .in = "abc\n.\r\n", .out = "abc\r\n.\r\n", .problems = LF, .size_max = 8 },
	{ "size bare LF counts 2, over", .in = "abc\n.\r\n", .out = "abc\r\n.", .problems = LF | BIG, .size_max = 7, .size = 8 },
	{ "size bare LF over", .in = "abcd\n\r\n.\r\n", .out = "abcd", .end = true, .problems = LF | BIG, .size_max = 5, .size = 8 },
	{ "size 1 of 0 is no limit", .in = "x\r\n.\r\n", .out = "x\r\n", .end = true, .size_max = 0 },

	/* line length (RFC 5321 4.5.3.1.6: octets with CR LF) */
	{ "line 5 of 5", .in = "abc\r\n.\r\n", .out = "abc\r\n", .end = true, .line_max = 5 },
	{ "line 6 of 5", .in = "abcd\r\n.\r\n", .out = "abcd\r\n", .end = true, .problems = LONG, .line_max = 5 },
	{ "line stuffed 5 of 5", .in = "..ab\r\n.\r\n", .out = ".ab\r\n", .end = true, .line_max = 5 },
	{ "line stuffed 6 of 5", .in = "..abc\r\n.\r\n", .out = ".abc\r\n", .end = true, .problems = LONG, .line_max = 5 },
	{ "line unterminated", .in = "abcdefgh", .out = "abcdefgh", .problems = LONG, .line_max = 5 },
	{ "line bare CR inside", .in = "ab\rcd\r\n.\r\n", .out = "ab\rcd\r\n", .end = true, .problems = CR | LONG, .line_max = 6 },
	{ "line bare LF ends", .in = "abc\ndef\r\n.\r\n", .out = "abc\r\ndef\r\n", .end = true, .problems = LF, .line_max = 5 },
	{ "line long then big", .in = "abcdefgh\r\n.\r\n", .out = "abc", .end = true, .problems = LONG | BIG, .line_max = 4, .size_max = 3, .size = 10 },

	/* BDAT (RFC 3030): no dot handling, no end; finish() settles a CR */
	{ "bdat plain", BDAT, .in = "a\r\nb\r\n", .out = "a\r\nb\r\n" },
	{ "bdat bare LF", BDAT, .in = "a\nb", .out = "a\r\nb", .problems = LF },
	{ "bdat final CR", BDAT, .in = "a\r", .out = "a\r", .problems = CR },
	{ "bdat dot line", BDAT, .in = ".\r\n", .out = ".\r\n" },
	{ "bdat stuffed", BDAT, .in = "..x\r\n.\r\n", .out = "..x\r\n.\r\n" },
	{ "bdat end sequence is content", BDAT, .in = "a\r\n.\r\nb", .out = "a\r\n.\r\nb" },
	{ "bdat bare CR", BDAT, .in = "\r\r\n", .out = "\r\r\n", .problems = CR },
	{ "bdat CR.CRLF", BDAT, .in = "a\r.\r\n", .out = "a\r.\r\n", .problems = CR },
	{ "bdat LF.LF", BDAT, .in = "\n.\n", .out = "\r\n.\r\n", .problems = LF },
	{ "bdat empty", BDAT, .in = "", .out = "" },
	{ "bdat received", BDAT, .in = "Received: a\r\nReceived: b\r\n\r\nReceived: c", .out = "Received: a\r\nReceived: b\r\n\r\nReceived: c", .received = 2 },
	{ "bdat size", BDAT, .in = "0123456789\r\n", .out = "0123456789", .problems = BIG, .size_max = 10, .size = 12 },
	{ "bdat long line", BDAT, .in = "0123456789\r\n", .out = "0123456789\r\n", .problems = LONG, .line_max = 11 },
	{ "bdat NUL", BDAT, .in = "a\0b\r\n", .len = 5, .out = "a\0b\r\n", .out_len = 5 },
};

/* ---- drivers ---- */

struct result {
	struct buf out;
	size_t consumed;
	bool end;
	unsigned problems;
	unsigned received;
	uint64_t size;
};

static void
result_init(struct result *r)
{
	buf_init(&r->out, BIG_BUF);
	r->consumed = 0;
	r->end = false;
	r->problems = 0;
	r->received = 0;
	r->size = 0;
}

/* Move what the decoder wrote into the accumulated output. (Hot loops test
 * with if/ck_abort_msg: a passing ck_assert costs a pipe write in Check's
 * fork mode.) */
static void
drain(struct buf *from, struct buf *to)
{
	if (buf_append(to, buf_data(from), buf_len(from)) != BUF_OK)
		ck_abort_msg("accumulator full");
	buf_reset(from);
}

/*
 * Feed in[0..len) cut at the given offsets (cuts[] ascending, < len), into
 * an output buf of max outmax (NULL out when outmax is 0) drained into
 * res->out after every call. BDAT is finished at the end.
 */
static void
drive(const struct data_row *row, const char *in, size_t len, const size_t *cuts, size_t ncuts,
      size_t outmax, struct result *res)
{
	struct smtpd_data d;
	struct buf out;
	size_t pos = 0, piece_end, c = 0, n;
	bool end = false;

	smtpd_data_init(&d, row->mode, row->reject ? SMTPD_DATA_REJECT : SMTPD_DATA_NORMALIZE,
	                row->size_max, row->line_max);
	buf_init(&out, outmax);
	while (pos < len && !end) {
		piece_end = c < ncuts ? cuts[c++] : len;
		if (piece_end <= pos)
			continue;
		while (pos < piece_end && !end) {
			n = smtpd_data_feed(&d, in + pos, piece_end - pos, outmax ? &out : NULL, &end);
			if (n > piece_end - pos)
				ck_abort_msg("%s: consumed more than given", row->name);
			/* progress: the drained buf always has room for one byte's output */
			if (n == 0 && !end)
				ck_abort_msg("%s: no progress at %zu", row->name, pos);
			if (n < piece_end - pos && !end && !(d.problems & SMTPD_DATA_OUTPUT_FULL))
				ck_abort_msg("%s: stopped early without OUTPUT_FULL", row->name);
			pos += n;
			drain(&out, &res->out);
		}
	}
	if (row->mode == SMTPD_DATA_BDAT) {
		smtpd_data_finish(&d, outmax ? &out : NULL);
		if (d.problems & SMTPD_DATA_OUTPUT_FULL)
			ck_abort_msg("%s: finish could not store", row->name);
		drain(&out, &res->out);
	} else if (end) {
		/* after the end nothing more is taken */
		bool end2 = false;
		if (smtpd_data_feed(&d, "x", 1, &out, &end2) != 0 || !end2)
			ck_abort_msg("%s: input taken after the end", row->name);
	}
	res->consumed = pos;
	res->end = end;
	res->problems = d.problems & PROBLEMS;
	res->received = d.received_count;
	res->size = d.size;
	buf_free(&out);
}

static size_t
row_len(const struct data_row *r)
{
	return r->len ? r->len : strlen(r->in);
}

static const char *
show(const char *p, size_t n)
{
	static char text[4096];
	size_t o = 0, i;

	for (i = 0; i < n && o + 5 < sizeof(text); i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '\r')
			o += (size_t)snprintf(text + o, sizeof(text) - o, "\\r");
		else if (c == '\n')
			o += (size_t)snprintf(text + o, sizeof(text) - o, "\\n");
		else if (c >= 32 && c < 127 && c != '\\')
			text[o++] = (char)c;
		else
			o += (size_t)snprintf(text + o, sizeof(text) - o, "\\x%02x", c);
	}
	text[o] = '\0';
	return text;
}

static void
check_row_result(const struct data_row *r, const struct result *res, const char *how)
{
	size_t len = row_len(r);
	size_t out_len = r->out_len ? r->out_len : strlen(r->out);
	size_t want_consumed = len - (r->rest ? strlen(r->rest) : 0);
	uint64_t want_size = r->size ? r->size : out_len;

	if (buf_len(&res->out) != out_len || memcmp(buf_data(&res->out), r->out, out_len) != 0)
		ck_abort_msg("%s (%s): output \"%s\"", r->name, how,
		             show(buf_data(&res->out), buf_len(&res->out)));
	if (res->consumed != want_consumed)
		ck_abort_msg("%s (%s): consumed %zu, want %zu", r->name, how, res->consumed, want_consumed);
	if (res->end != r->end)
		ck_abort_msg("%s (%s): end %d", r->name, how, res->end);
	if (res->problems != r->problems)
		ck_abort_msg("%s (%s): problems %#x, want %#x", r->name, how, res->problems, r->problems);
	if (res->received != r->received)
		ck_abort_msg("%s (%s): received %u, want %u", r->name, how, res->received, r->received);
	if (res->size != want_size)
		ck_abort_msg("%s (%s): size %llu, want %llu", r->name, how,
		             (unsigned long long)res->size, (unsigned long long)want_size);
}

static void
run_row(const struct data_row *r, const size_t *cuts, size_t ncuts, size_t outmax, const char *how)
{
	struct result res;

	result_init(&res);
	drive(r, r->in, row_len(r), cuts, ncuts, outmax, &res);
	check_row_result(r, &res, how);
	buf_free(&res.out);
}

START_TEST(test_rows_whole)
{
	run_row(&data_rows[_i], NULL, 0, BIG_BUF, "whole");
}
END_TEST

START_TEST(test_rows_bytewise)
{
	const struct data_row *r = &data_rows[_i];
	size_t len = row_len(r), k;
	size_t *cuts = malloc((len + 1) * sizeof(*cuts));

	for (k = 0; k < len; k++)
		cuts[k] = k + 1;
	run_row(r, cuts, len, BIG_BUF, "bytewise");
	run_row(r, cuts, len, 2, "bytewise, out max 2");
	free(cuts);
}
END_TEST

START_TEST(test_rows_split_two)
{
	const struct data_row *r = &data_rows[_i];
	size_t len = row_len(r), k;
	char how[64];

	for (k = 1; k < len; k++) {
		snprintf(how, sizeof(how), "split at %zu", k);
		run_row(r, &k, 1, BIG_BUF, how);
	}
}
END_TEST

START_TEST(test_rows_split_three)
{
	const struct data_row *r = &data_rows[_i];
	size_t len = row_len(r), cuts[2];
	char how[64];

	for (cuts[0] = 1; cuts[0] < len; cuts[0]++) {
		for (cuts[1] = cuts[0] + 1; cuts[1] < len; cuts[1]++) {
			snprintf(how, sizeof(how), "split at %zu, %zu", cuts[0], cuts[1]);
			run_row(r, cuts, 2, BIG_BUF, how);
		}
	}
}
END_TEST

START_TEST(test_rows_small_output)
{
	const struct data_row *r = &data_rows[_i];
	size_t outmax;
	char how[64];

	for (outmax = 2; outmax <= 9; outmax++) {
		snprintf(how, sizeof(how), "out max %zu", outmax);
		run_row(r, NULL, 0, outmax, how);
	}
}
END_TEST

/* out == NULL: the same decoding, nothing stored. */
START_TEST(test_rows_no_output)
{
	const struct data_row *r = &data_rows[_i];
	struct result res;
	size_t want_consumed = row_len(r) - (r->rest ? strlen(r->rest) : 0);

	result_init(&res);
	drive(r, r->in, row_len(r), NULL, 0, 0, &res);
	ck_assert_uint_eq(buf_len(&res.out), 0);
	ck_assert_uint_eq(res.consumed, want_consumed);
	ck_assert(res.end == r->end);
	ck_assert_uint_eq(res.problems, r->problems);
	ck_assert_uint_eq(res.received, r->received);
	buf_free(&res.out);
}
END_TEST

/* ---- explicit sequences ---- */

/* A full out buf stops the decoder at the exact byte; nothing is lost. */
START_TEST(test_output_full_resume)
{
	static const char msg[] = "abcdefgh\r\n..x\r\n.\r\nQUIT\r\n";
	struct smtpd_data d;
	struct buf out;
	bool end;
	size_t n;

	smtpd_data_init(&d, SMTPD_DATA_DOT, SMTPD_DATA_NORMALIZE, 0, 0);
	buf_init(&out, 5);
	n = smtpd_data_feed(&d, msg, sizeof(msg) - 1, &out, &end);
	ck_assert_uint_eq(n, 5);
	ck_assert(!end);
	ck_assert(d.problems & SMTPD_DATA_OUTPUT_FULL);
	ck_assert_uint_eq(buf_len(&out), 5);
	ck_assert(memcmp(buf_data(&out), "abcde", 5) == 0);
	/* not drained: still full, nothing taken */
	n = smtpd_data_feed(&d, msg + 5, sizeof(msg) - 1 - 5, &out, &end);
	ck_assert_uint_eq(n, 0);
	ck_assert(d.problems & SMTPD_DATA_OUTPUT_FULL);
	buf_reset(&out);
	/* "fgh\r\n" fills 5 exactly (the CR LF pair is one unit of output);
	 * the next "." is taken (it outputs nothing yet), the second "." is
	 * not: it needs room */
	n = smtpd_data_feed(&d, msg + 5, sizeof(msg) - 1 - 5, &out, &end);
	ck_assert_uint_eq(n, 6);
	ck_assert(!end);
	ck_assert(memcmp(buf_data(&out), "fgh\r\n", 5) == 0);
	buf_reset(&out);
	n = smtpd_data_feed(&d, msg + 11, sizeof(msg) - 1 - 11, &out, &end);
	ck_assert(end);
	ck_assert(!(d.problems & SMTPD_DATA_OUTPUT_FULL));
	ck_assert_uint_eq(buf_len(&out), 4);
	ck_assert(memcmp(buf_data(&out), ".x\r\n", 4) == 0);
	ck_assert_uint_eq(11 + n, sizeof(msg) - 1 - strlen("QUIT\r\n"));
	ck_assert_uint_eq(d.size, 14);
	buf_free(&out);
}
END_TEST

/* A CR LF pair needs two bytes of room: with one left, the LF waits. */
START_TEST(test_output_full_pair)
{
	struct smtpd_data d;
	struct buf out;
	bool end;

	smtpd_data_init(&d, SMTPD_DATA_DOT, SMTPD_DATA_NORMALIZE, 0, 0);
	buf_init(&out, 4);
	ck_assert_uint_eq(smtpd_data_feed(&d, "abc\r\n", 5, &out, &end), 4);	/* CR pending, LF not taken */
	ck_assert(d.problems & SMTPD_DATA_OUTPUT_FULL);
	ck_assert_uint_eq(buf_len(&out), 3);
	buf_reset(&out);
	ck_assert_uint_eq(smtpd_data_feed(&d, "\n", 1, &out, &end), 1);
	ck_assert(!(d.problems & SMTPD_DATA_OUTPUT_FULL));
	ck_assert(memcmp(buf_data(&out), "\r\n", 2) == 0);
	buf_free(&out);
}
END_TEST

/* BDAT: CR at the end of one chunk, LF at the start of the next. */
START_TEST(test_bdat_chunks)
{
	struct smtpd_data d;
	struct buf out;
	bool end = true;

	smtpd_data_init(&d, SMTPD_DATA_BDAT, SMTPD_DATA_REJECT, 0, 0);
	buf_init(&out, BIG_BUF);
	ck_assert_uint_eq(smtpd_data_feed(&d, "abc\r", 4, &out, &end), 4);
	ck_assert(!end);
	ck_assert_uint_eq(buf_len(&out), 3);
	ck_assert_uint_eq(smtpd_data_feed(&d, "\ndef\r", 5, &out, &end), 5);
	ck_assert(!end);
	ck_assert_uint_eq(smtpd_data_feed(&d, "\n", 1, &out, &end), 1);
	smtpd_data_finish(&d, &out);
	ck_assert_uint_eq(buf_len(&out), 10);
	ck_assert(memcmp(buf_data(&out), "abc\r\ndef\r\n", 10) == 0);
	ck_assert_uint_eq(d.problems, 0);
	ck_assert_uint_eq(d.size, 10);
	buf_free(&out);

	/* a CR at the very end of BDAT LAST is bare */
	smtpd_data_init(&d, SMTPD_DATA_BDAT, SMTPD_DATA_REJECT, 0, 0);
	buf_init(&out, BIG_BUF);
	ck_assert_uint_eq(smtpd_data_feed(&d, "abc\r", 4, &out, &end), 4);
	ck_assert_uint_eq(smtpd_data_feed(&d, "", 0, &out, &end), 0);	/* BDAT 0 LAST */
	ck_assert_uint_eq(d.problems, 0);
	smtpd_data_finish(&d, &out);
	ck_assert_uint_eq(d.problems, SMTPD_DATA_BARE_CR);
	ck_assert_uint_eq(buf_len(&out), 4);
	ck_assert(memcmp(buf_data(&out), "abc\r", 4) == 0);
	ck_assert_uint_eq(d.size, 4);
	/* finish twice changes nothing */
	smtpd_data_finish(&d, &out);
	ck_assert_uint_eq(buf_len(&out), 4);
	buf_free(&out);

	/* finish with a full out buf: retried after draining */
	smtpd_data_init(&d, SMTPD_DATA_BDAT, SMTPD_DATA_NORMALIZE, 0, 0);
	buf_init(&out, 3);
	ck_assert_uint_eq(smtpd_data_feed(&d, "abc\r", 4, &out, &end), 4);
	smtpd_data_finish(&d, &out);
	ck_assert(d.problems & SMTPD_DATA_OUTPUT_FULL);
	buf_reset(&out);
	smtpd_data_finish(&d, &out);
	ck_assert(!(d.problems & SMTPD_DATA_OUTPUT_FULL));
	ck_assert_uint_eq(buf_len(&out), 1);
	buf_free(&out);

	/* BDAT never ends, whatever it is fed */
	smtpd_data_init(&d, SMTPD_DATA_BDAT, SMTPD_DATA_NORMALIZE, 0, 0);
	buf_init(&out, BIG_BUF);
	ck_assert_uint_eq(smtpd_data_feed(&d, ".\r\n", 3, &out, &end), 3);
	ck_assert(!end);
	ck_assert_uint_eq(smtpd_data_feed(&d, "\r\n.\r\n", 5, &out, &end), 5);
	ck_assert(!end);
	buf_free(&out);
}
END_TEST

/* DATA finish is a no-op. */
START_TEST(test_dot_finish_noop)
{
	struct smtpd_data d;
	struct buf out;
	bool end;

	smtpd_data_init(&d, SMTPD_DATA_DOT, SMTPD_DATA_NORMALIZE, 0, 0);
	buf_init(&out, BIG_BUF);
	smtpd_data_feed(&d, "abc\r", 4, &out, &end);
	smtpd_data_finish(&d, &out);
	ck_assert_uint_eq(buf_len(&out), 3);
	ck_assert_uint_eq(d.problems, 0);
	buf_free(&out);
}
END_TEST

/* RFC 5321 4.5.3.1.6: 998 octets and CR LF is the longest line. */
START_TEST(test_line_1000)
{
	char msg[1200];
	struct smtpd_data d;
	struct buf out;
	bool end;

	memset(msg, 'x', 998);
	memcpy(msg + 998, "\r\n.\r\n", 5);
	smtpd_data_init(&d, SMTPD_DATA_DOT, SMTPD_DATA_NORMALIZE, 0, 1000);
	buf_init(&out, BIG_BUF);
	ck_assert_uint_eq(smtpd_data_feed(&d, msg, 1003, &out, &end), 1003);
	ck_assert(end);
	ck_assert_uint_eq(d.problems, 0);
	buf_free(&out);

	memset(msg, 'x', 999);
	memcpy(msg + 999, "\r\n.\r\n", 5);
	smtpd_data_init(&d, SMTPD_DATA_DOT, SMTPD_DATA_NORMALIZE, 0, 1000);
	buf_init(&out, BIG_BUF);
	ck_assert_uint_eq(smtpd_data_feed(&d, msg, 1004, &out, &end), 1004);
	ck_assert(end);
	ck_assert_uint_eq(d.problems, SMTPD_DATA_LONG_LINE);
	ck_assert_uint_eq(buf_len(&out), 1001);
	buf_free(&out);

	/* a stuffed dot does not count: "." + 998 octets is fine */
	msg[0] = '.';
	memset(msg + 1, 'x', 998);
	memcpy(msg + 999, "\r\n.\r\n", 5);
	smtpd_data_init(&d, SMTPD_DATA_DOT, SMTPD_DATA_NORMALIZE, 0, 1000);
	buf_init(&out, BIG_BUF);
	ck_assert_uint_eq(smtpd_data_feed(&d, msg, 1004, &out, &end), 1004);
	ck_assert_uint_eq(d.problems, 0);
	buf_free(&out);
}
END_TEST

/* ---- reference decoder and seeded random comparison ---- */

static unsigned long long rng_state = 20240101;

static unsigned
rng(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(rng_state >> 33);
}

/*
 * The rules applied the other way round: find the first CR LF "." CR LF
 * (the DATA command's CR LF in front), cut the content into lines at real
 * CR LF, drop one leading dot per line (DATA), write each bare LF as CR LF
 * and keep each bare CR. A CR at the very end, or "." / "." CR at the start
 * of the last line, is still pending and not written (finished for BDAT).
 */
static void
reference(enum smtpd_data_mode mode, const char *in, size_t len, struct buf *out, size_t *consumed,
          bool *end, unsigned *problems)
{
	size_t content = len, j, start, stop, k;
	bool last;

	*end = false;
	*problems = 0;
	*consumed = len;
	if (mode == SMTPD_DATA_DOT) {
		for (j = 0; j + 3 <= len; j++) {
			if ((j == 0 || (j >= 2 && in[j - 2] == '\r' && in[j - 1] == '\n')) &&
			    memcmp(in + j, ".\r\n", 3) == 0) {
				content = j;
				*consumed = j + 3;
				*end = true;
				break;
			}
		}
	}
	start = 0;
	for (;;) {
		stop = start;
		while (stop + 1 < content && !(in[stop] == '\r' && in[stop + 1] == '\n'))
			stop++;
		last = stop + 1 >= content;	/* no CR LF left in the content */
		if (last)
			stop = content;
		k = start;
		if (mode == SMTPD_DATA_DOT && k < stop && in[k] == '.')
			k++;
		for (; k < stop; k++) {
			if (in[k] == '\n') {
				*problems |= SMTPD_DATA_BARE_LF;
				buf_append(out, "\r\n", 2);
			} else if (in[k] == '\r') {
				if (last && k + 1 == stop && !*end) {
					if (mode == SMTPD_DATA_BDAT) {
						*problems |= SMTPD_DATA_BARE_CR;
						buf_append(out, "\r", 1);
					}
					continue;	/* pending */
				}
				*problems |= SMTPD_DATA_BARE_CR;
				buf_append(out, "\r", 1);
			} else {
				buf_append(out, in + k, 1);
			}
		}
		if (last)
			break;
		buf_append(out, "\r\n", 2);
		start = stop + 2;
	}
}

START_TEST(test_random_vs_reference)
{
	static const char alphabet[] = "\r\n.\r\n.aR\0";
	char in[40];
	struct data_row row;
	struct buf ref;
	struct result res;
	size_t len, k, ref_consumed, cuts[40];
	bool ref_end;
	unsigned ref_problems;
	int iter;

	for (iter = 0; iter < 12000; iter++) {
		memset(&row, 0, sizeof(row));
		row.name = "random";
		row.mode = (iter & 1) ? SMTPD_DATA_BDAT : SMTPD_DATA_DOT;
		len = rng() % sizeof(in);
		for (k = 0; k < len; k++)
			in[k] = alphabet[rng() % (sizeof(alphabet) - 1)];

		buf_init(&ref, BIG_BUF);
		reference(row.mode, in, len, &ref, &ref_consumed, &ref_end, &ref_problems);

		/* whole, bytewise with a 2-byte out buf, and random cuts */
		for (int how = 0; how < 3; how++) {
			size_t ncuts = 0;
			if (how == 1) {
				for (k = 0; k < len; k++)
					cuts[ncuts++] = k + 1;
			} else if (how == 2) {
				for (k = 1; k < len; k++)
					if (rng() % 3 == 0)
						cuts[ncuts++] = k;
			}
			result_init(&res);
			drive(&row, in, len, cuts, ncuts, how == 1 ? 2 : BIG_BUF, &res);
			if (buf_len(&res.out) != buf_len(&ref) ||
			    memcmp(buf_data(&res.out), buf_data(&ref), buf_len(&ref)) != 0)
				ck_abort_msg("mode %d in \"%s\" (how %d): output differs", row.mode,
				             show(in, len), how);
			if (res.consumed != ref_consumed)
				ck_abort_msg("in \"%s\": consumed %zu, want %zu", show(in, len),
				             res.consumed, ref_consumed);
			if (res.end != ref_end)
				ck_abort_msg("in \"%s\": end %d", show(in, len), res.end);
			if (res.problems != ref_problems)
				ck_abort_msg("in \"%s\": problems %#x, want %#x", show(in, len),
				             res.problems, ref_problems);
			if (res.size != buf_len(&ref))
				ck_abort_msg("in \"%s\": size %llu", show(in, len),
				             (unsigned long long)res.size);
			/* output never holds a LF without its CR */
			for (k = 0; k < buf_len(&res.out); k++)
				if (buf_data(&res.out)[k] == '\n' && (k == 0 || buf_data(&res.out)[k - 1] != '\r'))
					ck_abort_msg("in \"%s\": LF without CR in output", show(in, len));
			buf_free(&res.out);
		}
		buf_free(&ref);
	}
}
END_TEST

/* A larger message, random pieces and random out sizes, against whole. */
START_TEST(test_large_random_pieces)
{
	struct buf msg;
	struct data_row row;
	struct result whole, res;
	size_t cuts[4096], ncuts, pos;
	int i, trial;

	buf_init(&msg, BIG_BUF);
	for (i = 0; i < 2000; i++) {
		switch (rng() % 8) {
		case 0: buf_append_str(&msg, "Received: from x by y\r\n"); break;
		case 1: buf_append_str(&msg, "..stuffed\r\n"); break;
		case 2: buf_append_str(&msg, "bare lf\n"); break;
		case 3: buf_append_str(&msg, "bare\rcr\r\n"); break;
		case 4: buf_append_str(&msg, "\r\n"); break;
		case 5: buf_append_str(&msg, "\n.\r\n"); break;
		default: buf_append_str(&msg, "an ordinary line of text, not short at all\r\n"); break;
		}
	}
	buf_append_str(&msg, "\r\n.\r\nQUIT\r\n");
	memset(&row, 0, sizeof(row));
	row.name = "large";
	row.mode = SMTPD_DATA_DOT;
	row.line_max = 40;
	row.size_max = 50000;

	result_init(&whole);
	drive(&row, buf_data(&msg), buf_len(&msg), NULL, 0, BIG_BUF, &whole);
	ck_assert(whole.end);
	ck_assert_uint_eq(whole.consumed, buf_len(&msg) - 6);
	for (trial = 0; trial < 40; trial++) {
		ncuts = 0;
		for (pos = 1 + rng() % 300; pos < buf_len(&msg) && ncuts < 4096; pos += 1 + rng() % 300)
			cuts[ncuts++] = pos;
		result_init(&res);
		drive(&row, buf_data(&msg), buf_len(&msg), cuts, ncuts, 2 + rng() % 50, &res);
		ck_assert(buf_len(&res.out) == buf_len(&whole.out) &&
		          memcmp(buf_data(&res.out), buf_data(&whole.out), buf_len(&whole.out)) == 0);
		ck_assert_uint_eq(res.consumed, whole.consumed);
		ck_assert_uint_eq(res.problems, whole.problems);
		ck_assert_uint_eq(res.received, whole.received);
		ck_assert_uint_eq(res.size, whole.size);
		buf_free(&res.out);
	}
	buf_free(&whole.out);
	buf_free(&msg);
}
END_TEST

static Suite *
data_suite(void)
{
	Suite *s = suite_create("smtpd_data");
	TCase *tc = tcase_create("core");
	int n = (int)(sizeof(data_rows) / sizeof(data_rows[0]));

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_rows_whole, 0, n);
	tcase_add_loop_test(tc, test_rows_bytewise, 0, n);
	tcase_add_loop_test(tc, test_rows_split_two, 0, n);
	tcase_add_loop_test(tc, test_rows_split_three, 0, n);
	tcase_add_loop_test(tc, test_rows_small_output, 0, n);
	tcase_add_loop_test(tc, test_rows_no_output, 0, n);
	tcase_add_test(tc, test_output_full_resume);
	tcase_add_test(tc, test_output_full_pair);
	tcase_add_test(tc, test_bdat_chunks);
	tcase_add_test(tc, test_dot_finish_noop);
	tcase_add_test(tc, test_line_1000);
	tcase_add_test(tc, test_random_vs_reference);
	tcase_add_test(tc, test_large_random_pieces);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(data_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
