/*
 * smtpd_ratelimit: the anvil(8) checks of a session; see smtpd_ratelimit.h.
 *
 * Reply texts and warning lines are Postfix's (smtpd.c: smtpd_proto(),
 * mail_cmd(), rcpt_cmd(), starttls_cmd(), smtpd_start_tls(); the AUTH
 * reply from its list of replies), with NAME[ADDR] where Postfix prints
 * state->namaddr and ADDR where it prints state->addr. The per-login
 * lines are tern's own and carry sasl_username=.
 *
 * Errors: none. A table too full to count an event lets it through
 * (smtpd_anvil.h says why); smtpd.c logs that once a time unit.
 */
#include "smtpd/smtpd_ratelimit.h"

#include <arpa/inet.h>
#include <strings.h>

#include "common/evloop.h"
#include "common/log.h"
#include "smtpd/smtpd_anvil.h"
#include "smtpd/smtpd_session_impl.h"

bool
smtpd_ratelimit_client_excepted(const struct config *cfg, enum config_listener l,
    const char *client_addr)
{
	const struct config_network *nets;
	unsigned char addr[16];
	size_t n;
	int af;

	if (inet_pton(AF_INET, client_addr, addr) == 1)
		af = AF_INET;
	else if (inet_pton(AF_INET6, client_addr, addr) == 1)
		af = AF_INET6;
	else
		return true;
	nets = config_lnetworks(cfg, l, P_SMTPD_CLIENT_EVENT_LIMIT_EXCEPTIONS, &n);
	return config_networks_match(nets, n, af, addr);
}

bool
smtpd_ratelimit_login_excepted(const struct config *cfg, enum config_listener l,
    const char *login)
{
	const struct config_list *list = config_llist(cfg, l, P_SMTPD_SASL_USER_RATE_LIMIT_EXCEPTIONS);
	size_t i;

	for (i = 0; i < list->n; i++)
		if (strcasecmp(list->items[i], login) == 0)
			return true;
	return false;
}

/* Is the client counted at all? */
static bool
smtpd_ratelimit_applies(const struct smtpd_session *s)
{
	return s->srv->anvil != NULL && !s->local &&
	       !smtpd_ratelimit_client_excepted(s->srv->cfg, s->listener, s->client_addr);
}

static uint64_t
smtpd_ratelimit_limit(const struct smtpd_session *s, enum config_param p)
{
	return config_lint(s->srv->cfg, s->listener, p);
}

static void
smtpd_ratelimit_client_key(const struct smtpd_session *s, struct smtpd_anvil_key *k)
{
	k->space = SMTPD_ANVIL_CLIENT;
	k->listener = (unsigned)s->listener;
	k->name = s->client_addr;
}

static int64_t
smtpd_ratelimit_now(const struct smtpd_session *s)
{
	return evloop_now(s->srv->loop);
}

static const char *
smtpd_ratelimit_service(const struct smtpd_session *s)
{
	return config_listener_name(s->listener);
}

/* Count one event of the client when its limit p is on; true when the
 * rate (this event included) is over it, *rate set. */
static bool
smtpd_ratelimit_client_over(struct smtpd_session *s, enum config_param p,
    enum smtpd_anvil_event ev, unsigned *rate)
{
	struct smtpd_anvil_key k;
	uint64_t limit = smtpd_ratelimit_limit(s, p);

	*rate = 0;
	if (limit == 0 || !smtpd_ratelimit_applies(s))
		return false;
	smtpd_ratelimit_client_key(s, &k);
	smtpd_anvil_event(s->srv->anvil, smtpd_ratelimit_now(s), &k, ev, rate);
	return *rate > limit;
}

/* The same for the session's login (tern's limits). */
static bool
smtpd_ratelimit_user_over(struct smtpd_session *s, enum config_param p,
    enum smtpd_anvil_event ev, unsigned *rate)
{
	struct smtpd_anvil_key k;
	uint64_t limit = smtpd_ratelimit_limit(s, p);

