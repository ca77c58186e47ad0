/*
 * Unit tests for smtpd_restrict: the parse errors of restriction lists
 * (FILE:LINE), access(5) actions, the relay decision for every classic
 * trick, HELO name checks, client address keys, and the evaluation of
 * whole stages (order, smtpd_delay_reject, warn_if_reject,
 * defer_if_permit, access maps) on a real configuration. Only rules that
 * need no network are evaluated here; DNS, DNSBL and policy services are
 * exercised by tests/e2e/smtpd_restrict_test.py (DNS lists and DNS
 * access maps by tests/unit/smtpd_dnsbl_test.c and smtpd_dnsaccess_test.c).
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/evloop.h"
#include "common/mailaddr.h"
#include "config/config.h"
#include "smtpd/smtpd_restrict.h"

struct tmp {
	char dir[64];
	char path[128];
};

static void
tmp_conf(struct tmp *t, const char *text)
{
	FILE *f;

	snprintf(t->dir, sizeof(t->dir), "/tmp/tern-restrict-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/tern.conf", t->dir);
	f = fopen(t->path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void
tmp_file(struct tmp *t, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t->dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void
tmp_free(struct tmp *t)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* ---- parse errors ---- */

static const struct {
	const char *line;
	const char *message;	/* expected in the error text, after FILE:3: */
} parse_rows[] = {
	{ "smtpd_recipient_restrictions = permit_mynetwork, reject", "unknown restriction" },
	{ "smtpd_recipient_restrictions = permit_mynetwork, reject", "did you mean \"permit_mynetworks\"" },
	{ "smtpd_client_restrictions = reject_rbl_client", "missing argument" },
	{ "smtpd_client_restrictions = reject_rbl_client bad..zone", "bad argument" },
	{ "smtpd_client_restrictions = reject_rbl_client zen.example=1.2.3", "bad argument" },
	{ "smtpd_recipient_restrictions = check_policy_service tcp:1.2.3.4:9", "bad argument" },
	{ "smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:0", "bad argument" },
	{ "smtpd_sender_restrictions = check_sender_access /etc/access", "bad argument" },
	{ "smtpd_helo_restrictions = check_helo_access", "missing argument" },
	{ "smtpd_data_restrictions = reject_unauth_pipelining, warn_if_reject", "must be followed" },
	{ "smtpd_end_of_data_restrictions = sleep forever", "bad argument" },
	{ "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destinations", "unknown restriction" },
	{ "smtpd_sender_restrictions = reject_rhsbl_sender", "missing argument" },
	{ "smtpd_client_restrictions = permit_dnswl_client wl.test=127.0.[0..3", "bad argument" },
	{ "smtpd_client_restrictions = reject_rhsbl_client rhs.test=127.0.0.[9..2]", "bad argument" },
	{ "smtpd_sender_restrictions = check_sender_mx_access badmx", "bad argument" },
	{ "smtpd_helo_restrictions = check_helo_a_acess texthash:/x", "did you mean \"check_helo_a_access\"" },
};

START_TEST(test_parse_errors)
{
	struct tmp t;
	struct buf errors;
	char text[512], where[160];
	struct config *cfg;

	snprintf(text, sizeof(text), "# test\nmyhostname = tern.test\n%s\n", parse_rows[_i].line);
	tmp_conf(&t, text);
	buf_init(&errors, 65536);
	cfg = config_load(t.path, &errors);
	ck_assert_ptr_null(cfg);
	snprintf(where, sizeof(where), "%s:3: ", t.path);
	ck_assert_msg(strstr(buf_cstr(&errors), where) != NULL, "no FILE:LINE in %s", buf_cstr(&errors));
	ck_assert_msg(strstr(buf_cstr(&errors), parse_rows[_i].message) != NULL,
	    "row %d: \"%s\" not in %s", _i, parse_rows[_i].message, buf_cstr(&errors));
	buf_free(&errors);
	tmp_free(&t);
}
END_TEST

/* ---- access(5) actions ---- */

