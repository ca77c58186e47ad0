/*
 * Unit tests for smtpd/smtpd_auth.c and smtpd/smtpd_auth_cmd.c: the AUTH
 * argument parser and base64 (tables), then the AUTH command in a real
 * session (one end of a socketpair) whose back end is a fake Dovecot auth
 * server run by the same event loop: the EHLO keyword, PLAIN and LOGIN,
 * "=", "*", bad base64, unknown mechanisms, the state rules (503 when
 * authenticated or in a transaction), smtpd_tls_auth_only, over-long
 * responses, temporary failures, pipelining and the error limits.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/evloop.h"
#include "config/config.h"
#include "queue/spool.h"
#include "smtpd/smtpd_auth.h"
#include "smtpd/smtpd_auth_impl.h"
#include "smtpd/smtpd_server.h"
#include "smtpd/smtpd_session.h"
#include "smtpd/smtpd_session_impl.h"

/* ---- parsers ---- */

struct cmd_row {
	const char *args;
	int rc;
	const char *mech;
	const char *initial;	/* NULL: none */
};

static const struct cmd_row cmd_rows[] = {
	{ "PLAIN", 0, "PLAIN", NULL },
	{ "plain", 0, "PLAIN", NULL },
	{ "PLAIN AGFsaWNlAHNlY3JldA==", 0, "PLAIN", "AGFsaWNlAHNlY3JldA==" },
	{ "  LOGIN   =  ", 0, "LOGIN", "=" },
	{ "SCRAM-SHA-256", 0, "SCRAM-SHA-256", NULL },
	{ "X_Y-1", 0, "X_Y-1", NULL },
	{ "", -1, "", NULL },
	{ "   ", -1, "", NULL },
	{ "PLAIN a b", -1, "", NULL },
	{ "PL/AIN", -1, "", NULL },
	{ "PLAIN\tx", -1, "", NULL },
	{ "ABCDEFGHIJKLMNOPQRSTU", -1, "", NULL },	/* 21 characters */
	{ "ABCDEFGHIJKLMNOPQRST", 0, "ABCDEFGHIJKLMNOPQRST", NULL },
	{ "PL\xc3\xa9", -1, "", NULL },
};

START_TEST(test_parse_command)
{
	const struct cmd_row *r = &cmd_rows[_i];
	char mech[SMTPD_AUTH_MECH_MAX + 1];
	const char *ir;
	size_t irlen;
	int rc = smtpd_auth_parse_command(r->args, strlen(r->args), mech, &ir, &irlen);

	ck_assert_msg(rc == r->rc, "row %d \"%s\": rc %d", _i, r->args, rc);
	if (rc < 0)
		return;
	ck_assert_str_eq(mech, r->mech);
	if (r->initial == NULL)
		ck_assert_ptr_null(ir);
	else
		ck_assert_msg(ir != NULL && irlen == strlen(r->initial) &&
		              memcmp(ir, r->initial, irlen) == 0, "row %d: initial response", _i);
}
END_TEST

struct b64_row {
	const char *text;
	bool valid;
	const char *decoded;	/* when valid */
	size_t decoded_len;
};

static const struct b64_row b64_rows[] = {
	{ "", true, "", 0 },
	{ "YQ==", true, "a", 1 },
	{ "YWI=", true, "ab", 2 },
	{ "YWJj", true, "abc", 3 },
	{ "AGFsaWNlAHNlY3JldA==", true, "\0alice\0secret", 13 },
	{ "////", true, "\xff\xff\xff", 3 },
	{ "YQ", false, NULL, 0 },		/* not a multiple of 4 */
	{ "YQ=", false, NULL, 0 },
	{ "Y===", false, NULL, 0 },		/* too much padding */
	{ "YQ==YWJj", false, NULL, 0 },		/* padding in the middle */
	{ "YR==", false, NULL, 0 },		/* non-zero padding bits (RFC 4648 3.5) */
	{ "YWJ=", false, NULL, 0 },
	{ "YW I", false, NULL, 0 },
	{ "YW\rI", false, NULL, 0 },
	{ "YW-_", false, NULL, 0 },		/* base64url is not base64 */
	{ "*", false, NULL, 0 },
	{ "=", false, NULL, 0 },
	{ "====", false, NULL, 0 },
};

