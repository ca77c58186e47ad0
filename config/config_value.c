/*
 * config_value: parsers from expanded text to typed parameter values.
 *
 * Error policy: a bad value is reported in `why` and the parse returns
 * false; a list reports each bad item, one line each, naming it. Nothing
 * logs or exits. Out of memory is fatal(). Each parser is strict and
 * bounded (numbers checked for overflow, addresses through inet_pton),
 * because a running role must never meet a malformed value.
 */
#include "config/config_value.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/log.h"
#include "config/config_milter.h"
#include "config/config_rbl_reply.h"
#include "config/config_restrictions.h"

#define CONFIG_VALUE_PORT_MAX 65535
#define CONFIG_VALUE_IPV4_BITS 32
#define CONFIG_VALUE_IPV6_BITS 128
#define CONFIG_VALUE_IPV4_BYTES 4
#define CONFIG_VALUE_IPV6_BYTES 16
/* Longest host text we try as an address: a bracketed IPv6 literal fits. */
#define CONFIG_VALUE_HOST_MAX (INET6_ADDRSTRLEN + 2)
#define CONFIG_VALUE_KIBI 1024ULL
#define CONFIG_VALUE_MINUTE 60
#define CONFIG_VALUE_HOUR (60 * CONFIG_VALUE_MINUTE)
#define CONFIG_VALUE_DAY (24 * CONFIG_VALUE_HOUR)
#define CONFIG_VALUE_WEEK (7 * CONFIG_VALUE_DAY)
#define CONFIG_VALUE_MS_PER_S 1000ULL
/* Longest label of a domain name (RFC 1035 2.3.4). */
#define CONFIG_VALUE_LABEL_MAX 63

/* Separators of list items, as Postfix's CHARS_COMMA_SP. */
static const char config_value_separators[] = ", \t\r\n";

enum config_value_num {
	CONFIG_VALUE_NUM_OK,
	CONFIG_VALUE_NUM_BAD,	/* empty, or not only digits */
	CONFIG_VALUE_NUM_BIG,	/* more than CONFIG_VALUE_NUMBER_MAX */
};

/* A time unit suffix and its length in seconds. */
struct config_value_unit {
	char suffix;
	uint64_t factor;
};

static const struct config_value_unit config_value_size_units[] = {
	{ 'k', CONFIG_VALUE_KIBI },
	{ 'm', CONFIG_VALUE_KIBI * CONFIG_VALUE_KIBI },
	{ 'g', CONFIG_VALUE_KIBI * CONFIG_VALUE_KIBI * CONFIG_VALUE_KIBI },
};

static const struct config_value_unit config_value_time_units[] = {
	{ 's', 1 },
	{ 'm', CONFIG_VALUE_MINUTE },
	{ 'h', CONFIG_VALUE_HOUR },
	{ 'd', CONFIG_VALUE_DAY },
	{ 'w', CONFIG_VALUE_WEEK },
};

/* Delays of destination_rate_limits, in milliseconds; a bare number is
 * seconds. Suffixes are compared whole, so "ms" is not "m". */
static const struct {
	const char *suffix;
	uint64_t ms;
} config_value_delay_units[] = {
	{ "", CONFIG_VALUE_MS_PER_S },
	{ "ms", 1 },
	{ "s", CONFIG_VALUE_MS_PER_S },
	{ "m", CONFIG_VALUE_MINUTE * CONFIG_VALUE_MS_PER_S },
	{ "h", CONFIG_VALUE_HOUR * CONFIG_VALUE_MS_PER_S },
	{ "d", CONFIG_VALUE_DAY * CONFIG_VALUE_MS_PER_S },
	{ "w", CONFIG_VALUE_WEEK * CONFIG_VALUE_MS_PER_S },
};

