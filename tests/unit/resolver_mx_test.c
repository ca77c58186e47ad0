/* Unit tests for resolver/resolver_mx.c: RFC 5321 section 5.1 next hops. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/resolver_mx.h"

/* Random numbers that keep the order: j == i in Fisher-Yates. */
static uint32_t
rnd_keep(void *arg, uint32_t n)
{
	(void)arg;
	return n - 1;
}

/* A scripted sequence; counts the calls and checks the bounds. */
struct script {
	const uint32_t *v;
	size_t n, i;
	uint32_t bounds[16];
};

static uint32_t
rnd_script(void *arg, uint32_t n)
{
	struct script *s = arg;
	uint32_t v = s->i < s->n ? s->v[s->i] : 0;

	ck_assert_uint_ge(n, 2);	/* never asked to shuffle a single host */
	if (s->i < 16)
		s->bounds[s->i] = n;
	s->i++;
	ck_assert_uint_lt(v, n);
	return v;
}

/* "a:10,b:20", implicit hosts marked '*'. */
static void
hosts_str(const struct resolver_mx_list *l, char *out, size_t outsz)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < l->n; i++)
		o += (size_t)snprintf(out + o, outsz - o, "%s%s:%u%s", i ? "," : "", l->hosts[i].name,
		    l->hosts[i].preference, l->hosts[i].implicit ? "*" : "");
}

#define RR_MAX 6

struct row {
	const char *what;
	const char *domain;
	enum resolver_status status;
	const char *text;		/* the resolver's, for failures */
	struct resolver_mx_rr rr[RR_MAX];
	size_t nrr;
	const char *myhostname;
	const char *names[2];
	enum resolver_mx_status want;
	const char *dsn;
	const char *want_text;		/* for failures */
	const char *want_hosts;		/* for OK */
};

static const char *NX_TEXT =
	"Host or domain name not found. Name service error for name=example.invalid type=MX: Host not found";
static const char *TEMP_TEXT =
	"Host or domain name not found. Name service error for name=example.com type=MX: Host not found, try again";

