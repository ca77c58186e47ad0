/*
 * smtp_client: one SMTP session with one address, for one job.
 *
 *   connect -> 220 greeting -> EHLO (HELO when EHLO is refused)
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
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "delivery/smtp_caps.h"
#include "delivery/smtp_dot.h"
#include "delivery/smtp_impl.h"
#include "delivery/smtp_reply.h"
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
	EXP_MAIL,
	EXP_RCPT,
	EXP_DATA,
	EXP_DOT,
	EXP_QUIT,
};

struct smtp_pending {
	enum smtp_expect what;
	size_t k;		/* EXP_RCPT: the job's recipient */
};

struct smtp_client {
	struct smtp_job *job;	/* NULL once detached (saying QUIT) */
	struct smtp_agent *agent;
	struct smtp_target t;
	char peer[RESOLVER_NAME_SIZE + 70];	/* "mx.example.net[192.0.2.7]" */
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

	struct smtp_pending *pend;	/* replies expected, in order */
	size_t pend_head, pend_n, pend_cap;
	size_t rcpt_next;	/* next recipient to send (one by one) */
	bool *accepted;		/* per recipient of the job */
	size_t naccepted;
	bool tx_failed;		/* the transaction is over: ignore the rest */

	int content_fd;
	bool content_on;	/* streaming the content */
	struct smtp_dot dot;

	int64_t t_start_us, t_mail_us;
	bool dead;		/* closed; freed from the loop (never inside a
				 * handler that may still look at it) */
	bool listed;		/* in closing_list */
	struct smtp_client *next_closing;
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
	case EXP_MAIL:
		return SMTP_STAGE_MAIL;
	case EXP_RCPT:
		return SMTP_STAGE_RCPT;
	case EXP_DATA:
		return SMTP_STAGE_DATA;
	case EXP_DOT:
		return SMTP_STAGE_DOT;
	case EXP_QUIT:
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

	if (c->connecting || buf_len(&c->out) > 0 || c->content_on)
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
	if (c->fd >= 0)
		close(c->fd);
	if (c->content_fd >= 0)
		close(c->content_fd);
	smtp_reply_parser_free(&c->rp);
	buf_free(&c->out);
	free(c->pend);
	free(c->accepted);
	free(c);
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
	int64_t now = smtp_now_us();
	int64_t mail = c->t_mail_us ? c->t_mail_us : now;

	d[0] = job->received_us - job->j.arrival;
	d[1] = 0;
	d[2] = mail - job->received_us;
	d[3] = now - mail;
}

/*
 * Tell the job how the session ended and detach: QUIT when the
 * connection can still take it, else close at once.
 */
