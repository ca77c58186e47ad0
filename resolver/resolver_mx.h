/*
 * resolver_mx: from the answer to an MX lookup to the ordered list of
 * next hops (RFC 5321 section 5.1). Pure: no I/O, no clock, no global
 * state; randomness is injected, so tests pass a fixed sequence.
 *
 * The rules, in order:
 *  1. NXDOMAIN, BADNAME: permanent failure (5.4.4), the resolver's text.
 *     TEMPFAIL: temporary failure (4.4.3), the resolver's text.
 *  2. NODATA (no MX records): the implicit MX, the domain itself at
 *     preference 0 (RFC 5321 section 5.1).
 *  3. MX records: entries whose exchange is the root "." are dropped.
 *     If nothing is left, the domain said it accepts no mail: null MX
 *     (RFC 7505), a permanent failure "Domain D does not accept mail
 *     (nullMX)" with 5.1.10. RFC 7505 section 3 defines null MX as the
 *     only MX record ("A domain that advertises a null MX MUST NOT
 *     advertise any other MX RR"); when one comes with real MX hosts the
 *     zone is broken, and we use the real hosts, which is where mail
 *     for the domain can go, rather than bounce. (XXX Postfix bounces
 *     such a domain as nullMX.) A name listed twice keeps its best
 *     preference.
 *  4. Sort by preference, lowest first; equal preferences in random order.
 *  5. Loop detection, the Postfix way (smtp_addr.c): if an MX host is
 *     ourselves (myhostname or one of the extra names), drop it and every
 *     host of equal or worse preference. If that leaves nothing, we are
 *     the best MX: "mail for D loops back to myself", 5.4.6, permanent.
 *     The implicit MX is checked too. Postfix compares addresses; we
 *     compare names (case and one trailing dot ignored).
 *  6. Keep at most RESOLVER_MX_HOSTS_MAX hosts.
 */
#ifndef TERN_RESOLVER_MX_H
#define TERN_RESOLVER_MX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resolver/resolver.h"

/*
 * Most next hops kept. Postfix tries at most smtp_mx_address_limit (5)
 * addresses in smtp_mx_session_limit (2) sessions per delivery; 20 hosts
 * leaves room for broken ones while bounding the work per attempt.
 */
#define RESOLVER_MX_HOSTS_MAX 20
/* Most MX records considered (the resolver keeps no more). */
#define RESOLVER_MX_INPUT_MAX RESOLVER_RR_MAX
/* Room for an enhanced status code ("5.1.10"). */
#define RESOLVER_MX_DSN_SIZE 8

enum resolver_mx_status {
	RESOLVER_MX_OK = 0,
	RESOLVER_MX_TEMPFAIL,	/* try again later */
	RESOLVER_MX_PERMFAIL,	/* bounce */
};

struct resolver_mx_host {
	char name[RESOLVER_NAME_SIZE];	/* lower case, no trailing dot */
	unsigned preference;
	bool implicit;			/* the domain itself: no MX records */
};

struct resolver_mx_list {
	enum resolver_mx_status status;
	char dsn[RESOLVER_MX_DSN_SIZE];	/* "" when OK */
	char text[RESOLVER_TEXT_SIZE];	/* "" when OK */
	size_t n;			/* > 0 exactly when OK */
	struct resolver_mx_host hosts[RESOLVER_MX_HOSTS_MAX];
};

/* Who we are, for loop detection. All borrowed for the call. */
struct resolver_mx_self {
	const char *myhostname;		/* may be NULL */
	const char *const *names;	/* extra names (e.g. proxy or NAT names) */
	size_t n_names;
};

/* A uniform random number in [0, n), n >= 1. */
typedef uint32_t resolver_mx_random(void *arg, uint32_t n);

/* The system's: arc4random_uniform() (glibc 2.36). arg is unused. */
uint32_t resolver_mx_random_system(void *arg, uint32_t n);

/*
 * Next hops for domain from res, the result of resolver_mx() for it
 * (only its status, text and MX records are read; tests build one by
 * hand). self may be NULL (no loop detection). Fills *out; never fails.
 */
void resolver_mx_select(const char *domain, const struct resolver_result *res,
                        const struct resolver_mx_self *self, resolver_mx_random *rnd,
                        void *rnd_arg, struct resolver_mx_list *out);

#endif
