/*
 * smtp_class: what one outcome of an SMTP dialogue means for delivery.
 * Given where the dialogue was (the stage), what happened there (a reply,
 * a timeout, a lost connection, a failed connect ...), where the host came
 * from (MX or not) and the errno of a failed connect, it gives:
 *
 *  - the agent status (delivered / tempfail / permfail, agent_proto.h);
 *  - the scope, Exim's three kinds of error for outgoing SMTP (Exim spec,
 *    "Errors in outgoing SMTP"): HOST (try the next host; qmgr suspends
 *    the destination), MESSAGE (this message to this host: every
 *    recipient of the transaction) or RECIPIENT (this recipient only);
 *  - the Exim retry error name, as queue/retry_error.c parses it, for
 *    retry rules ("refused_MX", "timeout_connect_A", "rcpt_452", ...;
 *    "other" where Exim would set no class and only a "*" rule matches);
 *  - the enhanced status code to report (RFC 3463): the server's own when
 *    it gave one, else a default for the situation.
 *
 * Exim's rules, as smtp.c applies them (check_response, sync_responses,
 * the FAILED block of smtp_deliver) and its spec states them:
 *  - connect refused / timed out: refused_MX|_A, timeout_connect_MX|_A;
 *    other connect errors (unreachable ...): host error, "other".
 *  - any error reply to the greeting or EHLO/HELO: host error; 4xx
 *    defers, 5xx fails the recipients if no other host is left.
 *  - loss of connection (EOF, ECONNRESET) anywhere but after the final
 *    ".": lost_connection, host error; after ".": message error. Other I/O
 *    errors: host error, "other" (Exim keeps the errno, which no named
 *    rule matches).
 *  - timeouts: timeout_MX|_A; a host error, except after MAIL and after
 *    the final "." (message errors) and after RCPT (recipient error). A
 *    timeout waiting for 354 after DATA, or while sending the content, is
 *    a host error.
 *  - 4xx to MAIL / DATA / "." : mail_4NN, data_4NN with the real code
 *    (a rule "rcpt_4xx" still matches "rcpt_452": retry.c compares codes);
 *    4xx to RCPT: rcpt_4NN, a recipient error. 5xx: permanent, same scope.
 *  - TLS handshake failure, or TLS required but not available:
 *    tls_required (Exim's ERRNO_TLSFAILURE and ERRNO_TLSREQUIRED both
 *    match it). AUTH required and failed: auth_failed. Both host errors,
 *    both temporary (a 5xx to AUTH defers, as Exim does).
 *  - a garbled reply (smtp_reply error): host error, "other" (Exim's
 *    ERRNO_SMTPFORMAT is matched only by "*").
 *
 * Deliberate differences from Exim, each with its reason:
 *  - 421 to any command is a HOST error (the class keeps Exim's name,
 *    mail_421 / rcpt_421 / data_421, so rules written for Exim still
 *    match). RFC 5321 3.8 and 4.2.1: 421 means the server is closing the
 *    channel and may be sent in reply to any command; nothing more can go
 *    down this connection, and the next host should be tried.
 *  - 552 to RCPT is taken as 452 (tempfail, rcpt_452, enhanced code class
 *    4): RFC 5321 4.5.3.1.10 says clients SHOULD treat it as the
 *    temporary "too many recipients" RFC 821 mislabelled; Postfix does
 *    the same. Exim bounces it.
 *  - a 5xx to STARTTLS, or to AUTH when neither is required, is not an
 *    outcome at all: the client goes on without (as Exim does); if it is
 *    classified anyway it is a temporary host error, never a bounce.
 *
 * Not decided here (the client's business): falling back from EHLO to
 * HELO; whether a 452 "too many recipients" (RFC 5321 4.5.3.1.10) should
 * instead be retried in a new transaction on the same connection (Exim
 * does that after at least one RCPT got 2xx or 5xx); whether other hosts
 * remain.
 *
 * Pure: no I/O, no state. panic() only for a stage/event pair that
 * cannot happen (a reply at CONNECT or TLS, a connect error later on).
 */
#ifndef TERN_SMTP_CLASS_H
#define TERN_SMTP_CLASS_H

#include <stdbool.h>

#include "queue/agent_proto.h"

