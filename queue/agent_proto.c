/*
 * agent_proto: encoders and strict decoders of the qmgr <-> agent and
 * qmgr <-> ternctl frames. Owns the strings and arrays of a decoded job or
 * command (freed by agent_job_free() / qmgr_command_free()). Returns
 * errors with a reason; never logs; out of memory is fatal().
 *
 * Field order (u64 = FRAME_FIELD_U64, str = FRAME_FIELD_BYTES without NUL):
 *
 *   FRAME_AGENT_HELLO    u64 version, str transport, u64 slots, u64 pid
 *   FRAME_AGENT_DELIVER  u64 job_id, str queue_id, str transport,
 *                        str nexthop, str sender, str envid, u64 ret,
 *                        u64 body, u64 smtputf8, u64 size, u64 arrival,
 *                        str client_name, str client_addr, str client_helo,
 *                        str client_proto, u64 local_source, u64 to_filter,
 *                        u64 nrcpt, then nrcpt times:
 *                          u64 index, str addr, str orcpt, u64 notify,
 *                          str target
 *   FRAME_AGENT_RESULT   u64 job_id, u64 index, u64 status, str err_class,
 *                        u64 smtp_code, str enh, str text, str relay,
 *                        str host, u64 relayed, u64 delays[0..3]
 *   FRAME_AGENT_DONE     u64 job_id
 *   FRAME_QMGR_COMMAND   u64 verb, u64 nselectors, then nselectors times:
 *                          str selector
 *   FRAME_QMGR_REPLY     u64 status, u64 count, str text
 *   FRAME_QMGR_STATS     u64 started, u64 received, u64 delivered,
 *                        u64 deferred, u64 bounced, u64 active,
 *                        u64 incoming, u64 deferred messages, u64 hold,
 *                        u64 dests_total, u64 ndests, then ndests times:
 *                          str transport, str nexthop, u64 waiting,
 *                          u64 ready, u64 active, u64 jobs,
 *                          u64 suspended_until
 *
 * Conventions:
 *   - A string bounded by a FOO_MAX constant holds at most FOO_MAX - 1
 *     bytes, for heap strings as for the char arrays (which need the NUL).
 *     sender, envid, addr, orcpt and selectors are bounded by
 *     AGENT_ADDR_MAX.
 *   - envid, orcpt and target are optional: NULL is sent as "" and ""
 *     decodes as NULL (RFC 3461 allows neither to be empty; a target is
 *     "|command" or "/file", bounded by AGENT_TARGET_MAX).
 *   - Booleans (smtputf8) are 0 or 1; relayed is 0..2 (enum agent_relayed);
 *     anything else is malformed.
 *   - arrival and delays are signed µs, sent as their u64 two's complement.
 *   - queue_id is SPOOL_ID_LEN upper-case hex digits: the agent opens a
 *     file by it, so nothing else may pass.
 *   - A STATS frame has at most AGENT_STATS_DESTS_MAX destinations and no
 *     more than dests_total; started and suspended_until are signed.
 *   - transport and recipient addresses and selectors are never empty; a
 *     job has 1..AGENT_JOB_RCPTS_MAX recipients; smtp_code is 0 or
 *     100..599; a reply status is a sysexits code (0..255).
 *
 * The encoders do not check these rules (qmgr and the agents fill the
 * structs themselves); the decoders check every one of them, so a bad
 * frame is caught where it arrives. Each encoder describes its fields once
 * (a *_fields function) and runs it twice: to size the frame, then to write
 * it, so a frame that does not fit is refused before a byte is appended.
 */
#include "queue/agent_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "queue/envelope.h"
#include "queue/spool.h"

/* Wire size of the fields. */
#define AGENT_U64_FIELD_SIZE 9u
#define AGENT_BYTES_FIELD_SIZE 5u	/* plus the bytes */

#define AGENT_NOTIFY_MASK (ENVELOPE_NOTIFY_NEVER | ENVELOPE_NOTIFY_SUCCESS | \
                           ENVELOPE_NOTIFY_FAILURE | ENVELOPE_NOTIFY_DELAY)
