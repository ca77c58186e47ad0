/*
 * lineread: bounded line splitting over a buf. Borrows the buf; owns
 * nothing.
 */
#include "common/lineread.h"

#include <string.h>

void
lineread_init(struct lineread *lr, size_t max)
{
	lr->max = max;
	lr->skipping = false;
	lr->line_total = 0;
}

enum lineread_result
lineread_next(struct lineread *lr, struct buf *in, struct lineread_line *line)
{
	const char *p = buf_data(in), *lf;
	size_t n = buf_len(in), scan;

	if (lr->skipping) {
		lf = memchr(p, '\n', n);
		if (lf == NULL) {
			buf_consume(in, n);
			return LINEREAD_NEED_MORE;
		}
		buf_consume(in, (size_t)(lf - p) + 1);
		lr->skipping = false;
		p = buf_data(in);
		n = buf_len(in);
	}
	scan = n < lr->max ? n : lr->max;
	lf = memchr(p, '\n', scan);
	if (lf == NULL) {
		if (n < lr->max)
			return LINEREAD_NEED_MORE;
		/* max bytes and no LF: too long. Drop it through its LF. */
		lf = memchr(p + scan, '\n', n - scan);
		if (lf != NULL) {
			buf_consume(in, (size_t)(lf - p) + 1);
		} else {
			buf_consume(in, n);
			lr->skipping = true;
		}
		return LINEREAD_TOO_LONG;
	}
	line->p = p;
	line->len = (size_t)(lf - p);
	line->crlf = line->len > 0 && p[line->len - 1] == '\r';
	if (line->crlf)
		line->len--;
	lr->line_total = (size_t)(lf - p) + 1;
	return LINEREAD_LINE;
}

void
lineread_consume(struct lineread *lr, struct buf *in)
{
	buf_consume(in, lr->line_total);
	lr->line_total = 0;
}
