/*
 * smtpd_data: the message content decoder for DATA and BDAT, and the one
 * place that decides where a message ends. Pure: bytes in, bytes out; it
 * owns no memory (the caller's struct and buf), never logs, never fails.
 *
 * The decoder is a byte state machine that keeps its state across calls,
 * never looks past len, and decodes each input byte as a unit: it produces
 * at most two output bytes, and either all of them are appended (then the
 * byte counts as consumed) or none are (out is full: the caller drains and
 * feeds the rest again). Feeding a message one byte at a time therefore
 * gives exactly the output and flags of feeding it whole.
 *
 * RFC decisions, each a named branch below:
 *  - end of data (RFC 5321 4.5.2, 4.1.1.4): only CR LF "." CR LF, where the
 *    first CR LF may be the one that ended the DATA command. Nothing else
 *    ends a message: not LF "." LF, not CR "." CR, not "." followed by a
 *    bare CR or LF (SMTP smuggling, CVE-2023-51764/51765/51766).
 *  - dot-unstuffing (4.5.2): a line that starts after a real CR LF and
 *    begins with "." loses that dot. Lines that start after a bare LF get
 *    no dot handling at all: they are stored verbatim (".\r\n" after a bare
 *    LF is the content line ".", never the end).
 *  - bare LF (2.3.8; RFC 5322 2.3): flagged, and stored as CR LF. Bare CR:
 *    flagged, stored as is; it never ends a line. Both modes decode the
 *    same way; under SMTPD_DATA_REJECT the caller rejects a flagged
 *    message with 550 5.5.2 (hence no separate code path here).
 *  - NUL and 8-bit bytes: content, passed through (8BITMIME is declared by
 *    the client; BODY= checking is the session's business).
 *  - size (RFC 1870 section 4): output octets, CR LF included, stuffed dots
 *    and the terminating "." CR LF excluded.
 *  - line length (5321 4.5.3.1.6): output octets of a line with its CR LF.
 *  - hop count (5321 6.3): lines of the header section beginning with
 *    "Received:" (any case). The header section ends at the first empty
 *    line of the output, so a line after a normalised bare LF counts as a
 *    line here (counting more, never fewer, is the safe side of a loop
 *    limit).
 */
#include "smtpd/smtpd_data.h"

#include <string.h>

/* Input states, kept in struct smtpd_data.state. */
enum smtpd_data_state {
	SMTPD_DATA_ST_BOL = 0,	/* DATA: line start after a real CR LF (dot rules apply) */
	SMTPD_DATA_ST_DOT,	/* DATA: BOL and "." */
	SMTPD_DATA_ST_DOT_CR,	/* DATA: BOL and "." CR: the end, if LF follows */
	SMTPD_DATA_ST_TEXT,	/* in a line, or a line start without dot rules */
	SMTPD_DATA_ST_CR,	/* a CR, not yet known to be part of CR LF */
	SMTPD_DATA_ST_END,	/* the end-of-data line was consumed */
};

/* RFC 5322 3.6.7 trace field name, matched case-insensitively. */
#define SMTPD_DATA_RECEIVED "received:"
#define SMTPD_DATA_RECEIVED_LEN 9
/* hdr_prefix_len when this line can no longer be a Received: line. */
#define SMTPD_DATA_HDR_DONE (SMTPD_DATA_RECEIVED_LEN + 1)
/* Most output bytes one input byte can produce ("\r" + byte, or CR LF). */
#define SMTPD_DATA_STEP_MAX 2

_Static_assert(sizeof(((struct smtpd_data *)0)->hdr_prefix) == SMTPD_DATA_RECEIVED_LEN,
               "hdr_prefix holds exactly \"received:\"");

void
smtpd_data_init(struct smtpd_data *d, enum smtpd_data_mode mode,
                enum smtpd_data_newline newline, uint64_t size_max, uint64_t line_max)
{
	memset(d, 0, sizeof(*d));
	d->mode = mode;
	d->newline = newline;
	d->size_max = size_max;
	d->line_max = line_max;
	d->in_headers = true;
	/* DATA: the CR LF of the DATA command itself starts the first line. */
	d->state = mode == SMTPD_DATA_DOT ? SMTPD_DATA_ST_BOL : SMTPD_DATA_ST_TEXT;
}

