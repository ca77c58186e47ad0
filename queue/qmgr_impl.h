/*
 * qmgr_impl: the queue manager's process state, shared by its files:
 *   qmgr.c          the role: start-up, the private/qmgr socket and its
 *                   clients, timers, loading messages into the schedule
 *   qmgr_jobs.c     activation, jobs to agents and in-process transports,
 *                   results coming in
 *   qmgr_results.c  what results do: LMDB first, then the schedule,
 *                   retry records, bounces, delay warnings, removal
 *   qmgr_command.c  flush, hold, release, delete, requeue, stats
 * One owner for each piece of state: struct qmgr below.
 */
#ifndef TERN_QMGR_IMPL_H
#define TERN_QMGR_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/evloop.h"
#include "common/fconn.h"
#include "config/addr_resolve.h"
#include "config/config.h"
#include "config/map.h"
#include "queue/agent_proto.h"
#include "queue/envelope.h"
#include "queue/qmgr_sched.h"
#include "queue/qstore.h"
#include "queue/retry.h"
#include "queue/spool.h"

/* Names of the transports qmgr runs itself (Postfix's discard, error
 * and retry services). */
#define QMGR_T_DISCARD "discard"
#define QMGR_T_ERROR "error"
#define QMGR_T_RETRY "retry"

#define QMGR_CLIENT_IN_MAX (256u * 1024)
#define QMGR_CLIENT_OUT_MAX (8u * 1024 * 1024)

enum qmgr_client_kind {
	QMGR_CLIENT_NEW = 0,	/* nothing said yet */
	QMGR_CLIENT_NOTIFY,	/* smtpd and other injectors */
	QMGR_CLIENT_AGENT,
	QMGR_CLIENT_COMMAND,	/* ternctl */
};

struct qmgr;

struct qmgr_client {
	struct fconn conn;
	struct qmgr *q;
	enum qmgr_client_kind kind;
	struct sched_transport *transport;	/* agents */
	uint32_t slots, busy;
	uint64_t pid;
	struct qmgr_client *next, *prev;
};

/* What became of one recipient, waiting to be committed. */
enum qmgr_outcome_kind {
	QMGR_OUT_DELIVERED,
	QMGR_OUT_TEMP,		/* an attempt failed temporarily */
	QMGR_OUT_PERM,
	QMGR_OUT_SUSPENDED,	/* not tried: destination or transport unavailable */
};

/* One recipient's result, kept compact: a queue run may collect one per
 * recipient of the whole queue before they are flushed. */
struct qmgr_outcome {
	struct sched_msg *msg;
	struct sched_dest *dest;
	struct qmgr_outcome *next;
	uint32_t idx;
	enum qmgr_outcome_kind kind;
	bool ours;		/* made by qmgr (the agent logs its own) */
	enum agent_relayed relayed;	/* who owes a success notice */
	bool held;		/* waits for the end of its message's jobs */
	/* What the flush decided (qmgr_results.c). */
	bool final, expired;
	int64_t next_attempt_ms;
	/* The agent's words (or ours), cut to what the queue stores. */
	int smtp_code;
	char err_class[QSTORE_CLASS_MAX];
	char enh[QSTORE_ENH_MAX];
	const char *relay;	/* "none" when no host was involved */
	const char *host;	/* "" unless a host error named one */
	char text[];		/* text, then relay and host, each NUL-terminated */
};

/* Per active message: its envelope, loaded from LMDB on activation. */
struct qmgr_active {
	struct envelope env;
	bool loaded;		/* env is valid */
	bool warn_due;		/* a delay warning should go out */
	int64_t activated_ms;	/* wall clock: when it became active (delays=) */
};

struct qmgr {
	const char *cfg_path;
	struct config *cfg;
	struct evloop *loop;
	struct spool *spool;
	struct qstore *qs;
	struct sched *sched;
	struct retry_rules *rules;
	struct map_list *transport_maps;	/* NULL: none */
	/* The address resolver smtpd uses too (config/addr_resolve.h): the
	 * domain classes for routing, and the aliases of the recipient of
	 * each notice qmgr writes. Replaced on reload. */
	struct addr_resolver *addr;
	struct retry_policy policy;

	int control_fd;
	struct ev_io control_io;
	struct buf control_in;

	int listen_fd;
	struct ev_io listen_io;
	char socket_path[512];
	struct qmgr_client *clients;

	struct ev_timer wake_timer;	/* sched_next_wakeup() */
	struct ev_timer scan_timer;	/* queue_run_delay */
	struct ev_timer flush_timer;	/* outcomes waiting: commit them soon */
	struct ev_timer transport_timer;	/* transport_retry_time checks */

	struct qmgr_outcome *outcomes, **outcomes_tail;
	size_t noutcomes;
	struct sched_job **finished;	/* jobs whose results are all in */
	size_t nfinished, finished_cap;
	struct sched_msg **warn;	/* delay warnings to write */
	size_t nwarn, warn_cap;

	bool draining;
	int64_t started_ms;
	/* Since start, for `ternctl stats`: messages announced by injectors;
	 * recipient results as they are recorded (as pflogsumm counts). */
	struct {
		uint64_t received, delivered, deferred, bounced;
	} counters;
};

/* Wall-clock milliseconds. */
int64_t qmgr_now_ms(void);

/* qmgr.c */
struct sched_dest *qmgr_dest_for(struct qmgr *q, const char *transport, const char *nexthop);
void qmgr_kick(struct qmgr *q);	/* run the schedule soon */
/* Load one committed message into the schedule (new ones are due now). */
void qmgr_load_message(struct qmgr *q, const char *id, const struct envelope *env, bool held);

/* qmgr_jobs.c */
void qmgr_on_job(void *arg, struct sched_job *job);
void qmgr_on_activate(void *arg, struct sched_msg *m);
void qmgr_on_idle(void *arg, struct sched_msg *m);
void qmgr_on_suspend(void *arg, struct sched_msg *m, uint32_t idx, struct sched_dest *d);
void qmgr_agent_frame(struct qmgr_client *cl, struct frame_reader *r);
void qmgr_agent_gone(struct qmgr_client *cl);
/* Jobs whose transport has no agent for transport_retry_time. */
void qmgr_transports_check(struct qmgr *q);

/* qmgr_results.c */
void qmgr_outcome_add(struct qmgr *q, struct sched_msg *m, uint32_t idx, struct sched_dest *d,
                      enum qmgr_outcome_kind kind, const struct agent_result *res, bool ours);
void qmgr_job_finished(struct qmgr *q, struct sched_job *job);
void qmgr_warn_add(struct qmgr *q, struct sched_msg *m);
/* Commit and apply everything waiting (one LMDB transaction). */
void qmgr_outcomes_flush(struct qmgr *q);
/* Remove a finished message (all recipients done) now. */
void qmgr_message_finish(struct qmgr *q, struct sched_msg *m);

void qmgr_client_free(struct qmgr_client *cl);

/* qmgr_command.c */
void qmgr_command_frame(struct qmgr_client *cl, struct frame_reader *r);

#endif
