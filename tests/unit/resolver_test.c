/*
 * Unit tests for resolver/resolver.c against a fake DNS server: a
 * non-blocking UDP socket (and a TCP listener on the same port, for
 * truncated replies) on 127.0.0.1, in the same event loop, answering
 * canned replies built by hand below.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/evloop.h"
#include "config/config.h"
#include "resolver/resolver.h"

#define T_A 1
#define T_NS 2
#define T_CNAME 5
#define T_SOA 6
#define T_PTR 12
#define T_MX 15
#define T_TXT 16
#define T_AAAA 28
#define T_OPT 41
#define T_TLSA 52
#define F_AD 0x0020

#define R_NOERROR 0
#define R_SERVFAIL 2
#define R_NXDOMAIN 3
#define R_REFUSED 5

/* ---- building replies ---- */

struct pkt {
	unsigned char b[4096];
	size_t n;
	unsigned an, ns;
};

static void put8(struct pkt *p, unsigned v) { p->b[p->n++] = (unsigned char)v; }
static void put16(struct pkt *p, unsigned v) { put8(p, v >> 8); put8(p, v & 0xff); }
static void put32(struct pkt *p, uint32_t v) { put16(p, v >> 16); put16(p, v & 0xffff); }

static void
putbytes(struct pkt *p, const void *v, size_t n)
{
	memcpy(p->b + p->n, v, n);
	p->n += n;
}

/* A dotted name, uncompressed; "" and "." are the root. */
static void
putname(struct pkt *p, const char *name)
{
	const char *dot;
	size_t len;

	while (*name != '\0' && strcmp(name, ".") != 0) {
		dot = strchr(name, '.');
		len = dot ? (size_t)(dot - name) : strlen(name);
		put8(p, (unsigned)len);
		putbytes(p, name, len);
		name += len + (dot ? 1 : 0);
	}
	put8(p, 0);
}

/* Header (counts patched by finish) and the question echoed. */
static void
start(struct pkt *p, unsigned id, unsigned flags, unsigned rcode, const char *qname, unsigned qtype)
{
	memset(p, 0, sizeof(*p));
	put16(p, id);
	put16(p, 0x8180 | flags | rcode);	/* QR, RD, RA */
	put16(p, 1);
	put16(p, 0);
	put16(p, 0);
	put16(p, 0);
	putname(p, qname);
	put16(p, qtype);
	put16(p, 1);
}

static void
finish(struct pkt *p)
{
	p->b[6] = (unsigned char)(p->an >> 8);
	p->b[7] = (unsigned char)p->an;
	p->b[8] = (unsigned char)(p->ns >> 8);
	p->b[9] = (unsigned char)p->ns;
}

/* Owner, type, class IN, TTL; returns where RDLENGTH goes. */
static size_t
rr(struct pkt *p, const char *owner, unsigned type, uint32_t ttl)
{
	size_t mark;

	putname(p, owner);
	put16(p, type);
	put16(p, 1);
	put32(p, ttl);
	mark = p->n;
	put16(p, 0);
	return mark;
}

static void
rr_end(struct pkt *p, size_t mark)
{
	size_t len = p->n - mark - 2;

	p->b[mark] = (unsigned char)(len >> 8);
	p->b[mark + 1] = (unsigned char)len;
}

static void
add_mx(struct pkt *p, const char *owner, uint32_t ttl, unsigned pref, const char *exchange)
{
	size_t m = rr(p, owner, T_MX, ttl);

	put16(p, pref);
	putname(p, exchange);
	rr_end(p, m);
	p->an++;
}

static void
add_a(struct pkt *p, const char *owner, uint32_t ttl, const char *ip)
{
	unsigned char a[16];
	int v6 = strchr(ip, ':') != NULL;
	size_t m = rr(p, owner, v6 ? T_AAAA : T_A, ttl);

	ck_assert_int_eq(inet_pton(v6 ? AF_INET6 : AF_INET, ip, a), 1);
	putbytes(p, a, v6 ? 16 : 4);
	rr_end(p, m);
	p->an++;
}

static void
add_name_rr(struct pkt *p, const char *owner, unsigned type, uint32_t ttl, const char *target)
{
	size_t m = rr(p, owner, type, ttl);

	putname(p, target);
	rr_end(p, m);
	p->an++;
}

static void
add_soa(struct pkt *p, const char *zone, uint32_t ttl, uint32_t minimum)
{
	size_t m = rr(p, zone, T_SOA, ttl);

	putname(p, "ns.example");
	putname(p, "hostmaster.example");
	put32(p, 1);
	put32(p, 3600);
	put32(p, 600);
	put32(p, 86400);
	put32(p, minimum);
	rr_end(p, m);
	p->ns++;
}

/* ---- the fake server ---- */

struct query_in {
	unsigned id, qtype, flags;
	bool do_bit;		/* an OPT record with DO came after the question */
	char qname[256];
};

struct held {
	struct pkt p;
	struct sockaddr_storage to;
	socklen_t tolen;
};

static struct fake {
	int udp, tcp, conn;
	unsigned port;
	struct ev_io udp_io, tcp_io, conn_io;
	unsigned char cbuf[1024];
	size_t clen;
	int queries, tcp_queries;	/* questions received */
	int seen_a, seen_aaaa;		/* for both.example */
	struct held held[2];
	int nheld;
	unsigned last_flags;		/* of the last question */
	bool last_do;
} fk;

static bool mk_dnssec;		/* make_resolver(): the dnssec option */

static struct evloop *loop;
static struct resolver *res;

static int
parse_query(const unsigned char *b, size_t n, struct query_in *q)
{
	size_t off = 12, o = 0;
	unsigned c;

	if (n < 17)
		return -1;
	q->id = (unsigned)(b[0] << 8 | b[1]);
	q->flags = (unsigned)(b[2] << 8 | b[3]);
	q->do_bit = false;
	while (off < n && (c = b[off++]) != 0) {
		if (off + c > n || o + c + 2 > sizeof(q->qname))
			return -1;
		if (o)
			q->qname[o++] = '.';
		memcpy(q->qname + o, b + off, c);
		o += c;
		off += c;
	}
	q->qname[o] = '\0';
	if (off + 4 > n)
		return -1;
	q->qtype = (unsigned)(b[off] << 8 | b[off + 1]);
	off += 4;
	/* An OPT record: root owner, type 41, class, TTL whose third octet
	 * holds DO (RFC 6891 section 6.1.3). */
	if ((b[10] << 8 | b[11]) == 1 && off + 11 <= n && b[off] == 0 &&
	    (b[off + 1] << 8 | b[off + 2]) == T_OPT)
		q->do_bit = (b[off + 7] & 0x80) != 0;
	fk.last_flags = q->flags;
	fk.last_do = q->do_bit;
	return 0;
}

