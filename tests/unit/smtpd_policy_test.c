/*
 * Unit tests for smtpd_policy: request encoding, reply decoding (good and
 * malformed replies), endpoint parsing, and the client on a live unix
 * socket served by this test in the same event loop: connection reuse,
 * a server that never answers (timeout), a malformed reply, a refused
 * connection.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/evloop.h"
#include "smtpd/smtpd_policy.h"

START_TEST(test_encode)
{
	struct smtpd_policy_attrs a;
	struct buf out;
	const char *text;
	static const char *const names[] = {
		"request=smtpd_access_policy\n", "protocol_state=RCPT\n", "protocol_name=ESMTP\n",
		"helo_name=c.test\n", "queue_id=\n", "sender=a@x.test\n", "recipient=b@y.test\n",
		"recipient_count=0\n", "client_address=192.0.2.1\n", "client_name=unknown\n",
		"reverse_client_name=unknown\n", "instance=1.2.3\n", "sasl_method=\n",
		"sasl_username=\n", "sasl_sender=\n", "size=1234\n", "ccert_subject=\n",
		"ccert_issuer=\n", "ccert_fingerprint=\n", "ccert_pubkey_fingerprint=\n",
		"encryption_protocol=\n", "encryption_cipher=\n", "encryption_keysize=0\n",
		"etrn_domain=\n", "stress=\n", "client_port=40000\n", "policy_context=smtp\n",
		"server_address=192.0.2.25\n", "server_port=25\n", "mail_version=tern\n",
	};
	size_t i;

	memset(&a, 0, sizeof(a));
	a.protocol_state = "RCPT";
	a.protocol_name = "ESMTP";
	a.helo_name = "c.test";
	a.sender = "a@x.test";
	a.recipient = "b@y.test";
	a.client_address = "192.0.2.1";
	a.client_name = "unknown";
	a.reverse_client_name = "unknown";
	a.client_port = 40000;
	a.server_address = "192.0.2.25";
	a.server_port = 25;
	a.instance = "1.2.3";
	a.size = 1234;
	a.policy_context = "smtp";
	a.mail_version = "tern";
	buf_init(&out, SMTPD_POLICY_REQUEST_MAX);
	ck_assert_int_eq(smtpd_policy_encode(&a, &out), BUF_OK);
	text = buf_cstr(&out);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ck_assert_msg(strstr(text, names[i]) != NULL, "missing %s", names[i]);
	ck_assert(strncmp(text, "request=smtpd_access_policy\n", 28) == 0);
	ck_assert(buf_len(&out) >= 2 && strcmp(text + buf_len(&out) - 2, "\n\n") == 0);
	ck_assert(strstr(text, "\n\n") == text + buf_len(&out) - 2);

	/* A line break in a value cannot end the request or add an attribute. */
	buf_reset(&out);
	a.helo_name = "evil\n\naction=OK\r\n";
	ck_assert_int_eq(smtpd_policy_encode(&a, &out), BUF_OK);
	ck_assert(strstr(buf_cstr(&out), "helo_name=evil??action=OK??\n") != NULL);
	ck_assert(strstr(buf_cstr(&out), "\n\n") == buf_cstr(&out) + buf_len(&out) - 2);

	/* Too small a buffer: nothing is left half-written. */
	buf_free(&out);
	buf_init(&out, 64);
	ck_assert_int_eq(smtpd_policy_encode(&a, &out), BUF_TOO_BIG);
	ck_assert_uint_eq(buf_len(&out), 0);
	buf_free(&out);
}
END_TEST

