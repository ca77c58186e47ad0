/*
 * qmgr_jobs: from the schedule to the agents and back.
 *
 *  - activation loads a message's envelope (addresses stay in LMDB while
 *    the message waits) and logs "(queue active)";
 *  - a job goes to a connected agent of its transport as one
 *    FRAME_AGENT_DELIVER, or is run here for discard:, error: and retry:;
 *  - RESULT and DONE frames become outcomes (qmgr_results.c commits them);
 *  - an agent that goes away leaves its unreported recipients deferred
 *    (tried again: at least once, never zero times).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "queue/bounce.h"
#include "queue/qmgr_impl.h"

/* ---- activation ---- */

void
qmgr_on_activate(void *arg, struct sched_msg *m)
{
	struct qmgr *q = arg;
	struct qmgr_active *act = calloc(1, sizeof(*act));
	char err[256];
	int64_t warn_after = config_time(q->cfg, P_DELAY_WARNING_TIME);

	if (act == NULL)
		fatal("out of memory");
	envelope_init(&act->env);
	m->data = act;
	if (spool_envelope_get(q->spool, m->id, &act->env, err, sizeof(err)) != SPOOL_OK) {
		log_error("%s: cannot read the envelope: %s", m->id, err);
		return;
	}
	act->loaded = true;
	act->activated_ms = qmgr_now_ms();
	log_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)", m->id, act->env.sender,
	         (unsigned long long)act->env.size, act->env.nrcpt);
	if (warn_after > 0 && !bounce_is_null_sender(&act->env) &&
	    qmgr_now_ms() / 1000 - act->env.arrival / 1000000 >= warn_after) {
		struct qstore_msg flags;

		if (qstore_msg_get(q->qs, m->id, &flags, err, sizeof(err)) != SPOOL_OK || !flags.warned)
			qmgr_warn_add(q, m);
	}
}

void
qmgr_on_idle(void *arg, struct sched_msg *m)
{
	struct qmgr_active *act = m->data;

	(void)arg;
	if (act == NULL)
		return;
	envelope_free(&act->env);
	free(act);
	m->data = NULL;
}

/* ---- outcomes made here ---- */

static void
result_init(struct agent_result *r, uint64_t job_id, uint32_t idx)
{
	memset(r, 0, sizeof(*r));
	r->job_id = job_id;
	r->index = idx;
	snprintf(r->relay, sizeof(r->relay), "none");
}

/* Every recipient of job not yet reported gets this outcome. */
static void
job_fill(struct qmgr *q, struct sched_job *job, enum qmgr_outcome_kind kind, const char *enh,
         const char *text)
{
	for (uint32_t i = 0; i < job->nrcpt; i++) {
		struct agent_result r;
		uint32_t idx = job->rcpts[i];

		if (idx & SCHED_REPORTED)
			continue;
		(void)sched_job_report(q->sched, job, idx);
		result_init(&r, job->id, idx);
		r.status = kind == QMGR_OUT_DELIVERED ? AGENT_DELIVERED
		         : kind == QMGR_OUT_PERM ? AGENT_PERMFAIL : AGENT_TEMPFAIL;
		snprintf(r.enh, sizeof(r.enh), "%s", enh);
		snprintf(r.text, sizeof(r.text), "%s", text);
		qmgr_outcome_add(q, job->msg, idx, job->dest, kind, &r, true);
	}
}

/*
 * discard:TEXT, error:X.Y.Z TEXT, retry:X.Y.Z TEXT (Postfix's services):
 * the next hop is the text. error: with a 4.x.x code defers, as Postfix's
 * error service does.
 */
