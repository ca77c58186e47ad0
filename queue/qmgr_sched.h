/*
 * qmgr_sched: qmgr's in-memory schedule. Pure: no I/O, no clock (every
 * call takes `now`, wall-clock milliseconds), no logging; qmgr.c owns the
 * spool, the agents and the log, and tells the schedule what happened.
 *
 * Model
 *  - A message (sched_msg) has recipients (sched_rcpt), each routed to a
 *    destination (sched_dest: transport + next hop). A recipient is
 *    WAITING (for its next_attempt), READY (due, queued at its
 *    destination), ACTIVE (in a job) or DONE (delivered, bounced, expired:
 *    qmgr no longer cares).
 *  - Waiting messages sit in a binary heap keyed by the earliest
 *    next_attempt of their waiting recipients (O(log n) per change).
 *    Held messages are not in the heap.
 *  - When a message comes due it is *activated* (at most active_limit
 *    messages are active at once, so a queue of a million due messages
 *    does not load a million envelopes): its due recipients become READY
 *    and the message joins the ready queue of each of their destinations,
 *    in FIFO order.
 *  - Jobs are cut from the ready queues round-robin over the destinations:
 *    one message, one destination, up to rcpt_limit recipients, within
 *    the destination's concurrency limit and rate delay, the transport's
 *    capacity (agent slots) and the global job limit.
 *  - A destination may be *suspended* until a time (its hosts refused or
 *    timed out: Exim's host retry record, Postfix's dead destination):
 *    recipients that come due for it are handed back through on_suspend
 *    instead of being tried; when the time comes one job probes it
 *    (concurrency 1) until a result clears or renews the suspension.
 *
 * Memory: about 100 bytes per message plus 24 per recipient; addresses
 * stay in LMDB and are read when a job is built (doc/qmgr.md).
 *
 * Ownership: the schedule owns messages, destinations, transports and
 * jobs; pointers to them stay valid until the matching remove/free call.
 * Re-entrancy: on_activate, on_idle and on_suspend must not add or remove
 * messages (on_suspend moves its recipient on with sched_rcpt_wait() or
 * sched_rcpt_done(), nothing else); on_job may do anything, including
 * ending the job at once, but must not call sched_run().
 */
#ifndef TERN_QMGR_SCHED_H
#define TERN_QMGR_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHED_ID_SIZE 16	/* queue id + NUL, room for SPOOL_ID_SIZE */
#define SCHED_UNLIMITED UINT32_MAX
#define SCHED_REPORTED 0x80000000u	/* flag in sched_job.rcpts[] */

enum sched_rcpt_state {
	SCHED_WAITING = 0,
	SCHED_READY = 1,
	SCHED_ACTIVE = 2,
	SCHED_DONE = 3,
};

struct sched;
struct sched_transport;
struct sched_dest;
struct sched_msg;
struct sched_node;

struct sched_rcpt {
	struct sched_dest *dest;	/* NULL until routed */
	int64_t next_attempt;	/* ms; WAITING: not before this */
	uint8_t state;		/* enum sched_rcpt_state */
};

struct sched_msg {
	char id[SCHED_ID_SIZE];
	uint32_t nrcpt;
	uint32_t nleft;		/* recipients not DONE */
	uint32_t nbusy;		/* recipients READY or ACTIVE */
	bool held;
	bool active;		/* counted against active_limit */
	bool gone;		/* the owner's: removed from storage, freed from memory
				 * once its last job ends (njobs == 0) */
	uint32_t njobs;		/* jobs running for it (a job may outlive its
				 * recipients' results until the agent says DONE) */
	size_t heap_index;	/* SIZE_MAX when not in the heap */
	int64_t due;		/* heap key: earliest WAITING next_attempt */
	struct sched_msg *hnext;	/* id hash chain */
	void *data;		/* the owner's (qmgr: the loaded envelope while active) */
	struct sched_rcpt rcpts[];
};

