#!/bin/bash
# shellcheck disable=SC2046 # lists of pids are split on purpose
# bench/lmtp: final delivery over LMTP to a real Dovecot, tern next to
# Postfix (issue 5).
#
# Run as root: `bench/lmtp/run.sh` (the build in ./build, or TERN_BUILD=DIR;
# use an optimised build: cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo).
#
#   smtp-source -> tern's smtpd -> qmgr -> tern's lmtp agent  -> Dovecot LMTP
#   smtp-source -> Postfix's smtpd -> cleanup -> qmgr -> lmtp(8) -> Dovecot LMTP
#
# Each run (case x round x system) gets a fresh private Dovecot (its own
# configuration, dovecot -F -c, LMTP on a unix socket only, a passwd-file
# userdb keyed by full address, Maildirs under the run's directory owned by
# nobody, Dovecot's defaults otherwise: mail_fsync = optimized, one lmtp
# process per connection) and a fresh private mail system:
#   - tern: ternd under the run's directory, smtpd on 127.0.0.1:PORT,
#     virtual_mailbox_domains = lmtp.test, virtual_mailbox_maps =
#     texthash:FILE (the mailboxes), virtual_transport = lmtp:unix:SOCKET;
#   - Postfix: lib.sh's private instance (its hold restriction removed) with
#     the same three settings; its lmtp(8) processes start through a
#     two-line sh wrapper that moves them into a cgroup of their own (their
#     CPU apart, as bench/outbound does for smtp(8)).
# Both: default_destination_concurrency_limit = 20 (one destination, the
# socket: up to 20 LMTP connections), backoff fixed at 3600 s, fsync left
# as each does it by default (so is Dovecot's).
#
# Injection: BENCH_SESSIONS (20) smtp-source processes at once, one session
# each (-s 1 -d: several messages per connection), process k sending to
# mailbox mK@lmtp.test: so N messages in all spread evenly over 20
# mailboxes, S bytes of body each (-l S). With R recipients per message
# (-r R) process k sends to mK, 2mK, ... RmK (smtp-source's numbering):
# 20 x R mailboxes, every message to R of them.
#
# Measured per run:
#   - messages/s (and deliveries/s = recipients): N / (the last
#     status=sent line - the start of the injection). status=sent is logged
#     on Dovecot's 250 for the recipient after the final dot, i.e. after
#     Dovecot saved the message into the Maildir;
#   - CPU per message, from cgroup v2 cpu.stat over that window: the whole
#     mail system (ternd's processes; Postfix's master, smtpd, cleanup,
#     qmgr, lmtp, trivial-rewrite, ...), its delivery agent (tern's lmtp
#     process from /proc; Postfix's lmtp processes, their cgroup), its qmgr
#     (/proc), Dovecot (every Dovecot process) and the injecting client;
#   - the check: every mailbox must hold exactly the messages sent to it
#     (files in its Maildir new/ and cur/, none left in tmp/), Dovecot's
#     log exactly N x R "saved mail to INBOX" lines, and the system's log
#     N x R status=sent (no deferral, no bounce). A mismatch is reported
#     loudly in the results and makes the script exit 2.
# The machine meanwhile (bench/relay/rmon.py sample every 0.25 s): the CPU
# the bench's cgroup used, the rest of the machine, the load average.
#
# Scheduling: with the kernel's autogroup scheduling
# (/proc/sys/kernel/sched_autogroup_enabled = 1) the CPU of the root cpu
# group is shared per session, and Postfix's master makes a session of its
# own while ternd -f and dovecot -F would stay in this script's, with the
# clients: on a machine busy with other sessions tern's pipeline then got
# one share where Postfix's got two (the bench's processes used 0.8 cores
# in tern's windows against 1.1 in Postfix's, in every round). lib.sh puts
# everything the bench starts into one cgroup v1 cpu group (where the cpu
# controller is v1's, as here), outside autogroup: both systems' processes
# are scheduled alike, and the bench as one group against the rest. The
# run says so (cpu_group) and warns when it could not.
#
# Cases: NAME:N:S[:R] (R = recipients per message, 1 by default). Default
# "1k:6000:1024 50k:2000:51200 1kx5:2000:1024:5" (6,000 x 1 KiB and 2,000 x
# 50 KiB to 20 mailboxes, 2,000 x 1 KiB x 5 recipients to 100). Within a
# round each case runs tern then Postfix, and the order flips from one round
# to the next. The report (lmon.py) gives the medians over the rounds, the
# ratios tern/Postfix (of the medians and per round) and issue 5's target
# (tern >= 1.5x Postfix's messages/s).
#
# Writes bench/results/lmtp-DATE.txt (key = value lines, then a # Summary
# with a table) and prints it. About 10 minutes on 2 cores with the
# defaults, most of it Postfix.
#
# Knobs (environment): BENCH_REPEAT (rounds, 3), BENCH_LMTP_CASES ("NAME:N:S[:R]
# ..."), BENCH_MESSAGES (if set, N for every case: a quick check),
# BENCH_SESSIONS (20: injecting sessions = mailboxes per recipient rank),
# BENCH_LMTP_CONCURRENCY (20: both systems' LMTP connections to Dovecot),
# BENCH_SYSTEMS ("tern postfix"), TERN_BUILD, BENCH_TIME_LIMIT (whole run,
# 3600 s), BENCH_KEEP=1 (keep the temporary directory: logs, Maildirs),
# BENCH_POSTFIX_CONF ("name=value ..." added to Postfix's main.cf, for
# experiments; recorded in the results). Everything started is stopped and
# removed on exit, whatever happens.
set -u
set -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=$(cd "$HERE/.." && pwd)
SRC=$(cd "$BENCH/.." && pwd)
TERN_BUILD=${TERN_BUILD:-$SRC/build}
REPEAT=${BENCH_REPEAT:-3}
CASES=${BENCH_LMTP_CASES:-1k:6000:1024 50k:2000:51200 1kx5:2000:1024:5}
SESSIONS=${BENCH_SESSIONS:-20}
SYSTEMS=${BENCH_SYSTEMS:-tern postfix}
TIME_LIMIT=${BENCH_TIME_LIMIT:-3600}
KEEP=${BENCH_KEEP:-0}
PFX_CONF=${BENCH_POSTFIX_CONF:-}
CONCURRENCY=${BENCH_LMTP_CONCURRENCY:-20}
DOMAIN=lmtp.test
INJECT_TIMEOUT=600	# the smtp-source processes, per run
DELIVER_TIMEOUT=900	# until every result, per run
STALL=60		# no new result line for this long: give up
PY=/usr/bin/python3
OMON="$BENCH/outbound/omon.py"
RMON="$BENCH/relay/rmon.py"
LMON="$HERE/lmon.py"