/* The N/UNIT rates of destination_rate_limits: UNIT in milliseconds. */
static const struct config_value_unit config_value_rate_units[] = {
	{ 's', CONFIG_VALUE_MS_PER_S },
	{ 'm', CONFIG_VALUE_MINUTE * CONFIG_VALUE_MS_PER_S },
	{ 'h', CONFIG_VALUE_HOUR * CONFIG_VALUE_MS_PER_S },
	{ 'd', CONFIG_VALUE_DAY * CONFIG_VALUE_MS_PER_S },
};

#define CONFIG_VALUE_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static char *
config_value_strndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		fatal("out of memory (config value of %zu bytes)", n);
	return p;
}

static void *
config_value_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
		fatal("out of memory (config array of %zu)", n);
	return p;
}

void
config_value_quote(struct buf *out, const char *s, size_t len)
{
	/* log_printable writes at most 4 bytes (\ooo) per input byte. */
	char clean[CONFIG_VALUE_QUOTE_MAX * 4 + 1];
	bool cut = len > CONFIG_VALUE_QUOTE_MAX;

	log_printable(clean, sizeof(clean), s, cut ? CONFIG_VALUE_QUOTE_MAX : len);
	buf_append_printf(out, "\"%s%s\"", clean, cut ? "..." : "");
}

/* Append `bad WHAT "s" (reason)\n`; reason may be NULL. */
static void
config_value_bad(struct buf *why, const char *what, const char *s, size_t len,
                 const char *reason)
{
	buf_append_printf(why, "bad %s ", what);
	config_value_quote(why, s, len);
	if (reason != NULL)
		buf_append_printf(why, " (%s)", reason);
	buf_append_char(why, '\n');
}

static enum config_value_num
config_value_digits(const char *s, size_t len, uint64_t *out)
{
	uint64_t n = 0;
	size_t i;

	if (len == 0)
		return CONFIG_VALUE_NUM_BAD;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return CONFIG_VALUE_NUM_BAD;
		if (n > (CONFIG_VALUE_NUMBER_MAX - (uint64_t)(s[i] - '0')) / 10)
			return CONFIG_VALUE_NUM_BIG;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	*out = n;
	return CONFIG_VALUE_NUM_OK;
}

/*
 * A number with an optional one-letter unit suffix (case-insensitive);
 * a bare number is multiplied by bare_factor.
 */
static enum config_value_num
config_value_scaled(const char *s, const struct config_value_unit *units, size_t nunits,
                    uint64_t bare_factor, uint64_t *out)
{
	size_t len = strlen(s), i;
	uint64_t n, factor = bare_factor;
	enum config_value_num r;

	if (len > 0 && !(s[len - 1] >= '0' && s[len - 1] <= '9')) {
		for (i = 0; i < nunits; i++)
			if (tolower((unsigned char)s[len - 1]) == units[i].suffix)
				break;
		if (i == nunits)
			return CONFIG_VALUE_NUM_BAD;
		factor = units[i].factor;
		len--;
	}
	if ((r = config_value_digits(s, len, &n)) != CONFIG_VALUE_NUM_OK)
		return r;
	if (n != 0 && factor > CONFIG_VALUE_NUMBER_MAX / n)
		return CONFIG_VALUE_NUM_BIG;
	*out = n * factor;
	return CONFIG_VALUE_NUM_OK;
}

bool
config_value_port(const char *s, size_t len, unsigned *port)
{
	uint64_t n;

	if (config_value_digits(s, len, &n) != CONFIG_VALUE_NUM_OK || n == 0 ||
	    n > CONFIG_VALUE_PORT_MAX)
		return false;
	*port = (unsigned)n;
	return true;
}

bool
config_value_time(const char *s, unsigned flags, int64_t *out, struct buf *why)
{
	uint64_t bare = 1, n;
	enum config_value_num r;

	if (flags & CONFIG_F_UNIT_MIN)
		bare = CONFIG_VALUE_MINUTE;
	else if (flags & CONFIG_F_UNIT_HOUR)
		bare = CONFIG_VALUE_HOUR;
	else if (flags & CONFIG_F_UNIT_DAY)
		bare = CONFIG_VALUE_DAY;
	r = config_value_scaled(s, config_value_time_units,
	    CONFIG_VALUE_NELEM(config_value_time_units), bare, &n);
	if (r == CONFIG_VALUE_NUM_OK) {
		*out = (int64_t)n;
		return true;
	}
	config_value_bad(why, "time", s, strlen(s), r == CONFIG_VALUE_NUM_BIG ? "too large" :
	    "use a number with an optional s, m, h, d or w suffix");
	return false;
}

