"""End-to-end tests of the queue manager: the in-process transports,
bounces (RFC 3464), the retry rules on a real clock, a delivery agent
played by this test over private/qmgr (ternframe.py), destination
suspension, hold/release/flush, pacing, and kill -9 of qmgr in the middle
of a delivery.
"""
import os
import shutil
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternframe  # noqa: E402
import ternlib  # noqa: E402
from ternlib import TestFailure, wait_until  # noqa: E402

suite = ternlib.Suite("qmgr")

RULES_DIR = tempfile.mkdtemp(prefix="tern-e2e-qmgr-rules-", dir="/var/tmp")
os.chmod(RULES_DIR, 0o755)
RULES = os.path.join(RULES_DIR, "retry_rules")
with open(RULES, "w") as f:
    f.write("# short rules for the test: every 4 s, give up after 20 s\n*  *  F,20s,4s\n")
os.chmod(RULES, 0o644)


def send(t, sender, rcpts, subject="test", rcpt_params="", mail_params=""):
    """One message; returns its queue id."""
    with t.raw() as c:
        if c.greeting.code != 220:
            raise TestFailure(f"greeting {c.greeting}")
        for line, want in ((f"EHLO client.test", 250), (f"MAIL FROM:<{sender}>{mail_params}", 250)):
            r = c.cmd(line)
            if r.code != want:
                raise TestFailure(f"{line}: {r}")
        for rc in rcpts:
            r = c.cmd(f"RCPT TO:<{rc}>{rcpt_params}")
            if r.code != 250:
                raise TestFailure(f"RCPT {rc}: {r}")
        r = c.cmd("DATA")
        if r.code != 354:
            raise TestFailure(f"DATA: {r}")
        c.send(f"From: <{sender}>\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n.\r\n"
               .encode())
        final = c.reply()
        c.cmd("QUIT")
    m = ternlib.QUEUED_RE.search(final.text)
    if final.code != 250 or not m:
        raise TestFailure(f"end of DATA: {final}")
    return m.group(1)


def ternctl(t, *args):
    return subprocess.run([ternlib.TERNCTL, "-c", t.conf, *args], capture_output=True,
                          text=True, timeout=60)


def delivery(t, qid):
    """{address: delivery dict} of a queued message, or None when gone."""
    e = t.queue_by_id().get(qid)
    if e is None:
        return None
    return {d["address"]: d for d in e.get("delivery", [])}


def wait_gone(s, t, qid, timeout=10):
    s.check(wait_until(lambda: qid not in t.queue_by_id(), timeout), f"{qid} removed")


def dsn_to(t, rcpt):
    """The queued DSNs (sender <>) for rcpt: [(id, content bytes)]."""
    out = []
    for e in t.queue():
        if e.get("sender") == "" and e.get("recipients") == [rcpt]:
            out.append((e["id"], t.msg_bytes(e["id"])))
    return out


# ---- in-process transports and bounces --------------------------------------------------


BOUNCE = {
    "default_transport": "error:5.1.1 no such user here",
    "local_transport": "retry:4.3.0 mailbox not ready",  # keeps the DSNs in the queue
}


def test_error_bounces(s, t):
    mark = t.log_mark()
    qid = send(t, "alice@tern.test", ["bob@remote.test"], subject="hello bounce")
    s.check(t.wait_log(rf"{qid}: to=<bob@remote.test>.*dsn=5\.1\.1, status=bounced "
                       r"\(no such user here\)", mark), "bounced log line")
    new = t.wait_log(rf"{qid}: sender non-delivery notification: ([0-9A-F]{{14}})", mark)
    s.check(new, "non-delivery notification logged")
    s.check(t.wait_log(rf"{qid}: removed", mark), "original removed")
    wait_gone(s, t, qid)
    dsns = dsn_to(t, "alice@tern.test")
    s.eq(len(dsns), 1, "one DSN queued for the sender")
    if not dsns:
        return
    body = dsns[0][1].decode(errors="replace")
    for want in ("multipart/report; report-type=delivery-status", "Action: failed",
                 "Status: 5.1.1", "Final-Recipient: rfc822; bob@remote.test",
                 "no such user here", "Subject: hello bounce"):
        s.check(want in body, f"DSN contains {want!r}")
    # mailq shows the DSN deferred by the retry transport, with its reason.
    r = ternctl(t, "queue")
    s.check(re.search(r"\(mailbox not ready; next try (in \S+|now)\)", r.stdout),
            f"mailq shows reason and next try: {r.stdout!r}")


