/*
 * local_agent: the local delivery agent role (local_agent.h).
 *
 *   local agent (root in production; one event loop)
 *     ├─ the link to qmgr (queue/agent_link.h): DELIVER in, RESULT and
 *     │  DONE out, the per-recipient log lines
 *     └─ one worker per job (fork, no exec): the job's recipients one
 *        after the other: user lookup, mailbox choice, then
 *          └─ local_run_as(): the delivery as the recipient
 *             (delivery/local_command.h, local_mailbox.h)
 *
 * Everything that may block (the password database, the file system, a
 * locked mbox) happens in a worker; the loop only reads pipes. A worker
 * writes one fixed-size record per recipient (one write() under PIPE_BUF,
 * so never torn); the agent turns each into a RESULT, and sends DONE once
 * the pipe is at its end and the worker has been reaped. A worker that
 * dies early leaves its remaining recipients unreported and qmgr defers
 * them at DONE: at least once, never zero times.
 *
 * qmgr going away, or the drain running out of time, kills the workers
 * (SIGKILL). A delivery already running as the recipient is a process of
 * its own and runs to its end (a Maildir file is complete or absent, an
 * mbox is truncated back on failure), so a recipient may be delivered and
 * then tried again: a duplicate, never a loss. An orphaned worker stops
 * before its next recipient (its parent changed, or its pipe is gone).
 *
 * Ownership: the agent owns its jobs; a job owns its agent_job, its pipe
 * and its worker. Errors: malformed frames from qmgr or the master, and a
 * record that names no open recipient, are bugs (panic); a failure to
 * start a worker is our trouble (every recipient TEMPFAIL 4.3.0). Out of
 * memory is fatal().
 */
#include "delivery/local_agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/evloop.h"
#include "common/log.h"
#include "common/rolectl.h"
#include "config/addr_resolve.h"
#include "config/config_reload.h"
#include "delivery/local_command.h"
#include "delivery/local_mailbox.h"
#include "delivery/local_rcpt.h"
#include "queue/agent_link.h"

/* getpwnam_r() buffer: first size, and the most we grow it to on ERANGE. */
#define LOCAL_AGENT_PW_BUF_FIRST 1024
#define LOCAL_AGENT_PW_BUF_MAX (1024 * 1024)

/* What a worker reports for one recipient. */
struct local_record {
	uint32_t k;			/* index into the job's rcpts */
	int64_t start_us, end_us;	/* the recipient's delivery, wall clock */
	struct local_result res;
};
_Static_assert(sizeof(struct local_record) <= PIPE_BUF, "a record is written atomically");

struct local_agent;

struct local_job {
	struct local_agent *a;
	struct local_job *prev, *next;
	struct agent_job j;
	bool *done;			/* per recipient: its RESULT was sent */
	size_t nleft;			/* recipients without a result */
	int64_t received_us;		/* wall clock when the job came */
	uint64_t seq0;			/* maildir_seq of recipient 0 */
	pid_t pid;			/* the worker; 0 when reaped or never started */
	int wstatus;			/* its wait status once reaped */
	int rfd;			/* read end of its pipe; -1 at end of file */
	struct ev_io io;
	unsigned char rec[sizeof(struct local_record)];	/* a record coming in */
	size_t rec_len;
	bool finished;			/* DONE sent: freed by the reap timer */
};

struct local_agent {
	const char *cfg_path;
	struct config *cfg;		/* replaced on reload; workers keep theirs */
	struct evloop *loop;
	struct agent_link *link;
	int control_fd;
	struct ev_io control_io;
	struct buf control_in;

	/* Root outside development mode: each delivery becomes its
	 * recipient. Otherwise every delivery runs as the user ternd runs
	 * as (doc/local.md, "Development mode"). */
	bool switch_user;
	uint32_t slots;
	uint64_t maildir_seq;		/* this process's Maildir counter */

	struct local_job *jobs;		/* doubly linked */
	size_t nactive;			/* jobs not finished */
	struct ev_timer reap;		/* frees finished jobs outside callbacks */
	struct ev_timer drain;		/* the drain's bound */
	bool draining;
	bool stopping;
};

