/* Unit tests for queue/agent_proto.c: round trips and strict decoding. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/agent_proto.h"
#include "queue/envelope.h"

#define QID "0123456789ABCD"

static void
parse_whole(struct buf *b, struct frame_reader *r)
{
	size_t flen;

	ck_assert_int_eq(frame_parse(buf_data(b), buf_len(b), r, &flen), FRAME_OK);
	ck_assert_uint_eq(flen, buf_len(b));
}

/* Decode r with the decoder for its type and free what it built;
 * 0 or -1 as the decoder returned. err gets the reason. */
static int
decode_any(struct frame_reader *r, char *err, size_t errsz)
{
	struct agent_hello h;
	struct agent_job j;
	struct agent_result res;
	struct qmgr_command c;
	struct qmgr_reply rep;
	struct qmgr_stats st;
	uint64_t id;
	int rc = -1;

	switch (r->type) {
	case FRAME_AGENT_HELLO:
		return agent_hello_decode(r, &h, err, errsz);
	case FRAME_AGENT_DELIVER:
		rc = agent_job_decode(r, &j, err, errsz);
		agent_job_free(&j);
		return rc;
	case FRAME_AGENT_RESULT:
		return agent_result_decode(r, &res, err, errsz);
	case FRAME_AGENT_DONE:
		return agent_done_decode(r, &id, err, errsz);
	case FRAME_QMGR_COMMAND:
		rc = qmgr_command_decode(r, &c, err, errsz);
		qmgr_command_free(&c);
		return rc;
	case FRAME_QMGR_REPLY:
		return qmgr_reply_decode(r, &rep, err, errsz);
	case FRAME_QMGR_STATS:
		rc = qmgr_stats_decode(r, &st, err, errsz);
		qmgr_stats_free(&st);
		return rc;
	default:
		ck_abort_msg("no decoder for type %d", (int)r->type);
	}
	return rc;
}

static void
job_fill(struct agent_job *j)
{
	agent_job_init(j);
	j->job_id = 0xfedcba9876543210ULL;
	memcpy(j->queue_id, QID, sizeof(QID));
	snprintf(j->transport, sizeof(j->transport), "smtp");
	snprintf(j->nexthop, sizeof(j->nexthop), "[10.0.0.5]:25");
	j->sender = strdup("sender@example.org");
	j->envid = strdup("QQ314159");
	j->ret = ENVELOPE_RET_HDRS;
	j->body = ENVELOPE_BODY_8BITMIME;
	j->smtputf8 = true;
	j->size = 123456789;
	j->arrival = -5;	/* signed: before the epoch still round-trips */
	snprintf(j->client_name, sizeof(j->client_name), "mx.example.com");
	snprintf(j->client_addr, sizeof(j->client_addr), "2001:db8::7");
	snprintf(j->client_helo, sizeof(j->client_helo), "[192.0.2.1]");
	snprintf(j->client_proto, sizeof(j->client_proto), "ESMTPSA");
	j->local_source = false;
	j->to_filter = true;
	agent_job_add_rcpt(j, 0, "a@example.net", "rfc822;a@example.net",
	                   ENVELOPE_NOTIFY_SUCCESS | ENVELOPE_NOTIFY_FAILURE);
	agent_job_add_rcpt(j, 7, "b@example.net", NULL, 0);
	agent_job_set_target(j, "/var/mail/archive");
	agent_job_add_rcpt(j, UINT32_MAX, "c@example.net", NULL, ENVELOPE_NOTIFY_NEVER);
}

