/* Unit tests for delivery/local_rcpt.c: a local recipient as Postfix's
 * local(8) reads it. Table-driven, with hostile rows. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "delivery/local_rcpt.h"

static const struct {
	const char *addr, *delims;
	const char *local, *user, *ext, *domain;
} parse_rows[] = {
	{ "bob@localhost", "+", "bob", "bob", "", "localhost" },
	{ "Bob+Tag@Tern.TEST", "+", "bob+tag", "bob", "tag", "tern.test" },
	{ "bob+tag@tern.test", "", "bob+tag", "bob+tag", "", "tern.test" },	/* no delimiter */
	{ "bob+a+b@x", "+", "bob+a+b", "bob", "a+b", "x" },		/* the first one splits */
	{ "bob-x+y@x", "+-", "bob-x+y", "bob", "x+y", "x" },		/* any character of the set */
	{ "bob+@x", "+", "bob+", "bob", "", "x" },			/* empty extension */
	{ "+tag@x", "+", "+tag", "+tag", "", "x" },			/* an empty user: no split */
	{ "bob+a/b@x", "+", "bob+a/b", "bob", "", "x" },		/* illegal extension dropped */
	{ "postmaster+x@x", "+", "postmaster+x", "postmaster", "x", "x" },
	{ "Postmaster@x", "+", "postmaster", "postmaster", "", "x" },
	{ "owner-list@x", "-", "owner-list", "owner-list", "", "x" },	/* owner_request_special */
	{ "list-request@x", "-", "list-request", "list-request", "", "x" },
	{ "double-bounce@x", "-", "double-bounce", "double-bounce", "", "x" },
	{ "mailer-daemon@x", "-", "mailer-daemon", "mailer-daemon", "", "x" },
	{ "a-b@x", "-", "a-b", "a", "b", "x" },
	{ "\"John Doe\"@x", "+", "john doe", "john doe", "", "x" },	/* quotes go */
	{ "\"a\\\"b\"@x", "+", "a\"b", "a\"b", "", "x" },		/* a quoted-pair */
	{ "\"a@b\"@x", "+", "a@b", "a@b", "", "x" },			/* the last '@' splits */
	{ "\"a+b\"@x", "+", "a+b", "a", "b", "x" },			/* as the address resolver */
	{ "root", "+", "root", "root", "", "" },			/* no domain */
	{ "@x", "+", "", "", "", "x" },
	{ "bob@x.", "+", "bob", "bob", "", "x." },
	{ "../../etc/passwd@x", "+", "../../etc/passwd", "../../etc/passwd", "", "x" },
};

START_TEST(test_parse)
{
	struct local_rcpt r;

	ck_assert_int_eq(local_rcpt_parse(parse_rows[_i].addr, parse_rows[_i].delims, NULL, &r), 0);
	ck_assert_str_eq(r.local, parse_rows[_i].local);
	ck_assert_str_eq(r.user, parse_rows[_i].user);
	ck_assert_str_eq(r.extension, parse_rows[_i].ext);
	ck_assert_str_eq(r.domain, parse_rows[_i].domain);
}
END_TEST

START_TEST(test_parse_limits)
{
	char big[LOCAL_RCPT_PART_MAX + 8];
	struct local_rcpt r;

	memset(big, 'a', sizeof(big));
	big[LOCAL_RCPT_PART_MAX - 1] = '\0';	/* the longest that fits */
	ck_assert_int_eq(local_rcpt_parse(big, "+", NULL, &r), 0);
	ck_assert_uint_eq(strlen(r.user), LOCAL_RCPT_PART_MAX - 1);
	big[LOCAL_RCPT_PART_MAX - 1] = 'a';
	big[LOCAL_RCPT_PART_MAX] = '\0';
	ck_assert_int_eq(local_rcpt_parse(big, "+", NULL, &r), -1);
	/* A custom double_bounce name is not split either. */
	ck_assert_int_eq(local_rcpt_parse("bounce-me@x", "-", "bounce-me", &r), 0);
	ck_assert_str_eq(r.user, "bounce-me");
	/* A trailing backslash is kept as it is. */
	ck_assert_int_eq(local_rcpt_parse("a\\@x", "+", NULL, &r), 0);
	ck_assert_str_eq(r.local, "a\\");
}
END_TEST

