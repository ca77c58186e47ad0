/*
 * milter_proto: the Sendmail 8 Milter wire protocol (version 2 to 6), MTA
 * side: frames we send, and a strict parser for frames a filter sends.
 * Pure: bytes in, bytes out; no I/O, no logging.
 *
 * A frame is a 4-byte big-endian length (the command byte included), one
 * command byte, and a payload. Strings in a payload end in NUL. The
 * command and flag values are sendmail's (libmilter mfdef.h), as Postfix's
 * src/milter/milter8.c uses them.
 *
 * Error policy: encoders return BUF_TOO_BIG when out is full (nothing is
 * left half written); the parser returns MILTER_PROTO_BAD with a reason
 * for anything malformed and never reads past len. Pointers in a decoded
 * reply borrow the input buffer.
 */
#ifndef TERN_MILTER_PROTO_H
#define TERN_MILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* MTA -> filter commands (SMFIC_*). */
#define MILTER_CMD_ABORT   'A'
#define MILTER_CMD_BODY    'B'
#define MILTER_CMD_CONNECT 'C'
#define MILTER_CMD_MACRO   'D'
#define MILTER_CMD_EOB     'E'
#define MILTER_CMD_HELO    'H'
#define MILTER_CMD_HEADER  'L'
#define MILTER_CMD_MAIL    'M'
#define MILTER_CMD_EOH     'N'
#define MILTER_CMD_OPTNEG  'O'
#define MILTER_CMD_QUIT    'Q'
#define MILTER_CMD_RCPT    'R'
#define MILTER_CMD_DATA    'T'

/* Filter -> MTA replies (SMFIR_*). */
#define MILTER_REPLY_ADDRCPT    '+'
#define MILTER_REPLY_DELRCPT    '-'
#define MILTER_REPLY_ADDRCPT_PAR '2'
#define MILTER_REPLY_SHUTDOWN   '4'
#define MILTER_REPLY_ACCEPT     'a'
#define MILTER_REPLY_REPLBODY   'b'
#define MILTER_REPLY_CONTINUE   'c'
#define MILTER_REPLY_DISCARD    'd'
#define MILTER_REPLY_CHGFROM    'e'
#define MILTER_REPLY_CONN_FAIL  'f'
#define MILTER_REPLY_ADDHEADER  'h'
#define MILTER_REPLY_INSHEADER  'i'
#define MILTER_REPLY_SETSYMLIST 'l'
#define MILTER_REPLY_CHGHEADER  'm'
#define MILTER_REPLY_PROGRESS   'p'
#define MILTER_REPLY_QUARANTINE 'q'
#define MILTER_REPLY_REJECT     'r'
#define MILTER_REPLY_SKIP       's'
#define MILTER_REPLY_TEMPFAIL   't'
#define MILTER_REPLY_REPLYCODE  'y'

/* Actions a filter may ask for (SMFIF_*), offered in OPTNEG. */
#define MILTER_ACT_ADDHDRS     0x001u
#define MILTER_ACT_CHGBODY     0x002u
#define MILTER_ACT_ADDRCPT     0x004u
#define MILTER_ACT_DELRCPT     0x008u
#define MILTER_ACT_CHGHDRS     0x010u
#define MILTER_ACT_QUARANTINE  0x020u
#define MILTER_ACT_CHGFROM     0x040u
#define MILTER_ACT_ADDRCPT_PAR 0x080u
#define MILTER_ACT_SETSYMLIST  0x100u
#define MILTER_ACT_ALL         0x1ffu

/* Protocol steps (SMFIP_*): events not sent, replies not expected. */
#define MILTER_P_NOCONNECT  0x000001u
#define MILTER_P_NOHELO     0x000002u
#define MILTER_P_NOMAIL     0x000004u
#define MILTER_P_NORCPT     0x000008u
#define MILTER_P_NOBODY     0x000010u
#define MILTER_P_NOHDRS     0x000020u
#define MILTER_P_NOEOH      0x000040u
#define MILTER_P_NR_HDR     0x000080u
#define MILTER_P_NOUNKNOWN  0x000100u
#define MILTER_P_NODATA     0x000200u
#define MILTER_P_SKIP       0x000400u
#define MILTER_P_RCPT_REJ   0x000800u
#define MILTER_P_NR_CONN    0x001000u
#define MILTER_P_NR_HELO    0x002000u
#define MILTER_P_NR_MAIL    0x004000u
#define MILTER_P_NR_RCPT    0x008000u
#define MILTER_P_NR_DATA    0x010000u
#define MILTER_P_NR_UNKN    0x020000u
#define MILTER_P_NR_EOH     0x040000u
#define MILTER_P_NR_BODY    0x080000u
#define MILTER_P_HDR_LEADSPC 0x100000u

/* What each protocol version may negotiate (Postfix's milter8.c masks). */
#define MILTER_P_V2 (MILTER_P_NOCONNECT | MILTER_P_NOHELO | MILTER_P_NOMAIL | MILTER_P_NORCPT | \
                     MILTER_P_NOBODY | MILTER_P_NOHDRS | MILTER_P_NOEOH)
