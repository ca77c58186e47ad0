"""End-to-end tests of ternctl against a real ternd: every verb (queue and
its verbs, queue show, stats, trace, reload, stop), who may run them (a
caller outside the mail owner's group is refused with EX_NOPERM, a member
is served through the group-readable spool), and the log read by
pflogsumm (Debian's package) giving the counts ternd saw.

The world: transport_maps send ok.test to the in-process discard:
transport (delivered), bounce.test to error: (bounced, the DSN to the
sender at ok.test is discarded, so delivered), defer.test to retry:
(deferred for ever).
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import TestFailure, wait_until, send_message, ternctl_run  # noqa: E402

suite = ternlib.Suite("ternctl")

EX_USAGE, EX_NOINPUT, EX_UNAVAILABLE, EX_NOPERM = 64, 66, 69, 77

MAPS_DIR, _files = ternlib.shared_files("ternctl-maps", {
    "transport": ("ok.test      discard:\n"
                  "bounce.test  error:5.1.1 no such user here\n"
                  "defer.test   retry:4.4.1 remote end not ready\n"),
    "retry_rules": "*  *  F,1d,1h\n",
    "access": "refused.test  REJECT no mail for refused.test here\n",
})
TRANSPORT = _files["transport"]

PARAMS = {
    "transport_maps": f"texthash:{TRANSPORT}",
    "retry_rules": _files["retry_rules"],
    "default_transport": "retry:4.4.0 nowhere to go in this test",
    "smtpd_recipient_restrictions": f"check_recipient_access texthash:{_files['access']}",
}


def ctl(t, *args):
    return ternctl_run(t, *args)


def ctl_json(s, t, *args):
    r = ctl(t, *args)
    if r.returncode != 0:
        raise TestFailure(f"ternctl {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise TestFailure(f"ternctl {' '.join(args)}: not JSON ({e}): {r.stdout[:300]!r}")


def as_user(t, groups, *args):
    """ternctl as nobody, with the supplementary groups given."""
    cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup"]
    cmd += ["--groups=" + ",".join(groups)] if groups else ["--clear-groups"]
    return subprocess.run(cmd + [ternlib.TERNCTL, "-c", t.conf, *args], capture_output=True,
                          text=True, timeout=60)


def need_log(t, pattern, mark=0, timeout=10):
    m = t.wait_log(pattern, mark=mark, timeout=timeout)
    if not m:
        raise TestFailure(f"no log line matching {pattern!r}\n{t.tails(10)}")
    return m


def gone(t, qid):
    return qid not in t.queue_by_id()


def wait_gone(t, qid, what):
    if not wait_until(lambda: gone(t, qid), 20):
        raise TestFailure(f"{what} {qid} still in the queue")


def wait_deferred(t, qid):
    def state():
        e = t.queue_by_id().get(qid)
        return e and all(d["state"] == "deferred" for d in e["delivery"])
    if not wait_until(state, 20):
        raise TestFailure(f"{qid} not deferred: {t.queue_by_id().get(qid)}")


# ---- access ----

def test_refused(s, t):
    for args in (["queue"], ["queue", "show", "0123456789ABCD"], ["stats"],
                 ["queue", "flush"], ["reload"], ["stop"]):
        r = as_user(t, [], *args)
        s.eq(r.returncode, EX_NOPERM, f"{args}: exit status")
        s.check("ternctl: permission denied:" in r.stderr and "(root or group tern only)" in
                r.stderr, f"{args}: stderr {r.stderr!r}")
        s.check("Permission denied" not in r.stderr and "EACCES" not in r.stderr,
                f"{args}: a raw system error: {r.stderr!r}")
    s.check(t.running(), "ternd still running")


def test_group_member(s, t):
    qid = send_message(t, "a@ok.test", ["x@defer.test"], subject="for the group")
    wait_deferred(t, qid)
    r = as_user(t, ["tern"], "queue", "--json")
    s.eq(r.returncode, 0, f"queue --json as a member of group tern: {r.stderr}")
    s.check(qid in r.stdout, f"the member sees {qid}")
    r = as_user(t, ["tern"], "stats", "--json")
    s.eq(r.returncode, 0, f"stats as a member: {r.stderr}")
    r = as_user(t, ["tern"], "queue", "show", qid)
    s.eq(r.returncode, 0, f"queue show as a member: {r.stderr}")
    s.check("body of for the group" in r.stdout or "hello" in r.stdout,
            f"the member reads the body: {r.stdout[-300:]!r}")
    # reload and stop signal the root master: a member is told so.
    r = as_user(t, ["tern"], "reload")
    s.eq(r.returncode, EX_NOPERM, f"reload as a member: {r.stderr}")
    s.check("permission denied" in r.stderr and "root only" in r.stderr, r.stderr)
    spool = t.spool
    for d, mode in (("private", 0o750), ("index", 0o750), ("msg", 0o750)):
        s.eq(os.stat(os.path.join(spool, d)).st_mode & 0o777, mode, f"{d}/ mode")
    s.eq(os.stat(os.path.join(spool, "private", "qmgr")).st_mode & 0o777, 0o660,
         "private/qmgr mode")
    s.eq(os.stat(os.path.join(spool, "master.lock")).st_mode & 0o777, 0o600, "master.lock mode")


# ---- queue ----

def test_queue_show_deferred(s, t):
    qid = send_message(t, "sender@ok.test", ["later@defer.test"], subject="show me",
                       body=b"first body line\r\n\x1b[31mred\r\n", rcpt_params=" NOTIFY=FAILURE,DELAY")
    wait_deferred(t, qid)
    r = ctl(t, "queue", "show", qid)
    s.eq(r.returncode, 0, f"queue show: {r.stderr}")
    out = r.stdout
    for want in (f"Queue ID:    {qid}", "Sender:      <sender@ok.test>", "Client:",
                 "127.0.0.1", "<later@defer.test>  deferred, 1 attempt", "next attempt:",
                 "last error: ", "remote end not ready", "NOTIFY: FAILURE,DELAY",
                 "ORCPT: ", f"--- message {qid} ---", "Subject: show me", "first body line",
                 "\\033[31mred"):
        s.check(want in out, f"queue show has {want!r}:\n{out}")
    s.check("\x1b" not in out and "\r" not in out, "no escape or CR reaches the terminal")
    j = ctl_json(s, t, "queue", "show", qid.lower(), "--json")
    s.eq(j["id"], qid, "json id")
    s.eq(j["sender"], "sender@ok.test", "json sender")
    s.eq(j["client_addr"], "127.0.0.1", "json client")
    rc = j["recipients"][0]
    s.eq((rc["address"], rc["state"], rc["notify"]),
         ("later@defer.test", "deferred", ["FAILURE", "DELAY"]), "json recipient")
    s.check(rc["attempts"] >= 1 and rc["next_attempt"] > rc["last_attempt"] > 0,
            f"json attempts and times: {rc}")
    s.check("not ready" in (rc["last_error"] or ""), f"json last_error {rc}")
    r = ctl(t, "queue", "show", "FFFFFFFFFFFFFF")
    s.eq(r.returncode, EX_NOINPUT, f"show of an unknown id: {r.stderr}")
    r = ctl(t, "queue", "show", "../../etc/passwd")
    s.eq(r.returncode, EX_USAGE, f"show of a bad id: {r.stderr}")


def test_queue_verbs(s, t):
    qid = send_message(t, "a@ok.test", ["held@defer.test"], subject="verbs")
    wait_deferred(t, qid)
    r = ctl(t, "queue", "hold", qid)
    s.eq(r.returncode, 0, f"hold: {r.stdout}{r.stderr}")
    s.check(f"{qid}!" in ctl(t, "queue").stdout, "mailq marks the held message with !")
    s.eq(ctl_json(s, t, "queue", "show", qid, "--json")["held"], True, "show: held")
    s.eq(ctl(t, "queue", "release", qid).returncode, 0, "release")
    s.eq(ctl(t, "queue", "flush", qid).returncode, 0, "flush")
    s.eq(ctl(t, "queue", "requeue", qid).returncode, 0, "requeue")
    r = ctl(t, "queue", "delete", "ALL")
    s.eq(r.returncode, EX_USAGE, "delete ALL without --yes")
    r = ctl(t, "queue", "delete", qid)
    s.eq(r.returncode, 0, f"delete: {r.stdout}{r.stderr}")
    wait_gone(t, qid, "deleted message")
    r = ctl(t, "queue", "delete", qid)
    s.eq(r.returncode, EX_NOINPUT, "delete again: nothing matched")


# ---- stats ----

def test_stats(s, t):
    before = ctl_json(s, t, "stats", "--json")
    ok = send_message(t, "a@ok.test", ["one@ok.test"], subject="delivered")
    bad = send_message(t, "a@ok.test", ["nobody@bounce.test"], subject="bounced")
    wait_gone(t, ok, "delivered message")
    wait_gone(t, bad, "bounced message")

    def settled():
        st = ctl_json(s, t, "stats", "--json")
        # the bounce's DSN is discarded too: 2 delivered in all
        return st if st["delivered"] - before["delivered"] >= 2 else None
    after = wait_until(settled, 20)
    if not after:
        raise TestFailure("stats never counted the deliveries")
    s.eq(after["received"] - before["received"], 2, "received")
    s.eq(after["delivered"] - before["delivered"], 2, "delivered (one, and the DSN)")
    s.eq(after["bounced"] - before["bounced"], 1, "bounced")
    s.check(after["queue"]["deferred"] >= 1, f"queue by state: {after['queue']}")
    dests = {(d["transport"], d["nexthop"]): d for d in after["destinations"]}
    s.check(any(tr == "retry" and d["waiting"] >= 1 for (tr, _), d in dests.items()),
            f"the retry destination has recipients waiting: {after['destinations']}")
    r = ctl(t, "stats")
    s.eq(r.returncode, 0, "stats (text)")
    for want in ("messages received", "recipients delivered", "recipients bounced",
                 "queue: ", "destination", "retry:"):
        s.check(want in r.stdout, f"stats text has {want!r}:\n{r.stdout}")


# ---- trace ----

def test_trace(s, t):
    qid = send_message(t, "tracer@ok.test", ["gone@bounce.test"], subject="trace me")
    wait_gone(t, qid, "bounced message")
    dsn = need_log(t, rf"{qid}: sender non-delivery notification: ([0-9A-F]{{14}})").group(1)
    wait_gone(t, dsn, "the DSN")
    need_log(t, rf"{dsn}: removed")
    r = ctl(t, "trace", "--to", "gone@bounce.test")
    s.eq(r.returncode, 0, f"trace --to: {r.stderr}")
    out = r.stdout
    s.check(f"*** {qid}  from=<tracer@ok.test>" in out, f"trace names the message:\n{out}")
    s.check(f"*** {dsn}  from=<>  [made from {qid}]" in out, f"trace follows the bounce:\n{out}")
    for want in (f"{qid}: client=", f"{qid}: from=<tracer@ok.test>", f"{qid}: to=<gone@bounce.test>",
                 f"{qid}: removed", f"{dsn}: to=<tracer@ok.test>", f"{dsn}: removed"):
        s.check(want in out, f"trace has {want!r}")
    s.check(out.index(f"*** {qid}") < out.index(f"*** {dsn}"), "time order")
    s.check("trace me" not in out and "one@ok.test" not in out, "only the traced messages")
    j = ctl_json(s, t, "trace", "--from", "tracer@ok.test", "--json")
    s.eq([(e["id"], e["parent"]) for e in j], [(qid, None), (dsn, qid)], "trace --from --json")
    j = ctl_json(s, t, "trace", "--id", dsn, "--since", "1h", "--log", t.logfile, "--json")
    s.eq([e["id"] for e in j], [qid, dsn], "trace --id of the DSN finds its message")
    # A refusal before any queue id: the NOQUEUE line, alone.
    with t.raw() as c:
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<tracer@ok.test>")
        s.eq(c.cmd("RCPT TO:<x@refused.test>").code, 554, "RCPT refused by the access map")
        c.cmd("QUIT")
    need_log(t, r"NOQUEUE: reject: RCPT from .*to=<x@refused\.test>")
    r = ctl(t, "trace", "--to", "x@refused.test")
    s.eq(r.returncode, 0, f"trace --to a refused recipient: {r.stderr}")
    s.check("*** NOQUEUE\n" in r.stdout and "no mail for refused.test here" in r.stdout,
            f"trace shows the refusal:\n{r.stdout}")
    j = ctl_json(s, t, "trace", "--from", "tracer@ok.test", "--json")
    s.eq([e["id"] for e in j], [qid, dsn, "NOQUEUE"], "trace --from: messages and refusal in time order")
    r = ctl(t, "trace", "--to", "nobody-at-all@nowhere.test")
    s.eq(r.returncode, 1, "trace of nothing: exit 1, like grep")
    s.eq(ctl(t, "trace").returncode, EX_USAGE, "trace without a criterion")


# ---- reload and stop ----

def test_reload(s, t):
    with open(TRANSPORT, "a") as f:
        f.write("late.test    error:5.7.1 added by the reload\n")
    mark = t.log_mark()
    r = ctl(t, "reload")
    s.eq(r.returncode, 0, f"reload: {r.stdout}{r.stderr}")
    s.check(f"pid {t.master_pid}" in r.stdout, f"reload names the master: {r.stdout}")
    need_log(t, r"tern/qmgr\[\d+\]: reload: configuration", mark=mark)
    qid = send_message(t, "a@ok.test", ["who@late.test"], subject="after reload")
    need_log(t, rf"{qid}: to=<who@late.test>.*status=bounced \(added by the reload\)", mark=mark)
    # A configuration with errors is refused before the master hears of it.
    bad = os.path.join(t.dir, "bad.conf")
    with open(t.conf) as f, open(bad, "w") as g:
        g.write(f.read() + "this is not a parameter line\n")
    r = subprocess.run([ternlib.TERNCTL, "-c", bad, "reload"], capture_output=True, text=True,
                       timeout=30)
    s.eq(r.returncode, 78, f"reload with a broken file: EX_CONFIG ({r.stderr})")
    s.check(f"{bad}:" in r.stderr, f"FILE:LINE message: {r.stderr}")
    s.check(t.running(), "ternd still running")
    # ternctl with another file (the same spool) checks the master's file,
    # the one the master will read, not its own.
    other = os.path.join(t.dir, "other.conf")
    with open(t.conf) as f:
        good = f.read()
    with open(other, "w") as g:
        g.write(good)
    try:
        with open(t.conf, "a") as f:
            f.write("this is not a parameter line either\n")
        r = subprocess.run([ternlib.TERNCTL, "-c", other, "reload"], capture_output=True,
                           text=True, timeout=30)
        s.eq(r.returncode, 78, f"reload when ternd's own file is broken: EX_CONFIG ({r.stderr})")
        s.check(f"{os.path.realpath(t.conf)}:" in r.stderr, f"names ternd's file: {r.stderr}")
    finally:
        with open(t.conf, "w") as f:
            f.write(good)
    r = subprocess.run([ternlib.TERNCTL, "-c", other, "reload"], capture_output=True, text=True,
                       timeout=30)
    s.eq(r.returncode, 0, f"reload with another file: {r.stderr}")
    s.check(f"checked {os.path.realpath(t.conf)}" in r.stdout, f"says which file: {r.stdout}")
    s.check(t.running(), "ternd still running")


def test_pflogsumm(s, t):
    """The log so far through pflogsumm: received = the messages smtpd took
    (client= lines), delivered = status=sent lines (pflogsumm's rules)."""
    text = t.log_text()
    want_rcvd = len(re.findall(r"tern/smtpd\[\d+\]: [0-9A-F]{14}: client=", text))
    want_sent = len(re.findall(r": to=<[^>]*>,.* status=sent ", text))
    s.check(want_rcvd >= 5 and want_sent >= 4, f"the log has deliveries ({want_rcvd}/{want_sent})")
    r = subprocess.run(["pflogsumm", "--syslog_name=tern", "--problems_first", t.logfile],
                       capture_output=True, text=True, timeout=60)
    s.eq(r.returncode, 0, f"pflogsumm: {r.stderr}")

    def count(label):
        m = re.search(rf"^\s*(\d+)\s+{label}$", r.stdout, re.M)
        return int(m.group(1)) if m else None
    s.eq(count("received"), want_rcvd, "pflogsumm received")
    s.eq(count("delivered"), want_sent, "pflogsumm delivered")
    s.check((count("bounced") or 0) >= 2, f"pflogsumm bounced: {count('bounced')}")


def test_stop(s, t):
    pid = t.master_pid
    r = ctl(t, "stop")
    s.eq(r.returncode, 0, f"stop: {r.stdout}{r.stderr}")
    s.check(f"ternd (pid {pid}) has stopped" in r.stdout, r.stdout)
    s.check(wait_until(lambda: not t.running(), 5), "ternd is gone")
    if t.proc is not None:
        s.eq(t.proc.wait(5), 0, "ternd's exit status")
        t.proc = None
    s.eq(t.stray_pids(), [], "no process left")
    r = ctl(t, "stop")
    s.eq(r.returncode, EX_UNAVAILABLE, f"stop when stopped: {r.stderr}")
    s.check("not running" in r.stderr, r.stderr)
    r = ctl(t, "stats")
    s.eq(r.returncode, EX_UNAVAILABLE, f"stats without ternd: {r.stderr}")
    # The lock file stays behind; a new master takes it (and the harness
    # then stops that one with SIGTERM).
    t.start()
    s.check(t.running(), "ternd starts again after a stop")


suite.group("verbs", dict(PARAMS), [
    ("a caller outside group tern is refused with EX_NOPERM", test_refused),
    ("a member of group tern is served; the spool's modes", test_group_member),
    ("queue show of a deferred message (text and --json)", test_queue_show_deferred),
    ("queue hold, release, flush, requeue, delete", test_queue_verbs),
    ("stats after a delivered and a bounced message", test_stats),
    ("trace --to finds a message and its bounce", test_trace),
    ("reload: a changed transport_maps takes effect", test_reload),
    ("pflogsumm reads the log: received and delivered", test_pflogsumm),
    ("stop: ternd gone, exit 0", test_stop),
])
shutil.rmtree(MAPS_DIR, ignore_errors=True)
suite.finish()
