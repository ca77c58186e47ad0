/* Unit tests for queue/agent_link.c: the delay format, and a whole
 * conversation with a stand-in qmgr on a real unix socket: HELLO, DELIVER
 * to the agent, RESULT and DONE back, a lost connection (jobs dropped,
 * reconnected), a frame of the wrong type (reconnected), and stop. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fconn.h"
#include "queue/agent_link.h"

#define WATCHDOG_MS 10000

START_TEST(test_fmt_delay)
{
	static const struct {
		int64_t us;
		const char *want;
	} rows[] = {
		{ 0, "0" },
		{ -5, "0" },
		{ 4999, "0" },		/* rounds to 0.00 */
		{ 5000, "0.01" },
		{ 50000, "0.05" },
		{ 100000, "0.1" },
		{ 1200000, "1.2" },
		{ 1000000, "1" },
		{ 37000000, "37" },
		{ 12345678, "12.35" },
		{ 86400000000, "86400" },
	};
	char buf[24];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ck_assert_str_eq(agent_link_fmt_delay(buf, sizeof(buf), rows[i].us), rows[i].want);
}
END_TEST

/* ---- a stand-in qmgr ---- */

static struct evloop *loop;

struct qmgr {
	int lfd;
	struct ev_io lio;
	struct fconn c;
	bool open;
	int connections;
	int hellos, results, dones, closes;
	struct agent_hello hello;
	struct agent_result result;
	uint64_t done_job;
	int stop_at_hellos, stop_at_dones;
};

struct agent {
	struct agent_link *link;
	int jobs, lost;
	size_t running;		/* reported by on_lost */
	bool answer;		/* report and finish each job at once */
	struct agent_job last;
};

static void
q_frame(struct fconn *c, struct frame_reader *r)
{
	struct qmgr *q = c->arg;
	char err[200];

	switch (r->type) {
	case FRAME_AGENT_HELLO:
		ck_assert_int_eq(agent_hello_decode(r, &q->hello, err, sizeof(err)), 0);
		q->hellos++;
		if (q->hellos == q->stop_at_hellos)
			evloop_break(loop);
		break;
	case FRAME_AGENT_RESULT:
		ck_assert_int_eq(agent_result_decode(r, &q->result, err, sizeof(err)), 0);
		q->results++;
		break;
	case FRAME_AGENT_DONE:
		ck_assert_int_eq(agent_done_decode(r, &q->done_job, err, sizeof(err)), 0);
		q->dones++;
		if (q->dones == q->stop_at_dones)
			evloop_break(loop);
		break;
	default:
		ck_abort_msg("frame type %d", (int)r->type);
	}
}

static void
q_closed(struct fconn *c, const char *reason)
{
	struct qmgr *q = c->arg;

	(void)reason;
	q->open = false;
	q->closes++;
}

static void
q_accept(struct ev_io *io, unsigned revents)
{
	struct qmgr *q = io->arg;
	int fd = accept4(q->lfd, NULL, NULL, SOCK_CLOEXEC);

	(void)revents;
	if (fd < 0)
		return;
	if (q->open)
		fconn_close(&q->c);
	ck_assert_int_eq(fconn_open(&q->c, loop, fd, 1 << 20, 1 << 20, q_frame, q_closed, q), 0);
	q->open = true;
	q->connections++;
}

static void
q_send_job(struct qmgr *q, uint64_t job_id)
{
	struct agent_job j;

	agent_job_init(&j);
	j.job_id = job_id;
	snprintf(j.queue_id, sizeof(j.queue_id), "0660DD780E66CB");
	snprintf(j.transport, sizeof(j.transport), "local");
	snprintf(j.nexthop, sizeof(j.nexthop), "tern.test");
	j.sender = strdup("a@tern.test");
	j.arrival = agent_link_now_us() - 2000000;
	agent_job_add_rcpt(&j, 7, "bob@tern.test", NULL, 0);
	ck_assert_int_eq(agent_job_encode(&j, fconn_out(&q->c)), 0);
	fconn_flush(&q->c);
	agent_job_free(&j);
}

/* ---- the agent's callbacks ---- */