def test_notify_never(s, t):
    mark = t.log_mark()
    before = len(dsn_to(t, "carol@tern.test"))
    qid = send(t, "carol@tern.test", ["dave@remote.test"], rcpt_params=" NOTIFY=NEVER")
    s.check(t.wait_log(rf"{qid}: removed", mark), "removed")
    s.check(not re.search(rf"{qid}: sender non-delivery", t.log_since(mark)), "no DSN logged")
    s.eq(len(dsn_to(t, "carol@tern.test")), before, "no DSN queued")


def test_bounce_of_bounce_dropped(s, t):
    mark = t.log_mark()
    qid = send(t, "", ["erin@remote.test"])
    s.check(t.wait_log(rf"{qid}: to=<erin@remote.test>: undeliverable notification discarded",
                       mark), "null-sender failure logged and dropped")
    s.check(t.wait_log(rf"{qid}: removed", mark), "removed")
    s.check("non-delivery notification" not in t.log_since(mark), "no DSN to <>")


def queued_to(t, sender, rcpt):
    """Queued messages from sender to exactly [rcpt]: [(id, content bytes)]."""
    return [(e["id"], t.msg_bytes(e["id"])) for e in t.queue()
            if e.get("sender") == sender and e.get("recipients") == [rcpt]]


POSTMASTER = dict(BOUNCE, notify_classes="bounce, delay")


def test_postmaster_copy(s, t):
    mark = t.log_mark()
    qid = send(t, "hank@tern.test", ["ivy@remote.test"], subject="copy me")
    s.check(t.wait_log(rf"{qid}: sender non-delivery notification: ", mark), "sender notice")
    new = t.wait_log(rf"{qid}: postmaster non-delivery notification: ([0-9A-F]{{14}})", mark)
    s.check(new, "postmaster copy logged")
    copies = queued_to(t, "double-bounce@tern.test", "postmaster@tern.test")
    s.eq(len(copies), 1, "one postmaster copy, from the double-bounce address")
    if copies:
        body = copies[0][1].decode(errors="replace")
        s.check("Subject: Postmaster Copy: Undelivered Mail" in body, "postmaster subject")
        s.check("Content-Type: text/rfc822-headers" in body, "headers only")
        s.check("Final-Recipient: rfc822; ivy@remote.test" in body, "the failed recipient")


def test_double_bounce(s, t):
    mark = t.log_mark()
    qid = send(t, "", ["jill@remote.test"])
    new = t.wait_log(rf"{qid}: postmaster non-delivery notification: ([0-9A-F]{{14}})", mark)
    s.check(new, "double bounce to the postmaster")
    s.check("undeliverable notification discarded" not in t.log_since(mark), "not dropped")
    s.check(t.wait_log(rf"{qid}: removed", mark), "removed")


def test_to_double_bounce_discarded(s, t):
    mark = t.log_mark()
    qid = send(t, "kate@remote.test", ["Double-Bounce@tern.test"])
    s.check(t.wait_log(rf"{qid}: to=<Double-Bounce@tern.test>.*status=sent \(undeliverable "
                       r"postmaster notification discarded\)", mark), "discarded")
    s.check(t.wait_log(rf"{qid}: removed", mark), "removed")


def test_discard(s, t):
    mark = t.log_mark()
    # A recipient routed to discard: the local domain here.
    qid = send(t, "frank@remote.test", ["gina@tern.test"])
    s.check(t.wait_log(rf"{qid}: to=<gina@tern.test>.*status=sent \(test discard\)", mark),
            "discarded as sent")
    s.check(t.wait_log(rf"{qid}: removed", mark), "removed")


