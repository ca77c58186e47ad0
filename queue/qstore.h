/*
 * qstore: the queue manager's records in the spool's LMDB environment
 * (doc/qmgr.md): per-recipient delivery state ("qrcpt", key = queue id +
 * u32 big-endian recipient index), per-message flags ("qmsg", key = queue
 * id) and retry records ("qretry", key = a retry key such as
 * "T:mx.example.net:192.0.2.7" or "R:user@example.org").
 *
 * Only qmgr writes these, and it writes them in batches: one LMDB write
 * transaction for many changes (the results of many deliveries), so a
 * delivery result is durable before qmgr acts on it, at the cost of one
 * commit per batch.
 *
 * Records are tagged (common/tlv) and versioned; a damaged record decodes
 * to an error, never to a crash. Errors are returned with a short reason;
 * nothing here logs. Out of memory is fatal().
 */
#ifndef TERN_QSTORE_H
#define TERN_QSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "queue/retry.h"
#include "queue/spool.h"

/* Longest retry key (LMDB keys may be up to 511 bytes). */
#define QSTORE_KEY_MAX 480
#define QSTORE_CLASS_MAX 32	/* "timeout_connect_MX", "rcpt_452" */
#define QSTORE_ENH_MAX 16	/* "4.2.2" */
#define QSTORE_TEXT_MAX 512	/* the remote reply or our reason */
#define QSTORE_RELAY_MAX 300	/* "mx.example.net[192.0.2.7]:25" */

enum qstore_state {
	QSTORE_PENDING = 0,	/* not tried yet (also: no record at all) */
	QSTORE_DEFERRED = 1,	/* failed temporarily; next_attempt says when */
	QSTORE_DELIVERED = 2,
	QSTORE_BOUNCED = 3,	/* failed permanently; a DSN was written */
	QSTORE_EXPIRED = 4,	/* gave up (rules or lifetime); a DSN was written */
};

/* The delivery state of one recipient. Times are seconds since the epoch,
 * 0 = never. */
struct qstore_rcpt {
	enum qstore_state state;
	uint32_t attempts;
	int64_t first_failure;
	int64_t last_attempt;
	int64_t next_attempt;
	int smtp_code;				/* 0 when none */
	char err_class[QSTORE_CLASS_MAX];	/* retry error class of the last failure */
	char enh[QSTORE_ENH_MAX];
	char text[QSTORE_TEXT_MAX];
	char relay[QSTORE_RELAY_MAX];
};

/* Flags of one message. */
struct qstore_msg {
	bool held;		/* never scheduled until released */
	bool warned;		/* the delay warning was sent */
	int64_t first_seen;	/* when qmgr first took the message */
};

/* Record codecs (pure). Decoders return 0, or -1 with a reason. */
void qstore_rcpt_init(struct qstore_rcpt *r);
enum buf_result qstore_rcpt_encode(const struct qstore_rcpt *r, struct buf *out);
int qstore_rcpt_decode(const void *p, size_t len, struct qstore_rcpt *r, char *err, size_t errsz);
enum buf_result qstore_msg_encode(const struct qstore_msg *m, struct buf *out);
int qstore_msg_decode(const void *p, size_t len, struct qstore_msg *m, char *err, size_t errsz);
enum buf_result qstore_retry_encode(const struct retry_record *rec, struct buf *out);
int qstore_retry_decode(const void *p, size_t len, struct retry_record *rec, char *err,
                        size_t errsz);

struct qstore;

/* Open (creating) qmgr's databases in sp's environment. NULL with err. */
struct qstore *qstore_open(struct spool *sp, char *err, size_t errsz);
/* Waits for the files of removed messages to be unlinked; NULL is fine. */
void qstore_close(struct qstore *qs);
/* Wait until the files of every removal committed so far are unlinked
 * (they go on a thread of their own: queue/unlinker.h). For tests. */
void qstore_unlink_wait(struct qstore *qs);

/* ---- reads (short read-only transactions) ---- */

/* SPOOL_NOTFOUND when there is no record (a recipient never tried). */
enum spool_result qstore_rcpt_get(struct qstore *qs, const char *id, uint32_t idx,
                                  struct qstore_rcpt *out, char *err, size_t errsz);
enum spool_result qstore_msg_get(struct qstore *qs, const char *id, struct qstore_msg *out,
                                 char *err, size_t errsz);
enum spool_result qstore_retry_get(struct qstore *qs, const char *key, struct retry_record *out,
                                   char *err, size_t errsz);

/* Every recipient record in key order (queue id, then index); stop when
 * fn returns non-zero. r is borrowed for the call. */
typedef int qstore_rcpt_walk_cb(void *arg, const char *id, uint32_t idx,
                                const struct qstore_rcpt *r);
enum spool_result qstore_walk_rcpts(struct qstore *qs, qstore_rcpt_walk_cb *fn, void *arg,
                                    char *err, size_t errsz);

/* Every message flags record in id order; the same contract. */
typedef int qstore_msg_walk_cb(void *arg, const char *id, const struct qstore_msg *m);
enum spool_result qstore_walk_msgs(struct qstore *qs, qstore_msg_walk_cb *fn, void *arg,
                                   char *err, size_t errsz);

/* ---- writes: a batch is one transaction ---- */

struct qstore_op;

struct qstore_batch {
	struct qstore_op *ops;
	size_t n, cap;
};

void qstore_batch_init(struct qstore_batch *b);
void qstore_batch_free(struct qstore_batch *b);
void qstore_batch_put_rcpt(struct qstore_batch *b, const char *id, uint32_t idx,
                           const struct qstore_rcpt *r);
void qstore_batch_put_msg(struct qstore_batch *b, const char *id, const struct qstore_msg *m);
void qstore_batch_put_retry(struct qstore_batch *b, const char *key, const struct retry_record *rec);
void qstore_batch_del_retry(struct qstore_batch *b, const char *key);
/* The message is done: its envelope, every recipient record and its
 * flags go in the transaction; its file is unlinked after the commit (a
 * crash between them leaves a file without an envelope, which start-up
 * recovery removes). */
void qstore_batch_remove_message(struct qstore_batch *b, const char *id);

/*
 * Apply every operation in order in one write transaction and commit
 * (growing the map when full). All or nothing. SPOOL_NOSPACE when the map
 * cannot grow, SPOOL_ERROR otherwise. The batch is left as it was (free
 * or reuse it).
 */
enum spool_result qstore_batch_commit(struct qstore *qs, const struct qstore_batch *b,
                                      char *err, size_t errsz);

#endif
