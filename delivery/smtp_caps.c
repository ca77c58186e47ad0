/*
 * smtp_caps: EHLO keywords to flags, a SIZE limit and AUTH mechanisms.
 * Each line is read as (pointer, length) from the parsed reply; nothing
 * here writes to it. A table maps keywords to flags and, for the two with
 * parameters, to a handler.
 */
#include "delivery/smtp_caps.h"

#include <string.h>
#include <strings.h>

/* RFC 1870 section 4 does not bound the number; 20 digits hold any
 * uint64_t, so more is certainly an overflow. */
#define SMTP_CAPS_SIZE_DIGITS_MAX 20

typedef void (*smtp_caps_param_fn)(struct smtp_caps *caps, const char *p, size_t len);

struct smtp_caps_keyword {
	const char *name;
	unsigned flag;
	smtp_caps_param_fn params;	/* NULL: parameters ignored */
};

static void smtp_caps_size(struct smtp_caps *caps, const char *p, size_t len);
static void smtp_caps_auth(struct smtp_caps *caps, const char *p, size_t len);
static void smtp_caps_xforward(struct smtp_caps *caps, const char *p, size_t len);

static const struct smtp_caps_keyword smtp_caps_keywords[] = {
	{ "PIPELINING", SMTP_CAPS_PIPELINING, NULL },
	{ "SIZE", SMTP_CAPS_SIZE, smtp_caps_size },
	{ "8BITMIME", SMTP_CAPS_8BITMIME, NULL },
	{ "SMTPUTF8", SMTP_CAPS_SMTPUTF8, NULL },
	{ "DSN", SMTP_CAPS_DSN, NULL },
	{ "STARTTLS", SMTP_CAPS_STARTTLS, NULL },
	{ "ENHANCEDSTATUSCODES", SMTP_CAPS_ENHANCEDSTATUSCODES, NULL },
	{ "CHUNKING", SMTP_CAPS_CHUNKING, NULL },
	{ "AUTH", SMTP_CAPS_AUTH, smtp_caps_auth },
	{ "XFORWARD", SMTP_CAPS_XFORWARD, smtp_caps_xforward },
};

static bool
smtp_caps_space(char c)
{
	/* SP is the separator (RFC 5321 4.1.1.1); HTAB is tolerated. */
	return c == ' ' || c == '\t';
}

/* RFC 5321 4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"). */
static bool
smtp_caps_keychar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

/* RFC 4422 section 3.1: mech-char = UPPER-ALPHA / DIGIT / HYPHEN /
 * UNDERSCORE; lower case is accepted and folded (Exim compares
 * mechanism names without case too). */
static bool
smtp_caps_mechchar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/*
 * SIZE [number]. A missing number or 0 means no fixed limit; so does a
 * number that does not parse or does not fit in 64 bits: we know SIZE is
 * supported but not the limit, and the server still enforces it.
 */
static void
smtp_caps_size(struct smtp_caps *caps, const char *p, size_t len)
{
	uint64_t v = 0, d;
	size_t i;

	caps->size_max = 0;
	while (len > 0 && smtp_caps_space(p[0]))
		p++, len--;
	while (len > 0 && smtp_caps_space(p[len - 1]))
		len--;
	if (len == 0 || len > SMTP_CAPS_SIZE_DIGITS_MAX)
		return;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return;
		d = (uint64_t)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return;
		v = v * 10 + d;
	}
	caps->size_max = v;
}

/* Add one mechanism name (upper-cased, once). Bad names are skipped. */
static void
smtp_caps_add_mech(struct smtp_caps *caps, const char *p, size_t len)
{
	char name[SMTP_CAPS_AUTH_MECH_SIZE];
	size_t i;

	if (len == 0 || len >= SMTP_CAPS_AUTH_MECH_SIZE)
		return;
	for (i = 0; i < len; i++) {
		if (!smtp_caps_mechchar(p[i]))
			return;
		name[i] = p[i] >= 'a' && p[i] <= 'z' ? (char)(p[i] - 'a' + 'A') : p[i];
	}
	name[len] = '\0';
	for (i = 0; i < caps->nauth; i++)
		if (strcmp(caps->auth[i], name) == 0)
			return;
	if (caps->nauth >= SMTP_CAPS_AUTH_MECHS_MAX)
		return;
	memcpy(caps->auth[caps->nauth++], name, len + 1);
}

