/*
 * sendmail_headers: line ends, the lone dot, dot-stuffing, the header
 * section, -t recipients and the headers a local submission lacks. Pure
 * functions; errors are returned with a short reason. Out of memory is
 * fatal() (via buf and sendmail_xrealloc).
 */
#include "tools/sendmail_headers.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

/* ---- the body ---- */

/* Where the converter stands after the bytes it has seen. */
enum {
	BODY_BOL = 0,	/* at the start of a line */
	BODY_MID,	/* inside a line */
	BODY_CR,	/* inside a line, a CR not yet written: CRLF or a lone CR? */
	BODY_DOT,	/* a line that so far is "." (nothing written yet) */
	BODY_DOT_CR,	/* a line that so far is ".\r" */
};

void
sendmail_body_init(struct sendmail_body *b, bool ignore_dots)
{
	b->state = BODY_BOL;
	b->ignore_dots = ignore_dots;
}

static inline void
body_put(struct buf *out, const char *s, size_t n)
{
	if (buf_append(out, s, n) != BUF_OK)
		panic("sendmail body buffer too small");
}

size_t
sendmail_body_feed(struct sendmail_body *b, const char *p, size_t n, struct buf *out, bool *end)
{
	size_t i = 0;

	*end = false;
	while (i < n) {
		char c = p[i];

		switch (b->state) {
		case BODY_BOL:
			if (c == '.' && b->ignore_dots) {
				/* RFC 5321 4.5.2: a leading dot is doubled. */
				body_put(out, "..", 2);
				b->state = BODY_MID;
			} else if (c == '.') {
				b->state = BODY_DOT;	/* ".\n" ends the input */
			} else if (c == '\n') {
				body_put(out, "\r\n", 2);	/* bare LF: a line end */
			} else if (c == '\r') {
				b->state = BODY_CR;
			} else {
				body_put(out, &c, 1);
				b->state = BODY_MID;
			}
			i++;
			break;
		case BODY_MID:
			if (c == '\n') {
				body_put(out, "\r\n", 2);
				b->state = BODY_BOL;
			} else if (c == '\r') {
				b->state = BODY_CR;
			} else {
				/* The common case: copy the run up to the next line end. */
				size_t run = 1;

				while (i + run < n && p[i + run] != '\n' && p[i + run] != '\r')
					run++;
				body_put(out, p + i, run);
				i += run;
				continue;
			}
			i++;
			break;
		case BODY_CR:
			if (c == '\n') {
				body_put(out, "\r\n", 2);
				b->state = BODY_BOL;
				i++;
			} else {
				/* A lone CR is data (RFC 5321 2.3.8 leaves it to us;
				 * smtpd decides). Look at c again, inside the line. */
				body_put(out, "\r", 1);
				b->state = BODY_MID;
			}
			break;
		case BODY_DOT:
		case BODY_DOT_CR:
			if (c == '\n') {
				*end = true;	/* the lone dot: the message ends */
				return i + 1;
			}
			if (c == '\r' && b->state == BODY_DOT) {
				b->state = BODY_DOT_CR;
				i++;
				break;
			}
			/* Not a lone dot: a dot-stuffed line after all. */
			body_put(out, "..", 2);
			b->state = b->state == BODY_DOT_CR ? BODY_CR : BODY_MID;
			break;
		}
	}
	return n;
}

void
sendmail_body_finish(struct sendmail_body *b, struct buf *out)
{
	/* A "." without a line end at the very end is the lone dot. */
	if (b->state == BODY_MID || b->state == BODY_CR)
		body_put(out, "\r\n", 2);
	b->state = BODY_BOL;
}

/* ---- the header section ---- */

static void *
sendmail_xrealloc(void *p, size_t n, size_t size)
{
	void *q;

	if (n != 0 && size > SIZE_MAX / n)
		fatal("out of memory");
	q = realloc(p, n * size);
	if (q == NULL)
		fatal("out of memory");
	return q;
}

