/* Unit tests for delivery/local_command.c: real /bin/sh commands in a
 * mkdtemp directory (what they read, their environment and cwd, exit
 * statuses and output, signals, the time limit, commands that do not read,
 * descriptors that must not leak), then local_run_as() as uid 65534, as
 * root with and without the flag, and from a non-root caller. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "delivery/local_command.h"
#include "delivery/local_mailbox.h"

#define NOBODY 65534
#define ARRIVAL_US (1700000000LL * 1000000)	/* Tue Nov 14 22:13:20 2023 UTC */

static char tmpdir[64];

static int __attribute__((format(printf, 3, 4)))
fmt_into(char *dst, size_t dstsz, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, dstsz, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < dstsz, "fmt_into: %s does not fit", fmt);
	return n;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
setup(void)
{
	fmt_into(tmpdir, sizeof(tmpdir), "/tmp/tern-lcmd-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(chmod(tmpdir, 0755), 0);
	setenv("TZ", "UTC", 1);
	tzset();
}

static void
teardown(void)
{
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
spool_file(const char *p, size_t n)
{
	char path[256];
	static unsigned seq;
	int fd;

	fmt_into(path, sizeof(path), "%s/spool.%u", tmpdir, seq++);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
	close(fd);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	return fd;
}

static char *
read_all(const char *path, size_t *len)
{
	struct stat st;
	char *p;
	int fd;

	fd = open(path, O_RDONLY);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(fstat(fd, &st), 0);
	p = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(read(fd, p, (size_t)st.st_size), st.st_size);
	p[st.st_size] = '\0';
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

static void
delivery_init(struct local_delivery *d)
{
	memset(d, 0, sizeof(*d));
	d->sender = "s@example.org";
	d->recipient = "bob+ext@example.com";
	d->user = "bob";
	d->home = tmpdir;
	d->local = "bob+ext";
	d->extension = "ext";
	d->domain = "example.com";
	d->arrival_us = ARRIVAL_US;
}

static const char msg[] = "Received: from x\r\nSubject: hi\r\n\r\nbody\r\nFrom me\r\n";
#define HDRS "Return-Path: <s@example.org>\nDelivered-To: bob+ext@example.com\n"
#define MSG_LF "Received: from x\nSubject: hi\n\nbody\nFrom me\n"

/* Run command (a format: %1$s is tmpdir) with a time limit of limit_s. */
static enum local_status
run_cmd(const struct local_delivery *d, int fd, unsigned limit_s, bool from_line,
        struct local_result *r, char *cmd, size_t cmdsz, const char *fmt)
{
	struct local_command_opts o = { .time_limit_s = limit_s, .from_line = from_line };

	fmt_into(cmd, cmdsz, fmt, tmpdir);
	return local_command_deliver(fd, d, cmd, &o, r);
}

static bool
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
		p += n;
	}
	return false;
}

/* The command gets the message, the fixed environment and the home as cwd. */
START_TEST(test_command_ok)
{
	char cmd[512], path[256], want[256], *got;
	struct local_delivery d;
	struct local_result r;
	size_t len;
	int fd;

	setenv("TERN_LEAK", "1", 1);
	delivery_init(&d);
	d.shell = "/bin/sh";
	d.original_recipient = "Bob+Ext@Example.COM";
	fd = spool_file(msg, sizeof(msg) - 1);
	ck_assert_int_eq(run_cmd(&d, fd, 10, false, &r, cmd, sizeof(cmd),
	                         "cat > %1$s/out; env > %1$s/env; pwd > %1$s/pwd"),
	                 LOCAL_OK);
	ck_assert_str_eq(r.enh, "2.0.0");
	fmt_into(want, sizeof(want), "delivered to command: %s", cmd);
	ck_assert_str_eq(r.text, want);

	fmt_into(path, sizeof(path), "%s/out", tmpdir);
	got = read_all(path, &len);
	ck_assert_str_eq(got, "Return-Path: <s@example.org>\nX-Original-To: Bob+Ext@Example.COM\n"
	                      "Delivered-To: bob+ext@example.com\n" MSG_LF);
	free(got);

	fmt_into(path, sizeof(path), "%s/env", tmpdir);
	got = read_all(path, &len);
	ck_assert_msg(has_line(got, "SENDER=s@example.org") &&
	                  has_line(got, "RECIPIENT=bob+ext@example.com") &&
	                  has_line(got, "PATH=/usr/bin:/bin") && has_line(got, "USER=bob") &&
	                  has_line(got, "LOGNAME=bob") && has_line(got, "SHELL=/bin/sh") &&
	                  has_line(got, "LOCAL=bob+ext") && has_line(got, "EXTENSION=ext") &&
	                  has_line(got, "DOMAIN=example.com") &&
	                  has_line(got, "ORIGINAL_RECIPIENT=Bob+Ext@Example.COM") &&
	                  strstr(got, "TERN_LEAK") == NULL,
	              "env:\n%s", got);
	fmt_into(want, sizeof(want), "HOME=%s", tmpdir);
	ck_assert(has_line(got, want));
	free(got);

	fmt_into(path, sizeof(path), "%s/pwd", tmpdir);
	got = read_all(path, &len);
	fmt_into(want, sizeof(want), "%s\n", tmpdir);
	ck_assert_str_eq(got, want);
	free(got);
	close(fd);
}
END_TEST

/* Values from the network are censored; <> is an empty SENDER; with
 * from_line the message starts with a From_ line; a home that cannot be
 * entered gives "/". */
START_TEST(test_command_env_censored)
{
	char cmd[512], path[256], *got;
	struct local_delivery d;
	struct local_result r;
	size_t len;
	int fd;

	delivery_init(&d);
	d.sender = "x$(id);`y`@e.x";
	d.home = "/nonexistent/home";
	fd = spool_file(msg, sizeof(msg) - 1);
	ck_assert_int_eq(run_cmd(&d, fd, 10, true, &r, cmd, sizeof(cmd),
	                         "env > %1$s/env; pwd >> %1$s/env; head -n 1 >> %1$s/env"),
	                 LOCAL_OK);
	fmt_into(path, sizeof(path), "%s/env", tmpdir);
	got = read_all(path, &len);
	ck_assert_msg(has_line(got, "SENDER=x__id___y_@e.x") && has_line(got, "/") &&
	                  has_line(got, "From x$(id);`y`@e.x  Tue Nov 14 22:13:20 2023") &&
	                  has_line(got, "HOME=/nonexistent/home"),
	              "%s", got);
	free(got);

	d.sender = "";
	ck_assert_int_eq(run_cmd(&d, fd, 10, false, &r, cmd, sizeof(cmd),
	                         "env > %1$s/env; head -n 1 >> %1$s/env"),
	                 LOCAL_OK);
	got = read_all(path, &len);
	ck_assert_msg(has_line(got, "SENDER=") && has_line(got, "Return-Path: <>"), "%s", got);
	free(got);
	close(fd);
}
END_TEST

/* Exit statuses, as Postfix's pipe_command() and sys_exits table. */
static const struct exit_row {
	const char *cmd;
	enum local_status status;
	const char *enh;
	const char *text;	/* %1$s: the command */
} exit_rows[] = {
	{ "exit 75", LOCAL_TEMPFAIL, "4.3.0", "temporary failure" },
	{ "echo try later; exit 75", LOCAL_TEMPFAIL, "4.3.0",
	  "temporary failure. Command output: try later" },
	{ "exit 71", LOCAL_TEMPFAIL, "4.3.0", "system resource problem" },
	{ "echo no such user here >&2; exit 67", LOCAL_PERMFAIL, "5.1.1",
	  "user unknown. Command output: no such user here" },
	{ "exit 64", LOCAL_PERMFAIL, "5.3.0", "command line usage error" },
	{ "exit 78", LOCAL_PERMFAIL, "5.3.5", "local configuration error" },
	{ "printf 'oops\\tx\\001\\n\\n'; exit 1", LOCAL_PERMFAIL, "5.3.0",
	  "Command died with status 1: \"%1$s\". Command output: oops x_" },
	{ "exit 3", LOCAL_PERMFAIL, "5.3.0", "Command died with status 3: \"%1$s\"" },
	{ "exit 255", LOCAL_PERMFAIL, "5.3.0", "Command died with status 255: \"%1$s\"" },
	/* a "D.S.N text" first line decides, as Postfix's dsn_valid() */
	{ "echo 4.2.2 mailbox is full; exit 1", LOCAL_TEMPFAIL, "4.2.2", "mailbox is full" },
	{ "echo 5.1.1 no such user; exit 67", LOCAL_PERMFAIL, "5.1.1", "no such user" },
	{ "echo 4.2.2x no; exit 1", LOCAL_PERMFAIL, "5.3.0",
	  "Command died with status 1: \"%1$s\". Command output: 4.2.2x no" },
	{ "kill -9 $$", LOCAL_TEMPFAIL, "4.3.0", "Command died with signal 9: \"%1$s\"" },
	/* not reading its input is fine: the exit status decides */
	{ "exit 0", LOCAL_OK, "2.0.0", "delivered to command: %1$s" },
	{ "head -c 10 > /dev/null", LOCAL_OK, "2.0.0", "delivered to command: %1$s" },
	{ "exec 0<&-; sleep 0.2; exit 0", LOCAL_OK, "2.0.0", "delivered to command: %1$s" },
	{ "exit 2", LOCAL_PERMFAIL, "5.3.0", "Command died with status 2: \"%1$s\"" },
};

START_TEST(test_command_exit)
{
	const struct exit_row *row = &exit_rows[_i];
	struct local_delivery d;
	struct local_result r;
	char big[300000], want[1024];
	size_t i;
	int fd;

	/* more than a pipe holds, so that commands that do not read see EPIPE */
	for (i = 0; i < sizeof(big); i++)
		big[i] = i % 80 == 79 ? '\n' : 'a';
	delivery_init(&d);
	fd = spool_file(big, sizeof(big));
	ck_assert_int_eq(local_command_deliver(fd, &d, row->cmd,
	                                       &(struct local_command_opts){ .time_limit_s = 20 }, &r),
	                 row->status);
	ck_assert_str_eq(r.enh, row->enh);
	fmt_into(want, sizeof(want), row->text, row->cmd);
	ck_assert_str_eq(r.text, want);
	ck_assert_str_eq(r.err_class, "");
	close(fd);
}
END_TEST

/* Past the time limit the whole process group is killed. */
START_TEST(test_command_time_limit)
{
	char cmd[512], path[256], *got, proc[64], *end;
	struct local_delivery d;
	struct local_result r;
	struct timespec t0, t1;
	long bg;
	size_t len;
	int fd, i;

	delivery_init(&d);
	fd = spool_file(msg, sizeof(msg) - 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(run_cmd(&d, fd, 1, false, &r, cmd, sizeof(cmd),
	                         "echo started; sleep 30 & echo $! > %1$s/bg; sleep 30"),
	                 LOCAL_TEMPFAIL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 4);
	ck_assert_str_eq(r.enh, "4.3.0");
	ck_assert_msg(strncmp(r.text, "Command time limit exceeded: \"echo started;", 43) == 0 &&
	                  strstr(r.text, "\". Command output: started") != NULL,
	              "%s", r.text);
	/* the background sleep is gone (or a zombie waiting for init) */
	fmt_into(path, sizeof(path), "%s/bg", tmpdir);
	got = read_all(path, &len);
	bg = strtol(got, &end, 10);
	ck_assert_int_gt(bg, 1);
	free(got);
	fmt_into(proc, sizeof(proc), "/proc/%ld/stat", bg);
	for (i = 0; i < 100; i++) {
		FILE *fp = fopen(proc, "r");
		char state = 0;

		if (fp == NULL)
			break;
		ck_assert_int_eq(fscanf(fp, "%*d %*s %c", &state), 1);
		fclose(fp);
		if (state == 'Z')
			break;
		usleep(20000);
	}
	ck_assert_int_lt(i, 100);
	close(fd);
}
END_TEST

/* A background child that keeps the output pipe open does not hold the
 * delivery up; a flood of output is read, dropped and cut. */
START_TEST(test_command_output_bounds)
{
	struct local_delivery d;
	struct local_result r;
	struct timespec t0, t1;
	int fd;

	delivery_init(&d);
	fd = spool_file(msg, sizeof(msg) - 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(local_command_deliver(fd, &d, "(sleep 3 &); exit 0",
	                                       &(struct local_command_opts){ .time_limit_s = 20 }, &r),
	                 LOCAL_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 2);

	ck_assert_int_eq(local_command_deliver(fd, &d, "yes | head -c 3000000; exit 1",
	                                       &(struct local_command_opts){ .time_limit_s = 20 }, &r),
	                 LOCAL_PERMFAIL);
	ck_assert_uint_lt(strlen(r.text), LOCAL_TEXT_MAX);
	ck_assert_msg(strstr(r.text, "\". Command output: y y y y") != NULL, "%s", r.text);
	close(fd);
}
END_TEST

/* Our SIGPIPE is neither delivered nor left pending, the mask comes back;
 * a closed stdin in the caller does not confuse the plumbing; no
 * descriptor of ours reaches the command. */
START_TEST(test_command_plumbing)
{
	char cmd[512], path[256], *got;
	struct local_delivery d;
	struct local_result r;
	sigset_t before, after, pending;
	char big[300000];
	size_t len;
	int fd, leak;

	memset(big, 'x', sizeof(big));
	delivery_init(&d);
	fd = spool_file(big, sizeof(big));
	sigprocmask(SIG_SETMASK, NULL, &before);
	ck_assert_int_eq(local_command_deliver(fd, &d, "exit 0", NULL, &r), LOCAL_OK);
	sigprocmask(SIG_SETMASK, NULL, &after);
	ck_assert_int_eq(sigismember(&before, SIGPIPE), sigismember(&after, SIGPIPE));
	sigpending(&pending);
	ck_assert_int_eq(sigismember(&pending, SIGPIPE), 0);
	close(fd);

	fd = spool_file(msg, sizeof(msg) - 1);
	leak = open("/dev/null", O_RDONLY);	/* no close-on-exec */
	ck_assert_int_gt(leak, 2);
	close(STDIN_FILENO);
	fmt_into(path, sizeof(path), "test -e /proc/$$/fd/%d && exit 9; cat > %s/out", leak, tmpdir);
	ck_assert_int_eq(local_command_deliver(fd, &d, path, NULL, &r), LOCAL_OK);
	fmt_into(cmd, sizeof(cmd), "%s/out", tmpdir);
	got = read_all(cmd, &len);
	ck_assert_str_eq(got, HDRS MSG_LF);
	free(got);
	close(leak);
	close(fd);
}
END_TEST

/* ---- local_run_as ---- */

struct write_job {
	const char *path;
};

static enum local_status
write_fn(void *arg, struct local_result *out)
{
	struct write_job *j = arg;
	int fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL, 0666);

	if (fd < 0) {
		local_result_set(out, LOCAL_TEMPFAIL, NULL, "4.3.0", "open: %s", strerror(errno));
		return out->status;
	}
	close(fd);
	/* and the switch cannot be undone */
	if (geteuid() != 0 && setuid(0) == 0)
		local_result_set(out, LOCAL_TEMPFAIL, NULL, "4.3.0", "setuid(0) worked");
	else
		local_result_set(out, LOCAL_OK, NULL, "2.0.0", "wrote as %lu/%lu",
		                 (unsigned long)geteuid(), (unsigned long)getegid());
	return out->status;
}

START_TEST(test_run_as_owner)
{
	char dir[256], file[300];
	struct write_job j = { .path = file };
	struct local_result r;
	struct stat st;

	fmt_into(dir, sizeof(dir), "%s/w", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0777), 0);
	ck_assert_int_eq(chmod(dir, 0777), 0);
	fmt_into(file, sizeof(file), "%s/nobody", dir);
	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, NULL, 0, write_fn, &j, &r), LOCAL_OK);
	ck_assert_str_eq(r.text, "wrote as 65534/65534");
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_uint_eq(st.st_uid, NOBODY);
	ck_assert_uint_eq(st.st_gid, NOBODY);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);	/* umask 077 */

	/* root is refused without the flag, and nothing runs */
	fmt_into(file, sizeof(file), "%s/root", dir);
	ck_assert_int_eq(local_run_as(0, 0, NULL, 0, write_fn, &j, &r), LOCAL_TEMPFAIL);
	ck_assert_str_eq(r.enh, "4.3.5");
	ck_assert_int_eq(access(file, F_OK), -1);
	ck_assert_int_eq(local_run_as(NOBODY, 0, NULL, 0, write_fn, &j, &r), LOCAL_TEMPFAIL);
	ck_assert_int_eq(local_run_as(0, 0, NULL, LOCAL_RUN_ALLOW_ROOT, write_fn, &j, &r), LOCAL_OK);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_uint_eq(st.st_uid, 0);
}
END_TEST

