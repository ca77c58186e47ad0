#!/bin/bash
# bench/sendmail: 2,000 sequential `sendmail -t -i` invocations (the PHP
# mail() pattern: one process per message, one message on stdin) against
# tern's sendmail and against Postfix's sendmail in the same run (issue 7).
#
# Run as root: `bench/sendmail/run.sh` (tern from ./build or TERN_BUILD=DIR;
# use an optimised build). For each system: a fresh instance (a ternd, or
# a private Postfix from lib.sh) relaying everything to its own fresh
# smtp-sink on 127.0.0.1; then drive.py runs the N invocations one after
# the other, as root, each with a ~300-byte message (To, Subject, a few
# headers, five body lines). Measured:
#   - invocations/s: N / the wall time of the N invocations (what the PHP
#     page waits for: each sendmail returns once the message is durably
#     queued: tern's after smtpd's 250, Postfix's once postdrop has
#     written and fsync'd its maildrop file);
#   - end-to-end seconds until the sink has counted all N messages;
#   - a check: every invocation exited 0 and the sink counted exactly N
#     messages (else the script says so and exits 2).
# Then the ratio tern/Postfix of invocations/s and issue 7's target
# (tern >= 2x Postfix). Rounds alternate the order (tern first in round 1).
#
# Writes bench/results/sendmail-DATE.txt (key = value lines and a summary)
# and prints it. Knobs: BENCH_MESSAGES (2000), BENCH_REPEAT (1),
# TERN_BUILD, BENCH_KEEP=1 (keep the temporary directory). Everything
# started is stopped and removed on exit.
set -u
set -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=$(cd "$HERE/.." && pwd)
SRC=$(cd "$BENCH/.." && pwd)
PY=/usr/bin/python3
OMON="$BENCH/outbound/omon.py"
TERN_BUILD=${TERN_BUILD:-$SRC/build}
N=${BENCH_MESSAGES:-2000}
REPEAT=${BENCH_REPEAT:-1}
KEEP=${BENCH_KEEP:-0}

. "$BENCH/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (private Postfix, smtp-sink -u)"
for p in /usr/sbin/smtp-sink /usr/sbin/sendmail /usr/sbin/postfix "$PY" "$OMON" \
	"$TERN_BUILD/bin/ternd" "$TERN_BUILD/bin/sendmail"; do
	[ -x "$p" ] || [ -r "$p" ] || die "$p is missing (scripts/install-deps.sh --with-peers; build tern)"
done
id tern >/dev/null 2>&1 || die "no tern user (mail_owner)"
for x in $N $REPEAT; do case $x in '' | *[!0-9]*) die "not a number: $x" ;; esac; done

TMP=$(mktemp -d /var/tmp/tern-bench-sendmail.XXXXXX) || die "mktemp"
chmod 755 "$TMP"
SINK_PID="" TERN_PID="" PFX=""

stop_all() {
	[ -n "$TERN_PID" ] && { kill -TERM "$TERN_PID" 2>/dev/null; wait_exit "$TERN_PID" 30 || kill -9 $(tree_pids "$TERN_PID") 2>/dev/null; }
	TERN_PID=""
	[ -n "$PFX" ] && postfix_stop "$PFX"
	PFX=""
	[ -n "$SINK_PID" ] && { kill -TERM "$SINK_PID" 2>/dev/null; wait_exit "$SINK_PID" 10 || kill -9 "$SINK_PID" 2>/dev/null; }
	SINK_PID=""
}
cleanup() {
	local rc=$?
	trap - EXIT
	trap '' INT TERM
	stop_all
	cgroup_teardown
	if [ "$KEEP" = 1 ]; then say "bench: kept $TMP"; else rm -rf "$TMP"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cgroup_setup || say "bench: no cgroup v2: running without CPU groups"

T0=$(date +%s)
note() { say "[$(($(date +%s) - T0))s] $*"; }
val() { sed -n "s/^$1 = //p; s/^$1=//p" <<<"$2" | head -1; }

# sink_start DIR: a fresh smtp-sink; sets SINK_PORT, SINK_OUT.
sink_start() {
	SINK_PORT=$(free_port)
	SINK_OUT="$1/sink.out"
	run_in_cgroup client smtp-sink -c -u postfix -h sink.test "127.0.0.1:$SINK_PORT" 256 >"$SINK_OUT" 2>&1
	SINK_PID=$RUN_PID
	wait_greeting "$SINK_PORT" 15 || die "smtp-sink gave no greeting: $(cat "$SINK_OUT")"
}

# sink_wait N SECONDS: the messages the sink counted once it has N (or
# the time is up).
sink_wait() {
	local got=0 i
	for i in $(seq $(($2 * 10))); do
		got=$(val messages "$("$PY" "$OMON" sink "$SINK_OUT")")
		[ "${got:-0}" -ge "$1" ] && break
		sleep 0.1
	done
	echo "${got:-0}"
}

tern_start() {
	local dir=$1
	mkdir -p "$dir"
	chmod 755 "$dir"
	cat >"$dir/tern.conf" <<EOC
queue_directory = $dir/spool
log_file = $dir/maillog
smtpd_listen = 127.0.0.1:$(free_port)
submission_listen = 127.0.0.1:$(free_port)
mail_owner = tern
myhostname = tern.bench.test
mydestination = localhost
relayhost = [127.0.0.1]:$SINK_PORT
EOC
	"$TERN_BUILD/bin/ternd" -n -c "$dir/tern.conf" >"$dir/check.out" 2>&1 ||
		die "ternd -n rejects the bench config: $(cat "$dir/check.out")"
	run_in_cgroup tern "$TERN_BUILD/bin/ternd" -f -c "$dir/tern.conf" >>"$dir/ternd.out" 2>&1
	TERN_PID=$RUN_PID
	for _ in $(seq 100); do
		[ -S "$dir/spool/public/sendmail" ] && [ -S "$dir/spool/private/qmgr" ] && break
		sleep 0.1
	done
	[ -S "$dir/spool/public/sendmail" ] || die "tern: no public/sendmail socket"
}

pfx_start() {
	local dir=$1 port
	port=$(free_port)
	postfix_setup "$dir" "$port" || die "postfix setup failed"
	postconf -c "$dir/etc" -e 'smtpd_data_restrictions =' "relayhost = [127.0.0.1]:$SINK_PORT" \
		'myorigin = postfix.bench.test' || die "postconf failed"
	postfix -c "$dir/etc" check >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; die "postfix check"; }
	postfix_start "$dir" "$port" || die "postfix did not start"
	PFX=$dir
}

