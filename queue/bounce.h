/*
 * bounce: delivery status notifications (RFC 3464), the messages qmgr
 * writes into the spool when recipients fail, expire, are delayed past
 * delay_warning_time, or were delivered/relayed with NOTIFY=SUCCESS.
 *
 * This module decides *whether* a recipient wants a notice (RFC 3461
 * NOTIFY, never for the null sender) and *what* the notice looks like; it
 * neither logs nor touches LMDB. The caller (qmgr) owns the policy
 * (notify_classes: which postmaster notices are sent, and discarding an
 * undeliverable postmaster notice), the spool file and the commit.
 *
 * Two modes, chosen by bounce_report.postmaster_rcpt:
 *
 * 1. A notice to the original sender (postmaster_rcpt NULL), the usual
 *    DSN. Refused when the original's sender is <>. Its envelope
 *    (bounce_envelope_init() fills it):
 *   - sender "" (the null reverse-path, RFC 5321 section 4.5.5), so a
 *     DSN about this DSN is never generated (RFC 3461 section 6.2);
 *   - one recipient, the original sender, with NOTIFY=NEVER for the same
 *     reason;
 *   - BODY=8BITMIME when the original was declared 8BITMIME or
 *     BINARYMIME, SMTPUTF8 when the original used it; no RET, no ENVID.
 *
 * 2. A postmaster notice (postmaster_rcpt set), Postfix's notify_classes
 *    (postconf(5); bounce_notify_service.c, bounce_warn_service.c), one of
 *    three, told apart by the kind and the original's sender:
 *   - BOUNCE_KIND_FAILED, sender not <>: a postmaster copy ("bounce"
 *     class, to bounce_notice_recipient). Subject "Postmaster Copy:
 *     Undelivered Mail"; the original's header only.
 *   - BOUNCE_KIND_FAILED, sender <>: a double bounce, a notice that
 *     itself could not be delivered ("2bounce" class, which "bounce"
 *     implies, to 2bounce_notice_recipient). Same Subject; the whole
 *     undeliverable notice up to the size limit, else its header
 *     (postconf(5): "send undeliverable bounced mail to the postmaster";
 *     Postfix's DSN_RET_FULL, bounded by bounce_size_limit).
 *   - BOUNCE_KIND_DELAYED: a postmaster delay warning ("delay" class, to
 *     delay_notice_recipient). Subject "Postmaster Warning: Delayed
 *     Mail"; the header only (the whole notice, as above, should the
 *     original's sender be <>).
 *    Success reports have no postmaster copy (refused). The envelope:
 *    sender postmaster_sender (double_bounce_sender, qualified by the
 *    caller: "double-bounce@example.net"), one recipient postmaster_rcpt
 *    with NOTIFY=NEVER, BODY and SMTPUTF8 as in mode 1. The To: field is
 *    postmaster_rcpt, Auto-Submitted is "auto-generated" (RFC 3834
 *    section 5: not a reply to the original's sender), the text part
 *    says what the notice is, and the delivery-status part is the one
 *    the sender's notice has (Original-Envelope-Id, Arrival-Date, ...).
 *    The caller lists every recipient the notice is about, whatever its
 *    NOTIFY (Postfix's DSN_NOTIFY_OVERRIDE): bounce_wanted() is the
 *    filter for mode 1 only. A postmaster notice is never the subject of
 *    another notice: its recipient has NOTIFY=NEVER, and when it cannot
 *    be delivered the caller discards it (bounce_is_postmaster_sender();
 *    Postfix logs "undeliverable postmaster notification discarded").
 *    Refused, as a loop, for an original whose sender is postmaster_sender.
 *
 * The message streamed by bounce_write() is
 *   multipart/report; report-type=delivery-status   (RFC 6522)
 *     1. text/plain, a human-readable explanation (Content-Description:
 *        Notification)
 *     2. message/delivery-status, or message/global-delivery-status when
 *        the original used SMTPUTF8 (RFC 6533)
 *     3. the original: message/rfc822 (message/global under SMTPUTF8),
 *        or its header only as text/rfc822-headers (message/global-headers
 *        under SMTPUTF8); see bounce_return_part().
 * Every line ends in CRLF. Text that came from a remote server (the
 * diagnostic) is sanitised and folded so it can never start a header line
 * or a MIME boundary; lines of the original are copied as they are (the
 * spool file is already CRLF and dot-unstuffed).
 *
 * Times are microseconds since the epoch, like envelope.arrival; 0 means
 * "unknown" and omits the field that would carry it.
 *
 * Error policy: functions return -1 with a short reason in err (read
 * error on the original, write_fn failure, a report too big); nothing is
 * logged. An out-of-range recipient index is a bug (panic()).
 *
 * Ownership: every pointer in struct bounce_report / bounce_rcpt is
 * borrowed for the duration of the call only.
 */
