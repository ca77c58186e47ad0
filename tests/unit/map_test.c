/*
 * map_test: the maps module. Table-driven: the two source formats (each
 * syntax error with its exact FILE:LINE text, continuations, comments,
 * duplicates, case folding, quoting, byte rules), alias value items,
 * texthash and lmdb lookups, builds (atomic replacement while a reader
 * is open, in another process too; failed builds leave the old map; the
 * format record; file modes), missing and vanishing files, lists (first
 * hit, errors stop the search), and Postfix's address and domain orders.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/buf.h"
#include "config/config.h"
#include "config/map.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define DIAG_MAX (1024 * 1024)
#define ERR_SIZE 1024
#define TMP_TEMPLATE "/tmp/tern-map-test-XXXXXX"
#define PATH_SIZE 512

/* ---- helpers ---- */

static char test_dir[PATH_SIZE];

static void
dir_make(void)
{
	snprintf(test_dir, sizeof(test_dir), "%s", TMP_TEMPLATE);
	ck_assert_ptr_nonnull(mkdtemp(test_dir));
}

/* Remove the test directory (flat: files only). */
static void
dir_remove(void)
{
	char path[PATH_SIZE * 2];
	struct dirent *de;
	DIR *d = opendir(test_dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", test_dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(test_dir);
}

/* Names in the test directory, sorted, one per line. */
static void
dir_list(struct buf *out)
{
	char *names[64];
	struct dirent *de;
	size_t n = 0, i, j;
	DIR *d = opendir(test_dir);

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL && n < NELEM(names))
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(d);
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];

			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	for (i = 0; i < n; i++) {
		buf_append_printf(out, "%s\n", names[i]);
		free(names[i]);
	}
}

static const char *
path_in(char *dst, const char *name)
{
	int n = snprintf(dst, PATH_SIZE, "%s/%s", test_dir, name);

	ck_assert(n > 0 && n < PATH_SIZE);
	return dst;
}

