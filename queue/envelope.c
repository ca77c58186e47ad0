/*
 * envelope: the in-memory envelope of one message and its binary record,
 * the value stored under the queue id in the spool's index.
 *
 * Owns: every string and the recipient array of a struct envelope.
 * Errors: envelope_decode() returns -1 with a short reason and leaves the
 * envelope cleared; envelope_encode() returns BUF_TOO_BIG. Out of memory
 * is fatal(). Nothing here logs.
 *
 * Record format (all integers big-endian):
 *
 *   "TENV"  u16 version (ENVELOPE_VERSION)
 *   field*: u8 tag, u32 length, length bytes
 *
 * The recipients are one field, ENVELOPE_TAG_RCPTS, holding a u32 count
 * and then, per recipient, a u32 block length and the recipient's own
 * fields (the same tag/length/bytes shape, with ENVELOPE_RTAG_* tags).
 * Readers skip tags they do not know, at both levels, so a later version
 * may add fields without bumping the version; the version changes only
 * when an old reader would misread a record. A known tag that appears
 * twice, a fixed-size field of the wrong size, an out-of-range enum, a
 * string holding NUL or a length or count running past the data is an
 * error: the record is damaged, and we say so rather than guess.
 */
#include "queue/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static const unsigned char envelope_magic[4] = { 'T', 'E', 'N', 'V' };
#define ENVELOPE_VERSION 1u
#define ENVELOPE_HEADER_LEN 6u		/* magic + u16 version */
#define ENVELOPE_FIELD_HEADER_LEN 5u	/* u8 tag + u32 length */
/* The smallest recipient: a block length and an empty address field. */
#define ENVELOPE_RCPT_MIN_LEN (4u + ENVELOPE_FIELD_HEADER_LEN)

/* Top-level tags. Never reuse a number: old records keep their meaning. */
enum envelope_tag {
	ENVELOPE_TAG_SENDER = 1,	/* string, required ("" = null sender) */
	ENVELOPE_TAG_RET = 2,		/* u8 enum envelope_ret */
	ENVELOPE_TAG_ENVID = 3,		/* string */
	ENVELOPE_TAG_BODY = 4,		/* u8 enum envelope_body */
	ENVELOPE_TAG_SMTPUTF8 = 5,	/* u8 0/1 */
	ENVELOPE_TAG_SIZE = 6,		/* u64 */
	ENVELOPE_TAG_ARRIVAL = 7,	/* i64 as u64 */
	ENVELOPE_TAG_CLIENT_NAME = 8,
	ENVELOPE_TAG_CLIENT_ADDR = 9,
	ENVELOPE_TAG_HELO = 10,
	ENVELOPE_TAG_PROTO = 11,
	ENVELOPE_TAG_SASL_METHOD = 12,
	ENVELOPE_TAG_SASL_USERNAME = 13,
	ENVELOPE_TAG_LISTENER = 14,
	ENVELOPE_TAG_HOLD = 15,		/* u8 1, written only when set */
	/* string "transport:nexthop", written only when set. A reader older
	 * than this tag skips it and routes the message normally: a
	 * downgrade with filtered mail in the queue bypasses the filter. */
	ENVELOPE_TAG_FILTER = 16,
	ENVELOPE_TAG_RCPTS = 20,	/* u32 count, then count recipient blocks */
	/* Known tags stay below 32: the decoder keeps a 32-bit "seen" mask. */
};

/* Tags inside a recipient block. */
enum envelope_rtag {
	ENVELOPE_RTAG_ADDR = 1,		/* string, required */
	ENVELOPE_RTAG_ORCPT = 2,	/* string */
	ENVELOPE_RTAG_NOTIFY = 3,	/* u8 ENVELOPE_NOTIFY_* bits */
	ENVELOPE_RTAG_TARGET = 4,	/* string: "|command" or "/file" */
};

#define ENVELOPE_NOTIFY_ALL (ENVELOPE_NOTIFY_NEVER | ENVELOPE_NOTIFY_SUCCESS | \
                             ENVELOPE_NOTIFY_FAILURE | ENVELOPE_NOTIFY_DELAY)

/* ---- the struct ---- */

void
envelope_init(struct envelope *env)
{
	memset(env, 0, sizeof(*env));
}