. "$BENCH/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (private Postfix and Dovecot, cgroups)"
for p in /usr/sbin/smtp-source /usr/sbin/dovecot "$PY" "$OMON" "$RMON" "$LMON"; do
	[ -e "$p" ] || die "$p is missing (apt-get install postfix dovecot-lmtpd python3)"
done
has() { case " $SYSTEMS " in *" $1 "*) return 0 ;; esac; return 1; }
for x in $REPEAT $SESSIONS ${BENCH_MESSAGES:-0}; do
	case $x in '' | *[!0-9]*) die "not a number: $x" ;; esac
done
[ "$SESSIONS" -ge 1 ] || die "BENCH_SESSIONS must be at least 1"
for cs in $CASES; do
	IFS=: read -r name n sz r <<<"$cs"
	case "$name" in '' | *[!a-z0-9]*) die "BENCH_LMTP_CASES: bad name in $cs" ;; esac
	case "$n$sz${r:-1}" in '' | *[!0-9]*) die "BENCH_LMTP_CASES: bad case $cs" ;; esac
	[ "${r:-1}" -ge 1 ] || die "BENCH_LMTP_CASES: no recipients in $cs"
done
for u in nobody dovecot dovenull; do
	id "$u" >/dev/null 2>&1 || die "no user $u (apt-get install dovecot-lmtpd)"
done
if has postfix; then
	command -v postfix >/dev/null || die "postfix is missing (apt-get install postfix)"
	PFX_DAEMON_DIR=$(postconf -dh daemon_directory) || die "postconf failed"
	[ -x "$PFX_DAEMON_DIR/lmtp" ] || die "no $PFX_DAEMON_DIR/lmtp"
fi
if has tern; then
	[ -x "$TERN_BUILD/bin/ternd" ] || die "$TERN_BUILD/bin/ternd not built"
	id tern >/dev/null 2>&1 ||
		useradd --system --user-group --no-create-home --shell /usr/sbin/nologin tern ||
		die "cannot create user tern"
fi

