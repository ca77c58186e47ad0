/*
 * smtpd_policy: policy delegation protocol codec and client. See the
 * header for the model; here is how the pieces move.
 *
 * A request waits in the client's FIFO until a connection is free, is
 * written, and is finished by the first whole reply, by its deadline, or
 * by the loss of its connection. A connection that was reused and dies
 * before a single reply byte arrived is retried once on a new connection:
 * the server may have closed it for idleness just as we wrote (Postfix
 * does the same). Bytes that arrive when no request is on the wire, or
 * after a reply, are a protocol error: the connection is closed.
 *
 * Every callback runs from a loop callback (an fd event, a deadline, or
 * the 0 ms "kick" timer that starts the work of smtpd_policy_ask()), and
 * the client's state is settled before it runs, so a callback may ask,
 * cancel or (through its owner's deferred free) drop the client.
 */
#include "smtpd/smtpd_policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

/* Bytes asked of read(2) at a time. */
#define SMTPD_POLICY_READ_CHUNK 4096
/* Room for a failure text handed to a callback. */
#define SMTPD_POLICY_TEXT_MAX 256

/* ---- the codec ---- */

static enum buf_result
smtpd_policy_attr(struct buf *out, const char *name, const char *value)
{
	enum buf_result r;
	size_t i;

	if (value == NULL)
		value = "";
	r = buf_append_printf(out, "%s=", name);
	for (i = 0; r == BUF_OK && value[i] != '\0'; i++) {
		char ch = value[i];

		/* A line break would end the attribute and start another. */
		r = buf_append_char(out, ch == '\r' || ch == '\n' ? '?' : ch);
	}
	if (r == BUF_OK)
		r = buf_append_char(out, '\n');
	return r;
}

static enum buf_result
smtpd_policy_attr_num(struct buf *out, const char *name, unsigned long long v)
{
	return buf_append_printf(out, "%s=%llu\n", name, v);
}

enum buf_result
smtpd_policy_encode(const struct smtpd_policy_attrs *a, struct buf *out)
{
	size_t start = buf_len(out);
	enum buf_result r = BUF_OK;
	const struct {
		const char *name;
		const char *value;
	} s[] = {
		{ "request", "smtpd_access_policy" },
		{ "protocol_state", a->protocol_state },
		{ "protocol_name", a->protocol_name },
		{ "helo_name", a->helo_name },
		{ "queue_id", a->queue_id },
		{ "sender", a->sender },
		{ "recipient", a->recipient },
		{ "client_address", a->client_address },
		{ "client_name", a->client_name },
		{ "reverse_client_name", a->reverse_client_name },
		{ "instance", a->instance },
		{ "sasl_method", a->sasl_method },
		{ "sasl_username", a->sasl_username },
		{ "sasl_sender", a->sasl_sender },
		{ "ccert_subject", a->ccert_subject },
		{ "ccert_issuer", a->ccert_issuer },
		{ "ccert_fingerprint", a->ccert_fingerprint },
		{ "ccert_pubkey_fingerprint", a->ccert_pubkey_fingerprint },
		{ "encryption_protocol", a->encryption_protocol },
		{ "encryption_cipher", a->encryption_cipher },
		{ "etrn_domain", "" },
		{ "stress", "" },
		{ "policy_context", a->policy_context },
		{ "server_address", a->server_address },
		{ "mail_version", a->mail_version },
	};
	const struct {
		const char *name;
		unsigned long long value;
	} n[] = {
		{ "recipient_count", a->recipient_count },
		{ "size", (unsigned long long)a->size },
		{ "encryption_keysize", a->encryption_keysize },
		{ "client_port", a->client_port },
		{ "server_port", a->server_port },
	};
	size_t i;

	for (i = 0; r == BUF_OK && i < sizeof(s) / sizeof(s[0]); i++)
		r = smtpd_policy_attr(out, s[i].name, s[i].value);
	for (i = 0; r == BUF_OK && i < sizeof(n) / sizeof(n[0]); i++)
		r = smtpd_policy_attr_num(out, n[i].name, n[i].value);
	if (r == BUF_OK)
		r = buf_append_char(out, '\n');
	if (r != BUF_OK)
		buf_truncate(out, start);
	return r;
}

