/*
 * The session structure, shared by smtpd_session.c (lifecycle, I/O, input
 * loop), smtpd_verbs.c (the command table and handlers) and smtpd_tls.c
 * (STARTTLS, the handshake, TLS reads and writes). Private to those files.
 */
#ifndef TERN_SMTPD_SESSION_IMPL_H
#define TERN_SMTPD_SESSION_IMPL_H

#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/evloop.h"
#include "common/lineread.h"
#include "config/config.h"
#include "queue/envelope.h"
#include "queue/spool.h"
#include "smtpd/smtpd_actions.h"
#include "smtpd/smtpd_auth.h"
#include "smtpd/smtpd_command.h"
#include "smtpd/smtpd_content.h"
#include "smtpd/smtpd_data.h"
#include "smtpd/smtpd_peer.h"
#include "smtpd/smtpd_restrict.h"
#include "smtpd/smtpd_server.h"
#include "smtpd/smtpd_session.h"
#include "smtpd/smtpd_xforward.h"

/* Bytes asked of read(2) at a time. */
#define SMTPD_READ_CHUNK 16384
/* Unconsumed input we hold: a command line (line_length_limit) or a
 * piece of DATA being decoded. */
#define SMTPD_IN_MAX (256u * 1024)
/* Replies we queue; past SMTPD_OUT_PAUSE we stop reading commands until
 * the client reads its replies (pipelining abuse must not grow memory). */
#define SMTPD_OUT_MAX (256u * 1024)
#define SMTPD_OUT_PAUSE (64u * 1024)
/* Decoded content staged before it goes to the spool file. */
#define SMTPD_DECODED_MAX (64u * 1024)
/* How long the 421 of an aborted or drained session may take to leave. */
#define SMTPD_CLOSE_LINGER_MS 2000

/* Protocol states; each is one bit so the command table can list sets. */
enum smtpd_state {
	SMTPD_STATE_CONNECTED = 0x001,	/* greeted, no HELO/EHLO yet */
	SMTPD_STATE_READY = 0x002,	/* HELO/EHLO done, no transaction */
	SMTPD_STATE_MAIL = 0x004,	/* MAIL accepted, no recipient yet */
	SMTPD_STATE_RCPT = 0x008,	/* at least one recipient accepted */
	SMTPD_STATE_DATA = 0x010,	/* reading DATA content */
	SMTPD_STATE_BDAT = 0x020,	/* reading a BDAT chunk */
	SMTPD_STATE_CHUNKING = 0x040,	/* between BDAT chunks */
	SMTPD_STATE_COMMIT = 0x080,	/* waiting for the spool's verdict */
	SMTPD_STATE_CLOSING = 0x100,	/* flushing the last reply, then close */
	SMTPD_STATE_WAIT = 0x200,	/* a restriction check waits for DNS or a policy server */
	SMTPD_STATE_AUTH = 0x400,	/* waiting for the AUTH back end's answer */
	SMTPD_STATE_HANDSHAKE = 0x800,	/* flushing the STARTTLS 220 in plain
					 * text, then the TLS handshake (and the
					 * smtps one, before the greeting): no
					 * input is read as commands */
	SMTPD_STATE_LOOKUP = 0x1000,	/* the client's names are being looked
					 * up (smtpd_peer.h): nothing sent yet,
					 * nothing read */
};

/* Where a session is in the transaction's content. */
#define SMTPD_STATES_COMMAND (SMTPD_STATE_CONNECTED | SMTPD_STATE_READY | SMTPD_STATE_MAIL | \
                              SMTPD_STATE_RCPT | SMTPD_STATE_CHUNKING)
#define SMTPD_STATES_TRANSACTION (SMTPD_STATE_MAIL | SMTPD_STATE_RCPT | SMTPD_STATE_DATA | \
                                  SMTPD_STATE_BDAT | SMTPD_STATE_CHUNKING | SMTPD_STATE_COMMIT)

