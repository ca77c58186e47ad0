/*
 * evloop: epoll + a binary min-heap of timers + one signalfd. Owns the
 * epoll and signal descriptors; watchers and timers belong to callers.
 */
#include "common/evloop.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* Events taken from the kernel per epoll_wait call. */
#define EVLOOP_BATCH 256
#define EVLOOP_SIGNALS_MAX 65

struct evloop {
	int epfd;
	bool stop;
	int64_t now;
	uint64_t timer_seq;	/* stamps each arming; ties on deadline go oldest first */
	struct ev_timer **heap;
	size_t heap_len, heap_cap;
	struct epoll_event batch[EVLOOP_BATCH];
	int batch_len, batch_pos;	/* for removal during dispatch */
	int sigfd;
	struct ev_io sig_io;
	sigset_t sigmask;
	ev_signal_cb *sig_cb[EVLOOP_SIGNALS_MAX];
	void *sig_arg[EVLOOP_SIGNALS_MAX];
};

static int64_t
evloop_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct evloop *
evloop_new(void)
{
	struct evloop *loop = calloc(1, sizeof(*loop));

	if (loop == NULL)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	loop->sigfd = -1;
	sigemptyset(&loop->sigmask);
	loop->now = evloop_clock();
	return loop;
}

void
evloop_free(struct evloop *loop)
{
	if (loop == NULL)
		return;
	if (loop->sigfd >= 0)
		close(loop->sigfd);
	close(loop->epfd);
	free(loop->heap);
	free(loop);
}

int64_t evloop_now(struct evloop *loop) { return loop->now; }
int64_t evloop_update_time(struct evloop *loop) { return loop->now = evloop_clock(); }
void evloop_break(struct evloop *loop) { loop->stop = true; }

int
evloop_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

static uint32_t
evloop_epoll_events(unsigned events)
{
	return ((events & EV_READ) ? EPOLLIN | EPOLLRDHUP : 0) |
	    ((events & EV_WRITE) ? EPOLLOUT : 0);
}

int
evloop_io_add(struct evloop *loop, struct ev_io *io, int fd, unsigned events,
    ev_io_cb *cb, void *arg)
{
	struct epoll_event ev = { .events = evloop_epoll_events(events), .data.ptr = io };

	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	io->fd = fd;
	io->events = events;
	io->cb = cb;
	io->arg = arg;
	io->active = true;
	return 0;
}

int
evloop_io_set(struct evloop *loop, struct ev_io *io, unsigned events)
{
	struct epoll_event ev = { .events = evloop_epoll_events(events), .data.ptr = io };

	if (!io->active)
		panic("evloop_io_set on an inactive watcher");
	if (io->events == events)
		return 0;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -1;
	io->events = events;
	return 0;
}

void
evloop_io_del(struct evloop *loop, struct ev_io *io)
{
	int i;

	if (!io->active)
		return;
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->active = false;
	/* The rest of the current batch must not call into a freed owner. */
	for (i = loop->batch_pos; i < loop->batch_len; i++)
		if (loop->batch[i].data.ptr == io)
			loop->batch[i].data.ptr = NULL;
}

/* ---- timers: a binary min-heap on (deadline, arming order) ---- */