enum smtpd_policy_decode_result
smtpd_policy_decode(const char *p, size_t len, char *action, size_t actionsz, size_t *consumed,
    const char **why)
{
	size_t pos = 0, eol, llen, vlen;
	const char *line, *eq;
	bool have_action = false;

	if (actionsz < SMTPD_POLICY_ACTION_MAX + 1)
		panic("smtpd_policy_decode: action buffer of %zu bytes", actionsz);
	for (;;) {
		const char *nl = memchr(p + pos, '\n', len - pos);

		if (nl == NULL) {
			if (len > SMTPD_POLICY_REPLY_MAX) {
				*why = "reply too long";
				return SMTPD_POLICY_DECODE_BAD;
			}
			return SMTPD_POLICY_DECODE_MORE;
		}
		eol = (size_t)(nl - p);
		if (eol + 1 > SMTPD_POLICY_REPLY_MAX) {
			*why = "reply too long";
			return SMTPD_POLICY_DECODE_BAD;
		}
		line = p + pos;
		llen = eol - pos;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		pos = eol + 1;
		if (llen == 0)
			break;			/* the empty line ends the reply */
		if (memchr(line, '\0', llen) != NULL) {
			*why = "NUL byte in reply";
			return SMTPD_POLICY_DECODE_BAD;
		}
		eq = memchr(line, '=', llen);
		if (eq == NULL || eq == line) {
			*why = "reply line is not name=value";
			return SMTPD_POLICY_DECODE_BAD;
		}
		if ((size_t)(eq - line) != strlen("action") ||
		    strncmp(line, "action", strlen("action")) != 0)
			continue;		/* unknown attributes are ignored */
		if (have_action) {
			*why = "more than one action in reply";
			return SMTPD_POLICY_DECODE_BAD;
		}
		vlen = llen - (size_t)(eq + 1 - line);
		if (vlen == 0) {
			*why = "empty action";
			return SMTPD_POLICY_DECODE_BAD;
		}
		if (vlen > SMTPD_POLICY_ACTION_MAX) {
			*why = "action too long";
			return SMTPD_POLICY_DECODE_BAD;
		}
		memcpy(action, eq + 1, vlen);
		action[vlen] = '\0';
		have_action = true;
	}
	if (!have_action) {
		*why = "reply without action";
		return SMTPD_POLICY_DECODE_BAD;
	}
	*consumed = pos;
	return SMTPD_POLICY_DECODE_OK;
}

int
smtpd_policy_endpoint(const char *spec, struct sockaddr_storage *ss, unsigned *sslen,
    const char **why)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *h;
	unsigned long port;
	size_t hlen;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(spec, "unix:", strlen("unix:")) == 0) {
		spec += strlen("unix:");
		if (spec[0] == '\0' || strlen(spec) >= sizeof(un->sun_path)) {
			*why = "bad unix socket path";
			return -1;
		}
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, spec, strlen(spec) + 1);
		*sslen = (unsigned)sizeof(*un);
		return 0;
	}
	if (strncmp(spec, "inet:", strlen("inet:")) != 0) {
		*why = "not inet:HOST:PORT or unix:PATH";
		return -1;
	}
	spec += strlen("inet:");
	colon = strrchr(spec, ':');
	if (colon == NULL || colon == spec) {
		*why = "missing host or port";
		return -1;
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port == 0 || port > 65535) {
		*why = "bad port";
		return -1;
	}
	h = spec;
	hlen = (size_t)(colon - spec);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		*why = "host is not a numeric address or localhost";
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	/* Names other than localhost would need a DNS lookup when the
	 * connection is made; smtpd never blocks on one (doc/restrictions.md). */
	if (strcasecmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sslen = (unsigned)sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sslen = (unsigned)sizeof(*s6);
		return 0;
	}
	*why = "host is not a numeric address or localhost";
	return -1;
}

