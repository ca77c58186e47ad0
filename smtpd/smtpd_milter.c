/*
 * smtpd_milter: the session's Milter connections and the event engine.
 * See the header for the model; doc/milter.md for the choices.
 *
 * Ownership: the session owns one struct smtpd_milter_sess (s->milter),
 * which owns every connection, its buffers and the content state of the
 * message being inspected; smtpd_milter_free() releases all of it.
 *
 * The engine: an event (connect, HELO, ...) is asked of the milters one
 * at a time, in list order (ms->cur). For the current milter a step
 * function writes the frames of the event (macros first, as Postfix
 * sends them) until one needs a reply; the reply, read on the loop,
 * decides: continue with the next frame or milter, or stop with a
 * verdict. When the last milter is done the verdict goes to the session.
 * The done function is always the last thing the engine calls: it may
 * start the next event or free the session.
 */
#include "smtpd/smtpd_milter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "config/config_milter.h"
#include "smtpd/smtpd_policy.h"
#include "smtpd/smtpd_session_impl.h"
#include "smtpd/smtpd_tls.h"

/* Bytes asked of read(2) at a time. */
#define SMTPD_MILTER_READ_CHUNK 16384
/* Unanswered bytes we hold for one milter: the largest frame and a read. */
#define SMTPD_MILTER_IN_MAX (MILTER_FRAME_MAX + SMTPD_MILTER_READ_CHUNK)
/* Frames queued for one milter: a body chunk with its macros and more. */
#define SMTPD_MILTER_OUT_MAX (2u * MILTER_FRAME_MAX)
/* The header section we inspect and edit in memory (Postfix limits each
 * header to header_size_limit, 100 KiB); past it the message is refused
 * with 452 4.3.1 rather than inspected in part. */
#define SMTPD_MILTER_HEADERS_MAX (1024u * 1024)
/* A replacement body under message_size_limit = 0 (no limit). */
#define SMTPD_MILTER_BODY_MAX (1024u * 1024 * 1024)
/* Most header fields in that section. */
#define SMTPD_MILTER_HEADER_COUNT_MAX 10000u
/* Most replies (progress, edits) one event may bring. */
#define SMTPD_MILTER_REPLIES_MAX 100000u
/* MAIL and RCPT arguments we keep (a command line is at most 2048). */
#define SMTPD_MILTER_ARGS_MAX 4096u
/* Most ESMTP parameters passed on. */
#define SMTPD_MILTER_ARGV_MAX 16u
/* Macros sent per event. */
#define SMTPD_MILTER_MACROS_MAX 32u
/* Room for a macro value we format ("name [address]", numbers). */
#define SMTPD_MILTER_TMP_MAX 320u
/* The events that have a "do not send" bit (Postfix's SMFIP_NOSEND_MASK). */
#define SMTPD_MILTER_NOSEND (MILTER_P_NOCONNECT | MILTER_P_NOHELO | MILTER_P_NOMAIL | \
                             MILTER_P_NORCPT | MILTER_P_NOBODY | MILTER_P_NOHDRS | \
                             MILTER_P_NOEOH | MILTER_P_NOUNKNOWN | MILTER_P_NODATA)

enum smtpd_milter_state {
	SMTPD_MILTER_CLOSED = 0,
	SMTPD_MILTER_CONNECTING,	/* connect(2) in progress */
	SMTPD_MILTER_NEGOTIATING,	/* OPTNEG sent, its reply awaited */
	SMTPD_MILTER_READY,		/* takes events */
	SMTPD_MILTER_ACCEPT_CON,	/* accepted the connection: no more events */
	SMTPD_MILTER_REJECT_CON,	/* refused the connection: def for every event */
	SMTPD_MILTER_ACCEPT_MSG,	/* accepted the message: no more events for it */
	SMTPD_MILTER_ERROR,		/* broken: def for every event */
};

/* Where the content phase of one milter is. */
enum smtpd_milter_phase {
	SMTPD_MILTER_PH_START = 0,
	SMTPD_MILTER_PH_HEADERS,
	SMTPD_MILTER_PH_EOH,
	SMTPD_MILTER_PH_BODY,
	SMTPD_MILTER_PH_EOB,
	SMTPD_MILTER_PH_DONE,
};

struct smtpd_milter_conn {
	struct smtpd_milter_sess *ms;
	struct config_milter conf;
	enum config_milter_action action;	/* default action in force */
	int64_t connect_ms, command_ms, content_ms;
	uint32_t version;		/* what we offer */
	int fd;
	struct ev_io io;
	struct ev_timer timer;
	enum smtpd_milter_state st;
	uint32_t actions, events, np_mask;	/* negotiated */
	char *macros[MILTER_STAGE_COUNT];	/* the filter's own lists, or NULL */
	char skip_event;		/* SMFIR_SKIP: skip more of this event */
	struct smtpd_milter_verdict def;	/* what every event gets (REJECT_CON, ERROR) */
	struct buf in, out;
	bool waiting;			/* a reply is due (or the drain below) */
	bool draining;			/* waiting for the socket to take queued frames */
	char waiting_for;		/* the event it answers */
	bool in_tx;			/* saw MAIL of the current transaction */
	/* The content phase. */
	enum smtpd_milter_phase phase;
	size_t hdr;			/* next header to send */
	uint64_t body_pos;		/* next body byte to send */
	bool body_lockout;		/* another edit came after SMFIR_REPLBODY */
};

/* One header field of the message being inspected, raw with its CR LF. */
struct smtpd_milter_header {
	char *raw;
	size_t len;
	size_t name_len;
	bool ours;			/* our own (Received:, PREPEND): not shown */
};

struct smtpd_milter_sess {
	struct smtpd_session *s;
	size_t n;
	struct smtpd_milter_conn *c;
	struct ev_timer kick;		/* starts an event from the loop */
	bool busy;
	char event;			/* MILTER_CMD_* of the event in progress */
	enum milter_stage stage;
	size_t cur;
	enum smtpd_state saved_state;
	smtpd_milter_done *done;
	struct smtpd_milter_verdict v;
	/* MAIL or RCPT arguments: NUL-separated strings. */
	char args[SMTPD_MILTER_ARGS_MAX];
	size_t nargs;
	char rcpt_addr[MAILADDR_PATH_MAX + 1];
	/* The message (END-OF-MESSAGE). */
	bool bdat_data;			/* send DATA first (BDAT) */
	int fd;				/* read fd of the message file, or -1 */
	struct smtpd_milter_header *hdrs;
	size_t nhdrs;
	uint64_t body_off, file_size;
	bool blank_line;		/* a blank line ends the header section */
	bool edited;			/* headers changed */
	bool body_replaced;
	struct buf body;		/* the replacement body */
	bool edit_failed;		/* an edit could not be applied */
	unsigned replies;
};

static void smtpd_milter_run(struct smtpd_milter_sess *ms);
static void smtpd_milter_conn_io(struct ev_io *io, unsigned revents);

/* ---- small helpers ---- */

static void
smtpd_milter_set_reply(struct smtpd_milter_verdict *v, enum smtpd_milter_kind kind,
    const char *reply)
{
	v->kind = kind;
	snprintf(v->reply, sizeof(v->reply), "%s", reply);
}

/* The default action as a verdict: Postfix's milter8_comm_error() and,
 * for a reply the filter got wrong, milter8_conf_error(). */
static void
smtpd_milter_default(struct smtpd_milter_conn *k, bool conf_error)
{
	struct smtpd_milter_verdict *d = &k->def;

	memset(d, 0, sizeof(*d));
	switch (k->action) {
	case CONFIG_MILTER_ACTION_ACCEPT:
		d->kind = SMTPD_MILTER_CONTINUE;
		break;
	case CONFIG_MILTER_ACTION_QUARANTINE:
		d->quarantine = true;
		break;
	case CONFIG_MILTER_ACTION_REJECT:
		if (!conf_error) {
			smtpd_milter_set_reply(d, SMTPD_MILTER_REJECT, "550 5.5.0 Service unavailable");
			break;
		}
		/* FALLTHROUGH */
	case CONFIG_MILTER_ACTION_TEMPFAIL:
	default:
		smtpd_milter_set_reply(d, SMTPD_MILTER_REJECT, conf_error ?
		    "451 4.3.5 Server configuration problem - try again later" :
		    "451 4.7.1 Service unavailable - try again later");
		break;
	case CONFIG_MILTER_ACTION_SHUTDOWN:
		smtpd_milter_set_reply(d, SMTPD_MILTER_SHUTDOWN,
		    "421 4.7.0 Server closing connection");
		break;
	}
}

static void
smtpd_milter_close(struct smtpd_milter_conn *k)
{
	struct evloop *loop = k->ms->s->srv->loop;

	if (k->fd >= 0) {
		evloop_io_del(loop, &k->io);
		close(k->fd);
		k->fd = -1;
	}
	evloop_timer_stop(loop, &k->timer);
	buf_reset(&k->in);
	buf_reset(&k->out);
}