void
envelope_remove_rcpt(struct envelope *env, size_t i)
{
	if (i >= env->nrcpt)
		panic("envelope_remove_rcpt: index %zu of %zu", i, env->nrcpt);
	free(env->rcpts[i].addr);
	free(env->rcpts[i].orcpt);
	free(env->rcpts[i].target);
	memmove(&env->rcpts[i], &env->rcpts[i + 1], (env->nrcpt - i - 1) * sizeof(env->rcpts[0]));
	env->nrcpt--;
}

void
envelope_clear_rcpts(struct envelope *env)
{
	size_t i;

	for (i = 0; i < env->nrcpt; i++) {
		free(env->rcpts[i].addr);
		free(env->rcpts[i].orcpt);
		free(env->rcpts[i].target);
	}
	env->nrcpt = 0;
}

static void
envelope_free_strings(struct envelope *env)
{
	envelope_clear_rcpts(env);
	free(env->sender);
	free(env->envid);
	free(env->client_name);
	free(env->client_addr);
	free(env->helo);
	free(env->proto);
	free(env->sasl_method);
	free(env->sasl_username);
	free(env->listener);
	free(env->filter);
}

void
envelope_free(struct envelope *env)
{
	envelope_free_strings(env);
	free(env->rcpts);
	envelope_init(env);
}

void
envelope_clear(struct envelope *env)
{
	struct envelope_rcpt *rcpts = env->rcpts;
	size_t cap = env->rcpt_cap;

	envelope_free_strings(env);
	envelope_init(env);
	env->rcpts = rcpts;
	env->rcpt_cap = cap;
}

static char *
envelope_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL)
		fatal("out of memory (envelope string of %zu bytes)", n);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
envelope_set(char **field, const char *s)
{
	char *p = s ? envelope_strndup(s, strlen(s)) : NULL;

	free(*field);
	*field = p;
}

/* Make room for one more recipient and return it, zeroed. */
static struct envelope_rcpt *
envelope_rcpt_new(struct envelope *env)
{
	struct envelope_rcpt *r;
	size_t ncap;

	if (env->nrcpt == env->rcpt_cap) {
		ncap = env->rcpt_cap ? env->rcpt_cap * 2 : 4;
		if (ncap > ((size_t)-1) / sizeof(*r))
			fatal("out of memory (%zu recipients)", ncap);
		r = realloc(env->rcpts, ncap * sizeof(*r));
		if (r == NULL)
			fatal("out of memory (%zu recipients)", ncap);
		env->rcpts = r;
		env->rcpt_cap = ncap;
	}
	r = &env->rcpts[env->nrcpt++];
	memset(r, 0, sizeof(*r));
	return r;
}

void
envelope_add_rcpt(struct envelope *env, const char *addr, const char *orcpt, unsigned notify)
{
	struct envelope_rcpt *r = envelope_rcpt_new(env);

	envelope_set(&r->addr, addr ? addr : "");
	envelope_set(&r->orcpt, orcpt);
	r->notify = notify;
}

void
envelope_copy(struct envelope *dst, const struct envelope *src)
{
	size_t i;

	envelope_clear(dst);
	envelope_set(&dst->sender, src->sender);
	for (i = 0; i < src->nrcpt; i++) {
		envelope_add_rcpt(dst, src->rcpts[i].addr, src->rcpts[i].orcpt, src->rcpts[i].notify);
		envelope_set(&dst->rcpts[i].target, src->rcpts[i].target);
	}
	dst->ret = src->ret;
	envelope_set(&dst->envid, src->envid);
	dst->body = src->body;
	dst->smtputf8 = src->smtputf8;
	dst->hold = src->hold;
	dst->size = src->size;
	dst->arrival = src->arrival;
	envelope_set(&dst->client_name, src->client_name);
	envelope_set(&dst->client_addr, src->client_addr);
	envelope_set(&dst->helo, src->helo);
	envelope_set(&dst->proto, src->proto);
	envelope_set(&dst->sasl_method, src->sasl_method);
	envelope_set(&dst->sasl_username, src->sasl_username);
	envelope_set(&dst->listener, src->listener);
	envelope_set(&dst->filter, src->filter);
}

/* ---- encoding ---- */

/* The optional string fields, in record order. */
struct envelope_str_field {
	enum envelope_tag tag;
	size_t offset;		/* of the char * in struct envelope */
};

