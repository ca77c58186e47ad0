/* Unit tests for queue/qstore.c: record codecs and the LMDB tables. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "queue/qstore.h"

static void
sample_rcpt(struct qstore_rcpt *r)
{
	qstore_rcpt_init(r);
	r->state = QSTORE_DEFERRED;
	r->attempts = 3;
	r->first_failure = 1700000000;
	r->last_attempt = 1700000900;
	r->next_attempt = 1700001800;
	r->smtp_code = 452;
	snprintf(r->err_class, sizeof(r->err_class), "rcpt_4xx");
	snprintf(r->enh, sizeof(r->enh), "4.2.2");
	snprintf(r->text, sizeof(r->text), "452 4.2.2 <b@example.org>: mailbox full");
	snprintf(r->relay, sizeof(r->relay), "mx.example.org[192.0.2.7]:25");
}

START_TEST(test_rcpt_round_trip)
{
	struct qstore_rcpt a, b;
	struct buf out;
	char err[128];

	sample_rcpt(&a);
	buf_init(&out, 4096);
	ck_assert_int_eq(qstore_rcpt_encode(&a, &out), BUF_OK);
	ck_assert_int_eq(qstore_rcpt_decode(buf_data(&out), buf_len(&out), &b, err, sizeof(err)), 0);
	ck_assert_mem_eq(&a, &b, sizeof(a));
	buf_free(&out);
}
END_TEST

/* Every shorter prefix of a record is an error (never a crash), except
 * prefixes that end exactly between fields: those decode to a record with
 * fewer fields, which the version rules allow. */
START_TEST(test_rcpt_truncations)
{
	struct qstore_rcpt a, b;
	struct buf out;
	char err[128];
	size_t i;
	int bad = 0;

	sample_rcpt(&a);
	buf_init(&out, 4096);
	ck_assert_int_eq(qstore_rcpt_encode(&a, &out), BUF_OK);
	for (i = 0; i < buf_len(&out); i++)
		bad += qstore_rcpt_decode(buf_data(&out), i, &b, err, sizeof(err)) < 0;
	ck_assert_int_gt(bad, (int)buf_len(&out) - 12);
	buf_free(&out);
}
END_TEST

START_TEST(test_hostile_records)
{
	struct qstore_rcpt r;
	struct qstore_msg m;
	struct retry_record rec;
	char err[128];
	/* state 9 is out of range */
	static const unsigned char bad_state[] = { 'T', 'Q', 'R', 'C', 0, 1, 1, 0, 0, 0, 1, 9 };
	/* version 2 */
	static const unsigned char bad_version[] = { 'T', 'Q', 'R', 'C', 0, 2 };
	/* a string with a NUL */
	static const unsigned char nul[] = { 'T', 'Q', 'R', 'C', 0, 1, 7, 0, 0, 0, 3, 'a', 0, 'b' };
	/* an unknown tag is skipped */
	static const unsigned char unknown[] = { 'T', 'Q', 'R', 'C', 0, 1, 200, 0, 0, 0, 2, 'x', 'y' };
	/* a message record read as a recipient record */
	static const unsigned char wrong_kind[] = { 'T', 'Q', 'M', 'S', 0, 1 };
	/* a u64 of the wrong length */
	static const unsigned char short_u64[] = { 'T', 'Q', 'R', 'T', 0, 1, 1, 0, 0, 0, 2, 1, 2 };
	/* a flag of value 2 */
	static const unsigned char bad_flag[] = { 'T', 'Q', 'M', 'S', 0, 1, 1, 0, 0, 0, 1, 2 };

	ck_assert_int_eq(qstore_rcpt_decode(bad_state, sizeof(bad_state), &r, err, sizeof(err)), -1);
	ck_assert_int_eq(qstore_rcpt_decode(bad_version, sizeof(bad_version), &r, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "version"));
	ck_assert_int_eq(qstore_rcpt_decode(nul, sizeof(nul), &r, err, sizeof(err)), -1);
	ck_assert_int_eq(qstore_rcpt_decode(unknown, sizeof(unknown), &r, err, sizeof(err)), 0);
	ck_assert_int_eq(r.state, QSTORE_PENDING);
	ck_assert_int_eq(qstore_rcpt_decode(wrong_kind, sizeof(wrong_kind), &r, err, sizeof(err)), -1);
	ck_assert_int_eq(qstore_retry_decode(short_u64, sizeof(short_u64), &rec, err, sizeof(err)), -1);
	ck_assert_int_eq(qstore_msg_decode(bad_flag, sizeof(bad_flag), &m, err, sizeof(err)), -1);
}
END_TEST

