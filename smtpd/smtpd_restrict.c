/*
 * smtpd_restrict: compiled restriction lists and their evaluation (see
 * the header for the model, doc/restrictions.md for the words).
 *
 * A check walks the lists of its stage with a cursor (list, rule), so it
 * can stop at a rule that waits (DNS, policy server, sleep) and go on
 * from the same place when the answer comes. The per-check state is
 * Postfix's: warn_if_reject arms the next rule only; defer_if_permit and
 * defer_if_reject are remembered, first one wins, until the check ends.
 *
 * Replies carry their enhanced status code inside the text ("5.7.1
 * <a@b>: Relay access denied", enh NULL), so a result owns no pointers
 * and may be kept by the session (a carried defer_if_permit).
 */
#include "smtpd/smtpd_restrict.h"


#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/log.h"
#include "config/config_rbl_reply.h"
#include "config/config_restrictions.h"
#include "config/config_value.h"
#include "config/map.h"
#include "resolver/resolver.h"
#include "smtpd/smtpd_dnsaccess.h"
#include "smtpd/smtpd_dnsbl.h"
#include "smtpd/smtpd_policy.h"

/* A HOLD or DISCARD log text: "<address>: Recipient address text". */
#define SMTPD_RESTRICT_TEXT_LOG_MAX 1200

/* Keys one access lookup may try (labels of a name, address parts). */
#define SMTPD_RESTRICT_KEYS_MAX 140
/* A ruleset freed after the last check left it, from this timer. */
#define SMTPD_RESTRICT_REAP_MS 0

/* ---- lists ---- */

enum smtpd_list_kind {
	LK_CLIENT, LK_HELO, LK_SENDER, LK_RELAY, LK_RECIPIENT, LK_DATA, LK_EOD, LK_COUNT
};

static const enum config_param smtpd_list_param[LK_COUNT] = {
	P_SMTPD_CLIENT_RESTRICTIONS, P_SMTPD_HELO_RESTRICTIONS, P_SMTPD_SENDER_RESTRICTIONS,
	P_SMTPD_RELAY_RESTRICTIONS, P_SMTPD_RECIPIENT_RESTRICTIONS, P_SMTPD_DATA_RESTRICTIONS,
	P_SMTPD_END_OF_DATA_RESTRICTIONS,
};

/* Postfix's reply_class of each list, for "<name>: CLASS rejected: ...". */
static const char *const smtpd_list_class[LK_COUNT] = {
	"Client host", "Helo command", "Sender address", "Recipient address",
	"Recipient address", "Data command", "End-of-data",
};

struct smtpd_rule {
	const struct config_restrictions_entry *e;
	char *arg;				/* owned, or NULL */
	struct map *map;			/* check_*_access: the set's */
	struct smtpd_policy_client *policy;	/* check_policy_service: the set's */
	struct smtpd_dnsbl_spec dnsbl;		/* reject_rbl_client */
	int64_t sleep_ms;			/* sleep */
};

struct smtpd_rule_list {
	struct smtpd_rule *v;
	size_t n;
};

struct smtpd_named_map {
	char *spec;
	struct map *map;
};

struct smtpd_named_policy {
	char *endpoint;
	struct smtpd_policy_client *client;
};

struct smtpd_ruleset {
	unsigned refs;
	struct smtpd_ruleset *next_dead;
	struct smtpd_rule_list lists[CONFIG_LISTENER_COUNT][LK_COUNT];
	struct smtpd_named_map *maps;
	size_t nmaps;
	struct smtpd_named_policy *pols;
	size_t npols;
	struct map_list *login_maps;	/* smtpd_sender_login_maps (global) */
	/* Can the relay and recipient lists of a listener refuse anything? */
	bool relay_safe[CONFIG_LISTENER_COUNT];
};

struct smtpd_restrict {
	struct evloop *loop;
	const struct config *cfg;
	struct addr_resolver *addr;
	struct resolver *resolver;
	struct smtpd_ruleset *set;
	struct smtpd_ruleset *dead;	/* released sets waiting for the reaper */
	struct ev_timer reaper;
};

/* What a rule decided. */
enum smtpd_step {
	STEP_NEXT,	/* DUNNO: the next rule */
	STEP_PERMIT,	/* the end of this list */
	STEP_STOP,	/* REJECT or DEFER: the result is set */
	STEP_WAIT,	/* an answer is awaited */
};

struct smtpd_restrict_check {
	struct smtpd_restrict *rs;
	struct smtpd_ruleset *set;
	enum smtpd_restrict_stage stage;
	enum smtpd_list_kind seq[LK_COUNT];
	size_t nseq, si, ri;
	bool warn;				/* warn_if_reject armed */
	bool dip, dir;				/* defer_if_permit / _reject active */
	struct smtpd_reply dip_reply, dir_reply;
	struct smtpd_restrict_result res;
	size_t prepend_len;

	struct smtpd_restrict_facts f;		/* pointers into the copies below */
	char client_addr[INET6_ADDRSTRLEN + 8], client_name[256], reverse_name[256];
	char server_addr[INET6_ADDRSTRLEN + 8], helo[SMTPD_HELO_MAX + 1], queue_id[64];
	char instance[64], sasl_method[64], sasl_username[256], sasl_sender[MAILADDR_PATH_MAX + 1];
	char enc_protocol[64], enc_cipher[128], verb[16];
	char namaddr[256 + INET6_ADDRSTRLEN + 8];
	struct mailaddr sender, rcpt;
	struct smtpd_reply carried;

	/* The rule waiting, and what it waits on. */
	const struct smtpd_rule *rule;
	int phase;
	char dns_name[RESOLVER_NAME_SIZE];
	struct resolver_query *q;
	struct smtpd_dnsbl_lookup *dl;
	struct smtpd_dnsaccess_lookup *da;	/* check_*_{mx,ns,a}_access */
	struct smtpd_policy_req *pr;
	struct ev_timer sleep;
	smtpd_restrict_cb *cb;
	void *arg;
};

static void smtpd_restrict_resume(struct smtpd_restrict_check *c, enum smtpd_step step);

/* ---- replies and log lines ---- */

/* Is p a status code "C.S.D" (RFC 3463: class 2, 4, 5; 1-3 digits, 1-3 digits)? */
static size_t
smtpd_dsn_len(const char *p)
{
	size_t i = 0, n;

	if (p[0] != '2' && p[0] != '4' && p[0] != '5')
		return 0;
	if (p[1] != '.')
		return 0;
	i = 2;
	for (n = 0; isdigit((unsigned char)p[i]) && n < 3; n++)
		i++;
	if (n == 0 || p[i] != '.')
		return 0;
	i++;
	for (n = 0; isdigit((unsigned char)p[i]) && n < 3; n++)
		i++;
	if (n == 0 || (p[i] != '\0' && p[i] != ' ' && p[i] != '\t'))
		return 0;
	return i;
}

size_t
smtpd_restrict_dsn_len(const char *p)
{
	return smtpd_dsn_len(p);
}

/* "NOQUEUE: WHAT: VERB from host[addr]: CODE TEXT; from=<> to=<> proto=ESMTP helo=<h>" */
static void
smtpd_restrict_log(const struct smtpd_restrict_check *c, const char *what, int code,
    const char *text)
{
	struct buf line;

	buf_init(&line, 4096);
	(void)buf_append_printf(&line, "%s: %s: %s from %s: ", c->f.queue_id ? c->f.queue_id : "NOQUEUE",
	    what, c->f.verb, c->namaddr);
	if (code > 0)
		(void)buf_append_printf(&line, "%d ", code);
	(void)buf_append_printf(&line, "%s;", text);
	if (c->f.sender != NULL)
		(void)buf_append_printf(&line, " from=<%s>", c->sender.addr);
	if (c->f.rcpt != NULL)
		(void)buf_append_printf(&line, " to=<%s>", c->rcpt.addr);
	(void)buf_append_printf(&line, " proto=%s", c->f.esmtp ? "ESMTP" : "SMTP");
	if (c->helo[0] != '\0')
		(void)buf_append_printf(&line, " helo=<%s>", c->helo);
	log_info("%s", buf_cstr(&line));
	buf_free(&line);
}

/* Fill r: code, and "D.S.N TEXT" with the status class forced to the
 * code's (Postfix maps "5.1.1" under a 4xx into "4.1.1"). */
static void
smtpd_restrict_mkreply(struct smtpd_reply *r, int code, const char *dsn, const char *fmt,
    va_list ap)
{
	char text[SMTPD_REPLY_TEXT_MAX - 16];	/* room for the code in r->text */
	char d[16];

	vsnprintf(text, sizeof(text), fmt, ap);
	snprintf(d, sizeof(d), "%s", dsn);
	d[0] = (char)('0' + code / 100);
	r->code = code;
	r->enh = NULL;
	snprintf(r->text, sizeof(r->text), "%s %s", d, text);
}

/* A rejection (4xx or 5xx) by the current rule, as warn_if_reject and
 * defer_if_reject make it. */
static enum smtpd_step __attribute__((format(printf, 4, 5)))
smtpd_restrict_refuse(struct smtpd_restrict_check *c, int code, const char *dsn, const char *fmt, ...)
{
	struct smtpd_reply r;
	va_list ap;

	if (code < 400 || code > 599)
		code = code < 400 ? 450 : 554;	/* a *_code parameter out of range */
	va_start(ap, fmt);
	smtpd_restrict_mkreply(&r, code, dsn, fmt, ap);
	va_end(ap);
	if (c->warn) {
		smtpd_restrict_log(c, "reject_warning", r.code, r.text);
		return STEP_NEXT;
	}
	if (r.code >= 500 && c->dir)
		r = c->dir_reply;
	c->res.verdict = r.code >= 500 ? SMTPD_VERDICT_REJECT : SMTPD_VERDICT_DEFER;
	c->res.reply = r;
	return STEP_STOP;
}

/* defer_if_permit / defer_if_reject: remember the first reply. */
static enum smtpd_step __attribute__((format(printf, 5, 6)))
smtpd_restrict_defer_if(struct smtpd_restrict_check *c, bool permit, int code, const char *dsn,
    const char *fmt, ...)
{
	struct smtpd_reply r;
	va_list ap;

	va_start(ap, fmt);
	smtpd_restrict_mkreply(&r, code, dsn, fmt, ap);
	va_end(ap);
	if (c->warn) {
		smtpd_restrict_log(c, "reject_warning", r.code, r.text);
		return STEP_NEXT;
	}
	if (permit && !c->dip) {
		c->dip = true;
		c->dip_reply = r;
	} else if (!permit && !c->dir) {
		c->dir = true;
		c->dir_reply = r;
	}
	return STEP_NEXT;
}

/* Our trouble (a bad table entry, an unusable map): 451 4.3.5 / 4.3.0. */
static enum smtpd_step
smtpd_restrict_trouble(struct smtpd_restrict_check *c, const char *dsn, const char *text)
{
	c->res.verdict = SMTPD_VERDICT_DEFER;
	c->res.reply.code = 451;
	c->res.reply.enh = NULL;
	snprintf(c->res.reply.text, sizeof(c->res.reply.text), "%s %s", dsn, text);
	return STEP_STOP;
}

