/*
 * retry: rule matching, Exim's retry arithmetic, Postfix's backoff, and the
 * decision qmgr takes after a failed attempt. See retry.h.
 *
 * Pure functions on their arguments: no clock, no I/O, no global state;
 * randomness comes from the caller (arc4random when none is given).
 * Nothing here fails: a malformed rule cannot exist once parsed.
 */
#include "queue/retry.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "config/config.h"
#include "queue/retry_impl.h"

/* ---- matching ---- */

/* What an address-list item is compared with: local part and domain. */
struct retry_subject {
	const char *local;
	size_t llen;
	const char *domain;
	bool empty;		/* the null sender: only an empty item matches */
};

static void
retry_subject_address(struct retry_subject *s, const char *addr)
{
	const char *at = strrchr(addr, '@');

	s->empty = addr[0] == '\0';
	s->local = addr;
	s->llen = at ? (size_t)(at - addr) : strlen(addr);
	s->domain = at ? at + 1 : "";
}

/* The "*@domain" subject Exim builds from a host name or a domain. */
static void
retry_subject_domain(struct retry_subject *s, const char *domain)
{
	s->empty = false;
	s->local = "*";
	s->llen = 1;
	s->domain = domain;
}

/* Does s (len n) end with suffix (len m), ignoring case? */
static bool
retry_ends_with(const char *s, size_t n, const char *suffix, size_t m)
{
	return n >= m && strncasecmp(s + n - m, suffix, m) == 0;
}

/* Domain part: "*suffix" (so "*" and "*.example.org") or the exact domain. */
static bool
retry_domain_match(const char *pat, size_t plen, const char *domain)
{
	size_t dlen = strlen(domain);

	if (plen > 0 && pat[0] == '*')
		return retry_ends_with(domain, dlen, pat + 1, plen - 1);
	return plen == dlen && strncasecmp(pat, domain, plen) == 0;
}

/*
 * One item of an address list, without its "!" (Exim's match.c
 * check_address, caseless as retry_find_config asks): an empty subject
 * matches only an empty item; "local@domain" compares the local part
 * ("*suffix" = ends with suffix, "*" = any) and the domain; an item
 * without "@" is a domain, as if "*@" came first.
 */
static bool
retry_item_match(const char *pat, size_t plen, const struct retry_subject *s)
{
	const char *at = NULL, *p;
	size_t llen;

	if (s->empty)
		return plen == 0;
	if (plen == 0)
		return false;
	for (p = pat; p < pat + plen; p++)
		if (*p == '@')
			at = p;
	if (at != NULL) {
		llen = (size_t)(at - pat);
		if (llen > 0 && pat[0] == '*') {
			if (!retry_ends_with(s->local, s->llen, pat + 1, llen - 1))
				return false;
		} else if (llen != s->llen || strncasecmp(pat, s->local, llen) != 0) {
			return false;
		}
		return retry_domain_match(at + 1, plen - llen - 1, s->domain);
	}
	return retry_domain_match(pat, plen, s->domain);
}

/* One item with its optional "!": 1 match, -1 negated match, 0 no match;
 * *neg tells the item's polarity. Blanks around the item are ignored. */
static int
retry_item_polar(const char *it, size_t n, const struct retry_subject *s, bool *neg)
{
	while (n > 0 && (*it == ' ' || *it == '\t'))
		it++, n--;
	while (n > 0 && (it[n - 1] == ' ' || it[n - 1] == '\t'))
		n--;
	*neg = n > 0 && it[0] == '!';
	if (*neg)
		for (it++, n--; n > 0 && (*it == ' ' || *it == '\t'); it++, n--)
			;
	if (!retry_item_match(it, n, s))
		return 0;
	return *neg ? -1 : 1;
}

/*
 * A senders= list: the first item that matches decides (a "!" item says
 * no); when none matches the answer is the opposite of the last item's
 * polarity (Exim's match_check_list: "end list after a negation" is OK).
 * Items are separated by ':' ("::" is a literal colon; "<X" first changes
 * the separator). As Exim's string_nextinlist: "" has no item, ":" one
 * empty item, "a:" just "a".
 */