/*
 * The zone. Returns 0 to send p, -1 to send nothing, 1 to hold the reply
 * (both.example: released when A and AAAA were both asked).
 */
static int
answer(const struct query_in *q, struct pkt *p, int tcp)
{
	const char *n = q->qname;
	unsigned t = q->qtype;
	size_t m;

	start(p, q->id, 0, R_NOERROR, n, t);
	if (strcmp(n, "mx.example") == 0) {
		add_mx(p, n, 600, 20, "MX2.MX.Example.");
		add_mx(p, n, 300, 10, "mx1.mx.example");
	} else if (strcmp(n, "compress.example") == 0) {
		/* "mail" then a pointer to the question name at offset 12. */
		m = rr(p, n, T_MX, 300);
		put16(p, 10);
		put8(p, 4);
		putbytes(p, "mail", 4);
		put16(p, 0xc000 | 12);
		rr_end(p, m);
		p->an++;
	} else if (strcmp(n, "ptrloop.example") == 0) {
		/* The exchange points at itself. */
		m = rr(p, n, T_MX, 300);
		put16(p, 10);
		put16(p, 0xc000 | (unsigned)p->n);
		rr_end(p, m);
		p->an++;
	} else if (strcmp(n, "_25._tcp.tlsa.example") == 0 && t == T_TLSA) {
		/* AD when asked for (RFC 6840 section 5.7), as a validating
		 * resolver answers; a DANE-EE SHA2-256 record, a short one. */
		start(p, q->id, q->flags & F_AD, R_NOERROR, n, t);
		m = rr(p, n, T_TLSA, 300);
		putbytes(p, "\3\1\1", 3);
		putbytes(p, "0123456789abcdef0123456789abcdef", 32);
		rr_end(p, m);
		p->an++;
		m = rr(p, n, T_TLSA, 300);
		putbytes(p, "\3\1", 2);
		rr_end(p, m);
		p->an++;
	} else if (strcmp(n, "_25._tcp.alias.tlsa.example") == 0) {
		start(p, q->id, q->flags & F_AD, R_NOERROR, n, t);
		add_name_rr(p, n, T_CNAME, 100, "_25._tcp.tlsa.example");
		m = rr(p, "_25._tcp.tlsa.example", T_TLSA, 300);
		putbytes(p, "\2\0\2", 3);
		putbytes(p, "x", 1);
		rr_end(p, m);
		p->an++;
	} else if (strcmp(n, "forgedad.example") == 0) {
		/* AD whether asked or not: believed only when we asked. */
		start(p, q->id, F_AD, R_NOERROR, n, t);
		if (t == T_A)
			add_a(p, n, 60, "192.0.2.50");
	} else if (strcmp(n, "host.example") == 0) {
		add_a(p, n, 60, t == T_A ? "192.0.2.1" : "2001:db8::1");
	} else if (strcmp(n, "both.example") == 0) {
		add_a(p, n, 60, t == T_A ? "192.0.2.2" : "2001:db8::2");
		fk.seen_a += t == T_A;
		fk.seen_aaaa += t == T_AAAA;
		finish(p);
		return 1;
	} else if (strncmp(n, "p", 1) == 0 && strstr(n, ".par.example") != NULL) {
		char ip[32];

		snprintf(ip, sizeof(ip), "192.0.2.%d", atoi(n + 1) + 100);
		if (t == T_A)
			add_a(p, n, 300, ip);	/* other types: NODATA */
	} else if (strcmp(n, "alias.example") == 0) {
		add_name_rr(p, n, T_CNAME, 100, "Target.Example.");
		if (t == T_MX)
			add_mx(p, "target.example", 200, 5, "mail.target.example");
		else
			add_a(p, "target.example", 200, t == T_A ? "192.0.2.7" : "2001:db8::7");
	} else if (strcmp(n, "dangling.example") == 0) {
		add_name_rr(p, n, T_CNAME, 100, "nothing.example");
		add_soa(p, "example", 3600, 20);
	} else if (strcmp(n, "loop.example") == 0) {
		add_name_rr(p, n, T_CNAME, 100, "loop2.example");
		add_name_rr(p, "loop2.example", T_CNAME, 100, "loop.example");
	} else if (strcmp(n, "other.example") == 0) {
		add_mx(p, "evil.example", 300, 10, "mx.evil.example");
	} else if (strcmp(n, "nx.example") == 0 || strcmp(n, "nxnosoa.example") == 0) {
		start(p, q->id, 0, R_NXDOMAIN, n, t);
		if (strcmp(n, "nx.example") == 0)
			add_soa(p, "example", 3600, 30);
	} else if (strcmp(n, "x.notld") == 0) {
		start(p, q->id, 0, R_NXDOMAIN, n, t);
		add_soa(p, ".", 86400, 45);		/* the root zone's */
	} else if (strcmp(n, "elsewhere.example") == 0) {
		start(p, q->id, 0, R_NXDOMAIN, n, t);
		add_soa(p, "other.example", 3600, 30);	/* not our zone: not used */
	} else if (strcmp(n, "nodata.example") == 0) {
		add_soa(p, "example", 10, 3600);
	} else if (strcmp(n, "servfail.example") == 0) {
		start(p, q->id, 0, R_SERVFAIL, n, t);
	} else if (strcmp(n, "refused.example") == 0) {
		start(p, q->id, 0, R_REFUSED, n, t);
	} else if (strcmp(n, "drop.example") == 0) {
		return -1;
	} else if (strcmp(n, "garbage.example") == 0) {
		p->an = 2;		/* claims two records, holds none */
	} else if (strcmp(n, "shortrr.example") == 0) {
		m = rr(p, n, T_A, 300);	/* an A record of 3 bytes */
		putbytes(p, "\1\2\3", 3);
		rr_end(p, m);
		p->an++;
	} else if (strcmp(n, "badq.example") == 0) {
		start(p, q->id, 0, R_NOERROR, "other-question.example", t);
		add_a(p, n, 300, "192.0.2.66");
	} else if (strcmp(n, "badmx.example") == 0 || strcmp(n, "mixedmx.example") == 0) {
		add_mx(p, n, 300, 10, "bad!host.example");
		if (strcmp(n, "mixedmx.example") == 0)
			add_mx(p, n, 300, 20, "good.example");
	} else if (strcmp(n, "tc.example") == 0) {
		if (!tcp)
			p->b[2] |= 0x02;	/* TC: try again over TCP */
		else if (t == T_A)
			add_a(p, n, 300, "192.0.2.99");
	} else if (strcmp(n, "ttl0.example") == 0) {
		add_a(p, n, 0, "192.0.2.10");
	} else if (strcmp(n, "ttl1.example") == 0) {
		add_a(p, n, 1, "192.0.2.11");
	} else if (strcmp(n, "txt.example") == 0) {
		m = rr(p, n, T_TXT, 300);
		putbytes(p, "\7v=spf1 \4-all", 13);
		rr_end(p, m);
		p->an++;
		m = rr(p, n, T_TXT, 300);
		putbytes(p, "\3a\0b", 4);
		rr_end(p, m);
		p->an++;
	} else if (strcmp(n, "ns.example") == 0 && t == T_NS) {
		add_name_rr(p, n, T_NS, 300, "NS1.Example.");
		add_name_rr(p, n, T_NS, 300, "ns2.example");
		add_name_rr(p, n, T_NS, 300, "bad!ns.example");	/* skipped */
	} else if (strcmp(n, "1.2.0.192.in-addr.arpa") == 0) {
		add_name_rr(p, n, T_PTR, 300, "Host.Example.");
	} else if (strncmp(n, "1.0.0.0.", 8) == 0 && strstr(n, "8.b.d.0.1.0.0.2.ip6.arpa") != NULL) {
		add_name_rr(p, n, T_PTR, 300, "v6host.example");
	} else {
		start(p, q->id, 0, R_NXDOMAIN, n, t);
	}
	finish(p);
	return 0;
}

