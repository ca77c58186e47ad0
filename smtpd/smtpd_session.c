/*
 * smtpd_session: lifecycle, socket I/O and the input loop of one SMTP
 * session. The command handlers live in smtpd_verbs.c.
 *
 * Input is read into a bounded buffer and handed out one command line at
 * a time (common/lineread), or to the content decoder in DATA/BDAT state.
 * Replies are queued and flushed when the input runs dry, so pipelined
 * commands (RFC 2920) are answered in order and in batches. A session
 * waiting for the spool, or sleeping after too many errors, reads nothing:
 * what the client sent meanwhile waits in the kernel.
 *
 * Before the greeting the client's names are looked up (smtpd_peer.c), in
 * SMTPD_STATE_LOOKUP: nothing is read or sent meanwhile, the session is
 * counted as any other, and the wait is bounded by
 * smtpd_peername_lookup_timeout. "connect from" is logged once the names
 * are known, as Postfix does.
 *
 * TLS (smtpd_tls.c) sits between the socket and the buffers: after
 * STARTTLS (or from the smtps connect) the session is in
 * SMTPD_STATE_HANDSHAKE, reads nothing as commands, and steps the handshake
 * on readiness events; once it is up, reads and writes go through it.
 *
 * Ownership: the session owns its socket, buffers and transaction;
 * smtpd_session_free() releases all of it. A session closed while its
 * message is being committed is freed by the commit callback instead.
 */
#include "smtpd/smtpd_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "resolver/resolver.h"
#include "smtpd/smtpd_peer.h"
#include "smtpd/smtpd_ratelimit.h"
#include "smtpd/smtpd_restrict.h"
#include "smtpd/smtpd_session_impl.h"
#include "smtpd/smtpd_tls.h"

static void smtpd_session_io(struct ev_io *io, unsigned revents);
static void smtpd_session_timer(struct ev_timer *t);
static void smtpd_session_pending(struct ev_timer *t);
static void smtpd_session_run(struct smtpd_session *s);
static void smtpd_session_free(struct smtpd_session *s);

