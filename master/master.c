/*
 * master: start-up, supervision, reload and shutdown of ternd.
 *
 * Start-up is a long straight sequence, in this order: configuration,
 * logging, the run-as user, the spool's directories and lock, the
 * listening sockets (port 25 needs root), spool recovery in a child
 * running as mail_owner (no LMDB environment is ever opened in the master,
 * so none can cross a fork), then one child per role.
 *
 * Each child is forked, drops to mail_owner (setgroups, setgid, setuid),
 * and re-execs this binary with --role=NAME: a fresh address space, and
 * the role opens its own spool (a role marked keeps_root, the local
 * agent, keeps root instead: it switches to each recipient itself). It
 * finds its socketpair to the master on descriptor 3, the log file on 4
 * and its listeners from 5 on.
 *
 * Key material: the master reads the listeners' TLS certificates and keys
 * (smtpd/smtpd_tls.h) at start and on every reload, while it is root, and
 * sends the bytes to the smtpd role over its socketpair: first thing after
 * each fork, and before each RELOAD. The role, running as mail_owner,
 * never opens the files.
 *
 * Owns: the configuration in force, the TLS key material in force, the
 * listening sockets, the children table. Errors: configuration problems exit with EX_CONFIG and FILE:LINE
 * messages; other start-up failures are fatal(); a child's death is logged
 * and the child restarted.
 */
#include "master/master.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/buf.h"
#include "common/evloop.h"
#include "common/frame.h"
#include "common/log.h"
#include "config/addr_resolve.h"
#include "config/config.h"
#include "delivery/smtp_agent.h"
#include "master/master_listen.h"
#include "master/master_privs.h"
#include "master/master_roles.h"
#include "queue/qmgr.h"
#include "queue/retry.h"
#include "queue/spool.h"
#include "smtpd/smtpd_content.h"
#include "smtpd/smtpd_restrict.h"
#include "smtpd/smtpd_tls.h"

/* Restart backoff: a role that dies young waits longer each time. */
#define MASTER_BACKOFF_FIRST_MS 1000
#define MASTER_BACKOFF_MAX_MS 60000
#define MASTER_CHILD_STABLE_MS 30000
/* After a drain timeout, how long children get before SIGKILL. */
#define MASTER_KILL_GRACE_S 10
#define MASTER_CONTROL_MAX (64u * 1024)
/* A role that does not read a control frame for this long is stuck. */
#define MASTER_CONTROL_WRITE_MS 5000
/* Descriptors for 10,000+ sessions; below the low mark we warn. */
#define MASTER_NOFILE_WANT 65536
#define MASTER_NOFILE_LOW 10240

struct master_child {
	const struct master_role *role;
	pid_t pid;			/* 0 when not running */
	int control_fd;
	struct ev_io control_io;
	struct buf control_in;
	int64_t started;		/* evloop time */
	int64_t backoff_ms;
	struct ev_timer restart_timer;
	struct master *m;
};

struct master {
	const struct master_options *opt;
	struct config *cfg;
	struct smtpd_tls_keys *tls_keys;	/* read from cfg's files, as root */
	struct evloop *loop;
	struct master_run_as run_as;
	struct master_listeners listeners;
	struct master_child *children;
	size_t nchildren;
	int lock_fd;
	bool stopping;
	struct ev_timer kill_timer;
	int exit_status;
};

static void master_child_spawn(struct master *m, struct master_child *c);

/* ---- configuration and logging ---- */

/* The recipient resolver's maps open (smtpd opens them again for real);
 * classes listed twice are warnings, as Postfix's trivial-rewrite says. */
static int
master_addr_check(const struct config *cfg, struct buf *errors)
{
	const char *file = config_path(cfg) != NULL ? config_path(cfg) : "(defaults)";
	struct addr_resolver *r;
	struct buf diag;

	buf_init(&diag, 64 * 1024);
	r = addr_resolver_new(cfg, NULL, &diag);
	if (r == NULL) {
		buf_append_printf(errors, "%s: recipient maps: %s", file, buf_cstr(&diag));
		buf_free(&diag);
		return -1;
	}
	buf_reset(&diag);
	if (addr_resolver_check(r, &diag) != 0 && buf_len(&diag) > 0)
		log_warning("%s: %s", file, buf_cstr(&diag));
	addr_resolver_free(r);
	buf_free(&diag);
	return 0;
}

