/*
 * smtp_caps: what a server offers, read from its EHLO reply (RFC 5321
 * section 4.1.1.1: the first line is the server's name and greeting, each
 * further line "keyword *(SP param)").
 *
 * Keywords are compared without regard to case (RFC 5321 2.4); unknown
 * keywords and malformed lines are ignored, as RFC 5321 4.1.1.1 expects of
 * a client. Known keywords: PIPELINING (RFC 2920), SIZE (RFC 1870),
 * 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), DSN (RFC 3461), STARTTLS
 * (RFC 3207), ENHANCEDSTATUSCODES (RFC 2034), CHUNKING (RFC 3030) and
 * AUTH (RFC 4954), XFORWARD (Postfix's attribute list), including the pre-standard "AUTH=MECH ..." form that
 * old Microsoft clients needed and some servers still send.
 *
 * Pure: no I/O, no allocation, cannot fail.
 */
#ifndef TERN_SMTP_CAPS_H
#define TERN_SMTP_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery/smtp_reply.h"

/* Bits of smtp_caps.flags. */
#define SMTP_CAPS_PIPELINING 0x0001u
#define SMTP_CAPS_SIZE 0x0002u
#define SMTP_CAPS_8BITMIME 0x0004u
#define SMTP_CAPS_SMTPUTF8 0x0008u
#define SMTP_CAPS_DSN 0x0010u
#define SMTP_CAPS_STARTTLS 0x0020u
#define SMTP_CAPS_ENHANCEDSTATUSCODES 0x0040u
#define SMTP_CAPS_CHUNKING 0x0080u
#define SMTP_CAPS_AUTH 0x0100u
#define SMTP_CAPS_XFORWARD 0x0200u	/* Postfix's XFORWARD_README */

/* Bits of smtp_caps.xforward: the XFORWARD attributes the server named. */
#define SMTP_XFORWARD_NAME 0x01u
#define SMTP_XFORWARD_ADDR 0x02u
#define SMTP_XFORWARD_PORT 0x04u
#define SMTP_XFORWARD_PROTO 0x08u
#define SMTP_XFORWARD_HELO 0x10u
#define SMTP_XFORWARD_IDENT 0x20u
#define SMTP_XFORWARD_SOURCE 0x40u

/* Most SASL mechanisms kept; further ones are ignored (no server offers
 * that many, and we only look for the few we implement). */
#define SMTP_CAPS_AUTH_MECHS_MAX 16
/* RFC 4422 section 3.1: a mechanism name is 1 to 20 characters, plus NUL. */
#define SMTP_CAPS_AUTH_MECH_SIZE 21

struct smtp_caps {
	unsigned flags;		/* SMTP_CAPS_* */
	/* SIZE's limit in octets (RFC 1870 section 4); 0 when SIZE came
	 * without a number, with 0 ("no fixed maximum"), or with a number
	 * that does not parse or fit: no limit known. */
	uint64_t size_max;
	unsigned xforward;	/* SMTP_XFORWARD_*: attributes XFORWARD takes */
	size_t nauth;		/* mechanisms in auth[] */
	/* AUTH mechanisms, upper case, each once, in the server's order. */
	char auth[SMTP_CAPS_AUTH_MECHS_MAX][SMTP_CAPS_AUTH_MECH_SIZE];
};

/*
 * Fill caps from a 2xx reply to EHLO (the first line is skipped). caps is
 * cleared first, so a reply to HELO, or a single-line EHLO reply, gives
 * no extensions at all.
 */
void smtp_caps_parse(const struct smtp_reply *ehlo, struct smtp_caps *caps);

static inline bool
smtp_caps_has(const struct smtp_caps *caps, unsigned flag)
{
	return (caps->flags & flag) == flag;
}

/* Does the server offer SASL mechanism mech (any case)? */
bool smtp_caps_auth_has(const struct smtp_caps *caps, const char *mech);

#endif
