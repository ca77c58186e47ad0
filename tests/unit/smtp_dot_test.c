/* Unit tests for delivery/smtp_dot.c: one row per message, fed in pieces of
 * every size, into output buffers from tiny (drained after every call) to
 * roomy. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/smtp_dot.h"

struct dot_row {
	const char *in;
	const char *out;	/* what DATA sends, terminator included */
	unsigned seen;
	unsigned stuffed;
};

static const struct dot_row dot_rows[] = {
	{ "", ".\r\n", 0, 0 },
	{ "Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n.\r\n", 0, 0 },
	/* no final CR LF: one is added before the terminator */
	{ "body", "body\r\n.\r\n", 0, 0 },
	{ "a\r\nb", "a\r\nb\r\n.\r\n", 0, 0 },
	/* a leading dot is doubled, at the start and after every CR LF */
	{ ".\r\n", "..\r\n.\r\n", 0, 1 },
	{ ".", "..\r\n.\r\n", 0, 1 },
	{ "..\r\n", "...\r\n.\r\n", 0, 1 },
	{ "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n", 0, 1 },
	{ "a\r\n.b\r\n..c\r\n", "a\r\n..b\r\n...c\r\n.\r\n", 0, 2 },
	{ ".a\r\n.\r\n.", "..a\r\n..\r\n..\r\n.\r\n", 0, 3 },
	/* dots not at a line start stay single */
	{ "a.b\r\n x.\r\n", "a.b\r\n x.\r\n.\r\n", 0, 0 },
	/* the smuggling shapes: CR LF "." CR LF inside content is stuffed */
	{ "x\r\n.\r\nMAIL FROM:<a@b>\r\n", "x\r\n..\r\nMAIL FROM:<a@b>\r\n.\r\n", 0, 1 },
	/* bare LF: passed through, not a line start, flagged */
	{ "a\n.\r\n", "a\n.\r\n.\r\n", SMTP_DOT_BARE_LF, 0 },
	{ "\n.", "\n.\r\n.\r\n", SMTP_DOT_BARE_LF, 0 },
	{ "a\n", "a\n\r\n.\r\n", SMTP_DOT_BARE_LF, 0 },
	/* bare CR: passed through, not a line end, flagged */
	{ "a\r.\r\n", "a\r.\r\n.\r\n", SMTP_DOT_BARE_CR, 0 },
	{ "a\r\r\n.x\r\n", "a\r\r\n..x\r\n.\r\n", SMTP_DOT_BARE_CR, 1 },
	{ "a\r", "a\r\r\n.\r\n", SMTP_DOT_BARE_CR, 0 },
	{ "\r", "\r\r\n.\r\n", SMTP_DOT_BARE_CR, 0 },
	{ "\r\r\r\n", "\r\r\r\n.\r\n", SMTP_DOT_BARE_CR, 0 },
	{ "a\n\rb", "a\n\rb\r\n.\r\n", SMTP_DOT_BARE_LF | SMTP_DOT_BARE_CR, 0 },
	/* CR LF CR LF: two line ends, the second line empty */
	{ "\r\n\r\n.", "\r\n\r\n..\r\n.\r\n", 0, 1 },
	/* NUL and 8-bit bytes are content like any other */
	{ "\xff\x80 caf\xc3\xa9\r\n", "\xff\x80 caf\xc3\xa9\r\n.\r\n", 0, 0 },
};

/*
 * Run a message through a stuffer in pieces of step bytes into a buf of
 * at most outmax bytes, draining it into got whenever a call stops short.
 */
static void
dot_run(const char *in, size_t len, size_t step, size_t outmax, struct buf *got,
        struct smtp_dot *d)
{
	struct buf out;
	size_t pos = 0, n, took;
	bool sane = true;

	buf_init(&out, outmax);
	buf_reset(got);
	smtp_dot_init(d);
	/* Checked once at the end: Check reports every passing assertion
	 * through a pipe, too slow for a byte-at-a-time loop. */
	while (pos < len && sane) {
		n = len - pos < step ? len - pos : step;
		took = smtp_dot_feed(d, in + pos, n, &out);
		/* stopping short needs a full buffer (a "." needs two bytes) */
		sane = took <= n && (took == n || buf_room(&out) < 2) &&
		       (took > 0 || buf_len(&out) == 0) &&
		       buf_append(got, buf_data(&out), buf_len(&out)) == BUF_OK;
		pos += took;
		buf_reset(&out);
	}
	ck_assert_msg(sane, "step %zu outmax %zu: bad progress at %zu", step, outmax, pos);
	while (smtp_dot_finish(d, &out) != BUF_OK) {
		/* only when it cannot fit: nothing was appended */
		ck_assert_uint_eq(buf_len(&out), 0);
		ck_assert_uint_lt(outmax, SMTP_DOT_FINISH_MAX);
		outmax = SMTP_DOT_FINISH_MAX;
		buf_free(&out);
		buf_init(&out, outmax);
	}
	ck_assert_int_eq(buf_append(got, buf_data(&out), buf_len(&out)), BUF_OK);
	buf_free(&out);
}

