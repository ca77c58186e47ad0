/*
 * local_command: pipe a message to a command, and the privilege-switching
 * runner the local agent forks every delivery with (local_command.h,
 * doc/local.md).
 *
 * Error policy: outcomes are struct local_result, worded as Postfix's
 * pipe_command() and sys_exits table word them; nothing here logs or
 * exits, except the forked children, which _exit(). Out of memory is
 * fatal().
 *
 * The command child is set up entirely before the fork (argv, environment,
 * pipes), so that between fork() and execve() it only calls
 * async-signal-safe functions. Everything the parent opens is closed on
 * every path; SIGPIPE is blocked only for the duration of a call.
 */
#include "delivery/local_command.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"

#define LOCAL_COMMAND_SHELL "/bin/sh"
#define LOCAL_COMMAND_ENV_MAX 12	/* the fixed set below, and the NULL */
#define LOCAL_COMMAND_TICK_MS 50	/* child exit polling without a pidfd */
#define LOCAL_COMMAND_DRAIN_READS 16	/* output reads after the exit: bounded */
#define LOCAL_COMMAND_READ_CHUNK 4096

/* Postfix's default command_expansion_filter: what may reach a command's
 * environment from an address (others become "_"). */
static const char local_command_safe[] =
	"1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* Postfix's sys_exits table (sys_exits.c): the code and text per status. */
static const struct local_sysexit {
	int status;
	const char *enh;
	const char *text;
} local_sysexits[] = {
	{ EX_USAGE, "5.3.0", "command line usage error" },
	{ EX_DATAERR, "5.6.0", "data format error" },
	{ EX_NOINPUT, "5.3.0", "cannot open input" },
	{ EX_NOUSER, "5.1.1", "user unknown" },
	{ EX_NOHOST, "5.1.2", "host name unknown" },
	{ EX_UNAVAILABLE, "5.3.0", "service unavailable" },
	{ EX_SOFTWARE, "5.3.0", "internal software error" },
	{ EX_OSERR, "4.3.0", "system resource problem" },
	{ EX_OSFILE, "5.3.0", "critical OS file missing" },
	{ EX_CANTCREAT, "5.2.0", "can't create user output file" },
	{ EX_IOERR, "5.3.0", "input/output error" },
	{ EX_TEMPFAIL, "4.3.0", "temporary failure" },
	{ EX_PROTOCOL, "5.5.0", "remote error in protocol" },
	{ EX_NOPERM, "5.7.0", "permission denied" },
	{ EX_CONFIG, "5.3.5", "local configuration error" },
};

/* ---- the command's environment ---- */

struct cmd_env {
	char *v[LOCAL_COMMAND_ENV_MAX];	/* owned "NAME=value" strings, NULL-terminated */
	size_t n;
};

/* Add NAME=value (censored: from the network or a passwd entry); nothing
 * when value is NULL. */
static void
env_add(struct cmd_env *e, const char *name, const char *value, bool censor)
{
	size_t nl, vl, i;
	char *s;

	if (value == NULL)
		return;
	if (e->n + 1 >= LOCAL_COMMAND_ENV_MAX)
		panic("local_command: environment table too small");
	nl = strlen(name);
	vl = strlen(value);
	if ((s = malloc(nl + 1 + vl + 1)) == NULL)
		fatal("out of memory");
	memcpy(s, name, nl);
	s[nl] = '=';
	for (i = 0; i < vl; i++)
		s[nl + 1 + i] = censor && strchr(local_command_safe, value[i]) == NULL ? '_' : value[i];
	s[nl + 1 + vl] = '\0';
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
}

static const char *
opt(const char *s)
{
	return s && *s ? s : NULL;
}

