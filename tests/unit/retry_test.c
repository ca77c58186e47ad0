/*
 * retry_test: retry rules and the retry arithmetic, on an injected clock
 * and a deterministic random source. Table-driven: error classes against
 * failure kinds (a matrix), first-match order, senders=, host-then-domain
 * keys, parse errors with their exact FILE:LINE text, Exim's default
 * schedule, G's gap rule, H's bounds over 10,000 draws, retry_interval_max,
 * rules without sets, quota_<time>, the message-age rules,
 * retry_data_expire, the Postfix fallback, and explain.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "config/config.h"
#include "queue/retry.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define ERRORS_MAX (64u * 1024)
#define OUT_MAX (1024u * 1024)
/* The injected clock: an arbitrary epoch far from 0. */
#define T0 ((int64_t)1700000000)
#define MIN 60
#define HOUR 3600
#define DAY 86400
#define NO_MAX ((int64_t)1 << 40)	/* interval_max that never clamps */

/* ---- helpers ---- */

static struct retry_rules *
parse_ok(const char *text)
{
	struct buf errors;
	struct retry_rules *r;

	buf_init(&errors, ERRORS_MAX);
	r = retry_rules_parse(text, strlen(text), "rules", &errors);
	ck_assert_msg(r != NULL, "parse failed: %s", buf_cstr(&errors));
	ck_assert_uint_eq(buf_len(&errors), 0);
	buf_free(&errors);
	return r;
}

static struct retry_error
mkerr(enum retry_class cls, int code, enum retry_via via, int64_t idle)
{
	struct retry_error e = { cls, code, via, idle };

	return e;
}

/* xorshift64*: deterministic, and good enough to spread H draws. */
static uint64_t
rand_xorshift(void *arg)
{
	uint64_t *s = arg;

	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static uint64_t
rand_zero(void *arg)
{
	(void)arg;
	return 0;
}

/* Returns *(uint64_t *)arg: pick the draw. */
static uint64_t
rand_fixed(void *arg)
{
	return *(uint64_t *)arg;
}

/* The line of the matching rule, 0 for none. */
static unsigned
match_line(const struct retry_rules *rules, const char *host, const char *domain,
           const char *address, struct retry_error e, const char *sender)
{
	const struct retry_rule *r = retry_rules_match(rules, host, domain, address, &e, sender);

	return r ? retry_rule_line(r) : 0;
}

/* ---- error classes: every rule name against every failure kind ---- */

/* Columns: the error field of the rule. */
static const char *const matrix_rules[] = {
	"*",
	"auth_failed",
	"data_4xx", "data_45x", "data_451",
	"mail_4xx", "mail_45x",
	"rcpt_4xx", "rcpt_45x", "rcpt_452",
	"lost_connection",
	"lookup",
	"refused", "refused_MX", "refused_A",
	"timeout", "timeout_MX", "timeout_A",
	"timeout_connect", "timeout_connect_MX", "timeout_connect_A",
	"tls_required",
	"quota", "quota_7d",
};

/* Rows: a failure, and which columns match it (blanks are for reading). */
static const struct matrix_case {
	const char *what;
	struct retry_error e;
	const char *expect;
} matrix_cases[] = {
	/*                                                              * a dat ma rcp l l ref tmo tcn t qu */
	{ "auth failed", { RETRY_CLASS_AUTH_FAILED, 0, 0, -1 },        "1 1 000 00 000 0 0 000 000 000 0 00" },
	{ "451 to DATA", { RETRY_CLASS_DATA_4XX, 451, 0, -1 },         "1 0 111 00 000 0 0 000 000 000 0 00" },
	{ "421 to DATA", { RETRY_CLASS_DATA_4XX, 421, 0, -1 },         "1 0 100 00 000 0 0 000 000 000 0 00" },
	{ "4xx to DATA, code unknown", { RETRY_CLASS_DATA_4XX, 0, 0, -1 }, "1 0 100 00 000 0 0 000 000 000 0 00" },
	{ "452 to MAIL", { RETRY_CLASS_MAIL_4XX, 452, 0, -1 },         "1 0 000 11 000 0 0 000 000 000 0 00" },
	{ "4xx to MAIL, code unknown", { RETRY_CLASS_MAIL_4XX, 0, 0, -1 }, "1 0 000 10 000 0 0 000 000 000 0 00" },
	{ "452 to RCPT", { RETRY_CLASS_RCPT_4XX, 452, 0, -1 },         "1 0 000 00 111 0 0 000 000 000 0 00" },
	{ "451 to RCPT", { RETRY_CLASS_RCPT_4XX, 451, 0, -1 },         "1 0 000 00 110 0 0 000 000 000 0 00" },
	{ "421 to RCPT", { RETRY_CLASS_RCPT_4XX, 421, 0, -1 },         "1 0 000 00 100 0 0 000 000 000 0 00" },
	{ "4xx to RCPT, code unknown", { RETRY_CLASS_RCPT_4XX, 0, 0, -1 }, "1 0 000 00 100 0 0 000 000 000 0 00" },
	{ "lost connection", { RETRY_CLASS_LOST_CONNECTION, 0, 0, -1 }, "1 0 000 00 000 1 0 000 000 000 0 00" },
	{ "host lookup", { RETRY_CLASS_LOOKUP, 0, 0, -1 },             "1 0 000 00 000 0 1 000 000 000 0 00" },
	{ "refused, MX host", { RETRY_CLASS_REFUSED, 0, RETRY_VIA_MX, -1 }, "1 0 000 00 000 0 0 110 000 000 0 00" },
	{ "refused, A host", { RETRY_CLASS_REFUSED, 0, RETRY_VIA_A, -1 }, "1 0 000 00 000 0 0 101 000 000 0 00" },
	{ "refused, unknown", { RETRY_CLASS_REFUSED, 0, 0, -1 },       "1 0 000 00 000 0 0 100 000 000 0 00" },
	{ "connect timeout, MX", { RETRY_CLASS_TIMEOUT_CONNECT, 0, RETRY_VIA_MX, -1 }, "1 0 000 00 000 0 0 000 110 110 0 00" },
	{ "connect timeout, A", { RETRY_CLASS_TIMEOUT_CONNECT, 0, RETRY_VIA_A, -1 }, "1 0 000 00 000 0 0 000 101 101 0 00" },
	{ "connect timeout, unknown", { RETRY_CLASS_TIMEOUT_CONNECT, 0, 0, -1 }, "1 0 000 00 000 0 0 000 100 100 0 00" },
	{ "session timeout, MX", { RETRY_CLASS_TIMEOUT, 0, RETRY_VIA_MX, -1 }, "1 0 000 00 000 0 0 000 110 000 0 00" },
	{ "session timeout, A", { RETRY_CLASS_TIMEOUT, 0, RETRY_VIA_A, -1 }, "1 0 000 00 000 0 0 000 101 000 0 00" },
	{ "session timeout, unknown", { RETRY_CLASS_TIMEOUT, 0, 0, -1 }, "1 0 000 00 000 0 0 000 100 000 0 00" },
	{ "TLS required", { RETRY_CLASS_TLS_REQUIRED, 0, 0, -1 },      "1 0 000 00 000 0 0 000 000 000 1 00" },
	{ "quota, idle unknown", { RETRY_CLASS_QUOTA, 0, 0, -1 },      "1 0 000 00 000 0 0 000 000 000 0 10" },
	{ "quota, idle 6d", { RETRY_CLASS_QUOTA, 0, 0, 6 * DAY },      "1 0 000 00 000 0 0 000 000 000 0 10" },
	{ "quota, idle 7d", { RETRY_CLASS_QUOTA, 0, 0, 7 * DAY },      "1 0 000 00 000 0 0 000 000 000 0 11" },
	{ "quota, idle 7d+1s", { RETRY_CLASS_QUOTA, 0, 0, 7 * DAY + 1 }, "1 0 000 00 000 0 0 000 000 000 0 11" },
	{ "other", { RETRY_CLASS_OTHER, 0, 0, -1 },                    "1 0 000 00 000 0 0 000 000 000 0 00" },
};

START_TEST(test_class_matrix)
{
	const struct matrix_case *c = &matrix_cases[_i];
	char text[256], got[64], want[64];
	struct retry_rules *rules;
	size_t i, j = 0;

	for (i = 0; c->expect[i]; i++)
		if (c->expect[i] != ' ')
			want[j++] = c->expect[i];
	want[j] = '\0';
	ck_assert_uint_eq(j, NELEM(matrix_rules));
	for (i = 0; i < NELEM(matrix_rules); i++) {
		snprintf(text, sizeof(text), "*  %s  F,1h,10m\n", matrix_rules[i]);
		rules = parse_ok(text);
		got[i] = match_line(rules, NULL, "example.org", NULL, c->e, NULL) ? '1' : '0';
		retry_rules_free(rules);
	}
	got[i] = '\0';
	ck_assert_msg(strcmp(got, want) == 0, "%s: got %s, want %s", c->what, got, want);
}
END_TEST

/* Names typed at ternctl, and the names logs print. */
static const struct name_case {
	const char *in;
	int rc;
	const char *out;
} name_cases[] = {
	{ "rcpt_452", 0, "rcpt_452" },
	{ "RCPT_452", 0, "rcpt_452" },
	{ "rcpt_45x", 0, "rcpt_450" },
	{ "rcpt_4xx", 0, "rcpt_4xx" },
	{ "data_4xx", 0, "data_4xx" },
	{ "mail_421", 0, "mail_421" },
	{ "refused", 0, "refused" },
	{ "Refused_mx", 0, "refused_MX" },
	{ "refused_A", 0, "refused_A" },
	{ "timeout", 0, "timeout" },
	{ "timeout_MX", 0, "timeout_MX" },
	{ "timeout_connect_A", 0, "timeout_connect_A" },
	{ "timeout_connect", 0, "timeout_connect" },
	{ "lost_connection", 0, "lost_connection" },
	{ "auth_failed", 0, "auth_failed" },
	{ "tls_required", 0, "tls_required" },
	{ "lookup", 0, "lookup" },
	{ "quota", 0, "quota" },
	{ "quota_7d", 0, "quota_7d" },
	{ "quota_1w", 0, "quota_7d" },
	{ "quota_1d12h", 0, "quota_1d12h" },
	{ "*", 0, "other" },
	{ "rcpt_4x5", -1, NULL },
	{ "rcpt_4", -1, NULL },
	{ "rcpt_5xx", -1, NULL },
	{ "refused_M", -1, NULL },
	{ "timeout_DNS", -1, NULL },
	{ "quota_7", -1, NULL },
	{ "bogus", -1, NULL },
	{ "", -1, NULL },
};

START_TEST(test_error_names)
{
	const struct name_case *c = &name_cases[_i];
	struct retry_error e;
	char name[RETRY_NAME_SIZE];

	ck_assert_int_eq(retry_error_parse(c->in, &e), c->rc);
	if (c->rc == 0)
		ck_assert_str_eq(retry_error_name(&e, name, sizeof(name)), c->out);
}
END_TEST

START_TEST(test_error_is_host)
{
	static const struct { enum retry_class cls; bool host; } t[] = {
		{ RETRY_CLASS_REFUSED, true }, { RETRY_CLASS_TIMEOUT_CONNECT, true },
		{ RETRY_CLASS_TIMEOUT, true }, { RETRY_CLASS_LOST_CONNECTION, true },
		{ RETRY_CLASS_TLS_REQUIRED, true }, { RETRY_CLASS_AUTH_FAILED, true },
		{ RETRY_CLASS_RCPT_4XX, false }, { RETRY_CLASS_MAIL_4XX, false },
		{ RETRY_CLASS_DATA_4XX, false }, { RETRY_CLASS_QUOTA, false },
		{ RETRY_CLASS_LOOKUP, false }, { RETRY_CLASS_OTHER, false },
	};
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		struct retry_error e = mkerr(t[i].cls, 0, 0, -1);

		ck_assert_msg(retry_error_is_host(&e) == t[i].host, "class %d", (int)t[i].cls);
	}
}
END_TEST

