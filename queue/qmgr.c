/*
 * qmgr: the queue manager role (doc/qmgr.md).
 *
 * It owns the schedule (queue/qmgr_sched.c) and the qmgr tables in LMDB
 * (queue/qstore.c). At start it rebuilds the schedule from LMDB alone:
 * every committed envelope, with the stored state of each recipient; a
 * recipient without a state record has not been tried and is due now, so
 * a message that was in flight when the previous qmgr died is tried again
 * (at least once, never zero times).
 *
 * Everyone else talks to it over the unix socket queue_directory/private/qmgr
 * (framed, common/fconn.c): smtpd says "new message" (FRAME_QUEUE_NEW),
 * delivery agents say hello and take jobs, ternctl sends queue commands. A
 * socket rather than master-made socketpairs: either side may restart
 * without the master re-wiring anything, and a lost notification costs
 * only latency, because a scan of the envelopes every queue_run_delay
 * finds what nobody announced.
 */
#include "queue/qmgr.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/log.h"
#include "common/rolectl.h"
#include "queue/qmgr_impl.h"
#include "queue/qmgr_route.h"

#define QMGR_ACCEPT_BATCH 32
#define QMGR_FLUSH_DELAY_MS 0	/* outcomes are committed at the next loop turn */

int64_t
qmgr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- destinations and their limits ---- */

/* The rate delay of a destination: the transport's (or the default), or
 * destination_rate_limits for its domain when that is longer. */
static int64_t
qmgr_rate_delay(struct qmgr *q, const char *transport, const char *nexthop)
{
	int64_t delay = config_ttime(q->cfg, transport, P_DEFAULT_DESTINATION_RATE_DELAY) * 1000;
	uint64_t per_domain;

	if (config_rate_lookup(q->cfg, nexthop, &per_domain) && (int64_t)per_domain > delay)
		delay = (int64_t)per_domain;
	return delay;
}

static void
qmgr_dest_limits(struct qmgr *q, struct sched_dest *d)
{
	const char *t = d->transport->name;
	uint64_t conc = config_tint(q->cfg, t, P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT);
	uint64_t rl = config_tint(q->cfg, t, P_DEFAULT_DESTINATION_RECIPIENT_LIMIT);
	int64_t rate = qmgr_rate_delay(q, t, d->nexthop);

	/* Postfix: with a rate delay, one delivery at a time. */
	if (rate > 0)
		conc = 1;
	sched_dest_set_limits(q->sched, d, conc > UINT32_MAX ? UINT32_MAX : (uint32_t)conc,
	                      rl > AGENT_JOB_RCPTS_MAX ? AGENT_JOB_RCPTS_MAX : (uint32_t)rl, rate);
}

static bool
qmgr_transport_builtin(const char *name)
{
	return strcmp(name, QMGR_T_DISCARD) == 0 || strcmp(name, QMGR_T_ERROR) == 0 ||
	       strcmp(name, QMGR_T_RETRY) == 0;
}

struct sched_dest *
qmgr_dest_for(struct qmgr *q, const char *transport, const char *nexthop)
{
	struct sched_transport *t = sched_transport_find(q->sched, transport);
	struct sched_dest *d;
	size_t before;

	if (t == NULL) {
		t = sched_transport_get(q->sched, transport);
		if (qmgr_transport_builtin(transport))
			sched_transport_set_capacity(q->sched, t, SCHED_UNLIMITED, false);
	}
	before = sched_dest_count(q->sched);
	d = sched_dest_get(q->sched, t, nexthop);
	if (sched_dest_count(q->sched) != before) {
		struct retry_record rec;
		char key[QSTORE_KEY_MAX + 1], err[200];

		qmgr_dest_limits(q, d);
		/* A destination that failed in an earlier life stays suspended. */
		snprintf(key, sizeof(key), "T:%s:%s", transport, nexthop);
		if (strlen(key) <= QSTORE_KEY_MAX &&
		    qstore_retry_get(q->qs, key, &rec, err, sizeof(err)) == SPOOL_OK &&
		    rec.next_try * 1000 > qmgr_now_ms())
			sched_dest_suspend(q->sched, d, rec.next_try * 1000);
	}
	return d;
}

