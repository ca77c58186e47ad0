/*
 * Unit tests for smtpd_dnsaccess: the walk behind check_*_{mx,ns,a}_access
 * fed with made-up DNS answers. Each row is a conversation: the name,
 * then for each question the walk asks, the answer we give; at the end
 * the key that matched (or none). Covers MX order, a name without MX
 * being its own MX host, parent domains for NS, address networks, DUNNO
 * ending the walk, address literals, null MX, DNS failures, and the
 * bounds on hosts and parents. The lookups on a real resolver run in
 * tests/e2e/smtpd_restrict_test.py.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/map.h"
#include "smtpd/smtpd_dnsaccess.h"

/* The access map of every row. */
static const char access_map[] =
	"bad-mx.example      REJECT bad MX host\n"
	".badnet.example     REJECT bad network of names\n"
	"192.0.2             REJECT bad network\n"
	"2001:db8:bad        REJECT bad IPv6 network\n"
	"198.51.100.7        DUNNO\n"
	"ns.parent.example   REJECT bad name server\n";

/*
 * An answer: "MX 10 a.example 20 b.example", "NS a.example b.example",
 * "A 192.0.2.1 2001:db8::1", or a status: "NXDOMAIN", "NODATA", "TEMPFAIL".
 */
struct exchange {
	const char *question;	/* "MX name", "NS name", "HOST name" */
	const char *answer;
};

#define EXCHANGES_MAX 14

