/*
 * resolver: c-ares on our event loop, our own reply parser, a bounded
 * answer cache.
 *
 * Objects and who owns them:
 *  - struct resolver_query: the caller's handle, owned by the resolver
 *    (r->queries) until its callback returns or it is cancelled. It has
 *    one part per DNS question (two for A+AAAA).
 *  - struct resolver_lookup: one DNS question in flight, shared by every
 *    part asking the same (name, type), so 50 deliveries to one domain
 *    send one query. Owned by c-ares' callback argument: it lives until
 *    c-ares calls resolver_lookup_done(), even when every waiter has
 *    cancelled (the answer then only fills the cache).
 *  - struct resolver_answer: a parsed answer, reference counted, shared
 *    by the cache and the parts that wait for it.
 *
 * Results reach callers only from the ready timer (resolver_ready_run),
 * never from inside c-ares or a request function: c-ares may call back
 * synchronously from ares_query(), and a caller must be free to cancel
 * or start queries from its callback.
 */
#include "resolver/resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <ares.h>

#include "common/evloop.h"
#include "common/log.h"
#include "config/config.h"

/* DNS wire format (RFC 1035 sections 3.2, 4.1). */
#define DNS_HEADER_SIZE 12
#define DNS_RR_FIXED_SIZE 10		/* type, class, ttl, rdlength */
#define DNS_QUESTION_FIXED_SIZE 4	/* type, class */
#define DNS_NAME_WIRE_MAX 255		/* RFC 1035 section 2.3.4 */
#define DNS_CLASS_IN 1
#define DNS_TYPE_A 1
#define DNS_TYPE_NS 2
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_SOA 6
#define DNS_TYPE_PTR 12
#define DNS_TYPE_MX 15
#define DNS_TYPE_TXT 16
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_OPT 41			/* RFC 6891 */
#define DNS_TYPE_TLSA 52		/* RFC 6698 */
#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_NXDOMAIN 3
#define DNS_FLAG_QR 0x8000u
#define DNS_FLAG_RD 0x0100u
#define DNS_FLAG_AD 0x0020u		/* RFC 4035 section 3.2.3, RFC 6840 section 5.7 */
/* The EDNS0 OPT record of a DNSSEC query (RFC 6891 section 6.1.2): the
 * UDP payload size we take (the DNS flag day 2020 value; larger answers
 * come over TCP after TC), and the DO bit in the TTL field's flags. */
#define DNS_EDNS_UDP_SIZE 1232
#define DNS_EDNS_FLAG_DO 0x8000u
#define DNS_QUERY_MAX RESOLVER_QUERY_WIRE_MAX
#define DNS_OPCODE_MASK 0x7800u
/* RFC 2181 section 8: a TTL with the top bit set is read as zero. */
#define DNS_TTL_MAX 0x7fffffffu

#define RESOLVER_DETAIL_SIZE 96
/* Longest name shown in a BADNAME text (the name may be anything). */
#define RESOLVER_BADNAME_SHOW 100
/* Text form of "d.c.b.a.in-addr.arpa" / 32 nibbles + "ip6.arpa". */
#define RESOLVER_ARPA_SIZE 80

/* ---- intrusive doubly linked lists with a sentinel ---- */

struct resolver_link {
	struct resolver_link *prev, *next;
};

static void list_init(struct resolver_link *h) { h->prev = h->next = h; }
static bool list_empty(const struct resolver_link *h) { return h->next == h; }

static void
list_add_tail(struct resolver_link *h, struct resolver_link *l)
{
	l->prev = h->prev;
	l->next = h;
	h->prev->next = l;
	h->prev = l;
}

static void
list_del(struct resolver_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

/* Move every element of from to the (empty) list to. */
static void
list_splice(struct resolver_link *from, struct resolver_link *to)
{
	list_init(to);
	if (list_empty(from))
		return;
	to->next = from->next;
	to->prev = from->prev;
	to->next->prev = to;
	to->prev->next = to;
	list_init(from);
}

#define LIST_ITEM(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---- objects ---- */

struct resolver_answer {
	unsigned refs;
	enum resolver_status status;
	uint16_t qtype;
	bool cacheable;
	bool secure;			/* the reply had AD=1 (dnssec mode only) */
	uint32_t ttl;			/* seconds, as received (capped) */
	char name[RESOLVER_NAME_SIZE];
	char canonical[RESOLVER_NAME_SIZE];
	char text[RESOLVER_TEXT_SIZE];
	char detail[RESOLVER_DETAIL_SIZE];
	size_t n, cap;			/* records of qtype, in one of: */
	struct resolver_mx_rr *mx;
	struct resolver_addr *addr;
	struct resolver_txt *txt;
	struct resolver_name *ptr;
	struct resolver_tlsa *tlsa;
};

struct resolver_cache_entry {
	struct resolver_link age;		/* r->cache_age, oldest first */
	struct resolver_cache_entry *hnext;	/* hash chain */
	uint32_t hash;
	int64_t expires;			/* evloop_now() ms */
	struct resolver_answer *answer;		/* a reference */
};

struct resolver_lookup;

struct resolver_part {
	struct resolver_query *q;
	uint16_t qtype;
	struct resolver_lookup *lookup;		/* waited on, or NULL */
	struct resolver_link wait_link;		/* in lookup->waiters */
	struct resolver_answer *answer;		/* a reference, once known */
	bool from_cache;
	uint32_t ttl;				/* left, when delivered */
};

struct resolver_query {
	struct resolver *r;
	struct resolver_link link;		/* r->queries */
	struct resolver_link ready_link;	/* r->ready or a batch, when ready */
	bool ready, in_callback;
	resolver_cb *cb;
	void *arg;
	char name[RESOLVER_NAME_SIZE];		/* normalised, or the .arpa name */
	unsigned nparts, pending;
	struct resolver_part part[2];
};

struct resolver_lookup {
	struct resolver *r;
	struct resolver_link link;		/* r->lookups */
	struct resolver_link waiters;		/* parts */
	uint16_t qtype;
	bool dnssec;				/* asked with DO and AD */
	char name[RESOLVER_NAME_SIZE];
};

struct resolver_sock {
	struct ev_io io;
	struct resolver *r;
	int fd;
	struct resolver_sock *next;
};

struct resolver {
	struct evloop *loop;
	ares_channel channel;
	enum resolver_family family;
	bool dnssec;				/* ask for DNSSEC (options) */
	struct resolver_sock *socks;
	struct ev_timer ares_timer;		/* c-ares' next timeout */
	struct ev_timer ready_timer;		/* delivers r->ready */
	struct resolver_link queries, ready, lookups;
	unsigned callback_depth;
	/* The cache: a hash of chains, plus an age list for eviction. */
	size_t cache_max, cache_n, nbuckets;
	struct resolver_cache_entry **buckets;
	struct resolver_link cache_age;
};

static void *
resolver_alloc(size_t n)
{
	void *p = calloc(1, n);

	if (p == NULL)
		fatal("out of memory (resolver)");
	return p;
}

/* ---- names ---- */

static bool
resolver_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_';
}

static char
resolver_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/*
 * Host name syntax, as Postfix's valid_hostname(): labels of 1..63
 * letters, digits, '-' or '_', no '-' at either end of a label, at most
 * 253 characters, and not all digits and dots (an address is not a name).
 */
static bool
resolver_name_valid(const char *s, size_t len)
{
	size_t i, label = 0;
	bool numeric = true;
	unsigned char c;

	if (len == 0 || len > RESOLVER_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!resolver_ldh(c) || (c == '-' && label == 0))
			return false;
		if (c < '0' || c > '9')
			numeric = false;
		if (++label > RESOLVER_LABEL_MAX)
			return false;
	}
	if (label == 0 || s[len - 1] == '-')
		return false;
	return !numeric;
}

int
resolver_name_normalize(const char *name, char *out)
{
	size_t i, len = strlen(name);

	if (len > 0 && name[len - 1] == '.')
		len--;
	for (i = 0; i < len && i < RESOLVER_NAME_MAX; i++)
		out[i] = resolver_lower(name[i]);
	out[i] = '\0';
	if (len > RESOLVER_NAME_MAX)
		return -1;
	return resolver_name_valid(out, len) ? 0 : -1;
}

