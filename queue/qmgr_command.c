/*
 * qmgr_command: the queue verbs of ternctl (and sendmail -q): flush, hold,
 * release, delete, requeue, on queue ids, "@domain" or "ALL"; and stats,
 * answered with qmgr's counters and a census of the schedule.
 *
 * Every command first commits the results waiting to be recorded, so it
 * acts on the recorded state. A message with recipients in a delivery
 * job right now is not deleted or requeued (that would race the agent);
 * the reply says how many were skipped, and the command can be repeated.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "common/log.h"
#include "queue/qmgr_impl.h"

struct command_run {
	struct qmgr *q;
	const struct qmgr_command *cmd;
	struct qstore_batch batch;
	struct sched_msg **hits;
	size_t nhits, cap;
	size_t skipped;
	int64_t now;
};

static bool
msg_has_domain(struct qmgr *q, const struct sched_msg *m, const char *domain)
{
	struct envelope env;
	char err[200];
	bool found = false;

	envelope_init(&env);
	if (spool_envelope_get(q->spool, m->id, &env, err, sizeof(err)) == SPOOL_OK)
		for (size_t i = 0; i < env.nrcpt && !found; i++) {
			const char *at = strrchr(env.rcpts[i].addr, '@');

			found = at != NULL && strcasecmp(at + 1, domain) == 0 &&
			        i < m->nrcpt && m->rcpts[i].state != SCHED_DONE;
		}
	envelope_free(&env);
	return found;
}

static bool
msg_selected(struct command_run *run, struct sched_msg *m)
{
	for (size_t i = 0; i < run->cmd->nselectors; i++) {
		const char *sel = run->cmd->selectors[i];

		if (strcmp(sel, "ALL") == 0 || strcasecmp(sel, m->id) == 0)
			return true;
		if (sel[0] == '@' && msg_has_domain(run->q, m, sel + 1))
			return true;
	}
	return false;
}

static void
collect(void *arg, struct sched_msg *m)
{
	struct command_run *run = arg;

	if (m->gone || !msg_selected(run, m))
		return;
	if (run->nhits == run->cap) {
		run->cap = run->cap ? run->cap * 2 : 64;
		run->hits = realloc(run->hits, run->cap * sizeof(*run->hits));
		if (run->hits == NULL)
			fatal("out of memory");
	}
	run->hits[run->nhits++] = m;
}

static bool
msg_in_job(const struct sched_msg *m)
{
	if (m->njobs > 0)
		return true;
	for (uint32_t i = 0; i < m->nrcpt; i++)
		if (m->rcpts[i].state == SCHED_ACTIVE)
			return true;
	return false;
}

static void
put_held(struct command_run *run, struct sched_msg *m, bool held)
{
	struct qstore_msg flags;
	char err[200];

	if (qstore_msg_get(run->q->qs, m->id, &flags, err, sizeof(err)) != SPOOL_OK) {
		memset(&flags, 0, sizeof(flags));
		flags.first_seen = run->now / 1000;
	}
	flags.held = held;
	qstore_batch_put_msg(&run->batch, m->id, &flags);
}

/* Requeue: recipients not yet final start afresh (no attempts, due now,
 * routed again with the configuration in force). */
static void
requeue(struct command_run *run, struct sched_msg *m)
{
	struct qmgr *q = run->q;
	struct envelope env;
	struct qstore_rcpt fresh;
	char err[200], id[SCHED_ID_SIZE];
	bool held = m->held;

	envelope_init(&env);
	if (spool_envelope_get(q->spool, m->id, &env, err, sizeof(err)) != SPOOL_OK) {
		log_warning("%s: requeue: %s", m->id, err);
		envelope_free(&env);
		run->skipped++;
		return;
	}
	qstore_rcpt_init(&fresh);
	for (uint32_t i = 0; i < m->nrcpt; i++)
		if (m->rcpts[i].state != SCHED_DONE)
			qstore_batch_put_rcpt(&run->batch, m->id, i, &fresh);
	if (qstore_batch_commit(q->qs, &run->batch, err, sizeof(err)) != SPOOL_OK) {
		log_error("%s: requeue: %s", m->id, err);
		run->skipped++;
	} else {
		/* Done recipients stay done: reload with their states. */
		bool *done = calloc(m->nrcpt, sizeof(*done));

		if (done == NULL)
			fatal("out of memory");
		for (uint32_t i = 0; i < m->nrcpt; i++)
			done[i] = m->rcpts[i].state == SCHED_DONE;
		snprintf(id, sizeof(id), "%s", m->id);
		if (m->data != NULL)
			qmgr_on_idle(q, m);
		sched_msg_remove(q->sched, m);
		qmgr_load_message(q, id, &env, held);
		m = sched_msg_find(q->sched, id);
		for (uint32_t i = 0; m != NULL && i < m->nrcpt; i++)
			if (done[i] && m->rcpts[i].state != SCHED_DONE)
				sched_rcpt_done(q->sched, m, i);
		free(done);
		log_info("%s: requeued", id);
	}
	qstore_batch_free(&run->batch);
	qstore_batch_init(&run->batch);
	envelope_free(&env);
}

