/*
 * sendmail_headers: line ends, the lone dot with and without -i,
 * dot-stuffing, the header section (continuations, the mbox From line,
 * the end of the headers), -t recipients (groups, comments, routes,
 * Resent-), Bcc removal and the headers added to a local submission.
 * Table-driven; every converter row is fed in every chunk size, so a
 * state carried across reads is exercised.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "tools/sendmail_headers.h"

/* ---- the body converter ---- */

struct body_row {
	const char *in;
	bool ignore_dots;
	const char *out;	/* what DATA carries */
	bool end;		/* a lone dot ended the input */
	size_t consumed;	/* bytes of in taken (all of it without end) */
};

static const struct body_row body_rows[] = {
	{ "a\nb\n", false, "a\r\nb\r\n", false, 4 },
	{ "a\r\nb\r\n", false, "a\r\nb\r\n", false, 6 },
	{ "a\rb\n", false, "a\rb\r\n", false, 4 },		/* a lone CR stays */
	{ "\n\n", false, "\r\n\r\n", false, 2 },
	{ ".\n", false, "", true, 2 },
	{ "x\n.\nafter\n", false, "x\r\n", true, 4 },
	{ "x\r\n.\r\nafter\r\n", false, "x\r\n", true, 6 },
	{ ".x\n", false, "..x\r\n", false, 3 },
	{ "..\n", false, "...\r\n", false, 3 },
	{ ".\rx\n", false, "..\rx\r\n", false, 4 },
	{ ". \n", false, ".. \r\n", false, 3 },
	{ ".\n", true, "..\r\n", false, 2 },			/* -i: plain text */
	{ "a\n.\nb\n", true, "a\r\n..\r\nb\r\n", false, 6 },
	{ ".\r\n", true, "..\r\n", false, 3 },
	{ "x", false, "x\r\n", false, 1 },			/* no final line end */
	{ "x\r", false, "x\r\n", false, 2 },
	{ "x\n.", false, "x\r\n", false, 3 },			/* "." at EOF: the lone dot */
	{ "x\n.", true, "x\r\n..\r\n", false, 3 },
	{ "a.b\n.c\n", false, "a.b\r\n..c\r\n", false, 7 },
	{ "", false, "", false, 0 },
};

static void
body_run(const struct body_row *row, size_t step, struct buf *out, bool *end, size_t *consumed)
{
	struct sendmail_body b;
	size_t len = strlen(row->in), off = 0;

	sendmail_body_init(&b, row->ignore_dots);
	*end = false;
	while (off < len && !*end) {
		size_t take = len - off < step ? len - off : step;

		off += sendmail_body_feed(&b, row->in + off, take, out, end);
	}
	if (!*end)
		sendmail_body_finish(&b, out);
	*consumed = off;
}

START_TEST(test_body)
{
	const struct body_row *row = &body_rows[_i];
	size_t len = strlen(row->in);

	for (size_t step = 1; step <= (len ? len : 1); step++) {
		struct buf out;
		bool end;
		size_t consumed;

		buf_init(&out, 4096);
		body_run(row, step, &out, &end, &consumed);
		ck_assert_msg(buf_len(&out) == strlen(row->out) &&
		              memcmp(buf_data(&out), row->out, buf_len(&out)) == 0,
		              "row %d step %zu: got \"%s\"", _i, step, buf_cstr(&out));
		ck_assert_msg(end == row->end, "row %d step %zu: end %d", _i, step, end);
		ck_assert_msg(consumed == row->consumed, "row %d step %zu: consumed %zu", _i, step,
		              consumed);
		buf_free(&out);
	}
}
END_TEST

/* ---- the whole path: headers, -t, missing headers, body ---- */

struct msg_row {
	const char *in;
	bool extract;		/* -t */
	bool ignore_dots;	/* -i */
	const char *rcpts;	/* comma-joined, or NULL: the parse must fail */
	const char *out;	/* DATA content; "@M" stands for the three added fields */
};