/* The fixed set of Postfix's local(8). SENDER is there even for <> (""). */
static void
env_build(struct cmd_env *e, const struct local_delivery *d)
{
	memset(e, 0, sizeof(*e));
	env_add(e, "HOME", opt(d->home), true);
	env_add(e, "LOGNAME", opt(d->user), true);
	env_add(e, "USER", opt(d->user), true);
	env_add(e, "SHELL", opt(d->shell), true);
	env_add(e, "PATH", LOCAL_COMMAND_PATH, false);
	env_add(e, "SENDER", d->sender ? d->sender : "", true);
	env_add(e, "RECIPIENT", opt(d->recipient), true);
	env_add(e, "LOCAL", opt(d->local), true);
	env_add(e, "EXTENSION", opt(d->extension), true);
	env_add(e, "DOMAIN", opt(d->domain), true);
	env_add(e, "ORIGINAL_RECIPIENT", opt(d->original_recipient), true);
}

static void
env_free(struct cmd_env *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->v[i]);
	e->n = 0;
}

/* ---- the command child ---- */

/* Keep a pipe end away from 0, 1 and 2, so that dup2() in the child
 * always makes a new descriptor (without close-on-exec). */
static int
fd_above_stderr(int *fd)
{
	int nfd;

	if (*fd > STDERR_FILENO)
		return 0;
	if ((nfd = fcntl(*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1)) < 0)
		return -1;
	close(*fd);
	*fd = nfd;
	return 0;
}

/* In the child, between fork() and execve(): async-signal-safe calls only. */
static void __attribute__((noreturn))
cmd_child(int in_r, int out_w, const char *home, char *const argv[], char *const envp[])
{
	static const char execfail[] = "cannot execute " LOCAL_COMMAND_SHELL "\n";
	struct sigaction dfl;
	struct rlimit rl;
	sigset_t none;
	int sig, fd;

	/* Ignored signals stay ignored across execve(): give the command the
	 * defaults (a shell pipeline needs SIGPIPE) and an empty mask. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	/* Its own process group, so that a time-out kills its children too. */
	(void)setsid();
	if (dup2(in_r, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
	    dup2(out_w, STDERR_FILENO) < 0)
		_exit(EX_TEMPFAIL);
	/* Nothing of ours (spool file, result pipe, log file) reaches it. */
	if (syscall(SYS_close_range, STDERR_FILENO + 1, ~0U, 0) < 0) {
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur > 65536)
			rl.rlim_cur = 65536;
		for (fd = STDERR_FILENO + 1; fd < (int)rl.rlim_cur; fd++)
			(void)close(fd);
	}
	if (home == NULL || *home == '\0' || chdir(home) < 0)
		(void)chdir("/");
	execve(LOCAL_COMMAND_SHELL, argv, envp);
	(void)!write(STDERR_FILENO, execfail, sizeof(execfail) - 1);
	/* As Postfix's pipe_child_cleanup: our trouble, try again later. */
	_exit(EX_TEMPFAIL);
}

/* ---- the parent's side of a running command ---- */

struct cmd_run {
	pid_t pid;
	int in_fd;		/* the command's stdin, -1 once closed */
	int out_fd;		/* its stdout and stderr, -1 at EOF */
	int pid_fd;		/* a pidfd, or -1 (then LOCAL_COMMAND_TICK_MS polling) */
	int msgfd;
	off_t off;		/* next spool file offset */
	bool msg_eof;
	bool finished;		/* the filter is finished: pend holds the rest */
	struct local_filter f;
	struct buf pend;	/* filtered bytes not yet written */
	char *chunk;		/* LOCAL_IO_CHUNK bytes read from the spool */
	size_t chunk_len, chunk_pos;
	char output[LOCAL_COMMAND_OUTPUT_MAX + 1];
	size_t output_len;
	int read_err;		/* reading the spool file: errno */
	int write_err;		/* writing to the command, other than EPIPE: errno */
	bool reaped, timed_out;
	int wstatus;
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Read and filter the message into pend as far as it has room. */
static int
cmd_fill(struct cmd_run *c)
{
	ssize_t n;

	while (c->in_fd >= 0 && !c->finished && buf_room(&c->pend) >= LOCAL_FILTER_STEP_MAX) {
		if (c->chunk_pos < c->chunk_len) {
			c->chunk_pos += local_mailbox_filter_feed(&c->f, c->chunk + c->chunk_pos,
			                                          c->chunk_len - c->chunk_pos, &c->pend);
		} else if (c->msg_eof) {
			(void)local_mailbox_filter_finish(&c->f, &c->pend);
			c->finished = true;
		} else if ((n = pread(c->msgfd, c->chunk, LOCAL_IO_CHUNK, c->off)) < 0) {
			if (errno != EINTR) {
				c->read_err = errno;
				return -1;
			}
		} else {
			c->msg_eof = n == 0;
			c->off += n;
			c->chunk_len = (size_t)n;
			c->chunk_pos = 0;
		}
	}
	/* All written: EOF for the command. */
	if (c->in_fd >= 0 && c->finished && buf_len(&c->pend) == 0)
		close_fd(&c->in_fd);
	return 0;
}

static void
cmd_write(struct cmd_run *c)
{
	ssize_t n = write(c->in_fd, buf_data(&c->pend), buf_len(&c->pend));

	if (n > 0) {
		buf_consume(&c->pend, (size_t)n);
	} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
		/* EPIPE: it stopped reading; its exit status will tell. */
		if (errno != EPIPE)
			c->write_err = errno;
		close_fd(&c->in_fd);
	}
}