static void
file_write(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static void
file_write_str(const char *path, const char *text)
{
	file_write(path, text, strlen(text));
}

/* Look key up; returns the value (static copy) or NULL when not found;
 * an error fails the test. */
static const char *
lookup(struct map *m, const char *key)
{
	static char copy[MAP_VALUE_MAX + 1];
	char err[ERR_SIZE] = "";
	struct buf v;
	enum map_result r;

	buf_init(&v, MAP_VALUE_MAX + 1);
	r = map_lookup(m, key, &v, err, sizeof(err));
	ck_assert_msg(r != MAP_ERROR, "lookup %s: %s", key, err);
	if (r == MAP_NOTFOUND) {
		ck_assert_uint_eq(buf_len(&v), 0);
		buf_free(&v);
		return NULL;
	}
	snprintf(copy, sizeof(copy), "%s", buf_cstr(&v));
	buf_free(&v);
	return copy;
}

static struct map *
open_ok(const char *spec, unsigned flags)
{
	struct buf diag;
	struct map *m;
	enum map_status st;

	buf_init(&diag, DIAG_MAX);
	st = map_open(spec, flags, &m, &diag);
	ck_assert_msg(st == MAP_OK, "open %s: %d: %s", spec, st, buf_cstr(&diag));
	buf_free(&diag);
	return m;
}

static void
build_ok(const char *path, unsigned flags)
{
	struct buf diag;
	enum map_status st;

	buf_init(&diag, DIAG_MAX);
	st = map_build(path, flags, &diag, NULL);
	ck_assert_msg(st == MAP_OK, "build %s: %d: %s", path, st, buf_cstr(&diag));
	buf_free(&diag);
}

/* ---- source formats ---- */

struct kv {
	const char *key;
	const char *value;	/* NULL: not found */
};

struct parse_case {
	unsigned flags;
	const char *text;
	size_t len;		/* 0: strlen(text) */
	enum map_status st;
	const char *diag;	/* exactly */
	struct kv kv[4];
};

#define A MAP_F_ALIASES

static const struct parse_case parse_cases[] = {
	/* ---- key value (postmap) ---- */
	{ 0, "a b\n", 0, MAP_OK, "", { { "a", "b" }, { "b", NULL } } },
	{ 0, "", 0, MAP_OK, "", { { "a", NULL } } },
	{ 0, "# comment\n\n   \nKey Value With  Spaces  \n", 0, MAP_OK, "",
	  { { "key", "Value With  Spaces" }, { "KEY", "Value With  Spaces" } } },
	/* continuations: one space each; an indented comment does not end it */
	{ 0, "k v1\n  v2\n\tv3\n  # inside\n v4\nx y\n", 0, MAP_OK, "",
	  { { "k", "v1 v2 v3 v4" }, { "x", "y" } } },
	{ 0, "k\n  v\n", 0, MAP_OK, "", { { "k", "v" } } },
	{ 0, "k v\r\nx y\r\n", 0, MAP_OK, "", { { "k", "v" }, { "x", "y" } } },
	{ 0, "k v # not a comment\n", 0, MAP_OK, "", { { "k", "v # not a comment" } } },
	{ 0, "a 1\nb 2", 0, MAP_OK, "", { { "a", "1" }, { "b", "2" } } },
	/* a column-one comment or a blank line ends the logical line */
	{ 0, "a 1\n# c\n  2\n", 0, MAP_ERR_DATA,
	  "m:3: continuation line without an entry before it\n", { { NULL, NULL } } },
	{ 0, "a 1\n\n  2\n", 0, MAP_ERR_DATA,
	  "m:3: continuation line without an entry before it\n", { { NULL, NULL } } },
	{ 0, "  a 1\n", 0, MAP_ERR_DATA,
	  "m:1: continuation line without an entry before it\n", { { NULL, NULL } } },
	{ 0, "x 1\na\n", 0, MAP_ERR_DATA,
	  "m:2: expected \"key value\": no value after key \"a\"\n", { { NULL, NULL } } },
	/* quoted keys (Postfix 3.2): kept quoted; '\' escapes */
	{ 0, "\"a b\"@Example.org c\n", 0, MAP_OK, "",
	  { { "\"A B\"@example.ORG", "c" }, { "a b@example.org", NULL } } },
	{ 0, "a\\ b c\n", 0, MAP_OK, "", { { "a\\ b", "c" } } },
	{ 0, "\"a b c\n", 0, MAP_ERR_DATA, "m:1: unbalanced '\"' in key \"\"a b c\"\n",
	  { { NULL, NULL } } },
	/* duplicates: a warning, the first wins */
	{ 0, "A 1\nb 2\na 3\n", 0, MAP_OK,
	  "m:3: warning: duplicate entry \"a\" ignored (the first, at line 1, wins)\n",
	  { { "a", "1" }, { "b", "2" } } },
	{ 0, "root: x\nbin: y\n", 0, MAP_OK,
	  "m:1: warning: key \"root:\" is in \"name: value\" form; is this an aliases file "
	  "(ternctl map build --aliases)?\n", { { "root:", "x" }, { "root", NULL } } },
	/* bytes */
	{ 0, "a 1\nb \0 2\nc 3\n", 14, MAP_ERR_DATA, "m:2: NUL byte in line\n",
	  { { NULL, NULL } } },
	{ 0, "a \xff\n", 0, MAP_ERR_DATA, "m:1: invalid UTF-8\n", { { NULL, NULL } } },
	{ 0, "a \xc0\xaf\n", 0, MAP_ERR_DATA, "m:1: invalid UTF-8\n", { { NULL, NULL } } },
	{ 0, "a \xed\xa0\x80\n", 0, MAP_ERR_DATA, "m:1: invalid UTF-8\n", { { NULL, NULL } } },
	{ 0, "a 1\n  \x80\n", 0, MAP_ERR_DATA, "m:2: invalid UTF-8\n", { { NULL, NULL } } },
	{ 0, "k \xc3\xa9t\xc3\xa9\n\xc3\x89T\xc3\xa9 v\n", 0, MAP_OK, "",
	  { { "K", "\xc3\xa9t\xc3\xa9" }, { "\xc3\x89t\xc3\xa9", "v" },
	    { "\xc3\xa9t\xc3\xa9", NULL } } },	/* ASCII folding only */
	/* every error is reported; a bad line's continuations go with it */
	{ 0, "a\nb 1\nc \xff\n  more\nd\n", 0, MAP_ERR_DATA,
	  "m:1: expected \"key value\": no value after key \"a\"\n"
	  "m:3: invalid UTF-8\n"
	  "m:5: expected \"key value\": no value after key \"d\"\n", { { NULL, NULL } } },

	/* ---- aliases(5) ---- */
	{ A, "root: alice, bob\n", 0, MAP_OK, "", { { "root", "alice, bob" }, { "ROOT", "alice, bob" } } },
	{ A, "Root: alice,\n  bob,\n\tcarol\n# c\nx: y\n", 0, MAP_OK, "",
	  { { "root", "alice, bob, carol" }, { "x", "y" } } },
	{ A, "\"a b\": x\n\"a\\\"b\": y\n\"c:d\": z\n", 0, MAP_OK, "",
	  { { "a b", "x" }, { "a\"b", "y" }, { "c:d", "z" }, { "\"a b\"", NULL } } },
	{ A, "list: :include:/etc/tern/list, \"|/usr/bin/prog a, b\", /var/mail/f, \\root\n", 0,
	  MAP_OK, "",
	  { { "list", ":include:/etc/tern/list, \"|/usr/bin/prog a, b\", /var/mail/f, \\root" } } },
	{ A, "owner-list: me\nlist-request: me\n", 0, MAP_OK, "", { { "owner-list", "me" } } },
	{ A, "a: x\nA: y\n", 0, MAP_OK,
	  "m:2: warning: duplicate entry \"a\" ignored (the first, at line 1, wins)\n",
	  { { "a", "x" } } },
	{ A, "nocolon\n", 0, MAP_ERR_DATA,
	  "m:1: expected \"name: value\" (aliases(5) format): no ':'\n", { { NULL, NULL } } },
	{ A, ": x\n", 0, MAP_ERR_DATA, "m:1: missing alias name before ':'\n", { { NULL, NULL } } },
	{ A, "a@b: x\n", 0, MAP_ERR_DATA, "m:1: the alias name must be local (no '@' or '%')\n",
	  { { NULL, NULL } } },
	{ A, "a%b: x\n", 0, MAP_ERR_DATA, "m:1: the alias name must be local (no '@' or '%')\n",
	  { { NULL, NULL } } },
	{ A, "a b: x\n", 0, MAP_ERR_DATA,
	  "m:1: white space in the alias name (quote it: \"a b\": ...)\n", { { NULL, NULL } } },
	{ A, "a,b: x\n", 0, MAP_ERR_DATA,
	  "m:1: ',' in the alias name (expected \"name: value, value\")\n", { { NULL, NULL } } },
	{ A, "a\"b\": x\n", 0, MAP_ERR_DATA, "m:1: '\"' inside the alias name\n",
	  { { NULL, NULL } } },
	{ A, "\"a\" b: x\n", 0, MAP_ERR_DATA, "m:1: text after the quoted alias name\n",
	  { { NULL, NULL } } },
	{ A, "\"\": x\n", 0, MAP_ERR_DATA, "m:1: empty alias name\n", { { NULL, NULL } } },
	{ A, "\"a: x\n", 0, MAP_ERR_DATA, "m:1: unbalanced '\"'\n", { { NULL, NULL } } },
	{ A, "a:\n", 0, MAP_ERR_DATA, "m:1: missing value after \"a:\"\n", { { NULL, NULL } } },
	{ A, "a: , ,\n", 0, MAP_ERR_DATA, "m:1: no address after \"a:\"\n", { { NULL, NULL } } },
	{ A, "a: x, \"y\n", 0, MAP_ERR_DATA, "m:1: unbalanced '\"'\n", { { NULL, NULL } } },
	{ A, "a: :include:relative\n", 0, MAP_ERR_DATA, "m:1: :include: needs an absolute path\n",
	  { { NULL, NULL } } },
	{ A, "a: |\n", 0, MAP_ERR_DATA, "m:1: empty command after '|'\n", { { NULL, NULL } } },
	{ A, "a: x\n  y,\n\nb: \xfe\nc\n", 0, MAP_ERR_DATA,
	  "m:4: invalid UTF-8\n"
	  "m:5: expected \"name: value\" (aliases(5) format): no ':'\n", { { NULL, NULL } } },
};

START_TEST(test_parse)
{
	const struct parse_case *c = &parse_cases[_i];
	struct buf diag;
	struct map *m;
	enum map_status st;
	size_t i;

	buf_init(&diag, DIAG_MAX);
	st = map_open_text("m", c->text, c->len ? c->len : strlen(c->text), c->flags, &m, &diag);
	ck_assert_msg(st == c->st, "case %d: status %d, diag %s", _i, st, buf_cstr(&diag));
	ck_assert_msg(strcmp(buf_cstr(&diag), c->diag) == 0, "case %d: diag\n%s\nwanted\n%s", _i,
	              buf_cstr(&diag), c->diag);
	if (st == MAP_OK) {
		for (i = 0; i < NELEM(c->kv) && c->kv[i].key != NULL; i++) {
			const char *v = lookup(m, c->kv[i].key);

			if (c->kv[i].value == NULL)
				ck_assert_msg(v == NULL, "case %d: %s found: %s", _i, c->kv[i].key, v);
			else
				ck_assert_msg(v != NULL && strcmp(v, c->kv[i].value) == 0,
				              "case %d: %s -> %s, wanted %s", _i, c->kv[i].key,
				              v ? v : "(none)", c->kv[i].value);
		}
		ck_assert_str_eq(map_spec(m), "m");
	} else {
		ck_assert_ptr_null(m);
	}
	map_close(m);
	buf_free(&diag);
}
END_TEST

/* Limits: line, entry and key lengths, and the cap on reported lines. */
START_TEST(test_parse_limits)
{
	struct buf text, diag;
	struct map *m;
	char key[MAP_KEY_MAX + 2];
	int i;

	buf_init(&text, 4 * MAP_LINE_MAX);
	buf_init(&diag, DIAG_MAX);
	/* a physical line over MAP_LINE_MAX */
	buf_append_str(&text, "a 1\nk ");
	for (i = 0; i < MAP_LINE_MAX; i++)
		buf_append_char(&text, 'v');
	buf_append_str(&text, "\nb 2\n");
	ck_assert_int_eq(map_open_text("m", buf_data(&text), buf_len(&text), 0, &m, &diag),
	                 MAP_ERR_DATA);
	ck_assert_str_eq(buf_cstr(&diag), "m:2: line longer than 65536 bytes\n");
	/* exactly MAP_LINE_MAX is fine */
	buf_reset(&text);
	buf_reset(&diag);
	buf_append_str(&text, "k ");
	for (i = 2; i < MAP_LINE_MAX; i++)
		buf_append_char(&text, 'v');
	ck_assert_int_eq(map_open_text("m", buf_data(&text), buf_len(&text), 0, &m, &diag), MAP_OK);
	ck_assert_uint_eq(strlen(lookup(m, "k")), MAP_LINE_MAX - 2);
	map_close(m);
	/* a logical line over MAP_LINE_MAX, made of continuations */
	buf_reset(&text);
	buf_append_str(&text, "k ");
	for (i = 0; i < 3; i++) {
		for (int j = 0; j < MAP_LINE_MAX / 2; j++)
			buf_append_char(&text, 'v');
		buf_append_str(&text, "\n ");
	}
	buf_append_str(&text, "\nb 2\n");
	ck_assert_int_eq(map_open_text("m", buf_data(&text), buf_len(&text), 0, &m, &diag),
	                 MAP_ERR_DATA);
	ck_assert_str_eq(buf_cstr(&diag), "m:1: entry longer than 65536 bytes\n");
	/* keys: MAP_KEY_MAX is fine, one more is not, in both formats */
	buf_reset(&diag);
	memset(key, 'k', MAP_KEY_MAX);
	key[MAP_KEY_MAX] = '\0';
	buf_reset(&text);
	buf_append_printf(&text, "%s v\n", key);
	ck_assert_int_eq(map_open_text("m", buf_data(&text), buf_len(&text), 0, &m, &diag), MAP_OK);
	ck_assert_str_eq(lookup(m, key), "v");
	key[MAP_KEY_MAX] = 'k';
	key[MAP_KEY_MAX + 1] = '\0';
	ck_assert_ptr_null(lookup(m, key));	/* too long to be a key: not found */
	ck_assert_ptr_null(lookup(m, ""));
	map_close(m);
	buf_reset(&text);
	buf_append_printf(&text, "%s v\n", key);
	ck_assert_int_eq(map_open_text("m", buf_data(&text), buf_len(&text), 0, &m, &diag),
	                 MAP_ERR_DATA);
	ck_assert_str_eq(buf_cstr(&diag), "m:1: key longer than 511 bytes\n");
	buf_reset(&diag);
	buf_reset(&text);
	buf_append_printf(&text, "%s: v\n", key);
	ck_assert_int_eq(map_open_text("m", buf_data(&text), buf_len(&text), A, &m, &diag),
	                 MAP_ERR_DATA);
	ck_assert_str_eq(buf_cstr(&diag), "m:1: alias name longer than 511 bytes\n");
	buf_reset(&diag);
	buf_reset(&text);
	buf_append_printf(&text, "\"%s\": v\n", key);
	ck_assert_int_eq(map_open_text("m", buf_data(&text), buf_len(&text), A, &m, &diag),
	                 MAP_ERR_DATA);
	ck_assert_str_eq(buf_cstr(&diag), "m:1: alias name longer than 511 bytes\n");
	/* 150 bad lines: 100 reported, then one line saying so */
	buf_reset(&diag);
	buf_reset(&text);
	for (i = 0; i < 150; i++)
		buf_append_str(&text, "bad\n");
	ck_assert_int_eq(map_open_text("m", buf_data(&text), buf_len(&text), 0, &m, &diag),
	                 MAP_ERR_DATA);
	{
		const char *p = buf_cstr(&diag);
		int lines = 0;

		for (; *p; p++)
			lines += *p == '\n';
		ck_assert_int_eq(lines, MAP_DIAG_LINES_MAX + 1);
		ck_assert_ptr_nonnull(strstr(buf_cstr(&diag),
		                             "m:100: expected \"key value\": no value after key \"bad\"\n"
		                             "m: too many problems, the rest not reported\n"));
	}
	buf_free(&text);
	buf_free(&diag);
}
END_TEST

/* ---- alias value items ---- */

struct item_case {
	const char *value;
	const char *items;	/* "KIND text\n" per item (A C F I), or "error: why\n" */
};

static const struct item_case item_cases[] = {
	{ "alice, bob", "A alice\nA bob\n" },
	{ " alice ,, bob , ", "A alice\nA bob\n" },
	{ "", "" },
	{ " , ", "" },
	{ "\"|/usr/bin/prog -a, b\", x", "C /usr/bin/prog -a, b\nA x\n" },
	{ "|/bin/cat", "C /bin/cat\n" },
	{ "| /bin/cat -u", "C /bin/cat -u\n" },
	{ "/var/mail/x", "F /var/mail/x\n" },
	{ "\"/var/mail/x y\"", "F /var/mail/x y\n" },
	{ ":include:/etc/list", "I /etc/list\n" },
	{ ":INCLUDE: /etc/list", "I /etc/list\n" },
	{ "\":include:/etc/l l\"", "I /etc/l l\n" },
	{ "\"john doe\"@example.org, \\root", "A \"john doe\"@example.org\nA \\root\n" },
	{ "\"john doe\"", "A \"john doe\"\n" },
	{ "\"a\\\"b\", c", "A \"a\\\"b\"\nA c\n" },
	{ "\"|a\\\\b\"", "C a\\b\n" },
	{ "a, \"x", "A a\nerror: unbalanced '\"'\n" },
	{ ":include:rel", "error: :include: needs an absolute path\n" },
	{ "\":include:\"", "error: :include: needs an absolute path\n" },
	{ "x, |", "A x\nerror: empty command after '|'\n" },
};

START_TEST(test_alias_items)
{
	const struct item_case *c = &item_cases[_i];
	struct map_alias_item item;
	const char *why;
	struct buf out;
	size_t pos = 0;
	int rc;

	buf_init(&out, DIAG_MAX);
	while ((rc = map_alias_next(c->value, strlen(c->value), &pos, &item, &why)) > 0)
		buf_append_printf(&out, "%c %s\n", "ACFI"[item.kind], item.text);
	if (rc < 0)
		buf_append_printf(&out, "error: %s\n", why);
	ck_assert_msg(strcmp(buf_cstr(&out), c->items) == 0, "case %d: %s gave\n%s\nwanted\n%s", _i,
	              c->value, buf_cstr(&out), c->items);
	buf_free(&out);
}
END_TEST

START_TEST(test_alias_item_long)
{
	struct map_alias_item item;
	const char *why;
	struct buf v;
	size_t pos = 0;
	int i;

	buf_init(&v, 2 * MAP_ALIAS_ITEM_MAX);
	for (i = 0; i < MAP_ALIAS_ITEM_MAX; i++)
		buf_append_char(&v, 'a');
	ck_assert_int_eq(map_alias_next(buf_data(&v), buf_len(&v), &pos, &item, &why), 1);
	ck_assert_uint_eq(strlen(item.text), MAP_ALIAS_ITEM_MAX);
	buf_append_char(&v, 'a');
	pos = 0;
	ck_assert_int_eq(map_alias_next(buf_data(&v), buf_len(&v), &pos, &item, &why), -1);
	ck_assert_str_eq(why, "alias item too long");
	buf_free(&v);
}
END_TEST

/* ---- specs and missing files ---- */

START_TEST(test_specs)
{
	static const struct {
		const char *spec;
		enum map_status st;
		const char *diag;
	} rows[] = {
		{ "foo", MAP_ERR_SPEC, "foo: no map type: write lmdb:foo or texthash:foo\n" },
		{ "hash:/etc/x", MAP_ERR_SPEC,
		  "hash:/etc/x: unsupported map type \"hash\" (tern has lmdb:, texthash:, regexp: and cidr:)\n" },
		{ "LMDB:/etc/x", MAP_ERR_SPEC,
		  "LMDB:/etc/x: unsupported map type \"LMDB\" (tern has lmdb:, texthash:, regexp: and cidr:)\n" },
		{ "lmdb:etc/x", MAP_ERR_SPEC, "lmdb:etc/x: the path must be absolute\n" },
		{ "texthash:", MAP_ERR_SPEC, "texthash:: the path must be absolute\n" },
		{ "texthash:/nonexistent/tern-map", MAP_ERR_NOINPUT,
		  "/nonexistent/tern-map: cannot open: No such file or directory\n" },
		{ "lmdb:/nonexistent/tern-map", MAP_ERR_NOINPUT,
		  "lmdb:/nonexistent/tern-map: /nonexistent/tern-map.lmdb: No such file or "
		  "directory (build it with: ternctl map build /nonexistent/tern-map)\n" },
		{ "texthash:/", MAP_ERR_IO, "/: not a regular file\n" },
	};
	struct buf diag;
	struct map *m;
	size_t i;

	buf_init(&diag, DIAG_MAX);
	for (i = 0; i < NELEM(rows); i++) {
		buf_reset(&diag);
		ck_assert_int_eq(map_open(rows[i].spec, 0, &m, &diag), rows[i].st);
		ck_assert_ptr_null(m);
		ck_assert_str_eq(buf_cstr(&diag), rows[i].diag);
	}
	buf_reset(&diag);
	ck_assert_int_eq(map_build("/nonexistent/tern-map", 0, &diag, NULL), MAP_ERR_NOINPUT);
	ck_assert_str_eq(buf_cstr(&diag),
	                 "/nonexistent/tern-map: cannot open: No such file or directory\n");
	buf_free(&diag);
}
END_TEST

/* ---- texthash from files ---- */

START_TEST(test_texthash_reload)
{
	char src[PATH_SIZE], spec[PATH_SIZE + 16];
	struct buf diag;
	struct map *m;

	dir_make();
	buf_init(&diag, DIAG_MAX);
	path_in(src, "transport");
	snprintf(spec, sizeof(spec), "texthash:%s", src);
	file_write_str(src, "example.org smtp:[10.0.0.5]:25\n");
	m = open_ok(spec, 0);
	ck_assert_str_eq(map_spec(m), spec);
	ck_assert_uint_eq(map_count(m), 1);
	ck_assert_str_eq(lookup(m, "Example.ORG"), "smtp:[10.0.0.5]:25");
	/* read at open and reload only */
	file_write_str(src, "example.org lmtp:unix:/run/lmtp\nexample.net x\n");
	ck_assert_str_eq(lookup(m, "example.org"), "smtp:[10.0.0.5]:25");
	ck_assert_int_eq(map_reload(m, &diag), MAP_OK);
	ck_assert_str_eq(lookup(m, "example.org"), "lmtp:unix:/run/lmtp");
	ck_assert_uint_eq(map_count(m), 2);
	/* a broken file: the old contents stay */
	file_write_str(src, "example.org\n");
	ck_assert_int_eq(map_reload(m, &diag), MAP_ERR_DATA);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "/transport:1: expected \"key value\""));
	ck_assert_str_eq(lookup(m, "example.org"), "lmtp:unix:/run/lmtp");
	unlink(src);
	buf_reset(&diag);
	ck_assert_int_eq(map_reload(m, &diag), MAP_ERR_NOINPUT);
	ck_assert_str_eq(lookup(m, "example.net"), "x");
	map_close(m);
	buf_free(&diag);
	dir_remove();
}
END_TEST