/* ---- the client ---- */

enum smtpd_policy_conn_state {
	SMTPD_POLICY_CONN_CONNECTING,
	SMTPD_POLICY_CONN_BUSY,		/* a request written or being written */
	SMTPD_POLICY_CONN_IDLE,
};

struct smtpd_policy_conn {
	struct smtpd_policy_client *client;
	int fd;				/* -1: this slot is free */
	struct ev_io io;
	struct ev_timer idle;
	enum smtpd_policy_conn_state state;
	struct buf in;
	struct buf out;
	struct smtpd_policy_req *req;
	int64_t born_ms;
	unsigned served;		/* replies read on it */
};

struct smtpd_policy_req {
	struct smtpd_policy_client *client;
	struct smtpd_policy_req *prev, *next;	/* the client's FIFO (while waiting) */
	bool queued;
	struct smtpd_policy_conn *conn;		/* on the wire, or NULL */
	bool retried;
	struct buf request;
	struct ev_timer deadline;
	smtpd_policy_cb *cb;
	void *arg;
};

struct smtpd_policy_client {
	struct evloop *loop;
	char *endpoint;
	struct sockaddr_storage ss;
	unsigned sslen;
	int64_t timeout_ms, idle_ms, ttl_ms;
	struct smtpd_policy_req *head, *tail;
	struct ev_timer kick;
	struct smtpd_policy_conn conns[SMTPD_POLICY_CONN_MAX];
};

static void smtpd_policy_pump(struct smtpd_policy_client *c);

static void
smtpd_policy_unqueue(struct smtpd_policy_req *r)
{
	struct smtpd_policy_client *c = r->client;

	if (!r->queued)
		return;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		c->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	else
		c->tail = r->prev;
	r->prev = r->next = NULL;
	r->queued = false;
}

static void
smtpd_policy_enqueue_front(struct smtpd_policy_req *r)
{
	struct smtpd_policy_client *c = r->client;

	r->prev = NULL;
	r->next = c->head;
	if (c->head != NULL)
		c->head->prev = r;
	else
		c->tail = r;
	c->head = r;
	r->queued = true;
}

static void
smtpd_policy_req_free(struct smtpd_policy_req *r)
{
	evloop_timer_stop(r->client->loop, &r->deadline);
	smtpd_policy_unqueue(r);
	buf_free(&r->request);
	free(r);
}

static void
smtpd_policy_conn_close(struct smtpd_policy_conn *k)
{
	struct evloop *loop = k->client->loop;

	if (k->fd < 0)
		return;
	evloop_io_del(loop, &k->io);
	evloop_timer_stop(loop, &k->idle);
	close(k->fd);
	k->fd = -1;
	k->req = NULL;
	buf_free(&k->in);
	buf_free(&k->out);
}

/* Free r, then call its callback (nothing of r is touched after). */
static void
smtpd_policy_deliver(struct smtpd_policy_req *r, enum smtpd_policy_status st, const char *text)
{
	char copy[SMTPD_POLICY_ACTION_MAX + 1];
	smtpd_policy_cb *cb = r->cb;
	void *arg = r->arg;

	snprintf(copy, sizeof(copy), "%s", text);
	smtpd_policy_req_free(r);
	cb(arg, st, copy);
}

/* End r with st; the caller has detached it from its connection. The
 * client is settled first: the callback may ask again or cancel. */
static void
smtpd_policy_finish(struct smtpd_policy_req *r, enum smtpd_policy_status st, const char *text)
{
	struct smtpd_policy_client *c = r->client;

	smtpd_policy_unqueue(r);
	evloop_timer_stop(c->loop, &r->deadline);
	if (c->head != NULL && !evloop_timer_active(&c->kick))
		evloop_timer_start(c->loop, &c->kick, 0);
	smtpd_policy_deliver(r, st, text);
}

