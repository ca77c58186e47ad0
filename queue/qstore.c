/*
 * qstore: qmgr's records and their LMDB databases. Owns the three DB
 * handles and nothing else; transactions go through the spool's gate
 * (spool_impl.h), so map growth and several threads stay safe.
 *
 * Record layout (all three): a 4-byte magic naming the record kind, a
 * u16 version, then common/tlv fields. Unknown tags are skipped; a known
 * tag with a wrong length, a string with a NUL, or a value out of range is
 * an error.
 */
#include "queue/qstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/log.h"
#include "common/tlv.h"
#include "queue/spool_impl.h"
#include "queue/unlinker.h"

#define QSTORE_VERSION 1
#define QSTORE_HEADER_LEN 6	/* magic + u16 version */
/* Bytes of a recipient key: the queue id and a u32 index. */
#define QSTORE_RCPT_KEY_LEN (SPOOL_ID_LEN + 4)

static const char qstore_magic_rcpt[4] = { 'T', 'Q', 'R', 'C' };
static const char qstore_magic_msg[4] = { 'T', 'Q', 'M', 'S' };
static const char qstore_magic_retry[4] = { 'T', 'Q', 'R', 'T' };

enum qstore_rcpt_tag {
	QR_STATE = 1, QR_ATTEMPTS = 2, QR_FIRST_FAILURE = 3, QR_LAST_ATTEMPT = 4,
	QR_NEXT_ATTEMPT = 5, QR_SMTP_CODE = 6, QR_CLASS = 7, QR_ENH = 8, QR_TEXT = 9,
	QR_RELAY = 10,
};
enum qstore_msg_tag { QM_HELD = 1, QM_WARNED = 2, QM_FIRST_SEEN = 3 };
enum qstore_retry_tag { QT_FIRST_FAILED = 1, QT_LAST_TRY = 2, QT_NEXT_TRY = 3, QT_EXPIRED = 4 };

struct qstore {
	struct spool *sp;
	MDB_dbi rcpt_dbi, msg_dbi, retry_dbi;
	bool absent;		/* read-only and the tables do not exist */
	/* Removes the files of forgotten messages off the caller's thread
	 * (queue/unlinker.h); made on the first removal. */
	struct unlinker *unlinker;
};

enum qstore_op_kind { QOP_PUT_RCPT, QOP_PUT_MSG, QOP_PUT_RETRY, QOP_DEL_RETRY, QOP_REMOVE_MSG };

struct qstore_op {
	enum qstore_op_kind kind;
	char key[QSTORE_KEY_MAX];
	size_t key_len;
	struct buf val;		/* encoded record (puts only) */
	char id[SPOOL_ID_SIZE];	/* QOP_REMOVE_MSG: the file to unlink after commit */
};

/* ---- record codecs ---- */

static void
qstore_header(struct buf *out, const char magic[4])
{
	unsigned char v[2] = { QSTORE_VERSION >> 8, QSTORE_VERSION & 0xff };

	(void)buf_append(out, magic, 4);
	(void)buf_append(out, v, sizeof(v));
}

/* Check magic and version; set rd to the fields. */
static int
qstore_open_record(const void *p, size_t len, const char magic[4], struct tlv_reader *rd,
    char *err, size_t errsz)
{
	const unsigned char *b = p;

	if (len < QSTORE_HEADER_LEN || memcmp(b, magic, 4) != 0) {
		snprintf(err, errsz, "not a %.4s record", magic);
		return -1;
	}
	if ((b[4] << 8 | b[5]) != QSTORE_VERSION) {
		snprintf(err, errsz, "%.4s record version %d is not %d", magic, b[4] << 8 | b[5],
		    QSTORE_VERSION);
		return -1;
	}
	tlv_reader_init(rd, b + QSTORE_HEADER_LEN, len - QSTORE_HEADER_LEN);
	return 0;
}

void
qstore_rcpt_init(struct qstore_rcpt *r)
{
	memset(r, 0, sizeof(*r));
	r->state = QSTORE_PENDING;
}

