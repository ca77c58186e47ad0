/*
 * spool_test: the spool against a real file system, in a mkdtemp
 * directory: prepare, write, commit (synchronous, through the thread pool,
 * and with no threads), abort, remove, recovery, map growth, a map grown
 * by another process, ids from several processes, and durability across
 * close. Every callback is counted and checked.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "queue/envelope.h"
#include "queue/spool.h"

static char tmpdir[256];
static char qdir[300];

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
setup(void)
{
	char err[256];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/spool_test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(qdir, sizeof(qdir), "%s/q", tmpdir);
	ck_assert_msg(spool_prepare(qdir, getuid(), getgid(), err, sizeof(err)) == 0, "%s", err);
}

static void
teardown(void)
{
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct spool *
open_spool(unsigned threads, uint64_t map_size, bool readonly)
{
	struct spool_options opt = { threads, map_size, readonly };
	char err[256] = "";
	struct spool *sp = spool_open(qdir, &opt, err, sizeof(err));

	ck_assert_msg(sp != NULL, "spool_open: %s", err);
	return sp;
}

static void
make_env(struct envelope *e, int i, int nrcpt)
{
	char a[64];
	int k;

	envelope_init(e);
	snprintf(a, sizeof(a), "sender%d@example.org", i);
	envelope_set(&e->sender, i % 7 == 0 ? "" : a);
	for (k = 0; k < nrcpt; k++) {
		snprintf(a, sizeof(a), "rcpt%d.%d@example.com", i, k);
		envelope_add_rcpt(e, a, k % 2 ? "rfc822;orig@example.com" : NULL,
		                  k % 3 ? ENVELOPE_NOTIFY_FAILURE : 0);
	}
	envelope_set(&e->client_addr, "192.0.2.7");
	envelope_set(&e->helo, "client.example");
	envelope_set(&e->proto, "ESMTP");
	e->arrival = 1700000000000000ll + i;
}

/* Create a message and write n bytes of a pattern derived from seed. */
static struct spool_msg *
write_msg(struct spool *sp, size_t n, unsigned seed)
{
	char err[256] = "", chunk[1000];
	struct spool_msg *m;
	size_t k, i, off = 0;

	m = spool_msg_create(sp, err, sizeof(err));
	ck_assert_msg(m != NULL, "spool_msg_create: %s", err);
	while (off < n) {
		k = n - off < sizeof(chunk) ? n - off : sizeof(chunk);
		for (i = 0; i < k; i++)
			chunk[i] = (char)('A' + (seed + off + i) % 26);
		ck_assert_int_eq(spool_msg_write(m, chunk, k), SPOOL_OK);
		off += k;
	}
	ck_assert_uint_eq(spool_msg_size(m), n);
	return m;
}

static bool
file_exists(struct spool *sp, const char *id)
{
	char path[512];

	ck_assert_int_eq(spool_msg_path(sp, id, path, sizeof(path)), 0);
	return access(path, F_OK) == 0;
}

static void
check_file(struct spool *sp, const char *id, size_t n, unsigned seed)
{
	char path[512];
	struct stat st;
	char *data;
	size_t i;
	int fd;

	ck_assert_int_eq(spool_msg_path(sp, id, path, sizeof(path)), 0);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, n);
	ck_assert_uint_eq(st.st_mode & 0777, 0640);	/* the group reads it: doc/ternctl.md */
	data = malloc(n + 1);
	ck_assert_int_eq(read(fd, data, n + 1), (ssize_t)n);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(data[i], (char)('A' + (seed + i) % 26));
	free(data);
	close(fd);
}

/* ---- callbacks and the event-loop-less loop ---- */

struct cb_rec {
	char id[SPOOL_ID_SIZE];
	int calls;
	enum spool_result r;
};

static void
record_cb(void *arg, const char *id, enum spool_result r)
{
	struct cb_rec *c = arg;

	ck_assert_str_eq(id, c->id);
	c->calls++;
	c->r = r;
}

