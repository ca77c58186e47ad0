/*
 * sendmail_headers: what sendmail does to a message on its way from
 * standard input to the DATA command, as pure functions over bytes (no
 * I/O, no clock, no passwd: the caller passes the time and the names in),
 * so each rule is a table row in tests/unit/sendmail_headers_test.c.
 *
 *   - Line ends: LF and CRLF both end a line; every line leaves as CRLF
 *     (Postfix's sendmail_fix_line_endings = always). A lone CR stays.
 *   - A line that is a lone "." ends the input, unless -i (sendmail(8));
 *     every line that starts with "." is dot-stuffed (RFC 5321 4.5.2).
 *   - The header section (RFC 5322 section 2.2) is kept in memory, up to
 *     SENDMAIL_HEADERS_MAX bytes, because -t reads recipients from it and
 *     missing headers are appended to it; the body is streamed.
 *   - -t: recipients from To, Cc and Bcc, or from Resent-To, Resent-Cc
 *     and Resent-Bcc when the message has any Resent- field (a resent
 *     message goes to its new recipients only); Bcc and Resent-Bcc are
 *     removed (sendmail(8) -t).
 *   - Missing (Resent-)Message-Id, (Resent-)Date and (Resent-)From are
 *     added as Postfix's cleanup adds them to local submissions: the
 *     Resent- forms when the message has a Resent- field.
 *
 * Ownership: struct sendmail_headers and struct sendmail_addrs own the
 * copies they hold; free them with their _free function.
 */
#ifndef TERN_SENDMAIL_HEADERS_H
#define TERN_SENDMAIL_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/buf.h"

/* Most header bytes kept in memory (Postfix's header_size_limit is
 * 102400); what comes after is sent as body, unread by -t. */
#define SENDMAIL_HEADERS_MAX (1024u * 1024)
/* Longest address taken from a header or the command line (RFC 5321
 * 4.5.3.1.3 path, 256, with room for a quoted local part to be refused
 * by the parser rather than cut here). */
#define SENDMAIL_ADDR_MAX 1024
/* Most addresses one submission may name (each is one RCPT). */
#define SENDMAIL_ADDRS_MAX 100000

/* ---- the body: a streaming converter ---- */

struct sendmail_body {
	int state;		/* where the last byte left us in a line */
	bool ignore_dots;	/* -i */
};

void sendmail_body_init(struct sendmail_body *b, bool ignore_dots);
/*
 * Convert (p, n) for DATA: line ends to CRLF, dot-stuffing, and the lone
 * "." that ends the input (unless ignore_dots). Appends to out (which
 * must have room for 2 * n + 4 bytes). Returns the bytes consumed: n, or
 * fewer when a lone-dot line ended the input (*end set; that line is
 * consumed and nothing after it belongs to the message).
 */
size_t sendmail_body_feed(struct sendmail_body *b, const char *p, size_t n, struct buf *out,
                          bool *end);
/* At the end of the input: end a last line that had no line end with
 * CRLF (and a final "." without a line end ends the input, as a line). */
void sendmail_body_finish(struct sendmail_body *b, struct buf *out);

/* ---- the header section ---- */

/* Header fields noticed (bits of sendmail_headers.seen). */
#define SENDMAIL_SEEN_FROM              0x01
#define SENDMAIL_SEEN_DATE              0x02
#define SENDMAIL_SEEN_MESSAGE_ID        0x04
#define SENDMAIL_SEEN_RESENT_FROM       0x08
#define SENDMAIL_SEEN_RESENT_DATE       0x10
#define SENDMAIL_SEEN_RESENT_MESSAGE_ID 0x20

struct sendmail_header {
	char *text;		/* the field as read: lines joined with CRLF, no final CRLF */
	size_t len;
	size_t name_len;	/* the field name, before optional spaces and ':' */
	bool removed;		/* Bcc under -t */
};

struct sendmail_headers {
	struct sendmail_header *v;
	size_t n, cap;
	size_t bytes;		/* kept so far, against SENDMAIL_HEADERS_MAX */
	unsigned seen;
	bool resent;		/* some Resent- field is present */
	bool lines;		/* a line was seen (the Unix "From " line is only the first) */
};

