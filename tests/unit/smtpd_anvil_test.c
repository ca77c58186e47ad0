/*
 * Unit tests for smtpd_anvil (the table behind the anvil(8) limits) with
 * an injected clock: fixed windows, keys, session counts, expiry, the cap
 * on entries; and the exception lists of smtpd_ratelimit, from a loaded
 * configuration. The limits on a real ternd are tests/e2e/smtpd_anvil_test.py.
 *
 * Each scenario is a table of steps, one row per call and its expected
 * outcome, run against one table.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "config/config.h"
#include "smtpd/smtpd_anvil.h"
#include "smtpd/smtpd_ratelimit.h"

enum op { CONNECT, DISCONNECT, EVENT, PEEK, EXPIRE, UNIT };

#define C SMTPD_ANVIL_CLIENT
#define U SMTPD_ANVIL_USER
#define MAIL SMTPD_ANVIL_MAIL
#define RCPT SMTPD_ANVIL_RCPT
#define NEWTLS SMTPD_ANVIL_NEWTLS
#define AUTH SMTPD_ANVIL_AUTH

struct step {
	enum op op;
	int64_t t;		/* ms; UNIT: the new unit */
	enum smtpd_anvil_space space;
	unsigned listener;
	const char *name;
	enum smtpd_anvil_event ev;
	unsigned count;		/* CONNECT: expected count */
	unsigned rate;		/* CONNECT, EVENT, PEEK: expected rate; EXPIRE: removed */
	size_t size;		/* entries after the step */
};

struct scenario {
	const char *what;
	size_t max;
	int64_t unit;
	const struct step *steps;
	size_t n;
	uint64_t evicted, untracked;	/* smtpd_anvil_take_overflow() at the end */
};

/* A fixed window per key, opened by its first event (Postfix's anvil):
 * a sliding window would give 3 at t=1900 (900, 1000, 1900). */
static const struct step window_steps[] = {
	{ EVENT, 0, C, 1, "192.0.2.1", MAIL, 0, 1, 1 },
	{ EVENT, 10, C, 1, "192.0.2.1", MAIL, 0, 2, 1 },
	{ EVENT, 900, C, 1, "192.0.2.1", MAIL, 0, 3, 1 },
	{ EVENT, 999, C, 1, "192.0.2.1", RCPT, 0, 1, 1 },
	{ PEEK, 999, C, 1, "192.0.2.1", MAIL, 0, 3, 1 },
	{ EVENT, 1000, C, 1, "192.0.2.1", MAIL, 0, 1, 1 },
	{ PEEK, 1000, C, 1, "192.0.2.1", RCPT, 0, 0, 1 },
	{ EVENT, 1900, C, 1, "192.0.2.1", MAIL, 0, 2, 1 },
	{ EVENT, 1999, C, 1, "192.0.2.1", AUTH, 0, 1, 1 },
	{ EVENT, 2000, C, 1, "192.0.2.1", AUTH, 0, 1, 1 },
	/* peeking counts nothing and makes no entry */
	{ PEEK, 2000, C, 1, "192.0.2.1", NEWTLS, 0, 0, 1 },
	{ PEEK, 2000, C, 1, "192.0.2.1", NEWTLS, 0, 0, 1 },
	{ PEEK, 2000, C, 1, "192.0.2.99", MAIL, 0, 0, 1 },
	{ EVENT, 2001, C, 1, "192.0.2.1", NEWTLS, 0, 1, 1 },
	{ PEEK, 2002, C, 1, "192.0.2.1", NEWTLS, 0, 1, 1 },
};

/* Who is who: a client per (listener, address), a login per name with
 * no regard to case, a client and a login never the same. */