	*rate = 0;
	if (limit == 0 || s->srv->anvil == NULL || s->local || s->sasl_username[0] == '\0' ||
	    smtpd_ratelimit_login_excepted(s->srv->cfg, s->listener, s->sasl_username))
		return false;
	k.space = SMTPD_ANVIL_USER;
	k.listener = 0;
	k.name = s->sasl_username;
	smtpd_anvil_event(s->srv->anvil, smtpd_ratelimit_now(s), &k, ev, rate);
	return *rate > limit;
}

/* ---- connect ---- */

bool
smtpd_ratelimit_connect(struct smtpd_session *s)
{
	struct smtpd_anvil_key k;
	uint64_t count_limit, rate_limit;
	unsigned count, rate;

	/* Counted even when no limit is on, as Postfix's smtpd always tells
	 * anvil: a limit switched on by a reload then sees the sessions that
	 * are already open. */
	if (!smtpd_ratelimit_applies(s))
		return true;
	smtpd_ratelimit_client_key(s, &k);
	if (smtpd_anvil_connect(s->srv->anvil, smtpd_ratelimit_now(s), &k, &count, &rate) !=
	    SMTPD_ANVIL_OK)
		return true;
	s->anvil_counted = true;
	count_limit = smtpd_ratelimit_limit(s, P_SMTPD_CLIENT_CONNECTION_COUNT_LIMIT);
	rate_limit = smtpd_ratelimit_limit(s, P_SMTPD_CLIENT_CONNECTION_RATE_LIMIT);
	if (count_limit > 0 && count > count_limit)
		log_warning("Connection concurrency limit exceeded: %u from %s[%s] for service %s",
		    count, s->client_name, s->client_addr, smtpd_ratelimit_service(s));
	else if (rate_limit > 0 && rate > rate_limit)
		log_warning("Connection rate limit exceeded: %u from %s[%s] for service %s", rate,
		    s->client_name, s->client_addr, smtpd_ratelimit_service(s));
	else
		return true;
	smtpd_reply(s, 421, "4.7.0", "%s Error: too many connections from %s", s->srv->hostname,
	    s->client_addr);
	smtpd_session_close_after_reply(s);
	return false;
}

void
smtpd_ratelimit_disconnect(struct smtpd_session *s)
{
	struct smtpd_anvil_key k;

	if (!s->anvil_counted || s->srv->anvil == NULL)
		return;
	s->anvil_counted = false;
	smtpd_ratelimit_client_key(s, &k);
	smtpd_anvil_disconnect(s->srv->anvil, smtpd_ratelimit_now(s), &k);
}

/* ---- MAIL, RCPT, AUTH ---- */

bool
smtpd_ratelimit_mail(struct smtpd_session *s)
{
	unsigned rate;

	if (smtpd_ratelimit_client_over(s, P_SMTPD_CLIENT_MESSAGE_RATE_LIMIT, SMTPD_ANVIL_MAIL,
	    &rate)) {
		smtpd_reply(s, 450, "4.7.1", "Error: too much mail from %s", s->client_addr);
		log_warning("Message delivery request rate limit exceeded: %u from %s[%s] for "
		    "service %s", rate, s->client_name, s->client_addr, smtpd_ratelimit_service(s));
	} else if (smtpd_ratelimit_user_over(s, P_SMTPD_SASL_USER_MESSAGE_RATE_LIMIT,
	    SMTPD_ANVIL_MAIL, &rate)) {
		smtpd_reply(s, 450, "4.7.1", "Error: too much mail from user %s", s->sasl_username);
		log_warning("SASL user message rate limit exceeded: %u from %s[%s] for service %s, "
		    "sasl_username=%s", rate, s->client_name, s->client_addr,
		    smtpd_ratelimit_service(s), s->sasl_username);
	} else {
		return true;
	}
	smtpd_session_error(s);
	return false;
}

