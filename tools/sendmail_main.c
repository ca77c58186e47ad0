/*
 * sendmail (mailq, newaliases): the sendmail-compatible command line of
 * tern. doc/sendmail.md is the user's side; interface.md the promise.
 *
 *   sendmail [flags] [address ...]   read a message on stdin and queue it
 *   sendmail -bs                     SMTP on stdin/stdout
 *   sendmail -bp, mailq              list the queue
 *   sendmail -bi, newaliases         rebuild alias_maps
 *   sendmail -q, -qR SITE, -qI ID    deliver the queue (or part of it) now
 *
 * It runs as the calling user, with no privileges: a message goes to
 * smtpd over the local submission socket, queue_directory/public/sendmail,
 * in ESMTP; smtpd learns the uid from the kernel. It exits 0 only after
 * smtpd's 250 to the final dot, which smtpd gives once the message is
 * fsync'd and its envelope committed. When ternd is not running, sendmail
 * fails with EX_TEMPFAIL and says so (doc/sendmail.md: why no maildrop).
 *
 * The message is streamed: only the header section is held in memory
 * (SENDMAIL_HEADERS_MAX), for -t and for the headers it completes.
 *
 * Errors: one line "sendmail: reason" on stderr and a sysexits.h status.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/mailaddr.h"
#include "config/config.h"
#include "config/map.h"
#include "queue/agent_proto.h"
#include "queue/qmgr_client.h"
#include "tools/masterpid.h"
#include "tools/qlist.h"
#include "tools/sendmail_args.h"
#include "tools/sendmail_headers.h"
#include "tools/sendmail_smtp.h"
#include "tools/ternctl_common.h"

#define SENDMAIL_CONFIG_DEFAULT "/etc/tern/tern.conf"
/* Bytes read from stdin at a time. */
#define SENDMAIL_READ_CHUNK (64u * 1024)
/* Most config error text we print. */
#define SENDMAIL_CONFIG_ERRORS_MAX (64u * 1024)
/* RCPT commands sent before their replies are read (PIPELINING, RFC
 * 2920): bounded, so neither side's buffers can fill and deadlock. */
#define SENDMAIL_RCPT_BATCH 100
/* How long `sendmail -q` waits for qmgr's answer, ms. */
#define SENDMAIL_FLUSH_TIMEOUT_MS 30000
/* Room for one formatted command (a path of 256 plus parameters). */
#define SENDMAIL_COMMAND_MAX 2048

static const char *sendmail_prog = "sendmail";

