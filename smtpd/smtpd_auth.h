/*
 * smtpd_auth: the server side of SMTP AUTH (RFC 4954) as the session sees
 * it, independent of the back end: which mechanisms a listener offers,
 * and one exchange at a time per session (start with a mechanism and an
 * optional initial response, step with each client response) that ends
 * in a challenge to send, success with the authenticated username, or a
 * permanent or temporary failure.
 *
 * Back ends (smtpd_sasl_type):
 *   cyrus    libsasl2 on a worker thread of its own (smtpd_auth_cyrus.c):
 *            Cyrus calls block (saslauthd has no time limit), so they
 *            never run on the event loop;
 *   dovecot  Dovecot's auth protocol over its unix socket, one connection
 *            shared by every session (smtpd_auth_dovecot.c).
 *
 * Every exchange is asynchronous: smtpd_auth_start() and
 * smtpd_auth_step() return at once and the result comes to the callback,
 * always from the event loop and never from inside those calls (so the
 * session is never re-entered). Each call has a time limit
 * (SMTPD_AUTH_TIMEOUT_MS) after which the result is a temporary failure.
 *
 * Ownership: the set (struct smtpd_auth_set) belongs to the server and
 * owns the back ends; an exchange belongs to its session, which frees it
 * with smtpd_auth_free() (no callback comes after that). Strings in a
 * result are borrowed until the callback returns.
 *
 * This module also holds the pure parsers the AUTH command needs (its
 * arguments, base64), testable without sockets.
 */
#ifndef TERN_SMTPD_AUTH_H
#define TERN_SMTPD_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/evloop.h"
#include "config/config.h"

/* RFC 4422 section 3.1: a mechanism name is 1 to 20 characters of
 * [A-Z0-9-_]. */
#define SMTPD_AUTH_MECH_MAX 20
/* The mechanisms one back end may offer, and their list as text. */
#define SMTPD_AUTH_MECHS_MAX 32
#define SMTPD_AUTH_MECHLIST_MAX (SMTPD_AUTH_MECHS_MAX * (SMTPD_AUTH_MECH_MAX + 1))
/* RFC 4954 section 4: a client response line may be 12288 octets. The
 * same bound holds our challenges (base64 text, without "334 "). */
#define SMTPD_AUTH_LINE_MAX 12288
#define SMTPD_AUTH_DATA_MAX SMTPD_AUTH_LINE_MAX
/* The authenticated username we keep (logs, envelope, restrictions). */
#define SMTPD_AUTH_USERNAME_MAX 255
/* Text of a failure as the back end explains it. */
#define SMTPD_AUTH_REASON_MAX 200
/* How long one step may wait for the back end. */
#define SMTPD_AUTH_TIMEOUT_MS 30000

enum smtpd_auth_status {
	SMTPD_AUTH_CONTINUE,	/* send "334 challenge", then read a response */
	SMTPD_AUTH_OK,		/* authenticated as username */
	SMTPD_AUTH_FAIL,	/* wrong credentials, bad mechanism data: 535 */
	SMTPD_AUTH_TEMPFAIL,	/* our side failed (back end down, timeout): 454 */
};

struct smtpd_auth_result {
	enum smtpd_auth_status status;
	const char *challenge;	/* CONTINUE: base64, "" for an empty one */
	const char *username;	/* OK: printable, at most SMTPD_AUTH_USERNAME_MAX */
	const char *reason;	/* FAIL, TEMPFAIL: printable text for the reply */
};

/* Who is authenticating, for the back end (Dovecot's lip/rip, Cyrus's
 * iplocalport/ipremoteport). Strings are borrowed for the call. */
struct smtpd_auth_peer {
	const char *client_addr;	/* "192.0.2.1", or "unknown" */
	unsigned client_port;
	const char *server_addr;
	unsigned server_port;
	bool tls;			/* the channel is encrypted */
};