/* A sendmail client we cannot identify: one reply, then close. */
static void
smtpd_refuse_local(int fd, const char *host)
{
	char line[300];
	int n;

	n = snprintf(line, sizeof(line), "421 4.3.0 %s Error: cannot identify the local client\r\n",
	    host);
	if (n > 0)
		(void)send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/* ---- addresses ---- */

static void
smtpd_format_addr(const struct sockaddr *sa, char *dst, size_t dstsz, unsigned *port)
{
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;

	snprintf(dst, dstsz, "unknown");
	*port = 0;
	if (sa->sa_family == AF_INET) {
		s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, dst, (socklen_t)dstsz);
		*port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)sa;
		/* An IPv4 client on a dual-stack socket is logged as IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], dst, (socklen_t)dstsz);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, dst, (socklen_t)dstsz);
		*port = ntohs(s6->sin6_port);
	}
}

/* ---- replies ---- */

static void
smtpd_out_append(struct smtpd_session *s, const char *line, size_t len)
{
	/* A client that never reads its replies is cut off, not buffered for. */
	if (buf_append(&s->out, line, len) != BUF_OK) {
		log_warning("reply buffer full for %s[%s]; closing", s->client_name, s->client_addr);
		s->peer_gone = true;
	}
}

static void
smtpd_vreply(struct smtpd_session *s, int code, char sep, const char *enh, const char *fmt,
    va_list ap)
{
	char line[1024];
	int n, m;

	if (enh != NULL)
		n = snprintf(line, sizeof(line), "%03d%c%s ", code, sep, enh);
	else
		n = snprintf(line, sizeof(line), "%03d%c", code, sep);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	if (m < 0)
		m = 0;
	if ((size_t)(n + m) > sizeof(line) - 3)
		m = (int)sizeof(line) - 3 - n;
	memcpy(line + n + m, "\r\n", 2);
	smtpd_out_append(s, line, (size_t)(n + m + 2));
}

void
smtpd_reply(struct smtpd_session *s, int code, const char *enh, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtpd_vreply(s, code, ' ', enh, fmt, ap);
	va_end(ap);
}

void
smtpd_reply_part(struct smtpd_session *s, int code, bool last, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtpd_vreply(s, code, last ? ' ' : '-', NULL, fmt, ap);
	va_end(ap);
}

void
smtpd_reply_error(struct smtpd_session *s, const struct smtpd_reply *r)
{
	smtpd_reply(s, r->code, r->enh, "%s", r->text);
}

const char *
smtpd_session_proto(const struct smtpd_session *s)
{
	return s->esmtp ? "ESMTP" : "SMTP";
}

void
smtpd_log_reject(struct smtpd_session *s, const char *stage, int code, const char *enh,
    const char *text, const char *rcpt)
{
	char helo[SMTPD_HELO_MAX + 1];
	const char *id = s->msg ? spool_msg_id(s->msg) : "NOQUEUE";

	snprintf(helo, sizeof(helo), "%s", s->helo);
	if (rcpt != NULL)
		log_info("%s: reject: %s from %s[%s]: %d %s %s; from=<%s> to=<%s> proto=%s helo=<%s>",
		    id, stage, s->client_name, s->client_addr, code, enh, text,
		    s->env.sender ? s->env.sender : "", rcpt, smtpd_session_proto(s), helo);
	else if (s->env.sender != NULL)
		log_info("%s: reject: %s from %s[%s]: %d %s %s; from=<%s> proto=%s helo=<%s>",
		    id, stage, s->client_name, s->client_addr, code, enh, text,
		    s->env.sender, smtpd_session_proto(s), helo);
	else
		log_info("%s: reject: %s from %s[%s]: %d %s %s; proto=%s helo=<%s>",
		    id, stage, s->client_name, s->client_addr, code, enh, text,
		    smtpd_session_proto(s), helo);
}

/* ---- errors, limits and closing ---- */

bool
smtpd_session_error(struct smtpd_session *s)
{
	const struct config *cfg = s->srv->cfg;
	uint64_t hard = config_lint(cfg, s->listener, P_SMTPD_HARD_ERROR_LIMIT);
	uint64_t soft = config_lint(cfg, s->listener, P_SMTPD_SOFT_ERROR_LIMIT);
	int64_t sleep_s = config_ltime(cfg, s->listener, P_SMTPD_ERROR_SLEEP_TIME);

	s->errors++;
	if (hard > 0 && s->errors >= hard) {
		log_warning("hard error limit reached from %s[%s]", s->client_name, s->client_addr);
		smtpd_reply(s, 421, "4.7.0", "%s Error: too many errors", s->srv->hostname);
		smtpd_session_close_after_reply(s);
		return true;
	}
	/* Past the soft limit every error reply waits, as Postfix's
	 * smtpd_error_sleep_time does: it slows down address harvesters. */
	if (soft > 0 && s->errors >= soft && sleep_s > 0 && !s->sleeping) {
		s->sleeping = true;
		evloop_timer_start(s->srv->loop, &s->timer, sleep_s * 1000);
	}
	return false;
}

void
smtpd_session_close_after_reply(struct smtpd_session *s)
{
	s->state = SMTPD_STATE_CLOSING;
	/* Bounded: a client that does not read its last reply is dropped. */
	evloop_timer_start(s->srv->loop, &s->timer, SMTPD_CLOSE_LINGER_MS);
}

static void
smtpd_format_counts(const struct smtpd_session *s, char *dst, size_t dstsz)
{
	size_t o = 0;
	int v, n;

	dst[0] = '\0';
	for (v = 0; v < SMTPD_VERB_COUNT; v++) {
		const struct smtpd_counter *c = &s->count[v];
		const char *name = v == SMTPD_VERB_UNKNOWN ? "unknown" : smtpd_verb_name((enum smtpd_verb)v);
		char lower[16];
		size_t i;

		if (c->total == 0)
			continue;
		for (i = 0; name[i] && i < sizeof(lower) - 1; i++)
			lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
		lower[i] = '\0';
		if (c->ok == c->total)
			n = snprintf(dst + o, dstsz - o, " %s=%u", lower, c->ok);
		else
			n = snprintf(dst + o, dstsz - o, " %s=%u/%u", lower, c->ok, c->total);
		if (n < 0 || (size_t)n >= dstsz - o)
			return;
		o += (size_t)n;
	}
	if (s->count_all.ok == s->count_all.total)
		snprintf(dst + o, dstsz - o, " commands=%u", s->count_all.ok);
	else
		snprintf(dst + o, dstsz - o, " commands=%u/%u", s->count_all.ok, s->count_all.total);
}

static void
smtpd_session_free(struct smtpd_session *s)
{
	char counts[512];

	smtpd_format_counts(s, counts, sizeof(counts));
	log_info("disconnect from %s[%s]%s", s->client_name, s->client_addr, counts);
	smtpd_peer_lookup_cancel(s->peer_lookup);
	evloop_io_del(s->srv->loop, &s->io);
	evloop_timer_stop(s->srv->loop, &s->timer);
	evloop_timer_stop(s->srv->loop, &s->pending_timer);
	smtpd_tls_session_free(s);
	close(s->fd);
	smtpd_verbs_free(s);
	buf_free(&s->in);
	buf_free(&s->out);
	smtpd_ratelimit_disconnect(s);
	smtpd_server_session_removed(s->srv, s);
	free(s);
}

/* Close now. A session whose message is in the spool's hands lives on
 * until the commit callback, which must find it. */
static void
smtpd_session_close(struct smtpd_session *s)
{
	if (s->state == SMTPD_STATE_COMMIT) {
		s->free_after_commit = true;
		s->peer_gone = true;
		evloop_io_del(s->srv->loop, &s->io);
		evloop_timer_stop(s->srv->loop, &s->timer);
		evloop_timer_stop(s->srv->loop, &s->pending_timer);
		return;
	}
	smtpd_session_free(s);
}

/* ---- start ---- */

/*
 * A client of the sendmail socket: who it is comes from the kernel
 * (SO_PEERCRED). It is named localhost[127.0.0.1], as Postfix's smtpd names
 * a client that is not on the Internet and as qmgr's own notices are. false
 * when the credentials cannot be read (the session is refused).
 */
static bool
smtpd_session_local_peer(struct smtpd_session *s)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	snprintf(s->client_name, sizeof(s->client_name), "localhost");
	snprintf(s->reverse_name, sizeof(s->reverse_name), "localhost");
	s->name_status = s->reverse_name_status = SMTPD_PEER_OK;
	snprintf(s->client_addr, sizeof(s->client_addr), "127.0.0.1");
	if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
		log_warning("sendmail socket: cannot read the client's credentials: %s",
		    strerror(errno));
		return false;
	}
	s->local = true;
	s->peer_uid = (unsigned long)cred.uid;
	s->peer_pid = (long)cred.pid;
	return true;
}

