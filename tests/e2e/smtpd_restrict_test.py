"""End-to-end tests of the restriction lists in the real smtpd, in a
private network namespace (networld.py):

- relay tricks from an untrusted source (the client bound to 127.0.0.50,
  mynetworks = 127.0.0.1/32): every one refused with 554 5.7.1 (or 501 when
  the parser refuses the syntax), NOQUEUE lines logged, nothing queued;
  the trusted client may relay;
- a real postgrey (Debian package), run by hand on a port with its own db
  directory and --delay=2, as check_policy_service: first attempt 450,
  a later attempt accepted and queued;
- a DNSBL zone served by dnsmasq: a listed client is refused with the
  TXT record as the reason, an unlisted one passes; reject_unknown_sender_domain
  (450 4.1.8 for a domain that does not exist, 550 5.7.27 for a null MX);
- an RHS list (reject_rhsbl_sender), a DNS allow list (permit_dnswl_client)
  and check_sender_mx_access with a map of bad MX hosts and networks (the
  words on the client's names, which need PTR records, are in
  smtpd_peer_test.py);
- a policy server that accepts and never answers: RCPT gets 451 4.3.5
  after smtpd_policy_service_timeout, while a session on another listener
  completes a whole transaction in the meantime.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import networld  # noqa: E402

networld.enter_private_netns()  # before any thread

import ternlib  # noqa: E402
from ternlib import TestFailure, wait_until  # noqa: E402

suite = ternlib.Suite("smtpd_restrict")


def Client(port, source="127.0.0.1", timeout=20.0):
    """An SMTP client bound to a chosen loopback source address."""
    return ternlib.RawSMTP(port, timeout=timeout, source=source, quit_on_close=True)


def transaction(c, sender, rcpt):
    for line, code in (("EHLO client.test", 250), (f"MAIL FROM:<{sender}>", 250)):
        r = c.cmd(line)
        if r.code != code:
            raise TestFailure(f"{line}: {r}")
    return c.cmd(f"RCPT TO:<{rcpt}>")


def deliver(s, c, sender, rcpt):
    """Finish a transaction whose RCPT was accepted; returns the queue id."""
    s.reply(c.cmd("DATA"), 354, what="DATA")
    r = c.cmd(f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: t\r\n\r\nhello\r\n.")
    s.reply(r, 250, "2.0.0", "end of data")
    return r.text.rsplit(" ", 1)[-1]


# ---- relay tricks ----

TRICKS = [
    ("v@other.test", 554),
    ("v%other.test@tern.test", 554),                # % hack
    ("other.test!v@tern.test", 554),                # bang path
    ("@tern.test:v@other.test", 554),               # source route
    ("@other.test:v@tern.test", 554),               # source route to us
    ('"v@other.test"@tern.test', 554),              # quoted local part with @
    ('"v%other.test"@tern.test', 554),
    ("v@[127.0.0.1]", 554),                         # IP literal
    ("v@[192.0.2.1]", 554),
    ("v@OTHER.test", 554),                          # case
    ("v@other.test.", 554),                         # trailing dot
    ("v@tern.test.other.test", 554),                # suffix
    ("v@other.test@tern.test", 501),                # two @: a syntax error
    ("v@tern.test..", 501),
]


def test_relay_tricks(s, t):
    mark = t.log_mark()
    before = t.msg_files()
    c = Client(t.port, source="127.0.0.50")
    try:
        for line, code in (("EHLO client.test", 250), ("MAIL FROM:<a@x.test>", 250)):
            s.reply(c.cmd(line), code, what=line)
        for rcpt, code in TRICKS:
            r = c.cmd(f"RCPT TO:<{rcpt}>")
            s.reply(r, code, "5.7.1" if code == 554 else None, f"RCPT TO:<{rcpt}>")
            if code == 554:
                s.check("Relay access denied" in r.text, f"{rcpt}: {r.text}")
        # Our own domain, in every spelling a client may use, is accepted.
        for rcpt in ("v@tern.test", "v@TERN.TEST", "v@tern.test.", "Postmaster"):
            s.reply(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", f"RCPT TO:<{rcpt}>")
        s.reply(c.cmd("RSET"), 250, what="RSET")
    finally:
        c.close()
    s.check(t.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.50\]: 554 5\.7\.1 "
                       r"<v%other\.test@tern\.test>: Relay access denied; from=<a@x\.test> "
                       r"to=<v%other\.test@tern\.test> proto=ESMTP helo=<client\.test>", mark),
            "NOQUEUE line in Postfix's format")
    log = t.log_since(mark)
    s.eq(log.count("Relay access denied"), sum(1 for _, c in TRICKS if c == 554),
         "one NOQUEUE line per refused trick")
    s.eq(t.msg_files() - before, set(), "no message file")
    s.eq([e for e in t.queue() if "other" in str(e)], [], "nothing for other.test queued")


def test_trusted_relays(s, t):
    c = Client(t.port, source="127.0.0.1")
    try:
        r = transaction(c, "a@x.test", "v@other.test")
        s.reply(r, 250, "2.1.5", "trusted client relays")
    finally:
        c.close()


# ---- postgrey ----

def start_postgrey(d, port):
    db = os.path.join(d, "db")
    os.makedirs(db)
    shutil.chown(db, "postgrey", "postgrey")
    out = open(os.path.join(d, "postgrey.out"), "ab")
    p = subprocess.Popen(["/usr/sbin/postgrey", f"--inet=127.0.0.1:{port}", f"--dbdir={db}",
                          "--delay=2", "--user=postgrey", "--group=postgrey",
                          f"--pidfile={d}/postgrey.pid", "--hostname=tern.test"],
                         stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    out.close()

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    if not wait_until(up, 20):
        p.kill()
        raise TestFailure("postgrey did not start: " +
                          open(os.path.join(d, "postgrey.out"), errors="replace").read()[-2000:])
    return p


def test_postgrey(s, t):
    first = None
    accepted = None
    # Bounded: at most 40 attempts, one a second; --delay is 2 s.
    for attempt in range(40):
        c = Client(t.port, source="127.0.0.60")
        try:
            r = transaction(c, "sender@x.test", "grey@tern.test")
            if first is None:
                first = r
            if r.code == 250:
                accepted = deliver(s, c, "sender@x.test", "grey@tern.test")
                break
            s.check(r.code == 450, f"attempt {attempt}: {r.text}")
        finally:
            c.close()
        wait_until(lambda: False, 1.0)
    s.check(first is not None and first.code == 450 and "Greylisted" in first.text,
            f"first attempt greylisted: {first}")
    s.check(accepted is not None, "a later attempt was accepted")
    if accepted:
        s.check(accepted in t.queue_by_id(), f"{accepted} in the queue")
    s.check(t.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.60\]: 450 4\.\d\.\d "
                       r"<grey@tern\.test>: Recipient address rejected: Greylisted"),
            "greylisting logged as a NOQUEUE reject")


# ---- DNSBL and unknown sender domains ----

ZONES = {
    "2.0.0.127.bl.test": {"A": "127.0.0.2", "TXT": ["listed for testing, see http://bl.test/"]},
    "4.0.0.127.bl.test": {"A": "127.0.0.4"},
    "known.test": {"A": "192.0.2.80"},
    "mx.test": {"MX": [(10, "known.test")]},
    "nullmx.test": {15: b"\x00\x00\x00"},
    "tempfail.test": "SERVFAIL",
    # RHS list, DNS allow list, and a sender domain whose MX is a bad host
    "spam.test.rhs.test": {"A": "127.0.0.2", "TXT": ["spammer domain, see http://rhs.test/"]},
    "5.0.0.127.wl.test": {"A": "127.0.5.1"},
    "5.0.0.127.bl.test": {"A": "127.0.0.2"},
    "badmx.test": {"MX": [(10, "mx.evil.test"), (20, "backup.good.test")]},
    "mx.evil.test": {"A": "192.0.2.66"},
    "backup.good.test": {"A": "192.0.2.67"},
    "evilnet.test": {"MX": [(10, "mail.evilnet.test")]},
    "mail.evilnet.test": {"A": "198.51.100.25"},
    "okmx.test": {"A": "192.0.2.81"},
}


def test_dnsbl_listed(s, t):
    mark = t.log_mark()
    c = Client(t.port, source="127.0.0.2")
    try:
        r = transaction(c, "a@known.test", "v@tern.test")
    finally:
        c.close()
    s.reply(r, 554, "5.7.1", "listed client")
    s.eq(r.text, "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using "
         "bl.test; listed for testing, see http://bl.test/", "reply with the TXT reason")
    s.check(t.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.2\]: 554 5\.7\.1 Service "
                       r"unavailable; Client host \[127\.0\.0\.2\] blocked using bl\.test; "
                       r"listed for testing", mark), "NOQUEUE line")


def test_dnsbl_filter(s, t):
    # 127.0.0.4 is listed with 127.0.0.4, but the rule asks for 127.0.0.2 only.
    c = Client(t.port, source="127.0.0.4")
    try:
        s.reply(transaction(c, "a@known.test", "v@tern.test"), 250, "2.1.5", "other answer")
    finally:
        c.close()


def test_dnsbl_unlisted(s, t):
    c = Client(t.port, source="127.0.0.3")
    try:
        s.reply(transaction(c, "a@known.test", "v@tern.test"), 250, "2.1.5", "unlisted")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        s.reply(transaction(c, "a@mx.test", "v@tern.test"), 250, "2.1.5", "sender domain with MX")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        r = transaction(c, "a@nx.test", "v@tern.test")
        s.eq(r.text, "450 4.1.8 <a@nx.test>: Sender address rejected: Domain not found",
             "sender domain that does not exist")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        r = transaction(c, "a@nullmx.test", "v@tern.test")
        s.eq(r.text, "550 5.7.27 <a@nullmx.test>: Sender address rejected: Domain nullmx.test "
             "does not accept mail (nullMX)", "null MX")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        r = transaction(c, "a@tempfail.test", "v@tern.test")
        s.reply(r, 450, "4.1.8", "temporary DNS failure: defer_if_permit")
    finally:
        c.close()


# ---- RHS lists, DNS allow lists, MX access ----

def test_rhsbl_sender(s, t):
    mark = t.log_mark()
    c = Client(t.port, source="127.0.0.3")
    try:
        r = transaction(c, "a@spam.test", "v@tern.test")
    finally:
        c.close()
    s.eq(r.text, "554 5.7.1 Service unavailable; Sender address [a@spam.test] blocked using "
         "rhs.test; spammer domain, see http://rhs.test/", "Postfix's default_rbl_reply")
    s.check(t.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.3\]: 554 5\.7\.1 Service "
                       r"unavailable; Sender address \[a@spam\.test\] blocked using rhs\.test; "
                       r"spammer domain, see http://rhs\.test/; from=<a@spam\.test> "
                       r"to=<v@tern\.test> proto=ESMTP helo=<client\.test>", mark), "NOQUEUE line")


def test_dnswl_permits(s, t):
    # 127.0.0.5 is on wl.test (any answer) and on bl.test: the allow list
    # comes first and ends the client list; 127.0.0.2 is refused as before.
    c = Client(t.port, source="127.0.0.5")
    try:
        s.reply(transaction(c, "a@known.test", "v@tern.test"), 250, "2.1.5", "allow-listed")
    finally:
        c.close()
    c = Client(t.port, source="127.0.0.2")
    try:
        s.reply(transaction(c, "a@known.test", "v@tern.test"), 554, "5.7.1", "not allow-listed")
    finally:
        c.close()


def test_mx_access(s, t):
    mark = t.log_mark()
    c = Client(t.port, source="127.0.0.3")
    try:
        r = transaction(c, "a@badmx.test", "v@tern.test")
        s.eq(r.text, "554 5.7.1 <a@badmx.test>: Sender address rejected: bad MX host",
             "an MX host named in the map")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        r = transaction(c, "b@evilnet.test", "v@tern.test")
        s.eq(r.text, "554 5.7.1 <b@evilnet.test>: Sender address rejected: MX in a bad network",
             "an MX host's address in a mapped network")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        s.reply(transaction(c, "a@known.test", "v@tern.test"), 250, "2.1.5",
                "a domain without MX, its own address not mapped")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        s.reply(transaction(c, "a@okmx.test", "v@tern.test"), 451, "4.3.5",
                "OK from an MX map is refused as a configuration error")
    finally:
        c.close()
    s.check(t.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.3\]: 554 5\.7\.1 "
                       r"<a@badmx\.test>: Sender address rejected: bad MX host; "
                       r"from=<a@badmx\.test> to=<v@tern\.test>", mark), "NOQUEUE line")
    s.check(t.wait_log(r"warning: restriction check_sender_mx_access returns OK for "
                       r"a@okmx\.test", mark), "OK is not allowed: warning")


# ---- a policy server that never answers ----

class SilentPolicy:
    """Accepts connections, reads, never answers."""

    def __init__(self, port):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(16)
        self.conns = []
        self.stop_flag = False
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        self.ls.settimeout(0.2)
        while not self.stop_flag:
            try:
                conn, _ = self.ls.accept()
                self.conns.append(conn)
            except OSError:
                continue

    def stop(self):
        self.stop_flag = True
        self.th.join(5)
        for c in self.conns:
            c.close()
        self.ls.close()


def test_policy_timeout(s, t):
    mark = t.log_mark()
    a = Client(t.port, source="127.0.0.70")
    try:
        for line in ("EHLO client.test", "MAIL FROM:<a@x.test>"):
            s.reply(a.cmd(line), 250, what=line)
        a.sock.sendall(b"RCPT TO:<v@tern.test>\r\n")
        # Another session, on the submission listener (no policy service),
        # goes through a whole transaction while the first one waits.
        b = ternlib.RawSMTP(t.submission_port)
        try:
            for line in ("EHLO other.test", "MAIL FROM:<b@x.test>", "RCPT TO:<w@tern.test>"):
                s.reply(b.cmd(line), 250, what=line)
            s.reply(b.cmd("DATA"), 354, what="DATA")
            r = b.cmd("Subject: t\r\n\r\nhi\r\n.")
            s.reply(r, 250, "2.0.0", "the other session's message")
        finally:
            b.close()
        s.check(not a.pending(), "the waiting session has no reply yet")
        r = a.reply()
        # The default action goes through the access(5) machinery, as in
        # Postfix: "<rcpt>: Recipient address rejected: " in front.
        s.eq(r.text, "451 4.3.5 <v@tern.test>: Recipient address rejected: Server configuration "
             "problem", "policy timeout")
    finally:
        a.close()
    s.check(t.wait_log(r"warning: problem talking to server inet:127\.0\.0\.1:\d+: .*timeout",
                       mark), "warning logged")


def test_hold_action(s, t):
    mark = t.log_mark()
    qid = ternlib.send_message(t, "sender@tern.test", ["held@remote.example"], subject="hold")
    s.check(t.wait_log(r"NOQUEUE: hold: RCPT from unknown\[127\.0\.0\.1\]: "
                       r"<held@remote\.example>: Recipient address suspicious; "
                       r"from=<sender@tern\.test> to=<held@remote\.example>", mark),
            "the HOLD action logged at RCPT as Postfix does")
    s.check(t.wait_log(rf"{qid}: placed on hold \(a HOLD action", mark), "qmgr holds it")

    def listed_held():
        out = ternlib.ternctl_run(t, "queue").stdout
        return re.search(rf"^{qid}!", out, re.M)
    s.check(wait_until(listed_held, 5), "mailq shows it held (!)")
    s.check(not re.search(rf"{qid}: to=", t.log_since(mark)), "nothing delivered")
    t.restart()
    mark2 = t.log_mark()
    s.check(wait_until(listed_held, 10), "still held after a restart")
    # qmgr's socket comes up a moment after smtpd's port.
    r = wait_until(lambda: (lambda p: p if p.returncode == 0 else None)(
        ternlib.ternctl_run(t, "queue", "release", qid)), 10)
    s.check(r, "ternctl queue release")
    s.check(t.wait_log(rf"{qid}: to=<held@remote\.example>, relay=none, .*status=sent", mark2,
                       10), "released, then delivered (discard:)")


def main():
    d, _ = ternlib.shared_files("restrict", {})
    dns = networld.DnsWorld(ZONES)
    pg = None
    silent = None
    try:
        dns.start()
        suite.group("relay", {"mynetworks": "127.0.0.1/32"}, [
            ("relay tricks from an untrusted client: refused, nothing queued", test_relay_tricks),
            ("the trusted client relays", test_trusted_relays),
        ])
        with open(os.path.join(d, "holdmap"), "w") as f:
            f.write("held@remote.example HOLD suspicious\n")
        os.chmod(os.path.join(d, "holdmap"), 0o644)
        suite.group("hold", {
            "mynetworks": "127.0.0.0/8",
            "default_transport": "discard:",
            "smtpd_recipient_restrictions":
                f"check_recipient_access texthash:{d}/holdmap, permit_mynetworks, "
                "reject_unauth_destination",
        }, [("a HOLD action: queued on hold, kept over a restart, released", test_hold_action)])
        pg_port, silent_port = ternlib.free_ports(2)
        try:
            pg = start_postgrey(d, pg_port)
        except TestFailure as e:
            # e is unbound after the except clause: the lambda keeps its own.
            suite.case("postgrey starts", lambda s, err=e: (_ for _ in ()).throw(err))
        if pg is not None:
            suite.group("postgrey", {
                "mynetworks": "127.0.0.1/32",
                "smtpd_recipient_restrictions":
                    f"reject_unauth_destination, check_policy_service inet:127.0.0.1:{pg_port}",
            }, [("postgrey: first attempt 450, a later one accepted", test_postgrey)])
        suite.group("dnsbl", {
            "mynetworks": "127.0.0.1/32",
            "dns_servers": dns.server,
            "smtpd_client_restrictions": "reject_rbl_client bl.test=127.0.0.2",
            "smtpd_sender_restrictions": "reject_unknown_sender_domain",
        }, [
            ("DNSBL: listed client refused with the TXT reason", test_dnsbl_listed),
            ("DNSBL: zone=d.d.d.d filters answers", test_dnsbl_filter),
            ("DNSBL: unlisted client; reject_unknown_sender_domain", test_dnsbl_unlisted),
        ])
        with open(os.path.join(d, "badmx"), "w") as f:
            f.write("mx.evil.test REJECT bad MX host\n"
                    "198.51.100 REJECT MX in a bad network\n"
                    "okmx.test OK\n")
        os.chmod(os.path.join(d, "badmx"), 0o644)
        suite.group("dns-words", {
            "mynetworks": "127.0.0.1/32",
            "dns_servers": dns.server,
            "smtpd_client_restrictions":
                "permit_dnswl_client wl.test, reject_rbl_client bl.test=127.0.0.[2..11]",
            "smtpd_sender_restrictions":
                f"reject_rhsbl_sender rhs.test, check_sender_mx_access texthash:{d}/badmx",
        }, [
            ("RHS list: a listed sender domain refused with default_rbl_reply", test_rhsbl_sender),
            ("DNS allow list: a listed client is permitted", test_dnswl_permits),
            ("check_sender_mx_access: bad MX names and networks", test_mx_access),
        ])
        silent = SilentPolicy(silent_port)
        suite.group("policy-timeout", {
            "mynetworks": "127.0.0.1/32",
            "smtpd_policy_service_timeout": "4s",
            "smtpd_recipient_restrictions":
                f"reject_unauth_destination, check_policy_service inet:127.0.0.1:{silent_port}",
            "submission_smtpd_recipient_restrictions": "reject_unauth_destination",
        }, [("policy server that never answers: 451 4.3.5, other sessions go on",
             test_policy_timeout)])
    finally:
        if pg is not None:
            pg.terminate()
            try:
                pg.wait(10)
            except subprocess.TimeoutExpired:
                pg.kill()
        if silent is not None:
            silent.stop()
        dns.stop()
        shutil.rmtree(d, ignore_errors=True)
    suite.finish()


main()