/* The milter broke (I/O, timeout, protocol): log, close, and give it the
 * default action for the rest of the session. */
static void smtpd_milter_fail(struct smtpd_milter_conn *k, bool conf_error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
smtpd_milter_fail(struct smtpd_milter_conn *k, bool conf_error, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_warning("%s", text);
	smtpd_milter_close(k);
	k->st = SMTPD_MILTER_ERROR;
	smtpd_milter_default(k, conf_error);
}

/* Queue frames: a full buffer is a bug of ours (frames are bounded). */
static void
smtpd_milter_queued(struct smtpd_milter_conn *k, enum buf_result r)
{
	if (r != BUF_OK)
		panic("milter %s: output buffer of %u bytes overflows", k->conf.endpoint,
		    SMTPD_MILTER_OUT_MAX);
}

/* Write what can be written now; watch for the rest. */
static void
smtpd_milter_flush(struct smtpd_milter_conn *k)
{
	ssize_t n;

	if (k->fd < 0 || k->st == SMTPD_MILTER_CONNECTING)
		return;
	if (buf_len(&k->out) > 0) {
		n = buf_write_fd(&k->out, k->fd);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			smtpd_milter_fail(k, false, "warning: milter %s: error writing command: %s",
			    k->conf.endpoint, strerror(errno));
			return;
		}
	}
	(void)evloop_io_set(k->ms->s->srv->loop, &k->io,
	    EV_READ | (buf_len(&k->out) > 0 ? EV_WRITE : 0));
}

/* Frames without replies pile up (SMFIP_NR_HDR, SMFIP_NR_BODY): past one
 * frame's worth, wait until the socket took them (bounded memory). */
static bool
smtpd_milter_backlog(struct smtpd_milter_conn *k)
{
	if (buf_len(&k->out) <= MILTER_FRAME_MAX)
		return false;
	smtpd_milter_flush(k);
	if (k->fd < 0 || buf_len(&k->out) <= MILTER_FRAME_MAX)
		return false;
	k->waiting = true;
	k->draining = true;
	k->waiting_for = MILTER_CMD_BODY;
	evloop_timer_start(k->ms->s->srv->loop, &k->timer, k->content_ms);
	return true;
}

/* ---- macros ---- */

static const char *
smtpd_milter_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : NULL;
}

/* The value of macro name ("i", "{auth_type}") or NULL when undefined
 * (Postfix then leaves it out). */
static const char *
smtpd_milter_macro(struct smtpd_milter_sess *ms, const char *name, char *tmp, size_t tmpsz)
{
	struct smtpd_session *s = ms->s;
	const struct config *cfg = s->srv->cfg;
	const char *version, *cipher;
	char bare[64];
	size_t len = strlen(name);
	int bits;

	if (len >= 2 && name[0] == '{' && name[len - 1] == '}') {
		if (len - 2 >= sizeof(bare))
			return NULL;
		memcpy(bare, name + 1, len - 2);
		bare[len - 2] = '\0';
	} else {
		snprintf(bare, sizeof(bare), "%s", name);
	}
	if (strcmp(bare, "i") == 0)
		return s->msg != NULL ? spool_msg_id(s->msg) : NULL;
	if (strcmp(bare, "j") == 0)
		return s->srv->hostname;
	if (strcmp(bare, "_") == 0) {
		snprintf(tmp, tmpsz, "%s [%s]", s->client_name, s->client_addr);
		return tmp;
	}
	if (strcmp(bare, "v") == 0)
		return config_str(cfg, P_MILTER_MACRO_V);
	if (strcmp(bare, "daemon_name") == 0)
		return config_str(cfg, P_MILTER_MACRO_DAEMON_NAME);
	if (strcmp(bare, "daemon_addr") == 0)
		return s->server_addr[0] ? s->server_addr : NULL;
	if (strcmp(bare, "daemon_port") == 0 || strcmp(bare, "client_port") == 0) {
		snprintf(tmp, tmpsz, "%u", bare[0] == 'd' ? s->server_port : s->client_port);
		return tmp;
	}
	if (strcmp(bare, "client_addr") == 0)
		return s->client_addr;
	if (strcmp(bare, "client_name") == 0)
		return s->client_name;
	if (strcmp(bare, "client_ptr") == 0)
		return s->reverse_name;
	if (strcmp(bare, "tls_version") == 0 || strcmp(bare, "cipher") == 0 ||
	    strcmp(bare, "cipher_bits") == 0) {
		if (!smtpd_tls_describe(s, &version, &cipher, &bits))
			return NULL;
		if (bare[0] == 't')
			return version;
		if (strcmp(bare, "cipher") == 0)
			return cipher;
		snprintf(tmp, tmpsz, "%d", bits);
		return tmp;
	}
	if (strcmp(bare, "auth_type") == 0)
		return s->sasl_method[0] ? s->sasl_method : NULL;
	if (strcmp(bare, "auth_authen") == 0)
		return s->sasl_username[0] ? s->sasl_username : NULL;
	if (strcmp(bare, "mail_addr") == 0)
		return s->env.sender;
	if (strcmp(bare, "mail_host") == 0)
		return s->env.sender != NULL ? smtpd_milter_domain(s->env.sender) : NULL;
	if (strcmp(bare, "rcpt_addr") == 0)
		return ms->rcpt_addr[0] ? ms->rcpt_addr : NULL;
	if (strcmp(bare, "rcpt_host") == 0)
		return ms->rcpt_addr[0] ? smtpd_milter_domain(ms->rcpt_addr) : NULL;
	return NULL;
}

/* The macro names of stage for k: the filter's list, else ours. */
static void
smtpd_milter_macro_names(struct smtpd_milter_conn *k, enum milter_stage stage,
    char *names, size_t namesz)
{
	static const enum config_param lists[MILTER_STAGE_COUNT] = {
		[MILTER_STAGE_CONNECT] = P_MILTER_CONNECT_MACROS,
		[MILTER_STAGE_HELO] = P_MILTER_HELO_MACROS,
		[MILTER_STAGE_MAIL] = P_MILTER_MAIL_MACROS,
		[MILTER_STAGE_RCPT] = P_MILTER_RCPT_MACROS,
		[MILTER_STAGE_DATA] = P_MILTER_DATA_MACROS,
		[MILTER_STAGE_EOM] = P_MILTER_END_OF_DATA_MACROS,
		[MILTER_STAGE_EOH] = P_MILTER_END_OF_HEADER_MACROS,
	};
	const struct config_list *l;
	size_t i, used = 0;
	int w;

	names[0] = '\0';
	if (k->macros[stage] != NULL) {
		snprintf(names, namesz, "%s", k->macros[stage]);
		return;
	}
	l = config_list(k->ms->s->srv->cfg, lists[stage]);
	for (i = 0; i < l->n && used < namesz; i++) {
		w = snprintf(names + used, namesz - used, "%s%s", used ? " " : "", l->items[i]);
		if (w < 0 || (size_t)w >= namesz - used)
			break;
		used += (size_t)w;
	}
}

/* Queue the D frame of stage for k (nothing when no macro is defined). */
static void
smtpd_milter_send_macros(struct smtpd_milter_conn *k, char cmd, enum milter_stage stage)
{
	char names[1024], *tok, *save = NULL;
	char tmp[SMTPD_MILTER_MACROS_MAX][SMTPD_MILTER_TMP_MAX];
	const char *nv[SMTPD_MILTER_MACROS_MAX], *vv[SMTPD_MILTER_MACROS_MAX], *val;
	size_t n = 0;

	smtpd_milter_macro_names(k, stage, names, sizeof(names));
	for (tok = strtok_r(names, " ,\t", &save); tok != NULL && n < SMTPD_MILTER_MACROS_MAX;
	     tok = strtok_r(NULL, " ,\t", &save)) {
		val = smtpd_milter_macro(k->ms, tok, tmp[n], sizeof(tmp[n]));
		if (val == NULL)
			continue;
		nv[n] = tok;
		vv[n] = val;
		n++;
	}
	if (n > 0)
		smtpd_milter_queued(k, milter_proto_macros(&k->out, cmd, nv, vv, n));
}

/* ---- connecting and negotiating ---- */

/* The protocol steps a version may negotiate (Postfix's milter8.c). */
static uint32_t
smtpd_milter_version_mask(uint32_t version)
{
	switch (version) {
	case 2: return MILTER_P_V2;
	case 3: return MILTER_P_V3;
	case 4: return MILTER_P_V4;
	default: return MILTER_P_V6;
	}
}

static void
smtpd_milter_timeout(struct ev_timer *t)
{
	struct smtpd_milter_conn *k = t->arg;
	struct smtpd_milter_sess *ms = k->ms;
	bool was_waiting = k->waiting;

	if (k->st == SMTPD_MILTER_CONNECTING)
		smtpd_milter_fail(k, false, "warning: connect to Milter service %s: %s",
		    k->conf.endpoint, strerror(ETIMEDOUT));
	else
		smtpd_milter_fail(k, false, "warning: milter %s: can't read %s reply packet header: %s",
		    k->conf.endpoint, milter_proto_cmd_name(k->waiting_for), strerror(ETIMEDOUT));
	k->waiting = false;
	if (was_waiting)
		smtpd_milter_run(ms);
}

