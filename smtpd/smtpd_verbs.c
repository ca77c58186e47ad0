/*
 * smtpd_verbs: the SMTP command table, the handlers, and the transaction
 * from MAIL to the spool's verdict.
 *
 * Each command is first checked against the states in which it is legal
 * (one table; anything else is 503 5.5.1), then parsed (smtpd_command.c),
 * and only then acts. Transaction errors are sticky: once DATA goes wrong
 * (too big, bare LF under "reject", disk trouble) the content is still read
 * to its end and answered once.
 *
 * Ownership: the transaction (envelope, message file, decoder buffer)
 * belongs to the session; the message file passes to the spool at commit.
 */
#include "smtpd/smtpd_session.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "queue/envelope_expand.h"
#include "smtpd/smtpd_auth_cmd.h"
#include "smtpd/smtpd_milter.h"
#include "smtpd/smtpd_notify.h"
#include "smtpd/smtpd_ratelimit.h"
#include "smtpd/smtpd_received.h"
#include "smtpd/smtpd_restrict.h"
#include "smtpd/smtpd_session_impl.h"
#include "smtpd/smtpd_tls.h"

void smtpd_session_commit_done(struct smtpd_session *s);

typedef bool smtpd_verb_fn(struct smtpd_session *s, const struct smtpd_command *cmd);

struct smtpd_verb_rule {
	enum smtpd_verb verb;
	unsigned states;		/* where the command is legal */
	smtpd_verb_fn *run;		/* returns true for a 2xx/3xx outcome */
};

static void smtpd_helo_done(struct smtpd_session *s, const struct smtpd_restrict_result *res);
static void smtpd_helo_reply(struct smtpd_session *s);
static void smtpd_verbs_connect_checks(struct smtpd_session *s);
static bool smtpd_helo_accept(struct smtpd_session *s);
static void smtpd_mail_done(struct smtpd_session *s, const struct smtpd_restrict_result *res);
static void smtpd_rcpt_done(struct smtpd_session *s, const struct smtpd_restrict_result *res);
static void smtpd_data_done(struct smtpd_session *s, const struct smtpd_restrict_result *res);
static void smtpd_bdat_done(struct smtpd_session *s, const struct smtpd_restrict_result *res);
static void smtpd_eod_done(struct smtpd_session *s, const struct smtpd_restrict_result *res);
static void smtpd_instance_next(struct smtpd_session *s);
static bool smtpd_mail_accept(struct smtpd_session *s);
static bool smtpd_rcpt_milter(struct smtpd_session *s);
static bool smtpd_data_start(struct smtpd_session *s);
static void smtpd_message_commit(struct smtpd_session *s);
static void smtpd_message_queue(struct smtpd_session *s);
static bool smtpd_data_go(struct smtpd_session *s);
static bool smtpd_rcpt_accept(struct smtpd_session *s, const struct smtpd_rcpt_args *rcpt);
static bool verb_xforward(struct smtpd_session *s, const struct smtpd_command *cmd);
static bool smtpd_xforward_allowed(const struct smtpd_session *s);
static smtpd_verb_fn verb_helo, verb_mail, verb_rcpt, verb_data, verb_bdat, verb_rset,
    verb_noop, verb_quit, verb_vrfy, verb_help, verb_not_implemented;

#define ANY_COMMAND_STATE SMTPD_STATES_COMMAND

/* Commands allowed in each state; anything else is 503 5.5.1. */
static const struct smtpd_verb_rule smtpd_rules[] = {
	{ SMTPD_VERB_HELO, ANY_COMMAND_STATE, verb_helo },
	{ SMTPD_VERB_EHLO, ANY_COMMAND_STATE, verb_helo },
	{ SMTPD_VERB_MAIL, SMTPD_STATE_CONNECTED | SMTPD_STATE_READY, verb_mail },
	{ SMTPD_VERB_RCPT, SMTPD_STATE_MAIL | SMTPD_STATE_RCPT, verb_rcpt },
	{ SMTPD_VERB_DATA, SMTPD_STATE_RCPT, verb_data },
	/* BDAT checks its state itself: a refused chunk must still be read
	 * (RFC 3030 section 3), or the stream falls out of sync. */
	{ SMTPD_VERB_BDAT, ANY_COMMAND_STATE, verb_bdat },
	{ SMTPD_VERB_RSET, ANY_COMMAND_STATE, verb_rset },
	{ SMTPD_VERB_NOOP, ANY_COMMAND_STATE, verb_noop },
	{ SMTPD_VERB_QUIT, ANY_COMMAND_STATE, verb_quit },
	{ SMTPD_VERB_VRFY, ANY_COMMAND_STATE, verb_vrfy },
	{ SMTPD_VERB_HELP, ANY_COMMAND_STATE, verb_help },
	{ SMTPD_VERB_EXPN, ANY_COMMAND_STATE, verb_not_implemented },
	{ SMTPD_VERB_ETRN, ANY_COMMAND_STATE, verb_not_implemented },
	{ SMTPD_VERB_STARTTLS, ANY_COMMAND_STATE, smtpd_tls_starttls },
	/* RFC 4954 section 4: not during a mail transaction. */
	{ SMTPD_VERB_AUTH, SMTPD_STATE_CONNECTED | SMTPD_STATE_READY, smtpd_auth_cmd_verb },
	/* XFORWARD_README: "except in the middle of a mail delivery transaction". */
	{ SMTPD_VERB_XFORWARD, SMTPD_STATE_CONNECTED | SMTPD_STATE_READY, verb_xforward },
};

/* ---- helpers ---- */

static unsigned
smtpd_extensions(struct smtpd_session *s)
{
	if (!s->esmtp)
		return 0;
	return SMTPD_EXT_SIZE | SMTPD_EXT_8BITMIME | SMTPD_EXT_SMTPUTF8 | SMTPD_EXT_DSN |
	    SMTPD_EXT_CHUNKING | (smtpd_auth_cmd_offered(s) ? SMTPD_EXT_AUTH : 0);
}

static const char *
smtpd_wrong_state_text(const struct smtpd_session *s, enum smtpd_verb verb)
{
	switch (verb) {
	case SMTPD_VERB_MAIL:
		if (s->state == SMTPD_STATE_CHUNKING)
			return "Error: MAIL during BDAT transfer";
		return "Error: nested MAIL command";
	case SMTPD_VERB_RCPT:
		return s->state == SMTPD_STATE_CHUNKING ? "Error: RCPT during BDAT transfer" :
		    "Error: need MAIL command";
	case SMTPD_VERB_DATA:
		if (s->state == SMTPD_STATE_MAIL)
			return "Error: no valid recipients";
		if (s->state == SMTPD_STATE_CHUNKING)
			return "Error: DATA during BDAT transfer";
		return "Error: need RCPT command";
	case SMTPD_VERB_AUTH:
	case SMTPD_VERB_XFORWARD:
		return "Error: MAIL transaction in progress";
	default:
		return "Error: bad sequence of commands";
	}
}

/* ---- header and body checks (smtpd_content.h) ---- */

/* Content the checks let through goes to the message file. */
static void
smtpd_content_write(void *arg, const char *p, size_t n)
{
	struct smtpd_session *s = arg;

	if (s->write_error == SPOOL_OK && s->msg != NULL)
		s->write_error = spool_msg_write(s->msg, p, n);
}

/* One action, in the words of Postfix's cleanup: "ID: reject: header
 * Subject: x from host[addr]; from=<a> to=<b> proto=ESMTP helo=<h>: text".
 * A local submission (sendmail) is "from local", without proto and helo,
 * as Postfix's pickup logs it. */