TMP=$(mktemp -d /var/tmp/tern-bench-lmtp.XXXXXX) || die "mktemp"
chmod 755 "$TMP"
RESULTS="$TMP/results.txt"
SAMPLES="$TMP/samples.txt"
: >"$RESULTS"
TERN_PID=""	# the running ternd master, if any
PFX=""		# the running Postfix instance's directory, if any
DOVECOT_PID=""
CLIENT_PIDS=()	# the smtp-source processes, while they run
WAITER_PID=""	# omon.py deliveries, if running
SAMPLER_PID=""
WATCHDOG=""
EXTRA_CG=()	# cgroups of ours beside lib.sh's

dovecot_stop() {
	[ -n "$DOVECOT_PID" ] || return 0
	kill -TERM "$DOVECOT_PID" 2>/dev/null
	if ! wait_exit "$DOVECOT_PID" 20; then
		say "bench: WARNING: dovecot $DOVECOT_PID did not exit within 20 s of SIGTERM; killing it"
		kill -9 $(tree_pids "$DOVECOT_PID") 2>/dev/null
	fi
	wait "$DOVECOT_PID" 2>/dev/null
	DOVECOT_PID=""
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
	local rc=$? g p
	trap - EXIT
	trap '' INT TERM	# a second signal must not cut the cleanup short
	[ -n "$WATCHDOG" ] && kill $(tree_pids "$WATCHDOG") 2>/dev/null
	for p in "${CLIENT_PIDS[@]}"; do kill -9 $(tree_pids "$p") 2>/dev/null; done
	[ -n "$WAITER_PID" ] && kill -9 "$WAITER_PID" 2>/dev/null
	[ -n "$SAMPLER_PID" ] && kill -TERM "$SAMPLER_PID" 2>/dev/null
	[ -n "$PFX" ] && [ -d "$PFX/etc" ] && postfix_stop "$PFX"
	tern_stop
	dovecot_stop
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

cgroup_setup || die "no writable cgroup v2 hierarchy (CPU accounting needs one)"
CG=$BENCH_CGROUP_ROOT
mkdir "$CG/dovecot" "$CG/postfix/lmtp" || die "cannot make cgroups under $CG"
EXTRA_CG=("$CG/postfix/lmtp" "$CG/dovecot")
[ -n "$BENCH_CPU_GROUP" ] || [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" != 1 ] ||
	say "bench: WARNING: no cgroup v1 cpu group and autogroup scheduling on: Postfix's master gets a CPU share of its own, ternd and Dovecot share this script's"

T_START=$(date +%s)
note() { say "[$(($(date +%s) - T_START))s] $*"; }
res() { printf '%s\n' "$@" >>"$RESULTS"; }
prefixed() { printf '%s\n' "$2" | sed "s/^/$1./" >>"$RESULTS"; }
val() { printf '%s\n' "$2" | sed -n "s/^$1=//p" | tail -1; }
log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }
now_ns() { date +%s%N; }

res "date=$(date +%Y-%m-%dT%H:%M:%S%z)" "host=$(hostname)" "kernel=$(uname -r)" \
	"cpus=$(nproc)" "load_before=$(cut -d' ' -f1-3 /proc/loadavg)" "rounds=$REPEAT" \
	"cases=$CASES${BENCH_MESSAGES:+ (messages overridden: $BENCH_MESSAGES)}" \
	"inject_sessions=$SESSIONS" "concurrency=$CONCURRENCY" \
	"dovecot_version=$(dovecot --version | cut -d' ' -f1)" \
	"sched_autogroup=$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo none)" \
	"cpu_group=${BENCH_CPU_GROUP:-none}"
note "bench/lmtp: cases $CASES; $REPEAT round(s); systems: $SYSTEMS"
case $(cut -d' ' -f1 /proc/loadavg) in
0.* | 1.0* | 1.1* | 1.2*) ;;
*) say "bench: WARNING: load average $(cut -d' ' -f1-3 /proc/loadavg) before the run; other work on this machine skews the figures" ;;
esac
if has tern; then
	bt=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$TERN_BUILD/CMakeCache.txt" 2>/dev/null)
	[ -f "$TERN_BUILD/CMakeCache.txt" ] || bt="unknown"
	res "tern_build_type=${bt:-RelWithDebInfo}" "tern_build=$TERN_BUILD" \
		"tern_commit=$(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)"
	[ -n "$(find "$SRC" -path "$SRC/build*" -prune -o \( -name '*.c' -o -name '*.h' \) \
		-newer "$TERN_BUILD/bin/ternd" -print -quit)" ] &&
		say "bench: WARNING: sources are newer than $TERN_BUILD/bin/ternd (cmake --build it first)"
	[ "$bt" = Debug ] && say "bench: WARNING: $TERN_BUILD is a Debug build; tern's figures are not representative"
