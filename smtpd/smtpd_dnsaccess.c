/*
 * smtpd_dnsaccess: check_*_{mx,ns,a}_access (see the header). The walk
 * decides, the lookup asks; map lookups happen inside the walk, as soon
 * as a name or address is known, so the first hit stops the DNS traffic.
 */
#include "smtpd/smtpd_dnsaccess.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/log.h"
#include "smtpd/smtpd_restrict.h"

/* Keys of one name: the name and its parents, twice each (access(5)). */
#define SMTPD_DNSACCESS_KEYS_BYTES (4 * RESOLVER_NAME_SIZE * 8)
/* Keys of one address: 1.2.3.4, 1.2.3, 1.2, 1 (IPv6: up to 8 groups). */
#define SMTPD_DNSACCESS_ADDR_KEYS 9

static const char *
smtpd_dnsaccess_type_name(enum smtpd_dnsaccess_type t)
{
	return t == SMTPD_DNSACCESS_MX ? "MX" : t == SMTPD_DNSACCESS_NS ? "NS" : "A";
}

static void
smtpd_dnsaccess_finish(struct smtpd_dnsaccess_walk *w, enum smtpd_dnsaccess_result r)
{
	w->ask = SMTPD_DNSACCESS_ASK_NONE;
	w->result = r;
}

static void
smtpd_dnsaccess_ask(struct smtpd_dnsaccess_walk *w, enum smtpd_dnsaccess_ask ask, const char *name)
{
	w->ask = ask;
	snprintf(w->ask_name, sizeof(w->ask_name), "%s", name);
}

/* Look up NUL-separated keys in order; true when the walk has ended. */
static bool
smtpd_dnsaccess_try(struct smtpd_dnsaccess_walk *w, const char *keys, size_t n)
{
	enum map_result mr;
	size_t i;

	for (i = 0; i < n; i++, keys += strlen(keys) + 1) {
		buf_reset(&w->value);
		mr = map_lookup(w->map, keys, &w->value, w->err, sizeof(w->err));
		if (mr == MAP_NOTFOUND)
			continue;
		if (mr == MAP_FOUND) {
			snprintf(w->key, sizeof(w->key), "%s", keys);
			smtpd_dnsaccess_finish(w, SMTPD_DNSACCESS_FOUND);
		} else {
			smtpd_dnsaccess_finish(w, SMTPD_DNSACCESS_ERROR);
		}
		return true;
	}
	return false;
}

/* A host name and its parent domains. */
static bool
smtpd_dnsaccess_try_name(struct smtpd_dnsaccess_walk *w, const char *name)
{
	struct buf keys;
	size_t n;
	bool done;

	buf_init(&keys, SMTPD_DNSACCESS_KEYS_BYTES);
	n = smtpd_restrict_domain_keys(name, &keys);
	done = smtpd_dnsaccess_try(w, buf_data(&keys), n);
	buf_free(&keys);
	return done;
}

/* An address and its networks. */
static bool
smtpd_dnsaccess_try_addr(struct smtpd_dnsaccess_walk *w, int family, const unsigned char *addr)
{
	char text[INET6_ADDRSTRLEN], keys[SMTPD_DNSACCESS_ADDR_KEYS][64];
	char flat[SMTPD_DNSACCESS_ADDR_KEYS * 64];
	size_t i, n, o = 0;

	if (inet_ntop(family, addr, text, sizeof(text)) == NULL)
		return false;
	n = smtpd_restrict_client_keys(text, keys, SMTPD_DNSACCESS_ADDR_KEYS);
	for (i = 0; i < n; i++) {
		memcpy(flat + o, keys[i], strlen(keys[i]) + 1);
		o += strlen(keys[i]) + 1;
	}
	return smtpd_dnsaccess_try(w, flat, n);
}