static const struct step key_steps[] = {
	{ EVENT, 0, C, 1, "192.0.2.1", MAIL, 0, 1, 1 },
	{ EVENT, 0, C, 2, "192.0.2.1", MAIL, 0, 1, 2 },
	{ EVENT, 0, C, 1, "192.0.2.1", MAIL, 0, 2, 2 },
	{ EVENT, 0, C, 1, "192.0.2.10", MAIL, 0, 1, 3 },
	{ EVENT, 0, U, 1, "Bob", MAIL, 0, 1, 4 },
	{ EVENT, 0, U, 2, "bob", MAIL, 0, 2, 4 },
	{ EVENT, 0, U, 3, "BOB", RCPT, 0, 1, 4 },
	{ EVENT, 0, C, 1, "bob", MAIL, 0, 1, 5 },
	{ EVENT, 0, U, 1, "bob@example.org", MAIL, 0, 1, 6 },
	{ EVENT, 0, C, 1, "2001:db8::1", MAIL, 0, 1, 7 },
};

/* Sessions: the count is what is open now, the rate what opened in the
 * window; an entry lives while a session is open, whatever its window. */
static const struct step session_steps[] = {
	{ CONNECT, 0, C, 1, "192.0.2.1", 0, 1, 1, 1 },
	{ CONNECT, 1, C, 1, "192.0.2.1", 0, 2, 2, 1 },
	{ CONNECT, 2, C, 1, "192.0.2.1", 0, 3, 3, 1 },
	{ DISCONNECT, 3, C, 1, "192.0.2.1", 0, 0, 0, 1 },
	{ CONNECT, 4, C, 1, "192.0.2.1", 0, 3, 4, 1 },
	{ CONNECT, 5, C, 2, "192.0.2.1", 0, 1, 1, 2 },
	/* the windows end; the sessions keep the entries */
	{ EXPIRE, 1005, C, 0, NULL, 0, 0, 0, 2 },
	/* closed with no window open: forgotten at once */
	{ DISCONNECT, 1006, C, 2, "192.0.2.1", 0, 0, 0, 1 },
	{ CONNECT, 1007, C, 1, "192.0.2.1", 0, 4, 1, 1 },
	{ DISCONNECT, 1008, C, 1, "192.0.2.1", 0, 0, 0, 1 },
	{ DISCONNECT, 1008, C, 1, "192.0.2.1", 0, 0, 0, 1 },
	{ DISCONNECT, 1008, C, 1, "192.0.2.1", 0, 0, 0, 1 },
	{ DISCONNECT, 1008, C, 1, "192.0.2.1", 0, 0, 0, 1 },
	/* idle, its window open until 2007 */
	{ EXPIRE, 2006, C, 0, NULL, 0, 0, 0, 1 },
	{ PEEK, 2006, C, 1, "192.0.2.1", SMTPD_ANVIL_CONNECT, 0, 1, 1 },
	{ EXPIRE, 2007, C, 0, NULL, 0, 0, 1, 0 },
	/* a disconnect never seen connecting is ignored */
	{ DISCONNECT, 2008, C, 1, "192.0.2.1", 0, 0, 0, 0 },
	/* a session open past its window, closed with no window: forgotten at once */
	{ CONNECT, 3000, C, 1, "192.0.2.2", 0, 1, 1, 1 },
	{ EXPIRE, 4000, C, 0, NULL, 0, 0, 0, 1 },
	{ DISCONNECT, 4001, C, 1, "192.0.2.2", 0, 0, 0, 0 },
};

/* Expiry goes by window, oldest first, and also happens on any call. */
static const struct step expire_steps[] = {
	{ EVENT, 0, C, 1, "192.0.2.1", MAIL, 0, 1, 1 },
	{ EVENT, 500, C, 1, "192.0.2.2", MAIL, 0, 1, 2 },
	{ EVENT, 700, U, 0, "alice", RCPT, 0, 1, 3 },
	{ EXPIRE, 999, C, 0, NULL, 0, 0, 0, 3 },
	{ EXPIRE, 1000, C, 0, NULL, 0, 0, 1, 2 },
	/* in its window at 1400: counted there */
	{ EVENT, 1400, C, 1, "192.0.2.2", MAIL, 0, 2, 2 },
	/* at 1500 its window has ended: a new one */
	{ EVENT, 1500, C, 1, "192.0.2.2", MAIL, 0, 1, 2 },
	/* any call expires: alice's window ended at 1700 */
	{ PEEK, 1700, C, 1, "192.0.2.3", MAIL, 0, 0, 1 },
	{ EXPIRE, 2499, C, 0, NULL, 0, 0, 0, 1 },
	{ EXPIRE, 2500, C, 0, NULL, 0, 0, 1, 0 },
};

