"""ternlib: the harness of tern's end-to-end tests written in Python.

A test file does:

    import ternlib
    suite = ternlib.Suite("smtp_session")
    suite.group("defaults", {}, [("EHLO keywords", test_ehlo), ...])
    suite.finish()

Suite.group() makes a private directory, writes a configuration (the
common parameters plus the group's own), starts `ternd -f -c CONF`, waits
for the 220 greeting, runs each case with the running Tern as argument,
then stops ternd with SIGTERM (a case of its own: it must exit 0 within a
bounded time, else it is killed and the case fails) and removes everything,
whatever happened. Suite.finish() prints "N passed, M failed" as the last
line and exits 1 when anything failed (or nothing ran).

Every wait is bounded; every socket has a timeout; a watchdog alarm ends
the whole file before CTest's 600 s. A missing prerequisite is a failure,
never a silent skip. Set TERN_E2E_KEEP=1 to keep the directories.

Run with /usr/bin/python3 (Debian's, for its modules), with TERN_BUILD
(default SOURCE/build) and TERN_SOURCE (default: two levels above here).
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("TERN_SOURCE") or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("TERN_BUILD") or os.path.join(SOURCE, "build")
TERND = os.path.join(BUILD, "bin", "ternd")
TERNCTL = os.path.join(BUILD, "bin", "ternctl")

QUEUE_ID_RE = re.compile(r"^[0-9A-F]{14}$")
QUEUED_RE = re.compile(r"queued as ([0-9A-F]{14})\b")

WATCHDOG_SECONDS = int(os.environ.get("TERN_E2E_WATCHDOG", "560"))


class TestFailure(Exception):
    """A check that cannot go on (the case fails)."""


class Watchdog(BaseException):
    """The whole file ran out of time."""


# ---- small helpers ------------------------------------------------------------


def log(msg):
    print(msg, flush=True)


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (bound, then released)."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def ensure_tern_user():
    """mail_owner = tern needs the user when we run as root."""
    if os.geteuid() != 0:
        return
    if subprocess.run(["id", "tern"], capture_output=True).returncode == 0:
        return
    r = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", "tern"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise TestFailure(f"cannot create user tern: {r.stderr.strip()}")


def check_prerequisites():
    for p in (TERND, TERNCTL):
        if not os.access(p, os.X_OK):
            raise TestFailure(f"{p} is missing or not executable (build tern first; "
                              f"TERN_BUILD={BUILD})")


def wait_until(fn, timeout, interval=0.05):
    """Call fn until it returns a true value (returned) or timeout passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def pids_with_arg(text):
    """Pids of processes with `text` in their command line (our unique paths)."""
    out = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if text.encode() in cmd:
            out.append(int(d))
    return out


