/*
 * addr_resolve: what one envelope recipient becomes when a message enters
 * the queue (issue 5, "Address resolution"). smtpd calls it at RCPT time,
 * to refuse unknown recipients and to store the expansion; qmgr calls it
 * for the recipients of the bounces it writes. doc/maps.md, "Address
 * resolution", is the administrator's side.
 *
 * The steps are Postfix's, done in one place and at one time:
 *
 *   1. an address without a domain gets @$myorigin (cleanup(8));
 *   2. virtual_alias_maps, for every address class (cleanup_map1n.c):
 *      recursive, loops stopped where an address maps to itself,
 *      virtual_alias_recursion_limit and virtual_alias_expansion_limit;
 *   3. each result is put in its class (trivial-rewrite resolve.c):
 *      mydestination (local), virtual_alias_domains, virtual_mailbox_domains,
 *      relay_domains, else default, in that order of precedence;
 *   4. the class's own step: a virtual alias domain address left after
 *      step 2 is unknown; a virtual mailbox address must be in
 *      virtual_mailbox_maps (when set); a local address must be in
 *      local_recipient_maps (when set), and, when local_transport is
 *      local(8), is expanded by alias_maps (recursive, :include: files,
 *      |command and /file targets with the rights Postfix's local(8)
 *      would use) or must be a user in the password database; relay and
 *      default addresses are final.
 *
 * The result is a list of targets: addresses (with their class),
 * commands, files, and per-target errors (a member of an alias that is
 * unknown bounces on its own, as in Postfix; the recipient is refused
 * only when nothing of it could be delivered).
 *
 * No network I/O: map lookups (config/map.h), :include: files, and the
 * password database through an injectable struct addr_userdb.
 *
 * Error policy: returns results, never logs or exits; a problem worth a
 * log line is in struct addr_expansion's warning. Every map that cannot
 * be read makes the whole recipient a temporary failure (451 4.3.0), never
 * "unknown". Out of memory is fatal().
 *
 * Ownership: a resolver owns the maps it opened and borrows the
 * configuration, which must outlive it. An expansion owns its targets.
 * A resolver is used by one thread at a time (its maps are).
 */
#ifndef TERN_ADDR_RESOLVE_H
#define TERN_ADDR_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"
#include "config/config.h"

/* Longest address taken in or produced, bytes (Postfix's
 * virtual_alias_address_length_limit default). */
#define ADDR_LEN_MAX 1000
/* Most targets one recipient may expand to, before duplicates are
 * removed; more is a temporary failure (4.6.0), as an over-long virtual
 * expansion is in Postfix. */
#define ADDR_TARGETS_MAX 10000
/* Deepest nesting of aliases, :include: files and forwarded addresses;
 * deeper is Postfix's "alias database loop" (5.4.6). local(8) stops at
 * level 100 and counts two levels per alias. */
#define ADDR_NEST_MAX 50
/* Most map lookups (and :include: reads) one addr_resolve() may do: the
 * bound on work whatever the tables hold; more is a temporary failure. */
#define ADDR_LOOKUPS_MAX 100000
/* Largest :include: file read, bytes. */
#define ADDR_INCLUDE_FILE_MAX (1024 * 1024)
/* A reply buffer this large never truncates a reply. */
#define ADDR_REPLY_MAX (ADDR_LEN_MAX + 200)
/* Size of struct addr_expansion's warning. */
#define ADDR_WARNING_MAX (ADDR_LEN_MAX + 600)
/* Sizes of struct addr_pw's strings, NUL included. */
#define ADDR_PW_NAME_MAX 256
#define ADDR_PW_PATH_MAX 1024
/* Size of an enhanced status code ("5.1.1"), NUL included. */
#define ADDR_DSN_MAX 16

/* Address classes (trivial-rewrite's), in order of precedence. */
enum addr_class {
	ADDR_CLASS_LOCAL,		/* mydestination, or no domain */
	ADDR_CLASS_VIRTUAL_ALIAS,	/* virtual_alias_domains */
	ADDR_CLASS_VIRTUAL_MAILBOX,	/* virtual_mailbox_domains */
	ADDR_CLASS_RELAY,		/* relay_domains */
	ADDR_CLASS_DEFAULT,		/* anything else */
};