static const struct {
	const char *value;
	enum smtpd_action_kind kind;
	int code;
	const char *dsn;
	const char *text;
} action_rows[] = {
	{ "OK", SMTPD_ACTION_OK, 0, "", "" },
	{ "ok", SMTPD_ACTION_OK, 0, "", "" },
	{ "1234", SMTPD_ACTION_OK, 0, "", "" },
	{ "DUNNO", SMTPD_ACTION_DUNNO, 0, "", "" },
	{ "  dunno", SMTPD_ACTION_DUNNO, 0, "", "" },
	{ "REJECT", SMTPD_ACTION_REJECT, 0, "", "" },
	{ "REJECT go away", SMTPD_ACTION_REJECT, 0, "", "go away" },
	{ "reject 5.7.0 go away", SMTPD_ACTION_REJECT, 0, "5.7.0", "go away" },
	{ "DEFER later", SMTPD_ACTION_DEFER, 0, "", "later" },
	{ "450 4.2.0 Greylisted", SMTPD_ACTION_DEFER, 450, "4.2.0", "Greylisted" },
	{ "550 no", SMTPD_ACTION_REJECT, 550, "", "no" },
	{ "554", SMTPD_ACTION_REJECT, 554, "", "" },
	{ "250 fine", SMTPD_ACTION_BAD, 250, "", "fine" },
	{ "defer_if_permit Greylisted, see http://x/", SMTPD_ACTION_DEFER_IF_PERMIT, 0, "",
	  "Greylisted, see http://x/" },
	{ "DEFER_IF_REJECT 4.7.1 try", SMTPD_ACTION_DEFER_IF_REJECT, 0, "4.7.1", "try" },
	{ "PREPEND X-Greylist: delayed 5 seconds", SMTPD_ACTION_PREPEND, 0, "",
	  "X-Greylist: delayed 5 seconds" },
	{ "PREPEND", SMTPD_ACTION_BAD, 0, "", "" },
	{ "DISCARD spam", SMTPD_ACTION_DISCARD, 0, "", "spam" },
	{ "WARN look", SMTPD_ACTION_WARN, 0, "", "look" },
	{ "INFO fyi", SMTPD_ACTION_INFO, 0, "", "fyi" },
	{ "HOLD", SMTPD_ACTION_HOLD, 0, "", "" },
	{ "HOLD look at it", SMTPD_ACTION_HOLD, 0, "", "look at it" },
	{ "FILTER smtp:[127.0.0.1]:10025", SMTPD_ACTION_FILTER, 0, "", "smtp:[127.0.0.1]:10025" },
	{ "filter lmtp:unix:/run/f", SMTPD_ACTION_FILTER, 0, "", "lmtp:unix:/run/f" },
	{ "FILTER", SMTPD_ACTION_BAD, 0, "", "" },
	{ "REDIRECT a@b", SMTPD_ACTION_REDIRECT, 0, "", "a@b" },
	{ "REDIRECT 5.7.1@b", SMTPD_ACTION_REDIRECT, 0, "", "5.7.1@b" },
	{ "REDIRECT", SMTPD_ACTION_BAD, 0, "", "" },
	{ "BCC archive@example.org", SMTPD_ACTION_BCC, 0, "", "archive@example.org" },
	{ "BCC", SMTPD_ACTION_BAD, 0, "", "" },
	{ "permit_mynetworks", SMTPD_ACTION_BAD, 0, "", "" },
	{ "REJECT 5.7 not a dsn", SMTPD_ACTION_REJECT, 0, "", "5.7 not a dsn" },
	{ "", SMTPD_ACTION_BAD, 0, "", "" },
};

START_TEST(test_actions)
{
	struct smtpd_action a;

	smtpd_restrict_action_parse(action_rows[_i].value, &a);
	ck_assert_msg(a.kind == action_rows[_i].kind, "row %d \"%s\": kind %d", _i,
	    action_rows[_i].value, a.kind);
	if (a.kind == SMTPD_ACTION_BAD) {
		ck_assert_ptr_nonnull(a.why);
		return;
	}
	ck_assert_int_eq(a.code, action_rows[_i].code);
	ck_assert_str_eq(a.dsn, action_rows[_i].dsn);
	ck_assert_str_eq(a.text, action_rows[_i].text);
}
END_TEST

/* ---- the relay decision ---- */

static const struct {
	const char *path;
	enum smtpd_relay_decision want;
} relay_rows[] = {
	{ "<user@tern.test>", SMTPD_RELAY_AUTH },
	{ "<user@TERN.TEST>", SMTPD_RELAY_AUTH },		/* case */
	{ "<user@tern.test.>", SMTPD_RELAY_AUTH },		/* one trailing dot */
	{ "<user@relayed.test>", SMTPD_RELAY_AUTH },		/* relay_domains */
	{ "<user@sub.parent.test>", SMTPD_RELAY_AUTH },		/* .parent.test */
	{ "<user@parent.test>", SMTPD_RELAY_FOREIGN },		/* .x is subdomains only */
	{ "<Postmaster>", SMTPD_RELAY_AUTH },
	{ "<user@other.test>", SMTPD_RELAY_FOREIGN },
	{ "<user@tern.test.other.test>", SMTPD_RELAY_FOREIGN },	/* suffix trick */
	{ "<user@othertern.test>", SMTPD_RELAY_FOREIGN },
	{ "<user%other.test@tern.test>", SMTPD_RELAY_ROUTED },	/* % hack */
	{ "<user%tern.test@tern.test>", SMTPD_RELAY_ROUTED },
	{ "<other.test!user@tern.test>", SMTPD_RELAY_ROUTED },	/* bang path */
	{ "<@tern.test:user@other.test>", SMTPD_RELAY_ROUTED },	/* source route */
	{ "<@other.test:user@tern.test>", SMTPD_RELAY_ROUTED },
	{ "<@a.test,@b.test:user@tern.test>", SMTPD_RELAY_ROUTED },
	{ "<\"user@other.test\"@tern.test>", SMTPD_RELAY_ROUTED },	/* quoted @ */
	{ "<\"user%other.test\"@tern.test>", SMTPD_RELAY_ROUTED },
	{ "<\"user\\@other.test\"@tern.test>", SMTPD_RELAY_ROUTED },	/* escaped @ */
	{ "<\"john doe\"@tern.test>", SMTPD_RELAY_AUTH },	/* quoting alone is fine */
	{ "<user@[192.0.2.1]>", SMTPD_RELAY_LITERAL },		/* IP literal */
	{ "<user@[127.0.0.1]>", SMTPD_RELAY_LITERAL },
	{ "<user@[IPv6:::1]>", SMTPD_RELAY_LITERAL },
};