void
config_value_split(struct config_list *list, const char *text)
{
	const char *p;
	size_t n = 0, len;

	for (p = text + strspn(text, config_value_separators); *p != '\0';
	    p += len, p += strspn(p, config_value_separators)) {
		len = strcspn(p, config_value_separators);
		n++;
	}
	list->items = config_value_calloc(n, sizeof(*list->items));
	list->n = 0;
	for (p = text + strspn(text, config_value_separators); *p != '\0';
	    p += len, p += strspn(p, config_value_separators)) {
		len = strcspn(p, config_value_separators);
		list->items[list->n++] = config_value_strndup(p, len);
	}
}

/* ---- one parser per type; each reads v->text ---- */

typedef bool config_value_parser(struct config_value *v, unsigned flags,
                                 const char *choices, struct buf *why);

static bool
config_value_parse_str(struct config_value *v, unsigned flags, const char *choices,
                       struct buf *why)
{
	(void)v, (void)flags, (void)choices, (void)why;
	return true;
}

/* RBL_REPLY: a template whose $names and ${...} forms config_rbl_reply_check() knows. */
static bool
config_value_parse_rbl_reply(struct config_value *v, unsigned flags, const char *choices,
                             struct buf *why)
{
	char reason[160];

	(void)flags, (void)choices;
	if (config_rbl_reply_check(v->text, reason, sizeof(reason)) == 0)
		return true;
	buf_append_printf(why, "%s\n", reason);
	return false;
}

/* FILTER: empty, or config_filter_valid(). */
static bool
config_value_parse_filter(struct config_value *v, unsigned flags, const char *choices,
                          struct buf *why)
{
	char reason[160];

	(void)flags, (void)choices;
	if (v->text[0] == '\0' || config_filter_valid(v->text, strlen(v->text), reason,
	    sizeof(reason)))
		return true;
	buf_append_str(why, "bad content filter ");
	config_value_quote(why, v->text, strlen(v->text));
	buf_append_printf(why, ": %s\n", reason);
	return false;
}

/* MILTERS: a list config_milter_parse() accepts. */
static bool
config_value_parse_milters(struct config_value *v, unsigned flags, const char *choices,
                           struct buf *why)
{
	struct config_milter m[CONFIG_MILTER_MAX];
	char reason[200];
	size_t n;

	(void)flags, (void)choices;
	if (config_milter_parse(v->text, m, &n, reason, sizeof(reason)) == 0)
		return true;
	buf_append_printf(why, "%s\n", reason);
	return false;
}

static bool
config_value_parse_bool(struct config_value *v, unsigned flags, const char *choices,
                        struct buf *why)
{
	static const char *const yes[] = { "yes", "true", "1" };
	static const char *const no[] = { "no", "false", "0" };
	size_t i;

	(void)flags, (void)choices;
	for (i = 0; i < CONFIG_VALUE_NELEM(yes); i++) {
		if (strcasecmp(v->text, yes[i]) == 0) {
			v->b = true;
			return true;
		}
		if (strcasecmp(v->text, no[i]) == 0) {
			v->b = false;
			return true;
		}
	}
	config_value_bad(why, "boolean", v->text, strlen(v->text), "use yes or no");
	return false;
}

static bool
config_value_parse_int(struct config_value *v, unsigned flags, const char *choices,
                       struct buf *why)
{
	enum config_value_num r;

	(void)flags, (void)choices;
	r = config_value_digits(v->text, strlen(v->text), &v->u);
	if (r == CONFIG_VALUE_NUM_OK)
		return true;
	config_value_bad(why, "number", v->text, strlen(v->text),
	    r == CONFIG_VALUE_NUM_BIG ? "too large" : "use a non-negative decimal number");
	return false;
}

