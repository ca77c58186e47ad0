/*
 * ternctl_trace: the log follower, fed log lines (tools/ternctl_trace.h).
 */
#include "tools/ternctl_trace.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"

/* 2024-11-21 12:00:00 UTC: "now" for the syslog year; TZ is UTC here. */
#define NOW 1732190400

/* A delivered message, a bounced one with its DSN, an unrelated one. */
static const char *const demo_log[] = {
	"Nov 21 09:45:26 mail tern/smtpd[30656]: connect from host[192.0.2.1]",
	"Nov 21 09:45:26 mail tern/smtpd[30656]: A33AC101BACA8F: client=host[192.0.2.1]",
	"Nov 21 09:45:26 mail tern/qmgr[28292]: A33AC101BACA8F: from=<a@example.org>, size=1523, nrcpt=1 (queue active)",
	"Nov 21 09:45:26 mail tern/smtpd[30656]: B00000000000B1: client=host[192.0.2.1]",
	"Nov 21 09:45:26 mail tern/qmgr[28292]: B00000000000B1: from=<c@example.org>, size=10, nrcpt=1 (queue active)",
	"Nov 21 09:45:27 mail tern/smtp[29660]: A33AC101BACA8F: to=<b@example.net>, relay=mx.example.net[198.51.100.7]:25, delay=0.8, delays=0/0.01/0.32/0.47, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as XYZ123)",
	"Nov 21 09:45:27 mail tern/qmgr[28292]: A33AC101BACA8F: removed",
	"Nov 21 09:45:28 mail tern/smtp[29660]: B00000000000B1: to=<nobody@example.net>, relay=mx.example.net[198.51.100.7]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (550 5.1.1 no such user)",
	"Nov 21 09:45:28 mail tern/qmgr[28292]: B00000000000B1: sender non-delivery notification: C00000000000C2",
	"Nov 21 09:45:28 mail tern/qmgr[28292]: B00000000000B1: removed",
	"Nov 21 09:45:28 mail tern/qmgr[28292]: C00000000000C2: from=<>, size=2000, nrcpt=1 (queue active)",
	"Nov 21 09:45:29 mail tern/smtp[29660]: C00000000000C2: to=<c@example.org>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
	"Nov 21 09:45:29 mail tern/qmgr[28292]: C00000000000C2: removed",
	"Nov 21 09:46:00 mail tern/smtpd[30656]: D00000000000D3: client=other[192.0.2.9]",
	"Nov 21 09:46:00 mail tern/qmgr[28292]: D00000000000D3: from=<z@example.com>, size=5, nrcpt=1 (queue active)",
	"Nov 21 09:46:01 mail tern/qmgr[28292]: D00000000000D3: removed",
};

static struct trace *
run(const struct trace_filter *f, const char *const *lines, size_t n)
{
	struct trace *t = trace_new(f, NOW);

	for (size_t i = 0; i < n; i++)
		trace_line(t, lines[i], strlen(lines[i]));
	return t;
}

#define DEMO demo_log, sizeof(demo_log) / sizeof(demo_log[0])

/* Rendered text, and how many messages. */
static size_t
render(struct trace *t, struct buf *out, bool json)
{
	buf_init(out, 1 << 20);
	return trace_render(t, out, json);
}

