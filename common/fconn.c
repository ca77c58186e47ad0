/*
 * fconn: a framed stream connection on the evloop. Owns the fd, the
 * watcher and both buffers of a struct fconn from fconn_open() to
 * fconn_close(); the struct itself is the owner's. Returns errors and
 * reports the end of a connection through on_close; never logs.
 *
 * Re-entrancy: on_frame may close the connection and free its owner. The
 * dispatch loop therefore keeps its state on its own stack (struct
 * fconn_dispatch) and c->dispatch points at it; fconn_close() marks it, and
 * the loop, seeing the mark, returns without touching c again. The input
 * storage the running on_frame still borrows (its frame_reader) is handed
 * to that stack state instead of being freed under it.
 *
 * on_close is only called from the watcher's callback (never from
 * fconn_close() or from a send path), and only once: the connection is
 * closed first, so its watcher can never fire again.
 */
#include "common/fconn.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

/* Most bytes taken from the socket per readable event: the buffer grows
 * with what arrives, not to in_max at once. */
#define FCONN_READ_CHUNK (64u * 1024)

/*
 * While fconn_begin() .. fconn_end() build a frame, the out buf's hard
 * maximum is out_max plus room for one whole frame: frame_put_*() treat a
 * full buffer as a bug (panic), yet fconn_end() must be able to refuse a
 * frame that passes out_max. So the frame is built past out_max, and
 * fconn_end() checks the total, takes the frame back if need be, and puts
 * the maximum back to out_max (which encoders writing to fconn_out()
 * directly check before they append anything).
 */
#define FCONN_OUT_SLACK ((size_t)FRAME_HEADER_SIZE + FRAME_PAYLOAD_MAX)

struct fconn_dispatch {
	bool closed;		/* fconn_close() ran inside on_frame */
	char *in_data;		/* the input storage it took from c, freed by the loop */
};

void
fconn_close(struct fconn *c)
{
	if (c->dispatch != NULL) {
		/* on_frame's frame_reader still points into c->in. */
		c->dispatch->closed = true;
		c->dispatch->in_data = c->in.data;
		c->in.data = NULL;
		c->dispatch = NULL;
	}
	if (c->fd >= 0) {
		evloop_io_del(c->loop, &c->io);
		close(c->fd);
		c->fd = -1;
	}
	buf_free(&c->in);
	buf_free(&c->out);
	c->closed = true;
}

/* The connection ended on its own: close, then tell the owner. Only from
 * the watcher's callback; c may be freed when this returns. */
static void
fconn_fail(struct fconn *c, const char *reason)
{
	fconn_close(c);
	if (c->on_close != NULL)
		c->on_close(c, reason);
}

/* Watch EV_WRITE exactly while output is pending. */
static void
fconn_watch(struct fconn *c)
{
	unsigned want = EV_READ | (buf_len(&c->out) > 0 ? EV_WRITE : 0);

	/* EPOLL_CTL_MOD on a registered fd fails only without memory. */
	if (evloop_io_set(c->loop, &c->io, want) < 0)
		fatal("fconn: epoll: %s", strerror(errno));
}

/* The declared length of the frame at the front of in, when its header is
 * there: a frame that can never fit in_max is refused before its body. */
static bool
fconn_front_too_long(const struct fconn *c)
{
	const unsigned char *p = (const unsigned char *)buf_data(&c->in);
	uint64_t plen;

	if (buf_len(&c->in) < FRAME_HEADER_SIZE)
		return false;
	plen = (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 | (uint64_t)p[6] << 8 | p[7];
	return FRAME_HEADER_SIZE + plen > c->in.max;
}

/*
 * Hand every whole frame in c->in to on_frame. Returns -1 when c must not
 * be touched any more (closed inside on_frame, or failed here).
 */
static int
fconn_dispatch(struct fconn *c)
{
	struct fconn_dispatch d = { false, NULL };
	struct frame_reader r;
	enum frame_result fr;
	size_t flen;

	if (c->dispatch != NULL)
		panic("fconn: nested dispatch on fd %d", c->fd);
	c->dispatch = &d;
	while ((fr = frame_parse(buf_data(&c->in), buf_len(&c->in), &r, &flen)) == FRAME_OK) {
		c->on_frame(c, &r);
		if (d.closed) {
			/* c may be freed by now: only our stack is ours. */
			free(d.in_data);
			return -1;
		}
		buf_consume(&c->in, flen);
	}
	c->dispatch = NULL;
	if (fr == FRAME_BAD) {
		fconn_fail(c, "malformed frame");
		return -1;
	}
	if (fconn_front_too_long(c)) {
		fconn_fail(c, "frame too long");
		return -1;
	}
	buf_shrink(&c->in);
	return 0;
}

static int
fconn_read(struct fconn *c)
{
	size_t want = buf_room(&c->in);
	ssize_t n;

	/* Whole frames were dispatched, and the front one fits in_max (else
	 * fconn_dispatch() failed), so there is always room here. */
	if (want > FCONN_READ_CHUNK)
		want = FCONN_READ_CHUNK;
	n = buf_read_fd(&c->in, c->fd, want);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		fconn_fail(c, strerror(errno));
		return -1;
	}
	if (n == 0) {
		fconn_fail(c, "end of file");
		return -1;
	}
	return fconn_dispatch(c);
}

