/*
 * addr_resolve: address classes, virtual alias expansion and local alias
 * expansion (addr_resolve.h has the steps and the policy).
 *
 * One addr_resolve() call runs in a struct addr_run: the work budget, the
 * first temporary failure, the :include: files already read. Targets go
 * into the caller's struct addr_expansion as they are found; duplicates
 * are removed once, at the end. A temporary failure anywhere abandons the
 * whole recipient (nothing half-expanded is ever stored).
 *
 * The recursion follows the mail through Postfix's daemons, one level per
 * call, and stops at ADDR_NEST_MAX:
 *
 *   run_resolve   cleanup(8): virtual_alias_maps, then each result's class
 *   run_class     trivial-rewrite(8) and smtpd's recipient checks
 *   run_local     local(8): alias_maps, else the password database
 *   run_items     the members of an alias or of an :include: file
 *   run_include   an :include: file
 *
 * A local member of an alias goes back to run_local (local(8) delivers it
 * itself); any other member to run_resolve (local(8) forwards it through
 * cleanup, where virtual aliases apply).
 */
#include "config/addr_resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "config/map.h"

/* getpwnam_r(3) buffer: first size, and the most it grows to on ERANGE. */
#define ADDR_PW_BUF_FIRST 16384
#define ADDR_PW_BUF_MAX (1024 * 1024)
/* Postfix's names for the password database in local_recipient_maps. */
#define ADDR_PASSWD_TABLE "unix:passwd.byname"
#define ADDR_PASSWD_TABLE_PROXY "proxy:unix:passwd.byname"
/* Longest map error message kept. */
#define ADDR_ERR_MAX 512

/* propagate_unmatched_extensions items this module honours. */
#define ADDR_EXT_VIRTUAL 0x01u
#define ADDR_EXT_ALIAS   0x02u
#define ADDR_EXT_INCLUDE 0x04u

/* The domain lists, in the order of precedence of their classes. */
enum addr_dlist { ADDR_DL_MYDEST, ADDR_DL_VALIAS, ADDR_DL_VMBOX, ADDR_DL_RELAY, ADDR_DL_COUNT };

static const enum config_param addr_dlist_param[ADDR_DL_COUNT] = {
	P_MYDESTINATION, P_VIRTUAL_ALIAS_DOMAINS, P_VIRTUAL_MAILBOX_DOMAINS, P_RELAY_DOMAINS,
};
static const enum addr_class addr_dlist_class[ADDR_DL_COUNT] = {
	ADDR_CLASS_LOCAL, ADDR_CLASS_VIRTUAL_ALIAS, ADDR_CLASS_VIRTUAL_MAILBOX, ADDR_CLASS_RELAY,
};

/* The type:table items of one domain list; a map is borrowed from
 * virtual_alias_maps or virtual_mailbox_maps when the spec is the same
 * (virtual_alias_domains = $virtual_alias_maps), else owned. */
struct addr_dtables {
	struct map **m;
	bool *owned;
	size_t n;
};

struct addr_resolver {
	const struct config *cfg;		/* borrowed */
	struct addr_userdb udb;
	struct map_list *valias, *vmbox, *aliases;
	struct addr_dtables dl[ADDR_DL_COUNT];
	/* local_recipient_maps: postmap-format tables, aliases-format tables
	 * (alias_maps itself when they are the same list), the password
	 * database; set: any of them is configured. */
	struct map_list *lrm_maps, *lrm_alias;
	bool lrm_alias_owned, lrm_passwd, lrm_set;
	bool local_agent;	/* local_transport is local(8): aliases apply */
	unsigned ext_prop;	/* ADDR_EXT_* */
	uid_t default_uid;	/* default_privs, when commands or files are allowed */
	gid_t default_gid;
	uint64_t recursion_limit, expansion_limit;
};

/* ---- small helpers ---- */

static void *
addr_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("out of memory (addr_resolve: %zu bytes)", n);
	return p;
}

static void *
addr_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		fatal("out of memory (addr_resolve: %zu bytes)", n);
	return q;
}

static char *
addr_xstrndup(const char *s, size_t n)
{
	char *p = addr_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *
addr_xstrdup(const char *s)
{
	return addr_xstrndup(s, strlen(s));
}

static bool
addr_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* The last '@' of a outside double quotes (the domain follows it), or
 * NULL when the address has no domain. */
static const char *
addr_at(const char *a)
{
	const char *at = NULL;
	bool quoted = false;

	for (; *a != '\0'; a++) {
		if (quoted && *a == '\\' && a[1] != '\0')
			a++;
		else if (*a == '"')
			quoted = !quoted;
		else if (*a == '@' && !quoted)
			at = a;
	}
	return at;
}

/* The domain of a, lower case, one trailing dot dropped, into dom
 * (ADDR_LEN_MAX + 1 bytes); "" when it has none. */
static void
addr_domain_norm(const char *a, char *dom)
{
	const char *at = addr_at(a);
	size_t i, n = at != NULL ? strlen(at + 1) : 0;

	if (n > ADDR_LEN_MAX)
		n = ADDR_LEN_MAX;
	for (i = 0; i < n; i++)
		dom[i] = (at[1 + i] >= 'A' && at[1 + i] <= 'Z') ? (char)(at[1 + i] - 'A' + 'a')
		                                                 : at[1 + i];
	if (n > 0 && dom[n - 1] == '.')
		n--;
	dom[n] = '\0';
}

/* Two domains are the same, whatever their case and one trailing dot. */
static bool
addr_domain_eq(const char *item, const char *dom)
{
	size_t n = strlen(item);

	if (n > 0 && item[n - 1] == '.')
		n--;
	return strlen(dom) == n && strncasecmp(item, dom, n) == 0;
}

/* A domain list item naming a table ("lmdb:/etc/tern/domains"); an
 * address literal "[ipv6:...]" holds a ':' too. */
static bool
addr_item_is_table(const char *item)
{
	return item[0] != '[' && strchr(item, ':') != NULL;
}

/* The next address of s[0..len) from *pos: addresses are separated by
 * commas and white space outside double quotes, and may be in < >.
 * False at the end. */
static bool
addr_next_token(const char *s, size_t len, size_t *pos, size_t *start, size_t *tlen)
{
	size_t i = *pos;
	bool quoted = false;

	for (;;) {
		while (i < len && (s[i] == ',' || addr_is_space(s[i])))
			i++;
		if (i >= len) {
			*pos = len;
			return false;
		}
		*start = i;
		for (; i < len; i++) {
			if (quoted && s[i] == '\\' && i + 1 < len)
				i++;
			else if (s[i] == '"')
				quoted = !quoted;
			else if (!quoted && (s[i] == ',' || addr_is_space(s[i])))
				break;
		}
		*pos = i;
		*tlen = i - *start;
		if (*tlen >= 2 && s[*start] == '<' && s[*start + *tlen - 1] == '>') {
			(*start)++;
			*tlen -= 2;
		}
		if (*tlen > 0)
			return true;	/* "<>" is no address: skip it */
	}
}

/* ---- growable lists of strings ---- */

struct addr_strv {
	char **v;	/* owned */
	size_t n, cap;
};

static void
addr_strv_adopt(struct addr_strv *s, char *str)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 8;
		s->v = addr_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = str;
}

static void
addr_strv_free(struct addr_strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static bool
addr_strv_has_fold(const struct addr_strv *s, const char *str)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcasecmp(s->v[i], str) == 0)
			return true;
	return false;
}

/* ---- public helpers ---- */

const char *
addr_class_name(enum addr_class c)
{
	switch (c) {
	case ADDR_CLASS_LOCAL: return "local";
	case ADDR_CLASS_VIRTUAL_ALIAS: return "virtual_alias";
	case ADDR_CLASS_VIRTUAL_MAILBOX: return "virtual_mailbox";
	case ADDR_CLASS_RELAY: return "relay";
	case ADDR_CLASS_DEFAULT: return "default";
	}
	panic("addr_class_name: class %d", (int)c);
}

