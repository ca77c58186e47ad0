/*
 * qlist: the queue listing of `ternctl queue` and `mailq` / `sendmail -bp`
 * (one code for both commands): Postfix's mailq layout, or one JSON array.
 *
 * It reads the index in one short read-only txn (the listing is built in
 * memory and printed after the txn ends, so a slow pager cannot hold the
 * txn open) and never writes to the spool. Strings from the spool are
 * escaped for the terminal (or for JSON): a sender address cannot send
 * escape sequences to an administrator's terminal.
 */
#include "tools/qlist.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "common/buf.h"
#include "queue/qstore.h"
#include "queue/retry.h"
#include "queue/spool.h"

/* The listing is built in memory before it is printed. */
#define QLIST_LISTING_MAX ((size_t)1 << 32)
/* Column of the recipients under the sender in the text listing. */
#define QLIST_RCPT_INDENT 45

/* ---- strings from the spool: escaped for a terminal or for JSON ---- */

size_t
qlist_utf8_len(const unsigned char *p, size_t left)
{
	size_t n, i;
	uint32_t cp;

	if (left == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;	/* overlong, out of range, or a surrogate */
	return n;
}

/* Terminal-safe: valid UTF-8 passes through; control characters (C0,
 * DEL and C1, which some terminals obey), backslashes and bytes that are
 * not UTF-8 are written as \ooo. */
void
qlist_text_str(struct buf *out, const char *s)
{
	const unsigned char *p;
	size_t n, i, left = strlen(s);

	for (p = (const unsigned char *)s; *p; p += n, left -= n) {
		n = qlist_utf8_len(p, left);
		if (n == 0 || *p < 0x20 || *p == 0x7f || *p == '\\' ||
		    (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
			n = n ? n : 1;
			for (i = 0; i < n; i++)
				buf_append_printf(out, "\\%03o", p[i]);
		} else {
			buf_append(out, p, n);
		}
	}
}

/* A JSON string (RFC 8259): quotes and backslashes escaped, control
 * characters as \u00XX, bytes that are not UTF-8 as U+FFFD. NULL: null. */
void
qlist_json_str(struct buf *out, const char *s)
{
	const unsigned char *p;
	size_t n, left;

	if (s == NULL) {
		buf_append_str(out, "null");
		return;
	}
	left = strlen(s);
	buf_append_char(out, '"');
	for (p = (const unsigned char *)s; *p; p += n, left -= n) {
		n = qlist_utf8_len(p, left);
		if (n == 0) {
			buf_append_str(out, "\\ufffd");
			n = 1;
		} else if (*p == '"' || *p == '\\') {
			buf_append_char(out, '\\');
			buf_append_char(out, (char)*p);
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_append_printf(out, "\\u%04x", *p);
		} else {
			buf_append(out, p, n);
		}
	}
	buf_append_char(out, '"');
}

/* ---- text output ---- */

static void
qlist_arrival(char *dst, size_t dstsz, int64_t arrival_us)
{
	time_t t = (time_t)(arrival_us / 1000000);
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL || strftime(dst, dstsz, "%a %b %e %H:%M:%S", &tm) == 0)
		snprintf(dst, dstsz, "?");
}

/* "14m", "2h5m", "now": how long until t (seconds since the epoch). */
static void
qlist_until(char *dst, size_t dstsz, int64_t t)
{
	int64_t left = t - (int64_t)time(NULL);

	if (left <= 0)
		snprintf(dst, dstsz, "now");
	else
		retry_format_duration(left, dst, dstsz);
}

const char *
qlist_state_name(enum qstore_state st)
{
	static const char *const names[] = { "pending", "deferred", "delivered", "bounced",
	                                     "expired" };

	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "unknown";
}

/* The stored state of recipient i; false when it has none (not tried). */
static bool
qlist_rcpt_state(struct qstore *qs, const char *id, size_t i, struct qstore_rcpt *r)
{
	char err[200];

	if (qs == NULL || qstore_rcpt_get(qs, id, (uint32_t)i, r, err, sizeof(err)) != SPOOL_OK) {
		qstore_rcpt_init(r);
		return false;
	}
	return true;
}

/* Postfix's mailq layout: '!' after the id of a held message, delivered
 * recipients left out, a deferred one preceded by its last error. */
static void
qlist_text_entry(struct buf *out, struct qstore *qs, const char *id, const struct envelope *env)
{
	struct qstore_msg flags;
	char when[64], err[200];
	bool held;
	size_t i;

	held = qs != NULL && qstore_msg_get(qs, id, &flags, err, sizeof(err)) == SPOOL_OK && flags.held;
	qlist_arrival(when, sizeof(when), env->arrival);
	buf_append_printf(out, "%-14s%c %7" PRIu64 " %-20s ", id, held ? '!' : ' ', env->size, when);
	/* Postfix shows the null sender this way. */
	qlist_text_str(out, env->sender && env->sender[0] ? env->sender : "MAILER-DAEMON");
	buf_append_char(out, '\n');
	for (i = 0; i < env->nrcpt; i++) {
		struct qstore_rcpt r;

		qlist_rcpt_state(qs, id, i, &r);
		if (r.state == QSTORE_DELIVERED || r.state == QSTORE_BOUNCED || r.state == QSTORE_EXPIRED)
			continue;
		if (r.state == QSTORE_DEFERRED) {
			char next[48];

			qlist_until(next, sizeof(next), r.next_attempt);
			buf_append_str(out, "(");
			qlist_text_str(out, r.text[0] ? r.text : "deferred");
			buf_append_printf(out, "; next try %s%s)\n", strcmp(next, "now") ? "in " : "",
			                  next);
		}
		buf_append_printf(out, "%*s", QLIST_RCPT_INDENT, "");
		qlist_text_str(out, env->rcpts[i].addr);
		buf_append_char(out, '\n');
	}
	buf_append_char(out, '\n');
}

/* ---- JSON output ---- */

static void
qlist_json_entry(struct buf *out, struct qstore *qs, const char *id, const struct envelope *env,
                   bool first)
{
	size_t i;

	buf_append_str(out, first ? "\n  {" : ",\n  {");
	buf_append_str(out, "\"id\": ");
	qlist_json_str(out, id);
	buf_append_printf(out, ", \"size\": %" PRIu64 ", \"arrival\": %" PRId64 ", \"sender\": ",
	                  env->size, env->arrival / 1000000);
	qlist_json_str(out, env->sender ? env->sender : "");
	buf_append_str(out, ", \"recipients\": [");
	for (i = 0; i < env->nrcpt; i++) {
		if (i > 0)
			buf_append_str(out, ", ");
		qlist_json_str(out, env->rcpts[i].addr);
	}
	buf_append_str(out, "], \"delivery\": [");
	for (i = 0; i < env->nrcpt; i++) {
		struct qstore_rcpt r;

		qlist_rcpt_state(qs, id, i, &r);
		buf_append_str(out, i > 0 ? ", {\"address\": " : "{\"address\": ");
		qlist_json_str(out, env->rcpts[i].addr);
		buf_append_printf(out, ", \"state\": \"%s\", \"attempts\": %u, "
		                  "\"next_attempt\": %" PRId64 ", \"last_error\": ",
		                  qlist_state_name(r.state), r.attempts, r.next_attempt);
		qlist_json_str(out, r.text);
		buf_append_str(out, ", \"error_class\": ");
		qlist_json_str(out, r.err_class);
		buf_append_str(out, ", \"relay\": ");
		qlist_json_str(out, r.relay);
		buf_append_char(out, '}');
	}
	buf_append_str(out, "], \"client_addr\": ");
	qlist_json_str(out, env->client_addr);
	buf_append_str(out, ", \"helo\": ");
	qlist_json_str(out, env->helo);
	buf_append_char(out, '}');
}

/* ---- the listing ---- */

struct qlist_listing {
	struct buf out;
	struct qstore *qs;	/* NULL when the tables cannot be read */
	bool json;
	unsigned count;
	uint64_t bytes;
	bool too_big;
};

static int
qlist_one(void *arg, const char *id, const struct envelope *env)
{
	struct qlist_listing *l = arg;

	if (buf_room(&l->out) < 1024 * 1024) {
		l->too_big = true;
		return 1;
	}
	if (l->json)
		qlist_json_entry(&l->out, l->qs, id, env, l->count == 0);
	else
		qlist_text_entry(&l->out, l->qs, id, env);
	l->count++;
	l->bytes += env->size;
	return 0;
}

int
qlist_print(const struct config *cfg, bool json, const char *prog)
{
	struct spool_options opt = { 0, 0, true };
	struct qlist_listing l = { .json = json };
	const char *dir = config_str(cfg, P_QUEUE_DIRECTORY);
	char err[512] = "";
	struct spool *sp;
	enum spool_result r;

	sp = spool_open(dir, &opt, err, sizeof(err));
	if (sp == NULL) {
		fprintf(stderr, "%s: cannot open the queue: %s\n", prog, err);
		return EX_UNAVAILABLE;
	}
	l.qs = qstore_open(sp, err, sizeof(err));
	buf_init(&l.out, QLIST_LISTING_MAX);
	if (json)
		buf_append_char(&l.out, '[');
	else
		buf_append_printf(&l.out, "%-14s %8s %-20s %s\n", "-Queue ID-", "--Size--",
		                  "----Arrival Time----", "-Sender/Recipient-------");
	r = spool_walk(sp, qlist_one, &l, err, sizeof(err));
	qstore_close(l.qs);
	spool_close(sp);
	if (r != SPOOL_OK || l.too_big) {
		fprintf(stderr, "%s: cannot read the queue: %s\n", prog,
		        l.too_big ? "listing too large" : err);
		buf_free(&l.out);
		return EX_IOERR;
	}
	if (json)
		buf_append_str(&l.out, l.count ? "\n]\n" : "]\n");
	else if (l.count == 0) {
		buf_reset(&l.out);
		buf_append_str(&l.out, "Mail queue is empty\n");
	} else
		buf_append_printf(&l.out, "-- %" PRIu64 " Kbytes in %u Request%s.\n",
		                  (l.bytes + 1023) / 1024, l.count, l.count == 1 ? "" : "s");
	fwrite(buf_data(&l.out), 1, buf_len(&l.out), stdout);
	buf_free(&l.out);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: write error on standard output\n", prog);
		return EX_IOERR;
	}
	return EX_OK;
}
