/*
 * retry: when to try a deferred recipient again, and when to give up.
 *
 * Two policies, chosen per failure:
 *
 *  - Exim retry rules, read from the file named by retry_rules, one rule
 *    a line:  PATTERN  ERROR-CLASS  [senders=LIST]  SET; SET; ...
 *    The first rule in file order whose pattern, error class and senders
 *    all match wins. The arithmetic is Exim's retry.c (retry_update),
 *    computed on a retry record kept per key (host or address) by qmgr.
 *  - Where no rule matches (or the file is empty or unset): Postfix's
 *    backoff, driven by the message's age (qmgr_active.c), within
 *    maximal_queue_lifetime / bounce_queue_lifetime.
 *
 * XXX differs from Exim on purpose: in Exim an empty retry section means
 * "no retries" (every temporary error is final). In tern an empty file,
 * or retry_rules unset, means "Postfix backoff for everything", because
 * tern's default must behave like Postfix when the administrator
 * configured nothing. A rule with no parameter sets still bounces at
 * once, as in Exim. Where a rule matches, the rule alone decides when to
 * give up (maximal_queue_lifetime does not cut it short), as in Exim.
 *
 * A pure module: no I/O except reading the rules file, no clock (every
 * function takes `now`), no global state, randomness injected. Errors are
 * returned as "FILE:LINE: message\n" lines in a buf, never logged. The
 * same functions run in qmgr and in `ternctl retry explain`.
 *
 * Ownership: a struct retry_rules owns all its rules and strings; a
 * const struct retry_rule * borrowed from it is valid until
 * retry_rules_free(). Times are seconds since the epoch (int64_t);
 * intervals are seconds.
 */
#ifndef TERN_RETRY_H
#define TERN_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct config;

/* Exim's retry_data_expire default: a record not updated for this long
 * is ignored, so a host that failed a month ago starts afresh. */
#define RETRY_DATA_EXPIRE (7 * 24 * 3600)
/* Exim's retry_interval_max default and ceiling (readconf forces larger
 * values back to it). */
#define RETRY_INTERVAL_MAX_CEILING (24 * 3600)
/* Longest line of a rules file. */
#define RETRY_LINE_MAX 4096
/* Most parameter sets on one rule. */
#define RETRY_SETS_MAX 32
/* Largest rules file read. */
#define RETRY_FILE_MAX (4u * 1024 * 1024)
/* Room for retry_error_name() and retry_format_duration() results. */
#define RETRY_NAME_SIZE 48

/* ---- errors: what went wrong on one attempt ---- */

/* The kinds of temporary failure Exim's retry rules can name. */
enum retry_class {
	RETRY_CLASS_ANY = 0,	/* "*": only meaningful in a rule */
	RETRY_CLASS_AUTH_FAILED,	/* AUTH failed where it is required */
	RETRY_CLASS_DATA_4XX,	/* 4xx to DATA or after the final dot */
	RETRY_CLASS_MAIL_4XX,	/* 4xx to MAIL */
	RETRY_CLASS_RCPT_4XX,	/* 4xx to RCPT */
	RETRY_CLASS_LOST_CONNECTION,	/* the server closed the connection */
	RETRY_CLASS_LOOKUP,	/* DNS lookup for the host failed */
	RETRY_CLASS_REFUSED,	/* connect() refused */
	RETRY_CLASS_TIMEOUT_CONNECT,	/* connect() timed out */
	RETRY_CLASS_TIMEOUT,	/* timeout during the session (not connect) */
	RETRY_CLASS_TLS_REQUIRED,	/* TLS required but not offered, 4xx, or failed */
	RETRY_CLASS_QUOTA,	/* mailbox over quota, or ENOSPC */
	RETRY_CLASS_OTHER,	/* any other temporary error: only "*" matches */
};

/* Whether the host came from an MX record (refused_MX, timeout_A ...). */
enum retry_via {
	RETRY_VIA_UNKNOWN = 0,	/* only from explain ("refused"); qmgr knows */
	RETRY_VIA_MX,
	RETRY_VIA_A,		/* from A/AAAA, a relayhost, or an IP address */
};

/* One failed attempt, as the delivery agent reported it. */
struct retry_error {
	enum retry_class cls;	/* never RETRY_CLASS_ANY */
	int smtp_code;		/* DATA/MAIL/RCPT: the 4xx reply (452); 0 unknown */
	enum retry_via via;	/* REFUSED / TIMEOUT*: where the host came from */
	int64_t mailbox_idle;	/* QUOTA: seconds since the mailbox was read; -1 unknown */
};

/*
 * Turn an Exim error name as a rule would spell it ("rcpt_452",
 * "refused_MX", "timeout_connect", "quota_7d") into a failure of that
 * kind, for `ternctl retry explain`. "rcpt_4xx" gives code 0 (unknown),
 * "rcpt_45x" code 450; "quota_7d" a mailbox idle for 7 days; "refused"
 * and "timeout" leave via unknown, which only rules without _MX/_A
 * match (as exim -brt does). "*" is not a failure. Returns 0, or -1 when
 * the name is not a class (then see retry_error_classes()).
 */
