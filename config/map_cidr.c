/*
 * map_cidr: cidr:/path tables as Postfix's cidr_table(5) reads them:
 *
 *   192.0.2.0/24 result          network/prefix, IPv4 or IPv6
 *   2001:db8::/32 result         (an address may be written in [])
 *   192.0.2.7 result             a bare address: /32 or /128
 *   !192.0.2.0/24 result         every address outside that network
 *   if 192.0.2.0/24 ... endif    (and "if !...") rules tried only inside
 *
 * The first matching rule wins. An IPv4 key never matches an IPv6 network
 * and the other way round (as in Postfix; write ::ffff:0:0/96 networks
 * for v4-mapped keys). A key that is not an address is not found.
 *
 * Checked at load, each a "FILE:LINE: message" error that fails the
 * whole file: an address that does not parse, a prefix out of range,
 * host bits set below the prefix (Postfix's "non-null host address
 * bits" error), a missing result, if without endif, endif without if.
 *
 * Owns its rules; out of memory is fatal().
 */
#include "config/map_impl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

/* Longest network text ("[" v6 address "]/128"). */
#define MAP_CIDR_NET_MAX (INET6_ADDRSTRLEN + 8)
#define MAP_CIDR_ADDR_BYTES 16

enum map_cidr_kind { MAP_CIDR_RULE, MAP_CIDR_IF, MAP_CIDR_ENDIF };

struct map_cidr_rule {
	enum map_cidr_kind kind;
	unsigned line;
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[MAP_CIDR_ADDR_BYTES];
	unsigned prefix;
	bool neg;
	char *result;		/* owned; MAP_CIDR_RULE only */
	size_t skip;		/* IF: the index after its endif */
};

struct map_cidr {
	struct map_cidr_rule *v;
	size_t n, cap;
	size_t nrules;
};

static bool
map_cidr_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Parse an address (len bytes at s, no NUL needed), brackets allowed. */
static bool
map_cidr_addr(const char *s, size_t len, int *family, unsigned char *addr)
{
	char text[MAP_CIDR_NET_MAX + 1];

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (len == 0 || len > MAP_CIDR_NET_MAX)
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	memset(addr, 0, MAP_CIDR_ADDR_BYTES);
	if (inet_pton(AF_INET, text, addr) == 1) {
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, addr) == 1) {
		*family = AF_INET6;
		return true;
	}
	return false;
}

