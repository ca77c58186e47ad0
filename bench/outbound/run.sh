#!/bin/bash
# shellcheck disable=SC2046 # lists of pids are split on purpose
# bench/outbound: outbound SMTP delivery throughput, tern next to Postfix.
#
# Run as root: `bench/outbound/run.sh` (the build in ./build, or
# TERN_BUILD=DIR; use an optimised build). Both systems relay everything to
# relayhost = [127.0.0.1]:PORT, where Postfix's smtp-sink listens (fresh for
# every case, PIPELINING, 8BITMIME, DSN and ENHANCEDSTATUSCODES offered,
# no AUTH/XCLIENT/XFORWARD, -c counting sessions and messages). No DNS is
# involved: the next hop is an address literal.
#
# A case is (system, mode, concurrency C, recipients per message R). Each
# case starts a fresh private instance (tern: ternd under a temporary
# directory in /var/tmp, ports on 127.0.0.1; Postfix: lib.sh's private
# instance without its hold restriction) with
# default_destination_concurrency_limit = C and backoff fixed at 3600 s,
# and injects BENCH_MESSAGES (20,000) messages of BENCH_SIZE (2,000) bytes
# of body (~2.3 KB on the wire) with smtp-source over BENCH_SESSIONS (20)
# sessions, several messages per session, R recipients each (the same
# domain: one destination). Modes:
#   live     the sink listens from the start; delivery runs while the
#            messages arrive. Wall time from the first injection to the
#            last status=sent line. For Postfix this is bounded by its
#            smtpd/cleanup (bench/accept: ~3x slower than tern's smtpd), so
#            the ratio is that of the whole pipeline;
#   backlog  the sink is down while injecting: every message is deferred
#            (connection refused; both systems then suspend the destination
#            and defer the rest without trying). Then the sink starts and
#            the queue is flushed (`ternctl queue flush ALL`, `postqueue
#            -f`); wall time from the flush to the last status=sent line:
#            the delivery path alone, nothing else competing for the CPUs.
# Measured per case, over the measured window (live: from before the first
# message; backlog: from just before the flush) until every recipient has a
# result and every message is removed:
#   - messages (and recipients) delivered per second;
#   - CPU (utime+stime) per message of the delivery agent: tern's one smtp
#     process (/proc/PID/stat), Postfix's smtp processes summed (they come
#     and go, max_use = 100: each is started through a two-line sh wrapper
#     that puts it in a cgroup of its own, whose cpu.stat is read; the
#     wrapper's exec costs about 1 ms per process start, ~200 starts per
#     case, charged to Postfix), of qmgr (/proc/PID/stat), of the whole mail
#     system (its cgroup: smtpd, cleanup, trivial-rewrite, ... included) and
#     of the sink;
#   - the agent's peak RSS (tern: VmHWM of the smtp process; Postfix: the
#     largest VmHWM of its smtp processes, sampled every 0.5 s) and, for
#     Postfix, how many smtp processes took part (distinct pids in its log);
#   - the connections the sink saw (sessions), messages per connection, and
#     the peak of concurrent connections (sampled every 0.5 s). tern opens
#     one connection per delivery job; Postfix reuses connections
#     (smtp_connection_cache_on_demand): this explains much of the difference.
#   - a check: every sink must have received exactly BENCH_MESSAGES
#     messages and every recipient must be logged status=sent once (no
#     deferral, no bounce). A mismatch is reported loudly in the results and
#     makes the script exit 2.
# Cases run in turn for tern and Postfix (tern, Postfix, next case...), so
# both meet the same state of the machine. Default cases: live with the
# first of BENCH_CONCURRENCY and each of BENCH_RCPTS, backlog with each
# concurrency and the first R: live:20:1 live:20:5 backlog:20:1 backlog:50:1.
#
# Writes bench/results/outbound-DATE.txt (key = value lines, then a
# # Summary with the ratios tern/Postfix) and prints it. About 7 minutes on
# 2 cores with the defaults (10-12 on a busy machine), three quarters of it
# Postfix's cases (its smtpd takes 30-70 s to accept 20,000 messages here).
#
# Knobs (environment): BENCH_MESSAGES (20000), BENCH_RCPTS ("1 5"),
# BENCH_CONCURRENCY ("20 50"), BENCH_MODES ("live backlog"), or the cases
# themselves: BENCH_CASES ("MODE:C:R ...", e.g. "backlog:20:1"), BENCH_SIZE
# (2000), BENCH_SESSIONS (20), BENCH_SYSTEMS ("tern postfix"), TERN_BUILD,
# BENCH_TIME_LIMIT (1500 s: the whole run is stopped after that),
# BENCH_KEEP=1 (keep the temporary directory, for post-mortems),
# BENCH_POSTFIX_CONF (extra main.cf settings for Postfix, "name=value ...",
# for experiments; recorded in the results). Everything
# started is stopped and removed on exit, whatever happens.
set -u
set -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=$(cd "$HERE/.." && pwd)
SRC=$(cd "$BENCH/.." && pwd)
TERN_BUILD=${TERN_BUILD:-$SRC/build}
MESSAGES=${BENCH_MESSAGES:-20000}
RCPTS=${BENCH_RCPTS:-1 5}
CONCURRENCY=${BENCH_CONCURRENCY:-20 50}
MODES=${BENCH_MODES:-live backlog}
SIZE=${BENCH_SIZE:-2000}
SESSIONS=${BENCH_SESSIONS:-20}
SYSTEMS=${BENCH_SYSTEMS:-tern postfix}
TIME_LIMIT=${BENCH_TIME_LIMIT:-1500}
KEEP=${BENCH_KEEP:-0}
CASE_LIST=${BENCH_CASES:-}
PFX_CONF=${BENCH_POSTFIX_CONF:-}	# extra main.cf settings, name=value ..., for experiments
INJECT_TIMEOUT=300	# smtp-source, per case
DELIVER_TIMEOUT=400	# until every result, per case
STALL=60		# no new result line for this long: give up
PY=/usr/bin/python3
OMON="$HERE/omon.py"