/* ==== the worker: a forked child, never back on the loop ==== */

struct local_worker_call {
	int wfd;			/* the worker's pipe, closed as the recipient */
	int msgfd;
	const struct local_delivery *d;
	const char *path;		/* a mailbox, a file, or NULL for command */
	const char *command;		/* an alias's command, or NULL */
	bool maildir;
};

/* Runs as the recipient (local_run_as()). */
static enum local_status
local_worker_call_fn(void *arg, struct local_result *out)
{
	const struct local_worker_call *c = arg;

	/* Nothing of the agent's goes on as the recipient but the message. */
	close(c->wfd);
	if (c->command != NULL)
		return local_command_deliver(c->msgfd, c->d, c->command, NULL, out);
	if (c->maildir)
		return local_maildir_deliver(c->msgfd, c->d, c->path, out);
	return local_mbox_deliver(c->msgfd, c->d, c->path, out);
}

/* getpwnam_r() of name, or getpwuid_r() of uid when name is NULL: 1
 * found (in *buf, which the caller frees), 0 no such user, -1 the
 * database cannot be read (errno). */
static int
local_worker_getpw_any(const char *name, uid_t uid, struct passwd *pw, char **buf)
{
	struct passwd *res = NULL;
	size_t size = LOCAL_AGENT_PW_BUF_FIRST;
	int rc;

	for (;;) {
		if ((*buf = realloc(*buf, size)) == NULL)
			fatal("out of memory");
		rc = name != NULL ? getpwnam_r(name, pw, *buf, size, &res)
		                  : getpwuid_r(uid, pw, *buf, size, &res);
		if (rc != ERANGE || size >= LOCAL_AGENT_PW_BUF_MAX)
			break;
		size *= 2;
	}
	if (rc == 0 || rc == ENOENT)
		return res != NULL;
	errno = rc;
	return -1;
}

static int
local_worker_getpw(const char *name, struct passwd *pw, char **buf)
{
	return local_worker_getpw_any(name, 0, pw, buf);
}

/* Who a delivery runs as. */
struct local_worker_rights {
	uid_t uid;
	gid_t gid;
	const char *user;	/* for the supplementary groups; NULL: gid only */
	unsigned flags;		/* LOCAL_RUN_* */
};

/*
 * The recipient's rights (Postfix's local(8)): uid 0 and gid 0 become
 * default_privs'; a mailbox in a group-writable mail spool directory is
 * written with that directory's group. Without switch_user: the user we
 * run as. 0, or -1 with res set.
 */
static int
local_worker_rights(const struct local_agent *a, const struct passwd *pw, bool in_spool,
                    struct local_worker_rights *rt, struct passwd *dp, char **dpbuf,
                    struct local_result *res)
{
	const char *privs = config_str(a->cfg, P_DEFAULT_PRIVS);
	struct stat st;
	int found;

	if (!a->switch_user) {
		rt->uid = geteuid();
		rt->gid = getegid();
		rt->user = NULL;
		rt->flags = rt->uid == 0 || rt->gid == 0 ? LOCAL_RUN_ALLOW_ROOT : 0;
		return 0;
	}
	rt->uid = pw->pw_uid;
	rt->gid = pw->pw_gid;
	rt->user = pw->pw_name;
	rt->flags = 0;
	if (rt->uid == 0 || rt->gid == 0) {
		found = local_worker_getpw(privs, dp, dpbuf);
		if (found <= 0 || dp->pw_uid == 0 || dp->pw_gid == 0) {
			local_result_set(res, LOCAL_TEMPFAIL, NULL, "4.3.5",
			                 "mail system configuration error: default_privs \"%s\": %s",
			                 privs, found < 0 ? strerror(errno)
			                        : found == 0 ? "no such user" : "must not be root");
			return -1;
		}
		if (rt->uid == 0) {
			rt->uid = dp->pw_uid;
			rt->user = dp->pw_name;
		}
		rt->gid = dp->pw_gid;
	}
	if (in_spool && stat(config_str(a->cfg, P_MAIL_SPOOL_DIRECTORY), &st) == 0)
		rt->gid = local_rcpt_spool_gid(st.st_mode, st.st_gid, rt->gid);
	return 0;
}

