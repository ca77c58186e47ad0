#!/bin/bash
# bench/queue: tern's queue manager with a big queue, next to Postfix (issue 3).
#
# Run as root: `bench/queue/run.sh` (the build in ./build, or TERN_BUILD=DIR;
# use an optimised build). Issue 3's targets: with 100,000 messages in the
# queue for 1,000 destinations, qmgr starts in under 2 s, uses under 300
# bytes per queued recipient, and schedules a message at a cost that does
# not depend on the queue's size.
#
# tern (a private ternd under a temporary directory in /var/tmp, ports on
# 127.0.0.1, default_transport = retry, local_transport = discard,
# minimal_backoff_time = maximal_backoff_time = 3600s):
#   1. starts on an empty spool: qmgr's start-up and resident memory
#      (VmRSS, and its anonymous and file-backed parts) with nothing queued;
#   2. schedules BENCH_SCHED (20,000) messages to user@localhost (discard:
#      delivered and removed by qmgr itself), sent by smtp-source over 20
#      sessions; qmgr's CPU time (utime+stime, and each apart) from before
#      the first message to the last "removed" line, per message: the cost
#      with an empty queue (BENCH_REPEAT times; the median counts). Most of
#      it is system time: qmgr commits to LMDB about once per message at this
#      arrival rate, and the kernel's share of a commit depends on the disk;
#      utime is the schedule's own work;
#   3. fills the queue: BENCH_MESSAGES (100,000) one-recipient messages, to
#      rcpt@d0.test .. rcpt@d999.test (BENCH_DOMAINS), which the retry
#      transport defers for an hour, in 10 chunks; qmgr's CPU per deferred
#      message is recorded per chunk (does it grow as the queue grows?);
#   4. restarts ternd BENCH_REPEAT (3) times: qmgr's "queue loaded ... in X
#      ms", the wall-clock time from qmgr's start and from ternd's exec (the
#      master's spool recovery included) to that line, and, one second later,
#      qmgr's CPU time and memory. Memory per queued recipient is (RSS with
#      the queue - RSS on the empty spool) / messages, from the medians;
#   5. step 2 again with the 100,000 deferred messages in the queue, and
#      the ratios of the medians (1 = independent of queue size), for the
#      total and for user time alone;
#   6. times `ternctl queue` (and --json) listing the 100,000 messages;
#   7. a queue run: `ternctl queue flush ALL` makes the 100,000 messages due
#      at once; qmgr's CPU and the wall-clock time until the first
#      BENCH_QRUN (20,000, qmgr_message_active_limit) are deferred again,
#      then until all are, qmgr's peak memory (VmHWM) meanwhile, and how
#      long ternctl waited for its answer. Then ternd is stopped.
# Postfix (a private instance, lib.sh's, with the same transports and
# backoff; smtpd_reject_unlisted_recipient = no, else its smtpd refuses
# mail whose transport is retry): the same steps where they mean the same
# thing: qmgr's VmRSS on an empty queue and with the 100,000 messages in its
# deferred queue after a restart (Postfix keeps deferred mail on disk), the
# CPU its qmgr spends on its start-up scan, its qmgr CPU per scheduled
# message empty and queued (one run each: a run takes Postfix 30 s),
# `postqueue -p` against `ternctl queue`, and the queue run (`postqueue -f`;
# Postfix's qmgr only dispatches: its retry agents and bounce daemon do the
# rest). Start-up time and memory per recipient are not compared by ratio:
# Postfix's qmgr loads no deferred mail (it re-reads the deferred queue
# every queue_run_delay instead).
#
# Page cache is left warm (no drop_caches: it is not ours to drop), so the
# start-up figures are those of a restart, not of a cold boot.
#
# Writes bench/results/queue-DATE.txt (key = value lines, then a summary)
# and prints it. Takes about 11 minutes on 2 cores (Postfix's fill is the
# longest part: about 4 minutes at 420 messages/s).
#
# Knobs (environment): BENCH_MESSAGES (100000), BENCH_DOMAINS (1000),
# BENCH_SCHED (20000), BENCH_QRUN (20000), BENCH_REPEAT (3), BENCH_SIZE
# (200 bytes of body), BENCH_SYSTEMS ("tern postfix"), BENCH_TIME_LIMIT
# (1800 s: the whole run is stopped after that). Everything started is
# stopped and removed on exit, whatever happens.
set -u
set -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=$(cd "$HERE/.." && pwd)
SRC=$(cd "$BENCH/.." && pwd)
TERN_BUILD=${TERN_BUILD:-$SRC/build}
MESSAGES=${BENCH_MESSAGES:-100000}
DOMAINS=${BENCH_DOMAINS:-1000}
SCHED=${BENCH_SCHED:-20000}
QRUN=${BENCH_QRUN:-20000}
REPEAT=${BENCH_REPEAT:-3}
SIZE=${BENCH_SIZE:-200}
SYSTEMS=${BENCH_SYSTEMS:-tern postfix}
TIME_LIMIT=${BENCH_TIME_LIMIT:-1800}
CHUNKS=10		# the fill, in this many parts
FILL_PAR=10		# smtp-source processes at once while filling (2 sessions each)
SCHED_SESSIONS=20
SETTLE=1		# seconds between "queue loaded" and reading qmgr's memory
PY=/usr/bin/python3
QMON="$HERE/qmon.py"
HZ=$(getconf CLK_TCK)

