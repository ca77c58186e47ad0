/*
 * ternctl_queue: `ternctl queue`, `queue show ID` and the queue verbs.
 *
 * The listing and `show` read the spool in short read-only LMDB txns (the
 * architecture allows readers; they never block qmgr) and the message
 * file read-only; the verbs are qmgr's (FRAME_QMGR_COMMAND over
 * private/qmgr), because qmgr owns the schedule.
 *
 * Everything taken from the spool is escaped before it reaches the
 * terminal (qlist_text_str, or the body filter below) or JSON.
 */
#include "tools/ternctl_queue.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "common/buf.h"
#include "common/log.h"
#include "queue/agent_proto.h"
#include "queue/envelope.h"
#include "queue/qmgr_client.h"
#include "queue/qstore.h"
#include "queue/retry.h"
#include "queue/spool.h"
#include "tools/qlist.h"
#include "tools/ternctl_common.h"

/* The envelope part of `show`: a few KiB per recipient. */
#define TQ_SHOW_MAX ((size_t)1 << 30)
/* The message file is copied in pieces of this size (a longer line is
 * printed in pieces, never buffered whole). */
#define TQ_BODY_CHUNK (64u * 1024)

/* ---- queue flush|hold|release|delete|requeue ---- */

static int
tq_verb(const char *conf, int argc, char **argv)
{
	struct qmgr_command cmd;
	struct qmgr_reply rep;
	struct config *cfg;
	char err[512];
	bool yes = false;
	char *all[] = { "ALL" };
	int rc;

	memset(&cmd, 0, sizeof(cmd));
	cmd.verb = (enum qmgr_verb)qmgr_verb_parse(argv[0]);
	cmd.selectors = calloc((size_t)argc + 1, sizeof(char *));
	if (cmd.selectors == NULL)
		fatal("out of memory");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--yes") == 0) {
			yes = true;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "ternctl: queue %s: unknown option \"%s\"\n", argv[0], argv[i]);
			free(cmd.selectors);
			return EX_USAGE;
		} else {
			cmd.selectors[cmd.nselectors++] = argv[i];
		}
	}
	if (cmd.nselectors == 0) {
		if (cmd.verb != QMGR_VERB_FLUSH) {
			fprintf(stderr, "ternctl: queue %s needs a queue ID, @DOMAIN or ALL\n", argv[0]);
			free(cmd.selectors);
			return EX_USAGE;
		}
		cmd.selectors[cmd.nselectors++] = all[0];
	}
	for (size_t i = 0; i < cmd.nselectors; i++)
		if (strcmp(cmd.selectors[i], "ALL") == 0 && cmd.verb == QMGR_VERB_DELETE && !yes) {
			fprintf(stderr, "ternctl: queue delete ALL removes every message without a "
			        "bounce; add --yes to do it\n");
			free(cmd.selectors);
			return EX_USAGE;
		}
	cfg = ternctl_config_load(ternctl_config_path(conf));
	rc = ternctl_access_check(cfg, "queue");
	if (rc == EX_OK)
		rc = qmgr_client_command(config_str(cfg, P_QUEUE_DIRECTORY), &cmd, &rep,
		                         TERNCTL_QMGR_TIMEOUT_MS, err, sizeof(err));
	else
		err[0] = '\0';
	config_free(cfg);
	free(cmd.selectors);
	if (rc != 0) {
		if (err[0] != '\0')
			fprintf(stderr, "ternctl: %s\n", err);
		return rc;
	}
	fprintf(rep.status == 0 ? stdout : stderr, "%s%s\n", rep.status == 0 ? "" : "ternctl: ",
	        rep.text);
	return (int)rep.status;
}

/* ---- queue show ID ---- */

struct tq_show {
	char id[SPOOL_ID_SIZE];
	struct envelope env;
	struct qstore_rcpt *rcpts;	/* one per envelope recipient */
	bool *tried;			/* rcpts[i] was stored (else: not tried yet) */
	bool held;
	char msg_path[4096];
};