START_TEST(test_relay)
{
	struct tmp t;
	struct buf errors;
	struct config *cfg;
	struct mailaddr a;
	const char *why = NULL;
	size_t used;
	enum mailaddr_result r;

	tmp_conf(&t, "myhostname = tern.test\nmydestination = tern.test\n"
	    "relay_domains = relayed.test, .parent.test\n");
	buf_init(&errors, 65536);
	cfg = config_load(t.path, &errors);
	ck_assert_msg(cfg != NULL, "%s", buf_cstr(&errors));
	r = mailaddr_parse_path(relay_rows[_i].path, strlen(relay_rows[_i].path),
	    MAILADDR_ALLOW_POSTMASTER, &a, &used, &why);
	ck_assert_msg(r == MAILADDR_OK, "%s: %s", relay_rows[_i].path, why);
	ck_assert_msg(smtpd_restrict_relay_decide(cfg, NULL, &a) == relay_rows[_i].want,
	    "%s: %d, want %d", relay_rows[_i].path, smtpd_restrict_relay_decide(cfg, NULL, &a),
	    relay_rows[_i].want);
	config_free(cfg);
	buf_free(&errors);
	tmp_free(&t);
}
END_TEST

/* Tricks the address parser refuses before any relay decision. */
START_TEST(test_relay_syntax)
{
	static const char *const bad[] = {
		"<user@other.test@tern.test>", "<user@tern.test..>", "<user@@tern.test>",
		"<user@tern.test:other.test>", "<user@[192.0.2.1>",
	};
	struct mailaddr a;
	const char *why;
	size_t used, i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(mailaddr_parse_path(bad[i], strlen(bad[i]), MAILADDR_ALLOW_POSTMASTER,
		    &a, &used, &why) != MAILADDR_OK, "%s parsed", bad[i]);
}
END_TEST

/* ---- HELO names and client keys ---- */

START_TEST(test_helo)
{
	ck_assert(smtpd_restrict_helo_valid("mail.example.org"));
	ck_assert(smtpd_restrict_helo_valid("mail.example.org."));
	ck_assert(smtpd_restrict_helo_valid("localhost"));
	ck_assert(smtpd_restrict_helo_valid("[192.0.2.1]"));
	ck_assert(smtpd_restrict_helo_valid("[IPv6:2001:db8::1]"));
	ck_assert(smtpd_restrict_helo_valid("192.0.2.1"));
	ck_assert(!smtpd_restrict_helo_valid("bad..name"));
	ck_assert(!smtpd_restrict_helo_valid("-bad.example"));
	ck_assert(!smtpd_restrict_helo_valid("bad name"));
	ck_assert(!smtpd_restrict_helo_valid("[300.1.1.1]"));
	ck_assert(!smtpd_restrict_helo_valid(""));
	ck_assert(smtpd_restrict_helo_fqdn("mail.example.org"));
	ck_assert(smtpd_restrict_helo_fqdn("[192.0.2.1]"));
	ck_assert(!smtpd_restrict_helo_fqdn("localhost"));
	ck_assert(!smtpd_restrict_helo_fqdn("localhost."));
	ck_assert(!smtpd_restrict_helo_fqdn("bad..name"));
}
END_TEST

START_TEST(test_client_keys)
{
	char keys[8][64];
	size_t n;

	n = smtpd_restrict_client_keys("192.0.2.10", keys, 8);
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(keys[0], "192.0.2.10");
	ck_assert_str_eq(keys[1], "192.0.2");
	ck_assert_str_eq(keys[2], "192.0");
	ck_assert_str_eq(keys[3], "192");
	n = smtpd_restrict_client_keys("2001:db8::1", keys, 8);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(keys[0], "2001:db8::1");
	ck_assert_str_eq(keys[1], "2001:db8");
	ck_assert_str_eq(keys[2], "2001");
	ck_assert_uint_eq(smtpd_restrict_client_keys("", keys, 8), 0);
}
END_TEST

/* ---- whole stages ---- */

struct stage_row {
	const char *name;
	const char *conf;	/* added to the configuration */
	const char *client;	/* client address */
	const char *helo;
	const char *sender;	/* NULL: no MAIL yet */
	const char *rcpt;	/* NULL: no RCPT */
	enum smtpd_restrict_stage stage;
	bool pipelined;
	enum smtpd_verdict want;
	const char *reply;	/* expected prefix of "CODE TEXT", or NULL */
};


#define UNKNOWN_CLIENT "smtpd_client_restrictions = reject_unknown_client_hostname\n" \
	"unknown_client_reject_code = 550\n"
#define UNKNOWN_REVERSE "smtpd_client_restrictions = reject_unknown_reverse_client_hostname\n" \
	"unknown_client_reject_code = 550\n"