static void
job_builtin(struct qmgr *q, struct sched_job *job)
{
	const char *t = job->dest->transport->name;
	const char *hop = job->dest->nexthop;
	char enh[AGENT_ENH_MAX] = "";
	const char *text = hop;
	size_t n = strspn(hop, "0123456789.");

	if (n > 0 && n < sizeof(enh) && (hop[n] == ' ' || hop[n] == '\0') &&
	    (hop[0] == '2' || hop[0] == '4' || hop[0] == '5') && hop[1] == '.') {
		memcpy(enh, hop, n);
		enh[n] = '\0';
		text = hop[n] == ' ' ? hop + n + 1 : "";
	}
	if (strcmp(t, QMGR_T_DISCARD) == 0) {
		job_fill(q, job, QMGR_OUT_DELIVERED, "2.0.0", *text ? text : "discarded");
	} else if (strcmp(t, QMGR_T_ERROR) == 0) {
		if (enh[0] == '4')
			job_fill(q, job, QMGR_OUT_TEMP, enh, *text ? text : "temporary error");
		else
			job_fill(q, job, QMGR_OUT_PERM, enh[0] == '5' ? enh : "5.0.0",
			         *text ? text : "Service unavailable");
	} else {
		job_fill(q, job, QMGR_OUT_TEMP, enh[0] == '4' ? enh : "4.0.0",
		         *text ? text : "delivery deferred");
	}
	qmgr_job_finished(q, job);
}

/* ---- jobs to agents ---- */

static struct qmgr_client *
agent_pick(struct qmgr *q, struct sched_transport *t)
{
	struct qmgr_client *best = NULL;

	/* The least busy agent of the transport. */
	for (struct qmgr_client *cl = q->clients; cl != NULL; cl = cl->next)
		if (cl->kind == QMGR_CLIENT_AGENT && cl->transport == t && cl->busy < cl->slots &&
		    fconn_is_open(&cl->conn) && (best == NULL || cl->busy < best->busy))
			best = cl;
	return best;
}

static int
job_send(struct qmgr *q, struct qmgr_client *cl, struct sched_job *job)
{
	struct qmgr_active *act = job->msg->data;
	const struct envelope *env = &act->env;
	struct agent_job aj;
	int rc;

	(void)q;
	agent_job_init(&aj);
	aj.job_id = job->id;
	snprintf(aj.queue_id, sizeof(aj.queue_id), "%s", job->msg->id);
	snprintf(aj.transport, sizeof(aj.transport), "%s", job->dest->transport->name);
	snprintf(aj.nexthop, sizeof(aj.nexthop), "%s", job->dest->nexthop);
	aj.sender = strdup(env->sender != NULL ? env->sender : "");
	aj.envid = env->envid != NULL ? strdup(env->envid) : NULL;
	if (aj.sender == NULL || (env->envid != NULL && aj.envid == NULL))
		fatal("out of memory");
	aj.ret = env->ret;
	aj.body = env->body;
	aj.smtputf8 = env->smtputf8;
	aj.size = env->size;
	aj.arrival = env->arrival;
	snprintf(aj.client_name, sizeof(aj.client_name), "%s", env->client_name ? env->client_name : "");
	snprintf(aj.client_addr, sizeof(aj.client_addr), "%s", env->client_addr ? env->client_addr : "");
	snprintf(aj.client_helo, sizeof(aj.client_helo), "%s", env->helo ? env->helo : "");
	snprintf(aj.client_proto, sizeof(aj.client_proto), "%s", env->proto ? env->proto : "");
	aj.local_source = env->listener != NULL && strcmp(env->listener, "sendmail") == 0;
	/* With a filter every recipient is routed to it (qmgr_route_filter). */
	aj.to_filter = env->filter != NULL && env->filter[0] != '\0';
	for (uint32_t i = 0; i < job->nrcpt; i++) {
		const struct envelope_rcpt *r = &env->rcpts[job->rcpts[i]];

		agent_job_add_rcpt(&aj, job->rcpts[i], r->addr, r->orcpt, r->notify);
		agent_job_set_target(&aj, r->target);
	}
	rc = agent_job_encode(&aj, fconn_out(&cl->conn));
	agent_job_free(&aj);
	if (rc == 0)
		fconn_flush(&cl->conn);
	return rc;
}