static void
smtpd_content_log(void *arg, const char *action, const char *where, const char *content,
                  const char *text)
{
	struct smtpd_session *s = arg;
	char origin[sizeof(s->client_name) + sizeof(s->client_addr) + 2];
	char proto[64] = "", helo[SMTPD_HELO_MAX + 16] = "";

	if (s->local) {
		snprintf(origin, sizeof(origin), "local");
	} else {
		snprintf(origin, sizeof(origin), "%s[%s]", s->client_name, s->client_addr);
		snprintf(proto, sizeof(proto), " proto=%s", smtpd_session_proto(s));
		if (s->helo[0] != '\0')
			snprintf(helo, sizeof(helo), " helo=<%s>", s->helo);
	}
	log_info("%s: %s: %s %.200s from %s; from=<%s> to=<%s>%s%s%s%s", spool_msg_id(s->msg),
	    action, where, content, origin, s->env.sender != NULL ? s->env.sender : "",
	    s->env.nrcpt > 0 ? s->env.rcpts[0].addr : "", proto, helo, text[0] ? ": " : "", text);
}

static void
smtpd_content_warning(void *arg, const char *text)
{
	struct smtpd_session *s = arg;

	log_warning("%s: %s", spool_msg_id(s->msg), text);
}

/* Start the checks of the listener, if it has any, for a new message. */
static void
smtpd_content_start(struct smtpd_session *s)
{
	const struct smtpd_content_hooks hooks = { smtpd_content_write, smtpd_content_log,
		smtpd_content_warning, s };
	const struct config *cfg = s->srv->cfg;

	if (!smtpd_content_maps_active(s->srv->content, s->listener))
		return;
	s->content_maps = smtpd_content_maps_ref(s->srv->content);
	s->content = smtpd_content_new(smtpd_content_maps_lists(s->content_maps, s->listener),
	    smtpd_content_names(), config_int(cfg, P_HEADER_SIZE_LIMIT),
	    config_int(cfg, P_BODY_CHECKS_SIZE_LIMIT), &hooks);
}

static void
smtpd_content_stop(struct smtpd_session *s)
{
	smtpd_content_free(s->content);
	s->content = NULL;
	smtpd_content_maps_unref(s->content_maps);
	s->content_maps = NULL;
}

/*
 * The end of the content: the checks' verdict. true when the message is
 * refused (reply r); else their DISCARD, HOLD, FILTER, REDIRECT and BCC
 * join the restrictions' (later ones win, as the checks come last).
 */
static bool
smtpd_content_verdict(struct smtpd_session *s, struct smtpd_reply *r)
{
	const struct smtpd_content_result *res;

	if (s->content == NULL)
		return false;
	res = smtpd_content_result(s->content);
	if (res->code != 0) {
		memset(r, 0, sizeof(*r));
		r->code = res->code;
		r->enh = res->enh;	/* the checker lives until the reply is queued */
		snprintf(r->text, sizeof(r->text), "%s", res->text);
		return true;
	}
	if (res->discard)
		s->discard = true;
	if (res->hold)
		s->hold = true;
	if (res->actions.filter[0] != '\0')
		snprintf(s->actions.filter, sizeof(s->actions.filter), "%s", res->actions.filter);
	if (res->actions.redirect[0] != '\0')
		snprintf(s->actions.redirect, sizeof(s->actions.redirect), "%s",
		    res->actions.redirect);
	if (res->actions.bcc[0] != '\0')
		snprintf(s->actions.bcc, sizeof(s->actions.bcc), "%s", res->actions.bcc);
	return false;
}

static uint64_t
smtpd_size_limit(const struct smtpd_session *s)
{
	return config_lint(s->srv->cfg, s->listener, P_MESSAGE_SIZE_LIMIT);
}

void
smtpd_verbs_reset(struct smtpd_session *s)
{
	if (s->msg != NULL) {
		spool_msg_abort(s->msg);
		s->msg = NULL;
	}
	smtpd_content_stop(s);
	envelope_clear(&s->env);
	memset(&s->mail, 0, sizeof(s->mail));
	s->rcpt_accepted = 0;
	buf_free(&s->decoded);
	s->write_error = SPOOL_OK;
	s->bdat_left = 0;
	s->bdat_last = false;
	s->bdat_discard = false;
	buf_free(&s->prepend);
	s->discard = false;
	s->hold = false;
	memset(&s->actions, 0, sizeof(s->actions));
	s->carry_mail = false;
	s->instance[0] = '\0';
	smtpd_milter_abort(s);
	smtpd_xforward_reset(&s->xforward);
	if (s->state & (SMTPD_STATE_MAIL | SMTPD_STATE_RCPT | SMTPD_STATE_CHUNKING))
		s->state = SMTPD_STATE_READY;
}

void
smtpd_verbs_free(struct smtpd_session *s)
{
	if (s->msg != NULL) {
		spool_msg_abort(s->msg);
		s->msg = NULL;
	}
	smtpd_content_stop(s);
	envelope_free(&s->env);
	buf_free(&s->decoded);
	buf_free(&s->prepend);
	smtpd_restrict_cancel(s->check);
	s->check = NULL;
	smtpd_auth_cmd_free(s);
	smtpd_milter_free(s);
}

/* ---- dispatch ---- */

void
smtpd_verbs_dispatch(struct smtpd_session *s, const char *line, size_t len)
{
	const struct smtpd_verb_rule *rule = NULL;
	struct smtpd_command cmd;
	size_t i;
	bool ok;

	if (smtpd_auth_cmd_reading(s)) {
		smtpd_auth_cmd_response(s, line, len);
		return;
	}
	smtpd_command_split(line, len, &cmd);
	s->count[cmd.verb].total++;
	s->count_all.total++;
	for (i = 0; i < sizeof(smtpd_rules) / sizeof(smtpd_rules[0]); i++)
		if (smtpd_rules[i].verb == cmd.verb)
			rule = &smtpd_rules[i];
	if (rule == NULL) {
		s->last_verb = "UNKNOWN";
		smtpd_reply(s, 500, "5.5.2", "Error: command not recognized");
		smtpd_session_error(s);
		return;
	}
	s->last_verb = smtpd_verb_name(cmd.verb);
	/* Refused at connect (smtpd_delay_reject = no): only QUIT is
	 * served, as Postfix does (RFC 5321 section 3.1). */
	if (s->access_denied && cmd.verb != SMTPD_VERB_QUIT) {
		smtpd_reply(s, 503, "5.7.0", "Error: access denied for %s[%s]", s->client_name,
		    s->client_addr);
		smtpd_session_error(s);
		return;
	}
	/* smtpd_tls_security_level = encrypt: 530 5.7.0 before STARTTLS. */
	if (!smtpd_tls_gate(s, cmd.verb))
		return;
	if (!(rule->states & s->state)) {
		smtpd_reply(s, 503, "5.5.1", "%s", smtpd_wrong_state_text(s, cmd.verb));
		smtpd_session_error(s);
		return;
	}
	ok = rule->run(s, &cmd);
	if (ok && cmd.verb != SMTPD_VERB_DATA && cmd.verb != SMTPD_VERB_BDAT) {
		s->count[cmd.verb].ok++;
		s->count_all.ok++;
	}
}

/* DATA and BDAT count as done only when the message was accepted. */
static void
smtpd_count_message_ok(struct smtpd_session *s, enum smtpd_verb verb)
{
	s->count[verb].ok++;
	s->count_all.ok++;
}

/* ---- restriction checks ---- */

/* Did the client send more behind the command being handled (for
 * reject_unauth_pipelining)? The command's line is still in s->in. */
static bool
smtpd_pipelined(const struct smtpd_session *s)
{
	return buf_len(&s->in) > s->lr.line_total;
}