static const struct {
	const char *from, *to, *id;
	int64_t since;
	size_t messages;
	const char *has, *lacks;	/* text that must (not) be in the output */
} rows[] = {
	{ NULL, "b@example.net", NULL, 0, 1, "A33AC101BACA8F: client=", "B00000000000B1" },
	{ NULL, "B@EXAMPLE.NET", NULL, 0, 1, "queued as XYZ123", NULL },
	/* the bounce follows its message */
	{ NULL, "nobody@example.net", NULL, 0, 2, "[made from B00000000000B1]", "A33AC101BACA8F" },
	{ "c@example.org", NULL, NULL, 0, 2, "C00000000000C2: removed", "D00000000000D3" },
	{ "@example.org", NULL, NULL, 0, 3, "*** A33AC101BACA8F", "D00000000000D3" },
	{ "<>", NULL, NULL, 0, 2, "*** C00000000000C2", "A33AC101BACA8F" },
	{ NULL, NULL, "d00000000000d3", 0, 1, "other[192.0.2.9]", "connect from" },
	{ NULL, NULL, "C00000000000C2", 0, 2, "*** B00000000000B1", NULL },
	/* both criteria must hold */
	{ "a@example.org", "nobody@example.net", NULL, 0, 0, NULL, "***" },
	{ "a@example.org", "b@example.net", NULL, 0, 1, "A33AC101BACA8F", NULL },
	/* --since cuts the earlier lines away */
	{ NULL, NULL, "D00000000000D3", 1732182361, 1, "D3: removed", "client=" },	/* 09:46:01 */
	{ NULL, "@example.net", NULL, 1732182328, 2, "B00000000000B1: to=", "client=" },
	{ NULL, "nobody@example.com", NULL, 0, 0, NULL, "***" },
	{ NULL, "@net", NULL, 0, 0, NULL, "***" },	/* a domain is a whole label */
};

/* The demo log, then refusals: before a queue id (NOQUEUE) and within a
 * queued transaction (a second RCPT refused after the first was taken). */
static const char *const refusal_log[] = {
	"Nov 21 09:45:26 mail tern/smtpd[30656]: A33AC101BACA8F: client=host[192.0.2.1]",
	"Nov 21 09:45:26 mail tern/qmgr[28292]: A33AC101BACA8F: from=<a@example.org>, size=1523, nrcpt=1 (queue active)",
	"Nov 21 09:45:27 mail tern/smtpd[30656]: A33AC101BACA8F: reject: RCPT from host[192.0.2.1]: 550 5.1.1 <w@example.org>: Recipient address rejected: User unknown; from=<a@example.org> to=<w@example.org> proto=ESMTP helo=<host>",
	"Nov 21 09:45:27 mail tern/qmgr[28292]: A33AC101BACA8F: removed",
	"Nov 21 09:47:00 mail tern/smtpd[30656]: NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 554 5.7.1 <v@other.test>: Relay access denied; from=<a@example.org> to=<v@other.test> proto=ESMTP helo=<client.test>",
	"Nov 21 09:47:01 mail tern/smtpd[30656]: NOQUEUE: reject: CONNECT from unknown[192.0.2.9]: 554 5.7.1 Access denied; proto=SMTP",
	"Nov 21 09:47:02 mail tern/smtpd[30656]: NOQUEUE: reject_warning: RCPT from unknown[192.0.2.9]: 450 4.7.1 <x@example.org>: test; from=<> to=<x@example.org> proto=ESMTP helo=<c>",
};

static const struct {
	const char *from, *to, *id;
	size_t messages;
	const char *has, *lacks;
} refusal_rows[] = {
	{ NULL, "v@other.test", NULL, 1, "*** NOQUEUE\n", "A33AC101BACA8F" },
	{ NULL, "v@other.test", NULL, 1, "Relay access denied", "proto=SMTP\n" },
	{ "a@example.org", NULL, NULL, 2, "*** A33AC101BACA8F", "reject_warning" },
	{ "a@example.org", "v@other.test", NULL, 1, "Relay access denied", "A33AC" },
	{ "<>", NULL, NULL, 1, "reject_warning: RCPT", "Relay" },
	/* a refused recipient of a queued message finds that message */
	{ NULL, "w@example.org", NULL, 1, "*** A33AC101BACA8F", "NOQUEUE" },
	/* a NOQUEUE line has no id to match */
	{ NULL, NULL, "A33AC101BACA8F", 1, "A33AC101BACA8F: removed", "NOQUEUE" },
	{ "b@example.org", NULL, NULL, 0, NULL, "***" },
};

