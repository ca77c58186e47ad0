# tests/e2e/lib.sh: the harness of tern's end-to-end tests written in bash.
#
# A test script does:
#     . "$(dirname "$0")/lib.sh"
#     t_init load            # private dir, ports, prerequisites, traps
#     t_need smtp-source     # more commands it needs (a missing one fails)
#     t_config key=value...  # the common config plus these parameters
#     t_start                # ternd -f in the background, wait for 220
#     t_ok "name"  /  t_bad "name" "why"  /  t_check "name" CMD...
#     t_stop                 # SIGTERM, bounded wait; SIGKILL and a failure
# and ends by falling off the end (or t_finish). The EXIT trap kills what
# we started, removes the directory (TERN_E2E_KEEP=1 keeps it) and prints
# "N passed, M failed" as the last line; the exit status is 1 when
# anything failed or nothing passed. A watchdog ends the script after
# TERN_E2E_WATCHDOG seconds (560, under CTest's 600).
#
# Environment: TERN_BUILD (default SOURCE/build), TERN_SOURCE.

T_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TERN_SOURCE=${TERN_SOURCE:-$(cd "$T_HERE/../.." && pwd)}
TERN_BUILD=${TERN_BUILD:-$TERN_SOURCE/build}
TERND=$TERN_BUILD/bin/ternd
TERNCTL=$TERN_BUILD/bin/ternctl
PY=/usr/bin/python3

T_PASSED=0
T_FAILED=0
T_FAILED_NAMES=()
T_NAME=""
TDIR=""
TCONF=""
TPORT=""
TPORT2=""
TMASTER=""
T_WATCHDOG_PID=""
T_STARTED=$SECONDS

t_log() { printf '%s\n' "$*"; }
t_ok() { T_PASSED=$((T_PASSED + 1)); t_log "ok   $1"; }
t_bad() {
	T_FAILED=$((T_FAILED + 1))
	T_FAILED_NAMES+=("$1")
	t_log "FAIL $1${2:+: $2}"
}
# t_check NAME CMD...: run CMD; ok when it exits 0.
t_check() {
	local name=$1
	shift
	if "$@"; then t_ok "$name"; else t_bad "$name" "command failed: $*"; fi
}
# t_eq NAME GOT WANT
t_eq() {
	if [ "$2" = "$3" ]; then t_ok "$1"; else t_bad "$1" "got '$2', want '$3'"; fi
}
# t_abort WHY: a failure that ends the script.
t_abort() {
	t_bad "${T_NAME}: fatal" "$1"
	t_tails
	exit 1
}

t_init() {
	T_NAME=$1
	trap t_exit EXIT
	trap 't_bad "${T_NAME}: interrupted or watchdog"; exit 1' INT TERM
	(
		sleep "${TERN_E2E_WATCHDOG:-560}"
		echo "watchdog: ${TERN_E2E_WATCHDOG:-560} s passed" >&2
		kill -TERM $$
	) </dev/null >/dev/null 2>&1 &
	T_WATCHDOG_PID=$!
	local p
	for p in "$TERND" "$TERNCTL" "$PY"; do
		[ -x "$p" ] || t_abort "$p is missing or not executable (build tern first; TERN_BUILD=$TERN_BUILD)"
	done
	if [ "$(id -u)" = 0 ] && ! id tern >/dev/null 2>&1; then
		useradd --system --user-group --no-create-home --shell /usr/sbin/nologin tern ||
			t_abort "cannot create user tern"
	fi
	TDIR=$(mktemp -d "/var/tmp/tern-e2e-$T_NAME.XXXXXX") || t_abort "mktemp failed"
	chmod 755 "$TDIR"	# children run as tern and must traverse it
	TCONF=$TDIR/tern.conf
	read -r TPORT TPORT2 < <(t_free_ports 2)
	[ -n "$TPORT2" ] || t_abort "no free ports"
}

# t_need CMD...: every command must exist.
t_need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || t_abort "$c is not installed (see scripts/install-deps.sh)"
	done
}

t_free_ports() {
	"$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# t_config [name=value ...]: write $TCONF.
t_config() {
	{
		echo "# tern e2e test $T_NAME"
		echo "queue_directory = $TDIR/spool"
		echo "log_file = $TDIR/maillog"
		echo "smtpd_listen = 127.0.0.1:$TPORT"
		echo "submission_listen = 127.0.0.1:$TPORT2"
		echo "mail_owner = tern"
		echo "myhostname = tern.test"
		echo "mydestination = localhost, tern.test"
		echo "mynetworks = 127.0.0.0/8"
		# made-up local users: no RCPT-time "User unknown" check here,
		# and their mail waits in the queue (no local agent bounce)
		echo "local_recipient_maps ="
		echo "local_transport = retry:4.3.0 mailbox not ready"
		# no PTR lookups of 127.0.0.1 through the machine's DNS: the
		# tests stay on loopback, and every client is unknown[...]
		echo "smtpd_peername_lookup = no"
		local kv
		for kv in "$@"; do
			echo "${kv%%=*} = ${kv#*=}"
		done
	} >"$TCONF"
	local out
	out=$("$TERND" -n -c "$TCONF" 2>&1) || t_abort "ternd -n rejects the test config: $out"
}

# t_wait_greeting [SECONDS]: 0 when the smtpd port answers "220 " in time.
t_wait_greeting() {
	"$PY" - "$TPORT" "${1:-10}" <<'EOF'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(512)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"220 "):
                s.sendall(b"QUIT\r\n")
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
EOF
}