/* The connection failed under its request: retry once when the failure
 * may be the server's idle close racing our write, else fail it. */
static void
smtpd_policy_conn_failed(struct smtpd_policy_conn *k, const char *what)
{
	struct smtpd_policy_req *r = k->req;
	bool reused = k->served > 0;
	char text[SMTPD_POLICY_TEXT_MAX];

	snprintf(text, sizeof(text), "%s: %s", k->client->endpoint, what);
	smtpd_policy_conn_close(k);
	if (r == NULL)
		return;
	r->conn = NULL;
	if (reused && !r->retried) {
		r->retried = true;
		smtpd_policy_enqueue_front(r);
		smtpd_policy_pump(r->client);
		return;
	}
	smtpd_policy_finish(r, SMTPD_POLICY_FAILED, text);
}

static void
smtpd_policy_conn_idle_timer(struct ev_timer *t)
{
	smtpd_policy_conn_close(t->arg);
}

static void
smtpd_policy_conn_read(struct smtpd_policy_conn *k)
{
	char action[SMTPD_POLICY_ACTION_MAX + 1];
	struct smtpd_policy_client *c = k->client;
	struct smtpd_policy_req *r;
	enum smtpd_policy_decode_result d;
	const char *why = NULL;
	size_t used = 0;
	ssize_t n;

	n = buf_read_fd(&k->in, k->fd, SMTPD_POLICY_READ_CHUNK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0 && errno != ENOBUFS) {
		smtpd_policy_conn_failed(k, strerror(errno));
		return;
	}
	if (n == 0) {
		if (k->req == NULL)
			smtpd_policy_conn_close(k);	/* idle close by the server */
		else
			smtpd_policy_conn_failed(k, "connection closed by server");
		return;
	}
	if (k->req == NULL) {
		smtpd_policy_conn_close(k);	/* talking out of turn */
		return;
	}
	d = smtpd_policy_decode(buf_data(&k->in), buf_len(&k->in), action, sizeof(action), &used,
	    &why);
	if (d == SMTPD_POLICY_DECODE_MORE)
		return;
	r = k->req;
	k->req = NULL;
	r->conn = NULL;
	if (d == SMTPD_POLICY_DECODE_BAD || used != buf_len(&k->in)) {
		char text[SMTPD_POLICY_TEXT_MAX];

		snprintf(text, sizeof(text), "%s: %s", c->endpoint,
		    d == SMTPD_POLICY_DECODE_BAD ? why : "data after the reply");
		smtpd_policy_conn_close(k);
		smtpd_policy_finish(r, SMTPD_POLICY_FAILED, text);
		return;
	}
	buf_reset(&k->in);
	k->served++;
	k->state = SMTPD_POLICY_CONN_IDLE;
	if (evloop_now(c->loop) - k->born_ms >= c->ttl_ms) {
		smtpd_policy_conn_close(k);
	} else {
		(void)evloop_io_set(c->loop, &k->io, EV_READ);
		evloop_timer_start(c->loop, &k->idle, c->idle_ms);
	}
	smtpd_policy_finish(r, SMTPD_POLICY_OK, action);
}

static void
smtpd_policy_conn_io(struct ev_io *io, unsigned revents)
{
	struct smtpd_policy_conn *k = io->arg;
	int err = 0;
	socklen_t elen = sizeof(err);
	ssize_t n;

	if (k->state == SMTPD_POLICY_CONN_CONNECTING && (revents & (EV_WRITE | EV_READ))) {
		if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err != 0) {
			smtpd_policy_conn_failed(k, strerror(err));
			return;
		}
		k->state = SMTPD_POLICY_CONN_BUSY;
	}
	if ((revents & EV_WRITE) && buf_len(&k->out) > 0) {
		n = buf_write_fd(&k->out, k->fd);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			smtpd_policy_conn_failed(k, strerror(errno));
			return;
		}
		if (buf_len(&k->out) == 0)
			(void)evloop_io_set(k->client->loop, &k->io, EV_READ);
	}
	if (revents & EV_READ)
		smtpd_policy_conn_read(k);
}

