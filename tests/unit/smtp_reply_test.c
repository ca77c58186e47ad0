/* Unit tests for delivery/smtp_reply.c: one row per input, fed in pieces of
 * every size, plus the limits at and just past each bound. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/smtp_reply.h"

struct reply_row {
	const char *input;
	size_t len;		/* 0: strlen(input) */
	/*
	 * Expected events, '|'-separated: "CODE enh=ENH n=LINES [TEXT]" per
	 * complete reply (ENH "-" when none), "E:reason" for an error.
	 * Trailing partial input is not reported.
	 */
	const char *expect;
};

static const struct reply_row reply_rows[] = {
	/* the common shapes */
	{ "220 mx.example.org ESMTP\r\n", 0, "220 enh=- n=1 [220 mx.example.org ESMTP]" },
	{ "250 2.0.0 Ok: queued as 4XyZ\r\n", 0, "250 enh=2.0.0 n=1 [250 2.0.0 Ok: queued as 4XyZ]" },
	{ "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n", 0,
	  "250 enh=- n=4 [250-mx.example.org 250-PIPELINING 250-SIZE 10240000 250 8BITMIME]" },
	{ "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
	  "550 5.1.1 https://support.example/answer - gsmtp\r\n", 0,
	  "550 enh=5.1.1 n=2 [550-5.1.1 The email account that you tried to reach does not exist. "
	  "550 5.1.1 https://support.example/answer - gsmtp]" },
	/* pipelined replies in one read come out one at a time (RFC 2920) */
	{ "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n450 4.2.0 busy\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
	  0,
	  "250 enh=2.1.0 n=1 [250 2.1.0 Ok]|250 enh=2.1.5 n=1 [250 2.1.5 Ok]|"
	  "450 enh=4.2.0 n=1 [450 4.2.0 busy]|354 enh=- n=1 [354 End data with <CR><LF>.<CR><LF>]" },
	/* line ends: bare LF accepted, extra CRs dropped, inner CR kept */
	{ "220 hi\n250 ok\n", 0, "220 enh=- n=1 [220 hi]|250 enh=- n=1 [250 ok]" },
	{ "250 ok\r\r\n", 0, "250 enh=- n=1 [250 ok]" },
	{ "250 a\rb\r\n", 0, "250 enh=- n=1 [250 a\rb]" },
	{ "250-a\n250 b\r\n", 0, "250 enh=- n=2 [250-a 250 b]" },
	/* code alone, empty texts (RFC 5321 4.2: the text is optional) */
	{ "250\r\n", 0, "250 enh=- n=1 [250]" },
	{ "250-\r\n250 \r\n", 0, "250 enh=- n=2 [250- 250 ]" },
	{ "250-\r\n250\r\n", 0, "250 enh=- n=2 [250- 250]" },
	/* 8-bit and control bytes other than NUL are text */
	{ "554 \xc3\xa9t\xc3\xa9 \x01\r\n", 0, "554 enh=- n=1 [554 \xc3\xa9t\xc3\xa9 \x01]" },
	/* enhanced codes (RFC 3463 section 2, RFC 2034 section 4) */
	{ "550 5.1.1\r\n", 0, "550 enh=5.1.1 n=1 [550 5.1.1]" },
	{ "550 5.999.999 x\r\n", 0, "550 enh=5.999.999 n=1 [550 5.999.999 x]" },
	{ "550 5.01.001 x\r\n", 0, "550 enh=5.01.001 n=1 [550 5.01.001 x]" },
	{ "550 4.1.1 wrong class\r\n", 0, "550 enh=- n=1 [550 4.1.1 wrong class]" },
	{ "550 5.1.1x\r\n", 0, "550 enh=- n=1 [550 5.1.1x]" },
	{ "550 5.1000.1 x\r\n", 0, "550 enh=- n=1 [550 5.1000.1 x]" },
	{ "550 5.1.1000 x\r\n", 0, "550 enh=- n=1 [550 5.1.1000 x]" },
	{ "550 5.1 x\r\n", 0, "550 enh=- n=1 [550 5.1 x]" },
	{ "550 5..1 x\r\n", 0, "550 enh=- n=1 [550 5..1 x]" },
	{ "550 5.1.\r\n", 0, "550 enh=- n=1 [550 5.1.]" },
	{ "550  5.1.1 two spaces\r\n", 0, "550 enh=- n=1 [550  5.1.1 two spaces]" },
	{ "550 3.1.1 x\r\n", 0, "550 enh=- n=1 [550 3.1.1 x]" },
	{ "250-first line\r\n250 2.0.0 only the first line counts\r\n", 0,
	  "250 enh=- n=2 [250-first line 250 2.0.0 only the first line counts]" },
	/* protocol errors, each with its own reason */
	{ "25x ok\r\n", 0, "E:reply code is not three digits" },
	{ "\r\n", 0, "E:reply code is not three digits" },
	{ "25\r\n", 0, "E:reply code is not three digits" },
	{ "ok\r\n", 0, "E:reply code is not three digits" },
	{ "+OK POP3 ready\r\n", 0, "E:reply code is not three digits" },
	{ "199 x\r\n", 0, "E:reply code out of range" },
	{ "600 x\r\n", 0, "E:reply code out of range" },
	{ "099 x\r\n", 0, "E:reply code out of range" },
	{ "250_x\r\n", 0, "E:bad separator after reply code" },
	{ "2500 x\r\n", 0, "E:bad separator after reply code" },
	{ "250\tx\r\n", 0, "E:bad separator after reply code" },
	{ "250-a\r\n251 b\r\n", 0, "E:reply code changes within a multi-line reply" },
	{ "250-a\r\n550 b\r\n", 0, "E:reply code changes within a multi-line reply" },
	{ "250 a\0b\r\n", 9, "E:NUL byte in reply" },
	{ "\0", 1, "E:NUL byte in reply" },
	/* errors are sticky: nothing after one is parsed */
	{ "250 ok\r\nXYZ\r\n250 ok\r\n", 0, "250 enh=- n=1 [250 ok]|E:reply code is not three digits" },
	/* a reply cut short is not reported */
	{ "250 ok\r\n250-more", 0, "250 enh=- n=1 [250 ok]" },
	{ "", 0, "" },
};

