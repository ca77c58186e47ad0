/*
 * Unit tests for smtpd/smtpd_actions.c: which content filter a message
 * gets (content_filter per listener, FILTER actions, never on the
 * re-injection listener) and what REDIRECT and BCC do to its recipients.
 * Without an address resolver: addresses are added as they are.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "queue/envelope.h"
#include "smtpd/smtpd_actions.h"

#define FILTER_G "smtp:[127.0.0.1]:10024"
#define FILTER_A "lmtp:inet:127.0.0.1:10026"

/* The configuration of every row: a global filter, none on submission. */
static const char conf_text[] =
	"myhostname = tern.test\n"
	"content_filter = " FILTER_G "\n"
	"submission_content_filter =\n"
	"reinject_listen = 127.0.0.1:10025\n";

static struct config *
conf_load(void)
{
	char path[] = "/tmp/smtpd_actions_test.XXXXXX";
	int fd = mkstemp(path);
	struct buf errors;
	struct config *cfg;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, conf_text, strlen(conf_text)), (ssize_t)strlen(conf_text));
	close(fd);
	buf_init(&errors, 64 * 1024);
	cfg = config_load(path, &errors);
	unlink(path);
	ck_assert_msg(cfg != NULL, "%s", buf_cstr(&errors));
	buf_free(&errors);
	return cfg;
}

/* An envelope of three recipients, the first with ORCPT and NOTIFY. */
static void
env_three(struct envelope *e)
{
	envelope_init(e);
	envelope_set(&e->sender, "s@x.test");
	envelope_add_rcpt(e, "a@tern.test", "rfc822;team@tern.test", ENVELOPE_NOTIFY_FAILURE);
	envelope_add_rcpt(e, "b@tern.test", NULL, 0);
	envelope_add_rcpt(e, "c@other.test", NULL, 0);
}

static const struct {
	const char *name;
	enum config_listener listener;
	const char *filter, *redirect, *bcc;	/* the actions ("" none) */
	const char *want_filter;		/* NULL: none */
	const char *want_rcpts;			/* addresses, ' '-separated */
} rows[] = {
	{ "content_filter on port 25", CONFIG_LISTENER_SMTP, "", "", "", FILTER_G,
	  "a@tern.test b@tern.test c@other.test" },
	{ "submission override: none", CONFIG_LISTENER_SUBMISSION, "", "", "", NULL,
	  "a@tern.test b@tern.test c@other.test" },
	{ "sendmail: the global value", CONFIG_LISTENER_SENDMAIL, "", "", "", FILTER_G,
	  "a@tern.test b@tern.test c@other.test" },
	{ "smtps: the global value", CONFIG_LISTENER_SMTPS, "", "", "", FILTER_G,
	  "a@tern.test b@tern.test c@other.test" },
	{ "reinject: never", CONFIG_LISTENER_REINJECT, "", "", "", NULL,
	  "a@tern.test b@tern.test c@other.test" },
	{ "FILTER wins over content_filter", CONFIG_LISTENER_SMTP, FILTER_A, "", "", FILTER_A,
	  "a@tern.test b@tern.test c@other.test" },
	{ "FILTER where content_filter is empty", CONFIG_LISTENER_SUBMISSION, FILTER_A, "", "",
	  FILTER_A, "a@tern.test b@tern.test c@other.test" },
	{ "FILTER ignored on reinject", CONFIG_LISTENER_REINJECT, FILTER_A, "", "", NULL,
	  "a@tern.test b@tern.test c@other.test" },
	{ "BCC adds one", CONFIG_LISTENER_SMTP, "", "", "archive@tern.test", FILTER_G,
	  "a@tern.test b@tern.test c@other.test archive@tern.test" },
	{ "BCC on reinject", CONFIG_LISTENER_REINJECT, "", "", "archive@tern.test", NULL,
	  "a@tern.test b@tern.test c@other.test archive@tern.test" },
	{ "REDIRECT replaces all", CONFIG_LISTENER_SUBMISSION, "", "q@tern.test", "", NULL,
	  "q@tern.test" },
	{ "REDIRECT wins over content_filter", CONFIG_LISTENER_SMTP, "", "q@tern.test", "", NULL,
	  "q@tern.test" },
	{ "REDIRECT wins over FILTER and BCC", CONFIG_LISTENER_SMTP, FILTER_A, "q@tern.test",
	  "archive@tern.test", NULL, "q@tern.test" },
};

