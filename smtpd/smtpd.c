/*
 * smtpd: the listener role's process. It owns the event loop, the
 * listening sockets it was handed, the spool handle, the configuration in
 * force and the list of sessions; sessions borrow all of these.
 *
 * Talks to the master over one socketpair: READY when serving, RELOAD
 * (re-read the validated configuration; sessions keep going), DRAIN (stop
 * accepting, let transactions finish within smtpd_drain_timeout, exit 0),
 * TLS_KEYS (the certificates and keys the master read as root; the first
 * one comes before the role serves, the next ones before each RELOAD).
 * A frame it cannot decode is a bug (panic); the master restarts the role.
 */
#include "smtpd/smtpd.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/evloop.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/rolectl.h"
#include "queue/spool.h"
#include "smtpd/smtpd_anvil.h"
#include "smtpd/smtpd_auth.h"
#include "smtpd/smtpd_notify.h"
#include "smtpd/smtpd_content.h"
#include "smtpd/smtpd_restrict.h"
#include "smtpd/smtpd_server.h"
#include "smtpd/smtpd_session.h"
#include "smtpd/smtpd_session_impl.h"
#include "smtpd/smtpd_tls.h"

/* Connections taken from one listener per readiness event, so one busy
 * listener cannot starve the sessions. */
#define SMTPD_ACCEPT_BATCH 64
/* How long the drained role waits for the spool's last verdicts. */
#define SMTPD_EXIT_COMMIT_WAIT_MS 30000
#define SMTPD_LISTENERS_MAX 32
/* The control channel carries the TLS key material too. */
#define SMTPD_CONTROL_IN_MAX (ROLECTL_IN_MAX + SMTPD_TLS_KEYS_FRAME_MAX)
/* How long the role waits for the master's first TLS_KEYS frame. */
#define SMTPD_TLS_KEYS_WAIT_MS 30000

struct smtpd_listener {
	struct ev_io io;
	int fd;
	enum config_listener listener;
	struct smtpd_role *role;
};

struct smtpd_role {
	struct smtpd_server srv;
	const char *cfg_path;
	struct smtpd_listener listeners[SMTPD_LISTENERS_MAX];
	size_t nlisteners;
	int control_fd;
	struct ev_io control_io;
	struct buf control_in;
	int passed_fds[FRAME_FDS_MAX];	/* descriptors received, not yet claimed */
	size_t npassed;
	struct ev_io commit_io;
	struct ev_timer drain_timer;	/* smtpd_drain_timeout */
	struct ev_timer drain_tick;	/* looks whether every session ended */
	bool tls_keys_seen;		/* the first TLS_KEYS frame arrived */
	struct ev_timer anvil_timer;	/* the anvil table's expiry, once a unit */
	struct ev_timer anvil_status;	/* anvil_status_update_time */
	int exit_status;
};

/* ---- the server's session list ---- */

void
smtpd_server_session_added(struct smtpd_server *srv, struct smtpd_session *s)
{
	s->prev = NULL;
	s->next = srv->sessions;
	if (srv->sessions != NULL)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
}

void
smtpd_server_session_removed(struct smtpd_server *srv, struct smtpd_session *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	srv->nsessions--;
}

/* ---- control channel ---- */

static void
smtpd_control_send(struct smtpd_role *role, enum frame_type type, const char *text, uint64_t num)
{
	rolectl_send(role->control_fd, type, text, num);
}

static void smtpd_drain_start(struct smtpd_role *role, int64_t seconds);
static void smtpd_listeners_install(struct smtpd_role *role, const struct smtpd_listen_fd *fds,
                                    size_t nfds);

/* (Re)open the recipient resolver's maps for cfg; on failure the old
 * resolver stays (the master checked the file; a map may have changed). */