/* The supplementary groups: those of the user, or only gid. */
static enum local_status
groups_fn(void *arg, struct local_result *out)
{
	gid_t g[64];
	int n = getgroups(64, g), i;
	size_t o = 0;

	(void)arg;
	out->status = LOCAL_OK;
	out->text[0] = '\0';
	for (i = 0; i < n; i++)
		o += (size_t)snprintf(out->text + o, sizeof(out->text) - o, "%lu ", (unsigned long)g[i]);
	return LOCAL_OK;
}

/* A user listed as a member of some group in /etc/group, or NULL. */
static char *
member_user(void)
{
	struct group *gr;
	char *user = NULL;

	setgrent();
	while (user == NULL && (gr = getgrent()) != NULL)
		if (gr->gr_mem[0] && gr->gr_gid != NOBODY)
			user = strdup(gr->gr_mem[0]);
	endgrent();
	return user;
}

static int
gid_cmp(const void *a, const void *b)
{
	gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;

	return x < y ? -1 : x > y;
}

START_TEST(test_run_as_groups)
{
	struct local_result r;
	char want[LOCAL_TEXT_MAX];
	char *user = member_user();
	gid_t g[64];
	int n = 64, i;
	size_t o = 0;

	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, NULL, 0, groups_fn, NULL, &r), LOCAL_OK);
	ck_assert_str_eq(r.text, "65534 ");
	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, "nobody", 0, groups_fn, NULL, &r), LOCAL_OK);
	ck_assert_str_eq(r.text, "65534 ");
	if (user == NULL)
		return;	/* no supplementary groups on this host to look for */
	ck_assert_int_ge(getgrouplist(user, NOBODY, g, &n), 2);
	qsort(g, (size_t)n, sizeof(g[0]), gid_cmp);	/* the kernel keeps them sorted */
	for (i = 0; i < n; i++)
		o += (size_t)fmt_into(want + o, sizeof(want) - o, "%lu ", (unsigned long)g[i]);
	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, user, 0, groups_fn, NULL, &r), LOCAL_OK);
	ck_assert_msg(strcmp(r.text, want) == 0, "%s: got %s, want %s", user, r.text, want);
	free(user);
}
END_TEST

