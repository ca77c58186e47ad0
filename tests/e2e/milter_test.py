"""End-to-end tests of the Milter client (doc/milter.md) with real milters:

  - a scripted milter on Debian's pymilter (sendmail's libmilter;
    milter_script.py): reject at HELO, MAIL, RCPT (custom reply), DATA and
    at the end of the message; tempfail; discard; a multi-line reply code;
    header add/insert/change/delete; recipients added and deleted; the
    sender changed; the body replaced (DATA and BDAT); quarantine (the
    message is held); the macros it saw (i is the queue id);
  - non_smtpd_milters: the sendmail command's mail meets the milter;
  - a milter that is down: milter_default_action (tempfail), and the
    per-milter form { ..., default_action=accept };
  - a milter that breaks the protocol (an unreasonable packet length), or
    says nothing: the default action, and Postfix's warnings;
  - OpenDKIM (Debian's opendkim, a private instance) signing mail from the
    submission listener (submission_smtpd_milters), the signature checked
    with python3-dkim against the key opendkim-genkey made.

Loopback only; the milters are started and stopped by the test.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import wait_until  # noqa: E402

try:
    import dkim
except ImportError:  # a missing prerequisite is a failure, not a skip
    dkim = None

suite = ternlib.Suite("milter")
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT_PORT, DOWN_PORT, BAD_PORT, DKIM_PORT = ternlib.free_ports(4)
QUEUED = re.compile(r"queued as ([0-9A-F]+)")
PY = "/usr/bin/python3"

procs = []


def start_script_milter():
    p = subprocess.Popen([PY, os.path.join(HERE, "milter_script.py"),
                          f"inet:{SCRIPT_PORT}@127.0.0.1"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    procs.append(p)
    wait_until(lambda: port_open(SCRIPT_PORT), 10)


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def stop_all():
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def transaction(t, sender, rcpts, data, ehlo="client.test", port=None):
    """EHLO, MAIL, RCPTs, DATA: the replies as a list (stops at the first
    refusal); the last is the end-of-data reply when all went through."""
    out = []
    c = ternlib.RawSMTP(port or t.port)
    with c:
        for line in [f"EHLO {ehlo}", f"MAIL FROM:<{sender}>"] + [f"RCPT TO:<{r}>" for r in rcpts]:
            r = c.cmd(line)
            out.append(r)
            if r.code >= 400:
                c.cmd("QUIT")
                return out
        r = c.cmd("DATA")
        out.append(r)
        if r.code != 354:
            c.cmd("QUIT")
            return out
        c.send(re.sub(rb"(?m)^\.", b"..", data) + b".\r\n")
        out.append(c.reply())
        c.cmd("QUIT")
    return out


def msg(subject, extra=b""):
    return (b"From: <a@tern.test>\r\nTo: <b@tern.test>\r\nSubject: " + subject.encode() +
            b"\r\n" + extra + b"\r\nbody line\r\n")


def queued(s, replies, what):
    last = replies[-1]
    m = QUEUED.search(last.text)
    s.check(last.code == 250 and m, f"{what}: accepted, got {last.text!r}")
    return m.group(1) if m else None


def logged(s, t, pattern, mark):
    """Check that a line matching pattern was logged after mark."""
    return s.check(t.wait_log(pattern, mark), f"log line /{pattern}/")


def envelope(t, qid):
    return t.queue_by_id().get(qid, {})


# ---- the scripted milter ----

def case_helo(s, t):
    mark = t.log_mark()
    with t.raw() as c:
        r = c.cmd("EHLO reject-helo.test")
        s.reply(r, 550, "5.7.1", "EHLO rejected by the milter")
        # A refusal at HELO holds for the session (Postfix's milter8.c:
        # the HELO event counts as part of the connection).
        s.reply(c.cmd("EHLO client.test"), 550, "5.7.1", "a second EHLO")
        s.reply(c.cmd("MAIL FROM:<a@tern.test>"), 550, "5.7.1", "MAIL after it")
        c.cmd("QUIT")
    logged(s, t, r"NOQUEUE: milter-reject: EHLO from unknown\[127\.0\.0\.1\]: 550 5\.7\.1 "
               r"Command rejected; proto=ESMTP helo=<reject-helo\.test>", mark)


def case_mail_rcpt_data(s, t):
    mark = t.log_mark()
    r = transaction(t, "reject-mail@tern.test", ["b@tern.test"], msg("x"))
    s.reply(r[-1], 550, "5.7.1", "MAIL rejected")
    r = transaction(t, "tempfail-mail@tern.test", ["b@tern.test"], msg("x"))
    s.reply(r[-1], 451, "4.7.1", "MAIL tempfailed")
    r = transaction(t, "a@tern.test", ["reject-rcpt@tern.test"], msg("x"))
    s.reply(r[-1], 550, "5.7.1", "RCPT with the milter's own reply")
    s.check("recipient refused by the test milter" in r[-1].text, f"custom text: {r[-1].text!r}")
    r = transaction(t, "reject-data@tern.test", ["b@tern.test"], msg("x"))
    s.reply(r[-1], 550, "5.7.1", "DATA rejected")
    logged(s, t, r"NOQUEUE: milter-reject: MAIL from unknown\[127\.0\.0\.1\]: 550 5\.7\.1 Command "
               r"rejected; from=<reject-mail@tern\.test> proto=ESMTP helo=<client\.test>", mark)
    logged(s, t, r"NOQUEUE: milter-reject: RCPT from .*: 550 5\.7\.1 recipient refused by the test "
               r"milter; from=<a@tern\.test> to=<reject-rcpt@tern\.test> proto=ESMTP", mark)
    logged(s, t, r"milter-reject: DATA from .*: 550 5\.7\.1 Command rejected; "
               r"from=<reject-data@tern\.test>", mark)


def case_eom_verdicts(s, t):
    mark = t.log_mark()
    before = set(t.queue_by_id())
    r = transaction(t, "a@tern.test", ["b@tern.test"], msg("reject"))
    s.reply(r[-1], 550, "5.7.1", "end of message rejected")
    r = transaction(t, "a@tern.test", ["b@tern.test"], msg("tempfail"))
    s.reply(r[-1], 451, "4.7.1", "end of message tempfailed")
    r = transaction(t, "a@tern.test", ["b@tern.test"], msg("replycode"))
    s.reply(r[-1], 554, "5.7.9", "multi-line reply code")
    s.eq(r[-1].lines,
         ["554-5.7.9 first line of the refusal", "554 5.7.9 second line"], "reply lines")
    r = transaction(t, "a@tern.test", ["b@tern.test"], msg("discard"))
    qid = queued(s, r, "discard")
    s.eq(set(t.queue_by_id()) - before, set(), "nothing new in the queue")
    logged(s, t, r"[0-9A-F]+: milter-reject: END-OF-MESSAGE from unknown\[127\.0\.0\.1\]: 5\.7\.1 "
               r"Command rejected; from=<a@tern\.test> to=<b@tern\.test> proto=ESMTP "
               r"helo=<client\.test>", mark)
    logged(s, t, rf"{qid}: milter-discard: END-OF-MESSAGE from .*: milter triggers DISCARD action",
               mark)


def case_headers(s, t):
    extra = b"X-Change: first\r\nX-Change: second\r\nX-Delete: gone\r\n"
    r = transaction(t, "a@tern.test", ["b@tern.test"], msg("headers", extra))
    qid = queued(s, r, "headers")
    if not qid:
        return
    data = t.msg_bytes(qid)
    head = data.split(b"\r\n\r\n", 1)[0]
    s.check(data.startswith(b"X-Inserted: inserted at the top\r\nReceived: "),
            f"inserted at index 0, above our Received: {data[:80]!r}")
    s.check(b"X-Change: first\r\nX-Change: changed second\r\n" in head,
            f"second X-Change changed: {head!r}")
    s.check(b"X-Delete" not in head, "X-Delete deleted")
    s.check(head.endswith(b"X-Added: added by the milter"), f"X-Added at the end: {head!r}")
    s.check(data.endswith(b"\r\n\r\nbody line\r\n"), "body kept")
    s.eq(envelope(t, qid).get("size"), len(data), "envelope size is the edited file's")


def case_envelope(s, t):
    r = transaction(t, "a@tern.test", ["b@tern.test", "removed@tern.test"], msg("rcpts"))
    qid = queued(s, r, "rcpts")
    if qid:
        s.eq(sorted(envelope(t, qid).get("recipients", [])), ["added@tern.test", "b@tern.test"],
             "recipients after add and delete")
    r = transaction(t, "a@tern.test", ["b@tern.test"], msg("sender"))
    qid = queued(s, r, "sender")
    if qid:
        s.eq(envelope(t, qid).get("sender"), "new-sender@tern.test", "changed sender")


def case_body(s, t):
    r = transaction(t, "a@tern.test", ["b@tern.test"], msg("body"))
    qid = queued(s, r, "body")
    if qid:
        data = t.msg_bytes(qid)
        s.check(data.endswith(b"Subject: body\r\n\r\nreplaced body line 1\r\nreplaced line 2\r\n"),
                f"body replaced: {data[-120:]!r}")
    # The same through BDAT: the DATA event goes first, then the content.
    content = msg("body")
    with t.raw() as c:
        for line in ("EHLO client.test", "MAIL FROM:<a@tern.test>", "RCPT TO:<b@tern.test>"):
            c.cmd(line)
        c.send(f"BDAT {len(content)} LAST\r\n".encode() + content)
        r = c.reply()
        c.cmd("QUIT")
    m = QUEUED.search(r.text)
    s.check(r.code == 250 and m, f"BDAT accepted: {r.text!r}")
    if m:
        s.check(t.msg_bytes(m.group(1)).endswith(b"\r\n\r\nreplaced body line 1\r\n"
                                                  b"replaced line 2\r\n"), "BDAT body replaced")
    r = transaction(t, "reject-data@tern.test", ["b@tern.test"], msg("x"))
    s.reply(r[-1], 550, "5.7.1", "DATA rejected (DATA command)")


def case_quarantine(s, t):
    mark = t.log_mark()
    r = transaction(t, "a@tern.test", ["b@tern.test"], msg("quarantine"))
    qid = queued(s, r, "quarantine")
    if not qid:
        return
    logged(s, t, rf"{qid}: milter-hold: END-OF-MESSAGE from .*: milter triggers HOLD action", mark)
    logged(s, t, rf"{qid}: placed on hold", mark)
    out = ternlib.ternctl_run(t, "queue").stdout
    s.check(re.search(rf"^{qid}!", out, re.M), f"held in the queue listing: {out!r}")


def case_macros(s, t):
    r = transaction(t, "a@tern.test", ["b@tern.test"], msg("macros"))
    qid = queued(s, r, "macros")
    if not qid:
        return
    head = t.msg_bytes(qid).split(b"\r\n\r\n", 1)[0].decode()
    m = re.search(r"X-Macros: (.*)", head)
    seen = dict(kv.split("=", 1) for kv in re.findall(r"(\S+=\S+(?: \[[^\]]+\])?)",
                                                        m.group(1))) if m else {}
    s.eq(seen.get("i"), qid, "macro i is the queue id")
    s.eq(seen.get("j"), "tern.test", "macro j")
    s.eq(seen.get("{daemon_name}"), "tern.test", "{daemon_name}")
    s.eq(seen.get("{mail_addr}"), "a@tern.test", "{mail_addr}")
    s.eq(seen.get("{rcpt_addr}"), "b@tern.test", "{rcpt_addr}")
    s.eq(seen.get("{client_addr}"), "127.0.0.1", "{client_addr}")


def case_sendmail(s, t):
    """non_smtpd_milters: mail from the sendmail command meets the milter;
    mail on port 25 (no smtpd_milters) does not."""
    data = b"From: <a@tern.test>\nTo: <b@tern.test>\nSubject: headers\n\nbody line\n"
    r = subprocess.run([os.path.join(ternlib.BUILD, "bin", "sendmail"), "-i", "-f",
                        "a@tern.test", "b@tern.test"], input=data, capture_output=True,
                       env=dict(os.environ, TERN_CONFIG=t.conf), timeout=60, cwd="/")
    s.eq(r.returncode, 0, f"sendmail exit status ({r.stderr!r})")
    heads = [t.msg_bytes(q).split(b"\r\n\r\n", 1)[0] for q in t.queue_by_id()]
    s.check(any(b"X-Added: added by the milter" in h for h in heads),
            f"the milter's header in the sendmail message: {heads!r}")
    r = transaction(t, "a@tern.test", ["b@tern.test"], msg("reject"))
    queued(s, r, "port 25 has no milter")


# ---- milters that are down or broken ----

def case_down_tempfail(s, t):
    mark = t.log_mark()
    with t.raw() as c:
        s.reply(c.cmd("EHLO client.test"), 451, "4.7.1", "EHLO with the milter down")
        c.cmd("QUIT")
    logged(s, t, rf"warning: connect to Milter service inet:127\.0\.0\.1:{DOWN_PORT}: "
               r"Connection refused", mark)
    logged(s, t, r"milter-reject: CONNECT from unknown\[127\.0\.0\.1\]: 451 4\.7\.1 Service "
               r"unavailable - try again later", mark)


def case_down_accept(s, t):
    r = transaction(t, "a@tern.test", ["b@tern.test"], msg("x"))
    queued(s, r, "accepted with default_action=accept")


class BadMilter:
    """Answers OPTNEG, then sends a frame that claims 2 GiB (or, silent,
    nothing at all)."""

    def __init__(self, port, silent=False):
        self.silent = silent
        self.srv = socket.create_server(("127.0.0.1", port))
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            with conn:
                try:
                    hdr = conn.recv(17)
                    if len(hdr) < 17 or hdr[4:5] != b"O":
                        continue
                    conn.sendall(b"\x00\x00\x00\x0dO" + b"\x00\x00\x00\x06" + b"\x00" * 8)
                    conn.recv(4096)
                    if not self.silent:
                        conn.sendall(b"\x7f\xff\xff\xffc")
                    while conn.recv(4096):
                        pass
                except OSError:
                    pass

    def close(self):
        self.srv.close()


def case_broken_milter(s, t, silent, warning):
    """A milter that breaks the protocol or never answers: the default
    action (tempfail) for EHLO, and Postfix's warning."""
    bad = BadMilter(BAD_PORT, silent=silent)
    try:
        mark = t.log_mark()
        with t.raw() as c:
            s.reply(c.cmd("EHLO client.test"), 451, "4.7.1", "EHLO after the broken milter")
            c.cmd("QUIT")
        logged(s, t, rf"warning: milter inet:127\.0\.0\.1:{BAD_PORT}: {warning}", mark)
    finally:
        bad.close()


