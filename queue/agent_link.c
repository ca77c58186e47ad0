/*
 * agent_link: a delivery agent's connection to qmgr (agent_link.h).
 *
 * Owns the fconn to private/qmgr and the retry timer. The jobs belong to
 * the agent: the link only hands them over and reports on them.
 */
#include "queue/agent_link.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fconn.h"
#include "common/log.h"

struct agent_link {
	struct evloop *loop;
	char path[1100];		/* queue_directory/private/qmgr */
	char transport[AGENT_TRANSPORT_MAX];
	uint32_t slots;
	agent_link_job_cb *on_job;
	agent_link_lost_cb *on_lost;
	void *arg;

	struct fconn conn;
	bool up;
	bool warned;			/* a warning was logged: say when it is back */
	bool stopped;
	int64_t down_since;		/* evloop ms of the first failed connect; 0 up */
	struct ev_timer retry;
};

int64_t
agent_link_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Postfix's delay format (as qmgr's): at most two decimals. */
const char *
agent_link_fmt_delay(char *dst, size_t dstsz, int64_t us)
{
	size_t n;

	snprintf(dst, dstsz, "%.2f", us < 0 ? 0.0 : (double)us / 1e6);
	n = strlen(dst);
	while (n > 0 && dst[n - 1] == '0')
		dst[--n] = '\0';
	if (n > 0 && dst[n - 1] == '.')
		dst[--n] = '\0';
	return dst;
}

void
agent_link_result(struct agent_link *l, const struct agent_job *j, size_t k,
                  struct agent_result *r)
{
	const struct agent_job_rcpt *rc = &j->rcpts[k];
	char d[4][24], total[24];
	const char *status;

	r->job_id = j->job_id;
	r->index = rc->index;
	for (int i = 0; i < 4; i++)
		if (r->delays[i] < 0)
			r->delays[i] = 0;
	if (r->relay[0] == '\0')
		snprintf(r->relay, sizeof(r->relay), "none");
	status = r->status == AGENT_DELIVERED ? "sent"
	       : r->status == AGENT_PERMFAIL ? "bounced" : "deferred";
	log_info("%s: to=<%s>, relay=%s, delay=%s, delays=%s/%s/%s/%s, dsn=%s, status=%s (%s)",
	         j->queue_id, rc->addr, r->relay,
	         agent_link_fmt_delay(total, sizeof(total), agent_link_now_us() - j->arrival),
	         agent_link_fmt_delay(d[0], sizeof(d[0]), r->delays[0]),
	         agent_link_fmt_delay(d[1], sizeof(d[1]), r->delays[1]),
	         agent_link_fmt_delay(d[2], sizeof(d[2]), r->delays[2]),
	         agent_link_fmt_delay(d[3], sizeof(d[3]), r->delays[3]),
	         r->enh[0] ? r->enh : "4.0.0", status, r->text);
	if (!l->up)
		return;
	if (agent_result_encode(r, fconn_out(&l->conn)) < 0)
		log_error("%s: result for <%s> does not fit the queue to qmgr; it is tried again",
		          j->queue_id, rc->addr);
	else
		fconn_flush(&l->conn);
}

void
agent_link_done(struct agent_link *l, const struct agent_job *j)
{
	if (!l->up)
		return;
	if (agent_done_encode(j->job_id, fconn_out(&l->conn)) < 0)
		log_error("%s: DONE does not fit the queue to qmgr", j->queue_id);
	else
		fconn_flush(&l->conn);
}

static void
agent_link_frame(struct fconn *c, struct frame_reader *r)
{
	struct agent_link *l = c->arg;
	struct agent_job j;
	char err[256];

	if (r->type != FRAME_AGENT_DELIVER) {
		log_error("unexpected frame type %d from qmgr; reconnecting", (int)r->type);
		fconn_close(c);
		l->up = false;
		(void)l->on_lost(l->arg);
		evloop_timer_start(l->loop, &l->retry, AGENT_LINK_RETRY_MS);
		return;
	}
	agent_job_init(&j);
	if (agent_job_decode(r, &j, err, sizeof(err)) < 0) {
		/* qmgr is a sibling role: a bad frame is a bug there. */
		agent_job_free(&j);
		panic("malformed DELIVER frame from qmgr: %s", err);
	}
	l->on_job(l->arg, &j);	/* takes j's contents */
}