static int
smtpd_restrict_code(const struct smtpd_restrict_check *c, enum config_param p)
{
	return (int)config_lint(c->rs->cfg, c->f.listener, p);
}

/* The name a list's generic replies quote: "<NAME>: CLASS rejected: ...". */
static const char *
smtpd_list_name(const struct smtpd_restrict_check *c, enum smtpd_list_kind k)
{
	switch (k) {
	case LK_CLIENT:
		return c->namaddr;
	case LK_HELO:
		return c->helo;
	case LK_SENDER:
		return c->f.sender != NULL ? c->sender.addr : "";
	case LK_RELAY:
	case LK_RECIPIENT:
		return c->f.rcpt != NULL ? c->rcpt.addr : "";
	case LK_DATA:
		return "DATA";
	default:
		return "END-OF-MESSAGE";
	}
}

static enum smtpd_list_kind
smtpd_current_list(const struct smtpd_restrict_check *c)
{
	return c->seq[c->si];
}

/* ---- pure decisions ---- */

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

bool
smtpd_restrict_local_routed(const char *local)
{
	size_t i;
	bool quoted = false;

	/* A quoted local part is looked at dequoted, as Postfix's
	 * resolve_dequoted_address = yes does: "a@b"@c routes like a@b@c. */
	for (i = 0; local[i] != '\0'; i++) {
		if (local[i] == '"') {
			quoted = !quoted;
			continue;
		}
		if (quoted && local[i] == '\\' && local[i + 1] != '\0') {
			i++;
			if (strchr("@%!", local[i]) != NULL)
				return true;
			continue;
		}
		if (strchr("@%!", local[i]) != NULL)
			return true;
	}
	return false;
}

enum smtpd_relay_decision
smtpd_restrict_relay_decide(const struct config *cfg, struct addr_resolver *addr,
    const struct mailaddr *rcpt)
{
	enum addr_class klass;
	char err[256];

	if (rcpt->postmaster)
		return SMTPD_RELAY_AUTH;
	/* RFC 5321 section 4.1.1.3 lets us decline source routes; Postfix's
	 * allow_untrusted_routing = no refuses them from strangers, even when
	 * the last hop is ours. The same for %, ! and @ in the local part. */
	if (rcpt->had_route || smtpd_restrict_local_routed(rcpt->local))
		return SMTPD_RELAY_ROUTED;
	if (rcpt->literal)
		return SMTPD_RELAY_LITERAL;
	if (addr == NULL)
		return smtpd_restrict_domain_is_ours(cfg, rcpt->domain_lc) ||
		    smtpd_restrict_list_has(config_list(cfg, P_VIRTUAL_ALIAS_DOMAINS), rcpt->domain_lc) ?
		    SMTPD_RELAY_AUTH : SMTPD_RELAY_FOREIGN;
	if (addr_resolver_class(addr, rcpt->domain_lc, &klass, err, sizeof(err)) < 0) {
		log_warning("relay check for <%s>: %s", rcpt->addr, err);
		return SMTPD_RELAY_TEMPFAIL;
	}
	return klass == ADDR_CLASS_DEFAULT ? SMTPD_RELAY_FOREIGN : SMTPD_RELAY_AUTH;
}

/* "[1.2.3.4]" or "[IPv6:...]". */
static bool
smtpd_restrict_is_literal(const char *name)
{
	return name[0] == '[' && mailaddr_is_address_literal(name, strlen(name));
}

bool
smtpd_restrict_helo_valid(const char *name)
{
	char norm[RESOLVER_NAME_SIZE];
	struct in_addr in;

	if (name[0] == '\0')
		return false;
	if (smtpd_restrict_is_literal(name) || inet_pton(AF_INET, name, &in) == 1)
		return true;
	if (strlen(name) > RESOLVER_NAME_MAX + 1)
		return false;
	return resolver_name_normalize(name, norm) == 0;
}

bool
smtpd_restrict_helo_fqdn(const char *name)
{
	char norm[RESOLVER_NAME_SIZE];
	struct in_addr in;

	if (smtpd_restrict_is_literal(name) || inet_pton(AF_INET, name, &in) == 1)
		return true;
	if (strlen(name) > RESOLVER_NAME_MAX + 1 || resolver_name_normalize(name, norm) < 0)
		return false;
	return strchr(norm, '.') != NULL;
}

size_t
smtpd_restrict_client_keys(const char *addr, char keys[][64], size_t max)
{
	size_t n = 0, len = strlen(addr);
	char sep = strchr(addr, ':') != NULL ? ':' : '.';

	if (len == 0 || len >= 64 || max == 0)
		return 0;
	memcpy(keys[n++], addr, len + 1);
	/* Postfix's check_client_access walks 1.2.3.4, 1.2.3, 1.2, 1 and for
	 * IPv6 drops one ':' group at a time (empty groups of "::" too). */
	while (n < max) {
		char *cut = strrchr(keys[n - 1], sep);

		if (cut == NULL || cut == keys[n - 1])
			break;
		memcpy(keys[n], keys[n - 1], (size_t)(cut - keys[n - 1]));
		keys[n][cut - keys[n - 1]] = '\0';
		/* "2001:db8:" -> "2001:db8" without a second key for the colon */
		while (sep == ':' && keys[n][0] != '\0' && keys[n][strlen(keys[n]) - 1] == ':')
			keys[n][strlen(keys[n]) - 1] = '\0';
		if (keys[n][0] == '\0')
			break;
		n++;
	}
	return n;
}

void
smtpd_restrict_action_parse(const char *value, struct smtpd_action *a)
{
	static const struct {
		const char *word;
		enum smtpd_action_kind kind;
		bool text_required;
	} words[] = {
		{ "OK", SMTPD_ACTION_OK, false },
		{ "DUNNO", SMTPD_ACTION_DUNNO, false },
		{ "REJECT", SMTPD_ACTION_REJECT, false },
		{ "DEFER", SMTPD_ACTION_DEFER, false },
		{ "DEFER_IF_REJECT", SMTPD_ACTION_DEFER_IF_REJECT, false },
		{ "DEFER_IF_PERMIT", SMTPD_ACTION_DEFER_IF_PERMIT, false },
		{ "PREPEND", SMTPD_ACTION_PREPEND, true },
		{ "DISCARD", SMTPD_ACTION_DISCARD, false },
		{ "HOLD", SMTPD_ACTION_HOLD, false },
		{ "WARN", SMTPD_ACTION_WARN, false },
		{ "INFO", SMTPD_ACTION_INFO, false },
		{ "FILTER", SMTPD_ACTION_FILTER, true },
		{ "REDIRECT", SMTPD_ACTION_REDIRECT, true },
		{ "BCC", SMTPD_ACTION_BCC, true },
	};
	size_t i, wlen, dl;
	const char *p;

	memset(a, 0, sizeof(*a));
	a->text = "";
	while (*value == ' ' || *value == '\t')
		value++;
	wlen = strcspn(value, " \t");
	p = value + wlen;
	while (*p == ' ' || *p == '\t')
		p++;
	a->text = p;
	/* An all-digits value is OK (Postfix keeps this for old tables). */
	if (wlen > 0 && strspn(value, "0123456789") == wlen && wlen != 3) {
		a->kind = SMTPD_ACTION_OK;
		return;
	}
	if (wlen == 3 && strspn(value, "0123456789") == 3) {
		a->code = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
		if (a->code < 400 || a->code > 599) {
			a->kind = SMTPD_ACTION_BAD;
			a->why = "a numerical reply must be 4xx or 5xx";
			return;
		}
		a->kind = a->code < 500 ? SMTPD_ACTION_DEFER : SMTPD_ACTION_REJECT;
	} else {
		a->kind = SMTPD_ACTION_BAD;
		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
			if (strlen(words[i].word) == wlen && strncasecmp(value, words[i].word, wlen) == 0) {
				a->kind = words[i].kind;
				if (words[i].text_required && *p == '\0') {
					a->kind = SMTPD_ACTION_BAD;
					a->why = "action needs a text";
				}
				break;
			}
		}
		if (i == sizeof(words) / sizeof(words[0])) {
			a->why = "unknown or unsupported action";
			return;
		}
		/* These take their text whole: no enhanced status code. */
		if (a->kind == SMTPD_ACTION_BAD || a->kind == SMTPD_ACTION_PREPEND ||
		    a->kind == SMTPD_ACTION_FILTER || a->kind == SMTPD_ACTION_REDIRECT ||
		    a->kind == SMTPD_ACTION_BCC)
			return;
	}
	dl = smtpd_dsn_len(p);
	if (dl > 0 && dl < sizeof(a->dsn)) {
		memcpy(a->dsn, p, dl);
		a->dsn[dl] = '\0';
		p += dl;
		while (*p == ' ' || *p == '\t')
			p++;
		a->text = p;
	}
}

bool
smtpd_restrict_action_address(const char *text, struct mailaddr *out, const char **why)
{
	size_t len = strlen(text), used = 0;

	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	if (mailaddr_parse_path(text, len, MAILADDR_ALLOW_NO_BRACKETS | MAILADDR_ALLOW_UTF8, out,
	    &used, why) != MAILADDR_OK)
		return false;
	if (used != len) {
		*why = "text after the address";
		return false;
	}
	if (out->null || out->domain[0] == '\0') {
		*why = "needs user@domain";
		return false;
	}
	return true;
}

/* ---- rule sets ---- */

static struct map *
smtpd_ruleset_map(struct smtpd_ruleset *set, const char *spec, struct buf *diag)
{
	struct map *m;
	size_t i;

	for (i = 0; i < set->nmaps; i++)
		if (strcmp(set->maps[i].spec, spec) == 0)
			return set->maps[i].map;
	if (map_open(spec, 0, &m, diag) != MAP_OK)
		return NULL;
	set->maps = realloc(set->maps, (set->nmaps + 1) * sizeof(*set->maps));
	if (set->maps == NULL)
		fatal("out of memory (restriction maps)");
	set->maps[set->nmaps].spec = strdup(spec);
	if (set->maps[set->nmaps].spec == NULL)
		fatal("out of memory (restriction maps)");
	set->maps[set->nmaps++].map = m;
	return m;
}

static struct smtpd_policy_client *
smtpd_ruleset_policy(struct smtpd_restrict *rs, struct smtpd_ruleset *set, const char *endpoint,
    struct buf *diag)
{
	struct smtpd_policy_client *pc;
	const char *why = NULL;
	size_t i;