/* ---- which rule: first match in file order ---- */

static const char order_rules[] =
	"# comment line, then a blank one\n"			/* 1 */
	"\n"							/* 2 */
	"alice@wonderland.example  quota_5d   F,7d,3h\n"	/* 3 */
	"wonderland.example        quota_5d\n"			/* 4 */
	"wonderland.example        *          F,1h,15m; G,2d,1h,2;\n"	/* 5 */
	"*                         refused_A  F,2h,20m;\n"	/* 6 */
	"*                         rcpt_4xx   senders=:   F,1h,30m\n"	/* 7 */
	"*  rcpt_4xx  senders=\"*@lists.example : !bad@x.example : *.x.example\"  F,1h,5m\n"	/* 8 */
	"*.example.net             rcpt_452   F,1h,10m\n"	/* 9 */
	"*.EXAMPLE.com             timeout    F,4h,1h\n"	/* 10 */
	"*-request@lists.example   *          F,3h,1h\n"	/* 11 */
	"!*.example.org            data_4xx   F,5h,1h\n"	/* 12 */
	"*                         *          F,2h,15m; G,16h,1h,1.5; F,4d,6h\n";	/* 13 */

static const struct order_case {
	const char *host, *domain, *address;
	struct retry_error e;
	const char *sender;
	unsigned line;
} order_cases[] = {
	/* An address rule before the domain's; a rule with no sets still matches. */
	{ NULL, "wonderland.example", "alice@wonderland.example", { RETRY_CLASS_QUOTA, 0, 0, 6 * DAY }, NULL, 3 },
	{ NULL, "wonderland.example", "bob@wonderland.example", { RETRY_CLASS_QUOTA, 0, 0, 6 * DAY }, NULL, 4 },
	{ NULL, "wonderland.example", "alice@wonderland.example", { RETRY_CLASS_QUOTA, 0, 0, 4 * DAY }, NULL, 5 },
	{ NULL, "WONDERLAND.example", "Alice@Wonderland.Example", { RETRY_CLASS_QUOTA, 0, 0, 6 * DAY }, NULL, 3 },
	/* Host errors: the domain, or a host, or neither. */
	{ NULL, "wonderland.example", NULL, { RETRY_CLASS_REFUSED, 0, RETRY_VIA_A, -1 }, NULL, 5 },
	{ "mx.other.example", "other.example", NULL, { RETRY_CLASS_REFUSED, 0, RETRY_VIA_A, -1 }, NULL, 6 },
	{ "mx.other.example", "other.example", NULL, { RETRY_CLASS_REFUSED, 0, RETRY_VIA_MX, -1 }, NULL, 13 },
	/* senders=: is the null sender only; no sender skips senders= rules. */
	{ NULL, "example.org", "u@example.org", { RETRY_CLASS_RCPT_4XX, 452, 0, -1 }, "", 7 },
	{ NULL, "example.org", "u@example.org", { RETRY_CLASS_RCPT_4XX, 452, 0, -1 }, "a@lists.example", 8 },
	{ NULL, "example.org", "u@example.org", { RETRY_CLASS_RCPT_4XX, 452, 0, -1 }, "x@y.example", 13 },
	{ NULL, "example.org", "u@example.org", { RETRY_CLASS_RCPT_4XX, 452, 0, -1 }, "bad@x.example", 13 },
	{ NULL, "example.org", "u@example.org", { RETRY_CLASS_RCPT_4XX, 452, 0, -1 }, "ok@sub.x.example", 8 },
	{ NULL, "example.org", "u@example.org", { RETRY_CLASS_RCPT_4XX, 452, 0, -1 }, "ok@x.example", 13 },
	{ NULL, "foo.example.net", "u@foo.example.net", { RETRY_CLASS_RCPT_4XX, 452, 0, -1 }, NULL, 9 },
	{ NULL, "foo.example.net", "u@foo.example.net", { RETRY_CLASS_RCPT_4XX, 452, 0, -1 }, "", 7 },
	{ NULL, "foo.example.net", "u@foo.example.net", { RETRY_CLASS_RCPT_4XX, 451, 0, -1 }, NULL, 13 },
	{ NULL, "example.net", "u@example.net", { RETRY_CLASS_RCPT_4XX, 452, 0, -1 }, NULL, 13 },
	/* Host name first, then the domain, for each rule; case-insensitive. */
	{ "mx1.example.com", "customer.org", NULL, { RETRY_CLASS_TIMEOUT, 0, RETRY_VIA_MX, -1 }, NULL, 10 },
	{ "mx1.other.org", "sub.Example.COM", NULL, { RETRY_CLASS_TIMEOUT_CONNECT, 0, RETRY_VIA_A, -1 }, NULL, 10 },
	{ "mx1.other.org", "customer.org", NULL, { RETRY_CLASS_TIMEOUT, 0, RETRY_VIA_MX, -1 }, NULL, 13 },
	/* An IP address is the host name of a host routed by address. */
	{ "192.0.2.1", "example.com", NULL, { RETRY_CLASS_TIMEOUT, 0, RETRY_VIA_A, -1 }, NULL, 13 },
	/* Local part wildcards need an address; a domain key is "*@domain". */
	{ NULL, "lists.example", "foo-request@lists.example", { RETRY_CLASS_OTHER, 0, 0, -1 }, NULL, 11 },
	{ NULL, "lists.example", "foo@lists.example", { RETRY_CLASS_OTHER, 0, 0, -1 }, NULL, 13 },
	{ NULL, "lists.example", NULL, { RETRY_CLASS_OTHER, 0, 0, -1 }, NULL, 13 },
	/* A negated pattern matches everything else. */
	{ NULL, "a.example.org", "u@a.example.org", { RETRY_CLASS_DATA_4XX, 451, 0, -1 }, NULL, 13 },
	{ NULL, "example.com", "u@example.com", { RETRY_CLASS_DATA_4XX, 451, 0, -1 }, NULL, 12 },
};