/* The delivery of recipient k of job, parsed as r, to account user
 * (whose passwd entry is pw). */
static void
local_worker_delivery(const struct local_job *job, size_t k, const struct local_rcpt *r,
                      const char *user, const struct passwd *pw, struct local_delivery *d)
{
	const struct agent_job_rcpt *rc = &job->j.rcpts[k];

	memset(d, 0, sizeof(*d));
	d->sender = job->j.sender;
	d->recipient = rc->addr;
	d->original_recipient = local_rcpt_orcpt_addr(rc->orcpt);
	d->arrival_us = job->j.arrival;
	d->user = user;
	d->home = pw->pw_dir;
	d->shell = pw->pw_shell;
	d->local = r->local[0] ? r->local : NULL;
	d->extension = r->extension[0] ? r->extension : NULL;
	d->domain = r->domain[0] ? r->domain : NULL;
	d->maildir_seq = job->seq0 + k;
}

/* Deliver recipient k of job into res. */
static void
local_worker_rcpt(const struct local_agent *a, const struct local_job *job, size_t k, int msgfd,
                  int wfd, struct local_result *res)
{
	const struct agent_job_rcpt *rc = &job->j.rcpts[k];
	struct local_worker_rights rt;
	struct local_delivery d;
	struct local_worker_call call;
	struct passwd pw, dp;
	struct local_rcpt r;
	char *pwbuf = NULL, *dpbuf = NULL, path[PATH_MAX];
	bool maildir, in_spool;
	int found = 0;

	if (local_rcpt_parse(rc->addr, config_str(a->cfg, P_RECIPIENT_DELIMITER),
	                     config_str(a->cfg, P_DOUBLE_BOUNCE_SENDER), &r) == 0 &&
	    local_rcpt_user_safe(r.user))
		found = local_worker_getpw(r.user, &pw, &pwbuf);
	if (found < 0) {
		local_result_set(res, LOCAL_TEMPFAIL, NULL, "4.0.0", "user lookup error: %s",
		                 strerror(errno));
		goto out;
	}
	if (found == 0) {
		/* Postfix's local(8) wording. */
		local_result_set(res, LOCAL_PERMFAIL, NULL, "5.1.1", "unknown user: \"%s\"", r.user);
		goto out;
	}
	if (local_rcpt_mailbox(config_str(a->cfg, P_HOME_MAILBOX), pw.pw_dir,
	                       config_str(a->cfg, P_MAIL_SPOOL_DIRECTORY), r.user, path,
	                       sizeof(path), &maildir, &in_spool) < 0) {
		local_result_set(res, LOCAL_TEMPFAIL, NULL, "4.3.5",
		                 "mail system configuration error: no mailbox path for user %s",
		                 r.user);
		goto out;
	}
	if (local_worker_rights(a, &pw, in_spool, &rt, &dp, &dpbuf, res) < 0)
		goto out;
	local_worker_delivery(job, k, &r, r.user, &pw, &d);
	memset(&call, 0, sizeof(call));
	call.wfd = wfd;
	call.msgfd = msgfd;
	call.d = &d;
	call.path = path;
	call.maildir = maildir;
	(void)local_run_as(rt.uid, rt.gid, rt.user, rt.flags, local_worker_call_fn, &call, res);
out:
	free(pwbuf);
	free(dpbuf);
}

/*
 * Find recipient rc's alias target (rc->target, "|command" or "/file")
 * in the worker's own expansion of rc->addr, the alias that held it when
 * smtpd took the message. The spool says what to look for, never what to
 * run or as whom: a target the aliases no longer give bounces, and the
 * rights are the ones the expansion finds now (the alias database's or
 * the :include: file's owner, default_privs for root). The resolver is
 * opened on first use and kept for the worker's life (one job). NULL
 * with res set when there is nothing to run.
 */
static const struct addr_target *
local_worker_find_target(const struct local_agent *a, const struct agent_job_rcpt *rc,
                         struct addr_resolver **resolver, struct addr_expansion *x,
                         struct local_result *res)
{
	bool command = rc->target[0] == '|';
	const struct addr_target *t;
	char reply[ADDR_REPLY_MAX];
	enum addr_verdict v;