static void
tq_time(struct buf *out, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char s[64];

	if (t <= 0 || localtime_r(&tt, &tm) == NULL ||
	    strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
		buf_append_str(out, "-");
	else
		buf_append_str(out, s);
}

static void
tq_notify(struct buf *out, unsigned notify, bool json)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ ENVELOPE_NOTIFY_NEVER, "NEVER" }, { ENVELOPE_NOTIFY_SUCCESS, "SUCCESS" },
		{ ENVELOPE_NOTIFY_FAILURE, "FAILURE" }, { ENVELOPE_NOTIFY_DELAY, "DELAY" },
	};
	bool first = true;

	if (json)
		buf_append_char(out, '[');
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(notify & names[i].bit))
			continue;
		buf_append_printf(out, json ? "%s\"%s\"" : "%s%s", first ? "" : ",", names[i].name);
		first = false;
	}
	if (json)
		buf_append_char(out, ']');
	else if (first)
		buf_append_str(out, "(default)");
}

static const char *
tq_ret_name(enum envelope_ret r)
{
	return r == ENVELOPE_RET_FULL ? "FULL" : r == ENVELOPE_RET_HDRS ? "HDRS" : NULL;
}

/* "ESC"-free label: value, or "-" for NULL/empty. */
static void
tq_text_field(struct buf *out, const char *label, const char *v)
{
	buf_append_printf(out, "%-13s", label);
	qlist_text_str(out, v != NULL && v[0] != '\0' ? v : "-");
	buf_append_char(out, '\n');
}

static void
tq_show_text(struct buf *out, const struct tq_show *s)
{
	const struct envelope *e = &s->env;
	char buf[64];

	buf_append_printf(out, "%-13s%s%s\n", "Queue ID:", s->id, s->held ? " (on hold)" : "");
	buf_append_printf(out, "%-13s", "Arrival:");
	tq_time(out, e->arrival / 1000000);
	buf_append_printf(out, "\n%-13s%" PRIu64 " bytes\n", "Size:", e->size);
	buf_append_printf(out, "%-13s<", "Sender:");
	qlist_text_str(out, e->sender != NULL ? e->sender : "");
	buf_append_str(out, ">\n");
	buf_append_printf(out, "%-13s", "Client:");
	qlist_text_str(out, e->client_name != NULL ? e->client_name : "unknown");
	buf_append_char(out, '[');
	qlist_text_str(out, e->client_addr != NULL ? e->client_addr : "");
	buf_append_str(out, "]\n");
	tq_text_field(out, "HELO:", e->helo);
	tq_text_field(out, "Protocol:", e->proto);
	tq_text_field(out, "Listener:", e->listener);
	tq_text_field(out, "Filter:", e->filter);
	if (e->sasl_username != NULL) {
		tq_text_field(out, "SASL user:", e->sasl_username);
		tq_text_field(out, "SASL method:", e->sasl_method);
	}
	tq_text_field(out, "ENVID:", e->envid);
	tq_text_field(out, "RET:", tq_ret_name(e->ret));
	buf_append_printf(out, "Recipients:  %zu\n", e->nrcpt);
	for (size_t i = 0; i < e->nrcpt; i++) {
		const struct qstore_rcpt *r = &s->rcpts[i];

		buf_append_str(out, "  <");
		qlist_text_str(out, e->rcpts[i].addr);
		buf_append_printf(out, ">  %s", s->tried[i] ? qlist_state_name(r->state)
		                                                : "pending (not tried yet)");
		if (r->attempts > 0)
			buf_append_printf(out, ", %u attempt%s", r->attempts, r->attempts == 1 ? "" : "s");
		buf_append_char(out, '\n');
		if (r->state == QSTORE_DEFERRED || r->state == QSTORE_PENDING) {
			if (r->next_attempt > 0) {
				int64_t left = r->next_attempt - (int64_t)time(NULL);

				buf_append_str(out, "      next attempt: ");
				tq_time(out, r->next_attempt);
				retry_format_duration(left > 0 ? left : 0, buf, sizeof(buf));
				buf_append_printf(out, " (%s%s)\n", left > 0 ? "in " : "", left > 0 ? buf : "due");
			}
		}
		if (r->last_attempt > 0) {
			buf_append_str(out, "      last attempt: ");
			tq_time(out, r->last_attempt);
			buf_append_char(out, '\n');
		}
		if (r->text[0] != '\0') {
			buf_append_str(out, "      last error: ");
			qlist_text_str(out, r->text);
			if (r->err_class[0] != '\0') {
				buf_append_str(out, " (");
				qlist_text_str(out, r->err_class);
				buf_append_char(out, ')');
			}
			buf_append_char(out, '\n');
		}
		if (r->relay[0] != '\0') {
			buf_append_str(out, "      relay: ");
			qlist_text_str(out, r->relay);
			buf_append_char(out, '\n');
		}
		buf_append_str(out, "      ORCPT: ");
		qlist_text_str(out, e->rcpts[i].orcpt != NULL ? e->rcpts[i].orcpt : "-");
		buf_append_str(out, "  NOTIFY: ");
		tq_notify(out, e->rcpts[i].notify, false);
		buf_append_char(out, '\n');
	}
}

