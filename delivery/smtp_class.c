/*
 * smtp_class: outcome classification (see the header for the rules, their
 * sources and the deliberate differences from Exim).
 *
 * One table row per stage says what a positive reply looks like there and
 * what scope an error reply, a timeout and a lost connection have; one
 * small function per event applies it. Pure; panic() only on a stage /
 * event pair that cannot happen.
 */
#include "delivery/smtp_class.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "delivery/smtp_reply.h"

/*
 * Default enhanced status codes (RFC 3463 section 3), used when the
 * server gave none. Replies without one get the generic "X.0.0" of their
 * class, as Postfix reports them.
 */
#define SMTP_CLASS_ENH_NO_ANSWER "4.4.1"	/* X.4.1 No answer from host */
#define SMTP_CLASS_ENH_BAD_CONN "4.4.2"	/* X.4.2 Bad connection */
#define SMTP_CLASS_ENH_PROTOCOL "4.5.0"	/* X.5.0 Other or undefined protocol status */
#define SMTP_CLASS_ENH_SECURITY "4.7.0"	/* X.7.0 Other or undefined security status */
#define SMTP_CLASS_ENH_NO_TLS "4.7.4"	/* X.7.4 Security features not supported */
#define SMTP_CLASS_ENH_TLS_FAILED "4.7.5"	/* X.7.5 Cryptographic failure */
#define SMTP_CLASS_ENH_TOO_BIG "5.3.4"	/* X.3.4 Message too big for system */
#define SMTP_CLASS_ENH_UTF8 "5.6.7"	/* X.6.7 (RFC 6531): non-ASCII address
					 * not permitted; Postfix's choice */

/* RFC 5321 4.5.3.1.10: the "too many recipients" codes. */
#define SMTP_CLASS_TOO_MANY_RCPTS 452
#define SMTP_CLASS_TOO_MANY_RCPTS_RFC821 552
/* The reply codes smtp_reply lets through (RFC 5321 4.2). */
#define SMTP_CLASS_CODE_MIN 200
#define SMTP_CLASS_CODE_MAX 599
/* RFC 5321 3.8: service closing the transmission channel. */
#define SMTP_CLASS_CLOSING 421

/* Exim's error names without a code (retry_error.c's table). */
#define SMTP_CLASS_OTHER "other"
#define SMTP_CLASS_LOST "lost_connection"
#define SMTP_CLASS_TLS "tls_required"
#define SMTP_CLASS_AUTH "auth_failed"

struct smtp_class_stage_rule {
	const char *name;	/* as Postfix logs it */
	bool replies;		/* a reply can arrive at this stage */
	char positive;		/* first digit of the positive reply; 0: none is */
	enum smtp_scope reply_scope;	/* of a 4xx/5xx reply */
	const char *prefix;	/* Exim's "<prefix>_4NN" for 4xx; NULL: "other" */
	enum smtp_scope timeout_scope;
	enum smtp_scope lost_scope;	/* EOF or ECONNRESET */
};

/*
 * Exim spec, "Errors in outgoing SMTP": errors to MAIL, DATA and "." are
 * message errors, errors to RCPT recipient errors, the rest host errors;
 * timeouts after MAIL and "." are message errors, after RCPT a recipient
 * error, elsewhere (DATA's 354 included) host errors; a lost connection
 * is a host error except after ".".
 */
#define SC_HOST SMTP_SCOPE_HOST
#define SC_MSG SMTP_SCOPE_MESSAGE
#define SC_RCPT SMTP_SCOPE_RECIPIENT

static const struct smtp_class_stage_rule smtp_class_stages[] = {
	/* name, replies, positive, reply scope, prefix, timeout scope, lost scope */
	[SMTP_STAGE_CONNECT] = { "connect", false, 0, SC_HOST, NULL, SC_HOST, SC_HOST },
	[SMTP_STAGE_GREETING] = { "initial server greeting", true, '2', SC_HOST, NULL, SC_HOST,
	                          SC_HOST },
	[SMTP_STAGE_EHLO] = { "EHLO", true, '2', SC_HOST, NULL, SC_HOST, SC_HOST },
	[SMTP_STAGE_STARTTLS] = { "STARTTLS", true, '2', SC_HOST, NULL, SC_HOST, SC_HOST },
	[SMTP_STAGE_TLS] = { "TLS handshake", false, 0, SC_HOST, NULL, SC_HOST, SC_HOST },
	[SMTP_STAGE_AUTH] = { "AUTH", true, '2', SC_HOST, NULL, SC_HOST, SC_HOST },
	[SMTP_STAGE_MAIL] = { "MAIL FROM", true, '2', SC_MSG, "mail", SC_MSG, SC_HOST },
	[SMTP_STAGE_RCPT] = { "RCPT TO", true, '2', SC_RCPT, "rcpt", SC_RCPT, SC_HOST },
	[SMTP_STAGE_DATA] = { "DATA", true, '3', SC_MSG, "data", SC_HOST, SC_HOST },
	/* A reply here came before the final "." (a server that rejects
	 * mid-content): an error answers the content, as after "." it would.
	 * A 2xx cannot mean the message was taken, as the "." is not sent
	 * yet: it is out of step, and a second copy beats a lost message. */
	[SMTP_STAGE_CONTENT] = { "message body", true, 0, SC_MSG, "data", SC_HOST, SC_HOST },
	[SMTP_STAGE_DOT] = { "end of DATA", true, '2', SC_MSG, "data", SC_MSG, SC_MSG },
};