	for (i = 0; i < set->npols; i++)
		if (strcmp(set->pols[i].endpoint, endpoint) == 0)
			return set->pols[i].client;
	pc = smtpd_policy_client_new(rs->loop, endpoint,
	    config_time(rs->cfg, P_SMTPD_POLICY_SERVICE_TIMEOUT) * 1000,
	    config_time(rs->cfg, P_SMTPD_POLICY_SERVICE_MAX_IDLE) * 1000,
	    config_time(rs->cfg, P_SMTPD_POLICY_SERVICE_MAX_TTL) * 1000, &why);
	if (pc == NULL) {
		buf_append_printf(diag, "check_policy_service %s: %s\n", endpoint, why);
		return NULL;
	}
	set->pols = realloc(set->pols, (set->npols + 1) * sizeof(*set->pols));
	if (set->pols == NULL)
		fatal("out of memory (policy clients)");
	set->pols[set->npols].endpoint = strdup(endpoint);
	if (set->pols[set->npols].endpoint == NULL)
		fatal("out of memory (policy clients)");
	set->pols[set->npols++].client = pc;
	return pc;
}

static void
smtpd_ruleset_free(struct smtpd_ruleset *set)
{
	size_t l, k, i;

	for (l = 0; l < CONFIG_LISTENER_COUNT; l++)
		for (k = 0; k < LK_COUNT; k++) {
			for (i = 0; i < set->lists[l][k].n; i++)
				free(set->lists[l][k].v[i].arg);
			free(set->lists[l][k].v);
		}
	for (i = 0; i < set->nmaps; i++) {
		map_close(set->maps[i].map);
		free(set->maps[i].spec);
	}
	for (i = 0; i < set->npols; i++) {
		smtpd_policy_client_free(set->pols[i].client);
		free(set->pols[i].endpoint);
	}
	map_list_close(set->login_maps);
	free(set->maps);
	free(set->pols);
	free(set);
}

/* Compile one list; problems go to diag. */
static unsigned
smtpd_ruleset_list(struct smtpd_restrict *rs, struct smtpd_ruleset *set,
    const struct config_list *words, struct smtpd_rule_list *out, struct buf *diag)
{
	struct buf scratch;
	unsigned problems = 0;
	size_t i;

	out->v = calloc(words->n + 1, sizeof(*out->v));
	if (out->v == NULL)
		fatal("out of memory (restrictions)");
	for (i = 0; i < words->n; i++) {
		struct smtpd_rule *r = &out->v[out->n];

		r->e = config_restrictions_lookup(words->items[i]);
		if (r->e == NULL)
			panic("restriction \"%s\" passed validation", words->items[i]);
		if (config_restrictions_takes_argument(r->e)) {
			if (i + 1 >= words->n)
				panic("restriction \"%s\" without argument passed validation", r->e->name);
			r->arg = strdup(words->items[++i]);
			if (r->arg == NULL)
				fatal("out of memory (restrictions)");
		}
		switch (r->e->arg) {
		case CONFIG_RESTRICTIONS_ARG_MAP:
			if ((r->map = smtpd_ruleset_map(set, r->arg, diag)) == NULL)
				problems++;
			break;
		case CONFIG_RESTRICTIONS_ARG_POLICY:
			if ((r->policy = smtpd_ruleset_policy(rs, set, r->arg, diag)) == NULL)
				problems++;
			break;
		case CONFIG_RESTRICTIONS_ARG_DNSBL:
			if (smtpd_dnsbl_spec_parse(r->arg, &r->dnsbl) < 0) {
				buf_append_printf(diag, "%s: bad zone \"%s\"\n", r->e->name, r->arg);
				problems++;
			}
			break;
		case CONFIG_RESTRICTIONS_ARG_SECONDS:
			buf_init(&scratch, 1024);
			if (!config_value_time(r->arg, 0, &r->sleep_ms, &scratch))
				problems++;
			r->sleep_ms *= 1000;
			buf_free(&scratch);
			break;
		default:
			break;
		}
		out->n++;
	}
	return problems;
}

/* Postfix refuses to run a relay policy that cannot refuse anything: an
 * empty smtpd_relay_restrictions with recipient restrictions that lack
 * every refusing rule would be an open relay. RCPT then gets 451 4.3.5. */
static bool
smtpd_ruleset_relay_safe(const struct smtpd_ruleset *set, enum config_listener l)
{
	const enum smtpd_list_kind kinds[] = { LK_RELAY, LK_RECIPIENT };
	const struct smtpd_rule_list *list;
	size_t i, k;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		list = &set->lists[l][kinds[k]];
		for (i = 0; i < list->n; i++)
			switch (list->v[i].e->code) {
			case CONFIG_RESTRICTIONS_REJECT_UNAUTH_DESTINATION:
			case CONFIG_RESTRICTIONS_DEFER_UNAUTH_DESTINATION:
			case CONFIG_RESTRICTIONS_REJECT:
			case CONFIG_RESTRICTIONS_DEFER:
			case CONFIG_RESTRICTIONS_DEFER_IF_PERMIT:
				return true;
			default:
				break;
			}
	}
	return false;
}

int
smtpd_restrict_config_check(const struct config *cfg, struct buf *errors)
{
	const struct config_restrictions_entry *e;
	const struct config_list *list;
	struct map_list *ml;
	struct map *m;
	unsigned bad = 0;
	size_t i, k;
	int l;

	for (l = 0; l < CONFIG_LISTENER_COUNT; l++) {
		for (k = 0; k < LK_COUNT; k++) {
			list = config_llist(cfg, (enum config_listener)l, smtpd_list_param[k]);
			for (i = 0; i + 1 < list->n; i++) {
				e = config_restrictions_lookup(list->items[i]);
				if (e == NULL || e->arg != CONFIG_RESTRICTIONS_ARG_MAP)
					continue;
				if (map_open(list->items[++i], 0, &m, errors) == MAP_OK)
					map_close(m);
				else
					bad++;
			}
		}
		if (map_list_open(config_llist(cfg, (enum config_listener)l,
		    P_SMTPD_SENDER_LOGIN_MAPS), 0, &ml, errors) == MAP_OK)
			map_list_close(ml);
		else
			bad++;
	}
	return bad > 0 ? -1 : 0;
}

static struct smtpd_ruleset *
smtpd_ruleset_new(struct smtpd_restrict *rs, struct buf *diag)
{
	struct smtpd_ruleset *set;
	unsigned problems = 0;
	size_t k;
	int l;

	set = calloc(1, sizeof(*set));
	if (set == NULL)
		fatal("out of memory (restrictions)");
	set->refs = 1;
	for (l = 0; l < CONFIG_LISTENER_COUNT; l++)
		for (k = 0; k < LK_COUNT; k++)
			problems += smtpd_ruleset_list(rs, set,
			    config_llist(rs->cfg, (enum config_listener)l, smtpd_list_param[k]),
			    &set->lists[l][k], diag);
	for (l = 0; l < CONFIG_LISTENER_COUNT; l++)
		set->relay_safe[l] = smtpd_ruleset_relay_safe(set, (enum config_listener)l);
	if (map_list_open(config_list(rs->cfg, P_SMTPD_SENDER_LOGIN_MAPS), 0, &set->login_maps,
	    diag) != MAP_OK)
		problems++;
	if (problems > 0) {
		smtpd_ruleset_free(set);
		return NULL;
	}
	return set;
}

static void
smtpd_restrict_reap(struct ev_timer *t)
{
	struct smtpd_restrict *rs = t->arg;
	struct smtpd_ruleset *set;

	while ((set = rs->dead) != NULL) {
		rs->dead = set->next_dead;
		smtpd_ruleset_free(set);
	}
}

/* Drop a reference. The set is freed from a timer, never inside the
 * callback chain of one of its own policy clients. */
static void
smtpd_ruleset_release(struct smtpd_restrict *rs, struct smtpd_ruleset *set)
{
	if (--set->refs > 0)
		return;
	set->next_dead = rs->dead;
	rs->dead = set;
	evloop_timer_start(rs->loop, &rs->reaper, SMTPD_RESTRICT_REAP_MS);
}

struct smtpd_restrict *
smtpd_restrict_new(struct evloop *loop, const struct config *cfg, struct addr_resolver *addr,
    struct buf *diag)
{
	struct resolver_options opt;
	struct smtpd_restrict *rs;
	char err[256];

	rs = calloc(1, sizeof(*rs));
	if (rs == NULL)
		fatal("out of memory (restrictions)");
	rs->loop = loop;
	rs->cfg = cfg;
	rs->addr = addr;
	evloop_timer_init(&rs->reaper, smtpd_restrict_reap, rs);
	resolver_options_from_config(&opt, cfg);
	/* DNSBLs answer with A records whatever inet_protocols says: smtpd
	 * connects nowhere, it only asks. */
	opt.family = RESOLVER_FAMILY_ALL;
	rs->resolver = resolver_new(loop, &opt, err, sizeof(err));
	if (rs->resolver == NULL) {
		buf_append_printf(diag, "resolver: %s\n", err);
		free(rs);
		return NULL;
	}
	rs->set = smtpd_ruleset_new(rs, diag);
	if (rs->set == NULL) {
		resolver_free(rs->resolver);
		free(rs);
		return NULL;
	}
	return rs;
}

int
smtpd_restrict_reload(struct smtpd_restrict *rs, const struct config *cfg,
    struct addr_resolver *addr, struct buf *diag)
{
	const struct config *old = rs->cfg;
	struct smtpd_ruleset *set;

	rs->cfg = cfg;
	rs->addr = addr;
	set = smtpd_ruleset_new(rs, diag);
	if (set == NULL) {
		/* The old lists stay; their words are read against the new
		 * configuration (domains, networks), which is the one in force. */
		(void)old;
		return -1;
	}
	smtpd_ruleset_release(rs, rs->set);
	rs->set = set;
	return 0;
}

void
smtpd_restrict_free(struct smtpd_restrict *rs)
{
	if (rs == NULL)
		return;
	smtpd_ruleset_release(rs, rs->set);
	evloop_timer_stop(rs->loop, &rs->reaper);
	smtpd_restrict_reap(&rs->reaper);
	resolver_free(rs->resolver);
	free(rs);
}

struct resolver *
smtpd_restrict_resolver(struct smtpd_restrict *rs)
{
	return rs->resolver;
}

/* The lists a stage runs, in Postfix's order. */
static size_t
smtpd_stage_lists(const struct config *cfg, enum config_listener l,
    enum smtpd_restrict_stage stage, enum smtpd_list_kind *seq)
{
	bool delay = config_lbool(cfg, l, P_SMTPD_DELAY_REJECT);
	size_t n = 0;

	switch (stage) {
	case SMTPD_RESTRICT_CONNECT:
		if (!delay)
			seq[n++] = LK_CLIENT;
		break;
	case SMTPD_RESTRICT_HELO:
		if (!delay)
			seq[n++] = LK_HELO;
		break;
	case SMTPD_RESTRICT_MAIL:
		if (!delay)
			seq[n++] = LK_SENDER;
		break;
	case SMTPD_RESTRICT_RCPT:
		if (delay) {
			seq[n++] = LK_CLIENT;
			seq[n++] = LK_HELO;
			seq[n++] = LK_SENDER;
		}
		seq[n++] = LK_RELAY;
		seq[n++] = LK_RECIPIENT;
		break;
	case SMTPD_RESTRICT_DATA:
		seq[n++] = LK_DATA;
		break;
	case SMTPD_RESTRICT_EOD:
		seq[n++] = LK_EOD;
		break;
	}
	return n;
}