static int
fconn_write(struct fconn *c)
{
	ssize_t n;

	while (buf_len(&c->out) > 0) {
		/* MSG_NOSIGNAL: a vanished peer is EPIPE here, not SIGPIPE. */
		n = send(c->fd, buf_data(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		fconn_fail(c, n < 0 ? strerror(errno) : "write returned 0");
		return -1;
	}
	buf_shrink(&c->out);
	fconn_watch(c);
	return 0;
}

static void
fconn_io(struct ev_io *io, unsigned revents)
{
	struct fconn *c = io->arg;

	/* Write first: replies already queued go out before more requests
	 * are read (and a dead peer is reported by the write). */
	if ((revents & EV_WRITE) && fconn_write(c) < 0)
		return;
	if (revents & EV_READ)
		(void)fconn_read(c);
}

int
fconn_open(struct fconn *c, struct evloop *loop, int fd, size_t in_max, size_t out_max,
           fconn_frame_cb *on_frame, fconn_close_cb *on_close, void *arg)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->closed = true;
	c->loop = loop;
	c->on_frame = on_frame;
	c->on_close = on_close;
	c->arg = arg;
	buf_init(&c->in, in_max);
	buf_init(&c->out, out_max);
	c->out_max = out_max;
	if (in_max < FRAME_HEADER_SIZE || out_max < FRAME_HEADER_SIZE ||
	    out_max > SIZE_MAX - FCONN_OUT_SLACK || on_frame == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (evloop_set_nonblock(fd) < 0)
		return -1;
	if (evloop_io_add(loop, &c->io, fd, EV_READ, fconn_io, c) < 0)
		return -1;
	c->fd = fd;
	c->closed = false;
	return 0;
}

size_t
fconn_begin(struct fconn *c, enum frame_type type)
{
	c->out.max = c->out_max + FCONN_OUT_SLACK;
	return frame_begin(&c->out, type);
}

int
fconn_end(struct fconn *c, size_t start)
{
	int rc = 0;

	if (!fconn_is_open(c)) {
		/* Built after the close: nothing will send it. */
		buf_free(&c->out);
		rc = -1;
	} else if (frame_end(&c->out, start) != FRAME_OK || buf_len(&c->out) > c->out_max) {
		buf_truncate(&c->out, start);
		rc = -1;
	}
	c->out.max = c->out_max;
	if (rc == 0)
		fconn_flush(c);
	return rc;
}

void
fconn_flush(struct fconn *c)
{
	if (!fconn_is_open(c)) {
		buf_free(&c->out);
		return;
	}
	/* No write here: a failure must reach the owner from the loop, not
	 * inside its own send path. The watcher writes on the next turn. */
	fconn_watch(c);
}

size_t
fconn_pending(const struct fconn *c)
{
	return buf_len(&c->out);
}

/* Fill a sockaddr_un; -1 with ENAMETOOLONG when path does not fit. */
static int
fconn_unix_addr(struct sockaddr_un *sun, const char *path)
{
	size_t n = strlen(path);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (n == 0) {
		errno = ENOENT;
		return -1;
	}
	if (n >= sizeof(sun->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun->sun_path, path, n + 1);
	return 0;
}

/* Close fd keeping the errno that made us give up. */
static int
fconn_give_up(int fd)
{
	int saved = errno;

	close(fd);
	errno = saved;
	return -1;
}

int
fconn_listen_unix(const char *path, unsigned mode, int backlog)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, saved;

	if (fconn_unix_addr(&sun, path) < 0)
		return -1;
	/* Only a socket is "stale": any other file at path is someone's, and
	 * bind() reports EADDRINUSE for it. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(path) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return fconn_give_up(fd);
	/* chmod before listen(): until then every connect is refused, so no
	 * client gets in under the umask's mode. */
	if (chmod(path, (mode_t)mode) < 0 || listen(fd, backlog) < 0) {
		saved = errno;
		close(fd);
		(void)unlink(path);
		errno = saved;
		return -1;
	}
	return fd;
}

int
fconn_connect_unix(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	if (fconn_unix_addr(&sun, path) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return fconn_give_up(fd);
	return fd;
}