#define ADDED "Message-Id: <19700101000000.7.abc@h.test>\r\n" \
	      "Date: Thu,  1 Jan 1970 00:00:00 +0000 (UTC)\r\n" \
	      "From: Ann Example <u@o.test>\r\n"
#define RESENT_ADDED "Resent-Message-Id: <19700101000000.7.abc@h.test>\r\n" \
	             "Resent-Date: Thu,  1 Jan 1970 00:00:00 +0000 (UTC)\r\n" \
	             "Resent-From: Ann Example <u@o.test>\r\n"

static const struct msg_row msg_rows[] = {
	/* 0: the PHP shape: To, Subject, body; everything else added. */
	{ "To: a@x\nSubject: s\n\nbody\n", true, true, "a@x",
	  "To: a@x\r\nSubject: s\r\n" ADDED "\r\nbody\r\n" },
	/* 1: groups, display names, comments, a continuation; Bcc removed. */
	{ "To: Friends: a@x, \"B, b\" <b@y>;, c@z (Cee)\nCc: d@w,\n  e@v\nBcc: f@u\n"
	  "From: me@h\nDate: x\nMessage-Id: <m@h>\n\nhi\n", true, false,
	  "a@x,b@y,c@z,d@w,e@v,f@u",
	  "To: Friends: a@x, \"B, b\" <b@y>;, c@z (Cee)\r\nCc: d@w,\r\n  e@v\r\n"
	  "From: me@h\r\nDate: x\r\nMessage-Id: <m@h>\r\n\r\nhi\r\n" },
	/* 2: a Resent- message goes to the Resent- recipients only; the
	 * Resent- fields are the ones completed. */
	{ "Resent-To: n@x\nResent-Bcc: rb@x\nTo: old@x\nFrom: a@b\nDate: d\nMessage-Id: <i@d>\n"
	  "\nbody\n", true, false, "n@x,rb@x",
	  "Resent-To: n@x\r\nTo: old@x\r\nFrom: a@b\r\nDate: d\r\nMessage-Id: <i@d>\r\n"
	  RESENT_ADDED "\r\nbody\r\n" },
	/* 3: an obsolete route is dropped; case of names does not matter. */
	{ "to: <@r1,@r2:u@h>\nCC: v@h\n\n", true, false, "u@h,v@h",
	  "to: <@r1,@r2:u@h>\r\nCC: v@h\r\n" ADDED "\r\n" },
	/* 4: an empty group names nobody. */
	{ "To: undisclosed-recipients:;\nCc: x@y\n\n", true, false, "x@y",
	  "To: undisclosed-recipients:;\r\nCc: x@y\r\n" ADDED "\r\n" },
	/* 5: a lone dot inside the headers ends the input. */
	{ "To: a@x\n.\nbody\n", true, false, "a@x", "To: a@x\r\n" ADDED },
	/* 6: ... but not with -i: the dot line starts the body. */
	{ "To: a@x\n.\nbody\n", true, true, "a@x", "To: a@x\r\n" ADDED "..\r\nbody\r\n" },
	/* 7: a leading mbox "From " line is dropped. */
	{ "From someone Mon Jan  1 00:00:00 2024\nTo: a@x\n\nb\n", true, false, "a@x",
	  "To: a@x\r\n" ADDED "\r\nb\r\n" },
	/* 8: a line that is no field ends the headers; the fields are added before it. */
	{ "To: a@x\nthis is body\nmore\n", true, false, "a@x",
	  "To: a@x\r\n" ADDED "this is body\r\nmore\r\n" },
	/* 9: a field name may start with '.': it is dot-stuffed. */
	{ ".X: y\nTo: a@x\n\n", true, false, "a@x", "..X: y\r\nTo: a@x\r\n" ADDED "\r\n" },
	/* 10: without -t, Bcc stays and gives no recipient. */
	{ "Bcc: a@x\n\nb\n", false, false, "", "Bcc: a@x\r\n" ADDED "\r\nb\r\n" },
	/* 11: an unbalanced quote in To: is an error under -t. */
	{ "To: \"abc <a@x>\n\n", true, false, NULL, NULL },
	/* 12: CRLF input, and obsolete spaces before the colon. */
	{ "To : a@x\r\nFrom: f@x\r\nDate: d\r\nMessage-Id: <m@x>\r\n\r\nb\r\n", true, false, "a@x",
	  "To : a@x\r\nFrom: f@x\r\nDate: d\r\nMessage-Id: <m@x>\r\n\r\nb\r\n" },
	/* 13: no header at all: the body starts at once, the fields are added. */
	{ "\nbody only\n", false, false, "", ADDED "\r\nbody only\r\n" },
	/* 14: a continuation line first is body. */
	{ " indented\n", false, false, "", ADDED " indented\r\n" },
	/* 15: Bcc with a folded list, -t: both addresses, the field removed. */
	{ "To: a@x\nBcc: b@x,\n\tc@x\nSubject: s\n\n", true, false, "a@x,b@x,c@x",
	  "To: a@x\r\nSubject: s\r\n" ADDED "\r\n" },
};

