/*
 * smtp_tls_policy: the pure parts of per-destination TLS policy, with
 * Postfix's syntax and meanings (postconf(5) smtp_tls_policy_maps,
 * smtp_tls_mandatory_protocols; TLS_README "DANE"):
 *
 *   - a policy map value: "LEVEL [name=value ...]", e.g. "verify
 *     match=hostname:nexthop ciphers=high protocols=>=TLSv1.3";
 *   - the keys a next hop is looked up under, in order;
 *   - a protocols list ("!SSLv3, !TLSv1", ">=TLSv1.2", "TLSv1.3");
 *   - whether a TLSA record can be used for SMTP (RFC 7672 section 3.1.3:
 *     DANE-TA(2) and DANE-EE(3) only, a known selector and matching type,
 *     a digest of the right length, DER that parses).
 *
 * No I/O, no logging: errors and warnings are returned as text for the
 * caller to log with its context. Nothing is allocated except the copies
 * smtp_tls_dane_add() makes, which smtp_tls_dane_free() frees.
 */
#ifndef TERN_SMTP_TLS_POLICY_H
#define TERN_SMTP_TLS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery/smtp_tls.h"

/* Most match= patterns kept for one policy (Postfix has no limit; a
 * longer list is a configuration error here). */
#define SMTP_TLS_MATCH_MAX 8
/* A name in a match pattern, as text (RFC 1035: 253 characters). */
#define SMTP_TLS_NAME_SIZE 256
/* Longest policy map value parsed (a longer one is an error). */
#define SMTP_TLS_POLICY_VALUE_MAX 2048

/* match= patterns of the verify level (Postfix's smtp_tls_verify_cert_match). */
enum smtp_tls_match_kind {
	SMTP_TLS_MATCH_HOSTNAME,	/* the MX host's name (or the [host] given) */
	SMTP_TLS_MATCH_NEXTHOP,		/* the next-hop domain */
	SMTP_TLS_MATCH_DOT_NEXTHOP,	/* any subdomain of the next-hop domain */
	SMTP_TLS_MATCH_NAME,		/* a name as written; ".example.com" is
					 * any subdomain of example.com */
};

struct smtp_tls_match {
	enum smtp_tls_match_kind kind;
	char name[SMTP_TLS_NAME_SIZE];	/* SMTP_TLS_MATCH_NAME only, lower case */
};

/* ciphers=: Postfix's grades. tern uses OpenSSL's default list at security
 * level 2 for "medium" (never weaker); "high" keeps the HIGH ciphers. */
enum smtp_tls_grade {
	SMTP_TLS_GRADE_DEFAULT = 0,	/* not given: medium */
	SMTP_TLS_GRADE_MEDIUM,
	SMTP_TLS_GRADE_HIGH,
};

/* A protocol range: OpenSSL version numbers (TLS1_2_VERSION ...). */
struct smtp_tls_protocols {
	int min, max;
};

/* One destination's policy (a map entry, or the main.cf defaults). */
struct smtp_tls_policy {
	enum smtp_tls_level level;
	bool have_protocols;		/* protocols= given */
	struct smtp_tls_protocols protocols;
	enum smtp_tls_grade grade;
	size_t n_match;			/* 0: the default, hostname */
	struct smtp_tls_match match[SMTP_TLS_MATCH_MAX];
};

/*
 * Parse a protocols list: tokens separated by white space, ',' or ':';
 * "NAME" includes a protocol (when any is included, only those are
 * allowed), "!NAME" excludes one, ">=NAME" and "<=NAME" bound the range
 * (Postfix 3.6). NAME: SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3
 * (any case). The result is clipped to what tern ever speaks, TLSv1.2 and
 * TLSv1.3 (RFC 8996), so "!SSLv2, !SSLv3" and ">=TLSv1" mean 1.2..1.3.
 * "" is everything. 0, or -1 with err: an unknown name, or nothing left.
 */
int smtp_tls_protocols_parse(const char *s, struct smtp_tls_protocols *out, char *err,
                             size_t errsz);

/*
 * Parse a policy map value. Tokens are separated by white space or ','
 * (Postfix's CHARS_COMMA_SP): the level ("none", "may", "encrypt",
 * "verify", "dane", "dane-only"), then name=value attributes: ciphers=
 * (once; "high" or "medium"), protocols= (once), match= (verify only;
 * repeatable; patterns separated by ':'). Anything else is an error, in
 * Postfix's words where it has them: invalid security level "x", invalid
 * attribute name: "x", malformed attribute/value pair "x", attribute
 * "match" invalid at security level "may", attribute "ciphers" is
 * specified multiple times. 0, or -1 with err.
 */
int smtp_tls_policy_parse(const char *value, struct smtp_tls_policy *out, char *err,
                          size_t errsz);

/*
 * The keys of smtp_tls_policy_maps for the next hop dest as written
 * (without the transport): prev NULL gives the first, dest itself; each
 * next call with the previous key gives the next, or NULL after the last.
 * A plain domain is followed by its parents with a leading dot
 * ("a.example.com", ".example.com", ".com"); anything else
 * ("[mx.example.com]:587", "example.com:2525", "[192.0.2.1]") is looked
 * up once, as Postfix's tls_policy_lookup() does. The keys point into dest.
 */
const char *smtp_tls_policy_next_key(const char *dest, const char *prev);

/*
 * May this TLSA record be used for SMTP? RFC 7672 section 3.1.3: only
 * DANE-TA(2) and DANE-EE(3); selectors Cert(0) and SPKI(1); matching
 * types Full(0) (DER that parses as a certificate or a public key),
 * SHA2-256(1) (32 octets) and SHA2-512(2) (64 octets). true, or false
 * with why in Postfix's words ("unsupported certificate usage 1",
 * "malformed sha256 digest, length 31", "truncated length 2").
 * len_ok false: the RDATA had fewer than 3 octets (rdlen).
 */
bool smtp_tls_tlsa_usable(bool len_ok, size_t rdlen, uint8_t usage, uint8_t selector,
                          uint8_t mtype, const unsigned char *data, size_t len, char *why,
                          size_t whysz);

/* Add a copy of a usable record; false when SMTP_TLS_TLSA_MAX are held. */
bool smtp_tls_dane_add(struct smtp_tls_dane *d, uint8_t usage, uint8_t selector, uint8_t mtype,
                       const unsigned char *data, size_t len);
/* Free the copies; d is empty after. */
void smtp_tls_dane_free(struct smtp_tls_dane *d);

#endif
