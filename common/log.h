/*
 * log: one event, one line, in Postfix's format:
 *     Nov 21 09:45:26 host tern/ROLE[pid]: text
 * to syslog (facility mail), to a log file (O_APPEND, one write(2) per
 * line so several roles can share it), and/or to stderr (ternd -f).
 * Severity prefixes are Postfix's: "warning: ", "error: ", "fatal: ",
 * "panic: ". Every byte that is not printable ASCII is written as \ooo,
 * so a client can never forge a log line.
 */
#ifndef TERN_LOG_H
#define TERN_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest line written; longer text is cut and ends in "...". */
#define LOG_LINE_MAX 8192

enum log_sink {
	LOG_SINK_SYSLOG = 1 << 0,
	LOG_SINK_FILE = 1 << 1,
	LOG_SINK_STDERR = 1 << 2,
};

/*
 * Set the role name ("smtpd" gives "tern/smtpd") and the sinks. path is
 * used with LOG_SINK_FILE. Returns 0, or -1 with errno when the file cannot
 * be opened (the previous sinks stay).
 */
int log_open(const char *role, unsigned sinks, const char *path);
/* The same, with a log file descriptor opened by the master (adopted). */
void log_open_fd(const char *role, unsigned sinks, int fd);
/* The host name put in file and stderr lines. */
void log_set_hostname(const char *host);
/* Turn debug lines on or off (never on by default). */
void log_set_debug(bool on);
bool log_debug_enabled(void);
/* Exit status of fatal(); 1 by default. */
void log_set_fatal_status(int status);
/* The file descriptor of the log file, or -1 (kept open across exec). */
int log_file_fd(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vline(const char *prefix, const char *fmt, va_list ap);

/* A fatal environment problem: log "fatal: ..." and exit. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A bug: log "panic: ..." and abort() for a core dump. */
void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Copy untrusted bytes into dst (size dstsz, always NUL-terminated),
 * escaping what is not printable ASCII; returns dst. For log fields.
 */
char *log_printable(char *dst, size_t dstsz, const char *src, size_t len);

#endif