static bool
config_value_parse_size(struct config_value *v, unsigned flags, const char *choices,
                        struct buf *why)
{
	enum config_value_num r;

	(void)flags, (void)choices;
	r = config_value_scaled(v->text, config_value_size_units,
	    CONFIG_VALUE_NELEM(config_value_size_units), 1, &v->u);
	if (r == CONFIG_VALUE_NUM_OK)
		return true;
	config_value_bad(why, "size", v->text, strlen(v->text), r == CONFIG_VALUE_NUM_BIG ?
	    "too large" : "use a number of bytes with an optional k, m or g suffix");
	return false;
}

static bool
config_value_parse_time(struct config_value *v, unsigned flags, const char *choices,
                        struct buf *why)
{
	(void)choices;
	return config_value_time(v->text, flags, &v->t, why);
}

/*
 * The choice of "a|b|c" that s[0..len) names, case-insensitively: its
 * start in choices, length in *clen; NULL when none does.
 */
static const char *
config_value_choice(const char *choices, const char *s, size_t len, size_t *clen)
{
	const char *p = choices, *bar;

	for (;;) {
		bar = strchr(p, '|');
		*clen = bar ? (size_t)(bar - p) : strlen(p);
		if (*clen == len && strncasecmp(p, s, len) == 0)
			return p;
		if (bar == NULL)
			return NULL;
		p = bar + 1;
	}
}

/* Append `bad WHAT "s" (INTRO a, b, c)\n` for a value not in choices. */
static void
config_value_bad_choice(struct buf *why, const char *what, const char *s, const char *intro,
                        const char *choices)
{
	buf_append_printf(why, "bad %s ", what);
	config_value_quote(why, s, strlen(s));
	buf_append_printf(why, " (%s ", intro);
	for (; *choices != '\0'; choices++) {
		if (*choices == '|')
			buf_append_str(why, ", ");
		else
			buf_append_char(why, *choices);
	}
	buf_append_str(why, ")\n");
}

/* LIST; with choices, every item must be one of them and takes its spelling. */
static bool
config_value_parse_list(struct config_value *v, unsigned flags, const char *choices,
                        struct buf *why)
{
	const char *c;
	size_t i, clen;
	bool ok = true;

	(void)flags;
	config_value_split(&v->list, v->text);
	for (i = 0; choices != NULL && i < v->list.n; i++) {
		c = config_value_choice(choices, v->list.items[i], strlen(v->list.items[i]), &clen);
		if (c == NULL) {
			config_value_bad_choice(why, "item", v->list.items[i], "choose from:",
			    choices);
			ok = false;
			continue;
		}
		free(v->list.items[i]);
		v->list.items[i] = config_value_strndup(c, clen);
	}
	return ok;
}

static bool
config_value_parse_restrictions(struct config_value *v, unsigned flags, const char *choices,
                                struct buf *why)
{
	(void)flags, (void)choices;
	config_value_split(&v->list, v->text);
	return config_restrictions_check(&v->list, why) == 0;
}

/* ENUM: match one of "a|b|c" (case-insensitive) and keep its spelling. */
static bool
config_value_parse_enum(struct config_value *v, unsigned flags, const char *choices,
                        struct buf *why)
{
	const char *c;
	size_t clen;

	(void)flags;
	if ((c = config_value_choice(choices, v->text, strlen(v->text), &clen)) != NULL) {
		free(v->text);
		v->text = config_value_strndup(c, clen);
		return true;
	}
	config_value_bad_choice(why, "value", v->text, "choose one of:", choices);
	return false;
}

/* Copy len bytes of s into dst as a C string; false when it does not fit. */
static bool
config_value_copy(char *dst, size_t dstsz, const char *s, size_t len)
{
	if (len >= dstsz)
		return false;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return true;
}

