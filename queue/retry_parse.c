/*
 * retry_parse: the retry rules file (and Exim's time syntax).
 *
 * The syntax is Exim's "begin retry" section (readconf.c: readconf_retries,
 * readconf_retry_error, retry_arg, readconf_readtime, readconf_readfixed),
 * one rule a line:
 *
 *     PATTERN  ERROR  [senders=LIST]  SET; SET; ...
 *
 * with these differences, each on purpose:
 *  - a comment may also follow a rule ("#" after white space, outside
 *    quotes), not only fill a line: examples in the wild do it, and Exim
 *    would read the "#" as a rule letter and stop;
 *  - every problem is reported, one "FILE:LINE: message" per bad line,
 *    instead of dying at the first;
 *  - patterns are only what tern can match without expansion or lookups
 *    (*, domain, *.domain, *@domain, local@domain, *suffix@domain, and a
 *    leading ! to negate); regular expressions, lookups and named lists
 *    are refused with a clear message rather than silently not matching;
 *  - error names are checked by retry_error.c (see there).
 *
 * Returns errors in a buf; never logs. Out of memory is fatal().
 */
#include "queue/retry.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "queue/retry_impl.h"

/* Largest time accepted anywhere (100 years): keeps sums far from overflow. */
#define RETRY_TIME_MAX ((int64_t)100 * 365 * 24 * 3600)
/* Largest multiplier (x1000): 1000.000. */
#define RETRY_MULT_MAX ((int64_t)1000 * 1000)
/* Room for one error message. */
#define RETRY_MSG_SIZE 512

static void *
retry_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("retry: out of memory");
	return p;
}

