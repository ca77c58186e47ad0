/*
 * envelope: what the spool's index holds for one message, and its binary
 * record format.
 *
 * The record is versioned and decoded by an explicit, bounded parser: a
 * record written by an older tern, or damaged on disk, decodes to an error,
 * never to a crash. Fields are tagged, so later versions add fields that
 * older readers skip.
 */
#ifndef TERN_ENVELOPE_H
#define TERN_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* RFC 3461 NOTIFY bits; 0 = not given (the default: FAILURE,DELAY). */
#define ENVELOPE_NOTIFY_NEVER   0x1u
#define ENVELOPE_NOTIFY_SUCCESS 0x2u
#define ENVELOPE_NOTIFY_FAILURE 0x4u
#define ENVELOPE_NOTIFY_DELAY   0x8u

enum envelope_ret { ENVELOPE_RET_DEFAULT = 0, ENVELOPE_RET_FULL, ENVELOPE_RET_HDRS };
enum envelope_body { ENVELOPE_BODY_DEFAULT = 0, ENVELOPE_BODY_7BIT, ENVELOPE_BODY_8BITMIME,
                     ENVELOPE_BODY_BINARYMIME };

struct envelope_rcpt {
	char *addr;		/* the recipient as given (no < >), owned */
	char *orcpt;		/* RFC 3461 ORCPT as "type;xtext-decoded" or NULL */
	unsigned notify;	/* ENVELOPE_NOTIFY_* */
	/* An alias's "|command" (with its '|') or "/file" target, owned, or
	 * NULL for mail to addr itself. With a target, addr is the alias
	 * whose expansion holds it: the local agent resolves addr again and
	 * runs the target only when its own expansion holds it too, with the
	 * rights it finds there (config/addr_resolve.h, "owner"). */
	char *target;
};

struct envelope {
	char *sender;		/* "" for the null sender <> */
	struct envelope_rcpt *rcpts;
	size_t nrcpt;
	size_t rcpt_cap;
	enum envelope_ret ret;
	char *envid;		/* RFC 3461 ENVID, decoded, or NULL */
	enum envelope_body body;
	bool smtputf8;
	/* Put on hold when queued (a HOLD action of smtpd's restrictions):
	 * qmgr records it as held the first time it sees the message, and
	 * a release clears that record, not this flag. */
	bool hold;
	uint64_t size;		/* bytes of the message file */
	int64_t arrival;	/* microseconds since the epoch */
	char *client_name;	/* "unknown" when no reverse name */
	char *client_addr;	/* "192.0.2.1", "2001:db8::1" */
	char *helo;		/* HELO/EHLO argument or NULL */
	char *proto;		/* "SMTP", "ESMTP", "ESMTPS", "ESMTPSA", "LOCAL" ... */
	char *sasl_method;	/* NULL when not authenticated */
	char *sasl_username;
	char *listener;		/* "smtp", "submission", "smtps", "local" */
	/* The after-queue content filter, "transport:nexthop" (content_filter
	 * or a FILTER action), or NULL: qmgr sends every recipient there
	 * instead of routing it (doc/content_filter.md). */
	char *filter;
};

/* Largest encoded record we accept when decoding. */
#define ENVELOPE_RECORD_MAX (16u * 1024 * 1024)

void envelope_init(struct envelope *env);
/* Free every owned string and the recipients; env may be reused after init. */
void envelope_free(struct envelope *env);
/* Reset to empty, keeping the recipient array's storage. */
void envelope_clear(struct envelope *env);
/* Deep copy src into dst (dst must be initialised and is cleared first). */
void envelope_copy(struct envelope *dst, const struct envelope *src);
/* Set a string field (copies s, frees the previous value; NULL clears). */
void envelope_set(char **field, const char *s);
/* Append a recipient (copies addr and orcpt); its target is NULL (set it
 * with envelope_set(&env->rcpts[env->nrcpt - 1].target, ...)). */
void envelope_add_rcpt(struct envelope *env, const char *addr, const char *orcpt,
                       unsigned notify);
/* Drop recipient i (i < nrcpt); the later ones move up one place. */
void envelope_remove_rcpt(struct envelope *env, size_t i);
/* Drop every recipient (a REDIRECT action), keeping the array's storage. */
void envelope_clear_rcpts(struct envelope *env);

/* Append the record of env to out. BUF_TOO_BIG when out's max is passed. */
enum buf_result envelope_encode(const struct envelope *env, struct buf *out);
/*
 * Decode a record into env (initialised by the caller). 0, or -1 with a
 * short reason in err (unknown version, truncated field, bad count, ...);
 * on error env holds nothing the caller must keep (it is cleared).
 */
int envelope_decode(const void *p, size_t len, struct envelope *env, char *err, size_t errsz);

#endif