START_TEST(test_refusals)
{
	struct trace_filter f = { refusal_rows[_i].from, refusal_rows[_i].to, refusal_rows[_i].id, 0 };
	struct trace *t = run(&f, refusal_log, sizeof(refusal_log) / sizeof(refusal_log[0]));
	struct buf out;
	size_t n = render(t, &out, false);
	const char *s = buf_cstr(&out);

	ck_assert_msg(n == refusal_rows[_i].messages, "row %d: %zu messages:\n%s", _i, n, s);
	if (refusal_rows[_i].has)
		ck_assert_msg(strstr(s, refusal_rows[_i].has) != NULL, "row %d lacks %s:\n%s", _i,
		              refusal_rows[_i].has, s);
	if (refusal_rows[_i].lacks)
		ck_assert_msg(strstr(s, refusal_rows[_i].lacks) == NULL, "row %d has %s:\n%s", _i,
		              refusal_rows[_i].lacks, s);
	buf_free(&out);
	trace_free(t);
}
END_TEST

/* Messages and NOQUEUE lines come out in time order; JSON names them. */
START_TEST(test_refusal_order)
{
	struct trace_filter f = { "a@example.org", NULL, NULL, 0 };
	struct trace *t = run(&f, refusal_log, sizeof(refusal_log) / sizeof(refusal_log[0]));
	struct buf out;
	const char *s, *a, *nq;

	render(t, &out, false);
	s = buf_cstr(&out);
	a = strstr(s, "*** A33AC101BACA8F");
	nq = strstr(s, "*** NOQUEUE");
	ck_assert(a != NULL && nq != NULL && a < nq);
	buf_free(&out);
	ck_assert_uint_eq(render(t, &out, true), 2);
	ck_assert(strstr(buf_cstr(&out), "\"id\": \"NOQUEUE\"") != NULL);
	buf_free(&out);
	trace_free(t);
}
END_TEST

/* Matching NOQUEUE lines are kept up to TRACE_NOQUEUE_MAX, then counted. */
START_TEST(test_refusal_limit)
{
	struct trace_filter f = { NULL, "@other.test", NULL, 0 };
	struct trace *t = trace_new(&f, NOW);
	const char *line = refusal_log[4];

	for (size_t i = 0; i < TRACE_NOQUEUE_MAX + 5; i++)
		trace_line(t, line, strlen(line));
	ck_assert_uint_eq(trace_noqueue_left_out(t), 5);
	trace_free(t);
}
END_TEST

START_TEST(test_rows)
{
	struct trace_filter f = { rows[_i].from, rows[_i].to, rows[_i].id, rows[_i].since };
	struct trace *t = run(&f, DEMO);
	struct buf out;
	size_t n = render(t, &out, false);

	ck_assert_msg(n == rows[_i].messages, "row %d: %zu messages:\n%s", _i, n, buf_cstr(&out));
	if (rows[_i].has)
		ck_assert_msg(strstr(buf_cstr(&out), rows[_i].has) != NULL, "row %d lacks %s:\n%s",
		              _i, rows[_i].has, buf_cstr(&out));
	if (rows[_i].lacks)
		ck_assert_msg(strstr(buf_cstr(&out), rows[_i].lacks) == NULL, "row %d has %s:\n%s",
		              _i, rows[_i].lacks, buf_cstr(&out));
	buf_free(&out);
	trace_free(t);
}
END_TEST

/* Lines of a message come out in log order; messages in order of first line. */
START_TEST(test_order)
{
	struct trace_filter f = { "@example.org", NULL, NULL, 0 };
	struct trace *t = run(&f, DEMO);
	struct buf out;
	const char *s, *a, *b, *c;

	render(t, &out, false);
	s = buf_cstr(&out);
	a = strstr(s, "*** A33AC101BACA8F");
	a = a != NULL ? strchr(a, '\n') : NULL;	/* past the header */
	b = strstr(s, "*** B00000000000B1");
	c = strstr(s, "*** C00000000000C2");
	ck_assert(a != NULL && b != NULL && c != NULL && a < b && b < c);
	ck_assert(strstr(a, "client=") < strstr(a, "from=<a@") &&
	          strstr(a, "from=<a@") < strstr(a, "to=<b@") && strstr(a, "to=<b@") < b);
	buf_free(&out);
	trace_free(t);
}
END_TEST