. "$BENCH/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (private Postfix, mail_owner)"
for p in /usr/sbin/smtp-source "$PY" "$QMON"; do
	[ -e "$p" ] || die "$p is missing (apt-get install postfix python3)"
done
has() { case " $SYSTEMS " in *" $1 "*) return 0 ;; esac; return 1; }
[ $((MESSAGES % DOMAINS)) -eq 0 ] || die "BENCH_MESSAGES must be a multiple of BENCH_DOMAINS"
[ $((DOMAINS % CHUNKS)) -eq 0 ] || die "BENCH_DOMAINS must be a multiple of $CHUNKS"
PER_DOMAIN=$((MESSAGES / DOMAINS))
[ "$QRUN" -le "$MESSAGES" ] || QRUN=$MESSAGES
if has postfix; then
	command -v postfix >/dev/null || die "postfix is missing (apt-get install postfix)"
	id postfix >/dev/null 2>&1 || die "no postfix user"
fi
if has tern; then
	[ -x "$TERN_BUILD/bin/ternd" ] || die "$TERN_BUILD/bin/ternd not built"
	id tern >/dev/null 2>&1 ||
		useradd --system --user-group --no-create-home --shell /usr/sbin/nologin tern ||
		die "cannot create user tern"
fi

TMP=$(mktemp -d /var/tmp/tern-bench-queue.XXXXXX) || die "mktemp"
chmod 755 "$TMP"
RESULTS="$TMP/results.txt"	# key=value lines; qmon.py report turns them into the result
: >"$RESULTS"
PFX="$TMP/postfix"
TRN="$TMP/tern"
TERN_PID=""
CLIENT_PID=""	# the load running now (smtp-source), if any
WATCHDOG=""

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$WATCHDOG" ] && kill $(tree_pids "$WATCHDOG") 2>/dev/null
	[ -n "$CLIENT_PID" ] && kill -9 $(tree_pids "$CLIENT_PID") 2>/dev/null
	if [ -d "$PFX/etc" ]; then postfix_stop "$PFX"; fi
	if [ -n "$TERN_PID" ] && kill -0 "$TERN_PID" 2>/dev/null; then
		kill -TERM "$TERN_PID"
		wait_exit "$TERN_PID" 30 || kill -9 $(tree_pids "$TERN_PID") 2>/dev/null
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A last resort: the whole run is bounded.
(sleep "$TIME_LIMIT" && say "bench: time limit of $TIME_LIMIT s reached; stopping" &&
	kill -TERM $$) 2>/dev/null &
WATCHDOG=$!

