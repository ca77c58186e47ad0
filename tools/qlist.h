/*
 * qlist: the queue listing shared by `ternctl queue` and `mailq`
 * (`sendmail -bp`). Reads the spool read-only; never writes it.
 */
#ifndef TERN_QLIST_H
#define TERN_QLIST_H

#include <stdbool.h>

#include "config/config.h"

/*
 * Print the queue of cfg's queue_directory to stdout: Postfix's mailq
 * layout ("Mail queue is empty", or one entry per message with each
 * pending recipient and a deferred one's last error, then "-- N Kbytes
 * in M Requests."), or with json one JSON array. prog ("ternctl",
 * "mailq") prefixes the one-line error on stderr. Returns EX_OK,
 * EX_UNAVAILABLE (the spool cannot be opened: not there, or no
 * permission) or EX_IOERR (cannot read it, or write the output).
 */
int qlist_print(const struct config *cfg, bool json, const char *prog);

#endif
