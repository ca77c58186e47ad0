/* Unit tests for delivery/smtp_nexthop.c: Postfix's next-hop forms. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/smtp_nexthop.h"

static struct smtp_nexthop nh;
static char err[200];

static int
parse(const char *s)
{
	err[0] = '\0';
	return smtp_nexthop_parse(s, 25, &nh, err, sizeof(err));
}

START_TEST(test_domains)
{
	ck_assert_int_eq(parse("Example.ORG"), 0);
	ck_assert_str_eq(nh.host, "example.org");
	ck_assert(nh.mx && !nh.literal);
	ck_assert_uint_eq(nh.port, 25);
	ck_assert_int_eq(parse("example.org.:2525"), 0);
	ck_assert_str_eq(nh.host, "example.org");
	ck_assert_uint_eq(nh.port, 2525);
	ck_assert(nh.mx);
	ck_assert_int_eq(parse("[Mail.Example.org]"), 0);
	ck_assert_str_eq(nh.host, "mail.example.org");
	ck_assert(!nh.mx && !nh.literal);
	ck_assert_int_eq(parse("[mail.example.org]:submission"), 0);
	ck_assert_uint_eq(nh.port, 587);
	ck_assert_int_eq(parse("_dmarc-x.example.org"), 0);
}
END_TEST

START_TEST(test_literals)
{
	ck_assert_int_eq(parse("[192.0.2.7]"), 0);
	ck_assert_str_eq(nh.host, "192.0.2.7");
	ck_assert(nh.literal && !nh.mx);
	ck_assert_int_eq(parse("192.0.2.7:2525"), 0);
	ck_assert(nh.literal && !nh.mx);
	ck_assert_uint_eq(nh.port, 2525);
	ck_assert_int_eq(parse("[IPv6:2001:DB8::7]:26"), 0);
	ck_assert_str_eq(nh.host, "2001:db8::7");
	ck_assert_uint_eq(nh.port, 26);
	ck_assert(nh.literal);
	ck_assert_int_eq(parse("[::1]"), 0);
	ck_assert_str_eq(nh.host, "::1");
	ck_assert_int_eq(parse("2001:db8::7"), 0);
	ck_assert(nh.literal);
	ck_assert_uint_eq(nh.port, 25);
}
END_TEST

START_TEST(test_errors)
{
	static const char *bad[] = {
		"", "[", "[]", "[host", "[host]x", "host:0", "host:65536", "host:", "host:2x",
		"ho st", "-host.example", "host-.example", "a..b", ".", "[IPv6:]",
		"example.org:99999999",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse(bad[i]) < 0, "accepted \"%s\"", bad[i]);
		ck_assert(err[0] != '\0');
	}
}
END_TEST

START_TEST(test_lmtp)
{
	ck_assert_int_eq(smtp_nexthop_parse_lmtp("unix:/run/dovecot/lmtp", 24, &nh, err, sizeof(err)),
	                 0);
	ck_assert(nh.unix_socket);
	ck_assert_str_eq(nh.path, "/run/dovecot/lmtp");
	ck_assert_int_eq(smtp_nexthop_parse_lmtp("unix:private/dovecot-lmtp", 24, &nh, err,
	                                         sizeof(err)),
	                 0);
	ck_assert_str_eq(nh.path, "private/dovecot-lmtp");	/* the caller makes it absolute */
	ck_assert_int_eq(smtp_nexthop_parse_lmtp("inet:mail.example.org", 24, &nh, err, sizeof(err)),
	                 0);
	ck_assert(!nh.unix_socket && !nh.mx);	/* LMTP never looks up MX */
	ck_assert_str_eq(nh.host, "mail.example.org");
	ck_assert_uint_eq(nh.port, 24);
	ck_assert_int_eq(smtp_nexthop_parse_lmtp("inet:[192.0.2.7]:2424", 24, &nh, err, sizeof(err)),
	                 0);
	ck_assert(nh.literal && !nh.mx);
	ck_assert_uint_eq(nh.port, 2424);
	ck_assert_int_eq(smtp_nexthop_parse_lmtp("127.0.0.1:24", 24, &nh, err, sizeof(err)), 0);
	ck_assert(nh.literal);
	ck_assert_int_eq(smtp_nexthop_parse_lmtp("unix:", 24, &nh, err, sizeof(err)), -1);
	{
		char longp[200] = "unix:/";

		memset(longp + 6, 'a', 150);
		longp[156] = '\0';
		ck_assert_int_eq(smtp_nexthop_parse_lmtp(longp, 24, &nh, err, sizeof(err)), -1);
	}
	ck_assert_int_eq(smtp_nexthop_parse_lmtp("inet:host:0", 24, &nh, err, sizeof(err)), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("smtp_nexthop");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_domains);
	tcase_add_test(tc, test_literals);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_lmtp);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