T_START=$(date +%s)
note() { say "[$(($(date +%s) - T_START))s] $*"; }
res() { printf '%s\n' "$@" >>"$RESULTS"; }
# prefixed PREFIX TEXT: TEXT's key=value lines, keys prefixed, into the results.
prefixed() { printf '%s\n' "$2" | sed "s/^/$1./" >>"$RESULTS"; }
val() { printf '%s\n' "$2" | sed -n "s/^$1=//p" | tail -1; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }
# cpu_us PID: utime+stime of one process (all its threads), microseconds.
cpu_us() {
	local t
	t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$t" ] && echo $((t * 1000000 / HZ))
}
# cpu_split PID: "utime stime ctxsw": user and system CPU (microseconds) and
# voluntary context switches (about one per LMDB commit, for qmgr) so far.
cpu_split() {
	local u s v
	read -r u s < <(awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$1/stat" 2>/dev/null) || return 1
	v=$(awk '$1 == "voluntary_ctxt_switches:" { print $2 }' "/proc/$1/status" 2>/dev/null)
	[ -n "$u" ] && [ -n "$v" ] && echo "$((u * 1000000 / HZ)) $((s * 1000000 / HZ)) $v"
}

res "date=$(date +%Y-%m-%dT%H:%M:%S%z)" "host=$(hostname)" "kernel=$(uname -r)" \
	"cpus=$(nproc)" "load_before=$(cut -d' ' -f1-3 /proc/loadavg)" "messages=$MESSAGES" \
	"domains=$DOMAINS" "sched_messages=$SCHED" "qrun_messages=$QRUN" "repeat=$REPEAT" "message_bytes=$SIZE"
note "bench/queue: $MESSAGES messages over $DOMAINS domains, $SCHED scheduled, systems: $SYSTEMS"
case $(cut -d' ' -f1 /proc/loadavg) in
0.* | 1.0* | 1.1* | 1.2*) ;;
*) say "bench: WARNING: load average $(cut -d' ' -f1-3 /proc/loadavg) before the run; other work on this machine skews the figures" ;;
esac

# ---- loads (smtp-source) ----------------------------------------------------

# fill_chunk PORT FIRST LAST: PER_DOMAIN messages to each of rcpt@dFIRST.test
# .. rcpt@dLAST.test, FILL_PAR smtp-source processes at once (2 sessions
# each, several messages per connection). In the background, bounded.
fill_chunk() {
	local port=$1 first=$2 last=$3
	run_in_cgroup client bash -c "seq $first $last | xargs -P $FILL_PAR -I{} \
		timeout 300 smtp-source -s 2 -d -m $PER_DOMAIN -l $SIZE -f sender@bench.test \
		-t rcpt@d{}.test 127.0.0.1:$port" >"$TMP/fill.out" 2>&1
	CLIENT_PID=$RUN_PID
	wait "$RUN_PID" || { tail -5 "$TMP/fill.out" >&2; return 1; }
	CLIENT_PID=""
}

# fill SYSTEM PORT LOG QMGR_PID: the whole fill, chunk by chunk; each chunk
# waits for its deferrals ("status=deferred" lines) before the next starts.
# For tern, qmgr's CPU per chunk goes into the results.
fill() {
	local sys=$1 port=$2 log=$3 qmgr=$4 c first last off c0 c1 out t0 n
	local per_chunk=$((DOMAINS / CHUNKS))
	t0=$(date +%s%N)
	for c in $(seq 0 $((CHUNKS - 1))); do
		first=$((c * per_chunk))
		last=$((first + per_chunk - 1))
		n=$((per_chunk * PER_DOMAIN))
		off=$(log_size "$log")
		c0=$(cpu_us "$qmgr") || die "$sys: qmgr $qmgr is gone"
		fill_chunk "$port" "$first" "$last" || die "$sys: smtp-source failed while filling"
		out=$("$PY" "$QMON" count "$log" "$off" "status=deferred" "$n" 300) ||
			die "$sys: deferrals missing after chunk $c: $out"
		c1=$(cpu_us "$qmgr") || die "$sys: qmgr $qmgr died while filling"
		[ "$sys" = tern ] && res "tern.fill.chunk=$(((c + 1) * n)) $n $((c1 - c0))"
		note "$sys: fill $((c + 1))/$CHUNKS: $(((c + 1) * n)) deferred, qmgr CPU $(((c1 - c0) / n)) us/msg"
	done
	res "$sys.fill.seconds=$(awk -v ns="$(($(date +%s%N) - t0))" 'BEGIN { printf "%.1f", ns / 1e9 }')"
}

