/* Unit tests for delivery/local_mailbox.c: the content filter (one row per
 * input, fed in pieces of every size into output buffers from the
 * smallest allowed to roomy), then Maildir and mbox delivery in a mkdtemp
 * directory: exact bytes, names, locking, refusals and error classes.
 * Tests that need a non-root uid (permissions, RLIMIT_FSIZE) run through
 * local_run_as() as uid 65534. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "delivery/local_command.h"
#include "delivery/local_mailbox.h"

#define NOBODY 65534
#define ARRIVAL_US (1700000000LL * 1000000)	/* Tue Nov 14 22:13:20 2023 UTC */
#define ARRIVAL_ASC "Tue Nov 14 22:13:20 2023"

/* snprintf that must not cut: every path and expected text fits. */
static int __attribute__((format(printf, 3, 4)))
fmt_into(char *dst, size_t dstsz, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, dstsz, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < dstsz, "fmt_into: %s does not fit", fmt);
	return n;
}

/* ---- the filter ---- */

#define Q LOCAL_FILTER_QUOTE_FROM
#define ROW(in, flags, out) { in, sizeof(in) - 1, flags, out, sizeof(out) - 1 }

static const struct filter_row {
	const char *in;
	size_t inlen;
	unsigned flags;
	const char *out;
	size_t outlen;
} filter_rows[] = {
	ROW("", 0, ""),
	ROW("", Q, ""),
	ROW("a\r\nb\r\n", 0, "a\nb\n"),
	ROW("a\r\nb\r\n", Q, "a\nb\n"),
	/* an incomplete last line gets its LF */
	ROW("a", 0, "a\n"),
	ROW("a\r\nb", 0, "a\nb\n"),
	/* a bare CR is content, also at the very end */
	ROW("a\rb\r\n", 0, "a\rb\n"),
	ROW("a\r", 0, "a\r\n"),
	ROW("\r", 0, "\r\n"),
	ROW("\r\r\n", 0, "\r\n"),
	ROW("\r\r\r\n", Q, "\r\r\n"),
	ROW("\r\n\r\n", 0, "\n\n"),
	/* a bare LF ends a line too */
	ROW("a\nb", 0, "a\nb\n"),
	ROW("a\nFrom x", Q, "a\n>From x\n"),
	/* "From " at a line start, and nothing else, is quoted */
	ROW("From x\r\n", 0, "From x\n"),
	ROW("From x\r\n", Q, ">From x\n"),
	ROW("From \r\n", Q, ">From \n"),
	ROW("From From \r\n", Q, ">From From \n"),
	ROW("x\r\nFrom y\r\nFrom z", Q, "x\n>From y\n>From z\n"),
	ROW("Subject: x\r\n\r\nFrom me\r\n", Q, "Subject: x\n\n>From me\n"),
	ROW("\r\nFrom \r\n", Q, "\n>From \n"),
	ROW("From: x\r\n", Q, "From: x\n"),
	ROW("From\r\n", Q, "From\n"),
	ROW("From", Q, "From\n"),
	ROW("Fro\r\n", Q, "Fro\n"),
	ROW("Fr\rom x\r\n", Q, "Fr\rom x\n"),
	ROW(" From x\r\n", Q, " From x\n"),
	ROW(">From x\r\n", Q, ">From x\n"),
	ROW("FFrom x\r\n", Q, "FFrom x\n"),
	ROW("from x\r\n", Q, "from x\n"),
	ROW("\rFrom x\r\n", Q, "\rFrom x\n"),
	ROW("a From x\r\n", Q, "a From x\n"),
	/* NUL and 8-bit bytes are content */
	ROW("a\0From x\r\n\0", Q, "a\0From x\n\0\n"),
	ROW("\0From\r\n", Q, "\0From\n"),
	ROW("From\0 x\r\n", Q, "From\0 x\n"),
	ROW("caf\xc3\xa9\r\n\xff\r\n", 0, "caf\xc3\xa9\n\xff\n"),
};

/* Filter in pieces of step bytes through a buf of outmax bytes, draining
 * it into got whenever the filter stops short. */