/* A value larger than the caller's buffer is an error, not a cut value. */
START_TEST(test_value_buffer)
{
	char src[PATH_SIZE], spec[PATH_SIZE + 16], err[ERR_SIZE];
	struct map *maps[2];
	struct buf v;
	int i;

	dir_make();
	path_in(src, "m");
	file_write_str(src, "k longer\n");
	build_ok(src, 0);
	snprintf(spec, sizeof(spec), "texthash:%s", src);
	maps[0] = open_ok(spec, 0);
	snprintf(spec, sizeof(spec), "lmdb:%s", src);
	maps[1] = open_ok(spec, 0);
	for (i = 0; i < 2; i++) {
		buf_init(&v, 3);
		ck_assert_int_eq(map_lookup(maps[i], "k", &v, err, sizeof(err)), MAP_ERROR);
		ck_assert_ptr_nonnull(strstr(err, "value of 6 bytes does not fit the buffer"));
		ck_assert_uint_eq(buf_len(&v), 0);
		buf_free(&v);
		buf_init(&v, 6);
		ck_assert_int_eq(map_lookup(maps[i], "K", &v, err, sizeof(err)), MAP_FOUND);
		ck_assert_str_eq(buf_cstr(&v), "longer");
		buf_free(&v);
		map_close(maps[i]);
	}
	dir_remove();
}
END_TEST

