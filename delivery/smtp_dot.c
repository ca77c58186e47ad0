/*
 * smtp_dot: dot-stuffing for DATA, a byte state machine that keeps its
 * state across calls (see the header for the rules and the bare CR / LF
 * decision). Runs of ordinary bytes are copied in one go; only CR, LF and
 * a "." at the start of a line take the byte-at-a-time path. Feeding a
 * message one byte at a time gives exactly the output of feeding it whole.
 */
#include "delivery/smtp_dot.h"

#include "common/log.h"

enum smtp_dot_state {
	SMTP_DOT_ST_BOL = 0,	/* at the start of a line (after CR LF) */
	SMTP_DOT_ST_TEXT,	/* inside a line */
	SMTP_DOT_ST_CR,		/* a CR was the last byte: CR LF, or a bare CR */
	SMTP_DOT_ST_DONE,	/* the terminator was appended */
};

void
smtp_dot_init(struct smtp_dot *d)
{
	d->state = SMTP_DOT_ST_BOL;
	d->seen = 0;
	d->in = 0;
	d->stuffed = 0;
}

/* Length of the run of bytes at in that are neither CR nor LF. */
static size_t
smtp_dot_run(const char *in, size_t len)
{
	size_t n = 0;

	while (n < len && in[n] != '\r' && in[n] != '\n')
		n++;
	return n;
}

/*
 * One byte through the state machine. Returns false, with nothing
 * appended and the state unchanged, when out has no room for its output.
 */
static bool
smtp_dot_byte(struct smtp_dot *d, char c, struct buf *out)
{
	int cur = d->state;
	unsigned seen = 0;

	if (cur == SMTP_DOT_ST_CR) {
		if (c == '\n') {
			/* CR LF: the next byte starts a line. */
			if (buf_append_char(out, c) != BUF_OK)
				return false;
			d->state = SMTP_DOT_ST_BOL;
			return true;
		}
		/* The CR already went out and was bare (RFC 5322 2.3): not a
		 * line end, so c is inside the line. */
		seen |= SMTP_DOT_BARE_CR;
		cur = SMTP_DOT_ST_TEXT;
	}
	if (cur == SMTP_DOT_ST_BOL && c == '.') {
		/* RFC 5321 4.5.2: a line starting with "." gets one more. */
		if (buf_append(out, "..", 2) != BUF_OK)
			return false;
		d->stuffed++;
		d->state = SMTP_DOT_ST_TEXT;
		return true;
	}
	if (buf_append_char(out, c) != BUF_OK)
		return false;
	if (c == '\n') {
		/* Bare LF: not a line end (RFC 5321 2.3.8), so no stuffing
		 * after it; passed on as is (the header says why). */
		seen |= SMTP_DOT_BARE_LF;
	}
	d->seen |= seen;
	d->state = c == '\r' ? SMTP_DOT_ST_CR : SMTP_DOT_ST_TEXT;
	return true;
}

size_t
smtp_dot_feed(struct smtp_dot *d, const char *in, size_t len, struct buf *out)
{
	size_t pos = 0, n, room;

	if (d->state == SMTP_DOT_ST_DONE)
		panic("smtp_dot_feed after smtp_dot_finish");
	while (pos < len) {
		/* The fast path: ordinary bytes inside a line map 1:1. */
		if (d->state == SMTP_DOT_ST_TEXT ||
		    (d->state == SMTP_DOT_ST_BOL && in[pos] != '.')) {
			n = smtp_dot_run(in + pos, len - pos);
			room = buf_room(out);
			if (n > room)
				n = room;
			if (n > 0) {
				if (buf_append(out, in + pos, n) != BUF_OK)
					break;
				pos += n;
				d->state = SMTP_DOT_ST_TEXT;
				continue;
			}
		}
		if (!smtp_dot_byte(d, in[pos], out))
			break;
		pos++;
	}
	d->in += pos;
	return pos;
}

enum buf_result
smtp_dot_finish(struct smtp_dot *d, struct buf *out)
{
	enum buf_result r;

	switch (d->state) {
	case SMTP_DOT_ST_BOL:
		/* The content's last CR LF (or DATA's, for empty content) is
		 * the first CR LF of CR LF "." CR LF (RFC 5321 4.1.1.4). */
		r = buf_append(out, ".\r\n", 3);
		break;
	case SMTP_DOT_ST_CR:
	case SMTP_DOT_ST_TEXT:
		/* No final CR LF: add one, or the "." would end a line of
		 * content instead of standing alone. A final lone CR is bare
		 * and stays content. */
		r = buf_append(out, "\r\n.\r\n", SMTP_DOT_FINISH_MAX);
		if (r == BUF_OK && d->state == SMTP_DOT_ST_CR)
			d->seen |= SMTP_DOT_BARE_CR;
		break;
	default:
		panic("smtp_dot_finish called twice");
	}
	if (r == BUF_OK)
		d->state = SMTP_DOT_ST_DONE;
	return r;
}
