/*
 * smtpd_actions: FILTER, REDIRECT, BCC and content_filter on the envelope
 * (see the header).
 */
#include "smtpd/smtpd_actions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "queue/envelope_expand.h"

/* "rfc822;" + an address, the ORCPT a redirected message keeps. */
#define SMTPD_ACTIONS_ORCPT_MAX (sizeof("rfc822;") + MAILADDR_PATH_MAX)

void
smtpd_actions_keep(struct smtpd_actions *a, const struct smtpd_restrict_result *res)
{
	if (res->filter[0] != '\0')
		snprintf(a->filter, sizeof(a->filter), "%s", res->filter);
	if (res->redirect[0] != '\0')
		snprintf(a->redirect, sizeof(a->redirect), "%s", res->redirect);
	if (res->bcc[0] != '\0')
		snprintf(a->bcc, sizeof(a->bcc), "%s", res->bcc);
}

/* Add addr as a RCPT would be: its alias expansion, else addr itself. */
static void
smtpd_actions_add(struct addr_resolver *addr, const char *id, struct envelope *env,
                  const char *rcpt, const char *orcpt, unsigned notify)
{
	struct addr_expansion x;
	char reply[ADDR_REPLY_MAX];

	if (addr != NULL) {
		addr_expansion_init(&x);
		if (addr_resolve(addr, rcpt, &x, reply, sizeof(reply)) == ADDR_OK &&
		    envelope_expansion_unstorable(&x) == NULL) {
			(void)envelope_add_expansion(env, &x, rcpt, orcpt, notify);
			addr_expansion_free(&x);
			return;
		}
		if (reply[0] == '\0')
			snprintf(reply, sizeof(reply), "cannot be expanded");
		log_warning("%s: <%s>: %s; queued as it is", id, rcpt, reply);
		addr_expansion_free(&x);
	}
	envelope_add_rcpt(env, rcpt, orcpt, notify);
}

/* REDIRECT: the first recipient's ORCPT (else its address) and NOTIFY
 * stay, as Postfix's qmgr rewrites the first recipient record and drops
 * the others. */
static void
smtpd_actions_redirect(const struct smtpd_actions *a, struct addr_resolver *addr, const char *id,
                       struct envelope *env)
{
	char orcpt[SMTPD_ACTIONS_ORCPT_MAX];
	unsigned notify = 0;
	size_t n = env->nrcpt;

	orcpt[0] = '\0';
	if (n > 0) {
		notify = env->rcpts[0].notify;
		snprintf(orcpt, sizeof(orcpt), "%s", env->rcpts[0].orcpt != NULL ?
		         env->rcpts[0].orcpt : "");
		if (orcpt[0] == '\0' && strlen(env->rcpts[0].addr) <= MAILADDR_PATH_MAX)
			snprintf(orcpt, sizeof(orcpt), "rfc822;%s", env->rcpts[0].addr);
	}
	envelope_clear_rcpts(env);
	smtpd_actions_add(addr, id, env, a->redirect, orcpt[0] != '\0' ? orcpt : NULL, notify);
	log_info("%s: redirect: %zu recipient%s replaced by <%s> (a REDIRECT action)", id, n,
	         n == 1 ? "" : "s", a->redirect);
}

void
smtpd_actions_apply(const struct smtpd_actions *a, const struct config *cfg,
                    enum config_listener l, struct addr_resolver *addr, const char *id,
                    struct envelope *env)
{
	const char *filter = a->filter[0] != '\0' ? a->filter : config_lstr(cfg, l, P_CONTENT_FILTER);

	envelope_set(&env->filter, NULL);
	if (a->redirect[0] != '\0') {
		smtpd_actions_redirect(a, addr, id, env);
		if (a->bcc[0] != '\0' || a->filter[0] != '\0')
			log_info("%s: redirect: the REDIRECT wins over %s", id,
			         a->bcc[0] != '\0' && a->filter[0] != '\0' ? "BCC and FILTER" :
			         a->bcc[0] != '\0' ? "BCC" : "FILTER");
		return;
	}
	if (a->bcc[0] != '\0') {
		smtpd_actions_add(addr, id, env, a->bcc, NULL, ENVELOPE_NOTIFY_NEVER);
		log_info("%s: bcc: <%s> added (a BCC action)", id, a->bcc);
	}
	if (l == CONFIG_LISTENER_REINJECT) {
		/* config.c keeps content_filter empty here; a FILTER action
		 * of a reinject_ restriction list would loop all the same. */
		if (a->filter[0] != '\0')
			log_warning("%s: FILTER %s ignored: mail handed back by a content filter "
			            "is not filtered again", id, a->filter);
		return;
	}
	if (filter[0] == '\0')
		return;
	envelope_set(&env->filter, filter);
	if (a->filter[0] != '\0')
		log_info("%s: filter: %s (a FILTER action)", id, filter);
}