START_TEST(test_user_safe)
{
	static const char *good[] = { "bob", "root", "a.b", "..a", "john doe", "a..b" };
	static const char *bad[] = { "", ".", "..", "a/b", "/", "../x" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(local_rcpt_user_safe(good[i]), "refused \"%s\"", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!local_rcpt_user_safe(bad[i]), "accepted \"%s\"", bad[i]);
}
END_TEST

static const struct {
	const char *home_mailbox, *home, *spool, *user;
	int rc;
	const char *path;
	bool maildir, in_spool;
} box_rows[] = {
	{ "", "/home/bob", "/var/mail", "bob", 0, "/var/mail/bob", false, true },
	{ "", "/home/bob", "/var/tmp/x/mail/", "bob", 0, "/var/tmp/x/mail/bob/", true, true },
	{ "Maildir/", "/home/bob", "/var/mail", "bob", 0, "/home/bob/Maildir/", true, false },
	{ "Mailbox", "/home/bob", "/var/mail/", "bob", 0, "/home/bob/Mailbox", false, false },
	{ "Maildir/", "/", "/var/mail", "bob", 0, "/Maildir/", true, false },
	{ "mail/inbox/", "/home/bob/", "", "bob", 0, "/home/bob/mail/inbox/", true, false },
	{ "Maildir/", "", "/var/mail", "bob", -1, NULL, false, false },	/* no home */
	{ "", "/home/bob", "", "bob", -1, NULL, false, false },		/* no spool */
};

START_TEST(test_mailbox)
{
	char path[64];
	bool maildir = !box_rows[_i].maildir, in_spool = !box_rows[_i].in_spool;
	int rc = local_rcpt_mailbox(box_rows[_i].home_mailbox, box_rows[_i].home, box_rows[_i].spool,
	                            box_rows[_i].user, path, sizeof(path), &maildir, &in_spool);

	ck_assert_int_eq(rc, box_rows[_i].rc);
	if (rc < 0)
		return;
	ck_assert_str_eq(path, box_rows[_i].path);
	ck_assert(maildir == box_rows[_i].maildir);
	ck_assert(in_spool == box_rows[_i].in_spool);
}
END_TEST

START_TEST(test_mailbox_too_long)
{
	char path[16];
	bool m, s;

	ck_assert_int_eq(local_rcpt_mailbox("", "/h", "/var/mail", "a", path, sizeof(path), &m, &s), 0);
	ck_assert_int_eq(local_rcpt_mailbox("", "/h", "/var/mail", "abcdefgh", path, sizeof(path), &m,
	                                    &s), -1);
}
END_TEST

START_TEST(test_spool_gid)
{
	/* world-writable: the user's; group-writable: the directory's,
	 * unless it is root's; otherwise the user's. */
	ck_assert_uint_eq(local_rcpt_spool_gid(S_IFDIR | 01777, 8, 1000), 1000);
	ck_assert_uint_eq(local_rcpt_spool_gid(S_IFDIR | 02775, 8, 1000), 8);
	ck_assert_uint_eq(local_rcpt_spool_gid(S_IFDIR | 02775, 0, 1000), 1000);
	ck_assert_uint_eq(local_rcpt_spool_gid(S_IFDIR | 0755, 8, 1000), 1000);
	ck_assert_uint_eq(local_rcpt_spool_gid(S_IFDIR | 0777, 8, 1000), 1000);
}
END_TEST

START_TEST(test_orcpt)
{
	ck_assert_ptr_null(local_rcpt_orcpt_addr(NULL));
	ck_assert_str_eq(local_rcpt_orcpt_addr("rfc822;bob@x"), "bob@x");
	ck_assert_str_eq(local_rcpt_orcpt_addr("RFC822;bob@x"), "bob@x");
	ck_assert_str_eq(local_rcpt_orcpt_addr("utf-8;b\xc3\xb6" "b@x"), "b\xc3\xb6" "b@x");
	ck_assert_ptr_null(local_rcpt_orcpt_addr("rfc822;"));
	ck_assert_ptr_null(local_rcpt_orcpt_addr("x400;c=us"));
	ck_assert_ptr_null(local_rcpt_orcpt_addr("bob@x"));
	ck_assert_ptr_null(local_rcpt_orcpt_addr(""));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("local_rcpt");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_parse, 0, sizeof(parse_rows) / sizeof(parse_rows[0]));
	tcase_add_test(tc, test_parse_limits);
	tcase_add_test(tc, test_user_safe);
	tcase_add_loop_test(tc, test_mailbox, 0, sizeof(box_rows) / sizeof(box_rows[0]));
	tcase_add_test(tc, test_mailbox_too_long);
	tcase_add_test(tc, test_spool_gid);
	tcase_add_test(tc, test_orcpt);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