static void
reply(struct qmgr_client *cl, uint64_t status, uint64_t count, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
reply(struct qmgr_client *cl, uint64_t status, uint64_t count, const char *fmt, ...)
{
	struct qmgr_reply rep;
	va_list ap;

	memset(&rep, 0, sizeof(rep));
	rep.status = status;
	rep.count = count;
	va_start(ap, fmt);
	vsnprintf(rep.text, sizeof(rep.text), fmt, ap);
	va_end(ap);
	if (qmgr_reply_encode(&rep, fconn_out(&cl->conn)) == 0)
		fconn_flush(&cl->conn);
}

/* ---- stats ---- */

struct stats_run {
	struct sched_dest **dests;	/* sorted by address, for the census */
	struct qmgr_stats_dest *rows;	/* rows[i] counts dests[i] */
	size_t ndests, cap;
	struct qmgr_stats *st;
	int64_t now;
};

static void
stats_collect_dest(void *arg, struct sched_dest *d)
{
	struct stats_run *run = arg;

	if (run->ndests == run->cap) {
		run->cap = run->cap ? run->cap * 2 : 64;
		run->dests = realloc(run->dests, run->cap * sizeof(*run->dests));
		if (run->dests == NULL)
			fatal("out of memory");
	}
	run->dests[run->ndests++] = d;
}

static int
stats_ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(struct sched_dest *const *)a;
	uintptr_t y = (uintptr_t)*(struct sched_dest *const *)b;

	return x < y ? -1 : x > y;
}

static void
stats_count_msg(void *arg, struct sched_msg *m)
{
	struct stats_run *run = arg;

	if (m->gone)
		return;
	if (m->held)
		run->st->q_hold++;
	else if (m->active)
		run->st->q_active++;
	else if (m->due <= run->now)
		run->st->q_incoming++;
	else
		run->st->q_deferred++;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		const struct sched_rcpt *rc = &m->rcpts[i];
		struct sched_dest **hit;
		struct qmgr_stats_dest *row;

		if (rc->dest == NULL || rc->state == SCHED_DONE)
			continue;
		hit = bsearch(&rc->dest, run->dests, run->ndests, sizeof(*run->dests), stats_ptr_cmp);
		if (hit == NULL)
			continue;
		row = &run->rows[hit - run->dests];
		if (rc->state == SCHED_WAITING)
			row->waiting++;
		else if (rc->state == SCHED_READY)
			row->ready++;
		else
			row->active++;
	}
}

/* Busiest first: recipients not done, then jobs, then by name. */
static int
stats_row_cmp(const void *a, const void *b)
{
	const struct qmgr_stats_dest *x = a, *y = b;
	uint64_t nx = x->waiting + x->ready + x->active, ny = y->waiting + y->ready + y->active;
	int c;

	if (nx != ny)
		return nx > ny ? -1 : 1;
	if (x->jobs != y->jobs)
		return x->jobs > y->jobs ? -1 : 1;
	c = strcmp(x->transport, y->transport);
	return c != 0 ? c : strcmp(x->nexthop, y->nexthop);
}

static void
stats_reply(struct qmgr_client *cl)
{
	struct qmgr *q = cl->q;
	struct qmgr_stats st;
	struct stats_run run;
	size_t i, n = 0;

	memset(&st, 0, sizeof(st));
	memset(&run, 0, sizeof(run));
	run.st = &st;
	run.now = qmgr_now_ms();
	st.started = q->started_ms / 1000;
	st.received = q->counters.received;
	st.delivered = q->counters.delivered;
	st.deferred = q->counters.deferred;
	st.bounced = q->counters.bounced;
	sched_dest_foreach(q->sched, stats_collect_dest, &run);
	qsort(run.dests, run.ndests, sizeof(*run.dests), stats_ptr_cmp);
	run.rows = calloc(run.ndests ? run.ndests : 1, sizeof(*run.rows));
	if (run.rows == NULL)
		fatal("out of memory");
	sched_msg_foreach(q->sched, stats_count_msg, &run);
	/* Keep the destinations with something to say. */
	for (i = 0; i < run.ndests; i++) {
		const struct sched_dest *d = run.dests[i];
		struct qmgr_stats_dest row = run.rows[i];

		row.jobs = d->active;
		row.suspended_until = d->suspended_until > run.now ? d->suspended_until / 1000 : 0;
		if (row.waiting + row.ready + row.active + row.jobs == 0 && row.suspended_until == 0)
			continue;
		snprintf(row.transport, sizeof(row.transport), "%s", d->transport->name);
		snprintf(row.nexthop, sizeof(row.nexthop), "%s", d->nexthop);
		run.rows[n++] = row;
	}
	qsort(run.rows, n, sizeof(*run.rows), stats_row_cmp);
	st.dests_total = n;
	st.dests = run.rows;
	st.ndests = n < AGENT_STATS_DESTS_MAX ? n : AGENT_STATS_DESTS_MAX;
	if (qmgr_stats_encode(&st, fconn_out(&cl->conn)) == 0)
		fconn_flush(&cl->conn);
	else
		reply(cl, EX_SOFTWARE, 0, "the statistics do not fit in a frame");
	free(run.rows);
	free(run.dests);
}

