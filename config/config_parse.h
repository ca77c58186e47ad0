/*
 * config_parse: the syntax of a configuration file (Postfix main.cf):
 * logical lines of `name = value`, comments, continuation lines. Knows
 * nothing of parameter names; private to config/.
 *
 * Problems are collected, never fatal: each becomes one
 * "FILE:LINE: message\n" line in the caller's error buffer and parsing
 * goes on, so an administrator sees every mistake at once.
 */
#ifndef TERN_CONFIG_PARSE_H
#define TERN_CONFIG_PARSE_H

#include <stdbool.h>

#include "common/buf.h"

/* Longest logical line (continuations joined), in bytes. */
#define CONFIG_PARSE_LINE_MAX (64 * 1024)

/* Where problems go. */
struct config_parse_errors {
	struct buf *out;	/* borrowed; NULL: count only */
	const char *file;	/* borrowed; the name used in messages */
	unsigned count;
};

/* Append "FILE:LINE: message\n" (line 0: "FILE: message\n") and count it. */
void config_parse_error(struct config_parse_errors *errs, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Called once per setting, in file order. name and value are trimmed and
 * NUL-terminated, valid only during the call; line is where the logical
 * line starts.
 */
typedef void config_parse_setting_fn(void *arg, const char *name, const char *value,
                                     unsigned line);

/*
 * Read the file at path and call fn for each `name = value`. Syntax
 * problems (no "=", no name, over-long line, NUL byte, continuation with
 * nothing to continue) are reported in errs and the line is skipped.
 * Returns false, after reporting it, when the file cannot be opened or
 * read.
 */
bool config_parse_file(const char *path, config_parse_setting_fn *fn, void *arg,
                       struct config_parse_errors *errs);

#endif
