/*
 * qlist: the queue listing shared by `ternctl queue` and `mailq`
 * (`sendmail -bp`). Reads the spool read-only; never writes it.
 */
#ifndef TERN_QLIST_H
#define TERN_QLIST_H

#include <stdbool.h>

#include "common/buf.h"
#include "config/config.h"
#include "queue/qstore.h"

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

/* Length of a valid UTF-8 sequence (RFC 3629) at p, within left bytes;
 * 0 when there is none. */
size_t qlist_utf8_len(const unsigned char *p, size_t left);
/* s for a terminal: valid UTF-8 passes; control characters (C0, DEL,
 * C1), backslashes and bytes that are not UTF-8 become \ooo. */
void qlist_text_str(struct buf *out, const char *s);
/* s as a JSON string (RFC 8259), or null for NULL; bytes that are not
 * UTF-8 become U+FFFD. */
void qlist_json_str(struct buf *out, const char *s);
/* "pending", "deferred", "delivered", "bounced", "expired". */
const char *qlist_state_name(enum qstore_state st);

#endif
