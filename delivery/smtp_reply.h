/*
 * smtp_reply: the outbound client's parser of SMTP server replies
 * (RFC 5321 section 4.2). It is incremental and bounded: bytes go in as
 * they arrive, in any split, and complete replies come out one at a time,
 * so a reply cut across reads and several pipelined replies in one read
 * (RFC 2920) both work.
 *
 * What it accepts, each a named branch in smtp_reply.c:
 *  - a line ends at LF; CRs just before the LF are dropped. A bare-LF line
 *    end is accepted on purpose: replies are read, not relayed, so the
 *    bare LF cannot smuggle anything, and servers that send LF only exist
 *    (Exim's spec says the same of its smtp transport; Postfix's
 *    smtp_get() does likewise). A CR elsewhere stays in the text.
 *  - a line is a three-digit code from 200 to 599, then " " (last line),
 *    "-" (more lines follow) or nothing (last line, no text; RFC 5321
 *    4.2: the text is optional). Every line of one reply carries the same
 *    code (4.2.1).
 *  - an enhanced status code (RFC 3463 section 2, RFC 2034 section 4) is
 *    taken from the first line when its text starts with class.subject.
 *    detail, class equal to the reply code's first digit, subject and
 *    detail 1 to 3 digits (0-999), followed by a space or the line's end.
 *
 * Everything else is a protocol error: a NUL byte, a code that is not
 * three digits or is outside 200-599 (RFC 5321 4.2: such codes are
 * "fatal errors"), another separator, codes that change within a reply,
 * a line over SMTP_REPLY_LINE_MAX, more than SMTP_REPLY_LINES_MAX lines or
 * SMTP_REPLY_TEXT_MAX bytes. Errors are sticky: the connection is out of
 * sync and the caller classifies it as lost (smtp_class.h,
 * SMTP_EVENT_PROTOCOL), as Postfix does with a garbled reply under
 * pipelining (smtp_chat.c), where skipping garbage could pair a QUIT's
 * 250 with the end of data.
 *
 * The reply text is not sanitised: it can hold any byte but NUL and LF.
 * The log sink and bounce_clean() make it printable.
 *
 * Ownership: a parser owns its reply; the reply and its text are valid
 * until the next smtp_reply_parse() or smtp_reply_parser_free() on it.
 * No allocation beyond the reply's text buffer; never logs.
 */
#ifndef TERN_SMTP_REPLY_H
#define TERN_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* Longest reply line, CR LF included. RFC 5321 4.5.3.1.5 makes 512 the
 * least a client must take; real servers send longer text lines. */
#define SMTP_REPLY_LINE_MAX 4096
/* Most lines in one reply (an EHLO reply has one per extension). */
#define SMTP_REPLY_LINES_MAX 100
/* Most bytes of a reply's joined text (smtp_reply_text()). */
#define SMTP_REPLY_TEXT_MAX (64u * 1024)
/* Room for an enhanced status code: "5.999.999" and a NUL. */
#define SMTP_REPLY_ENH_SIZE 16

enum smtp_reply_status {
	SMTP_REPLY_NEED_MORE = 0,	/* all input used, no reply complete yet */
	SMTP_REPLY_DONE = 1,	/* a reply is complete: smtp_reply_parser_reply() */
	SMTP_REPLY_ERROR = -1,	/* protocol error (sticky): smtp_reply_parser_error() */
};

/* One line's text: after "250-" or "250 ", within the reply's text. */
struct smtp_reply_line {
	size_t off;
	size_t len;
};

struct smtp_reply {
	int code;		/* 200..599 */
	char enh[SMTP_REPLY_ENH_SIZE];	/* "5.1.1" from the first line; "" none */
	size_t nlines;		/* 1..SMTP_REPLY_LINES_MAX */
	struct smtp_reply_line lines[SMTP_REPLY_LINES_MAX];
	/* The lines as received (code and separator included, CR LF not),
	 * joined by single spaces, NUL-terminated when the reply is done:
	 * "250-mx.example.org 250 PIPELINING". This is the form Postfix logs
	 * and puts in a DSN's Diagnostic-Code. */
	struct buf text;
};

struct smtp_reply_parser {
	struct smtp_reply reply;	/* the reply being read, or the last one done */
	size_t line_start;	/* where the current line begins in reply.text */
	size_t line_len;	/* bytes of the current line so far, LF excluded */
	bool done;		/* reply holds a complete reply */
	const char *error;	/* static reason once a protocol error is seen */
};

void smtp_reply_parser_init(struct smtp_reply_parser *p);
/* Free the reply's storage; the parser may be initialised again. */
void smtp_reply_parser_free(struct smtp_reply_parser *p);

/*
 * Parse up to len bytes. Stops right after the last line of a reply
 * (SMTP_REPLY_DONE) so pipelined replies come out one per call: *used
 * says how many bytes were taken; feed the rest again. A call after DONE
 * starts a new reply. SMTP_REPLY_NEED_MORE means all len bytes were
 * taken. SMTP_REPLY_ERROR: see smtp_reply_parser_error(); every later
 * call returns it again and takes nothing.
 */
enum smtp_reply_status smtp_reply_parse(struct smtp_reply_parser *p, const char *data, size_t len,
                                        size_t *used);

/* The complete reply after SMTP_REPLY_DONE (borrowed, see above). */
const struct smtp_reply *smtp_reply_parser_reply(const struct smtp_reply_parser *p);
/* Why parsing failed ("reply code out of range" ...); NULL when it did not. */
const char *smtp_reply_parser_error(const struct smtp_reply_parser *p);
/* Part of a reply has been received (at EOF: the reply was cut short). */
bool smtp_reply_parser_pending(const struct smtp_reply_parser *p);

/* The joined text, NUL-terminated ("250 2.0.0 Ok: queued as X"). */
const char *smtp_reply_text(const struct smtp_reply *r);
/* Line i's text after the code and separator (not NUL-terminated);
 * i < r->nlines, or panic(). */
const char *smtp_reply_line(const struct smtp_reply *r, size_t i, size_t *len);

/*
 * Does s (len bytes) start with an RFC 3463 status code of class cls
 * ('2', '4' or '5'; 0 for any of them), followed by a space or the end?
 * Returns the code's length and copies it, NUL-terminated, to out; 0
 * when there is none (out is then ""). Leading zeros are allowed
 * ("5.01.001"), as RFC 3463's 1*3digit permits.
 */
size_t smtp_reply_enh_parse(const char *s, size_t len, char cls, char out[SMTP_REPLY_ENH_SIZE]);

#endif
