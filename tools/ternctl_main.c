/*
 * ternctl: the administrator's command line (doc/ternctl.md).
 *
 *   ternctl [-c FILE] queue [--json]                  tools/ternctl_queue.c
 *   ternctl [-c FILE] queue show ID [--json]
 *   ternctl [-c FILE] queue flush|hold|release|delete|requeue ...
 *   ternctl [-c FILE] stats [--json]                  tools/ternctl_stats.c
 *   ternctl [-c FILE] reload | stop                   tools/ternctl_master.c
 *   ternctl [-c FILE] trace [--from A] [--to A] [--id ID] [--since T]
 *           [--log FILE] [--json]                     tools/ternctl_trace.c
 *   ternctl [-c FILE] retry explain DOMAIN|ADDRESS ERROR-CLASS [--sender ADDR]
 *           [--first-failure SECONDS-AGO] [--host NAME] [--json]
 *   ternctl map build [--aliases] PATH ...
 *   ternctl map query [--aliases] SPEC KEY
 *
 * Who may: queue, stats, reload and stop are for root and the mail
 * owner's group (ternctl_access_check); reload and stop signal the master,
 * which runs as root, so they are root's in practice. trace reads the log
 * file with the caller's own rights; retry and map touch no spool.
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
 * Errors: one line on stderr (config errors: one FILE:LINE line each) and
 * a sysexits.h status: EX_USAGE for bad arguments, EX_CONFIG for the
 * configuration (and the retry_rules file), EX_NOPERM for a caller who
 * may not, EX_UNAVAILABLE when the spool or the daemon cannot be reached,
 * EX_IOERR when it cannot be read or the output cannot be written.
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
#include "queue/retry.h"
#include "tools/ternctl_common.h"
#include "tools/ternctl_master.h"
#include "tools/ternctl_queue.h"
#include "tools/ternctl_stats.h"
#include "tools/ternctl_trace.h"

/* Most text `retry explain` prints (200 rows are far less). */
#define TERNCTL_EXPLAIN_MAX (1024u * 1024)
/* Most text of retry_rules errors printed. */
#define TERNCTL_RULES_ERRORS_MAX (64u * 1024)
/* Most diagnostics `map build` and `map query` print. */
#define TERNCTL_MAP_DIAG_MAX (256u * 1024)
/* `map query`: exit status when the key is not in the map (postmap -q's). */
#define TERNCTL_MAP_NOTFOUND 1
/* Where the log is when log_file is empty (syslog: Debian's rsyslog). */
#define TERNCTL_SYSLOG_FILE "/var/log/mail.log"
/* Most trace output built in memory. */
#define TERNCTL_TRACE_OUT_MAX ((size_t)1 << 32)

/* ---- ternctl retry explain ---- */

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
	buf_init(&errors, TERNCTL_RULES_ERRORS_MAX);
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

/* ---- ternctl trace ---- */

/* T: "2h" (that long ago: ternctl_seconds), or a local time
 * "YYYY-MM-DD", "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS". */
static int
ternctl_since(const char *s, int64_t *out)
{
	static const char *const forms[] = { "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
	                                     "%Y-%m-%d %H:%M", "%Y-%m-%d" };
	int64_t ago;
	struct tm tm;

	if (strchr(s, '-') == NULL && ternctl_seconds(s, &ago) == 0) {
		*out = (int64_t)time(NULL) - ago;
		return 0;
	}
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		const char *end;

		memset(&tm, 0, sizeof(tm));
		end = strptime(s, forms[i], &tm);
		if (end != NULL && *end == '\0') {
			tm.tm_isdst = -1;
			*out = (int64_t)mktime(&tm);
			return 0;
		}
	}
	return -1;
}

/* Feed the log to the tracer, line by line; a line longer than the
 * buffer is fed cut (the tracer keeps TRACE_LINE_MAX of it anyway). */
static int
ternctl_trace_feed(struct trace *t, const char *path)
{
	char line[2 * TRACE_LINE_MAX];
	bool skipping = false;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		fprintf(stderr, "ternctl: trace: cannot read the log %s: %s\n", path, strerror(errno));
		return errno == EACCES ? EX_NOPERM : EX_NOINPUT;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line);
		bool whole = n > 0 && line[n - 1] == '\n';

		if (whole)
			line[--n] = '\0';
		if (!skipping)
			trace_line(t, line, n);
		skipping = !whole;
	}
	if (ferror(f)) {
		fprintf(stderr, "ternctl: trace: read error on %s\n", path);
		fclose(f);
		return EX_IOERR;
	}
	fclose(f);
	return EX_OK;
}

