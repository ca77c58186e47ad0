/*
 * Unit tests for milter_proto: the frames we send (byte for byte), the
 * parser of filter replies on good and hostile input (one row per frame),
 * a frame fed one byte at a time, and the reply code check.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/milter_proto.h"

static void
expect_bytes(const struct buf *b, const char *want, size_t len)
{
	ck_assert_uint_eq(buf_len(b), len);
	ck_assert_msg(memcmp(buf_data(b), want, len) == 0, "frame bytes differ");
}

START_TEST(test_encode)
{
	static const char *const names[] = { "j", "{daemon_name}" };
	static const char *const values[] = { "mx.test", "smtpd" };
	static const char *const mail[] = { "<a@x.test>", "SIZE=10" };
	struct buf b;

	buf_init(&b, 4096);
	ck_assert_int_eq(milter_proto_optneg(&b, 6, MILTER_ACT_ALL, MILTER_P_V6), BUF_OK);
	expect_bytes(&b, "\0\0\0\x0dO\0\0\0\x06\0\0\x01\xff\0\x1f\xff\xff", 17);
	buf_reset(&b);
	ck_assert_int_eq(milter_proto_macros(&b, 'C', names, values, 2), BUF_OK);
	expect_bytes(&b, "\0\0\0\x20" "DC" "j\0mx.test\0{daemon_name}\0smtpd\0", 36);
	buf_reset(&b);
	ck_assert_int_eq(milter_proto_connect(&b, "c.test", MILTER_FAMILY_INET, 2525, "192.0.2.1"),
	    BUF_OK);
	expect_bytes(&b, "\0\0\0\x15" "Cc.test\0" "4\x09\xdd" "192.0.2.1\0", 25);
	buf_reset(&b);
	ck_assert_int_eq(milter_proto_connect(&b, "c.test", MILTER_FAMILY_UNKNOWN, 0, ""), BUF_OK);
	expect_bytes(&b, "\0\0\0\x09" "Cc.test\0U", 13);
	buf_reset(&b);
	ck_assert_int_eq(milter_proto_strings(&b, MILTER_CMD_MAIL, mail, 2), BUF_OK);
	expect_bytes(&b, "\0\0\0\x14M<a@x.test>\0SIZE=10\0", 24);
	buf_reset(&b);
	ck_assert_int_eq(milter_proto_body(&b, "hi\r\n", 4), BUF_OK);
	expect_bytes(&b, "\0\0\0\x05" "Bhi\r\n", 9);
	buf_reset(&b);
	ck_assert_int_eq(milter_proto_empty(&b, MILTER_CMD_EOB), BUF_OK);
	expect_bytes(&b, "\0\0\0\x01" "E", 5);
	buf_free(&b);
}
END_TEST

START_TEST(test_encode_full)
{
	struct buf b;
	char big[MILTER_BODY_CHUNK + 1];

	memset(big, 'x', sizeof(big));
	buf_init(&b, 16);
	/* Nothing half written when the buffer is full. */
	ck_assert_int_eq(milter_proto_body(&b, big, 20), BUF_TOO_BIG);
	ck_assert_uint_eq(buf_len(&b), 0);
	buf_free(&b);
	buf_init(&b, 2 * sizeof(big));
	ck_assert_int_eq(milter_proto_body(&b, big, sizeof(big)), BUF_TOO_BIG);
	ck_assert_int_eq(milter_proto_body(&b, big, MILTER_BODY_CHUNK), BUF_OK);
	buf_free(&b);
}
END_TEST

