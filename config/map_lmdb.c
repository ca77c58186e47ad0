/*
 * map_lmdb: compiled maps, PATH.lmdb, written by `ternctl map build` and
 * read by the roles.
 *
 * The file is immutable once it has its name: a build writes a new file
 * beside it (PATH.lmdb.XXXXXX), commits and fsyncs it, and renames it over
 * PATH.lmdb (then fsyncs the directory). So readers need no locks:
 * they open it MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, which also means
 * no PATH.lmdb-lock file that the unprivileged roles could not create in
 * /etc. A reader keeps its mapping of the old inode, which stays whole
 * until the reader lets it go, and notices a new file by stat(2): a
 * different inode, size or mtime. With no reader table there are no
 * reader slots for mdb_reader_check() to clear. XXX the price: a tool
 * that writes PATH.lmdb in place (Postfix's postmap, mdb_load) would
 * change pages under the readers; we refuse files without our format
 * record, and doc/maps.md says only ternctl may write them.
 *
 * Layout: the unnamed database holds key -> value, keys folded and
 * without NUL, plus one record under a key that starts with a NUL byte
 * (no source key can), which names the format: "tern-map 1 map" or
 * "tern-map 1 aliases". A reader opened for alias_maps refuses a file
 * built as a plain map, the classic mistake of postmap'ing /etc/aliases.
 *
 * Error policy: returns errors (a lookup's as MAP_ERROR and a message).
 * Ownership: LMDB memory never leaves a lookup; values are copied.
 */
#include "config/map_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/log.h"

/* The format record's key (with its leading NUL) and values. */
static const char map_lmdb_meta_key[] = "\0tern-map";
#define MAP_LMDB_META_KEY_LEN (sizeof(map_lmdb_meta_key) - 1)
#define MAP_LMDB_FORMAT_MAP "tern-map 1 map"
#define MAP_LMDB_FORMAT_ALIASES "tern-map 1 aliases"
/* The build's first map size is this much plus twice the data; it doubles
 * on MDB_MAP_FULL, at most MAP_LMDB_GROW_TRIES times. */
#define MAP_LMDB_SIZE_BASE ((size_t)1 << 20)
#define MAP_LMDB_GROW_TRIES 12
/* Overhead of one node, bytes, for the estimate. */
#define MAP_LMDB_NODE_COST 16
/* Longest message kept for a reader whose file cannot be opened. */
#define MAP_LMDB_ERR_MAX 512

/* Which file a reader has open. */
struct map_lmdb_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
};

struct map_lmdb {
	char *spec;		/* for messages */
	char *file;		/* PATH.lmdb */
	unsigned flags;
	MDB_env *env;
	MDB_txn *txn;		/* a reset read txn, renewed by each lookup */
	MDB_dbi dbi;
	struct map_lmdb_id id;
	size_t count;
	struct timespec checked;	/* CLOCK_MONOTONIC of the last stat(2) */
	bool stale;		/* the file changed and the new one cannot be used */
	char stale_err[MAP_LMDB_ERR_MAX];
};

/* One open file: what map_lmdb_env_open() hands over. */
struct map_lmdb_env {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	struct map_lmdb_id id;
	size_t count;
};

static bool
map_lmdb_id_eq(const struct map_lmdb_id *a, const struct map_lmdb_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec;
}

static void
map_lmdb_id_from(struct map_lmdb_id *id, const struct stat *st)
{
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtim = st->st_mtim;
}

static void
map_lmdb_env_close(struct map_lmdb_env *e)
{
	if (e->txn != NULL)
		mdb_txn_abort(e->txn);
	if (e->env != NULL)
		mdb_env_close(e->env);
	memset(e, 0, sizeof(*e));
}

/* Which status an LMDB or errno code from opening means. */
static enum map_status
map_lmdb_status(int rc)
{
	switch (rc) {
	case ENOENT:
		return MAP_ERR_NOINPUT;
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_CORRUPTED:
		return MAP_ERR_DATA;
	default:
		return MAP_ERR_IO;
	}
}

/* The format file was built in: 1 aliases, 0 "key value", -1 unknown or
 * unreadable (no file, not ours). */
