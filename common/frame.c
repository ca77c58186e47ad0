/*
 * frame: encoder and strict decoder for inter-role frames. Returns errors;
 * never logs.
 */
#include "common/frame.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static void
put_be(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static void
frame_append(struct buf *out, const void *p, size_t n)
{
	/* A frame buffer too small for what a role sends is a bug. */
	if (buf_append(out, p, n) != BUF_OK)
		panic("frame buffer overflow (%zu bytes)", buf_len(out) + n);
}

size_t
frame_begin(struct buf *out, enum frame_type type)
{
	unsigned char h[FRAME_HEADER_SIZE] = { 0 };
	size_t start = buf_len(out);

	put_be(h, (uint64_t)type, 2);
	frame_append(out, h, sizeof(h));
	return start;
}

void
frame_put_u64(struct buf *out, uint64_t v)
{
	unsigned char f[9];

	f[0] = FRAME_FIELD_U64;
	put_be(f + 1, v, 8);
	frame_append(out, f, sizeof(f));
}

void
frame_put_bytes(struct buf *out, const void *p, size_t len)
{
	unsigned char f[5];

	if (len > FRAME_PAYLOAD_MAX)
		panic("frame field of %zu bytes", len);
	f[0] = FRAME_FIELD_BYTES;
	put_be(f + 1, len, 4);
	frame_append(out, f, sizeof(f));
	frame_append(out, p, len);
}

void
frame_put_str(struct buf *out, const char *s)
{
	frame_put_bytes(out, s, strlen(s));
}

enum frame_result
frame_end(struct buf *out, size_t start)
{
	size_t plen = buf_len(out) - start - FRAME_HEADER_SIZE;

	if (plen > FRAME_PAYLOAD_MAX)
		return FRAME_BAD;
	put_be((unsigned char *)buf_data_mut(out) + start + 4, plen, 4);
	return FRAME_OK;
}

int
frame_write_all(int fd, struct buf *out, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	ssize_t n;

	while (buf_len(out) > 0) {
		n = write(fd, buf_data(out), buf_len(out));
		if (n > 0) {
			buf_consume(out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (poll(&pfd, 1, timeout_ms) > 0)
				continue;
			errno = ETIMEDOUT;
		}
		return -1;
	}
	return 0;
}

int
frame_write_all_fds(int fd, struct buf *out, const int *fds, size_t nfds, int timeout_ms)
{
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int) * FRAME_FDS_MAX)];
	} control;
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	ssize_t n;

	if (nfds == 0)
		return frame_write_all(fd, out, timeout_ms);
	if (nfds > FRAME_FDS_MAX || buf_len(out) == 0) {
		errno = EINVAL;
		return -1;
	}
	for (;;) {
		memset(&msg, 0, sizeof(msg));
		memset(&control, 0, sizeof(control));
		iov.iov_base = buf_data_mut(out);
		iov.iov_len = buf_len(out);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control.space;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n > 0)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && poll(&pfd, 1, timeout_ms) > 0)
			continue;
		return -1;
	}
	buf_consume(out, (size_t)n);
	return frame_write_all(fd, out, timeout_ms);
}

ssize_t
frame_read(int fd, struct buf *in, int *fds, size_t *nfds, size_t max)
{
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int) * FRAME_FDS_MAX)];
	} control;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	size_t i, got;
	ssize_t n;
	char *p;
	int *in_fds;

	p = buf_reserve(in, 4096);
	if (p == NULL) {
		errno = ENOBUFS;
		return -1;
	}
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = p;
	iov.iov_len = 4096;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.space;
	msg.msg_controllen = sizeof(control.space);
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return n;
	buf_commit(in, (size_t)n);
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		got = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		in_fds = (int *)CMSG_DATA(cm);
		for (i = 0; i < got; i++) {
			if (*nfds < max)
				fds[(*nfds)++] = in_fds[i];
			else
				close(in_fds[i]);
		}
	}
	return n;
}

enum frame_result
frame_parse(const void *data, size_t len, struct frame_reader *r, size_t *frame_len)
{
	const unsigned char *p = data;
	uint64_t plen;

	if (len < FRAME_HEADER_SIZE)
		return FRAME_NEED_MORE;
	plen = get_be(p + 4, 4);
	if (plen > FRAME_PAYLOAD_MAX || get_be(p + 2, 2) != 0)
		return FRAME_BAD;
	if (len - FRAME_HEADER_SIZE < plen)
		return FRAME_NEED_MORE;
	r->type = (enum frame_type)get_be(p, 2);
	r->p = p + FRAME_HEADER_SIZE;
	r->len = (size_t)plen;
	r->pos = 0;
	*frame_len = FRAME_HEADER_SIZE + (size_t)plen;
	return FRAME_OK;
}

int
frame_get_u64(struct frame_reader *r, uint64_t *v)
{
	if (r->len - r->pos < 9 || r->p[r->pos] != FRAME_FIELD_U64)
		return -1;
	*v = get_be(r->p + r->pos + 1, 8);
	r->pos += 9;
	return 0;
}

int
frame_get_bytes(struct frame_reader *r, const char **p, size_t *len)
{
	uint64_t n;

	if (r->len - r->pos < 5 || r->p[r->pos] != FRAME_FIELD_BYTES)
		return -1;
	n = get_be(r->p + r->pos + 1, 4);
	if (n > r->len - r->pos - 5)
		return -1;
	*p = (const char *)r->p + r->pos + 5;
	*len = (size_t)n;
	r->pos += 5 + (size_t)n;
	return 0;
}

int
frame_get_str(struct frame_reader *r, char *dst, size_t dstsz)
{
	struct frame_reader save = *r;
	const char *p;
	size_t n;

	if (frame_get_bytes(r, &p, &n) < 0)
		return -1;
	if (n >= dstsz || memchr(p, '\0', n) != NULL) {
		*r = save;
		return -1;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

int
frame_get_strdup(struct frame_reader *r, char **out)
{
	struct frame_reader save = *r;
	const char *p;
	size_t n;

	if (frame_get_bytes(r, &p, &n) < 0)
		return -1;
	if (memchr(p, '\0', n) != NULL) {
		*r = save;
		return -1;
	}
	*out = malloc(n + 1);
	if (*out == NULL)
		fatal("out of memory");
	memcpy(*out, p, n);
	(*out)[n] = '\0';
	return 0;
}

int
frame_get_end(struct frame_reader *r)
{
	return r->pos == r->len ? 0 : -1;
}