static void
smtpd_addr_setup(struct smtpd_server *srv, const struct config *cfg)
{
	struct buf diag;
	struct addr_resolver *r;

	buf_init(&diag, 64 * 1024);
	r = addr_resolver_new(cfg, NULL, &diag);
	if (r == NULL) {
		if (srv->addr == NULL)
			fatal("recipient maps: %s", buf_cstr(&diag));
		log_warning("reload: recipient maps: %s; keeping the old ones", buf_cstr(&diag));
	} else {
		addr_resolver_free(srv->addr);
		srv->addr = r;
	}
	buf_free(&diag);
}

/* The restriction lists for srv->cfg (smtpd_restrict.h): fatal at start,
 * the old lists kept at a reload that cannot open a new map. */
static void
smtpd_rules_reload(struct smtpd_server *srv)
{
	struct buf diag;

	buf_init(&diag, 64 * 1024);
	if (srv->rules == NULL) {
		srv->rules = smtpd_restrict_new(srv->loop, srv->cfg, srv->addr, &diag);
		if (srv->rules == NULL)
			fatal("restrictions: %s", buf_cstr(&diag));
	} else if (smtpd_restrict_reload(srv->rules, srv->cfg, srv->addr, &diag) < 0) {
		log_warning("reload: restrictions: %s; keeping the old lists", buf_cstr(&diag));
	}
	buf_free(&diag);
}

/* The header and body check maps for srv->cfg (smtpd_content.h): fatal at
 * start, the old ones kept at a reload that cannot open a new one.
 * Messages in progress keep the maps they started with. */
static void
smtpd_content_reload(struct smtpd_server *srv, bool at_start)
{
	struct smtpd_content_maps *m;
	struct buf diag;

	buf_init(&diag, 64 * 1024);
	m = smtpd_content_maps_new(srv->cfg, &diag);
	if (m == NULL && at_start)
		fatal("content checks: %s", buf_cstr(&diag));
	if (m == NULL) {
		log_warning("reload: content checks: %s; keeping the old maps", buf_cstr(&diag));
	} else {
		smtpd_content_maps_unref(srv->content);
		srv->content = m;
	}
	buf_free(&diag);
}

/* (Re)build the AUTH back ends for cfg (smtpd_auth.h): at start a back end
 * that cannot work stops the role, as Postfix's smtpd stops with "no SASL
 * authentication mechanisms"; at reload the old ones stay. */
static void
smtpd_auth_setup(struct smtpd_role *role, const struct config *cfg, bool at_start)
{
	char dir[PATH_MAX], err[512];
	const char *slash = role->cfg_path ? strrchr(role->cfg_path, '/') : NULL;
	struct smtpd_auth_set *set;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - role->cfg_path), role->cfg_path);
	set = smtpd_auth_set_new(role->srv.loop, cfg, role->cfg_path ? dir : NULL, role->srv.auth,
	                         err, sizeof(err));
	if (set == NULL) {
		if (at_start)
			fatal("SASL: %s", err);
		log_warning("reload: SASL: %s; keeping the old settings", err);
		return;
	}
	role->srv.auth = set;
}

/* ---- the anvil table (smtpd_anvil.h, doc/anvil.md) ---- */

/* anvil_rate_time_unit in ms; a second at least. */
static int64_t
smtpd_anvil_unit_ms(const struct config *cfg)
{
	int64_t unit = config_time(cfg, P_ANVIL_RATE_TIME_UNIT);

	return (unit < 1 ? 1 : unit) * 1000;
}

/* Once a time unit: give back the memory of clients whose window ended,
 * and say (once a unit, not once an event) when the table was full. */
static void
smtpd_anvil_tick(struct ev_timer *t)
{
	struct smtpd_role *role = t->arg;
	uint64_t evicted, untracked;

	smtpd_anvil_expire(role->srv.anvil, evloop_now(role->srv.loop));
	if (smtpd_anvil_take_overflow(role->srv.anvil, &evicted, &untracked))
		log_warning("anvil table full (%u clients and logins): %llu idle entries forgotten "
		    "before their time unit ended, %llu events not counted",
		    SMTPD_ANVIL_ENTRIES_MAX, (unsigned long long)evicted,
		    (unsigned long long)untracked);
	evloop_timer_start(role->srv.loop, t, smtpd_anvil_unit_ms(role->srv.cfg));
}

