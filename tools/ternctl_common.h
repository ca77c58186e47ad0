/*
 * ternctl_common: what ternctl's commands share: the configuration, who
 * may run them, option parsing helpers, writing the output.
 */
#ifndef TERN_TERNCTL_COMMON_H
#define TERN_TERNCTL_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "config/config.h"

/* How long a command waits for qmgr's answer. */
#define TERNCTL_QMGR_TIMEOUT_MS 30000

/* -c FILE, else $TERN_CONFIG, else /etc/tern/tern.conf when it exists,
 * else NULL (the development defaults). */
const char *ternctl_config_path(const char *opt_c);
/* Load it; on errors print them (FILE:LINE) and exit(EX_CONFIG). */
struct config *ternctl_config_load(const char *path);

/*
 * May the caller run `what` ("queue", "stats" ...)? Root, the mail owner
 * itself and members of the mail owner's group may. EX_OK, or EX_NOPERM
 * after printing "ternctl: permission denied: WHAT needs ... (root or
 * group G only)".
 */
int ternctl_access_check(const struct config *cfg, const char *what);
/* The same for another program of ours (mailq, sendmail -q): "PROG:
 * permission denied: WHAT needs ...". */
int tools_access_check(const struct config *cfg, const char *prog, const char *what);

/* Write out to stdout; EX_OK or EX_IOERR (printed). */
int ternctl_write(const struct buf *out);

/* --name VALUE or --name=VALUE at argv[*i] (advances *i); NULL when it is
 * not --name, or when the value is missing (then *missing is set). */
const char *ternctl_opt_value(int argc, char **argv, int *i, const char *name, bool *missing);

/* A number of seconds, or one number with a unit s, m, h, d, w. */
int ternctl_seconds(const char *s, int64_t *out);

void ternctl_usage(FILE *f);

#endif