/* Per-verb command counters for the disconnect line (Postfix format). */
struct smtpd_counter {
	unsigned ok;
	unsigned total;
};

struct smtpd_session {
	struct smtpd_server *srv;
	struct smtpd_session *prev, *next;	/* the server's list */
	int fd;
	struct ev_io io;
	struct ev_timer timer;		/* idle timeout, error sleep, linger */
	enum smtpd_state state;
	enum config_listener listener;
	struct buf in;
	struct buf out;
	struct lineread lr;
	bool peer_gone;			/* EOF or error on the socket */
	bool draining;			/* close after the current transaction */
	bool sleeping;			/* error delay running: no reading, no flushing */
	bool free_after_commit;		/* closed while the spool worked */
	const char *last_verb;		/* for "timeout after X" / "lost connection after X" */
	bool greeted;			/* the connect stage (greeting) has run */
	/* TLS (smtpd_tls.c): NULL in plain text; set from the STARTTLS reply
	 * (or the smtps connect) on. */
	struct smtpd_tls_session *tls;
	/* Fires at once when decrypted input waits inside OpenSSL while the
	 * session wants to read: no socket event would say so. */
	struct ev_timer pending_timer;

	char client_addr[INET6_ADDRSTRLEN];
	/* The client's names (smtpd_peer.h): client_name is the verified
	 * one, reverse_name the PTR's; "unknown" without one. */
	char client_name[256];
	char reverse_name[RESOLVER_NAME_SIZE];
	enum smtpd_peer_status name_status, reverse_name_status;
	struct smtpd_peer_lookup *peer_lookup;	/* in SMTPD_STATE_LOOKUP */
	unsigned client_port;
	char server_addr[INET6_ADDRSTRLEN];
	unsigned server_port;
	char helo[SMTPD_HELO_MAX + 1];	/* "" before HELO/EHLO */
	bool esmtp;			/* EHLO (not HELO) was used */
	/* The sendmail socket (CONFIG_LISTENER_SENDMAIL): a local user's
	 * submission, trusted like Postfix's pickup (no relay restrictions),
	 * and who it was, from SO_PEERCRED: the kernel's word, not the
	 * client's (Received: ... from userid N, and the client= log line). */
	bool local;
	unsigned long peer_uid;
	long peer_pid;
	unsigned errors;		/* counted toward the soft/hard limits */
	bool anvil_counted;		/* in the anvil table's session count
					 * (smtpd_ratelimit.h) */

	/* The transaction. */
	struct envelope env;
	struct smtpd_mail_args mail;	/* MAIL FROM as parsed */
	/* RCPT commands accepted: what smtpd_recipient_limit counts (as
	 * Postfix's does), not the recipients aliases expanded them to. */
	size_t rcpt_accepted;
	struct spool_msg *msg;		/* the message file, from DATA/BDAT on */
	struct smtpd_data data;		/* the content decoder */
	struct buf decoded;		/* decoded content on its way to msg */
	/* Header and body checks on the way (smtpd_content.h), NULL when
	 * the listener has none; content_maps is its reference. */
	struct smtpd_content *content;
	struct smtpd_content_maps *content_maps;
	enum spool_result write_error;	/* sticky spool write failure */
	uint64_t bdat_left;		/* octets of the current chunk still to come */
	bool bdat_last;			/* the current chunk is the LAST one */
	bool bdat_discard;		/* read the chunk, then refuse it */
	enum smtpd_state bdat_prev_state;	/* state to return to after a refused chunk */
	struct smtpd_reply bdat_refusal;	/* the reply for a discarded chunk */