/* Read what output there is (at most reads times); keep the first part. */
static void
cmd_read(struct cmd_run *c, unsigned reads)
{
	char tmp[LOCAL_COMMAND_READ_CHUNK];
	size_t keep;
	ssize_t n;

	while (c->out_fd >= 0 && reads-- > 0) {
		if ((n = read(c->out_fd, tmp, sizeof(tmp))) < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				close_fd(&c->out_fd);
			return;
		}
		if (n == 0) {
			close_fd(&c->out_fd);
			return;
		}
		/* The rest is read and dropped, so that the command never
		 * blocks on a full pipe. */
		keep = LOCAL_COMMAND_OUTPUT_MAX - c->output_len;
		keep = (size_t)n < keep ? (size_t)n : keep;
		memcpy(c->output + c->output_len, tmp, keep);
		c->output_len += keep;
	}
}

/* One round: wait for the pipes or the exit, at most until the deadline. */
static void
cmd_poll(struct cmd_run *c, int64_t remaining_ms)
{
	struct pollfd pfd[3];
	nfds_t n = 0;
	int in_i = -1, out_i = -1, timeout;

	if (c->in_fd >= 0 && buf_len(&c->pend) > 0) {
		pfd[n] = (struct pollfd){ .fd = c->in_fd, .events = POLLOUT };
		in_i = (int)n++;
	}
	if (c->out_fd >= 0) {
		pfd[n] = (struct pollfd){ .fd = c->out_fd, .events = POLLIN };
		out_i = (int)n++;
	}
	if (c->pid_fd >= 0)
		pfd[n++] = (struct pollfd){ .fd = c->pid_fd, .events = POLLIN };
	timeout = (int)(remaining_ms < INT32_MAX ? remaining_ms : INT32_MAX);
	if (c->pid_fd < 0 && timeout > LOCAL_COMMAND_TICK_MS)
		timeout = LOCAL_COMMAND_TICK_MS;
	if (poll(pfd, n, timeout) <= 0)
		return;
	if (in_i >= 0 && pfd[in_i].revents)
		cmd_write(c);
	if (out_i >= 0 && pfd[out_i].revents)
		cmd_read(c, 1);
}

/*
 * Feed the command, collect its output and reap it, within limit_ms.
 * After a time-out or a spool read error the process group is killed
 * (before the command could see an end of input: a partial message must
 * never be delivered).
 */
static void
cmd_supervise(struct cmd_run *c, int64_t limit_ms)
{
	int64_t deadline = mono_ms() + limit_ms, now;

	for (;;) {
		if (cmd_fill(c) < 0)
			break;
		if ((now = mono_ms()) >= deadline) {
			c->timed_out = true;
			break;
		}
		cmd_poll(c, deadline - now);
		if (waitpid(c->pid, &c->wstatus, WNOHANG) == c->pid) {
			c->reaped = true;
			/* What it wrote before exiting; a background child that
			 * keeps the pipe open does not hold us up. */
			cmd_read(c, LOCAL_COMMAND_DRAIN_READS);
			break;
		}
	}
	if (!c->reaped) {
		(void)kill(-c->pid, SIGKILL);
		(void)kill(c->pid, SIGKILL);
		while (waitpid(c->pid, &c->wstatus, 0) < 0 && errno == EINTR)
			;
		c->reaped = true;
	}
}