/* Put r on connection k (idle or new). */
static void
smtpd_policy_conn_take(struct smtpd_policy_conn *k, struct smtpd_policy_req *r)
{
	smtpd_policy_unqueue(r);
	evloop_timer_stop(k->client->loop, &k->idle);
	k->req = r;
	r->conn = k;
	buf_reset(&k->out);
	if (buf_append(&k->out, buf_data(&r->request), buf_len(&r->request)) != BUF_OK)
		panic("policy request larger than its buffer");
	if (k->state == SMTPD_POLICY_CONN_IDLE)
		k->state = SMTPD_POLICY_CONN_BUSY;
	(void)evloop_io_set(k->client->loop, &k->io, EV_READ | EV_WRITE);
}

static struct smtpd_policy_conn *
smtpd_policy_conn_open(struct smtpd_policy_client *c, char *why, size_t whysz)
{
	struct smtpd_policy_conn *k = NULL;
	size_t i;
	int fd;

	for (i = 0; i < SMTPD_POLICY_CONN_MAX && k == NULL; i++)
		if (c->conns[i].fd < 0)
			k = &c->conns[i];
	if (k == NULL)
		return NULL;
	fd = socket(c->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whysz, "%s: socket: %s", c->endpoint, strerror(errno));
		return NULL;
	}
	if (connect(fd, (const struct sockaddr *)&c->ss, c->sslen) < 0 && errno != EINPROGRESS) {
		snprintf(why, whysz, "%s: connect: %s", c->endpoint, strerror(errno));
		close(fd);
		return NULL;
	}
	if (evloop_io_add(c->loop, &k->io, fd, EV_WRITE, smtpd_policy_conn_io, k) < 0) {
		snprintf(why, whysz, "%s: epoll: %s", c->endpoint, strerror(errno));
		close(fd);
		return NULL;
	}
	k->fd = fd;
	k->state = SMTPD_POLICY_CONN_CONNECTING;
	k->born_ms = evloop_now(c->loop);
	k->served = 0;
	buf_init(&k->in, SMTPD_POLICY_REPLY_MAX + SMTPD_POLICY_READ_CHUNK);
	buf_init(&k->out, SMTPD_POLICY_REQUEST_MAX);
	return k;
}

/* Give waiting requests to free connections, opening new ones. */
static void
smtpd_policy_pump(struct smtpd_policy_client *c)
{
	char why[SMTPD_POLICY_TEXT_MAX];
	struct smtpd_policy_conn *k;
	struct smtpd_policy_req *r;
	size_t i;

	while ((r = c->head) != NULL) {
		k = NULL;
		for (i = 0; i < SMTPD_POLICY_CONN_MAX && k == NULL; i++)
			if (c->conns[i].fd >= 0 && c->conns[i].state == SMTPD_POLICY_CONN_IDLE)
				k = &c->conns[i];
		if (k == NULL) {
			why[0] = '\0';
			k = smtpd_policy_conn_open(c, why, sizeof(why));
			if (k == NULL && why[0] != '\0') {
				/* Cannot connect at all: every waiting request
				 * would fail the same way; fail this one, the
				 * next pump tries again for the others. */
				smtpd_policy_unqueue(r);
				if (c->head != NULL)
					evloop_timer_start(c->loop, &c->kick, 0);
				smtpd_policy_deliver(r, SMTPD_POLICY_FAILED, why);
				return;
			}
			if (k == NULL)
				return;		/* all connections busy */
		}
		smtpd_policy_conn_take(k, r);
	}
}