static void
fake_udp(struct ev_io *io, unsigned revents)
{
	unsigned char b[1500];
	struct held h;
	struct query_in q;
	ssize_t n;
	int i, rc;

	(void)io;
	(void)revents;
	for (;;) {
		h.tolen = sizeof(h.to);
		n = recvfrom(fk.udp, b, sizeof(b), 0, (struct sockaddr *)&h.to, &h.tolen);
		if (n < 0)
			break;
		fk.queries++;
		if (parse_query(b, (size_t)n, &q) < 0)
			continue;
		rc = answer(&q, &h.p, 0);
		if (rc < 0)
			continue;
		if (rc == 1) {
			fk.held[fk.nheld++] = h;
			if (fk.seen_a && fk.seen_aaaa) {
				for (i = 0; i < fk.nheld; i++)
					sendto(fk.udp, fk.held[i].p.b, fk.held[i].p.n, 0,
					    (struct sockaddr *)&fk.held[i].to, fk.held[i].tolen);
				fk.nheld = 0;
			}
			continue;
		}
		ck_assert_int_eq(sendto(fk.udp, h.p.b, h.p.n, 0, (struct sockaddr *)&h.to, h.tolen),
		    (ssize_t)h.p.n);
	}
}

static void
fake_conn_close(void)
{
	evloop_io_del(loop, &fk.conn_io);
	close(fk.conn);
	fk.conn = -1;
	fk.clen = 0;
}

static void
fake_conn(struct ev_io *io, unsigned revents)
{
	struct query_in q;
	struct pkt p;
	unsigned char out[2 + sizeof(p.b)];
	size_t need;
	ssize_t n;

	(void)io;
	(void)revents;
	n = read(fk.conn, fk.cbuf + fk.clen, sizeof(fk.cbuf) - fk.clen);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		fake_conn_close();
		return;
	}
	fk.clen += (size_t)n;
	if (fk.clen < 2 || fk.clen < 2 + (need = (size_t)(fk.cbuf[0] << 8 | fk.cbuf[1])))
		return;
	fk.queries++;
	fk.tcp_queries++;
	if (parse_query(fk.cbuf + 2, need, &q) == 0 && answer(&q, &p, 1) == 0) {
		out[0] = (unsigned char)(p.n >> 8);
		out[1] = (unsigned char)p.n;
		memcpy(out + 2, p.b, p.n);
		ck_assert_int_eq(write(fk.conn, out, p.n + 2), (ssize_t)(p.n + 2));
	}
	memmove(fk.cbuf, fk.cbuf + 2 + need, fk.clen - 2 - need);
	fk.clen -= 2 + need;
}

static void
fake_accept(struct ev_io *io, unsigned revents)
{
	int fd;

	(void)io;
	(void)revents;
	if ((fd = accept(fk.tcp, NULL, NULL)) < 0)
		return;
	if (fk.conn >= 0)
		fake_conn_close();
	fk.conn = fd;
	ck_assert_int_eq(evloop_set_nonblock(fd), 0);
	ck_assert_int_eq(evloop_io_add(loop, &fk.conn_io, fd, EV_READ, fake_conn, NULL), 0);
}

/* UDP and TCP on one random port of 127.0.0.1. */
static void
fake_start(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int attempt, one = 1;

	memset(&fk, 0, sizeof(fk));
	fk.conn = -1;
	for (attempt = 0; attempt < 20; attempt++) {
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin.sin_port = 0;
		fk.udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fk.udp, 0);
		ck_assert_int_eq(bind(fk.udp, (struct sockaddr *)&sin, sizeof(sin)), 0);
		ck_assert_int_eq(getsockname(fk.udp, (struct sockaddr *)&sin, &len), 0);
		fk.tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fk.tcp, 0);
		setsockopt(fk.tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fk.tcp, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(fk.tcp, 4) == 0)
			break;
		close(fk.udp);
		close(fk.tcp);
	}
	ck_assert_int_lt(attempt, 20);
	fk.port = ntohs(sin.sin_port);
	ck_assert_int_eq(evloop_io_add(loop, &fk.udp_io, fk.udp, EV_READ, fake_udp, NULL), 0);
	ck_assert_int_eq(evloop_io_add(loop, &fk.tcp_io, fk.tcp, EV_READ, fake_accept, NULL), 0);
}

static void
fake_stop(void)
{
	if (fk.conn >= 0)
		fake_conn_close();
	evloop_io_del(loop, &fk.udp_io);
	evloop_io_del(loop, &fk.tcp_io);
	close(fk.udp);
	close(fk.tcp);
}

/* ---- running lookups ---- */

struct got {
	int calls;
	enum resolver_status status;
	char text[RESOLVER_TEXT_SIZE], detail[128], name[RESOLVER_NAME_SIZE];
	char type[8], canonical[RESOLVER_NAME_SIZE];
	char list[2048];		/* the records, one string */
	uint32_t ttl;
	bool cached, secure;
	size_t n;
};

static int done, want;
static bool in_request;		/* set around the request functions */

static void
list_add(struct got *g, const char *s)
{
	size_t o = strlen(g->list);

	snprintf(g->list + o, sizeof(g->list) - o, "%s%s", o ? "," : "", s);
}