enum buf_result
qstore_rcpt_encode(const struct qstore_rcpt *r, struct buf *out)
{
	size_t start = buf_len(out);
	enum buf_result res;

	qstore_header(out, qstore_magic_rcpt);
	res = tlv_put_u8(out, QR_STATE, r->state);
	if (res == BUF_OK) res = tlv_put_u32(out, QR_ATTEMPTS, r->attempts);
	if (res == BUF_OK) res = tlv_put_u64(out, QR_FIRST_FAILURE, (uint64_t)r->first_failure);
	if (res == BUF_OK) res = tlv_put_u64(out, QR_LAST_ATTEMPT, (uint64_t)r->last_attempt);
	if (res == BUF_OK) res = tlv_put_u64(out, QR_NEXT_ATTEMPT, (uint64_t)r->next_attempt);
	if (res == BUF_OK) res = tlv_put_u32(out, QR_SMTP_CODE, (uint32_t)r->smtp_code);
	if (res == BUF_OK) res = tlv_put_str(out, QR_CLASS, r->err_class);
	if (res == BUF_OK) res = tlv_put_str(out, QR_ENH, r->enh);
	if (res == BUF_OK) res = tlv_put_str(out, QR_TEXT, r->text);
	if (res == BUF_OK) res = tlv_put_str(out, QR_RELAY, r->relay);
	if (res != BUF_OK)
		buf_truncate(out, start);
	return res;
}

/* One recipient field into r; -1 when malformed. Unknown tags: 0. */
static int
qstore_rcpt_field(const struct tlv_field *f, struct qstore_rcpt *r)
{
	unsigned u8;
	uint32_t u32;
	uint64_t u64;

	switch (f->tag) {
	case QR_STATE:
		if (tlv_u8(f, &u8) < 0 || u8 > QSTORE_EXPIRED)
			return -1;
		r->state = (enum qstore_state)u8;
		return 0;
	case QR_ATTEMPTS:
		return tlv_u32(f, &r->attempts);
	case QR_FIRST_FAILURE:
	case QR_LAST_ATTEMPT:
	case QR_NEXT_ATTEMPT:
		if (tlv_u64(f, &u64) < 0)
			return -1;
		*(f->tag == QR_FIRST_FAILURE ? &r->first_failure :
		  f->tag == QR_LAST_ATTEMPT ? &r->last_attempt : &r->next_attempt) = (int64_t)u64;
		return 0;
	case QR_SMTP_CODE:
		if (tlv_u32(f, &u32) < 0 || u32 > 999)
			return -1;
		r->smtp_code = (int)u32;
		return 0;
	case QR_CLASS:
		return tlv_str(f, r->err_class, sizeof(r->err_class));
	case QR_ENH:
		return tlv_str(f, r->enh, sizeof(r->enh));
	case QR_TEXT:
		return tlv_str(f, r->text, sizeof(r->text));
	case QR_RELAY:
		return tlv_str(f, r->relay, sizeof(r->relay));
	default:
		return 0;	/* a later version's field */
	}
}

int
qstore_rcpt_decode(const void *p, size_t len, struct qstore_rcpt *r, char *err, size_t errsz)
{
	struct tlv_reader rd;
	struct tlv_field f;

	qstore_rcpt_init(r);
	if (qstore_open_record(p, len, qstore_magic_rcpt, &rd, err, errsz) < 0)
		return -1;
	while (!tlv_done(&rd)) {
		if (tlv_next(&rd, &f) < 0 || qstore_rcpt_field(&f, r) < 0) {
			snprintf(err, errsz, "recipient record: malformed field");
			qstore_rcpt_init(r);
			return -1;
		}
	}
	return 0;
}

enum buf_result
qstore_msg_encode(const struct qstore_msg *m, struct buf *out)
{
	size_t start = buf_len(out);
	enum buf_result res;

	qstore_header(out, qstore_magic_msg);
	res = tlv_put_u8(out, QM_HELD, m->held);
	if (res == BUF_OK) res = tlv_put_u8(out, QM_WARNED, m->warned);
	if (res == BUF_OK) res = tlv_put_u64(out, QM_FIRST_SEEN, (uint64_t)m->first_seen);
	if (res != BUF_OK)
		buf_truncate(out, start);
	return res;
}

