/*
 * smtpd_auth_dovecot: the Dovecot auth-client back end (the header says
 * what the protocol is and how failures are contained).
 *
 * Ownership: the back end owns its connection, buffers and the list of
 * its requests; a request (struct dc_request, an exchange's impl) lives
 * from start to forget. Every byte from the socket goes through the line
 * reader (bounded) and smtpd_auth_dovecot_parse(); nothing here trusts
 * the server beyond that.
 */
#include "smtpd/smtpd_auth_dovecot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/lineread.h"
#include "common/log.h"
#include "smtpd/smtpd_auth_impl.h"

/* What we read ahead of the parser, and requests queued to the server
 * (each at most one client line plus the fields around it). */
#define DC_IN_MAX (4 * SMTPD_AUTH_DOVECOT_LINE_MAX)
#define DC_OUT_MAX (1024u * 1024)
/* Decimal digits of a request id (an unsigned). */
#define DC_ID_DIGITS_MAX 10
#define DC_READ_CHUNK 16384

enum dc_state { DC_DOWN, DC_HANDSHAKE, DC_READY };

struct dc_request {
	struct smtpd_auth *a;
	struct dc_request *prev, *next;
	unsigned id;
	bool sent;		/* the AUTH line went out */
	char *initial;		/* AUTH not yet sent: the initial response (or NULL) */
	bool has_initial;
	bool final_ok;		/* OK came with data: sent as a challenge first */
	char user[SMTPD_AUTH_USERNAME_MAX + 1];
};

struct dc_backend {
	struct smtpd_auth_backend base;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	enum dc_state state;
	int fd;
	struct ev_io io;
	struct ev_timer handshake;
	struct buf in, out;
	struct lineread lr;
	unsigned next_id;
	struct dc_request *reqs;
	bool got_version, got_mech;
	/* The mechanisms: those of the last good handshake (kept while the
	 * server is away, so EHLO goes on offering them), and those of the
	 * handshake in progress. */
	char mechs[SMTPD_AUTH_MECHLIST_MAX + 1];
	char new_mechs[SMTPD_AUTH_MECHLIST_MAX + 1];
	int64_t last_connect;	/* evloop_now() of the last attempt */
};

/* A connection attempt triggered by EHLO (mechanisms wanted) waits this
 * long after the previous one; AUTH itself always tries at once. */
#define DC_RECONNECT_MS 1000

static struct dc_backend *
dc_of(struct smtpd_auth_backend *b)
{
	return (struct dc_backend *)b;
}

/* ---- the parser ---- */

struct dc_field {
	const char *p;
	size_t len;
};

static size_t
dc_split(const char *p, size_t len, struct dc_field *f, size_t max)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len && n < max; i++) {
		if (i == len || p[i] == '\t') {
			f[n].p = p + start;
			f[n].len = i - start;
			n++;
			start = i + 1;
		}
	}
	return n;
}

static bool
dc_word(const struct dc_field *f, const char *w)
{
	return f->len == strlen(w) && memcmp(f->p, w, f->len) == 0;
}

/* "name=value": the value when f starts with prefix "name=". */
static bool
dc_param(const struct dc_field *f, const char *prefix, const char **v, size_t *vlen)
{
	size_t n = strlen(prefix);

	if (f->len < n || memcmp(f->p, prefix, n) != 0)
		return false;
	*v = f->p + n;
	*vlen = f->len - n;
	return true;
}

