/*
 * smtpd_peer: the client's host names (reverse_client_name, client_name)
 * and their statuses, Postfix's way; see smtpd_peer.h.
 *
 * Error policy: DNS failures are results (statuses), never errors; out of
 * memory is fatal(). Ownership: a lookup owns its resolver handle and its
 * timer, and frees itself before it calls back.
 */
#include "smtpd/smtpd_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/evloop.h"
#include "common/log.h"

const char *
smtpd_peer_status_name(enum smtpd_peer_status st)
{
	switch (st) {
	case SMTPD_PEER_OK:
		return "OK";
	case SMTPD_PEER_TEMP:
		return "TEMP";
	case SMTPD_PEER_FORGED:
		return "FORGED";
	case SMTPD_PEER_PERM:
		break;
	}
	return "FAIL";
}

static void
smtpd_peer_set(char dst[RESOLVER_NAME_SIZE], const char *src)
{
	snprintf(dst, RESOLVER_NAME_SIZE, "%s", src);
}

void
smtpd_peer_names_unknown(struct smtpd_peer_names *n, enum smtpd_peer_status st)
{
	smtpd_peer_set(n->name, SMTPD_PEER_UNKNOWN);
	smtpd_peer_set(n->reverse_name, SMTPD_PEER_UNKNOWN);
	n->name_status = st;
	n->reverse_name_status = st;
}

bool
smtpd_peer_localhost(int af, const unsigned char *addr, struct smtpd_peer_names *n)
{
	static const unsigned char v4[4] = { 127, 0, 0, 1 };
	static const unsigned char v6[16] = { [15] = 1 };
	static const unsigned char mapped[16] = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 1 };

	if (!(af == AF_INET && memcmp(addr, v4, sizeof(v4)) == 0) &&
	    !(af == AF_INET6 && (memcmp(addr, v6, sizeof(v6)) == 0 ||
	                         memcmp(addr, mapped, sizeof(mapped)) == 0)))
		return false;
	smtpd_peer_set(n->name, "localhost");
	smtpd_peer_set(n->reverse_name, "localhost");
	n->name_status = SMTPD_PEER_OK;
	n->reverse_name_status = SMTPD_PEER_OK;
	return true;
}

bool
smtpd_peer_name_valid(const char *name, char out[RESOLVER_NAME_SIZE])
{
	unsigned char bin[sizeof(struct in6_addr)];

	if (resolver_name_normalize(name, out) < 0)
		return false;
	/* resolver_name_normalize() already refuses all digits and dots;
	 * an IPv6 address holds ':', which no host name does. Asked anyway,
	 * so that the rule does not depend on the syntax check's details. */
	if (inet_pton(AF_INET, out, bin) == 1 || inet_pton(AF_INET6, out, bin) == 1)
		return false;
	return strcmp(out, SMTPD_PEER_UNKNOWN) != 0;
}

bool
smtpd_peer_ptr_decide(struct smtpd_peer_names *n, const struct resolver_result *res)
{
	char name[RESOLVER_NAME_SIZE];
	size_t i, max;

	switch (res->status) {
	case RESOLVER_OK:
		break;
	case RESOLVER_TEMPFAIL:
		/* Postfix: EAI_AGAIN and friends are temporary for both. */
		smtpd_peer_names_unknown(n, SMTPD_PEER_TEMP);
		return false;
	case RESOLVER_NXDOMAIN:
	case RESOLVER_NODATA:
	case RESOLVER_BADNAME:
	default:
		smtpd_peer_names_unknown(n, SMTPD_PEER_PERM);
		return false;
	}
	max = res->n_ptr < SMTPD_PEER_PTR_MAX ? res->n_ptr : SMTPD_PEER_PTR_MAX;
	for (i = 0; i < max; i++) {
		if (!smtpd_peer_name_valid(res->ptr[i].name, name))
			continue;
		smtpd_peer_set(n->reverse_name, name);
		n->reverse_name_status = SMTPD_PEER_OK;
		/* Not confirmed yet: what a deadline would leave. */
		smtpd_peer_set(n->name, SMTPD_PEER_UNKNOWN);
		n->name_status = SMTPD_PEER_TEMP;
		return true;
	}
	/* Records, but no usable name: as Postfix's sockaddr_to_hostname()
	 * refusing a malformed or numeric one, a permanent failure. */
	smtpd_peer_names_unknown(n, SMTPD_PEER_PERM);
	return false;
}

/* glibc's gai_strerror() words, which Postfix's warning carries. */
static const char *
smtpd_peer_forward_why(enum resolver_status st)
{
	switch (st) {
	case RESOLVER_TEMPFAIL:
		return "Temporary failure in name resolution";
	case RESOLVER_NODATA:
		return "No address associated with hostname";
	default:
		return "Name or service not known";
	}
}