# qrun SYSTEM LOG QMGR_PID CMD...: a queue run. CMD (ternctl queue flush
# ALL, postqueue -f) makes every deferred message due now; qmgr's CPU and
# the wall-clock time until the first QRUN of them are deferred again (one
# qmgr_message_active_limit's worth), then until all of them are, and qmgr's
# memory before and after (VmHWM: its peak). CMD runs in the background: its
# exit status and how long it took to answer are recorded too.
qrun() {
	local sys=$1 log=$2 qmgr=$3 off c0 c1 c2 out t0 t1 t2 hwm cmdres
	shift 3
	prefixed "$sys.qrun.before" "$("$PY" "$QMON" proc "$qmgr")" || die "$sys: no qmgr $qmgr"
	off=$(log_size "$log")
	c0=$(cpu_us "$qmgr")
	t0=$(date +%s%N)
	run_in_cgroup client bash -c 's=$(date +%s%N); out=$1; shift; timeout 120 "$@" >"$out" 2>&1;
		echo "cmd_rc=$? cmd_ms=$((($(date +%s%N) - s) / 1000000))" >>"$out"' \
		qrun "$TMP/qrun.out" "$@" >/dev/null 2>&1
	CLIENT_PID=$RUN_PID
	out=$("$PY" "$QMON" count "$log" "$off" "status=deferred" "$QRUN" 600) ||
		die "$sys: queue run: $out"
	c1=$(cpu_us "$qmgr") || die "$sys: qmgr $qmgr died in the queue run"
	t1=$(date +%s%N)
	out=$("$PY" "$QMON" count "$log" "$off" "status=deferred" "$MESSAGES" 600) ||
		die "$sys: queue run: $out"
	c2=$(cpu_us "$qmgr") || die "$sys: qmgr $qmgr died in the queue run"
	t2=$(date +%s%N)
	hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$qmgr/status")
	wait "$CLIENT_PID"
	CLIENT_PID=""
	cmdres=$(tail -1 "$TMP/qrun.out")
	res "$sys.qrun.first.cpu_us=$((c1 - c0))" "$sys.qrun.first.ms=$(((t1 - t0) / 1000000))" \
		"$sys.qrun.all.cpu_us=$((c2 - c0))" "$sys.qrun.all.ms=$(((t2 - t0) / 1000000))" \
		"$sys.qrun.hwm_kb=$hwm" "$sys.qrun.${cmdres%% *}" "$sys.qrun.${cmdres##* }"
	prefixed "$sys.qrun.after" "$("$PY" "$QMON" proc "$qmgr")"
	note "$sys: queue run: $* -> $(head -1 "$TMP/qrun.out") ($cmdres); first $QRUN deferred again in $(((t1 - t0) / 1000000)) ms, qmgr CPU $(((c1 - c0) / QRUN)) us/msg; all $MESSAGES in $(((t2 - t0) / 1000000)) ms, qmgr CPU $(((c2 - c0) / MESSAGES)) us/msg; qmgr VmHWM $hwm kB"
}

