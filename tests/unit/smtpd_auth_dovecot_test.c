/*
 * Unit tests for smtpd/smtpd_auth_dovecot.c: the line parser (a table of
 * good and malformed lines), tab-unescaping, and the back end against a
 * fake Dovecot auth server in this process (a listening unix socket the
 * test answers by hand): handshake, PLAIN and LOGIN exchanges, data with
 * success, and every hostile reply we could think of (over-long lines,
 * missing fields, unknown ids, bad numbers, wrong versions, an
 * auth-master socket, a server that closes, one that never answers,
 * random garbage). Each must end in a clean answer to the exchange, never
 * a crash or a hang.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/evloop.h"
#include "smtpd/smtpd_auth.h"
#include "smtpd/smtpd_auth_dovecot.h"
#include "smtpd/smtpd_auth_impl.h"

/* ---- the parser ---- */

struct parse_row {
	const char *line;
	enum smtpd_auth_dovecot_kind kind;
	unsigned id;
	const char *field;	/* mech / data / user, as parsed; NULL = absent */
	bool temp;
};

#define K(x) SMTPD_AUTH_DOVECOT_##x

static const struct parse_row parse_rows[] = {
	{ "VERSION\t1\t2", K(VERSION), 0, NULL, false },
	{ "VERSION\t1", K(BAD), 0, NULL, false },
	{ "VERSION\tx\t1", K(BAD), 0, NULL, false },
	{ "VERSION\t1234567890\t1", K(BAD), 0, NULL, false },
	{ "VERSION\t-1\t1", K(BAD), 0, NULL, false },
	{ "MECH\tPLAIN\tplaintext", K(MECH), 0, "PLAIN", false },
	{ "MECH\tSCRAM-SHA-256-PLUS", K(MECH), 0, "SCRAM-SHA-256-PLUS", false },
	{ "MECH", K(BAD), 0, NULL, false },
	{ "MECH\t", K(BAD), 0, NULL, false },
	{ "MECH\tplain", K(BAD), 0, NULL, false },
	{ "MECH\tPL AIN", K(BAD), 0, NULL, false },
	{ "MECH\tABCDEFGHIJKLMNOPQRSTU", K(BAD), 0, NULL, false },	/* 21 characters */
	{ "SPID\t4711", K(SPID), 0, NULL, false },
	{ "CUID\t1", K(OTHER), 0, NULL, false },
	{ "COOKIE\t0123abcd", K(OTHER), 0, NULL, false },
	{ "DONE", K(DONE), 0, NULL, false },
	{ "", K(OTHER), 0, NULL, false },
	{ "NEWTHING\tx=y", K(OTHER), 0, NULL, false },
	{ "ok\t1\tuser=a", K(OTHER), 0, NULL, false },	/* commands are case-sensitive */
	{ "OK\t7\tuser=alice", K(OK), 7, "alice", false },
	{ "OK\t7", K(OK), 7, NULL, false },
	{ "OK\t7\tuser=", K(OK), 7, "", false },
	{ "OK", K(BAD), 0, NULL, false },
	{ "OK\t", K(BAD), 0, NULL, false },
	{ "OK\tx\tuser=a", K(BAD), 0, NULL, false },
	{ "OK\t0\tuser=a", K(BAD), 0, NULL, false },
	{ "OK\t4294967295\tuser=a", K(OK), 4294967295u, "a", false },
	{ "OK\t4294967296\tuser=a", K(BAD), 0, NULL, false },
	{ "OK\t12345678901\tuser=a", K(BAD), 0, NULL, false },
	{ "OK\t+1\tuser=a", K(BAD), 0, NULL, false },
	{ "CONT\t3\tVXNlcm5hbWU6", K(CONT), 3, "VXNlcm5hbWU6", false },
	{ "CONT\t3\t", K(CONT), 3, "", false },
	{ "CONT\t3", K(CONT), 3, NULL, false },
	{ "FAIL\t5\treason=bad\ttemp", K(FAIL), 5, NULL, true },
	{ "FAIL\t5\tcode=temp_fail", K(FAIL), 5, NULL, true },
	{ "FAIL\t5\tuser=bob\ttemporary", K(FAIL), 5, "bob", false },
	{ "FAIL\t5", K(FAIL), 5, NULL, false },
};

