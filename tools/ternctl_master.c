/*
 * ternctl_master: reload and stop (ternctl_master.h).
 *
 * reload: the configuration is loaded here first, so a file with errors
 * is reported (FILE:LINE) and the master is not bothered; then SIGHUP.
 * The file checked is the master's own (master.lock names it) when that
 * is not ternctl's: ternctl's file only says where the spool is.
 * The master checks it again and keeps the old one if it fails.
 * stop: SIGTERM, then wait until the master has exited (its lock on
 * master.lock is free), at most smtpd_drain_timeout plus the master's
 * grace before SIGKILL plus a margin.
 */
#include "tools/ternctl_master.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "config/config.h"
#include "tools/masterpid.h"
#include "tools/ternctl_common.h"

/* The master's own grace after the drain timeout (master.c) and ours. */
#define TM_STOP_GRACE_S (10 + 5)

/* Is the master's configuration file another than ours? */
static bool
tm_other_config(const char *ours, const struct masterpid *mp)
{
	char real[PATH_MAX];

	if (!mp->config_known || mp->config[0] == '\0')
		return false;	/* unknown, or the defaults: nothing to read */
	if (ours == NULL)
		return true;
	if (realpath(ours, real) == NULL)
		snprintf(real, sizeof(real), "%s", ours);
	return strcmp(real, mp->config) != 0;
}

static int
tm_signal(const struct masterpid *mp, int signo, const char *verb)
{
	if (kill(mp->pid, signo) == 0)
		return EX_OK;
	if (errno == EPERM) {
		fprintf(stderr, "ternctl: permission denied: %s signals the master, ternd pid %ld, "
		        "which runs as root (root only)\n", verb, (long)mp->pid);
		return EX_NOPERM;
	}
	fprintf(stderr, "ternctl: cannot signal ternd pid %ld: %s\n", (long)mp->pid,
	        strerror(errno));
	return errno == ESRCH ? EX_UNAVAILABLE : EX_OSERR;
}

int
ternctl_master(const char *conf, const char *verb, int argc, char **argv)
{
	bool stop = strcmp(verb, "stop") == 0;
	struct masterpid mp;
	struct config *cfg;
	char err[600];
	const char *path;
	int64_t wait_s;
	int rc;

	if (argc > 0) {
		fprintf(stderr, "ternctl: %s takes no arguments (\"%s\")\n", verb, argv[0]);
		return EX_USAGE;
	}
	path = ternctl_config_path(conf);
	cfg = ternctl_config_load(path);
	rc = ternctl_access_check(cfg, verb);
	if (rc != EX_OK) {
		config_free(cfg);
		return rc;
	}
	rc = masterpid_find(config_str(cfg, P_QUEUE_DIRECTORY), &mp, err, sizeof(err));
	wait_s = config_time(cfg, P_SMTPD_DRAIN_TIMEOUT) + TM_STOP_GRACE_S;
	config_free(cfg);
	if (rc == EX_NOPERM) {
		fprintf(stderr, "ternctl: permission denied: %s signals the master; %s (root only)\n",
		        verb, err);
		return rc;
	}
	if (rc != 0) {
		fprintf(stderr, "ternctl: %s: %s\n", verb, err);
		return rc;
	}
	if (!stop && tm_other_config(path, &mp)) {
		/* Exits with the FILE:LINE errors when it does not load. */
		config_free(ternctl_config_load(mp.config));
		printf("ternctl: reload: checked %s, the file ternd (pid %ld) was started with\n",
		       mp.config, (long)mp.pid);
	}
	rc = tm_signal(&mp, stop ? SIGTERM : SIGHUP, verb);
	if (rc == EX_OK && !stop) {
		printf("ternctl: reload: ternd (pid %ld) told to re-read its configuration\n",
		       (long)mp.pid);
	} else if (rc == EX_OK) {
		if (masterpid_wait_exit(&mp, (int)(wait_s * 1000))) {
			printf("ternctl: stop: ternd (pid %ld) has stopped\n", (long)mp.pid);
		} else {
			fprintf(stderr, "ternctl: stop: ternd (pid %ld) still running after %lld s\n",
			        (long)mp.pid, (long long)wait_s);
			rc = EX_TEMPFAIL;
		}
	}
	masterpid_close(&mp);
	return rc;
}
