/*
 * smtpd_auth_dovecot: smtpd_sasl_type = dovecot, Dovecot's authentication
 * protocol (doc.dovecot.org "Dovecot Authentication Protocol", v1.x) on
 * the auth-client unix socket.
 *
 *   C: VERSION 1 2 / CPID pid
 *   S: VERSION 1 x / MECH name [flags] ... / SPID / CUID / COOKIE / DONE
 *   C: AUTH id mech service=smtp nologin lip= rip= lport= rport= [secured] [resp=b64]
 *   S: CONT id b64  |  OK id user=... [resp=b64]  |  FAIL id [reason=...] [temp]
 *   C: CONT id b64
 *
 * One connection serves every session, each exchange with its own request
 * id. It is made at start (to learn the mechanisms), again whenever it is
 * needed after a loss, and never blocks: a connect that does not finish at
 * once, a handshake that takes longer than SMTPD_AUTH_DOVECOT_HANDSHAKE_MS,
 * a line longer than SMTPD_AUTH_DOVECOT_LINE_MAX or a reply that does not
 * parse drops the connection and answers every pending exchange with a
 * temporary failure. A reply for an id nobody waits for (it timed out) is
 * ignored. The parser below is pure, for the unit tests.
 */
#ifndef TERN_SMTPD_AUTH_DOVECOT_H
#define TERN_SMTPD_AUTH_DOVECOT_H

#include <stdbool.h>
#include <stddef.h>

/* Dovecot's AUTH_CLIENT_MAX_LINE_LENGTH, LF included. */
#define SMTPD_AUTH_DOVECOT_LINE_MAX 16384
/* Fields of one line we look at; more are ignored (unknown parameters
 * "should just be ignored", says the protocol). */
#define SMTPD_AUTH_DOVECOT_FIELDS_MAX 64
#define SMTPD_AUTH_DOVECOT_HANDSHAKE_MS 10000
/* The protocol major version we speak. */
#define SMTPD_AUTH_DOVECOT_MAJOR 1

enum smtpd_auth_dovecot_kind {
	SMTPD_AUTH_DOVECOT_BAD = 0,	/* a known command that does not parse */
	SMTPD_AUTH_DOVECOT_OTHER,	/* unknown or uninteresting: ignore */
	SMTPD_AUTH_DOVECOT_VERSION,
	SMTPD_AUTH_DOVECOT_MECH,
	SMTPD_AUTH_DOVECOT_SPID,
	SMTPD_AUTH_DOVECOT_DONE,
	SMTPD_AUTH_DOVECOT_OK,
	SMTPD_AUTH_DOVECOT_CONT,
	SMTPD_AUTH_DOVECOT_FAIL,
};

/* One parsed server line; every pointer points into the line. */
struct smtpd_auth_dovecot_line {
	enum smtpd_auth_dovecot_kind kind;
	const char *why;		/* BAD: what is wrong */
	unsigned long major, minor;	/* VERSION */
	unsigned id;			/* OK, CONT, FAIL */
	const char *mech;		/* MECH: the name (checked) */
	size_t mech_len;
	bool anonymous, private_mech;	/* MECH flags */
	const char *data;		/* CONT: the challenge; OK: resp= (NULL if none) */
	size_t data_len;
	const char *user;		/* OK, FAIL: user= (escaped), NULL if none */
	size_t user_len;
	const char *reason;		/* FAIL: reason= (escaped), NULL if none */
	size_t reason_len;
	bool temp;			/* FAIL: temp, or code=temp_fail */
};

/* Parse one line (without its LF). Never fails: kind says what it was. */
void smtpd_auth_dovecot_parse(const char *p, size_t len, struct smtpd_auth_dovecot_line *out);

/*
 * Undo Dovecot's tab-escaping (\001 then 0 NUL, 1 \001, t TAB, r CR,
 * n or l LF, anything else as itself) of (p, len) into dst. Returns the
 * length, or -1 when the result would hold a NUL or not fit dstsz - 1.
 */
long smtpd_auth_dovecot_unescape(const char *p, size_t len, char *dst, size_t dstsz);

#endif