enum addr_target_kind {
	ADDR_TARGET_ADDRESS,	/* deliver to value, an address */
	ADDR_TARGET_COMMAND,	/* pipe to value, a command (no '|'), as uid/gid */
	ADDR_TARGET_FILE,	/* append to value, an absolute path, as uid/gid */
	ADDR_TARGET_ERROR,	/* value, an address, failed: code, dsn, text */
};

struct addr_target {
	enum addr_target_kind kind;
	/* The class of an ADDRESS or ERROR's address (DEFAULT for a
	 * forwarding loop, stopped before its class was known); LOCAL for
	 * COMMAND and FILE. */
	enum addr_class klass;
	char *value;		/* owned; never NULL */
	/* COMMAND, FILE: the rights to run with (the alias map's or the
	 * :include: file's owner, default_privs for root). A local ADDRESS
	 * found in the password database: that user's. 0 otherwise. */
	uid_t uid;
	gid_t gid;
	/* COMMAND, FILE: the alias address whose expansion holds the target
	 * ("joe@host.example"): what the envelope stores, so that the local
	 * agent resolves it again with its own rights and finds the target
	 * there (it never takes a command or its rights from the spool).
	 * Owned; NULL for the other kinds. */
	char *owner;
	/* ERROR only: the SMTP code (550), the enhanced status ("5.1.1")
	 * and the reason ("User unknown in virtual alias table"); owned. */
	int code;
	char dsn[ADDR_DSN_MAX];
	char *text;
};

/* The expansion of one recipient. Zero it with addr_expansion_init(). */
struct addr_expansion {
	struct addr_target *v;	/* owned, n of them, in the order found */
	size_t n;
	size_t cap;
	size_t deliverable;	/* the targets that are not ADDR_TARGET_ERROR */
	/* The first problem worth a log line ("virtual_alias_maps: unreasonable
	 * map nesting for a@example.org", a map's error, an :include: file
	 * that is world writable); "" when none. Log it as "warning: ...". */
	char warning[ADDR_WARNING_MAX];
};

enum addr_verdict {
	ADDR_OK,	/* accept: out holds the targets (some may be errors) */
	ADDR_UNKNOWN,	/* 550 5.1.1: no such user; nothing deliverable */
	ADDR_REFUSED,	/* another permanent refusal (5.7.1, 5.4.6, 5.3.5, 5.1.3) */
	ADDR_TEMPFAIL,	/* 4xx: a map could not be read, a limit was passed */
};

/* ---- the password database ---- */

struct addr_pw {
	uid_t uid;
	gid_t gid;
	char name[ADDR_PW_NAME_MAX];
	char home[ADDR_PW_PATH_MAX];
	char shell[ADDR_PW_PATH_MAX];
};

enum addr_pw_result {
	ADDR_PW_FOUND,
	ADDR_PW_NOTFOUND,
	ADDR_PW_ERROR,		/* the database cannot be read now: temporary */
};

/*
 * Where users come from: by name (local recipients, default_privs) and by
 * uid (owners of alias maps and :include: files). ctx is passed through.
 */
struct addr_userdb {
	enum addr_pw_result (*by_name)(void *ctx, const char *name, struct addr_pw *out);
	enum addr_pw_result (*by_uid)(void *ctx, uid_t uid, struct addr_pw *out);
	void *ctx;
};

/* The system's: getpwnam_r(3) and getpwuid_r(3). ctx is unused. A name,
 * home or shell too long for struct addr_pw is ADDR_PW_ERROR. */
enum addr_pw_result addr_pw_system_by_name(void *ctx, const char *name, struct addr_pw *out);
enum addr_pw_result addr_pw_system_by_uid(void *ctx, uid_t uid, struct addr_pw *out);

/* ---- the resolver ---- */

struct addr_resolver;

/*
 * Open the maps of cfg (virtual_alias_maps, virtual_mailbox_maps,
 * alias_maps with MAP_F_ALIASES, local_recipient_maps, and the type:table
 * items of mydestination, virtual_alias_domains, virtual_mailbox_domains
 * and relay_domains) and look default_privs up when commands or files are
 * allowed. Call it in the role that uses it, after the fork (LMDB). cfg is
 * borrowed and must outlive the resolver; udb is copied (NULL: the
 * system's). Returns NULL on failure, with one line per problem in diag
 * ("SPEC: message", "default_privs: unknown user \"x\""); map warnings
 * are appended to diag on success too.
 */
struct addr_resolver *addr_resolver_new(const struct config *cfg, const struct addr_userdb *udb,
                                        struct buf *diag);
void addr_resolver_free(struct addr_resolver *r);

