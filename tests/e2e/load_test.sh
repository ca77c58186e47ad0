#!/bin/bash
# 1,000 messages over 20 parallel sessions (smtp-source, one message per
# connection), then a clean stop and a restart: exactly 1,000 envelopes and
# 1,000 message files, every one of them ours, and the log agrees.
. "$(dirname "$0")/lib.sh"
t_init load
t_need smtp-source
t_config
t_start

N=1000
t0=$SECONDS
out=$(timeout 300 smtp-source -s 20 -m $N -l 1024 -f sender@tern.test -t rcpt@tern.test \
	"127.0.0.1:$TPORT" 2>&1)
rc=$?
t_eq "smtp-source -s 20 -m $N exits 0 ($((SECONDS - t0)) s)" "$rc" 0
[ $rc -eq 0 ] || t_log "$out" | tail -5

t_check "ternd master still running after the load" kill -0 "$TMASTER"
t_stop
t_eq "ternd exits 0 on SIGTERM after the load" "$T_RC" 0

# The log: one client= line per message, one disconnect per session.
clients=$(grep -Ec 'tern/smtpd\[[0-9]+\]: [0-9A-F]{14}: client=unknown\[127\.0\.0\.1\]$' "$TDIR/maillog")
t_eq "'QUEUEID: client=unknown[127.0.0.1]' lines" "$clients" $N
disc=$(grep -Ec 'tern/smtpd\[[0-9]+\]: disconnect from unknown\[127\.0\.0\.1\] .*data=1 ' "$TDIR/maillog")
t_eq "'disconnect ... data=1' lines" "$disc" $N
t_check "master logged 'daemon started'" grep -q 'tern/master\[[0-9]*\]: daemon started -- version ' "$TDIR/maillog"

t_start
t_eq "envelopes after restart" "$(t_queue_count)" $N
t_eq "files in msg/ after restart" "$(t_msg_count)" $N
out=$(t_queue_json | "$PY" -c '
import json, os, re, sys
msgdir = sys.argv[1]
q = json.load(sys.stdin)
ids = [e.get("id") for e in q]
bad = [i for i in ids if not re.fullmatch(r"[0-9A-F]{14}", i or "")]
if bad:
    sys.exit(f"malformed queue ids: {bad[:5]}")
if len(set(ids)) != len(ids):
    sys.exit("duplicate queue ids")
files = set(os.listdir(msgdir))
if files != set(ids):
    sys.exit(f"envelopes without file: {sorted(set(ids) - files)[:5]}, files without envelope: {sorted(files - set(ids))[:5]}")
for e in q:
    if e.get("sender") != "sender@tern.test" or e.get("recipients") != ["rcpt@tern.test"]:
        sys.exit(f"unexpected envelope {e}")
    qid, addr = e["id"], e.get("client_addr")
    if addr != "127.0.0.1":
        sys.exit(f"{qid}: client_addr {addr!r}")
    with open(os.path.join(msgdir, qid), "rb") as f:
        data = f.read()
    if not data.startswith(b"Received: from "):
        sys.exit(f"{qid}: file does not start with our Received header")
    if len(data) < 1024:
        sys.exit(f"{qid}: only {len(data)} bytes")
' "$TDIR/spool/msg" 2>&1)
if [ $? -eq 0 ]; then t_ok "every envelope is ours, with its file"; else t_bad "every envelope is ours, with its file" "$out"; fi

# Plain (mailq-style) listing: every queue id appears.
ids_plain=$(timeout 120 "$TERNCTL" -c "$TCONF" queue | grep -Eo '\b[0-9A-F]{14}\b' | sort -u | wc -l)
t_eq "queue ids in the plain ternctl listing" "$ids_plain" $N

# Accepting goes on after the restart.
out=$(timeout 120 smtp-source -s 5 -m 50 -l 1024 -f sender@tern.test -t rcpt@tern.test \
	"127.0.0.1:$TPORT" 2>&1)
t_eq "50 more messages after the restart" "$?" 0
t_stop
t_eq "ternd exits 0 on SIGTERM (2)" "$T_RC" 0
t_eq "envelopes at the end" "$(t_queue_count)" $((N + 50))
t_eq "files in msg/ at the end" "$(t_msg_count)" $((N + 50))