/*
 * The host of a listen address, normalised into out: "*" or empty means
 * every address, "localhost" the IPv4 loopback (XXX: not also ::1, so a
 * host without IPv6 can still bind it), else an address literal.
 */
static bool
config_value_listen_host(const char *host, size_t len, bool bracketed,
                         char *out, size_t outsz)
{
	char tmp[CONFIG_VALUE_HOST_MAX + 1];
	unsigned char bin[CONFIG_VALUE_IPV6_BYTES];
	int family;

	if (len == 0 || (len == 1 && host[0] == '*'))
		return config_value_copy(out, outsz, bracketed ? "::" : "0.0.0.0",
		    strlen(bracketed ? "::" : "0.0.0.0"));
	if (!bracketed && len == strlen("localhost") && strncasecmp(host, "localhost", len) == 0)
		return config_value_copy(out, outsz, "127.0.0.1", strlen("127.0.0.1"));
	if (!config_value_copy(tmp, sizeof(tmp), host, len))
		return false;
	family = AF_INET;
	if (inet_pton(family, tmp, bin) != 1) {
		family = AF_INET6;
		if (!bracketed || inet_pton(family, tmp, bin) != 1)
			return false;
	}
	return inet_ntop(family, bin, out, (socklen_t)outsz) != NULL;
}

/* One item of a listen list: host:port, [v6]:port, *:port, :port. */
static bool
config_value_listen_item(const char *item, struct config_listen_addr *a, struct buf *why)
{
	const char *host = item, *colon, *end;
	bool bracketed = item[0] == '[';
	size_t hlen;

	if (bracketed) {
		host = item + 1;
		end = strchr(host, ']');
		colon = end ? end + 1 : NULL;
		if (colon == NULL || *colon != ':') {
			config_value_bad(why, "listen address", item, strlen(item),
			    "use [IPv6-address]:port");
			return false;
		}
		hlen = (size_t)(end - host);
	} else {
		colon = strrchr(item, ':');
		if (colon == NULL) {
			config_value_bad(why, "listen address", item, strlen(item),
			    "missing :port");
			return false;
		}
		hlen = (size_t)(colon - item);
	}
	if (!config_value_port(colon + 1, strlen(colon + 1), &a->port)) {
		config_value_bad(why, "listen address", item, strlen(item),
		    "port must be 1-65535");
		return false;
	}
	if (!config_value_listen_host(host, hlen, bracketed, a->host, sizeof(a->host))) {
		config_value_bad(why, "listen address", item, strlen(item), bracketed ?
		    "not an IP address" :
		    "host must be an IPv4 address, [IPv6 address], localhost or *");
		return false;
	}
	return true;
}

/* Parse each item of a list into slot i of an array of size bytes per
 * element; *count gets the good ones. Shared by LISTEN and NETWORKS. */
typedef bool config_value_item_fn(const char *item, void *slot, struct buf *why);

static bool
config_value_parse_items(const char *text, size_t size, config_value_item_fn *fn, void **array,
                         size_t *count, struct buf *why)
{
	struct config_list items = { 0, NULL };
	bool ok = true;
	size_t i;

	config_value_split(&items, text);
	*array = config_value_calloc(items.n, size);
	*count = 0;
	for (i = 0; i < items.n; i++) {
		if (fn(items.items[i], (char *)*array + *count * size, why))
			(*count)++;
		else
			ok = false;
		free(items.items[i]);
	}
	free(items.items);
	return ok;
}

static bool
config_value_listen_slot(const char *item, void *slot, struct buf *why)
{
	return config_value_listen_item(item, slot, why);
}

static bool
config_value_parse_listen(struct config_value *v, unsigned flags, const char *choices,
                          struct buf *why)
{
	void *array;
	bool ok;

	(void)flags, (void)choices;
	ok = config_value_parse_items(v->text, sizeof(*v->addrs), config_value_listen_slot, &array,
	                              &v->naddrs, why);
	v->addrs = array;
	return ok;
}

