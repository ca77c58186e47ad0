/*
 * smtpd_dnsbl: DNS list lookups for reject_rbl_client, reject_rhsbl_*,
 * permit_dnswl_client and permit_rhswl_client, and the reply code and
 * status of a listing (the default_rbl_reply template itself is expanded
 * by config/config_rbl_reply.c, which also checks it at load time).
 *
 * A list is asked an A record: for an address, its reversed form under
 * the zone (IPv4 octets, IPv6 nibbles: "4.3.2.1.ZONE"); for a name (RHS
 * lists), "NAME.ZONE". An answer (or, with ZONE=PATTERN, an answer the
 * pattern matches) means "listed", and the TXT records under the same
 * name become the reason.
 *
 * The name building, the listing test, the reason and the reply split
 * are pure functions; smtpd_dnsbl_start() runs the two lookups on the
 * resolver (never blocking the loop). Errors are results: a DNS failure
 * other than "no such name / no record" is SMTPD_DNSBL_TEMPFAIL with the
 * resolver's text. Ownership: a lookup is owned by this module until its
 * callback returned or it was cancelled.
 */
#ifndef TERN_SMTPD_DNSBL_H
#define TERN_SMTPD_DNSBL_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config_restrictions.h"
#include "resolver/resolver.h"

/* Longest reason kept from TXT records (Postfix's RBL_TXT_LIMIT). */
#define SMTPD_DNSBL_TXT_MAX 500

struct smtpd_dnsbl_spec {
	char zone[RESOLVER_NAME_SIZE];	/* lower case, no trailing dot */
	bool filter;			/* ZONE=PATTERN was given */
	struct config_restrictions_ip_pattern want;
};

/* "zone" or "zone=PATTERN"; 0, or -1 when malformed. */
int smtpd_dnsbl_spec_parse(const char *arg, struct smtpd_dnsbl_spec *out);

/*
 * The query name for addr (AF_INET: 4 bytes, AF_INET6: 16) under zone:
 * "4.3.2.1.zone" for 1.2.3.4; 32 nibbles, lowest first, for IPv6 (RFC
 * 5782 section 2.4). A v4-mapped IPv6 address is queried as IPv4. 0, or
 * -1 when it does not fit in RESOLVER_NAME_SIZE or the family is unknown.
 */
int smtpd_dnsbl_query_name(int family, const unsigned char *addr, const char *zone,
                           char *out, size_t outsz);

/*
 * The query name of an RHS list for what (a host name, or an address
 * whose domain is used): "domain.zone". -1 when Postfix skips the lookup:
 * an address literal, an empty or invalid host name, a name whose last
 * label is all digits (some lists refuse "IP queries"), or too long.
 */
int smtpd_dnsbl_domain_query_name(const char *what, const char *zone, char *out, size_t outsz);

/* Does this A answer list the name under spec? (RFC 5782 section 2.1:
 * any answer; with a pattern, one the pattern matches.) */
bool smtpd_dnsbl_listed(const struct smtpd_dnsbl_spec *spec, const struct resolver_addr *addrs,
                        size_t n);

/*
 * Join TXT records into reason (" / " between them, as Postfix), cut at
 * SMTPD_DNSBL_TXT_MAX. Bytes that may not go into a reply or a log line
 * become '_' later, in config_rbl_reply_expand(). reasonsz > that maximum.
 */
void smtpd_dnsbl_reason(const struct resolver_txt *txt, size_t n, char *reason, size_t reasonsz);

/*
 * The reply of a listing from the expanded template, as Postfix's
 * rbl_reject_reply: it must start with a 4xx or 5xx code and a space
 * (else -1: the caller logs "rbl response code configuration error"
 * and answers 450 4.7.1 Service unavailable); an enhanced status code
 * after it is used, else 4.7.1; its class is forced to the code's.
 * text gets the rest ("Service unavailable" when empty).
 */
int smtpd_dnsbl_reply_split(const char *expanded, int *code, char dsn[16], const char **text);

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

/* Start a lookup of an address; NULL (and no callback) when the address
 * has no DNSBL form (not IPv4/IPv6): the caller treats it as not listed. */
struct smtpd_dnsbl_lookup *smtpd_dnsbl_start(struct resolver *r, const struct smtpd_dnsbl_spec *spec,
                                             int family, const unsigned char *addr,
                                             smtpd_dnsbl_cb *cb, void *arg);
/* The same for a name (RHS lists); NULL when Postfix skips the name
 * (see smtpd_dnsbl_domain_query_name). */
struct smtpd_dnsbl_lookup *smtpd_dnsbl_start_domain(struct resolver *r,
                                                    const struct smtpd_dnsbl_spec *spec,
                                                    const char *what, smtpd_dnsbl_cb *cb,
                                                    void *arg);
void smtpd_dnsbl_cancel(struct smtpd_dnsbl_lookup *l);

#endif
