/*
 * frame: the typed framing spoken over the socketpairs between roles.
 *
 * A frame is an 8-byte header (type: u16, reserved: u16 = 0, payload
 * length: u32, all big-endian) and a payload of fields. A field is a kind
 * byte, then either 8 bytes (FRAME_FIELD_U64) or a u32 length and that many
 * bytes (FRAME_FIELD_BYTES). Decoding is strict: each get checks the kind
 * and bounds, and frame_get_end() fails when bytes are left over.
 *
 * A malformed frame from a sibling role is a bug (the caller panics); one
 * from an outside client closes that client only.
 */
#ifndef TERN_FRAME_H
#define TERN_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define FRAME_HEADER_SIZE 8
/* Largest payload; a configuration text or a queue listing page fits. */
#define FRAME_PAYLOAD_MAX (4u * 1024 * 1024)

/*
 * Every frame type, grouped by who sends it to whom. This enum is the map
 * of the process graph's conversations (see master/master_roles.c).
 */
enum frame_type {
	FRAME_NONE = 0,

	/* child -> master */
	FRAME_CHILD_READY = 1,		/* u64 pid: the role is serving */
	FRAME_CHILD_RELOADED = 2,	/* bytes error ("" when the reload took) */
	FRAME_CHILD_DRAINED = 3,	/* nothing: about to exit 0 */

	/* master -> child */
	FRAME_MASTER_RELOAD = 16,	/* nothing: re-read the (validated) config */
	FRAME_MASTER_DRAIN = 17,	/* u64 seconds: stop accepting, finish, exit */
	FRAME_MASTER_LISTENERS = 18,	/* u64 n, then n x bytes listener name; the n
					 * listening sockets ride along (SCM_RIGHTS) */
	FRAME_MASTER_TLS_KEYS = 19,	/* to smtpd, first at start and before each
					 * RELOAD: u64 n, then n x (bytes listener
					 * name, bytes certificate chain PEM, bytes
					 * private key PEM) (smtpd/smtpd_tls.h) */

	/* smtpd (and other injectors) -> qmgr, over private/qmgr */
	FRAME_QUEUE_NEW = 32,		/* bytes queue id: committed, deliver it */

	/* delivery agents <-> qmgr, over private/qmgr (queue/agent_proto.h) */
	FRAME_AGENT_HELLO = 48,		/* agent -> qmgr: who I am, how many jobs */
	FRAME_AGENT_DELIVER = 49,	/* qmgr -> agent: one job */
	FRAME_AGENT_RESULT = 50,	/* agent -> qmgr: one recipient's fate */
	FRAME_AGENT_DONE = 51,		/* agent -> qmgr: every recipient reported */

	/* ternctl (and sendmail -q) <-> qmgr, over private/qmgr */
	FRAME_QMGR_COMMAND = 64,	/* a queue verb and its selectors */
	FRAME_QMGR_REPLY = 65,		/* status and text */
	FRAME_QMGR_STATS = 66,		/* the answer to QMGR_VERB_STATS: counters */
};

enum frame_field_kind {
	FRAME_FIELD_U64 = 1,
	FRAME_FIELD_BYTES = 2,
};

enum frame_result {
	FRAME_OK = 0,
	FRAME_NEED_MORE = 1,	/* a partial frame: read more */
	FRAME_BAD = -1,		/* malformed: wrong kind, out of bounds, leftovers */
};

/* ---- encoding (appends to a buf; BUF_TOO_BIG past its maximum) ---- */

/* Start a frame; returns the offset to give frame_end(). */
size_t frame_begin(struct buf *out, enum frame_type type);
void frame_put_u64(struct buf *out, uint64_t v);
void frame_put_bytes(struct buf *out, const void *p, size_t len);
void frame_put_str(struct buf *out, const char *s);
/* Patch the length; FRAME_BAD when the payload passed FRAME_PAYLOAD_MAX. */
enum frame_result frame_end(struct buf *out, size_t start);

/*
 * Write all of out to fd and empty it, waiting with poll() while a
 * non-blocking socket is full. For the small control frames between roles.
 * 0, or -1 with errno (the peer is gone, or it did not read for
 * timeout_ms).
 */
int frame_write_all(int fd, struct buf *out, int timeout_ms);

/* Most descriptors passed with one frame. */
#define FRAME_FDS_MAX 32

/* The same, passing descriptors with the frame's first byte (SCM_RIGHTS).
 * The frame is sent whole or not at all as far as the fds go. */
int frame_write_all_fds(int fd, struct buf *out, const int *fds, size_t nfds, int timeout_ms);

/*
 * Read what the socket has into in (recvmsg), and append descriptors that
 * arrived with it to fds[*nfds..max) (any beyond max are closed). Returns
 * what recvmsg returned: bytes, 0 at EOF, -1 with errno.
 */
ssize_t frame_read(int fd, struct buf *in, int *fds, size_t *nfds, size_t max);

/* ---- decoding ---- */

struct frame_reader {
	enum frame_type type;
	const unsigned char *p;	/* payload, borrowed from the input buffer */
	size_t len;
	size_t pos;
};

/*
 * Look at the front of data: FRAME_OK with *r set and *frame_len the bytes
 * the whole frame takes; FRAME_NEED_MORE; or FRAME_BAD (length too big).
 * r borrows data until the caller consumes frame_len bytes.
 */
enum frame_result frame_parse(const void *data, size_t len, struct frame_reader *r,
                              size_t *frame_len);
int frame_get_u64(struct frame_reader *r, uint64_t *v);
/* Borrow a byte string (not NUL-terminated). */
int frame_get_bytes(struct frame_reader *r, const char **p, size_t *len);
/* Copy a string into dst (size dstsz) with a NUL; -1 if it has a NUL or is too long. */
int frame_get_str(struct frame_reader *r, char *dst, size_t dstsz);
/* Copy a string into new memory (caller frees); -1 on a NUL byte inside. */
int frame_get_strdup(struct frame_reader *r, char **out);
/* 0 when the payload was consumed exactly, -1 when bytes are left. */
int frame_get_end(struct frame_reader *r);

#endif
