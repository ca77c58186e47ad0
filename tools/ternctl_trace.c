/*
 * ternctl_trace: the log follower (ternctl_trace.h).
 *
 * State: a chained hash of the queue ids seen and not yet forgotten
 * (struct trace_msg), each with its kept lines, its links to the message
 * it was made from (parent) and to those made from it (children), and
 * whether it matched. A message matches when it satisfies every criterion
 * given (its own from=, to=/orig_to=, id); a match spreads to the whole
 * tree of linked messages, including ones linked later (a bounce written
 * after the match).
 *
 * Errors: none to return; out of memory is fatal(). Owns every record and
 * line; trace_free() frees them.
 */
#include "tools/ternctl_trace.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/idxhash.h"
#include "common/log.h"
#include "tools/qlist.h"

#define TRACE_ID_MIN 5
#define TRACE_HASH_FIRST 1024
/* A syslog line with no year is in the future by more than this when it
 * belongs to last year (a log read early in January). */
#define TRACE_YEAR_SLACK (2 * 86400)

struct trace_line_rec {
	int64_t time;
	char *text;	/* owned, NUL-terminated, at most TRACE_LINE_MAX */
};

struct trace_msg {
	char id[TRACE_ID_MAX + 1];
	uint64_t seq;		/* order of the first line */
	struct trace_msg *hnext;
	struct trace_msg *parent, *child, *sibling;
	struct trace_line_rec *lines;
	size_t nlines, cap, left_out;
	char *sender;		/* from=<...>, owned, or NULL */
	bool from_ok, to_ok, matched, removed;
};

struct trace {
	struct trace_filter f;
	int64_t now;
	struct trace_msg **buckets;
	size_t nbuckets, n;
	uint64_t seq, skipped;
	/* Matching NOQUEUE lines (a refusal before any queue id): one
	 * record each, outside the table; at most TRACE_NOQUEUE_MAX. */
	struct trace_msg **noqueue;
	size_t nnoqueue, noqueue_cap;
	uint64_t noqueue_left_out;
};

/* ---- the table ---- */

static struct trace_msg **
trace_slot(struct trace *t, const char *id)
{
	struct trace_msg **p = &t->buckets[idxhash_str(id) & (t->nbuckets - 1)];

	while (*p != NULL && strcmp((*p)->id, id) != 0)
		p = &(*p)->hnext;
	return p;
}

static void
trace_grow(struct trace *t)
{
	struct trace_msg **old = t->buckets;
	size_t oldn = t->nbuckets;

	t->nbuckets = oldn ? oldn * 2 : TRACE_HASH_FIRST;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (t->buckets == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < oldn; i++) {
		struct trace_msg *m = old[i], *next;

		for (; m != NULL; m = next) {
			struct trace_msg **p = &t->buckets[idxhash_str(m->id) & (t->nbuckets - 1)];

			next = m->hnext;
			m->hnext = *p;
			*p = m;
		}
	}
	free(old);
}

static struct trace_msg *
trace_find(struct trace *t, const char *id)
{
	return *trace_slot(t, id);
}

/* NULL when TRACE_OPEN_MAX ids are followed already. */
static struct trace_msg *
trace_add(struct trace *t, const char *id)
{
	struct trace_msg *m, **p;

	if (t->n >= TRACE_OPEN_MAX) {
		t->skipped++;
		return NULL;
	}
	if (t->n >= t->nbuckets)
		trace_grow(t);
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		fatal("out of memory");
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->seq = t->seq++;
	p = trace_slot(t, id);
	m->hnext = *p;
	*p = m;
	t->n++;
	return m;
}

static void
trace_msg_free(struct trace *t, struct trace_msg *m)
{
	struct trace_msg **p = trace_slot(t, m->id);

	if (*p == m) {
		*p = m->hnext;
		t->n--;
	}
	for (size_t i = 0; i < m->nlines; i++)
		free(m->lines[i].text);
	free(m->lines);
	free(m->sender);
	free(m);
}

/* ---- trees of linked messages ---- */

static struct trace_msg *
trace_root(struct trace_msg *m)
{
	while (m->parent != NULL)
		m = m->parent;
	return m;
}

static void
trace_mark(struct trace_msg *m)
{
	m->matched = true;
	for (struct trace_msg *c = m->child; c != NULL; c = c->sibling)
		trace_mark(c);
}

