"""End-to-end tests of sendmail, mailq and newaliases (doc/sendmail.md)
against the real ternd:

  queue group    (local mail stays queued, remote mail goes to a dead
                 relayhost): bare LF arrives CRLF; a lone dot with and
                 without -i; a 20 MiB message streamed (sendmail's memory
                 stays far below it); a non-root caller's uid in the
                 Received header and its login in From:; -bs as a byte
                 proxy; mailq shows a deferred message with its reason and
                 `sendmail -q` delivers it once the destination is up; bad
                 flag and bad address exit 64 and 65.
  local group    (the local agent delivers into Maildirs): PHP mail() with
                 sendmail_path="sendmail -t -i" arrives with From, Date and
                 Message-Id; -t with To, Cc and Bcc reaches all three
                 without the Bcc header; -f gives the Return-Path; an
                 unknown recipient exits 67 (EX_NOUSER) and queues nothing;
                 newaliases makes a new alias effective.
  limits group   message_size_limit exits 65 (EX_DATAERR); after ternd
                 stopped, sendmail exits 75 (EX_TEMPFAIL) and says why.

Needs root (useradd, running sendmail as another user).
"""
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakemx  # noqa: E402
import ternlib  # noqa: E402
from ternlib import TestFailure, wait_until  # noqa: E402

suite = ternlib.Suite("sendmail")

SENDMAIL = os.path.join(ternlib.BUILD, "bin", "sendmail")
MAILQ = os.path.join(ternlib.BUILD, "bin", "mailq")
NEWALIASES = os.path.join(ternlib.BUILD, "bin", "newaliases")
PID = os.getpid()
CALLER = f"tsc{PID}"     # a non-root user who runs sendmail
USER = f"tsu{PID}"       # local recipients with Maildirs
USER2 = f"tsv{PID}"
USER3 = f"tsw{PID}"
ALIAS = f"tsa{PID}"      # made an alias of USER by newaliases

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL = 64, 65, 67, 75


def useradd(name):
    r = subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell",
                        "/usr/sbin/nologin", "--comment", f"Test {name},,,", name],
                       capture_output=True, text=True)
    if r.returncode != 0 and "already exists" not in r.stderr:
        raise TestFailure(f"useradd {name}: {r.stderr.strip()}")


def sendmail(t, args, data=b"", user=None, prog=SENDMAIL, env=None, timeout=120):
    """Run sendmail with TERN_CONFIG=t.conf (as user when given); returns
    the CompletedProcess (bytes)."""
    e = dict(os.environ, TERN_CONFIG=t.conf)
    e.pop("NAME", None)
    e.update(env or {})
    pre = None
    if user is not None:
        pw = pwd.getpwnam(user)

        def pre():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
    return subprocess.run([prog, *args], input=data, capture_output=True, env=e,
                          preexec_fn=pre, timeout=timeout, cwd="/")


def one_line_error(s, r, code, what):
    s.eq(r.returncode, code, f"{what}: exit status")
    err = r.stderr.decode(errors="replace")
    s.check(err.count("\n") == 1 and err.startswith("sendmail: "),
            f"{what}: one line 'sendmail: reason' on stderr: {err!r}")


def content(t, qid):
    """A queued message after our Received header (its first line and the
    TAB-indented ones after it)."""
    data = t.msg_bytes(qid)
    if not data.startswith(b"Received: "):
        raise TestFailure(f"{qid} does not start with our Received header: {data[:80]!r}")
    pos = data.find(b"\r\n") + 2
    while data.startswith(b"\t", pos):
        pos = data.find(b"\r\n", pos) + 2
    return data[pos:]


