/* Unit tests for delivery/smtp_class.c: one row per outcome. Every error
 * name is checked against queue/retry_error.c (it must parse and print
 * back the same), and the rows pin down where qmgr's host/non-host view
 * of a name (retry_error_is_host) differs from the scope given here. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/smtp_class.h"
#include "queue/retry.h"

struct class_row {
	enum smtp_stage stage;
	enum smtp_event event;
	int code;
	const char *enh;
	bool via_mx;
	int err;
	/* expected */
	enum agent_status status;
	enum smtp_scope scope;
	const char *cls;
	const char *want_enh;
	bool dead;
	/* retry_error_is_host(name) == (scope == HOST); only for a name */
	bool qmgr_agrees;
};

#define OK AGENT_DELIVERED
#define TF AGENT_TEMPFAIL
#define PF AGENT_PERMFAIL
#define N SMTP_SCOPE_NONE
#define H SMTP_SCOPE_HOST
#define M SMTP_SCOPE_MESSAGE
#define RC SMTP_SCOPE_RECIPIENT
/* stage, reply code, server enh, via MX */
#define REPLY(st, c, e) SMTP_STAGE_##st, SMTP_EVENT_REPLY, c, e, true, 0
/* stage, event, via MX, errno */
#define EV(st, ev, mx, e) SMTP_STAGE_##st, SMTP_EVENT_##ev, 0, NULL, mx, e

