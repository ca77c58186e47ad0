/*
 * smtpd_peer: the client's host names, looked up once per session before
 * the greeting, the way Postfix's smtpd_peer.c does:
 *
 *   reverse_client_name  the name the PTR record of the client address
 *                        gives, or "unknown";
 *   client_name          that name once one of its addresses (A for an
 *                        IPv4 client, AAAA for IPv6) is the client's
 *                        ("forward-confirmed"), else "unknown".
 *
 * Each comes with a status (Postfix's codes 2, 4, 5, 6) that
 * reject_unknown_client_hostname and reject_unknown_reverse_client_hostname
 * turn into their replies.
 *
 * Every DNS answer is untrusted: the resolver already checked the names it
 * hands out (255 octets, labels, host name syntax); we check again here,
 * refuse address-looking names, and look at most SMTPD_PEER_PTR_MAX PTR
 * records, then at one name's addresses. The whole lookup is bounded by a
 * deadline (smtpd_peername_lookup_timeout), so a DNS server that never
 * answers delays a greeting, never holds a session.
 *
 * The decisions are pure functions (tested with made-up resolver results);
 * smtpd_peer_lookup_*() run them on the event loop.
 *
 * Ownership: a struct smtpd_peer_lookup is owned by whoever started it
 * until its callback runs or it is cancelled; it borrows the loop and the
 * resolver, which must outlive it.
 */
#ifndef TERN_SMTPD_PEER_H
#define TERN_SMTPD_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resolver/resolver.h"

struct evloop;

/* What a client without a name is called, in logs and everywhere. */
#define SMTPD_PEER_UNKNOWN "unknown"
/*
 * PTR records looked at; the first valid name among them is the one.
 * Postfix takes the single name getnameinfo() gives (the first record);
 * a few more lets a bad first record not hide a good second one, and a
 * reply of many records costs no more than this.
 */
#define SMTPD_PEER_PTR_MAX 8
/* Room for a warning line about a name that does not resolve back. */
#define SMTPD_PEER_WARN_SIZE 640

/* Postfix's SMTPD_PEER_CODE_* values. */
enum smtpd_peer_status {
	SMTPD_PEER_OK = 2,	/* found (client_name: and confirmed) */
	SMTPD_PEER_TEMP = 4,	/* SERVFAIL, timeout: the DNS may say more later */
	SMTPD_PEER_PERM = 5,	/* no PTR, NXDOMAIN, a bad name, or no lookup at all */
	SMTPD_PEER_FORGED = 6,	/* client_name: the name does not resolve back */
};

struct smtpd_peer_names {
	char name[RESOLVER_NAME_SIZE];		/* client_name */
	char reverse_name[RESOLVER_NAME_SIZE];	/* reverse_client_name */
	enum smtpd_peer_status name_status;
	enum smtpd_peer_status reverse_name_status;
};

/* "OK", "TEMP", "FAIL", "FORGED" (Postfix's {client_resolve} words). */
const char *smtpd_peer_status_name(enum smtpd_peer_status st);

/* Both names "unknown", both statuses st. */
void smtpd_peer_names_unknown(struct smtpd_peer_names *n, enum smtpd_peer_status st);

/*
 * The loopback address itself (127.0.0.1, ::1, ::ffff:127.0.0.1): true
 * with both names "localhost", status OK, and no DNS question. Postfix
 * gets the same from /etc/hosts through the C library; we ask only the
 * DNS, and a local webmail or cron job connecting to 127.0.0.1 must not
 * wait for a DNS server that does not answer. Other 127/8 addresses are
 * looked up like any client (/etc/hosts names them per machine).
 */
bool smtpd_peer_localhost(int af, const unsigned char *addr, struct smtpd_peer_names *n);

/*
 * Is name (from a PTR record) usable as a client name? Normalised into out
 * (RESOLVER_NAME_SIZE bytes: lower case, no trailing dot). True for a host
 * name (resolver_name_normalize's syntax) that is not an address ("numeric
 * hostname", which would let a client pose as an address in access maps)
 * and not "unknown" itself (which would read as no name at all).
 */
bool smtpd_peer_name_valid(const char *name, char out[RESOLVER_NAME_SIZE]);

/*
 * The PTR answer: sets both names and statuses. True when the forward
 * lookup of n->reverse_name must follow (n->name is then "unknown" with
 * SMTPD_PEER_TEMP until it ends); false when the decision is final.
 */
bool smtpd_peer_ptr_decide(struct smtpd_peer_names *n, const struct resolver_result *res);

/*
 * The forward answer for n->reverse_name: n->name becomes reverse_name
 * when one address of family af (AF_INET or AF_INET6) equals addr (4 or
 * 16 bytes, network order), else "unknown" (TEMP on a temporary failure,
 * FORGED otherwise). warn gets Postfix's warning for a name that does not
 * resolve back ("hostname N does not resolve to address A[: why]"), or ""
 * when there is nothing to say.
 */
void smtpd_peer_forward_decide(struct smtpd_peer_names *n, int af, const unsigned char *addr,
                               const char *client_addr, const struct resolver_result *res,
                               char *warn, size_t warnsz);

/*
 * The deadline passed: in the PTR phase both names are unknown (TEMP), in
 * the forward phase (forward true) only client_name, with the warning of
 * a temporary failure in warn ("" in the PTR phase: Postfix says nothing
 * about a PTR it could not get).
 */
void smtpd_peer_timeout_decide(struct smtpd_peer_names *n, bool forward, const char *client_addr,
                               char *warn, size_t warnsz);

/* ---- on the event loop ---- */

struct smtpd_peer_lookup;

/* names is borrowed for the call; the lookup is gone when it is made. */
typedef void smtpd_peer_cb(void *arg, const struct smtpd_peer_names *names);

/*
 * Look up the names of the client at addr (af AF_INET or AF_INET6; addr 4
 * or 16 bytes; client_addr its text, copied), within timeout_ms. cb is
 * called once, later, from the loop (never from inside this call), unless
 * smtpd_peer_lookup_cancel() comes first. Never fails; another af is a
 * bug (panic).
 */
struct smtpd_peer_lookup *smtpd_peer_lookup_start(struct evloop *loop, struct resolver *r, int af,
                                                  const unsigned char *addr,
                                                  const char *client_addr, int64_t timeout_ms,
                                                  smtpd_peer_cb *cb, void *arg);
/* Stop it; cb is never called. NULL is a no-op. Not from inside cb. */
void smtpd_peer_lookup_cancel(struct smtpd_peer_lookup *l);

#endif