. "$BENCH/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (private Postfix, smtp-sink -u, cgroups)"
for p in /usr/sbin/smtp-source /usr/sbin/smtp-sink "$PY" "$OMON"; do
	[ -e "$p" ] || die "$p is missing (apt-get install postfix python3)"
done
command -v ss >/dev/null || die "ss is missing (apt-get install iproute2)"
has() { case " $SYSTEMS " in *" $1 "*) return 0 ;; esac; return 1; }
for m in $MODES; do
	case $m in live | backlog) ;; *) die "BENCH_MODES: unknown mode $m" ;; esac
done
for x in $MESSAGES $RCPTS $CONCURRENCY $SIZE $SESSIONS; do
	case $x in '' | *[!0-9]*) die "not a number: $x" ;; esac
done
id postfix >/dev/null 2>&1 || die "no postfix user (smtp-sink -u postfix; Postfix)"
if has postfix; then
	command -v postfix >/dev/null || die "postfix is missing (apt-get install postfix)"
	PFX_DAEMON_DIR=$(postconf -dh daemon_directory) || die "postconf failed"
	[ -x "$PFX_DAEMON_DIR/smtp" ] || die "no $PFX_DAEMON_DIR/smtp"
fi
if has tern; then
	[ -x "$TERN_BUILD/bin/ternd" ] || die "$TERN_BUILD/bin/ternd not built"
	id tern >/dev/null 2>&1 ||
		useradd --system --user-group --no-create-home --shell /usr/sbin/nologin tern ||
		die "cannot create user tern"
fi

TMP=$(mktemp -d /var/tmp/tern-bench-outbound.XXXXXX) || die "mktemp"
chmod 755 "$TMP"
RESULTS="$TMP/results.txt"
: >"$RESULTS"
TERN_PID=""	# the running ternd master, if any
PFX=""		# the running Postfix instance's directory, if any
SINK_PID=""
CLIENT_PID=""	# smtp-source, if running
WAITER_PID=""	# omon.py deliveries, if running
WATCHDOG=""
EXTRA_CG=()	# cgroups of ours beside lib.sh's (sink, postfix/smtp)

sink_stop() {
	[ -n "$SINK_PID" ] || return 0
	kill -TERM "$SINK_PID" 2>/dev/null
	wait_exit "$SINK_PID" 10 || kill -9 "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=""
}

