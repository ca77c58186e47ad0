/*
 * bounce: RFC 3464 delivery status notifications.
 *
 * Owns nothing past a call: the report parts (the human-readable text and
 * the message/delivery-status fields) are built in bounded memory, a MIME
 * boundary that occurs neither in them nor in the returned part of the
 * original is chosen, and the notice is streamed through the caller's
 * write function, the original copied from its fd in 64 KiB chunks.
 *
 * Error policy: returns -1 with a short reason (bad report, I/O error,
 * sink error, size limits); never logs. panic() only on an out-of-range
 * recipient index, an envelope asked for a notice to the null sender or
 * for a postmaster notice without valid addresses, all bugs of the
 * caller. Out of memory is fatal() (inside buf).
 *
 * A postmaster notice (report.postmaster_rcpt set) differs from the
 * sender's notice only in its envelope, its header fields, its text and
 * what it returns of the original (bounce_return_part()); the
 * delivery-status part is built by the same code.
 *
 * Everything a remote server said (the diagnostic, the remote MTA name)
 * and everything from the envelope (addresses, ENVID, ORCPT, HELO) is
 * passed through bounce_clean() before it is written: no CR, LF or other
 * control reaches the output, so a hostile reply cannot add a header
 * field or a MIME part, and every line is folded below 998 octets.
 */
#include "queue/bounce.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/utf8.h"

#define BOUNCE_READ_CHUNK (64u * 1024)	/* pread size for the original */
#define BOUNCE_LINE_MAX 998		/* RFC 5322 section 2.1.1, without CRLF */
#define BOUNCE_FOLD_WIDTH 78		/* RFC 5322 section 2.1.1 SHOULD */
#define BOUNCE_TEXT_WIDTH 76		/* the human-readable part */
#define BOUNCE_WORD_MAX 900		/* longer "words" are cut to fit a line */
#define BOUNCE_ADDR_MAX 1024		/* an address after cleaning */
#define BOUNCE_FIELD_MAX 1024		/* ENVID, ORCPT, Remote-MTA, HELO after cleaning */
#define BOUNCE_TEXT_MAX (1024u * 1024)	/* text part: later recipients are summarised */
#define BOUNCE_HOSTNAME_MAX 255		/* RFC 5321 section 4.5.3.1.2 */
#define BOUNCE_QUEUE_ID_MAX 64
#define BOUNCE_FROM_MAX 512		/* from_addr: keeps the From: line short */
#define BOUNCE_POSTMASTER_MAX 512	/* postmaster_rcpt, postmaster_sender: likewise */
/* Mixed into the Message-ID tag of a postmaster notice: qmgr writes it
 * with the same seed as the sender's notice about the same message. */
#define BOUNCE_POSTMASTER_TAG 0x706f73746d617374ull
#define BOUNCE_BOUNDARY_MAX 70		/* RFC 2046 section 5.1.1 */
#define BOUNCE_BOUNDARY_TRIES 16
#define BOUNCE_SCRATCH_MAX (8u * 1024)

/* A growing piece of the report; overflow is sticky and checked once. */
struct bounce_out {
	struct buf buf;
	bool overflow;
};

/* What the scan of the original found. */
struct bounce_scan {
	uint64_t ret_len;	/* bytes of the original that are returned */
	bool eightbit;		/* a byte >= 0x80 among them */
	bool ends_lf;		/* they end with LF (or are empty) */
	bool collides;		/* the boundary occurs among them */
};

