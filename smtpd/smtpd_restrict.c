/*
 * smtpd_restrict: restriction list evaluation. Pure decisions on a
 * configuration and a parsed address; the session logs and replies.
 */
#include "smtpd/smtpd_restrict.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "config/config_restrictions.h"

/* Does domain_lc match an entry of a domain list? An entry ".example.com"
 * matches the subdomains of example.com; others match exactly, without
 * regard to case or one trailing dot. */
static bool
smtpd_restrict_list_has(const struct config_list *list, const char *domain_lc)
{
	size_t i, dlen = strlen(domain_lc), elen;
	const char *e;

	for (i = 0; i < list->n; i++) {
		e = list->items[i];
		elen = strlen(e);
		if (elen > 0 && e[elen - 1] == '.')
			elen--;
		if (e[0] == '.') {
			if (dlen > elen && strncasecmp(domain_lc + dlen - elen, e, elen) == 0)
				return true;
			continue;
		}
		if (elen == dlen && strncasecmp(e, domain_lc, elen) == 0)
			return true;
	}
	return false;
}

bool
smtpd_restrict_domain_is_ours(const struct config *cfg, const char *domain_lc)
{
	return smtpd_restrict_list_has(config_list(cfg, P_MYDESTINATION), domain_lc) ||
	    smtpd_restrict_list_has(config_list(cfg, P_VIRTUAL_MAILBOX_DOMAINS), domain_lc) ||
	    smtpd_restrict_list_has(config_list(cfg, P_RELAY_DOMAINS), domain_lc);
}

/* RFC 5321 section 4.5.1: mail to the bare Postmaster is always accepted.
 * An address literal is never "ours" here: accepting mail for [ip] only
 * for our own addresses is part of the resolver work (XXX: until then a
 * literal recipient is relayed only for trusted clients). */
static bool
smtpd_restrict_auth_destination(const struct config *cfg, const struct mailaddr *rcpt)
{
	if (rcpt->postmaster)
		return true;
	if (rcpt->literal)
		return false;
	return smtpd_restrict_domain_is_ours(cfg, rcpt->domain_lc);
}

static void
smtpd_restrict_reply(struct smtpd_reply *reply, int code, const char *enh, const char *fmt,
    const char *arg)
{
	reply->code = code;
	reply->enh = enh;
	snprintf(reply->text, sizeof(reply->text), fmt, arg);
}

/* Evaluate one list; DUNNO when it reached its end without a decision.
 * Words are looked up in config's table, so aliases and case follow it. */
static enum smtpd_verdict
smtpd_restrict_list(const struct config *cfg, enum config_listener l, enum config_param p,
    const struct smtpd_restrict_client *client, const struct mailaddr *rcpt,
    struct smtpd_reply *reply)
{
	const struct config_list *list = config_llist(cfg, l, p);
	const struct config_restrictions_entry *e;
	const struct config_network *nets;
	size_t i, nnets;