#define SMTP_CLASS_NSTAGES (sizeof(smtp_class_stages) / sizeof(smtp_class_stages[0]))

static const struct smtp_class_stage_rule *
smtp_class_rule(enum smtp_stage stage)
{
	if ((unsigned)stage >= SMTP_CLASS_NSTAGES)
		panic("smtp_class: stage %d out of range", (int)stage);
	return &smtp_class_stages[stage];
}

const char *
smtp_class_stage_name(enum smtp_stage stage)
{
	return smtp_class_rule(stage)->name;
}

static char
smtp_class_status_digit(enum agent_status status)
{
	return status == AGENT_DELIVERED ? '2' : status == AGENT_TEMPFAIL ? '4' : '5';
}

static void
smtp_class_set(struct smtp_class_result *out, enum agent_status status, enum smtp_scope scope,
               const char *err_class, bool conn_dead)
{
	out->status = status;
	out->scope = scope;
	snprintf(out->err_class, sizeof(out->err_class), "%s", err_class);
	out->conn_dead = conn_dead;
}

/* "refused_MX", "timeout_A" ...: base plus where the host came from. */
static void
smtp_class_set_via(struct smtp_class_result *out, const char *base, bool via_mx)
{
	smtp_class_set(out, AGENT_TEMPFAIL, SMTP_SCOPE_HOST, "", true);
	snprintf(out->err_class, sizeof(out->err_class), "%s_%s", base, via_mx ? "MX" : "A");
}

/*
 * The enhanced code: the server's when it is a valid RFC 3463 code, else
 * dflt (NULL: "X.0.0"); its class is made that of the status, because
 * the class is what says success, transient or permanent failure (RFC
 * 3463 section 2), and a deferred AUTH must not say 5.
 */
static void
smtp_class_enh(struct smtp_class_result *out, const char *server, const char *dflt)
{
	char enh[SMTP_REPLY_ENH_SIZE];
	size_t len;

	len = server != NULL ? strnlen(server, sizeof(enh)) : 0;
	if (len == 0 || len >= sizeof(enh) || smtp_reply_enh_parse(server, len, 0, enh) != len)
		snprintf(enh, sizeof(enh), "%s", dflt != NULL ? dflt : "X.0.0");
	enh[0] = smtp_class_status_digit(out->status);
	snprintf(out->enh, sizeof(out->enh), "%s", enh);
}

/* The TLS handshake failed (Exim: ERRNO_TLSFAILURE, whatever the cause,
 * timeouts included; tls_required matches it). */
static void
smtp_class_tls_failed(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	(void)in;
	smtp_class_set(out, AGENT_TEMPFAIL, SMTP_SCOPE_HOST, SMTP_CLASS_TLS, true);
	smtp_class_enh(out, NULL, SMTP_CLASS_ENH_TLS_FAILED);
}

/* connect() failed: refused and timed out have names; the rest do not. */
static void
smtp_class_connect(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	if (in->err == ECONNREFUSED)
		smtp_class_set_via(out, "refused", in->via_mx);
	else if (in->err == ETIMEDOUT)
		smtp_class_set_via(out, "timeout_connect", in->via_mx);
	else
		smtp_class_set(out, AGENT_TEMPFAIL, SMTP_SCOPE_HOST, SMTP_CLASS_OTHER, true);
	smtp_class_enh(out, NULL, SMTP_CLASS_ENH_NO_ANSWER);
}

static void
smtp_class_timeout(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	const struct smtp_class_stage_rule *rule = smtp_class_rule(in->stage);

	if (in->stage == SMTP_STAGE_CONNECT) {
		smtp_class_set_via(out, "timeout_connect", in->via_mx);
		smtp_class_enh(out, NULL, SMTP_CLASS_ENH_NO_ANSWER);
		return;
	}
	if (in->stage == SMTP_STAGE_TLS) {
		smtp_class_tls_failed(in, out);
		return;
	}
	smtp_class_set_via(out, "timeout", in->via_mx);
	out->scope = rule->timeout_scope;
	smtp_class_enh(out, NULL, SMTP_CLASS_ENH_BAD_CONN);
}