START_TEST(test_first_match)
{
	const struct order_case *c = &order_cases[_i];
	struct retry_rules *rules = parse_ok(order_rules);

	ck_assert_uint_eq(retry_rules_count(rules), 11);
	ck_assert_uint_eq(match_line(rules, c->host, c->domain, c->address, c->e, c->sender), c->line);
	retry_rules_free(rules);
}
END_TEST

/* The spec's example: MX hosts x, p, m for a.b.c.example. */
START_TEST(test_host_then_domain)
{
	struct retry_rules *rules = parse_ok("p.q.r.example  *  F,24h,30m;\n"
	                                     "a.b.c.example  *  F,4d,45m;\n");
	struct retry_error e = mkerr(RETRY_CLASS_REFUSED, 0, RETRY_VIA_MX, -1);

	ck_assert_uint_eq(match_line(rules, "x.y.z.example", "a.b.c.example", NULL, e, NULL), 2);
	ck_assert_uint_eq(match_line(rules, "p.q.r.example", "a.b.c.example", NULL, e, NULL), 1);
	ck_assert_uint_eq(match_line(rules, "m.n.o.example", "a.b.c.example", NULL, e, NULL), 2);
	ck_assert_uint_eq(match_line(rules, "m.n.o.example", "other.example", NULL, e, NULL), 0);
	ck_assert_ptr_null(retry_rules_match(NULL, NULL, "a.b.c.example", NULL, &e, NULL));
	retry_rules_free(rules);
}
END_TEST

/* ---- senders= ---- */

static const struct sender_case {
	const char *list;
	const char *sender;	/* NULL: not given */
	bool match;
} sender_cases[] = {
	{ ":", "", true },
	{ ":", "a@b.example", false },
	{ ":", NULL, false },
	{ "*", "a@b.example", true },
	{ "*", "", false },		/* only an empty item matches <> */
	{ "*", NULL, false },
	{ "*@example.com", "bob@example.com", true },
	{ "*@example.com", "bob@EXAMPLE.COM", true },
	{ "*@example.com", "bob@sub.example.com", false },
	{ "*@example.com", "", false },
	{ "example.com", "bob@example.com", true },
	{ "*.example.com", "bob@sub.example.com", true },
	{ "*.example.com", "bob@example.com", false },
	{ "bob@example.com", "Bob@Example.com", true },
	{ "bob@example.com", "bobby@example.com", false },
	{ "*-request@lists.example", "x-request@lists.example", true },
	{ "*-request@lists.example", "x@lists.example", false },
	{ "!*@spam.example", "a@spam.example", false },
	{ "!*@spam.example", "a@ok.example", true },	/* a list ending in a negation */
	{ "!*@spam.example", "", true },
	{ ":*@example.com", "", true },
	{ ":*@example.com", "x@example.com", true },
	{ ":*@example.com", "x@other.example", false },
	{ "!bad@x.example:*.x.example", "bad@x.example", false },
	{ "!bad@x.example:x.example", "good@x.example", true },
	{ "<; a@b.example ; c@d.example", "c@d.example", true },
	{ "<; a@b.example ; c@d.example", "b.example", false },
	{ "a::b@x.example", "a:b@x.example", true },
};

START_TEST(test_senders)
{
	const struct sender_case *c = &sender_cases[_i];
	struct retry_error e = mkerr(RETRY_CLASS_OTHER, 0, 0, -1);
	char text[512];
	struct retry_rules *rules;

	snprintf(text, sizeof(text), "*  *  senders=\"%s\"  F,1h,10m\n", c->list);
	rules = parse_ok(text);
	ck_assert_msg((match_line(rules, NULL, "example.org", NULL, e, c->sender) == 1) == c->match,
	              "senders=%s, sender %s", c->list, c->sender ? c->sender : "(none)");
	retry_rules_free(rules);
}
END_TEST

/* ---- parse errors ---- */

