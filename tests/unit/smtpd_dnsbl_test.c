/*
 * Unit tests for smtpd_dnsbl: zone specs and their reply patterns
 * (Postfix's ip_match syntax), query names for addresses and for names
 * (RHS lists, with Postfix's skips), the listing test on made-up A
 * answers, TXT reasons, and the reply code and status taken from an
 * expanded default_rbl_reply (the template language is tested in
 * config_rbl_reply_test.c). The lookups themselves run
 * against dnsmasq in tests/e2e/smtpd_restrict_test.py.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "smtpd/smtpd_dnsbl.h"

/* ---- specs and patterns ---- */

static const struct {
	const char *arg;
	int ok;			/* 0 or -1 */
	const char *zone;
	const char *listed;	/* answers that list, ';'-separated */
	const char *unlisted;	/* answers that do not */
} spec_rows[] = {
	{ "zen.example", 0, "zen.example", "127.0.0.2;127.0.0.11;10.1.2.3", "" },
	{ "ZEN.Example.=127.0.0.4", 0, "zen.example", "127.0.0.4", "127.0.0.2;127.0.0.5" },
	{ "bl.test=127.0.0.[2..11]", 0, "bl.test", "127.0.0.2;127.0.0.11;127.0.0.7",
	  "127.0.0.1;127.0.0.12" },
	{ "bl.test=127.0.0.[2;3]", 0, "bl.test", "127.0.0.2;127.0.0.3", "127.0.0.4" },
	{ "bl.test=127.0.[0;1].[2;4..6]", 0, "bl.test", "127.0.0.2;127.0.1.5;127.0.0.6",
	  "127.0.2.2;127.0.0.3;127.0.1.7" },
	{ "bl.test=[127.0.0.2]", 0, "bl.test", "127.0.0.2", "127.0.0.3" },
	{ "bl.test=[0..255].[0..255].[0..255].[0..255]", 0, "bl.test", "1.2.3.4;255.0.0.0", "" },
	{ "zen.example=127.0.0", -1, NULL, NULL, NULL },
	{ "zen.example=127.0.0.x", -1, NULL, NULL, NULL },
	{ "zen.example=127.0.0.256", -1, NULL, NULL, NULL },
	{ "zen.example=127.0.0.2.1", -1, NULL, NULL, NULL },
	{ "zen.example=127.0.0.[11..2]", -1, NULL, NULL, NULL },	/* low > high */
	{ "zen.example=127.0.0.[2;]", -1, NULL, NULL, NULL },
	{ "zen.example=127.0.0.[2", -1, NULL, NULL, NULL },
	{ "zen.example=127.0.0.3[6..9]", -1, NULL, NULL, NULL },
	{ "zen.example=127.0.[0.1]", -1, NULL, NULL, NULL },	/* a set spans one field */
	{ "zen.example=", -1, NULL, NULL, NULL },
	{ "=127.0.0.2", -1, NULL, NULL, NULL },
	{ "bad..zone", -1, NULL, NULL, NULL },
};

/* Does the A answer "a" list under spec? */
static bool
listed_by(const struct smtpd_dnsbl_spec *spec, const char *a)
{
	struct resolver_addr ans;

	memset(&ans, 0, sizeof(ans));
	ans.family = AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, a, ans.addr), 1);
	return smtpd_dnsbl_listed(spec, &ans, 1);
}

static void
check_answers(const struct smtpd_dnsbl_spec *spec, const char *list, bool want, const char *arg)
{
	char copy[256], *save = NULL, *a;

	snprintf(copy, sizeof(copy), "%s", list);
	for (a = strtok_r(copy, ";", &save); a != NULL; a = strtok_r(NULL, ";", &save))
		ck_assert_msg(listed_by(spec, a) == want, "%s: %s %s", arg, a,
		    want ? "not listed" : "listed");
}