typedef void smtpd_auth_done_fn(void *arg, const struct smtpd_auth_result *r);

struct smtpd_auth_set;
struct smtpd_auth_backend;
struct smtpd_auth;

/*
 * Build the back ends the configuration asks for (each listener with
 * smtpd_sasl_auth_enable = yes), reusing those of old (adopted; NULL at
 * start) whose settings did not change. config_dir is the directory of
 * the configuration file (NULL without one), for Cyrus's default config
 * path. NULL with err when a back end cannot start at all (Cyrus's
 * library refuses to initialise or offers no mechanism): at start the
 * caller stops, at reload it keeps old.
 */
struct smtpd_auth_set *smtpd_auth_set_new(struct evloop *loop, const struct config *cfg,
                                          const char *config_dir, struct smtpd_auth_set *old,
                                          char *err, size_t errsz);
void smtpd_auth_set_free(struct smtpd_auth_set *set);

/* The back end of a listener, NULL when AUTH is not enabled there. */
struct smtpd_auth_backend *smtpd_auth_backend_of(struct smtpd_auth_set *set,
                                                 enum config_listener l);
/* Its mechanisms, space-separated ("PLAIN LOGIN"); "" when it knows none
 * yet (a Dovecot server not reached so far). Borrowed until the next
 * return to the event loop. */
const char *smtpd_auth_mechs(struct smtpd_auth_backend *b);
/* Is mech (any case) one of them? */
bool smtpd_auth_mech_offered(struct smtpd_auth_backend *b, const char *mech);

/*
 * Start an exchange with mech (checked by smtpd_auth_parse_command) and
 * the initial response: NULL for none, "" for an empty one ("=" on the
 * wire), otherwise checked base64. The result comes to cb(arg, ...).
 */
struct smtpd_auth *smtpd_auth_start(struct smtpd_auth_backend *b,
                                    const struct smtpd_auth_peer *peer, const char *mech,
                                    const char *initial, smtpd_auth_done_fn *cb, void *arg);
/* The client's response (checked base64, "" for empty) to the last
 * CONTINUE; the result comes to the callback again. */
void smtpd_auth_step(struct smtpd_auth *a, const char *response);
/* The exchange's mechanism, upper-case. */
const char *smtpd_auth_mech(const struct smtpd_auth *a);
/* End the exchange (done, cancelled or the session closing): the back end
 * forgets it and no callback follows. NULL is fine. */
void smtpd_auth_free(struct smtpd_auth *a);

/* ---- parsers (pure) ---- */

/*
 * The arguments of "AUTH mechanism [initial-response]" at (args, len).
 * Fills mech (upper-cased, NUL-terminated) and points *initial at the
 * response inside args (*initial_len its length), or NULL when absent.
 * Returns 0, or -1 when there are no or too many arguments or the
 * mechanism is not a SASL name (RFC 4422 section 3.1).
 */
int smtpd_auth_parse_command(const char *args, size_t len, char mech[SMTPD_AUTH_MECH_MAX + 1],
                             const char **initial, size_t *initial_len);

/* Is (p, len) base64 as RFC 4648 section 4 writes it (alphabet, length a
 * multiple of 4, "=" padding only at the end)? "" is. */
bool smtpd_auth_base64_valid(const char *p, size_t len);
/* Decode checked-or-not base64 into out (outsz bytes). Returns the decoded
 * length, or -1 when malformed or too long. */
long smtpd_auth_base64_decode(const char *p, size_t len, unsigned char *out, size_t outsz);
/* Encode len bytes into out (NUL-terminated). Returns the text length, or
 * -1 when outsz is too small. */
long smtpd_auth_base64_encode(const unsigned char *p, size_t len, char *out, size_t outsz);

/* Copy (p, len) into dst (dstsz) as Postfix's printable() does: bytes
 * outside printable ASCII become '?'; cut to fit. */
void smtpd_auth_printable(const char *p, size_t len, char *dst, size_t dstsz);

#endif