static void
qmgr_dest_relimit(void *arg, struct sched_dest *d)
{
	qmgr_dest_limits(arg, d);
}

/* ---- loading messages ---- */

/* Stored recipient states of one message, gathered at start. */
struct qmgr_stored {
	uint32_t idx;
	uint8_t state;		/* enum qstore_state */
	int64_t next_attempt;	/* seconds */
};

static void
qmgr_load(struct qmgr *q, const char *id, const struct envelope *env, bool held,
          const struct qmgr_stored *st, size_t nst)
{
	struct sched_msg *m;
	int64_t now = qmgr_now_ms();
	size_t k = 0;

	if (env->nrcpt == 0 || env->nrcpt > UINT32_MAX) {
		log_error("%s: envelope with %zu recipients; left alone", id, env->nrcpt);
		return;
	}
	m = sched_msg_add(q->sched, id, (uint32_t)env->nrcpt);
	if (m == NULL)
		return;		/* known already */
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		struct qmgr_route rt;
		struct sched_dest *d;
		bool done = false;
		int64_t next = now;
		char err[200];

		/* A content filter takes every recipient (doc/content_filter.md). */
		switch (env->filter != NULL ? qmgr_route_filter(env->filter, &rt, err, sizeof(err)) :
		        qmgr_route_rcpt(q->cfg, q->addr, q->transport_maps, &env->rcpts[i], &rt,
		                        err, sizeof(err))) {
		case 0:
			break;
		case -2:
			log_warning("%s: to=<%s>: %s; deferring", id, env->rcpts[i].addr, err);
			snprintf(rt.transport, sizeof(rt.transport), "%s", QMGR_T_RETRY);
			snprintf(rt.nexthop, sizeof(rt.nexthop), "4.3.0 map lookup failure");
			break;
		default:
			log_warning("%s: to=<%s>: %s; deferring", id, env->rcpts[i].addr, err);
			snprintf(rt.transport, sizeof(rt.transport), "%s", QMGR_T_RETRY);
			snprintf(rt.nexthop, sizeof(rt.nexthop), "4.3.5 mail routing misconfigured");
		}
		d = qmgr_dest_for(q, rt.transport, rt.nexthop);
		while (k < nst && st[k].idx < i)
			k++;
		if (k < nst && st[k].idx == i) {
			switch (st[k].state) {
			case QSTORE_DELIVERED:
			case QSTORE_BOUNCED:
			case QSTORE_EXPIRED:
				done = true;
				break;
			case QSTORE_DEFERRED:
				next = st[k].next_attempt * 1000;
				break;
			default:
				break;
			}
		}
		sched_rcpt_route(q->sched, m, i, d, done, next);
	}
	m->held = held;
	sched_msg_commit(q->sched, m);
	if (m->nleft == 0)
		qmgr_message_finish(q, m);	/* finished just before a crash */
}

/*
 * A message smtpd queued with a HOLD action (the envelope's hold flag):
 * held, unless qmgr has a record of it already, which then decides (an
 * administrator may have released it). The first time, the record is
 * written, so that a release outlives a restart. In doubt (the record
 * cannot be read), held.
 */
static bool
qmgr_hold_first(struct qmgr *q, const char *id)
{
	struct qstore_msg flags;
	struct qstore_batch b;
	char err[256];

	switch (qstore_msg_get(q->qs, id, &flags, err, sizeof(err))) {
	case SPOOL_OK:
		return flags.held;
	case SPOOL_NOTFOUND:
		break;
	default:
		log_error("%s: message flags: %s; kept on hold", id, err);
		return true;
	}
	memset(&flags, 0, sizeof(flags));
	flags.held = true;
	flags.first_seen = qmgr_now_ms() / 1000;
	qstore_batch_init(&b);
	qstore_batch_put_msg(&b, id, &flags);
	if (qstore_batch_commit(q->qs, &b, err, sizeof(err)) != SPOOL_OK)
		log_error("%s: cannot record the hold: %s; held until the next start", id, err);
	qstore_batch_free(&b);
	log_info("%s: placed on hold (a HOLD action when it was received)", id);
	return true;
}

