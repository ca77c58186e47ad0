/*
 * retry_explain: `ternctl retry explain`, a dry run of the schedule.
 *
 * Every simulated attempt goes through retry_decide_step(), the function
 * qmgr calls after a real failure, on a fake clock: the message arrives
 * at t=0 and each attempt fails with the same error at the time the
 * previous one asked for. Only randomness differs: H rules draw 0, so the
 * simulation takes the low end of each interval, and the row shows the
 * whole range.
 *
 * Simplifications, said here so the output is not over-read: one retry
 * key (one host or address), so "bounce" means "this key timed out"
 * (qmgr bounces a remote recipient when all its hosts have); the
 * message's first attempt is at arrival, or at the key's next retry time
 * when --first-failure gave it a history (Exim does not try a new
 * message before that); attempts happen exactly when asked, with no
 * queue-run granularity.
 */
#include "queue/retry.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "queue/retry_impl.h"

/* Failures simulated before arrival for --first-failure (a bound on work). */
#define RETRY_EXPLAIN_HISTORY_MAX 100000
/* The fake clock's arrival time. Not 0: a record with first_failed 0 is
 * "none yet", and real clocks are far from 0 too. */
#define RETRY_EXPLAIN_EPOCH ((int64_t)1000000000)

struct retry_explain_row {
	unsigned n;
	int64_t at;		/* seconds since arrival */
	bool bounce;
	int64_t interval, lo, hi;
	bool random;		/* an H interval: [lo, hi] */
	const struct retry_set *set;
};

static uint64_t
retry_explain_rand_low(void *arg)
{
	(void)arg;
	return 0;
}

/* A JSON string (RFC 8259); bytes >= 0x80 pass through (rules files are
 * ASCII in practice; names are the admin's own). */
static void
retry_json_str(struct buf *out, const char *s)
{
	if (s == NULL) {
		buf_append_str(out, "null");
		return;
	}
	buf_append_char(out, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\') {
			buf_append_char(out, '\\');
			buf_append_char(out, *s);
		} else if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			buf_append_printf(out, "\\u%04x", (unsigned char)*s);
		} else {
			buf_append_char(out, *s);
		}
	}
	buf_append_char(out, '"');
}

static const char *
retry_dur(int64_t secs, char *dst, size_t dstsz)
{
	return retry_format_duration(secs, dst, dstsz);
}

/* Why the last attempt bounced, in words. */
static void
retry_explain_reason(struct buf *out, const struct retry_decision *d, const struct retry_step *st,
                     const struct retry_record *rec, const struct retry_policy *pol,
                     const struct retry_failure *f, int64_t at)
{
	char a[RETRY_NAME_SIZE], b[RETRY_NAME_SIZE];
	bool null_sender = f->sender != NULL && f->sender[0] == '\0';

	if (d->rule == NULL) {
		buf_append_printf(out, "queued for %s, not less than %s %s", retry_dur(at, a, sizeof(a)),
		                  null_sender ? "bounce_queue_lifetime" : "maximal_queue_lifetime",
		                  retry_dur(null_sender ? pol->bounce_lifetime : pol->queue_lifetime,
		                            b, sizeof(b)));
	} else if (d->rule->nsets == 0) {
		buf_append_str(out, "the rule has no retry times: bounce at the first failure");
	} else if (st->age_escape) {
		buf_append_printf(out, "message queued for %s, longer than the last cutoff %s",
		                  retry_dur(at, a, sizeof(a)),
		                  retry_dur(d->rule->sets[d->rule->nsets - 1].cutoff, b, sizeof(b)));
	} else {
		buf_append_printf(out, "retry rules exhausted: failing for %s, past the last cutoff %s",
		                  retry_dur(RETRY_EXPLAIN_EPOCH + at - rec->first_failed, a, sizeof(a)),
		                  retry_dur(d->rule->sets[d->rule->nsets - 1].cutoff, b, sizeof(b)));
	}
}