#define AGENT_SMTP_CODE_MIN 100
#define AGENT_SMTP_CODE_MAX 599
#define AGENT_EXIT_STATUS_MAX 255

/* ---- encoding ---- */

struct agent_enc {
	struct buf *out;	/* NULL while sizing */
	size_t size;		/* payload bytes, counted while sizing */
};

typedef void agent_fields_fn(struct agent_enc *e, const void *msg);

static void
enc_u64(struct agent_enc *e, uint64_t v)
{
	if (e->out != NULL)
		frame_put_u64(e->out, v);
	else
		e->size += AGENT_U64_FIELD_SIZE;
}

/* A string of at most max bytes (a char array need not hold its NUL: an
 * unterminated one is sent as max bytes, which the decoder refuses). */
static void
enc_strn(struct agent_enc *e, const char *s, size_t max)
{
	size_t n = s != NULL ? strnlen(s, max) : 0;

	if (e->out != NULL)
		frame_put_bytes(e->out, n > 0 ? s : "", n);
	else
		e->size += AGENT_BYTES_FIELD_SIZE + n;
}

static void
enc_str(struct agent_enc *e, const char *s)
{
	enc_strn(e, s, s != NULL ? strlen(s) : 0);
}

static int
agent_encode(struct buf *out, enum frame_type type, agent_fields_fn *fields, const void *msg)
{
	struct agent_enc e = { NULL, 0 };
	size_t start;

	fields(&e, msg);
	if (e.size > FRAME_PAYLOAD_MAX || e.size + FRAME_HEADER_SIZE > buf_room(out))
		return -1;
	e.out = out;
	start = frame_begin(out, type);
	fields(&e, msg);
	if (frame_end(out, start) != FRAME_OK) {
		buf_truncate(out, start);
		return -1;
	}
	return 0;
}

static void
hello_fields(struct agent_enc *e, const void *msg)
{
	const struct agent_hello *h = msg;

	enc_u64(e, h->version);
	enc_strn(e, h->transport, sizeof(h->transport));
	enc_u64(e, h->slots);
	enc_u64(e, h->pid);
}

static void
job_fields(struct agent_enc *e, const void *msg)
{
	const struct agent_job *j = msg;
	size_t i;

	enc_u64(e, j->job_id);
	enc_strn(e, j->queue_id, sizeof(j->queue_id));
	enc_strn(e, j->transport, sizeof(j->transport));
	enc_strn(e, j->nexthop, sizeof(j->nexthop));
	enc_str(e, j->sender);
	enc_str(e, j->envid);
	enc_u64(e, j->ret);
	enc_u64(e, j->body);
	enc_u64(e, j->smtputf8 ? 1 : 0);
	enc_u64(e, j->size);
	enc_u64(e, (uint64_t)j->arrival);
	enc_strn(e, j->client_name, sizeof(j->client_name));
	enc_strn(e, j->client_addr, sizeof(j->client_addr));
	enc_strn(e, j->client_helo, sizeof(j->client_helo));
	enc_strn(e, j->client_proto, sizeof(j->client_proto));
	enc_u64(e, j->local_source ? 1 : 0);
	enc_u64(e, j->to_filter ? 1 : 0);
	enc_u64(e, j->nrcpt);
	for (i = 0; i < j->nrcpt; i++) {
		enc_u64(e, j->rcpts[i].index);
		enc_str(e, j->rcpts[i].addr);
		enc_str(e, j->rcpts[i].orcpt);
		enc_u64(e, j->rcpts[i].notify);
		enc_str(e, j->rcpts[i].target);
	}
}

static void
result_fields(struct agent_enc *e, const void *msg)
{
	const struct agent_result *r = msg;
	size_t i;

	enc_u64(e, r->job_id);
	enc_u64(e, r->index);
	enc_u64(e, (uint64_t)r->status);
	enc_strn(e, r->err_class, sizeof(r->err_class));
	enc_u64(e, (uint64_t)(int64_t)r->smtp_code);
	enc_strn(e, r->enh, sizeof(r->enh));
	enc_strn(e, r->text, sizeof(r->text));
	enc_strn(e, r->relay, sizeof(r->relay));
	enc_strn(e, r->host, sizeof(r->host));
	enc_u64(e, (uint64_t)r->relayed);
	for (i = 0; i < 4; i++)
		enc_u64(e, (uint64_t)r->delays[i]);
}

