/*
 * resolver: asynchronous DNS lookups (MX, A/AAAA, TXT, PTR, NS, TLSA) through
 * c-ares, driven by our event loop. One struct resolver per process.
 *
 * What it owns: the c-ares channel, one ev_io per c-ares socket, one
 * ev_timer for c-ares' timeouts, a bounded answer cache, and every
 * struct resolver_query handle until its callback returns or it is
 * cancelled. Nothing blocks (c-ares reads /etc/resolv.conf once, in
 * resolver_new), and there are no threads.
 *
 * Callbacks are never called from inside the function that started the
 * query, nor from inside c-ares: every result (a cache hit, a malformed
 * name, an answer off the wire) is queued and delivered from a 0 ms timer
 * of the loop, one query at a time. So a callback may start queries,
 * cancel any other query, or cancel its own handle (a no-op), safely.
 *
 * Replies are parsed here, not by c-ares' ares_parse_*_reply(): those
 * give no TTL for MX and TXT, and the MX and TXT ones take records of any
 * owner name from the answer section. Every name from the wire is checked
 * (compression, lengths, host name syntax); counts in the header are only
 * claims, checked against the bytes.
 *
 * Error policy: per-lookup failures are results (enum resolver_status
 * plus text); setup errors are returned with a message; out of memory
 * and epoll failures are fatal(); misuse (resolver_free from inside a
 * callback) is a bug and panics.
 */
#ifndef TERN_RESOLVER_H
#define TERN_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
struct sockaddr;
struct config;

/* Longest name in text form, without the trailing dot (RFC 1035 section
 * 2.3.4: 255 octets on the wire). */
#define RESOLVER_NAME_MAX 253
#define RESOLVER_NAME_SIZE (RESOLVER_NAME_MAX + 1)
/* Longest label (RFC 1035 section 2.3.4). */
#define RESOLVER_LABEL_MAX 63
/* Room for a result's text ("Host or domain name not found. ..."). */
#define RESOLVER_TEXT_SIZE 512

/* Most dns_servers entries (glibc uses 3; more only adds waiting). */
#define RESOLVER_SERVERS_MAX 8
/* Per-try timeout. c-ares doubles it on every pass over the server list,
 * so with one server and 2 tries a dead server costs 5 + 10 s. */
#define RESOLVER_TIMEOUT_MS_DEFAULT 5000
#define RESOLVER_TIMEOUT_MS_MIN 10
#define RESOLVER_TIMEOUT_MS_MAX 30000
#define RESOLVER_TRIES_DEFAULT 2
#define RESOLVER_TRIES_MAX 5
/* Answers kept in the cache; the oldest is evicted when full. */
#define RESOLVER_CACHE_DEFAULT 1000
#define RESOLVER_CACHE_MAX 100000
/* Longest time a positive answer is kept, whatever its TTL. */
#define RESOLVER_TTL_MAX_S 86400
/* Longest time a negative answer (NXDOMAIN, NODATA) is kept: RFC 2308
 * section 5 says the SOA's TTL and MINIMUM, we also bound it, so a
 * record just added is seen soon. Without an SOA it is not cached. */
#define RESOLVER_NEGATIVE_TTL_MAX_S 60
/* Longest CNAME chain followed inside one answer. */
#define RESOLVER_CNAME_MAX 8
/* Most records kept from one answer; the rest are ignored. */
#define RESOLVER_RR_MAX 64

/* inet_protocols: which address records resolver_host() asks for. */
enum resolver_family {
	RESOLVER_FAMILY_ALL = 0,	/* A and AAAA, in parallel */
	RESOLVER_FAMILY_IPV4,		/* A only */
	RESOLVER_FAMILY_IPV6,		/* AAAA only */
};

struct resolver_options {
	/* "ip", "ip:port", "[ipv6]" or "[ipv6]:port" (a bare IPv6 address
	 * takes no port); n_servers == 0 means /etc/resolv.conf. Borrowed
	 * for the resolver_new() call. */
	const char *const *servers;
	size_t n_servers;
	unsigned timeout_ms;	/* per try, RESOLVER_TIMEOUT_MS_MIN..MAX */
	unsigned tries;		/* 1..RESOLVER_TRIES_MAX */
	enum resolver_family family;
	size_t cache_max;	/* entries, 0..RESOLVER_CACHE_MAX; 0 = no cache */
	/* smtp_dns_support_level = dnssec: every query asks for DNSSEC (the
	 * DO bit in an EDNS0 OPT record, RFC 4035 section 3.2.1, and the AD
	 * bit, RFC 6840 section 5.7) and each result says whether the
	 * configured resolver vouched for it (AD=1 in the reply header).
	 * We trust that bit, as Postfix does: it means something only with a
	 * local validating resolver (unbound on 127.0.0.1), never with one
	 * across a network an attacker can reach. */
	bool dnssec;
};

