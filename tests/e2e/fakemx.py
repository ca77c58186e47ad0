"""fakemx: scripted fake SMTP servers for the end-to-end tests of tern's
outbound SMTP client.

    mx = fakemx.FakeMX("127.0.0.2", 25, mode="accept").start()
    ...                                   # tern delivers to it
    msgs = mx.wait_for(1, timeout=10)     # [Transaction] or None
    mx.stop()

Raw sockets, one thread per connection, blocking I/O with timeouts: we
write exactly the bytes we mean and record exactly the bytes the client
sent. Every server records:

  Session      one connection: peer, helo verb and name, TLS (protocol
               version, cipher, SNI), AUTH, the transcript ("C: ..." /
               "S: ..."), protocol violations, how it ended.
  Transaction  one MAIL FROM: the command line and its parameters, every
               RCPT (line, address, parameters, reply), the DATA bytes
               exactly as received (dot-stuffed, up to but not including
               the final ".\\r\\n") and un-stuffed, the final reply, status
               ("open", "accepted", "rejected", "aborted", "dropped").

Readers get copies taken under a lock: sessions(), transactions(),
messages() (accepted only), violations(); wait_for(n) / wait_sessions(n)
wait on a condition, bounded, and return None on timeout.

Modes (presets; comma-separated ones combine, e.g. "starttls,no_pipelining"):
  accept          ESMTP; caps PIPELINING, SIZE, ENHANCEDSTATUSCODES,
                  8BITMIME, SMTPUTF8, DSN (caps= replaces the list;
                  starttls=True adds STARTTLS, auth=True adds AUTH PLAIN LOGIN)
  starttls        accept + STARTTLS with a self-signed certificate made with
                  the openssl CLI into the server's temp dir (.certfile is
                  the file a client trusts), or cert=(certfile, keyfile)
  no_pipelining   accept without PIPELINING; waits pipeline_probe (50 ms)
                  before each reply and records a violation when the client
                  sent anything before the reply to its previous command
  greet_4xx       "421 4.3.2 ..." greeting, then close
  greet_5xx       "554 5.3.2 ..." greeting; 503 to everything but QUIT
  ehlo_fail       EHLO answers "500 5.5.1" (the client must fall back to HELO)
  slow            the greeting comes after delay= seconds (default 2)
  drop_mid_data   close the connection after drop_after= bytes of DATA
  never_answer    accept the TCP connection, never say anything
  refuse          nothing listens: start() only checks that a connect is
                  refused (see also connection_refused())

Scripted replies (script=, or set_script() while running): {key: reply}
with key "greeting", "EHLO", "HELO", "MAIL", "RCPT", "DATA", "DATA_END"
(after the final dot), "RSET", "NOOP", "QUIT", "STARTTLS", "AUTH", or
"MAIL addr" / "RCPT addr" for one address (case-insensitive, no <>). A
reply is a string ("452 4.2.2 mailbox full"; lines separated by "\\n" make
a multi-line reply), "close" (close without a reply), "hang" (never reply),
a callable(session, line) returning one of those or None (the default
reply), or a list of those used in turn (the last one repeats) over the
server's lifetime: ["451 4.3.0 try later", "250 2.0.0 ok"]. A reply with
code 421 closes the connection after it is sent. delays={key: seconds}
waits before a reply.

Hostile replies: a reply may also be a Stream, raw bytes sent chunk by
chunk (after an optional ordinary reply, head=) until they run out, the
client closes or resets the connection, or it stops reading for stall=
seconds; then the server closes. Two makers:
  flood(line, limit=20 MB)       line + CRLF again and again ("250-xxx": a
                                 multi-line reply that never ends)
  garbage(size=10 MB, seed, binary=False, head=None)
                                 seeded random bytes without CR or LF:
                                 printable ASCII, or any byte but LF
                                 (binary=True, NULs included)
The session records session.stream_sent (bytes of the stream sent) and
session.stream_end ("client closed", "client stopped reading", "all
sent", "stopped"); it ends "stream: <stream_end>".

Violations recorded (each a string in session.violations): a command or
data sent before the reply it must wait for (RFC 2920: only MAIL, RCPT,
RSET may be followed without waiting, and nothing when PIPELINING was not
offered), plaintext after STARTTLS (command injection), MAIL/RCPT
parameters whose extension was not offered (answered 555 5.5.4), 8-bit
data without BODY=8BITMIME, non-ASCII addresses without SMTPUTF8, bare LF
in DATA, DATA lines over 1000 octets, command lines over 512 octets,
BDAT without CHUNKING.

CLI for manual use:
    /usr/bin/python3 fakemx.py --listen 127.0.0.2:2526 --mode accept \\
        [--listen [::1]:2526] [--reply "RCPT bob@x.test=550 5.1.1 no such user"] \\
        [--caps "PIPELINING,SIZE 1000"] [--duration 60]
prints sessions and transactions as they end; Ctrl-C stops.
"""
import argparse
import copy
import os
import random
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

OPENSSL = "/usr/bin/openssl"

DEFAULT_CAPS = ("PIPELINING", "SIZE 10240000", "ENHANCEDSTATUSCODES", "8BITMIME",
                "SMTPUTF8", "DSN")
MODES = ("accept", "starttls", "no_pipelining", "greet_4xx", "greet_5xx", "ehlo_fail", "slow",
         "drop_mid_data", "never_answer", "refuse")
