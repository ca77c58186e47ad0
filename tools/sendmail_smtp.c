/*
 * sendmail_smtp: the client end of the local submission socket. Returns
 * errors with a reason in c->err; never exits.
 */
#include "tools/sendmail_smtp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

/* ---- replies ---- */

/* One EHLO keyword line ("250-SIZE 10240000"): note what it offers. */
static void
sendmail_reply_keyword(struct sendmail_reply *r, const char *kw, size_t n)
{
	if (n >= 4 && strncasecmp(kw, "SIZE", 4) == 0 && (n == 4 || kw[4] == ' ')) {
		uint64_t v = 0;

		r->ext_size = true;
		for (size_t i = 5; i < n && kw[i] >= '0' && kw[i] <= '9'; i++)
			v = v > UINT64_MAX / 10 - 10 ? UINT64_MAX : v * 10 + (uint64_t)(kw[i] - '0');
		r->size_limit = v;
	} else if (n == 3 && strncasecmp(kw, "DSN", 3) == 0) {
		r->ext_dsn = true;
	} else if (n == 8 && strncasecmp(kw, "SMTPUTF8", 8) == 0) {
		r->ext_smtputf8 = true;
	} else if (n == 8 && strncasecmp(kw, "8BITMIME", 8) == 0) {
		r->ext_8bitmime = true;
	} else if (n == 10 && strncasecmp(kw, "PIPELINING", 10) == 0) {
		r->ext_pipelining = true;
	}
}

ssize_t
sendmail_reply_parse(const char *p, size_t n, struct sendmail_reply *r)
{
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	for (;;) {
		const char *lf = memchr(p + off, '\n', n - off);
		size_t start = off, len, keep;
		int code;

		if (lf == NULL)
			return 0;
		len = (size_t)(lf - (p + off));
		if (len > 0 && p[off + len - 1] == '\r')
			len--;
		/* RFC 5321 4.2: three digits, then ' ' (last line) or '-'. */
		if (len < 3 || p[off] < '2' || p[off] > '5' || p[off + 1] < '0' || p[off + 1] > '9' ||
		    p[off + 2] < '0' || p[off + 2] > '9' || (len > 3 && p[off + 3] != ' ' &&
		    p[off + 3] != '-'))
			return -1;
		code = (p[off] - '0') * 100 + (p[off + 1] - '0') * 10 + (p[off + 2] - '0');
		if ((r->code != 0 && code != r->code) || r->lines >= SENDMAIL_REPLY_LINES_MAX)
			return -1;
		r->code = code;
		r->lines++;
		if (r->lines > 1 && len > 4)
			sendmail_reply_keyword(r, p + off + 4, len - 4);
		keep = len < sizeof(r->last) - 1 ? len : sizeof(r->last) - 1;
		memcpy(r->last, p + off, keep);
		r->last[keep] = '\0';
		/* Control characters of a reply never reach the terminal. */
		for (size_t i = 0; i < keep; i++)
			if ((unsigned char)r->last[i] < 0x20 || r->last[i] == 0x7f)
				r->last[i] = '?';
		off = (size_t)(lf - p) + 1;
		if (len == 3 || p[start + 3] == ' ')
			return (ssize_t)off;
	}
}

int
sendmail_reply_exit(enum sendmail_stage stage, int code)
{
	if (code == 0)
		return EX_TEMPFAIL;	/* no verdict: nothing was accepted */
	if (code >= 400 && code < 500)
		return EX_TEMPFAIL;
	if (code < 500 || code > 599)
		return EX_PROTOCOL;	/* a 2xx or 3xx where it makes no sense */
	switch (stage) {
	case SENDMAIL_STAGE_RCPT:
		return EX_NOUSER;
	case SENDMAIL_STAGE_MAIL:
	case SENDMAIL_STAGE_DOT:
		return EX_DATAERR;
	case SENDMAIL_STAGE_GREETING:
	case SENDMAIL_STAGE_EHLO:
	case SENDMAIL_STAGE_DATA:
		break;
	}
	return EX_UNAVAILABLE;
}

void
sendmail_xtext(struct buf *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 33 || *p > 126 || *p == '+' || *p == '=')
			buf_append_printf(out, "+%02X", *p);
		else
			buf_append_char(out, (char)*p);
	}
}

/* ---- the connection ---- */

static void
sendmail_smtp_timeout(int fd, int optname, int seconds)
{
	struct timeval tv = { seconds, 0 };

	(void)setsockopt(fd, SOL_SOCKET, optname, &tv, sizeof(tv));
}

int
sendmail_smtp_connect(struct sendmail_smtp *c, const char *path, bool verbose)
{
	struct sockaddr_un sun;
	int e;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->verbose = verbose;
	buf_init(&c->in, SENDMAIL_REPLY_IN_MAX);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(c->err, sizeof(c->err), "%s: path too long for a socket", path);
		return EX_SOFTWARE;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(c->err, sizeof(c->err), "socket: %s", strerror(errno));
		return EX_OSERR;
	}
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		e = errno;
		close(c->fd);
		c->fd = -1;
		if (e == ENOENT || e == ECONNREFUSED) {
			snprintf(c->err, sizeof(c->err), "the mail system is not running: cannot "
			         "connect to %s: %s", path, strerror(e));
			return EX_TEMPFAIL;
		}
		snprintf(c->err, sizeof(c->err), "cannot connect to %s: %s", path, strerror(e));
		return e == EACCES || e == EPERM ? EX_NOPERM : EX_OSERR;
	}
	sendmail_smtp_timeout(c->fd, SO_SNDTIMEO, SENDMAIL_TIMEOUT_S);
	return 0;
}

void
sendmail_smtp_close(struct sendmail_smtp *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
}

int
sendmail_smtp_write(struct sendmail_smtp *c, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(c->err, sizeof(c->err), "lost connection to the mail system: %s",
			         w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? "timeout" :
			         strerror(errno));
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int
sendmail_smtp_command(struct sendmail_smtp *c, const char *line)
{
	if (c->verbose)
		fprintf(stderr, ">>> %s\n", line);
	if (sendmail_smtp_write(c, line, strlen(line)) < 0 || sendmail_smtp_write(c, "\r\n", 2) < 0)
		return -1;
	return 0;
}

int
sendmail_smtp_reply(struct sendmail_smtp *c, struct sendmail_reply *r, int timeout_s)
{
	sendmail_smtp_timeout(c->fd, SO_RCVTIMEO, timeout_s);
	for (;;) {
		ssize_t used = sendmail_reply_parse(buf_data(&c->in), buf_len(&c->in), r), got;

		if (used > 0) {
			if (c->verbose) {
				/* Every line of the reply, as the server sent it. */
				const char *d = buf_data(&c->in);

				fprintf(stderr, "<<< %.*s", (int)used, d);
			}
			buf_consume(&c->in, (size_t)used);
			return 0;
		}
		if (used < 0) {
			snprintf(c->err, sizeof(c->err), "the mail system's reply is not SMTP");
			r->code = -2;
			return -1;
		}
		got = buf_read_fd(&c->in, c->fd, 4096);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			snprintf(c->err, sizeof(c->err), "lost connection to the mail system%s%s",
			         got < 0 ? ": " : "", got < 0 ? (errno == EAGAIN ? "timeout" :
			         strerror(errno)) : "");
			r->code = 0;
			return -1;
		}
	}
}
