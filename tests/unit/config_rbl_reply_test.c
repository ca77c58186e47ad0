/*
 * Unit tests for config_rbl_reply: the default_rbl_reply template
 * language (names, forms, the filter of values from the network, the
 * bound on the output) and its load-time check, which must refuse every
 * template that expansion could refuse, whatever the values. Loading it
 * from a file (FILE:LINE errors, listener overrides) is in config_test.c.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "config/config_rbl_reply.h"

static const struct config_rbl_reply_vars vars = {
	.rbl_code = 554, .rbl_domain = "rhs.test", .rbl_reason = "bad\r\nguy",
	.rbl_what = "a@spam.example", .rbl_class = "Sender address",
	.client = "mail.example[192.0.2.9]", .client_address = "192.0.2.9",
	.client_name = "mail.example", .reverse_client_name = "mail.example",
	.helo_name = "helo.example", .sender = "a@spam.example", .recipient = NULL,
};

static const struct {
	const char *template;
	const char *out;	/* NULL: the template is bad */
} expand_rows[] = {
	{ CONFIG_RBL_REPLY_DEFAULT, "554 Service unavailable; Sender address [a@spam.example] "
	  "blocked using rhs.test; bad__guy" },
	{ "$rbl_code ${rbl_what} $(rbl_class) $rbl_txt", "554 a@spam.example Sender address bad__guy" },
	{ "$client / $client_address / $client_name / $reverse_client_name / $helo_name",
	  "mail.example[192.0.2.9] / 192.0.2.9 / mail.example / mail.example / helo.example" },
	{ "$sender $sender_name $sender_domain", "a@spam.example a spam.example" },
	{ "<$recipient> <$recipient_name> <$recipient_domain>", "<> <> <>" },
	{ "${recipient?has}${recipient:none} ${sender?{$sender_domain}}", "none {spam.example}" },
	{ "cost $$5, $ alone, 100%", "cost $5, $ alone, 100%" },
	{ "${rbl_reason?${rbl_domain?nested $rbl_domain}}", "nested rhs.test" },
	{ "$rbl_nope", NULL },
	{ "${rbl_code", NULL },
	{ "${rbl_code?unclosed", NULL },
	{ "${}", NULL },
	{ "${a?${a?${a?${a?${a?deep}}}}}", NULL },
	{ "${rbl_code?${rbl_code?${rbl_code?${rbl_code?${rbl_code?deep}}}}}", NULL },
	{ "${rbl_code?${rbl_code?${rbl_code?${rbl_code?four}}}}", "four" },
	{ "$(rbl_code", NULL },
	{ "$(rbl_code?a}", NULL },
	{ "${rbl_code!x}", NULL },
};

START_TEST(test_expand)
{
	char out[CONFIG_RBL_REPLY_MAX + 1], why[256] = "";
	int rc;

	rc = config_rbl_reply_expand(expand_rows[_i].template, &vars, out, sizeof(out), why, sizeof(why));
	if (expand_rows[_i].out == NULL) {
		ck_assert_msg(rc < 0, "%s: expanded to %s", expand_rows[_i].template, out);
		ck_assert_msg(why[0] != '\0', "no reason given");
		ck_assert_int_eq(config_rbl_reply_check(expand_rows[_i].template, why,
		    sizeof(why)), -1);
		return;
	}
	ck_assert_msg(rc == 0, "%s: %s", expand_rows[_i].template, why);
	ck_assert_str_eq(out, expand_rows[_i].out);
}
END_TEST

START_TEST(test_expand_bounded)
{
	char out[32], why[64];
	struct config_rbl_reply_vars v = vars;

	v.rbl_reason = "a reason far longer than the room the caller has for it";
	ck_assert_int_eq(config_rbl_reply_expand("$rbl_code $rbl_reason", &v, out, sizeof(out), why,
	    sizeof(why)), 0);
	ck_assert_uint_eq(strlen(out), sizeof(out) - 1);
	ck_assert_int_eq(strncmp(out, "554 a reason", 12), 0);
	ck_assert_int_eq(config_rbl_reply_check(CONFIG_RBL_REPLY_DEFAULT, why, sizeof(why)), 0);
	/* The null sender. */
	v.sender = "";
	ck_assert_int_eq(config_rbl_reply_expand("[$sender|$sender_name|$sender_domain]", &v, out,
	    sizeof(out), why, sizeof(why)), 0);
	ck_assert_str_eq(out, "[<>|<>|]");
}
END_TEST

/* A name in an arm the values do not take: expansion skips it, the check
 * does not, so a template that passed the load never fails later. */
static const struct {
	const char *template;
	const char *out;	/* with vars: recipient NULL, rbl_reason set */
} arm_rows[] = {
	{ "${recipient?$rcpt_typo}", "" },
	{ "${rbl_reason:$reason_typo}", "" },
	{ "${recipient?${rbl_code?$deeper_typo}}", "" },
	{ "${recipient?${bad!}}", "" },
};

START_TEST(test_check_both_arms)
{
	char out[CONFIG_RBL_REPLY_MAX + 1], why[256] = "";

	ck_assert_msg(config_rbl_reply_expand(arm_rows[_i].template, &vars, out, sizeof(out), why,
	    sizeof(why)) == 0, "%s: %s", arm_rows[_i].template, why);
	ck_assert_str_eq(out, arm_rows[_i].out);
	ck_assert_int_eq(config_rbl_reply_check(arm_rows[_i].template, why, sizeof(why)), -1);
	ck_assert_msg(why[0] != '\0', "no reason given");
}
END_TEST

static Suite *
config_rbl_reply_suite(void)
{
	Suite *s = suite_create("config_rbl_reply");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_expand, 0, sizeof(expand_rows) / sizeof(expand_rows[0]));
	tcase_add_test(tc, test_expand_bounded);
	tcase_add_loop_test(tc, test_check_both_arms, 0, sizeof(arm_rows) / sizeof(arm_rows[0]));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_rbl_reply_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
