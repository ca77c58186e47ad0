/*
 * map_impl: what map.c, map_parse.c and map_lmdb.c share. Private to the
 * map module; everything public is in map.h.
 */
#ifndef TERN_MAP_IMPL_H
#define TERN_MAP_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/idxhash.h"
#include "config/map.h"

/* One entry: key and value share one allocation ("key\0value\0"). */
struct map_entry {
	char *key;		/* owned; folded to lower case */
	const char *value;	/* inside key's allocation */
	size_t klen, vlen;
	unsigned line;		/* where it was defined, for the duplicate warning */
};

/* A parsed source: entries in file order, duplicates left out. */
struct map_table {
	struct map_entry *v;
	size_t n, cap;
	struct idxhash index;
};

/* Where diagnostics go: "FILE:LINE: ..." lines, capped. */
struct map_diag {
	struct buf *out;	/* borrowed; NULL: count only */
	const char *file;	/* borrowed; the name in messages */
	unsigned errors;	/* errors reported (warnings are not counted) */
	unsigned lines;		/* lines written */
};

void *map_xmalloc(size_t n);
char *map_xstrdup(const char *s);

/* Append "FILE:LINE: [warning: ]message\n" (line 0: "FILE: ..."). Errors
 * are counted; past MAP_DIAG_LINES_MAX lines one "too many" line ends it. */
void map_diag_add(struct map_diag *d, unsigned line, bool warning, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Append "WHO: message\n" to diag (may be NULL), outside any file. */
void map_diag_line(struct buf *diag, const char *who, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void map_table_init(struct map_table *t);
void map_table_free(struct map_table *t);
/* The entry for key (klen bytes, already folded), or NULL. */
const struct map_entry *map_table_find(const struct map_table *t, const char *key, size_t klen);

/* Copy s (len bytes) folded to ASCII lower case into dst (dstsz > len). */
void map_fold(char *dst, const char *s, size_t len);

/*
 * Parse a source (len bytes at text; file names it in messages) in the
 * format flags name into t, which must be empty. Errors and warnings go
 * to diag; returns the number of errors (0: t holds the map).
 */
unsigned map_parse_text(const char *text, size_t len, const char *file, unsigned flags,
                        struct map_table *t, struct buf *diag);

/*
 * Read and parse the source file path into t (empty). MAP_OK,
 * MAP_ERR_NOINPUT, MAP_ERR_IO or MAP_ERR_DATA, reported in diag.
 */
enum map_status map_load_file(const char *path, unsigned flags, struct map_table *t,
                              struct buf *diag);

/* Read the whole file at path into b (up to b's maximum). MAP_OK,
 * MAP_ERR_NOINPUT or MAP_ERR_IO, reported in diag as "PATH: ...". */
enum map_status map_read_file(const char *path, struct buf *b, struct buf *diag);

/* ---- rule tables (regexp:, cidr:): map_parse.c ---- */

/* Deepest nesting of if ... endif. */
#define MAP_IF_DEPTH_MAX 100

/* The ifs open while a rule table is read: their rule indexes and lines. */
struct map_ifs {
	size_t at[MAP_IF_DEPTH_MAX];
	unsigned line[MAP_IF_DEPTH_MAX];
	size_t depth;
};

/* Open an if (the rule at index at, on line). false after reporting
 * that they nest too deep. */
bool map_ifs_push(struct map_ifs *ifs, size_t at, unsigned line, struct map_diag *d);
/* Close the innermost if: its rule index in *at. false after reporting
 * "endif without if". */
bool map_ifs_pop(struct map_ifs *ifs, size_t *at, unsigned line, struct map_diag *d);

/* One logical line (len bytes at s, trailing blanks cut) of a rule table
 * that starts on line; problems to d. */
typedef void map_rule_line_fn(void *arg, const char *s, size_t len, unsigned line,
                              struct map_ifs *ifs, struct map_diag *d);

/* Read a rule table (len bytes; file names it in messages): each logical
 * line to fn, then "if without endif" for each if left open. Returns the
 * number of errors. */
unsigned map_rules_parse(const char *text, size_t len, const char *file, map_rule_line_fn *fn,
                         void *arg, struct buf *diag);

/* ---- map_regexp.c: regexp_table(5) ---- */

struct map_regexp;

/* Parse a source (len bytes; file names it in messages). MAP_OK with *out,
 * or MAP_ERR_DATA with every problem in diag. */
enum map_status map_regexp_parse(const char *text, size_t len, const char *file,
                                 struct map_regexp **out, struct buf *diag);
void map_regexp_free(struct map_regexp *r);
size_t map_regexp_count(const struct map_regexp *r);
/* key as given (the i flag decides about case). As map_lookup(). */
enum map_result map_regexp_lookup(const struct map_regexp *r, const char *spec, const char *key,
                                  struct buf *value, char *err, size_t errsz);

/* ---- map_cidr.c: cidr_table(5) ---- */

struct map_cidr;

enum map_status map_cidr_parse(const char *text, size_t len, const char *file,
                               struct map_cidr **out, struct buf *diag);
void map_cidr_free(struct map_cidr *c);
size_t map_cidr_count(const struct map_cidr *c);
/* key: an IPv4 or IPv6 address (else not found). As map_lookup(). */
enum map_result map_cidr_lookup(const struct map_cidr *c, const char *spec, const char *key,
                                struct buf *value, char *err, size_t errsz);

/* ---- map_lmdb.c ---- */

struct map_lmdb;

/* Open path + MAP_LMDB_SUFFIX read-only; spec names the map in messages. */
enum map_status map_lmdb_open(const char *spec, const char *path, unsigned flags,
                              struct map_lmdb **out, struct buf *diag);
void map_lmdb_close(struct map_lmdb *l);
size_t map_lmdb_count(struct map_lmdb *l);
/* key: klen bytes, folded. As map_lookup(). */
enum map_result map_lmdb_lookup(struct map_lmdb *l, const char *key, size_t klen,
                                struct buf *value, char *err, size_t errsz);
/* Check the file now (map_reload); MAP_OK or why not, in diag. */
enum map_status map_lmdb_recheck(struct map_lmdb *l, struct buf *diag);
/* Write t as path + MAP_LMDB_SUFFIX, atomically (see map_build()). */
enum map_status map_lmdb_write(const char *path, unsigned flags, const struct map_table *t,
                               struct buf *diag);

#endif
