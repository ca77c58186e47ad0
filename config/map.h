/*
 * map: Postfix-style lookup tables ("maps") named by a spec TYPE:PATH, and
 * lists of them searched in order (transport_maps, alias_maps,
 * virtual_alias_maps, virtual_mailbox_maps, smtpd_sender_login_maps,
 * smtp_sasl_password_maps). doc/maps.md is the administrator's side.
 *
 *   texthash:/path  the text file is read into a hash table by map_open()
 *                   and again by map_reload(); never re-read otherwise.
 *   lmdb:/path      `ternctl map build /path` compiles /path into
 *                   /path.lmdb (a new file renamed over the old one, so a
 *                   reader sees the old map or the new one, never half of
 *                   one); lookups read it without loading it, and notice a
 *                   rebuilt file by itself (at most one stat(2) a second).
 *
 * Source formats (map_parse.c has the exact rules): `key value` lines as
 * postmap(1) reads them, or `name: value, value` lines as aliases(5) and
 * postalias(1) read them (MAP_F_ALIASES). Keys are folded to lower case
 * (ASCII only), at build time and at lookup time. Every syntax error is
 * reported as "FILE:LINE: message" and rejects the whole file (a map that
 * silently lost a line would route mail wrongly); a duplicate key is a
 * warning "FILE:LINE: warning: ..." and the first entry wins.
 *
 * Error policy: returns errors, never logs or exits (the caller knows
 * whether it is starting, reloading or answering a client). A lookup that
 * cannot read its map returns MAP_ERROR: the caller defers (451 4.3.0),
 * never treats it as "not found". Out of memory is fatal() (via buf).
 *
 * Ownership: struct map and struct map_list own everything in them;
 * values are copied into the caller's buf. LMDB handles never cross a
 * fork: open maps in the role that uses them, after it was forked. A map
 * is used by one thread at a time (lookups may reopen the lmdb file).
 */
#ifndef TERN_MAP_H
#define TERN_MAP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "config/config.h"

/* Longest key, in bytes: LMDB's compiled-in key limit (MDB_MAXKEYSIZE). */
#define MAP_KEY_MAX 511
/* Longest logical line of a source file (continuations joined), bytes. */
#define MAP_LINE_MAX (64 * 1024)
/* Longest value; a value is a part of a logical line. */
#define MAP_VALUE_MAX MAP_LINE_MAX
/* Largest source file read (texthash: held in memory). */
#define MAP_FILE_MAX ((size_t)1 << 30)
/* Longest spec ("lmdb:" and a path). */
#define MAP_SPEC_MAX 4096
/* lmdb: least time between two stat(2)s of the file by lookups, ms. */
#define MAP_RECHECK_MS 1000
/* Most diagnostics one file reports before "too many errors". */
#define MAP_DIAG_LINES_MAX 100
/* Longest item of an alias value (an address, command, file or path). */
#define MAP_ALIAS_ITEM_MAX 4096
/* Suffix of a compiled map: PATH -> PATH.lmdb. */
#define MAP_LMDB_SUFFIX ".lmdb"

/* Outcome of opening, reloading or building a map. */
enum map_status {
	MAP_OK = 0,
	MAP_ERR_SPEC,		/* not TYPE:/absolute/path, or an unknown TYPE */
	MAP_ERR_NOINPUT,	/* the file (source, or PATH.lmdb) does not exist */
	MAP_ERR_DATA,		/* syntax errors, or a .lmdb of the wrong format */
	MAP_ERR_IO,		/* cannot read (permissions, I/O, LMDB error) */
	MAP_ERR_CREATE,		/* map_build: cannot write PATH.lmdb */
};

/* Outcome of a lookup. */
enum map_result {
	MAP_FOUND = 0,
	MAP_NOTFOUND = 1,
	MAP_ERROR = -1,		/* temporary: the map cannot be read now */
};

/* Flags of map_open(), map_list_open(), map_build(). */
#define MAP_F_ALIASES    0x01	/* source in aliases(5) format (alias_maps) */
#define MAP_F_ANY_FORMAT 0x02	/* lmdb: accept a file built in either format
				 * (ternctl map query); texthash ignores it */
#define MAP_F_RECHECK    0x04	/* lmdb: stat(2) on every lookup (ternctl, tests) */

struct map;
struct map_list;

/* ---- one map ---- */

/*
 * Open the map named by spec ("texthash:/etc/tern/transport",
 * "lmdb:/etc/tern/aliases"). PATH must be absolute (roles change
 * directory). texthash reads and parses the file now; lmdb opens
 * PATH.lmdb read-only and checks it was built in the format flags ask for
 * (MAP_F_ALIASES or not, unless MAP_F_ANY_FORMAT).
 * Returns MAP_OK with *out set, or another status with *out NULL. diag
 * gets one line per problem ("FILE:LINE: message\n", "SPEC: message\n"),
 * and warnings ("FILE:LINE: warning: ...\n") even on success.
 */
