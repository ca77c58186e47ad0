/*
 * ternctl_stats: `ternctl stats [--json]`: qmgr's counters since it
 * started, the queue by state and the destinations (QMGR_VERB_STATS).
 */
#ifndef TERN_TERNCTL_STATS_H
#define TERN_TERNCTL_STATS_H

int ternctl_stats(const char *conf, int argc, char **argv);

#endif
