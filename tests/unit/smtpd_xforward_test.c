/* Unit tests for smtpd/smtpd_xforward.c: the XFORWARD arguments' parser. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/smtpd_xforward.h"

static int
apply(struct smtpd_xforward *xf, const char *args, char *err)
{
	return smtpd_xforward_apply(xf, args, strlen(args), err, SMTPD_XFORWARD_ERR_SIZE);
}

START_TEST(test_attributes)
{
	struct smtpd_xforward xf;
	char err[SMTPD_XFORWARD_ERR_SIZE], namaddr[600];

	smtpd_xforward_reset(&xf);
	ck_assert_int_eq(apply(&xf, "NAME=mx.example ADDR=192.0.2.1 PORT=4242", err), 0);
	ck_assert(xf.given);
	ck_assert_str_eq(xf.name, "mx.example");
	ck_assert_str_eq(xf.addr, "192.0.2.1");
	ck_assert_str_eq(xf.port, "4242");
	/* A second command adds to the first (XFORWARD_README: attributes
	 * not named keep their value). Names are case-insensitive. */
	ck_assert_int_eq(apply(&xf, "proto=ESMTPSA  Helo=[192.0.2.1] IDENT=0660E218E9C55E "
	                            "source=local", err), 0);
	ck_assert_str_eq(xf.name, "mx.example");
	ck_assert_str_eq(xf.proto, "ESMTPSA");
	ck_assert_str_eq(xf.helo, "[192.0.2.1]");
	ck_assert_str_eq(xf.ident, "0660E218E9C55E");
	ck_assert_int_eq(xf.source, SMTPD_XFORWARD_SOURCE_LOCAL);
	smtpd_xforward_namaddr(&xf, namaddr, sizeof(namaddr));
	ck_assert_str_eq(namaddr, "mx.example[192.0.2.1]");
	/* [UNAVAILABLE], any case, forgets one attribute. */
	ck_assert_int_eq(apply(&xf, "ADDR=[unavailable] SOURCE=[UNAVAILABLE]", err), 0);
	ck_assert_str_eq(xf.addr, "");
	ck_assert_int_eq(xf.source, SMTPD_XFORWARD_SOURCE_UNKNOWN);
	smtpd_xforward_namaddr(&xf, namaddr, sizeof(namaddr));
	ck_assert_str_eq(namaddr, "mx.example");
	/* A new transaction starts from nothing known. */
	smtpd_xforward_reset(&xf);
	ck_assert_int_eq(apply(&xf, "ADDR=2001:db8::1", err), 0);
	ck_assert_str_eq(xf.name, "");
	smtpd_xforward_namaddr(&xf, namaddr, sizeof(namaddr));
	ck_assert_str_eq(namaddr, "unknown[2001:db8::1]");
}
END_TEST

START_TEST(test_xtext_and_neuter)
{
	struct smtpd_xforward xf;
	char err[SMTPD_XFORWARD_ERR_SIZE];

	smtpd_xforward_reset(&xf);
	/* xtext decoded; what would confuse a header or a log line is '?'. */
	ck_assert_int_eq(apply(&xf, "HELO=a+20b+3Cc+3E NAME=x+40y PROTO=E+2BSMTP", err), 0);
	ck_assert_str_eq(xf.helo, "a?b?c?");
	ck_assert_str_eq(xf.name, "x?y");
	ck_assert_str_eq(xf.proto, "E+SMTP");
	ck_assert_int_eq(apply(&xf, "NAME=a+22b+3Bc+28d+29e+5C", err), 0);
	ck_assert_str_eq(xf.name, "a?b?c?d?e?");
}
END_TEST

struct bad_row {
	const char *args;
	const char *err;	/* a prefix of the reply text */
};

static const struct bad_row bad_rows[] = {
	{ "", "Syntax: XFORWARD attribute=value..." },
	{ "   ", "Syntax: XFORWARD attribute=value..." },
	{ "NAME", "Error: attribute=value expected" },
	{ "NAME=", "Error: attribute=value expected" },
	{ "=x", "Bad XFORWARD attribute name: " },
	{ "COLOR=blue", "Bad XFORWARD attribute name: COLOR" },
	{ "NAMEX=a", "Bad XFORWARD attribute name: NAMEX" },
	{ "NAME=a+0Ab", "Bad NAME syntax" },		/* a control character */
	{ "NAME=a+C3+A9", "Bad NAME syntax" },		/* not ASCII */
	{ "NAME=a+0", "Bad NAME syntax" },		/* cut xtext */
	{ "NAME=a+00", "Bad NAME syntax" },		/* NUL */
	{ "NAME=a=b", "Bad NAME syntax" },		/* '=' is not an xchar */
	{ "PORT=65536", "Bad PORT syntax" },
	{ "PORT=-1", "Bad PORT syntax" },
	{ "PORT=25x", "Bad PORT syntax" },
	{ "SOURCE=ELSEWHERE", "Bad SOURCE syntax" },
	{ "PROTO=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Bad PROTO syntax" },
	/* one bad item spoils the command: nothing of it is kept */
	{ "NAME=good.example COLOR=blue", "Bad XFORWARD attribute name: COLOR" },
};

START_TEST(test_bad)
{
	const struct bad_row *row = &bad_rows[_i];
	struct smtpd_xforward xf;
	char err[SMTPD_XFORWARD_ERR_SIZE];

	smtpd_xforward_reset(&xf);
	ck_assert_int_eq(apply(&xf, "NAME=before.example", err), 0);
	ck_assert_msg(apply(&xf, row->args, err) == -1, "row %d accepted", _i);
	ck_assert_msg(strncmp(err, row->err, strlen(row->err)) == 0, "row %d: \"%s\" want \"%s\"",
	              _i, err, row->err);
	ck_assert_str_eq(xf.name, "before.example");
}
END_TEST

START_TEST(test_lengths)
{
	struct smtpd_xforward xf;
	char err[SMTPD_XFORWARD_ERR_SIZE], args[600];

	/* 255 characters are allowed, 256 are not (note 1). */
	smtpd_xforward_reset(&xf);
	snprintf(args, sizeof(args), "NAME=%0255d", 0);
	ck_assert_int_eq(apply(&xf, args, err), 0);
	ck_assert_uint_eq(strlen(xf.name), 255);
	snprintf(args, sizeof(args), "NAME=%0256d", 0);
	ck_assert_int_eq(apply(&xf, args, err), -1);
	ck_assert_str_eq(err, "Error: attribute value too long");
	/* 64 characters of PROTO are allowed. */
	snprintf(args, sizeof(args), "PROTO=%064d", 0);
	ck_assert_int_eq(apply(&xf, args, err), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("smtpd_xforward");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_attributes);
	tcase_add_test(tc, test_xtext_and_neuter);
	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad_rows) / sizeof(bad_rows[0])));
	tcase_add_test(tc, test_lengths);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
