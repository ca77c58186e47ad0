/*
 * envelope_test: the envelope record codec. Round trips, every truncation,
 * hand-made hostile records (one table row each), unknown tags, and a
 * byte-flip fuzz loop that must never crash (run it under ASan).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "queue/envelope.h"

#define REC_MAX (1024u * 1024)

/* ---- envelopes to round-trip ---- */

static void
env_full(struct envelope *e)
{
	envelope_set(&e->sender, "alice@example.org");
	envelope_add_rcpt(e, "bob@example.com", "rfc822;bob@example.com",
	                  ENVELOPE_NOTIFY_SUCCESS | ENVELOPE_NOTIFY_FAILURE);
	envelope_add_rcpt(e, "carol@example.net", NULL, 0);
	/* an alias's command target, stored with its alias */
	envelope_add_rcpt(e, "list@example.com", "rfc822;list@example.com", 0);
	envelope_set(&e->rcpts[e->nrcpt - 1].target, "|/usr/bin/procmail -a \"$EXTENSION\"");
	envelope_add_rcpt(e, "dave@example.com", NULL, ENVELOPE_NOTIFY_NEVER);
	e->ret = ENVELOPE_RET_HDRS;
	envelope_set(&e->envid, "QQ314159");
	e->body = ENVELOPE_BODY_8BITMIME;
	e->smtputf8 = false;
	e->size = 123456789012ull;
	e->arrival = 1700000000123456ll;
	envelope_set(&e->client_name, "mail.example.org");
	envelope_set(&e->client_addr, "2001:db8::25");
	envelope_set(&e->helo, "mail.example.org");
	envelope_set(&e->proto, "ESMTPSA");
	envelope_set(&e->sasl_method, "PLAIN");
	envelope_set(&e->sasl_username, "alice");
	envelope_set(&e->listener, "submission");
	envelope_set(&e->filter, "smtp:[127.0.0.1]:10024");
}

/* The null sender, one recipient, nothing optional. */
static void
env_minimal(struct envelope *e)
{
	envelope_set(&e->sender, "");
	envelope_add_rcpt(e, "postmaster@example.com", NULL, 0);
}

/* Many recipients, each with ORCPT and NOTIFY. */
static void
env_many(struct envelope *e)
{
	char addr[64], orcpt[80];
	int i;

	envelope_set(&e->sender, "");
	for (i = 0; i < 200; i++) {
		snprintf(addr, sizeof(addr), "user%d@example.com", i);
		snprintf(orcpt, sizeof(orcpt), "rfc822;user%d@example.com", i);
		envelope_add_rcpt(e, addr, orcpt, (unsigned)(i % 15) + 1);
	}
	e->arrival = -1;	/* before the epoch: the sign must survive */
	envelope_set(&e->client_addr, "192.0.2.1");
}

/* SMTPUTF8 (RFC 6531): UTF-8 in addresses and the HELO name. */
static void
env_utf8(struct envelope *e)
{
	envelope_set(&e->sender, "j\xc3\xb6rg@b\xc3\xbc" "cher.example");
	envelope_add_rcpt(e, "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac\xe5\x8f\xb8",
	                  "utf-8;\xe7\x94\xa8\xe6\x88\xb7@example", ENVELOPE_NOTIFY_DELAY);
	e->smtputf8 = true;
	e->hold = true;		/* a HOLD action */
	e->body = ENVELOPE_BODY_BINARYMIME;
	e->ret = ENVELOPE_RET_FULL;
	envelope_set(&e->helo, "\xc3\xa9t\xc3\xa9.example");
	envelope_set(&e->client_name, "unknown");
}

/* No recipients at all: the codec does not judge, smtpd does. */
static void
env_norcpt(struct envelope *e)
{
	envelope_set(&e->sender, "a@b");
}

static void (*const roundtrip_rows[])(struct envelope *) = {
	env_full, env_minimal, env_many, env_utf8, env_norcpt,
};
#define NROUNDTRIP ((int)(sizeof(roundtrip_rows) / sizeof(roundtrip_rows[0])))

static void
assert_str_eq(const char *a, const char *b, const char *what)
{
	if (a == NULL || b == NULL)
		ck_assert_msg(a == b, "%s: %s vs %s", what, a ? a : "(null)", b ? b : "(null)");
	else
		ck_assert_msg(strcmp(a, b) == 0, "%s: '%s' vs '%s'", what, a, b);
}