START_TEST(test_spec)
{
	struct smtpd_dnsbl_spec spec;

	ck_assert_msg(smtpd_dnsbl_spec_parse(spec_rows[_i].arg, &spec) == spec_rows[_i].ok, "%s",
	    spec_rows[_i].arg);
	if (spec_rows[_i].ok < 0)
		return;
	ck_assert_str_eq(spec.zone, spec_rows[_i].zone);
	check_answers(&spec, spec_rows[_i].listed, true, spec_rows[_i].arg);
	check_answers(&spec, spec_rows[_i].unlisted, false, spec_rows[_i].arg);
}
END_TEST

START_TEST(test_listed_families)
{
	struct smtpd_dnsbl_spec spec;
	struct resolver_addr ans[2];

	memset(ans, 0, sizeof(ans));
	ck_assert_int_eq(smtpd_dnsbl_spec_parse("bl.test", &spec), 0);
	ck_assert(!smtpd_dnsbl_listed(&spec, ans, 0));
	/* An AAAA answer lists nothing: DNS lists answer with A records. */
	ans[0].family = AF_INET6;
	ck_assert(!smtpd_dnsbl_listed(&spec, ans, 1));
	ans[1].family = AF_INET;
	memcpy(ans[1].addr, (unsigned char[]){ 127, 0, 0, 2 }, 4);
	ck_assert(smtpd_dnsbl_listed(&spec, ans, 2));
}
END_TEST

/* ---- query names ---- */

