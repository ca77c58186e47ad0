/*
 * sendmail_smtp: sendmail's side of the local submission socket
 * (queue_directory/public/sendmail). The protocol is ESMTP, spoken to
 * smtpd exactly as a network client would speak it: the message takes
 * smtpd's one DATA path (Received header, size limit, spool, fsync, group
 * commit, 250 only once durable), and -bs is a byte proxy. doc/sendmail.md
 * says why.
 *
 * Blocking I/O with timeouts (SO_RCVTIMEO / SO_SNDTIMEO): one client, one
 * conversation. Replies are read through a bounded buffer and parsed by
 * sendmail_reply_parse(), a pure function.
 */
#ifndef TERN_SENDMAIL_SMTP_H
#define TERN_SENDMAIL_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"

/* Longest reply line we keep (RFC 5321 4.5.3.1.5 says 512; smtpd's are
 * shorter; a longer one is cut, not an error). */
#define SENDMAIL_REPLY_LINE_MAX 1024
/* Most lines of one reply (EHLO's is the longest: about ten). */
#define SENDMAIL_REPLY_LINES_MAX 64
/* Unparsed reply bytes held. */
#define SENDMAIL_REPLY_IN_MAX (64u * 1024)
/* How long a reply may take, seconds: the last one waits for fsync and
 * the group commit, so it gets smtpd's own data-done patience. */
#define SENDMAIL_TIMEOUT_S 300
#define SENDMAIL_DATA_DONE_TIMEOUT_S 600

struct sendmail_reply {
	int code;			/* 0: no reply (connection lost, timeout) */
	unsigned lines;
	char last[SENDMAIL_REPLY_LINE_MAX];	/* the last line, "250 2.0.0 Ok: queued as ..." */
	/* EHLO keywords seen in the reply (for the 250 of EHLO). */
	bool ext_size, ext_dsn, ext_smtputf8, ext_8bitmime, ext_pipelining;
	uint64_t size_limit;		/* SIZE n; 0 = none given */
};

/*
 * Parse one complete reply at the start of (p, n). Returns the bytes it
 * took (> 0), 0 when the reply is not complete yet, or -1 when it is not
 * an SMTP reply (a line that does not start with three digits and ' ' or
 * '-', codes that change inside one reply, too many lines). Lines may end
 * in CRLF or LF.
 */
ssize_t sendmail_reply_parse(const char *p, size_t n, struct sendmail_reply *r);

/* The stage a reply answers, for the exit status it gives. */
enum sendmail_stage {
	SENDMAIL_STAGE_GREETING,
	SENDMAIL_STAGE_EHLO,
	SENDMAIL_STAGE_MAIL,
	SENDMAIL_STAGE_RCPT,
	SENDMAIL_STAGE_DATA,		/* the 354 */
	SENDMAIL_STAGE_DOT,		/* the verdict on the message */
};

/*
 * The sysexits.h status for a refusal at a stage (doc/sendmail.md has the
 * table): 4xx is EX_TEMPFAIL anywhere; 5xx is EX_NOUSER for a recipient,
 * EX_DATAERR for the sender or the content, EX_UNAVAILABLE for the
 * session; no reply is EX_TEMPFAIL (nothing was accepted: retry).
 */
int sendmail_reply_exit(enum sendmail_stage stage, int code);

struct sendmail_smtp {
	int fd;
	struct buf in;
	bool verbose;		/* -v: the dialogue on stderr */
	char err[256];		/* why the connection failed, for messages */
};

/*
 * Connect to the socket at path. 0, or a sysexits status with err set:
 * EX_TEMPFAIL when nobody listens (ternd is not running), EX_NOPERM when
 * the socket refuses us, EX_OSERR otherwise.
 */
int sendmail_smtp_connect(struct sendmail_smtp *c, const char *path, bool verbose);
void sendmail_smtp_close(struct sendmail_smtp *c);
/* Write all of (p, n). 0, or -1 with c->err (the peer went away). */
int sendmail_smtp_write(struct sendmail_smtp *c, const void *p, size_t n);
/* Send one command line (CRLF added). 0 or -1 as above. */
int sendmail_smtp_command(struct sendmail_smtp *c, const char *line);
/* Read one reply (timeout in seconds). 0 with *r, or -1 with c->err and
 * r->code = 0 (lost, timed out) or -2 (not SMTP). */
int sendmail_smtp_reply(struct sendmail_smtp *c, struct sendmail_reply *r, int timeout_s);

/* RFC 3461 section 4 xtext of s appended to out ('+', '=' and bytes
 * outside 33..126 as +HH). */
void sendmail_xtext(struct buf *out, const char *s);

#endif
