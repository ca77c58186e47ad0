/*
 * bounce_test: RFC 3464 notices. A fixed clock and seed make the output
 * deterministic; the original message is a temporary file. Every notice
 * generated here goes through check_notice(): CRLF line ends, no line
 * over 998 octets, and a small MIME splitter that finds the boundary in
 * the top-level Content-Type and checks the three parts of the
 * multipart/report.
 *
 * Set BOUNCE_TEST_DUMP=path to write one sample notice there (for a
 * manual check with another MIME parser).
 */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/buf.h"
#include "queue/bounce.h"
#include "queue/envelope.h"

#define NOW_US 1700086400000000ll	/* Wed, 15 Nov 2023 22:13:20 +0000 */
#define ARRIVAL_US 1700000000123456ll	/* Tue, 14 Nov 2023 22:13:20 +0000 */
#define SEED 0x5eed5eed12345678ull
#define OUT_MAX (16u * 1024 * 1024)
#define PM_RCPT "postmaster@mx.example.net"
#define PM_SENDER "double-bounce@mx.example.net"

static const char orig_msg[] =
	"Received: from client.example.org (client.example.org [192.0.2.1])\r\n"
	"\tby mx.example.net (tern) with ESMTP id 0123456789ABCD\r\n"
	"\tfor <bob@example.com>; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	"From: Alice <alice@example.org>\r\n"
	"To: Bob <bob@example.com>\r\n"
	"Subject: hello\r\n"
	"Message-ID: <m1@example.org>\r\n"
	"\r\n"
	"BODYLINE one\r\n"
	"BODYLINE two\r\n";

/* ---- fixtures ---- */

static int
orig_fd(const void *p, size_t n)
{
	char path[] = "/tmp/bounce_test.XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
	/* The module must pread from 0, whatever the offset. */
	return fd;
}

static void
env_make(struct envelope *e, enum envelope_ret ret)
{
	envelope_init(e);
	envelope_set(&e->sender, "alice@example.org");
	envelope_add_rcpt(e, "bob@example.com", "rfc822;robert@example.com", 0);
	envelope_add_rcpt(e, "carol@example.net", NULL, 0);
	e->ret = ret;
	e->arrival = ARRIVAL_US;
	envelope_set(&e->helo, "client.example.org");
	envelope_set(&e->client_addr, "192.0.2.1");
}

static struct bounce_rcpt rcpts_failed[] = {
	{ "bob@example.com", "rfc822;robert@example.com", BOUNCE_ACTION_FAILED, "5.1.1",
	  "dns; mx.example.com", "smtp; 550 5.1.1 <bob@example.com>: no such user",
	  NOW_US - 1000000, NOW_US + 3600000000ll },
	{ "carol@example.net", NULL, BOUNCE_ACTION_FAILED, "4.4.1", NULL,
	  "X-Tern; connect to mx.example.net: Connection refused (expired)", 0, 0 },
};

static void
report_make(struct bounce_report *r, const struct envelope *e, enum bounce_kind kind,
            const struct bounce_rcpt *rc, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->myhostname = "mx.example.net";
	r->mail_name = "tern";
	r->env = e;
	r->queue_id = "0123456789ABCD";
	r->rcpts = rc;
	r->nrcpt = n;
	r->now = NOW_US;
	r->seed = SEED;
}

/* ---- a small MIME splitter ---- */

struct part {
	const char *start;	/* the part's header */
	const char *body;
	size_t body_len;
	char ctype[128];	/* Content-Type value up to ';', lower case */
};

#define PARTS_MAX 8

/* Content-Type value (up to ';' or line end) of the header block [h, end). */
static void
header_ctype(const char *h, const char *end, char *dst, size_t dstsz)
{
	const char *p = h, *v;
	size_t n = 0;

	dst[0] = '\0';
	while (p < end) {
		if ((p == h || p[-1] == '\n') && strncasecmp(p, "Content-Type:", 13) == 0) {
			v = p + 13;
			while (*v == ' ')
				v++;
			while (v < end && *v != ';' && *v != '\r' && n + 1 < dstsz) {
				dst[n++] = (char)((*v >= 'A' && *v <= 'Z') ? *v - 'A' + 'a' : *v);
				v++;
			}
			dst[n] = '\0';
			return;
		}
		p++;
	}
}

/* Split msg; returns the number of parts (-1 on a structural error), the
 * boundary in boundary. The closing delimiter must be present. */
static int
mime_split(const char *msg, char *boundary, size_t bsz, struct part *parts, char *top_ctype)
{
	const char *hend = strstr(msg, "\r\n\r\n"), *b, *e, *p, *next, *ph;
	char delim[128];
	size_t blen, dl;
	int n = 0;

	if (hend == NULL)
		return -1;
	header_ctype(msg, hend + 2, top_ctype, 128);
	b = strstr(msg, "boundary=\"");
	if (b == NULL || b > hend)
		return -1;
	b += 10;
	e = strchr(b, '"');
	blen = (size_t)(e - b);
	if (blen + 1 > bsz)
		return -1;
	memcpy(boundary, b, blen);
	boundary[blen] = '\0';
	dl = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);

	p = strstr(hend + 2, delim);	/* hend + 2: the preamble may be empty */
	if (p == NULL)
		return -1;
	for (;;) {
		p += dl;
		if (strncmp(p, "--", 2) == 0)
			return strcmp(p, "--\r\n") == 0 ? n : -1;	/* closing delimiter, end */
		if (strncmp(p, "\r\n", 2) != 0 || n == PARTS_MAX)
			return -1;
		ph = p + 2;
		next = strstr(ph, delim);
		if (next == NULL)
			return -1;
		parts[n].start = ph;
		e = strncmp(ph, "\r\n", 2) == 0 ? ph : strstr(ph, "\r\n\r\n");
		if (e == NULL || e > next)
			return -1;
		header_ctype(ph, e, parts[n].ctype, sizeof(parts[n].ctype));
		parts[n].body = e == ph ? ph + 2 : e + 4;
		parts[n].body_len = (size_t)(next - parts[n].body);
		n++;
		p = next;
	}
}

/* Every line ends in CRLF and has at most 998 octets before it. */
static void
check_lines(const char *msg, size_t len)
{
	size_t i, col = 0;

	for (i = 0; i < len; i++) {
		if (msg[i] == '\r') {
			ck_assert_msg(i + 1 < len && msg[i + 1] == '\n', "bare CR at %zu", i);
			i++;
			col = 0;
			continue;
		}
		ck_assert_msg(msg[i] != '\n', "bare LF at %zu", i);
		col++;
		ck_assert_msg(col <= 998, "line over 998 octets at %zu", i);
	}
	ck_assert_msg(len >= 2 && msg[len - 2] == '\r' && msg[len - 1] == '\n', "no final CRLF");
}

struct notice {
	struct buf out;
	const char *msg;
	char boundary[128];
	char top_ctype[128];
	struct part parts[PARTS_MAX];
	int nparts;
};

/* Generate, then check the lines and the MIME structure. */
static void
gen(struct notice *nt, const struct bounce_report *r, int fd, const char *ret_ctype)
{
	char err[256] = "";

	buf_init(&nt->out, OUT_MAX);
	ck_assert_msg(bounce_write_buf(r, fd, &nt->out, err, sizeof(err)) == 0, "%s", err);
	nt->msg = buf_cstr(&nt->out);
	check_lines(nt->msg, buf_len(&nt->out));
	ck_assert_uint_eq(strlen(nt->msg), buf_len(&nt->out));
	nt->nparts = mime_split(nt->msg, nt->boundary, sizeof(nt->boundary), nt->parts,
	                        nt->top_ctype);
	ck_assert_int_eq(nt->nparts, 3);
	ck_assert_str_eq(nt->top_ctype, "multipart/report");
	ck_assert_ptr_nonnull(strstr(nt->msg, "report-type=delivery-status"));
	ck_assert_str_eq(nt->parts[0].ctype, "text/plain");
	ck_assert_str_eq(nt->parts[1].ctype, r->env->smtputf8 ? "message/global-delivery-status"
	                                                     : "message/delivery-status");
	ck_assert_str_eq(nt->parts[2].ctype, ret_ctype);
}

