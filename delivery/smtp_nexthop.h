/*
 * smtp_nexthop: where the smtp agent goes for one destination, read from
 * the next hop qmgr hands it (the part after "smtp:" of a transport, the
 * recipient's domain, or relayhost), with Postfix's syntax:
 *
 *   example.org            MX lookup of example.org, port smtp_port
 *   example.org:2525       MX lookup, port 2525
 *   [mail.example.org]     no MX lookup: the host's A/AAAA, smtp_port
 *   [mail.example.org]:587 the same on port 587 (also :submission)
 *   [192.0.2.7], [IPv6:2001:db8::7]:25, 192.0.2.7, [2001:db8::7]
 *                          an address: connect to it directly
 *
 * A port may be a number (1-65535) or one of the services smtp (25),
 * submission (587) and smtps (465), without asking NSS.
 *
 * The lmtp transport's next hops (Postfix's lmtp(8)) are read by
 * smtp_nexthop_parse_lmtp():
 *
 *   unix:/run/dovecot/lmtp  a unix-domain socket (a relative path is
 *                           relative to queue_directory: the caller's)
 *   inet:host:port, host:port, [host]:port, inet:192.0.2.7
 *                           TCP, port 24 when none is named; never an MX
 *                           lookup (Postfix's lmtp looks up none either)
 *
 * Pure: no I/O.
 */
#ifndef TERN_SMTP_NEXTHOP_H
#define TERN_SMTP_NEXTHOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A DNS name is at most 253 octets in text form (RFC 1035 2.3.4). */
#define SMTP_NEXTHOP_HOST_SIZE 256

struct smtp_nexthop {
	char host[SMTP_NEXTHOP_HOST_SIZE];	/* lower case, no brackets, no trailing dot */
	uint16_t port;
	bool mx;		/* look up MX records for host */
	bool literal;		/* host is an IPv4 or IPv6 address */
	bool unix_socket;	/* LMTP: connect to path, not to host */
	char path[108];		/* unix_socket: sizeof(sun_path) with its NUL */
};

/*
 * Parse s; default_port when it names none. 0, or -1 with a reason in
 * err ("bad port in next hop \"x:0\"", "malformed host name ...").
 */
int smtp_nexthop_parse(const char *s, uint16_t default_port, struct smtp_nexthop *out, char *err,
                       size_t errsz);

/* The lmtp forms above; default_port for inet without one. */
int smtp_nexthop_parse_lmtp(const char *s, uint16_t default_port, struct smtp_nexthop *out,
                            char *err, size_t errsz);

#endif