# RFC 2920 section 3.1: commands that may be followed by others without
# waiting for their reply, when PIPELINING was offered.
MAY_BE_FOLLOWED = ("MAIL", "RCPT", "RSET", "DATA_END")
# Parameters and the EHLO keyword that must have been offered for them.
MAIL_PARAMS = {"SIZE": "SIZE", "BODY": "8BITMIME", "SMTPUTF8": "SMTPUTF8", "RET": "DSN",
               "ENVID": "DSN", "AUTH": "AUTH", "REQUIRETLS": "REQUIRETLS"}
RCPT_PARAMS = {"NOTIFY": "DSN", "ORCPT": "DSN"}

ADDR_RE = re.compile(r"^(MAIL FROM|RCPT TO):\s*<([^>]*)>(.*)$", re.I)


class Closed(Exception):
    """The connection is over (client closed, reset, timeout or stop)."""


# ---- hostile replies --------------------------------------------------------------


class Stream:
    """A reply sent as raw bytes (module doc, "Hostile replies"). chunks is
    a callable returning an iterable of bytes, called anew for each use,
    so one Stream may answer many sessions; head is an ordinary reply
    (str) sent first; what names it in the transcript."""

    def __init__(self, chunks, head=None, stall=5.0, what="stream"):
        self.chunks, self.head, self.stall, self.what = chunks, head, stall, what

    def __repr__(self):
        return f"Stream({self.what})"


def flood(line="250-xxx", limit=20 * 1024 * 1024, chunk=65536, head=None):
    """A Stream of line + CRLF, repeated until limit bytes are sent."""
    one = (line + "\r\n").encode()
    block = one * max(1, chunk // len(one))

    def chunks():
        sent = 0
        while sent < limit:
            b = block[:limit - sent]
            sent += len(b)
            yield b
    return Stream(chunks, head=head, what=f"flood of {line[:20]!r}..., up to {limit} bytes")


def garbage(size=10 * 1024 * 1024, seed=4, binary=False, head=None, chunk=65536):
    """A Stream of size seeded random bytes, never CR or LF: printable
    ASCII (one endless line), or with binary=True any byte but LF
    (CR becomes NUL, so NULs are there). The bytes are made once."""
    raw = random.Random(seed).randbytes(size)
    if binary:
        table = bytes(0 if b in (10, 13) else b for b in range(256))
    else:
        table = bytes(33 + b % 94 for b in range(256))
    data = raw.translate(table)

    def chunks():
        for i in range(0, len(data), chunk):
            yield data[i:i + chunk]
    kind = "binary" if binary else "printable"
    return Stream(chunks, head=head, what=f"{size} bytes of {kind} garbage")


# ---- records ---------------------------------------------------------------------


class Rcpt:
    def __init__(self, line, addr, params):
        self.line, self.addr, self.params = line, addr, params
        self.reply = None   # the reply text we sent
        self.code = None

    @property
    def accepted(self):
        return self.code is not None and 200 <= self.code < 300

    def __repr__(self):
        return f"Rcpt({self.addr!r} {self.code})"


class Transaction:
    """One MAIL FROM ... (RSET | final reply | drop)."""

    def __init__(self, tid, session):
        self.id = tid
        self.session_id = session.id
        self.peer = session.peer
        self.helo = session.helo_name
        self.tls = session.tls
        self.tls_version = session.tls_version
        self.mail_line = ""        # "MAIL FROM:<a@b> SIZE=12 BODY=8BITMIME"
        self.sender = None         # "a@b" ("" for the null sender)
        self.mail_params = []      # ["SIZE=12", "BODY=8BITMIME"]
        self.mail_reply = None
        self.rcpts = []            # [Rcpt]
        self.data_raw = None       # bytes as received (dot-stuffed), without ".\r\n"
        self.data = None           # un-stuffed
        self.reply = None          # the final reply text
        self.code = None
        self.status = "open"       # accepted, rejected, aborted, dropped
        self.queue_id = None

    @property
    def recipients(self):
        """Addresses whose RCPT we accepted."""
        return [r.addr for r in self.rcpts if r.accepted]

    def param(self, key):
        """A MAIL parameter's value ("" for one without =), or None."""
        for p in self.mail_params:
            k, _, v = p.partition("=")
            if k.upper() == key.upper():
                return v
        return None

    def __repr__(self):
        rcpts = " ".join(f"{r.addr}:{r.code}" for r in self.rcpts)
        return (f"Transaction(#{self.id} {self.status} from=<{self.sender}> rcpts=[{rcpts}] "
                f"data={len(self.data_raw or b'')} bytes reply={self.reply!r})")


class Session:
    def __init__(self, sid, peer, local):
        self.id = sid
        self.peer = peer
        self.local = local
        self.started = time.time()
        self.helo_verb = None      # "EHLO" / "HELO"
        self.helo_name = None
        self.helos = []            # every (verb, name), TLS or not
        self.tls = False
        self.tls_version = None    # "TLSv1.3"
        self.tls_cipher = None
        self.tls_sni = None
        self.tls_error = None
        self.auth = None           # (mechanism, user, password)
        self.transcript = []
        self.commands = []         # the command lines, in order
        self.violations = []
        self.pipelined = 0         # commands that arrived before our previous reply
        self.ended = None          # "quit", "client closed", "closed by server", ...
        self.stream_sent = 0       # bytes of a Stream reply sent
        self.stream_end = None     # how a Stream reply ended ("client closed", ...)
        self._txn = None

    def __repr__(self):
        return (f"Session(#{self.id} {self.peer} helo={self.helo_verb} {self.helo_name} "
                f"tls={self.tls_version} ended={self.ended} violations={self.violations})")


# ---- TLS material -------------------------------------------------------------------


def make_certificate(directory, hostname="mx.test"):
    """A self-signed certificate and key (EC P-256) for hostname, made with
    the openssl CLI into directory; returns (certfile, keyfile)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    r = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "7",
                        "-subj", f"/CN={hostname}",
                        "-addext", f"subjectAltName=DNS:{hostname}"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"openssl req failed ({r.returncode}): {r.stderr.strip()}")
    return cert, key


def _tls_version(v):
    if v is None or isinstance(v, ssl.TLSVersion):
        return v
    return {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
            "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}[v]


def connection_refused(addr, port=25, timeout=2.0):
    """True when a TCP connect to addr:port is refused (nothing listens)."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((addr, port))
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        return False


def unstuff(raw):
    """Remove the transparency dots (RFC 5321 4.5.2) from DATA bytes."""
    return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in raw.split(b"\r\n"))


