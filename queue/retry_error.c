/*
 * retry_error: Exim's error names for retry rules ("rcpt_452",
 * "timeout_connect_MX", "quota_7d"), decoded as readconf.c's
 * readconf_retry_error does, and the same names for failures (typed at
 * `ternctl retry explain`, printed in logs).
 *
 * Differences from Exim, on purpose: "timeout_DNS" is an error (Exim logs
 * a panic and treats it as "timeout"); prefixes such as "refused_M" for
 * "refused_MX", which Exim's strncmpic lets through, are refused; an
 * unknown name gets a "did you mean".
 *
 * Returns messages in caller buffers; never logs, never allocates.
 */
#include "queue/retry.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "queue/retry_impl.h"

/* Room for one error message. */
#define RETRY_ERROR_MSG_SIZE 512

/* ---- error names ---- */

/* The names without arguments, as Exim spells them in the spec. */
static const struct retry_name {
	const char *name;
	enum retry_class cls;
	enum retry_via via;
} retry_names[] = {
	{ "auth_failed", RETRY_CLASS_AUTH_FAILED, RETRY_VIA_UNKNOWN },
	{ "lost_connection", RETRY_CLASS_LOST_CONNECTION, RETRY_VIA_UNKNOWN },
	{ "lookup", RETRY_CLASS_LOOKUP, RETRY_VIA_UNKNOWN },
	{ "tls_required", RETRY_CLASS_TLS_REQUIRED, RETRY_VIA_UNKNOWN },
	{ "refused", RETRY_CLASS_REFUSED, RETRY_VIA_UNKNOWN },
	{ "refused_MX", RETRY_CLASS_REFUSED, RETRY_VIA_MX },
	{ "refused_A", RETRY_CLASS_REFUSED, RETRY_VIA_A },
	{ "timeout", RETRY_CLASS_TIMEOUT, RETRY_VIA_UNKNOWN },
	{ "timeout_MX", RETRY_CLASS_TIMEOUT, RETRY_VIA_MX },
	{ "timeout_A", RETRY_CLASS_TIMEOUT, RETRY_VIA_A },
	{ "timeout_connect", RETRY_CLASS_TIMEOUT_CONNECT, RETRY_VIA_UNKNOWN },
	{ "timeout_connect_MX", RETRY_CLASS_TIMEOUT_CONNECT, RETRY_VIA_MX },
	{ "timeout_connect_A", RETRY_CLASS_TIMEOUT_CONNECT, RETRY_VIA_A },
	{ "quota", RETRY_CLASS_QUOTA, RETRY_VIA_UNKNOWN },
};

/* Further candidates for "did you mean". */
static const char *const retry_suggestions[] = {
	"data_4xx", "mail_4xx", "rcpt_4xx", "quota_7d",
};

const char *
retry_error_classes(void)
{
	return "auth_failed, data_4xx, mail_4xx, rcpt_4xx (also _4dx and _4dd forms such as "
	       "rcpt_45x or rcpt_452), lost_connection, lookup, refused, refused_MX, refused_A, "
	       "timeout, timeout_MX, timeout_A, timeout_connect, timeout_connect_MX, "
	       "timeout_connect_A, tls_required, quota, quota_<time> (such as quota_7d), *";
}

static bool
retry_eq_ci(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* Case-insensitive Levenshtein distance, for short words. */
static size_t
retry_distance(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b), i, j, prev, cur, tmp;
	size_t row[64];

	if (alen >= 63 || blen >= 63)
		return (size_t)-1;
	for (j = 0; j <= blen; j++)
		row[j] = j;
	for (i = 1; i <= alen; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= blen; j++) {
			cur = prev + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
			if (row[j] + 1 < cur)
				cur = row[j] + 1;
			if (row[j - 1] + 1 < cur)
				cur = row[j - 1] + 1;
			tmp = row[j];
			row[j] = cur;
			prev = tmp;
		}
	}
	return row[blen];
}