static void
msg_run(const struct msg_row *row, struct buf *out, struct buf *rcpts, bool *rcpt_ok)
{
	struct sendmail_ident id = { "u@o.test", "Ann Example", "h.test", 0, "7.abc" };
	struct sendmail_headers h;
	struct sendmail_addrs a = { 0 };
	struct sendmail_body b;
	const char *p = row->in, *end = row->in + strlen(row->in);
	bool done = false, stop = false;
	char err[200];

	sendmail_headers_init(&h);
	while (!done && p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t line = lf ? (size_t)(lf - p) : (size_t)(end - p);
		size_t raw = lf ? line + 1 : line;

		if (line > 0 && p[line - 1] == '\r')
			line--;
		switch (sendmail_headers_line(&h, p, line, row->ignore_dots)) {
		case SENDMAIL_HLINE_FIELD:
		case SENDMAIL_HLINE_SKIPPED:
			p += raw;
			break;
		case SENDMAIL_HLINE_DOT:
			stop = done = true;
			break;
		case SENDMAIL_HLINE_BODY:
			done = true;
			break;
		}
	}
	*rcpt_ok = true;
	if (row->extract) {
		*rcpt_ok = sendmail_headers_recipients(&h, &a, err, sizeof(err)) == 0;
		sendmail_headers_remove_bcc(&h);
	}
	for (size_t i = 0; i < a.n; i++) {
		buf_append_str(rcpts, i ? "," : "");
		buf_append_str(rcpts, a.v[i]);
	}
	sendmail_headers_write(&h, out);
	sendmail_headers_missing(&h, &id, out);
	if (!stop) {
		bool e = false;

		sendmail_body_init(&b, row->ignore_dots);
		sendmail_body_feed(&b, p, (size_t)(end - p), out, &e);
		if (!e)
			sendmail_body_finish(&b, out);
	}
	sendmail_addrs_free(&a);
	sendmail_headers_free(&h);
}

START_TEST(test_message)
{
	const struct msg_row *row = &msg_rows[_i];
	struct buf out, rcpts;
	bool ok;

	buf_init(&out, 64 * 1024);
	buf_init(&rcpts, 4096);
	msg_run(row, &out, &rcpts, &ok);
	if (row->rcpts == NULL) {
		ck_assert_msg(!ok, "row %d: the recipients should not parse", _i);
	} else {
		ck_assert_msg(ok, "row %d: recipients do not parse", _i);
		ck_assert_msg(strcmp(buf_cstr(&rcpts), row->rcpts) == 0, "row %d: rcpts \"%s\"", _i,
		              buf_cstr(&rcpts));
		ck_assert_msg(strcmp(buf_cstr(&out), row->out) == 0, "row %d: got\n%s\nwant\n%s", _i,
		              buf_cstr(&out), row->out);
	}
	buf_free(&out);
	buf_free(&rcpts);
}
END_TEST

