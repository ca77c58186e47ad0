# bench/lib.sh: helpers shared by the benchmark scripts (sourced, bash).
#
# Everything here is bounded in time and cleans up after itself through
# bench_cleanup, which the caller installs as an EXIT trap.

BENCH_CGROUP_ROOT=""	# our cgroup v2 directory, when we could make one
BENCH_CPU_GROUP=""	# our cgroup v1 cpu directory, when the cpu controller is v1's
BENCH_PIDS_TO_KILL=()	# processes we started and must not leave behind

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: FATAL: $*"; exit 1; }

# A free TCP port on 127.0.0.1 (bound and released: a small race we accept).
free_port() {
	/usr/bin/python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# wait_greeting PORT SECONDS: wait until PORT answers with "220 ".
wait_greeting() {
	/usr/bin/python3 - "$1" "$2" <<'EOF'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(2)
            data = b""
            while b"\n" not in data:
                chunk = s.recv(512)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"220 ") or data.startswith(b"220-"):
                s.sendall(b"QUIT\r\n")
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
EOF
}

# ---- CPU accounting ---------------------------------------------------

# The mount point of a writable cgroup v2 hierarchy, or nothing.
cgroup2_mount() {
	local m
	while read -r _ m t _; do
		if [ "$t" = cgroup2 ] && [ -w "$m" ]; then
			printf '%s\n' "$m"
			return 0
		fi
	done </proc/mounts
	return 1
}

# The mount point of a writable cgroup v1 hierarchy with the cpu
# controller, or nothing.
cgroup1_cpu_mount() {
	local m t o
	while read -r _ m t o _; do
		case ",$o," in
		*,cpu,*) [ "$t" = cgroup ] && [ -w "$m" ] && { printf '%s\n' "$m"; return 0; } ;;
		esac
	done </proc/mounts
	return 1
}

# cgroup_setup: make $BENCH_CGROUP_ROOT with one child group per system.
# Where the cpu controller is cgroup v1's (a hybrid hierarchy, as on these
# machines), also $BENCH_CPU_GROUP, which everything run_in_cgroup starts
# joins: the kernel's autogroup scheduling (sched_autogroup_enabled) shares
# the CPU of the root cpu group per session, and Postfix's master makes a
# session of its own while ternd -f, a sink or Dovecot started here stay in
# the script's, with the clients; under load from other sessions that gives
# the systems unequal shares. One cpu group for the whole bench (autogroup
# does not apply outside the root group) schedules both systems' processes
# alike, and the bench as one group against the rest of the machine.
cgroup_setup() {
	local m c
	m=$(cgroup2_mount) || return 1
	BENCH_CGROUP_ROOT="$m/tern-bench-$$"
	mkdir "$BENCH_CGROUP_ROOT" 2>/dev/null || { BENCH_CGROUP_ROOT=""; return 1; }
	mkdir "$BENCH_CGROUP_ROOT/postfix" "$BENCH_CGROUP_ROOT/tern" "$BENCH_CGROUP_ROOT/client" || return 1
	[ -r "$BENCH_CGROUP_ROOT/postfix/cpu.stat" ] || return 1
	if c=$(cgroup1_cpu_mount) && mkdir "$c/tern-bench-$$" 2>/dev/null; then
		BENCH_CPU_GROUP="$c/tern-bench-$$"
	fi
	return 0
}

# cgroup_cpu_usec NAME: usage_usec of the group.
cgroup_cpu_usec() {
	awk '$1 == "usage_usec" { print $2 }' "$BENCH_CGROUP_ROOT/$1/cpu.stat"
}

# cgroup_teardown: kill whatever is left in our groups, remove them.
cgroup_teardown() {
	[ -n "$BENCH_CGROUP_ROOT" ] && [ -d "$BENCH_CGROUP_ROOT" ] || return 0
	local g i
	for g in postfix tern client; do
		[ -d "$BENCH_CGROUP_ROOT/$g" ] || continue
		if [ -s "$BENCH_CGROUP_ROOT/$g/cgroup.procs" ]; then
			if [ -e "$BENCH_CGROUP_ROOT/$g/cgroup.kill" ]; then
				echo 1 >"$BENCH_CGROUP_ROOT/$g/cgroup.kill" 2>/dev/null
			else
				xargs -r kill -9 <"$BENCH_CGROUP_ROOT/$g/cgroup.procs" 2>/dev/null
			fi
		fi
		for i in $(seq 50); do
			[ -s "$BENCH_CGROUP_ROOT/$g/cgroup.procs" ] || break
			sleep 0.1
		done
		rmdir "$BENCH_CGROUP_ROOT/$g" 2>/dev/null
	done
	rmdir "$BENCH_CGROUP_ROOT" 2>/dev/null
	if [ -n "$BENCH_CPU_GROUP" ] && [ -d "$BENCH_CPU_GROUP" ]; then
		for i in $(seq 50); do
			[ -s "$BENCH_CPU_GROUP/cgroup.procs" ] || break
			sleep 0.1
		done
		rmdir "$BENCH_CPU_GROUP" 2>/dev/null
	fi
}