# ---- retry rules on a real clock --------------------------------------------------------


def test_retry_schedule_then_bounce(s, t):
    mark = t.log_mark()
    t0 = time.monotonic()
    qid = send(t, "henry@tern.test", ["ivy@remote.test"])
    s.check(t.wait_log(rf"{qid}: to=<ivy@remote.test>.*status=expired", mark, timeout=45),
            "expired after the rule's cutoff")
    elapsed = time.monotonic() - t0
    text = t.log_since(mark)
    deferred = re.findall(rf"{qid}: to=<ivy@remote.test>.*status=deferred", text)
    s.check(4 <= len(deferred) <= 7, f"deferred {len(deferred)} times (F,20s,4s: about 6)")
    s.check(18 <= elapsed <= 40, f"gave up after {elapsed:.0f} s (rule: 20 s + one interval)")
    s.check(t.wait_log(rf"{qid}: sender non-delivery notification", mark), "bounce written")
    dsns = [b for _, b in dsn_to(t, "henry@tern.test")]
    s.check(dsns and b"Status: 5.4.1" in dsns[-1] and b"Action: failed" in dsns[-1],
            "DSN: Action failed, the 4.4.1 made 5.4.1")
    # delay_warning_time = 2s: one "delayed" notice, not one per attempt.
    warnings = re.findall(rf"{qid}: sender delay notification: ", text)
    s.eq(len(warnings), 1, "one delay warning")
    delayed = [b for b in dsns if b"Action: delayed" in b]
    s.eq(len(delayed), 1, "one queued DSN with Action: delayed")
    if delayed:
        s.check(b"Will-Retry-Until:" in delayed[0] and b"Status: 4.4.1" in delayed[0],
                "the warning says until when and why")


RETRY = {
    "retry_rules": RULES,
    "delay_warning_time": "2s",
    "default_transport": "retry:4.4.1 remote not ready",
    "local_transport": "retry:4.3.0 mailbox not ready",
}


# ---- a delivery agent played by the test ------------------------------------------------


class Agent:
    """A delivery agent for one transport over private/qmgr. Jobs arrive on
    a thread into self.jobs; the test answers them. It reconnects when qmgr
    goes away (as the real agents will)."""

    def __init__(self, t, transport="testagent", slots=4):
        self.path = os.path.join(t.spool, "private", "qmgr")
        self.transport, self.slots = transport, slots
        self.jobs = queue.Queue()
        self.fs = None
        self.lock = threading.Lock()
        self.stop = False
        self.connects = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not wait_until(lambda: self.connects > 0, 10):
            raise TestFailure("agent could not connect to qmgr")

    def _connect(self):
        fs = ternframe.FrameSocket.connect(self.path, timeout=5)
        fs.send(ternframe.HELLO, {"version": 1, "transport": self.transport,
                                  "slots": self.slots, "pid": os.getpid()})
        with self.lock:
            self.fs = fs
            self.connects += 1

    def _run(self):
        deadline = time.monotonic() + 400
        while not self.stop and time.monotonic() < deadline:
            if self.fs is None:
                try:
                    self._connect()
                except OSError:
                    time.sleep(0.2)
                    continue
            try:
                ftype, msg = self.fs.recv(timeout=0.5)
            except TimeoutError:
                continue
            except (EOFError, OSError):
                with self.lock:
                    self.fs = None
                continue
            if ftype == ternframe.DELIVER:
                msg["received_at"] = time.monotonic()
                self.jobs.put(msg)

    def job(self, timeout=10):
        try:
            return self.jobs.get(timeout=timeout)
        except queue.Empty:
            raise TestFailure(f"no job for the agent within {timeout} s")

    def no_job(self, seconds):
        try:
            j = self.jobs.get(timeout=seconds)
        except queue.Empty:
            return True
        self.jobs.put(j)
        return False

    def answer(self, job, fate, done=True):
        """fate: {address: ternframe.result kwargs without job/index}."""
        with self.lock:
            fs = self.fs
        for r in job["rcpts"]:
            if r["addr"] in fate:
                fs.send(ternframe.RESULT, ternframe.result(job["job_id"], r["index"],
                                                           **fate[r["addr"]]))
        if done:
            fs.send(ternframe.DONE, {"job_id": job["job_id"]})

    def close(self):
        self.stop = True
        self.thread.join(5)
        if self.fs is not None:
            self.fs.close()


