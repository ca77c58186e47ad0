/*
 * smtpd_auth_cmd: the AUTH command in the session (smtpd_auth_cmd.h has
 * the replies and the why). Checks first, then acts, as every verb does;
 * the exchange itself is smtpd_auth.c's.
 *
 * Ownership: the session owns its exchange (s->auth) and frees it when
 * the exchange ends or the session does. Secrets (responses) are never
 * logged.
 */
#include "smtpd/smtpd_auth_cmd.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "smtpd/smtpd_auth.h"
#include "smtpd/smtpd_ratelimit.h"
#include "smtpd/smtpd_session_impl.h"
#include "smtpd/smtpd_tls.h"

static struct smtpd_auth_backend *
smtpd_auth_cmd_backend(const struct smtpd_session *s)
{
	return smtpd_auth_backend_of(s->srv->auth, s->listener);
}

/*
 * smtpd_tls_auth_only = yes (the default) keeps AUTH to TLS sessions
 * (smtpd_tls.h, smtpd_tls_auth_allowed(): never before TLS under encrypt).
 */
static bool
smtpd_auth_cmd_tls_ok(const struct smtpd_session *s)
{
	return smtpd_tls_auth_allowed(smtpd_tls_level_of(s->srv->cfg, s->listener),
	                              smtpd_tls_active(s),
	                              config_lbool(s->srv->cfg, s->listener, P_SMTPD_TLS_AUTH_ONLY));
}

bool
smtpd_auth_cmd_offered(struct smtpd_session *s)
{
	struct smtpd_auth_backend *b = smtpd_auth_cmd_backend(s);

	return b != NULL && smtpd_auth_cmd_tls_ok(s) && smtpd_auth_mechs(b)[0] != '\0';
}

void
smtpd_auth_cmd_ehlo(struct smtpd_session *s)
{
	if (smtpd_auth_cmd_offered(s))
		smtpd_reply_part(s, 250, false, "AUTH %s", smtpd_auth_mechs(smtpd_auth_cmd_backend(s)));
}

bool
smtpd_auth_cmd_reading(const struct smtpd_session *s)
{
	return s->auth_reading;
}

/* A refusal of the command or the exchange: reply, count, end it. */
static void
smtpd_auth_cmd_refuse(struct smtpd_session *s, int code, const char *enh, const char *text)
{
	smtpd_reply(s, code, enh, "%s", text);
	smtpd_auth_free(s->auth);
	s->auth = NULL;
	smtpd_session_error(s);
}

/* The session's line limit goes up to RFC 4954's 12288 for responses
 * only. The reader takes up to its buffer so that an over-long response
 * is still one line, answered with AUTH's own 500 5.5.6. */
static void
smtpd_auth_cmd_read_response(struct smtpd_session *s)
{
	s->auth_reading = true;
	s->auth_saved_line_max = s->lr.max;
	if (s->lr.max < SMTPD_IN_MAX)
		s->lr.max = SMTPD_IN_MAX;
}

static void
smtpd_auth_cmd_stop_reading(struct smtpd_session *s)
{
	if (s->auth_reading) {
		s->auth_reading = false;
		s->lr.max = s->auth_saved_line_max;
	}
}

/* Past the error reply, a failed password waits: password guessing gets
 * slow (Postfix waits only past the soft error limit; see doc/smtpd.md). */
static void
smtpd_auth_cmd_delay(struct smtpd_session *s)
{
	int64_t ms = config_ltime(s->srv->cfg, s->listener, P_SMTPD_ERROR_SLEEP_TIME) * 1000;

	if (ms <= 0 || s->sleeping || s->state == SMTPD_STATE_CLOSING)
		return;
	s->sleeping = true;
	evloop_timer_start(s->srv->loop, &s->timer, ms);
}

