/*
 * smtpd_tls: TLS in the listener: STARTTLS on the smtp and submission
 * listeners (RFC 3207) and implicit TLS on smtps_listen (RFC 8314).
 *
 * Three parts, each for its process:
 *   - the key material (master): the master, still root, reads each
 *     listener's certificate chain and private key (PEM) at start and on
 *     every reload, checks that they load and match, and hands the bytes
 *     to the smtpd role in one control frame (FRAME_MASTER_TLS_KEYS). The
 *     role runs as mail_owner and never opens the files: a root-only key
 *     (mode 600 root) works.
 *   - the server contexts (smtpd role): one SSL_CTX per listener, made
 *     from those bytes; a new frame replaces them, sessions under way keep
 *     the context they started with (each SSL holds a reference).
 *   - the session glue (smtpd role): the STARTTLS verb, the encrypt-level
 *     gate, the handshake as a step on readiness events, and reads and
 *     writes of a session once TLS is up.
 *
 * Policy (doc/smtpd_tls.md): TLS 1.2 and 1.3, ECDHE with AEAD ciphers
 * only, server cipher preference, no compression, no renegotiation, no
 * session resumption.
 *
 * Errors: configuration problems are "FILE:LINE: message" lines; a bad
 * frame from the master is a bug (the caller panics); a session's TLS
 * failure closes that session only, with one log line.
 */
#ifndef TERN_SMTPD_TLS_H
#define TERN_SMTPD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/frame.h"
#include "config/config.h"
#include "smtpd/smtpd_command.h"

struct smtpd_session;

/* Largest certificate chain or key file the master reads (a chain of a
 * few certificates is under 10 KB). */
#define SMTPD_TLS_PEM_MAX (64u * 1024)
/* Largest FRAME_MASTER_TLS_KEYS: every listener with a chain and a key,
 * plus field headers. */
#define SMTPD_TLS_KEYS_FRAME_MAX \
	(FRAME_HEADER_SIZE + 16 + CONFIG_LISTENER_COUNT * (3 * 16 + 32 + 2 * SMTPD_TLS_PEM_MAX))

/* smtpd_tls_security_level (postconf(5), Postfix's names). */
enum smtpd_tls_level {
	SMTPD_TLS_NONE = 0,	/* no STARTTLS */
	SMTPD_TLS_MAY,		/* STARTTLS offered (with a certificate) */
	SMTPD_TLS_ENCRYPT,	/* STARTTLS required before mail (530 5.7.0) */
};

/* The level of listener l. The smtps listener is always ENCRYPT: TLS is
 * on before the first byte of SMTP (Postfix's wrapper mode). */
enum smtpd_tls_level smtpd_tls_level_of(const struct config *cfg, enum config_listener l);

/* May verb run before TLS under level? Under ENCRYPT only EHLO, HELO,
 * STARTTLS, NOOP, RSET and QUIT may (the rest gets 530 5.7.0). Pure. */
bool smtpd_tls_gate_allows(enum smtpd_tls_level level, bool tls_active, enum smtpd_verb verb);

/* May AUTH be offered and used? Not in plain text when auth_only
 * (smtpd_tls_auth_only) or under ENCRYPT (it implies auth_only, as in
 * Postfix). Pure; for the SASL code. */
bool smtpd_tls_auth_allowed(enum smtpd_tls_level level, bool tls_active, bool auth_only);

/* ---- key material (master) ---- */

struct smtpd_tls_keys;

/*
 * Read and check the certificate and key of every listener that listens
 * and needs them (smtps always; smtp and submission unless their level is
 * none). 0 with *out set (an empty set when no listener needs TLS), or -1
 * with one "FILE:LINE: message" line per problem appended to errors:
 * ENCRYPT or smtps without smtpd_tls_cert_file, a file that cannot be
 * read or is larger than SMTPD_TLS_PEM_MAX, no certificate or no key in
 * it, a key that does not match the certificate, an encrypted key.
 */
int smtpd_tls_keys_load(const struct config *cfg, struct smtpd_tls_keys **out,
                        struct buf *errors);
/* Free (and wipe) the key material. NULL is fine. */
void smtpd_tls_keys_free(struct smtpd_tls_keys *k);
/* smtpd_tls_keys_load() for its verdict only (ternd -n, start, reload). */
int smtpd_tls_config_check(const struct config *cfg, struct buf *errors);

