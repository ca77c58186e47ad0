#!/usr/bin/python3
"""Crash and drain: every message that got a 250 survives.

1. Ten senders send distinct numbered messages (each remembers the queue id
   of every 250) while the smtpd child is SIGKILLed three times; the master
   restarts it and the senders reconnect. Then ternd is stopped and started
   again (start-up recovery removes orphan files): every acknowledged
   message is in the spool, byte for byte, under its own id; no file in msg/
   lacks an envelope and no envelope lacks its file; every envelope is a
   message some sender tried (a 250 lost in the crash may leave a copy).
2. The same senders, and SIGTERM to the master in the middle: it exits 0
   (drain) and again every acknowledged message is there.
"""
import os
import random
import signal
import smtplib
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import QUEUED_RE, TestFailure  # noqa: E402

SENDERS = 10


def content_of(worker, n):
    """The deterministic content of message n of worker (ends in CRLF)."""
    rng = random.Random(worker * 1000003 + n)
    lines = [f"From: <w{worker}@tern.test>".encode(),
             f"To: <r{worker}@tern.test>".encode(),
             f"Subject: crash test worker {worker} message {n}".encode(),
             f"Message-ID: <crash.{worker}.{n}@client.test>".encode(),
             b""]
    for i in range(rng.randrange(5, 400)):
        k = rng.randrange(10)
        if k == 0:
            lines.append(b"." + bytes(rng.randrange(33, 127) for _ in range(rng.randrange(0, 60))))
        elif k == 1:
            lines.append(bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randrange(1, 60))))
        else:
            lines.append(bytes(rng.randrange(32, 127) for _ in range(rng.randrange(0, 78))))
    return b"\r\n".join(lines) + b"\r\n"


class Senders:
    """SENDERS threads sending numbered messages until stopped."""

    def __init__(self, port, deadline_s=90):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}        # (worker, n) -> queue id
        self.tried = set()     # (worker, n) for which the end of data was sent
        self.errors = 0        # connection-level errors seen
        self.rejects = []      # 4xx/5xx replies (other than 421)
        self.deadline = time.monotonic() + deadline_s
        self.refused_is_end = False  # after SIGTERM: a refused connect ends a sender
        self.threads = [threading.Thread(target=self.run, args=(w,), daemon=True)
                        for w in range(SENDERS)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self, timeout=60):
        self.stop.set()
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def count(self):
        with self.lock:
            return len(self.acked)

    def run(self, w):
        n = 0
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            try:
                with smtplib.SMTP("127.0.0.1", self.port, local_hostname=f"w{w}.client.test",
                                  timeout=15) as c:
                    c.ehlo()
                    # A few messages per connection, then a new one.
                    for _ in range(5):
                        if self.stop.is_set():
                            break
                        data = content_of(w, n)
                        code, resp = c.mail(f"w{w}@tern.test", ["BODY=8BITMIME"])
                        if code != 250:
                            raise smtplib.SMTPResponseException(code, resp)
                        code, resp = c.rcpt(f"r{w}@tern.test")
                        if code != 250:
                            raise smtplib.SMTPResponseException(code, resp)
                        with self.lock:
                            self.tried.add((w, n))
                        code, resp = c.data(data)
                        if code != 250:
                            raise smtplib.SMTPResponseException(code, resp)
                        m = QUEUED_RE.search(resp.decode(errors="replace"))
                        with self.lock:
                            self.acked[(w, n)] = m.group(1) if m else None
                        n += 1
            except ConnectionRefusedError:
                with self.lock:
                    self.errors += 1
                if self.refused_is_end:
                    return
                time.sleep(0.1)
            except smtplib.SMTPResponseException as e:
                with self.lock:
                    if e.smtp_code != 421:
                        self.rejects.append((w, n, e.smtp_code, e.smtp_error))
                    self.errors += 1
                n += 1  # never reuse a number whose fate is unknown
                time.sleep(0.05)
            except (smtplib.SMTPException, OSError, EOFError):
                with self.lock:
                    self.errors += 1
                n += 1
                time.sleep(0.05)


