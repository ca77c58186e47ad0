/*
 * evloop: a small epoll event loop with fd watchers, timers and signals.
 *
 * Watchers and timers are embedded in their owner's struct (no allocation
 * here); the owner must remove them before freeing itself. A watcher
 * removed during dispatch is never called again, even later in the same
 * batch. Level-triggered. Time is CLOCK_MONOTONIC milliseconds, read once
 * per loop turn (evloop_now()).
 *
 * Errors: setup failures return -1 with errno; failures of epoll itself
 * during the loop are fatal().
 */
#ifndef TERN_EVLOOP_H
#define TERN_EVLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EV_READ  0x1u
#define EV_WRITE 0x2u

struct evloop;
struct ev_io;
struct ev_timer;

typedef void ev_io_cb(struct ev_io *io, unsigned revents);
typedef void ev_timer_cb(struct ev_timer *t);
typedef void ev_signal_cb(int signo, void *arg);

struct ev_io {
	int fd;
	unsigned events;	/* EV_READ | EV_WRITE currently watched */
	ev_io_cb *cb;
	void *arg;
	bool active;
};

struct ev_timer {
	int64_t deadline;	/* evloop_now() value at which it fires */
	uint64_t seq;		/* when it was armed, in the loop's order */
	size_t heap_index;	/* position in the loop's heap; SIZE_MAX when idle */
	ev_timer_cb *cb;
	void *arg;
};

struct evloop *evloop_new(void);
void evloop_free(struct evloop *loop);

/* Run until evloop_break(); returns 0. */
int evloop_run(struct evloop *loop);
void evloop_break(struct evloop *loop);
/* Milliseconds of CLOCK_MONOTONIC as of this loop turn. */
int64_t evloop_now(struct evloop *loop);
/* Refresh the cached time (after a long computation). */
int64_t evloop_update_time(struct evloop *loop);

/* Start watching fd for events; returns 0 or -1 with errno. */
int evloop_io_add(struct evloop *loop, struct ev_io *io, int fd, unsigned events,
                  ev_io_cb *cb, void *arg);
/* Change the watched events (0 pauses the watcher without removing it). */
int evloop_io_set(struct evloop *loop, struct ev_io *io, unsigned events);
/* Stop watching; safe on an inactive watcher. */
void evloop_io_del(struct evloop *loop, struct ev_io *io);

void evloop_timer_init(struct ev_timer *t, ev_timer_cb *cb, void *arg);
/* (Re)arm the timer to fire once, ms milliseconds from now. */
void evloop_timer_start(struct evloop *loop, struct ev_timer *t, int64_t ms);
void evloop_timer_stop(struct evloop *loop, struct ev_timer *t);
static inline bool evloop_timer_active(const struct ev_timer *t) { return t->heap_index != (size_t)-1; }

/*
 * Deliver signo through the loop (signalfd) instead of an async handler.
 * The signal is blocked in this thread. One callback per signal.
 */
int evloop_signal_add(struct evloop *loop, int signo, ev_signal_cb *cb, void *arg);

/* Set O_NONBLOCK (and FD_CLOEXEC); 0 or -1 with errno. */
int evloop_set_nonblock(int fd);

#endif
