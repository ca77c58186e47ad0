/*
 * Unit tests for smtpd_peer: which PTR names are usable, and the decision
 * table from made-up resolver results (PTR answer, then the forward
 * answer, or a deadline) to client_name / reverse_client_name and their
 * statuses. The lookup on a real loop with a real DNS server is
 * tests/e2e/smtpd_peer_test.py.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "smtpd/smtpd_peer.h"

/* ---- names ---- */

static const struct {
	const char *name;
	const char *normal;	/* NULL: refused */
} name_rows[] = {
	{ "mail.example.org", "mail.example.org" },
	{ "MAIL.Example.ORG.", "mail.example.org" },
	{ "host", "host" },
	{ "under_score.example", "under_score.example" },
	{ "a-b.example", "a-b.example" },
	{ "192-0-2-9.dyn.example", "192-0-2-9.dyn.example" },
	{ "9.2.0.192.in-addr.example", "9.2.0.192.in-addr.example" },
	/* address-looking: a client posing as an address in access maps */
	{ "192.0.2.9", NULL },
	{ "192.0.2.9.", NULL },
	{ "1.2.3", NULL },
	{ "2001:db8::1", NULL },
	{ "::ffff:192.0.2.9", NULL },
	/* not host names */
	{ "", NULL },
	{ ".", NULL },
	{ "a..b", NULL },
	{ ".example", NULL },
	{ "-a.example", NULL },
	{ "a-.example", NULL },
	{ "a b.example", NULL },
	{ "a\x01.example", NULL },
	{ "caf\xc3\xa9.example", NULL },
	{ "x.example..", NULL },
	{ "unknown", NULL },
	{ "UNKNOWN.", NULL },
	{ "unknown.example", "unknown.example" },
	/* lengths: a 63-octet label is fine, 64 is not; 253 characters are
	 * fine, 254 are not */
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", NULL },
};

/* A name of len characters: labels of 9 'a's and a dot, then 'b's. */
static void
long_name(char *out, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		out[i] = (i % 10 == 9) ? '.' : 'a';
	if (out[len - 1] == '.')
		out[len - 1] = 'b';
	out[len] = '\0';
}

START_TEST(test_name_valid)
{
	char out[RESOLVER_NAME_SIZE];
	bool ok = smtpd_peer_name_valid(name_rows[_i].name, out);

	ck_assert_msg(ok == (name_rows[_i].normal != NULL), "row %d \"%s\": %s", _i,
	    name_rows[_i].name, ok ? "accepted" : "refused");
	if (ok)
		ck_assert_str_eq(out, name_rows[_i].normal);
}
END_TEST

START_TEST(test_name_length)
{
	char name[400], out[RESOLVER_NAME_SIZE];

	long_name(name, 253);
	ck_assert(smtpd_peer_name_valid(name, out));
	ck_assert_str_eq(out, name);
	long_name(name, 254);
	ck_assert(!smtpd_peer_name_valid(name, out));
	long_name(name, 399);
	ck_assert(!smtpd_peer_name_valid(name, out));
}
END_TEST

/* ---- the PTR answer ---- */

#define PTR_NAMES_MAX (SMTPD_PEER_PTR_MAX + 4)

struct ptr_row {
	const char *what;
	enum resolver_status status;
	const char *ptr[PTR_NAMES_MAX];		/* NULL-terminated */
	bool forward;				/* the forward lookup follows */
	const char *reverse;
	enum smtpd_peer_status reverse_status;
};