# sched SYSTEM COND PORT LOG QMGR_PID: SCHED messages to user@localhost
# (discarded); qmgr's CPU (user and system apart) and voluntary context
# switches from before the first message to the last "removed" line.
sched() {
	local sys=$1 cond=$2 port=$3 log=$4 qmgr=$5 off a b out t0 u s v
	off=$(log_size "$log")
	a=$(cpu_split "$qmgr") || die "$sys: no qmgr $qmgr"
	t0=$(date +%s%N)
	run_in_cgroup client timeout 600 smtp-source -s "$SCHED_SESSIONS" -d -m "$SCHED" -l "$SIZE" \
		-f sender@bench.test -t user@localhost "127.0.0.1:$port" >"$TMP/sched.out" 2>&1
	CLIENT_PID=$RUN_PID
	wait "$RUN_PID" || { tail -5 "$TMP/sched.out" >&2; die "$sys: smtp-source failed (sched $cond)"; }
	CLIENT_PID=""
	out=$("$PY" "$QMON" count "$log" "$off" ": removed" "$SCHED" 300) ||
		die "$sys: not every scheduled message was removed: $out"
	b=$(cpu_split "$qmgr") || die "$sys: qmgr $qmgr died while scheduling"
	read -r u s v <<<"$(echo "$a $b" | awk '{ print $4 - $1, $5 - $2, $6 - $3 }')"
	res "$sys.sched.$cond.cpu_us=$((u + s))" "$sys.sched.$cond.user_us=$u" \
		"$sys.sched.$cond.sys_us=$s" "$sys.sched.$cond.ctxsw=$v" \
		"$sys.sched.$cond.seconds=$(awk -v ns="$(($(date +%s%N) - t0))" 'BEGIN { printf "%.2f", ns / 1e9 }')"
	note "$sys: $SCHED messages scheduled ($cond queue): qmgr CPU $(((u + s) / SCHED)) us/msg (user $((u / SCHED)), system $((s / SCHED))), $(awk -v v="$v" -v n="$SCHED" 'BEGIN { printf "%.2f", v / n }') context switches/msg"
}

# ---- tern -------------------------------------------------------------------

# tern_start PREFIX: start ternd, wait for qmgr's "queue loaded" line and
# record start-up times, CPU and memory under PREFIX; sets TERN_PID, QMGR_PID.
tern_start() {
	local off t0 out
	off=$(log_size "$TRN/maillog")
	t0=$(date +%s%N)
	run_in_cgroup tern "$TERN_BUILD/bin/ternd" -f -c "$TRN/tern.conf" >>"$TRN/ternd.out" 2>&1
	TERN_PID=$RUN_PID
	out=$("$PY" "$QMON" startup "$TRN/maillog" "$off" "$t0" 120 "$SETTLE") ||
		{ tail -20 "$TRN/ternd.out" >&2; die "tern did not start: $out"; }
	QMGR_PID=$(val qmgr_pid "$out")
	wait_greeting "$TERN_PORT" 30 || die "tern: no greeting on port $TERN_PORT"
	prefixed "$1" "$out"
	note "tern: qmgr $QMGR_PID loaded $(val messages "$out") messages, $(val destinations "$out") destinations in $(val load_ms "$out") ms (log), $(val qmgr_wall_ms "$out") ms from qmgr's start, $(val daemon_wall_ms "$out") ms from ternd's exec; VmRSS $(val rss_kb "$out") kB (anon $(val anon_kb "$out"), file $(val file_kb "$out"))"
}

tern_stop() {
	local rc
	kill -TERM "$TERN_PID"
	wait_exit "$TERN_PID" 60 || die "tern: master did not exit within 60 s of SIGTERM"
	wait "$TERN_PID"
	rc=$?
	TERN_PID=""
	[ $rc -eq 0 ] || die "tern: master exited $rc after SIGTERM"
}

