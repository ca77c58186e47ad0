/*
 * agent_link: a delivery agent's end of its connection to qmgr
 * (agent_proto.h), shared by the smtp, lmtp and local agents.
 *
 * The link connects to queue_directory/private/qmgr, says HELLO with its
 * transport and job slots, hands every DELIVER frame to the agent, and
 * sends RESULT (with the per-recipient log line) and DONE. When qmgr goes
 * away the agent is told to drop its jobs (qmgr defers every recipient
 * without a RESULT: at least once, never zero times) and the link tries
 * again every second. A failed connect is logged only once it has lasted
 * AGENT_LINK_WARN_MS (at start qmgr may not listen yet: the roles start
 * together); "connected to qmgr again" follows a warning.
 *
 * Errors: qmgr is a sibling role, so a DELIVER frame that does not decode
 * is a bug there: panic(). Another frame type closes the connection and
 * reconnects. Out of memory is fatal(). Nothing here exits otherwise.
 *
 * Ownership: the agent owns the link (agent_link_new/agent_link_free) and
 * the jobs it was given; the link borrows the loop.
 */
#ifndef TERN_AGENT_LINK_H
#define TERN_AGENT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/evloop.h"
#include "queue/agent_proto.h"

#define AGENT_LINK_IN_MAX (4u * 1024 * 1024)	/* a DELIVER of 1000 long recipients */
#define AGENT_LINK_OUT_MAX (16u * 1024 * 1024)	/* results waiting for qmgr to read */
#define AGENT_LINK_RETRY_MS 1000	/* between connection attempts */
#define AGENT_LINK_WARN_MS 5000		/* qmgr unreachable this long: warn */

struct agent_link;

/*
 * A DELIVER frame arrived: the agent takes j's contents (its strings and
 * arrays are the agent's to free with agent_job_free(); the struct itself
 * is the link's and gone after the call).
 */
typedef void agent_link_job_cb(void *arg, struct agent_job *j);
/*
 * The connection to qmgr ended: drop every job without reporting it (qmgr
 * defers their recipients). Returns how many jobs were dropped, for the
 * log line. Not called after agent_link_stop().
 */
typedef size_t agent_link_lost_cb(void *arg);

/*
 * A link for transport ("smtp", "lmtp", "local") with slots job slots
 * (1 ... 10000), to queue_dir/private/qmgr. Nothing happens before
 * agent_link_start(). fatal() when the socket path does not fit.
 */
struct agent_link *agent_link_new(struct evloop *loop, const char *queue_dir,
                                  const char *transport, uint32_t slots,
                                  agent_link_job_cb *on_job, agent_link_lost_cb *on_lost,
                                  void *arg);
/* Connect now (and keep retrying every AGENT_LINK_RETRY_MS until up). */
void agent_link_start(struct agent_link *l);
/* Connected: RESULT and DONE reach qmgr (else they are dropped). */
bool agent_link_up(const struct agent_link *l);

/*
 * Report recipient k of job j (an index into j->rcpts): fills r's job_id
 * and index, clamps its delays to >= 0, makes an empty relay "none", logs
 * Postfix's line
 *   ID: to=<ADDR>, relay=R, delay=T, delays=a/b/c/d, dsn=X.Y.Z, status=S (TEXT)
 * (delay from j->arrival to now; dsn "4.0.0" when r has none) and sends
 * RESULT when the link is up. A RESULT that does not fit the output queue
 * is logged as an error; qmgr then tries the recipient again.
 */
void agent_link_result(struct agent_link *l, const struct agent_job *j, size_t k,
                       struct agent_result *r);
/* Job j has ended, every recipient reported: send DONE (when up). */
void agent_link_done(struct agent_link *l, const struct agent_job *j);

/* Close for good (draining): no reconnect, no more callbacks. */
void agent_link_stop(struct agent_link *l);
/* Close and free; l may be NULL. */
void agent_link_free(struct agent_link *l);

/* Wall-clock microseconds since the epoch (the clock of arrival times). */
int64_t agent_link_now_us(void);
/* Postfix's delay format: seconds with at most two decimals, trailing
 * zeros dropped ("0", "0.05", "1.2", "37"); negative is "0". dst, which
 * is returned, holds at least 24 bytes. */
const char *agent_link_fmt_delay(char *dst, size_t dstsz, int64_t us);

#endif