static void
notice_free(struct notice *nt)
{
	buf_free(&nt->out);
}

/* Does a line of s start with prefix? */
static bool
has_line(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	const char *p = s;

	for (;;) {
		if (strncmp(p, prefix, n) == 0)
			return true;
		p = strstr(p, "\r\n");
		if (p == NULL)
			return false;
		p += 2;
	}
}

static int
count(const char *s, const char *needle)
{
	int n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

/* The part's body as a C string (copied). */
static char *
part_str(const struct part *p)
{
	char *s = malloc(p->body_len + 1);

	memcpy(s, p->body, p->body_len);
	s[p->body_len] = '\0';
	return s;
}

/* ---- tests ---- */

START_TEST(test_failed_hdrs)
{
	struct envelope e;
	struct bounce_report r;
	struct notice nt;
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);
	char *status, *ret, *text;

	env_make(&e, ENVELOPE_RET_HDRS);
	report_make(&r, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);
	gen(&nt, &r, fd, "text/rfc822-headers");

	ck_assert(has_line(nt.msg, "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"));
	ck_assert(has_line(nt.msg, "To: <alice@example.org>\r\n"));
	ck_assert(has_line(nt.msg, "Subject: Undelivered Mail Returned to Sender\r\n"));
	ck_assert(has_line(nt.msg, "Date: Wed, 15 Nov 2023 22:13:20 +0000\r\n"));
	ck_assert(has_line(nt.msg, "Message-ID: <20231115221320.0123456789ABCD."));
	ck_assert(has_line(nt.msg, "Auto-Submitted: auto-replied\r\n"));
	ck_assert(has_line(nt.msg, "MIME-Version: 1.0\r\n"));
	ck_assert_ptr_null(strstr(nt.msg, "Content-Transfer-Encoding: 8bit"));

	status = part_str(&nt.parts[1]);
	ck_assert(has_line(status, "Reporting-MTA: dns; mx.example.net\r\n"));
	ck_assert(has_line(status, "X-Tern-Queue-ID: 0123456789ABCD\r\n"));
	ck_assert(has_line(status, "X-Tern-Sender: rfc822; alice@example.org\r\n"));
	ck_assert(has_line(status, "Received-From-MTA: dns; client.example.org ([192.0.2.1])\r\n"));
	ck_assert_int_eq(count(status, "Original-Recipient: "), 1);
	ck_assert(has_line(status, "Original-Recipient: rfc822;robert@example.com\r\n"));
	ck_assert(has_line(status, "Final-Recipient: rfc822; bob@example.com\r\n"));
	ck_assert(has_line(status, "Final-Recipient: rfc822; carol@example.net\r\n"));
	ck_assert_int_eq(count(status, "\r\nAction: failed\r\n"), 2);
	ck_assert(has_line(status, "Status: 5.1.1\r\n"));
	ck_assert(has_line(status, "Status: 4.4.1\r\n"));
	ck_assert(has_line(status, "Remote-MTA: dns; mx.example.com\r\n"));
	ck_assert(has_line(status, "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.com>: no such"));
	ck_assert(has_line(status, "Last-Attempt-Date: Wed, 15 Nov 2023 22:13:19 +0000\r\n"));
	/* RFC 3464 section 2.3.9: only for delayed. */
	ck_assert_ptr_null(strstr(status, "Will-Retry-Until"));
	/* Per-message block, then one blank line before each recipient. */
	ck_assert_int_eq(count(status, "\r\n\r\n"), 2);
	/* No ENVID given: no Original-Envelope-Id. */
	ck_assert_ptr_null(strstr(status, "Original-Envelope-Id"));

	ret = part_str(&nt.parts[2]);
	ck_assert_ptr_nonnull(strstr(ret, "Received: from client.example.org"));
	ck_assert_ptr_nonnull(strstr(ret, "Subject: hello\r\n"));
	ck_assert_ptr_null(strstr(ret, "BODYLINE"));
	ck_assert_ptr_null(strstr(nt.msg, "BODYLINE"));
	ck_assert(has_line(nt.parts[2].start, "Content-Description: Undelivered Message Headers\r\n"));

	text = part_str(&nt.parts[0]);
	ck_assert_ptr_nonnull(strstr(text, "mx.example.net"));
	ck_assert_ptr_nonnull(strstr(text, "<bob@example.com> (originally <robert@example.com>): host"));
	ck_assert_ptr_nonnull(strstr(text, "host mx.example.com\r\n    said: 550 5.1.1"));
	ck_assert_ptr_nonnull(strstr(text, "<carol@example.net>: connect to mx.example.net"));

	free(status);
	free(ret);
	free(text);
	notice_free(&nt);
	envelope_free(&e);
	close(fd);
}
END_TEST

START_TEST(test_ret_full)
{
	struct envelope e;
	struct bounce_report r;
	struct notice nt;
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);
	char *ret;

	env_make(&e, ENVELOPE_RET_FULL);
	report_make(&r, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);
	r.size_limit = 64u * 1024 * 1024;	/* return the whole big message */
	gen(&nt, &r, fd, "message/rfc822");
	ret = part_str(&nt.parts[2]);
	/* The whole original, byte for byte. */
	ck_assert_str_eq(ret, orig_msg);
	ck_assert(has_line(nt.parts[2].start, "Content-Description: Undelivered Message\r\n"));
	free(ret);
	notice_free(&nt);
	envelope_free(&e);
	close(fd);
}
END_TEST

/* Without RET: whole under bounce_size_limit, header only over it. */
START_TEST(test_no_ret_size_limit)
{
	struct envelope e;
	struct bounce_report r;
	struct notice nt;
	struct buf big;
	enum bounce_return what;
	int fd, i;
	char *ret;

	env_make(&e, ENVELOPE_RET_DEFAULT);
	report_make(&r, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);

	fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);
	gen(&nt, &r, fd, "message/rfc822");
	ret = part_str(&nt.parts[2]);
	ck_assert_str_eq(ret, orig_msg);
	free(ret);
	notice_free(&nt);
	close(fd);

	/* Over the default 50000 bytes. */
	buf_init(&big, 1024 * 1024);
	buf_append(&big, orig_msg, sizeof(orig_msg) - 1);
	for (i = 0; i < 1000; i++)
		buf_append_printf(&big, "line %04d of a big body, padded to be long enough......\r\n", i);
	ck_assert_uint_gt(buf_len(&big), BOUNCE_SIZE_LIMIT_DEFAULT);
	fd = orig_fd(buf_data(&big), buf_len(&big));
	gen(&nt, &r, fd, "text/rfc822-headers");
	ck_assert_ptr_null(strstr(nt.msg, "BODYLINE"));
	ck_assert_ptr_null(strstr(nt.msg, "line 0001"));
	notice_free(&nt);

	/* A configured limit. */
	r.size_limit = buf_len(&big);
	gen(&nt, &r, fd, "message/rfc822");
	ck_assert_ptr_nonnull(strstr(nt.msg, "line 0999 of a big body"));
	notice_free(&nt);
	close(fd);

	/* The decision alone. */
	r.size_limit = 0;
	ck_assert_str_eq(bounce_return_part(&r, 50000, &what), "message/rfc822");
	ck_assert_int_eq(what, BOUNCE_RETURN_FULL);
	ck_assert_str_eq(bounce_return_part(&r, 50001, &what), "text/rfc822-headers");
	ck_assert_int_eq(what, BOUNCE_RETURN_HEADERS);
	/* RET=FULL is bounded by the size limit too (Postfix; backscatter). */
	e.ret = ENVELOPE_RET_FULL;
	ck_assert_str_eq(bounce_return_part(&r, 50000, NULL), "message/rfc822");
	ck_assert_str_eq(bounce_return_part(&r, 50001, NULL), "text/rfc822-headers");
	e.ret = ENVELOPE_RET_HDRS;
	ck_assert_str_eq(bounce_return_part(&r, 10, NULL), "text/rfc822-headers");
	e.ret = ENVELOPE_RET_FULL;
	e.body = ENVELOPE_BODY_BINARYMIME;
	ck_assert_str_eq(bounce_return_part(&r, 10, NULL), "text/rfc822-headers");
	e.body = ENVELOPE_BODY_DEFAULT;
	e.smtputf8 = true;
	ck_assert_str_eq(bounce_return_part(&r, 10, NULL), "message/global");
	e.ret = ENVELOPE_RET_HDRS;
	ck_assert_str_eq(bounce_return_part(&r, 10, NULL), "message/global-headers");

	buf_free(&big);
	envelope_free(&e);
}
END_TEST

