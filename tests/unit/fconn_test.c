/* Unit tests for common/fconn.c: framed connections on the event loop,
 * over socketpairs and a real unix socket. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fconn.h"

#define WATCHDOG_MS 10000
#define FRAMES_MAX 512

static struct evloop *loop;

/* One end of a conversation: what it received and how it ended. */
struct end {
	struct fconn c;
	int frames;
	uint64_t vals[FRAMES_MAX];	/* each frame's first field */
	size_t lens[FRAMES_MAX];	/* its bytes field's length, if any */
	int stop_at;			/* break the loop at this many frames */
	bool echo;			/* answer v with v + 1000 */
	int closes;
	char reason[128];
};

static void
on_frame(struct fconn *c, struct frame_reader *r)
{
	struct end *e = c->arg;
	const char *p;
	size_t start, n = 0, i;
	uint64_t v;

	ck_assert_int_lt(e->frames, FRAMES_MAX);
	ck_assert_int_eq(frame_get_u64(r, &v), 0);
	if (r->pos < r->len) {
		ck_assert_int_eq(frame_get_bytes(r, &p, &n), 0);
		for (i = 0; i < n && p[i] == 'x'; i++)
			;
		ck_assert_uint_eq(i, n);
	}
	ck_assert_int_eq(frame_get_end(r), 0);
	e->vals[e->frames] = v;
	e->lens[e->frames] = n;
	e->frames++;
	if (e->echo) {
		start = fconn_begin(c, FRAME_QUEUE_NEW);
		frame_put_u64(fconn_out(c), v + 1000);
		ck_assert_int_eq(fconn_end(c, start), 0);
	}
	if (e->frames == e->stop_at)
		evloop_break(loop);
}

static void
on_close(struct fconn *c, const char *reason)
{
	struct end *e = c->arg;

	ck_assert_int_eq(c->fd, -1);
	ck_assert(!fconn_is_open(c));
	e->closes++;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
	evloop_break(loop);
}

static void
end_open(struct end *e, int fd, size_t in_max, size_t out_max)
{
	memset(e, 0, sizeof(*e));
	ck_assert_int_eq(fconn_open(&e->c, loop, fd, in_max, out_max, on_frame, on_close, e), 0);
	ck_assert(fconn_is_open(&e->c));
}

static void
on_watchdog(struct ev_timer *t)
{
	(void)t;
	ck_abort_msg("the loop did not finish in %d ms", WATCHDOG_MS);
}

static void
on_stop(struct ev_timer *t)
{
	(void)t;
	evloop_break(loop);
}

/* Run until a callback breaks the loop. */
static void
run(void)
{
	struct ev_timer dog;

	evloop_timer_init(&dog, on_watchdog, NULL);
	evloop_timer_start(loop, &dog, WATCHDOG_MS);
	evloop_run(loop);
	evloop_timer_stop(loop, &dog);
}

/* Run for ms, whatever happens (to see that nothing more does). */
static void
run_for(int64_t ms)
{
	struct ev_timer stop;
	int64_t until;

	evloop_update_time(loop);
	until = evloop_now(loop) + ms;
	evloop_timer_init(&stop, on_stop, NULL);
	while (evloop_update_time(loop) < until) {
		evloop_timer_start(loop, &stop, until - evloop_now(loop));
		evloop_run(loop);
	}
	evloop_timer_stop(loop, &stop);
}

/* Append a frame: u64 v, and a bytes field of n 'x' when n >= 0. */
static void
put_frame(struct buf *b, uint64_t v, long n)
{
	size_t start = frame_begin(b, FRAME_QUEUE_NEW);
	char *x;

	frame_put_u64(b, v);
	if (n >= 0) {
		x = malloc((size_t)n + 1);
		memset(x, 'x', (size_t)n);
		frame_put_bytes(b, x, (size_t)n);
		free(x);
	}
	ck_assert_int_eq(frame_end(b, start), FRAME_OK);
}