static const struct row rows[] = {
	{ "sorted by preference", "example.com", RESOLVER_OK, "",
	  { { 20, "b.example.com" }, { 10, "a.example.com" }, { 30, "c.example.com" } }, 3,
	  NULL, { NULL }, RESOLVER_MX_OK, "", "", "a.example.com:10,b.example.com:20,c.example.com:30" },
	{ "names normalised", "example.com", RESOLVER_OK, "",
	  { { 10, "MX.Example.COM." } }, 1,
	  NULL, { NULL }, RESOLVER_MX_OK, "", "", "mx.example.com:10" },
	{ "a name twice keeps its best preference", "example.com", RESOLVER_OK, "",
	  { { 20, "a.example.com" }, { 30, "b.example.com" }, { 10, "A.example.com." } }, 3,
	  NULL, { NULL }, RESOLVER_MX_OK, "", "", "a.example.com:10,b.example.com:30" },
	{ "NODATA: implicit MX", "Example.COM.", RESOLVER_NODATA, "", { { 0, "" } }, 0,
	  NULL, { NULL }, RESOLVER_MX_OK, "", "", "example.com:0*" },
	{ "NXDOMAIN: permanent", "example.invalid", RESOLVER_NXDOMAIN, NULL, { { 0, "" } }, 0,
	  NULL, { NULL }, RESOLVER_MX_PERMFAIL, "5.4.4", NULL, "" },
	{ "TEMPFAIL: temporary", "example.com", RESOLVER_TEMPFAIL, NULL, { { 0, "" } }, 0,
	  NULL, { NULL }, RESOLVER_MX_TEMPFAIL, "4.4.3", NULL, "" },
	{ "BADNAME: permanent", "exa mple.com", RESOLVER_BADNAME,
	  "Name service error for exa mple.com: invalid host or domain name", { { 0, "" } }, 0,
	  NULL, { NULL }, RESOLVER_MX_PERMFAIL, "5.4.4",
	  "Name service error for exa mple.com: invalid host or domain name", "" },
	{ "null MX", "Example.com.", RESOLVER_OK, "", { { 0, "." } }, 1,
	  NULL, { NULL }, RESOLVER_MX_PERMFAIL, "5.1.10",
	  "Domain example.com does not accept mail (nullMX)", "" },
	{ "root exchange at another preference: still no mail", "example.com", RESOLVER_OK, "",
	  { { 10, "." } }, 1,
	  NULL, { NULL }, RESOLVER_MX_PERMFAIL, "5.1.10",
	  "Domain example.com does not accept mail (nullMX)", "" },
	{ "null MX beside real hosts: the real hosts", "example.com", RESOLVER_OK, "",
	  { { 0, "." }, { 10, "mx.example.com" } }, 2,
	  NULL, { NULL }, RESOLVER_MX_OK, "", "", "mx.example.com:10" },
	{ "self at the best preference: loop", "example.com", RESOLVER_OK, "",
	  { { 10, "mx1.example.com" }, { 20, "mx2.example.com" } }, 2,
	  "MX1.example.com", { NULL }, RESOLVER_MX_PERMFAIL, "5.4.6",
	  "mail for example.com loops back to myself", "" },
	{ "self shares the best preference: loop", "example.com", RESOLVER_OK, "",
	  { { 10, "other.example.com" }, { 10, "mx1.example.com" }, { 20, "mx2.example.com" } }, 3,
	  "mx1.example.com", { NULL }, RESOLVER_MX_PERMFAIL, "5.4.6",
	  "mail for example.com loops back to myself", "" },
	{ "self at a middle preference: only better hosts", "example.com", RESOLVER_OK, "",
	  { { 30, "c.example.com" }, { 20, "b.example.com" }, { 10, "a.example.com" },
	    { 20, "backup.example.net" } }, 4,
	  "backup.example.net", { NULL }, RESOLVER_MX_OK, "", "", "a.example.com:10" },
	{ "self by an extra name, case and dot ignored", "example.com", RESOLVER_OK, "",
	  { { 10, "a.example.com" }, { 20, "relay.example.net" } }, 2,
	  "host.example.org", { "x.example.org", "RELAY.Example.NET." }, RESOLVER_MX_OK, "", "",
	  "a.example.com:10" },
	{ "self last: the others stay", "example.com", RESOLVER_OK, "",
	  { { 10, "a.example.com" }, { 20, "b.example.com" }, { 30, "me.example.com" } }, 3,
	  "me.example.com.", { NULL }, RESOLVER_MX_OK, "", "", "a.example.com:10,b.example.com:20" },
	{ "implicit MX that is us: loop", "Mail.Example.ORG.", RESOLVER_NODATA, "", { { 0, "" } }, 0,
	  "mail.example.org", { NULL }, RESOLVER_MX_PERMFAIL, "5.4.6",
	  "mail for mail.example.org loops back to myself", "" },
	{ "an unusable exchange in a hand-made result is skipped", "example.com", RESOLVER_OK, "",
	  { { 10, "bad name" }, { 20, "good.example.com" } }, 2,
	  NULL, { NULL }, RESOLVER_MX_OK, "", "", "good.example.com:20" },
	{ "only unusable exchanges: not an implicit MX", "example.com", RESOLVER_OK, "",
	  { { 10, "bad name" }, { 20, "-bad.example.com" } }, 2,
	  NULL, { NULL }, RESOLVER_MX_TEMPFAIL, "4.4.3",
	  "Name service error for name=example.com type=MX: Malformed or unexpected name server reply", "" },
};