static const struct class_row class_rows[] = {
	/* connect */
	{ EV(CONNECT, CONNECT_ERROR, true, ECONNREFUSED), TF, H, "refused_MX", "4.4.1", true, true },
	{ EV(CONNECT, CONNECT_ERROR, false, ECONNREFUSED), TF, H, "refused_A", "4.4.1", true, true },
	{ EV(CONNECT, CONNECT_ERROR, true, ETIMEDOUT), TF, H, "timeout_connect_MX", "4.4.1", true,
	  true },
	{ EV(CONNECT, CONNECT_ERROR, false, ETIMEDOUT), TF, H, "timeout_connect_A", "4.4.1", true,
	  true },
	{ EV(CONNECT, TIMEOUT, true, 0), TF, H, "timeout_connect_MX", "4.4.1", true, true },
	{ EV(CONNECT, TIMEOUT, false, 0), TF, H, "timeout_connect_A", "4.4.1", true, true },
	{ EV(CONNECT, CONNECT_ERROR, true, ENETUNREACH), TF, H, "other", "4.4.1", true, false },
	{ EV(CONNECT, CONNECT_ERROR, false, EHOSTUNREACH), TF, H, "other", "4.4.1", true, false },
	{ EV(CONNECT, LOST, false, ECONNREFUSED), TF, H, "refused_A", "4.4.1", true, true },
	/* greeting: any error is a host error (Exim spec) */
	{ REPLY(GREETING, 220, NULL), OK, N, "", "2.0.0", false, true },
	{ REPLY(GREETING, 421, "4.3.2"), TF, H, "other", "4.3.2", true, false },
	{ REPLY(GREETING, 450, NULL), TF, H, "other", "4.0.0", false, false },
	{ REPLY(GREETING, 554, "5.7.1"), PF, H, "other", "5.7.1", false, false },
	{ REPLY(GREETING, 554, NULL), PF, H, "other", "5.0.0", false, false },
	{ REPLY(GREETING, 354, NULL), TF, H, "other", "4.5.0", true, false },
	{ EV(GREETING, TIMEOUT, false, 0), TF, H, "timeout_A", "4.4.2", true, true },
	{ EV(GREETING, TIMEOUT, true, 0), TF, H, "timeout_MX", "4.4.2", true, true },
	{ EV(GREETING, LOST, true, 0), TF, H, "lost_connection", "4.4.2", true, true },
	{ EV(GREETING, LOST, true, ECONNRESET), TF, H, "lost_connection", "4.4.2", true, true },
	{ EV(GREETING, LOST, true, EPIPE), TF, H, "other", "4.4.2", true, false },
	{ EV(GREETING, PROTOCOL, true, 0), TF, H, "other", "4.5.0", true, false },
	/* EHLO */
	{ REPLY(EHLO, 250, NULL), OK, N, "", "2.0.0", false, true },
	{ REPLY(EHLO, 550, "5.5.1"), PF, H, "other", "5.5.1", false, false },
	{ REPLY(EHLO, 421, NULL), TF, H, "other", "4.0.0", true, false },
	{ EV(EHLO, TIMEOUT, true, 0), TF, H, "timeout_MX", "4.4.2", true, true },
	/* STARTTLS and TLS */
	{ REPLY(STARTTLS, 220, "2.0.0"), OK, N, "", "2.0.0", false, true },
	{ REPLY(STARTTLS, 454, "4.7.0"), TF, H, "other", "4.7.0", false, false },
	{ REPLY(STARTTLS, 502, NULL), TF, H, "other", "4.7.4", false, false },
	{ REPLY(STARTTLS, 554, "5.7.3"), TF, H, "other", "4.7.3", false, false },
	{ EV(STARTTLS, TLS_UNAVAILABLE, true, 0), TF, H, "tls_required", "4.7.4", false, true },
	{ EV(EHLO, TLS_UNAVAILABLE, true, 0), TF, H, "tls_required", "4.7.4", false, true },
	{ EV(TLS, TLS_FAILED, true, 0), TF, H, "tls_required", "4.7.5", true, true },
	{ EV(EHLO, TLS_FAILED, true, 0), TF, H, "tls_required", "4.7.5", true, true },
	{ EV(TLS, TIMEOUT, true, 0), TF, H, "tls_required", "4.7.5", true, true },
	{ EV(TLS, LOST, true, 0), TF, H, "tls_required", "4.7.5", true, true },
	{ EV(TLS, PROTOCOL, true, 0), TF, H, "tls_required", "4.7.5", true, true },
	/* AUTH: a refusal defers (Exim ERRNO_AUTHFAIL), never bounces */
	{ REPLY(AUTH, 235, "2.7.0"), OK, N, "", "2.7.0", false, true },
	{ REPLY(AUTH, 334, NULL), OK, N, "", "2.0.0", false, true },
	{ REPLY(AUTH, 535, "5.7.8"), TF, H, "auth_failed", "4.7.8", false, true },
	{ REPLY(AUTH, 535, NULL), TF, H, "auth_failed", "4.7.0", false, true },
	{ REPLY(AUTH, 454, "4.7.0"), TF, H, "other", "4.7.0", false, false },
	{ EV(AUTH, AUTH_FAILED, true, 0), TF, H, "auth_failed", "4.7.0", false, true },
	{ EV(AUTH, TIMEOUT, true, 0), TF, H, "timeout_MX", "4.4.2", true, true },
	/* MAIL: message errors */
	{ REPLY(MAIL, 250, "2.1.0"), OK, N, "", "2.1.0", false, true },
	{ REPLY(MAIL, 451, "4.3.0"), TF, M, "mail_451", "4.3.0", false, true },
	{ REPLY(MAIL, 452, NULL), TF, M, "mail_452", "4.0.0", false, true },
	{ REPLY(MAIL, 421, "4.7.0"), TF, H, "mail_421", "4.7.0", true, false },
	{ REPLY(MAIL, 550, "5.7.1"), PF, M, "", "5.7.1", false, true },
	{ REPLY(MAIL, 552, "5.3.4"), PF, M, "", "5.3.4", false, true },
	{ REPLY(MAIL, 550, "4.7.1"), PF, M, "", "5.7.1", false, true },	/* class forced */
	{ REPLY(MAIL, 550, "x.y"), PF, M, "", "5.0.0", false, true },	/* junk ignored */
	{ REPLY(MAIL, 354, NULL), TF, M, "other", "4.5.0", true, true },
	{ EV(MAIL, TIMEOUT, true, 0), TF, M, "timeout_MX", "4.4.2", true, false },
	{ EV(MAIL, LOST, true, 0), TF, H, "lost_connection", "4.4.2", true, true },
	{ EV(MAIL, PROTOCOL, true, 0), TF, H, "other", "4.5.0", true, false },
	/* RCPT: recipient errors */
	{ REPLY(RCPT, 250, "2.1.5"), OK, N, "", "2.1.5", false, true },
	{ REPLY(RCPT, 251, NULL), OK, N, "", "2.0.0", false, true },
	{ REPLY(RCPT, 450, "4.2.0"), TF, RC, "rcpt_450", "4.2.0", false, true },
	{ REPLY(RCPT, 452, "4.5.3"), TF, RC, "rcpt_452", "4.5.3", false, true },
	{ REPLY(RCPT, 421, NULL), TF, H, "rcpt_421", "4.0.0", true, false },
	{ REPLY(RCPT, 550, "5.1.1"), PF, RC, "", "5.1.1", false, true },
	{ REPLY(RCPT, 553, NULL), PF, RC, "", "5.0.0", false, true },
	/* RFC 5321 4.5.3.1.10: 552 to RCPT is the "too many recipients" 452 */
	{ REPLY(RCPT, 552, "5.5.3"), TF, RC, "rcpt_452", "4.5.3", false, true },
	{ REPLY(RCPT, 552, NULL), TF, RC, "rcpt_452", "4.0.0", false, true },
	{ REPLY(RCPT, 354, NULL), TF, RC, "rcpt_4xx", "4.5.0", true, true },
	{ EV(RCPT, TIMEOUT, false, 0), TF, RC, "timeout_A", "4.4.2", true, false },
	{ EV(RCPT, LOST, false, 0), TF, H, "lost_connection", "4.4.2", true, true },
	/* DATA: message errors; a timeout waiting for 354 is a host error */
	{ REPLY(DATA, 354, NULL), OK, N, "", "2.0.0", false, true },
	{ REPLY(DATA, 451, "4.3.0"), TF, M, "data_451", "4.3.0", false, true },
	{ REPLY(DATA, 421, NULL), TF, H, "data_421", "4.0.0", true, false },
	{ REPLY(DATA, 554, "5.5.1"), PF, M, "", "5.5.1", false, true },
	{ REPLY(DATA, 250, NULL), TF, M, "other", "4.5.0", true, true },
	{ EV(DATA, TIMEOUT, true, 0), TF, H, "timeout_MX", "4.4.2", true, true },
	{ EV(DATA, LOST, true, 0), TF, H, "lost_connection", "4.4.2", true, true },
	/* sending the content: host errors; an early reply answers the content */
	{ EV(CONTENT, TIMEOUT, false, 0), TF, H, "timeout_A", "4.4.2", true, true },
	{ EV(CONTENT, LOST, false, 0), TF, H, "lost_connection", "4.4.2", true, true },
	{ EV(CONTENT, LOST, false, EPIPE), TF, H, "other", "4.4.2", true, false },
	{ REPLY(CONTENT, 552, "5.3.4"), PF, M, "", "5.3.4", false, true },
	{ REPLY(CONTENT, 451, NULL), TF, M, "data_451", "4.0.0", false, true },
	{ REPLY(CONTENT, 250, NULL), TF, M, "other", "4.5.0", true, true },	/* before "." */
	/* the final ".": message errors, lost connection included */
	{ REPLY(DOT, 250, "2.0.0"), OK, N, "", "2.0.0", false, true },
	{ REPLY(DOT, 250, NULL), OK, N, "", "2.0.0", false, true },
	{ REPLY(DOT, 451, "4.3.0"), TF, M, "data_451", "4.3.0", false, true },
	{ REPLY(DOT, 452, "4.3.1"), TF, M, "data_452", "4.3.1", false, true },
	{ REPLY(DOT, 421, NULL), TF, H, "data_421", "4.0.0", true, false },
	{ REPLY(DOT, 554, "5.7.1"), PF, M, "", "5.7.1", false, true },
	{ REPLY(DOT, 354, NULL), TF, M, "other", "4.5.0", true, true },
	{ EV(DOT, TIMEOUT, true, 0), TF, M, "timeout_MX", "4.4.2", true, false },
	{ EV(DOT, LOST, true, 0), TF, M, "lost_connection", "4.4.2", true, false },
	{ EV(DOT, LOST, true, ECONNRESET), TF, M, "lost_connection", "4.4.2", true, false },
	{ EV(DOT, LOST, true, EIO), TF, H, "other", "4.4.2", true, false },
	{ EV(DOT, PROTOCOL, true, 0), TF, H, "other", "4.5.0", true, false },
	/* our own decisions */
	{ EV(MAIL, SMTPUTF8_UNAVAILABLE, true, 0), PF, H, "other", "5.6.7", false, false },
	{ EV(MAIL, TOO_BIG, true, 0), PF, M, "", "5.3.4", false, true },
};

