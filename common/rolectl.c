/*
 * rolectl: the role side of the master's control channel (rolectl.h).
 */
#include "common/rolectl.h"

#include <errno.h>

#include "common/log.h"

#define ROLECTL_WRITE_MS 5000

void
rolectl_send(int fd, enum frame_type type, const char *text, uint64_t num)
{
	struct buf out;
	size_t start;

	buf_init(&out, ROLECTL_IN_MAX);
	start = frame_begin(&out, type);
	if (type == FRAME_CHILD_READY)
		frame_put_u64(&out, num);
	else if (type == FRAME_CHILD_RELOADED)
		frame_put_str(&out, text != NULL ? text : "");
	if (frame_end(&out, start) != FRAME_OK)
		panic("control frame too large");
	(void)frame_write_all(fd, &out, ROLECTL_WRITE_MS);
	buf_free(&out);
}

int
rolectl_read(int fd, struct buf *in, int *fds, size_t *nfds, size_t maxfds,
             void (*on_frame)(void *arg, struct frame_reader *r), void *arg)
{
	struct frame_reader r;
	size_t flen;
	ssize_t n;

	n = frame_read(fd, in, fds, nfds, maxfds);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return -1;
	for (;;) {
		switch (frame_parse(buf_data(in), buf_len(in), &r, &flen)) {
		case FRAME_NEED_MORE:
			return 0;
		case FRAME_BAD:
			panic("malformed frame header from master");
		case FRAME_OK:
			on_frame(arg, &r);
			buf_consume(in, flen);
			break;
		}
	}
}

enum frame_type
rolectl_command(struct frame_reader *r, uint64_t *drain_s)
{
	*drain_s = 0;
	switch (r->type) {
	case FRAME_MASTER_RELOAD:
		if (frame_get_end(r) < 0)
			panic("malformed RELOAD frame from master");
		break;
	case FRAME_MASTER_DRAIN:
		if (frame_get_u64(r, drain_s) < 0 || frame_get_end(r) < 0)
			panic("malformed DRAIN frame from master");
		break;
	default:
		panic("unexpected frame type %d from master", (int)r->type);
	}
	return r->type;
}