int
qstore_msg_decode(const void *p, size_t len, struct qstore_msg *m, char *err, size_t errsz)
{
	struct tlv_reader rd;
	struct tlv_field f;
	unsigned u8;
	uint64_t u64;
	int bad = 0;

	memset(m, 0, sizeof(*m));
	if (qstore_open_record(p, len, qstore_magic_msg, &rd, err, errsz) < 0)
		return -1;
	while (!bad && !tlv_done(&rd)) {
		if (tlv_next(&rd, &f) < 0) {
			bad = 1;
		} else if (f.tag == QM_HELD || f.tag == QM_WARNED) {
			bad = tlv_u8(&f, &u8) < 0 || u8 > 1;
			*(f.tag == QM_HELD ? &m->held : &m->warned) = u8 == 1;
		} else if (f.tag == QM_FIRST_SEEN) {
			bad = tlv_u64(&f, &u64) < 0;
			m->first_seen = (int64_t)u64;
		}
	}
	if (bad) {
		snprintf(err, errsz, "message record: bad field");
		memset(m, 0, sizeof(*m));
		return -1;
	}
	return 0;
}

enum buf_result
qstore_retry_encode(const struct retry_record *rec, struct buf *out)
{
	size_t start = buf_len(out);
	enum buf_result res;

	qstore_header(out, qstore_magic_retry);
	res = tlv_put_u64(out, QT_FIRST_FAILED, (uint64_t)rec->first_failed);
	if (res == BUF_OK) res = tlv_put_u64(out, QT_LAST_TRY, (uint64_t)rec->last_try);
	if (res == BUF_OK) res = tlv_put_u64(out, QT_NEXT_TRY, (uint64_t)rec->next_try);
	if (res == BUF_OK) res = tlv_put_u8(out, QT_EXPIRED, rec->expired);
	if (res != BUF_OK)
		buf_truncate(out, start);
	return res;
}

int
qstore_retry_decode(const void *p, size_t len, struct retry_record *rec, char *err, size_t errsz)
{
	struct tlv_reader rd;
	struct tlv_field f;
	unsigned u8;
	uint64_t u64;
	int bad = 0;

	memset(rec, 0, sizeof(*rec));
	if (qstore_open_record(p, len, qstore_magic_retry, &rd, err, errsz) < 0)
		return -1;
	while (!bad && !tlv_done(&rd)) {
		if (tlv_next(&rd, &f) < 0) {
			bad = 1;
		} else if (f.tag == QT_EXPIRED) {
			bad = tlv_u8(&f, &u8) < 0 || u8 > 1;
			rec->expired = u8 == 1;
		} else if (f.tag >= QT_FIRST_FAILED && f.tag <= QT_NEXT_TRY) {
			bad = tlv_u64(&f, &u64) < 0;
			*(f.tag == QT_FIRST_FAILED ? &rec->first_failed :
			  f.tag == QT_LAST_TRY ? &rec->last_try : &rec->next_try) = (int64_t)u64;
		}
	}
	if (bad) {
		snprintf(err, errsz, "retry record: bad field");
		memset(rec, 0, sizeof(*rec));
		return -1;
	}
	return 0;
}

/* ---- the databases ---- */

static int
qstore_open_dbis(MDB_txn *txn, void *arg)
{
	struct qstore *qs = arg;
	int rc;

	if ((rc = mdb_dbi_open(txn, "qrcpt", MDB_CREATE, &qs->rcpt_dbi)) != 0 ||
	    (rc = mdb_dbi_open(txn, "qmsg", MDB_CREATE, &qs->msg_dbi)) != 0 ||
	    (rc = mdb_dbi_open(txn, "qretry", MDB_CREATE, &qs->retry_dbi)) != 0)
		return rc;
	return 0;
}

