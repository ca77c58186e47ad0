"""End-to-end tests of after-queue content filtering (doc/content_filter.md)
with a real filter: a small aiosmtpd server on a loopback port that tern's
smtp agent delivers to, which adds "X-Filtered: yes" and re-injects the
message through smtplib into tern's reinject_listen, and only then answers
250 (as amavisd does). Local delivery into Maildirs of users made for the
test.

  - content_filter: a message reaches the Maildir once, with the header,
    through the filter once (the re-injected copy is not filtered again);
    the filter's delivery is logged as Postfix logs it;
  - the filter down: the message is deferred (never bounced) with the
    envelope still naming the filter, and delivered once the filter is up;
  - a FILTER action of a check_recipient_access map sends that message to
    the filter while another goes straight;
  - REDIRECT delivers to the redirect address only; BCC adds a copy.

Needs root (useradd, the local agent delivering as the users).
"""
import json
import os
import re
import shutil
import smtplib
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import wait_until  # noqa: E402

try:
    from aiosmtpd.controller import Controller
except ImportError:  # a missing prerequisite is a failure, not a skip
    Controller = None

suite = ternlib.Suite("content_filter")
send = ternlib.send_message
ternctl = ternlib.ternctl_run

PID = os.getpid()
USER = f"tcf{PID}"       # the recipient
USER2 = f"tcg{PID}"      # REDIRECT and BCC target
FILTER_PORT, REINJECT_PORT = ternlib.free_ports(2)
FILTER = f"smtp:[127.0.0.1]:{FILTER_PORT}"
RELAY = re.escape(f"127.0.0.1[127.0.0.1]:{FILTER_PORT}")


useradd = ternlib.useradd
userdel = ternlib.userdel


MAILDIRS = tempfile.mkdtemp(prefix="tern-e2e-cfilter-maildir-", dir="/var/tmp")
os.chmod(MAILDIRS, 0o1777)
FILES_DIR, FILES = ternlib.shared_files("cfilter", {
    "retry_rules": "*  *  F,1h,1s\n",
    "access": (f"{USER}+filter@tern.test  FILTER {FILTER}\n"
               f"{USER}+redirect@tern.test  REDIRECT {USER2}@tern.test\n"
               f"{USER}+bcc@tern.test  BCC {USER2}@tern.test\n"),
})

COMMON = {
    "local_transport": "local",
    "mail_spool_directory": MAILDIRS + "/",
    "recipient_delimiter": "+",
    "default_transport": "error:5.7.1 no relaying in this test",
    "retry_rules": FILES["retry_rules"],
    "minimal_backoff_time": "1s",
    "maximal_backoff_time": "2s",
    "reinject_listen": f"127.0.0.1:{REINJECT_PORT}",
}


# ---- the filter ------------------------------------------------------------------------


