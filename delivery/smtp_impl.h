/*
 * smtp_impl: what the smtp agent's modules share (not a public header).
 *
 *   smtp_agent.c   the role: the master's control channel, jobs in from
 *                  and results out to qmgr through queue/agent_link.h
 *                  (which writes the per-recipient log lines)
 *   smtp_job.c     one delivery job: the next hop, MX and address
 *                  lookups, which host is tried next, what the recipients
 *                  left over are told when no host is left
 *   smtp_client.c  one SMTP session with one address: the dialogue,
 *                  STARTTLS by smtp_tls_security_level, pipelined when
 *                  offered, the content, the outcome of every recipient
 *   smtp_tls.c     the OpenSSL glue: the context, one TLS connection
 *
 * Ownership: the agent owns its jobs (a list); a job owns at most one
 * client at a time and its lookups; a client borrows its job. A job ends
 * (DONE sent, freed) only from smtp_job_step(), never inside a client's
 * or a lookup's callback stack that would touch it afterwards.
 */
#ifndef TERN_SMTP_IMPL_H
#define TERN_SMTP_IMPL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/evloop.h"
#include "common/fconn.h"
#include "config/config.h"
#include "config/map.h"
#include "delivery/smtp_class.h"
#include "delivery/smtp_nexthop.h"
#include "delivery/smtp_tls.h"
#include "delivery/smtp_tls_policy.h"
#include "queue/agent_link.h"
#include "queue/agent_proto.h"
#include "resolver/resolver.h"
#include "resolver/resolver_mx.h"

/* Addresses of one host kept for trying (the rest are ignored). */
#define SMTP_HOST_ADDRS_MAX 16

/* The parameters, read once per (re)load; times in ms. */
struct smtp_settings {
	/* LMTP (RFC 2033) instead of SMTP: the lmtp role runs this agent
	 * for the transport "lmtp" (LHLO, one reply per recipient after the
	 * final dot, next hops unix:/path or inet:host:port, no TLS, no
	 * AUTH; doc/lmtp.md). */
	bool lmtp;
	char helo_name[256];
	uint16_t port;			/* smtp_port */
	int64_t connect_ms, helo_ms, mail_ms, rcpt_ms, data_init_ms, data_xfer_ms,
	        data_done_ms, quit_ms;
	unsigned mx_address_limit;	/* 0 = none */
	unsigned mx_session_limit;	/* 0 = none */
	int64_t cache_ms;		/* smtp_connection_cache_time_limit; 0 = off */
	char myhostname[256];		/* loop detection */
	enum smtp_tls_level tls_level;	/* smtp_tls_security_level */
	char tls_cafile[1024];		/* smtp_tls_CAfile */
	/* smtp_tls_protocols (may) and smtp_tls_mandatory_protocols. */
	struct smtp_tls_protocols tls_protocols, tls_mandatory_protocols;
	bool dnssec;			/* smtp_dns_support_level = dnssec */
	/* minimal_backoff_time: a message that waited this long before its
	 * job (so it was deferred before) may retry a failed opportunistic
	 * TLS handshake in plain text (smtp_client.c). */
	int64_t min_backoff_us;
	/* Client AUTH (smtp_sasl.h). */
	bool sasl_enable;		/* smtp_sasl_auth_enable */
	bool send_xforward;		/* smtp_send_xforward_command */
	unsigned sasl_flags;		/* smtp_sasl_security_options, SASL_SEC_* */
	unsigned sasl_tls_flags;	/* smtp_sasl_tls_security_options */
	char sasl_mech_filter[512];	/* smtp_sasl_mechanism_filter, space-separated */
};

struct smtp_job;

struct smtp_agent {
	const char *cfg_path;
	struct config *cfg;
	struct evloop *loop;
	struct resolver *resolver;
	struct smtp_settings set;
	/* The TLS client context, made from set at start and on reload;
	 * NULL at level none, or when it could not be made (then mandatory
	 * TLS defers: "our TLS engine is unavailable"). A reload replaces
	 * it; TLS connections already made keep the old one (smtp_tls.h). */
	struct smtp_tls_ctx *tls_ctx;
	/* smtp_sasl_password_maps (NULL: none, or AUTH off); replaced on
	 * reload; sessions look credentials up only while starting AUTH. */
	struct map_list *sasl_maps;
	/* smtp_tls_policy_maps (NULL: none); replaced on reload. */
	struct map_list *tls_policy_maps;
	char spool_dir[1024];

	int control_fd;
	struct ev_io control_io;
	struct buf control_in;

	struct agent_link *link;	/* to qmgr */