void
sendmail_headers_init(struct sendmail_headers *h)
{
	memset(h, 0, sizeof(*h));
}

void
sendmail_headers_free(struct sendmail_headers *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i].text);
	free(h->v);
	memset(h, 0, sizeof(*h));
}

/* Length of the field name at the start of (p, n), when the line is a
 * field: name, optional spaces, ':'. 0 when it is not one. */
static size_t
sendmail_field_name(const char *p, size_t n)
{
	size_t i = 0, j;

	while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f && p[i] != ':')
		i++;
	for (j = i; j < n && (p[j] == ' ' || p[j] == '\t'); j++)
		;
	return i > 0 && j < n && p[j] == ':' ? i : 0;
}

static bool
sendmail_name_is(const struct sendmail_header *f, const char *name)
{
	return f->name_len == strlen(name) && strncasecmp(f->text, name, f->name_len) == 0;
}

static void
sendmail_headers_note(struct sendmail_headers *h, const struct sendmail_header *f)
{
	static const struct { const char *name; unsigned bit; } known[] = {
		{ "From", SENDMAIL_SEEN_FROM },
		{ "Date", SENDMAIL_SEEN_DATE },
		{ "Message-Id", SENDMAIL_SEEN_MESSAGE_ID },
		{ "Resent-From", SENDMAIL_SEEN_RESENT_FROM },
		{ "Resent-Date", SENDMAIL_SEEN_RESENT_DATE },
		{ "Resent-Message-Id", SENDMAIL_SEEN_RESENT_MESSAGE_ID },
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (sendmail_name_is(f, known[i].name))
			h->seen |= known[i].bit;
	if (f->name_len > 7 && strncasecmp(f->text, "Resent-", 7) == 0)
		h->resent = true;
}

enum sendmail_hline
sendmail_headers_line(struct sendmail_headers *h, const char *p, size_t n, bool ignore_dots)
{
	bool first = !h->lines;
	struct sendmail_header *f;
	size_t name;

	h->lines = true;
	/* An mbox "From " envelope line before the headers: dropped, as
	 * Postfix's sendmail drops it (it is no header field). */
	if (first && n >= 5 && memcmp(p, "From ", 5) == 0)
		return SENDMAIL_HLINE_SKIPPED;
	if (!ignore_dots && n == 1 && p[0] == '.')
		return SENDMAIL_HLINE_DOT;
	if (n == 0 || h->bytes + n + 2 > SENDMAIL_HEADERS_MAX)
		return SENDMAIL_HLINE_BODY;
	if (p[0] == ' ' || p[0] == '\t') {
		if (h->n == 0)
			return SENDMAIL_HLINE_BODY;	/* nothing to continue */
		f = &h->v[h->n - 1];
		f->text = sendmail_xrealloc(f->text, f->len + n + 3, 1);
		memcpy(f->text + f->len, "\r\n", 2);
		memcpy(f->text + f->len + 2, p, n);
		f->len += n + 2;
		f->text[f->len] = '\0';
		h->bytes += n + 2;
		return SENDMAIL_HLINE_FIELD;
	}
	name = sendmail_field_name(p, n);
	if (name == 0)
		return SENDMAIL_HLINE_BODY;	/* RFC 5322 2.2: no field; the body starts */
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 32;
		h->v = sendmail_xrealloc(h->v, h->cap, sizeof(*h->v));
	}
	f = &h->v[h->n++];
	f->text = sendmail_xrealloc(NULL, n + 1, 1);
	memcpy(f->text, p, n);
	f->text[n] = '\0';
	f->len = n;
	f->name_len = name;
	f->removed = false;
	h->bytes += n + 2;
	sendmail_headers_note(h, f);
	return SENDMAIL_HLINE_FIELD;
}

size_t
sendmail_headers_remove_bcc(struct sendmail_headers *h)
{
	size_t removed = 0;

	for (size_t i = 0; i < h->n; i++) {
		if (!h->v[i].removed &&
		    (sendmail_name_is(&h->v[i], "Bcc") || sendmail_name_is(&h->v[i], "Resent-Bcc"))) {
			h->v[i].removed = true;
			removed++;
		}
	}
	return removed;
}

