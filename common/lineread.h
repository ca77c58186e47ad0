/*
 * lineread: the one bounded line reader. It looks at the front of a buf
 * and hands out one line at a time as (pointer, length) without the line
 * terminator. It never needs a NUL and never writes to the input.
 *
 * A line ends at LF. Whether that LF came with a CR is reported, because
 * SMTP cares (RFC 5321 section 2.3.8: only CRLF ends a line), and the
 * caller decides what a bare LF means.
 *
 * Over-long lines: once max bytes pass without an LF, LINEREAD_TOO_LONG is
 * returned once, and the reader then discards input up to and including
 * the next LF (reporting LINEREAD_NEED_MORE meanwhile), so the session stays
 * in sync and nothing unbounded is ever buffered.
 */
#ifndef TERN_LINEREAD_H
#define TERN_LINEREAD_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

enum lineread_result {
	LINEREAD_LINE = 0,	/* a line; consume it with lineread_consume() */
	LINEREAD_NEED_MORE = 1,
	LINEREAD_TOO_LONG = 2,	/* reported once per over-long line */
};

struct lineread {
	size_t max;		/* longest line, terminator included */
	bool skipping;		/* discarding the rest of an over-long line */
	size_t line_total;	/* bytes of the line so far (for consume) */
};

struct lineread_line {
	const char *p;		/* borrowed from the buf until it is consumed */
	size_t len;		/* without CR LF / LF */
	bool crlf;		/* true when ended by CR LF, false for a bare LF */
};

void lineread_init(struct lineread *lr, size_t max);
/* Look for the next line at the front of in. May consume skipped bytes. */
enum lineread_result lineread_next(struct lineread *lr, struct buf *in,
                                   struct lineread_line *line);
/* Drop the line returned last from the front of in. */
void lineread_consume(struct lineread *lr, struct buf *in);

#endif