/* ---- address lists ---- */

struct addr_row {
	const char *in;
	const char *want;	/* comma-joined, or NULL for an error */
};

static const struct addr_row addr_rows[] = {
	{ "a@b", "a@b" },
	{ "A <a@b>, c@d", "a@b,c@d" },
	{ "\"Doe, J\" <j@x>", "j@x" },
	{ "j@x (Doe, J)", "j@x" },
	{ "j@x (nested (comment) here)", "j@x" },
	{ "g: a@b, c@d;, e@f", "a@b,c@d,e@f" },
	{ "g:;", "" },
	{ "<>", "" },
	{ "\"x y\"@z", "\"x y\"@z" },
	{ "u@[192.0.2.1]", "u@[192.0.2.1]" },
	{ "  a @ b . c ", "a@b.c" },
	{ "root", "root" },
	{ "a@b,,c@d", "a@b,c@d" },
	{ "a@b,\r\n\tc@d", "a@b,c@d" },
	{ "Name <@x,@y:a@b>", "a@b" },
	{ "a@b, (unclosed", NULL },
	{ "<a@b", NULL },
	{ "a@b>", NULL },
	{ "<<a@b>>", NULL },
	{ "\"open@b", NULL },
	{ "u@[192.0.2.1", NULL },
};

START_TEST(test_addrs)
{
	const struct addr_row *row = &addr_rows[_i];
	struct sendmail_addrs a = { 0 };
	struct buf got;
	char err[200];
	int rc;

	buf_init(&got, 4096);
	rc = sendmail_addrs_parse(&a, row->in, strlen(row->in), err, sizeof(err));
	if (row->want == NULL) {
		ck_assert_msg(rc < 0, "row %d (%s): should fail", _i, row->in);
		ck_assert(err[0] != '\0');
	} else {
		ck_assert_msg(rc == 0, "row %d (%s): %s", _i, row->in, err);
		for (size_t i = 0; i < a.n; i++) {
			buf_append_str(&got, i ? "," : "");
			buf_append_str(&got, a.v[i]);
		}
		ck_assert_msg(strcmp(buf_cstr(&got), row->want) == 0, "row %d (%s): got \"%s\"", _i,
		              row->in, buf_cstr(&got));
	}
	sendmail_addrs_free(&a);
	buf_free(&got);
}
END_TEST

START_TEST(test_addr_too_long)
{
	struct sendmail_addrs a = { 0 };
	char big[SENDMAIL_ADDR_MAX + 100], err[200];

	memset(big, 'a', sizeof(big) - 3);
	memcpy(big + sizeof(big) - 3, "@b", 3);
	ck_assert_int_lt(sendmail_addrs_parse(&a, big, strlen(big), err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "longer"));
	sendmail_addrs_free(&a);
}
END_TEST

START_TEST(test_qualify)
{
	char dst[64];

	ck_assert_int_eq(sendmail_addr_qualify("root", "o.test", dst, sizeof(dst)), 0);
	ck_assert_str_eq(dst, "root@o.test");
	ck_assert_int_eq(sendmail_addr_qualify("a@b", "o.test", dst, sizeof(dst)), 0);
	ck_assert_str_eq(dst, "a@b");
	ck_assert_int_eq(sendmail_addr_qualify("\"x@y\"", "o.test", dst, sizeof(dst)), 0);
	ck_assert_str_eq(dst, "\"x@y\"@o.test");
	ck_assert_int_eq(sendmail_addr_qualify("\"x@y\"@z", "o.test", dst, sizeof(dst)), 0);
	ck_assert_str_eq(dst, "\"x@y\"@z");
	ck_assert_int_lt(sendmail_addr_qualify("averyveryverylongname", "o.test", dst, 10), 0);
}
END_TEST

/* ---- the From line's name ---- */

struct from_row {
	const char *sender;
	const char *name;
	const char *want;
};