void
sendmail_headers_write(const struct sendmail_headers *h, struct buf *out)
{
	for (size_t i = 0; i < h->n; i++) {
		const struct sendmail_header *f = &h->v[i];
		bool bol = true;

		if (f->removed)
			continue;
		for (size_t j = 0; j < f->len; j++) {
			/* RFC 5321 4.5.2 on every line; a field name may start with '.'. */
			if (bol && f->text[j] == '.')
				buf_append_char(out, '.');
			buf_append_char(out, f->text[j]);
			bol = f->text[j] == '\n';
		}
		buf_append(out, "\r\n", 2);
	}
}

/* ---- addresses ---- */

void
sendmail_addrs_free(struct sendmail_addrs *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* The parser's state for one address-list. */
struct addr_scan {
	char cur[SENDMAIL_ADDR_MAX + 1];	/* an addr-spec, or a display name */
	size_t cur_len;
	char angle[SENDMAIL_ADDR_MAX + 1];	/* what <...> held */
	size_t angle_len;
	bool have_angle, in_angle;
};

static int
addr_put(struct addr_scan *s, char c)
{
	char *dst = s->in_angle ? s->angle : s->cur;
	size_t *len = s->in_angle ? &s->angle_len : &s->cur_len;

	if (*len >= SENDMAIL_ADDR_MAX)
		return -1;
	dst[(*len)++] = c;
	return 0;
}

/* The address that just ended (at ',' ';' or the end), if any. */
static int
addr_flush(struct sendmail_addrs *a, struct addr_scan *s, char *err, size_t errsz)
{
	const char *addr = s->have_angle ? s->angle : s->cur;
	size_t len = s->have_angle ? s->angle_len : s->cur_len;
	const char *colon;

	/* RFC 5322 4.4 obs-route "<@a,@b:user@host>": the route is dropped. */
	if (s->have_angle && len > 0 && addr[0] == '@' &&
	    (colon = memchr(addr, ':', len)) != NULL) {
		len -= (size_t)(colon + 1 - addr);
		addr = colon + 1;
	}
	s->cur_len = s->angle_len = 0;
	s->have_angle = false;
	if (len == 0)
		return 0;	/* an empty group, "<>", or stray commas */
	if (a->n >= SENDMAIL_ADDRS_MAX) {
		snprintf(err, errsz, "more than %u addresses", (unsigned)SENDMAIL_ADDRS_MAX);
		return -1;
	}
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = sendmail_xrealloc(a->v, a->cap, sizeof(*a->v));
	}
	a->v[a->n] = sendmail_xrealloc(NULL, len + 1, 1);
	memcpy(a->v[a->n], addr, len);
	a->v[a->n][len] = '\0';
	a->n++;
	return 0;
}

/* Copy a quoted string or a domain literal, delimiters and escapes
 * included, from p[*i] up to its closing byte. -1 when it does not close. */
static int
addr_copy_until(struct addr_scan *s, const char *p, size_t n, size_t *i, char close, bool *long_)
{
	size_t j = *i;

	if (addr_put(s, p[j++]) < 0)
		return *long_ = true, -1;
	while (j < n && p[j] != close) {
		if (p[j] == '\\' && j + 1 < n) {
			if (addr_put(s, p[j++]) < 0)
				return *long_ = true, -1;
		}
		if (p[j] == '\r' || p[j] == '\n') {
			j++;	/* folding inside a quoted string is unfolded */
			continue;
		}
		if (addr_put(s, p[j++]) < 0)
			return *long_ = true, -1;
	}
	if (j >= n)
		return -1;
	if (addr_put(s, p[j]) < 0)
		return *long_ = true, -1;
	*i = j + 1;
	return 0;
}

