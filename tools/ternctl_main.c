/*
 * ternctl: the administrator's command line.
 *
 *   ternctl [-c FILE] queue [--json]
 *   ternctl [-c FILE] retry explain DOMAIN|ADDRESS ERROR-CLASS [--sender ADDR]
 *           [--first-failure SECONDS-AGO] [--host NAME] [--json]
 *
 * `queue` lists the spool like Postfix's mailq, or as one JSON array. It
 * reads the index in one short read-only txn (the listing is built in
 * memory and printed after the txn ends, so a slow pager cannot hold the
 * txn open) and never writes to the spool.
 *
 *   ternctl map build [--aliases] PATH ...
 *   ternctl map query [--aliases] SPEC KEY
 *
 * `map build` compiles the text file PATH (postmap(1) `key value` lines,
 * or aliases(5) lines with --aliases, as postalias(1) does) into
 * PATH.lmdb for `lmdb:PATH` maps, atomically: a reader sees the old map
 * or the new one. `map query` looks KEY up in one map (lmdb:/path or
 * texthash:/path) exactly as given, like `postmap -q`: no address or
 * domain forms; it prints the value and exits 0, or exits 1 when KEY is
 * not there. Both print problems as FILE:LINE: message and exit with
 * EX_USAGE (bad arguments or map spec), EX_NOINPUT (no such file),
 * EX_DATAERR (syntax errors, or a .lmdb of the wrong format), EX_IOERR
 * (cannot read) or EX_CANTCREAT (cannot write PATH.lmdb). Neither reads
 * the configuration.
 *
 * `retry explain` says which retry rule (or the Postfix fallback) applies
 * to a failure and prints the attempts and the bounce time, simulated
 * with a fake clock by the same retry_decide() that qmgr runs (Exim's
 * `exim -brt` plus `exinext`). It reads retry_rules and touches no spool.
 *
 * The configuration comes from -c FILE, else $TERN_CONFIG, else
 * /etc/tern/tern.conf when it exists, else the development defaults.
 *
 * Errors: one line on stderr (config errors: one FILE:LINE line each) and
 * a sysexits.h status: EX_USAGE for bad arguments, EX_CONFIG for the
 * configuration (and the retry_rules file), EX_UNAVAILABLE when the spool
 * cannot be opened, EX_IOERR when it cannot be read or the output cannot
 * be written.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "config/config.h"
#include "config/map.h"
#include "queue/agent_proto.h"
#include "queue/qmgr_client.h"
#include "queue/qstore.h"
#include "queue/retry.h"
#include "queue/spool.h"

#define TERNCTL_CONFIG_DEFAULT "/etc/tern/tern.conf"
/* Most config error text we print. */
#define TERNCTL_CONFIG_ERRORS_MAX (64u * 1024)
/* The listing is built in memory before it is printed. */
#define TERNCTL_LISTING_MAX ((size_t)1 << 32)
/* Column of the recipients under the sender in the text listing. */
#define TERNCTL_RCPT_INDENT 45
/* Most text `retry explain` prints (200 rows are far less). */
#define TERNCTL_EXPLAIN_MAX (1024u * 1024)
/* Most diagnostics `map build` and `map query` print. */
#define TERNCTL_MAP_DIAG_MAX (256u * 1024)
/* `map query`: exit status when the key is not in the map (postmap -q's). */
#define TERNCTL_MAP_NOTFOUND 1

static void
ternctl_usage(FILE *f)
{
	fprintf(f, "usage: ternctl [-c FILE] queue [--json]\n"
	           "       ternctl [-c FILE] queue flush [ID|@DOMAIN|ALL ...]\n"
	           "       ternctl [-c FILE] queue hold|release|requeue ID|@DOMAIN|ALL ...\n"
	           "       ternctl [-c FILE] queue delete ID|@DOMAIN ... | ALL --yes\n"
	           "       ternctl [-c FILE] retry explain DOMAIN|ADDRESS ERROR-CLASS [--sender ADDR]\n"
	           "               [--first-failure SECONDS-AGO] [--host NAME] [--json]\n"
	           "       ternctl map build [--aliases] PATH ...\n"
	           "       ternctl map query [--aliases] lmdb:PATH|texthash:PATH KEY\n");
}

/* ---- configuration ---- */

