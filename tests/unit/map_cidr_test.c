/*
 * map_cidr_test: cidr: tables (config/map_cidr.c) through the map API.
 * Table-driven: a table text, a key, the expected result (or not found);
 * load errors with their exact FILE:LINE text; reload; and the
 * client-address key of check_client_access style lookups.
 */
#define MAP_RULES_TYPE "cidr"
#include "map_rules_testlib.h"

struct lookup_case {
	const char *table;
	const char *key;
	const char *want;	/* NULL: not found */
};

static const struct lookup_case lookup_cases[] = {
	{ "192.0.2.0/24 NET\n", "192.0.2.77", "NET" },
	{ "192.0.2.0/24 NET\n", "192.0.3.1", NULL },
	{ "192.0.2.7 HOST\n", "192.0.2.7", "HOST" },
	{ "192.0.2.7 HOST\n", "192.0.2.8", NULL },
	{ "[192.0.2.7] HOST\n", "192.0.2.7", "HOST" },
	{ "0.0.0.0/0 ALL\n", "203.0.113.9", "ALL" },
	{ "0.0.0.0/0 ALL\n", "2001:db8::1", NULL },
	{ "10.0.0.0/9 A\n", "10.127.255.255", "A" },
	{ "10.0.0.0/9 A\n", "10.128.0.0", NULL },
	/* first match wins */
	{ "192.0.2.0/25 LOW\n192.0.2.0/24 ALL\n", "192.0.2.200", "ALL" },
	{ "192.0.2.0/25 LOW\n192.0.2.0/24 ALL\n", "192.0.2.100", "LOW" },
	/* IPv6, with and without brackets */
	{ "2001:db8::/32 V6\n", "2001:db8:1::5", "V6" },
	{ "[2001:db8::]/32 V6\n", "2001:db8:1::5", "V6" },
	{ "[2001:db8::/32] V6\n", "2001:db8:1::5", "V6" },
	{ "2001:db8::/33 V6\n", "2001:db8:8000::1", NULL },
	{ "::1 LOOP\n", "::1", "LOOP" },
	{ "::1 LOOP\n", "127.0.0.1", NULL },
	/* negation and if/endif */
	{ "!192.0.2.0/24 OUTSIDE\n", "198.51.100.1", "OUTSIDE" },
	{ "!192.0.2.0/24 OUTSIDE\n", "192.0.2.1", NULL },
	{ "if 192.0.2.0/24\n192.0.2.0/28 LOW\nendif\n0.0.0.0/0 REST\n", "192.0.2.3", "LOW" },
	{ "if 192.0.2.0/24\n192.0.2.0/28 LOW\nendif\n0.0.0.0/0 REST\n", "192.0.2.99", "REST" },
	{ "if !192.0.2.0/24\n0.0.0.0/0 NOT-IN\nendif\n", "10.1.1.1", "NOT-IN" },
	{ "if !192.0.2.0/24\n0.0.0.0/0 NOT-IN\nendif\n", "192.0.2.1", NULL },
	/* results keep their text; comments, continuations */
	{ "# x\n192.0.2.0/24 REJECT go\n  away\n", "192.0.2.1", "REJECT go  away" },
	/* keys that are not addresses */
	{ "0.0.0.0/0 ALL\n", "mail.example.org", NULL },
	{ "0.0.0.0/0 ALL\n", "", NULL },
	{ "0.0.0.0/0 ALL\n", "192.0.2.1/24", NULL },
};

START_TEST(test_lookup)
{
	const struct lookup_case *c = &lookup_cases[_i];

	lookup_check(_i, c->table, c->key, c->want);
}
END_TEST

struct error_case {
	const char *table;
	const char *want;	/* diag with "F" at a line start for the file name */
};

static const struct error_case error_cases[] = {
	{ "192.0.2.1/24 X\n", "F:1: non-null host address bits in \"192.0.2.1/24\", perhaps you "
	  "mean \"192.0.2.0/24\"\n" },
	{ "2001:db8::1/32 X\n", "F:1: non-null host address bits in \"2001:db8::1/32\", perhaps "
	  "you mean \"2001:db8::/32\"\n" },
	{ "192.0.2.0/33 X\n", "F:1: bad prefix length in \"192.0.2.0/33\" (0 to 32)\n" },
	{ "192.0.2.0/ X\n", "F:1: bad prefix length in \"192.0.2.0/\" (0 to 32)\n" },
	{ "192.0.2.0/2x X\n", "F:1: bad prefix length in \"192.0.2.0/2x\" (0 to 32)\n" },
	{ "192.0.2.300 X\n", "F:1: bad network address \"192.0.2.300\"\n" },
	{ "example.org X\n", "F:1: bad network address \"example.org\"\n" },
	{ "192.0.2.0/24\n", "F:1: no result after the network\n" },
	{ "if 192.0.2.0/24\n", "F:1: if without endif\n" },
	{ "endif\n", "F:1: endif without if\n" },
	{ "if 192.0.2.0/24 X\nendif\n", "F:1: text after the network of if\nF:2: endif without if\n" },
	{ "10.0.0.0/8 A\n10.0.0.1/8 B\n",
	  "F:2: non-null host address bits in \"10.0.0.1/8\", perhaps you mean \"10.0.0.0/8\"\n" },
};

START_TEST(test_errors)
{
	error_check(error_cases[_i].table, error_cases[_i].want, false);
}
END_TEST

START_TEST(test_reload)
{
	char err[ERR_SIZE];
	struct buf diag, value;
	struct map *m = NULL;

	buf_init(&diag, DIAG_MAX);
	buf_init(&value, MAP_VALUE_MAX);
	ck_assert_int_eq(table_open("192.0.2.0/24 OLD\n", &m, &diag), MAP_OK);
	table_write("192.0.2.0/24 NEW\n192.0.2.1/8 X\n", false);
	ck_assert_int_eq(map_reload(m, &diag), MAP_ERR_DATA);
	ck_assert_int_eq(map_lookup(m, "192.0.2.1", &value, err, sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&value), "OLD");
	table_write("192.0.2.0/24 NEW\n", false);
	ck_assert_int_eq(map_reload(m, &diag), MAP_OK);
	ck_assert_int_eq(map_lookup(m, "192.0.2.1", &value, err, sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&value), "NEW");
	ck_assert_uint_eq(map_count(m), 1);
	map_close(m);
	unlink(test_path);
	buf_free(&value);
	buf_free(&diag);
}
END_TEST

static Suite *
map_cidr_suite(void)
{
	Suite *s = suite_create("map_cidr");
	TCase *tc = tcase_create("map_cidr");

	tcase_add_loop_test(tc, test_lookup, 0, NELEM(lookup_cases));
	tcase_add_loop_test(tc, test_errors, 0, NELEM(error_cases));
	tcase_add_test(tc, test_reload);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(map_cidr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