/* Queue the same on a connection. */
static int
send_frame(struct fconn *c, uint64_t v, long n)
{
	size_t start = fconn_begin(c, FRAME_QUEUE_NEW);
	char *x;

	frame_put_u64(fconn_out(c), v);
	if (n >= 0) {
		x = malloc((size_t)n + 1);
		memset(x, 'x', (size_t)n);
		frame_put_bytes(fconn_out(c), x, (size_t)n);
		free(x);
	}
	return fconn_end(c, start);
}

static void
write_all(int fd, const void *p, size_t n)
{
	ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
}

static void
pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void
setup(void)
{
	loop = evloop_new();
	ck_assert_ptr_nonnull(loop);
}

static void
teardown(void)
{
	evloop_free(loop);
}

START_TEST(test_both_ways)
{
	struct end a, b;
	int sv[2], i;

	pair(sv);
	end_open(&a, sv[0], 4096, 4096);
	end_open(&b, sv[1], 4096, 4096);
	b.echo = true;
	a.stop_at = 3;
	for (i = 1; i <= 3; i++)
		ck_assert_int_eq(send_frame(&a.c, (uint64_t)i, i == 2 ? 10 : -1), 0);
	run();
	ck_assert_int_eq(b.frames, 3);
	ck_assert_uint_eq(b.lens[1], 10);
	for (i = 0; i < 3; i++)
		ck_assert(a.vals[i] == (uint64_t)i + 1001);
	ck_assert_uint_eq(fconn_pending(&a.c), 0);
	ck_assert_uint_eq(fconn_pending(&b.c), 0);
	fconn_close(&a.c);
	fconn_close(&b.c);
	fconn_close(&b.c);		/* idempotent */
	ck_assert_int_eq(a.closes + b.closes, 0);	/* never from fconn_close */
}
END_TEST

/* Many frames arriving in one read are all dispatched, in order. */
START_TEST(test_many_in_one_read)
{
	struct end e;
	struct buf raw;
	int sv[2], i;

	pair(sv);
	buf_init(&raw, 1 << 20);
	for (i = 0; i < 300; i++)
		put_frame(&raw, (uint64_t)i, i % 7);
	ck_assert_uint_lt(buf_len(&raw), 64 * 1024);
	write_all(sv[1], buf_data(&raw), buf_len(&raw));
	end_open(&e, sv[0], 64 * 1024, 4096);
	e.stop_at = 300;
	run();
	for (i = 0; i < 300; i++) {
		ck_assert(e.vals[i] == (uint64_t)i);
		ck_assert_uint_eq(e.lens[i], (size_t)(i % 7));
	}
	fconn_close(&e.c);
	close(sv[1]);
	buf_free(&raw);
}
END_TEST

/* Frames written one byte at a time arrive whole, each exactly when its
 * last byte does. */
static struct buf trickle;
static size_t trickle_pos;
static int trickle_fd;
static struct end *trickle_end;
static size_t trickle_ends[4];	/* offsets where frames end */

static void
on_trickle(struct ev_timer *t)
{
	int whole = 0, i;

	for (i = 0; i < 4; i++)
		if (trickle_ends[i] <= trickle_pos)
			whole++;
	ck_assert_int_eq(trickle_end->frames, whole);
	if (trickle_pos == buf_len(&trickle)) {
		evloop_break(loop);
		return;
	}
	write_all(trickle_fd, buf_data(&trickle) + trickle_pos, 1);
	trickle_pos++;
	evloop_timer_start(loop, t, 1);
}

START_TEST(test_split_byte_by_byte)
{
	struct ev_timer t;
	struct end e;
	int sv[2], i;

	pair(sv);
	buf_init(&trickle, 4096);
	for (i = 0; i < 4; i++) {
		put_frame(&trickle, (uint64_t)i + 7, i == 3 ? -1 : 5 * i);
		trickle_ends[i] = buf_len(&trickle);
	}
	trickle_pos = 0;
	trickle_fd = sv[1];
	trickle_end = &e;
	end_open(&e, sv[0], 4096, 4096);
	evloop_timer_init(&t, on_trickle, NULL);
	evloop_timer_start(loop, &t, 1);
	run();
	ck_assert_int_eq(e.frames, 4);
	for (i = 0; i < 4; i++)
		ck_assert(e.vals[i] == (uint64_t)i + 7);
	ck_assert_uint_eq(e.lens[2], 10);
	ck_assert_int_eq(e.closes, 0);
	fconn_close(&e.c);
	close(sv[1]);
	buf_free(&trickle);
}
END_TEST

