/*
 * smtp_job: one delivery job of the smtp agent, from the next hop to a
 * result for every recipient.
 *
 * Hosts are tried in order (RFC 5321 section 5): the MX hosts by
 * preference (smtp_nexthop.h says when MX records are looked up), each
 * host's addresses as the resolver lists them; the next address is tried
 * after a failure of the host or of the whole transaction (connect
 * refused or timed out, a 421, a 4xx to the greeting, EHLO, MAIL, DATA or
 * the final dot, a lost connection), never after a recipient's own
 * failure. At most smtp_mx_address_limit addresses and
 * smtp_mx_session_limit sessions (connections that were greeted) per job,
 * Postfix's limits, so one dead domain cannot hold a slot for long.
 *
 * The recipients still without a result when no address is left get the
 * last failure: a temporary one is deferred by qmgr under its Exim error
 * class (refused_MX, timeout_connect_A, ...) naming the host, a
 * permanent one (a 5xx greeting from the last host, a null MX, a domain
 * that does not exist) bounces.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "common/log.h"
#include "delivery/smtp_impl.h"

static void job_next_host(struct smtp_job *job);
static void job_try_next(struct smtp_job *job);

struct smtp_job *
smtp_job_new(struct smtp_agent *a, struct agent_job *j)
{
	struct smtp_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		fatal("out of memory");
	job->agent = a;
	job->j = *j;		/* the strings and arrays move to the job */
	job->rcpts = calloc(j->nrcpt ? j->nrcpt : 1, sizeof(*job->rcpts));
	if (job->rcpts == NULL)
		fatal("out of memory");
	job->nleft = j->nrcpt;
	job->received_us = agent_link_now_us();
	return job;
}

void
smtp_job_free(struct smtp_job *job)
{
	if (job->client != NULL)
		smtp_client_abort(job->client);
	resolver_cancel(job->query);
	agent_job_free(&job->j);
	free(job->mx);
	free(job->rcpts);
	free(job);
}

static void
job_finish(struct smtp_job *job)
{
	smtp_agent_job_finished(job);
}

void
smtp_job_fail_rest(struct smtp_job *job, const struct agent_result *r)
{
	int64_t now = agent_link_now_us();
	int64_t delays[4] = { job->received_us - job->j.arrival, 0, now - job->received_us, 0 };

	for (size_t k = 0; k < job->j.nrcpt; k++) {
		struct agent_result copy;

		if (job->rcpts[k].done)
			continue;
		copy = *r;
		smtp_agent_result(job, k, &copy, delays);
	}
}

/* Every recipient without a result gets status/enh/text; the job ends. */
static void
job_fail_all(struct smtp_job *job, enum agent_status status, const char *enh, const char *text)
{
	struct agent_result r;

	memset(&r, 0, sizeof(r));
	r.status = status;
	snprintf(r.enh, sizeof(r.enh), "%s", enh);
	snprintf(r.text, sizeof(r.text), "%s", text);
	snprintf(r.relay, sizeof(r.relay), "none");
	smtp_job_fail_rest(job, &r);
	job_finish(job);
}

/* No address left: the last failure for whoever is left. */
static void
job_exhausted(struct smtp_job *job)
{
	if (job->nleft > 0) {
		if (!job->have_fail) {
			job_fail_all(job, AGENT_TEMPFAIL, "4.4.1", "no usable address for the next hop");
			return;
		}
		smtp_job_fail_rest(job, &job->fail);
	}
	job_finish(job);
}

static void
job_note_fail(struct smtp_job *job, enum agent_status status, const char *enh, const char *text)
{
	memset(&job->fail, 0, sizeof(job->fail));
	job->fail.status = status;
	snprintf(job->fail.enh, sizeof(job->fail.enh), "%s", enh);
	snprintf(job->fail.text, sizeof(job->fail.text), "%s", text);
	snprintf(job->fail.relay, sizeof(job->fail.relay), "none");
	job->have_fail = true;
}