/* Append one event to ev (a NUL-terminated buf). */
static void
reply_event(struct buf *ev, enum smtp_reply_status st, const struct smtp_reply_parser *p)
{
	const struct smtp_reply *r;

	if (buf_len(ev) > 0)
		ck_assert_int_eq(buf_append_char(ev, '|'), BUF_OK);
	if (st == SMTP_REPLY_ERROR) {
		ck_assert_int_eq(buf_append_printf(ev, "E:%s", smtp_reply_parser_error(p)), BUF_OK);
		return;
	}
	r = smtp_reply_parser_reply(p);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(buf_append_printf(ev, "%d enh=%s n=%zu [%s]", r->code,
	                                   r->enh[0] != '\0' ? r->enh : "-", r->nlines,
	                                   smtp_reply_text(r)),
	                 BUF_OK);
}

/* Feed input in pieces of step bytes, parsing each piece to the end.
 * Invariants are checked once at the end: Check reports every passing
 * assertion through a pipe, too slow for a byte-at-a-time loop. */
static void
reply_run(const char *input, size_t len, size_t step, struct buf *ev)
{
	struct smtp_reply_parser p;
	enum smtp_reply_status st;
	size_t pos = 0, n, off, used;
	bool failed = false, sane = true;

	smtp_reply_parser_init(&p);
	buf_reset(ev);
	while (pos < len && !failed) {
		n = len - pos < step ? len - pos : step;
		off = 0;
		while (off < n) {
			st = smtp_reply_parse(&p, input + pos + off, n - off, &used);
			sane = sane && used <= n - off;
			off += used;
			if (st == SMTP_REPLY_NEED_MORE) {
				sane = sane && off == n;
				break;
			}
			reply_event(ev, st, &p);
			if (st == SMTP_REPLY_ERROR) {
				/* sticky: takes nothing, says the same again */
				sane = sane && smtp_reply_parse(&p, "250 ok\r\n", 8, &used) ==
				                       SMTP_REPLY_ERROR && used == 0;
				failed = true;
				break;
			}
		}
		pos += n;
	}
	ck_assert_msg(sane, "step %zu: bad progress or error not sticky", step);
	(void)buf_cstr(ev);
	smtp_reply_parser_free(&p);
}

