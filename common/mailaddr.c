/*
 * mailaddr: the envelope address parser (RFC 5321 section 4.1.2 Path and
 * Mailbox, 4.1.3 address literals, RFC 6531 section 3.3 UTF-8 extensions).
 *
 * It owns nothing: it reads (pointer, length), never writes to its input,
 * and fills a caller's struct mailaddr. Errors are returned (an enum plus a
 * static phrase); it never logs and never exits.
 *
 * The scan is structural, one byte class at a time, and never searches
 * for '>' or '@': a quoted local part may contain both ("a>@b"@c), so the
 * only '@' that splits local part from domain is the one the grammar
 * reaches, and a second unquoted '@' is a syntax error (relay tricks,
 * protocols-reference.md).
 */
#include "common/mailaddr.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "common/utf8.h"

/* RFC 1035 section 2.3.4: 63 octets per label (ASCII labels; see below). */
#define MAILADDR_LABEL_MAX 63
/* Longest text after "IPv6:" handed to inet_pton(); INET6_ADDRSTRLEN is 46. */
#define MAILADDR_IPV6_TEXT_MAX 64
/* "IPv6:" tag of RFC 5321 section 4.1.3 (case-insensitive like all ABNF strings). */
#define MAILADDR_IPV6_TAG "IPv6:"
#define MAILADDR_IPV6_TAG_LEN 5

/* Reply phrases. */
#define WHY_SYNTAX       "bad address syntax"
#define WHY_EMPTY        "empty address"
#define WHY_NO_DOMAIN    "domain part missing"
#define WHY_BAD_DOMAIN   "bad domain syntax"
#define WHY_BAD_LITERAL  "bad address literal"
#define WHY_BAD_ROUTE    "bad source route"
#define WHY_BAD_UTF8     "malformed UTF-8 in address"
#define WHY_UNTERMINATED "unterminated address"
#define WHY_NULL         "null address not allowed here"
#define WHY_NO_BRACKETS  "address must be enclosed in <>"
#define WHY_TOO_LONG     "address too long"
#define WHY_LOCAL_LONG   "local part too long"
#define WHY_DOMAIN_LONG  "domain too long"
#define WHY_NEED_UTF8    "UTF-8 address needs SMTPUTF8"

/* One scan of one path. */
struct mailaddr_scan {
	const unsigned char *p;
	size_t len;
	bool brackets;		/* the path began with '<' */
	bool saw_utf8;		/* a well-formed non-ASCII sequence was seen */
	const char *why;
};

static bool
mailaddr_is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 section 3.2.3 atext. '%' and '!' are ordinary here: the relay
 * decision on them is made elsewhere, on this parsed form. */
