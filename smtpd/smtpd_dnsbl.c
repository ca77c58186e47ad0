/*
 * smtpd_dnsbl: DNS list queries and their replies (see the header).
 * Two steps on the resolver: A, and when listed, TXT under the same name.
 * A TXT failure only loses the reason, never the verdict.
 */
#include "smtpd/smtpd_dnsbl.h"

#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

int
smtpd_dnsbl_spec_parse(const char *arg, struct smtpd_dnsbl_spec *out)
{
	char zone[RESOLVER_NAME_SIZE];
	const char *eq = strchr(arg, '=');
	size_t zlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);

	memset(out, 0, sizeof(*out));
	if (zlen == 0 || zlen >= sizeof(zone))
		return -1;
	memcpy(zone, arg, zlen);
	zone[zlen] = '\0';
	if (resolver_name_normalize(zone, out->zone) < 0)
		return -1;
	if (eq != NULL) {
		if (!config_restrictions_ip_pattern_parse(eq + 1, strlen(eq + 1), &out->want))
			return -1;
		out->filter = true;
	}
	return 0;
}

int
smtpd_dnsbl_query_name(int family, const unsigned char *addr, const char *zone, char *out,
    size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	int i, n;

	if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
		family = AF_INET;
		addr += 12;
	}
	if (family == AF_INET) {
		n = snprintf(out, outsz, "%u.%u.%u.%u.%s", addr[3], addr[2], addr[1], addr[0], zone);
		return n < 0 || (size_t)n >= outsz || (size_t)n >= RESOLVER_NAME_SIZE ? -1 : 0;
	}
	if (family != AF_INET6)
		return -1;
	/* 32 nibbles and dots, then the zone. */
	if (outsz < 64 + strlen(zone) + 1 || 64 + strlen(zone) >= RESOLVER_NAME_SIZE)
		return -1;
	for (i = 15; i >= 0; i--) {
		out[o++] = hex[addr[i] & 0x0f];
		out[o++] = '.';
		out[o++] = hex[addr[i] >> 4];
		out[o++] = '.';
	}
	memcpy(out + o, zone, strlen(zone) + 1);
	return 0;
}

int
smtpd_dnsbl_domain_query_name(const char *what, const char *zone, char *out, size_t outsz)
{
	char norm[RESOLVER_NAME_SIZE];
	const char *domain = strrchr(what, '@'), *last;
	int n;

	domain = domain != NULL ? domain + 1 : what;
	if (domain[0] == '\0' || domain[0] == '[' || strlen(domain) > RESOLVER_NAME_MAX + 1 ||
	    resolver_name_normalize(domain, norm) < 0)
		return -1;
	/* Postfix: "Some Spamhaus RHSBL rejects lookups with 'No IP
	 * queries'": no lookup for a name ending in a numeric label. */
	last = strrchr(norm, '.');
	last = last != NULL ? last + 1 : norm;
	if (strspn(last, "0123456789") == strlen(last))
		return -1;
	n = snprintf(out, outsz, "%s.%s", norm, zone);
	return n < 0 || (size_t)n >= outsz || (size_t)n > RESOLVER_NAME_MAX ? -1 : 0;
}

bool
smtpd_dnsbl_listed(const struct smtpd_dnsbl_spec *spec, const struct resolver_addr *addrs,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (addrs[i].family != AF_INET)
			continue;
		if (!spec->filter || config_restrictions_ip_pattern_match(&spec->want, addrs[i].addr))
			return true;
	}
	return false;
}

void
smtpd_dnsbl_reason(const struct resolver_txt *txt, size_t n, char *reason, size_t reasonsz)
{
	static const char sep[] = " / ";
	size_t i, take, o = 0, cap = reasonsz - 1;

	if (cap > SMTPD_DNSBL_TXT_MAX)
		cap = SMTPD_DNSBL_TXT_MAX;
	for (i = 0; i < n && o < cap; i++) {
		if (i > 0) {
			/* Postfix adds the separator only while room is left. */
			if (o + strlen(sep) >= cap)
				break;
			memcpy(reason + o, sep, strlen(sep));
			o += strlen(sep);
		}
		take = txt[i].len < cap - o ? txt[i].len : cap - o;
		/* A TXT string may hold NUL: it must not end the reason early. */
		memcpy(reason + o, txt[i].data, take);
		for (; take > 0; take--, o++)
			if (reason[o] == '\0')
				reason[o] = '_';
	}
	reason[o] = '\0';
}

/* ---- reply templates ---- */

