/*
 * spool: the queue directory, its LMDB index and the message files.
 *
 * Owns: the LMDB environment of index/ (one per process, opened after
 * fork/exec), the fd of msg/, and every struct spool_msg until it is
 * committed or aborted. The LMDB side (txn gate, map growth, reads,
 * removal) lives in spool_index.c, the commit pipeline (worker threads,
 * committer, completion queue) in spool_commit.c, start-up recovery in
 * spool_recover.c.
 *
 * Error policy: every failure is returned as an enum spool_result with a
 * short reason in the caller's err buffer; nothing here logs (except the
 * recovery report) and no I/O error is fatal. Out of memory is fatal(),
 * and so is MDB_PANIC or a map that cannot be remapped, after which the
 * environment is unusable and the role must restart.
 *
 * Ownership: strings in envelopes handed to callbacks are borrowed for the
 * duration of the call; envelopes filled by spool_envelope_get() belong to
 * the caller. LMDB memory never leaves a txn: records are decoded (copied)
 * inside it.
 *
 * Threads: the owner thread calls everything in spool.h; the worker and
 * committer threads of spool_commit.c share the txn gate (see
 * spool_impl.h) and the lists guarded by sp->mu and sp->done_mu.
 */
#include "queue/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/log.h"
#include "queue/spool_impl.h"

/* The spool's subdirectories and their modes (owner uid/gid of mail_owner). */
static const struct spool_subdir {
	const char *name;
	mode_t mode;
} spool_subdirs[] = {
	/* index/, msg/ and private/: the roles write; the mail owner's
	 * group reads, for ternctl (doc/ternctl.md, "Who may"). */
	{ "index", 0750 },
	{ "msg", 0750 },
	/* sendmail's socket: anyone may reach it by name (sendmail is not
	 * set-gid), nobody may list the directory (doc/sendmail.md). */
	{ "public", 0711 },
	{ "private", 0750 },
	{ "maildrop", 0730 },	/* the group may drop files, not list them */
};

/* O_EXCL collisions tolerated before spool_msg_create() gives up. */
#define SPOOL_CREATE_TRIES 1000

/* ---- small helpers shared with spool_commit.c and spool_recover.c ---- */

void
spool_set_err(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

enum spool_result
spool_errno_result(int e)
{
	return e == ENOSPC || e == EDQUOT ? SPOOL_NOSPACE : SPOOL_ERROR;
}

enum spool_result
spool_mdb_result(int rc)
{
	if (rc == 0)
		return SPOOL_OK;
	if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT || rc == ENOMEM)
		return SPOOL_NOSPACE;
	if (rc == MDB_NOTFOUND)
		return SPOOL_NOTFOUND;
	return SPOOL_ERROR;
}

void
spool_list_push(struct spool_list *l, struct spool_msg *m)
{
	m->next = NULL;
	if (l->tail)
		l->tail->next = m;
	else
		l->head = m;
	l->tail = m;
	l->n++;
}

struct spool_msg *
spool_list_pop(struct spool_list *l)
{
	struct spool_msg *m = l->head;

	if (m == NULL)
		return NULL;
	l->head = m->next;
	if (l->head == NULL)
		l->tail = NULL;
	l->n--;
	m->next = NULL;
	return m;
}