	struct smtp_job *jobs;		/* running, doubly linked */
	size_t njobs;
	struct ev_timer reap;		/* ends finished jobs outside callbacks */
	bool draining;
	bool stopping;
};

/* One address to try. */
struct smtp_target {
	char host[RESOLVER_NAME_SIZE];	/* the host's name (the literal for [addr]) */
	struct sockaddr_storage sa;
	socklen_t salen;
	char addr_text[112];		/* "192.0.2.7", "2001:db8::7", LMTP: "/run/dovecot/lmtp" */
	bool via_mx;
};

/* Per recipient of a job. */
struct smtp_job_rcpt {
	bool done;			/* its RESULT was sent */
};

struct smtp_client;

/* What TLS the current host gets (smtp_job.c decides, by the next hop's
 * policy and, for DANE, the host's TLSA records; the client reads it). */
struct smtp_host_tls {
	enum smtp_tls_level level;	/* none, may, encrypt, verify or dane */
	/* verify: the match= names, expanded; dane: the MX host and the
	 * next-hop domain, besides the base domain (RFC 7672 section 3.2.2) */
	size_t n_names;
	char names[SMTP_TLS_MATCH_MAX][SMTP_TLS_NAME_SIZE + 2];	/* "." and a next hop */
	/* dane: the TLSA base domain and the usable records */
	char dane_base[RESOLVER_NAME_SIZE];
	struct smtp_tls_dane dane;
};

struct smtp_job {
	struct smtp_agent *agent;
	struct smtp_job *prev, *next;
	struct agent_job j;
	struct smtp_job_rcpt *rcpts;	/* j.nrcpt */
	size_t nleft;			/* recipients without a result */
	struct smtp_nexthop nh;
	int64_t received_us;		/* wall clock when the job came */

	/* Routing */
	struct resolver_query *query;
	struct resolver_mx_list *mx;	/* when nh.mx */
	size_t mx_next;			/* next MX host to look up */
	bool hosts_done;		/* no more hosts to look up */
	struct smtp_target targets[SMTP_HOST_ADDRS_MAX];
	size_t ntargets, target_next;
	unsigned addresses_tried, sessions;

	/* TLS: the next hop's policy (smtp_tls_policy_maps, or main.cf),
	 * whether its MX RRset was DNSSEC-validated, the current host's. */
	struct smtp_tls_policy tls;
	bool mx_secure;
	struct smtp_host_tls host_tls;
	bool tlsa_qname_tried;		/* the TLSA lookup at the MX name, after
					 * one at its CNAME target found nothing */
	char tlsa_host[RESOLVER_NAME_SIZE];	/* the host whose TLSA is asked */

	/* What the recipients still without a result are told when no host
	 * is left: the last host's failure (or the lookup's). */
	bool have_fail;
	struct agent_result fail;

	struct smtp_client *client;	/* the session running, or NULL */
	bool finished;			/* every recipient has a result: DONE it */
};

/* smtp_agent.c */

/* Send the result of recipient k of job (an index into job->j.rcpts) and
 * log its line (agent_link_result()). r: status, err_class, smtp_code,
 * enh, text, relay, host, relayed; job_id, index and delays are filled
 * here. */
void smtp_agent_result(struct smtp_job *job, size_t k, struct agent_result *r,
                       int64_t delays_us[4]);
/* The job has ended: send DONE and free it soon (outside callbacks). */
void smtp_agent_job_finished(struct smtp_job *job);

/* smtp_job.c */
struct smtp_job *smtp_job_new(struct smtp_agent *a, struct agent_job *j);
void smtp_job_start(struct smtp_job *job);
void smtp_job_free(struct smtp_job *job);
/* The client ended its session; host_failed: the recipients still without
 * a result may go to the next host (why in *fail). */
void smtp_job_session_done(struct smtp_job *job, bool host_failed, const struct agent_result *fail);
/* A cached connection failed before the transaction: route afresh. */
void smtp_job_reuse_failed(struct smtp_job *job);
/* Report every recipient still without a result with *r. */
void smtp_job_fail_rest(struct smtp_job *job, const struct agent_result *r);

/* smtp_client.c */
struct smtp_client *smtp_client_start(struct smtp_job *job, const struct smtp_target *t);
/* A cached connection to the job's transport and next hop, taken for it
 * (RSET sent), or NULL. If the RSET fails the client calls
 * smtp_job_reuse_failed() and the job routes as usual. */
struct smtp_client *smtp_client_reuse(struct smtp_job *job);
/* Stop at once (the job is freed): no callback; frees c. */
void smtp_client_abort(struct smtp_client *c);
/* Free the clients still saying QUIT (the agent is stopping). */
void smtp_client_close_all(void);

#endif