static bool
retry_list_match(const char *list, const struct retry_subject *s)
{
	const char *p = list;
	char sep = ':';
	bool neg = false;
	struct buf item;
	int r;

	if (p[0] == '<' && p[1] != '\0' && ispunct((unsigned char)p[1]))
		sep = p[1], p += 2;
	buf_init(&item, RETRY_LINE_MAX);
	while (*p != '\0') {
		buf_reset(&item);
		for (; *p != '\0'; p++) {
			if (*p == sep && p[1] == sep)
				buf_append_char(&item, *p++);
			else if (*p == sep)
				break;
			else
				buf_append_char(&item, *p);
		}
		if (*p != '\0')
			p++;
		r = retry_item_polar(buf_data(&item), buf_len(&item), s, &neg);
		if (r != 0) {
			buf_free(&item);
			return r > 0;
		}
	}
	buf_free(&item);
	return neg;
}

/* A rule's pattern: a one-item list (Exim passes an impossible separator),
 * so a negated pattern matches everything it does not name. */
static bool
retry_pattern_match(const char *pattern, const struct retry_subject *s)
{
	bool neg;
	int r = retry_item_polar(pattern, strlen(pattern), s, &neg);

	return r != 0 ? r > 0 : neg;
}

bool
retry_errspec_match(const struct retry_errspec *spec, const struct retry_error *e)
{
	bool via_ok = spec->via == RETRY_VIA_UNKNOWN || spec->via == e->via;

	switch (spec->cls) {
	case RETRY_CLASS_ANY:
		return true;
	case RETRY_CLASS_QUOTA:
		/* quota_<time>: the mailbox has not been read for at least that long. */
		return e->cls == RETRY_CLASS_QUOTA &&
		       (spec->quota_idle == 0 || (e->mailbox_idle >= 0 && e->mailbox_idle >= spec->quota_idle));
	case RETRY_CLASS_DATA_4XX:
	case RETRY_CLASS_MAIL_4XX:
	case RETRY_CLASS_RCPT_4XX:
		if (e->cls != spec->cls)
			return false;
		if (spec->code_hi - spec->code_lo == 99)
			return true;	/* _4xx: any code, also an unknown one */
		return e->smtp_code >= spec->code_lo && e->smtp_code <= spec->code_hi;
	case RETRY_CLASS_REFUSED:
		return e->cls == RETRY_CLASS_REFUSED && via_ok;
	case RETRY_CLASS_TIMEOUT_CONNECT:
		return e->cls == RETRY_CLASS_TIMEOUT_CONNECT && via_ok;
	case RETRY_CLASS_TIMEOUT:
		/* timeout_MX/_A/plain also match connect timeouts (retry.c: the
		 * connect bit is masked off unless the rule asks for it). */
		return (e->cls == RETRY_CLASS_TIMEOUT || e->cls == RETRY_CLASS_TIMEOUT_CONNECT) && via_ok;
	default:
		/* auth_failed, lost_connection, lookup, tls_required: exact. */
		return e->cls == spec->cls;
	}
}

const struct retry_rule *
retry_rules_match(const struct retry_rules *rules, const char *host, const char *domain,
                  const char *address, const struct retry_error *err, const char *sender)
{
	struct retry_subject key, alt, snd;
	bool have_alt = false;
	size_t i;

	if (rules == NULL)
		return NULL;
	if (domain == NULL)
		domain = "";
	/* retry_find_config: a host key with the domain as the alternate; an
	 * address key alone; else the domain, all as "*@..." when no "@". */
	if (host != NULL) {
		retry_subject_domain(&key, host);
		retry_subject_domain(&alt, domain);
		have_alt = true;
	} else if (address != NULL && strchr(address, '@') != NULL) {
		retry_subject_address(&key, address);
	} else {
		retry_subject_domain(&key, address != NULL ? address : domain);
	}
	if (sender != NULL)
		retry_subject_address(&snd, sender);
	for (i = 0; i < rules->n; i++) {
		const struct retry_rule *r = &rules->rule[i];

		if (!retry_errspec_match(&r->err, err))
			continue;
		/* As in Exim, no sender (exim -brt without -f) never matches a
		 * rule with senders=. */
		if (r->senders != NULL && (sender == NULL || !retry_list_match(r->senders, &snd)))
			continue;
		if (retry_pattern_match(r->pattern, &key) ||
		    (have_alt && retry_pattern_match(r->pattern, &alt)))
			return r;
	}
	return NULL;
}

