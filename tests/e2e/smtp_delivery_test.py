"""End-to-end tests of outbound delivery: the real ternd's smtp agent, in a
private network namespace (networld.py) with dnsmasq serving test zones and
scripted fake MX servers (fakemx.py) on 127.0.0.x:25.

Covered: MX preference order, byte-exact dot-stuffed content, fallback to
the next MX after a refused connection and after a 421 greeting, implicit
MX, null MX (5.1.10), a domain that does not exist (5.4.4), a SERVFAIL
(deferred 4.4.3), a recipient's 5xx (bounced with the remote reply in the
DSN) beside a delivered one, a 4xx that defers and later succeeds, a server
without PIPELINING (no command early), SIZE (5.3.4, never sent), DSN
parameters passed on, SMTPUTF8 required but not offered (5.6.7), a server
that never answers (timed out, deferred) and one that drops the connection
in the middle of DATA (lost_connection, deferred).
"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import networld  # noqa: E402

networld.enter_private_netns()  # before any thread

import fakemx  # noqa: E402
import ternlib  # noqa: E402
from ternlib import TestFailure, wait_until  # noqa: E402

suite = ternlib.Suite("smtp_delivery")

RULES_DIR = tempfile.mkdtemp(prefix="tern-e2e-smtp-rules-", dir="/var/tmp")
os.chmod(RULES_DIR, 0o755)
RULES = os.path.join(RULES_DIR, "retry_rules")
with open(RULES, "w") as f:
    f.write("# short rules for the test: every 3 s, for an hour\n*  *  F,1h,3s\n")
os.chmod(RULES, 0o644)

ZONES = {
    "pref.test": {"MX": [(20, "mx2.pref.test"), (10, "mx1.pref.test")]},
    "mx1.pref.test": {"A": "127.0.0.11"},
    "mx2.pref.test": {"A": "127.0.0.12"},
    "fall.test": {"MX": [(10, "dead.fall.test"), (20, "live.fall.test")]},
    "dead.fall.test": {"A": "127.0.0.13"},          # nothing listens: refused
    "live.fall.test": {"A": "127.0.0.14"},
    "busy.test": {"MX": [(10, "mx1.busy.test"), (20, "mx2.busy.test")]},
    "mx1.busy.test": {"A": "127.0.0.15"},           # 421 greeting
    "mx2.busy.test": {"A": "127.0.0.16"},
    "implicit.test": {"A": "127.0.0.17"},           # no MX: the domain itself
    "null.test": {"MX": [(0, ".")]},
    "broken.test": "SERVFAIL",
    "rcpt.test": {"MX": [(10, "mx.rcpt.test")]},
    "mx.rcpt.test": {"A": "127.0.0.18"},
    "plain.test": {"MX": [(10, "mx.plain.test")]},
    "mx.plain.test": {"A": "127.0.0.19"},           # no PIPELINING, SIZE 100
    "mute.test": {"MX": [(10, "mx.mute.test")]},
    "mx.mute.test": {"A": "127.0.0.20"},            # never answers
    "drop.test": {"MX": [(10, "mx.drop.test")]},
    "mx.drop.test": {"A": "127.0.0.21"},            # drops in DATA
    "ascii.test": {"MX": [(10, "mx.ascii.test")]},
    "mx.ascii.test": {"A": "127.0.0.22"},           # no SMTPUTF8
}

dns = networld.DnsWorld(ZONES)
dns.start()
MX = {
    "mx1.pref": fakemx.FakeMX("127.0.0.11"),
    "mx2.pref": fakemx.FakeMX("127.0.0.12"),
    "live.fall": fakemx.FakeMX("127.0.0.14"),
    "mx1.busy": fakemx.FakeMX("127.0.0.15", mode="greet_4xx"),
    "mx2.busy": fakemx.FakeMX("127.0.0.16"),
    "implicit": fakemx.FakeMX("127.0.0.17"),
    "rcpt": fakemx.FakeMX("127.0.0.18", script={
        "RCPT bad@rcpt.test": "550 5.1.1 <bad@rcpt.test>: no such user",
        "RCPT later@rcpt.test": ["452 4.2.2 mailbox full", "250 2.1.5 ok"],
    }),
    "plain": fakemx.FakeMX("127.0.0.19", mode="no_pipelining",
                           caps=["SIZE 100", "ENHANCEDSTATUSCODES", "8BITMIME"]),
    "mute": fakemx.FakeMX("127.0.0.20", mode="never_answer"),
    "drop": fakemx.FakeMX("127.0.0.21", mode="drop_mid_data", drop_after=10),
    "ascii": fakemx.FakeMX("127.0.0.22", caps=["PIPELINING", "8BITMIME"]),
}
for m in MX.values():
    m.start()

PARAMS = {
    "dns_servers": dns.server,
    "default_transport": "smtp",
    "local_transport": "retry:4.3.0 mailbox not ready",  # keeps DSNs queued
    "retry_rules": RULES,
    "smtp_connect_timeout": "2s",
    "smtp_helo_timeout": "2s",
    "smtp_data_done_timeout": "5s",
    "message_size_limit": "10000000",
}


def send(t, sender, rcpts, body=b"hello\r\n", rcpt_params="", mail_params="", subject="test"):
    data = (f"From: <{sender}>\r\nTo: <{rcpts[0]}>\r\nSubject: {subject}\r\n\r\n".encode() +
            body)
    stuffed = re.sub(rb"(?m)^\.", b"..", data)
    with t.raw() as c:
        for line in (f"EHLO client.test", f"MAIL FROM:<{sender}>{mail_params}"):
            r = c.cmd(line)
            if r.code != 250:
                raise TestFailure(f"{line}: {r}")
        for rc in rcpts:
            r = c.cmd(f"RCPT TO:<{rc}>{rcpt_params}")
            if r.code != 250:
                raise TestFailure(f"RCPT {rc}: {r}")
        r = c.cmd("DATA")
        if r.code != 354:
            raise TestFailure(f"DATA: {r}")
        c.send(stuffed + b".\r\n")
        final = c.reply()
        c.cmd("QUIT")
    m = ternlib.QUEUED_RE.search(final.text)
    if final.code != 250 or not m:
        raise TestFailure(f"end of DATA: {final}")
    return m.group(1)


def ternctl(t, *args):
    return subprocess.run([ternlib.TERNCTL, "-c", t.conf, *args], capture_output=True, text=True,
                          timeout=60)


def delivery(t, qid):
    e = t.queue_by_id().get(qid)
    if e is None:
        return None
    return {d["address"]: d for d in e.get("delivery", [])}


def state_of(t, qid, addr):
    return ((delivery(t, qid) or {}).get(addr) or {})


def wait_gone(s, t, qid, timeout=15):
    return s.check(wait_until(lambda: qid not in t.queue_by_id(), timeout), f"{qid} removed")


def dsns_to(t, rcpt):
    return [t.msg_bytes(e["id"]) for e in t.queue()
            if e.get("sender") == "" and e.get("recipients") == [rcpt]]


def test_mx_order_and_content(s, t):
    mark = t.log_mark()
    body = b"line one\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast\r\n"
    qid = send(t, "ann@tern.test", ["bob@pref.test"], body=body, subject="dots")
    s.check(t.wait_log(rf"{qid}: to=<bob@pref.test>, relay=mx1\.pref\.test\[127\.0\.0\.11\]:25, "
                       r"delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, "
                       r"status=sent \(250 ", mark), "sent to the preference-10 MX, Postfix log line")
    wait_gone(s, t, qid)
    msgs = MX["mx1.pref"].messages()
    s.eq(len(msgs), 1, "one message at mx1")
    s.eq(len(MX["mx2.pref"].messages()), 0, "none at mx2")
    if msgs:
        tx = msgs[0]
        s.eq(tx.sender, "ann@tern.test", "envelope sender")
        s.eq(tx.recipients, ["bob@pref.test"], "envelope recipient")
        s.check(tx.data.endswith(b"\r\n\r\n" + body), f"body byte for byte: {tx.data[-80:]!r}")
        s.check(b"\r\n..starts with a dot\r\n...two dots\r\n..\r\n" in tx.data_raw,
                "dot-stuffed on the wire")
        s.check(tx.param("SIZE") is not None, "SIZE= sent to a server that offers SIZE")


def test_fallback_refused(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["carl@fall.test"])
    s.check(t.wait_log(rf"{qid}: to=<carl@fall.test>, relay=live\.fall\.test\[127\.0\.0\.14\]:25"
                       r".*status=sent", mark), "delivered by the second MX")
    s.eq(len(MX["live.fall"].messages()), 1, "one message at the live MX")


def test_fallback_421(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["dora@busy.test"])
    s.check(t.wait_log(rf"{qid}: to=<dora@busy.test>, relay=mx2\.busy\.test.*status=sent", mark),
            "421 greeting: the next MX took it")


def test_implicit_mx(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["ed@implicit.test"])
    s.check(t.wait_log(rf"{qid}: to=<ed@implicit.test>, relay=implicit\.test\[127\.0\.0\.17\]:25"
                       r".*status=sent", mark), "delivered to the domain's own address")


def test_null_mx(s, t):
    mark = t.log_mark()
    qid = send(t, "fay@tern.test", ["gus@null.test"])
    s.check(t.wait_log(rf"{qid}: to=<gus@null.test>, relay=none.*dsn=5\.1\.10, status=bounced "
                       r"\(.*does not accept mail", mark), "null MX bounces with 5.1.10")
    wait_gone(s, t, qid)
    s.check(wait_until(lambda: dsns_to(t, "fay@tern.test"), 5), "a DSN for the sender")


def test_nxdomain(s, t):
    mark = t.log_mark()
    qid = send(t, "fay@tern.test", ["hal@nowhere.test"])
    s.check(t.wait_log(rf"{qid}: to=<hal@nowhere.test>, relay=none.*dsn=5\.4\.4, status=bounced "
                       r"\(Host or domain name not found", mark), "NXDOMAIN bounces with 5.4.4")


def test_servfail(s, t):
    mark = t.log_mark()
    qid = send(t, "fay@tern.test", ["ida@broken.test"])
    s.check(t.wait_log(rf"{qid}: to=<ida@broken.test>, relay=none.*dsn=4\.4\.3, "
                       r"status=deferred", mark), "SERVFAIL defers with 4.4.3")
    s.eq(state_of(t, qid, "ida@broken.test").get("state"), "deferred", "deferred in the queue")
    ternctl(t, "queue", "delete", qid)


def test_rcpt_5xx_and_4xx(s, t):
    mark = t.log_mark()
    qid = send(t, "jan@tern.test", ["ok@rcpt.test", "bad@rcpt.test", "later@rcpt.test"],
               subject="mixed")
    s.check(t.wait_log(rf"{qid}: to=<ok@rcpt.test>.*status=sent", mark), "ok delivered")
    s.check(t.wait_log(rf"{qid}: to=<bad@rcpt.test>.*dsn=5\.1\.1, status=bounced \(host "
                       r"mx\.rcpt\.test\[127\.0\.0\.18\] said: 550 5\.1\.1 <bad@rcpt\.test>: "
                       r"no such user \(in reply to RCPT TO command\)\)", mark),
            "bad bounced with the remote reply, Postfix's words")
    s.check(t.wait_log(rf"{qid}: to=<later@rcpt.test>.*dsn=4\.2\.2, status=deferred", mark),
            "later deferred")
    d = state_of(t, qid, "later@rcpt.test")
    s.eq(d.get("error_class"), "rcpt_452", "error class recorded for the retry rules")
    s.check(t.wait_log(rf"{qid}: to=<later@rcpt.test>.*status=sent", mark, timeout=20),
            "later delivered on the retry")
    wait_gone(s, t, qid)
    dsn = dsns_to(t, "jan@tern.test")
    s.check(any(b"Diagnostic-Code: smtp; 550 5.1.1 <bad@rcpt.test>: no such user" in d
                for d in dsn), "the DSN carries the remote reply")


def test_no_pipelining_and_size(s, t):
    mark = t.log_mark()
    qid = send(t, "kim@tern.test", ["lou@plain.test"])
    s.check(t.wait_log(rf"{qid}: to=<lou@plain.test>.*dsn=5\.3\.4, status=bounced \(message size "
                       r"\d+ exceeds size limit 100 of server mx\.plain\.test", mark),
            "over the server's SIZE: bounced 5.3.4 without sending")
    s.eq(len(MX["plain"].transactions()), 0, "no transaction started")
    MX["plain"].caps = ["SIZE 100000", "ENHANCEDSTATUSCODES", "8BITMIME"]
    qid = send(t, "kim@tern.test", ["lou@plain.test", "max@plain.test"])
    s.check(t.wait_log(rf"{qid}: to=<max@plain.test>.*status=sent", mark), "sent one by one")
    s.eq(MX["plain"].violations(), [], "no command sent before its reply")


def test_dsn_parameters(s, t):
    mark = t.log_mark()
    qid = send(t, "ned@tern.test", ["oz@implicit.test"], rcpt_params=" NOTIFY=SUCCESS,FAILURE "
               "ORCPT=rfc822;oz+2Bx@implicit.test", mail_params=" RET=HDRS ENVID=abc+2B1")
    s.check(t.wait_log(rf"{qid}: to=<oz@implicit.test>.*status=sent", mark), "sent")
    txs = [x for x in MX["implicit"].messages() if x.recipients == ["oz@implicit.test"]]
    s.eq(len(txs), 1, "one transaction")
    if txs:
        tx = txs[0]
        s.eq(tx.param("RET"), "HDRS", "RET passed on")
        s.eq(tx.param("ENVID"), "abc+2B1", "ENVID passed on, xtext")
        line = tx.rcpts[0].line
        s.check("NOTIFY=SUCCESS,FAILURE" in line, f"NOTIFY passed on: {line}")
        s.check("ORCPT=rfc822;oz+2Bx@implicit.test" in line, f"ORCPT passed on: {line}")
    wait_gone(s, t, qid)
    s.check(not dsns_to(t, "ned@tern.test"), "no success DSN: the server took DSN")


def test_smtputf8_required(s, t):
    mark = t.log_mark()
    qid = send(t, "pia@tern.test", ["ray@ascii.test"], mail_params=" SMTPUTF8")
    s.check(t.wait_log(rf"{qid}: to=<ray@ascii.test>.*dsn=5\.6\.7, status=bounced \(SMTPUTF8 is "
                       r"required, but was not offered by host mx\.ascii\.test", mark),
            "bounced 5.6.7")


def test_never_answers(s, t):
    mark = t.log_mark()
    qid = send(t, "sam@tern.test", ["tom@mute.test"])
    s.check(t.wait_log(rf"{qid}: to=<tom@mute.test>.*status=deferred \(conversation with "
                       r"mx\.mute\.test\[127\.0\.0\.20\] timed out while receiving the initial "
                       r"server greeting\)", mark, timeout=10), "timed out, deferred")
    s.eq(state_of(t, qid, "tom@mute.test").get("error_class"), "timeout_MX", "timeout_MX")
    ternctl(t, "queue", "delete", qid)


def test_drop_mid_data(s, t):
    mark = t.log_mark()
    qid = send(t, "uma@tern.test", ["vic@drop.test"], body=b"x" * 5000 + b"\r\n")
    # 5 KB fit the socket buffers: the loss shows after the content went out.
    s.check(t.wait_log(rf"{qid}: to=<vic@drop.test>.*status=deferred \(lost connection with "
                       r"mx\.drop\.test\[127\.0\.0\.21\] while sending (message body|end of "
                       r"data -- message may be sent more than once)\)", mark),
            "lost connection, deferred")
    s.eq(state_of(t, qid, "vic@drop.test").get("error_class"), "lost_connection",
         "lost_connection")
    ternctl(t, "queue", "delete", qid)


try:
    suite.group("smtp", dict(PARAMS), [
        ("MX preference order, byte-exact dot-stuffed content", test_mx_order_and_content),
        ("refused MX: the next one", test_fallback_refused),
        ("421 greeting: the next MX", test_fallback_421),
        ("implicit MX", test_implicit_mx),
        ("null MX bounces (5.1.10)", test_null_mx),
        ("NXDOMAIN bounces (5.4.4)", test_nxdomain),
        ("SERVFAIL defers (4.4.3)", test_servfail),
        ("RCPT 550 bounces, 452 defers then succeeds", test_rcpt_5xx_and_4xx),
        ("no PIPELINING; SIZE refused before sending", test_no_pipelining_and_size),
        ("DSN parameters passed on", test_dsn_parameters),
        ("SMTPUTF8 required, not offered (5.6.7)", test_smtputf8_required),
        ("a server that never answers", test_never_answers),
        ("connection dropped in DATA", test_drop_mid_data),
    ])
finally:
    for m in MX.values():
        m.stop()
    dns.stop()
suite.finish()