int retry_error_parse(const char *name, struct retry_error *out);
/* The Exim name of a failure ("rcpt_452", "timeout_connect_MX"), for
 * logs; written to dst (RETRY_NAME_SIZE is enough) and returned. */
const char *retry_error_name(const struct retry_error *e, char *dst, size_t dstsz);
/* One line listing every class name, for usage messages. Static. */
const char *retry_error_classes(void);
/*
 * Is this a host error in Exim's sense (connection refused or timed out,
 * lost connection, TLS or AUTH trouble): retry data kept per host, rules
 * tried against the host name then the domain, and no message-age rule.
 * DATA/MAIL/RCPT 4xx, quota and lookup failures are not.
 */
bool retry_error_is_host(const struct retry_error *e);

/* ---- rules ---- */

struct retry_rules;	/* a parsed file, in file order */
struct retry_rule;	/* one line of it */

/*
 * Parse a rules file's text. filename is used in messages only. Returns
 * the rules (possibly none: an empty file), or NULL when any line is
 * malformed; then one "FILE:LINE: message\n" per problem is appended to
 * errors (all problems, not only the first).
 */
struct retry_rules *retry_rules_parse(const char *text, size_t len, const char *filename,
                                      struct buf *errors);
/*
 * Read and parse path. NULL or "" gives an empty set of rules (the
 * Postfix fallback for everything). NULL on a malformed file or when it
 * cannot be read ("FILE: cannot open: reason\n") or is over
 * RETRY_FILE_MAX.
 */
struct retry_rules *retry_rules_load(const char *path, struct buf *errors);
/* Load and free: 0 when path is fine (or NULL/""), -1 with errors
 * appended. For `ternd -n` and reload. */
int retry_rules_check_file(const char *path, struct buf *errors);
void retry_rules_free(struct retry_rules *rules);	/* NULL is fine */
size_t retry_rules_count(const struct retry_rules *rules);	/* NULL: 0 */
/* The i-th rule in file order (i < retry_rules_count()). */
const struct retry_rule *retry_rules_rule(const struct retry_rules *rules, size_t i);

/*
 * The first rule, in file order, whose error class, senders list and
 * pattern match; NULL when none does (then the Postfix fallback applies).
 *
 *  host     for host errors: the remote host's name (or textual IP),
 *           tried as "*@host" before the domain, for each rule in turn
 *           (Exim's key and alternate); NULL otherwise.
 *  domain   the recipient's domain (required).
 *  address  for address errors (4xx to RCPT, local delivery): the full
 *           recipient, tried instead of the domain; NULL otherwise.
 *  sender   the envelope sender, "" for the null sender; NULL when not
 *           known, and then a rule with senders= never matches (exim -brt).
 *
 * Patterns and senders compare whole addresses case-insensitively, as
 * retry_find_config asks match_address_list to. Patterns: "*", "domain",
 * "*.domain" (any "*suffix"), "*@domain", "local@domain", "*suffix@domain",
 * and "!" before any of them to negate. senders= is a colon list of the
 * same ("::" for a literal colon, "<X" first to change the separator);
 * an empty item matches only the null sender, so "senders=:" means
 * bounces only; a list ending in a negated item matches what it did not
 * reject (Exim). rules may be NULL.
 */
const struct retry_rule *retry_rules_match(const struct retry_rules *rules, const char *host,
                                           const char *domain, const char *address,
                                           const struct retry_error *err, const char *sender);

/* Where a rule came from, and its line as written (trimmed), for logs. */
const char *retry_rule_file(const struct retry_rule *rule);
unsigned retry_rule_line(const struct retry_rule *rule);
const char *retry_rule_text(const struct retry_rule *rule);
/* Number of parameter sets; 0 means "bounce at once". */
size_t retry_rule_nsets(const struct retry_rule *rule);

/* ---- the arithmetic ---- */

/*
 * The retry record of one key (an IP of a host, an address, host+message),
 * kept by qmgr. A record with first_failed == 0 is "none yet".
 */
struct retry_record {
	int64_t first_failed;	/* first failure of this key */
	int64_t last_try;	/* last failure (= when the record was written) */
	int64_t next_try;	/* not before this */
	bool expired;		/* past the final cutoff (Exim's expired flag) */
};

/*
 * Source of randomness for H rules: any uniformly distributed 64-bit
 * value. NULL in the functions below means the system's (arc4random).
 */
typedef uint64_t (*retry_rand_fn)(void *arg);