static void
filter_run(const struct filter_row *row, size_t step, size_t outmax, struct buf *got)
{
	struct local_filter f;
	struct buf out;
	size_t pos = 0, n, took;
	bool sane = true;

	buf_init(&out, outmax);
	buf_reset(got);
	local_mailbox_filter_init(&f, row->flags);
	while (pos < row->inlen && sane) {
		n = row->inlen - pos < step ? row->inlen - pos : step;
		took = local_mailbox_filter_feed(&f, row->in + pos, n, &out);
		/* stopping short needs a nearly full buffer; progress when drained */
		sane = took <= n && (took == n || buf_room(&out) < LOCAL_FILTER_STEP_MAX) &&
		       (took > 0 || buf_len(&out) > 0) &&
		       buf_append(got, buf_data(&out), buf_len(&out)) == BUF_OK;
		pos += took;
		buf_reset(&out);
	}
	ck_assert_msg(sane, "step %zu outmax %zu: bad progress at %zu", step, outmax, pos);
	ck_assert_int_eq(local_mailbox_filter_finish(&f, &out), BUF_OK);
	ck_assert_int_eq(buf_append(got, buf_data(&out), buf_len(&out)), BUF_OK);
	ck_assert_uint_eq(f.in, row->inlen);
	buf_free(&out);
}

START_TEST(test_filter_rows)
{
	static const size_t outmaxes[] = { LOCAL_FILTER_STEP_MAX, LOCAL_FILTER_STEP_MAX + 1, 13, 4096 };
	const struct filter_row *row = &filter_rows[_i];
	size_t step, m;
	struct buf got;

	buf_init(&got, 4096);
	for (m = 0; m < sizeof(outmaxes) / sizeof(outmaxes[0]); m++) {
		for (step = 1; step <= (row->inlen ? row->inlen : 1); step++) {
			filter_run(row, step, outmaxes[m], &got);
			ck_assert_msg(buf_len(&got) == row->outlen &&
			                  memcmp(buf_data(&got), row->out, row->outlen) == 0,
			              "row %d step %zu outmax %zu: got \"%.*s\"", _i, step, outmaxes[m],
			              (int)buf_len(&got), buf_data(&got));
		}
	}
	buf_free(&got);
}
END_TEST

/* Finishing needs LOCAL_FILTER_STEP_MAX of room and appends nothing otherwise. */
START_TEST(test_filter_finish_room)
{
	struct local_filter f;
	struct buf out;

	buf_init(&out, LOCAL_FILTER_STEP_MAX);
	local_mailbox_filter_init(&f, Q);
	ck_assert_uint_eq(local_mailbox_filter_feed(&f, "From", 4, &out), 4);
	ck_assert_uint_eq(buf_len(&out), 0);	/* held */
	ck_assert_int_eq(buf_append(&out, "x", 1), BUF_OK);
	ck_assert_int_eq(local_mailbox_filter_finish(&f, &out), BUF_TOO_BIG);
	ck_assert_uint_eq(buf_len(&out), 1);
	buf_reset(&out);
	ck_assert_int_eq(local_mailbox_filter_finish(&f, &out), BUF_OK);
	ck_assert(buf_len(&out) == 5 && memcmp(buf_data(&out), "From\n", 5) == 0);
	buf_free(&out);
}
END_TEST

/* ---- error classes ---- */

static const struct errno_row {
	int err;
	const char *err_class;
	const char *enh;
} errno_rows[] = {
	{ EDQUOT, "quota", "4.2.2" },
	{ ENOSPC, "quota", "4.2.2" },
	{ EFBIG, "quota", "4.2.2" },
	{ EAGAIN, "", "4.2.0" },
	{ ESTALE, "", "4.2.0" },
	{ EACCES, "", "4.9.9" },	/* the caller's default */
	{ EIO, "", "4.9.9" },
};

START_TEST(test_result_errno)
{
	const struct errno_row *row = &errno_rows[_i];
	struct local_result r;
	char want[LOCAL_TEXT_MAX];

	local_result_errno(&r, row->err, "4.9.9", "create %s", "x");
	ck_assert_int_eq(r.status, LOCAL_TEMPFAIL);
	ck_assert_str_eq(r.err_class, row->err_class);
	ck_assert_str_eq(r.enh, row->enh);
	fmt_into(want, sizeof(want), "create x: %s", strerror(row->err));
	ck_assert_str_eq(r.text, want);
	local_result_prepend(&r, "maildir delivery failed: ");
	ck_assert_int_eq(strncmp(r.text, "maildir delivery failed: create x: ", 35), 0);
}
END_TEST

/* A prepended text too long for the line is cut, never overflows. */
START_TEST(test_result_prepend_cut)
{
	struct local_result r;
	char big[LOCAL_TEXT_MAX * 2];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	local_result_set(&r, LOCAL_OK, NULL, "2.0.0", "%s", big);
	ck_assert_uint_eq(strlen(r.text), LOCAL_TEXT_MAX - 1);
	local_result_prepend(&r, "x: ");
	ck_assert_uint_eq(strlen(r.text), LOCAL_TEXT_MAX - 1);
	ck_assert_int_eq(strncmp(r.text, "x: aaa", 6), 0);
}
END_TEST

/* ---- a scratch directory and message files ---- */

