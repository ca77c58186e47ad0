/*
 * local_command: delivery to a command ("|cmd" aliases, .forward,
 * mailbox_command) and the privilege switch every local delivery runs
 * under (doc/local.md).
 *
 * The local agent forks one child per delivery with local_run_as(); the
 * child becomes the recipient and calls local_maildir_deliver(),
 * local_mbox_deliver() or local_command_deliver(), whose result comes back
 * to the agent over a pipe. Nothing here logs or exits (out of memory is
 * fatal()); every outcome is a struct local_result (local_mailbox.h).
 */
#ifndef TERN_LOCAL_COMMAND_H
#define TERN_LOCAL_COMMAND_H

#include <stdbool.h>
#include <sys/types.h>

#include "delivery/local_mailbox.h"

#define LOCAL_COMMAND_TIME_LIMIT 1000	/* s: Postfix's command_time_limit */
#define LOCAL_COMMAND_OUTPUT_MAX 500	/* bytes of output kept for the text */
#define LOCAL_COMMAND_PATH "/usr/bin:/bin"	/* PATH, Postfix's _PATH_DEFPATH */

struct local_command_opts {
	unsigned time_limit_s;	/* 0: LOCAL_COMMAND_TIME_LIMIT */
	bool from_line;		/* a From_ line before Return-Path, as Postfix's
				 * local(8) writes for commands (procmail, mail
				 * filters want it); the issue asks for none, so
				 * it is off unless set */
};

/*
 * Run "/bin/sh -c command" with the message on its stdin (LF line ends,
 * Return-Path:, X-Original-To:, Delivered-To: first, no ">From " quoting),
 * in its own process group, with stdout and stderr captured (the first
 * LOCAL_COMMAND_OUTPUT_MAX bytes kept, tabs and newlines as spaces, other
 * unprintable bytes as "_"). The environment is only HOME, LOGNAME, USER,
 * SHELL, PATH, SENDER, RECIPIENT, LOCAL, EXTENSION, DOMAIN and
 * ORIGINAL_RECIPIENT from d (unset ones left out), each value censored to
 * Postfix's command_expansion_filter characters (others become "_"). The
 * working directory is d->home, or "/" when it cannot be entered. No
 * descriptor of ours but the two pipes reaches the command; its signals
 * are reset to their defaults.
 *
 * Never blocks forever: stdin and output go through poll() and the whole
 * run is bounded by the time limit, after which the process group is
 * killed. A command that exits without reading all its input is judged by
 * its exit status alone (EPIPE and SIGPIPE are ignored: SIGPIPE is blocked
 * in the calling thread for the duration and one raised by our writes is
 * consumed).
 *
 * Results, as Postfix's pipe_command(), the text ending in
 * ". Command output: ..." when there was output:
 *   exit 0                     OK 2.0.0 "delivered to command: CMD"
 *   output "4.x.y text" or "5.x.y text" and a non-zero exit
 *                              TEMPFAIL/PERMFAIL with that code and text
 *   EX_TEMPFAIL 75, EX_OSERR 71
 *                              TEMPFAIL 4.3.0 "temporary failure" ...
 *   another sysexits code      PERMFAIL with the sysexits table's code:
 *                              67 is 5.1.1 "user unknown", 64 5.3.0
 *                              "command line usage error" ...
 *   another exit status        PERMFAIL 5.3.0
 *                              "Command died with status N: \"CMD\""
 *   killed by a signal         TEMPFAIL 4.3.0
 *                              "Command died with signal N: \"CMD\""
 *   the time limit             TEMPFAIL 4.3.0
 *                              "Command time limit exceeded: \"CMD\""
 *   our own trouble (pipe, fork, reading the message)
 *                              TEMPFAIL 4.3.0
 * opts may be NULL: the defaults.
 */
enum local_status local_command_deliver(int msgfd, const struct local_delivery *d,
                                        const char *command,
                                        const struct local_command_opts *opts,
                                        struct local_result *out);

/* local_run_as() flags */
#define LOCAL_RUN_ALLOW_ROOT 0x01u	/* uid or gid 0 allowed (never for mail) */

/*
 * What local_run_as() runs in the child: fill *out (it starts as a
 * TEMPFAIL "delivery function gave no result"). The return value is not
 * used; the local_*_deliver functions fit through a small wrapper.
 */
typedef enum local_status local_run_fn(void *arg, struct local_result *out);

/*
 * Fork; in the child take the groups of user (looked up with
 * getgrouplist() before the fork, so the child calls no NSS code) or only
 * gid when user is NULL, then gid, then uid, each checked, and check that
 * setuid(0) fails afterwards; set umask 077, ignore SIGXFSZ (so that a
 * file size limit is the error EFBIG, not a killed process) and give
 * SIGCHLD its default (local_command_deliver() reaps its child); run fn and
 * send its result back over a pipe. The parent reads it (at most one
 * struct) and reaps the child. When the caller is not root and uid is its
 * own, nothing is switched (the child is forked all the same).
 *
 * uid or gid 0 is refused without LOCAL_RUN_ALLOW_ROOT: TEMPFAIL 4.3.5
 * "mail system configuration error" (Postfix maps root to default_privs
 * before it gets here). A switch that fails is TEMPFAIL 4.3.0; a child that
 * dies without a result TEMPFAIL 4.3.0 "delivery process died (signal N)".
 * Returns out->status.
 */
enum local_status local_run_as(uid_t uid, gid_t gid, const char *user, unsigned flags,
                               local_run_fn *fn, void *arg, struct local_result *out);

#endif
