/*
 * smtpd_dnsbl: reject_rbl_client ZONE[=d.d.d.d]. The client's address,
 * reversed (IPv4 octets, IPv6 nibbles), under the zone is looked up as an
 * A record; an answer (or, with =d.d.d.d, that very address) means
 * "listed", and the zone's TXT records under the same name become the
 * reason in the reply, as Postfix's default_rbl_reply has it.
 *
 * The name building, the listing test and the reply text are pure
 * functions; smtpd_dnsbl_start() runs the two lookups on the resolver
 * (never blocking the loop). Errors are results: a DNS failure other than
 * "no such name / no record" is SMTPD_DNSBL_TEMPFAIL with the resolver's
 * text. Ownership: a lookup is owned by this module until its callback
 * returned or it was cancelled.
 */
#ifndef TERN_SMTPD_DNSBL_H
#define TERN_SMTPD_DNSBL_H

#include <stdbool.h>
#include <stddef.h>

#include "resolver/resolver.h"

/* Longest reason kept from TXT records (Postfix's RBL_TXT_LIMIT). */
#define SMTPD_DNSBL_TXT_MAX 500

struct smtpd_dnsbl_spec {
	char zone[RESOLVER_NAME_SIZE];	/* lower case, no trailing dot */
	bool filter;			/* zone=d.d.d.d was given */
	unsigned char want[4];		/* that address */
};

/* "zone" or "zone=d.d.d.d"; 0, or -1 when malformed. */
int smtpd_dnsbl_spec_parse(const char *arg, struct smtpd_dnsbl_spec *out);

/*
 * The query name for addr (AF_INET: 4 bytes, AF_INET6: 16) under zone:
 * "4.3.2.1.zone" for 1.2.3.4; 32 nibbles, lowest first, for IPv6 (RFC
 * 5782 section 2.4). A v4-mapped IPv6 address is queried as IPv4. 0, or
 * -1 when it does not fit in RESOLVER_NAME_SIZE or the family is unknown.
 */
int smtpd_dnsbl_query_name(int family, const unsigned char *addr, const char *zone,
                           char *out, size_t outsz);

/* Does this A answer list the client under spec? (RFC 5782 section 2.1:
 * any 127.0.0.0/8 answer; with a filter, exactly that address.) */
bool smtpd_dnsbl_listed(const struct smtpd_dnsbl_spec *spec, const struct resolver_addr *addrs,
                        size_t n);

/*
 * Join TXT records into reason ("; " between them), replacing bytes that
 * are not printable ASCII by '?' (the reason goes into an SMTP reply and
 * a log line), and cut at SMTPD_DNSBL_TXT_MAX. reasonsz > that maximum.
 */
void smtpd_dnsbl_reason(const struct resolver_txt *txt, size_t n, char *reason, size_t reasonsz);

enum smtpd_dnsbl_status {
	SMTPD_DNSBL_NOT_LISTED = 0,
	SMTPD_DNSBL_LISTED,
	SMTPD_DNSBL_TEMPFAIL,
};

/* reason: the TXT text when LISTED ("" without TXT), the resolver's
 * error text when TEMPFAIL; query: the name asked. Borrowed for the call. */
typedef void smtpd_dnsbl_cb(void *arg, enum smtpd_dnsbl_status st, const char *reason,
                            const char *query);

struct smtpd_dnsbl_lookup;

/* Start a lookup; NULL (and no callback) when the address has no DNSBL
 * form (not IPv4/IPv6): the caller treats the client as not listed. */
struct smtpd_dnsbl_lookup *smtpd_dnsbl_start(struct resolver *r, const struct smtpd_dnsbl_spec *spec,
                                             int family, const unsigned char *addr,
                                             smtpd_dnsbl_cb *cb, void *arg);
void smtpd_dnsbl_cancel(struct smtpd_dnsbl_lookup *l);

#endif