static const struct envelope_str_field envelope_str_fields[] = {
	{ ENVELOPE_TAG_ENVID, offsetof(struct envelope, envid) },
	{ ENVELOPE_TAG_CLIENT_NAME, offsetof(struct envelope, client_name) },
	{ ENVELOPE_TAG_CLIENT_ADDR, offsetof(struct envelope, client_addr) },
	{ ENVELOPE_TAG_HELO, offsetof(struct envelope, helo) },
	{ ENVELOPE_TAG_PROTO, offsetof(struct envelope, proto) },
	{ ENVELOPE_TAG_SASL_METHOD, offsetof(struct envelope, sasl_method) },
	{ ENVELOPE_TAG_SASL_USERNAME, offsetof(struct envelope, sasl_username) },
	{ ENVELOPE_TAG_LISTENER, offsetof(struct envelope, listener) },
	{ ENVELOPE_TAG_FILTER, offsetof(struct envelope, filter) },
};
#define ENVELOPE_STR_FIELDS (sizeof(envelope_str_fields) / sizeof(envelope_str_fields[0]))

static char **
envelope_str_at(struct envelope *env, size_t offset)
{
	return (char **)(void *)((char *)env + offset);
}

static const char *
envelope_str_get(const struct envelope *env, size_t offset)
{
	return *(char *const *)(const void *)((const char *)env + offset);
}

/*
 * The encoder writes into a flat array whose size was computed first, so
 * out is either appended to in full or left untouched.
 */
struct envelope_writer {
	unsigned char *p;
	size_t off;
};

static void
envelope_put_u32(struct envelope_writer *w, uint32_t v)
{
	w->p[w->off++] = (unsigned char)(v >> 24);
	w->p[w->off++] = (unsigned char)(v >> 16);
	w->p[w->off++] = (unsigned char)(v >> 8);
	w->p[w->off++] = (unsigned char)v;
}

static void
envelope_put_field(struct envelope_writer *w, unsigned tag, const void *data, size_t n)
{
	w->p[w->off++] = (unsigned char)tag;
	envelope_put_u32(w, (uint32_t)n);
	if (n > 0)
		memcpy(w->p + w->off, data, n);
	w->off += n;
}

static void
envelope_put_u8_field(struct envelope_writer *w, unsigned tag, unsigned v)
{
	unsigned char c = (unsigned char)v;

	envelope_put_field(w, tag, &c, 1);
}

static void
envelope_put_u64_field(struct envelope_writer *w, unsigned tag, uint64_t v)
{
	unsigned char b[8];
	int i;

	for (i = 7; i >= 0; i--) {
		b[i] = (unsigned char)v;
		v >>= 8;
	}
	envelope_put_field(w, tag, b, sizeof(b));
}

static size_t
envelope_rcpt_len(const struct envelope_rcpt *r)
{
	size_t n = ENVELOPE_FIELD_HEADER_LEN + (r->addr ? strlen(r->addr) : 0);

	if (r->orcpt)
		n += ENVELOPE_FIELD_HEADER_LEN + strlen(r->orcpt);
	if (r->notify)
		n += ENVELOPE_FIELD_HEADER_LEN + 1;
	if (r->target)
		n += ENVELOPE_FIELD_HEADER_LEN + strlen(r->target);
	return n;
}

/* Size of the RCPTS field's value; SIZE_MAX past ENVELOPE_RECORD_MAX. */
static size_t
envelope_rcpts_len(const struct envelope *env)
{
	size_t i, n = 4, one;

	for (i = 0; i < env->nrcpt; i++) {
		one = envelope_rcpt_len(&env->rcpts[i]);
		if (one > ENVELOPE_RECORD_MAX || n + 4 + one > ENVELOPE_RECORD_MAX)
			return SIZE_MAX;
		n += 4 + one;
	}
	return n;
}