/* poll() the commit fd and dispatch until nothing is pending. */
static size_t
drain(struct spool *sp)
{
	struct pollfd pfd;
	size_t ran = 0;

	while (spool_commit_pending(sp) > 0) {
		pfd.fd = spool_commit_fd(sp);
		pfd.events = POLLIN;
		pfd.revents = 0;
		ck_assert_msg(poll(&pfd, 1, 20000) == 1, "no completion within 20 s");
		ran += spool_commit_dispatch(sp);
	}
	return ran;
}

/* Commit n messages through spool_msg_commit(); every callback once, OK. */
static struct cb_rec *
commit_many(struct spool *sp, int n, size_t size, int nrcpt)
{
	struct cb_rec *recs = calloc((size_t)n, sizeof(*recs));
	struct envelope e;
	struct spool_msg *m;
	int i;

	for (i = 0; i < n; i++) {
		m = write_msg(sp, size, (unsigned)i);
		snprintf(recs[i].id, sizeof(recs[i].id), "%s", spool_msg_id(m));
		if (i > 0)
			ck_assert_msg(strcmp(recs[i - 1].id, recs[i].id) < 0, "ids not increasing: %s %s",
			              recs[i - 1].id, recs[i].id);
		make_env(&e, i, nrcpt);
		spool_msg_commit(sp, m, &e, record_cb, &recs[i]);
		envelope_free(&e);
	}
	return recs;
}

static void
assert_all_ok(const struct cb_rec *recs, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		ck_assert_msg(recs[i].calls == 1, "%s: %d callbacks", recs[i].id, recs[i].calls);
		ck_assert_msg(recs[i].r == SPOOL_OK, "%s: result %d", recs[i].id, recs[i].r);
	}
}

struct walk_state {
	int n;
	char last[SPOOL_ID_SIZE];
};

static int
walk_count(void *arg, const char *id, const struct envelope *env)
{
	struct walk_state *w = arg;

	ck_assert_str_gt(id, w->last);
	snprintf(w->last, sizeof(w->last), "%s", id);
	ck_assert_ptr_nonnull(env->sender);
	w->n++;
	return 0;
}

static int
count_envelopes(struct spool *sp)
{
	struct walk_state w = { 0, "" };
	char err[256] = "";

	ck_assert_msg(spool_walk(sp, walk_count, &w, err, sizeof(err)) == SPOOL_OK, "%s", err);
	return w.n;
}

/* ---- tests ---- */

START_TEST(test_prepare_modes)
{
	static const struct { const char *name; mode_t mode; } dirs[] = {
		{ "index", 0750 }, { "msg", 0750 }, { "public", 0711 },
		{ "private", 0750 }, { "maildrop", 0730 },
	};
	char path[512], err[256] = "";
	struct stat st;
	size_t i;

	/* A second run fixes modes and is otherwise a no-op. */
	snprintf(path, sizeof(path), "%s/public", qdir);
	ck_assert_int_eq(chmod(path, 0777), 0);
	ck_assert_msg(spool_prepare(qdir, getuid(), getgid(), err, sizeof(err)) == 0, "%s", err);
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", qdir, dirs[i].name);
		ck_assert_int_eq(lstat(path, &st), 0);
		ck_assert(S_ISDIR(st.st_mode));
		ck_assert_msg((st.st_mode & 07777) == dirs[i].mode, "%s: mode %o", dirs[i].name,
		              (unsigned)(st.st_mode & 07777));
		ck_assert_uint_eq(st.st_uid, getuid());
	}
}
END_TEST

/* As a plain user: our own uid works, someone else's is refused. */
START_TEST(test_prepare_unprivileged)
{
	char mine[300], err[256] = "";
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		snprintf(mine, sizeof(mine), "%s/mine", tmpdir);
		ck_assert_msg(spool_prepare(mine, getuid(), getgid(), err, sizeof(err)) == 0, "%s", err);
		return;
	}
	ck_assert_int_eq(chmod(tmpdir, 0777), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		snprintf(mine, sizeof(mine), "%s/mine", tmpdir);
		if (spool_prepare(mine, 65534, 65534, err, sizeof(err)) != 0)
			_exit(11);
		/* qdir belongs to root: not ours to prepare (its index/ is
		 * not even readable: "Permission denied"). */
		err[0] = '\0';
		if (spool_prepare(qdir, 65534, 65534, err, sizeof(err)) == 0)
			_exit(12);
		_exit(strstr(err, "owned by") || strstr(err, "denied") ? 0 : 13);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}