void
qmgr_load_message(struct qmgr *q, const char *id, const struct envelope *env, bool held)
{
	if (env->hold && !held)
		held = qmgr_hold_first(q, id);
	qmgr_load(q, id, env, held, NULL, 0);
	qmgr_kick(q);
}

/* The start-up rebuild: recipient states, message flags, envelopes, each
 * walked once in id order. */
struct qmgr_startup {
	struct qmgr *q;
	struct qmgr_stored *st;
	char (*st_id)[SPOOL_ID_SIZE];
	size_t nst, cap, pos;
	char (*held)[SPOOL_ID_SIZE];
	size_t nheld, held_cap, held_pos;
	/* Envelopes with the hold flag that no record holds: looked at after
	 * the walk (qmgr_hold_first() writes; the walk's transaction is open). */
	char (*hold_check)[SPOOL_ID_SIZE];
	size_t nhold_check, hold_check_cap;
	size_t messages, recipients, deferred;
};

static int
qmgr_startup_rcpt(void *arg, const char *id, uint32_t idx, const struct qstore_rcpt *r)
{
	struct qmgr_startup *su = arg;

	if (su->nst == su->cap) {
		su->cap = su->cap ? su->cap * 2 : 1024;
		su->st = realloc(su->st, su->cap * sizeof(*su->st));
		su->st_id = realloc(su->st_id, su->cap * sizeof(*su->st_id));
		if (su->st == NULL || su->st_id == NULL)
			fatal("out of memory");
	}
	memcpy(su->st_id[su->nst], id, SPOOL_ID_SIZE);
	su->st[su->nst].idx = idx;
	su->st[su->nst].state = (uint8_t)r->state;
	su->st[su->nst].next_attempt = r->next_attempt;
	su->nst++;
	if (r->state == QSTORE_DEFERRED)
		su->deferred++;
	return 0;
}

static int
qmgr_startup_msg(void *arg, const char *id, const struct qstore_msg *m)
{
	struct qmgr_startup *su = arg;

	if (!m->held)
		return 0;
	if (su->nheld == su->held_cap) {
		su->held_cap = su->held_cap ? su->held_cap * 2 : 64;
		su->held = realloc(su->held, su->held_cap * sizeof(*su->held));
		if (su->held == NULL)
			fatal("out of memory");
	}
	memcpy(su->held[su->nheld++], id, SPOOL_ID_SIZE);
	return 0;
}

static int
qmgr_startup_env(void *arg, const char *id, const struct envelope *env)
{
	struct qmgr_startup *su = arg;
	size_t first;
	bool held = false;

	while (su->pos < su->nst && strcmp(su->st_id[su->pos], id) < 0)
		su->pos++;	/* states of a message whose envelope is gone */
	first = su->pos;
	while (su->pos < su->nst && strcmp(su->st_id[su->pos], id) == 0)
		su->pos++;
	while (su->held_pos < su->nheld && strcmp(su->held[su->held_pos], id) < 0)
		su->held_pos++;
	if (su->held_pos < su->nheld && strcmp(su->held[su->held_pos], id) == 0)
		held = true;
	if (env->hold && !held) {
		if (su->nhold_check == su->hold_check_cap) {
			su->hold_check_cap = su->hold_check_cap ? 2 * su->hold_check_cap : 16;
			su->hold_check = realloc(su->hold_check,
			                         su->hold_check_cap * sizeof(*su->hold_check));
			if (su->hold_check == NULL)
				fatal("out of memory");
		}
		memcpy(su->hold_check[su->nhold_check++], id, SPOOL_ID_SIZE);
	}
	qmgr_load(su->q, id, env, held, su->st + first, su->pos - first);
	su->messages++;
	su->recipients += env->nrcpt;
	return 0;
}