class FilterHandler:
    """Adds X-Filtered: yes, re-injects, then accepts: the 250 means the
    message is back in tern's queue, so a crash of the filter loses
    nothing (amavisd's order)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received = []   # (mail_from, [rcpt], content bytes, [XFORWARD arguments])

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # Offer XFORWARD as amavisd does; the last line stays the last.
        session.host_name = hostname
        return responses[:-1] + ["250-XFORWARD NAME ADDR PROTO HELO IDENT SOURCE"] + responses[-1:]

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content
        filtered = b"X-Filtered: yes\r\n" + content
        xforward = list(getattr(session, "xforward", []))
        if getattr(session, "xforward_pipelined", False):
            xforward.append("PIPELINED")   # a command came before its reply
        session.xforward = []
        session.xforward_pipelined = False
        try:
            with smtplib.SMTP("127.0.0.1", REINJECT_PORT, timeout=10) as c:
                c.ehlo("filter.test")
                # Hand the origin on, as amavisd does with XFORWARD.
                for arg in xforward:
                    if arg == "PIPELINED":
                        continue
                    code, text = c.docmd("XFORWARD", arg)
                    if code != 250:
                        return f"451 4.3.0 XFORWARD refused: {code} {text.decode()}"
                c.sendmail(envelope.mail_from, envelope.rcpt_tos, filtered)
        except (OSError, smtplib.SMTPException) as e:
            return f"451 4.3.0 re-injection failed: {e}"
        with self.lock:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), content, xforward))
        return "250 2.0.0 Ok: filtered"

    def count(self):
        with self.lock:
            return len(self.received)

    def last(self):
        with self.lock:
            return self.received[-1] if self.received else None


if Controller is not None:
    from aiosmtpd.smtp import SMTP as _AioSMTP

    class XforwardSMTP(_AioSMTP):
        """aiosmtpd with an XFORWARD verb that keeps what it was told."""

        async def smtp_XFORWARD(self, arg):
            if not arg:
                await self.push("501 5.5.4 Syntax: XFORWARD attribute=value...")
                return
            if not hasattr(self.session, "xforward"):
                self.session.xforward = []
            # No PIPELINING offered: nothing may follow before this reply.
            if getattr(self._reader, "_buffer", b""):
                self.session.xforward_pipelined = True
            self.session.xforward.append(arg)
            await self.push("250 2.0.0 Ok")

    class XforwardController(Controller):
        def factory(self):
            return XforwardSMTP(self.handler, **self.SMTP_kwargs)


class Filter:
    def __init__(self):
        self.handler = FilterHandler()
        self.controller = None

    def start(self):
        self.controller = XforwardController(self.handler, hostname="127.0.0.1", port=FILTER_PORT,
                                             server_hostname="filter.test", ready_timeout=10)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


FLT = Filter()


# ---- helpers ---------------------------------------------------------------------------


def maildir_new(user):
    return ternlib.maildir_new(MAILDIRS, user)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def new_messages(user, before, n, timeout=15):
    """The files of user's new/ not in before, once there are n (else None)."""
    def found():
        extra = [p for p in maildir_new(user) if p not in before]
        return extra if len(extra) >= n else None
    return wait_until(found, timeout)


def filter_sent(qid, rcpt):
    return (rf"smtp\[\d+\]: {qid}: to=<{re.escape(rcpt)}>, relay={RELAY}, delay=[\d.]+, "
            r"delays=[\d./]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: filtered\)")


def local_sent(qid, rcpt):
    return (rf"local\[\d+\]: {qid}: to=<{re.escape(rcpt)}>, (orig_to=<[^>]*>, )?relay=local, "
            r".*status=sent \(delivered to maildir\)")


def settle(t, mark, qids):
    """Every one of qids removed from the queue (bounded), so no copy is
    left behind to loop."""
    for q in qids:
        if not t.wait_log(rf"{q}: removed", mark, 15):
            return False
    return True


# ---- content_filter ----------------------------------------------------------------------


def test_filtered_once(s, t):
    before = maildir_new(USER)
    n0 = FLT.handler.count()
    mark = t.log_mark()
    rcpt = f"{USER}@tern.test"
    qid = send(t, "sender@example.org", [rcpt], subject="scan me")
    s.check(t.wait_log(filter_sent(qid, rcpt), mark, 15),
            "the smtp agent hands it to the filter: Postfix's log line, relay=127.0.0.1[...]:PORT")
    files = new_messages(USER, before, 1)
    if not s.check(files, "a message in the Maildir"):
        return
    data = read(files[0])
    s.check(b"\nX-Filtered: yes\n" in data, "with the filter's header")
    s.check(b"Subject: scan me\n" in data, "the message itself")
    # The re-injected copy went to the local agent, not back to the filter.
    # The Maildir file appears before local logs its to= line: wait for it.
    m = t.wait_log(rf"local\[\d+\]: ([0-9A-F]{{14}}): to=<{re.escape(rcpt)}>", mark, 15)
    s.check(m and m.group(1) != qid, "delivered by local under the re-injected queue id")
    s.check(settle(t, mark, [qid] + ([m.group(1)] if m else [])), "both copies left the queue")
    s.eq(FLT.handler.count() - n0, 1, "the filter saw the message exactly once (no loop)")
    s.eq(len([p for p in maildir_new(USER) if p not in before]), 1, "one copy in the Maildir")
    got = FLT.handler.last()
    s.check(got and got[0] == "sender@example.org" and got[1] == [rcpt],
            f"the filter got the envelope as sent: {got[:2] if got else None}")
    s.check(t.wait_log(rf"{qid}: from=<sender@example\.org>, size=\d+, nrcpt=1 \(queue active\)",
                       mark), "qmgr's from= line")