START_TEST(test_rows)
{
	const struct class_row *row = &class_rows[_i];
	struct smtp_class_input in = {
		.stage = row->stage, .event = row->event, .code = row->code, .enh = row->enh,
		.via_mx = row->via_mx, .err = row->err,
	};
	struct smtp_class_result out;
	struct retry_error e;
	char name[RETRY_NAME_SIZE];

	memset(&out, 0x5a, sizeof(out));
	smtp_class_outcome(&in, &out);
	ck_assert_msg(out.status == row->status, "row %d: status %d want %d", _i, out.status,
	              row->status);
	ck_assert_msg(out.scope == row->scope, "row %d: scope %d want %d", _i, out.scope, row->scope);
	ck_assert_msg(strcmp(out.err_class, row->cls) == 0, "row %d: class \"%s\" want \"%s\"", _i,
	              out.err_class, row->cls);
	ck_assert_msg(strcmp(out.enh, row->want_enh) == 0, "row %d: enh \"%s\" want \"%s\"", _i,
	              out.enh, row->want_enh);
	ck_assert_msg(out.conn_dead == row->dead, "row %d: conn_dead %d", _i, out.conn_dead);
	/* the enhanced code's class is always the status's */
	ck_assert_int_eq(out.enh[0], out.status == OK ? '2' : out.status == TF ? '4' : '5');
	ck_assert_int_eq(smtp_class_is_host_error(&out), out.scope == H);
	if (out.err_class[0] == '\0') {
		ck_assert_msg(out.status != TF, "row %d: a tempfail needs a name", _i);
		return;
	}
	/* the name is one retry_error.c knows, printed back the same */
	ck_assert_msg(retry_error_parse(out.err_class, &e) == 0, "row %d: \"%s\" does not parse", _i,
	              out.err_class);
	ck_assert_str_eq(retry_error_name(&e, name, sizeof(name)), out.err_class);
	ck_assert_msg(retry_error_is_host(&e) == (out.scope == H) || !row->qmgr_agrees,
	              "row %d: qmgr sees \"%s\" as %s", _i, out.err_class,
	              retry_error_is_host(&e) ? "host" : "not host");
	ck_assert_msg(retry_error_is_host(&e) != (out.scope == H) || row->qmgr_agrees,
	              "row %d: qmgr now agrees on \"%s\": update the row", _i, out.err_class);
}
END_TEST

