/*
 * masterpid: find the running ternd master of a spool, for the commands
 * that signal it (ternctl reload / stop, sendmail -bi).
 *
 * The master writes its pid into queue_directory/master.lock (a line,
 * then "config=PATH": the file it was started with) and holds
 * an exclusive flock() on that file for as long as it runs: the lock,
 * not the file's presence, says the pid is current (a master killed
 * with SIGKILL leaves a stale file, and its lock with it goes away).
 * doc/ternctl.md says why this is a pid file and a signal rather than a
 * control socket.
 */
#ifndef TERN_MASTERPID_H
#define TERN_MASTERPID_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct masterpid {
	pid_t pid;
	int lock_fd;	/* open on master.lock while found; -1 otherwise */
	/* The configuration file the master reads on SIGHUP, absolute, from
	 * the file's "config=PATH" line; "" for the development defaults.
	 * config_known is false for a master that wrote no such line. */
	bool config_known;
	char config[4096];
};

/*
 * Find the master of queue_directory. 0 with *mp filled (close it with
 * masterpid_close()), or a sysexits code with a reason in err:
 * EX_UNAVAILABLE when no master runs there, EX_NOPERM when the lock file
 * may not be read (it is root's: 0600), EX_SOFTWARE when the file names a
 * process that is not a ternd master.
 */
int masterpid_find(const char *queue_directory, struct masterpid *mp, char *err, size_t errsz);

/* Wait until the master has exited (its lock is free), polling, at most
 * timeout_ms; true when it has. */
bool masterpid_wait_exit(const struct masterpid *mp, int timeout_ms);

void masterpid_close(struct masterpid *mp);

/*
 * Is the process pid the ternd master (its program is named ternd and it
 * is not a role: no --role= argument)? Reads /proc/PID/exe and
 * /proc/PID/cmdline (root may read any). false with a reason otherwise.
 */
bool masterpid_is_ternd(pid_t pid, char *err, size_t errsz);

#endif
