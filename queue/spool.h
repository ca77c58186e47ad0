/*
 * spool: the on-disk queue, the contract between roles.
 *
 *   queue_directory/
 *     index/    LMDB environment: envelopes (and, later, recipient states,
 *               schedule and host retry records owned by qmgr)
 *     msg/      one file per message, named by queue id: the Received
 *               header we add, then the client's data byte for byte
 *     public/   local submission socket (sendmail)
 *     private/  control socket (ternctl)
 *
 * A message is accepted when, and only when, its file is on disk (fsync of
 * the file and of msg/) and its envelope is committed in LMDB, in that
 * order. Many messages finishing together share one LMDB commit (group
 * commit): file syncs run in parallel on worker threads, one committer
 * thread batches every ready envelope into one write transaction, and the
 * results come back to the owner's event loop through an eventfd.
 *
 * One struct spool per process, opened after fork/exec (an LMDB env must
 * not cross a fork). Errors are returned with a short reason; nothing here
 * logs except the recovery report. Out of memory is fatal().
 */
#ifndef TERN_SPOOL_H
#define TERN_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue/envelope.h"

/* Queue ids: 14 upper-case hex digits (microseconds since the epoch, made
 * unique within the spool by O_EXCL creation), sortable by arrival. */
#define SPOOL_ID_LEN 14
#define SPOOL_ID_SIZE (SPOOL_ID_LEN + 1)

struct spool;
struct spool_msg;

enum spool_result {
	SPOOL_OK = 0,
	SPOOL_NOSPACE = -1,	/* disk or LMDB map cannot grow: 452 4.3.1 */
	SPOOL_ERROR = -2,	/* any other trouble of ours: 451 4.3.0 */
	SPOOL_NOTFOUND = -3,	/* no such queue id */
};

struct spool_options {
	unsigned fsync_threads;	/* spool_fsync_threads; 0 = synchronous only */
	uint64_t map_size;	/* initial LMDB map size in bytes */
	bool readonly;		/* listing tools: no writer threads, read-only txns */
};

/*
 * Create the spool's directories (as root, in the master) owned by uid/gid
 * with safe modes; existing ones get their ownership fixed. 0, or -1 with
 * a reason in err.
 */
int spool_prepare(const char *queue_directory, uid_t uid, gid_t gid, char *err, size_t errsz);

/* Open (after fork/exec, as mail_owner). Runs mdb_reader_check(). */
struct spool *spool_open(const char *queue_directory, const struct spool_options *opt,
                         char *err, size_t errsz);
/* Wait for pending commits (their callbacks are not called), stop threads, close. */
void spool_close(struct spool *sp);

/* ---- writing a new message (smtpd, pickup, bounces) ---- */

/* Create msg/ID with O_EXCL and a fresh id. NULL with err on failure. */
struct spool_msg *spool_msg_create(struct spool *sp, char *err, size_t errsz);
const char *spool_msg_id(const struct spool_msg *m);
/*
 * Append content (buffered). Errors are sticky: after a failure every call
 * returns the same result, so a session can keep reading to the end of
 * DATA and answer once. SPOOL_NOSPACE for ENOSPC/EDQUOT.
 */
enum spool_result spool_msg_write(struct spool_msg *m, const void *p, size_t n);
/* Bytes written so far. */
uint64_t spool_msg_size(const struct spool_msg *m);
/*
 * Read back what was written (a before-queue filter reads the message):
 * flush, then open msg/ID read-only. The caller owns and closes the fd.
 * -1 with err on failure.
 */
int spool_msg_open_read(struct spool_msg *m, char *err, size_t errsz);
/*
 * Rewrite the content (a filter's edits): after begin, writes go to a new
 * file msg/ID.edit and spool_msg_size() counts from 0; end renames it over
 * msg/ID (made durable by the commit's fsync of the file and of msg/).
 * Keep a read fd from spool_msg_open_read() to copy from the old content.
 * Errors are sticky as for spool_msg_write(); an abort removes both files,
 * and recovery removes a left-over ID.edit.
 */
enum spool_result spool_msg_rewrite_begin(struct spool_msg *m);
enum spool_result spool_msg_rewrite_end(struct spool_msg *m);
/* Give up: unlink the file and free m. */
void spool_msg_abort(struct spool_msg *m);

/*
 * Result callback of spool_msg_commit(), called on the owner's thread from
 * spool_commit_dispatch(). id stays valid during the call.
 */
typedef void spool_commit_cb(void *arg, const char *id, enum spool_result r);

/*
 * Make the message durable and commit env (copied) under m's id: flush,
 * fsync on a worker thread, then a group commit. Takes ownership of m in
 * every case. The callback runs exactly once, from spool_commit_dispatch(),
 * with SPOOL_OK only when file and envelope are both durable; on failure the
 * file is removed. With fsync_threads == 0 the work is done before return
 * (the callback still runs from dispatch).
 */
void spool_msg_commit(struct spool *sp, struct spool_msg *m, const struct envelope *env,
                      spool_commit_cb *cb, void *arg);
/* Same, synchronously, for tools and tests: the result. Takes ownership of m. */
enum spool_result spool_msg_commit_sync(struct spool *sp, struct spool_msg *m,
                                        const struct envelope *env, char *err, size_t errsz);

/* An fd that becomes readable when results wait; watch it with EV_READ. */
int spool_commit_fd(const struct spool *sp);
/* Run the callbacks of finished commits; returns how many ran. */
size_t spool_commit_dispatch(struct spool *sp);
/* Commits handed over and not yet dispatched. */
size_t spool_commit_pending(const struct spool *sp);

/* ---- reading ---- */

/* Load the envelope of id into env (caller frees with envelope_free). */
enum spool_result spool_envelope_get(struct spool *sp, const char *id, struct envelope *env,
                                     char *err, size_t errsz);
/* Call fn for each committed envelope in id order; stop when fn returns non-zero. */
typedef int spool_walk_cb(void *arg, const char *id, const struct envelope *env);
enum spool_result spool_walk(struct spool *sp, spool_walk_cb *fn, void *arg, char *err, size_t errsz);
/* The same with ids only, nothing decoded (a periodic scan of a big queue). */
typedef int spool_walk_ids_cb(void *arg, const char *id);
enum spool_result spool_walk_ids(struct spool *sp, spool_walk_ids_cb *fn, void *arg, char *err,
                                 size_t errsz);
/*
 * Drop the index's mapped pages from this process's resident set after a
 * walk of the whole index (qmgr's start-up and scans). They stay in the
 * page cache and come back on the next access; the map is read-only
 * (no MDB_WRITEMAP), so nothing is lost. Without this a walk of 100,000
 * envelopes leaves ~50 MB of file pages counted in qmgr's RSS.
 */
void spool_index_drop_pages(struct spool *sp);
/* Path of a message file into dst; -1 when it does not fit. */
int spool_msg_path(const struct spool *sp, const char *id, char *dst, size_t dstsz);
/* Remove a message: envelope first (one txn), then its file. */
enum spool_result spool_remove(struct spool *sp, const char *id, char *err, size_t errsz);

/* ---- start-up recovery ---- */

struct spool_recover_stats {
	unsigned envelopes;	/* committed envelopes found */
	unsigned orphan_files;	/* files without an envelope: removed */
	unsigned missing_files;	/* envelopes without a file: logged as errors */
};

/*
 * At start, before any role writes: remove message files that have no
 * committed envelope (their client never got 250) and log an error for
 * every envelope without its file. Logs one summary line.
 */
enum spool_result spool_recover(struct spool *sp, struct spool_recover_stats *st,
                                char *err, size_t errsz);

#endif