bool
spool_id_valid(const char *s, size_t len)
{
	size_t i;

	if (len != SPOOL_ID_LEN)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

bool
spool_id_cstr_valid(const char *id)
{
	return id != NULL && strnlen(id, SPOOL_ID_SIZE) == SPOOL_ID_LEN &&
	    spool_id_valid(id, SPOOL_ID_LEN);
}

int
spool_msg_path(const struct spool *sp, const char *id, char *dst, size_t dstsz)
{
	int n;

	if (!spool_id_cstr_valid(id))
		return -1;
	n = snprintf(dst, dstsz, "%s/msg/%s", sp->dir, id);
	return n < 0 || (size_t)n >= dstsz ? -1 : 0;
}

/* ---- spool_prepare ---- */

/* Create (or adopt) one directory and give it its owner and mode. */
static int
spool_prepare_dir(const char *path, mode_t mode, bool chown_it, uid_t uid, gid_t gid,
                  char *err, size_t errsz)
{
	struct stat st;
	int fd, rc = -1;

	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		spool_set_err(err, errsz, "mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	/* O_NOFOLLOW: a symlink planted in the spool must not redirect chown. */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		spool_set_err(err, errsz, "open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		spool_set_err(err, errsz, "stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (chown_it && geteuid() == 0) {
		if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0) {
			spool_set_err(err, errsz, "chown %s: %s", path, strerror(errno));
			goto out;
		}
	} else if (chown_it) {
		/* Not root: we can only prepare a spool of our own. */
		if (st.st_uid != uid) {
			spool_set_err(err, errsz, "%s is owned by uid %u, not %u", path,
			              (unsigned)st.st_uid, (unsigned)uid);
			goto out;
		}
		if (st.st_gid != gid && fchown(fd, (uid_t)-1, gid) < 0) {
			spool_set_err(err, errsz, "chgrp %s: %s", path, strerror(errno));
			goto out;
		}
	}
	/* mkdir's mode went through the umask: set the exact one. */
	if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0) {
		spool_set_err(err, errsz, "chmod %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/* The LMDB files in index/ follow the directory's owner (mail_owner may change). */
static int
spool_prepare_index_files(const char *dir, uid_t uid, gid_t gid, char *err, size_t errsz)
{
	static const char *const files[] = { "data.mdb", "lock.mdb" };
	char path[SPOOL_DIR_MAX + 32];
	size_t i;

	if (geteuid() != 0)
		return 0;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/index/%s", dir, files[i]);
		if (lchown(path, uid, gid) < 0 && errno != ENOENT) {
			spool_set_err(err, errsz, "chown %s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

int
spool_prepare(const char *queue_directory, uid_t uid, gid_t gid, char *err, size_t errsz)
{
	char path[SPOOL_DIR_MAX + 32];
	size_t i;

	if (strlen(queue_directory) >= SPOOL_DIR_MAX) {
		spool_set_err(err, errsz, "queue_directory is too long");
		return -1;
	}
	/* The top stays root's (or the caller's): roles only write below it. */
	if (spool_prepare_dir(queue_directory, 0755, false, uid, gid, err, errsz) < 0)
		return -1;
	for (i = 0; i < sizeof(spool_subdirs) / sizeof(spool_subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", queue_directory, spool_subdirs[i].name);
		if (spool_prepare_dir(path, spool_subdirs[i].mode, true, uid, gid, err, errsz) < 0)
			return -1;
	}
	return spool_prepare_index_files(queue_directory, uid, gid, err, errsz);
}

/* ---- open and close ---- */

static void
spool_free(struct spool *sp)
{
	if (sp->env)
		mdb_env_close(sp->env);
	if (sp->msg_dirfd >= 0)
		close(sp->msg_dirfd);
	if (sp->event_fd >= 0)
		close(sp->event_fd);
	pthread_mutex_destroy(&sp->gate_mu);
	pthread_cond_destroy(&sp->gate_cond);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->jobs_cond);
	pthread_cond_destroy(&sp->ready_cond);
	pthread_mutex_destroy(&sp->done_mu);
	free(sp->workers);
	free(sp);
}

static struct spool *
spool_alloc(const char *dir, bool readonly)
{
	struct spool *sp = calloc(1, sizeof(*sp));

	if (sp == NULL)
		fatal("out of memory (spool)");
	snprintf(sp->dir, sizeof(sp->dir), "%s", dir);
	sp->readonly = readonly;
	sp->msg_dirfd = sp->event_fd = -1;
	pthread_mutex_init(&sp->gate_mu, NULL);
	pthread_cond_init(&sp->gate_cond, NULL);
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->jobs_cond, NULL);
	pthread_cond_init(&sp->ready_cond, NULL);
	pthread_mutex_init(&sp->done_mu, NULL);
	return sp;
}

struct spool *
spool_open(const char *queue_directory, const struct spool_options *opt, char *err, size_t errsz)
{
	static const struct spool_options defaults = { 0, 0, false };
	char path[SPOOL_DIR_MAX + 32];
	struct spool *sp;

	if (opt == NULL)
		opt = &defaults;
	if (strlen(queue_directory) >= SPOOL_DIR_MAX) {
		spool_set_err(err, errsz, "queue_directory is too long");
		return NULL;
	}
	sp = spool_alloc(queue_directory, opt->readonly);
	snprintf(path, sizeof(path), "%s/msg", sp->dir);
	sp->msg_dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->msg_dirfd < 0) {
		spool_set_err(err, errsz, "open %s: %s", path, strerror(errno));
		goto fail;
	}
	sp->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sp->event_fd < 0) {
		spool_set_err(err, errsz, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (spool_index_open(sp, opt, err, errsz) < 0)
		goto fail;
	sp->nworkers = sp->readonly ? 0 : opt->fsync_threads;
	if (spool_commit_start(sp, err, errsz) < 0)
		goto fail;
	return sp;
fail:
	spool_free(sp);
	return NULL;
}

void
spool_close(struct spool *sp)
{
	struct spool_msg *m;

	if (sp == NULL)
		return;
	spool_commit_stop(sp);
	/* Finished commits nobody dispatched: durable, but no callback. */
	while ((m = spool_list_pop(&sp->done)) != NULL)
		spool_msg_free(m);
	spool_free(sp);
}

/* ---- writing a message ---- */

/* Last id handed out by this process: ids grow even if the clock steps back. */
static pthread_mutex_t spool_id_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t spool_id_last;

static void
spool_id_next(char id[SPOOL_ID_SIZE])
{
	struct timespec ts;
	uint64_t now, v;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	pthread_mutex_lock(&spool_id_mu);
	v = now > spool_id_last ? now : spool_id_last + 1;
	spool_id_last = v;
	pthread_mutex_unlock(&spool_id_mu);
	snprintf(id, SPOOL_ID_SIZE, "%014" PRIX64, v & UINT64_C(0xFFFFFFFFFFFFFF));
}

struct spool_msg *
spool_msg_create(struct spool *sp, char *err, size_t errsz)
{
	struct spool_msg *m;
	int tries;

	if (sp->readonly) {
		spool_set_err(err, errsz, "spool is open read-only");
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		fatal("out of memory (spool message)");
	m->sp = sp;
	/* O_EXCL makes the id ours even when another process picked the same
	 * microsecond: the loser bumps and tries again. */
	for (tries = 0; tries < SPOOL_CREATE_TRIES; tries++) {
		spool_id_next(m->id);
		m->fd = openat(sp->msg_dirfd, m->id, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0640);
		if (m->fd >= 0)
			return m;
		if (errno != EEXIST) {
			spool_set_err(err, errsz, "create %s/msg/%s: %s", sp->dir, m->id,
			              strerror(errno));
			free(m);
			return NULL;
		}
	}
	spool_set_err(err, errsz, "create %s/msg: no free queue id after %d tries", sp->dir, tries);
	free(m);
	return NULL;
}

const char *
spool_msg_id(const struct spool_msg *m)
{
	return m->id;
}

uint64_t
spool_msg_size(const struct spool_msg *m)
{
	return m->size;
}

static enum spool_result
spool_msg_fail(struct spool_msg *m, int e, const char *what)
{
	if (m->result == SPOOL_OK) {
		m->result = spool_errno_result(e);
		snprintf(m->err, sizeof(m->err), "%s msg/%s: %s", what, m->id, strerror(e));
	}
	return m->result;
}

static enum spool_result
spool_write_all(struct spool_msg *m, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(m->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return spool_msg_fail(m, errno, "write");
		if (w == 0)
			return spool_msg_fail(m, EIO, "write");
		p += w;
		n -= (size_t)w;
	}
	return SPOOL_OK;
}

enum spool_result
spool_msg_flush(struct spool_msg *m)
{
	enum spool_result r;

	if (m->result != SPOOL_OK)
		return m->result;
	if (m->wlen == 0)
		return SPOOL_OK;
	r = spool_write_all(m, m->wbuf, m->wlen);
	m->wlen = 0;
	return r;
}

enum spool_result
spool_msg_write(struct spool_msg *m, const void *p, size_t n)
{
	const char *s = p;
	size_t k;

	if (m->result != SPOOL_OK)
		return m->result;
	if (m->wbuf == NULL && n > 0) {
		m->wbuf = malloc(SPOOL_WRITE_BUF_SIZE);
		if (m->wbuf == NULL)
			fatal("out of memory (spool write buffer)");
	}
	while (n > 0) {
		if (m->wlen == SPOOL_WRITE_BUF_SIZE && spool_msg_flush(m) != SPOOL_OK)
			return m->result;
		k = SPOOL_WRITE_BUF_SIZE - m->wlen;
		if (k > n)
			k = n;
		memcpy(m->wbuf + m->wlen, s, k);
		m->wlen += k;
		m->size += k;
		s += k;
		n -= k;
	}
	return SPOOL_OK;
}

void
spool_msg_free(struct spool_msg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	free(m->wbuf);
	buf_free(&m->record);
	free(m);
}

/* The name of the rewrite file of m. */
static void
spool_msg_edit_name(const struct spool_msg *m, char *name, size_t size)
{
	snprintf(name, size, "%s%s", m->id, SPOOL_EDIT_SUFFIX);
}

int
spool_msg_open_read(struct spool_msg *m, char *err, size_t errsz)
{
	char name[SPOOL_ID_SIZE + sizeof(SPOOL_EDIT_SUFFIX)];
	int fd;

	if (spool_msg_flush(m) != SPOOL_OK) {
		spool_set_err(err, errsz, "%s", m->err);
		return -1;
	}
	if (m->rewriting)
		spool_msg_edit_name(m, name, sizeof(name));
	else
		snprintf(name, sizeof(name), "%s", m->id);
	fd = openat(m->sp->msg_dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		spool_set_err(err, errsz, "open %s/msg/%s: %s", m->sp->dir, name, strerror(errno));
	return fd;
}

enum spool_result
spool_msg_rewrite_begin(struct spool_msg *m)
{
	char name[SPOOL_ID_SIZE + sizeof(SPOOL_EDIT_SUFFIX)];
	int fd;

	if (m->rewriting)
		panic("spool_msg_rewrite_begin: %s is being rewritten already", m->id);
	if (spool_msg_flush(m) != SPOOL_OK)
		return m->result;
	spool_msg_edit_name(m, name, sizeof(name));
	fd = openat(m->sp->msg_dirfd, name, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0640);
	if (fd < 0)
		return spool_msg_fail(m, errno, "create edit file of");
	close(m->fd);
	m->fd = fd;
	m->size = 0;
	m->rewriting = true;
	return SPOOL_OK;
}

enum spool_result
spool_msg_rewrite_end(struct spool_msg *m)
{
	char name[SPOOL_ID_SIZE + sizeof(SPOOL_EDIT_SUFFIX)];

	if (!m->rewriting)
		panic("spool_msg_rewrite_end: %s is not being rewritten", m->id);
	if (spool_msg_flush(m) != SPOOL_OK)
		return m->result;
	spool_msg_edit_name(m, name, sizeof(name));
	/* The old file goes in the same step: no moment without msg/ID. */
	if (renameat(m->sp->msg_dirfd, name, m->sp->msg_dirfd, m->id) < 0)
		return spool_msg_fail(m, errno, "rename edit file over");
	m->rewriting = false;
	return SPOOL_OK;
}

void
spool_msg_abort(struct spool_msg *m)
{
	char name[SPOOL_ID_SIZE + sizeof(SPOOL_EDIT_SUFFIX)];

	if (m == NULL)
		return;
	if (m->rewriting) {
		spool_msg_edit_name(m, name, sizeof(name));
		(void)unlinkat(m->sp->msg_dirfd, name, 0);
	}
	(void)unlinkat(m->sp->msg_dirfd, m->id, 0);
	spool_msg_free(m);
}
