/*
 * masterpid: the running master of a spool (masterpid.h). Returns
 * errors with a reason; never logs, never exits.
 */
#include "tools/masterpid.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

/* The pid file holds a decimal pid and a newline, then "config=PATH\n". */
#define MASTERPID_FILE_MAX (32 + 7 + sizeof(((struct masterpid *)0)->config))
/* /proc/PID/cmdline bytes looked at (ternd's arguments are few). */
#define MASTERPID_CMDLINE_MAX 4096
#define MASTERPID_POLL_MS 50

bool
masterpid_is_ternd(pid_t pid, char *err, size_t errsz)
{
	char path[64], exe[PATH_MAX], cmd[MASTERPID_CMDLINE_MAX];
	const char *base, *deleted = " (deleted)";
	size_t len, dl = strlen(deleted);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n < 0) {
		snprintf(err, errsz, "cannot check pid %ld: %s: %s", (long)pid, path, strerror(errno));
		return false;
	}
	exe[n] = '\0';
	len = (size_t)n;
	/* A binary replaced by a new build since it started. */
	if (len > dl && strcmp(exe + len - dl, deleted) == 0)
		exe[len - dl] = '\0';
	base = strrchr(exe, '/');
	base = base != NULL ? base + 1 : exe;
	if (strcmp(base, "ternd") != 0) {
		snprintf(err, errsz, "pid %ld is %s, not ternd", (long)pid, exe);
		return false;
	}
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errsz, "cannot check pid %ld: %s: %s", (long)pid, path, strerror(errno));
		return false;
	}
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n < 0)
		n = 0;
	cmd[n] = '\0';
	/* NUL-separated arguments: a role was started with --role=NAME. */
	for (const char *a = cmd; a < cmd + n; a += strlen(a) + 1)
		if (strncmp(a, "--role=", 7) == 0) {
			snprintf(err, errsz, "pid %ld is a ternd role, not the master", (long)pid);
			return false;
		}
	return true;
}

/* "config=PATH\n" after the pid line (at p: its newline), bounded by the
 * read; absent or cut short: not known. */
static void
masterpid_config_line(const char *p, struct masterpid *mp)
{
	static const char key[] = "config=";
	const char *nl;
	size_t len;

	if (*p != '\n' || strncmp(p + 1, key, sizeof(key) - 1) != 0)
		return;
	p += 1 + sizeof(key) - 1;
	nl = strchr(p, '\n');
	if (nl == NULL)
		return;
	len = (size_t)(nl - p);
	if (len >= sizeof(mp->config))
		return;
	memcpy(mp->config, p, len);
	mp->config[len] = '\0';
	mp->config_known = true;
}

int
masterpid_find(const char *queue_directory, struct masterpid *mp, char *err, size_t errsz)
{
	char path[PATH_MAX], text[MASTERPID_FILE_MAX], *end;
	ssize_t n;
	long v;

	mp->pid = 0;
	mp->lock_fd = -1;
	mp->config_known = false;
	mp->config[0] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/master.lock", queue_directory) >= sizeof(path)) {
		snprintf(err, errsz, "queue_directory too long");
		return EX_SOFTWARE;
	}
	mp->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mp->lock_fd < 0) {
		int e = errno;

		if (e == EACCES || e == EPERM) {
			snprintf(err, errsz, "%s is root's (mode 0600)", path);
			return EX_NOPERM;
		}
		snprintf(err, errsz, "%s: %s%s", path, strerror(e),
		         e == ENOENT ? " (ternd never ran on this spool)" : "");
		return EX_UNAVAILABLE;
	}
	/* A lock we can take is a lock nobody holds: no master. */
	if (flock(mp->lock_fd, LOCK_SH | LOCK_NB) == 0) {
		snprintf(err, errsz, "ternd is not running (nobody holds %s)", path);
		masterpid_close(mp);
		return EX_UNAVAILABLE;
	}
	n = pread(mp->lock_fd, text, sizeof(text) - 1, 0);
	text[n > 0 ? n : 0] = '\0';
	errno = 0;
	v = strtol(text, &end, 10);
	if (n <= 0 || errno != 0 || v <= 1 || v > INT_MAX || (*end != '\n' && *end != '\0')) {
		snprintf(err, errsz, "%s holds no pid", path);
		masterpid_close(mp);
		return EX_SOFTWARE;
	}
	mp->pid = (pid_t)v;
	masterpid_config_line(end, mp);
	if (!masterpid_is_ternd(mp->pid, err, errsz)) {
		masterpid_close(mp);
		return EX_SOFTWARE;
	}
	return 0;
}

bool
masterpid_wait_exit(const struct masterpid *mp, int timeout_ms)
{
	struct timespec pause = { 0, MASTERPID_POLL_MS * 1000000L };

	/* The kernel drops the lock when the master's last descriptor on the
	 * file closes, at its exit: that is the end (a pid could still
	 * answer kill(0) as a zombie). */
	for (int waited = 0; waited <= timeout_ms; waited += MASTERPID_POLL_MS) {
		if (flock(mp->lock_fd, LOCK_SH | LOCK_NB) == 0) {
			(void)flock(mp->lock_fd, LOCK_UN);
			return true;
		}
		nanosleep(&pause, NULL);
	}
	return false;
}

void
masterpid_close(struct masterpid *mp)
{
	if (mp->lock_fd >= 0)
		close(mp->lock_fd);
	mp->lock_fd = -1;
}