/* ---- the client's names (smtpd_peer.h) ---- */

/* Take the names of n, or with n NULL "unknown" for both, with status st. */
static void
smtpd_session_set_names(struct smtpd_session *s, const struct smtpd_peer_names *n,
    enum smtpd_peer_status st)
{
	struct smtpd_peer_names unknown;

	if (n == NULL) {
		smtpd_peer_names_unknown(&unknown, st);
		n = &unknown;
	}
	/* Both fit (RESOLVER_NAME_SIZE); the precision says so to the compiler. */
	snprintf(s->client_name, sizeof(s->client_name), "%.*s", (int)sizeof(s->client_name) - 1,
	    n->name);
	snprintf(s->reverse_name, sizeof(s->reverse_name), "%.*s",
	    (int)sizeof(s->reverse_name) - 1, n->reverse_name);
	s->name_status = n->name_status;
	s->reverse_name_status = n->reverse_name_status;
}

/* Named: log the connection (Postfix logs it with the names), and set the
 * state the session starts in. */
static void
smtpd_session_connected(struct smtpd_session *s)
{
	if (s->local)
		log_info("connect from %s[%s] uid=%lu pid=%ld", s->client_name, s->client_addr,
		    s->peer_uid, s->peer_pid);
	else
		log_info("connect from %s[%s]", s->client_name, s->client_addr);
	/* smtps (RFC 8314 section 3.3): TLS first, the connect stage and
	 * the greeting inside it. */
	s->state = s->listener == CONFIG_LISTENER_SMTPS ? SMTPD_STATE_HANDSHAKE :
	    SMTPD_STATE_CONNECTED;
}