/* Total record size; SIZE_MAX when it would pass ENVELOPE_RECORD_MAX. */
static size_t
envelope_record_len(const struct envelope *env)
{
	size_t n = ENVELOPE_HEADER_LEN, i, rl;
	const char *s;

	n += ENVELOPE_FIELD_HEADER_LEN + (env->sender ? strlen(env->sender) : 0);
	for (i = 0; i < ENVELOPE_STR_FIELDS; i++) {
		s = envelope_str_get(env, envelope_str_fields[i].offset);
		if (s == NULL)
			continue;
		n += ENVELOPE_FIELD_HEADER_LEN + strlen(s);
		if (n > ENVELOPE_RECORD_MAX)
			return SIZE_MAX;
	}
	n += 3 * (ENVELOPE_FIELD_HEADER_LEN + 1);	/* ret, body, smtputf8 */
	if (env->hold)
		n += ENVELOPE_FIELD_HEADER_LEN + 1;
	n += 2 * (ENVELOPE_FIELD_HEADER_LEN + 8);	/* size, arrival */
	rl = envelope_rcpts_len(env);
	if (rl == SIZE_MAX)
		return SIZE_MAX;
	n += ENVELOPE_FIELD_HEADER_LEN + rl;
	return n > ENVELOPE_RECORD_MAX ? SIZE_MAX : n;
}

enum buf_result
envelope_encode(const struct envelope *env, struct buf *out)
{
	struct envelope_writer w;
	size_t total, i, rl;
	const struct envelope_rcpt *r;
	const char *s;

	total = envelope_record_len(env);
	if (total == SIZE_MAX)
		return BUF_TOO_BIG;
	w.p = (unsigned char *)buf_reserve(out, total);
	if (w.p == NULL)
		return BUF_TOO_BIG;
	w.off = 0;

	memcpy(w.p, envelope_magic, sizeof(envelope_magic));
	w.off += sizeof(envelope_magic);
	w.p[w.off++] = (unsigned char)(ENVELOPE_VERSION >> 8);
	w.p[w.off++] = (unsigned char)ENVELOPE_VERSION;

	s = env->sender ? env->sender : "";
	envelope_put_field(&w, ENVELOPE_TAG_SENDER, s, strlen(s));
	envelope_put_u8_field(&w, ENVELOPE_TAG_RET, env->ret);
	envelope_put_u8_field(&w, ENVELOPE_TAG_BODY, env->body);
	envelope_put_u8_field(&w, ENVELOPE_TAG_SMTPUTF8, env->smtputf8 ? 1 : 0);
	if (env->hold)
		envelope_put_u8_field(&w, ENVELOPE_TAG_HOLD, 1);
	envelope_put_u64_field(&w, ENVELOPE_TAG_SIZE, env->size);
	envelope_put_u64_field(&w, ENVELOPE_TAG_ARRIVAL, (uint64_t)env->arrival);
	for (i = 0; i < ENVELOPE_STR_FIELDS; i++) {
		s = envelope_str_get(env, envelope_str_fields[i].offset);
		if (s != NULL)
			envelope_put_field(&w, envelope_str_fields[i].tag, s, strlen(s));
	}

	rl = envelope_rcpts_len(env);
	w.p[w.off++] = ENVELOPE_TAG_RCPTS;
	envelope_put_u32(&w, (uint32_t)rl);
	envelope_put_u32(&w, (uint32_t)env->nrcpt);
	for (i = 0; i < env->nrcpt; i++) {
		r = &env->rcpts[i];
		envelope_put_u32(&w, (uint32_t)envelope_rcpt_len(r));
		s = r->addr ? r->addr : "";
		envelope_put_field(&w, ENVELOPE_RTAG_ADDR, s, strlen(s));
		if (r->orcpt)
			envelope_put_field(&w, ENVELOPE_RTAG_ORCPT, r->orcpt, strlen(r->orcpt));
		if (r->notify)
			envelope_put_u8_field(&w, ENVELOPE_RTAG_NOTIFY, r->notify);
		if (r->target)
			envelope_put_field(&w, ENVELOPE_RTAG_TARGET, r->target, strlen(r->target));
	}
	if (w.off != total)
		panic("envelope_encode: wrote %zu bytes, computed %zu", w.off, total);
	buf_commit(out, total);
	return BUF_OK;
}

/* ---- decoding ---- */

/* A bounded cursor over untrusted bytes; every read checks what is left. */
struct envelope_reader {
	const unsigned char *p;
	size_t len;
	size_t off;
};

static size_t
envelope_left(const struct envelope_reader *rd)
{
	return rd->len - rd->off;
}

static int
envelope_get_u32(struct envelope_reader *rd, uint32_t *v)
{
	const unsigned char *q;

	if (envelope_left(rd) < 4)
		return -1;
	q = rd->p + rd->off;
	*v = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
	rd->off += 4;
	return 0;
}

