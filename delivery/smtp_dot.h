/*
 * smtp_dot: the message content as DATA sends it (RFC 5321 section
 * 4.5.2): every line that begins with "." gets one more ".", and the end
 * is marked by "." CR LF on a line of its own. Streaming: the spool file
 * is fed in chunks of any size and split (a chunk may end between CR and
 * LF, or right after CR LF before the "."); the state carries over.
 *
 * The input is the message as the spool holds it: CR LF lines, not
 * stuffed, perhaps without a final CR LF. Apart from the stuffed dots and
 * the terminator the output is byte for byte the input: no line-ending
 * conversion, no 8-bit or line-length checks (the caller chose BODY= and
 * knows the size).
 *
 * Only CR LF ends a line here (RFC 5321 2.3.8, RFC 5322 2.3), so a "."
 * after a bare LF or a bare CR is not stuffed. Why that is safe and not
 * smuggling-prone: smtpd stores every bare LF as CR LF (or rejects the
 * message; smtpd_data.c, SMTPD_DATA_NORMALIZE / SMTPD_DATA_REJECT), so a
 * spool file written by smtpd holds no bare LF at all, and stuffing after
 * one would make a strict receiver keep an extra dot. Bare CRs are kept
 * by smtpd and passed on unchanged here. Both are reported in
 * smtp_dot.seen so the caller can log them; any other way into the spool
 * (a local submission program) must normalise bare LF the same way.
 *
 * Pure: no I/O. Output goes to the caller's buf, whose maximum bounds it:
 * feeding stops when the buf is full and resumes after the caller has
 * drained it. panic() only on use after smtp_dot_finish().
 */
#ifndef TERN_SMTP_DOT_H
#define TERN_SMTP_DOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Bits of smtp_dot.seen: line-end oddities passed through unchanged. */
#define SMTP_DOT_BARE_LF 0x01u	/* an LF not after CR */
#define SMTP_DOT_BARE_CR 0x02u	/* a CR not before LF (also at the very end) */

/* Most bytes smtp_dot_finish() appends: CR LF "." CR LF. */
#define SMTP_DOT_FINISH_MAX 5

struct smtp_dot {
	int state;		/* private: where in a line the input is */
	unsigned seen;		/* SMTP_DOT_* */
	uint64_t in;		/* content bytes taken so far */
	uint64_t stuffed;	/* dots added */
};

/* Start a message: the input starts at the beginning of a line (the
 * DATA command's CR LF precedes it). */
void smtp_dot_init(struct smtp_dot *d);

/*
 * Stuff up to len bytes of content into out. Returns how many input bytes
 * were taken; fewer than len only when out is full (drain it and feed the
 * rest). A leading "." and its added dot go out together or not at all.
 */
size_t smtp_dot_feed(struct smtp_dot *d, const char *in, size_t len, struct buf *out);

/*
 * Append the end of data: "." CR LF when the content ended with CR LF
 * (or was empty), else CR LF "." CR LF. BUF_TOO_BIG when out lacks room
 * for it (nothing appended; drain and call again). After BUF_OK the
 * stuffer is spent: feeding it again is a bug.
 */
enum buf_result smtp_dot_finish(struct smtp_dot *d, struct buf *out);

#endif