	for (i = 0; i < list->n; i++) {
		e = config_restrictions_lookup(list->items[i]);
		if (e == NULL)
			panic("%s: restriction \"%s\" passed validation", config_param_name(p),
			    list->items[i]);
		switch (e->code) {
		case CONFIG_RESTRICTIONS_PERMIT:
			return SMTPD_VERDICT_PERMIT;
		case CONFIG_RESTRICTIONS_DUNNO:
			return SMTPD_VERDICT_DUNNO;
		case CONFIG_RESTRICTIONS_REJECT:
			smtpd_restrict_reply(reply, 554, "5.7.1", "<%s>: Recipient address rejected: "
			    "Access denied", rcpt->addr);
			return SMTPD_VERDICT_REJECT;
		case CONFIG_RESTRICTIONS_DEFER:
			smtpd_restrict_reply(reply, 450, "4.7.1", "<%s>: Recipient address rejected: "
			    "Try again later", rcpt->addr);
			return SMTPD_VERDICT_DEFER;
		case CONFIG_RESTRICTIONS_PERMIT_MYNETWORKS:
			nets = config_lnetworks(cfg, l, P_MYNETWORKS, &nnets);
			if (client->family != 0 &&
			    config_networks_match(nets, nnets, client->family, client->addr))
				return SMTPD_VERDICT_PERMIT;
			break;
		case CONFIG_RESTRICTIONS_PERMIT_SASL_AUTHENTICATED:
			if (client->sasl_authenticated)
				return SMTPD_VERDICT_PERMIT;
			break;
		case CONFIG_RESTRICTIONS_PERMIT_AUTH_DESTINATION:
			if (smtpd_restrict_auth_destination(cfg, rcpt))
				return SMTPD_VERDICT_PERMIT;
			break;
		case CONFIG_RESTRICTIONS_REJECT_UNAUTH_DESTINATION:
			if (smtpd_restrict_auth_destination(cfg, rcpt))
				break;
			smtpd_restrict_reply(reply, 554, "5.7.1", "<%s>: Relay access denied", rcpt->addr);
			return SMTPD_VERDICT_REJECT;
		case CONFIG_RESTRICTIONS_DEFER_UNAUTH_DESTINATION:
			if (smtpd_restrict_auth_destination(cfg, rcpt))
				break;
			smtpd_restrict_reply(reply, 450, "4.7.1", "<%s>: Relay access denied", rcpt->addr);
			return SMTPD_VERDICT_DEFER;
		default:
			/* A word this version cannot evaluate: never let it pass. */
			log_warning("%s: restriction \"%s\" is not supported by this smtpd yet; "
			    "answering 451 4.3.5", config_param_name(p), list->items[i]);
			smtpd_restrict_reply(reply, 451, "4.3.5", "%s", "Server configuration error");
			return SMTPD_VERDICT_DEFER;
		}
		if (config_restrictions_takes_argument(e))
			i++;
	}
	return SMTPD_VERDICT_DUNNO;
}

/* Postfix refuses to run a relay policy that cannot refuse anything: an
 * empty smtpd_relay_restrictions with recipient restrictions that lack
 * every rejecting rule would be an open relay. We answer 451 4.3.5 then. */
static bool
smtpd_restrict_can_refuse_relay(const struct config *cfg, enum config_listener l)
{
	static const char *const refusing[] = {
		"reject_unauth_destination", "defer_unauth_destination", "reject", "defer",
		"defer_if_permit",
	};
	const enum config_param lists[] = { P_SMTPD_RELAY_RESTRICTIONS, P_SMTPD_RECIPIENT_RESTRICTIONS };
	const struct config_list *list;
	size_t i, j, k;

	for (k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
		list = config_llist(cfg, l, lists[k]);
		for (i = 0; i < list->n; i++)
			for (j = 0; j < sizeof(refusing) / sizeof(refusing[0]); j++)
				if (strcasecmp(list->items[i], refusing[j]) == 0)
					return true;
	}
	return false;
}

enum smtpd_verdict
smtpd_restrict_rcpt(const struct config *cfg, enum config_listener l,
    const struct smtpd_restrict_client *client, const struct mailaddr *rcpt,
    struct smtpd_reply *reply)
{
	enum smtpd_verdict v;

	if (!smtpd_restrict_can_refuse_relay(cfg, l)) {
		log_warning("listener %s: smtpd_relay_restrictions and smtpd_recipient_restrictions "
		    "have no reject_unauth_destination (or reject/defer): refusing to be an open relay",
		    config_listener_name(l));
		smtpd_restrict_reply(reply, 451, "4.3.5", "%s", "Server configuration problem");
		return SMTPD_VERDICT_DEFER;
	}
	v = smtpd_restrict_list(cfg, l, P_SMTPD_RELAY_RESTRICTIONS, client, rcpt, reply);
	if (v == SMTPD_VERDICT_REJECT || v == SMTPD_VERDICT_DEFER)
		return v;
	v = smtpd_restrict_list(cfg, l, P_SMTPD_RECIPIENT_RESTRICTIONS, client, rcpt, reply);
	if (v == SMTPD_VERDICT_REJECT || v == SMTPD_VERDICT_DEFER)
		return v;
	return SMTPD_VERDICT_PERMIT;
}