static int
map_lmdb_file_format(const char *file)
{
	MDB_val k = { MAP_LMDB_META_KEY_LEN, (void *)map_lmdb_meta_key }, v;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	int format = -1;

	if (mdb_env_create(&env) != 0)
		return -1;
	if (mdb_env_open(env, file, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, 0) == 0 &&
	    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0) {
		if (mdb_dbi_open(txn, NULL, 0, &dbi) == 0 && mdb_get(txn, dbi, &k, &v) == 0) {
			if (v.mv_size == strlen(MAP_LMDB_FORMAT_ALIASES) &&
			    memcmp(v.mv_data, MAP_LMDB_FORMAT_ALIASES, v.mv_size) == 0)
				format = 1;
			else if (v.mv_size == strlen(MAP_LMDB_FORMAT_MAP) &&
			         memcmp(v.mv_data, MAP_LMDB_FORMAT_MAP, v.mv_size) == 0)
				format = 0;
		}
		mdb_txn_abort(txn);
	}
	mdb_env_close(env);
	return format;
}

/* Check the format record against flags; MAP_OK or MAP_ERR_DATA with why. */
static enum map_status
map_lmdb_check_format(const char *file, MDB_txn *txn, MDB_dbi dbi, unsigned flags, char *why,
                      size_t whysz)
{
	MDB_val k = { MAP_LMDB_META_KEY_LEN, (void *)map_lmdb_meta_key }, v;
	bool aliases;
	int rc;

	rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_NOTFOUND) {
		snprintf(why, whysz, "%s: not built by ternctl map build", file);
		return MAP_ERR_DATA;
	}
	if (rc != 0) {
		snprintf(why, whysz, "%s: %s", file, mdb_strerror(rc));
		return map_lmdb_status(rc);
	}
	if (v.mv_size == strlen(MAP_LMDB_FORMAT_MAP) &&
	    memcmp(v.mv_data, MAP_LMDB_FORMAT_MAP, v.mv_size) == 0) {
		aliases = false;
	} else if (v.mv_size == strlen(MAP_LMDB_FORMAT_ALIASES) &&
	           memcmp(v.mv_data, MAP_LMDB_FORMAT_ALIASES, v.mv_size) == 0) {
		aliases = true;
	} else {
		snprintf(why, whysz, "%s: unknown format record (built by a newer tern?)", file);
		return MAP_ERR_DATA;
	}
	if ((flags & MAP_F_ANY_FORMAT) || aliases == ((flags & MAP_F_ALIASES) != 0))
		return MAP_OK;
	snprintf(why, whysz, aliases ? "%s: built from an aliases(5) file, but this map needs "
	         "\"key value\" lines: rebuild with ternctl map build (no --aliases)" :
	         "%s: built from \"key value\" lines, but alias_maps need aliases(5) format: "
	         "rebuild with ternctl map build --aliases", file);
	return MAP_ERR_DATA;
}

/* Open file read-only into e: the env, the DB, the format check, a reset
 * read txn. MAP_OK, or a status and why. */
static enum map_status
map_lmdb_env_open(const char *file, unsigned flags, struct map_lmdb_env *e, char *why,
                  size_t whysz)
{
	enum map_status st;
	struct stat sb;
	MDB_stat ms;
	int rc, fd;

	memset(e, 0, sizeof(*e));
	if ((rc = mdb_env_create(&e->env)) != 0)
		goto fail;
	/* Immutable once renamed into place: no locks (see the top). */
	rc = mdb_env_open(e->env, file, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, 0);
	if (rc != 0)
		goto fail;
	/* The identity of the file LMDB mapped, not of whatever has the name now. */
	if ((rc = mdb_env_get_fd(e->env, &fd)) != 0)
		goto fail;
	if (fstat(fd, &sb) < 0) {
		rc = errno;
		goto fail;
	}
	map_lmdb_id_from(&e->id, &sb);
	if ((rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &e->txn)) != 0 ||
	    (rc = mdb_dbi_open(e->txn, NULL, 0, &e->dbi)) != 0)
		goto fail;
	if ((st = map_lmdb_check_format(file, e->txn, e->dbi, flags, why, whysz)) != MAP_OK) {
		map_lmdb_env_close(e);
		return st;
	}
	if ((rc = mdb_stat(e->txn, e->dbi, &ms)) != 0)
		goto fail;
	e->count = ms.ms_entries > 0 ? ms.ms_entries - 1 : 0;	/* less the format record */
	mdb_txn_reset(e->txn);
	return MAP_OK;