static void
smtpd_facts(struct smtpd_session *s, struct smtpd_restrict_facts *f, const char *verb,
    const struct mailaddr *rcpt)
{
	memset(f, 0, sizeof(*f));
	f->listener = s->listener;
	if (inet_pton(AF_INET, s->client_addr, f->addr) == 1)
		f->family = AF_INET;
	else if (inet_pton(AF_INET6, s->client_addr, f->addr) == 1)
		f->family = AF_INET6;
	f->client_addr = s->client_addr;
	f->client_name = s->client_name;
	f->reverse_client_name = s->reverse_name;
	f->name_status = s->name_status;
	f->reverse_name_status = s->reverse_name_status;
	f->client_port = s->client_port;
	f->server_addr = s->server_addr;
	f->server_port = s->server_port;
	f->helo = s->helo;
	f->esmtp = s->esmtp;
	f->sender = s->env.sender != NULL ? &s->mail.from : NULL;
	f->rcpt = rcpt;
	f->recipient_count = (unsigned)s->env.nrcpt;
	f->size = s->msg != NULL ? spool_msg_size(s->msg) : s->mail.size;
	f->queue_id = s->msg != NULL ? spool_msg_id(s->msg) : NULL;
	f->instance = s->instance;
	f->sasl_method = s->sasl_method;
	f->sasl_username = s->sasl_username;
	f->sasl_sender = "";
	f->encryption_protocol = "";
	f->encryption_cipher = "";
	f->verb = verb;
	f->pipelined = smtpd_pipelined(s);
	f->carried = s->carry_mail ? &s->carried_mail : s->carry_session ? &s->carried_session : NULL;
}

static void
smtpd_check_done(void *arg, const struct smtpd_restrict_result *res)
{
	struct smtpd_session *s = arg;

	s->check = NULL;
	s->state = s->wait_from;
	evloop_timer_start(s->srv->loop, &s->timer,
	    config_ltime(s->srv->cfg, s->listener, P_SMTPD_TIMEOUT) * 1000);
	s->wait_done(s, res);
	smtpd_session_resume(s);
}

/* Run a stage's lists; done(s, result) now or when the check ends (the
 * session then reads nothing: pipelined commands wait their turn). */
static void
smtpd_check(struct smtpd_session *s, enum smtpd_restrict_stage stage,
    const struct smtpd_restrict_facts *f,
    void (*done)(struct smtpd_session *, const struct smtpd_restrict_result *))
{
	struct smtpd_restrict_result res;

	if (smtpd_restrict_run(s->srv->rules, stage, f, &res, &s->check, smtpd_check_done,
	    s) == SMTPD_RESTRICT_DONE) {
		done(s, &res);
		return;
	}
	s->wait_from = s->state;
	s->wait_done = done;
	s->state = SMTPD_STATE_WAIT;
	evloop_timer_stop(s->srv->loop, &s->timer);
}

static bool
smtpd_stage_active(const struct smtpd_session *s, enum smtpd_restrict_stage stage)
{
	/* Local submissions (sendmail) face no restrictions: see verb_rcpt. */
	return s->srv->rules != NULL && !s->local &&
	    smtpd_restrict_stage_active(s->srv->rules, s->listener, stage);
}

/* Keep what a check added for the message: PREPEND headers, DISCARD,
 * HOLD, FILTER, REDIRECT, BCC. */
static void
smtpd_check_keep(struct smtpd_session *s, const struct smtpd_restrict_result *res)
{
	if (res->prepend[0] != '\0') {
		if (s->prepend.max == 0)
			buf_init(&s->prepend, SMTPD_RESTRICT_PREPEND_MAX);
		if (buf_append_str(&s->prepend, res->prepend) != BUF_OK)
			log_warning("%s[%s]: too many PREPEND headers; some are dropped", s->client_name,
			    s->client_addr);
	}
	if (res->discard)
		s->discard = true;
	if (res->hold)
		s->hold = true;
	smtpd_actions_keep(&s->actions, res);
}

static bool
smtpd_refused(const struct smtpd_restrict_result *res)
{
	return res->verdict == SMTPD_VERDICT_REJECT || res->verdict == SMTPD_VERDICT_DEFER;
}

static void
smtpd_count_ok(struct smtpd_session *s, enum smtpd_verb verb)
{
	s->count[verb].ok++;
	s->count_all.ok++;
}

static void
smtpd_greet(struct smtpd_session *s)
{
	smtpd_reply(s, 220, NULL, "%s", config_lstr(s->srv->cfg, s->listener, P_SMTPD_BANNER));
}

static void
smtpd_connect_done(struct smtpd_session *s, const struct smtpd_restrict_result *res)
{
	if (smtpd_refused(res)) {
		/* Postfix greets a refused client with the refusal, then
		 * answers 503 to everything but QUIT. */
		smtpd_reply_error(s, &res->reply);
		s->access_denied = true;
		return;
	}
	if (res->carry) {
		s->carry_session = true;
		s->carried_session = res->carried;
	}
	smtpd_greet(s);
}

/* The milters' word on the connection: a refusal is logged here and
 * given to every later command (Postfix does the same); 421 closes. */
static void
smtpd_connect_milter_done(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
	if (v->kind == SMTPD_MILTER_SHUTDOWN) {
		smtpd_milter_reply(s, v, "CONNECT", NULL);
		smtpd_session_close_after_reply(s);
		return;
	}
	if (v->kind == SMTPD_MILTER_REJECT)
		smtpd_milter_log(s, v, "reject", "CONNECT", NULL);
	smtpd_verbs_connect_checks(s);
}

void
smtpd_verbs_connect(struct smtpd_session *s)
{
	if (smtpd_milter_start(s)) {
		smtpd_milter_connect(s, smtpd_connect_milter_done);
		return;
	}
	smtpd_verbs_connect_checks(s);
}

static void
smtpd_verbs_connect_checks(struct smtpd_session *s)
{
	struct smtpd_restrict_facts f;

	/* Postfix's order: the anvil limits, then the client restrictions. */
	if (!smtpd_ratelimit_connect(s))
		return;
	if (!smtpd_stage_active(s, SMTPD_RESTRICT_CONNECT)) {
		smtpd_greet(s);
		return;
	}
	smtpd_facts(s, &f, "CONNECT", NULL);
	f.pipelined = false;
	smtpd_check(s, SMTPD_RESTRICT_CONNECT, &f, smtpd_connect_done);
}

/* ---- HELO, EHLO, RSET, NOOP, QUIT, VRFY, HELP ---- */

static bool
verb_helo(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	struct smtpd_reply err;
	char name[SMTPD_HELO_MAX + 1];

	if (smtpd_parse_helo(cmd->args, cmd->args_len, name, sizeof(name), &err) < 0) {
		smtpd_reply_error(s, &err);
		smtpd_session_error(s);
		return false;
	}
	/* RFC 5321 section 4.1.4: a new EHLO resets the transaction. */
	smtpd_verbs_reset(s);
	if (smtpd_stage_active(s, SMTPD_RESTRICT_HELO)) {
		struct smtpd_restrict_facts f;

		memcpy(s->wait_helo, name, sizeof(s->wait_helo));
		s->wait_esmtp = cmd->verb == SMTPD_VERB_EHLO;
		smtpd_facts(s, &f, smtpd_verb_name(cmd->verb), NULL);
		f.helo = s->wait_helo;
		f.esmtp = s->wait_esmtp;
		smtpd_check(s, SMTPD_RESTRICT_HELO, &f, smtpd_helo_done);
		return false;
	}
	memcpy(s->helo, name, sizeof(s->helo));
	s->esmtp = cmd->verb == SMTPD_VERB_EHLO;
	return smtpd_helo_accept(s);
}

/* A refusal by a milter after any stage: reply, log, count. true when the
 * command may go on. */
static bool
smtpd_milter_passed(struct smtpd_session *s, const struct smtpd_milter_verdict *v,
    const char *stage, const char *rcpt)
{
	if (v->kind == SMTPD_MILTER_REJECT || v->kind == SMTPD_MILTER_SHUTDOWN) {
		smtpd_milter_reply(s, v, stage, rcpt);
		if (v->kind == SMTPD_MILTER_SHUTDOWN)
			smtpd_session_close_after_reply(s);
		else
			smtpd_session_error(s);
		return false;
	}
	/* DISCARD before the end of the message: accept it, then drop it. */
	if (v->kind == SMTPD_MILTER_DISCARD)
		s->discard = true;
	return true;
}