static const struct {
	const char *reply;
	enum smtpd_policy_decode_result want;
	const char *action;		/* OK: the action; BAD: a word of why */
	size_t consumed;		/* OK: 0 = the whole reply */
} decode_rows[] = {
	{ "action=DUNNO\n\n", SMTPD_POLICY_DECODE_OK, "DUNNO", 0 },
	{ "action=DUNNO\r\n\r\n", SMTPD_POLICY_DECODE_OK, "DUNNO", 0 },
	{ "x-extra=1\naction=defer_if_permit Greylisted, see http://x/\nfoo=bar\n\n",
	  SMTPD_POLICY_DECODE_OK, "defer_if_permit Greylisted, see http://x/", 0 },
	{ "action=450 4.2.0 a=b=c\n\n", SMTPD_POLICY_DECODE_OK, "450 4.2.0 a=b=c", 0 },
	{ "action=OK\n\naction=REJECT\n\n", SMTPD_POLICY_DECODE_OK, "OK", 11 },
	{ "action=DUNNO\n", SMTPD_POLICY_DECODE_MORE, NULL, 0 },
	{ "action=DUN", SMTPD_POLICY_DECODE_MORE, NULL, 0 },
	{ "", SMTPD_POLICY_DECODE_MORE, NULL, 0 },
	{ "\n", SMTPD_POLICY_DECODE_BAD, "without action", 0 },
	{ "foo=bar\n\n", SMTPD_POLICY_DECODE_BAD, "without action", 0 },
	{ "DUNNO\n\n", SMTPD_POLICY_DECODE_BAD, "name=value", 0 },
	{ "=DUNNO\n\n", SMTPD_POLICY_DECODE_BAD, "name=value", 0 },
	{ "action=\n\n", SMTPD_POLICY_DECODE_BAD, "empty", 0 },
	{ "action=OK\naction=REJECT\n\n", SMTPD_POLICY_DECODE_BAD, "more than one", 0 },
	{ "Action=OK\n\n", SMTPD_POLICY_DECODE_BAD, "without action", 0 },
};

START_TEST(test_decode)
{
	char action[SMTPD_POLICY_ACTION_MAX + 1];
	const char *why = NULL, *r = decode_rows[_i].reply;
	size_t used = 0;
	enum smtpd_policy_decode_result d;

	d = smtpd_policy_decode(r, strlen(r), action, sizeof(action), &used, &why);
	ck_assert_msg(d == decode_rows[_i].want, "row %d: %d", _i, d);
	if (d == SMTPD_POLICY_DECODE_OK) {
		ck_assert_str_eq(action, decode_rows[_i].action);
		ck_assert_uint_eq(used, decode_rows[_i].consumed ? decode_rows[_i].consumed : strlen(r));
	} else if (d == SMTPD_POLICY_DECODE_BAD) {
		ck_assert_msg(strstr(why, decode_rows[_i].action) != NULL, "row %d: %s", _i, why);
	}
}
END_TEST

START_TEST(test_decode_limits)
{
	char action[SMTPD_POLICY_ACTION_MAX + 1];
	char *big = malloc(SMTPD_POLICY_REPLY_MAX + 64);
	const char *why = NULL;
	size_t used;

	/* An action one byte too long. */
	memcpy(big, "action=", 7);
	memset(big + 7, 'x', SMTPD_POLICY_ACTION_MAX + 1);
	memcpy(big + 7 + SMTPD_POLICY_ACTION_MAX + 1, "\n\n", 3);
	ck_assert_int_eq(smtpd_policy_decode(big, strlen(big), action, sizeof(action), &used, &why),
	    SMTPD_POLICY_DECODE_BAD);
	ck_assert(strstr(why, "too long") != NULL);
	/* A reply that never ends. */
	memset(big, 'y', SMTPD_POLICY_REPLY_MAX + 10);
	ck_assert_int_eq(smtpd_policy_decode(big, SMTPD_POLICY_REPLY_MAX + 10, action, sizeof(action),
	    &used, &why), SMTPD_POLICY_DECODE_BAD);
	/* A NUL inside. */
	ck_assert_int_eq(smtpd_policy_decode("action=O\0K\n\n", 12, action, sizeof(action), &used,
	    &why), SMTPD_POLICY_DECODE_BAD);
	free(big);
}
END_TEST