START_TEST(test_rows)
{
	const struct reply_row *row = &reply_rows[_i];
	size_t len = row->len ? row->len : strlen(row->input), step;
	struct buf ev;

	buf_init(&ev, 1 << 16);
	for (step = 1; step <= (len ? len : 1); step++) {
		reply_run(row->input, len, step, &ev);
		ck_assert_msg(strcmp(buf_data(&ev), row->expect) == 0,
		              "row %d step %zu: got \"%s\" want \"%s\"", _i, step, buf_data(&ev),
		              row->expect);
	}
	buf_free(&ev);
}
END_TEST

/* Lines and their texts, for the EHLO reader. */
START_TEST(test_lines)
{
	static const char in[] = "250-mx.example.org Hi\r\n250-SIZE 100\r\n250 AUTH PLAIN\r\n";
	struct smtp_reply_parser p;
	const struct smtp_reply *r;
	const char *line;
	size_t used, len;

	smtp_reply_parser_init(&p);
	ck_assert_int_eq(smtp_reply_parse(&p, in, sizeof(in) - 1, &used), SMTP_REPLY_DONE);
	ck_assert_uint_eq(used, sizeof(in) - 1);
	r = smtp_reply_parser_reply(&p);
	ck_assert_uint_eq(r->nlines, 3);
	line = smtp_reply_line(r, 0, &len);
	ck_assert_uint_eq(len, 17);
	ck_assert(memcmp(line, "mx.example.org Hi", len) == 0);
	line = smtp_reply_line(r, 1, &len);
	ck_assert(len == 8 && memcmp(line, "SIZE 100", len) == 0);
	line = smtp_reply_line(r, 2, &len);
	ck_assert(len == 10 && memcmp(line, "AUTH PLAIN", len) == 0);
	ck_assert(!smtp_reply_parser_pending(&p));
	ck_assert_ptr_null(smtp_reply_parser_error(&p));
	smtp_reply_parser_free(&p);
}
END_TEST

/* Partial input is pending; a finished reply is not. */
START_TEST(test_pending)
{
	struct smtp_reply_parser p;
	size_t used;

	smtp_reply_parser_init(&p);
	ck_assert(!smtp_reply_parser_pending(&p));
	ck_assert_int_eq(smtp_reply_parse(&p, "250-a\r\n25", 9, &used), SMTP_REPLY_NEED_MORE);
	ck_assert_uint_eq(used, 9);
	ck_assert(smtp_reply_parser_pending(&p));
	ck_assert_ptr_null(smtp_reply_parser_reply(&p));
	ck_assert_int_eq(smtp_reply_parse(&p, "0 b\r\n", 5, &used), SMTP_REPLY_DONE);
	ck_assert(!smtp_reply_parser_pending(&p));
	ck_assert_int_eq(smtp_reply_parse(&p, "\r", 1, &used), SMTP_REPLY_NEED_MORE);
	ck_assert(smtp_reply_parser_pending(&p));
	smtp_reply_parser_free(&p);
}
END_TEST

/* Build a reply of nlines lines, each textlen bytes of text, into b. */
static void
reply_build(struct buf *b, size_t nlines, size_t textlen, const char *eol)
{
	size_t i;
	char *p;
	bool ok = true;

	buf_reset(b);
	/* One check at the end: Check reports every passing assertion. */
	for (i = 0; i < nlines && ok; i++) {
		ok = buf_append_str(b, i + 1 < nlines ? "250-" : "250 ") == BUF_OK;
		p = ok ? buf_reserve(b, textlen) : NULL;
		if (p != NULL) {
			memset(p, 'x', textlen);
			buf_commit(b, textlen);
		}
		ok = p != NULL && buf_append_str(b, eol) == BUF_OK;
	}
	ck_assert(ok);
}

static const char *
reply_limit_run(struct buf *in, size_t step, struct buf *ev)
{
	reply_run(buf_data(in), buf_len(in), step, ev);
	return buf_data(ev);
}