START_TEST(test_parse)
{
	const struct parse_row *r = &parse_rows[_i];
	struct smtpd_auth_dovecot_line l;
	const char *got;
	size_t got_len;

	smtpd_auth_dovecot_parse(r->line, strlen(r->line), &l);
	ck_assert_msg(l.kind == r->kind, "row %d \"%s\": kind %d, want %d", _i, r->line, l.kind,
	              r->kind);
	if (r->kind == K(BAD))
		ck_assert_ptr_nonnull(l.why);
	if (r->kind == K(OK) || r->kind == K(CONT) || r->kind == K(FAIL))
		ck_assert_uint_eq(l.id, r->id);
	got = r->kind == K(MECH) ? l.mech : r->kind == K(CONT) ? l.data : l.user;
	got_len = r->kind == K(MECH) ? l.mech_len : r->kind == K(CONT) ? l.data_len : l.user_len;
	if (r->field == NULL)
		ck_assert_msg(r->kind == K(BAD) || r->kind == K(OTHER) || got == NULL,
		              "row %d: field present", _i);
	else
		ck_assert_msg(got != NULL && got_len == strlen(r->field) &&
		              memcmp(got, r->field, got_len) == 0, "row %d: field", _i);
	ck_assert_int_eq(l.temp, r->temp);
}
END_TEST

START_TEST(test_parse_flags_and_limits)
{
	struct smtpd_auth_dovecot_line l;
	char line[2048];
	int n;

	smtpd_auth_dovecot_parse("MECH\tANONYMOUS\tanonymous", 24, &l);
	ck_assert(l.kind == K(MECH) && l.anonymous && !l.private_mech);
	smtpd_auth_dovecot_parse("MECH\tEXTERNAL\tprivate\tplaintext", 30, &l);
	ck_assert(l.kind == K(MECH) && l.private_mech);
	/* Fields past SMTPD_AUTH_DOVECOT_FIELDS_MAX are not looked at. */
	n = snprintf(line, sizeof(line), "OK\t9");
	for (int i = 0; i < SMTPD_AUTH_DOVECOT_FIELDS_MAX; i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "\tx%d", i);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "\tuser=late");
	smtpd_auth_dovecot_parse(line, (size_t)n, &l);
	ck_assert(l.kind == K(OK) && l.user == NULL);
	/* A NUL inside a line is just a byte. */
	smtpd_auth_dovecot_parse("OK\t2\tuser=a\0b", 13, &l);
	ck_assert(l.kind == K(OK) && l.user_len == 3);
}
END_TEST

START_TEST(test_unescape)
{
	char out[16];

	ck_assert_int_eq(smtpd_auth_dovecot_unescape("alice", 5, out, sizeof(out)), 5);
	ck_assert_str_eq(out, "alice");
	ck_assert_int_eq(smtpd_auth_dovecot_unescape("a\001tb\001n\001l", 8, out, sizeof(out)), 5);
	ck_assert_str_eq(out, "a\tb\n\n");
	ck_assert_int_eq(smtpd_auth_dovecot_unescape("\0011\001r\001x", 6, out, sizeof(out)), 3);
	ck_assert_str_eq(out, "\001\rx");
	/* A lone escape at the end is kept as is. */
	ck_assert_int_eq(smtpd_auth_dovecot_unescape("a\001", 2, out, sizeof(out)), 2);
	/* NUL (escaped or raw) cannot be carried. */
	ck_assert_int_eq(smtpd_auth_dovecot_unescape("a\0010", 3, out, sizeof(out)), -1);
	ck_assert_int_eq(smtpd_auth_dovecot_unescape("a\0b", 3, out, sizeof(out)), -1);
	/* Too long for the destination. */
	ck_assert_int_eq(smtpd_auth_dovecot_unescape("0123456789abcdef", 16, out, sizeof(out)), -1);
	ck_assert_int_eq(smtpd_auth_dovecot_unescape("", 0, out, sizeof(out)), 0);
}
END_TEST

