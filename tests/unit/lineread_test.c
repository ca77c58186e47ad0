/* Unit tests for common/lineread.c: one row per input, every split point. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lineread.h"

struct lr_row {
	const char *input;
	size_t max;
	/* The expected events: "L:text" a CRLF line, "B:text" a bare-LF line,
	 * "T" too long; separated by '|'. Trailing partial input is not
	 * reported. */
	const char *expect;
};

static const struct lr_row lr_rows[] = {
	{ "HELO a\r\n", 64, "L:HELO a" },
	{ "A\r\nB\nC\r\n", 64, "L:A|B:B|L:C" },
	{ "\r\n\n", 64, "L:|B:" },
	{ "partial", 64, "" },
	{ "12345678\r\n", 10, "L:12345678" },		/* exactly max with CRLF */
	{ "123456789\r\nX\r\n", 10, "T|L:X" },	/* one over */
	{ "0123456789012345678901234567890123456789\r\nNEXT\r\n", 8, "T|L:NEXT" },
	{ "a\rb\r\n", 64, "L:a\rb" },			/* bare CR stays in the line */
	{ "\r\r\n", 64, "L:\r" },
};

/* Feed input in pieces of step bytes; collect events. */
static void
lr_run(const struct lr_row *row, size_t step, char *out, size_t outsz)
{
	struct lineread lr;
	struct lineread_line line;
	struct buf in;
	size_t pos = 0, n, len = strlen(row->input), o = 0;
	enum lineread_result r;

	buf_init(&in, 1 << 16);
	lineread_init(&lr, row->max);
	out[0] = '\0';
	while (pos < len) {
		n = len - pos < step ? len - pos : step;
		ck_assert_int_eq(buf_append(&in, row->input + pos, n), BUF_OK);
		pos += n;
		for (;;) {
			r = lineread_next(&lr, &in, &line);
			if (r == LINEREAD_NEED_MORE)
				break;
			if (o > 0)
				o += (size_t)snprintf(out + o, outsz - o, "|");
			if (r == LINEREAD_TOO_LONG) {
				o += (size_t)snprintf(out + o, outsz - o, "T");
				continue;
			}
			o += (size_t)snprintf(out + o, outsz - o, "%c:%.*s", line.crlf ? 'L' : 'B',
			    (int)line.len, line.p);
			lineread_consume(&lr, &in);
		}
	}
	buf_free(&in);
}

START_TEST(test_rows)
{
	const struct lr_row *row = &lr_rows[_i];
	char got[1024];
	size_t step;

	for (step = 1; step <= strlen(row->input); step++) {
		lr_run(row, step, got, sizeof(got));
		ck_assert_msg(strcmp(got, row->expect) == 0, "row %d step %zu: got \"%s\" want \"%s\"",
		    _i, step, got, row->expect);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("lineread");
	TCase *tc = tcase_create("rows");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_rows, 0, (int)(sizeof(lr_rows) / sizeof(lr_rows[0])));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
