/*
 * map_parse: the source formats of maps, and the parsed table both map
 * types are made from.
 *
 * Logical lines follow tern's main.cf parser (config_parse.c), itself
 * after Postfix's readlline(): a line that starts with white space
 * continues the logical line before it (joined with one space); a blank
 * line or a line that starts in column one ends it; a comment is a line
 * whose first non-blank byte is '#' ("a b # c" keeps its '#'), and an
 * indented comment does not end a logical line. Then per format:
 *
 *   key value        postmap(1): the key ends at the first white space
 *                    outside double quotes (quotes and '\' escapes are
 *                    kept in the key, as Postfix 3.2+ keeps them); the
 *                    value is the rest, trimmed, and must not be empty.
 *   name: v1, v2     aliases(5): the name ends at the first ':' outside
 *                    quotes; a quoted name ("a b": x) is stored unquoted,
 *                    an unquoted one may not hold white space, ',', '"',
 *                    '@' or '%' (the name is local, as postalias(1)
 *                    insists). The value is kept as written and must hold
 *                    at least one item (map_alias_next() checks them).
 *
 * Limits and byte rules, each an error at the physical line: a line
 * longer than MAP_LINE_MAX, a NUL byte, bytes that are not UTF-8 (keys are
 * matched byte for byte, so a Latin-1 key could never match an SMTPUTF8
 * address; Postfix with smtputf8_enable skips such lines, we refuse the
 * file). A logical line longer than MAP_LINE_MAX, a key longer than
 * MAP_KEY_MAX: errors at the entry's first line.
 *
 * Keys are folded to lower case, ASCII only. XXX Postfix folds UTF-8 keys
 * with ICU when smtputf8_enable is set; a non-ASCII key here matches only
 * itself.
 *
 * Owns the table it fills; out of memory is fatal().
 */
#include "config/map_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/utf8.h"
#include "config/config_value.h"

#define MAP_INCLUDE_PREFIX ":include:"
/* Bytes asked of each read(2) of a source file. */
#define MAP_READ_CHUNK (64 * 1024)

/* ---- small helpers ---- */

void *
map_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("out of memory (map: %zu bytes)", n);
	return p;
}

char *
map_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(map_xmalloc(n), s, n);
}

void
map_fold(char *dst, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		dst[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	dst[len] = '\0';
}

static bool
map_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Trim white space at both ends of p[0..*len); returns the new start. */
static const char *
map_trim(const char *p, size_t *len)
{
	while (*len > 0 && map_is_space(p[0])) {
		p++;
		(*len)--;
	}
	while (*len > 0 && map_is_space(p[*len - 1]))
		(*len)--;
	return p;
}

/* ---- diagnostics ---- */

void
map_diag_add(struct map_diag *d, unsigned line, bool warning, const char *fmt, ...)
{
	struct buf msg;
	va_list ap;
	bool ok;

	if (!warning)
		d->errors++;
	if (d->out == NULL || d->lines > MAP_DIAG_LINES_MAX)
		return;
	if (d->lines++ == MAP_DIAG_LINES_MAX) {
		buf_append_printf(d->out, "%s: too many problems, the rest not reported\n", d->file);
		return;
	}
	/* Whole lines only: a full buffer drops the message; the count still
	 * fails the load. */
	buf_init(&msg, buf_room(d->out));
	ok = (line > 0 ? buf_append_printf(&msg, "%s:%u: ", d->file, line) :
	      buf_append_printf(&msg, "%s: ", d->file)) == BUF_OK;
	if (warning)
		ok = buf_append_str(&msg, "warning: ") == BUF_OK && ok;
	va_start(ap, fmt);
	ok = buf_append_vprintf(&msg, fmt, ap) == BUF_OK && ok;
	va_end(ap);
	ok = buf_append_char(&msg, '\n') == BUF_OK && ok;
	if (ok)
		buf_append(d->out, buf_data(&msg), buf_len(&msg));
	buf_free(&msg);
}

void
map_diag_line(struct buf *diag, const char *who, const char *fmt, ...)
{
	struct buf msg;
	va_list ap;
	bool ok;

	if (diag == NULL)
		return;
	buf_init(&msg, buf_room(diag));
	ok = buf_append_printf(&msg, "%s: ", who) == BUF_OK;
	va_start(ap, fmt);
	ok = buf_append_vprintf(&msg, fmt, ap) == BUF_OK && ok;
	va_end(ap);
	ok = buf_append_char(&msg, '\n') == BUF_OK && ok;
	if (ok)
		buf_append(diag, buf_data(&msg), buf_len(&msg));
	buf_free(&msg);
}

/* s as "s" for a message: escaped, cut at CONFIG_VALUE_QUOTE_MAX. */
static const char *
map_quote(struct buf *q, const char *s, size_t len)
{
	buf_init(q, CONFIG_VALUE_QUOTE_MAX * 8);
	config_value_quote(q, s, len);
	return buf_cstr(q);
}

/* ---- the table ---- */

void
map_table_init(struct map_table *t)
{
	memset(t, 0, sizeof(*t));
	idxhash_init(&t->index);
}

void
map_table_free(struct map_table *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->v[i].key);
	free(t->v);
	idxhash_free(&t->index);
	memset(t, 0, sizeof(*t));
}