static void
agent_link_closed(struct fconn *c, const char *reason)
{
	struct agent_link *l = c->arg;
	size_t dropped;

	l->up = false;
	if (l->stopped)
		return;
	dropped = l->on_lost(l->arg);
	log_warning("connection to qmgr lost (%s): %zu jobs dropped, tried again by qmgr; "
	            "reconnecting", reason, dropped);
	l->warned = true;	/* "connected to qmgr again" follows */
	evloop_timer_start(l->loop, &l->retry, AGENT_LINK_RETRY_MS);
}

static void
agent_link_connect(struct agent_link *l)
{
	struct agent_hello h;
	int fd = fconn_connect_unix(l->path);

	if (fd < 0) {
		/* At start qmgr may not listen yet (the roles start together):
		 * say so only when it lasts. */
		if (l->down_since == 0)
			l->down_since = evloop_now(l->loop);
		if (!l->warned && evloop_now(l->loop) - l->down_since >= AGENT_LINK_WARN_MS) {
			log_warning("cannot reach qmgr at %s: %s; retrying", l->path, strerror(errno));
			l->warned = true;
		}
		evloop_timer_start(l->loop, &l->retry, AGENT_LINK_RETRY_MS);
		return;
	}
	if (fconn_open(&l->conn, l->loop, fd, AGENT_LINK_IN_MAX, AGENT_LINK_OUT_MAX,
	               agent_link_frame, agent_link_closed, l) < 0) {
		close(fd);
		evloop_timer_start(l->loop, &l->retry, AGENT_LINK_RETRY_MS);
		return;
	}
	memset(&h, 0, sizeof(h));
	h.version = AGENT_PROTO_VERSION;
	snprintf(h.transport, sizeof(h.transport), "%s", l->transport);
	h.slots = l->slots;
	h.pid = (uint64_t)getpid();
	if (agent_hello_encode(&h, fconn_out(&l->conn)) < 0)
		panic("HELLO does not fit");
	fconn_flush(&l->conn);
	l->up = true;
	if (l->warned)
		log_info("connected to qmgr again");
	l->warned = false;
	l->down_since = 0;
}

static void
agent_link_retry(struct ev_timer *t)
{
	struct agent_link *l = t->arg;

	if (!l->up && !l->stopped)
		agent_link_connect(l);
}

struct agent_link *
agent_link_new(struct evloop *loop, const char *queue_dir, const char *transport, uint32_t slots,
               agent_link_job_cb *on_job, agent_link_lost_cb *on_lost, void *arg)
{
	struct agent_link *l = calloc(1, sizeof(*l));

	if (l == NULL)
		fatal("out of memory");
	if ((size_t)snprintf(l->path, sizeof(l->path), "%s/private/qmgr", queue_dir) >=
	    sizeof(l->path))
		fatal("queue_directory too long for a socket path");
	if (strlen(transport) >= sizeof(l->transport) || slots == 0)
		panic("agent_link_new: transport \"%s\", %u slots", transport, slots);
	snprintf(l->transport, sizeof(l->transport), "%s", transport);
	l->loop = loop;
	l->slots = slots;
	l->on_job = on_job;
	l->on_lost = on_lost;
	l->arg = arg;
	l->conn.fd = -1;
	evloop_timer_init(&l->retry, agent_link_retry, l);
	return l;
}

void
agent_link_start(struct agent_link *l)
{
	if (!l->up && !l->stopped)
		agent_link_connect(l);
}

bool
agent_link_up(const struct agent_link *l)
{
	return l->up;
}

void
agent_link_stop(struct agent_link *l)
{
	l->stopped = true;
	if (l->up) {
		fconn_close(&l->conn);
		l->up = false;
	}
	evloop_timer_stop(l->loop, &l->retry);
}

void
agent_link_free(struct agent_link *l)
{
	if (l == NULL)
		return;
	agent_link_stop(l);
	free(l);
}
