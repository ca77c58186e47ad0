/*
 * smtpd_dnsaccess: access maps over what the DNS says about a name, for
 * Postfix's check_{client,reverse_client_hostname,helo,sender,recipient}_
 * {mx,ns,a}_access TYPE:MAP words.
 *
 * MX: the name's MX hosts (a name without MX is its own MX host; an
 * address literal is its own MX address); NS: its name servers (a name
 * without NS records: those of the nearest parent that has some); A: its
 * IPv4 and IPv6 addresses. Each MX or NS host is looked up in the map by
 * its name and parent domains (access(5)), then by each of its addresses
 * and their networks (1.2.3.4, 1.2.3, 1.2, 1); the first key found ends
 * the walk, whatever its action (so DUNNO exempts a host), as Postfix's
 * check_server_access does.
 *
 * The walk is a pure state machine (struct smtpd_dnsaccess_walk): it
 * says which question to ask next and is fed the answers, so it can be
 * tested with made-up answers. smtpd_dnsaccess_start() drives it on the
 * resolver. Everything is bounded: SMTPD_DNSACCESS_HOSTS_MAX hosts,
 * SMTPD_DNSACCESS_ADDRS_MAX addresses per host, SMTPD_DNSACCESS_PARENTS_MAX
 * parent domains asked for NS.
 *
 * Errors: a DNS failure is logged ("warning: Unable to look up MX host
 * for example.com: ...", Postfix's words) and ends in NOTFOUND, never in
 * a refusal; a map that cannot be read ends in ERROR with the map's text.
 * Ownership: the map is borrowed for the walk's life; a lookup is owned
 * by this module until its callback returned or it was cancelled.
 */
#ifndef TERN_SMTPD_DNSACCESS_H
#define TERN_SMTPD_DNSACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/evloop.h"
#include "config/map.h"
#include "resolver/resolver.h"

/* MX or NS hosts looked at, the most preferred MX hosts first. */
#define SMTPD_DNSACCESS_HOSTS_MAX 10
/* Addresses of one host (or of the name, for _a_access) looked at. */
#define SMTPD_DNSACCESS_ADDRS_MAX 16
/* Parent domains asked for NS records when a name has none. */
#define SMTPD_DNSACCESS_PARENTS_MAX 8
/* Room for a warning's subject ("Sender address <a@b>"). */
#define SMTPD_DNSACCESS_SUBJECT_MAX 600

enum smtpd_dnsaccess_type {
	SMTPD_DNSACCESS_MX,
	SMTPD_DNSACCESS_NS,
	SMTPD_DNSACCESS_A,
};

/* The question the walk needs answered next. */
enum smtpd_dnsaccess_ask {
	SMTPD_DNSACCESS_ASK_NONE,	/* finished: see result */
	SMTPD_DNSACCESS_ASK_MX,
	SMTPD_DNSACCESS_ASK_NS,
	SMTPD_DNSACCESS_ASK_HOST,	/* A and AAAA */
};

enum smtpd_dnsaccess_result {
	SMTPD_DNSACCESS_NOTFOUND,	/* no key of the map matched */
	SMTPD_DNSACCESS_FOUND,		/* key and value are set */
	SMTPD_DNSACCESS_ERROR,		/* the map failed: err */
};

struct smtpd_dnsaccess_walk {
	enum smtpd_dnsaccess_type type;
	struct map *map;				/* borrowed */
	char subject[SMTPD_DNSACCESS_SUBJECT_MAX];	/* for warnings */
	/* The next question (ask_name), or NONE with the result. */
	enum smtpd_dnsaccess_ask ask;
	char ask_name[RESOLVER_NAME_SIZE];
	enum smtpd_dnsaccess_result result;
	char key[MAP_KEY_MAX + 1];	/* FOUND: the key that matched */
	struct buf value;		/* FOUND: its value */
	char err[512];			/* ERROR: why */
	/* Private. */
	bool on_hosts;			/* answers are a host's addresses */
	unsigned parents;
	char domain[RESOLVER_NAME_SIZE];
	char hosts[SMTPD_DNSACCESS_HOSTS_MAX][RESOLVER_NAME_SIZE];
	size_t nhosts, hi;
};

/*
 * Begin a walk for name (a host name, or a mail address whose domain is
 * used; an address literal [..] is the MX and A form's own address) in
 * map; subject names it in warnings ("Sender address a@b"). The walk may
 * be finished at once (ask NONE). Free with smtpd_dnsaccess_walk_free().
 */
void smtpd_dnsaccess_walk_start(struct smtpd_dnsaccess_walk *w, enum smtpd_dnsaccess_type type,
                                struct map *map, const char *name, const char *subject);
/* The answer to w->ask; res is borrowed for the call. */
void smtpd_dnsaccess_walk_answer(struct smtpd_dnsaccess_walk *w, const struct resolver_result *res);
void smtpd_dnsaccess_walk_free(struct smtpd_dnsaccess_walk *w);

/* The walk is finished; w is borrowed for the call. */
typedef void smtpd_dnsaccess_cb(void *arg, struct smtpd_dnsaccess_walk *w);

struct smtpd_dnsaccess_lookup;

/*
 * Run a walk on the resolver. cb is called once, later, from the loop
 * (never from inside this call), unless the lookup is cancelled first.
 * loop and r must outlive the lookup; map, name and subject are copied
 * or borrowed as in smtpd_dnsaccess_walk_start().
 */
struct smtpd_dnsaccess_lookup *smtpd_dnsaccess_start(struct evloop *loop, struct resolver *r,
                                                     enum smtpd_dnsaccess_type type,
                                                     struct map *map, const char *name,
                                                     const char *subject,
                                                     smtpd_dnsaccess_cb *cb, void *arg);
/* Drop a lookup; its callback is never called. NULL: no-op. */
void smtpd_dnsaccess_cancel(struct smtpd_dnsaccess_lookup *l);

#endif
