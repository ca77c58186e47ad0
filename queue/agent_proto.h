/*
 * agent_proto: the conversation between qmgr and the delivery agents (and
 * ternctl's queue commands), carried as frames (common/frame.h) over
 * connections to the unix socket queue_directory/private/qmgr.
 *
 *   agent -> qmgr  FRAME_AGENT_HELLO    once, first: transport, job slots
 *   qmgr -> agent  FRAME_AGENT_DELIVER  one job: a message, a next hop and
 *                                       some of its recipients
 *   agent -> qmgr  FRAME_AGENT_RESULT   one per recipient of the job, as
 *                                       soon as its fate is known
 *   agent -> qmgr  FRAME_AGENT_DONE     the job is finished; every
 *                                       recipient was reported
 *   client -> qmgr FRAME_QMGR_COMMAND   flush / hold / release / ...
 *   qmgr -> client FRAME_QMGR_REPLY
 *   qmgr -> client FRAME_QMGR_STATS     the answer to QMGR_VERB_STATS
 *
 * The agent opens the message file itself (read-only, by queue id in the
 * same spool). A recipient without a RESULT when the job's DONE arrives,
 * or when the agent's connection ends, is deferred by qmgr with an
 * internal error (it is tried again: at least once, never zero times).
 *
 * Field order inside each frame is fixed (see agent_proto.c); decoders are
 * strict (every field checked for kind and bounds, no bytes left over) and
 * return -1 with a reason on any malformed frame. Strings carry no NUL.
 * Encoders return -1 only when the frame passes FRAME_PAYLOAD_MAX or the
 * buffer's maximum (then the buffer is as it was).
 */
#ifndef TERN_AGENT_PROTO_H
#define TERN_AGENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/frame.h"

#define AGENT_PROTO_VERSION 1
/* Bounds on decoded strings (anything longer is a malformed frame). */
#define AGENT_TRANSPORT_MAX 64	/* "smtp", "lmtp", "relay" */
#define AGENT_NEXTHOP_MAX 512	/* "example.org", "[10.0.0.5]:25", "unix:/run/dovecot/lmtp" */
/* Longest alias target ("|command", "/file") carried, NUL included. */
#define AGENT_TARGET_MAX 4096
#define AGENT_ADDR_MAX 1024	/* an address, an ORCPT, an ENVID */
#define AGENT_CLASS_MAX 32	/* an Exim error name: "rcpt_452" */
#define AGENT_ENH_MAX 16	/* "4.2.2" */
#define AGENT_TEXT_MAX 2048	/* a remote reply or our reason */
#define AGENT_RELAY_MAX 300	/* "mx.example.net[192.0.2.7]:25" */
#define AGENT_HOST_MAX 256	/* a host name or textual IP */
#define AGENT_PROTO_MAX 65	/* "ESMTPSA"; XFORWARD allows 64 characters */
#define AGENT_JOB_RCPTS_MAX 1000	/* recipients in one job */
#define AGENT_SELECTORS_MAX 10000	/* selectors in one command */
/* Destinations in one STATS frame (the busiest; 2000 * ~600 bytes fits
 * FRAME_PAYLOAD_MAX with room to spare). */
#define AGENT_STATS_DESTS_MAX 2000

/* agent -> qmgr, first frame of an agent connection. */
struct agent_hello {
	uint64_t version;	/* AGENT_PROTO_VERSION */
	char transport[AGENT_TRANSPORT_MAX];	/* the transport it serves */
	uint64_t slots;		/* jobs it takes at once (>= 1) */
	uint64_t pid;		/* for logs */
};

struct agent_job_rcpt {
	uint32_t index;		/* the recipient's index in the envelope */
	char *addr;		/* owned by the job */
	char *orcpt;		/* "type;addr" or NULL */
	unsigned notify;	/* ENVELOPE_NOTIFY_* bits */
	char *target;		/* "|command" or "/file" (queue/envelope.h), or NULL */
};