static void
job_assert_eq(const struct agent_job *a, const struct agent_job *b)
{
	size_t i;

	ck_assert(a->job_id == b->job_id);
	ck_assert_str_eq(a->queue_id, b->queue_id);
	ck_assert_str_eq(a->transport, b->transport);
	ck_assert_str_eq(a->nexthop, b->nexthop);
	ck_assert_str_eq(a->sender, b->sender);
	if (a->envid == NULL || b->envid == NULL)
		ck_assert(a->envid == b->envid);
	else
		ck_assert_str_eq(a->envid, b->envid);
	ck_assert_uint_eq(a->ret, b->ret);
	ck_assert_uint_eq(a->body, b->body);
	ck_assert(a->smtputf8 == b->smtputf8);
	ck_assert(a->size == b->size);
	ck_assert(a->arrival == b->arrival);
	ck_assert_str_eq(a->client_name, b->client_name);
	ck_assert_str_eq(a->client_addr, b->client_addr);
	ck_assert_str_eq(a->client_helo, b->client_helo);
	ck_assert_str_eq(a->client_proto, b->client_proto);
	ck_assert(a->local_source == b->local_source);
	ck_assert(a->to_filter == b->to_filter);
	ck_assert_uint_eq(a->nrcpt, b->nrcpt);
	for (i = 0; i < a->nrcpt; i++) {
		ck_assert_uint_eq(a->rcpts[i].index, b->rcpts[i].index);
		ck_assert_str_eq(a->rcpts[i].addr, b->rcpts[i].addr);
		if (a->rcpts[i].orcpt == NULL || b->rcpts[i].orcpt == NULL)
			ck_assert(a->rcpts[i].orcpt == b->rcpts[i].orcpt);
		else
			ck_assert_str_eq(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
		ck_assert_uint_eq(a->rcpts[i].notify, b->rcpts[i].notify);
		if (a->rcpts[i].target == NULL || b->rcpts[i].target == NULL)
			ck_assert(a->rcpts[i].target == b->rcpts[i].target);
		else
			ck_assert_str_eq(a->rcpts[i].target, b->rcpts[i].target);
	}
}

static void
job_round_trip(const struct agent_job *j)
{
	struct frame_reader r;
	struct agent_job got;
	struct buf b;
	char err[128];

	buf_init(&b, FRAME_HEADER_SIZE + FRAME_PAYLOAD_MAX);
	ck_assert_int_eq(agent_job_encode(j, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(r.type, FRAME_AGENT_DELIVER);
	ck_assert_msg(agent_job_decode(&r, &got, err, sizeof(err)) == 0, "%s", err);
	job_assert_eq(j, &got);
	agent_job_free(&got);
	buf_free(&b);
}

START_TEST(test_job_round_trip)
{
	struct agent_job j;

	job_fill(&j);
	job_round_trip(&j);
	agent_job_free(&j);

	/* The smallest job: <>, no ENVID, empty next hop, one bare recipient. */
	agent_job_init(&j);
	memcpy(j.queue_id, QID, sizeof(QID));
	snprintf(j.transport, sizeof(j.transport), "local");
	j.sender = strdup("");
	agent_job_add_rcpt(&j, 0, "postmaster", NULL, 0);
	job_round_trip(&j);
	agent_job_free(&j);
	ck_assert_ptr_null(j.rcpts);	/* free leaves an empty job */
}
END_TEST

/* "" and NULL are one value for the optional strings. */
/* A target is "|command" or "/file": anything else is malformed. */
START_TEST(test_job_bad_target)
{
	struct frame_reader r;
	struct agent_job j, got;
	struct buf b;
	char err[128];

	job_fill(&j);
	agent_job_set_target(&j, "relative/file");
	buf_init(&b, 1 << 16);
	ck_assert_int_eq(agent_job_encode(&j, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(agent_job_decode(&r, &got, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "target") != NULL, "%s", err);
	agent_job_free(&got);
	agent_job_free(&j);
	buf_free(&b);
}
END_TEST

START_TEST(test_job_empty_optional_is_null)
{
	struct frame_reader r;
	struct agent_job j, got;
	struct buf b;

	job_fill(&j);
	free(j.envid);
	j.envid = strdup("");
	free(j.rcpts[0].orcpt);
	j.rcpts[0].orcpt = strdup("");
	buf_init(&b, 1 << 16);
	ck_assert_int_eq(agent_job_encode(&j, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(agent_job_decode(&r, &got, NULL, 0), 0);
	ck_assert_ptr_null(got.envid);
	ck_assert_ptr_null(got.rcpts[0].orcpt);
	agent_job_free(&got);
	agent_job_free(&j);
	buf_free(&b);
}
END_TEST

START_TEST(test_hello_done_reply_round_trip)
{
	struct agent_hello h = { .version = AGENT_PROTO_VERSION, .transport = "lmtp",
	                         .slots = 10, .pid = 4242 }, h2;
	struct qmgr_reply rep = { .status = 75, .count = UINT64_MAX, .text = "queue busy" }, rep2;
	struct qmgr_reply empty = { 0 };
	struct frame_reader r;
	struct buf b;
	uint64_t id;

	buf_init(&b, 1 << 16);
	ck_assert_int_eq(agent_hello_encode(&h, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(agent_hello_decode(&r, &h2, NULL, 0), 0);
	ck_assert(h2.version == AGENT_PROTO_VERSION && h2.slots == 10 && h2.pid == 4242);
	ck_assert_str_eq(h2.transport, "lmtp");

	buf_reset(&b);
	ck_assert_int_eq(agent_done_encode(UINT64_MAX, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(agent_done_decode(&r, &id, NULL, 0), 0);
	ck_assert(id == UINT64_MAX);

	buf_reset(&b);
	ck_assert_int_eq(qmgr_reply_encode(&rep, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(qmgr_reply_decode(&r, &rep2, NULL, 0), 0);
	ck_assert(rep2.status == 75 && rep2.count == UINT64_MAX);
	ck_assert_str_eq(rep2.text, "queue busy");

	buf_reset(&b);
	ck_assert_int_eq(qmgr_reply_encode(&empty, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(qmgr_reply_decode(&r, &rep2, NULL, 0), 0);
	ck_assert(rep2.status == 0 && rep2.count == 0);
	ck_assert_str_eq(rep2.text, "");
	buf_free(&b);
}
END_TEST

static void
result_round_trip(const struct agent_result *in)
{
	struct agent_result out;
	struct frame_reader r;
	struct buf b;
	char err[128];
	int i;

	buf_init(&b, 1 << 16);
	ck_assert_int_eq(agent_result_encode(in, &b), 0);
	parse_whole(&b, &r);
	ck_assert_msg(agent_result_decode(&r, &out, err, sizeof(err)) == 0, "%s", err);
	ck_assert(out.job_id == in->job_id);
	ck_assert_uint_eq(out.index, in->index);
	ck_assert_int_eq(out.status, in->status);
	ck_assert_str_eq(out.err_class, in->err_class);
	ck_assert_int_eq(out.smtp_code, in->smtp_code);
	ck_assert_str_eq(out.enh, in->enh);
	ck_assert_str_eq(out.text, in->text);
	ck_assert_str_eq(out.relay, in->relay);
	ck_assert_str_eq(out.host, in->host);
	ck_assert(out.relayed == in->relayed);
	for (i = 0; i < 4; i++)
		ck_assert(out.delays[i] == in->delays[i]);
	buf_free(&b);
}

START_TEST(test_result_round_trip)
{
	struct agent_result full = {
		.job_id = 99, .index = 3, .status = AGENT_TEMPFAIL, .err_class = "rcpt_452",
		.smtp_code = 452, .enh = "4.5.3", .text = "452 4.5.3 Too many recipients",
		.relay = "mx.example.net[192.0.2.7]:25", .host = "mx.example.net",
		.relayed = AGENT_RELAYED, .delays = { -1, INT64_MIN, INT64_MAX, 0 },
	};
	struct agent_result empty = { .status = AGENT_DELIVERED };
	struct agent_result perm = { .status = AGENT_PERMFAIL, .smtp_code = 599, .index = UINT32_MAX };

	result_round_trip(&full);
	result_round_trip(&empty);
	result_round_trip(&perm);
}
END_TEST

START_TEST(test_command_round_trip)
{
	char *sel[] = { "ALL", "@example.org", QID };
	struct qmgr_command c = { .verb = QMGR_VERB_REQUEUE, .selectors = sel, .nselectors = 3 };
	struct qmgr_command none = { .verb = QMGR_VERB_FLUSH };
	struct qmgr_command got;
	struct frame_reader r;
	struct buf b;
	size_t i;

	buf_init(&b, 1 << 16);
	ck_assert_int_eq(qmgr_command_encode(&c, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(qmgr_command_decode(&r, &got, NULL, 0), 0);
	ck_assert_int_eq(got.verb, QMGR_VERB_REQUEUE);
	ck_assert_uint_eq(got.nselectors, 3);
	for (i = 0; i < 3; i++)
		ck_assert_str_eq(got.selectors[i], sel[i]);
	qmgr_command_free(&got);

	buf_reset(&b);
	ck_assert_int_eq(qmgr_command_encode(&none, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(qmgr_command_decode(&r, &got, NULL, 0), 0);
	ck_assert_uint_eq(got.nselectors, 0);
	qmgr_command_free(&got);
	buf_free(&b);
}
END_TEST

/* ---- hand-built frames: one row per field value ---- */

struct tf {
	int kind;		/* FRAME_FIELD_U64 or FRAME_FIELD_BYTES */
	uint64_t v;
	const char *s;		/* NULL: n bytes of 'a' */
	size_t n;
};

#define U(x) { FRAME_FIELD_U64, (x), NULL, 0 }
#define S(x) { FRAME_FIELD_BYTES, 0, (x), sizeof(x) - 1 }
#define SN(x) { FRAME_FIELD_BYTES, 0, NULL, (x) }
#define FIELDS_MAX 24

static const struct tf hello_base[] = { U(1), S("smtp"), U(4), U(1234) };
static const struct tf job_base[] = {
	U(7), S(QID), S("smtp"), S("example.org"), S("a@b"), S("envid"),
	U(0), U(0), U(0), U(100), U(5),
	S("mx.example"), S("192.0.2.1"), S("mx.example"), S("ESMTP"), U(0), U(1), U(1),
	U(0), S("r@x"), S("rfc822;r@x"), U(2), S(""),
};
static const struct tf result_base[] = {
	U(7), U(0), U(1), S("rcpt_452"), U(452), S("4.5.3"), S("text"),
	S("mx[192.0.2.1]:25"), S("mx"), U(0), U(1), U(2), U(3), U(4),
};
static const struct tf done_base[] = { U(7) };
static const struct tf command_base[] = { U(1), U(2), S("ALL"), S("@example.org") };
static const struct tf reply_base[] = { U(0), U(3), S("ok") };
static const struct tf stats_base[] = {
	U(1700000000), U(10), U(8), U(3), U(1), U(2), U(0), U(4), U(1), U(2), U(1),
	S("smtp"), S("example.org"), U(3), U(1), U(1), U(1), U(1700000600),
};

static const struct {
	enum frame_type type;
	const struct tf *base;
	size_t n;
} bases[] = {
	{ FRAME_AGENT_HELLO, hello_base, sizeof(hello_base) / sizeof(hello_base[0]) },
	{ FRAME_AGENT_DELIVER, job_base, sizeof(job_base) / sizeof(job_base[0]) },
	{ FRAME_AGENT_RESULT, result_base, sizeof(result_base) / sizeof(result_base[0]) },
	{ FRAME_AGENT_DONE, done_base, sizeof(done_base) / sizeof(done_base[0]) },
	{ FRAME_QMGR_COMMAND, command_base, sizeof(command_base) / sizeof(command_base[0]) },
	{ FRAME_QMGR_REPLY, reply_base, sizeof(reply_base) / sizeof(reply_base[0]) },
	{ FRAME_QMGR_STATS, stats_base, sizeof(stats_base) / sizeof(stats_base[0]) },
};

#define AT_NONE -1	/* the base as it is */
#define AT_APPEND -2	/* one more field after the last */
#define AT_DROP -3	/* the last field left out */

/* Replace field `at` of the base frame of `type` with `with`. */
static const struct {
	enum frame_type type;
	int at;
	struct tf with;
	bool ok;
} rows[] = {
	{ FRAME_AGENT_HELLO, AT_NONE, U(0), true },
	{ FRAME_AGENT_HELLO, 0, U(0), false },			/* version */
	{ FRAME_AGENT_HELLO, 0, U(2), false },
	{ FRAME_AGENT_HELLO, 0, S("1"), false },		/* wrong kind */
	{ FRAME_AGENT_HELLO, 1, SN(AGENT_TRANSPORT_MAX - 1), true },
	{ FRAME_AGENT_HELLO, 1, SN(AGENT_TRANSPORT_MAX), false },
	{ FRAME_AGENT_HELLO, 1, S(""), false },
	{ FRAME_AGENT_HELLO, 1, S("sm\0tp"), false },
	{ FRAME_AGENT_HELLO, 1, U(4), false },
	{ FRAME_AGENT_HELLO, 2, U(0), false },			/* slots */
	{ FRAME_AGENT_HELLO, 2, U(UINT64_MAX), true },
	{ FRAME_AGENT_HELLO, AT_APPEND, U(0), false },
	{ FRAME_AGENT_HELLO, AT_APPEND, S(""), false },
	{ FRAME_AGENT_HELLO, AT_DROP, U(0), false },

	{ FRAME_AGENT_DELIVER, AT_NONE, U(0), true },
	{ FRAME_AGENT_DELIVER, 0, S("7"), false },
	{ FRAME_AGENT_DELIVER, 1, S("0123456789ABC"), false },	/* queue id */
	{ FRAME_AGENT_DELIVER, 1, S("0123456789ABCDE"), false },
	{ FRAME_AGENT_DELIVER, 1, S("0123456789abcd"), false },
	{ FRAME_AGENT_DELIVER, 1, S("../../etc/pass"), false },
	{ FRAME_AGENT_DELIVER, 1, S("0123456789ABC\0"), false },
	{ FRAME_AGENT_DELIVER, 2, S(""), false },		/* transport */
	{ FRAME_AGENT_DELIVER, 2, SN(AGENT_TRANSPORT_MAX), false },
	{ FRAME_AGENT_DELIVER, 3, S(""), true },		/* nexthop */
	{ FRAME_AGENT_DELIVER, 3, SN(AGENT_NEXTHOP_MAX - 1), true },
	{ FRAME_AGENT_DELIVER, 3, SN(AGENT_NEXTHOP_MAX), false },
	{ FRAME_AGENT_DELIVER, 4, S(""), true },		/* sender <> */
	{ FRAME_AGENT_DELIVER, 4, SN(AGENT_ADDR_MAX - 1), true },
	{ FRAME_AGENT_DELIVER, 4, SN(AGENT_ADDR_MAX), false },
	{ FRAME_AGENT_DELIVER, 4, S("a\0@b"), false },
	{ FRAME_AGENT_DELIVER, 4, U(0), false },
	{ FRAME_AGENT_DELIVER, 5, SN(AGENT_ADDR_MAX), false },	/* envid */
	{ FRAME_AGENT_DELIVER, 5, S("e\0"), false },
	{ FRAME_AGENT_DELIVER, 6, U(ENVELOPE_RET_HDRS), true },	/* ret */
	{ FRAME_AGENT_DELIVER, 6, U(ENVELOPE_RET_HDRS + 1), false },
	{ FRAME_AGENT_DELIVER, 7, U(ENVELOPE_BODY_BINARYMIME), true },
	{ FRAME_AGENT_DELIVER, 7, U(ENVELOPE_BODY_BINARYMIME + 1), false },
	{ FRAME_AGENT_DELIVER, 8, U(1), true },			/* smtputf8 */
	{ FRAME_AGENT_DELIVER, 8, U(2), false },
	{ FRAME_AGENT_DELIVER, 10, U(UINT64_MAX), true },	/* arrival -1 */
	{ FRAME_AGENT_DELIVER, 11, S(""), true },		/* client name */
	{ FRAME_AGENT_DELIVER, 11, SN(AGENT_HOST_MAX - 1), true },
	{ FRAME_AGENT_DELIVER, 11, SN(AGENT_HOST_MAX), false },
	{ FRAME_AGENT_DELIVER, 11, S("a\0b"), false },
	{ FRAME_AGENT_DELIVER, 12, SN(AGENT_HOST_MAX), false },	/* client address */
	{ FRAME_AGENT_DELIVER, 13, SN(AGENT_HOST_MAX), false },	/* client helo */
	{ FRAME_AGENT_DELIVER, 14, SN(AGENT_PROTO_MAX - 1), true },	/* client protocol */
	{ FRAME_AGENT_DELIVER, 14, SN(AGENT_PROTO_MAX), false },
	{ FRAME_AGENT_DELIVER, 15, U(1), true },		/* local source */
	{ FRAME_AGENT_DELIVER, 15, U(2), false },
	{ FRAME_AGENT_DELIVER, 16, U(1), true },		/* to filter */
	{ FRAME_AGENT_DELIVER, 16, U(2), false },
	{ FRAME_AGENT_DELIVER, 17, U(0), false },		/* no recipients */
	{ FRAME_AGENT_DELIVER, 17, U(2), false },		/* count lies */
	{ FRAME_AGENT_DELIVER, 17, U(AGENT_JOB_RCPTS_MAX + 1), false },
	{ FRAME_AGENT_DELIVER, 17, U(UINT64_MAX), false },
	{ FRAME_AGENT_DELIVER, 18, U(UINT32_MAX), true },	/* index */
	{ FRAME_AGENT_DELIVER, 18, U((uint64_t)UINT32_MAX + 1), false },
	{ FRAME_AGENT_DELIVER, 19, S(""), false },		/* address */
	{ FRAME_AGENT_DELIVER, 19, SN(AGENT_ADDR_MAX - 1), true },
	{ FRAME_AGENT_DELIVER, 19, SN(AGENT_ADDR_MAX), false },
	{ FRAME_AGENT_DELIVER, 19, S("r\0@x"), false },
	{ FRAME_AGENT_DELIVER, 20, S(""), true },		/* orcpt */
	{ FRAME_AGENT_DELIVER, 20, SN(AGENT_ADDR_MAX), false },
	{ FRAME_AGENT_DELIVER, 20, S("rfc822;\0"), false },
	{ FRAME_AGENT_DELIVER, 21, U(0xf), true },		/* notify */
	{ FRAME_AGENT_DELIVER, 21, U(0x10), false },
	{ FRAME_AGENT_DELIVER, 22, S("|/bin/cat"), true },	/* target */
	{ FRAME_AGENT_DELIVER, 22, S("/var/mail/archive"), true },
	{ FRAME_AGENT_DELIVER, 22, S("cat"), false },
	{ FRAME_AGENT_DELIVER, 22, S("|a\0b"), false },
	{ FRAME_AGENT_DELIVER, 22, SN(AGENT_TARGET_MAX), false },
	{ FRAME_AGENT_DELIVER, 21, S("2"), false },
	{ FRAME_AGENT_DELIVER, AT_APPEND, U(0), false },
	{ FRAME_AGENT_DELIVER, AT_DROP, U(0), false },

	{ FRAME_AGENT_RESULT, AT_NONE, U(0), true },
	{ FRAME_AGENT_RESULT, 1, U((uint64_t)UINT32_MAX + 1), false },	/* index */
	{ FRAME_AGENT_RESULT, 2, U(AGENT_PERMFAIL), true },	/* status */
	{ FRAME_AGENT_RESULT, 2, U(AGENT_PERMFAIL + 1), false },
	{ FRAME_AGENT_RESULT, 3, SN(AGENT_CLASS_MAX - 1), true },	/* class */
	{ FRAME_AGENT_RESULT, 3, SN(AGENT_CLASS_MAX), false },
	{ FRAME_AGENT_RESULT, 3, S("r\0"), false },
	{ FRAME_AGENT_RESULT, 4, U(0), true },			/* smtp code */
	{ FRAME_AGENT_RESULT, 4, U(99), false },
	{ FRAME_AGENT_RESULT, 4, U(599), true },
	{ FRAME_AGENT_RESULT, 4, U(600), false },
	{ FRAME_AGENT_RESULT, 4, U(UINT64_MAX), false },
	{ FRAME_AGENT_RESULT, 5, SN(AGENT_ENH_MAX - 1), true },	/* enh */
	{ FRAME_AGENT_RESULT, 5, SN(AGENT_ENH_MAX), false },
	{ FRAME_AGENT_RESULT, 6, SN(AGENT_TEXT_MAX - 1), true },	/* text */
	{ FRAME_AGENT_RESULT, 6, SN(AGENT_TEXT_MAX), false },
	{ FRAME_AGENT_RESULT, 6, S("550 \0 no"), false },
	{ FRAME_AGENT_RESULT, 7, SN(AGENT_RELAY_MAX - 1), true },	/* relay */
	{ FRAME_AGENT_RESULT, 7, SN(AGENT_RELAY_MAX), false },
	{ FRAME_AGENT_RESULT, 8, SN(AGENT_HOST_MAX - 1), true },	/* host */
	{ FRAME_AGENT_RESULT, 8, SN(AGENT_HOST_MAX), false },
	{ FRAME_AGENT_RESULT, 9, U(1), true },			/* relayed */
	{ FRAME_AGENT_RESULT, 9, U(2), true },			/* DSN passed on */
	{ FRAME_AGENT_RESULT, 9, U(3), false },
	{ FRAME_AGENT_RESULT, 13, S("4"), false },		/* a delay */
	{ FRAME_AGENT_RESULT, AT_APPEND, U(5), false },
	{ FRAME_AGENT_RESULT, AT_DROP, U(0), false },

	{ FRAME_AGENT_DONE, AT_NONE, U(0), true },
	{ FRAME_AGENT_DONE, 0, S("7"), false },
	{ FRAME_AGENT_DONE, AT_APPEND, U(7), false },
	{ FRAME_AGENT_DONE, AT_DROP, U(0), false },

	{ FRAME_QMGR_COMMAND, AT_NONE, U(0), true },
	{ FRAME_QMGR_COMMAND, 0, U(0), false },			/* verb */
	{ FRAME_QMGR_COMMAND, 0, U(QMGR_VERB_REQUEUE), true },
	{ FRAME_QMGR_COMMAND, 0, U(QMGR_VERB_STATS), true },
	{ FRAME_QMGR_COMMAND, 0, U(QMGR_VERB_STATS + 1), false },
	{ FRAME_QMGR_COMMAND, 1, U(3), false },			/* count lies */
	{ FRAME_QMGR_COMMAND, 1, U(1), false },
	{ FRAME_QMGR_COMMAND, 1, U(AGENT_SELECTORS_MAX + 1), false },
	{ FRAME_QMGR_COMMAND, 2, S(""), false },		/* selector */
	{ FRAME_QMGR_COMMAND, 2, SN(AGENT_ADDR_MAX - 1), true },
	{ FRAME_QMGR_COMMAND, 2, SN(AGENT_ADDR_MAX), false },
	{ FRAME_QMGR_COMMAND, 3, S("@ex\0ample.org"), false },
	{ FRAME_QMGR_COMMAND, 3, U(0), false },
	{ FRAME_QMGR_COMMAND, AT_APPEND, S("ALL"), false },

	{ FRAME_QMGR_REPLY, AT_NONE, U(0), true },
	{ FRAME_QMGR_REPLY, 0, U(255), true },			/* status */
	{ FRAME_QMGR_REPLY, 0, U(256), false },
	{ FRAME_QMGR_REPLY, 2, SN(AGENT_TEXT_MAX - 1), true },	/* text */
	{ FRAME_QMGR_REPLY, 2, SN(AGENT_TEXT_MAX), false },
	{ FRAME_QMGR_REPLY, 2, S("o\0k"), false },
	{ FRAME_QMGR_REPLY, 2, U(0), false },
	{ FRAME_QMGR_REPLY, AT_DROP, U(0), false },

	{ FRAME_QMGR_STATS, AT_NONE, U(0), true },
	{ FRAME_QMGR_STATS, 0, U(UINT64_MAX), true },		/* started -1 */
	{ FRAME_QMGR_STATS, 0, S("1"), false },
	{ FRAME_QMGR_STATS, 9, U(0), false },			/* total below count */
	{ FRAME_QMGR_STATS, 10, U(0), false },			/* count lies */
	{ FRAME_QMGR_STATS, 10, U(2), false },
	{ FRAME_QMGR_STATS, 10, U(AGENT_STATS_DESTS_MAX + 1), false },
	{ FRAME_QMGR_STATS, 11, S(""), false },			/* transport */
	{ FRAME_QMGR_STATS, 11, SN(AGENT_TRANSPORT_MAX - 1), true },
	{ FRAME_QMGR_STATS, 11, SN(AGENT_TRANSPORT_MAX), false },
	{ FRAME_QMGR_STATS, 12, S(""), true },			/* nexthop */
	{ FRAME_QMGR_STATS, 12, SN(AGENT_NEXTHOP_MAX), false },
	{ FRAME_QMGR_STATS, 12, S("ex\0ample"), false },
	{ FRAME_QMGR_STATS, 13, S("3"), false },		/* waiting */
	{ FRAME_QMGR_STATS, 17, U(0), true },			/* not suspended */
	{ FRAME_QMGR_STATS, AT_APPEND, U(0), false },
	{ FRAME_QMGR_STATS, AT_DROP, U(0), false },
};

static void
put_tf(struct buf *b, const struct tf *f)
{
	char *filler;

	if (f->kind == FRAME_FIELD_U64) {
		frame_put_u64(b, f->v);
	} else if (f->s != NULL) {
		frame_put_bytes(b, f->s, f->n);
	} else {
		filler = malloc(f->n + 1);
		memset(filler, 'a', f->n);
		frame_put_bytes(b, filler, f->n);
		free(filler);
	}
}

/* The base of `type` with field `at` replaced (or AT_*). */
static void
build_row(struct buf *b, enum frame_type type, int at, const struct tf *with)
{
	size_t i, k, n = 0, start;
	const struct tf *base = NULL;

	for (k = 0; k < sizeof(bases) / sizeof(bases[0]); k++)
		if (bases[k].type == type) {
			base = bases[k].base;
			n = bases[k].n;
		}
	ck_assert_ptr_nonnull(base);
	start = frame_begin(b, type);
	for (i = 0; i < n; i++) {
		if (at == AT_DROP && i == n - 1)
			break;
		put_tf(b, (int)i == at ? with : &base[i]);
	}
	if (at == AT_APPEND)
		put_tf(b, with);
	ck_assert_int_eq(frame_end(b, start), FRAME_OK);
}

START_TEST(test_stats_round_trip)
{
	struct qmgr_stats_dest dests[2] = {
		{ .transport = "smtp", .nexthop = "example.org", .waiting = 5, .ready = 1,
		  .active = 2, .jobs = 1, .suspended_until = 1700000600 },
		{ .transport = "lmtp", .nexthop = "unix:/run/dovecot/lmtp" },
	};
	struct qmgr_stats st = {
		.started = 1700000000, .received = 12, .delivered = 9, .deferred = 4,
		.bounced = 1, .q_active = 2, .q_incoming = 3, .q_deferred = 4, .q_hold = 5,
		.dests_total = 7, .dests = dests, .ndests = 2,
	};
	struct qmgr_stats got;
	struct frame_reader r;
	struct buf b;

	buf_init(&b, 1 << 16);
	ck_assert_int_eq(qmgr_stats_encode(&st, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(qmgr_stats_decode(&r, &got, NULL, 0), 0);
	ck_assert_int_eq(got.started, 1700000000);
	ck_assert_uint_eq(got.received, 12);
	ck_assert_uint_eq(got.delivered, 9);
	ck_assert_uint_eq(got.deferred, 4);
	ck_assert_uint_eq(got.bounced, 1);
	ck_assert_uint_eq(got.q_active, 2);
	ck_assert_uint_eq(got.q_incoming, 3);
	ck_assert_uint_eq(got.q_deferred, 4);
	ck_assert_uint_eq(got.q_hold, 5);
	ck_assert_uint_eq(got.dests_total, 7);
	ck_assert_uint_eq(got.ndests, 2);
	ck_assert_str_eq(got.dests[0].nexthop, "example.org");
	ck_assert_uint_eq(got.dests[0].waiting, 5);
	ck_assert_uint_eq(got.dests[0].active, 2);
	ck_assert_int_eq(got.dests[0].suspended_until, 1700000600);
	ck_assert_str_eq(got.dests[1].transport, "lmtp");
	ck_assert_int_eq(got.dests[1].suspended_until, 0);
	qmgr_stats_free(&got);
	buf_free(&b);
}
END_TEST

START_TEST(test_rows)
{
	struct frame_reader r;
	struct buf b;
	char err[128];
	size_t i;
	int rc;

	buf_init(&b, 1 << 20);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		buf_reset(&b);
		build_row(&b, rows[i].type, rows[i].at, &rows[i].with);
		parse_whole(&b, &r);
		err[0] = '\0';
		rc = decode_any(&r, err, sizeof(err));
		ck_assert_msg(rc == (rows[i].ok ? 0 : -1), "row %zu (type %d, field %d): rc %d (%s)",
		              i, (int)rows[i].type, rows[i].at, rc, err);
		/* A refusal always says why; an acceptance says nothing. */
		ck_assert_msg(rows[i].ok ? err[0] == '\0' : err[0] != '\0', "row %zu: err '%s'", i, err);
	}
	buf_free(&b);
}
END_TEST

/* Every strict prefix of every payload is refused (the header's length is
 * patched, so frame_parse hands the decoder the short payload). */
START_TEST(test_truncated_prefixes)
{
	struct frame_reader r;
	struct buf whole, cut;
	size_t k, plen, i;
	unsigned char *h;

	buf_init(&whole, 1 << 16);
	buf_init(&cut, 1 << 16);
	for (k = 0; k < sizeof(bases) / sizeof(bases[0]); k++) {
		buf_reset(&whole);
		build_row(&whole, bases[k].type, AT_NONE, NULL);
		plen = buf_len(&whole) - FRAME_HEADER_SIZE;
		for (i = 0; i < plen; i++) {
			buf_reset(&cut);
			buf_append(&cut, buf_data(&whole), FRAME_HEADER_SIZE + i);
			h = (unsigned char *)buf_data_mut(&cut);
			h[4] = (unsigned char)(i >> 24);
			h[5] = (unsigned char)(i >> 16);
			h[6] = (unsigned char)(i >> 8);
			h[7] = (unsigned char)i;
			parse_whole(&cut, &r);
			ck_assert_msg(decode_any(&r, NULL, 0) == -1, "type %d, %zu of %zu bytes",
			              (int)bases[k].type, i, plen);
		}
		parse_whole(&whole, &r);
		ck_assert_int_eq(decode_any(&r, NULL, 0), 0);
	}
	buf_free(&whole);
	buf_free(&cut);
}
END_TEST

/* A frame of another type is not decoded as this one. */
START_TEST(test_wrong_type)
{
	struct agent_hello h;
	struct frame_reader r;
	struct buf b;
	char err[128];

	buf_init(&b, 1024);
	ck_assert_int_eq(agent_done_encode(1, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(agent_hello_decode(&r, &h, err, sizeof(err)), -1);
	ck_assert(strstr(err, "type") != NULL);
	buf_free(&b);
}
END_TEST

START_TEST(test_job_rcpts_max)
{
	struct frame_reader r;
	struct agent_job j, got;
	struct buf b;
	char err[128];
	size_t i;

	job_fill(&j);
	while (j.nrcpt < AGENT_JOB_RCPTS_MAX)
		agent_job_add_rcpt(&j, (uint32_t)j.nrcpt, "r@example.org", "rfc822;r@example.org", 6);
	job_round_trip(&j);

	/* A bad last recipient: what was decoded before it is freed by
	 * agent_job_free (LeakSanitizer checks with CK_FORK=no). */
	free(j.rcpts[j.nrcpt - 1].addr);
	j.rcpts[j.nrcpt - 1].addr = strdup("");
	buf_init(&b, 1 << 20);
	ck_assert_int_eq(agent_job_encode(&j, &b), 0);	/* encoders do not judge */
	parse_whole(&b, &r);
	ck_assert_int_eq(agent_job_decode(&r, &got, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "DELIVER: recipient is empty");
	for (i = 0; i + 1 < got.nrcpt; i++)
		ck_assert_ptr_nonnull(got.rcpts[i].addr);
	agent_job_free(&got);

	agent_job_add_rcpt(&j, AGENT_JOB_RCPTS_MAX, "one@too.many", NULL, 0);
	buf_reset(&b);
	ck_assert_int_eq(agent_job_encode(&j, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(agent_job_decode(&r, &got, err, sizeof(err)), -1);
	ck_assert(strstr(err, "recipient count") != NULL);
	ck_assert_ptr_null(got.rcpts);			/* refused before allocating */
	agent_job_free(&got);
	agent_job_free(&j);
	buf_free(&b);
}
END_TEST

START_TEST(test_selectors_max)
{
	struct qmgr_command c = { .verb = QMGR_VERB_HOLD };
	struct qmgr_command got;
	struct frame_reader r;
	struct buf b;
	size_t i;

	c.selectors = calloc(AGENT_SELECTORS_MAX + 1, sizeof(char *));
	for (i = 0; i <= AGENT_SELECTORS_MAX; i++)
		c.selectors[i] = "@example.org";
	buf_init(&b, 1 << 20);
	c.nselectors = AGENT_SELECTORS_MAX;
	ck_assert_int_eq(qmgr_command_encode(&c, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(qmgr_command_decode(&r, &got, NULL, 0), 0);
	ck_assert_uint_eq(got.nselectors, AGENT_SELECTORS_MAX);
	qmgr_command_free(&got);

	buf_reset(&b);
	c.nselectors = AGENT_SELECTORS_MAX + 1;
	ck_assert_int_eq(qmgr_command_encode(&c, &b), 0);
	parse_whole(&b, &r);
	ck_assert_int_eq(qmgr_command_decode(&r, &got, NULL, 0), -1);
	ck_assert_ptr_null(got.selectors);
	ck_assert_uint_eq(got.nselectors, 0);
	qmgr_command_free(&got);
	free(c.selectors);
	buf_free(&b);
}
END_TEST

/* An encoder that cannot fit leaves the buffer exactly as it was. */
START_TEST(test_encode_too_big)
{
	struct qmgr_command c = { .verb = QMGR_VERB_DELETE };
	struct agent_job j;
	struct buf b;
	char *big;
	size_t i, before;

	job_fill(&j);
	buf_init(&b, 64);
	ck_assert_int_eq(agent_done_encode(1, &b), 0);
	before = buf_len(&b);
	ck_assert_int_eq(agent_job_encode(&j, &b), -1);
	ck_assert_uint_eq(buf_len(&b), before);
	buf_free(&b);
	/* Exactly the room it needs: a DONE frame is 8 + 9 bytes. */
	buf_init(&b, 2 * (FRAME_HEADER_SIZE + 9));
	ck_assert_int_eq(agent_done_encode(1, &b), 0);
	ck_assert_int_eq(agent_done_encode(2, &b), 0);
	ck_assert_int_eq(agent_done_encode(3, &b), -1);
	ck_assert_uint_eq(buf_len(&b), 2 * (FRAME_HEADER_SIZE + 9));
	buf_free(&b);

	/* A payload past FRAME_PAYLOAD_MAX in a buffer that could hold it. */
	big = malloc(1 << 20);
	memset(big, 'x', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	c.selectors = calloc(5, sizeof(char *));
	for (i = 0; i < 5; i++)
		c.selectors[i] = big;
	c.nselectors = 5;
	buf_init(&b, 3 * FRAME_PAYLOAD_MAX);
	ck_assert_int_eq(agent_done_encode(1, &b), 0);
	ck_assert_int_eq(qmgr_command_encode(&c, &b), -1);
	ck_assert_uint_eq(buf_len(&b), FRAME_HEADER_SIZE + 9);
	c.nselectors = 3;
	ck_assert_int_eq(qmgr_command_encode(&c, &b), 0);
	free(c.selectors);
	free(big);
	buf_free(&b);
	agent_job_free(&j);
}
END_TEST

START_TEST(test_names)
{
	static const struct {
		enum qmgr_verb v;
		const char *name;
	} verbs[] = {
		{ QMGR_VERB_FLUSH, "flush" }, { QMGR_VERB_HOLD, "hold" },
		{ QMGR_VERB_RELEASE, "release" }, { QMGR_VERB_DELETE, "delete" },
		{ QMGR_VERB_REQUEUE, "requeue" }, { QMGR_VERB_STATS, "stats" },
	};
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		ck_assert_str_eq(qmgr_verb_name(verbs[i].v), verbs[i].name);
		ck_assert_int_eq(qmgr_verb_parse(verbs[i].name), (int)verbs[i].v);
	}
	ck_assert_str_eq(qmgr_verb_name((enum qmgr_verb)0), "unknown");
	ck_assert_str_eq(qmgr_verb_name((enum qmgr_verb)99), "unknown");
	ck_assert_int_eq(qmgr_verb_parse(""), -1);
	ck_assert_int_eq(qmgr_verb_parse("flushx"), -1);
	ck_assert_int_eq(qmgr_verb_parse("unknown"), -1);
	ck_assert_str_eq(agent_status_name(AGENT_DELIVERED), "delivered");
	ck_assert_str_eq(agent_status_name(AGENT_TEMPFAIL), "tempfail");
	ck_assert_str_eq(agent_status_name(AGENT_PERMFAIL), "permfail");
	ck_assert_str_eq(agent_status_name((enum agent_status)3), "unknown");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("agent_proto");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_job_round_trip);
	tcase_add_test(tc, test_job_empty_optional_is_null);
	tcase_add_test(tc, test_job_bad_target);
	tcase_add_test(tc, test_hello_done_reply_round_trip);
	tcase_add_test(tc, test_result_round_trip);
	tcase_add_test(tc, test_command_round_trip);
	tcase_add_test(tc, test_stats_round_trip);
	tcase_add_test(tc, test_rows);
	tcase_add_test(tc, test_truncated_prefixes);
	tcase_add_test(tc, test_wrong_type);
	tcase_add_test(tc, test_job_rcpts_max);
	tcase_add_test(tc, test_selectors_max);
	tcase_add_test(tc, test_encode_too_big);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