static void
assert_env_eq(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	assert_str_eq(a->sender, b->sender, "sender");
	ck_assert_uint_eq(a->nrcpt, b->nrcpt);
	for (i = 0; i < a->nrcpt; i++) {
		assert_str_eq(a->rcpts[i].addr, b->rcpts[i].addr, "rcpt addr");
		assert_str_eq(a->rcpts[i].orcpt, b->rcpts[i].orcpt, "rcpt orcpt");
		ck_assert_uint_eq(a->rcpts[i].notify, b->rcpts[i].notify);
		assert_str_eq(a->rcpts[i].target, b->rcpts[i].target, "rcpt target");
	}
	ck_assert_int_eq(a->ret, b->ret);
	assert_str_eq(a->envid, b->envid, "envid");
	ck_assert_int_eq(a->body, b->body);
	ck_assert_int_eq(a->smtputf8, b->smtputf8);
	ck_assert_int_eq(a->hold, b->hold);
	ck_assert_uint_eq(a->size, b->size);
	ck_assert_int_eq(a->arrival, b->arrival);
	assert_str_eq(a->client_name, b->client_name, "client_name");
	assert_str_eq(a->client_addr, b->client_addr, "client_addr");
	assert_str_eq(a->helo, b->helo, "helo");
	assert_str_eq(a->proto, b->proto, "proto");
	assert_str_eq(a->sasl_method, b->sasl_method, "sasl_method");
	assert_str_eq(a->sasl_username, b->sasl_username, "sasl_username");
	assert_str_eq(a->listener, b->listener, "listener");
	assert_str_eq(a->filter, b->filter, "filter");
}

static void
assert_env_empty(const struct envelope *e)
{
	ck_assert_ptr_null(e->sender);
	ck_assert_uint_eq(e->nrcpt, 0);
	ck_assert_ptr_null(e->envid);
	ck_assert_ptr_null(e->client_addr);
	ck_assert_ptr_null(e->helo);
	ck_assert_ptr_null(e->filter);
	ck_assert_uint_eq(e->size, 0);
	ck_assert_int_eq(e->arrival, 0);
}

START_TEST(test_roundtrip)
{
	struct envelope in, out, copy;
	struct buf b;
	char err[128];

	envelope_init(&in);
	envelope_init(&out);
	envelope_init(&copy);
	buf_init(&b, ENVELOPE_RECORD_MAX);
	roundtrip_rows[_i](&in);
	ck_assert_int_eq(envelope_encode(&in, &b), BUF_OK);
	ck_assert_int_eq(envelope_decode(buf_data(&b), buf_len(&b), &out, err, sizeof(err)), 0);
	assert_env_eq(&in, &out);
	/* Decoding into a used envelope replaces it completely. */
	ck_assert_int_eq(envelope_decode(buf_data(&b), buf_len(&b), &out, err, sizeof(err)), 0);
	assert_env_eq(&in, &out);
	envelope_copy(&copy, &in);
	assert_env_eq(&in, &copy);
	envelope_free(&in);
	envelope_free(&out);
	envelope_free(&copy);
	buf_free(&b);
}
END_TEST

/* Every proper prefix of a valid record is an error and leaves env empty. */
START_TEST(test_truncation)
{
	struct envelope in, out;
	struct buf b;
	char err[128];
	size_t n;

	envelope_init(&in);
	envelope_init(&out);
	buf_init(&b, REC_MAX);
	roundtrip_rows[_i](&in);
	ck_assert_int_eq(envelope_encode(&in, &b), BUF_OK);
	for (n = 0; n < buf_len(&b); n++) {
		err[0] = '\0';
		ck_assert_msg(envelope_decode(buf_data(&b), n, &out, err, sizeof(err)) == -1,
		              "prefix of %zu/%zu bytes decoded", n, buf_len(&b));
		ck_assert_msg(err[0] != '\0', "no reason at %zu", n);
		assert_env_empty(&out);
	}
	envelope_free(&in);
	envelope_free(&out);
	buf_free(&b);
}
END_TEST