static void
on_result(const struct resolver_result *r, void *arg)
{
	struct got *g = arg;
	char s[RESOLVER_NAME_SIZE + 64];
	size_t i;

	ck_assert_msg(!in_request, "callback from inside the request function");
	g->calls++;
	g->status = r->status;
	snprintf(g->text, sizeof(g->text), "%s", r->text);
	snprintf(g->detail, sizeof(g->detail), "%s", r->detail);
	snprintf(g->name, sizeof(g->name), "%s", r->name);
	snprintf(g->type, sizeof(g->type), "%s", r->type);
	snprintf(g->canonical, sizeof(g->canonical), "%s", r->canonical);
	g->ttl = r->ttl;
	g->cached = r->cached;
	g->secure = r->secure;
	g->list[0] = '\0';
	g->n = r->n_mx + r->n_addr + r->n_txt + r->n_ptr + r->n_ns;
	for (i = 0; i < r->n_mx; i++) {
		snprintf(s, sizeof(s), "%u %s", r->mx[i].preference, r->mx[i].exchange);
		list_add(g, s);
	}
	for (i = 0; i < r->n_addr; i++) {
		inet_ntop(r->addr[i].family, r->addr[i].addr, s, sizeof(s));
		list_add(g, s);
	}
	for (i = 0; i < r->n_txt; i++) {
		ck_assert_int_eq(r->txt[i].data[r->txt[i].len], '\0');
		snprintf(s, sizeof(s), "%zu:%s", r->txt[i].len, r->txt[i].data);
		list_add(g, s);
	}
	for (i = 0; i < r->n_ptr; i++)
		list_add(g, r->ptr[i].name);
	for (i = 0; i < r->n_ns; i++)
		list_add(g, r->ns[i].name);
	for (i = 0; i < r->n_tlsa; i++) {
		if (r->tlsa[i].len_ok)
			snprintf(s, sizeof(s), "%u %u %u %zu", r->tlsa[i].usage, r->tlsa[i].selector,
			    r->tlsa[i].mtype, r->tlsa[i].len);
		else
			snprintf(s, sizeof(s), "short %zu", r->tlsa[i].len);
		list_add(g, s);
	}
	g->n += r->n_tlsa;
	if (r->status == RESOLVER_OK)
		ck_assert_str_eq(r->text, "");
	if (++done == want)
		evloop_break(loop);
}

static void
on_guard(struct ev_timer *t)
{
	(void)t;
	ck_abort_msg("lookups did not finish in time (%d of %d)", done, want);
}

static void
on_pause(struct ev_timer *t)
{
	(void)t;
	evloop_break(loop);
}

/* Run the loop until n more callbacks came. */
static void
run(int n)
{
	struct ev_timer guard;

	done = 0;
	want = n;
	evloop_timer_init(&guard, on_guard, NULL);
	evloop_timer_start(loop, &guard, 3000);
	evloop_run(loop);
	evloop_timer_stop(loop, &guard);
	ck_assert_int_eq(done, want);
}

/* Run the loop for ms, whatever happens. */
static void
run_for(int64_t ms)
{
	struct ev_timer t;

	want = -1;
	evloop_timer_init(&t, on_pause, NULL);
	evloop_timer_start(loop, &t, ms);
	evloop_run(loop);
	evloop_timer_stop(loop, &t);
}

static struct resolver *
make_resolver(enum resolver_family family, size_t cache_max)
{
	struct resolver_options opt;
	char server[64], err[256];
	const char *servers[1] = { server };
	struct resolver *r;

	snprintf(server, sizeof(server), "127.0.0.1:%u", fk.port);
	resolver_options_init(&opt);
	opt.servers = servers;
	opt.n_servers = 1;
	opt.timeout_ms = 150;	/* the timeout tests wait this long */
	opt.tries = 1;
	opt.family = family;
	opt.cache_max = cache_max;
	opt.dnssec = mk_dnssec;
	r = resolver_new(loop, &opt, err, sizeof(err));
	ck_assert_msg(r != NULL, "resolver_new: %s", err);
	return r;
}

static void
setup(void)
{
	loop = evloop_new();
	ck_assert_ptr_nonnull(loop);
	fake_start();
	mk_dnssec = false;
	res = make_resolver(RESOLVER_FAMILY_ALL, 100);
	in_request = false;
}

static void
teardown(void)
{
	resolver_free(res);
	res = NULL;
	fake_stop();
	evloop_free(loop);
}

static void
lookup_mx(const char *name, struct got *g)
{
	in_request = true;
	resolver_mx(res, name, on_result, g);
	in_request = false;
}

static void
lookup_host(const char *name, struct got *g)
{
	in_request = true;
	resolver_host(res, name, on_result, g);
	in_request = false;
}

/* ---- results and classification ---- */

START_TEST(test_mx)
{
	struct got g = { 0 };

	lookup_mx("MX.example.", &g);
	run(1);
	ck_assert_int_eq(g.status, RESOLVER_OK);
	ck_assert_str_eq(g.name, "mx.example");
	ck_assert_str_eq(g.type, "MX");
	ck_assert_str_eq(g.list, "20 mx2.mx.example,10 mx1.mx.example");
	ck_assert_uint_eq(g.ttl, 300);		/* the smallest of the RRset */
	ck_assert(!g.cached);
	ck_assert_int_eq(fk.queries, 1);
}
END_TEST

START_TEST(test_mx_compressed)
{
	struct got g = { 0 }, h = { 0 };

	lookup_mx("compress.example", &g);
	lookup_mx("ptrloop.example", &h);
	run(2);
	ck_assert_int_eq(g.status, RESOLVER_OK);
	ck_assert_str_eq(g.list, "10 mail.compress.example");
	ck_assert_int_eq(h.status, RESOLVER_TEMPFAIL);
	ck_assert_str_eq(h.text, "Name service error for name=ptrloop.example type=MX: "
	    "Malformed or unexpected name server reply");
}
END_TEST

START_TEST(test_host_both_families_in_parallel)
{
	struct got g = { 0 }, h = { 0 };

	/* The server holds its replies until it saw both questions: a
	 * resolver asking A then AAAA in turn would time out. */
	lookup_host("both.example", &g);
	run(1);
	ck_assert_int_eq(g.status, RESOLVER_OK);
	ck_assert_str_eq(g.list, "2001:db8::2,192.0.2.2");
	ck_assert_int_eq(fk.queries, 2);
	lookup_host("host.example", &h);
	run(1);
	ck_assert_str_eq(h.list, "2001:db8::1,192.0.2.1");
	ck_assert_uint_eq(h.ttl, 60);
}
END_TEST

START_TEST(test_host_ipv4_only)
{
	struct got g = { 0 };

	resolver_free(res);
	res = make_resolver(RESOLVER_FAMILY_IPV4, 100);
	lookup_host("host.example", &g);
	run(1);
	ck_assert_str_eq(g.list, "192.0.2.1");
	ck_assert_str_eq(g.type, "A");
	ck_assert_int_eq(fk.queries, 1);
}
END_TEST