/* The session proper: the idle timer, then the handshake or the greeting. */
static void
smtpd_session_begin(struct smtpd_session *s)
{
	smtpd_session_connected(s);
	/* smtps: no handshake for a client that made too many new TLS
	 * sessions; closed without a word (there is no TLS to say it in). */
	if (s->state == SMTPD_STATE_HANDSHAKE && !smtpd_ratelimit_smtps(s)) {
		s->state = SMTPD_STATE_CLOSING;
		return;
	}
	evloop_timer_start(s->srv->loop, &s->timer,
	    config_ltime(s->srv->cfg, s->listener, P_SMTPD_TIMEOUT) * 1000);
	if (s->state == SMTPD_STATE_CONNECTED) {
		s->greeted = true;
		smtpd_verbs_connect(s);
	}
}

static void
smtpd_session_named(void *arg, const struct smtpd_peer_names *n)
{
	struct smtpd_session *s = arg;

	s->peer_lookup = NULL;
	smtpd_session_set_names(s, n, SMTPD_PEER_PERM);
	smtpd_session_begin(s);
	smtpd_session_run(s);
}

/*
 * Look the client's names up before the greeting (true: the session waits
 * in SMTPD_STATE_LOOKUP, reading and sending nothing, at most
 * smtpd_peername_lookup_timeout), or leave them "unknown" (false): with
 * smtpd_peername_lookup = no (Postfix's permanent "unknown"), or without
 * a resolver (unit tests without restrictions).
 */
static bool
smtpd_session_lookup(struct smtpd_session *s)
{
	const struct config *cfg = s->srv->cfg;
	struct resolver *r = s->srv->rules != NULL ? smtpd_restrict_resolver(s->srv->rules) : NULL;
	struct smtpd_peer_names local;
	unsigned char addr[16];
	int64_t timeout_s;
	int af;

	if (inet_pton(AF_INET, s->client_addr, addr) == 1)
		af = AF_INET;
	else if (inet_pton(AF_INET6, s->client_addr, addr) == 1)
		af = AF_INET6;
	else
		return false;
	if (r == NULL || !config_lbool(cfg, s->listener, P_SMTPD_PEERNAME_LOOKUP))
		return false;
	if (smtpd_peer_localhost(af, addr, &local)) {
		smtpd_session_set_names(s, &local, SMTPD_PEER_OK);
		return false;
	}
	/* 0s would give up before asking; a second is the least we wait. */
	timeout_s = config_ltime(cfg, s->listener, P_SMTPD_PEERNAME_LOOKUP_TIMEOUT);
	if (timeout_s < 1)
		timeout_s = 1;
	s->state = SMTPD_STATE_LOOKUP;
	s->peer_lookup = smtpd_peer_lookup_start(s->srv->loop, r, af, addr, s->client_addr,
	    timeout_s * 1000, smtpd_session_named, s);
	return true;
}

/* Stop waiting for the names (drain, abort): the client stays "unknown",
 * for now, and the connection is logged as any other. */
static void
smtpd_session_lookup_abandon(struct smtpd_session *s)
{
	smtpd_peer_lookup_cancel(s->peer_lookup);
	s->peer_lookup = NULL;
	smtpd_session_set_names(s, NULL, SMTPD_PEER_TEMP);
	smtpd_session_connected(s);
}