enum map_status map_open(const char *spec, unsigned flags, struct map **out, struct buf *diag);

/*
 * A texthash map made from text in memory (len bytes, NULs rejected);
 * name is used in messages and by map_spec(). For tests and checks.
 */
enum map_status map_open_text(const char *name, const char *text, size_t len, unsigned flags,
                              struct map **out, struct buf *diag);

void map_close(struct map *m);

/* The spec it was opened with ("lmdb:/etc/tern/transport"); owned by m. */
const char *map_spec(const struct map *m);

/* Number of entries (texthash: as loaded; lmdb: of the file in use;
 * regexp:, cidr: rules, if/endif not counted). */
size_t map_count(struct map *m);

/*
 * A fixed-string table (texthash:, lmdb:), as opposed to a pattern table
 * (regexp:, cidr:). Pattern tables are given only the whole string of a
 * query (access(5): "no parent domain or parent network search is done,
 * user@domain mail addresses are not broken up"), never partial keys.
 */
bool map_fixed(const struct map *m);

/*
 * Look key up (folded to lower case first; a key longer than MAP_KEY_MAX
 * is not found). MAP_FOUND: value holds the value, NUL-terminated
 * (buf_cstr) -- give it a maximum of at least MAP_VALUE_MAX.
 * MAP_NOTFOUND: value is empty. MAP_ERROR: the map cannot be read (the
 * lmdb file vanished, became unreadable, or a rebuilt one cannot be
 * opened), or value's maximum is too small; err says why
 * ("SPEC: message"). lmdb: at most every MAP_RECHECK_MS (always with
 * MAP_F_RECHECK) the file is stat(2)ed; a different file (inode, size,
 * mtime) is opened and used from then on; once it cannot be, lookups
 * fail until it can.
 */
enum map_result map_lookup(struct map *m, const char *key, struct buf *value, char *err,
                           size_t errsz);

/*
 * On the configuration reload: texthash reads its file again (on failure
 * the old contents stay in use and the status says why); lmdb checks its
 * file now. diag as for map_open().
 */
enum map_status map_reload(struct map *m, struct buf *diag);

/*
 * `ternctl map build`: parse the source file path (MAP_F_ALIASES: aliases
 * format) and write PATH.lmdb atomically: a temporary file in the same
 * directory, fsync'd, renamed over PATH.lmdb, the directory fsync'd. The
 * new file gets the owner (when run as root) and the group/other read
 * bits of the source. Nothing is written when the source has errors, or
 * when PATH.lmdb exists and was built in the other format (MAP_ERR_DATA:
 * `ternctl map build /etc/aliases` without --aliases would break every
 * alias lookup; remove the file to change its format).
 * Returns MAP_OK, MAP_ERR_NOINPUT, MAP_ERR_DATA, MAP_ERR_IO (reading the
 * source) or MAP_ERR_CREATE; diag as for map_open(). *entries (may be
 * NULL) gets the number of entries written.
 */
enum map_status map_build(const char *path, unsigned flags, struct buf *diag, size_t *entries);

/* ---- lists of maps (a LIST parameter) ---- */

/*
 * Open every spec of specs (a LIST parameter's items; none gives an empty
 * list, whose lookups find nothing). All are tried so diag reports every
 * problem; the status is the first failure's, and *out is NULL then.
 */
enum map_status map_list_open(const struct config_list *specs, unsigned flags,
                              struct map_list **out, struct buf *diag);
void map_list_close(struct map_list *ml);
size_t map_list_size(const struct map_list *ml);
/* The i-th map (i < map_list_size), borrowed from ml. */
struct map *map_list_get(struct map_list *ml, size_t i);

/* map_reload() on each map; the first failure's status, diag gets all. */
enum map_status map_list_reload(struct map_list *ml, struct buf *diag);

/*
 * newaliases / `sendmail -bi`: map_build() every lmdb: map of specs (the
 * alias_maps items, with MAP_F_ALIASES); texthash: maps are only parsed,
 * to report their errors. The first failure's status; diag gets all.
 */
enum map_status map_list_build(const struct config_list *specs, unsigned flags,
                               struct buf *diag);

/*
 * key in each map in order; the first hit wins. An error in a map stops
 * the search with MAP_ERROR (as Postfix does: a later map must not answer
 * for one that could not be read). value and err as for map_lookup().
 */
enum map_result map_list_lookup(struct map_list *ml, const char *key, struct buf *value,
                                char *err, size_t errsz);

/* ---- the lookup orders of transport(5), virtual(5), aliases ---- */