/* A reload's new unit: open windows keep their start. */
static const struct step unit_steps[] = {
	{ EVENT, 0, C, 1, "192.0.2.1", MAIL, 0, 1, 1 },
	{ UNIT, 5000, C, 0, NULL, 0, 0, 0, 1 },
	{ EVENT, 3000, C, 1, "192.0.2.1", MAIL, 0, 2, 1 },
	{ EXPIRE, 4999, C, 0, NULL, 0, 0, 0, 1 },
	{ EVENT, 5000, C, 1, "192.0.2.1", MAIL, 0, 1, 1 },
	{ UNIT, 100, C, 0, NULL, 0, 0, 0, 1 },
	{ EVENT, 5100, C, 1, "192.0.2.1", MAIL, 0, 1, 1 },
};

/* Full (2 entries): the idle entry with the oldest window goes first. */
static const struct step evict_steps[] = {
	{ EVENT, 0, C, 1, "192.0.2.1", MAIL, 0, 1, 1 },
	{ EVENT, 1, C, 1, "192.0.2.2", MAIL, 0, 1, 2 },
	{ EVENT, 2, C, 1, "192.0.2.1", MAIL, 0, 2, 2 },
	{ EVENT, 3, C, 1, "192.0.2.3", MAIL, 0, 1, 2 },
	/* 192.0.2.1 (window since 0) was forgotten, .2 is still there */
	{ PEEK, 4, C, 1, "192.0.2.2", MAIL, 0, 1, 2 },
	{ PEEK, 4, C, 1, "192.0.2.1", MAIL, 0, 0, 2 },
	/* a client with a session open is never the one forgotten */
	{ CONNECT, 5, C, 1, "192.0.2.2", 0, 1, 1, 2 },
	{ EVENT, 6, C, 1, "192.0.2.4", MAIL, 0, 1, 2 },
	{ PEEK, 7, C, 1, "192.0.2.2", MAIL, 0, 1, 2 },
	{ PEEK, 7, C, 1, "192.0.2.3", MAIL, 0, 0, 2 },
};

/* Full of clients with sessions open: the newcomer is not counted. */
static const struct step busy_steps[] = {
	{ CONNECT, 0, C, 1, "192.0.2.1", 0, 1, 1, 1 },
	{ CONNECT, 1, C, 1, "192.0.2.2", 0, 1, 1, 2 },
	{ CONNECT, 2, C, 1, "192.0.2.3", 0, 0, 0, 2 },
	{ EVENT, 3, U, 0, "bob", MAIL, 0, 0, 2 },
	/* known clients go on being counted */
	{ CONNECT, 4, C, 1, "192.0.2.1", 0, 2, 2, 2 },
	{ DISCONNECT, 5, C, 1, "192.0.2.3", 0, 0, 0, 2 },
	/* an entry whose last session closed can make room again */
	{ DISCONNECT, 6, C, 1, "192.0.2.2", 0, 0, 0, 2 },
	{ EVENT, 7, U, 0, "bob", MAIL, 0, 1, 2 },
};

#define SCEN(what, max, unit, steps, ev, un) \
	{ what, max, unit, steps, sizeof(steps) / sizeof(steps[0]), ev, un }

static const struct scenario scenarios[] = {
	SCEN("window", 100, 1000, window_steps, 0, 0),
	SCEN("keys", 100, 1000, key_steps, 0, 0),
	SCEN("sessions", 100, 1000, session_steps, 0, 0),
	SCEN("expiry", 100, 1000, expire_steps, 0, 0),
	SCEN("unit", 100, 1000, unit_steps, 0, 0),
	SCEN("evict", 2, 1000, evict_steps, 2, 0),
	SCEN("busy", 2, 1000, busy_steps, 1, 2),
};