static void
smtpd_helo_milter_done(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
	if (!smtpd_milter_passed(s, v, s->esmtp ? "EHLO" : "HELO", NULL))
		return;
	smtpd_helo_reply(s);
	smtpd_count_ok(s, s->esmtp ? SMTPD_VERB_EHLO : SMTPD_VERB_HELO);
}

/* HELO passed the restrictions: the milters, then 250. true when the
 * reply went out now. */
static bool
smtpd_helo_accept(struct smtpd_session *s)
{
	if (smtpd_milter_active(s)) {
		smtpd_milter_helo(s, smtpd_helo_milter_done);
		return false;
	}
	smtpd_helo_reply(s);
	return true;
}

static void
smtpd_helo_done(struct smtpd_session *s, const struct smtpd_restrict_result *res)
{
	if (smtpd_refused(res)) {
		smtpd_reply_error(s, &res->reply);
		smtpd_session_error(s);
		return;
	}
	if (res->carry) {
		s->carry_session = true;
		s->carried_session = res->carried;
	}
	memcpy(s->helo, s->wait_helo, sizeof(s->helo));
	s->esmtp = s->wait_esmtp;
	if (smtpd_helo_accept(s))
		smtpd_count_ok(s, s->esmtp ? SMTPD_VERB_EHLO : SMTPD_VERB_HELO);
}

static void
smtpd_helo_reply(struct smtpd_session *s)
{
	s->state = SMTPD_STATE_READY;
	if (!s->esmtp) {
		smtpd_reply(s, 250, NULL, "%s", s->srv->hostname);
		return;
	}
	smtpd_reply_part(s, 250, false, "%s", s->srv->hostname);
	smtpd_reply_part(s, 250, false, "PIPELINING");
	smtpd_reply_part(s, 250, false, "SIZE %llu", (unsigned long long)smtpd_size_limit(s));
	if (!config_lbool(s->srv->cfg, s->listener, P_DISABLE_VRFY_COMMAND))
		smtpd_reply_part(s, 250, false, "VRFY");
	if (smtpd_tls_offer_starttls(s))
		smtpd_reply_part(s, 250, false, "STARTTLS");
	smtpd_reply_part(s, 250, false, "ENHANCEDSTATUSCODES");
	smtpd_reply_part(s, 250, false, "8BITMIME");
	smtpd_reply_part(s, 250, false, "DSN");
	smtpd_auth_cmd_ehlo(s);
	if (smtpd_xforward_allowed(s))
		smtpd_reply_part(s, 250, false, "%s", SMTPD_XFORWARD_EHLO);
	smtpd_reply_part(s, 250, false, "SMTPUTF8");
	smtpd_reply_part(s, 250, true, "CHUNKING");
}

static bool
verb_rset(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	if (cmd->args_len > 0) {
		smtpd_reply(s, 501, "5.5.4", "Syntax: RSET");
		smtpd_session_error(s);
		return false;
	}
	smtpd_verbs_reset(s);
	smtpd_reply(s, 250, "2.0.0", "Ok");
	return true;
}

static bool
verb_noop(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	(void)cmd;
	smtpd_reply(s, 250, "2.0.0", "Ok");
	return true;
}

static bool
verb_quit(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	(void)cmd;
	smtpd_reply(s, 221, "2.0.0", "Bye");
	smtpd_session_close_after_reply(s);
	return true;
}

static bool
verb_vrfy(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	if (config_lbool(s->srv->cfg, s->listener, P_DISABLE_VRFY_COMMAND)) {
		smtpd_reply(s, 502, "5.5.1", "VRFY command is disabled");
		smtpd_session_error(s);
		return false;
	}
	if (cmd->args_len == 0) {
		smtpd_reply(s, 501, "5.5.4", "Syntax: VRFY address");
		smtpd_session_error(s);
		return false;
	}
	/* RFC 5321 section 3.5.3: 252 when we will accept but do not verify;
	 * it also tells a harvester nothing. */
	smtpd_reply(s, 252, "2.0.0", "Send mail to find out");
	return true;
}

static bool
verb_help(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	(void)cmd;
	smtpd_reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP");
	return true;
}

static bool
verb_not_implemented(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	(void)cmd;
	smtpd_reply(s, 502, "5.5.1", "Error: command not implemented");
	smtpd_session_error(s);
	return false;
}

/* ---- XFORWARD (smtpd_xforward.h) ---- */

/* smtpd_authorized_xforward_hosts: by address, as Postfix matches it. */
static bool
smtpd_xforward_allowed(const struct smtpd_session *s)
{
	const struct config_network *nets;
	unsigned char addr[16];
	int family = 0;
	size_t n;

	if (s->local)
		return false;
	if (inet_pton(AF_INET, s->client_addr, addr) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, s->client_addr, addr) == 1)
		family = AF_INET6;
	nets = config_lnetworks(s->srv->cfg, s->listener, P_SMTPD_AUTHORIZED_XFORWARD_HOSTS, &n);
	return family != 0 && config_networks_match(nets, n, family, addr);
}

static bool
verb_xforward(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	char err[SMTPD_XFORWARD_ERR_SIZE];

	if (!smtpd_xforward_allowed(s)) {
		smtpd_reply(s, 550, "5.7.0", "Error: insufficient authorization");
		smtpd_session_error(s);
		return false;
	}
	if (smtpd_xforward_apply(&s->xforward, cmd->args, cmd->args_len, err, sizeof(err)) < 0) {
		smtpd_reply(s, 501, "5.5.4", "%s", err);
		smtpd_session_error(s);
		return false;
	}
	smtpd_reply(s, 250, "2.0.0", "Ok");
	return true;
}

/* Postfix's ", orig_queue_id=ID, orig_client=NAME[ADDR]" of the client=
 * line, for what XFORWARD named; "" without it. */
static void
smtpd_xforward_log_fields(const struct smtpd_session *s, char *out, size_t outsz)
{
	char namaddr[2 * SMTPD_XFORWARD_VALUE_MAX + 3];
	size_t used;

	out[0] = '\0';
	if (!s->xforward.given)
		return;
	if (s->xforward.ident[0] != '\0')
		snprintf(out, outsz, ", orig_queue_id=%s", s->xforward.ident);
	if (s->xforward.name[0] != '\0' || s->xforward.addr[0] != '\0') {
		smtpd_xforward_namaddr(&s->xforward, namaddr, sizeof(namaddr));
		used = strlen(out);
		snprintf(out + used, outsz - used, ", orig_client=%s", namaddr);
	}
}

/* ---- MAIL and RCPT ---- */

static bool
verb_mail(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	struct smtpd_reply err;
	uint64_t limit = smtpd_size_limit(s);

	if (s->state == SMTPD_STATE_CONNECTED &&
	    (config_lbool(s->srv->cfg, s->listener, P_SMTPD_HELO_REQUIRED) || smtpd_tls_needs_helo(s))) {
		smtpd_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		smtpd_session_error(s);
		return false;
	}
	if (smtpd_parse_mail(cmd->args, cmd->args_len, smtpd_extensions(s), &s->mail, &err) < 0) {
		smtpd_reply_error(s, &err);
		smtpd_session_error(s);
		return false;
	}
	/* smtpd_client_message_rate_limit, smtpd_sasl_user_message_rate_limit. */
	if (!smtpd_ratelimit_mail(s))
		return false;
	/* RFC 1870 section 6.2: refuse a declared size we would refuse anyway. */
	if (s->mail.size_given && limit > 0 && s->mail.size > limit) {
		smtpd_reply(s, 552, "5.3.4", "Message size exceeds fixed limit");
		smtpd_log_reject(s, "MAIL", 552, "5.3.4", "Message size exceeds fixed limit", NULL);
		smtpd_session_error(s);
		return false;
	}
	envelope_set(&s->env.sender, s->mail.from.addr);
	s->env.ret = s->mail.ret;
	envelope_set(&s->env.envid, s->mail.envid_given ? s->mail.envid : NULL);
	s->env.body = s->mail.body;
	s->env.smtputf8 = s->mail.smtputf8;
	smtpd_instance_next(s);
	if (smtpd_milter_active(s))
		smtpd_milter_args(s, false, s->mail.from.addr, cmd->args, cmd->args_len);
	if (smtpd_stage_active(s, SMTPD_RESTRICT_MAIL)) {
		struct smtpd_restrict_facts f;

		smtpd_facts(s, &f, "MAIL", NULL);
		smtpd_check(s, SMTPD_RESTRICT_MAIL, &f, smtpd_mail_done);
		return false;
	}
	return smtpd_mail_accept(s);
}

