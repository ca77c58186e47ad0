/*
 * fconn: one framed stream connection (common/frame.h) driven by an
 * evloop, for the long-lived unix-socket conversations between processes
 * (smtpd -> qmgr notifications, qmgr <-> delivery agents, ternctl -> qmgr).
 *
 * The owner embeds a struct fconn and gets two callbacks: one per whole
 * frame received, and one when the connection ends (EOF, an error, a
 * malformed or over-long frame). Output is queued
 * in a bounded buffer and written as the socket allows, so a slow peer
 * never blocks the loop; input is bounded too.
 *
 * Re-entrancy: a callback may call fconn_close() (or free the owner after
 * closing); the connection then delivers nothing more. on_close is called
 * at most once and never from fconn_close() itself (the owner knows).
 *
 * Errors: setup returns -1 with errno; out of memory is fatal().
 */
#ifndef TERN_FCONN_H
#define TERN_FCONN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/evloop.h"
#include "common/frame.h"

struct fconn;
struct fconn_dispatch;

/* A whole frame arrived; r borrows the input buffer for the call only. */
typedef void fconn_frame_cb(struct fconn *c, struct frame_reader *r);
/* The connection ended; reason is a short text ("end of file",
 * "malformed frame", "frame too long", strerror). The fd is already
 * closed and the watcher removed when this runs. */
typedef void fconn_close_cb(struct fconn *c, const char *reason);

struct fconn {
	struct evloop *loop;
	int fd;			/* -1 when closed */
	struct ev_io io;
	struct buf in;
	struct buf out;
	size_t out_max;		/* bound of the queued output (out.max is
				 * raised while fconn_begin() builds a frame) */
	fconn_frame_cb *on_frame;
	fconn_close_cb *on_close;
	void *arg;		/* the owner's */
	struct fconn_dispatch *dispatch;	/* the running on_frame loop's state
					 * (on its stack), or NULL */
	bool closed;
};

/*
 * Start serving fd (made non-blocking here; ownership passes to c). in_max
 * bounds one frame plus what follows it, out_max the queued output. On
 * failure (-1 with errno: EINVAL, or from fcntl/epoll) the fd stays the
 * caller's and c is closed (fconn_close() on it is harmless).
 */
int fconn_open(struct fconn *c, struct evloop *loop, int fd, size_t in_max, size_t out_max,
               fconn_frame_cb *on_frame, fconn_close_cb *on_close, void *arg);
/* Close the fd now and drop queued output; idempotent; no callback. */
void fconn_close(struct fconn *c);
static inline bool fconn_is_open(const struct fconn *c) { return c->fd >= 0 && !c->closed; }

/*
 * Queue a frame built by the caller: between fconn_begin() and
 * fconn_end() the caller appends fields to fconn_out(c) with
 * frame_put_*(). fconn_end() returns 0, or -1 when the frame does not fit
 * in the output queue (the partial frame is removed; the connection stays
 * open: the caller decides whether that is fatal for it). Nothing is
 * written before the loop's next turn.
 */
size_t fconn_begin(struct fconn *c, enum frame_type type);
static inline struct buf *fconn_out(struct fconn *c) { return &c->out; }
int fconn_end(struct fconn *c, size_t start);
/* Bytes queued and not yet written. */
size_t fconn_pending(const struct fconn *c);
/*
 * Queue for writing the whole frames appended to fconn_out(c) without
 * fconn_begin() (by an encoder such as agent_job_encode(), which refuses a
 * frame that does not fit out_max). The loop writes them on its next turn;
 * nothing is called back from here. On a closed connection they are dropped.
 */
void fconn_flush(struct fconn *c);

/*
 * Unix stream sockets. fconn_listen_unix() unlinks a stale socket at path,
 * binds, sets mode, listens (non-blocking, close-on-exec). fconn_connect_unix()
 * connects a non-blocking socket (a unix connect completes at once or
 * fails: ENOENT / ECONNREFUSED when nobody listens, EAGAIN when the
 * backlog is full). Both return the fd or -1 with errno (ENAMETOOLONG when
 * path does not fit sun_path).
 */
int fconn_listen_unix(const char *path, unsigned mode, int backlog);
int fconn_connect_unix(const char *path);

#endif