size_t
retry_rules_count(const struct retry_rules *rules)
{
	return rules ? rules->n : 0;
}

const struct retry_rule *
retry_rules_rule(const struct retry_rules *rules, size_t i)
{
	return &rules->rule[i];
}

const char *
retry_rule_file(const struct retry_rule *rule)
{
	return rule->file;
}

unsigned
retry_rule_line(const struct retry_rule *rule)
{
	return rule->line;
}

const char *
retry_rule_text(const struct retry_rule *rule)
{
	return rule->text;
}

size_t
retry_rule_nsets(const struct retry_rule *rule)
{
	return rule->nsets;
}

bool
retry_error_is_host(const struct retry_error *e)
{
	switch (e->cls) {
	case RETRY_CLASS_REFUSED:
	case RETRY_CLASS_TIMEOUT_CONNECT:
	case RETRY_CLASS_TIMEOUT:
	case RETRY_CLASS_LOST_CONNECTION:
	case RETRY_CLASS_TLS_REQUIRED:
	case RETRY_CLASS_AUTH_FAILED:
		return true;
	default:
		return false;
	}
}

/* ---- Exim's arithmetic ---- */

static uint64_t
retry_rand_system(void *arg)
{
	(void)arg;
	return (uint64_t)arc4random() << 32 | arc4random();
}

/* The next interval from set, given the record before this failure. */
static int64_t
retry_set_interval(const struct retry_set *set, const struct retry_record *rec, int64_t now,
                   retry_rand_fn rand_fn, void *rand_arg, struct retry_step *step)
{
	int64_t predicted, actual, lastgap, next_gap, d, extra;

	if (set->letter == 'F') {
		step->lo = step->hi = set->p1;
		return set->p1;
	}
	/* G and H grow from the shorter of the predicted and the actual last
	 * gap: XXX the spec says "the previous interval"; retry.c uses the
	 * actual gap when an attempt came early, and we follow the source. */
	predicted = rec->next_try - rec->last_try;
	actual = now - rec->last_try;
	lastgap = predicted < actual ? predicted : actual;
	next_gap = lastgap * set->mult / 1000;
	if (set->letter == 'G') {
		d = lastgap < set->p1 ? set->p1 : next_gap;
		step->lo = step->hi = d;
		return d;
	}
	/* H: start plus a random part. XXX the spec says "chosen randomly
	 * between" start and the G value; retry.c draws from the upper half:
	 * random_number(n)/2 + n/2 with n = next_gap - start, random_number(n)
	 * in [0, n). We follow the source. */
	d = set->p1;
	step->lo = step->hi = d;
	if (next_gap > set->p1) {
		int64_t n = next_gap - set->p1;

		extra = (int64_t)(rand_fn(rand_arg) % (uint64_t)n) / 2 + n / 2;
		step->lo = set->p1 + n / 2;
		step->hi = set->p1 + (n - 1) / 2 + n / 2;
		d += extra;
	}
	return d;
}