/* Is a line's Received: prefix still being matched? */
static bool
smtpd_data_hdr_matching(const struct smtpd_data *d)
{
	return d->in_headers && d->hdr_prefix_len < SMTPD_DATA_RECEIVED_LEN;
}

/* Count output bytes: size, line length, header section, Received:. In the
 * output every LF is the second half of a CR LF. */
static void
smtpd_data_account(struct smtpd_data *d, const char *o, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++) {
		char c = o[k];

		d->line_len++;
		if (d->line_max > 0 && d->line_len > d->line_max)
			d->problems |= SMTPD_DATA_LONG_LINE;
		if (d->in_headers) {
			if (c == '\n') {
				if (d->line_len == 2)
					d->in_headers = false;	/* the empty line */
			} else if (d->hdr_prefix_len < SMTPD_DATA_RECEIVED_LEN) {
				char lc = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
				if (lc != SMTPD_DATA_RECEIVED[d->hdr_prefix_len]) {
					d->hdr_prefix_len = SMTPD_DATA_HDR_DONE;
				} else {
					d->hdr_prefix[d->hdr_prefix_len++] = c;
					if (d->hdr_prefix_len == SMTPD_DATA_RECEIVED_LEN) {
						d->received_count++;
						d->hdr_prefix_len = SMTPD_DATA_HDR_DONE;
					}
				}
			}
		}
		if (c == '\n') {
			d->line_len = 0;
			d->hdr_prefix_len = 0;
		}
	}
	d->size += n;
}

/*
 * Store the output of one input byte. Over size_max it is counted and
 * dropped (SMTPD_DATA_TOO_BIG, sticky). false when out is full: nothing
 * was stored or counted, and the byte must be fed again.
 */
static bool
smtpd_data_emit(struct smtpd_data *d, struct buf *out, const char *o, size_t n)
{
	if (n == 0)
		return true;
	if (!(d->problems & SMTPD_DATA_TOO_BIG)) {
		if (d->size_max > 0 && n > d->size_max - d->size) {
			d->problems |= SMTPD_DATA_TOO_BIG;
		} else if (out != NULL && buf_append(out, o, n) != BUF_OK) {
			d->problems |= SMTPD_DATA_OUTPUT_FULL;
			return false;
		}
	}
	smtpd_data_account(d, o, n);
	return true;
}

/* A CR followed by c, which is not LF: the CR is bare (RFC 5322 2.3),
 * stored as is, and never a line end; c is decoded as text (another CR
 * is pending again). */
static int
smtpd_data_bare_cr(struct smtpd_data *d, char c, char o[SMTPD_DATA_STEP_MAX], size_t *n)
{
	d->problems |= SMTPD_DATA_BARE_CR;
	o[0] = '\r';
	*n = 1;
	if (c == '\r')
		return SMTPD_DATA_ST_CR;
	o[1] = c;
	*n = 2;
	return SMTPD_DATA_ST_TEXT;
}

/*
 * Decode one byte: fill o[0..*n) and return the next state. It sets only
 * the sticky problem flags, so a byte that cannot be stored yet may be
 * decoded again.
 */
static int
smtpd_data_next(struct smtpd_data *d, char c, char o[SMTPD_DATA_STEP_MAX], size_t *n)
{
	int line_start = d->mode == SMTPD_DATA_DOT ? SMTPD_DATA_ST_BOL : SMTPD_DATA_ST_TEXT;

	*n = 0;
	switch (d->state) {
	case SMTPD_DATA_ST_BOL:
		/* RFC 5321 4.5.2: a leading dot is stuffing or the end. */
		if (c == '.')
			return SMTPD_DATA_ST_DOT;
		break;
	case SMTPD_DATA_ST_DOT:
		if (c == '\r')
			return SMTPD_DATA_ST_DOT_CR;
		/* Not the end: the first dot is dropped (4.5.2), the byte
		 * after it is ordinary text ("..x" gives ".x", ".\n" gives a
		 * bare LF). */
		break;
	case SMTPD_DATA_ST_DOT_CR:
		/* CR LF "." CR LF: the only end of data. */
		if (c == '\n')
			return SMTPD_DATA_ST_END;
		/* "." CR and no LF: the dot was stuffing, the CR is bare. */
		return smtpd_data_bare_cr(d, c, o, n);
	case SMTPD_DATA_ST_CR:
		if (c == '\n') {
			o[0] = '\r';
			o[1] = '\n';
			*n = 2;
			return line_start;
		}
		return smtpd_data_bare_cr(d, c, o, n);
	default:
		break;
	}
	if (c == '\r')
		return SMTPD_DATA_ST_CR;
	if (c == '\n') {
		/* Bare LF (RFC 5321 2.3.8): stored as CR LF, but the line
		 * after it did not start after CR LF, so it gets no dot
		 * handling: LF "." CR LF is content, never the end. */
		d->problems |= SMTPD_DATA_BARE_LF;
		o[0] = '\r';
		o[1] = '\n';
		*n = 2;
		return SMTPD_DATA_ST_TEXT;
	}
	o[0] = c;
	*n = 1;
	return SMTPD_DATA_ST_TEXT;
}

