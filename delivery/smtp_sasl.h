/*
 * smtp_sasl: client AUTH (RFC 4954) through Cyrus SASL, as Postfix's
 * smtp_sasl_glue.c and xsasl_cyrus_client.c use it.
 *
 * Credentials come from smtp_sasl_password_maps, "username:password"
 * values looked up by the remote host's name, then by the next hop as
 * the job names it ("[smtp.isp.example]:587", "example.org"), as
 * Postfix's smtp_sasl_passwd_lookup() does (its sender-dependent lookup
 * first is not implemented).
 *
 * Which mechanisms may be used is Cyrus's decision from the security
 * properties: smtp_sasl_security_options in plain text and
 * smtp_sasl_tls_security_options over TLS, each a list of noplaintext,
 * noactive, nodictionary, noanonymous, mutual_auth (Postfix's words and
 * meanings). Postfix's defaults are "noplaintext, noanonymous" for both,
 * which forbids PLAIN and LOGIN everywhere until an administrator says
 * otherwise; ours for TLS is "noanonymous": a password goes out in PLAIN
 * or LOGIN only inside TLS unless told otherwise (the wording,
 * and what every "relay through my ISP" guide ends up configuring).
 * smtp_sasl_mechanism_filter, when set, keeps only the server's
 * mechanisms it names.
 *
 * One struct smtp_sasl per AUTH exchange; the process-wide Cyrus client
 * library is initialised once (smtp_sasl_init). No I/O: the caller sends
 * the lines made here and passes the server's 334 challenges in.
 */
#ifndef TERN_SMTP_SASL_H
#define TERN_SMTP_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "config/config.h"

/* Longest username or password taken from a map value. */
#define SMTP_SASL_CRED_MAX 512

struct smtp_sasl;

/* Once per process, before the first exchange. 0, or -1 with err. */
int smtp_sasl_init(char *err, size_t errsz);

/*
 * The SASL_SEC_* flags for a security options list (the words above,
 * separated by commas or spaces). -1 with err naming the bad word.
 */
int smtp_sasl_security_flags(const struct config_list *words, unsigned *flags, char *err,
                             size_t errsz);

/*
 * Start an exchange with host (its name, for Cyrus's service principal)
 * as user/password, choosing among mechs (the server's, space-separated,
 * already filtered) under the security flags. On success *out holds the
 * whole AUTH command line without CRLF ("AUTH PLAIN AGJv..."), and
 * *mech the mechanism. Returns 0, or -1 with err in Postfix's words for
 * "SASL authentication failed; cannot authenticate to server H: ..." (the
 * caller adds the prefix): "no mechanism available" and so on.
 */
int smtp_sasl_start(const char *host, const char *user, const char *password, const char *mechs,
                    unsigned sec_flags, struct smtp_sasl **out_sasl, struct buf *out,
                    const char **mech, char *err, size_t errsz);

/*
 * A 334 challenge (the reply text after "334 ", base64) in; the response
 * line (base64, possibly empty) out. 0, or -1 with err (a challenge that
 * does not decode, a mechanism error).
 */
int smtp_sasl_step(struct smtp_sasl *s, const char *challenge, struct buf *out, char *err,
                   size_t errsz);

void smtp_sasl_free(struct smtp_sasl *s);

/*
 * Split a map value "username:password" (the password may hold ':';
 * Postfix splits at the first). 0, or -1 when there is no ':' or a part
 * is too long.
 */
int smtp_sasl_split_credentials(const char *value, char user[SMTP_SASL_CRED_MAX + 1],
                                char password[SMTP_SASL_CRED_MAX + 1]);

#endif
