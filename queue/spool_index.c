/*
 * spool_index: the LMDB side of the spool. Opening the environment, the
 * txn gate that lets several threads use it while the map may be resized,
 * map growth, and the reads and removals of envelopes.
 *
 * Error policy: LMDB errors are returned (as their code to the rest of
 * the spool, as an enum spool_result with a short reason to callers of
 * spool.h). MDB_PANIC, and a map that cannot be remapped after it was
 * unmapped, leave the environment unusable: those are fatal().
 *
 * Ownership: LMDB memory never leaves a txn; records are decoded (copied)
 * inside it. Envelopes handed to spool_walk() callbacks are borrowed for
 * the call.
 */
#include "queue/spool.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/log.h"
#include "queue/spool_impl.h"

#define SPOOL_ENVELOPE_DB "envelope"

/* ---- the txn gate and map growth ---- */

static void
spool_gate_enter(struct spool *sp)
{
	pthread_mutex_lock(&sp->gate_mu);
	sp->gate_active++;
	pthread_mutex_unlock(&sp->gate_mu);
}

static void
spool_gate_leave(struct spool *sp)
{
	pthread_mutex_lock(&sp->gate_mu);
	if (--sp->gate_active == 0)
		pthread_cond_broadcast(&sp->gate_cond);
	pthread_mutex_unlock(&sp->gate_mu);
}

/*
 * Remap at size (0: adopt the size another process persisted), when no
 * txn of ours is active. If seen is non-zero, skip when the map already
 * grew past seen since the caller looked (another thread grew it).
 * mdb_env_set_mapsize() unmaps before it maps again, so a failure leaves
 * the env without a map: that is fatal. To fail softly when the address
 * space is short, the new size is probed with an anonymous reservation
 * first, which returns ENOMEM (SPOOL_NOSPACE) instead.
 */
static int
spool_gate_resize(struct spool *sp, size_t size, size_t seen)
{
	MDB_envinfo info;
	void *probe;
	int rc = 0;

	pthread_mutex_lock(&sp->gate_mu);
	while (sp->gate_active > 0)
		pthread_cond_wait(&sp->gate_cond, &sp->gate_mu);
	mdb_env_info(sp->env, &info);
	if (seen != 0 && info.me_mapsize > seen)
		goto out;
	if (size != 0) {
		probe = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (probe == MAP_FAILED) {
			rc = errno;
			goto out;
		}
		munmap(probe, size);
	}
	rc = mdb_env_set_mapsize(sp->env, size);
	if (rc != 0)
		fatal("spool: cannot map %s/index at %zu bytes: %s", sp->dir, size, mdb_strerror(rc));
out:
	pthread_mutex_unlock(&sp->gate_mu);
	return rc;
}

int
spool_txn_begin(struct spool *sp, unsigned flags, MDB_txn **txn)
{
	int rc, tries;

	for (tries = 0;; tries++) {
		spool_gate_enter(sp);
		rc = mdb_txn_begin(sp->env, NULL, flags, txn);
		if (rc == 0)
			return 0;
		spool_gate_leave(sp);
		if (rc == MDB_PANIC)
			fatal("spool: %s/index: %s", sp->dir, mdb_strerror(rc));
		/* Another process grew the map past ours: adopt its size. */
		if (rc != MDB_MAP_RESIZED || tries >= SPOOL_RESIZE_TRIES)
			return rc;
		rc = spool_gate_resize(sp, 0, 0);
		if (rc != 0)
			return rc;
	}
}

int
spool_txn_commit_read(struct spool *sp, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);

	spool_gate_leave(sp);
	return rc;
}

void
spool_txn_abort(struct spool *sp, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	spool_gate_leave(sp);
}