fi
has postfix && res "postfix_version=$(postconf -dh mail_version)" "postfix_extra_conf=$PFX_CONF"

"$PY" "$RMON" sample "$SAMPLES" "$CG" $((TIME_LIMIT + 60)) &
SAMPLER_PID=$!

# ---- the mailboxes -----------------------------------------------------------

# mailboxes R: the addresses smtp-source's processes send to, one a line
# (process k: mK@, then 2mK@ ... RmK@ with -r R).
mailboxes() {
	local k i
	for k in $(seq "$SESSIONS"); do
		echo "m$k@$DOMAIN"
		for i in $(seq 2 "$1"); do echo "${i}m$k@$DOMAIN"; done
	done
}

# share N K: the messages smtp-source process K (1..SESSIONS) sends.
share() { echo $(($1 / SESSIONS + ($2 <= $1 % SESSIONS ? 1 : 0))); }

# ---- Dovecot -------------------------------------------------------------------

# dovecot_start DIR R: a private Dovecot in DIR (users: mailboxes R) in
# the dovecot cgroup; waits for its LMTP socket. Sets DOVECOT_PID.
dovecot_start() {
	local d=$1 uid gid a
	uid=$(id -u nobody) gid=$(id -g nobody)
	mkdir -p "$d/run" "$d/state" "$d/mail"
	chmod 755 "$d"
	chown nobody:"$gid" "$d/mail"
	cat >"$d/dovecot.conf" <<EOC
protocols = lmtp
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
info_log_path = $d/dovecot.log
ssl = no
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:$d/mail/%u
first_valid_uid = 100
passdb {
  driver = passwd-file
  args = $d/passwd
}
userdb {
  driver = passwd-file
  args = $d/passwd
}
service lmtp {
  unix_listener $d/lmtp {
    mode = 0666
  }
}
service anvil {
  chroot =
}
EOC
	for a in $(mailboxes "$2"); do
		echo "$a:{PLAIN}x:$uid:$gid::$d/mail/$a::"
	done >"$d/passwd"
	run_in_cgroup dovecot dovecot -F -c "$d/dovecot.conf" >"$d/dovecot.out" 2>&1
	DOVECOT_PID=$RUN_PID
	for _ in $(seq 100); do
		[ -S "$d/lmtp" ] && return 0
		kill -0 "$DOVECOT_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$d/dovecot.out" "$d/dovecot.log" >&2 2>/dev/null
	die "dovecot did not open $d/lmtp"
}

# maildir_check DIR N R: how many messages each mailbox holds against
# what was sent to it; prints key=value lines.
maildir_check() {
	local d=$1 n=$2 r=$3 k i a want got total=0 bad=0 tmpf saved
	for k in $(seq "$SESSIONS"); do
		want=$(share "$n" "$k")
		for i in $(seq "$r"); do
			if [ "$i" = 1 ]; then a="m$k@$DOMAIN"; else a="${i}m$k@$DOMAIN"; fi
			got=$(find "$d/mail/$a/new" "$d/mail/$a/cur" -type f 2>/dev/null | wc -l)
			total=$((total + got))
			[ "$got" = "$want" ] || { bad=$((bad + 1)); [ $bad -le 3 ] && say "bench: $a holds $got messages, $want sent"; }
		done
	done
	tmpf=$(find "$d/mail" -mindepth 3 -path "$d/mail/*/tmp/*" -type f | wc -l)
	saved=$(grep -c 'saved mail to INBOX' "$d/dovecot.log")
	printf '%s\n' "maildir_files=$total" "maildir_wrong_boxes=$bad" "maildir_tmp_files=$tmpf" \
		"dovecot_saved=$saved" "dovecot_errors=$(grep -ciE 'error|fatal|panic' "$d/dovecot.log")"
}

# ---- tern ---------------------------------------------------------------------

