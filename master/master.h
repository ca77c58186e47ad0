/*
 * master: ternd's supervising process. The only process that keeps
 * privileges: it reads the configuration, prepares the spool, binds the
 * listeners, forks and re-execs each role as mail_owner, restarts a role
 * that dies (with backoff), reloads on SIGHUP and drains on SIGTERM. It
 * parses no network input.
 */
#ifndef TERN_MASTER_H
#define TERN_MASTER_H

#include <stdbool.h>

#include "common/buf.h"
#include "config/config.h"

struct master_options {
	const char *config_path;	/* NULL: development defaults */
	bool foreground;		/* -f: stay attached, log to stderr too */
	bool debug;			/* -v */
	const char *self_path;		/* this binary, for re-exec */
};

/*
 * Load and check everything a configuration names: the file itself, then
 * the files its parameters point to (retry_rules). NULL with one
 * "FILE:LINE: message" line per problem appended to errors. ternd -n,
 * start-up and reload all use this.
 */
struct config *master_config_load(const char *path, struct buf *errors);

/* Run the master; returns the process exit status. */
int master_main(const struct master_options *opt);

/* The role side of the re-exec: `ternd --role=NAME ...`. Returns the exit
 * status. */
int master_role_main(const char *role_name, const struct master_options *opt);

#endif