END_TEST

START_TEST(test_commit_sync_roundtrip)
{
	struct spool *sp = open_spool(0, 0, false);
	struct envelope in, out;
	struct spool_msg *m;
	char err[256] = "", id[SPOOL_ID_SIZE];
	size_t n = 200000;	/* more than one write buffer */

	m = write_msg(sp, n, 3);
	snprintf(id, sizeof(id), "%s", spool_msg_id(m));
	ck_assert_uint_eq(strlen(id), SPOOL_ID_LEN);
	make_env(&in, 1, 3);
	in.size = 1;		/* the spool records the file's size */
	ck_assert_msg(spool_msg_commit_sync(sp, m, &in, err, sizeof(err)) == SPOOL_OK, "%s", err);
	envelope_init(&out);
	ck_assert_msg(spool_envelope_get(sp, id, &out, err, sizeof(err)) == SPOOL_OK, "%s", err);
	ck_assert_str_eq(out.sender, in.sender);
	ck_assert_uint_eq(out.nrcpt, 3);
	ck_assert_str_eq(out.rcpts[2].addr, in.rcpts[2].addr);
	ck_assert_str_eq(out.rcpts[1].orcpt, "rfc822;orig@example.com");
	ck_assert_str_eq(out.helo, "client.example");
	ck_assert_uint_eq(out.size, n);
	ck_assert_int_eq(out.arrival, in.arrival);
	check_file(sp, id, n, 3);
	ck_assert_uint_eq(spool_commit_pending(sp), 0);
	ck_assert_int_eq(spool_envelope_get(sp, "00000000000000", &out, err, sizeof(err)),
	                 SPOOL_NOTFOUND);
	ck_assert_int_eq(spool_envelope_get(sp, "../etc/passwd", &out, err, sizeof(err)),
	                 SPOOL_NOTFOUND);
	envelope_free(&in);
	envelope_free(&out);
	spool_close(sp);
}
END_TEST

/* 200 messages through the thread pool and the eventfd. */
START_TEST(test_commit_async)
{
	struct spool *sp = open_spool(8, 0, false);
	struct cb_rec *recs;
	struct envelope out;
	char err[256] = "";
	int i;

	recs = commit_many(sp, 200, 1500, 2);
	ck_assert_uint_eq(spool_commit_pending(sp), 200);
	ck_assert_uint_eq(drain(sp), 200);
	assert_all_ok(recs, 200);
	ck_assert_uint_eq(spool_commit_dispatch(sp), 0);
	ck_assert_int_eq(count_envelopes(sp), 200);
	envelope_init(&out);
	for (i = 0; i < 200; i += 37) {
		ck_assert_int_eq(spool_envelope_get(sp, recs[i].id, &out, err, sizeof(err)), SPOOL_OK);
		ck_assert_int_eq(out.arrival, 1700000000000000ll + i);
		ck_assert_uint_eq(out.size, 1500);
		check_file(sp, recs[i].id, 1500, (unsigned)i);
	}
	envelope_free(&out);
	free(recs);
	spool_close(sp);
}
END_TEST

/* No threads: the work is done inside spool_msg_commit(), the callback
 * still comes only from spool_commit_dispatch(). */
START_TEST(test_commit_no_threads)
{
	struct spool *sp = open_spool(0, 0, false);
	struct pollfd pfd = { 0, POLLIN, 0 };
	struct cb_rec *recs;

	recs = commit_many(sp, 5, 100, 1);
	ck_assert_uint_eq(spool_commit_pending(sp), 5);
	ck_assert_int_eq(recs[0].calls, 0);
	pfd.fd = spool_commit_fd(sp);
	ck_assert_int_eq(poll(&pfd, 1, 0), 1);
	ck_assert_uint_eq(spool_commit_dispatch(sp), 5);
	assert_all_ok(recs, 5);
	ck_assert_uint_eq(spool_commit_pending(sp), 0);
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);	/* the eventfd was reset */
	ck_assert_int_eq(count_envelopes(sp), 5);
	free(recs);
	spool_close(sp);
}
END_TEST