static char tmpdir[64];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
setup(void)
{
	fmt_into(tmpdir, sizeof(tmpdir), "/tmp/tern-local-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(chmod(tmpdir, 0755), 0);
	setenv("TZ", "UTC", 1);
	tzset();
}

static void
teardown(void)
{
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
path_in(char *dst, size_t dstsz, const char *name)
{
	ck_assert_int_lt(fmt_into(dst, dstsz, "%s/%s", tmpdir, name), (int)dstsz);
}

static void
write_file(const char *path, const char *p, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
	close(fd);
}

/* A spool file with these bytes, open read-only at offset 0. */
static int
spool_file(const char *p, size_t n)
{
	char path[256];
	static unsigned seq;
	int fd;

	fmt_into(path, sizeof(path), "%s/spool.%u", tmpdir, seq++);
	write_file(path, p, n, 0644);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* The whole file (malloc'd, NUL added); *len its size. */
static char *
read_all(const char *path, size_t *len)
{
	struct stat st;
	char *p;
	int fd;

	fd = open(path, O_RDONLY);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(fstat(fd, &st), 0);
	p = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(read(fd, p, (size_t)st.st_size), st.st_size);
	p[st.st_size] = '\0';
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

static void
assert_file(const char *path, const char *want, size_t wantlen)
{
	size_t len;
	char *got = read_all(path, &len);

	ck_assert_msg(len == wantlen && memcmp(got, want, len) == 0, "%s: got %zu bytes \"%s\"", path,
	              len, got);
	free(got);
}

/* Names in a directory (not . and ..): count, and the first in first. */
static int
dir_list(const char *dir, char *first, size_t firstsz)
{
	struct dirent *de;
	DIR *dp = opendir(dir);
	int n = 0;

	ck_assert_msg(dp != NULL, "opendir %s: %s", dir, strerror(errno));
	while ((de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n++ == 0 && first)
			fmt_into(first, firstsz, "%s", de->d_name);
	}
	closedir(dp);
	return n;
}

static void
delivery_init(struct local_delivery *d)
{
	memset(d, 0, sizeof(*d));
	d->sender = "s@example.org";
	d->recipient = "bob@example.com";
	d->user = "bob";
	d->arrival_us = ARRIVAL_US;
	d->maildir_seq = 7;
}

/* Through local_run_as(): one delivery, optionally under a file size limit. */
struct deliver_job {
	int msgfd;
	const struct local_delivery *d;
	const char *path;
	bool mbox;
	rlim_t fsize;		/* 0: no limit */
};

static enum local_status
deliver_fn(void *arg, struct local_result *out)
{
	struct deliver_job *j = arg;
	struct rlimit rl;

	if (j->fsize) {
		rl.rlim_cur = rl.rlim_max = j->fsize;
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0) {
			local_result_set(out, LOCAL_TEMPFAIL, NULL, "4.3.0", "setrlimit: %s", strerror(errno));
			return out->status;
		}
	}
	return j->mbox ? local_mbox_deliver(j->msgfd, j->d, j->path, out)
	               : local_maildir_deliver(j->msgfd, j->d, j->path, out);
}

static void
make_dir(const char *path, mode_t mode, uid_t uid)
{
	ck_assert_int_eq(mkdir(path, mode), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
	ck_assert_int_eq(chown(path, uid, uid), 0);
}

static const char msg[] = "Received: from x\r\nFrom: a@example.org\r\nSubject: hi\r\n\r\n"
                          "body\r\nFrom me\r\n.\r\nlast";
static const char msg_lf[] = "Received: from x\nFrom: a@example.org\nSubject: hi\n\n"
                             "body\nFrom me\n.\nlast\n";
#define HDRS "Return-Path: <s@example.org>\nDelivered-To: bob@example.com\n"

/* ---- Maildir ---- */

static void
assert_mode(const char *path, mode_t mode)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	ck_assert_msg((st.st_mode & 07777) == mode, "%s: mode %o", path, st.st_mode & 07777);
}

START_TEST(test_maildir_basic)
{
	char md[256], dir[300], name[512], file[800], want[1024];
	struct local_delivery d;
	struct local_result r;
	regmatch_t m[3];
	regex_t re;
	size_t len;
	char pat[256];
	int fd;

	delivery_init(&d);
	path_in(md, sizeof(md), "home/bob/Maildir/");
	fd = spool_file(msg, sizeof(msg) - 1);
	ck_assert_int_eq(local_maildir_deliver(fd, &d, md, &r), LOCAL_OK);
	ck_assert_str_eq(r.enh, "2.0.0");
	ck_assert_str_eq(r.err_class, "");
	ck_assert_str_eq(r.text, "delivered to maildir");
	/* the Maildir, its parents and its three directories, all 0700 */
	path_in(dir, sizeof(dir), "home");
	assert_mode(dir, 0700);
	fmt_into(dir, sizeof(dir), "%s", md);
	assert_mode(dir, 0700);
	fmt_into(dir, sizeof(dir), "%scur", md);
	assert_mode(dir, 0700);
	ck_assert_int_eq(dir_list(dir, NULL, 0), 0);
	fmt_into(dir, sizeof(dir), "%stmp", md);
	assert_mode(dir, 0700);
	ck_assert_int_eq(dir_list(dir, NULL, 0), 0);
	fmt_into(dir, sizeof(dir), "%snew", md);
	assert_mode(dir, 0700);
	ck_assert_int_eq(dir_list(dir, name, sizeof(name)), 1);
	/* exactly the headers, then the message with LF line ends */
	fmt_into(file, sizeof(file), "%s/%s", dir, name);
	len = (size_t)fmt_into(want, sizeof(want), "%s%s", HDRS, msg_lf);
	assert_file(file, want, len);
	assert_mode(file, 0600);
	/* TIME.M<usec>P<pid>Q<seq>.HOST,S=<size> */
	fmt_into(pat, sizeof(pat), "^[0-9]+\\.M[0-9]+P%ldQ7\\.([^/:]+),S=([0-9]+)$", (long)getpid());
	ck_assert_int_eq(regcomp(&re, pat, REG_EXTENDED), 0);
	ck_assert_msg(regexec(&re, name, 3, m, 0) == 0, "name %s", name);
	ck_assert_uint_eq(strtoull(name + m[2].rm_so, NULL, 10), len);
	regfree(&re);
	close(fd);
}
END_TEST

START_TEST(test_maildir_two_names)
{
	char md[256], dir[300], name[512];
	struct local_delivery d;
	struct local_result r;
	int fd, i;

	delivery_init(&d);
	path_in(md, sizeof(md), "Maildir");	/* no trailing slash: one is added */
	fd = spool_file(msg, sizeof(msg) - 1);
	/* the same seq every time: the names differ all the same */
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(local_maildir_deliver(fd, &d, md, &r), LOCAL_OK);
	fmt_into(dir, sizeof(dir), "%s/new", md);
	ck_assert_int_eq(dir_list(dir, name, sizeof(name)), 5);
	fmt_into(dir, sizeof(dir), "%s/tmp", md);
	ck_assert_int_eq(dir_list(dir, NULL, 0), 0);
	close(fd);
}
END_TEST

/* <> is Return-Path: <>; the original recipient is X-Original-To:; an
 * empty message is the headers alone; CR LF in a value is no header end. */
START_TEST(test_maildir_headers)
{
	static const char want[] = "Return-Path: <>\nX-Original-To: Bob@Example.COM\n"
	                           "Delivered-To: bob@example.com  x\n";
	char md[256], dir[300], name[512], file[800];
	struct local_delivery d;
	struct local_result r;
	int fd;

	delivery_init(&d);
	d.sender = "";
	d.original_recipient = "Bob@Example.COM";
	d.recipient = "bob@example.com\r\nx";
	path_in(md, sizeof(md), "Maildir/");
	fd = spool_file("", 0);
	ck_assert_int_eq(local_maildir_deliver(fd, &d, md, &r), LOCAL_OK);
	fmt_into(dir, sizeof(dir), "%snew", md);
	ck_assert_int_eq(dir_list(dir, name, sizeof(name)), 1);
	fmt_into(file, sizeof(file), "%s/%s", dir, name);
	assert_file(file, want, sizeof(want) - 1);
	fmt_into(file, sizeof(file), ",S=%zu", sizeof(want) - 1);
	ck_assert_msg(strstr(name, file) != NULL, "%s", name);
	close(fd);
}
END_TEST

/* A message of several megabytes, streamed: every line converted. */
START_TEST(test_maildir_big)
{
	char md[256], dir[300], name[512], file[800];
	struct local_delivery d;
	struct local_result r;
	struct buf in, want;
	size_t i;
	int fd;

	buf_init(&in, 8u << 20);
	buf_init(&want, 8u << 20);
	ck_assert_int_eq(buf_append_str(&want, HDRS), BUF_OK);
	for (i = 0; i < 60000; i++) {
		ck_assert_int_eq(buf_append_printf(&in, "%sline %zu with some text to fill it up\r\n",
		                                   i % 7 ? "" : "From ", i), BUF_OK);
		ck_assert_int_eq(buf_append_printf(&want, "%sline %zu with some text to fill it up\n",
		                                   i % 7 ? "" : "From ", i), BUF_OK);
	}
	delivery_init(&d);
	path_in(md, sizeof(md), "Maildir/");
	fd = spool_file(buf_data(&in), buf_len(&in));
	ck_assert_int_eq(local_maildir_deliver(fd, &d, md, &r), LOCAL_OK);
	fmt_into(dir, sizeof(dir), "%snew", md);
	ck_assert_int_eq(dir_list(dir, name, sizeof(name)), 1);
	fmt_into(file, sizeof(file), "%s/%s", dir, name);
	assert_file(file, buf_data(&want), buf_len(&want));
	buf_free(&in);
	buf_free(&want);
	close(fd);
}
END_TEST

/* A directory the recipient cannot write: temporary, 4.2.0, nothing left. */
START_TEST(test_maildir_unwritable)
{
	char ro[256], md[300];
	struct local_delivery d;
	struct local_result r;
	struct deliver_job j;

	delivery_init(&d);
	path_in(ro, sizeof(ro), "ro");
	make_dir(ro, 0755, 0);
	fmt_into(md, sizeof(md), "%s/Maildir/", ro);
	j = (struct deliver_job){ .msgfd = spool_file(msg, sizeof(msg) - 1), .d = &d, .path = md };
	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, NULL, 0, deliver_fn, &j, &r), LOCAL_TEMPFAIL);
	ck_assert_str_eq(r.enh, "4.2.0");
	ck_assert_str_eq(r.err_class, "");
	ck_assert_msg(strncmp(r.text, "maildir delivery failed: create maildir file ", 45) == 0 &&
	                  strstr(r.text, ": Permission denied") != NULL,
	              "%s", r.text);
	ck_assert_int_eq(dir_list(ro, NULL, 0), 0);
	close(j.msgfd);
}
END_TEST

/* A file size limit (EFBIG) is the quota class, and no file is left. */
START_TEST(test_maildir_quota)
{
	char home[256], md[300], dir[400];
	struct local_delivery d;
	struct local_result r;
	struct deliver_job j;
	char big[20000];

	memset(big, 'x', sizeof(big));
	delivery_init(&d);
	path_in(home, sizeof(home), "home");
	make_dir(home, 0700, NOBODY);
	fmt_into(md, sizeof(md), "%s/Maildir/", home);
	j = (struct deliver_job){ .msgfd = spool_file(big, sizeof(big)), .d = &d, .path = md,
		                  .fsize = 1000 };
	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, NULL, 0, deliver_fn, &j, &r), LOCAL_TEMPFAIL);
	ck_assert_str_eq(r.err_class, "quota");
	ck_assert_str_eq(r.enh, "4.2.2");
	ck_assert_str_eq(r.text, "maildir delivery failed: error writing message: File too large");
	fmt_into(dir, sizeof(dir), "%stmp", md);
	ck_assert_int_eq(dir_list(dir, NULL, 0), 0);
	/* new/ is made when the first message goes there */
	fmt_into(dir, sizeof(dir), "%snew", md);
	ck_assert_int_eq(access(dir, F_OK), -1);
	close(j.msgfd);
}
END_TEST