/* The .arpa name of an address (RFC 1035 section 3.5, RFC 3596 section 2.5). */
static int
resolver_arpa_name(const struct sockaddr *sa, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *b;
	size_t o = 0;
	int i;

	if (sa->sa_family == AF_INET6) {
		b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		if (!IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)b)) {
			for (i = 15; i >= 0; i--) {
				out[o++] = hex[b[i] & 0xf];
				out[o++] = '.';
				out[o++] = hex[b[i] >> 4];
				out[o++] = '.';
			}
			snprintf(out + o, outsz - o, "ip6.arpa");
			return 0;
		}
		b += 12;	/* ::ffff:a.b.c.d: the IPv4 client behind a dual stack socket */
	} else if (sa->sa_family == AF_INET) {
		b = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else {
		return -1;
	}
	snprintf(out, outsz, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
	return 0;
}

static const char *
resolver_type_name(uint16_t qtype)
{
	switch (qtype) {
	case DNS_TYPE_A: return "A";
	case DNS_TYPE_AAAA: return "AAAA";
	case DNS_TYPE_MX: return "MX";
	case DNS_TYPE_TXT: return "TXT";
	case DNS_TYPE_PTR: return "PTR";
	case DNS_TYPE_NS: return "NS";
	case DNS_TYPE_TLSA: return "TLSA";
	default: return "?";
	}
}

/* ---- answers ---- */

static struct resolver_answer *
resolver_answer_new(uint16_t qtype, const char *name)
{
	struct resolver_answer *a = resolver_alloc(sizeof(*a));

	a->refs = 1;
	a->qtype = qtype;
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->canonical, sizeof(a->canonical), "%s", name);
	return a;
}

static void
resolver_answer_unref(struct resolver_answer *a)
{
	size_t i;

	if (a == NULL || --a->refs > 0)
		return;
	for (i = 0; a->txt != NULL && i < a->n; i++)
		free(a->txt[i].data);
	for (i = 0; a->tlsa != NULL && i < a->n; i++)
		free(a->tlsa[i].data);
	free(a->tlsa);
	free(a->mx);
	free(a->addr);
	free(a->txt);
	free(a->ptr);
	free(a);
}

/*
 * The record array with room for one more (it may move). Callers first
 * check a->n < RESOLVER_RR_MAX: records past that are ignored.
 */
static void *
resolver_answer_grow(struct resolver_answer *a, void *array, size_t elem)
{
	size_t ncap;
	void *p;

	if (a->n < a->cap)
		return array;
	ncap = a->cap ? a->cap * 2 : 4;
	p = realloc(array, ncap * elem);
	if (p == NULL)
		fatal("out of memory (resolver answer)");
	memset((char *)p + a->cap * elem, 0, (ncap - a->cap) * elem);
	a->cap = ncap;
	return p;
}

/*
 * Set a failure: status, Postfix's text, our detail. why is Postfix's
 * h_errno text ("Host not found", "Host not found, try again", ...).
 */
static void
resolver_answer_fail(struct resolver_answer *a, enum resolver_status status, const char *why,
    const char *detail)
{
	a->status = status;
	if (status == RESOLVER_TEMPFAIL)
		a->secure = false;
	snprintf(a->text, sizeof(a->text),
	    "Host or domain name not found. Name service error for name=%s type=%s: %s",
	    a->name, resolver_type_name(a->qtype), why);
	snprintf(a->detail, sizeof(a->detail), "%s", detail);
}

/* A reply we cannot use: temporary, in Postfix's words for DNS_RETRY from its parser. */
static void
resolver_answer_malformed(struct resolver_answer *a, const char *detail)
{
	a->status = RESOLVER_TEMPFAIL;
	a->cacheable = false;
	a->secure = false;
	snprintf(a->text, sizeof(a->text),
	    "Name service error for name=%s type=%s: Malformed or unexpected name server reply",
	    a->name, resolver_type_name(a->qtype));
	snprintf(a->detail, sizeof(a->detail), "%s", detail);
}

/* ---- the reply parser ---- */

/* One answer-section record of a type we use. */
struct wire_rr {
	size_t owner;		/* offset of the owner name */
	uint16_t type;
	uint32_t ttl;
	size_t rdata;
	uint16_t rdlen;
};

struct wire {
	const unsigned char *msg;
	size_t len;
	unsigned rcode;
	size_t ancount;		/* records the answer section really held */
	struct wire_rr *rr;	/* the CNAME and qtype ones, class IN */
	size_t nrr, caprr;
	size_t ns_off;		/* where the authority section starts */
	unsigned nscount;
	bool ad;		/* the header's AD bit */
};

enum wire_name_kind {
	WIRE_NAME_BAD = -1,	/* malformed encoding: the whole reply is unusable */
	WIRE_NAME_HOST = 0,	/* a valid host name */
	WIRE_NAME_ROOT,		/* the root, "" */
	WIRE_NAME_OTHER,	/* well formed, but not host name syntax */
};

static uint16_t
wire_u16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
wire_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Read the name at *off into out (lower case, no trailing dot; bytes
 * that cannot be in a host name shown as '?'), and move *off past it.
 * A compression pointer must point before the start of the labels being
 * read (RFC 1035 section 4.1.4 points to a "prior occurrence"), so the
 * walk always ends; the name may span at most 255 octets.
 */
static enum wire_name_kind
wire_name(const struct wire *w, size_t *off, char out[RESOLVER_NAME_SIZE])
{
	size_t pos = *off, run = *off, o = 0, wire_len = 1, target, i;
	bool jumped = false, host = true;
	unsigned c;

	for (;;) {
		if (pos >= w->len)
			return WIRE_NAME_BAD;
		c = w->msg[pos];
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= w->len)
				return WIRE_NAME_BAD;
			target = (size_t)(c & 0x3f) << 8 | w->msg[pos + 1];
			if (target >= run)
				return WIRE_NAME_BAD;
			if (!jumped)
				*off = pos + 2;
			jumped = true;
			pos = run = target;
			continue;
		}
		if (c & 0xc0)		/* 0x40, 0x80: label types RFC 6891 retired */
			return WIRE_NAME_BAD;
		pos++;
		if (c == 0)
			break;
		wire_len += c + 1;
		if (wire_len > DNS_NAME_WIRE_MAX || pos + c > w->len)
			return WIRE_NAME_BAD;
		/* 255 wire octets make at most 253 characters of text. */
		if (o > 0)
			out[o++] = '.';
		for (i = 0; i < c; i++) {
			if (!resolver_ldh(w->msg[pos + i])) {
				host = false;
				out[o++] = '?';
			} else {
				out[o++] = resolver_lower((char)w->msg[pos + i]);
			}
		}
		pos += c;
	}
	if (!jumped)
		*off = pos;
	out[o] = '\0';
	if (o == 0)
		return WIRE_NAME_ROOT;
	return host && resolver_name_valid(out, o) ? WIRE_NAME_HOST : WIRE_NAME_OTHER;
}

/* Is the owner name at off equal to name (a valid host name)? */
static bool
wire_owner_is(const struct wire *w, size_t off, const char *name)
{
	char buf[RESOLVER_NAME_SIZE];

	return wire_name(w, &off, buf) == WIRE_NAME_HOST && strcmp(buf, name) == 0;
}

/* Read one record's header at *off; -1 when it does not fit. */
static int
wire_rr_read(const struct wire *w, size_t *off, struct wire_rr *rr, uint16_t *klass)
{
	char name[RESOLVER_NAME_SIZE];
	const unsigned char *p;

	rr->owner = *off;
	if (wire_name(w, off, name) == WIRE_NAME_BAD || *off + DNS_RR_FIXED_SIZE > w->len)
		return -1;
	p = w->msg + *off;
	rr->type = wire_u16(p);
	*klass = wire_u16(p + 2);
	rr->ttl = wire_u32(p + 4);
	if (rr->ttl > DNS_TTL_MAX)
		rr->ttl = 0;
	rr->rdlen = wire_u16(p + 8);
	rr->rdata = *off + DNS_RR_FIXED_SIZE;
	if (rr->rdata + rr->rdlen > w->len)
		return -1;
	*off = rr->rdata + rr->rdlen;
	return 0;
}

