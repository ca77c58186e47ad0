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

Hostile replies (smtp_reply.c's bounds): a multi-line greeting and an EHLO
reply that never end (20 MB offered: the agent stops at 100 lines, or at
64 KB of text), 10 MB of garbage instead of the greeting (one endless
line: stopped at 4,096 bytes) and after a good 250 to MAIL (NULs), a reply
line over 4,096 bytes, reply codes that are not codes ("2x0 ok", "99
hello"): each a clean deferral, dsn=4.5.0, error class "other" ("host ...
sent a malformed reply while ...: REASON"), the connection closed by the
agent, the same agent process delivering the next message. A 2,000-byte
line, over RFC 5321's 512 (4.5.3.1.5) but within the agent's 4,096, is
taken (RFC 5321 4.5.3.1: no limit where possible). A 451 to RCPT under an
hourly retry rule, then `ternctl queue flush`: delivered byte for byte.

TLS (smtp_tls_security_level, Postfix's semantics; doc/smtp.md "TLS"), each
level in a group of its own:
  may      a STARTTLS server gets the message over TLS 1.2+ (SNI, EHLO again,
           Postfix's "Untrusted TLS connection established" line), a server
           without STARTTLS in plain text, and a TLS-1.1-only server is
           deferred "Cannot start TLS: handshake failure" on the first try,
           then, the message having waited minimal_backoff_time, retried on
           the same address in plain text and delivered;
  encrypt  no STARTTLS: deferred tls_required (4.7.4); a self-signed
           certificate is fine; the TLS-1.1-only server stays deferred;
  verify   the CA file holds one server's self-signed certificate: that
           server is "Verified"; one with another certificate, and one with
           the trusted certificate under another name, are deferred "Server
           certificate not verified" (4.7.5) after a QUIT over TLS.
"""
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import networld  # noqa: E402

networld.enter_private_netns()  # before any thread

import fakemx  # noqa: E402
import ternlib  # noqa: E402
from ternlib import wait_until  # noqa: E402

suite = ternlib.Suite("smtp_delivery")

RULES_DIR, _files = ternlib.shared_files("smtp-rules", {
    "retry_rules": "# short rules for the test: every 3 s, for an hour\n"
                   "# (flush.test: hourly, so only a flush brings the retry)\n"
                   "flush.test  *  F,4h,1h\n"
                   "*  *  F,1h,3s\n"})
RULES = _files["retry_rules"]

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
    "reuse.test": {"MX": [(10, "mx.reuse.test")]},
    "mx.reuse.test": {"A": "127.0.0.39"},           # the connection cache
    "mx.ascii.test": {"A": "127.0.0.22"},           # no SMTPUTF8
    "tls.test": {"MX": [(10, "mx.tls.test")]},
    "mx.tls.test": {"A": "127.0.0.23"},             # STARTTLS, self-signed
    "old.test": {"MX": [(10, "mx.old.test")]},
    "mx.old.test": {"A": "127.0.0.24"},             # STARTTLS, TLS 1.1 at most
    "verify.test": {"MX": [(10, "mx.verify.test")]},
    "mx.verify.test": {"A": "127.0.0.25"},          # its certificate is the CA file
    "wrongca.test": {"MX": [(10, "mx.wrongca.test")]},
    "mx.wrongca.test": {"A": "127.0.0.26"},         # a certificate of its own
    "wrongname.test": {"MX": [(10, "mx.wrongname.test")]},
    "mx.wrongname.test": {"A": "127.0.0.27"},       # mx.verify.test's certificate
    "inject.test": {"MX": [(10, "mx.inject.test")]},
    "mx.inject.test": {"A": "127.0.0.28"},          # a reply after its 220 to STARTTLS
    "refusetls.test": {"MX": [(10, "mx.refusetls.test")]},
    "mx.refusetls.test": {"A": "127.0.0.29"},       # offers STARTTLS, answers 454
    # Hostile replies; good.test takes the message sent after each.
    "good.test": {"MX": [(10, "mx.good.test")]},
    "mx.good.test": {"A": "127.0.0.40"},
    "floodgreet.test": {"MX": [(10, "mx.floodgreet.test")]},
    "mx.floodgreet.test": {"A": "127.0.0.41"},      # "220-xxx" for ever
    "floodehlo.test": {"MX": [(10, "mx.floodehlo.test")]},
    "mx.floodehlo.test": {"A": "127.0.0.42"},       # EHLO: "250-xxx...", 1 KB lines, for ever
    "junkgreet.test": {"MX": [(10, "mx.junkgreet.test")]},
    "mx.junkgreet.test": {"A": "127.0.0.43"},       # 10 MB of printable garbage, no CRLF
    "junkmail.test": {"MX": [(10, "mx.junkmail.test")]},
    "mx.junkmail.test": {"A": "127.0.0.44"},        # MAIL: 250, then 10 MB of binary
    "flush.test": {"MX": [(10, "mx.flush.test")]},
    "mx.flush.test": {"A": "127.0.0.45"},           # RCPT: 451 first, then 250
    "longline.test": {"MX": [(10, "mx.longline.test")]},
    "mx.longline.test": {"A": "127.0.0.46"},        # a 2,000-byte greeting line
    "toolong.test": {"MX": [(10, "mx.toolong.test")]},
    "mx.toolong.test": {"A": "127.0.0.47"},         # MAIL: a 5,000-byte line
    "badcode.test": {"MX": [(10, "mx.badcode.test")]},
    "mx.badcode.test": {"A": "127.0.0.48"},         # greeting "2x0 ok"
    "shortcode.test": {"MX": [(10, "mx.shortcode.test")]},
    "mx.shortcode.test": {"A": "127.0.0.49"},       # RCPT: "99 hello"
}

# The hostile servers' sizes: bounded on our side, far beyond the agent's.
FLOOD_LIMIT = 20 * 1024 * 1024
JUNK_SIZE = 10 * 1024 * 1024
# 2,000 bytes and CR LF: over RFC 5321's 512 (4.5.3.1.5), within the agent's 4,096.
LONG_GREETING = "220 mx.longline.test ESMTP ".ljust(2000, "z")

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
    "reuse": fakemx.FakeMX("127.0.0.39"),
    "tls": fakemx.FakeMX("127.0.0.23", mode="starttls", hostname="mx.tls.test"),
    "old": fakemx.FakeMX("127.0.0.24", mode="starttls", hostname="mx.old.test",
                         tls_max="TLSv1.1"),
    "verify": fakemx.FakeMX("127.0.0.25", mode="starttls", hostname="mx.verify.test"),
    "wrongca": fakemx.FakeMX("127.0.0.26", mode="starttls", hostname="mx.wrongca.test"),
    # Sent in one write with the 220: plain text that must not be read as
    # the first reply inside TLS (RFC 3207 section 6).
    "inject": fakemx.FakeMX("127.0.0.28", mode="starttls", hostname="mx.inject.test", script={
        "STARTTLS": "220 2.0.0 Ready to start TLS\n250 2.0.0 injected before the handshake"}),
    "refusetls": fakemx.FakeMX("127.0.0.29", mode="starttls", hostname="mx.refusetls.test",
                               script={"STARTTLS": "454 4.7.0 TLS not available due to local "
                                                   "problem"}),
    "good": fakemx.FakeMX("127.0.0.40", hostname="mx.good.test"),
    "floodgreet": fakemx.FakeMX("127.0.0.41", hostname="mx.floodgreet.test", script={
        "greeting": fakemx.flood("220-xxx", limit=FLOOD_LIMIT)}),
    "floodehlo": fakemx.FakeMX("127.0.0.42", hostname="mx.floodehlo.test", script={
        "EHLO": fakemx.flood("250-" + "x" * 996, limit=FLOOD_LIMIT)}),
    "junkgreet": fakemx.FakeMX("127.0.0.43", hostname="mx.junkgreet.test", script={
        "greeting": fakemx.garbage(JUNK_SIZE)}),
    "junkmail": fakemx.FakeMX("127.0.0.44", hostname="mx.junkmail.test", script={
        "MAIL": fakemx.garbage(JUNK_SIZE, binary=True, head="250 2.1.0 Ok")}),
    "flush": fakemx.FakeMX("127.0.0.45", hostname="mx.flush.test", script={
        "RCPT fay@flush.test": ["451 4.3.0 <fay@flush.test>: try again later",
                                "250 2.1.5 Ok"]}),
    "longline": fakemx.FakeMX("127.0.0.46", hostname="mx.longline.test", script={
        "greeting": LONG_GREETING}),
    "toolong": fakemx.FakeMX("127.0.0.47", hostname="mx.toolong.test", script={
        "MAIL": "250 2.1.0 " + "y" * 4990}),
    "badcode": fakemx.FakeMX("127.0.0.48", hostname="mx.badcode.test", script={
        "greeting": "2x0 ok"}),
    "shortcode": fakemx.FakeMX("127.0.0.49", hostname="mx.shortcode.test", script={
        "RCPT": "99 hello"}),
}
for m in MX.values():
    m.start()
# The certificate of mx.verify.test, offered under another name.
MX["wrongname"] = fakemx.FakeMX("127.0.0.27", mode="starttls", hostname="mx.wrongname.test",
                                cert=(MX["verify"].certfile, MX["verify"].keyfile)).start()
# The smtp agent runs as the tern user: the CA file must be readable to it.
CAFILE = os.path.join(RULES_DIR, "ca-verify.pem")
shutil.copyfile(MX["verify"].certfile, CAFILE)
os.chmod(CAFILE, 0o644)

PARAMS = {
    "dns_servers": dns.server,
    "default_transport": "smtp",
    "local_transport": "retry:4.3.0 mailbox not ready",  # keeps DSNs queued
    "retry_rules": RULES,
    "smtp_connect_timeout": "2s",
    "smtp_helo_timeout": "2s",
    "smtp_data_done_timeout": "5s",
    "message_size_limit": "10000000",
    # A message deferred once is "old" after 2 s: Postfix's plain-text retry
    # after a failed opportunistic handshake applies to its next attempt.
    "minimal_backoff_time": "2s",
}


send = ternlib.send_message
ternctl = ternlib.ternctl_run


def delivery(t, qid):
    e = t.queue_by_id().get(qid)
    if e is None:
        return None
    return {d["address"]: d for d in e.get("delivery", [])}


def state_of(t, qid, addr, timeout=5):
    """addr's record in qid's queue entry ({} when there is none). The
    agent logs its line before qmgr records the result: while addr is
    still pending, wait (bounded) for the record."""
    last = {}

    def recorded():
        nonlocal last
        d = delivery(t, qid)
        last = (d or {}).get(addr) or {}
        return d is None or last.get("state", "pending") != "pending"
    wait_until(recorded, timeout)
    return last


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
    # The connection is cached with what it said in EHLO: let it go first.
    s.check(MX["plain"].wait_sessions(1, 6, ended=True), "the cached connection closed")
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


def test_connection_reuse(s, t):
    mark = t.log_mark()
    q1 = send(t, "wes@tern.test", ["a@reuse.test"])
    s.check(t.wait_log(rf"{q1}: to=<a@reuse.test>.*status=sent", mark), "first sent")
    q2 = send(t, "wes@tern.test", ["b@reuse.test"])
    s.check(t.wait_log(rf"{q2}: to=<b@reuse.test>.*status=sent", mark), "second sent")
    mx = MX["reuse"]
    s.eq(len(mx.messages()), 2, "two messages at the server")
    s.eq(len(mx.sessions()), 1, "over one connection (cached between the jobs)")
    s.check(mx.wait_sessions(1, 6, ended=True),
            "the idle connection is closed after smtp_connection_cache_time_limit")
    s.eq(mx.violations(), [], "no protocol violation (RSET before the second MAIL)")


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

# ---- hostile replies -------------------------------------------------------------


def agent_pid(t):
    """The pid of the master's smtp agent (bounded wait), or None."""
    def find():
        for c in ternlib.children(t.master_pid):
            if b"--role=smtp" in ternlib.cmdline(c):
                return c
        return None
    return wait_until(find, 5)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def still_delivers(s, t, pid, what):
    """After a hostile server: the same agent process is alive and delivers
    the next message to a good MX."""
    s.check(pid is not None and pid_alive(pid), f"{what}: agent {pid} alive")
    s.eq(agent_pid(t), pid, f"{what}: the same smtp agent process")
    mark = t.log_mark()
    rcpt = f"next-{re.sub(r'[^a-z0-9]', '', what.lower())}@good.test"
    qid = send(t, "ann@tern.test", [rcpt], subject=f"after {what}")
    m = t.wait_log(rf"tern/smtp\[(\d+)\]: {qid}: to=<{re.escape(rcpt)}>, "
                   r"relay=mx\.good\.test\[127\.0\.0\.40\]:25, .*status=sent \(250 ", mark)
    if s.check(m, f"{what}: the next message sent to a good MX"):
        s.eq(int(m.group(1)), pid, f"{what}: sent by the same agent")
    s.eq(len(messages_to(MX["good"], rcpt)), 1, f"{what}: one message at mx.good")
    wait_gone(s, t, qid)


def malformed(s, t, key, rcpt, doing, why, stream=True):
    """rcpt's MX (MX[key], mx.<domain>) misbehaves: the recipient is
    deferred with the parser's reason, class "other" (smtp_class.c:
    SMTP_EVENT_PROTOCOL), the agent closes the connection and carries on."""
    mx = MX[key]
    host = "mx." + rcpt.split("@")[1]
    ra = re.escape(f"{host}[{mx.addr}]")
    pid = agent_pid(t)
    mark = t.log_mark()
    n0 = len(mx.sessions())
    qid = send(t, "hal@tern.test", [rcpt], subject=f"hostile {key}")
    m = t.wait_log(rf"tern/smtp\[(\d+)\]: {qid}: to=<{re.escape(rcpt)}>, relay={ra}:25, "
                   r"delay=[0-9.]+, delays=[0-9./]+, dsn=4\.5\.0, status=deferred \(host "
                   rf"{ra} sent a malformed reply while {re.escape(doing)}: {re.escape(why)}\)$",
                   mark)
    if s.check(m, f"{key}: deferred, 4.5.0, 'sent a malformed reply while {doing}: {why}'"):
        s.eq(int(m.group(1)), pid, f"{key}: logged by the agent that was there before")
    d = state_of(t, qid, rcpt)
    s.eq(d.get("state"), "deferred", f"{key}: deferred in the queue")
    s.eq(d.get("error_class"), "other", f"{key}: error class other (a protocol error)")
    sess = mx.wait_sessions(n0 + 1, timeout=5)
    if s.check(sess and len(sess) == n0 + 1, f"{key}: the session ended: {sess}"):
        x = sess[-1]
        if stream:
            # 20 MB cannot sit in the socket buffers: a flood sees the close.
            # 10 MB of garbage may fit them all: either way is fine there.
            s.check(x.stream_end in (("client closed",) if key.startswith("flood") else
                                     ("client closed", "all sent")),
                    f"{key}: the agent closed the connection: {x.stream_end}, "
                    f"{x.stream_sent} bytes sent")
        else:
            # EOF or a reset (pipelined commands left unread), never QUIT.
            s.check(re.match(r"client closed$|read error|write error", x.ended or ""),
                    f"{key}: the agent closed the connection: {x.ended}")
        s.eq(x.violations, [], f"{key}: no violation")
    s.check(not re.search(rf"{qid}: .*status=sent", t.log_since(mark)), f"{key}: not sent")
    ternctl(t, "queue", "delete", qid)
    s.check(wait_until(lambda: qid not in t.queue_by_id(), 5), f"{key}: queue entry deleted")
    still_delivers(s, t, pid, key)


def test_flood_greeting(s, t):
    malformed(s, t, "floodgreet", "ike@floodgreet.test",
              "receiving the initial server greeting", "too many lines in reply")


def test_flood_ehlo(s, t):
    malformed(s, t, "floodehlo", "ike@floodehlo.test",
              "performing the EHLO handshake", "reply too long")
    x = MX["floodehlo"].sessions()[-1]
    s.eq(x.commands, ["EHLO tern.test"], "nothing sent after EHLO")


def test_garbage_greeting(s, t):
    malformed(s, t, "junkgreet", "jo@junkgreet.test",
              "receiving the initial server greeting", "reply line too long")


def test_garbage_after_mail(s, t):
    # PIPELINING: MAIL, RCPT and DATA went together; the garbage is where
    # RCPT's reply should be.
    malformed(s, t, "junkmail", "jo@junkmail.test", "sending RCPT TO", "NUL byte in reply")
    x = MX["junkmail"].sessions()[-1]
    s.check(len(x.commands) == 2 and x.commands[0] == "EHLO tern.test" and
            x.commands[1].startswith("MAIL FROM:<hal@tern.test>"),
            f"the garbage came after the 250 to MAIL: {x.commands}")
    s.eq(MX["junkmail"].messages(), [], "no message")


def test_long_reply_lines(s, t):
    mark = t.log_mark()
    qid = send(t, "kit@tern.test", ["lin@longline.test"], subject="long greeting")
    s.check(t.wait_log(rf"{qid}: to=<lin@longline.test>, relay=mx\.longline\.test"
                       r"\[127\.0\.0\.46\]:25, .*status=sent", mark),
            "a 2,000-byte greeting line is taken (RFC 5321 4.5.3.1: no limit where possible)")
    s.eq(len(messages_to(MX["longline"], "lin@longline.test")), 1, "delivered")
    wait_gone(s, t, qid)
    malformed(s, t, "toolong", "lin@toolong.test", "sending MAIL FROM", "reply line too long",
              stream=False)


def test_bad_reply_codes(s, t):
    malformed(s, t, "badcode", "bo@badcode.test", "receiving the initial server greeting",
              "reply code is not three digits", stream=False)
    malformed(s, t, "shortcode", "bo@shortcode.test", "sending RCPT TO",
              "reply code is not three digits", stream=False)


def test_4xx_then_flush(s, t):
    """451 to RCPT; the retry rule for flush.test says an hour: the flush
    brings the retry, which the server accepts, byte for byte."""
    pid = agent_pid(t)
    mark = t.log_mark()
    body = (b"first line\r\n.a line with a dot\r\n..two\r\n.\r\n\r\n"
            b"\ttab and trailing space \r\n" + b"w" * 990 + b"\r\nlast\r\n")
    qid = send(t, "fay@tern.test", ["fay@flush.test"], body=body, subject="flush")
    s.check(t.wait_log(rf"{qid}: to=<fay@flush\.test>, relay=mx\.flush\.test\[127\.0\.0\.45\]:25, "
                       r".*dsn=4\.3\.0, status=deferred \(host mx\.flush\.test\[127\.0\.0\.45\] "
                       r"said: 451 4\.3\.0 <fay@flush\.test>: try again later \(in reply to RCPT "
                       r"TO command\)\)", mark), "451: deferred with the remote reply")
    d = state_of(t, qid, "fay@flush.test")
    s.eq(d.get("state"), "deferred", "deferred in the queue")
    s.eq(d.get("error_class"), "rcpt_451", "error class rcpt_451")
    s.check((d.get("next_attempt") or 0) > time.time() + 600,
            f"next attempt in an hour (flush.test's rule): {d.get('next_attempt')}")
    spool = t.msg_bytes(qid)
    s.eq(MX["flush"].messages(), [], "nothing accepted yet")
    mark = t.log_mark()
    r = ternctl(t, "queue", "flush", qid)
    s.eq(r.returncode, 0, f"ternctl queue flush {qid}: {r.stdout}{r.stderr}")
    m = t.wait_log(rf"tern/smtp\[(\d+)\]: {qid}: to=<fay@flush\.test>, relay=mx\.flush\.test"
                   r"\[127\.0\.0\.45\]:25, .*dsn=2\.0\.0, status=sent \(250 ", mark)
    if s.check(m, "sent after the flush"):
        s.eq(int(m.group(1)), pid, "by the same agent")
    msgs = messages_to(MX["flush"], "fay@flush.test")
    s.eq(len(msgs), 1, "one message at mx.flush")
    if msgs:
        s.check(msgs[0].data == spool, f"byte for byte the queue file: {len(msgs[0].data)} "
                                       f"bytes vs {len(spool)}")
        s.check(msgs[0].data_raw == ternlib.dot_stuff(spool), "dot-stuffed on the wire")
        s.check(msgs[0].data.endswith(body), "the body at the end")
    s.eq(MX["flush"].violations(), [], "no violation")
    wait_gone(s, t, qid)


# ---- TLS ----------------------------------------------------------------------

TLS_LINE = (r"{trust} TLS connection established to {relay}: (TLSv1\.[23]) with cipher "
            r"(\S+) \((\d+)/(\d+) bits\)")


def tls_line(trust, host, addr):
    relay = re.escape(f"{host}[{addr}]:25")
    return TLS_LINE.format(trust=trust, relay=relay)


def sessions_for(mx, text):
    """The sessions of mx with a command holding text (an address)."""
    return [x for x in mx.sessions() if any(text in c for c in x.commands)]


def messages_to(mx, rcpt, timeout=5):
    """mx's accepted messages for rcpt, waiting (bounded) for one: the
    server records it after its 250, which may come after our log line."""
    return wait_until(lambda: [x for x in mx.messages() if rcpt in x.recipients], timeout) or []


def ended_sessions(mx, text, timeout=5):
    """sessions_for(), once they have all ended (bounded wait)."""
    def done():
        x = sessions_for(mx, text)
        return x if x and all(y.ended for y in x) else None
    return wait_until(done, timeout) or sessions_for(mx, text)


def test_tls_may_starttls(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["tia@tls.test"], subject="tls")
    m = t.wait_log(tls_line("Untrusted", "mx.tls.test", "127.0.0.23"), mark)
    s.check(m, "Postfix's TLS line: protocol and cipher, the self-signed peer Untrusted")
    s.check(t.wait_log(rf"{qid}: to=<tia@tls.test>, relay=mx\.tls\.test\[127\.0\.0\.23\]:25, "
                       r".*status=sent \(250 ", mark), "sent")
    msgs = messages_to(MX["tls"], "tia@tls.test")
    s.eq(len(msgs), 1, "one message at mx.tls")
    if msgs:
        s.check(msgs[0].tls, "the message came over TLS")
        s.check(msgs[0].tls_version in ("TLSv1.2", "TLSv1.3"),
                f"TLS 1.2 or later: {msgs[0].tls_version}")
        if m:
            s.eq(m.group(1), msgs[0].tls_version, "the logged protocol is the one used")
    sess = ended_sessions(MX["tls"], "tia@tls.test")
    if s.check(len(sess) == 1, f"one session: {sess}"):
        x = sess[0]
        s.eq(x.tls_sni, "mx.tls.test", "SNI is the MX host name")
        s.eq([v for v, _ in x.helos], ["EHLO", "EHLO"], "EHLO before and again after STARTTLS")
        s.eq(x.commands[:3], ["EHLO tern.test", "STARTTLS", "EHLO tern.test"],
             "STARTTLS alone, right after the first EHLO")
        s.eq(x.ended, "quit", "QUIT over TLS")
    s.eq(MX["tls"].violations(), [], "no violation (nothing sent in plain text after STARTTLS)")


def test_tls_may_plain(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["pat@implicit.test"], subject="plain")
    s.check(t.wait_log(rf"{qid}: to=<pat@implicit.test>.*status=sent", mark), "sent")
    txs = messages_to(MX["implicit"], "pat@implicit.test")
    s.check(txs and not txs[0].tls, "no STARTTLS offered: plain text")
    s.check("TLS connection established to implicit.test" not in t.log_since(mark),
            "no TLS line")


def test_tls_may_injected(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["ida@inject.test"], subject="injected")
    s.check(t.wait_log(tls_line("Untrusted", "mx.inject.test", "127.0.0.28"), mark), "TLS")
    s.check(t.wait_log(rf"{qid}: to=<ida@inject.test>.*status=sent", mark),
            "sent: the plain-text line after the 220 was dropped, not taken as EHLO's reply")
    msgs = messages_to(MX["inject"], "ida@inject.test")
    s.check(msgs and msgs[0].tls, "over TLS")
    s.eq(MX["inject"].violations(), [], "no violation")


def test_tls_may_refused(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["ray@refusetls.test"], subject="refused")
    s.check(t.wait_log(rf"{qid}: to=<ray@refusetls.test>.*status=sent", mark),
            "454 to STARTTLS under may: sent in plain text (Postfix)")
    msgs = messages_to(MX["refusetls"], "ray@refusetls.test")
    s.check(msgs and not msgs[0].tls, "in plain text")
    sess = ended_sessions(MX["refusetls"], "ray@refusetls.test")
    s.check(sess and sess[0].commands[:2] == ["EHLO tern.test", "STARTTLS"] and
            sess[0].commands[2].startswith("MAIL FROM:<ann@tern.test> SIZE="),
            f"MAIL right after the refusal, with the first EHLO's extensions: {sess}")


def test_tls_encrypt_refused(s, t):
    mark = t.log_mark()
    qid = send(t, "bea@tern.test", ["sue@refusetls.test"], subject="encrypt refused")
    s.check(t.wait_log(rf"{qid}: to=<sue@refusetls.test>, .*dsn=4\.7\.0, status=deferred \(TLS is "
                       r"required, but host mx\.refusetls\.test\[127\.0\.0\.29\] refused to "
                       r"start TLS: 454 4\.7\.0 TLS not available due to local problem\)", mark),
            "deferred with the server's reply")
    s.eq(state_of(t, qid, "sue@refusetls.test").get("error_class"), "tls_required",
         "error class tls_required")
    ternctl(t, "queue", "delete", qid)


def test_tls_may_broken(s, t):
    """Postfix: a failed opportunistic handshake defers a new message (no
    destination throttling); once the message has waited minimal_backoff_time,
    the same server is tried again at once in plain text."""
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["ola@old.test"], subject="old tls")
    s.check(t.wait_log(r"SSL_connect error to mx\.old\.test\[127\.0\.0\.24\]:25: ", mark),
            "the handshake failure is logged with OpenSSL's reason")
    s.check(t.wait_log(rf"{qid}: to=<ola@old\.test>, relay=mx\.old\.test\[127\.0\.0\.24\]:25, "
                       r".*dsn=4\.7\.5, status=deferred \(Cannot start TLS: handshake failure\)",
                       mark), "first attempt: deferred, 4.7.5")
    d = state_of(t, qid, "ola@old.test")
    s.eq(d.get("error_class"), "tls_required", "error class tls_required")
    s.check(t.wait_log(rf"{qid}: Cannot start TLS: handshake failure$", mark, timeout=15),
            "second attempt: the handshake fails again, the host is tried in plain text")
    s.check(t.wait_log(rf"{qid}: to=<ola@old\.test>, relay=mx\.old\.test\[127\.0\.0\.24\]:25, "
                       r".*status=sent", mark, timeout=5), "delivered in plain text")
    msgs = messages_to(MX["old"], "ola@old.test")
    s.eq(len(msgs), 1, "one message at mx.old")
    if msgs:
        s.check(not msgs[0].tls, "in plain text")
    failed = [x for x in MX["old"].sessions() if x.tls_error]
    s.check(len(failed) >= 2, f"two failed handshakes before: {len(failed)}")
    wait_gone(s, t, qid)


def test_tls_encrypt_not_offered(s, t):
    mark = t.log_mark()
    qid = send(t, "bea@tern.test", ["cy@implicit.test"], subject="must encrypt")
    s.check(t.wait_log(rf"{qid}: to=<cy@implicit.test>, relay=implicit\.test\[127\.0\.0\.17\]:25,"
                       r" .*dsn=4\.7\.4, status=deferred \(TLS is required, but was not offered "
                       r"by host implicit\.test\[127\.0\.0\.17\]\)", mark),
            "deferred: TLS is required, but was not offered")
    s.eq(state_of(t, qid, "cy@implicit.test").get("error_class"), "tls_required",
         "error class tls_required")
    s.eq(sessions_for(MX["implicit"], "bea@tern.test"), [], "no MAIL FROM in plain text")
    ternctl(t, "queue", "delete", qid)


def test_tls_encrypt_any_cert(s, t):
    mark = t.log_mark()
    qid = send(t, "bea@tern.test", ["dee@tls.test"], subject="encrypt")
    s.check(t.wait_log(tls_line("Untrusted", "mx.tls.test", "127.0.0.23"), mark),
            "TLS with a self-signed certificate")
    s.check(t.wait_log(rf"{qid}: to=<dee@tls.test>.*status=sent", mark), "sent")
    msgs = messages_to(MX["tls"], "dee@tls.test")
    s.check(msgs and msgs[0].tls, "over TLS")


def test_tls_encrypt_broken(s, t):
    mark = t.log_mark()
    qid = send(t, "bea@tern.test", ["eli@old.test"], subject="encrypt old")
    rx = (rf"{qid}: to=<eli@old\.test>, relay=mx\.old\.test\[127\.0\.0\.24\]:25, .*dsn=4\.7\.5, "
          r"status=deferred \(Cannot start TLS: handshake failure\)")
    s.check(t.wait_log(rx, mark), "deferred")
    m2 = t.log_mark()
    s.check(t.wait_log(rx, m2, timeout=15), "deferred again on the retry: never plain text")
    s.check(not re.search(rf"{qid}: Cannot start TLS", t.log_since(mark)), "no plain-text retry")
    s.check(not [x for x in MX["old"].messages() if "eli@old.test" in x.recipients],
            "nothing delivered")
    ternctl(t, "queue", "delete", qid)


def test_tls_verify_ok(s, t):
    mark = t.log_mark()
    qid = send(t, "cal@tern.test", ["vi@verify.test"], subject="verify")
    s.check(t.wait_log(tls_line("Verified", "mx.verify.test", "127.0.0.25"), mark),
            "chain and host name verified")
    s.check(t.wait_log(rf"{qid}: to=<vi@verify.test>, relay=mx\.verify\.test\[127\.0\.0\.25\]:25"
                       r".*status=sent", mark), "sent")
    msgs = messages_to(MX["verify"], "vi@verify.test")
    s.check(msgs and msgs[0].tls, "over TLS")
    sess = ended_sessions(MX["verify"], "vi@verify.test")
    s.check(sess and sess[0].tls_sni == "mx.verify.test", "SNI mx.verify.test")


def test_tls_verify_bad(s, t):
    for rcpt, host, addr, trust, why in (
            ("wu@wrongca.test", "mx.wrongca.test", "127.0.0.26", "Untrusted",
             "self-signed certificate"),
            ("xu@wrongname.test", "mx.wrongname.test", "127.0.0.27", "Trusted",
             "server certificate name does not match mx.wrongname.test")):
        mark = t.log_mark()
        qid = send(t, "cal@tern.test", [rcpt], subject="verify bad")
        ra = re.escape(f"{host}[{addr}]:25")
        s.check(t.wait_log(rf"certificate verification failed for {ra}: {re.escape(why)}", mark),
                f"{host}: the reason is logged ({why})")
        s.check(t.wait_log(tls_line(trust, host, addr), mark), f"{host}: {trust}")
        s.check(t.wait_log(rf"{qid}: to=<{re.escape(rcpt)}>, relay={ra}, .*dsn=4\.7\.5, "
                           r"status=deferred \(Server certificate not verified\)", mark),
                f"{host}: deferred, Server certificate not verified")
        s.eq(state_of(t, qid, rcpt).get("error_class"), "tls_required", f"{host}: tls_required")
        key = host.split(".")[1]
        sess = MX[key].wait_sessions(1, timeout=5)
        s.check(sess and sess[-1].tls and sess[-1].ended == "quit",
                f"{host}: QUIT said over the TLS session: {sess}")
        s.eq(MX[key].transactions(), [], f"{host}: no transaction")
        ternctl(t, "queue", "delete", qid)

def reload_with(t, param, value):
    mark = t.log_mark()
    with open(t.conf, "a") as f:
        f.write(f"{param} = {value}\n")
    os.kill(t.master_pid, signal.SIGHUP)
    return t.wait_log(r"tern/smtp\[\d+\]: reload: configuration", mark)


def test_tls_verify_reload(s, t):
    """The context is made again on reload; a CA file that cannot be used
    under "verify" turns TLS off and defers, as Postfix's "TLS is required,
    but our TLS engine is unavailable"."""
    mark = t.log_mark()
    s.check(reload_with(t, "smtp_tls_CAfile", os.path.join(RULES_DIR, "no-such-ca.pem")),
            "the smtp agent reloaded")
    s.check(t.wait_log(r"tern/smtp\[\d+\]: warning: cannot load Certificate Authority data, "
                       r"CAfile=\"[^\"]*/no-such-ca\.pem\": No such file or directory: "
                       r"disabling TLS support", mark), "a warning names the file and the reason")
    qid = send(t, "cal@tern.test", ["vo@verify.test"], subject="no engine")
    s.check(t.wait_log(rf"{qid}: to=<vo@verify.test>, relay=mx\.verify\.test\[127\.0\.0\.25\]:25,"
                       r" .*dsn=4\.7\.5, status=deferred \(TLS is required, but our TLS engine is "
                       r"unavailable\)", mark), "deferred: no TLS engine")
    ternctl(t, "queue", "delete", qid)
    mark = t.log_mark()
    s.check(reload_with(t, "smtp_tls_CAfile", CAFILE), "reloaded with the good file")
    s.check("Certificate Authority" not in t.log_since(mark), "no warning any more")


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
        ("the connection cache: two messages, one connection", test_connection_reuse),
        ("a server that never answers", test_never_answers),
        ("connection dropped in DATA", test_drop_mid_data),
        ("hostile: a multi-line greeting that never ends", test_flood_greeting),
        ("hostile: an EHLO reply that never ends", test_flood_ehlo),
        ("hostile: 10 MB of garbage for a greeting", test_garbage_greeting),
        ("hostile: 10 MB of binary garbage after 250 to MAIL", test_garbage_after_mail),
        ("hostile: reply lines of 2,000 bytes (taken) and 5,000 (deferred)",
         test_long_reply_lines),
        ("hostile: reply codes 2x0 and 99 (deferred)", test_bad_reply_codes),
        ("RCPT 451, queue flush, delivered byte for byte", test_4xx_then_flush),
        ("TLS may: STARTTLS offered, TLS used", test_tls_may_starttls),
        ("TLS may: not offered, plain text", test_tls_may_plain),
        ("TLS may: plain text after the 220 to STARTTLS is dropped", test_tls_may_injected),
        ("TLS may: STARTTLS refused, plain text", test_tls_may_refused),
        ("TLS may: handshake fails, deferred, then plain text", test_tls_may_broken),
    ])
    suite.group("tls-encrypt", dict(PARAMS, smtp_tls_security_level="encrypt"), [
        ("STARTTLS not offered: deferred tls_required", test_tls_encrypt_not_offered),
        ("any certificate will do", test_tls_encrypt_any_cert),
        ("STARTTLS refused: deferred", test_tls_encrypt_refused),
        ("handshake fails: deferred, never plain text", test_tls_encrypt_broken),
    ])
    suite.group("tls-verify", dict(PARAMS, smtp_tls_security_level="verify",
                                   smtp_tls_CAfile=CAFILE), [
        ("certificate and name verified", test_tls_verify_ok),
        ("untrusted or misnamed certificate: deferred", test_tls_verify_bad),
        ("reload: a CA file that cannot be used turns TLS off", test_tls_verify_reload),
    ])
finally:
    for m in MX.values():
        m.stop()
    dns.stop()
    if not os.environ.get("TERN_E2E_KEEP"):
        shutil.rmtree(RULES_DIR, ignore_errors=True)
suite.finish()