START_TEST(test_cname)
{
	struct got a = { 0 }, m = { 0 }, d = { 0 }, l = { 0 };

	lookup_host("alias.example", &a);
	lookup_mx("alias.example", &m);
	lookup_mx("dangling.example", &d);
	lookup_host("loop.example", &l);
	run(4);
	ck_assert_int_eq(a.status, RESOLVER_OK);
	ck_assert_str_eq(a.list, "2001:db8::7,192.0.2.7");	/* the target's records */
	ck_assert_str_eq(a.canonical, "target.example");
	ck_assert_str_eq(a.name, "alias.example");
	ck_assert_uint_eq(a.ttl, 100);				/* the CNAME's TTL is smaller */
	ck_assert_str_eq(m.list, "5 mail.target.example");
	ck_assert_int_eq(d.status, RESOLVER_NODATA);		/* CNAME to a name without MX */
	ck_assert_str_eq(d.canonical, "nothing.example");
	ck_assert_int_eq(l.status, RESOLVER_TEMPFAIL);
	ck_assert_str_eq(l.detail, "CNAME loop");
}
END_TEST

/* c-ares 1.18's ares_parse_mx_reply() takes MX records of any owner;
 * we take none we did not ask for. */
START_TEST(test_answer_for_another_name)
{
	struct got g = { 0 };

	lookup_mx("other.example", &g);
	run(1);
	ck_assert_int_eq(g.status, RESOLVER_TEMPFAIL);
	ck_assert_uint_eq(g.n, 0);
}
END_TEST

START_TEST(test_negative)
{
	struct got nx = { 0 }, nd = { 0 }, unknown = { 0 }, tld = { 0 }, other = { 0 };

	lookup_mx("nx.example", &nx);
	lookup_mx("nodata.example", &nd);
	lookup_host("unknown.example", &unknown);
	lookup_mx("x.notld", &tld);
	lookup_mx("elsewhere.example", &other);
	run(5);
	ck_assert_int_eq(tld.status, RESOLVER_NXDOMAIN);
	ck_assert_uint_eq(tld.ttl, 45);
	ck_assert_int_eq(other.status, RESOLVER_NXDOMAIN);
	ck_assert_uint_eq(other.ttl, 0);	/* no SOA of its zone: not cached */
	ck_assert_int_eq(nx.status, RESOLVER_NXDOMAIN);
	ck_assert_str_eq(nx.text, "Host or domain name not found. Name service error for "
	    "name=nx.example type=MX: Host not found");
	ck_assert_str_eq(resolver_status_dsn(nx.status), "5.4.4");
	ck_assert_uint_eq(nx.ttl, 30);		/* SOA MINIMUM */
	ck_assert_int_eq(nd.status, RESOLVER_NODATA);
	ck_assert_str_eq(nd.text, "Host or domain name not found. Name service error for "
	    "name=nodata.example type=MX: Host found but no data record of requested type");
	ck_assert_uint_eq(nd.ttl, 10);		/* the SOA's own TTL */
	ck_assert_int_eq(unknown.status, RESOLVER_NXDOMAIN);
	ck_assert_str_eq(unknown.type, "AAAA");	/* both failed alike: the last, as Postfix */
}
END_TEST

START_TEST(test_tempfail)
{
	struct got sf = { 0 }, rf = { 0 };

	lookup_host("servfail.example", &sf);
	lookup_mx("refused.example", &rf);
	run(2);
	ck_assert_int_eq(sf.status, RESOLVER_TEMPFAIL);
	ck_assert_str_eq(sf.text, "Host or domain name not found. Name service error for "
	    "name=servfail.example type=AAAA: Host not found, try again");
	ck_assert_str_eq(resolver_status_dsn(sf.status), "4.4.3");
	ck_assert_int_eq(rf.status, RESOLVER_TEMPFAIL);
	ck_assert_str_eq(rf.text, "Host or domain name not found. Name service error for "
	    "name=refused.example type=MX: Host not found, try again");
}
END_TEST

START_TEST(test_timeout)
{
	struct got g = { 0 };
	int64_t t0 = evloop_update_time(loop);

	lookup_mx("drop.example", &g);
	run(1);
	ck_assert_int_eq(g.status, RESOLVER_TEMPFAIL);
	ck_assert_str_eq(g.detail, "timeout");
	ck_assert_int_ge(evloop_now(loop) - t0, 140);
	ck_assert_int_lt(evloop_now(loop) - t0, 1000);
}
END_TEST

START_TEST(test_malformed)
{
	struct got g = { 0 }, s = { 0 }, q = { 0 }, b = { 0 }, m = { 0 };

	lookup_mx("garbage.example", &g);	/* counts that lie */
	lookup_host("shortrr.example", &s);	/* an A record of 3 bytes */
	lookup_mx("badq.example", &q);		/* another question: c-ares drops it */
	lookup_mx("badmx.example", &b);		/* an invalid exchange name */
	lookup_mx("mixedmx.example", &m);	/* one invalid, one valid */
	run(5);
	ck_assert_int_eq(g.status, RESOLVER_TEMPFAIL);
	ck_assert_str_eq(g.text, "Name service error for name=garbage.example type=MX: "
	    "Malformed or unexpected name server reply");
	ck_assert_int_eq(s.status, RESOLVER_TEMPFAIL);
	ck_assert_int_eq(q.status, RESOLVER_TEMPFAIL);
	ck_assert_str_eq(q.detail, "timeout");
	ck_assert_int_eq(b.status, RESOLVER_TEMPFAIL);
	ck_assert_int_eq(m.status, RESOLVER_OK);
	ck_assert_str_eq(m.list, "20 good.example");
}
END_TEST

START_TEST(test_truncated_retries_over_tcp)
{
	struct got g = { 0 };

	lookup_host("tc.example", &g);
	run(1);
	ck_assert_int_eq(g.status, RESOLVER_OK);
	ck_assert_str_eq(g.list, "192.0.2.99");		/* the AAAA side answered NODATA */
	ck_assert_int_ge(fk.tcp_queries, 1);
}
END_TEST

START_TEST(test_txt_ptr)
{
	struct got t = { 0 }, p4 = { 0 }, p6 = { 0 }, pm = { 0 }, bad = { 0 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 }, mapped = { .sin6_family = AF_INET6 };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &mapped.sin6_addr);
	in_request = true;
	resolver_txt(res, "txt.example", on_result, &t);
	resolver_ptr(res, (struct sockaddr *)&sin, on_result, &p4);
	resolver_ptr(res, (struct sockaddr *)&sin6, on_result, &p6);
	resolver_ptr(res, (struct sockaddr *)&mapped, on_result, &pm);
	resolver_ptr(res, (struct sockaddr *)&sun, on_result, &bad);
	in_request = false;
	run(5);
	ck_assert_str_eq(t.list, "11:v=spf1 -all,3:a");		/* "a\0b": 3 bytes */
	ck_assert_str_eq(p4.name, "1.2.0.192.in-addr.arpa");
	ck_assert_str_eq(p4.list, "host.example");
	ck_assert_str_eq(p6.name, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	ck_assert_str_eq(p6.list, "v6host.example");
	ck_assert_str_eq(pm.list, "host.example");
	ck_assert_int_eq(bad.status, RESOLVER_BADNAME);
}
END_TEST

