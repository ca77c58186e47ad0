/* Unit tests for queue/qmgr_sched.c: the in-memory schedule, on a fake clock. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "queue/qmgr_sched.h"

/* What the callbacks saw. */
struct world {
	struct sched *s;
	struct sched_job *jobs[4096];
	size_t njobs;
	size_t activated, idled, suspended;
	int64_t suspend_to;	/* on_suspend: wait until this */
	bool suspend_done;	/* on_suspend: mark done instead */
};

static struct world W;

static void
on_job(void *arg, struct sched_job *job)
{
	struct world *w = arg;

	ck_assert_uint_lt(w->njobs, 4096);
	w->jobs[w->njobs++] = job;
}

static void
on_suspend(void *arg, struct sched_msg *m, uint32_t idx, struct sched_dest *d)
{
	struct world *w = arg;

	(void)d;
	w->suspended++;
	if (w->suspend_done)
		sched_rcpt_done(w->s, m, idx);
	else
		sched_rcpt_wait(w->s, m, idx, w->suspend_to);
}

static void
on_activate(void *arg, struct sched_msg *m)
{
	struct world *w = arg;

	ck_assert_ptr_null(m->data);
	m->data = m;
	w->activated++;
}

static void
on_idle(void *arg, struct sched_msg *m)
{
	struct world *w = arg;

	ck_assert_ptr_nonnull(m->data);
	m->data = NULL;
	w->idled++;
}

static void
setup(void)
{
	struct sched_limits lim = { .active_limit = 1000, .job_limit = 100 };
	struct sched_callbacks cb = { on_job, on_suspend, on_activate, on_idle, &W };

	memset(&W, 0, sizeof(W));
	W.s = sched_new(&lim, &cb);
}

static void
teardown(void)
{
	sched_free(W.s);
}

/* A transport with agents: capacity slots, counted globally. */
static struct sched_transport *
transport(const char *name, uint32_t capacity)
{
	struct sched_transport *t = sched_transport_get(W.s, name);

	sched_transport_set_capacity(W.s, t, capacity, true);
	return t;
}

static struct sched_dest *
dest(struct sched_transport *t, const char *hop, uint32_t conc, uint32_t rlimit, int64_t rate)
{
	struct sched_dest *d = sched_dest_get(W.s, t, hop);

	sched_dest_set_limits(W.s, d, conc, rlimit, rate);
	return d;
}

/* A message whose recipients all go to d, due at `due`. */
static struct sched_msg *
msg(const char *id, uint32_t nrcpt, struct sched_dest *d, int64_t due)
{
	struct sched_msg *m = sched_msg_add(W.s, id, nrcpt);

	ck_assert_ptr_nonnull(m);
	for (uint32_t i = 0; i < nrcpt; i++)
		sched_rcpt_route(W.s, m, i, d, false, due);
	sched_msg_commit(W.s, m);
	return m;
}

/* Report every recipient of job j as delivered and end it. */
static void
finish_delivered(struct sched_job *j)
{
	for (uint32_t i = 0; i < j->nrcpt; i++) {
		uint32_t idx = j->rcpts[i];

		ck_assert(sched_job_report(W.s, j, idx));
		ck_assert_uint_eq(j->rcpts[i], idx | SCHED_REPORTED);
		sched_rcpt_done(W.s, j->msg, idx);
	}
	sched_job_end(W.s, j);
}

/* Report every recipient as deferred until t and end the job. */
static void
finish_deferred(struct sched_job *j, int64_t t)
{
	for (uint32_t i = 0; i < j->nrcpt; i++) {
		uint32_t idx = j->rcpts[i];

		ck_assert(sched_job_report(W.s, j, idx));
		sched_rcpt_wait(W.s, j->msg, idx, t);
	}
	sched_job_end(W.s, j);
}

/* A recipient deferred with a short retry time goes into a new job while
 * its first job (a slow second recipient) is still open; that first job
 * then ends without complaint (it once panicked). */
