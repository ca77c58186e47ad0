/*
 * smtpd_notify: the best-effort "new message" channel to qmgr.
 */
#include "smtpd/smtpd_notify.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fconn.h"
#include "common/log.h"
#include "queue/spool.h"

#define NOTIFY_IN_MAX 4096		/* qmgr sends nothing on this channel */
#define NOTIFY_OUT_MAX (256u * 1024)	/* about 8000 notices waiting */
#define NOTIFY_RETRY_MS 1000
/* Notices kept while qmgr is away (it restarts within seconds). */
#define NOTIFY_PENDING_MAX 4096

struct smtpd_notify {
	struct evloop *loop;
	char path[512];
	struct fconn conn;
	bool connected;
	int64_t next_try;	/* evloop ms: no connect attempt before */
	unsigned long dropped;
	bool warned;
	/* Queue ids committed while qmgr was unreachable, sent on reconnect. */
	char (*pending)[SPOOL_ID_SIZE];
	size_t npending;
	struct ev_timer retry;
};

static void
notify_frame(struct fconn *c, struct frame_reader *r)
{
	(void)c;
	(void)r;		/* nothing is expected; ignore */
}

static void
notify_closed(struct fconn *c, const char *reason)
{
	struct smtpd_notify *n = c->arg;

	log_debug("qmgr notification channel closed: %s", reason);
	n->connected = false;
	buf_free(&n->conn.in);
	buf_free(&n->conn.out);
	n->next_try = evloop_now(n->loop) + NOTIFY_RETRY_MS;
}

static void notify_retry(struct ev_timer *t);

struct smtpd_notify *
smtpd_notify_new(struct evloop *loop, const char *queue_directory)
{
	struct smtpd_notify *n = calloc(1, sizeof(*n));

	if (n == NULL)
		fatal("out of memory");
	n->loop = loop;
	n->pending = calloc(NOTIFY_PENDING_MAX, sizeof(*n->pending));
	if (n->pending == NULL)
		fatal("out of memory");
	evloop_timer_init(&n->retry, notify_retry, n);
	if ((size_t)snprintf(n->path, sizeof(n->path), "%s/private/qmgr", queue_directory) >=
	    sizeof(n->path))
		fatal("queue_directory too long for a socket path");
	return n;
}

static bool
notify_connect(struct smtpd_notify *n)
{
	int fd;

	if (evloop_now(n->loop) < n->next_try)
		return false;
	fd = fconn_connect_unix(n->path);
	if (fd < 0) {
		if (!n->warned)
			log_warning("cannot reach qmgr at %s: %s; new mail waits for its queue scan",
			            n->path, strerror(errno));
		n->warned = true;
		n->next_try = evloop_now(n->loop) + NOTIFY_RETRY_MS;
		return false;
	}
	if (fconn_open(&n->conn, n->loop, fd, NOTIFY_IN_MAX, NOTIFY_OUT_MAX, notify_frame,
	               notify_closed, n) < 0) {
		close(fd);
		n->next_try = evloop_now(n->loop) + NOTIFY_RETRY_MS;
		return false;
	}
	if (n->warned)
		log_info("connected to qmgr again");
	n->warned = false;
	n->connected = true;
	return true;
}

static void
notify_frame_out(struct smtpd_notify *n, const char *queue_id)
{
	size_t start = fconn_begin(&n->conn, FRAME_QUEUE_NEW);

	frame_put_str(fconn_out(&n->conn), queue_id);
	if (fconn_end(&n->conn, start) < 0)
		n->dropped++;	/* qmgr is not reading: its scan will find it */
}

static void
notify_retry(struct ev_timer *t)
{
	struct smtpd_notify *n = t->arg;

	if (!n->connected && !notify_connect(n)) {
		evloop_timer_start(n->loop, &n->retry, NOTIFY_RETRY_MS);
		return;
	}
	for (size_t i = 0; i < n->npending; i++)
		notify_frame_out(n, n->pending[i]);
	n->npending = 0;
}

void
smtpd_notify_send(struct smtpd_notify *n, const char *queue_id)
{
	if (n == NULL)
		return;
	if (n->connected || (n->npending == 0 && notify_connect(n))) {
		notify_frame_out(n, queue_id);
		return;
	}
	/* Keep it for the reconnect; past the bound, the scan finds it. */
	if (n->npending < NOTIFY_PENDING_MAX)
		snprintf(n->pending[n->npending++], SPOOL_ID_SIZE, "%s", queue_id);
	else
		n->dropped++;
	if (!evloop_timer_active(&n->retry))
		evloop_timer_start(n->loop, &n->retry, NOTIFY_RETRY_MS);
}

void
smtpd_notify_free(struct smtpd_notify *n)
{
	if (n == NULL)
		return;
	evloop_timer_stop(n->loop, &n->retry);
	free(n->pending);
	if (n->connected) {
		fconn_close(&n->conn);
		buf_free(&n->conn.in);
		buf_free(&n->conn.out);
	}
	free(n);
}