struct map_table_key {
	const char *p;
	size_t len;
};

static bool
map_table_match(size_t pos, const void *key, const void *ctx)
{
	const struct map_table *t = ctx;
	const struct map_table_key *k = key;

	return t->v[pos].klen == k->len && memcmp(t->v[pos].key, k->p, k->len) == 0;
}

const struct map_entry *
map_table_find(const struct map_table *t, const char *key, size_t klen)
{
	struct map_table_key k = { key, klen };
	size_t pos;

	pos = idxhash_find(&t->index, idxhash_bytes(key, klen), map_table_match, &k, t);
	return pos == IDXHASH_NONE ? NULL : &t->v[pos];
}

/* Add key (folded here) -> value; a duplicate is a warning, the first wins. */
static void
map_table_add(struct map_table *t, struct map_diag *d, unsigned line, const char *key,
              size_t klen, const char *value, size_t vlen)
{
	const struct map_entry *old;
	struct map_entry *e;
	struct buf q;
	char *mem;

	mem = map_xmalloc(klen + vlen + 2);
	map_fold(mem, key, klen);
	if ((old = map_table_find(t, mem, klen)) != NULL) {
		map_diag_add(d, line, true, "duplicate entry %s ignored (the first, at line %u, wins)",
		             map_quote(&q, mem, klen), old->line);
		buf_free(&q);
		free(mem);
		return;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct map_entry *v = realloc(t->v, cap * sizeof(*v));

		if (v == NULL)
			fatal("out of memory (map of %zu entries)", cap);
		t->v = v;
		t->cap = cap;
	}
	memcpy(mem + klen + 1, value, vlen);
	mem[klen + 1 + vlen] = '\0';
	e = &t->v[t->n];
	e->key = mem;
	e->klen = klen;
	e->value = mem + klen + 1;
	e->vlen = vlen;
	e->line = line;
	idxhash_add(&t->index, idxhash_bytes(mem, klen), t->n);
	t->n++;
}

/* ---- aliases(5) values ---- */

/* The quoted string at p[0] == '"' (len bytes): its length with both
 * quotes, or 0 when it is not closed. '\' escapes the next byte. */
static size_t
map_quoted_len(const char *p, size_t len)
{
	size_t i;

	for (i = 1; i < len; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
	}
	return 0;
}

/* Copy the quoted string p (qlen bytes, quotes included) unquoted. */
static size_t
map_unquote(char *dst, const char *p, size_t qlen)
{
	size_t i, n = 0;

	for (i = 1; i + 1 < qlen; i++) {
		if (p[i] == '\\' && i + 2 < qlen)
			i++;
		dst[n++] = p[i];
	}
	dst[n] = '\0';
	return n;
}

/* Classify text (len bytes, trimmed, unquoted) into item. */
static int
map_alias_classify(const char *text, size_t len, struct map_alias_item *item, const char **why)
{
	size_t plen = strlen(MAP_INCLUDE_PREFIX);
	const char *p = text;

	if (len > 0 && text[0] == '|') {
		item->kind = MAP_ALIAS_COMMAND;
		p++, len--;
	} else if (len > 0 && text[0] == '/') {
		item->kind = MAP_ALIAS_FILE;
	} else if (len >= plen && strncasecmp(text, MAP_INCLUDE_PREFIX, plen) == 0) {
		item->kind = MAP_ALIAS_INCLUDE;
		p += plen, len -= plen;
	} else {
		item->kind = MAP_ALIAS_ADDRESS;
	}
	p = map_trim(p, &len);
	if (item->kind == MAP_ALIAS_COMMAND && len == 0) {
		*why = "empty command after '|'";
		return -1;
	}
	if (item->kind == MAP_ALIAS_INCLUDE && (len == 0 || p[0] != '/')) {
		*why = ":include: needs an absolute path";
		return -1;
	}
	memmove(item->text, p, len);
	item->text[len] = '\0';
	return 1;
}