static void
done_fields(struct agent_enc *e, const void *msg)
{
	enc_u64(e, *(const uint64_t *)msg);
}

static void
command_fields(struct agent_enc *e, const void *msg)
{
	const struct qmgr_command *c = msg;
	size_t i;

	enc_u64(e, (uint64_t)c->verb);
	enc_u64(e, c->nselectors);
	for (i = 0; i < c->nselectors; i++)
		enc_str(e, c->selectors[i]);
}

static void
reply_fields(struct agent_enc *e, const void *msg)
{
	const struct qmgr_reply *r = msg;

	enc_u64(e, r->status);
	enc_u64(e, r->count);
	enc_strn(e, r->text, sizeof(r->text));
}

static void
stats_fields(struct agent_enc *e, const void *msg)
{
	const struct qmgr_stats *st = msg;
	size_t i;

	enc_u64(e, (uint64_t)st->started);
	enc_u64(e, st->received);
	enc_u64(e, st->delivered);
	enc_u64(e, st->deferred);
	enc_u64(e, st->bounced);
	enc_u64(e, st->q_active);
	enc_u64(e, st->q_incoming);
	enc_u64(e, st->q_deferred);
	enc_u64(e, st->q_hold);
	enc_u64(e, st->dests_total);
	enc_u64(e, st->ndests);
	for (i = 0; i < st->ndests; i++) {
		const struct qmgr_stats_dest *d = &st->dests[i];

		enc_strn(e, d->transport, sizeof(d->transport));
		enc_strn(e, d->nexthop, sizeof(d->nexthop));
		enc_u64(e, d->waiting);
		enc_u64(e, d->ready);
		enc_u64(e, d->active);
		enc_u64(e, d->jobs);
		enc_u64(e, (uint64_t)d->suspended_until);
	}
}

int
agent_hello_encode(const struct agent_hello *h, struct buf *out)
{
	return agent_encode(out, FRAME_AGENT_HELLO, hello_fields, h);
}

int
agent_job_encode(const struct agent_job *j, struct buf *out)
{
	return agent_encode(out, FRAME_AGENT_DELIVER, job_fields, j);
}

int
agent_result_encode(const struct agent_result *r, struct buf *out)
{
	return agent_encode(out, FRAME_AGENT_RESULT, result_fields, r);
}

int
agent_done_encode(uint64_t job_id, struct buf *out)
{
	return agent_encode(out, FRAME_AGENT_DONE, done_fields, &job_id);
}

int
qmgr_command_encode(const struct qmgr_command *c, struct buf *out)
{
	return agent_encode(out, FRAME_QMGR_COMMAND, command_fields, c);
}

int
qmgr_reply_encode(const struct qmgr_reply *r, struct buf *out)
{
	return agent_encode(out, FRAME_QMGR_REPLY, reply_fields, r);
}

int
qmgr_stats_encode(const struct qmgr_stats *st, struct buf *out)
{
	return agent_encode(out, FRAME_QMGR_STATS, stats_fields, st);
}

/* ---- decoding ---- */

/*
 * Decoding state. The first error sticks: later gets do nothing and return
 * zero values, so a decoder reads as the plain list of its fields and
 * checks d->failed before acting on a count.
 */
struct agent_dec {
	struct frame_reader *r;
	const char *frame;	/* "HELLO", for reasons */
	char *err;
	size_t errsz;
	bool failed;
};