static void
client_finish(struct smtp_client *c, bool host_failed, const struct agent_result *fail,
              bool conn_dead)
{
	struct smtp_job *job = c->job;

	c->job = NULL;
	c->content_on = false;
	if (c->content_fd >= 0) {
		close(c->content_fd);
		c->content_fd = -1;
	}
	if (conn_dead || c->fd < 0 || c->connecting) {
		client_kill(c);
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

/* The connection failed (lost, timed out, garbled) at the current stage. */
static void
client_broken(struct smtp_client *c, enum smtp_event ev, int err, const char *detail)
{
	struct smtp_class_result cr;
	char text[600];

	if (c->job == NULL) {	/* saying QUIT: nothing more to learn */
		client_kill(c);
		return;
	}
	classify(c, c->stage, ev, 0, NULL, err, &cr);
	if (c->stage == SMTP_STAGE_CONNECT) {
		snprintf(text, sizeof(text), "connect to %s:%u: %s", c->peer,
		         (unsigned)ntohs(((struct sockaddr_in *)&c->t.sa)->sin_port),
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
	c->t_mail_us = smtp_now_us();
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
	/* Cannot happen within SMTP_CLIENT_OUT_MAX (1000 recipients of at
	 * most ~1.5 KB each); if it does, defer rather than send half. */
	classify(c, SMTP_STAGE_MAIL, SMTP_EVENT_LOST, 0, NULL, 0, &cr);
	cr.conn_dead = true;
	client_fail(c, &cr, 0, "internal error: commands too long for the output buffer");
}

/* Non-pipelined: the next RCPT, or DATA, or the end. */
static void
client_next_rcpt(struct smtp_client *c)
{
	const struct agent_job *j = &c->job->j;

	while (c->rcpt_next < j->nrcpt && c->job->rcpts[c->rcpt_next].done)
		c->rcpt_next++;
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
			pend_push(c, EXP_DOT, 0);
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
		client_kill(c);
		return;
	}
	if (c->tx_failed) {
		/* The outcome is known; a 354 owed to a pipelined DATA whose
		 * recipients all failed gets an empty message's end. */
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
		c->job->sessions++;
		(void)client_cmd(c, EXP_EHLO, 0, "EHLO %s", c->agent->set.helo_name);
		return;
	case EXP_EHLO:
		if (ok) {
			smtp_caps_parse(r, &c->caps);
			client_transaction(c);
			return;
		}
		if (r->code != 421) {
			(void)client_cmd(c, EXP_HELO, 0, "HELO %s", c->agent->set.helo_name);
			return;
		}
		/* fall through: 421 ends the session */
		/* FALLTHROUGH */
	case EXP_HELO:
		if (ok) {
			memset(&c->caps, 0, sizeof(c->caps));
			client_transaction(c);
			return;
		}
		classify(c, SMTP_STAGE_EHLO, SMTP_EVENT_REPLY, r->code, r->enh, 0, &cr);
		reply_text(c, r, p.what == EXP_EHLO ? "EHLO" : "HELO", text, sizeof(text));
		client_fail(c, &cr, r->code, text);
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
			client_report(c, p.k, cr.status, cr.err_class, r->code, cr.enh, text,
			              AGENT_FINAL);
		}
		if (!c->pipelining)
			client_next_rcpt(c);
		return;
	case EXP_DATA:
		if (c->naccepted == 0) {
			/* Every recipient failed: the server refuses DATA (RFC
			 * 2920 section 3.1), or wrongly says 354. */
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
		snprintf(text, sizeof(text), "connect to %s:%u: %s", c->peer,
		         (unsigned)ntohs(((struct sockaddr_in *)&c->t.sa)->sin_port), strerror(err));
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

static void
client_read(struct smtp_client *c)
{
	char in[16384];
	ssize_t n = read(c->fd, in, sizeof(in));
	size_t off = 0;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_broken(c, SMTP_EVENT_LOST, n < 0 ? errno : 0, NULL);
		return;
	}
	client_arm(c);
	while (off < (size_t)n) {
		size_t used = 0;
		enum smtp_reply_status st = smtp_reply_parse(&c->rp, in + off, (size_t)n - off, &used);

		off += used;
		if (st == SMTP_REPLY_ERROR) {
			client_broken(c, SMTP_EVENT_PROTOCOL, 0, smtp_reply_parser_error(&c->rp));
			return;
		}
		if (st == SMTP_REPLY_NEED_MORE)
			break;
		/* on_reply may close c or hand the job back: then the rest
		 * of this read is not for the transaction any more. */
		{
			struct smtp_job *before = c->job;

			on_reply(c, smtp_reply_parser_reply(&c->rp));
			if (c->dead || c->job != before)
				return;
		}
	}
}

static void
client_write(struct smtp_client *c)
{
	if (c->content_on)
		client_content_fill(c);
	if (c->dead)
		return;
	if (buf_len(&c->out) > 0) {
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

	if (c->connecting) {
		if (revents & (EV_WRITE | EV_READ))
			client_connected(c);
		return;
	}
	if (revents & EV_READ) {
		client_read(c);
		if (c->dead || c->job != job)
			return;
	}
	if (revents & EV_WRITE)
		client_write(c);
}

static void
client_timeout(struct ev_timer *t)
{
	struct smtp_client *c = t->arg;

	if (c->start_errno != 0) {
		int err = c->start_errno;

		c->start_errno = 0;
		c->connecting = true;
		c->stage = SMTP_STAGE_CONNECT;
		{
			struct smtp_class_result cr;
			char text[600];

			classify(c, SMTP_STAGE_CONNECT, SMTP_EVENT_CONNECT_ERROR, 0, NULL, err, &cr);
			snprintf(text, sizeof(text), "connect to %s:%u: %s", c->peer,
			         (unsigned)ntohs(((struct sockaddr_in *)&c->t.sa)->sin_port),
			         strerror(err));
			cr.conn_dead = true;
			client_fail(c, &cr, 0, text);
		}
		return;
	}
	client_broken(c, SMTP_EVENT_TIMEOUT, 0, NULL);
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
	snprintf(c->relay, sizeof(c->relay), "%.*s:%u", (int)sizeof(c->relay) - 7, c->peer,
	         (unsigned)ntohs(((const struct sockaddr_in *)&t->sa)->sin_port));
	smtp_reply_parser_init(&c->rp);
	buf_init(&c->out, SMTP_CLIENT_OUT_MAX);
	c->pend_cap = job->j.nrcpt + 8;
	c->pend = calloc(c->pend_cap, sizeof(*c->pend));
	c->accepted = calloc(job->j.nrcpt ? job->j.nrcpt : 1, sizeof(*c->accepted));
	if (c->pend == NULL || c->accepted == NULL)
		fatal("out of memory");
	evloop_timer_init(&c->timer, client_timeout, c);
	c->t_start_us = smtp_now_us();
	c->stage = SMTP_STAGE_CONNECT;
	c->connecting = true;

	c->fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0 ||
	    (connect(c->fd, (const struct sockaddr *)&t->sa, t->salen) < 0 && errno != EINPROGRESS)) {
		/* Reported from the loop, never from inside the caller. */
		c->start_errno = errno;
		evloop_timer_start(a->loop, &c->timer, 0);
		return c;
	}
	if (evloop_io_add(a->loop, &c->io, c->fd, EV_WRITE, client_io, c) < 0)
		fatal("epoll: %s", strerror(errno));
	client_arm(c);
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