START_TEST(test_table)
{
	const struct row *r = &rows[_i];
	struct resolver_result res = { .status = r->status, .mx = r->rr, .n_mx = r->nrr };
	const char *names[2];
	struct resolver_mx_self self = { .myhostname = r->myhostname, .names = names };
	struct resolver_mx_list out;
	char hosts[2048];
	size_t i;

	if (r->status == RESOLVER_NXDOMAIN)
		res.text = NX_TEXT;
	else if (r->status == RESOLVER_TEMPFAIL)
		res.text = TEMP_TEXT;
	else
		res.text = r->text;
	for (i = 0; i < 2 && r->names[i] != NULL; i++)
		names[self.n_names++] = r->names[i];
	resolver_mx_select(r->domain, &res, &self, rnd_keep, NULL, &out);
	hosts_str(&out, hosts, sizeof(hosts));
	ck_assert_msg(out.status == r->want, "%s: status %d, want %d (%s)", r->what, out.status,
	    r->want, out.text);
	ck_assert_msg(strcmp(out.dsn, r->dsn) == 0, "%s: dsn %s", r->what, out.dsn);
	ck_assert_msg(strcmp(hosts, r->want_hosts) == 0, "%s: hosts %s", r->what, hosts);
	if (r->want == RESOLVER_MX_OK) {
		ck_assert_str_eq(out.text, "");
	} else {
		ck_assert_uint_eq(out.n, 0);
		ck_assert_str_eq(out.text, r->want_text ? r->want_text : res.text);
	}
}
END_TEST

/* A fixed sequence gives a known order: always 0 is Fisher-Yates
 * swapping with the first of the run each time. */
START_TEST(test_shuffle_fixed)
{
	static const struct resolver_mx_rr rr[] = {
		{ 10, "a.example" }, { 10, "b.example" }, { 10, "c.example" }, { 20, "d.example" },
		{ 30, "e.example" }, { 30, "f.example" },
	};
	static const uint32_t zeros[] = { 0, 0, 0 };
	struct resolver_result res = { .status = RESOLVER_OK, .mx = rr, .n_mx = 6 };
	struct script s = { .v = zeros, .n = 3 };
	struct resolver_mx_list out;
	char hosts[512];

	resolver_mx_select("example", &res, NULL, rnd_script, &s, &out);
	hosts_str(&out, hosts, sizeof(hosts));
	ck_assert_str_eq(hosts, "b.example:10,c.example:10,a.example:10,d.example:20,"
	    "f.example:30,e.example:30");
	/* Three calls: 3 then 2 for the first run, 2 for the last; none for d. */
	ck_assert_uint_eq(s.i, 3);
	ck_assert_uint_eq(s.bounds[0], 3);
	ck_assert_uint_eq(s.bounds[1], 2);
	ck_assert_uint_eq(s.bounds[2], 2);
}
END_TEST

/* Every order of an equal-preference run can come out, and nothing
 * crosses a preference boundary. */
START_TEST(test_shuffle_all_permutations)
{
	static const struct resolver_mx_rr rr[] = {
		{ 5, "first.example" }, { 10, "a.example" }, { 10, "b.example" }, { 10, "c.example" },
		{ 10, "d.example" }, { 99, "last.example" },
	};
	struct resolver_result res = { .status = RESOLVER_OK, .mx = rr, .n_mx = 6 };
	struct resolver_mx_list out;
	char seen[24][5], order[5];
	uint32_t v[3];
	int nseen = 0, k, x, y, z, i;

	/* Fisher-Yates over 4 hosts asks for [0,4), [0,3), [0,2): 24 choices. */
	for (x = 0; x < 4; x++) for (y = 0; y < 3; y++) for (z = 0; z < 2; z++) {
		struct script s = { .v = v, .n = 3 };

		v[0] = (uint32_t)x; v[1] = (uint32_t)y; v[2] = (uint32_t)z;
		resolver_mx_select("example", &res, NULL, rnd_script, &s, &out);
		ck_assert_uint_eq(out.n, 6);
		ck_assert_str_eq(out.hosts[0].name, "first.example");
		ck_assert_str_eq(out.hosts[5].name, "last.example");
		for (i = 0; i < 4; i++) {
			ck_assert_uint_eq(out.hosts[1 + i].preference, 10);
			order[i] = out.hosts[1 + i].name[0];
		}
		order[4] = '\0';
		for (k = 0; k < nseen && strcmp(seen[k], order) != 0; k++)
			;
		if (k == nseen)
			memcpy(seen[nseen++], order, sizeof(order));
	}
	ck_assert_int_eq(nseen, 24);
}
END_TEST

