/*
 * rolectl: the role side of the socketpair every role shares with the
 * master (fd MASTER_FD_CONTROL): READY / RELOADED / DRAINED up, RELOAD /
 * DRAIN / LISTENERS down. Shared by smtpd, qmgr and the agents so each
 * speaks it the same way.
 *
 * The master is trusted: a malformed frame from it is a bug (panic; the
 * master restarts the role).
 */
#ifndef TERN_ROLECTL_H
#define TERN_ROLECTL_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/frame.h"

/* Frames from the master are small; this bounds a runaway sender. */
#define ROLECTL_IN_MAX (64u * 1024)

/* Send READY (num = pid), RELOADED (text = "" or the error) or DRAINED.
 * A master that is gone is noticed on the read side, not here. */
void rolectl_send(int fd, enum frame_type type, const char *text, uint64_t num);

/*
 * Read what the socket has (descriptors passed along are appended to
 * fds[*nfds..maxfds)) and call on_frame for each whole frame. Returns 0,
 * or -1 when the master is gone (end of file or a read error).
 */
int rolectl_read(int fd, struct buf *in, int *fds, size_t *nfds, size_t maxfds,
                 void (*on_frame)(void *arg, struct frame_reader *r), void *arg);

/*
 * For a role that takes no listeners: check the master's frame r and
 * return its type, FRAME_MASTER_RELOAD or FRAME_MASTER_DRAIN (with the
 * drain's bound in *drain_s). Any other type, or a malformed frame, is a
 * bug in the master: panic().
 */
enum frame_type rolectl_command(struct frame_reader *r, uint64_t *drain_s);

#endif