# tern_start DIR SOCKET MAP: a fresh ternd delivering lmtp.test to SOCKET;
# sets TERN_PID, TERN_PORT, QMGR_PID, AGENT_PID (once the agent is connected).
tern_start() {
	local dir=$1
	TERN_PORT=$(free_port)
	cat >"$dir/tern.conf" <<EOC
queue_directory = $dir/spool
log_file = $dir/maillog
smtpd_listen = 127.0.0.1:$TERN_PORT
submission_listen = 127.0.0.1:$(free_port)
mail_owner = tern
myhostname = tern.test
mydestination = localhost, tern.test
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps = texthash:$3
virtual_transport = lmtp:unix:$2
default_destination_concurrency_limit = $CONCURRENCY
minimal_backoff_time = 3600s
maximal_backoff_time = 3600s
EOC
	tern_start_agent "$dir" lmtp
}

# ---- Postfix ------------------------------------------------------------------

# pfx_start DIR SOCKET MAP: a fresh private Postfix delivering lmtp.test to
# SOCKET; sets PFX, PFX_PORT, QMGR_PID (lib.sh's pfx_start_agent: its lmtp
# processes in the postfix/lmtp cgroup).
pfx_start() {
	pfx_start_agent "$1" lmtp "virtual_mailbox_domains = $DOMAIN" \
		"virtual_mailbox_maps = texthash:$3" "virtual_transport = lmtp:unix:$2" \
		"default_destination_concurrency_limit = $CONCURRENCY" 'minimal_backoff_time = 3600s' \
		'maximal_backoff_time = 3600s'
}

# ---- one run -------------------------------------------------------------------

# snapshot SYS TAG: CPU of the agent, qmgr, the whole system, Dovecot, the client.
snapshot() {
	local sys=$1 tag=$2 out g
	if [ "$sys" = tern ]; then
		out=$("$PY" "$OMON" proc "$AGENT_PID") || die "tern: the lmtp agent $AGENT_PID is gone"
	else
		out=$("$PY" "$OMON" cgcpu "$CG/postfix/lmtp") || die "cannot read $CG/postfix/lmtp"
	fi
	prefixed "$tag.agent" "$out"
	out=$("$PY" "$OMON" proc "$QMGR_PID") || die "$sys: qmgr $QMGR_PID is gone"
	prefixed "$tag.qmgr" "$out"
	for g in "$sys:system" dovecot:dovecot client:client; do
		out=$("$PY" "$OMON" cgcpu "$CG/${g%%:*}") || die "cannot read $CG/${g%%:*}"
		prefixed "$tag.${g#*:}" "$out"
	done
}

# delta PREFIX PART KEY: after - before of one figure of the run's snapshots.
delta() {
	local a b
	a=$(sed -n "s/^$1\.before\.$2\.$3=//p" "$RESULTS" | tail -1)
	b=$(sed -n "s/^$1\.after\.$2\.$3=//p" "$RESULTS" | tail -1)
	echo $((b - a))
}