/* Appends to a bounded output; past the end, bytes are dropped. */
struct smtpd_dnsbl_out {
	char *p;
	size_t len, cap;
};

static void
smtpd_dnsbl_put(struct smtpd_dnsbl_out *o, const char *s, size_t n, bool filter)
{
	size_t i;

	for (i = 0; i < n && o->len + 1 < o->cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		/* Values come from the network: keep reply and log line clean. */
		o->p[o->len++] = !filter || (ch >= 32 && ch < 127) || ch == '\t' ? (char)ch : '_';
	}
	o->p[o->len] = '\0';
}

/* The part of a mail address a $sender_* / $recipient_* name asks for. */
static const char *
smtpd_dnsbl_addr_part(const char *addr, const char *part, char *buf, size_t bufsz)
{
	const char *at;

	/* Postfix: no address (no MAIL or RCPT yet) is empty; the null
	 * sender is "<>". */
	if (addr == NULL)
		return "";
	if (addr[0] == '\0')
		return strcmp(part, "domain") == 0 ? "" : "<>";
	at = strrchr(addr, '@');
	if (strcmp(part, "domain") == 0)
		return at != NULL ? at + 1 : "";
	if (strcmp(part, "name") == 0 && at != NULL) {
		snprintf(buf, bufsz, "%.*s", (int)(at - addr), addr);
		return buf;
	}
	return addr;
}

/* The value of name (len bytes), or NULL when the name is unknown. */
static const char *
smtpd_dnsbl_var(const struct smtpd_dnsbl_vars *v, const char *name, size_t len, char *buf,
    size_t bufsz)
{
	const struct {
		const char *name;
		const char *value;
	} plain[] = {
		{ "rbl_domain", v->rbl_domain }, { "rbl_reason", v->rbl_reason },
		{ "rbl_txt", v->rbl_reason }, { "rbl_what", v->rbl_what },
		{ "rbl_class", v->rbl_class }, { "client", v->client },
		{ "client_address", v->client_address }, { "client_name", v->client_name },
		{ "reverse_client_name", v->reverse_client_name }, { "helo_name", v->helo_name },
	};
	static const char *const parts[] = { "sender", "recipient" };
	size_t i, plen;

	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (strlen(plain[i].name) == len && memcmp(plain[i].name, name, len) == 0)
			return plain[i].value != NULL ? plain[i].value : "";
	if (len == strlen("rbl_code") && memcmp(name, "rbl_code", len) == 0) {
		snprintf(buf, bufsz, "%d", v->rbl_code);
		return buf;
	}
	for (i = 0; i < 2; i++) {
		plen = strlen(parts[i]);
		if (len < plen || memcmp(name, parts[i], plen) != 0)
			continue;
		if (len == plen)
			return smtpd_dnsbl_addr_part(i == 0 ? v->sender : v->recipient, "", buf, bufsz);
		if (len == plen + 5 && memcmp(name + plen, "_name", 5) == 0)
			return smtpd_dnsbl_addr_part(i == 0 ? v->sender : v->recipient, "name", buf,
			    bufsz);
		if (len == plen + 7 && memcmp(name + plen, "_domain", 7) == 0)
			return smtpd_dnsbl_addr_part(i == 0 ? v->sender : v->recipient, "domain", buf,
			    bufsz);
	}
	return NULL;
}

static int smtpd_dnsbl_expand_into(const char *t, size_t len, const struct smtpd_dnsbl_vars *v,
    unsigned depth, struct smtpd_dnsbl_out *o, char *why, size_t whysz);

/* "${name...}" or "$(name...)" at t (t[0] == '$'); returns bytes used, 0 on error. */
static size_t
smtpd_dnsbl_expand_braced(const char *t, size_t len, const struct smtpd_dnsbl_vars *v,
    unsigned depth, struct smtpd_dnsbl_out *o, char *why, size_t whysz)
{
	char open = t[1], close = open == '{' ? '}' : ')', buf[RESOLVER_NAME_SIZE + 64];
	size_t i = 2, nlen, tstart, level = 1;
	const char *value;
	char op;

	while (i < len && (isalnum((unsigned char)t[i]) || t[i] == '_'))
		i++;
	nlen = i - 2;
	if (nlen == 0 || i >= len || (t[i] != close && t[i] != '?' && t[i] != ':')) {
		snprintf(why, whysz, "bad $%c...%c reference", open, close);
		return 0;
	}
	value = smtpd_dnsbl_var(v, t + 2, nlen, buf, sizeof(buf));
	if (value == NULL) {
		snprintf(why, whysz, "unknown name \"%.*s\"", (int)nlen, t + 2);
		return 0;
	}
	if (t[i] == close) {
		smtpd_dnsbl_put(o, value, strlen(value), true);
		return i + 1;
	}
	op = t[i++];
	for (tstart = i; i < len; i++) {
		if (t[i] == open)
			level++;
		else if (t[i] == close && --level == 0)
			break;
	}
	if (i >= len) {
		snprintf(why, whysz, "missing \"%c\"", close);
		return 0;
	}
	if ((op == '?') == (value[0] != '\0') &&
	    smtpd_dnsbl_expand_into(t + tstart, i - tstart, v, depth + 1, o, why, whysz) < 0)
		return 0;
	return i + 1;
}