/*
 * Check the header and question, and index the answer section: every
 * record is read (the counts are only claims), the CNAME and qtype ones
 * of class IN are kept. Returns 0 or -1 with a reason.
 */
static int
wire_index(struct wire *w, uint16_t qtype, const char **why)
{
	char name[RESOLVER_NAME_SIZE];
	struct wire_rr rr;
	uint16_t flags, klass;
	size_t off = DNS_HEADER_SIZE, i, an;
	void *p;

	if (w->len < DNS_HEADER_SIZE) {
		*why = "short reply";
		return -1;
	}
	flags = wire_u16(w->msg + 2);
	w->rcode = flags & 0xf;
	w->ad = (flags & DNS_FLAG_AD) != 0;
	an = wire_u16(w->msg + 6);
	w->nscount = wire_u16(w->msg + 8);
	/* c-ares matched the question; we still need to step over it. */
	if (!(flags & DNS_FLAG_QR) || (flags & DNS_OPCODE_MASK) || wire_u16(w->msg + 4) != 1 ||
	    wire_name(w, &off, name) == WIRE_NAME_BAD || off + DNS_QUESTION_FIXED_SIZE > w->len) {
		*why = "bad header or question";
		return -1;
	}
	off += DNS_QUESTION_FIXED_SIZE;
	for (i = 0; i < an; i++) {
		if (wire_rr_read(w, &off, &rr, &klass) < 0) {
			*why = "answer section overruns the reply";
			return -1;
		}
		if (klass != DNS_CLASS_IN || (rr.type != DNS_TYPE_CNAME && rr.type != qtype))
			continue;
		if (w->nrr == w->caprr) {
			w->caprr = w->caprr ? w->caprr * 2 : 8;
			p = realloc(w->rr, w->caprr * sizeof(*w->rr));
			if (p == NULL)
				fatal("out of memory (resolver reply)");
			w->rr = p;
		}
		w->rr[w->nrr++] = rr;
	}
	w->ancount = an;
	w->ns_off = off;
	return 0;
}

/* Is zone ("" for the root) cur itself or one of its parents? The root
 * SOA comes with the NXDOMAIN for a top-level domain that does not exist. */
static bool
resolver_in_zone(const char *cur, const char *zone)
{
	size_t clen = strlen(cur), zlen = strlen(zone);

	if (zlen == 0)
		return true;
	if (zlen == clen)
		return strcmp(cur, zone) == 0;
	return zlen < clen && cur[clen - zlen - 1] == '.' && strcmp(cur + clen - zlen, zone) == 0;
}

/*
 * The negative-caching TTL (RFC 2308 section 5): the SOA of the
 * authority section whose owner is cur or one of its parents, the
 * smaller of its TTL and MINIMUM. -1 when there is none; -2 when the
 * authority section is malformed.
 */
static int64_t
wire_negative_ttl(const struct wire *w, const char *cur)
{
	char owner[RESOLVER_NAME_SIZE], skip[RESOLVER_NAME_SIZE];
	enum wire_name_kind kind;
	struct wire_rr rr;
	uint16_t klass;
	size_t off = w->ns_off, o, rd;
	uint32_t minimum;
	unsigned i;

	for (i = 0; i < w->nscount; i++) {
		if (wire_rr_read(w, &off, &rr, &klass) < 0)
			return -2;
		if (rr.type != DNS_TYPE_SOA || klass != DNS_CLASS_IN)
			continue;
		o = rr.owner;
		kind = wire_name(w, &o, owner);
		if ((kind != WIRE_NAME_HOST && kind != WIRE_NAME_ROOT) || !resolver_in_zone(cur, owner))
			continue;
		rd = rr.rdata;		/* MNAME, RNAME, then five 32-bit fields */
		if (wire_name(w, &rd, skip) == WIRE_NAME_BAD || wire_name(w, &rd, skip) == WIRE_NAME_BAD ||
		    rd + 20 != rr.rdata + rr.rdlen)
			return -2;
		minimum = wire_u32(w->msg + rd + 16);
		if (minimum > DNS_TTL_MAX)
			minimum = 0;
		return rr.ttl < minimum ? rr.ttl : minimum;
	}
	return -1;
}

/*
 * Follow the CNAME chain from a->name inside the answer (the recursive
 * server resolved it; we only read it). a->canonical gets the last name;
 * *ttl the smallest CNAME TTL. Returns the number of CNAMEs followed, or
 * -1 after setting a failure.
 */
static int
wire_follow_cnames(const struct wire *w, struct resolver_answer *a, uint32_t *ttl)
{
	char chain[RESOLVER_CNAME_MAX + 1][RESOLVER_NAME_SIZE];
	char target[RESOLVER_NAME_SIZE];
	int hops = 0, k;
	size_t i, off;

	snprintf(chain[0], sizeof(chain[0]), "%s", a->name);
	for (;;) {
		for (i = 0; i < w->nrr; i++)
			if (w->rr[i].type == DNS_TYPE_CNAME && wire_owner_is(w, w->rr[i].owner, chain[hops]))
				break;
		if (i == w->nrr)
			break;
		off = w->rr[i].rdata;
		if (wire_name(w, &off, target) != WIRE_NAME_HOST || off != w->rr[i].rdata + w->rr[i].rdlen) {
			resolver_answer_malformed(a, "malformed CNAME record");
			return -1;
		}
		for (k = 0; k <= hops; k++) {
			if (strcmp(chain[k], target) == 0) {
				resolver_answer_malformed(a, "CNAME loop");
				return -1;
			}
		}
		if (hops == RESOLVER_CNAME_MAX) {
			resolver_answer_malformed(a, "CNAME chain too long");
			return -1;
		}
		if (w->rr[i].ttl < *ttl)
			*ttl = w->rr[i].ttl;
		memcpy(chain[++hops], target, sizeof(target));
	}
	memcpy(a->canonical, chain[hops], sizeof(a->canonical));
	return hops;
}

/* A name in RDATA (MX exchange, PTR target) that must end where the RDATA ends. */
static enum wire_name_kind
wire_rdata_name(const struct wire *w, size_t off, size_t end, char out[RESOLVER_NAME_SIZE])
{
	enum wire_name_kind k = wire_name(w, &off, out);

	return k != WIRE_NAME_BAD && off != end ? WIRE_NAME_BAD : k;
}

/* TXT RDATA: one or more <character-string>s (RFC 1035 section 3.3.14). */
static int
wire_txt(const struct wire *w, const struct wire_rr *rr, struct resolver_txt *txt)
{
	size_t off = rr->rdata, end = rr->rdata + rr->rdlen, len = 0;
	unsigned c;

	txt->data = resolver_alloc((size_t)rr->rdlen + 1);
	while (off < end) {
		c = w->msg[off++];
		if (off + c > end)
			return -1;
		memcpy(txt->data + len, w->msg + off, c);
		len += c;
		off += c;
	}
	txt->len = len;
	txt->data[len] = '\0';
	return 0;
}

/* TLSA RDATA: usage, selector, matching type, then the data (RFC 6698
 * section 2.1). */
static void
wire_tlsa(const struct wire *w, const struct wire_rr *rr, struct resolver_tlsa *t)
{
	const unsigned char *p = w->msg + rr->rdata;

	memset(t, 0, sizeof(*t));
	if (rr->rdlen < 3) {
		t->len = rr->rdlen;	/* for the caller's warning */
		return;
	}
	t->len_ok = true;
	t->usage = p[0];
	t->selector = p[1];
	t->mtype = p[2];
	t->len = (size_t)rr->rdlen - 3;
	t->data = resolver_alloc(t->len + 1);
	memcpy(t->data, p + 3, t->len);
}