struct smtpd_session *
smtpd_session_start(struct smtpd_server *srv, int fd, enum config_listener listener,
    const struct sockaddr *peer, socklen_t peerlen, const struct sockaddr *local,
    socklen_t locallen)
{
	struct smtpd_session *s;
	uint64_t line_max;

	(void)peerlen;
	(void)locallen;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		fatal("out of memory (session)");
	s->srv = srv;
	s->fd = fd;
	s->listener = listener;
	s->state = SMTPD_STATE_CONNECTED;
	s->last_verb = "CONNECT";
	buf_init(&s->in, SMTPD_IN_MAX);
	buf_init(&s->out, SMTPD_OUT_MAX);
	line_max = config_lint(srv->cfg, listener, P_LINE_LENGTH_LIMIT);
	lineread_init(&s->lr, line_max > SMTPD_IN_MAX ? SMTPD_IN_MAX : (size_t)line_max);
	envelope_init(&s->env);
	buf_init(&s->decoded, SMTPD_DECODED_MAX);
	evloop_timer_init(&s->timer, smtpd_session_timer, s);
	evloop_timer_init(&s->pending_timer, smtpd_session_pending, s);
	smtpd_format_addr(peer, s->client_addr, sizeof(s->client_addr), &s->client_port);
	smtpd_format_addr(local, s->server_addr, sizeof(s->server_addr), &s->server_port);
	smtpd_session_set_names(s, NULL, SMTPD_PEER_PERM);
	if (listener == CONFIG_LISTENER_SENDMAIL && !smtpd_session_local_peer(s)) {
		smtpd_refuse_local(fd, srv->hostname);
		buf_free(&s->in);
		buf_free(&s->out);
		buf_free(&s->decoded);
		envelope_free(&s->env);
		free(s);
		return NULL;
	}

	if (evloop_io_add(srv->loop, &s->io, fd, EV_READ | EV_WRITE, smtpd_session_io, s) < 0) {
		log_warning("cannot watch connection from %s: %s", s->client_addr, strerror(errno));
		buf_free(&s->in);
		buf_free(&s->out);
		envelope_free(&s->env);
		close(fd);
		free(s);
		return NULL;
	}
	/* Counted from now on (smtpd_client_connection_limit, drain), even
	 * while its names are being looked up. */
	smtpd_server_session_added(srv, s);
	if (s->local || !smtpd_session_lookup(s))
		smtpd_session_begin(s);
	smtpd_session_run(s);
	return s;
}

/* ---- the input loop ---- */

/* Process what is buffered, as far as the state allows. */
static void
smtpd_session_process(struct smtpd_session *s)
{
	struct lineread_line line;
	enum lineread_result r;

	while (!s->sleeping && !s->peer_gone && buf_len(&s->out) < SMTPD_OUT_PAUSE) {
		if (s->state & (SMTPD_STATE_DATA | SMTPD_STATE_BDAT)) {
			if (!smtpd_verbs_content(s))
				return;
			continue;
		}
		if (!(s->state & SMTPD_STATES_COMMAND))
			return;
		r = lineread_next(&s->lr, &s->in, &line);
		if (r == LINEREAD_NEED_MORE)
			return;
		if (r == LINEREAD_TOO_LONG) {
			s->count[SMTPD_VERB_UNKNOWN].total++;
			s->count_all.total++;
			smtpd_reply(s, 500, "5.5.2", "Error: line too long");
			smtpd_session_error(s);
			continue;
		}
		/* The line is borrowed from s->in: dispatch before consuming. */
		smtpd_verbs_dispatch(s, line.p, line.len);
		/* A handler may have consumed or reset the input (STARTTLS). */
		if (s->lr.line_total > 0)
			lineread_consume(&s->lr, &s->in);
	}
}

/* Does the session take input now? */
static bool
smtpd_session_reading(const struct smtpd_session *s)
{
	return !s->sleeping && buf_len(&s->out) < SMTPD_OUT_PAUSE &&
	       (s->state & (SMTPD_STATES_COMMAND | SMTPD_STATE_DATA | SMTPD_STATE_BDAT));
}