OK = {"status": ternframe.DELIVERED, "smtp_code": 250, "enh": "2.0.0",
      "text": "250 2.0.0 Ok: queued", "relay": "mx.test[127.0.0.9]:25"}
AGENT = {"local_transport": "retry:4.3.0 mailbox not ready",
         "default_transport": "testagent",  # not smtp: the real smtp agent runs too
         "destination_rate_limits": "rate.test=4/s"}
AG = {}


def test_agent_results(s, t):
    AG["a"] = a = Agent(t)
    mark = t.log_mark()
    qid = send(t, "jack@tern.test", ["a@remote.test", "b@remote.test", "c@remote.test"])
    j = a.job()
    s.eq(j["queue_id"], qid, "job's queue id")
    s.eq((j["transport"], j["nexthop"], j["sender"]), ("testagent", "remote.test", "jack@tern.test"),
         "transport, next hop, sender")
    s.eq(sorted(r["addr"] for r in j["rcpts"]), ["a@remote.test", "b@remote.test",
                                                  "c@remote.test"], "one job, three recipients")
    a.answer(j, {
        "a@remote.test": OK,
        "b@remote.test": {"status": ternframe.TEMPFAIL, "err_class": "rcpt_451",
                          "smtp_code": 451, "enh": "4.5.1", "text": "try later"},
        "c@remote.test": {"status": ternframe.PERMFAIL, "smtp_code": 550, "enh": "5.1.1",
                          "text": "no such mailbox"},
    })
    s.check(t.wait_log(rf"{qid}: sender non-delivery notification", mark), "DSN for c")
    d = wait_until(lambda: (lambda x: x if x and x["b@remote.test"]["state"] == "deferred"
                            else None)(delivery(t, qid)), 10)
    s.check(d, "b deferred in the queue listing")
    if d:
        s.eq(d["a@remote.test"]["state"], "delivered", "a delivered")
        s.eq(d["c@remote.test"]["state"], "bounced", "c bounced")
        s.eq(d["b@remote.test"]["last_error"], "try later", "b's last error")
        s.eq(d["b@remote.test"]["error_class"], "rcpt_451", "b's error class")
        s.check(d["b@remote.test"]["next_attempt"] > time.time() + 60,
                "b's next attempt is in the future (Postfix backoff: 300 s)")
    dsns = [b for _, b in dsn_to(t, "jack@tern.test")]
    s.check(dsns and b"Final-Recipient: rfc822; c@remote.test" in dsns[-1]
            and b"Final-Recipient: rfc822; b@remote.test" not in dsns[-1],
            "the DSN names c only")
    AG["deferred"] = qid


def test_success_notice(s, t):
    a = AG["a"]
    mark = t.log_mark()
    qid = send(t, "olga@tern.test", ["s@remote.test", "u@remote.test"],
               rcpt_params=" NOTIFY=SUCCESS,FAILURE")
    j = a.job()
    a.answer(j, {"s@remote.test": OK, "u@remote.test": dict(OK, relayed=True)})
    s.check(t.wait_log(rf"{qid}: sender delivery status notification: ", mark),
            "success DSN logged")
    wait_gone(s, t, qid)
    dsns = [b for _, b in dsn_to(t, "olga@tern.test")]
    s.eq(len(dsns), 1, "one success DSN for both recipients")
    if dsns:
        s.check(b"Action: delivered" in dsns[0] and b"Action: relayed" in dsns[0],
                "delivered and relayed actions")
        s.check(b"Content-Type: text/rfc822-headers" in dsns[0],
                "a success notice returns the headers only")