/*
 * Parse one record of the asked type. Returns 1 when kept, 0 when
 * skipped (a bad name in the data, warned about), -1 when malformed.
 */
static int
wire_record(const struct wire *w, const struct wire_rr *rr, struct resolver_answer *a)
{
	char name[RESOLVER_NAME_SIZE];
	enum wire_name_kind k;
	size_t end = rr->rdata + rr->rdlen;
	bool full = a->n >= RESOLVER_RR_MAX;

	switch (a->qtype) {
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		if (rr->rdlen != (a->qtype == DNS_TYPE_A ? 4 : 16))
			return -1;
		if (full)
			return 1;
		a->addr = resolver_answer_grow(a, a->addr, sizeof(*a->addr));
		a->addr[a->n].family = a->qtype == DNS_TYPE_A ? AF_INET : AF_INET6;
		memcpy(a->addr[a->n++].addr, w->msg + rr->rdata, rr->rdlen);
		return 1;
	case DNS_TYPE_MX:
		if (rr->rdlen < 3)
			return -1;
		k = wire_rdata_name(w, rr->rdata + 2, end, name);
		break;
	case DNS_TYPE_PTR:
	case DNS_TYPE_NS:
		k = wire_rdata_name(w, rr->rdata, end, name);
		if (k == WIRE_NAME_ROOT)
			k = WIRE_NAME_OTHER;
		break;
	case DNS_TYPE_TLSA:
		/* Kept as received, whatever it holds: which records are
		 * usable (RFC 7672 section 3.1.3) is the caller's judgement,
		 * and a short one must not make the whole RRset fail. */
		if (full)
			return 1;
		a->tlsa = resolver_answer_grow(a, a->tlsa, sizeof(*a->tlsa));
		wire_tlsa(w, rr, &a->tlsa[a->n++]);
		return 1;
	case DNS_TYPE_TXT:
		if (full)
			return 1;
		a->txt = resolver_answer_grow(a, a->txt, sizeof(*a->txt));
		if (wire_txt(w, rr, &a->txt[a->n]) < 0) {
			free(a->txt[a->n].data);
			a->txt[a->n].data = NULL;
			return -1;
		}
		a->n++;
		return 1;
	default:
		panic("resolver: no parser for type %u", a->qtype);
	}
	if (k == WIRE_NAME_BAD)
		return -1;
	if (k == WIRE_NAME_OTHER) {
		/* Postfix's wording, so existing log watchers match. */
		log_warning("malformed domain name in resource data of %s record for %s: %s",
		    resolver_type_name(a->qtype), a->name, name);
		return 0;
	}
	if (full)
		return 1;
	if (a->qtype == DNS_TYPE_MX) {
		a->mx = resolver_answer_grow(a, a->mx, sizeof(*a->mx));
		a->mx[a->n].preference = wire_u16(w->msg + rr->rdata);
		snprintf(a->mx[a->n++].exchange, RESOLVER_NAME_SIZE, "%s", k == WIRE_NAME_ROOT ? "." : name);
	} else {
		a->ptr = resolver_answer_grow(a, a->ptr, sizeof(*a->ptr));
		memcpy(a->ptr[a->n++].name, name, RESOLVER_NAME_SIZE);
	}
	return 1;
}

/* The records of the asked type owned by a->canonical; -1 when malformed. */
static int
wire_collect(const struct wire *w, struct resolver_answer *a, uint32_t *ttl, unsigned *skipped)
{
	size_t i;
	int kept;

	for (i = 0; i < w->nrr; i++) {
		if (w->rr[i].type != a->qtype || !wire_owner_is(w, w->rr[i].owner, a->canonical))
			continue;
		kept = wire_record(w, &w->rr[i], a);
		if (kept < 0)
			return -1;
		if (kept == 0) {
			(*skipped)++;
			continue;
		}
		if (w->rr[i].ttl < *ttl)
			*ttl = w->rr[i].ttl;
	}
	return 0;
}

/* NXDOMAIN or NODATA, cached per the SOA when there is one. */
static void
resolver_answer_negative(const struct wire *w, struct resolver_answer *a, uint32_t chain_ttl)
{
	int64_t neg = wire_negative_ttl(w, a->canonical);

	if (neg == -2) {
		resolver_answer_malformed(a, "malformed authority section");
		return;
	}
	if (w->rcode == DNS_RCODE_NXDOMAIN)
		resolver_answer_fail(a, RESOLVER_NXDOMAIN, "Host not found", "NXDOMAIN");
	else
		resolver_answer_fail(a, RESOLVER_NODATA,
		    "Host found but no data record of requested type", "NODATA");
	if (neg >= 0) {
		if ((uint32_t)neg > chain_ttl)
			neg = chain_ttl;
		a->ttl = neg > RESOLVER_NEGATIVE_TTL_MAX_S ? RESOLVER_NEGATIVE_TTL_MAX_S : (uint32_t)neg;
		a->cacheable = a->ttl > 0;
	}
}

