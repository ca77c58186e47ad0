/*
 * smtp_client: one SMTP session with one address, for one job.
 *
 *   connect -> 220 greeting -> EHLO (HELO when EHLO is refused)
 *   [-> STARTTLS -> TLS handshake -> EHLO again]   (smtp_tls_security_level)
 *   [-> AUTH ...]                     (smtp_sasl_auth_enable, doc/smtp.md)
 *   -> MAIL FROM, RCPT TO ..., DATA   (one group when PIPELINING is
 *                                      offered, RFC 2920; else one by one)
 *   -> the content, dot-stuffed, streamed from the spool file
 *   -> the final "." -> QUIT
 *
 * Every reply is matched with the command it answers through a queue of
 * expected replies, so pipelined replies are taken in order. Each outcome
 * is classified by smtp_class (status, Exim error class, scope):
 *   - a recipient's own failure is reported at once (its RESULT);
 *   - a failure of the host or of the whole transaction ends the session
 *     with host_failed, and the recipients without a result go to the
 *     next address (smtp_job.c);
 *   - a permanent failure of the transaction bounces them all.
 * When the outcome is known the job is told and the client detaches: it
 * says QUIT (if the connection is still usable) and frees itself when the
 * server answers, closes, or smtp_quit_timeout passes.
 *
 * Timeouts are Postfix's: one per command's reply (smtp_helo_timeout,
 * smtp_mail_timeout, ...), and smtp_data_xfer_timeout for each piece of
 * content the server takes.
 *
 * Reply texts for logs and DSNs follow Postfix's words: "host
 * mx.example.net[192.0.2.7] said: 550 5.1.1 <x@y>: no such user (in reply
 * to RCPT TO command)", "connect to mx[192.0.2.7]:25: Connection
 * refused", "lost connection with mx[192.0.2.7] while sending message
 * body", "conversation with mx[192.0.2.7] timed out while receiving the
 * initial server greeting".
 *
 * TLS (RFC 3207) follows smtp_tls_security_level with Postfix's semantics
 * (smtp_proto.c smtp_helo() and smtp_start_tls(), smtp_connect.c,
 * smtp_trouble.c, the PLAINTEXT_FALLBACK_* macros of smtp.h):
 *   none     never STARTTLS.
 *   may      STARTTLS when the EHLO reply offers it; any certificate.
 *            Plain text when it is not offered, or when the server refuses
 *            the command (the first EHLO's extensions stand, STARTTLS
 *            struck; a 421 still ends the session). A failed handshake is
 *            "Cannot start TLS: handshake failure" (4.7.5, tls_required):
 *            this host failed, the next address is tried, and with none
 *            left the mail is deferred; the host is not named, so qmgr
 *            does not suspend the destination (Postfix: "If TLS is
 *            opportunistic, don't throttle the destination ... new mail
 *            provides a constant stream of negative feedback"). But when
 *            the message had waited minimal_backoff_time before this job,
 *            i.e. it was deferred before (PLAINTEXT_FALLBACK_OK_AFTER_
 *            STARTTLS_FAILURE), the same address is tried again at once
 *            without TLS (RETRY_AS_PLAINTEXT; "QID: Cannot start TLS:
 *            handshake failure" is logged, as for a host skipped). So a
 *            site whose TLS is broken gets its mail on the second attempt,
 *            in plain text, never over weak TLS (smtp_tls.c), and a first
 *            attempt never gives TLS up at once. A connection lost or timed
 *            out after a good handshake retries the same way
 *            (PLAINTEXT_FALLBACK_OK_AFTER_TLS_SESSION_FAILURE). The retry
 *            counts neither as an address nor as a session (Postfix:
 *            "Don't count handshake errors towards the session limit").
 *            Postfix also keeps TLS when SASL credentials exist for the
 *            server, and so does tern (client_plain_fallback_ok).
 *   encrypt  TLS or no delivery; any certificate. STARTTLS not offered
 *            ("TLS is required, but was not offered by host H", 4.7.4),
 *            refused ("TLS is required, but host H refused to start TLS:
 *            REPLY"), a failed handshake, or no TLS engine ("TLS is
 *            required, but our TLS engine is unavailable", 4.7.5) are host
 *            errors, class tls_required: the next address, then deferred.
 *   verify   encrypt, and the chain verified against smtp_tls_CAfile and
 *            the host name matched (Postfix's smtp_tls_verify_cert_match =
 *            hostname: the MX host's name; a policy's match= names). Else
 *            "Server certificate not verified" (4.7.5, tls_required), after
 *            a QUIT over the TLS session, which still works ("we can even
 *            be polite").
 *   dane     (a host with usable TLSA records; smtp_job.c decides which
 *            level a dane host gets) encrypt, and OpenSSL's DANE
 *            verification against the TLSA records, SNI the TLSA base
 *            domain; a failure is "Server certificate not verified" too.
 * The policy's protocols= (else smtp_tls_protocols for may,
 * smtp_tls_mandatory_protocols above) and ciphers=high apply per
 * connection.
 * After the 220 to STARTTLS, whatever else was read is dropped (RFC 3207
 * section 6; the client's side of CVE-2011-0411) and the reply parser
 * starts afresh. After the handshake the extensions are forgotten and EHLO
 * is sent again (section 4.2); every read and write goes through OpenSSL.
 * Reads loop until OpenSSL wants the socket again, because decrypted
 * replies can wait inside it with no event to announce them; a read that
 * must write, or a write that must read (a key update, an alert), is
 * retried on the next event of either kind. One line per connection says
 * what was negotiated, in Postfix's words: "Untrusted TLS connection
 * established to mx[192.0.2.7]:25: TLSv1.3 with cipher
 * TLS_AES_256_GCM_SHA384 (256/256 bits)". SNI is sent for every host name
 * (Postfix sends it only with smtp_tls_servername or DANE; without it a
 * server with several names may show a certificate "verify" refuses).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "delivery/smtp_caps.h"
#include "delivery/smtp_dot.h"
#include "delivery/smtp_impl.h"
#include "delivery/smtp_reply.h"
#include "delivery/smtp_sasl.h"
#include "delivery/smtp_tls.h"
#include "queue/envelope.h"

/* Output queued at most (commands of a pipelined group, or content). */
#define SMTP_CLIENT_OUT_MAX (2u * 1024 * 1024)
/* Content is read from the spool file while less than this is queued. */
#define SMTP_CLIENT_CONTENT_LOW (64u * 1024)
#define SMTP_CLIENT_READ_CHUNK (64u * 1024)

enum smtp_expect {
	EXP_GREETING,
	EXP_EHLO,
	EXP_HELO,
	EXP_STARTTLS,
	EXP_MAIL,
	EXP_RCPT,
	EXP_DATA,
	EXP_DOT,
	EXP_QUIT,
	EXP_RSET,	/* a cached connection taken for a new job */
	EXP_AUTH,	/* AUTH, or a response to its 334 challenge */
	EXP_XFORWARD,	/* XFORWARD before MAIL (Postfix's XFORWARD_README) */
};

struct smtp_pending {
	enum smtp_expect what;
	size_t k;		/* EXP_RCPT: the job's recipient */
};

struct smtp_client {
	struct smtp_job *job;	/* NULL once detached (saying QUIT) */
	struct smtp_agent *agent;
	struct smtp_target t;
	char peer[RESOLVER_NAME_SIZE + 120];	/* "mx.example.net[192.0.2.7]" */
	char relay[AGENT_RELAY_MAX];		/* peer and ":port" */
	int fd;
	struct ev_io io;
	struct ev_timer timer;
	bool connecting;
	int start_errno;	/* socket()/connect() failed at once */

	enum smtp_stage stage;	/* where a timeout or a lost connection is */
	struct smtp_reply_parser rp;
	struct buf out;
	struct smtp_caps caps;
	bool pipelining;
	unsigned xforward_owed;	/* XFORWARD replies still to come */
	unsigned xforward_step;	/* the next XFORWARD command (0, 1; 2: none left) */

	struct smtp_pending *pend;	/* replies expected, in order */
	size_t pend_head, pend_n, pend_cap;
	size_t rcpt_next;	/* next recipient to send (one by one) */
	bool *accepted;		/* per recipient of the job */
	size_t naccepted;
	/* Recipients the server refused for its recipient limit (452, or 552
	 * 5.5.3: RFC 5321 section 4.5.3.1.10) in this transaction: sent
	 * again in the next one on the same connection. */
	bool *over_limit;
	size_t nover_limit;
	struct smtp_class_result over_limit_cr;	/* the first such refusal, */
	int over_limit_code;				/* for them when no next */
	char over_limit_text[AGENT_TEXT_MAX];		/* transaction comes */
	bool tx_failed;		/* the transaction is over: ignore the rest */

	int content_fd;
	bool content_on;	/* streaming the content */
	struct smtp_dot dot;

	/* AUTH (smtp_sasl_auth_enable): the exchange under way, then done
	 * for the life of the connection (a cached one stays authenticated
	 * for the same next hop). */
	struct smtp_sasl *sasl;
	bool authed;

	/* TLS */
	enum smtp_tls_level tls_level;	/* the host's (smtp_job.c); NONE on a
					 * plain-text retry */
	struct smtp_tls_conn *tls;	/* from the 220 to STARTTLS on */
	bool tls_up;		/* handshake done: all I/O through tls */
	bool tls_want_write;	/* OpenSSL needs the socket writable to go on */
	bool plain_retry;	/* this connection is Postfix's RETRY_AS_PLAINTEXT */
	unsigned conn_gen;	/* counts connections: input read on an older one
				 * is not for this one */

	int64_t t_start_us, t_mail_us;
	bool dead;		/* closed; freed from the loop (never inside a
				 * handler that may still look at it) */
	bool listed;		/* in closing_list */
	struct smtp_client *next_closing;

	/* Connection cache: a connection whose transaction ended cleanly
	 * waits smtp_connection_cache_time_limit for the next job to the
	 * same transport and next hop (in closing_list, idle). */
	bool idle;
	bool reusing;		/* RSET sent on a cached connection */
	char cache_key[AGENT_TRANSPORT_MAX + AGENT_NEXTHOP_MAX + 2];
};