struct sched_transport {
	char *name;
	uint32_t capacity;	/* jobs agents take at once; SCHED_UNLIMITED: in-process */
	uint32_t active;	/* jobs running */
	bool counts_global;	/* counted against the global job limit */
	int64_t no_agent_since;	/* the owner's: when capacity last became 0 */
	struct sched_transport *next;
};

struct sched_dest {
	struct sched_transport *transport;
	char *nexthop;
	uint32_t concurrency;	/* limit; >= 1 */
	uint32_t active;	/* jobs running */
	uint32_t rcpt_limit;	/* recipients per job; >= 1 */
	int64_t rate_delay;	/* ms between job starts; 0 none */
	int64_t next_start;	/* ms: no job starts before (rate delay) */
	int64_t suspended_until;	/* ms; 0 = not suspended */
	bool probing;		/* past suspended_until, one job outstanding */
	struct sched_node *head, *tail;	/* ready queue (messages) */
	uint32_t nready;	/* nodes in the ready queue */
	bool runnable_linked;	/* on the schedule's round-robin list */
	struct sched_dest *rr_next, *rr_prev;
	struct sched_dest *hnext;	/* hash chain */
	void *data;		/* the owner's */
};

/* One delivery job: recipients of one message for one destination. */
struct sched_job {
	uint64_t id;
	struct sched_msg *msg;
	struct sched_dest *dest;
	uint32_t nrcpt;
	uint32_t *rcpts;	/* recipient indexes, owned; SCHED_REPORTED is
				 * or-ed in once sched_job_report() saw one */
	uint32_t nopen;		/* recipients not yet reported */
	struct sched_job *next, *prev;	/* the schedule's list of running jobs */
	void *data;		/* the owner's (qmgr: the agent it went to) */
};

struct sched_limits {
	uint32_t active_limit;	/* qmgr_message_active_limit */
	uint32_t job_limit;	/* default_process_limit: jobs of counted transports */
};

/* Called for each job sched_run() starts; the job stays the schedule's. */
typedef void sched_job_cb(void *arg, struct sched_job *job);
/* A READY recipient whose destination is suspended (or whose transport
 * was declared unavailable): the callee must move it on with
 * sched_rcpt_wait() or sched_rcpt_done() before returning. */
typedef void sched_suspend_cb(void *arg, struct sched_msg *m, uint32_t idx, struct sched_dest *d);
/* A message became active (load what jobs need) or idle (drop it). */
typedef void sched_msg_cb(void *arg, struct sched_msg *m);

struct sched_callbacks {
	sched_job_cb *on_job;
	sched_suspend_cb *on_suspend;
	sched_msg_cb *on_activate;
	sched_msg_cb *on_idle;
	void *arg;
};

struct sched *sched_new(const struct sched_limits *lim, const struct sched_callbacks *cb);
/* Frees everything (jobs included, without callbacks). */
void sched_free(struct sched *s);
void sched_set_limits(struct sched *s, const struct sched_limits *lim);

/* ---- transports and destinations ---- */

/* Find or create; a new transport has capacity 0 (no agent yet). */
struct sched_transport *sched_transport_get(struct sched *s, const char *name);
struct sched_transport *sched_transport_find(struct sched *s, const char *name);
/* The first transport; follow ->next for the others. */
struct sched_transport *sched_transports(const struct sched *s);
void sched_transport_set_capacity(struct sched *s, struct sched_transport *t, uint32_t capacity,
                                  bool counts_global);
/* Every READY recipient of the transport's destinations goes through
 * on_suspend (mail transport unavailable). */
void sched_transport_suspend(struct sched *s, struct sched_transport *t);
/* READY recipients queued behind the transport's destinations. */
size_t sched_transport_ready(const struct sched *s, const struct sched_transport *t);

/* Find or create (limits: concurrency 1, rcpt_limit 50, no rate delay
 * until set). */