struct config *
master_config_load(const char *path, struct buf *errors)
{
	struct config *cfg = config_load(path, errors);

	if (cfg == NULL)
		return NULL;
	if (retry_rules_check_file(config_str(cfg, P_RETRY_RULES), errors) < 0 ||
	    qmgr_config_check(cfg, errors) < 0 || smtp_agent_config_check(cfg, errors) < 0 ||
	    master_addr_check(cfg, errors) < 0 || smtpd_tls_config_check(cfg, errors) < 0 ||
	    smtpd_content_config_check(cfg, errors) < 0 ||
	    smtpd_restrict_config_check(cfg, errors) < 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* One FILE:LINE: message per line of text, to stderr or to the log. */
static void
master_report_lines(const char *text, bool to_stderr)
{
	const char *p, *nl;

	for (p = text; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (to_stderr)
			fprintf(stderr, "%.*s\n", (int)(nl - p), p);
		else
			log_error("%.*s", (int)(nl - p), p);
		if (*nl == '\0')
			break;
	}
}

static struct config *
master_load_config(const char *path, bool to_stderr)
{
	struct buf errors;
	struct config *cfg;

	buf_init(&errors, 1024 * 1024);
	cfg = master_config_load(path, &errors);
	if (cfg == NULL)
		master_report_lines(buf_cstr(&errors), to_stderr);
	buf_free(&errors);
	return cfg;
}

static unsigned
master_log_sinks(const struct master *m)
{
	unsigned sinks = 0;

	if (*config_str(m->cfg, P_LOG_FILE))
		sinks |= LOG_SINK_FILE;
	else if (!config_is_dev(m->cfg))
		sinks |= LOG_SINK_SYSLOG;
	if (m->opt->foreground || config_is_dev(m->cfg))
		sinks |= LOG_SINK_STDERR;
	return sinks;
}

static void
master_open_log(struct master *m)
{
	unsigned sinks = master_log_sinks(m);

	log_set_hostname(config_str(m->cfg, P_MYHOSTNAME));
	if (log_open("master", sinks, config_str(m->cfg, P_LOG_FILE)) < 0) {
		fprintf(stderr, "ternd: cannot open log_file %s: %s\n",
		    config_str(m->cfg, P_LOG_FILE), strerror(errno));
		exit(EX_CANTCREAT);
	}
	log_set_debug(m->opt->debug);
}

/* ---- spool lock: one master per spool ---- */

static void
master_lock_spool(struct master *m)
{
	char path[4096], pid[32], conf[PATH_MAX], text[PATH_MAX + 64];
	int n;

	snprintf(path, sizeof(path), "%s/master.lock", config_str(m->cfg, P_QUEUE_DIRECTORY));
	/* Also the master's pid file (ternctl reload/stop, sendmail -bi):
	 * the lock says it is current. 0600: whoever may open it could hold
	 * its lock and keep ternd from starting (doc/ternctl.md). */
	m->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (m->lock_fd < 0)
		fatal("open %s: %s", path, strerror(errno));
	if (fchmod(m->lock_fd, 0600) < 0)
		log_warning("chmod %s: %s", path, strerror(errno));
	if (flock(m->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		n = (int)read(m->lock_fd, pid, sizeof(pid) - 1);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';	/* the config= line after it */
		fatal("the mail system is already running on %s (pid %s)",
		    config_str(m->cfg, P_QUEUE_DIRECTORY), n > 0 ? pid : "unknown");
	}
	/* The pid, then the file the master reads on SIGHUP, absolute (empty:
	 * the development defaults), so that ternctl reload checks that file
	 * and not its own (tools/masterpid.h). */
	conf[0] = '\0';
	if (m->opt->config_path != NULL && realpath(m->opt->config_path, conf) == NULL)
		snprintf(conf, sizeof(conf), "%s", m->opt->config_path);
	n = snprintf(text, sizeof(text), "%ld\nconfig=%s\n", (long)getpid(), conf);
	if (n < 0 || (size_t)n >= sizeof(text) || ftruncate(m->lock_fd, 0) < 0 ||
	    pwrite(m->lock_fd, text, (size_t)n, 0) != n)
		log_warning("cannot write %s: %s", path, strerror(errno));
}

/* Create the parents of the spool (mode 0755, like mkdir -p), so that the
 * development default ./var/spool works in a fresh checkout. */
static void
master_make_parents(const char *path)
{
	char buf[4096];
	size_t i, len = strlen(path);

	if (len >= sizeof(buf))
		fatal("queue_directory too long: %s", path);
	memcpy(buf, path, len + 1);
	for (i = 1; i < len; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			fatal("mkdir %s: %s", buf, strerror(errno));
		buf[i] = '/';
	}
}

static void
master_raise_nofile(void)
{
	struct rlimit rl;

	struct rlimit want;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	/* Root may raise the hard limit (CAP_SYS_RESOURCE); without that,
	 * the soft limit still goes up to the hard one. */
	want = rl;
	if (want.rlim_max < MASTER_NOFILE_WANT)
		want.rlim_max = MASTER_NOFILE_WANT;
	want.rlim_cur = want.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warning("cannot raise the descriptor limit: %s", strerror(errno));
	else if (rl.rlim_max < MASTER_NOFILE_LOW)
		log_warning("descriptor limit is %llu; 10,000 sessions need more",
		    (unsigned long long)rl.rlim_max);
}

/* ---- start-up recovery, in a child running as mail_owner ---- */

static void
master_recover_spool(struct master *m)
{
	struct spool_recover_stats st;
	struct spool_options opt;
	struct spool *sp;
	char err[256];
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		log_open_fd("master", master_log_sinks(m), log_file_fd());
		master_privs_drop(&m->run_as);
		memset(&opt, 0, sizeof(opt));
		opt.map_size = config_int(m->cfg, P_SPOOL_MAP_SIZE);
		sp = spool_open(config_str(m->cfg, P_QUEUE_DIRECTORY), &opt, err, sizeof(err));
		if (sp == NULL) {
			log_error("cannot open the spool: %s", err);
			_exit(EX_IOERR);
		}
		if (spool_recover(sp, &st, err, sizeof(err)) != SPOOL_OK) {
			log_error("spool recovery failed: %s", err);
			_exit(EX_IOERR);
		}
		spool_close(sp);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fatal("spool recovery failed; see the log");
}

/* ---- children ---- */

static void
master_child_died(struct master *m, struct master_child *c, int status)
{
	int64_t lived = evloop_now(m->loop) - c->started;
	long pid = (long)c->pid;

	evloop_io_del(m->loop, &c->control_io);
	close(c->control_fd);
	c->control_fd = -1;
	buf_reset(&c->control_in);
	c->pid = 0;
	if (m->stopping) {
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			log_warning("%s exited with status %d while stopping", c->role->name,
			    WEXITSTATUS(status));
		return;
	}
	if (WIFSIGNALED(status))
		log_warning("process %s pid %ld killed by signal %d", c->role->name, pid,
		    WTERMSIG(status));
	else
		log_warning("process %s pid %ld exit status %d", c->role->name, pid,
		    WEXITSTATUS(status));
	/* A role that dies young is restarted more slowly each time. */
	if (lived >= MASTER_CHILD_STABLE_MS || c->backoff_ms == 0)
		c->backoff_ms = MASTER_BACKOFF_FIRST_MS;
	else if (c->backoff_ms < MASTER_BACKOFF_MAX_MS)
		c->backoff_ms *= 2;
	log_warning("restarting %s in %lld ms", c->role->name, (long long)c->backoff_ms);
	evloop_timer_start(m->loop, &c->restart_timer, c->backoff_ms);
}

static void
master_child_restart(struct ev_timer *t)
{
	struct master_child *c = t->arg;

	if (!c->m->stopping && c->pid == 0)
		master_child_spawn(c->m, c);
}

static void
master_send(struct master_child *c, enum frame_type type, bool with_u64, uint64_t v)
{
	struct buf out;
	size_t start;

	if (c->pid == 0 || c->control_fd < 0)
		return;
	buf_init(&out, 256);
	start = frame_begin(&out, type);
	if (with_u64)
		frame_put_u64(&out, v);
	(void)frame_end(&out, start);
	/* A child that died or stopped reading is SIGCHLD's business. */
	if (frame_write_all(c->control_fd, &out, MASTER_CONTROL_WRITE_MS) < 0)
		log_warning("cannot send to %s: %s", c->role->name, strerror(errno));
	buf_free(&out);
}

/* Read cfg's TLS certificates and keys; NULL (logged) when they do not
 * load (they did a moment ago, in the configuration check). */
static struct smtpd_tls_keys *
master_tls_keys_load(const struct config *cfg)
{
	struct smtpd_tls_keys *keys;
	struct buf errors;

	buf_init(&errors, 64 * 1024);
	if (smtpd_tls_keys_load(cfg, &keys, &errors) < 0) {
		master_report_lines(buf_cstr(&errors), false);
		keys = NULL;
	}
	buf_free(&errors);
	return keys;
}

/* Hand the TLS key material to a child that takes listeners. */
static void
master_send_tls_keys(struct master *m, struct master_child *c)
{
	struct buf out;

	if (c->pid == 0 || c->control_fd < 0 || !c->role->takes_listeners)
		return;
	buf_init(&out, SMTPD_TLS_KEYS_FRAME_MAX);
	smtpd_tls_keys_encode(m->tls_keys, &out);
	if (frame_write_all(c->control_fd, &out, MASTER_CONTROL_WRITE_MS) < 0)
		log_warning("cannot send the TLS keys to %s: %s", c->role->name, strerror(errno));
	/* The private keys were in this buffer. */
	if (out.data != NULL)
		OPENSSL_cleanse(out.data, out.cap);
	buf_free(&out);
}

/* Hand the listening sockets to a child (after a reload changed them). */
static void
master_send_listeners(struct master *m, struct master_child *c)
{
	struct buf out;
	size_t start, i;

	if (c->pid == 0 || c->control_fd < 0)
		return;
	buf_init(&out, MASTER_CONTROL_MAX);
	start = frame_begin(&out, FRAME_MASTER_LISTENERS);
	frame_put_u64(&out, m->listeners.n);
	for (i = 0; i < m->listeners.n; i++)
		frame_put_str(&out, config_listener_name(m->listeners.listener[i]));
	(void)frame_end(&out, start);
	if (frame_write_all_fds(c->control_fd, &out, m->listeners.fd, m->listeners.n,
	    MASTER_CONTROL_WRITE_MS) < 0)
		log_warning("cannot send listeners to %s: %s", c->role->name, strerror(errno));
	buf_free(&out);
}

static void
master_child_frame(struct master_child *c, struct frame_reader *r)
{
	const char *text;
	uint64_t pid;
	size_t len;

	switch (r->type) {
	case FRAME_CHILD_READY:
		if (frame_get_u64(r, &pid) < 0 || frame_get_end(r) < 0)
			goto bad;
		log_debug("%s pid %llu ready", c->role->name, (unsigned long long)pid);
		return;
	case FRAME_CHILD_RELOADED:
		if (frame_get_bytes(r, &text, &len) < 0 || frame_get_end(r) < 0)
			goto bad;
		if (len > 0)
			log_warning("%s did not reload: %.*s", c->role->name, (int)len, text);
		return;
	case FRAME_CHILD_DRAINED:
		if (frame_get_end(r) < 0)
			goto bad;
		return;
	default:
		break;
	}
bad:
	/* A sibling's malformed frame is its bug: stop it; it is restarted. */
	log_error("malformed frame (type %d) from %s; killing it", (int)r->type, c->role->name);
	kill(c->pid, SIGKILL);
}

static void
master_child_read(struct ev_io *io, unsigned revents)
{
	struct master_child *c = io->arg;
	struct frame_reader r;
	size_t flen;
	ssize_t n;

	(void)revents;
	n = buf_read_fd(&c->control_in, c->control_fd, 4096);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		/* The child is exiting; SIGCHLD will tell how. */
		evloop_io_del(c->m->loop, &c->control_io);
		return;
	}
	for (;;) {
		switch (frame_parse(buf_data(&c->control_in), buf_len(&c->control_in), &r, &flen)) {
		case FRAME_NEED_MORE:
			return;
		case FRAME_BAD:
			log_error("malformed frame header from %s; killing it", c->role->name);
			kill(c->pid, SIGKILL);
			evloop_io_del(c->m->loop, &c->control_io);
			return;
		case FRAME_OK:
			master_child_frame(c, &r);
			buf_consume(&c->control_in, flen);
			break;
		}
	}
}

/* In the forked child: put descriptors in place, drop privileges, exec. */
static void __attribute__((noreturn))
master_child_exec(struct master *m, struct master_child *c, int control_fd)
{
	char env_listen[1024], arg_role[64];
	const char *argv[8];
	int argc = 0, fd, logfd = log_file_fd();
	size_t i, o = 0;

	/* Move every descriptor out of the way first: dup2 onto a number a
	 * source still uses would close it. */
	control_fd = fcntl(control_fd, F_DUPFD, 100);
	if (logfd >= 0)
		logfd = fcntl(logfd, F_DUPFD, 100);
	if (control_fd < 0 || dup2(control_fd, MASTER_FD_CONTROL) < 0)
		_exit(EX_OSERR);
	if (logfd >= 0 && dup2(logfd, MASTER_FD_LOG) < 0)
		_exit(EX_OSERR);
	env_listen[0] = '\0';
	if (c->role->takes_listeners) {
		int high[MASTER_LISTENERS_MAX];

		for (i = 0; i < m->listeners.n; i++)
			high[i] = fcntl(m->listeners.fd[i], F_DUPFD, 100);
		for (i = 0; i < m->listeners.n; i++) {
			fd = MASTER_FD_LISTEN_FIRST + (int)i;
			if (high[i] < 0 || dup2(high[i], fd) < 0)
				_exit(EX_OSERR);
			o += (size_t)snprintf(env_listen + o, sizeof(env_listen) - o, "%s%d:%s",
			    i ? "," : "", fd, config_listener_name(m->listeners.listener[i]));
		}
	}
	setenv("TERN_LISTEN_FDS", env_listen, 1);
	if (logfd >= 0)
		setenv("TERN_LOG_FD", "4", 1);
	else
		unsetenv("TERN_LOG_FD");
	/* Every role but the local agent drops to mail_owner here. */
	if (!c->role->keeps_root)
		master_privs_drop(&m->run_as);

	snprintf(arg_role, sizeof(arg_role), "--role=%s", c->role->name);
	argv[argc++] = "ternd";
	argv[argc++] = arg_role;
	if (m->opt->config_path != NULL) {
		argv[argc++] = "-c";
		argv[argc++] = m->opt->config_path;
	}
	if (m->opt->foreground)
		argv[argc++] = "-f";
	if (m->opt->debug)
		argv[argc++] = "-v";
	argv[argc] = NULL;
	execv(m->opt->self_path, (char *const *)argv);
	log_error("exec %s: %s", m->opt->self_path, strerror(errno));
	_exit(EX_OSERR);
}

static void
master_child_spawn(struct master *m, struct master_child *c)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		fatal("socketpair: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid == 0)
		master_child_exec(m, c, sv[1]);
	close(sv[1]);
	c->pid = pid;
	c->control_fd = sv[0];
	c->started = evloop_now(m->loop);
	if (evloop_set_nonblock(c->control_fd) < 0 ||
	    evloop_io_add(m->loop, &c->control_io, c->control_fd, EV_READ, master_child_read, c) < 0)
		fatal("control socket: %s", strerror(errno));
	/* The first frame the listener role gets: it serves only after it. */
	master_send_tls_keys(m, c);
}

/* ---- signals ---- */

static void
master_reap(struct master *m)
{
	int status;
	pid_t pid;
	size_t i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < m->nchildren; i++)
			if (m->children[i].pid == pid)
				master_child_died(m, &m->children[i], status);
	}
	if (m->stopping) {
		for (i = 0; i < m->nchildren; i++)
			if (m->children[i].pid != 0)
				return;
		evloop_break(m->loop);
	}
}