/* The addresses of an answer, at most SMTPD_DNSACCESS_ADDRS_MAX. */
static bool
smtpd_dnsaccess_try_addrs(struct smtpd_dnsaccess_walk *w, const struct resolver_result *res)
{
	size_t i;

	for (i = 0; i < res->n_addr && i < SMTPD_DNSACCESS_ADDRS_MAX; i++)
		if (smtpd_dnsaccess_try_addr(w, res->addr[i].family, res->addr[i].addr))
			return true;
	return false;
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" as an address; false otherwise. */
static bool
smtpd_dnsaccess_literal(const char *lit, int *family, unsigned char addr[16])
{
	char inner[INET6_ADDRSTRLEN + 8];
	size_t len = strlen(lit);

	if (len < 3 || lit[len - 1] != ']' || len - 2 >= sizeof(inner))
		return false;
	memcpy(inner, lit + 1, len - 2);
	inner[len - 2] = '\0';
	if (strncasecmp(inner, "IPv6:", 5) == 0) {
		*family = AF_INET6;
		return inet_pton(AF_INET6, inner + 5, addr) == 1;
	}
	*family = AF_INET;
	return inet_pton(AF_INET, inner, addr) == 1;
}

/* Look at hosts[hi..]: each name, then (after a lookup) its addresses. */
static void
smtpd_dnsaccess_next_host(struct smtpd_dnsaccess_walk *w)
{
	while (w->hi < w->nhosts) {
		if (smtpd_dnsaccess_try_name(w, w->hosts[w->hi]))
			return;
		w->on_hosts = true;
		smtpd_dnsaccess_ask(w, SMTPD_DNSACCESS_ASK_HOST, w->hosts[w->hi]);
		return;
	}
	smtpd_dnsaccess_finish(w, SMTPD_DNSACCESS_NOTFOUND);
}

static void
smtpd_dnsaccess_add_host(struct smtpd_dnsaccess_walk *w, const char *name)
{
	if (w->nhosts < SMTPD_DNSACCESS_HOSTS_MAX)
		snprintf(w->hosts[w->nhosts++], RESOLVER_NAME_SIZE, "%s", name);
}

static int
smtpd_dnsaccess_mx_cmp(const void *a, const void *b)
{
	const struct resolver_mx_rr *x = a, *y = b;

	if (x->preference != y->preference)
		return x->preference < y->preference ? -1 : 1;
	return strcmp(x->exchange, y->exchange);
}

/* The MX hosts, most preferred first (Postfix takes the answer order;
 * sorting makes the choice among several matching hosts stable). */
static void
smtpd_dnsaccess_mx_hosts(struct smtpd_dnsaccess_walk *w, const struct resolver_result *res)
{
	struct resolver_mx_rr *mx;
	size_t i;

	mx = calloc(res->n_mx + 1, sizeof(*mx));
	if (mx == NULL)
		fatal("out of memory (mx access)");
	memcpy(mx, res->mx, res->n_mx * sizeof(*mx));
	qsort(mx, res->n_mx, sizeof(*mx), smtpd_dnsaccess_mx_cmp);
	for (i = 0; i < res->n_mx; i++)
		if (strcmp(mx[i].exchange, ".") != 0)	/* RFC 7505 null MX: no host */
			smtpd_dnsaccess_add_host(w, mx[i].exchange);
	free(mx);
}

static void
smtpd_dnsaccess_warn(const struct smtpd_dnsaccess_walk *w, const char *host,
    const struct resolver_result *res)
{
	if (host == NULL)
		log_warning("Unable to look up %s host for %s: %s", smtpd_dnsaccess_type_name(w->type),
		    res->name, res->text);
	else
		log_warning("Unable to look up %s host %s for %s: %s",
		    smtpd_dnsaccess_type_name(w->type), host, w->subject, res->text);
}

/* The answer to the first question: the MX, NS or address records. */
static void
smtpd_dnsaccess_servers(struct smtpd_dnsaccess_walk *w, const struct resolver_result *res)
{
	const char *parent;

	switch (w->type) {
	case SMTPD_DNSACCESS_A:
		if (res->status != RESOLVER_OK) {
			smtpd_dnsaccess_warn(w, NULL, res);
			smtpd_dnsaccess_finish(w, SMTPD_DNSACCESS_NOTFOUND);
		} else if (!smtpd_dnsaccess_try_addrs(w, res)) {
			smtpd_dnsaccess_finish(w, SMTPD_DNSACCESS_NOTFOUND);
		}
		return;
	case SMTPD_DNSACCESS_MX:
		/* Postfix: a name without MX records is its own MX host. */
		if (res->status == RESOLVER_OK)
			smtpd_dnsaccess_mx_hosts(w, res);
		else if (res->status == RESOLVER_NXDOMAIN || res->status == RESOLVER_NODATA)
			smtpd_dnsaccess_add_host(w, w->domain);
		break;
	case SMTPD_DNSACCESS_NS:
		/* Postfix: a name without NS records has its parent's. */
		parent = strchr(w->ask_name, '.');
		if (res->status == RESOLVER_NODATA && parent != NULL && parent[1] != '\0' &&
		    w->parents < SMTPD_DNSACCESS_PARENTS_MAX) {
			w->parents++;
			smtpd_dnsaccess_ask(w, SMTPD_DNSACCESS_ASK_NS, parent + 1);
			return;
		}
		if (res->status == RESOLVER_OK) {
			size_t i;

			for (i = 0; i < res->n_ns; i++)
				smtpd_dnsaccess_add_host(w, res->ns[i].name);
		}
		break;
	}
	if (res->status != RESOLVER_OK && w->nhosts == 0) {
		smtpd_dnsaccess_warn(w, NULL, res);
		smtpd_dnsaccess_finish(w, SMTPD_DNSACCESS_NOTFOUND);
		return;
	}
	smtpd_dnsaccess_next_host(w);
}

void
smtpd_dnsaccess_walk_start(struct smtpd_dnsaccess_walk *w, enum smtpd_dnsaccess_type type,
    struct map *map, const char *name, const char *subject)
{
	const char *domain = strrchr(name, '@');
	unsigned char addr[16];
	int family;

	memset(w, 0, sizeof(*w));
	w->type = type;
	w->map = map;
	buf_init(&w->value, MAP_VALUE_MAX);
	snprintf(w->subject, sizeof(w->subject), "%s", subject);
	domain = domain != NULL ? domain + 1 : name;
	if (domain[0] == '[') {
		/* Postfix: an address literal is its own MX host; it has no
		 * name servers. We treat it as its own A record too. */
		if (type == SMTPD_DNSACCESS_NS || !smtpd_dnsaccess_literal(domain, &family, addr) ||
		    !smtpd_dnsaccess_try_addr(w, family, addr))
			smtpd_dnsaccess_finish(w, SMTPD_DNSACCESS_NOTFOUND);
		return;
	}
	if (strlen(domain) > RESOLVER_NAME_MAX + 1 || resolver_name_normalize(domain, w->domain) < 0) {
		smtpd_dnsaccess_finish(w, SMTPD_DNSACCESS_NOTFOUND);
		return;
	}
	smtpd_dnsaccess_ask(w, type == SMTPD_DNSACCESS_MX ? SMTPD_DNSACCESS_ASK_MX :
	    type == SMTPD_DNSACCESS_NS ? SMTPD_DNSACCESS_ASK_NS : SMTPD_DNSACCESS_ASK_HOST, w->domain);
}

void
smtpd_dnsaccess_walk_answer(struct smtpd_dnsaccess_walk *w, const struct resolver_result *res)
{
	if (w->ask == SMTPD_DNSACCESS_ASK_NONE)
		panic("dnsaccess: an answer to no question");
	if (!w->on_hosts) {
		smtpd_dnsaccess_servers(w, res);
		return;
	}
	/* The addresses of hosts[hi]. */
	if (res->status != RESOLVER_OK)
		smtpd_dnsaccess_warn(w, w->hosts[w->hi], res);
	else if (smtpd_dnsaccess_try_addrs(w, res))
		return;
	w->hi++;
	smtpd_dnsaccess_next_host(w);
}

void
smtpd_dnsaccess_walk_free(struct smtpd_dnsaccess_walk *w)
{
	buf_free(&w->value);
}

/* ---- on the resolver ---- */

struct smtpd_dnsaccess_lookup {
	struct evloop *loop;
	struct resolver *r;
	struct resolver_query *q;
	struct ev_timer now;		/* a walk finished without asking */
	struct smtpd_dnsaccess_walk w;
	smtpd_dnsaccess_cb *cb;
	void *arg;
};

static void
smtpd_dnsaccess_end(struct smtpd_dnsaccess_lookup *l)
{
	smtpd_dnsaccess_cb *cb = l->cb;
	void *arg = l->arg;

	cb(arg, &l->w);
	smtpd_dnsaccess_walk_free(&l->w);
	free(l);
}

static void smtpd_dnsaccess_answer(const struct resolver_result *res, void *arg);

/* Ask the walk's question, or end. */
static void
smtpd_dnsaccess_go(struct smtpd_dnsaccess_lookup *l)
{
	switch (l->w.ask) {
	case SMTPD_DNSACCESS_ASK_MX:
		l->q = resolver_mx(l->r, l->w.ask_name, smtpd_dnsaccess_answer, l);
		return;
	case SMTPD_DNSACCESS_ASK_NS:
		l->q = resolver_ns(l->r, l->w.ask_name, smtpd_dnsaccess_answer, l);
		return;
	case SMTPD_DNSACCESS_ASK_HOST:
		l->q = resolver_host(l->r, l->w.ask_name, smtpd_dnsaccess_answer, l);
		return;
	case SMTPD_DNSACCESS_ASK_NONE:
		smtpd_dnsaccess_end(l);
		return;
	}
}

static void
smtpd_dnsaccess_answer(const struct resolver_result *res, void *arg)
{
	struct smtpd_dnsaccess_lookup *l = arg;

	l->q = NULL;
	smtpd_dnsaccess_walk_answer(&l->w, res);
	smtpd_dnsaccess_go(l);
}

static void
smtpd_dnsaccess_now(struct ev_timer *t)
{
	smtpd_dnsaccess_end(t->arg);
}

struct smtpd_dnsaccess_lookup *
smtpd_dnsaccess_start(struct evloop *loop, struct resolver *r, enum smtpd_dnsaccess_type type,
    struct map *map, const char *name, const char *subject, smtpd_dnsaccess_cb *cb, void *arg)
{
	struct smtpd_dnsaccess_lookup *l = calloc(1, sizeof(*l));

	if (l == NULL)
		fatal("out of memory (dns access)");
	l->loop = loop;
	l->r = r;
	l->cb = cb;
	l->arg = arg;
	evloop_timer_init(&l->now, smtpd_dnsaccess_now, l);
	smtpd_dnsaccess_walk_start(&l->w, type, map, name, subject);
	if (l->w.ask == SMTPD_DNSACCESS_ASK_NONE)
		evloop_timer_start(loop, &l->now, 0);	/* never call back from here */
	else
		smtpd_dnsaccess_go(l);
	return l;
}

void
smtpd_dnsaccess_cancel(struct smtpd_dnsaccess_lookup *l)
{
	if (l == NULL)
		return;
	evloop_timer_stop(l->loop, &l->now);
	resolver_cancel(l->q);
	smtpd_dnsaccess_walk_free(&l->w);
	free(l);
}