START_TEST(test_scenario)
{
	const struct scenario *sc = &scenarios[_i];
	struct smtpd_anvil *a = smtpd_anvil_new(sc->max, sc->unit);
	uint64_t evicted, untracked;
	size_t i;

	for (i = 0; i < sc->n; i++) {
		const struct step *st = &sc->steps[i];
		struct smtpd_anvil_key k = { st->space, st->listener, st->name };
		unsigned count = 0, rate = 0;
		size_t removed;

		switch (st->op) {
		case CONNECT:
			smtpd_anvil_connect(a, st->t, &k, &count, &rate);
			ck_assert_msg(count == st->count && rate == st->rate,
			    "%s step %zu: count %u rate %u, want %u %u", sc->what, i, count, rate,
			    st->count, st->rate);
			break;
		case DISCONNECT:
			smtpd_anvil_disconnect(a, st->t, &k);
			break;
		case EVENT:
			ck_assert_int_eq(smtpd_anvil_event(a, st->t, &k, st->ev, &rate),
			    st->rate > 0 ? SMTPD_ANVIL_OK : SMTPD_ANVIL_UNTRACKED);
			ck_assert_msg(rate == st->rate, "%s step %zu: rate %u, want %u", sc->what, i,
			    rate, st->rate);
			break;
		case PEEK:
			rate = smtpd_anvil_peek(a, st->t, &k, st->ev);
			ck_assert_msg(rate == st->rate, "%s step %zu: peek %u, want %u", sc->what, i,
			    rate, st->rate);
			break;
		case EXPIRE:
			removed = smtpd_anvil_expire(a, st->t);
			ck_assert_msg(removed == st->rate, "%s step %zu: expired %zu, want %u", sc->what,
			    i, removed, st->rate);
			break;
		case UNIT:
			smtpd_anvil_set_unit(a, st->t);
			break;
		}
		ck_assert_msg(smtpd_anvil_size(a) == st->size, "%s step %zu: %zu entries, want %zu",
		    sc->what, i, smtpd_anvil_size(a), st->size);
	}
	ck_assert_int_eq(smtpd_anvil_take_overflow(a, &evicted, &untracked),
	    sc->evicted > 0 || sc->untracked > 0);
	ck_assert_uint_eq(evicted, sc->evicted);
	ck_assert_uint_eq(untracked, sc->untracked);
	ck_assert(!smtpd_anvil_take_overflow(a, &evicted, &untracked));
	smtpd_anvil_free(a);
}
END_TEST

/* An UNTRACKED connect reports 0/0 and status UNTRACKED. */
START_TEST(test_untracked_connect)
{
	struct smtpd_anvil *a = smtpd_anvil_new(1, 1000);
	struct smtpd_anvil_key k1 = { C, 1, "192.0.2.1" }, k2 = { C, 1, "192.0.2.2" };
	unsigned count, rate;

	ck_assert_int_eq(smtpd_anvil_connect(a, 0, &k1, &count, &rate), SMTPD_ANVIL_OK);
	ck_assert_int_eq(smtpd_anvil_connect(a, 0, &k2, &count, &rate), SMTPD_ANVIL_UNTRACKED);
	ck_assert_uint_eq(count, 0);
	ck_assert_uint_eq(rate, 0);
	smtpd_anvil_free(a);
}
END_TEST

/* Names are cut at SMTPD_ANVIL_NAME_MAX: two that differ only past it
 * are one key (a login that long is refused by AUTH anyway). */
START_TEST(test_long_name)
{
	struct smtpd_anvil *a = smtpd_anvil_new(10, 1000);
	char n1[SMTPD_ANVIL_NAME_MAX + 10], n2[SMTPD_ANVIL_NAME_MAX + 10];
	struct smtpd_anvil_key k1 = { U, 0, n1 }, k2 = { U, 0, n2 };
	unsigned rate;

	memset(n1, 'a', sizeof(n1) - 1);
	n1[sizeof(n1) - 1] = '\0';
	memcpy(n2, n1, sizeof(n2));
	n2[sizeof(n2) - 2] = 'b';
	smtpd_anvil_event(a, 0, &k1, MAIL, &rate);
	smtpd_anvil_event(a, 0, &k2, MAIL, &rate);
	ck_assert_uint_eq(rate, 2);
	ck_assert_uint_eq(smtpd_anvil_size(a), 1);
	smtpd_anvil_free(a);
}
END_TEST