void
qmgr_command_frame(struct qmgr_client *cl, struct frame_reader *r)
{
	struct qmgr *q = cl->q;
	struct qmgr_command cmd;
	struct command_run run;
	char err[200];
	size_t done = 0;

	memset(&cmd, 0, sizeof(cmd));
	if (cl->kind != QMGR_CLIENT_NEW && cl->kind != QMGR_CLIENT_COMMAND) {
		log_warning("queue command on an agent connection; closing it");
		qmgr_agent_gone(cl);
		qmgr_client_free(cl);
		return;
	}
	cl->kind = QMGR_CLIENT_COMMAND;
	if (qmgr_command_decode(r, &cmd, err, sizeof(err)) < 0) {
		reply(cl, EX_DATAERR, 0, "malformed command: %s", err);
		qmgr_command_free(&cmd);
		return;
	}
	qmgr_outcomes_flush(q);
	if (cmd.verb == QMGR_VERB_STATS) {
		if (cmd.nselectors > 0)
			reply(cl, EX_USAGE, 0, "stats takes no selectors");
		else
			stats_reply(cl);
		qmgr_command_free(&cmd);
		return;
	}
	memset(&run, 0, sizeof(run));
	run.q = q;
	run.cmd = &cmd;
	run.now = qmgr_now_ms();
	qstore_batch_init(&run.batch);
	sched_msg_foreach(q->sched, collect, &run);

	for (size_t i = 0; i < run.nhits; i++) {
		struct sched_msg *m = run.hits[i];

		switch (cmd.verb) {
		case QMGR_VERB_FLUSH:
			sched_msg_flush(q->sched, m, run.now);
			done++;
			break;
		case QMGR_VERB_HOLD:
		case QMGR_VERB_RELEASE:
			put_held(&run, m, cmd.verb == QMGR_VERB_HOLD);
			done++;
			break;
		case QMGR_VERB_DELETE:
			if (msg_in_job(m)) {
				run.skipped++;
				break;
			}
			qstore_batch_remove_message(&run.batch, m->id);
			done++;
			break;
		case QMGR_VERB_REQUEUE:
			if (msg_in_job(m)) {
				run.skipped++;
				break;
			}
			requeue(&run, m);
			done++;
			break;
		case QMGR_VERB_STATS:	/* answered above */
			break;
		}
	}
	if (cmd.verb == QMGR_VERB_HOLD || cmd.verb == QMGR_VERB_RELEASE ||
	    cmd.verb == QMGR_VERB_DELETE) {
		if (run.batch.n > 0 && qstore_batch_commit(q->qs, &run.batch, err, sizeof(err)) !=
		    SPOOL_OK) {
			reply(cl, EX_TEMPFAIL, 0, "cannot record the change: %s", err);
			goto out;
		}
		for (size_t i = 0; i < run.nhits; i++) {
			struct sched_msg *m = run.hits[i];

			if (cmd.verb == QMGR_VERB_DELETE) {
				if (msg_in_job(m))
					continue;
				log_info("%s: removed (deleted by the administrator)", m->id);
				if (m->data != NULL)
					qmgr_on_idle(q, m);
				sched_msg_remove(q->sched, m);
			} else {
				sched_msg_hold(q->sched, m, cmd.verb == QMGR_VERB_HOLD, run.now);
				log_info("%s: %s", m->id, cmd.verb == QMGR_VERB_HOLD ? "placed on hold"
				                                                      : "released from hold");
			}
		}
	}
	if (done == 0 && run.skipped == 0)
		reply(cl, EX_NOINPUT, 0, "no message matched");
	else if (run.skipped > 0)
		reply(cl, EX_TEMPFAIL, done, "%zu messages: %s; %zu in delivery right now, try again",
		      done, qmgr_verb_name(cmd.verb), run.skipped);
	else
		reply(cl, 0, done, "%zu message%s: %s", done, done == 1 ? "" : "s",
		      qmgr_verb_name(cmd.verb));
	qmgr_kick(q);
out:
	qstore_batch_free(&run.batch);
	free(run.hits);
	qmgr_command_free(&cmd);
}