def test_all_recipients_one_delivery(s, t):
    n0 = FLT.handler.count()
    b1, b2 = maildir_new(USER), maildir_new(USER2)
    mark = t.log_mark()
    rcpts = [f"{USER}@tern.test", f"{USER2}@tern.test"]
    qid = send(t, "sender@example.org", rcpts, subject="two")
    for r in rcpts:
        s.check(t.wait_log(filter_sent(qid, r), mark, 15), f"{r} through the filter")
    s.check(new_messages(USER, b1, 1) and new_messages(USER2, b2, 1), "both delivered")
    s.eq(FLT.handler.count() - n0, 1, "one transaction with the filter for both recipients")
    got = FLT.handler.last()
    s.eq(sorted(got[1]) if got else None, sorted(rcpts), "both recipients in it")


def test_filter_down(s, t):
    FLT.stop()
    before = maildir_new(USER)
    mark = t.log_mark()
    rcpt = f"{USER}@tern.test"
    try:
        qid = send(t, "sender@example.org", [rcpt], subject="later")
        s.check(t.wait_log(rf"smtp\[\d+\]: {qid}: to=<{re.escape(rcpt)}>, relay={RELAY}, "
                           r"delay=[\d.]+, delays=[\d./]+, dsn=4\.4\.1, status=deferred "
                           rf"\(connect to {RELAY}: Connection refused\)", mark, 15),
                "deferred while the filter is down, Postfix's log line")
        r = ternctl(t, "queue", "show", qid, "--json")
        try:
            env = json.loads(r.stdout)
        except ValueError:
            env = {}
        s.eq(env.get("filter"), FILTER, "the queued envelope names the filter")
        s.check(not re.search(rf"{qid}: .*status=bounced", t.log_since(mark)), "never bounced")
    finally:
        FLT.start()
    ternctl(t, "queue", "flush")
    s.check(t.wait_log(filter_sent(qid, rcpt), mark, 20), "sent to the filter once it is up")
    files = new_messages(USER, before, 1, 20)
    s.check(files and b"\nX-Filtered: yes\n" in read(files[0]), "then delivered, filtered")


def test_xforward(s, t):
    """The filter is told the origin (XFORWARD, as Postfix's smtp client
    tells amavisd) and hands it back; the re-injected message's client=
    line names the original client, Postfix's orig_client= form."""
    n0 = FLT.handler.count()
    mark = t.log_mark()
    rcpt = f"{USER}@tern.test"
    with ternlib.RawSMTP(t.port, source="127.0.0.9", quit_on_close=True) as c:
        for line in ("EHLO origin.test", "MAIL FROM:<sender@example.org>", f"RCPT TO:<{rcpt}>"):
            s.reply(c.cmd(line), 250, what=line)
        s.reply(c.cmd("DATA"), 354, what="DATA")
        c.send(b"Subject: origin\r\n\r\nhello\r\n.\r\n")
        r = c.reply()
    s.reply(r, 250, what="end of data")
    m = ternlib.QUEUED_RE.search(r.text)
    qid = m.group(1) if m else "NOQID"
    s.check(t.wait_log(filter_sent(qid, rcpt), mark, 15), "through the filter")
    got = wait_until(lambda: FLT.handler.count() > n0 and FLT.handler.last(), 15)
    xf = got[3] if got else []
    s.eq(xf, ["NAME=unknown ADDR=127.0.0.9",
              f"PROTO=ESMTP HELO=origin.test IDENT={qid} SOURCE=REMOTE"],
         "XFORWARD as Postfix sends it: the attributes offered, in two commands, "
         "one at a time (the filter offers no PIPELINING)")
    m2 = t.wait_log(r"smtpd\[\d+\]: ([0-9A-F]{14}): client=\S+\[127\.0\.0\.1\], "
                    rf"orig_queue_id={qid}, orig_client=unknown\[127\.0\.0\.9\]$", mark, 15)
    s.check(m2, "the re-injected message's client= line: orig_queue_id=, orig_client=")
    if m2:
        s.check(t.wait_log(local_sent(m2.group(1), rcpt), mark, 15), "then delivered")