/* The spool file cannot be read: temporary 4.3.0, nothing in new/. */
START_TEST(test_maildir_read_error)
{
	char md[256], dir[300];
	struct local_delivery d;
	struct local_result r;
	int fd;

	delivery_init(&d);
	path_in(md, sizeof(md), "Maildir/");
	fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(local_maildir_deliver(fd, &d, md, &r), LOCAL_TEMPFAIL);
	ck_assert_str_eq(r.enh, "4.3.0");
	ck_assert_str_eq(r.text, "maildir delivery failed: error reading message: Is a directory");
	fmt_into(dir, sizeof(dir), "%stmp", md);
	ck_assert_int_eq(dir_list(dir, NULL, 0), 0);
	close(fd);
}
END_TEST

/* ---- mbox ---- */

#define FROM_LINE "From s@example.org  " ARRIVAL_ASC "\n"

START_TEST(test_mbox_two_messages)
{
	static const char want[] = FROM_LINE HDRS "Received: from x\nFrom: a@example.org\n"
	                           "Subject: hi\n\nbody\n>From me\n.\nlast\n\n"
	                           "From MAILER-DAEMON  " ARRIVAL_ASC "\n"
	                           "Return-Path: <>\nDelivered-To: bob@example.com\n"
	                           ">From here\n>From there\n From x\n>From y\nFromage\n\n";
	static const char msg2[] = "From here\r\nFrom there\r\n From x\r\n>From y\r\nFromage\r\n";
	char mbox[256], lock[300];
	struct local_delivery d;
	struct local_result r;
	int fd1, fd2;

	delivery_init(&d);
	path_in(mbox, sizeof(mbox), "bob");
	fd1 = spool_file(msg, sizeof(msg) - 1);
	fd2 = spool_file(msg2, sizeof(msg2) - 1);
	ck_assert_int_eq(local_mbox_deliver(fd1, &d, mbox, &r), LOCAL_OK);
	ck_assert_str_eq(r.enh, "2.0.0");
	ck_assert_str_eq(r.text, "delivered to mailbox");
	d.sender = "";
	ck_assert_int_eq(local_mbox_deliver(fd2, &d, mbox, &r), LOCAL_OK);
	assert_file(mbox, want, sizeof(want) - 1);
	assert_mode(mbox, 0600);
	fmt_into(lock, sizeof(lock), "%s.lock", mbox);
	ck_assert_int_eq(access(lock, F_OK), -1);
	close(fd1);
	close(fd2);
}
END_TEST