/* Clients no job holds any more: saying QUIT, or closed and waiting to be
 * freed. The agent frees what is left when it stops. */
static struct smtp_client *closing_list;

static void
closing_add(struct smtp_client *c)
{
	if (c->listed)
		return;
	c->listed = true;
	c->next_closing = closing_list;
	closing_list = c;
}

static void client_io(struct ev_io *io, unsigned revents);
static void client_connect(struct smtp_client *c);
static void client_tls_failed(struct smtp_client *c, const char *detail);
static void client_mail_group(struct smtp_client *c);
static void client_output_full(struct smtp_client *c);
static int client_credentials(const struct smtp_client *c, char *user, char *password);

static int64_t
stage_timeout(const struct smtp_client *c)
{
	const struct smtp_settings *s = &c->agent->set;

	switch (c->stage) {
	case SMTP_STAGE_CONNECT:
		return s->connect_ms;
	case SMTP_STAGE_GREETING:
	case SMTP_STAGE_EHLO:
	case SMTP_STAGE_STARTTLS:
	case SMTP_STAGE_TLS:
	case SMTP_STAGE_AUTH:
		return s->helo_ms;
	case SMTP_STAGE_MAIL:
		return s->mail_ms;
	case SMTP_STAGE_RCPT:
		return s->rcpt_ms;
	case SMTP_STAGE_DATA:
		return s->data_init_ms;
	case SMTP_STAGE_CONTENT:
		return s->data_xfer_ms;
	case SMTP_STAGE_DOT:
		return s->data_done_ms;
	}
	return s->helo_ms;
}

/* Postfix's "while ..." phrases. */
static const char *
stage_doing(enum smtp_stage s)
{
	switch (s) {
	case SMTP_STAGE_CONNECT:
		return "connecting";
	case SMTP_STAGE_GREETING:
		return "receiving the initial server greeting";
	case SMTP_STAGE_EHLO:
		return "performing the EHLO handshake";
	case SMTP_STAGE_STARTTLS:
		return "receiving the STARTTLS response";
	case SMTP_STAGE_TLS:
		return "performing the TLS handshake";
	case SMTP_STAGE_AUTH:
		return "authenticating";
	case SMTP_STAGE_MAIL:
		return "sending MAIL FROM";
	case SMTP_STAGE_RCPT:
		return "sending RCPT TO";
	case SMTP_STAGE_DATA:
		return "sending DATA command";
	case SMTP_STAGE_CONTENT:
		return "sending message body";
	case SMTP_STAGE_DOT:
		return "sending end of data -- message may be sent more than once";
	}
	return "talking";
}

static enum smtp_stage
expect_stage(enum smtp_expect e)
{
	switch (e) {
	case EXP_GREETING:
		return SMTP_STAGE_GREETING;
	case EXP_EHLO:
	case EXP_HELO:
		return SMTP_STAGE_EHLO;
	case EXP_STARTTLS:
		return SMTP_STAGE_STARTTLS;
	case EXP_AUTH:
		return SMTP_STAGE_AUTH;
	case EXP_MAIL:
	case EXP_XFORWARD:
		return SMTP_STAGE_MAIL;
	case EXP_RCPT:
		return SMTP_STAGE_RCPT;
	case EXP_DATA:
		return SMTP_STAGE_DATA;
	case EXP_DOT:
		return SMTP_STAGE_DOT;
	case EXP_QUIT:
	case EXP_RSET:
		return SMTP_STAGE_GREETING;	/* not classified: the outcome is known */
	}
	return SMTP_STAGE_GREETING;
}

static void
client_arm(struct smtp_client *c)
{
	evloop_timer_start(c->agent->loop, &c->timer, stage_timeout(c));
}

static void
client_watch(struct smtp_client *c)
{
	unsigned ev = EV_READ;

	if (c->connecting || buf_len(&c->out) > 0 || c->content_on || c->tls_want_write)
		ev |= EV_WRITE;
	if (c->io.active)
		(void)evloop_io_set(c->agent->loop, &c->io, ev);
}

/* ---- ending ---- */

static void
client_release(struct smtp_client *c)
{
	evloop_timer_stop(c->agent->loop, &c->timer);
	if (c->io.active)
		evloop_io_del(c->agent->loop, &c->io);
	smtp_tls_conn_free(c->tls);
	if (c->fd >= 0)
		close(c->fd);
	if (c->content_fd >= 0)
		close(c->content_fd);
	smtp_reply_parser_free(&c->rp);
	buf_free(&c->out);
	free(c->pend);
	free(c->accepted);
	free(c->over_limit);
	smtp_sasl_free(c->sasl);
	free(c);
}

/* The per-recipient arrays for a job of nrcpt recipients. The reply queue
 * holds a transaction's worth: MAIL, the RCPTs, DATA, the end of data
 * (and QUIT or RSET), with room for LMTP's one reply per recipient. */
static void
client_rcpt_arrays(struct smtp_client *c, size_t nrcpt)
{
	size_t n = nrcpt ? nrcpt : 1;

	free(c->pend);
	free(c->accepted);
	free(c->over_limit);
	c->pend_cap = 2 * n + 8;
	c->pend = calloc(c->pend_cap, sizeof(*c->pend));
	c->accepted = calloc(n, sizeof(*c->accepted));
	c->over_limit = calloc(n, sizeof(*c->over_limit));
	if (c->pend == NULL || c->accepted == NULL || c->over_limit == NULL)
		fatal("out of memory");
}

static void
closing_remove(struct smtp_client *c)
{
	if (!c->listed)
		return;
	for (struct smtp_client **p = &closing_list; *p != NULL; p = &(*p)->next_closing)
		if (*p == c) {
			*p = c->next_closing;
			break;
		}
	c->listed = false;
}

static void
client_reap(struct ev_timer *t)
{
	struct smtp_client *c = t->arg;

	closing_remove(c);
	client_release(c);
}

/* Close now, free from the loop: handlers up the stack may still look at
 * c (they check c->dead). */
static void
client_kill(struct smtp_client *c)
{
	if (c->dead)
		return;
	c->dead = true;
	c->job = NULL;
	c->content_on = false;
	closing_add(c);
	if (c->io.active)
		evloop_io_del(c->agent->loop, &c->io);
	smtp_tls_conn_free(c->tls);
	c->tls = NULL;
	c->tls_up = false;
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	evloop_timer_stop(c->agent->loop, &c->timer);
	evloop_timer_init(&c->timer, client_reap, c);
	evloop_timer_start(c->agent->loop, &c->timer, 0);
}

/* Delays of a result: in the queue before the agent, (none), connection
 * set-up, transmission (µs). */
static void
client_delays(const struct smtp_client *c, int64_t d[4])
{
	const struct smtp_job *job = c->job;
	int64_t now = agent_link_now_us();
	int64_t mail = c->t_mail_us ? c->t_mail_us : now;

	d[0] = job->received_us - job->j.arrival;
	d[1] = 0;
	d[2] = mail - job->received_us;
	d[3] = now - mail;
}

static void client_report(struct smtp_client *c, size_t k, enum agent_status status,
                          const char *err_class, int code, const char *enh, const char *text,
                          enum agent_relayed relayed);

/*
 * Tell the job how the session ended and detach: QUIT when the
 * connection can still take it, else close at once.
 */
static void
client_finish(struct smtp_client *c, bool host_failed, const struct agent_result *fail,
              bool conn_dead)
{
	struct smtp_job *job = c->job;

	if (job != NULL && !host_failed && c->nover_limit > 0) {
		/* Refused for the server's recipient limit and no transaction
		 * left to send them in: deferred with that refusal. */
		for (size_t k = 0; k < job->j.nrcpt; k++)
			if (c->over_limit[k] && !job->rcpts[k].done)
				client_report(c, k, c->over_limit_cr.status, c->over_limit_cr.err_class,
				              c->over_limit_code, c->over_limit_cr.enh,
				              c->over_limit_text, AGENT_FINAL);
		c->nover_limit = 0;
	}
	c->job = NULL;
	c->content_on = false;
	if (c->content_fd >= 0) {
		close(c->content_fd);
		c->content_fd = -1;
	}
	if (conn_dead || c->fd < 0 || c->connecting) {
		client_kill(c);
	} else if (!host_failed && job != NULL && c->pend_head == c->pend_n &&
	           c->agent->set.cache_ms > 0 && !c->agent->stopping) {
		/* Clean end, nothing owed: keep it for the next job there. */
		c->idle = true;
		c->tx_failed = true;
		snprintf(c->cache_key, sizeof(c->cache_key), "%s:%s", job->j.transport,
		         job->j.nexthop);
		evloop_timer_start(c->agent->loop, &c->timer, c->agent->set.cache_ms);
		closing_add(c);
		client_watch(c);
	} else {
		c->pend_head = c->pend_n = 0;
		c->tx_failed = true;
		if (buf_append_str(&c->out, "QUIT\r\n") != BUF_OK) {
			client_kill(c);
		} else {
			struct smtp_pending p = { EXP_QUIT, 0 };

			c->pend[0] = p;
			c->pend_n = 1;
			c->stage = SMTP_STAGE_GREETING;
			evloop_timer_start(c->agent->loop, &c->timer, c->agent->set.quit_ms);
			closing_add(c);
			client_watch(c);
		}
	}
	if (job != NULL)
		smtp_job_session_done(job, host_failed, fail);
}

/* A result for one recipient (k) of the job. */
static void
client_report(struct smtp_client *c, size_t k, enum agent_status status, const char *err_class,
              int code, const char *enh, const char *text, enum agent_relayed relayed)
{
	struct agent_result r;
	int64_t d[4];

	memset(&r, 0, sizeof(r));
	r.status = status;
	snprintf(r.err_class, sizeof(r.err_class), "%s", err_class != NULL ? err_class : "");
	r.smtp_code = code;
	snprintf(r.enh, sizeof(r.enh), "%s", enh);
	snprintf(r.text, sizeof(r.text), "%s", text);
	snprintf(r.relay, sizeof(r.relay), "%s", c->relay);
	r.relayed = relayed;
	client_delays(c, d);
	smtp_agent_result(c->job, k, &r, d);
}