def test_xforward_refused(s, t):
    """Only smtpd_authorized_xforward_hosts may use it: not offered and
    refused on port 25; syntax errors on the re-injection port."""
    with t.raw() as c:
        r = c.cmd("EHLO client.test")
        s.check("XFORWARD" not in r.text, "port 25 does not offer XFORWARD")
        s.reply(c.cmd("XFORWARD NAME=spoof.test"), 550, "5.7.0", "XFORWARD from an outsider")
    with ternlib.RawSMTP(REINJECT_PORT) as c:
        r = c.cmd("EHLO filter.test")
        s.check("XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE" in r.text,
                f"the re-injection port offers it: {r.text!r}")
        s.reply(c.cmd("XFORWARD"), 501, "5.5.4", "XFORWARD without attributes")
        s.reply(c.cmd("XFORWARD COLOR=blue"), 501, "5.5.4", "an unknown attribute")
        s.reply(c.cmd("XFORWARD NAME="), 501, "5.5.4", "an empty value")
        s.reply(c.cmd("XFORWARD ADDR=" + "1" * 300), 501, "5.5.4", "a value over 255")
        s.reply(c.cmd("XFORWARD PORT=99999"), 501, "5.5.4", "a port out of range")
        s.reply(c.cmd("XFORWARD NAME=a+0Ab"), 501, "5.5.4", "a control character in xtext")
        s.reply(c.cmd("XFORWARD NAME=ok.test ADDR=[unavailable]"), 250, "2.0.0", "well formed")
        s.reply(c.cmd("MAIL FROM:<a@tern.test>"), 250, what="MAIL")
        s.reply(c.cmd("XFORWARD NAME=late.test"), 503, "5.5.1", "not inside a transaction")


# ---- FILTER, REDIRECT, BCC actions -------------------------------------------------------


def test_filter_action(s, t):
    n0 = FLT.handler.count()
    before = maildir_new(USER)
    mark = t.log_mark()
    filtered = f"{USER}+filter@tern.test"
    plain = f"{USER}@tern.test"
    q1 = send(t, "sender@example.org", [filtered], subject="filter action")
    s.check(t.wait_log(rf"NOQUEUE: filter: RCPT from \S+\[127\.0\.0\.1\]: <{re.escape(filtered)}>: "
                       rf"Recipient address triggers FILTER {re.escape(FILTER)}; "
                       rf"from=<sender@example\.org> to=<{re.escape(filtered)}> proto=ESMTP "
                       r"helo=<client\.test>", mark), "smtpd logs the FILTER action as Postfix")
    s.check(t.wait_log(rf"{q1}: filter: {re.escape(FILTER)} \(a FILTER action\)", mark),
            "and the queue id line when queued")
    q2 = send(t, "sender@example.org", [plain], subject="straight")
    s.check(t.wait_log(filter_sent(q1, filtered), mark, 15), "the first goes to the filter")
    s.check(t.wait_log(local_sent(q2, plain), mark, 15), "the second goes straight to local")
    files = new_messages(USER, before, 2)
    if not s.check(files, "both in the Maildir"):
        return
    by_subject = {}
    for p in files:
        d = read(p)
        m = re.search(rb"\nSubject: ([^\n]*)\n", d)
        by_subject[m.group(1) if m else b"?"] = d
    s.check(b"\nX-Filtered: yes\n" in by_subject.get(b"filter action", b""),
            "the FILTER one was filtered")
    s.check(b"X-Filtered" not in by_subject.get(b"straight", b"X-Filtered"),
            "the other was not")
    s.eq(FLT.handler.count() - n0, 1, "the filter saw one message")