# one SYSTEM ROUND: start, drive N invocations, count at the sink, stop.
RESULTS="$TMP/results.txt"
: >"$RESULTS"
one() {
	local sys=$1 round=$2 dir="$TMP/$1-r$2" out got cpu0 cpu1 e2e t1
	mkdir -p "$dir"
	chmod 755 "$dir"
	sink_start "$dir"
	if [ "$sys" = tern ]; then
		tern_start "$dir"
		set -- "$TERN_BUILD/bin/sendmail" -C "$dir/tern.conf" -t -i
	else
		pfx_start "$dir"
		set -- /usr/sbin/sendmail -C "$dir/etc" -t -i
	fi
	note "$sys round $round: $N invocations of $*"
	cpu0=$([ -n "$BENCH_CGROUP_ROOT" ] && cgroup_cpu_usec "$sys" || echo 0)
	t1=$(date +%s.%N)
	"$PY" "$HERE/drive.py" "$N" "$dir/drive.txt" "$@" || die "drive.py failed"
	got=$(sink_wait "$N" 300)
	e2e=$(echo "$(date +%s.%N) - $t1" | bc)
	cpu1=$([ -n "$BENCH_CGROUP_ROOT" ] && cgroup_cpu_usec "$sys" || echo 0)
	out=$(cat "$dir/drive.txt")
	{
		echo "${sys}_r${round}_per_second = $(val per_second "$out")"
		echo "${sys}_r${round}_ms_each = $(val ms_each "$out")"
		echo "${sys}_r${round}_failures = $(val failures "$out")"
		echo "${sys}_r${round}_sink_messages = $got"
		echo "${sys}_r${round}_end_to_end_s = $e2e"
		echo "${sys}_r${round}_daemon_cpu_ms_per_msg = $(echo "scale=3; ($cpu1 - $cpu0) / 1000 / $N" | bc)"
	} >>"$RESULTS"
	note "$sys round $round: $(val per_second "$out") invocations/s, failures $(val failures "$out"), sink $got/$N, end to end ${e2e}s"
	[ "$(val failures "$out")" = 0 ] || say "bench: $sys: $(val first_failure "$out")"
	stop_all
}

for r in $(seq "$REPEAT"); do
	if [ $((r % 2)) = 1 ]; then one tern "$r"; one postfix "$r"; else one postfix "$r"; one tern "$r"; fi
done

mkdir -p "$BENCH/results"
OUTFILE="$BENCH/results/sendmail-$(date +%Y%m%d-%H%M%S).txt"
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
R=$(cat "$RESULTS")
T=$(sed -n 's/^tern_r[0-9]*_per_second = //p' <<<"$R" | median)
P=$(sed -n 's/^postfix_r[0-9]*_per_second = //p' <<<"$R" | median)
RATIO=$(echo "scale=2; $T / $P" | bc)
BAD=0
grep -Eq '_failures = [1-9]' <<<"$R" && BAD=1
for s in $(sed -n 's/^.*_sink_messages = //p' <<<"$R"); do [ "$s" = "$N" ] || BAD=1; done
{
	echo "date = $(date +%Y-%m-%dT%H:%M:%S%z)"
	echo "machine = $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "invocations = $N sequential, as root, ~300-byte message each"
	echo "postfix = $(postconf -dh mail_version)"
	cat "$RESULTS"
	echo "# Summary"
	echo "tern_per_second_median = $T"
	echo "postfix_per_second_median = $P"
	echo "ratio_tern_postfix = $RATIO"
	echo "target_2x = $(echo "$RATIO >= 2" | bc | sed 's/1/met/; s/0/missed/')"
	echo "counts_ok = $([ $BAD = 0 ] && echo yes || echo NO)"
} | tee "$OUTFILE"
[ $BAD = 0 ] || exit 2