fail:
	if (rc == ENOENT)
		snprintf(why, whysz, "%s: %s (build it with: ternctl map build%s %.*s)", file,
		         mdb_strerror(rc), (flags & MAP_F_ALIASES) ? " --aliases" : "",
		         (int)(strlen(file) - strlen(MAP_LMDB_SUFFIX)), file);
	else
		snprintf(why, whysz, "%s: %s", file, mdb_strerror(rc));
	map_lmdb_env_close(e);
	return map_lmdb_status(rc);
}

/* Use e from now on (adopted). */
static void
map_lmdb_adopt(struct map_lmdb *l, struct map_lmdb_env *e)
{
	if (l->txn != NULL)
		mdb_txn_abort(l->txn);
	if (l->env != NULL)
		mdb_env_close(l->env);
	l->env = e->env;
	l->txn = e->txn;
	l->dbi = e->dbi;
	l->id = e->id;
	l->count = e->count;
	memset(e, 0, sizeof(*e));
}

enum map_status
map_lmdb_open(const char *spec, const char *path, unsigned flags, struct map_lmdb **out,
              struct buf *diag)
{
	char why[MAP_LMDB_ERR_MAX];
	struct map_lmdb_env e;
	struct map_lmdb *l;
	enum map_status st;
	size_t n = strlen(path);

	*out = NULL;
	l = map_xmalloc(sizeof(*l));
	memset(l, 0, sizeof(*l));
	l->spec = map_xstrdup(spec);
	l->file = map_xmalloc(n + sizeof(MAP_LMDB_SUFFIX));
	memcpy(l->file, path, n);
	memcpy(l->file + n, MAP_LMDB_SUFFIX, sizeof(MAP_LMDB_SUFFIX));
	l->flags = flags;
	if ((st = map_lmdb_env_open(l->file, flags, &e, why, sizeof(why))) != MAP_OK) {
		map_diag_line(diag, spec, "%s", why);
		map_lmdb_close(l);
		return st;
	}
	map_lmdb_adopt(l, &e);
	clock_gettime(CLOCK_MONOTONIC, &l->checked);
	*out = l;
	return MAP_OK;
}

void
map_lmdb_close(struct map_lmdb *l)
{
	if (l == NULL)
		return;
	if (l->txn != NULL)
		mdb_txn_abort(l->txn);
	if (l->env != NULL)
		mdb_env_close(l->env);
	free(l->spec);
	free(l->file);
	free(l);
}

size_t
map_lmdb_count(struct map_lmdb *l)
{
	return l->count;
}

/*
 * Has the file changed? Then open the new one. Sets or clears l->stale.
 * A file that cannot be stat'ed or opened makes lookups fail (defer)
 * rather than answer from the old one: the administrator removed or
 * broke it, and we cannot tell which answers are still right.
 */
static void
map_lmdb_check(struct map_lmdb *l)
{
	char why[MAP_LMDB_ERR_MAX];
	struct map_lmdb_env e;
	struct map_lmdb_id id;
	struct stat sb;

	clock_gettime(CLOCK_MONOTONIC, &l->checked);
	if (stat(l->file, &sb) < 0) {
		l->stale = true;
		snprintf(l->stale_err, sizeof(l->stale_err), "%s: %s", l->file, strerror(errno));
		return;
	}
	map_lmdb_id_from(&id, &sb);
	if (l->env != NULL && map_lmdb_id_eq(&id, &l->id)) {
		l->stale = false;
		return;
	}
	if (map_lmdb_env_open(l->file, l->flags, &e, why, sizeof(why)) != MAP_OK) {
		l->stale = true;
		snprintf(l->stale_err, sizeof(l->stale_err), "%s", why);
		return;
	}
	map_lmdb_adopt(l, &e);
	l->stale = false;
}

static bool
map_lmdb_check_due(const struct map_lmdb *l)
{
	struct timespec now;
	int64_t ms;

	if (l->flags & MAP_F_RECHECK)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (int64_t)(now.tv_sec - l->checked.tv_sec) * 1000 +
	     (now.tv_nsec - l->checked.tv_nsec) / 1000000;
	return ms >= MAP_RECHECK_MS || ms < 0;
}