START_TEST(test_rows)
{
	static const size_t outmaxes[] = { 2, 3, 5, 64, 1 << 16 };
	const struct dot_row *row = &dot_rows[_i];
	size_t len = strlen(row->in), step, m;
	struct smtp_dot d;
	struct buf got;

	buf_init(&got, 1 << 16);
	for (m = 0; m < sizeof(outmaxes) / sizeof(outmaxes[0]); m++) {
		for (step = 1; step <= (len ? len : 1); step++) {
			dot_run(row->in, len, step, outmaxes[m], &got, &d);
			ck_assert_msg(buf_len(&got) == strlen(row->out) &&
			                  memcmp(buf_data(&got), row->out, buf_len(&got)) == 0,
			              "row %d step %zu outmax %zu: got \"%.*s\"", _i, step, outmaxes[m],
			              (int)buf_len(&got), buf_data(&got));
			ck_assert_msg(d.seen == row->seen, "row %d: seen %#x want %#x", _i, d.seen,
			              row->seen);
			ck_assert_uint_eq(d.stuffed, row->stuffed);
			ck_assert_uint_eq(d.in, len);
		}
	}
	buf_free(&got);
}
END_TEST

/* A NUL is content: strlen-free rows. */
START_TEST(test_nul)
{
	static const char in[] = "a\0.\r\n\0";
	static const char want[] = "a\0.\r\n\0\r\n.\r\n";
	struct smtp_dot d;
	struct buf got;

	buf_init(&got, 64);
	dot_run(in, sizeof(in) - 1, 1, 64, &got, &d);
	ck_assert_uint_eq(buf_len(&got), sizeof(want) - 1);
	ck_assert(memcmp(buf_data(&got), want, sizeof(want) - 1) == 0);
	buf_free(&got);
}
END_TEST

/* A big message: every line starting with "." comes out with one more,
 * whatever the chunk boundaries, and nothing else changes. */
START_TEST(test_big)
{
	struct buf in, want, got;
	struct smtp_dot d;
	size_t i;
	static const size_t steps[] = { 1, 3, 4096, 65536 };

	buf_init(&in, 1 << 20);
	buf_init(&want, 1 << 20);
	buf_init(&got, 1 << 20);
	for (i = 0; i < 5000; i++) {
		ck_assert_int_eq(buf_append_printf(&in, "%sline %zu\r\n", i % 3 ? "" : ".", i), BUF_OK);
		ck_assert_int_eq(buf_append_printf(&want, "%sline %zu\r\n", i % 3 ? "" : "..", i),
		                 BUF_OK);
	}
	ck_assert_int_eq(buf_append_str(&want, ".\r\n"), BUF_OK);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		dot_run(buf_data(&in), buf_len(&in), steps[i], 1000, &got, &d);
		ck_assert_uint_eq(buf_len(&got), buf_len(&want));
		ck_assert(memcmp(buf_data(&got), buf_data(&want), buf_len(&want)) == 0);
		ck_assert_uint_eq(d.stuffed, 1667);
		ck_assert_uint_eq(d.seen, 0);
	}
	buf_free(&in);
	buf_free(&want);
	buf_free(&got);
}
END_TEST

/* A full output buffer takes nothing; a "." and its twin are atomic. */
START_TEST(test_full)
{
	struct smtp_dot d;
	struct buf out;

	smtp_dot_init(&d);
	buf_init(&out, 1);
	ck_assert_uint_eq(smtp_dot_feed(&d, ".x", 2, &out), 0);
	ck_assert_uint_eq(buf_len(&out), 0);
	buf_free(&out);
	buf_init(&out, 2);
	ck_assert_uint_eq(smtp_dot_feed(&d, ".x", 2, &out), 1);
	ck_assert(buf_len(&out) == 2 && memcmp(buf_data(&out), "..", 2) == 0);
	ck_assert_uint_eq(smtp_dot_feed(&d, "x", 1, &out), 0);
	ck_assert_int_eq(smtp_dot_finish(&d, &out), BUF_TOO_BIG);
	ck_assert_uint_eq(buf_len(&out), 2);
	buf_reset(&out);
	ck_assert_uint_eq(smtp_dot_feed(&d, "x", 1, &out), 1);
	buf_free(&out);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("smtp_dot");
	TCase *tc = tcase_create("rows");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_rows, 0, (int)(sizeof(dot_rows) / sizeof(dot_rows[0])));
	tcase_add_test(tc, test_nul);
	tcase_add_test(tc, test_big);
	tcase_add_test(tc, test_full);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
