/*
 * smtpd_content: header and body checks on the content stream (see the
 * header; doc/content_checks.md has the administrator's side).
 *
 * The stream is cut into lines at LF (the decoder gives CR LF). A line is
 * gathered in c->line (headers: up to header_size_limit, the excess
 * dropped; body: pieces of SMTPD_CONTENT_LINE_MAX). In a header block a
 * header is gathered in c->held until a line that does not start with
 * white space shows it is complete; then it is looked up, and written
 * (or not) as its action says. MIME structure is followed just enough to
 * send each header to the right list and to restart the body_checks
 * budget for each part: the boundaries of multipart types (a stack of
 * SMTPD_CONTENT_MIME_DEPTH_MAX), and message/rfc822 parts that are not
 * base64 or quoted-printable encoded (their headers are nested headers).
 *
 * Error policy: never fails; a map that cannot be read refuses the
 * message with 451 4.3.0 (our trouble, never a 5xx); a malformed action
 * is a warning and the content is kept. Out of memory is fatal() (buf).
 */
#include "smtpd/smtpd_content.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/mailaddr.h"
#include "smtpd/smtpd_restrict.h"

#define SMTPD_CONTENT_CRLF "\r\n"

enum smtpd_content_state { SMTPD_CONTENT_ST_HEADERS, SMTPD_CONTENT_ST_BODY };

/* Which header block: the message's, a body part's, an attached message's. */
enum smtpd_content_block { SMTPD_CONTENT_PRIMARY, SMTPD_CONTENT_PART, SMTPD_CONTENT_INNER };

/* What the header block's Content-Type says about what follows it. */
enum smtpd_content_type { SMTPD_CONTENT_T_OTHER, SMTPD_CONTENT_T_MULTIPART,
	SMTPD_CONTENT_T_MESSAGE };

/* What an action does to the header or line it matched. */
enum smtpd_content_fate { SMTPD_CONTENT_KEEP, SMTPD_CONTENT_DROP, SMTPD_CONTENT_REPLACE };

struct smtpd_content {
	struct map_list *lists[SMTPD_CONTENT_CLASSES];	/* borrowed */
	const char *const *names;
	size_t header_max, body_max;
	struct smtpd_content_hooks hooks;
	struct smtpd_content_result res;
	bool stopped;		/* REJECT, DISCARD, REDIRECT or a map error */
	bool warned_long;	/* the truncation warning was logged */
	enum smtpd_content_state state;
	enum smtpd_content_block block;
	struct buf line;	/* the current line so far */
	struct buf held;	/* the current header, as received */
	struct buf key;		/* lookup key */
	struct buf value;	/* map answer */
	size_t body_seen;	/* bytes of this body part looked at */
	/* The current header block's Content-Type and -Transfer-Encoding. */
	enum smtpd_content_type type;
	bool encoded;
	char boundary[SMTPD_CONTENT_BOUNDARY_MAX + 1];
	/* Open multipart boundaries, outermost first. */
	char (*bounds)[SMTPD_CONTENT_BOUNDARY_MAX + 1];
	size_t depth;
};

/* ---- output and small helpers ---- */

static void
smtpd_content_emit(struct smtpd_content *c, const char *p, size_t n)
{
	/* A refused message is thrown away: write nothing more of it. */
	if (c->res.code == 0 && n > 0)
		c->hooks.write(c->hooks.arg, p, n);
}

static bool
smtpd_content_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* The length of a header name at p (n bytes) followed by optional blanks
 * and ':', as Postfix's is_header(); 0 when p is not a header line. */
static size_t
smtpd_content_header_name(const char *p, size_t n)
{
	size_t i = 0, name;

	while (i < n && (unsigned char)p[i] > 32 && (unsigned char)p[i] < 127 && p[i] != ':')
		i++;
	name = i;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return name > 0 && i < n && p[i] == ':' ? name : 0;
}