/* ---- the back end against a fake server ---- */

#define PUMP_TURNS_MAX 400	/* x 5 ms: a bounded wait for anything */

struct world {
	char dir[64];
	char path[100];
	struct evloop *loop;
	struct ev_timer tick;
	int lfd;		/* the fake server's listening socket */
	int cfd;		/* its accepted connection, -1 when none */
	char sbuf[65536];	/* what the server read, not yet taken */
	size_t slen;
	struct smtpd_auth_backend *b;
	struct smtpd_auth *a;
	int answers;
	struct smtpd_auth_result r;
	char challenge[SMTPD_AUTH_DATA_MAX + 1], username[300], reason[300];
};

static void
world_tick(struct ev_timer *t)
{
	evloop_break(t->arg);
}

/* Let the loop run for about ms milliseconds. */
static void
pump(struct world *w, int ms)
{
	evloop_timer_start(w->loop, &w->tick, ms);
	evloop_run(w->loop);
}

static void
on_answer(void *arg, const struct smtpd_auth_result *r)
{
	struct world *w = arg;

	w->answers++;
	w->r = *r;
	snprintf(w->challenge, sizeof(w->challenge), "%s", r->challenge);
	snprintf(w->username, sizeof(w->username), "%s", r->username);
	snprintf(w->reason, sizeof(w->reason), "%s", r->reason);
}

static void
server_accept(struct world *w)
{
	struct pollfd p = { .fd = w->lfd, .events = POLLIN };

	if (w->cfd >= 0)
		close(w->cfd);
	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	w->cfd = accept(w->lfd, NULL, NULL);
	ck_assert_int_ge(w->cfd, 0);
	w->slen = 0;
}

static void
server_send(struct world *w, const char *text, size_t len)
{
	ck_assert_int_eq(write(w->cfd, text, len), (ssize_t)len);
}

static void
server_say(struct world *w, const char *text)
{
	server_send(w, text, strlen(text));
}

/* The next line the back end wrote (without LF), pumping the loop until
 * it comes. */
static void
server_line(struct world *w, char *out, size_t outsz)
{
	for (int turn = 0; turn < PUMP_TURNS_MAX; turn++) {
		char *lf = memchr(w->sbuf, '\n', w->slen);
		ssize_t n;

		if (lf != NULL) {
			size_t len = (size_t)(lf - w->sbuf);

			ck_assert_uint_lt(len, outsz);
			memcpy(out, w->sbuf, len);
			out[len] = '\0';
			memmove(w->sbuf, lf + 1, w->slen - len - 1);
			w->slen -= len + 1;
			return;
		}
		pump(w, 5);
		n = recv(w->cfd, w->sbuf + w->slen, sizeof(w->sbuf) - w->slen, MSG_DONTWAIT);
		if (n > 0)
			w->slen += (size_t)n;
	}
	ck_abort_msg("the back end wrote no line");
}

static const char handshake[] =
    "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n"
    "MECH\tANONYMOUS\tanonymous\nMECH\tEXTERNAL\tprivate\nSPID\t4711\nCUID\t1\n"
    "COOKIE\t0123456789abcdef\nDONE\n";

/* Accept the back end's connection, check its half of the handshake,
 * send ours. */
static void
server_handshake(struct world *w, const char *ours)
{
	char line[512];

	server_accept(w);
	server_line(w, line, sizeof(line));
	ck_assert_str_eq(line, "VERSION\t1\t2");
	server_line(w, line, sizeof(line));
	ck_assert(strncmp(line, "CPID\t", 5) == 0);
	server_say(w, ours);
}