START_TEST(test_delayed)
{
	static const struct bounce_rcpt rc[] = {
		{ "bob@example.com", NULL, BOUNCE_ACTION_DELAYED, "4.4.1", "dns; mx.example.com",
		  "smtp; 451 4.3.0 try later", NOW_US - 60000000ll, ARRIVAL_US + 432000000000ll },
	};
	struct envelope e;
	struct bounce_report r;
	struct notice nt;
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);
	char *status, *text;

	env_make(&e, ENVELOPE_RET_FULL);	/* a warning returns the header anyway */
	report_make(&r, &e, BOUNCE_KIND_DELAYED, rc, 1);
	gen(&nt, &r, fd, "text/rfc822-headers");
	ck_assert(has_line(nt.msg, "Subject: Delayed Mail (still being retried)\r\n"));
	status = part_str(&nt.parts[1]);
	ck_assert(has_line(status, "Action: delayed\r\n"));
	ck_assert(has_line(status, "Status: 4.4.1\r\n"));
	ck_assert(has_line(status, "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n"));
	ck_assert(has_line(status, "Last-Attempt-Date: Wed, 15 Nov 2023 22:12:20 +0000\r\n"));
	ck_assert_ptr_null(strstr(nt.msg, "BODYLINE"));
	text = part_str(&nt.parts[0]);
	ck_assert_ptr_nonnull(strstr(text, "only a warning"));
	ck_assert_ptr_nonnull(strstr(text, "Sun, 19 Nov 2023"));
	free(status);
	free(text);
	notice_free(&nt);
	envelope_free(&e);
	close(fd);
}
END_TEST

/* One row per NOTIFY value and action. */
static const struct {
	unsigned notify;
	enum bounce_action action;
	bool wanted;
} notify_rows[] = {
	{ 0, BOUNCE_ACTION_FAILED, true },	/* RFC 3461 4.1 default FAILURE,DELAY */
	{ 0, BOUNCE_ACTION_DELAYED, true },
	{ 0, BOUNCE_ACTION_DELIVERED, false },
	{ 0, BOUNCE_ACTION_RELAYED, false },
	{ ENVELOPE_NOTIFY_NEVER, BOUNCE_ACTION_FAILED, false },
	{ ENVELOPE_NOTIFY_NEVER, BOUNCE_ACTION_DELAYED, false },
	{ ENVELOPE_NOTIFY_NEVER, BOUNCE_ACTION_DELIVERED, false },
	{ ENVELOPE_NOTIFY_SUCCESS, BOUNCE_ACTION_DELIVERED, true },
	{ ENVELOPE_NOTIFY_SUCCESS, BOUNCE_ACTION_RELAYED, true },
	{ ENVELOPE_NOTIFY_SUCCESS, BOUNCE_ACTION_EXPANDED, true },
	{ ENVELOPE_NOTIFY_SUCCESS, BOUNCE_ACTION_FAILED, false },
	{ ENVELOPE_NOTIFY_SUCCESS, BOUNCE_ACTION_DELAYED, false },
	{ ENVELOPE_NOTIFY_FAILURE, BOUNCE_ACTION_FAILED, true },
	{ ENVELOPE_NOTIFY_FAILURE, BOUNCE_ACTION_DELAYED, false },
	{ ENVELOPE_NOTIFY_DELAY, BOUNCE_ACTION_DELAYED, true },
	{ ENVELOPE_NOTIFY_DELAY, BOUNCE_ACTION_FAILED, false },
	{ ENVELOPE_NOTIFY_SUCCESS | ENVELOPE_NOTIFY_FAILURE, BOUNCE_ACTION_FAILED, true },
	{ ENVELOPE_NOTIFY_SUCCESS | ENVELOPE_NOTIFY_FAILURE, BOUNCE_ACTION_DELIVERED, true },
	{ ENVELOPE_NOTIFY_SUCCESS | ENVELOPE_NOTIFY_FAILURE, BOUNCE_ACTION_DELAYED, false },
};
#define NNOTIFY (sizeof(notify_rows) / sizeof(notify_rows[0]))

START_TEST(test_notify)
{
	struct envelope e;

	envelope_init(&e);
	envelope_set(&e.sender, "alice@example.org");
	envelope_add_rcpt(&e, "x@example.com", NULL, 0);
	envelope_add_rcpt(&e, "bob@example.com", NULL, notify_rows[_i].notify);
	ck_assert_msg(bounce_wanted(&e, 1, notify_rows[_i].action) == notify_rows[_i].wanted,
	              "row %d", _i);
	ck_assert(!bounce_is_null_sender(&e));
	/* The null sender never gets one, whatever NOTIFY says. */
	envelope_set(&e.sender, "");
	ck_assert(bounce_is_null_sender(&e));
	ck_assert(!bounce_wanted(&e, 1, notify_rows[_i].action));
	envelope_free(&e);
}
END_TEST

START_TEST(test_success)
{
	static const struct bounce_rcpt rc[] = {
		{ "bob@example.com", NULL, BOUNCE_ACTION_DELIVERED, "2.0.0", "dns; mx.example.com",
		  "smtp; 250 2.0.0 Ok: queued as 4711", NOW_US, 0 },
	};
	struct envelope e;
	struct bounce_report r;
	struct notice nt;
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);
	char *status;

	env_make(&e, ENVELOPE_RET_FULL);	/* a success report returns the header anyway */
	e.rcpts[0].notify = ENVELOPE_NOTIFY_SUCCESS;
	e.rcpts[1].notify = ENVELOPE_NOTIFY_NEVER;
	ck_assert(bounce_wanted(&e, 0, BOUNCE_ACTION_DELIVERED));
	ck_assert(!bounce_wanted(&e, 1, BOUNCE_ACTION_DELIVERED));
	ck_assert(!bounce_wanted(&e, 1, BOUNCE_ACTION_FAILED));
	report_make(&r, &e, BOUNCE_KIND_DELIVERED, rc, 1);
	gen(&nt, &r, fd, "text/rfc822-headers");
	ck_assert(has_line(nt.msg, "Subject: Successful Mail Delivery Report\r\n"));
	status = part_str(&nt.parts[1]);
	ck_assert(has_line(status, "Action: delivered\r\n"));
	ck_assert(has_line(status, "Status: 2.0.0\r\n"));
	ck_assert(has_line(nt.parts[2].start, "Content-Description: Message Headers\r\n"));
	ck_assert_ptr_null(strstr(nt.msg, "BODYLINE"));
	free(status);
	notice_free(&nt);

	report_make(&r, &e, BOUNCE_KIND_RELAYED, rc, 1);
	gen(&nt, &r, fd, "text/rfc822-headers");
	ck_assert(has_line(nt.msg, "Subject: Mail Delivery Report (relayed)\r\n"));
	notice_free(&nt);
	envelope_free(&e);
	close(fd);
}
END_TEST