/* One reply frame and what the parser must make of it. */
static const struct decode_row {
	const char *bytes;
	size_t len;
	bool optneg;
	int result;		/* enum milter_proto_result */
	char cmd;
	const char *s1, *s2;
	uint32_t index;
} decode_rows[] = {
	{ "\0\0\0\x01" "c", 5, false, MILTER_PROTO_OK, 'c', NULL, NULL, 0 },
	{ "\0\0\0\x01" "a", 5, false, MILTER_PROTO_OK, 'a', NULL, NULL, 0 },
	{ "\0\0\0\x01" "p", 5, false, MILTER_PROTO_OK, 'p', NULL, NULL, 0 },
	{ "\0\0\0\x0e" "y550 5.7.1 no\0", 18, false, MILTER_PROTO_OK, 'y', "550 5.7.1 no", NULL, 0 },
	{ "\0\0\0\x07" "hX-A\0b\0", 11, false, MILTER_PROTO_OK, 'h', "X-A", "b", 0 },
	{ "\0\0\0\x0b" "m\0\0\0\x02X-A\0b\0", 15, false, MILTER_PROTO_OK, 'm', "X-A", "b", 2 },
	{ "\0\0\0\x08" "i\0\0\0\0X\0\0", 12, false, MILTER_PROTO_OK, 'i', "X", "", 0 },
	{ "\0\0\0\x07" "e<a@b>\0", 11, false, MILTER_PROTO_OK, 'e', "<a@b>", NULL, 0 },
	{ "\0\0\0\x0b" "2<a@b>\0X=1\0", 15, false, MILTER_PROTO_OK, '2', "<a@b>", "X=1", 0 },
	{ "\0\0\0\x07" "+<a@b>\0", 11, false, MILTER_PROTO_OK, '+', "<a@b>", NULL, 0 },
	{ "\0\0\0\x07" "-<a@b>\0", 11, false, MILTER_PROTO_OK, '-', "<a@b>", NULL, 0 },
	{ "\0\0\0\x05" "qwhy\0", 9, false, MILTER_PROTO_OK, 'q', "why", NULL, 0 },
	{ "\0\0\0\x0d" "O\0\0\0\x06\0\0\0\x01\0\0\0\0", 17, true, MILTER_PROTO_OK, 'O', NULL, NULL,
	  0 },
	/* Incomplete: header, payload. */
	{ "\0\0\0", 3, false, MILTER_PROTO_MORE, 0, NULL, NULL, 0 },
	{ "\0\0\0\x07" "hX-A\0", 9, false, MILTER_PROTO_MORE, 0, NULL, NULL, 0 },
	/* Hostile: zero length, huge length, unknown reply, data after a
	 * flag reply, a string without NUL, a missing index, bytes left
	 * over, a second string missing, an OPTNEG expected but not sent,
	 * an OPTNEG reply too short, a broken macro list. */
	{ "\0\0\0\0", 4, false, MILTER_PROTO_BAD, 0, NULL, NULL, 0 },
	{ "\x7f\xff\xff\xff" "c", 5, false, MILTER_PROTO_BAD, 0, NULL, NULL, 0 },
	{ "\0\x04\0\x01" "c", 5, false, MILTER_PROTO_BAD, 0, NULL, NULL, 0 },
	{ "\0\0\0\x01" "Z", 5, false, MILTER_PROTO_BAD, 0, NULL, NULL, 0 },
	{ "\0\0\0\x02" "cx", 6, false, MILTER_PROTO_BAD, 0, NULL, NULL, 0 },
	{ "\0\0\0\x04" "y550", 8, false, MILTER_PROTO_BAD, 0, NULL, NULL, 0 },
	{ "\0\0\0\x03" "m\0\0", 7, false, MILTER_PROTO_BAD, 0, NULL, NULL, 0 },
	{ "\0\0\0\x08" "hX-A\0b\0z", 12, false, MILTER_PROTO_BAD, 0, NULL, NULL, 0 },
	{ "\0\0\0\x05" "hX-A\0", 9, false, MILTER_PROTO_BAD, 0, NULL, NULL, 0 },
	{ "\0\0\0\x01" "c", 5, true, MILTER_PROTO_BAD, 0, NULL, NULL, 0 },
	{ "\0\0\0\x05" "O\0\0\0\x06", 9, true, MILTER_PROTO_BAD, 0, NULL, NULL, 0 },
	{ "\0\0\0\x11" "O\0\0\0\x06\0\0\0\x01\0\0\0\0\0\0\0\x01", 21, true, MILTER_PROTO_BAD, 0,
	  NULL, NULL, 0 },
	{ "\0\0\0\x01" "\0", 5, false, MILTER_PROTO_BAD, 0, NULL, NULL, 0 },
};

START_TEST(test_decode)
{
	const struct decode_row *row = &decode_rows[_i];
	struct milter_reply r;
	const char *why = NULL;
	size_t used = 0;
	enum milter_proto_result res;

	res = milter_proto_decode(row->bytes, row->len, row->optneg, &r, &used, &why);
	ck_assert_msg((int)res == row->result, "row %d: result %d, want %d (%s)", _i, res,
	    row->result, why ? why : "");
	if (res == MILTER_PROTO_BAD)
		ck_assert_ptr_nonnull(why);
	if (res != MILTER_PROTO_OK)
		return;
	ck_assert_uint_eq(used, row->len);
	ck_assert_int_eq(r.cmd, row->cmd);
	ck_assert_uint_eq(r.index, row->index);
	if (row->s1 != NULL)
		ck_assert_str_eq(r.s1, row->s1);
	if (row->s2 != NULL)
		ck_assert_str_eq(r.s2, row->s2);
	else if (row->cmd == 'e' || row->cmd == '+')
		ck_assert_ptr_null(r.s2);
}
END_TEST