/* One "statistics:" line of anvil(8), for a peak reached at the loop's
 * time p->when. */
static void
smtpd_anvil_log_peak(struct smtpd_role *role, enum smtpd_anvil_stat st,
    const struct smtpd_anvil_peak *p)
{
	static const char *const what[SMTPD_ANVIL_STAT_KINDS] = {
		[SMTPD_ANVIL_STAT_CONNECT_RATE] = "connection rate",
		[SMTPD_ANVIL_STAT_COUNT] = "connection count",
		[SMTPD_ANVIL_STAT_MAIL_RATE] = "message rate",
		[SMTPD_ANVIL_STAT_RCPT_RATE] = "recipient rate",
		[SMTPD_ANVIL_STAT_SIZE] = "cache size",
	};
	time_t when = time(NULL) - (time_t)((evloop_now(role->srv.loop) - p->when) / 1000);
	char date[32], rate[32] = "";

	if (ctime_r(&when, date) == NULL || strlen(date) < 19)
		snprintf(date, sizeof(date), "    (unknown time)");
	if (st != SMTPD_ANVIL_STAT_COUNT && st != SMTPD_ANVIL_STAT_SIZE)
		snprintf(rate, sizeof(rate), "/%llds",
		    (long long)(smtpd_anvil_unit_ms(role->srv.cfg) / 1000));
	if (st == SMTPD_ANVIL_STAT_SIZE)
		log_info("statistics: max %s %u at %.15s", what[st], p->value, date + 4);
	else
		log_info("statistics: max %s %u%s for (%s:%s) at %.15s", what[st], p->value, rate,
		    config_listener_name((enum config_listener)p->listener), p->name, date + 4);
}

/* anvil(8)'s "statistics:" lines: the peaks since the last ones, each
 * logged only when there was one. */
static void
smtpd_anvil_log_status(struct smtpd_role *role)
{
	struct smtpd_anvil_peak p;
	int st;

	for (st = 0; st < SMTPD_ANVIL_STAT_KINDS; st++)
		if (smtpd_anvil_take_peak(role->srv.anvil, (enum smtpd_anvil_stat)st, &p))
			smtpd_anvil_log_peak(role, (enum smtpd_anvil_stat)st, &p);
}

static void
smtpd_anvil_status_tick(struct ev_timer *t)
{
	struct smtpd_role *role = t->arg;
	int64_t every = config_time(role->srv.cfg, P_ANVIL_STATUS_UPDATE_TIME);

	smtpd_anvil_log_status(role);
	evloop_timer_start(role->srv.loop, t, (every < 1 ? 1 : every) * 1000);
}

/* Made at start, kept at reload: the counts survive a new configuration;
 * only the unit changes (open windows are measured against it). */
static void
smtpd_anvil_setup(struct smtpd_role *role)
{
	int64_t unit = smtpd_anvil_unit_ms(role->srv.cfg);

	int64_t every = config_time(role->srv.cfg, P_ANVIL_STATUS_UPDATE_TIME);

	if (role->srv.anvil == NULL) {
		role->srv.anvil = smtpd_anvil_new(SMTPD_ANVIL_ENTRIES_MAX, unit);
		evloop_timer_init(&role->anvil_timer, smtpd_anvil_tick, role);
		evloop_timer_init(&role->anvil_status, smtpd_anvil_status_tick, role);
	}
	smtpd_anvil_set_unit(role->srv.anvil, unit);
	evloop_timer_start(role->srv.loop, &role->anvil_timer, unit);
	evloop_timer_start(role->srv.loop, &role->anvil_status, (every < 1 ? 1 : every) * 1000);
}