static void
tq_json_kv(struct buf *out, const char *key, const char *v)
{
	buf_append_printf(out, ", \"%s\": ", key);
	qlist_json_str(out, v);
}

static void
tq_show_json(struct buf *out, const struct tq_show *s)
{
	const struct envelope *e = &s->env;

	buf_append_str(out, "{\"id\": ");
	qlist_json_str(out, s->id);
	buf_append_printf(out, ", \"held\": %s, \"arrival\": %" PRId64 ", \"size\": %" PRIu64,
	                  s->held ? "true" : "false", e->arrival / 1000000, e->size);
	tq_json_kv(out, "sender", e->sender != NULL ? e->sender : "");
	tq_json_kv(out, "client_name", e->client_name);
	tq_json_kv(out, "client_addr", e->client_addr);
	tq_json_kv(out, "helo", e->helo);
	tq_json_kv(out, "proto", e->proto);
	tq_json_kv(out, "listener", e->listener);
	tq_json_kv(out, "filter", e->filter);
	tq_json_kv(out, "sasl_method", e->sasl_method);
	tq_json_kv(out, "sasl_username", e->sasl_username);
	tq_json_kv(out, "envid", e->envid);
	tq_json_kv(out, "ret", tq_ret_name(e->ret));
	buf_append_str(out, ", \"recipients\": [");
	for (size_t i = 0; i < e->nrcpt; i++) {
		const struct qstore_rcpt *r = &s->rcpts[i];

		buf_append_str(out, i > 0 ? ",\n  {\"address\": " : "\n  {\"address\": ");
		qlist_json_str(out, e->rcpts[i].addr);
		buf_append_printf(out, ", \"state\": \"%s\", \"tried\": %s, \"attempts\": %u, "
		                  "\"first_failure\": %" PRId64 ", \"last_attempt\": %" PRId64
		                  ", \"next_attempt\": %" PRId64 ", \"smtp_code\": %d",
		                  qlist_state_name(r->state), s->tried[i] ? "true" : "false",
		                  r->attempts, r->first_failure, r->last_attempt, r->next_attempt,
		                  r->smtp_code);
		tq_json_kv(out, "enhanced_code", r->enh[0] ? r->enh : NULL);
		tq_json_kv(out, "last_error", r->text[0] ? r->text : NULL);
		tq_json_kv(out, "error_class", r->err_class[0] ? r->err_class : NULL);
		tq_json_kv(out, "relay", r->relay[0] ? r->relay : NULL);
		tq_json_kv(out, "orcpt", e->rcpts[i].orcpt);
		buf_append_str(out, ", \"notify\": ");
		tq_notify(out, e->rcpts[i].notify, true);
		buf_append_char(out, '}');
	}
	buf_append_str(out, "]}\n");
}

