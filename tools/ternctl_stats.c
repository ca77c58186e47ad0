/*
 * ternctl_stats: ask qmgr (it owns the schedule, so it counts) and print
 * its answer as a table or as one JSON object.
 */
#include "tools/ternctl_stats.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "common/buf.h"
#include "queue/agent_proto.h"
#include "queue/qmgr_client.h"
#include "queue/retry.h"
#include "tools/qlist.h"
#include "tools/ternctl_common.h"

#define TS_OUT_MAX (16u * 1024 * 1024)

static void
ts_text(struct buf *out, const struct qmgr_stats *st)
{
	time_t started = (time_t)st->started;
	int64_t up = (int64_t)time(NULL) - st->started;
	char when[64], dur[48];
	struct tm tm;

	if (localtime_r(&started, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
		snprintf(when, sizeof(when), "?");
	retry_format_duration(up > 0 ? up : 0, dur, sizeof(dur));
	buf_append_printf(out, "qmgr started %s (%s ago)\n\n", when, dur);
	buf_append_printf(out, "messages received     %10" PRIu64 "\n"
	                  "recipients delivered  %10" PRIu64 "\n"
	                  "recipients deferred   %10" PRIu64 "  (attempts)\n"
	                  "recipients bounced    %10" PRIu64 "\n\n",
	                  st->received, st->delivered, st->deferred, st->bounced);
	buf_append_printf(out, "queue: %" PRIu64 " active, %" PRIu64 " incoming, %" PRIu64
	                  " deferred, %" PRIu64 " hold\n",
	                  st->q_active, st->q_incoming, st->q_deferred, st->q_hold);
	if (st->ndests == 0)
		return;
	buf_append_printf(out, "\n%-40s %8s %6s %9s %5s  %s\n", "destination", "waiting", "ready",
	                  "in-flight", "jobs", "suspended");
	for (size_t i = 0; i < st->ndests; i++) {
		const struct qmgr_stats_dest *d = &st->dests[i];
		struct buf name;

		buf_init(&name, 4 * (AGENT_TRANSPORT_MAX + AGENT_NEXTHOP_MAX) + 8);
		qlist_text_str(&name, d->transport);
		buf_append_char(&name, ':');
		qlist_text_str(&name, d->nexthop);
		buf_append_printf(out, "%-40s %8" PRIu64 " %6" PRIu64 " %9" PRIu64 " %5" PRIu64 "  ",
		                  buf_cstr(&name), d->waiting, d->ready, d->active, d->jobs);
		if (d->suspended_until > 0) {
			int64_t left = d->suspended_until - (int64_t)time(NULL);

			retry_format_duration(left > 0 ? left : 0, dur, sizeof(dur));
			buf_append_printf(out, "yes, %s more\n", dur);
		} else {
			buf_append_str(out, "no\n");
		}
		buf_free(&name);
	}
	if (st->dests_total > st->ndests)
		buf_append_printf(out, "(%" PRIu64 " more destinations not shown)\n",
		                  st->dests_total - st->ndests);
}

static void
ts_json(struct buf *out, const struct qmgr_stats *st)
{
	buf_append_printf(out, "{\"started\": %" PRId64 ", \"received\": %" PRIu64
	                  ", \"delivered\": %" PRIu64 ", \"deferred\": %" PRIu64
	                  ", \"bounced\": %" PRIu64 ",\n \"queue\": {\"active\": %" PRIu64
	                  ", \"incoming\": %" PRIu64 ", \"deferred\": %" PRIu64
	                  ", \"hold\": %" PRIu64 "},\n \"destinations_total\": %" PRIu64
	                  ", \"destinations\": [",
	                  st->started, st->received, st->delivered, st->deferred, st->bounced,
	                  st->q_active, st->q_incoming, st->q_deferred, st->q_hold,
	                  st->dests_total);
	for (size_t i = 0; i < st->ndests; i++) {
		const struct qmgr_stats_dest *d = &st->dests[i];

		buf_append_str(out, i > 0 ? ",\n  {\"transport\": " : "\n  {\"transport\": ");
		qlist_json_str(out, d->transport);
		buf_append_str(out, ", \"nexthop\": ");
		qlist_json_str(out, d->nexthop);
		buf_append_printf(out, ", \"waiting\": %" PRIu64 ", \"ready\": %" PRIu64
		                  ", \"in_flight\": %" PRIu64 ", \"jobs\": %" PRIu64
		                  ", \"suspended\": %s, \"suspended_until\": %" PRId64 "}",
		                  d->waiting, d->ready, d->active, d->jobs,
		                  d->suspended_until > 0 ? "true" : "false", d->suspended_until);
	}
	buf_append_str(out, "]}\n");
}

int
ternctl_stats(const char *conf, int argc, char **argv)
{
	struct qmgr_stats st;
	struct config *cfg;
	struct buf out;
	char err[AGENT_TEXT_MAX + 64];
	bool json = false;
	int rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else {
			fprintf(stderr, "ternctl: stats: unknown argument \"%s\"\n", argv[i]);
			return EX_USAGE;
		}
	}
	cfg = ternctl_config_load(ternctl_config_path(conf));
	rc = ternctl_access_check(cfg, "stats");
	if (rc == EX_OK) {
		rc = qmgr_client_stats(config_str(cfg, P_QUEUE_DIRECTORY), &st,
		                       TERNCTL_QMGR_TIMEOUT_MS, err, sizeof(err));
		if (rc != 0)
			fprintf(stderr, "ternctl: %s\n", err);
	}
	config_free(cfg);
	if (rc != 0)
		return rc;
	buf_init(&out, TS_OUT_MAX);
	if (json)
		ts_json(&out, &st);
	else
		ts_text(&out, &st);
	rc = ternctl_write(&out);
	buf_free(&out);
	qmgr_stats_free(&st);
	return rc;
}