static void
smtpd_reload(struct smtpd_role *role)
{
	struct buf errors;
	struct config *cfg;

	buf_init(&errors, 64 * 1024);
	cfg = config_load(role->cfg_path, &errors);
	if (cfg == NULL) {
		/* The master validated this file a moment ago; it changed since. */
		log_warning("reload: configuration has errors, keeping the old one: %s",
		    buf_cstr(&errors));
		smtpd_control_send(role, FRAME_CHILD_RELOADED, "configuration errors", 0);
		buf_free(&errors);
		return;
	}
	buf_free(&errors);
	smtpd_addr_setup(&role->srv, cfg);
	smtpd_auth_setup(role, cfg, false);
	config_free(role->srv.cfg);
	role->srv.cfg = cfg;
	smtpd_rules_reload(&role->srv);
	smtpd_content_reload(&role->srv, false);
	smtpd_anvil_setup(role);
	snprintf(role->srv.hostname, sizeof(role->srv.hostname), "%s", config_str(cfg, P_MYHOSTNAME));
	log_set_hostname(role->srv.hostname);
	log_info("reload: configuration %s", role->cfg_path ? role->cfg_path : "(development defaults)");
	smtpd_control_send(role, FRAME_CHILD_RELOADED, "", 0);
}

/* New listening sockets after a reload that changed the addresses. The
 * sessions on the old ones go on; only accepting moves. */
static void
smtpd_control_listeners(struct smtpd_role *role, struct frame_reader *r)
{
	struct smtpd_listen_fd fds[SMTPD_LISTENERS_MAX];
	enum config_listener l;
	uint64_t n, i;
	const char *name;
	size_t len;

	if (frame_get_u64(r, &n) < 0 || n > SMTPD_LISTENERS_MAX || n > role->npassed)
		panic("malformed LISTENERS frame from master");
	for (i = 0; i < n; i++) {
		if (frame_get_bytes(r, &name, &len) < 0)
			panic("malformed LISTENERS frame from master");
		for (l = CONFIG_LISTENER_SMTP; l < CONFIG_LISTENER_COUNT; l++)
			if (strlen(config_listener_name(l)) == len &&
			    memcmp(config_listener_name(l), name, len) == 0)
				break;
		if (l == CONFIG_LISTENER_COUNT)
			panic("unknown listener in LISTENERS frame");
		fds[i].fd = role->passed_fds[i];
		fds[i].listener = l;
	}
	if (frame_get_end(r) < 0)
		panic("malformed LISTENERS frame from master");
	memmove(role->passed_fds, role->passed_fds + n, (role->npassed - n) * sizeof(int));
	role->npassed -= (size_t)n;
	if (role->srv.draining) {
		for (i = 0; i < n; i++)
			close(fds[i].fd);
		return;
	}
	smtpd_listeners_install(role, fds, (size_t)n);
	log_info("reload: now listening on %zu sockets", (size_t)n);
}

/* New key material: new contexts for new sessions; sessions under way
 * keep theirs. A surprise failure keeps the old contexts. */
static void
smtpd_control_tls_keys(struct smtpd_role *role, struct frame_reader *r)
{
	struct smtpd_tls_server *tls;
	struct smtpd_tls_keys *keys;
	char err[400], fp[128];

	if (smtpd_tls_keys_decode(r, &keys) < 0)
		panic("malformed TLS_KEYS frame from master");
	role->tls_keys_seen = true;
	tls = smtpd_tls_server_new(keys, err, sizeof(err));
	smtpd_tls_keys_free(keys);
	if (tls == NULL) {
		log_warning("TLS: %s; keeping the certificates in force", err);
		return;
	}
	smtpd_tls_server_free(role->srv.tls);
	role->srv.tls = tls;
	for (int l = CONFIG_LISTENER_SMTP; l < CONFIG_LISTENER_COUNT; l++)
		if (smtpd_tls_server_fingerprint(tls, (enum config_listener)l, fp, sizeof(fp)))
			log_info("TLS certificate for the %s listener: sha256 %s",
			    config_listener_name((enum config_listener)l), fp);
}