START_TEST(test_redispatch_before_done)
{
	struct sched_transport *t = transport("local", 10);
	struct sched_dest *d = dest(t, "host.example", 5, 50, 0);
	struct sched_msg *m = msg("00000000000009", 2, d, 0);
	struct sched_job *first, *second;

	ck_assert_uint_eq(sched_run(W.s, 1000), 1);
	first = W.jobs[0];
	ck_assert_uint_eq(first->nrcpt, 2);
	ck_assert(sched_job_report(W.s, first, 0));
	sched_rcpt_wait(W.s, m, 0, 2000);		/* due again in 1 s */
	ck_assert_uint_eq(sched_run(W.s, 2000), 1);	/* recipient 0, again */
	second = W.jobs[1];
	ck_assert_uint_eq(second->nrcpt, 1);
	ck_assert_uint_eq(second->rcpts[0], 0);
	ck_assert(sched_job_report(W.s, first, 1));	/* the slow one */
	sched_rcpt_done(W.s, m, 1);
	sched_job_end(W.s, first);
	ck_assert_uint_eq(m->njobs, 1);
	finish_delivered(second);
	ck_assert_uint_eq(m->nleft, 0);
}
END_TEST

START_TEST(test_new_message_one_job_per_destination)
{
	struct sched_transport *t = transport("smtp", 10);
	struct sched_dest *a = dest(t, "a.example", 5, 50, 0);
	struct sched_dest *b = dest(t, "b.example", 5, 50, 0);
	struct sched_msg *m = sched_msg_add(W.s, "00000000000001", 3);

	sched_rcpt_route(W.s, m, 0, a, false, 0);
	sched_rcpt_route(W.s, m, 1, b, false, 0);
	sched_rcpt_route(W.s, m, 2, a, false, 0);
	sched_msg_commit(W.s, m);
	ck_assert_int_eq(sched_next_wakeup(W.s, 1000), 0);
	ck_assert_uint_eq(sched_run(W.s, 1000), 2);
	ck_assert_uint_eq(W.activated, 1);
	ck_assert_uint_eq(W.njobs, 2);
	for (size_t i = 0; i < 2; i++) {
		struct sched_job *j = W.jobs[i];

		ck_assert_ptr_eq(j->msg, m);
		if (j->dest == a) {
			ck_assert_uint_eq(j->nrcpt, 2);
			ck_assert_uint_eq(j->rcpts[0], 0);
			ck_assert_uint_eq(j->rcpts[1], 2);
		} else {
			ck_assert_ptr_eq(j->dest, b);
			ck_assert_uint_eq(j->nrcpt, 1);
			ck_assert_uint_eq(j->rcpts[0], 1);
		}
	}
	ck_assert_ptr_eq(sched_job_find(W.s, W.jobs[1]->id), W.jobs[1]);
	ck_assert_uint_eq(sched_jobs_running(W.s), 2);
	ck_assert_uint_eq(m->njobs, 2);
	finish_delivered(W.jobs[0]);
	ck_assert_uint_eq(W.idled, 0);
	finish_delivered(W.jobs[1]);
	ck_assert_uint_eq(W.idled, 1);
	ck_assert_uint_eq(m->nleft, 0);
	ck_assert_uint_eq(m->njobs, 0);
	ck_assert_uint_eq(sched_jobs_running(W.s), 0);
	ck_assert_int_eq(sched_next_wakeup(W.s, 1000), INT64_MAX);
	sched_msg_remove(W.s, m);
	ck_assert_uint_eq(sched_msg_count(W.s), 0);
	ck_assert_ptr_null(sched_msg_find(W.s, "00000000000001"));
	/* A known id is refused. */
	m = msg("00000000000002", 1, a, 0);
	ck_assert_ptr_null(sched_msg_add(W.s, "00000000000002", 1));
}
END_TEST

