/*
 * qmgr_route: which transport and next hop a recipient goes to, the way
 * Postfix's trivial-rewrite resolves it (address classes):
 *
 *   domain in mydestination (or no domain)  -> local_transport
 *   domain in virtual_mailbox_domains       -> virtual_transport
 *   otherwise, relayhost set                -> default_transport, next hop relayhost
 *   otherwise                               -> default_transport, next hop the domain
 *
 * A transport value may carry its own next hop, `transport:nexthop`
 * (`smtp:[10.0.0.5]:25`, `lmtp:unix:/run/dovecot/lmtp`, `error:5.1.1 no
 * such user`), which then wins over the domain. Domains compare
 * case-insensitively; next hops made from a domain are lower-cased so
 * Example.ORG and example.org share one destination.
 *
 * transport_maps (Postfix's transport(5)) override the transport and next
 * hop of every class: looked up as user+ext@domain, user@domain, domain,
 * .parent domains, then "*". A value "transport:nexthop"; an empty
 * transport keeps the class's, an empty next hop keeps the class's
 * (the domain, or relayhost). Mail to double_bounce_sender@myhostname is
 * discarded (Postfix's qmgr does the same).
 *
 * Aliases (virtual_alias_maps, alias_maps) are expanded before a message
 * enters the queue (smtpd, config/addr_resolve.h): what qmgr routes is
 * already final. The classes come from the same resolver smtpd uses
 * (addr_resolver_class(): type:table items of the domain lists included),
 * so both agree; without one (unit tests) the lists are compared as
 * literal names. An address left in a virtual alias domain (no alias
 * matched) goes to error:5.1.1, as Postfix's trivial-rewrite sends it.
 *
 * No I/O but the map lookups; the configuration is read, never kept.
 */
#ifndef TERN_QMGR_ROUTE_H
#define TERN_QMGR_ROUTE_H

#include <stddef.h>

#include "config/config.h"
#include "config/addr_resolve.h"
#include "config/map.h"
#include "queue/envelope.h"

#define ROUTE_TRANSPORT_MAX 64
#define ROUTE_NEXTHOP_MAX 512

struct qmgr_route {
	char transport[ROUTE_TRANSPORT_MAX];
	char nexthop[ROUTE_NEXTHOP_MAX];
	const char *klass;	/* "local", "virtual", "relay", "default": for logs */
};

/*
 * Route addr (a recipient as in the envelope, no < >); classes may be NULL
 * (literal domain lists), transport may be NULL (no transport_maps). 0; -1 with a reason in err when a transport
 * value is malformed (empty name, a name with characters other than
 * [a-z0-9_-], a next hop too long); -2 when a map or a domain list's table
 * cannot be read (a temporary failure: the caller defers).
 */
int qmgr_route(const struct config *cfg, struct addr_resolver *classes, struct map_list *transport,
               const char *addr, struct qmgr_route *out, char *err, size_t errsz);
/*
 * A recipient of the envelope: an alias's |command or /file target
 * (envelope_rcpt's target) goes to the local agent, transport "local" and
 * next hop myhostname, whatever its address's class, local_transport or
 * transport_maps say: only local(8) runs those. Otherwise qmgr_route().
 */
int qmgr_route_rcpt(const struct config *cfg, struct addr_resolver *classes,
                    struct map_list *transport, const struct envelope_rcpt *r,
                    struct qmgr_route *out, char *err, size_t errsz);

/*
 * The route of every recipient of a message that carries a content filter
 * (the envelope's filter, "transport:nexthop", from content_filter or a
 * FILTER action): that transport and next hop, whatever the address's
 * class, transport_maps or an alias target say, so that the whole message
 * goes to the filter as one delivery (Postfix's qmgr: the content filter
 * overrides the address resolver). klass "filter". -1 with a reason when
 * the value is malformed or has no next hop.
 */
int qmgr_route_filter(const char *filter, struct qmgr_route *out, char *err, size_t errsz);

/* Split "transport[:nexthop]" into its parts; default_nexthop when none. */
int qmgr_route_split(const char *value, const char *default_nexthop, struct qmgr_route *out,
                     char *err, size_t errsz);

#endif