int
spool_txn_write(struct spool *sp, spool_txn_fill *fill, void *arg)
{
	MDB_envinfo info;
	MDB_txn *txn;
	size_t seen;
	int rc, grows;

	for (grows = 0;; grows++) {
		rc = spool_txn_begin(sp, 0, &txn);
		if (rc != 0)
			return rc;
		mdb_env_info(sp->env, &info);	/* stable while our txn is open */
		seen = info.me_mapsize;
		rc = fill(txn, arg);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		spool_gate_leave(sp);
		if (rc == MDB_PANIC)
			fatal("spool: %s/index: %s", sp->dir, mdb_strerror(rc));
		if (rc != MDB_MAP_FULL)
			return rc;
		/* Double the map and run the whole txn again. */
		if (grows >= SPOOL_GROW_TRIES || seen > SIZE_MAX / 2)
			return MDB_MAP_FULL;
		if (spool_gate_resize(sp, seen * 2, seen) != 0)
			return MDB_MAP_FULL;
	}
}
/* Open the "envelope" DB; a read-only spool without it is an empty queue. */
static int
spool_open_dbi(struct spool *sp, char *err, size_t errsz)
{
	MDB_txn *txn;
	int rc;

	rc = mdb_txn_begin(sp->env, NULL, sp->readonly ? MDB_RDONLY : 0, &txn);
	if (rc != 0) {
		spool_set_err(err, errsz, "%s/index: %s", sp->dir, mdb_strerror(rc));
		return -1;
	}
	rc = mdb_dbi_open(txn, SPOOL_ENVELOPE_DB, sp->readonly ? 0 : MDB_CREATE, &sp->dbi);
	if (rc == MDB_NOTFOUND && sp->readonly) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);	/* publishes the handle to every txn */
	else
		mdb_txn_abort(txn);
	if (rc != 0) {
		spool_set_err(err, errsz, "%s/index: " SPOOL_ENVELOPE_DB " database: %s", sp->dir,
		              mdb_strerror(rc));
		return -1;
	}
	sp->have_dbi = true;
	return 0;
}