START_TEST(test_recipient_limit_splits_jobs)
{
	struct sched_transport *t = transport("smtp", 10);
	struct sched_dest *d = dest(t, "example.org", 2, 2, 0);

	msg("00000000000001", 5, d, 0);
	ck_assert_uint_eq(sched_run(W.s, 0), 2);	/* concurrency 2 */
	ck_assert_uint_eq(W.jobs[0]->nrcpt, 2);
	ck_assert_uint_eq(W.jobs[1]->nrcpt, 2);
	ck_assert_uint_eq(sched_run(W.s, 0), 0);
	finish_delivered(W.jobs[0]);
	ck_assert_uint_eq(sched_run(W.s, 0), 1);
	ck_assert_uint_eq(W.jobs[2]->nrcpt, 1);
	ck_assert_uint_eq(W.jobs[2]->rcpts[0], 4);
	finish_delivered(W.jobs[1]);
	finish_delivered(W.jobs[2]);
	ck_assert_uint_eq(W.idled, 1);
}
END_TEST

START_TEST(test_concurrency_and_fifo_order)
{
	struct sched_transport *t = transport("smtp", 10);
	struct sched_dest *d = dest(t, "example.org", 1, 50, 0);
	struct sched_msg *m1 = msg("00000000000001", 1, d, 0);
	struct sched_msg *m2 = msg("00000000000002", 1, d, 10);
	struct sched_msg *m3 = msg("00000000000003", 1, d, 5);

	ck_assert_uint_eq(sched_run(W.s, 100), 1);
	ck_assert_ptr_eq(W.jobs[0]->msg, m1);
	finish_delivered(W.jobs[0]);
	ck_assert_uint_eq(sched_run(W.s, 100), 1);
	ck_assert_ptr_eq(W.jobs[1]->msg, m3);	/* activated in due order */
	finish_delivered(W.jobs[1]);
	ck_assert_uint_eq(sched_run(W.s, 100), 1);
	ck_assert_ptr_eq(W.jobs[2]->msg, m2);
	finish_delivered(W.jobs[2]);
}
END_TEST

START_TEST(test_transport_capacity_and_global_limit)
{
	struct sched_transport *t = transport("lmtp", 0);
	struct sched_transport *u = transport("smtp", 10);
	struct sched_dest *d = dest(t, "unix:/run/lmtp", 10, 50, 0);
	struct sched_limits lim = { .active_limit = 1000, .job_limit = 3 };

	for (int i = 0; i < 4; i++) {
		char id[16];

		snprintf(id, sizeof(id), "0000000000000%d", i);
		msg(id, 1, d, 0);
	}
	ck_assert_uint_eq(sched_run(W.s, 0), 0);	/* no agent */
	ck_assert_uint_eq(sched_transport_ready(W.s, t), 4);
	ck_assert_int_eq(sched_next_wakeup(W.s, 0), INT64_MAX);
	sched_transport_set_capacity(W.s, t, 2, true);
	ck_assert_uint_eq(sched_run(W.s, 0), 2);
	sched_transport_set_capacity(W.s, t, 10, true);
	sched_set_limits(W.s, &lim);
	ck_assert_uint_eq(sched_run(W.s, 0), 1);	/* global limit 3 */
	/* An in-process transport does not count against the global limit. */
	sched_transport_set_capacity(W.s, u, SCHED_UNLIMITED, false);
	msg("10000000000000", 1, dest(u, "discard", 1, 50, 0), 0);
	ck_assert_uint_eq(sched_run(W.s, 0), 1);
	ck_assert_str_eq(W.jobs[3]->dest->transport->name, "smtp");
	/* Agents went away: what is queued is handed back. */
	W.suspend_to = 60000;
	sched_transport_suspend(W.s, t);
	ck_assert_uint_eq(W.suspended, 1);
	ck_assert_uint_eq(sched_transport_ready(W.s, t), 0);
	for (size_t i = 0; i < W.njobs; i++)
		finish_delivered(W.jobs[i]);
}
END_TEST