static int
smtpd_dnsbl_expand_into(const char *t, size_t len, const struct smtpd_dnsbl_vars *v,
    unsigned depth, struct smtpd_dnsbl_out *o, char *why, size_t whysz)
{
	char buf[RESOLVER_NAME_SIZE + 64];
	const char *value;
	size_t i = 0, j, used;

	if (depth > SMTPD_DNSBL_REPLY_DEPTH_MAX) {
		snprintf(why, whysz, "${...} nested too deep");
		return -1;
	}
	while (i < len) {
		for (j = i; j < len && t[j] != '$'; j++)
			;
		smtpd_dnsbl_put(o, t + i, j - i, false);
		if ((i = j) >= len)
			break;
		if (i + 1 < len && (t[i + 1] == '{' || t[i + 1] == '(')) {
			if ((used = smtpd_dnsbl_expand_braced(t + i, len - i, v, depth, o, why,
			    whysz)) == 0)
				return -1;
			i += used;
			continue;
		}
		for (j = i + 1; j < len && (isalnum((unsigned char)t[j]) || t[j] == '_'); j++)
			;
		if (j == i + 1) {
			/* "$$" is one '$'; a '$' before anything else stays. */
			smtpd_dnsbl_put(o, "$", 1, false);
			i += i + 1 < len && t[i + 1] == '$' ? 2 : 1;
			continue;
		}
		if ((value = smtpd_dnsbl_var(v, t + i + 1, j - i - 1, buf, sizeof(buf))) == NULL) {
			snprintf(why, whysz, "unknown name \"%.*s\"", (int)(j - i - 1), t + i + 1);
			return -1;
		}
		smtpd_dnsbl_put(o, value, strlen(value), true);
		i = j;
	}
	return 0;
}

int
smtpd_dnsbl_expand(const char *template, const struct smtpd_dnsbl_vars *v, char *out,
    size_t outsz, char *why, size_t whysz)
{
	struct smtpd_dnsbl_out o = { out, 0, outsz };

	out[0] = '\0';
	return smtpd_dnsbl_expand_into(template, strlen(template), v, 0, &o, why, whysz);
}

int
smtpd_dnsbl_template_check(const char *template, char *why, size_t whysz)
{
	struct smtpd_dnsbl_vars v;
	char out[SMTPD_DNSBL_REPLY_MAX + 1];

	memset(&v, 0, sizeof(v));
	return smtpd_dnsbl_expand(template, &v, out, sizeof(out), why, whysz);
}

/* Digits at p, at most max of them; their number. */
static size_t
smtpd_dnsbl_digits(const char *p, size_t max)
{
	size_t n = 0;

	while (n < max && p[n] >= '0' && p[n] <= '9')
		n++;
	return n;
}

int
smtpd_dnsbl_reply_split(const char *expanded, int *code, char dsn[16], const char **text)
{
	const char *p = expanded + 4;
	size_t a, b;

	if ((expanded[0] != '4' && expanded[0] != '5') || smtpd_dnsbl_digits(expanded + 1, 2) != 2 ||
	    expanded[3] != ' ')
		return -1;
	*code = (expanded[0] - '0') * 100 + (expanded[1] - '0') * 10 + (expanded[2] - '0');
	snprintf(dsn, 16, "4.7.1");
	/* RFC 3463: class "." subject (1-3 digits) "." detail (1-3 digits). */
	if ((p[0] == '2' || p[0] == '4' || p[0] == '5') && p[1] == '.' &&
	    (a = smtpd_dnsbl_digits(p + 2, 3)) > 0 && p[2 + a] == '.' &&
	    (b = smtpd_dnsbl_digits(p + 3 + a, 3)) > 0 &&
	    (p[3 + a + b] == '\0' || p[3 + a + b] == ' ')) {
		snprintf(dsn, 16, "%.*s", (int)(3 + a + b), p);
		p += 3 + a + b;
		p += strspn(p, " ");
	}
	dsn[0] = expanded[0];
	*text = p[0] != '\0' ? p : "Service unavailable";
	return 0;
}

