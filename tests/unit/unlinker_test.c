/* Unit tests for queue/unlinker.c: files queued are unlinked on the
 * worker thread; flush waits; free unlinks what is left; bad names panic. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/unlinker.h"

static char dir[] = "/tmp/unlinker_test.XXXXXX";
static int dirfd_;

static void
make_files(int n)
{
	char name[32];

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		int fd = openat(dirfd_, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

		ck_assert_int_ge(fd, 0);
		close(fd);
	}
}

static int
count_files(int n)
{
	char name[32];
	int left = 0;

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		left += faccessat(dirfd_, name, F_OK, 0) == 0;
	}
	return left;
}

static void
setup(void)
{
	strcpy(dir, "/tmp/unlinker_test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(dirfd_, 0);
}

static void
teardown(void)
{
	close(dirfd_);
	rmdir(dir);
}

/* Queue f00000 .. f<n-1>, flushing after the one at flush_at (-1: none). */
static void
queue_files(struct unlinker *u, int n, int flush_at)
{
	char name[32];

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		unlinker_add(u, name);
		if (i == flush_at)
			unlinker_flush(u);
	}
}

START_TEST(test_flush)
{
	struct unlinker *u = unlinker_new(dirfd_);

	make_files(1000);
	queue_files(u, 1000, 400);	/* a flush in the middle too */
	unlinker_add(u, "not-there");		/* already gone: ignored */
	unlinker_flush(u);
	ck_assert_int_eq(count_files(1000), 0);
	unlinker_free(u);
}
END_TEST

START_TEST(test_free_drains)
{
	struct unlinker *u = unlinker_new(dirfd_);

	make_files(500);
	queue_files(u, 500, -1);
	unlinker_free(u);
	ck_assert_int_eq(count_files(500), 0);
	unlinker_free(NULL);
	/* never used: no thread, nothing to wait for */
	u = unlinker_new(dirfd_);
	unlinker_flush(u);
	unlinker_free(u);
}
END_TEST

START_TEST(test_bad_name)
{
	struct unlinker *u = unlinker_new(dirfd_);

	unlinker_add(u, _i == 0 ? "../etc/passwd" : "");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("unlinker");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_flush);
	tcase_add_test(tc, test_free_drains);
	tcase_add_loop_test_raise_signal(tc, test_bad_name, SIGABRT, 0, 2);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
