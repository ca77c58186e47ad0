/*
 * qmgr_client: a blocking, one-shot conversation with qmgr over
 * queue_directory/private/qmgr, for short-lived commands (ternctl queue
 * flush/hold/..., stats, and sendmail -q): connect, send one
 * FRAME_QMGR_COMMAND, wait for the FRAME_QMGR_REPLY.
 */
#ifndef TERN_QMGR_CLIENT_H
#define TERN_QMGR_CLIENT_H

#include <stddef.h>

#include "queue/agent_proto.h"

/*
 * 0 with *rep filled (rep->status is qmgr's verdict), or a sysexits code
 * with a reason in err: EX_UNAVAILABLE when qmgr does not answer (not
 * running, or timeout_ms passed), EX_NOPERM when the socket refuses us,
 * EX_PROTOCOL on a malformed reply.
 */
int qmgr_client_command(const char *queue_directory, const struct qmgr_command *cmd,
                        struct qmgr_reply *rep, int timeout_ms, char *err, size_t errsz);

/*
 * QMGR_VERB_STATS: 0 with *st filled (free it with qmgr_stats_free()), or
 * a sysexits code with a reason in err, as qmgr_client_command() (and
 * qmgr's own status when it refuses).
 */
int qmgr_client_stats(const char *queue_directory, struct qmgr_stats *st, int timeout_ms, char *err,
                      size_t errsz);

#endif