static const struct {
	const char *what;
	enum smtpd_dnsaccess_type type;
	const char *name;
	struct exchange ex[EXCHANGES_MAX];
	const char *key;	/* NULL: no key matched */
	const char *value;
} rows[] = {
	{ "MX hosts, most preferred first: a bad name", SMTPD_DNSACCESS_MX, "a@Sender.Example",
	  { { "MX sender.example", "MX 20 mx2.good.example 10 bad-mx.example" } },
	  "bad-mx.example", "REJECT bad MX host" },
	{ "an MX host's address in a bad network", SMTPD_DNSACCESS_MX, "a@sender.example",
	  { { "MX sender.example", "MX 10 mx1.good.example" },
	    { "HOST mx1.good.example", "A 2001:db8::5 192.0.2.5" } },
	  "192.0.2", "REJECT bad network" },
	{ "an MX host under a bad parent domain", SMTPD_DNSACCESS_MX, "a@sender.example",
	  { { "MX sender.example", "MX 10 mx.sub.badnet.example" } },
	  ".badnet.example", "REJECT bad network of names" },
	{ "IPv6 networks", SMTPD_DNSACCESS_MX, "a@sender.example",
	  { { "MX sender.example", "MX 10 mx1.good.example" },
	    { "HOST mx1.good.example", "A 2001:db8:bad::25" } },
	  "2001:db8:bad", "REJECT bad IPv6 network" },
	{ "a name without MX is its own MX host", SMTPD_DNSACCESS_MX, "a@host.example",
	  { { "MX host.example", "NODATA" }, { "HOST host.example", "A 192.0.2.77" } },
	  "192.0.2", "REJECT bad network" },
	{ "NXDOMAIN: the name is its own host, which has no address", SMTPD_DNSACCESS_MX,
	  "a@nowhere.example",
	  { { "MX nowhere.example", "NXDOMAIN" }, { "HOST nowhere.example", "NXDOMAIN" } },
	  NULL, NULL },
	{ "DUNNO for the first host ends the walk", SMTPD_DNSACCESS_MX, "a@sender.example",
	  { { "MX sender.example", "MX 10 mx1.good.example 20 bad-mx.example" },
	    { "HOST mx1.good.example", "A 198.51.100.7" } },
	  "198.51.100.7", "DUNNO" },
	{ "no address for one host: the next one", SMTPD_DNSACCESS_MX, "a@sender.example",
	  { { "MX sender.example", "MX 10 mx1.good.example 20 mx2.good.example" },
	    { "HOST mx1.good.example", "TEMPFAIL" },
	    { "HOST mx2.good.example", "A 192.0.2.2" } },
	  "192.0.2", "REJECT bad network" },
	{ "good hosts only", SMTPD_DNSACCESS_MX, "a@sender.example",
	  { { "MX sender.example", "MX 10 mx1.good.example" },
	    { "HOST mx1.good.example", "A 203.0.113.1" } },
	  NULL, NULL },
	{ "a DNS failure is no refusal", SMTPD_DNSACCESS_MX, "a@sender.example",
	  { { "MX sender.example", "TEMPFAIL" } }, NULL, NULL },
	{ "a null MX has no host", SMTPD_DNSACCESS_MX, "a@nullmx.example",
	  { { "MX nullmx.example", "MX 0 ." } }, NULL, NULL },
	{ "an address literal is its own MX", SMTPD_DNSACCESS_MX, "a@[192.0.2.9]", { { NULL, NULL } },
	  "192.0.2", "REJECT bad network" },
	{ "an IPv6 literal", SMTPD_DNSACCESS_MX, "a@[IPv6:2001:db8:bad::1]", { { NULL, NULL } },
	  "2001:db8:bad", "REJECT bad IPv6 network" },
	{ "a bad literal", SMTPD_DNSACCESS_MX, "a@[192.0.2]", { { NULL, NULL } }, NULL, NULL },
	{ "no name servers for a literal", SMTPD_DNSACCESS_NS, "a@[192.0.2.9]", { { NULL, NULL } },
	  NULL, NULL },
	{ "NS of the nearest parent with some", SMTPD_DNSACCESS_NS, "host.a.parent.example",
	  { { "NS host.a.parent.example", "NODATA" }, { "NS a.parent.example", "NODATA" },
	    { "NS parent.example", "NS ns.parent.example ns2.parent.example" } },
	  "ns.parent.example", "REJECT bad name server" },
	{ "NS hosts' addresses", SMTPD_DNSACCESS_NS, "a@sender.example",
	  { { "NS sender.example", "NS ns1.good.example" },
	    { "HOST ns1.good.example", "A 192.0.2.53" } },
	  "192.0.2", "REJECT bad network" },
	{ "NXDOMAIN: no parents asked", SMTPD_DNSACCESS_NS, "a@gone.example",
	  { { "NS gone.example", "NXDOMAIN" } }, NULL, NULL },
	{ "parents are bounded", SMTPD_DNSACCESS_NS, "a.b.c.d.e.f.g.h.i.j.k.example",
	  { { "NS a.b.c.d.e.f.g.h.i.j.k.example", "NODATA" },
	    { "NS b.c.d.e.f.g.h.i.j.k.example", "NODATA" },
	    { "NS c.d.e.f.g.h.i.j.k.example", "NODATA" },
	    { "NS d.e.f.g.h.i.j.k.example", "NODATA" },
	    { "NS e.f.g.h.i.j.k.example", "NODATA" },
	    { "NS f.g.h.i.j.k.example", "NODATA" },
	    { "NS g.h.i.j.k.example", "NODATA" },
	    { "NS h.i.j.k.example", "NODATA" },
	    { "NS i.j.k.example", "NODATA" } },
	  NULL, NULL },
	{ "A records of the name", SMTPD_DNSACCESS_A, "a@sender.example",
	  { { "HOST sender.example", "A 2001:db8::1 192.0.2.1" } },
	  "192.0.2", "REJECT bad network" },
	{ "A: the name itself is not a key", SMTPD_DNSACCESS_A, "bad-mx.example",
	  { { "HOST bad-mx.example", "A 203.0.113.9" } }, NULL, NULL },
	{ "A: no address", SMTPD_DNSACCESS_A, "a@sender.example",
	  { { "HOST sender.example", "NXDOMAIN" } }, NULL, NULL },
	{ "a name we would not ask", SMTPD_DNSACCESS_MX, "a@bad_name!.example", { { NULL, NULL } },
	  NULL, NULL },
};

/* Fill res from an answer text; arrays point into the storage given. */
static void
make_answer(const char *text, const char *name, struct resolver_result *res,
    struct resolver_mx_rr *mx, struct resolver_addr *addr, struct resolver_name *names)
{
	char copy[512], *save = NULL, *tok;