/* Where the dialogue was. */
enum smtp_stage {
	SMTP_STAGE_CONNECT = 0,	/* TCP connect() */
	SMTP_STAGE_GREETING,	/* waiting for the 220 banner */
	SMTP_STAGE_EHLO,	/* EHLO, or HELO after a refused EHLO */
	SMTP_STAGE_STARTTLS,	/* the STARTTLS command */
	SMTP_STAGE_TLS,		/* the TLS handshake after 220 to STARTTLS */
	SMTP_STAGE_AUTH,	/* the AUTH exchange */
	SMTP_STAGE_MAIL,	/* MAIL FROM */
	SMTP_STAGE_RCPT,	/* RCPT TO */
	SMTP_STAGE_DATA,	/* the DATA command, waiting for 354 */
	SMTP_STAGE_CONTENT,	/* sending the message and the final "." */
	SMTP_STAGE_DOT,		/* waiting for the reply to the final "." */
};

/* What happened there. */
enum smtp_event {
	SMTP_EVENT_REPLY = 0,	/* the server replied: code (and enh) */
	SMTP_EVENT_TIMEOUT,	/* nothing within the stage's time limit */
	SMTP_EVENT_LOST,	/* the connection ended or broke: err is 0 for
				 * EOF, else the errno (ECONNRESET, EPIPE ...) */
	SMTP_EVENT_PROTOCOL,	/* a garbled reply (smtp_reply error) */
	SMTP_EVENT_CONNECT_ERROR,	/* CONNECT only: connect() failed with err */
	SMTP_EVENT_TLS_FAILED,	/* the TLS handshake failed (any stage) */
	SMTP_EVENT_TLS_UNAVAILABLE,	/* TLS is required, but the server did
					 * not offer STARTTLS or refused it */
	SMTP_EVENT_AUTH_FAILED,	/* AUTH is required, but no mechanism is
				 * shared or every attempt was refused */
	SMTP_EVENT_SMTPUTF8_UNAVAILABLE,	/* the message needs SMTPUTF8
						 * (RFC 6531), not offered */
	SMTP_EVENT_TOO_BIG,	/* the message is over the server's SIZE */
};

/* Exim's kinds of error for outgoing SMTP; NONE for a positive reply. */
enum smtp_scope {
	SMTP_SCOPE_NONE = 0,
	SMTP_SCOPE_HOST,	/* the host: try the next one, suspend this one */
	SMTP_SCOPE_MESSAGE,	/* this message to this host, all its recipients */
	SMTP_SCOPE_RECIPIENT,	/* this recipient */
};

struct smtp_class_input {
	enum smtp_stage stage;
	enum smtp_event event;
	int code;		/* REPLY: 200..599 */
	const char *enh;	/* REPLY: the server's enhanced code; NULL or "" none */
	bool via_mx;		/* the host came from an MX record (false: from
				 * A/AAAA, a relayhost or "[host]") */
	int err;		/* CONNECT_ERROR and LOST: the errno (LOST: 0 = EOF) */
};

struct smtp_class_result {
	enum agent_status status;	/* DELIVERED: the reply is the positive
					 * one for the stage (at DOT: delivered) */
	enum smtp_scope scope;
	/* The Exim error name of every TEMPFAIL, and of a HOST-scope
	 * PERMFAIL ("other"): when another host is tried, that PERMFAIL is a
	 * temporary failure of this host under this name. "" for DELIVERED
	 * and for MESSAGE or RECIPIENT PERMFAILs (never retried). */
	char err_class[AGENT_CLASS_MAX];
	/* "2.0.0", "4.4.1", the server's "5.1.1" ...: always set, its class
	 * always that of status (a server's 5.7.8 to a deferred AUTH is
	 * reported as 4.7.8). */
	char enh[AGENT_ENH_MAX];
	/* Nothing more can be sent on this connection (timeout, lost, garbled,
	 * TLS failure, 421): close it, without QUIT. */
	bool conn_dead;
};

/* Classify one outcome; out is fully written. */
void smtp_class_outcome(const struct smtp_class_input *in, struct smtp_class_result *out);

static inline bool
smtp_class_is_host_error(const struct smtp_class_result *r)
{
	return r->scope == SMTP_SCOPE_HOST;
}

/* The stage as Postfix names it in logs: "RCPT TO", "end of DATA",
 * "initial server greeting" ... (static strings). */
const char *smtp_class_stage_name(enum smtp_stage stage);

#endif