static void
smtpd_milter_wait(struct smtpd_milter_conn *k, char event, int64_t ms)
{
	k->waiting = true;
	k->waiting_for = event;
	evloop_timer_start(k->ms->s->srv->loop, &k->timer, ms);
}

/* Open the connection and queue the OPTNEG; false when it failed at once
 * (k is then in ERROR). */
static bool
smtpd_milter_open(struct smtpd_milter_conn *k)
{
	struct evloop *loop = k->ms->s->srv->loop;
	struct sockaddr_storage ss;
	const char *why = NULL;
	unsigned sslen;
	int fd;

	if (smtpd_policy_endpoint(k->conf.endpoint, &ss, &sslen, &why) < 0) {
		smtpd_milter_fail(k, true, "warning: milter %s: %s", k->conf.endpoint, why);
		return false;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || (connect(fd, (struct sockaddr *)&ss, sslen) < 0 && errno != EINPROGRESS)) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		smtpd_milter_fail(k, false, "warning: connect to Milter service %s: %s",
		    k->conf.endpoint, strerror(e));
		return false;
	}
	if (evloop_io_add(loop, &k->io, fd, EV_WRITE, smtpd_milter_conn_io, k) < 0) {
		close(fd);
		smtpd_milter_fail(k, false, "warning: milter %s: epoll: %s", k->conf.endpoint,
		    strerror(errno));
		return false;
	}
	k->fd = fd;
	k->st = SMTPD_MILTER_CONNECTING;
	smtpd_milter_queued(k, milter_proto_optneg(&k->out, k->version, MILTER_ACT_ALL,
	    smtpd_milter_version_mask(k->version)));
	smtpd_milter_wait(k, MILTER_CMD_OPTNEG, k->connect_ms);
	return true;
}

static void
smtpd_milter_optneg_done(struct smtpd_milter_conn *k, const struct milter_reply *r)
{
	size_t i;

	if (r->version > k->version || r->version < 2) {
		smtpd_milter_fail(k, false, "warning: milter %s: protocol version %u conflict with "
		    "MTA protocol version %u", k->conf.endpoint, r->version, k->version);
		return;
	}
	if ((r->actions & MILTER_ACT_ALL) != r->actions) {
		smtpd_milter_fail(k, false, "warning: milter %s: request mask 0x%x conflict with MTA "
		    "request mask 0x%x", k->conf.endpoint, r->actions, MILTER_ACT_ALL);
		return;
	}
	k->actions = r->actions;
	k->events = r->protocol;
	k->np_mask = SMTPD_MILTER_NOSEND & ~smtpd_milter_version_mask(k->version);
	for (i = 0; i < MILTER_STAGE_COUNT; i++) {
		if (r->macros[i] == NULL)
			continue;
		/* The filter's list replaces ours; separators are read
		 * when it is used. */
		free(k->macros[i]);
		k->macros[i] = strdup(r->macros[i]);
		if (k->macros[i] == NULL)
			fatal("out of memory (milter macros)");
	}
	k->st = SMTPD_MILTER_READY;
}

/* ---- replies ---- */

/* SMFIR_REPLYCODE text, checked; sendmail doubles '%' (it uses the text
 * as a format), Postfix undoubles: so do we. */
static bool
smtpd_milter_replycode(struct smtpd_milter_conn *k, const char *text)
{
	struct smtpd_milter_verdict *v = &k->ms->v;
	const char *why;
	size_t i, o = 0;
	int code;

	if (milter_proto_replycode_check(text, &code, &why) < 0) {
		smtpd_milter_fail(k, true, "warning: milter %s: %s: %.100s", k->conf.endpoint, why, text);
		return false;
	}
	for (i = 0; text[i] != '\0' && o + 1 < sizeof(v->reply); i++) {
		if (text[i] == '%' && text[i + 1] == '%')
			i++;
		else if (text[i] == '%')
			continue;
		v->reply[o++] = text[i];
	}
	v->reply[o] = '\0';
	v->kind = SMTPD_MILTER_REJECT;
	return true;
}

static bool smtpd_milter_edit(struct smtpd_milter_conn *k, const struct milter_reply *r);

/* The connection and HELO events decide for the whole session. */
static bool
smtpd_milter_conn_event(char event)
{
	return event == MILTER_CMD_CONNECT || event == MILTER_CMD_HELO;
}

/* A final reply to the event in progress: record it, and say whether
 * the event stops here (true) or goes on to the next milter (false). */
static bool
smtpd_milter_final(struct smtpd_milter_conn *k, const struct milter_reply *r)
{
	struct smtpd_milter_sess *ms = k->ms;
	bool conn = smtpd_milter_conn_event(k->waiting_for);

	switch (r->cmd) {
	case MILTER_REPLY_ACCEPT:
		k->st = conn ? SMTPD_MILTER_ACCEPT_CON : SMTPD_MILTER_ACCEPT_MSG;
		if (conn)
			smtpd_milter_close(k);	/* libmilter closes its side */
		return false;
	case MILTER_REPLY_DISCARD:
		if (conn) {
			log_warning("milter %s: DISCARD action is not allowed for connect or helo",
			    k->conf.endpoint);
			return false;
		}
		k->st = SMTPD_MILTER_ACCEPT_MSG;
		ms->v.kind = SMTPD_MILTER_DISCARD;
		return true;
	case MILTER_REPLY_REJECT:
		smtpd_milter_set_reply(&ms->v, SMTPD_MILTER_REJECT, "550 5.7.1 Command rejected");
		break;
	case MILTER_REPLY_TEMPFAIL:
		smtpd_milter_set_reply(&ms->v, SMTPD_MILTER_REJECT,
		    "451 4.7.1 Service unavailable - try again later");
		break;
	case MILTER_REPLY_SHUTDOWN:
		smtpd_milter_set_reply(&ms->v, SMTPD_MILTER_SHUTDOWN,
		    "421 4.7.0 Server closing connection");
		break;
	case MILTER_REPLY_REPLYCODE:
		if (!smtpd_milter_replycode(k, r->s1)) {
			ms->v.kind = k->def.kind;
			memcpy(ms->v.reply, k->def.reply, sizeof(ms->v.reply));
			ms->v.quarantine |= k->def.quarantine;
			return k->def.kind != SMTPD_MILTER_CONTINUE;
		}
		break;
	default:
		panic("smtpd_milter_final: reply %c", r->cmd);
	}
	/* Refused at connect or HELO: every later event gets the same. */
	if (conn) {
		k->st = SMTPD_MILTER_REJECT_CON;
		k->def = ms->v;
		smtpd_milter_close(k);
	}
	return true;
}

/* Is a reply to event part of the content (content_timeout)? */
static bool
smtpd_milter_content_event(char event)
{
	return event == MILTER_CMD_HEADER || event == MILTER_CMD_EOH || event == MILTER_CMD_BODY ||
	    event == MILTER_CMD_EOB;
}

/* Handle one reply of k. k->waiting stays set while more replies are due
 * (progress, edits, quarantine at the end of the message). */
static void
smtpd_milter_reply_in(struct smtpd_milter_conn *k, const struct milter_reply *r)
{
	struct smtpd_milter_sess *ms = k->ms;
	char event = k->waiting_for;
	bool more = false;

	if (++ms->replies > SMTPD_MILTER_REPLIES_MAX) {
		smtpd_milter_fail(k, false, "warning: milter %s: too many replies to %s",
		    k->conf.endpoint, milter_proto_cmd_name(event));
	} else if (r->cmd == MILTER_REPLY_PROGRESS) {
		evloop_timer_start(ms->s->srv->loop, &k->timer,
		    smtpd_milter_content_event(event) ? k->content_ms : k->command_ms);
		more = true;
	} else if (r->cmd == MILTER_REPLY_CONTINUE) {
		/* the next frame, or the next milter */
	} else if (r->cmd == MILTER_REPLY_SKIP) {
		k->skip_event = event;
	} else if (r->cmd == MILTER_REPLY_QUARANTINE && event == MILTER_CMD_EOB) {
		/* Sendmail 8.13: no change of state; the verdict follows. */
		ms->v.quarantine = true;
		more = true;
	} else if (strchr("adrt4y", r->cmd) != NULL) {
		if (smtpd_milter_final(k, r))
			ms->cur = ms->n;	/* decided: the others are not asked */
		else if (k->st != SMTPD_MILTER_READY)
			k->phase = SMTPD_MILTER_PH_DONE;
	} else if (event == MILTER_CMD_EOB && smtpd_milter_edit(k, r)) {
		more = k->st != SMTPD_MILTER_ERROR;
	} else if (k->st != SMTPD_MILTER_ERROR) {
		smtpd_milter_fail(k, false, "warning: milter %s: unexpected filter response %s after "
		    "event %s", k->conf.endpoint, milter_proto_reply_name(r->cmd),
		    milter_proto_cmd_name(event));
	}
	if (more)
		return;
	k->waiting = false;
	evloop_timer_stop(ms->s->srv->loop, &k->timer);
}