bool
smtpd_ratelimit_rcpt(struct smtpd_session *s)
{
	unsigned rate;

	if (smtpd_ratelimit_client_over(s, P_SMTPD_CLIENT_RECIPIENT_RATE_LIMIT, SMTPD_ANVIL_RCPT,
	    &rate)) {
		log_warning("Recipient address rate limit exceeded: %u from %s[%s] for service %s",
		    rate, s->client_name, s->client_addr, smtpd_ratelimit_service(s));
		smtpd_reply(s, 450, "4.7.1", "Error: too many recipients from %s", s->client_addr);
	} else if (smtpd_ratelimit_user_over(s, P_SMTPD_SASL_USER_RECIPIENT_RATE_LIMIT,
	    SMTPD_ANVIL_RCPT, &rate)) {
		log_warning("SASL user recipient rate limit exceeded: %u from %s[%s] for service %s, "
		    "sasl_username=%s", rate, s->client_name, s->client_addr,
		    smtpd_ratelimit_service(s), s->sasl_username);
		smtpd_reply(s, 450, "4.7.1", "Error: too many recipients from user %s",
		    s->sasl_username);
	} else {
		return true;
	}
	smtpd_session_error(s);
	return false;
}

bool
smtpd_ratelimit_auth(struct smtpd_session *s)
{
	unsigned rate;

	if (!smtpd_ratelimit_client_over(s, P_SMTPD_CLIENT_AUTH_RATE_LIMIT, SMTPD_ANVIL_AUTH, &rate))
		return true;
	log_warning("AUTH command rate limit exceeded: %u from %s[%s] for service %s", rate,
	    s->client_name, s->client_addr, smtpd_ratelimit_service(s));
	smtpd_reply(s, 450, "4.7.1", "Error: too many AUTH commands from %s", s->client_addr);
	smtpd_session_error(s);
	return false;
}

/* ---- TLS ---- */

/* Has the client made more new TLS sessions than its limit already? */
static bool
smtpd_ratelimit_tls_spent(struct smtpd_session *s)
{
	struct smtpd_anvil_key k;
	uint64_t limit = smtpd_ratelimit_limit(s, P_SMTPD_CLIENT_NEW_TLS_SESSION_RATE_LIMIT);

	if (limit == 0 || !smtpd_ratelimit_applies(s))
		return false;
	smtpd_ratelimit_client_key(s, &k);
	return smtpd_anvil_peek(s->srv->anvil, smtpd_ratelimit_now(s), &k, SMTPD_ANVIL_NEWTLS) >
	       limit;
}

bool
smtpd_ratelimit_starttls(struct smtpd_session *s)
{
	if (!smtpd_ratelimit_tls_spent(s))
		return true;
	log_warning("Refusing STARTTLS request from %s[%s] for service %s", s->client_name,
	    s->client_addr, smtpd_ratelimit_service(s));
	smtpd_reply(s, 454, "4.7.0", "Error: too many new TLS sessions from %s[%s]", s->client_name,
	    s->client_addr);
	smtpd_session_error(s);
	return false;
}

bool
smtpd_ratelimit_smtps(struct smtpd_session *s)
{
	if (!smtpd_ratelimit_tls_spent(s))
		return true;
	log_warning("Refusing TLS service request from %s[%s] for service %s", s->client_name,
	    s->client_addr, smtpd_ratelimit_service(s));
	return false;
}

bool
smtpd_ratelimit_tls_up(struct smtpd_session *s, bool resumed)
{
	unsigned rate;

	/* Postfix counts the handshake after it is done (the CPU is spent
	 * already; the refusal before the next one is what saves it). */
	if (resumed || !smtpd_ratelimit_client_over(s, P_SMTPD_CLIENT_NEW_TLS_SESSION_RATE_LIMIT,
	    SMTPD_ANVIL_NEWTLS, &rate))
		return true;
	log_warning("New TLS session rate limit exceeded: %u from %s[%s] for service %s", rate,
	    s->client_name, s->client_addr, smtpd_ratelimit_service(s));
	smtpd_reply(s, 421, "4.7.0", "%s Error: too many new TLS sessions from %s[%s]",
	    s->srv->hostname, s->client_name, s->client_addr);
	smtpd_session_close_after_reply(s);
	return false;
}
