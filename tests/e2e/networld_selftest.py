"""networld_selftest: proves the test world of the outbound SMTP client.

Enters a private network namespace (root only), starts DnsWorld with test
zones and checks every kind of answer with networld's own DNS client,
then starts FakeMX servers in each mode and talks to them with smtplib
(STARTTLS and AUTH included) and with raw sockets (pipelining and
STARTTLS injection), checking what they recorded. Finally a delivery the
way tern will do it: MX lookup, A lookup, SMTP to the address found.

Not named *_test.py: CTest does not run it (yet). Run as root:
    /usr/bin/python3 tests/e2e/networld_selftest.py
Last line: "N checks passed" (exit 0) or "N checks passed, M failed"
(exit 1). A watchdog ends it after 45 s; it takes a few seconds.
"""
import os
import signal
import smtplib
import socket
import ssl
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import networld  # noqa: E402

T0 = time.monotonic()
PASSED = []
FAILED = []


def check(cond, what):
    (PASSED if cond else FAILED).append(what)
    print(f"{'ok  ' if cond else 'FAIL'} {what}", flush=True)
    return bool(cond)


def eq(got, want, what):
    return check(got == want, what if got == want else f"{what}: got {got!r}, want {want!r}")


def finish(extra=""):
    signal.alarm(0)
    if extra:
        print(extra, flush=True)
    print(f"selftest: {time.monotonic() - T0:.1f} s")
    if FAILED:
        print("failed: " + "; ".join(FAILED))
        print(f"{len(PASSED)} checks passed, {len(FAILED)} failed", flush=True)
        os._exit(1)
    print(f"{len(PASSED)} checks passed", flush=True)
    os._exit(0)


def watchdog(*a):
    FAILED.append("watchdog")
    traceback.print_stack()
    finish("FATAL: watchdog: 45 s passed")


signal.signal(signal.SIGALRM, watchdog)
signal.alarm(45)

# ---- the namespace (first: no thread may exist yet) ------------------------------------

try:
    networld.enter_private_netns(resolv_conf=networld.DNS_ADDR)
except networld.NetworldUnavailable as e:
    FAILED.append("private network namespace")
    finish(f"FATAL: {e}")
check(networld.in_private_netns(), "in a private network namespace")
links = networld._ip("-o", "link", "show")
check(links.count("\n") == 1 and " lo:" in links and "UP" in links, "only lo, and it is up")
addrs = networld._ip("-o", "addr", "show")
check("127.0.0.1/8" in addrs, "127.0.0.0/8 on lo")
check(networld.has_ipv6(), "::1 usable")
routes = networld._ip("route", "show")
eq(routes.strip(), "", "no route out of the namespace")

import fakemx  # noqa: E402  (after the unshare: it is harmless before, but keep the order plain)

q = networld.query

ZONES = {
    # two MX preferences
    "two.test": {"MX": [(10, "mx1.two.test"), (20, "mx2.two.test")]},
    "mx1.two.test": {"A": "127.0.0.2"},
    "mx2.two.test": {"A": "127.0.0.3", "AAAA": "::1"},
    # implicit MX: A only
    "amx.test": {"A": "127.0.0.4"},
    # RFC 7505 null MX
    "null.test": {"MX": [(0, ".")]},
    # CNAME to an A
    "alias.test": {"CNAME": "amx.test"},
    "txt.test": {"TXT": ["v=spf1 -all", ("two", "strings, with \"quotes\"")]},
    "broken.test": "SERVFAIL",
    "refused.test": "REFUSED",
    "silent.test": "TIMEOUT",
    "gone.example": "NXDOMAIN",
}

dns = networld.DnsWorld(ZONES, extra_listen=("::1",) if networld.has_ipv6() else ())
servers = []