/* Messages that did not match are forgotten at "removed". */
START_TEST(test_forgets)
{
	struct trace_filter f = { NULL, "b@example.net", NULL, 0 };
	struct trace *t = run(&f, DEMO);

	/* A (matched) stays; B, its bounce C and D are gone. */
	ck_assert_uint_eq(trace_open_count(t), 1);
	trace_free(t);
}
END_TEST

/* Many messages through the log, few open at once: memory stays small. */
START_TEST(test_bounded)
{
	struct trace_filter f = { NULL, "needle@example.org", NULL, 0 };
	struct trace *t = trace_new(&f, NOW);
	char line[256];
	size_t peak = 0;

	for (unsigned i = 0; i < 100000; i++) {
		const char *to = i == 77777 ? "needle@example.org" : "hay@example.org";
		int n;

		n = snprintf(line, sizeof(line),
		             "Nov 21 10:00:00 mail tern/qmgr[1]: %014X: from=<s@example.org>, size=1", i);
		trace_line(t, line, (size_t)n);
		n = snprintf(line, sizeof(line),
		             "Nov 21 10:00:00 mail tern/lmtp[2]: %014X: to=<%s>, status=sent (ok)", i, to);
		trace_line(t, line, (size_t)n);
		if (trace_open_count(t) > peak)
			peak = trace_open_count(t);
		n = snprintf(line, sizeof(line), "Nov 21 10:00:00 mail tern/qmgr[1]: %014X: removed", i);
		trace_line(t, line, (size_t)n);
	}
	ck_assert_uint_le(peak, 2);
	ck_assert_uint_eq(trace_open_count(t), 1);
	trace_free(t);
}
END_TEST

/* Hostile and odd lines: skipped or kept safely, never crash. */
START_TEST(test_hostile)
{
	static const char *const lines[] = {
		"",
		"garbage",
		"Nov 21 09:45:26",
		"Nov 21 09:45:26 ",
		"Nov 21 09:45:26 mail",
		"Nov 21 09:45:26 mail tern/qmgr[1]:",
		"Nov 21 09:45:26 mail tern/qmgr[1]: warning: something odd",
		"Nov 21 09:45:26 mail tern/qmgr[1]: NOQUEUE: reject: RCPT from x; from=<e@example.org> to=<e@example.org>",
		"Foo 21 09:45:26 mail tern/qmgr[1]: E00000000000E5: from=<e@example.org>",
		"Nov 32 09:45:26 mail tern/qmgr[1]: E00000000000E5: from=<e@example.org>",
		"Nov 21 25:45:26 mail tern/qmgr[1]: E00000000000E5: from=<e@example.org>",
		"2024-13-01T00:00:00Z mail tern/qmgr[1]: E00000000000E5: from=<e@example.org>",
		"Nov 21 09:45:26 mail tern/qmgr[1]: E00000000000E5: from=<e@example.org",
		"Nov 21 09:45:26 mail tern/qmgr[1]: E00000000000E5: to=<e@example.org>, x=\x1b[31m",
		"Nov 21 09:45:26 mail tern/qmgr[1]: E00000000000E5: sender non-delivery notification: E00000000000E5",
		"Nov 21 09:45:26 mail tern/qmgr[1]: E00000000000E5: sender non-delivery notification: ",
		"Nov 21 09:45:26 mail tern/qmgr[1]: 0123456789012345678901234567890123: from=<e@example.org>",
	};
	struct trace_filter f = { NULL, "e@example.org", NULL, 0 };
	struct trace *t = run(&f, lines, sizeof(lines) / sizeof(lines[0]));
	struct buf out;
	size_t n = render(t, &out, false);

	/* E5's well-formed lines (to= matched it; the escape is escaped) and
	 * the NOQUEUE refusal, which names the address too. */
	ck_assert_uint_eq(n, 2);
	ck_assert(strstr(buf_cstr(&out), "\x1b") == NULL);
	ck_assert(strstr(buf_cstr(&out), "\\033[31m") != NULL);
	ck_assert(strstr(buf_cstr(&out), "*** NOQUEUE\n") != NULL);
	ck_assert(strstr(buf_cstr(&out), "Foo 21") == NULL);
	buf_free(&out);
	trace_free(t);
}
END_TEST