static void
smtpd_mail_milter_done(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
	if (!smtpd_milter_passed(s, v, "MAIL", NULL)) {
		smtpd_verbs_reset(s);
		return;
	}
	s->state = SMTPD_STATE_MAIL;
	smtpd_reply(s, 250, "2.1.0", "Ok");
	smtpd_count_ok(s, SMTPD_VERB_MAIL);
}

/* MAIL passed the restrictions: the milters, then 250. true when the
 * reply went out now. */
static bool
smtpd_mail_accept(struct smtpd_session *s)
{
	if (smtpd_milter_active(s)) {
		smtpd_milter_mail(s, smtpd_mail_milter_done);
		return false;
	}
	s->state = SMTPD_STATE_MAIL;
	smtpd_reply(s, 250, "2.1.0", "Ok");
	return true;
}

static void
smtpd_mail_done(struct smtpd_session *s, const struct smtpd_restrict_result *res)
{
	if (smtpd_refused(res)) {
		smtpd_reply_error(s, &res->reply);
		smtpd_verbs_reset(s);
		smtpd_session_error(s);
		return;
	}
	if (res->carry) {
		s->carry_mail = true;
		s->carried_mail = res->carried;
	}
	smtpd_check_keep(s, res);
	if (smtpd_mail_accept(s))
		smtpd_count_ok(s, SMTPD_VERB_MAIL);
}

/* Policy servers tell one transaction's requests apart by "instance". */
static void
smtpd_instance_next(struct smtpd_session *s)
{
	static unsigned long seq;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(s->instance, sizeof(s->instance), "%x.%lx.%lx.%lx", (unsigned)getpid(),
	    (unsigned long)tv.tv_sec, (unsigned long)tv.tv_usec, ++seq);
}

/* Answer with a resolver's reply text "550 5.1.1 <a@b>: Recipient address
 * rejected: ..." and log the NOQUEUE line. */
static void
smtpd_rcpt_refuse(struct smtpd_session *s, const char *addr, const char *reply)
{
	char enh[ADDR_DSN_MAX] = "";
	const char *text = reply;
	int code = 0;
	size_t n;

	if (strlen(reply) >= 4 && reply[3] == ' ' && (reply[0] == '4' || reply[0] == '5')) {
		code = (reply[0] - '0') * 100 + (reply[1] - '0') * 10 + (reply[2] - '0');
		text = reply + 4;
		n = strcspn(text, " ");
		if (n > 0 && n < sizeof(enh) && text[0] == reply[0] && text[1] == '.') {
			memcpy(enh, text, n);
			enh[n] = '\0';
			text += n + (text[n] == ' ');
		}
	}
	if (code < 400 || code > 599) {	/* not the resolver's form: a bug */
		code = 451;
		snprintf(enh, sizeof(enh), "4.3.0");
		text = "Temporary lookup failure";
	}
	if (enh[0] == '\0')
		snprintf(enh, sizeof(enh), "%c.0.0", '0' + code / 100);
	smtpd_reply(s, code, enh, "%s", text);
	smtpd_log_reject(s, "RCPT", code, enh, text, addr);
	smtpd_session_error(s);
}

/*
 * Resolve one accepted RCPT (config/addr_resolve.h): refuse an unknown
 * recipient now (550 5.1.1: accepting and bouncing makes backscatter),
 * else add what it expands to (virtual_alias_maps, alias_maps) to the
 * envelope, each with the original recipient as ORCPT so a DSN names the
 * address the sender used (RFC 3461 section 4.2). What cannot be handled:
 *   - a target that failed (an alias member that is no local user, a
 *     virtual mailbox that does not exist) is added all the same when its
 *     class delivers it (local, virtual mailbox): that agent refuses it
 *     and the sender gets a bounce in its words, as Postfix's local(8)
 *     would bounce it; any other failed target refuses the whole RCPT
 *     with its reason rather than lose it silently;
 *   - an alias to a |command or a /file (allowed by allow_mail_to_*) is
 *     stored as its alias's address with the target beside it
 *     (queue/envelope.h): the local agent resolves that address again
 *     and runs only what its own expansion holds, with its own rights;
 *     a target too long to carry is refused with 451 4.3.5.
 * false when refused (the reply is sent).
 */
static bool
smtpd_rcpt_resolve(struct smtpd_session *s, const struct smtpd_rcpt_args *rcpt)
{
	struct addr_expansion x;
	const struct addr_target *t;
	char reply[ADDR_REPLY_MAX];
	const char *orcpt = rcpt->orcpt_given ? rcpt->orcpt : NULL;
	enum addr_verdict v;

	addr_expansion_init(&x);
	v = addr_resolve(s->srv->addr, rcpt->to.addr, &x, reply, sizeof(reply));
	if (x.warning[0] != '\0')
		log_warning("%s", x.warning);
	if (v != ADDR_OK) {
		smtpd_rcpt_refuse(s, rcpt->to.addr, reply);
		addr_expansion_free(&x);
		return false;
	}
	if ((t = envelope_expansion_unstorable(&x)) != NULL) {
		if (envelope_target_too_long(t))
			snprintf(reply, sizeof(reply), "451 4.3.5 <%s>: Recipient address rejected: "
			         "%s too long", rcpt->to.addr,
			         t->kind == ADDR_TARGET_COMMAND ? "command"
			         : t->kind == ADDR_TARGET_FILE ? "file name" : "address");
		else
			snprintf(reply, sizeof(reply), "%d %s <%s>: Recipient address rejected: %s",
			         t->code, t->dsn, rcpt->to.addr, t->text != NULL ? t->text : "");
		smtpd_rcpt_refuse(s, rcpt->to.addr, reply);
		addr_expansion_free(&x);
		return false;
	}
	for (size_t i = 0; i < x.n; i++)
		if (x.v[i].kind == ADDR_TARGET_ERROR)
			log_info("%s: <%s> (from <%s>): %s; the delivery agent will refuse it",
			         s->client_addr, x.v[i].value, rcpt->to.addr,
			         x.v[i].text != NULL ? x.v[i].text : "");
	(void)envelope_add_expansion(&s->env, &x, rcpt->to.addr, orcpt, rcpt->notify);
	/* An empty :include: file: nothing to deliver, and nothing wrong
	 * (Postfix's local(8) reports success). The RCPT is accepted. */
	addr_expansion_free(&x);
	return true;
}