	if (*resolver == NULL) {
		struct buf diag;

		buf_init(&diag, 4096);
		*resolver = addr_resolver_new(a->cfg, NULL, &diag);
		if (*resolver == NULL)
			local_result_set(res, LOCAL_TEMPFAIL, NULL, "4.3.5",
			                 "mail system configuration error: %s", buf_cstr(&diag));
		buf_free(&diag);
		if (*resolver == NULL)
			return NULL;
	}
	v = addr_resolve(*resolver, rc->addr, x, reply, sizeof(reply));
	if (v == ADDR_TEMPFAIL) {
		local_result_set(res, LOCAL_TEMPFAIL, NULL, "4.3.0", "alias lookup failed: %s",
		                 reply);
		return NULL;
	}
	t = v == ADDR_OK ? addr_expansion_find(x, command ? ADDR_TARGET_COMMAND : ADDR_TARGET_FILE,
	                                       command ? rc->target + 1 : rc->target)
	                 : NULL;
	if (t == NULL)
		local_result_set(res, LOCAL_PERMFAIL, NULL, "5.3.0",
		                 "alias %s no longer delivers to %s \"%s\"%s%s", rc->addr,
		                 command ? "command" : "file", command ? rc->target + 1 : rc->target,
		                 v != ADDR_OK ? ": " : "", v != ADDR_OK ? reply : "");
	return t;
}

/* Deliver recipient k of job, an alias's |command or /file target. */
static void
local_worker_target(const struct local_agent *a, const struct local_job *job, size_t k,
                    int msgfd, int wfd, struct addr_resolver **resolver,
                    struct local_result *res)
{
	const struct agent_job_rcpt *rc = &job->j.rcpts[k];
	const struct addr_target *t;
	struct addr_expansion x;
	struct local_worker_call call;
	struct local_delivery d;
	struct local_rcpt r;
	struct passwd pw;
	char *pwbuf = NULL;
	uid_t uid;
	gid_t gid;
	size_t n;
	int found;

	addr_expansion_init(&x);
	if ((t = local_worker_find_target(a, rc, resolver, &x, res)) == NULL)
		goto out;
	uid = a->switch_user ? t->uid : geteuid();
	gid = a->switch_user ? t->gid : getegid();
	if ((found = local_worker_getpw_any(NULL, uid, &pw, &pwbuf)) < 0) {
		local_result_set(res, LOCAL_TEMPFAIL, NULL, "4.0.0", "user lookup error: %s",
		                 strerror(errno));
		goto out;
	}
	if (found == 0) {
		local_result_set(res, LOCAL_TEMPFAIL, NULL, "4.3.5",
		                 "mail system configuration error: no user with uid %ld", (long)uid);
		goto out;
	}
	memset(&r, 0, sizeof(r));
	(void)local_rcpt_parse(rc->addr, config_str(a->cfg, P_RECIPIENT_DELIMITER),
	                       config_str(a->cfg, P_DOUBLE_BOUNCE_SENDER), &r);
	local_worker_delivery(job, k, &r, pw.pw_name, &pw, &d);
	d.mbox_flags = LOCAL_MBOX_FILE;
	memset(&call, 0, sizeof(call));
	call.wfd = wfd;
	call.msgfd = msgfd;
	call.d = &d;
	if (t->kind == ADDR_TARGET_COMMAND) {
		call.command = t->value;
	} else {
		/* Postfix's local(8): a file name ending in '/' is a Maildir. */
		n = strlen(t->value);
		call.path = t->value;
		call.maildir = n > 0 && t->value[n - 1] == '/';
	}
	(void)local_run_as(uid, gid, a->switch_user ? pw.pw_name : NULL,
	                   a->switch_user ? 0 : (uid == 0 || gid == 0 ? LOCAL_RUN_ALLOW_ROOT : 0),
	                   local_worker_call_fn, &call, res);
out:
	addr_expansion_free(&x);
	free(pwbuf);
}