def test_suspended_destination(s, t):
    a = AG["a"]
    mark = t.log_mark()
    q1 = send(t, "kim@tern.test", ["d@dead.test"])
    j = a.job()
    a.answer(j, {"d@dead.test": {"status": ternframe.TEMPFAIL, "err_class": "refused_MX",
                                 "text": "connect to mx.dead.test[127.0.0.8]:25: "
                                         "Connection refused", "host": "mx.dead.test"}})
    s.check(wait_until(lambda: (delivery(t, q1) or {}).get("d@dead.test", {}).get("state")
                       == "deferred", 10), "first message deferred")
    q2 = send(t, "kim@tern.test", ["e@dead.test"])
    s.check(t.wait_log(rf"{q2}: to=<e@dead.test>.*status=deferred \(delivery temporarily "
                       r"suspended: connect to mx.dead.test", mark),
            "second message deferred without an attempt")
    s.check(a.no_job(1.5), "no job for a suspended destination")
    r = ternctl(t, "queue", "flush", "@dead.test")
    s.eq(r.returncode, 0, f"flush @dead.test: {r.stderr}")
    j = a.job()
    s.eq(j["nexthop"], "dead.test", "flush probes the destination")
    a.answer(j, {x["addr"]: OK for x in j["rcpts"]})
    # Success lifts the suspension: the other message follows.
    j2 = a.job()
    a.answer(j2, {x["addr"]: OK for x in j2["rcpts"]})
    wait_gone(s, t, q1)
    wait_gone(s, t, q2)


def test_hold_release(s, t):
    a = AG["a"]
    qid = send(t, "lee@tern.test", ["h@hold.test"])
    j = a.job()
    a.answer(j, {"h@hold.test": {"status": ternframe.TEMPFAIL, "err_class": "rcpt_450",
                                 "smtp_code": 450, "enh": "4.2.0", "text": "greylisted"}})
    s.check(wait_until(lambda: (delivery(t, qid) or {}).get("h@hold.test", {}).get("state")
                       == "deferred", 10), "deferred")
    r = ternctl(t, "queue", "hold", qid)
    s.eq(r.returncode, 0, f"hold: {r.stdout}{r.stderr}")
    listing = ternctl(t, "queue").stdout
    s.check(re.search(rf"^{qid}!", listing, re.M), f"mailq marks it held: {listing!r}")
    r = ternctl(t, "queue", "flush", qid)
    s.eq(r.returncode, 0, f"flush: {r.stderr}")
    s.check(a.no_job(1.5), "a held message is not tried, even by a flush")
    r = ternctl(t, "queue", "release", qid)
    s.eq(r.returncode, 0, f"release: {r.stderr}")
    j = a.job()
    s.eq(j["queue_id"], qid, "released: tried at once")
    a.answer(j, {"h@hold.test": OK})
    wait_gone(s, t, qid)
    r = ternctl(t, "queue", "hold", "00000000000000")
    s.check(r.returncode != 0 and "no message matched" in r.stderr, "unknown id: an error")
    r = ternctl(t, "queue", "delete", "ALL")
    s.check(r.returncode != 0 and "--yes" in r.stderr, "delete ALL wants --yes")


def test_rate_limit(s, t):
    a = AG["a"]
    ids = [send(t, "max@tern.test", [f"r{i}@rate.test"]) for i in range(4)]
    times = []
    for _ in ids:
        j = a.job()
        times.append(j["received_at"])
        a.answer(j, {x["addr"]: OK for x in j["rcpts"]})
    gaps = [b - a_ for a_, b in zip(times, times[1:])]
    s.check(all(g >= 0.2 for g in gaps), f"4/s: jobs at least 250 ms apart ({gaps})")
    for q in ids:
        wait_gone(s, t, q)


