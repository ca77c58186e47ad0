/*
 * sendmail_args: the command line, one row per invocation: modes from -b,
 * -q and the program's name, bundled flags, attached and separate values,
 * options after the recipients, "--", -o options ignored, and the bad
 * flags that are EX_USAGE with a one-line reason.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "tools/sendmail_args.h"

#define ARGV_MAX 12

struct args_row {
	const char *argv[ARGV_MAX];	/* NULL-terminated */
	const char *err;		/* a substring of the error, or NULL for success */
	enum sendmail_mode mode;
	bool extract, ignore_dots, verbose;
	const char *sender, *full_name, *config, *ret, *envid, *body, *site, *id;
	unsigned notify;
	const char *rcpts;		/* comma-joined */
};

static const struct args_row rows[] = {
	{ { "sendmail", "-t", "-i", NULL }, .extract = true, .ignore_dots = true, .rcpts = "" },
	{ { "/usr/sbin/sendmail", "-ti", "-fbob@x", "a@b", NULL }, .extract = true,
	  .ignore_dots = true, .sender = "bob@x", .rcpts = "a@b" },
	{ { "sendmail", "-oi", "-oem", "-odb", "a@b", NULL }, .ignore_dots = true, .rcpts = "a@b" },
	{ { "sendmail", "a@b", "-f", "x@y", "c@d", NULL }, .sender = "x@y", .rcpts = "a@b,c@d" },
	{ { "sendmail", "-r", "x@y", "a@b", NULL }, .sender = "x@y", .rcpts = "a@b" },
	{ { "sendmail", "-f", "<>", "a@b", NULL }, .sender = "<>", .rcpts = "a@b" },
	{ { "sendmail", "--", "-a@b", "-", NULL }, .rcpts = "-a@b,-" },
	{ { "sendmail", "-F", "Ann Ex", "-C/etc/t.conf", "a@b", NULL }, .full_name = "Ann Ex",
	  .config = "/etc/t.conf", .rcpts = "a@b" },
	{ { "sendmail", "-v", "-L", "x", "-h", "17", "-n", "-m", "-G", "-U", "a@b", NULL },
	  .verbose = true, .rcpts = "a@b" },
	{ { "sendmail", "-bs", NULL }, .mode = SENDMAIL_MODE_SMTP, .rcpts = "" },
	{ { "sendmail", "-b", "p", NULL }, .mode = SENDMAIL_MODE_LIST, .rcpts = "" },
	{ { "sendmail", "-bi", NULL }, .mode = SENDMAIL_MODE_ALIASES, .rcpts = "" },
	{ { "sendmail", "-I", NULL }, .mode = SENDMAIL_MODE_ALIASES, .rcpts = "" },
	{ { "sendmail", "-bm", "a@b", NULL }, .mode = SENDMAIL_MODE_DELIVER, .rcpts = "a@b" },
	{ { "mailq", NULL }, .mode = SENDMAIL_MODE_LIST, .rcpts = "" },
	{ { "/usr/bin/newaliases", NULL }, .mode = SENDMAIL_MODE_ALIASES, .rcpts = "" },
	{ { "sendmail", "-q", NULL }, .mode = SENDMAIL_MODE_FLUSH, .rcpts = "" },
	{ { "sendmail", "-qRexample.org", NULL }, .mode = SENDMAIL_MODE_FLUSH,
	  .site = "example.org", .rcpts = "" },
	{ { "sendmail", "-qR", "example.org", NULL }, .mode = SENDMAIL_MODE_FLUSH,
	  .site = "example.org", .rcpts = "" },
	{ { "sendmail", "-qI", "0123456789ABCD", NULL }, .mode = SENDMAIL_MODE_FLUSH,
	  .id = "0123456789ABCD", .rcpts = "" },
	{ { "sendmail", "-q30m", NULL }, .mode = SENDMAIL_MODE_NOTHING, .rcpts = "" },
	{ { "sendmail", "-N", "success,FAILURE", "-R", "hdrs", "-V", "id-1", "-B", "8bitmime",
	    "a@b", NULL }, .notify = SENDMAIL_NOTIFY_SUCCESS | SENDMAIL_NOTIFY_FAILURE,
	  .ret = "HDRS", .envid = "id-1", .body = "8BITMIME", .rcpts = "a@b" },
	{ { "sendmail", "-Nnever", "-RFULL", "-B7BIT", "a@b", NULL },
	  .notify = SENDMAIL_NOTIFY_NEVER, .ret = "FULL", .body = "7BIT", .rcpts = "a@b" },
	/* The errors: EX_USAGE with a reason. */
	{ { "sendmail", "-z", NULL }, .err = "illegal option -- z" },
	{ { "sendmail", "-tz", NULL }, .err = "illegal option -- z" },
	{ { "sendmail", "-f", NULL }, .err = "requires an argument -- f" },
	{ { "sendmail", "-", NULL }, .err = "illegal option" },
	{ { "sendmail", "-bd", NULL }, .err = "unsupported mode" },
	{ { "sendmail", "-bxy", NULL }, .err = "unsupported mode" },
	{ { "sendmail", "-qX", NULL }, .err = "unsupported" },
	{ { "sendmail", "-qR", NULL }, .err = "requires an argument -- qR" },
	{ { "sendmail", "-N", "never,success", NULL }, .err = "-N" },
	{ { "sendmail", "-N", "success,", NULL }, .err = "-N" },
	{ { "sendmail", "-Nbogus", NULL }, .err = "-N" },
	{ { "sendmail", "-R", "x", NULL }, .err = "-R" },
	{ { "sendmail", "-V", "a b", NULL }, .err = "-V" },
	{ { "sendmail", "-B", "9bit", NULL }, .err = "-B" },
};

