/*
 * smtpd_dnsbl: DNSBL queries for reject_rbl_client (see the header).
 * Two steps on the resolver: A, and when listed, TXT under the same name.
 * A TXT failure only loses the reason, never the verdict.
 */
#include "smtpd/smtpd_dnsbl.h"

#include <arpa/inet.h>
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
		if (inet_pton(AF_INET, eq + 1, out->want) != 1)
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

bool
smtpd_dnsbl_listed(const struct smtpd_dnsbl_spec *spec, const struct resolver_addr *addrs,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (addrs[i].family != AF_INET)
			continue;
		if (!spec->filter || memcmp(addrs[i].addr, spec->want, 4) == 0)
			return true;
	}
	return false;
}

void
smtpd_dnsbl_reason(const struct resolver_txt *txt, size_t n, char *reason, size_t reasonsz)
{
	size_t i, j, o = 0, cap = reasonsz - 1;

	if (cap > SMTPD_DNSBL_TXT_MAX)
		cap = SMTPD_DNSBL_TXT_MAX;
	for (i = 0; i < n && o < cap; i++) {
		if (i > 0) {
			if (o + 2 > cap)
				break;
			reason[o++] = ';';
			reason[o++] = ' ';
		}
		for (j = 0; j < txt[i].len && o < cap; j++) {
			unsigned char ch = (unsigned char)txt[i].data[j];

			reason[o++] = ch >= 32 && ch < 127 ? (char)ch : '?';
		}
	}
	reason[o] = '\0';
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

struct smtpd_dnsbl_lookup *
smtpd_dnsbl_start(struct resolver *r, const struct smtpd_dnsbl_spec *spec, int family,
    const unsigned char *addr, smtpd_dnsbl_cb *cb, void *arg)
{
	struct smtpd_dnsbl_lookup *l;

	l = calloc(1, sizeof(*l));
	if (l == NULL)
		fatal("out of memory (dnsbl)");
	if (smtpd_dnsbl_query_name(family, addr, spec->zone, l->query, sizeof(l->query)) < 0) {
		free(l);
		return NULL;
	}
	l->r = r;
	l->spec = *spec;
	l->cb = cb;
	l->arg = arg;
	/* resolver_host asks A and AAAA; a DNSBL answers with A records. */
	l->q = resolver_host(r, l->query, smtpd_dnsbl_a, l);
	return l;
}

void
smtpd_dnsbl_cancel(struct smtpd_dnsbl_lookup *l)
{
	if (l == NULL)
		return;
	resolver_cancel(l->q);
	free(l);
}