int
spool_index_open(struct spool *sp, const struct spool_options *opt, char *err, size_t errsz)
{
	char path[SPOOL_DIR_MAX + 32];
	MDB_envinfo info;
	bool fresh;
	int rc, dead;

	snprintf(path, sizeof(path), "%s/index/data.mdb", sp->dir);
	fresh = access(path, F_OK) < 0 && errno == ENOENT;
	snprintf(path, sizeof(path), "%s/index", sp->dir);
	/* Listing a spool no role has opened yet: an empty queue, no env. */
	if (fresh && sp->readonly)
		return 0;
	if ((rc = mdb_env_create(&sp->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(sp->env, SPOOL_MAX_DBS)) != 0)
		goto fail;
	/* A new env starts at the configured size; an old one keeps the size
	 * it grew to (only raised to the configured one below). */
	if (fresh && !sp->readonly &&
	    (rc = mdb_env_set_mapsize(sp->env, opt->map_size ? opt->map_size :
	                              SPOOL_MAP_SIZE_DEFAULT)) != 0)
		goto fail;
	/* MDB_NOTLS: read txns are not tied to a thread's TLS slot, so any
	 * thread may own one, and a thread may nest them (walk + get). */
	rc = mdb_env_open(sp->env, path, MDB_NOTLS | (sp->readonly ? MDB_RDONLY : 0), 0640);
	if (rc != 0)
		goto fail;
	/* The mail owner's group reads the queue (ternctl), and an LMDB
	 * reader writes its slot in lock.mdb: 0660 for it, whatever the
	 * umask made of the mode. Best effort: a failure only hides the
	 * queue from the group. */
	if (!sp->readonly) {
		char lock[SPOOL_DIR_MAX + 48];

		snprintf(lock, sizeof(lock), "%s/lock.mdb", path);
		(void)chmod(lock, 0660);
	}
	/* Free reader slots that a crashed role left behind. */
	(void)mdb_reader_check(sp->env, &dead);
	mdb_env_info(sp->env, &info);
	if (!sp->readonly && opt->map_size > info.me_mapsize &&
	    (rc = mdb_env_set_mapsize(sp->env, opt->map_size)) != 0)
		goto fail;
	return spool_open_dbi(sp, err, errsz);
fail:
	spool_set_err(err, errsz, "%s: %s", path, mdb_strerror(rc));
	return -1;
}
/* ---- reading ---- */

static enum spool_result
spool_decode(const char *id, const MDB_val *val, struct envelope *env, char *err, size_t errsz)
{
	char why[128];

	if (envelope_decode(val->mv_data, val->mv_size, env, why, sizeof(why)) < 0) {
		spool_set_err(err, errsz, "%s: %s", id, why);
		return SPOOL_ERROR;
	}
	return SPOOL_OK;
}

enum spool_result
spool_envelope_get(struct spool *sp, const char *id, struct envelope *env, char *err,
                   size_t errsz)
{
	MDB_txn *txn;
	MDB_val key, val;
	enum spool_result r;
	int rc;

	if (!spool_id_cstr_valid(id)) {
		spool_set_err(err, errsz, "malformed queue id");
		return SPOOL_NOTFOUND;
	}
	if (!sp->have_dbi) {
		spool_set_err(err, errsz, "%s: not in the queue", id);
		return SPOOL_NOTFOUND;
	}
	if ((rc = spool_txn_begin(sp, MDB_RDONLY, &txn)) != 0) {
		spool_set_err(err, errsz, "%s/index: %s", sp->dir, mdb_strerror(rc));
		return SPOOL_ERROR;
	}
	key.mv_size = SPOOL_ID_LEN;
	key.mv_data = (void *)id;
	rc = mdb_get(txn, sp->dbi, &key, &val);
	if (rc == 0) {
		r = spool_decode(id, &val, env, err, errsz);
	} else if (rc == MDB_NOTFOUND) {
		spool_set_err(err, errsz, "%s: not in the queue", id);
		r = SPOOL_NOTFOUND;
	} else {
		spool_set_err(err, errsz, "%s: %s", id, mdb_strerror(rc));
		r = SPOOL_ERROR;
	}
	spool_txn_abort(sp, txn);
	return r;
}

/* Visit each committed envelope's id and encoded value in id order, in
 * one read transaction. visit returns 0 to go on, 1 to stop, -1 (with
 * err set) to fail. */
typedef int index_visit_fn(void *arg, const char *id, const MDB_val *val, char *err,
                           size_t errsz);

static enum spool_result
index_walk(struct spool *sp, index_visit_fn *visit, void *arg, char *err, size_t errsz)
{
	char id[SPOOL_ID_SIZE];
	enum spool_result r = SPOOL_OK;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val key, val;
	int rc, v = 0;

	if (!sp->have_dbi)
		return SPOOL_OK;
	if ((rc = spool_txn_begin(sp, MDB_RDONLY, &txn)) != 0) {
		spool_set_err(err, errsz, "%s/index: %s", sp->dir, mdb_strerror(rc));
		return SPOOL_ERROR;
	}
	if ((rc = mdb_cursor_open(txn, sp->dbi, &cur)) != 0) {
		spool_set_err(err, errsz, "%s/index: %s", sp->dir, mdb_strerror(rc));
		spool_txn_abort(sp, txn);
		return SPOOL_ERROR;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (!spool_id_valid(key.mv_data, key.mv_size))
			continue;	/* not an envelope of ours */
		memcpy(id, key.mv_data, SPOOL_ID_LEN);
		id[SPOOL_ID_LEN] = '\0';
		if ((v = visit(arg, id, &val, err, errsz)) != 0)
			break;
	}
	if (v < 0)
		r = SPOOL_ERROR;
	else if (v == 0 && rc != MDB_NOTFOUND) {
		spool_set_err(err, errsz, "%s/index: %s", sp->dir, mdb_strerror(rc));
		r = SPOOL_ERROR;
	}
	mdb_cursor_close(cur);
	spool_txn_abort(sp, txn);
	return r;
}

struct walk_env_arg {
	spool_walk_cb *fn;
	void *arg;
	struct envelope env;
};

static int
walk_env_visit(void *arg, const char *id, const MDB_val *val, char *err, size_t errsz)
{
	struct walk_env_arg *w = arg;

	if (spool_decode(id, val, &w->env, err, errsz) != SPOOL_OK)
		return -1;
	return w->fn(w->arg, id, &w->env) != 0;
}

enum spool_result
spool_walk(struct spool *sp, spool_walk_cb *fn, void *arg, char *err, size_t errsz)
{
	struct walk_env_arg w = { .fn = fn, .arg = arg };
	enum spool_result r;

	envelope_init(&w.env);
	r = index_walk(sp, walk_env_visit, &w, err, errsz);
	envelope_free(&w.env);
	return r;
}

struct walk_ids_arg {
	spool_walk_ids_cb *fn;
	void *arg;
};

static int
walk_ids_visit(void *arg, const char *id, const MDB_val *val, char *err, size_t errsz)
{
	struct walk_ids_arg *w = arg;

	(void)val;
	(void)err;
	(void)errsz;
	return w->fn(w->arg, id) != 0;
}

enum spool_result
spool_walk_ids(struct spool *sp, spool_walk_ids_cb *fn, void *arg, char *err, size_t errsz)
{
	struct walk_ids_arg w = { .fn = fn, .arg = arg };

	return index_walk(sp, walk_ids_visit, &w, err, errsz);
}

/*
 * LMDB does not tell where its map is (MDB_envinfo.me_mapaddr is only the
 * MDB_FIXEDMAP address), so the map is found in /proc/self/maps by the
 * data file's device and inode: the shared mapping of that file.
 */
void
spool_index_drop_pages(struct spool *sp)
{
	struct stat st;
	char line[512];
	FILE *maps;
	int fd;

	if (sp->env == NULL || mdb_env_get_fd(sp->env, &fd) != 0 || fstat(fd, &st) < 0)
		return;
	maps = fopen("/proc/self/maps", "re");
	if (maps == NULL)
		return;
	while (fgets(line, sizeof(line), maps) != NULL) {
		unsigned long start, end, ino;
		unsigned maj, min;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s %*x %x:%x %lu", &start, &end, perms, &maj, &min,
		           &ino) != 6)
			continue;
		if (ino != (unsigned long)st.st_ino || maj != major(st.st_dev) ||
		    min != minor(st.st_dev) || perms[3] != 's')
			continue;
		/* Read-only shared file pages: dropped from our resident set,
		 * still in the page cache, read back on the next access. */
		if (madvise((void *)start, end - start, MADV_DONTNEED) < 0)
			log_debug("madvise on the index map: %s", strerror(errno));
	}
	fclose(maps);
}

