/*
 * smtpd_dnsbl: DNS list queries and their replies (see the header).
 * Two steps on the resolver: A, and when listed, TXT under the same name.
 * A TXT failure only loses the reason, never the verdict.
 */
#include "smtpd/smtpd_dnsbl.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

int
smtpd_dnsbl_spec_parse(const char *arg, struct smtpd_dnsbl_spec *out)
{
	char zone[RESOLVER_NAME_SIZE];
	const char *eq = strchr(arg, '=');
	size_t zlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);

	memset(out, 0, sizeof(*out));
	if (zlen == 0 || zlen >= sizeof(zone))
		return -1;
	memcpy(zone, arg, zlen);
	zone[zlen] = '\0';
	if (resolver_name_normalize(zone, out->zone) < 0)
		return -1;
	if (eq != NULL) {
		if (!config_restrictions_ip_pattern_parse(eq + 1, strlen(eq + 1), &out->want))
			return -1;
		out->filter = true;
	}
	return 0;
}

int
smtpd_dnsbl_query_name(int family, const unsigned char *addr, const char *zone, char *out,
    size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	int i, n;

	if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
		family = AF_INET;
		addr += 12;
	}
	if (family == AF_INET) {
		n = snprintf(out, outsz, "%u.%u.%u.%u.%s", addr[3], addr[2], addr[1], addr[0], zone);
		return n < 0 || (size_t)n >= outsz || (size_t)n >= RESOLVER_NAME_SIZE ? -1 : 0;
	}
	if (family != AF_INET6)
		return -1;
	/* 32 nibbles and dots, then the zone. */
	if (outsz < 64 + strlen(zone) + 1 || 64 + strlen(zone) >= RESOLVER_NAME_SIZE)
		return -1;
	for (i = 15; i >= 0; i--) {
		out[o++] = hex[addr[i] & 0x0f];
		out[o++] = '.';
		out[o++] = hex[addr[i] >> 4];
		out[o++] = '.';
	}
	memcpy(out + o, zone, strlen(zone) + 1);
	return 0;
}

int
smtpd_dnsbl_domain_query_name(const char *what, const char *zone, char *out, size_t outsz)
{
	char norm[RESOLVER_NAME_SIZE];
	const char *domain = strrchr(what, '@'), *last;
	int n;

	domain = domain != NULL ? domain + 1 : what;
	if (domain[0] == '\0' || domain[0] == '[' || strlen(domain) > RESOLVER_NAME_MAX + 1 ||
	    resolver_name_normalize(domain, norm) < 0)
		return -1;
	/* Postfix: "Some Spamhaus RHSBL rejects lookups with 'No IP
	 * queries'": no lookup for a name ending in a numeric label. */
	last = strrchr(norm, '.');
	last = last != NULL ? last + 1 : norm;
	if (strspn(last, "0123456789") == strlen(last))
		return -1;
	n = snprintf(out, outsz, "%s.%s", norm, zone);
	return n < 0 || (size_t)n >= outsz || (size_t)n > RESOLVER_NAME_MAX ? -1 : 0;
}

bool
smtpd_dnsbl_listed(const struct smtpd_dnsbl_spec *spec, const struct resolver_addr *addrs,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (addrs[i].family != AF_INET)
			continue;
		if (!spec->filter || config_restrictions_ip_pattern_match(&spec->want, addrs[i].addr))
			return true;
	}
	return false;
}

void
smtpd_dnsbl_reason(const struct resolver_txt *txt, size_t n, char *reason, size_t reasonsz)
{
	static const char sep[] = " / ";
	size_t i, take, o = 0, cap = reasonsz - 1;

	if (cap > SMTPD_DNSBL_TXT_MAX)
		cap = SMTPD_DNSBL_TXT_MAX;
	for (i = 0; i < n && o < cap; i++) {
		if (i > 0) {
			/* Postfix adds the separator only while room is left. */
			if (o + strlen(sep) >= cap)
				break;
			memcpy(reason + o, sep, strlen(sep));
			o += strlen(sep);
		}
		take = txt[i].len < cap - o ? txt[i].len : cap - o;
		/* A TXT string may hold NUL: it must not end the reason early. */
		memcpy(reason + o, txt[i].data, take);
		for (; take > 0; take--, o++)
			if (reason[o] == '\0')
				reason[o] = '_';
	}
	reason[o] = '\0';
}

/* ---- the reply of a listing ---- */

/* Digits at p, at most max of them; their number. */
static size_t
smtpd_dnsbl_digits(const char *p, size_t max)
{
	size_t n = 0;

	while (n < max && p[n] >= '0' && p[n] <= '9')
		n++;
	return n;
}