static void
world_init(struct world *w)
{
	struct sockaddr_un sun;
	char err[256];

	memset(w, 0, sizeof(*w));
	snprintf(w->dir, sizeof(w->dir), "/tmp/tern-dcauth-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(w->dir));
	snprintf(w->path, sizeof(w->path), "%s/auth-client", w->dir);
	w->loop = evloop_new();
	evloop_timer_init(&w->tick, world_tick, w->loop);
	w->cfd = -1;
	w->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", w->path);
	ck_assert_int_eq(bind(w->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(w->lfd, 8), 0);
	w->b = smtpd_auth_dovecot_new(w->loop, w->path, w->path, err, sizeof(err));
	ck_assert_ptr_nonnull(w->b);
	w->b->timeout_ms = 2000;
}

/* A back end that finished its handshake (mechanisms known). */
static void
world_ready(struct world *w)
{
	world_init(w);
	server_handshake(w, handshake);
	for (int turn = 0; turn < PUMP_TURNS_MAX && smtpd_auth_mechs(w->b)[0] == '\0'; turn++)
		pump(w, 5);
	ck_assert_str_eq(smtpd_auth_mechs(w->b), "PLAIN LOGIN");
}

static void
world_free(struct world *w)
{
	char cmd[200];

	smtpd_auth_free(w->a);
	smtpd_auth_backend_unref(w->b);
	if (w->cfd >= 0)
		close(w->cfd);
	close(w->lfd);
	evloop_free(w->loop);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
	ck_assert_int_eq(system(cmd), 0);
}

static const struct smtpd_auth_peer peer = { "192.0.2.7", 40001, "192.0.2.1", 587, false };

static void
start(struct world *w, const char *mech, const char *initial)
{
	smtpd_auth_free(w->a);
	w->answers = 0;
	w->a = smtpd_auth_start(w->b, &peer, mech, initial, on_answer, w);
}

/* Pump until the exchange is answered (exactly once). */
static void
wait_answer(struct world *w)
{
	for (int turn = 0; turn < PUMP_TURNS_MAX && w->answers == 0; turn++)
		pump(w, 5);
	ck_assert_int_eq(w->answers, 1);
}

/* "\0alice\0secret" */
#define ALICE_PLAIN "AGFsaWNlAHNlY3JldA=="

START_TEST(test_plain_ok)
{
	struct world w;
	char line[1024];

	world_ready(&w);
	start(&w, "PLAIN", ALICE_PLAIN);
	server_line(&w, line, sizeof(line));
	ck_assert_str_eq(line, "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=192.0.2.1\trip=192.0.2.7"
	                 "\tlport=587\trport=40001\tresp=" ALICE_PLAIN);
	ck_assert_int_eq(w.answers, 0);		/* never answered inside start */
	server_say(&w, "OK\t1\tuser=alice\n");
	wait_answer(&w);
	ck_assert_int_eq(w.r.status, SMTPD_AUTH_OK);
	ck_assert_str_eq(w.username, "alice");
	/* A second exchange on the same connection gets the next id. */
	start(&w, "PLAIN", "");
	server_line(&w, line, sizeof(line));
	ck_assert(strncmp(line, "AUTH\t2\tPLAIN\t", 13) == 0);
	ck_assert_ptr_nonnull(strstr(line, "\tresp="));
	server_say(&w, "FAIL\t2\treason=Password mismatch\n");
	wait_answer(&w);
	ck_assert_int_eq(w.r.status, SMTPD_AUTH_FAIL);
	ck_assert_str_eq(w.reason, "Password mismatch");
	world_free(&w);
}
END_TEST

START_TEST(test_login_steps)
{
	struct world w;
	char line[1024];

	world_ready(&w);
	start(&w, "LOGIN", NULL);
	server_line(&w, line, sizeof(line));
	ck_assert_ptr_null(strstr(line, "resp="));
	server_say(&w, "CONT\t1\tVXNlcm5hbWU6\n");
	wait_answer(&w);
	ck_assert_int_eq(w.r.status, SMTPD_AUTH_CONTINUE);
	ck_assert_str_eq(w.challenge, "VXNlcm5hbWU6");
	w.answers = 0;
	smtpd_auth_step(w.a, "YWxpY2U=");
	server_line(&w, line, sizeof(line));
	ck_assert_str_eq(line, "CONT\t1\tYWxpY2U=");
	server_say(&w, "CONT\t1\tUGFzc3dvcmQ6\n");
	wait_answer(&w);
	w.answers = 0;
	smtpd_auth_step(w.a, "c2VjcmV0");
	server_line(&w, line, sizeof(line));
	ck_assert_str_eq(line, "CONT\t1\tc2VjcmV0");
	/* Escaped user: \001t is a TAB, printed as '?' (Postfix's printable). */
	server_say(&w, "OK\t1\tuser=al\001tice\tsomething=else\n");
	wait_answer(&w);
	ck_assert_int_eq(w.r.status, SMTPD_AUTH_OK);
	ck_assert_str_eq(w.username, "al?ice");
	world_free(&w);
}
END_TEST

START_TEST(test_ok_with_data)
{
	struct world w;
	char line[1024];

	world_ready(&w);
	start(&w, "PLAIN", ALICE_PLAIN);
	server_line(&w, line, sizeof(line));
	server_say(&w, "OK\t1\tuser=alice\tresp=dj1zZXJ2ZXI=\n");
	wait_answer(&w);
	ck_assert_int_eq(w.r.status, SMTPD_AUTH_CONTINUE);
	ck_assert_str_eq(w.challenge, "dj1zZXJ2ZXI=");
	w.answers = 0;
	smtpd_auth_step(w.a, "");
	wait_answer(&w);
	ck_assert_int_eq(w.r.status, SMTPD_AUTH_OK);
	ck_assert_str_eq(w.username, "alice");
	world_free(&w);
}
END_TEST

/* Hostile replies to a pending PLAIN exchange, each on a fresh world:
 * what the server says, and the answer the exchange must get. */
struct hostile_row {
	const char *name;
	const char *reply;	/* NULL: the server closes the connection */
	size_t len;		/* 0: strlen(reply) */
	enum smtpd_auth_status want;
	const char *reason;	/* a substring of the reason, or NULL */
};

static char long_line[SMTPD_AUTH_DOVECOT_LINE_MAX + 100];

static const struct hostile_row hostile_rows[] = {
	{ "temporary FAIL", "FAIL\t1\treason=Internal error\ttemp\n", 0, SMTPD_AUTH_TEMPFAIL,
	  "Internal error" },
	{ "FAIL without reason", "FAIL\t1\n", 0, SMTPD_AUTH_FAIL, "authentication failure" },
	{ "unknown id first", "OK\t99\tuser=mallory\nFAIL\t1\treason=no\n", 0, SMTPD_AUTH_FAIL,
	  "no" },
	{ "OK without user", "OK\t1\n", 0, SMTPD_AUTH_TEMPFAIL, "no valid user=" },
	{ "OK with empty user", "OK\t1\tuser=\n", 0, SMTPD_AUTH_TEMPFAIL, "no valid user=" },
	{ "OK with NUL in user", "OK\t1\tuser=a\0010b\n", 0, SMTPD_AUTH_TEMPFAIL, "user=" },
	{ "CONT without data", "CONT\t1\n", 0, SMTPD_AUTH_TEMPFAIL, "CONT without data" },
	{ "CONT not base64", "CONT\t1\t!!!!\n", 0, SMTPD_AUTH_TEMPFAIL, "malformed challenge" },
	{ "CONT with CR", "CONT\t1\tQU\rJD\n", 0, SMTPD_AUTH_TEMPFAIL, "malformed challenge" },
	{ "two answers", "FAIL\t1\treason=first\nOK\t1\tuser=second\n", 0, SMTPD_AUTH_FAIL,
	  "first" },
	{ "bad id", "OK\tone\tuser=x\n", 0, SMTPD_AUTH_TEMPFAIL, "Connection lost" },
	{ "reply without id", "FAIL\n", 0, SMTPD_AUTH_TEMPFAIL, "Connection lost" },
	{ "bad MECH later", "MECH\tb a d\n", 0, SMTPD_AUTH_TEMPFAIL, "Connection lost" },
	{ "line too long", long_line, sizeof(long_line), SMTPD_AUTH_TEMPFAIL, "Connection lost" },
	{ "server closes", NULL, 0, SMTPD_AUTH_TEMPFAIL, "Connection lost" },
	{ "user too long",
	  "OK\t1\tuser=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 0, SMTPD_AUTH_TEMPFAIL, "no valid user=" },
};

START_TEST(test_hostile)
{
	const struct hostile_row *row = &hostile_rows[_i];
	struct world w;
	char line[1024];

	memset(long_line, 'A', sizeof(long_line));
	world_ready(&w);
	start(&w, "PLAIN", ALICE_PLAIN);
	server_line(&w, line, sizeof(line));
	if (row->reply == NULL) {
		close(w.cfd);
		w.cfd = -1;
	} else {
		server_send(&w, row->reply, row->len ? row->len : strlen(row->reply));
	}
	wait_answer(&w);
	ck_assert_msg(w.r.status == row->want, "%s: status %d, want %d (%s)", row->name,
	              w.r.status, row->want, w.reason);
	if (row->reason != NULL)
		ck_assert_msg(strstr(w.reason, row->reason) != NULL, "%s: reason \"%s\"", row->name,
		              w.reason);
	/* Whatever happened, the next exchange works (reconnecting if the
	 * connection was dropped). */
	start(&w, "PLAIN", ALICE_PLAIN);
	if (w.cfd < 0 || w.r.status == SMTPD_AUTH_TEMPFAIL)
		pump(&w, 20);
	{
		struct pollfd p = { .fd = w.lfd, .events = POLLIN };
		if (poll(&p, 1, 0) == 1)
			server_handshake(&w, handshake);
	}
	server_line(&w, line, sizeof(line));
	ck_assert(strncmp(line, "AUTH\t", 5) == 0);
	{
		char ok[64];
		unsigned id = (unsigned)strtoul(line + 5, NULL, 10);

		snprintf(ok, sizeof(ok), "OK\t%u\tuser=alice\n", id);
		server_say(&w, ok);
	}
	w.answers = 0;
	wait_answer(&w);
	ck_assert_int_eq(w.r.status, SMTPD_AUTH_OK);
	world_free(&w);
}
END_TEST

START_TEST(test_timeout_then_late_reply)
{
	struct world w;
	char line[1024];

	world_ready(&w);
	w.b->timeout_ms = 100;
	start(&w, "PLAIN", ALICE_PLAIN);
	server_line(&w, line, sizeof(line));
	wait_answer(&w);
	ck_assert_int_eq(w.r.status, SMTPD_AUTH_TEMPFAIL);
	ck_assert_str_eq(w.reason, "authentication server timed out");
	smtpd_auth_free(w.a);
	w.a = NULL;
	/* The late answer finds nobody and changes nothing. */
	server_say(&w, "OK\t1\tuser=alice\n");
	pump(&w, 30);
	ck_assert_int_eq(w.answers, 1);
	start(&w, "PLAIN", ALICE_PLAIN);
	server_line(&w, line, sizeof(line));
	ck_assert(strncmp(line, "AUTH\t2\t", 7) == 0);
	world_free(&w);
}
END_TEST

/* Handshakes the back end must refuse; the exchange then gets 454. */
static const char *const bad_handshakes[] = {
	"VERSION\t2\t0\nMECH\tPLAIN\nSPID\t1\nDONE\n",		/* other major version */
	"VERSION\t1\t1\nSPID\t1\n",				/* auth-master socket */
	"MECH\tPLAIN\nDONE\n",					/* no VERSION */
	"VERSION\t1\t2\nOK\t1\tuser=early\n",			/* a reply in the handshake */
	"VERSION\t1\t2\nMECH\t\n",				/* a bad MECH */
};

START_TEST(test_bad_handshake)
{
	struct world w;

	world_init(&w);
	start(&w, "PLAIN", ALICE_PLAIN);	/* waits for the handshake */
	server_handshake(&w, bad_handshakes[_i]);
	wait_answer(&w);
	ck_assert_int_eq(w.r.status, SMTPD_AUTH_TEMPFAIL);
	ck_assert_str_eq(smtpd_auth_mechs(w.b), "");
	world_free(&w);
}
END_TEST

START_TEST(test_server_absent)
{
	struct world w;

	world_init(&w);
	/* Drop the pending connection and the socket: nobody listens. */
	server_accept(&w);
	close(w.cfd);
	w.cfd = -1;
	pump(&w, 20);
	close(w.lfd);
	unlink(w.path);
	w.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	start(&w, "PLAIN", ALICE_PLAIN);
	ck_assert_int_eq(w.answers, 0);
	wait_answer(&w);
	ck_assert_int_eq(w.r.status, SMTPD_AUTH_TEMPFAIL);
	world_free(&w);
}
END_TEST

START_TEST(test_cancel_while_waiting)
{
	struct world w;
	char line[1024];

	world_ready(&w);
	start(&w, "PLAIN", ALICE_PLAIN);
	server_line(&w, line, sizeof(line));
	smtpd_auth_free(w.a);
	w.a = NULL;
	server_say(&w, "OK\t1\tuser=alice\n");
	pump(&w, 30);
	ck_assert_int_eq(w.answers, 0);
	world_free(&w);
}
END_TEST

/* Random bytes from the server, with a deterministic generator: any
 * answer is fine, none is a crash or a hang. */
START_TEST(test_garbage)
{
	struct world w;
	char line[1024], junk[4096];
	unsigned seed = 12345u + (unsigned)_i;

	world_ready(&w);
	start(&w, "PLAIN", ALICE_PLAIN);
	server_line(&w, line, sizeof(line));
	for (size_t k = 0; k < sizeof(junk); k++) {
		seed = seed * 1103515245u + 12345u;
		junk[k] = (char)(seed >> 16);
		/* Some lines and tabs, and now and then a reply's start. */
		if (k % 97 == 0)
			junk[k] = '\n';
		else if (k % 13 == 0)
			junk[k] = '\t';
	}
	memcpy(junk + 200, "\nCONT\t1\t", 8);
	memcpy(junk + 1000, "\nOK\t1\tuser=", 11);
	server_send(&w, junk, sizeof(junk));
	close(w.cfd);
	w.cfd = -1;
	wait_answer(&w);
	ck_assert(w.r.status == SMTPD_AUTH_TEMPFAIL || w.r.status == SMTPD_AUTH_CONTINUE ||
	          w.r.status == SMTPD_AUTH_OK || w.r.status == SMTPD_AUTH_FAIL);
	world_free(&w);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("smtpd_auth_dovecot");
	TCase *tc = tcase_create("parser");

	tcase_add_loop_test(tc, test_parse, 0, (int)(sizeof(parse_rows) / sizeof(parse_rows[0])));
	tcase_add_test(tc, test_parse_flags_and_limits);
	tcase_add_test(tc, test_unescape);
	suite_add_tcase(s, tc);
	tc = tcase_create("fake server");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_plain_ok);
	tcase_add_test(tc, test_login_steps);
	tcase_add_test(tc, test_ok_with_data);
	tcase_add_loop_test(tc, test_hostile, 0,
	                    (int)(sizeof(hostile_rows) / sizeof(hostile_rows[0])));
	tcase_add_test(tc, test_timeout_then_late_reply);
	tcase_add_loop_test(tc, test_bad_handshake, 0,
	                    (int)(sizeof(bad_handshakes) / sizeof(bad_handshakes[0])));
	tcase_add_test(tc, test_server_absent);
	tcase_add_test(tc, test_cancel_while_waiting);
	tcase_add_loop_test(tc, test_garbage, 0, 8);
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