START_TEST(test_endpoint)
{
	struct sockaddr_storage ss;
	unsigned len;
	const char *why;

	ck_assert_int_eq(smtpd_policy_endpoint("inet:127.0.0.1:10023", &ss, &len, &why), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_int_eq(smtpd_policy_endpoint("inet:localhost:10023", &ss, &len, &why), 0);
	ck_assert_int_eq(smtpd_policy_endpoint("inet:[::1]:10023", &ss, &len, &why), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ck_assert_int_eq(smtpd_policy_endpoint("unix:/run/postgrey.sock", &ss, &len, &why), 0);
	ck_assert_int_eq(ss.ss_family, AF_UNIX);
	ck_assert_int_eq(smtpd_policy_endpoint("inet:127.0.0.1:0", &ss, &len, &why), -1);
	ck_assert_int_eq(smtpd_policy_endpoint("inet:127.0.0.1:70000", &ss, &len, &why), -1);
	ck_assert_int_eq(smtpd_policy_endpoint("inet:127.0.0.1", &ss, &len, &why), -1);
	ck_assert_int_eq(smtpd_policy_endpoint("inet:policy.example:9", &ss, &len, &why), -1);
	ck_assert_int_eq(smtpd_policy_endpoint("unix:", &ss, &len, &why), -1);
	ck_assert_int_eq(smtpd_policy_endpoint("tcp:1.2.3.4:5", &ss, &len, &why), -1);
}
END_TEST

/* ---- a policy server in this process ---- */

enum srv_mode { SRV_DUNNO, SRV_SILENT, SRV_GARBAGE };

struct srv {
	struct evloop *loop;
	int lfd;
	struct ev_io lio;
	struct ev_io cio[4];
	int cfd[4];
	char in[4][4096];
	size_t inlen[4];
	unsigned accepts;
	unsigned requests;
	enum srv_mode mode;
	char path[108];
};

struct outcome {
	unsigned calls;
	enum smtpd_policy_status st[4];
	char action[4][128];
	struct evloop *loop;
	unsigned want;
};

static void
srv_client(struct ev_io *io, unsigned revents)
{
	struct srv *s = io->arg;
	size_t i = (size_t)(io - s->cio);
	ssize_t n;
	char *end;

	(void)revents;
	n = read(s->cfd[i], s->in[i] + s->inlen[i], sizeof(s->in[i]) - 1 - s->inlen[i]);
	if (n <= 0) {
		evloop_io_del(s->loop, io);
		close(s->cfd[i]);
		s->cfd[i] = -1;
		return;
	}
	s->inlen[i] += (size_t)n;
	s->in[i][s->inlen[i]] = '\0';
	while ((end = strstr(s->in[i], "\n\n")) != NULL) {
		size_t used = (size_t)(end + 2 - s->in[i]);

		ck_assert(strncmp(s->in[i], "request=smtpd_access_policy\n", 28) == 0);
		s->requests++;
		if (s->mode == SRV_DUNNO)
			ck_assert_int_eq(write(s->cfd[i], "action=DUNNO\n\n", 14), 14);
		else if (s->mode == SRV_GARBAGE)
			ck_assert_int_eq(write(s->cfd[i], "hello there\n\n", 13), 13);
		memmove(s->in[i], s->in[i] + used, s->inlen[i] - used + 1);
		s->inlen[i] -= used;
	}
}

static void
srv_accept(struct ev_io *io, unsigned revents)
{
	struct srv *s = io->arg;
	int fd = accept(s->lfd, NULL, NULL);
	size_t i;

	(void)revents;
	if (fd < 0)
		return;
	for (i = 0; i < 4 && s->cfd[i] >= 0; i++)
		;
	ck_assert_uint_lt(i, 4);
	s->cfd[i] = fd;
	s->inlen[i] = 0;
	s->accepts++;
	ck_assert_int_eq(evloop_io_add(s->loop, &s->cio[i], fd, EV_READ, srv_client, s), 0);
}

static void
srv_start(struct srv *s, struct evloop *loop, enum srv_mode mode)
{
	struct sockaddr_un un;
	size_t i;

	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->mode = mode;
	for (i = 0; i < 4; i++)
		s->cfd[i] = -1;
	snprintf(s->path, sizeof(s->path), "/tmp/tern-policy-%d.sock", (int)getpid());
	unlink(s->path);
	s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	memcpy(un.sun_path, s->path, strlen(s->path) + 1);
	ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&un, sizeof(un)), 0);
	ck_assert_int_eq(listen(s->lfd, 8), 0);
	ck_assert_int_eq(evloop_io_add(loop, &s->lio, s->lfd, EV_READ, srv_accept, s), 0);
}

