/*
 * map_regexp_test: regexp: tables (config/map_regexp.c) through the map
 * API. Table-driven: a table text, a key, the expected result (or not
 * found); then load errors with their exact FILE:LINE text; reload
 * keeping the old rules on error; and the whole-key rule in lists.
 */
#define MAP_RULES_TYPE "regexp"
#include "map_rules_testlib.h"

struct lookup_case {
	const char *table;
	const char *key;
	const char *want;	/* NULL: not found */
};

static const struct lookup_case lookup_cases[] = {
	/* case-insensitive by default; i turns it off */
	{ "/^subject: .*viagra/ REJECT spam\n", "Subject: buy VIAGRA now", "REJECT spam" },
	{ "/^subject: .*viagra/i REJECT spam\n", "Subject: buy VIAGRA now", NULL },
	{ "/^Subject: .*viagra/i REJECT spam\n", "Subject: viagra", "REJECT spam" },
	/* first match wins */
	{ "/a/ first\n/a/ second\n", "xax", "first" },
	{ "/b/ first\n/a/ second\n", "xax", "second" },
	/* $n, ${n}, $(n), $$, a group that did not take part */
	{ "/^(.*)@(.*)$/ user=$1 domain=${2} again=$(1) cost=$$5\n", "joe@example.org",
	  "user=joe domain=example.org again=joe cost=$5" },
	{ "/^(a)|(b)$/ [$1][$2]\n", "b", "[][b]" },
	/* negation, and /p1/!/p2/ */
	{ "!/^ok/ NOT-OK\n", "bad thing", "NOT-OK" },
	{ "!/^ok/ NOT-OK\n", "ok thing", NULL },
	{ "/^from:/!/example\\.org/ FOREIGN\n", "From: a@example.org", NULL },
	{ "/^from:/!/example\\.org/ FOREIGN\n", "From: a@other.test", "FOREIGN" },
	/* if ... endif, nested, negated */
	{ "if /^subject:/\n/free/ SUBJ\nendif\n/free/ ELSE\n", "Subject: free", "SUBJ" },
	{ "if /^subject:/\n/free/ SUBJ\nendif\n/free/ ELSE\n", "To: free", "ELSE" },
	{ "if /a/\nif !/b/\n/c/ A-NOT-B\nendif\n/c/ A\nendif\n", "ac", "A-NOT-B" },
	{ "if /a/\nif !/b/\n/c/ A-NOT-B\nendif\n/c/ A\nendif\n", "abc", "A" },
	{ "IF /a/\n/a/ YES\nENDIF\n", "a", "YES" },
	/* other delimiters, an escaped delimiter, x off (basic syntax) */
	{ "|^a/b| SLASH\n", "a/b", "SLASH" },
	{ "/a\\/b/ ESC\n", "xa/b", "ESC" },
	{ "/a+/x PLUS\n", "a+", "PLUS" },
	{ "/a+/x PLUS\n", "aa", NULL },
	/* m: '.' and '^' stop at a line break; without it they do not */
	{ "/^Subject:.*second/ JOINED\n", "Subject: first\n\tsecond", "JOINED" },
	{ "/^Subject:.*second/m JOINED\n", "Subject: first\n\tsecond", NULL },
	{ "/^\tsecond/m LINE\n", "Subject: first\n\tsecond", "LINE" },
	/* comments, blank lines, continuation lines join (LF dropped) */
	{ "# c\n\n/x/ one\n  two\n", "x", "one  two" },
	/* keys are not folded */
	{ "/XYZ$/i UPPER\n", "xyz", NULL },
};

START_TEST(test_lookup)
{
	const struct lookup_case *c = &lookup_cases[_i];

	lookup_check(_i, c->table, c->key, c->want);
}
END_TEST

/* A key far over MAP_KEY_MAX is matched; a result over the value
 * buffer is an error, not a cut. */
START_TEST(test_long_key)
{
	char err[ERR_SIZE] = "";
	struct buf diag, value, key;
	struct map *m = NULL;

	buf_init(&diag, DIAG_MAX);
	buf_init(&value, MAP_VALUE_MAX);
	buf_init(&key, 200000);
	ck_assert_int_eq(table_open("/^(a+)b$/ $1\n/^a+$/ LONG\n", &m, &diag), MAP_OK);
	while (buf_len(&key) < 100000)
		buf_append_char(&key, 'a');
	ck_assert_int_eq(map_lookup(m, buf_cstr(&key), &value, err, sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&value), "LONG");
	buf_append_char(&key, 'b');
	ck_assert_int_eq(map_lookup(m, buf_cstr(&key), &value, err, sizeof(err)), MAP_ERROR);
	map_close(m);
	unlink(test_path);
	buf_free(&key);
	buf_free(&value);
	buf_free(&diag);
}
END_TEST

struct error_case {
	const char *table;
	const char *want;	/* diag with "F" for the file name */
};

