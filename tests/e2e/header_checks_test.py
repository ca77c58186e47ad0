"""End-to-end tests of header_checks and body_checks (doc/content_checks.md)
and of regexp: and cidr: maps (doc/maps.md), against the real ternd.
Messages wait in the queue (local_transport is a retry), so the stored
file and the envelope can be read back.

  - actions: REJECT (550 5.7.1 at the end of DATA, no queue file, no queue
    entry, Postfix's "reject: header ..." log line, the session goes on),
    REJECT with its own text, DISCARD, HOLD (queued on hold), IGNORE of a
    folded header, PREPEND, REPLACE, WARN, REDIRECT; a folded header
    matched whole; body lines (REJECT, IGNORE); BDAT; MIME part headers;
  - sendmail -t: the same checks on the local submission path;
  - per listener: submission_header_checks = (empty) and the re-injection
    listener (no checks by default) accept what port 25 rejects;
  - maps: check_client_access cidr: and check_recipient_access regexp:;
  - ternd -n reports a bad regexp and a bad cidr line as FILE:LINE.
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

suite = ternlib.Suite("header_checks")
SENDMAIL = os.path.join(ternlib.BUILD, "bin", "sendmail")
REINJECT_PORT, = ternlib.free_ports(1)

FILES_DIR, FILES = ternlib.shared_files("hchecks", {
    "header_checks": (
        "# header_checks(5) actions, one Subject each\n"
        "/^Subject: reject-me/ REJECT\n"
        "/^Subject: custom-reject/ REJECT 5.7.0 go away\n"
        "/^Subject: discard-me/ DISCARD\n"
        "/^Subject: hold-me/ HOLD held for review\n"
        "/^X-Secret:/ IGNORE\n"
        "/^Subject: prepend-me/ PREPEND X-Tagged: yes\n"
        "/^Subject: replace-(.*)/ REPLACE Subject: replaced $1\n"
        "/^Subject: warn-me/ WARN watch this\n"
        "/^Subject: redirect-me/ REDIRECT elsewhere@tern.test\n"
        "/^Subject: folded.*second line/ REJECT folded\n"
        "if /^Content-Type:/\n"
        "/name=\"?evil\\.exe/ REJECT 5.7.1 attachment refused\n"
        "endif\n"),
    "body_checks": (
        "/^REJECT-THIS-LINE$/ REJECT body says no\n"
        "/^drop this line$/ IGNORE\n"),
    "client_cidr": (
        "if 127.0.0.0/8\n"
        "192.0.2.0/24 REJECT never\n"
        "127.0.0.1 PREPEND X-Cidr: loopback\n"
        "endif\n"),
    "rcpt_regexp": "/^blocked\\+.*@tern\\.test$/ REJECT regexp blocked\n",
    "bad_regexp": "/ok/ DUNNO\n/(unclosed/ REJECT\n",
    "bad_cidr": "127.0.0.0/8 OK\n10.0.0.1/8 REJECT\n",
})

COMMON = {
    "header_checks": f"regexp:{FILES['header_checks']}",
    "body_checks": f"regexp:{FILES['body_checks']}",
    "reinject_listen": f"127.0.0.1:{REINJECT_PORT}",
    "submission_header_checks": "",
    "submission_body_checks": "",
    "submission_smtpd_recipient_restrictions": "permit_mynetworks, reject",
}

FROM = "alice@example.org"
RCPT = "bob@tern.test"
ORIGIN = r"\S+\[127\.0\.0\.1\]"


def message(subject, body=b"hello\r\n", extra=b""):
    return (f"From: <{FROM}>\r\nTo: <{RCPT}>\r\nSubject: {subject}\r\n".encode() + extra +
            b"\r\n" + body)


def transaction(port, data, rcpts=(RCPT,), bdat=False):
    """One transaction on port (data unstuffed); returns (Reply, qid or None)."""
    with ternlib.RawSMTP(port) as c:
        for line in ("EHLO client.test", f"MAIL FROM:<{FROM}>"):
            r = c.cmd(line)
            if r.code != 250:
                raise ternlib.TestFailure(f"{line}: {r}")
        for rc in rcpts:
            r = c.cmd(f"RCPT TO:<{rc}>")
            if r.code != 250:
                raise ternlib.TestFailure(f"RCPT {rc}: {r}")
        if bdat:
            c.send(f"BDAT {len(data)} LAST\r\n".encode() + data)
        else:
            r = c.cmd("DATA")
            if r.code != 354:
                raise ternlib.TestFailure(f"DATA: {r}")
            c.send(re.sub(rb"(?m)^\.", b"..", data) + b".\r\n")
        final = c.reply()
        # The session goes on after a refused message.
        after = c.cmd("NOOP")
        c.cmd("QUIT")
    if after.code != 250:
        raise ternlib.TestFailure(f"NOOP after the message: {after}")
    m = ternlib.QUEUED_RE.search(final.text)
    return final, (m.group(1) if m else None)


def queued(t, qid):
    return t.queue_by_id().get(qid)


def held(t, qid, mark=0):
    # qmgr moves it to the hold queue when it picks the message up.
    if not t.wait_log(rf"{qid}: placed on hold", mark, 10):
        return False
    listing = ternlib.ternctl_run(t, "queue").stdout
    return re.search(rf"^{qid}!", listing, re.M) is not None


# ---- actions -----------------------------------------------------------------------------


def test_reject(s, t):
    files = t.msg_files()
    mark = t.log_mark()
    r, qid = transaction(t.port, message("reject-me now"))
    s.reply(r, 550, "5.7.1", "REJECT")
    s.check("message content rejected" in r.text, f"Postfix's default text: {r.text!r}")
    m = t.wait_log(rf"([0-9A-F]{{14}}): reject: header Subject: reject-me now from {ORIGIN}; "
                   rf"from=<{re.escape(FROM)}> to=<{re.escape(RCPT)}> proto=ESMTP "
                   r"helo=<client\.test>: 5\.7\.1 message content rejected", mark)
    s.check(m, "cleanup's reject line: ID: reject: header ... from host[addr]; from=<> to=<> "
               "proto= helo=<>: 5.7.1 message content rejected")
    s.eq(t.msg_files() - files, set(), "no message file left behind")
    if m:
        s.check(queued(t, m.group(1)) is None, "no queue entry")
    r, _ = transaction(t.port, message("custom-reject"))
    s.reply(r, 550, "5.7.0", "REJECT with a status code")
    s.check(r.text.endswith("go away"), f"its own text: {r.text!r}")


def test_reject_bdat(s, t):
    files = t.msg_files()
    r, _ = transaction(t.port, message("reject-me by BDAT"), bdat=True)
    s.reply(r, 550, "5.7.1", "REJECT after BDAT LAST")
    s.eq(t.msg_files() - files, set(), "no message file left behind")


def test_discard(s, t):
    mark = t.log_mark()
    r, qid = transaction(t.port, message("discard-me"))
    s.reply(r, 250, None, "DISCARD claims delivery")
    s.check(qid and t.wait_log(rf"{qid}: discard: header Subject: discard-me from {ORIGIN};",
                               mark), "the discard line")
    s.check(qid and queued(t, qid) is None, "nothing queued")


def test_hold(s, t):
    mark = t.log_mark()
    r, qid = transaction(t.port, message("hold-me"))
    s.reply(r, 250, None, "HOLD queues the message")
    s.check(qid and t.wait_log(rf"{qid}: hold: header Subject: hold-me from {ORIGIN}; "
                               rf".*: held for review", mark), "the hold line")
    s.check(qid and held(t, qid), "queued on hold (mailq marks it ID!)")


def test_edits(s, t):
    data = message("replace-this", extra=b"X-Secret: one\r\n\tfolded two\r\nX-Keep: 1\r\n")
    r, qid = transaction(t.port, data)
    s.reply(r, 250, None, "REPLACE and IGNORE")
    got = t.msg_content(qid) if qid else b""
    s.check(b"Subject: replaced this\r\n" in got and b"replace-this" not in got,
            f"REPLACE with $1: {got!r}")
    s.check(b"X-Secret" not in got and b"folded two" not in got,
            "IGNORE drops the whole folded header")
    s.check(b"X-Keep: 1\r\n\r\nhello\r\n" in got, "the rest as sent")
    r, qid = transaction(t.port, message("prepend-me"))
    got = t.msg_content(qid) if qid else b""
    s.check(b"X-Tagged: yes\r\nSubject: prepend-me\r\n" in got, f"PREPEND: {got!r}")


def test_warn(s, t):
    mark = t.log_mark()
    r, qid = transaction(t.port, message("warn-me"))
    s.reply(r, 250, None, "WARN accepts")
    s.check(qid and t.wait_log(rf"{qid}: warning: header Subject: warn-me from {ORIGIN}; "
                               rf"from=<{re.escape(FROM)}> to=<{re.escape(RCPT)}> proto=ESMTP "
                               r"helo=<client\.test>: watch this", mark), "the warning line")
    s.check(qid and queued(t, qid) is not None, "queued")


def test_redirect(s, t):
    mark = t.log_mark()
    r, qid = transaction(t.port, message("redirect-me"), rcpts=(RCPT, "carol@tern.test"))
    s.reply(r, 250, None, "REDIRECT accepts")
    s.check(qid and t.wait_log(rf"{qid}: redirect: header Subject: redirect-me from {ORIGIN};"
                               r".*: elsewhere@tern\.test", mark), "the redirect line")
    e = queued(t, qid) if qid else None
    got = (e or {}).get("recipients")
    s.eq(got, ["elsewhere@tern.test"], "every recipient replaced")


def test_folded(s, t):
    data = (f"From: <{FROM}>\r\nSubject: folded first\r\n second line\r\n\r\nhi\r\n").encode()
    r, _ = transaction(t.port, data)
    s.reply(r, 550, "5.7.1", "a folded header is matched whole")
    s.check(r.text.endswith("folded"), f"its text: {r.text!r}")


def test_body(s, t):
    r, _ = transaction(t.port, message("fine", body=b"one\r\nREJECT-THIS-LINE\r\ntwo\r\n"))
    s.reply(r, 550, "5.7.1", "a body line")
    s.check(r.text.endswith("body says no"), f"its text: {r.text!r}")
    r, qid = transaction(t.port, message("fine", body=b"one\r\ndrop this line\r\ntwo\r\n"))
    got = t.msg_content(qid) if qid else b""
    s.check(got.endswith(b"\r\n\r\none\r\ntwo\r\n"), f"IGNORE drops a body line: {got!r}")


def test_mime(s, t):
    body = (b"--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            b"--b1\r\nContent-Type: application/octet-stream;\r\n name=\"evil.exe\"\r\n\r\n"
            b"TVqQAAMAAAAEAAAA\r\n--b1--\r\n")
    data = message("invoice", body=body,
                   extra=b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n")
    r, _ = transaction(t.port, data)
    s.reply(r, 550, "5.7.1", "a part's Content-Type in mime_header_checks ($header_checks)")
    s.check(r.text.endswith("attachment refused"), f"its text: {r.text!r}")


def test_sendmail(s, t):
    env = dict(os.environ, TERN_CONFIG=t.conf)
    mark = t.log_mark()
    r = subprocess.run([SENDMAIL, "-t", "-i", "-f", FROM],
                       input=f"To: {RCPT}\nSubject: reject-me locally\n\nhi\n".encode(),
                       capture_output=True, env=env, timeout=60, cwd="/")
    s.check(r.returncode != 0, f"sendmail -t fails on a REJECT: exit {r.returncode}")
    s.check(b"message content rejected" in r.stderr, f"and says why: {r.stderr!r}")
    s.check(t.wait_log(r"[0-9A-F]{14}: reject: header Subject: reject-me locally from local; "
                       rf"from=<{re.escape(FROM)}> to=<{re.escape(RCPT)}>: 5\.7\.1 message "
                       r"content rejected", mark), "logged as Postfix's pickup path: from local")
    r = subprocess.run([SENDMAIL, "-t", "-i", "-f", FROM],
                       input=f"To: {RCPT}\nSubject: hold-me locally\n\nhi\n".encode(),
                       capture_output=True, env=env, timeout=60, cwd="/")
    s.eq(r.returncode, 0, f"sendmail -t with HOLD: {r.stderr!r}")
    m = t.wait_log(r"([0-9A-F]{14}): hold: header Subject: hold-me locally from local;", mark)
    s.check(m and held(t, m.group(1)),
            f"queued on hold: {m and m.group(1)} {ternlib.ternctl_run(t, 'queue').stdout!r}")


def test_listeners(s, t):
    r, qid = transaction(t.submission_port, message("reject-me on submission"))
    s.reply(r, 250, None, "submission_header_checks = (empty): no checks there")
    r, qid = transaction(REINJECT_PORT, message("reject-me re-injected",
                                                body=b"REJECT-THIS-LINE\r\n"))
    s.reply(r, 250, None, "the re-injection listener has no header or body checks by default")


def test_reload(s, t):
    r, _ = transaction(t.port, message("new-rule"))
    s.reply(r, 250, None, "before the reload")
    path = FILES["header_checks"]
    with open(path) as f:
        old = f.read()
    mark = t.log_mark()
    with open(path, "w") as f:
        f.write("/^Subject: new-rule/ REJECT 5.7.9 reloaded\n/^Subject: (broken/ X\n")
    r = ternlib.ternctl_run(t, "reload")
    s.check(t.wait_log(r"master\[\d+\]: error: \S+/header_checks:2: bad regular expression",
                       mark, 10),
            "a broken file at reload: the master logs FILE:LINE and keeps the old config")
    r, _ = transaction(t.port, message("new-rule"))
    s.reply(r, 250, None, "the old rules still in use")
    mark = t.log_mark()
    with open(path, "w") as f:
        f.write("/^Subject: new-rule/ REJECT 5.7.9 reloaded\n")
    r = ternlib.ternctl_run(t, "reload")
    s.eq(r.returncode, 0, f"ternctl reload: {r.stderr}")
    s.check(t.wait_log(r"smtpd\[\d+\]: reload: configuration", mark, 10), "smtpd reloaded")
    r, _ = transaction(t.port, message("new-rule"))
    s.reply(r, 550, "5.7.9", "the new rule after the reload")
    with open(path, "w") as f:
        f.write(old)


# ---- maps in restrictions ------------------------------------------------------------------


def test_maps(s, t):
    r, qid = transaction(t.port, message("via maps"))
    s.reply(r, 250, None, "accepted")
    got = t.msg_bytes(qid) if qid else b""
    s.check(got.startswith(b"X-Cidr: loopback\r\nReceived: "),
            f"cidr: 127.0.0.1 inside 'if 127.0.0.0/8' gave PREPEND: {got[:60]!r}")
    with t.raw() as c:
        c.cmd("EHLO client.test")
        c.cmd(f"MAIL FROM:<{FROM}>")
        r = c.cmd("RCPT TO:<blocked+x@tern.test>")
        s.reply(r, 554, "5.7.1", "regexp: in check_recipient_access")
        s.check("regexp blocked" in r.text, f"its text: {r.text!r}")
        r = c.cmd("RCPT TO:<free@tern.test>")
        s.reply(r, 250, None, "a recipient the regexp does not match")


# ---- ternd -n ------------------------------------------------------------------------------


def test_check_config(s):
    for name, spec, want in (
        ("header_checks", f"regexp:{FILES['bad_regexp']}",
         rf"^{re.escape(FILES['bad_regexp'])}:2: bad regular expression: "),
        ("smtpd_client_restrictions", f"check_client_access cidr:{FILES['bad_cidr']}",
         rf"^{re.escape(FILES['bad_cidr'])}:2: non-null host address bits in \"10\.0\.0\.1/8\""),
    ):
        t = ternlib.Tern(f"hchecks-n-{name}", {name: spec})
        try:
            r = subprocess.run([ternlib.TERND, "-n", "-c", t.conf], capture_output=True,
                               text=True, timeout=30)
            s.eq(r.returncode, 1, f"ternd -n with a bad {name} map: exit status")
            s.check(re.search(want, r.stderr, re.M), f"FILE:LINE on stderr: {r.stderr!r}")
        finally:
            t.cleanup()


try:
    suite.group("checks", COMMON, [
        ("REJECT: 550 5.7.1, no file, no queue entry, Postfix's log line", test_reject),
        ("REJECT after BDAT", test_reject_bdat),
        ("DISCARD", test_discard),
        ("HOLD: queued on hold", test_hold),
        ("REPLACE, IGNORE of a folded header, PREPEND", test_edits),
        ("WARN", test_warn),
        ("REDIRECT", test_redirect),
        ("a folded header matched whole", test_folded),
        ("body_checks: REJECT, IGNORE", test_body),
        ("MIME part headers", test_mime),
        ("sendmail -t", test_sendmail),
        ("per-listener overrides: submission, reinject", test_listeners),
        ("reload: new rules; a broken file keeps the old ones", test_reload),
    ])
    suite.group("maps", {
        "smtpd_client_restrictions": f"check_client_access cidr:{FILES['client_cidr']}",
        "smtpd_recipient_restrictions": (f"check_recipient_access regexp:{FILES['rcpt_regexp']},"
                                         " permit_mynetworks, reject"),
    }, [
        ("cidr: and regexp: in restrictions", test_maps),
    ])
    suite.case("ternd -n: a bad regexp and a bad cidr line as FILE:LINE", test_check_config)
finally:
    shutil.rmtree(FILES_DIR, ignore_errors=True)
suite.finish()
