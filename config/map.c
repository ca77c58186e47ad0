/*
 * map: opening maps by spec, texthash tables, lists of maps, and
 * Postfix's lookup orders for addresses and domains. The source formats
 * are in map_parse.c, the compiled lmdb: files in map_lmdb.c.
 *
 * Error policy: returns statuses and messages, never logs or exits;
 * out of memory is fatal(). Ownership: a map owns its table or its LMDB
 * env; a list owns its maps; values are copied into the caller's buf.
 */
#include "config/map.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/map_impl.h"

#define MAP_TYPE_TEXTHASH "texthash"
#define MAP_TYPE_LMDB "lmdb"
#define MAP_TYPE_REGEXP "regexp"
#define MAP_TYPE_CIDR "cidr"

enum map_type {
	MAP_TEXTHASH,
	MAP_LMDB,
	MAP_REGEXP,
	MAP_CIDR,
};

/* The types, by name. */
static const struct {
	const char *name;
	enum map_type type;
} map_type_names[] = {
	{ MAP_TYPE_TEXTHASH, MAP_TEXTHASH },
	{ MAP_TYPE_LMDB, MAP_LMDB },
	{ MAP_TYPE_REGEXP, MAP_REGEXP },
	{ MAP_TYPE_CIDR, MAP_CIDR },
};

struct map {
	enum map_type type;
	char *spec;
	char *path;		/* texthash: the file; NULL when made from memory */
	unsigned flags;
	struct map_table table;	/* texthash */
	struct map_lmdb *lmdb;	/* lmdb */
	struct map_regexp *regexp;	/* regexp */
	struct map_cidr *cidr;		/* cidr */
};

struct map_list {
	struct map **v;
	size_t n;
};

const char *
map_types(void)
{
	return MAP_TYPE_LMDB ":, " MAP_TYPE_TEXTHASH ":, " MAP_TYPE_REGEXP ": and " MAP_TYPE_CIDR ":";
}

/* ---- specs ---- */

/* Split spec into its type and its path (borrowed from spec). */
static enum map_status
map_spec_parse(const char *spec, enum map_type *type, const char **path, struct buf *diag)
{
	const char *colon = strchr(spec, ':');
	size_t tlen, i;

	if (strlen(spec) > MAP_SPEC_MAX) {
		map_diag_line(diag, "map", "spec longer than %d bytes", MAP_SPEC_MAX);
		return MAP_ERR_SPEC;
	}
	if (colon == NULL) {
		map_diag_line(diag, spec, "no map type: write " MAP_TYPE_LMDB ":%s or "
		              MAP_TYPE_TEXTHASH ":%s", spec, spec);
		return MAP_ERR_SPEC;
	}
	tlen = (size_t)(colon - spec);
	for (i = 0; i < sizeof(map_type_names) / sizeof(map_type_names[0]); i++)
		if (tlen == strlen(map_type_names[i].name) &&
		    strncmp(spec, map_type_names[i].name, tlen) == 0)
			break;
	if (i < sizeof(map_type_names) / sizeof(map_type_names[0])) {
		*type = map_type_names[i].type;
	} else {
		map_diag_line(diag, spec, "unsupported map type \"%.*s\" (tern has %s)", (int)tlen,
		              spec, map_types());
		return MAP_ERR_SPEC;
	}
	*path = colon + 1;
	if ((*path)[0] != '/') {
		map_diag_line(diag, spec, "the path must be absolute");
		return MAP_ERR_SPEC;
	}
	return MAP_OK;
}

/* ---- one map ---- */

/* Read and compile a regexp: or cidr: file (held whole, like texthash:). */
static enum map_status
map_pattern_load(enum map_type type, const char *path, struct map_regexp **re,
                 struct map_cidr **cidr, struct buf *diag)
{
	enum map_status st;
	struct buf text;

	*re = NULL;
	*cidr = NULL;
	buf_init(&text, MAP_FILE_MAX);
	st = map_read_file(path, &text, diag);
	if (st == MAP_OK && type == MAP_REGEXP)
		st = map_regexp_parse(buf_data(&text), buf_len(&text), path, re, diag);
	else if (st == MAP_OK)
		st = map_cidr_parse(buf_data(&text), buf_len(&text), path, cidr, diag);
	buf_free(&text);
	return st;
}