/* Every recipient without a result (accepted_only: only those the server
 * accepted) gets the same failure. */
static void
client_report_rest(struct smtp_client *c, bool accepted_only, const struct smtp_class_result *cr,
                   int code, const char *text)
{
	for (size_t k = 0; k < c->job->j.nrcpt; k++)
		if (!c->job->rcpts[k].done && (!accepted_only || c->accepted[k]))
			client_report(c, k, cr->status, cr->err_class, code, cr->enh, text,
				              AGENT_FINAL);
}

/*
 * The end for the recipients still open, from a classified outcome:
 * TEMPFAIL of the host or the transaction -> the next address; PERMFAIL
 * -> bounced now (a host-scope PERMFAIL, a 5xx greeting, is a temporary
 * failure of this host while another may be tried: the job bounces it
 * only if no address is left).
 */
static void
client_fail(struct smtp_client *c, const struct smtp_class_result *cr, int code, const char *text)
{
	struct agent_result fail;

	if (cr->status == AGENT_PERMFAIL && cr->scope != SMTP_SCOPE_HOST) {
		client_report_rest(c, false, cr, code, text);
		client_finish(c, false, NULL, cr->conn_dead);
		return;
	}
	memset(&fail, 0, sizeof(fail));
	fail.status = cr->status == AGENT_DELIVERED ? AGENT_TEMPFAIL : cr->status;
	snprintf(fail.err_class, sizeof(fail.err_class), "%s", cr->err_class);
	fail.smtp_code = code;
	snprintf(fail.enh, sizeof(fail.enh), "%s", cr->enh);
	snprintf(fail.text, sizeof(fail.text), "%s", text);
	snprintf(fail.relay, sizeof(fail.relay), "%s", c->relay);
	/* Only host errors name the host: qmgr suspends the destination
	 * for those (agent_proto.h). */
	if (cr->scope == SMTP_SCOPE_HOST)
		snprintf(fail.host, sizeof(fail.host), "%s", c->t.host);
	client_finish(c, true, &fail, cr->conn_dead);
}

static void
classify(const struct smtp_client *c, enum smtp_stage stage, enum smtp_event ev, int code,
         const char *enh, int err, struct smtp_class_result *out)
{
	struct smtp_class_input in = {
		.stage = stage, .event = ev, .code = code, .enh = enh, .via_mx = c->t.via_mx, .err = err,
	};

	smtp_class_outcome(&in, out);
}

/*
 * May a failed opportunistic TLS attempt be retried in plain text now?
 * Postfix's PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE: level "may",
 * and the message waited minimal_backoff_time before this delivery (its
 * PREACTIVE_DELAY), which means it was deferred at least once.
 */
static bool
client_plain_fallback_ok(const struct smtp_client *c)
{
	const struct smtp_job *job = c->job;

	char user[SMTP_SASL_CRED_MAX + 1], password[SMTP_SASL_CRED_MAX + 1];

	/* Postfix keeps TLS for a server it has a password for: the
	 * fallback would put the password in plain text. */
	if (job == NULL || c->tls_level != SMTP_TLS_MAY || c->plain_retry ||
	    job->received_us - job->j.arrival < c->agent->set.min_backoff_us)
		return false;
	if (client_credentials(c, user, password) != 0) {
		explicit_bzero(password, sizeof(password));
		return false;
	}
	return true;
}

/*
 * Postfix's RETRY_AS_PLAINTEXT: drop this connection and everything it
 * learnt, and connect to the same address again with TLS off. The
 * recipients keep their state (those already reported stay reported).
 * why is logged as Postfix logs a host skipped: "QID: why".
 */
static void
client_retry_plain(struct smtp_client *c, const char *why)
{
	struct smtp_agent *a = c->agent;

	log_info("%s: %s", c->job->j.queue_id, why);
	evloop_timer_stop(a->loop, &c->timer);
	if (c->io.active)
		evloop_io_del(a->loop, &c->io);
	smtp_tls_conn_free(c->tls);
	c->tls = NULL;
	c->tls_up = c->tls_want_write = false;
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->content_fd >= 0) {
		close(c->content_fd);
		c->content_fd = -1;
	}
	c->content_on = false;
	smtp_reply_parser_free(&c->rp);
	smtp_reply_parser_init(&c->rp);
	buf_reset(&c->out);
	memset(&c->caps, 0, sizeof(c->caps));
	c->pipelining = false;
	c->pend_head = c->pend_n = 0;
	c->rcpt_next = 0;
	memset(c->accepted, 0, (c->job->j.nrcpt ? c->job->j.nrcpt : 1) * sizeof(*c->accepted));
	c->naccepted = 0;
	c->tx_failed = false;
	c->t_mail_us = 0;
	c->tls_level = SMTP_TLS_NONE;
	c->plain_retry = true;
	client_connect(c);
}

/* The connection failed (lost, timed out, garbled) at the current stage. */
static void
client_broken(struct smtp_client *c, enum smtp_event ev, int err, const char *detail)
{
	struct smtp_class_result cr;
	char text[600];

	if (c->job == NULL) {	/* saying QUIT, or idle: nothing more to learn */
		client_kill(c);
		return;
	}
	if (c->reusing) {
		/* The cached connection died meanwhile: the job starts afresh. */
		struct smtp_job *job = c->job;

		client_kill(c);
		smtp_job_reuse_failed(job);
		return;
	}
	if (c->stage == SMTP_STAGE_TLS) {
		/* Postfix's tls_client_start() words for a handshake cut short. */
		client_tls_failed(c, ev == SMTP_EVENT_TIMEOUT ? "Connection timed out"
		                     : err != 0 ? strerror(err) : "lost connection");
		return;
	}
	classify(c, c->stage, ev, 0, NULL, err, &cr);
	if (c->stage == SMTP_STAGE_CONNECT) {
		snprintf(text, sizeof(text), "connect to %s: %s", c->relay,
		         ev == SMTP_EVENT_TIMEOUT ? "Connection timed out" : strerror(err));
	} else if (ev == SMTP_EVENT_TIMEOUT) {
		snprintf(text, sizeof(text), "conversation with %s timed out while %s", c->peer,
		         stage_doing(c->stage));
	} else if (ev == SMTP_EVENT_PROTOCOL) {
		snprintf(text, sizeof(text), "host %s sent a malformed reply while %s: %s", c->peer,
		         stage_doing(c->stage), detail);
	} else {
		snprintf(text, sizeof(text), "lost connection with %s while %s", c->peer,
		         stage_doing(c->stage));
	}
	/* Postfix's smtp_stream_except(): an opportunistic TLS session that
	 * breaks or stalls may be retried in plain text (file comment). */
	if (c->tls_up && (ev == SMTP_EVENT_LOST || ev == SMTP_EVENT_TIMEOUT) && c->job->nleft > 0 &&
	    client_plain_fallback_ok(c)) {
		client_retry_plain(c, text);
		return;
	}
	cr.conn_dead = true;
	client_fail(c, &cr, 0, text);
}

/* ---- commands ---- */

static void
pend_push(struct smtp_client *c, enum smtp_expect what, size_t k)
{
	if (c->pend_n == c->pend_cap)
		panic("smtp_client: more replies expected than commands a session sends");
	c->pend[c->pend_n].what = what;
	c->pend[c->pend_n].k = k;
	c->pend_n++;
}

/* Queue one command line (CRLF added) and the reply it expects. */
static bool
client_cmd(struct smtp_client *c, enum smtp_expect what, size_t k, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static bool
client_cmd(struct smtp_client *c, enum smtp_expect what, size_t k, const char *fmt, ...)
{
	va_list ap;
	enum buf_result r;

	va_start(ap, fmt);
	r = buf_append_vprintf(&c->out, fmt, ap);
	va_end(ap);
	if (r != BUF_OK || buf_append_str(&c->out, "\r\n") != BUF_OK)
		return false;
	if (c->pend_head == c->pend_n)
		c->stage = expect_stage(what);
	pend_push(c, what, k);
	client_watch(c);
	return true;
}

/* RFC 3461 section 4: xtext, for ENVID and ORCPT. */
static void
xtext(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p >= '!' && *p <= '~' && *p != '+' && *p != '=')
			(void)buf_append_char(b, (char)*p);
		else
			(void)buf_append_printf(b, "+%02X", *p);
	}
}

static bool
client_mail(struct smtp_client *c)
{
	const struct agent_job *j = &c->job->j;
	struct buf line;
	bool ok;

	buf_init(&line, AGENT_ADDR_MAX * 4 + 256);
	(void)buf_append_printf(&line, "MAIL FROM:<%s>", j->sender);
	if (smtp_caps_has(&c->caps, SMTP_CAPS_SIZE))
		(void)buf_append_printf(&line, " SIZE=%llu", (unsigned long long)j->size);
	if (j->body == ENVELOPE_BODY_8BITMIME && smtp_caps_has(&c->caps, SMTP_CAPS_8BITMIME))
		(void)buf_append_str(&line, " BODY=8BITMIME");
	if (j->smtputf8)
		(void)buf_append_str(&line, " SMTPUTF8");
	if (smtp_caps_has(&c->caps, SMTP_CAPS_DSN)) {
		if (j->ret == ENVELOPE_RET_FULL)
			(void)buf_append_str(&line, " RET=FULL");
		else if (j->ret == ENVELOPE_RET_HDRS)
			(void)buf_append_str(&line, " RET=HDRS");
		if (j->envid != NULL) {
			(void)buf_append_str(&line, " ENVID=");
			xtext(&line, j->envid);
		}
	}
	c->t_mail_us = agent_link_now_us();
	ok = client_cmd(c, EXP_MAIL, 0, "%s", buf_cstr(&line));
	buf_free(&line);
	return ok;
}

