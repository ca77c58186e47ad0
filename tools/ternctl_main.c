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
#include "tools/qlist.h"

#define TERNCTL_CONFIG_DEFAULT "/etc/tern/tern.conf"
/* Most config error text we print. */
#define TERNCTL_CONFIG_ERRORS_MAX (64u * 1024)
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
	rc = qlist_print(cfg, json, "ternctl");
	config_free(cfg);
	return rc;
}
