/* Unit tests for common/evloop.c: timer order, cancel, io removal in dispatch. */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/evloop.h"

static struct evloop *loop;
static int fired[16], nfired;

static void
on_timer(struct ev_timer *t)
{
	fired[nfired++] = (int)(long)t->arg;
	if (nfired == 3)
		evloop_break(loop);
}

START_TEST(test_timer_order_and_stop)
{
	struct ev_timer t[4];
	long delays[4] = { 30, 10, 20, 5 };
	int i;

	loop = evloop_new();
	nfired = 0;
	for (i = 0; i < 4; i++) {
		evloop_timer_init(&t[i], on_timer, (void *)(long)i);
		evloop_timer_start(loop, &t[i], delays[i]);
	}
	evloop_timer_stop(loop, &t[3]);		/* the earliest never fires */
	ck_assert(!evloop_timer_active(&t[3]));
	evloop_run(loop);
	ck_assert_int_eq(nfired, 3);
	ck_assert_int_eq(fired[0], 1);
	ck_assert_int_eq(fired[1], 2);
	ck_assert_int_eq(fired[2], 0);
	evloop_free(loop);
}
END_TEST

/* Many timers restarted in random order come out sorted. */
static int64_t last_deadline;
static int heap_count;

static void
on_heap_timer(struct ev_timer *t)
{
	ck_assert(t->deadline >= last_deadline);
	last_deadline = t->deadline;
	if (++heap_count == 500)
		evloop_break(loop);
}

START_TEST(test_heap)
{
	struct ev_timer *t = calloc(1000, sizeof(*t));
	int i;

	loop = evloop_new();
	srand(7);
	for (i = 0; i < 1000; i++) {
		evloop_timer_init(&t[i], on_heap_timer, NULL);
		evloop_timer_start(loop, &t[i], rand() % 50);
	}
	for (i = 0; i < 1000; i += 2)
		evloop_timer_stop(loop, &t[i]);
	for (i = 1; i < 1000; i += 4)
		evloop_timer_start(loop, &t[i], rand() % 50);
	evloop_run(loop);
	ck_assert_int_eq(heap_count, 500);
	evloop_free(loop);
	free(t);
}
END_TEST

/* A watcher removed by an earlier callback of the same batch is not called. */
static struct ev_io ios[2];
static int calls[2];

static void
on_io(struct ev_io *io, unsigned revents)
{
	int me = io == &ios[0] ? 0 : 1;

	(void)revents;
	calls[me]++;
	evloop_io_del(loop, &ios[1 - me]);
	evloop_io_del(loop, io);
	evloop_break(loop);
}

START_TEST(test_remove_during_dispatch)
{
	int a[2], b[2];

	loop = evloop_new();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	ck_assert_int_eq(write(a[1], "x", 1), 1);
	ck_assert_int_eq(write(b[1], "x", 1), 1);
	ck_assert_int_eq(evloop_io_add(loop, &ios[0], a[0], EV_READ, on_io, NULL), 0);
	ck_assert_int_eq(evloop_io_add(loop, &ios[1], b[0], EV_READ, on_io, NULL), 0);
	evloop_run(loop);
	ck_assert_int_eq(calls[0] + calls[1], 1);
	evloop_free(loop);
	close(a[0]); close(a[1]); close(b[0]); close(b[1]);
}
END_TEST

static int got_signal;

static void
on_signal(int signo, void *arg)
{
	(void)arg;
	got_signal = signo;
	evloop_break(loop);
}

START_TEST(test_signal)
{
	loop = evloop_new();
	ck_assert_int_eq(evloop_signal_add(loop, SIGUSR1, on_signal, NULL), 0);
	kill(getpid(), SIGUSR1);
	evloop_run(loop);
	ck_assert_int_eq(got_signal, SIGUSR1);
	evloop_free(loop);
}
END_TEST

/* A timer that re-arms itself for "now" must not starve the descriptors:
 * it runs once per turn, and the pipe gets its turn (qmgr's wake and flush
 * timers once kept the loop from reading for 24 s). */
static int spin_count, spin_pipe = -1;

static void
on_spin_timer(struct ev_timer *t)
{
	ck_assert_int_lt(spin_count, 1000);	/* starving: the pipe never got a turn */
	if (spin_count++ == 0)
		ck_assert_int_eq(write(spin_pipe, "x", 1), 1);
	evloop_timer_start(loop, t, 0);
}

static void
on_pipe_ready(struct ev_io *io, unsigned revents)
{
	(void)io;
	(void)revents;
	evloop_break(loop);
}

START_TEST(test_rearmed_timer_does_not_starve_io)
{
	struct ev_timer t;
	struct ev_io io;
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	loop = evloop_new();
	spin_count = 0;
	evloop_timer_init(&t, on_spin_timer, NULL);
	evloop_timer_start(loop, &t, 0);
	ck_assert_int_eq(evloop_io_add(loop, &io, p[0], EV_READ, on_pipe_ready, NULL), 0);
	spin_pipe = p[1];	/* the first run of the timer makes the pipe readable */
	evloop_run(loop);
	ck_assert_int_ge(spin_count, 1);
	ck_assert_int_le(spin_count, 3);
	evloop_io_del(loop, &io);
	evloop_timer_stop(loop, &t);
	evloop_free(loop);
	close(p[0]);
	close(p[1]);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("evloop");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_timer_order_and_stop);
	tcase_add_test(tc, test_heap);
	tcase_add_test(tc, test_remove_during_dispatch);
	tcase_add_test(tc, test_signal);
	tcase_add_test(tc, test_rearmed_timer_does_not_starve_io);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