def run_dns():
    t = time.monotonic()
    dns.start()
    check(dns.running(), f"dnsmasq started ({time.monotonic() - t:.2f} s)")

    a = q("two.test", "MX")
    check(a and a.rcode == 0 and a.aa, "MX two.test: NOERROR, authoritative")
    eq(sorted(a.values("MX")), [(10, "mx1.two.test"), (20, "mx2.two.test")],
       "MX two.test: two preferences")
    eq(q("mx1.two.test", "A").values("A"), ["127.0.0.2"], "A mx1.two.test")
    eq(q("mx2.two.test", "A").values("A"), ["127.0.0.3"], "A mx2.two.test")
    eq(q("mx2.two.test", "AAAA").values("AAAA"), ["::1"], "AAAA mx2.two.test")
    a = q("mx1.two.test", "AAAA")
    check(a.rcode == 0 and not a.answers, "AAAA mx1.two.test: NODATA")

    a = q("amx.test", "MX")
    check(a.rcode == 0 and not a.answers, "implicit MX: MX amx.test is NOERROR with no records")
    eq(q("amx.test", "A").values("A"), ["127.0.0.4"], "implicit MX: A amx.test")

    a = q("null.test", "MX")
    eq(a.values("MX"), [(0, ".")], "null MX: MX 0 .")
    eq([r.data for r in a.answers], [b"\x00\x00\x00"], "null MX: rdata is exactly 00 00 00")

    a = q("alias.test", "A")
    eq([(r.type, r.value) for r in a.answers], [("CNAME", "amx.test"), ("A", "127.0.0.4")],
       "CNAME alias.test -> amx.test, with its A")
    a = q("alias.test", "MX")
    check(a.rcode == 0 and a.values("CNAME") == ["amx.test"] and not a.values("MX"),
          "MX alias.test: the CNAME, no MX")

    eq(sorted(q("txt.test", "TXT").values("TXT")),
       sorted([("v=spf1 -all",), ("two", 'strings, with "quotes"')]), "TXT records, exact")

    a = q("broken.test", "MX")
    eq(a and a.rcode_name, "SERVFAIL", "SERVFAIL zone: MX broken.test")
    a = q("mx.broken.test", "A")
    eq(a and a.rcode_name, "SERVFAIL", "SERVFAIL zone: A mx.broken.test (below the zone)")
    a = q("refused.test", "MX")
    eq(a and a.rcode_name, "REFUSED", "REFUSED zone")
    t = time.monotonic()
    a = q("silent.test", "MX", timeout=1.0)
    check(a is None and time.monotonic() - t >= 0.9, "TIMEOUT zone: no answer within 1 s")
    seen = [x for x in dns.rcode.queries if x[0] in ("broken.test", "silent.test")]
    check(("broken.test", "MX", "SERVFAIL") in seen and ("silent.test", "MX", "TIMEOUT") in seen,
          f"the rcode responder saw the forwarded questions ({len(seen)})")

    a = q("nosuch.test", "MX")
    eq(a and a.rcode_name, "NXDOMAIN", "NXDOMAIN: unknown name under .test (MX)")
    a = q("nosuch.test", "A")
    eq(a and a.rcode_name, "NXDOMAIN", "NXDOMAIN: unknown name under .test (A)")
    a = q("x.gone.example", "A")
    eq(a and a.rcode_name, "NXDOMAIN", "NXDOMAIN: an explicit NXDOMAIN zone, below it")

    a = q("two.test", "MX", tcp=True)
    eq(sorted(a.values("MX")) if a else None, [(10, "mx1.two.test"), (20, "mx2.two.test")],
       "MX over TCP")
    if networld.has_ipv6():
        a = q("two.test", "MX", server="::1")
        check(a and len(a.values("MX")) == 2, "dnsmasq answers on [::1]:53 too")

    # glibc's resolver through the private resolv.conf
    try:
        ai = socket.getaddrinfo("mx1.two.test", 25, socket.AF_INET, socket.SOCK_STREAM)
        eq(ai[0][4][0], "127.0.0.2", "getaddrinfo through the private /etc/resolv.conf")
    except OSError as e:
        check(False, f"getaddrinfo through the private /etc/resolv.conf: {e}")

    log = dns.queries()
    check(("MX", "two.test", "127.0.0.1") in log, f"query log records MX two.test ({len(log)})")

    # reload with new data
    t = time.monotonic()
    dns.reload(dict(ZONES, **{"two.test": {"MX": [(5, "mx9.two.test")]},
                              "new.test": {"A": "127.0.0.9"}}))
    check(time.monotonic() - t < 5, f"reload took {time.monotonic() - t:.2f} s")
    eq(q("two.test", "MX").values("MX"), [(5, "mx9.two.test")], "reload: new MX data")
    eq(q("new.test", "A").values("A"), ["127.0.0.9"], "reload: a new name")
    check(("MX", "two.test", "127.0.0.1") in dns.queries(), "the query log survives a reload")
    a = q("broken.test", "MX")
    eq(a and a.rcode_name, "SERVFAIL", "reload: SERVFAIL zone still served")
    dns.reload(ZONES)