/* Clear the host bits: Postfix accepts 10.1.2.3/8 and means 10.0.0.0/8. */
static void
config_value_network_mask(struct config_network *net, unsigned bits)
{
	unsigned i, nbytes = bits / 8;

	for (i = 0; i < nbytes; i++) {
		unsigned keep = net->prefix > i * 8 ? net->prefix - i * 8 : 0;

		if (keep < 8)
			net->addr[i] &= (unsigned char)(0xff << (8 - keep));
	}
}

/* The address part of a network item: a.b.c.d, v6 or [v6]. */
static bool
config_value_network_addr(const char *item, const char **rest, struct config_network *net,
                          unsigned *bits)
{
	char tmp[CONFIG_VALUE_HOST_MAX + 1];
	const char *addr = item, *end;

	if (item[0] == '[') {
		addr = item + 1;
		if ((end = strchr(addr, ']')) == NULL)
			return false;
		*rest = end + 1;
	} else {
		end = item + strcspn(item, "/");
		*rest = end;
	}
	if (!config_value_copy(tmp, sizeof(tmp), addr, (size_t)(end - addr)))
		return false;
	memset(net->addr, 0, sizeof(net->addr));
	if (inet_pton(AF_INET, tmp, net->addr) == 1) {
		net->family = AF_INET;
		*bits = CONFIG_VALUE_IPV4_BITS;
	} else if (inet_pton(AF_INET6, tmp, net->addr) == 1) {
		net->family = AF_INET6;
		*bits = CONFIG_VALUE_IPV6_BITS;
	} else {
		return false;
	}
	return true;
}

/* One item of a network list: address, address/len, [v6], [v6]/len. */
static bool
config_value_network_item(const char *item, struct config_network *net, struct buf *why)
{
	const char *rest;
	unsigned bits;
	uint64_t len;
	char reason[sizeof("prefix length must be 0-128")];

	if (!config_value_network_addr(item, &rest, net, &bits)) {
		config_value_bad(why, "network", item, strlen(item),
		    "use address/prefix, [IPv6-address]/prefix or an address");
		return false;
	}
	net->prefix = bits;
	if (*rest == '\0')
		return true;
	if (*rest != '/') {
		config_value_bad(why, "network", item, strlen(item),
		    "use address/prefix, [IPv6-address]/prefix or an address");
		return false;
	}
	if (config_value_digits(rest + 1, strlen(rest + 1), &len) !=
	    CONFIG_VALUE_NUM_OK || len > bits) {
		snprintf(reason, sizeof(reason), "prefix length must be 0-%u", bits);
		config_value_bad(why, "network", item, strlen(item), reason);
		return false;
	}
	net->prefix = (unsigned)len;
	config_value_network_mask(net, bits);
	return true;
}

static bool
config_value_network_slot(const char *item, void *slot, struct buf *why)
{
	return config_value_network_item(item, slot, why);
}

static bool
config_value_parse_networks(struct config_value *v, unsigned flags, const char *choices,
                            struct buf *why)
{
	void *array;
	bool ok;

	(void)flags, (void)choices;
	ok = config_value_parse_items(v->text, sizeof(*v->nets), config_value_network_slot, &array,
	                              &v->nnets, why);
	v->nets = array;
	return ok;
}

/* ---- destination_rate_limits: DOMAIN=RATE items ---- */

static bool
config_value_is_domain_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_';
}

/* example.org (that domain) or .example.org (its subdomains) into r,
 * lower-cased: non-empty labels of letters, digits, '-' and '_'. */
static bool
config_value_rate_domain(const char *s, size_t len, struct config_rate *r)
{
	size_t i, label = 0;

	r->subdomains = len > 0 && s[0] == '.';
	if (r->subdomains) {
		s++;
		len--;
	}
	if (len == 0 || len > CONFIG_RATE_DOMAIN_MAX)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (!config_value_is_domain_char(s[i]) || ++label > CONFIG_VALUE_LABEL_MAX) {
			return false;
		}
		r->domain[i] = (char)tolower((unsigned char)s[i]);
	}
	r->domain[len] = '\0';
	return label > 0;
}