static enum local_status
die_fn(void *arg, struct local_result *out)
{
	(void)out;
	if (arg)
		raise(SIGKILL);
	_exit(3);
}

START_TEST(test_run_as_child_dies)
{
	struct local_result r;

	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, NULL, 0, die_fn, "kill", &r), LOCAL_TEMPFAIL);
	ck_assert_str_eq(r.enh, "4.3.0");
	ck_assert_str_eq(r.text, "delivery process died (signal 9)");
	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, NULL, 0, die_fn, NULL, &r), LOCAL_TEMPFAIL);
	ck_assert_str_eq(r.text, "delivery process died (exit status 3)");
}
END_TEST

/* A non-root caller: its own uid runs without a switch, another fails. */
START_TEST(test_run_as_not_root)
{
	char dir[256], file[300];
	struct write_job j = { .path = file };
	int status;
	pid_t pid;

	fmt_into(dir, sizeof(dir), "%s/w", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0777), 0);
	ck_assert_int_eq(chmod(dir, 0777), 0);
	fmt_into(file, sizeof(file), "%s/self", dir);
	if ((pid = fork()) == 0) {
		struct local_result r;

		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(10);
		if (local_run_as(NOBODY, NOBODY, NULL, 0, write_fn, &j, &r) != LOCAL_OK ||
		    strcmp(r.text, "wrote as 65534/65534") != 0)
			_exit(11);
		if (local_run_as(1234, 1234, NULL, 0, write_fn, &j, &r) != LOCAL_TEMPFAIL ||
		    strncmp(r.text, "cannot switch to uid 1234 gid 1234: ", 36) != 0)
			_exit(12);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}