/* Read and decode what k sent. */
static void
smtpd_milter_read(struct smtpd_milter_conn *k)
{
	struct smtpd_milter_sess *ms = k->ms;
	struct milter_reply r;
	const char *why = NULL;
	size_t used;
	ssize_t n;
	enum milter_proto_result d;

	n = buf_read_fd(&k->in, k->fd, SMTPD_MILTER_READ_CHUNK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		bool was = k->waiting;

		if (was)
			smtpd_milter_fail(k, false, "warning: milter %s: can't read %s reply packet "
			    "header: %s", k->conf.endpoint, milter_proto_cmd_name(k->waiting_for),
			    n == 0 ? "Connection closed by filter" : strerror(errno));
		else
			smtpd_milter_fail(k, false, "warning: milter %s: connection closed by filter",
			    k->conf.endpoint);
		k->waiting = false;
		if (was)
			smtpd_milter_run(ms);
		return;
	}
	while (k->fd >= 0 && buf_len(&k->in) > 0) {
		if (!k->waiting) {
			smtpd_milter_fail(k, false, "warning: milter %s: data from the filter when no "
			    "reply was due", k->conf.endpoint);
			return;
		}
		d = milter_proto_decode(buf_data(&k->in), buf_len(&k->in),
		    k->st == SMTPD_MILTER_NEGOTIATING, &r, &used, &why);
		if (d == MILTER_PROTO_MORE)
			break;
		if (d == MILTER_PROTO_BAD) {
			smtpd_milter_fail(k, false, "warning: milter %s: %s after %s", k->conf.endpoint,
			    why, milter_proto_cmd_name(k->waiting_for));
			k->waiting = false;
			break;
		}
		if (k->st == SMTPD_MILTER_NEGOTIATING) {
			k->waiting = false;
			evloop_timer_stop(ms->s->srv->loop, &k->timer);
			smtpd_milter_optneg_done(k, &r);
		} else {
			smtpd_milter_reply_in(k, &r);
		}
		if (k->fd >= 0)
			buf_consume(&k->in, used);
		if (!k->waiting)
			break;
	}
	if (!k->waiting)
		smtpd_milter_run(ms);
}

static void
smtpd_milter_conn_io(struct ev_io *io, unsigned revents)
{
	struct smtpd_milter_conn *k = io->arg;
	socklen_t elen = sizeof(int);
	int err = 0;

	if (k->st == SMTPD_MILTER_CONNECTING) {
		if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err != 0) {
			smtpd_milter_fail(k, false, "warning: connect to Milter service %s: %s",
			    k->conf.endpoint, strerror(err));
			k->waiting = false;
			smtpd_milter_run(k->ms);
			return;
		}
		k->st = SMTPD_MILTER_NEGOTIATING;
	}
	if (revents & EV_WRITE) {
		smtpd_milter_flush(k);
		if (k->fd < 0 || (k->draining && buf_len(&k->out) <= MILTER_FRAME_MAX)) {
			bool was = k->waiting;

			k->waiting = k->draining = false;
			evloop_timer_stop(k->ms->s->srv->loop, &k->timer);
			if (was)
				smtpd_milter_run(k->ms);
			return;
		}
	}
	if (revents & EV_READ)
		smtpd_milter_read(k);
}

/* ---- the message: headers, edits ---- */

/* The field name's length if line is "name:" or "name WSP :" (RFC 5322
 * 2.2: printable ASCII but ':'), else 0. */
static size_t
smtpd_milter_field_name(const char *line, size_t len)
{
	size_t i = 0, n;

	while (i < len && line[i] > ' ' && line[i] < 0x7f && line[i] != ':')
		i++;
	n = i;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return n > 0 && i < len && line[i] == ':' ? n : 0;
}

static void
smtpd_milter_headers_free(struct smtpd_milter_sess *ms)
{
	size_t i;

	for (i = 0; i < ms->nhdrs; i++)
		free(ms->hdrs[i].raw);
	free(ms->hdrs);
	ms->hdrs = NULL;
	ms->nhdrs = 0;
}

/* Put a header at position at (0 = first). raw is copied. */
static bool
smtpd_milter_header_insert(struct smtpd_milter_sess *ms, size_t at, const char *raw, size_t len,
    size_t name_len, bool ours)
{
	struct smtpd_milter_header *h;

	if (ms->nhdrs >= SMTPD_MILTER_HEADER_COUNT_MAX)
		return false;
	h = realloc(ms->hdrs, (ms->nhdrs + 1) * sizeof(*h));
	if (h == NULL)
		fatal("out of memory (milter headers)");
	ms->hdrs = h;
	if (at > ms->nhdrs)
		at = ms->nhdrs;
	memmove(&h[at + 1], &h[at], (ms->nhdrs - at) * sizeof(*h));
	h[at].raw = malloc(len);
	if (h[at].raw == NULL)
		fatal("out of memory (milter header)");
	memcpy(h[at].raw, raw, len);
	h[at].len = len;
	h[at].name_len = name_len;
	h[at].ours = ours;
	ms->nhdrs++;
	return true;
}

/* Find the end of the header section in (p, len) read from offset 0 and
 * split it into fields. false: it does not fit (or has too many fields). */
static bool
smtpd_milter_headers_parse(struct smtpd_milter_sess *ms, const char *p, size_t len, bool eof,
    uint64_t content_off)
{
	size_t pos = 0, start = 0, name = 0, eol;
	bool in_field = false;
	const char *nl;

	for (;;) {
		nl = pos < len ? memchr(p + pos, '\n', len - pos) : NULL;
		if (nl == NULL && !eof)
			return false;		/* the section does not fit */
		eol = nl != NULL ? (size_t)(nl - p) + 1 : len;
		/* A continuation line belongs to the field before it. */
		if (in_field && pos < len && (p[pos] == ' ' || p[pos] == '\t')) {
			pos = eol;
			if (pos < len || !eof)
				continue;
		}
		if (in_field && !smtpd_milter_header_insert(ms, ms->nhdrs, p + start, pos - start, name,
		    start < content_off))
			return false;
		in_field = false;
		if (pos >= len) {
			ms->body_off = len;	/* headers only, no body */
			return true;
		}
		if ((eol - pos == 2 && p[pos] == '\r') || eol - pos == 1) {
			ms->blank_line = true;
			ms->body_off = eol;
			return true;
		}
		name = smtpd_milter_field_name(p + pos, eol - pos);
		if (name == 0) {
			ms->body_off = pos;	/* not a header: the body starts here */
			return true;
		}
		start = pos;
		in_field = true;
		pos = eol;
	}
}

/*
 * Read the header section of the message file.
 * XXX pread() on the loop thread, as the body chunks below: the file was
 * just written and sits in the page cache; Postfix's cleanup reads its
 * queue file the same way (doc/milter.md, "Non-blocking").
 */
static bool
smtpd_milter_headers_load(struct smtpd_milter_sess *ms, uint64_t content_off)
{
	struct buf b;
	ssize_t n = 1;
	char *w;
	bool ok;

	buf_init(&b, SMTPD_MILTER_HEADERS_MAX);
	while (buf_room(&b) > 0 && n > 0) {
		size_t want = buf_room(&b) < 65536 ? buf_room(&b) : 65536;

		w = buf_reserve(&b, want);
		n = pread(ms->fd, w, want, (off_t)buf_len(&b));
		if (n < 0) {
			buf_free(&b);
			return false;
		}
		buf_commit(&b, (size_t)n);
		if (memmem(buf_data(&b), buf_len(&b), "\r\n\r\n", 4) != NULL ||
		    (buf_len(&b) == 2 && memcmp(buf_data(&b), "\r\n", 2) == 0))
			break;
	}
	ok = smtpd_milter_headers_parse(ms, buf_data(&b), buf_len(&b), n == 0 || buf_room(&b) > 0,
	    content_off);
	buf_free(&b);
	return ok;
}

/* A header from a filter as a field of ours: "name:" + (a space unless
 * the filter sends leading space itself) + value, every line ending in
 * CR LF (sendmail separates a folded value's lines with LF). */
static bool
smtpd_milter_header_make(struct smtpd_milter_conn *k, const char *name, const char *value,
    struct buf *out)
{
	enum buf_result r;
	size_t i;

	for (i = 0; name[i] != '\0'; i++)
		if (name[i] <= ' ' || name[i] >= 0x7f || name[i] == ':')
			return false;
	if (i == 0)
		return false;
	r = buf_append_printf(out, "%s:%s", name, (k->events & MILTER_P_HDR_LEADSPC) ? "" : " ");
	for (i = 0; r == BUF_OK && value[i] != '\0'; i++) {
		if (value[i] == '\r')
			continue;	/* CR only in CR LF, and we add those */
		r = value[i] == '\n' ? buf_append(out, "\r\n", 2) : buf_append_char(out, value[i]);
	}
	if (r == BUF_OK)
		r = buf_append(out, "\r\n", 2);
	return r == BUF_OK;
}

