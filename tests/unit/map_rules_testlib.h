/*
 * map_rules_testlib: what map_regexp_test and map_cidr_test share: a
 * table written to a temporary file and opened as MAP_RULES_TYPE
 * (defined by the test before including this), one lookup checked, one
 * load error checked with its exact "FILE:LINE: ..." text.
 */
#ifndef TERN_MAP_RULES_TESTLIB_H
#define TERN_MAP_RULES_TESTLIB_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "config/config.h"
#include "config/map.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define DIAG_MAX (64 * 1024)
#define ERR_SIZE 1024
#define PATH_SIZE 256

static char test_path[PATH_SIZE];

/* Write text to the table file (a fresh one when create). */
static void
table_write(const char *text, bool create)
{
	FILE *f;
	int fd;

	if (create) {
		snprintf(test_path, sizeof(test_path), "/tmp/tern-map-" MAP_RULES_TYPE "-XXXXXX");
		fd = mkstemp(test_path);
		ck_assert_int_ge(fd, 0);
		f = fdopen(fd, "w");
	} else {
		f = fopen(test_path, "w");
	}
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static enum map_status
table_open(const char *text, struct map **m, struct buf *diag)
{
	char spec[PATH_SIZE + 16];

	table_write(text, true);
	snprintf(spec, sizeof(spec), MAP_RULES_TYPE ":%s", test_path);
	return map_open(spec, 0, m, diag);
}

/* key in a map made of table gives want (NULL: not found). */
static void
lookup_check(int row, const char *table, const char *key, const char *want)
{
	char err[ERR_SIZE] = "";
	struct buf diag, value;
	struct map *m = NULL;
	enum map_result r;

	buf_init(&diag, DIAG_MAX);
	buf_init(&value, MAP_VALUE_MAX);
	ck_assert_msg(table_open(table, &m, &diag) == MAP_OK, "row %d: %s", row, buf_cstr(&diag));
	r = map_lookup(m, key, &value, err, sizeof(err));
	if (want == NULL) {
		ck_assert_msg(r == MAP_NOTFOUND, "row %d: found %s", row, buf_cstr(&value));
	} else {
		ck_assert_msg(r == MAP_FOUND, "row %d: %d %s", row, r, err);
		ck_assert_str_eq(buf_cstr(&value), want);
	}
	map_close(m);
	unlink(test_path);
	buf_free(&value);
	buf_free(&diag);
}

/* table fails to load with the diagnostics want, where "F" at a line
 * start stands for the file's name; with prefix_only, want is compared
 * as a prefix (regcomp(3)'s own words vary). */
static void
error_check(const char *table, const char *want_text, bool prefix_only)
{
	struct buf diag, want;
	struct map *m = NULL;
	const char *f;

	buf_init(&diag, DIAG_MAX);
	buf_init(&want, DIAG_MAX);
	ck_assert_int_eq(table_open(table, &m, &diag), MAP_ERR_DATA);
	ck_assert_ptr_null(m);
	for (f = want_text; *f; f++)
		if (*f == 'F' && (f == want_text || f[-1] == '\n'))
			buf_append_str(&want, test_path);
		else
			buf_append_char(&want, *f);
	if (prefix_only)
		ck_assert_msg(strncmp(buf_cstr(&diag), buf_cstr(&want), buf_len(&want)) == 0, "%s",
		              buf_cstr(&diag));
	else
		ck_assert_str_eq(buf_cstr(&diag), buf_cstr(&want));
	unlink(test_path);
	buf_free(&want);
	buf_free(&diag);
}

#endif