static const struct parse_case {
	const char *text;
	const char *errors;	/* NULL: parses; then nrules and first text */
	size_t nrules;
	const char *first_text;
} parse_cases[] = {
	{ "* rcpt_4x5 F,1h,10m\n",
	  "rules:1: rcpt_4 must be followed by xx, dx, or dd, where x is literal and d is any digit "
	  "(\"rcpt_4x5\")\n", 0, NULL },
	{ "* data_4 F,1h,10m\n",
	  "rules:1: data_4 must be followed by xx, dx, or dd, where x is literal and d is any digit "
	  "(\"data_4\")\n", 0, NULL },
	{ "* mail_4xxx F,1h,10m\n",
	  "rules:1: mail_4 must be followed by xx, dx, or dd, where x is literal and d is any digit "
	  "(\"mail_4xxx\")\n", 0, NULL },
	{ "example.org\n",
	  "rules:1: missing error type in retry rule (PATTERN ERROR [senders=LIST] RULES)\n", 0, NULL },
	{ "* rcpt_5xx F,1h,10m\n",
	  "rules:1: unknown or malformed retry error \"rcpt_5xx\"; did you mean \"rcpt_4xx\"?\n", 0, NULL },
	{ "* tls_requried F,1h,10m\n",
	  "rules:1: unknown or malformed retry error \"tls_requried\"; did you mean \"tls_required\"?\n",
	  0, NULL },
	{ "* refused_B F,1h,10m\n",
	  "rules:1: A or MX expected after \"refused\" (\"refused_B\")\n", 0, NULL },
	{ "* timeout_foo F,1h,10m\n",
	  "rules:1: \"A\", \"MX\", \"connect\", \"connect_A\" or \"connect_MX\" expected after "
	  "\"timeout\" (\"timeout_foo\")\n", 0, NULL },
	{ "* timeout_DNS F,1h,10m\n",
	  "rules:1: \"timeout_DNS\" is no longer available in retry rules (it never worked); use "
	  "\"lookup\" or \"timeout\"\n", 0, NULL },
	{ "* quota_7x F,1h,10m\n",
	  "rules:1: bad time value in \"quota_7x\" (quota_<time>, such as quota_7d)\n", 0, NULL },
	{ "* * X,1h,10m\n",
	  "rules:1: unknown retry rule letter \"X\" (F, G or H expected)\n", 0, NULL },
	{ "* * F,1h\n",
	  "rules:1: F rule: missing interval (F,cutoff,interval)\n", 0, NULL },
	{ "* * F\n",
	  "rules:1: F rule: missing cutoff (F,cutoff,interval)\n", 0, NULL },
	{ "* * G,1h,10m\n",
	  "rules:1: G rule: missing multiplier (G,cutoff,start,multiplier)\n", 0, NULL },
	{ "* * F,1x,10m\n",
	  "rules:1: F rule: cutoff \"1x\" is not a time (a number and a unit s, m, h, d or w on each "
	  "part, such as 15m or 1h30m)\n", 0, NULL },
	{ "* * F,2h,90\n",
	  "rules:1: F rule: interval \"90\" is not a time (a number and a unit s, m, h, d or w on each "
	  "part, such as 15m or 1h30m)\n", 0, NULL },
	{ "* * G,1h,10m,abc\n",
	  "rules:1: G rule: multiplier \"abc\" is not a decimal number (such as 1.5)\n", 0, NULL },
	{ "* * H,1h,10m,0.5\n",
	  "rules:1: H rule: multiplier \"0.5\" must be at least 1\n", 0, NULL },
	{ "* * F,0s,10m\n",
	  "rules:1: F rule: cutoff \"0s\" must be greater than zero\n", 0, NULL },
	{ "* * F,1h,10m G,2h,1h,2\n",
	  "rules:1: semicolon expected before \"G,2h,1h,2\"\n", 0, NULL },
	{ "* * F,1h,10m/\n",
	  "rules:1: F rule: comma or semicolon expected at \"/\"\n", 0, NULL },
	{ "* * senders F,1h,10m\n",
	  "rules:1: \"=\" expected after \"senders\" in retry rule\n", 0, NULL },
	{ "* * senders=\"\" F,1h,10m\n",
	  "rules:1: empty senders= list (senders=: matches the null sender)\n", 0, NULL },
	{ "* * senders=<> F,1h,10m\n",
	  "rules:1: senders=<> is an empty list with separator \">\"; write senders=: for the null "
	  "sender\n", 0, NULL },
	{ "* * senders=a@b:^x F,1h,10m\n",
	  "rules:1: bad senders= list: regular expressions are not supported (\"^x\")\n", 0, NULL },
	{ "\"unterminated * F,1h,10m\n",
	  "rules:1: missing closing quote in pattern\n", 0, NULL },
	{ "\"a b\"x * F,1h,10m\n",
	  "rules:1: white space expected after the quoted pattern\n", 0, NULL },
	{ "^.*@x$ * F,1h,10m\n",
	  "rules:1: pattern \"^.*@x$\": regular expressions are not supported (use *, a domain, "
	  "*.domain or local@domain)\n", 0, NULL },
	{ "lsearch;/etc/x * F,1h,10m\n",
	  "rules:1: pattern \"lsearch;/etc/x\": lookups are not supported (use *, a domain, "
	  "*.domain or local@domain)\n", 0, NULL },
	{ "\"\" * F,1h,10m\n", "rules:1: empty pattern\n", 0, NULL },
	/* Every bad line is reported; the good ones do not hide them. */
	{ "* * F,1h,10m\n* rcpt_4x5 F,1h,1m\n# fine\n* * Q,1h,1m\n* * F,1h,10m\n",
	  "rules:2: rcpt_4 must be followed by xx, dx, or dd, where x is literal and d is any digit "
	  "(\"rcpt_4x5\")\n"
	  "rules:4: unknown retry rule letter \"Q\" (F, G or H expected)\n", 0, NULL },
	/* Good files. */
	{ "", NULL, 0, NULL },
	{ "# only\n\n   # comments\n", NULL, 0, NULL },
	{ "  *   *   F,2h,15m; G,16h,1h,1.5; F,4d,6h   # Exim's default\n", NULL, 1,
	  "*   *   F,2h,15m; G,16h,1h,1.5; F,4d,6h" },
	{ "\"slow host.example\"  timeout  F,4h,1h\r\n", NULL, 1,
	  "\"slow host.example\"  timeout  F,4h,1h" },
	{ "x.example quota_5d # bounce at once\n", NULL, 1, "x.example quota_5d" },
	{ "* * f,1h,10m; g , 2h , 1h , 1.25 ; h,3h,1h30m,2;\n", NULL, 1,
	  "* * f,1h,10m; g , 2h , 1h , 1.25 ; h,3h,1h30m,2;" },
	{ "*  rcpt_4xx  senders = \"a@b.example : c@d.example\"  F,1h,10m\n", NULL, 1,
	  "*  rcpt_4xx  senders = \"a@b.example : c@d.example\"  F,1h,10m" },
	{ "\"a#b.example\" * F,1h,10m # comment\n", NULL, 1, "\"a#b.example\" * F,1h,10m" },
	{ "a.example * F,1h,10m\nb.example * F,1h,10m", NULL, 2, "a.example * F,1h,10m" },
};

START_TEST(test_parse)
{
	const struct parse_case *c = &parse_cases[_i];
	struct retry_rules *rules;
	struct buf errors;

	buf_init(&errors, ERRORS_MAX);
	rules = retry_rules_parse(c->text, strlen(c->text), "rules", &errors);
	if (c->errors != NULL) {
		ck_assert_ptr_null(rules);
		ck_assert_str_eq(buf_cstr(&errors), c->errors);
	} else {
		ck_assert_msg(rules != NULL, "%s", buf_cstr(&errors));
		ck_assert_uint_eq(buf_len(&errors), 0);
		ck_assert_uint_eq(retry_rules_count(rules), c->nrules);
		if (c->first_text != NULL) {
			const struct retry_rule *r = retry_rules_rule(rules, 0);

			ck_assert_str_eq(retry_rule_text(r), c->first_text);
			ck_assert_str_eq(retry_rule_file(r), "rules");
			ck_assert_uint_eq(retry_rule_line(r), 1);
		}
	}
	retry_rules_free(rules);
	buf_free(&errors);
}
END_TEST

/* The letters and numbers come out as Exim reads them. */
START_TEST(test_parse_values)
{
	struct retry_rules *rules = parse_ok("* * f,1h,10m; g , 3h , 1h , 1.25 ; h,6h,1h30m,2;\n"
	                                     "* * G,1d,1h,1.0005\n");
	struct retry_error e = mkerr(RETRY_CLASS_OTHER, 0, 0, -1);
	const struct retry_rule *r = retry_rules_match(rules, NULL, "x", NULL, &e, NULL);
	struct retry_record rec = { 0, 0, 0, false };

	ck_assert_uint_eq(retry_rule_nsets(r), 3);
	/* F: 10m; then G from a 10m gap: start 1h; then G 1h x 1.25. */
	retry_record_fail(r, &rec, T0, 0, true, NO_MAX, rand_zero, NULL);
	ck_assert_int_eq(rec.next_try - T0, 10 * MIN);
	retry_record_fail(r, &rec, T0 + 61 * MIN, 0, true, NO_MAX, rand_zero, NULL);
	ck_assert_int_eq(rec.next_try - rec.last_try, HOUR);
	retry_record_fail(r, &rec, rec.next_try, 0, true, NO_MAX, rand_zero, NULL);
	ck_assert_int_eq(rec.next_try - rec.last_try, HOUR * 5 / 4);
	/* Past 3h, H: start 1h30m; the gap was 1h15m x 2 = 2h30m: [1h30m + 30m, 2h30m). */
	retry_record_fail(r, &rec, rec.next_try, 0, true, NO_MAX, rand_zero, NULL);
	ck_assert_int_eq(rec.next_try - rec.last_try, 2 * HOUR);
	retry_rules_free(rules);
}
END_TEST

static const char *
fixture(char *path, size_t size, const char *name)
{
	const char *slash = strrchr(__FILE__, '/');

	ck_assert_ptr_nonnull(slash);
	snprintf(path, size, "%.*s/../fixtures/retry/%s", (int)(slash - __FILE__), __FILE__, name);
	return path;
}

