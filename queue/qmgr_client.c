/*
 * qmgr_client: one command to qmgr, synchronously (qmgr_client.h).
 */
#include "queue/qmgr_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fconn.h"
#include "common/frame.h"

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Decode the answer frame r: 0 or a sysexits code with err set. */
typedef int client_answer_fn(void *arg, struct frame_reader *r, char *err, size_t errsz);

static int
client_request(const char *queue_directory, const struct qmgr_command *cmd, int timeout_ms,
               client_answer_fn *answer, void *arg, char *err, size_t errsz)
{
	char path[600];
	struct buf out, in;
	int fd, rc = EX_UNAVAILABLE;
	int64_t deadline = mono_ms() + timeout_ms;

	if ((size_t)snprintf(path, sizeof(path), "%s/private/qmgr", queue_directory) >= sizeof(path)) {
		snprintf(err, errsz, "queue_directory too long");
		return EX_CONFIG;
	}
	fd = fconn_connect_unix(path);
	if (fd < 0) {
		int e = errno;

		snprintf(err, errsz, "cannot reach the queue manager at %s: %s%s", path, strerror(e),
		         e == ENOENT || e == ECONNREFUSED ? " (is ternd running?)" : "");
		return e == EACCES || e == EPERM ? EX_NOPERM : EX_UNAVAILABLE;
	}
	buf_init(&out, FRAME_PAYLOAD_MAX + FRAME_HEADER_SIZE);
	buf_init(&in, 64 * 1024);
	if (qmgr_command_encode(cmd, &out) < 0) {
		snprintf(err, errsz, "command too large");
		rc = EX_USAGE;
		goto out;
	}
	if (frame_write_all(fd, &out, timeout_ms) < 0) {
		snprintf(err, errsz, "cannot send the command: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		struct frame_reader r;
		struct pollfd p = { fd, POLLIN, 0 };
		size_t flen;
		int64_t left = deadline - mono_ms();
		ssize_t n;

		switch (frame_parse(buf_data(&in), buf_len(&in), &r, &flen)) {
		case FRAME_OK:
			rc = answer(arg, &r, err, errsz);
			goto out;
		case FRAME_BAD:
			snprintf(err, errsz, "malformed reply from qmgr");
			rc = EX_PROTOCOL;
			goto out;
		case FRAME_NEED_MORE:
			break;
		}
		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			snprintf(err, errsz, "no answer from the queue manager in %d s", timeout_ms / 1000);
			goto out;
		}
		n = buf_read_fd(&in, fd, 16384);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			snprintf(err, errsz, "the queue manager closed the connection%s%s",
			         n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
			goto out;
		}
	}
out:
	buf_free(&out);
	buf_free(&in);
	close(fd);
	return rc;
}

static int
answer_reply(void *arg, struct frame_reader *r, char *err, size_t errsz)
{
	if (r->type != FRAME_QMGR_REPLY) {
		snprintf(err, errsz, "unexpected frame %d from qmgr", (int)r->type);
		return EX_PROTOCOL;
	}
	return qmgr_reply_decode(r, arg, err, errsz) < 0 ? EX_PROTOCOL : 0;
}

int
qmgr_client_command(const char *queue_directory, const struct qmgr_command *cmd,
                    struct qmgr_reply *rep, int timeout_ms, char *err, size_t errsz)
{
	return client_request(queue_directory, cmd, timeout_ms, answer_reply, rep, err, errsz);
}

/* STATS, or a REPLY when qmgr refuses (its status and text). */
static int
answer_stats(void *arg, struct frame_reader *r, char *err, size_t errsz)
{
	struct qmgr_reply rep;

	if (r->type == FRAME_QMGR_STATS)
		return qmgr_stats_decode(r, arg, err, errsz) < 0 ? EX_PROTOCOL : 0;
	if (answer_reply(&rep, r, err, errsz) != 0)
		return EX_PROTOCOL;
	snprintf(err, errsz, "%s", rep.text);
	return rep.status != 0 ? (int)rep.status : EX_PROTOCOL;
}

int
qmgr_client_stats(const char *queue_directory, struct qmgr_stats *st, int timeout_ms, char *err,
                  size_t errsz)
{
	struct qmgr_command cmd = { .verb = QMGR_VERB_STATS };
	int rc;

	memset(st, 0, sizeof(*st));
	rc = client_request(queue_directory, &cmd, timeout_ms, answer_stats, st, err, errsz);
	if (rc != 0)
		qmgr_stats_free(st);
	return rc;
}