static const char *
ternctl_config_path(const char *opt_c)
{
	const char *env;

	if (opt_c != NULL)
		return opt_c;
	env = getenv("TERN_CONFIG");
	if (env != NULL && env[0] != '\0')
		return env;
	if (access(TERNCTL_CONFIG_DEFAULT, F_OK) == 0)
		return TERNCTL_CONFIG_DEFAULT;
	return NULL;	/* the development defaults */
}

static struct config *
ternctl_config_load(const char *path)
{
	struct config *cfg;
	struct buf errors;

	buf_init(&errors, TERNCTL_CONFIG_ERRORS_MAX);
	cfg = config_load(path, &errors);
	if (cfg == NULL) {
		if (buf_len(&errors) > 0)
			fwrite(buf_data(&errors), 1, buf_len(&errors), stderr);
		else
			fprintf(stderr, "ternctl: cannot load %s\n", path ? path : "the defaults");
		buf_free(&errors);
		exit(EX_CONFIG);
	}
	buf_free(&errors);
	return cfg;
}

/* ---- strings from the spool: escaped for a terminal or for JSON ---- */

/* Length of a valid UTF-8 sequence at p (RFC 3629), or 0. */
static size_t
ternctl_utf8_len(const unsigned char *p)
{
	size_t n, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)	/* also stops at the NUL */
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;	/* overlong, out of range, or a surrogate */
	return n;
}

/* Terminal-safe: valid UTF-8 passes through; control characters (C0,
 * DEL and C1, which some terminals obey), backslashes and bytes that are
 * not UTF-8 are written as \ooo. */
static void
ternctl_text_str(struct buf *out, const char *s)
{
	const unsigned char *p;
	size_t n, i;

	for (p = (const unsigned char *)s; *p; p += n) {
		n = ternctl_utf8_len(p);
		if (n == 0 || *p < 0x20 || *p == 0x7f || *p == '\\' ||
		    (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
			n = n ? n : 1;
			for (i = 0; i < n; i++)
				buf_append_printf(out, "\\%03o", p[i]);
		} else {
			buf_append(out, p, n);
		}
	}
}

/* A JSON string (RFC 8259): quotes and backslashes escaped, control
 * characters as \u00XX, bytes that are not UTF-8 as U+FFFD. NULL: null. */
static void
ternctl_json_str(struct buf *out, const char *s)
{
	const unsigned char *p;
	size_t n;

	if (s == NULL) {
		buf_append_str(out, "null");
		return;
	}
	buf_append_char(out, '"');
	for (p = (const unsigned char *)s; *p; p += n) {
		n = ternctl_utf8_len(p);
		if (n == 0) {
			buf_append_str(out, "\\ufffd");
			n = 1;
		} else if (*p == '"' || *p == '\\') {
			buf_append_char(out, '\\');
			buf_append_char(out, (char)*p);
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_append_printf(out, "\\u%04x", *p);
		} else {
			buf_append(out, p, n);
		}
	}
	buf_append_char(out, '"');
}

/* ---- text output ---- */

static void
ternctl_arrival(char *dst, size_t dstsz, int64_t arrival_us)
{
	time_t t = (time_t)(arrival_us / 1000000);
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL || strftime(dst, dstsz, "%a %b %e %H:%M:%S", &tm) == 0)
		snprintf(dst, dstsz, "?");
}

/* "14m", "2h5m", "now": how long until t (seconds since the epoch). */
static void
ternctl_until(char *dst, size_t dstsz, int64_t t)
{
	int64_t left = t - (int64_t)time(NULL);

	if (left <= 0)
		snprintf(dst, dstsz, "now");
	else
		retry_format_duration(left, dst, dstsz);
}

static const char *
ternctl_state_name(enum qstore_state st)
{
	static const char *const names[] = { "pending", "deferred", "delivered", "bounced",
	                                     "expired" };

	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "unknown";
}

/* The stored state of recipient i; false when it has none (not tried). */
static bool
ternctl_rcpt_state(struct qstore *qs, const char *id, size_t i, struct qstore_rcpt *r)
{
	char err[200];

	if (qs == NULL || qstore_rcpt_get(qs, id, (uint32_t)i, r, err, sizeof(err)) != SPOOL_OK) {
		qstore_rcpt_init(r);
		return false;
	}
	return true;
}

/* Postfix's mailq layout: '!' after the id of a held message, delivered
 * recipients left out, a deferred one preceded by its last error. */
