/*
 * Unit tests for the SMTP session state machine (smtpd_session.c,
 * smtpd_verbs.c): a real session on one end of a socketpair, with a real
 * configuration and spool in a temporary directory, and a table of
 * conversations: what the client sends, and the reply codes it must get.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/evloop.h"
#include "common/log.h"
#include "config/config.h"
#include "queue/spool.h"
#include "smtpd/smtpd_restrict.h"
#include "smtpd/smtpd_server.h"
#include "smtpd/smtpd_session.h"
#include "smtpd/smtpd_session_impl.h"

#define WORLD_DEADLINE_MS 8000

struct world {
	char dir[256];
	struct smtpd_server srv;
	struct ev_io commit_io;
	struct ev_timer tick;
	int client;
};

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
	struct world *w = t->arg;

	evloop_break(w->srv.loop);
}

static void
world_init(struct world *w, const char *extra, const char *client_ip)
{
	char path[512], spool[300], err[256];
	struct spool_options opt;
	struct sockaddr_in peer, local;
	struct buf errors;
	FILE *f;
	int sv[2];

	memset(w, 0, sizeof(*w));
	snprintf(w->dir, sizeof(w->dir), "/tmp/tern-session-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(w->dir));
	snprintf(spool, sizeof(spool), "%s/spool", w->dir);
	snprintf(path, sizeof(path), "%s/tern.conf", w->dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "queue_directory = %s\nmyhostname = tern.test\n"
	    "mydestination = tern.test, localhost\nmynetworks = 127.0.0.0/8\n"
	    "smtpd_error_sleep_time = 0\n"
	    /* Nothing listens there: the client's PTR lookup fails at once
	     * (a temporary failure), whatever the machine's DNS says. */
	    "dns_servers = 127.0.0.1:9\n%s\n", spool, extra ? extra : "");
	fclose(f);
	buf_init(&errors, 65536);
	w->srv.cfg = config_load(path, &errors);
	ck_assert_msg(w->srv.cfg != NULL, "config: %s", buf_cstr(&errors));
	buf_free(&errors);
	ck_assert_int_eq(spool_prepare(spool, getuid(), getgid(), err, sizeof(err)), 0);
	memset(&opt, 0, sizeof(opt));
	opt.fsync_threads = 2;
	opt.map_size = 1 << 20;
	w->srv.spool = spool_open(spool, &opt, err, sizeof(err));
	ck_assert_msg(w->srv.spool != NULL, "spool: %s", err);
	w->srv.loop = evloop_new();
	snprintf(w->srv.hostname, sizeof(w->srv.hostname), "tern.test");
	ck_assert_int_eq(evloop_io_add(w->srv.loop, &w->commit_io, spool_commit_fd(w->srv.spool),
	    EV_READ, world_commit, w), 0);
	evloop_timer_init(&w->tick, world_tick, w);
	buf_init(&errors, 65536);
	w->srv.rules = smtpd_restrict_new(w->srv.loop, w->srv.cfg, NULL, &errors);
	ck_assert_msg(w->srv.rules != NULL, "restrictions: %s", buf_cstr(&errors));
	buf_free(&errors);

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	w->client = sv[1];
	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	peer.sin_port = htons(40000);
	inet_pton(AF_INET, client_ip ? client_ip : "127.0.0.1", &peer.sin_addr);
	local = peer;
	local.sin_port = htons(25);
	smtpd_session_start(&w->srv, sv[0], CONFIG_LISTENER_SMTP, (struct sockaddr *)&peer,
	    sizeof(peer), (struct sockaddr *)&local, sizeof(local));
}