static char *
retry_xstrndup(const char *s, size_t n)
{
	char *p = retry_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ---- numbers ---- */

int64_t
retry_parse_time(const char *s, size_t len)
{
	const char *end = s + len;
	int64_t total = 0, v, unit;

	if (len == 0)
		return -1;
	while (s < end) {
		if (!isdigit((unsigned char)*s))
			return -1;
		for (v = 0; s < end && isdigit((unsigned char)*s); s++) {
			v = v * 10 + (*s - '0');
			if (v > RETRY_TIME_MAX)
				return -1;
		}
		if (s == end)
			return -1;	/* Exim wants a unit on every number */
		switch (*s++) {
		case 'w': unit = 7 * 24 * 3600; break;
		case 'd': unit = 24 * 3600; break;
		case 'h': unit = 3600; break;
		case 'm': unit = 60; break;
		case 's': unit = 1; break;
		default: return -1;
		}
		if (v > RETRY_TIME_MAX / unit)
			return -1;
		total += v * unit;
		if (total > RETRY_TIME_MAX)
			return -1;
	}
	return total;
}

/* Exim's readconf_readfixed: digits, then "." and decimals, x1000; decimals
 * past the third are dropped, as Exim does. -1 when malformed. */
static int64_t
retry_parse_fixed(const char *s, size_t len)
{
	const char *end = s + len;
	int64_t v = 0, m = 100;

	if (len == 0 || !isdigit((unsigned char)*s))
		return -1;
	for (; s < end && isdigit((unsigned char)*s); s++) {
		v = v * 10 + (*s - '0');
		if (v > RETRY_MULT_MAX)
			return -1;
	}
	v *= 1000;
	if (s < end && *s == '.') {
		for (s++; s < end && isdigit((unsigned char)*s); s++) {
			v += (*s - '0') * m;
			m /= 10;
		}
	}
	return s == end ? v : -1;
}

/* ---- one line ---- */

struct retry_cursor {
	const char *p, *end;
};

static void
retry_skip_space(struct retry_cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

static bool
retry_at_space_or_end(const struct retry_cursor *c)
{
	return c->p == c->end || *c->p == ' ' || *c->p == '\t';
}

/*
 * A field: "quoted, with \" and \\ escapes" or a run of non-blanks
 * (Exim's string_dequote). Returns an allocated string, or NULL with msg.
 */
static char *
retry_field(struct retry_cursor *c, const char *what, char *msg, size_t msgsz)
{
	struct buf b;
	const char *start = c->p;
	char *r;

	if (c->p < c->end && *c->p == '"') {
		buf_init(&b, RETRY_LINE_MAX);
		for (c->p++; c->p < c->end && *c->p != '"'; c->p++) {
			if (*c->p == '\\' && c->p + 1 < c->end)
				c->p++;
			buf_append_char(&b, *c->p);
		}
		if (c->p == c->end) {
			buf_free(&b);
			snprintf(msg, msgsz, "missing closing quote in %s", what);
			return NULL;
		}
		c->p++;
		if (!retry_at_space_or_end(c)) {
			buf_free(&b);
			snprintf(msg, msgsz, "white space expected after the quoted %s", what);
			return NULL;
		}
		r = retry_xstrndup(buf_data(&b), buf_len(&b));
		buf_free(&b);
		return r;
	}
	while (!retry_at_space_or_end(c))
		c->p++;
	return retry_xstrndup(start, (size_t)(c->p - start));
}

/* Can tern match this address-list item? NULL, or why not. */
static const char *
retry_item_check(const char *item, size_t len)
{
	const char *s = item, *end = item + len;

	if (s < end && *s == '!')
		for (s++; s < end && (*s == ' ' || *s == '\t'); s++)
			;
	if (s < end && *s == '^')
		return "regular expressions are not supported";
	if (s < end && *s == '+')
		return "named lists are not supported";
	if (s + 1 < end && s[0] == '@' && s[1] == '@')
		return "@@ lookups are not supported";
	if (memchr(s, ';', (size_t)(end - s)) != NULL)
		return "lookups are not supported";
	if (s < end && *s == '/')
		return "file names are not supported";
	if (s < end && *s == '<')
		return "a separator change is only allowed at the start of senders=";
	return NULL;
}

/* A senders= list: separator ':' ("::" is a literal colon), or "<X" first
 * to change it, as in Exim lists. Checks each item. */
static const char *
retry_senders_check(const char *list, char *msg, size_t msgsz)
{
	const char *s = list, *why;
	char sep = ':';
	struct buf item;

	if (*s == '\0') {
		snprintf(msg, msgsz, "empty senders= list (senders=: matches the null sender)");
		return msg;
	}
	if (strcmp(s, "<>") == 0) {
		snprintf(msg, msgsz, "senders=<> is an empty list with separator \">\"; write "
		         "senders=: for the null sender");
		return msg;
	}
	if (s[0] == '<' && s[1] != '\0' && ispunct((unsigned char)s[1]))
		sep = s[1], s += 2;
	buf_init(&item, RETRY_LINE_MAX);
	for (;;) {
		buf_reset(&item);
		for (; *s; s++) {
			if (*s == sep && s[1] == sep) {
				buf_append_char(&item, sep);
				s++;
			} else if (*s == sep) {
				break;
			} else {
				buf_append_char(&item, *s);
			}
		}
		why = retry_item_check(buf_data(&item), buf_len(&item));
		if (why != NULL) {
			snprintf(msg, msgsz, "bad senders= list: %s (\"%s\")", why, buf_cstr(&item));
			buf_free(&item);
			return msg;
		}
		if (*s == '\0')
			break;
		s++;
	}
	buf_free(&item);
	return NULL;
}

/* The end of the line's content: before a comment ("#" at the start or
 * after white space, outside quotes), trailing blanks trimmed. */
static const char *
retry_content_end(const char *s, const char *end)
{
	const char *p;
	bool quoted = false;

	for (p = s; p < end; p++) {
		if (quoted && *p == '\\' && p + 1 < end)
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t'))
			break;
	}
	while (p > s && (p[-1] == ' ' || p[-1] == '\t'))
		p--;
	return p;
}

/* One argument of a set: ',' then a time or number, ended by blank, ',' or ';'. */
static const char *
retry_set_arg(struct retry_cursor *c, char letter, const char *what, bool fixed, int64_t *out,
              char *msg, size_t msgsz)
{
	const char *start;
	const char *form = letter == 'F' ? "F,cutoff,interval" : "G,cutoff,start,multiplier";

	retry_skip_space(c);
	if (c->p == c->end || *c->p != ',') {
		snprintf(msg, msgsz, "%c rule: missing %s (%s)", letter, what, form);
		return msg;
	}
	c->p++;
	retry_skip_space(c);
	for (start = c->p; c->p < c->end && (isalnum((unsigned char)*c->p) || (fixed && *c->p == '.'));)
		c->p++;
	if (c->p < c->end && !retry_at_space_or_end(c) && *c->p != ',' && *c->p != ';') {
		snprintf(msg, msgsz, "%c rule: comma or semicolon expected at \"%.*s\"", letter,
		         (int)(c->end - c->p), c->p);
		return msg;
	}
	if (c->p == start) {
		snprintf(msg, msgsz, "%c rule: missing %s (%s)", letter, what, form);
		return msg;
	}
	*out = fixed ? retry_parse_fixed(start, (size_t)(c->p - start))
	             : retry_parse_time(start, (size_t)(c->p - start));
	if (*out < 0 && fixed) {
		snprintf(msg, msgsz, "%c rule: %s \"%.*s\" is not a decimal number (such as 1.5)",
		         letter, what, (int)(c->p - start), start);
		return msg;
	}
	if (*out < 0) {
		snprintf(msg, msgsz, "%c rule: %s \"%.*s\" is not a time (a number and a unit s, m, h, "
		         "d or w on each part, such as 15m or 1h30m)", letter, what,
		         (int)(c->p - start), start);
		return msg;
	}
	if (*out == 0 || (fixed && *out < 1000)) {
		/* Exim: "bad parameters for retry rule". */
		snprintf(msg, msgsz, "%c rule: %s \"%.*s\" must be %s", letter, what,
		         (int)(c->p - start), start, fixed ? "at least 1" : "greater than zero");
		return msg;
	}
	return NULL;
}

/* The sets after the error (and senders=): "F,2h,15m; G,16h,1h,1.5; ..." */
static const char *
retry_sets_parse(struct retry_cursor *c, struct retry_rule *r, char *msg, size_t msgsz)
{
	struct retry_set set;
	const char *err;

	retry_skip_space(c);
	while (c->p < c->end) {
		if (r->nsets == RETRY_SETS_MAX) {
			snprintf(msg, msgsz, "more than %d parameter sets", RETRY_SETS_MAX);
			return msg;
		}
		memset(&set, 0, sizeof(set));
		set.letter = (char)toupper((unsigned char)*c->p);
		if (set.letter != 'F' && set.letter != 'G' && set.letter != 'H') {
			snprintf(msg, msgsz, "unknown retry rule letter \"%c\" (F, G or H expected)", *c->p);
			return msg;
		}
		c->p++;
		err = retry_set_arg(c, set.letter, "cutoff", false, &set.cutoff, msg, msgsz);
		if (err == NULL)
			err = retry_set_arg(c, set.letter, set.letter == 'F' ? "interval" : "start", false,
			                    &set.p1, msg, msgsz);
		if (err == NULL && set.letter != 'F')
			err = retry_set_arg(c, set.letter, "multiplier", true, &set.mult, msg, msgsz);
		if (err != NULL)
			return err;
		r->sets[r->nsets++] = set;
		retry_skip_space(c);
		if (c->p < c->end && *c->p == ';') {
			c->p++;
			retry_skip_space(c);
		} else if (c->p < c->end) {
			snprintf(msg, msgsz, "semicolon expected before \"%.*s\"", (int)(c->end - c->p), c->p);
			return msg;
		}
	}
	return NULL;
}

/* One non-comment line into r. NULL, or a message in msg. */
static const char *
retry_line_parse(const char *s, const char *end, struct retry_rule *r, char *msg, size_t msgsz)
{
	struct retry_cursor c = { s, end };
	const char *err, *why, *cls;

	r->pattern = retry_field(&c, "pattern", msg, msgsz);
	if (r->pattern == NULL)
		return msg;
	if (r->pattern[0] == '\0' || strcmp(r->pattern, "!") == 0) {
		snprintf(msg, msgsz, "empty pattern");
		return msg;
	}
	why = retry_item_check(r->pattern, strlen(r->pattern));
	if (why != NULL) {
		snprintf(msg, msgsz, "pattern \"%s\": %s (use *, a domain, *.domain or local@domain)",
		         r->pattern, why);
		return msg;
	}
	retry_skip_space(&c);
	for (cls = c.p; !retry_at_space_or_end(&c); c.p++)
		;
	if (c.p == cls) {
		snprintf(msg, msgsz, "missing error type in retry rule (PATTERN ERROR [senders=LIST] "
		         "RULES)");
		return msg;
	}
	err = retry_errspec_parse(cls, (size_t)(c.p - cls), &r->err, msg, msgsz);
	if (err != NULL)
		return err;
	retry_skip_space(&c);
	if (c.end - c.p >= 7 && strncmp(c.p, "senders", 7) == 0) {
		c.p += 7;
		retry_skip_space(&c);
		if (c.p == c.end || *c.p != '=') {
			snprintf(msg, msgsz, "\"=\" expected after \"senders\" in retry rule");
			return msg;
		}
		c.p++;
		retry_skip_space(&c);
		r->senders = retry_field(&c, "senders= list", msg, msgsz);
		if (r->senders == NULL || retry_senders_check(r->senders, msg, msgsz) != NULL)
			return msg;
	}
	return retry_sets_parse(&c, r, msg, msgsz);
}

static void
retry_rule_clear(struct retry_rule *r)
{
	free(r->text);
	free(r->pattern);
	free(r->senders);
	free(r->sets);
	memset(r, 0, sizeof(*r));
}

void
retry_rules_free(struct retry_rules *rules)
{
	size_t i;

	if (rules == NULL)
		return;
	for (i = 0; i < rules->n; i++)
		retry_rule_clear(&rules->rule[i]);
	free(rules->rule);
	free(rules->filename);
	free(rules);
}

static void
retry_error_add(struct buf *errors, const char *file, unsigned line, const char *msg)
{
	if (errors != NULL)
		buf_append_printf(errors, "%s:%u: %s\n", file, line, msg);
}

struct retry_rules *
retry_rules_parse(const char *text, size_t len, const char *filename, struct buf *errors)
{
	struct retry_rules *rules = retry_xmalloc(sizeof(*rules));
	const char *p = text, *end = text + len, *eol, *s, *cend;
	char msg[RETRY_MSG_SIZE];
	struct retry_rule r;
	unsigned lineno = 0;
	bool bad = false;

	memset(rules, 0, sizeof(*rules));
	rules->filename = retry_xstrndup(filename ? filename : "retry_rules",
	                                 strlen(filename ? filename : "retry_rules"));
	for (; p < end; p = eol < end ? eol + 1 : end) {
		lineno++;
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		s = p;
		cend = eol > s && eol[-1] == '\r' ? eol - 1 : eol;
		if (memchr(s, '\0', (size_t)(cend - s)) != NULL) {
			retry_error_add(errors, rules->filename, lineno, "NUL byte in line");
			bad = true;
			continue;
		}
		if ((size_t)(cend - s) > RETRY_LINE_MAX) {
			snprintf(msg, sizeof(msg), "line longer than %d bytes", RETRY_LINE_MAX);
			retry_error_add(errors, rules->filename, lineno, msg);
			bad = true;
			continue;
		}
		while (s < cend && (*s == ' ' || *s == '\t'))
			s++;
		cend = retry_content_end(s, cend);
		if (s == cend)
			continue;	/* blank or comment */
		memset(&r, 0, sizeof(r));
		r.sets = retry_xmalloc(sizeof(struct retry_set) * RETRY_SETS_MAX);
		if (retry_line_parse(s, cend, &r, msg, sizeof(msg)) != NULL) {
			retry_error_add(errors, rules->filename, lineno, msg);
			retry_rule_clear(&r);
			bad = true;
			continue;
		}
		r.text = retry_xstrndup(s, (size_t)(cend - s));
		r.line = lineno;
		if (rules->n == rules->cap) {
			rules->cap = rules->cap ? rules->cap * 2 : 16;
			rules->rule = realloc(rules->rule, rules->cap * sizeof(*rules->rule));
			if (rules->rule == NULL)
				fatal("retry: out of memory");
		}
		rules->rule[rules->n++] = r;
	}
	if (bad) {
		retry_rules_free(rules);
		return NULL;
	}
	/* Only now are the rules' addresses stable. */
	for (size_t i = 0; i < rules->n; i++)
		rules->rule[i].file = rules->filename;
	return rules;
}

struct retry_rules *
retry_rules_load(const char *path, struct buf *errors)
{
	struct retry_rules *rules;
	struct stat st;
	struct buf text;
	ssize_t n;
	int fd;

	if (path == NULL || path[0] == '\0')
		return retry_rules_parse("", 0, "(none)", errors);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errors != NULL)
			buf_append_printf(errors, "%s: cannot open: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (errors != NULL)
			buf_append_printf(errors, "%s: not a regular file\n", path);
		close(fd);
		return NULL;
	}
	buf_init(&text, RETRY_FILE_MAX);
	while ((n = buf_read_fd(&text, fd, 64 * 1024)) > 0)
		;
	if (n < 0) {
		if (errors != NULL)
			buf_append_printf(errors, "%s: %s\n", path, errno == ENOBUFS
			                  ? "file too large for retry rules" : strerror(errno));
		buf_free(&text);
		close(fd);
		return NULL;
	}
	close(fd);
	rules = retry_rules_parse(buf_data(&text), buf_len(&text), path, errors);
	buf_free(&text);
	return rules;
}

int
retry_rules_check_file(const char *path, struct buf *errors)
{
	struct retry_rules *rules = retry_rules_load(path, errors);

	if (rules == NULL)
		return -1;
	retry_rules_free(rules);
	return 0;
}