START_TEST(test_encode_too_big)
{
	struct envelope in;
	struct buf b;

	envelope_init(&in);
	env_full(&in);
	buf_init(&b, 64);
	buf_append_str(&b, "keep");
	ck_assert_int_eq(envelope_encode(&in, &b), BUF_TOO_BIG);
	ck_assert_uint_eq(buf_len(&b), 4);
	ck_assert_int_eq(memcmp(buf_data(&b), "keep", 4), 0);
	envelope_free(&in);
	buf_free(&b);
}
END_TEST

START_TEST(test_clear_keeps_storage)
{
	struct envelope e;
	struct envelope_rcpt *rcpts;

	envelope_init(&e);
	env_many(&e);
	rcpts = e.rcpts;
	envelope_clear(&e);
	ck_assert_ptr_eq(e.rcpts, rcpts);
	ck_assert_uint_ge(e.rcpt_cap, 200);
	assert_env_empty(&e);
	envelope_add_rcpt(&e, "x@y", NULL, 0);
	ck_assert_uint_eq(e.nrcpt, 1);
	envelope_free(&e);
	ck_assert_ptr_null(e.rcpts);
}
END_TEST

/* ---- hand-made records ---- */

/* A tiny record writer, independent of the encoder under test. */
static void
w_u8(struct buf *b, unsigned v)
{
	buf_append_char(b, (char)v);
}

static void
w_u16(struct buf *b, unsigned v)
{
	w_u8(b, v >> 8);
	w_u8(b, v & 0xff);
}

static void
w_u32(struct buf *b, uint32_t v)
{
	w_u8(b, v >> 24);
	w_u8(b, (v >> 16) & 0xff);
	w_u8(b, (v >> 8) & 0xff);
	w_u8(b, v & 0xff);
}

static void
w_field(struct buf *b, unsigned tag, const char *p, size_t n)
{
	w_u8(b, tag);
	w_u32(b, (uint32_t)n);
	buf_append(b, p, n);
}

static void
w_header(struct buf *b, const char *magic, unsigned version)
{
	buf_append(b, magic, 4);
	w_u16(b, version);
}

/* RCPTS with one recipient whose block is the given bytes. */
static void
w_rcpts_one(struct buf *b, const char *blk, size_t n)
{
	w_u8(b, 20);
	w_u32(b, (uint32_t)(4 + 4 + n));
	w_u32(b, 1);
	w_u32(b, (uint32_t)n);
	buf_append(b, blk, n);
}

/* A valid minimal record; fields are spliced in by the rows. */
static void
w_valid(struct buf *b)
{
	w_header(b, "TENV", 1);
	w_field(b, 1, "a@b", 3);
	w_rcpts_one(b, "\x01\x00\x00\x00\x03" "c@d", 8);
}

struct bad_row {
	const char *name;
	void (*build)(struct buf *);
	const char *reason;	/* a substring of the error */
};