static int
ternctl_trace(const char *conf, int argc, char **argv)
{
	struct trace_filter f;
	const char *log = NULL, *v;
	struct config *cfg = NULL;
	struct trace *t;
	struct buf out;
	bool json = false, missing;
	int rc;

	memset(&f, 0, sizeof(f));
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if ((v = ternctl_opt_value(argc, argv, &i, "--from", &missing)) != NULL)
			f.from = v;
		else if (!missing && (v = ternctl_opt_value(argc, argv, &i, "--to", &missing)) != NULL)
			f.to = v;
		else if (!missing && (v = ternctl_opt_value(argc, argv, &i, "--id", &missing)) != NULL)
			f.id = v;
		else if (!missing && (v = ternctl_opt_value(argc, argv, &i, "--log", &missing)) != NULL)
			log = v;
		else if (!missing &&
		         (v = ternctl_opt_value(argc, argv, &i, "--since", &missing)) != NULL) {
			if (ternctl_since(v, &f.since) != 0) {
				fprintf(stderr, "ternctl: trace: --since \"%s\": not 2h, 3d ... nor "
				        "YYYY-MM-DD[ HH:MM[:SS]]\n", v);
				return EX_USAGE;
			}
		} else {
			fprintf(stderr, missing ? "ternctl: trace: %s needs a value\n"
			                        : "ternctl: trace: unknown argument \"%s\"\n", argv[i]);
			return EX_USAGE;
		}
	}
	if (f.from == NULL && f.to == NULL && f.id == NULL) {
		fprintf(stderr, "ternctl: trace needs --from, --to or --id\n");
		ternctl_usage(stderr);
		return EX_USAGE;
	}
	if (log == NULL) {
		cfg = ternctl_config_load(ternctl_config_path(conf));
		log = *config_str(cfg, P_LOG_FILE) ? config_str(cfg, P_LOG_FILE) : TERNCTL_SYSLOG_FILE;
	}
	t = trace_new(&f, (int64_t)time(NULL));
	rc = ternctl_trace_feed(t, log);
	if (rc == EX_OK) {
		size_t n;

		buf_init(&out, TERNCTL_TRACE_OUT_MAX);
		n = trace_render(t, &out, json);
		rc = ternctl_write(&out);
		buf_free(&out);
		if (trace_skipped_count(t) > 0)
			fprintf(stderr, "ternctl: trace: more than %u messages open at once in the log; "
			        "%llu lines of others were not followed\n", (unsigned)TRACE_OPEN_MAX,
			        (unsigned long long)trace_skipped_count(t));
		if (trace_noqueue_left_out(t) > 0)
			fprintf(stderr, "ternctl: trace: more than %u NOQUEUE lines matched; %llu more "
			        "were left out\n", (unsigned)TRACE_NOQUEUE_MAX,
			        (unsigned long long)trace_noqueue_left_out(t));
		if (rc == EX_OK && n == 0) {
			if (!json)
				fprintf(stderr, "ternctl: trace: no message matched in %s\n", log);
			rc = 1;	/* like grep: nothing found */
		}
	}
	trace_free(t);
	config_free(cfg);	/* log may point into it */
	return rc;
}

static const struct {
	const char *name;
	int (*run)(const char *conf, int argc, char **argv);
} ternctl_commands[] = {
	{ "queue", ternctl_queue },
	{ "stats", ternctl_stats },
	{ "trace", ternctl_trace },
	{ "retry", ternctl_retry },
};

int
main(int argc, char **argv)
{
	const char *conf = NULL, *cmd;
	int c;

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
	argc -= optind + 1;
	argv += optind + 1;
	if (strcmp(cmd, "map") == 0)
		return ternctl_map(argc, argv);
	if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "stop") == 0)
		return ternctl_master(conf, cmd, argc, argv);
	for (size_t k = 0; k < sizeof(ternctl_commands) / sizeof(ternctl_commands[0]); k++)
		if (strcmp(cmd, ternctl_commands[k].name) == 0)
			return ternctl_commands[k].run(conf, argc, argv);
	fprintf(stderr, "ternctl: unknown command \"%s\"\n", cmd);
	ternctl_usage(stderr);
	return EX_USAGE;
}