static bool
smtpd_content_name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* RFC 2045 section 3, RFC 2183: the headers Postfix calls MIME headers. */
static bool
smtpd_content_mime_header(const char *name, size_t len)
{
	static const char *const mime[] = { "content-description", "content-disposition",
		"content-id", "content-transfer-encoding", "content-type", "mime-version" };
	size_t i;

	for (i = 0; i < sizeof(mime) / sizeof(mime[0]); i++)
		if (smtpd_content_name_is(name, len, mime[i]))
			return true;
	return false;
}

/* ---- actions ---- */

static void
smtpd_content_warn(struct smtpd_content *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
smtpd_content_warn(struct smtpd_content *c, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	c->hooks.warn(c->hooks.arg, text);
}

/* REJECT [text]: Postfix's dsn_prepend("5.7.1", text); a 4.x.x code
 * defers (451), a 2.x.x one is made 4.x.x as Postfix does. */
static void
smtpd_content_reject(struct smtpd_content *c, const char *where, const char *content,
                     const char *text)
{
	size_t dl = smtpd_restrict_dsn_len(text);
	char reason[SMTPD_CONTENT_TEXT_MAX + 20];

	if (text[0] == '\0') {
		snprintf(c->res.enh, sizeof(c->res.enh), "5.7.1");
		snprintf(c->res.text, sizeof(c->res.text), "message content rejected");
	} else if (dl > 0 && dl < sizeof(c->res.enh)) {
		snprintf(c->res.enh, sizeof(c->res.enh), "%.*s", (int)dl, text);
		for (text += dl; *text == ' ' || *text == '\t'; text++)
			;
		snprintf(c->res.text, sizeof(c->res.text), "%s", text);
		if (c->res.enh[0] == '2') {
			smtpd_content_warn(c, "bad DSN action in %s -- need 4.x.x or 5.x.x",
			                   c->res.enh);
			c->res.enh[0] = '4';
		}
	} else {
		snprintf(c->res.enh, sizeof(c->res.enh), "5.7.1");
		snprintf(c->res.text, sizeof(c->res.text), "%s", text);
	}
	snprintf(reason, sizeof(reason), "%s %s", c->res.enh, c->res.text);
	c->hooks.log(c->hooks.arg, "reject", where, content, reason);
	c->res.code = c->res.enh[0] == '4' ? 451 : 550;
	c->stopped = true;
}

/* REDIRECT and BCC: an address with a domain, else a warning. */
static bool
smtpd_content_address(struct smtpd_content *c, const char *word, const char *text,
                      const char *mapname, char *dst, size_t dstsz)
{
	struct mailaddr m;
	const char *why = NULL;

	if (!smtpd_restrict_action_address(text, &m, &why)) {
		smtpd_content_warn(c, "bad %s target \"%s\" in %s map -- need user@domain (%s)",
		                   word, text, mapname, why);
		return false;
	}
	snprintf(dst, dstsz, "%s", m.addr);
	return true;
}

/* PREPEND and REPLACE: text, which for a header must be one. */
static bool
smtpd_content_text_ok(struct smtpd_content *c, const char *word, const char *where,
                      const char *text, const char *mapname)
{
	if (text[0] == '\0') {
		smtpd_content_warn(c, "%s action without text in %s map", word, mapname);
		return false;
	}
	if (strcmp(where, "header") == 0 && smtpd_content_header_name(text, strlen(text)) == 0) {
		smtpd_content_warn(c, "bad %s header text \"%s\" in %s map -- need "
		                   "\"headername: headervalue\"", word, text, mapname);
		return false;
	}
	return true;
}

/*
 * Carry out value, the answer of a map of mapname for content (a header
 * or a body line; where says which). *text gets the REPLACE text.
 */
static enum smtpd_content_fate
smtpd_content_act(struct smtpd_content *c, const char *where, const char *content,
                  const char *value, const char *mapname, const char **text)
{
	char why[160], word[16];
	size_t wlen = strcspn(value, " \t");
	const char *arg = value + wlen;

	while (*arg == ' ' || *arg == '\t')
		arg++;
	snprintf(word, sizeof(word), "%.*s", (int)(wlen < sizeof(word) ? wlen : 0), value);
	*text = arg;
	if (strcasecmp(word, "REJECT") == 0) {
		smtpd_content_reject(c, where, content, arg);
	} else if (strcasecmp(word, "WARN") == 0) {
		c->hooks.log(c->hooks.arg, "warning", where, content, arg);
	} else if (strcasecmp(word, "INFO") == 0) {
		c->hooks.log(c->hooks.arg, "info", where, content, arg);
	} else if (strcasecmp(word, "FILTER") == 0) {
		if (!config_filter_valid(arg, strlen(arg), why, sizeof(why))) {
			smtpd_content_warn(c, "bad FILTER command \"%s\" in %s map -- %s", arg, mapname,
			                   why);
		} else {
			snprintf(c->res.actions.filter, sizeof(c->res.actions.filter), "%s", arg);
			c->hooks.log(c->hooks.arg, "filter", where, content, arg);
		}
	} else if (strcasecmp(word, "DISCARD") == 0) {
		c->hooks.log(c->hooks.arg, "discard", where, content, arg);
		c->res.discard = true;
		c->stopped = true;
	} else if (strcasecmp(word, "HOLD") == 0) {
		if (!c->res.hold && !c->res.discard)
			c->hooks.log(c->hooks.arg, "hold", where, content, arg);
		c->res.hold = true;
	} else if (strcasecmp(word, "PREPEND") == 0) {
		if (smtpd_content_text_ok(c, "PREPEND", where, arg, mapname)) {
			c->hooks.log(c->hooks.arg, "prepend", where, content, arg);
			smtpd_content_emit(c, arg, strlen(arg));
			smtpd_content_emit(c, SMTPD_CONTENT_CRLF, 2);
		}
	} else if (strcasecmp(word, "REPLACE") == 0) {
		if (smtpd_content_text_ok(c, "REPLACE", where, arg, mapname)) {
			c->hooks.log(c->hooks.arg, "replace", where, content, arg);
			return SMTPD_CONTENT_REPLACE;
		}
	} else if (strcasecmp(word, "REDIRECT") == 0) {
		if (smtpd_content_address(c, "REDIRECT", arg, mapname, c->res.actions.redirect,
		    sizeof(c->res.actions.redirect))) {
			c->hooks.log(c->hooks.arg, "redirect", where, content, arg);
			c->stopped = true;
		}
	} else if (strcasecmp(word, "BCC") == 0) {
		if (smtpd_content_address(c, "BCC", arg, mapname, c->res.actions.bcc,
		    sizeof(c->res.actions.bcc)))
			c->hooks.log(c->hooks.arg, "bcc", where, content, arg);
	} else if (strcasecmp(word, "IGNORE") == 0) {
		return SMTPD_CONTENT_DROP;
	} else if (strcasecmp(word, "DUNNO") != 0 && strcasecmp(word, "OK") != 0) {
		smtpd_content_warn(c, "unknown command in %s map: %s", mapname, value);
	}
	return SMTPD_CONTENT_KEEP;
}

/* Look key up in the class's maps and act on the answer. */
static enum smtpd_content_fate
smtpd_content_check(struct smtpd_content *c, enum smtpd_content_class cls, const char *where,
                    const char **text)
{
	struct map_list *ml = c->lists[cls];
	char err[512];

	if (c->stopped || ml == NULL || map_list_size(ml) == 0)
		return SMTPD_CONTENT_KEEP;
	switch (map_list_lookup(ml, buf_cstr(&c->key), &c->value, err, sizeof(err))) {
	case MAP_FOUND:
		return smtpd_content_act(c, where, buf_cstr(&c->key), buf_cstr(&c->value),
		                         c->names[cls], text);
	case MAP_ERROR:
		/* Our trouble: defer, never pass the message unchecked. */
		smtpd_content_warn(c, "%s: %s", c->names[cls], err);
		c->res.code = 451;
		snprintf(c->res.enh, sizeof(c->res.enh), "4.3.0");
		snprintf(c->res.text, sizeof(c->res.text), "Error: temporary lookup failure");
		c->stopped = true;
		return SMTPD_CONTENT_KEEP;
	default:
		return SMTPD_CONTENT_KEEP;
	}
}

/* ---- MIME structure ---- */

/* The value of parameter name in a Content-Type value (s, n bytes), or
 * false. Quoted strings are unquoted ('\' escapes), RFC 2045 section 5.1. */
static bool
smtpd_content_param(const char *s, size_t n, const char *name, char *out, size_t outsz)
{
	size_t i = 0, k, nl = strlen(name), o;

	while (i < n) {
		while (i < n && s[i] != ';' && s[i] != '"')
			i++;
		if (i < n && s[i] == '"') {	/* skip a quoted string of another param */
			for (i++; i < n && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (i >= n)
			return false;
		for (i++; i < n && smtpd_content_ws(s[i]); i++)
			;
		k = i;
		while (i < n && !smtpd_content_ws(s[i]) && s[i] != '=' && s[i] != ';')
			i++;
		if (i - k != nl || strncasecmp(s + k, name, nl) != 0)
			continue;
		while (i < n && smtpd_content_ws(s[i]))
			i++;
		if (i >= n || s[i] != '=')
			continue;
		for (i++; i < n && smtpd_content_ws(s[i]); i++)
			;
		o = 0;
		if (i < n && s[i] == '"') {
			for (i++; i < n && s[i] != '"'; i++) {
				if (s[i] == '\\' && i + 1 < n)
					i++;
				if (o + 1 >= outsz)
					return false;
				out[o++] = s[i];
			}
		} else {
			for (; i < n && !smtpd_content_ws(s[i]) && s[i] != ';'; i++) {
				if (o + 1 >= outsz)
					return false;
				out[o++] = s[i];
			}
		}
		out[o] = '\0';
		return o > 0;
	}
	return false;
}

/* Note what a Content-Type or Content-Transfer-Encoding header (the
 * lookup key: name, ':', value) says about the block's body. */
static void
smtpd_content_note(struct smtpd_content *c, const char *name, size_t nlen)
{
	const char *v = buf_cstr(&c->key), *end = v + buf_len(&c->key);

	v = (const char *)memchr(v, ':', (size_t)(end - v)) + 1;
	while (v < end && smtpd_content_ws(*v))
		v++;
	if (smtpd_content_name_is(name, nlen, "content-transfer-encoding")) {
		c->encoded = strncasecmp(v, "base64", 6) == 0 ||
		    strncasecmp(v, "quoted-printable", 16) == 0;
		return;
	}
	c->type = SMTPD_CONTENT_T_OTHER;
	if (strncasecmp(v, "multipart/", 10) == 0 &&
	    smtpd_content_param(v, (size_t)(end - v), "boundary", c->boundary, sizeof(c->boundary)))
		c->type = SMTPD_CONTENT_T_MULTIPART;
	else if (strncasecmp(v, "message/rfc822", 14) == 0 &&
	         (v + 14 == end || smtpd_content_ws(v[14]) || v[14] == ';'))
		c->type = SMTPD_CONTENT_T_MESSAGE;
}

/* The end of a header block: what follows it. */
static void
smtpd_content_block_end(struct smtpd_content *c)
{
	enum smtpd_content_type type = c->type;

	if (type == SMTPD_CONTENT_T_MULTIPART && c->depth < SMTPD_CONTENT_MIME_DEPTH_MAX)
		memcpy(c->bounds[c->depth++], c->boundary, sizeof(c->boundary));
	c->type = SMTPD_CONTENT_T_OTHER;
	c->boundary[0] = '\0';
	if (type == SMTPD_CONTENT_T_MESSAGE && !c->encoded) {
		c->encoded = false;
		c->state = SMTPD_CONTENT_ST_HEADERS;
		c->block = SMTPD_CONTENT_INNER;
		return;
	}
	c->encoded = false;
	c->state = SMTPD_CONTENT_ST_BODY;
	c->body_seen = 0;
}

/* A body line "--boundary" opens a part (1), "--boundary--" closes the
 * multipart (-1); 0 otherwise. Transport padding after it is allowed
 * (RFC 2046 section 5.1.1). */
static int
smtpd_content_boundary(struct smtpd_content *c, const char *p, size_t n)
{
	size_t level, blen, i;
	const char *b;

	if (n < 2 || p[0] != '-' || p[1] != '-')
		return 0;
	for (level = c->depth; level-- > 0;) {
		b = c->bounds[level];
		blen = strlen(b);
		if (n < 2 + blen || memcmp(p + 2, b, blen) != 0)
			continue;
		i = 2 + blen;
		if (i + 2 <= n && p[i] == '-' && p[i + 1] == '-') {
			for (i += 2; i < n && smtpd_content_ws(p[i]); i++)
				;
			if (i == n) {
				c->depth = level;
				return -1;
			}
			continue;
		}
		while (i < n && smtpd_content_ws(p[i]))
			i++;
		if (i == n) {
			c->depth = level + 1;
			return 1;
		}
	}
	return 0;
}

/* ---- headers ---- */

/* The held header: key it, check it, write what its action leaves. */
static void
smtpd_content_header_flush(struct smtpd_content *c)
{
	const char *h = buf_data(&c->held), *text = NULL;
	size_t n = buf_len(&c->held), i, nlen;
	enum smtpd_content_class cls;
	enum smtpd_content_fate fate;
	bool mime;

	if (n == 0)
		return;
	/* The key: CR LF inside as "\n" (Postfix's header buffer), no
	 * final line break. */
	buf_reset(&c->key);
	for (i = 0; i < n; i++)
		if (!(h[i] == '\r' && i + 1 < n && h[i + 1] == '\n'))
			buf_append_char(&c->key, h[i]);
	while (buf_len(&c->key) > 0 && buf_data(&c->key)[buf_len(&c->key) - 1] == '\n')
		buf_truncate(&c->key, buf_len(&c->key) - 1);
	nlen = smtpd_content_header_name(h, n);
	mime = smtpd_content_mime_header(h, nlen);
	if (smtpd_content_name_is(h, nlen, "content-type") ||
	    smtpd_content_name_is(h, nlen, "content-transfer-encoding"))
		smtpd_content_note(c, h, nlen);
	if (c->block == SMTPD_CONTENT_PART || mime)
		cls = SMTPD_CONTENT_MIME;
	else
		cls = c->block == SMTPD_CONTENT_PRIMARY ? SMTPD_CONTENT_HEADER : SMTPD_CONTENT_NESTED;
	fate = smtpd_content_check(c, cls, "header", &text);
	if (fate == SMTPD_CONTENT_KEEP) {
		smtpd_content_emit(c, h, n);
	} else if (fate == SMTPD_CONTENT_REPLACE) {
		smtpd_content_emit(c, text, strlen(text));
		smtpd_content_emit(c, SMTPD_CONTENT_CRLF, 2);
	}
	buf_reset(&c->held);
}

/* Add p (n bytes) to the held header, up to header_max; the excess is
 * dropped, as Postfix's header_size_limit does, and the header keeps its
 * line end. */
static void
smtpd_content_hold(struct smtpd_content *c, const char *p, size_t n)
{
	size_t room = c->header_max > buf_len(&c->held) ? c->header_max - buf_len(&c->held) : 0;

	if (n <= room) {
		buf_append(&c->held, p, n);
		return;
	}
	buf_append(&c->held, p, room);
	if (buf_len(&c->held) == 0 || buf_data(&c->held)[buf_len(&c->held) - 1] != '\n')
		buf_append(&c->held, SMTPD_CONTENT_CRLF, 2);
	if (!c->warned_long) {
		c->warned_long = true;
		smtpd_content_warn(c, "header longer than header_size_limit (%zu bytes): the rest "
		                   "of it is dropped", c->header_max);
	}
}

static void smtpd_content_body_line(struct smtpd_content *c);

/* A complete line (in c->line) in a header block. */
static void
smtpd_content_header_line(struct smtpd_content *c)
{
	const char *p = buf_data(&c->line);
	size_t n = buf_len(&c->line);

	if (buf_len(&c->held) > 0 && n > 0 && (p[0] == ' ' || p[0] == '\t')) {
		/* RFC 5322 section 2.2.3: a folded continuation. */
		if (buf_data(&c->held)[buf_len(&c->held) - 1] == '\n' &&
		    buf_len(&c->held) < c->header_max)
			smtpd_content_hold(c, p, n);
		buf_reset(&c->line);
		return;
	}
	smtpd_content_header_flush(c);
	if ((n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\n')) {
		/* The empty line that ends the block. */
		smtpd_content_emit(c, p, n);
		buf_reset(&c->line);
		smtpd_content_block_end(c);
		return;
	}
	if (smtpd_content_header_name(p, n) > 0) {
		smtpd_content_hold(c, p, n);
		buf_reset(&c->line);
		return;
	}
	/* Not a header: the block ended without an empty line, and this is
	 * the first body line (Postfix's mime_state does the same). */
	smtpd_content_block_end(c);
	c->state = SMTPD_CONTENT_ST_BODY;
	smtpd_content_body_line(c);
}

/* ---- body ---- */

/* The line (or piece of a long line) in c->line. */
static void
smtpd_content_body_line(struct smtpd_content *c)
{
	const char *p = buf_data(&c->line), *text = NULL;
	size_t n = buf_len(&c->line), klen = n;
	enum smtpd_content_fate fate = SMTPD_CONTENT_KEEP;
	bool lf = n > 0 && p[n - 1] == '\n';
	int edge = 0;

	if (lf)
		klen -= n >= 2 && p[n - 2] == '\r' ? 2 : 1;
	if (lf && c->depth > 0)
		edge = smtpd_content_boundary(c, p, klen);
	if (!c->stopped && c->body_seen < c->body_max && c->lists[SMTPD_CONTENT_BODY] != NULL &&
	    map_list_size(c->lists[SMTPD_CONTENT_BODY]) > 0) {
		buf_reset(&c->key);
		buf_append(&c->key, p, klen);
		fate = smtpd_content_check(c, SMTPD_CONTENT_BODY, "body", &text);
		c->body_seen += klen;
	}
	if (fate == SMTPD_CONTENT_KEEP) {
		smtpd_content_emit(c, p, n);
	} else if (fate == SMTPD_CONTENT_REPLACE) {
		smtpd_content_emit(c, text, strlen(text));
		if (lf)
			smtpd_content_emit(c, SMTPD_CONTENT_CRLF, 2);
	}
	buf_reset(&c->line);
	if (edge > 0) {
		/* A body part starts with its own header block. */
		c->state = SMTPD_CONTENT_ST_HEADERS;
		c->block = SMTPD_CONTENT_PART;
		c->type = SMTPD_CONTENT_T_OTHER;
		c->encoded = false;
	} else if (edge < 0) {
		c->body_seen = 0;
	}
}

/* ---- the stream ---- */

/* Add n bytes (no LF inside, or one LF at the end) to the current line. */
static void
smtpd_content_line_add(struct smtpd_content *c, const char *p, size_t n)
{
	size_t room;

	while (n > 0) {
		if (c->state == SMTPD_CONTENT_ST_BODY) {
			room = SMTPD_CONTENT_LINE_MAX + 2 - buf_len(&c->line);
			if (room == 0) {
				smtpd_content_body_line(c);	/* a piece of a long line */
				continue;
			}
		} else {
			room = c->header_max + 2 > buf_len(&c->line) ?
			    c->header_max + 2 - buf_len(&c->line) : 0;
			if (room < n) {
				/* Past header_size_limit: keep the line end only. */
				buf_append(&c->line, p, room);
				if (p[n - 1] == '\n') {
					buf_truncate(&c->line, c->header_max);
					buf_append(&c->line, SMTPD_CONTENT_CRLF, 2);
				}
				return;
			}
		}
		if (room > n)
			room = n;
		buf_append(&c->line, p, room);
		p += room;
		n -= room;
	}
}

void
smtpd_content_feed(struct smtpd_content *c, const char *p, size_t n)
{
	const char *lf;
	size_t take;

	while (n > 0) {
		lf = memchr(p, '\n', n);
		take = lf != NULL ? (size_t)(lf - p) + 1 : n;
		smtpd_content_line_add(c, p, take);
		if (lf != NULL) {
			if (c->state == SMTPD_CONTENT_ST_HEADERS)
				smtpd_content_header_line(c);
			else
				smtpd_content_body_line(c);
		}
		p += take;
		n -= take;
	}
}

void
smtpd_content_finish(struct smtpd_content *c)
{
	if (buf_len(&c->line) > 0) {
		if (c->state == SMTPD_CONTENT_ST_HEADERS)
			smtpd_content_header_line(c);
		else
			smtpd_content_body_line(c);
	}
	smtpd_content_header_flush(c);
}

const struct smtpd_content_result *
smtpd_content_result(const struct smtpd_content *c)
{
	return &c->res;
}

struct smtpd_content *
smtpd_content_new(struct map_list *const lists[SMTPD_CONTENT_CLASSES],
                  const char *const names[SMTPD_CONTENT_CLASSES], size_t header_max,
                  size_t body_max, const struct smtpd_content_hooks *hooks)
{
	struct smtpd_content *c = calloc(1, sizeof(*c));
	size_t i;

	if (c == NULL || (c->bounds = calloc(SMTPD_CONTENT_MIME_DEPTH_MAX,
	    sizeof(*c->bounds))) == NULL)
		fatal("out of memory (content checks)");
	for (i = 0; i < SMTPD_CONTENT_CLASSES; i++)
		c->lists[i] = lists[i];
	c->names = names;
	c->header_max = header_max > 0 ? header_max : 1;
	c->body_max = body_max;
	c->hooks = *hooks;
	c->state = SMTPD_CONTENT_ST_HEADERS;
	c->block = SMTPD_CONTENT_PRIMARY;
	buf_init(&c->line, c->header_max + SMTPD_CONTENT_LINE_MAX + 4);
	buf_init(&c->held, c->header_max + 4);
	buf_init(&c->key, c->header_max + SMTPD_CONTENT_LINE_MAX + 4);
	buf_init(&c->value, MAP_VALUE_MAX);
	return c;
}

void
smtpd_content_free(struct smtpd_content *c)
{
	if (c == NULL)
		return;
	buf_free(&c->line);
	buf_free(&c->held);
	buf_free(&c->key);
	buf_free(&c->value);
	free(c->bounds);
	free(c);
}

/* ---- the maps of every listener ---- */

static const enum config_param smtpd_content_params[SMTPD_CONTENT_CLASSES] = {
	[SMTPD_CONTENT_HEADER] = P_HEADER_CHECKS,
	[SMTPD_CONTENT_MIME] = P_MIME_HEADER_CHECKS,
	[SMTPD_CONTENT_NESTED] = P_NESTED_HEADER_CHECKS,
	[SMTPD_CONTENT_BODY] = P_BODY_CHECKS,
};

static const char *const smtpd_content_param_names[SMTPD_CONTENT_CLASSES] = {
	"header_checks", "mime_header_checks", "nested_header_checks", "body_checks",
};

struct smtpd_content_maps {
	unsigned refs;
	struct map_list *lists[CONFIG_LISTENER_COUNT][SMTPD_CONTENT_CLASSES];
	bool owned[CONFIG_LISTENER_COUNT][SMTPD_CONTENT_CLASSES];
	bool active[CONFIG_LISTENER_COUNT];
};

const char *const *
smtpd_content_names(void)
{
	return smtpd_content_param_names;
}

/*
 * The list listener l uses for cls. mime_ and nested_header_checks default
 * to $header_checks: a listener that sets only header_checks (submission_
 * header_checks = ...) gets it for all three, as a master.cf -o
 * header_checks=... does in Postfix, unless the file sets the other two.
 */
static const struct config_list *
smtpd_content_list(const struct config *cfg, enum config_listener l, enum smtpd_content_class cls)
{
	enum config_param p = smtpd_content_params[cls];

	if ((cls == SMTPD_CONTENT_MIME || cls == SMTPD_CONTENT_NESTED) && !config_lset(cfg, l, p) &&
	    config_lset(cfg, l, P_HEADER_CHECKS) && config_lline(cfg, CONFIG_LISTENER_GLOBAL, p) == 0)
		p = P_HEADER_CHECKS;
	return config_llist(cfg, l, p);
}

struct smtpd_content_maps *
smtpd_content_maps_new(const struct config *cfg, struct buf *diag)
{
	const struct config_list *seen[CONFIG_LISTENER_COUNT * SMTPD_CONTENT_CLASSES];
	struct map_list *opened[CONFIG_LISTENER_COUNT * SMTPD_CONTENT_CLASSES];
	struct smtpd_content_maps *m = calloc(1, sizeof(*m));
	size_t nseen = 0, i, l, k;
	const struct config_list *specs;
	bool failed = false;

	if (m == NULL)
		fatal("out of memory (content checks)");
	m->refs = 1;
	for (l = 0; l < CONFIG_LISTENER_COUNT; l++) {
		for (k = 0; k < SMTPD_CONTENT_CLASSES; k++) {
			specs = smtpd_content_list(cfg, (enum config_listener)l,
			                           (enum smtpd_content_class)k);
			if (specs->n == 0)
				continue;
			/* Listeners without an override share the global list. */
			for (i = 0; i < nseen && seen[i] != specs; i++)
				;
			if (i < nseen) {
				m->lists[l][k] = opened[i];
			} else if (map_list_open(specs, 0, &m->lists[l][k], diag) == MAP_OK) {
				m->owned[l][k] = true;
				seen[nseen] = specs;
				opened[nseen++] = m->lists[l][k];
			} else {
				failed = true;
				continue;
			}
			m->active[l] = true;
		}
	}
	if (failed) {
		smtpd_content_maps_unref(m);
		return NULL;
	}
	return m;
}

struct smtpd_content_maps *
smtpd_content_maps_ref(struct smtpd_content_maps *m)
{
	m->refs++;
	return m;
}

void
smtpd_content_maps_unref(struct smtpd_content_maps *m)
{
	size_t l, k;

	if (m == NULL || --m->refs > 0)
		return;
	for (l = 0; l < CONFIG_LISTENER_COUNT; l++)
		for (k = 0; k < SMTPD_CONTENT_CLASSES; k++)
			if (m->owned[l][k])
				map_list_close(m->lists[l][k]);
	free(m);
}

bool
smtpd_content_maps_active(const struct smtpd_content_maps *m, enum config_listener l)
{
	return m != NULL && m->active[l];
}

struct map_list *const *
smtpd_content_maps_lists(const struct smtpd_content_maps *m, enum config_listener l)
{
	return m->lists[l];
}

int
smtpd_content_config_check(const struct config *cfg, struct buf *errors)
{
	struct smtpd_content_maps *m = smtpd_content_maps_new(cfg, errors);

	if (m == NULL)
		return -1;
	smtpd_content_maps_unref(m);
	return 0;
}