/* AUTH mech *(SP mech), RFC 4954 section 3; the same after "AUTH=". */
static void
smtp_caps_auth(struct smtp_caps *caps, const char *p, size_t len)
{
	size_t i = 0, start;

	while (i < len) {
		while (i < len && smtp_caps_space(p[i]))
			i++;
		start = i;
		while (i < len && !smtp_caps_space(p[i]))
			i++;
		smtp_caps_add_mech(caps, p + start, i - start);
	}
}

/* XFORWARD attr *(SP attr): the names we know, any case; others ignored. */
static void
smtp_caps_xforward(struct smtp_caps *caps, const char *p, size_t len)
{
	static const struct { const char *name; unsigned bit; } attrs[] = {
		{ "NAME", SMTP_XFORWARD_NAME }, { "ADDR", SMTP_XFORWARD_ADDR },
		{ "PORT", SMTP_XFORWARD_PORT }, { "PROTO", SMTP_XFORWARD_PROTO },
		{ "HELO", SMTP_XFORWARD_HELO }, { "IDENT", SMTP_XFORWARD_IDENT },
		{ "SOURCE", SMTP_XFORWARD_SOURCE },
	};
	size_t i = 0, start;

	caps->xforward = 0;
	while (i < len) {
		while (i < len && smtp_caps_space(p[i]))
			i++;
		start = i;
		while (i < len && !smtp_caps_space(p[i]))
			i++;
		for (size_t a = 0; a < sizeof(attrs) / sizeof(attrs[0]); a++)
			if (strlen(attrs[a].name) == i - start &&
			    strncasecmp(p + start, attrs[a].name, i - start) == 0)
				caps->xforward |= attrs[a].bit;
	}
}

/* One extension line: keyword, then parameters after SP (or "=" for the
 * old AUTH form). Anything else is not a keyword we know: ignored. */
static void
smtp_caps_line(struct smtp_caps *caps, const char *p, size_t len)
{
	const struct smtp_caps_keyword *kw;
	size_t i = 0, klen, n;
	bool eq;

	while (i < len && smtp_caps_space(p[i]))
		i++;
	p += i;
	len -= i;
	klen = 0;
	while (klen < len && smtp_caps_keychar(p[klen]))
		klen++;
	if (klen == 0)
		return;
	eq = klen < len && p[klen] == '=';
	if (klen < len && !eq && !smtp_caps_space(p[klen]))
		return;
	for (n = 0; n < sizeof(smtp_caps_keywords) / sizeof(smtp_caps_keywords[0]); n++) {
		kw = &smtp_caps_keywords[n];
		if (strlen(kw->name) != klen || strncasecmp(kw->name, p, klen) != 0)
			continue;
		/* "AUTH=PLAIN LOGIN": only AUTH ever had this form. */
		if (eq && kw->flag != SMTP_CAPS_AUTH)
			return;
		caps->flags |= kw->flag;
		if (kw->params != NULL)
			kw->params(caps, klen < len ? p + klen + 1 : p + klen,
			           klen < len ? len - klen - 1 : 0);
		return;
	}
}

void
smtp_caps_parse(const struct smtp_reply *ehlo, struct smtp_caps *caps)
{
	const char *line;
	size_t i, len;

	memset(caps, 0, sizeof(*caps));
	/* Line 0 is "domain [greeting]", never an extension. */
	for (i = 1; i < ehlo->nlines; i++) {
		line = smtp_reply_line(ehlo, i, &len);
		smtp_caps_line(caps, line, len);
	}
}

bool
smtp_caps_auth_has(const struct smtp_caps *caps, const char *mech)
{
	size_t i;

	for (i = 0; i < caps->nauth; i++)
		if (strcasecmp(caps->auth[i], mech) == 0)
			return true;
	return false;
}
