/*
 * Unit tests for smtpd_received: our Received header in Postfix's form,
 * "from HELO (NAME [ADDR])", for the cases the client's names give.
 */
#include <check.h>
#include <string.h>

#include "common/buf.h"
#include "smtpd/smtpd_received.h"

static const struct {
	const char *what;
	const char *helo;
	const char *name;
	const char *addr;
	const char *first;	/* the first line, without CRLF */
} rows[] = {
	{ "name and HELO", "helo.example", "mx.example", "192.0.2.9",
	  "Received: from helo.example (mx.example [192.0.2.9])" },
	/* The comment holds the verified name even when HELO says it too. */
	{ "HELO is the name", "mx.example", "mx.example", "192.0.2.9",
	  "Received: from mx.example (mx.example [192.0.2.9])" },
	{ "unknown client", "helo.example", "unknown", "192.0.2.9",
	  "Received: from helo.example (unknown [192.0.2.9])" },
	/* No HELO: the name stands in for it. */
	{ "no HELO", "", "mx.example", "192.0.2.9",
	  "Received: from mx.example (mx.example [192.0.2.9])" },
	{ "no HELO, unknown", NULL, "unknown", "192.0.2.9",
	  "Received: from unknown (unknown [192.0.2.9])" },
	/* RFC 5321 section 4.1.3: an IPv6 address literal. */
	{ "IPv6", "helo.example", "mx.example", "2001:db8::25",
	  "Received: from helo.example (mx.example [IPv6:2001:db8::25])" },
};

START_TEST(test_received)
{
	struct smtpd_received r;
	struct buf out;
	const char *text, *eol;

	memset(&r, 0, sizeof(r));
	r.helo = rows[_i].helo;
	r.client_name = rows[_i].name;
	r.client_addr = rows[_i].addr;
	r.hostname = "tern.test";
	r.mail_name = "tern";
	r.esmtp = true;
	r.queue_id = "0123456789ABCD";
	r.rcpt = "v@tern.test";
	r.when = 0;
	buf_init(&out, 4096);
	ck_assert_int_eq(smtpd_received_format(&r, &out), BUF_OK);
	text = buf_cstr(&out);
	eol = strstr(text, "\r\n");
	ck_assert_ptr_nonnull(eol);
	ck_assert_msg(strlen(rows[_i].first) == (size_t)(eol - text) &&
	    strncmp(text, rows[_i].first, (size_t)(eol - text)) == 0, "%s: %s", rows[_i].what, text);
	ck_assert_ptr_nonnull(strstr(text, "\r\n\tby tern.test (tern) with ESMTP id 0123456789ABCD"
	    "\r\n\tfor <v@tern.test>; "));
	buf_free(&out);
}
END_TEST

/* The sendmail socket: Postfix's pickup form, no client part. */
START_TEST(test_received_local)
{
	static const char want[] = "Received: by tern.test (tern, from userid 1000)\r\n"
	    "\tid 0123456789ABCD; ";
	struct smtpd_received r;
	struct buf out;

	memset(&r, 0, sizeof(r));
	r.client_name = "localhost";
	r.client_addr = "127.0.0.1";
	r.hostname = "tern.test";
	r.mail_name = "tern";
	r.queue_id = "0123456789ABCD";
	r.local = true;
	r.uid = 1000;
	buf_init(&out, 4096);
	ck_assert_int_eq(smtpd_received_format(&r, &out), BUF_OK);
	ck_assert_msg(strncmp(buf_cstr(&out), want, sizeof(want) - 1) == 0, "%s", buf_cstr(&out));
	buf_free(&out);
}
END_TEST

static Suite *
received_suite(void)
{
	Suite *s = suite_create("smtpd_received");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_received, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, test_received_local);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(received_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
