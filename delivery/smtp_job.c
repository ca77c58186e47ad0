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
 *
 * TLS policy (Postfix's smtp_tls_policy.c, doc/smtp.md "TLS"): the next
 * hop's level comes from smtp_tls_policy_maps (the next hop as written,
 * then its parent domains as ".parent") or smtp_tls_security_level. A
 * policy that cannot be read or parsed defers everything ("client TLS
 * configuration problem", 4.7.5), with a warning that names the entry.
 * For dane and dane-only (RFC 7672), per host: an MX RRset that was not
 * DNSSEC-validated, or a host whose addresses were not, has no usable
 * TLSA records; else _PORT._tcp.HOST is asked, at the CNAME target of
 * the host first when its addresses came through one, then at the host's
 * own name (section 2.2.2; Postfix's tls_dane_resolve()). We skip
 * Postfix's extra check of an insecure CNAME leading to a secure target
 * (qname_secure()): such a host gets no TLSA lookup. A TLSA lookup that
 * fails skips the host ("TLSA lookup error for HOST:PORT", 4.7.5); none
 * found: "may" for dane, the host skipped for dane-only; only unusable
 * records: "encrypt" for dane, skipped for dane-only.
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
	smtp_tls_dane_free(&job->host_tls.dane);
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

/* ---- TLS per host ---- */

/* This host cannot be used (a DANE reason): note why, try the next one. */
static void
job_host_skip(struct smtp_job *job, const char *enh, const char *text)
{
	job_note_fail(job, AGENT_TEMPFAIL, enh, text);
	if (job->mx != NULL)
		job_next_host(job);
	else
		job_exhausted(job);
}

/* verify's reference names: match= expanded (default: the host's name). */
static void
job_verify_names(struct smtp_job *job, const char *host)
{
	struct smtp_host_tls *ht = &job->host_tls;
	static const struct smtp_tls_match hostname = { .kind = SMTP_TLS_MATCH_HOSTNAME };
	const struct smtp_tls_match *m = job->tls.n_match > 0 ? job->tls.match : &hostname;
	size_t n = job->tls.n_match > 0 ? job->tls.n_match : 1;

	for (size_t i = 0; i < n && ht->n_names < SMTP_TLS_MATCH_MAX; i++) {
		char *out = ht->names[ht->n_names++];

		switch (m[i].kind) {
		case SMTP_TLS_MATCH_HOSTNAME:
			snprintf(out, sizeof(ht->names[0]), "%s", host);
			break;
		case SMTP_TLS_MATCH_NEXTHOP:
			snprintf(out, sizeof(ht->names[0]), "%s", job->nh.host);
			break;
		case SMTP_TLS_MATCH_DOT_NEXTHOP:
			snprintf(out, sizeof(ht->names[0]), ".%s", job->nh.host);
			break;
		case SMTP_TLS_MATCH_NAME:
			snprintf(out, sizeof(ht->names[0]), "%s", m[i].name);
			break;
		}
	}
}

/* Start on the host's addresses with TLS at level (not dane). */
static void
job_host_tls_set(struct smtp_job *job, enum smtp_tls_level level, const char *host)
{
	struct smtp_host_tls *ht = &job->host_tls;

	smtp_tls_dane_free(&ht->dane);
	ht->level = level;
	ht->n_names = 0;
	ht->dane_base[0] = '\0';
	if (level == SMTP_TLS_VERIFY)
		job_verify_names(job, host);
}

/*
 * No usable DANE for this host (RFC 7672 section 2.2): dane falls back to
 * fallback ("may", or "encrypt" when there were only unusable records),
 * dane-only skips the host with why (Postfix's dane_incompat()).
 */
static void
job_dane_incompat(struct smtp_job *job, const char *host, enum smtp_tls_level fallback,
                  const char *why)
{
	if (job->tls.level == SMTP_TLS_DANE_ONLY) {
		job_host_skip(job, "4.7.5", why);
		return;
	}
	job_host_tls_set(job, fallback, host);
	job_try_next(job);
}

/* The host whose addresses are in job->targets. */
static const char *
job_target_host(const struct smtp_job *job)
{
	return job->ntargets > 0 ? job->targets[0].host : job->nh.host;
}

/* Keep the usable records of a secure TLSA RRset; warn about the rest. */
static void
job_tlsa_usable(struct smtp_job *job, const struct resolver_result *res)
{
	char why[128];

	for (size_t i = 0; i < res->n_tlsa; i++) {
		const struct resolver_tlsa *t = &res->tlsa[i];

		if (!smtp_tls_tlsa_usable(t->len_ok, t->len_ok ? t->len + 3 : t->len, t->usage,
		                          t->selector, t->mtype, t->data, t->len, why, sizeof(why))) {
			/* Postfix's words (tls_dane.c parse_tlsa_rr()). */
			log_warning("%s in RR: %s IN TLSA %u %u %u ...", why, res->name, t->usage,
			            t->selector, t->mtype);
			continue;
		}
		(void)smtp_tls_dane_add(&job->host_tls.dane, t->usage, t->selector, t->mtype,
		                        t->data, t->len);
	}
}

static void job_tlsa_lookup(struct smtp_job *job, const char *name);

static void
job_tlsa_cb(const struct resolver_result *res, void *arg)
{
	struct smtp_job *job = arg;
	const char *host = job_target_host(job);
	struct smtp_host_tls *ht = &job->host_tls;
	char text[AGENT_TEXT_MAX];

	job->query = NULL;
	if (res->status == RESOLVER_TEMPFAIL || res->status == RESOLVER_BADNAME) {
		log_warning("DANE TLSA lookup problem: %s", res->text);
		snprintf(text, sizeof(text), "TLSA lookup error for %s:%u", host, job->nh.port);
		job_host_skip(job, "4.7.5", text);
		return;
	}
	if (res->status != RESOLVER_OK || !res->secure) {
		/* Nothing at the CNAME target: the MX host's own name next. */
		if (!job->tlsa_qname_tried && strcmp(job->tlsa_host, host) != 0) {
			job->tlsa_qname_tried = true;
			job_tlsa_lookup(job, host);
			return;
		}
		job_dane_incompat(job, host, SMTP_TLS_MAY, "no TLSA records found");
		return;
	}
	job_host_tls_set(job, SMTP_TLS_DANE, host);
	job_tlsa_usable(job, res);
	if (ht->dane.n == 0) {
		/* RFC 7672 section 2.2: TLS is a must, authentication is not
		 * possible (Postfix: "TLSA records unusable"). */
		job_dane_incompat(job, host, SMTP_TLS_ENCRYPT, "TLSA records unusable");
		return;
	}
	/* Reference identifiers (section 3.2.2): the base domain, the MX
	 * host's name, the next-hop domain. */
	snprintf(ht->dane_base, sizeof(ht->dane_base), "%s", job->tlsa_host);
	if (strcmp(host, job->tlsa_host) != 0)
		snprintf(ht->names[ht->n_names++], sizeof(ht->names[0]), "%s", host);
	if (job->mx != NULL && job->nh.mx && strcmp(job->nh.host, host) != 0)
		snprintf(ht->names[ht->n_names++], sizeof(ht->names[0]), "%s", job->nh.host);
	job_try_next(job);
}

static void
job_tlsa_lookup(struct smtp_job *job, const char *name)
{
	char qname[RESOLVER_NAME_SIZE + 16];

	snprintf(job->tlsa_host, sizeof(job->tlsa_host), "%s", name);
	snprintf(qname, sizeof(qname), "_%u._tcp.%s", job->nh.port, name);
	job->query = resolver_tlsa(job->agent->resolver, qname, job_tlsa_cb, job);
}

/* The host's addresses are known: decide its TLS, then try them. */
static void
job_host_tls(struct smtp_job *job, const struct resolver_result *res, bool via_mx)
{
	const char *host = job_target_host(job);

	if (job->tls.level != SMTP_TLS_DANE && job->tls.level != SMTP_TLS_DANE_ONLY) {
		job_host_tls_set(job, job->tls.level, host);
		job_try_next(job);
		return;
	}
	if (via_mx && !job->mx_secure) {
		job_dane_incompat(job, host, SMTP_TLS_MAY, "non DNSSEC destination");
		return;
	}
	if (res == NULL || !res->secure) {
		/* An address literal, or addresses not validated. */
		job_dane_incompat(job, host, SMTP_TLS_MAY, "no TLSA records found");
		return;
	}
	job->tlsa_qname_tried = false;
	job_tlsa_lookup(job, res->canonical);
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
	job_host_tls(job, res, via_mx);
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
	job->mx_secure = res->secure;
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
		job_host_tls(job, NULL, false);
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

/* The policy map entry for the next hop, if any: 1 found (job->tls set),
 * 0 none, -1 unusable (warned). */
static int
job_tls_policy_lookup(struct smtp_job *job)
{
	struct smtp_agent *a = job->agent;
	const char *dest = job->j.nexthop, *key = NULL;
	struct buf value;
	char err[512];
	int rc = 0;

	buf_init(&value, MAP_VALUE_MAX);
	while ((key = smtp_tls_policy_next_key(dest, key)) != NULL) {
		enum map_result mr = map_list_lookup(a->tls_policy_maps, key, &value, err, sizeof(err));

		if (mr == MAP_NOTFOUND)
			continue;
		if (mr == MAP_ERROR) {
			log_warning("smtp_tls_policy_maps, next-hop destination \"%s\": "
			            "policy table lookup error: %s", dest, err);
			rc = -1;
		} else if (smtp_tls_policy_parse(buf_cstr(&value), &job->tls, err, sizeof(err)) < 0) {
			log_warning("smtp_tls_policy_maps, next-hop destination \"%s\": %s", dest, err);
			rc = -1;
		} else {
			rc = 1;
		}
		break;
	}
	buf_free(&value);
	return rc;
}

/* The next hop's TLS policy; -1 when the job has been failed. */
static int
job_tls_policy(struct smtp_job *job)
{
	struct smtp_agent *a = job->agent;

	memset(&job->tls, 0, sizeof(job->tls));
	job->tls.level = a->set.tls_level;
	if (a->set.lmtp)
		return 0;
	if (a->tls_policy_maps != NULL && job_tls_policy_lookup(job) < 0) {
		job_fail_all(job, AGENT_TEMPFAIL, "4.7.5", "client TLS configuration problem");
		return -1;
	}
	if ((job->tls.level == SMTP_TLS_DANE || job->tls.level == SMTP_TLS_DANE_ONLY) &&
	    !a->set.dnssec) {
		/* Postfix's words; dane becomes may, dane-only cannot be had. */
		log_warning("%s: %s configured with dnssec lookups disabled", job->j.nexthop,
		            smtp_tls_level_name(job->tls.level));
		if (job->tls.level == SMTP_TLS_DANE_ONLY) {
			job_fail_all(job, AGENT_TEMPFAIL, "4.7.5", "client TLS configuration problem");
			return -1;
		}
		job->tls.level = SMTP_TLS_MAY;
	}
	return 0;
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
	if (job_tls_policy(job) < 0)
		return;
	/* A connection to the same next hop that just finished a delivery
	 * (Postfix's connection cache): no lookups, no connect, no EHLO. */
	job->client = smtp_client_reuse(job);
	if (job->client != NULL)
		return;
	job_route(job);
}