void
addr_reply_format(char *reply, size_t replysz, int code, const char *dsn, const char *addr,
                  const char *text)
{
	if (replysz == 0)
		return;
	/* Truncation is documented: a short buffer gets a cut reply. */
	(void)snprintf(reply, replysz, "%d %s <%s>: Recipient address rejected: %s", code, dsn,
	               addr, text);
}

size_t
addr_split_extension(const char *local, size_t len, const char *delimiters,
                     const char *double_bounce)
{
	static const char owner[] = "owner-", request[] = "-request";
	const char *const nosplit[] = {
		"postmaster", "mailer-daemon", double_bounce != NULL ? double_bounce : "double-bounce",
	};
	size_t i, olen = sizeof(owner) - 1, rlen = sizeof(request) - 1;

	if (delimiters == NULL || delimiters[0] == '\0' || len == 0 || local[0] == '"')
		return len;
	for (i = 0; i < sizeof(nosplit) / sizeof(nosplit[0]); i++)
		if (strlen(nosplit[i]) == len && strncasecmp(local, nosplit[i], len) == 0)
			return len;
	/* Postfix's split_addr(), for compatibility with old lists: '-' does
	 * not split owner-foo or foo-request (owner_request_special). */
	if (strchr(delimiters, '-') != NULL &&
	    ((len >= olen && strncasecmp(local, owner, olen) == 0) ||
	     (len > rlen && strncasecmp(local + len - rlen, request, rlen) == 0)))
		return len;
	for (i = 0; i < len; i++)
		if (local[i] != '\0' && strchr(delimiters, local[i]) != NULL)
			break;
	return i == 0 ? len : i;	/* an empty user is no split */
}

/* ---- the password database ---- */

static enum addr_pw_result
addr_pw_copy(const struct passwd *pw, struct addr_pw *out)
{
	int a, b, c;

	out->uid = pw->pw_uid;
	out->gid = pw->pw_gid;
	a = snprintf(out->name, sizeof(out->name), "%s", pw->pw_name ? pw->pw_name : "");
	b = snprintf(out->home, sizeof(out->home), "%s", pw->pw_dir ? pw->pw_dir : "");
	c = snprintf(out->shell, sizeof(out->shell), "%s", pw->pw_shell ? pw->pw_shell : "");
	if (a < 0 || b < 0 || c < 0 || (size_t)a >= sizeof(out->name) ||
	    (size_t)b >= sizeof(out->home) || (size_t)c >= sizeof(out->shell))
		return ADDR_PW_ERROR;
	return ADDR_PW_FOUND;
}

/* getpwnam_r() or getpwuid_r() (name NULL), growing the buffer on ERANGE. */
static enum addr_pw_result
addr_pw_system(const char *name, uid_t uid, struct addr_pw *out)
{
	struct passwd pw, *res = NULL;
	enum addr_pw_result r;
	size_t size = ADDR_PW_BUF_FIRST;
	char *b;
	int rc;

	for (;;) {
		b = addr_xmalloc(size);
		rc = name != NULL ? getpwnam_r(name, &pw, b, size, &res)
		                  : getpwuid_r(uid, &pw, b, size, &res);
		if (rc != ERANGE || size >= ADDR_PW_BUF_MAX)
			break;
		free(b);
		size *= 4;
	}
	if (rc == 0 && res != NULL)
		r = addr_pw_copy(res, out);
	/* getpwnam_r(3): these mean "not found" on some systems. */
	else if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
		r = ADDR_PW_NOTFOUND;
	else
		r = ADDR_PW_ERROR;
	free(b);
	return r;
}

enum addr_pw_result
addr_pw_system_by_name(void *ctx, const char *name, struct addr_pw *out)
{
	(void)ctx;
	return addr_pw_system(name, 0, out);
}

enum addr_pw_result
addr_pw_system_by_uid(void *ctx, uid_t uid, struct addr_pw *out)
{
	(void)ctx;
	return addr_pw_system(NULL, uid, out);
}

/* ---- expansions ---- */

void
addr_expansion_init(struct addr_expansion *x)
{
	memset(x, 0, sizeof(*x));
}

/* Free the targets, keep the warning. */
static void
addr_targets_clear(struct addr_expansion *x)
{
	for (size_t i = 0; i < x->n; i++) {
		free(x->v[i].value);
		free(x->v[i].text);
		free(x->v[i].owner);
	}
	free(x->v);
	x->v = NULL;
	x->n = x->cap = x->deliverable = 0;
}

void
addr_expansion_free(struct addr_expansion *x)
{
	addr_targets_clear(x);
	x->warning[0] = '\0';
}

const struct addr_target *
addr_expansion_find(const struct addr_expansion *x, enum addr_target_kind kind, const char *value)
{
	for (size_t i = 0; i < x->n; i++)
		if (x->v[i].kind == kind && strcmp(x->v[i].value, value) == 0)
			return &x->v[i];
	return NULL;
}

/* ---- domain lists and classes ---- */

/* Is dom (normalized) in domain list d? 1, 0, or -1 with err set. */
static int
addr_dlist_match(struct addr_resolver *r, enum addr_dlist d, const char *dom, char *err,
                 size_t errsz)
{
	const struct config_list *l = config_list(r->cfg, addr_dlist_param[d]);
	struct buf value;
	enum map_result mr = MAP_NOTFOUND;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!addr_item_is_table(l->items[i]) && addr_domain_eq(l->items[i], dom))
			return 1;
	buf_init(&value, MAP_VALUE_MAX);
	for (i = 0; i < r->dl[d].n && mr == MAP_NOTFOUND; i++)
		mr = map_lookup(r->dl[d].m[i], dom, &value, err, errsz);
	buf_free(&value);
	return mr == MAP_ERROR ? -1 : mr == MAP_FOUND;
}

/* The class of a normalized domain: Postfix's resolve.c order. */
static int
addr_class_of(struct addr_resolver *r, const char *dom, enum addr_class *out, char *err,
              size_t errsz)
{
	int rc;

	*out = ADDR_CLASS_DEFAULT;
	if (dom[0] == '\0') {
		*out = ADDR_CLASS_LOCAL;
		return 0;
	}
	for (int d = 0; d < ADDR_DL_COUNT; d++) {
		if ((rc = addr_dlist_match(r, (enum addr_dlist)d, dom, err, errsz)) < 0)
			return -1;
		if (rc > 0) {
			*out = addr_dlist_class[d];
			return 0;
		}
	}
	return 0;
}

int
addr_resolver_class(struct addr_resolver *r, const char *domain, enum addr_class *out,
                    char *err, size_t errsz)
{
	char a[ADDR_LEN_MAX + 3], dom[ADDR_LEN_MAX + 1];

	if (strlen(domain) > ADDR_LEN_MAX) {
		*out = ADDR_CLASS_DEFAULT;	/* in no list: longer than any domain */
		return 0;
	}
	snprintf(a, sizeof(a), "@%s", domain);
	addr_domain_norm(a, dom);
	return addr_class_of(r, dom, out, err, errsz);
}

/* ---- resolver set-up ---- */

/* Open the type:table items of domain list d. */
static bool
addr_dtables_open(struct addr_resolver *r, enum addr_dlist d, struct buf *diag)
{
	const struct config_list *l = config_list(r->cfg, addr_dlist_param[d]);
	struct map_list *share[] = { r->valias, r->vmbox };
	struct addr_dtables *t = &r->dl[d];
	bool ok = true;

	t->m = addr_xmalloc(l->n * sizeof(*t->m));
	t->owned = addr_xmalloc(l->n * sizeof(*t->owned));
	for (size_t i = 0; i < l->n; i++) {
		struct map *m = NULL;

		if (!addr_item_is_table(l->items[i]))
			continue;
		for (size_t s = 0; s < 2 && m == NULL; s++)
			for (size_t j = 0; j < map_list_size(share[s]) && m == NULL; j++)
				if (strcmp(map_spec(map_list_get(share[s], j)), l->items[i]) == 0)
					m = map_list_get(share[s], j);
		t->owned[t->n] = m == NULL;
		if (m == NULL && map_open(l->items[i], 0, &m, diag) != MAP_OK) {
			ok = false;
			continue;
		}
		t->m[t->n++] = m;
	}
	return ok;
}