/* Close every descriptor above 2 but keep1 and keep2 (-1: none). */
static void
local_worker_close_fds(int keep1, int keep2)
{
	int keep[2] = { keep1 < keep2 ? keep1 : keep2, keep1 < keep2 ? keep2 : keep1 };
	unsigned lo = 3;

	for (int i = 0; i < 2; i++) {
		if (keep[i] < (int)lo)
			continue;
		if ((unsigned)keep[i] > lo)
			(void)close_range(lo, (unsigned)keep[i] - 1, 0);
		lo = (unsigned)keep[i] + 1;
	}
	(void)close_range(lo, ~0u, 0);
}

/*
 * The worker's start: signals and descriptors. A delivery runs to its end:
 * SIGINT from a terminal or a stray SIGTERM must not cut an mbox append
 * (the agent stops a worker with SIGKILL, which the delivery process in
 * flight does not get). The loop's signals are unblocked for the
 * deliveries' own children.
 */
static void
local_worker_setup(int wfd)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	(void)sigaction(SIGPIPE, &sa, NULL);	/* a dead agent is EPIPE */
	sa.sa_handler = SIG_DFL;
	(void)sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	/* The loop's epoll and signal descriptors, the qmgr and master
	 * sockets: not for the worker. syslog's socket is closed through
	 * closelog() first, so that it is never written after its number
	 * was reused. */
	closelog();
	local_worker_close_fds(wfd, log_file_fd());
}

static void __attribute__((noreturn))
local_worker_run(const struct local_agent *a, const struct local_job *job, int wfd)
{
	pid_t agent = getppid();
	struct addr_resolver *resolver = NULL;	/* for alias targets, on first use */
	struct local_record rec;
	char path[PATH_MAX];
	int msgfd, open_errno = 0;

	local_worker_setup(wfd);
	/* The queue id was checked by agent_job_decode(): 14 hex digits. */
	snprintf(path, sizeof(path), "%s/msg/%s", config_str(a->cfg, P_QUEUE_DIRECTORY),
	         job->j.queue_id);
	msgfd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (msgfd < 0)
		open_errno = errno;
	for (size_t k = 0; k < job->j.nrcpt; k++) {
		/* An orphan stops: its results could reach no one, and qmgr
		 * gives the recipients to the next agent. */
		if (getppid() != agent)
			break;
		memset(&rec, 0, sizeof(rec));
		rec.k = (uint32_t)k;
		rec.start_us = agent_link_now_us();
		if (msgfd < 0)
			local_result_set(&rec.res, LOCAL_TEMPFAIL, NULL, "4.3.0",
			                 "cannot read the queue file: %s", strerror(open_errno));
		else if (job->j.rcpts[k].target != NULL)
			local_worker_target(a, job, k, msgfd, wfd, &resolver, &rec.res);
		else
			local_worker_rcpt(a, job, k, msgfd, wfd, &rec.res);
		rec.end_us = agent_link_now_us();
		if (write(wfd, &rec, sizeof(rec)) != (ssize_t)sizeof(rec))
			break;
	}
	if (resolver != NULL)
		addr_resolver_free(resolver);
	_exit(0);
}

/* ==== jobs, on the agent's loop ==== */

static void local_stop(struct local_agent *a);

static void
local_job_free(struct local_job *job)
{
	if (job->rfd >= 0) {
		evloop_io_del(job->a->loop, &job->io);
		close(job->rfd);
	}
	/* Reaped by the SIGCHLD handler, or at the end of the role. */
	if (job->pid > 0)
		(void)kill(job->pid, SIGKILL);
	agent_job_free(&job->j);
	free(job->done);
	free(job);
}

static void
local_job_unlink(struct local_job *job)
{
	struct local_agent *a = job->a;

	if (job->prev != NULL)
		job->prev->next = job->next;
	else
		a->jobs = job->next;
	if (job->next != NULL)
		job->next->prev = job->prev;
	if (!job->finished)
		a->nactive--;
}

/* Kill every worker and free every job; returns how many were running. */
static size_t
local_drop_jobs(struct local_agent *a)
{
	size_t n = a->nactive;

	while (a->jobs != NULL) {
		struct local_job *job = a->jobs;

		local_job_unlink(job);
		local_job_free(job);
	}
	return n;
}