struct sched_dest *sched_dest_get(struct sched *s, struct sched_transport *t, const char *nexthop);
void sched_dest_set_limits(struct sched *s, struct sched_dest *d, uint32_t concurrency,
                           uint32_t rcpt_limit, int64_t rate_delay);
/* Suspend until `until` (ms): READY recipients go through on_suspend at
 * the next sched_run(); 0 lifts the suspension (a success). */
void sched_dest_suspend(struct sched *s, struct sched_dest *d, int64_t until);
/* Visit every destination (for reload and listings). */
void sched_dest_foreach(struct sched *s, void (*fn)(void *arg, struct sched_dest *d), void *arg);
size_t sched_dest_count(const struct sched *s);

/* ---- messages ---- */

/* Add a message with nrcpt recipients, all WAITING at next_attempt 0 and
 * unrouted; route them with sched_rcpt_route() and then call
 * sched_msg_commit(). NULL if the id is already known. */
struct sched_msg *sched_msg_add(struct sched *s, const char *id, uint32_t nrcpt);
struct sched_msg *sched_msg_find(const struct sched *s, const char *id);
/* Set recipient idx's destination and state: WAITING at next_attempt, or
 * DONE (already delivered/bounced in an earlier life). Before commit only. */
void sched_rcpt_route(struct sched *s, struct sched_msg *m, uint32_t idx, struct sched_dest *d,
                      bool done, int64_t next_attempt);
/* Enter the schedule (heap) after routing. */
void sched_msg_commit(struct sched *s, struct sched_msg *m);
/* Forget a message; it must have no ACTIVE recipient and no job running. */
void sched_msg_remove(struct sched *s, struct sched_msg *m);
size_t sched_msg_count(const struct sched *s);
void sched_msg_foreach(struct sched *s, void (*fn)(void *arg, struct sched_msg *m), void *arg);

/* Held: out of the heap, READY recipients back to WAITING; released:
 * every waiting recipient due now. */
void sched_msg_hold(struct sched *s, struct sched_msg *m, bool held, int64_t now);
/* Flush: waiting recipients due now, and their destinations' suspension
 * lifted. READY/ACTIVE recipients are left alone. */
void sched_msg_flush(struct sched *s, struct sched_msg *m, int64_t now);

/* A recipient moves on: READY (from on_suspend), ACTIVE (its job
 * reported it) or WAITING (expired, deleted) becomes WAITING until
 * next_attempt, or DONE. */
void sched_rcpt_wait(struct sched *s, struct sched_msg *m, uint32_t idx, int64_t next_attempt);
void sched_rcpt_done(struct sched *s, struct sched_msg *m, uint32_t idx);

/* ---- jobs ---- */

struct sched_job *sched_job_find(const struct sched *s, uint64_t id);
/*
 * Recipient idx of the job was reported: its state is set by the caller
 * with sched_rcpt_wait()/done(); this only counts. Returns false when idx
 * is not an open recipient of the job (an agent bug: the caller logs).
 */
bool sched_job_report(struct sched *s, struct sched_job *job, uint32_t idx);
/* The job ended: every recipient not yet reported must already have been
 * moved on by the caller (it is a bug otherwise: panic). Frees the job. */
void sched_job_end(struct sched *s, struct sched_job *job);
/* Running jobs, for listing and for agents that went away. */
struct sched_job *sched_jobs(const struct sched *s);
size_t sched_jobs_running(const struct sched *s);

/* ---- running ---- */

/*
 * Do everything due at now: activate due messages (within active_limit),
 * hand READY recipients of suspended destinations to on_suspend, start
 * jobs round-robin while limits allow. Returns the number of jobs started.
 */
size_t sched_run(struct sched *s, int64_t now);
/* When sched_run() next has something to do (ms), or INT64_MAX. */
int64_t sched_next_wakeup(const struct sched *s, int64_t now);

/* Counters for listings and tests. */
struct sched_stats {
	size_t messages, active_messages, ready_rcpts, jobs, dests;
};
void sched_stats(const struct sched *s, struct sched_stats *st);

#endif