static void
master_reload(struct master *m)
{
	struct smtpd_tls_keys *keys;
	struct config *cfg;
	char err[512];
	bool rebind;
	size_t i;

	log_info("reload -- configuration %s",
	    m->opt->config_path ? m->opt->config_path : "(development defaults)");
	cfg = master_load_config(m->opt->config_path, false);
	if (cfg == NULL) {
		log_error("reload: configuration has errors; keeping the one in force");
		return;
	}
	/* Certificates are read again: a renewed one serves new sessions. */
	keys = master_tls_keys_load(cfg);
	if (keys == NULL) {
		log_error("reload: TLS keys do not load; keeping the configuration in force");
		config_free(cfg);
		return;
	}
	rebind = !master_listeners_same(&m->listeners, cfg);
	/* The master still has root: it binds the new addresses itself and
	 * hands the sockets over; sessions on the old ones go on. */
	if (rebind && master_listeners_rebind(&m->listeners, cfg, err, sizeof(err)) < 0) {
		log_error("reload: %s; keeping the configuration in force", err);
		smtpd_tls_keys_free(keys);
		config_free(cfg);
		return;
	}
	config_free(m->cfg);
	m->cfg = cfg;
	smtpd_tls_keys_free(m->tls_keys);
	m->tls_keys = keys;
	for (i = 0; i < m->nchildren; i++) {
		master_send_tls_keys(m, &m->children[i]);
		master_send(&m->children[i], FRAME_MASTER_RELOAD, false, 0);
		if (rebind && m->children[i].role->takes_listeners)
			master_send_listeners(m, &m->children[i]);
	}
}

