/*
 * qmgr: the queue manager role's entry point (queue/qmgr.c; design in
 * doc/qmgr.md). The master starts it as `ternd --role=qmgr`.
 */
#ifndef TERN_QMGR_H
#define TERN_QMGR_H

#include "common/buf.h"
#include "config/config.h"

/* What qmgr cannot run with, beyond what config_load() checks: one
 * "FILE: message" line per problem appended to errors; 0 or -1. The
 * master runs it at start, at reload and for `ternd -n`. */
int qmgr_config_check(const struct config *cfg, struct buf *errors);

/* Run the queue manager until DRAIN or SIGTERM; adopts cfg. Returns the
 * exit status. */
int qmgr_main(const char *cfg_path, struct config *cfg, int control_fd);

#endif