struct qstore *
qstore_open(struct spool *sp, char *err, size_t errsz)
{
	struct qstore *qs;
	int rc;

	if (sp->env == NULL) {
		spool_set_err(err, errsz, "qstore needs an open spool");
		return NULL;
	}
	qs = calloc(1, sizeof(*qs));
	if (qs == NULL)
		fatal("out of memory");
	qs->sp = sp;
	if (sp->readonly) {
		/* Listing tools: open what exists; a queue qmgr never ran on
		 * has no tables, which reads as "no records". */
		MDB_txn *txn;

		if ((rc = spool_txn_begin(sp, MDB_RDONLY, &txn)) != 0) {
			spool_set_err(err, errsz, "%s/index: %s", sp->dir, mdb_strerror(rc));
			free(qs);
			return NULL;
		}
		if ((rc = mdb_dbi_open(txn, "qrcpt", 0, &qs->rcpt_dbi)) != 0 ||
		    (rc = mdb_dbi_open(txn, "qmsg", 0, &qs->msg_dbi)) != 0 ||
		    (rc = mdb_dbi_open(txn, "qretry", 0, &qs->retry_dbi)) != 0)
			qs->absent = true;
		/* Committing a read txn keeps the handles for later ones. */
		if (spool_txn_commit_read(sp, txn) != 0)
			qs->absent = true;
		return qs;
	}
	/* Handles opened in a committed txn are valid for every later one. */
	rc = spool_txn_write(sp, qstore_open_dbis, qs);
	if (rc != 0) {
		spool_set_err(err, errsz, "%s/index: qmgr databases: %s", sp->dir, mdb_strerror(rc));
		free(qs);
		return NULL;
	}
	return qs;
}

void
qstore_close(struct qstore *qs)
{
	if (qs == NULL)
		return;
	unlinker_free(qs->unlinker);
	free(qs);
}

void
qstore_unlink_wait(struct qstore *qs)
{
	if (qs->unlinker != NULL)
		unlinker_flush(qs->unlinker);
}

static void
qstore_rcpt_key(char key[QSTORE_RCPT_KEY_LEN], const char *id, uint32_t idx)
{
	memcpy(key, id, SPOOL_ID_LEN);
	key[SPOOL_ID_LEN] = (char)(idx >> 24);
	key[SPOOL_ID_LEN + 1] = (char)(idx >> 16);
	key[SPOOL_ID_LEN + 2] = (char)(idx >> 8);
	key[SPOOL_ID_LEN + 3] = (char)idx;
}

typedef int qstore_decode_fn(const void *p, size_t len, void *out, char *err, size_t errsz);

/* Look up one record and decode it inside a short read txn. */
static enum spool_result
qstore_get(struct qstore *qs, MDB_dbi dbi, const void *k, size_t klen, qstore_decode_fn *decode,
    void *out, char *err, size_t errsz)
{
	MDB_txn *txn;
	MDB_val key = { klen, (void *)k }, val;
	enum spool_result r = SPOOL_OK;
	char why[128];
	int rc;

	if (qs->absent)
		return SPOOL_NOTFOUND;

	if ((rc = spool_txn_begin(qs->sp, MDB_RDONLY, &txn)) != 0) {
		spool_set_err(err, errsz, "%s/index: %s", qs->sp->dir, mdb_strerror(rc));
		return SPOOL_ERROR;
	}
	rc = mdb_get(txn, dbi, &key, &val);
	if (rc == MDB_NOTFOUND) {
		spool_set_err(err, errsz, "no record");
		r = SPOOL_NOTFOUND;
	} else if (rc != 0) {
		spool_set_err(err, errsz, "%s", mdb_strerror(rc));
		r = SPOOL_ERROR;
	} else if (decode(val.mv_data, val.mv_size, out, why, sizeof(why)) < 0) {
		spool_set_err(err, errsz, "%s", why);
		r = SPOOL_ERROR;
	}
	spool_txn_abort(qs->sp, txn);
	return r;
}

static int
qstore_decode_rcpt(const void *p, size_t len, void *out, char *err, size_t errsz)
{
	return qstore_rcpt_decode(p, len, out, err, errsz);
}

static int
qstore_decode_msg(const void *p, size_t len, void *out, char *err, size_t errsz)
{
	return qstore_msg_decode(p, len, out, err, errsz);
}

static int
qstore_decode_retry(const void *p, size_t len, void *out, char *err, size_t errsz)
{
	return qstore_retry_decode(p, len, out, err, errsz);
}