START_TEST(test_rate_delay)
{
	struct sched_transport *t = transport("smtp", 10);
	struct sched_dest *d = dest(t, "slow.example", 5, 50, 1000);

	msg("00000000000001", 1, d, 0);
	msg("00000000000002", 1, d, 0);
	ck_assert_uint_eq(sched_run(W.s, 0), 1);
	finish_delivered(W.jobs[0]);
	ck_assert_uint_eq(sched_run(W.s, 500), 0);
	ck_assert_int_eq(sched_next_wakeup(W.s, 500), 1000);
	ck_assert_uint_eq(sched_run(W.s, 1000), 1);
	finish_delivered(W.jobs[1]);
	ck_assert_int_eq(sched_next_wakeup(W.s, 1000), INT64_MAX);
}
END_TEST

START_TEST(test_deferral_and_heap_wakeup)
{
	struct sched_transport *t = transport("smtp", 10);
	struct sched_dest *d = dest(t, "example.org", 5, 50, 0);
	struct sched_msg *m = msg("00000000000001", 2, d, 0);

	ck_assert_uint_eq(sched_run(W.s, 0), 1);
	ck_assert(sched_job_report(W.s, W.jobs[0], 0));
	ck_assert(!sched_job_report(W.s, W.jobs[0], 0));	/* twice */
	ck_assert(!sched_job_report(W.s, W.jobs[0], 7));	/* not in the job */
	sched_rcpt_done(W.s, m, 0);
	ck_assert(sched_job_report(W.s, W.jobs[0], 1));
	sched_rcpt_wait(W.s, m, 1, 5000);
	sched_job_end(W.s, W.jobs[0]);
	ck_assert_uint_eq(W.idled, 1);
	ck_assert_int_eq(sched_next_wakeup(W.s, 10), 5000);
	ck_assert_uint_eq(sched_run(W.s, 4999), 0);
	ck_assert_uint_eq(sched_run(W.s, 5000), 1);
	ck_assert_uint_eq(W.activated, 2);
	ck_assert_uint_eq(W.jobs[1]->nrcpt, 1);
	ck_assert_uint_eq(W.jobs[1]->rcpts[0], 1);
	finish_delivered(W.jobs[1]);
	ck_assert_uint_eq(m->nleft, 0);
}
END_TEST

START_TEST(test_suspended_destination_probes)
{
	struct sched_transport *t = transport("smtp", 10);
	struct sched_dest *d = dest(t, "dead.example", 5, 1, 0);

	sched_dest_suspend(W.s, d, 10000);
	W.suspend_to = 10000;
	msg("00000000000001", 1, d, 0);
	msg("00000000000002", 1, d, 0);
	msg("00000000000003", 1, d, 0);
	ck_assert_uint_eq(sched_run(W.s, 0), 0);
	ck_assert_uint_eq(W.suspended, 3);
	ck_assert_int_eq(sched_next_wakeup(W.s, 0), 10000);
	/* Time comes: one probe, however high the concurrency. */
	ck_assert_uint_eq(sched_run(W.s, 10000), 1);
	ck_assert_uint_eq(sched_run(W.s, 10000), 0);
	/* The probe fails: suspended again; what waits is handed back. */
	sched_dest_suspend(W.s, d, 20000);
	W.suspend_to = 20000;
	finish_deferred(W.jobs[0], 20000);
	ck_assert_uint_eq(sched_run(W.s, 10001), 0);
	ck_assert_uint_eq(W.suspended, 5);
	ck_assert_uint_eq(sched_run(W.s, 20000), 1);
	/* The probe succeeds: full concurrency again. */
	sched_dest_suspend(W.s, d, 0);
	finish_delivered(W.jobs[1]);
	ck_assert_uint_eq(sched_run(W.s, 20000), 2);
	finish_delivered(W.jobs[2]);
	finish_delivered(W.jobs[3]);
	ck_assert_uint_eq(sched_jobs_running(W.s), 0);
	ck_assert_uint_eq(W.idled, W.activated);
}
END_TEST