bool
smtpd_restrict_stage_active(const struct smtpd_restrict *rs, enum config_listener l,
    enum smtpd_restrict_stage stage)
{
	enum smtpd_list_kind seq[LK_COUNT];
	size_t i, n = smtpd_stage_lists(rs->cfg, l, stage, seq);

	/* RCPT always runs: the relay check and its safety net. */
	if (stage == SMTPD_RESTRICT_RCPT)
		return true;
	for (i = 0; i < n; i++)
		if (rs->set->lists[l][seq[i]].n > 0)
			return true;
	return false;
}

/* ---- access maps ---- */

/* Append key (NUL-terminated) to keys unless full. */
static void
smtpd_keys_add(struct buf *keys, size_t *n, const char *key, size_t len)
{
	if (*n >= SMTPD_RESTRICT_KEYS_MAX || len == 0 || len > MAP_KEY_MAX)
		return;
	if (buf_append(keys, key, len) == BUF_OK && buf_append_char(keys, '\0') == BUF_OK)
		(*n)++;
}

/* name, then each parent as "parent" and ".parent" (access(5): with
 * smtpd_access_maps in parent_domain_matches_subdomains, Postfix's
 * classic default, "example.com" matches subdomains; ".example.com" is
 * the other spelling; we accept both). A literal is looked up as is. */
static void
smtpd_keys_domain(struct buf *keys, size_t *n, const char *name)
{
	char dotted[MAP_KEY_MAX + 2];
	const char *p = name;
	size_t len = strlen(name);

	if (len > 0 && name[len - 1] == '.')
		len--;
	smtpd_keys_add(keys, n, name, len);
	if (name[0] == '[')
		return;
	while ((p = memchr(p, '.', len - (size_t)(p - name))) != NULL) {
		p++;
		if ((size_t)(p - name) >= len)
			break;
		smtpd_keys_add(keys, n, p, len - (size_t)(p - name));
		if (len - (size_t)(p - name) + 1 < sizeof(dotted)) {
			dotted[0] = '.';
			memcpy(dotted + 1, p, len - (size_t)(p - name));
			smtpd_keys_add(keys, n, dotted, len - (size_t)(p - name) + 1);
		}
	}
}

size_t
smtpd_restrict_domain_keys(const char *name, struct buf *keys)
{
	size_t n = 0;

	smtpd_keys_domain(keys, &n, name);
	return n;
}

/* user+ext@domain, user@domain, the domain walk, user+ext@, user@. */
static void
smtpd_keys_address(struct buf *keys, size_t *n, const struct mailaddr *a, const char *delims)
{
	char key[MAILADDR_PATH_MAX + 2];
	size_t llen = strlen(a->local);
	size_t base = addr_split_extension(a->local, llen, delims, NULL);

	if (a->postmaster) {
		smtpd_keys_add(keys, n, a->addr, strlen(a->addr));
		return;
	}
	smtpd_keys_add(keys, n, a->addr, strlen(a->addr));
	if (base < llen) {
		snprintf(key, sizeof(key), "%.*s@%s", (int)base, a->local, a->domain);
		smtpd_keys_add(keys, n, key, strlen(key));
	}
	smtpd_keys_domain(keys, n, a->domain);
	snprintf(key, sizeof(key), "%s@", a->local);
	smtpd_keys_add(keys, n, key, strlen(key));
	if (base < llen) {
		snprintf(key, sizeof(key), "%.*s@", (int)base, a->local);
		smtpd_keys_add(keys, n, key, strlen(key));
	}
}

static enum smtpd_step smtpd_restrict_apply_action(struct smtpd_restrict_check *c,
    const char *value, const char *source, const char *name, const char *klass);

/* An access map that cannot be read: 451 4.3.0, the sender retries. */
static enum smtpd_step
smtpd_restrict_map_error(struct smtpd_restrict_check *c, const struct smtpd_rule *r,
    const char *name, const char *err)
{
	log_warning("%s: %s", r->e->name, err);
	c->res.verdict = SMTPD_VERDICT_DEFER;
	c->res.reply.code = 451;
	c->res.reply.enh = NULL;
	snprintf(c->res.reply.text, sizeof(c->res.reply.text), "4.3.0 <%s>: Temporary lookup failure",
	    name);
	return STEP_STOP;
}

static enum smtpd_step
smtpd_restrict_access(struct smtpd_restrict_check *c, const struct smtpd_rule *r)
{
	char ckeys[8][64];
	struct buf keys, value;
	const char *name = NULL, *klass = NULL, *k;
	char err[512];
	enum smtpd_step step = STEP_NEXT;
	enum map_result mr = MAP_NOTFOUND;
	size_t n = 0, i, nc;

	buf_init(&keys, 64 * 1024);
	switch (r->e->code) {
	case CONFIG_RESTRICTIONS_CHECK_CLIENT_ACCESS:
		name = c->namaddr;
		klass = "Client host";
		if (strcmp(c->client_name, "unknown") != 0)
			smtpd_keys_domain(&keys, &n, c->client_name);
		nc = smtpd_restrict_client_keys(c->client_addr, ckeys, 8);
		for (i = 0; i < nc; i++)
			smtpd_keys_add(&keys, &n, ckeys[i], strlen(ckeys[i]));
		break;
	case CONFIG_RESTRICTIONS_CHECK_HELO_ACCESS:
		name = c->helo;
		klass = "Helo command";
		if (c->helo[0] != '\0')
			smtpd_keys_domain(&keys, &n, c->helo);
		break;
	case CONFIG_RESTRICTIONS_CHECK_SENDER_ACCESS:
		if (c->f.sender == NULL)
			break;
		name = c->sender.addr;
		klass = "Sender address";
		if (c->sender.null) {
			k = config_lstr(c->rs->cfg, c->f.listener, P_SMTPD_NULL_ACCESS_LOOKUP_KEY);
			smtpd_keys_add(&keys, &n, k, strlen(k));
		} else {
			smtpd_keys_address(&keys, &n, &c->sender,
			    config_str(c->rs->cfg, P_RECIPIENT_DELIMITER));
		}
		break;
	default:	/* CHECK_RECIPIENT_ACCESS */
		if (c->f.rcpt == NULL)
			break;
		name = c->rcpt.addr;
		klass = "Recipient address";
		smtpd_keys_address(&keys, &n, &c->rcpt, config_str(c->rs->cfg, P_RECIPIENT_DELIMITER));
		break;
	}
	if (!map_fixed(r->map) && n > 1) {
		/* A regexp: or cidr: table sees the whole string only
		 * (access(5)): the client's name and address, else the
		 * first key, never parent domains, subnets or parts. */
		if (r->e->code == CONFIG_RESTRICTIONS_CHECK_CLIENT_ACCESS) {
			buf_reset(&keys);
			n = 0;
			if (strcmp(c->client_name, "unknown") != 0)
				smtpd_keys_add(&keys, &n, c->client_name, strlen(c->client_name));
			smtpd_keys_add(&keys, &n, c->client_addr, strlen(c->client_addr));
		} else {
			n = 1;
		}
	}
	buf_init(&value, MAP_VALUE_MAX);
	k = buf_data(&keys);
	for (i = 0; i < n && mr == MAP_NOTFOUND; i++, k += strlen(k) + 1)
		mr = map_lookup(r->map, k, &value, err, sizeof(err));
	if (mr == MAP_FOUND) {
		char source[MAP_SPEC_MAX + 64];

		snprintf(source, sizeof(source), "%s %s", r->e->name, r->arg);
		step = smtpd_restrict_apply_action(c, buf_cstr(&value), source, name, klass);
	} else if (mr == MAP_ERROR) {
		step = smtpd_restrict_map_error(c, r, name, err);
	}
	buf_free(&value);
	buf_free(&keys);
	return step;
}

/*
 * FILTER transport:destination, REDIRECT user@domain, BCC user@domain:
 * remembered for the whole message, the last one of each kind winning
 * (Postfix 3.0's BCC too), and logged in Postfix's words ("<a@b>:
 * Recipient address triggers FILTER smtp:[127.0.0.1]:10024"); the list
 * goes on as after DUNNO. A malformed argument is our trouble: 451 4.3.5,
 * where Postfix warns and goes on, so that a typo never lets mail bypass
 * a filter silently (doc/restrictions.md).
 */
static enum smtpd_step
smtpd_restrict_message_action(struct smtpd_restrict_check *c, const struct smtpd_action *a,
    const char *source, const char *name, const char *klass)
{
	char what[SMTPD_RESTRICT_TEXT_LOG_MAX], why[160], *dst;
	const char *bad = NULL, *arg = a->text, *word, *logword;
	struct mailaddr m;
	size_t dstsz;

	switch (a->kind) {
	case SMTPD_ACTION_FILTER:
		word = "FILTER", logword = "filter";
		dst = c->res.filter, dstsz = sizeof(c->res.filter);
		if (!config_filter_valid(a->text, strlen(a->text), why, sizeof(why)))
			bad = why;
		break;
	case SMTPD_ACTION_REDIRECT:
		word = "REDIRECT", logword = "redirect";
		dst = c->res.redirect, dstsz = sizeof(c->res.redirect);
		break;
	default:
		word = "BCC", logword = "bcc";
		dst = c->res.bcc, dstsz = sizeof(c->res.bcc);
		break;
	}
	if (a->kind != SMTPD_ACTION_FILTER && smtpd_restrict_action_address(a->text, &m, &bad))
		arg = m.addr;
	if (bad != NULL) {
		log_warning("%s: %s %s: %s", source, word, a->text, bad);
		return smtpd_restrict_trouble(c, "4.3.5", "Server configuration error");
	}
	snprintf(dst, dstsz, "%s", arg);
	snprintf(what, sizeof(what), "<%s>: %s triggers %s %s", name, klass, word, arg);
	smtpd_restrict_log(c, logword, 0, what);
	return STEP_NEXT;
}