static void
master_kill_all(struct ev_timer *t)
{
	struct master *m = t->arg;
	size_t i;

	for (i = 0; i < m->nchildren; i++)
		if (m->children[i].pid != 0) {
			log_warning("%s did not stop in time; killing it", m->children[i].role->name);
			kill(m->children[i].pid, SIGKILL);
		}
}

static void
master_stop(struct master *m, int signo)
{
	int64_t drain = config_time(m->cfg, P_SMTPD_DRAIN_TIMEOUT);
	size_t i;

	if (m->stopping)
		return;
	m->stopping = true;
	log_info("terminating on signal %d", signo);
	master_listeners_close(&m->listeners);
	for (i = 0; i < m->nchildren; i++) {
		evloop_timer_stop(m->loop, &m->children[i].restart_timer);
		master_send(&m->children[i], FRAME_MASTER_DRAIN, true, (uint64_t)drain);
	}
	evloop_timer_init(&m->kill_timer, master_kill_all, m);
	evloop_timer_start(m->loop, &m->kill_timer, (drain + MASTER_KILL_GRACE_S) * 1000);
	master_reap(m);
}

static void
master_signal(int signo, void *arg)
{
	struct master *m = arg;

	switch (signo) {
	case SIGCHLD:
		master_reap(m);
		break;
	case SIGHUP:
		if (!m->stopping)
			master_reload(m);
		break;
	case SIGTERM:
	case SIGINT:
		master_stop(m, signo);
		break;
	}
}