/* ---- removing ---- */

struct spool_remove_arg {
	struct spool *sp;
	const char *id;
};

static int
spool_remove_fill(MDB_txn *txn, void *arg)
{
	struct spool_remove_arg *a = arg;
	MDB_val key = { SPOOL_ID_LEN, (void *)a->id };

	return mdb_del(txn, a->sp->dbi, &key, NULL);
}

enum spool_result
spool_remove(struct spool *sp, const char *id, char *err, size_t errsz)
{
	struct spool_remove_arg a = { sp, id };
	int rc;

	if (!spool_id_cstr_valid(id)) {
		spool_set_err(err, errsz, "malformed queue id");
		return SPOOL_NOTFOUND;
	}
	if (sp->readonly) {
		spool_set_err(err, errsz, "spool is open read-only");
		return SPOOL_ERROR;
	}
	/* Envelope first: a crash after it leaves an orphan file, which
	 * recovery removes; the other order would leave an envelope
	 * pointing at nothing. Without an envelope the file may belong to a
	 * commit in flight, so it is left alone. */
	rc = spool_txn_write(sp, spool_remove_fill, &a);
	if (rc == MDB_NOTFOUND) {
		spool_set_err(err, errsz, "%s: not in the queue", id);
		return SPOOL_NOTFOUND;
	}
	if (rc != 0) {
		spool_set_err(err, errsz, "%s: remove envelope: %s", id, mdb_strerror(rc));
		return spool_mdb_result(rc);
	}
	if (unlinkat(sp->msg_dirfd, id, 0) < 0 && errno != ENOENT) {
		spool_set_err(err, errsz, "%s: envelope removed, but unlink msg/%s: %s", id, id,
		              strerror(errno));
		return SPOOL_ERROR;
	}
	return SPOOL_OK;
}