tern_stop() {
	local rc
	[ -n "$TERN_PID" ] || return 0
	kill -TERM "$TERN_PID" 2>/dev/null
	if ! wait_exit "$TERN_PID" 60; then
		say "bench: WARNING: ternd $TERN_PID did not exit within 60 s of SIGTERM; killing it"
		kill -9 $(tree_pids "$TERN_PID") 2>/dev/null
	fi
	wait "$TERN_PID"
	rc=$?
	TERN_PID=""
	return $rc
}

cleanup() {
	local rc=$? g
	trap - EXIT
	trap '' INT TERM	# a second signal must not cut the cleanup short
	[ -n "$WATCHDOG" ] && kill $(tree_pids "$WATCHDOG") 2>/dev/null
	[ -n "$CLIENT_PID" ] && kill -9 $(tree_pids "$CLIENT_PID") 2>/dev/null
	[ -n "$WAITER_PID" ] && kill -9 "$WAITER_PID" 2>/dev/null
	[ -n "$PFX" ] && [ -d "$PFX/etc" ] && postfix_stop "$PFX"
	tern_stop
	sink_stop
	for g in "${EXTRA_CG[@]}"; do kill_cgroup "$g"; done
	cgroup_teardown
	if [ "$KEEP" = 1 ]; then say "bench: kept $TMP"; else rm -rf "$TMP"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
(sleep "$TIME_LIMIT" && say "bench: time limit of $TIME_LIMIT s reached; stopping" &&
	kill -TERM $$) 2>/dev/null &
WATCHDOG=$!

cgroup_setup || die "no writable cgroup v2 hierarchy (the CPU of Postfix's smtp processes is read from one)"
CG=$BENCH_CGROUP_ROOT
mkdir "$CG/sink" "$CG/postfix/smtp" || die "cannot make cgroups under $CG"
EXTRA_CG=("$CG/postfix/smtp" "$CG/sink")

T_START=$(date +%s)
note() { say "[$(($(date +%s) - T_START))s] $*"; }
res() { printf '%s\n' "$@" >>"$RESULTS"; }
prefixed() { printf '%s\n' "$2" | sed "s/^/$1./" >>"$RESULTS"; }
val() { printf '%s\n' "$2" | sed -n "s/^$1=//p" | tail -1; }
log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }
now_ns() { date +%s%N; }

FIRST_C=${CONCURRENCY%% *}
FIRST_R=${RCPTS%% *}
res "date=$(date +%Y-%m-%dT%H:%M:%S%z)" "host=$(hostname)" "kernel=$(uname -r)" \
	"cpus=$(nproc)" "load_before=$(cut -d' ' -f1-3 /proc/loadavg)" "messages=$MESSAGES" \
	"message_bytes=$SIZE" "inject_sessions=$SESSIONS" "rcpts=$RCPTS" \
	"concurrency=$CONCURRENCY" "modes=$MODES" "sink=smtp-sink -c -a -C -F (postfix $(postconf -dh mail_version))"
note "bench/outbound: $MESSAGES messages per case; modes: $MODES; concurrency: $CONCURRENCY; recipients: $RCPTS; systems: $SYSTEMS"
case $(cut -d' ' -f1 /proc/loadavg) in
0.* | 1.0* | 1.1* | 1.2*) ;;
*) say "bench: WARNING: load average $(cut -d' ' -f1-3 /proc/loadavg) before the run; other work on this machine skews the figures" ;;
esac

if has tern; then
	bt=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$TERN_BUILD/CMakeCache.txt" 2>/dev/null)
	[ -f "$TERN_BUILD/CMakeCache.txt" ] || bt="unknown"
	res "tern_build_type=${bt:-RelWithDebInfo}" "tern_build=$TERN_BUILD" \
		"tern_commit=$(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)" \
		"tern_binary_time=$(date -r "$TERN_BUILD/bin/ternd" +%Y-%m-%dT%H:%M:%S%z)"
	[ -n "$(find "$SRC" -path "$SRC/build*" -prune -o \( -name '*.c' -o -name '*.h' \) \
		-newer "$TERN_BUILD/bin/ternd" -print -quit)" ] &&
		say "bench: WARNING: sources are newer than $TERN_BUILD/bin/ternd (cmake --build it first)"
	[ "$bt" = Debug ] && say "bench: WARNING: $TERN_BUILD is a Debug build; tern's figures are not representative"
