#!/bin/bash
# bench/relay: end-to-end relay, smtp-source -> tern -> smtp-sink, next to the
# same through a private Postfix (issue 4).
#
# Run as root: `bench/relay/run.sh` (the build in ./build, or TERN_BUILD=DIR;
# use an optimised build: cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo). A thin
# wrapper around bench/outbound/run.sh's "live" mode, which it runs once per
# case and round with BENCH_CASES=live:20:1 (one recipient per message,
# default_destination_concurrency_limit = 20 in both systems, relayhost =
# [127.0.0.1]:PORT where a fresh smtp-sink listens from the start; see that
# script for the instances, the sink and the accounting). Both systems keep
# their fsync behaviour (tern's defaults; Postfix's defaults, lib.sh's
# instance).
#
# Cases (issue 4's "20 sessions x N x S"): N messages in all, injected by
# one smtp-source over 20 concurrent sessions (several messages per
# session, -d), each with S bytes of body (smtp-source -l S; its few header
# lines come on top):
#   1k    20 sessions x 10,000 messages x 1 KiB   (-m 10000 -l 1024)
#   100k  20 sessions x  2,000 messages x 100 KiB (-m 2000 -l 102400)
# For each case and round, bench/outbound runs tern then Postfix (the
# order alternates from round to round), so both meet the same state of a
# machine that other people use too.
#
# Measured per system, case and round (bench/outbound's figures):
#   - end-to-end messages/s: N / (the last status=sent line - the start of
#     the injection), i.e. from the first injection until the last message
#     was accepted by the sink (the system logs status=sent on the sink's
#     250 reply to the end of data);
#   - CPU per message of the whole mail system: its cgroup v2 cpu.stat
#     (usage_usec: every process of ternd, or of Postfix's master, smtpd,
#     cleanup, qmgr, smtp, trivial-rewrite, ...) over the measured window,
#     divided by N. Shown as ms per message = CPU seconds per 1,000
#     messages. The delivery agent's, qmgr's and the sink's apart;
#   - the sink's count check: smtp-sink -c must have received exactly N
#     messages and the log must show N status=sent (none deferred or
#     bounced). A mismatch (or a failed run) is reported loudly and the
#     script exits 2.
# And the machine around it (rmon.py sample): the CPU the whole machine was
# busy and how much of that was outside the bench's cgroup (other people's
# builds; also the bench's own Python monitors) during each measured window,
# with the load average. Then the medians over the rounds, the ratios
# tern/Postfix (of the medians, and per round) and issue 4's targets for the
# 1 KiB case: tern >= 4x Postfix's messages/s, < 1.5 ms CPU per message.
#
# Writes bench/results/relay-DATE.txt (key = value lines, then a # Summary
# with a table) and prints it. bench/outbound's own result files are moved
# into the temporary directory (kept with BENCH_KEEP=1), not left in
# bench/results. About 1.5 minutes per round on 2 cores, most of it Postfix.
#
# Knobs (environment): BENCH_REPEAT (rounds, 3), BENCH_RELAY_CASES ("NAME:N:S
# ...", default "1k:10000:1024 100k:2000:102400"), BENCH_MESSAGES (if set,
# N for every case: for a quick check), BENCH_SESSIONS (20), TERN_BUILD,
# BENCH_KEEP=1 (keep the temporary directory with bench/outbound's logs),
# BENCH_TIME_LIMIT (per bench/outbound run, 1500 s). Everything started is
# stopped and removed on exit (bench/outbound cleans up after itself).
set -u
set -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=$(cd "$HERE/.." && pwd)
SRC=$(cd "$BENCH/.." && pwd)
OUTBOUND="$BENCH/outbound/run.sh"
RMON="$HERE/rmon.py"
PY=/usr/bin/python3
export TERN_BUILD=${TERN_BUILD:-$SRC/build}
REPEAT=${BENCH_REPEAT:-3}
CASES=${BENCH_RELAY_CASES:-1k:10000:1024 100k:2000:102400}
SESSIONS=${BENCH_SESSIONS:-20}
KEEP=${BENCH_KEEP:-0}
OB_TIME_LIMIT=${BENCH_TIME_LIMIT:-1500}

. "$BENCH/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (bench/outbound needs it)"
[ -x "$OUTBOUND" ] || die "$OUTBOUND is missing"
{ [ -e "$RMON" ] && [ -x "$PY" ]; } || die "$RMON or $PY is missing"
for x in $REPEAT $SESSIONS ${BENCH_MESSAGES:-0}; do
	case $x in '' | *[!0-9]*) die "not a number: $x" ;; esac
done
for cs in $CASES; do
	IFS=: read -r name n sz <<<"$cs"
	case "$name" in '' | *[!a-z0-9]*) die "BENCH_RELAY_CASES: bad name in $cs" ;; esac
	case "$n$sz" in '' | *[!0-9]*) die "BENCH_RELAY_CASES: bad case $cs" ;; esac
done
CGMOUNT=$(cgroup2_mount) || die "no writable cgroup v2 hierarchy"

