/*
 * smtpd_ratelimit: Postfix's anvil(8) client limits, and tern's per-login
 * limits, applied to a session at the points Postfix applies them
 * (doc/anvil.md). The counts live in the server's table (smtpd_anvil.h).
 *
 * Who is counted: every client of a network listener except those in
 * smtpd_client_event_limit_exceptions; never the sendmail socket. The
 * per-login limits look at the login only (their own exception list):
 * a stolen password used from a trusted network is still limited.
 *
 * Each check that refuses has queued its reply (Postfix's words) and
 * logged Postfix's warning line; the caller only stops. A server without
 * a table (unit tests) limits nothing.
 */
#ifndef TERN_SMTPD_RATELIMIT_H
#define TERN_SMTPD_RATELIMIT_H

#include <stdbool.h>

#include "config/config.h"

struct smtpd_session;

/* Is a client at client_addr (an IP address as text) on listener l out
 * of every client limit (smtpd_client_event_limit_exceptions)? Text that
 * is no IP address is never counted (true). Pure. */
bool smtpd_ratelimit_client_excepted(const struct config *cfg, enum config_listener l,
                                     const char *client_addr);
/* Is login out of the per-login limits (smtpd_sasl_user_rate_limit_
 * exceptions, compared without regard to case)? Pure. */
bool smtpd_ratelimit_login_excepted(const struct config *cfg, enum config_listener l,
                                    const char *login);

/* The connect stage, before the greeting (after the names are known, and
 * on smtps after the handshake, as Postfix): count the session; false
 * when over smtpd_client_connection_count_limit or _rate_limit (421 4.7.0
 * queued, the session closes after it). */
bool smtpd_ratelimit_connect(struct smtpd_session *s);
/* The session ends: uncount it (if it was counted). */
void smtpd_ratelimit_disconnect(struct smtpd_session *s);

/* MAIL: the client's and the login's message rates (450 4.7.1). */
bool smtpd_ratelimit_mail(struct smtpd_session *s);
/* RCPT: the client's and the login's recipient rates (450 4.7.1). */
bool smtpd_ratelimit_rcpt(struct smtpd_session *s);
/* AUTH: the client's AUTH rate (450 4.7.1). */
bool smtpd_ratelimit_auth(struct smtpd_session *s);

/* STARTTLS, before its 220: false when the client already made too many
 * new TLS sessions (454 4.7.0 queued; nothing counted). */
bool smtpd_ratelimit_starttls(struct smtpd_session *s);
/* smtps, before the handshake: the same question; false means close
 * without a word (there is no TLS to say it in). */
bool smtpd_ratelimit_smtps(struct smtpd_session *s);
/* The handshake is done: count a new (not resumed) TLS session; false
 * when that one was too many (421 4.7.0 queued, the session closes). */
bool smtpd_ratelimit_tls_up(struct smtpd_session *s, bool resumed);

#endif