# ---- fake MX servers -----------------------------------------------------------------


def mx(*a, **k):
    s = fakemx.FakeMX(*a, **k).start()
    servers.append(s)
    return s


def smtp(addr, port=25, timeout=5):
    return smtplib.SMTP(addr, port, local_hostname="client.test", timeout=timeout)


def raw(addr, port=25, timeout=3):
    s = socket.create_connection((addr, port), timeout=timeout)
    s.settimeout(timeout)
    return s


def read_reply(s):
    buf = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return buf
        buf += chunk
        lines = buf.split(b"\r\n")
        if len(lines) >= 2 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return buf


MSG = (b"From: a@tern.test\r\nSubject: test\r\n\r\n.leading dot\r\n..two dots\r\n"
       b"caf\xc3\xa9\r\nlast line\r\n")


def run_fakemx():
    # -- accept, with scripted per-recipient replies
    acc = mx("127.0.0.2", 25, mode="accept", script={
        "RCPT full@two.test": "452 4.2.2 mailbox full",
        "RCPT nobody@two.test": "550 5.1.1 no such user",
    })
    c = smtp("127.0.0.2")
    refused = c.sendmail("a@tern.test", ["b@two.test", "full@two.test", "nobody@two.test"], MSG,
                         mail_options=["BODY=8BITMIME"], rcpt_options=["NOTIFY=FAILURE"])
    c.quit()
    eq(sorted(refused), ["full@two.test", "nobody@two.test"], "smtplib: two recipients refused")
    msgs = acc.wait_for(1, 5)
    check(msgs, "accept: one message recorded")
    if msgs:
        t = msgs[0]
        eq(t.sender, "a@tern.test", "accept: sender")
        eq(t.mail_line, f"mail FROM:<a@tern.test> size={len(MSG)} BODY=8BITMIME",
           "accept: MAIL line with its parameters, exactly")
        eq(t.param("SIZE"), str(len(MSG)), "accept: SIZE parameter")
        eq([(r.addr, r.code, r.params) for r in t.rcpts],
           [("b@two.test", 250, ["NOTIFY=FAILURE"]), ("full@two.test", 452, ["NOTIFY=FAILURE"]),
            ("nobody@two.test", 550, ["NOTIFY=FAILURE"])], "accept: RCPT lines and replies")
        eq(t.recipients, ["b@two.test"], "accept: accepted recipients")
        stuffed = MSG.replace(b"\r\n.", b"\r\n..")
        eq(t.data_raw, stuffed, "accept: DATA bytes as received (dot-stuffed)")
        eq(t.data, MSG, "accept: DATA bytes un-stuffed")
        eq(t.reply, "250 2.0.0 Ok: queued as FAKE000001", "accept: final reply")
        check(not t.tls, "accept: no TLS")
    sess = acc.wait_sessions(1, 5)
    check(sess and sess[0].ended == "quit" and sess[0].helo_verb == "EHLO"
          and sess[0].helo_name == "client.test", "accept: session EHLO client.test, QUIT")
    eq(acc.violations(), [], "accept: no violations from smtplib")

    # 8-bit data without BODY=8BITMIME is a violation
    acc.reset()
    c = smtp("127.0.0.2")
    c.sendmail("a@tern.test", ["b@two.test"], MSG)
    c.quit()
    acc.wait_for(1, 5)
    check(any("8-bit data without BODY=8BITMIME" in v for _, v in acc.violations()),
          "violation: 8-bit data without BODY=8BITMIME")

    # -- scripted DATA end: 451 once, then 250
    seq = mx("127.0.0.5", 25, script={"DATA_END": ["451 4.3.0 try again later",
                                                   "250 2.0.0 fine now"]})
    c = smtp("127.0.0.5")
    try:
        c.sendmail("a@tern.test", ["b@x.test"], b"Subject: 1\r\n\r\nx\r\n")
        check(False, "DATA end 451: smtplib should have raised")
    except smtplib.SMTPDataError as e:
        eq(e.smtp_code, 451, "scripted DATA end: 451 the first time")
    c.sendmail("a@tern.test", ["b@x.test"], b"Subject: 2\r\n\r\nx\r\n")
    c.quit()
    ts = seq.wait_transactions(2, 5)
    eq([(t.status, t.code) for t in ts or []], [("rejected", 451), ("accepted", 250)],
       "scripted DATA end: rejected then accepted")

    # -- STARTTLS
    tls = mx("127.0.0.3", 25, mode="starttls", hostname="mx2.two.test")
    ctx = ssl.create_default_context(cafile=tls.certfile)
    ctx.check_hostname = False          # we connect by address; the chain is still verified
    c = smtp("127.0.0.3")
    c.ehlo()
    check(c.has_extn("starttls"), "starttls: STARTTLS offered")
    c.starttls(context=ctx)
    c.ehlo()
    check(not c.has_extn("starttls"), "starttls: not offered again inside TLS")
    c.sendmail("a@tern.test", ["b@two.test"], b"Subject: tls\r\n\r\nsecret\r\n")
    c.quit()
    msgs = tls.wait_for(1, 5)
    check(msgs and msgs[0].tls and msgs[0].tls_version == "TLSv1.3",
          f"starttls: message over TLS, version recorded "
          f"({msgs[0].tls_version if msgs else None})")
    s0 = (tls.wait_sessions(1, 5) or [None])[0]
    check(s0 and s0.tls_cipher and [v for v, _ in s0.helos] == ["EHLO", "EHLO"],
          "starttls: cipher recorded, EHLO before and after TLS")

    tls12 = mx("127.0.0.3", 2525, mode="starttls", tls_max="TLSv1.2",
               cert=(tls.certfile, tls.keyfile))
    c = smtp("127.0.0.3", 2525)
    c.starttls(context=ctx)
    c.quit()
    s0 = (tls12.wait_sessions(1, 5) or [None])[0]
    eq(s0 and s0.tls_version, "TLSv1.2", "starttls: server capped at TLS 1.2 records TLSv1.2")

    # STARTTLS command injection: plaintext after STARTTLS
    s = raw("127.0.0.3")
    read_reply(s)
    s.sendall(b"EHLO client.test\r\n")
    read_reply(s)
    s.sendall(b"STARTTLS\r\nNOOP\r\n")
    read_reply(s)
    ctx2 = ssl.create_default_context(cafile=tls.certfile)
    ctx2.check_hostname = False
    try:
        ts_ = ctx2.wrap_socket(s, server_hostname="mx2.two.test")
        ts_.sendall(b"QUIT\r\n")
        read_reply(ts_)
        ts_.close()
    except (ssl.SSLError, OSError):
        s.close()
    sess = tls.wait_sessions(2, 5)
    check(sess and any("plaintext after STARTTLS" in v for v in sess[1].violations),
          "violation: plaintext after STARTTLS (command injection)")
    check(sess and sess[1].tls_sni == "mx2.two.test", "starttls: SNI recorded")

    # -- AUTH PLAIN and LOGIN
    au = mx("127.0.0.3", 587, mode="starttls", auth=True, auth_users={"u": "p w"},
            cert=(tls.certfile, tls.keyfile))
    for mech in ("PLAIN", "LOGIN"):
        c = smtp("127.0.0.3", 587)
        c.starttls(context=ctx)
        c.ehlo()
        c.user, c.password = "u", "p w"
        code, _ = c.auth(mech, getattr(c, f"auth_{mech.lower()}"), initial_response_ok=True)
        eq(code, 235, f"AUTH {mech} accepted")
        c.quit()
    c = smtp("127.0.0.3", 587)
    c.starttls(context=ctx)
    try:
        c.login("u", "wrong")
        check(False, "AUTH with a wrong password should fail")
    except smtplib.SMTPAuthenticationError as e:
        eq(e.smtp_code, 535, "AUTH: wrong password gets 535")
    c.quit()
    sess = au.wait_sessions(3, 5)
    eq([x.auth for x in sess or []], [("PLAIN", "u", "p w"), ("LOGIN", "u", "p w"), None],
       "AUTH: mechanism, user and password recorded")

    # -- pipelining rules
    acc.reset()
    s = raw("127.0.0.2")
    read_reply(s)
    s.sendall(b"EHLO client.test\r\n")
    read_reply(s)
    s.sendall(b"MAIL FROM:<a@tern.test>\r\nRCPT TO:<b@two.test>\r\nDATA\r\n")
    r = b""
    while r.count(b"\r\n") < 3:
        r += s.recv(4096)
    s.sendall(b"Subject: p\r\n\r\nx\r\n.\r\nQUIT\r\n")
    read_reply(s)
    s.close()
    sess = acc.wait_sessions(1, 5)
    check(sess and sess[0].pipelined >= 1 and not sess[0].violations,
          f"pipelining offered: MAIL, RCPT, DATA in one group is legal "
          f"({sess and sess[0].pipelined} pipelined)")
    eq([t.status for t in acc.transactions()], ["accepted"], "pipelined transaction accepted")
    nop = mx("127.0.0.4", 25, mode="no_pipelining")
    s = raw("127.0.0.4")
    read_reply(s)
    s.sendall(b"EHLO client.test\r\n")
    ehlo = read_reply(s)
    check(b"PIPELINING" not in ehlo and b"SIZE" in ehlo, "no_pipelining: PIPELINING not offered")
    s.sendall(b"MAIL FROM:<a@tern.test>\r\nRCPT TO:<b@two.test>\r\n")
    s.recv(4096)
    s.sendall(b"QUIT\r\n")
    s.close()
    c = smtp("127.0.0.4")
    c.sendmail("a@tern.test", ["b@two.test"], b"Subject: np\r\n\r\nx\r\n")
    c.quit()
    sess = nop.wait_sessions(2, 5)
    check(sess and any("pipelining not offered" in v for v in sess[0].violations),
          "no_pipelining: a pipelined RCPT is a violation")
    check(sess and not sess[1].violations,
          "no_pipelining: smtplib (one command at a time) is clean")
    s = raw("127.0.0.5")
    read_reply(s)
    s.sendall(b"EHLO client.test\r\nMAIL FROM:<a@tern.test>\r\n")
    time.sleep(0.2)
    s.sendall(b"QUIT\r\n")
    time.sleep(0.2)
    s.close()
    sess = seq.wait_sessions(2, 5)
    check(sess and any("EHLO must be the last command" in v for v in sess[1].violations),
          "pipelining offered: a command after EHLO in the same group is a violation")

    # bare LF in DATA
    s = raw("127.0.0.5")
    read_reply(s)
    s.sendall(b"HELO client.test\r\n")
    read_reply(s)
    for line in (b"MAIL FROM:<a@tern.test>\r\n", b"RCPT TO:<b@x.test>\r\n", b"DATA\r\n"):
        s.sendall(line)
        read_reply(s)
    s.sendall(b"a\nb\r\n.\r\n")
    read_reply(s)
    s.sendall(b"QUIT\r\n")
    read_reply(s)
    s.close()
    sess = seq.wait_sessions(3, 5)
    check(sess and "bare LF or CR in DATA" in sess[2].violations, "violation: bare LF in DATA")

    # -- greeting failures
    g4 = mx("127.0.0.6", 25, mode="greet_4xx")
    try:
        smtp("127.0.0.6")
        check(False, "greet_4xx: smtplib should refuse")
    except smtplib.SMTPConnectError as e:
        eq(e.smtp_code, 421, "greet_4xx: 421 greeting")
    sess = g4.wait_sessions(1, 5)
    check(sess and "421" in sess[0].ended, f"greet_4xx: server closed after 421 "
                                            f"({sess and sess[0].ended})")
    g5 = mx("127.0.0.6", 26, mode="greet_5xx")
    s = raw("127.0.0.6", 26)
    greet = read_reply(s)
    s.sendall(b"EHLO client.test\r\n")
    r1 = read_reply(s)
    s.sendall(b"QUIT\r\n")
    r2 = read_reply(s)
    s.close()
    check(greet.startswith(b"554 5.3.2") and r1.startswith(b"503") and r2.startswith(b"221"),
          "greet_5xx: 554, then 503 to EHLO, 221 to QUIT")
    eq([x.ended for x in g5.wait_sessions(1, 5) or []], ["quit"], "greet_5xx: ended by QUIT")

    # -- EHLO refused: smtplib falls back to HELO
    ef = mx("127.0.0.7", 25, mode="ehlo_fail")
    c = smtp("127.0.0.7")
    c.sendmail("a@tern.test", ["b@x.test"], b"Subject: helo\r\n\r\nx\r\n")
    c.quit()
    msgs = ef.wait_for(1, 5)
    check(msgs and msgs[0].helo == "client.test" and msgs[0].mail_params == [],
          "ehlo_fail: delivered after HELO, no ESMTP parameters")
    sess = ef.sessions()
    check(sess and sess[0].helo_verb == "HELO" and sess[0].commands[:2] ==
          ["ehlo client.test", "helo client.test"], "ehlo_fail: EHLO (500) then HELO")

    # -- refuse
    rf = mx("127.0.0.8", 25, mode="refuse")
    check(fakemx.connection_refused("127.0.0.8", 25), "refuse: connect refused")
    try:
        smtp("127.0.0.8")
        check(False, "refuse: smtplib should fail to connect")
    except ConnectionRefusedError:
        check(True, "refuse: smtplib gets ECONNREFUSED")
    eq(rf.sessions(), [], "refuse: no session")

    # -- drop in the middle of DATA
    dr = mx("127.0.0.9", 25, mode="drop_mid_data", drop_after=20)
    c = smtp("127.0.0.9")
    try:
        c.sendmail("a@tern.test", ["b@x.test"], b"Subject: drop\r\n\r\n" + b"x" * 200 + b"\r\n")
        check(False, "drop_mid_data: smtplib should see the connection go")
    except (smtplib.SMTPServerDisconnected, ConnectionResetError, BrokenPipeError) as e:
        check(True, f"drop_mid_data: client sees the connection go ({type(e).__name__})")
    ts = dr.wait_transactions(1, 5)
    check(ts and ts[0].status == "dropped" and ts[0].data_raw == b"Subject: drop\r\n\r\nxxx",
          f"drop_mid_data: transaction dropped after 20 bytes "
          f"({ts and ts[0].data_raw!r})")

    # -- never answer
    na = mx("127.0.0.10", 25, mode="never_answer")
    s = raw("127.0.0.10", timeout=1.0)
    t = time.monotonic()
    try:
        got = s.recv(100)
    except (socket.timeout, TimeoutError):
        got = None
    check(got is None and time.monotonic() - t >= 0.9, "never_answer: no greeting in 1 s")
    s.close()
    check(na.wait_sessions(1, 5), "never_answer: the session is recorded and ends")

    # -- slow greeting
    sl = mx("127.0.0.11", 25, mode="slow", delay=1.0)
    t = time.monotonic()
    c = smtp("127.0.0.11")
    waited = time.monotonic() - t
    c.quit()
    check(0.9 <= waited < 3, f"slow: greeting after {waited:.2f} s (delay 1 s)")
    check(sl.wait_sessions(1, 5), "slow: session recorded")

    # -- IPv6
    if networld.has_ipv6():
        v6 = mx("::1", 25)
        c = smtp("::1")
        c.sendmail("a@tern.test", ["b@x.test"], b"Subject: v6\r\n\r\nx\r\n")
        c.quit()
        msgs = v6.wait_for(1, 5)
        check(msgs and msgs[0].peer.startswith("::1:"), "FakeMX on [::1]:25")

    # -- bounded waits
    t = time.monotonic()
    check(acc.wait_for(99, 0.3) is None and time.monotonic() - t < 1,
          "wait_for: None after its timeout")

    # -- the way tern will deliver: MX, then A, then SMTP
    dns.reload(dict(ZONES, **{"mail.test": {"MX": [(10, "mx1.two.test")]}}))
    a = q("mail.test", "MX")
    host = min(a.values("MX"))[1]
    addr = q(host, "A").values("A")[0]
    eq(addr, "127.0.0.2", "resolved mail.test: MX mx1.two.test, A 127.0.0.2")
    acc.reset()
    c = smtp(addr)
    c.sendmail("a@tern.test", ["x@mail.test"], b"Subject: e2e\r\n\r\nhello\r\n")
    c.quit()
    msgs = acc.wait_for(1, 5)
    check(msgs and msgs[0].recipients == ["x@mail.test"], "delivered to the MX found in DNS")

    check(max(x.max_active for x in servers) >= 1, "servers count concurrent sessions")


try:
    run_dns()
    run_fakemx()
except Exception:  # noqa: BLE001
    FAILED.append("exception")
    print("FATAL: " + traceback.format_exc(), flush=True)
finally:
    stopped = all([s.stop() for s in servers])
    check(stopped, f"{len(servers)} FakeMX servers stopped, threads joined")
    pid = dns.proc.pid if dns.proc else None
    dns.stop()
    check(pid is None or not os.path.exists(f"/proc/{pid}/status") or
          "zombie" in open(f"/proc/{pid}/status").read(), "dnsmasq stopped")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        try:
            u.bind((networld.DNS_ADDR, 53))
            check(True, "port 53 free again")
        except OSError as e:
            check(False, f"port 53 free again: {e}")
check(time.monotonic() - T0 < 30, f"finished in {time.monotonic() - T0:.1f} s (< 30 s)")
finish()