static void
smtpd_auth_cmd_success(struct smtpd_session *s, const char *username)
{
	snprintf(s->sasl_username, sizeof(s->sasl_username), "%s", username);
	snprintf(s->sasl_method, sizeof(s->sasl_method), "%s", smtpd_auth_mech(s->auth));
	smtpd_auth_free(s->auth);
	s->auth = NULL;
	smtpd_reply(s, 235, "2.7.0", "Authentication successful");
	s->count[SMTPD_VERB_AUTH].ok++;
	s->count_all.ok++;
}

static void
smtpd_auth_cmd_done(void *arg, const struct smtpd_auth_result *r)
{
	struct smtpd_session *s = arg;
	char mech[SMTPD_AUTH_MECH_MAX + 1];

	snprintf(mech, sizeof(mech), "%s", smtpd_auth_mech(s->auth));
	if (s->state != SMTPD_STATE_AUTH) {
		/* The session was told to close meanwhile (drain): forget it. */
		smtpd_auth_free(s->auth);
		s->auth = NULL;
		return;
	}
	s->state = s->auth_prev_state;
	switch (r->status) {
	case SMTPD_AUTH_CONTINUE:
		/* Written as is: a challenge may be longer than a reply line. */
		if (buf_append_printf(&s->out, "334 %s\r\n", r->challenge) != BUF_OK)
			s->peer_gone = true;
		smtpd_auth_cmd_read_response(s);
		break;
	case SMTPD_AUTH_OK:
		smtpd_auth_cmd_success(s, r->username);
		break;
	case SMTPD_AUTH_FAIL:
		log_warning("%s[%s]: SASL %s authentication failed: %s", s->client_name,
		            s->client_addr, mech, r->reason);
		smtpd_reply(s, 535, "5.7.8", "Error: authentication failed: %s", r->reason);
		smtpd_auth_free(s->auth);
		s->auth = NULL;
		if (!smtpd_session_error(s))
			smtpd_auth_cmd_delay(s);
		break;
	case SMTPD_AUTH_TEMPFAIL:
		log_warning("%s[%s]: SASL %s authentication failed: %s", s->client_name,
		            s->client_addr, mech, r->reason);
		smtpd_reply(s, 454, "4.7.0", "Temporary authentication failure: %s", r->reason);
		smtpd_auth_free(s->auth);
		s->auth = NULL;
		smtpd_session_error(s);
		break;
	}
	smtpd_session_commit_done(s);
}