TMP=$(mktemp -d /var/tmp/tern-bench-relay.XXXXXX) || die "mktemp"
LIST="$TMP/runs.txt"
: >"$LIST"
OB_PID=""	# the running bench/outbound
SAMPLER_PID=""

cleanup() {
	local rc=$?
	trap - EXIT
	trap '' INT TERM
	if [ -n "$OB_PID" ]; then
		# bench/outbound stops and removes what it started on SIGTERM
		kill -TERM "$OB_PID" 2>/dev/null
		wait_exit "$OB_PID" 90 || kill -9 "$OB_PID" 2>/dev/null
	fi
	[ -n "$SAMPLER_PID" ] && kill -TERM "$SAMPLER_PID" 2>/dev/null
	if [ "$KEEP" = 1 ]; then say "bench: kept $TMP"; else rm -rf "$TMP"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T_START=$(date +%s)
note() { say "[$(($(date +%s) - T_START))s] $*"; }
mkdir -p "$BENCH/results"
OUT="$BENCH/results/relay-$(date +%Y%m%d-%H%M%S).txt"
HEAD="$TMP/head.txt"
{
	echo "date = $(date +%Y-%m-%dT%H:%M:%S%z)"
	echo "load_before = $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "rounds = $REPEAT"
	echo "cases = $CASES${BENCH_MESSAGES:+ (messages overridden: $BENCH_MESSAGES)}"
	echo "inject = smtp-source -s $SESSIONS -d -m N -l S (N messages in all over $SESSIONS concurrent sessions, S bytes of body)"
	echo "mode = bench/outbound live, BENCH_CASES=live:20:1 (concurrency 20, 1 recipient)"
} >"$HEAD"
note "bench/relay: cases $CASES; $REPEAT round(s); tern from $TERN_BUILD"

# one CASE ROUND N S ORDER: one bench/outbound run (both systems, in ORDER).
one() {
	local case=$1 round=$2 n=$3 sz=$4 order=$5 log rc results raw kept
	log="$TMP/$case-r$round.log"
	note "$case round $round: $n messages x $sz bytes, $order"
	BENCH_CASES=live:20:1 BENCH_MESSAGES=$n BENCH_SIZE=$sz BENCH_SESSIONS=$SESSIONS \
		BENCH_SYSTEMS="${order/,/ }" BENCH_KEEP=1 BENCH_TIME_LIMIT=$OB_TIME_LIMIT \
		"$OUTBOUND" >"$log.out" 2>"$log" &
	OB_PID=$!
	# bench/outbound's cgroup is $CGMOUNT/tern-bench-<its pid> (lib.sh)
	"$PY" "$RMON" sample "$TMP/$case-r$round.samples" "$CGMOUNT/tern-bench-$OB_PID" \
		$((OB_TIME_LIMIT + 120)) &
	SAMPLER_PID=$!
	wait "$OB_PID"
	rc=$?
	OB_PID=""
	kill -TERM "$SAMPLER_PID" 2>/dev/null
	wait "$SAMPLER_PID" 2>/dev/null
	SAMPLER_PID=""
	grep -E '^\[[0-9]+s\] (tern|postfix) live' "$log" | sed 's/^/    /' >&2
	results=$(sed -n 's/^results: //p' "$log" | tail -1)
	kept=$(sed -n 's/^bench: kept //p' "$log" | tail -1)
	raw="$kept/results.txt"
	if [ -n "$results" ] && [ -f "$results" ]; then
		# bench/outbound's own results file: keep it with ours, not in bench/results
		mv "$results" "$TMP/$case-r$round.outbound.txt"
		results="$TMP/$case-r$round.outbound.txt"
	else
		say "bench: $case round $round: bench/outbound wrote no results (exit $rc):"
		tail -5 "$log" >&2
		results="$TMP/none"
	fi
	if [ -n "$kept" ] && [ -d "$kept" ]; then
		mv "$kept" "$TMP/$case-r$round.outbound.d"
		raw="$TMP/$case-r$round.outbound.d/results.txt"
	fi
	echo "$case $round $order $rc $results $raw $TMP/$case-r$round.samples" >>"$LIST"
	[ $rc -eq 0 ] || say "bench: $case round $round: bench/outbound exited $rc"
}

for round in $(seq "$REPEAT"); do
	if [ $((round % 2)) = 1 ]; then order=tern,postfix; else order=postfix,tern; fi
	for cs in $CASES; do
		IFS=: read -r name n sz <<<"$cs"
		one "$name" "$round" "${BENCH_MESSAGES:-$n}" "$sz" "$order"
	done
done

{
	echo "load_after = $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "run_seconds = $(($(date +%s) - T_START))"
} >>"$HEAD"
cp "$HEAD" "$OUT"
note "done"
"$PY" "$RMON" report "$LIST" "$OUT"
rc=$?
say "results: $OUT"
[ $rc -eq 2 ] && say "bench: MISMATCH: not every message reached the sink exactly once (see the summary)"
[ $rc -le 2 ] || die "report failed"
exit $rc