#ifndef TERN_BOUNCE_H
#define TERN_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "queue/envelope.h"

/* Postfix's bounce_size_limit default: without RET, return the whole
 * message up to this many bytes, otherwise its header only. */
#define BOUNCE_SIZE_LIMIT_DEFAULT 50000u

/* Largest report parts we build in memory (text + delivery-status). */
#define BOUNCE_PARTS_MAX (8u * 1024 * 1024)

/* Bytes of one remote diagnostic kept after sanitising (the rest is cut
 * and marked with "..."). */
#define BOUNCE_DIAGNOSTIC_MAX 2048u

/* What the whole report is about: chooses the Subject and the text. */
enum bounce_kind {
	BOUNCE_KIND_FAILED = 0,	/* permanent failures and expired recipients */
	BOUNCE_KIND_DELAYED,	/* delay_warning_time passed; still retrying */
	BOUNCE_KIND_DELIVERED,	/* NOTIFY=SUCCESS: delivered */
	BOUNCE_KIND_RELAYED,	/* NOTIFY=SUCCESS: relayed to a host without DSN */
};

/* RFC 3464 section 2.3.3 Action values. */
enum bounce_action {
	BOUNCE_ACTION_FAILED = 0,
	BOUNCE_ACTION_DELAYED,
	BOUNCE_ACTION_DELIVERED,
	BOUNCE_ACTION_RELAYED,
	BOUNCE_ACTION_EXPANDED,
};

/* What is returned of the original message. */
enum bounce_return {
	BOUNCE_RETURN_HEADERS = 0,	/* up to the first empty line */
	BOUNCE_RETURN_FULL,		/* the whole message */
};

/* One recipient's entry in the report. */
struct bounce_rcpt {
	const char *final_rcpt;		/* the address delivery was tried to (no < >) */
	const char *orcpt;		/* envelope ORCPT "type;addr" (decoded) or NULL */
	enum bounce_action action;
	const char *status;		/* RFC 3463 code, "5.1.1" */
	const char *remote_mta;		/* "dns; mx.example.net" or NULL */
	const char *diagnostic;		/* "smtp; 550 5.1.1 <x>: no such user" or NULL;
					 * untrusted: sanitised and folded here */
	int64_t last_attempt;		/* µs; 0 = omit Last-Attempt-Date */
	int64_t will_retry_until;	/* µs; delayed only; 0 = omit */
};

struct bounce_report {
	enum bounce_kind kind;
	const char *myhostname;		/* Reporting-MTA, Message-ID domain */
	const char *mail_name;		/* "tern" */
	const char *from_addr;		/* NULL = "MAILER-DAEMON@" myhostname; at most
					 * 512 octets, no space, no < > " */
	const char *postmaster_rcpt;	/* NULL: a notice to the sender; else a
					 * postmaster notice to this address (no < >),
					 * e.g. bounce_notice_recipient qualified:
					 * "postmaster@example.net" */
	const char *postmaster_sender;	/* with postmaster_rcpt only (required there):
					 * the notice's envelope sender,
					 * double_bounce_sender qualified. Both: at
					 * most 512 octets, no space, no < > " */
	const struct envelope *env;	/* the original message's envelope */
	const char *queue_id;		/* the original's queue id (X-Tern-Queue-ID) */
	const struct bounce_rcpt *rcpts;
	size_t nrcpt;
	uint64_t size_limit;		/* bounce_size_limit; 0 = BOUNCE_SIZE_LIMIT_DEFAULT */
	int64_t now;			/* µs: Date, Message-ID */
	uint64_t seed;			/* Message-ID tag and MIME boundary (tests fix it) */
};