static void
smtp_class_lost(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	const struct smtp_class_stage_rule *rule = smtp_class_rule(in->stage);
	/* Exim's ERRNO_SMTPCLOSED is an EOF or a reset (check_response); any
	 * other I/O error keeps its errno, which no named rule matches. */
	bool closed = in->err == 0 || in->err == ECONNRESET;

	if (in->stage == SMTP_STAGE_CONNECT) {
		smtp_class_connect(in, out);
		return;
	}
	if (in->stage == SMTP_STAGE_TLS) {
		smtp_class_tls_failed(in, out);
		return;
	}
	smtp_class_set(out, AGENT_TEMPFAIL, closed ? rule->lost_scope : SMTP_SCOPE_HOST,
	               closed ? SMTP_CLASS_LOST : SMTP_CLASS_OTHER, true);
	smtp_class_enh(out, NULL, SMTP_CLASS_ENH_BAD_CONN);
}

/* A reply that is neither the positive one nor 4xx/5xx: 3xx to MAIL, 2xx
 * to DATA. The dialogue is out of step (after a 354 to MAIL, an RSET
 * would become message content), so the connection is given up. */
static void
smtp_class_unexpected(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	const struct smtp_class_stage_rule *rule = smtp_class_rule(in->stage);

	/* Exim files any non-2xx, non-5xx RCPT reply under ERRNO_RCPT4XX;
	 * elsewhere errno stays 0: no name. */
	smtp_class_set(out, AGENT_TEMPFAIL, rule->reply_scope,
	               in->stage == SMTP_STAGE_RCPT ? "rcpt_4xx" : SMTP_CLASS_OTHER, true);
	smtp_class_enh(out, NULL, SMTP_CLASS_ENH_PROTOCOL);
}

/* 5xx: permanent in the stage's scope, with three exceptions. */
static void
smtp_class_reply_5xx(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	const struct smtp_class_stage_rule *rule = smtp_class_rule(in->stage);

	switch (in->stage) {
	case SMTP_STAGE_RCPT:
		if (in->code == SMTP_CLASS_TOO_MANY_RCPTS_RFC821) {
			/* RFC 5321 4.5.3.1.10: treat as 452 (header). */
			smtp_class_set(out, AGENT_TEMPFAIL, SMTP_SCOPE_RECIPIENT, "", false);
			snprintf(out->err_class, sizeof(out->err_class), "rcpt_%d",
			         SMTP_CLASS_TOO_MANY_RCPTS);
			smtp_class_enh(out, in->enh, NULL);
			return;
		}
		break;
	case SMTP_STAGE_AUTH:
		/* Exim: AUTH required and refused defers (ERRNO_AUTHFAIL);
		 * Postfix's smtp_sasl_auth_soft_bounce does the same. */
		smtp_class_set(out, AGENT_TEMPFAIL, SMTP_SCOPE_HOST, SMTP_CLASS_AUTH, false);
		smtp_class_enh(out, in->enh, SMTP_CLASS_ENH_SECURITY);
		return;
	case SMTP_STAGE_STARTTLS:
		/* Never a bounce: without TLS required the client goes on in
		 * clear; with it, TLS_UNAVAILABLE is the outcome. */
		smtp_class_set(out, AGENT_TEMPFAIL, SMTP_SCOPE_HOST, SMTP_CLASS_OTHER, false);
		smtp_class_enh(out, in->enh, SMTP_CLASS_ENH_NO_TLS);
		return;
	default:
		break;
	}
	/* A HOST-scope 5xx (greeting, EHLO) keeps a name for the case where
	 * another host is tried: Exim then defers this host with errno 0. */
	smtp_class_set(out, AGENT_PERMFAIL, rule->reply_scope,
	               rule->reply_scope == SMTP_SCOPE_HOST ? SMTP_CLASS_OTHER : "", false);
	smtp_class_enh(out, in->enh, NULL);
}

/* 4xx: temporary in the stage's scope, named <prefix>_4NN where Exim has
 * a name; 421 is a host error anywhere (header). */
static void
smtp_class_reply_4xx(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	const struct smtp_class_stage_rule *rule = smtp_class_rule(in->stage);
	bool closing = in->code == SMTP_CLASS_CLOSING;

	smtp_class_set(out, AGENT_TEMPFAIL, closing ? SMTP_SCOPE_HOST : rule->reply_scope,
	               SMTP_CLASS_OTHER, closing);
	if (rule->prefix != NULL)
		snprintf(out->err_class, sizeof(out->err_class), "%s_%d", rule->prefix, in->code);
	smtp_class_enh(out, in->enh, NULL);
}