struct smtpd_dnsbl_lookup {
	struct resolver *r;
	struct resolver_query *q;
	struct smtpd_dnsbl_spec spec;
	char query[RESOLVER_NAME_SIZE];
	smtpd_dnsbl_cb *cb;
	void *arg;
};

static void
smtpd_dnsbl_done(struct smtpd_dnsbl_lookup *l, enum smtpd_dnsbl_status st, const char *reason)
{
	char query[RESOLVER_NAME_SIZE];
	smtpd_dnsbl_cb *cb = l->cb;
	void *arg = l->arg;

	memcpy(query, l->query, sizeof(query));
	free(l);
	cb(arg, st, reason, query);
}

static void
smtpd_dnsbl_txt(const struct resolver_result *res, void *arg)
{
	char reason[SMTPD_DNSBL_TXT_MAX + 1] = "";

	if (res->status == RESOLVER_OK)
		smtpd_dnsbl_reason(res->txt, res->n_txt, reason, sizeof(reason));
	smtpd_dnsbl_done(arg, SMTPD_DNSBL_LISTED, reason);
}

static void
smtpd_dnsbl_a(const struct resolver_result *res, void *arg)
{
	struct smtpd_dnsbl_lookup *l = arg;

	switch (res->status) {
	case RESOLVER_OK:
		if (!smtpd_dnsbl_listed(&l->spec, res->addr, res->n_addr)) {
			smtpd_dnsbl_done(l, SMTPD_DNSBL_NOT_LISTED, "");
			return;
		}
		l->q = resolver_txt(l->r, l->query, smtpd_dnsbl_txt, l);
		return;
	case RESOLVER_TEMPFAIL:
		smtpd_dnsbl_done(l, SMTPD_DNSBL_TEMPFAIL, res->text);
		return;
	default:
		smtpd_dnsbl_done(l, SMTPD_DNSBL_NOT_LISTED, "");
		return;
	}
}

/* Start the A lookup of l->query (already filled). */
static struct smtpd_dnsbl_lookup *
smtpd_dnsbl_launch(struct smtpd_dnsbl_lookup *l, struct resolver *r,
    const struct smtpd_dnsbl_spec *spec, smtpd_dnsbl_cb *cb, void *arg)
{
	l->r = r;
	l->spec = *spec;
	l->cb = cb;
	l->arg = arg;
	/* resolver_host asks A and AAAA; a DNS list answers with A records. */
	l->q = resolver_host(r, l->query, smtpd_dnsbl_a, l);
	return l;
}

static struct smtpd_dnsbl_lookup *
smtpd_dnsbl_new(void)
{
	struct smtpd_dnsbl_lookup *l = calloc(1, sizeof(*l));

	if (l == NULL)
		fatal("out of memory (dnsbl)");
	return l;
}

struct smtpd_dnsbl_lookup *
smtpd_dnsbl_start(struct resolver *r, const struct smtpd_dnsbl_spec *spec, int family,
    const unsigned char *addr, smtpd_dnsbl_cb *cb, void *arg)
{
	struct smtpd_dnsbl_lookup *l = smtpd_dnsbl_new();

	if (smtpd_dnsbl_query_name(family, addr, spec->zone, l->query, sizeof(l->query)) < 0) {
		free(l);
		return NULL;
	}
	return smtpd_dnsbl_launch(l, r, spec, cb, arg);
}

struct smtpd_dnsbl_lookup *
smtpd_dnsbl_start_domain(struct resolver *r, const struct smtpd_dnsbl_spec *spec,
    const char *what, smtpd_dnsbl_cb *cb, void *arg)
{
	struct smtpd_dnsbl_lookup *l = smtpd_dnsbl_new();

	if (smtpd_dnsbl_domain_query_name(what, spec->zone, l->query, sizeof(l->query)) < 0) {
		free(l);
		return NULL;
	}
	return smtpd_dnsbl_launch(l, r, spec, cb, arg);
}

void
smtpd_dnsbl_cancel(struct smtpd_dnsbl_lookup *l)
{
	if (l == NULL)
		return;
	resolver_cancel(l->q);
	free(l);
}