/* The index-th field called name among the client's (1-based), or nhdrs. */
static size_t
smtpd_milter_header_find(struct smtpd_milter_sess *ms, const char *name, uint32_t index)
{
	size_t i, nlen = strlen(name);

	for (i = 0; i < ms->nhdrs; i++) {
		struct smtpd_milter_header *h = &ms->hdrs[i];

		if (!h->ours && h->name_len == nlen && strncasecmp(h->raw, name, nlen) == 0 &&
		    --index == 0)
			return i;
	}
	return ms->nhdrs;
}

/* Header edits (h, i, m). false: a malformed edit (a conf error). */
static bool
smtpd_milter_edit_header(struct smtpd_milter_conn *k, const struct milter_reply *r)
{
	struct smtpd_milter_sess *ms = k->ms;
	struct buf field;
	size_t at = ms->nhdrs, i;
	uint32_t index = r->index;
	bool ok;

	buf_init(&field, SMTPD_MILTER_HEADERS_MAX);
	if (!smtpd_milter_header_make(k, r->s1, r->s2, &field)) {
		buf_free(&field);
		return false;
	}
	if (r->cmd == MILTER_REPLY_CHGHEADER) {
		/* Index 1 is the first field of that name; sendmail takes 0
		 * as 1 too. Not found: the field is added (libmilter's
		 * smfi_chgheader). An empty value deletes. */
		at = smtpd_milter_header_find(ms, r->s1, index == 0 ? 1 : index);
		if (at < ms->nhdrs) {
			free(ms->hdrs[at].raw);
			memmove(&ms->hdrs[at], &ms->hdrs[at + 1], (ms->nhdrs - at - 1) * sizeof(ms->hdrs[0]));
			ms->nhdrs--;
		}
		if (r->s2[0] == '\0') {
			ms->edited = true;
			buf_free(&field);
			return true;
		}
	} else if (r->cmd == MILTER_REPLY_INSHEADER) {
		/* Postfix: index 0 is the top of the message as it will be
		 * delivered, our own Received: included. */
		at = index;
	} else {
		/* Added at the end of the header section. */
		for (i = 0; i < ms->nhdrs; i++)
			at = i + 1;
	}
	ok = smtpd_milter_header_insert(ms, at, buf_data(&field), buf_len(&field), strlen(r->s1),
	    false);
	buf_free(&field);
	if (!ok)
		ms->edit_failed = true;
	ms->edited = true;
	return true;
}

/* An address from a filter, without its angle brackets. */
static void
smtpd_milter_bare_addr(const char *in, char *out, size_t outsz)
{
	size_t len = strlen(in);

	while (len > 0 && (*in == ' ' || *in == '\t'))
		in++, len--;
	if (len >= 2 && in[0] == '<' && in[len - 1] == '>') {
		in++;
		len -= 2;
	}
	if (len >= outsz)
		len = outsz - 1;
	memcpy(out, in, len);
	out[len] = '\0';
}

/* Envelope edits (e, +, 2, -). */
static bool
smtpd_milter_edit_envelope(struct smtpd_milter_conn *k, const struct milter_reply *r)
{
	struct smtpd_session *s = k->ms->s;
	char addr[MAILADDR_PATH_MAX + 1];
	size_t i;

	smtpd_milter_bare_addr(r->s1, addr, sizeof(addr));
	if (r->cmd == MILTER_REPLY_CHGFROM) {
		log_info("%s: milter %s: sender changed from <%s> to <%s>", spool_msg_id(s->msg),
		    k->conf.endpoint, s->env.sender ? s->env.sender : "", addr);
		envelope_set(&s->env.sender, addr);
		return true;
	}
	if (addr[0] == '\0')
		return false;
	if (r->cmd == MILTER_REPLY_DELRCPT) {
		for (i = s->env.nrcpt; i > 0; i--)
			if (strcasecmp(s->env.rcpts[i - 1].addr, addr) == 0)
				envelope_remove_rcpt(&s->env, i - 1);
		return true;
	}
	envelope_add_rcpt(&s->env, addr, NULL, 0);
	return true;
}

/* A modification request at the end of the message; false when it is not
 * one (the caller then calls the reply unexpected). Edits are applied as
 * they come, so index-based header edits see the earlier ones. */
static bool
smtpd_milter_edit(struct smtpd_milter_conn *k, const struct milter_reply *r)
{
	struct smtpd_milter_sess *ms = k->ms;
	bool ok = true;

	if (r->cmd != MILTER_REPLY_REPLBODY && ms->body_replaced)
		k->body_lockout = true;
	switch (r->cmd) {
	case MILTER_REPLY_ADDHEADER:
	case MILTER_REPLY_INSHEADER:
	case MILTER_REPLY_CHGHEADER:
		ok = smtpd_milter_edit_header(k, r);
		break;
	case MILTER_REPLY_CHGFROM:
	case MILTER_REPLY_ADDRCPT:
	case MILTER_REPLY_ADDRCPT_PAR:
	case MILTER_REPLY_DELRCPT:
		ok = smtpd_milter_edit_envelope(k, r);
		break;
	case MILTER_REPLY_REPLBODY:
		/* Postfix cannot mix body chunks with other edits either. */
		if (k->body_lockout) {
			smtpd_milter_fail(k, true, "warning: milter %s: body replacement requests can't "
			    "currently be mixed with other requests", k->conf.endpoint);
			return true;
		}
		if (!ms->body_replaced) {
			buf_reset(&ms->body);
			ms->body_replaced = true;
		}
		if (buf_append(&ms->body, r->data, r->data_len) != BUF_OK)
			ms->edit_failed = true;
		break;
	default:
		return false;
	}
	if (!ok)
		smtpd_milter_fail(k, true, "warning: milter %s: malformed %s request", k->conf.endpoint,
		    milter_proto_reply_name(r->cmd));
	return true;
}

/* Write the edited message: the header fields, then the body (the
 * filter's, or the original copied from the old file). */
static enum spool_result
smtpd_milter_rewrite(struct smtpd_milter_sess *ms)
{
	struct spool_msg *m = ms->s->msg;
	char chunk[65536];
	uint64_t pos = ms->body_off;
	size_t i;
	ssize_t n;

	if (spool_msg_rewrite_begin(m) != SPOOL_OK)
		return SPOOL_ERROR;
	for (i = 0; i < ms->nhdrs; i++)
		(void)spool_msg_write(m, ms->hdrs[i].raw, ms->hdrs[i].len);
	if (ms->blank_line || (ms->body_replaced && buf_len(&ms->body) > 0))
		(void)spool_msg_write(m, "\r\n", 2);
	if (ms->body_replaced) {
		const char *b = buf_data(&ms->body);
		size_t len = buf_len(&ms->body), run = 0;

		/* The filter's lines end in CR LF; a bare LF becomes one. */
		for (i = 0; i < len; i++) {
			if (b[i] != '\n' || (i > 0 && b[i - 1] == '\r'))
				continue;
			(void)spool_msg_write(m, b + run, i - run);
			(void)spool_msg_write(m, "\r", 1);
			run = i;
		}
		(void)spool_msg_write(m, b + run, len - run);
	} else {
		while ((n = pread(ms->fd, chunk, sizeof(chunk), (off_t)pos)) > 0) {
			(void)spool_msg_write(m, chunk, (size_t)n);
			pos += (uint64_t)n;
		}
		if (n < 0)
			return SPOOL_ERROR;
	}
	return spool_msg_rewrite_end(m);
}

/* ---- the engine ---- */

enum smtpd_milter_step {
	SMTPD_MILTER_STEP_WAIT,		/* frames written, a reply is due */
	SMTPD_MILTER_STEP_NEXT,		/* this milter is done with the event */
	SMTPD_MILTER_STEP_STOP,		/* the verdict is set: ask no one else */
};

/* The "do not send" and "no reply" bits of an event. */
static void
smtpd_milter_event_bits(char event, uint32_t *no, uint32_t *nr)
{
	static const struct {
		char event;
		uint32_t no, nr;
	} t[] = {
		{ MILTER_CMD_CONNECT, MILTER_P_NOCONNECT, MILTER_P_NR_CONN },
		{ MILTER_CMD_HELO, MILTER_P_NOHELO, MILTER_P_NR_HELO },
		{ MILTER_CMD_MAIL, MILTER_P_NOMAIL, MILTER_P_NR_MAIL },
		{ MILTER_CMD_RCPT, MILTER_P_NORCPT, MILTER_P_NR_RCPT },
		{ MILTER_CMD_DATA, MILTER_P_NODATA, MILTER_P_NR_DATA },
		{ MILTER_CMD_HEADER, MILTER_P_NOHDRS, MILTER_P_NR_HDR },
		{ MILTER_CMD_EOH, MILTER_P_NOEOH, MILTER_P_NR_EOH },
		{ MILTER_CMD_BODY, MILTER_P_NOBODY, MILTER_P_NR_BODY },
	};
	size_t i;

	*no = *nr = 0;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].event == event) {
			*no = t[i].no;
			*nr = t[i].nr;
		}
}