/* A frame of exactly in_max bytes passes (in several reads and writes);
 * one byte more is refused. */
START_TEST(test_big_frames)
{
	const size_t in_max = 1 << 20;
	const long fill = (long)(in_max - FRAME_HEADER_SIZE - 9 - 5);
	struct end a, b;
	int sv[2];

	pair(sv);
	end_open(&a, sv[0], 4096, 4 * in_max);
	end_open(&b, sv[1], in_max, 4096);
	ck_assert_int_eq(send_frame(&a.c, 1, fill), 0);
	ck_assert_uint_eq(fconn_pending(&a.c), in_max);
	ck_assert_int_eq(send_frame(&a.c, 2, fill), 0);
	ck_assert_int_eq(send_frame(&a.c, 3, fill + 1), 0);
	run();		/* b closes at the third frame's header */
	ck_assert_int_eq(b.frames, 2);
	ck_assert_uint_eq(b.lens[0], (size_t)fill);
	ck_assert_uint_eq(b.lens[1], (size_t)fill);
	ck_assert_int_eq(b.closes, 1);
	ck_assert_str_eq(b.reason, "frame too long");
	fconn_close(&a.c);
}
END_TEST

/* A full output queue refuses the frame, keeps what was queued, and the
 * connection goes on. */
START_TEST(test_output_full)
{
	struct end a, b;
	size_t per = FRAME_HEADER_SIZE + 9 + 5 + 100, before;
	int sv[2], n = 0, i;

	pair(sv);
	end_open(&a, sv[0], 4096, 4096);
	end_open(&b, sv[1], 4096, 4096);
	while (send_frame(&a.c, (uint64_t)n, 100) == 0)
		n++;
	ck_assert_int_eq(n, (int)(4096 / per));
	ck_assert_uint_eq(fconn_pending(&a.c), (size_t)n * per);	/* partial one gone */
	/* Too big for the queue even when empty; and past FRAME_PAYLOAD_MAX. */
	before = fconn_pending(&a.c);
	ck_assert_int_eq(send_frame(&a.c, 99, 5000), -1);
	ck_assert_int_eq(send_frame(&a.c, 99, (long)FRAME_PAYLOAD_MAX), -1);
	ck_assert_uint_eq(fconn_pending(&a.c), before);
	ck_assert(fconn_is_open(&a.c));
	b.stop_at = n;
	run();
	ck_assert_uint_eq(fconn_pending(&a.c), 0);
	ck_assert_int_eq(send_frame(&a.c, 4242, 3), 0);
	b.stop_at = n + 1;
	run();
	for (i = 0; i < n; i++)
		ck_assert(b.vals[i] == (uint64_t)i);
	ck_assert(b.vals[n] == 4242);
	ck_assert_int_eq(a.closes + b.closes, 0);
	fconn_close(&a.c);
	fconn_close(&b.c);
}
END_TEST

/* Whole frames appended by an encoder (which checks the room first) and
 * handed over with fconn_flush(); a refused fconn_end() leaves the bound
 * as it was. */
START_TEST(test_flush_encoded)
{
	struct end a, b;
	struct buf raw;
	int sv[2], n = 0;

	pair(sv);
	end_open(&a, sv[0], 4096, 1000);
	end_open(&b, sv[1], 4096, 4096);
	buf_init(&raw, 4096);
	put_frame(&raw, 1, 100);
	while (buf_room(fconn_out(&a.c)) >= buf_len(&raw)) {
		ck_assert_int_eq(buf_append(fconn_out(&a.c), buf_data(&raw), buf_len(&raw)), BUF_OK);
		n++;
	}
	ck_assert_int_eq(n, (int)(1000 / buf_len(&raw)));
	fconn_flush(&a.c);
	b.stop_at = n;
	run();
	ck_assert_uint_eq(fconn_pending(&a.c), 0);
	ck_assert_int_eq(send_frame(&a.c, 2, 2000), -1);
	ck_assert_uint_eq(buf_room(fconn_out(&a.c)), 1000);
	ck_assert_int_eq(send_frame(&a.c, 3, 10), 0);
	ck_assert_uint_eq(buf_room(fconn_out(&a.c)), 1000 - fconn_pending(&a.c));
	b.stop_at = n + 1;
	run();
	ck_assert(b.vals[n] == 3);
	ck_assert_int_eq(a.closes + b.closes, 0);
	fconn_close(&a.c);
	fconn_close(&b.c);
	buf_free(&raw);
}
END_TEST

