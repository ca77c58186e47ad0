/*
 * config_restrictions: the table of restriction words and the check of a
 * restriction list against it. Owns nothing but the constant table;
 * problems are returned in a buffer, never logged.
 */
#include "config/config_restrictions.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "config/config_suggest.h"
#include "config/config_value.h"

/* RFC 1035 section 2.3.4: a domain name is at most 255 octets (253 as text). */
#define CONFIG_RESTRICTIONS_DOMAIN_MAX 253

#define R(word, code, arg) { word, word, CONFIG_RESTRICTIONS_##code, CONFIG_RESTRICTIONS_ARG_##arg }
#define ALIAS(word, canonical, code) { word, canonical, CONFIG_RESTRICTIONS_##code, CONFIG_RESTRICTIONS_ARG_NONE }

const struct config_restrictions_entry config_restrictions_table[] = {
	/* generic actions */
	R("permit", PERMIT, NONE),
	R("reject", REJECT, NONE),
	R("defer", DEFER, NONE),
	R("defer_if_permit", DEFER_IF_PERMIT, NONE),
	R("defer_if_reject", DEFER_IF_REJECT, NONE),
	R("dunno", DUNNO, NONE),
	R("warn_if_reject", WARN_IF_REJECT, NONE),
	R("sleep", SLEEP, SECONDS),
	/* client */
	R("permit_mynetworks", PERMIT_MYNETWORKS, NONE),
	R("permit_sasl_authenticated", PERMIT_SASL_AUTHENTICATED, NONE),
	R("reject_unknown_client_hostname", REJECT_UNKNOWN_CLIENT_HOSTNAME, NONE),
	R("reject_unknown_reverse_client_hostname", REJECT_UNKNOWN_REVERSE_CLIENT_HOSTNAME, NONE),
	R("reject_rbl_client", REJECT_RBL_CLIENT, DNSBL),
	R("check_client_access", CHECK_CLIENT_ACCESS, MAP),
	R("check_policy_service", CHECK_POLICY_SERVICE, POLICY),
	R("reject_unauth_pipelining", REJECT_UNAUTH_PIPELINING, NONE),
	/* helo; the short names are Postfix's older spellings */
	R("reject_non_fqdn_helo_hostname", REJECT_NON_FQDN_HELO_HOSTNAME, NONE),
	ALIAS("reject_non_fqdn_hostname", "reject_non_fqdn_helo_hostname", REJECT_NON_FQDN_HELO_HOSTNAME),
	R("reject_invalid_helo_hostname", REJECT_INVALID_HELO_HOSTNAME, NONE),
	ALIAS("reject_invalid_hostname", "reject_invalid_helo_hostname", REJECT_INVALID_HELO_HOSTNAME),
	R("reject_unknown_helo_hostname", REJECT_UNKNOWN_HELO_HOSTNAME, NONE),
	R("check_helo_access", CHECK_HELO_ACCESS, MAP),
	/* sender */
	R("reject_non_fqdn_sender", REJECT_NON_FQDN_SENDER, NONE),
	R("reject_unknown_sender_domain", REJECT_UNKNOWN_SENDER_DOMAIN, NONE),
	R("reject_unlisted_sender", REJECT_UNLISTED_SENDER, NONE),
	R("reject_sender_login_mismatch", REJECT_SENDER_LOGIN_MISMATCH, NONE),
	R("reject_authenticated_sender_login_mismatch",
	    REJECT_AUTHENTICATED_SENDER_LOGIN_MISMATCH, NONE),
	R("check_sender_access", CHECK_SENDER_ACCESS, MAP),
	/* recipient */
	R("permit_auth_destination", PERMIT_AUTH_DESTINATION, NONE),
	R("reject_unauth_destination", REJECT_UNAUTH_DESTINATION, NONE),
	R("defer_unauth_destination", DEFER_UNAUTH_DESTINATION, NONE),
	R("reject_non_fqdn_recipient", REJECT_NON_FQDN_RECIPIENT, NONE),
	R("reject_unknown_recipient_domain", REJECT_UNKNOWN_RECIPIENT_DOMAIN, NONE),
	R("reject_unlisted_recipient", REJECT_UNLISTED_RECIPIENT, NONE),
	R("check_recipient_access", CHECK_RECIPIENT_ACCESS, MAP),
	/* DNS lists of names and DNS allow lists (Postfix's words) */
	R("reject_rhsbl_client", REJECT_RHSBL_CLIENT, DNSBL),
	R("reject_rhsbl_reverse_client", REJECT_RHSBL_REVERSE_CLIENT, DNSBL),
	R("reject_rhsbl_helo", REJECT_RHSBL_HELO, DNSBL),
	R("reject_rhsbl_sender", REJECT_RHSBL_SENDER, DNSBL),
	R("reject_rhsbl_recipient", REJECT_RHSBL_RECIPIENT, DNSBL),
	R("permit_dnswl_client", PERMIT_DNSWL_CLIENT, DNSBL),
	R("permit_rhswl_client", PERMIT_RHSWL_CLIENT, DNSBL),
	/* access maps over the MX hosts, name servers and addresses of a name */
	R("check_client_mx_access", CHECK_CLIENT_MX_ACCESS, MAP),
	R("check_client_ns_access", CHECK_CLIENT_NS_ACCESS, MAP),
	R("check_client_a_access", CHECK_CLIENT_A_ACCESS, MAP),
	R("check_reverse_client_hostname_mx_access", CHECK_REVERSE_CLIENT_MX_ACCESS, MAP),
	R("check_reverse_client_hostname_ns_access", CHECK_REVERSE_CLIENT_NS_ACCESS, MAP),
	R("check_reverse_client_hostname_a_access", CHECK_REVERSE_CLIENT_A_ACCESS, MAP),
	R("check_helo_mx_access", CHECK_HELO_MX_ACCESS, MAP),
	R("check_helo_ns_access", CHECK_HELO_NS_ACCESS, MAP),
	R("check_helo_a_access", CHECK_HELO_A_ACCESS, MAP),
	R("check_sender_mx_access", CHECK_SENDER_MX_ACCESS, MAP),
	R("check_sender_ns_access", CHECK_SENDER_NS_ACCESS, MAP),
	R("check_sender_a_access", CHECK_SENDER_A_ACCESS, MAP),
	R("check_recipient_mx_access", CHECK_RECIPIENT_MX_ACCESS, MAP),
	R("check_recipient_ns_access", CHECK_RECIPIENT_NS_ACCESS, MAP),
	R("check_recipient_a_access", CHECK_RECIPIENT_A_ACCESS, MAP),
};

