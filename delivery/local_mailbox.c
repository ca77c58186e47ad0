/*
 * local_mailbox: Maildir and mbox delivery, the content filter and the
 * local result helpers (local_mailbox.h, doc/local.md).
 *
 * Error policy: every failure is a struct local_result, worded as
 * Postfix's local(8) words it; nothing here logs or exits (out of memory
 * is fatal()). Our own trouble (a file system error, a lock held too long)
 * is temporary; only a mailbox we must not write (a symlink, a directory,
 * a device, a hard-linked file) is permanent. Quota-like errors (EDQUOT,
 * ENOSPC, EFBIG) are temporary with the class "quota" and 4.2.2, so that
 * qmgr's retry rules decide when a full mailbox bounces (where Postfix
 * bounces EDQUOT and EFBIG at once with 5.2.2).
 *
 * Nothing here owns memory past a call; every descriptor opened is closed
 * and every lock taken is released on every path.
 */
#include "delivery/local_mailbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define LOCAL_HOSTNAME_MAX 256	/* gethostname() buffer */
#define LOCAL_MAILDIR_NAME_TRIES 5	/* unique names tried on EEXIST */
#define LOCAL_DIR_MODE 0700	/* Maildir directories, as Postfix's make_dirs */
#define LOCAL_FILE_MODE 0600	/* new mailbox and Maildir files */
#define LOCAL_HEADERS_MAX (16u * 1024)	/* headers and a From_ line: four addresses */

/* What a local mailbox delivery writes after the headers. */
#define MAILBOX_MBOX 0x01u	/* From_ line, ">From " quoting, a blank line after */

enum mailbox_copy_result {
	MAILBOX_COPY_OK = 0,
	MAILBOX_COPY_READ_ERROR = -1,	/* the spool file: errno in *err */
	MAILBOX_COPY_WRITE_ERROR = -2,	/* the destination: errno in *err */
};

/* ---- results ---- */

