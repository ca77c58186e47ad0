"""End-to-end tests of the client's names (smtpd_peer.c) in the real smtpd,
in a private network namespace (networld.py) with dnsmasq as the DNS:

- a forward-confirmed name (127.0.0.10 <-> good.client.test): in "connect
  from", "client=", the Received header (with and without HELO), the
  policy service's client_name, and check_client_access matching the
  name's parent domain (a PREPEND action proves the match);
- a PTR whose name does not resolve back (127.0.0.11 -> liar.client.test,
  which is 127.0.0.99): client_name unknown, reverse_client_name set,
  Postfix's warning; reject_unknown_client_hostname refuses with
  unknown_client_reject_code, reject_unknown_reverse_client_hostname
  passes; an access map entry for the PTR name is not used;
- no PTR (NXDOMAIN), a SERVFAIL, a numeric PTR;
- a DNS server that never answers, for the PTR (127.0.0.14) and for the
  forward lookup (127.0.0.15 -> host.slow.test): the greeting comes after
  smtpd_peername_lookup_timeout, the names are unknown, and
  reject_unknown_client_hostname answers 450 although the reject code is
  550; meanwhile another client is served; SIGTERM during the wait gives
  the client 421 and ternd exits 0;
- smtpd_peername_lookup = no: unknown for good;
- the DNS words on the client's names: reject_rhsbl_client refuses a
  confirmed name on an RHS list with Postfix's default_rbl_reply and
  skips a PTR name that is not confirmed, which reject_rhsbl_reverse_client
  refuses; check_client_a_access refuses a confirmed name with an address
  in a bad network (multi.client.test, 127.0.0.17 and 198.51.100.7), and
  check_reverse_client_hostname_a_access a PTR name whose address is in
  one (127.0.0.18 -> stray.client.test, 198.51.100.8), which
  check_client_a_access skips.
"""
import os
import shutil
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import networld  # noqa: E402

networld.enter_private_netns()  # before any thread

import ternlib  # noqa: E402
from ternlib import TestFailure  # noqa: E402

suite = ternlib.Suite("smtpd_peer")


def wire_name(name):
    """A domain name in DNS wire form (PTR rdata)."""
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\x00"


ZONES = {
    # host-record gives the PTR of 127.0.0.10 too: a confirmed name.
    "good.client.test": {"A": "127.0.0.10"},
    # A PTR to a name whose address is another one.
    "11.0.0.127.in-addr.arpa": {"PTR": wire_name("liar.client.test")},
    "liar.client.test": {"A": "127.0.0.99"},
    # 127.0.0.12: nothing (in-addr.arpa is local: NXDOMAIN).
    "13.0.0.127.in-addr.arpa": "SERVFAIL",
    "14.0.0.127.in-addr.arpa": "TIMEOUT",
    "15.0.0.127.in-addr.arpa": {"PTR": wire_name("host.slow.test")},
    "slow.test": "TIMEOUT",
    "16.0.0.127.in-addr.arpa": {"PTR": wire_name("127.0.0.16")},
    # The DNS words: an RHS list naming the confirmed and the PTR-only
    # name, a confirmed name with a second address in a bad network, and
    # a PTR-only name whose address is in it.
    "good.client.test.rhs.test": {"A": "127.0.0.2", "TXT": ["confirmed name listed"]},
    "liar.client.test.rhs.test": {"A": "127.0.0.2", "TXT": ["PTR name listed"]},
    "multi.client.test": {"A": ["127.0.0.17", "198.51.100.7"]},
    "18.0.0.127.in-addr.arpa": {"PTR": wire_name("stray.client.test")},
    "stray.client.test": {"A": "198.51.100.8"},
}

GOOD, LIAR, NOPTR, SERVFAIL, DEAD, SLOW, NUMERIC, MULTI, STRAY = (
    "127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14", "127.0.0.15",
    "127.0.0.16", "127.0.0.17", "127.0.0.18")


def Client(port, source, timeout=20.0, greet=True):
    """An SMTP client bound to a chosen loopback source address."""
    return ternlib.RawSMTP(port, timeout=timeout, greeting=greet, source=source,
                           quit_on_close=True)


