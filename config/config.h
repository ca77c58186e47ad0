/*
 * config: the configuration of tern, read from one file of `name = value`
 * lines (Postfix main.cf syntax) or made from the development defaults.
 *
 * Every parameter is declared once, in config_params.h (name, type,
 * default, doc line); nothing reads a parameter ad hoc. Values are parsed,
 * $name-expanded and checked at load time, so a running role never sees a
 * malformed value: accessors cannot fail.
 *
 * Per-listener overrides (master.cf -o style): a parameter flagged
 * CONFIG_F_LISTENER may also be set as `submission_NAME`, `smtps_NAME`
 * or `reinject_NAME` (the re-injection listener, with defaults of its own);
 * config_l*() accessors return the override for that listener, else the
 * global value.
 *
 * Per-transport overrides (Postfix style): a parameter flagged
 * CONFIG_F_TRANSPORT, whose name is default_REST, may also be set as
 * TRANSPORT_REST (slow_destination_concurrency_limit overrides
 * default_destination_concurrency_limit for transport "slow"). TRANSPORT
 * is [a-z0-9][a-z0-9_-]*; config_t*() accessors return the override for
 * that transport, else the global value. The two kinds do not mix:
 * submission_NAME is a listener override only when NAME is a
 * CONFIG_F_LISTENER parameter, and no parameter carries both flags.
 *
 * A struct config is immutable once loaded; reload builds a new one.
 */
#ifndef TERN_CONFIG_H
#define TERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Parameter ids, from the one table. */
enum config_param {
#define CONFIG_PARAM(id, name, type, flags, def, choices, doc) id,
#include "config/config_params.h"
#undef CONFIG_PARAM
	CONFIG_PARAM_COUNT
};

enum config_type {
	CONFIG_STR,		/* any string after $expansion */
	CONFIG_BOOL,		/* yes / no (also true/false, 1/0) */
	CONFIG_INT,		/* non-negative decimal */
	CONFIG_SIZE,		/* bytes; suffix k, m, g (powers of 1024) allowed */
	CONFIG_TIME,		/* seconds; suffix s, m, h, d, w; default unit in flags */
	CONFIG_LIST,		/* items separated by commas and/or white space */
	CONFIG_RESTRICTIONS,	/* a list of restriction words, validated */
	CONFIG_ENUM,		/* one of the table's choices "a|b|c" */
	CONFIG_LISTEN,		/* list of address:port ([v6]:port) */
	CONFIG_NETWORKS,	/* list of CIDR networks / addresses */
	CONFIG_RATES,		/* list of DOMAIN=RATE (destination_rate_limits) */
	CONFIG_FILTER,		/* "" or transport:nexthop (content_filter); read as a string */
	CONFIG_RBL_REPLY,	/* a default_rbl_reply template (config_rbl_reply.h), its $names
				 * checked at load; read as a string */
};