START_TEST(test_base64)
{
	const struct b64_row *r = &b64_rows[_i];
	unsigned char out[64];
	char again[128];
	long n;

	ck_assert_msg(smtpd_auth_base64_valid(r->text, strlen(r->text)) == r->valid, "row %d \"%s\"",
	              _i, r->text);
	n = smtpd_auth_base64_decode(r->text, strlen(r->text), out, sizeof(out));
	if (!r->valid) {
		ck_assert_int_eq(n, -1);
		return;
	}
	ck_assert_int_eq(n, (long)r->decoded_len);
	ck_assert(memcmp(out, r->decoded, r->decoded_len) == 0);
	/* Encoding gives back the same text (canonical form). */
	ck_assert_int_eq(smtpd_auth_base64_encode(out, (size_t)n, again, sizeof(again)),
	                 (long)strlen(r->text));
	ck_assert_str_eq(again, r->text);
}
END_TEST

START_TEST(test_base64_bounds)
{
	unsigned char out[2];
	char enc[8];

	ck_assert_int_eq(smtpd_auth_base64_decode("YWJj", 4, out, sizeof(out)), -1);
	ck_assert_int_eq(smtpd_auth_base64_encode((const unsigned char *)"abcd", 4, enc, 8), -1);
	ck_assert_int_eq(smtpd_auth_base64_encode((const unsigned char *)"abc", 3, enc, 5), 4);
	ck_assert_int_eq(smtpd_auth_base64_encode((const unsigned char *)"abc", 3, enc, 4), -1);
}
END_TEST

START_TEST(test_printable)
{
	char out[8];

	smtpd_auth_printable("a\tb\r\n\x80z", 7, out, sizeof(out));
	ck_assert_str_eq(out, "a?b???z");
	smtpd_auth_printable("0123456789", 10, out, sizeof(out));
	ck_assert_str_eq(out, "0123456");
}
END_TEST

/* ---- a session with a fake Dovecot ---- */

#define WORLD_DEADLINE_MS 8000
#define FAKE_LINE_MAX 20000

struct fake {
	int lfd, cfd;
	struct ev_io lio, cio;
	char in[65536];
	size_t inlen;
	/* The one exchange in progress: LOGIN's step, PLAIN's waiting. */
	unsigned id;
	int login_step;
	char login_user[128];
};

struct world {
	char dir[64];
	char sock[100];
	struct smtpd_server srv;
	struct ev_io commit_io;
	struct ev_timer tick;
	int client;
	struct fake fake;
};

static void
fake_say(struct fake *f, const char *text)
{
	ck_assert_int_eq(write(f->cfd, text, strlen(text)), (ssize_t)strlen(text));
}

/* PLAIN credentials (base64) to a Dovecot answer for request id. */
static void
fake_plain(struct fake *f, unsigned id, const char *b64)
{
	unsigned char dec[256];
	long n = smtpd_auth_base64_decode(b64, strlen(b64), dec, sizeof(dec) - 1);
	char line[300];
	const char *user, *pass;

	if (n < 0)
		n = 0;
	dec[n] = '\0';
	user = (const char *)dec + strlen((const char *)dec) + 1;
	pass = (size_t)(user - (const char *)dec) < (size_t)n ? user + strlen(user) + 1 : "";
	if ((size_t)(user - (const char *)dec) >= (size_t)n)
		user = "";
	if (strcmp(user, "alice") == 0 && strcmp(pass, "secret") == 0)
		snprintf(line, sizeof(line), "OK\t%u\tuser=alice\n", id);
	else if (strcmp(user, "tmp") == 0)
		snprintf(line, sizeof(line), "FAIL\t%u\treason=Internal error\ttemp\n", id);
	else if (strcmp(user, "slow") == 0)
		return;		/* never answers */
	else
		snprintf(line, sizeof(line), "FAIL\t%u\treason=Password mismatch\n", id);
	fake_say(f, line);
}

