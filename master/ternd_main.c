/*
 * ternd: the master's command line.
 *
 *   ternd [-c FILE] [-f] [-n] [-v]
 *     -c FILE  configuration (default /etc/tern/tern.conf; with no file at
 *              all, the development defaults)
 *     -f       stay in the foreground and log to stderr as well
 *     -n       check the configuration and exit (0 valid, 1 otherwise)
 *     -v       debug logging
 *
 * `ternd --role=NAME ...` is how the master re-execs its children; it is
 * not for people.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "common/buf.h"
#include "config/config.h"
#include "master/master.h"

#define TERND_DEFAULT_CONFIG "/etc/tern/tern.conf"

static void
ternd_usage(void)
{
	fprintf(stderr, "usage: ternd [-c FILE] [-f] [-n] [-v]\n");
}

/* Which file: -c, else $TERN_CONFIG, else the default if it exists, else
 * none (the development defaults). */
static const char *
ternd_config_path(const char *given)
{
	const char *env = getenv("TERN_CONFIG");

	if (given != NULL)
		return given;
	if (env != NULL && *env != '\0')
		return env;
	if (access(TERND_DEFAULT_CONFIG, F_OK) == 0)
		return TERND_DEFAULT_CONFIG;
	return NULL;
}

static int
ternd_check(const char *path)
{
	struct buf errors;
	struct config *cfg;

	buf_init(&errors, 1024 * 1024);
	cfg = master_config_load(path, &errors);
	if (cfg == NULL) {
		fputs(buf_cstr(&errors), stderr);
		buf_free(&errors);
		return 1;
	}
	config_free(cfg);
	buf_free(&errors);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "role", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct master_options opt;
	const char *role = NULL, *given = NULL;
	char self[PATH_MAX];
	bool check = false;
	ssize_t n;
	int c;

	memset(&opt, 0, sizeof(opt));
	while ((c = getopt_long(argc, argv, "c:fnv", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': given = optarg; break;
		case 'f': opt.foreground = true; break;
		case 'n': check = true; break;
		case 'v': opt.debug = true; break;
		case 'R': role = optarg; break;
		default:
			ternd_usage();
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		ternd_usage();
		return EX_USAGE;
	}
	opt.config_path = role != NULL ? given : ternd_config_path(given);
	if (check)
		return ternd_check(opt.config_path);
	if (role != NULL)
		return master_role_main(role, &opt);

	/* Re-exec the very binary that runs, whatever PATH says later. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0) {
		fprintf(stderr, "ternd: readlink /proc/self/exe: %s\n", strerror(errno));
		return EX_OSERR;
	}
	self[n] = '\0';
	opt.self_path = self;
	if (!opt.foreground && daemon(1, 0) < 0) {
		fprintf(stderr, "ternd: daemon: %s\n", strerror(errno));
		return EX_OSERR;
	}
	return master_main(&opt);
}