/* Random byte flips never crash a decoder. */
START_TEST(test_fuzz)
{
	struct qstore_rcpt a, b;
	struct buf out;
	char err[128], copy[2048];
	int i;

	sample_rcpt(&a);
	buf_init(&out, 4096);
	ck_assert_int_eq(qstore_rcpt_encode(&a, &out), BUF_OK);
	srand(11);
	for (i = 0; i < 20000; i++) {
		memcpy(copy, buf_data(&out), buf_len(&out));
		copy[rand() % buf_len(&out)] = (char)rand();
		copy[rand() % buf_len(&out)] = (char)rand();
		(void)qstore_rcpt_decode(copy, buf_len(&out) - (size_t)(rand() % 3), &b, err, sizeof(err));
		ck_assert(b.state <= QSTORE_EXPIRED);
	}
	buf_free(&out);
}
END_TEST

/* ---- the LMDB side ---- */

struct world {
	char dir[64];
	struct spool *sp;
	struct qstore *qs;
};

static void
world_open(struct world *w)
{
	char err[256];
	struct spool_options opt;

	snprintf(w->dir, sizeof(w->dir), "/tmp/qstore-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(w->dir));
	ck_assert_int_eq(spool_prepare(w->dir, getuid(), getgid(), err, sizeof(err)), 0);
	memset(&opt, 0, sizeof(opt));
	opt.map_size = 64 * 1024;	/* tiny: the batches must grow it */
	w->sp = spool_open(w->dir, &opt, err, sizeof(err));
	ck_assert_msg(w->sp != NULL, "%s", err);
	w->qs = qstore_open(w->sp, err, sizeof(err));
	ck_assert_msg(w->qs != NULL, "%s", err);
}

static void
world_close(struct world *w)
{
	char cmd[128];

	qstore_close(w->qs);
	spool_close(w->sp);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A committed message with n recipients; its id into id. */
static void
add_message(struct world *w, int n, char id[SPOOL_ID_SIZE])
{
	struct envelope env;
	struct spool_msg *m;
	char err[256], addr[64];
	int i;

	m = spool_msg_create(w->sp, err, sizeof(err));
	ck_assert_ptr_nonnull(m);
	snprintf(id, SPOOL_ID_SIZE, "%s", spool_msg_id(m));
	ck_assert_int_eq(spool_msg_write(m, "Subject: x\r\n\r\nx\r\n", 17), SPOOL_OK);
	envelope_init(&env);
	envelope_set(&env.sender, "a@example.org");
	for (i = 0; i < n; i++) {
		snprintf(addr, sizeof(addr), "r%d@example.net", i);
		envelope_add_rcpt(&env, addr, NULL, 0);
	}
	ck_assert_int_eq(spool_msg_commit_sync(w->sp, m, &env, err, sizeof(err)), SPOOL_OK);
	envelope_free(&env);
}

struct walk_count {
	int n;
	char last_id[SPOOL_ID_SIZE];
	uint32_t last_idx;
	int out_of_order;
};

static int
walk_cb(void *arg, const char *id, uint32_t idx, const struct qstore_rcpt *r)
{
	struct walk_count *c = arg;
	int cmp = strcmp(id, c->last_id);

	(void)r;
	if (c->n > 0 && (cmp < 0 || (cmp == 0 && idx <= c->last_idx)))
		c->out_of_order++;
	snprintf(c->last_id, sizeof(c->last_id), "%s", id);
	c->last_idx = idx;
	c->n++;
	return 0;
}

START_TEST(test_batch_and_walk)
{
	struct world w;
	struct qstore_batch b;
	struct qstore_rcpt r, got;
	struct qstore_msg m = { true, false, 1700000000 }, gotm;
	struct retry_record rec = { 10, 20, 30, true }, gotr;
	struct walk_count c = { 0, "", 0, 0 };
	char ids[40][SPOOL_ID_SIZE], err[256];
	int i, j;

	world_open(&w);
	qstore_batch_init(&b);
	sample_rcpt(&r);
	/* 40 messages x 300 recipients: enough to grow the 64 KiB map. */
	for (i = 0; i < 40; i++) {
		add_message(&w, 2, ids[i]);
		for (j = 0; j < 300; j++)
			qstore_batch_put_rcpt(&b, ids[i], (uint32_t)(299 - j), &r);
	}
	qstore_batch_put_msg(&b, ids[0], &m);
	qstore_batch_put_retry(&b, "T:mx.example.org:192.0.2.7", &rec);
	ck_assert_int_eq(qstore_batch_commit(w.qs, &b, err, sizeof(err)), SPOOL_OK);
	qstore_batch_free(&b);

	ck_assert_int_eq(qstore_rcpt_get(w.qs, ids[3], 7, &got, err, sizeof(err)), SPOOL_OK);
	ck_assert_mem_eq(&got, &r, sizeof(r));
	ck_assert_int_eq(qstore_rcpt_get(w.qs, ids[3], 300, &got, err, sizeof(err)), SPOOL_NOTFOUND);
	ck_assert_int_eq(qstore_msg_get(w.qs, ids[0], &gotm, err, sizeof(err)), SPOOL_OK);
	ck_assert(gotm.held && !gotm.warned && gotm.first_seen == 1700000000);
	ck_assert_int_eq(qstore_msg_get(w.qs, ids[1], &gotm, err, sizeof(err)), SPOOL_NOTFOUND);
	ck_assert_int_eq(qstore_retry_get(w.qs, "T:mx.example.org:192.0.2.7", &gotr, err, sizeof(err)),
	    SPOOL_OK);
	ck_assert(gotr.first_failed == 10 && gotr.last_try == 20 && gotr.next_try == 30 && gotr.expired);

	ck_assert_int_eq(qstore_walk_rcpts(w.qs, walk_cb, &c, err, sizeof(err)), SPOOL_OK);
	ck_assert_int_eq(c.n, 40 * 300);
	ck_assert_int_eq(c.out_of_order, 0);
	world_close(&w);
}
END_TEST

/* Removing a message takes its envelope, recipient and flag records in
 * one transaction, then its file; other messages keep theirs. */
START_TEST(test_remove_message)
{
	struct world w;
	struct qstore_batch b;
	struct qstore_rcpt r, got;
	struct qstore_msg m = { false, true, 5 };
	struct envelope env;
	struct walk_count c = { 0, "", 0, 0 };
	char a[SPOOL_ID_SIZE], z[SPOOL_ID_SIZE], path[512], err[256];

	world_open(&w);
	add_message(&w, 3, a);
	add_message(&w, 3, z);
	sample_rcpt(&r);
	qstore_batch_init(&b);
	for (uint32_t i = 0; i < 3; i++) {
		qstore_batch_put_rcpt(&b, a, i, &r);
		qstore_batch_put_rcpt(&b, z, i, &r);
	}
	qstore_batch_put_msg(&b, a, &m);
	ck_assert_int_eq(qstore_batch_commit(w.qs, &b, err, sizeof(err)), SPOOL_OK);
	qstore_batch_free(&b);

	qstore_batch_init(&b);
	qstore_batch_remove_message(&b, a);
	qstore_batch_del_retry(&b, "R:nobody@example.org");	/* absent: fine */
	ck_assert_int_eq(qstore_batch_commit(w.qs, &b, err, sizeof(err)), SPOOL_OK);
	qstore_batch_free(&b);

	envelope_init(&env);
	ck_assert_int_eq(spool_envelope_get(w.sp, a, &env, err, sizeof(err)), SPOOL_NOTFOUND);
	ck_assert_int_eq(spool_envelope_get(w.sp, z, &env, err, sizeof(err)), SPOOL_OK);
	envelope_free(&env);
	ck_assert_int_eq(qstore_rcpt_get(w.qs, a, 0, &got, err, sizeof(err)), SPOOL_NOTFOUND);
	ck_assert_int_eq(qstore_msg_get(w.qs, a, &m, err, sizeof(err)), SPOOL_NOTFOUND);
	ck_assert_int_eq(qstore_rcpt_get(w.qs, z, 2, &got, err, sizeof(err)), SPOOL_OK);
	ck_assert_int_eq(qstore_walk_rcpts(w.qs, walk_cb, &c, err, sizeof(err)), SPOOL_OK);
	ck_assert_int_eq(c.n, 3);
	/* The file goes on the unlinker's thread. */
	qstore_unlink_wait(w.qs);
	ck_assert_int_eq(spool_msg_path(w.sp, a, path, sizeof(path)), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(spool_msg_path(w.sp, z, path, sizeof(path)), 0);
	ck_assert_int_eq(access(path, F_OK), 0);
	world_close(&w);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("qstore");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	log_open("qstore_test", 0, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_rcpt_round_trip);
	tcase_add_test(tc, test_rcpt_truncations);
	tcase_add_test(tc, test_hostile_records);
	tcase_add_test(tc, test_fuzz);
	tcase_add_test(tc, test_batch_and_walk);
	tcase_add_test(tc, test_remove_message);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