static void
local_reap(struct ev_timer *t)
{
	struct local_agent *a = t->arg;
	struct local_job *job, *next;

	for (job = a->jobs; job != NULL; job = next) {
		next = job->next;
		if (job->finished) {
			local_job_unlink(job);
			local_job_free(job);
		}
	}
	if (a->draining && a->nactive == 0)
		local_stop(a);
}

static void
local_reap_soon(struct local_agent *a)
{
	if (!evloop_timer_active(&a->reap))
		evloop_timer_start(a->loop, &a->reap, 0);
}

/* One recipient's outcome: RESULT and the log line. */
static void
local_job_report(struct local_job *job, size_t k, int64_t start_us, int64_t end_us,
                 const struct local_result *lr)
{
	struct agent_result r;

	memset(&r, 0, sizeof(r));
	r.status = lr->status == LOCAL_OK ? AGENT_DELIVERED
	         : lr->status == LOCAL_PERMFAIL ? AGENT_PERMFAIL : AGENT_TEMPFAIL;
	snprintf(r.err_class, sizeof(r.err_class), "%s", lr->err_class);
	snprintf(r.enh, sizeof(r.enh), "%s", lr->enh);
	snprintf(r.text, sizeof(r.text), "%s", lr->text);
	snprintf(r.relay, sizeof(r.relay), "local");
	r.relayed = AGENT_FINAL;
	/* Postfix's a/b/c/d: before the agent / (qmgr's) / before this
	 * recipient's delivery began (the worker's start, the recipients
	 * before it) / the delivery. */
	r.delays[0] = job->received_us - job->j.arrival;
	r.delays[1] = 0;
	r.delays[2] = start_us - job->received_us;
	r.delays[3] = end_us - start_us;
	job->done[k] = true;
	job->nleft--;
	agent_link_result(job->a->link, &job->j, k, &r);
}

/* DONE once the pipe is at its end and the worker reaped. */
static void
local_job_end_check(struct local_job *job)
{
	int st = job->wstatus;

	if (job->finished || job->rfd >= 0 || job->pid != 0)
		return;
	job->finished = true;
	job->a->nactive--;
	if (job->nleft > 0) {
		char how[64];

		if (WIFSIGNALED(st))
			snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(st));
		else
			snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(st));
		log_warning("%s: delivery process %s; %zu recipients left for qmgr to try again",
		            job->j.queue_id, how, job->nleft);
	}
	agent_link_done(job->a->link, &job->j);
	local_reap_soon(job->a);
}

static void
local_job_record(struct local_job *job)
{
	struct local_record rec;

	memcpy(&rec, job->rec, sizeof(rec));
	job->rec_len = 0;
	/* The worker is this role's own code: a bad record is a bug. */
	if (rec.k >= job->j.nrcpt || job->done[rec.k] ||
	    (rec.res.status != LOCAL_OK && rec.res.status != LOCAL_TEMPFAIL &&
	     rec.res.status != LOCAL_PERMFAIL))
		panic("local: %s: bad record from the delivery process (recipient %u of %zu)",
		      job->j.queue_id, rec.k, job->j.nrcpt);
	rec.res.err_class[sizeof(rec.res.err_class) - 1] = '\0';
	rec.res.enh[sizeof(rec.res.enh) - 1] = '\0';
	rec.res.text[sizeof(rec.res.text) - 1] = '\0';
	local_job_report(job, rec.k, rec.start_us, rec.end_us, &rec.res);
}