fi
has postfix && res "postfix_version=$(postconf -dh mail_version)" "postfix_extra_conf=$PFX_CONF"

# ---- the sink ----------------------------------------------------------------

# sink_start PORT OUT: smtp-sink on 127.0.0.1:PORT in the sink cgroup,
# counters to OUT; waits for its greeting.
sink_start() {
	run_in_cgroup sink smtp-sink -c -a -C -F -u postfix -h sink.test "127.0.0.1:$1" 1024 >"$2" 2>&1
	SINK_PID=$RUN_PID
	wait_greeting "$1" 15 || die "smtp-sink gave no greeting on port $1: $(cat "$2")"
}

# sink_count OUT PORT EXPECTED: the sink's counters once it has EXPECTED
# messages and no connection is left open (run it after the mail system
# stopped: Postfix keeps connections cached; the sink counts a session when
# it ends), or after 10 s.
sink_count() {
	local out
	for _ in $(seq 100); do
		out=$("$PY" "$OMON" sink "$1")
		[ "$(val messages "$out")" -ge "$3" ] &&
			[ "$(ss -Htn state established "( sport = :$2 )" | wc -l)" = 0 ] && break
		sleep 0.1
	done
	printf '%s\n' "$out"
}

# ---- tern ---------------------------------------------------------------------

# tern_start DIR SINKPORT C: a fresh ternd relaying to the sink; sets
# TERN_PID, TERN_PORT, QMGR_PID, AGENT_PID (once the agent is connected).
tern_start() {
	local dir=$1
	TERN_PORT=$(free_port)
	mkdir -p "$dir"
	chmod 755 "$dir"
	cat >"$dir/tern.conf" <<EOC
queue_directory = $dir/spool
log_file = $dir/maillog
smtpd_listen = 127.0.0.1:$TERN_PORT
submission_listen = 127.0.0.1:$(free_port)
mail_owner = tern
myhostname = tern.test
mydestination = localhost, tern.test
mynetworks = 127.0.0.0/8
# Everything to the sink: smtp:[127.0.0.1]:PORT, one destination.
relayhost = [127.0.0.1]:$2
default_destination_concurrency_limit = $3
minimal_backoff_time = 3600s
maximal_backoff_time = 3600s
EOC
	tern_start_agent "$dir" smtp
}

# ---- Postfix ------------------------------------------------------------------

# pfx_start DIR SINKPORT C: a fresh private Postfix relaying to the sink;
# sets PFX, PFX_PORT, QMGR_PID (lib.sh's pfx_start_agent: its smtp processes
# in the postfix/smtp cgroup).
pfx_start() {
	pfx_start_agent "$1" smtp "relayhost = [127.0.0.1]:$2" \
		"default_destination_concurrency_limit = $3" 'minimal_backoff_time = 3600s' \
		'maximal_backoff_time = 3600s'
}

# ---- one case -----------------------------------------------------------------

# snapshot SYS TAG: CPU of the agent, qmgr, the whole system, the sink.
snapshot() {
	local sys=$1 tag=$2 out
	if [ "$sys" = tern ]; then
		out=$("$PY" "$OMON" proc "$AGENT_PID") || die "tern: the smtp agent $AGENT_PID is gone"
	else
		out=$("$PY" "$OMON" cgcpu "$CG/postfix/smtp") || die "cannot read $CG/postfix/smtp"
	fi
	prefixed "$tag.agent" "$out"
	out=$("$PY" "$OMON" proc "$QMGR_PID") || die "$sys: qmgr $QMGR_PID is gone"
	prefixed "$tag.qmgr" "$out"
	out=$("$PY" "$OMON" cgcpu "$CG/$sys") || die "cannot read $CG/$sys"
	prefixed "$tag.system" "$out"
	out=$("$PY" "$OMON" cgcpu "$CG/sink") || die "cannot read $CG/sink"
	prefixed "$tag.sink" "$out"
}