static const char *
resolver_rcode_name(unsigned rcode)
{
	static const char *names[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED" };

	return rcode < sizeof(names) / sizeof(names[0]) ? names[rcode] : "unknown rcode";
}

/* Turn a reply into a->status and records. */
static void
resolver_parse(struct resolver_answer *a, const unsigned char *msg, size_t len)
{
	struct wire w = { .msg = msg, .len = len };
	uint32_t ttl = DNS_TTL_MAX;
	unsigned skipped = 0;
	const char *why;
	int hops;

	if (wire_index(&w, a->qtype, &why) < 0) {
		resolver_answer_malformed(a, why);
		goto out;
	}
	/* RFC 4035 section 3.2.3: AD covers the answer and authority
	 * sections, a positive answer or a denial. */
	a->secure = w.ad;
	if (w.rcode != DNS_RCODE_NOERROR && w.rcode != DNS_RCODE_NXDOMAIN) {
		resolver_answer_fail(a, RESOLVER_TEMPFAIL, "Host not found, try again",
		    resolver_rcode_name(w.rcode));
		goto out;
	}
	if ((hops = wire_follow_cnames(&w, a, &ttl)) < 0)
		goto out;
	/* RFC 6604: with CNAMEs the rcode is about the last name. */
	if (w.rcode == DNS_RCODE_NXDOMAIN) {
		resolver_answer_negative(&w, a, ttl);
		goto out;
	}
	if (wire_collect(&w, a, &ttl, &skipped) < 0) {
		resolver_answer_malformed(a, "malformed record data");
		goto out;
	}
	if (a->n > 0) {
		a->status = RESOLVER_OK;
		a->ttl = ttl > RESOLVER_TTL_MAX_S ? RESOLVER_TTL_MAX_S : ttl;
		a->cacheable = a->ttl > 0;
	} else if (skipped > 0) {
		resolver_answer_malformed(a, "only malformed names in the answer");
	} else if (hops == 0 && w.ancount > 0) {
		/* Records, but none for this name and type and no CNAME to
		 * follow: a server we must not believe (c-ares 1.18's MX and
		 * TXT parsers would take such records). */
		resolver_answer_malformed(a, "answer for another name or type");
	} else {
		resolver_answer_negative(&w, a, ttl);
	}
out:
	free(w.rr);
}

/* A lookup that ended without a reply to read. */
static void
resolver_answer_from_status(struct resolver_answer *a, int status)
{
	switch (status) {
	case ARES_ENOTFOUND:
		resolver_answer_fail(a, RESOLVER_NXDOMAIN, "Host not found", "NXDOMAIN");
		break;
	case ARES_ENODATA:
		resolver_answer_fail(a, RESOLVER_NODATA,
		    "Host found but no data record of requested type", "NODATA");
		break;
	case ARES_ETIMEOUT:
		resolver_answer_fail(a, RESOLVER_TEMPFAIL, "Host not found, try again", "timeout");
		break;
	case ARES_ECONNREFUSED:
		/* c-ares 1.18 also ends this way when every server answered
		 * SERVFAIL, REFUSED or NOTIMP: it drops those replies to try
		 * the next server and keeps its first error code. */
		resolver_answer_fail(a, RESOLVER_TEMPFAIL, "Host not found, try again",
		    "no usable reply (connection refused, SERVFAIL, REFUSED or NOTIMP)");
		break;
	case ARES_ESERVFAIL:
	case ARES_EREFUSED:
	case ARES_ENOTIMP:
	case ARES_EFORMERR:
		/* Later c-ares versions report the rcode. */
		resolver_answer_fail(a, RESOLVER_TEMPFAIL, "Host not found, try again",
		    status == ARES_ESERVFAIL ? "SERVFAIL" : status == ARES_EREFUSED ? "REFUSED" :
		    status == ARES_ENOTIMP ? "NOTIMP" : "FORMERR");
		break;
	case ARES_ENOMEM:
		fatal("out of memory (c-ares)");
	default:
		resolver_answer_fail(a, RESOLVER_TEMPFAIL, "Host not found, try again",
		    ares_strerror(status));
		break;
	}
}

/* ---- the cache ---- */

static uint32_t
resolver_hash(uint16_t qtype, const char *name)
{
	uint32_t h = 2166136261u ^ qtype;	/* FNV-1a */

	while (*name)
		h = (h ^ (unsigned char)*name++) * 16777619u;
	return h;
}

static void
resolver_cache_remove(struct resolver *r, struct resolver_cache_entry *e)
{
	struct resolver_cache_entry **pp = &r->buckets[e->hash & (r->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	list_del(&e->age);
	resolver_answer_unref(e->answer);
	free(e);
	r->cache_n--;
}

static struct resolver_cache_entry *
resolver_cache_find(struct resolver *r, uint16_t qtype, const char *name)
{
	struct resolver_cache_entry *e;
	uint32_t h = resolver_hash(qtype, name);

	for (e = r->buckets[h & (r->nbuckets - 1)]; e != NULL; e = e->hnext)
		if (e->hash == h && e->answer->qtype == qtype && strcmp(e->answer->name, name) == 0)
			return e;
	return NULL;
}

/* A live entry's answer (a new reference) and its TTL left, or NULL. */
static struct resolver_answer *
resolver_cache_get(struct resolver *r, uint16_t qtype, const char *name, uint32_t *ttl)
{
	struct resolver_cache_entry *e;
	int64_t now = evloop_now(r->loop);

	if (r->cache_max == 0 || (e = resolver_cache_find(r, qtype, name)) == NULL)
		return NULL;
	if (e->expires <= now) {
		resolver_cache_remove(r, e);
		return NULL;
	}
	*ttl = (uint32_t)((e->expires - now + 999) / 1000);
	e->answer->refs++;
	return e->answer;
}

static void
resolver_cache_put(struct resolver *r, struct resolver_answer *a)
{
	struct resolver_cache_entry *e;

	if (r->cache_max == 0 || !a->cacheable)
		return;
	/* One lookup per key is in flight, so an entry here is an expired
	 * one nobody asked for since. */
	if ((e = resolver_cache_find(r, a->qtype, a->name)) != NULL)
		resolver_cache_remove(r, e);
	if (r->cache_n == r->cache_max)
		resolver_cache_remove(r, LIST_ITEM(r->cache_age.next, struct resolver_cache_entry, age));
	e = resolver_alloc(sizeof(*e));
	e->hash = resolver_hash(a->qtype, a->name);
	e->expires = evloop_now(r->loop) + (int64_t)a->ttl * 1000;
	e->answer = a;
	a->refs++;
	e->hnext = r->buckets[e->hash & (r->nbuckets - 1)];
	r->buckets[e->hash & (r->nbuckets - 1)] = e;
	list_add_tail(&r->cache_age, &e->age);
	r->cache_n++;
}

/* ---- c-ares on the event loop ---- */

static void
resolver_timer_update(struct resolver *r)
{
	struct timeval tv, *tvp = ares_timeout(r->channel, NULL, &tv);

	if (tvp == NULL) {
		evloop_timer_stop(r->loop, &r->ares_timer);
		return;
	}
	/* Round up, plus one: c-ares compares microseconds, and a timer that
	 * fires early finds nothing to do and fires again at once. */
	evloop_timer_start(r->loop, &r->ares_timer,
	    (int64_t)tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000 + 1);
}

static void
resolver_ares_timeout(struct ev_timer *t)
{
	struct resolver *r = t->arg;

	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	resolver_timer_update(r);
}

static void
resolver_sock_io(struct ev_io *io, unsigned revents)
{
	struct resolver_sock *s = io->arg;
	struct resolver *r = s->r;
	int fd = s->fd;

	/* s may be freed inside (the socket state callback closes it). */
	ares_process_fd(r->channel, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	resolver_timer_update(r);
}

/* ARES_OPT_SOCK_STATE_CB: c-ares opened, changed or is closing a socket. */
static void
resolver_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	struct resolver_sock *s, **pp;
	unsigned events = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

	for (pp = &r->socks; *pp != NULL && (*pp)->fd != fd; pp = &(*pp)->next)
		;
	s = *pp;
	if (events == 0) {
		if (s != NULL) {
			evloop_io_del(r->loop, &s->io);
			*pp = s->next;
			free(s);
		}
		return;
	}
	if (s != NULL) {
		if (evloop_io_set(r->loop, &s->io, events) == 0)
			return;
		evloop_io_del(r->loop, &s->io);	/* a stale registration: start afresh */
	} else {
		s = resolver_alloc(sizeof(*s));
		s->r = r;
		s->fd = fd;
		s->next = r->socks;
		r->socks = s;
	}
	if (evloop_io_add(r->loop, &s->io, fd, events, resolver_sock_io, s) < 0)
		fatal("resolver: cannot watch a DNS socket: %m");
}

/* ---- queries, parts, lookups ---- */

static void
resolver_query_free(struct resolver_query *q)
{
	unsigned i;

	for (i = 0; i < q->nparts; i++) {
		if (q->part[i].lookup != NULL)
			list_del(&q->part[i].wait_link);
		resolver_answer_unref(q->part[i].answer);
	}
	if (q->ready)
		list_del(&q->ready_link);
	list_del(&q->link);
	free(q);
}

static void
resolver_part_done(struct resolver_part *p)
{
	struct resolver_query *q = p->q;
	struct resolver *r = q->r;

	if (--q->pending > 0)
		return;
	q->ready = true;
	list_add_tail(&r->ready, &q->ready_link);
	if (!evloop_timer_active(&r->ready_timer))
		evloop_timer_start(r->loop, &r->ready_timer, 0);
}

/* c-ares' callback for one lookup: parse, cache, hand to the waiters. */
static void
resolver_lookup_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct resolver_lookup *lk = arg;
	struct resolver *r = lk->r;
	struct resolver_answer *a;
	struct resolver_part *p;

	/* ARES_EDESTRUCTION comes from resolver_free(), which has freed
	 * every waiter already; it ends here like any other failure. */
	(void)timeouts;
	a = resolver_answer_new(lk->qtype, lk->name);
	if (abuf != NULL && alen > 0)
		resolver_parse(a, abuf, (size_t)alen);
	else
		resolver_answer_from_status(a, status);
	/* The AD bit means something only when we asked for it. */
	if (!lk->dnssec)
		a->secure = false;
	resolver_cache_put(r, a);
	while (!list_empty(&lk->waiters)) {
		p = LIST_ITEM(lk->waiters.next, struct resolver_part, wait_link);
		list_del(&p->wait_link);
		p->lookup = NULL;
		p->answer = a;
		p->ttl = a->ttl;
		a->refs++;
		resolver_part_done(p);
	}
	resolver_answer_unref(a);
	list_del(&lk->link);
	free(lk);
}

size_t
resolver_query_wire(const char *name, uint16_t qtype, uint16_t id, unsigned char *out,
    size_t outsz)
{
	size_t o = 0, len = strlen(name), start = 0, i;

	if (outsz < DNS_QUERY_MAX || len > RESOLVER_NAME_MAX)
		return 0;
	/* Header: id, RD and AD set (RFC 6840 section 5.7: AD in a query
	 * asks for AD in the reply), one question, one additional (OPT). */
	out[o++] = (unsigned char)(id >> 8);
	out[o++] = (unsigned char)id;
	out[o++] = (unsigned char)((DNS_FLAG_RD | DNS_FLAG_AD) >> 8);
	out[o++] = (unsigned char)(DNS_FLAG_RD | DNS_FLAG_AD);
	memcpy(out + o, "\0\1\0\0\0\0\0\1", 8);
	o += 8;
	for (i = 0; i <= len; i++) {
		if (i < len && name[i] != '.')
			continue;
		if (i == start || i - start > RESOLVER_LABEL_MAX)
			return 0;	/* empty or long label: not a name we send */
		out[o++] = (unsigned char)(i - start);
		memcpy(out + o, name + start, i - start);
		o += i - start;
		start = i + 1;
	}
	out[o++] = 0;
	out[o++] = (unsigned char)(qtype >> 8);
	out[o++] = (unsigned char)qtype;
	out[o++] = 0;
	out[o++] = DNS_CLASS_IN;
	/* OPT: root owner, type 41, class = our UDP payload size, TTL =
	 * extended rcode 0, version 0, flags DO; no options. */
	out[o++] = 0;
	out[o++] = 0;
	out[o++] = DNS_TYPE_OPT;
	out[o++] = (unsigned char)(DNS_EDNS_UDP_SIZE >> 8);
	out[o++] = (unsigned char)(DNS_EDNS_UDP_SIZE & 0xff);
	out[o++] = 0;
	out[o++] = 0;
	out[o++] = (unsigned char)(DNS_EDNS_FLAG_DO >> 8);
	out[o++] = 0;
	out[o++] = 0;
	out[o++] = 0;
	return o;
}

/*
 * A DNSSEC query: our own bytes through ares_send(), because c-ares 1.18
 * can add an OPT record (ARES_FLAG_EDNS) but without the DO bit, and then
 * turns EDNS off for the whole channel on the first SERVFAIL (the file
 * comment of resolver.h; doc/resolver.md). Without ARES_FLAG_EDNS c-ares
 * leaves our OPT record alone. c-ares takes the query id from the bytes.
 */
static void
resolver_send_dnssec(struct resolver *r, struct resolver_lookup *lk)
{
	unsigned char q[DNS_QUERY_MAX];
	size_t n = resolver_query_wire(lk->name, lk->qtype, (uint16_t)arc4random_uniform(65536), q,
	    sizeof(q));

	if (n == 0)
		panic("resolver: a normalised name %s does not encode", lk->name);
	ares_send(r->channel, q, (int)n, resolver_lookup_done, lk);
}

static void
resolver_part_start(struct resolver_part *p)
{
	struct resolver_query *q = p->q;
	struct resolver *r = q->r;
	struct resolver_lookup *lk = NULL;
	struct resolver_link *l;

	p->answer = resolver_cache_get(r, p->qtype, q->name, &p->ttl);
	if (p->answer != NULL) {
		p->from_cache = true;
		resolver_part_done(p);
		return;
	}
	/* In-flight lookups are few (bounded by delivery concurrency). */
	for (l = r->lookups.next; l != &r->lookups; l = l->next) {
		lk = LIST_ITEM(l, struct resolver_lookup, link);
		if (lk->qtype == p->qtype && strcmp(lk->name, q->name) == 0)
			break;
		lk = NULL;
	}
	if (lk != NULL) {
		p->lookup = lk;
		list_add_tail(&lk->waiters, &p->wait_link);
		return;
	}
	lk = resolver_alloc(sizeof(*lk));
	lk->r = r;
	lk->qtype = p->qtype;
	memcpy(lk->name, q->name, sizeof(lk->name));
	list_init(&lk->waiters);
	list_add_tail(&r->lookups, &lk->link);
	p->lookup = lk;
	list_add_tail(&lk->waiters, &p->wait_link);
	lk->dnssec = r->dnssec;
	/* May call resolver_lookup_done() before returning (no server
	 * reachable): everything is linked up, and lk is not touched after. */
	if (r->dnssec)
		resolver_send_dnssec(r, lk);
	else
		ares_query(r->channel, q->name, DNS_CLASS_IN, p->qtype, resolver_lookup_done, lk);
	resolver_timer_update(r);
}

static struct resolver_query *
resolver_query_new(struct resolver *r, resolver_cb *cb, void *arg)
{
	struct resolver_query *q = resolver_alloc(sizeof(*q));

	q->r = r;
	q->cb = cb;
	q->arg = arg;
	list_init(&q->ready_link);
	list_add_tail(&r->queries, &q->link);
	return q;
}

/* A name we will not send: answered BADNAME, through the ready timer. */
static struct resolver_query *
resolver_query_badname(struct resolver_query *q, const char *name, uint16_t qtype)
{
	char shown[RESOLVER_BADNAME_SHOW + 1];
	struct resolver_answer *a = resolver_answer_new(qtype, q->name);

	log_printable(shown, sizeof(shown), name, strnlen(name, RESOLVER_BADNAME_SHOW));
	a->status = RESOLVER_BADNAME;
	snprintf(a->text, sizeof(a->text), "Name service error for %s: invalid host or domain name",
	    shown);
	snprintf(a->detail, sizeof(a->detail), "malformed name");
	q->nparts = q->pending = 1;
	q->part[0].q = q;
	q->part[0].qtype = qtype;
	q->part[0].answer = a;
	resolver_part_done(&q->part[0]);
	return q;
}

static struct resolver_query *
resolver_query_start(struct resolver *r, const char *name, const uint16_t *types, unsigned ntypes,
    resolver_cb *cb, void *arg)
{
	struct resolver_query *q = resolver_query_new(r, cb, arg);
	unsigned i;

	if (resolver_name_normalize(name, q->name) < 0)
		return resolver_query_badname(q, name, types[0]);
	/* pending counts every part before the first starts: a part may be
	 * done at once (cache hit, or c-ares failing synchronously). */
	q->nparts = q->pending = ntypes;
	for (i = 0; i < ntypes; i++) {
		q->part[i].q = q;
		q->part[i].qtype = types[i];
		list_init(&q->part[i].wait_link);
	}
	for (i = 0; i < ntypes; i++)
		resolver_part_start(&q->part[i]);
	return q;
}

struct resolver_query *
resolver_mx(struct resolver *r, const char *domain, resolver_cb *cb, void *arg)
{
	static const uint16_t types[] = { DNS_TYPE_MX };

	return resolver_query_start(r, domain, types, 1, cb, arg);
}

struct resolver_query *
resolver_host(struct resolver *r, const char *name, resolver_cb *cb, void *arg)
{
	static const uint16_t all[] = { DNS_TYPE_A, DNS_TYPE_AAAA };
	static const uint16_t v4[] = { DNS_TYPE_A };
	static const uint16_t v6[] = { DNS_TYPE_AAAA };

	switch (r->family) {
	case RESOLVER_FAMILY_IPV4:
		return resolver_query_start(r, name, v4, 1, cb, arg);
	case RESOLVER_FAMILY_IPV6:
		return resolver_query_start(r, name, v6, 1, cb, arg);
	default:
		return resolver_query_start(r, name, all, 2, cb, arg);
	}
}

struct resolver_query *
resolver_host_af(struct resolver *r, const char *name, int af, resolver_cb *cb, void *arg)
{
	static const uint16_t v4[] = { DNS_TYPE_A };
	static const uint16_t v6[] = { DNS_TYPE_AAAA };
	struct resolver_query *q;

	if (af == AF_INET)
		return resolver_query_start(r, name, v4, 1, cb, arg);
	if (af == AF_INET6)
		return resolver_query_start(r, name, v6, 1, cb, arg);
	q = resolver_query_new(r, cb, arg);
	snprintf(q->name, sizeof(q->name), "(address family %d)", af);
	return resolver_query_badname(q, q->name, DNS_TYPE_A);
}

struct resolver_query *
resolver_txt(struct resolver *r, const char *name, resolver_cb *cb, void *arg)
{
	static const uint16_t types[] = { DNS_TYPE_TXT };

	return resolver_query_start(r, name, types, 1, cb, arg);
}

struct resolver_query *
resolver_ns(struct resolver *r, const char *domain, resolver_cb *cb, void *arg)
{
	static const uint16_t types[] = { DNS_TYPE_NS };

	return resolver_query_start(r, domain, types, 1, cb, arg);
}

struct resolver_query *
resolver_tlsa(struct resolver *r, const char *name, resolver_cb *cb, void *arg)
{
	static const uint16_t types[] = { DNS_TYPE_TLSA };

	return resolver_query_start(r, name, types, 1, cb, arg);
}

void
resolver_set_dnssec(struct resolver *r, bool dnssec)
{
	r->dnssec = dnssec;
}

struct resolver_query *
resolver_ptr(struct resolver *r, const struct sockaddr *sa, resolver_cb *cb, void *arg)
{
	static const uint16_t types[] = { DNS_TYPE_PTR };
	char arpa[RESOLVER_ARPA_SIZE];

	if (resolver_arpa_name(sa, arpa, sizeof(arpa)) < 0) {
		struct resolver_query *q = resolver_query_new(r, cb, arg);

		snprintf(q->name, sizeof(q->name), "(address family %d)", sa->sa_family);
		return resolver_query_badname(q, q->name, DNS_TYPE_PTR);
	}
	return resolver_query_start(r, arpa, types, 1, cb, arg);
}

void
resolver_cancel(struct resolver_query *q)
{
	if (q == NULL || q->in_callback)
		return;
	resolver_query_free(q);
}

/* ---- delivery of results ---- */

/* The answer a query reports: its only part, or the better of A and AAAA. */
static const struct resolver_part *
resolver_query_main_part(const struct resolver_query *q)
{
	static const int rank[] = {
		[RESOLVER_OK] = 4, [RESOLVER_TEMPFAIL] = 3, [RESOLVER_NODATA] = 2,
		[RESOLVER_NXDOMAIN] = 1, [RESOLVER_BADNAME] = 0,
	};
	const struct resolver_part *a = &q->part[0], *b = &q->part[1];

	if (q->nparts == 1)
		return a;
	/* Equal: the AAAA one, the last asked, as Postfix reports. */
	return rank[a->answer->status] > rank[b->answer->status] ? a : b;
}

static void
resolver_deliver(struct resolver_query *q)
{
	const struct resolver_part *best = resolver_query_main_part(q);
	const struct resolver_answer *a = best->answer;
	struct resolver_result res = {
		.status = a->status, .name = q->name, .type = resolver_type_name(a->qtype),
		.canonical = a->canonical, .text = a->text, .detail = a->detail,
		.ttl = best->ttl, .cached = best->from_cache,
	};
	struct resolver_addr *merged = NULL;
	const struct resolver_answer *v6, *v4;
	struct resolver *r = q->r;

	if (a->status == RESOLVER_OK) {
		res.n_mx = a->mx ? a->n : 0;
		res.mx = res.n_mx ? a->mx : NULL;
		res.n_txt = a->txt ? a->n : 0;
		res.txt = res.n_txt ? a->txt : NULL;
		/* PTR and NS targets share the answer's name array. */
		if (a->qtype == DNS_TYPE_NS) {
			res.n_ns = a->ptr ? a->n : 0;
			res.ns = res.n_ns ? a->ptr : NULL;
		} else {
			res.n_ptr = a->ptr ? a->n : 0;
			res.ptr = res.n_ptr ? a->ptr : NULL;
		}
		res.n_addr = a->addr ? a->n : 0;
		res.addr = res.n_addr ? a->addr : NULL;
		res.n_tlsa = a->tlsa ? a->n : 0;
		res.tlsa = res.n_tlsa ? a->tlsa : NULL;
	}
	res.secure = a->secure;
	if (q->nparts == 2 && q->part[0].answer->status == RESOLVER_OK &&
	    q->part[1].answer->status == RESOLVER_OK) {
		v4 = q->part[0].answer;
		v6 = q->part[1].answer;
		merged = resolver_alloc((v4->n + v6->n) * sizeof(*merged));
		memcpy(merged, v6->addr, v6->n * sizeof(*merged));
		memcpy(merged + v6->n, v4->addr, v4->n * sizeof(*merged));
		res.addr = merged;
		res.n_addr = v4->n + v6->n;
		res.cached = q->part[0].from_cache && q->part[1].from_cache;
		res.ttl = q->part[0].ttl < q->part[1].ttl ? q->part[0].ttl : q->part[1].ttl;
		res.secure = v4->secure && v6->secure;
	}
	q->in_callback = true;
	r->callback_depth++;
	q->cb(&res, q->arg);
	r->callback_depth--;
	free(merged);
	resolver_query_free(q);
}

/*
 * Deliver what is ready now, oldest first. Queries made ready by these
 * callbacks wait for the next turn of the loop, so a callback that asks
 * for a cached answer again and again cannot starve the descriptors.
 */
static void
resolver_ready_run(struct ev_timer *t)
{
	struct resolver *r = t->arg;
	struct resolver_link batch;
	struct resolver_query *q;

	list_splice(&r->ready, &batch);
	while (!list_empty(&batch)) {
		q = LIST_ITEM(batch.next, struct resolver_query, ready_link);
		list_del(&q->ready_link);
		q->ready = false;
		resolver_deliver(q);
	}
}

/* ---- options ---- */

void
resolver_options_init(struct resolver_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->timeout_ms = RESOLVER_TIMEOUT_MS_DEFAULT;
	opt->tries = RESOLVER_TRIES_DEFAULT;
	opt->family = RESOLVER_FAMILY_ALL;
	opt->cache_max = RESOLVER_CACHE_DEFAULT;
}

void
resolver_options_from_config(struct resolver_options *opt, const struct config *cfg)
{
	const struct config_list *servers = config_list(cfg, P_DNS_SERVERS);

	resolver_options_init(opt);
	opt->servers = (const char *const *)servers->items;
	opt->n_servers = servers->n;
	if (resolver_family_parse(config_str(cfg, P_INET_PROTOCOLS), &opt->family) < 0)
		opt->family = RESOLVER_FAMILY_ALL;	/* the table's choices allow no other */
}

int
resolver_family_parse(const char *word, enum resolver_family *family)
{
	if (strcmp(word, "all") == 0)
		*family = RESOLVER_FAMILY_ALL;
	else if (strcmp(word, "ipv4") == 0)
		*family = RESOLVER_FAMILY_IPV4;
	else if (strcmp(word, "ipv6") == 0)
		*family = RESOLVER_FAMILY_IPV6;
	else
		return -1;
	return 0;
}

struct resolver_server {
	int family;
	unsigned char addr[16];
	unsigned port;
};

/* "1..65535", digits only. */
static int
resolver_port_parse(const char *s, unsigned *port)
{
	unsigned long v = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || v < 1 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

static int
resolver_server_error(const char *entry, const char *why, char *err, size_t errsz)
{
	char shown[RESOLVER_BADNAME_SHOW + 1];

	log_printable(shown, sizeof(shown), entry, strnlen(entry, RESOLVER_BADNAME_SHOW));
	snprintf(err, errsz, "dns_servers: \"%s\": %s", shown, why);
	return -1;
}

/* One dns_servers entry: ip, ip:port, [ipv6], [ipv6]:port, or a bare ipv6. */
static int
resolver_server_parse(const char *s, struct resolver_server *sv, char *err, size_t errsz)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *close, *port = NULL;
	size_t hlen;

	sv->port = 53;
	if (s[0] == '[') {
		if ((close = strchr(s, ']')) == NULL)
			return resolver_server_error(s, "missing ']'", err, errsz);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return resolver_server_error(s, "expected ':port' after ']'", err, errsz);
		hlen = (size_t)(close - s - 1);
		sv->family = AF_INET6;
		if (hlen >= sizeof(host))
			return resolver_server_error(s, "not an IPv6 address", err, errsz);
		memcpy(host, s + 1, hlen);
	} else if ((colon = strchr(s, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		port = colon + 1;
		hlen = (size_t)(colon - s);
		sv->family = AF_INET;
		if (hlen >= sizeof(host))
			return resolver_server_error(s, "not an IPv4 address", err, errsz);
		memcpy(host, s, hlen);
	} else {
		hlen = strlen(s);
		sv->family = colon != NULL ? AF_INET6 : AF_INET;
		if (hlen >= sizeof(host))
			return resolver_server_error(s, "not an IP address", err, errsz);
		memcpy(host, s, hlen);
	}
	host[hlen] = '\0';
	if (inet_pton(sv->family, host, sv->addr) != 1)
		return resolver_server_error(s, sv->family == AF_INET6 ?
		    "not an IPv6 address (write one with a port as [address]:port)" :
		    "not an IPv4 address", err, errsz);
	if (port != NULL && resolver_port_parse(port, &sv->port) < 0)
		return resolver_server_error(s, "port must be 1..65535", err, errsz);
	return 0;
}

int
resolver_servers_check(const char *const *servers, size_t n, char *err, size_t errsz)
{
	struct resolver_server sv;
	size_t i;

	if (n > RESOLVER_SERVERS_MAX) {
		snprintf(err, errsz, "dns_servers: %zu entries, at most %d", n, RESOLVER_SERVERS_MAX);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (resolver_server_parse(servers[i], &sv, err, errsz) < 0)
			return -1;
	return 0;
}

static int
resolver_options_check(const struct resolver_options *opt, char *err, size_t errsz)
{
	if (opt->timeout_ms < RESOLVER_TIMEOUT_MS_MIN || opt->timeout_ms > RESOLVER_TIMEOUT_MS_MAX) {
		snprintf(err, errsz, "resolver: timeout %u ms, must be %d..%d", opt->timeout_ms,
		    RESOLVER_TIMEOUT_MS_MIN, RESOLVER_TIMEOUT_MS_MAX);
		return -1;
	}
	if (opt->tries < 1 || opt->tries > RESOLVER_TRIES_MAX) {
		snprintf(err, errsz, "resolver: %u tries, must be 1..%d", opt->tries, RESOLVER_TRIES_MAX);
		return -1;
	}
	if (opt->cache_max > RESOLVER_CACHE_MAX) {
		snprintf(err, errsz, "resolver: cache of %zu entries, at most %d", opt->cache_max,
		    RESOLVER_CACHE_MAX);
		return -1;
	}
	if (opt->family != RESOLVER_FAMILY_ALL && opt->family != RESOLVER_FAMILY_IPV4 &&
	    opt->family != RESOLVER_FAMILY_IPV6) {
		snprintf(err, errsz, "resolver: bad address family choice %d", (int)opt->family);
		return -1;
	}
	return resolver_servers_check(opt->servers, opt->n_servers, err, errsz);
}

/* ---- life cycle ---- */

static int
resolver_set_servers(struct resolver *r, const struct resolver_options *opt, char *err, size_t errsz)
{
	struct ares_addr_port_node nodes[RESOLVER_SERVERS_MAX];
	struct resolver_server sv;
	size_t i;
	int rc;

	if (opt->n_servers == 0)
		return 0;
	memset(nodes, 0, sizeof(nodes));
	for (i = 0; i < opt->n_servers; i++) {
		if (resolver_server_parse(opt->servers[i], &sv, err, errsz) < 0)
			return -1;
		nodes[i].next = i + 1 < opt->n_servers ? &nodes[i + 1] : NULL;
		nodes[i].family = sv.family;
		memcpy(&nodes[i].addr, sv.addr, sv.family == AF_INET6 ? 16 : 4);
		nodes[i].udp_port = nodes[i].tcp_port = (int)sv.port;
	}
	if ((rc = ares_set_servers_ports(r->channel, nodes)) != ARES_SUCCESS) {
		snprintf(err, errsz, "resolver: cannot set dns_servers: %s", ares_strerror(rc));
		return -1;
	}
	return 0;
}

static void
resolver_cache_init(struct resolver *r, size_t max)
{
	r->cache_max = max;
	list_init(&r->cache_age);
	if (max == 0)
		return;
	/* About one entry per bucket when full. */
	for (r->nbuckets = 16; r->nbuckets < max; r->nbuckets *= 2)
		;
	r->buckets = resolver_alloc(r->nbuckets * sizeof(*r->buckets));
}

struct resolver *
resolver_new(struct evloop *loop, const struct resolver_options *opt, char *err, size_t errsz)
{
	struct ares_options ao;
	struct resolver *r;
	int rc;

	if (resolver_options_check(opt, err, errsz) < 0)
		return NULL;
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errsz, "resolver: c-ares: %s", ares_strerror(rc));
		return NULL;
	}
	r = resolver_alloc(sizeof(*r));
	r->loop = loop;
	r->family = opt->family;
	r->dnssec = opt->dnssec;
	list_init(&r->queries);
	list_init(&r->ready);
	list_init(&r->lookups);
	evloop_timer_init(&r->ares_timer, resolver_ares_timeout, r);
	evloop_timer_init(&r->ready_timer, resolver_ready_run, r);
	resolver_cache_init(r, opt->cache_max);

	/* No EDNS: c-ares 1.18 turns it off for the whole channel on the
	 * first SERVFAIL; large answers come over TCP after TC instead. */
	memset(&ao, 0, sizeof(ao));
	ao.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	ao.timeout = (int)opt->timeout_ms;
	ao.tries = (int)opt->tries;
	ao.sock_state_cb = resolver_sock_state;
	ao.sock_state_cb_data = r;
	rc = ares_init_options(&r->channel, &ao, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
	    ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errsz, "resolver: c-ares: %s", ares_strerror(rc));
		free(r->buckets);
		free(r);
		ares_library_cleanup();
		return NULL;
	}
	if (resolver_set_servers(r, opt, err, errsz) < 0) {
		resolver_free(r);
		return NULL;
	}
	return r;
}

void
resolver_free(struct resolver *r)
{
	struct resolver_sock *s;
	size_t i;

	if (r == NULL)
		return;
	if (r->callback_depth > 0)
		panic("resolver_free from inside a resolver callback");
	while (!list_empty(&r->queries))
		resolver_query_free(LIST_ITEM(r->queries.next, struct resolver_query, link));
	/* Ends every lookup (ARES_EDESTRUCTION) and closes its sockets
	 * through resolver_sock_state(). */
	ares_destroy(r->channel);
	while ((s = r->socks) != NULL) {
		r->socks = s->next;
		evloop_io_del(r->loop, &s->io);
		free(s);
	}
	evloop_timer_stop(r->loop, &r->ares_timer);
	evloop_timer_stop(r->loop, &r->ready_timer);
	for (i = 0; i < r->nbuckets; i++)
		while (r->buckets[i] != NULL)
			resolver_cache_remove(r, r->buckets[i]);
	free(r->buckets);
	free(r);
	ares_library_cleanup();
}

/* ---- names for callers ---- */

const char *
resolver_status_name(enum resolver_status s)
{
	switch (s) {
	case RESOLVER_OK: return "OK";
	case RESOLVER_NXDOMAIN: return "NXDOMAIN";
	case RESOLVER_NODATA: return "NODATA";
	case RESOLVER_TEMPFAIL: return "TEMPFAIL";
	case RESOLVER_BADNAME: return "BADNAME";
	}
	return "?";
}

const char *
resolver_status_dsn(enum resolver_status s)
{
	switch (s) {
	case RESOLVER_OK: return "";
	case RESOLVER_TEMPFAIL: return "4.4.3";
	case RESOLVER_NXDOMAIN:
	case RESOLVER_NODATA:
	case RESOLVER_BADNAME: return "5.4.4";
	}
	return "4.4.3";
}