static void
qmgr_startup(struct qmgr *q)
{
	struct qmgr_startup su;
	char err[256];
	int64_t t0 = qmgr_now_ms();

	memset(&su, 0, sizeof(su));
	su.q = q;
	if (qstore_walk_rcpts(q->qs, qmgr_startup_rcpt, &su, err, sizeof(err)) != SPOOL_OK)
		log_error("recipient states: %s; recipients without a readable state are tried again",
		          err);
	if (qstore_walk_msgs(q->qs, qmgr_startup_msg, &su, err, sizeof(err)) != SPOOL_OK)
		log_error("message flags: %s", err);
	if (spool_walk(q->spool, qmgr_startup_env, &su, err, sizeof(err)) != SPOOL_OK)
		log_error("envelopes: %s; the rest is found by the next scan", err);
	for (size_t i = 0; i < su.nhold_check; i++) {
		struct sched_msg *m = sched_msg_find(q->sched, su.hold_check[i]);

		if (m != NULL && !m->held && qmgr_hold_first(q, su.hold_check[i])) {
			sched_msg_hold(q->sched, m, true, qmgr_now_ms());
			su.nheld++;
		}
	}
	log_info("queue loaded: %zu messages, %zu recipients (%zu deferred), %zu held, "
	         "%zu destinations in %lld ms", su.messages, su.recipients, su.deferred, su.nheld,
	         sched_dest_count(q->sched), (long long)(qmgr_now_ms() - t0));
	free(su.st);
	free(su.st_id);
	free(su.held);
	free(su.hold_check);
}

/* Periodic scan: envelopes nobody told us about. Only ids are read
 * while the read transaction is open (a big queue is mostly known); the
 * few unknown ones are loaded after it. */
struct qmgr_scan_state {
	struct qmgr *q;
	char (*ids)[SPOOL_ID_SIZE];
	size_t n, cap;
};

static int
qmgr_scan_id(void *arg, const char *id)
{
	struct qmgr_scan_state *st = arg;

	if (sched_msg_find(st->q->sched, id) != NULL)
		return 0;
	if (st->n == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 64;
		st->ids = realloc(st->ids, st->cap * sizeof(*st->ids));
		if (st->ids == NULL)
			fatal("out of memory");
	}
	memcpy(st->ids[st->n++], id, SPOOL_ID_SIZE);
	return 0;
}

static void
qmgr_scan(struct ev_timer *t)
{
	struct qmgr *q = t->arg;
	struct qmgr_scan_state st = { .q = q };
	char err[256];

	if (spool_walk_ids(q->spool, qmgr_scan_id, &st, err, sizeof(err)) != SPOOL_OK)
		log_error("queue scan: %s", err);
	for (size_t i = 0; i < st.n; i++) {
		struct envelope env;

		envelope_init(&env);
		if (spool_envelope_get(q->spool, st.ids[i], &env, err, sizeof(err)) == SPOOL_OK) {
			log_debug("%s: found by the queue scan", st.ids[i]);
			qmgr_load(q, st.ids[i], &env, false, NULL, 0);
		}
		envelope_free(&env);
	}
	free(st.ids);
	spool_index_drop_pages(q->spool);
	qmgr_kick(q);
	evloop_timer_start(q->loop, &q->scan_timer, config_time(q->cfg, P_QUEUE_RUN_DELAY) * 1000);
}

/* ---- running the schedule ---- */

static void
qmgr_wake(struct ev_timer *t)
{
	struct qmgr *q = t->arg;
	int64_t now, next;

	if (q->draining)
		return;
	now = qmgr_now_ms();
	sched_run(q->sched, now);
	next = sched_next_wakeup(q->sched, qmgr_now_ms());
	if (next != INT64_MAX) {
		int64_t delta = next - qmgr_now_ms();

		evloop_timer_start(q->loop, &q->wake_timer, delta > 0 ? delta : 0);
	}
	if (q->noutcomes > 0 || q->nfinished > 0 || q->nwarn > 0)
		evloop_timer_start(q->loop, &q->flush_timer, QMGR_FLUSH_DELAY_MS);
}