static void b_magic(struct buf *b) { w_header(b, "TENX", 1); w_field(b, 1, "", 0); }
static void b_version2(struct buf *b) { w_header(b, "TENV", 2); w_field(b, 1, "", 0); }
static void b_version0(struct buf *b) { w_header(b, "TENV", 0); }
static void b_empty(struct buf *b) { (void)b; }
static void b_nosender(struct buf *b) { w_header(b, "TENV", 1); w_rcpts_one(b, "\x01\x00\x00\x00\x01" "c", 6); }
static void b_norcpts(struct buf *b) { w_header(b, "TENV", 1); w_field(b, 1, "", 0); }
static void b_dupsender(struct buf *b) { w_valid(b); w_field(b, 1, "x", 1); }
static void b_sender_nul(struct buf *b)
{
	w_header(b, "TENV", 1);
	w_field(b, 1, "a\0b", 3);
	w_rcpts_one(b, "\x01\x00\x00\x00\x01" "c", 6);
}
static void b_rcpt_nul(struct buf *b)
{
	w_header(b, "TENV", 1);
	w_field(b, 1, "", 0);
	w_rcpts_one(b, "\x01\x00\x00\x00\x03" "c\0d", 8);
}
static void b_helo_nul(struct buf *b) { w_valid(b); w_field(b, 10, "\0", 1); }
static void b_count_big(struct buf *b)
{
	w_header(b, "TENV", 1);
	w_field(b, 1, "", 0);
	w_u8(b, 20);
	w_u32(b, 4 + 4 + 6);
	w_u32(b, 1000000);	/* a million recipients in 10 bytes */
	w_u32(b, 6);
	buf_append(b, "\x01\x00\x00\x00\x01" "c", 6);
}
static void b_count_huge(struct buf *b)
{
	w_header(b, "TENV", 1);
	w_field(b, 1, "", 0);
	w_u8(b, 20);
	w_u32(b, 4);
	w_u32(b, 0xffffffffu);
}
static void b_field_past_end(struct buf *b) { w_valid(b); w_u8(b, 8); w_u32(b, 0xfffffff0u); buf_append(b, "xx", 2); }
static void b_rcpt_past_end(struct buf *b)
{
	w_header(b, "TENV", 1);
	w_field(b, 1, "", 0);
	w_u8(b, 20);
	w_u32(b, 4 + 4 + 6);
	w_u32(b, 1);
	w_u32(b, 7);		/* one more than is there */
	buf_append(b, "\x01\x00\x00\x00\x01" "c", 6);
}
static void b_rcpt_trailing(struct buf *b)
{
	w_header(b, "TENV", 1);
	w_field(b, 1, "", 0);
	w_u8(b, 20);
	w_u32(b, 4 + 4 + 6 + 1);
	w_u32(b, 1);
	w_u32(b, 6);
	buf_append(b, "\x01\x00\x00\x00\x01" "cZ", 7);
}
static void b_rcpt_noaddr(struct buf *b)
{
	w_header(b, "TENV", 1);
	w_field(b, 1, "", 0);
	w_rcpts_one(b, "\x03\x00\x00\x00\x01\x04", 6);
}
static void b_rcpt_dupaddr(struct buf *b)
{
	w_header(b, "TENV", 1);
	w_field(b, 1, "", 0);
	w_rcpts_one(b, "\x01\x00\x00\x00\x01" "c" "\x01\x00\x00\x00\x01" "d", 12);
}
static void b_rcpt_bad_target(struct buf *b)
{
	w_header(b, "TENV", 1);
	w_field(b, 1, "", 0);
	w_rcpts_one(b, "\x01\x00\x00\x00\x01" "c" "\x04\x00\x00\x00\x03" "cmd", 14);
}
static void b_notify_bits(struct buf *b)
{
	w_header(b, "TENV", 1);
	w_field(b, 1, "", 0);
	w_rcpts_one(b, "\x01\x00\x00\x00\x01" "c" "\x03\x00\x00\x00\x01\x10", 12);
}
static void b_ret_range(struct buf *b) { w_valid(b); w_field(b, 2, "\x03", 1); }
static void b_body_range(struct buf *b) { w_valid(b); w_field(b, 4, "\x04", 1); }
static void b_utf8_range(struct buf *b) { w_valid(b); w_field(b, 5, "\x02", 1); }
static void b_ret_len(struct buf *b) { w_valid(b); w_field(b, 2, "\x01\x00", 2); }
static void b_size_len(struct buf *b) { w_valid(b); w_field(b, 6, "1234567", 7); }
static void b_arrival_len(struct buf *b) { w_valid(b); w_field(b, 7, "123456789", 9); }
static void b_trunc_field_hdr(struct buf *b) { w_valid(b); buf_append(b, "\x63\x00\x00", 3); }
static void b_dupfilter(struct buf *b)
{
	w_valid(b);
	w_field(b, 16, "smtp:[127.0.0.1]:10024", 22);
	w_field(b, 16, "lmtp:inet:127.0.0.1:10024", 25);
}
static void b_filter_nul(struct buf *b) { w_valid(b); w_field(b, 16, "smtp:\0", 6); }