/* Many keys through a small table: the size never passes its cap. */
START_TEST(test_cap_holds)
{
	struct smtpd_anvil *a = smtpd_anvil_new(64, 1000);
	char name[32];
	unsigned rate, i;

	for (i = 0; i < 5000; i++) {
		struct smtpd_anvil_key k = { C, 1, name };

		snprintf(name, sizeof(name), "10.0.%u.%u", i / 256, i % 256);
		ck_assert_int_eq(smtpd_anvil_event(a, i / 10, &k, RCPT, &rate), SMTPD_ANVIL_OK);
		ck_assert_uint_eq(rate, 1);
		ck_assert_uint_le(smtpd_anvil_size(a), 64);
	}
	smtpd_anvil_free(a);
}
END_TEST

/* anvil(8)'s peaks: client keys only, reset once taken. */
START_TEST(test_peaks)
{
	struct smtpd_anvil *a = smtpd_anvil_new(10, 1000);
	struct smtpd_anvil_key c1 = { C, 2, "192.0.2.1" }, c2 = { C, 1, "192.0.2.2" };
	struct smtpd_anvil_key u = { U, 0, "bob" };
	struct smtpd_anvil_peak p;
	unsigned count, rate, i;

	ck_assert(!smtpd_anvil_take_peak(a, SMTPD_ANVIL_STAT_MAIL_RATE, &p));
	for (i = 0; i < 5; i++)
		smtpd_anvil_event(a, 10, &u, MAIL, &rate);
	ck_assert(!smtpd_anvil_take_peak(a, SMTPD_ANVIL_STAT_MAIL_RATE, &p));
	smtpd_anvil_event(a, 20, &c1, MAIL, &rate);
	smtpd_anvil_event(a, 30, &c2, MAIL, &rate);
	smtpd_anvil_event(a, 40, &c2, MAIL, &rate);
	smtpd_anvil_connect(a, 50, &c1, &count, &rate);
	smtpd_anvil_connect(a, 60, &c1, &count, &rate);
	smtpd_anvil_event(a, 70, &c1, RCPT, &rate);
	ck_assert(smtpd_anvil_take_peak(a, SMTPD_ANVIL_STAT_MAIL_RATE, &p));
	ck_assert_uint_eq(p.value, 2);
	ck_assert_int_eq(p.when, 40);
	ck_assert_uint_eq(p.listener, 1);
	ck_assert_str_eq(p.name, "192.0.2.2");
	ck_assert(!smtpd_anvil_take_peak(a, SMTPD_ANVIL_STAT_MAIL_RATE, &p));
	ck_assert(smtpd_anvil_take_peak(a, SMTPD_ANVIL_STAT_COUNT, &p));
	ck_assert_uint_eq(p.value, 2);
	ck_assert_int_eq(p.when, 60);
	ck_assert_str_eq(p.name, "192.0.2.1");
	ck_assert_uint_eq(p.listener, 2);
	ck_assert(smtpd_anvil_take_peak(a, SMTPD_ANVIL_STAT_CONNECT_RATE, &p));
	ck_assert_uint_eq(p.value, 2);
	ck_assert(smtpd_anvil_take_peak(a, SMTPD_ANVIL_STAT_RCPT_RATE, &p));
	ck_assert_uint_eq(p.value, 1);
	ck_assert_int_eq(p.when, 70);
	ck_assert(smtpd_anvil_take_peak(a, SMTPD_ANVIL_STAT_SIZE, &p));
	ck_assert_uint_eq(p.value, 3);
	ck_assert_int_eq(p.when, 30);
	ck_assert_str_eq(p.name, "");
	ck_assert(!smtpd_anvil_take_peak(a, SMTPD_ANVIL_STAT_SIZE, &p));
	smtpd_anvil_free(a);
}
END_TEST