	memset(res, 0, sizeof(*res));
	res->name = name;
	res->text = "Host or domain name not found";
	res->detail = "";
	res->canonical = name;
	if (strcmp(text, "NXDOMAIN") == 0 || strcmp(text, "NODATA") == 0 ||
	    strcmp(text, "TEMPFAIL") == 0) {
		res->status = strcmp(text, "NXDOMAIN") == 0 ? RESOLVER_NXDOMAIN :
		    strcmp(text, "NODATA") == 0 ? RESOLVER_NODATA : RESOLVER_TEMPFAIL;
		return;
	}
	res->status = RESOLVER_OK;
	res->text = "";
	snprintf(copy, sizeof(copy), "%s", text);
	tok = strtok_r(copy, " ", &save);
	if (strcmp(tok, "MX") == 0) {
		res->mx = mx;
		while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
			mx[res->n_mx].preference = (unsigned)atoi(tok);
			tok = strtok_r(NULL, " ", &save);
			ck_assert_ptr_nonnull(tok);
			snprintf(mx[res->n_mx++].exchange, RESOLVER_NAME_SIZE, "%s", tok);
		}
	} else if (strcmp(tok, "NS") == 0) {
		res->ns = names;
		while ((tok = strtok_r(NULL, " ", &save)) != NULL)
			snprintf(names[res->n_ns++].name, RESOLVER_NAME_SIZE, "%s", tok);
	} else {
		res->addr = addr;
		while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
			addr[res->n_addr].family = strchr(tok, ':') != NULL ? AF_INET6 : AF_INET;
			ck_assert_int_eq(inet_pton(addr[res->n_addr].family, tok,
			    addr[res->n_addr].addr), 1);
			res->n_addr++;
		}
	}
}

static const char *
ask_word(enum smtpd_dnsaccess_ask a)
{
	return a == SMTPD_DNSACCESS_ASK_MX ? "MX" : a == SMTPD_DNSACCESS_ASK_NS ? "NS" : "HOST";
}

static struct map *
open_map(void)
{
	struct map *m = NULL;
	struct buf diag;

	buf_init(&diag, 4096);
	ck_assert_msg(map_open_text("access", access_map, strlen(access_map), 0, &m, &diag) == MAP_OK,
	    "%s", buf_cstr(&diag));
	buf_free(&diag);
	return m;
}

START_TEST(test_walk)
{
	struct resolver_mx_rr mx[16];
	struct resolver_addr addr[16];
	struct resolver_name names[16];
	struct resolver_result res;
	struct smtpd_dnsaccess_walk w;
	struct map *m = open_map();
	char asked[RESOLVER_NAME_SIZE + 8];
	size_t i;

	smtpd_dnsaccess_walk_start(&w, rows[_i].type, m, rows[_i].name, "Sender address a@b");
	for (i = 0; i < EXCHANGES_MAX && rows[_i].ex[i].question != NULL; i++) {
		ck_assert_msg(w.ask != SMTPD_DNSACCESS_ASK_NONE, "%s: finished before \"%s\"",
		    rows[_i].what, rows[_i].ex[i].question);
		snprintf(asked, sizeof(asked), "%s %s", ask_word(w.ask), w.ask_name);
		ck_assert_msg(strcmp(asked, rows[_i].ex[i].question) == 0, "%s: asked \"%s\", not \"%s\"",
		    rows[_i].what, asked, rows[_i].ex[i].question);
		make_answer(rows[_i].ex[i].answer, w.ask_name, &res, mx, addr, names);
		smtpd_dnsaccess_walk_answer(&w, &res);
	}
	ck_assert_msg(w.ask == SMTPD_DNSACCESS_ASK_NONE, "%s: asks \"%s %s\" more", rows[_i].what,
	    ask_word(w.ask), w.ask_name);
	if (rows[_i].key == NULL) {
		ck_assert_msg(w.result == SMTPD_DNSACCESS_NOTFOUND, "%s: found \"%s\"", rows[_i].what,
		    w.key);
	} else {
		ck_assert_msg(w.result == SMTPD_DNSACCESS_FOUND, "%s: nothing found", rows[_i].what);
		ck_assert_str_eq(w.key, rows[_i].key);
		ck_assert_str_eq(buf_cstr(&w.value), rows[_i].value);
	}
	smtpd_dnsaccess_walk_free(&w);
	map_close(m);
}
END_TEST