/* Skip a comment (nested, with quoted-pairs) at p[*i] == '('. */
static int
addr_skip_comment(const char *p, size_t n, size_t *i)
{
	size_t j = *i + 1;
	unsigned depth = 1;

	while (j < n && depth > 0) {
		if (p[j] == '\\' && j + 1 < n)
			j++;
		else if (p[j] == '(')
			depth++;
		else if (p[j] == ')')
			depth--;
		j++;
	}
	if (depth > 0)
		return -1;
	*i = j;
	return 0;
}

int
sendmail_addrs_parse(struct sendmail_addrs *a, const char *p, size_t n, char *err, size_t errsz)
{
	struct addr_scan s;
	size_t i = 0;
	bool too_long = false;

	memset(&s, 0, sizeof(s));
	while (i < n) {
		char c = p[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			i++;
		} else if (c == '(') {
			if (addr_skip_comment(p, n, &i) < 0) {
				snprintf(err, errsz, "unbalanced '(' in a comment");
				return -1;
			}
		} else if (c == '"' || c == '[') {
			if (addr_copy_until(&s, p, n, &i, c == '"' ? '"' : ']', &too_long) < 0)
				goto bad;
		} else if (c == '<') {
			if (s.in_angle)
				goto unbalanced;
			s.in_angle = s.have_angle = true;
			s.angle_len = 0;
			i++;
		} else if (c == '>') {
			if (!s.in_angle)
				goto unbalanced;
			s.in_angle = false;
			i++;
		} else if (!s.in_angle && (c == ',' || c == ';')) {
			if (addr_flush(a, &s, err, errsz) < 0)
				return -1;
			i++;
		} else if (!s.in_angle && c == ':') {
			/* A group's display name ends: its members follow. */
			s.cur_len = 0;
			s.have_angle = false;
			i++;
		} else {
			if (addr_put(&s, c) < 0) {
				too_long = true;
				goto bad;
			}
			i++;
		}
	}
	if (s.in_angle)
		goto unbalanced;
	return addr_flush(a, &s, err, errsz);
unbalanced:
	snprintf(err, errsz, "unbalanced '<' or '>'");
	return -1;
bad:
	if (too_long)
		snprintf(err, errsz, "an address longer than %u bytes", SENDMAIL_ADDR_MAX);
	else
		snprintf(err, errsz, "unbalanced '\"' or '['");
	return -1;
}

int
sendmail_headers_recipients(const struct sendmail_headers *h, struct sendmail_addrs *a,
                            char *err, size_t errsz)
{
	static const char *const plain[] = { "To", "Cc", "Bcc" };
	static const char *const resent[] = { "Resent-To", "Resent-Cc", "Resent-Bcc" };
	const char *const *names = h->resent ? resent : plain;
	char why[200];

	for (size_t i = 0; i < h->n; i++) {
		const struct sendmail_header *f = &h->v[i];
		const char *colon;

		for (size_t k = 0; k < 3; k++) {
			if (!sendmail_name_is(f, names[k]))
				continue;
			colon = memchr(f->text, ':', f->len);
			if (colon == NULL)
				panic("a header field without ':'");
			colon++;
			if (sendmail_addrs_parse(a, colon, f->len - (size_t)(colon - f->text), why,
			                         sizeof(why)) < 0) {
				snprintf(err, errsz, "%s: header: %s", names[k], why);
				return -1;
			}
		}
	}
	return 0;
}

int
sendmail_addr_qualify(const char *addr, const char *origin, char *dst, size_t dstsz)
{
	const char *rest = addr;
	int n;

	/* An '@' inside a quoted local part is not the domain's. */
	if (addr[0] == '"') {
		for (rest = addr + 1; *rest != '\0' && *rest != '"'; rest++)
			if (*rest == '\\' && rest[1] != '\0')
				rest++;
	}
	if (strchr(rest, '@') != NULL || origin == NULL || origin[0] == '\0')
		n = snprintf(dst, dstsz, "%s", addr);
	else
		n = snprintf(dst, dstsz, "%s@%s", addr, origin);
	return n < 0 || (size_t)n >= dstsz ? -1 : 0;
}