START_TEST(test_ns)
{
	struct got g = { 0 }, none = { 0 };

	in_request = true;
	resolver_ns(res, "NS.example", on_result, &g);
	resolver_ns(res, "nodata.example", on_result, &none);
	in_request = false;
	run(2);
	ck_assert_int_eq(g.status, RESOLVER_OK);
	ck_assert_str_eq(g.type, "NS");
	ck_assert_str_eq(g.list, "ns1.example,ns2.example");	/* the bad name is skipped */
	ck_assert_int_eq(g.n, 2);
	ck_assert_int_eq(none.status, RESOLVER_NODATA);
	ck_assert_str_eq(none.type, "NS");
}
END_TEST

START_TEST(test_badname)
{
	static const char *bad[] = {
		"exa mple.com", "a..b.example", "-a.example", "192.0.2.1", "", ".", "x\ny.example",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	};
	struct got g[8];
	size_t i;

	memset(g, 0, sizeof(g));
	for (i = 0; i < 8; i++)
		lookup_mx(bad[i], &g[i]);
	run(8);
	for (i = 0; i < 8; i++)
		ck_assert_msg(g[i].status == RESOLVER_BADNAME, "%s", bad[i]);
	ck_assert_str_eq(g[0].text, "Name service error for exa mple.com: invalid host or domain name");
	ck_assert_str_eq(g[6].text, "Name service error for x\\012y.example: invalid host or domain name");
	ck_assert_int_eq(fk.queries, 0);
}
END_TEST

/* ---- the cache ---- */

START_TEST(test_cache_hit)
{
	struct got a = { 0 }, b = { 0 }, c = { 0 };

	lookup_mx("mx.example", &a);
	run(1);
	ck_assert_int_eq(fk.queries, 1);
	lookup_mx("MX.EXAMPLE.", &b);	/* answered later, from the cache */
	ck_assert_int_eq(b.calls, 0);
	run(1);
	ck_assert_int_eq(fk.queries, 1);
	ck_assert(b.cached);
	ck_assert_str_eq(b.list, a.list);
	ck_assert_uint_le(b.ttl, 300);
	ck_assert_uint_ge(b.ttl, 299);
	/* Negative answers with an SOA are kept; without one, not. */
	lookup_mx("nx.example", &a);
	run(1);
	lookup_mx("nx.example", &b);
	run(1);
	ck_assert_int_eq(b.status, RESOLVER_NXDOMAIN);
	ck_assert(b.cached);
	ck_assert_int_eq(fk.queries, 2);
	lookup_mx("nxnosoa.example", &a);
	run(1);
	lookup_mx("nxnosoa.example", &c);
	run(1);
	ck_assert(!c.cached);
	ck_assert_int_eq(fk.queries, 4);
	/* Failures are not kept. */
	lookup_mx("servfail.example", &a);
	run(1);
	lookup_mx("servfail.example", &a);
	run(1);
	ck_assert_int_eq(fk.queries, 6);
}
END_TEST

START_TEST(test_cache_ttl)
{
	struct got a = { 0 }, b = { 0 };

	resolver_free(res);
	res = make_resolver(RESOLVER_FAMILY_IPV4, 100);
	lookup_host("ttl0.example", &a);
	run(1);
	lookup_host("ttl0.example", &b);
	run(1);
	ck_assert_int_eq(fk.queries, 2);
	ck_assert(!b.cached);
	lookup_host("ttl1.example", &a);
	run(1);
	lookup_host("ttl1.example", &b);
	run(1);
	ck_assert(b.cached);
	ck_assert_int_eq(fk.queries, 3);
	run_for(1100);				/* past the TTL */
	lookup_host("ttl1.example", &b);
	run(1);
	ck_assert(!b.cached);
	ck_assert_int_eq(fk.queries, 4);
	ck_assert_str_eq(b.list, "192.0.2.11");
}
END_TEST

START_TEST(test_cache_bounded)
{
	struct got g = { 0 };
	char name[64];
	int i;

	resolver_free(res);
	res = make_resolver(RESOLVER_FAMILY_IPV4, 2);
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "p%d.par.example", i);
		lookup_host(name, &g);
		run(1);
	}
	ck_assert_int_eq(fk.queries, 3);
	lookup_host("p2.par.example", &g);	/* the newest stayed */
	run(1);
	ck_assert(g.cached);
	lookup_host("p0.par.example", &g);	/* the oldest was evicted */
	run(1);
	ck_assert(!g.cached);
	ck_assert_int_eq(fk.queries, 4);
	/* No cache at all. */
	resolver_free(res);
	res = make_resolver(RESOLVER_FAMILY_IPV4, 0);
	lookup_host("p0.par.example", &g);
	run(1);
	lookup_host("p0.par.example", &g);
	run(1);
	ck_assert(!g.cached);
	ck_assert_int_eq(fk.queries, 6);
}
END_TEST

/* ---- parallel queries, cancel ---- */

START_TEST(test_parallel)
{
	struct got g[10];
	char name[64], ip[32];
	int i;

	memset(g, 0, sizeof(g));
	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "p%d.par.example", i);
		lookup_host(name, &g[i]);
	}
	run(10);
	ck_assert_int_eq(fk.queries, 20);
	for (i = 0; i < 10; i++) {
		snprintf(ip, sizeof(ip), "192.0.2.%d", i + 100);
		ck_assert_int_eq(g[i].calls, 1);
		ck_assert_int_eq(g[i].status, RESOLVER_OK);
		ck_assert_str_eq(g[i].list, ip);
	}
}
END_TEST

/* Two waiters share one question in flight. */
START_TEST(test_coalesced)
{
	struct got a = { 0 }, b = { 0 };

	lookup_mx("mx.example", &a);
	lookup_mx("mx.example", &b);
	run(2);
	ck_assert_int_eq(fk.queries, 1);
	ck_assert_str_eq(a.list, b.list);
	ck_assert(!b.cached);
}
END_TEST

START_TEST(test_cancel_before_answer)
{
	struct got a = { 0 }, b = { 0 };
	struct resolver_query *q;

	q = resolver_mx(res, "mx.example", on_result, &a);
	resolver_cancel(q);
	lookup_mx("mx.example", &b);	/* the same question: answered together */
	run(1);
	run_for(50);
	ck_assert_int_eq(a.calls, 0);
	ck_assert_int_eq(b.calls, 1);
	ck_assert_int_eq(fk.queries, 1);
	/* A cancelled lookup still fills the cache. */
	q = resolver_host(res, "host.example", on_result, &a);
	resolver_cancel(q);
	run_for(100);
	ck_assert_int_eq(fk.queries, 3);
	lookup_host("host.example", &b);
	run(1);
	ck_assert(b.cached);
	ck_assert_int_eq(a.calls, 0);
	/* Cancelling a cache hit or a bad name before its timer fires. */
	resolver_cancel(resolver_host(res, "host.example", on_result, &a));
	resolver_cancel(resolver_host(res, "bad name", on_result, &a));
	resolver_cancel(NULL);
	run_for(20);
	ck_assert_int_eq(a.calls, 0);
}
END_TEST