static const struct ptr_row ptr_rows[] = {
	{ "one name", RESOLVER_OK, { "mail.example.org" }, true, "mail.example.org", SMTPD_PEER_OK },
	{ "first of two", RESOLVER_OK, { "a.example", "b.example" }, true, "a.example", SMTPD_PEER_OK },
	{ "upper case, dot", RESOLVER_OK, { "A.Example." }, true, "a.example", SMTPD_PEER_OK },
	{ "bad first, good second", RESOLVER_OK, { "192.0.2.9", "b.example" }, true, "b.example",
	  SMTPD_PEER_OK },
	{ "only numeric", RESOLVER_OK, { "192.0.2.9" }, false, "unknown", SMTPD_PEER_PERM },
	{ "only bad", RESOLVER_OK, { "a..b", "-x.example", "unknown" }, false, "unknown",
	  SMTPD_PEER_PERM },
	/* The good one is past the records looked at. */
	{ "good past the limit", RESOLVER_OK,
	  { "1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.5", "1.1.1.6", "1.1.1.7", "1.1.1.8",
	    "late.example" }, false, "unknown", SMTPD_PEER_PERM },
	{ "good at the limit", RESOLVER_OK,
	  { "1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.5", "1.1.1.6", "1.1.1.7",
	    "last.example" }, true, "last.example", SMTPD_PEER_OK },
	{ "NXDOMAIN", RESOLVER_NXDOMAIN, { NULL }, false, "unknown", SMTPD_PEER_PERM },
	{ "NODATA", RESOLVER_NODATA, { NULL }, false, "unknown", SMTPD_PEER_PERM },
	{ "BADNAME", RESOLVER_BADNAME, { NULL }, false, "unknown", SMTPD_PEER_PERM },
	{ "SERVFAIL or timeout", RESOLVER_TEMPFAIL, { NULL }, false, "unknown", SMTPD_PEER_TEMP },
	{ "OK without records", RESOLVER_OK, { NULL }, false, "unknown", SMTPD_PEER_PERM },
};

static void
ptr_result(const struct ptr_row *row, struct resolver_result *res, struct resolver_name *names)
{
	size_t n = 0;

	memset(res, 0, sizeof(*res));
	res->status = row->status;
	while (n < PTR_NAMES_MAX && row->ptr[n] != NULL) {
		snprintf(names[n].name, sizeof(names[n].name), "%s", row->ptr[n]);
		n++;
	}
	res->n_ptr = n;
	res->ptr = n > 0 ? names : NULL;
}

START_TEST(test_ptr)
{
	const struct ptr_row *row = &ptr_rows[_i];
	struct resolver_name names[PTR_NAMES_MAX];
	struct resolver_result res;
	struct smtpd_peer_names n;
	bool fwd;

	ptr_result(row, &res, names);
	/* Whatever was there before is replaced. */
	memset(&n, 'x', sizeof(n));
	fwd = smtpd_peer_ptr_decide(&n, &res);
	ck_assert_msg(fwd == row->forward, "%s: forward %d", row->what, fwd);
	ck_assert_str_eq(n.reverse_name, row->reverse);
	ck_assert_int_eq(n.reverse_name_status, row->reverse_status);
	/* client_name is never set from a PTR alone. */
	ck_assert_str_eq(n.name, "unknown");
	if (row->forward)
		ck_assert_int_eq(n.name_status, SMTPD_PEER_TEMP);	/* until confirmed */
	else
		ck_assert_int_eq(n.name_status, row->reverse_status);
}
END_TEST

/* ---- the forward answer ---- */

struct fwd_row {
	const char *what;
	const char *client;			/* the client's address */
	enum resolver_status status;
	const char *addrs[6];			/* the name's addresses, NULL-terminated */
	const char *name;			/* client_name afterwards */
	enum smtpd_peer_status name_status;
	const char *warn;			/* the warning, "" for none */
};