static void
target_set(struct smtp_target *t, const char *host, int family, const void *addr, uint16_t port,
           bool via_mx)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "%s", host);
	t->via_mx = via_mx;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&t->sa;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr, 4);
		t->salen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->sa;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr, 16);
		t->salen = sizeof(*sin6);
	}
	inet_ntop(family, addr, t->addr_text, sizeof(t->addr_text));
}

/* The host being looked up: the current MX host, or the next hop. */
static const struct resolver_mx_host *
job_current_mx(const struct smtp_job *job)
{
	return job->mx != NULL && job->mx_next > 0 ? &job->mx->hosts[job->mx_next - 1] : NULL;
}

static void
job_host_cb(const struct resolver_result *res, void *arg)
{
	struct smtp_job *job = arg;
	const struct resolver_mx_host *mxh = job_current_mx(job);
	const char *host = mxh != NULL ? mxh->name : job->nh.host;
	bool via_mx = mxh != NULL && !mxh->implicit;

	job->query = NULL;
	if (res->status != RESOLVER_OK) {
		/* A missing MX host is that host's problem (the next may
		 * work); a domain with neither MX nor address records, or a
		 * [host] that does not exist, is permanent. */
		bool perm = res->status != RESOLVER_TEMPFAIL && !via_mx;

		job_note_fail(job, perm ? AGENT_PERMFAIL : AGENT_TEMPFAIL,
		              perm ? resolver_status_dsn(res->status) : "4.4.3", res->text);
		if (job->mx != NULL)
			job_next_host(job);
		else
			job_exhausted(job);
		return;
	}
	job->ntargets = 0;
	job->target_next = 0;
	for (size_t i = 0; i < res->n_addr && job->ntargets < SMTP_HOST_ADDRS_MAX; i++)
		target_set(&job->targets[job->ntargets++], host, res->addr[i].family,
		           res->addr[i].addr, job->nh.port, via_mx);
	job_try_next(job);
}

static void
job_next_host(struct smtp_job *job)
{
	const struct resolver_mx_host *h;

	if (job->mx == NULL || job->mx_next >= job->mx->n) {
		job_exhausted(job);
		return;
	}
	h = &job->mx->hosts[job->mx_next++];
	job->query = resolver_host(job->agent->resolver, h->name, job_host_cb, job);
}

static void
job_mx_cb(const struct resolver_result *res, void *arg)
{
	struct smtp_job *job = arg;
	struct smtp_agent *a = job->agent;
	struct resolver_mx_self self = { .myhostname = a->set.myhostname };

	job->query = NULL;
	job->mx = malloc(sizeof(*job->mx));
	if (job->mx == NULL)
		fatal("out of memory");
	resolver_mx_select(job->nh.host, res, &self, resolver_mx_random_system, NULL, job->mx);
	switch (job->mx->status) {
	case RESOLVER_MX_PERMFAIL:
		job_fail_all(job, AGENT_PERMFAIL, job->mx->dsn, job->mx->text);
		return;
	case RESOLVER_MX_TEMPFAIL:
		job_fail_all(job, AGENT_TEMPFAIL, job->mx->dsn, job->mx->text);
		return;
	case RESOLVER_MX_OK:
		break;
	}
	job->mx_next = 0;
	job_next_host(job);
}

/* Are the job's attempts used up? */
static bool
job_limits_reached(const struct smtp_job *job)
{
	const struct smtp_settings *s = &job->agent->set;

	return (s->mx_address_limit > 0 && job->addresses_tried >= s->mx_address_limit) ||
	       (s->mx_session_limit > 0 && job->sessions >= s->mx_session_limit);
}