enum map_result
map_lmdb_lookup(struct map_lmdb *l, const char *key, size_t klen, struct buf *value, char *err,
                size_t errsz)
{
	MDB_val k = { klen, (void *)key }, v;
	enum map_result r = MAP_FOUND;
	int rc;

	buf_reset(value);
	if (map_lmdb_check_due(l))
		map_lmdb_check(l);
	if (l->stale) {
		snprintf(err, errsz, "%s: %s", l->spec, l->stale_err);
		return MAP_ERROR;
	}
	if ((rc = mdb_txn_renew(l->txn)) != 0) {
		snprintf(err, errsz, "%s: %s: %s", l->spec, l->file, mdb_strerror(rc));
		return MAP_ERROR;
	}
	rc = mdb_get(l->txn, l->dbi, &k, &v);
	if (rc == MDB_NOTFOUND) {
		r = MAP_NOTFOUND;
	} else if (rc != 0) {
		snprintf(err, errsz, "%s: %s: %s", l->spec, l->file, mdb_strerror(rc));
		r = MAP_ERROR;
	} else if (buf_append(value, v.mv_data, v.mv_size) != BUF_OK) {
		snprintf(err, errsz, "%s: value of %zu bytes does not fit the buffer", l->spec,
		         v.mv_size);
		buf_reset(value);
		r = MAP_ERROR;
	}
	mdb_txn_reset(l->txn);
	if (r == MAP_FOUND)
		buf_cstr(value);
	return r;
}

enum map_status
map_lmdb_recheck(struct map_lmdb *l, struct buf *diag)
{
	map_lmdb_check(l);
	if (!l->stale)
		return MAP_OK;
	map_diag_line(diag, l->spec, "%s", l->stale_err);
	return access(l->file, F_OK) < 0 && errno == ENOENT ? MAP_ERR_NOINPUT : MAP_ERR_IO;
}

/* ---- building ---- */

/* LMDB's default key order (mdb_cmp_memn): bytes, then the shorter first. */
static int
map_lmdb_key_cmp(const void *a, const void *b)
{
	const struct map_entry *x = *(const struct map_entry *const *)a;
	const struct map_entry *y = *(const struct map_entry *const *)b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	return x->klen < y->klen ? -1 : x->klen > y->klen;
}

/* Write the sorted entries into the (empty) file tmp at mapsize; an LMDB code. */
static int
map_lmdb_fill(const char *tmp, size_t mapsize, const struct map_entry *const *sorted, size_t n,
              unsigned flags)
{
	const char *format = (flags & MAP_F_ALIASES) ? MAP_LMDB_FORMAT_ALIASES : MAP_LMDB_FORMAT_MAP;
	MDB_val k = { MAP_LMDB_META_KEY_LEN, (void *)map_lmdb_meta_key };
	MDB_val v = { strlen(format), (void *)format };
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	size_t i;
	int rc;

	if ((rc = mdb_env_create(&env)) != 0)
		return rc;
	/* Nobody else knows the file yet: no locks. */
	if ((rc = mdb_env_set_mapsize(env, mapsize)) != 0 ||
	    (rc = mdb_env_open(env, tmp, MDB_NOSUBDIR | MDB_NOLOCK, 0600)) != 0) {
		mdb_env_close(env);
		return rc;
	}
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) {
		mdb_env_close(env);
		return rc;
	}
	/* The format record sorts first (its key starts with NUL), then the
	 * entries in LMDB's order: MDB_APPEND fills pages densely. */
	if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi)) == 0)
		rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND);
	for (i = 0; rc == 0 && i < n; i++) {
		k.mv_size = sorted[i]->klen;
		k.mv_data = sorted[i]->key;
		v.mv_size = sorted[i]->vlen;
		v.mv_data = (void *)sorted[i]->value;
		rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND);
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);	/* fsyncs the data and the meta page */
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

/* fsync the directory holding file, so the rename is durable. */
static int
map_lmdb_sync_dir(const char *file)
{
	char *copy = map_xstrdup(file);
	int fd, rc = 0, saved = 0;

	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		saved = errno;
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	free(copy);
	errno = saved;
	return rc;
}

