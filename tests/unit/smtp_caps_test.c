/* Unit tests for delivery/smtp_caps.c: one row per EHLO reply. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/smtp_caps.h"

struct caps_row {
	const char *ehlo;	/* a whole EHLO reply */
	unsigned flags;
	uint64_t size_max;
	const char *auth;	/* mechanisms, space-separated, in order */
};

#define P SMTP_CAPS_PIPELINING
#define S SMTP_CAPS_SIZE
#define E8 SMTP_CAPS_8BITMIME
#define U8 SMTP_CAPS_SMTPUTF8
#define D SMTP_CAPS_DSN
#define T SMTP_CAPS_STARTTLS
#define ENH SMTP_CAPS_ENHANCEDSTATUSCODES
#define C SMTP_CAPS_CHUNKING
#define A SMTP_CAPS_AUTH

static const struct caps_row caps_rows[] = {
	/* Postfix's usual reply */
	{ "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n"
	  "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
	  "250 CHUNKING\r\n",
	  P | S | T | ENH | E8 | D | U8 | C, 10240000, "" },
	/* a single line: no extensions (and a HELO-like reply) */
	{ "250 mx.example.org Hello\r\n", 0, 0, "" },
	/* the greeting line is never a keyword, whatever it says */
	{ "250-PIPELINING\r\n250 8BITMIME\r\n", E8, 0, "" },
	/* case does not matter (RFC 5321 2.4) */
	{ "250-x\r\n250-pipelining\r\n250-Size 5\r\n250 StartTLS\r\n", P | S | T, 5, "" },
	/* SIZE: no number, 0, junk, overflow, spaces */
	{ "250-x\r\n250 SIZE\r\n", S, 0, "" },
	{ "250-x\r\n250 SIZE 0\r\n", S, 0, "" },
	{ "250-x\r\n250 SIZE abc\r\n", S, 0, "" },
	{ "250-x\r\n250 SIZE 12x\r\n", S, 0, "" },
	{ "250-x\r\n250 SIZE -5\r\n", S, 0, "" },
	{ "250-x\r\n250 SIZE 18446744073709551615\r\n", S, UINT64_MAX, "" },
	{ "250-x\r\n250 SIZE 18446744073709551616\r\n", S, 0, "" },
	{ "250-x\r\n250 SIZE 000000000000000000001\r\n", S, 0, "" },	/* 21 digits */
	{ "250-x\r\n250 SIZE   52428800  \r\n", S, 52428800, "" },
	{ "250-x\r\n250 SIZE 1 2\r\n", S, 0, "" },
	/* SIZE= is not a form SIZE ever had */
	{ "250-x\r\n250 SIZE=100\r\n", 0, 0, "" },
	/* AUTH, the old AUTH= form, both (merged, once each), case folded */
	{ "250-x\r\n250 AUTH PLAIN LOGIN CRAM-MD5\r\n", A, 0, "PLAIN LOGIN CRAM-MD5" },
	{ "250-x\r\n250 AUTH=LOGIN PLAIN\r\n", A, 0, "LOGIN PLAIN" },
	{ "250-x\r\n250-AUTH LOGIN PLAIN\r\n250 AUTH=LOGIN PLAIN\r\n", A, 0, "LOGIN PLAIN" },
	{ "250-x\r\n250 auth plain  scram-sha-256\r\n", A, 0, "PLAIN SCRAM-SHA-256" },
	{ "250-x\r\n250 AUTH\r\n", A, 0, "" },
	/* bad mechanism names are skipped (RFC 4422 3.1: 1-20 of A-Z 0-9 - _) */
	{ "250-x\r\n250 AUTH PLAIN ABCDEFGHIJKLMNOPQRSTU X.Y GSSAPI\r\n", A, 0, "PLAIN GSSAPI" },
	{ "250-x\r\n250 AUTH ABCDEFGHIJKLMNOPQRST\r\n", A, 0, "ABCDEFGHIJKLMNOPQRST" },
	/* at most SMTP_CAPS_AUTH_MECHS_MAX */
	{ "250-x\r\n250 AUTH A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11 A12 A13 A14 A15 A16 A17 A18\r\n", A, 0,
	  "A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11 A12 A13 A14 A15 A16" },
	/* unknown keywords and junk are ignored; prefixes do not match */
	{ "250-x\r\n250-X-EXPS GSSAPI\r\n250-XFORWARDX NAME ADDR\r\n250-PIPELININGX\r\n"
	  "250-DSNX\r\n250-_PIPELINING\r\n250-PIPE_LINING\r\n250- \r\n250-\r\n250 DSN\r\n",
	  D, 0, "" },
	/* leading space and tab separators are tolerated */
	{ "250-x\r\n250-  PIPELINING\r\n250 SIZE\t1000\r\n", P | S, 1000, "" },
	/* keyword with a parameter it does not take */
	{ "250-x\r\n250 8BITMIME yes\r\n", E8, 0, "" },
	/* the last SIZE wins */
	{ "250-x\r\n250-SIZE 100\r\n250 SIZE 200\r\n", S, 200, "" },
};