int
map_alias_next(const char *value, size_t len, size_t *pos, struct map_alias_item *item,
               const char **why)
{
	char unq[MAP_ALIAS_ITEM_MAX + 1];
	size_t i = *pos, start, ilen, qlen;
	const char *p;
	bool in_quotes = false;

	while (i < len && (value[i] == ',' || map_is_space(value[i])))
		i++;
	if (i >= len) {
		*pos = len;
		return 0;
	}
	for (start = i; i < len; i++) {
		if (in_quotes && value[i] == '\\')
			i++;
		else if (value[i] == '"')
			in_quotes = !in_quotes;
		else if (value[i] == ',' && !in_quotes)
			break;
	}
	if (in_quotes) {
		*why = "unbalanced '\"'";
		return -1;
	}
	*pos = i > len ? len : i;
	ilen = *pos - start;
	p = map_trim(value + start, &ilen);
	if (ilen > MAP_ALIAS_ITEM_MAX) {
		*why = "alias item too long";
		return -1;
	}
	/* One quoted string: "|cmd arg", "/path", ":include:/path", "a b". */
	if (p[0] == '"' && (qlen = map_quoted_len(p, ilen)) == ilen) {
		size_t ulen = map_unquote(unq, p, qlen);

		if (map_alias_classify(unq, ulen, item, why) < 0)
			return -1;
		if (item->kind != MAP_ALIAS_ADDRESS)
			return 1;
	}
	return map_alias_classify(p, ilen, item, why);
}

/* ---- one logical line per format ---- */

struct map_parse {
	struct map_table *t;
	struct map_diag d;
	unsigned flags;
	bool warned_colon;	/* "is this an aliases file?" said once */
	/* the logical line being gathered */
	struct buf logical;
	unsigned start_line;
	bool active;
	bool bad;		/* an error was reported for it: drop it */
	bool too_long;		/* it passed MAP_LINE_MAX */
};

static void
map_parse_kv(struct map_parse *ps, const char *text, size_t len)
{
	const char *value;
	size_t i, vlen;
	bool in_quotes = false;
	struct buf q;

	for (i = 0; i < len; i++) {
		if (text[i] == '\\') {
			i++;
		} else if (text[i] == '"') {
			in_quotes = !in_quotes;
		} else if (map_is_space(text[i]) && !in_quotes) {
			break;
		}
	}
	if (i > len)
		i = len;
	if (in_quotes) {
		map_diag_add(&ps->d, ps->start_line, false, "unbalanced '\"' in key %s",
		             map_quote(&q, text, len));
		buf_free(&q);
		return;
	}
	vlen = len - i;
	value = map_trim(text + i, &vlen);
	if (vlen == 0) {
		map_diag_add(&ps->d, ps->start_line, false,
		             "expected \"key value\": no value after key %s", map_quote(&q, text, i));
		buf_free(&q);
		return;
	}
	if (i > MAP_KEY_MAX) {
		map_diag_add(&ps->d, ps->start_line, false, "key longer than %d bytes", MAP_KEY_MAX);
		return;
	}
	if (text[i - 1] == ':' && !ps->warned_colon) {
		ps->warned_colon = true;
		map_diag_add(&ps->d, ps->start_line, true,
		             "key %s is in \"name: value\" form; is this an aliases file "
		             "(ternctl map build --aliases)?", map_quote(&q, text, i));
		buf_free(&q);
	}
	map_table_add(ps->t, &ps->d, ps->start_line, text, i, value, vlen);
}