/* Which key form answered. */
enum map_form {
	MAP_FORM_FULL,		/* the address as given: user+ext@domain (or user+ext) */
	MAP_FORM_BARE,		/* the extension dropped: user@domain (or user) */
	MAP_FORM_LOCAL_FULL,	/* MAP_ADDR_LOCAL: user+ext */
	MAP_FORM_LOCAL_BARE,	/* MAP_ADDR_LOCAL: user */
	MAP_FORM_AT_DOMAIN,	/* MAP_ADDR_AT_DOMAIN: @domain */
	MAP_FORM_DOMAIN,	/* MAP_ADDR_DOMAINS: domain */
	MAP_FORM_PARENT,	/* MAP_ADDR_DOMAINS: .parent (a subdomain of parent) */
	MAP_FORM_WILDCARD,	/* MAP_ADDR_WILDCARD: * */
};

struct map_match {
	enum map_form form;
	size_t map;			/* index of the map that answered */
	char key[MAP_KEY_MAX + 1];	/* the key that answered, folded */
	/* The extension dropped to match, delimiter included ("+tag"), for
	 * MAP_FORM_BARE and MAP_FORM_LOCAL_BARE; "" otherwise (Postfix
	 * propagates it to virtual alias results: the caller's choice). */
	char extension[MAP_KEY_MAX + 1];
};

/* Flags of map_list_lookup_address(): which forms to try past the first two. */
#define MAP_ADDR_LOCAL     0x01	/* the domain is ours (mydestination): user+ext, user */
#define MAP_ADDR_AT_DOMAIN 0x02	/* @domain: virtual(5), access(5), sender login maps */
#define MAP_ADDR_DOMAINS   0x04	/* domain, .parent ...: transport(5) */
#define MAP_ADDR_WILDCARD  0x08	/* finally *: transport(5) */

/*
 * Look up an address (as in the envelope: "user+ext@Example.ORG", or a
 * bare local part "user+ext" for alias_maps) the way Postfix does, each
 * form in every map before the next form (the first hit wins):
 *
 *   1. user+ext@domain                  the address as given
 *   2. user@domain                      when it has an extension
 *   3. user+ext, then user              MAP_ADDR_LOCAL
 *   4. @domain                          MAP_ADDR_AT_DOMAIN
 *   5. domain, .parent, ..., .tld       MAP_ADDR_DOMAINS (map_list_lookup_domain)
 *   6. *                                MAP_ADDR_WILDCARD
 *
 * Case is folded; one trailing dot of the domain is dropped. The
 * extension starts at the first of the characters of delimiters
 * (recipient_delimiter; NULL or "" for none) in the local part, and is
 * not split off when it would leave an empty user, when the local part is
 * quoted, for postmaster, mailer-daemon and double-bounce, and (with '-'
 * among the delimiters) for owner-* and *-request, as Postfix's
 * split_addr(). The empty address (<>) is never found. match (may be
 * NULL) says which form answered. value and err as for map_lookup().
 */
enum map_result map_list_lookup_address(struct map_list *ml, const char *addr,
                                        const char *delimiters, unsigned flags,
                                        struct buf *value, struct map_match *match, char *err,
                                        size_t errsz);

/*
 * transport(5)'s domain walk: "a.b.example.org", then ".b.example.org",
 * ".example.org", ".org" (an entry ".example.org" matches every subdomain
 * of example.org but not example.org itself: Postfix's behaviour when
 * transport_maps is not in parent_domain_matches_subdomains, its
 * default), then "*" when wildcard. An address literal ("[192.0.2.1]")
 * is looked up as is, without a walk. Forms MAP_FORM_DOMAIN, _PARENT,
 * _WILDCARD. value, match and err as for map_list_lookup_address().
 */
enum map_result map_list_lookup_domain(struct map_list *ml, const char *domain, bool wildcard,
                                       struct buf *value, struct map_match *match, char *err,
                                       size_t errsz);

/* ---- alias values ---- */

enum map_alias_kind {
	MAP_ALIAS_ADDRESS,	/* user, user@domain, "quoted local"@domain, \user */
	MAP_ALIAS_COMMAND,	/* |command (text: the command, without '|') */
	MAP_ALIAS_FILE,		/* /path/name (text: the path) */
	MAP_ALIAS_INCLUDE,	/* :include:/path (text: the path) */
};

struct map_alias_item {
	enum map_alias_kind kind;
	char text[MAP_ALIAS_ITEM_MAX + 1];
};

/*
 * The next item of an alias value (len bytes at value; *pos starts at 0):
 * items are separated by commas outside double quotes and trimmed; empty
 * items are skipped. An item that is one quoted string ("|cmd arg",
 * "/var/mail/x") is unquoted ('\' escapes the next byte) before it is
 * classified; an address keeps its quotes as written. Policy (whether
 * commands and files are allowed, :include: expansion) is the caller's.
 * Returns 1 with *item set, 0 at the end, -1 with *why (a static phrase)
 * on a syntax error: unbalanced quote, an item longer than
 * MAP_ALIAS_ITEM_MAX, :include: without an absolute path.
 */
int map_alias_next(const char *value, size_t len, size_t *pos, struct map_alias_item *item,
                   const char **why);

/* "lmdb:" and "texthash:" names; for messages. */
const char *map_types(void);

#endif