/* An access(5) action, from a map or a policy server. */
static enum smtpd_step
smtpd_restrict_apply_action(struct smtpd_restrict_check *c, const char *value, const char *source,
    const char *name, const char *klass)
{
	struct smtpd_action a;
	char what[SMTPD_RESTRICT_TEXT_LOG_MAX];
	const char *dsn;
	size_t hl;

	smtpd_restrict_action_parse(value, &a);
	switch (a.kind) {
	case SMTPD_ACTION_OK:
		return STEP_PERMIT;
	case SMTPD_ACTION_DUNNO:
		return STEP_NEXT;
	case SMTPD_ACTION_REJECT:
	case SMTPD_ACTION_DEFER:
		dsn = a.dsn[0] != '\0' ? a.dsn : (a.kind == SMTPD_ACTION_REJECT ? "5.7.1" : "4.7.1");
		if (a.code == 0)
			a.code = smtpd_restrict_code(c, a.kind == SMTPD_ACTION_REJECT ?
			    P_ACCESS_MAP_REJECT_CODE : P_ACCESS_MAP_DEFER_CODE);
		return smtpd_restrict_refuse(c, a.code, dsn, "<%s>: %s rejected: %s", name, klass,
		    a.text[0] != '\0' ? a.text : "Access denied");
	case SMTPD_ACTION_DEFER_IF_REJECT:
	case SMTPD_ACTION_DEFER_IF_PERMIT:
		return smtpd_restrict_defer_if(c, a.kind == SMTPD_ACTION_DEFER_IF_PERMIT, 450,
		    a.dsn[0] != '\0' ? a.dsn : "4.7.1", "<%s>: %s rejected: %s", name, klass,
		    a.text[0] != '\0' ? a.text : "Service is unavailable");
	case SMTPD_ACTION_PREPEND:
		/* RFC 5322 section 2.2: a field name of printable characters
		 * other than ':' and space, then ':'. */
		hl = strcspn(a.text, ": \t");
		if (hl == 0 || a.text[hl] != ':' || strpbrk(a.text, "\r\n") != NULL) {
			log_warning("%s: PREPEND needs \"Header: text\", got \"%s\"", source, a.text);
			return smtpd_restrict_trouble(c, "4.3.5", "Server configuration error");
		}
		if (c->prepend_len + strlen(a.text) + 2 > sizeof(c->res.prepend)) {
			log_warning("%s: too many PREPEND headers; this one is dropped", source);
			return STEP_NEXT;
		}
		memcpy(c->res.prepend + c->prepend_len, a.text, strlen(a.text));
		c->prepend_len += strlen(a.text);
		c->res.prepend[c->prepend_len++] = '\n';
		c->res.prepend[c->prepend_len] = '\0';
		return STEP_NEXT;
	case SMTPD_ACTION_DISCARD:
	case SMTPD_ACTION_HOLD:
		/* Postfix's words: "<name>: Recipient address triggers HOLD
		 * action". HOLD goes on as after DUNNO (the message goes to
		 * the hold queue); DISCARD ends the list as OK. */
		snprintf(what, sizeof(what), "<%s>: %s %s", name, klass, a.text[0] != '\0' ? a.text :
		    a.kind == SMTPD_ACTION_HOLD ? "triggers HOLD action" : "triggers DISCARD action");
		if (a.kind == SMTPD_ACTION_HOLD) {
			c->res.hold = true;
			smtpd_restrict_log(c, "hold", 0, what);
			return STEP_NEXT;
		}
		c->res.discard = true;
		smtpd_restrict_log(c, "discard", 0, what);
		return STEP_PERMIT;
	case SMTPD_ACTION_WARN:
	case SMTPD_ACTION_INFO:
		smtpd_restrict_log(c, a.kind == SMTPD_ACTION_WARN ? "warn" : "info", 0, a.text);
		return STEP_NEXT;
	case SMTPD_ACTION_FILTER:
	case SMTPD_ACTION_REDIRECT:
	case SMTPD_ACTION_BCC:
		return smtpd_restrict_message_action(c, &a, source, name, klass);
	default:
		log_warning("%s: %s: \"%s\"", source, a.why, value);
		return smtpd_restrict_trouble(c, "4.3.5", "Server configuration error");
	}
}

/* ---- DNS-based rules ---- */

static void
smtpd_restrict_dns_cb(const struct resolver_result *res, void *arg);

static enum smtpd_step
smtpd_restrict_dns(struct smtpd_restrict_check *c, const struct smtpd_rule *r, int phase,
    struct resolver_query *(*fn)(struct resolver *, const char *, resolver_cb *, void *))
{
	c->rule = r;
	c->phase = phase;
	c->q = fn(c->rs->resolver, c->dns_name, smtpd_restrict_dns_cb, c);
	return STEP_WAIT;
}

/* reject_unknown_{sender,recipient}_domain: MX, then A/AAAA. */
static enum smtpd_step
smtpd_restrict_unknown_domain_start(struct smtpd_restrict_check *c, const struct smtpd_rule *r,
    const struct mailaddr *a)
{
	enum addr_class klass;
	char err[256];

	if (a == NULL || a->null || a->postmaster || a->literal || a->domain_lc[0] == '\0')
		return STEP_NEXT;
	/* Postfix skips the domains it is the final destination for. */
	if (c->rs->addr != NULL &&
	    addr_resolver_class(c->rs->addr, a->domain_lc, &klass, err, sizeof(err)) == 0 &&
	    (klass == ADDR_CLASS_LOCAL || klass == ADDR_CLASS_VIRTUAL_ALIAS ||
	    klass == ADDR_CLASS_VIRTUAL_MAILBOX))
		return STEP_NEXT;
	if ((size_t)snprintf(c->dns_name, sizeof(c->dns_name), "%s", a->domain_lc) >=
	    sizeof(c->dns_name))
		return smtpd_restrict_refuse(c, smtpd_restrict_code(c, P_UNKNOWN_ADDRESS_REJECT_CODE),
		    "4.1.2", "<%s>: Domain not found", a->addr);
	return smtpd_restrict_dns(c, r, 1, resolver_mx);
}

static enum smtpd_step
smtpd_restrict_unknown_domain_done(struct smtpd_restrict_check *c, const struct resolver_result *res)
{
	bool sender = c->rule->e->code == CONFIG_RESTRICTIONS_REJECT_UNKNOWN_SENDER_DOMAIN;
	const char *addr = sender ? c->sender.addr : c->rcpt.addr;
	const char *klass = sender ? "Sender address" : "Recipient address";
	const char *dsn = sender ? "4.1.8" : "4.1.2";

	if (res->status == RESOLVER_OK) {
		/* RFC 7505: a null MX says the domain takes no mail. */
		if (c->phase == 1 && res->n_mx == 1 && strcmp(res->mx[0].exchange, ".") == 0)
			return smtpd_restrict_refuse(c, sender ? 550 : 556, sender ? "5.7.27" : "5.1.10",
			    "<%s>: %s rejected: Domain %s does not accept mail (nullMX)", addr, klass,
			    c->dns_name);
		return STEP_NEXT;
	}
	if (res->status == RESOLVER_NODATA && c->phase == 1)
		return smtpd_restrict_dns(c, c->rule, 2, resolver_host);
	if (res->status == RESOLVER_TEMPFAIL) {
		if (strcmp(config_lstr(c->rs->cfg, c->f.listener, P_UNKNOWN_ADDRESS_TEMPFAIL_ACTION),
		    "defer") == 0)
			return smtpd_restrict_refuse(c, 450, dsn, "<%s>: %s rejected: Domain not found",
			    addr, klass);
		return smtpd_restrict_defer_if(c, true, 450, dsn, "<%s>: %s rejected: Domain not found",
		    addr, klass);
	}
	return smtpd_restrict_refuse(c, smtpd_restrict_code(c, P_UNKNOWN_ADDRESS_REJECT_CODE), dsn,
	    "<%s>: %s rejected: Domain not found", addr, klass);
}

/* reject_unknown_helo_hostname: A/AAAA, then MX. */
static enum smtpd_step
smtpd_restrict_unknown_helo_done(struct smtpd_restrict_check *c, const struct resolver_result *res)
{
	if (res->status == RESOLVER_OK)
		return STEP_NEXT;
	if (res->status == RESOLVER_NODATA && c->phase == 1)
		return smtpd_restrict_dns(c, c->rule, 2, resolver_mx);
	if (res->status == RESOLVER_TEMPFAIL)
		return smtpd_restrict_defer_if(c, true, 450, "4.7.1",
		    "<%s>: Helo command rejected: Host not found", c->helo);
	return smtpd_restrict_refuse(c, smtpd_restrict_code(c, P_UNKNOWN_HOSTNAME_REJECT_CODE),
	    "4.7.1", "<%s>: Helo command rejected: Host not found", c->helo);
}

/*
 * reject_unknown_reverse_client_hostname (no PTR name) and
 * reject_unknown_client_hostname (no PTR name, or it does not resolve back
 * to the address): the session's names, looked up once at connect
 * (smtpd_peer.h), never again here. As Postfix: unknown_client_reject_code
 * when the lookup failed for good, 450 when it failed for now, and that at
 * once, not as a defer_if_permit: a later rule may depend on the name (a
 * check_client_access by name), and its verdict would be wrong without
 * one (Postfix's smtpd_check.c says why in its comment on deferrals).
 * 4.7.25 (RFC 7372) and 4.7.1 are Postfix's codes.
 */
static enum smtpd_step
smtpd_restrict_unknown_client(struct smtpd_restrict_check *c, const struct smtpd_rule *r)
{
	bool reverse = r->e->code == CONFIG_RESTRICTIONS_REJECT_UNKNOWN_REVERSE_CLIENT_HOSTNAME;
	enum smtpd_peer_status st = reverse ? c->f.reverse_name_status : c->f.name_status;
	int code;

	if (st == SMTPD_PEER_OK)
		return STEP_NEXT;
	code = st == SMTPD_PEER_PERM || st == SMTPD_PEER_FORGED ?
	    smtpd_restrict_code(c, P_UNKNOWN_CLIENT_REJECT_CODE) : 450;
	return smtpd_restrict_refuse(c, code, reverse ? "4.7.1" : "4.7.25",
	    "Client host rejected: cannot find your %s, [%s]",
	    reverse ? "reverse hostname" : "hostname", c->client_addr);
}

static void
smtpd_restrict_dns_cb(const struct resolver_result *res, void *arg)
{
	struct smtpd_restrict_check *c = arg;
	enum smtpd_step step;

	c->q = NULL;
	switch (c->rule->e->code) {
	case CONFIG_RESTRICTIONS_REJECT_UNKNOWN_SENDER_DOMAIN:
	case CONFIG_RESTRICTIONS_REJECT_UNKNOWN_RECIPIENT_DOMAIN:
		step = smtpd_restrict_unknown_domain_done(c, res);
		break;
	default:	/* REJECT_UNKNOWN_HELO_HOSTNAME */
		step = smtpd_restrict_unknown_helo_done(c, res);
		break;
	}
	if (step != STEP_WAIT)
		smtpd_restrict_resume(c, step);
}

/* ---- DNS lists and DNS-based access maps (smtpd_dnsbl, smtpd_dnsaccess) ---- */

/* What a DNS-based word looks at (NULL: nothing, the word is skipped),
 * the class its replies name and the name they quote. */