static const struct fwd_row fwd_rows[] = {
	{ "confirmed", "192.0.2.9", RESOLVER_OK, { "192.0.2.9" }, "mail.example.org", SMTPD_PEER_OK, "" },
	{ "confirmed among others", "192.0.2.9", RESOLVER_OK,
	  { "198.51.100.1", "192.0.2.8", "192.0.2.9" }, "mail.example.org", SMTPD_PEER_OK, "" },
	{ "another address", "192.0.2.9", RESOLVER_OK, { "192.0.2.10" }, "unknown", SMTPD_PEER_FORGED,
	  "hostname mail.example.org does not resolve to address 192.0.2.9" },
	/* The same bytes in another family are not the client. */
	{ "v4 client, v4-mapped AAAA", "192.0.2.9", RESOLVER_OK, { "::ffff:192.0.2.9" }, "unknown",
	  SMTPD_PEER_FORGED, "hostname mail.example.org does not resolve to address 192.0.2.9" },
	{ "v6 confirmed", "2001:db8::25", RESOLVER_OK, { "2001:db8::24", "2001:db8::25" },
	  "mail.example.org", SMTPD_PEER_OK, "" },
	{ "v6 mismatch", "2001:db8::25", RESOLVER_OK, { "2001:db8::26", "192.0.2.9" }, "unknown",
	  SMTPD_PEER_FORGED, "hostname mail.example.org does not resolve to address 2001:db8::25" },
	{ "NXDOMAIN", "192.0.2.9", RESOLVER_NXDOMAIN, { NULL }, "unknown", SMTPD_PEER_FORGED,
	  "hostname mail.example.org does not resolve to address 192.0.2.9: Name or service not known" },
	{ "NODATA", "192.0.2.9", RESOLVER_NODATA, { NULL }, "unknown", SMTPD_PEER_FORGED,
	  "hostname mail.example.org does not resolve to address 192.0.2.9: "
	  "No address associated with hostname" },
	{ "TEMPFAIL", "192.0.2.9", RESOLVER_TEMPFAIL, { NULL }, "unknown", SMTPD_PEER_TEMP,
	  "hostname mail.example.org does not resolve to address 192.0.2.9: "
	  "Temporary failure in name resolution" },
	{ "OK without records", "192.0.2.9", RESOLVER_OK, { NULL }, "unknown", SMTPD_PEER_FORGED,
	  "hostname mail.example.org does not resolve to address 192.0.2.9" },
};

START_TEST(test_forward)
{
	const struct fwd_row *row = &fwd_rows[_i];
	struct resolver_addr addrs[6];
	struct resolver_result res;
	struct smtpd_peer_names n;
	unsigned char client[16];
	char warn[SMTPD_PEER_WARN_SIZE];
	int af = strchr(row->client, ':') ? AF_INET6 : AF_INET;
	size_t k;

	memset(&res, 0, sizeof(res));
	res.status = row->status;
	for (k = 0; k < 6 && row->addrs[k] != NULL; k++) {
		addrs[k].family = strchr(row->addrs[k], ':') ? AF_INET6 : AF_INET;
		ck_assert_int_eq(inet_pton(addrs[k].family, row->addrs[k], addrs[k].addr), 1);
	}
	res.n_addr = k;
	res.addr = k > 0 ? addrs : NULL;
	ck_assert_int_eq(inet_pton(af, row->client, client), 1);
	smtpd_peer_names_unknown(&n, SMTPD_PEER_TEMP);
	snprintf(n.reverse_name, sizeof(n.reverse_name), "mail.example.org");
	n.reverse_name_status = SMTPD_PEER_OK;
	smtpd_peer_forward_decide(&n, af, client, row->client, &res, warn, sizeof(warn));
	ck_assert_msg(strcmp(n.name, row->name) == 0, "%s: name %s", row->what, n.name);
	ck_assert_msg(n.name_status == row->name_status, "%s: status %d", row->what, n.name_status);
	ck_assert_str_eq(warn, row->warn);
	/* The reverse name stands whatever the forward lookup says. */
	ck_assert_str_eq(n.reverse_name, "mail.example.org");
	ck_assert_int_eq(n.reverse_name_status, SMTPD_PEER_OK);
}
END_TEST

/* ---- the deadline ---- */

