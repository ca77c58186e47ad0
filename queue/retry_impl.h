/*
 * retry_impl: the insides of the retry module, shared by retry.c (matching
 * and arithmetic), retry_error.c (error names), retry_parse.c (the rules
 * file) and retry_explain.c.
 * Private to queue/retry*.c; everyone else uses queue/retry.h.
 */
#ifndef TERN_RETRY_IMPL_H
#define TERN_RETRY_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/retry.h"

/* One parameter set: F,cutoff,interval or G|H,cutoff,start,multiplier. */
struct retry_set {
	char letter;		/* 'F', 'G' or 'H' */
	int64_t cutoff;		/* seconds since the first failure */
	int64_t p1;		/* F: interval; G/H: start */
	int64_t mult;		/* G/H: multiplier x1000, as Exim stores it */
};

/* The error field of a rule, as Exim's readconf_retry_error decodes it. */
struct retry_errspec {
	enum retry_class cls;	/* RETRY_CLASS_ANY for "*" */
	enum retry_via via;	/* REFUSED/TIMEOUT*: UNKNOWN = either */
	int code_lo, code_hi;	/* DATA/MAIL/RCPT_4XX: codes matched (400..499 = xx) */
	int64_t quota_idle;	/* QUOTA: quota_<time>; 0 for plain "quota" */
};

struct retry_rule {
	const char *file;	/* borrowed from the rules */
	unsigned line;
	char *text;		/* the line as written, trimmed, without comment */
	char *pattern;		/* unquoted; may start with '!' */
	char *senders;		/* unquoted list text; NULL when no senders= */
	struct retry_errspec err;
	size_t nsets;
	struct retry_set *sets;	/* owned */
};

struct retry_rules {
	char *filename;		/* owned */
	size_t n, cap;
	struct retry_rule *rule;	/* owned, file order */
};

/* What one failure did, for explain: the set used and the interval bounds. */
struct retry_step {
	const struct retry_set *set;	/* NULL: no set (none, or the age escape) */
	int64_t lo, hi;		/* interval bounds; lo == hi except for H: [lo, hi] */
	bool age_escape;	/* Exim's "on queue longer than maximum retry" */
	bool fresh;		/* the record started afresh at this failure */
};

/* retry_record_fail, reporting the step taken. */
bool retry_record_fail_step(const struct retry_rule *rule, struct retry_record *rec, int64_t now,
                            int64_t message_age, bool host_error, int64_t interval_max,
                            retry_rand_fn rand_fn, void *rand_arg, struct retry_step *step);
/* retry_decide, reporting the step taken (set NULL under the fallback). */
void retry_decide_step(const struct retry_rules *rules, const struct retry_policy *pol,
                       const struct retry_failure *f, struct retry_record *rec, int64_t now,
                       struct retry_decision *out, struct retry_step *step);

/* Decode an error field (Exim's names, case-insensitive). NULL, or a
 * message written to msg. */
const char *retry_errspec_parse(const char *s, size_t len, struct retry_errspec *out, char *msg,
                                size_t msgsz);
/* Does a rule's error field match a failure? */
bool retry_errspec_match(const struct retry_errspec *spec, const struct retry_error *e);

/* Exim time syntax ([<n>w][<n>d][<n>h][<n>m][<n>s], a unit on every
 * number): seconds, or -1. */
int64_t retry_parse_time(const char *s, size_t len);
/* "F,2h,15m" / "G,16h,1h,1.5" into out. */
void retry_set_format(const struct retry_set *set, struct buf *out);

#endif
