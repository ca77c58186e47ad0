/* Unit tests for queue/envelope_expand.c: an address expansion stored as
 * envelope recipients (ORCPT, duplicates, command and file targets, what
 * cannot be stored). Expansions are built by hand. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "queue/agent_proto.h"
#include "queue/envelope_expand.h"

static void
push(struct addr_expansion *x, enum addr_target_kind kind, enum addr_class klass,
     const char *value, const char *owner)
{
	struct addr_target *t;

	x->v = realloc(x->v, (x->n + 1) * sizeof(*x->v));
	ck_assert_ptr_nonnull(x->v);
	t = &x->v[x->n++];
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->klass = klass;
	t->value = strdup(value);
	t->owner = owner != NULL ? strdup(owner) : NULL;
	if (kind == ADDR_TARGET_ERROR) {
		t->code = 550;
		strcpy(t->dsn, "5.1.1");
		t->text = strdup("unknown");
	}
}

/* An address that stays itself: no ORCPT is made up. */
START_TEST(test_unchanged)
{
	struct addr_expansion x;
	struct envelope env;

	addr_expansion_init(&x);
	envelope_init(&env);
	push(&x, ADDR_TARGET_ADDRESS, ADDR_CLASS_DEFAULT, "bob@example.net", NULL);
	ck_assert_ptr_null(envelope_expansion_unstorable(&x));
	ck_assert_uint_eq(envelope_add_expansion(&env, &x, "bob@example.net", NULL, 2), 1);
	ck_assert_str_eq(env.rcpts[0].addr, "bob@example.net");
	ck_assert_ptr_null(env.rcpts[0].orcpt);
	ck_assert_ptr_null(env.rcpts[0].target);
	ck_assert_uint_eq(env.rcpts[0].notify, 2);
	/* the same again, in another case: a duplicate */
	free(x.v[0].value);
	x.v[0].value = strdup("BOB@example.net");
	ck_assert_uint_eq(envelope_add_expansion(&env, &x, "BOB@example.net", NULL, 2), 0);
	ck_assert_uint_eq(env.nrcpt, 1);
	addr_expansion_free(&x);
	envelope_free(&env);
}
END_TEST

/* An alias: each member with the alias as ORCPT, commands and files as
 * their owner with the target beside it. */
START_TEST(test_alias)
{
	struct addr_expansion x;
	struct envelope env;

	addr_expansion_init(&x);
	envelope_init(&env);
	push(&x, ADDR_TARGET_ADDRESS, ADDR_CLASS_LOCAL, "alice@example.org", NULL);
	push(&x, ADDR_TARGET_COMMAND, ADDR_CLASS_LOCAL, "/usr/bin/procmail -a x", "list@example.org");
	push(&x, ADDR_TARGET_FILE, ADDR_CLASS_LOCAL, "/var/mail/archive", "list@example.org");
	push(&x, ADDR_TARGET_ERROR, ADDR_CLASS_LOCAL, "ghost@example.org", NULL);
	ck_assert_ptr_null(envelope_expansion_unstorable(&x));
	ck_assert_uint_eq(envelope_add_expansion(&env, &x, "List@example.org", NULL, 0), 4);
	ck_assert_str_eq(env.rcpts[0].addr, "alice@example.org");
	ck_assert_str_eq(env.rcpts[0].orcpt, "rfc822;List@example.org");
	ck_assert_str_eq(env.rcpts[1].addr, "list@example.org");
	ck_assert_str_eq(env.rcpts[1].target, "|/usr/bin/procmail -a x");
	ck_assert_str_eq(env.rcpts[2].addr, "list@example.org");
	ck_assert_str_eq(env.rcpts[2].target, "/var/mail/archive");
	ck_assert_str_eq(env.rcpts[3].addr, "ghost@example.org");	/* its agent bounces it */
	ck_assert_ptr_null(env.rcpts[3].target);
	/* a second RCPT to the same list adds nothing; a given ORCPT wins */
	ck_assert_uint_eq(envelope_add_expansion(&env, &x, "list@example.org", "rfc822;l@x", 0), 0);
	addr_expansion_free(&x);
	addr_expansion_init(&x);
	push(&x, ADDR_TARGET_ADDRESS, ADDR_CLASS_LOCAL, "carol@example.org", NULL);
	ck_assert_uint_eq(envelope_add_expansion(&env, &x, "team@example.org", "rfc822;t@x", 0), 1);
	ck_assert_str_eq(env.rcpts[4].orcpt, "rfc822;t@x");
	addr_expansion_free(&x);
	envelope_free(&env);
}
END_TEST

/* What no agent could take is refused before anything is added. */
START_TEST(test_unstorable)
{
	struct addr_expansion x;
	char *long_cmd = malloc(AGENT_TARGET_MAX + 1);

	memset(long_cmd, 'x', AGENT_TARGET_MAX);
	long_cmd[AGENT_TARGET_MAX - 1] = '\0';	/* "|" + this is one byte too many */
	addr_expansion_init(&x);
	push(&x, ADDR_TARGET_ADDRESS, ADDR_CLASS_LOCAL, "alice@example.org", NULL);
	push(&x, ADDR_TARGET_ERROR, ADDR_CLASS_DEFAULT, "x@remote.example", NULL);
	ck_assert_ptr_eq(envelope_expansion_unstorable(&x), &x.v[1]);
	ck_assert(!envelope_target_too_long(&x.v[1]));
	addr_expansion_free(&x);

	addr_expansion_init(&x);
	push(&x, ADDR_TARGET_COMMAND, ADDR_CLASS_LOCAL, long_cmd, "a@example.org");
	ck_assert_ptr_eq(envelope_expansion_unstorable(&x), &x.v[0]);
	ck_assert(envelope_target_too_long(&x.v[0]));
	x.v[0].value[AGENT_TARGET_MAX - 2] = '\0';	/* now it fits */
	ck_assert_ptr_null(envelope_expansion_unstorable(&x));
	free(x.v[0].owner);
	x.v[0].owner = NULL;				/* a command needs its owner */
	ck_assert_ptr_eq(envelope_expansion_unstorable(&x), &x.v[0]);
	addr_expansion_free(&x);
	free(long_cmd);
}
END_TEST

/* An original too long for an ORCPT goes without one. */
START_TEST(test_long_original)
{
	struct addr_expansion x;
	struct envelope env;
	char *orig = malloc(AGENT_ADDR_MAX);

	memset(orig, 'a', AGENT_ADDR_MAX - 1);
	orig[AGENT_ADDR_MAX - 1] = '\0';
	addr_expansion_init(&x);
	envelope_init(&env);
	push(&x, ADDR_TARGET_ADDRESS, ADDR_CLASS_LOCAL, "alice@example.org", NULL);
	ck_assert_uint_eq(envelope_add_expansion(&env, &x, orig, NULL, 0), 1);
	ck_assert_ptr_null(env.rcpts[0].orcpt);
	addr_expansion_free(&x);
	envelope_free(&env);
	free(orig);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("envelope_expand");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_unchanged);
	tcase_add_test(tc, test_alias);
	tcase_add_test(tc, test_unstorable);
	tcase_add_test(tc, test_long_original);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