# ---- one connection ------------------------------------------------------------------


class _Conn:
    """A buffered socket that may become TLS; every wait is bounded."""

    def __init__(self, sock, server):
        self.sock = sock
        self.srv = server
        self.buf = b""

    def _recv_once(self, timeout):
        """Read what is there within timeout into buf; False on timeout.
        Raises Closed on EOF, reset or server stop."""
        if self.srv.stopping:
            raise Closed("stopped")
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            timeout = 0
        self.sock.settimeout(max(timeout, 0.0001))
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError, ssl.SSLWantReadError):
            return False
        except (OSError, ssl.SSLError) as e:
            raise Closed(f"read error: {e}")
        if not chunk:
            raise Closed("client closed")
        self.buf += chunk
        return True

    def _wait(self, have, timeout):
        """Read until have() or timeout (Closed("timeout")); polls the stop flag."""
        deadline = time.monotonic() + timeout
        while not have():
            left = deadline - time.monotonic()
            if left <= 0:
                raise Closed("timeout")
            self._recv_once(min(left, 0.25))

    def readline(self, timeout):
        self._wait(lambda: b"\r\n" in self.buf or len(self.buf) > 65536, timeout)
        if b"\r\n" not in self.buf:
            raise Closed("line too long")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def pending(self, probe):
        """True when bytes beyond the current command are here already, or
        arrive within probe seconds."""
        if self.buf:
            return True
        try:
            if probe > 0:
                return self._recv_once(probe)
            r, _, _ = select.select([self.sock], [], [], 0)
            if r or (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
                return self._recv_once(0.001) or bool(self.buf)
        except Closed:
            return False
        return False

    def read_data(self, timeout, limit=None):
        """DATA up to the final ".\\r\\n": (raw bytes without it, True), or
        (the first `limit` bytes, False) once that many have arrived."""
        start = 0
        deadline = time.monotonic() + timeout
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b"", True
            i = self.buf.find(b"\r\n.\r\n", start)
            if i >= 0 and (limit is None or i + 2 <= limit):
                raw, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return raw, True
            if limit is not None and len(self.buf) >= limit:
                raw, self.buf = self.buf[:limit], b""
                return raw, False
            start = max(0, len(self.buf) - 4)
            left = deadline - time.monotonic()
            if left <= 0:
                raise Closed("timeout in DATA")
            self._recv_once(min(left, 0.25))

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (OSError, ssl.SSLError) as e:
            raise Closed(f"write error: {e}")

    def hold(self, timeout):
        """Say nothing until the client goes, the server stops or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._recv_once(min(0.25, max(deadline - time.monotonic(), 0.001)))
            self.buf = self.buf[-65536:]
        raise Closed("timeout (held)")

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


# ---- the server ------------------------------------------------------------------------


class FakeMX:
    """A scripted SMTP server on addr:port, in threads. See the module doc."""

    def __init__(self, addr="127.0.0.1", port=25, mode="accept", script=None, caps=None,
                 hostname="mx.test", starttls=False, auth=False, auth_users=None,
                 tls_caps=None, tls_min=None, tls_max=None, cert=None, delays=None, delay=2.0,
                 drop_after=10, pipeline_probe=None, max_rcpts=None,
                 session_timeout=30.0, data_timeout=60.0):
        self.addr, self.port = addr, port
        self.modes = [m.strip() for m in mode.split(",")] if isinstance(mode, str) else list(mode)
        for m in self.modes:
            if m not in MODES:
                raise ValueError(f"unknown FakeMX mode {m!r} (one of {', '.join(MODES)})")
        self.hostname = hostname
        self.caps = list(DEFAULT_CAPS if caps is None else caps)
        self.auth_users = auth_users
        self.tls_min, self.tls_max = _tls_version(tls_min), _tls_version(tls_max)
        self.cert = cert
        self.delays = {k.upper(): v for k, v in (delays or {}).items()}
        self.drop_after = drop_after
        self.max_rcpts = max_rcpts
        self.session_timeout, self.data_timeout = session_timeout, data_timeout
        self.pipeline_probe = 0.0
        self.greeting_kind = "220"
        self.drop = False
        self.silent = False
        self.refuse = False
        script = dict(script or {})
        for m in self.modes:
            if m == "starttls":
                starttls = True
            elif m == "no_pipelining":
                self.caps = [c for c in self.caps if c.split()[0].upper() != "PIPELINING"]
                self.pipeline_probe = 0.05
            elif m == "greet_4xx":
                self.greeting_kind = "421"
            elif m == "greet_5xx":
                self.greeting_kind = "554"
            elif m == "ehlo_fail":
                script.setdefault("EHLO", "500 5.5.1 Command unrecognized: EHLO")
            elif m == "slow":
                self.delays.setdefault("GREETING", delay)
            elif m == "drop_mid_data":
                self.drop = True
            elif m == "never_answer":
                self.silent = True
            elif m == "refuse":
                self.refuse = True
        if pipeline_probe is not None:
            self.pipeline_probe = pipeline_probe
        if starttls and not self._has(self.caps, "STARTTLS"):
            self.caps.append("STARTTLS")
        if auth and not self._has(self.caps, "AUTH"):
            self.caps.append("AUTH PLAIN LOGIN")
        self.tls_caps = None if tls_caps is None else list(tls_caps)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._script = {}
        self._uses = {}
        self.set_script(script)
        self._sessions = []
        self._transactions = []
        self._next_sid = self._next_tid = 0
        self.active = 0
        self.max_active = 0
        self.stopping = False
        self.listener = None
        self.thread = None
        self.threads = []
        self.conns = set()
        self.dir = None
        self.certfile = self.keyfile = None
        self.ssl_ctx = None

    @staticmethod
    def _has(caps, kw):
        return any(c.split()[0].upper() == kw for c in caps if c.strip())

    def __repr__(self):
        return f"FakeMX({self.address} {','.join(self.modes)})"

    @property
    def address(self):
        return f"[{self.addr}]:{self.port}" if ":" in self.addr else f"{self.addr}:{self.port}"

    # -- scripting

    @staticmethod
    def _key(k):
        verb, _, arg = k.strip().partition(" ")
        verb = verb.upper()
        arg = arg.strip().strip("<>").lower()
        return f"{verb} {arg}" if arg else verb

    def set_script(self, script):
        """Replace the scripted replies (thread-safe; counters restart)."""
        with self.lock:
            self._script = {self._key(k): v for k, v in (script or {}).items()}
            self._uses = {}

    def _scripted(self, key, session, line, addr=None):
        """The scripted reply for key (addr-specific first) or None."""
        with self.lock:
            k = None
            if addr is not None and self._key(f"{key} {addr}") in self._script:
                k = self._key(f"{key} {addr}")
            elif key in self._script:
                k = key
            if k is None:
                return None
            v = self._script[k]
            if isinstance(v, (list, tuple)):
                n = self._uses.get(k, 0)
                self._uses[k] = n + 1
                v = v[min(n, len(v) - 1)] if v else None
        if callable(v):
            v = v(session, line)
        return v

    # -- life cycle

    def start(self):
        """Listen and serve in a thread; returns self. mode refuse: check that
        nothing listens instead (RuntimeError if something does)."""
        if self.refuse:
            if not connection_refused(self.addr, self.port):
                raise RuntimeError(f"mode refuse: something accepts connections on "
                                   f"{self.address}")
            return self
        if self._has(self.caps, "STARTTLS") or self._has(self.tls_caps or [], "STARTTLS"):
            self._make_tls()
        fam = socket.AF_INET6 if ":" in self.addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            s.bind((self.addr, self.port))
        except OSError as e:
            s.close()
            self._rmdir()
            raise OSError(e.errno, f"FakeMX cannot listen on {self.address}: {e.strerror}")
        s.listen(64)
        if self.port == 0:
            self.port = s.getsockname()[1]
        self.listener = s
        self.thread = threading.Thread(target=self._accept_loop, daemon=True,
                                       name=f"fakemx-{self.address}")
        self.thread.start()
        return self

    def _make_tls(self):
        if self.cert:
            self.certfile, self.keyfile = self.cert
        else:
            self.dir = tempfile.mkdtemp(prefix="tern-e2e-fakemx-", dir="/var/tmp")
            self.certfile, self.keyfile = make_certificate(self.dir, self.hostname)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.certfile, self.keyfile)
        if self.tls_min is not None:
            ctx.minimum_version = self.tls_min
        if self.tls_max is not None:
            ctx.maximum_version = self.tls_max

        def sni(sslsock, name, _ctx):
            sslsock.fakemx_sni = name
        ctx.sni_callback = sni
        self.ssl_ctx = ctx

    def _rmdir(self):
        if self.dir and not os.environ.get("TERN_E2E_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def stop(self, timeout=5.0):
        """Stop listening, cut every connection, join the threads (bounded).
        Returns True when every thread ended in time."""
        self.stopping = True
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the select at once
            except OSError:
                pass
        if self.thread is not None:
            self.thread.join(timeout)
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            c.close()
        deadline = time.monotonic() + timeout
        ok = self.thread is None or not self.thread.is_alive()
        for t in list(self.threads):
            t.join(max(0.0, deadline - time.monotonic()))
            ok = ok and not t.is_alive()
        self._rmdir()
        return ok

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def _accept_loop(self):
        while not self.stopping:
            try:
                r, _, _ = select.select([self.listener], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not r:
                continue
            if self.stopping:
                return
            try:
                sock, peer = self.listener.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._serve, args=(sock, peer), daemon=True,
                                 name=f"fakemx-{self.address}-conn")
            self.threads = [x for x in self.threads if x.is_alive()] + [t]
            t.start()

    # -- records

    def _update(self, fn):
        with self.cond:
            fn()
            self.cond.notify_all()

    def sessions(self):
        """Copies of every session so far, oldest first."""
        with self.lock:
            return copy.deepcopy(self._sessions)

    def transactions(self):
        """Copies of every transaction (any status), oldest first."""
        with self.lock:
            return copy.deepcopy(self._transactions)

    def messages(self):
        """Copies of the accepted transactions."""
        with self.lock:
            return copy.deepcopy([t for t in self._transactions if t.status == "accepted"])

    def violations(self):
        """[(session id, violation)] over every session."""
        with self.lock:
            return [(s.id, v) for s in self._sessions for v in s.violations]

    def reset(self):
        """Forget the records (sessions still open keep recording into theirs)."""
        with self.lock:
            self._sessions = []
            self._transactions = []

    def _wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred()
                if v is not None:
                    return copy.deepcopy(v)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.5))

    def wait_for(self, n_messages, timeout=10.0):
        """The first n accepted messages once there are n (bounded wait), else None."""
        def pred():
            m = [t for t in self._transactions if t.status == "accepted"]
            return m[:n_messages] if len(m) >= n_messages else None
        return self._wait(pred, timeout)

    def wait_transactions(self, n, timeout=10.0, status=None):
        """The first n transactions that are no longer open (or have status)."""
        def pred():
            m = [t for t in self._transactions
                 if (t.status == status if status else t.status != "open")]
            return m[:n] if len(m) >= n else None
        return self._wait(pred, timeout)

    def wait_sessions(self, n, timeout=10.0, ended=True):
        """The first n sessions (ended ones when ended=True), else None."""
        def pred():
            m = [s for s in self._sessions if s.ended or not ended]
            return m[:n] if len(m) >= n else None
        return self._wait(pred, timeout)

    # -- serving one connection

    def _serve(self, sock, peer):
        conn = _Conn(sock, self)
        sess = Session(0, f"{peer[0]}:{peer[1]}", self.address)

        def add():
            self._next_sid += 1
            sess.id = self._next_sid
            self._sessions.append(sess)
            self.conns.add(conn)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self._update(add)
        ended = "closed by server"
        try:
            self._session(conn, sess)
        except Closed as e:
            ended = str(e)
        except Exception as e:  # noqa: BLE001 (a bug here must not kill the thread silently)
            ended = f"fakemx error: {e!r}"
            self._violate(sess, f"fakemx internal error: {e!r}")
        finally:
            conn.close()

            def end():
                if sess.ended is None:
                    sess.ended = ended
                self.conns.discard(conn)
                self.active -= 1
                t = getattr(sess, "_txn", None)
                if t is not None and t.status == "open":
                    t.status = "aborted"
            self._update(end)

    def _log(self, sess, line):
        self._update(lambda: sess.transcript.append(line))

    def _violate(self, sess, what):
        self._update(lambda: sess.violations.append(what))

    def _send(self, conn, sess, key, text):
        """Send a reply (str, "\\n" between lines); close after a 421."""
        d = self.delays.get(key)
        if d:
            self._sleep(d)
        lines = text.split("\n")
        for l in lines:
            self._log(sess, f"S: {l}")
        conn.send("".join(l + "\r\n" for l in lines).encode())
        if text.startswith("421"):
            raise Closed("closed by server after 421")

    def _sleep(self, seconds):
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
        if self.stopping:
            raise Closed("stopped")

    def _respond(self, conn, sess, key, line, default, addr=None):
        """Send the scripted reply for key, or default. Returns the text sent."""
        v = self._scripted(key, sess, line, addr)
        if v is None:
            v = default
        if isinstance(v, Stream):
            self._stream(conn, sess, key, v)
        if v == "close":
            self._log(sess, "S: (close)")
            raise Closed("closed by server (script)")
        if v == "hang":
            self._log(sess, "S: (hang)")
            conn.hold(self.session_timeout)
        self._send(conn, sess, key, v)
        return v

    def _stream(self, conn, sess, key, st):
        """Send a Stream reply, then end the session (raises Closed)."""
        d = self.delays.get(key)
        if d:
            self._sleep(d)
        if st.head:
            for l in st.head.split("\n"):
                self._log(sess, f"S: {l}")
            conn.send("".join(l + "\r\n" for l in st.head.split("\n")).encode())
        self._log(sess, f"S: ({st.what})")
        sent, end = 0, "all sent"
        try:
            conn.sock.settimeout(st.stall)
            for b in st.chunks():
                if self.stopping:
                    end = "stopped"
                    break
                try:
                    conn.sock.sendall(b)
                except (socket.timeout, TimeoutError):
                    end = "client stopped reading"
                    break
                except (OSError, ssl.SSLError):
                    end = "client closed"
                    break
                sent += len(b)
        finally:
            def rec():
                sess.stream_sent, sess.stream_end = sent, end
            self._update(rec)
            self._log(sess, f"S: ({sent} bytes of the stream sent: {end})")
        raise Closed(f"stream: {end}")

    def _offered(self, sess, kw):
        return self._has(self._caps(sess), kw) and sess.helo_verb == "EHLO"

    def _caps(self, sess):
        caps = self.tls_caps if (sess.tls and self.tls_caps is not None) else self.caps
        if sess.tls:
            caps = [c for c in caps if c.split()[0].upper() != "STARTTLS"]
        return caps

    def _check_pipelining(self, conn, sess, verb):
        """Called after a command was read, before its reply is sent."""
        if not conn.pending(self.pipeline_probe):
            return
        nxt = conn.buf.split(b"\r\n", 1)[0][:60].decode("utf-8", "replace")
        self._update(lambda: setattr(sess, "pipelined", sess.pipelined + 1))
        offered = self._offered(sess, "PIPELINING")
        if offered and verb in MAY_BE_FOLLOWED:
            return
        if offered or verb in ("EHLO", "HELO", "STARTTLS"):
            self._violate(sess, f"{verb} must be the last command of a pipelined group "
                                f"(RFC 2920), but {nxt!r} followed before its reply")
        else:
            self._violate(sess, f"pipelining not offered: {nxt!r} sent before the reply "
                                f"to {verb}")

    def _session(self, conn, sess):
        if self.silent:
            self._log(sess, "S: (never answers)")
            conn.hold(self.session_timeout)
        code = self.greeting_kind
        default = {"220": f"220 {self.hostname} ESMTP fakemx",
                   "421": f"421 4.3.2 {self.hostname} Service not available, closing",
                   "554": f"554 5.3.2 {self.hostname} No SMTP service here"}[code]
        greet = self._respond(conn, sess, "GREETING", "", default)
        refusing = not greet.startswith("220")
        txn = None
        while True:
            raw = conn.readline(self.session_timeout)
            line = raw.decode("utf-8", "surrogateescape")
            if len(raw) + 2 > 512:
                self._violate(sess, f"command line of {len(raw) + 2} octets (max 512)")
            shown = line if not line.upper().startswith("AUTH ") else line.split(" ")[0] + " ..."
            self._log(sess, f"C: {shown}")
            self._update(lambda: sess.commands.append(shown))
            verb = line.split(" ", 1)[0].upper()
            if line.upper().startswith("MAIL FROM:"):
                verb = "MAIL"
            elif line.upper().startswith("RCPT TO:"):
                verb = "RCPT"
            self._check_pipelining(conn, sess, verb)
            if refusing:
                if verb == "QUIT":
                    self._respond(conn, sess, "QUIT", line, "221 2.0.0 Bye")
                    raise Closed("quit")
                self._send(conn, sess, verb, "503 5.5.1 Error: no SMTP service here")
                continue
            if verb in ("EHLO", "HELO"):
                name = line[5:].strip()
                items = [self.hostname] + (self._caps(sess) if verb == "EHLO" else [])
                default = "\n".join(("250 " if i == len(items) - 1 else "250-") + c
                                     for i, c in enumerate(items))
                r = self._respond(conn, sess, verb, line, default)
                if txn is not None:
                    self._end_txn(sess, txn, "aborted")
                    txn = None
                if r.startswith("250"):
                    def hello():
                        sess.helo_verb, sess.helo_name = verb, name
                        sess.helos.append((verb, name))
                    self._update(hello)
            elif verb == "MAIL":
                txn = self._mail(conn, sess, txn, line)
            elif verb == "RCPT":
                self._rcpt(conn, sess, txn, line)
            elif verb == "DATA":
                if self._data(conn, sess, txn, line):
                    txn = None
            elif verb == "BDAT":
                self._violate(sess, "BDAT without CHUNKING offered")
                self._send(conn, sess, verb, "502 5.5.1 Error: command not implemented")
            elif verb == "RSET":
                self._respond(conn, sess, "RSET", line, "250 2.0.0 Ok")
                if txn is not None:
                    self._end_txn(sess, txn, "aborted")
                    txn = None
            elif verb == "NOOP":
                self._respond(conn, sess, "NOOP", line, "250 2.0.0 Ok")
            elif verb == "VRFY":
                self._respond(conn, sess, "VRFY", line, "252 2.0.0 Send some mail, I'll try")
            elif verb == "HELP":
                self._respond(conn, sess, "HELP", line, "214 2.0.0 fakemx")
            elif verb == "QUIT":
                self._respond(conn, sess, "QUIT", line, "221 2.0.0 Bye")
                if txn is not None:
                    self._end_txn(sess, txn, "aborted")
                raise Closed("quit")
            elif verb == "STARTTLS":
                if txn is not None:
                    self._end_txn(sess, txn, "aborted")
                    txn = None
                self._starttls(conn, sess, line)
            elif verb == "AUTH":
                self._auth(conn, sess, line)
            else:
                self._send(conn, sess, verb, "502 5.5.2 Error: command not recognized")

    def _end_txn(self, sess, txn, status):
        def f():
            if txn.status == "open":
                txn.status = status
            sess._txn = None
        self._update(f)

    def _params(self, sess, params, table, what):
        """The first parameter not allowed by what was offered, or None."""
        for p in params:
            k = p.split("=", 1)[0].upper()
            need = table.get(k)
            if need is None or not self._offered(sess, need):
                self._violate(sess, f"{what} parameter {p} but {need or k} was not offered")
                return p
        return None

    def _mail(self, conn, sess, txn, line):
        m = ADDR_RE.match(line)
        if sess.helo_verb is None:
            self._respond(conn, sess, "MAIL", line, "503 5.5.1 Error: send HELO/EHLO first")
            return txn
        if txn is not None:
            self._respond(conn, sess, "MAIL", line, "503 5.5.1 Error: nested MAIL command")
            return txn
        if not m:
            self._respond(conn, sess, "MAIL", line, "501 5.5.4 Syntax: MAIL FROM:<address>")
            return None
        addr, params = m.group(2), m.group(3).split()
        with self.lock:
            self._next_tid += 1
            tid = self._next_tid
        t = Transaction(tid, sess)
        t.mail_line, t.sender, t.mail_params = line, addr, params
        if not addr.isascii() and "SMTPUTF8" not in [p.upper() for p in params]:
            self._violate(sess, f"non-ASCII sender {addr!r} without SMTPUTF8")
        bad = self._params(sess, params, MAIL_PARAMS, "MAIL")
        size = t.param("SIZE")
        limit = next((c.split()[1] for c in self._caps(sess)
                      if c.split()[0].upper() == "SIZE" and len(c.split()) > 1), None)
        if bad:
            default = f"555 5.5.4 Unsupported option: {bad}"
        elif size and limit and size.isdigit() and limit.isdigit() and \
                int(limit) and int(size) > int(limit):
            default = "552 5.3.4 Message size exceeds fixed limit"
        else:
            default = "250 2.1.0 Ok"
        r = self._respond(conn, sess, "MAIL", line, default, addr)
        t.mail_reply = r

        def rec():
            self._transactions.append(t)
            sess._txn = t
        if r.startswith("2"):
            self._update(rec)
            return t
        return None

    def _rcpt(self, conn, sess, txn, line):
        if txn is None:
            self._respond(conn, sess, "RCPT", line, "503 5.5.1 Error: need MAIL command")
            return
        m = ADDR_RE.match(line)
        if not m:
            self._respond(conn, sess, "RCPT", line, "501 5.5.4 Syntax: RCPT TO:<address>")
            return
        addr, params = m.group(2), m.group(3).split()
        if not addr.isascii() and txn.param("SMTPUTF8") is None:
            self._violate(sess, f"non-ASCII recipient {addr!r} without SMTPUTF8")
        r = Rcpt(line, addr, params)
        bad = self._params(sess, params, RCPT_PARAMS, "RCPT")
        if bad:
            default = f"555 5.5.4 Unsupported option: {bad}"
        elif self.max_rcpts is not None and len(txn.recipients) >= self.max_rcpts:
            default = "452 4.5.3 Error: too many recipients"
        else:
            default = "250 2.1.5 Ok"
        text = self._respond(conn, sess, "RCPT", line, default, addr)

        def rec():
            r.reply, r.code = text, int(text[:3]) if text[:3].isdigit() else None
            txn.rcpts.append(r)
        self._update(rec)

    def _data(self, conn, sess, txn, line):
        """DATA and the message; True when the transaction is over."""
        if txn is None:
            self._respond(conn, sess, "DATA", line, "503 5.5.1 Error: need RCPT command")
            return False
        if not txn.recipients:
            self._respond(conn, sess, "DATA", line, "554 5.5.1 Error: no valid recipients")
            self._end_txn(sess, txn, "rejected")
            return True
        r = self._respond(conn, sess, "DATA", line, "354 End data with <CR><LF>.<CR><LF>")
        if not r.startswith("354"):
            self._update(lambda: (setattr(txn, "reply", r), setattr(txn, "code", int(r[:3]))))
            self._end_txn(sess, txn, "rejected")
            return True
        raw, complete = conn.read_data(self.data_timeout, self.drop_after if self.drop else None)
        self._log(sess, f"C: ({len(raw)} bytes of data{'' if complete else ', cut'})")
        self._update(lambda: (setattr(txn, "data_raw", raw), setattr(txn, "data", unstuff(raw))))
        if complete:
            self._check_data(sess, txn, raw)
        else:
            self._end_txn(sess, txn, "dropped")
            self._log(sess, "S: (close in DATA)")
            raise Closed("dropped in DATA")
        self._check_pipelining(conn, sess, "DATA_END")
        qid = f"FAKE{txn.id:06d}"
        text = self._respond(conn, sess, "DATA_END", ".",
                             f"250 2.0.0 Ok: queued as {qid}")

        def rec():
            txn.reply = text
            txn.code = int(text[:3]) if text[:3].isdigit() else None
            txn.queue_id = qid if text.startswith("2") else None
        self._update(rec)
        self._end_txn(sess, txn, "accepted" if text.startswith("2") else "rejected")
        return True

    def _check_data(self, sess, txn, raw):
        if re.search(rb"(?<!\r)\n", raw) or re.search(rb"\r(?!\n)", raw):
            self._violate(sess, "bare LF or CR in DATA")
        longest = max((len(l) for l in raw.split(b"\r\n")), default=0)
        if longest + 2 > 1000:
            self._violate(sess, f"DATA line of {longest + 2} octets (max 1000)")
        if any(b > 0x7F for b in raw):
            body = (txn.param("BODY") or "").upper()
            if body not in ("8BITMIME", "BINARYMIME") and txn.param("SMTPUTF8") is None:
                self._violate(sess, "8-bit data without BODY=8BITMIME")

    def _starttls(self, conn, sess, line):
        if sess.tls or not self._offered(sess, "STARTTLS") or self.ssl_ctx is None:
            self._respond(conn, sess, "STARTTLS", line,
                          "503 5.5.1 Error: TLS already active" if sess.tls else
                          "502 5.5.1 Error: command not implemented")
            return
        r = self._respond(conn, sess, "STARTTLS", line, "220 2.0.0 Ready to start TLS")
        if not r.startswith("220"):
            return
        if conn.buf:
            self._violate(sess, f"plaintext after STARTTLS: {conn.buf[:60]!r} "
                                f"(command injection; discarded)")
            conn.buf = b""
        conn.sock.settimeout(self.session_timeout)
        try:
            tls = self.ssl_ctx.wrap_socket(conn.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            err = str(e)
            self._update(lambda: setattr(sess, "tls_error", err))
            self._log(sess, f"S: (TLS handshake failed: {err})")
            raise Closed(f"TLS handshake failed: {err}")
        conn.sock = tls

        def rec():
            sess.tls = True
            sess.tls_version = tls.version()
            sess.tls_cipher = (tls.cipher() or (None,))[0]
            sess.tls_sni = getattr(tls, "fakemx_sni", None)
            sess.helo_verb = sess.helo_name = None  # RFC 3207: forget the EHLO
        self._update(rec)
        self._log(sess, f"S: (TLS {sess.tls_version} {sess.tls_cipher})")

    def _auth(self, conn, sess, line):
        import base64
        parts = line.split()
        if not self._offered(sess, "AUTH") or sess.helo_verb is None:
            self._respond(conn, sess, "AUTH", line, "503 5.5.1 Error: authentication not enabled")
            return
        if sess.auth is not None:
            self._respond(conn, sess, "AUTH", line, "503 5.5.1 Error: already authenticated")
            return
        mech = parts[1].upper() if len(parts) > 1 else ""

        def b64(s):
            try:
                return base64.b64decode(s, validate=True).decode("utf-8", "replace")
            except ValueError:
                return None

        def ask(prompt):
            self._send(conn, sess, "AUTH", f"334 {prompt}")
            resp = conn.readline(self.session_timeout).decode("ascii", "replace")
            self._log(sess, "C: (auth data)")
            if resp == "*":
                self._send(conn, sess, "AUTH", "501 5.7.0 Authentication aborted")
                return None
            return resp
        if mech == "PLAIN":
            resp = parts[2] if len(parts) > 2 else ask("")
            if resp is None:
                return
            dec = b64(resp) if resp != "=" else ""
            fields = (dec or "").split("\0")
            if dec is None or len(fields) != 3:
                self._send(conn, sess, "AUTH", "501 5.5.2 Error: bad PLAIN response")
                return
            user, pw = fields[1], fields[2]
        elif mech == "LOGIN":
            u = parts[2] if len(parts) > 2 else ask("VXNlcm5hbWU6")
            if u is None:
                return
            p = ask("UGFzc3dvcmQ6")
            if p is None:
                return
            user, pw = b64(u), b64(p)
            if user is None or pw is None:
                self._send(conn, sess, "AUTH", "501 5.5.2 Error: bad base64")
                return
        else:
            self._respond(conn, sess, "AUTH", line,
                          "504 5.5.4 Error: unsupported authentication mechanism")
            return
        ok = self.auth_users is None or self.auth_users.get(user) == pw
        r = self._respond(conn, sess, "AUTH", line,
                          "235 2.7.0 Authentication successful" if ok else
                          "535 5.7.8 Error: authentication failed")
        if r.startswith("235"):
            self._update(lambda: setattr(sess, "auth", (mech, user, pw)))


# ---- CLI ------------------------------------------------------------------------------


def _parse_listen(s):
    m = re.match(r"^\[([^\]]+)\]:(\d+)$", s) or re.match(r"^([^:]+):(\d+)$", s)
    if not m:
        raise argparse.ArgumentTypeError(f"--listen {s!r}: want ADDR:PORT or [V6]:PORT")
    return m.group(1), int(m.group(2))


def main(argv=None):
    ap = argparse.ArgumentParser(description="A scripted fake SMTP server (tern e2e tests).")
    ap.add_argument("--listen", action="append", type=_parse_listen, required=True,
                    help="ADDR:PORT or [V6ADDR]:PORT; repeat for more servers")
    ap.add_argument("--mode", default="accept", help=f"one or more of {', '.join(MODES)}")
    ap.add_argument("--caps", help="EHLO keywords, comma-separated (replaces the defaults)")
    ap.add_argument("--reply", action="append", default=[],
                    help='scripted reply "KEY=TEXT", e.g. "RCPT bob@x.test=550 5.1.1 no"')
    ap.add_argument("--hostname", default="mx.test")
    ap.add_argument("--auth", action="store_true", help="offer AUTH PLAIN LOGIN")
    ap.add_argument("--delay", type=float, default=2.0, help="greeting delay of mode slow")
    ap.add_argument("--drop-after", type=int, default=10, help="bytes of DATA (drop_mid_data)")
    ap.add_argument("--duration", type=float, default=0, help="stop after N seconds (0: never)")
    ap.add_argument("--show-data", action="store_true", help="print each message's content")
    a = ap.parse_args(argv)
    script = {}
    for r in a.reply:
        k, sep, v = r.partition("=")
        if not sep:
            ap.error(f"--reply {r!r}: want KEY=TEXT")
        script[k] = v.replace("\\n", "\n")
    caps = [c.strip() for c in a.caps.split(",")] if a.caps else None
    servers = []
    try:
        for addr, port in a.listen:
            s = FakeMX(addr, port, mode=a.mode, script=script, caps=caps, hostname=a.hostname,
                       auth=a.auth, delay=a.delay, drop_after=a.drop_after).start()
            servers.append(s)
            print(f"fakemx: {s.address} mode {a.mode}"
                  + (f" (certificate {s.certfile})" if s.certfile else ""), flush=True)
        seen = {}
        deadline = time.monotonic() + a.duration if a.duration else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
            for s in servers:
                for sess in s.sessions():
                    key = (s.address, sess.id)
                    if sess.ended and key not in seen:
                        seen[key] = True
                        print(f"--- {s.address} session {sess.id} from {sess.peer}: "
                              f"{sess.ended}", flush=True)
                        for line in sess.transcript:
                            print(f"    {line}")
                        for v in sess.violations:
                            print(f"    VIOLATION: {v}")
                for t in s.transactions():
                    key = (s.address, "t", t.id)
                    if t.status != "open" and key not in seen:
                        seen[key] = True
                        print(f"    {t}", flush=True)
                        if a.show_data and t.data is not None:
                            print(t.data.decode("utf-8", "replace"))
    except KeyboardInterrupt:
        pass
    finally:
        for s in servers:
            s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