static void
fake_line(struct fake *f, char *line)
{
	char *field[16], *save = NULL, out[300];
	int n = 0;
	const char *resp = NULL;

	for (char *t = strtok_r(line, "\t", &save); t && n < 16; t = strtok_r(NULL, "\t", &save))
		field[n++] = t;
	if (n >= 3 && strcmp(field[0], "AUTH") == 0) {
		f->id = (unsigned)strtoul(field[1], NULL, 10);
		for (int i = 3; i < n; i++)
			if (strncmp(field[i], "resp=", 5) == 0)
				resp = field[i] + 5;
		if (strcmp(field[2], "LOGIN") == 0) {
			f->login_step = 1;
			snprintf(out, sizeof(out), "CONT\t%u\tVXNlcm5hbWU6\n", f->id);
			fake_say(f, out);
		} else if (resp != NULL) {
			fake_plain(f, f->id, resp);
		} else {
			f->login_step = 0;
			snprintf(out, sizeof(out), "CONT\t%u\t\n", f->id);
			fake_say(f, out);
		}
	} else if (n >= 2 && strcmp(field[0], "CONT") == 0) {
		const char *data = n >= 3 ? field[2] : "";
		unsigned char dec[128];
		long len;

		if (f->login_step == 1) {
			len = smtpd_auth_base64_decode(data, strlen(data), dec, sizeof(dec) - 1);
			dec[len > 0 ? len : 0] = '\0';
			snprintf(f->login_user, sizeof(f->login_user), "%s", (char *)dec);
			f->login_step = 2;
			snprintf(out, sizeof(out), "CONT\t%u\tUGFzc3dvcmQ6\n", f->id);
			fake_say(f, out);
		} else if (f->login_step == 2) {
			len = smtpd_auth_base64_decode(data, strlen(data), dec, sizeof(dec) - 1);
			dec[len > 0 ? len : 0] = '\0';
			if (strcmp(f->login_user, "alice") == 0 && strcmp((char *)dec, "secret") == 0)
				snprintf(out, sizeof(out), "OK\t%u\tuser=alice\n", f->id);
			else
				snprintf(out, sizeof(out), "FAIL\t%u\n", f->id);
			fake_say(f, out);
		} else {
			fake_plain(f, f->id, data);
		}
	}
}

static void
fake_read(struct ev_io *io, unsigned revents)
{
	struct fake *f = io->arg;
	ssize_t n;
	char *lf;

	(void)revents;
	n = read(f->cfd, f->in + f->inlen, sizeof(f->in) - f->inlen - 1);
	if (n <= 0)
		return;
	f->inlen += (size_t)n;
	while ((lf = memchr(f->in, '\n', f->inlen)) != NULL) {
		size_t len = (size_t)(lf - f->in);

		*lf = '\0';
		fake_line(f, f->in);
		memmove(f->in, lf + 1, f->inlen - len - 1);
		f->inlen -= len + 1;
	}
}

static struct world *fake_world;

static void
fake_accept(struct ev_io *io, unsigned revents)
{
	struct fake *f = io->arg;

	(void)revents;
	f->cfd = accept(f->lfd, NULL, NULL);
	ck_assert_int_ge(f->cfd, 0);
	evloop_io_add(fake_world->srv.loop, &f->cio, f->cfd, EV_READ, fake_read, f);
	fake_say(f, "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t1\n"
	         "CUID\t1\nCOOKIE\t00\nDONE\n");
}

static void
world_commit(struct ev_io *io, unsigned revents)
{
	struct world *w = io->arg;

	(void)revents;
	spool_commit_dispatch(w->srv.spool);
}

static void
world_tick(struct ev_timer *t)
{
	evloop_break(((struct world *)t->arg)->srv.loop);
}

static void
pump(struct world *w, int ms)
{
	evloop_timer_start(w->srv.loop, &w->tick, ms);
	evloop_run(w->srv.loop);
}