def check_spool(s, t, snd, what):
    """Every acked message present and exact; spool consistent."""
    q = t.queue_by_id()
    files = t.msg_files()
    s.eq(sorted(set(q) - files), [], f"{what}: envelopes without a message file")
    s.eq(sorted(files - set(q)), [], f"{what}: message files without an envelope")
    acked = dict(snd.acked)
    s.check(all(acked.values()), f"{what}: a 250 without 'queued as ID'")
    ids = [i for i in acked.values() if i]
    s.eq(len(set(ids)), len(ids), f"{what}: distinct queue ids for distinct messages")
    missing, wrong = [], []
    for (w, n), qid in sorted(acked.items()):
        if qid not in q:
            missing.append((w, n, qid))
            continue
        e = q[qid]
        if e.get("sender") != f"w{w}@tern.test" or e.get("recipients") != [f"r{w}@tern.test"]:
            wrong.append((qid, "envelope", e))
            continue
        try:
            body = t.msg_content(qid)
        except (OSError, TestFailure) as ex:
            wrong.append((qid, "file", str(ex)))
            continue
        if body != content_of(w, n):
            wrong.append((qid, "content", f"{len(body)} bytes stored, "
                                          f"{len(content_of(w, n))} sent"))
    s.eq(missing, [], f"{what}: acknowledged messages missing from the spool "
                      f"({len(acked)} acknowledged)")
    s.eq(wrong[:5], [], f"{what}: acknowledged messages damaged ({len(wrong)} in all)")
    # Every envelope is something a sender sent (a lost 250 may leave one).
    acked_ids = set(ids)
    extra = [i for i in q if i not in acked_ids]
    strangers = []
    for qid in extra:
        e = q[qid]
        try:
            body = t.msg_content(qid)
        except (OSError, TestFailure):
            strangers.append(qid)
            continue
        subj = [ln for ln in body.split(b"\r\n") if ln.startswith(b"Subject: crash test worker ")]
        if not subj:
            strangers.append(qid)
            continue
        parts = subj[0].split()
        w, n = int(parts[4]), int(parts[6])
        if (w, n) not in snd.tried or body != content_of(w, n) or \
                e.get("sender") != f"w{w}@tern.test":
            strangers.append(qid)
    s.eq(strangers, [], f"{what}: envelopes that are no sender's message")
    ternlib.log(f"    {what}: {len(acked)} acknowledged, {len(extra)} unacknowledged copies, "
                f"{snd.errors} connection errors")


def test_crash(s, t):
    snd = Senders(t.port)
    snd.start()
    kills = []
    try:
        if not ternlib.wait_until(lambda: snd.count() >= 30, 30):
            raise TestFailure(f"senders got only {snd.count()} messages through in 30 s")
        for k in range(3):
            pid = t.smtpd_pid()
            if not s.check(pid, f"kill #{k + 1}: an smtpd child to kill"):
                break
            mark = t.log_mark()
            os.kill(pid, signal.SIGKILL)
            kills.append(pid)
            # The master notices, logs a warning and starts a new smtpd.
            def new_child():
                p = t.smtpd_pid(timeout=0.1)
                return p if p and p != pid else None
            newpid = ternlib.wait_until(new_child, 15)
            s.check(newpid, f"kill #{k + 1}: a new smtpd child within 15 s")
            s.check(t.wait_log(r"tern/master\[\d+\]: warning: .*", mark, 5),
                    f"kill #{k + 1}: the master logs a warning")
            s.check(t.wait_greeting(10), f"kill #{k + 1}: greeting again")
            before = snd.count()
            time.sleep(0.5)
            s.check(ternlib.wait_until(lambda: snd.count() >= before + 100, 20),
                    f"kill #{k + 1}: senders go on ({snd.count() - before} more in 20 s)")
    finally:
        if not snd.finish(60):
            s.check(False, "senders did not finish within 60 s")
    s.check(t.running(), "the master survived the smtpd kills")
    s.check(snd.errors >= 1, f"the kills interrupted sessions ({snd.errors} errors)")
    s.eq(snd.rejects[:5], [], "4xx/5xx replies other than 421")
    ternlib.log(f"    killed smtpd {kills}; {snd.count()} messages acknowledged")
    rc = t.stop()
    s.eq(rc, 0, "ternd exit status on SIGTERM after the crashes")
    mark = t.log_mark()
    t.start()
    m = t.wait_log(r"spool recovery: \d+ messages.*", mark, 5)
    ternlib.log(f"    {m.group(0) if m else 'no spool recovery line in the log'}")
    check_spool(s, t, snd, "after crash and restart")
    s.check(t.wait_log(r"tern/master\[\d+\]: daemon started", 0, 1), "daemon started again")


def test_drain(s, t):
    snd = Senders(t.port)
    snd.start()
    try:
        if not ternlib.wait_until(lambda: snd.count() >= 50, 30):
            raise TestFailure(f"senders got only {snd.count()} messages through in 30 s")
        snd.refused_is_end = True
        master = t.master_pid
        t0 = time.monotonic()
        t.proc.send_signal(signal.SIGTERM)
        try:
            rc = t.proc.wait(40)
        except Exception:
            rc = None
        took = time.monotonic() - t0
        s.eq(rc, 0, f"ternd exit status after SIGTERM under load ({took:.1f} s)")
        if rc is None:
            t.kill_everything()
        t.proc = None
        s.eq(t.stray_pids(), [], f"processes left after master {master} exited")
        # New connections are refused once it is gone.
        try:
            socket.create_connection(("127.0.0.1", t.port), timeout=2).close()
            s.check(False, "the smtpd port still accepts after the master exited")
        except OSError:
            pass
    finally:
        if not snd.finish(60):
            s.check(False, "senders did not finish within 60 s")
    s.eq(snd.rejects[:5], [], "4xx/5xx replies other than 421")
    check_spool(s, t, snd, "after drain (no daemon)")
    t.start()
    check_spool(s, t, snd, "after drain and restart")


def main():
    suite = ternlib.Suite("crash")
    suite.group("smtpd-kill", {"smtpd_drain_timeout": "20s"},
                [("SIGKILL of the smtpd child three times under load", test_crash)])
    suite.group("drain", {"smtpd_drain_timeout": "20s"},
                [("SIGTERM under load", test_drain)])
    suite.finish()


if __name__ == "__main__":
    main()