static void
caps_parse_str(const char *ehlo, struct smtp_caps *caps)
{
	struct smtp_reply_parser p;
	size_t used;

	smtp_reply_parser_init(&p);
	ck_assert_int_eq(smtp_reply_parse(&p, ehlo, strlen(ehlo), &used), SMTP_REPLY_DONE);
	ck_assert_uint_eq(used, strlen(ehlo));
	memset(caps, 0xa5, sizeof(*caps));	/* parse must clear it */
	smtp_caps_parse(smtp_reply_parser_reply(&p), caps);
	smtp_reply_parser_free(&p);
}

START_TEST(test_rows)
{
	const struct caps_row *row = &caps_rows[_i];
	struct smtp_caps caps;
	char auth[SMTP_CAPS_AUTH_MECHS_MAX * SMTP_CAPS_AUTH_MECH_SIZE + 1];
	size_t i, o = 0;

	caps_parse_str(row->ehlo, &caps);
	ck_assert_msg(caps.flags == row->flags, "row %d: flags %#x want %#x", _i, caps.flags,
	              row->flags);
	ck_assert_msg(caps.size_max == row->size_max, "row %d: size %llu want %llu", _i,
	              (unsigned long long)caps.size_max, (unsigned long long)row->size_max);
	auth[0] = '\0';
	for (i = 0; i < caps.nauth; i++)
		o += (size_t)snprintf(auth + o, sizeof(auth) - o, "%s%s", i ? " " : "", caps.auth[i]);
	ck_assert_msg(strcmp(auth, row->auth) == 0, "row %d: auth \"%s\" want \"%s\"", _i, auth,
	              row->auth);
}
END_TEST

START_TEST(test_helpers)
{
	struct smtp_caps caps;

	caps_parse_str("250-x\r\n250-PIPELINING\r\n250 AUTH=plain Login\r\n", &caps);
	ck_assert(smtp_caps_has(&caps, SMTP_CAPS_PIPELINING));
	ck_assert(!smtp_caps_has(&caps, SMTP_CAPS_STARTTLS));
	ck_assert(!smtp_caps_has(&caps, SMTP_CAPS_PIPELINING | SMTP_CAPS_STARTTLS));
	ck_assert(smtp_caps_auth_has(&caps, "PLAIN"));
	ck_assert(smtp_caps_auth_has(&caps, "login"));
	ck_assert(!smtp_caps_auth_has(&caps, "CRAM-MD5"));
	ck_assert(!smtp_caps_auth_has(&caps, "PLAI"));
}
END_TEST

/* XFORWARD: the attribute names, any case, unknown ones ignored; the
 * last line wins. */
START_TEST(test_xforward)
{
	struct smtp_caps caps;

	caps_parse_str("250-x\r\n250 XFORWARD NAME ADDR PROTO HELO\r\n", &caps);
	ck_assert(smtp_caps_has(&caps, SMTP_CAPS_XFORWARD));
	ck_assert_uint_eq(caps.xforward, SMTP_XFORWARD_NAME | SMTP_XFORWARD_ADDR |
	                  SMTP_XFORWARD_PROTO | SMTP_XFORWARD_HELO);
	caps_parse_str("250-x\r\n250 xforward name Addr PORT ident source COLOR NAMEX\r\n", &caps);
	ck_assert_uint_eq(caps.xforward, SMTP_XFORWARD_NAME | SMTP_XFORWARD_ADDR |
	                  SMTP_XFORWARD_PORT | SMTP_XFORWARD_IDENT | SMTP_XFORWARD_SOURCE);
	caps_parse_str("250-x\r\n250-XFORWARD NAME\r\n250 XFORWARD HELO\r\n", &caps);
	ck_assert_uint_eq(caps.xforward, SMTP_XFORWARD_HELO);
	caps_parse_str("250-x\r\n250 XFORWARD\r\n", &caps);
	ck_assert(smtp_caps_has(&caps, SMTP_CAPS_XFORWARD));
	ck_assert_uint_eq(caps.xforward, 0);
	caps_parse_str("250-x\r\n250 PIPELINING\r\n", &caps);
	ck_assert(!smtp_caps_has(&caps, SMTP_CAPS_XFORWARD));
	ck_assert_uint_eq(caps.xforward, 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("smtp_caps");
	TCase *tc = tcase_create("rows");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_rows, 0, (int)(sizeof(caps_rows) / sizeof(caps_rows[0])));
	tcase_add_test(tc, test_helpers);
	tcase_add_test(tc, test_xforward);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