/* How a lookup ended, as an administrator reads it. */
enum resolver_status {
	RESOLVER_OK = 0,	/* records found (after CNAMEs) */
	RESOLVER_NXDOMAIN,	/* permanent: the name does not exist */
	RESOLVER_NODATA,	/* permanent: the name exists, no record of the type */
	RESOLVER_TEMPFAIL,	/* SERVFAIL, REFUSED, timeout, network, malformed reply */
	RESOLVER_BADNAME,	/* permanent: the name asked for is not a valid host name */
};

struct resolver_mx_rr {
	unsigned preference;
	char exchange[RESOLVER_NAME_SIZE];	/* lower case, no trailing dot; "." for the root (null MX) */
};

struct resolver_addr {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];		/* network order; 4 bytes used for AF_INET */
};

/* One TXT record: its character-strings concatenated (SPF, DMARC). */
struct resolver_txt {
	size_t len;
	char *data;		/* NUL-terminated, but may hold NUL and any byte */
};

struct resolver_name {
	char name[RESOLVER_NAME_SIZE];	/* lower case, no trailing dot */
};

/* One TLSA record (RFC 6698 section 2.1), its RDATA as received: the
 * three one-octet fields when there are at least three octets, the rest
 * as data. Whether it is usable is the caller's question (a record of
 * fewer than three octets comes with len_ok false, no fields, no data,
 * and len the RDATA's length). */
struct resolver_tlsa {
	bool len_ok;			/* the RDATA held at least 3 octets */
	uint8_t usage, selector, mtype;
	size_t len;			/* certificate association data */
	unsigned char *data;		/* NUL-terminated copy; NULL when !len_ok */
};

/*
 * A result, borrowed by the callback for the duration of the call only.
 * The arrays of the other kinds are empty (n_* == 0, pointer NULL).
 */
struct resolver_result {
	enum resolver_status status;
	const char *name;	/* as asked, lower case, no trailing dot (PTR: the .arpa name) */
	const char *type;	/* "MX", "A", "AAAA", "TXT", "PTR", "NS", "TLSA" (the failing one for A+AAAA) */
	const char *canonical;	/* the name after CNAMEs (== name without any) */
	/* When status != RESOLVER_OK, Postfix's wording, e.g. "Host or domain
	 * name not found. Name service error for name=example.invalid
	 * type=MX: Host not found"; "" when OK. */
	const char *text;
	const char *detail;	/* the cause in DNS terms ("timeout", "SERVFAIL", ...), or "" */
	uint32_t ttl;		/* seconds this answer remains valid */
	bool cached;		/* answered from the cache */
	/* Options dnssec only: the reply had the AD bit (RFC 4035 section
	 * 3.2.3), for a positive answer and for NXDOMAIN or NODATA alike.
	 * A+AAAA: every family that has records came secure. Always false
	 * without the option, and for TEMPFAIL and BADNAME. */
	bool secure;
	size_t n_mx;
	const struct resolver_mx_rr *mx;	/* in answer order */
	size_t n_addr;
	const struct resolver_addr *addr;	/* AAAA records first, then A, each in answer order */
	size_t n_txt;
	const struct resolver_txt *txt;
	size_t n_ptr;
	const struct resolver_name *ptr;
	size_t n_ns;
	const struct resolver_name *ns;		/* NS targets, in answer order */
	size_t n_tlsa;
	const struct resolver_tlsa *tlsa;	/* in answer order */
};

struct resolver;
/* A handle on one lookup; valid until its callback returns or it is cancelled. */
struct resolver_query;

typedef void resolver_cb(const struct resolver_result *res, void *arg);

/* Defaults: /etc/resolv.conf, 5000 ms, 2 tries, all families, 1000 entries. */
void resolver_options_init(struct resolver_options *opt);
/*
 * Defaults, then dns_servers and inet_protocols from cfg. opt->servers
 * then borrows cfg's strings: keep cfg until resolver_new() returns.
 */
void resolver_options_from_config(struct resolver_options *opt, const struct config *cfg);
/* "all", "ipv4", "ipv6" to *family; 0, or -1 for any other word. */
int resolver_family_parse(const char *word, enum resolver_family *family);

