/*
 * ternctl_trace: follow messages through a mail log, the way zmmsgtrace
 * does for Zimbra: every line of each matching queue id (smtpd client=,
 * qmgr from=, the agents' to=, removed), and the messages made from it
 * (a bounce's or a delay warning's new id, from the qmgr line "ID: sender
 * non-delivery notification: NEWID"; a content filter's re-injection,
 * from "status=sent (... queued as NEWID)" when NEWID is in the log).
 *
 * Pure: lines go in one at a time (trace_line), results come out as text
 * or JSON (trace_render); no I/O, the clock is given. Memory is bounded
 * by the messages open at once in the log, not by its length: a queue id
 * is remembered from its first line until its "removed" line, and then
 * forgotten unless it (or a message linked to it) matched. At most
 * TRACE_OPEN_MAX ids are followed at once and TRACE_LINES_MAX lines kept
 * per message; what passes the limits is counted and reported.
 *
 * smtpd's refusals before a queue id ("NOQUEUE: reject: RCPT from ...;
 * from=<a> to=<b> ...") belong to no message: each matching one (by
 * --from and --to; never by --id) is shown alone, in time order with the
 * messages, headed "*** NOQUEUE".
 *
 * Lines are syslog's ("Nov 21 09:45:26 host prog[pid]: ID: text", the year
 * inferred from `now`) or RFC 3339 ("2024-11-21T09:45:26.123+01:00 host
 * ..."); anything else is skipped. Log lines are untrusted text: they are
 * parsed with explicit bounds and escaped on output.
 */
#ifndef TERN_TERNCTL_TRACE_H
#define TERN_TERNCTL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define TRACE_ID_MAX 32		/* longest queue id looked at (Postfix long ids: ~17) */
#define TRACE_LINE_MAX 4096	/* a longer line is kept cut, with "..." */
#define TRACE_LINES_MAX 1000	/* lines kept per message */
#define TRACE_OPEN_MAX 1000000	/* queue ids followed at once */
#define TRACE_NOQUEUE_MAX 100000	/* matching NOQUEUE lines kept */

struct trace_filter {
	const char *from;	/* sender: an address, "@domain", or "<>"; NULL: any */
	const char *to;		/* recipient (to= or orig_to=): same forms; NULL: any */
	const char *id;		/* a queue id; NULL: any */
	int64_t since;		/* seconds since the epoch; lines before are skipped; 0: all */
};

struct trace;

/* A tracer with filter f (its strings are borrowed for the tracer's
 * life); now (seconds since the epoch) dates syslog lines, which carry
 * no year. At least one of from, to, id must be set. */
struct trace *trace_new(const struct trace_filter *f, int64_t now);
void trace_free(struct trace *t);

/* One line of the log, without its newline. */
void trace_line(struct trace *t, const char *line, size_t len);

/*
 * The matching messages, in the order of their first line (time order),
 * each with its lines in log order. Text: a header line per message
 * ("*** ID  from=<...>  [made from ID]"), its lines, a blank line. JSON:
 * one array of {"id", "parent", "sender", "first", "lines": [{"time",
 * "text"}], "lines_left_out"}. Returns the number of messages.
 */
size_t trace_render(struct trace *t, struct buf *out, bool json);

/* For tests and the summary: ids followed now, and ids not followed
 * because TRACE_OPEN_MAX was reached. */
size_t trace_open_count(const struct trace *t);
uint64_t trace_skipped_count(const struct trace *t);
/* Matching NOQUEUE lines not kept because TRACE_NOQUEUE_MAX were. */
uint64_t trace_noqueue_left_out(const struct trace *t);

/* Parse a log line's timestamp; the seconds since the epoch and *used
 * (its length, and the space after it), or -1 when there is none. */
int64_t trace_parse_time(const char *line, size_t len, int64_t now, size_t *used);

#endif