/* A symlink where the mailbox should be: permanent, nothing written
 * through it (also when it dangles: nothing created). */
START_TEST(test_mbox_symlink)
{
	char mbox[256], target[256], want[600];
	struct local_delivery d;
	struct local_result r;
	int fd;

	delivery_init(&d);
	path_in(mbox, sizeof(mbox), "bob");
	path_in(target, sizeof(target), "target");
	write_file(target, "keep\n", 5, 0600);
	ck_assert_int_eq(symlink(target, mbox), 0);
	fd = spool_file(msg, sizeof(msg) - 1);
	ck_assert_int_eq(local_mbox_deliver(fd, &d, mbox, &r), LOCAL_PERMFAIL);
	ck_assert_str_eq(r.enh, "5.2.0");
	fmt_into(want, sizeof(want), "cannot update mailbox %s for user bob. file is a symbolic link",
	         mbox);
	ck_assert_str_eq(r.text, want);
	assert_file(target, "keep\n", 5);
	ck_assert_int_eq(unlink(target), 0);
	ck_assert_int_eq(local_mbox_deliver(fd, &d, mbox, &r), LOCAL_PERMFAIL);
	ck_assert_int_eq(access(target, F_OK), -1);
	close(fd);
}
END_TEST

/* Other things that are not a mailbox: permanent 5.2.0, untouched. */
START_TEST(test_mbox_not_regular)
{
	char mbox[256], other[256];
	struct local_delivery d;
	struct local_result r;
	int fd;

	delivery_init(&d);
	fd = spool_file(msg, sizeof(msg) - 1);
	path_in(mbox, sizeof(mbox), "dir");
	ck_assert_int_eq(mkdir(mbox, 0700), 0);
	ck_assert_int_eq(local_mbox_deliver(fd, &d, mbox, &r), LOCAL_PERMFAIL);
	ck_assert_msg(strstr(r.text, "file is a directory") != NULL, "%s", r.text);

	path_in(mbox, sizeof(mbox), "fifo");
	ck_assert_int_eq(mkfifo(mbox, 0600), 0);
	ck_assert_int_eq(local_mbox_deliver(fd, &d, mbox, &r), LOCAL_PERMFAIL);
	ck_assert_str_eq(r.enh, "5.2.0");

	ck_assert_int_eq(local_mbox_deliver(fd, &d, "/dev/null", &r), LOCAL_PERMFAIL);
	ck_assert_str_eq(r.text, "cannot update mailbox /dev/null for user bob. "
	                         "destination /dev/null is not a regular file");

	path_in(mbox, sizeof(mbox), "linked");
	path_in(other, sizeof(other), "other");
	write_file(mbox, "", 0, 0600);
	ck_assert_int_eq(link(mbox, other), 0);
	ck_assert_int_eq(local_mbox_deliver(fd, &d, mbox, &r), LOCAL_PERMFAIL);
	ck_assert_str_eq(r.enh, "5.2.0");
	ck_assert_msg(strstr(r.text, "file has 2 hard links") != NULL, "%s", r.text);
	assert_file(other, "", 0);
	close(fd);
}
END_TEST

