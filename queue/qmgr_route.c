/*
 * qmgr_route: address class and next hop of a recipient (qmgr_route.h).
 */
#include "queue/qmgr_route.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The domain of addr: after the last '@' (a quoted local part may hold
 * an '@'), "" when there is none. */
static const char *
addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

static bool
domain_listed(const struct config *cfg, enum config_param p, const char *domain)
{
	const struct config_list *l = config_list(cfg, p);
	size_t n = strlen(domain);

	/* A trailing dot is the same domain (example.org. = example.org). */
	if (n > 0 && domain[n - 1] == '.')
		n--;
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->items[i]) == n && strncasecmp(l->items[i], domain, n) == 0)
			return true;
	return false;
}

static bool
transport_name_ok(const char *name, size_t n)
{
	if (n == 0 || n >= ROUTE_TRANSPORT_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!(islower(c) || isdigit(c) || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int
qmgr_route_split(const char *value, const char *default_nexthop, struct qmgr_route *out,
                 char *err, size_t errsz)
{
	const char *colon = strchr(value, ':');
	size_t n = colon != NULL ? (size_t)(colon - value) : strlen(value);
	const char *hop = colon != NULL && colon[1] != '\0' ? colon + 1 : default_nexthop;

	if (!transport_name_ok(value, n)) {
		snprintf(err, errsz, "malformed transport \"%s\"", value);
		return -1;
	}
	if (strlen(hop) >= ROUTE_NEXTHOP_MAX) {
		snprintf(err, errsz, "next hop of \"%.40s...\" too long", value);
		return -1;
	}
	memcpy(out->transport, value, n);
	out->transport[n] = '\0';
	snprintf(out->nexthop, sizeof(out->nexthop), "%s", hop);
	return 0;
}

/* addr is double_bounce_sender@myhostname (Postfix's
 * mail_addr_double_bounce()), compared without regard to case. */
static bool
is_double_bounce(const struct config *cfg, const char *addr)
{
	const char *local = config_str(cfg, P_DOUBLE_BOUNCE_SENDER);
	const char *host = config_str(cfg, P_MYHOSTNAME);
	size_t nl = strlen(local);

	if (strchr(local, '@') != NULL)
		return strcasecmp(addr, local) == 0;
	return strncasecmp(addr, local, nl) == 0 && addr[nl] == '@' &&
	       strcasecmp(addr + nl + 1, host) == 0;
}

/* The class of lower (a lower-cased domain, "" for none): from the
 * resolver when there is one, else the literal lists. 0, or -2 with err
 * set when a domain list's table cannot be read. */
static int
route_class_of(const struct config *cfg, struct addr_resolver *classes, const char *lower,
               enum addr_class *out, char *err, size_t errsz)
{
	if (classes != NULL)
		return addr_resolver_class(classes, lower, out, err, errsz) < 0 ? -2 : 0;
	if (lower[0] == '\0' || domain_listed(cfg, P_MYDESTINATION, lower))
		*out = ADDR_CLASS_LOCAL;
	else if (domain_listed(cfg, P_VIRTUAL_MAILBOX_DOMAINS, lower))
		*out = ADDR_CLASS_VIRTUAL_MAILBOX;
	else if (domain_listed(cfg, P_RELAY_DOMAINS, lower))
		*out = ADDR_CLASS_RELAY;
	else
		*out = ADDR_CLASS_DEFAULT;
	return 0;
}

/* The class's route (without transport_maps). */
static int
route_class(const struct config *cfg, struct addr_resolver *classes, const char *lower,
            struct qmgr_route *out, char *err, size_t errsz)
{
	const char *relayhost = config_str(cfg, P_RELAYHOST);
	enum addr_class k;
	int rc;

	if ((rc = route_class_of(cfg, classes, lower, &k, err, errsz)) < 0)
		return rc;
	switch (k) {
	case ADDR_CLASS_LOCAL:
		out->klass = "local";
		return qmgr_route_split(config_str(cfg, P_LOCAL_TRANSPORT),
		                        lower[0] ? lower : config_str(cfg, P_MYHOSTNAME), out, err, errsz);
	case ADDR_CLASS_VIRTUAL_ALIAS:
		/* No alias matched when the message was queued (a notice
		 * qmgr wrote, or the aliases changed): trivial-rewrite's
		 * answer for such an address. */
		out->klass = "virtual";
		return qmgr_route_split("error:5.1.1 User unknown in virtual alias table", "", out,
		                        err, errsz);
	case ADDR_CLASS_VIRTUAL_MAILBOX:
		out->klass = "virtual";
		return qmgr_route_split(config_str(cfg, P_VIRTUAL_TRANSPORT), lower, out, err, errsz);
	case ADDR_CLASS_RELAY:
	case ADDR_CLASS_DEFAULT:
		break;
	}
	out->klass = k == ADDR_CLASS_RELAY ? "relay" : "default";
	return qmgr_route_split(config_str(cfg, P_DEFAULT_TRANSPORT),
	                        relayhost[0] != '\0' ? relayhost : lower, out, err, errsz);
}

/* transport_maps' value over the class's route: "transport:nexthop",
 * either part may be empty (keep the class's). */
static int
route_override(const char *value, struct qmgr_route *out, char *err, size_t errsz)
{
	const char *colon = strchr(value, ':');
	size_t tlen = colon != NULL ? (size_t)(colon - value) : strlen(value);
	const char *hop = colon != NULL ? colon + 1 : "";
	char buf[ROUTE_TRANSPORT_MAX + ROUTE_NEXTHOP_MAX + 2];
	struct qmgr_route tmp;

	if (tlen >= ROUTE_TRANSPORT_MAX || strlen(hop) >= ROUTE_NEXTHOP_MAX) {
		snprintf(err, errsz, "transport_maps value \"%.60s\" too long", value);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%.*s:%s", (int)(tlen > 0 ? tlen : strlen(out->transport)),
	         tlen > 0 ? value : out->transport, hop[0] != '\0' ? hop : out->nexthop);
	tmp.klass = out->klass;
	if (qmgr_route_split(buf, "", &tmp, err, errsz) < 0)
		return -1;
	*out = tmp;
	return 0;
}

int
qmgr_route(const struct config *cfg, struct addr_resolver *classes, struct map_list *transport,
           const char *addr, struct qmgr_route *out, char *err, size_t errsz)
{
	const char *domain = addr_domain(addr);
	char lower[ROUTE_NEXTHOP_MAX];
	size_t n = strlen(domain);
	int rc0;

	if (n >= sizeof(lower)) {
		snprintf(err, errsz, "domain too long");
		return -1;
	}
	if (is_double_bounce(cfg, addr)) {
		/* Postfix's qmgr discards mail to the double-bounce address
		 * here, so a failed postmaster notice never loops. */
		out->klass = "local";
		return qmgr_route_split("discard:undeliverable postmaster notification discarded",
		                        "", out, err, errsz);
	}
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char)tolower((unsigned char)domain[i]);
	if (n > 0 && lower[n - 1] == '.')
		lower[n - 1] = '\0';
	if ((rc0 = route_class(cfg, classes, lower, out, err, errsz)) < 0)
		return rc0;
	if (transport != NULL && map_list_size(transport) > 0) {
		struct buf value;
		struct map_match match;
		enum map_result r;
		int rc = 0;

		buf_init(&value, MAP_VALUE_MAX);
		r = map_list_lookup_address(transport, addr, config_str(cfg, P_RECIPIENT_DELIMITER),
		                            MAP_ADDR_DOMAINS | MAP_ADDR_WILDCARD, &value, &match, err,
		                            errsz);
		if (r == MAP_ERROR)
			rc = -2;
		else if (r == MAP_FOUND)
			rc = route_override(buf_cstr(&value), out, err, errsz);
		buf_free(&value);
		return rc;
	}
	return 0;
}

int
qmgr_route_rcpt(const struct config *cfg, struct addr_resolver *classes,
                struct map_list *transport, const struct envelope_rcpt *r,
                struct qmgr_route *out, char *err, size_t errsz)
{
	if (r->target != NULL) {
		out->klass = "local";
		return qmgr_route_split("local", config_str(cfg, P_MYHOSTNAME), out, err, errsz);
	}
	return qmgr_route(cfg, classes, transport, r->addr, out, err, errsz);
}

int
qmgr_route_filter(const char *filter, struct qmgr_route *out, char *err, size_t errsz)
{
	out->klass = "filter";
	if (qmgr_route_split(filter, "", out, err, errsz) < 0)
		return -1;
	if (out->nexthop[0] == '\0') {
		snprintf(err, errsz, "content filter \"%.60s\" without a next hop", filter);
		return -1;
	}
	return 0;
}