START_TEST(test_fixtures)
{
	char path[4096], want[32768];
	struct retry_rules *rules;
	struct buf errors;

	buf_init(&errors, ERRORS_MAX);
	rules = retry_rules_load(fixture(path, sizeof(path), "example.rules"), &errors);
	ck_assert_msg(rules != NULL, "%s", buf_cstr(&errors));
	ck_assert_uint_eq(retry_rules_count(rules), 8);
	retry_rules_free(rules);
	ck_assert_int_eq(retry_rules_check_file(fixture(path, sizeof(path), "exim-default.rules"),
	                                        &errors), 0);
	ck_assert_uint_eq(buf_len(&errors), 0);

	fixture(path, sizeof(path), "bad.rules");
	ck_assert_int_eq(retry_rules_check_file(path, &errors), -1);
	snprintf(want, sizeof(want),
	         "%s:3: rcpt_4 must be followed by xx, dx, or dd, where x is literal and d is any "
	         "digit (\"rcpt_4x5\")\n"
	         "%s:4: missing error type in retry rule (PATTERN ERROR [senders=LIST] RULES)\n"
	         "%s:5: unknown or malformed retry error \"tls_requried\"; did you mean "
	         "\"tls_required\"?\n"
	         "%s:6: semicolon expected before \"G,16h,1h,1.5\"\n"
	         "%s:7: G rule: multiplier \"0.5\" must be at least 1\n"
	         "%s:8: F rule: interval \"90\" is not a time (a number and a unit s, m, h, d or w "
	         "on each part, such as 15m or 1h30m)\n", path, path, path, path, path, path);
	ck_assert_str_eq(buf_cstr(&errors), want);

	/* No file: no rules, the fallback for everything. */
	buf_reset(&errors);
	rules = retry_rules_load(NULL, &errors);
	ck_assert_ptr_nonnull(rules);
	ck_assert_uint_eq(retry_rules_count(rules), 0);
	retry_rules_free(rules);
	ck_assert_int_eq(retry_rules_check_file("", &errors), 0);
	ck_assert_int_eq(retry_rules_check_file("/nonexistent/retry_rules", &errors), -1);
	ck_assert_str_eq(buf_cstr(&errors), "/nonexistent/retry_rules: cannot open: No such file or "
	                 "directory\n");
	buf_free(&errors);
}
END_TEST

START_TEST(test_parse_limits)
{
	struct buf text, errors;
	struct retry_rules *rules;
	size_t i;

	buf_init(&text, 1024 * 1024);
	buf_init(&errors, ERRORS_MAX);
	buf_append_str(&text, "* * F,1h,10m\n*   ");
	for (i = 0; i < RETRY_LINE_MAX; i++)
		buf_append_char(&text, 'x');
	buf_append_str(&text, " F,1h,10m\n* * F,1h,10m");
	for (i = 0; i < RETRY_SETS_MAX; i++)
		buf_append_str(&text, "; F,1h,10m");
	buf_append_str(&text, "\nx.example * F,1h,10m");
	buf_append(&text, "\0 y\n", 4);
	rules = retry_rules_parse(buf_data(&text), buf_len(&text), "rules", &errors);
	ck_assert_ptr_null(rules);
	ck_assert_str_eq(buf_cstr(&errors), "rules:2: line longer than 4096 bytes\n"
	                 "rules:3: more than 32 parameter sets\n"
	                 "rules:4: NUL byte in line\n");
	buf_free(&text);
	buf_free(&errors);
}
END_TEST

/* Byte flips on a good file must never crash, and what parses must match
 * without trouble (run it under ASan). */
START_TEST(test_parse_fuzz)
{
	static const char base[] =
		"alice@wonderland.example  quota_5d  F,7d,3h\n"
		"\"a b\"  rcpt_45x  senders=\"<; :x@y.example ; !*.z.example\"  G,2d,1h,1.5; H,3d,2h,2\n"
		"*.example.net  timeout_connect_MX  F,1h,10m  # c\n"
		"!*@*.example  *  F,2h,15m; G,16h,1h,1.5; F,4d,6h\n";
	const char *bytes = ":;,\"#!*@<>\\ \t\nFGHfgh0123456789.xsmhdw_";
	struct retry_error e = mkerr(RETRY_CLASS_RCPT_4XX, 452, 0, -1);
	uint64_t seed = 42;
	char text[sizeof(base)];
	struct retry_rules *rules;
	struct buf errors;
	int i, k;

	buf_init(&errors, ERRORS_MAX);
	for (i = 0; i < 20000; i++) {
		memcpy(text, base, sizeof(base));
		for (k = 0; k < 1 + i % 4; k++) {
			uint64_t r = rand_xorshift(&seed);

			text[r % (sizeof(base) - 1)] = bytes[(r >> 32) % strlen(bytes)];
		}
		buf_reset(&errors);
		rules = retry_rules_parse(text, sizeof(base) - 1, "fuzz", &errors);
		ck_assert((rules == NULL) == (buf_len(&errors) > 0));
		if (rules != NULL) {
			retry_rules_match(rules, "mx.a.example", "b.example", NULL, &e, "");
			retry_rules_match(rules, NULL, "b.example", "u@b.example", &e, "x@y.example");
			retry_rules_free(rules);
		}
	}
	buf_free(&errors);
}
END_TEST

/* ---- arithmetic ---- */

/* Attempt exactly when asked until the rule times out; return the
 * intervals (0 marks the bounce). */
static size_t
run_schedule(const struct retry_rule *r, int64_t message_age0, bool host, int64_t imax,
             int64_t *iv, size_t max, int64_t *bounce_at)
{
	struct retry_record rec = { 0, 0, 0, false };
	int64_t now = T0;
	size_t n;

	for (n = 0; n < max; n++) {
		bool out = retry_record_fail(r, &rec, now, message_age0 < 0 ? -1 : now - T0 + message_age0,
		                             host, imax, rand_zero, NULL);

		if (out) {
			iv[n] = 0;
			*bounce_at = now - T0;
			ck_assert(rec.expired);
			return n + 1;
		}
		ck_assert(!rec.expired);
		ck_assert_int_eq(rec.last_try, now);
		iv[n] = rec.next_try - now;
		now = rec.next_try;
	}
	return n;
}

/* Exim's default rule, and the reference's worked schedule: 15m steps to
 * 2h, then 1h, 1.5h, 2.25h, 3.375h ... from the gaps, then 6h to 4d. */
START_TEST(test_default_schedule)
{
	static const int64_t want[] = {
		900, 900, 900, 900, 900, 900, 900, 900, 900,	/* F,2h,15m: at 0 .. 2h */
		3600, 5400, 8100, 12150, 18225, 27337,		/* G,16h,1h,1.5 (27337.5) */
		21600, 21600, 21600, 21600, 21600, 21600, 21600, 21600, 21600, 21600, 21600, 21600,
		21600,						/* F,4d,6h: 13 times */
		0,						/* +4d5h1m52s: bounce */
	};
	struct retry_rules *rules = parse_ok("*  *  F,2h,15m; G,16h,1h,1.5; F,4d,6h\n");
	struct retry_error e = mkerr(RETRY_CLASS_REFUSED, 0, RETRY_VIA_MX, -1);
	const struct retry_rule *r = retry_rules_match(rules, "mx.example", "example", NULL, &e, NULL);
	int64_t iv[64], bounce_at = -1;
	size_t n, i;

	n = run_schedule(r, 0, true, RETRY_INTERVAL_MAX_CEILING, iv, NELEM(iv), &bounce_at);
	ck_assert_uint_eq(n, NELEM(want));
	for (i = 0; i < n; i++)
		ck_assert_msg(iv[i] == want[i], "interval %zu: %lld, want %lld", i, (long long)iv[i],
		              (long long)want[i]);
	ck_assert_int_eq(bounce_at, 4 * DAY + 5 * HOUR + MIN + 52);
	retry_rules_free(rules);
}
END_TEST