def run_measured(t, args, infile):
    """sendmail ARGS < infile under GNU time(1) (scripts/install-deps.sh
    installs it): (exit status, sendmail's own peak RSS in KiB). time(1)
    forks sendmail from its own small process, so the figure is
    sendmail's, not ours."""
    env = dict(os.environ, TERN_CONFIG=t.conf)
    with open(infile, "rb") as f:
        r = subprocess.run(["/usr/bin/time", "-f", "maxrss=%M", SENDMAIL, *args], stdin=f,
                           capture_output=True, env=env, timeout=300)
    m = re.search(rb"maxrss=(\d+)", r.stderr)
    if not m:
        raise TestFailure(f"no maxrss from time(1): {r.stderr[-300:]!r}")
    return r.returncode, int(m.group(1))


def new_queue_ids(t, before):
    return sorted(set(t.queue_by_id()) - before)


def queued_one(s, t, before, what):
    """The id of the one message queued since before (bounded wait)."""
    ids = wait_until(lambda: new_queue_ids(t, before), 10)
    if not s.check(ids and len(ids) == 1, f"{what}: one new message in the queue ({ids})"):
        return None
    return ids[0]


# ---- the queue group ---------------------------------------------------------------------


def test_bare_lf(s, t):
    before = set(t.queue_by_id())
    r = sendmail(t, ["bob@tern.test"], b"Subject: lf\n\nline one\nline two\r\nthree\n")
    s.eq(r.returncode, 0, f"exit 0 ({r.stderr!r})")
    qid = queued_one(s, t, before, "bare LF")
    if qid is None:
        return
    c = content(t, qid)
    s.check(b"\nline one\r\nline two\r\nthree\r\n" in c and b"\r\r" not in c,
            f"every line ends in CRLF in the queue: {c[-60:]!r}")
    s.check(re.search(rb"(?m)^Message-Id: <\d{14}\.[0-9a-f.]+@tern\.test>\r$", c),
            "Message-Id added")
    s.check(re.search(rb"(?m)^Date: \w{3}, [ \d]\d \w{3} \d{4} ", c), "Date added")
    s.check(re.search(rb"(?m)^From: .*<root@tern\.test>\r$", c) or
            re.search(rb"(?m)^From: root@tern\.test\r$", c), "From added for root")


def test_lone_dot(s, t):
    before = set(t.queue_by_id())
    r = sendmail(t, ["bob@tern.test"], b"Subject: dot\n\nbefore\n.\nafter\n")
    s.eq(r.returncode, 0, "without -i: exit 0")
    qid = queued_one(s, t, before, "lone dot")
    if qid is not None:
        c = content(t, qid)
        s.check(c.endswith(b"\r\nbefore\r\n") and b"after" not in c,
                f"the lone dot ended the message: {c[-40:]!r}")
    before = set(t.queue_by_id())
    r = sendmail(t, ["-i", "bob@tern.test"], b"Subject: dot\n\nbefore\n.\n..\n.x\nafter\n")
    s.eq(r.returncode, 0, "with -i: exit 0")
    qid = queued_one(s, t, before, "lone dot with -i")
    if qid is not None:
        c = content(t, qid)
        s.check(c.endswith(b"\r\nbefore\r\n.\r\n..\r\n.x\r\nafter\r\n"),
                f"with -i the dots are text, unstuffed in the queue: {c[-40:]!r}")
    before = set(t.queue_by_id())
    r = sendmail(t, ["-oi", "bob@tern.test"], b"Subject: oi\n\n.\n")
    s.eq(r.returncode, 0, "-oi: exit 0")
    qid = queued_one(s, t, before, "-oi")
    if qid is not None:
        s.check(content(t, qid).endswith(b"\r\n\r\n.\r\n"), "-oi is -i")


