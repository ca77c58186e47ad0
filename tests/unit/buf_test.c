/* Unit tests for common/buf.c: bounds, growth, FIFO use. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

START_TEST(test_append_bounds)
{
	struct buf b;

	buf_init(&b, 8);
	ck_assert_int_eq(buf_append(&b, "12345", 5), BUF_OK);
	ck_assert_int_eq(buf_append(&b, "6789", 4), BUF_TOO_BIG);
	ck_assert_uint_eq(buf_len(&b), 5);	/* unchanged by the failed append */
	ck_assert_int_eq(buf_append(&b, "678", 3), BUF_OK);
	ck_assert_uint_eq(buf_len(&b), 8);
	ck_assert_int_eq(buf_append_char(&b, 'x'), BUF_TOO_BIG);
	ck_assert_str_eq(buf_cstr(&b), "12345678");
	buf_free(&b);
}
END_TEST

START_TEST(test_printf_and_consume)
{
	struct buf b;
	int i;

	buf_init(&b, 1 << 20);
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(buf_append_printf(&b, "%04d,", i), BUF_OK);
	ck_assert_uint_eq(buf_len(&b), 5000);
	buf_consume(&b, 4995);
	ck_assert_str_eq(buf_cstr(&b), "0999,");
	buf_consume(&b, 5);
	ck_assert_uint_eq(buf_len(&b), 0);
	buf_shrink(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_int_eq(buf_append_printf(&b, "%s", "again"), BUF_OK);
	ck_assert_str_eq(buf_cstr(&b), "again");
	buf_free(&b);
}
END_TEST

START_TEST(test_printf_too_big)
{
	struct buf b;

	buf_init(&b, 10);
	ck_assert_int_eq(buf_append_printf(&b, "%s", "0123456789A"), BUF_TOO_BIG);
	ck_assert_uint_eq(buf_len(&b), 0);
	ck_assert_int_eq(buf_append_printf(&b, "%s", "0123456789"), BUF_OK);
	buf_free(&b);
}
END_TEST

START_TEST(test_reserve_commit)
{
	struct buf b;
	char *p;

	buf_init(&b, 100);
	ck_assert_int_eq(buf_append(&b, "ab", 2), BUF_OK);
	p = buf_reserve(&b, 98);
	ck_assert_ptr_nonnull(p);
	memset(p, 'z', 3);
	buf_commit(&b, 3);
	ck_assert_str_eq(buf_cstr(&b), "abzzz");
	ck_assert_ptr_null(buf_reserve(&b, 96));	/* 5 + 96 > 100 */
	buf_free(&b);
}
END_TEST

/* Consuming from the front then appending must compact, not grow forever. */
START_TEST(test_fifo_compaction)
{
	struct buf b;
	size_t cap;
	int i;

	buf_init(&b, 4096);
	for (i = 0; i < 100000; i++) {
		ck_assert_int_eq(buf_append(&b, "0123456789", 10), BUF_OK);
		buf_consume(&b, 10 - (i % 2));
		if (buf_len(&b) > 1000)
			buf_consume(&b, buf_len(&b));
	}
	cap = b.cap;
	ck_assert_uint_le(cap, 4097);
	buf_free(&b);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_append_bounds);
	tcase_add_test(tc, test_printf_and_consume);
	tcase_add_test(tc, test_printf_too_big);
	tcase_add_test(tc, test_reserve_commit);
	tcase_add_test(tc, test_fifo_compaction);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