static void
ternctl_text_entry(struct buf *out, struct qstore *qs, const char *id, const struct envelope *env)
{
	struct qstore_msg flags;
	char when[64], err[200];
	bool held;
	size_t i;

	held = qs != NULL && qstore_msg_get(qs, id, &flags, err, sizeof(err)) == SPOOL_OK && flags.held;
	ternctl_arrival(when, sizeof(when), env->arrival);
	buf_append_printf(out, "%-14s%c %7" PRIu64 " %-20s ", id, held ? '!' : ' ', env->size, when);
	/* Postfix shows the null sender this way. */
	ternctl_text_str(out, env->sender && env->sender[0] ? env->sender : "MAILER-DAEMON");
	buf_append_char(out, '\n');
	for (i = 0; i < env->nrcpt; i++) {
		struct qstore_rcpt r;

		ternctl_rcpt_state(qs, id, i, &r);
		if (r.state == QSTORE_DELIVERED || r.state == QSTORE_BOUNCED || r.state == QSTORE_EXPIRED)
			continue;
		if (r.state == QSTORE_DEFERRED) {
			char next[48];

			ternctl_until(next, sizeof(next), r.next_attempt);
			buf_append_str(out, "(");
			ternctl_text_str(out, r.text[0] ? r.text : "deferred");
			buf_append_printf(out, "; next try %s%s)\n", strcmp(next, "now") ? "in " : "",
			                  next);
		}
		buf_append_printf(out, "%*s", TERNCTL_RCPT_INDENT, "");
		ternctl_text_str(out, env->rcpts[i].addr);
		buf_append_char(out, '\n');
	}
	buf_append_char(out, '\n');
}

/* ---- JSON output ---- */

static void
ternctl_json_entry(struct buf *out, struct qstore *qs, const char *id, const struct envelope *env,
                   bool first)
{
	size_t i;

	buf_append_str(out, first ? "\n  {" : ",\n  {");
	buf_append_str(out, "\"id\": ");
	ternctl_json_str(out, id);
	buf_append_printf(out, ", \"size\": %" PRIu64 ", \"arrival\": %" PRId64 ", \"sender\": ",
	                  env->size, env->arrival / 1000000);
	ternctl_json_str(out, env->sender ? env->sender : "");
	buf_append_str(out, ", \"recipients\": [");
	for (i = 0; i < env->nrcpt; i++) {
		if (i > 0)
			buf_append_str(out, ", ");
		ternctl_json_str(out, env->rcpts[i].addr);
	}
	buf_append_str(out, "], \"delivery\": [");
	for (i = 0; i < env->nrcpt; i++) {
		struct qstore_rcpt r;

		ternctl_rcpt_state(qs, id, i, &r);
		buf_append_str(out, i > 0 ? ", {\"address\": " : "{\"address\": ");
		ternctl_json_str(out, env->rcpts[i].addr);
		buf_append_printf(out, ", \"state\": \"%s\", \"attempts\": %u, "
		                  "\"next_attempt\": %" PRId64 ", \"last_error\": ",
		                  ternctl_state_name(r.state), r.attempts, r.next_attempt);
		ternctl_json_str(out, r.text);
		buf_append_str(out, ", \"error_class\": ");
		ternctl_json_str(out, r.err_class);
		buf_append_str(out, ", \"relay\": ");
		ternctl_json_str(out, r.relay);
		buf_append_char(out, '}');
	}
	buf_append_str(out, "], \"client_addr\": ");
	ternctl_json_str(out, env->client_addr);
	buf_append_str(out, ", \"helo\": ");
	ternctl_json_str(out, env->helo);
	buf_append_char(out, '}');
}

/* ---- ternctl queue ---- */

struct ternctl_listing {
	struct buf out;
	struct qstore *qs;	/* NULL when the tables cannot be read */
	bool json;
	unsigned count;
	uint64_t bytes;
	bool too_big;
};

static int
ternctl_queue_one(void *arg, const char *id, const struct envelope *env)
{
	struct ternctl_listing *l = arg;

	if (buf_room(&l->out) < 1024 * 1024) {
		l->too_big = true;
		return 1;
	}
	if (l->json)
		ternctl_json_entry(&l->out, l->qs, id, env, l->count == 0);
	else
		ternctl_text_entry(&l->out, l->qs, id, env);
	l->count++;
	l->bytes += env->size;
	return 0;
}