static struct map *
map_new(enum map_type type, const char *spec, unsigned flags)
{
	struct map *m = map_xmalloc(sizeof(*m));

	memset(m, 0, sizeof(*m));
	m->type = type;
	m->spec = map_xstrdup(spec);
	m->flags = flags;
	map_table_init(&m->table);
	return m;
}

enum map_status
map_open(const char *spec, unsigned flags, struct map **out, struct buf *diag)
{
	enum map_status st;
	enum map_type type;
	const char *path;
	struct map *m;

	*out = NULL;
	if ((st = map_spec_parse(spec, &type, &path, diag)) != MAP_OK)
		return st;
	m = map_new(type, spec, flags);
	if (type == MAP_TEXTHASH) {
		m->path = map_xstrdup(path);
		st = map_load_file(path, flags, &m->table, diag);
	} else if (type == MAP_LMDB) {
		st = map_lmdb_open(spec, path, flags, &m->lmdb, diag);
	} else {
		m->path = map_xstrdup(path);
		st = map_pattern_load(type, path, &m->regexp, &m->cidr, diag);
	}
	if (st != MAP_OK) {
		map_close(m);
		return st;
	}
	*out = m;
	return MAP_OK;
}

enum map_status
map_open_text(const char *name, const char *text, size_t len, unsigned flags, struct map **out,
              struct buf *diag)
{
	struct map *m = map_new(MAP_TEXTHASH, name, flags);

	*out = NULL;
	if (map_parse_text(text, len, name, flags, &m->table, diag) > 0) {
		map_close(m);
		return MAP_ERR_DATA;
	}
	*out = m;
	return MAP_OK;
}

void
map_close(struct map *m)
{
	if (m == NULL)
		return;
	map_table_free(&m->table);
	map_lmdb_close(m->lmdb);
	map_regexp_free(m->regexp);
	map_cidr_free(m->cidr);
	free(m->spec);
	free(m->path);
	free(m);
}

const char *
map_spec(const struct map *m)
{
	return m->spec;
}

size_t
map_count(struct map *m)
{
	switch (m->type) {
	case MAP_LMDB:
		return map_lmdb_count(m->lmdb);
	case MAP_REGEXP:
		return map_regexp_count(m->regexp);
	case MAP_CIDR:
		return map_cidr_count(m->cidr);
	default:
		return m->table.n;
	}
}

bool
map_fixed(const struct map *m)
{
	return m->type == MAP_TEXTHASH || m->type == MAP_LMDB;
}

enum map_result
map_lookup(struct map *m, const char *key, struct buf *value, char *err, size_t errsz)
{
	char folded[MAP_KEY_MAX + 1];
	const struct map_entry *e;
	size_t klen = strlen(key);

	buf_reset(value);
	/* Pattern tables see the key whole and as given. */
	if (m->type == MAP_REGEXP)
		return map_regexp_lookup(m->regexp, m->spec, key, value, err, errsz);
	if (m->type == MAP_CIDR)
		return map_cidr_lookup(m->cidr, m->spec, key, value, err, errsz);
	/* Neither can be a key of any map. */
	if (klen == 0 || klen > MAP_KEY_MAX)
		return MAP_NOTFOUND;
	map_fold(folded, key, klen);
	if (m->type == MAP_LMDB)
		return map_lmdb_lookup(m->lmdb, folded, klen, value, err, errsz);
	if ((e = map_table_find(&m->table, folded, klen)) == NULL)
		return MAP_NOTFOUND;
	if (buf_append(value, e->value, e->vlen) != BUF_OK) {
		snprintf(err, errsz, "%s: value of %zu bytes does not fit the buffer", m->spec,
		         e->vlen);
		buf_reset(value);
		return MAP_ERROR;
	}
	buf_cstr(value);
	return MAP_FOUND;
}