/* local_recipient_maps: split its items into the password database,
 * aliases-format tables (those of alias_maps) and postmap-format ones. */
static bool
addr_lrm_open(struct addr_resolver *r, struct buf *diag)
{
	const struct config_list *l = config_list(r->cfg, P_LOCAL_RECIPIENT_MAPS);
	const struct config_list *al = config_list(r->cfg, P_ALIAS_MAPS);
	struct config_list plain = { 0, NULL }, aliases = { 0, NULL };
	bool ok = true, same;

	r->lrm_set = l->n > 0;
	plain.items = addr_xmalloc(l->n * sizeof(char *));
	aliases.items = addr_xmalloc(l->n * sizeof(char *));
	for (size_t i = 0; i < l->n; i++) {
		bool in_aliases = false;

		if (strcmp(l->items[i], ADDR_PASSWD_TABLE) == 0 ||
		    strcmp(l->items[i], ADDR_PASSWD_TABLE_PROXY) == 0) {
			r->lrm_passwd = true;
			continue;
		}
		for (size_t j = 0; j < al->n && !in_aliases; j++)
			in_aliases = strcmp(al->items[j], l->items[i]) == 0;
		if (in_aliases)
			aliases.items[aliases.n++] = l->items[i];
		else
			plain.items[plain.n++] = l->items[i];
	}
	if (plain.n > 0 && map_list_open(&plain, 0, &r->lrm_maps, diag) != MAP_OK)
		ok = false;
	/* The default, "... $alias_maps": use the maps already open. */
	same = aliases.n == al->n;
	for (size_t i = 0; same && i < aliases.n; i++)
		same = strcmp(aliases.items[i], al->items[i]) == 0;
	if (aliases.n > 0 && same) {
		r->lrm_alias = r->aliases;
	} else if (aliases.n > 0) {
		r->lrm_alias_owned = true;
		if (map_list_open(&aliases, MAP_F_ALIASES, &r->lrm_alias, diag) != MAP_OK)
			ok = false;
	}
	free(plain.items);
	free(aliases.items);
	return ok;
}

/* default_privs, needed only when commands or files may be targets. */
static bool
addr_default_privs(struct addr_resolver *r, struct buf *diag)
{
	const char *name = config_str(r->cfg, P_DEFAULT_PRIVS);
	struct addr_pw pw;

	if (!config_bool(r->cfg, P_ALLOW_MAIL_TO_COMMANDS) &&
	    !config_bool(r->cfg, P_ALLOW_MAIL_TO_FILES))
		return true;
	switch (r->udb.by_name(r->udb.ctx, name, &pw)) {
	case ADDR_PW_FOUND:
		if (pw.uid == 0 || pw.gid == 0) {
			buf_append_printf(diag, "default_privs: user \"%s\" is privileged (uid or gid 0)\n",
			                  name);
			return false;
		}
		r->default_uid = pw.uid;
		r->default_gid = pw.gid;
		return true;
	case ADDR_PW_NOTFOUND:
		buf_append_printf(diag, "default_privs: unknown user \"%s\"\n", name);
		return false;
	case ADDR_PW_ERROR:
		break;
	}
	buf_append_printf(diag, "default_privs: cannot look up user \"%s\"\n", name);
	return false;
}

static void
addr_resolver_settings(struct addr_resolver *r)
{
	const struct config_list *ext = config_list(r->cfg, P_PROPAGATE_UNMATCHED_EXTENSIONS);
	const char *lt = config_str(r->cfg, P_LOCAL_TRANSPORT);
	size_t n = strcspn(lt, ":");

	for (size_t i = 0; i < ext->n; i++) {
		if (strcasecmp(ext->items[i], "virtual") == 0)
			r->ext_prop |= ADDR_EXT_VIRTUAL;
		else if (strcasecmp(ext->items[i], "alias") == 0)
			r->ext_prop |= ADDR_EXT_ALIAS;
		else if (strcasecmp(ext->items[i], "include") == 0)
			r->ext_prop |= ADDR_EXT_INCLUDE;
	}
	/* alias_maps are local(8)'s: with local_transport = lmtp:... Postfix
	 * expands no aliases, and neither do we. */
	r->local_agent = n == strlen("local") && strncmp(lt, "local", n) == 0;
	r->recursion_limit = config_int(r->cfg, P_VIRTUAL_ALIAS_RECURSION_LIMIT);
	r->expansion_limit = config_int(r->cfg, P_VIRTUAL_ALIAS_EXPANSION_LIMIT);
}

struct addr_resolver *
addr_resolver_new(const struct config *cfg, const struct addr_userdb *udb, struct buf *diag)
{
	static const struct addr_userdb system = {
		addr_pw_system_by_name, addr_pw_system_by_uid, NULL,
	};
	struct addr_resolver *r = addr_xmalloc(sizeof(*r));
	bool ok = true;

	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->udb = udb != NULL ? *udb : system;
	addr_resolver_settings(r);
	ok &= map_list_open(config_list(cfg, P_VIRTUAL_ALIAS_MAPS), 0, &r->valias, diag) == MAP_OK;
	ok &= map_list_open(config_list(cfg, P_VIRTUAL_MAILBOX_MAPS), 0, &r->vmbox, diag) == MAP_OK;
	ok &= map_list_open(config_list(cfg, P_ALIAS_MAPS), MAP_F_ALIASES, &r->aliases, diag) ==
	      MAP_OK;
	if (!ok) {	/* the lists below borrow these maps */
		addr_resolver_free(r);
		return NULL;
	}
	for (int d = 0; d < ADDR_DL_COUNT; d++)
		ok &= addr_dtables_open(r, (enum addr_dlist)d, diag);
	ok &= addr_lrm_open(r, diag);
	ok &= addr_default_privs(r, diag);
	if (!ok) {
		addr_resolver_free(r);
		return NULL;
	}
	return r;
}

void
addr_resolver_free(struct addr_resolver *r)
{
	if (r == NULL)
		return;
	for (int d = 0; d < ADDR_DL_COUNT; d++) {
		for (size_t i = 0; i < r->dl[d].n; i++)
			if (r->dl[d].owned[i])
				map_close(r->dl[d].m[i]);
		free(r->dl[d].m);
		free(r->dl[d].owned);
	}
	if (r->lrm_alias_owned && r->lrm_alias != NULL)
		map_list_close(r->lrm_alias);
	if (r->lrm_maps != NULL)
		map_list_close(r->lrm_maps);
	if (r->valias != NULL)
		map_list_close(r->valias);
	if (r->vmbox != NULL)
		map_list_close(r->vmbox);
	if (r->aliases != NULL)
		map_list_close(r->aliases);
	free(r);
}

/* ---- the configuration check ---- */

/* The pairs Postfix's resolve.c warns about. */
static const enum addr_dlist addr_check_pairs[][2] = {
	{ ADDR_DL_MYDEST, ADDR_DL_VALIAS }, { ADDR_DL_MYDEST, ADDR_DL_VMBOX },
	{ ADDR_DL_VALIAS, ADDR_DL_VMBOX }, { ADDR_DL_VALIAS, ADDR_DL_RELAY },
	{ ADDR_DL_VMBOX, ADDR_DL_RELAY },
};