/* "rcpt_452" as named here also matches a "rcpt_4xx" rule, as in Exim. */
START_TEST(test_codes)
{
	struct retry_error e;

	ck_assert_int_eq(retry_error_parse("rcpt_452", &e), 0);
	ck_assert_int_eq(e.cls, RETRY_CLASS_RCPT_4XX);
	ck_assert_int_eq(e.smtp_code, 452);
	ck_assert_int_eq(retry_error_parse("timeout_connect_MX", &e), 0);
	ck_assert_int_eq(e.cls, RETRY_CLASS_TIMEOUT_CONNECT);
	ck_assert_int_eq(e.via, RETRY_VIA_MX);
}
END_TEST

START_TEST(test_stage_names)
{
	ck_assert_str_eq(smtp_class_stage_name(SMTP_STAGE_RCPT), "RCPT TO");
	ck_assert_str_eq(smtp_class_stage_name(SMTP_STAGE_MAIL), "MAIL FROM");
	ck_assert_str_eq(smtp_class_stage_name(SMTP_STAGE_DOT), "end of DATA");
	ck_assert_str_eq(smtp_class_stage_name(SMTP_STAGE_GREETING), "initial server greeting");
}
END_TEST

/* Pairs that cannot happen are bugs. */
static const struct smtp_class_input class_bugs[] = {
	{ .stage = SMTP_STAGE_CONNECT, .event = SMTP_EVENT_REPLY, .code = 220 },
	{ .stage = SMTP_STAGE_TLS, .event = SMTP_EVENT_REPLY, .code = 250 },
	{ .stage = SMTP_STAGE_RCPT, .event = SMTP_EVENT_CONNECT_ERROR, .err = ECONNREFUSED },
	{ .stage = SMTP_STAGE_RCPT, .event = SMTP_EVENT_REPLY, .code = 99 },
	{ .stage = SMTP_STAGE_RCPT, .event = SMTP_EVENT_REPLY, .code = 600 },
	{ .stage = (enum smtp_stage)99, .event = SMTP_EVENT_TIMEOUT },
	{ .stage = SMTP_STAGE_RCPT, .event = (enum smtp_event)99 },
};

START_TEST(test_bugs_panic)
{
	struct smtp_class_result out;

	smtp_class_outcome(&class_bugs[_i], &out);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("smtp_class");
	TCase *tc = tcase_create("rows");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_rows, 0, (int)(sizeof(class_rows) / sizeof(class_rows[0])));
	tcase_add_test(tc, test_codes);
	tcase_add_test(tc, test_stage_names);
	tcase_add_loop_test_raise_signal(tc, test_bugs_panic, SIGABRT, 0,
	                                 (int)(sizeof(class_bugs) / sizeof(class_bugs[0])));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