void
qmgr_kick(struct qmgr *q)
{
	if (!q->draining)
		evloop_timer_start(q->loop, &q->wake_timer, 0);
}

static void
qmgr_flush_cb(struct ev_timer *t)
{
	struct qmgr *q = t->arg;

	qmgr_outcomes_flush(q);
	qmgr_kick(q);
}

static void
qmgr_transport_cb(struct ev_timer *t)
{
	struct qmgr *q = t->arg;

	qmgr_transports_check(q);
	evloop_timer_start(q->loop, t, 1000);
}

/* ---- clients of private/qmgr ---- */

void
qmgr_client_free(struct qmgr_client *cl)
{
	struct qmgr *q = cl->q;

	if (cl->prev != NULL)
		cl->prev->next = cl->next;
	else
		q->clients = cl->next;
	if (cl->next != NULL)
		cl->next->prev = cl->prev;
	fconn_close(&cl->conn);
	buf_free(&cl->conn.in);
	buf_free(&cl->conn.out);
	free(cl);
}

static void
qmgr_client_closed(struct fconn *c, const char *reason)
{
	struct qmgr_client *cl = c->arg;

	if (cl->kind == QMGR_CLIENT_AGENT) {
		log_info("agent %s[%llu] disconnected: %s", cl->transport->name,
		         (unsigned long long)cl->pid, reason);
		qmgr_agent_gone(cl);
	}
	qmgr_client_free(cl);
}

static void
qmgr_notify_frame(struct qmgr_client *cl, struct frame_reader *r)
{
	struct qmgr *q = cl->q;
	char id[SPOOL_ID_SIZE], err[256];
	struct envelope env;

	if (frame_get_str(r, id, sizeof(id)) < 0 || frame_get_end(r) < 0 ||
	    strlen(id) != SPOOL_ID_LEN) {
		log_warning("malformed QUEUE_NEW frame; closing the connection");
		fconn_close(&cl->conn);
		qmgr_client_free(cl);
		return;
	}
	cl->kind = QMGR_CLIENT_NOTIFY;
	if (sched_msg_find(q->sched, id) != NULL)
		return;
	envelope_init(&env);
	switch (spool_envelope_get(q->spool, id, &env, err, sizeof(err))) {
	case SPOOL_OK:
		qmgr_load_message(q, id, &env, false);
		q->counters.received++;
		break;
	case SPOOL_NOTFOUND:
		log_warning("%s: announced but not in the queue", id);
		break;
	default:
		log_error("%s: %s; the next scan tries again", id, err);
		break;
	}
	envelope_free(&env);
}

static void
qmgr_client_frame(struct fconn *c, struct frame_reader *r)
{
	struct qmgr_client *cl = c->arg;

	switch (r->type) {
	case FRAME_QUEUE_NEW:
		qmgr_notify_frame(cl, r);
		break;
	case FRAME_AGENT_HELLO:
	case FRAME_AGENT_RESULT:
	case FRAME_AGENT_DONE:
		qmgr_agent_frame(cl, r);
		break;
	case FRAME_QMGR_COMMAND:
		qmgr_command_frame(cl, r);
		break;
	default:
		log_warning("unexpected frame type %d on private/qmgr; closing", (int)r->type);
		if (cl->kind == QMGR_CLIENT_AGENT)
			qmgr_agent_gone(cl);
		qmgr_client_free(cl);
		break;
	}
}