/* The peer goes away: on_close once, with a reason; the owner may free
 * itself there. */
static int heap_closes;
static char heap_reason[128];

static void
on_close_free(struct fconn *c, const char *reason)
{
	struct end *e = c->arg;

	ck_assert_int_eq(c->fd, -1);
	heap_closes++;
	snprintf(heap_reason, sizeof(heap_reason), "%s", reason);
	(void)e->frames;
	free(e);
	evloop_break(loop);
}

START_TEST(test_peer_close)
{
	struct end *e = calloc(1, sizeof(*e));
	struct buf raw;
	int sv[2];

	pair(sv);
	buf_init(&raw, 4096);
	put_frame(&raw, 1, -1);
	put_frame(&raw, 2, 4);
	buf_append(&raw, "\0\x20\0\0", 4);	/* half a header */
	write_all(sv[1], buf_data(&raw), buf_len(&raw));
	close(sv[1]);
	ck_assert_int_eq(fconn_open(&e->c, loop, sv[0], 4096, 4096, on_frame, on_close_free, e), 0);
	heap_closes = 0;
	run();
	ck_assert_int_eq(heap_closes, 1);
	ck_assert_str_eq(heap_reason, "end of file");
	run_for(50);
	ck_assert_int_eq(heap_closes, 1);
	buf_free(&raw);
}
END_TEST

/* A write to a vanished peer fails in the loop, not in fconn_end. */
START_TEST(test_write_to_closed_peer)
{
	struct end a;
	int sv[2];

	pair(sv);
	end_open(&a, sv[0], 4096, 4096);
	close(sv[1]);
	ck_assert_int_eq(send_frame(&a.c, 1, 10), 0);
	ck_assert_int_eq(a.closes, 0);
	ck_assert(fconn_is_open(&a.c));
	run();
	ck_assert_int_eq(a.closes, 1);
	ck_assert(a.reason[0] != '\0');
	run_for(30);
	ck_assert_int_eq(a.closes, 1);
	/* Building on a closed connection is refused and leaks nothing. */
	ck_assert_int_eq(send_frame(&a.c, 2, 10), -1);
	put_frame(fconn_out(&a.c), 3, 10);
	fconn_flush(&a.c);
	ck_assert_uint_eq(fconn_pending(&a.c), 0);
	fconn_close(&a.c);
}
END_TEST

/* Hostile headers after one good frame: the good one is delivered, then
 * the connection ends. */