	/* Restrictions (smtpd_verbs.c, smtpd_restrict.h). */
	struct smtpd_restrict_check *check;	/* the check the session waits for */
	enum smtpd_state wait_from;		/* the state to go back to */
	void (*wait_done)(struct smtpd_session *, const struct smtpd_restrict_result *);
	struct smtpd_rcpt_args wait_rcpt;	/* the RCPT being checked */
	char wait_helo[SMTPD_HELO_MAX + 1];	/* the HELO name being checked */
	bool wait_esmtp;
	bool access_denied;		/* client refused at connect (smtpd_delay_reject = no) */
	bool carry_session, carry_mail;	/* a defer_if_permit carried to RCPT */
	struct smtpd_reply carried_session, carried_mail;
	struct buf prepend;		/* PREPEND headers for the message */
	bool discard;			/* a DISCARD action: accept, then drop */
	bool hold;			/* a HOLD action: queue it on hold */
	struct smtpd_actions actions;	/* FILTER, REDIRECT, BCC actions */
	char instance[48];		/* policy "instance": one per transaction */
	/* SMTP AUTH (smtpd_auth_cmd.c). */
	struct smtpd_auth *auth;	/* the exchange in progress, or NULL */
	enum smtpd_state auth_prev_state;	/* where the session returns after it */
	bool auth_reading;		/* the next line answers a 334 challenge */
	size_t auth_saved_line_max;	/* the line limit to restore after it */
	/* "" when not authenticated; what permit_sasl_authenticated and the
	 * sender login maps look at. */
	char sasl_method[SMTPD_AUTH_MECH_MAX + 1];
	char sasl_username[SMTPD_AUTH_USERNAME_MAX + 1];
	/* XFORWARD (smtpd_xforward.h): the origin a trusted content filter
	 * named for the current transaction; forgotten when it ends. */
	struct smtpd_xforward xforward;

	/* Milters (smtpd_milter.h): NULL when the listener has none. */
	struct smtpd_milter_sess *milter;
	uint64_t content_off;		/* bytes of our own headers before the client's */

	struct smtpd_counter count[SMTPD_VERB_COUNT];
	struct smtpd_counter count_all;
};

/* ---- smtpd_session.c: replies and state ---- */

/* Queue one reply line: "code enh text". */
void smtpd_reply(struct smtpd_session *s, int code, const char *enh, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Queue one line of a multi-line reply (last = false gives "code-"). */
void smtpd_reply_part(struct smtpd_session *s, int code, bool last, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Queue a parser's error reply. */
void smtpd_reply_error(struct smtpd_session *s, const struct smtpd_reply *r);
/* Count an error reply toward the limits; true when the hard limit was hit
 * (the session then answers 421 and closes). */
bool smtpd_session_error(struct smtpd_session *s);
/* Finish with the queued replies and close the session. */
void smtpd_session_close_after_reply(struct smtpd_session *s);
/* Log a "NOQUEUE: reject: ..." line for a refused command. */
void smtpd_log_reject(struct smtpd_session *s, const char *stage, int code, const char *enh,
                      const char *text, const char *rcpt);
/* A restriction check ended: go on with the session (smtpd_verbs.c). */
void smtpd_session_resume(struct smtpd_session *s);
/* The protocol name for logs and Received: SMTP, ESMTP. */
const char *smtpd_session_proto(const struct smtpd_session *s);

/* The session's asynchronous wait (spool commit, AUTH back end) is over:
 * run it again. */
void smtpd_session_commit_done(struct smtpd_session *s);

/* ---- smtpd_verbs.c: commands and the transaction ---- */

/* Handle one complete command line (without CRLF). */
void smtpd_verbs_dispatch(struct smtpd_session *s, const char *line, size_t len);
/* Feed buffered input to the DATA/BDAT decoder; returns false when it
 * must wait for more input. */
bool smtpd_verbs_content(struct smtpd_session *s);
/* Forget the transaction (RSET, EHLO, end of message). */
void smtpd_verbs_reset(struct smtpd_session *s);
/* Free what the transaction holds (at session end). */
void smtpd_verbs_free(struct smtpd_session *s);
/* The greeting, after the client restrictions when they run at connect. */
void smtpd_verbs_connect(struct smtpd_session *s);

#endif