# delta CASE PART KEY: after - before of one figure of the case's snapshots.
delta() {
	local a b
	a=$(sed -n "s/^$1\.before\.$2\.$3=//p" "$RESULTS" | tail -1)
	b=$(sed -n "s/^$1\.after\.$2\.$3=//p" "$RESULTS" | tail -1)
	echo $((b - a))
}

# inject PORT R OUT: smtp-source, in the background (CLIENT_PID).
inject() {
	run_in_cgroup client timeout "$INJECT_TIMEOUT" smtp-source -s "$SESSIONS" -d -m "$MESSAGES" \
		-l "$SIZE" -r "$2" -f sender@bench.test -t rcpt@dest.test "127.0.0.1:$1" >"$3" 2>&1
	CLIENT_PID=$RUN_PID
}

# waiter LOG OFFSET SYS NRCPT SINKPORT OUT: omon deliveries in the background.
waiter() {
	local cg=""
	[ "$3" = postfix ] && cg="$CG/postfix/smtp"
	"$PY" "$OMON" deliveries "$1" "$2" "$3/smtp[" "$4" "$MESSAGES" "$DELIVER_TIMEOUT" "$STALL" \
		"$5" $cg >"$6" 2>&1 &
	WAITER_PID=$!
}

run_case() {
	local sys=$1 mode=$2 c=$3 r=$4 p dir log port off t0 t1 tf td out nrcpt rc k pids sk
	p="$sys.$mode.c$c.r$r"
	nrcpt=$((MESSAGES * r))
	dir="$TMP/$p"
	log="$dir/maillog"
	port=$(free_port)
	mkdir -p "$dir"
	chmod 755 "$dir"
	if [ "$sys" = tern ]; then
		tern_start "$dir" "$port" "$c"
		inject_port=$TERN_PORT
		flush=("$TERN_BUILD/bin/ternctl" -c "$dir/tern.conf" queue flush ALL)
	else
		pfx_start "$dir" "$port" "$c"
		inject_port=$PFX_PORT
		flush=(postqueue -c "$dir/etc" -f)
	fi
	res "$p.messages=$MESSAGES" "$p.rcpts=$r" "$p.concurrency=$c"
	off=$(log_size "$log")
	if [ "$mode" = live ]; then
		sink_start "$port" "$dir/sink.out"
		snapshot "$sys" "$p.before"
		waiter "$log" "$off" "$sys" "$nrcpt" "$port" "$dir/wait.out"
	fi
	t0=$(now_ns)
	inject "$inject_port" "$r" "$dir/inject.out"
	wait "$CLIENT_PID"
	rc=$?
	CLIENT_PID=""
	t1=$(now_ns)
	[ $rc -eq 0 ] || { tail -5 "$dir/inject.out" >&2; die "$p: smtp-source failed (exit $rc)"; }
	res "$p.t0_ns=$t0" "$p.inject_end_ns=$t1"
	if [ "$mode" = backlog ]; then
		out=$("$PY" "$OMON" count "$log" "$off" "status=deferred" "$nrcpt" 120) ||
			die "$p: not every recipient was deferred with the sink down: $out"
		td=$(now_ns)
		res "$p.deferred_ns=$td"
		note "$sys $mode c$c r$r: $MESSAGES messages queued in $(((t1 - t0) / 1000000)) ms, all deferred after $(((td - t0) / 1000000)) ms; flushing"
		sleep 1
		off=$(log_size "$log")
		sink_start "$port" "$dir/sink.out"
		snapshot "$sys" "$p.before"
		waiter "$log" "$off" "$sys" "$nrcpt" "$port" "$dir/wait.out"
		tf=$(now_ns)
		res "$p.flush_ns=$tf"
		timeout 60 "${flush[@]}" >"$dir/flush.out" 2>&1 ||
			{ cat "$dir/flush.out" >&2; die "$p: ${flush[*]} failed"; }
	fi
	wait "$WAITER_PID"
	rc=$?
	WAITER_PID=""
	out=$(cat "$dir/wait.out")
	prefixed "$p.wait" "$(grep '^[a-z_]*=' "$dir/wait.out")"
	[ $rc -eq 0 ] || say "bench: $p: $(grep '^omon:' "$dir/wait.out")"
	snapshot "$sys" "$p.after"
	for k in agent qmgr system sink; do
		res "$p.$k.cpu_us=$(delta "$p" $k cpu_us)" "$p.$k.user_us=$(delta "$p" $k user_us)"
	done
	if [ "$sys" = tern ]; then
		res "$p.agent.hwm_kb=$(sed -n "s/^$p\.after\.agent\.hwm_kb=//p" "$RESULTS" | tail -1)" \
			"$p.agent.processes=1"
		kill -0 "$AGENT_PID" 2>/dev/null || say "bench: WARNING: $p: the smtp agent $AGENT_PID is gone"
	else
		pids=$(tail -c +"$((off + 1))" "$log" | grep -o 'postfix/smtp\[[0-9]*\]' | sort -u | wc -l)
		res "$p.agent.hwm_kb=$(val agent_peak_hwm_kb "$out")" "$p.agent.processes=$pids" \
			"$p.agent.pss_sum_kb=$(val agent_peak_pss_sum_kb "$out")"
	fi
	grep -E 'panic|fatal|FATAL|error' "$log" | grep -v 'status=' | head -3 >&2
	if [ "$sys" = tern ]; then
		tern_stop || say "bench: WARNING: $p: ternd exited $? on SIGTERM"
	else
		postfix_stop "$dir"
		PFX=""
	fi
	sk=$(sink_count "$dir/sink.out" "$port" "$MESSAGES")
	sink_stop
	prefixed "$p.sink" "$sk"
	res "$p.sink.probe_sessions=1"	# sink_start's greeting probe
	note "$sys $mode c$c r$r: sent $(val sent "$out") (deferred $(val deferred "$out"), bounced $(val bounced "$out")), removed $(val removed "$out"); last sent $((($(val last_sent_ns "$out") - ${tf:-$t0}) / 1000000)) ms after the $([ "$mode" = live ] && echo first injection || echo flush) (injection took $(((t1 - t0) / 1000000)) ms); agent CPU $(($(delta "$p" agent cpu_us) / MESSAGES)) us/msg, qmgr $(($(delta "$p" qmgr cpu_us) / MESSAGES)) us/msg, system $(($(delta "$p" system cpu_us) / MESSAGES)) us/msg; sink: $(val messages "$sk") messages, $(($(val sessions "$sk") - 1)) connections, peak $(val sink_peak_connections "$out") at once"
	# keep the logs of the run for a post-mortem (BENCH_KEEP), drop the spools
	rm -rf "$dir/spool"
}