static bool
verb_rcpt(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	struct smtpd_rcpt_args rcpt;
	struct smtpd_reply err;
	uint64_t limit = config_lint(s->srv->cfg, s->listener, P_SMTPD_RECIPIENT_LIMIT);

	/* RFC 5321 section 4.5.3.1.10: 452, and the client sends the rest in
	 * another transaction. Not a client error: no error count. */
	if (limit > 0 && s->rcpt_accepted >= limit) {
		smtpd_reply(s, 452, "4.5.3", "Error: too many recipients");
		return false;
	}
	if (smtpd_parse_rcpt(cmd->args, cmd->args_len, smtpd_extensions(s), s->mail.smtputf8,
	    &rcpt, &err) < 0) {
		smtpd_reply_error(s, &err);
		smtpd_session_error(s);
		return false;
	}
	/* smtpd_client_recipient_rate_limit, smtpd_sasl_user_recipient_rate_limit. */
	if (!smtpd_ratelimit_rcpt(s))
		return false;
	/* A local submission (sendmail) is trusted as Postfix trusts
	 * pickup: no restrictions (the sender is a local user, known by
	 * uid). */
	if (smtpd_milter_active(s))
		smtpd_milter_args(s, true, rcpt.to.addr, cmd->args, cmd->args_len);
	if (s->srv->rules != NULL && !s->local) {
		struct smtpd_restrict_facts f;

		s->wait_rcpt = rcpt;
		smtpd_facts(s, &f, "RCPT", &s->wait_rcpt.to);
		smtpd_check(s, SMTPD_RESTRICT_RCPT, &f, smtpd_rcpt_done);
		return false;
	}
	if (smtpd_milter_active(s)) {
		s->wait_rcpt = rcpt;
		return smtpd_rcpt_milter(s);
	}
	return smtpd_rcpt_accept(s, &rcpt);
}

static void
smtpd_rcpt_milter_done(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
	if (!smtpd_milter_passed(s, v, "RCPT", s->wait_rcpt.to.addr))
		return;
	if (smtpd_rcpt_accept(s, &s->wait_rcpt))
		smtpd_count_ok(s, SMTPD_VERB_RCPT);
}

/* The restrictions passed s->wait_rcpt: the milters decide next (before
 * the recipient is resolved: doc/milter.md). */
static bool
smtpd_rcpt_milter(struct smtpd_session *s)
{
	smtpd_milter_rcpt(s, smtpd_rcpt_milter_done);
	return false;
}

/* The restrictions passed: resolve and add the recipient. */
static bool
smtpd_rcpt_accept(struct smtpd_session *s, const struct smtpd_rcpt_args *rcpt)
{
	if (s->srv->addr == NULL)
		envelope_add_rcpt(&s->env, rcpt->to.addr, rcpt->orcpt_given ? rcpt->orcpt : NULL,
		                  rcpt->notify);
	else if (!smtpd_rcpt_resolve(s, rcpt))
		return false;
	s->rcpt_accepted++;
	s->state = SMTPD_STATE_RCPT;
	smtpd_reply(s, 250, "2.1.5", "Ok");
	return true;
}

static void
smtpd_rcpt_done(struct smtpd_session *s, const struct smtpd_restrict_result *res)
{
	if (smtpd_refused(res)) {
		smtpd_reply_error(s, &res->reply);
		smtpd_session_error(s);
		return;
	}
	smtpd_check_keep(s, res);
	if (smtpd_milter_active(s)) {
		(void)smtpd_rcpt_milter(s);
		return;
	}
	if (smtpd_rcpt_accept(s, &s->wait_rcpt))
		smtpd_count_ok(s, SMTPD_VERB_RCPT);
}

/* ---- the message: open, content, finish, commit ---- */

/* Create the message file and write our Received header. */
static bool
smtpd_message_open(struct smtpd_session *s, enum smtpd_data_mode mode)
{
	struct smtpd_received rec;
	char err[256], sasl[SMTPD_AUTH_USERNAME_MAX + 2 * MAILADDR_PATH_MAX];
	char orig[4 * SMTPD_XFORWARD_VALUE_MAX];
	enum smtpd_data_newline nl;
	const char *bare;
	uint64_t line_max;

	s->msg = spool_msg_create(s->srv->spool, err, sizeof(err));
	if (s->msg == NULL) {
		log_warning("cannot create message file: %s", err);
		return false;
	}
	smtpd_auth_cmd_log_fields(s, sasl, sizeof(sasl));
	smtpd_xforward_log_fields(s, orig, sizeof(orig));
	if (s->local)
		log_info("%s: client=%s[%s], uid=%lu%s", spool_msg_id(s->msg), s->client_name,
		    s->client_addr, s->peer_uid, sasl);
	else
		log_info("%s: client=%s[%s]%s%s", spool_msg_id(s->msg), s->client_name, s->client_addr,
		    sasl, orig);
	memset(&rec, 0, sizeof(rec));
	rec.helo = s->helo;
	rec.client_name = s->client_name;
	rec.client_addr = s->client_addr;
	rec.hostname = s->srv->hostname;
	rec.mail_name = config_str(s->srv->cfg, P_MAIL_NAME);
	rec.esmtp = s->esmtp;
	rec.tls = smtpd_tls_active(s);
	rec.auth = s->sasl_username[0] != '\0';
	rec.smtputf8 = s->env.smtputf8;
	rec.queue_id = spool_msg_id(s->msg);
	rec.rcpt = s->env.nrcpt == 1 ? s->env.rcpts[0].addr : NULL;
	rec.when = time(NULL);
	rec.local = s->local;
	rec.uid = s->peer_uid;
	buf_init(&s->decoded, SMTPD_DECODED_MAX);
	/* PREPEND headers go above our Received:, as Postfix's smtpd
	 * writes them first. */
	if (buf_len(&s->prepend) > 0) {
		const char *p = buf_cstr(&s->prepend), *eol;

		for (; (eol = strchr(p, '\n')) != NULL; p = eol + 1)
			if (buf_append(&s->decoded, p, (size_t)(eol - p)) != BUF_OK ||
			    buf_append(&s->decoded, "\r\n", 2) != BUF_OK)
				panic("PREPEND headers larger than %u bytes", SMTPD_DECODED_MAX);
	}
	if (smtpd_received_format(&rec, &s->decoded) != BUF_OK)
		panic("Received header larger than %u bytes", SMTPD_DECODED_MAX);
	/* Milters see the client's content, not our headers above it.
	 * XXX header_checks see our Received: too; an edit of theirs to it
	 * (PREPEND, REPLACE) moves this boundary, and the milters would then
	 * see or miss a line of ours. */
	s->content_off = buf_len(&s->decoded);

	bare = config_lstr(s->srv->cfg, s->listener, P_SMTPD_FORBID_BARE_NEWLINE);
	nl = strcmp(bare, "normalize") == 0 ? SMTPD_DATA_NORMALIZE : SMTPD_DATA_REJECT;
	line_max = config_lint(s->srv->cfg, s->listener, P_MESSAGE_LINE_LENGTH_LIMIT);
	smtpd_data_init(&s->data, mode, nl, smtpd_size_limit(s), line_max);
	s->write_error = SPOOL_OK;
	smtpd_content_start(s);
	return true;
}

/* Hand decoded bytes to the message file (errors are sticky). */
static void
smtpd_message_drain(struct smtpd_session *s)
{
	if (buf_len(&s->decoded) == 0)
		return;
	if (s->content != NULL)
		smtpd_content_feed(s->content, buf_data(&s->decoded), buf_len(&s->decoded));
	else if (s->write_error == SPOOL_OK)
		s->write_error = spool_msg_write(s->msg, buf_data(&s->decoded), buf_len(&s->decoded));
	buf_reset(&s->decoded);
}

