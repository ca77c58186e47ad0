/*
 * Unit tests for config_milter: milter lists as smtpd_milters takes them
 * (plain endpoints, Postfix's braced per-milter form) and the lists the
 * load must refuse, one row each.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_milter.h"

static const struct list_row {
	const char *text;
	int ok;
	size_t n;
	const char *first;		/* endpoint of the first milter */
	enum config_milter_action action;	/* of the last milter */
	int64_t command_timeout;	/* of the last milter */
} rows[] = {
	{ "", 1, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "  ,  ", 1, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "inet:127.0.0.1:8891", 1, 1, "inet:127.0.0.1:8891", CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "unix:/run/opendkim.sock, inet:localhost:11332", 1, 2, "unix:/run/opendkim.sock",
	  CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "inet:[::1]:8891", 1, 1, "inet:[::1]:8891", CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "{ inet:127.0.0.1:8891, default_action=accept, command_timeout=10s }", 1, 1,
	  "inet:127.0.0.1:8891", CONFIG_MILTER_ACTION_ACCEPT, 10 },
	{ "unix:/a {inet:127.0.0.1:1,default_action = tempfail,command_timeout=2m,protocol=4}", 1, 2,
	  "unix:/a", CONFIG_MILTER_ACTION_TEMPFAIL, 120 },
	/* Refused. */
	{ "inet:mx.example.org:8891", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "inet:127.0.0.1", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "inet:127.0.0.1:0", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "inet:127.0.0.1:70000", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "unix:relative", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "local:/x", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "{ inet:127.0.0.1:1, default_action=maybe }", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "{ inet:127.0.0.1:1, colour=blue }", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "{ inet:127.0.0.1:1, command_timeout=soon }", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "{ inet:127.0.0.1:1, protocol=5 }", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "{ inet:127.0.0.1:1", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "inet:127.0.0.1:1 }", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "{ { inet:127.0.0.1:1 } }", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
	{ "{ , default_action=accept }", 0, 0, NULL, CONFIG_MILTER_ACTION_UNSET, -1 },
};

START_TEST(test_list)
{
	const struct list_row *row = &rows[_i];
	struct config_milter m[CONFIG_MILTER_MAX];
	char why[256] = "";
	size_t n = 99;
	int r;

	r = config_milter_parse(row->text, m, &n, why, sizeof(why));
	ck_assert_msg((r == 0) == row->ok, "row %d (%s): %d %s", _i, row->text, r, why);
	if (!row->ok) {
		ck_assert_msg(why[0] != '\0', "row %d: a reason", _i);
		return;
	}
	ck_assert_uint_eq(n, row->n);
	if (n == 0)
		return;
	ck_assert_str_eq(m[0].endpoint, row->first);
	ck_assert_int_eq(m[n - 1].default_action, row->action);
	ck_assert_int_eq(m[n - 1].command_timeout, row->command_timeout);
}
END_TEST

START_TEST(test_too_many)
{
	struct config_milter m[CONFIG_MILTER_MAX];
	char text[2048], why[256];
	size_t n, i, used = 0;

	for (i = 0; i <= CONFIG_MILTER_MAX; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, "unix:/m%zu ", i);
	ck_assert_int_eq(config_milter_parse(text, m, &n, why, sizeof(why)), -1);
}
END_TEST

static Suite *
config_milter_suite(void)
{
	Suite *s = suite_create("config_milter");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_list, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_test(tc, test_too_many);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_milter_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