/* qmgr -> agent: deliver this message to these recipients via nexthop. */
struct agent_job {
	uint64_t job_id;	/* qmgr's, echoed in RESULT and DONE */
	char queue_id[16];	/* SPOOL_ID_SIZE */
	char transport[AGENT_TRANSPORT_MAX];
	char nexthop[AGENT_NEXTHOP_MAX];
	char *sender;		/* "" for <>; owned */
	char *envid;		/* RFC 3461 ENVID or NULL; owned */
	unsigned ret;		/* enum envelope_ret */
	unsigned body;		/* enum envelope_body */
	bool smtputf8;
	uint64_t size;		/* bytes of the message file */
	int64_t arrival;	/* µs since the epoch */
	/* Where the message came from (the envelope's client fields), for
	 * XFORWARD (delivery/smtp_client.c); "" when unknown. */
	char client_name[AGENT_HOST_MAX];
	char client_addr[AGENT_HOST_MAX];
	char client_helo[AGENT_HOST_MAX];
	char client_proto[AGENT_PROTO_MAX];
	bool local_source;	/* submitted on this host (the sendmail command) */
	bool to_filter;		/* the job goes to the after-queue content filter */
	struct agent_job_rcpt *rcpts;	/* owned */
	size_t nrcpt;
};

enum agent_status {
	AGENT_DELIVERED = 0,	/* taken by the next hop (or discarded on purpose) */
	AGENT_TEMPFAIL = 1,	/* try again later */
	AGENT_PERMFAIL = 2,	/* bounce */
};

/* Where a delivered recipient's success notice (NOTIFY=SUCCESS) comes from. */
enum agent_relayed {
	AGENT_FINAL = 0,	/* delivered here (mailbox, LMTP): we send "delivered" */
	AGENT_RELAYED = 1,	/* relayed to a host without DSN: we send "relayed" */
	AGENT_DSN_PASSED = 2,	/* relayed to a host that took the NOTIFY: it
				 * answers for it, we send nothing */
};

/* agent -> qmgr: what happened to one recipient. */
struct agent_result {
	uint64_t job_id;
	uint32_t index;		/* the recipient's envelope index */
	enum agent_status status;
	char err_class[AGENT_CLASS_MAX];	/* TEMPFAIL: Exim error name ("refused_MX",
						 * "rcpt_452", "quota_7d"); "" otherwise */
	int smtp_code;		/* the reply code that decided it; 0 none */
	char enh[AGENT_ENH_MAX];	/* "2.0.0", "4.4.1", "5.1.1" ("" none) */
	char text[AGENT_TEXT_MAX];	/* the remote reply verbatim, or our reason */
	char relay[AGENT_RELAY_MAX];	/* "mx.example.net[192.0.2.7]:25", "none" */
	char host[AGENT_HOST_MAX];	/* set exactly for a host error (the agent
					 * decides: smtp_class's scope): the host
					 * name for retry rules; qmgr then
					 * suspends the destination. "" for
					 * message and recipient failures */
	enum agent_relayed relayed;	/* DELIVERED: who owes NOTIFY=SUCCESS its
					 * notice (RFC 3461 section 6) */
	int64_t delays[4];	/* µs: queue wait / connection setup / session / data */
};

enum qmgr_verb {
	QMGR_VERB_FLUSH = 1,	/* due now, ignoring retry times */
	QMGR_VERB_HOLD = 2,
	QMGR_VERB_RELEASE = 3,
	QMGR_VERB_DELETE = 4,	/* remove without a bounce */
	QMGR_VERB_REQUEUE = 5,	/* forget attempts and routes, due now */
	QMGR_VERB_STATS = 6,	/* no selectors; answered by FRAME_QMGR_STATS */
};

/*
 * A command on a set of messages. Selectors: a queue id, "@domain" (every
 * message with a recipient in that domain), or "ALL" (every message).
 */