static int
ternctl_queue(const struct config *cfg, bool json)
{
	struct spool_options opt = { 0, 0, true };
	struct ternctl_listing l = { .json = json };
	const char *dir = config_str(cfg, P_QUEUE_DIRECTORY);
	char err[512] = "";
	struct spool *sp;
	enum spool_result r;

	sp = spool_open(dir, &opt, err, sizeof(err));
	if (sp == NULL) {
		fprintf(stderr, "ternctl: cannot open the queue: %s\n", err);
		return EX_UNAVAILABLE;
	}
	l.qs = qstore_open(sp, err, sizeof(err));
	buf_init(&l.out, TERNCTL_LISTING_MAX);
	if (json)
		buf_append_char(&l.out, '[');
	else
		buf_append_printf(&l.out, "%-14s %8s %-20s %s\n", "-Queue ID-", "--Size--",
		                  "----Arrival Time----", "-Sender/Recipient-------");
	r = spool_walk(sp, ternctl_queue_one, &l, err, sizeof(err));
	qstore_close(l.qs);
	spool_close(sp);
	if (r != SPOOL_OK || l.too_big) {
		fprintf(stderr, "ternctl: cannot read the queue: %s\n",
		        l.too_big ? "listing too large" : err);
		buf_free(&l.out);
		return EX_IOERR;
	}
	if (json)
		buf_append_str(&l.out, l.count ? "\n]\n" : "]\n");
	else if (l.count == 0) {
		buf_reset(&l.out);
		buf_append_str(&l.out, "Mail queue is empty\n");
	} else
		buf_append_printf(&l.out, "-- %" PRIu64 " Kbytes in %u Request%s.\n",
		                  (l.bytes + 1023) / 1024, l.count, l.count == 1 ? "" : "s");
	fwrite(buf_data(&l.out), 1, buf_len(&l.out), stdout);
	buf_free(&l.out);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "ternctl: write error on standard output\n");
		return EX_IOERR;
	}
	return EX_OK;
}

/* ---- ternctl retry explain ---- */

/* Write out to stdout; EX_OK or EX_IOERR. */
static int
ternctl_write(const struct buf *out)
{
	fwrite(buf_data(out), 1, buf_len(out), stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "ternctl: write error on standard output\n");
		return EX_IOERR;
	}
	return EX_OK;
}

/* SECONDS-AGO: a number of seconds, or one number with a unit s, m, h, d, w. */
static int
ternctl_seconds(const char *s, int64_t *out)
{
	char *end;
	long long v;
	int64_t unit = 1;

	errno = 0;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case '\0': case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	case 'w': unit = 7 * 86400; break;
	default: return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (v > (long long)(INT64_MAX / 4) / unit)	/* far beyond any schedule */
		return -1;
	*out = (int64_t)v * unit;
	return 0;
}

/* --name VALUE or --name=VALUE at argv[*i]; NULL when it is not --name. */
static const char *
ternctl_opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
	size_t n = strlen(name);

	*missing = false;
	if (strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

static int
ternctl_retry_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "ternctl: retry: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	ternctl_usage(stderr);
	return EX_USAGE;
}

/* Parse the arguments after "retry"; EX_OK or EX_USAGE (printed). */
static int
ternctl_retry_args(int argc, char **argv, struct retry_explain_args *a)
{
	const char *pos[2] = { NULL, NULL }, *v;
	int i, npos = 0;
	bool missing;

	memset(a, 0, sizeof(*a));
	if (argc < 1 || strcmp(argv[0], "explain") != 0)
		return ternctl_retry_usage("unknown or missing subcommand \"%s\" (explain)",
		                           argc < 1 ? "" : argv[0]);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			a->json = true;
		} else if ((v = ternctl_opt_value(argc, argv, &i, "--sender", &missing)) != NULL) {
			/* "<>" and "" are the null sender. */
			a->sender = strcmp(v, "<>") == 0 ? "" : v;
		} else if (!missing && (v = ternctl_opt_value(argc, argv, &i, "--host", &missing)) != NULL) {
			a->host = v;
		} else if (!missing &&
		           (v = ternctl_opt_value(argc, argv, &i, "--first-failure", &missing)) != NULL) {
			if (ternctl_seconds(v, &a->first_failure_ago) != 0)
				return ternctl_retry_usage("--first-failure: \"%s\" is not a number of "
				                           "seconds (or 2h, 3d ...)", v);
		} else if (missing) {
			return ternctl_retry_usage("%s needs a value", argv[i]);
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return ternctl_retry_usage("unknown option \"%s\"", argv[i]);
		} else if (npos < 2) {
			pos[npos++] = argv[i];
		} else {
			return ternctl_retry_usage("unexpected argument \"%s\"", argv[i]);
		}
	}
	if (npos < 2)
		return ternctl_retry_usage("%s", "explain needs a DOMAIN (or ADDRESS) and an ERROR-CLASS");
	if (pos[0][0] == '\0' || pos[0][strlen(pos[0]) - 1] == '@')
		return ternctl_retry_usage("\"%s\" is not a domain or an address", pos[0]);
	a->domain = pos[0];
	if (retry_error_parse(pos[1], &a->err) != 0) {
		fprintf(stderr, "ternctl: retry: unknown error class \"%s\"; the classes are: %s\n",
		        pos[1], retry_error_classes());
		return EX_USAGE;
	}
	return EX_OK;
}