# t_start: ternd -f -c $TCONF in the background; TMASTER is its pid.
t_start() {
	"$TERND" -f -c "$TCONF" </dev/null >>"$TDIR/ternd.out" 2>&1 &
	TMASTER=$!
	if ! t_wait_greeting 10; then
		kill -0 "$TMASTER" 2>/dev/null || t_abort "ternd exited at start"
		t_abort "no 220 greeting on 127.0.0.1:$TPORT within 10 s"
	fi
}

# t_stop [SECONDS]: SIGTERM the master and wait (30 s); T_RC is its exit
# status. Not stopping in time is a failure (and everything is killed).
T_RC=""
t_stop() {
	local limit=${1:-30} i
	T_RC=""
	[ -n "$TMASTER" ] || return 0
	kill -TERM "$TMASTER" 2>/dev/null
	for i in $(seq $((limit * 10))); do
		kill -0 "$TMASTER" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$TMASTER" 2>/dev/null; then
		t_bad "ternd stops within ${limit} s of SIGTERM" "still running; killed"
		t_kill_all
		TMASTER=""
		return 1
	fi
	wait "$TMASTER" 2>/dev/null
	T_RC=$?
	TMASTER=""
	local strays
	strays=$(t_stray_pids)
	if [ -n "$strays" ]; then
		t_bad "no process left after ternd exits" "left: $strays"
		t_kill_all
	fi
	return 0
}

# Processes running with our (unique) config path.
t_stray_pids() {
	[ -n "$TCONF" ] || return 0
	local p out=""
	for p in $(pgrep -f -- "$TCONF"); do
		[ "$p" = "$$" ] || [ "$p" = "$BASHPID" ] || out="$out $p"
	done
	echo $out
}

t_kill_all() {
	local p i
	[ -n "$TMASTER" ] && kill -9 "$TMASTER" 2>/dev/null
	for i in 1 2 3; do
		for p in $(t_stray_pids); do kill -9 "$p" 2>/dev/null; done
		[ -z "$(t_stray_pids)" ] && break
		sleep 0.2
	done
}

# t_smtpd_pid: the master's smtpd child (waits up to 5 s).
t_smtpd_pid() {
	local i p
	for i in $(seq 50); do
		p=$(pgrep -P "$TMASTER" -f -- '--role=smtpd' | head -1)
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.1
	done
	return 1
}

t_maillog() { cat "$TDIR/maillog" 2>/dev/null; }

# t_queue_json: ternctl queue --json (the spool read-only, no daemon needed).
t_queue_json() { timeout 120 "$TERNCTL" -c "$TCONF" queue --json; }

# t_queue_count: envelopes in the spool.
t_queue_count() {
	t_queue_json | "$PY" -c 'import json, sys; print(len(json.load(sys.stdin)))'
}

# t_msg_count: files in spool/msg.
t_msg_count() { find "$TDIR/spool/msg" -maxdepth 1 -type f 2>/dev/null | wc -l; }

t_tails() {
	[ -n "$TDIR" ] || return 0
	echo "--- last lines of maillog:"
	tail -n 25 "$TDIR/maillog" 2>/dev/null
	echo "--- last lines of ternd stdout/stderr:"
	tail -n 25 "$TDIR/ternd.out" 2>/dev/null
}

t_exit() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$T_WATCHDOG_PID" ]; then
		# Its sleep first: it would outlive the subshell by minutes.
		kill $(pgrep -P "$T_WATCHDOG_PID") "$T_WATCHDOG_PID" 2>/dev/null
	fi
	if [ -n "$TMASTER" ] && kill -0 "$TMASTER" 2>/dev/null; then
		kill -TERM "$TMASTER" 2>/dev/null
		local i
		for i in $(seq 100); do kill -0 "$TMASTER" 2>/dev/null || break; sleep 0.1; done
	fi
	t_kill_all
	if [ -n "$TDIR" ] && [ -d "$TDIR" ]; then
		[ "$T_FAILED" -gt 0 ] && t_tails
		if [ -n "${TERN_E2E_KEEP:-}" ]; then
			echo "kept $TDIR"
		else
			rm -rf "$TDIR"
		fi
	fi
	if [ "$rc" -ne 0 ] && [ "$T_FAILED" -eq 0 ]; then
		t_bad "${T_NAME}: script exited with status $rc"
	fi
	[ ${#T_FAILED_NAMES[@]} -gt 0 ] && echo "failed: $(IFS=';'; echo "${T_FAILED_NAMES[*]}")"
	echo "${T_NAME}: $((SECONDS - T_STARTED)) s"
	echo "$T_PASSED passed, $T_FAILED failed"
	if [ "$T_FAILED" -gt 0 ] || [ "$T_PASSED" -eq 0 ]; then exit 1; fi
	exit 0
}

t_finish() { exit 0; }