static void
smtpd_control_frame(void *arg, struct frame_reader *r)
{
	struct smtpd_role *role = arg;
	uint64_t seconds;

	switch (r->type) {
	case FRAME_MASTER_RELOAD:
		if (frame_get_end(r) < 0)
			panic("malformed RELOAD frame from master");
		smtpd_reload(role);
		break;
	case FRAME_MASTER_LISTENERS:
		smtpd_control_listeners(role, r);
		break;
	case FRAME_MASTER_TLS_KEYS:
		smtpd_control_tls_keys(role, r);
		break;
	case FRAME_MASTER_DRAIN:
		if (frame_get_u64(r, &seconds) < 0 || frame_get_end(r) < 0)
			panic("malformed DRAIN frame from master");
		smtpd_drain_start(role, (int64_t)seconds);
		break;
	default:
		panic("unexpected frame type %d from master", (int)r->type);
	}
}

static void
smtpd_control_read(struct ev_io *io, unsigned revents)
{
	struct smtpd_role *role = io->arg;

	(void)revents;
	if (rolectl_read(role->control_fd, &role->control_in, role->passed_fds, &role->npassed,
	    FRAME_FDS_MAX, smtpd_control_frame, role) < 0) {
		/* The master is gone: stop serving, as after SIGTERM. */
		evloop_io_del(role->srv.loop, &role->control_io);
		if (!role->srv.draining)
			log_warning("master went away; draining");
		smtpd_drain_start(role, config_time(role->srv.cfg, P_SMTPD_DRAIN_TIMEOUT));
	}
}

/* ---- listeners ---- */

static void
smtpd_refuse(int fd, const char *host)
{
	char line[300];
	int n;

	/* Best effort on a fresh socket: the reply fits its send buffer. */
	n = snprintf(line, sizeof(line), "421 4.7.0 %s Error: too many connections\r\n", host);
	if (n > 0)
		(void)send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void
smtpd_accept(struct ev_io *io, unsigned revents)
{
	struct smtpd_listener *l = io->arg;
	struct smtpd_role *role = l->role;
	struct sockaddr_storage peer, local;
	socklen_t plen, llen;
	uint64_t limit;
	int fd, i;

	(void)revents;
	limit = config_int(role->srv.cfg, P_SMTPD_CLIENT_CONNECTION_LIMIT);
	for (i = 0; i < SMTPD_ACCEPT_BATCH; i++) {
		plen = sizeof(peer);
		fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning("accept: %s", strerror(errno));
			return;
		}
		if (limit > 0 && role->srv.nsessions >= limit) {
			log_warning("too many connections (%llu); refusing one",
			    (unsigned long long)limit);
			smtpd_refuse(fd, role->srv.hostname);
			continue;
		}
		llen = sizeof(local);
		if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
			memset(&local, 0, sizeof(local));
		smtpd_session_start(&role->srv, fd, l->listener, (struct sockaddr *)&peer, plen,
		    (struct sockaddr *)&local, llen);
	}
}

/* Close every listener (the master keeps its own copies). */
static void
smtpd_listeners_close(struct smtpd_role *role)
{
	size_t i;

	for (i = 0; i < role->nlisteners; i++) {
		evloop_io_del(role->srv.loop, &role->listeners[i].io);
		close(role->listeners[i].fd);
	}
	role->nlisteners = 0;
}

/* Serve these listening sockets (adopted), instead of any before. */
static void
smtpd_listeners_install(struct smtpd_role *role, const struct smtpd_listen_fd *fds, size_t nfds)
{
	size_t i;

	smtpd_listeners_close(role);
	if (nfds > SMTPD_LISTENERS_MAX)
		panic("too many listening sockets (%zu)", nfds);
	for (i = 0; i < nfds; i++) {
		struct smtpd_listener *l = &role->listeners[role->nlisteners++];

		l->fd = fds[i].fd;
		l->listener = fds[i].listener;
		l->role = role;
		if (evloop_set_nonblock(l->fd) < 0 ||
		    evloop_io_add(role->srv.loop, &l->io, l->fd, EV_READ, smtpd_accept, l) < 0)
			fatal("listener: %s", strerror(errno));
	}
}

/* ---- spool results ---- */

static void
smtpd_commit_ready(struct ev_io *io, unsigned revents)
{
	struct smtpd_role *role = io->arg;

	(void)revents;
	spool_commit_dispatch(role->srv.spool);
}