/* The envelope and the states, in one short read-only txn per lookup;
 * EX_OK, EX_NOINPUT (no such message) or EX_UNAVAILABLE (printed). */
static int
tq_show_load(const struct config *cfg, struct tq_show *s)
{
	struct spool_options opt = { 0, 0, true };
	struct qstore_msg flags;
	struct spool *sp;
	struct qstore *qs;
	char err[512];
	enum spool_result r;
	int rc = EX_OK;

	sp = spool_open(config_str(cfg, P_QUEUE_DIRECTORY), &opt, err, sizeof(err));
	if (sp == NULL) {
		fprintf(stderr, "ternctl: cannot open the queue: %s\n", err);
		return EX_UNAVAILABLE;
	}
	r = spool_envelope_get(sp, s->id, &s->env, err, sizeof(err));
	if (r != SPOOL_OK) {
		if (r == SPOOL_NOTFOUND)
			fprintf(stderr, "ternctl: queue show: no message %s in the queue\n", s->id);
		else
			fprintf(stderr, "ternctl: cannot read the queue: %s\n", err);
		spool_close(sp);
		return r == SPOOL_NOTFOUND ? EX_NOINPUT : EX_IOERR;
	}
	s->rcpts = calloc(s->env.nrcpt ? s->env.nrcpt : 1, sizeof(*s->rcpts));
	s->tried = calloc(s->env.nrcpt ? s->env.nrcpt : 1, sizeof(*s->tried));
	if (s->rcpts == NULL || s->tried == NULL)
		fatal("out of memory");
	qs = qstore_open(sp, err, sizeof(err));
	for (size_t i = 0; i < s->env.nrcpt; i++) {
		s->tried[i] = qs != NULL &&
		              qstore_rcpt_get(qs, s->id, (uint32_t)i, &s->rcpts[i], err,
		                              sizeof(err)) == SPOOL_OK;
		if (!s->tried[i])
			qstore_rcpt_init(&s->rcpts[i]);
	}
	s->held = qs != NULL && qstore_msg_get(qs, s->id, &flags, err, sizeof(err)) == SPOOL_OK &&
	          flags.held;
	if (spool_msg_path(sp, s->id, s->msg_path, sizeof(s->msg_path)) < 0)
		s->msg_path[0] = '\0';
	qstore_close(qs);
	spool_close(sp);
	return rc;
}

/*
 * The message file for a terminal: CRLF ends a line; other control
 * characters (not TAB), DEL, C1 and bytes that are not UTF-8 are written
 * as \ooo, so a message cannot drive the administrator's terminal.
 * Backslashes stay as they are: this is for reading, not for parsing.
 */
static void
tq_body_piece(struct buf *out, const unsigned char *p, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		k = qlist_utf8_len(p + i, n - i);
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
			i++;
			continue;
		}
		if (p[i] == '\n' || p[i] == '\t') {
			buf_append_char(out, (char)p[i]);
			i++;
		} else if (k == 0 || p[i] < 0x20 || p[i] == 0x7f ||
		           (k == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)) {
			k = k ? k : 1;
			for (size_t j = 0; j < k; j++)
				buf_append_printf(out, "\\%03o", p[i + j]);
			i += k;
		} else {
			buf_append(out, p + i, k);
			i += k;
		}
	}
}