/* 1..max decimal digits, no sign, no overflow of unsigned long. */
static bool
dc_number(const struct dc_field *f, size_t max_digits, unsigned long limit, unsigned long *out)
{
	unsigned long v = 0;

	if (f->len == 0 || f->len > max_digits)
		return false;
	for (size_t i = 0; i < f->len; i++) {
		unsigned d;

		if (f->p[i] < '0' || f->p[i] > '9')
			return false;
		d = (unsigned)(f->p[i] - '0');
		if (v > (limit - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static void
dc_bad(struct smtpd_auth_dovecot_line *out, const char *why)
{
	out->kind = SMTPD_AUTH_DOVECOT_BAD;
	out->why = why;
}

/* MECH name [flags]: RFC 4422 section 3.1 names only. */
static void
dc_parse_mech(const struct dc_field *f, size_t n, struct smtpd_auth_dovecot_line *out)
{
	if (n < 2 || f[1].len == 0 || f[1].len > SMTPD_AUTH_MECH_MAX)
		return dc_bad(out, "MECH without a valid name");
	for (size_t i = 0; i < f[1].len; i++) {
		char c = f[1].p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return dc_bad(out, "MECH without a valid name");
	}
	out->kind = SMTPD_AUTH_DOVECOT_MECH;
	out->mech = f[1].p;
	out->mech_len = f[1].len;
	for (size_t i = 2; i < n; i++) {
		if (dc_word(&f[i], "anonymous"))
			out->anonymous = true;
		else if (dc_word(&f[i], "private"))
			out->private_mech = true;
	}
}

/* OK / CONT / FAIL id ...: the id, then the kind's own fields. */
static void
dc_parse_reply(enum smtpd_auth_dovecot_kind kind, const struct dc_field *f, size_t n,
               struct smtpd_auth_dovecot_line *out)
{
	unsigned long id;
	const char *v;
	size_t vlen;

	if (n < 2 || !dc_number(&f[1], DC_ID_DIGITS_MAX, 0xffffffffUL, &id) || id == 0)
		return dc_bad(out, "reply without a valid request id");
	out->kind = kind;
	out->id = (unsigned)id;
	if (kind == SMTPD_AUTH_DOVECOT_CONT) {
		/* The challenge is a required parameter; the session checks it
		 * is base64. Missing: the request fails, the line parses. */
		if (n >= 3) {
			out->data = f[2].p;
			out->data_len = f[2].len;
		}
		return;
	}
	for (size_t i = 2; i < n; i++) {
		if (dc_param(&f[i], "user=", &v, &vlen)) {
			out->user = v;
			out->user_len = vlen;
		} else if (dc_param(&f[i], "reason=", &v, &vlen)) {
			out->reason = v;
			out->reason_len = vlen;
		} else if (dc_param(&f[i], "resp=", &v, &vlen)) {
			out->data = v;
			out->data_len = vlen;
		} else if (dc_word(&f[i], "temp") || dc_word(&f[i], "code=temp_fail")) {
			out->temp = true;
		}
	}
}

void
smtpd_auth_dovecot_parse(const char *p, size_t len, struct smtpd_auth_dovecot_line *out)
{
	struct dc_field f[SMTPD_AUTH_DOVECOT_FIELDS_MAX];
	size_t n;

	memset(out, 0, sizeof(*out));
	out->kind = SMTPD_AUTH_DOVECOT_OTHER;
	n = dc_split(p, len, f, SMTPD_AUTH_DOVECOT_FIELDS_MAX);
	if (dc_word(&f[0], "VERSION")) {
		if (n < 3 || !dc_number(&f[1], 9, 0xffffffffUL, &out->major) ||
		    !dc_number(&f[2], 9, 0xffffffffUL, &out->minor))
			return dc_bad(out, "malformed VERSION");
		out->kind = SMTPD_AUTH_DOVECOT_VERSION;
	} else if (dc_word(&f[0], "MECH")) {
		dc_parse_mech(f, n, out);
	} else if (dc_word(&f[0], "SPID")) {
		out->kind = SMTPD_AUTH_DOVECOT_SPID;
	} else if (dc_word(&f[0], "DONE")) {
		out->kind = SMTPD_AUTH_DOVECOT_DONE;
	} else if (dc_word(&f[0], "OK")) {
		dc_parse_reply(SMTPD_AUTH_DOVECOT_OK, f, n, out);
	} else if (dc_word(&f[0], "CONT")) {
		dc_parse_reply(SMTPD_AUTH_DOVECOT_CONT, f, n, out);
	} else if (dc_word(&f[0], "FAIL")) {
		dc_parse_reply(SMTPD_AUTH_DOVECOT_FAIL, f, n, out);
	}
}

long
smtpd_auth_dovecot_unescape(const char *p, size_t len, char *dst, size_t dstsz)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\001' && i + 1 < len) {
			switch (p[++i]) {
			case '0': c = '\0'; break;
			case '1': c = '\001'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'n': case 'l': c = '\n'; break;
			default: c = p[i]; break;
			}
		}
		if (c == '\0' || o + 1 >= dstsz)
			return -1;
		dst[o++] = c;
	}
	if (dstsz == 0)
		return -1;
	dst[o] = '\0';
	return (long)o;
}

/* ---- requests ---- */

static struct dc_request *
dc_find(struct dc_backend *d, unsigned id)
{
	for (struct dc_request *r = d->reqs; r != NULL; r = r->next)
		if (r->sent && r->id == id)
			return r;
	return NULL;
}

static void
dc_unlink(struct dc_backend *d, struct dc_request *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else if (d->reqs == r)
		d->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

/* Queue the AUTH line of r. false when the queue is full. */
static bool
dc_send_auth(struct dc_backend *d, struct dc_request *r)
{
	struct smtpd_auth *a = r->a;
	size_t mark = buf_len(&d->out);
	enum buf_result res;

	/* Postfix's fields (xsasl_dovecot_server.c), and the ports Dovecot
	 * also logs. "secured" tells Dovecot the channel is encrypted;
	 * there is no "no-penalty": failed clients should be slowed. */
	res = buf_append_printf(&d->out, "AUTH\t%u\t%s\tservice=smtp\tnologin", r->id, a->mech);
	if (res == BUF_OK && strcmp(a->client_addr, "unknown") != 0)
		res = buf_append_printf(&d->out, "\tlip=%s\trip=%s\tlport=%u\trport=%u",
		                        a->server_addr, a->client_addr, a->server_port, a->client_port);
	if (res == BUF_OK && a->tls)
		res = buf_append_str(&d->out, "\tsecured");
	if (res == BUF_OK && r->has_initial)
		res = buf_append_printf(&d->out, "\tresp=%s", r->initial);
	if (res == BUF_OK)
		res = buf_append_char(&d->out, '\n');
	if (res != BUF_OK) {
		buf_truncate(&d->out, mark);
		return false;
	}
	r->sent = true;
	if (r->initial != NULL) {
		explicit_bzero(r->initial, strlen(r->initial));
		free(r->initial);
		r->initial = NULL;
	}
	return true;
}

static void dc_disconnect(struct dc_backend *d, const char *why);
static void dc_update_events(struct dc_backend *d);

/* Answer r with a temporary failure (from the loop: r's session waits). */
static void
dc_fail_request(struct dc_backend *d, struct dc_request *r, const char *why)
{
	struct smtpd_auth *a = r->a;

	dc_unlink(d, r);
	r->sent = false;
	smtpd_auth_finish(a, SMTPD_AUTH_TEMPFAIL, why, strlen(why));
}

/* ---- the connection ---- */

static void dc_io(struct ev_io *io, unsigned revents);

static void
dc_handshake_timeout(struct ev_timer *t)
{
	struct dc_backend *d = t->arg;

	d->base.refs++;
	dc_disconnect(d, "handshake timed out");
	smtpd_auth_backend_unref(&d->base);
}

/* Connect and send our half of the handshake. false when it failed now. */
static bool
dc_connect(struct dc_backend *d)
{
	struct sockaddr_un sun;
	int fd;

	d->last_connect = evloop_now(d->base.loop);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, d->path, strlen(d->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warning("SASL: cannot make a socket for Dovecot: %s", strerror(errno));
		return false;
	}
	/* A unix-domain connect completes at once or fails (EAGAIN: the
	 * server's backlog is full); it never waits. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		log_warning("SASL: Connect to Dovecot auth socket '%s' failed: %s", d->path,
		            strerror(errno));
		close(fd);
		return false;
	}
	if (evloop_io_add(d->base.loop, &d->io, fd, EV_READ, dc_io, d) < 0) {
		log_warning("SASL: cannot watch the Dovecot auth socket: %s", strerror(errno));
		close(fd);
		return false;
	}
	d->fd = fd;
	d->state = DC_HANDSHAKE;
	d->got_version = d->got_mech = false;
	d->new_mechs[0] = '\0';
	buf_reset(&d->in);
	buf_reset(&d->out);
	lineread_init(&d->lr, SMTPD_AUTH_DOVECOT_LINE_MAX);
	(void)buf_append_printf(&d->out, "VERSION\t%d\t2\nCPID\t%ld\n", SMTPD_AUTH_DOVECOT_MAJOR,
	                        (long)getpid());
	evloop_timer_start(d->base.loop, &d->handshake, SMTPD_AUTH_DOVECOT_HANDSHAKE_MS);
	dc_update_events(d);
	return true;
}

/* Drop the connection; every request that waits on it fails (454). */
static void
dc_disconnect(struct dc_backend *d, const char *why)
{
	struct dc_request *r, *list;

	if (d->state != DC_DOWN) {
		log_warning("SASL: Dovecot auth socket %s: %s", d->path, why);
		evloop_io_del(d->base.loop, &d->io);
		close(d->fd);
		d->fd = -1;
		d->state = DC_DOWN;
	}
	evloop_timer_stop(d->base.loop, &d->handshake);
	buf_reset(&d->in);
	buf_reset(&d->out);
	/* Detach the list first: a session resumed by its answer may start
	 * a new exchange (pipelined AUTH), which must not be failed here. */
	list = d->reqs;
	d->reqs = NULL;
	while ((r = list) != NULL) {
		list = r->next;
		if (list != NULL)
			list->prev = NULL;
		r->next = NULL;
		if (r->a->waiting) {
			dc_fail_request(d, r, "Connection lost to authentication server");
		} else {
			/* Between a challenge and the client's response: the
			 * response will find the request unsent (dc_step). */
			r->sent = false;
		}
	}
}

static void
dc_update_events(struct dc_backend *d)
{
	unsigned want = EV_READ;

	if (d->state == DC_DOWN)
		return;
	if (buf_len(&d->out) > 0)
		want |= EV_WRITE;
	if (evloop_io_set(d->base.loop, &d->io, want) < 0)
		dc_disconnect(d, strerror(errno));
}

static void
dc_mech_add(struct dc_backend *d, const struct smtpd_auth_dovecot_line *l)
{
	size_t have = strlen(d->new_mechs);

	/* Postfix skips "private" mechanisms; anonymous ones are refused as
	 * its default smtpd_sasl_security_options = noanonymous does. */
	if (l->private_mech || l->anonymous)
		return;
	if (have + 1 + l->mech_len >= sizeof(d->new_mechs))
		return;		/* SMTPD_AUTH_MECHS_MAX reached: the rest is dropped */
	if (have > 0)
		d->new_mechs[have++] = ' ';
	memcpy(d->new_mechs + have, l->mech, l->mech_len);
	d->new_mechs[have + l->mech_len] = '\0';
}

/* A handshake line. false when the connection must go. */
static bool
dc_handshake_line(struct dc_backend *d, const struct smtpd_auth_dovecot_line *l)
{
	struct dc_request *r;

	switch (l->kind) {
	case SMTPD_AUTH_DOVECOT_VERSION:
		if (l->major != SMTPD_AUTH_DOVECOT_MAJOR) {
			log_warning("SASL: Dovecot protocol version mismatch (%lu vs. %d)", l->major,
			            SMTPD_AUTH_DOVECOT_MAJOR);
			return false;
		}
		d->got_version = true;
		return true;
	case SMTPD_AUTH_DOVECOT_MECH:
		d->got_mech = true;
		dc_mech_add(d, l);
		return true;
	case SMTPD_AUTH_DOVECOT_SPID:
		/* auth-master and auth-userdb send VERSION and SPID only: no
		 * MECH before SPID means the wrong socket (as Postfix checks). */
		if (!d->got_mech) {
			log_warning("SASL: %s is not an auth-client socket (no MECH before SPID)",
			            d->path);
			return false;
		}
		return true;
	case SMTPD_AUTH_DOVECOT_DONE:
		if (!d->got_version || !d->got_mech) {
			log_warning("SASL: Dovecot handshake ended without %s",
			            d->got_version ? "mechanisms" : "VERSION");
			return false;
		}
		memcpy(d->mechs, d->new_mechs, sizeof(d->mechs));
		if (d->mechs[0] == '\0')
			log_warning("SASL: Dovecot offers no mechanism we may use");
		d->state = DC_READY;
		evloop_timer_stop(d->base.loop, &d->handshake);
		for (r = d->reqs; r != NULL; r = r->next)
			if (!r->sent && !dc_send_auth(d, r))
				return false;
		return true;
	case SMTPD_AUTH_DOVECOT_OTHER:
		return true;	/* CUID, COOKIE, anything new */
	default:
		log_warning("SASL: unexpected line from Dovecot during the handshake");
		return false;
	}
}

/* A reply to a request: hand it to its exchange. */
static void
dc_reply_line(struct dc_backend *d, const struct smtpd_auth_dovecot_line *l)
{
	struct dc_request *r = dc_find(d, l->id);
	char user[SMTPD_AUTH_USERNAME_MAX + 1], reason[SMTPD_AUTH_REASON_MAX + 1];
	long ulen = -1, rlen = -1;

	if (r == NULL || !r->a->waiting) {
		/* Its exchange timed out, the client went away, or the server
		 * answered twice. */
		log_debug("SASL: Dovecot reply for request %u that nobody waits for", l->id);
		return;
	}
	if (l->user != NULL)
		ulen = smtpd_auth_dovecot_unescape(l->user, l->user_len, user, sizeof(user));
	if (l->reason != NULL)
		rlen = smtpd_auth_dovecot_unescape(l->reason, l->reason_len, reason, sizeof(reason));
	if (l->kind == SMTPD_AUTH_DOVECOT_CONT) {
		if (l->data == NULL)
			return dc_fail_request(d, r, "Authentication backend error (CONT without data)");
		smtpd_auth_finish(r->a, SMTPD_AUTH_CONTINUE, l->data, l->data_len);
	} else if (l->kind == SMTPD_AUTH_DOVECOT_OK) {
		dc_unlink(d, r);
		r->sent = false;
		if (ulen <= 0) {
			smtpd_auth_finish(r->a, SMTPD_AUTH_TEMPFAIL,
			                  "Authentication backend error (no valid user= in OK)", 50);
		} else if (l->data != NULL && l->data_len > 0) {
			/* RFC 4954 section 4: data with success goes out as a
			 * last challenge; the client answers it with an empty line. */
			memcpy(r->user, user, (size_t)ulen + 1);
			r->final_ok = true;
			smtpd_auth_finish(r->a, SMTPD_AUTH_CONTINUE, l->data, l->data_len);
		} else {
			smtpd_auth_finish(r->a, SMTPD_AUTH_OK, user, (size_t)ulen);
		}
	} else {
		dc_unlink(d, r);
		r->sent = false;
		smtpd_auth_finish(r->a, l->temp ? SMTPD_AUTH_TEMPFAIL : SMTPD_AUTH_FAIL,
		                  rlen > 0 ? reason : NULL, rlen > 0 ? (size_t)rlen : 0);
	}
}

/* Parse what was read. false when the connection was dropped. */
static bool
dc_read_lines(struct dc_backend *d)
{
	struct lineread_line line;
	struct smtpd_auth_dovecot_line l;
	enum lineread_result res;

	while ((res = lineread_next(&d->lr, &d->in, &line)) != LINEREAD_NEED_MORE) {
		if (res == LINEREAD_TOO_LONG) {
			dc_disconnect(d, "line too long");
			return false;
		}
		smtpd_auth_dovecot_parse(line.p, line.len, &l);
		lineread_consume(&d->lr, &d->in);
		if (l.kind == SMTPD_AUTH_DOVECOT_BAD) {
			dc_disconnect(d, l.why);
			return false;
		}
		if (d->state == DC_HANDSHAKE) {
			if (!dc_handshake_line(d, &l)) {
				dc_disconnect(d, "handshake failed");
				return false;
			}
		} else if (l.kind == SMTPD_AUTH_DOVECOT_OK || l.kind == SMTPD_AUTH_DOVECOT_CONT ||
		           l.kind == SMTPD_AUTH_DOVECOT_FAIL) {
			dc_reply_line(d, &l);
		}
	}
	return true;
}

static void
dc_io_work(struct dc_backend *d, unsigned revents)
{
	ssize_t n;

	if ((revents & EV_WRITE) && buf_len(&d->out) > 0) {
		/* send(), not write(): a server that hung up is an error
		 * here, not a SIGPIPE. */
		n = send(d->fd, buf_data(&d->out), buf_len(&d->out), MSG_NOSIGNAL);
		if (n > 0)
			buf_consume(&d->out, (size_t)n);
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			return dc_disconnect(d, strerror(errno));
	}
	if (revents & EV_READ) {
		n = buf_read_fd(&d->in, d->fd, DC_READ_CHUNK);
		if (n == 0)
			return dc_disconnect(d, "connection closed by the server");
		if (n < 0 && errno != EAGAIN && errno != EINTR && errno != ENOBUFS)
			return dc_disconnect(d, strerror(errno));
		if (!dc_read_lines(d))
			return;
	}
	dc_update_events(d);
}

/* Sessions may end in the callbacks this runs and drop the last
 * references to a back end a reload replaced: hold one meanwhile. */
static void
dc_io(struct ev_io *io, unsigned revents)
{
	struct dc_backend *d = io->arg;

	d->base.refs++;
	dc_io_work(d, revents);
	smtpd_auth_backend_unref(&d->base);
}

/* ---- the back-end operations ---- */

static const char *
dc_mechs(struct smtpd_auth_backend *b)
{
	struct dc_backend *d = dc_of(b);

	/* Nobody AUTHs while the mechanisms are unknown, so EHLO is what
	 * brings a lost server back (a Dovecot started after us). */
	if (d->state == DC_DOWN &&
	    evloop_now(b->loop) - d->last_connect >= DC_RECONNECT_MS)
		(void)dc_connect(d);
	return d->mechs;
}

static void
dc_start(struct smtpd_auth *a, const char *mech, const char *initial)
{
	struct dc_backend *d = dc_of(a->b);
	struct dc_request *r = calloc(1, sizeof(*r));

	(void)mech;
	if (r == NULL)
		fatal("out of memory (auth)");
	r->a = a;
	a->impl = r;
	if (++d->next_id == 0)
		d->next_id = 1;
	r->id = d->next_id;
	r->has_initial = initial != NULL;
	if (initial != NULL && (r->initial = strdup(initial)) == NULL)
		fatal("out of memory (auth)");
	if (d->state == DC_DOWN && !dc_connect(d))
		return smtpd_auth_post(a, SMTPD_AUTH_TEMPFAIL, "Can't connect to authentication server",
		                       38);
	r->next = d->reqs;
	if (d->reqs != NULL)
		d->reqs->prev = r;
	d->reqs = r;
	if (d->state == DC_READY && !dc_send_auth(d, r)) {
		dc_unlink(d, r);
		return smtpd_auth_post(a, SMTPD_AUTH_TEMPFAIL, "authentication server busy", 26);
	}
	dc_update_events(d);
}

static void
dc_step(struct smtpd_auth *a, const char *response)
{
	struct dc_backend *d = dc_of(a->b);
	struct dc_request *r = a->impl;

	if (r->final_ok) {
		r->final_ok = false;
		if (response[0] != '\0')
			return smtpd_auth_post(a, SMTPD_AUTH_FAIL, "unexpected data after success", 29);
		return smtpd_auth_post(a, SMTPD_AUTH_OK, r->user, strlen(r->user));
	}
	/* The server went away between challenge and response. */
	if (!r->sent || d->state != DC_READY)
		return smtpd_auth_post(a, SMTPD_AUTH_TEMPFAIL,
		                       "Connection lost to authentication server", 40);
	if (buf_append_printf(&d->out, "CONT\t%u\t%s\n", r->id, response) != BUF_OK)
		return smtpd_auth_post(a, SMTPD_AUTH_TEMPFAIL, "authentication server busy", 26);
	dc_update_events(d);
}

static void
dc_forget(struct smtpd_auth *a)
{
	struct dc_backend *d = dc_of(a->b);
	struct dc_request *r = a->impl;

	if (r == NULL)
		return;
	/* Dovecot is not told (the protocol has no cancel before 2.4): its
	 * late answer finds no request and is dropped. */
	dc_unlink(d, r);
	if (r->initial != NULL) {
		explicit_bzero(r->initial, strlen(r->initial));
		free(r->initial);
	}
	explicit_bzero(r, sizeof(*r));
	free(r);
	a->impl = NULL;
}

static void
dc_free(struct smtpd_auth_backend *b)
{
	struct dc_backend *d = dc_of(b);

	if (d->reqs != NULL)
		panic("smtpd_auth_dovecot: freed with live requests");
	if (d->state != DC_DOWN) {
		evloop_io_del(b->loop, &d->io);
		close(d->fd);
	}
	evloop_timer_stop(b->loop, &d->handshake);
	buf_free(&d->in);
	buf_free(&d->out);
	free(d);
}

static const struct smtpd_auth_ops dc_ops = {
	.name = "dovecot",
	.mechs = dc_mechs,
	.start = dc_start,
	.step = dc_step,
	.forget = dc_forget,
	.free = dc_free,
};

struct smtpd_auth_backend *
smtpd_auth_dovecot_new(struct evloop *loop, const char *socket_path, const char *setting,
                       char *err, size_t errsz)
{
	struct dc_backend *d;

	if (strlen(socket_path) >= sizeof(d->path)) {
		snprintf(err, errsz, "Dovecot auth socket path too long: %s", socket_path);
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		fatal("out of memory (auth)");
	smtpd_auth_backend_init(&d->base, &dc_ops, loop, setting);
	snprintf(d->path, sizeof(d->path), "%s", socket_path);
	d->fd = -1;
	d->state = DC_DOWN;
	buf_init(&d->in, DC_IN_MAX);
	buf_init(&d->out, DC_OUT_MAX);
	evloop_timer_init(&d->handshake, dc_handshake_timeout, d);
	/* Learn the mechanisms now; a server that is not up yet is tried
	 * again when they are needed (chasquid's start-order pitfall). */
	d->last_connect = evloop_now(loop) - DC_RECONNECT_MS;
	(void)dc_connect(d);
	return &d->base;
}