START_TEST(test_abort)
{
	struct spool *sp = open_spool(2, 0, false);
	struct spool_msg *m;
	char id[SPOOL_ID_SIZE];

	m = write_msg(sp, 70000, 1);
	snprintf(id, sizeof(id), "%s", spool_msg_id(m));
	ck_assert(file_exists(sp, id));
	spool_msg_abort(m);
	ck_assert(!file_exists(sp, id));
	ck_assert_int_eq(count_envelopes(sp), 0);
	spool_close(sp);
}
END_TEST

/* A write error (here: the file size limit) sticks, and the commit fails
 * through the callback with the file removed. */
START_TEST(test_sticky_write_error)
{
	struct spool *sp = open_spool(_i ? 2 : 0, 0, false);
	struct rlimit rl = { 100000, RLIM_INFINITY };
	struct cb_rec rec = { "", 0, SPOOL_OK };
	struct envelope e;
	struct spool_msg *m;
	char chunk[4096];
	int i;
	enum spool_result r = SPOOL_OK;

	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	m = spool_msg_create(sp, NULL, 0);
	ck_assert_ptr_nonnull(m);
	snprintf(rec.id, sizeof(rec.id), "%s", spool_msg_id(m));
	memset(chunk, 'x', sizeof(chunk));
	for (i = 0; i < 100 && r == SPOOL_OK; i++)
		r = spool_msg_write(m, chunk, sizeof(chunk));
	ck_assert_int_eq(r, SPOOL_ERROR);
	ck_assert_int_eq(spool_msg_write(m, chunk, 1), SPOOL_ERROR);
	make_env(&e, 0, 1);
	spool_msg_commit(sp, m, &e, record_cb, &rec);
	envelope_free(&e);
	ck_assert_uint_eq(drain(sp), 1);
	ck_assert_int_eq(rec.calls, 1);
	ck_assert_int_eq(rec.r, SPOOL_ERROR);
	ck_assert(!file_exists(sp, rec.id));
	ck_assert_int_eq(count_envelopes(sp), 0);
	spool_close(sp);
}
END_TEST

START_TEST(test_remove)
{
	struct spool *sp = open_spool(0, 0, false);
	struct envelope e;
	struct spool_msg *m;
	char id[SPOOL_ID_SIZE], err[256] = "";

	m = write_msg(sp, 10, 0);
	snprintf(id, sizeof(id), "%s", spool_msg_id(m));
	make_env(&e, 0, 1);
	ck_assert_int_eq(spool_msg_commit_sync(sp, m, &e, err, sizeof(err)), SPOOL_OK);
	ck_assert_msg(spool_remove(sp, id, err, sizeof(err)) == SPOOL_OK, "%s", err);
	ck_assert(!file_exists(sp, id));
	ck_assert_int_eq(spool_envelope_get(sp, id, &e, err, sizeof(err)), SPOOL_NOTFOUND);
	ck_assert_int_eq(spool_remove(sp, id, err, sizeof(err)), SPOOL_NOTFOUND);
	ck_assert_int_eq(spool_remove(sp, "not-an-id", err, sizeof(err)), SPOOL_NOTFOUND);
	/* Without an envelope a file may be a commit in flight: left alone. */
	m = write_msg(sp, 10, 0);
	snprintf(id, sizeof(id), "%s", spool_msg_id(m));
	ck_assert_int_eq(spool_remove(sp, id, err, sizeof(err)), SPOOL_NOTFOUND);
	ck_assert(file_exists(sp, id));
	spool_msg_abort(m);
	envelope_free(&e);
	spool_close(sp);
}
END_TEST