/* The closest known name, or NULL when none is close enough. */
static const char *
retry_suggest(const char *s, size_t len)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, d, i, limit;

	for (i = 0; i < sizeof(retry_names) / sizeof(retry_names[0]); i++) {
		d = retry_distance(s, len, retry_names[i].name);
		if (d < best_d)
			best_d = d, best = retry_names[i].name;
	}
	for (i = 0; i < sizeof(retry_suggestions) / sizeof(retry_suggestions[0]); i++) {
		d = retry_distance(s, len, retry_suggestions[i]);
		if (d < best_d)
			best_d = d, best = retry_suggestions[i];
	}
	limit = len / 3 > 2 ? len / 3 : 2;
	return best_d <= limit ? best : NULL;
}

/* mail_4xx, rcpt_45x, data_451: the two characters after "_4". */
static const char *
retry_errspec_smtp(const char *s, size_t len, struct retry_errspec *out, char *msg, size_t msgsz)
{
	char a, b;

	out->cls = tolower((unsigned char)s[0]) == 'm' ? RETRY_CLASS_MAIL_4XX
	         : tolower((unsigned char)s[0]) == 'r' ? RETRY_CLASS_RCPT_4XX
	         : RETRY_CLASS_DATA_4XX;
	a = len == 8 ? s[6] : 0;
	b = len == 8 ? s[7] : 0;
	if (a == 'x' && b == 'x') {
		out->code_lo = 400, out->code_hi = 499;
	} else if (isdigit((unsigned char)a) && b == 'x') {
		out->code_lo = 400 + (a - '0') * 10;
		out->code_hi = out->code_lo + 9;
	} else if (isdigit((unsigned char)a) && isdigit((unsigned char)b)) {
		out->code_lo = out->code_hi = 400 + (a - '0') * 10 + (b - '0');
	} else {
		/* Exim's readconf text, word for word. */
		snprintf(msg, msgsz, "%.4s_4 must be followed by xx, dx, or dd, where x is literal "
		         "and d is any digit (\"%.*s\")", s, (int)len, s);
		return msg;
	}
	return NULL;
}

const char *
retry_errspec_parse(const char *s, size_t len, struct retry_errspec *out, char *msg, size_t msgsz)
{
	const char *hint;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->cls = RETRY_CLASS_ANY;
	if (len == 1 && s[0] == '*')
		return NULL;
	for (i = 0; i < sizeof(retry_names) / sizeof(retry_names[0]); i++) {
		if (retry_eq_ci(s, len, retry_names[i].name)) {
			out->cls = retry_names[i].cls;
			out->via = retry_names[i].via;
			return NULL;
		}
	}
	if (len > 6 && strncasecmp(s, "quota_", 6) == 0) {
		out->cls = RETRY_CLASS_QUOTA;
		out->quota_idle = retry_parse_time(s + 6, len - 6);
		if (out->quota_idle < 0) {
			snprintf(msg, msgsz, "bad time value in \"%.*s\" (quota_<time>, such as quota_7d)",
			         (int)len, s);
			return msg;
		}
		return NULL;
	}
	if (len >= 6 && (strncasecmp(s, "mail_4", 6) == 0 || strncasecmp(s, "rcpt_4", 6) == 0 ||
	                 strncasecmp(s, "data_4", 6) == 0))
		return retry_errspec_smtp(s, len, out, msg, msgsz);
	if (retry_eq_ci(s, len, "timeout_DNS")) {
		snprintf(msg, msgsz, "\"timeout_DNS\" is no longer available in retry rules (it never "
		         "worked); use \"lookup\" or \"timeout\"");
		return msg;
	}
	if (len > 8 && strncasecmp(s, "refused_", 8) == 0) {
		snprintf(msg, msgsz, "A or MX expected after \"refused\" (\"%.*s\")", (int)len, s);
		return msg;
	}
	if (len > 8 && strncasecmp(s, "timeout_", 8) == 0) {
		snprintf(msg, msgsz, "\"A\", \"MX\", \"connect\", \"connect_A\" or \"connect_MX\" "
		         "expected after \"timeout\" (\"%.*s\")", (int)len, s);
		return msg;
	}
	hint = retry_suggest(s, len);
	if (hint != NULL)
		snprintf(msg, msgsz, "unknown or malformed retry error \"%.*s\"; did you mean \"%s\"?",
		         (int)len, s, hint);
	else
		snprintf(msg, msgsz, "unknown or malformed retry error \"%.*s\" (known: %s)",
		         (int)len, s, retry_error_classes());
	return msg;
}