START_TEST(test_null_sender_refused)
{
	struct envelope e;
	struct bounce_report r;
	struct buf out;
	char err[128] = "";
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);

	env_make(&e, ENVELOPE_RET_FULL);
	envelope_set(&e.sender, "");
	ck_assert(!bounce_wanted(&e, 0, BOUNCE_ACTION_FAILED));
	report_make(&r, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);
	buf_init(&out, OUT_MAX);
	ck_assert_int_eq(bounce_write_buf(&r, fd, &out, err, sizeof(err)), -1);
	ck_assert_uint_eq(buf_len(&out), 0);
	ck_assert_ptr_nonnull(strstr(err, "<>"));
	buf_free(&out);
	envelope_free(&e);
	close(fd);
}
END_TEST

START_TEST(test_envid_arrival)
{
	struct envelope e;
	struct bounce_report r;
	struct notice nt;
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);
	char *status;

	env_make(&e, ENVELOPE_RET_HDRS);
	envelope_set(&e.envid, "QQ+314159");
	report_make(&r, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);
	gen(&nt, &r, fd, "text/rfc822-headers");
	status = part_str(&nt.parts[1]);
	/* RFC 3464 2.2: Original-Envelope-Id first, then Reporting-MTA. */
	ck_assert_ptr_eq(strstr(status, "Original-Envelope-Id: QQ+314159\r\n"), status);
	ck_assert(has_line(status, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	ck_assert(strstr(status, "Reporting-MTA:") < strstr(status, "Arrival-Date:"));
	free(status);
	notice_free(&nt);
	envelope_free(&e);
	close(fd);
}
END_TEST

START_TEST(test_smtputf8)
{
	static const struct bounce_rcpt rc[] = {
		{ "pel\xc3\xa9@exempl\xc3\xa9.example", NULL, BOUNCE_ACTION_FAILED, "5.1.1",
		  "dns; mx.exempl\xc3\xa9.example", "smtp; 550 5.1.1 utilisateur inconnu \xc3\xa9", 0, 0 },
		{ "bob@example.com", NULL, BOUNCE_ACTION_FAILED, "5.1.1", NULL, NULL, 0, 0 },
	};
	struct envelope e;
	struct bounce_report r;
	struct notice nt;
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);
	char *status, *text;

	env_make(&e, ENVELOPE_RET_FULL);
	e.smtputf8 = true;
	report_make(&r, &e, BOUNCE_KIND_FAILED, rc, 2);
	gen(&nt, &r, fd, "message/global");
	status = part_str(&nt.parts[1]);
	ck_assert(has_line(status, "Final-Recipient: utf-8; pel\xc3\xa9@exempl\xc3\xa9.example\r\n"));
	ck_assert(has_line(status, "Final-Recipient: rfc822; bob@example.com\r\n"));
	ck_assert(has_line(status, "Diagnostic-Code: smtp; 550 5.1.1 utilisateur inconnu \xc3\xa9\r\n"));
	/* Remote-MTA is ASCII only: the non-ASCII byte is replaced. */
	ck_assert(has_line(status, "Remote-MTA: dns; mx.exempl??.example\r\n"));
	ck_assert(has_line(nt.parts[1].start, "Content-Transfer-Encoding: 8bit\r\n"));
	ck_assert(has_line(nt.msg, "Content-Transfer-Encoding: 8bit\r\n"));
	ck_assert(has_line(nt.parts[0].start, "Content-Type: text/plain; charset=utf-8\r\n"));
	text = part_str(&nt.parts[0]);
	ck_assert_ptr_nonnull(strstr(text, "<pel\xc3\xa9@exempl\xc3\xa9.example>"));
	ck_assert_ptr_nonnull(strstr(text, "<bob@example.com>: status 5.1.1."));
	free(status);
	free(text);
	notice_free(&nt);

	/* Without SMTPUTF8 a non-ASCII address is written \x{..} (RFC 6533),
	 * and nothing 8-bit appears outside the returned original. */
	e.smtputf8 = false;
	gen(&nt, &r, fd, "message/rfc822");
	status = part_str(&nt.parts[1]);
	ck_assert(has_line(status, "Final-Recipient: utf-8; pel\\x{E9}@exempl\\x{E9}.example\r\n"));
	ck_assert(has_line(status, "Diagnostic-Code: smtp; 550 5.1.1 utilisateur inconnu ??\r\n"));
	ck_assert(has_line(nt.parts[0].start, "Content-Type: text/plain; charset=us-ascii\r\n"));
	ck_assert_ptr_null(strstr(nt.msg, "Content-Transfer-Encoding: 8bit"));
	free(status);
	notice_free(&nt);
	envelope_free(&e);
	close(fd);
}
END_TEST

START_TEST(test_hostile_diagnostic)
{
	struct bounce_rcpt rc[2];
	struct envelope e;
	struct bounce_report r;
	struct notice nt;
	char longdiag[6000];
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);
	char *status;

	memset(rc, 0, sizeof(rc));
	rc[0].final_rcpt = "bob@example.com";
	rc[0].action = BOUNCE_ACTION_FAILED;
	rc[0].status = "5.7.1";
	rc[0].remote_mta = "dns; evil.example\r\nX-Injected: 1";
	rc[0].diagnostic = "smtp; 550 5.7.1 nope\r\nSubject: pwned\r\n\r\n--=_tern-x\r\n"
	                   "Content-Type: text/html\r\n\x01\x7f\tend";
	memset(longdiag, 'A', sizeof(longdiag) - 1);
	memcpy(longdiag, "smtp; 550 ", 10);
	longdiag[sizeof(longdiag) - 1] = '\0';
	rc[1].final_rcpt = "carol@example.net";
	rc[1].action = BOUNCE_ACTION_FAILED;
	rc[1].status = "05.1.1";	/* malformed: replaced by 5.0.0 */
	rc[1].diagnostic = longdiag;

	env_make(&e, ENVELOPE_RET_HDRS);
	report_make(&r, &e, BOUNCE_KIND_FAILED, rc, 2);
	gen(&nt, &r, fd, "text/rfc822-headers");
	ck_assert(!has_line(nt.msg, "Subject: pwned"));
	ck_assert(!has_line(nt.msg, "X-Injected"));
	ck_assert(!has_line(nt.msg, "Content-Type: text/html"));
	ck_assert(!has_line(nt.msg, "--=_tern-x"));
	ck_assert_int_eq(count(nt.msg, "\r\nSubject: "), 2);	/* ours, and the original's */
	status = part_str(&nt.parts[1]);
	ck_assert(has_line(status, "Diagnostic-Code: smtp; 550 5.7.1 nope Subject: pwned"));
	ck_assert_ptr_nonnull(strstr(status, "text/html ?? end"));
	ck_assert(has_line(status, "Status: 5.0.0\r\n"));
	/* The long word was cut and folded; check_lines() saw no line > 998. */
	ck_assert_ptr_nonnull(strstr(status, "AAA...\r\n"));
	free(status);
	notice_free(&nt);
	envelope_free(&e);
	close(fd);
}
END_TEST

