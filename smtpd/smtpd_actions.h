/*
 * smtpd_actions: what decides where a received message goes, applied to
 * its envelope just before it is committed (doc/content_filter.md):
 *
 *   - REDIRECT user@domain (an access map or policy server action)
 *     replaces every recipient with that address and, as Postfix's qmgr
 *     does, wins over BCC and over any content filter;
 *   - BCC user@domain adds that one recipient, NOTIFY=NEVER and no ORCPT,
 *     as Postfix's cleanup adds an automatic BCC (no bounce reveals it);
 *   - else the message gets a content filter: the last FILTER action's,
 *     else the listener's content_filter (the sendmail socket has the
 *     global one, as Postfix's pickup). Never on the re-injection
 *     listener: mail the filter handed back must not go to it again.
 *
 * Of each action kind only the last one of the transaction counts
 * (access(5): "only the last one takes effect"; BCC as in Postfix 3.0).
 * A REDIRECT or BCC address goes through the aliases as a RCPT would;
 * when it cannot (an unknown user), it is queued as it is and its
 * delivery agent refuses it.
 *
 * No I/O but the alias look-ups and log lines; out of memory is fatal().
 */
#ifndef TERN_SMTPD_ACTIONS_H
#define TERN_SMTPD_ACTIONS_H

#include "common/mailaddr.h"
#include "config/addr_resolve.h"
#include "config/config.h"
#include "queue/envelope.h"
#include "smtpd/smtpd_restrict.h"

/* The actions of one transaction; "" when none fired. Zero it to reset. */
struct smtpd_actions {
	char filter[CONFIG_FILTER_MAX + 1];
	char redirect[MAILADDR_PATH_MAX + 1];
	char bcc[MAILADDR_PATH_MAX + 1];
};

/* Keep the actions of one check's result (the later ones win). */
void smtpd_actions_keep(struct smtpd_actions *a, const struct smtpd_restrict_result *res);

/*
 * Apply a and the listener l's content_filter of cfg to env, the
 * envelope of message id (for the log lines). addr may be NULL (no
 * alias expansion: the addresses are added as they are).
 */
void smtpd_actions_apply(const struct smtpd_actions *a, const struct config *cfg,
                         enum config_listener l, struct addr_resolver *addr, const char *id,
                         struct envelope *env);

#endif