static bool
client_rcpt(struct smtp_client *c, size_t k)
{
	const struct agent_job_rcpt *r = &c->job->j.rcpts[k];
	struct buf line;
	bool ok;

	buf_init(&line, AGENT_ADDR_MAX * 4 + 256);
	(void)buf_append_printf(&line, "RCPT TO:<%s>", r->addr);
	if (smtp_caps_has(&c->caps, SMTP_CAPS_DSN)) {
		static const struct { unsigned bit; const char *name; } words[] = {
			{ ENVELOPE_NOTIFY_SUCCESS, "SUCCESS" }, { ENVELOPE_NOTIFY_FAILURE, "FAILURE" },
			{ ENVELOPE_NOTIFY_DELAY, "DELAY" },
		};

		if (r->notify & ENVELOPE_NOTIFY_NEVER) {
			(void)buf_append_str(&line, " NOTIFY=NEVER");
		} else if (r->notify != 0) {
			const char *sep = " NOTIFY=";

			for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
				if (r->notify & words[i].bit) {
					(void)buf_append_printf(&line, "%s%s", sep, words[i].name);
					sep = ",";
				}
		}
		if (r->orcpt != NULL) {
			const char *semi = strchr(r->orcpt, ';');

			if (semi != NULL) {
				(void)buf_append_printf(&line, " ORCPT=%.*s;", (int)(semi - r->orcpt),
				                        r->orcpt);
				xtext(&line, semi + 1);
			}
		}
	}
	ok = client_cmd(c, EXP_RCPT, k, "%s", buf_cstr(&line));
	buf_free(&line);
	return ok;
}

/* Nothing to send: every recipient has its result. */
static void
client_quit_after(struct smtp_client *c)
{
	client_finish(c, false, NULL, false);
}

/* One "NAME=value" of XFORWARD, xtext-encoded; "[UNAVAILABLE]" for "". */
static void
xforward_attr(struct buf *line, const char *name, const char *value)
{
	(void)buf_append_printf(line, " %s=", name);
	xtext(line, value != NULL && value[0] != '\0' ? value : "[UNAVAILABLE]");
}

/*
 * XFORWARD (Postfix's XFORWARD_README): the message's origin, for a server
 * that offers it, when the job goes to the content filter (the hop the
 * command exists for, so no setting is needed) or when
 * smtp_send_xforward_command = yes. Two commands as Postfix sends them
 * (step 0: NAME ADDR PORT; step 1: PROTO HELO IDENT SOURCE), each well
 * within 512 octets (values are at most 255 characters, the envelope's
 * names far less in practice), with only the attributes the server named.
 * PORT is not kept in the envelope, so it goes as [UNAVAILABLE].
 * Builds step's line into line; false when the server named none of its
 * attributes.
 */
static bool
xforward_line(const struct smtp_client *c, unsigned step, struct buf *line)
{
	const struct agent_job *j = &c->job->j;
	unsigned x = c->caps.xforward;

	buf_reset(line);
	if (step == 0 && (x & (SMTP_XFORWARD_NAME | SMTP_XFORWARD_ADDR | SMTP_XFORWARD_PORT))) {
		(void)buf_append_str(line, "XFORWARD");
		if (x & SMTP_XFORWARD_NAME)
			xforward_attr(line, "NAME", j->client_name);
		if (x & SMTP_XFORWARD_ADDR)
			xforward_attr(line, "ADDR", j->client_addr);
		if (x & SMTP_XFORWARD_PORT)
			xforward_attr(line, "PORT", NULL);
		return true;
	}
	if (step == 1 && (x & (SMTP_XFORWARD_PROTO | SMTP_XFORWARD_HELO | SMTP_XFORWARD_IDENT |
	                       SMTP_XFORWARD_SOURCE))) {
		(void)buf_append_str(line, "XFORWARD");
		if (x & SMTP_XFORWARD_PROTO)
			xforward_attr(line, "PROTO", j->client_proto);
		if (x & SMTP_XFORWARD_HELO)
			xforward_attr(line, "HELO", j->client_helo);
		if (x & SMTP_XFORWARD_IDENT)
			xforward_attr(line, "IDENT", j->queue_id);
		if (x & SMTP_XFORWARD_SOURCE)
			xforward_attr(line, "SOURCE", j->local_source ? "LOCAL" : "REMOTE");
		return true;
	}
	return false;
}

/*
 * Queue the XFORWARD commands still to send, from c->xforward_step on:
 * all of them under PIPELINING (in MAIL's group), otherwise one, whose
 * reply sends the next (or MAIL). False only when the output buffer is
 * full.
 */
static bool
client_xforward_next(struct smtp_client *c)
{
	struct buf line;
	bool ok = true;

	buf_init(&line, 4096);
	while (ok && c->xforward_step < 2) {
		if (!xforward_line(c, c->xforward_step++, &line))
			continue;
		ok = client_cmd(c, EXP_XFORWARD, 0, "%s", buf_cstr(&line));
		c->xforward_owed += ok;
		if (!c->pipelining)
			break;
	}
	buf_free(&line);
	return ok;
}

/* Start the XFORWARD commands of a transaction, when they are due. */
static bool
client_xforward(struct smtp_client *c)
{
	const struct agent_job *j = &c->job->j;

	c->xforward_owed = 0;
	c->xforward_step = 2;	/* nothing to send */
	if (!smtp_caps_has(&c->caps, SMTP_CAPS_XFORWARD) || c->agent->set.lmtp ||
	    !(j->to_filter || c->agent->set.send_xforward))
		return true;
	c->xforward_step = 0;
	return client_xforward_next(c);
}

/* After EHLO/HELO: checks, then MAIL (and RCPTs and DATA under PIPELINING). */
static void
client_transaction(struct smtp_client *c)
{
	const struct agent_job *j = &c->job->j;
	struct smtp_class_result cr;
	char text[600];

	if (j->smtputf8 && !smtp_caps_has(&c->caps, SMTP_CAPS_SMTPUTF8)) {
		classify(c, SMTP_STAGE_MAIL, SMTP_EVENT_SMTPUTF8_UNAVAILABLE, 0, NULL, 0, &cr);
		snprintf(text, sizeof(text), "SMTPUTF8 is required, but was not offered by host %s",
		         c->peer);
		client_report_rest(c, false, &cr, 0, text);
		client_finish(c, false, NULL, false);
		return;
	}
	if (smtp_caps_has(&c->caps, SMTP_CAPS_SIZE) && c->caps.size_max > 0 &&
	    j->size > c->caps.size_max) {
		classify(c, SMTP_STAGE_MAIL, SMTP_EVENT_TOO_BIG, 0, NULL, 0, &cr);
		snprintf(text, sizeof(text), "message size %llu exceeds size limit %llu of server %s",
		         (unsigned long long)j->size, (unsigned long long)c->caps.size_max, c->peer);
		client_report_rest(c, false, &cr, 0, text);
		client_finish(c, false, NULL, false);
		return;
	}
	c->pipelining = smtp_caps_has(&c->caps, SMTP_CAPS_PIPELINING);
	if (!client_xforward(c))
		goto too_big;
	/* Without PIPELINING, MAIL waits for the XFORWARD replies. */
	if (c->xforward_owed == 0 || c->pipelining)
		client_mail_group(c);
	return;
too_big:
	client_output_full(c);
}

/* MAIL, and under PIPELINING the RCPTs and DATA with it. */
static void
client_mail_group(struct smtp_client *c)
{
	const struct agent_job *j = &c->job->j;

	if (!client_mail(c))
		goto too_big;
	if (c->pipelining) {
		for (size_t k = 0; k < j->nrcpt; k++)
			if (!c->job->rcpts[k].done && !client_rcpt(c, k))
				goto too_big;
		if (!client_cmd(c, EXP_DATA, 0, "DATA"))
			goto too_big;
	}
	return;
too_big:
	client_output_full(c);
}

static void
client_output_full(struct smtp_client *c)
{
	struct smtp_class_result cr;

	/* Cannot happen within SMTP_CLIENT_OUT_MAX (1000 recipients of at
	 * most ~1.5 KB each); if it does, defer rather than send half. */
	classify(c, SMTP_STAGE_MAIL, SMTP_EVENT_LOST, 0, NULL, 0, &cr);
	cr.conn_dead = true;
	client_fail(c, &cr, 0, "internal error: commands too long for the output buffer");
}

/* ---- AUTH (RFC 4954; smtp_sasl.h) ---- */

/* Passwords do not stay in freed memory. */
static void
buf_wipe(struct buf *b)
{
	if (buf_len(b) > 0)
		explicit_bzero(buf_data_mut(b), buf_len(b));
}

/*
 * The credentials for this server: smtp_sasl_password_maps looked up by
 * the host's name, then by the next hop as the job gives it. 1 found, 0
 * none (or AUTH off), -1 the maps cannot be read.
 */
static int
client_credentials(const struct smtp_client *c, char *user, char *password)
{
	struct smtp_agent *a = c->agent;
	const char *keys[2] = { c->t.host, c->job->j.nexthop };
	struct buf value;
	char err[600];
	int found = 0;

	if (!a->set.sasl_enable || a->sasl_maps == NULL)
		return 0;
	buf_init(&value, MAP_VALUE_MAX + 1);
	for (size_t i = 0; i < 2 && found == 0; i++) {
		switch (map_list_lookup(a->sasl_maps, keys[i], &value, err, sizeof(err))) {
		case MAP_FOUND:
			if (smtp_sasl_split_credentials(buf_cstr(&value), user, password) < 0) {
				log_warning("smtp_sasl_password_maps: %s: value is not "
				            "\"username:password\"", keys[i]);
				found = -1;
			} else {
				found = 1;
			}
			break;
		case MAP_NOTFOUND:
			break;
		case MAP_ERROR:
			log_warning("smtp_sasl_password_maps: %s", err);
			found = -1;
			break;
		}
	}
	buf_wipe(&value);
	buf_free(&value);
	return found;
}

/* AUTH cannot be done: this host failed (Postfix's smtp_sasl_authenticate
 * with smtp_sasl_auth_soft_bounce = yes: deferred, the next host tried). */
static void
client_auth_failed(struct smtp_client *c, int code, const char *enh, const char *text)
{
	struct smtp_class_result cr;

	smtp_sasl_free(c->sasl);
	c->sasl = NULL;
	classify(c, SMTP_STAGE_AUTH, SMTP_EVENT_AUTH_FAILED, code, enh, 0, &cr);
	cr.conn_dead = code == 421;
	client_fail(c, &cr, code, text);
}