START_TEST(test_malformed_headers)
{
	static const struct {
		unsigned char h[8];
		const char *reason;
	} rows[] = {
		{ { 0, 32, 0, 0, 0x7f, 0xff, 0xff, 0xff }, "malformed frame" },	/* > FRAME_PAYLOAD_MAX */
		{ { 0, 32, 0, 0, 0x00, 0x40, 0x00, 0x01 }, "malformed frame" },	/* max + 1 */
		{ { 0, 32, 0, 1, 0, 0, 0, 0 }, "malformed frame" },		/* reserved */
		{ { 0, 32, 0, 0, 0, 0, 0x10, 0 }, "frame too long" },		/* 4096 > in_max */
		{ { 0, 32, 0, 0, 0, 0, 0x03, 0xf9 }, "frame too long" },	/* 8 + 1017 */
	};
	struct buf raw;
	struct end e;
	size_t i;
	int sv[2];

	buf_init(&raw, 4096);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pair(sv);
		buf_reset(&raw);
		put_frame(&raw, 5, -1);
		buf_append(&raw, rows[i].h, 8);
		write_all(sv[1], buf_data(&raw), buf_len(&raw));
		end_open(&e, sv[0], 1024, 4096);
		run();
		ck_assert_int_eq(e.frames, 1);
		ck_assert_int_eq(e.closes, 1);
		ck_assert_msg(strcmp(e.reason, rows[i].reason) == 0, "row %zu: %s", i, e.reason);
		close(sv[1]);
	}
	/* 8 + 1016 is exactly in_max: that is a frame, not an error. */
	pair(sv);
	buf_reset(&raw);
	put_frame(&raw, 6, 1024 - FRAME_HEADER_SIZE - 9 - 5);
	write_all(sv[1], buf_data(&raw), buf_len(&raw));
	end_open(&e, sv[0], 1024, 4096);
	e.stop_at = 1;
	run();
	ck_assert_int_eq(e.closes, 0);
	fconn_close(&e.c);
	close(sv[1]);
	buf_free(&raw);
}
END_TEST

/* on_frame closes the connection and frees its owner while more frames
 * are buffered: nothing more is called and nothing touches the freed
 * owner (ASan would say so). The reader stays valid until on_frame
 * returns. */
static int closing_frames, closing_closes, closing_at;

static void
on_frame_closing(struct fconn *c, struct frame_reader *r)
{
	struct end *e = c->arg;
	uint64_t v;

	closing_frames++;
	if (closing_frames < closing_at)
		return;
	fconn_close(c);
	ck_assert(!fconn_is_open(c));
	ck_assert_int_eq(frame_get_u64(r, &v), 0);	/* r still readable */
	ck_assert(v == (uint64_t)closing_at);
	free(e);
}

static void
on_close_counting(struct fconn *c, const char *reason)
{
	(void)c;
	(void)reason;
	closing_closes++;
}

START_TEST(test_close_inside_on_frame)
{
	struct buf raw;
	struct end *e;
	int sv[2], i, at;
	char byte;

	buf_init(&raw, 4096);
	for (i = 1; i <= 6; i++)
		put_frame(&raw, (uint64_t)i, i * 3);
	for (at = 1; at <= 6; at++) {
		pair(sv);
		write_all(sv[1], buf_data(&raw), buf_len(&raw));
		e = calloc(1, sizeof(*e));
		ck_assert_int_eq(fconn_open(&e->c, loop, sv[0], 4096, 4096, on_frame_closing,
		                            on_close_counting, e), 0);
		closing_frames = closing_closes = 0;
		closing_at = at;
		run_for(30);
		ck_assert_int_eq(closing_frames, at);
		ck_assert_int_eq(closing_closes, 0);
		/* Our end is closed: the peer sees EOF. */
		ck_assert_int_eq(read(sv[1], &byte, 1), 0);
		close(sv[1]);
	}
	buf_free(&raw);
}
END_TEST

/* Closed inside on_frame but kept: usable as a closed connection. */
static void
on_frame_close_keep(struct fconn *c, struct frame_reader *r)
{
	struct end *e = c->arg;

	(void)r;
	e->frames++;
	fconn_close(c);
	ck_assert_int_eq(send_frame(c, 1, 1), -1);
}

START_TEST(test_close_inside_on_frame_keep)
{
	struct buf raw;
	struct end e;
	int sv[2];

	pair(sv);
	buf_init(&raw, 4096);
	put_frame(&raw, 1, -1);
	put_frame(&raw, 2, -1);
	write_all(sv[1], buf_data(&raw), buf_len(&raw));
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(fconn_open(&e.c, loop, sv[0], 4096, 4096, on_frame_close_keep, on_close, &e), 0);
	run_for(30);
	ck_assert_int_eq(e.frames, 1);
	ck_assert_int_eq(e.closes, 0);
	ck_assert(!fconn_is_open(&e.c));
	fconn_close(&e.c);
	close(sv[1]);
	buf_free(&raw);
}
END_TEST