bool
retry_record_fail_step(const struct retry_rule *rule, struct retry_record *rec, int64_t now,
                       int64_t message_age, bool host_error, int64_t interval_max,
                       retry_rand_fn rand_fn, void *rand_arg, struct retry_step *step)
{
	const struct retry_set *set = NULL, *final = NULL;
	int64_t failing, next_try;
	bool timed_out = false;
	size_t i;

	memset(step, 0, sizeof(*step));
	if (rand_fn == NULL)
		rand_fn = retry_rand_system;
	/* 1. No record, or one not written for retry_data_expire: afresh. */
	if (rec->first_failed == 0 || now - rec->last_try > RETRY_DATA_EXPIRE) {
		rec->first_failed = rec->last_try = rec->next_try = now;
		rec->expired = false;
		step->fresh = true;
	}
	/* 2. How long the key has failed; for a non-host error the message's
	 * age when larger (messages that get through reset first_failed). */
	failing = now - rec->first_failed;
	if (!host_error && message_age > failing)
		failing = message_age;
	/* 3-4. The first set whose cutoff is not passed; past the last one,
	 * the key has expired and the last set still gives the next time. */
	for (i = 0; i < rule->nsets; i++) {
		if (failing <= rule->sets[i].cutoff) {
			set = &rule->sets[i];
			break;
		}
		final = &rule->sets[i];
	}
	if (set != NULL) {
		rec->expired = false;
	} else {
		set = final;	/* NULL for a rule without sets: bounce at once */
		rec->expired = true;
		timed_out = true;
	}
	/* 6. Exim's "intermittent" escape: the message arrived before the key's
	 * first failure and has been queued longer than the last cutoff. */
	if (message_age >= 0 && now - message_age <= rec->first_failed && !rec->expired &&
	    set != NULL && message_age > rule->sets[rule->nsets - 1].cutoff) {
		timed_out = true;
		set = NULL;
		step->age_escape = true;
	}
	/* 5. The next time, clamped to retry_interval_max. */
	step->set = set;
	if (set == NULL)
		next_try = now;
	else
		next_try = now + retry_set_interval(set, rec, now, rand_fn, rand_arg, step);
	if (next_try - now > interval_max)
		next_try = now + interval_max;
	if (step->lo > interval_max)
		step->lo = interval_max;
	if (step->hi > interval_max)
		step->hi = interval_max;
	rec->last_try = now;
	rec->next_try = next_try;
	return timed_out;
}

bool
retry_record_fail(const struct retry_rule *rule, struct retry_record *rec, int64_t now,
                  int64_t message_age, bool host_error, int64_t interval_max,
                  retry_rand_fn rand_fn, void *rand_arg)
{
	struct retry_step step;

	return retry_record_fail_step(rule, rec, now, message_age, host_error, interval_max,
	                              rand_fn, rand_arg, &step);
}

/* ---- Postfix ---- */

int64_t
retry_postfix_next(int64_t now, int64_t message_created, int64_t min_backoff, int64_t max_backoff)
{
	int64_t delay = now - message_created;

	/* qmgr_active.c, in this order: the minimum wins over the maximum. */
	if (delay > max_backoff)
		delay = max_backoff;
	if (delay < min_backoff)
		delay = min_backoff;
	return now + delay;
}

bool
retry_postfix_expired(int64_t now, int64_t message_created, int64_t lifetime)
{
	return now >= message_created + lifetime;
}

/* ---- the decision ---- */

void
retry_policy_init(struct retry_policy *pol, const struct config *cfg)
{
	memset(pol, 0, sizeof(*pol));
	if (cfg != NULL) {
		pol->minimal_backoff = config_time(cfg, P_MINIMAL_BACKOFF_TIME);
		pol->maximal_backoff = config_time(cfg, P_MAXIMAL_BACKOFF_TIME);
		pol->queue_lifetime = config_time(cfg, P_MAXIMAL_QUEUE_LIFETIME);
		pol->bounce_lifetime = config_time(cfg, P_BOUNCE_QUEUE_LIFETIME);
		pol->interval_max = config_time(cfg, P_RETRY_INTERVAL_MAX);
	} else {
		pol->minimal_backoff = 300;
		pol->maximal_backoff = 4000;
		pol->queue_lifetime = 5 * 24 * 3600;
		pol->bounce_lifetime = 5 * 24 * 3600;
		pol->interval_max = RETRY_INTERVAL_MAX_CEILING;
	}
	/* Postfix (qmgr.c) caps bounce_queue_lifetime; Exim caps
	 * retry_interval_max at 24h by forcing the default. */
	if (pol->bounce_lifetime > pol->queue_lifetime)
		pol->bounce_lifetime = pol->queue_lifetime;
	if (pol->interval_max > RETRY_INTERVAL_MAX_CEILING)
		pol->interval_max = RETRY_INTERVAL_MAX_CEILING;
}