/* May AUTH run now? Refuses (and returns false) when it may not. */
static bool
smtpd_auth_cmd_check(struct smtpd_session *s)
{
	if (smtpd_auth_cmd_backend(s) == NULL) {
		smtpd_auth_cmd_refuse(s, 503, "5.5.1", "Error: authentication not enabled");
		return false;
	}
	if (s->state == SMTPD_STATE_CONNECTED &&
	    config_lbool(s->srv->cfg, s->listener, P_SMTPD_HELO_REQUIRED)) {
		smtpd_auth_cmd_refuse(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		return false;
	}
	if (!smtpd_auth_cmd_tls_ok(s)) {
		/* RFC 4954 section 4; Postfix's words. */
		smtpd_auth_cmd_refuse(s, 504, "5.5.4",
		                      "Encryption required for requested authentication mechanism");
		return false;
	}
	if (s->sasl_username[0] != '\0') {
		smtpd_auth_cmd_refuse(s, 503, "5.5.1", "Error: already authenticated");
		return false;
	}
	return true;
}

bool
smtpd_auth_cmd_verb(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	struct smtpd_auth_backend *b;
	struct smtpd_auth_peer peer;
	char mech[SMTPD_AUTH_MECH_MAX + 1], initial[SMTPD_AUTH_DATA_MAX + 1];
	const char *ir;
	size_t irlen;

	if (!smtpd_auth_cmd_check(s))
		return false;
	/* smtpd_client_auth_rate_limit (Postfix counts every AUTH command). */
	if (!smtpd_ratelimit_auth(s))
		return false;
	b = smtpd_auth_cmd_backend(s);
	if (smtpd_auth_mechs(b)[0] == '\0') {
		/* A Dovecot server not reached yet: nothing to offer, for now. */
		smtpd_auth_cmd_refuse(s, 454, "4.7.0", "Temporary authentication failure: "
		                      "authentication server unavailable");
		return false;
	}
	if (smtpd_auth_parse_command(cmd->args, cmd->args_len, mech, &ir, &irlen) < 0) {
		smtpd_auth_cmd_refuse(s, 501, "5.5.4", "Syntax: AUTH mechanism");
		return false;
	}
	if (!smtpd_auth_mech_offered(b, mech)) {
		smtpd_auth_cmd_refuse(s, 504, "5.5.4", "Unsupported authentication mechanism");
		return false;
	}
	/* RFC 4954 section 4: "=" is an empty initial response. */
	if (ir != NULL && irlen == 1 && ir[0] == '=') {
		irlen = 0;
	} else if (ir != NULL && (irlen > SMTPD_AUTH_DATA_MAX || !smtpd_auth_base64_valid(ir, irlen))) {
		smtpd_auth_cmd_refuse(s, 501, "5.5.2", "Cannot decode response");
		return false;
	}
	if (ir != NULL) {
		memcpy(initial, ir, irlen);
		initial[irlen] = '\0';
	}
	memset(&peer, 0, sizeof(peer));
	peer.client_addr = s->client_addr;
	peer.client_port = s->client_port;
	peer.server_addr = s->server_addr;
	peer.server_port = s->server_port;
	peer.tls = smtpd_tls_active(s);
	s->auth_prev_state = s->state;
	s->state = SMTPD_STATE_AUTH;
	s->auth = smtpd_auth_start(b, &peer, mech, ir != NULL ? initial : NULL, smtpd_auth_cmd_done, s);
	explicit_bzero(initial, sizeof(initial));
	return false;
}

void
smtpd_auth_cmd_response(struct smtpd_session *s, const char *line, size_t len)
{
	char resp[SMTPD_AUTH_DATA_MAX + 1];

	smtpd_auth_cmd_stop_reading(s);
	if (len > SMTPD_AUTH_DATA_MAX) {
		smtpd_auth_cmd_refuse(s, 500, "5.5.6", "Authentication exchange line is too long");
		return;
	}
	/* RFC 4954 section 4: "*" cancels; the server answers 501. */
	if (len == 1 && line[0] == '*') {
		log_warning("%s[%s]: SASL %s authentication aborted", s->client_name, s->client_addr,
		            smtpd_auth_mech(s->auth));
		smtpd_auth_cmd_refuse(s, 501, "5.7.0", "Authentication aborted");
		return;
	}
	if (!smtpd_auth_base64_valid(line, len)) {
		smtpd_auth_cmd_refuse(s, 501, "5.5.2", "Cannot decode response");
		return;
	}
	memcpy(resp, line, len);
	resp[len] = '\0';
	s->auth_prev_state = s->state;
	s->state = SMTPD_STATE_AUTH;
	smtpd_auth_step(s->auth, resp);
	explicit_bzero(resp, sizeof(resp));
}

void
smtpd_auth_cmd_log_fields(const struct smtpd_session *s, char *dst, size_t dstsz)
{
	int n = 0;

	dst[0] = '\0';
	if (s->sasl_username[0] != '\0')
		n = snprintf(dst, dstsz, ", sasl_method=%s, sasl_username=%s", s->sasl_method,
		             s->sasl_username);
	/* MAIL's AUTH= (RFC 4954 section 5), logged as Postfix does; "<>"
	 * says nothing and is not logged. */
	if (n >= 0 && (size_t)n < dstsz && s->mail.auth_given && s->mail.auth[0] != '\0')
		snprintf(dst + n, dstsz - (size_t)n, ", sasl_sender=%s", s->mail.auth);
}

void
smtpd_auth_cmd_free(struct smtpd_session *s)
{
	smtpd_auth_cmd_stop_reading(s);
	smtpd_auth_free(s->auth);
	s->auth = NULL;
}
