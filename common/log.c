/*
 * log: the process-wide log sink. It owns the open log file and the role
 * name; it is configured once at role start (and again after reload).
 */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_ident[64] = "tern";
static char log_host[256] = "localhost";
static unsigned log_sinks = LOG_SINK_STDERR;
static int log_fd = -1;
static bool log_debug_on;
static int log_fatal_status = 1;

int
log_open(const char *role, unsigned sinks, const char *path)
{
	int fd = -1;

	if (sinks & LOG_SINK_FILE) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return -1;
	}
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	snprintf(log_ident, sizeof(log_ident), "tern%s%s", role ? "/" : "", role ? role : "");
	if (sinks & LOG_SINK_SYSLOG) {
		closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
	log_sinks = sinks;
	return 0;
}

void
log_open_fd(const char *role, unsigned sinks, int fd)
{
	if (log_fd >= 0 && log_fd != fd)
		close(log_fd);
	log_fd = fd;
	snprintf(log_ident, sizeof(log_ident), "tern%s%s", role ? "/" : "", role ? role : "");
	if (sinks & LOG_SINK_SYSLOG) {
		closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
	log_sinks = sinks;
}

void
log_set_hostname(const char *host)
{
	snprintf(log_host, sizeof(log_host), "%s", host);
}

void log_set_debug(bool on) { log_debug_on = on; }
bool log_debug_enabled(void) { return log_debug_on; }
void log_set_fatal_status(int status) { log_fatal_status = status; }
int log_file_fd(void) { return log_fd; }

char *
log_printable(char *dst, size_t dstsz, const char *src, size_t len)
{
	size_t o = 0, i;
	unsigned char c;

	if (dstsz == 0)
		return dst;
	for (i = 0; i < len; i++) {
		c = (unsigned char)src[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= dstsz)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 4 >= dstsz)
				break;
			o += (size_t)snprintf(dst + o, dstsz - o, "\\%03o", c);
		}
	}
	dst[o] = '\0';
	return dst;
}

static void
log_write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

void
log_vline(const char *prefix, const char *fmt, va_list ap)
{
	char text[LOG_LINE_MAX], clean[LOG_LINE_MAX], line[LOG_LINE_MAX + 512];
	int n, saved = errno;
	size_t tlen;
	struct tm tm;
	time_t now;
	char stamp[32];

	n = vsnprintf(text, sizeof(text), fmt, ap);
	if (n < 0)
		return;
	tlen = (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
	if ((size_t)n >= sizeof(text) && tlen > 3)
		memcpy(text + tlen - 3, "...", 3);
	log_printable(clean, sizeof(clean), text, tlen);

	if (log_sinks & LOG_SINK_SYSLOG)
		syslog(LOG_INFO, "%s%s", prefix, clean);
	if (log_sinks & (LOG_SINK_FILE | LOG_SINK_STDERR)) {
		now = time(NULL);
		localtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
		n = snprintf(line, sizeof(line), "%s %s %s[%ld]: %s%s\n", stamp,
		    log_host, log_ident, (long)getpid(), prefix, clean);
		if (n < 0)
			return;
		if ((size_t)n >= sizeof(line)) {
			n = (int)sizeof(line) - 1;
			line[n - 1] = '\n';
		}
		if ((log_sinks & LOG_SINK_FILE) && log_fd >= 0)
			log_write_all(log_fd, line, (size_t)n);
		if (log_sinks & LOG_SINK_STDERR)
			log_write_all(STDERR_FILENO, line, (size_t)n);
	}
	errno = saved;
}

#define LOG_DEFINE(name, prefix)				\
	void name(const char *fmt, ...)				\
	{							\
		va_list ap;					\
		va_start(ap, fmt);				\
		log_vline(prefix, fmt, ap);			\
		va_end(ap);					\
	}
LOG_DEFINE(log_info, "")
LOG_DEFINE(log_warning, "warning: ")
LOG_DEFINE(log_error, "error: ")

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	log_vline("debug: ", fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline("fatal: ", fmt, ap);
	va_end(ap);
	exit(log_fatal_status);
}

void
panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline("panic: ", fmt, ap);
	va_end(ap);
	abort();
}
