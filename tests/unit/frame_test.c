/* Unit tests for common/frame.c: round trips and strict decoding. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/frame.h"

static void
encode_sample(struct buf *out)
{
	size_t start = frame_begin(out, FRAME_CHILD_RELOADED);

	frame_put_u64(out, 0x0102030405060708ULL);
	frame_put_str(out, "hello");
	frame_put_bytes(out, "", 0);
	ck_assert_int_eq(frame_end(out, start), FRAME_OK);
}

START_TEST(test_round_trip)
{
	struct frame_reader r;
	struct buf out;
	size_t flen;
	uint64_t v;
	char s[16];
	const char *p;
	size_t n;

	buf_init(&out, 4096);
	encode_sample(&out);
	ck_assert_int_eq(frame_parse(buf_data(&out), buf_len(&out), &r, &flen), FRAME_OK);
	ck_assert_uint_eq(flen, buf_len(&out));
	ck_assert_int_eq(r.type, FRAME_CHILD_RELOADED);
	ck_assert_int_eq(frame_get_u64(&r, &v), 0);
	ck_assert(v == 0x0102030405060708ULL);
	ck_assert_int_eq(frame_get_end(&r), -1);	/* fields left */
	ck_assert_int_eq(frame_get_str(&r, s, sizeof(s)), 0);
	ck_assert_str_eq(s, "hello");
	ck_assert_int_eq(frame_get_bytes(&r, &p, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(frame_get_end(&r), 0);
	ck_assert_int_eq(frame_get_u64(&r, &v), -1);	/* nothing more */
	buf_free(&out);
}
END_TEST

/* Every prefix of a frame is "need more"; nothing shorter decodes. */
START_TEST(test_prefixes)
{
	struct frame_reader r;
	struct buf out;
	size_t flen, i;

	buf_init(&out, 4096);
	encode_sample(&out);
	for (i = 0; i < buf_len(&out); i++)
		ck_assert_int_eq(frame_parse(buf_data(&out), i, &r, &flen), FRAME_NEED_MORE);
	buf_free(&out);
}
END_TEST

START_TEST(test_wrong_kind_and_bounds)
{
	struct frame_reader r;
	struct buf out;
	size_t flen, start;
	uint64_t v;
	char s[4];

	buf_init(&out, 4096);
	start = frame_begin(&out, FRAME_QUEUE_NEW);
	frame_put_str(&out, "toolong");
	frame_end(&out, start);
	ck_assert_int_eq(frame_parse(buf_data(&out), buf_len(&out), &r, &flen), FRAME_OK);
	ck_assert_int_eq(frame_get_u64(&r, &v), -1);		/* a string, not a u64 */
	ck_assert_int_eq(frame_get_str(&r, s, sizeof(s)), -1);	/* does not fit */
	ck_assert_uint_eq(r.pos, 0);				/* and did not move */
	buf_free(&out);
}
END_TEST

START_TEST(test_hostile_headers)
{
	struct frame_reader r;
	size_t flen;
	/* Length past FRAME_PAYLOAD_MAX. */
	unsigned char big[8] = { 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff };
	/* Reserved bytes not zero. */
	unsigned char resv[8] = { 0, 1, 0, 1, 0, 0, 0, 0 };
	/* A string whose length runs past the payload. */
	unsigned char lie[8 + 5 + 2] = { 0, 1, 0, 0, 0, 0, 0, 7, FRAME_FIELD_BYTES, 0, 0, 0, 200, 'a', 'b' };
	/* A string with a NUL inside. */
	unsigned char nul[8 + 5 + 3] = { 0, 1, 0, 0, 0, 0, 0, 8, FRAME_FIELD_BYTES, 0, 0, 0, 3, 'a', 0, 'b' };
	const char *p;
	size_t n;
	char s[8];
	char *dup = NULL;

	ck_assert_int_eq(frame_parse(big, sizeof(big), &r, &flen), FRAME_BAD);
	ck_assert_int_eq(frame_parse(resv, sizeof(resv), &r, &flen), FRAME_BAD);
	ck_assert_int_eq(frame_parse(lie, sizeof(lie), &r, &flen), FRAME_OK);
	ck_assert_int_eq(frame_get_bytes(&r, &p, &n), -1);
	ck_assert_int_eq(frame_parse(nul, sizeof(nul), &r, &flen), FRAME_OK);
	ck_assert_int_eq(frame_get_str(&r, s, sizeof(s)), -1);
	ck_assert_int_eq(frame_get_strdup(&r, &dup), -1);
	ck_assert_ptr_null(dup);
	ck_assert_int_eq(frame_get_bytes(&r, &p, &n), 0);	/* as bytes it is fine */
	ck_assert_uint_eq(n, 3);
}
END_TEST

/* frame_write_all delivers a frame that does not fit the socket buffer at
 * once, waiting while the reader catches up. */
START_TEST(test_write_all)
{
	struct frame_reader r;
	struct buf out, in;
	size_t start, flen;
	const char *p;
	size_t n;
	char *big = malloc(1 << 20);
	int sv[2], status;
	pid_t pid;

	memset(big, 'x', 1 << 20);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	buf_init(&out, 2 << 20);
	start = frame_begin(&out, FRAME_QUEUE_NEW);
	frame_put_bytes(&out, big, 1 << 20);
	frame_end(&out, start);
	pid = fork();
	if (pid == 0) {
		close(sv[1]);
		_exit(frame_write_all(sv[0], &out, 5000) == 0 && buf_len(&out) == 0 ? 0 : 1);
	}
	close(sv[0]);
	buf_init(&in, 4 << 20);
	while (frame_parse(buf_data(&in), buf_len(&in), &r, &flen) == FRAME_NEED_MORE) {
		ssize_t got = buf_read_fd(&in, sv[1], 65536);

		if (got < 0)
			usleep(1000);
		else
			ck_assert_int_gt(got, 0);
	}
	ck_assert_int_eq(frame_get_bytes(&r, &p, &n), 0);
	ck_assert_uint_eq(n, 1 << 20);
	ck_assert_int_eq(frame_get_end(&r), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	buf_free(&in);
	buf_free(&out);
	free(big);
	close(sv[1]);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_prefixes);
	tcase_add_test(tc, test_wrong_kind_and_bounds);
	tcase_add_test(tc, test_hostile_headers);
	tcase_add_test(tc, test_write_all);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