# run_one CASE ROUND SYS N S R
run_one() {
	local case=$1 round=$2 sys=$3 n=$4 sz=$5 r=$6 p dir log port off t0 t1 out out2 rc k m
	p="$case.r$round.$sys"
	dir="$TMP/$case-r$round-$sys"
	log="$dir/maillog"
	mkdir -p "$dir"
	chmod 755 "$dir"
	mailboxes "$r" | sed 's/$/ ok/' >"$dir/vmailbox"
	chmod 644 "$dir/vmailbox"
	dovecot_start "$dir/dovecot" "$r"
	if [ "$sys" = tern ]; then
		tern_start "$dir" "$dir/dovecot/lmtp" "$dir/vmailbox"
		port=$TERN_PORT
	else
		pfx_start "$dir" "$dir/dovecot/lmtp" "$dir/vmailbox"
		port=$PFX_PORT
	fi
	res "$p.case=$case" "$p.round=$round" "$p.system=$sys" "$p.messages=$n" \
		"$p.message_bytes=$sz" "$p.rcpts=$r" "$p.mailboxes=$((SESSIONS * r))"
	off=$(log_size "$log")
	snapshot "$sys" "$p.before"
	"$PY" "$OMON" deliveries "$log" "$off" "$sys/lmtp[" $((n * r)) "$n" "$DELIVER_TIMEOUT" \
		"$STALL" 0 >"$dir/wait.out" 2>&1 &
	WAITER_PID=$!
	t0=$(now_ns)
	CLIENT_PIDS=()
	for k in $(seq "$SESSIONS"); do
		m=$(share "$n" "$k")
		[ "$m" -gt 0 ] || continue
		run_in_cgroup client timeout "$INJECT_TIMEOUT" smtp-source -s 1 -d -m "$m" -l "$sz" \
			-r "$r" -f sender@bench.test -t "m$k@$DOMAIN" "127.0.0.1:$port" >"$dir/inject-$k.out" 2>&1
		CLIENT_PIDS+=("$RUN_PID")
	done
	rc=0
	for k in "${CLIENT_PIDS[@]}"; do wait "$k" || rc=$?; done
	CLIENT_PIDS=()
	t1=$(now_ns)
	[ $rc -eq 0 ] || { tail -5 "$dir"/inject-*.out >&2; die "$p: smtp-source failed (exit $rc)"; }
	res "$p.t0_ns=$t0" "$p.inject_end_ns=$t1"
	wait "$WAITER_PID"
	rc=$?
	WAITER_PID=""
	out=$(cat "$dir/wait.out")
	prefixed "$p.wait" "$(grep '^[a-z_]*=' "$dir/wait.out")"
	[ $rc -eq 0 ] || say "bench: $p: $(grep '^omon:' "$dir/wait.out")"
	snapshot "$sys" "$p.after"
	for k in agent qmgr system dovecot client; do
		res "$p.$k.cpu_us=$(delta "$p" $k cpu_us)" "$p.$k.user_us=$(delta "$p" $k user_us)"
	done
	if [ "$sys" = tern ]; then
		res "$p.agent.processes=1"
		kill -0 "$AGENT_PID" 2>/dev/null || say "bench: WARNING: $p: the lmtp agent $AGENT_PID is gone"
	else
		res "$p.agent.processes=$(tail -c +"$((off + 1))" "$log" | grep -o 'postfix/lmtp\[[0-9]*\]' | sort -u | wc -l)"
	fi
	grep -E 'panic|fatal|FATAL|error' "$log" | grep -v 'status=' | head -3 >&2
	if [ "$sys" = tern ]; then
		tern_stop || say "bench: WARNING: $p: ternd exited $? on SIGTERM"
	else
		postfix_stop "$dir"
		PFX=""
	fi
	res "$p.dovecot_connections=$(grep -c 'Connect from local' "$dir/dovecot/dovecot.log")"
	dovecot_stop
	out2=$(maildir_check "$dir/dovecot" "$n" "$r")
	prefixed "$p" "$out2"
	note "$sys $case round $round: sent $(val sent "$out") (deferred $(val deferred "$out"), bounced $(val bounced "$out")) of $((n * r)); last sent $((($(val last_sent_ns "$out") - t0) / 1000000)) ms after the first injection (injection $(((t1 - t0) / 1000000)) ms); CPU us/msg: system $(($(delta "$p" system cpu_us) / n)), agent $(($(delta "$p" agent cpu_us) / n)), qmgr $(($(delta "$p" qmgr cpu_us) / n)), dovecot $(($(delta "$p" dovecot cpu_us) / n)); Maildirs: $(val maildir_files "$out2") files, $(val maildir_wrong_boxes "$out2") wrong mailboxes; Dovecot saved $(val dovecot_saved "$out2")"
	# keep the logs for a post-mortem (BENCH_KEEP), drop the spools and Maildirs
	rm -rf "$dir/spool" "$dir/dovecot/mail"
}

for round in $(seq "$REPEAT"); do
	if [ $((round % 2)) = 1 ]; then order="tern postfix"; else order="postfix tern"; fi
	for cs in $CASES; do
		IFS=: read -r name n sz r <<<"$cs"
		for sys in $order; do
			has "$sys" || continue
			note "$sys: $name round $round"
			run_one "$name" "$round" "$sys" "${BENCH_MESSAGES:-$n}" "$sz" "${r:-1}"
		done
	done
done

# ---- report -------------------------------------------------------------------

kill -TERM "$SAMPLER_PID" 2>/dev/null
wait "$SAMPLER_PID" 2>/dev/null
SAMPLER_PID=""
res "run_seconds=$(($(date +%s) - T_START))" "load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$BENCH/results"
OUT="$BENCH/results/lmtp-$(date +%Y%m%d-%H%M%S).txt"
note "done"
"$PY" "$LMON" report "$RESULTS" "$SAMPLES" "$OUT"
rc=$?
say "results: $OUT"
[ $rc -eq 2 ] && say "bench: MISMATCH: not every message reached its Maildir exactly once (see the summary)"
[ $rc -le 2 ] || die "report failed"
exit $rc