/* ---- main ---- */

static void
master_start_children(struct master *m)
{
	size_t i;

	m->nchildren = master_roles_count;
	m->children = calloc(m->nchildren, sizeof(*m->children));
	if (m->children == NULL)
		fatal("out of memory");
	for (i = 0; i < m->nchildren; i++) {
		struct master_child *c = &m->children[i];

		c->m = m;
		c->role = &master_roles[i];
		c->control_fd = -1;
		buf_init(&c->control_in, MASTER_CONTROL_MAX);
		evloop_timer_init(&c->restart_timer, master_child_restart, c);
		master_child_spawn(m, c);
	}
}

int
master_main(const struct master_options *opt)
{
	struct master m;
	char err[512];
	size_t i;

	memset(&m, 0, sizeof(m));
	m.opt = opt;
	m.cfg = master_load_config(opt->config_path, true);
	if (m.cfg == NULL)
		return EX_CONFIG;
	master_open_log(&m);
	if (master_privs_resolve(m.cfg, &m.run_as, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return EX_CONFIG;
	}
	master_make_parents(config_str(m.cfg, P_QUEUE_DIRECTORY));
	if (spool_prepare(config_str(m.cfg, P_QUEUE_DIRECTORY), m.run_as.uid, m.run_as.gid,
	    err, sizeof(err)) < 0)
		fatal("cannot prepare the spool: %s", err);
	master_lock_spool(&m);
	master_raise_nofile();
	m.tls_keys = master_tls_keys_load(m.cfg);
	if (m.tls_keys == NULL)
		return EX_CONFIG;
	if (master_listeners_open(&m.listeners, m.cfg, err, sizeof(err)) < 0)
		fatal("%s", err);
	master_recover_spool(&m);

	m.loop = evloop_new();
	if (m.loop == NULL)
		fatal("evloop: %s", strerror(errno));
	if (evloop_signal_add(m.loop, SIGCHLD, master_signal, &m) < 0 ||
	    evloop_signal_add(m.loop, SIGHUP, master_signal, &m) < 0 ||
	    evloop_signal_add(m.loop, SIGTERM, master_signal, &m) < 0 ||
	    evloop_signal_add(m.loop, SIGINT, master_signal, &m) < 0)
		fatal("signals: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	log_info("daemon started -- version %s, configuration %s", TERN_VERSION,
	    opt->config_path ? opt->config_path : "(development defaults)");
	master_start_children(&m);

	evloop_run(m.loop);

	log_info("stopped");
	for (i = 0; i < m.nchildren; i++)
		buf_free(&m.children[i].control_in);
	free(m.children);
	evloop_free(m.loop);
	smtpd_tls_keys_free(m.tls_keys);
	config_free(m.cfg);
	close(m.lock_fd);
	return 0;
}