/* ---- lmdb ---- */

START_TEST(test_lmdb_build_lookup)
{
	char src[PATH_SIZE], spec[PATH_SIZE + 16];
	struct buf names, diag;
	struct map *m;
	size_t n;

	dir_make();
	buf_init(&names, DIAG_MAX);
	buf_init(&diag, DIAG_MAX);
	path_in(src, "transport");
	file_write_str(src, "# routes\nExample.ORG smtp:[10.0.0.5]:25\n.example.net\n"
	                    "  lmtp:unix:/run/dovecot/lmtp\nz last\nA first\nexample.org dup\n");
	ck_assert_int_eq(map_build(src, 0, &diag, &n), MAP_OK);
	ck_assert_uint_eq(n, 4);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "/transport:7: warning: duplicate entry "
	                             "\"example.org\" ignored (the first, at line 2, wins)\n"));
	/* only the map beside its source: no lock file, no temporary left */
	dir_list(&names);
	ck_assert_str_eq(buf_cstr(&names), "transport\ntransport.lmdb\n");
	snprintf(spec, sizeof(spec), "lmdb:%s", src);
	m = open_ok(spec, 0);
	ck_assert_uint_eq(map_count(m), 4);
	ck_assert_str_eq(lookup(m, "example.org"), "smtp:[10.0.0.5]:25");
	ck_assert_str_eq(lookup(m, "EXAMPLE.org"), "smtp:[10.0.0.5]:25");
	ck_assert_str_eq(lookup(m, ".example.net"), "lmtp:unix:/run/dovecot/lmtp");
	ck_assert_str_eq(lookup(m, "a"), "first");
	ck_assert_str_eq(lookup(m, "z"), "last");
	ck_assert_ptr_null(lookup(m, "example.net"));
	ck_assert_ptr_null(lookup(m, ""));
	/* the format record cannot be asked for: no key holds a NUL */
	ck_assert_ptr_null(lookup(m, "tern-map"));
	map_close(m);
	/* an empty source makes an empty map */
	file_write_str(src, "# nothing yet\n");
	build_ok(src, 0);
	m = open_ok(spec, 0);
	ck_assert_uint_eq(map_count(m), 0);
	ck_assert_ptr_null(lookup(m, "example.org"));
	map_close(m);
	buf_free(&names);
	buf_free(&diag);
	dir_remove();
}
END_TEST

/* A big map: more than the first map size guess; MDB_APPEND order. */
START_TEST(test_lmdb_big)
{
	char src[PATH_SIZE], spec[PATH_SIZE + 16], key[64];
	struct buf text;
	struct map *m;
	int i;

	dir_make();
	buf_init(&text, (size_t)64 << 20);
	for (i = 0; i < 20000; i++)
		buf_append_printf(&text, "user%d@example.org %0*d\n", i, 200, i);
	/* values that need overflow pages */
	buf_append_str(&text, "big ");
	for (i = 0; i < 60000; i++)
		buf_append_char(&text, (char)('a' + i % 26));
	buf_append_char(&text, '\n');
	path_in(src, "virtual");
	file_write(src, buf_data(&text), buf_len(&text));
	build_ok(src, 0);
	snprintf(spec, sizeof(spec), "lmdb:%s", src);
	m = open_ok(spec, 0);
	ck_assert_uint_eq(map_count(m), 20001);
	for (i = 0; i < 20000; i += 997) {
		snprintf(key, sizeof(key), "USER%d@example.org", i);
		ck_assert_uint_eq(strlen(lookup(m, key)), 200);
		ck_assert_int_eq(atoi(lookup(m, key)), i);
	}
	ck_assert_uint_eq(strlen(lookup(m, "big")), 60000);
	map_close(m);
	buf_free(&text);
	dir_remove();
}
END_TEST