/* A mailbox owned by another user is deferred (strict_mailbox_ownership);
 * a "/file" target has no owner check, and /dev/null is fine there. */
START_TEST(test_mbox_owner_and_file)
{
	char mbox[256], want[600];
	struct local_delivery d;
	struct local_result r;
	int fd;

	delivery_init(&d);
	fd = spool_file(msg, sizeof(msg) - 1);
	path_in(mbox, sizeof(mbox), "bob");
	write_file(mbox, "", 0, 0600);
	ck_assert_int_eq(chown(mbox, NOBODY, NOBODY), 0);
	ck_assert_int_eq(local_mbox_deliver(fd, &d, mbox, &r), LOCAL_TEMPFAIL);
	ck_assert_str_eq(r.enh, "4.2.0");
	fmt_into(want, sizeof(want), "cannot update mailbox %s for user bob. destination %s is not "
	         "owned by recipient", mbox, mbox);
	ck_assert_str_eq(r.text, want);
	assert_file(mbox, "", 0);

	d.mbox_flags = LOCAL_MBOX_FILE;
	ck_assert_int_eq(local_mbox_deliver(fd, &d, mbox, &r), LOCAL_OK);
	fmt_into(want, sizeof(want), "delivered to file: %s", mbox);
	ck_assert_str_eq(r.text, want);
	ck_assert_int_eq(local_mbox_deliver(fd, &d, "/dev/null", &r), LOCAL_OK);

	ck_assert_int_eq(chmod(mbox, 0700), 0);
	ck_assert_int_eq(local_mbox_deliver(fd, &d, mbox, &r), LOCAL_PERMFAIL);
	ck_assert_str_eq(r.enh, "5.7.1");
	fmt_into(want, sizeof(want), "cannot append message to file %s: file is executable", mbox);
	ck_assert_str_eq(r.text, want);
	close(fd);
}
END_TEST