/* Stream sink: 0 when all n bytes were taken, -1 on failure. */
typedef int bounce_write_fn(void *arg, const void *p, size_t n);

/* Is the envelope's sender the null reverse-path <>? (NULL counts as null.) */
bool bounce_is_null_sender(const struct envelope *env);

/*
 * Is env a postmaster notice, i.e. is its sender postmaster_sender (the
 * double_bounce_sender address, compared without regard to case as
 * Postfix does)? When such a message cannot be delivered it is discarded
 * with a warning, never reported to anybody. False when either is NULL
 * or empty.
 */
bool bounce_is_postmaster_sender(const struct envelope *env, const char *postmaster_sender);

/*
 * Does recipient rcpt_index of env want a notice with action a? RFC 3461
 * section 4.1: no NOTIFY means FAILURE,DELAY; NEVER means nothing;
 * SUCCESS covers delivered, relayed and expanded. Always false for the
 * null sender: the caller logs it (and may send a postmaster copy).
 * Panics when rcpt_index >= env->nrcpt.
 */
bool bounce_wanted(const struct envelope *env, size_t rcpt_index, enum bounce_action a);

/*
 * Decide what is returned of an original of orig_size bytes. For
 * BOUNCE_KIND_FAILED: RET=HDRS its header; RET=FULL or no RET the whole
 * message when orig_size <= the size limit, else the header (Postfix's
 * bounce_size_limit, which bounds RET=FULL too: no 50 MB backscatter). Delay
 * warnings and success reports (delivered, relayed) always return the
 * header only (RET=FULL asks for the message in "failed" DSNs, RFC 3461
 * section 4.3; Postfix does the same), and so does an original declared
 * BINARYMIME (its lines need not be CRLF text). A postmaster notice
 * (postmaster_rcpt set) returns the header, whatever RET says, except
 * about an original from <> (a double bounce): then the whole message when
 * orig_size <= the size limit. Sets *what (may be NULL)
 * and returns the part's Content-Type ("message/rfc822",
 * "text/rfc822-headers", "message/global", "message/global-headers"), a
 * static string.
 */
const char *bounce_return_part(const struct bounce_report *r, uint64_t orig_size,
                               enum bounce_return *what);

/*
 * Fill out (initialised by the caller, cleared here) with the envelope of
 * the notice described above (mode 1 or 2). The caller sets arrival,
 * size, proto and the client fields. Panics, as bugs (bounce_write()
 * said no): a notice to the sender when r's envelope has the null sender
 * (bounce_wanted() said no too); a postmaster notice with a
 * postmaster_rcpt or postmaster_sender that is missing or invalid.
 */
void bounce_envelope_init(struct envelope *out, const struct bounce_report *r);

/*
 * Stream the whole notice through write_fn. The original is read from
 * orig_fd with pread() from offset 0 in bounded chunks (the fd's offset
 * is not used or moved), never held whole in memory. Returns 0, or -1
 * with a reason in err: no envelope or no recipients, the null sender
 * (never a notice to <>) in mode 1, a myhostname / queue_id / mail_name /
 * from_addr / postmaster_rcpt / postmaster_sender that is empty, too long
 * or holds space, < > " or controls, a postmaster_sender without
 * postmaster_rcpt or the reverse, a postmaster notice for a success
 * report or about an original whose sender is postmaster_sender, fstat/pread
 * failure or a file shorter than fstat said, write_fn failure, parts
 * over BOUNCE_PARTS_MAX, no boundary free of collisions.
 * On error some bytes may already have been written: discard them
 * (spool_msg_abort()).
 */
int bounce_write(const struct bounce_report *r, int orig_fd, bounce_write_fn *write_fn,
                 void *arg, char *err, size_t errsz);

/* The same into out (appended); -1 with err also when out's max is passed. */
int bounce_write_buf(const struct bounce_report *r, int orig_fd, struct buf *out,
                     char *err, size_t errsz);

#endif