static void
srv_stop(struct srv *s)
{
	size_t i;

	for (i = 0; i < 4; i++)
		if (s->cfd[i] >= 0) {
			evloop_io_del(s->loop, &s->cio[i]);
			close(s->cfd[i]);
		}
	evloop_io_del(s->loop, &s->lio);
	close(s->lfd);
	unlink(s->path);
}

static void
got(void *arg, enum smtpd_policy_status st, const char *action)
{
	struct outcome *o = arg;

	ck_assert_uint_lt(o->calls, 4);
	o->st[o->calls] = st;
	snprintf(o->action[o->calls], sizeof(o->action[0]), "%s", action);
	if (++o->calls >= o->want)
		evloop_break(o->loop);
}

static void
guard(struct ev_timer *t)
{
	evloop_break(t->arg);
}

/* Run the loop until o has want answers, at most 10 s. */
static void
run_until(struct evloop *loop, struct outcome *o, unsigned want)
{
	struct ev_timer g;

	o->loop = loop;
	o->want = want;
	evloop_timer_init(&g, guard, loop);
	evloop_timer_start(loop, &g, 10000);
	if (o->calls < want)
		evloop_run(loop);
	evloop_timer_stop(loop, &g);
}

static const char req[] = "request=smtpd_access_policy\nprotocol_state=RCPT\n\n";

START_TEST(test_client_reuse)
{
	struct evloop *loop = evloop_new();
	struct smtpd_policy_client *c;
	struct outcome o = { 0 };
	struct srv s;
	char ep[128];
	const char *why;

	srv_start(&s, loop, SRV_DUNNO);
	snprintf(ep, sizeof(ep), "unix:%s", s.path);
	c = smtpd_policy_client_new(loop, ep, 5000, 60000, 60000, &why);
	ck_assert_ptr_nonnull(c);
	smtpd_policy_ask(c, req, sizeof(req) - 1, got, &o);
	run_until(loop, &o, 1);
	ck_assert_uint_eq(o.calls, 1);
	ck_assert_int_eq(o.st[0], SMTPD_POLICY_OK);
	ck_assert_str_eq(o.action[0], "DUNNO");
	smtpd_policy_ask(c, req, sizeof(req) - 1, got, &o);
	run_until(loop, &o, 2);
	ck_assert_int_eq(o.st[1], SMTPD_POLICY_OK);
	ck_assert_uint_eq(s.accepts, 1);		/* the same connection */
	ck_assert_uint_eq(s.requests, 2);
	ck_assert_uint_eq(smtpd_policy_client_connections(c), 1);
	smtpd_policy_client_free(c);
	srv_stop(&s);
	evloop_free(loop);
}
END_TEST

START_TEST(test_client_timeout)
{
	struct evloop *loop = evloop_new();
	struct smtpd_policy_client *c;
	struct outcome o = { 0 };
	struct srv s;
	char ep[128];
	const char *why;

	srv_start(&s, loop, SRV_SILENT);
	snprintf(ep, sizeof(ep), "unix:%s", s.path);
	c = smtpd_policy_client_new(loop, ep, 200, 60000, 60000, &why);
	ck_assert_ptr_nonnull(c);
	smtpd_policy_ask(c, req, sizeof(req) - 1, got, &o);
	run_until(loop, &o, 1);
	ck_assert_int_eq(o.st[0], SMTPD_POLICY_TIMEOUT);
	ck_assert(strstr(o.action[0], "timeout") != NULL);
	ck_assert_uint_eq(smtpd_policy_client_connections(c), 0);	/* dropped */
	smtpd_policy_client_free(c);
	srv_stop(&s);
	evloop_free(loop);
}
END_TEST