def test_redirect(s, t):
    b1, b2 = maildir_new(USER), maildir_new(USER2)
    mark = t.log_mark()
    rcpt = f"{USER}+redirect@tern.test"
    qid = send(t, "sender@example.org", [rcpt, f"{USER}@tern.test"], subject="redirected")
    s.check(t.wait_log(rf"NOQUEUE: redirect: RCPT from \S+\[127\.0\.0\.1\]: <{re.escape(rcpt)}>: "
                       rf"Recipient address triggers REDIRECT {USER2}@tern\.test;", mark),
            "smtpd logs the REDIRECT action as Postfix")
    s.check(t.wait_log(rf"{qid}: redirect: 2 recipients replaced by <{USER2}@tern\.test>", mark),
            "every recipient replaced when queued")
    s.check(t.wait_log(local_sent(qid, f"{USER2}@tern.test"), mark, 15), "delivered to the target")
    s.check(new_messages(USER2, b2, 1), "in the target's Maildir")
    s.check(settle(t, mark, [qid]), "done")
    s.eq([p for p in maildir_new(USER) if p not in b1], [], "nothing for the original recipients")


def test_bcc(s, t):
    b1, b2 = maildir_new(USER), maildir_new(USER2)
    mark = t.log_mark()
    rcpt = f"{USER}+bcc@tern.test"
    qid = send(t, "sender@example.org", [rcpt], subject="copied")
    s.check(t.wait_log(rf"NOQUEUE: bcc: RCPT from \S+\[127\.0\.0\.1\]: <{re.escape(rcpt)}>: "
                       rf"Recipient address triggers BCC {USER2}@tern\.test;", mark),
            "smtpd logs the BCC action as Postfix")
    s.check(t.wait_log(rf"{qid}: bcc: <{USER2}@tern\.test> added", mark), "added when queued")
    s.check(t.wait_log(local_sent(qid, rcpt), mark, 15), "the recipient delivered")
    s.check(t.wait_log(local_sent(qid, f"{USER2}@tern.test"), mark, 15), "and the copy")
    s.check(new_messages(USER, b1, 1) and new_messages(USER2, b2, 1), "one in each Maildir")


try:
    if os.geteuid() != 0:
        suite._count("content filter", ["needs root (useradd, deliveries as the users)"])
    elif Controller is None:
        suite._count("content filter", ["python3-aiosmtpd is missing (scripts/install-deps.sh)"])
    else:
        useradd(USER)
        useradd(USER2)
        FLT.start()
        suite.group("content_filter", dict(COMMON, content_filter=FILTER), [
            ("filtered once, header added, delivered once, no loop", test_filtered_once),
            ("every recipient to the filter in one transaction", test_all_recipients_one_delivery),
            ("the filter down: deferred, not bounced; delivered once it is up",
             test_filter_down),
            ("XFORWARD: the filter told the origin, re-injected with it", test_xforward),
            ("XFORWARD: authorized clients only, bounded values", test_xforward_refused),
        ])
        suite.group("actions", dict(COMMON, smtpd_recipient_restrictions=(
            f"check_recipient_access texthash:{FILES['access']}")), [
            ("FILTER action: that message to the filter, another straight", test_filter_action),
            ("REDIRECT: every recipient replaced", test_redirect),
            ("BCC: one more recipient", test_bcc),
        ])
finally:
    FLT.stop()
    for u in (USER, USER2):
        userdel(u)
    for d in (FILES_DIR, MAILDIRS):
        shutil.rmtree(d, ignore_errors=True)
suite.finish()