END_TEST

/* The whole chain: a command run as the recipient, whose home it cannot
 * enter (cwd "/"), in a Maildir it owns. */
struct cmd_job {
	int fd;
	struct local_delivery *d;
	const char *cmd;
};

static enum local_status
cmd_fn(void *arg, struct local_result *out)
{
	struct cmd_job *j = arg;

	return local_command_deliver(j->fd, j->d, j->cmd, NULL, out);
}

START_TEST(test_run_as_command)
{
	char home[256], cmd[512], path[300], *got;
	struct local_delivery d;
	struct local_result r;
	struct cmd_job j;
	struct stat st;
	size_t len;

	delivery_init(&d);
	fmt_into(home, sizeof(home), "%s/private", tmpdir);
	ck_assert_int_eq(mkdir(home, 0700), 0);	/* root's: not enterable */
	d.home = home;
	fmt_into(path, sizeof(path), "%s/w", tmpdir);
	ck_assert_int_eq(mkdir(path, 0777), 0);
	ck_assert_int_eq(chmod(path, 0777), 0);
	fmt_into(cmd, sizeof(cmd), "pwd > %s/w/pwd; id -u >> %s/w/pwd", tmpdir, tmpdir);
	j = (struct cmd_job){ .fd = spool_file(msg, sizeof(msg) - 1), .d = &d, .cmd = cmd };
	ck_assert_int_eq(local_run_as(NOBODY, NOBODY, NULL, 0, cmd_fn, &j, &r), LOCAL_OK);
	fmt_into(path, sizeof(path), "%s/w/pwd", tmpdir);
	got = read_all(path, &len);
	ck_assert_str_eq(got, "/\n65534\n");
	free(got);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, NOBODY);
	close(j.fd);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("local_command");
	TCase *tc = tcase_create("command");
	TCase *tr = tcase_create("run_as");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_command_ok);
	tcase_add_test(tc, test_command_env_censored);
	tcase_add_loop_test(tc, test_command_exit, 0, (int)(sizeof(exit_rows) / sizeof(exit_rows[0])));
	tcase_add_test(tc, test_command_time_limit);
	tcase_add_test(tc, test_command_output_bounds);
	tcase_add_test(tc, test_command_plumbing);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tr, setup, teardown);
	tcase_add_test(tr, test_run_as_owner);
	tcase_add_test(tr, test_run_as_groups);
	tcase_add_test(tr, test_run_as_child_dies);
	tcase_add_test(tr, test_run_as_not_root);
	tcase_add_test(tr, test_run_as_command);
	suite_add_tcase(s, tr);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