/*
 * A failure under rule: Exim's retry_update for one retry item, exactly.
 *  1. A record with first_failed == 0, or not written for more than
 *     RETRY_DATA_EXPIRE, starts afresh: first_failed = last_try =
 *     next_try = now.
 *  2. failing = now - first_failed; for non-host errors, the message's
 *     age if that is larger (message_age -1: unknown).
 *  3. The first set whose cutoff >= failing is used; when none is left the
 *     record is expired and the last set still computes next_try.
 *  4. F: now + interval. G: the shorter of the predicted and the actual
 *     last gap, times the multiplier, or start when the gap is shorter
 *     than start. H: start plus a random amount from the upper half of
 *     [0, gap*mult - start).
 *  5. next_try - now is clamped to interval_max.
 *  6. When the message arrived before the first failure and has been
 *     queued longer than the last cutoff, the item times out at once and
 *     next_try = now (Exim's "intermittent" escape).
 * A rule with no sets: expired, next_try = now.
 * Returns true when this key has timed out: the recipient bounces (for a
 * remote recipient, qmgr bounces when every host's key has timed out).
 */
bool retry_record_fail(const struct retry_rule *rule, struct retry_record *rec, int64_t now,
                       int64_t message_age, bool host_error, int64_t interval_max,
                       retry_rand_fn rand_fn, void *rand_arg);

/* Postfix: next attempt = now + clamp(now - created, min, max). */
int64_t retry_postfix_next(int64_t now, int64_t message_created, int64_t min_backoff,
                           int64_t max_backoff);
/* Postfix: does the message expire at this failure? now >= created +
 * lifetime (lifetime 0: try once). */
bool retry_postfix_expired(int64_t now, int64_t message_created, int64_t lifetime);

/* ---- the decision qmgr takes, and explain simulates ---- */

/* The parameters of both policies. */
struct retry_policy {
	int64_t minimal_backoff;	/* minimal_backoff_time */
	int64_t maximal_backoff;	/* maximal_backoff_time */
	int64_t queue_lifetime;	/* maximal_queue_lifetime */
	int64_t bounce_lifetime;	/* bounce_queue_lifetime (null sender) */
	int64_t interval_max;	/* retry_interval_max (<= 24h) */
	retry_rand_fn rand_fn;	/* NULL: arc4random */
	void *rand_arg;
};

/* Fill pol from cfg (NULL: the built-in defaults: 300s, 4000s, 5d, 5d,
 * 24h); rand_fn NULL. bounce_lifetime is forced <= queue_lifetime as
 * Postfix does; interval_max over 24h is forced to 24h as Exim does. */
void retry_policy_init(struct retry_policy *pol, const struct config *cfg);

/* One failed attempt for one key. Strings are borrowed for the call. */
struct retry_failure {
	const char *host;	/* host errors: host name or textual IP; else NULL */
	const char *domain;	/* recipient domain */
	const char *address;	/* address errors: full recipient; else NULL */
	const char *sender;	/* envelope sender, "" = null sender; NULL unknown */
	struct retry_error err;
	bool host_error;	/* usually retry_error_is_host(&err) */
	int64_t message_created;	/* arrival time of the message */
};

struct retry_decision {
	const struct retry_rule *rule;	/* matched rule; NULL: Postfix backoff */
	bool bounce;		/* give up on this key now (see retry_record_fail) */
	int64_t next_try;	/* when to try again (also when bounce: the key's time) */
};

/*
 * Decide after a failure at now: match a rule (retry_rules_match, with
 * f->host only for host errors and f->address only for the others) and
 * run retry_record_fail with the message's age (now - message_created),
 * else the Postfix backoff and lifetime (the null sender uses
 * bounce_lifetime). rec is updated in both cases (under the fallback:
 * first_failed/last_try/next_try only, never expired) so qmgr can store
 * it. rules may be NULL. Cannot fail.
 */
void retry_decide(const struct retry_rules *rules, const struct retry_policy *pol,
                  const struct retry_failure *f, struct retry_record *rec, int64_t now,
                  struct retry_decision *out);

/* ---- explain ---- */

struct retry_explain_args {
	const char *domain;	/* or an address local@domain (then an address key) */
	const char *host;	/* optional host name for host errors */
	const char *sender;	/* NULL: not given (senders= rules never match) */
	struct retry_error err;
	int64_t first_failure_ago;	/* the key failed first this long before arrival */
	bool json;
	unsigned max_attempts;	/* 0: RETRY_EXPLAIN_ATTEMPTS_MAX */
};
#define RETRY_EXPLAIN_ATTEMPTS_MAX 200

/*
 * Simulate attempts with a fake clock: the message arrives at t=0 and
 * every attempt fails with args->err at the time the previous one asked
 * for, through retry_decide(), until it bounces or max_attempts. Appends
 * to out the matched rule (or the Postfix fallback), one row per attempt
 * (offset from arrival, interval to the next) and the bounce time; as
 * text, or as one JSON object when args->json. H intervals are shown as
 * their bounds [low, high) and the simulation takes the lower bound.
 */
void retry_explain(const struct retry_rules *rules, const struct retry_policy *pol,
                   const struct retry_explain_args *args, struct buf *out);

/* "4d6h", "2h15m", "1h6m40s", "0s" (Exim time syntax, so it can be pasted
 * back into a rule): for logs and explain. Returns dst. */
const char *retry_format_duration(int64_t secs, char *dst, size_t dstsz);

#endif
