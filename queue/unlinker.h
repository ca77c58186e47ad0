/*
 * unlinker: unlink files of one directory on a thread of their own.
 *
 * Why: qmgr removes every delivered message file right after the commit
 * that forgets its envelope. On a file system mounted with `discard`, or
 * with large files, unlinkat() takes long enough (perf: 40% of qmgr's
 * time in bench/relay) to hold up the event loop that starts the next
 * deliveries. The file is already garbage when it is queued here: its
 * envelope is gone, nothing reads it again, and a file left by a crash is
 * an orphan that spool recovery removes at the next start. So the unlink
 * may happen later and elsewhere; it only must happen.
 *
 * The thread starts with the first name and runs until unlinker_free(),
 * which unlinks what is still queued before it returns. Names are
 * copied. Errors (a file already gone) are ignored, as the synchronous
 * unlink ignored them. Out of memory is fatal().
 *
 * One owner, one thread calling unlinker_add(); the worker is internal.
 */
#ifndef TERN_UNLINKER_H
#define TERN_UNLINKER_H

#include <stddef.h>

/* Longest name taken, NUL included. */
#define UNLINKER_NAME_MAX 64

struct unlinker;

/* For names relative to dirfd (borrowed: open until unlinker_free()). */
struct unlinker *unlinker_new(int dirfd);
/* Queue name (shorter than UNLINKER_NAME_MAX, no '/') for unlinking. */
void unlinker_add(struct unlinker *u, const char *name);
/* Wait until every queued name is unlinked (for tests and orderly stops). */
void unlinker_flush(struct unlinker *u);
/* Unlink what is queued, stop the thread, free u. NULL is fine. */
void unlinker_free(struct unlinker *u);

#endif