START_TEST(test_limits)
{
	static const size_t steps[] = { 1, 7, 512, 4096, 1 << 20 };
	struct buf in, ev;
	size_t s;
	const char *got;

	buf_init(&in, 1 << 20);
	buf_init(&ev, 1 << 20);
	for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		/* a line of exactly SMTP_REPLY_LINE_MAX octets, CR LF included */
		reply_build(&in, 1, SMTP_REPLY_LINE_MAX - 6, "\r\n");
		ck_assert_uint_eq(buf_len(&in), SMTP_REPLY_LINE_MAX);
		got = reply_limit_run(&in, steps[s], &ev);
		ck_assert_msg(strncmp(got, "250 enh=- n=1 [250 xxx", 22) == 0, "%.40s", got);
		/* the same with a bare LF: one more byte of text fits */
		reply_build(&in, 1, SMTP_REPLY_LINE_MAX - 5, "\n");
		ck_assert_uint_eq(buf_len(&in), SMTP_REPLY_LINE_MAX);
		got = reply_limit_run(&in, steps[s], &ev);
		ck_assert_msg(strncmp(got, "250 enh=- n=1", 13) == 0, "%.40s", got);
		/* one octet over */
		reply_build(&in, 1, SMTP_REPLY_LINE_MAX - 5, "\r\n");
		got = reply_limit_run(&in, steps[s], &ev);
		ck_assert_msg(strcmp(got, "E:reply line too long") == 0, "%.60s", got);
		/* no LF at all: the error comes without waiting for one */
		reply_build(&in, 1, 2 * SMTP_REPLY_LINE_MAX, "");
		got = reply_limit_run(&in, steps[s], &ev);
		ck_assert_msg(strcmp(got, "E:reply line too long") == 0, "%.60s", got);
		/* SMTP_REPLY_LINES_MAX lines, then one more */
		reply_build(&in, SMTP_REPLY_LINES_MAX, 10, "\r\n");
		got = reply_limit_run(&in, steps[s], &ev);
		ck_assert_msg(strncmp(got, "250 enh=- n=100 ", 16) == 0, "%.40s", got);
		reply_build(&in, SMTP_REPLY_LINES_MAX + 1, 10, "\r\n");
		got = reply_limit_run(&in, steps[s], &ev);
		ck_assert_msg(strcmp(got, "E:too many lines in reply") == 0, "%.60s", got);
		/* the joined text over SMTP_REPLY_TEXT_MAX */
		reply_build(&in, SMTP_REPLY_TEXT_MAX / 4000 + 1, 4000, "\r\n");
		got = reply_limit_run(&in, steps[s], &ev);
		ck_assert_msg(strcmp(got, "E:reply too long") == 0, "%.60s", got);
	}
	buf_free(&in);
	buf_free(&ev);
}
END_TEST

/* The parser's enhanced-code reader on its own. */
START_TEST(test_enh_parse)
{
	char out[SMTP_REPLY_ENH_SIZE];

	ck_assert_uint_eq(smtp_reply_enh_parse("4.7.1 x", 7, '4', out), 5);
	ck_assert_str_eq(out, "4.7.1");
	ck_assert_uint_eq(smtp_reply_enh_parse("4.7.1 x", 7, '5', out), 0);
	ck_assert_str_eq(out, "");
	ck_assert_uint_eq(smtp_reply_enh_parse("2.0.0", 5, 0, out), 5);
	ck_assert_uint_eq(smtp_reply_enh_parse("2.0.0", 4, 0, out), 0);	/* "2.0." */
	ck_assert_uint_eq(smtp_reply_enh_parse("3.0.0", 5, 0, out), 0);
	ck_assert_uint_eq(smtp_reply_enh_parse("", 0, 0, out), 0);
	ck_assert_uint_eq(smtp_reply_enh_parse("5", 1, 0, out), 0);
	ck_assert_uint_eq(smtp_reply_enh_parse("5.", 2, 0, out), 0);
	ck_assert_uint_eq(smtp_reply_enh_parse("5.1", 3, 0, out), 0);
	ck_assert_uint_eq(smtp_reply_enh_parse("5.999.999", 9, 0, out), 9);
	ck_assert_str_eq(out, "5.999.999");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("smtp_reply");
	TCase *tc = tcase_create("rows");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_rows, 0, (int)(sizeof(reply_rows) / sizeof(reply_rows[0])));
	tcase_add_test(tc, test_lines);
	tcase_add_test(tc, test_pending);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_enh_parse);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