/* A delay: digits and an optional unit of config_value_delay_units. */
static enum config_value_num
config_value_delay_ms(const char *s, size_t len, uint64_t *out)
{
	size_t digits = 0, i;
	uint64_t n;
	enum config_value_num r;

	while (digits < len && s[digits] >= '0' && s[digits] <= '9')
		digits++;
	for (i = 0; i < CONFIG_VALUE_NELEM(config_value_delay_units); i++)
		if (strlen(config_value_delay_units[i].suffix) == len - digits &&
		    strncasecmp(config_value_delay_units[i].suffix, s + digits, len - digits) == 0)
			break;
	if (i == CONFIG_VALUE_NELEM(config_value_delay_units))
		return CONFIG_VALUE_NUM_BAD;
	if ((r = config_value_digits(s, digits, &n)) != CONFIG_VALUE_NUM_OK)
		return r;
	if (n != 0 && config_value_delay_units[i].ms > CONFIG_VALUE_NUMBER_MAX / n)
		return CONFIG_VALUE_NUM_BIG;
	*out = n * config_value_delay_units[i].ms;
	return CONFIG_VALUE_NUM_OK;
}

/*
 * RATE: a delay, or N/UNIT with N >= 1, turned into the delay between two
 * deliveries. Rounded up, so that N/UNIT is never exceeded: 3/s is 334 ms,
 * and more than 1000/s is 1 ms.
 */
static enum config_value_num
config_value_rate_ms(const char *s, size_t len, uint64_t *out)
{
	const char *slash = memchr(s, '/', len);
	size_t nlen, i;
	uint64_t n, unit;
	enum config_value_num r;

	if (slash == NULL)
		return config_value_delay_ms(s, len, out);
	nlen = (size_t)(slash - s);
	if (len - nlen != 2)
		return CONFIG_VALUE_NUM_BAD;
	for (i = 0; i < CONFIG_VALUE_NELEM(config_value_rate_units); i++)
		if (tolower((unsigned char)slash[1]) == config_value_rate_units[i].suffix)
			break;
	if (i == CONFIG_VALUE_NELEM(config_value_rate_units))
		return CONFIG_VALUE_NUM_BAD;
	if ((r = config_value_digits(s, nlen, &n)) != CONFIG_VALUE_NUM_OK)
		return r;
	if (n == 0)
		return CONFIG_VALUE_NUM_BAD;
	unit = config_value_rate_units[i].factor;
	*out = unit / n + (unit % n != 0);
	return CONFIG_VALUE_NUM_OK;
}

static bool
config_value_rate_item(const char *item, struct config_rate *r, struct buf *why)
{
	const char *eq = strchr(item, '=');
	enum config_value_num num;

	if (eq == NULL) {
		config_value_bad(why, "rate limit", item, strlen(item), "use DOMAIN=RATE");
		return false;
	}
	if (!config_value_rate_domain(item, (size_t)(eq - item), r)) {
		config_value_bad(why, "rate limit", item, strlen(item),
		    "DOMAIN must be a domain name, or .domain for its subdomains");
		return false;
	}
	num = config_value_rate_ms(eq + 1, strlen(eq + 1), &r->delay_ms);
	if (num != CONFIG_VALUE_NUM_OK) {
		config_value_bad(why, "rate limit", item, strlen(item),
		    num == CONFIG_VALUE_NUM_BIG ? "too large" :
		    "RATE must be a delay (500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1");
		return false;
	}
	return true;
}

/* For finding duplicates: by domain, then kind, then position. */
static int
config_value_rate_cmp(const void *a, const void *b)
{
	const struct config_rate *x = *(const struct config_rate *const *)a;
	const struct config_rate *y = *(const struct config_rate *const *)b;
	int d = strcmp(x->domain, y->domain);

	if (d != 0)
		return d;
	if (x->subdomains != y->subdomains)
		return x->subdomains ? 1 : -1;
	return x < y ? -1 : x > y;
}