/* ---- missing headers ---- */

/* RFC 5322 3.2.3 atext, with 8-bit bytes taken as RFC 6532 UTF-8. */
static bool
sendmail_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* The full name as an RFC 5322 phrase: as is when it is atoms and
 * spaces, else one quoted string. Control characters are dropped. */
static void
sendmail_phrase(struct buf *out, const char *name)
{
	bool plain = true, any = false;
	const unsigned char *p;

	for (p = (const unsigned char *)name; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			continue;
		any = true;
		if (*p != ' ' && !sendmail_atext(*p))
			plain = false;
	}
	if (!any)
		return;
	if (!plain)
		buf_append_char(out, '"');
	for (p = (const unsigned char *)name; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			continue;
		if (!plain && (*p == '"' || *p == '\\'))
			buf_append_char(out, '\\');
		buf_append_char(out, (char)*p);
	}
	if (!plain)
		buf_append_char(out, '"');
	buf_append_char(out, ' ');
}

void
sendmail_headers_missing(const struct sendmail_headers *h, const struct sendmail_ident *id,
                         struct buf *out)
{
	const char *resent = h->resent ? "Resent-" : "";
	char stamp[64];
	struct tm tm;

	if (!(h->seen & (h->resent ? SENDMAIL_SEEN_RESENT_MESSAGE_ID : SENDMAIL_SEEN_MESSAGE_ID))) {
		/* cleanup's form: the time in UTC, then what makes it unique. */
		if (gmtime_r(&id->now, &tm) == NULL ||
		    strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) == 0)
			snprintf(stamp, sizeof(stamp), "19700101000000");
		buf_append_printf(out, "%sMessage-Id: <%s.%s@%s>\r\n", resent, stamp, id->unique,
		                  id->hostname);
	}
	if (!(h->seen & (h->resent ? SENDMAIL_SEEN_RESENT_DATE : SENDMAIL_SEEN_DATE))) {
		/* RFC 5322 3.3, the zone's name as a comment (Postfix's mail_date). */
		if (localtime_r(&id->now, &tm) == NULL ||
		    strftime(stamp, sizeof(stamp), "%a, %e %b %Y %H:%M:%S %z (%Z)", &tm) == 0)
			snprintf(stamp, sizeof(stamp), "Thu,  1 Jan 1970 00:00:00 +0000 (UTC)");
		buf_append_printf(out, "%sDate: %s\r\n", resent, stamp);
	}
	if (!(h->seen & (h->resent ? SENDMAIL_SEEN_RESENT_FROM : SENDMAIL_SEEN_FROM))) {
		buf_append_printf(out, "%sFrom: ", resent);
		if (id->sender[0] == '\0') {
			buf_append_str(out, "MAILER-DAEMON");
		} else if (id->full_name != NULL && id->full_name[0] != '\0') {
			size_t before = buf_len(out);

			sendmail_phrase(out, id->full_name);
			buf_append_printf(out, buf_len(out) > before ? "<%s>" : "%s", id->sender);
		} else {
			buf_append_str(out, id->sender);
		}
		buf_append(out, "\r\n", 2);
	}
}

void
sendmail_gecos_name(const char *gecos, const char *login, char *dst, size_t dstsz)
{
	size_t o = 0;

	if (dstsz == 0)
		return;
	for (const char *p = gecos ? gecos : ""; *p != '\0' && *p != ','; p++) {
		if (*p == '&') {
			/* finger(1)'s convention: & is the login, capitalised. */
			for (size_t k = 0; login != NULL && login[k] != '\0' && o + 1 < dstsz; k++) {
				char c = login[k];

				if (k == 0 && c >= 'a' && c <= 'z')
					c = (char)(c - 'a' + 'A');
				dst[o++] = c;
			}
		} else if (o + 1 < dstsz) {
			dst[o++] = *p;
		}
	}
	dst[o] = '\0';
}