/* Postfix's translit("\t\n", "  ") and printable(..., '_'). */
static const char *
cmd_output_text(struct cmd_run *c)
{
	size_t i;

	for (i = 0; i < c->output_len; i++) {
		unsigned char ch = (unsigned char)c->output[i];

		if (ch == '\t' || ch == '\n' || ch == '\r')
			c->output[i] = ' ';
		else if (ch < 0x20 || ch >= 0x7f)
			c->output[i] = '_';
	}
	while (c->output_len > 0 && c->output[c->output_len - 1] == ' ')
		c->output_len--;
	c->output[c->output_len] = '\0';
	return c->output;
}

/* Output that begins "4.X.Y text" or "5.X.Y text" (RFC 3463): its length
 * of the code, else 0. As Postfix's dsn_valid(), for 4 and 5 only. */
static size_t
dsn_prefix(const char *s)
{
	size_t i = 1, digits;
	int part;

	if (s[0] != '4' && s[0] != '5')
		return 0;
	for (part = 0; part < 2; part++) {
		if (s[i++] != '.')
			return 0;
		for (digits = 0; s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
		if (digits < 1 || digits > 3)
			return 0;
	}
	return s[i] == '\0' || s[i] == ' ' ? i : 0;
}

static void
cmd_result(struct cmd_run *c, const char *command, struct local_result *r)
{
	const char *out = cmd_output_text(c);
	const char *sep = *out ? ". Command output: " : "";
	size_t i, dl;
	int st;

	if (c->read_err) {
		local_result_set(r, LOCAL_TEMPFAIL, NULL, "4.3.0", "error reading message: %s",
		                 strerror(c->read_err));
	} else if (c->timed_out) {
		local_result_set(r, LOCAL_TEMPFAIL, NULL, "4.3.0",
		                 "Command time limit exceeded: \"%s\"%s%s", command, sep, out);
	} else if (WIFSIGNALED(c->wstatus)) {
		local_result_set(r, LOCAL_TEMPFAIL, NULL, "4.3.0", "Command died with signal %d: \"%s\"%s%s",
		                 WTERMSIG(c->wstatus), command, sep, out);
	} else if ((st = WEXITSTATUS(c->wstatus)) != 0) {
		if ((dl = dsn_prefix(out)) > 0) {
			char enh[LOCAL_ENH_MAX];

			snprintf(enh, sizeof(enh), "%.*s", (int)dl, out);
			local_result_set(r, out[0] == '4' ? LOCAL_TEMPFAIL : LOCAL_PERMFAIL, NULL, enh,
			                 "%s", out + dl + (out[dl] == ' '));
			return;
		}
		for (i = 0; i < sizeof(local_sysexits) / sizeof(local_sysexits[0]); i++)
			if (local_sysexits[i].status == st)
				break;
		if (i < sizeof(local_sysexits) / sizeof(local_sysexits[0]))
			local_result_set(r, local_sysexits[i].enh[0] == '4' ? LOCAL_TEMPFAIL : LOCAL_PERMFAIL,
			                 NULL, local_sysexits[i].enh, "%s%s%s", local_sysexits[i].text, sep,
			                 out);
		else
			local_result_set(r, LOCAL_PERMFAIL, NULL, "5.3.0",
			                 "Command died with status %d: \"%s\"%s%s", st, command, sep, out);
	} else if (c->write_err) {
		local_result_set(r, LOCAL_TEMPFAIL, NULL, "4.3.0", "Command failed: %s: \"%s\"",
		                 strerror(c->write_err), command);
	} else {
		local_result_set(r, LOCAL_OK, NULL, "2.0.0", "delivered to command: %s", command);
	}
}

/* Pipes (ends above stderr, close-on-exec) and the fork. -1 with errno. */
static int
cmd_start(struct cmd_run *c, const struct local_delivery *d, char *const argv[],
          char *const envp[])
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, saved;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || fd_above_stderr(&in[0]) < 0 ||
	    fd_above_stderr(&in[1]) < 0 || fd_above_stderr(&out[0]) < 0 ||
	    fd_above_stderr(&out[1]) < 0 || (c->pid = fork()) < 0) {
		saved = errno;
		close_fd(&in[0]);
		close_fd(&in[1]);
		close_fd(&out[0]);
		close_fd(&out[1]);
		errno = saved;
		return -1;
	}
	if (c->pid == 0)
		cmd_child(in[0], out[1], d->home, argv, envp);
	close(in[0]);
	close(out[1]);
	c->in_fd = in[1];
	c->out_fd = out[0];
	(void)fcntl(c->in_fd, F_SETFL, O_NONBLOCK);
	(void)fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
	c->pid_fd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	return 0;
}

