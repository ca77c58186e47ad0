/* Unit tests for delivery/smtp_sasl.c: credentials, security options, and
 * real exchanges through Cyrus SASL's PLAIN and LOGIN client plugins. */
#include <check.h>
#include <sasl/sasl.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/smtp_sasl.h"

static char err[600];

static struct config_list
words(char **items, size_t n)
{
	struct config_list l = { n, items };

	return l;
}

START_TEST(test_split_credentials)
{
	char user[SMTP_SASL_CRED_MAX + 1], pw[SMTP_SASL_CRED_MAX + 1];
	char big[SMTP_SASL_CRED_MAX + 10];

	ck_assert_int_eq(smtp_sasl_split_credentials("joe:s3cret", user, pw), 0);
	ck_assert_str_eq(user, "joe");
	ck_assert_str_eq(pw, "s3cret");
	/* Split at the first ':' (Postfix's split_at). */
	ck_assert_int_eq(smtp_sasl_split_credentials("joe@isp.example:a:b:", user, pw), 0);
	ck_assert_str_eq(user, "joe@isp.example");
	ck_assert_str_eq(pw, "a:b:");
	ck_assert_int_eq(smtp_sasl_split_credentials("joe:", user, pw), 0);
	ck_assert_str_eq(pw, "");
	ck_assert_int_eq(smtp_sasl_split_credentials("no-colon", user, pw), -1);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[3] = ':';
	ck_assert_int_eq(smtp_sasl_split_credentials(big, user, pw), -1);	/* password too long */
}
END_TEST

START_TEST(test_security_flags)
{
	char *good[] = { "noplaintext", "NoAnonymous", "nodictionary", "noactive", "mutual_auth" };
	char *bad[] = { "noanonymous", "plaintext" };
	struct config_list l = words(good, 5);
	unsigned flags = 0;

	ck_assert_int_eq(smtp_sasl_security_flags(&l, &flags, err, sizeof(err)), 0);
	ck_assert_uint_eq(flags, SASL_SEC_NOPLAINTEXT | SASL_SEC_NOANONYMOUS | SASL_SEC_NODICTIONARY |
	                          SASL_SEC_NOACTIVE | SASL_SEC_MUTUAL_AUTH);
	l = words(good, 0);
	ck_assert_int_eq(smtp_sasl_security_flags(&l, &flags, err, sizeof(err)), 0);
	ck_assert_uint_eq(flags, 0);
	l = words(bad, 2);
	ck_assert_int_eq(smtp_sasl_security_flags(&l, &flags, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "\"plaintext\""));
}
END_TEST

START_TEST(test_plain_exchange)
{
	struct smtp_sasl *s = NULL;
	struct buf line;
	const char *mech = NULL;

	ck_assert_int_eq(smtp_sasl_init(err, sizeof(err)), 0);
	buf_init(&line, 4096);
	ck_assert_int_eq(smtp_sasl_start("relay.example", "joe", "s3cret", "PLAIN",
	                                 SASL_SEC_NOANONYMOUS, &s, &line, &mech, err, sizeof(err)),
	                 0);
	ck_assert_str_eq(mech, "PLAIN");
	/* base64("joe\0joe\0s3cret") or ("\0joe\0s3cret"): Cyrus sends the
	 * authorization id only when it differs; both are valid PLAIN. */
	ck_assert(strcmp(buf_cstr(&line), "AUTH PLAIN AGpvZQBzM2NyZXQ=") == 0 ||
	          strcmp(buf_cstr(&line), "AUTH PLAIN am9lAGpvZQBzM2NyZXQ=") == 0);
	smtp_sasl_free(s);
	buf_free(&line);
}
END_TEST

START_TEST(test_login_exchange)
{
	struct smtp_sasl *s = NULL;
	struct buf line, resp;
	const char *mech = NULL;

	ck_assert_int_eq(smtp_sasl_init(err, sizeof(err)), 0);
	buf_init(&line, 4096);
	buf_init(&resp, 4096);
	ck_assert_int_eq(smtp_sasl_start("relay.example", "joe", "s3cret", "LOGIN",
	                                 SASL_SEC_NOANONYMOUS, &s, &line, &mech, err, sizeof(err)),
	                 0);
	ck_assert_str_eq(mech, "LOGIN");
	/* LOGIN has no initial response in Cyrus, or sends the name at once. */
	if (strcmp(buf_cstr(&line), "AUTH LOGIN") == 0) {
		ck_assert_int_eq(smtp_sasl_step(s, "VXNlcm5hbWU6", &resp, err, sizeof(err)), 0);
		ck_assert_str_eq(buf_cstr(&resp), "am9l");	/* "joe" */
		buf_reset(&resp);
	} else {
		ck_assert_str_eq(buf_cstr(&line), "AUTH LOGIN am9l");
	}
	ck_assert_int_eq(smtp_sasl_step(s, "UGFzc3dvcmQ6", &resp, err, sizeof(err)), 0);
	ck_assert_str_eq(buf_cstr(&resp), "czNjcmV0");	/* "s3cret" */
	/* A challenge that is not base64 is an error, not a crash. */
	buf_reset(&resp);
	ck_assert_int_eq(smtp_sasl_step(s, "!!not base64!!", &resp, err, sizeof(err)), -1);
	smtp_sasl_free(s);
	buf_free(&line);
	buf_free(&resp);
}
END_TEST

START_TEST(test_no_plaintext)
{
	struct smtp_sasl *s = NULL;
	struct buf line;
	const char *mech = NULL;

	ck_assert_int_eq(smtp_sasl_init(err, sizeof(err)), 0);
	buf_init(&line, 4096);
	/* The default without TLS: PLAIN and LOGIN are plain text. */
	ck_assert_int_eq(smtp_sasl_start("relay.example", "joe", "s3cret", "PLAIN LOGIN",
	                                 SASL_SEC_NOPLAINTEXT | SASL_SEC_NOANONYMOUS, &s, &line,
	                                 &mech, err, sizeof(err)),
	                 -1);
	ck_assert_str_eq(err, "no mechanism available");
	ck_assert_ptr_null(s);
	ck_assert_int_eq(smtp_sasl_start("relay.example", "joe", "s3cret", "", SASL_SEC_NOANONYMOUS,
	                                 &s, &line, &mech, err, sizeof(err)),
	                 -1);
	ck_assert_ptr_null(s);
	buf_free(&line);
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("smtp_sasl");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_split_credentials);
	tcase_add_test(tc, test_security_flags);
	tcase_add_test(tc, test_plain_exchange);
	tcase_add_test(tc, test_login_exchange);
	tcase_add_test(tc, test_no_plaintext);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