/* A lock file older than the stale time is broken; a fresh one is waited
 * for and, after the bounded attempts, left alone with a TEMPFAIL. */
START_TEST(test_mbox_dotlock)
{
	char mbox[256], lock[300], want[600];
	struct local_delivery d;
	struct local_result r;
	struct timespec t0, t1;
	int fd;

	delivery_init(&d);
	fd = spool_file(msg, sizeof(msg) - 1);
	path_in(mbox, sizeof(mbox), "bob");
	fmt_into(lock, sizeof(lock), "%s.lock", mbox);

	write_file(lock, "", 0, 0600);
	d.lock_attempts = 3;
	d.lock_delay_ms = 10;
	ck_assert_int_eq(local_mbox_deliver(fd, &d, mbox, &r), LOCAL_TEMPFAIL);
	ck_assert_str_eq(r.enh, "4.2.0");
	fmt_into(want, sizeof(want), "cannot update mailbox %s for user bob. unable to create lock "
	         "file %s: File exists", mbox, lock);
	ck_assert_str_eq(r.text, want);
	ck_assert_int_eq(access(lock, F_OK), 0);	/* not ours: kept */
	assert_file(mbox, "", 0);

	d.lock_attempts = 100;
	d.lock_delay_ms = 50;
	d.stale_lock_s = 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(local_mbox_deliver(fd, &d, mbox, &r), LOCAL_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_ge(t1.tv_sec - t0.tv_sec, 0);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 5);
	ck_assert_int_eq(access(lock, F_OK), -1);
	close(fd);
}
END_TEST

/* A kernel lock held by another process: TEMPFAIL after the attempts,
 * mailbox and dotlock as they were; delivered once it is released. */
START_TEST(test_mbox_fcntl_held)
{
	char mbox[256], lock[300], c = 0;
	struct local_delivery d;
	struct local_result r;
	int fd, up[2], down[2], status;
	pid_t pid;

	delivery_init(&d);
	fd = spool_file(msg, sizeof(msg) - 1);
	path_in(mbox, sizeof(mbox), "bob");
	fmt_into(lock, sizeof(lock), "%s.lock", mbox);
	write_file(mbox, "old\n", 4, 0600);
	ck_assert_int_eq(pipe(up), 0);
	ck_assert_int_eq(pipe(down), 0);
	if ((pid = fork()) == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int mfd = open(mbox, O_RDWR);

		if (mfd < 0 || fcntl(mfd, F_SETLKW, &fl) < 0)
			_exit(1);
		(void)!write(up[1], "L", 1);
		(void)!read(down[0], &c, 1);
		_exit(0);
	}
	ck_assert_int_eq(read(up[0], &c, 1), 1);
	d.lock_attempts = 3;
	d.lock_delay_ms = 20;
	ck_assert_int_eq(local_mbox_deliver(fd, &d, mbox, &r), LOCAL_TEMPFAIL);
	ck_assert_str_eq(r.enh, "4.2.0");
	ck_assert_str_eq(r.err_class, "");
	ck_assert_msg(strstr(r.text, ". unable to lock for exclusive access: Resource temporarily "
	                             "unavailable") != NULL, "%s", r.text);
	assert_file(mbox, "old\n", 4);
	ck_assert_int_eq(access(lock, F_OK), -1);
	ck_assert_int_eq(write(down[1], "G", 1), 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(local_mbox_deliver(fd, &d, mbox, &r), LOCAL_OK);
	close(fd);
}
END_TEST

/* As the recipient in a directory it cannot write: no dotlock (non-fatal),
 * the fcntl lock alone, delivered; a missing mailbox cannot be created
 * there (temporary). */
START_TEST(test_mbox_unwritable_dir)
{
	static const char want[] = FROM_LINE HDRS "Received: from x\nFrom: a@example.org\n"
	                           "Subject: hi\n\nbody\n>From me\n.\nlast\n\n";
	char dir[256], mbox[300], lock[320];
	struct local_delivery d;
	struct local_result r;
	struct deliver_job j;

	delivery_init(&d);
	path_in(dir, sizeof(dir), "spool");
	make_dir(dir, 0755, 0);
	fmt_into(mbox, sizeof(mbox), "%s/bob", dir);
	fmt_into(lock, sizeof(lock), "%s.lock", mbox);
	j = (struct deliver_job){ .msgfd = spool_file(msg, sizeof(msg) - 1), .d = &d, .path = mbox,
		                  .mbox = true };
	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, NULL, 0, deliver_fn, &j, &r), LOCAL_TEMPFAIL);
	ck_assert_str_eq(r.enh, "4.2.0");
	ck_assert_msg(strstr(r.text, "cannot create file exclusively: Permission denied") != NULL,
	              "%s", r.text);
	write_file(mbox, "", 0, 0600);
	ck_assert_int_eq(chown(mbox, NOBODY, NOBODY), 0);
	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, NULL, 0, deliver_fn, &j, &r), LOCAL_OK);
	ck_assert_int_eq(access(lock, F_OK), -1);
	assert_file(mbox, want, sizeof(want) - 1);
	close(j.msgfd);
}
END_TEST

