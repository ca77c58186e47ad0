/*
 * buf: growable bounded byte buffer. Owns its storage; errors are returned,
 * except out-of-memory, which is fatal (see log.h).
 */
#include "common/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* The smallest allocation: most SMTP commands fit. */
#define BUF_CAP_MIN 256

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->off = b->len = b->cap = 0;
	b->max = max;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	b->off = b->len = 0;
}

void
buf_shrink(struct buf *b)
{
	if (b->len == 0 && b->cap > BUF_CAP_MIN) {
		free(b->data);
		b->data = NULL;
		b->off = b->cap = 0;
	}
}

/* Ensure off+len+n <= cap, compacting before growing. */
static int
buf_make_room(struct buf *b, size_t n)
{
	size_t need, ncap;
	char *p;

	if (n > b->max - b->len)
		return -1;
	if (b->off + b->len + n + 1 <= b->cap)
		return 0;
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
		if (b->len + n + 1 <= b->cap)
			return 0;
	}
	/* +1 keeps room for buf_cstr()'s NUL. */
	need = b->len + n + 1;
	ncap = b->cap ? b->cap : BUF_CAP_MIN;
	while (ncap < need)
		ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1 > need ? b->max + 1 : need;
	p = realloc(b->data, ncap);
	if (p == NULL)
		fatal("out of memory (buffer of %zu bytes)", ncap);
	b->data = p;
	b->cap = ncap;
	return 0;
}

enum buf_result
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return BUF_OK;
	if (buf_make_room(b, n) < 0)
		return BUF_TOO_BIG;
	memcpy(b->data + b->off + b->len, p, n);
	b->len += n;
	return BUF_OK;
}

enum buf_result
buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

enum buf_result
buf_append_char(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

enum buf_result
buf_append_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return BUF_TOO_BIG;
	if (buf_make_room(b, (size_t)n) < 0)
		return BUF_TOO_BIG;
	vsnprintf(b->data + b->off + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return BUF_OK;
}

enum buf_result
buf_append_printf(struct buf *b, const char *fmt, ...)
{
	enum buf_result r;
	va_list ap;

	va_start(ap, fmt);
	r = buf_append_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

char *
buf_reserve(struct buf *b, size_t n)
{
	if (buf_make_room(b, n) < 0)
		return NULL;
	return b->data + b->off + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
	if (b->off + b->len + n >= b->cap)
		panic("buf_commit past reserved space");
	b->len += n;
}

void
buf_truncate(struct buf *b, size_t len)
{
	if (len > b->len)
		panic("buf_truncate(%zu) of %zu bytes", len, b->len);
	b->len = len;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n > b->len)
		panic("buf_consume(%zu) of %zu bytes", n, b->len);
	b->off += n;
	b->len -= n;
	if (b->len == 0)
		b->off = 0;
}

const char *
buf_cstr(struct buf *b)
{
	/* Room for zero more bytes always exists and includes the NUL slot. */
	(void)buf_make_room(b, 0);
	b->data[b->off + b->len] = '\0';
	return b->data + b->off;
}

ssize_t
buf_read_fd(struct buf *b, int fd, size_t want)
{
	char *p;
	ssize_t n;

	if (want > buf_room(b))
		want = buf_room(b);
	if (want == 0) {
		errno = ENOBUFS;
		return -1;
	}
	p = buf_reserve(b, want);
	if (p == NULL) {
		errno = ENOBUFS;
		return -1;
	}
	n = read(fd, p, want);
	if (n > 0)
		b->len += (size_t)n;
	return n;
}

ssize_t
buf_write_fd(struct buf *b, int fd)
{
	ssize_t n;

	if (b->len == 0)
		return 0;
	n = write(fd, buf_data(b), b->len);
	if (n > 0)
		buf_consume(b, (size_t)n);
	return n;
}