void
qmgr_on_job(void *arg, struct sched_job *job)
{
	struct qmgr *q = arg;
	struct qmgr_active *act = job->msg->data;
	struct qmgr_client *cl;

	if (act == NULL || !act->loaded) {
		job_fill(q, job, QMGR_OUT_TEMP, "4.3.0", "cannot read the message envelope");
		qmgr_job_finished(q, job);
		return;
	}
	if (job->dest->transport->capacity == SCHED_UNLIMITED) {
		job_builtin(q, job);
		return;
	}
	cl = agent_pick(q, job->dest->transport);
	if (cl == NULL || job_send(q, cl, job) < 0) {
		job_fill(q, job, QMGR_OUT_TEMP, "4.3.0",
		         cl == NULL ? "mail transport unavailable"
		                    : "delivery agent busy (job too large for its queue)");
		qmgr_job_finished(q, job);
		return;
	}
	job->data = cl;
	cl->busy++;
}

/* ---- suspension ---- */

void
qmgr_on_suspend(void *arg, struct sched_msg *m, uint32_t idx, struct sched_dest *d)
{
	struct qmgr *q = arg;
	struct agent_result r;
	int64_t now = qmgr_now_ms(), until;
	const char *why = d->data;

	result_init(&r, 0, idx);
	r.status = AGENT_TEMPFAIL;
	if (d->suspended_until > now) {
		until = d->suspended_until;
		snprintf(r.enh, sizeof(r.enh), "4.4.1");
		snprintf(r.text, sizeof(r.text), "delivery temporarily suspended%s%s",
		         why != NULL ? ": " : "", why != NULL ? why : "");
	} else {
		until = now + config_time(q->cfg, P_TRANSPORT_RETRY_TIME) * 1000;
		snprintf(r.enh, sizeof(r.enh), "4.3.0");
		snprintf(r.text, sizeof(r.text), "mail transport unavailable");
	}
	sched_rcpt_wait(q->sched, m, idx, until);
	qmgr_outcome_add(q, m, idx, d, QMGR_OUT_SUSPENDED, &r, true);
}

void
qmgr_transports_check(struct qmgr *q)
{
	int64_t now = qmgr_now_ms();
	int64_t wait = config_time(q->cfg, P_TRANSPORT_RETRY_TIME) * 1000;

	for (struct sched_transport *t = sched_transports(q->sched); t != NULL; t = t->next) {
		int64_t since = t->no_agent_since > q->started_ms ? t->no_agent_since : q->started_ms;

		if (t->capacity != 0 || now - since < wait || sched_transport_ready(q->sched, t) == 0)
			continue;
		log_warning("transport %s: no delivery agent for %lld s; deferring its mail",
		            t->name, (long long)((now - since) / 1000));
		sched_transport_suspend(q->sched, t);
		t->no_agent_since = now;
	}
	if (q->noutcomes > 0)
		qmgr_kick(q);
}

/* ---- agents ---- */

static void
agent_drop(struct qmgr_client *cl, const char *why)
{
	log_warning("agent %s[%llu]: %s; closing", cl->transport ? cl->transport->name : "?",
	            (unsigned long long)cl->pid, why);
	qmgr_agent_gone(cl);
	qmgr_client_free(cl);	/* closes; allowed from a frame callback (fconn.h) */
}

static void
agent_hello(struct qmgr_client *cl, struct frame_reader *r)
{
	struct qmgr *q = cl->q;
	struct agent_hello h;
	char err[200];

	if (cl->kind != QMGR_CLIENT_NEW) {
		agent_drop(cl, "HELLO twice");
		return;
	}
	if (agent_hello_decode(r, &h, err, sizeof(err)) < 0) {
		agent_drop(cl, err);
		return;
	}
	if (strcmp(h.transport, QMGR_T_DISCARD) == 0 || strcmp(h.transport, QMGR_T_ERROR) == 0 ||
	    strcmp(h.transport, QMGR_T_RETRY) == 0 || h.slots == 0 || h.slots > 10000) {
		agent_drop(cl, "refused HELLO (built-in transport name or bad slot count)");
		return;
	}
	cl->kind = QMGR_CLIENT_AGENT;
	cl->transport = sched_transport_get(q->sched, h.transport);
	cl->slots = (uint32_t)h.slots;
	cl->pid = h.pid;
	sched_transport_set_capacity(q->sched, cl->transport, cl->transport->capacity + cl->slots,
	                             true);
	log_info("agent %s[%llu] connected with %u slots", h.transport, (unsigned long long)h.pid,
	         cl->slots);
	qmgr_kick(q);
}