enum map_status
map_reload(struct map *m, struct buf *diag)
{
	struct map_table fresh;
	enum map_status st;

	if (m->type == MAP_LMDB)
		return map_lmdb_recheck(m->lmdb, diag);
	if (m->path == NULL)
		return MAP_OK;	/* made from memory: nothing to read again */
	if (m->type == MAP_REGEXP || m->type == MAP_CIDR) {
		struct map_regexp *re;
		struct map_cidr *cidr;

		if ((st = map_pattern_load(m->type, m->path, &re, &cidr, diag)) != MAP_OK)
			return st;	/* the old rules stay in use */
		map_regexp_free(m->regexp);
		map_cidr_free(m->cidr);
		m->regexp = re;
		m->cidr = cidr;
		return MAP_OK;
	}
	map_table_init(&fresh);
	st = map_load_file(m->path, m->flags, &fresh, diag);
	if (st != MAP_OK) {
		map_table_free(&fresh);	/* the old contents stay in use */
		return st;
	}
	map_table_free(&m->table);
	m->table = fresh;
	return MAP_OK;
}

enum map_status
map_build(const char *path, unsigned flags, struct buf *diag, size_t *entries)
{
	struct map_table t;
	enum map_status st;

	if (entries != NULL)
		*entries = 0;
	map_table_init(&t);
	st = map_load_file(path, flags, &t, diag);
	if (st == MAP_OK)
		st = map_lmdb_write(path, flags, &t, diag);
	if (st == MAP_OK && entries != NULL)
		*entries = t.n;
	map_table_free(&t);
	return st;
}

/* ---- lists ---- */

enum map_status
map_list_open(const struct config_list *specs, unsigned flags, struct map_list **out,
              struct buf *diag)
{
	enum map_status st, first = MAP_OK;
	struct map_list *ml = map_xmalloc(sizeof(*ml));
	size_t i;

	ml->n = 0;
	ml->v = map_xmalloc((specs->n ? specs->n : 1) * sizeof(*ml->v));
	for (i = 0; i < specs->n; i++) {
		st = map_open(specs->items[i], flags, &ml->v[ml->n], diag);
		if (st == MAP_OK)
			ml->n++;
		else if (first == MAP_OK)
			first = st;
	}
	if (first != MAP_OK) {
		map_list_close(ml);
		*out = NULL;
		return first;
	}
	*out = ml;
	return MAP_OK;
}

void
map_list_close(struct map_list *ml)
{
	size_t i;

	if (ml == NULL)
		return;
	for (i = 0; i < ml->n; i++)
		map_close(ml->v[i]);
	free(ml->v);
	free(ml);
}

size_t
map_list_size(const struct map_list *ml)
{
	return ml->n;
}

struct map *
map_list_get(struct map_list *ml, size_t i)
{
	return ml->v[i];
}

enum map_status
map_list_reload(struct map_list *ml, struct buf *diag)
{
	enum map_status st, first = MAP_OK;
	size_t i;

	for (i = 0; i < ml->n; i++)
		if ((st = map_reload(ml->v[i], diag)) != MAP_OK && first == MAP_OK)
			first = st;
	return first;
}

enum map_status
map_list_build(const struct config_list *specs, unsigned flags, struct buf *diag)
{
	enum map_status st, first = MAP_OK;
	struct map_table t;
	enum map_type type;
	const char *path;
	size_t i;

	for (i = 0; i < specs->n; i++) {
		st = map_spec_parse(specs->items[i], &type, &path, diag);
		if (st == MAP_OK && type == MAP_LMDB) {
			st = map_build(path, flags, diag, NULL);
		} else if (st == MAP_OK && (type == MAP_REGEXP || type == MAP_CIDR)) {
			struct map_regexp *re;
			struct map_cidr *cidr;

			st = map_pattern_load(type, path, &re, &cidr, diag);
			map_regexp_free(re);
			map_cidr_free(cidr);
		} else if (st == MAP_OK) {
			map_table_init(&t);	/* texthash: read at start; check it now */
			st = map_load_file(path, flags, &t, diag);
			map_table_free(&t);
		}
		if (st != MAP_OK && first == MAP_OK)
			first = st;
	}
	return first;
}

enum map_result
map_list_lookup(struct map_list *ml, const char *key, struct buf *value, char *err,
                size_t errsz)
{
	enum map_result r;
	size_t i;

	buf_reset(value);
	for (i = 0; i < ml->n; i++)
		if ((r = map_lookup(ml->v[i], key, value, err, errsz)) != MAP_NOTFOUND)
			return r;
	return MAP_NOTFOUND;
}