static void
local_job_read(struct ev_io *io, unsigned revents)
{
	struct local_job *job = io->arg;
	ssize_t n;

	(void)revents;
	for (;;) {
		n = read(job->rfd, job->rec + job->rec_len, sizeof(job->rec) - job->rec_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			break;
		job->rec_len += (size_t)n;
		if (job->rec_len == sizeof(job->rec))
			local_job_record(job);
	}
	if (n < 0)
		log_warning("%s: reading the delivery process: %s", job->j.queue_id,
		            strerror(errno));
	evloop_io_del(job->a->loop, &job->io);
	close(job->rfd);
	job->rfd = -1;
	local_job_end_check(job);
}

/* No worker: every recipient is deferred with why. */
static void
local_job_fail(struct local_job *job, const char *what, int err)
{
	struct local_result res;
	int64_t now = agent_link_now_us();

	local_result_set(&res, LOCAL_TEMPFAIL, NULL, "4.3.0",
	                 "cannot start a delivery process: %s: %s", what, strerror(err));
	log_warning("%s: %s: %s", job->j.queue_id, what, strerror(err));
	for (size_t k = 0; k < job->j.nrcpt; k++)
		local_job_report(job, k, now, now, &res);
	local_job_end_check(job);
}

static void
local_job_start(struct local_job *job)
{
	struct local_agent *a = job->a;
	int p[2], err;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		local_job_fail(job, "pipe", errno);
		return;
	}
	pid = fork();
	if (pid < 0) {
		err = errno;
		close(p[0]);
		close(p[1]);
		local_job_fail(job, "fork", err);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		local_worker_run(a, job, p[1]);
	}
	close(p[1]);
	job->pid = pid;
	job->rfd = p[0];
	if (evloop_set_nonblock(p[0]) < 0 ||
	    evloop_io_add(a->loop, &job->io, p[0], EV_READ, local_job_read, job) < 0)
		fatal("delivery process pipe: %s", strerror(errno));
}

/* SIGCHLD: reap workers (and any child killed before). */
static void
local_reap_children(struct local_agent *a)
{
	struct local_job *job;
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		for (job = a->jobs; job != NULL; job = job->next)
			if (job->pid == pid) {
				job->pid = 0;
				job->wstatus = st;
				local_job_end_check(job);
				break;
			}
}

/* ==== qmgr (queue/agent_link.h) ==== */

static void
local_qmgr_job(void *arg, struct agent_job *j)
{
	struct local_agent *a = arg;
	struct local_job *job;

	if (a->draining) {
		/* Unreported: qmgr defers it when we are gone. */
		agent_job_free(j);
		return;
	}
	if (a->nactive >= a->slots)
		panic("qmgr sent job %llu beyond our %u slots", (unsigned long long)j->job_id,
		      a->slots);
	job = calloc(1, sizeof(*job));
	if (job == NULL || (job->done = calloc(j->nrcpt ? j->nrcpt : 1, sizeof(bool))) == NULL)
		fatal("out of memory");
	job->a = a;
	job->j = *j;		/* the strings and arrays move to the job */
	job->nleft = j->nrcpt;
	job->received_us = agent_link_now_us();
	job->seq0 = a->maildir_seq;
	a->maildir_seq += j->nrcpt;
	job->rfd = -1;
	job->next = a->jobs;
	if (a->jobs != NULL)
		a->jobs->prev = job;
	a->jobs = job;
	a->nactive++;
	local_job_start(job);
}

static size_t
local_qmgr_lost(void *arg)
{
	struct local_agent *a = arg;
	size_t n = local_drop_jobs(a);

	if (a->draining)
		local_reap_soon(a);	/* nothing left to wait for */
	return n;
}

/* ==== the master ==== */

static void
local_stop(struct local_agent *a)
{
	if (a->stopping)
		return;
	a->stopping = true;
	agent_link_stop(a->link);
	(void)local_drop_jobs(a);
	evloop_timer_stop(a->loop, &a->drain);
	evloop_break(a->loop);
}

static void
local_drain_timeout(struct ev_timer *t)
{
	struct local_agent *a = t->arg;

	log_warning("%zu deliveries still running; killing them (their recipients are tried "
	            "again)", a->nactive);
	local_stop(a);
}

/* Take no new job; wait up to ms for the running ones, then stop. */
static void
local_drain(struct local_agent *a, int64_t ms)
{
	if (a->draining || a->stopping)
		return;
	a->draining = true;
	if (a->nactive == 0) {
		local_stop(a);
		return;
	}
	log_info("stopping: waiting up to %lld s for %zu deliveries", (long long)(ms / 1000),
	         a->nactive);
	evloop_timer_start(a->loop, &a->drain, ms);
}