/* ---- drain ---- */

static void
smtpd_drain_check(struct smtpd_role *role)
{
	if (!role->srv.draining || role->srv.nsessions > 0)
		return;
	evloop_break(role->srv.loop);
}

static void
smtpd_drain_timeout(struct ev_timer *t)
{
	struct smtpd_role *role = t->arg;
	struct smtpd_session *s, *next;

	log_warning("drain timeout: closing %zu sessions", role->srv.nsessions);
	for (s = role->srv.sessions; s != NULL; s = next) {
		next = s->next;
		smtpd_session_abort(s);
	}
	evloop_break(role->srv.loop);
}

static void smtpd_drain_tick(struct ev_timer *t);

static void
smtpd_drain_start(struct smtpd_role *role, int64_t seconds)
{
	struct smtpd_session *s, *next;

	if (role->srv.draining)
		return;
	role->srv.draining = true;
	log_info("stopping: no new connections, %zu sessions to finish", role->srv.nsessions);
	smtpd_listeners_close(role);
	for (s = role->srv.sessions; s != NULL; s = next) {
		next = s->next;
		smtpd_session_drain(s);
	}
	evloop_timer_init(&role->drain_timer, smtpd_drain_timeout, role);
	evloop_timer_start(role->srv.loop, &role->drain_timer, seconds * 1000);
	/* Sessions end on their own; look every 100 ms whether all have. */
	evloop_timer_init(&role->drain_tick, smtpd_drain_tick, role);
	evloop_timer_start(role->srv.loop, &role->drain_tick, 100);
	smtpd_drain_check(role);
}

static void
smtpd_drain_tick(struct ev_timer *t)
{
	struct smtpd_role *role = t->arg;

	smtpd_drain_check(role);
	evloop_timer_start(role->srv.loop, t, 100);
}

static void
smtpd_signal(int signo, void *arg)
{
	struct smtpd_role *role = arg;

	if (signo == SIGTERM || signo == SIGINT)
		smtpd_drain_start(role, config_time(role->srv.cfg, P_SMTPD_DRAIN_TIMEOUT));
}

/* ---- main ---- */

static void
smtpd_raise_nofile(void)
{
	struct rlimit rl;

	/* 10,000 sessions need 10,000 descriptors; the master raised the
	 * hard limit while it was root. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warning("cannot raise the descriptor limit: %s", strerror(errno));
	}
}

static void
smtpd_wait_commits(struct smtpd_role *role)
{
	int64_t until = evloop_update_time(role->srv.loop) + SMTPD_EXIT_COMMIT_WAIT_MS;

	/* Every message the spool still holds gets its verdict (and its
	 * session its reply) before the role exits. */
	while (spool_commit_pending(role->srv.spool) > 0 &&
	    evloop_update_time(role->srv.loop) < until) {
		if (spool_commit_dispatch(role->srv.spool) == 0)
			usleep(1000);
	}
}

static int
smtpd_setup(struct smtpd_role *role, const struct smtpd_listen_fd *fds, size_t nfds)
{
	struct spool_options opt;
	char err[256];

	memset(&opt, 0, sizeof(opt));
	opt.fsync_threads = (unsigned)config_int(role->srv.cfg, P_SPOOL_FSYNC_THREADS);
	opt.map_size = config_int(role->srv.cfg, P_SPOOL_MAP_SIZE);
	role->srv.spool = spool_open(config_str(role->srv.cfg, P_QUEUE_DIRECTORY), &opt, err, sizeof(err));
	if (role->srv.spool == NULL)
		fatal("cannot open the spool %s: %s", config_str(role->srv.cfg, P_QUEUE_DIRECTORY), err);
	if (evloop_io_add(role->srv.loop, &role->commit_io, spool_commit_fd(role->srv.spool), EV_READ,
	    smtpd_commit_ready, role) < 0)
		fatal("epoll: %s", strerror(errno));
	role->srv.notify = smtpd_notify_new(role->srv.loop, config_str(role->srv.cfg,
	                                    P_QUEUE_DIRECTORY));
	smtpd_addr_setup(&role->srv, role->srv.cfg);
	smtpd_rules_reload(&role->srv);
	smtpd_content_reload(&role->srv, true);
	smtpd_auth_setup(role, role->srv.cfg, true);
	smtpd_anvil_setup(role);
	smtpd_listeners_install(role, fds, nfds);
	if (evloop_set_nonblock(role->control_fd) < 0 ||
	    evloop_io_add(role->srv.loop, &role->control_io, role->control_fd, EV_READ,
	    smtpd_control_read, role) < 0)
		fatal("control socket: %s", strerror(errno));
	if (evloop_signal_add(role->srv.loop, SIGTERM, smtpd_signal, role) < 0 ||
	    evloop_signal_add(role->srv.loop, SIGINT, smtpd_signal, role) < 0)
		fatal("signals: %s", strerror(errno));
	return 0;
}

