/*
 * smtpd_content_test: the header and body check engine
 * (smtpd/smtpd_content.c). Table-driven: regexp tables for the four
 * classes, a message, and what must come out: the stored bytes, the log
 * lines, the verdict. Every case is fed whole and again one byte at a
 * time (the result must not depend on how the stream is cut). Then the
 * limits: header_size_limit, long body lines, body_checks_size_limit.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "config/config.h"
#include "config/map.h"
#include "smtpd/smtpd_content.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define OUT_MAX (1024 * 1024)
#define PATH_SIZE 256

struct capture {
	struct buf out;		/* stored bytes */
	struct buf log;		/* "action where content: text\n" lines */
};

static void
cap_write(void *arg, const char *p, size_t n)
{
	struct capture *c = arg;

	ck_assert_int_eq(buf_append(&c->out, p, n), BUF_OK);
}

static void
cap_log(void *arg, const char *action, const char *where, const char *content, const char *text)
{
	struct capture *c = arg;

	buf_append_printf(&c->log, "%s %s [%s]: %s\n", action, where, content, text);
}

static void
cap_warn(void *arg, const char *text)
{
	struct capture *c = arg;

	buf_append_printf(&c->log, "WARN %s\n", text);
}

/* A map list of one regexp: table holding text (NULL: no list). */
static struct map_list *
list_make(const char *text, char *path)
{
	struct config_list specs;
	char spec[PATH_SIZE + 16];
	char *items[1] = { spec };
	struct map_list *ml = NULL;
	struct buf diag;
	FILE *f;
	int fd;

	if (text == NULL)
		return NULL;
	snprintf(path, PATH_SIZE, "/tmp/tern-content-test-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	snprintf(spec, sizeof(spec), "regexp:%s", path);
	specs.items = items;
	specs.n = 1;
	buf_init(&diag, 64 * 1024);
	ck_assert_msg(map_list_open(&specs, 0, &ml, &diag) == MAP_OK, "%s", buf_cstr(&diag));
	buf_free(&diag);
	return ml;
}

struct run {
	const char *header, *mime, *nested, *body;	/* table texts, or NULL */
	size_t header_max, body_max;
};

/* Feed msg (whole, or bytewise) through the checks; result into cap. */
static struct smtpd_content_result
run_checks(const struct run *r, const char *msg, size_t len, bool bytewise, struct capture *cap)
{
	static const char *const names[SMTPD_CONTENT_CLASSES] = { "header_checks",
		"mime_header_checks", "nested_header_checks", "body_checks" };
	const struct smtpd_content_hooks hooks = { cap_write, cap_log, cap_warn, cap };
	char paths[SMTPD_CONTENT_CLASSES][PATH_SIZE];
	struct map_list *lists[SMTPD_CONTENT_CLASSES];
	struct smtpd_content_result res;
	struct smtpd_content *c;
	size_t i;

	lists[SMTPD_CONTENT_HEADER] = list_make(r->header, paths[0]);
	lists[SMTPD_CONTENT_MIME] = list_make(r->mime, paths[1]);
	lists[SMTPD_CONTENT_NESTED] = list_make(r->nested, paths[2]);
	lists[SMTPD_CONTENT_BODY] = list_make(r->body, paths[3]);
	buf_init(&cap->out, OUT_MAX);
	buf_init(&cap->log, OUT_MAX);
	c = smtpd_content_new(lists, names, r->header_max ? r->header_max : 102400,
	                      r->body_max ? r->body_max : 51200, &hooks);
	if (bytewise)
		for (i = 0; i < len; i++)
			smtpd_content_feed(c, msg + i, 1);
	else
		smtpd_content_feed(c, msg, len);
	smtpd_content_finish(c);
	res = *smtpd_content_result(c);
	smtpd_content_free(c);
	for (i = 0; i < SMTPD_CONTENT_CLASSES; i++) {
		if (lists[i] != NULL) {
			map_list_close(lists[i]);
			unlink(paths[i]);
		}
	}
	return res;
}

struct engine_case {
	struct run run;
	const char *msg;
	const char *out;	/* NULL: the same as msg */
	const char *log;
	int code;
	const char *text;	/* the REJECT reply text */
	bool discard, hold;
	const char *filter, *redirect, *bcc;
};

#define HDRS "Received: from x\r\nSubject: hello world\r\nTo: a@b\r\n\r\n"
#define MIME_MSG "Subject: m\r\nContent-Type: multipart/mixed; boundary=\"=b1\"\r\n\r\n" \
	"pre\r\n--=b1\r\nContent-Type: text/plain\r\nX-Part: one\r\n\r\nbody one\r\n" \
	"--=b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nX-Inner: 1\r\n\r\n" \
	"inner body\r\n--=b1--\r\nepilogue\r\n"

static const struct engine_case engine_cases[] = {
	/* nothing matches: byte for byte */
	{ { "/^X-None:/ REJECT\n", NULL, NULL, "/nothing/ REJECT\n", 0, 0 }, HDRS "body\r\n", NULL,
	  "", 0, NULL, false, false, NULL, NULL, NULL },
	/* REJECT with the default text, and with its own */
	{ { "/^Subject: hello/ REJECT\n", NULL, NULL, NULL, 0, 0 }, HDRS "body\r\n",
	  "Received: from x\r\n",
	  "reject header [Subject: hello world]: 5.7.1 message content rejected\n", 550,
	  "message content rejected", false, false, NULL, NULL, NULL },
	{ { "/^Subject: hello/ REJECT 5.7.0 no hellos\n", NULL, NULL, NULL, 0, 0 },
	  HDRS "body\r\n", "Received: from x\r\n",
	  "reject header [Subject: hello world]: 5.7.0 no hellos\n", 550,
	  "no hellos", false, false, NULL, NULL, NULL },
	{ { "/^Subject: hello/ REJECT 4.7.1 later\n", NULL, NULL, NULL, 0, 0 }, HDRS,
	  "Received: from x\r\n",
	  "reject header [Subject: hello world]: 4.7.1 later\n", 451, "later", false, false, NULL,
	  NULL, NULL },
	/* the header is matched whole: folded lines joined with "\n" */
	{ { "/^Subject: first[[:space:]]+second$/ REPLACE Subject: joined\n", NULL, NULL, NULL, 0, 0 },
	  "Subject: first\r\n\tsecond\r\nTo: x\r\n\r\nb\r\n",
	  "Subject: joined\r\nTo: x\r\n\r\nb\r\n",
	  "replace header [Subject: first\n\tsecond]: Subject: joined\n", 0, NULL, false, false,
	  NULL, NULL, NULL },
	/* IGNORE drops the whole folded header; PREPEND goes before it */
	{ { "/^X-Drop:/ IGNORE\n/^To:/ PREPEND X-Seen: yes\n", NULL, NULL, NULL, 0, 0 },
	  "X-Drop: a\r\n b\r\nTo: c\r\n\r\nbody\r\n", "X-Seen: yes\r\nTo: c\r\n\r\nbody\r\n",
	  "prepend header [To: c]: X-Seen: yes\n", 0, NULL, false, false, NULL, NULL, NULL },
	/* WARN, INFO, HOLD, DISCARD (no checks after it) */
	{ { "/^Subject:/ WARN look\n/^To:/ INFO seen\n/^Received:/ HOLD\n", NULL, NULL,
	    "/^body/ DISCARD gone\n", 0, 0 }, HDRS "body\r\nbody2\r\n", NULL,
	  "hold header [Received: from x]: \nwarning header [Subject: hello world]: look\n"
	  "info header [To: a@b]: seen\ndiscard body [body]: gone\n", 0, NULL, true, true, NULL,
	  NULL, NULL },
	/* REDIRECT stops the checks; FILTER and BCC are kept */
	{ { "/^Received:/ FILTER smtp:[127.0.0.1]:10024\n/^Subject:/ BCC <copy@example.org>\n"
	    "/^To:/ REDIRECT x@example.net\n", NULL, NULL, "/./ REJECT\n", 0, 0 },
	  HDRS "body\r\n", NULL,
	  "filter header [Received: from x]: smtp:[127.0.0.1]:10024\n"
	  "bcc header [Subject: hello world]: <copy@example.org>\n"
	  "redirect header [To: a@b]: x@example.net\n", 0, NULL, false, false,
	  "smtp:[127.0.0.1]:10024", "x@example.net", "copy@example.org" },
	/* malformed actions warn and keep the content */
	{ { "/^Received:/ FILTER nocolon\n/^Subject:/ PREPEND not a header\n/^To:/ FROB\n",
	    NULL, NULL, NULL, 0, 0 }, HDRS, NULL,
	  "WARN bad FILTER command \"nocolon\" in header_checks map -- ", 0, NULL, false, false,
	  NULL, NULL, NULL },
	/* body lines: IGNORE, REPLACE, PREPEND; the header part is not body */
	{ { NULL, NULL, NULL, "/^secret/ IGNORE\n/^old$/ REPLACE new\n/^x$/ PREPEND y\n"
	    "/^Subject/ REJECT\n", 0, 0 }, HDRS "secret 1\r\nold\r\nx\r\nkeep\r\n",
	  "Received: from x\r\nSubject: hello world\r\nTo: a@b\r\n\r\nnew\r\ny\r\nx\r\nkeep\r\n",
	  "replace body [old]: new\nprepend body [x]: y\n", 0, NULL, false, false, NULL, NULL,
	  NULL },
	/* MIME: part headers to mime_header_checks, inner non-MIME headers
	 * to nested_header_checks, boundaries are body lines */
	{ { "/^(Subject|X-Part|X-Inner):/ WARN header $1\n",
	    "/^(Content-Type|X-Part|Subject):.*/ WARN mime\n", "/^(.*):/ WARN nested $1\n",
	    "/^(--=b1|inner body|epilogue|pre)/ WARN body\n", 0, 0 }, MIME_MSG, NULL,
	  "warning header [Subject: m]: header Subject\n"
	  "warning header [Content-Type: multipart/mixed; boundary=\"=b1\"]: mime\n"
	  "warning body [pre]: body\n"
	  "warning body [--=b1]: body\n"
	  "warning header [Content-Type: text/plain]: mime\n"
	  "warning header [X-Part: one]: mime\n"
	  "warning body [--=b1]: body\n"
	  "warning header [Content-Type: message/rfc822]: mime\n"
	  "warning header [Subject: inner]: nested Subject\n"
	  "warning header [X-Inner: 1]: nested X-Inner\n"
	  "warning body [inner body]: body\n"
	  "warning body [--=b1--]: body\n"
	  "warning body [epilogue]: body\n", 0, NULL, false, false, NULL, NULL, NULL },
	/* a header block ended by a line that is no header */
	{ { "/^To:/ REPLACE To: z\n", NULL, NULL, "/^not a header/ WARN b\n", 0, 0 },
	  "To: y\r\nnot a header\r\nmore\r\n", "To: z\r\nnot a header\r\nmore\r\n",
	  "replace header [To: y]: To: z\nwarning body [not a header]: b\n", 0, NULL, false,
	  false, NULL, NULL, NULL },
	/* no final CR LF; bare LF lines */
	{ { "/^To:/ IGNORE\n", NULL, NULL, "/^end$/ REPLACE END\n", 0, 0 },
	  "To: y\nA: b\n\nend", "A: b\n\nEND", "replace body [end]: END\n", 0, NULL, false, false,
	  NULL, NULL, NULL },
};

static void
check_case(const struct engine_case *c, bool bytewise)
{
	struct smtpd_content_result res;
	struct capture cap;

	res = run_checks(&c->run, c->msg, strlen(c->msg), bytewise, &cap);
	ck_assert_str_eq(buf_cstr(&cap.out), c->out != NULL ? c->out : c->msg);
	if (strncmp(c->log, "WARN ", 5) == 0)
		ck_assert_msg(strncmp(buf_cstr(&cap.log), c->log, strlen(c->log)) == 0, "%s",
		              buf_cstr(&cap.log));
	else
		ck_assert_str_eq(buf_cstr(&cap.log), c->log);
	ck_assert_int_eq(res.code, c->code);
	if (c->text != NULL)
		ck_assert_str_eq(res.text, c->text);
	ck_assert_int_eq(res.discard, c->discard);
	ck_assert_int_eq(res.hold, c->hold);
	ck_assert_str_eq(res.actions.filter, c->filter ? c->filter : "");
	ck_assert_str_eq(res.actions.redirect, c->redirect ? c->redirect : "");
	ck_assert_str_eq(res.actions.bcc, c->bcc ? c->bcc : "");
	buf_free(&cap.out);
	buf_free(&cap.log);
}

START_TEST(test_engine)
{
	check_case(&engine_cases[_i], false);
	check_case(&engine_cases[_i], true);
}
END_TEST

/* header_size_limit: the excess of a long header is dropped, the rest of
 * the message is intact, and the check sees the first bytes. */
START_TEST(test_header_limit)
{
	struct run r = { "/^X-Long: a+$/ WARN long\n", NULL, NULL, NULL, 64, 0 };
	struct smtpd_content_result res;
	struct capture cap;
	struct buf msg, want;
	size_t i;

	buf_init(&msg, OUT_MAX);
	buf_init(&want, OUT_MAX);
	buf_append_str(&msg, "X-Long: ");
	for (i = 0; i < 200; i++)
		buf_append_char(&msg, 'a');
	buf_append_str(&msg, "\r\n b\r\nTo: x\r\n\r\nbody\r\n");
	buf_append_str(&want, "X-Long: ");
	for (i = 0; i < 56; i++)
		buf_append_char(&want, 'a');
	buf_append_str(&want, "\r\nTo: x\r\n\r\nbody\r\n");
	res = run_checks(&r, buf_data(&msg), buf_len(&msg), false, &cap);
	ck_assert_int_eq(res.code, 0);
	ck_assert_str_eq(buf_cstr(&cap.out), buf_cstr(&want));
	ck_assert_msg(strstr(buf_cstr(&cap.log), "WARN header longer than header_size_limit (64 "
	              "bytes)") != NULL, "%s", buf_cstr(&cap.log));
	ck_assert_msg(strstr(buf_cstr(&cap.log), "warning header [X-Long: aaa") != NULL, "%s",
	              buf_cstr(&cap.log));
	buf_free(&cap.out);
	buf_free(&cap.log);
	buf_free(&msg);
	buf_free(&want);
}
END_TEST

/* A body line longer than SMTPD_CONTENT_LINE_MAX is checked in pieces and
 * stored whole; body_checks look at the first body_checks_size_limit
 * bytes only. */
START_TEST(test_body_limits)
{
	struct run r = { NULL, NULL, NULL, "/^b+$/ WARN piece\n/^late$/ REJECT\n", 0, 100 };
	struct smtpd_content_result res;
	struct capture cap;
	struct buf msg;
	size_t i;

	buf_init(&msg, OUT_MAX);
	buf_append_str(&msg, "To: x\r\n\r\n");
	for (i = 0; i < SMTPD_CONTENT_LINE_MAX * 2 + 10; i++)
		buf_append_char(&msg, 'b');
	buf_append_str(&msg, "\r\nlate\r\n");
	r.body_max = SMTPD_CONTENT_LINE_MAX * 3;
	res = run_checks(&r, buf_data(&msg), buf_len(&msg), false, &cap);
	ck_assert_int_eq(res.code, 550);	/* "late" is within the budget */
	/* everything before the rejected line was stored, the long line whole */
	ck_assert(buf_len(&cap.out) == buf_len(&msg) - strlen("late\r\n") &&
	          memcmp(buf_data(&cap.out), buf_data(&msg), buf_len(&cap.out)) == 0);
	ck_assert_msg(strstr(buf_cstr(&cap.log), "warning body [bbb") != NULL, "%.200s",
	              buf_cstr(&cap.log));
	buf_free(&cap.out);
	buf_free(&cap.log);
	r.body_max = 100;
	res = run_checks(&r, buf_data(&msg), buf_len(&msg), false, &cap);
	ck_assert_int_eq(res.code, 0);		/* past the budget: not looked at */
	ck_assert(buf_len(&cap.out) == buf_len(&msg) &&
	          memcmp(buf_data(&cap.out), buf_data(&msg), buf_len(&msg)) == 0);
	buf_free(&cap.out);
	buf_free(&cap.log);
	buf_free(&msg);
}
END_TEST

static Suite *
smtpd_content_suite(void)
{
	Suite *s = suite_create("smtpd_content");
	TCase *tc = tcase_create("smtpd_content");

	tcase_add_loop_test(tc, test_engine, 0, NELEM(engine_cases));
	tcase_add_test(tc, test_header_limit);
	tcase_add_test(tc, test_body_limits);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtpd_content_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