static int
ternctl_retry(const char *conf, int argc, char **argv)
{
	struct retry_explain_args args;
	struct retry_policy pol;
	struct retry_rules *rules;
	struct config *cfg;
	struct buf errors, out;
	int rc;

	rc = ternctl_retry_args(argc, argv, &args);
	if (rc != EX_OK)
		return rc;
	cfg = ternctl_config_load(ternctl_config_path(conf));
	buf_init(&errors, TERNCTL_CONFIG_ERRORS_MAX);
	rules = retry_rules_load(config_str(cfg, P_RETRY_RULES), &errors);
	if (rules == NULL) {
		fwrite(buf_data(&errors), 1, buf_len(&errors), stderr);
		buf_free(&errors);
		config_free(cfg);
		return EX_CONFIG;
	}
	buf_free(&errors);
	retry_policy_init(&pol, cfg);
	buf_init(&out, TERNCTL_EXPLAIN_MAX);
	retry_explain(rules, &pol, &args, &out);
	rc = ternctl_write(&out);
	buf_free(&out);
	retry_rules_free(rules);
	config_free(cfg);
	return rc;
}

/* ---- ternctl queue flush|hold|release|delete|requeue ---- */

static int
ternctl_queue_verb(const char *conf, int argc, char **argv)
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
	rc = qmgr_client_command(config_str(cfg, P_QUEUE_DIRECTORY), &cmd, &rep, 30000, err,
	                         sizeof(err));
	config_free(cfg);
	free(cmd.selectors);
	if (rc != 0) {
		fprintf(stderr, "ternctl: %s\n", err);
		return rc;
	}
	fprintf(rep.status == 0 ? stdout : stderr, "%s%s\n", rep.status == 0 ? "" : "ternctl: ",
	        rep.text);
	return (int)rep.status;
}

/* ---- ternctl map build|query ---- */

static int
ternctl_map_exit(enum map_status st)
{
	switch (st) {
	case MAP_OK: return EX_OK;
	case MAP_ERR_SPEC: return EX_USAGE;
	case MAP_ERR_NOINPUT: return EX_NOINPUT;
	case MAP_ERR_DATA: return EX_DATAERR;
	case MAP_ERR_IO: return EX_IOERR;
	case MAP_ERR_CREATE: return EX_CANTCREAT;
	}
	return EX_SOFTWARE;
}

static void
ternctl_map_diag(struct buf *diag)
{
	fwrite(buf_data(diag), 1, buf_len(diag), stderr);
	buf_reset(diag);
}

/* A value for the terminal: control characters (not TAB) as \ooo; the
 * rest is UTF-8 already (map_parse refuses other bytes). */
static void
ternctl_map_value(struct buf *out, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			buf_append_printf(out, "\\%03o", *p);
		else
			buf_append_char(out, (char)*p);
	}
	buf_append_char(out, '\n');
}