void
retry_decide_step(const struct retry_rules *rules, const struct retry_policy *pol,
                  const struct retry_failure *f, struct retry_record *rec, int64_t now,
                  struct retry_decision *out, struct retry_step *step)
{
	int64_t age = now - f->message_created, lifetime;

	memset(out, 0, sizeof(*out));
	memset(step, 0, sizeof(*step));
	if (age < 0)
		age = 0;
	out->rule = retry_rules_match(rules, f->host_error ? f->host : NULL, f->domain,
	                              f->host_error ? NULL : f->address, &f->err, f->sender);
	if (out->rule != NULL) {
		out->bounce = retry_record_fail_step(out->rule, rec, now, age, f->host_error,
		                                     pol->interval_max, pol->rand_fn, pol->rand_arg, step);
		out->next_try = rec->next_try;
		return;
	}
	/* No rule: Postfix, per message, by age; the record only remembers. */
	lifetime = f->sender != NULL && f->sender[0] == '\0' ? pol->bounce_lifetime : pol->queue_lifetime;
	if (rec->first_failed == 0 || now - rec->last_try > RETRY_DATA_EXPIRE) {
		rec->first_failed = now;
		step->fresh = true;
	}
	rec->expired = false;
	out->bounce = retry_postfix_expired(now, f->message_created, lifetime);
	out->next_try = retry_postfix_next(now, f->message_created, pol->minimal_backoff,
	                                   pol->maximal_backoff);
	step->lo = step->hi = out->next_try - now;
	rec->last_try = now;
	rec->next_try = out->next_try;
}

void
retry_decide(const struct retry_rules *rules, const struct retry_policy *pol,
             const struct retry_failure *f, struct retry_record *rec, int64_t now,
             struct retry_decision *out)
{
	struct retry_step step;

	retry_decide_step(rules, pol, f, rec, now, out, &step);
}

/* ---- formatting ---- */

const char *
retry_format_duration(int64_t secs, char *dst, size_t dstsz)
{
	static const struct { char unit; int64_t secs; } units[] = {
		{ 'd', 24 * 3600 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 },
	};
	size_t used = 0, i;
	uint64_t v;
	int n;

	if (dstsz == 0)
		return dst;
	dst[0] = '\0';
	if (secs < 0) {
		n = snprintf(dst, dstsz, "-");
		used = n > 0 ? (size_t)n : 0;
		v = (uint64_t)0 - (uint64_t)secs;
	} else {
		v = (uint64_t)secs;
	}
	if (v == 0) {
		snprintf(dst + used, dstsz - used, "0s");
		return dst;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]) && used < dstsz; i++) {
		if (v / (uint64_t)units[i].secs == 0)
			continue;
		n = snprintf(dst + used, dstsz - used, "%llu%c",
		             (unsigned long long)(v / (uint64_t)units[i].secs), units[i].unit);
		if (n < 0 || (size_t)n >= dstsz - used)
			break;
		used += (size_t)n;
		v %= (uint64_t)units[i].secs;
	}
	return dst;
}

void
retry_set_format(const struct retry_set *set, struct buf *out)
{
	char a[RETRY_NAME_SIZE], b[RETRY_NAME_SIZE];
	int64_t frac;

	buf_append_printf(out, "%c,%s,%s", set->letter, retry_format_duration(set->cutoff, a, sizeof(a)),
	                  retry_format_duration(set->p1, b, sizeof(b)));
	if (set->letter == 'F')
		return;
	buf_append_printf(out, ",%lld", (long long)(set->mult / 1000));
	frac = set->mult % 1000;
	if (frac != 0) {
		snprintf(a, sizeof(a), "%03lld", (long long)frac);
		for (size_t n = strlen(a); n > 0 && a[n - 1] == '0'; n--)
			a[n - 1] = '\0';
		buf_append_printf(out, ".%s", a);
	}
}
