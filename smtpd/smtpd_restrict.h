/*
 * smtpd_restrict: evaluation of the Postfix restriction lists for one
 * command. The vocabulary (names, arguments, aliases) is config's; what
 * each word decides is here.
 *
 * This first version decides relaying (smtpd_relay_restrictions, then
 * smtpd_recipient_restrictions) with the words that need no map, DNS or
 * policy server; a list that uses another word answers 451 4.3.5 (as
 * Postfix does for a restriction it cannot evaluate) and logs why, so a
 * configuration is never silently weaker than it reads.
 */
#ifndef TERN_SMTPD_RESTRICT_H
#define TERN_SMTPD_RESTRICT_H

#include <stdbool.h>

#include "common/mailaddr.h"
#include "config/config.h"
#include "smtpd/smtpd_command.h"

enum smtpd_verdict {
	SMTPD_VERDICT_DUNNO = 0,	/* no decision: go on */
	SMTPD_VERDICT_PERMIT,
	SMTPD_VERDICT_REJECT,		/* reply filled in */
	SMTPD_VERDICT_DEFER,		/* reply filled in (4xx) */
};

/* What a restriction may look at. */
struct smtpd_restrict_client {
	int family;			/* AF_INET, AF_INET6 or 0 */
	unsigned char addr[16];
	bool sasl_authenticated;
};

/* Is the (lower-case) domain one we accept mail for: mydestination,
 * virtual_mailbox_domains or relay_domains? */
bool smtpd_restrict_domain_is_ours(const struct config *cfg, const char *domain_lc);

/*
 * Decide on one RCPT TO: smtpd_relay_restrictions, then
 * smtpd_recipient_restrictions (Postfix 2.10+ order). PERMIT or DUNNO at
 * the end of both lists means accept. REJECT/DEFER fill reply.
 */
enum smtpd_verdict smtpd_restrict_rcpt(const struct config *cfg, enum config_listener l,
                                       const struct smtpd_restrict_client *client,
                                       const struct mailaddr *rcpt, struct smtpd_reply *reply);

#endif