START_TEST(test_hold_release_flush)
{
	struct sched_transport *t = transport("smtp", 0);
	struct sched_dest *d = dest(t, "example.org", 5, 50, 0);
	struct sched_msg *m = msg("00000000000001", 2, d, 0);
	struct sched_msg *n = msg("00000000000002", 1, d, 3600000);
	struct sched_stats st;

	ck_assert_uint_eq(sched_run(W.s, 0), 0);	/* no capacity: READY */
	sched_stats(W.s, &st);
	ck_assert_uint_eq(st.ready_rcpts, 2);
	ck_assert_uint_eq(st.active_messages, 1);
	sched_msg_hold(W.s, m, true, 0);
	sched_stats(W.s, &st);
	ck_assert_uint_eq(st.ready_rcpts, 0);
	ck_assert_uint_eq(st.active_messages, 0);
	ck_assert_uint_eq(W.idled, 1);
	sched_transport_set_capacity(W.s, t, 5, true);
	ck_assert_uint_eq(sched_run(W.s, 10), 0);	/* held */
	ck_assert_int_eq(sched_next_wakeup(W.s, 10), 3600000);
	sched_msg_hold(W.s, m, false, 20);
	ck_assert_uint_eq(sched_run(W.s, 20), 1);
	ck_assert_ptr_eq(W.jobs[0]->msg, m);
	/* Flush makes the later message due now and lifts a suspension. */
	sched_dest_suspend(W.s, d, 7200000);
	sched_msg_flush(W.s, n, 30);
	ck_assert_int_eq(d->suspended_until, 0);
	ck_assert_uint_eq(sched_run(W.s, 30), 1);
	ck_assert_ptr_eq(W.jobs[1]->msg, n);
	finish_delivered(W.jobs[0]);
	finish_delivered(W.jobs[1]);
}
END_TEST

START_TEST(test_active_limit)
{
	struct sched_transport *t = transport("smtp", 100);
	struct sched_dest *d = dest(t, "example.org", 100, 50, 0);
	struct sched_limits lim = { .active_limit = 2, .job_limit = 100 };

	sched_set_limits(W.s, &lim);
	for (int i = 0; i < 5; i++) {
		char id[16];

		snprintf(id, sizeof(id), "0000000000000%d", i);
		msg(id, 1, d, 0);
	}
	ck_assert_uint_eq(sched_run(W.s, 0), 2);
	ck_assert_uint_eq(W.activated, 2);
	ck_assert_int_eq(sched_next_wakeup(W.s, 0), INT64_MAX);	/* full */
	finish_delivered(W.jobs[0]);
	ck_assert_int_eq(sched_next_wakeup(W.s, 0), 0);
	ck_assert_uint_eq(sched_run(W.s, 0), 1);
	ck_assert_uint_eq(W.activated, 3);
	for (size_t i = 1; i < W.njobs; i++)
		finish_delivered(W.jobs[i]);
	ck_assert_uint_eq(sched_run(W.s, 0), 2);
	ck_assert_uint_eq(W.activated, 5);
	finish_delivered(W.jobs[3]);
	finish_delivered(W.jobs[4]);
	ck_assert_uint_eq(W.idled, 5);
}
END_TEST

START_TEST(test_round_robin_between_destinations)
{
	struct sched_transport *t = transport("smtp", 100);
	struct sched_dest *a = dest(t, "a.example", 10, 50, 0);
	struct sched_dest *b = dest(t, "b.example", 10, 50, 0);
	struct sched_limits lim = { .active_limit = 1000, .job_limit = 4 };
	size_t na = 0, nb = 0;

	sched_set_limits(W.s, &lim);
	for (int i = 0; i < 10; i++) {
		char id[16];

		snprintf(id, sizeof(id), "A000000000000%d", i);
		msg(id, 1, a, 0);
		snprintf(id, sizeof(id), "B000000000000%d", i);
		msg(id, 1, b, 0);
	}
	ck_assert_uint_eq(sched_run(W.s, 0), 4);
	for (size_t i = 0; i < 4; i++) {
		na += W.jobs[i]->dest == a;
		nb += W.jobs[i]->dest == b;
	}
	ck_assert_uint_eq(na, 2);
	ck_assert_uint_eq(nb, 2);
	while (sched_jobs_running(W.s) > 0) {
		finish_delivered(sched_jobs(W.s));
		sched_run(W.s, 0);
	}
	ck_assert_uint_eq(W.njobs, 20);
}
END_TEST