static void
str_eq(int row, const char *what, const char *got, const char *want)
{
	ck_assert_msg((got == NULL && want == NULL) ||
	              (got != NULL && want != NULL && strcmp(got, want) == 0),
	              "row %d: %s is \"%s\", want \"%s\"", row, what, got ? got : "(null)",
	              want ? want : "(null)");
}

START_TEST(test_rows)
{
	const struct args_row *row = &rows[_i];
	struct sendmail_args a;
	char err[300] = "", joined[512] = "";
	int argc = 0, rc;

	while (row->argv[argc] != NULL)
		argc++;
	rc = sendmail_args_parse(argc, (char **)row->argv, &a, err, sizeof(err));
	if (row->err != NULL) {
		ck_assert_msg(rc < 0, "row %d: should fail", _i);
		ck_assert_msg(strstr(err, row->err) != NULL, "row %d: error \"%s\"", _i, err);
		ck_assert_msg(strchr(err, '\n') == NULL, "row %d: one line", _i);
		return;
	}
	ck_assert_msg(rc == 0, "row %d: %s", _i, err);
	ck_assert_int_eq(a.mode, row->mode);
	ck_assert_int_eq(a.extract, row->extract);
	ck_assert_int_eq(a.ignore_dots, row->ignore_dots);
	ck_assert_int_eq(a.verbose, row->verbose);
	ck_assert_uint_eq(a.notify, row->notify);
	str_eq(_i, "sender", a.sender, row->sender);
	str_eq(_i, "full name", a.full_name, row->full_name);
	str_eq(_i, "config", a.config, row->config);
	str_eq(_i, "ret", a.ret, row->ret);
	str_eq(_i, "envid", a.envid, row->envid);
	str_eq(_i, "body", a.body, row->body);
	str_eq(_i, "site", a.flush_site, row->site);
	str_eq(_i, "id", a.flush_id, row->id);
	for (size_t i = 0; i < a.nrcpts; i++) {
		strcat(joined, i ? "," : "");
		strcat(joined, a.rcpts[i]);
	}
	str_eq(_i, "recipients", joined, row->rcpts);
	sendmail_args_free(&a);
}
END_TEST

START_TEST(test_progname)
{
	ck_assert_str_eq(sendmail_args_progname("/usr/sbin/sendmail"), "sendmail");
	ck_assert_str_eq(sendmail_args_progname("mailq"), "mailq");
	ck_assert_str_eq(sendmail_args_progname(NULL), "sendmail");
	ck_assert_str_eq(sendmail_args_progname(""), "sendmail");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sendmail_args");
	TCase *tc = tcase_create("rows");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_rows, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, test_progname);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