/* Write what the replies queue holds; false when the socket failed. */
static bool
smtpd_session_flush(struct smtpd_session *s)
{
	ssize_t n;

	while (buf_len(&s->out) > 0) {
		if (smtpd_tls_active(s))
			n = smtpd_tls_write(s, buf_data(&s->out), buf_len(&s->out));
		else
			n = send(s->fd, buf_data(&s->out), buf_len(&s->out), MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&s->out, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		return false;
	}
	buf_shrink(&s->out);
	return true;
}

/*
 * The TLS handshake, once the STARTTLS reply left in plain text: the
 * events to wait for, 0 when it is done (the session then goes on as a
 * command session), or peer_gone set when it failed.
 */
static unsigned
smtpd_session_handshake(struct smtpd_session *s)
{
	if (buf_len(&s->out) > 0)
		return EV_WRITE;
	switch (smtpd_tls_handshake(s)) {
	case SMTPD_TLS_STEP_DONE:
		/* Refused after the handshake (smtpd_ratelimit_tls_up): the
		 * 421 leaves, then the session closes. */
		if (s->state == SMTPD_STATE_CLOSING)
			return 0;
		/* A fresh idle period for the first command. */
		evloop_timer_start(s->srv->loop, &s->timer,
		    config_ltime(s->srv->cfg, s->listener, P_SMTPD_TIMEOUT) * 1000);
		if (!s->greeted) {
			s->greeted = true;
			smtpd_verbs_connect(s);
		}
		return 0;
	case SMTPD_TLS_STEP_READ:
		return EV_READ;
	case SMTPD_TLS_STEP_WRITE:
		return EV_WRITE;
	case SMTPD_TLS_STEP_FAILED:
		break;
	}
	s->peer_gone = true;
	return 0;
}

/* Decide what to watch given the state, then maybe close. */
static void
smtpd_session_run(struct smtpd_session *s)
{
	unsigned want = 0;

	smtpd_session_process(s);
	if (!s->sleeping && !smtpd_session_flush(s))
		s->peer_gone = true;
	if (!s->peer_gone && s->state == SMTPD_STATE_HANDSHAKE) {
		want = smtpd_session_handshake(s);
		if (want != 0 && !s->peer_gone) {
			if (evloop_io_set(s->srv->loop, &s->io, want) < 0) {
				log_warning("epoll: %s", strerror(errno));
				smtpd_session_close(s);
			}
			return;
		}
	}
	if (s->peer_gone) {
		if (s->state != SMTPD_STATE_CLOSING && s->state != SMTPD_STATE_COMMIT)
			log_info("lost connection after %s from %s[%s]", s->last_verb,
			    s->client_name, s->client_addr);
		smtpd_session_close(s);
		return;
	}
	if (s->state == SMTPD_STATE_CLOSING && buf_len(&s->out) == 0) {
		smtpd_session_free(s);
		return;
	}
	if (buf_len(&s->out) > 0 && !s->sleeping)
		want |= EV_WRITE;
	if (smtpd_session_reading(s))
		want |= EV_READ;
	want |= smtpd_tls_events(s);
	/* Input decrypted inside OpenSSL raises no socket event. */
	if ((want & EV_READ) && smtpd_tls_pending(s))
		evloop_timer_start(s->srv->loop, &s->pending_timer, 0);
	if (buf_len(&s->in) == 0)
		buf_shrink(&s->in);
	if (evloop_io_set(s->srv->loop, &s->io, want) < 0) {
		log_warning("epoll: %s", strerror(errno));
		smtpd_session_close(s);
	}
}

static void
smtpd_session_read(struct smtpd_session *s)
{
	ssize_t n;

	if (smtpd_tls_active(s))
		n = smtpd_tls_read(s, SMTPD_READ_CHUNK);
	else
		n = buf_read_fd(&s->in, s->fd, SMTPD_READ_CHUNK);
	if (n > 0) {
		if (!s->sleeping && s->state != SMTPD_STATE_CLOSING)
			evloop_timer_start(s->srv->loop, &s->timer,
			    config_ltime(s->srv->cfg, s->listener, P_SMTPD_TIMEOUT) * 1000);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0 && errno == ENOBUFS)
		return;		/* full: the loop consumes before reading again */
	s->peer_gone = true;
}

static void
smtpd_session_io(struct ev_io *io, unsigned revents)
{
	struct smtpd_session *s = io->arg;

	/* Never during the handshake: those bytes are the TLS engine's (and
	 * plain text sent behind STARTTLS must not be read as commands). */
	if (s->state != SMTPD_STATE_HANDSHAKE && smtpd_session_reading(s) &&
	    smtpd_tls_read_ready(s, revents))
		smtpd_session_read(s);
	smtpd_session_run(s);
}

static void
smtpd_session_pending(struct ev_timer *t)
{
	struct smtpd_session *s = t->arg;

	if (smtpd_session_reading(s))
		smtpd_session_read(s);
	smtpd_session_run(s);
}

static void
smtpd_session_timer(struct ev_timer *t)
{
	struct smtpd_session *s = t->arg;

	if (s->sleeping) {
		s->sleeping = false;
		evloop_timer_start(s->srv->loop, &s->timer,
		    config_ltime(s->srv->cfg, s->listener, P_SMTPD_TIMEOUT) * 1000);
		smtpd_session_run(s);
		return;
	}
	if (s->state == SMTPD_STATE_CLOSING) {
		smtpd_session_free(s);
		return;
	}
	if (s->state == SMTPD_STATE_COMMIT || s->state == SMTPD_STATE_WAIT)
		return;		/* our own wait, not the client's: no timeout */
	if (s->state == SMTPD_STATE_HANDSHAKE) {
		/* Nothing can be said in the middle of a handshake; Postfix's
		 * words for a handshake that ran out of time. */
		log_info("SSL_accept error from %s[%s]: %s", s->client_name, s->client_addr,
		    strerror(ETIMEDOUT));
		log_info("lost connection after %s from %s[%s]", s->last_verb, s->client_name,
		    s->client_addr);
		smtpd_session_free(s);
		return;
	}
	log_info("timeout after %s from %s[%s]", s->last_verb, s->client_name, s->client_addr);
	smtpd_reply(s, 421, "4.4.2", "%s Error: timeout exceeded", s->srv->hostname);
	(void)smtpd_session_flush(s);
	smtpd_session_free(s);
}

/* ---- the commit callback comes back here through smtpd_verbs.c ---- */

/* Called by smtpd_verbs.c once the spool answered and the reply is queued. */
void smtpd_session_commit_done(struct smtpd_session *s);

void
smtpd_session_commit_done(struct smtpd_session *s)
{
	if (s->free_after_commit) {
		smtpd_session_free(s);
		return;
	}
	if (s->draining && s->state != SMTPD_STATE_CLOSING) {
		smtpd_reply(s, 421, "4.3.2", "%s Service shutting down", s->srv->hostname);
		smtpd_session_close_after_reply(s);
	}
	smtpd_session_run(s);
}

/* A restriction check ended and its reply is queued. */
void
smtpd_session_resume(struct smtpd_session *s)
{
	if (s->draining && !(s->state & SMTPD_STATES_TRANSACTION) && s->state != SMTPD_STATE_CLOSING) {
		smtpd_reply(s, 421, "4.3.2", "%s Service shutting down", s->srv->hostname);
		smtpd_session_close_after_reply(s);
	}
	smtpd_session_run(s);
}

/* ---- drain and abort ---- */

void
smtpd_session_drain(struct smtpd_session *s)
{
	s->draining = true;
	/* Not greeted yet: it gets the 421 as its greeting (an smtps client
	 * gets nothing: no TLS yet). */
	if (s->state == SMTPD_STATE_LOOKUP)
		smtpd_session_lookup_abandon(s);
	if (s->state & (SMTPD_STATES_TRANSACTION | SMTPD_STATE_WAIT))
		return;		/* finishes its transaction (or check) first */
	if (s->state == SMTPD_STATE_CLOSING)
		return;
	if (s->state == SMTPD_STATE_HANDSHAKE) {
		/* No reply can go out in the middle of a handshake. */
		smtpd_session_free(s);
		return;
	}
	smtpd_reply(s, 421, "4.3.2", "%s Service shutting down", s->srv->hostname);
	smtpd_session_close_after_reply(s);
	smtpd_session_run(s);
}

void
smtpd_session_abort(struct smtpd_session *s)
{
	if (s->state == SMTPD_STATE_LOOKUP)
		smtpd_session_lookup_abandon(s);
	if (s->state == SMTPD_STATE_COMMIT) {
		s->free_after_commit = true;
		return;
	}
	if (s->state != SMTPD_STATE_CLOSING && s->state != SMTPD_STATE_HANDSHAKE)
		smtpd_reply(s, 421, "4.3.2", "%s Service shutting down", s->srv->hostname);
	(void)smtpd_session_flush(s);
	smtpd_session_free(s);
}
