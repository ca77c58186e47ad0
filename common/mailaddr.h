/*
 * mailaddr: the one parser of envelope addresses (RFC 5321 section 4.1.2
 * Path / Mailbox), used for relay decisions, recipient validation,
 * routing and logging alike, so that every part of tern sees the same
 * parsed form (the relay tricks of protocols-reference.md depend on that).
 *
 * It takes (pointer, length), never writes to its input, and enforces the
 * RFC 5321 section 4.5.3.1 limits: local part 64, domain 255, path 256
 * octets.
 */
#ifndef TERN_MAILADDR_H
#define TERN_MAILADDR_H

#include <stdbool.h>
#include <stddef.h>

#define MAILADDR_LOCAL_MAX 64	/* RFC 5321 4.5.3.1.1 */
#define MAILADDR_DOMAIN_MAX 255	/* RFC 5321 4.5.3.1.2 */
#define MAILADDR_PATH_MAX 256	/* RFC 5321 4.5.3.1.3, with < > */

/* Parse flags. */
#define MAILADDR_ALLOW_NULL       0x01	/* <> is allowed (MAIL FROM) */
#define MAILADDR_ALLOW_POSTMASTER 0x02	/* <Postmaster> without domain (RCPT, RFC 5321 4.5.1) */
#define MAILADDR_ALLOW_UTF8       0x04	/* SMTPUTF8 given: UTF-8 in local part and domain */
#define MAILADDR_ALLOW_NO_BRACKETS 0x08	/* tolerate a path without < > (Postfix's default) */

struct mailaddr {
	/* "local@domain" as it will be stored and logged; "" for <>;
	 * "Postmaster" for the bare postmaster form. The local part keeps its
	 * quoting as the client sent it; the domain keeps its case (use
	 * domain_lc for comparisons). A source route is dropped. */
	char addr[MAILADDR_PATH_MAX + 1];
	char local[MAILADDR_LOCAL_MAX + 1];	/* as given, quotes kept */
	char domain[MAILADDR_DOMAIN_MAX + 1];	/* as given ("" when none) */
	char domain_lc[MAILADDR_DOMAIN_MAX + 1]; /* lower case, one trailing dot removed */
	bool null;		/* <> */
	bool postmaster;	/* bare <Postmaster> */
	bool quoted;		/* the local part was a quoted-string */
	bool literal;		/* the domain is an address literal [..] */
	bool utf8;		/* non-ASCII bytes appear */
	bool had_route;		/* a source route @a,@b: was given and ignored */
};

enum mailaddr_result {
	MAILADDR_OK = 0,
	MAILADDR_SYNTAX = -1,	/* not an RFC 5321 path */
	MAILADDR_TOO_LONG = -2,	/* a 4.5.3.1 limit passed */
	MAILADDR_UTF8 = -3,	/* non-ASCII without MAILADDR_ALLOW_UTF8 */
};

/*
 * Parse a path at the start of (p, len), e.g. the text after "MAIL FROM:".
 * Leading spaces are skipped. On MAILADDR_OK, *consumed is the number of
 * bytes up to and including '>' (or the address end without brackets).
 * On error, *why points to a static phrase for the reply text.
 */
enum mailaddr_result mailaddr_parse_path(const char *p, size_t len, unsigned flags,
                                         struct mailaddr *out, size_t *consumed,
                                         const char **why);

/* Is (p, len) a valid RFC 5321 Domain (dot-separated LDH labels, or U-labels
 * when utf8)? Address literals are not domains here. */
bool mailaddr_is_domain(const char *p, size_t len, bool utf8);
/* Is (p, len) an RFC 5321 address-literal ([1.2.3.4], [IPv6:...])? */
bool mailaddr_is_address_literal(const char *p, size_t len);

#endif