/* ---- the exception lists (smtpd_ratelimit) ---- */

/* config_load() of text, written to a file of its own; errors appended. */
static struct config *
try_load(const char *text, struct buf *errors)
{
	char path[64];
	struct config *cfg;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/anvil_test.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	cfg = config_load(path, errors);
	unlink(path);
	return cfg;
}

static struct config *
load(const char *text)
{
	struct buf errors;
	struct config *cfg;

	buf_init(&errors, 65536);
	cfg = try_load(text, &errors);
	ck_assert_msg(cfg != NULL, "%s", buf_cstr(&errors));
	buf_free(&errors);
	return cfg;
}

static const char exceptions_conf[] =
	"myhostname = tern.test\n"
	"mynetworks = 10.0.0.0/8\n"
	"smtpd_client_event_limit_exceptions = 192.0.2.0/24 [2001:db8::]/32\n"
	"submission_smtpd_client_event_limit_exceptions = 198.51.100.7\n"
	"smtpd_sasl_user_rate_limit_exceptions = Alice, bob@example.org\n"
	"submission_smtpd_sasl_user_rate_limit_exceptions =\n";

static const struct {
	enum config_listener l;
	const char *addr;
	bool excepted;
} client_rows[] = {
	{ CONFIG_LISTENER_SMTP, "192.0.2.1", true },
	{ CONFIG_LISTENER_SMTP, "192.0.2.255", true },
	{ CONFIG_LISTENER_SMTP, "192.0.3.1", false },
	{ CONFIG_LISTENER_SMTP, "10.1.2.3", false },	/* not $mynetworks once set */
	{ CONFIG_LISTENER_SMTP, "2001:db8:1::5", true },
	{ CONFIG_LISTENER_SMTP, "2001:db9::5", false },
	{ CONFIG_LISTENER_SMTP, "198.51.100.7", false },
	{ CONFIG_LISTENER_SMTPS, "192.0.2.1", true },
	{ CONFIG_LISTENER_SUBMISSION, "198.51.100.7", true },
	{ CONFIG_LISTENER_SUBMISSION, "198.51.100.8", false },
	{ CONFIG_LISTENER_SUBMISSION, "192.0.2.1", false },
	{ CONFIG_LISTENER_REINJECT, "127.0.0.1", true },
	{ CONFIG_LISTENER_REINJECT, "192.0.2.1", false },
	{ CONFIG_LISTENER_SMTP, "not-an-address", true },
	{ CONFIG_LISTENER_SMTP, "", true },
};

START_TEST(test_client_exceptions)
{
	struct config *cfg = load(exceptions_conf);

	ck_assert_msg(smtpd_ratelimit_client_excepted(cfg, client_rows[_i].l, client_rows[_i].addr) ==
	    client_rows[_i].excepted, "row %d: %s", _i, client_rows[_i].addr);
	config_free(cfg);
}
END_TEST

static const struct {
	enum config_listener l;
	const char *login;
	bool excepted;
} login_rows[] = {
	{ CONFIG_LISTENER_SMTP, "alice", true },
	{ CONFIG_LISTENER_SMTP, "ALICE", true },
	{ CONFIG_LISTENER_SMTP, "alice2", false },
	{ CONFIG_LISTENER_SMTP, "bob@example.org", true },
	{ CONFIG_LISTENER_SMTP, "bob", false },
	{ CONFIG_LISTENER_SMTPS, "Alice", true },
	{ CONFIG_LISTENER_SUBMISSION, "alice", false },
};

START_TEST(test_login_exceptions)
{
	struct config *cfg = load(exceptions_conf);

	ck_assert_msg(smtpd_ratelimit_login_excepted(cfg, login_rows[_i].l, login_rows[_i].login) ==
	    login_rows[_i].excepted, "row %d: %s", _i, login_rows[_i].login);
	config_free(cfg);
}
END_TEST

