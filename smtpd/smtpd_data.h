/*
 * smtpd_data: the message content decoder for DATA and BDAT, the place
 * where SMTP smuggling is made impossible. Pure: bytes in, bytes out.
 *
 * DATA (RFC 5321 section 4.5.2): the only end of data is CR LF . CR LF,
 * where the first CR LF may be the one that ended the DATA command. A line
 * that starts with "." loses that dot. A bare LF (not after CR) or a bare
 * CR (not before LF) is never part of an end-of-data sequence and never a
 * line start for dot handling purposes *of the terminator*; under
 * SMTPD_DATA_NORMALIZE a bare LF is stored as CR LF, a bare CR as is, and
 * under SMTPD_DATA_REJECT either one marks the message for rejection
 * (550 5.5.2). So a client can never make tern see two messages where it
 * sent one (CVE-2023-51764/51765/51766).
 *
 * BDAT (RFC 3030): exactly the announced octets, no dot handling, no
 * end-of-data search; line endings get the same treatment across chunks.
 *
 * The decoder also counts the message's size, finds over-long lines and
 * counts Received: headers in the header section (hop count, RFC 5321
 * section 6.3). Problems are recorded as flags and the decoder goes on to
 * the end (errors are sticky; the session answers once).
 */
#ifndef TERN_SMTPD_DATA_H
#define TERN_SMTPD_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum smtpd_data_mode { SMTPD_DATA_DOT, SMTPD_DATA_BDAT };
enum smtpd_data_newline { SMTPD_DATA_NORMALIZE, SMTPD_DATA_REJECT };

/* Flags of smtpd_data.problems. */
#define SMTPD_DATA_BARE_LF    0x01	/* a LF without CR was seen */
#define SMTPD_DATA_BARE_CR    0x02	/* a CR without LF was seen */
#define SMTPD_DATA_LONG_LINE  0x04	/* a line passed line_max */
#define SMTPD_DATA_TOO_BIG    0x08	/* size passed size_max */
#define SMTPD_DATA_OUTPUT_FULL 0x10	/* out buf full: caller must drain (not sticky) */

struct smtpd_data {
	enum smtpd_data_mode mode;
	enum smtpd_data_newline newline;
	uint64_t size_max;	/* 0 = no limit */
	uint64_t line_max;	/* octets incl. CRLF; 0 = no limit */
	uint64_t size;		/* decoded octets (what would be stored) */
	uint64_t line_len;	/* octets of the current line so far */
	unsigned problems;
	unsigned received_count;	/* Received: headers in the header section */
	bool in_headers;
	/* private line-state of the decoder */
	int state;
	char hdr_prefix[9];
	size_t hdr_prefix_len;
};

/* Start a decoder for one message. */
void smtpd_data_init(struct smtpd_data *d, enum smtpd_data_mode mode,
                     enum smtpd_data_newline newline, uint64_t size_max, uint64_t line_max);

/*
 * Decode up to len bytes of input. Decoded content is appended to out
 * unless the message is already over size_max (then it is counted and
 * dropped). Returns the number of input bytes consumed; *end is set when
 * the end-of-data line was consumed (DATA mode only; the bytes after it
 * are left for the command reader). Stops early, without error, when out
 * is full (SMTPD_DATA_OUTPUT_FULL is set then): drain out and call again.
 */
size_t smtpd_data_feed(struct smtpd_data *d, const char *in, size_t len, struct buf *out,
                       bool *end);

/* BDAT LAST: settle a CR left pending at the end of the last chunk. */
void smtpd_data_finish(struct smtpd_data *d, struct buf *out);

#endif