/* After EHLO (and TLS): AUTH when the server offers it and we have a
 * password for it, then the transaction. */
static void
client_begin(struct smtp_client *c)
{
	char user[SMTP_SASL_CRED_MAX + 1], password[SMTP_SASL_CRED_MAX + 1];
	char mechs[SMTP_CAPS_AUTH_MECHS_MAX * SMTP_CAPS_AUTH_MECH_SIZE + 1] = "";
	char err[600], text[AGENT_TEXT_MAX];
	const struct smtp_settings *set = &c->agent->set;
	const char *mech = NULL;
	struct buf line;
	int found;

	if (c->authed || !set->sasl_enable || !smtp_caps_has(&c->caps, SMTP_CAPS_AUTH)) {
		client_transaction(c);
		return;
	}
	found = client_credentials(c, user, password);
	if (found == 0) {
		client_transaction(c);
		return;
	}
	if (found < 0) {
		client_auth_failed(c, 0, "4.3.0", "SASL authentication failed; "
		                   "cannot look up the password (smtp_sasl_password_maps)");
		return;
	}
	for (size_t i = 0; i < c->caps.nauth; i++) {
		bool allowed = set->sasl_mech_filter[0] == '\0';

		for (const char *f = set->sasl_mech_filter; !allowed && *f != '\0';) {
			size_t n = strcspn(f, " ");

			allowed = n == strlen(c->caps.auth[i]) && strncasecmp(f, c->caps.auth[i], n) == 0;
			f += n + (f[n] == ' ');
		}
		if (allowed) {
			strcat(mechs, mechs[0] ? " " : "");
			strcat(mechs, c->caps.auth[i]);
		}
	}
	buf_init(&line, 64 * 1024);
	if (smtp_sasl_start(c->t.host, user, password, mechs,
	                    c->tls_up ? set->sasl_tls_flags : set->sasl_flags, &c->sasl, &line,
	                    &mech, err, sizeof(err)) < 0) {
		explicit_bzero(password, sizeof(password));
		buf_free(&line);
		snprintf(text, sizeof(text),
		         "SASL authentication failed; cannot authenticate to server %s: %s", c->peer,
		         err);
		client_auth_failed(c, 0, "4.7.0", text);
		return;
	}
	explicit_bzero(password, sizeof(password));
	log_debug("%s: authenticating to %s as %s with %s", c->job->j.queue_id, c->peer, user, mech);
	if (!client_cmd(c, EXP_AUTH, 0, "%s", buf_cstr(&line)))
		client_auth_failed(c, 0, "4.7.0", "SASL authentication failed; AUTH command too long");
	buf_wipe(&line);
	buf_free(&line);
}

/* The server's answer to AUTH or to one of our responses. */
static void
client_auth_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	char err[600], text[AGENT_TEXT_MAX];

	if (r->code == 334 && c->sasl != NULL && r->nlines == 1) {
		size_t len;
		const char *chal = smtp_reply_line(r, 0, &len);
		char *z = strndup(chal, len);
		struct buf line;
		int rc;

		if (z == NULL)
			fatal("out of memory");
		buf_init(&line, 64 * 1024);
		rc = smtp_sasl_step(c->sasl, z, &line, err, sizeof(err));
		free(z);
		if (rc < 0) {
			buf_free(&line);
			/* RFC 4954 section 4: "*" cancels the exchange. */
			(void)buf_append_str(&c->out, "*\r\n");
			snprintf(text, sizeof(text),
			         "SASL authentication failed; cannot authenticate to server %s: %s",
			         c->peer, err);
			client_auth_failed(c, 0, "4.7.0", text);
			return;
		}
		(void)client_cmd(c, EXP_AUTH, 0, "%s", buf_cstr(&line));
		buf_wipe(&line);
		buf_free(&line);
		return;
	}
	if (r->code >= 200 && r->code < 300) {
		smtp_sasl_free(c->sasl);
		c->sasl = NULL;
		c->authed = true;
		client_transaction(c);
		return;
	}
	snprintf(text, sizeof(text), "SASL authentication failed; server %s said: %s", c->peer,
	         smtp_reply_text(r));
	client_auth_failed(c, r->code, r->enh, text);
}

/* Non-pipelined: the next RCPT, or DATA, or the end. */
static void
client_next_rcpt(struct smtp_client *c)
{
	const struct agent_job *j = &c->job->j;

	while (c->rcpt_next < j->nrcpt && c->job->rcpts[c->rcpt_next].done)
		c->rcpt_next++;
	if (c->nover_limit > 0) {
		/* The server's limit is reached: the rest wait for the next
		 * transaction rather than collect the same refusal. */
		for (; c->rcpt_next < j->nrcpt; c->rcpt_next++)
			if (!c->job->rcpts[c->rcpt_next].done && !c->over_limit[c->rcpt_next]) {
				c->over_limit[c->rcpt_next] = true;
				c->nover_limit++;
			}
	}
	if (c->rcpt_next < j->nrcpt) {
		(void)client_rcpt(c, c->rcpt_next++);
		return;
	}
	if (c->naccepted > 0)
		(void)client_cmd(c, EXP_DATA, 0, "DATA");
	else
		client_quit_after(c);
}

/* ---- content ---- */

static void
client_content_start(struct smtp_client *c)
{
	char path[1200];
	struct smtp_class_result cr;

	snprintf(path, sizeof(path), "%s/msg/%s", c->agent->spool_dir, c->job->j.queue_id);
	c->content_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->content_fd < 0) {
		char text[1400];

		/* Local trouble, not the host's: defer, no host named. */
		log_error("%s: cannot open %s: %s", c->job->j.queue_id, path, strerror(errno));
		snprintf(text, sizeof(text), "cannot read the queue file: %s", strerror(errno));
		memset(&cr, 0, sizeof(cr));
		cr.status = AGENT_TEMPFAIL;
		cr.scope = SMTP_SCOPE_MESSAGE;
		snprintf(cr.enh, sizeof(cr.enh), "4.3.0");
		client_report_rest(c, false, &cr, 0, text);
		client_finish(c, false, NULL, true);
		return;
	}
	smtp_dot_init(&c->dot);
	c->content_on = true;
	c->stage = SMTP_STAGE_CONTENT;
	client_arm(c);
	client_watch(c);
}

/* Top up the output with content; at the end, the final dot. */
static void
client_content_fill(struct smtp_client *c)
{
	char chunk[SMTP_CLIENT_READ_CHUNK];

	while (c->content_on && buf_len(&c->out) < SMTP_CLIENT_CONTENT_LOW) {
		ssize_t n = read(c->content_fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			struct smtp_class_result cr;

			log_error("%s: reading the queue file: %s", c->job->j.queue_id, strerror(errno));
			memset(&cr, 0, sizeof(cr));
			cr.status = AGENT_TEMPFAIL;
			cr.scope = SMTP_SCOPE_MESSAGE;
			snprintf(cr.enh, sizeof(cr.enh), "4.3.0");
			client_report_rest(c, false, &cr, 0, "cannot read the queue file");
			client_finish(c, false, NULL, true);	/* never a half message */
			return;
		}
		if (n == 0) {
			if (smtp_dot_finish(&c->dot, &c->out) != BUF_OK)
				return;	/* no room yet */
			c->content_on = false;
			close(c->content_fd);
			c->content_fd = -1;
			c->stage = SMTP_STAGE_DOT;
			if (c->agent->set.lmtp) {
				/* RFC 2033 section 4.2: one reply per recipient
				 * the server took, in RCPT order. */
				for (size_t k = 0; k < c->job->j.nrcpt; k++)
					if (c->accepted[k] && !c->job->rcpts[k].done)
						pend_push(c, EXP_DOT, k);
			} else {
				pend_push(c, EXP_DOT, 0);
			}
			client_arm(c);
			return;
		}
		for (size_t off = 0; off < (size_t)n;) {
			size_t took = smtp_dot_feed(&c->dot, chunk + off, (size_t)n - off, &c->out);

			off += took;
			if (off < (size_t)n && took == 0) {
				/* Output full: give back what is not taken. */
				(void)lseek(c->content_fd, (off_t)off - n, SEEK_CUR);
				return;
			}
		}
	}
}

/* ---- replies ---- */

static void
reply_text(const struct smtp_client *c, const struct smtp_reply *r, const char *cmd, char *dst,
           size_t dstsz)
{
	snprintf(dst, dstsz, "host %s said: %s (in reply to %s command)", c->peer, smtp_reply_text(r),
	         cmd);
}

/* ---- TLS (the file comment says what each level does) ---- */

/*
 * The handshake failed (an error, the server closing or stalling), or
 * could not start. Postfix's smtp_start_tls() when tls_client_start()
 * returns nothing: retry in plain text when allowed, else this host failed.
 */
static void
client_tls_failed(struct smtp_client *c, const char *detail)
{
	struct smtp_class_result cr;

	log_info("SSL_connect error to %s: %s", c->relay, detail);
	if (c->job == NULL) {
		client_kill(c);
		return;
	}
	if (client_plain_fallback_ok(c)) {
		client_retry_plain(c, "Cannot start TLS: handshake failure");
		return;
	}
	classify(c, SMTP_STAGE_TLS, SMTP_EVENT_TLS_FAILED, 0, NULL, 0, &cr);
	/* Not a host error under "may": the destination is not suspended
	 * (SMTP_MISC_FAIL_NONE in Postfix); the next address is still tried. */
	if (c->tls_level == SMTP_TLS_MAY)
		cr.scope = SMTP_SCOPE_MESSAGE;
	client_fail(c, &cr, 0, "Cannot start TLS: handshake failure");
}