static const struct stage_row stage_rows[] = {
	{ "default relay denied", "", "192.0.2.1", "c.test", "a@x.test", "v@other.test",
	  SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_REJECT, "554 5.7.1 <v@other.test>: Relay access denied" },
	{ "default local ok", "", "192.0.2.1", "c.test", "a@x.test", "v@tern.test",
	  SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_PERMIT, NULL },
	{ "mynetworks relays", "", "127.0.0.5", "c.test", "a@x.test", "v@other.test",
	  SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_PERMIT, NULL },
	{ "% hack refused", "", "192.0.2.1", "c.test", "a@x.test", "v%other.test@tern.test",
	  SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_REJECT, "554 5.7.1 <v%other.test@tern.test>: Relay access denied" },
	{ "delayed client reject at RCPT", "smtpd_client_restrictions = reject\n", "192.0.2.1",
	  "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_REJECT,
	  "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied" },
	{ "delayed: nothing at CONNECT", "smtpd_client_restrictions = reject\n", "192.0.2.1",
	  "", NULL, NULL, SMTPD_RESTRICT_CONNECT, false, SMTPD_VERDICT_PERMIT, NULL },
	{ "not delayed: CONNECT rejects", "smtpd_delay_reject = no\nsmtpd_client_restrictions = reject\n",
	  "192.0.2.1", "", NULL, NULL, SMTPD_RESTRICT_CONNECT, false, SMTPD_VERDICT_REJECT,
	  "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected" },
	{ "not delayed: client list skipped at RCPT",
	  "smtpd_delay_reject = no\nsmtpd_client_restrictions = reject\n", "192.0.2.1", "c.test",
	  "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_PERMIT, NULL },
	{ "not delayed: HELO check", "smtpd_delay_reject = no\nsmtpd_helo_restrictions = reject_non_fqdn_helo_hostname\n",
	  "192.0.2.1", "localhost", NULL, NULL, SMTPD_RESTRICT_HELO, false, SMTPD_VERDICT_REJECT,
	  "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname" },
	{ "permit ends only its list", "smtpd_client_restrictions = permit\n"
	  "smtpd_sender_restrictions = reject\n", "192.0.2.1", "c.test", "a@x.test", "v@tern.test",
	  SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_REJECT, "554 5.7.1 <a@x.test>: Sender address rejected" },
	{ "order: first match wins", "smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination, reject\n",
	  "127.0.0.1", "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_PERMIT, NULL },
	{ "order: reject after", "smtpd_recipient_restrictions = reject_unauth_destination, reject\n",
	  "127.0.0.1", "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_REJECT, "554 5.7.1 <v@tern.test>: Recipient address rejected: Access denied" },
	{ "warn_if_reject", "smtpd_recipient_restrictions = warn_if_reject, reject\n", "192.0.2.1",
	  "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_PERMIT, NULL },
	{ "warn_if_reject covers one rule", "smtpd_recipient_restrictions = warn_if_reject, reject_non_fqdn_sender, reject\n",
	  "192.0.2.1", "c.test", "a@x", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_REJECT, "554 5.7.1 <v@tern.test>" },
	{ "defer_if_permit then permit", "smtpd_recipient_restrictions = defer_if_permit, permit\n",
	  "192.0.2.1", "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_DEFER, "450 4.7.1 <v@tern.test>: Recipient address rejected: defer_if_permit requested" },
	{ "defer_if_permit then reject", "smtpd_recipient_restrictions = defer_if_permit, reject\n",
	  "192.0.2.1", "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_REJECT, "554 5.7.1" },
	{ "defer_if_reject", "smtpd_recipient_restrictions = defer_if_reject, reject\n",
	  "192.0.2.1", "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_DEFER, "450 4.7.1 <v@tern.test>: Recipient address rejected: defer_if_reject requested" },
	{ "defer", "smtpd_sender_restrictions = defer\n", "192.0.2.1", "c.test", "a@x.test",
	  "v@tern.test", SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_DEFER,
	  "450 4.7.1 <a@x.test>: Sender address rejected: Try again later" },
	{ "non-fqdn sender", "smtpd_sender_restrictions = reject_non_fqdn_sender\n", "192.0.2.1",
	  "c.test", "a@x", "v@tern.test", SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_REJECT,
	  "504 5.5.2 <a@x>: Sender address rejected: need fully-qualified address" },
	{ "non-fqdn sender: null is fine", "smtpd_sender_restrictions = reject_non_fqdn_sender\n",
	  "192.0.2.1", "c.test", "", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_PERMIT, NULL },
	{ "non-fqdn recipient", "smtpd_recipient_restrictions = reject_non_fqdn_recipient\n",
	  "127.0.0.1", "c.test", "a@x.test", "v@localhost", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_REJECT, "504 5.5.2 <v@localhost>: Recipient address rejected" },
	{ "invalid helo", "smtpd_helo_restrictions = reject_invalid_helo_hostname\n", "192.0.2.1",
	  "bad..helo", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_REJECT,
	  "501 5.5.2 <bad..helo>: Helo command rejected: Invalid name" },
	{ "pipelining after HELO", "smtpd_recipient_restrictions = reject_unauth_pipelining\n",
	  "192.0.2.1", "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, true,
	  SMTPD_VERDICT_PERMIT, NULL },
	{ "pipelining at DATA", "smtpd_data_restrictions = reject_unauth_pipelining\n",
	  "192.0.2.1", "c.test", "a@x.test", NULL, SMTPD_RESTRICT_DATA, true, SMTPD_VERDICT_REJECT,
	  "503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining" },
	{ "no pipelining at DATA", "smtpd_data_restrictions = reject_unauth_pipelining\n",
	  "192.0.2.1", "c.test", "a@x.test", NULL, SMTPD_RESTRICT_DATA, false, SMTPD_VERDICT_PERMIT, NULL },
	{ "sasl: nobody authenticated", "smtpd_relay_restrictions = permit_sasl_authenticated, reject\n",
	  "127.0.0.1", "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_REJECT, "554 5.7.1" },
	{ "no refusing rule: 451", "smtpd_relay_restrictions =\nsmtpd_recipient_restrictions = permit_mynetworks\n",
	  "192.0.2.1", "c.test", "a@x.test", "v@other.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_DEFER, "451 4.3.5 Server configuration problem" },
	{ "client access OK", "smtpd_client_restrictions = check_client_access texthash:DIR/access, reject\n",
	  "192.0.2.7", "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_PERMIT, NULL },
	{ "client access subnet REJECT", "smtpd_client_restrictions = check_client_access texthash:DIR/access\n",
	  "198.51.100.9", "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_REJECT, "554 5.7.1 <unknown[198.51.100.9]>: Client host rejected: no thanks" },
	{ "sender access domain", "smtpd_sender_restrictions = check_sender_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "a@spam.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_REJECT, "550 5.7.0 <a@spam.test>: Sender address rejected: spam domain" },
	{ "sender access parent", "smtpd_sender_restrictions = check_sender_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "a@x.spam.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_REJECT, "550 5.7.0" },
	{ "sender access null", "smtpd_sender_restrictions = check_sender_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_DEFER, "450 4.7.1 <>: Sender address rejected: no bounces now" },
	{ "sender access localpart", "smtpd_sender_restrictions = check_sender_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "abuser@y.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_REJECT, "554 5.7.1 <abuser@y.test>: Sender address rejected: Access denied" },
	{ "recipient access extension", "recipient_delimiter = +\n"
	  "smtpd_recipient_restrictions = check_recipient_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "a@x.test", "closed+tag@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_REJECT, "554 5.7.1 <closed+tag@tern.test>: Recipient address rejected: closed" },
	{ "helo access", "smtpd_helo_restrictions = check_helo_access texthash:DIR/access\n",
	  "192.0.2.1", "liar.tern.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_REJECT, "554 5.7.1 <liar.tern.test>: Helo command rejected: you are not us" },
	{ "bad table action", "smtpd_recipient_restrictions = check_recipient_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "a@x.test", "badfilter@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_DEFER, "451 4.3.5 Server configuration error" },
	{ "bad redirect", "smtpd_recipient_restrictions = check_recipient_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "a@x.test", "badredirect@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_DEFER, "451 4.3.5 Server configuration error" },
	/* FILTER, REDIRECT, BCC go on as DUNNO, and the result carries them */
	{ "filter goes on", "smtpd_recipient_restrictions = check_recipient_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "a@x.test", "filtered@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_PERMIT, NULL },
	{ "redirect goes on", "smtpd_recipient_restrictions = check_recipient_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "a@x.test", "redirected@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_PERMIT, NULL },
	{ "bcc goes on", "smtpd_recipient_restrictions = check_recipient_access texthash:DIR/access, "
	  "check_sender_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "copier@x.test", "copied@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_PERMIT, NULL },
	/* ... then a later rule may still refuse */
	{ "filter then reject", "smtpd_recipient_restrictions = check_recipient_access "
	  "texthash:DIR/access, reject\n",
	  "192.0.2.1", "c.test", "a@x.test", "filtered@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_REJECT, "554 5.7.1" },
	/* HOLD goes on as DUNNO; the list's end permits */
	{ "hold goes on", "smtpd_recipient_restrictions = check_recipient_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "a@x.test", "held@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_PERMIT, NULL },
	{ "prepend goes on", "smtpd_recipient_restrictions = check_recipient_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "a@x.test", "tagged@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_PERMIT, NULL },
	{ "data restrictions", "smtpd_data_restrictions = reject\n", "192.0.2.1", "c.test",
	  "a@x.test", NULL, SMTPD_RESTRICT_DATA, false, SMTPD_VERDICT_REJECT,
	  "554 5.7.1 <DATA>: Data command rejected: Access denied" },
	{ "end-of-data restrictions", "smtpd_end_of_data_restrictions = defer\n", "192.0.2.1",
	  "c.test", "a@x.test", NULL, SMTPD_RESTRICT_EOD, false, SMTPD_VERDICT_DEFER,
	  "450 4.7.1 <END-OF-MESSAGE>: End-of-data rejected: Try again later" },
	{ "per-listener list", "submission_smtpd_recipient_restrictions = reject\n",
	  "192.0.2.1", "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_PERMIT, NULL },
	/* DNS words that need no lookup here (DNS itself: smtpd_dnsbl_test,
	 * smtpd_dnsaccess_test and the e2e test) */
	{ "rhsbl client: no name, no lookup", "smtpd_client_restrictions = reject_rhsbl_client rhs.test, "
	  "permit_rhswl_client wl.test, check_client_mx_access texthash:DIR/access\n",
	  "192.0.2.1", "c.test", "a@x.test", "v@tern.test", SMTPD_RESTRICT_RCPT, false,
	  SMTPD_VERDICT_PERMIT, NULL },
	{ "rhsbl sender: null sender and literals skipped",
	  "smtpd_sender_restrictions = reject_rhsbl_sender rhs.test, check_sender_ns_access "
	  "texthash:DIR/access\n", "192.0.2.1", "c.test", "", "v@tern.test", SMTPD_RESTRICT_RCPT,
	  false, SMTPD_VERDICT_PERMIT, NULL },
	{ "rhsbl sender: an address literal is no name",
	  "smtpd_sender_restrictions = reject_rhsbl_sender rhs.test=127.0.0.[2..11]\n", "192.0.2.1",
	  "c.test", "a@[192.0.2.1]", "v@tern.test", SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_PERMIT,
	  NULL },
	{ "dnswl never permits a relay", "smtpd_relay_restrictions = permit_dnswl_client wl.test, "
	  "reject_unauth_destination\n", "192.0.2.1", "c.test", "a@x.test", "v@other.test",
	  SMTPD_RESTRICT_RCPT, false, SMTPD_VERDICT_REJECT, "554 5.7.1 <v@other.test>: Relay access denied" },
};

/*
 * The client's names, as the session found them at connect (smtpd_peer.h),
 * against the client rules; each row is a RCPT from 192.0.2.1.
 */
struct names_row {
	const char *name;
	const char *conf;
	const char *client_name;
	const char *reverse_name;
	enum smtpd_peer_status name_status, reverse_status;
	enum smtpd_verdict want;
	const char *reply;	/* expected prefix of "CODE TEXT", or NULL */
};

static const struct names_row names_rows[] = {
	{ "unknown client: no PTR", UNKNOWN_CLIENT, "unknown", "unknown", SMTPD_PEER_PERM,
	  SMTPD_PEER_PERM, SMTPD_VERDICT_REJECT,
	  "550 5.7.25 Client host rejected: cannot find your hostname, [192.0.2.1]" },
	{ "unknown client: forged", UNKNOWN_CLIENT, "unknown", "liar.test", SMTPD_PEER_FORGED,
	  SMTPD_PEER_OK, SMTPD_VERDICT_REJECT,
	  "550 5.7.25 Client host rejected: cannot find your hostname, [192.0.2.1]" },
	{ "unknown client: DNS trouble", UNKNOWN_CLIENT, "unknown", "unknown", SMTPD_PEER_TEMP,
	  SMTPD_PEER_TEMP, SMTPD_VERDICT_DEFER,
	  "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.1]" },
	/* Postfix defers at once: a permit after it does not win. */
	{ "unknown client: DNS trouble, then permit",
	  "smtpd_client_restrictions = reject_unknown_client_hostname, permit\n", "unknown",
	  "slow.test", SMTPD_PEER_TEMP, SMTPD_PEER_OK, SMTPD_VERDICT_DEFER, "450 4.7.25" },
	{ "unknown client: unset status is temporary", UNKNOWN_CLIENT, "unknown", "unknown", 0, 0,
	  SMTPD_VERDICT_DEFER, "450 4.7.25" },
	{ "unknown client: warn only", "smtpd_client_restrictions = warn_if_reject, "
	  "reject_unknown_client_hostname\n", "unknown", "unknown", SMTPD_PEER_PERM, SMTPD_PEER_PERM,
	  SMTPD_VERDICT_PERMIT, NULL },
	{ "known client", UNKNOWN_CLIENT, "mx.good.test", "mx.good.test", SMTPD_PEER_OK,
	  SMTPD_PEER_OK, SMTPD_VERDICT_PERMIT, NULL },
	{ "unknown reverse: no PTR", UNKNOWN_REVERSE, "unknown", "unknown", SMTPD_PEER_PERM,
	  SMTPD_PEER_PERM, SMTPD_VERDICT_REJECT,
	  "550 5.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.1]" },
	{ "unknown reverse: DNS trouble", UNKNOWN_REVERSE, "unknown", "unknown", SMTPD_PEER_TEMP,
	  SMTPD_PEER_TEMP, SMTPD_VERDICT_DEFER, "450 4.7.1" },
	/* A PTR that does not resolve back is enough for the reverse rule. */
	{ "unknown reverse: forged is fine", UNKNOWN_REVERSE, "unknown", "liar.test",
	  SMTPD_PEER_FORGED, SMTPD_PEER_OK, SMTPD_VERDICT_PERMIT, NULL },
	{ "client access by the name's parent", "smtpd_client_restrictions = check_client_access "
	  "texthash:DIR/access\n", "mx.spam.test", "mx.spam.test", SMTPD_PEER_OK, SMTPD_PEER_OK,
	  SMTPD_VERDICT_REJECT, "550 5.7.0 <mx.spam.test[192.0.2.1]>: Client host rejected: spam domain" },
	/* Only the verified name is a key, never the PTR's alone. */
	{ "client access: not by the reverse name", "smtpd_client_restrictions = check_client_access "
	  "texthash:DIR/access\n", "unknown", "mx.spam.test", SMTPD_PEER_FORGED, SMTPD_PEER_OK,
	  SMTPD_VERDICT_PERMIT, NULL },
};

static const char access_text[] =
	"192.0.2.7 OK\n"
	"198.51.100 REJECT no thanks\n"
	"spam.test 550 5.7.0 spam domain\n"
	"<> DEFER no bounces now\n"
	"abuser@ REJECT\n"
	"closed@tern.test REJECT closed\n"
	"liar.tern.test REJECT you are not us\n"
	"held@tern.test HOLD\n"
	"filtered@tern.test FILTER smtp:[127.0.0.1]:10025\n"
	"badfilter@tern.test FILTER scan:[127.0.0.1]:10025\n"
	"redirected@tern.test REDIRECT <Quarantine@tern.test>\n"
	"badredirect@tern.test REDIRECT nobody\n"
	"copied@tern.test BCC archive@tern.test\n"
	"copier@x.test BCC second@tern.test\n"
	"tagged@tern.test PREPEND X-Tag: yes\n";

struct stage_outcome {
	bool called;
	struct smtpd_restrict_result res;
};

static void
stage_cb(void *arg, const struct smtpd_restrict_result *res)
{
	struct stage_outcome *o = arg;

	o->called = true;
	o->res = *res;
}

static void
parse_addr(const char *text, struct mailaddr *a)
{
	char path[300];
	const char *why;
	size_t used;

	snprintf(path, sizeof(path), "<%s>", text);
	ck_assert_msg(mailaddr_parse_path(path, strlen(path), MAILADDR_ALLOW_NULL |
	    MAILADDR_ALLOW_POSTMASTER, a, &used, &why) == MAILADDR_OK, "%s: %s", text, why);
}

/* Run row's stage; nm (may be NULL: "unknown", PERM) gives the names. */
static void
stage_check(const struct stage_row *row, const struct names_row *nm)
{
	struct smtpd_restrict_facts f;
	struct smtpd_restrict_result res;
	struct smtpd_restrict_check *pending;
	struct stage_outcome o = { 0 };
	struct mailaddr snd, rcpt;
	struct smtpd_restrict *rs;
	struct evloop *loop;
	struct buf errors;
	struct config *cfg;
	struct tmp t;
	char conf[2048], extra[1024], reply[600];
	const char *p;
	size_t o_;

	/* DIR in a row stands for the temporary directory. */
	tmp_conf(&t, "");
	for (p = row->conf, o_ = 0; *p != '\0' && o_ < sizeof(extra) - 64; p++) {
		if (strncmp(p, "DIR", 3) == 0) {
			o_ += (size_t)snprintf(extra + o_, sizeof(extra) - o_, "%s", t.dir);
			p += 2;
		} else {
			extra[o_++] = *p;
		}
	}
	extra[o_] = '\0';
	snprintf(conf, sizeof(conf), "myhostname = tern.test\nmydestination = tern.test, localhost\n"
	    "mynetworks = 127.0.0.0/8\ndns_servers = 127.0.0.1:9\n%s", extra);
	tmp_file(&t, "tern.conf", conf);
	tmp_file(&t, "access", access_text);
	buf_init(&errors, 65536);
	cfg = config_load(t.path, &errors);
	ck_assert_msg(cfg != NULL, "%s: %s", row->name, buf_cstr(&errors));
	loop = evloop_new();
	rs = smtpd_restrict_new(loop, cfg, NULL, &errors);
	ck_assert_msg(rs != NULL, "%s: %s", row->name, buf_cstr(&errors));

	memset(&f, 0, sizeof(f));
	f.listener = CONFIG_LISTENER_SMTP;
	f.family = AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, row->client, f.addr), 1);
	f.client_addr = row->client;
	f.client_name = nm != NULL ? nm->client_name : "unknown";
	f.reverse_client_name = nm != NULL ? nm->reverse_name : "unknown";
	f.name_status = nm != NULL ? nm->name_status : SMTPD_PEER_PERM;
	f.reverse_name_status = nm != NULL ? nm->reverse_status : SMTPD_PEER_PERM;
	f.helo = row->helo;
	f.esmtp = true;
	if (row->sender != NULL) {
		parse_addr(row->sender, &snd);
		f.sender = &snd;
	}
	if (row->rcpt != NULL) {
		parse_addr(row->rcpt, &rcpt);
		f.rcpt = &rcpt;
	}
	f.verb = "RCPT";
	f.pipelined = row->pipelined;
	ck_assert_msg(smtpd_restrict_run(rs, row->stage, &f, &res, &pending, stage_cb, &o) ==
	    SMTPD_RESTRICT_DONE, "%s: pending", row->name);
	ck_assert(!o.called);
	ck_assert_msg(res.verdict == row->want, "%s: verdict %d (%d %s)", row->name, res.verdict,
	    res.reply.code, res.reply.text);
	if (row->reply != NULL) {
		snprintf(reply, sizeof(reply), "%d %s", res.reply.code, res.reply.text);
		ck_assert_msg(strncmp(reply, row->reply, strlen(row->reply)) == 0, "%s: \"%s\"",
		    row->name, reply);
	}
	if (strcmp(row->name, "prepend goes on") == 0)
		ck_assert_str_eq(res.prepend, "X-Tag: yes\n");
	ck_assert_str_eq(res.filter, strncmp(row->name, "filter ", 7) == 0 ?
	    "smtp:[127.0.0.1]:10025" : "");
	ck_assert_str_eq(res.redirect, strcmp(row->name, "redirect goes on") == 0 ?
	    "Quarantine@tern.test" : "");
	/* Two BCC actions in one check: the last one counts (Postfix 3.0). */
	ck_assert_str_eq(res.bcc, strcmp(row->name, "bcc goes on") == 0 ? "second@tern.test" : "");
	smtpd_restrict_free(rs);
	evloop_free(loop);
	config_free(cfg);
	buf_free(&errors);
	tmp_free(&t);
}

START_TEST(test_stage)
{
	stage_check(&stage_rows[_i], NULL);
}
END_TEST

START_TEST(test_names)
{
	const struct names_row *nm = &names_rows[_i];
	struct stage_row row = {
		nm->name, nm->conf, "192.0.2.1", "c.test", "a@x.test", "v@tern.test",
		SMTPD_RESTRICT_RCPT, false, nm->want, nm->reply,
	};

	stage_check(&row, nm);
}
END_TEST

/* The argument of REDIRECT and BCC: one address with a domain. */
static const struct {
	const char *text;
	const char *addr;	/* NULL: refused */
} action_address_rows[] = {
	{ "a@b.example", "a@b.example" },
	{ "<a@b.example>", "a@b.example" },
	{ "<a@b.example>  ", "a@b.example" },
	{ "\"x y\"@b.example", "\"x y\"@b.example" },
	{ "j\xc3\xb6rg@b.example", "j\xc3\xb6rg@b.example" },
	{ "nobody", NULL },
	{ "<>", NULL },
	{ "", NULL },
	{ "a@b.example c@d.example", NULL },
	{ "a@b.example, c@d.example", NULL },
	{ "a@", NULL },
	{ "<a@b.example", NULL },
};

START_TEST(test_action_address)
{
	struct mailaddr m;
	const char *why = NULL;
	bool ok = smtpd_restrict_action_address(action_address_rows[_i].text, &m, &why);

	if (action_address_rows[_i].addr == NULL) {
		ck_assert_msg(!ok, "row %d \"%s\": accepted", _i, action_address_rows[_i].text);
		ck_assert_ptr_nonnull(why);
	} else {
		ck_assert_msg(ok, "row %d \"%s\": %s", _i, action_address_rows[_i].text, why);
		ck_assert_str_eq(m.addr, action_address_rows[_i].addr);
	}
}
END_TEST

/* A defer_if_permit at MAIL (smtpd_delay_reject = no) is carried to RCPT. */
START_TEST(test_carry)
{
	struct smtpd_restrict_facts f;
	struct smtpd_restrict_result res, res2;
	struct smtpd_restrict_check *pending;
	struct mailaddr snd, rcpt;
	struct smtpd_restrict *rs;
	struct evloop *loop;
	struct buf errors;
	struct config *cfg;
	struct tmp t;

	tmp_conf(&t, "myhostname = tern.test\nmydestination = tern.test\nsmtpd_delay_reject = no\n"
	    "smtpd_sender_restrictions = defer_if_permit\n");
	buf_init(&errors, 65536);
	cfg = config_load(t.path, &errors);
	ck_assert_ptr_nonnull(cfg);
	loop = evloop_new();
	rs = smtpd_restrict_new(loop, cfg, NULL, &errors);
	ck_assert_ptr_nonnull(rs);
	memset(&f, 0, sizeof(f));
	f.listener = CONFIG_LISTENER_SMTP;
	f.client_addr = "192.0.2.1";
	f.client_name = "unknown";
	f.helo = "c.test";
	f.verb = "MAIL";
	parse_addr("a@x.test", &snd);
	f.sender = &snd;
	ck_assert_int_eq(smtpd_restrict_run(rs, SMTPD_RESTRICT_MAIL, &f, &res, &pending, stage_cb,
	    NULL), SMTPD_RESTRICT_DONE);
	ck_assert_int_eq(res.verdict, SMTPD_VERDICT_PERMIT);
	ck_assert(res.carry);
	parse_addr("v@tern.test", &rcpt);
	f.rcpt = &rcpt;
	f.verb = "RCPT";
	f.carried = &res.carried;
	ck_assert_int_eq(smtpd_restrict_run(rs, SMTPD_RESTRICT_RCPT, &f, &res2, &pending, stage_cb,
	    NULL), SMTPD_RESTRICT_DONE);
	ck_assert_int_eq(res2.verdict, SMTPD_VERDICT_DEFER);
	ck_assert_int_eq(res2.reply.code, 450);
	smtpd_restrict_free(rs);
	evloop_free(loop);
	config_free(cfg);
	buf_free(&errors);
	tmp_free(&t);
}
END_TEST

static Suite *
restrict_suite(void)
{
	Suite *s = suite_create("smtpd_restrict");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_parse_errors, 0, sizeof(parse_rows) / sizeof(parse_rows[0]));
	tcase_add_loop_test(tc, test_actions, 0, sizeof(action_rows) / sizeof(action_rows[0]));
	tcase_add_loop_test(tc, test_action_address, 0,
	    sizeof(action_address_rows) / sizeof(action_address_rows[0]));
	tcase_add_loop_test(tc, test_relay, 0, sizeof(relay_rows) / sizeof(relay_rows[0]));
	tcase_add_test(tc, test_relay_syntax);
	tcase_add_test(tc, test_helo);
	tcase_add_test(tc, test_client_keys);
	tcase_add_loop_test(tc, test_stage, 0, sizeof(stage_rows) / sizeof(stage_rows[0]));
	tcase_add_loop_test(tc, test_names, 0, sizeof(names_rows) / sizeof(names_rows[0]));
	tcase_add_test(tc, test_carry);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(restrict_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