/* The format record: alias_maps refuse a postmap-style build, and back. */
START_TEST(test_lmdb_format)
{
	char src[PATH_SIZE], file[PATH_SIZE], spec[PATH_SIZE + 16];
	struct buf diag;
	struct map *m;

	dir_make();
	buf_init(&diag, DIAG_MAX);
	path_in(src, "aliases");
	file_write_str(src, "root: alice, bob\n");
	build_ok(src, 0);	/* as "key value": key "root:" (and a warning) */
	snprintf(spec, sizeof(spec), "lmdb:%s", src);
	ck_assert_int_eq(map_open(spec, MAP_F_ALIASES, &m, &diag), MAP_ERR_DATA);
	ck_assert_ptr_null(m);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "aliases.lmdb: built from \"key value\" "
	                             "lines, but alias_maps need aliases(5) format: rebuild with "
	                             "ternctl map build --aliases\n"));
	/* a build does not change the format of an existing map */
	buf_reset(&diag);
	ck_assert_int_eq(map_build(src, MAP_F_ALIASES, &diag, NULL), MAP_ERR_DATA);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "aliases.lmdb: was built from \"key value\" "
	                             "lines: rebuild it without --aliases (or remove it first)\n"));
	path_in(file, "aliases.lmdb");
	unlink(file);
	build_ok(src, MAP_F_ALIASES);
	buf_reset(&diag);
	ck_assert_int_eq(map_build(src, 0, &diag, NULL), MAP_ERR_DATA);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "aliases.lmdb: was built from an aliases(5) "
	                             "file: rebuild it with --aliases (or remove it first)\n"));
	m = open_ok(spec, MAP_F_ALIASES);
	ck_assert_str_eq(lookup(m, "ROOT"), "alice, bob");
	map_close(m);
	buf_reset(&diag);
	ck_assert_int_eq(map_open(spec, 0, &m, &diag), MAP_ERR_DATA);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "built from an aliases(5) file"));
	m = open_ok(spec, MAP_F_ANY_FORMAT);
	ck_assert_str_eq(lookup(m, "root"), "alice, bob");
	map_close(m);
	buf_free(&diag);
	dir_remove();
}
END_TEST

/* Files tern did not build: garbage, and an LMDB file without our record. */
START_TEST(test_lmdb_foreign)
{
	char src[PATH_SIZE], file[PATH_SIZE], spec[PATH_SIZE + 16];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 1, "k" }, v = { 1, "v" };
	struct buf diag;
	struct map *m;

	dir_make();
	buf_init(&diag, DIAG_MAX);
	path_in(src, "m");
	path_in(file, "m.lmdb");
	snprintf(spec, sizeof(spec), "lmdb:%s", src);
	file_write_str(file, "this is not an LMDB file, but it is long enough to be read as "
	                     "one: this is not an LMDB file, but it is long enough\n");
	ck_assert_int_eq(map_open(spec, 0, &m, &diag), MAP_ERR_DATA);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "m.lmdb: MDB_INVALID"));
	unlink(file);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_open(env, file, MDB_NOSUBDIR | MDB_NOLOCK, 0644), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	buf_reset(&diag);
	ck_assert_int_eq(map_open(spec, MAP_F_ANY_FORMAT, &m, &diag), MAP_ERR_DATA);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "m.lmdb: not built by ternctl map build\n"));
	buf_free(&diag);
	dir_remove();
}
END_TEST

/* A failed build leaves the old map, and no temporary file. */
START_TEST(test_lmdb_build_fails)
{
	char src[PATH_SIZE], spec[PATH_SIZE + 16];
	struct buf diag, names;
	struct map *m;

	dir_make();
	buf_init(&diag, DIAG_MAX);
	buf_init(&names, DIAG_MAX);
	path_in(src, "m");
	file_write_str(src, "k old\n");
	build_ok(src, 0);
	file_write_str(src, "k new\nbroken\n");
	ck_assert_int_eq(map_build(src, 0, &diag, NULL), MAP_ERR_DATA);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "/m:2: expected \"key value\""));
	snprintf(spec, sizeof(spec), "lmdb:%s", src);
	m = open_ok(spec, 0);
	ck_assert_str_eq(lookup(m, "k"), "old");
	map_close(m);
	dir_list(&names);
	ck_assert_str_eq(buf_cstr(&names), "m\nm.lmdb\n");
	/* a directory we cannot write (unless root, who can) */
	if (geteuid() != 0) {
		file_write_str(src, "k new\n");
		chmod(test_dir, 0555);
		buf_reset(&diag);
		ck_assert_int_eq(map_build(src, 0, &diag, NULL), MAP_ERR_CREATE);
		ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "cannot create"));
		chmod(test_dir, 0755);
	}
	buf_free(&diag);
	buf_free(&names);
	dir_remove();
}
END_TEST

/* The map gets the source's group/other read bits (Postfix's rule). */
START_TEST(test_lmdb_mode)
{
	static const mode_t modes[][2] = { { 0644, 0644 }, { 0640, 0640 }, { 0600, 0600 },
	                                   { 0664, 0644 }, { 0755, 0644 } };
	char src[PATH_SIZE], file[PATH_SIZE];
	struct stat st;
	size_t i;

	dir_make();
	path_in(src, "m");
	path_in(file, "m.lmdb");
	file_write_str(src, "k v\n");
	for (i = 0; i < NELEM(modes); i++) {
		ck_assert_int_eq(chmod(src, modes[i][0]), 0);
		build_ok(src, 0);
		ck_assert_int_eq(stat(file, &st), 0);
		ck_assert_msg((st.st_mode & 07777) == modes[i][1], "source %o: map %o", modes[i][0],
		              st.st_mode & 07777);
	}
	dir_remove();
}
END_TEST

/* A reader keeps the file it opened until it checks; a rebuilt one is
 * picked up by the recheck (or map_reload), never seen half-written. */