/* Over the file size limit in the middle of a message: quota class, and
 * the mailbox is truncated back to the message before. */
START_TEST(test_mbox_quota_truncates)
{
	char dir[256], mbox[300], *before;
	struct local_delivery d;
	struct local_result r;
	struct deliver_job j;
	size_t len, len2;
	char big[20000];
	int bigfd;

	memset(big, 'x', sizeof(big));
	delivery_init(&d);
	path_in(dir, sizeof(dir), "home");
	make_dir(dir, 0700, NOBODY);
	fmt_into(mbox, sizeof(mbox), "%s/mbox", dir);
	j = (struct deliver_job){ .msgfd = spool_file(msg, sizeof(msg) - 1), .d = &d, .path = mbox,
		                  .mbox = true };
	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, NULL, 0, deliver_fn, &j, &r), LOCAL_OK);
	before = read_all(mbox, &len);
	bigfd = spool_file(big, sizeof(big));
	j.msgfd = bigfd;
	j.fsize = len + 3000;
	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, NULL, 0, deliver_fn, &j, &r), LOCAL_TEMPFAIL);
	ck_assert_str_eq(r.err_class, "quota");
	ck_assert_str_eq(r.enh, "4.2.2");
	ck_assert_msg(strstr(r.text, "for user bob. error writing message: File too large") != NULL,
	              "%s", r.text);
	assert_file(mbox, before, len);
	free(read_all(mbox, &len2));
	ck_assert_uint_eq(len2, len);
	free(before);
	close(bigfd);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("local_mailbox");
	TCase *tf = tcase_create("filter");
	TCase *tm = tcase_create("maildir");
	TCase *tb = tcase_create("mbox");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tf, test_filter_rows, 0,
	                    (int)(sizeof(filter_rows) / sizeof(filter_rows[0])));
	tcase_add_test(tf, test_filter_finish_room);
	tcase_add_loop_test(tf, test_result_errno, 0,
	                    (int)(sizeof(errno_rows) / sizeof(errno_rows[0])));
	tcase_add_test(tf, test_result_prepend_cut);
	suite_add_tcase(s, tf);

	tcase_add_checked_fixture(tm, setup, teardown);
	tcase_add_test(tm, test_maildir_basic);
	tcase_add_test(tm, test_maildir_two_names);
	tcase_add_test(tm, test_maildir_headers);
	tcase_add_test(tm, test_maildir_big);
	tcase_add_test(tm, test_maildir_unwritable);
	tcase_add_test(tm, test_maildir_quota);
	tcase_add_test(tm, test_maildir_read_error);
	suite_add_tcase(s, tm);

	tcase_add_checked_fixture(tb, setup, teardown);
	tcase_add_test(tb, test_mbox_two_messages);
	tcase_add_test(tb, test_mbox_symlink);
	tcase_add_test(tb, test_mbox_not_regular);
	tcase_add_test(tb, test_mbox_owner_and_file);
	tcase_add_test(tb, test_mbox_dotlock);
	tcase_add_test(tb, test_mbox_fcntl_held);
	tcase_add_test(tb, test_mbox_unwritable_dir);
	tcase_add_test(tb, test_mbox_quota_truncates);
	suite_add_tcase(s, tb);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