def children(pid):
    """Direct children of pid."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def dot_stuff(content):
    """Bytes as a client puts them after DATA (content must end in CRLF)."""
    out = []
    for line in content.split(b"\r\n"):
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out)


def split_received(data):
    """Split a spool file into (our Received header, the client's content).

    The file must start with "Received: from "; the header's continuation
    lines start with a TAB. Raises TestFailure otherwise."""
    if not data.startswith(b"Received: from "):
        raise TestFailure(f"spool file does not start with 'Received: from ': {data[:80]!r}")
    pos = data.find(b"\r\n")
    if pos < 0:
        raise TestFailure("spool file: Received header has no CRLF")
    pos += 2
    while data.startswith(b"\t", pos):
        nxt = data.find(b"\r\n", pos)
        if nxt < 0:
            raise TestFailure("spool file: Received continuation has no CRLF")
        pos = nxt + 2
    return data[:pos], data[pos:]


# ---- a raw SMTP client ------------------------------------------------------------


class Reply:
    def __init__(self, lines):
        self.lines = lines  # text lines without CRLF
        self.code = int(lines[-1][:3])
        self.text = "\n".join(lines)

    def enh(self):
        """The enhanced status code of the last line ("5.5.2"), or ""."""
        m = re.match(r"^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})\b", self.lines[-1])
        return m.group(1) if m else ""

    def __repr__(self):
        return f"Reply({self.text!r})"


class RawSMTP:
    """An SMTP connection where we write exact bytes and read whole replies."""

    def __init__(self, port, timeout=10.0, greeting=True, source=None, quit_on_close=False):
        """source: a loopback address to connect from (tests of client
        addresses and names); quit_on_close: close() says QUIT first."""
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout,
            source_address=(source, 0) if source is not None else None)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.quit_on_close = quit_on_close
        self.greeting = self.reply() if greeting else None

    def pending(self):
        """Has the server sent anything not read yet (without waiting)?"""
        if self.buf:
            return True
        r, _, _ = select.select([self.sock], [], [], 0)
        return bool(r)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed (pending {self.buf!r})")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        lines = []
        while True:
            line = self._line()
            if not re.match(r"^\d{3}[ -]", line):
                raise TestFailure(f"malformed reply line {line!r}")
            lines.append(line)
            if line[3] == " ":
                return Reply(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout (data
        still pending is discarded); False if it stays open."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def all_until_close(self, timeout=10.0):
        """Every reply until the server closes the connection."""
        out = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                out.append(self.reply())
        except (EOFError, ConnectionResetError):
            return out
        raise TestFailure(f"connection not closed after {timeout} s; replies {out}")

    def close(self):
        if self.quit_on_close:
            try:
                self.sock.sendall(b"QUIT\r\n")
            except OSError:
                pass
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# ---- a running ternd -----------------------------------------------------------------

_live = []  # every Tern not yet cleaned up, for the last-resort cleanup


def _cleanup_all():
    for t in list(_live):
        t.cleanup()


class Tern:
    """One private tern: directory, config, daemon."""

    def __init__(self, name, params=None):
        check_prerequisites()
        ensure_tern_user()
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"tern-e2e-{name}-", dir="/var/tmp")
        os.chmod(self.dir, 0o755)  # children run as tern and must traverse it
        _live.append(self)
        self.port, self.submission_port = free_ports(2)
        self.conf = os.path.join(self.dir, "tern.conf")
        self.spool = os.path.join(self.dir, "spool")
        self.logfile = os.path.join(self.dir, "maillog")
        self.outfile = os.path.join(self.dir, "ternd.out")
        self.proc = None
        self.params = {
            "queue_directory": self.spool,
            "log_file": self.logfile,
            "smtpd_listen": f"127.0.0.1:{self.port}",
            "submission_listen": f"127.0.0.1:{self.submission_port}",
            "mail_owner": "tern",
            "myhostname": "tern.test",
            "mydestination": "localhost, tern.test",
            "mynetworks": "127.0.0.0/8",
            # Tests make up local users; those that check the RCPT-time
            # "User unknown" rejection set their own tables.
            "local_recipient_maps": "",
            # ... and look for their mail in the queue: it waits there
            # instead of meeting the local agent (which would bounce it).
            # Tests of local delivery set local_transport = local.
            "local_transport": "retry:4.3.0 mailbox not ready",
            # The client's PTR lookup would ask the machine's DNS about
            # 127.0.0.1 (a test stays on loopback), and its answer would
            # decide whether clients are "unknown[127.0.0.1]" or
            # "localhost[127.0.0.1]". Tests of the names turn it on with
            # a DNS of their own (networld.DnsWorld).
            "smtpd_peername_lookup": "no",
        }
        self.params.update(params or {})
        with open(self.conf, "w") as f:
            f.write(f"# tern e2e test {name}\n")
            for k, v in self.params.items():
                f.write(f"{k} = {v}\n")

    # -- the daemon

    def check_config(self):
        r = subprocess.run([TERND, "-n", "-c", self.conf], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise TestFailure(f"ternd -n rejects the test config (exit {r.returncode}): "
                              f"{r.stdout}{r.stderr}")

    def start(self, timeout=10.0):
        if self.proc is not None:
            raise TestFailure("start: already running")
        out = open(self.outfile, "ab")
        self.proc = subprocess.Popen([TERND, "-f", "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=out, start_new_session=True)
        out.close()
        if not self.wait_greeting(timeout):
            rc = self.proc.poll()
            raise TestFailure(f"ternd gave no 220 greeting on 127.0.0.1:{self.port} within "
                              f"{timeout} s (exit status {rc})\n{self.tails()}")
        return self.proc.pid

    def wait_greeting(self, timeout=10.0):
        def probe():
            if self.proc is not None and self.proc.poll() is not None:
                return "dead"
            try:
                with RawSMTP(self.port, timeout=2) as c:
                    ok = c.greeting.code == 220 and c.greeting.lines[-1].startswith("220 ")
                    c.send(b"QUIT\r\n")
                    return "ok" if ok else None
            except (OSError, EOFError, TestFailure):
                return None
        return wait_until(probe, timeout, 0.1) == "ok"

    @property
    def master_pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30.0):
        """SIGTERM, wait (bounded); returns the exit status. Kills and raises
        TestFailure when ternd does not stop in time."""
        if self.proc is None:
            return None
        p = self.proc
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_everything()
            self.proc = None
            raise TestFailure(f"ternd did not exit within {timeout} s of SIGTERM; killed")
        self.proc = None
        strays = self.stray_pids()
        if strays:
            self.kill_everything()
            raise TestFailure(f"processes left after ternd exited: {strays}")
        self.check_sanitizers()
        return rc

    SANITIZER_RE = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|panic: ")

    def check_sanitizers(self):
        """A sanitizer report or a panic in any ternd process fails the test."""
        for path in (self.outfile, self.logfile):
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                continue
            m = self.SANITIZER_RE.search(text)
            if m:
                start = max(0, m.start() - 200)
                raise TestFailure(f"{os.path.basename(path)} has a report: "
                                  f"{text[start:m.start() + 2000]}")

    def restart(self):
        rc = self.stop()
        if rc != 0:
            raise TestFailure(f"ternd exited {rc} on SIGTERM")
        return self.start()

    def stray_pids(self):
        """Processes still running with our config path (children included)."""
        return pids_with_arg(self.conf)

    def kill_everything(self):
        """SIGKILL ternd and every process of this test's config, by pid."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        for _ in range(3):
            pids = self.stray_pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.2)
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def smtpd_pid(self, timeout=5.0):
        """The pid of the master's smtpd child (bounded wait), or None."""
        def find():
            if not self.running():
                return None
            for c in children(self.master_pid):
                if b"--role=smtpd" in cmdline(c):
                    return c
            return None
        return wait_until(find, timeout)

    def cleanup(self):
        try:
            if self.proc is not None:
                try:
                    self.stop(10)
                except TestFailure:
                    pass
            self.kill_everything()
        finally:
            if self in _live:
                _live.remove(self)
            if os.environ.get("TERN_E2E_KEEP"):
                log(f"kept {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    # -- log

    def log_text(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        try:
            return os.path.getsize(self.logfile)
        except FileNotFoundError:
            return 0

    def log_since(self, mark):
        try:
            with open(self.logfile, "rb") as f:
                f.seek(mark)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, mark=0, timeout=5.0):
        """The first match of regex pattern in the log after mark, waiting
        (bounded) for it to appear; None when it does not."""
        rx = re.compile(pattern, re.M)
        return wait_until(lambda: rx.search(self.log_since(mark)), timeout)

    def tails(self, n=25):
        out = []
        for label, path in (("maillog", self.logfile), ("ternd stdout/stderr", self.outfile)):
            try:
                with open(path, "rb") as f:
                    lines = f.read().decode("utf-8", "replace").splitlines()[-n:]
            except FileNotFoundError:
                lines = ["(no file)"]
            out.append(f"--- last lines of {label}:\n" + "\n".join(lines))
        return "\n".join(out)

    # -- spool

    def queue(self, timeout=60):
        """Envelopes from `ternctl -c CONF queue --json`: a list of dicts."""
        r = subprocess.run([TERNCTL, "-c", self.conf, "queue", "--json"], capture_output=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise TestFailure(f"ternctl queue --json exited {r.returncode}: "
                              f"{r.stderr.decode(errors='replace').strip()}")
        try:
            q = json.loads(r.stdout)
        except ValueError as e:
            raise TestFailure(f"ternctl queue --json: not JSON ({e}): {r.stdout[:200]!r}")
        if not isinstance(q, list):
            raise TestFailure(f"ternctl queue --json: not a JSON array: {r.stdout[:200]!r}")
        return q

    def queue_by_id(self):
        return {e.get("id"): e for e in self.queue()}

    def msg_dir(self):
        return os.path.join(self.spool, "msg")

    def msg_files(self):
        try:
            return set(os.listdir(self.msg_dir()))
        except FileNotFoundError:
            return set()

    def msg_bytes(self, qid):
        with open(os.path.join(self.msg_dir(), qid), "rb") as f:
            return f.read()

    def msg_content(self, qid):
        """The client's content of a queued message (after our Received)."""
        return split_received(self.msg_bytes(qid))[1]

    # -- clients

    def raw(self, timeout=10.0):
        return RawSMTP(self.port, timeout=timeout)


# ---- the suite ------------------------------------------------------------------------


class Suite:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.failed_names = []
        self.errors = None
        self.started = time.monotonic()
        signal.signal(signal.SIGALRM, self._watchdog)
        signal.alarm(WATCHDOG_SECONDS)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
        try:
            check_prerequisites()
        except TestFailure as e:
            log(f"FATAL: {e}")
            self._count("prerequisites", [str(e)])
            self.finish()

    def _watchdog(self, *a):
        raise Watchdog(f"watchdog: {WATCHDOG_SECONDS} s passed")

    # -- checks inside a case

    def check(self, cond, what):
        if not cond:
            self.errors.append(what)
            log(f"    check failed: {what}")
        return bool(cond)

    def eq(self, got, want, what):
        return self.check(got == want, f"{what}: got {got!r}, want {want!r}")

    def reply(self, r, code, enh=None, what=""):
        """Check a Reply has code (and enhanced code when given)."""
        ok = r.code == code and (enh is None or r.enh() == enh)
        want = f"{code} {enh}" if enh else f"{code}"
        return self.check(ok, f"{what}: reply {r.text!r}, want {want}")

    # -- cases

    def _count(self, name, errors):
        if errors:
            self.failed += 1
            self.failed_names.append(name)
            log(f"FAIL {name}")
        else:
            self.passed += 1
            log(f"ok   {name}")

    def case(self, name, fn, *args):
        self.errors = []
        t0 = time.monotonic()
        log(f"---- {name}")
        try:
            fn(self, *args)
        except Watchdog:
            self.errors.append("watchdog")
            self._count(name, self.errors)
            raise
        except TestFailure as e:
            self.errors.append(str(e))
            log(f"    {e}")
        except Exception as e:
            self.errors.append(repr(e))
            log("    " + traceback.format_exc().replace("\n", "\n    "))
        log(f"     ({time.monotonic() - t0:.1f} s)")
        self._count(name, self.errors)
        return not self.errors

    def group(self, gname, params, cases, after_stop=None):
        """Start a Tern with params, run each (name, fn) case on it, stop it.
        after_stop(suite, tern) runs after the stop (the spool still there)."""
        log(f"==== {self.name}: {gname}")
        t = None
        try:
            try:
                t = Tern(f"{self.name}-{gname}", params)
                t.check_config()
                t.start()
            except Exception as e:  # noqa: BLE001 (any set-up trouble fails the group)
                log(f"FATAL: cannot start ternd for group {gname}: {e}")
                if t is not None:
                    log(t.tails())
                for name, _ in cases:
                    self._count(f"{gname}: {name}", [f"ternd did not start: {e}"])
                return
            alive = True
            for name, fn in cases:
                ok = self.case(f"{gname}: {name}", fn, t)
                if not ok:
                    log(t.tails(15))
                if not t.running():
                    rc = t.proc.returncode if t.proc is not None else None
                    log(f"    ternd master is gone (exit status {rc})")
                    self._count(f"{gname}: master still running after '{name}'",
                                [f"master gone, exit status {rc}"])
                    t.kill_everything()
                    t.proc = None
                    alive = False
                    break

            def stop_case(s, tern):
                rc = tern.stop()
                s.eq(rc, 0, "exit status of ternd after SIGTERM")
            if alive:
                self.case(f"{gname}: ternd stops on SIGTERM, exit 0, no process left",
                          stop_case, t)
            if after_stop is not None:
                self.case(f"{gname}: after stop", after_stop, t)
        except Exception as e:  # noqa: BLE001 (a harness error: count it, go on)
            log("FATAL: " + traceback.format_exc())
            self._count(f"{gname}: harness error", [repr(e)])
        except Watchdog as e:
            log(f"FATAL: {e}")
            self._count(f"{gname}: watchdog", [str(e)])
            if t is not None:
                log(t.tails())
            if t is not None:
                t.cleanup()
            self.finish()
        finally:
            if t is not None:
                t.cleanup()

    def finish(self):
        signal.alarm(0)
        _cleanup_all()
        if self.failed_names:
            log("failed: " + "; ".join(self.failed_names))
        log(f"{self.name}: {time.monotonic() - self.started:.0f} s")
        log(f"{self.passed} passed, {self.failed} failed")
        sys.stdout.flush()
        os._exit(1 if self.failed or not self.passed else 0)


# ---- shared SMTP helpers --------------------------------------------------------------


def send_raw_message(t, sender, rcpts, stuffed_data, ehlo="client.test", mail_params=""):
    """One transaction on a new connection, the DATA bytes given exactly
    (already dot-stuffed, without the final ".\\r\\n"). Returns
    (final Reply, queue id or None)."""
    with t.raw() as c:
        if c.greeting.code != 220:
            raise TestFailure(f"greeting {c.greeting}")
        r = c.cmd(f"EHLO {ehlo}")
        if r.code != 250:
            raise TestFailure(f"EHLO: {r}")
        r = c.cmd(f"MAIL FROM:<{sender}>{mail_params}")
        if r.code != 250:
            raise TestFailure(f"MAIL: {r}")
        for rc in rcpts:
            r = c.cmd(f"RCPT TO:<{rc}>")
            if r.code != 250:
                raise TestFailure(f"RCPT {rc}: {r}")
        r = c.cmd("DATA")
        if r.code != 354:
            raise TestFailure(f"DATA: {r}")
        c.send(stuffed_data + b".\r\n")
        final = c.reply()
        c.cmd("QUIT")
    m = QUEUED_RE.search(final.text)
    return final, (m.group(1) if m else None)


import atexit  # noqa: E402  (last: cleanup even when a test file dies early)
atexit.register(_cleanup_all)


def send_message(t, sender, rcpts, body=b"hello\r\n", rcpt_params="", mail_params="",
                 subject="test"):
    """One message with From/To/Subject and body (unstuffed: dots are
    stuffed here) over a new connection; returns its queue id."""
    data = (f"From: <{sender}>\r\nTo: <{rcpts[0]}>\r\nSubject: {subject}\r\n\r\n".encode() +
            body)
    stuffed = re.sub(rb"(?m)^\.", b"..", data)
    with t.raw() as c:
        for line in ("EHLO client.test", f"MAIL FROM:<{sender}>{mail_params}"):
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
    m = QUEUED_RE.search(final.text)
    if final.code != 250 or not m:
        raise TestFailure(f"end of DATA: {final}")
    return m.group(1)


def ternctl_run(t, *args):
    """ternctl -c t.conf ARGS: the CompletedProcess (text)."""
    return subprocess.run([TERNCTL, "-c", t.conf, *args], capture_output=True, text=True,
                          timeout=60)


def tls_client_ctx():
    """A TLS client context that takes any certificate (tests' self-signed ones)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def go_tls(c):
    """Put a RawSMTP c on TLS (its reads and writes then go through the
    ssl.SSLSocket); returns c."""
    c.sock = tls_client_ctx().wrap_socket(c.sock)
    c.sock.settimeout(10)
    return c


def make_sasldb(users, mechs="PLAIN LOGIN"):
    """A Cyrus sasl config directory (for cyrus_sasl_config_path) holding
    smtpd.conf and a sasldb2 where each of users has the password "secret"
    in the realm tern.test; readable by the unprivileged roles. The caller
    removes it."""
    d = tempfile.mkdtemp(prefix="tern-e2e-sasl-", dir="/var/tmp")
    os.chmod(d, 0o755)
    db = os.path.join(d, "sasldb2")
    with open(os.path.join(d, "smtpd.conf"), "w") as f:
        f.write(f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {db}\n"
                f"mech_list: {mechs}\n")
    for u in users:
        r = subprocess.run(["saslpasswd2", "-c", "-p", "-f", db, "-u", "tern.test", u],
                           input="secret", capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise TestFailure(f"saslpasswd2 {u}: {r.stderr.strip()}")
    os.chmod(db, 0o644)
    os.chmod(os.path.join(d, "smtpd.conf"), 0o644)
    return d


def useradd(name):
    """A system user for deliveries as that user (no home, no shell)."""
    r = subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell",
                        "/usr/sbin/nologin", name], capture_output=True, text=True)
    if r.returncode != 0:
        raise TestFailure(f"useradd {name}: {r.stderr.strip()}")


def userdel(name):
    subprocess.run(["userdel", name], capture_output=True)


def maildir_new(spool, user):
    """The files of user's Maildir new/ under spool (mail_spool_directory
    without its final '/'), sorted; [] when there is none yet."""
    d = os.path.join(spool, user, "new")
    try:
        return sorted(os.path.join(d, f) for f in os.listdir(d))
    except FileNotFoundError:
        return []


def shared_files(prefix, files):
    """A directory under /var/tmp the unprivileged roles can read, holding
    files {name: text}; returns (dir, {name: path}). The caller removes it."""
    d = tempfile.mkdtemp(prefix=f"tern-e2e-{prefix}-", dir="/var/tmp")
    os.chmod(d, 0o755)
    paths = {}
    for name, text in files.items():
        p = os.path.join(d, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o644)
        paths[name] = p
    return d, paths