static void dec_fail(struct agent_dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
dec_fail(struct agent_dec *d, const char *fmt, ...)
{
	char what[128];
	va_list ap;

	if (d->failed)
		return;
	d->failed = true;
	if (d->err == NULL || d->errsz == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(d->err, d->errsz, "%s: %s", d->frame, what);
}

static void
dec_init(struct agent_dec *d, struct frame_reader *r, enum frame_type type, const char *frame,
         char *err, size_t errsz)
{
	d->r = r;
	d->frame = frame;
	d->err = err;
	d->errsz = errsz;
	d->failed = false;
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (r->type != type)
		dec_fail(d, "unexpected frame type %d", (int)r->type);
}

/* A u64 in [min, max]; 0 after an error. */
static uint64_t
dec_u64(struct agent_dec *d, const char *what, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (d->failed)
		return 0;
	if (frame_get_u64(d->r, &v) < 0) {
		dec_fail(d, "%s: missing or not a number", what);
		return 0;
	}
	if (v < min || v > max) {
		dec_fail(d, "%s out of range (%llu)", what, (unsigned long long)v);
		return 0;
	}
	return v;
}

static bool
dec_bool(struct agent_dec *d, const char *what)
{
	return dec_u64(d, what, 0, 1) == 1;
}

/* A string of min..max-1 bytes without NUL, borrowed; NULL after an error. */
static const char *
dec_bytes(struct agent_dec *d, const char *what, size_t min, size_t max, size_t *len)
{
	const char *p;

	if (d->failed)
		return NULL;
	if (frame_get_bytes(d->r, &p, len) < 0) {
		dec_fail(d, "%s: missing or not a string", what);
		return NULL;
	}
	if (*len >= max) {
		dec_fail(d, "%s too long (%zu bytes)", what, *len);
		return NULL;
	}
	if (*len < min) {
		dec_fail(d, "%s is empty", what);
		return NULL;
	}
	if (memchr(p, '\0', *len) != NULL) {
		dec_fail(d, "%s contains a NUL byte", what);
		return NULL;
	}
	return p;
}

/* Into a char array of dstsz bytes (so at most dstsz - 1). */
static void
dec_str(struct agent_dec *d, const char *what, size_t min, char *dst, size_t dstsz)
{
	const char *p;
	size_t n;

	dst[0] = '\0';
	p = dec_bytes(d, what, min, dstsz, &n);
	if (p == NULL)
		return;
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/* Into new memory; NULL after an error, and for "" when empty_is_null. */
static char *
dec_strdup(struct agent_dec *d, const char *what, size_t min, size_t max, bool empty_is_null)
{
	const char *p;
	char *s;
	size_t n;

	p = dec_bytes(d, what, min, max, &n);
	if (p == NULL || (n == 0 && empty_is_null))
		return NULL;
	s = malloc(n + 1);
	if (s == NULL)
		fatal("out of memory");
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static int
dec_end(struct agent_dec *d)
{
	if (!d->failed && frame_get_end(d->r) < 0)
		dec_fail(d, "%zu bytes after the last field", d->r->len - d->r->pos);
	return d->failed ? -1 : 0;
}

int
agent_hello_decode(struct frame_reader *r, struct agent_hello *h, char *err, size_t errsz)
{
	struct agent_dec d;

	dec_init(&d, r, FRAME_AGENT_HELLO, "HELLO", err, errsz);
	memset(h, 0, sizeof(*h));
	/* Only our own version: agents are installed with the qmgr. */
	h->version = dec_u64(&d, "version", AGENT_PROTO_VERSION, AGENT_PROTO_VERSION);
	dec_str(&d, "transport", 1, h->transport, sizeof(h->transport));
	h->slots = dec_u64(&d, "slots", 1, UINT64_MAX);
	h->pid = dec_u64(&d, "pid", 0, UINT64_MAX);
	return dec_end(&d);
}

static void
dec_queue_id(struct agent_dec *d, char *dst, size_t dstsz)
{
	dec_str(d, "queue id", SPOOL_ID_LEN, dst, dstsz);
	if (!d->failed && (strlen(dst) != SPOOL_ID_LEN ||
	                   strspn(dst, "0123456789ABCDEF") != SPOOL_ID_LEN))
		dec_fail(d, "bad queue id");
}

static void
dec_job_rcpt(struct agent_dec *d, struct agent_job_rcpt *rc)
{
	rc->index = (uint32_t)dec_u64(d, "recipient index", 0, UINT32_MAX);
	rc->addr = dec_strdup(d, "recipient", 1, AGENT_ADDR_MAX, false);
	rc->orcpt = dec_strdup(d, "orcpt", 0, AGENT_ADDR_MAX, true);
	/* Every value up to the mask is a combination of known bits. */
	rc->notify = (unsigned)dec_u64(d, "notify", 0, AGENT_NOTIFY_MASK);
	rc->target = dec_strdup(d, "target", 0, AGENT_TARGET_MAX, true);
	if (!d->failed && rc->target != NULL && rc->target[0] != '|' && rc->target[0] != '/')
		dec_fail(d, "target neither a command nor a file");
}

int
agent_job_decode(struct frame_reader *r, struct agent_job *j, char *err, size_t errsz)
{
	struct agent_dec d;
	uint64_t n;
	size_t i;

	agent_job_init(j);
	dec_init(&d, r, FRAME_AGENT_DELIVER, "DELIVER", err, errsz);
	j->job_id = dec_u64(&d, "job id", 0, UINT64_MAX);
	dec_queue_id(&d, j->queue_id, sizeof(j->queue_id));
	dec_str(&d, "transport", 1, j->transport, sizeof(j->transport));
	dec_str(&d, "nexthop", 0, j->nexthop, sizeof(j->nexthop));
	j->sender = dec_strdup(&d, "sender", 0, AGENT_ADDR_MAX, false);
	j->envid = dec_strdup(&d, "envid", 0, AGENT_ADDR_MAX, true);
	j->ret = (unsigned)dec_u64(&d, "ret", ENVELOPE_RET_DEFAULT, ENVELOPE_RET_HDRS);
	j->body = (unsigned)dec_u64(&d, "body", ENVELOPE_BODY_DEFAULT, ENVELOPE_BODY_BINARYMIME);
	j->smtputf8 = dec_bool(&d, "smtputf8");
	j->size = dec_u64(&d, "size", 0, UINT64_MAX);
	j->arrival = (int64_t)dec_u64(&d, "arrival", 0, UINT64_MAX);
	dec_str(&d, "client name", 0, j->client_name, sizeof(j->client_name));
	dec_str(&d, "client address", 0, j->client_addr, sizeof(j->client_addr));
	dec_str(&d, "client helo", 0, j->client_helo, sizeof(j->client_helo));
	dec_str(&d, "client protocol", 0, j->client_proto, sizeof(j->client_proto));
	j->local_source = dec_bool(&d, "local source");
	j->to_filter = dec_bool(&d, "to filter");
	/* The count is checked before anything is allocated for it. */
	n = dec_u64(&d, "recipient count", 1, AGENT_JOB_RCPTS_MAX);
	if (d.failed)
		return -1;
	j->rcpts = calloc((size_t)n, sizeof(*j->rcpts));
	if (j->rcpts == NULL)
		fatal("out of memory");
	/* nrcpt covers every slot at once: agent_job_free() frees a partial job. */
	j->nrcpt = (size_t)n;
	for (i = 0; i < j->nrcpt && !d.failed; i++)
		dec_job_rcpt(&d, &j->rcpts[i]);
	return dec_end(&d);
}

int
agent_result_decode(struct frame_reader *r, struct agent_result *res, char *err, size_t errsz)
{
	struct agent_dec d;
	uint64_t code;
	size_t i;

	dec_init(&d, r, FRAME_AGENT_RESULT, "RESULT", err, errsz);
	memset(res, 0, sizeof(*res));
	res->job_id = dec_u64(&d, "job id", 0, UINT64_MAX);
	res->index = (uint32_t)dec_u64(&d, "recipient index", 0, UINT32_MAX);
	res->status = (enum agent_status)dec_u64(&d, "status", AGENT_DELIVERED, AGENT_PERMFAIL);
	dec_str(&d, "error class", 0, res->err_class, sizeof(res->err_class));
	code = dec_u64(&d, "smtp code", 0, AGENT_SMTP_CODE_MAX);
	if (code != 0 && code < AGENT_SMTP_CODE_MIN)
		dec_fail(&d, "smtp code out of range (%llu)", (unsigned long long)code);
	res->smtp_code = (int)code;
	dec_str(&d, "enhanced code", 0, res->enh, sizeof(res->enh));
	dec_str(&d, "text", 0, res->text, sizeof(res->text));
	dec_str(&d, "relay", 0, res->relay, sizeof(res->relay));
	dec_str(&d, "host", 0, res->host, sizeof(res->host));
	res->relayed = (enum agent_relayed)dec_u64(&d, "relayed", 0, AGENT_DSN_PASSED);
	for (i = 0; i < 4; i++)
		res->delays[i] = (int64_t)dec_u64(&d, "delay", 0, UINT64_MAX);
	return dec_end(&d);
}

int
agent_done_decode(struct frame_reader *r, uint64_t *job_id, char *err, size_t errsz)
{
	struct agent_dec d;

	dec_init(&d, r, FRAME_AGENT_DONE, "DONE", err, errsz);
	*job_id = dec_u64(&d, "job id", 0, UINT64_MAX);
	return dec_end(&d);
}

int
qmgr_command_decode(struct frame_reader *r, struct qmgr_command *c, char *err, size_t errsz)
{
	struct agent_dec d;
	uint64_t n;
	size_t i;

	memset(c, 0, sizeof(*c));
	dec_init(&d, r, FRAME_QMGR_COMMAND, "COMMAND", err, errsz);
	c->verb = (enum qmgr_verb)dec_u64(&d, "verb", QMGR_VERB_FLUSH, QMGR_VERB_STATS);
	n = dec_u64(&d, "selector count", 0, AGENT_SELECTORS_MAX);
	if (d.failed)
		return -1;
	if (n > 0) {
		c->selectors = calloc((size_t)n, sizeof(*c->selectors));
		if (c->selectors == NULL)
			fatal("out of memory");
	}
	c->nselectors = (size_t)n;
	for (i = 0; i < c->nselectors && !d.failed; i++)
		c->selectors[i] = dec_strdup(&d, "selector", 1, AGENT_ADDR_MAX, false);
	if (dec_end(&d) < 0) {
		/* Nothing half-built is handed back. */
		qmgr_command_free(c);
		return -1;
	}
	return 0;
}

int
qmgr_reply_decode(struct frame_reader *r, struct qmgr_reply *rep, char *err, size_t errsz)
{
	struct agent_dec d;

	dec_init(&d, r, FRAME_QMGR_REPLY, "REPLY", err, errsz);
	memset(rep, 0, sizeof(*rep));
	rep->status = dec_u64(&d, "status", 0, AGENT_EXIT_STATUS_MAX);
	rep->count = dec_u64(&d, "count", 0, UINT64_MAX);
	dec_str(&d, "text", 0, rep->text, sizeof(rep->text));
	return dec_end(&d);
}

int
qmgr_stats_decode(struct frame_reader *r, struct qmgr_stats *st, char *err, size_t errsz)
{
	struct agent_dec d;
	uint64_t n;
	size_t i;

	memset(st, 0, sizeof(*st));
	dec_init(&d, r, FRAME_QMGR_STATS, "STATS", err, errsz);
	st->started = (int64_t)dec_u64(&d, "started", 0, UINT64_MAX);
	st->received = dec_u64(&d, "received", 0, UINT64_MAX);
	st->delivered = dec_u64(&d, "delivered", 0, UINT64_MAX);
	st->deferred = dec_u64(&d, "deferred", 0, UINT64_MAX);
	st->bounced = dec_u64(&d, "bounced", 0, UINT64_MAX);
	st->q_active = dec_u64(&d, "active", 0, UINT64_MAX);
	st->q_incoming = dec_u64(&d, "incoming", 0, UINT64_MAX);
	st->q_deferred = dec_u64(&d, "deferred messages", 0, UINT64_MAX);
	st->q_hold = dec_u64(&d, "hold", 0, UINT64_MAX);
	st->dests_total = dec_u64(&d, "destination total", 0, UINT64_MAX);
	/* The count is checked before anything is allocated for it. */
	n = dec_u64(&d, "destination count", 0, AGENT_STATS_DESTS_MAX);
	if (!d.failed && n > st->dests_total)
		dec_fail(&d, "destination count %llu above the total",
		         (unsigned long long)n);
	if (d.failed)
		return -1;
	if (n > 0) {
		st->dests = calloc((size_t)n, sizeof(*st->dests));
		if (st->dests == NULL)
			fatal("out of memory");
	}
	st->ndests = (size_t)n;
	for (i = 0; i < st->ndests && !d.failed; i++) {
		struct qmgr_stats_dest *sd = &st->dests[i];

		dec_str(&d, "transport", 1, sd->transport, sizeof(sd->transport));
		dec_str(&d, "nexthop", 0, sd->nexthop, sizeof(sd->nexthop));
		sd->waiting = dec_u64(&d, "waiting", 0, UINT64_MAX);
		sd->ready = dec_u64(&d, "ready", 0, UINT64_MAX);
		sd->active = dec_u64(&d, "in flight", 0, UINT64_MAX);
		sd->jobs = dec_u64(&d, "jobs", 0, UINT64_MAX);
		sd->suspended_until = (int64_t)dec_u64(&d, "suspended until", 0, UINT64_MAX);
	}
	return dec_end(&d);
}

/* ---- jobs and commands ---- */

static char *
agent_strdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatal("out of memory");
	return p;
}

void
agent_job_init(struct agent_job *j)
{
	memset(j, 0, sizeof(*j));
}

void
agent_job_add_rcpt(struct agent_job *j, uint32_t index, const char *addr, const char *orcpt,
                   unsigned notify)
{
	struct agent_job_rcpt *rc;

	rc = realloc(j->rcpts, (j->nrcpt + 1) * sizeof(*rc));
	if (rc == NULL)
		fatal("out of memory");
	j->rcpts = rc;
	rc = &j->rcpts[j->nrcpt++];
	rc->index = index;
	rc->addr = agent_strdup(addr);
	rc->orcpt = orcpt != NULL ? agent_strdup(orcpt) : NULL;
	rc->notify = notify;
	rc->target = NULL;
}

void
agent_job_set_target(struct agent_job *j, const char *target)
{
	struct agent_job_rcpt *rc = &j->rcpts[j->nrcpt - 1];

	free(rc->target);
	rc->target = target != NULL ? agent_strdup(target) : NULL;
}

void
agent_job_free(struct agent_job *j)
{
	size_t i;

	for (i = 0; i < j->nrcpt; i++) {
		free(j->rcpts[i].addr);
		free(j->rcpts[i].orcpt);
		free(j->rcpts[i].target);
	}
	free(j->rcpts);
	free(j->sender);
	free(j->envid);
	agent_job_init(j);
}

void
qmgr_command_free(struct qmgr_command *c)
{
	size_t i;

	for (i = 0; i < c->nselectors; i++)
		free(c->selectors[i]);
	free(c->selectors);
	c->selectors = NULL;
	c->nselectors = 0;
}

void
qmgr_stats_free(struct qmgr_stats *st)
{
	free(st->dests);
	st->dests = NULL;
	st->ndests = 0;
}

/* ---- names ---- */

static const char *const agent_status_names[] = {
	[AGENT_DELIVERED] = "delivered",
	[AGENT_TEMPFAIL] = "tempfail",
	[AGENT_PERMFAIL] = "permfail",
};

static const char *const qmgr_verb_names[] = {
	[QMGR_VERB_FLUSH] = "flush",
	[QMGR_VERB_HOLD] = "hold",
	[QMGR_VERB_RELEASE] = "release",
	[QMGR_VERB_DELETE] = "delete",
	[QMGR_VERB_REQUEUE] = "requeue",
	[QMGR_VERB_STATS] = "stats",
};

#define AGENT_NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *
agent_status_name(enum agent_status s)
{
	if ((unsigned)s >= AGENT_NELEM(agent_status_names))
		return "unknown";
	return agent_status_names[s];
}

const char *
qmgr_verb_name(enum qmgr_verb v)
{
	if ((unsigned)v >= AGENT_NELEM(qmgr_verb_names) || qmgr_verb_names[v] == NULL)
		return "unknown";
	return qmgr_verb_names[v];
}

int
qmgr_verb_parse(const char *name)
{
	size_t i;

	for (i = 0; i < AGENT_NELEM(qmgr_verb_names); i++)
		if (qmgr_verb_names[i] != NULL && strcmp(name, qmgr_verb_names[i]) == 0)
			return (int)i;
	return -1;
}