static int __attribute__((format(printf, 2, 3)))
sendmail_fail(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", sendmail_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

/* ---- configuration ---- */

/* -C FILE, else $TERN_CONFIG, else /etc/tern/tern.conf when it exists,
 * else the development defaults. NULL with *status on failure. */
static struct config *
sendmail_config(const char *opt_c, int *status)
{
	const char *path = opt_c, *env = getenv("TERN_CONFIG");
	struct config *cfg;
	struct buf errors;

	if (path == NULL && env != NULL && env[0] != '\0')
		path = env;
	if (path == NULL && access(SENDMAIL_CONFIG_DEFAULT, F_OK) == 0)
		path = SENDMAIL_CONFIG_DEFAULT;
	if (path != NULL && access(path, R_OK) < 0) {
		*status = sendmail_fail(EX_NOINPUT, "cannot read the configuration %s: %s", path,
		                        strerror(errno));
		return NULL;
	}
	buf_init(&errors, SENDMAIL_CONFIG_ERRORS_MAX);
	cfg = config_load(path, &errors);
	if (cfg == NULL) {
		fwrite(buf_data(&errors), 1, buf_len(&errors), stderr);
		*status = EX_CONFIG;
	}
	buf_free(&errors);
	return cfg;
}

/* ---- who is sending ---- */

struct sendmail_who {
	char login[256];
	char sender[SENDMAIL_ADDR_MAX + 256];	/* envelope sender, qualified; "" = <> */
	char full_name[256];
	char unique[64];
};

/* An address as the envelope will carry it: qualified with myorigin and
 * checked by the one envelope-address parser smtpd also uses. *utf8 is
 * set for a non-ASCII address (SMTPUTF8). 0 or -1 with why. */
static int
sendmail_addr_check(const char *addr, const char *origin, char *dst, size_t dstsz, bool *utf8,
                    const char **why)
{
	char path[SENDMAIL_ADDR_MAX + 300];
	struct mailaddr ma;
	size_t used;

	if (sendmail_addr_qualify(addr, origin, dst, dstsz) < 0) {
		*why = "address too long";
		return -1;
	}
	snprintf(path, sizeof(path), "<%s>", dst);
	if (mailaddr_parse_path(path, strlen(path), MAILADDR_ALLOW_UTF8, &ma, &used, why) !=
	    MAILADDR_OK || used != strlen(path))
		return -1;
	if (ma.utf8)
		*utf8 = true;
	return 0;
}

static int
sendmail_who(const struct sendmail_args *a, const struct config *cfg, struct sendmail_who *w,
             bool *utf8)
{
	const char *origin = config_str(cfg, P_MYORIGIN), *name, *why = NULL;
	struct passwd *pw;
	unsigned rnd = 0;

	memset(w, 0, sizeof(*w));
	errno = 0;
	pw = getpwuid(getuid());
	if (pw == NULL)
		return sendmail_fail(EX_NOUSER, "no login name for uid %lu%s%s",
		                     (unsigned long)getuid(), errno ? ": " : "",
		                     errno ? strerror(errno) : "");
	snprintf(w->login, sizeof(w->login), "%s", pw->pw_name);
	/* Postfix's order: -F, then $NAME, then the gecos field. */
	name = a->full_name != NULL ? a->full_name : getenv("NAME");
	if (name != NULL)
		snprintf(w->full_name, sizeof(w->full_name), "%s", name);
	else
		sendmail_gecos_name(pw->pw_gecos, pw->pw_name, w->full_name, sizeof(w->full_name));
	if (a->sender == NULL) {
		if (sendmail_addr_check(w->login, origin, w->sender, sizeof(w->sender), utf8,
		                        &why) < 0)
			return sendmail_fail(EX_DATAERR, "login name \"%s\" is no address: %s",
			                     w->login, why);
	} else if (strcmp(a->sender, "") != 0 && strcmp(a->sender, "<>") != 0) {
		struct sendmail_addrs one = { 0 };
		char err[200];

		if (sendmail_addrs_parse(&one, a->sender, strlen(a->sender), err, sizeof(err)) < 0 ||
		    one.n != 1 ||
		    sendmail_addr_check(one.v[0], origin, w->sender, sizeof(w->sender), utf8,
		                        &why) < 0) {
			sendmail_addrs_free(&one);
			return sendmail_fail(EX_DATAERR, "bad sender address \"%s\"%s%s", a->sender,
			                     why ? ": " : "", why ? why : "");
		}
		sendmail_addrs_free(&one);
	}
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd = (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
	snprintf(w->unique, sizeof(w->unique), "%ld.%08x", (long)getpid(), rnd);
	return EX_OK;
}

/* ---- reading the header section ---- */

struct sendmail_input {
	struct buf in;		/* read from stdin, not yet used */
	bool eof;
	bool ended;		/* a lone "." ended the input */
};

/* Read more of stdin into in. 0, or EX_IOERR. */
static int
sendmail_read(struct sendmail_input *inp)
{
	ssize_t n;

	do
		n = buf_read_fd(&inp->in, STDIN_FILENO, SENDMAIL_READ_CHUNK);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return sendmail_fail(EX_IOERR, "cannot read the message: %s", strerror(errno));
	if (n == 0)
		inp->eof = true;
	return 0;
}

/* Take the header section off the input; what stays in inp->in starts
 * the body. EX_OK or EX_IOERR. */
static int
sendmail_read_headers(struct sendmail_input *inp, struct sendmail_headers *h, bool ignore_dots)
{
	for (;;) {
		const char *d = buf_data(&inp->in), *lf;
		size_t len = buf_len(&inp->in), line, raw;

		lf = memchr(d, '\n', len);
		if (lf == NULL && !inp->eof && len < SENDMAIL_HEADERS_MAX) {
			if (sendmail_read(inp) != 0)
				return EX_IOERR;
			continue;
		}
		if (len == 0 || lf == NULL) {
			/* The end of input (the last line has no line end), or
			 * a line longer than the header limit: body from here. */
			if (len == 0 || !inp->eof)
				return EX_OK;
			line = raw = len;
		} else {
			line = (size_t)(lf - d);
			raw = line + 1;
		}
		if (line > 0 && d[line - 1] == '\r')
			line--;
		switch (sendmail_headers_line(h, d, line, ignore_dots)) {
		case SENDMAIL_HLINE_FIELD:
		case SENDMAIL_HLINE_SKIPPED:
			buf_consume(&inp->in, raw);
			break;
		case SENDMAIL_HLINE_DOT:
			inp->ended = true;
			buf_reset(&inp->in);
			return EX_OK;
		case SENDMAIL_HLINE_BODY:
			return EX_OK;
		}
	}
}

/* ---- the SMTP transaction ---- */

struct sendmail_tx {
	struct sendmail_smtp c;
	const struct sendmail_args *a;
	struct sendmail_reply ehlo;
	uint64_t sent;		/* message bytes sent, against SIZE */
	bool in_data;		/* between 354 and the verdict: no QUIT then */
};

/* Report a refusal (or a lost connection) at a stage; the exit status. */
static int
sendmail_refused(struct sendmail_tx *tx, enum sendmail_stage stage, const struct sendmail_reply *r,
                 const char *what)
{
	if (r->code <= 0) {
		if (r->code < 0)
			return sendmail_fail(EX_PROTOCOL, "%s", tx->c.err);
		return sendmail_fail(EX_TEMPFAIL, "%s%s%s; the message was not queued", tx->c.err,
		                     what ? " after " : "", what ? what : "");
	}
	return sendmail_fail(sendmail_reply_exit(stage, r->code), "%s%s%s", what ? what : "",
	                     what ? ": " : "", r->last);
}

static int
sendmail_exchange(struct sendmail_tx *tx, const char *line, enum sendmail_stage stage,
                  int want, struct sendmail_reply *r, const char *what)
{
	if (line != NULL && sendmail_smtp_command(&tx->c, line) < 0) {
		/* The server may have said why before it closed. */
		if (sendmail_smtp_reply(&tx->c, r, 5) == 0 && r->code / 100 != want / 100)
			return sendmail_refused(tx, stage, r, what);
		r->code = 0;
		return sendmail_refused(tx, stage, r, what);
	}
	if (sendmail_smtp_reply(&tx->c, r, stage == SENDMAIL_STAGE_DOT ?
	                        SENDMAIL_DATA_DONE_TIMEOUT_S : SENDMAIL_TIMEOUT_S) < 0)
		return sendmail_refused(tx, stage, r, what);
	if (r->code / 100 != want / 100)
		return sendmail_refused(tx, stage, r, what);
	return EX_OK;
}

static void
sendmail_notify_param(struct buf *cmd, unsigned notify)
{
	static const struct { unsigned bit; const char *name; } words[] = {
		{ SENDMAIL_NOTIFY_NEVER, "NEVER" }, { SENDMAIL_NOTIFY_SUCCESS, "SUCCESS" },
		{ SENDMAIL_NOTIFY_DELAY, "DELAY" }, { SENDMAIL_NOTIFY_FAILURE, "FAILURE" },
	};
	bool first = true;

	if (notify == 0)
		return;
	buf_append_str(cmd, " NOTIFY=");
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (!(notify & words[i].bit))
			continue;
		buf_append_str(cmd, first ? "" : ",");
		buf_append_str(cmd, words[i].name);
		first = false;
	}
}

/* MAIL, then the RCPTs in pipelined batches. EX_OK or the failure's status. */
static int
sendmail_envelope(struct sendmail_tx *tx, const char *sender, const struct sendmail_addrs *rcpts,
                  bool utf8)
{
	const struct sendmail_args *a = tx->a;
	struct sendmail_reply r;
	struct buf cmd;
	int rc;

	buf_init(&cmd, SENDMAIL_COMMAND_MAX);
	buf_append_printf(&cmd, "MAIL FROM:<%s>", sender);
	if (a->body != NULL && tx->ehlo.ext_8bitmime)
		buf_append_printf(&cmd, " BODY=%s", a->body);
	if (utf8)
		buf_append_str(&cmd, " SMTPUTF8");
	if (tx->ehlo.ext_dsn && a->ret != NULL)
		buf_append_printf(&cmd, " RET=%s", a->ret);
	if (tx->ehlo.ext_dsn && a->envid != NULL) {
		buf_append_str(&cmd, " ENVID=");
		sendmail_xtext(&cmd, a->envid);
	}
	rc = sendmail_exchange(tx, buf_cstr(&cmd), SENDMAIL_STAGE_MAIL, 250, &r, "sender");
	for (size_t i = 0; rc == EX_OK && i < rcpts->n; i += SENDMAIL_RCPT_BATCH) {
		size_t end = i + SENDMAIL_RCPT_BATCH < rcpts->n ? i + SENDMAIL_RCPT_BATCH : rcpts->n;

		for (size_t k = i; k < end && rc == EX_OK; k++) {
			buf_reset(&cmd);
			buf_append_printf(&cmd, "RCPT TO:<%s>", rcpts->v[k]);
			if (tx->ehlo.ext_dsn)
				sendmail_notify_param(&cmd, a->notify);
			if (sendmail_smtp_command(&tx->c, buf_cstr(&cmd)) < 0) {
				r.code = 0;
				rc = sendmail_refused(tx, SENDMAIL_STAGE_RCPT, &r, "recipient");
			}
		}
		/* Every reply is read, so the first refusal is the one reported. */
		for (size_t k = i; k < end && rc == EX_OK; k++) {
			char what[SENDMAIL_ADDR_MAX + 4];

			snprintf(what, sizeof(what), "<%s>", rcpts->v[k]);
			rc = sendmail_exchange(tx, NULL, SENDMAIL_STAGE_RCPT, 250, &r, what);
		}
	}
	buf_free(&cmd);
	return rc;
}

/* Send what out holds, counting it against the server's SIZE. */
static int
sendmail_send(struct sendmail_tx *tx, struct buf *out)
{
	struct sendmail_reply r;

	tx->sent += buf_len(out);
	if (tx->ehlo.size_limit > 0 && tx->sent > tx->ehlo.size_limit)
		/* Stop here: the rest would be read by smtpd only to be refused.
		 * Closing mid-DATA makes smtpd drop the message. */
		return sendmail_fail(EX_DATAERR, "message is larger than message_size_limit "
		                     "(%llu bytes); the message was not queued",
		                     (unsigned long long)tx->ehlo.size_limit);
	if (sendmail_smtp_write(&tx->c, buf_data(out), buf_len(out)) < 0) {
		if (sendmail_smtp_reply(&tx->c, &r, 5) == 0)
			return sendmail_refused(tx, SENDMAIL_STAGE_DOT, &r, "message");
		r.code = 0;
		return sendmail_refused(tx, SENDMAIL_STAGE_DOT, &r, "message");
	}
	buf_reset(out);
	return EX_OK;
}

/* DATA: the header section (completed), then the body streamed from
 * stdin, then the final dot and the verdict. */
static int
sendmail_content(struct sendmail_tx *tx, struct sendmail_input *inp,
                 const struct sendmail_headers *h, const struct sendmail_ident *id)
{
	struct sendmail_body body;
	struct sendmail_reply r;
	struct buf out;
	bool end = inp->ended;
	int rc;

	rc = sendmail_exchange(tx, "DATA", SENDMAIL_STAGE_DATA, 354, &r, "DATA");
	if (rc != EX_OK)
		return rc;
	tx->in_data = true;
	buf_init(&out, 2 * SENDMAIL_HEADERS_MAX + 2 * SENDMAIL_READ_CHUNK + 64 * 1024);
	sendmail_headers_write(h, &out);
	sendmail_headers_missing(h, id, &out);
	sendmail_body_init(&body, tx->a->ignore_dots);
	while (rc == EX_OK && !end) {
		size_t take = buf_len(&inp->in) < SENDMAIL_READ_CHUNK ? buf_len(&inp->in) :
		    SENDMAIL_READ_CHUNK;

		if (take == 0) {
			if (inp->eof)
				break;
			buf_reset(&inp->in);
			if ((rc = sendmail_read(inp)) != EX_OK)
				break;
			continue;
		}
		buf_consume(&inp->in, sendmail_body_feed(&body, buf_data(&inp->in), take, &out, &end));
		rc = sendmail_send(tx, &out);
	}
	if (rc == EX_OK) {
		if (!end)
			sendmail_body_finish(&body, &out);
		buf_append_str(&out, ".\r\n");
		if (tx->c.verbose)
			fprintf(stderr, ">>> (message, %llu bytes)\n>>> .\n",
			        (unsigned long long)(tx->sent + buf_len(&out) - 3));
		rc = sendmail_send(tx, &out);
	}
	buf_free(&out);
	if (rc == EX_OK) {
		rc = sendmail_exchange(tx, NULL, SENDMAIL_STAGE_DOT, 250, &r, "message");
		tx->in_data = false;
	}
	return rc;
}

static int
sendmail_socket_path(const struct config *cfg, char *path, size_t pathsz)
{
	int n = snprintf(path, pathsz, "%s/public/sendmail", config_str(cfg, P_QUEUE_DIRECTORY));

	if (n < 0 || (size_t)n >= pathsz)
		return sendmail_fail(EX_CONFIG, "queue_directory is too long");
	return EX_OK;
}

/* The recipients: the command line's, then (-t) the headers'; each
 * qualified and checked. Bcc is removed from h under -t. */
static int
sendmail_recipients(const struct sendmail_args *a, const struct config *cfg,
                    struct sendmail_headers *h, struct sendmail_addrs *out, bool *utf8)
{
	struct sendmail_addrs raw = { 0 };
	const char *why = NULL;
	char err[300], q[SENDMAIL_ADDR_MAX + 256];
	int rc = EX_OK;

	for (size_t i = 0; i < a->nrcpts && rc == EX_OK; i++)
		if (sendmail_addrs_parse(&raw, a->rcpts[i], strlen(a->rcpts[i]), err, sizeof(err)) < 0)
			rc = sendmail_fail(EX_DATAERR, "bad address \"%s\": %s", a->rcpts[i], err);
	if (rc == EX_OK && a->extract) {
		if (sendmail_headers_recipients(h, &raw, err, sizeof(err)) < 0)
			rc = sendmail_fail(EX_DATAERR, "%s", err);
		sendmail_headers_remove_bcc(h);
	}
	for (size_t i = 0; i < raw.n && rc == EX_OK; i++) {
		if (sendmail_addr_check(raw.v[i], config_str(cfg, P_MYORIGIN), q, sizeof(q), utf8,
		                        &why) < 0) {
			rc = sendmail_fail(EX_DATAERR, "bad address \"%s\": %s", raw.v[i], why);
			break;
		}
		free(raw.v[i]);
		raw.v[i] = strdup(q);
		if (raw.v[i] == NULL)
			fatal("out of memory");
	}
	if (rc == EX_OK && raw.n == 0)
		rc = sendmail_fail(EX_USAGE, a->extract ? "No recipient addresses found in message "
		                   "header" : "Recipient addresses must be specified on the command "
		                   "line or via the -t option");
	if (rc == EX_OK) {
		sendmail_addrs_free(out);
		*out = raw;
	} else {
		sendmail_addrs_free(&raw);
	}
	return rc;
}

static int
sendmail_deliver(const struct sendmail_args *a, const struct config *cfg)
{
	struct sendmail_input inp = { .eof = false };
	struct sendmail_headers h;
	struct sendmail_addrs rcpts = { 0 };
	struct sendmail_who who;
	struct sendmail_ident id;
	struct sendmail_tx tx;
	struct sendmail_reply r;
	char path[600];
	bool utf8 = false;
	int rc;

	/* Postfix's check, before a byte of stdin is read. */
	if (!a->extract && a->nrcpts == 0)
		return sendmail_fail(EX_USAGE, "Recipient addresses must be specified on the "
		                     "command line or via the -t option");
	if ((rc = sendmail_who(a, cfg, &who, &utf8)) != EX_OK ||
	    (rc = sendmail_socket_path(cfg, path, sizeof(path))) != EX_OK)
		return rc;
	buf_init(&inp.in, SENDMAIL_HEADERS_MAX + SENDMAIL_READ_CHUNK);
	sendmail_headers_init(&h);
	rc = sendmail_read_headers(&inp, &h, a->ignore_dots);
	if (rc == EX_OK)
		rc = sendmail_recipients(a, cfg, &h, &rcpts, &utf8);
	if (rc != EX_OK)
		goto out;

	memset(&tx, 0, sizeof(tx));
	tx.a = a;
	rc = sendmail_smtp_connect(&tx.c, path, a->verbose);
	if (rc != EX_OK) {
		rc = sendmail_fail(rc, "%s%s", tx.c.err, rc == EX_TEMPFAIL ?
		                   "; the message was not queued" : "");
		sendmail_smtp_close(&tx.c);
		goto out;
	}
	rc = sendmail_exchange(&tx, NULL, SENDMAIL_STAGE_GREETING, 220, &r, "greeting");
	if (rc == EX_OK)
		rc = sendmail_exchange(&tx, "EHLO localhost", SENDMAIL_STAGE_EHLO, 250, &tx.ehlo,
		                       "EHLO");
	if (rc == EX_OK)
		rc = sendmail_envelope(&tx, who.sender, &rcpts, utf8);
	if (rc == EX_OK) {
		id = (struct sendmail_ident){ who.sender, who.full_name,
		                              config_str(cfg, P_MYHOSTNAME), time(NULL), who.unique };
		rc = sendmail_content(&tx, &inp, &h, &id);
	}
	/* After the verdict (or a refusal before DATA) a polite QUIT; its
	 * reply changes nothing. */
	if (!tx.in_data) {
		if (sendmail_smtp_command(&tx.c, "QUIT") == 0)
			(void)sendmail_smtp_reply(&tx.c, &r, 5);
	}
	sendmail_smtp_close(&tx.c);
out:
	sendmail_addrs_free(&rcpts);
	sendmail_headers_free(&h);
	buf_free(&inp.in);
	return rc;
}

/* ---- -bs: SMTP on stdin/stdout, relayed byte for byte ---- */

static int
sendmail_proxy(const struct config *cfg, bool verbose)
{
	struct sendmail_smtp c;
	char path[600], chunk[16384];
	bool in_open = true;
	int rc;

	if ((rc = sendmail_socket_path(cfg, path, sizeof(path))) != EX_OK)
		return rc;
	rc = sendmail_smtp_connect(&c, path, verbose);
	if (rc != EX_OK) {
		/* The client expects SMTP: tell it too, as a 421 greeting. */
		printf("421 4.3.0 %s\r\n", c.err);
		fflush(stdout);
		sendmail_smtp_close(&c);
		return sendmail_fail(rc, "%s", c.err);
	}
	for (;;) {
		struct pollfd p[2] = { { c.fd, POLLIN, 0 }, { STDIN_FILENO, POLLIN, 0 } };
		ssize_t n;

		if (poll(p, in_open ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = sendmail_fail(EX_OSERR, "poll: %s", strerror(errno));
			break;
		}
		if (p[0].revents) {
			n = read(c.fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;	/* the server closed: the session is over */
			if (fwrite(chunk, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0) {
				rc = sendmail_fail(EX_IOERR, "write error on standard output");
				break;
			}
		}
		if (in_open && p[1].revents) {
			n = read(STDIN_FILENO, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* The client is done sending; the server answers what
				 * it got and closes (an unfinished DATA is dropped). */
				in_open = false;
				(void)shutdown(c.fd, SHUT_WR);
			} else if (sendmail_smtp_write(&c, chunk, (size_t)n) < 0) {
				break;
			}
		}
	}
	sendmail_smtp_close(&c);
	return rc;
}

/* ---- -q: flush, as `ternctl queue flush` ---- */

static int
sendmail_flush(const struct sendmail_args *a, const struct config *cfg)
{
	struct qmgr_command cmd;
	struct qmgr_reply rep;
	char site[600], err[512];
	char *sel[1];
	int rc;

	memset(&cmd, 0, sizeof(cmd));
	cmd.verb = QMGR_VERB_FLUSH;
	if (a->flush_site != NULL) {
		snprintf(site, sizeof(site), "@%s", a->flush_site);
		sel[0] = site;
	} else {
		sel[0] = (char *)(a->flush_id != NULL ? a->flush_id : "ALL");
	}
	cmd.selectors = sel;
	cmd.nselectors = 1;
	rc = qmgr_client_command(config_str(cfg, P_QUEUE_DIRECTORY), &cmd, &rep,
	                         SENDMAIL_FLUSH_TIMEOUT_MS, err, sizeof(err));
	if (rc != 0)
		return sendmail_fail(rc, "%s", err);
	/* -q and -qR with nothing to deliver did what was asked (Postfix
	 * says nothing then); an -qI ID that is not queued is an error. */
	if (rep.status == EX_NOINPUT && a->flush_id == NULL)
		rep.status = 0;
	if (rep.status != 0)
		return sendmail_fail((int)rep.status, "%s", rep.text);
	if (a->verbose)
		printf("%s\n", rep.text);
	return EX_OK;
}

/* ---- -bi: newaliases ---- */

static int
sendmail_map_exit(enum map_status st)
{
	switch (st) {
	case MAP_OK: return EX_OK;
	case MAP_ERR_SPEC: return EX_CONFIG;
	case MAP_ERR_NOINPUT: return EX_NOINPUT;
	case MAP_ERR_DATA: return EX_DATAERR;
	case MAP_ERR_IO: return EX_IOERR;
	case MAP_ERR_CREATE: return EX_CANTCREAT;
	}
	return EX_SOFTWARE;
}

/*
 * Ask a running ternd to reload (SIGHUP to its master: tools/masterpid.h).
 * Needed only for texthash: maps; lmdb: files are noticed by their
 * readers within a second. A caller who may not signal the master is
 * told what to do instead.
 */
static void
sendmail_reload(const struct config *cfg)
{
	struct masterpid mp;
	char err[600];
	int rc;

	rc = masterpid_find(config_str(cfg, P_QUEUE_DIRECTORY), &mp, err, sizeof(err));
	if (rc == EX_UNAVAILABLE)
		return;		/* not running: it reads the maps when it starts */
	if (rc == 0) {
		if (kill(mp.pid, SIGHUP) == 0) {
			masterpid_close(&mp);
			return;
		}
		snprintf(err, sizeof(err), "%s", strerror(errno));
	}
	fprintf(stderr, "%s: the new aliases of texthash: maps take effect at the next "
	        "`ternctl reload` (cannot signal ternd: %s)\n", sendmail_prog, err);
	masterpid_close(&mp);
}

static int
sendmail_newaliases(const struct config *cfg)
{
	const struct config_list *maps = config_list(cfg, P_ALIAS_MAPS);
	struct buf diag;
	enum map_status st;
	bool texthash = false;

	buf_init(&diag, 256 * 1024);
	st = map_list_build(maps, MAP_F_ALIASES, &diag);
	fwrite(buf_data(&diag), 1, buf_len(&diag), stderr);
	buf_free(&diag);
	for (size_t i = 0; i < maps->n; i++)
		if (strncmp(maps->items[i], "lmdb:", 5) != 0)
			texthash = true;
	if (st == MAP_OK && texthash)
		sendmail_reload(cfg);
	return sendmail_map_exit(st);
}

int
main(int argc, char **argv)
{
	struct sendmail_args a;
	struct config *cfg;
	char err[300];
	int rc = EX_OK;

	sendmail_prog = sendmail_args_progname(argc > 0 ? argv[0] : NULL);
	/* fatal() and panic() of the shared code go to stderr. */
	log_open(sendmail_prog, LOG_SINK_STDERR, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (sendmail_args_parse(argc, argv, &a, err, sizeof(err)) < 0)
		return sendmail_fail(EX_USAGE, "%s", err);
	if (a.mode == SENDMAIL_MODE_NOTHING) {
		sendmail_args_free(&a);
		return EX_OK;	/* -q30m: Postfix ignores the interval too */
	}
	cfg = sendmail_config(a.config, &rc);
	if (cfg == NULL) {
		sendmail_args_free(&a);
		return rc;
	}
	switch (a.mode) {
	case SENDMAIL_MODE_DELIVER: rc = sendmail_deliver(&a, cfg); break;
	case SENDMAIL_MODE_SMTP: rc = sendmail_proxy(cfg, a.verbose); break;
	case SENDMAIL_MODE_LIST:
		/* One clear line for a caller the spool's modes will refuse
		 * (doc/sendmail.md: no set-gid helper), not a raw EACCES. */
		rc = tools_access_check(cfg, sendmail_prog, "listing the queue");
		if (rc == EX_OK)
			rc = qlist_print(cfg, false, sendmail_prog);
		break;
	case SENDMAIL_MODE_ALIASES: rc = sendmail_newaliases(cfg); break;
	case SENDMAIL_MODE_FLUSH:
		rc = tools_access_check(cfg, sendmail_prog, "flushing the queue");
		if (rc == EX_OK)
			rc = sendmail_flush(&a, cfg);
		break;
	case SENDMAIL_MODE_NOTHING: break;
	}
	config_free(cfg);
	sendmail_args_free(&a);
	return rc;
}