/* The handshake is complete: log it, check the peer, EHLO again. */
static void
client_tls_up(struct smtp_client *c)
{
	struct smtp_tls_peer p;
	struct smtp_class_result cr;
	bool verify = c->tls_level == SMTP_TLS_VERIFY || c->tls_level == SMTP_TLS_DANE;

	c->tls_up = true;
	c->tls_want_write = false;
	smtp_tls_conn_peer(c->tls, c->tls_level == SMTP_TLS_VERIFY, &p);
	if (verify && !p.matched)
		log_info("server certificate verification failed for %s: %s", c->relay, p.why);
	log_info("%s TLS connection established to %s: %s with cipher %s (%d/%d bits)",
	         smtp_tls_peer_trust(&p), c->relay, p.protocol, p.cipher, p.bits, p.alg_bits);
	if (verify && !p.matched) {
		classify(c, SMTP_STAGE_TLS, SMTP_EVENT_TLS_FAILED, 0, NULL, 0, &cr);
		cr.conn_dead = false;	/* the session works: QUIT through it */
		client_fail(c, &cr, 0, "Server certificate not verified");
		return;
	}
	/* RFC 3207 section 4.2: forget what the server said in plain text. */
	memset(&c->caps, 0, sizeof(c->caps));
	(void)client_cmd(c, EXP_EHLO, 0, "EHLO %s", c->agent->set.helo_name);
	client_arm(c);
}

/* One step of the handshake, on any event of the socket. */
static void
client_tls_step(struct smtp_client *c)
{
	char err[300];

	switch (smtp_tls_conn_handshake(c->tls, err, sizeof(err))) {
	case SMTP_TLS_IO_OK:
		client_tls_up(c);
		return;
	case SMTP_TLS_IO_WANT_READ:
		c->tls_want_write = false;
		client_watch(c);
		return;
	case SMTP_TLS_IO_WANT_WRITE:
		c->tls_want_write = true;
		client_watch(c);
		return;
	case SMTP_TLS_IO_CLOSED:
	case SMTP_TLS_IO_ERROR:
		client_tls_failed(c, err);
		return;
	}
}

/* The destination's policy for this connection: protocols, ciphers,
 * reference names, DANE. */
static int
client_tls_apply(struct smtp_client *c, char *err, size_t errsz)
{
	const struct smtp_settings *set = &c->agent->set;
	const struct smtp_job *job = c->job;
	const struct smtp_host_tls *ht;
	const char *names[SMTP_TLS_MATCH_MAX];
	struct smtp_tls_conn_opts o;
	struct smtp_tls_protocols pr;

	if (job == NULL)
		return 0;
	ht = &job->host_tls;
	memset(&o, 0, sizeof(o));
	pr = job->tls.have_protocols ? job->tls.protocols
	     : c->tls_level == SMTP_TLS_MAY ? set->tls_protocols : set->tls_mandatory_protocols;
	o.min_version = pr.min;
	o.max_version = pr.max;
	o.high_ciphers = job->tls.grade == SMTP_TLS_GRADE_HIGH;
	for (size_t i = 0; i < ht->n_names; i++)
		names[i] = ht->names[i];
	o.names = names;
	o.n_names = ht->n_names;
	if (c->tls_level == SMTP_TLS_DANE) {
		o.dane_base = ht->dane_base;
		o.dane = &ht->dane;
	}
	return smtp_tls_conn_apply(c->tls, &o, err, errsz);
}

/* 2xx to STARTTLS: start the handshake on the same socket. */
static void
client_tls_start(struct smtp_client *c)
{
	struct smtp_tls_ctx *ctx = c->agent->tls_ctx;
	char err[300];

	/* RFC 3207 section 6: what the server sent after its 220 came
	 * before the handshake; the caller drops the rest of its input, and
	 * the reply parser forgets any part of a line. */
	smtp_reply_parser_free(&c->rp);
	smtp_reply_parser_init(&c->rp);
	c->stage = SMTP_STAGE_TLS;
	client_arm(c);
	if (ctx == NULL)	/* a reload turned TLS off meanwhile */
		snprintf(err, sizeof(err), "TLS engine unavailable");
	else
		c->tls = smtp_tls_conn_new(ctx, c->fd, c->t.host, err, sizeof(err));
	if (c->tls != NULL && client_tls_apply(c, err, sizeof(err)) < 0) {
		smtp_tls_conn_free(c->tls);
		c->tls = NULL;
	}
	if (c->tls == NULL) {
		client_tls_failed(c, err);
		return;
	}
	client_tls_step(c);
}

/* STARTTLS refused. Postfix: under a level that requires TLS, this host
 * failed; else go on in plain text with the first EHLO's extensions. */
static void
client_starttls_refused(struct smtp_client *c, const struct smtp_reply *r)
{
	struct smtp_class_result cr;
	char text[AGENT_TEXT_MAX];

	if (smtp_tls_level_required(c->tls_level)) {
		classify(c, SMTP_STAGE_STARTTLS, SMTP_EVENT_TLS_UNAVAILABLE, r->code, r->enh, 0, &cr);
		cr.conn_dead = r->code == 421;
		snprintf(text, sizeof(text), "TLS is required, but host %s refused to start TLS: %s",
		         c->peer, smtp_reply_text(r));
		client_fail(c, &cr, r->code, text);
		return;
	}
	if (r->code == 421) {
		/* RFC 5321 3.8: the server is closing the channel; there is
		 * no plain text to go on in. */
		classify(c, SMTP_STAGE_STARTTLS, SMTP_EVENT_REPLY, r->code, r->enh, 0, &cr);
		reply_text(c, r, "STARTTLS", text, sizeof(text));
		client_fail(c, &cr, r->code, text);
		return;
	}
	c->caps.flags &= ~SMTP_CAPS_STARTTLS;
	client_begin(c);
}

/* After EHLO or HELO: STARTTLS when the level and the server say so, else
 * the transaction, or the end when TLS is required but cannot be had. */
static void
client_after_hello(struct smtp_client *c)
{
	struct smtp_class_result cr;
	char text[600];
	bool offered = smtp_caps_has(&c->caps, SMTP_CAPS_STARTTLS);

	if (c->tls_up || c->tls_level == SMTP_TLS_NONE) {
		client_begin(c);
		return;
	}
	if (offered && c->agent->tls_ctx != NULL) {
		/* RFC 2920 section 3.1: the last command of its group. */
		(void)client_cmd(c, EXP_STARTTLS, 0, "STARTTLS");
		return;
	}
	if (!smtp_tls_level_required(c->tls_level)) {
		client_begin(c);
		return;
	}
	if (!offered) {
		classify(c, SMTP_STAGE_STARTTLS, SMTP_EVENT_TLS_UNAVAILABLE, 0, NULL, 0, &cr);
		snprintf(text, sizeof(text), "TLS is required, but was not offered by host %s",
		         c->peer);
	} else {
		classify(c, SMTP_STAGE_STARTTLS, SMTP_EVENT_TLS_UNAVAILABLE, 0, "4.7.5", 0, &cr);
		snprintf(text, sizeof(text), "TLS is required, but our TLS engine is unavailable");
	}
	client_fail(c, &cr, 0, text);
}

/*
 * A refusal for the server's recipient limit: 452 (RFC 5321 section
 * 4.5.3.1.10), which says 4.5.3 when it says anything (452 4.2.2 is a full
 * mailbox), or the older 552 5.5.3. Only after the transaction took a
 * recipient: then a next transaction makes progress.
 */
static bool
over_recipient_limit(const struct smtp_reply *r)
{
	if (r->code == 452)
		return r->enh[0] == '\0' || strcmp(r->enh, "4.5.3") == 0;
	return r->code == 552 && strcmp(r->enh, "5.5.3") == 0;
}

/* The transaction is over and recipients refused for the server's limit
 * remain: a new transaction on the same connection (RFC 5321 section
 * 4.5.3.1.10: "the client SHOULD send the remaining recipients in a
 * separate transaction"). Each transaction delivers at least one, so this
 * ends. */
static void
client_next_transaction(struct smtp_client *c)
{
	size_t n = c->job->j.nrcpt;

	log_debug("%s: %zu recipients over the recipient limit of %s: next transaction",
	          c->job->j.queue_id, c->nover_limit, c->peer);
	memset(c->accepted, 0, n * sizeof(*c->accepted));
	memset(c->over_limit, 0, n * sizeof(*c->over_limit));
	c->naccepted = 0;
	c->nover_limit = 0;
	c->rcpt_next = 0;
	c->pend_head = c->pend_n = 0;
	client_transaction(c);
}

/* ---- LMTP (RFC 2033) ---- */

/* An LMTP server's "over quota" (452 4.2.2, Dovecot's words) is the retry
 * class "quota" (Exim's name for a full mailbox), wherever it comes. */
static void
lmtp_quota(const struct smtp_client *c, const struct smtp_reply *r, struct smtp_class_result *cr)
{
	if (c->agent->set.lmtp && r->code / 100 == 4 && strcmp(r->enh, "4.2.2") == 0)
		snprintf(cr->err_class, sizeof(cr->err_class), "quota");
}

/* One recipient's reply after the final dot. */
static void
client_lmtp_dot(struct smtp_client *c, size_t k, const struct smtp_reply *r)
{
	struct smtp_class_result cr;
	char text[AGENT_TEXT_MAX];

	if (r->code >= 200 && r->code < 300) {
		/* Delivered into the mailbox: our "delivered" notice (RFC 3461
		 * section 6) if one was asked for. */
		client_report(c, k, AGENT_DELIVERED, "", r->code, r->enh[0] ? r->enh : "2.0.0",
		              smtp_reply_text(r), AGENT_FINAL);
	} else {
		classify(c, SMTP_STAGE_DOT, SMTP_EVENT_REPLY, r->code, r->enh, 0, &cr);
		reply_text(c, r, "end of DATA", text, sizeof(text));
		if (r->code == 421 || cr.conn_dead) {
			/* Closing: the recipients without a reply are not
			 * known to be delivered (RFC 2033 section 4.2). */
			client_fail(c, &cr, r->code, text);
			return;
		}
		lmtp_quota(c, r, &cr);
		client_report(c, k, cr.status, cr.err_class, r->code, cr.enh, text, AGENT_FINAL);
	}
	if (c->pend_head < c->pend_n)
		return;
	if (c->nover_limit > 0) {
		client_next_transaction(c);
		return;
	}
	client_finish(c, false, NULL, false);
}