/* A milter in REJECT_CON or ERROR: its standing reply decides. */
static enum smtpd_milter_step
smtpd_milter_apply_default(struct smtpd_milter_conn *k)
{
	struct smtpd_milter_sess *ms = k->ms;

	ms->v.quarantine |= k->def.quarantine;
	if (k->def.kind == SMTPD_MILTER_CONTINUE)
		return SMTPD_MILTER_STEP_NEXT;
	ms->v.kind = k->def.kind;
	memcpy(ms->v.reply, k->def.reply, sizeof(ms->v.reply));
	return SMTPD_MILTER_STEP_STOP;
}

/* The event frame itself. */
static void
smtpd_milter_event_frame(struct smtpd_milter_conn *k, char event)
{
	struct smtpd_milter_sess *ms = k->ms;
	struct smtpd_session *s = ms->s;
	const char *argv[SMTPD_MILTER_ARGV_MAX + 1], *p = ms->args;
	char host[sizeof(s->client_name) + sizeof(s->client_addr) + 2];
	unsigned char a[16];
	size_t i;

	switch (event) {
	case MILTER_CMD_CONNECT:
		/* Postfix's form of an unknown name: [address]. */
		if (strcmp(s->client_name, "unknown") == 0)
			snprintf(host, sizeof(host), "[%s]", s->client_addr);
		else
			snprintf(host, sizeof(host), "%s", s->client_name);
		smtpd_milter_queued(k, milter_proto_connect(&k->out, host,
		    inet_pton(AF_INET, s->client_addr, a) == 1 ? MILTER_FAMILY_INET :
		    inet_pton(AF_INET6, s->client_addr, a) == 1 ? MILTER_FAMILY_INET6 :
		    MILTER_FAMILY_UNKNOWN, (uint16_t)s->client_port, s->client_addr));
		break;
	case MILTER_CMD_HELO:
		argv[0] = s->helo;
		smtpd_milter_queued(k, milter_proto_strings(&k->out, event, argv, 1));
		break;
	case MILTER_CMD_MAIL:
	case MILTER_CMD_RCPT:
		for (i = 0; i < ms->nargs; i++, p += strlen(p) + 1)
			argv[i] = p;
		smtpd_milter_queued(k, milter_proto_strings(&k->out, event, argv, ms->nargs));
		break;
	default:
		smtpd_milter_queued(k, milter_proto_empty(&k->out, event));
		break;
	}
}

/*
 * Send one event to k (macros of stage, then the event unless the filter
 * asked not to get it) and say whether a reply is due.
 */
static enum smtpd_milter_step
smtpd_milter_send_event(struct smtpd_milter_conn *k, char event, enum milter_stage stage,
    int64_t timeout_ms)
{
	uint32_t no, nr;

	if (event == MILTER_CMD_MAIL)
		k->in_tx = true;		/* SMFIC_ABORT when it ends */
	smtpd_milter_event_bits(event, &no, &nr);
	if (k->np_mask & no)
		return SMTPD_MILTER_STEP_NEXT;	/* not in the protocol version we speak */
	if (k->skip_event != 0 && k->skip_event != event)
		k->skip_event = 0;
	if (k->skip_event == event)
		return SMTPD_MILTER_STEP_NEXT;
	smtpd_milter_send_macros(k, event, stage);
	if (k->events & no)
		return SMTPD_MILTER_STEP_NEXT;
	smtpd_milter_event_frame(k, event);
	if (k->events & nr)
		return SMTPD_MILTER_STEP_NEXT;
	smtpd_milter_wait(k, event, timeout_ms);
	return SMTPD_MILTER_STEP_WAIT;
}

/* One header field to k: name and value, as sendmail presents them. */
static enum smtpd_milter_step
smtpd_milter_send_header(struct smtpd_milter_conn *k, const struct smtpd_milter_header *h)
{
	struct buf nv;
	const char *argv[2];
	size_t i = h->name_len, vstart;
	char *d;
	uint32_t no, nr;
	enum buf_result r;

	smtpd_milter_event_bits(MILTER_CMD_HEADER, &no, &nr);
	smtpd_milter_send_macros(k, MILTER_CMD_HEADER, MILTER_STAGE_EOH);
	buf_init(&nv, h->len + 2);
	r = buf_append(&nv, h->raw, h->name_len);
	if (r == BUF_OK)
		r = buf_append_char(&nv, '\0');
	while (i < h->len && h->raw[i] != ':')
		i++;
	i++;
	/* Sendmail eats one space after the colon, unless the filter asked
	 * for the leading space (SMFIP_HDR_LEADSPC). */
	if (!(k->events & MILTER_P_HDR_LEADSPC) && i < h->len && h->raw[i] == ' ')
		i++;
	vstart = buf_len(&nv);
	for (; r == BUF_OK && i < h->len; i++)
		if (h->raw[i] != '\r')
			r = buf_append_char(&nv, h->raw[i]);
	if (r != BUF_OK)
		panic("milter header of %zu bytes", h->len);
	/* Drop the field's last LF; the inner ones separate its lines. */
	if (buf_len(&nv) > vstart && buf_data(&nv)[buf_len(&nv) - 1] == '\n')
		buf_truncate(&nv, buf_len(&nv) - 1);
	(void)buf_append_char(&nv, '\0');
	d = buf_data_mut(&nv);
	argv[0] = d;
	argv[1] = d + vstart;
	smtpd_milter_queued(k, milter_proto_strings(&k->out, MILTER_CMD_HEADER, argv, 2));
	buf_free(&nv);
	if (k->events & nr)
		return SMTPD_MILTER_STEP_NEXT;
	smtpd_milter_wait(k, MILTER_CMD_HEADER, k->content_ms);
	return SMTPD_MILTER_STEP_WAIT;
}

/* The next body chunk to k; NEXT when the body is all sent. */
static enum smtpd_milter_step
smtpd_milter_send_body(struct smtpd_milter_conn *k)
{
	struct smtpd_milter_sess *ms = k->ms;
	char chunk[MILTER_BODY_CHUNK];
	uint32_t no, nr;
	ssize_t n;

	smtpd_milter_event_bits(MILTER_CMD_BODY, &no, &nr);
	while (ms->file_size > k->body_pos) {
		if (k->skip_event == MILTER_CMD_BODY)
			return SMTPD_MILTER_STEP_NEXT;
		n = pread(ms->fd, chunk, sizeof(chunk), (off_t)k->body_pos);
		if (n <= 0)
			return SMTPD_MILTER_STEP_NEXT;	/* the file is as long as we saw */
		k->body_pos += (uint64_t)n;
		smtpd_milter_send_macros(k, MILTER_CMD_BODY, MILTER_STAGE_EOM);
		smtpd_milter_queued(k, milter_proto_body(&k->out, chunk, (size_t)n));
		if (!(k->events & nr)) {
			smtpd_milter_wait(k, MILTER_CMD_BODY, k->content_ms);
			return SMTPD_MILTER_STEP_WAIT;
		}
		if (smtpd_milter_backlog(k))
			return SMTPD_MILTER_STEP_WAIT;
	}
	return SMTPD_MILTER_STEP_NEXT;
}

/* The end of the message to k, phase by phase: (DATA for BDAT), the
 * header fields, the end of headers, the body, the end of the body. */
static enum smtpd_milter_step
smtpd_milter_step_content(struct smtpd_milter_conn *k)
{
	struct smtpd_milter_sess *ms = k->ms;
	enum smtpd_milter_step r = SMTPD_MILTER_STEP_NEXT;
	uint32_t no, nr;

	while (r == SMTPD_MILTER_STEP_NEXT && k->phase != SMTPD_MILTER_PH_DONE) {
		if (smtpd_milter_backlog(k))
			return SMTPD_MILTER_STEP_WAIT;
		switch (k->phase) {
		case SMTPD_MILTER_PH_START:
			k->phase = SMTPD_MILTER_PH_HEADERS;
			if (ms->bdat_data)
				r = smtpd_milter_send_event(k, MILTER_CMD_DATA, MILTER_STAGE_DATA,
				    k->command_ms);
			break;
		case SMTPD_MILTER_PH_HEADERS:
			smtpd_milter_event_bits(MILTER_CMD_HEADER, &no, &nr);
			while (k->hdr < ms->nhdrs && ms->hdrs[k->hdr].ours)
				k->hdr++;
			if (k->hdr >= ms->nhdrs || ((k->events | k->np_mask) & no) ||
			    k->skip_event == MILTER_CMD_HEADER)
				k->phase = SMTPD_MILTER_PH_EOH;
			else
				r = smtpd_milter_send_header(k, &ms->hdrs[k->hdr++]);
			break;
		case SMTPD_MILTER_PH_EOH:
			k->phase = SMTPD_MILTER_PH_BODY;
			k->body_pos = ms->body_off;
			r = smtpd_milter_send_event(k, MILTER_CMD_EOH, MILTER_STAGE_EOH, k->content_ms);
			break;
		case SMTPD_MILTER_PH_BODY:
			smtpd_milter_event_bits(MILTER_CMD_BODY, &no, &nr);
			if ((k->events | k->np_mask) & no)
				k->phase = SMTPD_MILTER_PH_EOB;
			else if ((r = smtpd_milter_send_body(k)) == SMTPD_MILTER_STEP_NEXT)
				k->phase = SMTPD_MILTER_PH_EOB;
			break;
		case SMTPD_MILTER_PH_EOB:
			/* The end of the body is always answered. */
			k->phase = SMTPD_MILTER_PH_DONE;
			k->skip_event = 0;
			smtpd_milter_send_macros(k, MILTER_CMD_EOB, MILTER_STAGE_EOM);
			smtpd_milter_queued(k, milter_proto_empty(&k->out, MILTER_CMD_EOB));
			smtpd_milter_wait(k, MILTER_CMD_EOB, k->content_ms);
			return SMTPD_MILTER_STEP_WAIT;
		default:
			break;
		}
	}
	return r;
}