START_TEST(test_remove_with_ready_recipients)
{
	struct sched_transport *t = transport("smtp", 0);
	struct sched_dest *a = dest(t, "a.example", 10, 50, 0);
	struct sched_dest *b = dest(t, "b.example", 10, 50, 0);
	struct sched_msg *m = sched_msg_add(W.s, "00000000000001", 3);
	struct sched_stats st;

	sched_rcpt_route(W.s, m, 0, a, false, 0);
	sched_rcpt_route(W.s, m, 1, b, false, 0);
	sched_rcpt_route(W.s, m, 2, a, true, 0);	/* delivered earlier */
	sched_msg_commit(W.s, m);
	ck_assert_uint_eq(m->nleft, 2);
	ck_assert_uint_eq(sched_run(W.s, 0), 0);
	ck_assert_uint_eq(a->nready, 1);
	ck_assert_uint_eq(b->nready, 1);
	sched_msg_remove(W.s, m);
	ck_assert_uint_eq(a->nready, 0);
	ck_assert_uint_eq(b->nready, 0);
	ck_assert_uint_eq(W.idled, 1);
	sched_stats(W.s, &st);
	ck_assert_uint_eq(st.messages, 0);
	ck_assert_uint_eq(st.ready_rcpts, 0);
	ck_assert_uint_eq(st.dests, 2);
	/* A WAITING recipient can be given up (expired, deleted). */
	m = msg("00000000000002", 2, a, 99999);
	sched_rcpt_done(W.s, m, 0);
	ck_assert_int_eq(sched_next_wakeup(W.s, 0), 99999);
	sched_rcpt_done(W.s, m, 1);
	ck_assert_int_eq(sched_next_wakeup(W.s, 0), INT64_MAX);
	ck_assert_uint_eq(m->nleft, 0);
}
END_TEST

/* Many messages, random due times: activation follows due order. */
START_TEST(test_heap_order_many)
{
	struct sched_transport *t = transport("smtp", SCHED_UNLIMITED);
	struct sched_dest *d = dest(t, "example.org", 1, 50, 0);
	unsigned seed = 12345;
	int64_t last = -1;

	sched_transport_set_capacity(W.s, t, SCHED_UNLIMITED, false);
	for (int i = 0; i < 20000; i++) {
		char id[16];

		seed = seed * 1103515245u + 12345u;
		snprintf(id, sizeof(id), "%014d", i);
		msg(id, 1, d, (int64_t)(seed % 1000000));
	}
	ck_assert_uint_eq(sched_msg_count(W.s), 20000);
	for (int i = 0; i < 20000; i++) {
		int64_t when = sched_next_wakeup(W.s, last < 0 ? 0 : last);
		struct sched_job *j;
		struct sched_msg *m;

		ck_assert_int_ge(when, last);
		ck_assert_uint_eq(sched_run(W.s, when), 1);
		j = W.jobs[0];
		W.njobs = 0;
		ck_assert_int_le(j->msg->rcpts[0].next_attempt, when);
		last = when;
		m = j->msg;
		finish_delivered(j);
		sched_msg_remove(W.s, m);
	}
	ck_assert_uint_eq(sched_msg_count(W.s), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("qmgr_sched");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	log_open("qmgr_sched_test", 0, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_new_message_one_job_per_destination);
	tcase_add_test(tc, test_recipient_limit_splits_jobs);
	tcase_add_test(tc, test_concurrency_and_fifo_order);
	tcase_add_test(tc, test_transport_capacity_and_global_limit);
	tcase_add_test(tc, test_rate_delay);
	tcase_add_test(tc, test_deferral_and_heap_wakeup);
	tcase_add_test(tc, test_suspended_destination_probes);
	tcase_add_test(tc, test_hold_release_flush);
	tcase_add_test(tc, test_active_limit);
	tcase_add_test(tc, test_round_robin_between_destinations);
	tcase_add_test(tc, test_remove_with_ready_recipients);
	tcase_add_test(tc, test_heap_order_many);
	tcase_add_test(tc, test_redispatch_before_done);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