static int
tq_show_body(const struct tq_show *s)
{
	unsigned char chunk[TQ_BODY_CHUNK];
	struct buf out;
	FILE *f;
	size_t n, keep = 0;
	int rc = EX_OK;

	printf("--- message %s ---\n", s->id);
	f = s->msg_path[0] ? fopen(s->msg_path, "rb") : NULL;
	if (f == NULL) {
		fflush(stdout);
		fprintf(stderr, "ternctl: cannot read the message file %s: %s\n", s->msg_path,
		        strerror(errno));
		return EX_NOINPUT;
	}
	buf_init(&out, 8 * TQ_BODY_CHUNK);
	/* Up to 3 bytes of a sequence cut by the chunk wait for the next. */
	while ((n = fread(chunk + keep, 1, sizeof(chunk) - keep, f)) > 0 || keep > 0) {
		size_t len = keep + n, cut = len;

		/* At the end of the file (n == 0) everything left goes out. */
		if (n > 0) {
			for (size_t back = 1; back <= 3 && back <= len; back++)
				if (chunk[len - back] >= 0xc0 || chunk[len - back] == '\r') {
					cut = len - back;
					break;
				}
		}
		buf_reset(&out);
		tq_body_piece(&out, chunk, cut);
		fwrite(buf_data(&out), 1, buf_len(&out), stdout);
		keep = len - cut;
		memmove(chunk, chunk + cut, keep);
	}
	if (ferror(f)) {
		fprintf(stderr, "ternctl: read error on %s\n", s->msg_path);
		rc = EX_IOERR;
	}
	fclose(f);
	buf_free(&out);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "ternctl: write error on standard output\n");
		rc = EX_IOERR;
	}
	return rc;
}

/* A queue id as typed: hex, any case; false when it is not one. */
static bool
tq_id(const char *arg, char *id)
{
	size_t n = strlen(arg);

	if (n != SPOOL_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)arg[i]))
			return false;
		id[i] = (char)toupper((unsigned char)arg[i]);
	}
	id[n] = '\0';
	return true;
}

static int
tq_show(const char *conf, int argc, char **argv)
{
	struct tq_show s;
	struct config *cfg;
	struct buf out;
	const char *idarg = NULL;
	bool json = false;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (argv[i][0] != '-' && idarg == NULL)
			idarg = argv[i];
		else {
			fprintf(stderr, "ternctl: queue show: unexpected argument \"%s\"\n", argv[i]);
			return EX_USAGE;
		}
	}
	memset(&s, 0, sizeof(s));
	if (idarg == NULL || !tq_id(idarg, s.id)) {
		fprintf(stderr, "ternctl: queue show needs a queue ID (%d hex digits)%s%s\n",
		        SPOOL_ID_LEN, idarg ? ", not " : "", idarg ? idarg : "");
		return EX_USAGE;
	}
	cfg = ternctl_config_load(ternctl_config_path(conf));
	rc = ternctl_access_check(cfg, "queue show");
	envelope_init(&s.env);
	if (rc == EX_OK)
		rc = tq_show_load(cfg, &s);
	config_free(cfg);
	if (rc == EX_OK) {
		buf_init(&out, TQ_SHOW_MAX);
		if (json)
			tq_show_json(&out, &s);
		else
			tq_show_text(&out, &s);
		rc = ternctl_write(&out);
		buf_free(&out);
		if (rc == EX_OK && !json)
			rc = tq_show_body(&s);
	}
	envelope_free(&s.env);
	free(s.rcpts);
	free(s.tried);
	return rc;
}

/* ---- dispatch ---- */

int
ternctl_queue(const char *conf, int argc, char **argv)
{
	struct config *cfg;
	bool json = false;
	int rc;

	if (argc > 0 && strcmp(argv[0], "show") == 0)
		return tq_show(conf, argc, argv);
	if (argc > 0 && qmgr_verb_parse(argv[0]) > 0 && qmgr_verb_parse(argv[0]) != QMGR_VERB_STATS)
		return tq_verb(conf, argc, argv);
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else {
			fprintf(stderr, "ternctl: queue: unknown argument \"%s\"\n", argv[i]);
			ternctl_usage(stderr);
			return EX_USAGE;
		}
	}
	cfg = ternctl_config_load(ternctl_config_path(conf));
	rc = ternctl_access_check(cfg, "queue");
	if (rc == EX_OK)
		rc = qlist_print(cfg, json, "ternctl");
	config_free(cfg);
	return rc;
}