/* What sendmail_headers_line() made of one line. */
enum sendmail_hline {
	SENDMAIL_HLINE_FIELD,	/* a field (or its continuation): kept */
	SENDMAIL_HLINE_SKIPPED,	/* a leading Unix "From " line: dropped, as Postfix does */
	SENDMAIL_HLINE_BODY,	/* the header section ended before this line (an empty
				 * line, a line that is no field, or the size limit):
				 * the line belongs to the body, nothing was taken */
	SENDMAIL_HLINE_DOT,	/* a lone "." (without -i): the input ends here */
};

void sendmail_headers_init(struct sendmail_headers *h);
void sendmail_headers_free(struct sendmail_headers *h);
/*
 * Offer one line of the header section, without its LF or CRLF. A field
 * starts with a name of printable characters other than ':' followed by
 * optional spaces and ':' (RFC 5322 section 2.2; the spaces are RFC 822's
 * obsolete syntax, which Postfix also takes); a line starting with a
 * space or tab continues the previous field.
 */
enum sendmail_hline sendmail_headers_line(struct sendmail_headers *h, const char *p, size_t n,
                                          bool ignore_dots);
/* Mark Bcc and Resent-Bcc fields removed; returns how many. */
size_t sendmail_headers_remove_bcc(struct sendmail_headers *h);
/* Append the kept fields, each line ending in CRLF and dot-stuffed. */
void sendmail_headers_write(const struct sendmail_headers *h, struct buf *out);

/* ---- addresses ---- */

struct sendmail_addrs {
	char **v;		/* owned strings */
	size_t n, cap;
};

void sendmail_addrs_free(struct sendmail_addrs *a);
/*
 * Parse an RFC 5322 address-list (section 3.4: mailboxes, name-addr with
 * a display name, groups "name: a, b;", comments, quoted strings, folding,
 * the obsolete route "<@a,@b:user@host>") and append the addr-spec of each
 * mailbox, without display names, comments or white space. Empty groups
 * and "<>" add nothing. 0, or -1 with err on an unbalanced quote, comment,
 * angle bracket or domain literal, an address longer than
 * SENDMAIL_ADDR_MAX, or more than SENDMAIL_ADDRS_MAX addresses.
 */
int sendmail_addrs_parse(struct sendmail_addrs *a, const char *p, size_t n, char *err,
                         size_t errsz);
/*
 * -t: the recipients of the header section (see above) appended to a.
 * 0, or -1 with err naming the field that does not parse.
 */
int sendmail_headers_recipients(const struct sendmail_headers *h, struct sendmail_addrs *a,
                                char *err, size_t errsz);
/*
 * Postfix's append_at_myorigin: "user" becomes "user@origin" (into dst);
 * an address with a domain is copied. 0, or -1 when it does not fit.
 */
int sendmail_addr_qualify(const char *addr, const char *origin, char *dst, size_t dstsz);

/* ---- headers added to a local submission ---- */

struct sendmail_ident {
	const char *sender;	/* the envelope sender; "" for the null sender */
	const char *full_name;	/* -F, $NAME or the gecos name; NULL or "" for none */
	const char *hostname;	/* myhostname, for the Message-Id */
	time_t now;		/* Date: in local time */
	const char *unique;	/* unique within the host and second, for the Message-Id */
};

/*
 * Append the missing (Resent-)Message-Id, (Resent-)Date and (Resent-)From
 * fields, in that order (cleanup's), each ending in CRLF:
 *   Message-Id: <YYYYMMDDHHMMSS.UNIQUE@HOSTNAME>   (UTC time, as Postfix)
 *   Date: Tue,  3 Mar 2026 09:45:26 +0100 (CET)
 *   From: Full Name <sender>   (Postfix's header_from_format = standard;
 *                               the name quoted when it is no atom list;
 *                               MAILER-DAEMON for the null sender)
 * Control characters in the full name are dropped (no header injection
 * through -F or a gecos field).
 */
void sendmail_headers_missing(const struct sendmail_headers *h, const struct sendmail_ident *id,
                              struct buf *out);
/* The gecos field's full name (its first comma-separated part, '&' as
 * the login with a capital first letter, as finger and Postfix read it)
 * into dst; "" when there is none. */
void sendmail_gecos_name(const char *gecos, const char *login, char *dst, size_t dstsz);

#endif