static const struct bad_row bad_rows[] = {
	{ "bad magic", b_magic, "bad magic" },
	{ "version 2", b_version2, "unsupported version" },
	{ "version 0", b_version0, "unsupported version" },
	{ "empty", b_empty, "truncated header" },
	{ "no sender", b_nosender, "no sender" },
	{ "no recipient list", b_norcpts, "no recipient list" },
	{ "duplicate sender", b_dupsender, "duplicate field" },
	{ "NUL in sender", b_sender_nul, "NUL" },
	{ "NUL in recipient", b_rcpt_nul, "NUL" },
	{ "NUL in helo", b_helo_nul, "NUL" },
	{ "count larger than the data", b_count_big, "count larger" },
	{ "count 2^32-1", b_count_huge, "count larger" },
	{ "field length past end", b_field_past_end, "past end" },
	{ "recipient length past end", b_rcpt_past_end, "past end" },
	{ "bytes after last recipient", b_rcpt_trailing, "after the last recipient" },
	{ "recipient without address", b_rcpt_noaddr, "without address" },
	{ "recipient with two addresses", b_rcpt_dupaddr, "duplicate recipient field" },
	{ "target neither |command nor /file", b_rcpt_bad_target, "neither a command nor a file" },
	{ "unknown NOTIFY bit", b_notify_bits, "out of range" },
	{ "RET out of range", b_ret_range, "out of range" },
	{ "BODY out of range", b_body_range, "out of range" },
	{ "SMTPUTF8 out of range", b_utf8_range, "out of range" },
	{ "RET of two bytes", b_ret_len, "bad length" },
	{ "SIZE of seven bytes", b_size_len, "bad length" },
	{ "ARRIVAL of nine bytes", b_arrival_len, "bad length" },
	{ "truncated field header", b_trunc_field_hdr, "truncated field header" },
	{ "two content filters", b_dupfilter, "duplicate field" },
	{ "NUL in the content filter", b_filter_nul, "NUL" },
};
#define NBAD ((int)(sizeof(bad_rows) / sizeof(bad_rows[0])))

START_TEST(test_bad_record)
{
	const struct bad_row *row = &bad_rows[_i];
	struct envelope e;
	struct buf b;
	char err[128] = "";

	envelope_init(&e);
	buf_init(&b, REC_MAX);
	row->build(&b);
	ck_assert_msg(envelope_decode(buf_data(&b), buf_len(&b), &e, err, sizeof(err)) == -1,
	              "%s: decoded", row->name);
	ck_assert_msg(strstr(err, row->reason) != NULL, "%s: reason '%s', want '%s'", row->name,
	              err, row->reason);
	assert_env_empty(&e);
	envelope_free(&e);
	buf_free(&b);
}
END_TEST

