#!/bin/bash
# swaks against ternd: plain, pipelined, with a binary attachment, several
# recipients; swaks' exit status, the queue id in its transcript, and the
# envelope and content in the spool.
. "$(dirname "$0")/lib.sh"
t_init swaks
t_need swaks
t_config
t_start

# swaks_send NAME ARGS...: run swaks; sets SWAKS_ID (queue id) and leaves
# its transcript in $TDIR/NAME.out.
SWAKS_ID=""
swaks_send() {
	local name=$1
	shift
	SWAKS_ID=""
	timeout 60 swaks --server 127.0.0.1 --port "$TPORT" --timeout 20 "$@" \
		>"$TDIR/$name.out" 2>&1
	local rc=$?
	if [ $rc -ne 0 ]; then
		t_bad "$name: swaks exits 0" "exit $rc; $(grep -E '^(<-|<\*\*|\*\*\*)' "$TDIR/$name.out" | tail -5)"
		return 1
	fi
	t_ok "$name: swaks exits 0"
	SWAKS_ID=$(grep -Eo 'queued as [0-9A-F]{14}\b' "$TDIR/$name.out" | tail -1 | awk '{print $3}')
	if [ -z "$SWAKS_ID" ]; then
		t_bad "$name: 'queued as QUEUEID' in the reply" "$(grep '^<-' "$TDIR/$name.out" | tail -3)"
		return 1
	fi
	t_ok "$name: 'queued as QUEUEID' in the reply"
}

# check_envelope NAME ID SENDER RCPT[,RCPT...]
check_envelope() {
	local out
	out=$(t_queue_json | "$PY" -c '
import json, sys
qid, sender, rcpts = sys.argv[1], sys.argv[2], sorted(sys.argv[3].split(","))
q = {e.get("id"): e for e in json.load(sys.stdin)}
e = q.get(qid)
if e is None:
    sys.exit(qid + " not in ternctl queue --json")
got = (e.get("sender"), sorted(e.get("recipients") or []), e.get("helo"))
want = (sender, rcpts, "swaks.test")
if got != want:
    sys.exit("(sender, recipients, helo) = %r, want %r" % (got, want))
' "$2" "$3" "$4" 2>&1)
	if [ $? -eq 0 ]; then t_ok "$1: envelope in the spool"; else t_bad "$1: envelope in the spool" "$out"; fi
}

# check_file NAME ID: the file exists and starts with our Received header.
check_file() {
	local f="$TDIR/spool/msg/$2"
	if [ -f "$f" ] && head -c 15 "$f" | grep -q '^Received: from '; then
		t_ok "$1: message file starts with 'Received: from '"
	else
		t_bad "$1: message file starts with 'Received: from '" "$(head -c 100 "$f" 2>&1)"
	fi
}

common=(--from sender@tern.test --helo swaks.test)

# Plain.
if swaks_send plain "${common[@]}" --to rcpt@tern.test; then
	check_envelope plain "$SWAKS_ID" sender@tern.test rcpt@tern.test
	check_file plain "$SWAKS_ID"
	if grep -q 'Subject: test' "$TDIR/spool/msg/$SWAKS_ID" && grep -q 'X-Mailer: swaks' "$TDIR/spool/msg/$SWAKS_ID"; then
		t_ok "plain: swaks' headers in the file"
	else
		t_bad "plain: swaks' headers in the file"
	fi
fi

# Pipelined, two recipients.
if swaks_send pipeline "${common[@]}" --to one@tern.test,two@tern.test --pipeline; then
	if grep -q 'PIPELINING' "$TDIR/pipeline.out"; then t_ok "pipeline: PIPELINING offered"; else t_bad "pipeline: PIPELINING offered"; fi
	check_envelope pipeline "$SWAKS_ID" sender@tern.test one@tern.test,two@tern.test
	check_file pipeline "$SWAKS_ID"
fi

# A binary attachment (base64 in a multipart message), decoded back from the spool.
head -c 300000 /dev/urandom >"$TDIR/attachment.bin"
printf 'line\n.starts with a dot\n' >"$TDIR/dotty.txt"
if swaks_send attach "${common[@]}" --to rcpt@tern.test --pipeline \
	--attach @"$TDIR/attachment.bin" --attach-type text/plain --attach @"$TDIR/dotty.txt"; then
	check_envelope attach "$SWAKS_ID" sender@tern.test rcpt@tern.test
	check_file attach "$SWAKS_ID"
	out=$("$PY" - "$TDIR/spool/msg/$SWAKS_ID" "$TDIR/attachment.bin" "$TDIR/dotty.txt" <<'EOF' 2>&1
import email, email.policy, sys
raw = open(sys.argv[1], "rb").read()
want = [open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()]
if b"\r\n" not in raw or b"\n" in raw.replace(b"\r\n", b""):
    sys.exit("the file does not have CRLF line ends throughout")
msg = email.message_from_bytes(raw, policy=email.policy.default)
got = [p.get_payload(decode=True) for p in msg.iter_attachments()]
if len(got) != 2:
    sys.exit(f"{len(got)} attachments found, want 2")
if got[0] != want[0]:
    sys.exit(f"binary attachment differs: {len(got[0])} bytes decoded, {len(want[0])} sent")
if got[1].replace(b"\r\n", b"\n") != want[1]:
    sys.exit(f"text attachment differs: {got[1]!r}")
EOF
)
	if [ $? -eq 0 ]; then t_ok "attach: both attachments byte-exact in the spool"; else t_bad "attach: both attachments byte-exact in the spool" "$out"; fi
fi

# A long body from a file, lines with leading dots.
"$PY" -c '
import sys
for i in range(20000):
    print(("." if i % 7 == 0 else "") + f"line {i} " + "x" * (i % 90))
' >"$TDIR/body.txt"
if swaks_send body "${common[@]}" --to rcpt@tern.test --body @"$TDIR/body.txt"; then
	check_envelope body "$SWAKS_ID" sender@tern.test rcpt@tern.test
	out=$("$PY" - "$TDIR/spool/msg/$SWAKS_ID" "$TDIR/body.txt" <<'EOF' 2>&1
import sys
raw = open(sys.argv[1], "rb").read()
want = open(sys.argv[2], "rb").read().replace(b"\n", b"\r\n")
head, sep, body = raw.partition(b"\r\n\r\n")
if not sep:
    sys.exit("no end of headers")
# swaks adds a CRLF after the body when it does not end in one.
if body.rstrip(b"\r\n") != want.rstrip(b"\r\n"):
    sys.exit(f"body differs: {len(body)} bytes stored, {len(want)} sent")
EOF
)
	if [ $? -eq 0 ]; then t_ok "body: 20,000 lines with leading dots byte-exact"; else t_bad "body: 20,000 lines with leading dots byte-exact" "$out"; fi
fi

# A refused recipient makes swaks fail (exit 24: RCPT failed).
timeout 60 swaks --server 127.0.0.1 --port "$TPORT" --timeout 20 "${common[@]}" \
	--to 'bad@@tern.test' >"$TDIR/bad.out" 2>&1
rc=$?
t_eq "bad recipient: swaks exits 24" "$rc" 24

# Everything queued is still there after a restart.
n_before=$(t_queue_count)
t_stop
t_eq "ternd exits 0 on SIGTERM" "$T_RC" 0
t_start
t_eq "envelopes after restart" "$(t_queue_count)" "$n_before"
t_eq "message files after restart" "$(t_msg_count)" "$n_before"
t_eq "four messages queued" "$n_before" 4
t_stop
t_eq "ternd exits 0 on SIGTERM (2)" "$T_RC" 0