/* G grows from the shorter of the predicted and the actual gap. */
START_TEST(test_g_gap)
{
	struct retry_rules *rules = parse_ok("* * G,10d,1h,2\n");
	struct retry_error e = mkerr(RETRY_CLASS_OTHER, 0, 0, -1);
	const struct retry_rule *r = retry_rules_match(rules, NULL, "x", NULL, &e, NULL);
	struct retry_record rec = { 0, 0, 0, false };

	retry_record_fail(r, &rec, T0, -1, true, NO_MAX, NULL, NULL);
	ck_assert_int_eq(rec.next_try, T0 + HOUR);		/* fresh: start */
	/* Late (at 3h, asked for 1h): the predicted 1h is shorter: 2h. */
	retry_record_fail(r, &rec, T0 + 3 * HOUR, -1, true, NO_MAX, NULL, NULL);
	ck_assert_int_eq(rec.next_try, T0 + 5 * HOUR);
	/* Early (30m after, asked for 2h): the actual 30m is shorter, and
	 * under start: start again. */
	retry_record_fail(r, &rec, T0 + 3 * HOUR + 30 * MIN, -1, true, NO_MAX, NULL, NULL);
	ck_assert_int_eq(rec.next_try - rec.last_try, HOUR);
	/* On time: 1h x 2, then 2h x 2. */
	retry_record_fail(r, &rec, rec.next_try, -1, true, NO_MAX, NULL, NULL);
	ck_assert_int_eq(rec.next_try - rec.last_try, 2 * HOUR);
	/* Early but above start: 1h30m actual x 2 = 3h. */
	retry_record_fail(r, &rec, rec.last_try + 90 * MIN, -1, true, NO_MAX, NULL, NULL);
	ck_assert_int_eq(rec.next_try - rec.last_try, 3 * HOUR);
	retry_rules_free(rules);
}
END_TEST

/* H: start plus a draw from the upper half of [0, gap*mult - start). */
START_TEST(test_h_bounds)
{
	struct retry_rules *rules = parse_ok("* * H,100d,1h,3\n");
	struct retry_error e = mkerr(RETRY_CLASS_OTHER, 0, 0, -1);
	const struct retry_rule *r = retry_rules_match(rules, NULL, "x", NULL, &e, NULL);
	struct retry_record rec;
	uint64_t seed = 0x9e3779b97f4a7c15ull, pick;
	int64_t gap, next_gap, lo, d, now = T0 + 10 * DAY;
	int i;

	for (i = 0; i < 10000; i++) {
		gap = 20 * MIN + (int64_t)(rand_xorshift(&seed) % (6 * HOUR));
		rec.first_failed = now - 2 * DAY;
		rec.last_try = now - gap;
		rec.next_try = now;	/* predicted == actual == gap */
		rec.expired = false;
		retry_record_fail(r, &rec, now, -1, true, NO_MAX, rand_xorshift, &seed);
		d = rec.next_try - now;
		next_gap = gap * 3;
		if (next_gap <= HOUR) {
			ck_assert_int_eq(d, HOUR);
			continue;
		}
		lo = HOUR + (next_gap - HOUR) / 2;
		ck_assert_msg(d >= lo && d < next_gap, "gap %lld: %lld not in [%lld, %lld)",
		              (long long)gap, (long long)d, (long long)lo, (long long)next_gap);
	}
	/* Both ends are reachable: draw 0, and draw n-1 (n = 6h - 1h = 5h). */
	rec = (struct retry_record){ now - DAY, now - 2 * HOUR, now, false };
	retry_record_fail(r, &rec, now, -1, true, NO_MAX, rand_zero, NULL);
	ck_assert_int_eq(rec.next_try - now, HOUR + 5 * HOUR / 2);
	pick = 5 * HOUR - 1;
	rec = (struct retry_record){ now - DAY, now - 2 * HOUR, now, false };
	retry_record_fail(r, &rec, now, -1, true, NO_MAX, rand_fixed, &pick);
	ck_assert_int_eq(rec.next_try - now, 6 * HOUR - 1);
	/* The system's randomness (NULL) stays in the bounds too. */
	for (i = 0; i < 100; i++) {
		rec = (struct retry_record){ now - DAY, now - 2 * HOUR, now, false };
		retry_record_fail(r, &rec, now, -1, true, NO_MAX, NULL, NULL);
		ck_assert_int_ge(rec.next_try - now, HOUR + 5 * HOUR / 2);
		ck_assert_int_lt(rec.next_try - now, 6 * HOUR);
	}
	retry_rules_free(rules);
}
END_TEST

START_TEST(test_interval_max)
{
	struct retry_rules *rules = parse_ok("a.example * F,10d,2d\nb.example * G,30d,1h,10\n");
	struct retry_error e = mkerr(RETRY_CLASS_OTHER, 0, 0, -1);
	const struct retry_rule *a = retry_rules_match(rules, NULL, "a.example", NULL, &e, NULL);
	const struct retry_rule *b = retry_rules_match(rules, NULL, "b.example", NULL, &e, NULL);
	struct retry_record rec = { 0, 0, 0, false };
	struct retry_policy pol;

	retry_record_fail(a, &rec, T0, -1, true, RETRY_INTERVAL_MAX_CEILING, NULL, NULL);
	ck_assert_int_eq(rec.next_try - T0, DAY);
	/* G: 1h, 10h, then 100h clamped to 12h. */
	rec = (struct retry_record){ 0, 0, 0, false };
	retry_record_fail(b, &rec, T0, -1, true, 12 * HOUR, NULL, NULL);
	ck_assert_int_eq(rec.next_try - rec.last_try, HOUR);
	retry_record_fail(b, &rec, rec.next_try, -1, true, 12 * HOUR, NULL, NULL);
	ck_assert_int_eq(rec.next_try - rec.last_try, 10 * HOUR);
	retry_record_fail(b, &rec, rec.next_try, -1, true, 12 * HOUR, NULL, NULL);
	ck_assert_int_eq(rec.next_try - rec.last_try, 12 * HOUR);
	/* The next G step grows from the clamped gap: 120h, clamped again. */
	retry_record_fail(b, &rec, rec.next_try, -1, true, 12 * HOUR, NULL, NULL);
	ck_assert_int_eq(rec.next_try - rec.last_try, 12 * HOUR);

	retry_policy_init(&pol, NULL);
	ck_assert_int_eq(pol.interval_max, DAY);
	ck_assert_int_eq(pol.minimal_backoff, 300);
	ck_assert_int_eq(pol.maximal_backoff, 4000);
	ck_assert_int_eq(pol.queue_lifetime, 5 * DAY);
	ck_assert_int_eq(pol.bounce_lifetime, 5 * DAY);
	retry_rules_free(rules);
}
END_TEST

/* A rule without sets bounces at the first failure. */
START_TEST(test_no_sets)
{
	struct retry_rules *rules = parse_ok("wonderland.example  quota_7d\n"
	                                     "wonderland.example  quota  F,1d,1h\n");
	struct retry_error idle8 = mkerr(RETRY_CLASS_QUOTA, 0, 0, 8 * DAY);
	struct retry_error idle6 = mkerr(RETRY_CLASS_QUOTA, 0, 0, 6 * DAY);
	const struct retry_rule *r;
	struct retry_record rec = { 0, 0, 0, false };

	r = retry_rules_match(rules, NULL, "wonderland.example", "a@wonderland.example", &idle8, NULL);
	ck_assert_uint_eq(retry_rule_line(r), 1);
	ck_assert_uint_eq(retry_rule_nsets(r), 0);
	ck_assert(retry_record_fail(r, &rec, T0, 0, false, NO_MAX, NULL, NULL));
	ck_assert(rec.expired);
	ck_assert_int_eq(rec.next_try, T0);
	r = retry_rules_match(rules, NULL, "wonderland.example", "a@wonderland.example", &idle6, NULL);
	ck_assert_uint_eq(retry_rule_line(r), 2);
	rec = (struct retry_record){ 0, 0, 0, false };
	ck_assert(!retry_record_fail(r, &rec, T0, 0, false, NO_MAX, NULL, NULL));
	ck_assert_int_eq(rec.next_try, T0 + HOUR);
	retry_rules_free(rules);
}
END_TEST

/* Non-host errors: the message's age counts when larger; host errors:
 * the "intermittent" escape. */