static const struct error_case error_cases[] = {
	{ "/a/ ok\n/(/ bad\n", "F:2: bad regular expression: " },
	{ "/a/q X\n", "F:1: unknown regexp flag \"q\" (use i, x or m)\n" },
	{ "/a X\n", "F:1: no closing delimiter '/' after the pattern\n" },
	{ "abc X\n", "F:1: expected /pattern/ (any delimiter but a letter, a digit, white space "
	  "or '\\')\n" },
	{ "/a/\n", "F:1: no result after the pattern\n" },
	{ "/a/X\n", "F:1: unknown regexp flag \"X\" (use i, x or m)\n" },
	{ "/a/\"X\n", "F:1: white space expected after the pattern\n" },
	{ "/(a)/ $2\n", "F:1: $2: the pattern has 1 group\n" },
	{ "!/(a)/ $1\n", "F:1: $1 in the result of a negated pattern\n" },
	{ "/a/ $x\n", "F:1: non-numeric replacement index after '$' (write $$ for a '$')\n" },
	{ "/a/ ${1\n", "F:1: unterminated replacement index\n" },
	{ "/a/ $0\n", "F:1: replacement index $0 (groups count from $1)\n" },
	{ "if /a/\n/b/ X\n", "F:1: if without endif\n" },
	{ "/b/ X\nendif\n", "F:2: endif without if\n" },
	{ "if /a/ X\nendif\n", "F:1: text after the pattern of if\nF:2: endif without if\n" },
	{ "endif x\n", "F:1: text after endif\n" },
	{ " /a/ X\n", "F:1: continuation line without an entry before it\n" },
	{ "/a/ x\n/b/!!/c/ y\n", "F:2: only /pat1/!/pat2/ may combine patterns\n" },
};

START_TEST(test_errors)
{
	const struct error_case *c = &error_cases[_i];

	error_check(c->table, c->want, strstr(c->want, "bad regular expression") != NULL);
}
END_TEST

START_TEST(test_reload)
{
	char err[ERR_SIZE];
	struct buf diag, value;
	struct map *m = NULL;

	buf_init(&diag, DIAG_MAX);
	buf_init(&value, MAP_VALUE_MAX);
	ck_assert_int_eq(table_open("/a/ OLD\n", &m, &diag), MAP_OK);
	ck_assert_uint_eq(map_count(m), 1);
	/* a broken file: the old rules stay */
	table_write("/a/ NEW\n/(/ X\n", false);
	ck_assert_int_eq(map_reload(m, &diag), MAP_ERR_DATA);
	ck_assert_int_eq(map_lookup(m, "a", &value, err, sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&value), "OLD");
	table_write("if /a/\n/a/ NEW\nendif\n/b/ B\n", false);
	buf_reset(&diag);
	ck_assert_int_eq(map_reload(m, &diag), MAP_OK);
	ck_assert_int_eq(map_lookup(m, "a", &value, err, sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&value), "NEW");
	ck_assert_uint_eq(map_count(m), 2);
	ck_assert(!map_fixed(m));
	map_close(m);
	unlink(test_path);
	buf_free(&value);
	buf_free(&diag);
}
END_TEST

/* In the address and domain orders a pattern table sees the whole query
 * only: never user@domain without its extension, @domain, parents, "*". */
START_TEST(test_whole_key)
{
	struct config_list specs;
	char spec[PATH_SIZE + 16], err[ERR_SIZE];
	char *items[1] = { spec };
	struct map_list *ml = NULL;
	struct buf diag, value;

	buf_init(&diag, DIAG_MAX);
	buf_init(&value, MAP_VALUE_MAX);
	table_write("/^joe\\+x@example\\.org$/ FULL\n/^@/ AT\n/^\\./ PARENT\n/^\\*$/ STAR\n"
	            "/^joe@/ BARE\n/^example\\.com$/ DOMAIN\n", true);
	snprintf(spec, sizeof(spec), "regexp:%s", test_path);
	specs.items = items;
	specs.n = 1;
	ck_assert_int_eq(map_list_open(&specs, 0, &ml, &diag), MAP_OK);
	ck_assert_int_eq(map_list_lookup_address(ml, "joe+x@example.org", "+",
	    MAP_ADDR_AT_DOMAIN | MAP_ADDR_DOMAINS | MAP_ADDR_WILDCARD, &value, NULL, err,
	    sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&value), "FULL");
	ck_assert_int_eq(map_list_lookup_address(ml, "joe+y@example.org", "+",
	    MAP_ADDR_AT_DOMAIN | MAP_ADDR_DOMAINS | MAP_ADDR_WILDCARD, &value, NULL, err,
	    sizeof(err)), MAP_NOTFOUND);
	ck_assert_int_eq(map_list_lookup_domain(ml, "a.example.com", true, &value, NULL, err,
	    sizeof(err)), MAP_NOTFOUND);
	ck_assert_int_eq(map_list_lookup_domain(ml, "example.com", true, &value, NULL, err,
	    sizeof(err)), MAP_FOUND);
	ck_assert_str_eq(buf_cstr(&value), "DOMAIN");
	map_list_close(ml);
	unlink(test_path);
	buf_free(&value);
	buf_free(&diag);
}
END_TEST

static Suite *
map_regexp_suite(void)
{
	Suite *s = suite_create("map_regexp");
	TCase *tc = tcase_create("map_regexp");

	tcase_add_loop_test(tc, test_lookup, 0, NELEM(lookup_cases));
	tcase_add_loop_test(tc, test_errors, 0, NELEM(error_cases));
	tcase_add_test(tc, test_long_key);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_whole_key);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(map_regexp_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