def rcpt(c, helo="helo.test"):
    """HELO (unless None), MAIL, RCPT; the RCPT reply."""
    if helo is not None:
        r = c.cmd(f"EHLO {helo}")
        if r.code != 250:
            raise TestFailure(f"EHLO: {r}")
    r = c.cmd("MAIL FROM:<a@sender.test>")
    if r.code != 250:
        raise TestFailure(f"MAIL: {r}")
    return c.cmd("RCPT TO:<v@tern.test>")


def deliver(s, c):
    """DATA after an accepted RCPT; the queue id."""
    s.reply(c.cmd("DATA"), 354, what="DATA")
    r = c.cmd("Subject: t\r\n\r\nhello\r\n.")
    s.reply(r, 250, "2.0.0", "end of data")
    return r.text.rsplit(" ", 1)[-1]


def headers(t, qid):
    """The header lines of a queued message, unfolded, as text."""
    data = t.msg_bytes(qid)
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    return head.replace("\r\n\t", " ").split("\r\n")


# ---- a policy server that records what it is told ----

class PolicyRecorder(threading.Thread):
    """Answers every request DUNNO and keeps the requests."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(8)
        self.ls.settimeout(0.2)
        self.requests = []
        self.stopping = False

    def run(self):
        while not self.stopping:
            try:
                conn, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        conn.settimeout(30)
        buf = b""
        try:
            while not self.stopping:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n\n" in buf:
                    req, buf = buf.split(b"\n\n", 1)
                    attrs = dict(ln.split("=", 1) for ln in req.decode().split("\n") if "=" in ln)
                    self.requests.append(attrs)
                    conn.sendall(b"action=DUNNO\n\n")
        except OSError:
            return
        finally:
            conn.close()

    def last_from(self, addr):
        for a in reversed(self.requests):
            if a.get("client_address") == addr:
                return a
        return None

    def stop(self):
        self.stopping = True
        self.ls.close()


# ---- names: logs, Received, access map, policy ----

def test_confirmed(s, t, policy):
    mark = t.log_mark()
    c = Client(t.port, GOOD)
    try:
        s.reply(rcpt(c), 250, "2.1.5", "RCPT")
        qid = deliver(s, c)
    finally:
        c.close()
    s.check(t.wait_log(r"smtpd\[\d+\]: connect from good\.client\.test\[127\.0\.0\.10\]$", mark),
            "connect line with the name")
    s.check(t.wait_log(rf"{qid}: client=good\.client\.test\[127\.0\.0\.10\]$", mark),
            "client= line with the name")
    s.check(t.wait_log(r"disconnect from good\.client\.test\[127\.0\.0\.10\] ", mark),
            "disconnect line with the name")
    h = headers(t, qid)
    s.check(any(x.startswith("Received: from helo.test (good.client.test [127.0.0.10]) by tern.test")
                for x in h), f"Received header in Postfix's form: {h}")
    s.check("X-Client-Match: by name" in h,
            f"check_client_access matched the name's parent (PREPEND header): {h}")
    a = policy.last_from(GOOD)
    s.check(a is not None and a.get("client_name") == "good.client.test" and
            a.get("reverse_client_name") == "good.client.test",
            f"policy: client_name, reverse_client_name: {a}")


def test_no_helo(s, t, policy):
    c = Client(t.port, GOOD)
    try:
        s.reply(rcpt(c, helo=None), 250, "2.1.5", "RCPT without HELO")
        qid = deliver(s, c)
    finally:
        c.close()
    h = headers(t, qid)
    s.check(any(x.startswith("Received: from good.client.test (good.client.test [127.0.0.10])")
                for x in h), f"the name stands in for HELO: {h}")


def test_mismatch(s, t, policy):
    mark = t.log_mark()
    c = Client(t.port, LIAR)
    try:
        s.reply(rcpt(c), 250, "2.1.5", "RCPT (the PTR name's map entry is not used)")
        qid = deliver(s, c)
    finally:
        c.close()
    s.check(t.wait_log(r"warning: hostname liar\.client\.test does not resolve to address "
                       r"127\.0\.0\.11$", mark), "Postfix's warning")
    s.check(t.wait_log(r"connect from unknown\[127\.0\.0\.11\]$", mark), "connect from unknown")
    h = headers(t, qid)
    s.check(any(x.startswith("Received: from helo.test (unknown [127.0.0.11])") for x in h),
            f"Received with unknown: {h}")
    s.check("X-Client-Match: by name" not in h, "no match by a name that is not verified")
    a = policy.last_from(LIAR)
    s.check(a is not None and a.get("client_name") == "unknown" and
            a.get("reverse_client_name") == "liar.client.test",
            f"policy: client_name unknown, reverse_client_name the PTR's: {a}")


def test_no_ptr(s, t, policy):
    mark = t.log_mark()
    c = Client(t.port, NOPTR)
    try:
        s.reply(rcpt(c), 250, "2.1.5", "RCPT")
    finally:
        c.close()
    s.check(t.wait_log(r"connect from unknown\[127\.0\.0\.12\]$", mark), "connect from unknown")
    a = policy.last_from(NOPTR)
    s.check(a is not None and a.get("client_name") == "unknown" and
            a.get("reverse_client_name") == "unknown", f"policy: both unknown: {a}")


# ---- the reject_unknown_* words ----

def strict_rcpt(s, t, source, want_smtp, want_submission, what):
    for port, want, where in ((t.port, want_smtp, "reject_unknown_client_hostname"),
                              (t.submission_port, want_submission,
                               "reject_unknown_reverse_client_hostname")):
        c = Client(port, source)
        try:
            r = rcpt(c)
        finally:
            c.close()
        if want.startswith("250"):
            s.reply(r, 250, "2.1.5", f"{what}: {where}")
        else:
            s.eq(r.text, want, f"{what}: {where}")


def test_strict_confirmed(s, t):
    strict_rcpt(s, t, GOOD, "250", "250", "confirmed name")


def test_strict_mismatch(s, t):
    strict_rcpt(s, t, LIAR,
                "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.11]",
                "250", "PTR that does not resolve back")


def test_strict_no_ptr(s, t):
    mark = t.log_mark()
    strict_rcpt(s, t, NOPTR,
                "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.12]",
                "550 5.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.12]",
                "no PTR")
    s.check(t.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.12\]: 550 5\.7\.25 Client "
                       r"host rejected: cannot find your hostname, \[127\.0\.0\.12\]; "
                       r"from=<a@sender\.test> to=<v@tern\.test> proto=ESMTP helo=<helo\.test>$",
                       mark), "NOQUEUE line")


def test_strict_servfail(s, t):
    strict_rcpt(s, t, SERVFAIL,
                "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.13]",
                "450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.13]",
                "SERVFAIL: temporary whatever the reject code")


def test_strict_numeric(s, t):
    # A numeric PTR is no name; the resolver drops it with Postfix's
    # warning, and a reply holding nothing else is a temporary failure
    # (doc/restrictions.md: a deviation, Postfix's is permanent).
    mark = t.log_mark()
    strict_rcpt(s, t, NUMERIC,
                "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.16]",
                "450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.16]",
                "numeric PTR")
    s.check(t.wait_log(r"warning: malformed domain name in resource data of PTR record for "
                       r"16\.0\.0\.127\.in-addr\.arpa: 127\.0\.0\.16$", mark), "resolver warning")
    s.check(t.wait_log(r"connect from unknown\[127\.0\.0\.16\]$", mark), "connect from unknown")


# ---- a DNS server that never answers ----

def test_dead_ptr(s, t):
    mark = t.log_mark()
    # Connects first, waits for its names; a client with a name is served
    # meanwhile, and its connect line comes first.
    slow = Client(t.port, DEAD, greet=False)
    try:
        c = Client(t.port, GOOD)
        try:
            s.reply(rcpt(c), 250, "2.1.5", "another client meanwhile")
        finally:
            c.close()
        slow.greeting = slow.reply()
        s.reply(slow.greeting, 220, what="greeting after the deadline")
        r = rcpt(slow)
        s.eq(r.text, "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.14]",
             "temporary although unknown_client_reject_code = 550")
    finally:
        slow.close()
    m = t.wait_log(r"connect from unknown\[127\.0\.0\.14\]$", mark)
    s.check(m, "connect from unknown after the deadline")
    log = t.log_since(mark)
    good = log.find("connect from good.client.test[127.0.0.10]")
    dead = log.find("connect from unknown[127.0.0.14]")
    s.check(0 <= good < dead, "the other client's connect line came first")


def test_dead_forward(s, t):
    mark = t.log_mark()
    strict_rcpt(s, t, SLOW,
                "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.15]",
                "250", "forward lookup never answered: the PTR name stands")
    s.check(t.wait_log(r"warning: hostname host\.slow\.test does not resolve to address "
                       r"127\.0\.0\.15: Temporary failure in name resolution$", mark),
            "Postfix's warning for a temporary failure")


def test_drain_during_lookup(s, t):
    slow = Client(t.port, DEAD, greet=False)
    try:
        # A session waiting for its names counts: ternd answers it before
        # it goes, instead of waiting for the deadline or dropping it.
        stopper = threading.Thread(target=t.stop, daemon=True)
        stopper.start()
        r = slow.reply()
        s.eq(r.text, "421 4.3.2 tern.test Service shutting down", "421 as the greeting")
        stopper.join(30)
    finally:
        slow.sock.close()
    # stop() set t.proc to None when ternd exited; start it again for the
    # group's own stop case.
    s.check(t.proc is None, "ternd exited on SIGTERM")
    t.start()


def test_lookup_off(s, t):
    mark = t.log_mark()
    strict_rcpt(s, t, GOOD,
                "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.10]",
                "550 5.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.10]",
                "smtpd_peername_lookup = no")
    s.check(t.wait_log(r"connect from unknown\[127\.0\.0\.10\]$", mark), "connect from unknown")


# ---- the DNS words on the client's names ----

def words_rcpt(port, source):
    c = Client(port, source)
    try:
        return rcpt(c)
    finally:
        c.close()


def test_rhsbl_confirmed(s, t):
    mark = t.log_mark()
    r = words_rcpt(t.port, GOOD)
    s.eq(r.text, "554 5.7.1 Service unavailable; Client host [good.client.test] blocked using "
         "rhs.test; confirmed name listed", "reject_rhsbl_client: Postfix's default_rbl_reply")
    s.check(t.wait_log(r"NOQUEUE: reject: RCPT from good\.client\.test\[127\.0\.0\.10\]: 554 "
                       r"5\.7\.1 Service unavailable; Client host \[good\.client\.test\] blocked "
                       r"using rhs\.test; confirmed name listed; from=<a@sender\.test> "
                       r"to=<v@tern\.test> proto=ESMTP helo=<helo\.test>$", mark), "NOQUEUE line")
    # A confirmed name is the reverse name too.
    r = words_rcpt(t.submission_port, GOOD)
    s.eq(r.text, "554 5.7.1 Service unavailable; Unverified Client host [good.client.test] "
         "blocked using rhs.test; confirmed name listed", "reject_rhsbl_reverse_client")


def test_rhsbl_unconfirmed(s, t):
    mark = t.log_mark()
    s.reply(words_rcpt(t.port, LIAR), 250, "2.1.5",
            "reject_rhsbl_client skips a PTR name that is not confirmed")
    r = words_rcpt(t.submission_port, LIAR)
    s.eq(r.text, "554 5.7.1 Service unavailable; Unverified Client host [liar.client.test] "
         "blocked using rhs.test; PTR name listed", "reject_rhsbl_reverse_client refuses it")
    s.check(t.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.11\]: 554 5\.7\.1 "
                       r"Service unavailable; Unverified Client host \[liar\.client\.test\] "
                       r"blocked using rhs\.test; PTR name listed; ", mark), "NOQUEUE line")


def test_a_access(s, t):
    r = words_rcpt(t.port, MULTI)
    s.eq(r.text, "554 5.7.1 <multi.client.test[127.0.0.17]>: Client host rejected: "
         "name in a bad network", "check_client_a_access: one address of the name is mapped")
    # The confirmed name is the reverse name too.
    r = words_rcpt(t.submission_port, MULTI)
    s.eq(r.text, "554 5.7.1 <multi.client.test[127.0.0.17]>: Unverified Client host rejected: "
         "name in a bad network", "check_reverse_client_hostname_a_access")


def test_reverse_a_access(s, t):
    s.reply(words_rcpt(t.port, STRAY), 250, "2.1.5",
            "check_client_a_access skips a PTR name that is not confirmed")
    r = words_rcpt(t.submission_port, STRAY)
    s.eq(r.text, "554 5.7.1 <unknown[127.0.0.18]>: Unverified Client host rejected: "
         "name in a bad network", "check_reverse_client_hostname_a_access")


def main():
    d, _ = ternlib.shared_files("peer", {
        "access": "client.test PREPEND X-Client-Match: by name\n"
                  "liar.client.test REJECT matched the PTR name\n",
        "badnet": "198.51.100 REJECT name in a bad network\n",
    })
    dns = networld.DnsWorld(ZONES, local=("test", "in-addr.arpa"))
    policy = None
    try:
        dns.start()
        base = {
            "dns_servers": dns.server,
            "smtpd_peername_lookup": "yes",
            "smtpd_peername_lookup_timeout": "3s",
            "mynetworks": "127.0.0.1/32",
        }
        policy_port, = ternlib.free_ports(1)
        policy = PolicyRecorder(policy_port)
        policy.start()
        suite.group("names", dict(base, **{
            "smtpd_client_restrictions": f"check_client_access texthash:{d}/access",
            "smtpd_recipient_restrictions":
                f"reject_unauth_destination, check_policy_service inet:127.0.0.1:{policy_port}",
        }), [
            ("confirmed name: logs, Received, access map by name, policy",
             lambda s, t: test_confirmed(s, t, policy)),
            ("no HELO: the name in the Received header", lambda s, t: test_no_helo(s, t, policy)),
            ("PTR that does not resolve back", lambda s, t: test_mismatch(s, t, policy)),
            ("no PTR", lambda s, t: test_no_ptr(s, t, policy)),
        ])
        strict = dict(base, **{
            "unknown_client_reject_code": "550",
            "smtpd_client_restrictions": "reject_unknown_client_hostname",
            "submission_smtpd_client_restrictions": "reject_unknown_reverse_client_hostname",
        })
        suite.group("strict", strict, [
            ("confirmed name passes both", test_strict_confirmed),
            ("PTR that does not resolve back", test_strict_mismatch),
            ("no PTR: both refuse, permanent", test_strict_no_ptr),
            ("SERVFAIL: both 450", test_strict_servfail),
            ("numeric PTR", test_strict_numeric),
        ])
        suite.group("dead-dns", strict, [
            ("PTR never answered: greeting after the deadline, 450; others served",
             test_dead_ptr),
            ("forward lookup never answered", test_dead_forward),
            ("SIGTERM while a client waits for its names", test_drain_during_lookup),
        ])
        suite.group("dns-words", dict(base, **{
            "smtpd_client_restrictions":
                f"reject_rhsbl_client rhs.test, check_client_a_access texthash:{d}/badnet",
            "submission_smtpd_client_restrictions":
                f"reject_rhsbl_reverse_client rhs.test, "
                f"check_reverse_client_hostname_a_access texthash:{d}/badnet",
        }), [
            ("reject_rhsbl_client: a confirmed name on an RHS list", test_rhsbl_confirmed),
            ("reject_rhsbl_reverse_client: a PTR name that is not confirmed",
             test_rhsbl_unconfirmed),
            ("check_client_a_access: a name with an address in a bad network", test_a_access),
            ("check_reverse_client_hostname_a_access: a PTR name in a bad network",
             test_reverse_a_access),
        ])
        suite.group("lookup-off", dict(strict, smtpd_peername_lookup="no"), [
            ("smtpd_peername_lookup = no: unknown, permanent", test_lookup_off),
        ])
    finally:
        if policy is not None:
            policy.stop()
        dns.stop()
        shutil.rmtree(d, ignore_errors=True)
    suite.finish()


main()