static void
smtp_class_reply(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	const struct smtp_class_stage_rule *rule = smtp_class_rule(in->stage);
	char digit;

	if (!rule->replies)
		panic("smtp_class: a reply at stage %s", rule->name);
	if (in->code < SMTP_CLASS_CODE_MIN || in->code > SMTP_CLASS_CODE_MAX)
		panic("smtp_class: reply code %d", in->code);
	digit = (char)('0' + in->code / 100);
	/* AUTH's 334 asks for the next SASL step: not a failure. */
	if (digit == rule->positive || (in->stage == SMTP_STAGE_AUTH && digit == '3')) {
		smtp_class_set(out, AGENT_DELIVERED, SMTP_SCOPE_NONE, "", false);
		smtp_class_enh(out, in->enh, NULL);
		return;
	}
	if (digit == '4')
		smtp_class_reply_4xx(in, out);
	else if (digit == '5')
		smtp_class_reply_5xx(in, out);
	else
		smtp_class_unexpected(in, out);
}

/* The events that are the client's own findings, not the server's. */

static void
smtp_class_protocol(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	/* Exim's ERRNO_SMTPFORMAT is a host error at every stage and only
	 * "*" matches it; in a TLS handshake it is a TLS failure. */
	if (in->stage == SMTP_STAGE_TLS) {
		smtp_class_tls_failed(in, out);
		return;
	}
	(void)smtp_class_rule(in->stage);
	smtp_class_set(out, AGENT_TEMPFAIL, SMTP_SCOPE_HOST, SMTP_CLASS_OTHER, true);
	smtp_class_enh(out, NULL, SMTP_CLASS_ENH_PROTOCOL);
}

static void
smtp_class_connect_error(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	if (in->stage != SMTP_STAGE_CONNECT)
		panic("smtp_class: connect error at stage %s", smtp_class_stage_name(in->stage));
	smtp_class_connect(in, out);
}

static void
smtp_class_tls_unavailable(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	smtp_class_set(out, AGENT_TEMPFAIL, SMTP_SCOPE_HOST, SMTP_CLASS_TLS, false);
	smtp_class_enh(out, in->enh, SMTP_CLASS_ENH_NO_TLS);
}

static void
smtp_class_auth_failed(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	smtp_class_set(out, AGENT_TEMPFAIL, SMTP_SCOPE_HOST, SMTP_CLASS_AUTH, false);
	smtp_class_enh(out, in->enh, SMTP_CLASS_ENH_SECURITY);
}

static void
smtp_class_smtputf8(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	/* Exim (ERRNO_UTF8_FWD): fails the message once no other host is
	 * left; another host may offer SMTPUTF8. */
	(void)in;
	smtp_class_set(out, AGENT_PERMFAIL, SMTP_SCOPE_HOST, SMTP_CLASS_OTHER, false);
	smtp_class_enh(out, NULL, SMTP_CLASS_ENH_UTF8);
}

static void
smtp_class_too_big(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	/* Postfix checks SIZE before MAIL and bounces (5.3.4); Exim lets
	 * the server refuse MAIL: a message error either way. */
	(void)in;
	smtp_class_set(out, AGENT_PERMFAIL, SMTP_SCOPE_MESSAGE, "", false);
	smtp_class_enh(out, NULL, SMTP_CLASS_ENH_TOO_BIG);
}

typedef void (*smtp_class_fn)(const struct smtp_class_input *in, struct smtp_class_result *out);

/* One handler per event. */
static const smtp_class_fn smtp_class_events[] = {
	[SMTP_EVENT_REPLY] = smtp_class_reply,
	[SMTP_EVENT_TIMEOUT] = smtp_class_timeout,
	[SMTP_EVENT_LOST] = smtp_class_lost,
	[SMTP_EVENT_PROTOCOL] = smtp_class_protocol,
	[SMTP_EVENT_CONNECT_ERROR] = smtp_class_connect_error,
	[SMTP_EVENT_TLS_FAILED] = smtp_class_tls_failed,
	[SMTP_EVENT_TLS_UNAVAILABLE] = smtp_class_tls_unavailable,
	[SMTP_EVENT_AUTH_FAILED] = smtp_class_auth_failed,
	[SMTP_EVENT_SMTPUTF8_UNAVAILABLE] = smtp_class_smtputf8,
	[SMTP_EVENT_TOO_BIG] = smtp_class_too_big,
};

void
smtp_class_outcome(const struct smtp_class_input *in, struct smtp_class_result *out)
{
	if ((unsigned)in->event >= sizeof(smtp_class_events) / sizeof(smtp_class_events[0]) ||
	    smtp_class_events[in->event] == NULL)
		panic("smtp_class: event %d out of range", (int)in->event);
	memset(out, 0, sizeof(*out));
	smtp_class_events[in->event](in, out);
}
