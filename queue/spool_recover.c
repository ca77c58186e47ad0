/*
 * spool_recover: make msg/ and the envelope index agree at start-up.
 *
 * A file without an envelope is the remains of a session that never got
 * its 250 (the crash came before the LMDB commit, see spool_commit.c): it
 * is removed. An envelope without a file is mail we accepted and lost: it
 * cannot be repaired here, so it is logged loudly and left for the
 * administrator (and for qmgr, which bounces or drops it).
 *
 * This is the one place in the spool that logs: one warning per stray
 * name, one error per lost file, one summary line. It must run before any
 * process writes to the spool, or it would remove files of commits in
 * flight. Errors reading the index or msg/ are returned; a file that
 * cannot be unlinked is logged and skipped.
 */
#include "queue/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/log.h"
#include "queue/spool_impl.h"

/* The ids of the index, in LMDB's (memcmp, so sorted) order. */
struct spool_idset {
	char (*ids)[SPOOL_ID_SIZE];
	bool *seen;		/* a file was found for ids[i] */
	size_t n;
	size_t cap;
};

static void
spool_idset_add(struct spool_idset *s, const char *id)
{
	size_t ncap;

	if (s->n == s->cap) {
		ncap = s->cap ? s->cap * 2 : 1024;
		s->ids = realloc(s->ids, ncap * sizeof(*s->ids));
		s->seen = realloc(s->seen, ncap * sizeof(*s->seen));
		if (s->ids == NULL || s->seen == NULL)
			fatal("out of memory (recovery of %zu envelopes)", ncap);
		s->cap = ncap;
	}
	memcpy(s->ids[s->n], id, SPOOL_ID_LEN);
	s->ids[s->n][SPOOL_ID_LEN] = '\0';
	s->seen[s->n] = false;
	s->n++;
}

static int
spool_id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SPOOL_ID_LEN);
}

/* Copy every key out of one short read txn. */
static enum spool_result
spool_recover_ids(struct spool *sp, struct spool_idset *s, char *err, size_t errsz)
{
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val key, val;
	int rc;

	if ((rc = spool_txn_begin(sp, MDB_RDONLY, &txn)) != 0) {
		spool_set_err(err, errsz, "%s/index: %s", sp->dir, mdb_strerror(rc));
		return SPOOL_ERROR;
	}
	if ((rc = mdb_cursor_open(txn, sp->dbi, &cur)) == 0) {
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
			if (spool_id_valid(key.mv_data, key.mv_size))
				spool_idset_add(s, key.mv_data);
		mdb_cursor_close(cur);
	}
	spool_txn_abort(sp, txn);
	if (rc != MDB_NOTFOUND) {
		spool_set_err(err, errsz, "%s/index: %s", sp->dir, mdb_strerror(rc));
		return SPOOL_ERROR;
	}
	return SPOOL_OK;
}

/* One name in msg/: keep it, remove it as an orphan, or warn about it. */
static void
spool_recover_name(struct spool *sp, DIR *d, const char *name, struct spool_idset *s,
                   struct spool_recover_stats *st)
{
	char shown[64];
	struct stat sb;
	char (*hit)[SPOOL_ID_SIZE];

	/* A rewrite a milter's edits left unfinished: never committed. */
	if (strlen(name) == SPOOL_ID_LEN + strlen(SPOOL_EDIT_SUFFIX) &&
	    spool_id_valid(name, SPOOL_ID_LEN) &&
	    strcmp(name + SPOOL_ID_LEN, SPOOL_EDIT_SUFFIX) == 0) {
		if (unlinkat(dirfd(d), name, 0) == 0)
			st->orphan_files++;
		return;
	}
	if (!spool_id_valid(name, strlen(name))) {
		log_warning("spool recovery: ignoring %s/msg/%s: not a queue id", sp->dir,
		            log_printable(shown, sizeof(shown), name, strlen(name)));
		return;
	}
	if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode)) {
		log_warning("spool recovery: ignoring %s/msg/%s: not a regular file", sp->dir, name);
		return;
	}
	hit = s->n ? bsearch(name, s->ids, s->n, sizeof(*s->ids), spool_id_cmp) : NULL;
	if (hit != NULL) {
		s->seen[hit - s->ids] = true;
		return;
	}
	if (unlinkat(dirfd(d), name, 0) < 0) {
		log_warning("spool recovery: cannot remove orphan %s/msg/%s: %s", sp->dir, name,
		            strerror(errno));
		return;
	}
	st->orphan_files++;
}

static enum spool_result
spool_recover_files(struct spool *sp, struct spool_idset *s, struct spool_recover_stats *st,
                    char *err, size_t errsz)
{
	struct dirent *de;
	DIR *d;
	int fd;

	/* A second fd: closedir() closes its own, not sp->msg_dirfd. */
	fd = openat(sp->msg_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		spool_set_err(err, errsz, "open %s/msg: %s", sp->dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return SPOOL_ERROR;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		spool_recover_name(sp, d, de->d_name, s, st);
	}
	if (errno != 0) {
		spool_set_err(err, errsz, "read %s/msg: %s", sp->dir, strerror(errno));
		closedir(d);
		return SPOOL_ERROR;
	}
	closedir(d);
	return SPOOL_OK;
}

enum spool_result
spool_recover(struct spool *sp, struct spool_recover_stats *st, char *err, size_t errsz)
{
	struct spool_idset s = { NULL, NULL, 0, 0 };
	struct spool_recover_stats local;
	enum spool_result r;
	size_t i;

	if (st == NULL)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (sp->readonly || !sp->have_dbi) {
		spool_set_err(err, errsz, "spool is open read-only");
		return SPOOL_ERROR;
	}
	r = spool_recover_ids(sp, &s, err, errsz);
	if (r == SPOOL_OK)
		r = spool_recover_files(sp, &s, st, err, errsz);
	if (r == SPOOL_OK) {
		st->envelopes = (unsigned)s.n;
		for (i = 0; i < s.n; i++) {
			if (s.seen[i])
				continue;
			log_error("%s: envelope without message file", s.ids[i]);
			st->missing_files++;
		}
		log_info("spool recovery: %u messages, %u orphan files removed, "
		         "%u envelopes without file", st->envelopes, st->orphan_files,
		         st->missing_files);
	}
	free(s.ids);
	free(s.seen);
	return r;
}