bench_tern() {
	local r out bt t0 i n
	TERN_PORT=$(free_port)
	mkdir -p "$TRN"
	chmod 755 "$TRN"
	cat >"$TRN/tern.conf" <<EOC
queue_directory = $TRN/spool
log_file = $TRN/maillog
smtpd_listen = 127.0.0.1:$TERN_PORT
submission_listen = 127.0.0.1:$(free_port)
mail_owner = tern
myhostname = tern.test
mydestination = localhost, tern.test
mynetworks = 127.0.0.0/8
# Mail for other domains is deferred by the built-in retry transport, one
# destination per domain (retry:DOMAIN); local mail is discarded by qmgr.
default_transport = retry
local_transport = discard
minimal_backoff_time = 3600s
maximal_backoff_time = 3600s
EOC
	"$TERN_BUILD/bin/ternd" -n -c "$TRN/tern.conf" || die "ternd -n rejects the bench config"
	bt=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$TERN_BUILD/CMakeCache.txt" 2>/dev/null)
	[ -f "$TERN_BUILD/CMakeCache.txt" ] || bt="unknown"
	res "tern_build_type=${bt:-RelWithDebInfo}" \
		"tern_commit=$(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)"
	[ -n "$(find "$SRC" -path "$SRC/build*" -prune -o \( -name '*.c' -o -name '*.h' \) \
		-newer "$TERN_BUILD/bin/ternd" -print -quit)" ] &&
		say "bench: WARNING: sources are newer than $TERN_BUILD/bin/ternd (cmake --build it first)"
	[ "$bt" = Debug ] && say "bench: WARNING: $TERN_BUILD is a Debug build; tern's figures are not representative"

	note "tern: empty spool"
	tern_start tern.empty
	res "tern_version=$(grep -m1 -o 'daemon started -- version [^,]*' "$TRN/maillog" | awk '{print $NF}')"
	for r in $(seq "$REPEAT"); do
		sched tern empty "$TERN_PORT" "$TRN/maillog" "$QMGR_PID"
	done

	note "tern: filling the queue"
	fill tern "$TERN_PORT" "$TRN/maillog" "$QMGR_PID"
	res "tern.index_kb=$(du -sk "$TRN/spool/index" | cut -f1)"

	for r in $(seq "$REPEAT"); do
		tern_stop
		tern_start tern.start
		n=$(sed -n 's/^tern.start.messages=//p' "$RESULTS" | tail -1)
		[ "$n" = "$MESSAGES" ] || die "tern: qmgr loaded $n messages, not $MESSAGES"
		n=$(sed -n 's/^tern.start.destinations=//p' "$RESULTS" | tail -1)
		[ "$n" -ge "$DOMAINS" ] || say "bench: WARNING: qmgr has $n destinations, not $DOMAINS"
	done

	for r in $(seq "$REPEAT"); do
		sched tern queued "$TERN_PORT" "$TRN/maillog" "$QMGR_PID"
	done

	n=$(timeout 120 "$TERN_BUILD/bin/ternctl" -c "$TRN/tern.conf" queue | grep -c '^[0-9A-F]\{14\}')
	[ "$n" -eq "$MESSAGES" ] || say "bench: WARNING: ternctl queue lists $n messages, not $MESSAGES"
	for i in $(seq "$REPEAT"); do
		t0=$(date +%s%N)
		timeout 120 "$TERN_BUILD/bin/ternctl" -c "$TRN/tern.conf" queue >/dev/null ||
			die "ternctl queue failed"
		res "tern.list.text_ms=$(ms_since "$t0")"
		t0=$(date +%s%N)
		timeout 120 "$TERN_BUILD/bin/ternctl" -c "$TRN/tern.conf" queue --json >/dev/null ||
			die "ternctl queue --json failed"
		res "tern.list.json_ms=$(ms_since "$t0")"
	done
	note "tern: ternctl queue lists $n messages in $(sed -n 's/^tern.list.text_ms=//p' "$RESULTS" | tr '\n' ' ')ms"
	qrun tern "$TRN/maillog" "$QMGR_PID" "$TERN_BUILD/bin/ternctl" -c "$TRN/tern.conf" queue flush ALL
	grep -E 'panic|fatal|error' "$TRN/maillog" | head -5 >&2
	tern_stop
}

# ---- Postfix ----------------------------------------------------------------

pfx_qmgr_pid() {
	local i p
	for i in $(seq 200); do
		p=$(pgrep -P "$1" -x qmgr | head -1)
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.1
	done
	return 1
}