START_TEST(test_lmdb_reopen)
{
	char src[PATH_SIZE], file[PATH_SIZE], junk[PATH_SIZE], spec[PATH_SIZE + 16], err[ERR_SIZE];
	struct timespec t0, t1;
	struct buf diag, v;
	struct map *m;
	long ms;

	dir_make();
	buf_init(&diag, DIAG_MAX);
	buf_init(&v, MAP_VALUE_MAX + 1);
	path_in(src, "m");
	path_in(file, "m.lmdb");
	snprintf(spec, sizeof(spec), "lmdb:%s", src);
	file_write_str(src, "k old\ngone soon\n");
	build_ok(src, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	m = open_ok(spec, 0);
	file_write_str(src, "k new\nadded yes\n");
	build_ok(src, 0);
	/* within MAP_RECHECK_MS: still the old file, whole */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	if (ms < MAP_RECHECK_MS / 2) {
		ck_assert_str_eq(lookup(m, "k"), "old");
		ck_assert_str_eq(lookup(m, "gone"), "soon");
	}
	ck_assert_int_eq(map_reload(m, &diag), MAP_OK);
	ck_assert_str_eq(lookup(m, "k"), "new");
	ck_assert_ptr_null(lookup(m, "gone"));
	ck_assert_str_eq(lookup(m, "added"), "yes");
	/* after MAP_RECHECK_MS the lookup itself notices */
	file_write_str(src, "k newer\n");
	build_ok(src, 0);
	usleep((MAP_RECHECK_MS + 100) * 1000);
	ck_assert_str_eq(lookup(m, "k"), "newer");
	map_close(m);

	/* vanished: a temporary error (defer), not "not found"; back when rebuilt */
	m = open_ok(spec, MAP_F_RECHECK);
	ck_assert_str_eq(lookup(m, "k"), "newer");
	unlink(file);
	ck_assert_int_eq(map_lookup(m, "k", &v, err, sizeof(err)), MAP_ERROR);
	ck_assert_ptr_nonnull(strstr(err, "m.lmdb: No such file or directory"));
	ck_assert_int_eq(map_lookup(m, "nothere", &v, err, sizeof(err)), MAP_ERROR);
	buf_reset(&diag);
	ck_assert_int_eq(map_reload(m, &diag), MAP_ERR_NOINPUT);
	build_ok(src, 0);
	ck_assert_str_eq(lookup(m, "k"), "newer");
	/* replaced by something unreadable: an error again */
	path_in(junk, "junk");
	file_write_str(junk, "garbage that is not an LMDB file at all\n");
	ck_assert_int_eq(rename(junk, file), 0);
	ck_assert_int_eq(map_lookup(m, "k", &v, err, sizeof(err)), MAP_ERROR);
	ck_assert_ptr_nonnull(strstr(err, "MDB_INVALID"));
	build_ok(src, 0);
	ck_assert_str_eq(lookup(m, "k"), "newer");
	map_close(m);
	buf_free(&v);
	buf_free(&diag);
	dir_remove();
}
END_TEST

#define REBUILDS 150
#define FILLER 3000

/* Write the source with k -> value and FILLER other entries. */
static void
rebuild_source(const char *src, const char *value)
{
	struct buf text;
	int i;

	buf_init(&text, (size_t)16 << 20);
	buf_append_printf(&text, "k %s\n", value);
	for (i = 0; i < FILLER; i++)
		buf_append_printf(&text, "filler%d %s-%d\n", i, value, i);
	file_write(src, buf_data(&text), buf_len(&text));
	buf_free(&text);
}

/* Another process rebuilds the map over and over while this one looks it
 * up with a stat(2) each time: every lookup finds a whole map. */
START_TEST(test_lmdb_rebuild_concurrent)
{
	char src[PATH_SIZE], spec[PATH_SIZE + 16], err[ERR_SIZE];
	struct buf v, names;
	struct map *m;
	unsigned long lookups = 0, changes = 0;
	char last[32] = "v0";
	pid_t pid;
	int status, i;

	dir_make();
	path_in(src, "m");
	snprintf(spec, sizeof(spec), "lmdb:%s", src);
	rebuild_source(src, "v0");
	build_ok(src, 0);
	m = open_ok(spec, MAP_F_RECHECK);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (i = 1; i <= REBUILDS; i++) {
			char value[32];

			snprintf(value, sizeof(value), "v%d", i);
			rebuild_source(src, value);
			if (map_build(src, 0, NULL, NULL) != MAP_OK)
				_exit(1);
		}
		_exit(0);
	}
	buf_init(&v, MAP_VALUE_MAX + 1);
	for (;;) {
		int done = waitpid(pid, &status, WNOHANG);
		char key[32], want[64];

		ck_assert_int_eq(map_lookup(m, "k", &v, err, sizeof(err)), MAP_FOUND);
		ck_assert_msg(buf_cstr(&v)[0] == 'v', "value %s", buf_cstr(&v));
		if (strcmp(buf_cstr(&v), last) != 0) {
			changes++;
			snprintf(last, sizeof(last), "%s", buf_cstr(&v));
		}
		/* the rest of the same file agrees with k */
		i = (int)(lookups % FILLER);
		snprintf(key, sizeof(key), "filler%d", i);
		snprintf(want, sizeof(want), "%s-%d", last, i);
		ck_assert_int_eq(map_lookup(m, key, &v, err, sizeof(err)), MAP_FOUND);
		if (strcmp(buf_cstr(&v), want) != 0)	/* a rebuild between the two lookups */
			ck_assert_int_gt(atoi(buf_cstr(&v) + 1), atoi(last + 1));
		lookups++;
		if (done == pid)
			break;
	}
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(map_lookup(m, "k", &v, err, sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&v), "v150");
	ck_assert_uint_gt(changes, 0);
	map_close(m);
	buf_free(&v);
	buf_init(&names, DIAG_MAX);
	dir_list(&names);
	ck_assert_str_eq(buf_cstr(&names), "m\nm.lmdb\n");
	buf_free(&names);
	dir_remove();
}
END_TEST

/* ---- lists ---- */

static struct config_list *
list_make(const char *a, const char *b, const char *c)
{
	static char *items[3];
	static struct config_list l;

	l.n = 0;
	l.items = items;
	if (a)
		items[l.n++] = (char *)a;
	if (b)
		items[l.n++] = (char *)b;
	if (c)
		items[l.n++] = (char *)c;
	return &l;
}

START_TEST(test_list)
{
	char s1[PATH_SIZE], s2[PATH_SIZE], spec1[PATH_SIZE + 16], spec2[PATH_SIZE + 16];
	char file1[PATH_SIZE], err[ERR_SIZE];
	struct map_list *ml;
	struct buf diag, v;

	dir_make();
	buf_init(&diag, DIAG_MAX);
	buf_init(&v, MAP_VALUE_MAX + 1);
	path_in(s1, "one");
	path_in(s2, "two");
	path_in(file1, "one.lmdb");
	file_write_str(s1, "a 1\n");
	file_write_str(s2, "a 2\nb 2\n");
	build_ok(s1, 0);
	snprintf(spec1, sizeof(spec1), "lmdb:%s", s1);
	snprintf(spec2, sizeof(spec2), "texthash:%s", s2);
	ck_assert_int_eq(map_list_open(list_make(spec1, spec2, NULL), MAP_F_RECHECK, &ml, &diag),
	                 MAP_OK);
	ck_assert_uint_eq(map_list_size(ml), 2);
	ck_assert_str_eq(map_spec(map_list_get(ml, 1)), spec2);
	ck_assert_int_eq(map_list_lookup(ml, "A", &v, err, sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&v), "1");	/* the first hit wins */
	ck_assert_int_eq(map_list_lookup(ml, "b", &v, err, sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&v), "2");
	ck_assert_int_eq(map_list_lookup(ml, "c", &v, err, sizeof(err)), MAP_NOTFOUND);
	/* a map that cannot be read stops the search: b is in the second,
	 * but the first might have had it */
	unlink(file1);
	ck_assert_int_eq(map_list_lookup(ml, "b", &v, err, sizeof(err)), MAP_ERROR);
	ck_assert_ptr_nonnull(strstr(err, spec1));
	ck_assert_int_eq(map_list_reload(ml, &diag), MAP_ERR_NOINPUT);
	build_ok(s1, 0);
	ck_assert_int_eq(map_list_reload(ml, &diag), MAP_OK);
	map_list_close(ml);

	/* every bad spec is reported; the first failure's status */
	buf_reset(&diag);
	ck_assert_int_eq(map_list_open(list_make("hash:/x", spec2, "lmdb:/nonexistent/y"), 0, &ml,
	                               &diag), MAP_ERR_SPEC);
	ck_assert_ptr_null(ml);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "hash:/x: unsupported map type"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "/nonexistent/y.lmdb: No such file"));
	/* an empty list finds nothing */
	ck_assert_int_eq(map_list_open(list_make(NULL, NULL, NULL), 0, &ml, &diag), MAP_OK);
	ck_assert_uint_eq(map_list_size(ml), 0);
	ck_assert_int_eq(map_list_lookup(ml, "a", &v, err, sizeof(err)), MAP_NOTFOUND);
	map_list_close(ml);
	buf_free(&v);
	buf_free(&diag);
	dir_remove();
}
END_TEST