/* Append the whole FRAME_MASTER_TLS_KEYS frame: u64 n, then n times
 * (bytes listener name, bytes certificate chain PEM, bytes key PEM). out
 * must allow SMTPD_TLS_KEYS_FRAME_MAX more bytes. */
void smtpd_tls_keys_encode(const struct smtpd_tls_keys *k, struct buf *out);
/* Decode that frame's payload; -1 when malformed (unknown or repeated
 * listener, a PEM over SMTPD_TLS_PEM_MAX, bytes left over). */
int smtpd_tls_keys_decode(struct frame_reader *r, struct smtpd_tls_keys **out);

/* ---- server contexts (smtpd role) ---- */

struct smtpd_tls_server;

/* One context per listener that has key material. NULL with err when one
 * cannot be made (the master checked the same bytes: a surprise). */
struct smtpd_tls_server *smtpd_tls_server_new(const struct smtpd_tls_keys *k, char *err,
                                              size_t errsz);
/* Sessions made from it keep working. NULL is fine. */
void smtpd_tls_server_free(struct smtpd_tls_server *srv);
/* Has listener l a certificate? (srv may be NULL: none.) */
bool smtpd_tls_server_has(const struct smtpd_tls_server *srv, enum config_listener l);
/* The SHA-256 fingerprint of l's certificate, "AB:CD:..." (out >= 96
 * bytes); false when l has none. */
bool smtpd_tls_server_fingerprint(const struct smtpd_tls_server *srv, enum config_listener l,
                                  char *out, size_t outsz);

/* ---- sessions (smtpd_session.c and smtpd_verbs.c) ---- */

/* The handshake has completed on this session. */
bool smtpd_tls_active(const struct smtpd_session *s);
/* The protocol ("TLSv1.3"), cipher name and its secret bits of an active
 * TLS session, for the milter macros; false when TLS is not up. */
bool smtpd_tls_describe(const struct smtpd_session *s, const char **version, const char **cipher,
                        int *bits);
/* Offer STARTTLS in the EHLO reply? (a level other than none, a
 * certificate, and TLS not yet active) */
bool smtpd_tls_offer_starttls(const struct smtpd_session *s);
/* After STARTTLS, MAIL needs a new HELO/EHLO first (RFC 3207 section
 * 4.2: the client starts over). */
bool smtpd_tls_needs_helo(const struct smtpd_session *s);
/* The encrypt-level gate for one command: true when it may run; false
 * when "530 5.7.0 Must issue a STARTTLS command first" was queued. */
bool smtpd_tls_gate(struct smtpd_session *s, enum smtpd_verb verb);
/* The STARTTLS verb (the command table's handler). */
bool smtpd_tls_starttls(struct smtpd_session *s, const struct smtpd_command *cmd);

enum smtpd_tls_step {
	SMTPD_TLS_STEP_DONE = 0,	/* TLS is up; the state is CONNECTED */
	SMTPD_TLS_STEP_READ,		/* wait for the socket to be readable */
	SMTPD_TLS_STEP_WRITE,		/* ... writable */
	SMTPD_TLS_STEP_FAILED,		/* logged ("SSL_accept error from ..."); close */
};

/* One step of the server handshake (the state is SMTPD_STATE_HANDSHAKE
 * and the reply queue empty). */
enum smtpd_tls_step smtpd_tls_handshake(struct smtpd_session *s);
/* Read application data into s->in, like buf_read_fd(): bytes (> 0), 0
 * at the end of the stream, or -1 with errno EAGAIN (call again on the
 * next event), ENOBUFS (s->in is full) or EIO (a TLS error, logged). */
ssize_t smtpd_tls_read(struct smtpd_session *s, size_t want);
/* Write from p, like send(): bytes taken, or -1 with errno EAGAIN or the
 * error (EIO for a TLS one). */
ssize_t smtpd_tls_write(struct smtpd_session *s, const void *p, size_t len);
/* The events the session must watch on top of its own: a read that
 * waits for the socket to be writable, or a write that waits for it to
 * be readable. */
unsigned smtpd_tls_events(const struct smtpd_session *s);
/* Should an event (revents) run the read path? */
bool smtpd_tls_read_ready(const struct smtpd_session *s, unsigned revents);
/* Decrypted input waits inside OpenSSL (no socket event will say so). */
bool smtpd_tls_pending(const struct smtpd_session *s);
/* End TLS: close_notify when the connection is healthy, then free. */
void smtpd_tls_session_free(struct smtpd_session *s);

#endif