/* The boundary occurs in the original: another one is chosen. */
START_TEST(test_boundary_collision)
{
	struct envelope e;
	struct bounce_report r;
	struct notice nt, nt2;
	struct bounce_rcpt rc[1];
	struct buf m;
	char b1[128];
	int fd, fd2;

	env_make(&e, ENVELOPE_RET_FULL);
	report_make(&r, &e, BOUNCE_KIND_FAILED, rcpts_failed, 1);
	r.size_limit = 64u * 1024 * 1024;	/* return the whole big message */
	fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);
	gen(&nt, &r, fd, "message/rfc822");
	snprintf(b1, sizeof(b1), "%s", nt.boundary);
	/* Deterministic: the same seed gives the same notice. */
	gen(&nt2, &r, fd, "message/rfc822");
	ck_assert_str_eq(nt.msg, nt2.msg);
	notice_free(&nt);
	notice_free(&nt2);

	/* In the body of the original, as a delimiter line. */
	buf_init(&m, 1024 * 1024);
	buf_append(&m, orig_msg, sizeof(orig_msg) - 1);
	buf_append_printf(&m, "--%s\r\nevil\r\n--%s--\r\n", b1, b1);
	fd2 = orig_fd(buf_data(&m), buf_len(&m));
	gen(&nt, &r, fd2, "message/rfc822");
	ck_assert_str_ne(nt.boundary, b1);
	ck_assert_ptr_nonnull(strstr(nt.msg, b1));	/* the original is intact */
	ck_assert_int_eq(count(buf_cstr(&m), nt.boundary), 0);
	notice_free(&nt);
	close(fd2);

	/* Straddling two 64 KiB read chunks. */
	buf_reset(&m);
	buf_append(&m, orig_msg, sizeof(orig_msg) - 1);
	while (buf_len(&m) + 82 < 65536 - 10)
		buf_append_str(&m, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
	while (buf_len(&m) < 65536 - 10)
		buf_append_str(&m, "x");
	buf_append_str(&m, b1);
	buf_append_str(&m, "\r\n");
	while (buf_len(&m) < 150000)
		buf_append_str(&m, "filler filler filler filler filler filler filler filler\r\n");
	fd2 = orig_fd(buf_data(&m), buf_len(&m));
	gen(&nt, &r, fd2, "message/rfc822");
	ck_assert_str_ne(nt.boundary, b1);
	notice_free(&nt);
	close(fd2);

	/* In a remote diagnostic. */
	rc[0] = rcpts_failed[0];
	rc[0].diagnostic = b1;
	r.rcpts = rc;
	gen(&nt, &r, fd, "message/rfc822");
	ck_assert_str_ne(nt.boundary, b1);
	notice_free(&nt);

	buf_free(&m);
	envelope_free(&e);
	close(fd);
}
END_TEST

/* A big original streams through unchanged; one without a final CRLF
 * still gets its closing delimiter on a line of its own. */
START_TEST(test_big_and_unterminated)
{
	struct envelope e;
	struct bounce_report r;
	struct notice nt;
	struct buf m;
	char *ret;
	int fd, i;

	env_make(&e, ENVELOPE_RET_FULL);
	report_make(&r, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);
	r.size_limit = 64u * 1024 * 1024;	/* return the whole big message */
	buf_init(&m, 4 * 1024 * 1024);
	buf_append(&m, orig_msg, sizeof(orig_msg) - 1);
	for (i = 0; buf_len(&m) < 300000; i++)
		buf_append_printf(&m, "%07d abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n", i);
	fd = orig_fd(buf_data(&m), buf_len(&m));
	lseek(fd, 0, SEEK_SET);
	gen(&nt, &r, fd, "message/rfc822");
	ret = part_str(&nt.parts[2]);
	ck_assert_uint_eq(strlen(ret), buf_len(&m));
	ck_assert(memcmp(ret, buf_data(&m), buf_len(&m)) == 0);
	free(ret);
	notice_free(&nt);
	close(fd);

	fd = orig_fd(orig_msg, sizeof(orig_msg) - 3);	/* without the last CRLF */
	gen(&nt, &r, fd, "message/rfc822");
	ck_assert_ptr_nonnull(strstr(nt.msg, "BODYLINE two\r\n\r\n--"));
	notice_free(&nt);
	close(fd);

	/* A message that is all header: returned whole as the header. */
	e.ret = ENVELOPE_RET_HDRS;
	fd = orig_fd("Subject: only\r\nX: y\r\n", strlen("Subject: only\r\nX: y\r\n"));
	gen(&nt, &r, fd, "text/rfc822-headers");
	ret = part_str(&nt.parts[2]);
	ck_assert_str_eq(ret, "Subject: only\r\nX: y\r\n");
	free(ret);
	notice_free(&nt);
	close(fd);

	/* 8-bit content is labelled. */
	e.ret = ENVELOPE_RET_FULL;
	fd = orig_fd("Subject: caf\xc3\xa9\r\n\r\nbody\r\n",
	             strlen("Subject: caf\xc3\xa9\r\n\r\nbody\r\n"));
	gen(&nt, &r, fd, "message/rfc822");
	ck_assert(has_line(nt.parts[2].start, "Content-Transfer-Encoding: 8bit\r\n"));
	ck_assert(has_line(nt.msg, "Content-Transfer-Encoding: 8bit\r\n"));
	notice_free(&nt);
	close(fd);

	buf_free(&m);
	envelope_free(&e);
}
END_TEST

static int
failing_write(void *arg, const void *p, size_t n)
{
	size_t *budget = arg;

	(void)p;
	if (n > *budget)
		return -1;
	*budget -= n;
	return 0;
}

START_TEST(test_errors)
{
	struct envelope e;
	struct bounce_report r;
	struct buf out;
	char err[128];
	size_t budget;
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);

	env_make(&e, ENVELOPE_RET_FULL);
	report_make(&r, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);
	r.size_limit = 64u * 1024 * 1024;	/* return the whole big message */

	budget = 100;
	err[0] = '\0';
	ck_assert_int_eq(bounce_write(&r, fd, failing_write, &budget, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "write failed"));

	buf_init(&out, 500);
	ck_assert_int_eq(bounce_write_buf(&r, fd, &out, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "output buffer full"));
	buf_free(&out);

	buf_init(&out, OUT_MAX);
	ck_assert_int_eq(bounce_write_buf(&r, -1, &out, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "fstat"));

	r.nrcpt = 0;
	ck_assert_int_eq(bounce_write_buf(&r, fd, &out, err, sizeof(err)), -1);
	r.nrcpt = 2;
	r.myhostname = "bad host\r\nX: y";
	ck_assert_int_eq(bounce_write_buf(&r, fd, &out, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "myhostname"));
	buf_free(&out);
	envelope_free(&e);
	close(fd);
}
END_TEST

START_TEST(test_envelope_init)
{
	struct envelope e, n;
	struct bounce_report r;

	env_make(&e, ENVELOPE_RET_FULL);
	e.body = ENVELOPE_BODY_8BITMIME;
	report_make(&r, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);
	envelope_init(&n);
	bounce_envelope_init(&n, &r);
	ck_assert_str_eq(n.sender, "");
	ck_assert_uint_eq(n.nrcpt, 1);
	ck_assert_str_eq(n.rcpts[0].addr, "alice@example.org");
	ck_assert_ptr_null(n.rcpts[0].orcpt);
	ck_assert_uint_eq(n.rcpts[0].notify, ENVELOPE_NOTIFY_NEVER);
	ck_assert_int_eq(n.ret, ENVELOPE_RET_DEFAULT);
	ck_assert_ptr_null(n.envid);
	ck_assert_int_eq(n.body, ENVELOPE_BODY_8BITMIME);
	ck_assert(!n.smtputf8);
	/* The notice's own recipient wants nothing back. */
	ck_assert(!bounce_wanted(&n, 0, BOUNCE_ACTION_FAILED));
	envelope_free(&n);
	envelope_free(&e);
}
END_TEST

/* ---- postmaster notices (notify_classes) ---- */

static void
report_postmaster(struct bounce_report *r)
{
	r->postmaster_rcpt = PM_RCPT;
	r->postmaster_sender = PM_SENDER;
}

/* The value of the header field name ("Message-ID: ") as a string. */
static void
field_value(const char *msg, const char *name, char *dst, size_t dstsz)
{
	const char *p = strstr(msg, name), *e;

	ck_assert_ptr_nonnull(p);
	p += strlen(name);
	e = strstr(p, "\r\n");
	ck_assert_uint_lt((size_t)(e - p), dstsz);
	memcpy(dst, p, (size_t)(e - p));
	dst[e - p] = '\0';
}