/* One field: its tag and a sub-reader over its value. */
static int
envelope_get_field(struct envelope_reader *rd, unsigned *tag, struct envelope_reader *val,
                   const char **why)
{
	uint32_t n;

	if (envelope_left(rd) < ENVELOPE_FIELD_HEADER_LEN) {
		*why = "truncated field header";
		return -1;
	}
	*tag = rd->p[rd->off++];
	(void)envelope_get_u32(rd, &n);
	if (n > envelope_left(rd)) {
		*why = "field length past end of record";
		return -1;
	}
	val->p = rd->p + rd->off;
	val->len = n;
	val->off = 0;
	rd->off += n;
	return 0;
}

static int
envelope_get_str(const struct envelope_reader *val, char **field, const char **why)
{
	if (memchr(val->p, '\0', val->len) != NULL) {
		*why = "string contains NUL";
		return -1;
	}
	free(*field);
	*field = envelope_strndup((const char *)val->p, val->len);
	return 0;
}

static int
envelope_get_u8(const struct envelope_reader *val, unsigned max, unsigned *v, const char **why)
{
	if (val->len != 1) {
		*why = "bad length of a one-byte field";
		return -1;
	}
	if (val->p[0] > max) {
		*why = "value out of range";
		return -1;
	}
	*v = val->p[0];
	return 0;
}

static int
envelope_get_u64(const struct envelope_reader *val, uint64_t *v, const char **why)
{
	size_t i;

	if (val->len != 8) {
		*why = "bad length of an eight-byte field";
		return -1;
	}
	*v = 0;
	for (i = 0; i < 8; i++)
		*v = *v << 8 | val->p[i];
	return 0;
}

static int
envelope_decode_rcpt(struct envelope_reader *blk, struct envelope_rcpt *r, const char **why)
{
	struct envelope_reader val;
	unsigned tag, seen = 0;

	while (envelope_left(blk) > 0) {
		if (envelope_get_field(blk, &tag, &val, why) < 0)
			return -1;
		if (tag >= ENVELOPE_RTAG_ADDR && tag <= ENVELOPE_RTAG_TARGET) {
			if (seen & (1u << tag)) {
				*why = "duplicate recipient field";
				return -1;
			}
			seen |= 1u << tag;
		}
		switch (tag) {
		case ENVELOPE_RTAG_ADDR:
			if (envelope_get_str(&val, &r->addr, why) < 0)
				return -1;
			break;
		case ENVELOPE_RTAG_ORCPT:
			if (envelope_get_str(&val, &r->orcpt, why) < 0)
				return -1;
			break;
		case ENVELOPE_RTAG_NOTIFY:
			if (envelope_get_u8(&val, ENVELOPE_NOTIFY_ALL, &r->notify, why) < 0)
				return -1;
			break;
		case ENVELOPE_RTAG_TARGET:
			if (envelope_get_str(&val, &r->target, why) < 0)
				return -1;
			if (r->target[0] != '|' && r->target[0] != '/') {
				*why = "recipient target neither a command nor a file";
				return -1;
			}
			break;
		default:
			break;		/* a later version's field: skip */
		}
	}
	if (r->addr == NULL) {
		*why = "recipient without address";
		return -1;
	}
	return 0;
}

static int
envelope_decode_rcpts(struct envelope_reader *val, struct envelope *env, const char **why)
{
	uint32_t count, i, blen;
	struct envelope_reader blk;

	if (envelope_get_u32(val, &count) < 0) {
		*why = "truncated recipient count";
		return -1;
	}
	/* Bound the count by the data before allocating anything for it. */
	if (count > envelope_left(val) / ENVELOPE_RCPT_MIN_LEN) {
		*why = "recipient count larger than the data";
		return -1;
	}
	for (i = 0; i < count; i++) {
		if (envelope_get_u32(val, &blen) < 0) {
			*why = "truncated recipient";
			return -1;
		}
		if (blen > envelope_left(val)) {
			*why = "recipient length past end of field";
			return -1;
		}
		blk.p = val->p + val->off;
		blk.len = blen;
		blk.off = 0;
		val->off += blen;
		if (envelope_decode_rcpt(&blk, envelope_rcpt_new(env), why) < 0)
			return -1;
	}
	if (envelope_left(val) != 0) {
		*why = "bytes after the last recipient";
		return -1;
	}
	return 0;
}