static void
world_init(struct world *w, const char *extra)
{
	char path[512], spool[300], err[256];
	struct spool_options opt;
	struct sockaddr_in peer, local;
	struct sockaddr_un sun;
	struct buf errors;
	FILE *f;
	int sv[2];

	memset(w, 0, sizeof(*w));
	fake_world = w;
	snprintf(w->dir, sizeof(w->dir), "/tmp/tern-auth-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(w->dir));
	snprintf(w->sock, sizeof(w->sock), "%s/auth", w->dir);
	snprintf(spool, sizeof(spool), "%s/spool", w->dir);
	snprintf(path, sizeof(path), "%s/tern.conf", w->dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "queue_directory = %s\nmyhostname = tern.test\nmydestination = tern.test\n"
	        "smtpd_error_sleep_time = 0\nsmtpd_sasl_auth_enable = yes\n"
	        "smtpd_sasl_type = dovecot\nsmtpd_sasl_path = %s\n%s\n", spool, w->sock,
	        extra ? extra : "smtpd_tls_auth_only = no");
	fclose(f);
	buf_init(&errors, 65536);
	w->srv.cfg = config_load(path, &errors);
	ck_assert_msg(w->srv.cfg != NULL, "config: %s", buf_cstr(&errors));
	buf_free(&errors);
	ck_assert_int_eq(spool_prepare(spool, getuid(), getgid(), err, sizeof(err)), 0);
	memset(&opt, 0, sizeof(opt));
	opt.fsync_threads = 1;
	opt.map_size = 1 << 20;
	w->srv.spool = spool_open(spool, &opt, err, sizeof(err));
	ck_assert_msg(w->srv.spool != NULL, "spool: %s", err);
	w->srv.loop = evloop_new();
	snprintf(w->srv.hostname, sizeof(w->srv.hostname), "tern.test");
	ck_assert_int_eq(evloop_io_add(w->srv.loop, &w->commit_io, spool_commit_fd(w->srv.spool),
	    EV_READ, world_commit, w), 0);
	evloop_timer_init(&w->tick, world_tick, w);

	w->fake.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	w->fake.cfd = -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, w->sock, strlen(w->sock) + 1);
	ck_assert_int_eq(bind(w->fake.lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(w->fake.lfd, 4), 0);
	evloop_io_add(w->srv.loop, &w->fake.lio, w->fake.lfd, EV_READ, fake_accept, &w->fake);
	w->srv.auth = smtpd_auth_set_new(w->srv.loop, w->srv.cfg, NULL, NULL, err, sizeof(err));
	ck_assert_msg(w->srv.auth != NULL, "auth: %s", err);
	for (int i = 0; i < 200 && smtpd_auth_backend_of(w->srv.auth, CONFIG_LISTENER_SMTP) &&
	     smtpd_auth_mechs(smtpd_auth_backend_of(w->srv.auth, CONFIG_LISTENER_SMTP))[0] == '\0';
	     i++)
		pump(w, 5);

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	w->client = sv[1];
	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	peer.sin_port = htons(40000);
	inet_pton(AF_INET, "192.0.2.9", &peer.sin_addr);
	local = peer;
	local.sin_port = htons(587);
	smtpd_session_start(&w->srv, sv[0], CONFIG_LISTENER_SMTP, (struct sockaddr *)&peer,
	    sizeof(peer), (struct sockaddr *)&local, sizeof(local));
}

static void
world_free(struct world *w)
{
	char cmd[100];

	close(w->client);
	for (int i = 0; i < 20 && w->srv.nsessions > 0; i++)
		pump(w, 10);
	smtpd_auth_set_free(w->srv.auth);
	evloop_io_del(w->srv.loop, &w->fake.lio);
	close(w->fake.lfd);
	if (w->fake.cfd >= 0) {
		evloop_io_del(w->srv.loop, &w->fake.cio);
		close(w->fake.cfd);
	}
	spool_close(w->srv.spool);
	evloop_free(w->srv.loop);
	config_free(w->srv.cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Final reply lines ("NNN " at a line start) in text. */
static int
final_replies(const char *text)
{
	int n = 0;

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strlen(p) >= 4 && p[3] == ' ')
			n++;
	return n;
}

/* Send input, pump until want final replies came (or EOF); the text. */
static char *
converse(struct world *w, const char *input, int want)
{
	static char got[1 << 16];
	size_t glen = 0, off = 0, len = strlen(input);
	int64_t until = evloop_update_time(w->srv.loop) + WORLD_DEADLINE_MS;
	ssize_t n = -1;

	got[0] = '\0';
	while (evloop_update_time(w->srv.loop) < until) {
		if (off < len && (n = write(w->client, input + off, len - off)) > 0)
			off += (size_t)n;
		pump(w, 5);
		while (glen < sizeof(got) - 1 &&
		       (n = read(w->client, got + glen, sizeof(got) - 1 - glen)) > 0)
			glen += (size_t)n;
		got[glen] = '\0';
		if (off == len && (final_replies(got) >= want || n == 0))
			break;
	}
	return got;
}

static void
assert_replies(const char *text, const char *want, const char *name)
{
	char wants[1024], *tok, *save = NULL;
	const char *p = text;
	int i = 0;

	snprintf(wants, sizeof(wants), "%s", want);
	for (tok = strtok_r(wants, "|", &save); tok; tok = strtok_r(NULL, "|", &save), i++) {
		while (*p && strlen(p) >= 4 && p[3] == '-')
			p = strchr(p, '\n') + 1;
		ck_assert_msg(*p != '\0', "%s: reply %d missing (want %s); got:\n%s", name, i, tok, text);
		ck_assert_msg(strncmp(p, tok, strlen(tok)) == 0, "%s: reply %d want \"%s\"; got:\n%s",
		              name, i, tok, text);
		p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p);
	}
	ck_assert_msg(*p == '\0', "%s: extra replies after %s:\n%s", name, want, p);
}

static int
count_bars(const char *s)
{
	int n = 1;

	for (; *s; s++)
		n += *s == '|';
	return n;
}

#define ALICE "AGFsaWNlAHNlY3JldA=="		/* \0alice\0secret */
#define WRONG "AGFsaWNlAHdyb25n"		/* \0alice\0wrong */
#define TMP "AHRtcAB4"				/* \0tmp\0x */
#define MAIL "MAIL FROM:<a@tern.test>\r\n"

struct convo {
	const char *name;
	const char *config;	/* NULL: smtpd_tls_auth_only = no */
	const char *input;
	const char *replies;
	const char *user;	/* sasl_username afterwards, "" for none */
};

static const struct convo convos[] = {
	{ "plain with initial response", NULL, "EHLO c\r\nAUTH PLAIN " ALICE "\r\n",
	  "220|250|235 2.7.0 Authentication successful", "alice" },
	{ "plain, response after 334", NULL, "EHLO c\r\nAUTH PLAIN\r\n" ALICE "\r\n",
	  "220|250|334 |235 2.7.0", "alice" },
	{ "login", NULL, "EHLO c\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n",
	  "220|250|334 VXNlcm5hbWU6|334 UGFzc3dvcmQ6|235 2.7.0", "alice" },
	{ "login with wrong password", NULL, "EHLO c\r\nAUTH login\r\nYWxpY2U=\r\neA==\r\n",
	  "220|250|334|334|535 5.7.8 Error: authentication failed: authentication failure", "" },
	{ "wrong password", NULL, "EHLO c\r\nAUTH PLAIN " WRONG "\r\n",
	  "220|250|535 5.7.8 Error: authentication failed: Password mismatch", "" },
	{ "empty initial response", NULL, "EHLO c\r\nAUTH PLAIN =\r\n", "220|250|535 5.7.8", "" },
	{ "temporary failure", NULL, "EHLO c\r\nAUTH PLAIN " TMP "\r\n",
	  "220|250|454 4.7.0 Temporary authentication failure: Internal error", "" },
	{ "cancel", NULL, "EHLO c\r\nAUTH PLAIN\r\n*\r\nNOOP\r\n",
	  "220|250|334|501 5.7.0 Authentication aborted|250", "" },
	{ "bad base64 initial", NULL, "EHLO c\r\nAUTH PLAIN AGFsa!==\r\n",
	  "220|250|501 5.5.2 Cannot decode response", "" },
	{ "bad base64 response", NULL, "EHLO c\r\nAUTH LOGIN\r\nYWxpY2U\r\nNOOP\r\n",
	  "220|250|334|501 5.5.2|250", "" },
	{ "unknown mechanism", NULL, "EHLO c\r\nAUTH CRAM-MD5\r\n",
	  "220|250|504 5.5.4 Unsupported authentication mechanism", "" },
	{ "syntax", NULL, "EHLO c\r\nAUTH\r\nAUTH PLAIN a b\r\nAUTH PL@IN\r\n",
	  "220|250|501 5.5.4 Syntax: AUTH mechanism|501 5.5.4|501 5.5.4", "" },
	{ "already authenticated", NULL,
	  "EHLO c\r\nAUTH PLAIN " ALICE "\r\nAUTH PLAIN " ALICE "\r\nRSET\r\nAUTH LOGIN\r\n",
	  "220|250|235|503 5.5.1 Error: already authenticated|250|503 5.5.1", "alice" },
	{ "in a transaction", NULL, "EHLO c\r\n" MAIL "AUTH PLAIN " ALICE "\r\nRSET\r\n"
	  "AUTH PLAIN " ALICE "\r\n",
	  "220|250|250|503 5.5.1 Error: MAIL transaction in progress|250|235", "alice" },
	{ "tls required", "", "EHLO c\r\nAUTH PLAIN " ALICE "\r\n",
	  "220|250|504 5.5.4 Encryption required for requested authentication mechanism", "" },
	{ "not enabled on the listener", "smtpd_sasl_auth_enable = no",
	  "EHLO c\r\nAUTH PLAIN " ALICE "\r\n",
	  "220|250|503 5.5.1 Error: authentication not enabled", "" },
	{ "before EHLO, helo required", "smtpd_tls_auth_only = no\nsmtpd_helo_required = yes",
	  "AUTH PLAIN " ALICE "\r\n", "220|503 5.5.1 Error: send HELO/EHLO first", "" },
	{ "pipelined behind AUTH", NULL,
	  "EHLO c\r\nAUTH PLAIN " ALICE "\r\n" MAIL "RCPT TO:<b@tern.test>\r\n",
	  "220|250|235|250 2.1.0|250 2.1.5", "alice" },
	{ "MAIL with AUTH=", NULL, "EHLO c\r\nMAIL FROM:<a@tern.test> AUTH=<>\r\nRSET\r\n"
	  "MAIL FROM:<a@tern.test> AUTH=a+2Bb@tern.test\r\n",
	  "220|250|250 2.1.0|250|250 2.1.0", "" },
	{ "MAIL with AUTH= unoffered", "", "EHLO c\r\nMAIL FROM:<a@tern.test> AUTH=<>\r\n",
	  "220|250|555 5.5.4", "" },
	{ "hard error limit", "smtpd_tls_auth_only = no\nsmtpd_hard_error_limit = 3",
	  "EHLO c\r\nAUTH PLAIN " WRONG "\r\nAUTH PLAIN " WRONG "\r\nAUTH PLAIN " WRONG "\r\n",
	  "220|250|535|535|535|421 4.7.0", "" },
	{ "counted with soft errors", "smtpd_tls_auth_only = no\nsmtpd_hard_error_limit = 2",
	  "EHLO c\r\nFOO\r\nAUTH PLAIN " WRONG "\r\n", "220|250|500|535|421 4.7.0", "" },
};

static struct smtpd_session *
only_session(struct world *w)
{
	return w->srv.sessions;
}

START_TEST(test_convo)
{
	const struct convo *c = &convos[_i];
	struct world w;
	struct smtpd_session *s;
	char *got;

	world_init(&w, c->config);
	got = converse(&w, c->input, count_bars(c->replies));
	assert_replies(got, c->replies, c->name);
	s = only_session(&w);
	if (s != NULL)
		ck_assert_msg(strcmp(s->sasl_username, c->user) == 0, "%s: sasl_username \"%s\"",
		              c->name, s->sasl_username);
	else
		ck_assert_str_eq(c->user, "");
	if (c->user[0] != '\0')
		ck_assert_str_eq(s->sasl_method, strstr(c->input, "LOGIN\r\nYW") ? "LOGIN" : "PLAIN");
	world_free(&w);
}
END_TEST

START_TEST(test_ehlo_keyword)
{
	struct world w;
	char *got;

	world_init(&w, NULL);
	got = converse(&w, "EHLO c\r\n", 2);
	ck_assert_ptr_nonnull(strstr(got, "250-AUTH PLAIN LOGIN\r\n"));
	world_free(&w);
	world_init(&w, "");	/* smtpd_tls_auth_only = yes, no TLS: not offered */
	got = converse(&w, "EHLO c\r\n", 2);
	ck_assert_ptr_null(strstr(got, "AUTH"));
	world_free(&w);
	world_init(&w, "smtpd_tls_auth_only = no\nsmtpd_sasl_auth_enable = no");
	got = converse(&w, "EHLO c\r\n", 2);
	ck_assert_ptr_null(strstr(got, "AUTH"));
	world_free(&w);
}
END_TEST

/* A response line longer than RFC 4954's 12288 octets ends the exchange
 * with 500 5.5.6 and the session stays in step. */
START_TEST(test_long_response)
{
	struct world w;
	static char input[20000];
	size_t n;
	char *got;

	world_init(&w, NULL);
	n = (size_t)snprintf(input, sizeof(input), "EHLO c\r\nAUTH PLAIN\r\n");
	memset(input + n, 'A', 13000);
	n += 13000;
	snprintf(input + n, sizeof(input) - n, "\r\nNOOP\r\n");
	got = converse(&w, input, 5);
	assert_replies(got, "220|250|334|500 5.5.6|250", "long response");
	world_free(&w);
}
END_TEST

/* A back end that never answers: the client gets 454 once the exchange's
 * time limit passes, and the session goes on. */
START_TEST(test_backend_silent)
{
	struct world w;
	char *got;

	world_init(&w, NULL);
	smtpd_auth_backend_of(w.srv.auth, CONFIG_LISTENER_SMTP)->timeout_ms = 200;
	/* \0slow\0x: the fake server keeps quiet. */
	got = converse(&w, "EHLO c\r\nAUTH PLAIN AHNsb3cAeA==\r\nNOOP\r\n", 4);
	assert_replies(got, "220|250|454 4.7.0 Temporary authentication failure: authentication "
	               "server timed out|250", "silent");
	world_free(&w);
}
END_TEST

/* The session closes while its exchange waits: nothing dangles. */
START_TEST(test_close_while_waiting)
{
	struct world w;

	world_init(&w, NULL);
	smtpd_auth_backend_of(w.srv.auth, CONFIG_LISTENER_SMTP)->timeout_ms = 200;
	(void)converse(&w, "EHLO c\r\nAUTH PLAIN AHNsb3cAeA==\r\n", 2);
	ck_assert_int_eq(only_session(&w)->state, SMTPD_STATE_AUTH);
	/* It reads nothing while it waits, so it sees the client's EOF once
	 * the exchange ends (here: its time limit), then frees itself. */
	close(w.client);
	w.client = socket(AF_UNIX, SOCK_STREAM, 0);
	for (int i = 0; i < 200 && w.srv.nsessions > 0; i++)
		pump(&w, 10);
	ck_assert_uint_eq(w.srv.nsessions, 0);
	world_free(&w);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("smtpd_auth");
	TCase *tc = tcase_create("parsers");

	tcase_add_loop_test(tc, test_parse_command, 0, (int)(sizeof(cmd_rows) / sizeof(cmd_rows[0])));
	tcase_add_loop_test(tc, test_base64, 0, (int)(sizeof(b64_rows) / sizeof(b64_rows[0])));
	tcase_add_test(tc, test_base64_bounds);
	tcase_add_test(tc, test_printable);
	suite_add_tcase(s, tc);
	tc = tcase_create("session");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_convo, 0, (int)(sizeof(convos) / sizeof(convos[0])));
	tcase_add_test(tc, test_ehlo_keyword);
	tcase_add_test(tc, test_long_response);
	tcase_add_test(tc, test_backend_silent);
	tcase_add_test(tc, test_close_while_waiting);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
