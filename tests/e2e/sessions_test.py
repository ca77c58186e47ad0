"""Many sessions at once: 10,000 concurrent clients are all greeted and
served by the one smtpd process, and smtpd_client_connection_limit turns
the ones past the limit away with 421 4.7.0."""
import resource
import selectors
import socket
import time

import ternlib

suite = ternlib.Suite("sessions")

SESSIONS = 10000
DEADLINE_S = 120


def open_sessions(port, n):
    """Open n connections and read each one's greeting line; returns
    (sockets, {greeting code: count})."""
    sel = selectors.DefaultSelector()
    socks, codes, pending = [], {}, {}
    until = time.monotonic() + DEADLINE_S
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
        # Do not let the kernel's accept queue overflow: read as we go.
        if len(socks) % 500 == 0:
            drain(sel, pending, codes, 0.05)
    while pending and time.monotonic() < until:
        drain(sel, pending, codes, 0.5)
    sel.close()
    return socks, codes, len(pending)


def drain(sel, pending, codes, timeout):
    for key, _ in sel.select(timeout):
        s = key.fileobj
        try:
            data = s.recv(512)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            data = b""
        pending[s] += data
        if b"\n" in pending[s] or not data:
            code = pending[s][:3].decode(errors="replace") if data or pending[s] else "EOF"
            codes[code] = codes.get(code, 0) + 1
            sel.unregister(s)
            del pending[s]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_ten_thousand(s, t):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = SESSIONS + 200
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need), hard))
    s.check(resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need,
            f"the test client may open {need} descriptors (hard limit {hard})")
    socks, codes, stuck = open_sessions(t.port, SESSIONS)
    try:
        s.eq(codes.get("220", 0), SESSIONS, f"greetings among {SESSIONS} sessions ({codes})")
        s.eq(stuck, 0, "sessions without a greeting")
        pid = t.smtpd_pid()
        kb = rss_kb(pid)
        ternlib.log(f"    smtpd RSS with {SESSIONS} sessions: {kb / 1024:.1f} MiB")
        # A session still works while 9,999 others wait.
        with t.raw() as c:
            s.reply(c.cmd("EHLO busy.test"), 250, what="EHLO with 10,000 sessions open")
    finally:
        for so in socks:
            so.close()
    s.check(t.wait_log(r"disconnect from", 0, 10), "sessions end")


def test_connection_limit(s, t):
    # The start-up probe's session must be gone before we count.
    def idle():
        log = t.log_text()
        return log.count("disconnect from") == log.count("]: connect from")
    s.check(ternlib.wait_until(idle, 10), "no session open before the test")
    socks, codes, stuck = open_sessions(t.port, 60)
    try:
        s.eq(codes.get("220", 0), 50, f"sessions greeted under the limit ({codes})")
        s.eq(codes.get("421", 0), 10, "sessions turned away with 421")
        s.check(t.wait_log(r"warning: too many connections", 0, 5), "the refusal is logged")
    finally:
        for so in socks:
            so.close()


suite.group("ten thousand", {}, [("10,000 concurrent sessions", test_ten_thousand)])
suite.group("limit", {"smtpd_client_connection_limit": "50"},
            [("smtpd_client_connection_limit", test_connection_limit)])
suite.finish()