# The cases: live with the first C and each R, backlog with each C and the
# first R (live is bounded by Postfix's smtpd: its concurrency figures say
# little). BENCH_CASES="MODE:C:R ..." instead.
CASES=()
if [ -n "$CASE_LIST" ]; then
	for cs in $CASE_LIST; do
		IFS=: read -r mode c r <<<"$cs"
		case "$mode" in live | backlog) ;; *) die "BENCH_CASES: bad case $cs" ;; esac
		case "$c$r" in '' | *[!0-9]*) die "BENCH_CASES: bad case $cs" ;; esac
		CASES+=("$mode $c $r")
	done
else
	for mode in $MODES; do
		for c in $CONCURRENCY; do
			for r in $RCPTS; do
				if [ "$mode" = live ]; then
					[ "$c" = "$FIRST_C" ] || continue
				else
					[ "$r" = "$FIRST_R" ] || continue
				fi
				CASES+=("$mode $c $r")
			done
		done
	done
fi
res "cases=$(printf '%s\n' "${CASES[@]}" | tr ' ' : | tr '\n' ' ')"
for cs in "${CASES[@]}"; do
	for sys in $SYSTEMS; do
		has "$sys" || continue
		note "$sys: case $cs"
		# shellcheck disable=SC2086
		run_case "$sys" $cs
	done
done

# ---- report -------------------------------------------------------------------

res "run_seconds=$(($(date +%s) - T_START))" "load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$BENCH/results"
OUT="$BENCH/results/outbound-$(date +%Y%m%d-%H%M%S).txt"
note "done"
"$PY" "$OMON" report "$RESULTS" "$OUT"
rc=$?
say "results: $OUT"
[ $rc -eq 2 ] && say "bench: MISMATCH: not every message reached the sink exactly once (see the summary)"
[ $rc -le 2 ] || die "report failed"
exit $rc