enum local_status
local_command_deliver(int msgfd, const struct local_delivery *d, const char *command,
                      const struct local_command_opts *opts, struct local_result *r)
{
	char *argv[] = { "sh", "-c", (char *)command, NULL };
	unsigned limit = opts && opts->time_limit_s ? opts->time_limit_s : LOCAL_COMMAND_TIME_LIMIT;
	sigset_t pipe_set, old_mask, pending;
	bool pipe_pending;
	struct cmd_run c;
	struct cmd_env env;

	memset(&c, 0, sizeof(c));
	c.in_fd = c.out_fd = c.pid_fd = -1;
	c.msgfd = msgfd;
	buf_init(&c.pend, LOCAL_IO_CHUNK + LOCAL_FILTER_STEP_MAX);
	if ((c.chunk = malloc(LOCAL_IO_CHUNK)) == NULL)
		fatal("out of memory");
	local_mailbox_filter_init(&c.f, 0);
	if (local_mailbox_headers(d, opts && opts->from_line ? LOCAL_HEADERS_FROM_LINE : 0,
	                          &c.pend) != BUF_OK) {
		/* addresses of tens of kilobytes: not from agent_proto */
		local_result_set(r, LOCAL_TEMPFAIL, NULL, "4.3.0", "Delivery failed: %s",
		                 strerror(ENAMETOOLONG));
		free(c.chunk);
		buf_free(&c.pend);
		return r->status;
	}
	env_build(&env, d);

	/* Our writes to a command that quit must not kill us: EPIPE instead. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	pipe_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);

	if (cmd_start(&c, d, argv, env.v) < 0) {
		local_result_set(r, LOCAL_TEMPFAIL, NULL, "4.3.0", "Delivery failed: %s", strerror(errno));
	} else {
		cmd_supervise(&c, (int64_t)limit * 1000);
		cmd_result(&c, command, r);
	}
	close_fd(&c.in_fd);
	close_fd(&c.out_fd);
	close_fd(&c.pid_fd);

	if (!pipe_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
		struct timespec zero = { 0, 0 };

		(void)sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	env_free(&env);
	free(c.chunk);
	buf_free(&c.pend);
	return r->status;
}

/* ---- the privilege switch ---- */

/* In the child: become uid/gid with groups, or say why not. */
static int
run_switch(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups, struct local_result *r)
{
	const char *what = NULL;

	if (setgroups(ngroups, groups) < 0)
		what = "setgroups";
	else if (setgid(gid) < 0)
		what = "setgid";
	else if (setuid(uid) < 0)
		what = "setuid";
	if (what) {
		local_result_set(r, LOCAL_TEMPFAIL, NULL, "4.3.0", "cannot switch to uid %lu gid %lu: %s: %s",
		                 (unsigned long)uid, (unsigned long)gid, what, strerror(errno));
		return -1;
	}
	/* Make sure the switch cannot be undone: saved ids included. */
	if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid ||
	    (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))) {
		local_result_set(r, LOCAL_TEMPFAIL, NULL, "4.3.0",
		                 "cannot switch to uid %lu gid %lu: privileges still held",
		                 (unsigned long)uid, (unsigned long)gid);
		return -1;
	}
	return 0;
}