/* Length of the run of ordinary bytes (no CR, no LF) at in. */
static size_t
smtpd_data_text_run(const char *in, size_t len)
{
	size_t r = 0;

	while (r < len && in[r] != '\r' && in[r] != '\n')
		r++;
	return r;
}

/*
 * The common case in one go: ordinary bytes inside a line, when no
 * Received: prefix is being matched. Same effect as feeding them one by
 * one. Returns how many were consumed; 0 leaves the byte to the slow path
 * (or out is full, with the flag set).
 */
static size_t
smtpd_data_fast(struct smtpd_data *d, const char *in, size_t len, struct buf *out)
{
	size_t r = smtpd_data_text_run(in, len);

	if (r == 0)
		return 0;
	if (!(d->problems & SMTPD_DATA_TOO_BIG)) {
		if (d->size_max > 0 && r > d->size_max - d->size)
			r = (size_t)(d->size_max - d->size);	/* the slow path crosses the limit */
		if (r == 0)
			return 0;
		if (out != NULL) {
			if (buf_room(out) == 0) {
				d->problems |= SMTPD_DATA_OUTPUT_FULL;
				return 0;
			}
			if (r > buf_room(out))
				r = buf_room(out);
			if (buf_append(out, in, r) != BUF_OK) {
				d->problems |= SMTPD_DATA_OUTPUT_FULL;
				return 0;
			}
		}
	}
	d->line_len += r;
	if (d->line_max > 0 && d->line_len > d->line_max)
		d->problems |= SMTPD_DATA_LONG_LINE;
	d->size += r;
	return r;
}

/*
 * out may be NULL (decode and count, store nothing: a message being
 * rejected). A drained out must have room for SMTPD_DATA_STEP_MAX bytes,
 * the most one input byte produces, or no progress is possible.
 */
size_t
smtpd_data_feed(struct smtpd_data *d, const char *in, size_t len, struct buf *out, bool *end)
{
	size_t i = 0, r;
	char o[SMTPD_DATA_STEP_MAX];
	size_t n;
	int next;

	d->problems &= ~SMTPD_DATA_OUTPUT_FULL;
	if (end != NULL)
		*end = d->state == SMTPD_DATA_ST_END;
	if (d->state == SMTPD_DATA_ST_END)
		return 0;
	while (i < len) {
		if (d->state == SMTPD_DATA_ST_TEXT && !smtpd_data_hdr_matching(d)) {
			r = smtpd_data_fast(d, in + i, len - i, out);
			if (d->problems & SMTPD_DATA_OUTPUT_FULL)
				break;
			if (r > 0) {
				i += r;
				continue;
			}
		}
		next = smtpd_data_next(d, in[i], o, &n);
		if (!smtpd_data_emit(d, out, o, n))
			break;
		d->state = next;
		i++;
		if (next == SMTPD_DATA_ST_END) {
			if (end != NULL)
				*end = true;
			break;
		}
	}
	return i;
}

void
smtpd_data_finish(struct smtpd_data *d, struct buf *out)
{
	d->problems &= ~SMTPD_DATA_OUTPUT_FULL;
	/* BDAT LAST (RFC 3030): a CR at the very end of the last chunk has no
	 * LF to come, so it is a bare CR. */
	if (d->mode != SMTPD_DATA_BDAT || d->state != SMTPD_DATA_ST_CR)
		return;
	d->problems |= SMTPD_DATA_BARE_CR;
	if (smtpd_data_emit(d, out, "\r", 1))
		d->state = SMTPD_DATA_ST_TEXT;
}