static const char *
smtpd_restrict_dns_subject(const struct smtpd_restrict_check *c, enum config_restrictions_code code,
    const char **klass, const char **reply_name)
{
	switch (code) {
	case CONFIG_RESTRICTIONS_REJECT_RBL_CLIENT:
	case CONFIG_RESTRICTIONS_PERMIT_DNSWL_CLIENT:
		*klass = "Client host";
		*reply_name = c->client_addr;
		return c->client_addr;
	case CONFIG_RESTRICTIONS_REJECT_RHSBL_CLIENT:
	case CONFIG_RESTRICTIONS_PERMIT_RHSWL_CLIENT:
	case CONFIG_RESTRICTIONS_CHECK_CLIENT_MX_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_CLIENT_NS_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_CLIENT_A_ACCESS:
		*klass = "Client host";
		*reply_name = code == CONFIG_RESTRICTIONS_REJECT_RHSBL_CLIENT ||
		    code == CONFIG_RESTRICTIONS_PERMIT_RHSWL_CLIENT ? c->client_name : c->namaddr;
		return strcasecmp(c->client_name, "unknown") != 0 ? c->client_name : NULL;
	case CONFIG_RESTRICTIONS_REJECT_RHSBL_REVERSE_CLIENT:
	case CONFIG_RESTRICTIONS_CHECK_REVERSE_CLIENT_MX_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_REVERSE_CLIENT_NS_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_REVERSE_CLIENT_A_ACCESS:
		*klass = "Unverified Client host";
		*reply_name = code == CONFIG_RESTRICTIONS_REJECT_RHSBL_REVERSE_CLIENT ? c->reverse_name :
		    c->namaddr;
		return strcasecmp(c->reverse_name, "unknown") != 0 ? c->reverse_name : NULL;
	case CONFIG_RESTRICTIONS_REJECT_RHSBL_HELO:
	case CONFIG_RESTRICTIONS_CHECK_HELO_MX_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_HELO_NS_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_HELO_A_ACCESS:
		*klass = "Helo command";
		*reply_name = c->helo;
		return c->helo[0] != '\0' ? c->helo : NULL;
	case CONFIG_RESTRICTIONS_REJECT_RHSBL_SENDER:
	case CONFIG_RESTRICTIONS_CHECK_SENDER_MX_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_SENDER_NS_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_SENDER_A_ACCESS:
		*klass = "Sender address";
		*reply_name = c->sender.addr;
		return c->f.sender != NULL && !c->sender.null ? c->sender.addr : NULL;
	default:	/* the recipient words */
		*klass = "Recipient address";
		*reply_name = c->rcpt.addr;
		return c->f.rcpt != NULL && c->rcpt.addr[0] != '\0' ? c->rcpt.addr : NULL;
	}
}

static bool
smtpd_restrict_dns_permits(enum config_restrictions_code code)
{
	return code == CONFIG_RESTRICTIONS_PERMIT_DNSWL_CLIENT ||
	    code == CONFIG_RESTRICTIONS_PERMIT_RHSWL_CLIENT;
}

/* A listed name or address: default_rbl_reply, expanded. */
static enum smtpd_step
smtpd_restrict_rbl_refuse(struct smtpd_restrict_check *c, const char *what, const char *klass,
    const char *reason)
{
	char expanded[CONFIG_RBL_REPLY_MAX + 1], why[256], dsn[16];
	const char *template = config_lstr(c->rs->cfg, c->f.listener, P_DEFAULT_RBL_REPLY), *text;
	struct config_rbl_reply_vars v = {
		.rbl_code = smtpd_restrict_code(c, P_MAPS_RBL_REJECT_CODE),
		.rbl_domain = c->rule->dnsbl.zone, .rbl_reason = reason, .rbl_what = what,
		.rbl_class = klass, .client = c->namaddr, .client_address = c->client_addr,
		.client_name = c->client_name, .reverse_client_name = c->reverse_name,
		.helo_name = c->helo, .sender = c->f.sender != NULL ? c->sender.addr : NULL,
		.recipient = c->f.rcpt != NULL ? c->rcpt.addr : NULL,
	};
	int code;

	/* config_rbl_reply_check() passed this template at load time, and
	 * a checked template expands whatever the values. */
	if (config_rbl_reply_expand(template, &v, expanded, sizeof(expanded), why,
	    sizeof(why)) < 0)
		panic("default_rbl_reply: %s, though checked at load", why);
	if (smtpd_dnsbl_reply_split(expanded, &code, dsn, &text) < 0) {
		log_warning("rbl response code configuration error: %s", expanded);
		return smtpd_restrict_refuse(c, 450, "4.7.1", "Service unavailable");
	}
	return smtpd_restrict_refuse(c, code, dsn, "%s", text);
}

static void
smtpd_restrict_dnsbl_cb(void *arg, enum smtpd_dnsbl_status st, const char *reason,
    const char *query)
{
	struct smtpd_restrict_check *c = arg;
	enum config_restrictions_code code = c->rule->e->code;
	const char *klass, *what, *reply_name;
	enum smtpd_step step = STEP_NEXT;

	c->dl = NULL;
	what = smtpd_restrict_dns_subject(c, code, &klass, &reply_name);
	if (st == SMTPD_DNSBL_TEMPFAIL) {
		/* Postfix gives the client the benefit of the doubt: a DNS list
		 * that cannot answer must not stop all mail. An allow list that
		 * cannot answer must not let a later refusal be final either. */
		log_warning("%s: RBL lookup error: %s", query, reason);
		if (smtpd_restrict_dns_permits(code))
			step = smtpd_restrict_defer_if(c, false, 450, "4.7.1",
			    "<%s>: %s rejected: Service unavailable", what, klass);
	} else if (st == SMTPD_DNSBL_LISTED) {
		step = smtpd_restrict_dns_permits(code) ? STEP_PERMIT :
		    smtpd_restrict_rbl_refuse(c, what, klass, reason);
	}
	smtpd_restrict_resume(c, step);
}

/* reject_rbl_client, reject_rhsbl_*, permit_dnswl_client, permit_rhswl_client. */
static enum smtpd_step
smtpd_restrict_dnsxl(struct smtpd_restrict_check *c, const struct smtpd_rule *r)
{
	enum config_restrictions_code code = r->e->code;
	const char *klass, *reply_name, *what = smtpd_restrict_dns_subject(c, code, &klass, &reply_name);

	if (what == NULL)
		return STEP_NEXT;
	/* Postfix: an allow list never permits a recipient that
	 * reject_unauth_destination would refuse. */
	if (smtpd_restrict_dns_permits(code) && c->stage == SMTPD_RESTRICT_RCPT && c->f.rcpt != NULL &&
	    smtpd_restrict_relay_decide(c->rs->cfg, c->rs->addr, &c->rcpt) != SMTPD_RELAY_AUTH)
		return STEP_NEXT;
	c->rule = r;
	if (code == CONFIG_RESTRICTIONS_REJECT_RBL_CLIENT || code == CONFIG_RESTRICTIONS_PERMIT_DNSWL_CLIENT)
		c->dl = smtpd_dnsbl_start(c->rs->resolver, &r->dnsbl, c->f.family, c->f.addr,
		    smtpd_restrict_dnsbl_cb, c);
	else
		c->dl = smtpd_dnsbl_start_domain(c->rs->resolver, &r->dnsbl, what,
		    smtpd_restrict_dnsbl_cb, c);
	return c->dl != NULL ? STEP_WAIT : STEP_NEXT;
}

static void
smtpd_restrict_dnsaccess_cb(void *arg, struct smtpd_dnsaccess_walk *w)
{
	struct smtpd_restrict_check *c = arg;
	const struct smtpd_rule *r = c->rule;
	const char *klass, *reply_name, *what;
	char source[MAP_SPEC_MAX + 64];
	struct smtpd_action a;
	enum smtpd_step step = STEP_NEXT;

	c->da = NULL;
	what = smtpd_restrict_dns_subject(c, r->e->code, &klass, &reply_name);
	if (w->result == SMTPD_DNSACCESS_ERROR) {
		step = smtpd_restrict_map_error(c, r, reply_name, w->err);
	} else if (w->result == SMTPD_DNSACCESS_FOUND) {
		smtpd_restrict_action_parse(buf_cstr(&w->value), &a);
		if (a.kind == SMTPD_ACTION_OK) {
			/* Postfix's forbid_whitelist: a host of a name says
			 * nothing good about the mail. */
			log_warning("restriction %s returns OK for %s", r->e->name, what);
			log_warning("this is not allowed for security reasons");
			log_warning("use DUNNO instead of OK if you want to make an exception");
			step = smtpd_restrict_trouble(c, "4.3.5", "Server configuration error");
		} else {
			snprintf(source, sizeof(source), "%s %s", r->e->name, r->arg);
			step = smtpd_restrict_apply_action(c, buf_cstr(&w->value), source, reply_name,
			    klass);
		}
	}
	smtpd_restrict_resume(c, step);
}

static enum smtpd_step
smtpd_restrict_dnsaccess(struct smtpd_restrict_check *c, const struct smtpd_rule *r,
    enum smtpd_dnsaccess_type type)
{
	const char *klass, *reply_name, *what = smtpd_restrict_dns_subject(c, r->e->code, &klass,
	    &reply_name);
	char subject[SMTPD_DNSACCESS_SUBJECT_MAX];

	if (what == NULL)
		return STEP_NEXT;
	snprintf(subject, sizeof(subject), "%s %s", klass, reply_name);
	c->rule = r;
	c->da = smtpd_dnsaccess_start(c->rs->loop, c->rs->resolver, type, r->map, what, subject,
	    smtpd_restrict_dnsaccess_cb, c);
	return STEP_WAIT;
}

/* ---- policy service ---- */

static const char *
smtpd_restrict_policy_state(const struct smtpd_restrict_check *c)
{
	switch (c->stage) {
	case SMTPD_RESTRICT_CONNECT:
		return "CONNECT";
	case SMTPD_RESTRICT_HELO:
		return c->f.esmtp ? "EHLO" : "HELO";
	case SMTPD_RESTRICT_MAIL:
		return "MAIL";
	case SMTPD_RESTRICT_RCPT:
		return "RCPT";
	case SMTPD_RESTRICT_DATA:
		return "DATA";
	default:
		return "END-OF-MESSAGE";
	}
}

static void
smtpd_restrict_policy_cb(void *arg, enum smtpd_policy_status st, const char *action)
{
	struct smtpd_restrict_check *c = arg;
	enum smtpd_list_kind k = smtpd_current_list(c);
	const char *value = action;
	enum smtpd_step step;

	c->pr = NULL;
	if (st != SMTPD_POLICY_OK) {
		/* action names the endpoint: "inet:127.0.0.1:10023: timeout ..." */
		log_warning("problem talking to server %s", action);
		value = config_lstr(c->rs->cfg, c->f.listener, P_SMTPD_POLICY_SERVICE_DEFAULT_ACTION);
	}
	step = smtpd_restrict_apply_action(c, value, "policy query", smtpd_list_name(c, k),
	    smtpd_list_class[k]);
	smtpd_restrict_resume(c, step);
}