static void
retry_explain_text_row(struct buf *out, const struct retry_explain_row *r)
{
	char a[RETRY_NAME_SIZE], b[RETRY_NAME_SIZE], at[RETRY_NAME_SIZE + 1];
	struct buf set;

	snprintf(at, sizeof(at), "+%s", retry_dur(r->at, a, sizeof(a)));
	buf_append_printf(out, "%7u  %-14s  ", r->n, at);
	if (r->bounce) {
		buf_append_str(out, "bounce\n");
		return;
	}
	buf_init(&set, 256);
	if (r->set != NULL)
		retry_set_format(r->set, &set);
	else
		buf_append_str(&set, "postfix");
	if (r->random)
		buf_append_printf(out, "%-24s  %s (random in [%s, %s))\n", retry_dur(r->interval, a, sizeof(a)),
		                  buf_cstr(&set), retry_dur(r->lo, a, sizeof(a)),
		                  retry_dur(r->hi + 1, b, sizeof(b)));
	else
		buf_append_printf(out, "%-24s  %s\n", retry_dur(r->interval, a, sizeof(a)), buf_cstr(&set));
	buf_free(&set);
}

static void
retry_explain_json_row(struct buf *out, const struct retry_explain_row *r, bool first)
{
	struct buf set;

	buf_append_str(out, first ? "\n    " : ",\n    ");
	buf_append_printf(out, "{\"attempt\": %u, \"at\": %lld", r->n, (long long)r->at);
	if (r->bounce) {
		buf_append_str(out, ", \"bounce\": true}");
		return;
	}
	buf_init(&set, 256);
	if (r->set != NULL)
		retry_set_format(r->set, &set);
	buf_append_printf(out, ", \"interval\": %lld", (long long)r->interval);
	if (r->random)
		buf_append_printf(out, ", \"interval_low\": %lld, \"interval_high\": %lld",
		                  (long long)r->lo, (long long)r->hi + 1);
	buf_append_str(out, ", \"set\": ");
	retry_json_str(out, r->set != NULL ? buf_cstr(&set) : NULL);
	buf_append_char(out, '}');
	buf_free(&set);
}

/* The failures before arrival (--first-failure); returns the first
 * attempt time of the message and counts the failures. */
static int64_t
retry_explain_history(const struct retry_rules *rules, const struct retry_policy *pol,
                      const struct retry_failure *proto, int64_t ago, struct retry_record *rec,
                      unsigned *count)
{
	struct retry_failure f = *proto;
	struct retry_decision d;
	struct retry_step st;
	int64_t t = -ago;

	memset(&d, 0, sizeof(d));
	*count = 0;
	while (t < 0 && *count < RETRY_EXPLAIN_HISTORY_MAX) {
		/* Other messages, each tried on arrival. */
		f.message_created = RETRY_EXPLAIN_EPOCH + t;
		retry_decide_step(rules, pol, &f, rec, RETRY_EXPLAIN_EPOCH + t, &d, &st);
		(*count)++;
		if (d.next_try - RETRY_EXPLAIN_EPOCH <= t)
			break;
		t = d.next_try - RETRY_EXPLAIN_EPOCH;
	}
	if (d.rule == NULL || *count == 0)
		return 0;
	return rec->next_try > RETRY_EXPLAIN_EPOCH ? rec->next_try - RETRY_EXPLAIN_EPOCH : 0;
}