/* notify_classes = bounce: a copy of a non-delivery notice to the postmaster. */
START_TEST(test_postmaster_copy)
{
	struct envelope e, n;
	struct bounce_report r, ro;
	struct notice nt, ntsender;
	enum bounce_return what;
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);
	char *status, *status_sender, *text, *ret, mid[256], mid_sender[256];

	/* Small and RET=FULL: the sender gets the whole message back... */
	env_make(&e, ENVELOPE_RET_FULL);
	envelope_set(&e.envid, "QQ314159");
	report_make(&ro, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);
	gen(&ntsender, &ro, fd, "message/rfc822");
	/* ...the postmaster only its header. */
	report_make(&r, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);
	report_postmaster(&r);
	ck_assert_str_eq(bounce_return_part(&r, 10, &what), "text/rfc822-headers");
	ck_assert_int_eq(what, BOUNCE_RETURN_HEADERS);
	gen(&nt, &r, fd, "text/rfc822-headers");

	ck_assert(has_line(nt.msg, "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"));
	ck_assert(has_line(nt.msg, "To: <" PM_RCPT ">\r\n"));
	ck_assert(!has_line(nt.msg, "To: <alice@example.org>"));
	ck_assert(has_line(nt.msg, "Subject: Postmaster Copy: Undelivered Mail\r\n"));
	ck_assert(has_line(nt.msg, "Auto-Submitted: auto-generated\r\n"));
	ck_assert(has_line(ntsender.msg, "Auto-Submitted: auto-replied\r\n"));
	/* Written with the same seed as the sender's notice, yet its own id. */
	field_value(nt.msg, "\r\nMessage-ID: ", mid, sizeof(mid));
	field_value(ntsender.msg, "\r\nMessage-ID: ", mid_sender, sizeof(mid_sender));
	ck_assert_str_ne(mid, mid_sender);
	ck_assert(has_line(nt.msg, "Message-ID: <20231115221320.0123456789ABCD."));

	/* The delivery-status part is the sender's, byte for byte. */
	status = part_str(&nt.parts[1]);
	status_sender = part_str(&ntsender.parts[1]);
	ck_assert_str_eq(status, status_sender);
	ck_assert_ptr_eq(strstr(status, "Original-Envelope-Id: QQ314159\r\n"), status);
	ck_assert(has_line(status, "X-Tern-Sender: rfc822; alice@example.org\r\n"));
	ck_assert_int_eq(count(status, "\r\nAction: failed\r\n"), 2);

	ret = part_str(&nt.parts[2]);
	ck_assert_ptr_nonnull(strstr(ret, "Subject: hello\r\n"));
	ck_assert_ptr_null(strstr(nt.msg, "BODYLINE"));
	ck_assert(has_line(nt.parts[2].start, "Content-Description: Undelivered Message Headers\r\n"));

	text = part_str(&nt.parts[0]);
	ck_assert_ptr_nonnull(strstr(text, "Postmaster copy:"));
	ck_assert_ptr_nonnull(strstr(text, "Only the header"));
	ck_assert_ptr_nonnull(strstr(text, "<alice@example.org>, queue ID 0123456789ABCD"));
	ck_assert_ptr_nonnull(strstr(text, "<bob@example.com> (originally <robert@example.com>): host"));
	ck_assert_ptr_null(strstr(text, "Double bounce"));

	/* The envelope: from double_bounce_sender to the postmaster, and no
	 * notice about this notice. */
	envelope_init(&n);
	bounce_envelope_init(&n, &r);
	ck_assert_str_eq(n.sender, PM_SENDER);
	ck_assert_uint_eq(n.nrcpt, 1);
	ck_assert_str_eq(n.rcpts[0].addr, PM_RCPT);
	ck_assert_ptr_null(n.rcpts[0].orcpt);
	ck_assert_uint_eq(n.rcpts[0].notify, ENVELOPE_NOTIFY_NEVER);
	ck_assert_int_eq(n.ret, ENVELOPE_RET_DEFAULT);
	ck_assert_ptr_null(n.envid);
	ck_assert(!bounce_wanted(&n, 0, BOUNCE_ACTION_FAILED));
	ck_assert(bounce_is_postmaster_sender(&n, PM_SENDER));
	ck_assert(bounce_is_postmaster_sender(&n, "Double-Bounce@MX.example.net"));
	ck_assert(!bounce_is_postmaster_sender(&e, PM_SENDER));

	/* Under SMTPUTF8 the header is message/global-headers. */
	e.smtputf8 = true;
	ck_assert_str_eq(bounce_return_part(&r, 10, NULL), "message/global-headers");

	free(status);
	free(status_sender);
	free(ret);
	free(text);
	notice_free(&nt);
	notice_free(&ntsender);
	envelope_free(&n);
	envelope_free(&e);
	close(fd);
}
END_TEST

/*
 * notify_classes = 2bounce: a notice from <> could not be delivered. The
 * original here is a real notice written by this module, with the
 * envelope bounce_envelope_init() gave it.
 */
START_TEST(test_double_bounce)
{
	static const struct bounce_rcpt rc[] = {
		{ "alice@example.org", NULL, BOUNCE_ACTION_FAILED, "5.1.1", "dns; mx.example.org",
		  "smtp; 550 5.1.1 <alice@example.org>: unknown user", NOW_US, 0 },
	};
	struct envelope e, dsn_env, n;
	struct bounce_report r, rdsn;
	struct notice first, nt;
	struct buf out;
	char err[128] = "", *ret, *status, *text;
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1), fd2;

	/* The first notice, to alice, with its envelope. */
	env_make(&e, ENVELOPE_RET_HDRS);
	report_make(&rdsn, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);
	gen(&first, &rdsn, fd, "text/rfc822-headers");
	envelope_init(&dsn_env);
	bounce_envelope_init(&dsn_env, &rdsn);
	dsn_env.arrival = NOW_US;
	ck_assert(bounce_is_null_sender(&dsn_env));
	fd2 = orig_fd(first.msg, buf_len(&first.out));

	/* It bounced: the sender, <>, gets nothing... */
	report_make(&r, &dsn_env, BOUNCE_KIND_FAILED, rc, 1);
	r.queue_id = "0123456789BBBB";
	ck_assert(!bounce_wanted(&dsn_env, 0, BOUNCE_ACTION_FAILED));
	buf_init(&out, OUT_MAX);
	ck_assert_int_eq(bounce_write_buf(&r, fd2, &out, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "<>"));
	ck_assert_uint_eq(buf_len(&out), 0);
	buf_free(&out);

	/* ...the postmaster gets the whole undeliverable notice. */
	report_postmaster(&r);
	gen(&nt, &r, fd2, "message/rfc822");
	ck_assert(has_line(nt.msg, "To: <" PM_RCPT ">\r\n"));
	ck_assert(has_line(nt.msg, "Subject: Postmaster Copy: Undelivered Mail\r\n"));
	ck_assert(has_line(nt.msg, "Auto-Submitted: auto-generated\r\n"));
	ret = part_str(&nt.parts[2]);
	ck_assert_str_eq(ret, first.msg);
	ck_assert(has_line(nt.parts[2].start, "Content-Description: Undelivered Message\r\n"));
	ck_assert_str_ne(nt.boundary, first.boundary);

	status = part_str(&nt.parts[1]);
	ck_assert(has_line(status, "X-Tern-Queue-ID: 0123456789BBBB\r\n"));
	/* No "rfc822; " with nothing after it for <>. */
	ck_assert_ptr_null(strstr(status, "X-Tern-Sender"));
	ck_assert(has_line(status, "Final-Recipient: rfc822; alice@example.org\r\n"));
	ck_assert(has_line(status, "Action: failed\r\n"));
	ck_assert(has_line(status, "Status: 5.1.1\r\n"));
	ck_assert(has_line(status, "Arrival-Date: Wed, 15 Nov 2023 22:13:20 +0000\r\n"));

	text = part_str(&nt.parts[0]);
	ck_assert_ptr_nonnull(strstr(text, "Double bounce:"));
	ck_assert_ptr_nonnull(strstr(text, "the null sender <>, queue ID 0123456789BBBB"));
	ck_assert_ptr_nonnull(strstr(text, "<alice@example.org>: host mx.example.org said: 550"));
	ck_assert_ptr_null(strstr(text, "Postmaster copy:"));

	envelope_init(&n);
	bounce_envelope_init(&n, &r);
	ck_assert_str_eq(n.sender, PM_SENDER);
	ck_assert_uint_eq(n.nrcpt, 1);
	ck_assert_str_eq(n.rcpts[0].addr, PM_RCPT);
	ck_assert_uint_eq(n.rcpts[0].notify, ENVELOPE_NOTIFY_NEVER);
	envelope_free(&n);
	free(ret);
	free(status);
	free(text);
	notice_free(&nt);

	/* Bounded by bounce_size_limit like any returned message; RET plays
	 * no part. */
	r.size_limit = 100;
	gen(&nt, &r, fd2, "text/rfc822-headers");
	ret = part_str(&nt.parts[2]);
	ck_assert(has_line(ret, "Subject: Undelivered Mail Returned to Sender\r\n"));
	ck_assert_ptr_null(strstr(ret, "MIME-encapsulated"));	/* the first notice's body */
	ck_assert_int_eq(count(nt.msg, "MIME-encapsulated"), 1);	/* ours only */
	free(ret);
	notice_free(&nt);
	r.size_limit = 0;
	dsn_env.ret = ENVELOPE_RET_HDRS;
	ck_assert_str_eq(bounce_return_part(&r, 10, NULL), "message/rfc822");
	dsn_env.body = ENVELOPE_BODY_BINARYMIME;
	ck_assert_str_eq(bounce_return_part(&r, 10, NULL), "text/rfc822-headers");

	notice_free(&first);
	envelope_free(&dsn_env);
	envelope_free(&e);
	close(fd2);
	close(fd);
}
END_TEST