# ---- OpenDKIM ----

class OpenDKIM:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tern-e2e-opendkim-", dir="/var/tmp")
        r = subprocess.run(["opendkim-genkey", "-b", "1024", "-d", "tern.test", "-s", "test",
                            "-D", self.dir], capture_output=True, text=True)
        if r.returncode != 0:
            raise ternlib.TestFailure(f"opendkim-genkey: {r.stderr}")
        txt = open(os.path.join(self.dir, "test.txt")).read()
        self.pubkey = "".join(re.findall(r'"([^"]*)"', txt)).encode()
        self.conf = os.path.join(self.dir, "opendkim.conf")
        with open(self.conf, "w") as f:
            f.write(f"Socket inet:{DKIM_PORT}@127.0.0.1\n"
                    "Domain tern.test\nSelector test\n"
                    f"KeyFile {self.dir}/test.private\n"
                    "Mode s\nCanonicalization simple/simple\n"
                    "RequireSafeKeys false\nSyslog no\nUserID root\n"
                    f"PidFile {self.dir}/opendkim.pid\n")
        self.proc = subprocess.Popen(["opendkim", "-f", "-x", self.conf],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(self.proc)
        wait_until(lambda: port_open(DKIM_PORT), 10)

    def dns(self, name, timeout=5):
        return self.pubkey if name == b"test._domainkey.tern.test." else None

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def case_dkim(s, t, od):
    if not s.check(dkim is not None, "python3-dkim is installed"):
        return
    body = b"Signed by OpenDKIM through tern.\r\n"
    # simple/simple (OpenDKIM's default) signs the header bytes as they
    # are: a folded field and a field without a space after its colon
    # must reach OpenDKIM, and the file, exactly.
    data = (b"From: Alice <a@tern.test>\r\nTo: <b@example.org>\r\nSubject: dkim\r\n"
            b"\tfolded onto a second line\r\nX-Tight:no-space\r\n"
            b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <dkim-1@tern.test>\r\n\r\n" + body)
    r = transaction(t, "a@tern.test", ["b@tern.test"], data, port=t.submission_port)
    qid = queued(s, r, "submission through OpenDKIM")
    if not qid:
        return
    signed = t.msg_bytes(qid)
    s.check(b"DKIM-Signature:" in signed.split(b"\r\n\r\n", 1)[0],
            f"a DKIM-Signature header: {signed[:400]!r}")
    s.check(dkim.verify(signed, dnsfunc=od.dns), "the signature verifies")
    # And mail on port 25 (no milter there) is not signed.
    r = transaction(t, "a@tern.test", ["b@tern.test"], data)
    qid = queued(s, r, "port 25")
    if qid:
        s.check(b"DKIM-Signature:" not in t.msg_bytes(qid), "port 25 mail is not signed")


def main():
    try:
        start_script_milter()
        suite.group("script", {"smtpd_milters": f"inet:127.0.0.1:{SCRIPT_PORT}",
                               "milter_connect_macros": "j {daemon_name} v _ {client_addr}"}, [
            ("reject at HELO", case_helo),
            ("reject at MAIL, RCPT, DATA; tempfail; reply code", case_mail_rcpt_data),
            ("end of message: reject, tempfail, multi-line reply, discard", case_eom_verdicts),
            ("header add, insert, change, delete", case_headers),
            ("recipients added and deleted, sender changed", case_envelope),
            ("body replaced (DATA and BDAT)", case_body),
            ("quarantine: the message is held", case_quarantine),
            ("macros", case_macros),
        ])
        suite.group("sendmail", {"non_smtpd_milters": f"inet:127.0.0.1:{SCRIPT_PORT}"}, [
            ("non_smtpd_milters for the sendmail command only", case_sendmail),
        ])
        suite.group("down", {"smtpd_milters": f"inet:127.0.0.1:{DOWN_PORT}",
                             "milter_connect_timeout": "5s"}, [
            ("milter down: milter_default_action = tempfail", case_down_tempfail),
        ])
        suite.group("down-accept", {
            "smtpd_milters": f"{{ inet:127.0.0.1:{DOWN_PORT}, default_action=accept }}"}, [
            ("milter down: default_action=accept in braces", case_down_accept),
        ])
        suite.group("bad", {"smtpd_milters": f"inet:127.0.0.1:{BAD_PORT}",
                            "milter_command_timeout": "10s"}, [
            ("unreasonable packet length: default action",
             lambda s, t: case_broken_milter(s, t, False,
                                             "unreasonable packet length after SMFIC_CONNECT")),
        ])
        suite.group("silent", {"smtpd_milters": f"inet:127.0.0.1:{BAD_PORT}",
                               "milter_command_timeout": "1s"}, [
            ("no reply within milter_command_timeout: default action",
             lambda s, t: case_broken_milter(s, t, True, "can't read SMFIC_CONNECT reply packet "
                                             "header: Connection timed out")),
        ])
        od = None
        try:
            od = OpenDKIM()
        except Exception as e:  # noqa: BLE001 (set-up trouble fails the case)
            suite.case("opendkim starts", lambda s: s.check(False, f"opendkim: {e}"))
        if od is not None:
            suite.group("opendkim", {
                "submission_smtpd_milters": f"inet:127.0.0.1:{DKIM_PORT}",
                "submission_smtpd_recipient_restrictions": "permit_mynetworks, reject"}, [
                ("OpenDKIM signs submitted mail; the signature verifies",
                 lambda s, t: case_dkim(s, t, od)),
            ])
            od.close()
    finally:
        stop_all()
    suite.finish()


main()