/* At most RESOLVER_MX_HOSTS_MAX hosts, the best ones. */
START_TEST(test_bounded)
{
	struct resolver_mx_rr rr[RESOLVER_MX_INPUT_MAX];
	struct resolver_result res = { .status = RESOLVER_OK, .mx = rr, .n_mx = RESOLVER_MX_INPUT_MAX };
	struct resolver_mx_list out;
	size_t i;

	for (i = 0; i < RESOLVER_MX_INPUT_MAX; i++) {
		rr[i].preference = (unsigned)(RESOLVER_MX_INPUT_MAX - i);
		snprintf(rr[i].exchange, sizeof(rr[i].exchange), "mx%zu.example", i);
	}
	resolver_mx_select("example", &res, NULL, rnd_keep, NULL, &out);
	ck_assert_int_eq(out.status, RESOLVER_MX_OK);
	ck_assert_uint_eq(out.n, RESOLVER_MX_HOSTS_MAX);
	for (i = 0; i < RESOLVER_MX_HOSTS_MAX; i++)
		ck_assert_uint_eq(out.hosts[i].preference, i + 1);
	ck_assert_str_eq(out.hosts[0].name, "mx63.example");
}
END_TEST

/* The system generator stays in range. */
START_TEST(test_random_system)
{
	int i;

	for (i = 0; i < 1000; i++)
		ck_assert_uint_lt(resolver_mx_random_system(NULL, 7), 7);
	ck_assert_uint_eq(resolver_mx_random_system(NULL, 1), 0);
}
END_TEST

/* The normaliser: the comparisons of loop detection rest on it. */
static const struct {
	const char *in, *out;
	int rc;
} names[] = {
	{ "Example.COM.", "example.com", 0 },
	{ "example.com", "example.com", 0 },
	{ "_dmarc.example.com", "_dmarc.example.com", 0 },
	{ "xn--bcher-kva.example", "xn--bcher-kva.example", 0 },
	{ "a-b.c", "a-b.c", 0 },
	{ "example.com..", "example.com.", -1 },
	{ ".example.com", ".example.com", -1 },
	{ "-a.example", "-a.example", -1 },
	{ "a-.example", "a-.example", -1 },
	{ "a b.example", "a b.example", -1 },
	{ "192.0.2.1", "192.0.2.1", -1 },
	{ "", "", -1 },
	{ ".", "", -1 },
	{ "123.example", "123.example", 0 },
};

START_TEST(test_normalize)
{
	char out[RESOLVER_NAME_SIZE], label[80], longname[300];

	ck_assert_int_eq(resolver_name_normalize(names[_i].in, out), names[_i].rc);
	ck_assert_str_eq(out, names[_i].out);
	/* 63 is the longest label, 253 the longest name. */
	memset(label, 'a', 63);
	label[63] = '\0';
	ck_assert_int_eq(resolver_name_normalize(label, out), 0);
	label[63] = 'a';
	label[64] = '\0';
	ck_assert_int_eq(resolver_name_normalize(label, out), -1);
	memset(longname, 'a', sizeof(longname));
	for (size_t i = 1; i < 253; i += 2)
		longname[i] = '.';
	longname[253] = '\0';
	ck_assert_int_eq(resolver_name_normalize(longname, out), 0);
	longname[253] = '.';
	longname[254] = '\0';
	ck_assert_int_eq(resolver_name_normalize(longname, out), 0);	/* trailing dot */
	longname[254] = 'a';
	longname[255] = '\0';
	ck_assert_int_eq(resolver_name_normalize(longname, out), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("resolver_mx");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_table, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, test_shuffle_fixed);
	tcase_add_test(tc, test_shuffle_all_permutations);
	tcase_add_test(tc, test_bounded);
	tcase_add_test(tc, test_random_system);
	tcase_add_loop_test(tc, test_normalize, 0, (int)(sizeof(names) / sizeof(names[0])));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