START_TEST(test_message_age)
{
	struct retry_rules *rules = parse_ok("* * F,1h,10m; F,2h,30m\n");
	struct retry_error e = mkerr(RETRY_CLASS_RCPT_4XX, 451, 0, -1);
	const struct retry_rule *r = retry_rules_match(rules, NULL, "x", NULL, &e, NULL);
	struct retry_record rec = { 0, 0, 0, false };

	/* A fresh record, but the message is 90m old: the second set. */
	ck_assert(!retry_record_fail(r, &rec, T0, 90 * MIN, false, NO_MAX, NULL, NULL));
	ck_assert_int_eq(rec.next_try - T0, 30 * MIN);
	ck_assert_int_eq(rec.first_failed, T0);
	/* A host error ignores the age: the first set. */
	rec = (struct retry_record){ 0, 0, 0, false };
	ck_assert(!retry_record_fail(r, &rec, T0, 90 * MIN, true, NO_MAX, NULL, NULL));
	ck_assert_int_eq(rec.next_try - T0, 10 * MIN);
	/* Older than the last cutoff: a non-host error expires at once. */
	rec = (struct retry_record){ 0, 0, 0, false };
	ck_assert(retry_record_fail(r, &rec, T0, 3 * HOUR, false, NO_MAX, NULL, NULL));
	ck_assert(rec.expired);
	ck_assert_int_eq(rec.next_try - T0, 30 * MIN);	/* the last set still computes it */
	/* A host error: the message arrived before the first failure and is
	 * older than the last cutoff: times out, next_try now, not expired. */
	rec = (struct retry_record){ 0, 0, 0, false };
	ck_assert(retry_record_fail(r, &rec, T0, 3 * HOUR, true, NO_MAX, NULL, NULL));
	ck_assert(!rec.expired);
	ck_assert_int_eq(rec.next_try, T0);
	/* ... but not when the key failed before the message arrived. */
	rec = (struct retry_record){ T0 - 4 * HOUR, T0 - 10 * MIN, T0, false };
	ck_assert(retry_record_fail(r, &rec, T0, 30 * MIN, true, NO_MAX, NULL, NULL));
	ck_assert(rec.expired);
	ck_assert_int_eq(rec.next_try - T0, 30 * MIN);
	retry_rules_free(rules);
}
END_TEST

START_TEST(test_data_expire)
{
	struct retry_rules *rules = parse_ok("* * F,2h,15m; G,16h,1h,1.5; F,4d,6h\n");
	struct retry_error e = mkerr(RETRY_CLASS_OTHER, 0, 0, -1);
	const struct retry_rule *r = retry_rules_match(rules, NULL, "x", NULL, &e, NULL);
	struct retry_record rec;

	/* Last written 8 days ago: ignored, a first failure. */
	rec = (struct retry_record){ T0 - 30 * DAY, T0 - 8 * DAY, T0 - 8 * DAY + HOUR, true };
	ck_assert(!retry_record_fail(r, &rec, T0, -1, true, NO_MAX, NULL, NULL));
	ck_assert_int_eq(rec.first_failed, T0);
	ck_assert(!rec.expired);
	ck_assert_int_eq(rec.next_try - T0, 15 * MIN);
	/* Exactly 7 days is still used (Exim: "> retry_data_expire"). */
	rec = (struct retry_record){ T0 - 30 * DAY, T0 - RETRY_DATA_EXPIRE, T0 - 6 * DAY, false };
	ck_assert(retry_record_fail(r, &rec, T0, -1, true, NO_MAX, NULL, NULL));
	ck_assert(rec.expired);
	ck_assert_int_eq(rec.first_failed, T0 - 30 * DAY);
	ck_assert_int_eq(rec.next_try - T0, 6 * HOUR);
	retry_rules_free(rules);
}
END_TEST

/* ---- Postfix fallback ---- */

START_TEST(test_postfix_sequence)
{
	/* Attempts at 0, 5m, 10m, 20m, 40m, 80m, then every 4000s (66m40s). */
	static const int64_t want_at[] = { 0, 300, 600, 1200, 2400, 4800, 8800, 12800, 16800 };
	struct retry_policy pol;
	struct retry_failure f;
	struct retry_record rec = { 0, 0, 0, false };
	struct retry_decision d;
	int64_t now = T0, last = 0;
	size_t i;
	int n;

	retry_policy_init(&pol, NULL);
	memset(&f, 0, sizeof(f));
	f.domain = "example.org";
	f.sender = "a@example.net";
	f.err = mkerr(RETRY_CLASS_REFUSED, 0, RETRY_VIA_MX, -1);
	f.host_error = true;
	f.message_created = T0;
	for (i = 0; i < NELEM(want_at); i++) {
		ck_assert_int_eq(now - T0, want_at[i]);
		retry_decide(NULL, &pol, &f, &rec, now, &d);
		ck_assert_ptr_null(d.rule);
		ck_assert(!d.bounce);
		ck_assert_int_eq(rec.first_failed, T0);
		ck_assert_int_eq(rec.next_try, d.next_try);
		now = d.next_try;
	}
	/* On to maximal_queue_lifetime: the first failure at or after 5d. */
	for (n = 0; n < 1000; n++) {
		retry_decide(NULL, &pol, &f, &rec, now, &d);
		if (d.bounce)
			break;
		ck_assert_int_eq(d.next_try - now, 4000);
		last = now;
		now = d.next_try;
	}
	ck_assert(d.bounce);
	ck_assert_int_ge(now - T0, 5 * DAY);
	ck_assert_int_lt(last - T0, 5 * DAY);
	ck_assert_int_eq(now - T0, 16800 + ((5 * DAY - 16800 + 3999) / 4000) * 4000);

	ck_assert_int_eq(retry_postfix_next(T0, T0, 300, 4000), T0 + 300);
	ck_assert_int_eq(retry_postfix_next(T0 + 1000, T0, 300, 4000), T0 + 2000);
	ck_assert_int_eq(retry_postfix_next(T0 + DAY, T0, 300, 4000), T0 + DAY + 4000);
	ck_assert_int_eq(retry_postfix_next(T0 + DAY, T0, 600, 300), T0 + DAY + 600);	/* min wins */
	ck_assert(!retry_postfix_expired(T0 + 5 * DAY - 1, T0, 5 * DAY));
	ck_assert(retry_postfix_expired(T0 + 5 * DAY, T0, 5 * DAY));
	ck_assert(retry_postfix_expired(T0, T0, 0));	/* lifetime 0: try once */
}
END_TEST

START_TEST(test_postfix_lifetimes)
{
	struct retry_rules *rules = parse_ok("example.org  *  F,1h,10m\n");
	struct retry_policy pol;
	struct retry_failure f;
	struct retry_record rec = { 0, 0, 0, false };
	struct retry_decision d;

	retry_policy_init(&pol, NULL);
	memset(&f, 0, sizeof(f));
	f.domain = "other.org";
	f.address = "u@other.org";
	f.err = mkerr(RETRY_CLASS_RCPT_4XX, 452, 0, -1);
	f.message_created = T0;
	/* Lifetime 0: the first failure bounces. */
	pol.queue_lifetime = 0;
	f.sender = "a@example.net";
	retry_decide(rules, &pol, &f, &rec, T0, &d);
	ck_assert_ptr_null(d.rule);
	ck_assert(d.bounce);
	/* The null sender uses bounce_queue_lifetime. */
	pol.queue_lifetime = 5 * DAY;
	pol.bounce_lifetime = DAY;
	f.sender = "";
	retry_decide(rules, &pol, &f, &rec, T0 + DAY - 1, &d);
	ck_assert(!d.bounce);
	retry_decide(rules, &pol, &f, &rec, T0 + DAY, &d);
	ck_assert(d.bounce);
	f.sender = NULL;	/* unknown: the normal lifetime */
	retry_decide(rules, &pol, &f, &rec, T0 + DAY, &d);
	ck_assert(!d.bounce);
	/* A matching rule: the rule decides, not the lifetime. */
	f.domain = "example.org";
	f.address = "u@example.org";
	pol.queue_lifetime = 0;
	rec = (struct retry_record){ 0, 0, 0, false };
	retry_decide(rules, &pol, &f, &rec, T0, &d);
	ck_assert_ptr_nonnull(d.rule);
	ck_assert(!d.bounce);
	ck_assert_int_eq(d.next_try, T0 + 10 * MIN);
	retry_rules_free(rules);
}
END_TEST