/* newaliases: every lmdb: map of alias_maps built, texthash: ones checked. */
START_TEST(test_list_build)
{
	char a1[PATH_SIZE], a2[PATH_SIZE], spec1[PATH_SIZE + 16], spec2[PATH_SIZE + 16];
	struct buf diag, names;
	struct map_list *ml;
	struct buf v;
	char err[ERR_SIZE];

	dir_make();
	buf_init(&diag, DIAG_MAX);
	buf_init(&names, DIAG_MAX);
	buf_init(&v, MAP_VALUE_MAX + 1);
	path_in(a1, "aliases");
	path_in(a2, "more-aliases");
	file_write_str(a1, "postmaster: root\nroot: alice\n");
	file_write_str(a2, "bob: \"|/usr/bin/vacation bob\"\n");
	snprintf(spec1, sizeof(spec1), "lmdb:%s", a1);
	snprintf(spec2, sizeof(spec2), "texthash:%s", a2);
	ck_assert_int_eq(map_list_build(list_make(spec1, spec2, NULL), MAP_F_ALIASES, &diag),
	                 MAP_OK);
	dir_list(&names);
	ck_assert_str_eq(buf_cstr(&names), "aliases\naliases.lmdb\nmore-aliases\n");
	ck_assert_int_eq(map_list_open(list_make(spec1, spec2, NULL), MAP_F_ALIASES, &ml, &diag),
	                 MAP_OK);
	ck_assert_int_eq(map_list_lookup(ml, "Postmaster", &v, err, sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&v), "root");
	ck_assert_int_eq(map_list_lookup(ml, "bob", &v, err, sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&v), "\"|/usr/bin/vacation bob\"");
	map_list_close(ml);
	/* errors in either are reported, each with its FILE:LINE */
	file_write_str(a1, "root alice\n");
	file_write_str(a2, "x:\n");
	buf_reset(&diag);
	ck_assert_int_eq(map_list_build(list_make(spec1, spec2, "hash:/z"), MAP_F_ALIASES, &diag),
	                 MAP_ERR_DATA);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "/aliases:1: expected \"name: value\""));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "/more-aliases:1: missing value after \"x:\""));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "hash:/z: unsupported map type"));
	buf_free(&v);
	buf_free(&names);
	buf_free(&diag);
	dir_remove();
}
END_TEST

/* ---- lookup orders ---- */

static const char order_map[] =
	"user@example.org           u-full\n"
	"user+tag@example.org       ut-full\n"
	"@example.org               catchall\n"
	"bob                        local-bob\n"
	"bob+x                      local-bobx\n"
	"carol@example.net          carol\n"
	"mailer@example.net         not-split\n"
	"owner@example.net          not-split\n"
	"list@example.net           not-split\n"
	"@lead.example              leading-split\n"
	"example.com                com-exact\n"
	".example.com               com-sub\n"
	".org                       org-sub\n"
	"[192.0.2.1]                literal\n"
	"*                          wild\n";

#define AT MAP_ADDR_AT_DOMAIN
#define LOC MAP_ADDR_LOCAL
#define DOM MAP_ADDR_DOMAINS
#define WILD MAP_ADDR_WILDCARD

struct addr_case {
	const char *addr;
	const char *delims;
	unsigned flags;
	const char *value;	/* NULL: not found */
	enum map_form form;
	const char *key;
	const char *ext;
};

static const struct addr_case addr_cases[] = {
	{ "user@example.org", "+", AT, "u-full", MAP_FORM_FULL, "user@example.org", "" },
	{ "User+Tag@Example.ORG", "+", AT, "ut-full", MAP_FORM_FULL, "user+tag@example.org", "" },
	{ "user+other@example.org", "+", AT, "u-full", MAP_FORM_BARE, "user@example.org", "+other" },
	{ "user+other@example.org.", "+", AT, "u-full", MAP_FORM_BARE, "user@example.org", "+other" },
	{ "user+other@example.org", NULL, AT, "catchall", MAP_FORM_AT_DOMAIN, "@example.org", "" },
	{ "user+other@example.org", "", 0, NULL, 0, NULL, NULL },
	{ "nobody@example.org", "+", AT, "catchall", MAP_FORM_AT_DOMAIN, "@example.org", "" },
	{ "nobody@EXAMPLE.org", "+", 0, NULL, 0, NULL, NULL },
	{ "nobody@sub.example.org", "+", AT, NULL, 0, NULL, NULL },
	/* the domain is ours: user+ext, user */
	{ "bob@example.net", "+", LOC, "local-bob", MAP_FORM_LOCAL_FULL, "bob", "" },
	{ "bob+x@example.net", "+", LOC, "local-bobx", MAP_FORM_LOCAL_FULL, "bob+x", "" },
	{ "Bob+Y@example.net", "+", LOC, "local-bob", MAP_FORM_LOCAL_BARE, "bob", "+Y" },
	{ "bob@example.net", "+", AT, NULL, 0, NULL, NULL },
	/* no domain (alias_maps): user+ext, user */
	{ "bob+y", "+", 0, "local-bob", MAP_FORM_BARE, "bob", "+y" },
	{ "BOB", "+", 0, "local-bob", MAP_FORM_FULL, "bob", "" },
	/* several delimiters: the first one found splits */
	{ "carol-z+w@example.net", "+-", 0, "carol", MAP_FORM_BARE, "carol@example.net", "-z+w" },
	{ "carol+z-w@example.net", "-+", 0, "carol", MAP_FORM_BARE, "carol@example.net", "+z-w" },
	/* never split (split_addr) */
	{ "mailer-daemon@example.net", "-", 0, NULL, 0, NULL, NULL },
	{ "owner-x@example.net", "-", 0, NULL, 0, NULL, NULL },
	{ "list-request@example.net", "-", 0, NULL, 0, NULL, NULL },
	{ "-x@lead.example", "-", 0, NULL, 0, NULL, NULL },	/* no empty user */
	{ "\"a+b\"@example.net", "+", 0, NULL, 0, NULL, NULL },
	/* '+' does not protect owner-/-request: only '-' does */
	{ "owner+x@example.net", "+", 0, "not-split", MAP_FORM_BARE, "owner@example.net", "+x" },
	/* transport(5): domain, .parent, * */
	{ "anyone@example.com", "+", DOM | WILD, "com-exact", MAP_FORM_DOMAIN, "example.com", "" },
	{ "x@a.b.example.com", "+", DOM | WILD, "com-sub", MAP_FORM_PARENT, ".example.com", "" },
	{ "x@example.de", "+", DOM | WILD, "wild", MAP_FORM_WILDCARD, "*", "" },
	{ "x@example.de", "+", DOM, NULL, 0, NULL, NULL },
	{ "x@[192.0.2.1]", "+", DOM, "literal", MAP_FORM_DOMAIN, "[192.0.2.1]", "" },
	/* forms in order over the whole list: the full address beats @domain */
	{ "user@example.org", "+", AT | DOM | WILD, "u-full", MAP_FORM_FULL, "user@example.org", "" },
	{ "x@example.org", "+", AT | DOM | WILD, "catchall", MAP_FORM_AT_DOMAIN, "@example.org", "" },
	{ "", "+", AT | DOM | WILD, NULL, 0, NULL, NULL },
};

static struct map_list *
order_list(void)
{
	static char path[PATH_SIZE], spec[PATH_SIZE + 16];
	struct map_list *ml;
	struct buf diag;

	path_in(path, "order");
	file_write_str(path, order_map);
	snprintf(spec, sizeof(spec), "texthash:%s", path);
	buf_init(&diag, DIAG_MAX);
	ck_assert_int_eq(map_list_open(list_make(spec, NULL, NULL), 0, &ml, &diag), MAP_OK);
	ck_assert_str_eq(buf_cstr(&diag), "");
	buf_free(&diag);
	return ml;
}

static void
check_match(int i, enum map_result r, struct buf *v, const struct map_match *mt,
            const char *value, enum map_form form, const char *key, const char *ext)
{
	if (value == NULL) {
		ck_assert_msg(r == MAP_NOTFOUND, "case %d: found %s (%s)", i, buf_cstr(v), mt->key);
		return;
	}
	ck_assert_msg(r == MAP_FOUND, "case %d: %d", i, r);
	ck_assert_msg(strcmp(buf_cstr(v), value) == 0, "case %d: %s", i, buf_cstr(v));
	ck_assert_msg(mt->form == form, "case %d: form %d", i, mt->form);
	ck_assert_msg(strcmp(mt->key, key) == 0, "case %d: key %s", i, mt->key);
	ck_assert_msg(strcmp(mt->extension, ext) == 0, "case %d: ext %s", i, mt->extension);
	ck_assert_uint_eq(mt->map, 0);
}

