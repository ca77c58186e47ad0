/*
 * spool_commit: making a message durable, and the group commit.
 *
 * Owns: the worker threads (flush + fdatasync of one message file each),
 * the committer thread (one directory fsync and one LMDB write txn per
 * batch), the job, ready and done lists, and the eventfd that tells the
 * owner's event loop that results wait.
 *
 * Crash safety. The owner answers 250 from the callback, so everything
 * that makes the message recoverable must be on disk before it runs, in
 * this order:
 *
 *   1. fdatasync(msg/ID): the bytes (and the size) of the file;
 *   2. fsync(msg/): the directory entry, or the file could vanish on a
 *      crash even though its data blocks were written;
 *   3. LMDB commit of the envelope: the message now exists for qmgr;
 *   4. the callback: only now may the client hear 250.
 *
 * The envelope must not become durable before the file it names (a
 * crash between them would leave an envelope without a file: mail we
 * accepted and lost). A crash anywhere before step 3 leaves a file
 * without an envelope; its client never got 250 and will retry, and
 * spool_recover() removes the file at the next start.
 *
 * Throughput: a single fsync stream is slow, but the disk merges fsyncs
 * that are issued in parallel, so step 1 runs on fsync_threads workers.
 * Steps 2 and 3 run on one committer thread for a whole batch: every
 * message whose file became durable while the previous batch was being
 * committed goes into the next directory fsync and the next txn (group
 * commit), so their cost is shared by the whole batch.
 *
 * Error policy: a failure at any step fails the message (or the whole
 * batch, for steps 2 and 3), unlinks its file, and reports SPOOL_NOSPACE
 * or SPOOL_ERROR to the callback. Ownership: a struct spool_msg belongs to
 * exactly one list (or thread) at a time; it is freed after its callback.
 */
#include "queue/spool.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/log.h"
#include "queue/spool_impl.h"

/* Most fsync threads we start, whatever the configuration says. */
#define SPOOL_FSYNC_THREADS_MAX 256

/* Step 1, on a worker (or the owner when there are none). */
static void
spool_msg_sync_file(struct spool_msg *m)
{
	if (spool_msg_flush(m) == SPOOL_OK && fdatasync(m->fd) < 0 && m->result == SPOOL_OK) {
		m->result = spool_errno_result(errno);
		snprintf(m->err, sizeof(m->err), "fdatasync msg/%s: %s", m->id, strerror(errno));
	}
	free(m->wbuf);
	m->wbuf = NULL;
	if (close(m->fd) < 0 && m->result == SPOOL_OK) {
		m->result = spool_errno_result(errno);
		snprintf(m->err, sizeof(m->err), "close msg/%s: %s", m->id, strerror(errno));
	}
	m->fd = -1;
}

/* Fail every message of the batch that has not failed yet. */
static void
spool_batch_fail(struct spool_list *batch, enum spool_result r, const char *fmt, const char *why)
{
	struct spool_msg *m;

	for (m = batch->head; m != NULL; m = m->next) {
		if (m->result != SPOOL_OK)
			continue;
		m->result = r;
		snprintf(m->err, sizeof(m->err), fmt, why);
	}
}