START_TEST(test_query_names)
{
	unsigned char a6[16], a4[4] = { 192, 0, 2, 1 };
	char name[RESOLVER_NAME_SIZE], host[RESOLVER_NAME_SIZE];

	ck_assert_int_eq(smtpd_dnsbl_query_name(AF_INET, a4, "bl.test", name, sizeof(name)), 0);
	ck_assert_str_eq(name, "1.2.0.192.bl.test");
	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::567:89ab", a6), 1);
	ck_assert_int_eq(smtpd_dnsbl_query_name(AF_INET6, a6, "bl.test", name, sizeof(name)), 0);
	/* RFC 5782 section 2.4's example. */
	ck_assert_str_eq(name, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test");
	ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:192.0.2.1", a6), 1);
	ck_assert_int_eq(smtpd_dnsbl_query_name(AF_INET6, a6, "bl.test", name, sizeof(name)), 0);
	ck_assert_str_eq(name, "1.2.0.192.bl.test");
	ck_assert_int_eq(smtpd_dnsbl_query_name(AF_UNIX, a4, "bl.test", name, sizeof(name)), -1);

	/* RHS lists: the domain of an address, or the name itself. */
	ck_assert_int_eq(smtpd_dnsbl_domain_query_name("a@Spam.Example", "rhs.test", name,
	    sizeof(name)), 0);
	ck_assert_str_eq(name, "spam.example.rhs.test");
	ck_assert_int_eq(smtpd_dnsbl_domain_query_name("host.example.", "rhs.test", name,
	    sizeof(name)), 0);
	ck_assert_str_eq(name, "host.example.rhs.test");
	ck_assert_int_eq(smtpd_dnsbl_domain_query_name("\"a@b\"@x.example", "rhs.test", name,
	    sizeof(name)), 0);
	ck_assert_str_eq(name, "x.example.rhs.test");
	/* Postfix's skips: literals, bad names, numeric last labels, nothing. */
	ck_assert_int_eq(smtpd_dnsbl_domain_query_name("a@[192.0.2.1]", "rhs.test", name,
	    sizeof(name)), -1);
	ck_assert_int_eq(smtpd_dnsbl_domain_query_name("192.0.2.1", "rhs.test", name,
	    sizeof(name)), -1);
	ck_assert_int_eq(smtpd_dnsbl_domain_query_name("host.123", "rhs.test", name,
	    sizeof(name)), -1);
	ck_assert_int_eq(smtpd_dnsbl_domain_query_name("a@", "rhs.test", name, sizeof(name)), -1);
	ck_assert_int_eq(smtpd_dnsbl_domain_query_name("bad_host!.example", "rhs.test", name,
	    sizeof(name)), -1);
	/* 250 characters: a valid name alone, too long with the zone. */
	memset(host, 'a', 250);
	host[250] = '\0';
	host[63] = host[127] = host[191] = '.';		/* labels of 63, 63, 63, 58 */
	ck_assert_uint_eq(strlen(host), 250);
	ck_assert_int_eq(smtpd_dnsbl_domain_query_name(host, "rhs.test", name, sizeof(name)), -1);
	ck_assert_int_eq(smtpd_dnsbl_domain_query_name(host, "t", name, sizeof(name)), 0);
}
END_TEST

/* ---- TXT reasons ---- */

START_TEST(test_reason)
{
	struct resolver_txt txt[3];
	char reason[SMTPD_DNSBL_TXT_MAX + 1], big[600];

	txt[0].data = (char *)"listed\0here";
	txt[0].len = 11;
	txt[1].data = (char *)"see http://x/";
	txt[1].len = strlen(txt[1].data);
	smtpd_dnsbl_reason(txt, 2, reason, sizeof(reason));
	ck_assert_str_eq(reason, "listed_here / see http://x/");	/* Postfix's " / " */
	smtpd_dnsbl_reason(txt, 0, reason, sizeof(reason));
	ck_assert_str_eq(reason, "");
	/* Cut at 500 bytes; no separator without room after it. */
	memset(big, 'x', sizeof(big));
	txt[0].data = big;
	txt[0].len = 499;
	txt[1].data = (char *)"more";
	txt[1].len = 4;
	smtpd_dnsbl_reason(txt, 2, reason, sizeof(reason));
	ck_assert_uint_eq(strlen(reason), 499);
	txt[0].len = sizeof(big);
	smtpd_dnsbl_reason(txt, 1, reason, sizeof(reason));
	ck_assert_uint_eq(strlen(reason), SMTPD_DNSBL_TXT_MAX);
}
END_TEST

/* ---- the reply of a listing ---- */

static const struct {
	const char *expanded;
	int code;		/* 0: bad */
	const char *dsn;
	const char *text;
} split_rows[] = {
	{ "554 Service unavailable; Client host [1.2.3.4] blocked using bl.test", 554, "5.7.1",
	  "Service unavailable; Client host [1.2.3.4] blocked using bl.test" },
	{ "450 4.7.25 try later", 450, "4.7.25", "try later" },
	{ "550 4.7.1 class forced", 550, "5.7.1", "class forced" },
	{ "521 5.7.1", 521, "5.7.1", "Service unavailable" },
	{ "554 ", 554, "5.7.1", "Service unavailable" },
	{ "554 5.7 not a status", 554, "5.7.1", "5.7 not a status" },
	{ "250 ok", 0, NULL, NULL },
	{ "55 short", 0, NULL, NULL },
	{ "554-dash", 0, NULL, NULL },
	{ "", 0, NULL, NULL },
};

START_TEST(test_reply_split)
{
	const char *text = NULL;
	char dsn[16];
	int code = 0, rc;

	rc = smtpd_dnsbl_reply_split(split_rows[_i].expanded, &code, dsn, &text);
	if (split_rows[_i].code == 0) {
		ck_assert_msg(rc < 0, "%s accepted", split_rows[_i].expanded);
		return;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(code, split_rows[_i].code);
	ck_assert_str_eq(dsn, split_rows[_i].dsn);
	ck_assert_str_eq(text, split_rows[_i].text);
}
END_TEST

static Suite *
smtpd_dnsbl_suite(void)
{
	Suite *s = suite_create("smtpd_dnsbl");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_spec, 0, sizeof(spec_rows) / sizeof(spec_rows[0]));
	tcase_add_test(tc, test_listed_families);
	tcase_add_test(tc, test_query_names);
	tcase_add_test(tc, test_reason);
	tcase_add_loop_test(tc, test_reply_split, 0, sizeof(split_rows) / sizeof(split_rows[0]));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtpd_dnsbl_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