START_TEST(test_decode_optneg)
{
	/* version 6, actions 0x11, protocol 0x100000, macro lists for
	 * stages 2 and 9 (unknown: ignored). */
	static const char f[] = "\0\0\0\x27" "O" "\0\0\0\x06" "\0\0\0\x11" "\0\x10\0\0"
	    "\0\0\0\x02" "i {auth_type}\0" "\0\0\0\x09" "x y\0";
	struct milter_reply r;
	const char *why = NULL;
	size_t used;

	ck_assert_int_eq(milter_proto_decode(f, sizeof(f) - 1, true, &r, &used, &why),
	    MILTER_PROTO_OK);
	ck_assert_uint_eq(used, sizeof(f) - 1);
	ck_assert_uint_eq(r.version, 6);
	ck_assert_uint_eq(r.actions, 0x11);
	ck_assert_uint_eq(r.protocol, MILTER_P_HDR_LEADSPC);
	ck_assert_str_eq(r.macros[MILTER_STAGE_MAIL], "i {auth_type}");
	ck_assert_ptr_null(r.macros[MILTER_STAGE_RCPT]);
}
END_TEST

START_TEST(test_decode_bytewise)
{
	/* Two frames back to back, the buffer growing a byte at a time: MORE
	 * until each is whole, never a read past the end. */
	static const char f[] = "\0\0\0\x07" "hX-A\0b\0" "\0\0\0\x05" "bbody";
	struct milter_reply r;
	const char *why;
	size_t used, off = 0, len;
	int frames = 0;
	char *copy;

	for (len = 1; off < sizeof(f) - 1 && len <= sizeof(f) - 1 - off; len++) {
		copy = malloc(len);
		memcpy(copy, f + off, len);
		switch (milter_proto_decode(copy, len, false, &r, &used, &why)) {
		case MILTER_PROTO_OK:
			frames++;
			if (r.cmd == 'b')
				ck_assert(r.data_len == 4 && memcmp(r.data, "body", 4) == 0);
			off += used;
			len = 0;
			break;
		case MILTER_PROTO_MORE:
			break;
		default:
			ck_abort_msg("bad at offset %zu length %zu", off, len);
		}
		free(copy);
	}
	ck_assert_int_eq(frames, 2);
	ck_assert_uint_eq(off, sizeof(f) - 1);
}
END_TEST

static const struct replycode_row {
	const char *text;
	int ok;
	int code;
} replycode_rows[] = {
	{ "550 5.7.1 go away", 1, 550 },
	{ "451 4.7.1 later", 1, 451 },
	{ "554-5.7.9 one\r\n554 5.7.9 two", 1, 554 },
	{ "550 no enhanced code", 1, 550 },
	{ "250 2.0.0 ok", 0, 0 },		/* not 4xx/5xx */
	{ "550 4.7.1 mixed", 0, 0 },		/* enhanced code of another class */
	{ "55 short", 0, 0 },
	{ "550x text", 0, 0 },
	{ "550-5.7.1 one\r\n551 5.7.1 two", 0, 0 },	/* codes differ */
	{ "550-5.7.1 only a first line", 0, 0 },	/* no last line */
	{ "550 5.7.1 one\r\n550 5.7.1 two", 0, 0 },	/* text after the last line */
	{ "550 5.7.1 bell\a", 0, 0 },		/* control character */
	{ "", 0, 0 },
};

START_TEST(test_replycode)
{
	const struct replycode_row *row = &replycode_rows[_i];
	const char *why = NULL;
	int code = -1, r;

	r = milter_proto_replycode_check(row->text, &code, &why);
	ck_assert_msg((r == 0) == row->ok, "row %d (%s): %d %s", _i, row->text, r, why ? why : "");
	if (row->ok)
		ck_assert_int_eq(code, row->code);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(milter_proto_cmd_name(MILTER_CMD_OPTNEG), "SMFIC_OPTNEG");
	ck_assert_str_eq(milter_proto_reply_name(MILTER_REPLY_REPLYCODE), "SMFIR_REPLYCODE");
	ck_assert_str_eq(milter_proto_reply_name('Z'), "(unknown filter reply)");
}
END_TEST

static Suite *
milter_proto_suite(void)
{
	Suite *s = suite_create("milter_proto");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_encode);
	tcase_add_test(tc, test_encode_full);
	tcase_add_loop_test(tc, test_decode, 0, sizeof(decode_rows) / sizeof(decode_rows[0]));
	tcase_add_test(tc, test_decode_optneg);
	tcase_add_test(tc, test_decode_bytewise);
	tcase_add_loop_test(tc, test_replycode, 0,
	    sizeof(replycode_rows) / sizeof(replycode_rows[0]));
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(milter_proto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