static const char *const bounce_wday[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const bounce_month[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* ---- small output helpers ---- */

static void
bounce_put(struct bounce_out *o, const void *p, size_t n)
{
	if (!o->overflow && buf_append(&o->buf, p, n) != BUF_OK)
		o->overflow = true;
}

static void
bounce_puts(struct bounce_out *o, const char *s)
{
	bounce_put(o, s, strlen(s));
}

static void bounce_printf(struct bounce_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
bounce_printf(struct bounce_out *o, const char *fmt, ...)
{
	va_list ap;

	if (o->overflow)
		return;
	va_start(ap, fmt);
	if (buf_append_vprintf(&o->buf, fmt, ap) != BUF_OK)
		o->overflow = true;
	va_end(ap);
}

static void
bounce_err(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
bounce_err(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

/* RFC 5322 section 3.3 date-time, in UTC, from microseconds. */
static void
bounce_date(char *dst, size_t dstsz, int64_t us)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(dst, dstsz, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	snprintf(dst, dstsz, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	         bounce_wday[tm.tm_wday], tm.tm_mday, bounce_month[tm.tm_mon],
	         tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* splitmix64: a well-mixed sequence from the injected seed. */
static uint64_t
bounce_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* ---- cleaning untrusted text ---- */

/*
 * Append a cleaned copy of s (at most max bytes of it, then "...") to out:
 * CR, LF and HT become spaces (a multi-line reply becomes one line), other
 * controls and DEL become '?', runs of spaces collapse to one and the ends
 * are trimmed, so the result can be folded at its spaces. Bytes >= 0x80
 * are kept only when utf8 allows it and they form a valid UTF-8 sequence
 * (RFC 6532), else they become '?'.
 */
static void
bounce_clean(struct bounce_out *out, const char *s, size_t max, bool utf8)
{
	size_t len = s != NULL ? strlen(s) : 0, i = 0, used = 0, n;
	bool space = false, any = false;
	unsigned char c;

	while (i < len) {
		c = (unsigned char)s[i];
		if (c == '\r' || c == '\n' || c == '\t' || c == ' ') {
			space = any;
			i++;
			continue;
		}
		n = 1;
		if (c >= 0x80) {
			n = utf8 ? utf8_sequence_len(s + i, len - i) : 0;
			if (n == 0)
				n = 1, c = '?';
		} else if (c < 0x20 || c == 0x7f) {
			c = '?';
		}
		if (used + (space ? 1 : 0) + n > max) {
			bounce_puts(out, "...");
			return;
		}
		if (space) {
			bounce_put(out, " ", 1);
			used++;
			space = false;
		}
		if (n == 1)
			bounce_put(out, &c, 1);
		else
			bounce_put(out, s + i, n);
		used += n;
		any = true;
		i += n;
	}
}

/* A cleaned copy of s as a C string in scratch (reset first). */
static const char *
bounce_cleaned(struct bounce_out *scratch, const char *s, size_t max, bool utf8)
{
	buf_reset(&scratch->buf);
	scratch->overflow = false;
	bounce_clean(scratch, s, max, utf8);
	if (scratch->overflow)
		return "";
	return buf_cstr(&scratch->buf);
}

static bool
bounce_has_8bit(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/*
 * Append text (cleaned: single spaces, no controls) after first, folding
 * at spaces so lines stay within width where the words allow: a
 * continuation line starts with indent. For a header field indent is " "
 * and the fold is RFC 5322 section 2.2.3 folding (CRLF before WSP). A
 * word longer than BOUNCE_WORD_MAX is cut (at a UTF-8 character
 * boundary) and continued on the next line, so no line passes
 * BOUNCE_LINE_MAX. Ends with CRLF.
 */
static void
bounce_fold(struct bounce_out *o, const char *first, const char *text, const char *indent,
            size_t width)
{
	size_t col = strlen(first), ilen = strlen(indent), wl;
	bool linehas = col > 0;
	const char *p = text, *e;

	bounce_puts(o, first);
	while (*p != '\0') {
		if (*p == ' ') {
			p++;
			continue;
		}
		e = strchr(p, ' ');
		wl = e != NULL ? (size_t)(e - p) : strlen(p);
		if (wl > BOUNCE_WORD_MAX) {
			wl = BOUNCE_WORD_MAX;
			while (wl > 1 && ((unsigned char)p[wl] & 0xc0) == 0x80)
				wl--;
		}
		if (linehas && col + 1 + wl > width) {
			bounce_puts(o, "\r\n");
			bounce_puts(o, indent);
			col = ilen;
			linehas = ilen > 0 && indent[ilen - 1] != ' ';
		} else if (linehas) {
			bounce_put(o, " ", 1);
			col++;
		}
		bounce_put(o, p, wl);
		col += wl;
		linehas = true;
		p += wl;
	}
	bounce_puts(o, "\r\n");
}

/* One DSN field "Name: value", value cleaned and folded. */
static void
bounce_field(struct bounce_out *o, struct bounce_out *scratch, const char *name,
             const char *value, size_t max, bool utf8)
{
	char first[64];

	snprintf(first, sizeof(first), "%s:", name);
	bounce_fold(o, first, bounce_cleaned(scratch, value, max, utf8), " ", BOUNCE_FOLD_WIDTH);
}

/* ---- addresses in DSN fields ---- */

/* Decode the UTF-8 sequence of n bytes at p into a code point. */
static uint32_t
bounce_utf8_cp(const unsigned char *p, size_t n)
{
	uint32_t cp = p[0] & (0xff >> (n + 1));
	size_t i;

	for (i = 1; i < n; i++)
		cp = (cp << 6) | (p[i] & 0x3f);
	return cp;
}

/*
 * RFC 6533 section 3 utf-8-addr-xtext: for a non-ASCII address in a
 * plain message/delivery-status, where only ASCII may appear. '\', '+'
 * and '=' and every non-ASCII character are written \x{HEX}.
 */
static void
bounce_addr_xtext(struct bounce_out *o, const char *addr)
{
	const unsigned char *p = (const unsigned char *)addr;
	size_t len = strlen(addr), i = 0, n;

	while (i < len) {
		if (p[i] >= 0x80) {
			n = utf8_sequence_len(p + i, len - i);
			if (n == 0) {
				bounce_puts(o, "\\x{FFFD}");
				i++;
			} else {
				bounce_printf(o, "\\x{%" PRIX32 "}", bounce_utf8_cp(p + i, n));
				i += n;
			}
		} else if (p[i] == '\\' || p[i] == '+' || p[i] == '=') {
			bounce_printf(o, "\\x{%X}", p[i]);
			i++;
		} else {
			bounce_put(o, p + i, 1);
			i++;
		}
	}
}

/*
 * "Final-Recipient: rfc822; addr", or "utf-8; addr" for a non-ASCII
 * address: raw UTF-8 in message/global-delivery-status (RFC 6533), the
 * \x{..} form in plain message/delivery-status.
 */
static void
bounce_addr_field(struct bounce_out *o, struct bounce_out *scratch, const char *name,
                  const char *addr, bool global)
{
	struct bounce_out v;
	const char *clean = bounce_cleaned(scratch, addr, BOUNCE_ADDR_MAX, true);
	char first[64];

	buf_init(&v.buf, BOUNCE_SCRATCH_MAX);
	v.overflow = false;
	if (!bounce_has_8bit(clean)) {
		bounce_puts(&v, "rfc822; ");
		bounce_puts(&v, clean);
	} else if (global) {
		bounce_puts(&v, "utf-8; ");
		bounce_puts(&v, clean);
	} else {
		bounce_puts(&v, "utf-8; ");
		bounce_addr_xtext(&v, clean);
	}
	snprintf(first, sizeof(first), "%s:", name);
	bounce_fold(o, first, v.overflow ? "unknown; ?" : buf_cstr(&v.buf), " ",
	            BOUNCE_FOLD_WIDTH);
	buf_free(&v.buf);
}

/* ---- the delivery-status part ---- */

static const char *
bounce_action_name(enum bounce_action a)
{
	switch (a) {
	case BOUNCE_ACTION_FAILED: return "failed";
	case BOUNCE_ACTION_DELAYED: return "delayed";
	case BOUNCE_ACTION_DELIVERED: return "delivered";
	case BOUNCE_ACTION_RELAYED: return "relayed";
	case BOUNCE_ACTION_EXPANDED: return "expanded";
	}
	return "failed";
}

/* RFC 3464 section 2.3.4: DIGIT "." 1*3DIGIT "." 1*3DIGIT, no leading
 * zeros, class 2, 4 or 5 (RFC 3463 section 3.1). */
static bool
bounce_status_ok(const char *s)
{
	int part, n;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	s += 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
			;
		if (n < 1 || n > 3 || (n > 1 && s[0] == '0'))
			return false;
		s += n;
		if (part == 0 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

static const char *
bounce_status(const struct bounce_rcpt *rc)
{
	if (bounce_status_ok(rc->status))
		return rc->status;
	switch (rc->action) {
	case BOUNCE_ACTION_FAILED: return "5.0.0";
	case BOUNCE_ACTION_DELAYED: return "4.0.0";
	default: return "2.0.0";
	}
}

/* Does s start with "atom;" (a diagnostic-type or mta-name-type)? */
static bool
bounce_has_type(const char *s)
{
	size_t n = 0;

	while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
	       (s[n] >= '0' && s[n] <= '9') || s[n] == '-')
		n++;
	return n > 0 && s[n] == ';';
}

/* A "type; text" field, cleaned and folded; text without a type gets
 * deftype (ours, trusted). */
static void
bounce_typed_field(struct bounce_out *o, const char *name, const char *deftype,
                   const char *value, size_t max, bool utf8)
{
	struct bounce_out v;
	char first[64];

	buf_init(&v.buf, max + 256);
	v.overflow = false;
	if (!bounce_has_type(value)) {
		bounce_puts(&v, deftype);
		bounce_puts(&v, "; ");
	}
	bounce_clean(&v, value, max, utf8);
	snprintf(first, sizeof(first), "%s:", name);
	bounce_fold(o, first, v.overflow ? "" : buf_cstr(&v.buf), " ", BOUNCE_FOLD_WIDTH);
	buf_free(&v.buf);
}

static void
bounce_status_rcpt(struct bounce_out *o, struct bounce_out *scratch,
                   const struct bounce_rcpt *rc, const char *xtype, bool global)
{
	char date[64];

	bounce_puts(o, "\r\n");
	/* RFC 3461 section 6.3 (d): Original-Recipient only from ORCPT, as given. */
	if (rc->orcpt != NULL && rc->orcpt[0] != '\0')
		bounce_field(o, scratch, "Original-Recipient", rc->orcpt, BOUNCE_FIELD_MAX, global);
	bounce_addr_field(o, scratch, "Final-Recipient", rc->final_rcpt, global);
	bounce_printf(o, "Action: %s\r\n", bounce_action_name(rc->action));
	bounce_printf(o, "Status: %s\r\n", bounce_status(rc));
	if (rc->remote_mta != NULL && rc->remote_mta[0] != '\0')
		bounce_typed_field(o, "Remote-MTA", "dns", rc->remote_mta,
		                   BOUNCE_FIELD_MAX, false);
	if (rc->diagnostic != NULL && rc->diagnostic[0] != '\0')
		bounce_typed_field(o, "Diagnostic-Code", xtype, rc->diagnostic,
		                   BOUNCE_DIAGNOSTIC_MAX, global);
	if (rc->last_attempt > 0) {
		bounce_date(date, sizeof(date), rc->last_attempt);
		bounce_printf(o, "Last-Attempt-Date: %s\r\n", date);
	}
	/* RFC 3464 section 2.3.9: MUST NOT appear except for "delayed". */
	if (rc->action == BOUNCE_ACTION_DELAYED && rc->will_retry_until > 0) {
		bounce_date(date, sizeof(date), rc->will_retry_until);
		bounce_printf(o, "Will-Retry-Until: %s\r\n", date);
	}
}

/*
 * The message/delivery-status body (RFC 3464 section 2.1): per-message
 * fields in the order of the ABNF of section 2.2, then per recipient a
 * blank line and the fields in the order of section 2.3.
 */
static void
bounce_status_part(struct bounce_out *o, struct bounce_out *scratch,
                   const struct bounce_report *r, const char *mail_name)
{
	const struct envelope *env = r->env;
	bool global = env->smtputf8;
	char date[64], xtype[40], sname[64];
	struct bounce_out v;
	size_t i;

	/* RFC 3461 section 6.3 (a): Original-Envelope-Id when ENVID was given. */
	if (env->envid != NULL && env->envid[0] != '\0')
		bounce_field(o, scratch, "Original-Envelope-Id", env->envid, BOUNCE_FIELD_MAX, false);
	bounce_printf(o, "Reporting-MTA: dns; %s\r\n", r->myhostname);
	/* RFC 3464 section 2.2.4: the HELO name, the address as a comment. */
	if (env->helo != NULL && env->helo[0] != '\0') {
		buf_init(&v.buf, BOUNCE_SCRATCH_MAX);
		v.overflow = false;
		bounce_puts(&v, "dns; ");
		bounce_clean(&v, env->helo, BOUNCE_FIELD_MAX, false);
		if (env->client_addr != NULL && env->client_addr[0] != '\0') {
			bounce_puts(&v, " ([");
			bounce_clean(&v, env->client_addr, BOUNCE_FIELD_MAX, false);
			bounce_puts(&v, "])");
		}
		bounce_field(o, scratch, "Received-From-MTA", v.overflow ? "" : buf_cstr(&v.buf),
		             BOUNCE_FIELD_MAX * 2, false);
		buf_free(&v.buf);
	}
	if (env->arrival > 0) {
		bounce_date(date, sizeof(date), env->arrival);
		bounce_printf(o, "Arrival-Date: %s\r\n", date);
	}
	/* RFC 3464 section 2.4 (c): MTA-specific extension fields. */
	snprintf(xtype, sizeof(xtype), "X-%s", mail_name);
	if (xtype[2] >= 'a' && xtype[2] <= 'z')
		xtype[2] = (char)(xtype[2] - 'a' + 'A');	/* X-Tern, as X-Postfix */
	bounce_printf(o, "%s-Queue-ID: %s\r\n", xtype, r->queue_id);
	/* No "rfc822; " with nothing after it for <> (a double bounce):
	 * Postfix omits the field too. */
	if (!bounce_is_null_sender(env)) {
		snprintf(sname, sizeof(sname), "%s-Sender", xtype);
		bounce_addr_field(o, scratch, sname, env->sender, global);
	}

	for (i = 0; i < r->nrcpt; i++)
		bounce_status_rcpt(o, scratch, &r->rcpts[i], xtype, global);
}

/* ---- the human-readable part ---- */

/* The text after "type; " of a typed value, or all of it. */
static const char *
bounce_untyped(const char *s)
{
	const char *p;

	if (!bounce_has_type(s))
		return s;
	p = strchr(s, ';') + 1;
	while (*p == ' ')
		p++;
	return p;
}

/* The address part of an ORCPT "type;addr". */
static const char *
bounce_orcpt_addr(const char *orcpt)
{
	const char *p = strchr(orcpt, ';');

	return p != NULL ? p + 1 : orcpt;
}

/* One recipient's line: "<addr>: host mx said: 550 ..." (folded). */
static void
bounce_text_rcpt(struct bounce_out *o, const struct bounce_rcpt *rc, bool utf8)
{
	struct bounce_out v;

	buf_init(&v.buf, BOUNCE_SCRATCH_MAX);
	v.overflow = false;
	bounce_puts(&v, "<");
	bounce_clean(&v, rc->final_rcpt, BOUNCE_ADDR_MAX, utf8);
	bounce_puts(&v, ">");
	if (rc->orcpt != NULL && strcasecmp(bounce_orcpt_addr(rc->orcpt), rc->final_rcpt) != 0) {
		bounce_puts(&v, " (originally <");
		bounce_clean(&v, bounce_orcpt_addr(rc->orcpt), BOUNCE_ADDR_MAX, utf8);
		bounce_puts(&v, ">)");
	}
	bounce_puts(&v, ": ");
	switch (rc->action) {
	case BOUNCE_ACTION_DELIVERED: bounce_puts(&v, "delivered. "); break;
	case BOUNCE_ACTION_RELAYED: bounce_puts(&v, "relayed. "); break;
	case BOUNCE_ACTION_EXPANDED: bounce_puts(&v, "delivered and expanded. "); break;
	default: break;
	}
	if (rc->remote_mta != NULL && rc->remote_mta[0] != '\0') {
		bounce_puts(&v, "host ");
		bounce_clean(&v, bounce_untyped(rc->remote_mta), BOUNCE_FIELD_MAX, false);
		bounce_puts(&v, rc->diagnostic != NULL ? " said: " : " was involved.");
	}
	if (rc->diagnostic != NULL && rc->diagnostic[0] != '\0')
		bounce_clean(&v, bounce_untyped(rc->diagnostic), BOUNCE_DIAGNOSTIC_MAX, utf8);
	else if (rc->remote_mta == NULL)
		bounce_printf(&v, "status %s.", bounce_status(rc));
	/* Every piece was cleaned above: fold as it is. */
	bounce_fold(o, "", v.overflow ? "(report unavailable)" : buf_cstr(&v.buf), "    ",
	            BOUNCE_TEXT_WIDTH);
	bounce_puts(o, "\r\n");
	buf_free(&v.buf);
}

/* A paragraph of our own text, folded, then a blank line. */
static void
bounce_para(struct bounce_out *o, struct bounce_out *scratch, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
bounce_para(struct bounce_out *o, struct bounce_out *scratch, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	bounce_fold(o, "", bounce_cleaned(scratch, text, sizeof(text), true), "",
	            BOUNCE_TEXT_WIDTH);
	bounce_puts(o, "\r\n");
}

/* The first Will-Retry-Until among the recipients, as a date, or "". */
static void
bounce_text_until(char *dst, size_t dstsz, const struct bounce_report *r)
{
	size_t i;

	dst[0] = '\0';
	for (i = 0; i < r->nrcpt && dst[0] == '\0'; i++)
		if (r->rcpts[i].will_retry_until > 0)
			bounce_date(dst, dstsz, r->rcpts[i].will_retry_until);
}

/* Which message a postmaster notice is about: its sender (cleaned), queue
 * ID and arrival, so the postmaster can find it in the log. */
static void
bounce_text_origin(struct bounce_out *o, const struct bounce_report *r)
{
	struct bounce_out v;
	char arrival[64];

	buf_init(&v.buf, BOUNCE_SCRATCH_MAX);
	v.overflow = false;
	if (bounce_is_null_sender(r->env)) {
		bounce_puts(&v, "The message came from the null sender <>");
	} else {
		bounce_puts(&v, "The message came from <");
		bounce_clean(&v, r->env->sender, BOUNCE_ADDR_MAX, r->env->smtputf8);
		bounce_puts(&v, ">");
	}
	bounce_printf(&v, ", queue ID %s", r->queue_id);
	if (r->env->arrival > 0) {
		bounce_date(arrival, sizeof(arrival), r->env->arrival);
		bounce_printf(&v, ", and arrived here on %s", arrival);
	}
	bounce_puts(&v, ".");
	bounce_fold(o, "", v.overflow ? "(the message's origin is unavailable)" : buf_cstr(&v.buf),
	            "", BOUNCE_TEXT_WIDTH);
	bounce_puts(o, "\r\n");
	buf_free(&v.buf);
}

/*
 * The text of a postmaster notice. Like Postfix's, it has none of the
 * sender's boilerplate; unlike Postfix's (which relies on the Subject
 * alone) it says which of the three notices it is.
 */
static void
bounce_text_postmaster(struct bounce_out *o, struct bounce_out *scratch,
                       const struct bounce_report *r)
{
	bool null = bounce_is_null_sender(r->env);
	char until[64];

	if (r->kind == BOUNCE_KIND_DELAYED) {
		bounce_text_until(until, sizeof(until), r);
		bounce_para(o, scratch, "Postmaster warning: a message has not yet been "
		            "delivered to the recipients listed below. This is only a "
		            "warning: the mail system keeps trying%s%s.",
		            until[0] ? " until " : "", until);
		if (null)
			bounce_para(o, scratch, "The message is a delivery status notice (its "
			            "sender is <>), so only the postmaster is warned. It is "
			            "attached, or its header when it is large.");
		else
			bounce_para(o, scratch, "This is a copy for the postmaster: its sender "
			            "has been warned too, unless it asked not to be (RFC 3461 "
			            "NOTIFY). Only the header of the message is attached.");
	} else if (null) {
		bounce_para(o, scratch, "Double bounce: a delivery status notice (a message "
		            "from the null sender <>) could not be delivered to the "
		            "recipients listed below. The mail system has given up on them.");
		bounce_para(o, scratch, "No notice is ever sent about a notice (RFC 3461 "
		            "section 6.2), so this copy for the postmaster is the last "
		            "report about it. The undeliverable notice is attached, or its "
		            "header when it is large.");
	} else {
		bounce_para(o, scratch, "Postmaster copy: a message could not be delivered "
		            "to the recipients listed below. The mail system has given up on "
		            "them and will not try again.");
		bounce_para(o, scratch, "Its sender has been sent a non-delivery notice, "
		            "unless it asked for none (RFC 3461 NOTIFY). Only the header of "
		            "the message is attached.");
	}
	bounce_text_origin(o, r);
}

static void
bounce_text_intro(struct bounce_out *o, struct bounce_out *scratch,
                  const struct bounce_report *r, const char *mail_name)
{
	char until[64] = "", arrival[64] = "";

	bounce_para(o, scratch, "This report comes from the %s mail system at %s.",
	            mail_name, r->myhostname);
	if (r->postmaster_rcpt != NULL) {
		bounce_text_postmaster(o, scratch, r);
		return;
	}
	switch (r->kind) {
	case BOUNCE_KIND_FAILED:
		bounce_para(o, scratch, "Your message could not be delivered to the "
		            "recipients listed below. The mail system has given up on "
		            "them and will not try again. The reasons it was given follow; "
		            "your message, or its header, is attached.");
		bounce_para(o, scratch, "If the reasons do not make the problem clear, "
		            "write to the postmaster of %s and include this report.",
		            r->myhostname);
		break;
	case BOUNCE_KIND_DELAYED:
		bounce_text_until(until, sizeof(until), r);
		if (r->env->arrival > 0)
			bounce_date(arrival, sizeof(arrival), r->env->arrival);
		bounce_para(o, scratch, "This is only a warning: you do not need to send "
		            "your message again.");
		bounce_para(o, scratch, "Your message%s%s has not yet been delivered to "
		            "the recipients listed below. The mail system keeps trying%s%s; "
		            "should it give up, you will get another report.",
		            arrival[0] ? ", which arrived here on " : "", arrival,
		            until[0] ? " until " : "", until);
		break;
	case BOUNCE_KIND_DELIVERED:
		bounce_para(o, scratch, "As you asked, this report tells you that your "
		            "message was delivered to the recipients listed below.");
		break;
	case BOUNCE_KIND_RELAYED:
		bounce_para(o, scratch, "As you asked, this report tells you what became "
		            "of your message. It was passed on for the recipients listed "
		            "below to a system that does not send delivery reports, so you "
		            "will hear no more about them, good or bad.");
		break;
	}
}

static void
bounce_text_part(struct bounce_out *o, struct bounce_out *scratch,
                 const struct bounce_report *r, const char *mail_name)
{
	bool utf8 = r->env->smtputf8;
	size_t i;

	bounce_text_intro(o, scratch, r, mail_name);
	for (i = 0; i < r->nrcpt; i++) {
		if (buf_len(&o->buf) > BOUNCE_TEXT_MAX) {
			bounce_printf(o, "(%zu more recipients: see the delivery report.)\r\n\r\n",
			              r->nrcpt - i);
			break;
		}
		bounce_text_rcpt(o, &r->rcpts[i], utf8);
	}
	bounce_printf(o, "-- \r\nThe %s mail system\r\n", mail_name);
}

/* ---- reading the original ---- */

/* pread exactly up to n bytes at off; returns bytes read (0 at EOF) or -1. */
static ssize_t
bounce_pread(int fd, void *p, size_t n, uint64_t off)
{
	ssize_t got;

	do
		got = pread(fd, p, n, (off_t)off);
	while (got < 0 && errno == EINTR);
	return got;
}

/*
 * Header end detector: the returned header ends before the first empty
 * line (RFC 5322 section 2.1). A bare LF line counts too, leniently.
 */
enum bounce_hdr_state { BOUNCE_HDR_BOL, BOUNCE_HDR_BOL_CR, BOUNCE_HDR_MID };

/* Scan n bytes at absolute offset off; return the offset where the header
 * ends, or UINT64_MAX when it goes on. */
static uint64_t
bounce_header_end(enum bounce_hdr_state *st, const unsigned char *p, size_t n, uint64_t off)
{
	size_t i;

	for (i = 0; i < n; i++) {
		switch (*st) {
		case BOUNCE_HDR_BOL:
			if (p[i] == '\n')
				return off + i;
			*st = p[i] == '\r' ? BOUNCE_HDR_BOL_CR : BOUNCE_HDR_MID;
			break;
		case BOUNCE_HDR_BOL_CR:
			if (p[i] == '\n')
				return off + i - 1;
			*st = BOUNCE_HDR_MID;
			break;
		case BOUNCE_HDR_MID:
			if (p[i] == '\n')
				*st = BOUNCE_HDR_BOL;
			break;
		}
	}
	return UINT64_MAX;
}

/*
 * Read the original from offset 0 (headers_only: up to its header's end;
 * else size bytes) and report what is returned: its length, 8-bit bytes,
 * its last byte, and whether boundary occurs in it (searched across chunk
 * edges by keeping the last blen-1 bytes).
 */
static int
bounce_scan_orig(int fd, uint64_t size, bool headers_only, const char *boundary,
                 struct bounce_scan *sc, char *err, size_t errsz)
{
	size_t blen = strlen(boundary), carry = 0, valid, i;
	enum bounce_hdr_state st = BOUNCE_HDR_BOL;
	uint64_t off = 0, end;
	unsigned char last = '\n';
	struct buf win;
	unsigned char *w;
	ssize_t got;
	int rc = 0;

	memset(sc, 0, sizeof(*sc));
	sc->ret_len = size;
	buf_init(&win, BOUNCE_READ_CHUNK + BOUNCE_BOUNDARY_MAX);
	w = (unsigned char *)buf_reserve(&win, BOUNCE_READ_CHUNK + BOUNCE_BOUNDARY_MAX);
	while (off < sc->ret_len) {
		valid = sc->ret_len - off < BOUNCE_READ_CHUNK ? (size_t)(sc->ret_len - off)
		                                              : BOUNCE_READ_CHUNK;
		got = bounce_pread(fd, w + carry, valid, off);
		if (got < 0) {
			bounce_err(err, errsz, "read original: %s", strerror(errno));
			rc = -1;
			break;
		}
		if (got == 0) {
			bounce_err(err, errsz, "read original: file shorter than %" PRIu64
			           " bytes", sc->ret_len);
			rc = -1;
			break;
		}
		valid = (size_t)got;
		if (headers_only) {
			end = bounce_header_end(&st, w + carry, valid, off);
			if (end != UINT64_MAX) {
				sc->ret_len = end;
				valid = (size_t)(end - off);
			}
		}
		for (i = 0; i < valid; i++)
			if (w[carry + i] >= 0x80)
				sc->eightbit = true;
		if (valid > 0)
			last = w[carry + valid - 1];
		if (memmem(w, carry + valid, boundary, blen) != NULL)
			sc->collides = true;
		off += valid;
		/* Keep the tail: a boundary may straddle two chunks. */
		i = carry + valid < blen - 1 ? carry + valid : blen - 1;
		memmove(w, w + carry + valid - i, i);
		carry = i;
	}
	sc->ends_lf = last == '\n';
	buf_free(&win);
	return rc;
}

/* ---- policy ---- */

/* Our own names go into header lines unfolded: printable ASCII, no
 * space, bounded. */
static bool
bounce_token_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL || s[0] == '\0')
		return false;
	for (n = 0; s[n] != '\0'; n++)
		if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f ||
		    s[n] == '<' || s[n] == '>' || s[n] == '"')
			return false;
	return n <= max;
}

bool
bounce_is_null_sender(const struct envelope *env)
{
	return env == NULL || env->sender == NULL || env->sender[0] == '\0';
}

bool
bounce_is_postmaster_sender(const struct envelope *env, const char *postmaster_sender)
{
	if (bounce_is_null_sender(env) || postmaster_sender == NULL || postmaster_sender[0] == '\0')
		return false;
	/* Postfix compares with strcasecmp() (bounce_notify_service.c). */
	return strcasecmp(env->sender, postmaster_sender) == 0;
}

bool
bounce_wanted(const struct envelope *env, size_t rcpt_index, enum bounce_action a)
{
	unsigned notify;

	/* RFC 5321 section 4.5.5: never a notice about a notice. */
	if (bounce_is_null_sender(env))
		return false;
	if (rcpt_index >= env->nrcpt)
		panic("bounce_wanted: recipient %zu of %zu", rcpt_index, env->nrcpt);
	notify = env->rcpts[rcpt_index].notify;
	if (notify & ENVELOPE_NOTIFY_NEVER)
		return false;
	/* RFC 3461 section 4.1: no NOTIFY may be taken as FAILURE,DELAY
	 * (Postfix's choice too). */
	if (notify == 0)
		notify = ENVELOPE_NOTIFY_FAILURE | ENVELOPE_NOTIFY_DELAY;
	switch (a) {
	case BOUNCE_ACTION_FAILED:
		return (notify & ENVELOPE_NOTIFY_FAILURE) != 0;
	case BOUNCE_ACTION_DELAYED:
		return (notify & ENVELOPE_NOTIFY_DELAY) != 0;
	case BOUNCE_ACTION_DELIVERED:
	case BOUNCE_ACTION_RELAYED:
	case BOUNCE_ACTION_EXPANDED:
		return (notify & ENVELOPE_NOTIFY_SUCCESS) != 0;
	}
	return false;
}

/* Does the notice ask for the whole original (before the size limit and
 * BINARYMIME have their say)? */
static bool
bounce_whole_wanted(const struct bounce_report *r)
{
	if (r->postmaster_rcpt != NULL)
		/* postconf(5) notify_classes: "bounce" and "delay" send "copies
		 * of the headers" (Postfix's DSN_RET_HDRS), whatever RET the
		 * sender gave; "2bounce" sends "undeliverable bounced mail"
		 * (DSN_RET_FULL): an original from <>. */
		return bounce_is_null_sender(r->env) &&
		       (r->kind == BOUNCE_KIND_FAILED || r->kind == BOUNCE_KIND_DELAYED);
	/* A warning (the message is still here) or a success report: RET=FULL
	 * asks for the message in "failed" DSNs (RFC 3461 section 4.3);
	 * Postfix returns headers in both. */
	return r->kind == BOUNCE_KIND_FAILED && r->env->ret != ENVELOPE_RET_HDRS;
}

const char *
bounce_return_part(const struct bounce_report *r, uint64_t orig_size, enum bounce_return *what)
{
	uint64_t limit = r->size_limit ? r->size_limit : BOUNCE_SIZE_LIMIT_DEFAULT;
	enum bounce_return ret;
	bool global = r->env->smtputf8;

	if (!bounce_whole_wanted(r))
		ret = BOUNCE_RETURN_HEADERS;
	else if (r->env->body == ENVELOPE_BODY_BINARYMIME)
		/* XXX binary content need not be CRLF lines; message/rfc822
		 * would need Content-Transfer-Encoding: binary (RFC 3030). */
		ret = BOUNCE_RETURN_HEADERS;
	else
		/* RET=FULL or no RET: the whole message up to bounce_size_limit,
		 * headers past it. RFC 3461 section 4.3 allows that for FULL too,
		 * and Postfix does it (bounce_original()): a forged sender must
		 * not get a 50 MB message back (backscatter). A double bounce is
		 * bounded the same way. */
		ret = orig_size <= limit ? BOUNCE_RETURN_FULL : BOUNCE_RETURN_HEADERS;
	if (what != NULL)
		*what = ret;
	/* RFC 6533 section 3 (message/global) and section 4 (global-headers). */
	if (ret == BOUNCE_RETURN_FULL)
		return global ? "message/global" : "message/rfc822";
	return global ? "message/global-headers" : "text/rfc822-headers";
}

void
bounce_envelope_init(struct envelope *out, const struct bounce_report *r)
{
	if (r->postmaster_rcpt != NULL) {
		if (!bounce_token_ok(r->postmaster_rcpt, BOUNCE_POSTMASTER_MAX) ||
		    !bounce_token_ok(r->postmaster_sender, BOUNCE_POSTMASTER_MAX))
			panic("bounce_envelope_init: bad postmaster recipient or sender");
	} else if (bounce_is_null_sender(r->env)) {
		panic("bounce_envelope_init: notice for the null sender");
	}
	envelope_clear(out);
	if (r->postmaster_rcpt != NULL) {
		/* Postfix: post_mail_fopen_nowait(mail_addr_double_bounce(),
		 * postmaster, ...): not <>, so the notice is told apart from a
		 * bounce and discarded, not bounced, when it fails. NOTIFY=NEVER
		 * as for any notice. */
		envelope_set(&out->sender, r->postmaster_sender);
		envelope_add_rcpt(out, r->postmaster_rcpt, NULL, ENVELOPE_NOTIFY_NEVER);
	} else {
		envelope_set(&out->sender, "");
		envelope_add_rcpt(out, r->env->sender, NULL, ENVELOPE_NOTIFY_NEVER);
	}
	out->smtputf8 = r->env->smtputf8;
	out->body = r->env->body == ENVELOPE_BODY_8BITMIME ||
	            r->env->body == ENVELOPE_BODY_BINARYMIME || r->env->smtputf8
	            ? ENVELOPE_BODY_8BITMIME : ENVELOPE_BODY_DEFAULT;
}

/* ---- assembling the notice ---- */

/* Postfix's template subjects (bounce_templates.c); the postmaster ones
 * for the copy and the double bounce alike (bounce_header(...,
 * POSTMASTER_COPY)). */
static const char *
bounce_subject(const struct bounce_report *r)
{
	if (r->postmaster_rcpt != NULL)
		return r->kind == BOUNCE_KIND_DELAYED ? "Postmaster Warning: Delayed Mail"
		                                      : "Postmaster Copy: Undelivered Mail";
	switch (r->kind) {
	case BOUNCE_KIND_FAILED: return "Undelivered Mail Returned to Sender";
	case BOUNCE_KIND_DELAYED: return "Delayed Mail (still being retried)";
	case BOUNCE_KIND_DELIVERED: return "Successful Mail Delivery Report";
	case BOUNCE_KIND_RELAYED: return "Mail Delivery Report (relayed)";
	}
	return "Mail Delivery Report";
}

/* The postmaster fields of a report: both or neither, valid, and a kind
 * and original that have a postmaster notice. */
static int
bounce_check_postmaster(const struct bounce_report *r, char *err, size_t errsz)
{
	if (r->postmaster_rcpt == NULL) {
		if (r->postmaster_sender != NULL) {
			bounce_err(err, errsz, "bounce: postmaster_sender without postmaster_rcpt");
			return -1;
		}
		return 0;
	}
	if (!bounce_token_ok(r->postmaster_rcpt, BOUNCE_POSTMASTER_MAX)) {
		bounce_err(err, errsz, "bounce: bad postmaster_rcpt");
		return -1;
	}
	if (r->postmaster_sender == NULL ||
	    !bounce_token_ok(r->postmaster_sender, BOUNCE_POSTMASTER_MAX)) {
		bounce_err(err, errsz, "bounce: missing or bad postmaster_sender");
		return -1;
	}
	if (r->kind != BOUNCE_KIND_FAILED && r->kind != BOUNCE_KIND_DELAYED) {
		/* Postfix's success template has no postmaster subject. */
		bounce_err(err, errsz, "bounce: no postmaster notice for a success report");
		return -1;
	}
	if (bounce_is_postmaster_sender(r->env, r->postmaster_sender)) {
		/* A triple bounce: Postfix discards it ("undeliverable postmaster
		 * notification discarded"); so must the caller. */
		bounce_err(err, errsz, "bounce: the original is a postmaster notice: "
		           "discard it, no notice");
		return -1;
	}
	return 0;
}

static int
bounce_check(const struct bounce_report *r, char *err, size_t errsz)
{
	if (r->env == NULL || r->nrcpt == 0 || r->rcpts == NULL) {
		bounce_err(err, errsz, "bounce: no envelope or no recipients");
		return -1;
	}
	if (r->postmaster_rcpt == NULL && bounce_is_null_sender(r->env)) {
		/* RFC 5321 section 4.5.5 / RFC 3461 section 6.2. Only the
		 * postmaster hears of an undeliverable notice (a double bounce). */
		bounce_err(err, errsz, "bounce: the sender is <>: no notice");
		return -1;
	}
	if (bounce_check_postmaster(r, err, errsz) < 0)
		return -1;
	if (!bounce_token_ok(r->myhostname, BOUNCE_HOSTNAME_MAX) ||
	    !bounce_token_ok(r->queue_id, BOUNCE_QUEUE_ID_MAX) ||
	    (r->mail_name != NULL && !bounce_token_ok(r->mail_name, 32)) ||
	    (r->from_addr != NULL && !bounce_token_ok(r->from_addr, BOUNCE_FROM_MAX))) {
		bounce_err(err, errsz, "bounce: bad myhostname, queue id, mail_name or from");
		return -1;
	}
	return 0;
}

/* Candidate boundary number `try`: "=_" cannot occur in quoted-printable. */
static void
bounce_boundary(char *dst, size_t dstsz, const struct bounce_report *r, unsigned try)
{
	char qid[17];
	size_t i, n = 0;

	for (i = 0; r->queue_id[i] != '\0' && n < sizeof(qid) - 1; i++)
		if ((r->queue_id[i] >= '0' && r->queue_id[i] <= '9') ||
		    (r->queue_id[i] >= 'A' && r->queue_id[i] <= 'Z') ||
		    (r->queue_id[i] >= 'a' && r->queue_id[i] <= 'z'))
			qid[n++] = r->queue_id[i];
	qid[n] = '\0';
	snprintf(dst, dstsz, "=_tern-%s-%016" PRIx64, qid, bounce_mix(r->seed + try));
}

/* RFC 5322 message header and the MIME structure up to the returned
 * content; boundary already chosen. */
static void
bounce_head(struct bounce_out *o, struct bounce_out *scratch, const struct bounce_report *r,
            const char *boundary, struct bounce_out *text,
            struct bounce_out *status, const char *ret_type, enum bounce_return ret,
            bool ret_8bit)
{
	bool utf8 = r->env->smtputf8;
	bool text8 = utf8 && bounce_has_8bit(buf_cstr(&text->buf));
	bool status8 = utf8 && bounce_has_8bit(buf_cstr(&status->buf));
	bool undelivered = r->kind == BOUNCE_KIND_FAILED || r->kind == BOUNCE_KIND_DELAYED;
	bool postmaster = r->postmaster_rcpt != NULL;
	char date[64];
	time_t t = (time_t)(r->now / 1000000);
	struct tm tm;

	if (r->from_addr != NULL)
		bounce_printf(o, "From: Mail Delivery System <%s>\r\n", r->from_addr);
	else
		bounce_printf(o, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", r->myhostname);
	if (postmaster) {
		/* Checked by bounce_token_ok(): short, printable, no < >. */
		bounce_printf(o, "To: <%s>\r\n", r->postmaster_rcpt);
	} else {
		buf_reset(&scratch->buf);
		scratch->overflow = false;
		bounce_puts(scratch, "<");
		bounce_clean(scratch, r->env->sender, BOUNCE_ADDR_MAX, utf8);
		bounce_puts(scratch, ">");
		/* Folded like any field, so even a damaged address keeps the
		 * line short. */
		bounce_fold(o, "To:", scratch->overflow ? "<>" : buf_cstr(&scratch->buf), " ",
		            BOUNCE_FOLD_WIDTH);
	}
	bounce_printf(o, "Subject: %s\r\n", bounce_subject(r));
	bounce_date(date, sizeof(date), r->now);
	bounce_printf(o, "Date: %s\r\n", date);
	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	bounce_printf(o, "Message-ID: <%04d%02d%02d%02d%02d%02d.%s.%08" PRIx32 "@%s>\r\n",
	              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	              tm.tm_sec, r->queue_id,
	              (uint32_t)(bounce_mix(~r->seed ^ (postmaster ? BOUNCE_POSTMASTER_TAG : 0))
	                         >> 32),
	              r->myhostname);
	/* RFC 3834 section 5: automatic messages say so, against loops. A
	 * postmaster notice is not a reply to the original's sender:
	 * auto-generated, as Postfix's (bounce_header()). */
	bounce_printf(o, "Auto-Submitted: %s\r\n", postmaster ? "auto-generated" : "auto-replied");
	bounce_puts(o, "MIME-Version: 1.0\r\n");
	bounce_printf(o, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	              "\tboundary=\"%s\"\r\n", boundary);
	if (text8 || status8 || ret_8bit)
		bounce_puts(o, "Content-Transfer-Encoding: 8bit\r\n");
	bounce_puts(o, "\r\nThis is a MIME-encapsulated delivery status notification "
	            "(RFC 3464).\r\n");

	bounce_printf(o, "\r\n--%s\r\n", boundary);
	bounce_puts(o, "Content-Description: Notification\r\n");
	bounce_printf(o, "Content-Type: text/plain; charset=%s\r\n", text8 ? "utf-8" : "us-ascii");
	if (text8)
		bounce_puts(o, "Content-Transfer-Encoding: 8bit\r\n");
	bounce_puts(o, "\r\n");
	bounce_put(o, buf_data(&text->buf), buf_len(&text->buf));

	bounce_printf(o, "\r\n--%s\r\n", boundary);
	bounce_puts(o, "Content-Description: Delivery report\r\n");
	/* RFC 6533 section 6: message/global-delivery-status for SMTPUTF8. */
	bounce_printf(o, "Content-Type: message/%sdelivery-status\r\n", utf8 ? "global-" : "");
	if (status8)
		bounce_puts(o, "Content-Transfer-Encoding: 8bit\r\n");
	bounce_puts(o, "\r\n");
	bounce_put(o, buf_data(&status->buf), buf_len(&status->buf));

	bounce_printf(o, "\r\n--%s\r\n", boundary);
	bounce_printf(o, "Content-Description: %s%s\r\n", undelivered ? "Undelivered " : "",
	              ret == BOUNCE_RETURN_FULL ? "Message" : "Message Headers");
	bounce_printf(o, "Content-Type: %s\r\n", ret_type);
	if (ret_8bit)
		bounce_puts(o, "Content-Transfer-Encoding: 8bit\r\n");
	bounce_puts(o, "\r\n");
}

/* Copy the returned bytes of the original through write_fn. */
static int
bounce_copy_orig(int fd, uint64_t len, bounce_write_fn *write_fn, void *arg, char *err,
                 size_t errsz)
{
	uint64_t off = 0;
	struct buf chunk;
	size_t want;
	ssize_t got;
	char *p;
	int rc = 0;

	buf_init(&chunk, BOUNCE_READ_CHUNK);
	p = buf_reserve(&chunk, BOUNCE_READ_CHUNK);
	while (off < len) {
		want = len - off < BOUNCE_READ_CHUNK ? (size_t)(len - off) : BOUNCE_READ_CHUNK;
		got = bounce_pread(fd, p, want, off);
		if (got <= 0) {
			bounce_err(err, errsz, "read original: %s",
			           got < 0 ? strerror(errno) : "file shrank");
			rc = -1;
			break;
		}
		if (write_fn(arg, p, (size_t)got) != 0) {
			bounce_err(err, errsz, "bounce: write failed");
			rc = -1;
			break;
		}
		off += (uint64_t)got;
	}
	buf_free(&chunk);
	return rc;
}

/*
 * Choose a boundary found neither in our parts nor in the returned
 * original (RFC 2046 section 5.1.1), and scan the original on the way.
 */
static int
bounce_choose_boundary(const struct bounce_report *r, int fd, uint64_t size, bool headers_only,
                       struct bounce_out *text, struct bounce_out *status, char *boundary,
                       size_t bsz, struct bounce_scan *sc, char *err, size_t errsz)
{
	unsigned try;

	for (try = 0; try < BOUNCE_BOUNDARY_TRIES; try++) {
		bounce_boundary(boundary, bsz, r, try);
		if (memmem(buf_data(&text->buf), buf_len(&text->buf), boundary, strlen(boundary)) ||
		    memmem(buf_data(&status->buf), buf_len(&status->buf), boundary,
		           strlen(boundary)))
			continue;
		if (bounce_scan_orig(fd, size, headers_only, boundary, sc, err, errsz) < 0)
			return -1;
		if (!sc->collides)
			return 0;
	}
	bounce_err(err, errsz, "bounce: no MIME boundary free of collisions");
	return -1;
}

int
bounce_write(const struct bounce_report *r, int orig_fd, bounce_write_fn *write_fn, void *arg,
             char *err, size_t errsz)
{
	const char *mail_name, *ret_type;
	struct bounce_out text, status, head, scratch;
	char boundary[BOUNCE_BOUNDARY_MAX + 1];
	enum bounce_return ret;
	struct bounce_scan sc;
	struct stat stb;
	int rc = -1;

	if (bounce_check(r, err, errsz) < 0)
		return -1;
	mail_name = r->mail_name != NULL ? r->mail_name : "tern";
	if (fstat(orig_fd, &stb) < 0) {
		bounce_err(err, errsz, "fstat original: %s", strerror(errno));
		return -1;
	}
	ret_type = bounce_return_part(r, (uint64_t)stb.st_size, &ret);

	buf_init(&text.buf, BOUNCE_PARTS_MAX);
	buf_init(&status.buf, BOUNCE_PARTS_MAX);
	buf_init(&head.buf, BOUNCE_PARTS_MAX * 2 + 64 * 1024);
	buf_init(&scratch.buf, BOUNCE_SCRATCH_MAX);
	text.overflow = status.overflow = head.overflow = scratch.overflow = false;

	bounce_text_part(&text, &scratch, r, mail_name);
	bounce_status_part(&status, &scratch, r, mail_name);
	if (text.overflow || status.overflow) {
		bounce_err(err, errsz, "bounce: report over %u bytes", BOUNCE_PARTS_MAX);
		goto out;
	}
	if (bounce_choose_boundary(r, orig_fd, (uint64_t)stb.st_size,
	                           ret == BOUNCE_RETURN_HEADERS, &text, &status, boundary,
	                           sizeof(boundary), &sc, err, errsz) < 0)
		goto out;
	bounce_head(&head, &scratch, r, boundary, &text, &status, ret_type, ret, sc.eightbit);
	if (head.overflow) {
		bounce_err(err, errsz, "bounce: report over %u bytes", BOUNCE_PARTS_MAX);
		goto out;
	}
	if (write_fn(arg, buf_data(&head.buf), buf_len(&head.buf)) != 0) {
		bounce_err(err, errsz, "bounce: write failed");
		goto out;
	}
	if (bounce_copy_orig(orig_fd, sc.ret_len, write_fn, arg, err, errsz) < 0)
		goto out;
	/* The CRLF before a delimiter belongs to it (RFC 2046 section 5.1.1):
	 * a last line without its own line end gets one first. */
	buf_reset(&head.buf);
	if (!sc.ends_lf)
		bounce_puts(&head, "\r\n");
	bounce_printf(&head, "\r\n--%s--\r\n", boundary);
	if (write_fn(arg, buf_data(&head.buf), buf_len(&head.buf)) != 0) {
		bounce_err(err, errsz, "bounce: write failed");
		goto out;
	}
	rc = 0;
out:
	buf_free(&text.buf);
	buf_free(&status.buf);
	buf_free(&head.buf);
	buf_free(&scratch.buf);
	return rc;
}

static int
bounce_buf_write(void *arg, const void *p, size_t n)
{
	return buf_append(arg, p, n) == BUF_OK ? 0 : -1;
}

int
bounce_write_buf(const struct bounce_report *r, int orig_fd, struct buf *out, char *err,
                 size_t errsz)
{
	if (bounce_write(r, orig_fd, bounce_buf_write, out, err, errsz) < 0) {
		if (buf_room(out) == 0 || strstr(err != NULL ? err : "", "write failed"))
			bounce_err(err, errsz, "bounce: output buffer full (max %zu bytes)",
			           out->max);
		return -1;
	}
	return 0;
}