static const struct from_row from_rows[] = {
	{ "u@o", "Ann Example", "From: Ann Example <u@o>\r\n" },
	{ "u@o", NULL, "From: u@o\r\n" },
	{ "u@o", "", "From: u@o\r\n" },
	{ "u@o", "A. B", "From: \"A. B\" <u@o>\r\n" },
	{ "u@o", "Ann \"Q\" Ex", "From: \"Ann \\\"Q\\\" Ex\" <u@o>\r\n" },
	/* No header injection through -F or gecos. */
	{ "u@o", "x\r\nBcc: evil@x", "From: \"xBcc: evil@x\" <u@o>\r\n" },
	{ "u@o", "\r\n", "From: u@o\r\n" },
	{ "", "Ann", "From: MAILER-DAEMON\r\n" },
	{ "u@o", "J\xc3\xbcrgen", "From: J\xc3\xbcrgen <u@o>\r\n" },
};

START_TEST(test_from)
{
	const struct from_row *row = &from_rows[_i];
	struct sendmail_ident id = { row->sender, row->name, "h", 0, "1" };
	struct sendmail_headers h;
	struct buf out;

	sendmail_headers_init(&h);
	h.seen = SENDMAIL_SEEN_DATE | SENDMAIL_SEEN_MESSAGE_ID;
	buf_init(&out, 4096);
	sendmail_headers_missing(&h, &id, &out);
	ck_assert_msg(strcmp(buf_cstr(&out), row->want) == 0, "row %d: got \"%s\"", _i,
	              buf_cstr(&out));
	buf_free(&out);
}
END_TEST

START_TEST(test_gecos)
{
	char dst[64];

	sendmail_gecos_name("Ann Example,,,", "ann", dst, sizeof(dst));
	ck_assert_str_eq(dst, "Ann Example");
	sendmail_gecos_name("& Smith,Room 1", "bob", dst, sizeof(dst));
	ck_assert_str_eq(dst, "Bob Smith");
	sendmail_gecos_name("", "bob", dst, sizeof(dst));
	ck_assert_str_eq(dst, "");
	sendmail_gecos_name(NULL, "bob", dst, sizeof(dst));
	ck_assert_str_eq(dst, "");
	sendmail_gecos_name("A very long full name indeed", "x", dst, 8);
	ck_assert_str_eq(dst, "A very ");
}
END_TEST

/* The header section stops at SENDMAIL_HEADERS_MAX: the rest is body. */
START_TEST(test_header_limit)
{
	struct sendmail_headers h;
	char line[1000];
	size_t fields = 0;

	memset(line, 'x', sizeof(line));
	memcpy(line, "X-Big: ", 7);
	sendmail_headers_init(&h);
	while (sendmail_headers_line(&h, line, sizeof(line), false) == SENDMAIL_HLINE_FIELD)
		fields++;
	ck_assert_uint_gt(fields, 0);
	ck_assert_uint_le(h.bytes, SENDMAIL_HEADERS_MAX);
	ck_assert_uint_eq(fields, SENDMAIL_HEADERS_MAX / (sizeof(line) + 2));
	sendmail_headers_free(&h);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sendmail_headers");
	TCase *tc = tcase_create("rows");
	SRunner *sr;
	int failed;

	/* Dates in the rows are UTC. */
	setenv("TZ", "UTC", 1);
	tzset();
	tcase_add_loop_test(tc, test_body, 0, (int)(sizeof(body_rows) / sizeof(body_rows[0])));
	tcase_add_loop_test(tc, test_message, 0, (int)(sizeof(msg_rows) / sizeof(msg_rows[0])));
	tcase_add_loop_test(tc, test_addrs, 0, (int)(sizeof(addr_rows) / sizeof(addr_rows[0])));
	tcase_add_loop_test(tc, test_from, 0, (int)(sizeof(from_rows) / sizeof(from_rows[0])));
	tcase_add_test(tc, test_addr_too_long);
	tcase_add_test(tc, test_qualify);
	tcase_add_test(tc, test_gecos);
	tcase_add_test(tc, test_header_limit);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