def test_kill_qmgr_mid_delivery(s, t):
    a = AG["a"]
    qid = send(t, "ned@tern.test", ["x@slow.test", "y@slow.test"])
    j = a.job()
    # x is delivered and recorded; y is still in flight when qmgr dies.
    a.answer(j, {"x@slow.test": OK}, done=False)
    s.check(wait_until(lambda: (delivery(t, qid) or {}).get("x@slow.test", {}).get("state")
                       == "delivered", 10), "x recorded as delivered")
    pids = [p for p in ternlib.pids_with_arg("--role=qmgr") if t.conf.encode() in ternlib.cmdline(p)]
    s.check(pids, "qmgr running")
    connects = a.connects
    for p in pids:
        os.kill(p, signal.SIGKILL)
    # Accepted while qmgr is down: smtpd keeps the notice until it is back.
    late = send(t, "ned@tern.test", ["z@late.test"])
    s.check(wait_until(lambda: a.connects > connects, 15), "agent reconnected to a new qmgr")
    jobs = {}
    for _ in range(2):
        j2 = a.job(timeout=15)
        jobs[j2["queue_id"]] = j2
    s.eq(sorted(jobs), sorted([qid, late]), "jobs for the interrupted and the late message")
    if qid in jobs:
        s.eq([r["addr"] for r in jobs[qid]["rcpts"]], ["y@slow.test"],
             "after the crash: y again (at least once), x not again")
    for j2 in jobs.values():
        a.answer(j2, {r["addr"]: OK for r in j2["rcpts"]})
    wait_gone(s, t, qid)
    wait_gone(s, t, late)


def test_restart_keeps_state(s, t):
    qid = AG.get("deferred")
    if qid is None:
        raise TestFailure("no deferred message from the earlier case")
    AG["a"].close()
    before = delivery(t, qid)
    t.stop()
    t.proc = None
    t.start()
    after = delivery(t, qid)
    s.check(before is not None and after is not None, "message still queued after restart")
    if before and after:
        s.eq(after["b@remote.test"]["state"], "deferred", "still deferred")
        s.eq(after["b@remote.test"]["next_attempt"], before["b@remote.test"]["next_attempt"],
             "same next attempt")
        s.eq(after["a@remote.test"]["state"], "delivered", "a still delivered")
    s.check(t.wait_log(r"queue loaded: \d+ messages", 0, timeout=10), "qmgr reloaded the queue")


suite.group("bounces", dict(BOUNCE), [
    ("error: transport bounces with an RFC 3464 DSN", test_error_bounces),
    ("NOTIFY=NEVER: no DSN", test_notify_never),
    ("a failed bounce is logged and dropped", test_bounce_of_bounce_dropped),
])
suite.group("postmaster", dict(POSTMASTER), [
    ("notify_classes = bounce: a headers copy to the postmaster", test_postmaster_copy),
    ("a failed bounce goes to the postmaster as a double bounce", test_double_bounce),
    ("mail to the double-bounce address is discarded", test_to_double_bounce_discarded),
])
suite.group("discard", {"local_transport": "discard:test discard",
                        "default_transport": "retry:4.0.0 not here"}, [
    ("discard: transport", test_discard),
])
suite.group("retry_rules", dict(RETRY), [
    ("* * F,20s,4s: retried every 4 s, bounced at the cutoff", test_retry_schedule_then_bounce),
])
suite.group("agent", dict(AGENT), [
    ("results: delivered, deferred, bounced", test_agent_results),
    ("NOTIFY=SUCCESS: delivered and relayed notice", test_success_notice),
    ("a refused destination is suspended; flush probes it", test_suspended_destination),
    ("hold, flush, release", test_hold_release),
    ("destination_rate_limits paces deliveries", test_rate_limit),
    ("kill -9 of qmgr mid-delivery: at least once, nothing twice", test_kill_qmgr_mid_delivery),
    ("restart keeps recipient states", test_restart_keeps_state),
])
for a in AG.values():
    if isinstance(a, Agent):
        a.close()
shutil.rmtree(RULES_DIR, ignore_errors=True)
suite.finish()