/* Where k stands with the event in progress. */
static enum smtpd_milter_step
smtpd_milter_step(struct smtpd_milter_conn *k)
{
	struct smtpd_milter_sess *ms = k->ms;

	if (k->st == SMTPD_MILTER_CLOSED && ms->event == MILTER_CMD_CONNECT &&
	    k->phase == SMTPD_MILTER_PH_START) {
		if (smtpd_milter_open(k))
			return SMTPD_MILTER_STEP_WAIT;	/* the OPTNEG reply */
	}
	switch (k->st) {
	case SMTPD_MILTER_ERROR:
	case SMTPD_MILTER_REJECT_CON:
		return smtpd_milter_apply_default(k);
	case SMTPD_MILTER_READY:
		break;
	default:
		return SMTPD_MILTER_STEP_NEXT;	/* accepted, or never connected */
	}
	if (ms->event == MILTER_CMD_EOB)
		return smtpd_milter_step_content(k);
	if (k->phase == SMTPD_MILTER_PH_DONE)
		return SMTPD_MILTER_STEP_NEXT;
	k->phase = SMTPD_MILTER_PH_DONE;
	/* milter_connect_timeout covers connect(2) and the negotiation; the
	 * connect event is a command like the others (Postfix). */
	return smtpd_milter_send_event(k, ms->event, ms->stage, k->command_ms);
}

/* The edits of the end of the message go to the file. */
static void
smtpd_milter_content_end(struct smtpd_milter_sess *ms)
{
	/* The milters hear SMFIC_ABORT when the session resets the
	 * transaction after its reply (smtpd_milter_abort), as Postfix's
	 * smtpd ends every transaction. */
	if (ms->v.kind == SMTPD_MILTER_CONTINUE || ms->v.kind == SMTPD_MILTER_DISCARD) {
		if (ms->edit_failed) {
			log_warning("%s: milter edits exceed the limits (%u header bytes, "
			    "message_size_limit)", spool_msg_id(ms->s->msg), SMTPD_MILTER_HEADERS_MAX);
			smtpd_milter_set_reply(&ms->v, SMTPD_MILTER_REJECT, "552 5.3.4 Message file too big");
		} else if ((ms->edited || ms->body_replaced) && ms->fd >= 0 &&
		    smtpd_milter_rewrite(ms) != SPOOL_OK) {
			log_warning("%s: cannot write the message edited by a milter",
			    spool_msg_id(ms->s->msg));
			smtpd_milter_set_reply(&ms->v, SMTPD_MILTER_REJECT,
			    "451 4.3.0 Error: queue file write error");
		}
	}
	if (ms->fd >= 0)
		close(ms->fd);
	ms->fd = -1;
	smtpd_milter_headers_free(ms);
	buf_free(&ms->body);
}

/* Every milter had its say: back to the session. */
static void
smtpd_milter_finish(struct smtpd_milter_sess *ms)
{
	struct smtpd_session *s = ms->s;
	struct smtpd_milter_verdict v;
	smtpd_milter_done *done = ms->done;

	if (ms->event == MILTER_CMD_EOB)
		smtpd_milter_content_end(ms);
	ms->busy = false;
	v = ms->v;
	s->state = ms->saved_state;
	evloop_timer_start(s->srv->loop, &s->timer,
	    config_ltime(s->srv->cfg, s->listener, P_SMTPD_TIMEOUT) * 1000);
	done(s, &v);
	smtpd_session_resume(s);
}

static void
smtpd_milter_run(struct smtpd_milter_sess *ms)
{
	struct smtpd_milter_conn *k;
	enum smtpd_milter_step r;

	if (!ms->busy)
		return;
	while (ms->cur < ms->n) {
		k = &ms->c[ms->cur];
		if (k->waiting)
			return;
		r = smtpd_milter_step(k);
		if (r == SMTPD_MILTER_STEP_WAIT) {
			smtpd_milter_flush(k);
			if (k->fd >= 0)
				return;
			k->waiting = k->draining = false;
			continue;	/* it broke: its default action, next turn */
		}
		if (r == SMTPD_MILTER_STEP_STOP)
			break;
		ms->cur++;
	}
	smtpd_milter_finish(ms);
}

static void
smtpd_milter_kick(struct ev_timer *t)
{
	smtpd_milter_run(t->arg);
}

/* Start an event: the session waits; the loop runs it. */
static void
smtpd_milter_begin(struct smtpd_session *s, char event, enum milter_stage stage,
    smtpd_milter_done *done)
{
	struct smtpd_milter_sess *ms = s->milter;
	size_t i;

	if (ms == NULL || ms->busy)
		panic("smtpd_milter_begin: no milters, or an event in progress");
	ms->busy = true;
	ms->event = event;
	ms->stage = stage;
	ms->cur = 0;
	ms->done = done;
	ms->replies = 0;
	memset(&ms->v, 0, sizeof(ms->v));
	for (i = 0; i < ms->n; i++) {
		ms->c[i].phase = SMTPD_MILTER_PH_START;
		ms->c[i].hdr = 0;
		ms->c[i].body_lockout = false;
	}
	ms->saved_state = s->state;
	s->state = SMTPD_STATE_WAIT;
	evloop_timer_stop(s->srv->loop, &s->timer);
	evloop_timer_start(s->srv->loop, &ms->kick, 0);
}

/* ---- the session's side ---- */

/* A replacement body may be as large as a message may be. */
static size_t
smtpd_milter_body_max(const struct smtpd_session *s)
{
	uint64_t limit = config_lint(s->srv->cfg, s->listener, P_MESSAGE_SIZE_LIMIT);

	return limit > 0 && limit < SIZE_MAX ? (size_t)limit : SMTPD_MILTER_BODY_MAX;
}

static const char *
smtpd_milter_list_text(const struct smtpd_session *s)
{
	if (s->listener == CONFIG_LISTENER_SENDMAIL)
		return config_str(s->srv->cfg, P_NON_SMTPD_MILTERS);
	return config_lstr(s->srv->cfg, s->listener, P_SMTPD_MILTERS);
}

bool
smtpd_milter_start(struct smtpd_session *s)
{
	struct config_milter list[CONFIG_MILTER_MAX];
	const struct config *cfg = s->srv->cfg;
	struct smtpd_milter_sess *ms;
	char why[256];
	size_t n, i;

	if (config_milter_parse(smtpd_milter_list_text(s), list, &n, why, sizeof(why)) < 0)
		panic("milter list passed the load check and fails now: %s", why);
	if (n == 0)
		return false;
	ms = calloc(1, sizeof(*ms));
	if (ms == NULL || (ms->c = calloc(n, sizeof(*ms->c))) == NULL)
		fatal("out of memory (milters)");
	ms->s = s;
	ms->n = n;
	ms->fd = -1;
	evloop_timer_init(&ms->kick, smtpd_milter_kick, ms);
	for (i = 0; i < n; i++) {
		struct smtpd_milter_conn *k = &ms->c[i];
		const char *proto = config_str(cfg, P_MILTER_PROTOCOL);

		k->ms = ms;
		k->conf = list[i];
		k->fd = -1;
		k->action = list[i].default_action != CONFIG_MILTER_ACTION_UNSET ?
		    list[i].default_action : config_milter_action_parse(
		        config_lstr(cfg, s->listener, P_MILTER_DEFAULT_ACTION),
		        strlen(config_lstr(cfg, s->listener, P_MILTER_DEFAULT_ACTION)));
		k->connect_ms = (list[i].connect_timeout >= 0 ? list[i].connect_timeout :
		    config_time(cfg, P_MILTER_CONNECT_TIMEOUT)) * 1000;
		k->command_ms = (list[i].command_timeout >= 0 ? list[i].command_timeout :
		    config_time(cfg, P_MILTER_COMMAND_TIMEOUT)) * 1000;
		k->content_ms = (list[i].content_timeout >= 0 ? list[i].content_timeout :
		    config_time(cfg, P_MILTER_CONTENT_TIMEOUT)) * 1000;
		k->version = list[i].protocol != 0 ? (uint32_t)list[i].protocol :
		    (uint32_t)(proto[0] - '0');
		buf_init(&k->in, SMTPD_MILTER_IN_MAX);
		buf_init(&k->out, SMTPD_MILTER_OUT_MAX);
		evloop_timer_init(&k->timer, smtpd_milter_timeout, k);
	}
	s->milter = ms;
	return true;
}