/* The default is $mynetworks (Postfix's, less the connection-limit
 * exceptions it falls back from). */
START_TEST(test_default_exceptions)
{
	struct config *cfg = load("myhostname = tern.test\nmynetworks = 192.0.2.0/25\n");

	ck_assert(smtpd_ratelimit_client_excepted(cfg, CONFIG_LISTENER_SMTP, "192.0.2.5"));
	ck_assert(!smtpd_ratelimit_client_excepted(cfg, CONFIG_LISTENER_SMTP, "192.0.2.200"));
	ck_assert(!smtpd_ratelimit_client_excepted(cfg, CONFIG_LISTENER_SMTP, "127.0.0.1"));
	ck_assert_uint_eq(config_lint(cfg, CONFIG_LISTENER_SMTP, P_SMTPD_CLIENT_CONNECTION_COUNT_LIMIT),
	    50);
	ck_assert_int_eq(config_time(cfg, P_ANVIL_RATE_TIME_UNIT), 60);
	ck_assert_uint_eq(config_lint(cfg, CONFIG_LISTENER_SMTP, P_SMTPD_CLIENT_MESSAGE_RATE_LIMIT), 0);
	config_free(cfg);
}
END_TEST

/* A bad mynetworks is reported once (at its line), not again through the
 * default $mynetworks; a bad value of the parameter itself has its line. */
static const struct {
	const char *text;
	const char *want;	/* in the errors, after the file name */
	unsigned lines;		/* error lines in all */
} bad_rows[] = {
	{ "mynetworks = 10.0.0.0/33\n", ":2: mynetworks: bad network", 1 },
	{ "smtpd_client_event_limit_exceptions = 10.0.0.0/33\n",
	  ":2: smtpd_client_event_limit_exceptions: bad network", 1 },
	{ "mynetworks = 10.0.0.0/33\nsmtpd_client_event_limit_exceptions = $mynetworks\n",
	  ":3: smtpd_client_event_limit_exceptions: bad network", 2 },
	{ "smtpd_client_connection_count_limit = many\n",
	  ":2: smtpd_client_connection_count_limit: ", 1 },
	{ "anvil_rate_time_unit = soon\n", ":2: anvil_rate_time_unit: ", 1 },
};

START_TEST(test_bad_values)
{
	char text[256];
	struct buf errors;
	const char *e;
	unsigned lines = 0;

	snprintf(text, sizeof(text), "myhostname = tern.test\n%s", bad_rows[_i].text);
	buf_init(&errors, 65536);
	ck_assert_ptr_null(try_load(text, &errors));
	ck_assert_msg(strstr(buf_cstr(&errors), bad_rows[_i].want) != NULL, "row %d: %s", _i,
	    buf_cstr(&errors));
	for (e = buf_cstr(&errors); *e != '\0'; e++)
		lines += *e == '\n';
	ck_assert_msg(lines == bad_rows[_i].lines, "row %d: %u lines: %s", _i, lines,
	    buf_cstr(&errors));
	buf_free(&errors);
}
END_TEST

static Suite *
anvil_suite(void)
{
	Suite *s = suite_create("smtpd_anvil");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_scenario, 0, (int)(sizeof(scenarios) / sizeof(scenarios[0])));
	tcase_add_test(tc, test_untracked_connect);
	tcase_add_test(tc, test_long_name);
	tcase_add_test(tc, test_cap_holds);
	tcase_add_test(tc, test_peaks);
	tcase_add_loop_test(tc, test_client_exceptions, 0,
	                    (int)(sizeof(client_rows) / sizeof(client_rows[0])));
	tcase_add_loop_test(tc, test_login_exceptions, 0,
	                    (int)(sizeof(login_rows) / sizeof(login_rows[0])));
	tcase_add_test(tc, test_default_exceptions);
	tcase_add_loop_test(tc, test_bad_values, 0, (int)(sizeof(bad_rows) / sizeof(bad_rows[0])));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(anvil_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