/* ---- lookup orders ---- */

/* One search: where results go. */
struct map_probe {
	struct map_list *ml;
	struct buf *value;
	struct map_match *match;
	char *err;
	size_t errsz;
	bool domain_query;	/* the query is a domain: its own name is whole */
};

/* key (a form of the query) in every map in order. ext: the extension
 * dropped to make key, or "". */
static enum map_result
map_probe(struct map_probe *p, const char *key, enum map_form form, const char *ext)
{
	enum map_result r;
	size_t i;

	for (i = 0; i < p->ml->n; i++) {
		/* access(5), transport(5): a pattern table sees only the
		 * string whole (the address as given, the domain itself),
		 * never the partial keys Postfix makes for fixed tables. */
		if (!map_fixed(p->ml->v[i]) && form != MAP_FORM_FULL &&
		    !(form == MAP_FORM_DOMAIN && p->domain_query))
			continue;
		r = map_lookup(p->ml->v[i], key, p->value, p->err, p->errsz);
		if (r == MAP_NOTFOUND)
			continue;
		if (r == MAP_FOUND && p->match != NULL) {
			p->match->form = form;
			p->match->map = i;
			map_fold(p->match->key, key, strlen(key));	/* map_lookup took it */
			snprintf(p->match->extension, sizeof(p->match->extension), "%s", ext);
		}
		return r;
	}
	return MAP_NOTFOUND;
}

/* A key from printf-style parts; NOTFOUND (no probe) when it would be
 * longer than any key. */
static enum map_result
map_probef(struct map_probe *p, enum map_form form, const char *ext, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum map_result
map_probef(struct map_probe *p, enum map_form form, const char *ext, const char *fmt, ...)
{
	char key[MAP_KEY_MAX + 2];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n > MAP_KEY_MAX)
		return MAP_NOTFOUND;
	return map_probe(p, key, form, ext);
}

/* The domain lower-cased, one trailing dot dropped, into dst (no bounds
 * beyond MAP_KEY_MAX: a longer one cannot be in a map). False if too long. */
static bool
map_domain_norm(char *dst, const char *domain)
{
	size_t len = strlen(domain);

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len > MAP_KEY_MAX)
		return false;
	map_fold(dst, domain, len);
	return true;
}

/* transport(5)'s walk over a normalized domain: d, .parent, ..., .tld. */
static enum map_result
map_walk(struct map_probe *p, const char *d)
{
	enum map_result r;
	const char *name;

	if (d[0] == '\0')
		return MAP_NOTFOUND;
	if ((r = map_probe(p, d, MAP_FORM_DOMAIN, "")) != MAP_NOTFOUND)
		return r;
	if (d[0] == '[')	/* an address literal has no parents */
		return MAP_NOTFOUND;
	/* ".b.example.org" matches the subdomains of b.example.org: starting
	 * at the second label skips the one that would match d itself. */
	for (name = strchr(d + 1, '.'); name != NULL; name = strchr(name + 1, '.'))
		if ((r = map_probe(p, name, MAP_FORM_PARENT, "")) != MAP_NOTFOUND)
			return r;
	return MAP_NOTFOUND;
}

enum map_result
map_list_lookup_domain(struct map_list *ml, const char *domain, bool wildcard,
                       struct buf *value, struct map_match *match, char *err, size_t errsz)
{
	struct map_probe p = { ml, value, match, err, errsz, true };
	char d[MAP_KEY_MAX + 1];
	enum map_result r;

	buf_reset(value);
	if (map_domain_norm(d, domain) && (r = map_walk(&p, d)) != MAP_NOTFOUND)
		return r;
	return wildcard ? map_probe(&p, "*", MAP_FORM_WILDCARD, "") : MAP_NOTFOUND;
}

/* Never split: Postfix's reserved local parts (split_addr()). */
static const char *const map_nosplit[] = { "postmaster", "mailer-daemon", "double-bounce" };