/* Step 3's txn body: put every good envelope. Repeatable after MAP_FULL. */
static int
spool_batch_fill(MDB_txn *txn, void *arg)
{
	struct spool_list *batch = arg;
	struct spool_msg *m;
	MDB_val key, val;
	int rc;

	for (m = batch->head; m != NULL; m = m->next) {
		if (m->result != SPOOL_OK)
			continue;
		key.mv_size = SPOOL_ID_LEN;
		key.mv_data = m->id;
		val.mv_size = buf_len(&m->record);
		val.mv_data = buf_data_mut(&m->record);
		rc = mdb_put(txn, m->sp->dbi, &key, &val, MDB_NOOVERWRITE);
		if (rc == MDB_KEYEXIST) {
			/* An old envelope whose file is gone holds this id: keep
			 * it for the administrator, fail the new message. The txn
			 * is unharmed (nothing was written). */
			m->result = SPOOL_ERROR;
			snprintf(m->err, sizeof(m->err), "%s: queue id already in the index", m->id);
			continue;
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Steps 2 and 3 for a batch of messages whose files are synced. */
static void
spool_commit_batch(struct spool *sp, struct spool_list *batch)
{
	struct spool_msg *m;
	bool any = false;
	int rc;

	for (m = batch->head; m != NULL; m = m->next)
		any |= m->result == SPOOL_OK;
	if (any && fsync(sp->msg_dirfd) < 0)
		spool_batch_fail(batch, spool_errno_result(errno), "fsync msg/: %s", strerror(errno));
	any = false;
	for (m = batch->head; m != NULL; m = m->next)
		any |= m->result == SPOOL_OK;
	if (any && (rc = spool_txn_write(sp, spool_batch_fill, batch)) != 0)
		spool_batch_fail(batch, spool_mdb_result(rc), "envelope commit: %s", mdb_strerror(rc));
	for (m = batch->head; m != NULL; m = m->next) {
		buf_free(&m->record);
		if (m->result != SPOOL_OK)
			(void)unlinkat(sp->msg_dirfd, m->id, 0);
	}
}

/* Hand results to the owner's thread and wake its event loop. */
static void
spool_post_done(struct spool *sp, struct spool_list *batch)
{
	uint64_t one = 1;
	ssize_t w;

	if (batch->head == NULL)
		return;
	pthread_mutex_lock(&sp->done_mu);
	if (sp->done.tail)
		sp->done.tail->next = batch->head;
	else
		sp->done.head = batch->head;
	sp->done.tail = batch->tail;
	sp->done.n += batch->n;
	pthread_mutex_unlock(&sp->done_mu);
	/* EAGAIN means the counter is already huge: the loop will wake anyway. */
	do
		w = write(sp->event_fd, &one, sizeof(one));
	while (w < 0 && errno == EINTR);
	batch->head = batch->tail = NULL;
	batch->n = 0;
}

static void *
spool_worker_main(void *arg)
{
	struct spool *sp = arg;
	struct spool_msg *m;

	pthread_mutex_lock(&sp->mu);
	for (;;) {
		while (sp->jobs.head == NULL && !sp->stopping)
			pthread_cond_wait(&sp->jobs_cond, &sp->mu);
		m = spool_list_pop(&sp->jobs);
		if (m == NULL)
			break;		/* stopping, and every job is done */
		pthread_mutex_unlock(&sp->mu);
		spool_msg_sync_file(m);
		pthread_mutex_lock(&sp->mu);
		spool_list_push(&sp->ready, m);
		pthread_cond_signal(&sp->ready_cond);
	}
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

/* Take what is ready, within the batch limits; under sp->mu. */
static void
spool_batch_take(struct spool *sp, struct spool_list *batch)
{
	size_t bytes = 0;

	while (sp->ready.head != NULL && batch->n < SPOOL_BATCH_MAX) {
		if (batch->n > 0 && bytes + buf_len(&sp->ready.head->record) > SPOOL_BATCH_BYTES_MAX)
			break;
		bytes += buf_len(&sp->ready.head->record);
		spool_list_push(batch, spool_list_pop(&sp->ready));
	}
}

static void *
spool_committer_main(void *arg)
{
	struct spool *sp = arg;
	struct spool_list batch = { NULL, NULL, 0 };

	pthread_mutex_lock(&sp->mu);
	for (;;) {
		while (sp->ready.head == NULL && !sp->workers_gone)
			pthread_cond_wait(&sp->ready_cond, &sp->mu);
		if (sp->ready.head == NULL)
			break;		/* the workers are gone and nothing is left */
		spool_batch_take(sp, &batch);
		pthread_mutex_unlock(&sp->mu);
		/* Messages that get ready meanwhile wait for the next batch. */
		spool_commit_batch(sp, &batch);
		spool_post_done(sp, &batch);
		pthread_mutex_lock(&sp->mu);
	}
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

int
spool_commit_start(struct spool *sp, char *err, size_t errsz)
{
	sigset_t all, old;
	unsigned i;
	int rc;

	if (sp->nworkers == 0)
		return 0;
	if (sp->nworkers > SPOOL_FSYNC_THREADS_MAX)
		sp->nworkers = SPOOL_FSYNC_THREADS_MAX;
	sp->workers = calloc(sp->nworkers, sizeof(*sp->workers));
	if (sp->workers == NULL)
		fatal("out of memory (spool threads)");
	/* Threads inherit this mask: signals go to the owner's thread only
	 * (its event loop reads them from a signalfd). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&sp->committer, NULL, spool_committer_main, sp);
	if (rc == 0) {
		sp->committer_started = true;
		for (i = 0; i < sp->nworkers; i++) {
			rc = pthread_create(&sp->workers[i], NULL, spool_worker_main, sp);
			if (rc != 0) {
				sp->nworkers = i;
				break;
			}
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		spool_commit_stop(sp);
		spool_set_err(err, errsz, "spool threads: %s", strerror(rc));
		return -1;
	}
	return 0;
}

void
spool_commit_stop(struct spool *sp)
{
	unsigned i;

	if (!sp->committer_started)
		return;
	/* Workers finish every queued job, then the committer every batch. */
	pthread_mutex_lock(&sp->mu);
	sp->stopping = true;
	pthread_cond_broadcast(&sp->jobs_cond);
	pthread_mutex_unlock(&sp->mu);
	for (i = 0; i < sp->nworkers; i++)
		pthread_join(sp->workers[i], NULL);
	pthread_mutex_lock(&sp->mu);
	sp->workers_gone = true;
	pthread_cond_signal(&sp->ready_cond);
	pthread_mutex_unlock(&sp->mu);
	pthread_join(sp->committer, NULL);
	sp->committer_started = false;
	sp->nworkers = 0;
}

/*
 * Encode env under m's id. The record's size is the file's, whatever the
 * caller put there, and a missing arrival time becomes now.
 */
static void
spool_msg_prepare(struct spool_msg *m, const struct envelope *env)
{
	struct envelope copy = *env;	/* shallow: encoding only reads it */
	struct timespec ts;

	if (m->result != SPOOL_OK)
		return;
	copy.size = m->size;
	if (copy.arrival == 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		copy.arrival = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	}
	buf_init(&m->record, ENVELOPE_RECORD_MAX);
	if (envelope_encode(&copy, &m->record) != BUF_OK) {
		m->result = SPOOL_ERROR;
		snprintf(m->err, sizeof(m->err), "%s: envelope too large", m->id);
	}
}

/* The whole pipeline on the caller's thread. */
static void
spool_msg_commit_here(struct spool *sp, struct spool_msg *m)
{
	struct spool_list one = { NULL, NULL, 0 };

	spool_msg_sync_file(m);
	spool_list_push(&one, m);
	spool_commit_batch(sp, &one);
}

void
spool_msg_commit(struct spool *sp, struct spool_msg *m, const struct envelope *env,
                 spool_commit_cb *cb, void *arg)
{
	struct spool_list one = { NULL, NULL, 0 };

	m->cb = cb;
	m->cb_arg = arg;
	sp->pending++;
	spool_msg_prepare(m, env);
	if (m->result != SPOOL_OK || sp->nworkers == 0) {
		/* Failed already (a sticky write error), or no threads: finish
		 * here; the callback still comes from spool_commit_dispatch(). */
		spool_msg_commit_here(sp, m);
		spool_list_push(&one, m);
		spool_post_done(sp, &one);
		return;
	}
	pthread_mutex_lock(&sp->mu);
	spool_list_push(&sp->jobs, m);
	pthread_cond_signal(&sp->jobs_cond);
	pthread_mutex_unlock(&sp->mu);
}

enum spool_result
spool_msg_commit_sync(struct spool *sp, struct spool_msg *m, const struct envelope *env,
                      char *err, size_t errsz)
{
	enum spool_result r;

	spool_msg_prepare(m, env);
	spool_msg_commit_here(sp, m);
	r = m->result;
	if (r != SPOOL_OK)
		spool_set_err(err, errsz, "%s", m->err);
	spool_msg_free(m);
	return r;
}

int
spool_commit_fd(const struct spool *sp)
{
	return sp->event_fd;
}

size_t
spool_commit_dispatch(struct spool *sp)
{
	struct spool_msg *m, *next;
	uint64_t v;
	size_t n = 0;
	ssize_t got;

	/* Reset the eventfd before taking the list: a result posted after
	 * this read makes it readable again, so none is left unseen. */
	got = read(sp->event_fd, &v, sizeof(v));
	(void)got;
	pthread_mutex_lock(&sp->done_mu);
	m = sp->done.head;
	sp->done.head = sp->done.tail = NULL;
	sp->done.n = 0;
	pthread_mutex_unlock(&sp->done_mu);
	for (; m != NULL; m = next) {
		next = m->next;
		sp->pending--;
		if (m->cb)
			m->cb(m->cb_arg, m->id, m->result);
		spool_msg_free(m);
		n++;
	}
	return n;
}

size_t
spool_commit_pending(const struct spool *sp)
{
	return sp->pending;
}