/* notify_classes = delay: a copy of a delay warning to the postmaster. */
START_TEST(test_postmaster_delay)
{
	static const struct bounce_rcpt rc[] = {
		{ "bob@example.com", NULL, BOUNCE_ACTION_DELAYED, "4.4.1", "dns; mx.example.com",
		  "smtp; 451 4.3.0 try later", NOW_US - 60000000ll, ARRIVAL_US + 432000000000ll },
	};
	struct envelope e, n;
	struct bounce_report r, ro;
	struct notice nt, ntsender;
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);
	char *status, *status_sender, *text;

	env_make(&e, ENVELOPE_RET_FULL);
	e.rcpts[0].notify = ENVELOPE_NOTIFY_NEVER;	/* the copy lists bob anyway */
	report_make(&ro, &e, BOUNCE_KIND_DELAYED, rc, 1);
	gen(&ntsender, &ro, fd, "text/rfc822-headers");
	report_make(&r, &e, BOUNCE_KIND_DELAYED, rc, 1);
	report_postmaster(&r);
	r.postmaster_rcpt = "delay-watch@mx.example.net";
	gen(&nt, &r, fd, "text/rfc822-headers");
	ck_assert(has_line(nt.msg, "To: <delay-watch@mx.example.net>\r\n"));
	ck_assert(has_line(nt.msg, "Subject: Postmaster Warning: Delayed Mail\r\n"));
	ck_assert(has_line(nt.msg, "Auto-Submitted: auto-generated\r\n"));
	ck_assert_ptr_null(strstr(nt.msg, "BODYLINE"));
	ck_assert(has_line(nt.parts[2].start, "Content-Description: Undelivered Message Headers\r\n"));

	status = part_str(&nt.parts[1]);
	status_sender = part_str(&ntsender.parts[1]);
	ck_assert_str_eq(status, status_sender);
	ck_assert(has_line(status, "Action: delayed\r\n"));
	ck_assert(has_line(status, "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n"));

	text = part_str(&nt.parts[0]);
	ck_assert_ptr_nonnull(strstr(text, "Postmaster warning:"));
	ck_assert_ptr_nonnull(strstr(text, "only a"));
	ck_assert_ptr_nonnull(strstr(text, "Sun, 19 Nov 2023"));
	ck_assert_ptr_nonnull(strstr(text, "<alice@example.org>, queue ID 0123456789ABCD"));
	ck_assert_ptr_nonnull(strstr(text, "Tue, 14 Nov 2023"));	/* arrival */

	envelope_init(&n);
	bounce_envelope_init(&n, &r);
	ck_assert_str_eq(n.sender, PM_SENDER);
	ck_assert_str_eq(n.rcpts[0].addr, "delay-watch@mx.example.net");
	ck_assert_uint_eq(n.rcpts[0].notify, ENVELOPE_NOTIFY_NEVER);

	envelope_free(&n);
	free(status);
	free(status_sender);
	free(text);
	notice_free(&nt);
	notice_free(&ntsender);
	envelope_free(&e);
	close(fd);
}
END_TEST

static char long_addr[600];	/* filled by long_addr_init(): 512 octets */
static char too_long_addr[600];	/* 513 octets */

static void
long_addr_init(void)
{
	memset(long_addr, 'a', 512);
	memcpy(long_addr + 512 - 12, "@example.net", 12);
	long_addr[512] = '\0';
	memset(too_long_addr, 'a', 513);
	memcpy(too_long_addr + 513 - 12, "@example.net", 12);
	too_long_addr[513] = '\0';
}

#define BAD_RCPT "bad postmaster_rcpt"
#define BAD_SENDER "missing or bad postmaster_sender"

/* One row per postmaster report; err NULL: accepted. */
static const struct {
	const char *rcpt;
	const char *sender;
	enum bounce_kind kind;
	const char *orig_sender;	/* NULL: alice@example.org */
	const char *err;		/* expected in the reason */
} pm_rows[] = {
	{ PM_RCPT, PM_SENDER, BOUNCE_KIND_FAILED, NULL, NULL },
	{ PM_RCPT, PM_SENDER, BOUNCE_KIND_FAILED, "", NULL },		/* double bounce */
	{ PM_RCPT, PM_SENDER, BOUNCE_KIND_DELAYED, NULL, NULL },
	{ "postmaster", "double-bounce", BOUNCE_KIND_FAILED, NULL, NULL },	/* unqualified */
	{ long_addr, long_addr, BOUNCE_KIND_FAILED, NULL, NULL },	/* 512: the limit */
	{ PM_RCPT, NULL, BOUNCE_KIND_FAILED, NULL, BAD_SENDER },
	{ NULL, PM_SENDER, BOUNCE_KIND_FAILED, NULL, "postmaster_sender without postmaster_rcpt" },
	{ NULL, PM_SENDER, BOUNCE_KIND_FAILED, "", "the sender is <>" },
	{ NULL, NULL, BOUNCE_KIND_FAILED, "", "the sender is <>" },	/* as before */
	{ "", PM_SENDER, BOUNCE_KIND_FAILED, NULL, BAD_RCPT },
	{ "post master@example.net", PM_SENDER, BOUNCE_KIND_FAILED, NULL, BAD_RCPT },
	{ "<postmaster@example.net>", PM_SENDER, BOUNCE_KIND_FAILED, NULL, BAD_RCPT },
	{ "postmaster@example.net>", PM_SENDER, BOUNCE_KIND_FAILED, NULL, BAD_RCPT },
	{ "\"pm\"@example.net", PM_SENDER, BOUNCE_KIND_FAILED, NULL, BAD_RCPT },
	{ "pm@example.net\r\nBcc: x@example.org", PM_SENDER, BOUNCE_KIND_FAILED, NULL, BAD_RCPT },
	{ "pm\t@example.net", PM_SENDER, BOUNCE_KIND_FAILED, NULL, BAD_RCPT },
	{ "pm\x7f@example.net", PM_SENDER, BOUNCE_KIND_FAILED, NULL, BAD_RCPT },
	{ "p\xc3\xa9@example.net", PM_SENDER, BOUNCE_KIND_FAILED, NULL, BAD_RCPT },
	{ too_long_addr, PM_SENDER, BOUNCE_KIND_FAILED, NULL, BAD_RCPT },
	{ PM_RCPT, "", BOUNCE_KIND_FAILED, NULL, BAD_SENDER },
	{ PM_RCPT, "<>", BOUNCE_KIND_FAILED, NULL, BAD_SENDER },
	{ PM_RCPT, "double bounce@example.net", BOUNCE_KIND_FAILED, NULL, BAD_SENDER },
	{ PM_RCPT, "double-bounce@example.net\r\nX: y", BOUNCE_KIND_FAILED, NULL, BAD_SENDER },
	{ PM_RCPT, "\"db\"@example.net", BOUNCE_KIND_FAILED, NULL, BAD_SENDER },
	{ PM_RCPT, "db\x01@example.net", BOUNCE_KIND_FAILED, NULL, BAD_SENDER },
	{ PM_RCPT, too_long_addr, BOUNCE_KIND_FAILED, NULL, BAD_SENDER },
	{ PM_RCPT, PM_SENDER, BOUNCE_KIND_DELIVERED, NULL, "success report" },
	{ PM_RCPT, PM_SENDER, BOUNCE_KIND_RELAYED, NULL, "success report" },
	/* A notice about a failed postmaster notice: discarded instead. */
	{ PM_RCPT, PM_SENDER, BOUNCE_KIND_FAILED, PM_SENDER, "discard" },
	{ PM_RCPT, PM_SENDER, BOUNCE_KIND_FAILED, "Double-Bounce@MX.EXAMPLE.NET", "discard" },
	{ PM_RCPT, PM_SENDER, BOUNCE_KIND_DELAYED, PM_SENDER, "discard" },
};
#define NPM (sizeof(pm_rows) / sizeof(pm_rows[0]))