static void __attribute__((noreturn))
run_child(int wfd, bool do_switch, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
          local_run_fn *fn, void *arg)
{
	struct local_result res;
	struct sigaction ign;
	const char *p = (const char *)&res;
	size_t left = sizeof(res);
	ssize_t n;

	memset(&res, 0, sizeof(res));
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	(void)sigaction(SIGXFSZ, &ign, NULL);
	/* An ignored SIGCHLD would reap commands before waitpid() sees them. */
	ign.sa_handler = SIG_DFL;
	(void)sigaction(SIGCHLD, &ign, NULL);
	if (!do_switch || run_switch(uid, gid, groups, ngroups, &res) == 0) {
		umask(077);
		local_result_set(&res, LOCAL_TEMPFAIL, NULL, "4.3.0", "delivery function gave no result");
		(void)fn(arg, &res);
	}
	while (left > 0) {
		if ((n = write(wfd, p, left)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	_exit(0);
}

/* The groups of user with gid, looked up before the fork (NSS code must
 * not run in a child of a process that may have threads). Owned. */
static gid_t *
run_groups(const char *user, gid_t gid, size_t *n)
{
	int ng = 16;
	gid_t *g = NULL;

	for (;;) {
		if ((g = realloc(g, (size_t)ng * sizeof(*g))) == NULL)
			fatal("out of memory");
		if (user == NULL) {
			g[0] = gid;
			ng = 1;
			break;
		}
		if (getgrouplist(user, gid, g, &ng) >= 0)
			break;
	}
	*n = (size_t)ng;
	return g;
}

/* Wait for the child's result (one struct at most) and its end. */
static void
run_collect(int rfd, pid_t pid, struct local_result *out)
{
	struct local_result res;
	char *p = (char *)&res;
	size_t got = 0;
	ssize_t n;
	int st = 0;

	while (got < sizeof(res)) {
		if ((n = read(rfd, p + got, sizeof(res) - got)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (got == sizeof(res) &&
	    (res.status == LOCAL_OK || res.status == LOCAL_TEMPFAIL || res.status == LOCAL_PERMFAIL)) {
		res.err_class[sizeof(res.err_class) - 1] = '\0';
		res.enh[sizeof(res.enh) - 1] = '\0';
		res.text[sizeof(res.text) - 1] = '\0';
		*out = res;
	} else if (WIFSIGNALED(st)) {
		local_result_set(out, LOCAL_TEMPFAIL, NULL, "4.3.0", "delivery process died (signal %d)",
		                 WTERMSIG(st));
	} else {
		local_result_set(out, LOCAL_TEMPFAIL, NULL, "4.3.0",
		                 "delivery process died (exit status %d)", WEXITSTATUS(st));
	}
}

enum local_status
local_run_as(uid_t uid, gid_t gid, const char *user, unsigned flags, local_run_fn *fn, void *arg,
             struct local_result *out)
{
	bool do_switch = !(geteuid() != 0 && uid == geteuid());
	gid_t *groups = NULL;
	size_t ngroups = 0;
	int p[2];
	pid_t pid;

	if ((uid == 0 || gid == 0) && !(flags & LOCAL_RUN_ALLOW_ROOT)) {
		local_result_set(out, LOCAL_TEMPFAIL, NULL, "4.3.5",
		                 "mail system configuration error: delivery as uid %lu gid %lu refused",
		                 (unsigned long)uid, (unsigned long)gid);
		return out->status;
	}
	if (do_switch)
		groups = run_groups(user, gid, &ngroups);
	if (pipe2(p, O_CLOEXEC) < 0) {
		local_result_set(out, LOCAL_TEMPFAIL, NULL, "4.3.0", "Delivery failed: pipe: %s",
		                 strerror(errno));
	} else if ((pid = fork()) < 0) {
		local_result_set(out, LOCAL_TEMPFAIL, NULL, "4.3.0", "Delivery failed: fork: %s",
		                 strerror(errno));
		close(p[0]);
		close(p[1]);
	} else if (pid == 0) {
		close(p[0]);
		run_child(p[1], do_switch, uid, gid, groups, ngroups, fn, arg);
	} else {
		close(p[1]);
		run_collect(p[0], pid, out);
		close(p[0]);
	}
	free(groups);
	return out->status;
}