static void
a_job(void *arg, struct agent_job *j)
{
	struct agent *a = arg;
	struct agent_result r;

	a->jobs++;
	a->running++;
	agent_job_free(&a->last);
	a->last = *j;		/* takes the contents */
	if (!a->answer) {
		evloop_break(loop);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.status = AGENT_DELIVERED;
	snprintf(r.enh, sizeof(r.enh), "2.0.0");
	snprintf(r.text, sizeof(r.text), "delivered to maildir");
	r.delays[0] = -3;	/* clamped */
	r.delays[3] = 40000;
	agent_link_result(a->link, &a->last, 0, &r);
	ck_assert_uint_eq(r.job_id, j->job_id);
	ck_assert_uint_eq(r.index, 7);
	ck_assert_str_eq(r.relay, "none");
	agent_link_done(a->link, &a->last);
	a->running--;
}

static size_t
a_lost(void *arg)
{
	struct agent *a = arg;
	size_t n = a->running;

	a->lost++;
	a->running = 0;
	return n;
}

static void
watchdog(struct ev_timer *t)
{
	(void)t;
	ck_abort_msg("watchdog: the conversation did not finish");
}

static struct ev_timer dog, pause_timer;

static void
pause_over(struct ev_timer *t)
{
	(void)t;
	evloop_break(loop);
}

/* Run the loop for ms. */
static void
run_for(int64_t ms)
{
	evloop_timer_start(loop, &pause_timer, ms);
	evloop_run(loop);
}

static void
run(void)
{
	evloop_timer_start(loop, &dog, WATCHDOG_MS);
	evloop_run(loop);
	evloop_timer_stop(loop, &dog);
}

START_TEST(test_conversation)
{
	char dir[] = "/tmp/agent_link_test.XXXXXX", path[256];
	struct qmgr q;
	struct agent a;

	memset(&q, 0, sizeof(q));
	memset(&a, 0, sizeof(a));
	agent_job_init(&a.last);
	loop = evloop_new();
	ck_assert_ptr_nonnull(loop);
	evloop_timer_init(&dog, watchdog, NULL);
	evloop_timer_init(&pause_timer, pause_over, NULL);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/private", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/private/qmgr", dir);
	q.lfd = fconn_listen_unix(path, 0600, 16);
	ck_assert_int_ge(q.lfd, 0);
	ck_assert_int_eq(evloop_io_add(loop, &q.lio, q.lfd, EV_READ, q_accept, &q), 0);

	a.link = agent_link_new(loop, dir, "local", 20, a_job, a_lost, &a);
	ck_assert(!agent_link_up(a.link));
	agent_link_start(a.link);
	ck_assert(agent_link_up(a.link));

	/* HELLO: transport and slots. */
	q.stop_at_hellos = 1;
	run();
	ck_assert_int_eq(q.connections, 1);
	ck_assert_str_eq(q.hello.transport, "local");
	ck_assert_uint_eq(q.hello.slots, 20);
	ck_assert_uint_eq(q.hello.version, AGENT_PROTO_VERSION);
	ck_assert_uint_eq(q.hello.pid, (uint64_t)getpid());

	/* DELIVER in; RESULT and DONE out. */
	a.answer = true;
	q.stop_at_dones = 1;
	q_send_job(&q, 41);
	run();
	ck_assert_int_eq(a.jobs, 1);
	ck_assert_str_eq(a.last.rcpts[0].addr, "bob@tern.test");
	ck_assert_int_eq(q.results, 1);
	ck_assert_uint_eq(q.result.job_id, 41);
	ck_assert_uint_eq(q.result.index, 7);
	ck_assert_int_eq(q.result.status, AGENT_DELIVERED);
	ck_assert_str_eq(q.result.relay, "none");
	ck_assert_int_eq(q.result.delays[0], 0);
	ck_assert_int_eq(q.result.delays[3], 40000);
	ck_assert_uint_eq(q.done_job, 41);

	/* qmgr goes away with a job in flight: it is dropped, and the link
	 * says HELLO again about a second later. */
	a.answer = false;
	q_send_job(&q, 42);
	run();
	ck_assert_int_eq(a.jobs, 2);
	fconn_close(&q.c);
	q.open = false;
	q.stop_at_hellos = 2;
	run();
	ck_assert_int_eq(a.lost, 1);
	ck_assert_uint_eq(a.running, 0);
	ck_assert_int_eq(q.connections, 2);
	ck_assert(agent_link_up(a.link));

	/* A frame the agent does not take: it reconnects. */
	{
		struct agent_hello h = { .version = 1, .slots = 1, .pid = 1 };

		snprintf(h.transport, sizeof(h.transport), "x");
		ck_assert_int_eq(agent_hello_encode(&h, fconn_out(&q.c)), 0);
		fconn_flush(&q.c);
	}
	q.stop_at_hellos = 3;
	run();
	ck_assert_int_eq(a.lost, 2);
	ck_assert_int_eq(q.connections, 3);

	/* Stopped: closed, no callback, no reconnect; a RESULT goes nowhere. */
	agent_link_stop(a.link);
	ck_assert(!agent_link_up(a.link));
	agent_link_done(a.link, &a.last);
	run_for(AGENT_LINK_RETRY_MS + 500);
	ck_assert_int_eq(a.lost, 2);
	ck_assert_int_eq(q.connections, 3);
	ck_assert_int_eq(q.closes, 2);	/* the bad frame's reconnect, the stop */
	ck_assert_int_eq(q.dones, 1);

	agent_link_free(a.link);
	agent_job_free(&a.last);
	if (q.open)
		fconn_close(&q.c);
	evloop_io_del(loop, &q.lio);
	close(q.lfd);
	evloop_free(loop);
	unlink(path);
	snprintf(path, sizeof(path), "%s/private", dir);
	rmdir(path);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_unreachable)
{
	struct agent a;

	memset(&a, 0, sizeof(a));
	loop = evloop_new();
	a.link = agent_link_new(loop, "/nonexistent/spool", "smtp", 1, a_job, a_lost, &a);
	agent_link_start(a.link);
	ck_assert(!agent_link_up(a.link));
	agent_link_free(a.link);
	agent_link_free(NULL);
	evloop_free(loop);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("agent_link");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_fmt_delay);
	tcase_add_test(tc, test_conversation);
	tcase_add_test(tc, test_unreachable);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