static struct sched_job *
agent_job(struct qmgr_client *cl, uint64_t id)
{
	struct sched_job *job = sched_job_find(cl->q->sched, id);

	return job != NULL && job->data == cl ? job : NULL;
}

static void
agent_result(struct qmgr_client *cl, struct frame_reader *r)
{
	struct qmgr *q = cl->q;
	struct agent_result res;
	struct sched_job *job;
	enum qmgr_outcome_kind kind;
	char err[200];

	if (agent_result_decode(r, &res, err, sizeof(err)) < 0) {
		agent_drop(cl, err);
		return;
	}
	job = agent_job(cl, res.job_id);
	if (job == NULL || !sched_job_report(q->sched, job, res.index)) {
		log_warning("agent %s[%llu]: result for job %llu recipient %u it does not hold; ignored",
		            cl->transport->name, (unsigned long long)cl->pid,
		            (unsigned long long)res.job_id, res.index);
		return;
	}
	kind = res.status == AGENT_DELIVERED ? QMGR_OUT_DELIVERED
	     : res.status == AGENT_PERMFAIL ? QMGR_OUT_PERM : QMGR_OUT_TEMP;
	qmgr_outcome_add(q, job->msg, res.index, job->dest, kind, &res, false);
}

static void
agent_done(struct qmgr_client *cl, struct frame_reader *r)
{
	struct qmgr *q = cl->q;
	struct sched_job *job;
	uint64_t id;
	char err[200];

	if (agent_done_decode(r, &id, err, sizeof(err)) < 0) {
		agent_drop(cl, err);
		return;
	}
	job = agent_job(cl, id);
	if (job == NULL) {
		log_warning("agent %s[%llu]: DONE for unknown job %llu; ignored", cl->transport->name,
		            (unsigned long long)cl->pid, (unsigned long long)id);
		return;
	}
	if (job->nopen > 0) {
		log_warning("%s: agent %s[%llu] finished job %llu without %u results; deferring them",
		            job->msg->id, cl->transport->name, (unsigned long long)cl->pid,
		            (unsigned long long)id, job->nopen);
		job_fill(q, job, QMGR_OUT_TEMP, "4.3.0", "delivery agent reported no result");
	}
	job->data = NULL;
	cl->busy--;
	qmgr_job_finished(q, job);
}

void
qmgr_agent_frame(struct qmgr_client *cl, struct frame_reader *r)
{
	if (r->type == FRAME_AGENT_HELLO) {
		agent_hello(cl, r);
		return;
	}
	if (cl->kind != QMGR_CLIENT_AGENT) {
		agent_drop(cl, "agent frame before HELLO");
		return;
	}
	if (r->type == FRAME_AGENT_RESULT)
		agent_result(cl, r);
	else
		agent_done(cl, r);
}

void
qmgr_agent_gone(struct qmgr_client *cl)
{
	struct qmgr *q = cl->q;
	struct sched_transport *t = cl->transport;

	if (cl->kind != QMGR_CLIENT_AGENT)
		return;
	for (struct sched_job *job = sched_jobs(q->sched); job != NULL; job = job->next) {
		if (job->data != cl)
			continue;
		if (job->nopen > 0)
			log_warning("%s: lost the delivery agent %s[%llu] with %u recipients in flight; "
			            "they are tried again", job->msg->id, t->name,
			            (unsigned long long)cl->pid, job->nopen);
		job_fill(q, job, QMGR_OUT_TEMP, "4.3.0", "lost connection with the delivery agent");
		job->data = NULL;
		qmgr_job_finished(q, job);
	}
	sched_transport_set_capacity(q->sched, t, t->capacity - cl->slots, true);
	if (t->capacity == 0)
		t->no_agent_since = qmgr_now_ms();
	cl->kind = QMGR_CLIENT_NEW;
	cl->busy = 0;
	qmgr_kick(q);
}