/* An over-long line is kept cut; a message keeps at most TRACE_LINES_MAX. */
START_TEST(test_limits)
{
	struct trace_filter f = { NULL, NULL, "F00000000000F6", 0 };
	struct trace *t = trace_new(&f, NOW);
	size_t big = 3 * TRACE_LINE_MAX;
	char *line = malloc(big + 1);
	struct buf out;
	int n;

	n = snprintf(line, big, "Nov 21 09:45:26 mail tern/qmgr[1]: F00000000000F6: from=<x@y>, ");
	memset(line + n, 'a', big - (size_t)n);
	line[big] = '\0';
	trace_line(t, line, big);
	for (int i = 0; i < TRACE_LINES_MAX + 5; i++)
		trace_line(t, line, 60 + 10);
	render(t, &out, false);
	ck_assert(strstr(buf_cstr(&out), "aaa...\n") != NULL);
	ck_assert(strstr(buf_cstr(&out), "(6 more lines left out)") != NULL);
	buf_free(&out);
	free(line);
	trace_free(t);
}
END_TEST

START_TEST(test_json)
{
	static const char head[] = "[\n  {\"id\": \"B00000000000B1\", \"parent\": null, "
	                           "\"sender\": \"c@example.org\", \"first\": 1732182326";
	struct trace_filter f = { NULL, "nobody@example.net", NULL, 0 };
	struct trace *t = run(&f, DEMO);
	struct buf out;

	ck_assert_uint_eq(render(t, &out, true), 2);
	ck_assert(strncmp(buf_cstr(&out), head, sizeof(head) - 1) == 0);
	ck_assert(strstr(buf_cstr(&out), "{\"id\": \"C00000000000C2\", \"parent\": \"B00000000000B1\", "
	                 "\"sender\": \"\"") != NULL);
	buf_free(&out);
	trace_free(t);
}
END_TEST

static const struct {
	const char *line;
	int64_t want;
	size_t used;
} times[] = {
	{ "Nov 21 09:45:26 h", 1732182326, 16 },
	{ "Nov  1 00:00:00 h", 1730419200, 16 },
	{ "Dec 31 23:59:59 h", 1704067199, 16 },	/* in the future: last year */
	{ "2024-11-21T09:45:26Z h", 1732182326, 21 },
	{ "2024-11-21T10:45:26.123456+01:00 h", 1732182326, 33 },
	{ "2024-11-21T08:45:26-01:00 h", 1732182326, 26 },
	{ "2024-11-21T08:45:26 h", -1, 0 },
	{ "Nov 21 09:45:26", -1, 0 },
	{ "nov 21 09:45:26 h", -1, 0 },
	{ "Nov 21 09:45:2x h", -1, 0 },
};

START_TEST(test_times)
{
	size_t used = 0;
	int64_t got = trace_parse_time(times[_i].line, strlen(times[_i].line), NOW, &used);

	ck_assert_msg(got == times[_i].want, "%s: %lld", times[_i].line, (long long)got);
	if (got >= 0)
		ck_assert_uint_eq(used, times[_i].used);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("ternctl_trace");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	setenv("TZ", "UTC", 1);
	tzset();
	tcase_add_loop_test(tc, test_rows, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_test(tc, test_order);
	tcase_add_loop_test(tc, test_refusals, 0, sizeof(refusal_rows) / sizeof(refusal_rows[0]));
	tcase_add_test(tc, test_refusal_order);
	tcase_add_test(tc, test_refusal_limit);
	tcase_add_test(tc, test_forgets);
	tcase_add_test(tc, test_bounded);
	tcase_add_test(tc, test_hostile);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_json);
	tcase_add_loop_test(tc, test_times, 0, sizeof(times) / sizeof(times[0]));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
