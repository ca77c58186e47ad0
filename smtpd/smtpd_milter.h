/*
 * smtpd_milter: the before-queue Milter client of a session
 * (smtpd_milters, non_smtpd_milters; doc/milter.md).
 *
 * Each session that has milters opens one connection per milter at
 * connect (libmilter ends its side when the SMTP client goes, so Postfix
 * opens a connection per client too), negotiates, and reports the SMTP
 * events: connect, HELO, MAIL, RCPT, DATA, then at the end of the content
 * the header, the end of headers, the body in chunks and the end of the
 * message, whose reply may carry modifications. All I/O runs on the event
 * loop: an event puts the session in SMTPD_STATE_WAIT (nothing is read,
 * nothing answered) until every milter has answered, and the verdict then
 * goes to the caller's function.
 *
 * Milters are asked in the order of the list; the first one that rejects,
 * tempfails or discards decides, and the others are not asked. A milter
 * that accepts gets no more events for the message (or, at connect and
 * HELO, for the session). A milter that cannot be reached, times out or
 * breaks the protocol gets milter_default_action for the rest of the
 * session, as in Postfix.
 *
 * Error policy: the filter's bytes go through milter_proto's parser; any
 * problem is logged (a "warning: milter ..." line) and turns into the
 * default action. Nothing here is fatal() but out of memory.
 */
#ifndef TERN_SMTPD_MILTER_H
#define TERN_SMTPD_MILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "smtpd/milter_proto.h"

struct smtpd_session;
struct smtpd_rcpt_args;

enum smtpd_milter_kind {
	SMTPD_MILTER_CONTINUE = 0,	/* go on (possibly with quarantine set) */
	SMTPD_MILTER_REJECT,		/* answer reply (4xx or 5xx) */
	SMTPD_MILTER_DISCARD,		/* accept the message, then drop it */
	SMTPD_MILTER_SHUTDOWN,		/* 421 and close the session */
};

struct smtpd_milter_verdict {
	enum smtpd_milter_kind kind;
	/* REJECT: "550 5.7.1 text", lines separated by CR LF. */
	char reply[MILTER_REPLY_TEXT_MAX + 1];
	bool quarantine;		/* hold the message (SMFIR_QUARANTINE) */
};

typedef void smtpd_milter_done(struct smtpd_session *s, const struct smtpd_milter_verdict *v);

/* Set up the session's milters (its listener's list); false: it has none
 * (every other call is then a no-op that must not be made). */
bool smtpd_milter_start(struct smtpd_session *s);
/* Does the session have milters? */
bool smtpd_milter_active(const struct smtpd_session *s);

/*
 * Report an event; done runs later from the loop with the verdict (never
 * from inside the call). The session is in SMTPD_STATE_WAIT meanwhile and
 * back in its state when done runs; smtpd_session_resume() follows.
 */
void smtpd_milter_connect(struct smtpd_session *s, smtpd_milter_done *done);
void smtpd_milter_helo(struct smtpd_session *s, smtpd_milter_done *done);
/* Keep the arguments of the MAIL or RCPT command being handled, for its
 * event: addr as parsed, and args, the text after the verb ("FROM:<a>
 * SIZE=10"), for the ESMTP parameters. Copied. */
void smtpd_milter_args(struct smtpd_session *s, bool rcpt, const char *addr, const char *args,
                       size_t len);
void smtpd_milter_mail(struct smtpd_session *s, smtpd_milter_done *done);
void smtpd_milter_rcpt(struct smtpd_session *s, smtpd_milter_done *done);
void smtpd_milter_data(struct smtpd_session *s, smtpd_milter_done *done);
/*
 * The end of the content: the message file (s->msg, content_off bytes of
 * our own headers first, which milters do not see) goes to each milter;
 * edits are applied to the file and the envelope before done runs. bdat:
 * the DATA event is sent first (BDAT has no DATA command; doc/milter.md).
 */
void smtpd_milter_eom(struct smtpd_session *s, uint64_t content_off, bool bdat,
                      smtpd_milter_done *done);

/* The transaction ended (its final reply, RSET, HELO, an error):
 * SMFIC_ABORT to the milters that saw its MAIL, as Postfix's smtpd
 * sends after every transaction. */
void smtpd_milter_abort(struct smtpd_session *s);
/* The session ends: SMFIC_QUIT, close, free. */
void smtpd_milter_free(struct smtpd_session *s);

/* Queue v's reply (every line of it) and log Postfix's "milter-reject"
 * line for stage ("CONNECT", "RCPT", "END-OF-MESSAGE", ...). */
void smtpd_milter_reply(struct smtpd_session *s, const struct smtpd_milter_verdict *v,
                        const char *stage, const char *rcpt);
/* Only the log line (what: "reject", "discard", "hold"). */
void smtpd_milter_log(struct smtpd_session *s, const struct smtpd_milter_verdict *v,
                      const char *what, const char *stage, const char *rcpt);

#endif