void
smtpd_peer_forward_decide(struct smtpd_peer_names *n, int af, const unsigned char *addr,
    const char *client_addr, const struct resolver_result *res, char *warn, size_t warnsz)
{
	size_t i, len = af == AF_INET ? 4 : 16;

	warn[0] = '\0';
	if (res->status == RESOLVER_OK) {
		/* The resolver keeps at most RESOLVER_RR_MAX records. */
		for (i = 0; i < res->n_addr; i++) {
			if (res->addr[i].family == af && memcmp(res->addr[i].addr, addr, len) == 0) {
				smtpd_peer_set(n->name, n->reverse_name);
				n->name_status = SMTPD_PEER_OK;
				return;
			}
		}
		smtpd_peer_set(n->name, SMTPD_PEER_UNKNOWN);
		n->name_status = SMTPD_PEER_FORGED;
		snprintf(warn, warnsz, "hostname %s does not resolve to address %s", n->reverse_name,
		    client_addr);
		return;
	}
	smtpd_peer_set(n->name, SMTPD_PEER_UNKNOWN);
	n->name_status = res->status == RESOLVER_TEMPFAIL ? SMTPD_PEER_TEMP : SMTPD_PEER_FORGED;
	snprintf(warn, warnsz, "hostname %s does not resolve to address %s: %s", n->reverse_name,
	    client_addr, smtpd_peer_forward_why(res->status));
}

void
smtpd_peer_timeout_decide(struct smtpd_peer_names *n, bool forward, const char *client_addr,
    char *warn, size_t warnsz)
{
	warn[0] = '\0';
	if (!forward) {
		smtpd_peer_names_unknown(n, SMTPD_PEER_TEMP);
		return;
	}
	smtpd_peer_set(n->name, SMTPD_PEER_UNKNOWN);
	n->name_status = SMTPD_PEER_TEMP;
	snprintf(warn, warnsz, "hostname %s does not resolve to address %s: %s", n->reverse_name,
	    client_addr, smtpd_peer_forward_why(RESOLVER_TEMPFAIL));
}

/* ---- on the event loop ---- */

struct smtpd_peer_lookup {
	struct evloop *loop;
	struct resolver *resolver;
	struct resolver_query *q;	/* the PTR or the forward question */
	struct ev_timer deadline;
	bool forward;			/* the forward phase */
	int af;
	unsigned char addr[16];
	char client_addr[INET6_ADDRSTRLEN];
	struct smtpd_peer_names names;
	smtpd_peer_cb *cb;
	void *arg;
};

static void
smtpd_peer_lookup_free(struct smtpd_peer_lookup *l)
{
	resolver_cancel(l->q);
	evloop_timer_stop(l->loop, &l->deadline);
	free(l);
}

/* The decision is made: free the lookup, then tell the owner. */
static void
smtpd_peer_lookup_done(struct smtpd_peer_lookup *l, const char *warn)
{
	struct smtpd_peer_names names = l->names;
	smtpd_peer_cb *cb = l->cb;
	void *arg = l->arg;

	if (warn[0] != '\0')
		log_warning("%s", warn);
	smtpd_peer_lookup_free(l);
	cb(arg, &names);
}

static void
smtpd_peer_forward_cb(const struct resolver_result *res, void *arg)
{
	struct smtpd_peer_lookup *l = arg;
	char warn[SMTPD_PEER_WARN_SIZE];

	l->q = NULL;
	smtpd_peer_forward_decide(&l->names, l->af, l->addr, l->client_addr, res, warn,
	    sizeof(warn));
	smtpd_peer_lookup_done(l, warn);
}

static void
smtpd_peer_ptr_cb(const struct resolver_result *res, void *arg)
{
	struct smtpd_peer_lookup *l = arg;

	l->q = NULL;
	if (smtpd_peer_ptr_decide(&l->names, res)) {
		l->forward = true;
		l->q = resolver_host_af(l->resolver, l->names.reverse_name, l->af, smtpd_peer_forward_cb,
		    l);
		return;
	}
	smtpd_peer_lookup_done(l, "");
}

static void
smtpd_peer_deadline(struct ev_timer *t)
{
	struct smtpd_peer_lookup *l = t->arg;
	char warn[SMTPD_PEER_WARN_SIZE];

	smtpd_peer_timeout_decide(&l->names, l->forward, l->client_addr, warn, sizeof(warn));
	smtpd_peer_lookup_done(l, warn);
}

struct smtpd_peer_lookup *
smtpd_peer_lookup_start(struct evloop *loop, struct resolver *r, int af, const unsigned char *addr,
    const char *client_addr, int64_t timeout_ms, smtpd_peer_cb *cb, void *arg)
{
	struct smtpd_peer_lookup *l;
	struct sockaddr_storage ss;

	if (af != AF_INET && af != AF_INET6)
		panic("smtpd_peer_lookup_start: address family %d", af);
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		fatal("out of memory (client name lookup)");
	l->loop = loop;
	l->resolver = r;
	l->af = af;
	memcpy(l->addr, addr, af == AF_INET ? 4 : 16);
	snprintf(l->client_addr, sizeof(l->client_addr), "%s", client_addr);
	l->cb = cb;
	l->arg = arg;
	smtpd_peer_names_unknown(&l->names, SMTPD_PEER_TEMP);
	memset(&ss, 0, sizeof(ss));
	if (af == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, addr, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, addr, 16);
	}
	evloop_timer_init(&l->deadline, smtpd_peer_deadline, l);
	evloop_timer_start(loop, &l->deadline, timeout_ms);
	l->q = resolver_ptr(r, (struct sockaddr *)&ss, smtpd_peer_ptr_cb, l);
	return l;
}

void
smtpd_peer_lookup_cancel(struct smtpd_peer_lookup *l)
{
	if (l != NULL)
		smtpd_peer_lookup_free(l);
}