static void
world_free(struct world *w)
{
	char cmd[300];

	close(w->client);
	/* Let the session see EOF and free itself. */
	for (int i = 0; i < 20 && w->srv.nsessions > 0; i++) {
		evloop_timer_start(w->srv.loop, &w->tick, 10);
		evloop_run(w->srv.loop);
	}
	smtpd_restrict_free(w->srv.rules);
	spool_close(w->srv.spool);
	evloop_free(w->srv.loop);
	config_free(w->srv.cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Count final reply lines ("NNN " at a line start) in text. */
static int
count_replies(const char *text)
{
	int n = 0;
	const char *p = text;

	while (*p) {
		if (strlen(p) >= 4 && p[3] == ' ')
			n++;
		p = strchr(p, '\n');
		if (p == NULL)
			break;
		p++;
	}
	return n;
}

/* How many replies "220|250|..." names. */
static int
count_expected(const char *want)
{
	int n = 1;

	for (; *want; want++)
		n += *want == '|';
	return n;
}

/* Send input, pump the loop until want replies arrived (or the peer
 * closed), return everything received (caller frees). */
static char *
converse(struct world *w, const char *input, size_t len, int want)
{
	struct buf got;
	int64_t until;
	ssize_t n;
	size_t off = 0;
	char tmp[4096], *text;
	bool eof = false;

	buf_init(&got, 1 << 24);
	until = evloop_update_time(w->srv.loop) + WORLD_DEADLINE_MS;
	while (evloop_update_time(w->srv.loop) < until) {
		if (off < len) {
			n = write(w->client, input + off, len - off);
			if (n > 0)
				off += (size_t)n;
		}
		evloop_timer_start(w->srv.loop, &w->tick, 5);
		evloop_run(w->srv.loop);
		while ((n = read(w->client, tmp, sizeof(tmp))) > 0)
			buf_append(&got, tmp, (size_t)n);
		if (n == 0)
			eof = true;
		if (off == len && (count_replies(buf_cstr(&got)) >= want || eof))
			break;
	}
	text = strdup(buf_cstr(&got));
	buf_free(&got);
	return text;
}

/* Check that the final replies of text start with the codes in want,
 * "220|250|250 2.1.0|..." (each a prefix of its reply line). */
static void
assert_replies(const char *text, const char *want, int row)
{
	char wants[2048], *tok, *save = NULL;
	const char *p = text;
	int i = 0;

	snprintf(wants, sizeof(wants), "%s", want);
	for (tok = strtok_r(wants, "|", &save); tok; tok = strtok_r(NULL, "|", &save), i++) {
		/* Skip continuation lines of multi-line replies. */
		while (*p && strlen(p) >= 4 && p[3] == '-')
			p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p);
		ck_assert_msg(*p != '\0', "row %d: reply %d missing (want %s); got:\n%s", row, i, tok, text);
		ck_assert_msg(strncmp(p, tok, strlen(tok)) == 0, "row %d: reply %d want \"%s\"; got:\n%s",
		    row, i, tok, text);
		p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p);
	}
	while (*p && strlen(p) >= 4 && p[3] == '-')
		p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p);
	ck_assert_msg(*p == '\0', "row %d: extra replies after %s:\n%s", row, want, p);
}

struct convo {
	const char *name;
	const char *config;	/* extra configuration lines */
	const char *client_ip;	/* NULL: 127.0.0.1 */
	const char *input;	/* what the client sends, all at once */
	size_t input_len;	/* 0: strlen(input) */
	const char *replies;	/* expected reply prefixes */
	int messages;		/* messages in the spool afterwards */
};

#define MAIL_RCPT "MAIL FROM:<a@tern.test>\r\nRCPT TO:<b@tern.test>\r\n"
#define NUL_INPUT "EHLO c\r\nMAIL FROM:<a\0b@tern.test>\r\nQUIT\r\n"
#define HAPPY_START "220|250|250 2.1.0|250 2.1.5"

