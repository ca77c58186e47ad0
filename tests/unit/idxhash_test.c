/* Unit tests for common/idxhash.c: string and pointer keys, growth,
 * collisions resolved by the caller's match function. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/idxhash.h"

static bool
match_str(size_t pos, const void *key, const void *ctx)
{
	const char (*names)[16] = ctx;

	return strcmp(names[pos], key) == 0;
}

START_TEST(test_strings_grow)
{
	static char names[5000][16];
	struct idxhash h;

	idxhash_init(&h);
	ck_assert_uint_eq(idxhash_find(&h, idxhash_str("x"), match_str, "x", names), IDXHASH_NONE);
	for (size_t i = 0; i < 5000; i++) {
		snprintf(names[i], sizeof(names[i]), "key%zu", i);
		ck_assert_uint_eq(idxhash_find(&h, idxhash_str(names[i]), match_str, names[i], names),
		                  IDXHASH_NONE);
		idxhash_add(&h, idxhash_str(names[i]), i);
	}
	ck_assert_uint_eq(h.n, 5000);
	ck_assert_uint_le(h.n * 2, h.cap);
	for (size_t i = 0; i < 5000; i++)
		ck_assert_uint_eq(idxhash_find(&h, idxhash_str(names[i]), match_str, names[i], names), i);
	ck_assert_uint_eq(idxhash_find(&h, idxhash_str("key5000"), match_str, "key5000", names),
	                  IDXHASH_NONE);
	idxhash_free(&h);
	ck_assert_uint_eq(h.cap, 0);
}
END_TEST

/* Every key hashes alike: the match function alone tells them apart. */
START_TEST(test_collisions)
{
	static char names[100][16];
	struct idxhash h;

	idxhash_init(&h);
	for (size_t i = 0; i < 100; i++) {
		snprintf(names[i], sizeof(names[i]), "c%zu", i);
		idxhash_add(&h, 42, i);
	}
	for (size_t i = 0; i < 100; i++)
		ck_assert_uint_eq(idxhash_find(&h, 42, match_str, names[i], names), i);
	ck_assert_uint_eq(idxhash_find(&h, 42, match_str, "c100", names), IDXHASH_NONE);
	ck_assert_uint_eq(idxhash_find(&h, 43, match_str, "c1", names), IDXHASH_NONE);
	idxhash_free(&h);
}
END_TEST

static bool
match_ptr(size_t pos, const void *key, const void *ctx)
{
	const int *const *ptrs = ctx;

	return ptrs[pos] == key;
}

START_TEST(test_pointers)
{
	int vals[64];
	const int *ptrs[64];
	struct idxhash h;

	idxhash_init(&h);
	for (size_t i = 0; i < 64; i++) {
		ptrs[i] = &vals[63 - i];
		idxhash_add(&h, idxhash_ptr(ptrs[i]), i);
	}
	for (size_t i = 0; i < 64; i++)
		ck_assert_uint_eq(idxhash_find(&h, idxhash_ptr(&vals[i]), match_ptr, &vals[i], ptrs),
		                  63 - i);
	idxhash_free(&h);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("idxhash");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_strings_grow);
	tcase_add_test(tc, test_collisions);
	tcase_add_test(tc, test_pointers);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