/* The name before the ':' (trimmed, non-empty) into key; its length or 0. */
static size_t
map_parse_alias_name(struct map_parse *ps, const char *name, size_t nlen, char *key)
{
	const char *why = NULL;
	size_t i, qlen, klen = 0;

	if (name[0] == '"') {
		qlen = map_quoted_len(name, nlen);
		if (qlen == 0)
			why = "unbalanced '\"' in the alias name";
		else if (qlen != nlen)
			why = "text after the quoted alias name";
		else if (qlen - 2 <= MAP_KEY_MAX && (klen = map_unquote(key, name, qlen)) == 0)
			why = "empty alias name";
	} else {
		for (i = 0; i < nlen && why == NULL; i++) {
			if (map_is_space(name[i]))
				why = "white space in the alias name (quote it: \"a b\": ...)";
			else if (name[i] == '"')
				why = "'\"' inside the alias name";
			else if (name[i] == ',')
				why = "',' in the alias name (expected \"name: value, value\")";
			else if (name[i] == '@' || name[i] == '%')
				why = "the alias name must be local (no '@' or '%')";
		}
		if (why == NULL && nlen <= MAP_KEY_MAX) {
			memcpy(key, name, nlen);
			key[klen = nlen] = '\0';
		}
	}
	if (why != NULL) {
		map_diag_add(&ps->d, ps->start_line, false, "%s", why);
		return 0;
	}
	if (klen == 0)	/* unquoting only shortens: quoted and still too long */
		map_diag_add(&ps->d, ps->start_line, false, "alias name longer than %d bytes",
		             MAP_KEY_MAX);
	return klen;
}

static void
map_parse_alias(struct map_parse *ps, const char *text, size_t len)
{
	struct map_alias_item *item;
	char key[MAP_KEY_MAX + 1];
	const char *name, *value, *why;
	size_t i, nlen, vlen, klen, pos = 0;
	bool in_quotes = false;
	int rc, items = 0;

	for (i = 0; i < len; i++) {
		if (in_quotes && text[i] == '\\')
			i++;
		else if (text[i] == '"')
			in_quotes = !in_quotes;
		else if (text[i] == ':' && !in_quotes)
			break;
	}
	if (i >= len) {
		map_diag_add(&ps->d, ps->start_line, false,
		             in_quotes ? "unbalanced '\"'" :
		             "expected \"name: value\" (aliases(5) format): no ':'");
		return;
	}
	nlen = i;
	name = map_trim(text, &nlen);
	vlen = len - i - 1;
	value = map_trim(text + i + 1, &vlen);
	if (nlen == 0) {
		map_diag_add(&ps->d, ps->start_line, false, "missing alias name before ':'");
		return;
	}
	if ((klen = map_parse_alias_name(ps, name, nlen, key)) == 0)
		return;
	if (vlen == 0) {
		map_diag_add(&ps->d, ps->start_line, false, "missing value after \"%s:\"", key);
		return;
	}
	item = map_xmalloc(sizeof(*item));
	while ((rc = map_alias_next(value, vlen, &pos, item, &why)) > 0)
		items++;
	free(item);
	if (rc < 0) {
		map_diag_add(&ps->d, ps->start_line, false, "%s", why);
		return;
	}
	if (items == 0) {
		map_diag_add(&ps->d, ps->start_line, false, "no address after \"%s:\"", key);
		return;
	}
	map_table_add(ps->t, &ps->d, ps->start_line, key, klen, value, vlen);
}

/* ---- logical lines ---- */

static void
map_parse_flush(struct map_parse *ps)
{
	if (!ps->active)
		return;
	ps->active = false;
	if (ps->bad)
		return;
	if (ps->too_long) {
		map_diag_add(&ps->d, ps->start_line, false, "entry longer than %d bytes",
		             MAP_LINE_MAX);
		return;
	}
	if (ps->flags & MAP_F_ALIASES)
		map_parse_alias(ps, buf_data(&ps->logical), buf_len(&ps->logical));
	else
		map_parse_kv(ps, buf_data(&ps->logical), buf_len(&ps->logical));
}

/* The first byte rule that p (len bytes, at most MAP_LINE_MAX) breaks, or NULL. */
static const char *
map_parse_bytes(const char *p, size_t len)
{
	size_t i, n;

	if (memchr(p, '\0', len) != NULL)
		return "NUL byte in line";
	for (i = 0; i < len; i += n) {
		n = (unsigned char)p[i] < 0x80 ? 1 : utf8_sequence_len(p + i, len - i);
		if (n == 0)
			return "invalid UTF-8";
	}
	return NULL;
}