# pfx_start PREFIX: start the instance; the time to its greeting, then its
# qmgr's start-up CPU (until it is quiet for a second) and memory.
pfx_start() {
	local t0 ms master out
	t0=$(date +%s%N)
	postfix_start "$PFX" "$PFX_PORT" || die "postfix did not start"
	ms=$(ms_since "$t0")
	master=$(postfix_master_pid "$PFX") || die "postfix: no master"
	PFX_QMGR=$(pfx_qmgr_pid "$master") || die "postfix: no qmgr under master $master"
	out=$("$PY" "$QMON" settle "$PFX_QMGR" 1 120) || die "postfix: qmgr busy: $out"
	res "$1.greeting_ms=$ms" "$1.settle_s=$(val seconds "$out")"
	prefixed "$1" "$("$PY" "$QMON" proc "$PFX_QMGR")"
	note "postfix: started in $ms ms (to the greeting); qmgr $PFX_QMGR start-up CPU $(($(val cpu_us "$out") / 1000)) ms, VmRSS $(rss_kb "$PFX_QMGR") kB"
}

bench_postfix() {
	local r n i t0 out
	PFX_PORT=$(free_port)
	postfix_setup "$PFX" "$PFX_PORT" || die "postfix setup failed"
	# lib.sh's instance holds every message; this one delivers like tern's.
	postconf -c "$PFX/etc" -e 'smtpd_data_restrictions =' 'default_transport = retry' \
		'local_transport = discard' 'minimal_backoff_time = 3600s' \
		'maximal_backoff_time = 3600s' 'smtpd_reject_unlisted_recipient = no' ||
		die "postconf failed"
	postfix -c "$PFX/etc" check >"$PFX/check.log" 2>&1 || { cat "$PFX/check.log" >&2; die "postfix check"; }
	res "postfix_version=$(postconf -c "$PFX/etc" -h mail_version)"

	note "postfix: empty queue"
	pfx_start postfix.empty
	sched postfix empty "$PFX_PORT" "$PFX/maillog" "$PFX_QMGR"

	note "postfix: filling the queue"
	fill postfix "$PFX_PORT" "$PFX/maillog" "$PFX_QMGR"
	for i in $(seq 300); do
		n=$(find "$PFX/spool/deferred" -type f | wc -l)
		[ "$n" -ge "$MESSAGES" ] && break
		sleep 0.2
	done
	res "postfix.deferred_files=$n"
	[ "$n" -eq "$MESSAGES" ] || say "bench: WARNING: postfix has $n deferred files, not $MESSAGES"

	for r in $(seq "$REPEAT"); do
		postfix_stop "$PFX"
		pfx_start postfix.start
	done

	sched postfix queued "$PFX_PORT" "$PFX/maillog" "$PFX_QMGR"

	n=$(timeout 120 postqueue -c "$PFX/etc" -p | grep -c '^[0-9A-F]\{6,\}')
	[ "$n" -eq "$MESSAGES" ] || say "bench: WARNING: postqueue -p lists $n messages, not $MESSAGES"
	for i in $(seq "$REPEAT"); do
		t0=$(date +%s%N)
		timeout 120 postqueue -c "$PFX/etc" -p >/dev/null || die "postqueue -p failed"
		res "postfix.list_ms=$(ms_since "$t0")"
	done
	note "postfix: postqueue -p lists $n messages in $(sed -n 's/^postfix.list_ms=//p' "$RESULTS" | tr '\n' ' ')ms"
	qrun postfix "$PFX/maillog" "$PFX_QMGR" postqueue -c "$PFX/etc" -f
	postfix_stop "$PFX"
}

has tern && bench_tern
has postfix && bench_postfix

# ---- report -----------------------------------------------------------------

mkdir -p "$BENCH/results"
OUT="$BENCH/results/queue-$(date +%Y%m%d-%H%M%S).txt"
note "done"
"$PY" "$QMON" report "$RESULTS" "$OUT" || die "report failed"
say "results: $OUT"