enum spool_result
qstore_rcpt_get(struct qstore *qs, const char *id, uint32_t idx, struct qstore_rcpt *out,
    char *err, size_t errsz)
{
	char key[QSTORE_RCPT_KEY_LEN];

	if (!spool_id_cstr_valid(id))
		panic("qstore_rcpt_get: malformed queue id");
	qstore_rcpt_key(key, id, idx);
	return qstore_get(qs, qs->rcpt_dbi, key, sizeof(key), qstore_decode_rcpt, out, err, errsz);
}

enum spool_result
qstore_msg_get(struct qstore *qs, const char *id, struct qstore_msg *out, char *err, size_t errsz)
{
	if (!spool_id_cstr_valid(id))
		panic("qstore_msg_get: malformed queue id");
	return qstore_get(qs, qs->msg_dbi, id, SPOOL_ID_LEN, qstore_decode_msg, out, err, errsz);
}

enum spool_result
qstore_retry_get(struct qstore *qs, const char *key, struct retry_record *out, char *err,
    size_t errsz)
{
	size_t n = strlen(key);

	if (n == 0 || n > QSTORE_KEY_MAX)
		panic("qstore_retry_get: key of %zu bytes", n);
	return qstore_get(qs, qs->retry_dbi, key, n, qstore_decode_retry, out, err, errsz);
}

/* Visit one record of a walk: 0 go on, 1 stop, -1 error (err set). */
typedef int qstore_visit_fn(void *arg, const MDB_val *key, const MDB_val *val, char *err,
                            size_t errsz);