def test_big(s, t):
    size = 20 * 1024 * 1024
    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n"
    body = line * (size // len(line) + 1)
    small = os.path.join(t.dir, "small.txt")
    with open(small, "wb") as f:
        f.write(b"Subject: small\n\n" + line * 10)
    rc, base_kib = run_measured(t, ["-i", "bob@tern.test"], small)
    s.eq(rc, 0, "a small message first: exit 0")
    before = set(t.queue_by_id())
    infile = os.path.join(t.dir, "big.txt")
    with open(infile, "wb") as f:
        f.write(b"Subject: big\n\n" + body)
    rc, maxrss_kib = run_measured(t, ["-i", "bob@tern.test"], infile)
    s.eq(rc, 0, "20 MiB: exit 0")
    # Compared with the small message's, so the sanitizers' own memory
    # does not count: streaming grows it by buffers, not by the message.
    s.check((maxrss_kib - base_kib) * 1024 < size // 8,
            f"sendmail streamed it: peak RSS {maxrss_kib} KiB against {base_kib} KiB for "
            f"a small message (the message is {size >> 10} KiB)")
    qid = queued_one(s, t, before, "20 MiB")
    if qid is not None:
        c = content(t, qid)
        s.check(c.endswith(body.replace(b"\n", b"\r\n")), "the body arrived whole, in CRLF")


def test_uid(s, t):
    uid = pwd.getpwnam(CALLER).pw_uid
    before = set(t.queue_by_id())
    mark = t.log_mark()
    r = sendmail(t, ["bob@tern.test"], b"Subject: uid\n\nhi\n", user=CALLER)
    s.eq(r.returncode, 0, f"a non-root caller: exit 0 ({r.stderr!r})")
    qid = queued_one(s, t, before, "non-root")
    if qid is None:
        return
    data = t.msg_bytes(qid)
    s.check(data.startswith(f"Received: by tern.test (tern, from userid {uid})\r\n\tid {qid}; "
                            .encode()), f"Postfix's pickup Received form: {data[:90]!r}")
    s.check(f"\r\nFrom: Test {CALLER} <{CALLER}@tern.test>\r\n".encode() in data,
            "From: the gecos name and login@myorigin")
    s.eq(t.queue_by_id()[qid].get("sender"), f"{CALLER}@tern.test", "the envelope sender")
    s.check(t.wait_log(rf"{qid}: client=localhost\[127\.0\.0\.1\], uid={uid}\b", mark),
            "smtpd logs the uid with the queue id")


def test_bs(s, t):
    before = set(t.queue_by_id())
    script = (b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bob@tern.test>\r\n"
              b"DATA\r\nSubject: bs\r\n\r\nvia -bs\r\n.\r\nQUIT\r\n")
    r = sendmail(t, ["-bs"], script)
    out = r.stdout.decode(errors="replace")
    s.eq(r.returncode, 0, "-bs: exit 0")
    s.check(out.startswith("220 ") and "250 2.0.0 Ok: queued as" in out and "221 " in out,
            f"-bs relays smtpd's replies: {out!r}")
    qid = queued_one(s, t, before, "-bs")
    if qid is not None:
        s.check(content(t, qid).endswith(b"via -bs\r\n"), "the -bs message is queued")


def test_usage_errors(s, t):
    r = sendmail(t, ["-z", "bob@tern.test"])
    one_line_error(s, r, EX_USAGE, "bad flag")
    s.check(b"illegal option -- z" in r.stderr, "names the flag")
    r = sendmail(t, ["bad address@@x"], b"Subject: x\n\nx\n")
    one_line_error(s, r, EX_DATAERR, "bad address")
    r = sendmail(t, [], b"Subject: x\n\nx\n")
    one_line_error(s, r, EX_USAGE, "no recipient")
    r = sendmail(t, ["-t"], b"Subject: x\n\nx\n")
    one_line_error(s, r, EX_USAGE, "-t without recipient headers")
    r = sendmail(t, ["-C", "/nonexistent/tern.conf", "bob@tern.test"], b"x\n")
    one_line_error(s, r, 66, "missing configuration (EX_NOINPUT)")


def test_mailq_and_flush(s, t):
    before = set(t.queue_by_id())
    mark = t.log_mark()
    r = sendmail(t, ["-f", "alice@example.org", "far@remote.test"], b"Subject: far\n\nfar\n")
    s.eq(r.returncode, 0, "queued for the dead relayhost")
    qid = queued_one(s, t, before, "remote")
    if qid is None:
        return
    if not s.check(t.wait_log(rf"{qid}: to=<far@remote\.test>.*status=deferred", mark, 20),
                   "deferred: the relayhost is down"):
        return
    # The agent logs the deferral before qmgr has recorded it: wait
    # (bounded) until the listing shows the reason.
    pattern = rf"(?m)^{qid}\s+\d+ .* alice@example\.org\n\((.+)\)\n\s+far@remote\.test$"

    def listing():
        got = sendmail(t, [], prog=MAILQ)
        found = re.search(pattern, got.stdout.decode(errors="replace"))
        return (got, found) if found else None
    r, m = wait_until(listing, 10) or (sendmail(t, [], prog=MAILQ), None)
    out = r.stdout.decode(errors="replace")
    s.eq(r.returncode, 0, "mailq: exit 0")
    s.check(m and ("refused" in m.group(1).lower() or "connect" in m.group(1).lower()),
            f"mailq shows the message, its reason and its recipient:\n{out}")
    r2 = sendmail(t, ["-bp"])
    # The same listing, but a second later "next try in 4m57s" may read
    # 4m56s: the durations are masked.

    def masked(b):
        return re.sub(rb"next try in [0-9dhms]+", b"next try in T", b)
    s.eq(masked(r2.stdout), masked(r.stdout), "sendmail -bp is mailq")
    # Another user: one clear line, not the spool's EACCES.
    for args, prog, what in (([], MAILQ, "listing the queue"), (["-q"], SENDMAIL,
                                                                 "flushing the queue")):
        r3 = sendmail(t, args, user="nobody", prog=prog)
        err = r3.stderr.decode(errors="replace")
        s.eq(r3.returncode, 77, f"{os.path.basename(prog)} {args} as nobody: EX_NOPERM ({err!r})")
        s.check(f"permission denied: {what} needs root or the mail owner's group" in err and
                "Permission denied" not in err, f"one clear line: {err!r}")
    mx = fakemx.FakeMX("127.0.0.1", t.relay_port).start()
    try:
        r = sendmail(t, ["-q"])
        s.eq(r.returncode, 0, f"sendmail -q: exit 0 ({r.stderr!r})")
        got = mx.wait_for(1, timeout=20)
        if s.check(got, "the flush delivered it to the destination now up"):
            s.eq(got[0].sender, "alice@example.org", "-f is the envelope sender")
            s.check(b"\r\n\r\nfar\r\n" in got[0].data, "the content")
    finally:
        mx.stop()
    r = sendmail(t, ["-qR", "remote.test"])
    s.eq(r.returncode, 0, f"sendmail -qR SITE: exit 0 ({r.stderr!r})")


# ---- the local group -----------------------------------------------------------------


def maildir_new(user):
    return ternlib.maildir_new(MAILDIRS, user)


def wait_maildir(user, before, timeout=15):
    def found():
        new = [p for p in maildir_new(user) if p not in before]
        return new[0] if new else None
    return wait_until(found, timeout)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def head_of(data):
    return data.split(b"\n\n", 1)[0]


def test_php(s, t):
    before = maildir_new(USER)
    code = (f'$ok = mail("{USER}@tern.test", "PHP subject", "Line 1\\nLine 2\\n.\\nLine 4", '
            f'"X-Mailer: php-test"); exit($ok ? 0 : 1);')
    r = subprocess.run(["php", "-n", "-d", f"sendmail_path={SENDMAIL} -t -i", "-r", code],
                       capture_output=True, env=dict(os.environ, TERN_CONFIG=t.conf),
                       timeout=60)
    s.eq(r.returncode, 0, f"mail() returned true ({r.stdout!r} {r.stderr!r})")
    path = wait_maildir(USER, before)
    if not s.check(path, "the PHP message reached the Maildir"):
        return
    data = read(path)
    head = head_of(data)
    for name in (b"From", b"Date", b"Message-Id", b"Subject", b"X-Mailer", b"To"):
        s.check(re.search(rb"(?m)^" + name + rb": ", head), f"{name.decode()}: present")
    s.check(re.search(rb"(?m)^Received: by tern\.test \(tern, from userid 0\)$", head),
            "Received: ... from userid 0")
    s.check(data.endswith(b"\n\nLine 1\nLine 2\n.\nLine 4\n"),
            f"-i keeps the lone dot of the body: {data[-40:]!r}")


def test_t_cc_bcc(s, t):
    befores = {u: maildir_new(u) for u in (USER, USER2, USER3)}
    msg = (f"To: Main <{USER}@tern.test>\nCc: {USER2}@tern.test (copy)\n"
           f"Bcc: secret: {USER3}@tern.test;\nSubject: three\n\nbody\n").encode()
    r = sendmail(t, ["-t"], msg)
    s.eq(r.returncode, 0, f"-t: exit 0 ({r.stderr!r})")
    for u in (USER, USER2, USER3):
        path = wait_maildir(u, befores[u])
        if s.check(path, f"{u} got it"):
            data = read(path)
            s.check(b"Subject: three" in data and not re.search(rb"(?mi)^bcc:", head_of(data)),
                    f"{u}: no Bcc header")


def test_return_path(s, t):
    before = maildir_new(USER)
    r = sendmail(t, ["-f", "bounces@example.org", "-F", "Web Site", USER],
                 b"Subject: rp\n\nx\n")
    s.eq(r.returncode, 0, f"-f: exit 0 ({r.stderr!r})")
    path = wait_maildir(USER, before)
    if s.check(path, "delivered"):
        data = read(path)
        s.check(data.startswith(b"Return-Path: <bounces@example.org>\n"),
                f"-f gives the Return-Path: {data[:60]!r}")
        s.check(b"\nFrom: Web Site <bounces@example.org>\n" in data, "-F names the From")


def test_nouser_and_newaliases(s, t):
    before = set(t.queue_by_id())
    r = sendmail(t, [f"{ALIAS}@tern.test"], b"Subject: alias\n\nx\n")
    one_line_error(s, r, EX_NOUSER, "unknown local recipient")
    s.check(b"5.1.1" in r.stderr, f"smtpd's reason: {r.stderr!r}")
    s.eq(new_queue_ids(t, before), [], "nothing was queued")
    with open(ALIASES, "a") as f:
        f.write(f"{ALIAS}: {USER}\n")
    r = sendmail(t, [], prog=NEWALIASES)
    s.eq(r.returncode, 0, f"newaliases: exit 0 ({r.stderr!r})")
    before_box = maildir_new(USER)

    def accepted():
        return sendmail(t, [f"{ALIAS}@tern.test"], b"Subject: alias works\n\nx\n").returncode == 0
    # lmdb maps are re-checked by their readers at most once a second.
    s.check(wait_until(accepted, 10, 0.2), "the new alias is accepted after newaliases")
    path = wait_maildir(USER, before_box)
    if s.check(path, f"mail to {ALIAS} reached {USER}"):
        s.check(b"Subject: alias works" in read(path), "the alias's message")


# ---- the limits group ----------------------------------------------------------------


def test_size_limit(s, t):
    before = set(t.queue_by_id())
    r = sendmail(t, ["bob@tern.test"], b"Subject: big\n\n" + b"x" * 200 * 1024 + b"\n")
    one_line_error(s, r, EX_DATAERR, "over message_size_limit")
    s.eq(new_queue_ids(t, before), [], "nothing was queued")


def test_reload_keeps_socket(s, t):
    """A reload that moves a TCP listener hands smtpd every socket again;
    the sendmail socket stays the same one and keeps working."""
    new_port = ternlib.free_ports(1)[0]
    with open(t.conf) as f:
        text = f.read()
    with open(t.conf, "w") as f:
        f.write(text.replace(f"smtpd_listen = 127.0.0.1:{t.port}",
                             f"smtpd_listen = 127.0.0.1:{new_port}"))
    mark = t.log_mark()
    os.kill(t.master_pid, signal.SIGHUP)
    s.check(t.wait_log(r"reload: now listening on 3 sockets", mark, 10), "smtpd took the sockets")
    t.port = new_port
    before = set(t.queue_by_id())
    r = sendmail(t, ["bob@tern.test"], b"Subject: after reload\n\nx\n")
    s.eq(r.returncode, 0, f"sendmail after the reload: exit 0 ({r.stderr!r})")
    queued_one(s, t, before, "after the reload")


def after_stop_tempfail(s, t):
    r = sendmail(t, ["bob@tern.test"], b"Subject: down\n\nx\n")
    one_line_error(s, r, EX_TEMPFAIL, "ternd is not running")
    s.check(b"not running" in r.stderr, f"says why: {r.stderr!r}")


# ---- set-up ----------------------------------------------------------------------------


for u in (CALLER, USER, USER2, USER3):
    useradd(u)
MAILDIRS = tempfile.mkdtemp(prefix="tern-e2e-sendmail-box-", dir="/var/tmp")
os.chmod(MAILDIRS, 0o1777)
SHARED, FILES = ternlib.shared_files("sendmail", {"aliases": "postmaster: root\n"})
ALIASES = FILES["aliases"]
r = subprocess.run([ternlib.TERNCTL, "map", "build", "--aliases", ALIASES], capture_output=True,
                   text=True)
if r.returncode != 0:
    raise SystemExit(f"ternctl map build: {r.stderr}")
os.chmod(ALIASES + ".lmdb", 0o644)

RELAY_PORT = ternlib.free_ports(1)[0]
_orig_init = ternlib.Tern.__init__


def _tern_init(self, name, params=None):
    _orig_init(self, name, params)
    self.relay_port = RELAY_PORT


ternlib.Tern.__init__ = _tern_init

try:
    suite.group("queue", {
        "relayhost": f"[127.0.0.1]:{RELAY_PORT}",
        "message_size_limit": "40m",
    }, [
        ("bare LF arrives CRLF, missing headers added", test_bare_lf),
        ("a lone dot with and without -i", test_lone_dot),
        ("a 20 MiB message streamed", test_big),
        ("a non-root caller's uid in Received", test_uid),
        ("-bs is a byte proxy to smtpd", test_bs),
        ("bad flag, bad address, no recipient, missing config", test_usage_errors),
        ("mailq shows the deferral; sendmail -q delivers", test_mailq_and_flush),
    ])
    suite.group("local", {
        "local_transport": "local",
        "default_transport": "error:5.7.1 no relaying in this test",
        "mail_spool_directory": MAILDIRS + "/",
        "alias_maps": f"lmdb:{ALIASES}",
        "local_recipient_maps": "unix:passwd.byname, $alias_maps",
    }, [
        ("PHP mail() with sendmail -t -i", test_php),
        ("-t with To, Cc and Bcc", test_t_cc_bcc),
        ("-f sets the Return-Path, -F the From name", test_return_path),
        ("EX_NOUSER, then newaliases makes the alias work", test_nouser_and_newaliases),
    ])
    suite.group("limits", {"message_size_limit": "100000"}, [
        ("message_size_limit is EX_DATAERR", test_size_limit),
        ("a reload that moves a listener keeps the sendmail socket", test_reload_keeps_socket),
    ], after_stop=after_stop_tempfail)
finally:
    shutil.rmtree(MAILDIRS, ignore_errors=True)
    shutil.rmtree(SHARED, ignore_errors=True)
    for u in (CALLER, USER, USER2, USER3):
        subprocess.run(["userdel", u], capture_output=True)
suite.finish()
