/*
 * sendmail_smtp: reply parsing (single and multi-line, LF or CRLF,
 * partial input, garbage), the EHLO keywords sendmail uses, the exit
 * status of each refusal, and xtext.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "common/buf.h"
#include "tools/sendmail_smtp.h"

struct reply_row {
	const char *in;
	ssize_t used;		/* > 0 complete, 0 need more, -1 garbage */
	int code;
	const char *last;
};

static const struct reply_row reply_rows[] = {
	{ "220 tern.test ESMTP\r\n", 21, 220, "220 tern.test ESMTP" },
	{ "250 ok\n", 7, 250, "250 ok" },
	{ "250-a\r\n250 b\r\nNEXT", 14, 250, "250 b" },
	{ "250-a\r\n250", 0, 0, NULL },
	{ "250", 0, 0, NULL },
	{ "354\r\n", 5, 354, "354" },
	{ "hello\r\n", -1, 0, NULL },
	{ "25x ok\r\n", -1, 0, NULL },
	{ "250-a\r\n251 b\r\n", -1, 0, NULL },	/* the code changes */
	{ "250_x\r\n", -1, 0, NULL },
	{ "650 x\r\n", -1, 0, NULL },
	{ "550 5.1.1 <x>: \x1b[31mred\r\n", 25, 550, "550 5.1.1 <x>: ?[31mred" },
};

START_TEST(test_reply)
{
	const struct reply_row *row = &reply_rows[_i];
	struct sendmail_reply r;
	ssize_t used = sendmail_reply_parse(row->in, strlen(row->in), &r);

	ck_assert_msg(used == row->used, "row %d: used %zd", _i, used);
	if (used > 0) {
		ck_assert_int_eq(r.code, row->code);
		ck_assert_str_eq(r.last, row->last);
	}
}
END_TEST

START_TEST(test_ehlo)
{
	const char *ehlo = "250-tern.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-DSN\r\n"
	                   "250-SMTPUTF8\r\n250 8BITMIME\r\n";
	struct sendmail_reply r;

	ck_assert_int_eq(sendmail_reply_parse(ehlo, strlen(ehlo), &r), (ssize_t)strlen(ehlo));
	ck_assert(r.ext_pipelining && r.ext_dsn && r.ext_smtputf8 && r.ext_8bitmime && r.ext_size);
	ck_assert_uint_eq(r.size_limit, 10240000);
	ck_assert_int_eq(sendmail_reply_parse("250-x\r\n250 SIZE\r\n", 17, &r), 17);
	ck_assert(r.ext_size);
	ck_assert_uint_eq(r.size_limit, 0);
}
END_TEST

/* A reply with more lines than SENDMAIL_REPLY_LINES_MAX is garbage. */
START_TEST(test_reply_too_many_lines)
{
	struct buf b;
	struct sendmail_reply r;

	buf_init(&b, 64 * 1024);
	for (int i = 0; i < SENDMAIL_REPLY_LINES_MAX + 1; i++)
		buf_append_str(&b, "250-x\r\n");
	buf_append_str(&b, "250 end\r\n");
	ck_assert_int_eq(sendmail_reply_parse(buf_data(&b), buf_len(&b), &r), -1);
	buf_free(&b);
}
END_TEST

struct exit_row {
	enum sendmail_stage stage;
	int code;
	int want;
};

static const struct exit_row exit_rows[] = {
	{ SENDMAIL_STAGE_GREETING, 0, EX_TEMPFAIL },
	{ SENDMAIL_STAGE_GREETING, 421, EX_TEMPFAIL },
	{ SENDMAIL_STAGE_GREETING, 554, EX_UNAVAILABLE },
	{ SENDMAIL_STAGE_EHLO, 502, EX_UNAVAILABLE },
	{ SENDMAIL_STAGE_MAIL, 501, EX_DATAERR },
	{ SENDMAIL_STAGE_MAIL, 451, EX_TEMPFAIL },
	{ SENDMAIL_STAGE_RCPT, 550, EX_NOUSER },
	{ SENDMAIL_STAGE_RCPT, 554, EX_NOUSER },
	{ SENDMAIL_STAGE_RCPT, 452, EX_TEMPFAIL },
	{ SENDMAIL_STAGE_DATA, 554, EX_UNAVAILABLE },
	{ SENDMAIL_STAGE_DOT, 552, EX_DATAERR },
	{ SENDMAIL_STAGE_DOT, 451, EX_TEMPFAIL },
	{ SENDMAIL_STAGE_DOT, 0, EX_TEMPFAIL },
	{ SENDMAIL_STAGE_DOT, 354, EX_PROTOCOL },
};

START_TEST(test_exit)
{
	const struct exit_row *row = &exit_rows[_i];

	ck_assert_msg(sendmail_reply_exit(row->stage, row->code) == row->want, "row %d", _i);
}
END_TEST

START_TEST(test_xtext)
{
	struct buf b;

	buf_init(&b, 1024);
	sendmail_xtext(&b, "a+b=c");
	ck_assert_str_eq(buf_cstr(&b), "a+2Bb+3Dc");
	buf_reset(&b);
	sendmail_xtext(&b, "id-1");
	ck_assert_str_eq(buf_cstr(&b), "id-1");
	buf_free(&b);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sendmail_smtp");
	TCase *tc = tcase_create("rows");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_reply, 0, (int)(sizeof(reply_rows) / sizeof(reply_rows[0])));
	tcase_add_loop_test(tc, test_exit, 0, (int)(sizeof(exit_rows) / sizeof(exit_rows[0])));
	tcase_add_test(tc, test_ehlo);
	tcase_add_test(tc, test_reply_too_many_lines);
	tcase_add_test(tc, test_xtext);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