/* Every record of dbi in key order, inside one read-only txn. */
static enum spool_result
qstore_walk_db(struct qstore *qs, MDB_dbi dbi, const char *name, qstore_visit_fn *visit,
               void *arg, char *err, size_t errsz)
{
	MDB_cursor *cur;
	MDB_txn *txn = NULL;
	MDB_val key, val;
	enum spool_result res = SPOOL_OK;
	int rc, v;

	if (qs->absent)
		return SPOOL_OK;
	if ((rc = spool_txn_begin(qs->sp, MDB_RDONLY, &txn)) != 0 ||
	    (rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
		if (rc != 0 && txn != NULL)
			spool_txn_abort(qs->sp, txn);
		spool_set_err(err, errsz, "%s/index: %s", qs->sp->dir, mdb_strerror(rc));
		return SPOOL_ERROR;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		v = visit(arg, &key, &val, err, errsz);
		if (v < 0)
			res = SPOOL_ERROR;
		if (v != 0)
			break;
	}
	if (res == SPOOL_OK && rc != 0 && rc != MDB_NOTFOUND) {
		spool_set_err(err, errsz, "%s: %s", name, mdb_strerror(rc));
		res = SPOOL_ERROR;
	}
	mdb_cursor_close(cur);
	spool_txn_abort(qs->sp, txn);
	return res;
}

/* The queue id at the front of a key, checked; -1 when malformed. */
static int
qstore_key_id(const MDB_val *key, size_t want_len, char id[SPOOL_ID_SIZE])
{
	if (key->mv_size != want_len)
		return -1;
	memcpy(id, key->mv_data, SPOOL_ID_LEN);
	id[SPOOL_ID_LEN] = '\0';
	return spool_id_cstr_valid(id) ? 0 : -1;
}

struct qstore_rcpt_walk {
	qstore_rcpt_walk_cb *fn;
	void *arg;
};

static int
qstore_visit_rcpt(void *arg, const MDB_val *key, const MDB_val *val, char *err, size_t errsz)
{
	struct qstore_rcpt_walk *w = arg;
	const unsigned char *k = key->mv_data;
	struct qstore_rcpt r;
	char id[SPOOL_ID_SIZE], why[128];
	uint32_t idx;

	if (qstore_key_id(key, QSTORE_RCPT_KEY_LEN, id) < 0) {
		spool_set_err(err, errsz, "qrcpt: malformed key of %zu bytes", key->mv_size);
		return -1;
	}
	idx = (uint32_t)k[SPOOL_ID_LEN] << 24 | (uint32_t)k[SPOOL_ID_LEN + 1] << 16 |
	    (uint32_t)k[SPOOL_ID_LEN + 2] << 8 | k[SPOOL_ID_LEN + 3];
	if (qstore_rcpt_decode(val->mv_data, val->mv_size, &r, why, sizeof(why)) < 0) {
		spool_set_err(err, errsz, "%s recipient %u: %s", id, idx, why);
		return -1;
	}
	return w->fn(w->arg, id, idx, &r) != 0;
}

enum spool_result
qstore_walk_rcpts(struct qstore *qs, qstore_rcpt_walk_cb *fn, void *arg, char *err, size_t errsz)
{
	struct qstore_rcpt_walk w = { fn, arg };

	return qstore_walk_db(qs, qs->rcpt_dbi, "qrcpt", qstore_visit_rcpt, &w, err, errsz);
}

struct qstore_msg_walk {
	qstore_msg_walk_cb *fn;
	void *arg;
};

static int
qstore_visit_msg(void *arg, const MDB_val *key, const MDB_val *val, char *err, size_t errsz)
{
	struct qstore_msg_walk *w = arg;
	struct qstore_msg m;
	char id[SPOOL_ID_SIZE], why[128];

	if (qstore_key_id(key, SPOOL_ID_LEN, id) < 0) {
		spool_set_err(err, errsz, "qmsg: malformed key of %zu bytes", key->mv_size);
		return -1;
	}
	if (qstore_msg_decode(val->mv_data, val->mv_size, &m, why, sizeof(why)) < 0) {
		spool_set_err(err, errsz, "%s flags: %s", id, why);
		return -1;
	}
	return w->fn(w->arg, id, &m) != 0;
}

enum spool_result
qstore_walk_msgs(struct qstore *qs, qstore_msg_walk_cb *fn, void *arg, char *err, size_t errsz)
{
	struct qstore_msg_walk w = { fn, arg };

	return qstore_walk_db(qs, qs->msg_dbi, "qmsg", qstore_visit_msg, &w, err, errsz);
}

/* ---- batches ---- */

void
qstore_batch_init(struct qstore_batch *b)
{
	memset(b, 0, sizeof(*b));
}

void
qstore_batch_free(struct qstore_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		buf_free(&b->ops[i].val);
	free(b->ops);
	qstore_batch_init(b);
}

static struct qstore_op *
qstore_batch_add(struct qstore_batch *b, enum qstore_op_kind kind, const void *key, size_t klen)
{
	struct qstore_op *op;
	size_t ncap;

	if (klen == 0 || klen > QSTORE_KEY_MAX)
		panic("qstore batch: key of %zu bytes", klen);
	if (b->n == b->cap) {
		ncap = b->cap ? b->cap * 2 : 16;
		op = realloc(b->ops, ncap * sizeof(*op));
		if (op == NULL)
			fatal("out of memory (qstore batch)");
		b->ops = op;
		b->cap = ncap;
	}
	op = &b->ops[b->n++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	memcpy(op->key, key, klen);
	op->key_len = klen;
	buf_init(&op->val, ENVELOPE_RECORD_MAX);
	return op;
}

void
qstore_batch_put_rcpt(struct qstore_batch *b, const char *id, uint32_t idx,
    const struct qstore_rcpt *r)
{
	char key[QSTORE_RCPT_KEY_LEN];
	struct qstore_op *op;

	if (!spool_id_cstr_valid(id))
		panic("qstore batch: malformed queue id");
	qstore_rcpt_key(key, id, idx);
	op = qstore_batch_add(b, QOP_PUT_RCPT, key, sizeof(key));
	if (qstore_rcpt_encode(r, &op->val) != BUF_OK)
		panic("qstore: recipient record too large");
}

void
qstore_batch_put_msg(struct qstore_batch *b, const char *id, const struct qstore_msg *m)
{
	struct qstore_op *op;

	if (!spool_id_cstr_valid(id))
		panic("qstore batch: malformed queue id");
	op = qstore_batch_add(b, QOP_PUT_MSG, id, SPOOL_ID_LEN);
	if (qstore_msg_encode(m, &op->val) != BUF_OK)
		panic("qstore: message record too large");
}

void
qstore_batch_put_retry(struct qstore_batch *b, const char *key, const struct retry_record *rec)
{
	struct qstore_op *op = qstore_batch_add(b, QOP_PUT_RETRY, key, strlen(key));

	if (qstore_retry_encode(rec, &op->val) != BUF_OK)
		panic("qstore: retry record too large");
}

void
qstore_batch_del_retry(struct qstore_batch *b, const char *key)
{
	(void)qstore_batch_add(b, QOP_DEL_RETRY, key, strlen(key));
}

void
qstore_batch_remove_message(struct qstore_batch *b, const char *id)
{
	struct qstore_op *op;

	if (!spool_id_cstr_valid(id))
		panic("qstore batch: malformed queue id");
	op = qstore_batch_add(b, QOP_REMOVE_MSG, id, SPOOL_ID_LEN);
	memcpy(op->id, id, SPOOL_ID_SIZE);
}

/* Delete every qrcpt record of one message (keys start with its id). */
static int
qstore_del_rcpts(struct qstore *qs, MDB_txn *txn, const char *id)
{
	MDB_cursor *cur;
	MDB_val key = { SPOOL_ID_LEN, (void *)id }, val;
	int rc;

	if ((rc = mdb_cursor_open(txn, qs->rcpt_dbi, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	     rc == 0 && key.mv_size >= SPOOL_ID_LEN && memcmp(key.mv_data, id, SPOOL_ID_LEN) == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

static int
qstore_del(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen)
{
	MDB_val key = { klen, (void *)k };
	int rc = mdb_del(txn, dbi, &key, NULL);

	return rc == MDB_NOTFOUND ? 0 : rc;
}

struct qstore_commit {
	struct qstore *qs;
	const struct qstore_batch *b;
};

static int
qstore_batch_fill(MDB_txn *txn, void *arg)
{
	struct qstore_commit *c = arg;
	struct qstore *qs = c->qs;
	const struct qstore_op *op;
	MDB_val key, val;
	MDB_dbi dbi;
	size_t i;
	int rc = 0;

	for (i = 0; i < c->b->n && rc == 0; i++) {
		op = &c->b->ops[i];
		key.mv_size = op->key_len;
		key.mv_data = (void *)op->key;
		switch (op->kind) {
		case QOP_PUT_RCPT:
		case QOP_PUT_MSG:
		case QOP_PUT_RETRY:
			dbi = op->kind == QOP_PUT_RCPT ? qs->rcpt_dbi :
			    op->kind == QOP_PUT_MSG ? qs->msg_dbi : qs->retry_dbi;
			val.mv_size = buf_len(&op->val);
			val.mv_data = (void *)buf_data(&op->val);
			rc = mdb_put(txn, dbi, &key, &val, 0);
			break;
		case QOP_DEL_RETRY:
			rc = qstore_del(txn, qs->retry_dbi, op->key, op->key_len);
			break;
		case QOP_REMOVE_MSG:
			rc = qstore_del(txn, qs->sp->dbi, op->id, SPOOL_ID_LEN);
			if (rc == 0)
				rc = qstore_del(txn, qs->msg_dbi, op->id, SPOOL_ID_LEN);
			if (rc == 0)
				rc = qstore_del_rcpts(qs, txn, op->id);
			break;
		}
	}
	return rc;
}

enum spool_result
qstore_batch_commit(struct qstore *qs, const struct qstore_batch *b, char *err, size_t errsz)
{
	struct qstore_commit c = { qs, b };
	size_t i;
	int rc;

	if (b->n == 0)
		return SPOOL_OK;
	rc = spool_txn_write(qs->sp, qstore_batch_fill, &c);
	if (rc != 0) {
		spool_set_err(err, errsz, "qmgr state commit: %s", mdb_strerror(rc));
		return spool_mdb_result(rc);
	}
	/* The envelopes are gone for good: now the files may go too, on
	 * the unlinker's thread (a crash before leaves orphans that spool
	 * recovery removes). */
	for (i = 0; i < b->n; i++) {
		if (b->ops[i].kind != QOP_REMOVE_MSG)
			continue;
		if (qs->unlinker == NULL)
			qs->unlinker = unlinker_new(qs->sp->msg_dirfd);
		unlinker_add(qs->unlinker, b->ops[i].id);
	}
	return SPOOL_OK;
}