bool
smtpd_milter_active(const struct smtpd_session *s)
{
	return s->milter != NULL;
}

void
smtpd_milter_connect(struct smtpd_session *s, smtpd_milter_done *done)
{
	smtpd_milter_begin(s, MILTER_CMD_CONNECT, MILTER_STAGE_CONNECT, done);
}

void
smtpd_milter_helo(struct smtpd_session *s, smtpd_milter_done *done)
{
	smtpd_milter_begin(s, MILTER_CMD_HELO, MILTER_STAGE_HELO, done);
}

/* Keep "<addr>" and the ESMTP parameters after the address in args. */
static void
smtpd_milter_keep_args(struct smtpd_milter_sess *ms, const char *addr, const char *args,
    size_t len)
{
	size_t used, i = 0, t;
	int w;

	w = snprintf(ms->args, sizeof(ms->args), "<%s>", addr);
	used = w > 0 && (size_t)w < sizeof(ms->args) ? (size_t)w + 1 : sizeof(ms->args);
	ms->nargs = 1;
	/* Skip "FROM:<...>" or "TO:<...>": the first word. */
	while (i < len && args[i] != ' ')
		i++;
	while (i < len && ms->nargs < SMTPD_MILTER_ARGV_MAX) {
		while (i < len && args[i] == ' ')
			i++;
		for (t = i; i < len && args[i] != ' '; i++)
			;
		if (i == t || used + (i - t) + 1 > sizeof(ms->args))
			break;
		memcpy(ms->args + used, args + t, i - t);
		used += i - t;
		ms->args[used++] = '\0';
		ms->nargs++;
	}
}

void
smtpd_milter_args(struct smtpd_session *s, bool rcpt, const char *addr, const char *args,
    size_t len)
{
	snprintf(s->milter->rcpt_addr, sizeof(s->milter->rcpt_addr), "%s", rcpt ? addr : "");
	smtpd_milter_keep_args(s->milter, addr, args, len);
}

void
smtpd_milter_mail(struct smtpd_session *s, smtpd_milter_done *done)
{
	smtpd_milter_begin(s, MILTER_CMD_MAIL, MILTER_STAGE_MAIL, done);
}

void
smtpd_milter_rcpt(struct smtpd_session *s, smtpd_milter_done *done)
{
	smtpd_milter_begin(s, MILTER_CMD_RCPT, MILTER_STAGE_RCPT, done);
}

void
smtpd_milter_data(struct smtpd_session *s, smtpd_milter_done *done)
{
	smtpd_milter_begin(s, MILTER_CMD_DATA, MILTER_STAGE_DATA, done);
}

void
smtpd_milter_eom(struct smtpd_session *s, uint64_t content_off, bool bdat, smtpd_milter_done *done)
{
	struct smtpd_milter_sess *ms = s->milter;
	char err[256];
	struct stat st;

	smtpd_milter_begin(s, MILTER_CMD_EOB, MILTER_STAGE_EOM, done);
	ms->bdat_data = bdat;
	ms->edited = ms->body_replaced = ms->edit_failed = ms->blank_line = false;
	ms->body_off = 0;
	buf_init(&ms->body, smtpd_milter_body_max(s));
	ms->fd = spool_msg_open_read(s->msg, err, sizeof(err));
	if (ms->fd < 0 || fstat(ms->fd, &st) < 0) {
		log_warning("%s: cannot read the message for the milters: %s", spool_msg_id(s->msg),
		    ms->fd < 0 ? err : strerror(errno));
		smtpd_milter_set_reply(&ms->v, SMTPD_MILTER_REJECT,
		    "451 4.3.0 Error: queue file read error");
		ms->cur = ms->n;
		return;
	}
	ms->file_size = (uint64_t)st.st_size;
	if (!smtpd_milter_headers_load(ms, content_off)) {
		log_warning("%s: message header larger than %u bytes or %u fields: not given to "
		    "the milters", spool_msg_id(s->msg), SMTPD_MILTER_HEADERS_MAX,
		    SMTPD_MILTER_HEADER_COUNT_MAX);
		smtpd_milter_set_reply(&ms->v, SMTPD_MILTER_REJECT,
		    "552 5.3.4 Message header too large");
		ms->cur = ms->n;
	}
}

void
smtpd_milter_abort(struct smtpd_session *s)
{
	struct smtpd_milter_sess *ms = s->milter;
	size_t i;

	if (ms == NULL || ms->busy)
		return;
	for (i = 0; i < ms->n; i++) {
		struct smtpd_milter_conn *k = &ms->c[i];

		if (!k->in_tx)
			continue;
		k->in_tx = false;
		if (k->st == SMTPD_MILTER_ACCEPT_MSG)
			k->st = SMTPD_MILTER_READY;
		if (k->st != SMTPD_MILTER_READY || k->fd < 0)
			continue;
		smtpd_milter_queued(k, milter_proto_empty(&k->out, MILTER_CMD_ABORT));
		smtpd_milter_flush(k);
	}
}

void
smtpd_milter_free(struct smtpd_session *s)
{
	struct smtpd_milter_sess *ms = s->milter;
	size_t i, j;

	if (ms == NULL)
		return;
	for (i = 0; i < ms->n; i++) {
		struct smtpd_milter_conn *k = &ms->c[i];

		/* A goodbye, if the socket takes it now; we do not wait. */
		if (k->fd >= 0 && !k->waiting &&
		    (k->st == SMTPD_MILTER_READY || k->st == SMTPD_MILTER_ACCEPT_MSG) &&
		    milter_proto_empty(&k->out, MILTER_CMD_QUIT) == BUF_OK)
			(void)buf_write_fd(&k->out, k->fd);
		smtpd_milter_close(k);
		for (j = 0; j < MILTER_STAGE_COUNT; j++)
			free(k->macros[j]);
		buf_free(&k->in);
		buf_free(&k->out);
	}
	evloop_timer_stop(s->srv->loop, &ms->kick);
	if (ms->fd >= 0)
		close(ms->fd);
	smtpd_milter_headers_free(ms);
	buf_free(&ms->body);
	free(ms->c);
	free(ms);
	s->milter = NULL;
}

void
smtpd_milter_log(struct smtpd_session *s, const struct smtpd_milter_verdict *v, const char *what,
    const char *stage, const char *rcpt)
{
	char helo[SMTPD_HELO_MAX + 1], id[SPOOL_ID_SIZE];
	bool eom = strcmp(stage, "END-OF-MESSAGE") == 0;
	const char *shown, *crlf;
	size_t n;

	snprintf(helo, sizeof(helo), "%s", s->helo);
	snprintf(id, sizeof(id), "%s", s->msg != NULL ? spool_msg_id(s->msg) : "NOQUEUE");
	if (rcpt == NULL && eom && s->env.nrcpt > 0)
		rcpt = s->env.rcpts[0].addr;
	/* Postfix's words; at the end of the message its cleanup server logs
	 * the text without the three-digit code. */
	if (strcmp(what, "reject") != 0)
		shown = strcmp(what, "hold") == 0 ? "milter triggers HOLD action" :
		    "milter triggers DISCARD action";
	else
		shown = eom && strlen(v->reply) > 4 ? v->reply + 4 : v->reply;
	crlf = strstr(shown, "\r\n");
	n = crlf != NULL ? (size_t)(crlf - shown) : strlen(shown);
	/* from= and to= only when known, as smtpd_log_reject() writes them. */
	log_info("%s: milter-%s: %s from %s[%s]: %.*s;%s%s%s%s%s%s proto=%s helo=<%s>", id, what,
	    stage, s->client_name, s->client_addr, (int)n, shown, s->env.sender ? " from=<" : "",
	    s->env.sender ? s->env.sender : "", s->env.sender ? ">" : "", rcpt ? " to=<" : "",
	    rcpt ? rcpt : "", rcpt ? ">" : "", smtpd_session_proto(s), helo);
}

void
smtpd_milter_reply(struct smtpd_session *s, const struct smtpd_milter_verdict *v,
    const char *stage, const char *rcpt)
{
	const char *p = v->reply, *crlf;
	int code = atoi(v->reply);
	size_t n;

	for (;;) {
		crlf = strstr(p, "\r\n");
		n = crlf != NULL ? (size_t)(crlf - p) : strlen(p);
		smtpd_reply_part(s, code, crlf == NULL, "%.*s", (int)(n > 4 ? n - 4 : 0), p + 4);
		if (crlf == NULL)
			break;
		p = crlf + 2;
	}
	smtpd_milter_log(s, v, "reject", stage, rcpt);
}