START_TEST(test_apply)
{
	struct smtpd_actions a;
	struct envelope e;
	struct config *cfg = conf_load();
	char got[512] = "";
	size_t i, off = 0;

	memset(&a, 0, sizeof(a));
	snprintf(a.filter, sizeof(a.filter), "%s", rows[_i].filter);
	snprintf(a.redirect, sizeof(a.redirect), "%s", rows[_i].redirect);
	snprintf(a.bcc, sizeof(a.bcc), "%s", rows[_i].bcc);
	env_three(&e);
	envelope_set(&e.filter, "smtp:[192.0.2.9]:25");	/* replaced, whatever it was */
	smtpd_actions_apply(&a, cfg, rows[_i].listener, NULL, "ABCDEF01234567", &e);
	if (rows[_i].want_filter == NULL)
		ck_assert_msg(e.filter == NULL, "%s: filter %s", rows[_i].name, e.filter);
	else
		ck_assert_msg(e.filter != NULL && strcmp(e.filter, rows[_i].want_filter) == 0,
		              "%s: filter %s", rows[_i].name, e.filter ? e.filter : "(none)");
	for (i = 0; i < e.nrcpt; i++)
		off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%s", i ? " " : "",
		                        e.rcpts[i].addr);
	ck_assert_msg(strcmp(got, rows[_i].want_rcpts) == 0, "%s: recipients %s", rows[_i].name,
	              got);
	if (rows[_i].redirect[0] != '\0') {
		/* The first recipient's ORCPT and NOTIFY stay (Postfix's qmgr). */
		ck_assert_str_eq(e.rcpts[0].orcpt, "rfc822;team@tern.test");
		ck_assert_uint_eq(e.rcpts[0].notify, ENVELOPE_NOTIFY_FAILURE);
	}
	if (rows[_i].bcc[0] != '\0' && rows[_i].redirect[0] == '\0') {
		/* No bounce reveals a BCC: NOTIFY=NEVER, no ORCPT (cleanup's BCC). */
		ck_assert_uint_eq(e.rcpts[e.nrcpt - 1].notify, ENVELOPE_NOTIFY_NEVER);
		ck_assert_ptr_null(e.rcpts[e.nrcpt - 1].orcpt);
	}
	envelope_free(&e);
	config_free(cfg);
}
END_TEST

/* A redirected message whose first recipient had no ORCPT keeps its
 * address as one; an envelope without recipients gets the one. */
START_TEST(test_redirect_orcpt)
{
	struct smtpd_actions a;
	struct envelope e;
	struct config *cfg = conf_load();

	memset(&a, 0, sizeof(a));
	snprintf(a.redirect, sizeof(a.redirect), "q@tern.test");
	envelope_init(&e);
	envelope_add_rcpt(&e, "b@tern.test", NULL, 0);
	smtpd_actions_apply(&a, cfg, CONFIG_LISTENER_SMTP, NULL, "ABCDEF01234567", &e);
	ck_assert_uint_eq(e.nrcpt, 1);
	ck_assert_str_eq(e.rcpts[0].addr, "q@tern.test");
	ck_assert_str_eq(e.rcpts[0].orcpt, "rfc822;b@tern.test");
	envelope_clear(&e);
	smtpd_actions_apply(&a, cfg, CONFIG_LISTENER_SMTP, NULL, "ABCDEF01234567", &e);
	ck_assert_uint_eq(e.nrcpt, 1);
	ck_assert_str_eq(e.rcpts[0].addr, "q@tern.test");
	ck_assert_ptr_null(e.rcpts[0].orcpt);
	envelope_free(&e);
	config_free(cfg);
}
END_TEST

/* Of each kind the last action of the transaction counts; empty fields
 * of a later result leave earlier ones alone. */
START_TEST(test_keep)
{
	struct smtpd_restrict_result r1, r2, r3;
	struct smtpd_actions a;

	memset(&a, 0, sizeof(a));
	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	memset(&r3, 0, sizeof(r3));
	snprintf(r1.filter, sizeof(r1.filter), FILTER_G);
	snprintf(r1.bcc, sizeof(r1.bcc), "one@tern.test");
	snprintf(r2.filter, sizeof(r2.filter), FILTER_A);
	snprintf(r2.redirect, sizeof(r2.redirect), "q@tern.test");
	snprintf(r3.bcc, sizeof(r3.bcc), "two@tern.test");
	smtpd_actions_keep(&a, &r1);
	smtpd_actions_keep(&a, &r2);
	smtpd_actions_keep(&a, &r3);
	ck_assert_str_eq(a.filter, FILTER_A);
	ck_assert_str_eq(a.redirect, "q@tern.test");
	ck_assert_str_eq(a.bcc, "two@tern.test");
}
END_TEST

static Suite *
smtpd_actions_suite(void)
{
	Suite *s = suite_create("smtpd_actions");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_apply, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, test_redirect_orcpt);
	tcase_add_test(tc, test_keep);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtpd_actions_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