static void
on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	struct smtp_pending p;
	struct smtp_class_result cr;
	char text[AGENT_TEXT_MAX];
	bool ok = r->code >= 200 && r->code < 300;

	if (c->pend_head == c->pend_n) {
		/* A reply nobody asked for: out of step. */
		client_broken(c, SMTP_EVENT_PROTOCOL, 0, "unexpected reply");
		return;
	}
	p = c->pend[c->pend_head++];
	if (c->pend_head < c->pend_n)
		c->stage = expect_stage(c->pend[c->pend_head].what);
	client_arm(c);

	if (p.what == EXP_QUIT) {
		if (c->tls_up)
			smtp_tls_conn_close_notify(c->tls);
		client_kill(c);
		return;
	}
	if (p.what == EXP_RSET) {
		c->reusing = false;
		if (!ok) {
			struct smtp_job *job = c->job;

			client_kill(c);
			smtp_job_reuse_failed(job);
			return;
		}
		client_transaction(c);
		return;
	}
	if (c->tx_failed) {
		/* The outcome is known; a 354 owed to a pipelined DATA whose
		 * recipients all failed gets an empty message's end (LMTP: no
		 * telling how many replies that "." would get: close). */
		if (p.what == EXP_DATA && r->code == 354 && c->agent->set.lmtp) {
			client_finish(c, false, NULL, true);
			return;
		}
		if (p.what == EXP_DATA && r->code == 354) {
			(void)buf_append_str(&c->out, ".\r\n");
			pend_push(c, EXP_DOT, 0);
			client_watch(c);
		}
		if (c->pend_head == c->pend_n)
			client_finish(c, false, NULL, false);
		return;
	}

	switch (p.what) {
	case EXP_GREETING:
		if (!ok) {
			classify(c, SMTP_STAGE_GREETING, SMTP_EVENT_REPLY, r->code, r->enh, 0, &cr);
			snprintf(text, sizeof(text), "host %s refused to talk to me: %s", c->peer,
			         smtp_reply_text(r));
			client_fail(c, &cr, r->code, text);
			return;
		}
		if (!c->plain_retry)	/* the same session, tried again */
			c->job->sessions++;
		(void)client_cmd(c, EXP_EHLO, 0, "%s %s", c->agent->set.lmtp ? "LHLO" : "EHLO",
		                 c->agent->set.helo_name);
		return;
	case EXP_EHLO:
		if (ok) {
			smtp_caps_parse(r, &c->caps);
			client_after_hello(c);
			return;
		}
		if (r->code != 421 && !c->agent->set.lmtp) {	/* LMTP has no HELO */
			(void)client_cmd(c, EXP_HELO, 0, "HELO %s", c->agent->set.helo_name);
			return;
		}
		/* fall through: 421 ends the session */
		/* FALLTHROUGH */
	case EXP_HELO:
		if (ok) {
			memset(&c->caps, 0, sizeof(c->caps));
			client_after_hello(c);
			return;
		}
		classify(c, SMTP_STAGE_EHLO, SMTP_EVENT_REPLY, r->code, r->enh, 0, &cr);
		reply_text(c, r, p.what == EXP_HELO ? "HELO" : c->agent->set.lmtp ? "LHLO" : "EHLO",
		           text, sizeof(text));
		client_fail(c, &cr, r->code, text);
		return;
	case EXP_STARTTLS:
		if (!ok) {
			client_starttls_refused(c, r);
			return;
		}
		if (buf_len(&c->out) > 0) {
			/* The answer came before the command went out. */
			client_broken(c, SMTP_EVENT_PROTOCOL, 0, "reply to STARTTLS before it was sent");
			return;
		}
		client_tls_start(c);
		return;
	case EXP_AUTH:
		client_auth_reply(c, r);
		return;
	case EXP_XFORWARD:
		/* Postfix only warns: the origin is for the logs, the
		 * message goes on without it. A 421 still ends the session. */
		if (!ok) {
			reply_text(c, r, "XFORWARD", text, sizeof(text));
			log_warning("%s: %s", c->job->j.queue_id, text);
			if (r->code == 421) {
				classify(c, SMTP_STAGE_MAIL, SMTP_EVENT_REPLY, r->code, r->enh, 0, &cr);
				client_fail(c, &cr, r->code, text);
				return;
			}
		}
		if (c->xforward_owed > 0)
			c->xforward_owed--;
		if (c->pipelining || c->xforward_owed > 0)
			return;
		/* One at a time without PIPELINING: the next, or MAIL. */
		if (c->xforward_step < 2) {
			if (!client_xforward_next(c)) {
				client_output_full(c);
				return;
			}
			if (c->xforward_owed > 0)
				return;
		}
		client_mail_group(c);
		return;
	case EXP_MAIL:
		if (ok) {
			if (!c->pipelining)
				client_next_rcpt(c);
			return;
		}
		classify(c, SMTP_STAGE_MAIL, SMTP_EVENT_REPLY, r->code, r->enh, 0, &cr);
		reply_text(c, r, "MAIL FROM", text, sizeof(text));
		if (cr.conn_dead) {
			client_fail(c, &cr, r->code, text);
			return;
		}
		/* The outcome is the MAIL reply's; replies still owed to
		 * a pipelined group are read past after QUIT. */
		client_fail(c, &cr, r->code, text);
		return;
	case EXP_RCPT:
		if (ok) {
			c->accepted[p.k] = true;
			c->naccepted++;
		} else {
			classify(c, SMTP_STAGE_RCPT, SMTP_EVENT_REPLY, r->code, r->enh, 0, &cr);
			reply_text(c, r, "RCPT TO", text, sizeof(text));
			if (cr.scope == SMTP_SCOPE_HOST || cr.conn_dead) {
				client_fail(c, &cr, r->code, text);
				return;
			}
			if (c->naccepted > 0 && over_recipient_limit(r)) {
				/* The rest go in the next transaction. */
				if (c->nover_limit++ == 0) {
					c->over_limit_cr = cr;
					c->over_limit_code = r->code;
					snprintf(c->over_limit_text, sizeof(c->over_limit_text), "%s",
					         text);
				}
				c->over_limit[p.k] = true;
			} else {
				lmtp_quota(c, r, &cr);
				client_report(c, p.k, cr.status, cr.err_class, r->code, cr.enh, text,
				              AGENT_FINAL);
			}
		}
		if (!c->pipelining)
			client_next_rcpt(c);
		return;
	case EXP_DATA:
		if (c->naccepted == 0) {
			/* Every recipient failed: the server refuses DATA (RFC
			 * 2920 section 3.1), or wrongly says 354. */
			if (r->code == 354 && c->agent->set.lmtp) {
				client_finish(c, false, NULL, true);
				return;
			}
			if (r->code == 354) {
				(void)buf_append_str(&c->out, ".\r\n");
				pend_push(c, EXP_DOT, 0);
				c->tx_failed = true;
				client_watch(c);
				return;
			}
			client_quit_after(c);
			return;
		}
		if (r->code == 354) {
			client_content_start(c);
			return;
		}
		classify(c, SMTP_STAGE_DATA, SMTP_EVENT_REPLY, r->code, r->enh, 0, &cr);
		reply_text(c, r, "DATA", text, sizeof(text));
		if (cr.status == AGENT_PERMFAIL && cr.scope != SMTP_SCOPE_HOST) {
			client_report_rest(c, true, &cr, r->code, text);
			client_finish(c, false, NULL, cr.conn_dead);
			return;
		}
		client_fail(c, &cr, r->code, text);
		return;
	case EXP_DOT:
		if (c->agent->set.lmtp) {
			client_lmtp_dot(c, p.k, r);
			return;
		}
		if (ok) {
			const struct agent_job *j = &c->job->j;
			bool dsn = smtp_caps_has(&c->caps, SMTP_CAPS_DSN);

			for (size_t k = 0; k < j->nrcpt; k++) {
				if (!c->accepted[k] || c->job->rcpts[k].done)
					continue;
				/* RFC 3461 section 5.2.3: a server without DSN
				 * cannot tell the sender: "relayed"; one with DSN
				 * took the NOTIFY and answers for it. */
				client_report(c, k, AGENT_DELIVERED, "", r->code,
				              r->enh[0] ? r->enh : "2.0.0", smtp_reply_text(r),
				              dsn ? AGENT_DSN_PASSED : AGENT_RELAYED);
			}
			if (c->nover_limit > 0 && c->pend_head == c->pend_n) {
				client_next_transaction(c);
				return;
			}
			client_finish(c, false, NULL, false);
			return;
		}
		classify(c, SMTP_STAGE_DOT, SMTP_EVENT_REPLY, r->code, r->enh, 0, &cr);
		reply_text(c, r, "end of DATA", text, sizeof(text));
		if (cr.status == AGENT_PERMFAIL && cr.scope != SMTP_SCOPE_HOST) {
			client_report_rest(c, true, &cr, r->code, text);
			client_finish(c, false, NULL, cr.conn_dead);
			return;
		}
		client_fail(c, &cr, r->code, text);
		return;
	case EXP_RSET:
	case EXP_QUIT:
		break;
	}
}

/* ---- I/O ---- */

static void
client_connected(struct smtp_client *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		struct smtp_class_result cr;
		char text[600];

		classify(c, SMTP_STAGE_CONNECT, SMTP_EVENT_CONNECT_ERROR, 0, NULL, err, &cr);
		snprintf(text, sizeof(text), "connect to %s: %s", c->relay, strerror(err));
		cr.conn_dead = true;
		client_fail(c, &cr, 0, text);
		return;
	}
	c->connecting = false;
	c->stage = SMTP_STAGE_GREETING;
	pend_push(c, EXP_GREETING, 0);
	client_arm(c);
	client_watch(c);
}

/*
 * Parse n bytes from the server, reply by reply. Returns false when the
 * rest is not to be read: on_reply closed c, handed the job back, started
 * TLS (the rest came before the handshake: RFC 3207 section 6 says drop
 * it) or connected again.
 */
