/*
 * spool_impl: what spool.c, spool_commit.c and spool_recover.c share.
 * Not a public header: other modules use queue/spool.h only.
 */
#ifndef TERN_SPOOL_IMPL_H
#define TERN_SPOOL_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "common/buf.h"
#include "queue/spool.h"

/* Size of a message's write buffer: one write(2) per this many bytes. */
#define SPOOL_WRITE_BUF_SIZE (64u * 1024)

/* Longest queue_directory path we accept (the rest of PATH_MAX is ours). */
#define SPOOL_DIR_MAX 3072

/* Named databases the env may hold: ours, plus qmgr's later. */
#define SPOOL_MAX_DBS 8

/* A group commit takes at most this many messages / record bytes, which
 * keeps a write txn far below LMDB's dirty-page limit (MDB_TXN_FULL). */
#define SPOOL_BATCH_MAX 1024
#define SPOOL_BATCH_BYTES_MAX (64u * 1024 * 1024)

/* Bounded retries: MDB_MAP_RESIZED adoptions and map doublings per txn. */
#define SPOOL_RESIZE_TRIES 8
#define SPOOL_GROW_TRIES 40

/* The map size when the options give none and the env is new. */
#define SPOOL_MAP_SIZE_DEFAULT (64u * 1024 * 1024)

/* Length of the short reasons kept with a message. */
#define SPOOL_ERR_MAX 256
/* The file a rewrite writes before it replaces msg/ID (spool_msg_rewrite_begin). */
#define SPOOL_EDIT_SUFFIX ".edit"

struct spool_msg {
	struct spool *sp;
	char id[SPOOL_ID_SIZE];
	int fd;				/* msg/ID, -1 once closed */
	char *wbuf;			/* SPOOL_WRITE_BUF_SIZE bytes, allocated on first write */
	size_t wlen;			/* bytes waiting in wbuf */
	uint64_t size;			/* bytes accepted by spool_msg_write() */
	enum spool_result result;	/* sticky: the first error, or the commit's result */
	char err[SPOOL_ERR_MAX];	/* reason for result */
	bool rewriting;			/* fd is msg/ID.edit (spool_msg_rewrite_begin) */

	/* Set by spool_msg_commit(); read by the threads. */
	struct buf record;		/* the encoded envelope */
	spool_commit_cb *cb;
	void *cb_arg;
	struct spool_msg *next;		/* in a job, ready or done list */
};

/* A singly linked FIFO of messages. */
struct spool_list {
	struct spool_msg *head;
	struct spool_msg *tail;
	size_t n;
};

struct spool {
	char dir[SPOOL_DIR_MAX];	/* queue_directory */
	bool readonly;
	MDB_env *env;
	MDB_dbi dbi;			/* "envelope" */
	bool have_dbi;			/* false: read-only and no envelope DB yet */
	int msg_dirfd;			/* msg/, for openat, unlinkat and fsync */
	int event_fd;			/* eventfd: completions wait */
	size_t pending;			/* owner thread: handed over, not dispatched */

	/*
	 * The txn gate. mdb_env_set_mapsize() may run only while no txn is
	 * active in this process, and our txns run on several threads: each
	 * txn holds the gate open (gate_active), and a resize waits under
	 * gate_mu for gate_active == 0. Entering never waits for a resize
	 * that is only pending, so a thread that nests a read txn in a
	 * spool_walk() callback cannot deadlock; the resize runs with
	 * gate_mu held, which keeps every new txn out until it is done.
	 */
	pthread_mutex_t gate_mu;
	pthread_cond_t gate_cond;
	unsigned gate_active;

	/* The pipeline, under mu: jobs wait for a worker, ready for the committer. */
	pthread_mutex_t mu;
	pthread_cond_t jobs_cond;
	pthread_cond_t ready_cond;
	struct spool_list jobs;
	struct spool_list ready;
	bool stopping;			/* workers: drain jobs, then exit */
	bool workers_gone;		/* committer: drain ready, then exit */
	unsigned nworkers;
	pthread_t *workers;
	pthread_t committer;
	bool committer_started;

	/* Results waiting for spool_commit_dispatch(), under done_mu. */
	pthread_mutex_t done_mu;
	struct spool_list done;
};

/* spool.c */
void spool_list_push(struct spool_list *l, struct spool_msg *m);
struct spool_msg *spool_list_pop(struct spool_list *l);
void spool_set_err(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
enum spool_result spool_errno_result(int e);
bool spool_id_valid(const char *s, size_t len);
/* A NUL-terminated id of exactly SPOOL_ID_LEN hex digits? */
bool spool_id_cstr_valid(const char *id);
void spool_msg_free(struct spool_msg *m);
/* Write out wbuf; sticky. */
enum spool_result spool_msg_flush(struct spool_msg *m);
/* spool_index.c */
/* Open index/ and the envelope DB, sized per opt; -1 with err. */
int spool_index_open(struct spool *sp, const struct spool_options *opt, char *err, size_t errsz);
/* Begin/end a txn through the gate; MDB_MAP_RESIZED is handled inside. */
int spool_txn_begin(struct spool *sp, unsigned flags, MDB_txn **txn);
void spool_txn_abort(struct spool *sp, MDB_txn *txn);
/* Commit a read-only txn (keeps the dbi handles it opened). */
int spool_txn_commit_read(struct spool *sp, MDB_txn *txn);
/*
 * Run fill(txn, arg) in a write txn and commit, growing the map and
 * retrying on MDB_MAP_FULL (fill must be repeatable). Returns the LMDB
 * or errno value of the failure, or 0.
 */
typedef int spool_txn_fill(MDB_txn *txn, void *arg);
int spool_txn_write(struct spool *sp, spool_txn_fill *fill, void *arg);
/* The spool_result for an LMDB or errno code from spool_txn_write(). */
enum spool_result spool_mdb_result(int rc);

/* spool_commit.c */
int spool_commit_start(struct spool *sp, char *err, size_t errsz);
void spool_commit_stop(struct spool *sp);

#endif