/* Do the first prefix bits of a and b agree? */
static bool
map_cidr_prefix_eq(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;
	unsigned char mask;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* The network at *pp ("[!]addr[/prefix]") into rule; *pp moves past it. */
static bool
map_cidr_network(const char **pp, const char *end, struct map_cidr_rule *rule,
                 struct map_diag *d, unsigned line)
{
	const char *p = *pp, *tok, *slash;
	unsigned bits, prefix = 0;
	size_t tlen;

	if (p < end && *p == '!') {
		rule->neg = true;
		p++;
	}
	tok = p;
	while (p < end && !map_cidr_space(*p))
		p++;
	tlen = (size_t)(p - tok);
	if (tlen >= 2 && tok[0] == '[' && tok[tlen - 1] == ']' && memchr(tok, '/', tlen) != NULL) {
		tok++;		/* [2001:db8::/32] */
		tlen -= 2;
	}
	slash = memchr(tok, '/', tlen);
	if (!map_cidr_addr(tok, slash != NULL ? (size_t)(slash - tok) : tlen, &rule->family,
	    rule->addr)) {
		map_diag_add(d, line, false, "bad network address \"%.*s\"",
		             (int)(slash != NULL ? (size_t)(slash - tok) : tlen), tok);
		return false;
	}
	bits = rule->family == AF_INET ? 32 : 128;
	if (slash == NULL) {
		prefix = bits;
	} else {
		const char *q = slash + 1, *qend = tok + tlen;

		if (q == qend)
			prefix = bits + 1;
		for (; q < qend && prefix <= bits; q++)
			prefix = *q >= '0' && *q <= '9' ? prefix * 10 + (unsigned)(*q - '0') : bits + 1;
		if (prefix > bits) {
			map_diag_add(d, line, false, "bad prefix length in \"%.*s\" (0 to %u)",
			             (int)tlen, tok, bits);
			return false;
		}
	}
	rule->prefix = prefix;
	/* Postfix refuses host bits below the prefix: 192.0.2.1/24 is
	 * most likely a typo for a single address or for 192.0.2.0/24. */
	{
		unsigned char masked[MAP_CIDR_ADDR_BYTES];
		unsigned i;

		memcpy(masked, rule->addr, sizeof(masked));
		for (i = prefix; i < bits; i++)
			masked[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
		if (memcmp(masked, rule->addr, sizeof(masked)) != 0) {
			char net[INET6_ADDRSTRLEN];

			inet_ntop(rule->family, masked, net, sizeof(net));
			map_diag_add(d, line, false, "non-null host address bits in \"%.*s\", "
			             "perhaps you mean \"%s/%u\"", (int)tlen, tok, net, prefix);
			return false;
		}
	}
	*pp = p;
	return true;
}

static struct map_cidr_rule *
map_cidr_push(struct map_cidr *c, enum map_cidr_kind kind, unsigned line)
{
	struct map_cidr_rule *rule;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		if (c->v == NULL)
			fatal("out of memory (cidr map)");
	}
	rule = &c->v[c->n++];
	memset(rule, 0, sizeof(*rule));
	rule->kind = kind;
	rule->line = line;
	return rule;
}

/* The keyword kw (any case) alone or followed by white space. */
static bool
map_cidr_keyword(const char *s, const char *end, const char *kw, const char **rest)
{
	size_t k = strlen(kw);

	if ((size_t)(end - s) < k || strncasecmp(s, kw, k) != 0 ||
	    (s + k < end && !map_cidr_space(s[k])))
		return false;
	for (s += k; s < end && map_cidr_space(*s); s++)
		;
	*rest = s;
	return true;
}

/* One logical line (map_rule_line_fn). */
static void
map_cidr_line(void *arg, const char *s, size_t len, unsigned line, struct map_ifs *ifs,
              struct map_diag *d)
{
	struct map_cidr *c = arg;
	const char *end = s + len, *q;
	struct map_cidr_rule *rule;
	size_t at;

	if (map_cidr_keyword(s, end, "endif", &q)) {
		if (q < end) {
			map_diag_add(d, line, false, "text after endif");
		} else if (map_ifs_pop(ifs, &at, line, d)) {
			c->v[at].skip = c->n + 1;	/* a failed if goes on after it */
			(void)map_cidr_push(c, MAP_CIDR_ENDIF, line);
		}
		return;
	}
	if (map_cidr_keyword(s, end, "if", &q)) {
		rule = map_cidr_push(c, MAP_CIDR_IF, line);
		if (!map_cidr_network(&q, end, rule, d, line)) {
			c->n--;
			return;
		}
		while (q < end && map_cidr_space(*q))
			q++;
		if (q < end)
			map_diag_add(d, line, false, "text after the network of if");
		if (q < end || !map_ifs_push(ifs, c->n - 1, line, d))
			c->n--;
		return;
	}
	rule = map_cidr_push(c, MAP_CIDR_RULE, line);
	q = s;
	if (!map_cidr_network(&q, end, rule, d, line)) {
		c->n--;
		return;
	}
	while (q < end && map_cidr_space(*q))
		q++;
	if (q == end) {
		map_diag_add(d, line, false, "no result after the network");
		c->n--;
		return;
	}
	rule->result = map_xmalloc((size_t)(end - q) + 1);
	memcpy(rule->result, q, (size_t)(end - q));
	rule->result[end - q] = '\0';
	c->nrules++;
}

enum map_status
map_cidr_parse(const char *text, size_t len, const char *file, struct map_cidr **out,
               struct buf *diag)
{
	struct map_cidr *c = map_xmalloc(sizeof(*c));

	memset(c, 0, sizeof(*c));
	*out = NULL;
	if (map_rules_parse(text, len, file, map_cidr_line, c, diag) > 0) {
		map_cidr_free(c);
		return MAP_ERR_DATA;
	}
	*out = c;
	return MAP_OK;
}

void
map_cidr_free(struct map_cidr *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		free(c->v[i].result);
	free(c->v);
	free(c);
}

size_t
map_cidr_count(const struct map_cidr *c)
{
	return c->nrules;
}

static bool
map_cidr_match(const struct map_cidr_rule *rule, int family, const unsigned char *addr)
{
	bool in = rule->family == family && map_cidr_prefix_eq(rule->addr, addr, rule->prefix);

	return rule->neg ? !in : in;
}

enum map_result
map_cidr_lookup(const struct map_cidr *c, const char *spec, const char *key, struct buf *value,
                char *err, size_t errsz)
{
	unsigned char addr[MAP_CIDR_ADDR_BYTES];
	const struct map_cidr_rule *rule;
	size_t i = 0;
	int family;

	buf_reset(value);
	if (!map_cidr_addr(key, strlen(key), &family, addr))
		return MAP_NOTFOUND;
	while (i < c->n) {
		rule = &c->v[i];
		if (rule->kind == MAP_CIDR_IF) {
			i = map_cidr_match(rule, family, addr) ? i + 1 : rule->skip;
			continue;
		}
		i++;
		if (rule->kind == MAP_CIDR_ENDIF || !map_cidr_match(rule, family, addr))
			continue;
		if (buf_append_str(value, rule->result) != BUF_OK) {
			snprintf(err, errsz, "%s, line %u: result does not fit %zu bytes", spec,
			         rule->line, value->max);
			buf_reset(value);
			return MAP_ERROR;
		}
		buf_cstr(value);
		return MAP_FOUND;
	}
	return MAP_NOTFOUND;
}