/*
 * Check a dns_servers list without starting anything. 0, or -1 with a
 * message in err naming the first bad entry ("dns_servers: \"1.2.3.4:0\":
 * port must be 1..65535").
 */
int resolver_servers_check(const char *const *servers, size_t n, char *err, size_t errsz);

/*
 * A resolver on loop. Returns NULL with a message in err on a bad option
 * or when c-ares cannot start (its message included).
 */
struct resolver *resolver_new(struct evloop *loop, const struct resolver_options *opt,
                              char *err, size_t errsz);
/*
 * Stop everything: pending handles become invalid and their callbacks
 * are never called. Must not be called from inside a resolver callback
 * (panics). NULL is a no-op.
 */
void resolver_free(struct resolver *r);

/*
 * Start a lookup. name is borrowed for the call; a trailing dot and upper
 * case are accepted. cb is called once, later, from the event loop (never
 * from inside these functions), unless the handle is cancelled first.
 * They never fail: a malformed name comes back as RESOLVER_BADNAME.
 */
struct resolver_query *resolver_mx(struct resolver *r, const char *domain, resolver_cb *cb, void *arg);
/* A and/or AAAA per the family option, both in parallel. An address
 * literal is not a host name (BADNAME): [ip] next hops need no lookup. */
struct resolver_query *resolver_host(struct resolver *r, const char *name, resolver_cb *cb, void *arg);
/* A (af AF_INET) or AAAA (AF_INET6) only, whatever the family option:
 * smtpd's check that a client's name resolves back to the client's
 * address asks the client's family, as Postfix's smtpd_peer does.
 * Another af gives RESOLVER_BADNAME. */
struct resolver_query *resolver_host_af(struct resolver *r, const char *name, int af,
                                        resolver_cb *cb, void *arg);
/* TXT records; name may hold underscores (_dmarc.example.org). */
struct resolver_query *resolver_txt(struct resolver *r, const char *name, resolver_cb *cb, void *arg);
/* NS records of a domain (check_*_ns_access). */
struct resolver_query *resolver_ns(struct resolver *r, const char *domain, resolver_cb *cb, void *arg);
/* TLSA records (RFC 6698) of a name such as _25._tcp.mx.example.org. */
struct resolver_query *resolver_tlsa(struct resolver *r, const char *name, resolver_cb *cb, void *arg);
/* PTR of an AF_INET or AF_INET6 address (a v4-mapped IPv6 address is
 * looked up as IPv4); another family gives RESOLVER_BADNAME. */
struct resolver_query *resolver_ptr(struct resolver *r, const struct sockaddr *sa, resolver_cb *cb, void *arg);

/* Change the dnssec option (a reload): later queries ask accordingly.
 * Answers cached before keep the secure flag they came with. */
void resolver_set_dnssec(struct resolver *r, bool dnssec);

/*
 * Cancel a lookup: its callback is never called. Safe from any callback,
 * including the handle's own (where it does nothing). The DNS query
 * itself runs on and still fills the cache. NULL is a no-op.
 */
void resolver_cancel(struct resolver_query *q);

/*
 * Normalise a host or domain name: lower case, one trailing dot removed,
 * into out (RESOLVER_NAME_SIZE bytes). Returns 0 when the result is a
 * valid host name (labels of 1..63 letters, digits, '-' or '_', no '-'
 * at either end of a label, at most 253 characters, not all digits and
 * dots), else -1 (out then holds the normalised text as far as it fit).
 */
int resolver_name_normalize(const char *name, char *out);

/* Longest DNSSEC query: header, a name of 255 octets, type and class,
 * the OPT record. */
#define RESOLVER_QUERY_WIRE_MAX (12 + 255 + 4 + 11)
/*
 * The bytes of a query with DNSSEC asked for (the dnssec option): RD and
 * AD set, one question, an EDNS0 OPT record with the DO bit and a UDP
 * size of 1232. name: a normalised name (resolver_name_normalize). Returns
 * the length, or 0 when out is smaller than RESOLVER_QUERY_WIRE_MAX or a
 * label is empty or too long. Public for the unit tests.
 */
size_t resolver_query_wire(const char *name, uint16_t qtype, uint16_t id, unsigned char *out,
                           size_t outsz);

/* "OK", "NXDOMAIN", "NODATA", "TEMPFAIL", "BADNAME". */
const char *resolver_status_name(enum resolver_status s);
/* Postfix's enhanced status for a failed host lookup: "4.4.3" for
 * TEMPFAIL, "5.4.4" for the permanent ones, "" for OK. */
const char *resolver_status_dsn(enum resolver_status s);

#endif