/*
 * Wait (bounded) for the master's first TLS_KEYS frame, which it sends
 * right after the fork: no connection is accepted before the role knows
 * its certificates, so an smtps client never meets a role without them.
 */
static void
smtpd_wait_tls_keys(struct smtpd_role *role)
{
	int64_t until = evloop_update_time(role->srv.loop) + SMTPD_TLS_KEYS_WAIT_MS;
	struct pollfd pfd = { .fd = role->control_fd, .events = POLLIN };
	int64_t left;

	while (!role->tls_keys_seen) {
		left = until - evloop_update_time(role->srv.loop);
		if (left <= 0)
			fatal("no TLS key material from the master after %d ms",
			    SMTPD_TLS_KEYS_WAIT_MS);
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		if (rolectl_read(role->control_fd, &role->control_in, role->passed_fds,
		    &role->npassed, FRAME_FDS_MAX, smtpd_control_frame, role) < 0)
			fatal("the master went away before sending the TLS key material");
	}
}

int
smtpd_main(const char *cfg_path, struct config *cfg, int control_fd,
    const struct smtpd_listen_fd *fds, size_t nfds)
{
	struct smtpd_role *role;

	role = calloc(1, sizeof(*role));
	if (role == NULL)
		fatal("out of memory");
	signal(SIGPIPE, SIG_IGN);
	smtpd_raise_nofile();
	role->cfg_path = cfg_path;
	role->control_fd = control_fd;
	buf_init(&role->control_in, SMTPD_CONTROL_IN_MAX);
	role->srv.cfg = cfg;
	snprintf(role->srv.hostname, sizeof(role->srv.hostname), "%s", config_str(cfg, P_MYHOSTNAME));
	role->srv.loop = evloop_new();
	if (role->srv.loop == NULL)
		fatal("evloop: %s", strerror(errno));
	smtpd_setup(role, fds, nfds);
	smtpd_wait_tls_keys(role);
	smtpd_control_send(role, FRAME_CHILD_READY, NULL, (uint64_t)getpid());

	evloop_run(role->srv.loop);
	/* anvil(8) logs its peaks when it stops, too. */
	smtpd_anvil_log_status(role);

	smtpd_wait_commits(role);
	smtpd_control_send(role, FRAME_CHILD_DRAINED, NULL, 0);
	log_info("stopped");
	smtpd_notify_free(role->srv.notify);
	spool_close(role->srv.spool);
	smtpd_restrict_free(role->srv.rules);
	smtpd_content_maps_unref(role->srv.content);
	addr_resolver_free(role->srv.addr);
	smtpd_auth_set_free(role->srv.auth);
	smtpd_tls_server_free(role->srv.tls);
	evloop_timer_stop(role->srv.loop, &role->anvil_timer);
	evloop_timer_stop(role->srv.loop, &role->anvil_status);
	smtpd_anvil_free(role->srv.anvil);
	evloop_free(role->srv.loop);
	config_free(role->srv.cfg);
	buf_free(&role->control_in);
	free(role);
	return 0;
}