START_TEST(test_postmaster_validation)
{
	struct envelope e;
	struct bounce_report r;
	struct buf out;
	char err[256] = "";
	int fd = orig_fd(orig_msg, sizeof(orig_msg) - 1), rc;

	long_addr_init();
	env_make(&e, ENVELOPE_RET_DEFAULT);
	if (pm_rows[_i].orig_sender != NULL)
		envelope_set(&e.sender, pm_rows[_i].orig_sender);
	report_make(&r, &e, pm_rows[_i].kind, rcpts_failed, 2);
	r.postmaster_rcpt = pm_rows[_i].rcpt;
	r.postmaster_sender = pm_rows[_i].sender;
	buf_init(&out, OUT_MAX);
	rc = bounce_write_buf(&r, fd, &out, err, sizeof(err));
	if (pm_rows[_i].err == NULL) {
		ck_assert_msg(rc == 0, "row %d: %s", _i, err);
		ck_assert(has_line(buf_cstr(&out), "To: <"));
	} else {
		ck_assert_msg(rc == -1, "row %d accepted", _i);
		ck_assert_msg(strstr(err, pm_rows[_i].err) != NULL, "row %d: %s", _i, err);
		ck_assert_uint_eq(buf_len(&out), 0);
	}
	buf_free(&out);
	envelope_free(&e);
	close(fd);
}
END_TEST

/* bounce_envelope_init() on a report bounce_write() refuses is a bug. */
static const struct {
	const char *rcpt;
	const char *sender;
	const char *orig_sender;
} pm_panic_rows[] = {
	{ NULL, NULL, "" },			/* a notice to <> */
	{ PM_RCPT, NULL, "alice@example.org" },
	{ PM_RCPT, "", "alice@example.org" },
	{ "bad rcpt", PM_SENDER, "" },
	{ PM_RCPT, "bad\r\nsender", "" },
};
#define NPM_PANIC (sizeof(pm_panic_rows) / sizeof(pm_panic_rows[0]))

START_TEST(test_postmaster_envelope_panics)
{
	struct envelope e, n;
	struct bounce_report r;

	env_make(&e, ENVELOPE_RET_DEFAULT);
	envelope_set(&e.sender, pm_panic_rows[_i].orig_sender);
	report_make(&r, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);
	r.postmaster_rcpt = pm_panic_rows[_i].rcpt;
	r.postmaster_sender = pm_panic_rows[_i].sender;
	envelope_init(&n);
	bounce_envelope_init(&n, &r);
	/* Not reached. */
	envelope_free(&n);
	envelope_free(&e);
}
END_TEST

START_TEST(test_is_postmaster_sender)
{
	struct envelope e;

	envelope_init(&e);
	ck_assert(!bounce_is_postmaster_sender(&e, PM_SENDER));	/* sender NULL */
	ck_assert(!bounce_is_postmaster_sender(NULL, PM_SENDER));
	envelope_set(&e.sender, "");
	ck_assert(!bounce_is_postmaster_sender(&e, PM_SENDER));
	ck_assert(!bounce_is_postmaster_sender(&e, ""));
	envelope_set(&e.sender, PM_SENDER);
	ck_assert(bounce_is_postmaster_sender(&e, PM_SENDER));
	ck_assert(bounce_is_postmaster_sender(&e, "DOUBLE-BOUNCE@mx.example.NET"));
	ck_assert(!bounce_is_postmaster_sender(&e, NULL));
	ck_assert(!bounce_is_postmaster_sender(&e, ""));
	ck_assert(!bounce_is_postmaster_sender(&e, "double-bounce"));
	ck_assert(!bounce_is_postmaster_sender(&e, "double-bounce@mx.example.net.evil"));
	envelope_free(&e);
}
END_TEST

/* Write one sample for a manual check with another parser. */
START_TEST(test_dump_sample)
{
	const char *path = getenv("BOUNCE_TEST_DUMP");
	struct envelope e;
	struct bounce_report r;
	struct notice nt;
	FILE *f;
	int fd;

	if (path == NULL)
		return;
	fd = orig_fd(orig_msg, sizeof(orig_msg) - 1);
	env_make(&e, ENVELOPE_RET_DEFAULT);
	envelope_set(&e.envid, "QQ314159");
	report_make(&r, &e, BOUNCE_KIND_FAILED, rcpts_failed, 2);
	gen(&nt, &r, fd, "message/rfc822");
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	fwrite(nt.msg, 1, buf_len(&nt.out), f);
	fclose(f);
	notice_free(&nt);
	envelope_free(&e);
	close(fd);
}
END_TEST

static Suite *
bounce_suite(void)
{
	Suite *s = suite_create("bounce");
	TCase *tc = tcase_create("dsn");

	tcase_add_test(tc, test_failed_hdrs);
	tcase_add_test(tc, test_ret_full);
	tcase_add_test(tc, test_no_ret_size_limit);
	tcase_add_test(tc, test_delayed);
	tcase_add_loop_test(tc, test_notify, 0, (int)NNOTIFY);
	tcase_add_test(tc, test_success);
	tcase_add_test(tc, test_null_sender_refused);
	tcase_add_test(tc, test_envid_arrival);
	tcase_add_test(tc, test_smtputf8);
	tcase_add_test(tc, test_hostile_diagnostic);
	tcase_add_test(tc, test_boundary_collision);
	tcase_add_test(tc, test_big_and_unterminated);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_envelope_init);
	tcase_add_test(tc, test_postmaster_copy);
	tcase_add_test(tc, test_double_bounce);
	tcase_add_test(tc, test_postmaster_delay);
	tcase_add_loop_test(tc, test_postmaster_validation, 0, (int)NPM);
	tcase_add_loop_test_raise_signal(tc, test_postmaster_envelope_panics, SIGABRT, 0,
	                                 (int)NPM_PANIC);
	tcase_add_test(tc, test_is_postmaster_sender);
	tcase_add_test(tc, test_dump_sample);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(bounce_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