struct canceller {
	struct resolver_query *other, *self;
	int calls;
	struct got chained;
};

static void
on_cancel_other(const struct resolver_result *r, void *arg)
{
	struct canceller *c = arg;

	(void)r;
	c->calls++;
	resolver_cancel(c->other);
	resolver_cancel(c->self);	/* its own handle: nothing happens */
	/* Start another lookup from the callback. */
	resolver_host(res, "host.example", on_result, &c->chained);
}

START_TEST(test_cancel_from_callback)
{
	struct canceller c = { 0 };
	struct got other = { 0 };

	/* Both wait on one question, and are ready in the same batch. */
	c.self = resolver_mx(res, "mx.example", on_cancel_other, &c);
	c.other = resolver_mx(res, "mx.example", on_result, &other);
	run(1);			/* the chained lookup */
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(other.calls, 0);
	ck_assert_int_eq(c.chained.status, RESOLVER_OK);
	/* Both answered from the cache, in the same batch. */
	memset(&c, 0, sizeof(c));
	c.self = resolver_mx(res, "mx.example", on_cancel_other, &c);
	c.other = resolver_mx(res, "mx.example", on_result, &other);
	run(1);
	run_for(20);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(other.calls, 0);
	ck_assert(c.chained.cached);
}
END_TEST

START_TEST(test_free_with_pending)
{
	struct got a = { 0 }, b = { 0 }, c = { 0 };

	lookup_mx("mx.example", &a);
	run(1);
	lookup_mx("drop.example", &a);		/* in flight */
	lookup_mx("mx.example", &b);		/* a cache hit, not yet delivered */
	lookup_host("bad name", &c);
	resolver_free(res);
	res = NULL;
	run_for(200);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(b.calls, 0);
	ck_assert_int_eq(c.calls, 0);
}
END_TEST

/* A server nobody listens on: the ICMP error ends the lookup at once. */
START_TEST(test_connection_refused)
{
	struct resolver_options opt;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	char server[64], err[256];
	const char *servers[1] = { server };
	struct got g = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	snprintf(server, sizeof(server), "127.0.0.1:%u", ntohs(sin.sin_port));
	resolver_free(res);
	resolver_options_init(&opt);
	opt.servers = servers;
	opt.n_servers = 1;
	opt.timeout_ms = 2000;
	res = resolver_new(loop, &opt, err, sizeof(err));
	ck_assert_ptr_nonnull(res);
	lookup_mx("mx.example", &g);
	run(1);
	ck_assert_int_eq(g.status, RESOLVER_TEMPFAIL);
	ck_assert_str_eq(g.text, "Host or domain name not found. Name service error for "
	    "name=mx.example type=MX: Host not found, try again");
}
END_TEST

/* ---- options ---- */

static const struct {
	const char *entry;
	const char *error;	/* NULL: accepted */
} servers_rows[] = {
	{ "127.0.0.1", NULL },
	{ "127.0.0.1:5353", NULL },
	{ "[::1]", NULL },
	{ "[::1]:53", NULL },
	{ "2001:db8::53", NULL },
	{ "foo", "dns_servers: \"foo\": not an IPv4 address" },
	{ "1.2.3", "dns_servers: \"1.2.3\": not an IPv4 address" },
	{ "127.0.0.1:99999", "dns_servers: \"127.0.0.1:99999\": port must be 1..65535" },
	{ "127.0.0.1:0", "dns_servers: \"127.0.0.1:0\": port must be 1..65535" },
	{ "127.0.0.1:", "dns_servers: \"127.0.0.1:\": port must be 1..65535" },
	{ "127.0.0.1:+53", "dns_servers: \"127.0.0.1:+53\": port must be 1..65535" },
	{ "[::1", "dns_servers: \"[::1\": missing ']'" },
	{ "[::1]53", "dns_servers: \"[::1]53\": expected ':port' after ']'" },
	{ "[127.0.0.1]:53", "dns_servers: \"[127.0.0.1]:53\": not an IPv6 address "
	  "(write one with a port as [address]:port)" },
	{ "fe80::1%eth0", "dns_servers: \"fe80::1%eth0\": not an IPv6 address "
	  "(write one with a port as [address]:port)" },
	{ "", "dns_servers: \"\": not an IPv4 address" },
};

/* ---- DNSSEC and TLSA ---- */

START_TEST(test_tlsa_dnssec)
{
	struct got g = { 0 }, h = { 0 }, k = { 0 };

	resolver_free(res);
	mk_dnssec = true;
	res = make_resolver(RESOLVER_FAMILY_ALL, 0);
	resolver_tlsa(res, "_25._tcp.TLSA.example.", on_result, &g);
	run(1);
	ck_assert(fk.last_do);
	ck_assert_uint_eq(fk.last_flags & F_AD, F_AD);
	ck_assert_int_eq(g.status, RESOLVER_OK);
	ck_assert_str_eq(g.type, "TLSA");
	ck_assert(g.secure);
	/* Every record comes back; usability is the caller's matter. */
	ck_assert_str_eq(g.list, "3 1 1 32,short 2");
	resolver_tlsa(res, "_25._tcp.alias.tlsa.example", on_result, &h);
	run(1);
	ck_assert_int_eq(h.status, RESOLVER_OK);
	ck_assert_str_eq(h.canonical, "_25._tcp.tlsa.example");
	ck_assert_str_eq(h.list, "2 0 2 1");
	ck_assert(h.secure);
	/* forgedad.example always says AD: in dnssec mode we asked, so it counts. */
	lookup_host("forgedad.example", &k);
	run(1);
	ck_assert_int_eq(k.status, RESOLVER_OK);
	ck_assert(k.secure);
}
END_TEST

START_TEST(test_ad_ignored_without_dnssec)
{
	struct got g = { 0 }, h = { 0 };

	lookup_host("forgedad.example", &g);
	run(1);
	ck_assert(!fk.last_do);
	ck_assert_uint_eq(fk.last_flags & F_AD, 0);
	ck_assert_int_eq(g.status, RESOLVER_OK);
	ck_assert(!g.secure);
	resolver_tlsa(res, "_25._tcp.tlsa.example", on_result, &h);
	run(1);
	ck_assert_int_eq(h.status, RESOLVER_OK);
	ck_assert(!h.secure);
	/* A reload turns it on: the next query asks (no cache entry for it). */
	resolver_set_dnssec(res, true);
	memset(&g, 0, sizeof(g));
	resolver_tlsa(res, "_25._tcp.alias.tlsa.example", on_result, &g);
	run(1);
	ck_assert(fk.last_do);
	ck_assert(g.secure);
}
END_TEST