/* More MX hosts than SMTPD_DNSACCESS_HOSTS_MAX: the rest are never asked. */
START_TEST(test_hosts_bounded)
{
	struct resolver_mx_rr mx[SMTPD_DNSACCESS_HOSTS_MAX + 5];
	struct resolver_result res, none;
	struct smtpd_dnsaccess_walk w;
	struct map *m = open_map();
	unsigned asked = 0;
	size_t i;

	memset(&res, 0, sizeof(res));
	res.status = RESOLVER_OK;
	res.name = res.canonical = "many.example";
	res.text = res.detail = "";
	res.mx = mx;
	res.n_mx = sizeof(mx) / sizeof(mx[0]);
	for (i = 0; i < res.n_mx; i++) {
		mx[i].preference = (unsigned)i;
		snprintf(mx[i].exchange, sizeof(mx[i].exchange), "mx%02zu.good.example", i);
	}
	memset(&none, 0, sizeof(none));
	none.status = RESOLVER_NODATA;
	none.text = "no address";
	none.detail = "";
	smtpd_dnsaccess_walk_start(&w, SMTPD_DNSACCESS_MX, m, "a@many.example", "Sender address a@b");
	ck_assert_int_eq(w.ask, SMTPD_DNSACCESS_ASK_MX);
	smtpd_dnsaccess_walk_answer(&w, &res);
	while (w.ask != SMTPD_DNSACCESS_ASK_NONE && asked < 100) {
		ck_assert_int_eq(w.ask, SMTPD_DNSACCESS_ASK_HOST);
		none.name = none.canonical = w.ask_name;
		smtpd_dnsaccess_walk_answer(&w, &none);
		asked++;
	}
	ck_assert_uint_eq(asked, SMTPD_DNSACCESS_HOSTS_MAX);
	ck_assert_int_eq(w.result, SMTPD_DNSACCESS_NOTFOUND);
	smtpd_dnsaccess_walk_free(&w);
	map_close(m);
}
END_TEST

/* An answer with more addresses than SMTPD_DNSACCESS_ADDRS_MAX: the
 * bad one past the bound is not looked at. */
START_TEST(test_addrs_bounded)
{
	struct resolver_addr addr[SMTPD_DNSACCESS_ADDRS_MAX + 1];
	struct resolver_result res;
	struct smtpd_dnsaccess_walk w;
	struct map *m = open_map();
	size_t i;

	memset(&res, 0, sizeof(res));
	memset(addr, 0, sizeof(addr));
	res.status = RESOLVER_OK;
	res.name = res.canonical = "wide.example";
	res.text = res.detail = "";
	res.addr = addr;
	res.n_addr = sizeof(addr) / sizeof(addr[0]);
	for (i = 0; i < res.n_addr; i++) {
		addr[i].family = AF_INET;
		memcpy(addr[i].addr, (unsigned char[]){ 203, 0, 113, (unsigned char)i }, 4);
	}
	memcpy(addr[res.n_addr - 1].addr, (unsigned char[]){ 192, 0, 2, 1 }, 4);
	smtpd_dnsaccess_walk_start(&w, SMTPD_DNSACCESS_A, m, "wide.example", "Helo command wide");
	smtpd_dnsaccess_walk_answer(&w, &res);
	ck_assert_int_eq(w.ask, SMTPD_DNSACCESS_ASK_NONE);
	ck_assert_int_eq(w.result, SMTPD_DNSACCESS_NOTFOUND);
	smtpd_dnsaccess_walk_free(&w);
	map_close(m);
}
END_TEST

static Suite *
smtpd_dnsaccess_suite(void)
{
	Suite *s = suite_create("smtpd_dnsaccess");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_walk, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_test(tc, test_hosts_bounded);
	tcase_add_test(tc, test_addrs_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtpd_dnsaccess_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