struct qmgr_command {
	enum qmgr_verb verb;
	char **selectors;	/* owned */
	size_t nselectors;
};

struct qmgr_reply {
	uint64_t status;	/* 0 success; a sysexits code otherwise */
	uint64_t count;		/* messages affected */
	char text[AGENT_TEXT_MAX];	/* one line for the user */
};

/* One destination (transport:nexthop) in a STATS answer. */
struct qmgr_stats_dest {
	char transport[AGENT_TRANSPORT_MAX];
	char nexthop[AGENT_NEXTHOP_MAX];
	uint64_t waiting;	/* recipients waiting for a retry time */
	uint64_t ready;		/* recipients due, queued for a job */
	uint64_t active;	/* recipients in a job right now */
	uint64_t jobs;		/* jobs running */
	int64_t suspended_until;	/* seconds since the epoch; 0: not suspended */
};

/*
 * qmgr's counters since it started (messages received; recipients
 * delivered, deferred and bounced, as pflogsumm counts them), the queue
 * by state, and the destinations with recipients (the busiest first, at
 * most AGENT_STATS_DESTS_MAX of dests_total).
 */
struct qmgr_stats {
	int64_t started;	/* seconds since the epoch */
	uint64_t received, delivered, deferred, bounced;
	uint64_t q_active;	/* messages being delivered */
	uint64_t q_incoming;	/* due, waiting for an active slot */
	uint64_t q_deferred;	/* waiting for a retry time */
	uint64_t q_hold;
	uint64_t dests_total;
	struct qmgr_stats_dest *dests;	/* owned; free with qmgr_stats_free() */
	size_t ndests;
};

/* ---- encoding: append one whole frame to out ---- */
int agent_hello_encode(const struct agent_hello *h, struct buf *out);
int agent_job_encode(const struct agent_job *j, struct buf *out);
int agent_result_encode(const struct agent_result *r, struct buf *out);
int agent_done_encode(uint64_t job_id, struct buf *out);
int qmgr_command_encode(const struct qmgr_command *c, struct buf *out);
int qmgr_reply_encode(const struct qmgr_reply *r, struct buf *out);
int qmgr_stats_encode(const struct qmgr_stats *st, struct buf *out);

/* ---- decoding: r is a frame of the matching type (frame_parse) ---- */
int agent_hello_decode(struct frame_reader *r, struct agent_hello *h, char *err, size_t errsz);
/* j is filled (owned strings); free with agent_job_free() even on error. */
int agent_job_decode(struct frame_reader *r, struct agent_job *j, char *err, size_t errsz);
int agent_result_decode(struct frame_reader *r, struct agent_result *res, char *err, size_t errsz);
int agent_done_decode(struct frame_reader *r, uint64_t *job_id, char *err, size_t errsz);
int qmgr_command_decode(struct frame_reader *r, struct qmgr_command *c, char *err, size_t errsz);
int qmgr_reply_decode(struct frame_reader *r, struct qmgr_reply *rep, char *err, size_t errsz);
/* st is filled (owned array); free with qmgr_stats_free() even on error. */
int qmgr_stats_decode(struct frame_reader *r, struct qmgr_stats *st, char *err, size_t errsz);

/* Helpers for building and freeing jobs and commands. */
void agent_job_init(struct agent_job *j);
void agent_job_add_rcpt(struct agent_job *j, uint32_t index, const char *addr, const char *orcpt,
                        unsigned notify);
/* Set the last recipient's target (copied; NULL: none). */
void agent_job_set_target(struct agent_job *j, const char *target);
void agent_job_free(struct agent_job *j);
void qmgr_command_free(struct qmgr_command *c);
void qmgr_stats_free(struct qmgr_stats *st);

/* "delivered" / "tempfail" / "permfail"; and verb names "flush" ... and
 * back (-1 when unknown). */
const char *agent_status_name(enum agent_status s);
const char *qmgr_verb_name(enum qmgr_verb v);
int qmgr_verb_parse(const char *name);

#endif