/* Is item a literal domain of list d? */
static bool
addr_dlist_literal(struct addr_resolver *r, enum addr_dlist d, const char *dom)
{
	const struct config_list *l = config_list(r->cfg, addr_dlist_param[d]);

	for (size_t i = 0; i < l->n; i++)
		if (!addr_item_is_table(l->items[i]) && addr_domain_eq(l->items[i], dom))
			return true;
	return false;
}

/* The literal domains of list a that list b holds too. */
static int
addr_check_pair(struct addr_resolver *r, enum addr_dlist a, enum addr_dlist b, bool skip_literal,
                struct buf *warnings)
{
	const struct config_list *l = config_list(r->cfg, addr_dlist_param[a]);
	char dom[ADDR_LEN_MAX + 1], at[ADDR_LEN_MAX + 3], err[ADDR_ERR_MAX];
	int count = 0, rc;

	for (size_t i = 0; i < l->n; i++) {
		if (addr_item_is_table(l->items[i]) || strlen(l->items[i]) > ADDR_LEN_MAX)
			continue;
		snprintf(at, sizeof(at), "@%s", l->items[i]);
		addr_domain_norm(at, dom);
		/* Both literal: reported once, from the first list. */
		if (skip_literal && addr_dlist_literal(r, b, dom))
			continue;
		if ((rc = addr_dlist_match(r, b, dom, err, sizeof(err))) < 0) {
			buf_append_printf(warnings, "%s\n", err);
			return -1;
		}
		if (rc > 0) {
			enum addr_dlist first = skip_literal ? b : a, second = skip_literal ? a : b;

			buf_append_printf(warnings, "do not list domain %s in BOTH %s and %s\n", dom,
			                  config_param_name(addr_dlist_param[first]),
			                  config_param_name(addr_dlist_param[second]));
			count++;
		}
	}
	return count;
}

int
addr_resolver_check(struct addr_resolver *r, struct buf *warnings)
{
	int total = 0, ab, ba;

	for (size_t p = 0; p < sizeof(addr_check_pairs) / sizeof(addr_check_pairs[0]); p++) {
		enum addr_dlist a = addr_check_pairs[p][0], b = addr_check_pairs[p][1];

		if ((ab = addr_check_pair(r, a, b, false, warnings)) < 0)
			return -1;
		if ((ba = addr_check_pair(r, b, a, true, warnings)) < 0)
			return -1;
		total += ab + ba;
	}
	return total;
}

/* ---- one resolution ---- */

/* What the members of one alias (or :include: file) expand with. */
struct addr_exp {
	bool include;			/* from an :include: file, else an alias */
	char name[MAP_KEY_MAX + 1];	/* the alias: local(8)'s exp_from */
	const char *owner_addr;		/* the address being expanded: errors name it */
	const char *source;		/* for warnings: a map spec or a path */
	size_t map;			/* alias: which map of alias_maps answered */
	bool rights_known;
	uid_t uid;			/* rights for commands and files; 0: default_privs */
	gid_t gid;
	char ext[MAP_KEY_MAX + 1];	/* extension added to member addresses, or "" */
};

/* An :include: file read, as which user (local(8)'s duplicate filter). */
struct addr_seen {
	uid_t uid;
	char *path;
};

struct addr_run {
	struct addr_resolver *r;
	struct addr_expansion *out;
	const char *top;		/* the recipient as given */
	unsigned long work;		/* lookups so far */
	struct buf value;		/* map values; copy before the next lookup */
	struct addr_seen *seen;
	size_t nseen;
	bool failed;			/* a temporary failure: give up */
	int fail_code;
	char fail_dsn[ADDR_DSN_MAX];
	const char *fail_text;
};

