/*
 * config_restrictions: the vocabulary of Postfix restriction lists
 * (smtpd_*_restrictions), in one table. config/ validates lists against
 * it at load time; smtpd evaluates from the same table, so a word is
 * known to both or to neither.
 *
 * A list is a struct config_list of words as the administrator wrote
 * them (not case-folded, aliases not resolved); an entry that takes an
 * argument consumes the next item. Word matching is case-insensitive,
 * as in Postfix.
 */
#ifndef TERN_CONFIG_RESTRICTIONS_H
#define TERN_CONFIG_RESTRICTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "config/config.h"

/* What a restriction does; aliases share the code of their canonical word. */
enum config_restrictions_code {
	CONFIG_RESTRICTIONS_PERMIT,
	CONFIG_RESTRICTIONS_REJECT,
	CONFIG_RESTRICTIONS_DEFER,
	CONFIG_RESTRICTIONS_DEFER_IF_PERMIT,
	CONFIG_RESTRICTIONS_DEFER_IF_REJECT,
	CONFIG_RESTRICTIONS_DUNNO,
	CONFIG_RESTRICTIONS_PERMIT_MYNETWORKS,
	CONFIG_RESTRICTIONS_PERMIT_SASL_AUTHENTICATED,
	CONFIG_RESTRICTIONS_PERMIT_AUTH_DESTINATION,
	CONFIG_RESTRICTIONS_REJECT_UNAUTH_DESTINATION,
	CONFIG_RESTRICTIONS_DEFER_UNAUTH_DESTINATION,
	CONFIG_RESTRICTIONS_REJECT_UNAUTH_PIPELINING,
	CONFIG_RESTRICTIONS_REJECT_NON_FQDN_HELO_HOSTNAME,
	CONFIG_RESTRICTIONS_REJECT_INVALID_HELO_HOSTNAME,
	CONFIG_RESTRICTIONS_REJECT_UNKNOWN_HELO_HOSTNAME,
	CONFIG_RESTRICTIONS_REJECT_NON_FQDN_SENDER,
	CONFIG_RESTRICTIONS_REJECT_NON_FQDN_RECIPIENT,
	CONFIG_RESTRICTIONS_REJECT_UNKNOWN_SENDER_DOMAIN,
	CONFIG_RESTRICTIONS_REJECT_UNKNOWN_RECIPIENT_DOMAIN,
	CONFIG_RESTRICTIONS_REJECT_UNLISTED_RECIPIENT,
	CONFIG_RESTRICTIONS_REJECT_UNLISTED_SENDER,
	CONFIG_RESTRICTIONS_REJECT_SENDER_LOGIN_MISMATCH,
	CONFIG_RESTRICTIONS_REJECT_AUTHENTICATED_SENDER_LOGIN_MISMATCH,
	CONFIG_RESTRICTIONS_REJECT_UNKNOWN_CLIENT_HOSTNAME,
	CONFIG_RESTRICTIONS_REJECT_UNKNOWN_REVERSE_CLIENT_HOSTNAME,
	CONFIG_RESTRICTIONS_WARN_IF_REJECT,
	CONFIG_RESTRICTIONS_SLEEP,
	CONFIG_RESTRICTIONS_REJECT_RBL_CLIENT,
	CONFIG_RESTRICTIONS_CHECK_POLICY_SERVICE,
	CONFIG_RESTRICTIONS_CHECK_CLIENT_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_SENDER_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_RECIPIENT_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_HELO_ACCESS,
	/* DNS-based words (smtpd/smtpd_dnsbl.c, smtpd/smtpd_dnsaccess.c) */
	CONFIG_RESTRICTIONS_REJECT_RHSBL_CLIENT,
	CONFIG_RESTRICTIONS_REJECT_RHSBL_REVERSE_CLIENT,
	CONFIG_RESTRICTIONS_REJECT_RHSBL_HELO,
	CONFIG_RESTRICTIONS_REJECT_RHSBL_SENDER,
	CONFIG_RESTRICTIONS_REJECT_RHSBL_RECIPIENT,
	CONFIG_RESTRICTIONS_PERMIT_DNSWL_CLIENT,
	CONFIG_RESTRICTIONS_PERMIT_RHSWL_CLIENT,
	CONFIG_RESTRICTIONS_CHECK_CLIENT_MX_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_CLIENT_NS_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_CLIENT_A_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_REVERSE_CLIENT_MX_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_REVERSE_CLIENT_NS_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_REVERSE_CLIENT_A_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_HELO_MX_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_HELO_NS_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_HELO_A_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_SENDER_MX_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_SENDER_NS_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_SENDER_A_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_RECIPIENT_MX_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_RECIPIENT_NS_ACCESS,
	CONFIG_RESTRICTIONS_CHECK_RECIPIENT_A_ACCESS,
};

/* The argument a restriction takes (the next list item), if any. */
enum config_restrictions_arg {
	CONFIG_RESTRICTIONS_ARG_NONE = 0,
	CONFIG_RESTRICTIONS_ARG_DNSBL,		/* zone, optionally zone=PATTERN (d.d.d.d) */
	CONFIG_RESTRICTIONS_ARG_POLICY,		/* inet:HOST:PORT or unix:PATH */
	CONFIG_RESTRICTIONS_ARG_MAP,		/* TYPE:NAME, e.g. lmdb:/etc/tern/access */
	CONFIG_RESTRICTIONS_ARG_SECONDS,	/* a time, bare number = seconds */
};

struct config_restrictions_entry {
	const char *name;		/* as written in a list (lower case) */
	const char *canonical;		/* == name, or the word an alias stands for */
	enum config_restrictions_code code;
	enum config_restrictions_arg arg;	/* ARG_NONE: takes no argument */
};

/* The table, in no particular order; config_restrictions_count entries. */
extern const struct config_restrictions_entry config_restrictions_table[];
extern const size_t config_restrictions_count;

static inline bool
config_restrictions_takes_argument(const struct config_restrictions_entry *e)
{
	return e->arg != CONFIG_RESTRICTIONS_ARG_NONE;
}

/*
 * The reply filter of a DNS list, ZONE=PATTERN (Postfix's ip_match
 * syntax, Postfix 2.8 and later): four fields separated by '.', each a
 * number 0..255 or "[" members "]", the members separated by ';', each
 * a number or LOW..HIGH; the whole may be wrapped in "[...]". So
 * 127.0.0.2, 127.0.0.[2..11] and 127.0.[0;1].[2;4..6].
 */
struct config_restrictions_ip_pattern {
	unsigned char allowed[4][256 / 8];	/* bit v of allowed[i]: field i may be v */
};

/* Parse len bytes of s into *out; false when malformed. */
bool config_restrictions_ip_pattern_parse(const char *s, size_t len,
                                          struct config_restrictions_ip_pattern *out);
/* Does the IPv4 address (4 bytes, network order) match? */
bool config_restrictions_ip_pattern_match(const struct config_restrictions_ip_pattern *p,
                                          const unsigned char addr[4]);

/* The entry for word (case-insensitive), or NULL when it is unknown. */
const struct config_restrictions_entry *config_restrictions_lookup(const char *word);

/*
 * Validate a restriction list: every word known (an unknown one names the
 * closest known word), every argument present and well-formed,
 * warn_if_reject not last. Appends one "message\n" per problem to why
 * (no FILE:LINE prefix; the caller knows it) and returns the number of
 * problems, 0 when the list is valid.
 */
unsigned config_restrictions_check(const struct config_list *list, struct buf *why);

#endif