/* Why the content cannot be accepted, or false when it can. */
static bool
smtpd_message_refusal(struct smtpd_session *s, struct smtpd_reply *r)
{
	const struct smtpd_data *d = &s->data;
	uint64_t hops = config_int(s->srv->cfg, P_HOPCOUNT_LIMIT);

	memset(r, 0, sizeof(*r));
	if (s->write_error == SPOOL_NOSPACE) {
		*r = (struct smtpd_reply){ 452, "4.3.1", "Insufficient system storage" };
	} else if (s->write_error != SPOOL_OK) {
		*r = (struct smtpd_reply){ 451, "4.3.0", "Error: queue file write error" };
	} else if (d->problems & SMTPD_DATA_TOO_BIG) {
		*r = (struct smtpd_reply){ 552, "5.3.4", "Error: message file too big" };
	} else if (d->newline == SMTPD_DATA_REJECT && (d->problems & SMTPD_DATA_BARE_LF)) {
		/* RFC 5321 section 2.3.8: only CRLF ends a line. */
		*r = (struct smtpd_reply){ 550, "5.5.2", "Error: bare <LF> received" };
	} else if (d->newline == SMTPD_DATA_REJECT && (d->problems & SMTPD_DATA_BARE_CR)) {
		*r = (struct smtpd_reply){ 550, "5.5.2", "Error: bare <CR> received" };
	} else if (d->problems & SMTPD_DATA_LONG_LINE) {
		*r = (struct smtpd_reply){ 554, "5.6.0", "" };
		snprintf(r->text, sizeof(r->text), "Error: message line longer than %llu octets",
		    (unsigned long long)d->line_max);
	} else if (hops > 0 && d->received_count >= hops) {
		/* RFC 5321 section 6.3: a loop. */
		*r = (struct smtpd_reply){ 554, "5.4.6", "Error: too many hops" };
	} else {
		return false;
	}
	return true;
}

static void
smtpd_commit_result(void *arg, const char *id, enum spool_result res)
{
	struct smtpd_session *s = arg;

	if (res == SPOOL_OK) {
		smtpd_reply(s, 250, "2.0.0", "Ok: queued as %s", id);
		smtpd_notify_send(s->srv->notify, id);
		smtpd_count_message_ok(s, s->bdat_last ? SMTPD_VERB_BDAT : SMTPD_VERB_DATA);
	} else if (res == SPOOL_NOSPACE) {
		log_warning("%s: not enough space to queue the message", id);
		smtpd_reply(s, 452, "4.3.1", "Insufficient system storage");
	} else {
		log_warning("%s: queue commit failed", id);
		smtpd_reply(s, 451, "4.3.0", "Error: queue file write error");
	}
	s->state = SMTPD_STATE_READY;
	smtpd_verbs_reset(s);
	evloop_timer_start(s->srv->loop, &s->timer,
	    config_ltime(s->srv->cfg, s->listener, P_SMTPD_TIMEOUT) * 1000);
	smtpd_session_commit_done(s);
}

/* The end of the content: refuse it, or give it to the spool. */
static void
smtpd_message_finish(struct smtpd_session *s, enum smtpd_verb verb)
{
	struct smtpd_reply r;

	smtpd_message_drain(s);
	if (s->content != NULL)
		smtpd_content_finish(s->content);
	if (smtpd_message_refusal(s, &r)) {
		smtpd_reply_error(s, &r);
		smtpd_log_reject(s, "END-OF-MESSAGE", r.code, r.enh, r.text, NULL);
		s->state = SMTPD_STATE_READY;
		smtpd_verbs_reset(s);
		smtpd_session_error(s);
		return;
	}
	if (smtpd_content_verdict(s, &r)) {
		/* Logged by the check ("ID: reject: header ..."), as Postfix's
		 * cleanup does; the file and its id go away unqueued. */
		smtpd_reply_error(s, &r);
		s->state = SMTPD_STATE_READY;
		smtpd_verbs_reset(s);
		smtpd_session_error(s);
		return;
	}
	s->bdat_last = verb == SMTPD_VERB_BDAT;
	if (smtpd_stage_active(s, SMTPD_RESTRICT_EOD)) {
		struct smtpd_restrict_facts f;

		smtpd_facts(s, &f, "END-OF-MESSAGE", NULL);
		f.recipient_count = (unsigned)s->env.nrcpt;
		smtpd_check(s, SMTPD_RESTRICT_EOD, &f, smtpd_eod_done);
		return;
	}
	smtpd_message_commit(s);
}

static void
smtpd_eod_done(struct smtpd_session *s, const struct smtpd_restrict_result *res)
{
	if (smtpd_refused(res)) {
		smtpd_reply_error(s, &res->reply);
		s->state = SMTPD_STATE_READY;
		smtpd_verbs_reset(s);
		smtpd_session_error(s);
		return;
	}
	smtpd_check_keep(s, res);
	smtpd_message_commit(s);
}

static void
smtpd_eom_milter_done(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
	if (v->kind == SMTPD_MILTER_REJECT || v->kind == SMTPD_MILTER_SHUTDOWN) {
		smtpd_milter_reply(s, v, "END-OF-MESSAGE", NULL);
		s->state = SMTPD_STATE_READY;
		smtpd_verbs_reset(s);
		if (v->kind == SMTPD_MILTER_SHUTDOWN)
			smtpd_session_close_after_reply(s);
		else
			smtpd_session_error(s);
		return;
	}
	if (v->kind == SMTPD_MILTER_DISCARD) {
		smtpd_milter_log(s, v, "discard", "END-OF-MESSAGE", NULL);
		s->discard = true;
	} else if (v->quarantine) {
		/* SMFIR_QUARANTINE: the message waits on hold (ternctl queue
		 * release), as Postfix puts it in the hold queue. */
		smtpd_milter_log(s, v, "hold", "END-OF-MESSAGE", NULL);
		s->hold = true;
	}
	smtpd_message_queue(s);
}

/* The content passed our checks: the milters have the last word (and
 * may edit the message), then the spool. */
static void
smtpd_message_commit(struct smtpd_session *s)
{
	if (smtpd_milter_active(s) && !s->discard) {
		smtpd_milter_eom(s, s->content_off, s->bdat_last, smtpd_eom_milter_done);
		return;
	}
	smtpd_message_queue(s);
}

/* Hand the message to the spool (or drop it after a DISCARD action). */
static void
smtpd_message_queue(struct smtpd_session *s)
{
	struct timeval tv;
	struct spool_msg *m;

	if (!s->discard)
		smtpd_actions_apply(&s->actions, s->srv->cfg, s->listener, s->srv->addr,
		                    spool_msg_id(s->msg), &s->env);
	if (s->discard || s->env.nrcpt == 0) {
		/* Claim delivery, keep nothing: Postfix's DISCARD; or every
		 * RCPT expanded to nothing (empty :include: files), which
		 * Postfix's local(8) delivers to no one and reports as
		 * success, and no agent could finish a queue file without
		 * recipients. */
		if (s->discard)
			log_info("%s: discard: message from %s[%s] dropped by a DISCARD action",
			    spool_msg_id(s->msg), s->client_name, s->client_addr);
		else
			log_info("%s: discarded: no recipient left after alias expansion",
			    spool_msg_id(s->msg));
		smtpd_reply(s, 250, "2.0.0", "Ok: queued as %s", spool_msg_id(s->msg));
		smtpd_count_message_ok(s, s->bdat_last ? SMTPD_VERB_BDAT : SMTPD_VERB_DATA);
		s->state = SMTPD_STATE_READY;
		smtpd_verbs_reset(s);
		return;
	}
	gettimeofday(&tv, NULL);
	s->env.size = spool_msg_size(s->msg);
	s->env.arrival = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	if (s->xforward.given) {
		/* The forwarded origin only, never mixed with this session's
		 * (XFORWARD_README note 4); what is missing stays unknown. */
		const struct smtpd_xforward *xf = &s->xforward;

		envelope_set(&s->env.client_name, xf->name[0] ? xf->name : SMTPD_PEER_UNKNOWN);
		envelope_set(&s->env.client_addr, xf->addr[0] ? xf->addr : NULL);
		envelope_set(&s->env.helo, xf->helo[0] ? xf->helo : NULL);
		envelope_set(&s->env.proto, xf->proto[0] ? xf->proto : NULL);
	} else {
		envelope_set(&s->env.client_name, s->client_name);
		envelope_set(&s->env.client_addr, s->client_addr);
		envelope_set(&s->env.helo, s->helo[0] ? s->helo : NULL);
		envelope_set(&s->env.proto, smtpd_session_proto(s));
	}
	envelope_set(&s->env.listener, config_listener_name(s->listener));
	s->env.hold = s->hold;
	envelope_set(&s->env.sasl_method, s->sasl_method[0] ? s->sasl_method : NULL);
	envelope_set(&s->env.sasl_username, s->sasl_username[0] ? s->sasl_username : NULL);
	s->state = SMTPD_STATE_COMMIT;
	evloop_timer_stop(s->srv->loop, &s->timer);
	/* The 250 waits for the callback: file synced, envelope committed. */
	m = s->msg;
	s->msg = NULL;
	spool_msg_commit(s->srv->spool, m, &s->env, smtpd_commit_result, s);
}