static void
qmgr_accept(struct ev_io *io, unsigned revents)
{
	struct qmgr *q = io->arg;

	(void)revents;
	for (int i = 0; i < QMGR_ACCEPT_BATCH; i++) {
		struct qmgr_client *cl;
		int fd = accept4(q->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning("accept on %s: %s", q->socket_path, strerror(errno));
			return;
		}
		cl = calloc(1, sizeof(*cl));
		if (cl == NULL)
			fatal("out of memory");
		cl->q = q;
		if (fconn_open(&cl->conn, q->loop, fd, QMGR_CLIENT_IN_MAX, QMGR_CLIENT_OUT_MAX,
		               qmgr_client_frame, qmgr_client_closed, cl) < 0) {
			log_warning("%s: %s", q->socket_path, strerror(errno));
			close(fd);
			free(cl);
			continue;
		}
		cl->next = q->clients;
		if (q->clients != NULL)
			q->clients->prev = cl;
		q->clients = cl;
	}
}

/* ---- the master's control channel ---- */

static void
qmgr_control_send(struct qmgr *q, enum frame_type type, const char *text, uint64_t num)
{
	rolectl_send(q->control_fd, type, text, num);
}

static void
qmgr_limits(struct qmgr *q, struct sched_limits *lim)
{
	uint64_t a = config_int(q->cfg, P_QMGR_MESSAGE_ACTIVE_LIMIT);
	uint64_t p = config_int(q->cfg, P_DEFAULT_PROCESS_LIMIT);

	lim->active_limit = a == 0 ? 1 : a > UINT32_MAX ? UINT32_MAX : (uint32_t)a;
	lim->job_limit = p == 0 ? 1 : p > UINT32_MAX ? UINT32_MAX : (uint32_t)p;
}

/* transport_maps opened (*out NULL when there are none); 0, or -1 with
 * FILE:LINE lines in diag. */
static int
qmgr_transport_maps_open(const struct config *cfg, struct map_list **out, struct buf *diag)
{
	*out = NULL;
	if (config_list(cfg, P_TRANSPORT_MAPS)->n == 0)
		return 0;
	return map_list_open(config_list(cfg, P_TRANSPORT_MAPS), 0, out, diag) == MAP_OK ? 0 : -1;
}

int
qmgr_config_check(const struct config *cfg, struct buf *errors)
{
	const char *file = config_path(cfg) != NULL ? config_path(cfg) : "(defaults)";
	int rc = 0;

	struct map_list *maps = NULL;
	struct buf diag;

	buf_init(&diag, 64 * 1024);
	if (qmgr_transport_maps_open(cfg, &maps, &diag) < 0) {
		buf_append_printf(errors, "%s: transport_maps: %s", file, buf_cstr(&diag));
		rc = -1;
	}
	map_list_close(maps);
	buf_free(&diag);
	return rc;
}

static void
qmgr_reload(struct qmgr *q)
{
	struct buf errors;
	struct config *cfg;
	struct retry_rules *rules;
	struct map_list *maps = NULL;
	struct addr_resolver *addr = NULL;
	struct sched_limits lim;

	buf_init(&errors, 64 * 1024);
	cfg = config_load(q->cfg_path, &errors);
	rules = NULL;
	if (cfg == NULL || qmgr_config_check(cfg, &errors) < 0 ||
	    (rules = retry_rules_load(config_str(cfg, P_RETRY_RULES), &errors)) == NULL ||
	    qmgr_transport_maps_open(cfg, &maps, &errors) < 0 ||
	    (addr = addr_resolver_new(cfg, NULL, &errors)) == NULL) {
		log_warning("reload: keeping the old configuration: %s", buf_cstr(&errors));
		qmgr_control_send(q, FRAME_CHILD_RELOADED, "configuration errors", 0);
		map_list_close(maps);
		retry_rules_free(rules);
		config_free(cfg);
		buf_free(&errors);
		return;
	}
	buf_free(&errors);
	/* The old resolver borrows the old configuration: it goes first. */
	addr_resolver_free(q->addr);
	q->addr = addr;
	config_free(q->cfg);
	q->cfg = cfg;
	retry_rules_free(q->rules);
	q->rules = rules;
	map_list_close(q->transport_maps);
	q->transport_maps = maps;
	retry_policy_init(&q->policy, cfg);
	qmgr_limits(q, &lim);
	sched_set_limits(q->sched, &lim);
	sched_dest_foreach(q->sched, qmgr_dest_relimit, q);
	log_set_hostname(config_str(cfg, P_MYHOSTNAME));
	log_info("reload: configuration %s, %zu retry rules",
	         q->cfg_path ? q->cfg_path : "(development defaults)", retry_rules_count(rules));
	qmgr_control_send(q, FRAME_CHILD_RELOADED, "", 0);
	qmgr_kick(q);
}