int
smtpd_dnsbl_reply_split(const char *expanded, int *code, char dsn[16], const char **text)
{
	const char *p = expanded + 4;
	size_t a, b;

	if ((expanded[0] != '4' && expanded[0] != '5') || smtpd_dnsbl_digits(expanded + 1, 2) != 2 ||
	    expanded[3] != ' ')
		return -1;
	*code = (expanded[0] - '0') * 100 + (expanded[1] - '0') * 10 + (expanded[2] - '0');
	snprintf(dsn, 16, "4.7.1");
	/* RFC 3463: class "." subject (1-3 digits) "." detail (1-3 digits). */
	if ((p[0] == '2' || p[0] == '4' || p[0] == '5') && p[1] == '.' &&
	    (a = smtpd_dnsbl_digits(p + 2, 3)) > 0 && p[2 + a] == '.' &&
	    (b = smtpd_dnsbl_digits(p + 3 + a, 3)) > 0 &&
	    (p[3 + a + b] == '\0' || p[3 + a + b] == ' ')) {
		snprintf(dsn, 16, "%.*s", (int)(3 + a + b), p);
		p += 3 + a + b;
		p += strspn(p, " ");
	}
	dsn[0] = expanded[0];
	*text = p[0] != '\0' ? p : "Service unavailable";
	return 0;
}

struct smtpd_dnsbl_lookup {
	struct resolver *r;
	struct resolver_query *q;
	struct smtpd_dnsbl_spec spec;
	char query[RESOLVER_NAME_SIZE];
	smtpd_dnsbl_cb *cb;
	void *arg;
};

static void
smtpd_dnsbl_done(struct smtpd_dnsbl_lookup *l, enum smtpd_dnsbl_status st, const char *reason)
{
	char query[RESOLVER_NAME_SIZE];
	smtpd_dnsbl_cb *cb = l->cb;
	void *arg = l->arg;

	memcpy(query, l->query, sizeof(query));
	free(l);
	cb(arg, st, reason, query);
}

static void
smtpd_dnsbl_txt(const struct resolver_result *res, void *arg)
{
	char reason[SMTPD_DNSBL_TXT_MAX + 1] = "";

	if (res->status == RESOLVER_OK)
		smtpd_dnsbl_reason(res->txt, res->n_txt, reason, sizeof(reason));
	smtpd_dnsbl_done(arg, SMTPD_DNSBL_LISTED, reason);
}

static void
smtpd_dnsbl_a(const struct resolver_result *res, void *arg)
{
	struct smtpd_dnsbl_lookup *l = arg;

	switch (res->status) {
	case RESOLVER_OK:
		if (!smtpd_dnsbl_listed(&l->spec, res->addr, res->n_addr)) {
			smtpd_dnsbl_done(l, SMTPD_DNSBL_NOT_LISTED, "");
			return;
		}
		l->q = resolver_txt(l->r, l->query, smtpd_dnsbl_txt, l);
		return;
	case RESOLVER_TEMPFAIL:
		smtpd_dnsbl_done(l, SMTPD_DNSBL_TEMPFAIL, res->text);
		return;
	default:
		smtpd_dnsbl_done(l, SMTPD_DNSBL_NOT_LISTED, "");
		return;
	}
}

/* Start the A lookup of l->query (already filled). */
static struct smtpd_dnsbl_lookup *
smtpd_dnsbl_launch(struct smtpd_dnsbl_lookup *l, struct resolver *r,
    const struct smtpd_dnsbl_spec *spec, smtpd_dnsbl_cb *cb, void *arg)
{
	l->r = r;
	l->spec = *spec;
	l->cb = cb;
	l->arg = arg;
	/* resolver_host asks A and AAAA; a DNS list answers with A records. */
	l->q = resolver_host(r, l->query, smtpd_dnsbl_a, l);
	return l;
}

static struct smtpd_dnsbl_lookup *
smtpd_dnsbl_new(void)
{
	struct smtpd_dnsbl_lookup *l = calloc(1, sizeof(*l));

	if (l == NULL)
		fatal("out of memory (dnsbl)");
	return l;
}

struct smtpd_dnsbl_lookup *
smtpd_dnsbl_start(struct resolver *r, const struct smtpd_dnsbl_spec *spec, int family,
    const unsigned char *addr, smtpd_dnsbl_cb *cb, void *arg)
{
	struct smtpd_dnsbl_lookup *l = smtpd_dnsbl_new();

	if (smtpd_dnsbl_query_name(family, addr, spec->zone, l->query, sizeof(l->query)) < 0) {
		free(l);
		return NULL;
	}
	return smtpd_dnsbl_launch(l, r, spec, cb, arg);
}

struct smtpd_dnsbl_lookup *
smtpd_dnsbl_start_domain(struct resolver *r, const struct smtpd_dnsbl_spec *spec,
    const char *what, smtpd_dnsbl_cb *cb, void *arg)
{
	struct smtpd_dnsbl_lookup *l = smtpd_dnsbl_new();

	if (smtpd_dnsbl_domain_query_name(what, spec->zone, l->query, sizeof(l->query)) < 0) {
		free(l);
		return NULL;
	}
	return smtpd_dnsbl_launch(l, r, spec, cb, arg);
}

void
smtpd_dnsbl_cancel(struct smtpd_dnsbl_lookup *l)
{
	if (l == NULL)
		return;
	resolver_cancel(l->q);
	free(l);
}