void
local_result_set(struct local_result *r, enum local_status status, const char *err_class,
                 const char *enh, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	snprintf(r->err_class, sizeof(r->err_class), "%s", err_class ? err_class : "");
	snprintf(r->enh, sizeof(r->enh), "%s", enh);
	va_start(ap, fmt);
	/* A text cut at LOCAL_TEXT_MAX is still one good line. */
	(void)vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

static bool
local_quota_errno(int err)
{
	return err == EDQUOT || err == ENOSPC || err == EFBIG;
}

void
local_result_errno(struct local_result *r, int err, const char *def_enh, const char *fmt, ...)
{
	char what[LOCAL_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (local_quota_errno(err))
		local_result_set(r, LOCAL_TEMPFAIL, "quota", "4.2.2", "%s: %s", what, strerror(err));
	else
		local_result_set(r, LOCAL_TEMPFAIL, NULL,
		                 err == EAGAIN || err == ESTALE ? "4.2.0" : def_enh, "%s: %s", what,
		                 strerror(err));
}

void
local_result_prepend(struct local_result *r, const char *fmt, ...)
{
	char head[LOCAL_TEXT_MAX];
	size_t hl, tl;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	/* Too long for one line: the end of the old text is cut. */
	hl = strlen(head);
	tl = strnlen(r->text, sizeof(r->text) - 1);
	if (hl + tl > sizeof(r->text) - 1)
		tl = sizeof(r->text) - 1 - hl;
	memmove(r->text + hl, r->text, tl);
	memcpy(r->text, head, hl);
	r->text[hl + tl] = '\0';
}

/* ---- the content filter ---- */

static const char local_from[] = "From ";	/* RFC 4155: the line mbox readers split on */

void
local_mailbox_filter_init(struct local_filter *f, unsigned flags)
{
	memset(f, 0, sizeof(*f));
	f->flags = flags;
	f->bol = true;
}

/* The caller checked the room (LOCAL_FILTER_STEP_MAX per input byte). */
static void
filter_put(struct buf *out, const char *p, size_t n)
{
	if (buf_append(out, p, n) != BUF_OK)
		panic("local_mailbox_filter: output room miscounted");
}

/* A line start that did not become "From ": give back the bytes held. */
static void
filter_release(struct local_filter *f, struct buf *out)
{
	if (f->held > 0) {
		filter_put(out, local_from, f->held);
		f->held = 0;
		f->bol = false;
	}
}

size_t
local_mailbox_filter_feed(struct local_filter *f, const char *in, size_t len, struct buf *out)
{
	size_t i = 0, n;
	const char *lf, *cr;
	char c;

	while (i < len && buf_room(out) >= LOCAL_FILTER_STEP_MAX) {
		c = in[i];
		if (f->cr) {
			/* RFC 5322 2.3: only CR LF ends a line; a bare CR is content. */
			f->cr = false;
			if (c == '\n') {
				filter_put(out, "\n", 1);
				f->bol = true;
				i++;
			} else {
				filter_put(out, "\r", 1);
				f->bol = false;
			}
			continue;
		}
		if ((f->flags & LOCAL_FILTER_QUOTE_FROM) && (f->bol || f->held > 0)) {
			if (c == local_from[f->held]) {
				i++;
				if (++f->held == sizeof(local_from) - 1) {
					filter_put(out, ">From ", 6);
					f->held = 0;
					f->bol = false;
				}
				continue;
			}
			filter_release(f, out);
		}
		if (c == '\r') {
			f->cr = true;
			i++;
			continue;
		}
		if (c == '\n') {
			/* A bare LF (smtpd never stores one) ends a line too. */
			filter_put(out, "\n", 1);
			f->bol = true;
			i++;
			continue;
		}
		/* The rest of the line up to the next CR or LF, in one piece. */
		f->bol = false;
		n = len - i < buf_room(out) ? len - i : buf_room(out);
		if ((lf = memchr(in + i, '\n', n)) != NULL)
			n = (size_t)(lf - (in + i));
		if ((cr = memchr(in + i, '\r', n)) != NULL)
			n = (size_t)(cr - (in + i));
		filter_put(out, in + i, n);
		i += n;
	}
	f->in += i;
	return i;
}

enum buf_result
local_mailbox_filter_finish(struct local_filter *f, struct buf *out)
{
	if (buf_room(out) < LOCAL_FILTER_STEP_MAX)
		return BUF_TOO_BIG;
	filter_release(f, out);
	if (f->cr) {
		filter_put(out, "\r", 1);
		f->cr = false;
		f->bol = false;
	}
	/* Postfix's mail_copy: an incomplete last line gets its newline. */
	if (!f->bol) {
		filter_put(out, "\n", 1);
		f->bol = true;
	}
	return BUF_OK;
}

/* ---- headers ---- */

/* Append s with CR and LF turned into spaces: a value never ends a header. */
static enum buf_result
headers_value(struct buf *out, const char *s)
{
	size_t mark = buf_len(out);

	for (; *s; s++) {
		if (buf_append_char(out, *s == '\r' || *s == '\n' ? ' ' : *s) != BUF_OK) {
			buf_truncate(out, mark);
			return BUF_TOO_BIG;
		}
	}
	return BUF_OK;
}

/* asctime()'s "Thu Nov 21 09:45:26 2024" in local time, without the
 * locale and without asctime's static buffer. */
static void
local_asctime(int64_t us, char *dst, size_t dstsz)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	(void)snprintf(dst, dstsz, "%s %s %2d %02d:%02d:%02d %lld", days[tm.tm_wday],
	               months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	               (long long)tm.tm_year + 1900);
}

enum buf_result
local_mailbox_headers(const struct local_delivery *d, unsigned flags, struct buf *out)
{
	size_t mark = buf_len(out);
	const char *sender = d->sender ? d->sender : "";
	char date[64];
	bool ok = true;

	if (flags & LOCAL_HEADERS_FROM_LINE) {
		/* Postfix's mail_copy: "From %s  %.24s", two spaces before the date. */
		local_asctime(d->arrival_us, date, sizeof(date));
		ok = buf_append_str(out, "From ") == BUF_OK &&
		     headers_value(out, *sender ? sender : "MAILER-DAEMON") == BUF_OK &&
		     buf_append_printf(out, "  %s\n", date) == BUF_OK;
	}
	ok = ok && buf_append_str(out, "Return-Path: <") == BUF_OK &&
	     headers_value(out, sender) == BUF_OK && buf_append_str(out, ">\n") == BUF_OK;
	if (d->original_recipient && *d->original_recipient)
		ok = ok && buf_append_str(out, "X-Original-To: ") == BUF_OK &&
		     headers_value(out, d->original_recipient) == BUF_OK &&
		     buf_append_char(out, '\n') == BUF_OK;
	ok = ok && buf_append_str(out, "Delivered-To: ") == BUF_OK &&
	     headers_value(out, d->recipient ? d->recipient : "") == BUF_OK &&
	     buf_append_char(out, '\n') == BUF_OK;
	if (!ok) {
		buf_truncate(out, mark);
		return BUF_TOO_BIG;
	}
	return BUF_OK;
}

/* ---- copying the message ---- */

static int
write_full(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
copy_flush(int fd, struct buf *out, uint64_t *written)
{
	if (write_full(fd, buf_data(out), buf_len(out)) < 0)
		return -1;
	*written += buf_len(out);
	buf_reset(out);
	return 0;
}

/*
 * Write the headers and the filtered message to outfd, streaming through
 * two LOCAL_IO_CHUNK buffers. *written counts the bytes written (also on
 * failure); *err is the errno of a failure.
 */
static enum mailbox_copy_result
mailbox_copy(int msgfd, const struct local_delivery *d, unsigned what, int outfd,
             uint64_t *written, int *err)
{
	enum mailbox_copy_result res = MAILBOX_COPY_OK;
	struct local_filter f;
	struct buf out;
	char *in;
	off_t off = 0;
	ssize_t n;
	size_t took, pos;

	*written = 0;
	*err = 0;
	if ((in = malloc(LOCAL_IO_CHUNK)) == NULL)
		fatal("out of memory");
	buf_init(&out, LOCAL_IO_CHUNK + LOCAL_HEADERS_MAX);
	local_mailbox_filter_init(&f, (what & MAILBOX_MBOX) ? LOCAL_FILTER_QUOTE_FROM : 0);
	if (local_mailbox_headers(d, (what & MAILBOX_MBOX) ? LOCAL_HEADERS_FROM_LINE : 0, &out) !=
	    BUF_OK) {
		*err = ENAMETOOLONG;	/* addresses of kilobytes: not from agent_proto */
		res = MAILBOX_COPY_WRITE_ERROR;
		goto done;
	}
	for (;;) {
		if ((n = pread(msgfd, in, LOCAL_IO_CHUNK, off)) < 0) {
			if (errno == EINTR)
				continue;
			*err = errno;
			res = MAILBOX_COPY_READ_ERROR;
			goto done;
		}
		if (n == 0)
			break;
		off += n;
		for (pos = 0; pos < (size_t)n; pos += took) {
			took = local_mailbox_filter_feed(&f, in + pos, (size_t)n - pos, &out);
			if (buf_room(&out) < LOCAL_FILTER_STEP_MAX && copy_flush(outfd, &out, written) < 0)
				goto write_error;
		}
	}
	if (buf_room(&out) < LOCAL_FILTER_STEP_MAX + 1 && copy_flush(outfd, &out, written) < 0)
		goto write_error;
	(void)local_mailbox_filter_finish(&f, &out);
	/* mbox: a blank line, so that the next From_ line is found. */
	if ((what & MAILBOX_MBOX) && buf_append_char(&out, '\n') != BUF_OK)
		panic("mailbox_copy: no room for the blank line");
	if (copy_flush(outfd, &out, written) < 0)
		goto write_error;
	goto done;
write_error:
	*err = errno;
	res = MAILBOX_COPY_WRITE_ERROR;
done:
	buf_free(&out);
	free(in);
	return res;
}

/* The result of a failed mailbox_copy(). */
static void
copy_result(struct local_result *r, enum mailbox_copy_result res, int err)
{
	if (res == MAILBOX_COPY_READ_ERROR)
		local_result_set(r, LOCAL_TEMPFAIL, NULL, "4.3.0", "error reading message: %s",
		                 strerror(err));
	else
		local_result_errno(r, err, "4.3.0", "error writing message");
}

static void
local_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- Maildir ---- */

struct maildir_paths {
	char tmp[PATH_MAX];	/* DIR/tmp/ */
	char new[PATH_MAX];	/* DIR/new/ */
	char cur[PATH_MAX];	/* DIR/cur/ */
	char host[LOCAL_HOSTNAME_MAX * 4];	/* gethostname(), / and : escaped */
};

static int
maildir_paths_init(struct maildir_paths *p, const char *maildir)
{
	size_t len = strlen(maildir);
	const char *slash = len > 0 && maildir[len - 1] == '/' ? "" : "/";
	char host[LOCAL_HOSTNAME_MAX];
	size_t i, o = 0;
	int a, b, c;

	a = snprintf(p->tmp, sizeof(p->tmp), "%s%stmp/", maildir, slash);
	b = snprintf(p->new, sizeof(p->new), "%s%snew/", maildir, slash);
	c = snprintf(p->cur, sizeof(p->cur), "%s%scur/", maildir, slash);
	if (a < 0 || b < 0 || c < 0 || (size_t)a >= sizeof(p->tmp) || (size_t)b >= sizeof(p->new) ||
	    (size_t)c >= sizeof(p->cur)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	/* cr.yp.to/proto/maildir.html: "replace / with \057 and : with \072". */
	for (i = 0; host[i] && o + 5 < sizeof(p->host); i++) {
		if (host[i] == '/' || host[i] == ':') {
			o += (size_t)snprintf(p->host + o, sizeof(p->host) - o, "\\%03o",
			                      (unsigned)(unsigned char)host[i]);
		} else {
			p->host[o++] = host[i];
		}
	}
	p->host[o] = '\0';
	return 0;
}

/* mkdir -p with mode, as Postfix's make_dirs: an existing directory is fine. */
static int
make_dirs(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	struct stat st;
	size_t i, len;

	if ((len = strlen(path)) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		if (tmp[i - 1] == '/')
			continue;
		tmp[i] = '\0';
		if (stat(tmp, &st) < 0 && (mkdir(tmp, mode) < 0 && errno != EEXIST))
			return -1;
		tmp[i] = i < len ? '/' : '\0';
	}
	return 0;
}

/* The unique name for this moment: TIME.M<usec>P<pid>Q<seq>.HOST */
static int
maildir_unique(const struct maildir_paths *p, const struct local_delivery *d, char *dst,
               size_t dstsz)
{
	struct timeval tv;
	int n;

	gettimeofday(&tv, NULL);
	n = snprintf(dst, dstsz, "%lld.M%ldP%ldQ%llu.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
	             (long)getpid(), (unsigned long long)d->maildir_seq, p->host);
	if (n < 0 || (size_t)n >= dstsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Create tmp/NAME exclusively (tmp/ and the Maildir made when missing). */
static int
maildir_create_tmp(const struct maildir_paths *p, const struct local_delivery *d, char *path,
                   size_t pathsz, struct local_result *r)
{
	char name[NAME_MAX + 1];
	unsigned tries;
	int fd = -1, n;

	path[0] = '\0';
	for (tries = 0; tries < LOCAL_MAILDIR_NAME_TRIES; tries++) {
		if (tries > 0)
			local_sleep_ms(1);	/* another microsecond, another name */
		if (maildir_unique(p, d, name, sizeof(name)) < 0)
			break;
		n = snprintf(path, pathsz, "%s%s", p->tmp, name);
		if (n < 0 || (size_t)n >= pathsz) {
			errno = ENAMETOOLONG;
			break;
		}
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, LOCAL_FILE_MODE);
		if (fd < 0 && errno == ENOENT && make_dirs(p->tmp, LOCAL_DIR_MODE) == 0)
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			          LOCAL_FILE_MODE);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		local_result_errno(r, errno, "4.2.0", "create maildir file %s", path);
		path[0] = '\0';	/* not ours to remove */
	}
	return fd;
}

/* Link tmp into new/ under a unique name carrying the size (cur/ and new/
 * made when missing). A name taken already gets another moment. */
static int
maildir_link_new(const struct maildir_paths *p, const struct local_delivery *d,
                 const char *tmppath, uint64_t size, char *path, size_t pathsz,
                 struct local_result *r)
{
	char name[NAME_MAX + 1];
	unsigned tries;
	int rc = -1, n;

	path[0] = '\0';
	for (tries = 0; tries < LOCAL_MAILDIR_NAME_TRIES; tries++) {
		if (tries > 0)
			local_sleep_ms(1);
		if (maildir_unique(p, d, name, sizeof(name)) < 0)
			break;
		n = snprintf(path, pathsz, "%s%s,S=%llu", p->new, name, (unsigned long long)size);
		if (n < 0 || (size_t)n >= pathsz) {
			errno = ENAMETOOLONG;
			break;
		}
		/* link(), not rename(): it never replaces an existing message. */
		rc = link(tmppath, path);
		if (rc < 0 && errno == ENOENT) {
			(void)make_dirs(p->cur, LOCAL_DIR_MODE);
			if (make_dirs(p->new, LOCAL_DIR_MODE) == 0)
				rc = link(tmppath, path);
		}
		if (rc == 0 || errno != EEXIST)
			break;
	}
	if (rc < 0)
		local_result_errno(r, errno, "4.2.0", "create maildir file %s", path);
	return rc;
}

/* fsync a directory, so that a name made in it survives a crash. */
static int
sync_dir(const char *dir)
{
	int fd, rc, saved;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

enum local_status
local_maildir_deliver(int msgfd, const struct local_delivery *d, const char *maildir_path,
                      struct local_result *r)
{
	struct maildir_paths p;
	char tmppath[PATH_MAX], newpath[PATH_MAX];
	enum mailbox_copy_result res;
	uint64_t size;
	int fd, err;

	tmppath[0] = '\0';
	if (maildir_paths_init(&p, maildir_path) < 0) {
		local_result_errno(r, errno, "4.2.0", "maildir %s", maildir_path);
		goto failed;
	}
	if ((fd = maildir_create_tmp(&p, d, tmppath, sizeof(tmppath), r)) < 0)
		goto failed;
	res = mailbox_copy(msgfd, d, 0, fd, &size, &err);
	if (res == MAILBOX_COPY_OK && fsync(fd) < 0) {
		res = MAILBOX_COPY_WRITE_ERROR;
		err = errno;
	}
	/* A close error here (NFS) is a write error: the file is not in new/ yet. */
	if (close(fd) < 0 && res == MAILBOX_COPY_OK) {
		res = MAILBOX_COPY_WRITE_ERROR;
		err = errno;
	}
	if (res != MAILBOX_COPY_OK) {
		copy_result(r, res, err);
		goto failed;
	}
	if (maildir_link_new(&p, d, tmppath, size, newpath, sizeof(newpath), r) < 0)
		goto failed;
	(void)unlink(tmppath);
	tmppath[0] = '\0';
	/*
	 * The message is accepted only when its name in new/ is durable. When
	 * that cannot be made sure, take it back and try again later: a reader
	 * that took it in the meantime means a duplicate, never a loss.
	 */
	if (sync_dir(p.new) < 0) {
		local_result_errno(r, errno, "4.3.0", "sync maildir directory %s", p.new);
		(void)unlink(newpath);
		goto failed;
	}
	local_result_set(r, LOCAL_OK, NULL, "2.0.0", "delivered to maildir");
	return r->status;
failed:
	if (tmppath[0])
		(void)unlink(tmppath);
	local_result_prepend(r, "maildir delivery failed: ");
	return r->status;
}

/* ---- mbox ---- */

static unsigned
or_default(unsigned v, unsigned def)
{
	return v ? v : def;
}

/*
 * Open or create the mailbox for appending, as Postfix's safe_open: create
 * exclusively first, else open what is there without following a symlink,
 * non-blocking (a FIFO must not hang us), and check its link count.
 */
static int
mbox_open(const char *path, bool file_target, struct stat *st, struct local_result *r)
{
	const int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
	unsigned tries;
	int fd = -1;

	for (tries = 0; tries < 2 && fd < 0; tries++) {
		if ((fd = open(path, flags | O_CREAT | O_EXCL, LOCAL_FILE_MODE)) >= 0)
			break;
		if (errno != EEXIST) {
			local_result_errno(r, errno, "4.2.0", "cannot create file exclusively");
			return -1;
		}
		/* It exists: open it, unless it went away in between (try again). */
		if ((fd = open(path, flags)) < 0 && errno != ENOENT)
			break;
	}
	if (fd < 0) {
		if (errno == ELOOP)
			local_result_set(r, LOCAL_PERMFAIL, NULL, "5.2.0", "file is a symbolic link");
		else if (errno == EISDIR)
			local_result_set(r, LOCAL_PERMFAIL, NULL, "5.2.0", "file is a directory");
		else if (errno == ENXIO)	/* a FIFO without reader, a device without driver */
			local_result_set(r, LOCAL_PERMFAIL, NULL, "5.2.0", "cannot open file: %s",
			                 strerror(errno));
		else
			local_result_errno(r, errno, "4.2.0", "cannot open file");
		return -1;
	}
	if (fstat(fd, st) < 0) {
		local_result_errno(r, errno, "4.2.0", "cannot open file");
	} else if (st->st_nlink != 1) {
		/* Someone could lure us into appending to a sensitive file. */
		local_result_set(r, LOCAL_PERMFAIL, NULL, "5.2.0", "file has %lu hard links",
		                 (unsigned long)st->st_nlink);
	} else if (!S_ISREG(st->st_mode) && !file_target) {
		local_result_set(r, LOCAL_PERMFAIL, NULL, "5.2.0", "destination %s is not a regular file",
		                 path);
	} else if (file_target && S_ISREG(st->st_mode) && (st->st_mode & (S_IXUSR | S_IXGRP | S_IXOTH))) {
		local_result_set(r, LOCAL_PERMFAIL, NULL, "5.7.1", "file is executable");
	} else if (!file_target && st->st_uid != geteuid()) {
		/* Postfix's strict_mailbox_ownership: defer, the admin must look. */
		local_result_set(r, LOCAL_TEMPFAIL, NULL, "4.2.0",
		                 "destination %s is not owned by recipient", path);
	} else {
		return fd;
	}
	close(fd);
	return -1;
}

/*
 * PATH.lock, created exclusively as Postfix's dot_lockfile: retried, a
 * lock whose change time is older than stale_lock_s is broken. Returns 1
 * when locked, 0 when the directory does not let us create it (the
 * fcntl lock alone protects us then: a sticky /var/mail without our group,
 * a "/file" in a read-only directory), -1 with r filled.
 */
static int
mbox_dotlock(const char *lockpath, const struct local_delivery *d, struct local_result *r)
{
	unsigned attempts = or_default(d->lock_attempts, LOCAL_LOCK_ATTEMPTS);
	unsigned delay = or_default(d->lock_delay_ms, LOCAL_LOCK_DELAY_MS);
	int64_t stale_ns = (int64_t)or_default(d->stale_lock_s, LOCAL_STALE_LOCK_S) * 1000000000;
	struct timespec now;
	struct stat st;
	unsigned count;
	int fd;

	for (count = 1;; count++) {
		/* O_CREAT | O_EXCL never follows a symlink. */
		if ((fd = open(lockpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, LOCAL_FILE_MODE)) >= 0) {
			close(fd);
			return 1;
		}
		if (errno == EACCES || errno == EPERM || errno == EROFS)
			return 0;
		if (errno != EEXIST || count >= attempts)
			break;
		clock_gettime(CLOCK_REALTIME, &now);
		if (stat(lockpath, &st) == 0 &&
		    ((int64_t)now.tv_sec - st.st_ctim.tv_sec) * 1000000000 +
		            (now.tv_nsec - st.st_ctim.tv_nsec) > stale_ns) {
			if (unlink(lockpath) < 0 && errno != ENOENT)
				break;
			continue;	/* broken: try again at once */
		}
		local_sleep_ms(delay);
	}
	local_result_errno(r, errno, "4.2.0", "unable to create lock file %s", lockpath);
	return -1;
}

/* An exclusive fcntl lock on the whole file, as Postfix's deliver_flock. */
static int
mbox_fcntl_lock(int fd, const struct local_delivery *d, struct local_result *r)
{
	unsigned attempts = or_default(d->lock_attempts, LOCAL_LOCK_ATTEMPTS);
	unsigned delay = or_default(d->lock_delay_ms, LOCAL_LOCK_DELAY_MS);
	struct flock fl;
	unsigned i;

	for (i = 0; i < attempts; i++) {
		if (i > 0)
			local_sleep_ms(delay);
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;	/* l_start = l_len = 0: the whole file */
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno != EACCES && errno != EAGAIN && errno != EINTR)
			break;
	}
	/* EACCES from F_SETLK means "held by another", as EAGAIN does. */
	local_result_errno(r, errno == EACCES ? EAGAIN : errno, "4.2.0",
	                   "unable to lock for exclusive access");
	return -1;
}

/*
 * Sanity check after locking, as Postfix's mbox_open: a mailbox replaced
 * or linked to while we waited for the lock (GNU pop3d writes a new file)
 * is not the one we hold.
 */
static int
mbox_check_same(int fd, const char *path, struct stat *st, struct local_result *r)
{
	struct stat lst;

	if (fstat(fd, st) < 0 || st->st_nlink != 1 || lstat(path, &lst) < 0 ||
	    lst.st_dev != st->st_dev || lst.st_ino != st->st_ino) {
		local_result_set(r, LOCAL_TEMPFAIL, NULL, "4.2.0",
		                 "target file status changed unexpectedly");
		return -1;
	}
	return 0;
}

/* Append the message to the open, locked mailbox; undo on any failure. */
static void
mbox_append(int fd, int msgfd, const struct local_delivery *d, const struct stat *st,
            struct local_result *r)
{
	bool regular = S_ISREG(st->st_mode);
	enum mailbox_copy_result res;
	uint64_t written;
	int err;

	res = mailbox_copy(msgfd, d, MAILBOX_MBOX, fd, &written, &err);
	if (res == MAILBOX_COPY_OK && regular && fsync(fd) < 0) {
		res = MAILBOX_COPY_WRITE_ERROR;
		err = errno;
	}
	if (res == MAILBOX_COPY_OK) {
		local_result_set(r, LOCAL_OK, NULL, "2.0.0", "delivered");
		return;
	}
	/* Never leave half a message: the next From_ line would be inside it. */
	if (regular && ftruncate(fd, st->st_size) == 0)
		(void)fsync(fd);
	copy_result(r, res, err);
}

enum local_status
local_mbox_deliver(int msgfd, const struct local_delivery *d, const char *mbox_path,
                   struct local_result *r)
{
	bool file_target = (d->mbox_flags & LOCAL_MBOX_FILE) != 0;
	char lockpath[PATH_MAX];
	int fd, n, dotlocked = 0;
	struct stat st;

	n = snprintf(lockpath, sizeof(lockpath), "%s.lock", mbox_path);
	if (n < 0 || (size_t)n >= sizeof(lockpath)) {
		local_result_errno(r, ENAMETOOLONG, "4.2.0", "cannot open file");
		goto done;
	}
	if ((fd = mbox_open(mbox_path, file_target, &st, r)) < 0)
		goto done;
	/* Locks are for regular files only (not /dev/null), as Postfix's. */
	if (S_ISREG(st.st_mode)) {
		if ((dotlocked = mbox_dotlock(lockpath, d, r)) < 0 ||
		    mbox_fcntl_lock(fd, d, r) < 0 || mbox_check_same(fd, mbox_path, &st, r) < 0) {
			close(fd);
			goto unlock;
		}
	}
	mbox_append(fd, msgfd, d, &st, r);
	/* Synced (or truncated) already: a close error changes nothing on disk.
	 * Closing releases the fcntl lock, before the dotlock goes. */
	(void)close(fd);
unlock:
	if (dotlocked > 0)
		(void)unlink(lockpath);
done:
	if (r->status == LOCAL_OK && file_target)
		local_result_set(r, LOCAL_OK, NULL, "2.0.0", "delivered to file: %s", mbox_path);
	else if (r->status == LOCAL_OK)
		local_result_set(r, LOCAL_OK, NULL, "2.0.0", "delivered to mailbox");
	else if (file_target)
		local_result_prepend(r, "cannot append message to file %s: ", mbox_path);
	else
		local_result_prepend(r, "cannot update mailbox %s for user %s. ", mbox_path,
		                     d->user ? d->user : "");
	return r->status;
}