static bool
timer_before(const struct ev_timer *a, const struct ev_timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

void
evloop_timer_init(struct ev_timer *t, ev_timer_cb *cb, void *arg)
{
	t->deadline = 0;
	t->heap_index = (size_t)-1;
	t->cb = cb;
	t->arg = arg;
}

static void
heap_set(struct evloop *loop, size_t i, struct ev_timer *t)
{
	loop->heap[i] = t;
	t->heap_index = i;
}

static void
heap_up(struct evloop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];

	while (i > 0 && timer_before(t, loop->heap[(i - 1) / 2])) {
		heap_set(loop, i, loop->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(loop, i, t);
}

static void
heap_down(struct evloop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];
	size_t c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= loop->heap_len)
			break;
		if (c + 1 < loop->heap_len && timer_before(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!timer_before(loop->heap[c], t))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

void
evloop_timer_stop(struct evloop *loop, struct ev_timer *t)
{
	size_t i = t->heap_index;
	struct ev_timer *last;

	if (i == (size_t)-1)
		return;
	t->heap_index = (size_t)-1;
	last = loop->heap[--loop->heap_len];
	if (last == t)
		return;
	heap_set(loop, i, last);
	heap_up(loop, i);
	heap_down(loop, last->heap_index);
}

void
evloop_timer_start(struct evloop *loop, struct ev_timer *t, int64_t ms)
{
	struct ev_timer **nh;
	size_t ncap;

	evloop_timer_stop(loop, t);
	t->deadline = loop->now + (ms > 0 ? ms : 0);
	t->seq = loop->timer_seq++;
	if (loop->heap_len == loop->heap_cap) {
		ncap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		nh = realloc(loop->heap, ncap * sizeof(*nh));
		if (nh == NULL)
			fatal("out of memory (timer heap)");
		loop->heap = nh;
		loop->heap_cap = ncap;
	}
	heap_set(loop, loop->heap_len++, t);
	heap_up(loop, t->heap_index);
}

static void
evloop_run_timers(struct evloop *loop)
{
	struct ev_timer *t;
	/* Only timers armed before this turn run in it: a callback that
	 * re-arms itself (or another) for "now" runs on the next turn, after
	 * the descriptors have been polled, so timers cannot starve I/O. */
	uint64_t limit = loop->timer_seq;

	while (loop->heap_len > 0 && loop->heap[0]->deadline <= loop->now &&
	       loop->heap[0]->seq < limit && !loop->stop) {
		t = loop->heap[0];
		evloop_timer_stop(loop, t);
		t->cb(t);
	}
}

/* ---- signals ---- */

static void
evloop_signal_read(struct ev_io *io, unsigned revents)
{
	struct evloop *loop = io->arg;
	struct signalfd_siginfo si;
	ssize_t n;

	(void)revents;
	while ((n = read(loop->sigfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo < EVLOOP_SIGNALS_MAX && loop->sig_cb[si.ssi_signo])
			loop->sig_cb[si.ssi_signo]((int)si.ssi_signo, loop->sig_arg[si.ssi_signo]);
	}
}

int
evloop_signal_add(struct evloop *loop, int signo, ev_signal_cb *cb, void *arg)
{
	int fd;

	if (signo <= 0 || signo >= EVLOOP_SIGNALS_MAX) {
		errno = EINVAL;
		return -1;
	}
	sigaddset(&loop->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &loop->sigmask, NULL) < 0)
		return -1;
	fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (loop->sigfd < 0) {
		loop->sigfd = fd;
		if (evloop_io_add(loop, &loop->sig_io, fd, EV_READ, evloop_signal_read, loop) < 0)
			return -1;
	}
	loop->sig_cb[signo] = cb;
	loop->sig_arg[signo] = arg;
	return 0;
}

/* ---- the loop ---- */

static int
evloop_wait_ms(struct evloop *loop)
{
	int64_t d;

	if (loop->heap_len == 0)
		return -1;
	d = loop->heap[0]->deadline - loop->now;
	if (d <= 0)
		return 0;
	return d > 60000 ? 60000 : (int)d;
}

int
evloop_run(struct evloop *loop)
{
	struct epoll_event *ev;
	struct ev_io *io;
	unsigned revents;
	int n;

	loop->stop = false;
	while (!loop->stop) {
		n = epoll_wait(loop->epfd, loop->batch, EVLOOP_BATCH, evloop_wait_ms(loop));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fatal("epoll_wait: %s", strerror(errno));
		}
		loop->now = evloop_clock();
		loop->batch_len = n;
		for (loop->batch_pos = 0; loop->batch_pos < n && !loop->stop;) {
			ev = &loop->batch[loop->batch_pos++];
			io = ev->data.ptr;
			if (io == NULL)
				continue;
			revents = 0;
			if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				revents |= EV_READ;
			if (ev->events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				revents |= EV_WRITE;
			revents &= io->events ? io->events : 0;
			if (ev->events & (EPOLLHUP | EPOLLERR))
				revents |= io->events & (EV_READ | EV_WRITE);
			if (revents)
				io->cb(io, revents);
		}
		loop->batch_len = loop->batch_pos = 0;
		evloop_run_timers(loop);
	}
	return 0;
}