/* Where the extension of local (len bytes) starts, or len when it has none. */
static size_t
map_extension_at(const char *local, size_t len, const char *delimiters)
{
	static const char owner[] = "owner-", request[] = "-request";
	size_t i, olen = sizeof(owner) - 1, rlen = sizeof(request) - 1;

	if (delimiters == NULL || delimiters[0] == '\0' || len == 0 || local[0] == '"')
		return len;
	for (i = 0; i < sizeof(map_nosplit) / sizeof(map_nosplit[0]); i++)
		if (strlen(map_nosplit[i]) == len && strncasecmp(local, map_nosplit[i], len) == 0)
			return len;
	/* Backwards compatible: '-' does not split owner-foo or foo-request. */
	if (strchr(delimiters, '-') != NULL &&
	    ((len >= olen && strncasecmp(local, owner, olen) == 0) ||
	     (len > rlen && strncasecmp(local + len - rlen, request, rlen) == 0)))
		return len;
	for (i = 0; i < len; i++)
		if (strchr(delimiters, local[i]) != NULL && local[i] != '\0')
			break;
	return i == 0 ? len : i;	/* an empty user is no split */
}

/* Forms 1 to 3 of map_list_lookup_address(): the local part with and
 * without its extension, with the domain d (NULL: none), then bare. */
static enum map_result
map_probe_local(struct map_probe *p, const char *local, size_t llen, size_t xat, const char *d,
                bool bare_local)
{
	char ext[MAP_KEY_MAX + 1];
	int ll = (int)llen, bl = (int)xat;
	enum map_result r;

	if (llen > MAP_KEY_MAX)	/* every form would be longer than a key */
		return MAP_NOTFOUND;
	snprintf(ext, sizeof(ext), "%.*s", (int)(llen - xat), local + xat);
	/* 1. user+ext@domain, 2. user@domain */
	if ((r = d != NULL ? map_probef(p, MAP_FORM_FULL, "", "%.*s@%s", ll, local, d) :
	     map_probef(p, MAP_FORM_FULL, "", "%.*s", ll, local)) != MAP_NOTFOUND)
		return r;
	if (xat < llen &&
	    (r = d != NULL ? map_probef(p, MAP_FORM_BARE, ext, "%.*s@%s", bl, local, d) :
	     map_probef(p, MAP_FORM_BARE, ext, "%.*s", bl, local)) != MAP_NOTFOUND)
		return r;
	/* 3. user+ext, user: the domain is ours */
	if (!bare_local || d == NULL)
		return MAP_NOTFOUND;
	if ((r = map_probef(p, MAP_FORM_LOCAL_FULL, "", "%.*s", ll, local)) != MAP_NOTFOUND)
		return r;
	if (xat < llen)
		return map_probef(p, MAP_FORM_LOCAL_BARE, ext, "%.*s", bl, local);
	return MAP_NOTFOUND;
}

enum map_result
map_list_lookup_address(struct map_list *ml, const char *addr, const char *delimiters,
                        unsigned flags, struct buf *value, struct map_match *match, char *err,
                        size_t errsz)
{
	struct map_probe p = { ml, value, match, err, errsz, false };
	char d[MAP_KEY_MAX + 1];
	const char *at = strrchr(addr, '@');
	size_t llen = at != NULL ? (size_t)(at - addr) : strlen(addr);
	enum map_result r;

	buf_reset(value);
	if (addr[0] == '\0')
		return MAP_NOTFOUND;
	/* A domain longer than any key: only "*" can match. */
	if (at == NULL || map_domain_norm(d, at + 1)) {
		r = map_probe_local(&p, addr, llen, map_extension_at(addr, llen, delimiters),
		                    at != NULL ? d : NULL, (flags & MAP_ADDR_LOCAL) != 0);
		if (r != MAP_NOTFOUND)
			return r;
		/* 4. @domain */
		if ((flags & MAP_ADDR_AT_DOMAIN) && at != NULL && d[0] != '\0' &&
		    (r = map_probef(&p, MAP_FORM_AT_DOMAIN, "", "@%s", d)) != MAP_NOTFOUND)
			return r;
		/* 5. domain, .parent ... */
		if ((flags & MAP_ADDR_DOMAINS) && at != NULL && (r = map_walk(&p, d)) != MAP_NOTFOUND)
			return r;
	}
	/* 6. * */
	if (flags & MAP_ADDR_WILDCARD)
		return map_probe(&p, "*", MAP_FORM_WILDCARD, "");
	return MAP_NOTFOUND;
}