static void
retry_explain_header(struct buf *out, const struct retry_rules *rules, const struct retry_policy *pol,
                     const struct retry_failure *f, const struct retry_explain_args *args,
                     const struct retry_rule *rule, unsigned history)
{
	char a[RETRY_NAME_SIZE], b[RETRY_NAME_SIZE], c[RETRY_NAME_SIZE];
	bool null_sender = f->sender != NULL && f->sender[0] == '\0';

	if (args->json) {
		buf_append_str(out, "{\n  \"rules_file\": ");
		retry_json_str(out, rules && rules->n ? rules->filename : NULL);
		buf_append_printf(out, ",\n  \"rules\": %zu,\n  \"domain\": ", retry_rules_count(rules));
		retry_json_str(out, f->domain);
		buf_append_str(out, ",\n  \"address\": ");
		retry_json_str(out, f->address);
		buf_append_str(out, ",\n  \"host\": ");
		retry_json_str(out, f->host);
		buf_append_str(out, ",\n  \"sender\": ");
		retry_json_str(out, f->sender);
		buf_append_str(out, ",\n  \"error\": ");
		retry_json_str(out, retry_error_name(&f->err, a, sizeof(a)));
		buf_append_printf(out, ",\n  \"host_error\": %s,\n  \"first_failure_ago\": %lld"
		                  ",\n  \"history_failures\": %u,\n  \"policy\": \"%s\",\n  \"rule\": ",
		                  f->host_error ? "true" : "false", (long long)args->first_failure_ago,
		                  history, rule ? "rule" : "postfix");
		if (rule != NULL) {
			buf_append_str(out, "{\"file\": ");
			retry_json_str(out, rule->file);
			buf_append_printf(out, ", \"line\": %u, \"text\": ", rule->line);
			retry_json_str(out, rule->text);
			buf_append_char(out, '}');
		} else {
			buf_append_str(out, "null");
		}
		buf_append_printf(out, ",\n  \"minimal_backoff_time\": %lld, \"maximal_backoff_time\": %lld"
		                  ", \"lifetime\": %lld, \"retry_interval_max\": %lld,\n  \"attempts\": [",
		                  (long long)pol->minimal_backoff, (long long)pol->maximal_backoff,
		                  (long long)(null_sender ? pol->bounce_lifetime : pol->queue_lifetime),
		                  (long long)pol->interval_max);
		return;
	}
	if (rules != NULL && rules->n > 0)
		buf_append_printf(out, "rules:    %s (%zu rule%s)\n", rules->filename, rules->n,
		                  rules->n == 1 ? "" : "s");
	else
		buf_append_str(out, "rules:    none (retry_rules is unset or empty)\n");
	buf_append_printf(out, "failure:  %s (%s error) for %s", retry_error_name(&f->err, a, sizeof(a)),
	                  f->host_error ? "host" : f->address ? "address" : "domain",
	                  f->address && !f->host_error ? f->address : f->domain);
	if (f->host_error && f->host != NULL)
		buf_append_printf(out, " via host %s", f->host);
	if (f->sender == NULL)
		buf_append_str(out, ", no sender given (senders= rules never match)\n");
	else
		buf_append_printf(out, ", sender <%s>\n", f->sender);
	if (args->first_failure_ago > 0)
		buf_append_printf(out, "history:  the key first failed %s before arrival (%u earlier "
		                  "failure%s simulated)\n", retry_dur(args->first_failure_ago, a, sizeof(a)),
		                  history, history == 1 ? "" : "s");
	if (rule != NULL)
		buf_append_printf(out, "matched:  %s:%u: %s\n", rule->file, rule->line, rule->text);
	else
		buf_append_printf(out, "matched:  no rule matched: Postfix backoff (minimal_backoff_time %s, "
		                  "maximal_backoff_time %s) within %s %s\n",
		                  retry_dur(pol->minimal_backoff, a, sizeof(a)),
		                  retry_dur(pol->maximal_backoff, b, sizeof(b)),
		                  null_sender ? "bounce_queue_lifetime" : "maximal_queue_lifetime",
		                  retry_dur(null_sender ? pol->bounce_lifetime : pol->queue_lifetime,
		                            c, sizeof(c)));
	buf_append_printf(out, "%7s  %-14s  %-24s  %s\n", "attempt", "since arrival", "next interval",
	                  "from");
}