static bool
mailaddr_is_atext(unsigned char c)
{
	return mailaddr_is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 5321 section 4.1.2 qtextSMTP: printable ASCII except '"' and '\'. */
static bool
mailaddr_is_qtext(unsigned char c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

/* RFC 5321 section 4.1.3 dcontent: printable ASCII except '[', '\', ']'. */
static bool
mailaddr_is_dcontent(unsigned char c)
{
	return (c >= 33 && c <= 90) || (c >= 94 && c <= 126);
}

static enum mailaddr_result
mailaddr_fail(struct mailaddr_scan *s, enum mailaddr_result r, const char *why)
{
	s->why = why;
	return r;
}

/*
 * Check a Domain (RFC 5321 4.1.2: sub-domain *("." sub-domain), sub-domain
 * = Let-dig [Ldh-str]); with utf8, a label may hold U-labels (RFC 6531
 * 3.3), whose non-ASCII sequences count as Let-dig. trailing_dot allows
 * one final dot (a fully qualified name as sent; ignored for comparison).
 *
 * XXX The 63-octet label limit is applied to ASCII labels only: a U-label's
 * length that matters is that of its A-label, which is computed when the
 * domain is converted for DNS, not here.
 *
 * A final label of digits only is refused (RFC 1123 2.1, RFC 3696 2): it
 * makes user@192.0.2.1 look like a host address, which must be written as
 * a literal [192.0.2.1].
 */
static enum mailaddr_result
mailaddr_check_domain(const unsigned char *p, size_t len, bool utf8, bool trailing_dot,
                      const char **why)
{
	size_t i = 0, label_start, label_len;
	bool ascii, digits;

	if (len == 0) {
		*why = WHY_NO_DOMAIN;
		return MAILADDR_SYNTAX;
	}
	if (len > MAILADDR_DOMAIN_MAX) {
		*why = WHY_DOMAIN_LONG;
		return MAILADDR_TOO_LONG;
	}
	if (trailing_dot && len > 1 && p[len - 1] == '.')
		len--;
	*why = WHY_BAD_DOMAIN;
	for (;;) {
		label_start = i;
		ascii = digits = true;
		while (i < len && p[i] != '.') {
			if (p[i] >= 0x80) {
				size_t n = utf8 ? utf8_sequence_len(p + i, len - i) : 0;
				if (n == 0) {
					*why = utf8 ? WHY_BAD_UTF8 : WHY_BAD_DOMAIN;
					return MAILADDR_SYNTAX;
				}
				ascii = digits = false;
				i += n;
				continue;
			}
			if (!mailaddr_is_alnum(p[i]) && p[i] != '-')
				return MAILADDR_SYNTAX;
			if (p[i] < '0' || p[i] > '9')
				digits = false;
			i++;
		}
		label_len = i - label_start;
		if (label_len == 0)
			return MAILADDR_SYNTAX;	/* empty label: "..", leading dot */
		if (p[label_start] == '-' || p[i - 1] == '-')
			return MAILADDR_SYNTAX;	/* Let-dig at both ends */
		if (ascii && label_len > MAILADDR_LABEL_MAX)
			return MAILADDR_SYNTAX;
		if (i == len)
			break;
		i++;			/* the dot */
	}
	if (digits)
		return MAILADDR_SYNTAX;
	*why = NULL;
	return MAILADDR_OK;
}

/* IPv4-address-literal: Snum 3("." Snum), Snum 1*3DIGIT in 0..255. */
static bool
mailaddr_is_ipv4_text(const unsigned char *p, size_t len)
{
	size_t i = 0, parts = 0, digits;
	unsigned value;

	for (;;) {
		value = 0;
		digits = 0;
		while (i < len && p[i] >= '0' && p[i] <= '9' && digits < 3) {
			value = value * 10 + (unsigned)(p[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || value > 255)
			return false;
		parts++;
		if (i == len)
			break;
		if (p[i] != '.' || parts == 4)
			return false;
		i++;
	}
	return parts == 4;
}

/* IPv6-addr of RFC 5321 section 4.1.3, checked by inet_pton(). */
static bool
mailaddr_is_ipv6_text(const unsigned char *p, size_t len)
{
	char text[MAILADDR_IPV6_TEXT_MAX + 1];
	struct in6_addr a6;
	size_t i;

	if (len == 0 || len > MAILADDR_IPV6_TEXT_MAX)
		return false;
	for (i = 0; i < len; i++) {
		if (!mailaddr_is_dcontent(p[i]))	/* also keeps NUL out */
			return false;
		text[i] = (char)p[i];
	}
	text[len] = '\0';
	return inet_pton(AF_INET6, text, &a6) == 1;
}

/* General-address-literal: Standardized-tag ":" 1*dcontent, with the tag an
 * Ldh-str (ends in Let-dig). Accepted syntactically. */
static bool
mailaddr_is_general_literal(const unsigned char *p, size_t len)
{
	size_t i = 0;

	while (i < len && (mailaddr_is_alnum(p[i]) || p[i] == '-'))
		i++;
	if (i == 0 || i == len || p[i] != ':' || !mailaddr_is_alnum(p[i - 1]))
		return false;
	if (++i == len)
		return false;
	for (; i < len; i++)
		if (!mailaddr_is_dcontent(p[i]))
			return false;
	return true;
}

bool
mailaddr_is_address_literal(const char *cp, size_t len)
{
	const unsigned char *p = (const unsigned char *)cp;
	const unsigned char *in;
	size_t n, i;
	bool dotted = true;

	if (len < 3 || len > MAILADDR_DOMAIN_MAX || p[0] != '[' || p[len - 1] != ']')
		return false;
	in = p + 1;
	n = len - 2;
	if (n >= MAILADDR_IPV6_TAG_LEN &&
	    strncasecmp((const char *)in, MAILADDR_IPV6_TAG, MAILADDR_IPV6_TAG_LEN) == 0)
		return mailaddr_is_ipv6_text(in + MAILADDR_IPV6_TAG_LEN, n - MAILADDR_IPV6_TAG_LEN);
	for (i = 0; i < n; i++)
		if (!((in[i] >= '0' && in[i] <= '9') || in[i] == '.'))
			dotted = false;
	if (dotted)
		return mailaddr_is_ipv4_text(in, n);
	return mailaddr_is_general_literal(in, n);
}

bool
mailaddr_is_domain(const char *p, size_t len, bool utf8)
{
	const char *why;

	return mailaddr_check_domain((const unsigned char *)p, len, utf8, false, &why) == MAILADDR_OK;
}

/* Is p[i] the byte that ends a mailbox: '>' in brackets, SP or the end
 * without them. */
static bool
mailaddr_at_end(const struct mailaddr_scan *s, size_t i)
{
	if (s->brackets)
		return i < s->len && s->p[i] == '>';
	return i == s->len || s->p[i] == ' ';
}

/* A non-ASCII byte at p[*i]: step over a well-formed sequence. Without
 * MAILADDR_ALLOW_UTF8 the scan goes on and the caller answers
 * MAILADDR_UTF8 at the end, so that 553 5.6.7 is given only for an address
 * that would be valid with SMTPUTF8. */
static enum mailaddr_result
mailaddr_scan_utf8(struct mailaddr_scan *s, size_t *i)
{
	size_t n = utf8_sequence_len(s->p + *i, s->len - *i);

	if (n == 0)
		return mailaddr_fail(s, MAILADDR_SYNTAX, WHY_BAD_UTF8);
	s->saw_utf8 = true;
	*i += n;
	return MAILADDR_OK;
}

/* Quoted-string: DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE, where
 * quoted-pairSMTP is '\' and one printable ASCII byte (RFC 5321 4.1.2). */
static enum mailaddr_result
mailaddr_scan_quoted(struct mailaddr_scan *s, size_t *pos)
{
	size_t i = *pos + 1;
	enum mailaddr_result r;

	for (;;) {
		if (i >= s->len)
			return mailaddr_fail(s, MAILADDR_SYNTAX, WHY_UNTERMINATED);
		if (s->p[i] == '"')
			break;
		if (s->p[i] == '\\') {
			if (i + 1 >= s->len || s->p[i + 1] < 32 || s->p[i + 1] > 126)
				return mailaddr_fail(s, MAILADDR_SYNTAX, WHY_SYNTAX);
			i += 2;
		} else if (s->p[i] >= 0x80) {
			if ((r = mailaddr_scan_utf8(s, &i)) != MAILADDR_OK)
				return r;
		} else if (mailaddr_is_qtext(s->p[i])) {
			i++;
		} else {
			/* NUL, CR, LF and other controls: never in an address. */
			return mailaddr_fail(s, MAILADDR_SYNTAX, WHY_SYNTAX);
		}
	}
	*pos = i + 1;
	return MAILADDR_OK;
}

/* Dot-string: Atom *("." Atom); no leading, trailing or double dot. */
static enum mailaddr_result
mailaddr_scan_dot_string(struct mailaddr_scan *s, size_t *pos)
{
	size_t i = *pos;
	bool want_atom = true;	/* at the start or right after a dot */
	enum mailaddr_result r;

	while (i < s->len) {
		if (mailaddr_is_atext(s->p[i])) {
			i++;
		} else if (s->p[i] >= 0x80) {
			if ((r = mailaddr_scan_utf8(s, &i)) != MAILADDR_OK)
				return r;
		} else if (s->p[i] == '.' && !want_atom) {
			i++;
			want_atom = true;
			continue;
		} else {
			break;
		}
		want_atom = false;
	}
	if (want_atom)
		return mailaddr_fail(s, MAILADDR_SYNTAX, i == *pos ? WHY_EMPTY : WHY_SYNTAX);
	*pos = i;
	return MAILADDR_OK;
}

/* The run of bytes a Domain can be made of; the check comes after. */
static size_t
mailaddr_domain_run(const struct mailaddr_scan *s, size_t i)
{
	while (i < s->len && (mailaddr_is_alnum(s->p[i]) || s->p[i] == '-' || s->p[i] == '.' ||
	                      s->p[i] >= 0x80))
		i++;
	return i;
}

/* Domain (one trailing dot tolerated) or address-literal after the '@'. */
static enum mailaddr_result
mailaddr_scan_domain(struct mailaddr_scan *s, size_t *pos, bool *literal)
{
	size_t i = *pos, end;
	enum mailaddr_result r;
	const char *why;

	*literal = false;
	if (i < s->len && s->p[i] == '[') {
		end = i + 1;
		while (end < s->len && mailaddr_is_dcontent(s->p[end]))
			end++;
		if (end >= s->len || s->p[end] != ']')
			return mailaddr_fail(s, MAILADDR_SYNTAX, WHY_BAD_LITERAL);
		end++;
		if (end - i > MAILADDR_DOMAIN_MAX)
			return mailaddr_fail(s, MAILADDR_TOO_LONG, WHY_DOMAIN_LONG);
		if (!mailaddr_is_address_literal((const char *)s->p + i, end - i))
			return mailaddr_fail(s, MAILADDR_SYNTAX, WHY_BAD_LITERAL);
		*literal = true;
		*pos = end;
		return MAILADDR_OK;
	}
	end = mailaddr_domain_run(s, i);
	/* Every byte is checked for UTF-8 form; whether UTF-8 is allowed at
	 * all is decided once, at the end of the path. */
	r = mailaddr_check_domain(s->p + i, end - i, true, true, &why);
	if (r != MAILADDR_OK)
		return mailaddr_fail(s, r, why);
	for (; i < end; i++)
		if (s->p[i] >= 0x80)
			s->saw_utf8 = true;
	*pos = end;
	return MAILADDR_OK;
}

/* A-d-l ":" (RFC 5321 4.1.2): "@" Domain *("," "@" Domain) ":", parsed
 * and then ignored (RFC 5321 3.6.1 and appendix C). */
static enum mailaddr_result
mailaddr_scan_route(struct mailaddr_scan *s, size_t *pos)
{
	size_t i = *pos, end;
	enum mailaddr_result r;
	const char *why;

	for (;;) {
		if (i >= s->len || s->p[i] != '@')
			return mailaddr_fail(s, MAILADDR_SYNTAX, WHY_BAD_ROUTE);
		i++;
		end = mailaddr_domain_run(s, i);
		r = mailaddr_check_domain(s->p + i, end - i, true, true, &why);
		if (r != MAILADDR_OK)
			return mailaddr_fail(s, r, r == MAILADDR_SYNTAX ? WHY_BAD_ROUTE : why);
		for (; i < end; i++)
			if (s->p[i] >= 0x80)
				s->saw_utf8 = true;
		if (i < s->len && s->p[i] == ',') {
			i++;
			continue;
		}
		if (i < s->len && s->p[i] == ':')
			break;
		return mailaddr_fail(s, MAILADDR_SYNTAX, WHY_BAD_ROUTE);
	}
	*pos = i + 1;
	return MAILADDR_OK;
}

/* Copy n bytes and a NUL; the caller has checked n against the size. */
static void
mailaddr_copy(char *dst, const unsigned char *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Fill out from the checked spans. Limits were checked: local <= 64,
 * domain <= 255, and local + "@" + domain <= path - 2 <= 254. */
static void
mailaddr_fill(struct mailaddr *out, const struct mailaddr_scan *s, size_t local_off,
              size_t local_len, size_t domain_off, size_t domain_len)
{
	size_t i, lc_len;

	mailaddr_copy(out->local, s->p + local_off, local_len);
	mailaddr_copy(out->domain, s->p + domain_off, domain_len);
	memcpy(out->addr, s->p + local_off, local_len);
	if (domain_len > 0) {
		out->addr[local_len] = '@';
		memcpy(out->addr + local_len + 1, s->p + domain_off, domain_len);
		out->addr[local_len + 1 + domain_len] = '\0';
	} else {
		out->addr[local_len] = '\0';
	}
	lc_len = domain_len;
	if (lc_len > 1 && out->domain[lc_len - 1] == '.')
		lc_len--;
	for (i = 0; i < lc_len; i++) {
		char c = out->domain[i];
		out->domain_lc[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out->domain_lc[lc_len] = '\0';
}

/* RFC 5321 4.1.1.3 and 4.5.1: the bare "<Postmaster>", case-insensitive,
 * unquoted, without a source route. */
static bool
mailaddr_is_postmaster(const struct mailaddr_scan *s, size_t off, size_t len)
{
	return len == 10 && strncasecmp((const char *)s->p + off, "postmaster", 10) == 0;
}

enum mailaddr_result
mailaddr_parse_path(const char *cp, size_t len, unsigned flags, struct mailaddr *out,
                    size_t *consumed, const char **why)
{
	struct mailaddr_scan s = { .p = (const unsigned char *)cp, .len = len };
	size_t i = 0, start, local_off, local_len, domain_off = 0, domain_len = 0, path_len;
	enum mailaddr_result r;
	bool quoted, had_route = false, literal = false, postmaster = false;

	memset(out, 0, sizeof(*out));
	if (consumed != NULL)
		*consumed = 0;
	if (why != NULL)
		*why = NULL;

	while (i < len && s.p[i] == ' ')
		i++;
	start = i;
	if (i == len) {
		r = mailaddr_fail(&s, MAILADDR_SYNTAX, WHY_EMPTY);
		goto fail;
	}
	if (s.p[i] == '<') {
		s.brackets = true;
		i++;
		/* RFC 5321 4.5.5: the null reverse-path. */
		if (i < len && s.p[i] == '>') {
			if (!(flags & MAILADDR_ALLOW_NULL)) {
				r = mailaddr_fail(&s, MAILADDR_SYNTAX, WHY_NULL);
				goto fail;
			}
			out->null = true;
			if (consumed != NULL)
				*consumed = i + 1;
			return MAILADDR_OK;
		}
		if (i < len && s.p[i] == '@') {
			if ((r = mailaddr_scan_route(&s, &i)) != MAILADDR_OK)
				goto fail;
			had_route = true;
		}
	} else if (!(flags & MAILADDR_ALLOW_NO_BRACKETS)) {
		r = mailaddr_fail(&s, MAILADDR_SYNTAX, WHY_NO_BRACKETS);
		goto fail;
	}

	/* Local-part = Dot-string / Quoted-string. */
	local_off = i;
	quoted = i < len && s.p[i] == '"';
	r = quoted ? mailaddr_scan_quoted(&s, &i) : mailaddr_scan_dot_string(&s, &i);
	if (r != MAILADDR_OK)
		goto fail;
	local_len = i - local_off;

	if (i < len && s.p[i] == '@') {
		i++;
		domain_off = i;
		if ((r = mailaddr_scan_domain(&s, &i, &literal)) != MAILADDR_OK)
			goto fail;
		domain_len = i - domain_off;
	} else if (mailaddr_at_end(&s, i) && !quoted && !had_route &&
	           (flags & MAILADDR_ALLOW_POSTMASTER) && mailaddr_is_postmaster(&s, local_off, local_len)) {
		postmaster = true;
	} else if (mailaddr_at_end(&s, i) || i == len) {
		r = mailaddr_fail(&s, MAILADDR_SYNTAX, WHY_NO_DOMAIN);
		goto fail;
	} else {
		r = mailaddr_fail(&s, MAILADDR_SYNTAX, WHY_SYNTAX);
		goto fail;
	}

	/* What ends the mailbox: '>' in brackets, SP or the end without. A
	 * second '@' (victim@target@relay) stops here too. */
	if (!mailaddr_at_end(&s, i)) {
		r = mailaddr_fail(&s, MAILADDR_SYNTAX, s.brackets && i == len ? WHY_UNTERMINATED : WHY_SYNTAX);
		goto fail;
	}
	if (s.brackets) {
		i++;
		path_len = i - start;
	} else {
		path_len = i - start + 2;	/* as if it had its < > */
	}

	/* RFC 5321 4.5.3.1 limits. */
	if (local_len > MAILADDR_LOCAL_MAX) {
		r = mailaddr_fail(&s, MAILADDR_TOO_LONG, WHY_LOCAL_LONG);
		goto fail;
	}
	if (path_len > MAILADDR_PATH_MAX) {
		r = mailaddr_fail(&s, MAILADDR_TOO_LONG, WHY_TOO_LONG);
		goto fail;
	}
	/* RFC 6531 3.3: non-ASCII only when the client said SMTPUTF8. */
	if (s.saw_utf8 && !(flags & MAILADDR_ALLOW_UTF8)) {
		r = mailaddr_fail(&s, MAILADDR_UTF8, WHY_NEED_UTF8);
		goto fail;
	}

	mailaddr_fill(out, &s, local_off, local_len, domain_off, domain_len);
	out->postmaster = postmaster;
	out->quoted = quoted;
	out->literal = literal;
	out->utf8 = s.saw_utf8;
	out->had_route = had_route;
	if (consumed != NULL)
		*consumed = i;
	return MAILADDR_OK;

fail:
	memset(out, 0, sizeof(*out));
	if (why != NULL)
		*why = s.why != NULL ? s.why : WHY_SYNTAX;
	return r;
}