START_TEST(test_recover)
{
	struct spool *sp = open_spool(0, 0, false);
	struct spool_recover_stats st;
	struct spool_msg *m;
	struct envelope e;
	char ids[3][SPOOL_ID_SIZE], path[512], err[256] = "";
	int i, fd;

	for (i = 0; i < 3; i++) {
		m = write_msg(sp, 100, (unsigned)i);
		snprintf(ids[i], sizeof(ids[i]), "%s", spool_msg_id(m));
		make_env(&e, i, 1);
		ck_assert_int_eq(spool_msg_commit_sync(sp, m, &e, err, sizeof(err)), SPOOL_OK);
		envelope_free(&e);
	}
	/* An orphan: a well-formed id with no envelope (a crash before commit). */
	snprintf(path, sizeof(path), "%s/msg/0000000000ABCD", qdir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	/* Not an id: kept, with a warning. */
	snprintf(path, sizeof(path), "%s/msg/.keep", qdir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	/* An envelope whose file is gone. */
	ck_assert_int_eq(spool_msg_path(sp, ids[1], path, sizeof(path)), 0);
	ck_assert_int_eq(unlink(path), 0);

	ck_assert_msg(spool_recover(sp, &st, err, sizeof(err)) == SPOOL_OK, "%s", err);
	ck_assert_uint_eq(st.envelopes, 3);
	ck_assert_uint_eq(st.orphan_files, 1);
	ck_assert_uint_eq(st.missing_files, 1);
	ck_assert(!file_exists(sp, "0000000000ABCD"));
	snprintf(path, sizeof(path), "%s/msg/.keep", qdir);
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert(file_exists(sp, ids[0]));
	ck_assert(file_exists(sp, ids[2]));
	/* A second pass finds nothing new to remove. */
	ck_assert_int_eq(spool_recover(sp, &st, err, sizeof(err)), SPOOL_OK);
	ck_assert_uint_eq(st.orphan_files, 0);
	ck_assert_uint_eq(st.missing_files, 1);
	spool_close(sp);
}
END_TEST

/* A 64 KiB map must grow (MDB_MAP_FULL, doubled, retried) until all fit. */
START_TEST(test_map_growth)
{
	struct spool *sp = open_spool(_i ? 4 : 0, 64 * 1024, false);
	struct cb_rec *recs;
	struct stat st;
	char path[512];

	recs = commit_many(sp, 300, 10, 40);	/* ~2.5 KiB envelopes */
	ck_assert_uint_eq(drain(sp), 300);
	assert_all_ok(recs, 300);
	ck_assert_int_eq(count_envelopes(sp), 300);
	snprintf(path, sizeof(path), "%s/index/data.mdb", qdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_gt(st.st_size, 512 * 1024);
	free(recs);
	spool_close(sp);
	/* Reopening with the small configured size keeps what it grew to. */
	sp = open_spool(0, 64 * 1024, false);
	recs = commit_many(sp, 10, 10, 40);
	ck_assert_uint_eq(drain(sp), 10);
	assert_all_ok(recs, 10);
	ck_assert_int_eq(count_envelopes(sp), 310);
	free(recs);
	spool_close(sp);
}
END_TEST

/* Another process grows the map: our readers and writer adopt it
 * (MDB_MAP_RESIZED). */
START_TEST(test_map_resized_elsewhere)
{
	struct spool *sp, *csp;
	struct cb_rec *recs;
	int go[2], status;
	char b;
	pid_t pid;

	/* Create the env small, before either process holds it open. */
	sp = open_spool(0, 64 * 1024, false);
	spool_close(sp);
	ck_assert_int_eq(pipe(go), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(go[1]);
		if (read(go[0], &b, 1) != 1)
			_exit(10);
		csp = open_spool(2, 0, false);
		recs = commit_many(csp, 300, 10, 40);
		drain(csp);
		assert_all_ok(recs, 300);
		spool_close(csp);
		_exit(0);
	}
	close(go[0]);
	sp = open_spool(0, 0, false);
	ck_assert_int_eq(count_envelopes(sp), 0);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	close(go[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	ck_assert_int_eq(count_envelopes(sp), 300);
	recs = commit_many(sp, 5, 10, 40);
	ck_assert_uint_eq(drain(sp), 5);
	assert_all_ok(recs, 5);
	ck_assert_int_eq(count_envelopes(sp), 305);
	free(recs);
	spool_close(sp);
}
END_TEST

/* spool_close() finishes pending commits (without callbacks), and a new
 * spool sees every one of them. */
START_TEST(test_reopen_durable)
{
	struct spool *sp = open_spool(4, 0, false);
	struct cb_rec *recs;
	int i;

	recs = commit_many(sp, 50, 500, 1);
	spool_close(sp);
	for (i = 0; i < 50; i++)
		ck_assert_int_eq(recs[i].calls, 0);
	sp = open_spool(4, 0, false);
	ck_assert_int_eq(count_envelopes(sp), 50);
	for (i = 0; i < 50; i++)
		check_file(sp, recs[i].id, 500, (unsigned)i);
	free(recs);
	spool_close(sp);
	/* A read-only spool lists, and refuses to write. */
	sp = open_spool(4, 0, true);
	ck_assert_int_eq(count_envelopes(sp), 50);
	ck_assert_ptr_null(spool_msg_create(sp, NULL, 0));
	ck_assert_int_eq(spool_recover(sp, NULL, NULL, 0), SPOOL_ERROR);
	spool_close(sp);
}
END_TEST

/* A read-only open of a spool nobody has written yet is an empty queue. */
START_TEST(test_readonly_fresh)
{
	struct spool *sp = open_spool(0, 0, true);
	struct envelope e;

	ck_assert_int_eq(count_envelopes(sp), 0);
	envelope_init(&e);
	ck_assert_int_eq(spool_envelope_get(sp, "00000000000001", &e, NULL, 0), SPOOL_NOTFOUND);
	spool_close(sp);
}
END_TEST

static int
stop_after_two(void *arg, const char *id, const struct envelope *env)
{
	int *n = arg;

	(void)id;
	(void)env;
	return ++*n == 2;
}

START_TEST(test_walk_stop)
{
	struct spool *sp = open_spool(0, 0, false);
	struct cb_rec *recs = commit_many(sp, 5, 1, 1);
	int n = 0;

	drain(sp);
	ck_assert_int_eq(spool_walk(sp, stop_after_two, &n, NULL, 0), SPOOL_OK);
	ck_assert_int_eq(n, 2);
	free(recs);
	spool_close(sp);
}
END_TEST

/* Several processes create ids at once: O_EXCL keeps them unique. */
START_TEST(test_ids_across_processes)
{
	enum { NPROC = 4, PER = 300 };
	struct dirent *de;
	pid_t pids[NPROC];
	char path[512];
	int i, j, status, files = 0;
	DIR *d;

	for (i = 0; i < NPROC; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			struct spool *sp = open_spool(0, 0, false);

			for (j = 0; j < PER; j++)
				if (spool_msg_create(sp, NULL, 0) == NULL)
					_exit(1);	/* leaked on purpose: the files stay */
			_exit(0);
		}
	}
	for (i = 0; i < NPROC; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	snprintf(path, sizeof(path), "%s/msg", qdir);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		files += de->d_name[0] != '.';
	closedir(d);
	ck_assert_int_eq(files, NPROC * PER);
}
END_TEST

static Suite *
spool_suite(void)
{
	Suite *s = suite_create("spool");
	TCase *tc = tcase_create("spool");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_prepare_modes);
	tcase_add_test(tc, test_prepare_unprivileged);
	tcase_add_test(tc, test_commit_sync_roundtrip);
	tcase_add_test(tc, test_commit_async);
	tcase_add_test(tc, test_commit_no_threads);
	tcase_add_test(tc, test_abort);
	tcase_add_loop_test(tc, test_sticky_write_error, 0, 2);
	tcase_add_test(tc, test_remove);
	tcase_add_test(tc, test_recover);
	tcase_add_loop_test(tc, test_map_growth, 0, 2);
	tcase_add_test(tc, test_map_resized_elsewhere);
	tcase_add_test(tc, test_reopen_durable);
	tcase_add_test(tc, test_readonly_fresh);
	tcase_add_test(tc, test_walk_stop);
	tcase_add_test(tc, test_ids_across_processes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(spool_suite());
	int failed;

	log_open("spool_test", LOG_SINK_STDERR, NULL);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