START_TEST(test_valid_handmade)
{
	struct envelope e;
	struct buf b;
	char err[128] = "";

	envelope_init(&e);
	buf_init(&b, REC_MAX);
	w_valid(&b);
	ck_assert_msg(envelope_decode(buf_data(&b), buf_len(&b), &e, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(e.sender, "a@b");
	ck_assert_uint_eq(e.nrcpt, 1);
	ck_assert_str_eq(e.rcpts[0].addr, "c@d");
	/* A record written before the content filter existed: no filter. */
	ck_assert_ptr_null(e.filter);
	envelope_free(&e);
	buf_free(&b);
}
END_TEST

/* The content filter's tag (16) as an older tern's record plus the field,
 * and an encoded envelope without a filter carries no tag 16 at all. */
START_TEST(test_filter_field)
{
	struct envelope e;
	struct buf b;
	char err[128] = "";
	size_t off;

	envelope_init(&e);
	buf_init(&b, REC_MAX);
	w_valid(&b);
	w_field(&b, 16, "smtp:[127.0.0.1]:10024", 22);
	ck_assert_msg(envelope_decode(buf_data(&b), buf_len(&b), &e, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(e.filter, "smtp:[127.0.0.1]:10024");
	envelope_set(&e.filter, NULL);
	buf_reset(&b);
	ck_assert_int_eq(envelope_encode(&e, &b), BUF_OK);
	/* Walk the top-level fields: none is tag 16. */
	for (off = 6; off + 5 <= buf_len(&b);) {
		const unsigned char *p = (const unsigned char *)buf_data(&b) + off;
		uint32_t n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];

		ck_assert_uint_ne(p[0], 16);
		off += 5 + n;
	}
	ck_assert_uint_eq(off, buf_len(&b));
	envelope_free(&e);
	buf_free(&b);
}
END_TEST

/* Tags of a later version are skipped, at both levels, and may repeat. */
START_TEST(test_unknown_tags)
{
	struct envelope e;
	struct buf b;
	char err[128] = "";

	envelope_init(&e);
	buf_init(&b, REC_MAX);
	w_header(&b, "TENV", 1);
	w_field(&b, 99, "future\0data", 11);
	w_field(&b, 1, "a@b", 3);
	w_field(&b, 99, "again", 5);
	w_field(&b, 0, "", 0);
	w_field(&b, 255, "x", 1);
	w_rcpts_one(&b, "\x07\x00\x00\x00\x02" "zz" "\x01\x00\x00\x00\x03" "c@d"
	                "\x07\x00\x00\x00\x00", 20);
	w_field(&b, 10, "helo.example", 12);
	ck_assert_msg(envelope_decode(buf_data(&b), buf_len(&b), &e, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(e.sender, "a@b");
	ck_assert_uint_eq(e.nrcpt, 1);
	ck_assert_str_eq(e.rcpts[0].addr, "c@d");
	ck_assert_ptr_null(e.rcpts[0].orcpt);
	ck_assert_str_eq(e.helo, "helo.example");
	envelope_free(&e);
	buf_free(&b);
}
END_TEST

START_TEST(test_record_max)
{
	struct envelope e;
	char err[128] = "";
	char *big;

	envelope_init(&e);
	big = calloc(1, ENVELOPE_RECORD_MAX + 1);
	ck_assert_ptr_nonnull(big);
	memcpy(big, "TENV\x00\x01", 6);
	ck_assert_int_eq(envelope_decode(big, ENVELOPE_RECORD_MAX + 1, &e, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "too large"));
	free(big);
	envelope_free(&e);
}
END_TEST

/* ---- fuzz ---- */

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random flips and cuts of valid records: decode may succeed or fail, but
 * must not crash, leak or leave a half-filled envelope on failure. */
START_TEST(test_fuzz)
{
	struct envelope in, out;
	struct buf b, re;
	unsigned char *rec;
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)_i;
	size_t len, n, cut;
	char err[128];
	int iter, k, flips, ok = 0;

	envelope_init(&in);
	envelope_init(&out);
	buf_init(&b, REC_MAX);
	buf_init(&re, ENVELOPE_RECORD_MAX);
	(_i == 0 ? env_full : _i == 1 ? env_utf8 : env_minimal)(&in);
	ck_assert_int_eq(envelope_encode(&in, &b), BUF_OK);
	len = buf_len(&b);
	rec = malloc(len);
	ck_assert_ptr_nonnull(rec);
	for (iter = 0; iter < 4000; iter++) {
		memcpy(rec, buf_data(&b), len);
		flips = 1 + (int)(xorshift(&seed) % 4);
		for (k = 0; k < flips; k++) {
			n = xorshift(&seed) % len;
			if (xorshift(&seed) & 1)
				rec[n] ^= (unsigned char)(1u << (xorshift(&seed) % 8));
			else
				rec[n] = (unsigned char)xorshift(&seed);
		}
		cut = (xorshift(&seed) % 8 == 0) ? xorshift(&seed) % (len + 1) : len;
		if (envelope_decode(rec, cut, &out, err, sizeof(err)) == 0) {
			ok++;
			/* What decodes must encode again. */
			buf_reset(&re);
			ck_assert_int_eq(envelope_encode(&out, &re), BUF_OK);
		} else {
			assert_env_empty(&out);
		}
	}
	/* Flips in string bytes still decode: the loop saw both outcomes. */
	ck_assert_int_gt(ok, 0);
	ck_assert_int_lt(ok, 4000);
	free(rec);
	envelope_free(&in);
	envelope_free(&out);
	buf_free(&b);
	buf_free(&re);
}
END_TEST

static Suite *
envelope_suite(void)
{
	Suite *s = suite_create("envelope");
	TCase *tc = tcase_create("codec");

	tcase_add_loop_test(tc, test_roundtrip, 0, NROUNDTRIP);
	tcase_add_loop_test(tc, test_truncation, 0, NROUNDTRIP);
	tcase_add_test(tc, test_encode_too_big);
	tcase_add_test(tc, test_clear_keeps_storage);
	tcase_add_loop_test(tc, test_bad_record, 0, NBAD);
	tcase_add_test(tc, test_valid_handmade);
	tcase_add_test(tc, test_unknown_tags);
	tcase_add_test(tc, test_filter_field);
	tcase_add_test(tc, test_record_max);
	tcase_add_loop_test(tc, test_fuzz, 0, 3);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(envelope_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