static void
qmgr_stop(struct qmgr *q)
{
	if (q->draining)
		return;
	q->draining = true;
	/* Results already in are recorded; jobs still out are tried again by
	 * the next qmgr (their recipients were never marked). */
	qmgr_outcomes_flush(q);
	evloop_break(q->loop);
}

static void
qmgr_control_frame(void *arg, struct frame_reader *r)
{
	struct qmgr *q = arg;
	uint64_t seconds;

	if (q->draining)
		return;
	switch (r->type) {
	case FRAME_MASTER_RELOAD:
		if (frame_get_end(r) < 0)
			panic("malformed RELOAD frame from master");
		qmgr_reload(q);
		break;
	case FRAME_MASTER_DRAIN:
		if (frame_get_u64(r, &seconds) < 0 || frame_get_end(r) < 0)
			panic("malformed DRAIN frame from master");
		qmgr_stop(q);
		break;
	default:
		panic("unexpected frame type %d from master", (int)r->type);
	}
}

static void
qmgr_control_read(struct ev_io *io, unsigned revents)
{
	struct qmgr *q = io->arg;
	size_t nfds = 0;
	int fds[1];

	(void)revents;
	if (rolectl_read(q->control_fd, &q->control_in, fds, &nfds, 0, qmgr_control_frame, q) < 0) {
		evloop_io_del(q->loop, &q->control_io);
		log_warning("master went away; stopping");
		qmgr_stop(q);
	}
}

static void
qmgr_signal(int signo, void *arg)
{
	(void)signo;
	qmgr_stop(arg);
}

/* ---- the role ---- */