static void
job_try_next(struct smtp_job *job)
{
	if (job->nleft == 0) {
		job_finish(job);
		return;
	}
	if (job_limits_reached(job)) {
		job_exhausted(job);
		return;
	}
	if (job->target_next < job->ntargets) {
		job->addresses_tried++;
		job->client = smtp_client_start(job, &job->targets[job->target_next++]);
		return;
	}
	if (job->mx != NULL)
		job_next_host(job);
	else
		job_exhausted(job);
}

void
smtp_job_session_done(struct smtp_job *job, bool host_failed, const struct agent_result *fail)
{
	job->client = NULL;
	if (host_failed) {
		job->fail = *fail;
		job->have_fail = true;
	} else if (job->nleft > 0) {
		/* The session ended every recipient it did not report: a bug. */
		log_error("%s: session ended with %zu recipients unreported; deferring them",
		          job->j.queue_id, job->nleft);
		job_note_fail(job, AGENT_TEMPFAIL, "4.3.0", "internal error in the smtp agent");
		job_exhausted(job);
		return;
	}
	job_try_next(job);
}

/* Lookups, then the first address. */
static void
job_route(struct smtp_job *job)
{
	struct smtp_agent *a = job->agent;

	if (job->nh.unix_socket) {
		struct smtp_target *t = &job->targets[0];
		struct sockaddr_un *sun = (struct sockaddr_un *)&t->sa;
		int n;

		/* Postfix: a relative path is relative to queue_directory; the
		 * host is ourselves (relay=myhostname[/run/dovecot/lmtp]). */
		memset(t, 0, sizeof(*t));
		sun->sun_family = AF_UNIX;
		n = job->nh.path[0] == '/'
		            ? snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", job->nh.path)
		            : snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s", a->spool_dir,
		                       job->nh.path);
		if (n < 0 || (size_t)n >= sizeof(sun->sun_path)) {
			job_fail_all(job, AGENT_TEMPFAIL, "4.3.5",
			             "mail routing misconfigured: unix socket path too long");
			return;
		}
		t->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
		snprintf(t->host, sizeof(t->host), "%.*s", (int)sizeof(t->host) - 1, a->set.myhostname);
		snprintf(t->addr_text, sizeof(t->addr_text), "%s", sun->sun_path);
		job->ntargets = 1;
		job_try_next(job);
		return;
	}
	if (job->nh.literal) {
		unsigned char addr[16];
		int family = strchr(job->nh.host, ':') != NULL ? AF_INET6 : AF_INET;

		if (inet_pton(family, job->nh.host, addr) != 1)
			panic("smtp_nexthop accepted a bad literal %s", job->nh.host);
		target_set(&job->targets[0], job->nh.host, family, addr, job->nh.port, false);
		job->ntargets = 1;
		job_try_next(job);
		return;
	}
	if (job->nh.mx)
		job->query = resolver_mx(a->resolver, job->nh.host, job_mx_cb, job);
	else
		job->query = resolver_host(a->resolver, job->nh.host, job_host_cb, job);
}

void
smtp_job_reuse_failed(struct smtp_job *job)
{
	job->client = NULL;
	job_route(job);
}

void
smtp_job_start(struct smtp_job *job)
{
	struct smtp_agent *a = job->agent;
	char err[400];

	if ((a->set.lmtp ? smtp_nexthop_parse_lmtp(job->j.nexthop, a->set.port, &job->nh, err,
	                                           sizeof(err))
	                 : smtp_nexthop_parse(job->j.nexthop, a->set.port, &job->nh, err,
	                                      sizeof(err))) < 0) {
		char text[512];

		log_warning("%s: %s", job->j.queue_id, err);
		snprintf(text, sizeof(text), "mail routing misconfigured: %s", err);
		job_fail_all(job, AGENT_TEMPFAIL, "4.3.5", text);
		return;
	}
	/* A connection to the same next hop that just finished a delivery
	 * (Postfix's connection cache): no lookups, no connect, no EHLO. */
	job->client = smtp_client_reuse(job);
	if (job->client != NULL)
		return;
	job_route(job);
}