/* One physical line, without its LF. */
static void
map_parse_physical(struct map_parse *ps, const char *p, size_t len, unsigned lineno)
{
	const char *why = len > MAP_LINE_MAX ? "line too long" : map_parse_bytes(p, len);
	size_t indent = 0;

	while (indent < len && map_is_space(p[indent]))
		indent++;
	if (why != NULL) {
		if (len > MAP_LINE_MAX)
			map_diag_add(&ps->d, lineno, false, "line longer than %d bytes", MAP_LINE_MAX);
		else
			map_diag_add(&ps->d, lineno, false, "%s", why);
		if (indent == 0 || !ps->active) {
			map_parse_flush(ps);
			ps->active = true;
			ps->start_line = lineno;
		}
		ps->bad = true;
		return;
	}
	if (indent == len) {
		map_parse_flush(ps);	/* blank: ends a logical line */
		return;
	}
	if (p[indent] == '#') {
		if (indent == 0)
			map_parse_flush(ps);
		return;
	}
	while (len > indent && map_is_space(p[len - 1]))
		len--;
	if (indent > 0) {
		if (!ps->active) {
			map_diag_add(&ps->d, lineno, false,
			             "continuation line without an entry before it");
			return;
		}
		/* Over MAP_LINE_MAX: reported at the flush. */
		if (buf_append_char(&ps->logical, ' ') != BUF_OK ||
		    buf_append(&ps->logical, p + indent, len - indent) != BUF_OK)
			ps->too_long = true;
		return;
	}
	map_parse_flush(ps);
	ps->active = true;
	ps->bad = false;
	ps->too_long = false;
	ps->start_line = lineno;
	buf_reset(&ps->logical);
	buf_append(&ps->logical, p, len);
}

unsigned
map_parse_text(const char *text, size_t len, const char *file, unsigned flags,
               struct map_table *t, struct buf *diag)
{
	struct map_parse ps = { .t = t, .flags = flags };
	const char *p = text, *end = text + len, *lf;
	unsigned lineno = 0;

	ps.d.out = diag;
	ps.d.file = file;
	buf_init(&ps.logical, MAP_LINE_MAX);
	while (p < end) {
		lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL)
			lf = end;	/* a last line without LF counts */
		map_parse_physical(&ps, p, (size_t)(lf - p), ++lineno);
		p = lf + 1;
	}
	map_parse_flush(&ps);
	buf_free(&ps.logical);
	return ps.d.errors;
}

/* ---- files ---- */

/* Read the whole file at path into b (max MAP_FILE_MAX). */
enum map_status
map_read_file(const char *path, struct buf *b, struct buf *diag)
{
	struct stat st;
	ssize_t n;
	char *dst;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		saved = errno;
		map_diag_line(diag, path, "cannot open: %s", strerror(saved));
		return saved == ENOENT ? MAP_ERR_NOINPUT : MAP_ERR_IO;
	}
	if (fstat(fd, &st) < 0) {
		map_diag_line(diag, path, "cannot stat: %s", strerror(errno));
		close(fd);
		return MAP_ERR_IO;
	}
	if (!S_ISREG(st.st_mode)) {
		map_diag_line(diag, path, "not a regular file");
		close(fd);
		return MAP_ERR_IO;
	}
	for (;;) {
		char probe;
		size_t want = buf_room(b) < MAP_READ_CHUNK ? buf_room(b) : MAP_READ_CHUNK;

		/* Full: one more byte says whether the file is larger. */
		dst = want > 0 ? buf_reserve(b, want) : &probe;
		n = read(fd, dst, want > 0 ? want : 1);
		if (n > 0 && want == 0) {
			map_diag_line(diag, path, "larger than %zu bytes", MAP_FILE_MAX);
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			map_diag_line(diag, path, "cannot read: %s", strerror(errno));
			break;
		}
		if (n == 0) {
			close(fd);
			return MAP_OK;
		}
		buf_commit(b, (size_t)n);
	}
	close(fd);
	return MAP_ERR_IO;
}

enum map_status
map_load_file(const char *path, unsigned flags, struct map_table *t, struct buf *diag)
{
	enum map_status st;
	struct buf text;

	buf_init(&text, MAP_FILE_MAX);
	st = map_read_file(path, &text, diag);
	if (st == MAP_OK && map_parse_text(buf_data(&text), buf_len(&text), path, flags, t,
	                                   diag) > 0)
		st = MAP_ERR_DATA;
	buf_free(&text);
	return st;
}

/* ---- logical lines of the pattern tables (regexp:, cidr:) ---- */

