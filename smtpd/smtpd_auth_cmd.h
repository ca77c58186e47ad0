/*
 * smtpd_auth_cmd: the AUTH command in the session (RFC 4954): the EHLO
 * keyword, the verb, the client's responses to 334 challenges, and what
 * an authenticated session carries (sasl_method, sasl_username on the
 * client= line, in the envelope and in Received: as ESMTPA).
 *
 * The replies, as Postfix words them:
 *   503 5.5.1 Error: authentication not enabled     (listener without AUTH)
 *   504 5.5.4 Encryption required for requested authentication mechanism
 *             (smtpd_tls_auth_only = yes and no TLS)
 *   503 5.5.1 Error: already authenticated
 *   501 5.5.4 Syntax: AUTH mechanism
 *   504 5.5.4 Unsupported authentication mechanism   (RFC 4954 section 4)
 *   501 5.5.2 Cannot decode response                 (not base64)
 *   500 5.5.6 Authentication exchange line is too long
 *   501 5.7.0 Authentication aborted                 ("*")
 *   535 5.7.8 Error: authentication failed: REASON   (after a delay)
 *   454 4.7.0 Temporary authentication failure: REASON
 *   235 2.7.0 Authentication successful
 * Every refusal counts toward the error limits. "In a MAIL transaction"
 * is the state table's 503 in smtpd_verbs.c.
 *
 * While the back end works the session is in SMTPD_STATE_AUTH: it reads
 * nothing, and resumes from the back end's callback.
 */
#ifndef TERN_SMTPD_AUTH_CMD_H
#define TERN_SMTPD_AUTH_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "smtpd/smtpd_command.h"

struct smtpd_session;

/* Does this session offer AUTH now (EHLO keyword, MAIL's AUTH=)? */
bool smtpd_auth_cmd_offered(struct smtpd_session *s);
/* Queue "250-AUTH mechs" when offered (a middle line of the EHLO reply). */
void smtpd_auth_cmd_ehlo(struct smtpd_session *s);
/* The AUTH verb; false (the exchange's outcome is counted when known). */
bool smtpd_auth_cmd_verb(struct smtpd_session *s, const struct smtpd_command *cmd);
/* Is the next line a response to a 334 challenge? */
bool smtpd_auth_cmd_reading(const struct smtpd_session *s);
/* Such a response line (without CRLF). */
void smtpd_auth_cmd_response(struct smtpd_session *s, const char *line, size_t len);
/*
 * ", sasl_method=PLAIN, sasl_username=alice[, sasl_sender=a@b]" for the
 * client= line ("" when not authenticated and no AUTH= was given), into
 * dst (dstsz).
 */
void smtpd_auth_cmd_log_fields(const struct smtpd_session *s, char *dst, size_t dstsz);
/* End any exchange (session end). */
void smtpd_auth_cmd_free(struct smtpd_session *s);

#endif
