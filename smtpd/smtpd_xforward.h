/*
 * smtpd_xforward: Postfix's XFORWARD command (XFORWARD_README), by which a
 * trusted client -- an after-queue content filter handing mail back on
 * reinject_listen -- names where the next message really came from, so
 * that the logs, the envelope and the next filter see the original client
 * instead of the filter.
 *
 *   EHLO reply     250-XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE
 *                  (only to smtpd_authorized_xforward_hosts)
 *   XFORWARD NAME=mx.example ADDR=192.0.2.1 PROTO=ESMTP    -> 250 2.0.0 Ok
 *   XFORWARD HELO=mx.example IDENT=0660E218E9C55E          -> 250 2.0.0 Ok
 *   MAIL FROM ... DATA ... "."                             -> the message's
 *   "QID: client=localhost[127.0.0.1], orig_queue_id=0660E218E9C55E,
 *    orig_client=mx.example[192.0.2.1]" and its envelope's client fields
 *   are the forwarded ones; the transaction's end (the final reply, RSET)
 *   forgets them.
 *
 * What XFORWARD changes is the record of the message's origin only: the
 * Received header, the restrictions and the policy service keep seeing
 * the real client (Postfix does the same: it is a logging extension).
 * Values are xtext (RFC 3461) of at most 255 characters; once decoded,
 * anything but printable ASCII is refused and the characters that mean
 * something in a header or a log line (" <>()\\\";@" and space) become
 * '?', as Postfix's neuter() does. "[UNAVAILABLE]", in any case, forgets
 * an attribute. XFORWARD_README, "server operation": the first XFORWARD
 * of a transaction starts from nothing known (never a mix of the real
 * session and forwarded values).
 *
 * The parser is pure (tests/unit/smtpd_xforward_test.c); the verb lives
 * in smtpd_verbs.c.
 */
#ifndef TERN_SMTPD_XFORWARD_H
#define TERN_SMTPD_XFORWARD_H

#include <stdbool.h>
#include <stddef.h>

/* XFORWARD_README note 1: an attribute value is at most 255 characters. */
#define SMTPD_XFORWARD_VALUE_MAX 255
/* XFORWARD_README: "PROTO ... of up to 64 characters". */
#define SMTPD_XFORWARD_PROTO_MAX 64
/* Room for a 501 reply text naming what was wrong. */
#define SMTPD_XFORWARD_ERR_SIZE 320

/* The attributes we offer, in the EHLO reply's order. */
#define SMTPD_XFORWARD_EHLO "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE"

enum smtpd_xforward_source {
	SMTPD_XFORWARD_SOURCE_UNKNOWN = 0,
	SMTPD_XFORWARD_SOURCE_LOCAL,	/* submitted on the up-stream host itself */
	SMTPD_XFORWARD_SOURCE_REMOTE,
};

/* Forwarded attributes; "" is unavailable. */
struct smtpd_xforward {
	bool given;		/* an XFORWARD since the last transaction ended */
	char name[SMTPD_XFORWARD_VALUE_MAX + 1];
	char addr[SMTPD_XFORWARD_VALUE_MAX + 1];
	char port[SMTPD_XFORWARD_VALUE_MAX + 1];
	char proto[SMTPD_XFORWARD_PROTO_MAX + 1];
	char helo[SMTPD_XFORWARD_VALUE_MAX + 1];
	char ident[SMTPD_XFORWARD_VALUE_MAX + 1];
	enum smtpd_xforward_source source;
};

/* Forget every attribute (the end of a transaction). */
void smtpd_xforward_reset(struct smtpd_xforward *xf);

/*
 * Apply the arguments of one XFORWARD command (the text after the verb,
 * len bytes, not NUL-terminated). All or nothing: 0 with xf updated, or -1
 * with xf unchanged and the text of a 501 5.5.4 reply in err.
 */
int smtpd_xforward_apply(struct smtpd_xforward *xf, const char *args, size_t len, char *err,
                         size_t errsz);

/* "name[addr]", or "name" when no address was forwarded (Postfix's
 * orig_client= form); "unknown" stands for a missing name. */
void smtpd_xforward_namaddr(const struct smtpd_xforward *xf, char *out, size_t outsz);

#endif