START_TEST(test_unix_listen_connect)
{
	char dir[] = "/tmp/fconn_test.XXXXXX";
	char path[256], file[256];
	struct stat st;
	struct end a, b;
	int lfd, cfd, sfd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/qmgr", dir);
	snprintf(file, sizeof(file), "%s/plain", dir);

	lfd = fconn_listen_unix(path, 0620, 16);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0620);
	ck_assert(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(lfd, F_GETFL) & O_NONBLOCK);

	cfd = fconn_connect_unix(path);
	ck_assert_int_ge(cfd, 0);
	ck_assert(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(cfd, F_GETFL) & O_NONBLOCK);
	sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(sfd, 0);
	end_open(&a, cfd, 4096, 4096);
	end_open(&b, sfd, 4096, 4096);
	b.echo = true;
	a.stop_at = 2;
	ck_assert_int_eq(send_frame(&a.c, 1, 100), 0);
	ck_assert_int_eq(send_frame(&a.c, 2, -1), 0);
	run();
	ck_assert(a.vals[0] == 1001 && a.vals[1] == 1002);
	ck_assert_uint_eq(b.lens[0], 100);
	fconn_close(&a.c);
	fconn_close(&b.c);
	close(lfd);

	/* Nobody listens on the stale socket; listening again replaces it. */
	ck_assert_int_eq(fconn_connect_unix(path), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	lfd = fconn_listen_unix(path, 0600, 16);
	ck_assert_int_ge(lfd, 0);
	cfd = fconn_connect_unix(path);
	ck_assert_int_ge(cfd, 0);
	close(cfd);
	close(lfd);

	/* A file that is not a socket is not "stale": it stays. */
	close(open(file, O_WRONLY | O_CREAT | O_EXCL, 0600));
	ck_assert_int_eq(fconn_listen_unix(file, 0600, 16), -1);
	ck_assert_int_eq(errno, EADDRINUSE);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert(S_ISREG(st.st_mode));

	unlink(file);
	unlink(path);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_unix_errors)
{
	char dir[] = "/tmp/fconn_test.XXXXXX";
	char path[256], longpath[300];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/missing", dir);
	errno = 0;
	ck_assert_int_eq(fconn_connect_unix(path), -1);
	ck_assert_int_eq(errno, ENOENT);

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	errno = 0;
	ck_assert_int_eq(fconn_connect_unix(longpath), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	errno = 0;
	ck_assert_int_eq(fconn_listen_unix(longpath, 0600, 1), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	/* 108 bytes do not fit sun_path with its NUL; 107 would. */
	longpath[108] = '\0';
	errno = 0;
	ck_assert_int_eq(fconn_connect_unix(longpath), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	longpath[107] = '\0';
	errno = 0;
	ck_assert_int_eq(fconn_connect_unix(longpath), -1);
	ck_assert_int_ne(errno, ENAMETOOLONG);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* A refused open leaves the fd to the caller and a closable struct. */
START_TEST(test_open_einval)
{
	struct end e;
	int sv[2];

	pair(sv);
	memset(&e, 0, sizeof(e));
	errno = 0;
	ck_assert_int_eq(fconn_open(&e.c, loop, sv[0], 4, 4096, on_frame, on_close, &e), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(!fconn_is_open(&e.c));
	fconn_close(&e.c);
	ck_assert_int_ne(fcntl(sv[0], F_GETFD), -1);	/* still open, still ours */
	close(sv[0]);
	close(sv[1]);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("fconn");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_both_ways);
	tcase_add_test(tc, test_many_in_one_read);
	tcase_add_test(tc, test_split_byte_by_byte);
	tcase_add_test(tc, test_big_frames);
	tcase_add_test(tc, test_output_full);
	tcase_add_test(tc, test_flush_encoded);
	tcase_add_test(tc, test_peer_close);
	tcase_add_test(tc, test_write_to_closed_peer);
	tcase_add_test(tc, test_malformed_headers);
	tcase_add_test(tc, test_close_inside_on_frame);
	tcase_add_test(tc, test_close_inside_on_frame_keep);
	tcase_add_test(tc, test_unix_listen_connect);
	tcase_add_test(tc, test_unix_errors);
	tcase_add_test(tc, test_open_einval);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