START_TEST(test_timeout)
{
	struct smtpd_peer_names n;
	char warn[SMTPD_PEER_WARN_SIZE];

	/* In the PTR phase: nothing known, for now. */
	smtpd_peer_names_unknown(&n, SMTPD_PEER_PERM);
	smtpd_peer_timeout_decide(&n, false, "192.0.2.9", warn, sizeof(warn));
	ck_assert_str_eq(n.name, "unknown");
	ck_assert_str_eq(n.reverse_name, "unknown");
	ck_assert_int_eq(n.name_status, SMTPD_PEER_TEMP);
	ck_assert_int_eq(n.reverse_name_status, SMTPD_PEER_TEMP);
	ck_assert_str_eq(warn, "");

	/* In the forward phase: the PTR name stays. */
	smtpd_peer_names_unknown(&n, SMTPD_PEER_TEMP);
	snprintf(n.reverse_name, sizeof(n.reverse_name), "slow.example");
	n.reverse_name_status = SMTPD_PEER_OK;
	smtpd_peer_timeout_decide(&n, true, "192.0.2.9", warn, sizeof(warn));
	ck_assert_str_eq(n.name, "unknown");
	ck_assert_int_eq(n.name_status, SMTPD_PEER_TEMP);
	ck_assert_str_eq(n.reverse_name, "slow.example");
	ck_assert_int_eq(n.reverse_name_status, SMTPD_PEER_OK);
	ck_assert_str_eq(warn, "hostname slow.example does not resolve to address 192.0.2.9: "
	    "Temporary failure in name resolution");
}
END_TEST

/* The loopback address is "localhost" without a question; the rest of
 * 127/8 and other addresses are not. */
static const struct {
	const char *addr;
	bool local;
} localhost_rows[] = {
	{ "127.0.0.1", true },
	{ "::1", true },
	{ "::ffff:127.0.0.1", true },
	{ "127.0.0.2", false },
	{ "127.0.1.1", false },
	{ "192.0.2.1", false },
	{ "::2", false },
	{ "::ffff:127.0.0.2", false },
	{ "2001:db8::1", false },
};

START_TEST(test_localhost)
{
	unsigned char bin[16];
	struct smtpd_peer_names n;
	int af = strchr(localhost_rows[_i].addr, ':') != NULL ? AF_INET6 : AF_INET;

	ck_assert_int_eq(inet_pton(af, localhost_rows[_i].addr, bin), 1);
	smtpd_peer_names_unknown(&n, SMTPD_PEER_PERM);
	ck_assert_msg(smtpd_peer_localhost(af, bin, &n) == localhost_rows[_i].local, "%s",
	              localhost_rows[_i].addr);
	ck_assert_str_eq(n.name, localhost_rows[_i].local ? "localhost" : "unknown");
	ck_assert_str_eq(n.reverse_name, localhost_rows[_i].local ? "localhost" : "unknown");
	ck_assert_int_eq(n.name_status, localhost_rows[_i].local ? SMTPD_PEER_OK : SMTPD_PEER_PERM);
}
END_TEST

START_TEST(test_status_names)
{
	ck_assert_str_eq(smtpd_peer_status_name(SMTPD_PEER_OK), "OK");
	ck_assert_str_eq(smtpd_peer_status_name(SMTPD_PEER_TEMP), "TEMP");
	ck_assert_str_eq(smtpd_peer_status_name(SMTPD_PEER_PERM), "FAIL");
	ck_assert_str_eq(smtpd_peer_status_name(SMTPD_PEER_FORGED), "FORGED");
}
END_TEST

static Suite *
peer_suite(void)
{
	Suite *s = suite_create("smtpd_peer");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_name_valid, 0, (int)(sizeof(name_rows) / sizeof(name_rows[0])));
	tcase_add_test(tc, test_name_length);
	tcase_add_loop_test(tc, test_ptr, 0, (int)(sizeof(ptr_rows) / sizeof(ptr_rows[0])));
	tcase_add_loop_test(tc, test_forward, 0, (int)(sizeof(fwd_rows) / sizeof(fwd_rows[0])));
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_status_names);
	tcase_add_loop_test(tc, test_localhost, 0,
	                    (int)(sizeof(localhost_rows) / sizeof(localhost_rows[0])));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(peer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