static const struct convo convos[] = {
	{ "basic", "", NULL,
	  "EHLO c.test\r\n" MAIL_RCPT "DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|250 2.0.0 Ok: queued as|221 2.0.0", 1 },
	{ "helo", "", NULL,
	  "HELO c.test\r\n" MAIL_RCPT "DATA\r\nhi\r\n.\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|250 2.0.0|221", 1 },
	{ "two messages", "", NULL,
	  "EHLO c\r\n" MAIL_RCPT "DATA\r\none\r\n.\r\n" MAIL_RCPT "DATA\r\ntwo\r\n.\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|250 2.0.0|250 2.1.0|250 2.1.5|354|250 2.0.0|221", 2 },
	{ "rcpt before mail", "", NULL, "EHLO c\r\nRCPT TO:<b@tern.test>\r\nQUIT\r\n", 0,
	  "220|250|503 5.5.1|221", 0 },
	{ "data without rcpt", "", NULL, "EHLO c\r\nMAIL FROM:<a@tern.test>\r\nDATA\r\nQUIT\r\n", 0,
	  "220|250|250|503 5.5.1 Error: no valid recipients|221", 0 },
	{ "nested mail", "", NULL, "EHLO c\r\n" MAIL_RCPT "MAIL FROM:<c@tern.test>\r\nQUIT\r\n", 0,
	  HAPPY_START "|503 5.5.1|221", 0 },
	{ "rset", "", NULL, "EHLO c\r\n" MAIL_RCPT "RSET\r\nRCPT TO:<b@tern.test>\r\nQUIT\r\n", 0,
	  HAPPY_START "|250 2.0.0|503 5.5.1|221", 0 },
	{ "unknown command", "", NULL, "EHLO c\r\nFOO bar\r\nMAILX\r\nQUIT\r\n", 0,
	  "220|250|500 5.5.2|500 5.5.2|221", 0 },
	{ "line too long", "line_length_limit = 64", NULL,
	  "EHLO c\r\nNOOP 0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	  "NOOP\r\nQUIT\r\n", 0, "220|250|500 5.5.2|250|221", 0 },
	{ "bad sender", "", NULL, "EHLO c\r\nMAIL FROM:<a@@b>\r\nMAIL FROM:<a b@c>\r\nQUIT\r\n", 0,
	  "220|250|501 5.1.7|501 5.1.7|221", 0 },
	{ "bad recipient", "", NULL,
	  "EHLO c\r\nMAIL FROM:<a@tern.test>\r\nRCPT TO:<>\r\nRCPT TO:<b@>\r\nQUIT\r\n", 0,
	  "220|250|250|501 5.1.3|501 5.1.3|221", 0 },
	{ "size declared too big", "message_size_limit = 1000", NULL,
	  "EHLO c\r\nMAIL FROM:<a@tern.test> SIZE=1001\r\nMAIL FROM:<a@tern.test> SIZE=1000\r\nQUIT\r\n", 0,
	  "220|250|552 5.3.4|250 2.1.0|221", 0 },
	{ "size param after HELO", "", NULL, "HELO c\r\nMAIL FROM:<a@tern.test> SIZE=10\r\nQUIT\r\n", 0,
	  "220|250|555 5.5.4|221", 0 },
	{ "content too big", "message_size_limit = 200", NULL,
	  "EHLO c\r\n" MAIL_RCPT "DATA\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	  ".\r\nNOOP\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|552 5.3.4|250|221", 0 },
	{ "too many recipients", "smtpd_recipient_limit = 2", NULL,
	  "EHLO c\r\nMAIL FROM:<a@tern.test>\r\nRCPT TO:<b@tern.test>\r\nRCPT TO:<c@tern.test>\r\n"
	  "RCPT TO:<d@tern.test>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n", 0,
	  "220|250|250|250|250|452 4.5.3|354|250 2.0.0|221", 1 },
	{ "helo required", "smtpd_helo_required = yes", NULL,
	  "MAIL FROM:<a@tern.test>\r\nHELO c\r\nMAIL FROM:<a@tern.test>\r\nQUIT\r\n", 0,
	  "220|503 5.5.1|250|250 2.1.0|221", 0 },
	{ "mail without helo allowed", "", NULL, "MAIL FROM:<a@tern.test>\r\nQUIT\r\n", 0,
	  "220|250 2.1.0|221", 0 },
	{ "vrfy", "", NULL, "VRFY bob\r\nVRFY\r\nQUIT\r\n", 0, "220|252 2.0.0|501 5.5.4|221", 0 },
	{ "vrfy disabled", "disable_vrfy_command = yes", NULL, "VRFY bob\r\nQUIT\r\n", 0,
	  "220|502 5.5.1|221", 0 },
	{ "not implemented", "", NULL, "STARTTLS\r\nEXPN x\r\nQUIT\r\n", 0,
	  "220|502 5.5.1|502 5.5.1|221", 0 },
	/* AUTH without smtpd_sasl_auth_enable (tests/unit/smtpd_auth_test.c
	 * has the rest). */
	{ "auth not enabled", "", NULL, "EHLO c\r\nAUTH PLAIN\r\nQUIT\r\n", 0,
	  "220|250|503 5.5.1|221", 0 },
	{ "hard error limit", "smtpd_hard_error_limit = 3", NULL, "A\r\nB\r\nC\r\nNOOP\r\n", 0,
	  "220|500|500|500|421 4.7.0", 0 },
	{ "bare LF rejected", "smtpd_forbid_bare_newline = reject", NULL,
	  "EHLO c\r\n" MAIL_RCPT "DATA\r\nline one\nline two\r\n.\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|550 5.5.2|221", 0 },
	{ "bare LF normalised", "", NULL,
	  "EHLO c\r\n" MAIL_RCPT "DATA\r\nline one\nline two\r\n.\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|250 2.0.0|221", 1 },
	/* Smuggling: none of these ends DATA; the commands after them are
	 * message text, and only the final CRLF.CRLF ends the one message. */
	{ "smuggle LF.LF", "", NULL,
	  "EHLO c\r\n" MAIL_RCPT "DATA\r\nx\n.\nMAIL FROM:<e@vil>\r\nRCPT TO:<b@tern.test>\r\nDATA\r\ny\r\n.\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|250 2.0.0|221", 1 },
	{ "smuggle LF.CRLF", "", NULL,
	  "EHLO c\r\n" MAIL_RCPT "DATA\r\nx\n.\r\nMAIL FROM:<e@vil>\r\nRCPT TO:<b@tern.test>\r\nDATA\r\ny\r\n.\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|250 2.0.0|221", 1 },
	{ "smuggle CRLF.LF", "", NULL,
	  "EHLO c\r\n" MAIL_RCPT "DATA\r\nx\r\n.\nMAIL FROM:<e@vil>\r\nRCPT TO:<b@tern.test>\r\nDATA\r\ny\r\n.\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|250 2.0.0|221", 1 },
	{ "smuggle CR.CR", "", NULL,
	  "EHLO c\r\n" MAIL_RCPT "DATA\r\nx\r.\rMAIL FROM:<e@vil>\r\nRCPT TO:<b@tern.test>\r\nDATA\r\ny\r\n.\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|250 2.0.0|221", 1 },
	{ "smuggle rejected", "smtpd_forbid_bare_newline = reject", NULL,
	  "EHLO c\r\n" MAIL_RCPT "DATA\r\nx\n.\nMAIL FROM:<e@vil>\r\nRCPT TO:<b@tern.test>\r\nDATA\r\ny\r\n.\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|550 5.5.2|221", 0 },
	{ "bdat", "", NULL,
	  "EHLO c\r\n" MAIL_RCPT "BDAT 5\r\nhelloBDAT 7\r\n world\nBDAT 0 LAST\r\nQUIT\r\n", 0,
	  HAPPY_START "|250 2.0.0 Ok: 5|250 2.0.0 Ok: 13|250 2.0.0 Ok: queued as|221", 1 },
	{ "bdat last in one", "", NULL,
	  "EHLO c\r\n" MAIL_RCPT "BDAT 4 LAST\r\nabcdQUIT\r\n", 0,
	  HAPPY_START "|250 2.0.0 Ok: queued as|221", 1 },
	/* A refused chunk is still read, so its bytes are never commands. */
	{ "bdat refused stays in sync", "", NULL,
	  "EHLO c\r\nBDAT 12\r\nQUIT\r\nQUIT\r\nNOOP\r\nQUIT\r\n", 0,
	  "220|250|503 5.5.1|250 2.0.0|221", 0 },
	{ "bdat after helo", "", NULL, "HELO c\r\n" MAIL_RCPT "BDAT 3 LAST\r\nabcQUIT\r\n", 0,
	  HAPPY_START "|503 5.5.1|221", 0 },
	{ "data after bdat", "", NULL, "EHLO c\r\n" MAIL_RCPT "BDAT 3\r\nabcDATA\r\nQUIT\r\n", 0,
	  HAPPY_START "|250 2.0.0 Ok: 3|503 5.5.1|221", 0 },
	{ "relay denied", "", "192.0.2.1",
	  "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<v@other.test>\r\nRCPT TO:<v%other.test@tern.test>\r\n"
	  "RCPT TO:<@tern.test:v@other.test>\r\nRCPT TO:<\"v@other.test\"@tern.test>\r\nRCPT TO:<Postmaster>\r\n"
	  "RCPT TO:<v@[192.0.2.9]>\r\nRCPT TO:<v@TERN.test.>\r\nQUIT\r\n", 0,
	  "220|250|250|554 5.7.1|554 5.7.1|554 5.7.1|554 5.7.1|250 2.1.5|554 5.7.1|250 2.1.5|221", 0 },
	{ "relay for mynetworks", "", "127.0.0.9",
	  "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<v@other.test>\r\nQUIT\r\n", 0,
	  "220|250|250|250 2.1.5|221", 0 },
	{ "no relay rule is no relay", "smtpd_relay_restrictions =\nsmtpd_recipient_restrictions = permit_mynetworks",
	  "192.0.2.1", "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<v@other.test>\r\nQUIT\r\n", 0,
	  "220|250|250|451 4.3.5|221", 0 },
	{ "dsn params", "", NULL,
	  "EHLO c\r\nMAIL FROM:<a@tern.test> RET=HDRS ENVID=abc+2Bd\r\n"
	  "RCPT TO:<b@tern.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@tern.test\r\n"
	  "RCPT TO:<c@tern.test> NOTIFY=NEVER,SUCCESS\r\nDATA\r\nx\r\n.\r\nQUIT\r\n", 0,
	  "220|250|250 2.1.0|250 2.1.5|501 5.5.4|354|250 2.0.0|221", 1 },
	{ "hop count", "hopcount_limit = 3", NULL,
	  "EHLO c\r\n" MAIL_RCPT "DATA\r\nReceived: a\r\nReceived: b\r\nReceived: c\r\n\r\nx\r\n.\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|554 5.4.6|221", 0 },
	{ "long content line", "message_line_length_limit = 50", NULL,
	  "EHLO c\r\n" MAIL_RCPT "DATA\r\n0123456789012345678901234567890123456789012345678901234567890123456789\r\n.\r\nQUIT\r\n", 0,
	  HAPPY_START "|354|554 5.6.0|221", 0 },
	{ "nul in command", "", NULL, NUL_INPUT, sizeof(NUL_INPUT) - 1,
	  "220|250|501|221", 0 },
	/* The client's names: the DNS fails (nothing at 127.0.0.1:9), so
	 * both are unknown for now: 450 whatever unknown_client_reject_code
	 * says, at once (not a defer_if_permit: the permit after it loses). */
	{ "names: DNS trouble is 450", "smtpd_client_restrictions = reject_unknown_client_hostname, permit\n"
	  "unknown_client_reject_code = 550", "192.0.2.1",
	  "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@tern.test>\r\nQUIT\r\n", 0,
	  "220|250|250|450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.1]|221", 0 },
	{ "names: reverse, DNS trouble is 450",
	  "smtpd_client_restrictions = reject_unknown_reverse_client_hostname\n"
	  "unknown_client_reject_code = 550", "192.0.2.1",
	  "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@tern.test>\r\nQUIT\r\n", 0,
	  "220|250|250|450 4.7.1 Client host rejected: cannot find your reverse hostname|221", 0 },
	/* smtpd_peername_lookup = no: unknown for good, as Postfix. */
	{ "names: no lookup is permanent", "smtpd_peername_lookup = no\n"
	  "smtpd_client_restrictions = reject_unknown_client_hostname\nunknown_client_reject_code = 550",
	  "192.0.2.1", "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@tern.test>\r\nQUIT\r\n", 0,
	  "220|250|250|550 5.7.25 Client host rejected: cannot find your hostname|221", 0 },
	{ "names: another listener's override", "submission_smtpd_peername_lookup = no\n"
	  "smtpd_client_restrictions = reject_unknown_reverse_client_hostname\n"
	  "unknown_client_reject_code = 550", "192.0.2.1",
	  "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@tern.test>\r\nQUIT\r\n", 0,
	  "220|250|250|450 4.7.1|221", 0 },
};

static int
spool_count_cb(void *arg, const char *id, const struct envelope *env)
{
	(void)id;
	(void)env;
	(*(int *)arg)++;
	return 0;
}

START_TEST(test_conversation)
{
	const struct convo *c = &convos[_i];
	struct world w;
	char *got, err[256];
	int count = 0;

	world_init(&w, c->config, c->client_ip);
	got = converse(&w, c->input, c->input_len ? c->input_len : strlen(c->input),
	    count_expected(c->replies));
	assert_replies(got, c->replies, _i);
	ck_assert_int_eq(spool_walk(w.srv.spool, spool_count_cb, &count, err, sizeof(err)), SPOOL_OK);
	ck_assert_msg(count == c->messages, "row %d (%s): %d messages in the spool, want %d",
	    _i, c->name, count, c->messages);
	free(got);
	world_free(&w);
}
END_TEST

/* The message file holds our Received header and then the content exactly
 * (dot-unstuffed, CRLF); the envelope holds what the client said. */
static int
spool_first_cb(void *arg, const char *id, const struct envelope *env)
{
	struct envelope *out = arg;

	(void)id;
	envelope_copy(out, env);
	return 1;
}

START_TEST(test_content_byte_exact)
{
	static const char body[] = "Subject: t\r\n\r\n..leading dot\r\n.\xff\xfe 8bit\r\nlast";
	static const char want[] = "Subject: t\r\n\r\n.leading dot\r\n\xff\xfe 8bit\r\nlast\r\n";
	struct envelope env;
	struct world w;
	char *got, input[1024], path[512], err[256], file[4096], *p;
	FILE *f;
	size_t n;

	world_init(&w, "", NULL);
	snprintf(input, sizeof(input), "EHLO c\r\nMAIL FROM:<a@tern.test> BODY=8BITMIME\r\n"
	    "RCPT TO:<b@tern.test>\r\nDATA\r\n%s\r\n.\r\nQUIT\r\n", body);
	got = converse(&w, input, strlen(input), 6);
	assert_replies(got, HAPPY_START "|354|250 2.0.0|221", 0);
	envelope_init(&env);
	ck_assert_int_eq(spool_walk(w.srv.spool, spool_first_cb, &env, err, sizeof(err)), SPOOL_OK);
	ck_assert_str_eq(env.sender, "a@tern.test");
	ck_assert_uint_eq(env.nrcpt, 1);
	ck_assert_str_eq(env.rcpts[0].addr, "b@tern.test");
	ck_assert_str_eq(env.client_addr, "127.0.0.1");
	ck_assert_str_eq(env.helo, "c");
	ck_assert_int_eq(env.body, ENVELOPE_BODY_8BITMIME);
	p = strstr(got, "queued as ");
	ck_assert_ptr_nonnull(p);
	p += strlen("queued as ");
	p[SPOOL_ID_LEN] = '\0';
	ck_assert_int_eq(spool_msg_path(w.srv.spool, p, path, sizeof(path)), 0);
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	n = fread(file, 1, sizeof(file) - 1, f);
	fclose(f);
	file[n] = '\0';
	/* 127.0.0.1 is "localhost" without a DNS question (smtpd_peer.h). */
	{
		static const char received[] =
		    "Received: from c (localhost [127.0.0.1])\r\n\tby tern.test (tern) with ESMTP id ";

		ck_assert_msg(strncmp(file, received, sizeof(received) - 1) == 0, "header: %s", file);
	}
	ck_assert_ptr_nonnull(strstr(file, "\r\n\tfor <b@tern.test>; "));
	/* The header ends at the first CRLF not followed by a TAB. */
	for (p = strstr(file, "\r\n"); p != NULL && p[2] == '\t'; p = strstr(p + 2, "\r\n"))
		;
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(n - (size_t)(p + 2 - file), strlen(want));
	ck_assert_mem_eq(p + 2, want, strlen(want));
	ck_assert_uint_eq(env.size, n);
	envelope_free(&env);
	free(got);
	world_free(&w);
}
END_TEST

/* ---- the client's names: a DNS server that never answers ---- */

/* A UDP socket on 127.0.0.1 that nobody reads: a silent DNS server. */
static int
silent_dns(unsigned *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
silent_world(struct world *w, int *dns, const char *timeout)
{
	char extra[512];
	unsigned port;

	*dns = silent_dns(&port);
	snprintf(extra, sizeof(extra), "dns_servers = 127.0.0.1:%u\n"
	    "smtpd_peername_lookup_timeout = %s\n"
	    "smtpd_client_restrictions = reject_unknown_client_hostname\n"
	    "unknown_client_reject_code = 550", port, timeout);
	world_init(w, extra, "192.0.2.1");
	/* Counted, and waiting for its names: nothing sent yet. */
	ck_assert_uint_eq(w->srv.nsessions, 1);
	ck_assert_ptr_nonnull(w->srv.sessions);
	ck_assert_int_eq(w->srv.sessions->state, SMTPD_STATE_LOOKUP);
}

/* The deadline: greeted then, unknown for now, so 450 (not the 550). */
START_TEST(test_lookup_deadline)
{
	static const char in[] = "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@tern.test>\r\nQUIT\r\n";
	struct world w;
	char *got;
	int dns;

	silent_world(&w, &dns, "2s");
	/* A moment of the loop: the silent server keeps it waiting (a DNS
	 * that refused would have ended the wait at once). */
	evloop_timer_start(w.srv.loop, &w.tick, 100);
	evloop_run(w.srv.loop);
	ck_assert_int_eq(w.srv.sessions->state, SMTPD_STATE_LOOKUP);
	got = converse(&w, in, sizeof(in) - 1, 5);
	assert_replies(got, "220|250|250 2.1.0|450 4.7.25 Client host rejected: cannot find your "
	    "hostname, [192.0.2.1]|221", 0);
	free(got);
	world_free(&w);
	close(dns);
}
END_TEST

/* A drain while the names are looked up: 421 as the greeting, closed. */
START_TEST(test_lookup_drain)
{
	struct world w;
	char *got;
	int dns;

	silent_world(&w, &dns, "60s");
	smtpd_session_drain(w.srv.sessions);
	got = converse(&w, "", 0, 1);
	assert_replies(got, "421 4.3.2 tern.test Service shutting down", 0);
	ck_assert_uint_eq(w.srv.nsessions, 0);
	free(got);
	world_free(&w);
	close(dns);
}
END_TEST

/* The drain timeout: abort answers 421 and frees at once. */
START_TEST(test_lookup_abort)
{
	struct world w;
	char *got;
	int dns;

	silent_world(&w, &dns, "60s");
	smtpd_session_abort(w.srv.sessions);
	ck_assert_uint_eq(w.srv.nsessions, 0);
	got = converse(&w, "", 0, 1);
	assert_replies(got, "421 4.3.2", 0);
	free(got);
	world_free(&w);
	close(dns);
}
END_TEST

/* The idle timeout ends the session with 421 4.4.2. */
START_TEST(test_timeout)
{
	struct world w;
	char *got;

	world_init(&w, "smtpd_timeout = 1s", NULL);
	got = converse(&w, "EHLO c\r\n", 8, 3);
	assert_replies(got, "220|250|421 4.4.2", 0);
	free(got);
	world_free(&w);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("smtpd_session");
	TCase *tc = tcase_create("conversations");
	SRunner *sr;
	int failed;

	/* Quiet unless TERN_TEST_LOG is set. */
	log_open("smtpd", getenv("TERN_TEST_LOG") ? LOG_SINK_STDERR : 0, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_conversation, 0, (int)(sizeof(convos) / sizeof(convos[0])));
	tcase_add_test(tc, test_content_byte_exact);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_lookup_deadline);
	tcase_add_test(tc, test_lookup_drain);
	tcase_add_test(tc, test_lookup_abort);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
