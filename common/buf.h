/*
 * buf: the one growable byte buffer of tern.
 *
 * A buf has a hard maximum fixed at creation: appending past it returns
 * BUF_TOO_BIG and leaves the buffer unchanged, never a silent truncation.
 * Data is not NUL-terminated unless buf_cstr() is called. Out of memory is
 * fatal() (the spool is durable; the role restarts).
 *
 * A buf may also act as a FIFO: buf_consume() drops bytes from the front
 * cheaply (an offset), and the storage is compacted when needed.
 */
#ifndef TERN_BUF_H
#define TERN_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

enum buf_result {
	BUF_OK = 0,
	BUF_TOO_BIG = -1,	/* the append would pass the buffer's maximum */
};

struct buf {
	char *data;		/* owned; the live bytes are data[off .. off+len) */
	size_t off;
	size_t len;
	size_t cap;
	size_t max;		/* hard limit on len */
};

/* Initialise an empty buffer that may hold up to max bytes. No allocation. */
void buf_init(struct buf *b, size_t max);
/* Free the storage; the buf may be reused after buf_init(). */
void buf_free(struct buf *b);
/* Drop the contents and keep the storage. */
void buf_reset(struct buf *b);
/* Release storage if the buffer is empty (idle sessions stay small). */
void buf_shrink(struct buf *b);

static inline const char *buf_data(const struct buf *b) { return b->data ? b->data + b->off : ""; }
static inline char *buf_data_mut(struct buf *b) { return b->data + b->off; }
static inline size_t buf_len(const struct buf *b) { return b->len; }
static inline size_t buf_room(const struct buf *b) { return b->max - b->len; }

/* Append bytes. BUF_TOO_BIG when len would pass max. */
enum buf_result buf_append(struct buf *b, const void *p, size_t n);
enum buf_result buf_append_str(struct buf *b, const char *s);
enum buf_result buf_append_char(struct buf *b, char c);
enum buf_result buf_append_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
enum buf_result buf_append_vprintf(struct buf *b, const char *fmt, va_list ap);

/*
 * Make room for at least n more bytes and return a pointer to it, for a
 * read(2) straight into the buffer; commit what was filled with
 * buf_commit(). NULL when n would pass max.
 */
char *buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);

/* Keep only the first len bytes (len <= buf_len): undo a partial append. */
void buf_truncate(struct buf *b, size_t len);
/* Drop n bytes from the front (n <= len). */
void buf_consume(struct buf *b, size_t n);

/* NUL-terminate and return the contents (the NUL is not counted in len). */
const char *buf_cstr(struct buf *b);

/*
 * read(2) from fd into the buffer, at most want bytes. Returns what read
 * returned (-1 with errno; 0 at EOF); -1 with errno ENOBUFS when full.
 */
ssize_t buf_read_fd(struct buf *b, int fd, size_t want);
/* write(2) the front of the buffer and consume what was written. */
ssize_t buf_write_fd(struct buf *b, int fd);

#endif