/*
 * Resolve addr (a recipient as in the envelope, no < >: "user+ext@Domain",
 * "\"john doe\"@example.org", or a bare "Postmaster") into out, which is
 * emptied first. reply gets the text smtpd answers with when the verdict
 * is not ADDR_OK, "" otherwise:
 *
 *   ADDR_UNKNOWN   "550 5.1.1 <addr>: Recipient address rejected: User unknown
 *                  in local recipient table" (or "in virtual alias table",
 *                  "in virtual mailbox table", local(8)'s "unknown user: ...")
 *   ADDR_REFUSED   "550 5.7.1 <addr>: Recipient address rejected: mail to
 *                  command is restricted", 5.4.6 alias loops, 5.3.5 broken
 *                  :include: files, 5.1.3 for an empty or over-long address
 *   ADDR_TEMPFAIL  "451 4.3.0 <addr>: Temporary lookup failure" (a map or the
 *                  password database cannot be read), "451 4.6.0 <addr>:
 *                  Alias expansion error" (a limit passed), "451 4.3.5
 *                  <addr>: mail system configuration error" (an owner that
 *                  cannot be found, an :include: file we may not read)
 *
 * ADDR_UNKNOWN and ADDR_REFUSED are returned when no target is
 * deliverable: the first error target decides, named by addr. With
 * ADDR_OK, out may still hold error targets (bounce them) and, for an
 * empty :include: file, no targets at all (Postfix delivers nothing and
 * reports success). With ADDR_TEMPFAIL out is empty. out->warning is
 * set in any case when there is something to log.
 */
enum addr_verdict addr_resolve(struct addr_resolver *r, const char *addr,
                               struct addr_expansion *out, char *reply, size_t replysz);

/*
 * The class of domain (as in an address: case and one trailing dot do not
 * matter; "" is local). 0, or -1 with err set when a type:table item of a
 * domain list cannot be read (a temporary failure). For qmgr's routing,
 * so both agree on the classes.
 */
int addr_resolver_class(struct addr_resolver *r, const char *domain, enum addr_class *out,
                        char *err, size_t errsz);

/*
 * The configuration check: every domain listed in two classes where
 * Postfix's trivial-rewrite warns ("do not list domain example.org in BOTH
 * mydestination and virtual_alias_domains"), one line each in warnings.
 * The precedence that applies is addr_class's order. Literal domains are
 * checked against every list (literal or type:table items); two tables
 * are not compared with each other. Returns the number of lines, or -1
 * when a table cannot be read (warnings then ends with its error).
 */
int addr_resolver_check(struct addr_resolver *r, struct buf *warnings);

/* ---- expansions ---- */

void addr_expansion_init(struct addr_expansion *x);
/* Free the targets; x is empty (and reusable) afterwards. */
void addr_expansion_free(struct addr_expansion *x);

/* ---- helpers ---- */

/*
 * The target of kind COMMAND or FILE with this value (a command without
 * its '|', a path) among x's, or NULL: how the local agent finds, in its
 * own expansion of a target's owner, the target smtpd stored.
 */
const struct addr_target *addr_expansion_find(const struct addr_expansion *x,
                                              enum addr_target_kind kind, const char *value);

/* "local", "virtual_alias", "virtual_mailbox", "relay", "default". */
const char *addr_class_name(enum addr_class c);

/*
 * The reply for a refused recipient: "CODE DSN <addr>: Recipient address
 * rejected: TEXT" into reply (truncated to replysz, always terminated).
 * For an error target: addr_reply_format(buf, size, t->code, t->dsn,
 * t->value, t->text).
 */
void addr_reply_format(char *reply, size_t replysz, int code, const char *dsn, const char *addr,
                       const char *text);

/*
 * Where the address extension of a local part starts: the index of the
 * first character of local[0..len) that is one of delimiters
 * (recipient_delimiter, any of its characters), or len when there is
 * none. As Postfix's split_addr(), nothing is split when delimiters is
 * NULL or empty, when the split would leave an empty user ("+foo"), for
 * postmaster, mailer-daemon and double_bounce (NULL: "double-bounce"),
 * and, when '-' is a delimiter, for owner-* and *-request. A quoted local
 * part ("\"a+b\"") is not split either (map.h's lookups do the same).
 * The extension returned is local[index..len), the delimiter included.
 */
size_t addr_split_extension(const char *local, size_t len, const char *delimiters,
                            const char *double_bounce);

#endif