int
retry_error_parse(const char *name, struct retry_error *out)
{
	struct retry_errspec spec;
	char msg[RETRY_ERROR_MSG_SIZE];

	memset(out, 0, sizeof(*out));
	out->mailbox_idle = -1;
	if (name == NULL || retry_errspec_parse(name, strlen(name), &spec, msg, sizeof(msg)) != NULL) {
		/* Not an Exim name; "other" is ours, for logs. */
		if (name != NULL && strcasecmp(name, "other") == 0) {
			out->cls = RETRY_CLASS_OTHER;
			return 0;
		}
		return -1;
	}
	out->via = spec.via;
	switch (spec.cls) {
	case RETRY_CLASS_ANY:
		/* As exim -brt without an error: only "*" rules match. */
		out->cls = RETRY_CLASS_OTHER;
		break;
	case RETRY_CLASS_DATA_4XX:
	case RETRY_CLASS_MAIL_4XX:
	case RETRY_CLASS_RCPT_4XX:
		out->cls = spec.cls;
		out->smtp_code = spec.code_hi - spec.code_lo == 99 ? 0 : spec.code_lo;
		break;
	case RETRY_CLASS_QUOTA:
		out->cls = spec.cls;
		out->mailbox_idle = spec.quota_idle > 0 ? spec.quota_idle : -1;
		break;
	default:
		out->cls = spec.cls;
		break;
	}
	return 0;
}

static const char *
retry_via_suffix(enum retry_via via)
{
	return via == RETRY_VIA_MX ? "_MX" : via == RETRY_VIA_A ? "_A" : "";
}

const char *
retry_error_name(const struct retry_error *e, char *dst, size_t dstsz)
{
	static const char *const smtp_names[] = { "data", "mail", "rcpt" };
	char idle[RETRY_NAME_SIZE];

	switch (e->cls) {
	case RETRY_CLASS_DATA_4XX:
	case RETRY_CLASS_MAIL_4XX:
	case RETRY_CLASS_RCPT_4XX:
		if (e->smtp_code >= 400 && e->smtp_code <= 499)
			snprintf(dst, dstsz, "%s_%d", smtp_names[e->cls - RETRY_CLASS_DATA_4XX], e->smtp_code);
		else
			snprintf(dst, dstsz, "%s_4xx", smtp_names[e->cls - RETRY_CLASS_DATA_4XX]);
		break;
	case RETRY_CLASS_REFUSED:
		snprintf(dst, dstsz, "refused%s", retry_via_suffix(e->via));
		break;
	case RETRY_CLASS_TIMEOUT_CONNECT:
		snprintf(dst, dstsz, "timeout_connect%s", retry_via_suffix(e->via));
		break;
	case RETRY_CLASS_TIMEOUT:
		snprintf(dst, dstsz, "timeout%s", retry_via_suffix(e->via));
		break;
	case RETRY_CLASS_QUOTA:
		if (e->mailbox_idle > 0)
			snprintf(dst, dstsz, "quota_%s", retry_format_duration(e->mailbox_idle, idle, sizeof(idle)));
		else
			snprintf(dst, dstsz, "quota");
		break;
	case RETRY_CLASS_AUTH_FAILED:
		snprintf(dst, dstsz, "auth_failed");
		break;
	case RETRY_CLASS_LOST_CONNECTION:
		snprintf(dst, dstsz, "lost_connection");
		break;
	case RETRY_CLASS_LOOKUP:
		snprintf(dst, dstsz, "lookup");
		break;
	case RETRY_CLASS_TLS_REQUIRED:
		snprintf(dst, dstsz, "tls_required");
		break;
	case RETRY_CLASS_ANY:
		snprintf(dst, dstsz, "*");
		break;
	case RETRY_CLASS_OTHER:
	default:
		snprintf(dst, dstsz, "other");
		break;
	}
	return dst;
}