static void run_warn(struct addr_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run_fail(struct addr_run *run, int code, const char *dsn, const char *text,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The first warning wins: it is the cause, later ones its consequences. */
static void
run_warn(struct addr_run *run, const char *fmt, ...)
{
	va_list ap;

	if (run->out->warning[0] != '\0')
		return;
	va_start(ap, fmt);
	(void)vsnprintf(run->out->warning, sizeof(run->out->warning), fmt, ap);
	va_end(ap);
}

/* A temporary failure of the whole recipient; returns -1. */
static int
run_fail(struct addr_run *run, int code, const char *dsn, const char *text, const char *fmt,
         ...)
{
	va_list ap;

	if (!run->failed) {
		run->failed = true;
		run->fail_code = code;
		snprintf(run->fail_dsn, sizeof(run->fail_dsn), "%s", dsn);
		run->fail_text = text;
		if (run->out->warning[0] == '\0') {
			va_start(ap, fmt);
			(void)vsnprintf(run->out->warning, sizeof(run->out->warning), fmt, ap);
			va_end(ap);
		}
	}
	return -1;
}

static int
run_lookup_failed(struct addr_run *run, const char *err)
{
	return run_fail(run, 451, "4.3.0", "Temporary lookup failure", "%s", err);
}

/* One more unit of work; -1 past the budget. */
static int
run_charge(struct addr_run *run)
{
	if (++run->work > ADDR_LOOKUPS_MAX)
		return run_fail(run, 451, "4.6.0", "Alias expansion error",
		                "unreasonable number of table lookups (over %d) for %s",
		                ADDR_LOOKUPS_MAX, run->top);
	return 0;
}

static struct addr_target *
run_push(struct addr_run *run)
{
	struct addr_expansion *x = run->out;
	struct addr_target *t;

	if (x->n >= ADDR_TARGETS_MAX) {
		run_fail(run, 451, "4.6.0", "Alias expansion error",
		         "unreasonable expansion size (over %d) for %s", ADDR_TARGETS_MAX, run->top);
		return NULL;
	}
	if (x->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 8;
		x->v = addr_xrealloc(x->v, x->cap * sizeof(*x->v));
	}
	t = &x->v[x->n++];
	memset(t, 0, sizeof(*t));
	return t;
}

static int
run_add(struct addr_run *run, enum addr_target_kind kind, enum addr_class klass, const char *value,
        uid_t uid, gid_t gid)
{
	struct addr_target *t = run_push(run);

	if (t == NULL)
		return -1;
	t->kind = kind;
	t->klass = klass;
	t->value = addr_xstrdup(value);
	t->uid = uid;
	t->gid = gid;
	return 0;
}

/* A permanent failure of one target (it bounces; the others go on). */
static int
run_error(struct addr_run *run, enum addr_class klass, const char *addr, const char *dsn,
          const char *text)
{
	struct addr_target *t = run_push(run);

	if (t == NULL)
		return -1;
	t->kind = ADDR_TARGET_ERROR;
	t->klass = klass;
	t->value = addr_xstrdup(addr);
	t->code = 550;
	snprintf(t->dsn, sizeof(t->dsn), "%s", dsn);
	t->text = addr_xstrdup(text);
	return 0;
}

/* a with @$myorigin when it has no domain (cleanup's append_at_myorigin);
 * the extension ext ("+tag", may be "") inserted before the '@'. */
static char *
run_qualify(struct addr_run *run, const char *a, size_t len, const char *ext)
{
	const char *origin = config_str(run->r->cfg, P_MYORIGIN);
	char *s = addr_xstrndup(a, len), *out;
	const char *at = addr_at(s);
	size_t llen = at != NULL ? (size_t)(at - s) : len, elen = strlen(ext);
	const char *dom = at != NULL ? at + 1 : origin;
	bool has_dom = at != NULL || origin[0] != '\0';

	out = addr_xmalloc(llen + elen + 1 + strlen(dom) + 1);
	memcpy(out, s, llen);
	memcpy(out + llen, ext, elen);
	llen += elen;
	if (has_dom) {
		out[llen++] = '@';
		memcpy(out + llen, dom, strlen(dom));
		llen += strlen(dom);
	}
	out[llen] = '\0';
	free(s);
	return out;
}

/* ---- cleanup(8): virtual_alias_maps ---- */

/* Is the domain of a one whose bare local part may be looked up
 * (mail_addr_find: $myorigin or $mydestination)? 1, 0, -1. */
static int
run_own_domain(struct addr_run *run, const char *a)
{
	char dom[ADDR_LEN_MAX + 1], err[ADDR_ERR_MAX];
	int rc;

	addr_domain_norm(a, dom);
	if (dom[0] == '\0' || addr_domain_eq(config_str(run->r->cfg, P_MYORIGIN), dom))
		return 1;
	if (run_charge(run) < 0)
		return -1;
	if ((rc = addr_dlist_match(run->r, ADDR_DL_MYDEST, dom, err, sizeof(err))) < 0)
		return run_lookup_failed(run, err);
	return rc;
}

/* Split a virtual_alias_maps value for a into res (mail_addr_map()). */
static int
run_va_results(struct addr_run *run, const char *a, const char *value, const char *ext,
               struct addr_strv *res)
{
	const char *prop = (run->r->ext_prop & ADDR_EXT_VIRTUAL) ? ext : "";
	char *v;
	size_t pos = 0, start, len, n0 = res->n;

	if (value[0] == '@') {
		/* "@otherdomain": the same user there, extension not doubled. */
		const char *at = addr_at(a);
		size_t llen = at != NULL ? (size_t)(at - a) : strlen(a);

		llen -= strlen(ext) <= llen ? strlen(ext) : 0;

		v = addr_xmalloc(llen + strlen(value) + 1);
		memcpy(v, a, llen);
		memcpy(v + llen, value, strlen(value) + 1);
	} else {
		v = addr_xstrdup(value);
	}
	while (addr_next_token(v, strlen(v), &pos, &start, &len)) {
		if (len + strlen(prop) > ADDR_LEN_MAX) {
			run_fail(run, 451, "4.6.0", "Alias expansion error",
			         "unreasonable virtual_alias_maps result %.300s... for %s", v + start, a);
			break;
		}
		addr_strv_adopt(res, run_qualify(run, v + start, len, prop));
	}
	if (!run->failed && res->n == n0)
		run_fail(run, 451, "4.6.0", "Alias expansion error",
		         "virtual_alias_maps lookup of %s returns non-address result \"%.300s\"", a,
		         value);
	free(v);
	return run->failed ? -1 : 0;
}

/* One lookup of a: 1 with its results in res, 0 not found, -1. */
static int
run_va_lookup(struct addr_run *run, const char *a, struct addr_strv *res)
{
	char err[ADDR_ERR_MAX];
	struct map_match match;
	enum map_result mr;
	int own;
	char *value;

	if ((own = run_own_domain(run, a)) < 0 || run_charge(run) < 0)
		return -1;
	mr = map_list_lookup_address(run->r->valias, a, config_str(run->r->cfg, P_RECIPIENT_DELIMITER),
	                             MAP_ADDR_AT_DOMAIN | (own ? MAP_ADDR_LOCAL : 0), &run->value,
	                             &match, err, sizeof(err));
	if (mr == MAP_ERROR)
		return run_lookup_failed(run, err);
	if (mr == MAP_NOTFOUND)
		return 0;
	value = addr_xstrdup(buf_cstr(&run->value));
	own = run_va_results(run, a, value, match.extension, res);
	free(value);
	return own < 0 ? -1 : 1;
}

/*
 * cleanup_map1n_internal(): rewrite the list in place, each address until
 * it maps to nothing or to itself. An address that lists itself among its
 * results is final (been_here "fixed"): "a -> a, b" delivers to a and b.
 * Any other loop (a -> b, b -> a) runs into the nesting limit, a temporary
 * failure, exactly as in Postfix. *mapped: some lookup answered.
 */
static int
run_va_expand(struct addr_run *run, const char *addr, struct addr_strv *res, bool *mapped)
{
	struct addr_strv fixed = { NULL, 0, 0 }, lookup = { NULL, 0, 0 };
	int rc = 0;

	addr_strv_adopt(res, addr_xstrdup(addr));
	for (size_t arg = 0; arg < res->n && rc == 0; arg++) {
		if (res->n > run->r->expansion_limit) {
			rc = run_fail(run, 451, "4.6.0", "Alias expansion error",
			              "unreasonable virtual_alias_maps map expansion size for %s", addr);
			break;
		}
		for (uint64_t count = 0; rc == 0; count++) {
			char *lhs;

			if (addr_strv_has_fold(&fixed, res->v[arg]))
				break;
			if (count >= run->r->recursion_limit) {
				rc = run_fail(run, 451, "4.6.0", "Alias expansion error",
				              "unreasonable virtual_alias_maps map nesting for %s", addr);
				break;
			}
			if ((rc = run_va_lookup(run, res->v[arg], &lookup)) <= 0)
				break;
			*mapped = true;
			lhs = res->v[arg];
			res->v[arg] = lookup.v[0];
			for (size_t i = 1; i < lookup.n; i++)
				addr_strv_adopt(res, lookup.v[i]);
			for (size_t i = 0; i < lookup.n; i++)
				if (strcasecmp(lhs, lookup.v[i]) == 0 && !addr_strv_has_fold(&fixed, lhs))
					addr_strv_adopt(&fixed, addr_xstrdup(lhs));
			free(lhs);
			lookup.n = 0;	/* the strings now belong to res */
			rc = 0;
		}
	}
	free(lookup.v);
	addr_strv_free(&fixed);
	return rc < 0 ? -1 : 0;
}

/* ---- smtpd(8) and trivial-rewrite(8): classes and recipient tables ---- */

static int run_resolve(struct addr_run *run, const char *a, bool top, unsigned depth);
static int run_local(struct addr_run *run, const char *a, const struct addr_exp *parent,
                     unsigned depth);

/* The class of a; its buffers stay out of the recursion's frames. */
static __attribute__((noinline)) int
run_class_of(struct addr_run *run, const char *a, enum addr_class *k)
{
	char dom[ADDR_LEN_MAX + 1], err[ADDR_ERR_MAX];

	addr_domain_norm(a, dom);
	if (run_charge(run) < 0)
		return -1;
	if (addr_class_of(run->r, dom, k, err, sizeof(err)) < 0)
		return run_lookup_failed(run, err);
	return 0;
}

/* The local part of a as local(8) sees it: unquoted, lower case. */
struct addr_local {
	char full[ADDR_LEN_MAX + 1];	/* with the extension */
	char user[ADDR_LEN_MAX + 1];	/* without it: the login name */
	bool has_at;			/* holds an '@': no alias name can */
};

static void
run_local_parts(struct addr_run *run, const char *a, struct addr_local *lp)
{
	const char *at = addr_at(a);
	size_t llen = at != NULL ? (size_t)(at - a) : strlen(a), n = 0, x;

	for (size_t i = 0; i < llen && n < ADDR_LEN_MAX; i++) {
		char c = a[i];

		if (c == '"')
			continue;
		if (c == '\\' && i + 1 < llen)
			c = a[++i];
		lp->full[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	lp->full[n] = '\0';
	lp->has_at = memchr(lp->full, '@', n) != NULL;
	x = addr_split_extension(lp->full, n, config_str(run->r->cfg, P_RECIPIENT_DELIMITER),
	                         config_str(run->r->cfg, P_DOUBLE_BOUNCE_SENDER));
	memcpy(lp->user, lp->full, x);
	lp->user[x] = '\0';
}

/* A user of the password database: 1, 0, -1. */
static int
run_passwd(struct addr_run *run, const char *name, struct addr_pw *pw)
{
	if (run_charge(run) < 0)
		return -1;
	switch (run->r->udb.by_name(run->r->udb.ctx, name, pw)) {
	case ADDR_PW_FOUND:
		return 1;
	case ADDR_PW_NOTFOUND:
		return 0;
	case ADDR_PW_ERROR:
		break;
	}
	return run_fail(run, 451, "4.3.0", "Temporary lookup failure",
	                "password database lookup of \"%s\" failed", name);
}

/* One address lookup in ml: 1, 0, -1. */
static __attribute__((noinline)) int
run_lookup(struct addr_run *run, struct map_list *ml, const char *key, unsigned flags,
           struct map_match *match)
{
	char err[ADDR_ERR_MAX];
	enum map_result mr;

	if (run_charge(run) < 0)
		return -1;
	mr = map_list_lookup_address(ml, key, config_str(run->r->cfg, P_RECIPIENT_DELIMITER), flags,
	                             &run->value, match, err, sizeof(err));
	if (mr == MAP_ERROR)
		return run_lookup_failed(run, err);
	return mr == MAP_FOUND;
}

/* local_recipient_maps (smtpd's check_rcpt_maps()): 1 listed, 0, -1. The
 * password database answers for the local part, with and without its
 * extension, as passwd.byname does in Postfix's lookup order. */
static int
run_lrm(struct addr_run *run, const char *a)
{
	struct addr_resolver *r = run->r;
	struct addr_local *lp;
	struct addr_pw pw;
	int rc = 0;

	if (r->lrm_maps != NULL)
		rc = run_lookup(run, r->lrm_maps, a, MAP_ADDR_LOCAL | MAP_ADDR_AT_DOMAIN, NULL);
	if (rc != 0)
		return rc;
	lp = addr_xmalloc(sizeof(*lp));
	run_local_parts(run, a, lp);
	if (r->lrm_alias != NULL && !lp->has_at)
		rc = run_lookup(run, r->lrm_alias, lp->full, 0, NULL);
	if (rc == 0 && r->lrm_passwd) {
		rc = run_passwd(run, lp->full, &pw);
		if (rc == 0 && strcmp(lp->full, lp->user) != 0)
			rc = run_passwd(run, lp->user, &pw);
	}
	free(lp);
	return rc;
}

/* virtual_mailbox_maps: smtpd checks them only when they are set (an
 * LMTP server may know the users instead). */
static int
run_vmbox(struct addr_run *run, const char *a)
{
	int rc = 1;

	if (map_list_size(run->r->vmbox) > 0 &&
	    (rc = run_lookup(run, run->r->vmbox, a, MAP_ADDR_AT_DOMAIN, NULL)) < 0)
		return -1;
	if (rc == 0)
		return run_error(run, ADDR_CLASS_VIRTUAL_MAILBOX, a, "5.1.1",
		                 "User unknown in virtual mailbox table");
	return run_add(run, ADDR_TARGET_ADDRESS, ADDR_CLASS_VIRTUAL_MAILBOX, a, 0, 0);
}

/* double_bounce_sender@myhostname: final as it is, qmgr discards it. */
static bool
run_is_double_bounce(struct addr_run *run, const char *a)
{
	const char *local = config_str(run->r->cfg, P_DOUBLE_BOUNCE_SENDER);
	const char *host = config_str(run->r->cfg, P_MYHOSTNAME);
	size_t nl = strlen(local);

	if (strchr(local, '@') != NULL)
		return strcasecmp(a, local) == 0;
	return strncasecmp(a, local, nl) == 0 && a[nl] == '@' && strcasecmp(a + nl + 1, host) == 0;
}

/*
 * One address after virtual aliasing: its class and the class's step.
 * top: the recipient as the client gave it, not rewritten by a virtual
 * alias (only that one meets smtpd's local_recipient_maps check; the
 * others are local(8)'s business, as in Postfix).
 */
static int
run_class(struct addr_run *run, const char *a, bool top, unsigned depth)
{
	enum addr_class k;
	int rc;

	if (run_class_of(run, a, &k) < 0)
		return -1;
	switch (k) {
	case ADDR_CLASS_VIRTUAL_ALIAS:
		/* Left over after virtual_alias_maps: trivial-rewrite sends
		 * it to the error transport. */
		return run_error(run, k, a, "5.1.1", "User unknown in virtual alias table");
	case ADDR_CLASS_VIRTUAL_MAILBOX:
		return run_vmbox(run, a);
	case ADDR_CLASS_RELAY:
	case ADDR_CLASS_DEFAULT:
		return run_add(run, ADDR_TARGET_ADDRESS, k, a, 0, 0);
	case ADDR_CLASS_LOCAL:
		break;
	}
	if (run_is_double_bounce(run, a))
		return run_add(run, ADDR_TARGET_ADDRESS, k, a, 0, 0);
	if (top && run->r->lrm_set) {
		if ((rc = run_lrm(run, a)) < 0)
			return -1;
		if (rc == 0)
			return run_error(run, k, a, "5.1.1", "User unknown in local recipient table");
	}
	return run_local(run, a, NULL, depth);
}

/* cleanup(8) and then trivial-rewrite(8) for a. */
static int
run_resolve(struct addr_run *run, const char *a, bool top, unsigned depth)
{
	struct addr_strv res = { NULL, 0, 0 };
	bool mapped = false;
	int rc = 0;

	if (depth > ADDR_NEST_MAX) {
		run_warn(run, "mail forwarding loop for %s", a);
		return run_error(run, ADDR_CLASS_DEFAULT, a, "5.4.6", "mail forwarding loop");
	}
	if (map_list_size(run->r->valias) > 0)
		rc = run_va_expand(run, a, &res, &mapped);
	else
		addr_strv_adopt(&res, addr_xstrdup(a));
	for (size_t i = 0; i < res.n && rc == 0; i++)
		rc = run_class(run, res.v[i], top && !mapped, depth);
	addr_strv_free(&res);
	return rc;
}

/* ---- local(8): aliases, :include:, commands and files ---- */

static int run_items(struct addr_run *run, const char *value, size_t len, struct addr_exp *x,
                     unsigned depth);

static int run_config_error(struct addr_run *run, const struct addr_exp *x, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A broken :include: file or alias member: the expansion bounces with
 * Postfix's words, the details go to the log. */
static int
run_config_error(struct addr_run *run, const struct addr_exp *x, const char *fmt, ...)
{
	char why[ADDR_WARNING_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	run_warn(run, "%s", why);
	return run_error(run, ADDR_CLASS_LOCAL, x->owner_addr, "5.3.5",
	                 "mail system configuration error");
}

/*
 * The rights of an alias's commands, files and :include: files
 * (local(8) DELIVERY RIGHTS): the owner of the alias map file; root's
 * become default_privs when used. A map made from text has no file and
 * counts as root's.
 */
static int
run_alias_rights(struct addr_run *run, struct addr_exp *x)
{
	const char *spec = map_spec(map_list_get(run->r->aliases, x->map));
	char path[MAP_SPEC_MAX + sizeof(MAP_LMDB_SUFFIX)];
	struct addr_pw pw;
	struct stat st;

	if (x->rights_known)
		return 0;
	x->uid = 0;
	x->gid = 0;
	x->rights_known = true;
	if (strncmp(spec, "texthash:", strlen("texthash:")) == 0)
		snprintf(path, sizeof(path), "%s", spec + strlen("texthash:"));
	else if (strncmp(spec, "lmdb:", strlen("lmdb:")) == 0)
		snprintf(path, sizeof(path), "%s%s", spec + strlen("lmdb:"), MAP_LMDB_SUFFIX);
	else
		return 0;
	if (stat(path, &st) < 0)
		return run_fail(run, 451, "4.3.0", "alias database unavailable", "cannot stat %s: %s",
		                path, strerror(errno));
	if (st.st_uid == 0)
		return 0;
	if (run_charge(run) < 0)
		return -1;
	if (run->r->udb.by_uid(run->r->udb.ctx, st.st_uid, &pw) != ADDR_PW_FOUND)
		return run_fail(run, 451, "4.3.0", "cannot find alias database owner",
		                "cannot find alias database owner for %s (uid %ld)", spec,
		                (long)st.st_uid);
	x->uid = pw.uid;
	x->gid = pw.gid;
	return 0;
}

/* |command or /file: allowed by param, run with x's rights. */
static int
run_program(struct addr_run *run, enum addr_target_kind kind, const char *target,
            struct addr_exp *x)
{
	struct addr_resolver *r = run->r;
	bool command = kind == ADDR_TARGET_COMMAND;

	/* XXX Postfix's allow_mail_to_* are lists (alias, forward, include);
	 * ours are booleans: yes allows both aliases and :include: files. */
	if (!config_bool(r->cfg, command ? P_ALLOW_MAIL_TO_COMMANDS : P_ALLOW_MAIL_TO_FILES))
		return run_error(run, ADDR_CLASS_LOCAL, x->owner_addr, "5.7.1",
		                 command ? "mail to command is restricted"
		                         : "mail to file is restricted");
	if (run_alias_rights(run, x) < 0)
		return -1;
	if (run_add(run, kind, ADDR_CLASS_LOCAL, target, x->uid != 0 ? x->uid : r->default_uid,
	            x->gid != 0 ? x->gid : r->default_gid) < 0)
		return -1;
	run->out->v[run->out->n - 1].owner = addr_xstrdup(x->owner_addr);
	return 0;
}

/* Why opening an :include: file failed: a file that is not there is the
 * administrator's mistake (5.3.5, as Postfix); anything else, EACCES
 * first, may be ours (we read it unprivileged): try again later. */
static int
run_include_unreadable(struct addr_run *run, const char *path, struct addr_exp *x, int err)
{
	if (err == ENOENT || err == ENOTDIR || err == ELOOP)
		return run_config_error(run, x, "cannot open include file %s: %s", path,
		                        strerror(err));
	return run_fail(run, 451, "4.3.5", "mail system configuration error",
	                "cannot open include file %s: %s", path, strerror(err));
}

/* The contents of an :include: file into data; 0, -1 (reported). */
static int
run_include_read(struct addr_run *run, const char *path, struct addr_exp *x, int fd,
                 struct buf *data)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return run_include_unreadable(run, path, x, errno);
	/* local(8)'s "can of worms": no special files, nothing anyone may
	 * write to. */
	if (!S_ISREG(st.st_mode))
		return run_config_error(run, x, ":include: file %s is not a regular file", path);
	if (st.st_mode & S_IWOTH)
		return run_config_error(run, x, ":include: file %s is world writable", path);
	do {
		n = buf_read_fd(data, fd, 64 * 1024);
	} while (n > 0 || (n < 0 && errno == EINTR));
	if (buf_len(data) > ADDR_INCLUDE_FILE_MAX)
		return run_config_error(run, x, ":include: file %s is larger than %d bytes", path,
		                        ADDR_INCLUDE_FILE_MAX);
	if (n < 0)
		return run_fail(run, 451, "4.3.0", "error reading forwarding file",
		                "error reading :include: file %s: %s", path, strerror(errno));
	if (memchr(buf_data(data), '\0', buf_len(data)) != NULL)
		return run_config_error(run, x, ":include: file %s holds a NUL byte", path);
	/* local(8): a root-owned alias including a user's file gets that
	 * user's rights, so the user cannot act as default_privs. */
	if (x->uid == 0 && st.st_uid != 0) {
		struct addr_pw pw;

		if (run_charge(run) < 0)
			return -1;
		if (run->r->udb.by_uid(run->r->udb.ctx, st.st_uid, &pw) != ADDR_PW_FOUND)
			return run_fail(run, 451, "4.3.5", "mail system configuration error",
			                "cannot find :include: file owner username for %s (uid %ld)",
			                path, (long)st.st_uid);
		x->uid = pw.uid;
		x->gid = pw.gid;
	}
	return 0;
}

/* Has this file been read as this user already (local(8)'s duplicate
 * filter, which also ends include loops)? Remember it if not. */
static bool
run_include_seen(struct addr_run *run, const char *path, uid_t uid)
{
	for (size_t i = 0; i < run->nseen; i++)
		if (run->seen[i].uid == uid && strcmp(run->seen[i].path, path) == 0)
			return true;
	run->seen = addr_xrealloc(run->seen, (run->nseen + 1) * sizeof(*run->seen));
	run->seen[run->nseen].uid = uid;
	run->seen[run->nseen].path = addr_xstrdup(path);
	run->nseen++;
	return false;
}

/* :include:path, a member of x: its lines are members too, one list per
 * line, lines starting with '#' skipped (local(8)'s token.c). */
static int
run_include(struct addr_run *run, const char *path, struct addr_exp *x, unsigned depth)
{
	struct addr_exp *child;
	struct buf data;
	const char *p, *end, *nl;
	int fd, rc;

	if (depth > ADDR_NEST_MAX) {
		run_warn(run, ":include: nesting limit exceeded for %s", path);
		return run_error(run, ADDR_CLASS_LOCAL, x->owner_addr, "5.4.6",
		                 ":include: nesting limit exceeded");
	}
	if (run_alias_rights(run, x) < 0 || run_charge(run) < 0)
		return -1;
	if (run_include_seen(run, path, x->uid))
		return 0;
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)) < 0)
		return run_include_unreadable(run, path, x, errno);
	child = addr_xmalloc(sizeof(*child));
	*child = *x;
	child->include = true;
	child->source = path;
	if (!(run->r->ext_prop & ADDR_EXT_INCLUDE))
		child->ext[0] = '\0';
	buf_init(&data, ADDR_INCLUDE_FILE_MAX + 1);
	rc = run_include_read(run, path, child, fd, &data);
	close(fd);
	p = buf_data(&data);
	end = p + buf_len(&data);
	for (; rc == 0 && p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (p < nl && p[0] != '#')
			rc = run_items(run, p, (size_t)(nl - p), child, depth + 1);
	}
	buf_free(&data);
	free(child);
	return rc;
}

/* An address member of x (it may hold several, separated by white space). */
static int
run_member(struct addr_run *run, const char *text, struct addr_exp *x, unsigned depth)
{
	size_t pos = 0, start, len, tlen;
	enum addr_class k;
	int rc = 0;
	char *a;

	/* "\user": sendmail's "no more aliasing"; Postfix's tokenizer drops
	 * the backslash, and local(8)'s self-reference rule does the rest. */
	if (text[0] == '\\')
		text++;
	tlen = strlen(text);
	while (rc == 0 && addr_next_token(text, tlen, &pos, &start, &len)) {
		if (len + strlen(x->ext) > ADDR_LEN_MAX)
			return run_fail(run, 451, "4.6.0", "Alias expansion error",
			                "unreasonable %s result %.300s... for %s",
			                x->include ? ":include:" : "alias_maps", text + start,
			                x->owner_addr);
		a = run_qualify(run, text + start, len, x->ext);
		if ((rc = run_class_of(run, a, &k)) == 0)
			rc = k == ADDR_CLASS_LOCAL ? run_local(run, a, x, depth)
			                           : run_resolve(run, a, false, depth);
		free(a);
	}
	return rc;
}

/* The members of an alias value or of a line of an :include: file. */
static int
run_items(struct addr_run *run, const char *value, size_t len, struct addr_exp *x, unsigned depth)
{
	struct map_alias_item *item = addr_xmalloc(sizeof(*item));
	const char *why = "syntax error";
	size_t pos = 0;
	int n = 0, rc = 0;

	while (rc == 0 && (n = map_alias_next(value, len, &pos, item, &why)) > 0) {
		switch (item->kind) {
		case MAP_ALIAS_ADDRESS:
			rc = run_member(run, item->text, x, depth);
			break;
		case MAP_ALIAS_COMMAND:
			rc = run_program(run, ADDR_TARGET_COMMAND, item->text, x);
			break;
		case MAP_ALIAS_FILE:
			rc = run_program(run, ADDR_TARGET_FILE, item->text, x);
			break;
		case MAP_ALIAS_INCLUDE:
			rc = run_include(run, item->text, x, depth);
			break;
		}
	}
	if (rc == 0 && n < 0)
		rc = run_config_error(run, x, "%s: %s, in the expansion of %s", x->source, why,
		                      x->owner_addr);
	free(item);
	return rc;
}

/* alias_maps for the local part: 1 with x filled, 0, -1. */
static __attribute__((noinline)) int
run_alias_lookup(struct addr_run *run, const char *a, const struct addr_local *lp,
                 struct addr_exp *x)
{
	struct map_match match;
	int rc;

	if ((rc = run_lookup(run, run->r->aliases, lp->full, 0, &match)) <= 0)
		return rc;
	memset(x, 0, sizeof(*x));
	snprintf(x->name, sizeof(x->name), "%s", match.key);
	x->owner_addr = a;
	x->map = match.map;
	x->source = map_spec(map_list_get(run->r->aliases, match.map));
	/* propagate_unmatched_extensions = alias: user+foo finds "user", and
	 * its members get +foo. */
	if (run->r->ext_prop & ADDR_EXT_ALIAS)
		snprintf(x->ext, sizeof(x->ext), "%s", match.extension);
	return 1;
}

/*
 * local(8) for a local address: its alias, else the user's mailbox. An
 * alias that lists its own name (root: root, admin) delivers to the
 * user; other loops run into ADDR_NEST_MAX. parent: the alias this
 * address is a member of, or NULL.
 */
static int
run_local(struct addr_run *run, const char *a, const struct addr_exp *parent, unsigned depth)
{
	struct addr_resolver *r = run->r;
	struct addr_local *lp;
	struct addr_exp *x = NULL;
	struct addr_pw pw;
	char text[ADDR_LEN_MAX + 64];
	bool self;
	int rc = 0;

	if (!r->local_agent)	/* an LMTP server behind local_transport decides */
		return run_add(run, ADDR_TARGET_ADDRESS, ADDR_CLASS_LOCAL, a, 0, 0);
	lp = addr_xmalloc(sizeof(*lp));
	run_local_parts(run, a, lp);
	self = parent != NULL && (strcmp(parent->name, lp->full) == 0 ||
	                          strcmp(parent->name, lp->user) == 0);
	if (depth > ADDR_NEST_MAX) {
		run_warn(run, "alias database loop for %s", lp->full);
		snprintf(text, sizeof(text), "alias database loop for %s", lp->full);
		rc = run_error(run, ADDR_CLASS_LOCAL, a, "5.4.6", text);
	} else if (!self && !lp->has_at && map_list_size(r->aliases) > 0) {
		x = addr_xmalloc(sizeof(*x));
		rc = run_alias_lookup(run, a, lp, x);
	}
	if (rc > 0) {
		char *value = addr_xstrdup(buf_cstr(&run->value));

		rc = run_items(run, value, strlen(value), x, depth + 1);
		free(value);
	} else if (rc == 0 && depth <= ADDR_NEST_MAX) {
		if ((rc = run_passwd(run, lp->user, &pw)) > 0)
			rc = run_add(run, ADDR_TARGET_ADDRESS, ADDR_CLASS_LOCAL, a, pw.uid, pw.gid);
		else if (rc == 0) {
			snprintf(text, sizeof(text), "unknown user: \"%s\"", lp->user);
			rc = run_error(run, ADDR_CLASS_LOCAL, a, "5.1.1", text);
		}
	}
	free(x);
	free(lp);
	return rc < 0 ? -1 : 0;
}

/* ---- duplicates and the verdict ---- */

/* Same target: kind, then the address without regard to case, or the
 * command or file and its rights exactly. */
static int
addr_target_key_cmp(const struct addr_target *a, const struct addr_target *b)
{
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->kind == ADDR_TARGET_COMMAND || a->kind == ADDR_TARGET_FILE) {
		if (a->uid != b->uid)
			return a->uid < b->uid ? -1 : 1;
		return strcmp(a->value, b->value);
	}
	return strcasecmp(a->value, b->value);
}

struct addr_sort {
	const struct addr_target *t;
	size_t i;
};

static int
addr_sort_cmp(const void *pa, const void *pb)
{
	const struct addr_sort *a = pa, *b = pb;
	int c = addr_target_key_cmp(a->t, b->t);

	if (c != 0)
		return c;
	return a->i < b->i ? -1 : a->i > b->i;
}

/* Drop the later copies of every target, keeping the order found; count
 * the deliverable ones. */
static void
addr_dedupe(struct addr_expansion *x)
{
	struct addr_sort *s = addr_xmalloc(x->n * sizeof(*s));
	bool *dup = addr_xmalloc(x->n * sizeof(*dup));
	size_t i, j = 0;

	for (i = 0; i < x->n; i++) {
		s[i].t = &x->v[i];
		s[i].i = i;
		dup[i] = false;
	}
	qsort(s, x->n, sizeof(*s), addr_sort_cmp);
	for (i = 1; i < x->n; i++)
		if (addr_target_key_cmp(s[i - 1].t, s[i].t) == 0)
			dup[s[i].i] = true;
	x->deliverable = 0;
	for (i = 0; i < x->n; i++) {
		if (dup[i]) {
			free(x->v[i].value);
			free(x->v[i].text);
			free(x->v[i].owner);
			continue;
		}
		x->v[j] = x->v[i];
		x->deliverable += x->v[j].kind != ADDR_TARGET_ERROR;
		j++;
	}
	x->n = j;
	free(s);
	free(dup);
}

enum addr_verdict
addr_resolve(struct addr_resolver *r, const char *addr, struct addr_expansion *out, char *reply,
             size_t replysz)
{
	struct addr_run run;
	const struct addr_target *t;
	char *a;
	int rc;

	addr_expansion_free(out);
	if (replysz > 0)
		reply[0] = '\0';
	if (addr[0] == '\0' || strlen(addr) > ADDR_LEN_MAX) {
		addr_reply_format(reply, replysz, 550, "5.1.3", addr, "Bad recipient address syntax");
		return ADDR_REFUSED;
	}
	memset(&run, 0, sizeof(run));
	run.r = r;
	run.out = out;
	run.top = addr;
	buf_init(&run.value, MAP_VALUE_MAX);
	a = run_qualify(&run, addr, strlen(addr), "");
	rc = run_resolve(&run, a, true, 0);
	free(a);
	buf_free(&run.value);
	for (size_t i = 0; i < run.nseen; i++)
		free(run.seen[i].path);
	free(run.seen);
	if (rc < 0 && !run.failed)
		panic("addr_resolve: failure without a reason for %s", addr);
	if (run.failed) {
		addr_targets_clear(out);
		if (replysz > 0)
			(void)snprintf(reply, replysz, "%d %s <%s>: %s", run.fail_code, run.fail_dsn, addr,
			               run.fail_text);
		return ADDR_TEMPFAIL;
	}
	addr_dedupe(out);
	if (out->deliverable > 0 || out->n == 0)
		return ADDR_OK;
	/* An empty local_recipient_maps turns the RCPT-time check of local
	 * users off: Postfix then accepts and local(8) bounces "unknown user".
	 * So do we (smtpd queues local failures for the local agent). */
	if (!r->lrm_set) {
		size_t i;

		for (i = 0; i < out->n && out->v[i].klass == ADDR_CLASS_LOCAL; i++)
			;
		if (i == out->n)
			return ADDR_OK;
	}
	/* Nothing deliverable: refuse now rather than accept and bounce. */
	t = &out->v[0];
	addr_reply_format(reply, replysz, t->code, t->dsn, addr, t->text);
	return strcmp(t->dsn, "5.1.1") == 0 ? ADDR_UNKNOWN : ADDR_REFUSED;
}