/* Table flags. */
#define CONFIG_F_LISTENER   0x01	/* may be overridden per listener */
#define CONFIG_F_UNIT_MIN   0x02	/* CONFIG_TIME: a bare number means minutes */
#define CONFIG_F_UNIT_HOUR  0x04	/* ... hours */
#define CONFIG_F_UNIT_DAY   0x08	/* ... days */
#define CONFIG_F_TRANSPORT  0x10	/* default_REST: may be overridden as TRANSPORT_REST */
#define CONFIG_F_RAW        0x20	/* CONFIG_STR, CONFIG_RBL_REPLY: no $expansion at load
					 * (a template whose $names the role fills in, as
					 * Postfix's raw parameters) */

/* Longest transport name in a TRANSPORT_REST override. */
#define CONFIG_TRANSPORT_NAME_MAX 64

/* The listeners of ternd; each may carry overrides. */
enum config_listener {
	CONFIG_LISTENER_GLOBAL = 0,	/* no listener: global values */
	CONFIG_LISTENER_SMTP,		/* smtpd_listen, port 25: global values */
	CONFIG_LISTENER_SUBMISSION,	/* submission_listen, prefix submission_ */
	CONFIG_LISTENER_SMTPS,		/* smtps_listen, prefix smtps_ */
	/* queue_directory/public/sendmail, the local submission socket of
	 * the sendmail command (doc/sendmail.md): global values, no prefix */
	CONFIG_LISTENER_SENDMAIL,
	/* reinject_listen, prefix reinject_: where an after-queue content
	 * filter hands mail back (doc/content_filter.md). Never filtered
	 * (reinject_content_filter may only be empty); its own defaults for
	 * the restriction lists, mynetworks and AUTH, as Postfix's
	 * FILTER_README sets up its 10025 smtpd. No TLS: a loopback port. */
	CONFIG_LISTENER_REINJECT,
	CONFIG_LISTENER_COUNT
};

struct config_list {
	size_t n;
	char **items;		/* owned by the config */
};

/* One network of mynetworks: family AF_INET or AF_INET6, address, prefix. */
struct config_network {
	int family;
	unsigned char addr[16];
	unsigned prefix;
};

/* One listen address: host ("127.0.0.1", "::1", "0.0.0.0") and port. */
struct config_listen_addr {
	char host[64];
	unsigned port;
};

/*
 * One item of a CONFIG_RATES list: "example.org=RATE" (that domain only,
 * subdomains false) or ".example.org=RATE" (its subdomains only, domain
 * stored without the dot, subdomains true). domain is lower-cased.
 * delay_ms is the least time between two deliveries: a delay as given
 * (500ms, 2s, 1m; a bare number is seconds), or for N/s, N/m, N/h, N/d
 * the unit divided by N, rounded up so the rate is never exceeded
 * (20/m = 3000 ms, 3/s = 334 ms). 0 means no limit.
 */
#define CONFIG_RATE_DOMAIN_MAX 253	/* longest domain (RFC 1035 2.3.4: 255 on the wire) */
#define CONFIG_RATE_DOMAIN_SIZE 256	/* its buffer, NUL included */
struct config_rate {
	char domain[CONFIG_RATE_DOMAIN_SIZE];	/* lower case, no leading dot */
	bool subdomains;
	uint64_t delay_ms;
};

struct config;

/*
 * Load path (NULL: no file; the development defaults of interface.md).
 * On success returns a config. On failure returns NULL and appends one
 * "FILE:LINE: message\n" per problem to errors (all problems, not just
 * the first). An unknown parameter names the closest known one.
 */
struct config *config_load(const char *path, struct buf *errors);
void config_free(struct config *cfg);

/* The file it came from, or NULL for the development defaults. */
const char *config_path(const struct config *cfg);
bool config_is_dev(const struct config *cfg);

/* Global values. Strings are owned by cfg. */
const char *config_str(const struct config *cfg, enum config_param p);
bool config_bool(const struct config *cfg, enum config_param p);
uint64_t config_int(const struct config *cfg, enum config_param p);	/* INT and SIZE */
int64_t config_time(const struct config *cfg, enum config_param p);	/* seconds */
const struct config_list *config_list(const struct config *cfg, enum config_param p);
/* CONFIG_NETWORKS: the parsed networks; n set to their count. */
const struct config_network *config_networks(const struct config *cfg, enum config_param p, size_t *n);
/* CONFIG_LISTEN: the parsed addresses. */
const struct config_listen_addr *config_listen(const struct config *cfg, enum config_param p, size_t *n);
/* CONFIG_RATES: the parsed items, in file order; n set to their count. */
const struct config_rate *config_rates(const struct config *cfg, enum config_param p,
                                       size_t *n);

/*
 * The destination_rate_limits rule for domain (case-insensitive; one
 * trailing dot ignored): an exact "domain=" item first, else the closest
 * parent's ".parent=" item (a.b.example.org tries .b.example.org, then
 * .example.org, then .org). True and *delay_ms set when one matches;
 * false, *delay_ms untouched, when none does. domain is
 * borrowed for the call and matched as given, not checked for syntax.
 */
bool config_rate_lookup(const struct config *cfg, const char *domain, uint64_t *delay_ms);

/* The same, honouring a listener's overrides. */
const char *config_lstr(const struct config *cfg, enum config_listener l, enum config_param p);
bool config_lbool(const struct config *cfg, enum config_listener l, enum config_param p);
uint64_t config_lint(const struct config *cfg, enum config_listener l, enum config_param p);
int64_t config_ltime(const struct config *cfg, enum config_listener l, enum config_param p);
const struct config_list *config_llist(const struct config *cfg, enum config_listener l, enum config_param p);
const struct config_network *config_lnetworks(const struct config *cfg, enum config_listener l,
                                              enum config_param p, size_t *n);

/* Does listener l have its own value of p (a prefixed setting, or the
 * re-injection listener's own default)? false for the global listener. */
bool config_lset(const struct config *cfg, enum config_listener l, enum config_param p);

/*
 * The line of the file that set p for listener l (its override, else the
 * global setting), for FILE:LINE messages about a value that parsed but
 * cannot be used (a certificate file that does not load); 0 when the
 * value is a default.
 */
unsigned config_lline(const struct config *cfg, enum config_listener l, enum config_param p);

/*
 * The same, honouring a transport's overrides (TRANSPORT_REST). transport
 * is the bare transport name ("smtp", not "smtp:[host]"), borrowed for the
 * call; NULL, an unknown transport or a parameter without
 * CONFIG_F_TRANSPORT gives the global value.
 */
uint64_t config_tint(const struct config *cfg, const char *transport, enum config_param p);
int64_t config_ttime(const struct config *cfg, const char *transport, enum config_param p);	/* s */

/* Table look-ups, for `ternctl config show` and messages. */
const char *config_param_name(enum config_param p);
const char *config_param_doc(enum config_param p);
enum config_type config_param_type(enum config_param p);
/* Is p's value kept as written, without $expansion (CONFIG_F_RAW)? */
bool config_param_raw(enum config_param p);
/* The listener's name ("smtp", "submission", "smtps"). */
const char *config_listener_name(enum config_listener l);
/* The listener so named (len bytes of name, no NUL needed), or
 * CONFIG_LISTENER_GLOBAL when none is ("global" included). */
enum config_listener config_listener_named(const char *name, size_t len);

/*
 * A content filter's next hop, "transport:nexthop" (content_filter, the
 * FILTER action of an access map): transport smtp or lmtp (the agents a
 * filter listens behind), then a next hop that agent understands: for
 * smtp host, host:port, [host] or [host]:port; for lmtp inet:host[:port]
 * or unix:/path. Printable ASCII without white space, at most
 * CONFIG_FILTER_MAX bytes. Tern has no empty next hop (Postfix 2.7+ would
 * take the recipient's domain): the filter is one place. len bytes of s,
 * no NUL needed. true when valid; else false with a reason in why.
 */
#define CONFIG_FILTER_MAX 512
bool config_filter_valid(const char *s, size_t len, char *why, size_t whysz);

/* Does addr (AF_INET/AF_INET6 bytes) fall in one of the networks? */
bool config_networks_match(const struct config_network *nets, size_t n, int family,
                           const void *addr);

/*
 * Append `name = value` lines for every parameter (effective values, after
 * expansion; listener overrides as `submission_name = ...`, then transport
 * overrides as `slow_destination_concurrency_limit = 2`, sorted by
 * transport and then in table order). For ternctl.
 */
void config_dump(const struct config *cfg, struct buf *out);

#endif
