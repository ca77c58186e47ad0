/*
 * config_parse: logical lines of a main.cf-style file, following
 * Postfix's readlline(): a line that starts with white space continues
 * the logical line before it; a blank line or a line that starts in
 * column one ends it; a comment is a line whose first non-blank byte is
 * '#' (so "a = b # c" keeps its '#'), and an indented comment does not
 * end a logical line. Continuations are joined with one space.
 *
 * Owns only its line buffers. Problems are reported through
 * config_parse_error(); out of memory is fatal() (via buf).
 */
#include "config/config_parse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config/config_value.h"

struct config_parse_state {
	struct buf logical;		/* the logical line being gathered */
	unsigned start_line;		/* where it started */
	bool active;			/* a logical line is open */
	bool too_long;			/* it passed CONFIG_PARSE_LINE_MAX */
	config_parse_setting_fn *fn;
	void *arg;
	struct config_parse_errors *errs;
};

void
config_parse_error(struct config_parse_errors *errs, unsigned line, const char *fmt, ...)
{
	struct buf msg;
	va_list ap;
	bool ok;

	errs->count++;
	if (errs->out == NULL)
		return;
	/* Whole lines only: a full error buffer drops the message, and the
	 * count still fails the load. */
	buf_init(&msg, buf_room(errs->out));
	if (line > 0)
		ok = buf_append_printf(&msg, "%s:%u: ", errs->file, line) == BUF_OK;
	else
		ok = buf_append_printf(&msg, "%s: ", errs->file) == BUF_OK;
	va_start(ap, fmt);
	ok = buf_append_vprintf(&msg, fmt, ap) == BUF_OK && ok;
	va_end(ap);
	ok = buf_append_char(&msg, '\n') == BUF_OK && ok;
	if (ok)
		buf_append(errs->out, buf_data(&msg), buf_len(&msg));
	buf_free(&msg);
}

/* Report message followed by an escaped, shortened excerpt of text. */
static void
config_parse_error_quoted(struct config_parse_errors *errs, unsigned line, const char *message,
                          const char *text, size_t len)
{
	struct buf q;

	buf_init(&q, CONFIG_VALUE_QUOTE_MAX * 8);
	config_value_quote(&q, text, len);
	config_parse_error(errs, line, "%s%s", message, buf_cstr(&q));
	buf_free(&q);
}

static bool
config_parse_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Trim white space at both ends of p[0..*len); returns the new start. */
static char *
config_parse_trim(char *p, size_t *len)
{
	while (*len > 0 && config_parse_is_space(p[0])) {
		p++;
		(*len)--;
	}
	while (*len > 0 && config_parse_is_space(p[*len - 1]))
		(*len)--;
	return p;
}

/* Hand a complete logical line to the callback, or report why not. */
static void
config_parse_flush(struct config_parse_state *st)
{
	char *text, *eq, *name, *value;
	size_t len, nlen, vlen;

	if (!st->active)
		return;
	st->active = false;
	if (st->too_long) {
		config_parse_error(st->errs, st->start_line, "line longer than %d bytes",
		    CONFIG_PARSE_LINE_MAX);
		return;
	}
	len = buf_len(&st->logical);
	buf_cstr(&st->logical);
	text = buf_data_mut(&st->logical);
	if (memchr(text, '\0', len) != NULL) {
		config_parse_error(st->errs, st->start_line, "NUL byte in line");
		return;
	}
	if ((eq = strchr(text, '=')) == NULL) {
		config_parse_error_quoted(st->errs, st->start_line,
		    "missing \"=\" after parameter name: ", text, len);
		return;
	}
	nlen = (size_t)(eq - text);
	vlen = len - nlen - 1;
	name = config_parse_trim(text, &nlen);
	value = config_parse_trim(eq + 1, &vlen);
	if (nlen == 0) {
		config_parse_error(st->errs, st->start_line, "missing parameter name before \"=\"");
		return;
	}
	name[nlen] = '\0';
	value[vlen] = '\0';
	st->fn(st->arg, name, value, st->start_line);
}

static void
config_parse_append(struct config_parse_state *st, const char *p, size_t len)
{
	if (buf_append(&st->logical, p, len) != BUF_OK)
		st->too_long = true;
}

/* One physical line (without its LF; the first bytes if it was too long). */
static void
config_parse_physical(struct config_parse_state *st, const char *p, size_t len,
                      bool too_long, unsigned lineno)
{
	size_t indent = 0;

	while (indent < len && config_parse_is_space(p[indent]))
		indent++;
	if (indent == len && !too_long) {
		config_parse_flush(st);		/* blank: ends a logical line */
		return;
	}
	if (indent < len && p[indent] == '#') {
		if (indent == 0)
			config_parse_flush(st);
		return;
	}
	while (len > indent && config_parse_is_space(p[len - 1]))
		len--;
	if (indent > 0) {
		if (!st->active) {
			config_parse_error(st->errs, lineno,
			    "continuation line without a parameter line before it");
			return;
		}
		config_parse_append(st, " ", 1);
	} else {
		config_parse_flush(st);
		st->active = true;
		st->too_long = false;
		st->start_line = lineno;
		buf_reset(&st->logical);
	}
	config_parse_append(st, p + indent, len - indent);
	if (too_long)
		st->too_long = true;
}

/*
 * Read one physical line into phys, keeping at most its first
 * CONFIG_PARSE_LINE_MAX bytes. False at end of file.
 */
static bool
config_parse_getline(FILE *fp, struct buf *phys, bool *too_long)
{
	int c;

	buf_reset(phys);
	*too_long = false;
	while ((c = getc(fp)) != EOF && c != '\n')
		if (buf_append_char(phys, (char)c) != BUF_OK)
			*too_long = true;
	return c == '\n' || buf_len(phys) > 0 || *too_long;
}

bool
config_parse_file(const char *path, config_parse_setting_fn *fn, void *arg,
                  struct config_parse_errors *errs)
{
	struct config_parse_state st = { .fn = fn, .arg = arg, .errs = errs };
	struct buf phys;
	unsigned lineno = 0;
	bool too_long, ok = true;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		config_parse_error(errs, 0, "cannot open: %s", strerror(errno));
		return false;
	}
	buf_init(&phys, CONFIG_PARSE_LINE_MAX);
	buf_init(&st.logical, CONFIG_PARSE_LINE_MAX);
	while (config_parse_getline(fp, &phys, &too_long))
		config_parse_physical(&st, buf_data(&phys), buf_len(&phys), too_long, ++lineno);
	if (ferror(fp)) {
		config_parse_error(errs, 0, "cannot read: %s", strerror(errno));
		ok = false;
	} else {
		config_parse_flush(&st);
	}
	fclose(fp);
	buf_free(&phys);
	buf_free(&st.logical);
	return ok;
}