START_TEST(test_address_order)
{
	const struct addr_case *c = &addr_cases[_i];
	struct map_match mt;
	struct map_list *ml;
	char err[ERR_SIZE];
	struct buf v;
	enum map_result r;

	memset(&mt, 0, sizeof(mt));
	dir_make();
	ml = order_list();
	buf_init(&v, MAP_VALUE_MAX + 1);
	r = map_list_lookup_address(ml, c->addr, c->delims, c->flags, &v, &mt, err, sizeof(err));
	check_match(_i, r, &v, &mt, c->value, c->form, c->key, c->ext);
	map_list_close(ml);
	buf_free(&v);
	dir_remove();
}
END_TEST

struct domain_case {
	const char *domain;
	bool wildcard;
	const char *value;
	enum map_form form;
	const char *key;
};

static const struct domain_case domain_cases[] = {
	{ "example.com", false, "com-exact", MAP_FORM_DOMAIN, "example.com" },
	{ "Example.COM.", false, "com-exact", MAP_FORM_DOMAIN, "example.com" },
	{ "a.example.com", false, "com-sub", MAP_FORM_PARENT, ".example.com" },
	{ "a.b.c.example.com", false, "com-sub", MAP_FORM_PARENT, ".example.com" },
	{ "example.org", false, "org-sub", MAP_FORM_PARENT, ".org" },
	{ "org", false, NULL, 0, NULL },	/* ".org" is for subdomains only */
	{ "org", true, "wild", MAP_FORM_WILDCARD, "*" },
	{ "example.net", false, NULL, 0, NULL },
	{ "example.net", true, "wild", MAP_FORM_WILDCARD, "*" },
	{ "[192.0.2.1]", false, "literal", MAP_FORM_DOMAIN, "[192.0.2.1]" },
	{ "[192.0.2.2]", false, NULL, 0, NULL },	/* no walk inside a literal */
	{ "", false, NULL, 0, NULL },
	{ "", true, "wild", MAP_FORM_WILDCARD, "*" },
};

START_TEST(test_domain_walk)
{
	const struct domain_case *c = &domain_cases[_i];
	struct map_match mt;
	struct map_list *ml;
	char err[ERR_SIZE];
	struct buf v;
	enum map_result r;

	memset(&mt, 0, sizeof(mt));
	dir_make();
	ml = order_list();
	buf_init(&v, MAP_VALUE_MAX + 1);
	r = map_list_lookup_domain(ml, c->domain, c->wildcard, &v, &mt, err, sizeof(err));
	check_match(_i, r, &v, &mt, c->value, c->form, c->key, "");
	map_list_close(ml);
	buf_free(&v);
	dir_remove();
}
END_TEST

/* Each form goes to every map before the next form (Postfix's maps_find
 * inside mail_addr_find), and errors stop the walk. */
START_TEST(test_order_across_maps)
{
	char p1[PATH_SIZE], p2[PATH_SIZE], s1[PATH_SIZE + 16], s2[PATH_SIZE + 16];
	char f1[PATH_SIZE], err[ERR_SIZE];
	struct map_match mt;
	struct map_list *ml;
	struct buf diag, v;

	dir_make();
	buf_init(&diag, DIAG_MAX);
	buf_init(&v, MAP_VALUE_MAX + 1);
	path_in(p1, "first");
	path_in(p2, "second");
	path_in(f1, "first.lmdb");
	file_write_str(p1, "u@d bare-in-first\n.d parent-in-first\n");
	file_write_str(p2, "u+t@d full-in-second\nsub.d exact-in-second\n");
	build_ok(p1, 0);
	snprintf(s1, sizeof(s1), "lmdb:%s", p1);
	snprintf(s2, sizeof(s2), "texthash:%s", p2);
	ck_assert_int_eq(map_list_open(list_make(s1, s2, NULL), MAP_F_RECHECK, &ml, &diag), MAP_OK);
	ck_assert_int_eq(map_list_lookup_address(ml, "u+t@d", "+", 0, &v, &mt, err, sizeof(err)),
	                 MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&v), "full-in-second");
	ck_assert_uint_eq(mt.map, 1);
	ck_assert_int_eq(map_list_lookup_domain(ml, "x.sub.d", false, &v, &mt, err, sizeof(err)),
	                 MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&v), "parent-in-first");
	ck_assert_int_eq(map_list_lookup_domain(ml, "sub.d", false, &v, &mt, err, sizeof(err)),
	                 MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&v), "exact-in-second");
	ck_assert_uint_eq(mt.map, 1);
	unlink(f1);
	ck_assert_int_eq(map_list_lookup_address(ml, "u+t@d", "+", 0, &v, NULL, err, sizeof(err)),
	                 MAP_ERROR);
	ck_assert_int_eq(map_list_lookup_domain(ml, "sub.d", true, &v, NULL, err, sizeof(err)),
	                 MAP_ERROR);
	map_list_close(ml);
	buf_free(&v);
	buf_free(&diag);
	dir_remove();
}
END_TEST

/* Keys longer than MAP_KEY_MAX are skipped, not the rest of the order. */
START_TEST(test_order_long)
{
	char addr[3 * MAP_KEY_MAX], dom[2 * MAP_KEY_MAX], err[ERR_SIZE];
	struct map_match mt;
	struct map_list *ml;
	struct buf v;

	dir_make();
	ml = order_list();
	buf_init(&v, MAP_VALUE_MAX + 1);
	memset(addr, 'x', MAP_KEY_MAX + 10);
	snprintf(addr + MAP_KEY_MAX + 10, sizeof(addr) - MAP_KEY_MAX - 10, "@example.com");
	ck_assert_int_eq(map_list_lookup_address(ml, addr, "+", DOM | WILD, &v, &mt, err,
	                                         sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&v), "com-exact");
	memset(dom, 'd', MAP_KEY_MAX + 10);
	snprintf(dom + MAP_KEY_MAX + 10, sizeof(dom) - MAP_KEY_MAX - 10, ".example.com");
	ck_assert_int_eq(map_list_lookup_domain(ml, dom, false, &v, &mt, err, sizeof(err)),
	                 MAP_NOTFOUND);
	ck_assert_int_eq(map_list_lookup_domain(ml, dom, true, &v, &mt, err, sizeof(err)),
	                 MAP_FOUND);
	ck_assert_int_eq(mt.form, MAP_FORM_WILDCARD);
	snprintf(addr, sizeof(addr), "u@%s", dom);
	ck_assert_int_eq(map_list_lookup_address(ml, addr, "+", AT | DOM | WILD, &v, &mt, err,
	                                         sizeof(err)), MAP_FOUND);
	ck_assert_int_eq(mt.form, MAP_FORM_WILDCARD);
	map_list_close(ml);
	buf_free(&v);
	dir_remove();
}
END_TEST

static Suite *
map_suite(void)
{
	Suite *s = suite_create("map");
	TCase *tc = tcase_create("map");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_parse, 0, NELEM(parse_cases));
	tcase_add_test(tc, test_parse_limits);
	tcase_add_loop_test(tc, test_alias_items, 0, NELEM(item_cases));
	tcase_add_test(tc, test_alias_item_long);
	tcase_add_test(tc, test_specs);
	tcase_add_test(tc, test_texthash_reload);
	tcase_add_test(tc, test_value_buffer);
	tcase_add_test(tc, test_lmdb_build_lookup);
	tcase_add_test(tc, test_lmdb_big);
	tcase_add_test(tc, test_lmdb_format);
	tcase_add_test(tc, test_lmdb_foreign);
	tcase_add_test(tc, test_lmdb_build_fails);
	tcase_add_test(tc, test_lmdb_mode);
	tcase_add_test(tc, test_lmdb_reopen);
	tcase_add_test(tc, test_lmdb_rebuild_concurrent);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_list_build);
	tcase_add_loop_test(tc, test_address_order, 0, NELEM(addr_cases));
	tcase_add_loop_test(tc, test_domain_walk, 0, NELEM(domain_cases));
	tcase_add_test(tc, test_order_across_maps);
	tcase_add_test(tc, test_order_long);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(map_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