static enum smtpd_step
smtpd_restrict_policy(struct smtpd_restrict_check *c, const struct smtpd_rule *r)
{
	struct smtpd_policy_attrs a;
	struct buf req;

	memset(&a, 0, sizeof(a));
	a.protocol_state = smtpd_restrict_policy_state(c);
	a.protocol_name = c->f.esmtp ? "ESMTP" : "SMTP";
	a.helo_name = c->helo;
	a.queue_id = c->f.queue_id != NULL ? c->queue_id : "";
	a.sender = c->f.sender != NULL ? c->sender.addr : "";
	a.recipient = c->f.rcpt != NULL ? c->rcpt.addr : "";
	a.recipient_count = c->stage >= SMTPD_RESTRICT_DATA ? c->f.recipient_count : 0;
	a.client_address = c->client_addr;
	a.client_name = c->client_name;
	a.reverse_client_name = c->reverse_name;
	a.client_port = c->f.client_port;
	a.server_address = c->server_addr;
	a.server_port = c->f.server_port;
	a.instance = c->instance;
	a.sasl_method = c->sasl_method;
	a.sasl_username = c->sasl_username;
	a.sasl_sender = c->sasl_sender;
	a.size = c->f.size;
	a.encryption_protocol = c->enc_protocol;
	a.encryption_cipher = c->enc_cipher;
	a.encryption_keysize = c->f.encryption_keysize;
	a.policy_context = config_listener_name(c->f.listener);
	a.mail_version = "tern";
	buf_init(&req, SMTPD_POLICY_REQUEST_MAX);
	if (smtpd_policy_encode(&a, &req) != BUF_OK)
		panic("policy request larger than %u bytes", SMTPD_POLICY_REQUEST_MAX);
	c->rule = r;
	c->pr = smtpd_policy_ask(r->policy, buf_data(&req), buf_len(&req), smtpd_restrict_policy_cb, c);
	buf_free(&req);
	return STEP_WAIT;
}

static void
smtpd_restrict_sleep_done(struct ev_timer *t)
{
	smtpd_restrict_resume(t->arg, STEP_NEXT);
}

/* ---- the other rules ---- */

static enum smtpd_step
smtpd_restrict_unlisted(struct smtpd_restrict_check *c, const struct mailaddr *a, bool sender)
{
	struct addr_expansion x;
	char reply[ADDR_REPLY_MAX];
	const char *marker = "Recipient address rejected: ", *why, *text;
	enum addr_verdict v;
	int code;

	if (a == NULL || a->null || c->rs->addr == NULL)
		return STEP_NEXT;
	addr_expansion_init(&x);
	v = addr_resolve(c->rs->addr, a->addr, &x, reply, sizeof(reply));
	addr_expansion_free(&x);
	if (v == ADDR_OK)
		return STEP_NEXT;
	/* reply: "550 5.1.1 <a>: Recipient address rejected: User unknown ..." */
	code = atoi(reply);
	why = strstr(reply, marker);
	text = why != NULL ? why + strlen(marker) : "User unknown";
	if (v == ADDR_TEMPFAIL || code < 500)
		return smtpd_restrict_trouble(c, "4.3.0", "Temporary lookup failure");
	return smtpd_restrict_refuse(c, code, sender ? "5.1.0" : "5.1.1", "<%s>: %s rejected: %s",
	    a->addr, sender ? "Sender address" : "Recipient address", text);
}

/* reject_[authenticated_]sender_login_mismatch with smtpd_sender_login_maps. */
static enum smtpd_step
smtpd_restrict_login_mismatch(struct smtpd_restrict_check *c, bool authenticated_only)
{
	struct buf value;
	char err[512];
	enum map_result mr;
	const char *user = c->sasl_username, *p;
	bool owned = false;
	size_t ulen = strlen(user), n;

	if (c->f.sender == NULL || c->sender.null || (authenticated_only && ulen == 0))
		return STEP_NEXT;
	buf_init(&value, MAP_VALUE_MAX);
	mr = map_list_lookup_address(c->set->login_maps, c->sender.addr,
	    config_str(c->rs->cfg, P_RECIPIENT_DELIMITER), MAP_ADDR_AT_DOMAIN, &value, NULL, err,
	    sizeof(err));
	if (mr == MAP_ERROR) {
		buf_free(&value);
		log_warning("smtpd_sender_login_maps: %s", err);
		return smtpd_restrict_trouble(c, "4.3.0", "Temporary lookup failure");
	}
	if (mr == MAP_FOUND && ulen > 0) {
		/* The owners: a list separated by commas and white space. */
		for (p = buf_cstr(&value); *p != '\0' && !owned; p += n) {
			p += strspn(p, ", \t");
			n = strcspn(p, ", \t");
			owned = n == ulen && strncasecmp(p, user, n) == 0;
		}
	}
	buf_free(&value);
	if (ulen == 0 && mr == MAP_FOUND)
		return smtpd_restrict_refuse(c, 553, "5.7.1", "<%s>: Sender address rejected: not logged in",
		    c->sender.addr);
	if (ulen > 0 && !owned)
		return smtpd_restrict_refuse(c, 553, "5.7.1",
		    "<%s>: Sender address rejected: not owned by user %s", c->sender.addr, user);
	return STEP_NEXT;
}

static enum smtpd_step
smtpd_restrict_relay(struct smtpd_restrict_check *c, bool permit_word, bool defer)
{
	enum smtpd_relay_decision d;

	if (c->f.rcpt == NULL)
		return STEP_NEXT;
	d = smtpd_restrict_relay_decide(c->rs->cfg, c->rs->addr, &c->rcpt);
	if (d == SMTPD_RELAY_AUTH)
		return permit_word ? STEP_PERMIT : STEP_NEXT;
	if (d == SMTPD_RELAY_TEMPFAIL)
		return smtpd_restrict_trouble(c, "4.3.0", "Temporary lookup failure");
	if (permit_word)
		return STEP_NEXT;
	return smtpd_restrict_refuse(c, defer ? smtpd_restrict_code(c, P_DEFER_CODE) :
	    smtpd_restrict_code(c, P_RELAY_DOMAINS_REJECT_CODE), defer ? "4.7.1" : "5.7.1",
	    "<%s>: Relay access denied", c->rcpt.addr);
}

static bool
smtpd_restrict_mynetworks(const struct smtpd_restrict_check *c)
{
	const struct config_network *nets;
	size_t n;

	nets = config_lnetworks(c->rs->cfg, c->f.listener, P_MYNETWORKS, &n);
	return c->f.family != 0 && config_networks_match(nets, n, c->f.family, c->f.addr);
}

/* Evaluate one rule (warn_if_reject is handled by the loop). */
static enum smtpd_step
smtpd_restrict_rule(struct smtpd_restrict_check *c, const struct smtpd_rule *r)
{
	enum smtpd_list_kind k = smtpd_current_list(c);
	const char *name = smtpd_list_name(c, k), *klass = smtpd_list_class[k];
	const struct mailaddr *snd = c->f.sender != NULL ? &c->sender : NULL;
	const struct mailaddr *rcpt = c->f.rcpt != NULL ? &c->rcpt : NULL;

	switch (r->e->code) {
	case CONFIG_RESTRICTIONS_PERMIT:
		return STEP_PERMIT;
	case CONFIG_RESTRICTIONS_DUNNO:
		return STEP_NEXT;
	case CONFIG_RESTRICTIONS_REJECT:
		return smtpd_restrict_refuse(c, smtpd_restrict_code(c, P_REJECT_CODE), "5.7.1",
		    "<%s>: %s rejected: Access denied", name, klass);
	case CONFIG_RESTRICTIONS_DEFER:
		return smtpd_restrict_refuse(c, smtpd_restrict_code(c, P_DEFER_CODE), "4.7.1",
		    "<%s>: %s rejected: Try again later", name, klass);
	case CONFIG_RESTRICTIONS_DEFER_IF_PERMIT:
		return smtpd_restrict_defer_if(c, true, 450, "4.7.1",
		    "<%s>: %s rejected: defer_if_permit requested", name, klass);
	case CONFIG_RESTRICTIONS_DEFER_IF_REJECT:
		return smtpd_restrict_defer_if(c, false, 450, "4.7.1",
		    "<%s>: %s rejected: defer_if_reject requested", name, klass);
	case CONFIG_RESTRICTIONS_SLEEP:
		c->rule = r;
		evloop_timer_init(&c->sleep, smtpd_restrict_sleep_done, c);
		evloop_timer_start(c->rs->loop, &c->sleep, r->sleep_ms);
		return STEP_WAIT;
	case CONFIG_RESTRICTIONS_PERMIT_MYNETWORKS:
		return smtpd_restrict_mynetworks(c) ? STEP_PERMIT : STEP_NEXT;
	case CONFIG_RESTRICTIONS_PERMIT_SASL_AUTHENTICATED:
		return c->sasl_username[0] != '\0' ? STEP_PERMIT : STEP_NEXT;
	case CONFIG_RESTRICTIONS_PERMIT_AUTH_DESTINATION:
		return smtpd_restrict_relay(c, true, false);
	case CONFIG_RESTRICTIONS_REJECT_UNAUTH_DESTINATION:
		return smtpd_restrict_relay(c, false, false);
	case CONFIG_RESTRICTIONS_DEFER_UNAUTH_DESTINATION:
		return smtpd_restrict_relay(c, false, true);
	case CONFIG_RESTRICTIONS_REJECT_UNAUTH_PIPELINING:
		/* Postfix: input waiting behind a command from a client that
		 * did not say EHLO, or behind DATA (RFC 2920 section 3.1). */
		if (c->f.pipelined && (!c->f.esmtp || c->stage == SMTPD_RESTRICT_DATA))
			return smtpd_restrict_refuse(c, 503, "5.5.0",
			    "<%s>: %s rejected: Improper use of SMTP command pipelining", name, klass);
		return STEP_NEXT;
	case CONFIG_RESTRICTIONS_REJECT_NON_FQDN_HELO_HOSTNAME:
		if (c->helo[0] == '\0' || smtpd_restrict_helo_fqdn(c->helo))
			return STEP_NEXT;
		return smtpd_restrict_refuse(c, smtpd_restrict_code(c, P_NON_FQDN_REJECT_CODE), "5.5.2",
		    "<%s>: Helo command rejected: need fully-qualified hostname", c->helo);
	case CONFIG_RESTRICTIONS_REJECT_INVALID_HELO_HOSTNAME:
		if (c->helo[0] == '\0' || smtpd_restrict_helo_valid(c->helo))
			return STEP_NEXT;
		return smtpd_restrict_refuse(c, smtpd_restrict_code(c, P_INVALID_HOSTNAME_REJECT_CODE),
		    "5.5.2", "<%s>: Helo command rejected: Invalid name", c->helo);
	case CONFIG_RESTRICTIONS_REJECT_UNKNOWN_HELO_HOSTNAME:
		if (c->helo[0] == '\0' || smtpd_restrict_is_literal(c->helo) ||
		    !smtpd_restrict_helo_valid(c->helo))
			return STEP_NEXT;	/* reject_invalid_helo_hostname's business */
		if ((size_t)snprintf(c->dns_name, sizeof(c->dns_name), "%s", c->helo) >=
		    sizeof(c->dns_name))
			return STEP_NEXT;	/* one trailing dot too many to ask */
		return smtpd_restrict_dns(c, r, 1, resolver_host);
	case CONFIG_RESTRICTIONS_REJECT_NON_FQDN_SENDER:
	case CONFIG_RESTRICTIONS_REJECT_NON_FQDN_RECIPIENT: {
		bool s = r->e->code == CONFIG_RESTRICTIONS_REJECT_NON_FQDN_SENDER;
		const struct mailaddr *a = s ? snd : rcpt;

		if (a == NULL || a->null || a->postmaster || a->literal ||
		    strchr(a->domain_lc, '.') != NULL)
			return STEP_NEXT;
		return smtpd_restrict_refuse(c, smtpd_restrict_code(c, P_NON_FQDN_REJECT_CODE), "5.5.2",
		    "<%s>: %s rejected: need fully-qualified address", a->addr,
		    s ? "Sender address" : "Recipient address");
	}
	case CONFIG_RESTRICTIONS_REJECT_UNKNOWN_SENDER_DOMAIN:
		return smtpd_restrict_unknown_domain_start(c, r, snd);
	case CONFIG_RESTRICTIONS_REJECT_UNKNOWN_RECIPIENT_DOMAIN:
		return smtpd_restrict_unknown_domain_start(c, r, rcpt);
	case CONFIG_RESTRICTIONS_REJECT_UNLISTED_RECIPIENT:
		return smtpd_restrict_unlisted(c, rcpt, false);
	case CONFIG_RESTRICTIONS_REJECT_UNLISTED_SENDER:
		return smtpd_restrict_unlisted(c, snd, true);
	case CONFIG_RESTRICTIONS_REJECT_SENDER_LOGIN_MISMATCH:
		return smtpd_restrict_login_mismatch(c, false);
	case CONFIG_RESTRICTIONS_REJECT_AUTHENTICATED_SENDER_LOGIN_MISMATCH:
		return smtpd_restrict_login_mismatch(c, true);
	case CONFIG_RESTRICTIONS_REJECT_UNKNOWN_CLIENT_HOSTNAME:
	case CONFIG_RESTRICTIONS_REJECT_UNKNOWN_REVERSE_CLIENT_HOSTNAME:
		return smtpd_restrict_unknown_client(c, r);
	case CONFIG_RESTRICTIONS_REJECT_RBL_CLIENT:
	case CONFIG_RESTRICTIONS_REJECT_RHSBL_CLIENT:
	case CONFIG_RESTRICTIONS_REJECT_RHSBL_REVERSE_CLIENT:
	case CONFIG_RESTRICTIONS_REJECT_RHSBL_HELO:
	case CONFIG_RESTRICTIONS_REJECT_RHSBL_SENDER:
	case CONFIG_RESTRICTIONS_REJECT_RHSBL_RECIPIENT:
	case CONFIG_RESTRICTIONS_PERMIT_DNSWL_CLIENT:
	case CONFIG_RESTRICTIONS_PERMIT_RHSWL_CLIENT:
		return smtpd_restrict_dnsxl(c, r);
	case CONFIG_RESTRICTIONS_CHECK_CLIENT_MX_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_REVERSE_CLIENT_MX_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_HELO_MX_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_SENDER_MX_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_RECIPIENT_MX_ACCESS:
		return smtpd_restrict_dnsaccess(c, r, SMTPD_DNSACCESS_MX);
	case CONFIG_RESTRICTIONS_CHECK_CLIENT_NS_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_REVERSE_CLIENT_NS_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_HELO_NS_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_SENDER_NS_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_RECIPIENT_NS_ACCESS:
		return smtpd_restrict_dnsaccess(c, r, SMTPD_DNSACCESS_NS);
	case CONFIG_RESTRICTIONS_CHECK_CLIENT_A_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_REVERSE_CLIENT_A_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_HELO_A_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_SENDER_A_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_RECIPIENT_A_ACCESS:
		return smtpd_restrict_dnsaccess(c, r, SMTPD_DNSACCESS_A);
	case CONFIG_RESTRICTIONS_CHECK_POLICY_SERVICE:
		return smtpd_restrict_policy(c, r);
	case CONFIG_RESTRICTIONS_CHECK_CLIENT_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_SENDER_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_RECIPIENT_ACCESS:
	case CONFIG_RESTRICTIONS_CHECK_HELO_ACCESS:
		return smtpd_restrict_access(c, r);
	case CONFIG_RESTRICTIONS_WARN_IF_REJECT:
		break;
	}
	panic("restriction %s reached evaluation unhandled", r->e->name);
}