/* The bounce (d non-NULL: the decision that bounced at t), or the cap. */
static void
retry_explain_footer(struct buf *out, bool json, const struct retry_decision *d,
                     const struct retry_step *st, const struct retry_record *rec,
                     const struct retry_policy *pol, const struct retry_failure *f, int64_t t,
                     int64_t last_at, unsigned n)
{
	char a[RETRY_NAME_SIZE];
	struct buf why;

	buf_init(&why, 1024);
	if (d != NULL)
		retry_explain_reason(&why, d, st, rec, pol, f, t);
	if (json) {
		buf_append_str(out, "\n  ],\n  \"bounce_at\": ");
		if (d != NULL) {
			buf_append_printf(out, "%lld,\n  \"bounce_reason\": ", (long long)t);
			retry_json_str(out, buf_cstr(&why));
		} else {
			buf_append_str(out, "null,\n  \"bounce_reason\": null");
		}
		buf_append_printf(out, ",\n  \"truncated\": %s\n}\n", d != NULL ? "false" : "true");
	} else if (d != NULL) {
		buf_append_printf(out, "bounce at +%s (attempt %u): %s\n", retry_dur(t, a, sizeof(a)), n,
		                  buf_cstr(&why));
	} else {
		buf_append_printf(out, "no bounce within %u attempts (the last at +%s)\n", n,
		                  retry_dur(last_at, a, sizeof(a)));
	}
	buf_free(&why);
}

void
retry_explain(const struct retry_rules *rules, const struct retry_policy *pol_in,
              const struct retry_explain_args *args, struct buf *out)
{
	struct retry_policy pol = *pol_in;
	struct retry_failure f;
	struct retry_record rec = { 0, 0, 0, false };
	struct retry_decision d;
	struct retry_step st;
	struct retry_explain_row row;
	const char *at;
	unsigned max = args->max_attempts ? args->max_attempts : RETRY_EXPLAIN_ATTEMPTS_MAX;
	unsigned n, history = 0;
	int64_t t;
	bool bounced = false;

	pol.rand_fn = retry_explain_rand_low;
	pol.rand_arg = NULL;
	memset(&f, 0, sizeof(f));
	f.domain = args->domain;
	at = strrchr(args->domain, '@');
	if (at != NULL) {
		f.address = args->domain;
		f.domain = at + 1;
	}
	f.host = args->host;
	f.sender = args->sender;
	f.err = args->err;
	f.host_error = retry_error_is_host(&f.err);
	t = 0;
	if (args->first_failure_ago > 0)
		t = retry_explain_history(rules, &pol, &f, args->first_failure_ago, &rec, &history);
	f.message_created = RETRY_EXPLAIN_EPOCH;
	retry_explain_header(out, rules, &pol, &f, args,
	                     retry_rules_match(rules, f.host_error ? f.host : NULL, f.domain,
	                                       f.host_error ? NULL : f.address, &f.err, f.sender),
	                     history);
	memset(&row, 0, sizeof(row));
	for (n = 1; n <= max; n++) {
		retry_decide_step(rules, &pol, &f, &rec, RETRY_EXPLAIN_EPOCH + t, &d, &st);
		memset(&row, 0, sizeof(row));
		row.n = n;
		row.at = t;
		row.bounce = d.bounce;
		row.interval = d.next_try - (RETRY_EXPLAIN_EPOCH + t);
		row.lo = st.lo;
		row.hi = st.hi;
		row.set = st.set;
		row.random = st.set != NULL && st.set->letter == 'H' && st.hi > st.lo;
		if (args->json)
			retry_explain_json_row(out, &row, n == 1);
		else
			retry_explain_text_row(out, &row);
		if (d.bounce) {
			bounced = true;
			break;
		}
		t = d.next_try - RETRY_EXPLAIN_EPOCH;
	}
	retry_explain_footer(out, args->json, bounced ? &d : NULL, &st, &rec, &pol, &f, t, row.at,
	                     bounced ? n : max);
}