#undef R
#undef ALIAS

const size_t config_restrictions_count =
	sizeof(config_restrictions_table) / sizeof(config_restrictions_table[0]);

const struct config_restrictions_entry *
config_restrictions_lookup(const char *word)
{
	size_t i;

	for (i = 0; i < config_restrictions_count; i++)
		if (strcasecmp(word, config_restrictions_table[i].name) == 0)
			return &config_restrictions_table[i];
	return NULL;
}

/* Letters, digits, '-' and '_' in dot-separated non-empty labels. */
static bool
config_restrictions_domain_ok(const char *s, size_t len)
{
	size_t i, label = 0;

	if (len == 0 || len > CONFIG_RESTRICTIONS_DOMAIN_MAX)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_') {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* One decimal number 0..255 at s[*i]; advances *i. */
static bool
config_restrictions_octet(const char *s, size_t len, size_t *i, unsigned *v)
{
	size_t start = *i;

	*v = 0;
	while (*i < len && isdigit((unsigned char)s[*i]) && *i - start < 3)
		*v = *v * 10 + (unsigned)(s[(*i)++] - '0');
	return *i > start && *v <= 255 && (*i == len || !isdigit((unsigned char)s[*i]));
}

static void
config_restrictions_allow(struct config_restrictions_ip_pattern *p, int field, unsigned lo,
    unsigned hi)
{
	unsigned v;

	for (v = lo; v <= hi; v++)
		p->allowed[field][v / 8] |= (unsigned char)(1u << (v % 8));
}

/* "[" member (";" member)* "]", member = N or N..M with N <= M. */
static bool
config_restrictions_ip_set(const char *s, size_t len, size_t *i,
    struct config_restrictions_ip_pattern *p, int field)
{
	unsigned lo, hi;

	(*i)++;		/* '[' */
	for (;;) {
		if (!config_restrictions_octet(s, len, i, &lo))
			return false;
		hi = lo;
		if (*i + 1 < len && s[*i] == '.' && s[*i + 1] == '.') {
			*i += 2;
			if (!config_restrictions_octet(s, len, i, &hi) || hi < lo)
				return false;
		}
		config_restrictions_allow(p, field, lo, hi);
		if (*i < len && s[*i] == ';') {
			(*i)++;
			continue;
		}
		if (*i < len && s[*i] == ']') {
			(*i)++;
			return true;
		}
		return false;
	}
}

bool
config_restrictions_ip_pattern_parse(const char *s, size_t len,
    struct config_restrictions_ip_pattern *out)
{
	size_t i = 0, depth = 0, close = 0;
	unsigned v;
	int field;

	memset(out, 0, sizeof(*out));
	/* Postfix strips one "[...]" around the whole pattern. */
	if (len > 0 && s[0] == '[') {
		for (close = 0; close < len; close++) {
			if (s[close] == '[')
				depth++;
			else if (s[close] == ']' && --depth == 0)
				break;
		}
		if (close == len - 1) {
			s++;
			len -= 2;
		}
	}
	for (field = 0; field < 4; field++) {
		if (field > 0 && (i >= len || s[i++] != '.'))
			return false;
		if (i < len && s[i] == '[') {
			if (!config_restrictions_ip_set(s, len, &i, out, field))
				return false;
		} else {
			if (!config_restrictions_octet(s, len, &i, &v))
				return false;
			config_restrictions_allow(out, field, v, v);
		}
	}
	return i == len;
}

bool
config_restrictions_ip_pattern_match(const struct config_restrictions_ip_pattern *p,
    const unsigned char addr[4])
{
	int field;

	for (field = 0; field < 4; field++)
		if ((p->allowed[field][addr[field] / 8] & (1u << (addr[field] % 8))) == 0)
			return false;
	return true;
}

/* zone or zone=PATTERN (only a reply the pattern matches lists). */
static bool
config_restrictions_dnsbl_ok(const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct config_restrictions_ip_pattern p;

	if (eq == NULL)
		return config_restrictions_domain_ok(arg, strlen(arg));
	return config_restrictions_domain_ok(arg, (size_t)(eq - arg)) &&
	    config_restrictions_ip_pattern_parse(eq + 1, strlen(eq + 1), &p);
}

/* inet:HOST:PORT (HOST may be [v6]) or unix:PATH. */
static bool
config_restrictions_policy_ok(const char *arg)
{
	const char *port;
	unsigned n;

	if (strncmp(arg, "unix:", strlen("unix:")) == 0)
		return arg[strlen("unix:")] != '\0';
	if (strncmp(arg, "inet:", strlen("inet:")) != 0)
		return false;
	arg += strlen("inet:");
	port = strrchr(arg, ':');
	return port != NULL && port > arg && config_value_port(port + 1, strlen(port + 1), &n);
}

/* TYPE:NAME with a lower-case alphanumeric type, as lmdb:/etc/tern/access. */
static bool
config_restrictions_map_ok(const char *arg)
{
	size_t tlen = strspn(arg, "abcdefghijklmnopqrstuvwxyz0123456789_");

	return tlen > 0 && arg[tlen] == ':' && arg[tlen + 1] != '\0';
}

static bool
config_restrictions_seconds_ok(const char *arg)
{
	struct buf scratch;
	int64_t t;
	bool ok;

	buf_init(&scratch, CONFIG_VALUE_QUOTE_MAX * 8);
	ok = config_value_time(arg, 0, &t, &scratch);
	buf_free(&scratch);
	return ok;
}

/* How each kind of argument is checked and described. */
struct config_restrictions_argspec {
	bool (*ok)(const char *arg);
	const char *what;	/* for "missing argument (...)" */
	const char *hint;	/* for "bad argument ... (...)" */
};

static const struct config_restrictions_argspec config_restrictions_args[] = {
	[CONFIG_RESTRICTIONS_ARG_DNSBL] = { config_restrictions_dnsbl_ok,
	    "a DNSBL zone", "use a DNSBL zone, optionally zone=d.d.d.d" },
	[CONFIG_RESTRICTIONS_ARG_POLICY] = { config_restrictions_policy_ok,
	    "a policy service", "use inet:HOST:PORT or unix:PATH" },
	[CONFIG_RESTRICTIONS_ARG_MAP] = { config_restrictions_map_ok,
	    "a map", "use TYPE:NAME, e.g. lmdb:/etc/tern/access" },
	[CONFIG_RESTRICTIONS_ARG_SECONDS] = { config_restrictions_seconds_ok,
	    "a time in seconds", "use a number of seconds" },
};

static void
config_restrictions_unknown(const char *word, struct buf *why)
{
	char lower[CONFIG_VALUE_QUOTE_MAX + 1];
	struct config_suggest s;
	size_t i, len = strlen(word);

	buf_append_str(why, "unknown restriction ");
	config_value_quote(why, word, len);
	/* Suggest case-insensitively, as words match; skip absurd lengths. */
	if (len < sizeof(lower)) {
		for (i = 0; i <= len; i++)
			lower[i] = (char)tolower((unsigned char)word[i]);
		config_suggest_init(&s, lower);
		for (i = 0; i < config_restrictions_count; i++)
			config_suggest_try(&s, "", config_restrictions_table[i].name);
		if (config_suggest_found(&s))
			buf_append_printf(why, " (did you mean \"%s\"?)", s.best_name);
	}
	buf_append_char(why, '\n');
}

/* Check the argument of e at items[*i + 1]; advances *i past it. */
static unsigned
config_restrictions_check_arg(const struct config_restrictions_entry *e,
                              const struct config_list *list, size_t *i, struct buf *why)
{
	const struct config_restrictions_argspec *spec = &config_restrictions_args[e->arg];
	const char *arg;

	if (*i + 1 >= list->n) {
		buf_append_printf(why, "%s: missing argument (%s)\n", e->name, spec->what);
		return 1;
	}
	arg = list->items[++*i];
	if (spec->ok(arg))
		return 0;
	buf_append_printf(why, "%s: bad argument ", e->name);
	config_value_quote(why, arg, strlen(arg));
	buf_append_printf(why, " (%s)\n", spec->hint);
	return 1;
}

unsigned
config_restrictions_check(const struct config_list *list, struct buf *why)
{
	const struct config_restrictions_entry *e = NULL;
	unsigned problems = 0;
	size_t i;

	for (i = 0; i < list->n; i++) {
		e = config_restrictions_lookup(list->items[i]);
		if (e == NULL) {
			config_restrictions_unknown(list->items[i], why);
			problems++;
		} else if (config_restrictions_takes_argument(e)) {
			problems += config_restrictions_check_arg(e, list, &i, why);
		}
	}
	/* warn_if_reject changes the next restriction; with none it is a typo. */
	if (e != NULL && e->code == CONFIG_RESTRICTIONS_WARN_IF_REJECT) {
		buf_append_str(why, "\"warn_if_reject\" must be followed by a reject rule\n");
		problems++;
	}
	return problems;
}