/*
 * A domain given twice is a mistake (which one was meant?): report each
 * later item, in list order. item[i] is the text rates[i] came from.
 * Sorted, not pairwise: a list may be long.
 */
static bool
config_value_rates_unique(const struct config_rate *rates, size_t n, char *const *item,
                          struct buf *why)
{
	const struct config_rate **sorted;
	bool *dup, ok = true;
	size_t i;

	if (n < 2)
		return true;
	sorted = config_value_calloc(n, sizeof(*sorted));
	dup = config_value_calloc(n, sizeof(*dup));
	for (i = 0; i < n; i++)
		sorted[i] = &rates[i];
	qsort(sorted, n, sizeof(*sorted), config_value_rate_cmp);
	for (i = 1; i < n; i++)
		if (sorted[i]->subdomains == sorted[i - 1]->subdomains &&
		    strcmp(sorted[i]->domain, sorted[i - 1]->domain) == 0)
			dup[sorted[i] - rates] = true;
	for (i = 0; i < n; i++) {
		if (!dup[i])
			continue;
		buf_append_str(why, "bad rate limit ");
		config_value_quote(why, item[i], strlen(item[i]));
		buf_append_printf(why, " (%s%s given twice)\n", rates[i].subdomains ? "." : "",
		    rates[i].domain);
		ok = false;
	}
	free(sorted);
	free(dup);
	return ok;
}

/* RATES: each malformed item reported, then each duplicate. */
static bool
config_value_parse_rates(struct config_value *v, unsigned flags, const char *choices,
                         struct buf *why)
{
	struct config_list items = { 0, NULL };
	char **from;
	bool ok = true;
	size_t i;

	(void)flags, (void)choices;
	config_value_split(&items, v->text);
	v->rates = config_value_calloc(items.n, sizeof(*v->rates));
	from = config_value_calloc(items.n, sizeof(*from));
	for (i = 0; i < items.n; i++) {
		if (config_value_rate_item(items.items[i], &v->rates[v->nrates], why))
			from[v->nrates++] = items.items[i];
		else
			ok = false;
	}
	ok = config_value_rates_unique(v->rates, v->nrates, from, why) && ok;
	for (i = 0; i < items.n; i++)
		free(items.items[i]);
	free(items.items);
	free(from);
	return ok;
}

/* Indexed by enum config_type. */
static config_value_parser *const config_value_parsers[] = {
	[CONFIG_STR] = config_value_parse_str,
	[CONFIG_BOOL] = config_value_parse_bool,
	[CONFIG_INT] = config_value_parse_int,
	[CONFIG_SIZE] = config_value_parse_size,
	[CONFIG_TIME] = config_value_parse_time,
	[CONFIG_LIST] = config_value_parse_list,
	[CONFIG_RESTRICTIONS] = config_value_parse_restrictions,
	[CONFIG_ENUM] = config_value_parse_enum,
	[CONFIG_LISTEN] = config_value_parse_listen,
	[CONFIG_NETWORKS] = config_value_parse_networks,
	[CONFIG_RATES] = config_value_parse_rates,
	[CONFIG_FILTER] = config_value_parse_filter,
	[CONFIG_RBL_REPLY] = config_value_parse_rbl_reply,
	[CONFIG_MILTERS] = config_value_parse_milters,
};

bool
config_value_parse(struct config_value *v, enum config_type type, unsigned flags,
                   const char *choices, const char *text, struct buf *why)
{
	if ((size_t)type >= CONFIG_VALUE_NELEM(config_value_parsers) ||
	    config_value_parsers[type] == NULL)
		panic("config_value_parse: bad type %d", (int)type);
	v->text = config_value_strndup(text, strlen(text));
	return config_value_parsers[type](v, flags, choices, why);
}

void
config_value_free(struct config_value *v)
{
	size_t i;

	free(v->text);
	for (i = 0; i < v->list.n; i++)
		free(v->list.items[i]);
	free(v->list.items);
	free(v->nets);
	free(v->addrs);
	free(v->rates);
	memset(v, 0, sizeof(*v));
}