static void
qmgr_setup(struct qmgr *q)
{
	struct spool_options opt;
	struct sched_limits lim;
	struct sched_callbacks cb = { qmgr_on_job, qmgr_on_suspend, qmgr_on_activate,
	                              qmgr_on_idle, q };
	struct buf errors;
	const char *dir = config_str(q->cfg, P_QUEUE_DIRECTORY);
	char err[256];

	buf_init(&errors, 64 * 1024);
	if (qmgr_config_check(q->cfg, &errors) < 0)
		fatal("%s", buf_cstr(&errors));
	q->rules = retry_rules_load(config_str(q->cfg, P_RETRY_RULES), &errors);
	if (q->rules == NULL)
		fatal("retry rules: %s", buf_cstr(&errors));
	if (qmgr_transport_maps_open(q->cfg, &q->transport_maps, &errors) < 0)
		fatal("transport_maps: %s", buf_cstr(&errors));
	if ((q->addr = addr_resolver_new(q->cfg, NULL, &errors)) == NULL)
		fatal("recipient maps: %s", buf_cstr(&errors));
	buf_free(&errors);
	retry_policy_init(&q->policy, q->cfg);

	memset(&opt, 0, sizeof(opt));
	opt.fsync_threads = 0;	/* qmgr writes few messages: DSNs, synchronously */
	opt.map_size = config_int(q->cfg, P_SPOOL_MAP_SIZE);
	q->spool = spool_open(dir, &opt, err, sizeof(err));
	if (q->spool == NULL)
		fatal("cannot open the spool %s: %s", dir, err);
	q->qs = qstore_open(q->spool, err, sizeof(err));
	if (q->qs == NULL)
		fatal("cannot open the queue tables in %s: %s", dir, err);
	qmgr_limits(q, &lim);
	q->sched = sched_new(&lim, &cb);
	q->outcomes_tail = &q->outcomes;

	evloop_timer_init(&q->wake_timer, qmgr_wake, q);
	evloop_timer_init(&q->scan_timer, qmgr_scan, q);
	evloop_timer_init(&q->flush_timer, qmgr_flush_cb, q);
	evloop_timer_init(&q->transport_timer, qmgr_transport_cb, q);

	/* Listen first: a message committed during the walk below is then
	 * announced on a connection read afterwards, never lost in between. */
	if ((size_t)snprintf(q->socket_path, sizeof(q->socket_path), "%s/private/qmgr", dir) >=
	    sizeof(q->socket_path))
		fatal("queue_directory too long for a socket path");
	/* 0660: the mail owner's group runs ternctl (doc/ternctl.md). */
	q->listen_fd = fconn_listen_unix(q->socket_path, 0660, 128);
	if (q->listen_fd < 0)
		fatal("cannot listen on %s: %s", q->socket_path, strerror(errno));
	if (evloop_io_add(q->loop, &q->listen_io, q->listen_fd, EV_READ, qmgr_accept, q) < 0)
		fatal("epoll: %s", strerror(errno));
	q->started_ms = qmgr_now_ms();
	qmgr_startup(q);
	spool_index_drop_pages(q->spool);

	if (evloop_set_nonblock(q->control_fd) < 0 ||
	    evloop_io_add(q->loop, &q->control_io, q->control_fd, EV_READ, qmgr_control_read, q) < 0)
		fatal("control socket: %s", strerror(errno));
	if (evloop_signal_add(q->loop, SIGTERM, qmgr_signal, q) < 0 ||
	    evloop_signal_add(q->loop, SIGINT, qmgr_signal, q) < 0)
		fatal("signals: %s", strerror(errno));
	evloop_timer_start(q->loop, &q->scan_timer, config_time(q->cfg, P_QUEUE_RUN_DELAY) * 1000);
	evloop_timer_start(q->loop, &q->transport_timer, 1000);
	qmgr_kick(q);
}

static void
qmgr_msg_drop(void *arg, struct sched_msg *m)
{
	(void)arg;
	if (m->data != NULL)
		qmgr_on_idle(arg, m);
}

/* A destination's last error (dest->data, qmgr_results.c). */
static void
qmgr_dest_drop(void *arg, struct sched_dest *d)
{
	(void)arg;
	free(d->data);
	d->data = NULL;
}

int
qmgr_main(const char *cfg_path, struct config *cfg, int control_fd)
{
	struct qmgr *q = calloc(1, sizeof(*q));

	if (q == NULL)
		fatal("out of memory");
	signal(SIGPIPE, SIG_IGN);
	q->cfg_path = cfg_path;
	q->cfg = cfg;
	q->control_fd = control_fd;
	buf_init(&q->control_in, ROLECTL_IN_MAX);
	q->loop = evloop_new();
	if (q->loop == NULL)
		fatal("evloop: %s", strerror(errno));
	qmgr_setup(q);
	qmgr_control_send(q, FRAME_CHILD_READY, NULL, (uint64_t)getpid());

	evloop_run(q->loop);

	qmgr_control_send(q, FRAME_CHILD_DRAINED, NULL, 0);
	while (q->clients != NULL)
		qmgr_client_free(q->clients);
	close(q->listen_fd);
	unlink(q->socket_path);
	log_info("stopped");
	sched_msg_foreach(q->sched, qmgr_msg_drop, q);
	sched_dest_foreach(q->sched, qmgr_dest_drop, q);
	sched_free(q->sched);
	qstore_close(q->qs);
	spool_close(q->spool);
	retry_rules_free(q->rules);
	map_list_close(q->transport_maps);
	addr_resolver_free(q->addr);
	evloop_free(q->loop);
	config_free(q->cfg);
	buf_free(&q->control_in);
	free(q->finished);
	free(q->warn);
	free(q);
	return 0;
}