/* The temporary file: owner, group and mode after the source. */
static int
map_lmdb_tmp_open(const char *path, char *tmp)
{
	struct stat src;
	int fd, saved;

	if (stat(path, &src) < 0)
		return -1;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return -1;
	/* Postfix's rule: the group/other read bits of the source (a 0640
	 * sasl_passwd gives a 0640 map). As root, the source's owner too. */
	if (fchmod(fd, 0600 | (src.st_mode & 0044)) < 0 ||
	    (geteuid() == 0 && fchown(fd, src.st_uid, src.st_gid) < 0)) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return fd;
}

enum map_status
map_lmdb_write(const char *path, unsigned flags, const struct map_table *t, struct buf *diag)
{
	const struct map_entry **sorted;
	size_t i, n = strlen(path), mapsize = MAP_LMDB_SIZE_BASE, data = 0;
	char *file, *tmp;
	int fd, rc = 0, tries, format;
	const char *what = NULL;

	file = map_xmalloc(n + sizeof(MAP_LMDB_SUFFIX));
	memcpy(file, path, n);
	memcpy(file + n, MAP_LMDB_SUFFIX, sizeof(MAP_LMDB_SUFFIX));
	/* `ternctl map build /etc/aliases` (no --aliases) would make every
	 * alias lookup fail: refuse to change the format of an existing map. */
	if ((format = map_lmdb_file_format(file)) >= 0 && format != ((flags & MAP_F_ALIASES) != 0)) {
		map_diag_line(diag, file, format ? "was built from an aliases(5) file: rebuild it "
		              "with --aliases (or remove it first)" : "was built from \"key value\" "
		              "lines: rebuild it without --aliases (or remove it first)");
		free(file);
		return MAP_ERR_DATA;
	}
	tmp = map_xmalloc(n + sizeof(MAP_LMDB_SUFFIX) + sizeof(".XXXXXX"));
	snprintf(tmp, n + sizeof(MAP_LMDB_SUFFIX) + sizeof(".XXXXXX"), "%s.XXXXXX", file);
	if ((fd = map_lmdb_tmp_open(path, tmp)) < 0) {
		map_diag_line(diag, file, "cannot create a temporary file beside it: %s",
		              strerror(errno));
		free(tmp);
		free(file);
		return MAP_ERR_CREATE;
	}
	sorted = map_xmalloc((t->n ? t->n : 1) * sizeof(*sorted));
	for (i = 0; i < t->n; i++) {
		sorted[i] = &t->v[i];
		data += t->v[i].klen + t->v[i].vlen + MAP_LMDB_NODE_COST;
	}
	qsort(sorted, t->n, sizeof(*sorted), map_lmdb_key_cmp);
	/* data is below MAP_FILE_MAX plus the node costs: no overflow here. */
	mapsize += data * 2;
	mapsize = (mapsize + MAP_LMDB_SIZE_BASE - 1) & ~(MAP_LMDB_SIZE_BASE - 1);
	for (tries = 0;; tries++) {
		rc = map_lmdb_fill(tmp, mapsize, sorted, t->n, flags);
		if (rc != MDB_MAP_FULL || tries >= MAP_LMDB_GROW_TRIES || mapsize > SIZE_MAX / 2)
			break;
		mapsize *= 2;
		if (ftruncate(fd, 0) < 0) {
			rc = errno;
			break;
		}
	}
	free(sorted);
	if (rc != 0)
		what = mdb_strerror(rc);
	else if (fsync(fd) < 0)
		what = strerror(errno);
	close(fd);
	/* The name changes only now: a reader sees the old file or this one. */
	if (what == NULL && rename(tmp, file) < 0)
		what = strerror(errno);
	if (what != NULL) {
		map_diag_line(diag, file, "cannot write %s: %s", tmp, what);
		unlink(tmp);
		free(tmp);
		free(file);
		return MAP_ERR_CREATE;
	}
	if (map_lmdb_sync_dir(file) < 0) {
		map_diag_line(diag, file, "renamed, but cannot fsync its directory: %s",
		              strerror(errno));
		free(tmp);
		free(file);
		return MAP_ERR_CREATE;
	}
	free(tmp);
	free(file);
	return MAP_OK;
}