START_TEST(test_query_wire)
{
	static const unsigned char wire[] = {
		0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1,
		3, '_', '2', '5', 4, '_', 't', 'c', 'p', 1, 'a', 0, 0, 52, 0, 1,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0,
	};
	unsigned char b[RESOLVER_QUERY_WIRE_MAX];
	char long_label[80];

	ck_assert_uint_eq(resolver_query_wire("_25._tcp.a", 52, 0x1234, b, sizeof(b)), sizeof(wire));
	ck_assert_mem_eq(b, wire, sizeof(wire));
	ck_assert_uint_eq(resolver_query_wire("a..b", 1, 1, b, sizeof(b)), 0);
	ck_assert_uint_eq(resolver_query_wire("a", 1, 1, b, sizeof(b) - 1), 0);
	memset(long_label, 'x', 64);
	long_label[64] = '\0';
	ck_assert_uint_eq(resolver_query_wire(long_label, 1, 1, b, sizeof(b)), 0);
	long_label[63] = '\0';
	ck_assert_uint_eq(resolver_query_wire(long_label, 1, 1, b, sizeof(b)), 12 + 65 + 4 + 11);
}
END_TEST

START_TEST(test_servers_check)
{
	char err[256] = "";
	const char *entry = servers_rows[_i].entry;
	int rc = resolver_servers_check(&entry, 1, err, sizeof(err));

	if (servers_rows[_i].error == NULL) {
		ck_assert_msg(rc == 0, "%s: %s", entry, err);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_str_eq(err, servers_rows[_i].error);
	}
}
END_TEST

START_TEST(test_bad_options_rejected)
{
	static const char *nine[9] = { "1.1.1.1", "1.1.1.1", "1.1.1.1", "1.1.1.1", "1.1.1.1",
		"1.1.1.1", "1.1.1.1", "1.1.1.1", "1.1.1.1" };
	const char *bad[2] = { "127.0.0.1", "127.0.0.1:99999" };
	struct resolver_options opt;
	char err[256];

	resolver_options_init(&opt);
	opt.servers = bad;
	opt.n_servers = 2;
	ck_assert_ptr_null(resolver_new(loop, &opt, err, sizeof(err)));
	ck_assert_str_eq(err, "dns_servers: \"127.0.0.1:99999\": port must be 1..65535");
	opt.servers = nine;
	opt.n_servers = 9;
	ck_assert_ptr_null(resolver_new(loop, &opt, err, sizeof(err)));
	ck_assert_str_eq(err, "dns_servers: 9 entries, at most 8");
	resolver_options_init(&opt);
	opt.timeout_ms = 0;
	ck_assert_ptr_null(resolver_new(loop, &opt, err, sizeof(err)));
	resolver_options_init(&opt);
	opt.tries = 6;
	ck_assert_ptr_null(resolver_new(loop, &opt, err, sizeof(err)));
	ck_assert_str_eq(err, "resolver: 6 tries, must be 1..5");
}
END_TEST

/* dns_servers and inet_protocols, as tern's configuration gives them. */
START_TEST(test_options_from_config)
{
	static const char text[] = "myhostname = mx.example.org\n"
	    "dns_servers = 127.0.0.1:5353, [::1]:53\n"
	    "inet_protocols = ipv4\n";
	char path[] = "/tmp/resolver_test.XXXXXX", err[256];
	struct resolver_options opt;
	struct resolver *r;
	struct config *cfg;
	struct buf errors;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	buf_init(&errors, 64 * 1024);
	cfg = config_load(path, &errors);
	unlink(path);
	ck_assert_msg(cfg != NULL, "config: %s", buf_cstr(&errors));
	buf_free(&errors);
	resolver_options_from_config(&opt, cfg);
	ck_assert_uint_eq(opt.n_servers, 2);
	ck_assert_str_eq(opt.servers[0], "127.0.0.1:5353");
	ck_assert_str_eq(opt.servers[1], "[::1]:53");
	ck_assert_int_eq(opt.family, RESOLVER_FAMILY_IPV4);
	ck_assert_uint_eq(opt.timeout_ms, RESOLVER_TIMEOUT_MS_DEFAULT);
	r = resolver_new(loop, &opt, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	resolver_free(r);
	config_free(cfg);
}
END_TEST

START_TEST(test_family_parse)
{
	enum resolver_family f;

	ck_assert_int_eq(resolver_family_parse("ipv4", &f), 0);
	ck_assert_int_eq(f, RESOLVER_FAMILY_IPV4);
	ck_assert_int_eq(resolver_family_parse("ipv6", &f), 0);
	ck_assert_int_eq(f, RESOLVER_FAMILY_IPV6);
	ck_assert_int_eq(resolver_family_parse("all", &f), 0);
	ck_assert_int_eq(f, RESOLVER_FAMILY_ALL);
	ck_assert_int_eq(resolver_family_parse("ipv5", &f), -1);
	ck_assert_str_eq(resolver_status_name(RESOLVER_NODATA), "NODATA");
	ck_assert_str_eq(resolver_status_dsn(RESOLVER_OK), "");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("resolver");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_mx);
	tcase_add_test(tc, test_mx_compressed);
	tcase_add_test(tc, test_host_both_families_in_parallel);
	tcase_add_test(tc, test_host_ipv4_only);
	tcase_add_test(tc, test_cname);
	tcase_add_test(tc, test_answer_for_another_name);
	tcase_add_test(tc, test_negative);
	tcase_add_test(tc, test_tempfail);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_truncated_retries_over_tcp);
	tcase_add_test(tc, test_txt_ptr);
	tcase_add_test(tc, test_ns);
	tcase_add_test(tc, test_badname);
	tcase_add_test(tc, test_cache_hit);
	tcase_add_test(tc, test_cache_ttl);
	tcase_add_test(tc, test_cache_bounded);
	tcase_add_test(tc, test_parallel);
	tcase_add_test(tc, test_coalesced);
	tcase_add_test(tc, test_cancel_before_answer);
	tcase_add_test(tc, test_cancel_from_callback);
	tcase_add_test(tc, test_free_with_pending);
	tcase_add_test(tc, test_connection_refused);
	tcase_add_test(tc, test_tlsa_dnssec);
	tcase_add_test(tc, test_ad_ignored_without_dnssec);
	tcase_add_test(tc, test_query_wire);
	tcase_add_loop_test(tc, test_servers_check, 0,
	    (int)(sizeof(servers_rows) / sizeof(servers_rows[0])));
	tcase_add_test(tc, test_bad_options_rejected);
	tcase_add_test(tc, test_options_from_config);
	tcase_add_test(tc, test_family_parse);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