static bool
trace_all_removed(const struct trace_msg *m)
{
	if (!m->removed)
		return false;
	for (const struct trace_msg *c = m->child; c != NULL; c = c->sibling)
		if (!trace_all_removed(c))
			return false;
	return true;
}

static void
trace_free_tree(struct trace *t, struct trace_msg *m)
{
	struct trace_msg *c, *next;

	for (c = m->child; c != NULL; c = next) {
		next = c->sibling;
		trace_free_tree(t, c);
	}
	trace_msg_free(t, m);
}

static void
trace_link(struct trace_msg *parent, struct trace_msg *child)
{
	/* A message is made from one other; cycles cannot be formed. */
	if (child->parent != NULL || child == parent || trace_root(parent) == child)
		return;
	child->parent = parent;
	child->sibling = parent->child;
	parent->child = child;
	if (parent->matched)
		trace_mark(child);
	else if (child->matched)
		trace_mark(trace_root(parent));
}

/* ---- parsing ---- */

static const char *const trace_months[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* n decimal digits at p (all of them digits); -1 otherwise. */
static int
trace_digits(const char *p, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* "HH:MM:SS" at p into tm; false when it is not one. */
static bool
trace_hms(const char *p, struct tm *tm)
{
	tm->tm_hour = trace_digits(p, 2);
	tm->tm_min = trace_digits(p + 3, 2);
	tm->tm_sec = trace_digits(p + 6, 2);
	return p[2] == ':' && p[5] == ':' && tm->tm_hour >= 0 && tm->tm_hour < 24 &&
	       tm->tm_min >= 0 && tm->tm_min < 60 && tm->tm_sec >= 0 && tm->tm_sec <= 60;
}

/* "Nov 21 09:45:26 " (day space-padded): local time, year from now. */
static int64_t
trace_time_syslog(const char *s, size_t len, int64_t now, size_t *used)
{
	struct tm tm, nowtm;
	time_t tnow = (time_t)now, t;
	int mon = -1;

	if (len < 16 || s[3] != ' ' || s[6] != ' ' || s[15] != ' ')
		return -1;
	for (int i = 0; i < 12; i++)
		if (memcmp(s, trace_months[i], 3) == 0)
			mon = i;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = s[4] == ' ' ? trace_digits(s + 5, 1) : trace_digits(s + 4, 2);
	if (mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 || !trace_hms(s + 7, &tm))
		return -1;
	if (localtime_r(&tnow, &nowtm) == NULL)
		return -1;
	tm.tm_mon = mon;
	tm.tm_year = nowtm.tm_year;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if ((int64_t)t > now + TRACE_YEAR_SLACK) {
		tm.tm_year--;
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	*used = 16;
	return (int64_t)t;
}

/* "2024-11-21T09:45:26[.frac](Z|+hh:mm|-hh:mm) " (RFC 3339). */
static int64_t
trace_time_rfc3339(const char *s, size_t len, size_t *used)
{
	struct tm tm;
	size_t i = 19;
	int64_t off = 0;

	if (len < 21 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' '))
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = trace_digits(s, 4) - 1900;
	tm.tm_mon = trace_digits(s + 5, 2) - 1;
	tm.tm_mday = trace_digits(s + 8, 2);
	if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || !trace_hms(s + 11, &tm))
		return -1;
	if (s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
	if (i < len && s[i] == 'Z') {
		i++;
	} else if (i + 6 <= len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		int h = trace_digits(s + i + 1, 2), m = trace_digits(s + i + 4, 2);

		if (h < 0 || m < 0)
			return -1;
		off = (s[i] == '+' ? 1 : -1) * (int64_t)(h * 3600 + m * 60);
		i += 6;
	} else {
		return -1;
	}
	if (i >= len || s[i] != ' ')
		return -1;
	*used = i + 1;
	return (int64_t)timegm(&tm) - off;
}

int64_t
trace_parse_time(const char *line, size_t len, int64_t now, size_t *used)
{
	if (len > 0 && line[0] >= '0' && line[0] <= '9')
		return trace_time_rfc3339(line, len, used);
	return trace_time_syslog(line, len, now, used);
}

/* After the timestamp: "host prog[pid]: TEXT"; TEXT, or NULL. */
static const char *
trace_text(const char *p, const char *end)
{
	const char *sp;

	sp = memchr(p, ' ', (size_t)(end - p));	/* after the host */
	if (sp == NULL)
		return NULL;
	p = sp + 1;
	sp = memchr(p, ' ', (size_t)(end - p));	/* after "prog[pid]:" */
	if (sp == NULL || sp == p || sp[-1] != ':')
		return NULL;
	return sp + 1;
}

/*
 * TEXT is "ID: rest". The id is letters and digits with at least one
 * digit ("warning:", "fatal:" are not ids; NOQUEUE has no digit either).
 * Returns rest, or NULL.
 */
static const char *
trace_split(const char *p, const char *end, char *id)
{
	const char *q;
	bool digit = false;
	size_t n;

	for (q = p; q < end && isalnum((unsigned char)*q); q++)
		digit |= *q >= '0' && *q <= '9';
	n = (size_t)(q - p);
	if (!digit || n < TRACE_ID_MIN || n > TRACE_ID_MAX || end - q < 2 || q[0] != ':' ||
	    q[1] != ' ')
		return NULL;
	memcpy(id, p, n);
	id[n] = '\0';
	return q + 2;
}

/* The address of "key<addr>" at p (p points at key); false when absent. */
static bool
trace_addr_at(const char *p, const char *end, const char *key, const char **a, size_t *alen)
{
	size_t k = strlen(key);
	const char *gt;

	if ((size_t)(end - p) < k || memcmp(p, key, k) != 0)
		return false;
	p += k;
	gt = memchr(p, '>', (size_t)(end - p));
	if (gt == NULL)
		return false;
	*a = p;
	*alen = (size_t)(gt - p);
	return true;
}

/* key<addr> at the start of rest or after a space: qmgr's "from=<a>,
 * size=", an agent's "to=<b>, orig_to=<c>", smtpd's refusals "...;
 * from=<a> to=<b> proto=". */
static bool
trace_addr_find(const char *rest, const char *end, const char *key, const char **a, size_t *alen)
{
	size_t k = strlen(key);

	if (trace_addr_at(rest, end, key, a, alen))
		return true;
	for (const char *p = rest; p + k + 1 <= end; p++)
		if (p[0] == ' ' && trace_addr_at(p + 1, end, key, a, alen))
			return true;
	return false;
}

/* Does the address (a, n) meet the criterion: "@domain" (a suffix),
 * "<>" or "" (the null sender), or the whole address; any case. */
static bool
trace_addr_match(const char *want, const char *a, size_t n)
{
	size_t w = strlen(want);

	if (strcmp(want, "<>") == 0 || w == 0)
		return n == 0;
	if (want[0] == '@')
		return n > w && strncasecmp(a + n - w, want, w) == 0;
	return n == w && strncasecmp(a, want, n) == 0;
}

/* The new id at the end of "... notification: NEWID" or in "queued as
 * NEWID)"; false when the line names none. */
static bool
trace_child_id(const char *rest, const char *end, char *id, bool *notice)
{
	static const char notif[] = "notification: ", queued[] = "queued as ";
	const char *p = NULL, *q;
	size_t n;

	*notice = false;
	for (const char *s = rest; s + sizeof(notif) - 1 <= end; s++)
		if (memcmp(s, notif, sizeof(notif) - 1) == 0) {
			p = s + sizeof(notif) - 1;
			*notice = true;
			break;
		}
	if (p == NULL)
		for (const char *s = rest; s + sizeof(queued) - 1 <= end; s++)
			if (memcmp(s, queued, sizeof(queued) - 1) == 0)
				p = s + sizeof(queued) - 1;
	if (p == NULL)
		return false;
	for (q = p; q < end && isalnum((unsigned char)*q); q++)
		;
	n = (size_t)(q - p);
	if (n < TRACE_ID_MIN || n > TRACE_ID_MAX)
		return false;
	memcpy(id, p, n);
	id[n] = '\0';
	return true;
}

static void
trace_keep(struct trace_msg *m, int64_t when, const char *line, size_t len)
{
	struct trace_line_rec *l;
	size_t n = len < TRACE_LINE_MAX ? len : TRACE_LINE_MAX - 3;

	if (m->nlines >= TRACE_LINES_MAX) {
		m->left_out++;
		return;
	}
	if (m->nlines == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 8;
		m->lines = realloc(m->lines, m->cap * sizeof(*m->lines));
		if (m->lines == NULL)
			fatal("out of memory");
	}
	l = &m->lines[m->nlines++];
	l->time = when;
	l->text = malloc(n + 4);
	if (l->text == NULL)
		fatal("out of memory");
	memcpy(l->text, line, n);
	/* A NUL inside a log line would end the text early: make it visible. */
	for (size_t i = 0; i < n; i++)
		if (l->text[i] == '\0')
			l->text[i] = '?';
	memcpy(l->text + n, n < len ? "..." : "", n < len ? 4 : 1);
}

/* What this line says about m's own criteria. */
static void
trace_judge(struct trace *t, struct trace_msg *m, const char *rest, const char *end)
{
	const char *a;
	size_t n;

	if (trace_addr_find(rest, end, "from=<", &a, &n)) {
		if (m->sender == NULL) {
			m->sender = strndup(a, n);
			if (m->sender == NULL)
				fatal("out of memory");
		}
		if (t->f.from != NULL && trace_addr_match(t->f.from, a, n))
			m->from_ok = true;
	}
	if (t->f.to != NULL && ((trace_addr_find(rest, end, "to=<", &a, &n) &&
	                         trace_addr_match(t->f.to, a, n)) ||
	                        (trace_addr_find(rest, end, "orig_to=<", &a, &n) &&
	                         trace_addr_match(t->f.to, a, n))))
		m->to_ok = true;
}

static bool
trace_satisfied(const struct trace *t, const struct trace_msg *m)
{
	return (t->f.from == NULL || m->from_ok) && (t->f.to == NULL || m->to_ok) &&
	       (t->f.id == NULL || strcasecmp(t->f.id, m->id) == 0);
}

/*
 * "NOQUEUE: reject: RCPT from ...; from=<a> to=<b> ...": a refusal (or a
 * warning, hold, discard) before the message had a queue id. It belongs to
 * no message, so it is judged alone: kept when the --from and --to given
 * hold for the line itself; never with --id.
 */
static void
trace_noqueue(struct trace *t, int64_t when, const char *line, size_t len, const char *rest)
{
	struct trace_msg m0, *m;

	if (t->f.id != NULL)
		return;
	memset(&m0, 0, sizeof(m0));
	trace_judge(t, &m0, rest, line + len);
	if (!trace_satisfied(t, &m0)) {
		free(m0.sender);
		return;
	}
	if (t->nnoqueue >= TRACE_NOQUEUE_MAX) {
		t->noqueue_left_out++;
		free(m0.sender);
		return;
	}
	if (t->nnoqueue == t->noqueue_cap) {
		t->noqueue_cap = t->noqueue_cap ? t->noqueue_cap * 2 : 16;
		t->noqueue = realloc(t->noqueue, t->noqueue_cap * sizeof(*t->noqueue));
		if (t->noqueue == NULL)
			fatal("out of memory");
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		fatal("out of memory");
	*m = m0;
	snprintf(m->id, sizeof(m->id), "NOQUEUE");
	m->seq = t->seq++;
	m->matched = true;
	m->removed = true;	/* nothing of it was queued */
	trace_keep(m, when, line, len);
	t->noqueue[t->nnoqueue++] = m;
}

void
trace_line(struct trace *t, const char *line, size_t len)
{
	static const char noqueue[] = "NOQUEUE: ";
	char id[TRACE_ID_MAX + 1], cid[TRACE_ID_MAX + 1];
	const char *text, *rest, *end = line + len;
	struct trace_msg *m, *c;
	size_t used;
	int64_t when;
	bool notice;

	when = trace_parse_time(line, len, t->now, &used);
	if (when < 0 || (t->f.since > 0 && when < t->f.since))
		return;
	text = trace_text(line + used, end);
	if (text == NULL)
		return;
	if ((size_t)(end - text) >= sizeof(noqueue) - 1 &&
	    memcmp(text, noqueue, sizeof(noqueue) - 1) == 0) {
		trace_noqueue(t, when, line, len, text + sizeof(noqueue) - 1);
		return;
	}
	rest = trace_split(text, end, id);
	if (rest == NULL)
		return;
	m = trace_find(t, id);
	if (m == NULL && (m = trace_add(t, id)) == NULL)
		return;
	trace_keep(m, when, line, len);
	trace_judge(t, m, rest, end);
	if (!m->matched && trace_satisfied(t, m))
		trace_mark(trace_root(m));
	if (trace_child_id(rest, end, cid, &notice) && strcmp(cid, id) != 0) {
		/* A notice is announced before its first line; a filter's
		 * re-injection after (only a known id is ours). */
		c = trace_find(t, cid);
		if (c == NULL && notice)
			c = trace_add(t, cid);
		if (c != NULL)
			trace_link(m, c);
	}
	/* "removed", or "removed (deleted by the administrator)". */
	if ((size_t)(end - rest) >= 7 && memcmp(rest, "removed", 7) == 0 &&
	    (end - rest == 7 || rest[7] == ' ')) {
		struct trace_msg *root = trace_root(m);

		m->removed = true;
		if (!root->matched && trace_all_removed(root))
			trace_free_tree(t, root);
	}
}

/* ---- output ---- */

struct trace *
trace_new(const struct trace_filter *f, int64_t now)
{
	struct trace *t = calloc(1, sizeof(*t));

	if (t == NULL)
		fatal("out of memory");
	t->f = *f;
	t->now = now;
	trace_grow(t);
	return t;
}

void
trace_free(struct trace *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++)
		while (t->buckets[i] != NULL)
			trace_msg_free(t, t->buckets[i]);
	for (size_t i = 0; i < t->nnoqueue; i++)
		trace_msg_free(t, t->noqueue[i]);
	free(t->noqueue);
	free(t->buckets);
	free(t);
}

size_t
trace_open_count(const struct trace *t)
{
	return t->n;
}

uint64_t
trace_skipped_count(const struct trace *t)
{
	return t->skipped;
}

uint64_t
trace_noqueue_left_out(const struct trace *t)
{
	return t->noqueue_left_out;
}

static int
trace_seq_cmp(const void *a, const void *b)
{
	const struct trace_msg *x = *(struct trace_msg *const *)a;
	const struct trace_msg *y = *(struct trace_msg *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
trace_render_one(struct buf *out, const struct trace_msg *m, bool json, bool first)
{
	if (json) {
		buf_append_str(out, first ? "\n  {\"id\": " : ",\n  {\"id\": ");
		qlist_json_str(out, m->id);
		buf_append_str(out, ", \"parent\": ");
		qlist_json_str(out, m->parent != NULL ? m->parent->id : NULL);
		buf_append_str(out, ", \"sender\": ");
		qlist_json_str(out, m->sender);
		buf_append_printf(out, ", \"first\": %" PRId64 ", \"removed\": %s, \"lines\": [",
		                  m->nlines ? m->lines[0].time : 0, m->removed ? "true" : "false");
		for (size_t i = 0; i < m->nlines; i++) {
			buf_append_printf(out, "%s{\"time\": %" PRId64 ", \"text\": ",
			                  i ? ",\n    " : "\n    ", m->lines[i].time);
			qlist_json_str(out, m->lines[i].text);
			buf_append_char(out, '}');
		}
		buf_append_printf(out, "], \"lines_left_out\": %zu}", m->left_out);
		return;
	}
	buf_append_printf(out, "*** %s", m->id);
	if (m->parent == NULL && strcmp(m->id, "NOQUEUE") == 0) {
		/* One refused transaction: the line says it all. */
		buf_append_char(out, '\n');
		qlist_text_str(out, m->lines[0].text);
		buf_append_str(out, "\n\n");
		return;
	}
	if (m->sender != NULL) {
		buf_append_str(out, "  from=<");
		qlist_text_str(out, m->sender);
		buf_append_char(out, '>');
	}
	if (m->parent != NULL)
		buf_append_printf(out, "  [made from %s]", m->parent->id);
	if (!m->removed)
		buf_append_str(out, "  (still in the queue, or its end is not in this log)");
	buf_append_char(out, '\n');
	for (size_t i = 0; i < m->nlines; i++) {
		qlist_text_str(out, m->lines[i].text);
		buf_append_char(out, '\n');
	}
	if (m->left_out > 0)
		buf_append_printf(out, "(%zu more lines left out)\n", m->left_out);
	buf_append_char(out, '\n');
}

size_t
trace_render(struct trace *t, struct buf *out, bool json)
{
	struct trace_msg **all;
	size_t n = 0;

	all = calloc(t->n + t->nnoqueue + 1, sizeof(*all));
	if (all == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct trace_msg *m = t->buckets[i]; m != NULL; m = m->hnext)
			if (m->matched && m->nlines > 0)
				all[n++] = m;
	for (size_t i = 0; i < t->nnoqueue; i++)
		all[n++] = t->noqueue[i];
	qsort(all, n, sizeof(*all), trace_seq_cmp);
	if (json)
		buf_append_char(out, '[');
	for (size_t i = 0; i < n; i++)
		trace_render_one(out, all[i], json, i == 0);
	if (json)
		buf_append_str(out, n ? "\n]\n" : "]\n");
	free(all);
	return n;
}