START_TEST(test_client_garbage)
{
	struct evloop *loop = evloop_new();
	struct smtpd_policy_client *c;
	struct outcome o = { 0 };
	struct srv s;
	char ep[128];
	const char *why;

	srv_start(&s, loop, SRV_GARBAGE);
	snprintf(ep, sizeof(ep), "unix:%s", s.path);
	c = smtpd_policy_client_new(loop, ep, 5000, 60000, 60000, &why);
	smtpd_policy_ask(c, req, sizeof(req) - 1, got, &o);
	run_until(loop, &o, 1);
	ck_assert_int_eq(o.st[0], SMTPD_POLICY_FAILED);
	ck_assert(strstr(o.action[0], "name=value") != NULL);
	smtpd_policy_client_free(c);
	srv_stop(&s);
	evloop_free(loop);
}
END_TEST

START_TEST(test_client_refused)
{
	struct evloop *loop = evloop_new();
	struct smtpd_policy_client *c;
	struct outcome o = { 0 };
	const char *why;

	c = smtpd_policy_client_new(loop, "unix:/tmp/tern-policy-nobody-here.sock", 5000, 60000,
	    60000, &why);
	ck_assert_ptr_nonnull(c);
	smtpd_policy_ask(c, req, sizeof(req) - 1, got, &o);
	smtpd_policy_ask(c, req, sizeof(req) - 1, got, &o);
	ck_assert_uint_eq(o.calls, 0);		/* never from inside ask */
	run_until(loop, &o, 2);
	ck_assert_int_eq(o.st[0], SMTPD_POLICY_FAILED);
	ck_assert_int_eq(o.st[1], SMTPD_POLICY_FAILED);
	smtpd_policy_client_free(c);
	evloop_free(loop);
}
END_TEST

START_TEST(test_client_cancel)
{
	struct evloop *loop = evloop_new();
	struct smtpd_policy_client *c;
	struct smtpd_policy_req *r;
	struct outcome o = { 0 };
	struct srv s;
	char ep[128];
	const char *why;

	srv_start(&s, loop, SRV_DUNNO);
	snprintf(ep, sizeof(ep), "unix:%s", s.path);
	c = smtpd_policy_client_new(loop, ep, 5000, 60000, 60000, &why);
	r = smtpd_policy_ask(c, req, sizeof(req) - 1, got, &o);
	smtpd_policy_cancel(r);
	smtpd_policy_ask(c, req, sizeof(req) - 1, got, &o);
	run_until(loop, &o, 1);
	ck_assert_uint_eq(o.calls, 1);
	ck_assert_int_eq(o.st[0], SMTPD_POLICY_OK);
	/* Pending requests are dropped without callbacks. */
	smtpd_policy_ask(c, req, sizeof(req) - 1, got, &o);
	smtpd_policy_client_free(c);
	ck_assert_uint_eq(o.calls, 1);
	srv_stop(&s);
	evloop_free(loop);
}
END_TEST

static Suite *
policy_suite(void)
{
	Suite *s = suite_create("smtpd_policy");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_encode);
	tcase_add_loop_test(tc, test_decode, 0, sizeof(decode_rows) / sizeof(decode_rows[0]));
	tcase_add_test(tc, test_decode_limits);
	tcase_add_test(tc, test_endpoint);
	tcase_add_test(tc, test_client_reuse);
	tcase_add_test(tc, test_client_timeout);
	tcase_add_test(tc, test_client_garbage);
	tcase_add_test(tc, test_client_refused);
	tcase_add_test(tc, test_client_cancel);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