static bool
client_feed(struct smtp_client *c, const char *in, size_t n)
{
	size_t off = 0;

	while (off < n) {
		size_t used = 0;
		enum smtp_reply_status st = smtp_reply_parse(&c->rp, in + off, n - off, &used);
		struct smtp_job *job = c->job;
		unsigned gen = c->conn_gen;
		bool tls = c->tls != NULL;

		off += used;
		if (st == SMTP_REPLY_ERROR) {
			client_broken(c, SMTP_EVENT_PROTOCOL, 0, smtp_reply_parser_error(&c->rp));
			return false;
		}
		if (st == SMTP_REPLY_NEED_MORE)
			break;
		on_reply(c, smtp_reply_parser_reply(&c->rp));
		if (c->dead || c->job != job || c->conn_gen != gen || (c->tls != NULL) != tls)
			return false;
	}
	return true;
}

/* A TLS read or write failed: Postfix's "TLS library problem" for a
 * protocol error; either way the connection is lost. */
static void
client_tls_io_error(struct smtp_client *c, const char *err)
{
	int e = errno;	/* smtp_tls: the socket's error, 0 for TLS's own */

	if (e == 0)
		log_warning("TLS library problem with %s: %s", c->relay, err);
	client_broken(c, SMTP_EVENT_LOST, e != 0 ? e : EPROTO, NULL);
}

/* Read through TLS until OpenSSL needs the socket again: replies may
 * wait decrypted inside it, and no event would say so. */
static void
client_read_tls(struct smtp_client *c)
{
	char in[16384];
	char err[300];

	for (;;) {
		size_t got = 0;
		enum smtp_tls_io r = smtp_tls_conn_read(c->tls, in, sizeof(in), &got, err, sizeof(err));

		switch (r) {
		case SMTP_TLS_IO_OK:
			break;
		case SMTP_TLS_IO_WANT_READ:
		case SMTP_TLS_IO_WANT_WRITE:
			c->tls_want_write = r == SMTP_TLS_IO_WANT_WRITE;
			client_watch(c);
			return;
		case SMTP_TLS_IO_CLOSED:
			client_broken(c, SMTP_EVENT_LOST, 0, NULL);
			return;
		case SMTP_TLS_IO_ERROR:
			client_tls_io_error(c, err);
			return;
		}
		c->tls_want_write = false;
		client_arm(c);
		if (!client_feed(c, in, got))
			return;
	}
}

static void
client_read(struct smtp_client *c)
{
	char in[16384];
	ssize_t n;

	if (c->tls_up) {
		client_read_tls(c);
		return;
	}
	n = read(c->fd, in, sizeof(in));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_broken(c, SMTP_EVENT_LOST, n < 0 ? errno : 0, NULL);
		return;
	}
	client_arm(c);
	(void)client_feed(c, in, (size_t)n);
}

/* Write what is queued through TLS; false when the connection broke (c
 * was handed on: look at nothing more). */
static bool
client_write_tls(struct smtp_client *c)
{
	char err[300];
	bool moved = false;

	while (buf_len(&c->out) > 0) {
		size_t put = 0;
		enum smtp_tls_io r = smtp_tls_conn_write(c->tls, buf_data(&c->out), buf_len(&c->out),
		                                         &put, err, sizeof(err));

		if (r == SMTP_TLS_IO_OK) {
			buf_consume(&c->out, put);
			moved = true;
			continue;
		}
		if (r == SMTP_TLS_IO_WANT_READ || r == SMTP_TLS_IO_WANT_WRITE)
			break;
		if (r == SMTP_TLS_IO_CLOSED)
			client_broken(c, SMTP_EVENT_LOST, 0, NULL);
		else
			client_tls_io_error(c, err);
		return false;
	}
	if (moved && c->content_on)
		client_arm(c);
	return true;
}

static void
client_write(struct smtp_client *c)
{
	if (c->content_on)
		client_content_fill(c);
	if (c->dead)
		return;
	if (c->tls_up) {
		if (!client_write_tls(c))
			return;
	} else if (buf_len(&c->out) > 0) {
		ssize_t n = buf_write_fd(&c->out, c->fd);

		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			client_broken(c, SMTP_EVENT_LOST, errno, NULL);
			return;
		}
		if (n > 0 && c->content_on)
			client_arm(c);
	}
	client_watch(c);
}

static void
client_io(struct ev_io *io, unsigned revents)
{
	struct smtp_client *c = io->arg;
	struct smtp_job *job = c->job;
	unsigned gen = c->conn_gen;

	if (c->connecting) {
		if (revents & (EV_WRITE | EV_READ))
			client_connected(c);
		return;
	}
	if (c->tls != NULL && !c->tls_up) {
		client_tls_step(c);
		return;
	}
	/* Under TLS a read may wait for the socket to be writable and a
	 * write for it to be readable: try both on any event. */
	if ((revents & EV_READ) || c->tls_up) {
		client_read(c);
		if (c->dead || c->job != job || c->conn_gen != gen)
			return;
	}
	if ((revents & EV_WRITE) || c->tls_up)
		client_write(c);
}

static void
client_timeout(struct ev_timer *t)
{
	struct smtp_client *c = t->arg;

	if (c->idle) {
		/* Nobody came for it: QUIT. */
		struct smtp_pending p = { EXP_QUIT, 0 };

		c->idle = false;
		c->pend_head = 0;
		c->pend[0] = p;
		c->pend_n = 1;
		if (buf_append_str(&c->out, "QUIT\r\n") != BUF_OK) {
			client_kill(c);
			return;
		}
		evloop_timer_start(c->agent->loop, &c->timer, c->agent->set.quit_ms);
		client_watch(c);
		return;
	}
	if (c->start_errno != 0) {
		int err = c->start_errno;

		c->start_errno = 0;
		c->connecting = true;
		c->stage = SMTP_STAGE_CONNECT;
		{
			struct smtp_class_result cr;
			char text[600];

			classify(c, SMTP_STAGE_CONNECT, SMTP_EVENT_CONNECT_ERROR, 0, NULL, err, &cr);
			snprintf(text, sizeof(text), "connect to %s: %s", c->relay, strerror(err));
			cr.conn_dead = true;
			client_fail(c, &cr, 0, text);
		}
		return;
	}
	client_broken(c, SMTP_EVENT_TIMEOUT, 0, NULL);
}

/* Start connecting to c->t (again, for a plain-text retry). */
static void
client_connect(struct smtp_client *c)
{
	struct smtp_agent *a = c->agent;
	const struct smtp_target *t = &c->t;

	c->conn_gen++;
	c->stage = SMTP_STAGE_CONNECT;
	c->connecting = true;
	c->fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0 ||
	    (connect(c->fd, (const struct sockaddr *)&t->sa, t->salen) < 0 && errno != EINPROGRESS)) {
		/* Reported from the loop, never from inside the caller. */
		c->start_errno = errno;
		evloop_timer_start(a->loop, &c->timer, 0);
		return;
	}
	if (evloop_io_add(a->loop, &c->io, c->fd, EV_WRITE, client_io, c) < 0)
		fatal("epoll: %s", strerror(errno));
	client_arm(c);
}

struct smtp_client *
smtp_client_start(struct smtp_job *job, const struct smtp_target *t)
{
	struct smtp_client *c = calloc(1, sizeof(*c));
	struct smtp_agent *a = job->agent;

	if (c == NULL)
		fatal("out of memory");
	c->job = job;
	c->agent = a;
	c->t = *t;
	c->fd = -1;
	c->content_fd = -1;
	snprintf(c->peer, sizeof(c->peer), "%s[%s]", t->host, t->addr_text);
	if (t->sa.ss_family == AF_UNIX)	/* LMTP: "myhostname[/run/dovecot/lmtp]" */
		snprintf(c->relay, sizeof(c->relay), "%.*s", (int)sizeof(c->relay) - 1, c->peer);
	else
		snprintf(c->relay, sizeof(c->relay), "%.*s:%u", (int)sizeof(c->relay) - 7, c->peer,
		         (unsigned)ntohs(((const struct sockaddr_in *)&t->sa)->sin_port));
	smtp_reply_parser_init(&c->rp);
	buf_init(&c->out, SMTP_CLIENT_OUT_MAX);
	client_rcpt_arrays(c, job->j.nrcpt);
	evloop_timer_init(&c->timer, client_timeout, c);
	c->t_start_us = agent_link_now_us();
	/* The host's level: the next hop's policy, DANE decided per host
	 * (smtp_job.c). */
	c->tls_level = job->host_tls.level;
	client_connect(c);
	return c;
}

struct smtp_client *
smtp_client_reuse(struct smtp_job *job)
{
	char key[sizeof(((struct smtp_client *)0)->cache_key)];
	struct smtp_client *c;

	snprintf(key, sizeof(key), "%s:%s", job->j.transport, job->j.nexthop);
	for (c = closing_list; c != NULL; c = c->next_closing)
		if (c->idle && !c->dead && strcmp(c->cache_key, key) == 0)
			break;
	if (c == NULL)
		return NULL;
	closing_remove(c);
	c->idle = false;
	c->job = job;
	client_rcpt_arrays(c, job->j.nrcpt);
	c->pend_head = c->pend_n = 0;
	c->naccepted = 0;
	c->nover_limit = 0;
	c->rcpt_next = 0;
	c->tx_failed = false;
	c->t_mail_us = 0;
	c->t_start_us = agent_link_now_us();
	c->reusing = true;
	/* RSET first: it proves the connection still works (RFC 5321 4.1.1.5)
	 * and ends whatever the last transaction left. */
	if (!client_cmd(c, EXP_RSET, 0, "RSET")) {
		c->job = NULL;
		client_kill(c);
		return NULL;
	}
	client_arm(c);
	log_debug("%s: reusing the connection to %s", job->j.queue_id, c->peer);
	return c;
}

void
smtp_client_abort(struct smtp_client *c)
{
	c->job = NULL;
	closing_remove(c);
	client_release(c);
}

void
smtp_client_close_all(void)
{
	while (closing_list != NULL) {
		struct smtp_client *c = closing_list;

		closing_remove(c);
		client_release(c);
	}
}