static bool
verb_data(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	if (cmd->args_len > 0) {
		smtpd_reply(s, 501, "5.5.4", "Syntax: DATA");
		smtpd_session_error(s);
		return false;
	}
	if (smtpd_stage_active(s, SMTPD_RESTRICT_DATA)) {
		struct smtpd_restrict_facts f;

		smtpd_facts(s, &f, "DATA", NULL);
		smtpd_check(s, SMTPD_RESTRICT_DATA, &f, smtpd_data_done);
		return false;
	}
	return smtpd_data_go(s);
}

static void
smtpd_data_milter_done(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
	if (!smtpd_milter_passed(s, v, "DATA", NULL)) {
		/* The transaction stays; only the message file goes. */
		spool_msg_abort(s->msg);
		s->msg = NULL;
		buf_free(&s->decoded);
		return;
	}
	s->state = SMTPD_STATE_DATA;
	smtpd_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

/* DATA passed the restrictions: the milters (with the queue id known,
 * for their macro i), then 354. */
static bool
smtpd_data_go(struct smtpd_session *s)
{
	if (!smtpd_milter_active(s))
		return smtpd_data_start(s);
	if (!smtpd_message_open(s, SMTPD_DATA_DOT)) {
		smtpd_reply(s, 451, "4.3.0", "Error: queue file write error");
		return false;
	}
	smtpd_milter_data(s, smtpd_data_milter_done);
	return false;
}

static bool
smtpd_data_start(struct smtpd_session *s)
{
	if (!smtpd_message_open(s, SMTPD_DATA_DOT)) {
		smtpd_reply(s, 451, "4.3.0", "Error: queue file write error");
		return false;
	}
	s->state = SMTPD_STATE_DATA;
	smtpd_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	return true;
}

static void
smtpd_data_done(struct smtpd_session *s, const struct smtpd_restrict_result *res)
{
	if (smtpd_refused(res)) {
		smtpd_reply_error(s, &res->reply);
		smtpd_session_error(s);
		return;
	}
	smtpd_check_keep(s, res);
	(void)smtpd_data_go(s);
}

static bool
verb_bdat(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	struct smtpd_reply err;
	uint64_t size;
	bool last;

	if (smtpd_parse_bdat(cmd->args, cmd->args_len, &size, &last, &err) < 0) {
		/* Without a size we cannot skip the chunk: end the session. */
		smtpd_reply_error(s, &err);
		smtpd_reply(s, 421, "4.5.0", "%s Error: BDAT without a valid size", s->srv->hostname);
		smtpd_session_close_after_reply(s);
		return false;
	}
	s->bdat_left = size;
	s->bdat_last = last;
	s->bdat_discard = false;
	s->bdat_prev_state = s->state;
	if (!(smtpd_extensions(s) & SMTPD_EXT_CHUNKING)) {
		s->bdat_discard = true;
		s->bdat_refusal = (struct smtpd_reply){ 503, "5.5.1", "Error: send EHLO first" };
	} else if (!(s->state & (SMTPD_STATE_RCPT | SMTPD_STATE_CHUNKING))) {
		s->bdat_discard = true;
		s->bdat_refusal = (struct smtpd_reply){ 503, "5.5.1", "" };
		snprintf(s->bdat_refusal.text, sizeof(s->bdat_refusal.text), "%s",
		    s->state == SMTPD_STATE_MAIL ? "Error: no valid recipients" :
		    "Error: need MAIL and RCPT commands");
	} else if (s->state == SMTPD_STATE_RCPT && smtpd_stage_active(s, SMTPD_RESTRICT_DATA)) {
		struct smtpd_restrict_facts f;

		/* smtpd_data_restrictions run at the first chunk, as Postfix
		 * does for BDAT; the chunk waits in the input meanwhile. */
		smtpd_facts(s, &f, "BDAT", NULL);
		smtpd_check(s, SMTPD_RESTRICT_DATA, &f, smtpd_bdat_done);
		return true;
	} else if (s->state == SMTPD_STATE_RCPT && !smtpd_message_open(s, SMTPD_DATA_BDAT)) {
		s->bdat_discard = true;
		s->bdat_refusal = (struct smtpd_reply){ 451, "4.3.0", "Error: queue file write error" };
	}
	s->state = SMTPD_STATE_BDAT;
	return true;
}

static void
smtpd_bdat_done(struct smtpd_session *s, const struct smtpd_restrict_result *res)
{
	if (smtpd_refused(res)) {
		s->bdat_discard = true;
		s->bdat_refusal = res->reply;
	} else {
		smtpd_check_keep(s, res);
		if (!smtpd_message_open(s, SMTPD_DATA_BDAT)) {
			s->bdat_discard = true;
			s->bdat_refusal = (struct smtpd_reply){ 451, "4.3.0",
			    "Error: queue file write error" };
		}
	}
	s->state = SMTPD_STATE_BDAT;
}

/* A BDAT chunk was read completely. */
static void
smtpd_bdat_chunk_done(struct smtpd_session *s)
{
	if (s->bdat_discard) {
		smtpd_reply_error(s, &s->bdat_refusal);
		/* A refused chunk ends any transaction it belonged to (RFC 3030
		 * section 2); outside one, the session is where it was. */
		if (s->bdat_prev_state & (SMTPD_STATE_MAIL | SMTPD_STATE_RCPT | SMTPD_STATE_CHUNKING)) {
			s->state = SMTPD_STATE_READY;
			smtpd_verbs_reset(s);
		} else {
			s->state = s->bdat_prev_state;
		}
		smtpd_session_error(s);
		return;
	}
	if (s->bdat_last) {
		smtpd_data_finish(&s->data, &s->decoded);
		smtpd_message_finish(s, SMTPD_VERB_BDAT);
		return;
	}
	s->state = SMTPD_STATE_CHUNKING;
	smtpd_reply(s, 250, "2.0.0", "Ok: %llu octets", (unsigned long long)s->data.size);
	smtpd_count_message_ok(s, SMTPD_VERB_BDAT);
}

bool
smtpd_verbs_content(struct smtpd_session *s)
{
	size_t avail = buf_len(&s->in), n;
	bool end = false;

	if (s->state == SMTPD_STATE_BDAT) {
		if (s->bdat_left == 0) {
			smtpd_bdat_chunk_done(s);
			return true;
		}
		if (avail == 0)
			return false;
		if (avail > s->bdat_left)
			avail = (size_t)s->bdat_left;
		if (s->bdat_discard) {
			n = avail;
		} else {
			n = smtpd_data_feed(&s->data, buf_data(&s->in), avail, &s->decoded, &end);
			smtpd_message_drain(s);
		}
		buf_consume(&s->in, n);
		s->bdat_left -= n;
		return true;
	}
	if (avail == 0)
		return false;
	n = smtpd_data_feed(&s->data, buf_data(&s->in), avail, &s->decoded, &end);
	buf_consume(&s->in, n);
	smtpd_message_drain(s);
	if (end) {
		smtpd_message_finish(s, SMTPD_VERB_DATA);
		return true;
	}
	/* All input consumed (or the decoded buffer was drained): go on only
	 * if bytes remain. */
	return buf_len(&s->in) > 0 && n > 0;
}