/* Decode one top-level field of a known tag. */
static int
envelope_decode_field(unsigned tag, struct envelope_reader *val, struct envelope *env,
                      const char **why)
{
	unsigned v;
	uint64_t u;
	size_t i;

	switch (tag) {
	case ENVELOPE_TAG_SENDER:
		return envelope_get_str(val, &env->sender, why);
	case ENVELOPE_TAG_RET:
		if (envelope_get_u8(val, ENVELOPE_RET_HDRS, &v, why) < 0)
			return -1;
		env->ret = (enum envelope_ret)v;
		return 0;
	case ENVELOPE_TAG_BODY:
		if (envelope_get_u8(val, ENVELOPE_BODY_BINARYMIME, &v, why) < 0)
			return -1;
		env->body = (enum envelope_body)v;
		return 0;
	case ENVELOPE_TAG_SMTPUTF8:
		if (envelope_get_u8(val, 1, &v, why) < 0)
			return -1;
		env->smtputf8 = v != 0;
		return 0;
	case ENVELOPE_TAG_HOLD:
		if (envelope_get_u8(val, 1, &v, why) < 0)
			return -1;
		env->hold = v != 0;
		return 0;
	case ENVELOPE_TAG_SIZE:
		return envelope_get_u64(val, &env->size, why);
	case ENVELOPE_TAG_ARRIVAL:
		if (envelope_get_u64(val, &u, why) < 0)
			return -1;
		env->arrival = (int64_t)u;
		return 0;
	case ENVELOPE_TAG_RCPTS:
		return envelope_decode_rcpts(val, env, why);
	default:
		for (i = 0; i < ENVELOPE_STR_FIELDS; i++)
			if (envelope_str_fields[i].tag == tag)
				return envelope_get_str(val, envelope_str_at(env,
				    envelope_str_fields[i].offset), why);
		return 0;	/* a later version's field: skip */
	}
}

/* Unknown tags may repeat (a later version decides); known ones may not. */
static int
envelope_tag_known(unsigned tag)
{
	size_t i;

	if (tag == ENVELOPE_TAG_SENDER || (tag >= ENVELOPE_TAG_RET && tag <= ENVELOPE_TAG_ARRIVAL) ||
	    tag == ENVELOPE_TAG_HOLD || tag == ENVELOPE_TAG_RCPTS)
		return 1;
	for (i = 0; i < ENVELOPE_STR_FIELDS; i++)
		if (envelope_str_fields[i].tag == tag)
			return 1;
	return 0;
}

static int
envelope_decode_record(struct envelope_reader *rd, struct envelope *env, const char **why)
{
	struct envelope_reader val;
	unsigned tag, version;
	uint32_t seen = 0;

	if (rd->len > ENVELOPE_RECORD_MAX) {
		*why = "record too large";
		return -1;
	}
	if (rd->len < ENVELOPE_HEADER_LEN) {
		*why = "truncated header";
		return -1;
	}
	if (memcmp(rd->p, envelope_magic, sizeof(envelope_magic)) != 0) {
		*why = "bad magic";
		return -1;
	}
	version = (unsigned)rd->p[4] << 8 | rd->p[5];
	if (version != ENVELOPE_VERSION) {
		*why = "unsupported version";
		return -1;
	}
	rd->off = ENVELOPE_HEADER_LEN;
	while (envelope_left(rd) > 0) {
		if (envelope_get_field(rd, &tag, &val, why) < 0)
			return -1;
		if (envelope_tag_known(tag)) {
			if (seen & (1u << tag)) {
				*why = "duplicate field";
				return -1;
			}
			seen |= 1u << tag;
		}
		if (envelope_decode_field(tag, &val, env, why) < 0)
			return -1;
	}
	if (!(seen & (1u << ENVELOPE_TAG_SENDER))) {
		*why = "no sender";
		return -1;
	}
	if (!(seen & (1u << ENVELOPE_TAG_RCPTS))) {
		*why = "no recipient list";
		return -1;
	}
	return 0;
}

int
envelope_decode(const void *p, size_t len, struct envelope *env, char *err, size_t errsz)
{
	struct envelope_reader rd = { p, len, 0 };
	const char *why = "malformed record";

	envelope_clear(env);
	if (envelope_decode_record(&rd, env, &why) == 0)
		return 0;
	envelope_clear(env);
	if (err != NULL && errsz > 0)
		snprintf(err, errsz, "envelope record: %s", why);
	return -1;
}