static void
local_reload(struct local_agent *a)
{
	struct config *cfg = config_reload_load(a->cfg_path, a->control_fd);

	if (cfg == NULL)
		return;
	/* Running workers keep the configuration they were forked with; the
	 * slots stay until the next connection to qmgr. */
	config_free(a->cfg);
	a->cfg = cfg;
	config_reload_done(cfg, a->cfg_path, a->control_fd);
}

static void
local_control_frame(void *arg, struct frame_reader *r)
{
	struct local_agent *a = arg;
	uint64_t seconds;

	if (rolectl_command(r, &seconds) == FRAME_MASTER_DRAIN)
		local_drain(a, seconds > INT64_MAX / 1000 ? INT64_MAX : (int64_t)seconds * 1000);
	else if (!a->draining)
		local_reload(a);
}

static void
local_control_read(struct ev_io *io, unsigned revents)
{
	struct local_agent *a = io->arg;
	size_t nfds = 0;
	int fds[1];

	(void)revents;
	if (rolectl_read(a->control_fd, &a->control_in, fds, &nfds, 0, local_control_frame, a) < 0) {
		evloop_io_del(a->loop, &a->control_io);
		log_warning("master went away; stopping");
		local_drain(a, (int64_t)config_time(a->cfg, P_SMTPD_DRAIN_TIMEOUT) * 1000);
	}
}

static void
local_signal(int signo, void *arg)
{
	struct local_agent *a = arg;

	if (signo == SIGCHLD)
		local_reap_children(a);
	else
		local_drain(a, (int64_t)config_time(a->cfg, P_SMTPD_DRAIN_TIMEOUT) * 1000);
}

int
local_agent_main(const char *cfg_path, struct config *cfg, int control_fd)
{
	struct local_agent *a = calloc(1, sizeof(*a));
	uint64_t slots = config_int(cfg, P_DEFAULT_PROCESS_LIMIT);
	pid_t pid;

	if (a == NULL)
		fatal("out of memory");
	signal(SIGPIPE, SIG_IGN);
	a->cfg_path = cfg_path;
	a->cfg = cfg;
	a->control_fd = control_fd;
	buf_init(&a->control_in, ROLECTL_IN_MAX);
	a->loop = evloop_new();
	if (a->loop == NULL)
		fatal("evloop: %s", strerror(errno));
	a->switch_user = geteuid() == 0 && !config_is_dev(cfg);
	a->slots = slots == 0 ? 1 : slots > LOCAL_AGENT_WORKERS_MAX ? LOCAL_AGENT_WORKERS_MAX
	                                                            : (uint32_t)slots;
	a->link = agent_link_new(a->loop, config_str(cfg, P_QUEUE_DIRECTORY), "local", a->slots,
	                         local_qmgr_job, local_qmgr_lost, a);
	evloop_timer_init(&a->reap, local_reap, a);
	evloop_timer_init(&a->drain, local_drain_timeout, a);
	if (evloop_set_nonblock(control_fd) < 0 ||
	    evloop_io_add(a->loop, &a->control_io, control_fd, EV_READ, local_control_read, a) < 0)
		fatal("control socket: %s", strerror(errno));
	if (evloop_signal_add(a->loop, SIGTERM, local_signal, a) < 0 ||
	    evloop_signal_add(a->loop, SIGINT, local_signal, a) < 0 ||
	    evloop_signal_add(a->loop, SIGCHLD, local_signal, a) < 0)
		fatal("signals: %s", strerror(errno));
	rolectl_send(control_fd, FRAME_CHILD_READY, NULL, (uint64_t)getpid());
	agent_link_start(a->link);

	evloop_run(a->loop);

	rolectl_send(control_fd, FRAME_CHILD_DRAINED, NULL, 0);
	(void)local_drop_jobs(a);
	/* The workers were sent SIGKILL: wait for them, leave no zombie. */
	while ((pid = waitpid(-1, NULL, 0)) > 0 || (pid < 0 && errno == EINTR))
		;
	log_info("stopped");
	agent_link_free(a->link);
	evloop_timer_stop(a->loop, &a->reap);
	evloop_timer_stop(a->loop, &a->drain);
	evloop_io_del(a->loop, &a->control_io);
	evloop_free(a->loop);
	config_free(a->cfg);
	buf_free(&a->control_in);
	free(a);
	return 0;
}