/* The policy comes from the five parameters, capped as Postfix and Exim do. */
START_TEST(test_policy_config)
{
	static const char conf[] = "minimal_backoff_time = 10m\n"
	                           "maximal_backoff_time = 2h\n"
	                           "maximal_queue_lifetime = 3d\n"
	                           "bounce_queue_lifetime = 4d\n"
	                           "retry_interval_max = 48h\n";
	char path[] = "/tmp/retry_test.XXXXXX";
	struct retry_policy pol;
	struct config *cfg;
	struct buf errors;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, conf, sizeof(conf) - 1), (ssize_t)(sizeof(conf) - 1));
	close(fd);
	buf_init(&errors, ERRORS_MAX);
	cfg = config_load(path, &errors);
	unlink(path);
	ck_assert_msg(cfg != NULL, "%s", buf_cstr(&errors));
	retry_policy_init(&pol, cfg);
	ck_assert_int_eq(pol.minimal_backoff, 10 * MIN);
	ck_assert_int_eq(pol.maximal_backoff, 2 * HOUR);
	ck_assert_int_eq(pol.queue_lifetime, 3 * DAY);
	ck_assert_int_eq(pol.bounce_lifetime, 3 * DAY);	/* <= maximal_queue_lifetime */
	ck_assert_int_eq(pol.interval_max, DAY);		/* Exim's ceiling */
	ck_assert_ptr_null(pol.rand_fn);
	config_free(cfg);
	buf_free(&errors);
}
END_TEST

/* ---- explain ---- */

static const char *
explain(struct buf *out, const char *rules_text, const char *domain, const char *err,
        const char *sender, int64_t ago, bool json)
{
	struct retry_rules *rules = rules_text ? parse_ok(rules_text) : NULL;
	struct retry_explain_args a;
	struct retry_policy pol;

	memset(&a, 0, sizeof(a));
	a.domain = domain;
	a.sender = sender;
	a.first_failure_ago = ago;
	a.json = json;
	ck_assert_int_eq(retry_error_parse(err, &a.err), 0);
	retry_policy_init(&pol, NULL);
	buf_reset(out);
	retry_explain(rules, &pol, &a, out);
	retry_rules_free(rules);
	return buf_cstr(out);
}

START_TEST(test_explain)
{
	static const char dflt[] = "*  *  F,2h,15m; G,16h,1h,1.5; F,4d,6h\n";
	struct buf out;
	const char *s;

	buf_init(&out, OUT_MAX);
	s = explain(&out, dflt, "example.org", "rcpt_452", NULL, 0, false);
	ck_assert_msg(strstr(s, "matched:  rules:1: *  *  F,2h,15m; G,16h,1h,1.5; F,4d,6h\n") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "\n     10  +2h15m          1h                        G,16h,1h,1.5\n") != NULL,
	              "%s", s);
	ck_assert_msg(strstr(s, "\n     29  +4d5h1m52s      bounce\n") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "bounce at +4d5h1m52s (attempt 29): retry rules exhausted: failing for "
	                     "4d5h1m52s, past the last cutoff 4d\n") != NULL, "%s", s);

	s = explain(&out, NULL, "example.org", "refused", NULL, 0, false);
	ck_assert_msg(strstr(s, "matched:  no rule matched: Postfix backoff (minimal_backoff_time 5m, "
	                     "maximal_backoff_time 1h6m40s) within maximal_queue_lifetime 5d\n") != NULL,
	              "%s", s);
	ck_assert_msg(strstr(s, "\n      6  +1h20m          1h6m40s                   postfix\n") != NULL,
	              "%s", s);
	ck_assert_msg(strstr(s, "bounce at +5d13m20s (attempt 113): queued for 5d13m20s, not less than "
	                     "maximal_queue_lifetime 5d\n") != NULL, "%s", s);

	/* A rule with no sets; the null sender; H bounds. */
	s = explain(&out, "* rcpt_4xx senders=:\n", "u@example.org", "rcpt_450", "", 0, false);
	ck_assert_msg(strstr(s, "bounce at +0s (attempt 1): the rule has no retry times: bounce at the "
	                     "first failure\n") != NULL, "%s", s);
	s = explain(&out, "* * F,1h,10m; H,1d,30m,2\n", "example.org", "*", NULL, 0, false);
	ck_assert_msg(strstr(s, "45m                       H,1d,30m,2 (random in [45m, 1h))\n") != NULL,
	              "%s", s);

	/* History: the key has failed for 3d; the first attempt waits. */
	s = explain(&out, dflt, "example.org", "refused_MX", NULL, 3 * DAY, false);
	ck_assert_msg(strstr(s, "history:  the key first failed 3d before arrival (") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "bounce at +") != NULL, "%s", s);

	s = explain(&out, dflt, "example.org", "rcpt_452", NULL, 0, true);
	ck_assert_msg(s[0] == '{', "%s", s);
	ck_assert_msg(strstr(s, "\"rule\": {\"file\": \"rules\", \"line\": 1, \"text\": ") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "{\"attempt\": 1, \"at\": 0, \"interval\": 900, \"set\": \"F,2h,15m\"}")
	              != NULL, "%s", s);
	ck_assert_msg(strstr(s, "{\"attempt\": 29, \"at\": 363712, \"bounce\": true}") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "\"bounce_at\": 363712,") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "\"truncated\": false\n}\n") != NULL, "%s", s);

	/* Never bounces within the cap: said so. */
	s = explain(&out, "* * F,1000w,1s\n", "example.org", "lookup", NULL, 0, false);
	ck_assert_msg(strstr(s, "no bounce within 200 attempts") != NULL, "%s", s);
	buf_free(&out);
}
END_TEST

START_TEST(test_format_duration)
{
	static const struct { int64_t s; const char *out; } t[] = {
		{ 0, "0s" }, { 1, "1s" }, { 60, "1m" }, { 4000, "1h6m40s" }, { 8100, "2h15m" },
		{ 4 * DAY, "4d" }, { 4 * DAY + 6 * HOUR, "4d6h" }, { 14 * DAY, "14d" }, { -90, "-1m30s" },
	};
	char buf[RETRY_NAME_SIZE];
	size_t i;

	for (i = 0; i < NELEM(t); i++)
		ck_assert_str_eq(retry_format_duration(t[i].s, buf, sizeof(buf)), t[i].out);
	/* Too small a buffer truncates at a unit, never overruns. */
	ck_assert_str_eq(retry_format_duration(4 * DAY + 6 * HOUR + 1, buf, 5), "4d6h");
}
END_TEST

static Suite *
retry_suite(void)
{
	Suite *s = suite_create("retry");
	TCase *tc = tcase_create("retry");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_class_matrix, 0, (int)NELEM(matrix_cases));
	tcase_add_loop_test(tc, test_error_names, 0, (int)NELEM(name_cases));
	tcase_add_test(tc, test_error_is_host);
	tcase_add_loop_test(tc, test_first_match, 0, (int)NELEM(order_cases));
	tcase_add_test(tc, test_host_then_domain);
	tcase_add_loop_test(tc, test_senders, 0, (int)NELEM(sender_cases));
	tcase_add_loop_test(tc, test_parse, 0, (int)NELEM(parse_cases));
	tcase_add_test(tc, test_parse_values);
	tcase_add_test(tc, test_fixtures);
	tcase_add_test(tc, test_parse_limits);
	tcase_add_test(tc, test_parse_fuzz);
	tcase_add_test(tc, test_default_schedule);
	tcase_add_test(tc, test_g_gap);
	tcase_add_test(tc, test_h_bounds);
	tcase_add_test(tc, test_interval_max);
	tcase_add_test(tc, test_no_sets);
	tcase_add_test(tc, test_message_age);
	tcase_add_test(tc, test_data_expire);
	tcase_add_test(tc, test_postfix_sequence);
	tcase_add_test(tc, test_postfix_lifetimes);
	tcase_add_test(tc, test_policy_config);
	tcase_add_test(tc, test_explain);
	tcase_add_test(tc, test_format_duration);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(retry_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