#define MILTER_P_V3 (MILTER_P_V2 | MILTER_P_NOUNKNOWN)
#define MILTER_P_V4 (MILTER_P_V3 | MILTER_P_NODATA)
#define MILTER_P_V6 (MILTER_P_V4 | MILTER_P_SKIP | MILTER_P_RCPT_REJ | MILTER_P_NR_CONN | \
                     MILTER_P_NR_HELO | MILTER_P_NR_MAIL | MILTER_P_NR_RCPT | MILTER_P_NR_DATA | \
                     MILTER_P_NR_UNKN | MILTER_P_NR_HDR | MILTER_P_NR_EOH | MILTER_P_NR_BODY | \
                     MILTER_P_HDR_LEADSPC)

/* Macro stages (SMFIM_*), the index of an OPTNEG reply's macro list. */
enum milter_stage {
	MILTER_STAGE_CONNECT = 0,
	MILTER_STAGE_HELO = 1,
	MILTER_STAGE_MAIL = 2,
	MILTER_STAGE_RCPT = 3,
	MILTER_STAGE_DATA = 4,
	MILTER_STAGE_EOM = 5,
	MILTER_STAGE_EOH = 6,
	MILTER_STAGE_COUNT
};

/* Address families of the CONNECT event (SMFIA_*). */
#define MILTER_FAMILY_UNKNOWN 'U'
#define MILTER_FAMILY_UNIX    'L'
#define MILTER_FAMILY_INET    '4'
#define MILTER_FAMILY_INET6   '6'

/* Largest frame we accept from a filter (length field, command byte
 * included). libmilter sends body replacement in chunks of at most
 * 64 KiB, or 1 MiB under SMFIP_MDS_1M, which we do not offer; a reply
 * text or header is far smaller. More is a protocol error. */
#define MILTER_FRAME_MAX (256u * 1024)
/* Body chunk we send: Postfix's MILTER_CHUNK_SIZE. */
#define MILTER_BODY_CHUNK 65535u
/* The length field. */
#define MILTER_LEN_SIZE 4

/* ---- encoding (append one frame to out) ---- */

enum buf_result milter_proto_optneg(struct buf *out, uint32_t version, uint32_t actions,
                                    uint32_t protocol);
/* D: the stage's command byte, then name NUL value NUL for each pair
 * (names[i], values[i]), n pairs. */
enum buf_result milter_proto_macros(struct buf *out, char cmd, const char *const *names,
                                    const char *const *values, size_t n);
/* C: hostname, family, port (network order on the wire), address; for
 * MILTER_FAMILY_UNKNOWN only the hostname and the family are sent. */
enum buf_result milter_proto_connect(struct buf *out, const char *hostname, char family,
                                     uint16_t port, const char *addr);
/* H, M, R, L and the like: n NUL-terminated strings. */
enum buf_result milter_proto_strings(struct buf *out, char cmd, const char *const *s, size_t n);
/* B: raw bytes (at most MILTER_BODY_CHUNK). */
enum buf_result milter_proto_body(struct buf *out, const void *p, size_t n);
/* A command without payload: T, N, E, A, Q. */
enum buf_result milter_proto_empty(struct buf *out, char cmd);

/* ---- decoding ---- */

enum milter_proto_result {
	MILTER_PROTO_OK = 0,	/* one frame decoded: *consumed bytes */
	MILTER_PROTO_MORE = 1,	/* incomplete: read more */
	MILTER_PROTO_BAD = -1,	/* malformed: why is set */
};

/* One decoded frame. Which fields are set depends on cmd. */
struct milter_reply {
	char cmd;
	/* OPTNEG reply. */
	uint32_t version, actions, protocol;
	const char *macros[MILTER_STAGE_COUNT];	/* a SETSYMLIST override, or NULL */
	/* i, m: the index; +, 2, -, e, h, i, m, q, y: s1; 2, e, h, i, m: s2
	 * (NULL for an optional argument that was not sent). */
	uint32_t index;
	const char *s1, *s2;
	/* b: the body chunk. */
	const char *data;
	size_t data_len;
};

/*
 * Decode the frame at the front of (p, len). expect_optneg: the frame
 * answers our OPTNEG (its payload is then version, actions, protocol and
 * optional macro lists). BAD for a length under 1 or over
 * MILTER_FRAME_MAX, an unknown reply command, a payload that does not fit
 * the command (a missing NUL, bytes left over, a flag reply with data).
 */
enum milter_proto_result milter_proto_decode(const char *p, size_t len, bool expect_optneg,
                                             struct milter_reply *r, size_t *consumed,
                                             const char **why);

/* The longest reply text we keep from a SMFIR_REPLYCODE (all its lines). */
#define MILTER_REPLY_TEXT_MAX 2048
/* Most lines of a multi-line SMFIR_REPLYCODE. */
#define MILTER_REPLY_LINES_MAX 16

/*
 * Check a SMFIR_REPLYCODE text as Postfix does: each line (separated by
 * CR LF) "DDD TEXT" or "DDD-TEXT" with a 4xx or 5xx code, the same code on
 * every line, the last line with ' ', no control characters; an enhanced
 * code, if the first line carries one, must be of the same class. Sets
 * *code. 0, or -1 with why.
 */
int milter_proto_replycode_check(const char *text, int *code, const char **why);

/* The name of a command or reply byte, as Postfix logs it
 * ("SMFIC_OPTNEG", "SMFIR_REPLYCODE"); "(unknown)" otherwise. */
const char *milter_proto_cmd_name(char cmd);
const char *milter_proto_reply_name(char cmd);

#endif