static void
smtpd_policy_kick(struct ev_timer *t)
{
	smtpd_policy_pump(t->arg);
}

static void
smtpd_policy_deadline(struct ev_timer *t)
{
	struct smtpd_policy_req *r = t->arg;
	char text[SMTPD_POLICY_TEXT_MAX];

	snprintf(text, sizeof(text), "%s: timeout after %lld ms", r->client->endpoint,
	    (long long)r->client->timeout_ms);
	if (r->conn != NULL) {
		r->conn->req = NULL;
		smtpd_policy_conn_close(r->conn);	/* its reply may still come */
		r->conn = NULL;
	}
	smtpd_policy_unqueue(r);
	smtpd_policy_finish(r, SMTPD_POLICY_TIMEOUT, text);
}

struct smtpd_policy_client *
smtpd_policy_client_new(struct evloop *loop, const char *endpoint, int64_t timeout_ms,
    int64_t idle_ms, int64_t ttl_ms, const char **why)
{
	struct smtpd_policy_client *c;
	size_t i;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		fatal("out of memory (policy client)");
	if (smtpd_policy_endpoint(endpoint, &c->ss, &c->sslen, why) < 0) {
		free(c);
		return NULL;
	}
	c->endpoint = strdup(endpoint);
	if (c->endpoint == NULL)
		fatal("out of memory (policy client)");
	c->loop = loop;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
	c->idle_ms = idle_ms > 0 ? idle_ms : 1;
	c->ttl_ms = ttl_ms > 0 ? ttl_ms : 1;
	evloop_timer_init(&c->kick, smtpd_policy_kick, c);
	for (i = 0; i < SMTPD_POLICY_CONN_MAX; i++) {
		c->conns[i].client = c;
		c->conns[i].fd = -1;
		evloop_timer_init(&c->conns[i].idle, smtpd_policy_conn_idle_timer, &c->conns[i]);
	}
	return c;
}

void
smtpd_policy_client_free(struct smtpd_policy_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < SMTPD_POLICY_CONN_MAX; i++) {
		if (c->conns[i].req != NULL)
			smtpd_policy_req_free(c->conns[i].req);
		smtpd_policy_conn_close(&c->conns[i]);
	}
	while (c->head != NULL)
		smtpd_policy_req_free(c->head);
	evloop_timer_stop(c->loop, &c->kick);
	free(c->endpoint);
	free(c);
}

const char *
smtpd_policy_client_endpoint(const struct smtpd_policy_client *c)
{
	return c->endpoint;
}

size_t
smtpd_policy_client_connections(const struct smtpd_policy_client *c)
{
	size_t i, n = 0;

	for (i = 0; i < SMTPD_POLICY_CONN_MAX; i++)
		n += c->conns[i].fd >= 0;
	return n;
}

struct smtpd_policy_req *
smtpd_policy_ask(struct smtpd_policy_client *c, const char *request, size_t len,
    smtpd_policy_cb *cb, void *arg)
{
	struct smtpd_policy_req *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		fatal("out of memory (policy request)");
	r->client = c;
	r->cb = cb;
	r->arg = arg;
	buf_init(&r->request, SMTPD_POLICY_REQUEST_MAX);
	if (buf_append(&r->request, request, len) != BUF_OK)
		panic("policy request of %zu bytes", len);
	r->prev = c->tail;
	if (c->tail != NULL)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	r->queued = true;
	evloop_timer_init(&r->deadline, smtpd_policy_deadline, r);
	evloop_timer_start(c->loop, &r->deadline, c->timeout_ms);
	if (!evloop_timer_active(&c->kick))
		evloop_timer_start(c->loop, &c->kick, 0);
	return r;
}

void
smtpd_policy_cancel(struct smtpd_policy_req *r)
{
	if (r == NULL)
		return;
	if (r->conn != NULL) {
		r->conn->req = NULL;
		smtpd_policy_conn_close(r->conn);
	}
	smtpd_policy_req_free(r);
}