# tree_pids ROOT: ROOT and all its descendants.
tree_pids() {
	local todo=("$1") p c
	while [ ${#todo[@]} -gt 0 ]; do
		p=${todo[0]}
		todo=("${todo[@]:1}")
		[ -d "/proc/$p" ] || continue
		echo "$p"
		for c in $(pgrep -P "$p"); do todo+=("$c"); done
	done
}

# tree_cpu_usec ROOT: utime+stime+cutime+cstime of ROOT's tree, in usec.
# (Fallback when no cgroup: misses children that died unreaped.)
tree_cpu_usec() {
	local hz total=0 p s
	hz=$(getconf CLK_TCK)
	for p in $(tree_pids "$1"); do
		s=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || continue
		[ -n "$s" ] && total=$((total + s))
	done
	echo $((total * 1000000 / hz))
}

# ---- memory ------------------------------------------------------------

# rss_kb PID: VmRSS of one process in kB.
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
# pss_kb PID: Pss of one process in kB (shared pages divided among sharers).
pss_kb() { awk '$1 == "Pss:" { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

# ---- a bounded wait for a pid to exit -----------------------------------

# wait_exit PID SECONDS: 0 when PID is gone within SECONDS.
wait_exit() {
	local pid=$1 limit=$2 i
	for i in $(seq $((limit * 10))); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	! kill -0 "$pid" 2>/dev/null
}

# run_in_cgroup GROUP CMD...: run CMD in the background with its whole
# process tree inside the group (or, without cgroups, plainly); its pid is
# left in RUN_PID. Redirect its output at the call: never call this inside
# $(...), whose pipe the background process would hold open.
RUN_PID=""
run_in_cgroup() {
	local g=$1
	shift
	if [ -n "$BENCH_CGROUP_ROOT" ]; then
		(echo "$BASHPID" >"$BENCH_CGROUP_ROOT/$g/cgroup.procs" &&
			{ [ -z "$BENCH_CPU_GROUP" ] || echo "$BASHPID" >"$BENCH_CPU_GROUP/cgroup.procs"; } &&
			exec "$@") &
	else
		("$@") &
	fi
	RUN_PID=$!
	BENCH_PIDS_TO_KILL+=("$RUN_PID")
}

# ---- a private Postfix instance ------------------------------------------

# postfix_setup DIR PORT: config in DIR/etc, queue in DIR/spool, log in
# DIR/maillog; smtpd on 127.0.0.1:PORT; every accepted message goes on hold
# (no delivery work). Postfix's fsync behaviour is left as it is.
postfix_setup() {
	local dir=$1 port=$2
	mkdir -p "$dir/etc" "$dir/spool" "$dir/data"
	chown postfix "$dir/data"
	cat >"$dir/etc/main.cf" <<EOC
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = \$myhostname
mydestination = localhost, tern.test
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
local_recipient_maps =
alias_maps =
alias_database =
biff = no
maillog_file = $dir/maillog
smtpd_data_restrictions = check_client_access static:HOLD
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 250
EOC
	cat >"$dir/etc/master.cf" <<EOC
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOC
	postfix -c "$dir/etc" check >"$dir/check.log" 2>&1 || {
		cat "$dir/check.log" >&2
		return 1
	}
}

# postfix_master_pid DIR: the pid of the instance's master, or nothing.
postfix_master_pid() {
	local f="$1/spool/pid/master.pid" p
	[ -r "$f" ] || return 1
	p=$(tr -dc 0-9 <"$f")
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
}

# postfix_start DIR PORT: start in the postfix cgroup; wait for the greeting.
postfix_start() {
	local dir=$1 port=$2
	run_in_cgroup postfix postfix -c "$dir/etc" start >"$dir/start.log" 2>&1
	wait "$RUN_PID" || { cat "$dir/start.log" >&2; return 1; }
	wait_greeting "$port" 15 || { say "postfix: no greeting on port $port"; return 1; }
	postfix_master_pid "$dir" >/dev/null || { say "postfix: no master pid"; return 1; }
}

# postfix_stop DIR: postfix stop, bounded; then kill the master's tree.
postfix_stop() {
	local dir=$1 pid
	pid=$(postfix_master_pid "$dir") || return 0
	timeout 30 postfix -c "$dir/etc" stop >/dev/null 2>&1
	if ! wait_exit "$pid" 20; then
		say "postfix: master $pid did not stop; killing it"
		kill -9 $(tree_pids "$pid") 2>/dev/null
	fi
}

# postfix_held DIR: messages in the hold queue; postfix_unheld: elsewhere.
postfix_held() { find "$1/spool/hold" -type f | wc -l; }
postfix_unheld() {
	find "$1/spool/incoming" "$1/spool/active" "$1/spool/deferred" \
		"$1/spool/maildrop" -type f 2>/dev/null | wc -l
}

# kill_cgroup DIR: kill what is left in a cgroup v2 directory of the bench
# (cgroup.kill where the kernel has it), then remove it (bounded).
kill_cgroup() {
	local d=$1
	[ -d "$d" ] || return 0
	if [ -s "$d/cgroup.procs" ]; then
		if [ -e "$d/cgroup.kill" ]; then
			echo 1 >"$d/cgroup.kill" 2>/dev/null
		else
			xargs -r kill -9 <"$d/cgroup.procs" 2>/dev/null
		fi
	fi
	for _ in $(seq 50); do
		[ -s "$d/cgroup.procs" ] || break
		sleep 0.1
	done
	rmdir "$d" 2>/dev/null
}

# ---- a tern or Postfix whose delivery agent is measured apart ----------------
# (bench/outbound: smtp; bench/lmtp: lmtp.) Both expect the caller's globals
# TERN_BUILD, RESULTS, res(), CG (with cgroups tern/ and postfix/AGENT/),
# TMP, PFX_DAEMON_DIR and PFX_CONF (BENCH_POSTFIX_CONF).

# tern_start_agent DIR AGENT: ternd -f -c DIR/tern.conf (written by the
# caller; smtpd on TERN_PORT) in the tern cgroup, then wait for its greeting
# and for its AGENT agent to connect to qmgr. Sets TERN_PID, QMGR_PID,
# AGENT_PID; records tern_version once.
tern_start_agent() {
	local dir=$1 agent=$2 line
	"$TERN_BUILD/bin/ternd" -n -c "$dir/tern.conf" >"$dir/check.out" 2>&1 ||
		die "ternd -n rejects the bench config: $(cat "$dir/check.out")"
	run_in_cgroup tern "$TERN_BUILD/bin/ternd" -f -c "$dir/tern.conf" >>"$dir/ternd.out" 2>&1
	TERN_PID=$RUN_PID
	wait_greeting "$TERN_PORT" 30 || { tail -20 "$dir/ternd.out" >&2; die "tern: no greeting on port $TERN_PORT"; }
	QMGR_PID="" AGENT_PID=""
	for _ in $(seq 100); do
		line=$(grep -m1 -o "tern/qmgr\[[0-9]*\]: agent $agent\[[0-9]*\] connected" "$dir/maillog" 2>/dev/null)
		if [ -n "$line" ]; then
			QMGR_PID=$(echo "$line" | sed 's/^tern\/qmgr\[\([0-9]*\)\].*/\1/')
			AGENT_PID=$(echo "$line" | sed "s/.*agent $agent\[\([0-9]*\)\].*/\1/")
			break
		fi
		sleep 0.1
	done
	[ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null && kill -0 "$QMGR_PID" 2>/dev/null ||
		die "tern: the $agent agent did not connect to qmgr within 10 s"
	grep -q '^tern_version=' "$RESULTS" ||
		res "tern_version=$(grep -m1 -o 'daemon started -- version [^,]*' "$dir/maillog" | awk '{print $NF}')"
}

# pfx_start_agent DIR AGENT SETTING...: a fresh private Postfix (postfix_setup
# above) on a free port, with the SETTINGs and then PFX_CONF applied (its
# hold restriction removed: this one delivers). Its AGENT processes start
# through a wrapper that moves them into the postfix/AGENT cgroup (master.cf
# names commands relative to daemon_directory: the wrapper is reached
# through ".."). Sets PFX, PFX_PORT, QMGR_PID.
pfx_start_agent() {
	local dir=$1 agent=$2 up master
	shift 2
	PFX_PORT=$(free_port)
	cat >"$TMP/pfx-$agent" <<EOW
#!/bin/sh
echo \$\$ >$CG/postfix/$agent/cgroup.procs || exit 1
exec $PFX_DAEMON_DIR/$agent "\$@"
EOW
	chmod 755 "$TMP/pfx-$agent"
	up=$(echo "$PFX_DAEMON_DIR" | sed 's|/[^/]*|../|g')
	postfix_setup "$dir" "$PFX_PORT" || die "postfix setup failed"
	PFX=$dir
	sed -i "s|^\($agent \+unix .*\) $agent\$|\1 ${up%/}$TMP/pfx-$agent|" "$dir/etc/master.cf"
	grep -q "pfx-$agent" "$dir/etc/master.cf" || die "cannot point master.cf's $agent at the wrapper"
	postconf -c "$dir/etc" -e 'smtpd_data_restrictions =' "$@" || die "postconf failed"
	if [ -n "$PFX_CONF" ]; then
		# shellcheck disable=SC2086
		postconf -c "$dir/etc" -e $PFX_CONF || die "postconf $PFX_CONF failed"
	fi
	postfix -c "$dir/etc" check >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; die "postfix check"; }
	postfix_start "$dir" "$PFX_PORT" || die "postfix did not start"
	master=$(postfix_master_pid "$dir") || die "postfix: no master"
	QMGR_PID=""
	for _ in $(seq 100); do
		QMGR_PID=$(pgrep -P "$master" -x qmgr | head -1)
		[ -n "$QMGR_PID" ] && break
		sleep 0.1
	done
	[ -n "$QMGR_PID" ] || die "postfix: no qmgr under master $master"
}