/* ---- the walk ---- */

/* Apply a step; true when the check has ended. */
static bool
smtpd_restrict_advance(struct smtpd_restrict_check *c, enum smtpd_step step)
{
	c->warn = false;	/* warn_if_reject covers one rule only */
	switch (step) {
	case STEP_NEXT:
		c->ri++;
		return false;
	case STEP_PERMIT:
		c->si++;
		c->ri = 0;
		return false;
	default:
		return true;	/* STOP */
	}
}

/* Run from the cursor; true when the check has ended (result set). */
static bool
smtpd_restrict_walk(struct smtpd_restrict_check *c)
{
	const struct smtpd_rule_list *list;
	enum smtpd_step step;

	while (c->si < c->nseq) {
		list = &c->set->lists[c->f.listener][c->seq[c->si]];
		if (c->ri >= list->n) {
			c->si++;
			c->ri = 0;
			continue;
		}
		if (list->v[c->ri].e->code == CONFIG_RESTRICTIONS_WARN_IF_REJECT) {
			c->warn = true;
			c->ri++;
			continue;
		}
		step = smtpd_restrict_rule(c, &list->v[c->ri]);
		if (step == STEP_WAIT)
			return false;
		if (smtpd_restrict_advance(c, step))
			return true;
	}
	/* The end of the lists: a permit, unless defer_if_permit says
	 * otherwise (or is carried to RCPT from an earlier stage). */
	if (c->dip && c->stage < SMTPD_RESTRICT_RCPT) {
		c->res.carry = true;
		c->res.carried = c->dip_reply;
		c->res.verdict = SMTPD_VERDICT_PERMIT;
	} else if (c->dip) {
		c->res.verdict = SMTPD_VERDICT_DEFER;
		c->res.reply = c->dip_reply;
	} else {
		c->res.verdict = SMTPD_VERDICT_PERMIT;
	}
	return true;
}

static void
smtpd_restrict_conclude(struct smtpd_restrict_check *c)
{
	if (c->res.verdict == SMTPD_VERDICT_REJECT || c->res.verdict == SMTPD_VERDICT_DEFER)
		smtpd_restrict_log(c, "reject", c->res.reply.code, c->res.reply.text);
}

static void
smtpd_restrict_check_free(struct smtpd_restrict_check *c)
{
	evloop_timer_stop(c->rs->loop, &c->sleep);
	resolver_cancel(c->q);
	smtpd_dnsbl_cancel(c->dl);
	smtpd_dnsaccess_cancel(c->da);
	smtpd_policy_cancel(c->pr);
	smtpd_ruleset_release(c->rs, c->set);
	free(c);
}

static void
smtpd_restrict_resume(struct smtpd_restrict_check *c, enum smtpd_step step)
{
	smtpd_restrict_cb *cb = c->cb;
	void *arg = c->arg;

	if (!smtpd_restrict_advance(c, step) && !smtpd_restrict_walk(c))
		return;		/* waiting again */
	smtpd_restrict_conclude(c);
	cb(arg, &c->res);
	smtpd_restrict_check_free(c);
}

static void
smtpd_restrict_copy(char *dst, size_t dstsz, const char *src)
{
	snprintf(dst, dstsz, "%s", src != NULL ? src : "");
}

enum smtpd_restrict_run_status
smtpd_restrict_run(struct smtpd_restrict *rs, enum smtpd_restrict_stage stage,
    const struct smtpd_restrict_facts *f, struct smtpd_restrict_result *res,
    struct smtpd_restrict_check **pending, smtpd_restrict_cb *cb, void *arg)
{
	struct smtpd_restrict_check *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		fatal("out of memory (restriction check)");
	c->rs = rs;
	c->set = rs->set;
	c->set->refs++;
	c->stage = stage;
	c->cb = cb;
	c->arg = arg;
	evloop_timer_init(&c->sleep, smtpd_restrict_sleep_done, c);
	c->f = *f;
	smtpd_restrict_copy(c->client_addr, sizeof(c->client_addr), f->client_addr);
	smtpd_restrict_copy(c->client_name, sizeof(c->client_name), f->client_name);
	smtpd_restrict_copy(c->reverse_name, sizeof(c->reverse_name),
	    f->reverse_client_name != NULL ? f->reverse_client_name : f->client_name);
	smtpd_restrict_copy(c->server_addr, sizeof(c->server_addr), f->server_addr);
	smtpd_restrict_copy(c->helo, sizeof(c->helo), f->helo);
	smtpd_restrict_copy(c->queue_id, sizeof(c->queue_id), f->queue_id);
	smtpd_restrict_copy(c->instance, sizeof(c->instance), f->instance);
	smtpd_restrict_copy(c->sasl_method, sizeof(c->sasl_method), f->sasl_method);
	smtpd_restrict_copy(c->sasl_username, sizeof(c->sasl_username), f->sasl_username);
	smtpd_restrict_copy(c->sasl_sender, sizeof(c->sasl_sender), f->sasl_sender);
	smtpd_restrict_copy(c->enc_protocol, sizeof(c->enc_protocol), f->encryption_protocol);
	smtpd_restrict_copy(c->enc_cipher, sizeof(c->enc_cipher), f->encryption_cipher);
	smtpd_restrict_copy(c->verb, sizeof(c->verb), f->verb);
	if ((size_t)snprintf(c->namaddr, sizeof(c->namaddr), "%s[%s]", c->client_name,
	    c->client_addr) >= sizeof(c->namaddr))
		panic("client name and address longer than their buffer");
	if (f->sender != NULL)
		c->sender = *f->sender;
	if (f->rcpt != NULL)
		c->rcpt = *f->rcpt;
	c->f.queue_id = f->queue_id != NULL ? c->queue_id : NULL;
	c->f.sender = f->sender != NULL ? &c->sender : NULL;
	c->f.rcpt = f->rcpt != NULL ? &c->rcpt : NULL;
	c->f.carried = NULL;
	if (f->carried != NULL && stage == SMTPD_RESTRICT_RCPT) {
		c->dip = true;
		c->dip_reply = *f->carried;
	}
	c->nseq = smtpd_stage_lists(rs->cfg, f->listener, stage, c->seq);
	if (stage == SMTPD_RESTRICT_RCPT && !c->set->relay_safe[f->listener]) {
		log_warning("listener %s: smtpd_relay_restrictions and smtpd_recipient_restrictions "
		    "have no reject_unauth_destination (or reject/defer): refusing to be an open relay",
		    config_listener_name(f->listener));
		(void)smtpd_restrict_trouble(c, "4.3.5", "Server configuration problem");
	} else if (!smtpd_restrict_walk(c)) {
		*pending = c;
		return SMTPD_RESTRICT_PENDING;
	}
	smtpd_restrict_conclude(c);
	*res = c->res;
	*pending = NULL;
	smtpd_restrict_check_free(c);
	return SMTPD_RESTRICT_DONE;
}

void
smtpd_restrict_cancel(struct smtpd_restrict_check *c)
{
	if (c != NULL)
		smtpd_restrict_check_free(c);
}