static int
ternctl_map_query(unsigned flags, const char *spec, const char *key, struct buf *diag)
{
	char err[MAP_SPEC_MAX + 256];
	enum map_status st;
	enum map_result r;
	struct buf value, out;
	struct map *m;
	int rc;

	/* lmdb: files say their format; the caller need not know it. */
	st = map_open(spec, flags | MAP_F_ANY_FORMAT | MAP_F_RECHECK, &m, diag);
	ternctl_map_diag(diag);
	if (st != MAP_OK)
		return ternctl_map_exit(st);
	buf_init(&value, MAP_VALUE_MAX + 1);
	r = map_lookup(m, key, &value, err, sizeof(err));
	map_close(m);
	if (r == MAP_ERROR) {
		fprintf(stderr, "%s\n", err);
		buf_free(&value);
		return EX_IOERR;
	}
	if (r == MAP_NOTFOUND) {
		buf_free(&value);
		return TERNCTL_MAP_NOTFOUND;
	}
	buf_init(&out, 4 * (MAP_VALUE_MAX + 1));
	ternctl_map_value(&out, buf_cstr(&value));
	rc = ternctl_write(&out);
	buf_free(&out);
	buf_free(&value);
	return rc;
}

static int
ternctl_map(int argc, char **argv)
{
	const char *pos[64];
	unsigned flags = 0;
	enum map_status st, first = MAP_OK;
	struct buf diag;
	int i, npos = 0, rc;

	if (argc < 1 || (strcmp(argv[0], "build") != 0 && strcmp(argv[0], "query") != 0)) {
		fprintf(stderr, "ternctl: map: unknown or missing subcommand \"%s\" (build, query)\n",
		        argc < 1 ? "" : argv[0]);
		ternctl_usage(stderr);
		return EX_USAGE;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--aliases") == 0) {
			flags |= MAP_F_ALIASES;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "ternctl: map %s: unknown option \"%s\"\n", argv[0], argv[i]);
			return EX_USAGE;
		} else if (npos < (int)(sizeof(pos) / sizeof(pos[0]))) {
			pos[npos++] = argv[i];
		} else {
			fprintf(stderr, "ternctl: map %s: too many arguments\n", argv[0]);
			return EX_USAGE;
		}
	}
	if (strcmp(argv[0], "query") == 0 ? npos != 2 : npos < 1) {
		fprintf(stderr, strcmp(argv[0], "query") == 0 ?
		        "ternctl: map query needs a map (lmdb:PATH or texthash:PATH) and a KEY\n" :
		        "ternctl: map build needs the PATH of a source file\n");
		ternctl_usage(stderr);
		return EX_USAGE;
	}
	buf_init(&diag, TERNCTL_MAP_DIAG_MAX);
	if (strcmp(argv[0], "query") == 0) {
		rc = ternctl_map_query(flags, pos[0], pos[1], &diag);
		buf_free(&diag);
		return rc;
	}
	for (i = 0; i < npos; i++) {
		st = map_build(pos[i], flags, &diag, NULL);
		ternctl_map_diag(&diag);
		if (st != MAP_OK && first == MAP_OK)
			first = st;
	}
	buf_free(&diag);
	return ternctl_map_exit(first);
}

int
main(int argc, char **argv)
{
	const char *conf = NULL, *cmd;
	struct config *cfg;
	bool json = false;
	int c, i, rc;

	log_open("ternctl", LOG_SINK_STDERR, NULL);
	/* '+': options end at the command name. */
	while ((c = getopt(argc, argv, "+c:h")) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 'h':
			ternctl_usage(stdout);
			return EX_OK;
		default:
			ternctl_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		ternctl_usage(stderr);
		return EX_USAGE;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "retry") == 0)
		return ternctl_retry(conf, argc - optind - 1, argv + optind + 1);
	if (strcmp(cmd, "map") == 0)
		return ternctl_map(argc - optind - 1, argv + optind + 1);
	if (strcmp(cmd, "queue") != 0) {
		fprintf(stderr, "ternctl: unknown command \"%s\"\n", cmd);
		ternctl_usage(stderr);
		return EX_USAGE;
	}
	if (optind + 1 < argc && qmgr_verb_parse(argv[optind + 1]) > 0)
		return ternctl_queue_verb(conf, argc - optind - 1, argv + optind + 1);
	for (i = optind + 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else {
			fprintf(stderr, "ternctl: queue: unknown argument \"%s\"\n", argv[i]);
			ternctl_usage(stderr);
			return EX_USAGE;
		}
	}
	cfg = ternctl_config_load(ternctl_config_path(conf));
	rc = ternctl_queue(cfg, json);
	config_free(cfg);
	return rc;
}