/* Logical lines of a rule table. */
struct map_lines {
	const char *p, *end;
	unsigned lineno;	/* physical lines read so far */
	unsigned line;		/* where the current logical line starts */
	bool too_long;
	struct buf logical;	/* the current logical line, trailing blanks cut */
};

static void
map_lines_init(struct map_lines *ls, const char *text, size_t len)
{
	memset(ls, 0, sizeof(*ls));
	ls->p = text;
	ls->end = text + len;
	buf_init(&ls->logical, MAP_LINE_MAX);
}

static void
map_lines_free(struct map_lines *ls)
{
	buf_free(&ls->logical);
}

/* Is the physical line at p (len bytes) blank or a comment? */
static bool
map_lines_skip(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && map_is_space(p[i]))
		i++;
	return i == len || p[i] == '#';
}

/*
 * regexp_table(5) and cidr_table(5): a logical line starts with text in
 * column one; a following line that starts with white space continues it
 * (its LF dropped, the white space kept, so a pattern may be split
 * anywhere); blank and comment lines are skipped and end nothing.
 */
static int
map_lines_next(struct map_lines *ls, struct map_diag *d)
{
	const char *lf;
	size_t len;
	bool orphan;

	for (;;) {
		/* The first line of an entry: not blank, not a comment. */
		for (;;) {
			if (ls->p >= ls->end)
				return 0;
			lf = memchr(ls->p, '\n', (size_t)(ls->end - ls->p));
			len = lf != NULL ? (size_t)(lf - ls->p) : (size_t)(ls->end - ls->p);
			ls->lineno++;
			if (!map_lines_skip(ls->p, len))
				break;
			ls->p += len + 1;
		}
		orphan = map_is_space(ls->p[0]);
		ls->line = ls->lineno;
		buf_reset(&ls->logical);
		ls->too_long = buf_append(&ls->logical, ls->p, len) != BUF_OK;
		ls->p += len + 1;
		while (ls->p < ls->end) {
			lf = memchr(ls->p, '\n', (size_t)(ls->end - ls->p));
			len = lf != NULL ? (size_t)(lf - ls->p) : (size_t)(ls->end - ls->p);
			if (!map_lines_skip(ls->p, len) && !map_is_space(ls->p[0]))
				break;
			ls->lineno++;
			if (!map_lines_skip(ls->p, len) && buf_append(&ls->logical, ls->p, len) != BUF_OK)
				ls->too_long = true;
			ls->p += len + 1;
		}
		len = buf_len(&ls->logical);
		while (len > 0 && map_is_space(buf_data(&ls->logical)[len - 1]))
			len--;
		buf_truncate(&ls->logical, len);
		if (orphan)
			map_diag_add(d, ls->line, false, "continuation line without an entry before it");
		else if (memchr(buf_data(&ls->logical), '\0', buf_len(&ls->logical)) != NULL)
			map_diag_add(d, ls->line, false, "NUL byte in line");
		else if (ls->too_long)
			map_diag_add(d, ls->line, false, "entry longer than %d bytes", MAP_LINE_MAX);
		else
			return 1;
	}
}

bool
map_ifs_push(struct map_ifs *ifs, size_t at, unsigned line, struct map_diag *d)
{
	if (ifs->depth == MAP_IF_DEPTH_MAX) {
		map_diag_add(d, line, false, "if nested deeper than %d", MAP_IF_DEPTH_MAX);
		return false;
	}
	ifs->at[ifs->depth] = at;
	ifs->line[ifs->depth++] = line;
	return true;
}

bool
map_ifs_pop(struct map_ifs *ifs, size_t *at, unsigned line, struct map_diag *d)
{
	if (ifs->depth == 0) {
		map_diag_add(d, line, false, "endif without if");
		return false;
	}
	*at = ifs->at[--ifs->depth];
	return true;
}

unsigned
map_rules_parse(const char *text, size_t len, const char *file, map_rule_line_fn *fn, void *arg,
                struct buf *diag)
{
	struct map_diag d = { .out = diag, .file = file };
	struct map_ifs ifs = { .depth = 0 };
	struct map_lines ls;

	map_lines_init(&ls, text, len);
	while (map_lines_next(&ls, &d) > 0)
		fn(arg, buf_data(&ls.logical), buf_len(&ls.logical), ls.line, &ifs, &d);
	map_lines_free(&ls);
	while (ifs.depth > 0)
		map_diag_add(&d, ifs.line[--ifs.depth], false, "if without endif");
	return d.errors;
}
