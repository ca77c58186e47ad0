#!/usr/bin/python3
"""TLS in the listener against a real ternd: STARTTLS on smtp and submission,
implicit TLS on smtps, with swaks, openssl s_client and Python's ssl module
as clients and self-signed certificates made here with `openssl req`.

Cases: a delivery after STARTTLS with ESMTPS in the Received header and
Postfix's "Anonymous TLS connection established" log line; the encrypt level
refusing MAIL before TLS (530 5.7.0); smtps on its own port; the
CVE-2011-0411 injection (STARTTLS and RSET in one write: no RSET answer
inside TLS); a client that never finishes its handshake while others
deliver, and its end at smtpd_timeout; a garbage handshake; a reload with a
new certificate (new sessions get it, a session open across the reload goes
on; a broken one is refused and the one in force stays); a root-only key (mode 600, root) read by the master while smtpd runs
as mail_owner; `ternd -n` failing with FILE:LINE on configurations that
cannot work.
"""
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import QUEUED_RE, RawSMTP, TestFailure, go_tls  # noqa: E402

TLS_UP_RE = (r"tern/smtpd\[\d+\]: Anonymous TLS connection established from "
             r"unknown\[127\.0\.0\.1\]: TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)")

KEYDIR = tempfile.mkdtemp(prefix="tern-e2e-tls-keys-", dir="/var/tmp")
os.chmod(KEYDIR, 0o755)


def make_cert(name, cn):
    """A self-signed certificate NAME.crt and a root-only key NAME.key in
    KEYDIR; returns (cert path, key path, SHA-256 of the DER certificate)."""
    crt = os.path.join(KEYDIR, f"{name}.crt")
    key = os.path.join(KEYDIR, f"{name}.key")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={cn}"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise TestFailure(f"openssl req: {r.stderr.strip()}")
    os.chown(key, 0, 0)
    os.chmod(key, 0o600)
    os.chmod(crt, 0o644)
    der = subprocess.run(["openssl", "x509", "-in", crt, "-outform", "DER"],
                         capture_output=True, timeout=30).stdout
    return crt, key, hashlib.sha256(der).hexdigest()


def fingerprint(c):
    return hashlib.sha256(c.sock.getpeercert(binary_form=True)).hexdigest()


def starttls(s, port):
    """A connection that said EHLO and STARTTLS, on TLS."""
    c = RawSMTP(port)
    r = c.cmd("EHLO client.test")
    s.check("STARTTLS" in r.text, f"STARTTLS offered: {r.text!r}")
    s.reply(c.cmd("STARTTLS"), 220, "2.0.0", "STARTTLS")
    if c.buf:
        raise TestFailure(f"bytes after the 220 in plain text: {c.buf!r}")
    return go_tls(c)


def smtps(port):
    return go_tls(RawSMTP(port, greeting=False))


def deliver(s, c, rcpt, what):
    """One message through an EHLO'd client; returns the queue id."""
    s.reply(c.cmd("MAIL FROM:<sender@example.org>"), 250, "2.1.0", f"{what}: MAIL")
    s.reply(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", f"{what}: RCPT")
    s.reply(c.cmd("DATA"), 354, what=f"{what}: DATA")
    c.send(f"Subject: {what}\r\n\r\nbody\r\n.\r\n")
    r = c.reply()
    s.reply(r, 250, "2.0.0", f"{what}: end of data")
    m = QUEUED_RE.search(r.text)
    if not m:
        raise TestFailure(f"{what}: no queue id in {r.text!r}")
    return m.group(1)


def received_with(t, qid):
    received, _ = ternlib.split_received(t.msg_bytes(qid))
    m = re.search(rb"\bwith (\S+) id ", received)
    return m.group(1).decode() if m else None


def swaks(args, timeout=60):
    r = subprocess.run(["swaks", "--timeout", "20"] + args, capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def s_client_fingerprint(port, starttls_smtp):
    """The SHA-256 of the certificate openssl s_client is shown."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts"]
    if starttls_smtp:
        cmd += ["-starttls", "smtp"]
    r = subprocess.run(cmd, input=b"QUIT\r\n", capture_output=True, timeout=30)
    m = re.search(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", r.stdout, re.S)
    if not m:
        raise TestFailure(f"s_client: no certificate: {(r.stdout + r.stderr)[-600:]!r}")
    der = subprocess.run(["openssl", "x509", "-outform", "DER"], input=m.group(0),
                         capture_output=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


# ---- the cases ----------------------------------------------------------------------


def test_starttls_delivery(s, t):
    mark = t.log_mark()
    rc, out = swaks(["--server", f"127.0.0.1:{t.port}", "--tls", "--from", "sender@example.org",
                     "--to", "user@tern.test", "--ehlo", "swaks.test"])
    s.eq(rc, 0, f"swaks --tls exit status ({out[-500:]})")
    m = QUEUED_RE.search(out)
    if not s.check(m, "swaks: queue id"):
        return
    s.eq(received_with(t, m.group(1)), "ESMTPS", "Received ... with")
    s.check(t.wait_log(TLS_UP_RE, mark), "TLS established log line")
    s.check(t.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=2 .*starttls=1 "
                       r"commands=7$", mark), "disconnect line counts STARTTLS")


def test_s_client_and_plain(s, t):
    # openssl s_client -starttls smtp sees our certificate; a plain-text
    # delivery still works on the smtp listener (level may) and says ESMTP.
    s.eq(s_client_fingerprint(t.port, True), t.fp_a, "s_client certificate")
    with t.raw() as c:
        r = c.cmd("EHLO plain.test")
        s.check("STARTTLS" in r.text, "STARTTLS offered on smtp")
        qid = deliver(s, c, "user@tern.test", "plain")
    s.eq(received_with(t, qid), "ESMTP", "Received ... with (plain)")


def test_encrypt_level(s, t):
    with RawSMTP(t.submission_port) as c:
        s.reply(c.cmd("EHLO client.test"), 250, what="EHLO")
        s.reply(c.cmd("MAIL FROM:<a@example.org>"), 530, "5.7.0", "MAIL before STARTTLS")
        s.check("Must issue a STARTTLS command first" in c.cmd("RCPT TO:<b@tern.test>").text,
                "RCPT before STARTTLS: Postfix's words")
        s.reply(c.cmd("NOOP"), 250, what="NOOP before STARTTLS")
        s.reply(c.cmd("RSET"), 250, what="RSET before STARTTLS")
        s.reply(c.cmd("QUIT"), 221, what="QUIT")
    c = starttls(s, t.submission_port)
    try:
        r = c.cmd("EHLO client.test")
        s.check("STARTTLS" not in r.text, "no STARTTLS offered inside TLS")
        deliver(s, c, "user@tern.test", "submission after STARTTLS")
        s.reply(c.cmd("STARTTLS"), 554, "5.5.1", "STARTTLS inside TLS")
        s.reply(c.cmd("QUIT"), 221, what="QUIT")
    finally:
        c.close()
    rc, _ = swaks(["--server", f"127.0.0.1:{t.submission_port}", "--from", "a@example.org",
                   "--to", "user@tern.test"])
    s.check(rc != 0, "swaks without TLS fails on the encrypt listener")


def test_smtps(s, t):
    mark = t.log_mark()
    rc, out = swaks(["--server", f"127.0.0.1:{t.smtps_port}", "--tlsc", "--from",
                     "sender@example.org", "--to", "user@tern.test"])
    s.eq(rc, 0, f"swaks --tlsc exit status ({out[-500:]})")
    m = QUEUED_RE.search(out)
    if s.check(m, "swaks --tlsc: queue id"):
        s.eq(received_with(t, m.group(1)), "ESMTPS", "Received ... with (smtps)")
    s.check(t.wait_log(TLS_UP_RE, mark), "TLS established log line (smtps)")
    c = smtps(t.smtps_port)
    try:
        s.reply(c.reply(), 220, what="greeting inside TLS")
        r = c.cmd("EHLO client.test")
        s.check("STARTTLS" not in r.text, "no STARTTLS on smtps")
        s.reply(c.cmd("STARTTLS"), 554, "5.5.1", "STARTTLS on smtps")
        s.eq(fingerprint(c), t.fp_a, "smtps certificate")
    finally:
        c.close()


def test_injection(s, t):
    # CVE-2011-0411: RSET pipelined behind STARTTLS in plain text must not
    # be answered inside TLS.
    c = RawSMTP(t.port)
    s.reply(c.cmd("EHLO client.test"), 250, what="EHLO")
    c.send(b"STARTTLS\r\nRSET\r\n")
    s.reply(c.reply(), 220, "2.0.0", "STARTTLS")
    s.eq(c.buf, b"", "nothing after the 220 in plain text")
    tls = go_tls(c)
    try:
        tls.sock.settimeout(1.5)
        try:
            got = tls.sock.recv(4096)
            s.check(False, f"the server said something unasked inside TLS: {got!r}")
        except (socket.timeout, TimeoutError):
            pass
        tls.sock.settimeout(10)
        s.reply(tls.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1", "MAIL before a new EHLO")
        r = tls.cmd("EHLO again.test")
        s.check(r.code == 250 and len(r.lines) > 1, f"EHLO's own reply comes first: {r.text!r}")
        s.reply(tls.cmd("QUIT"), 221, what="QUIT")
    finally:
        tls.close()


def test_stalled_handshake(s, t):
    # A client that says STARTTLS and then nothing, one that connects to
    # smtps and sends nothing: others deliver meanwhile, and smtpd_timeout
    # ends both with Postfix's log words.
    mark = t.log_mark()
    stalled = RawSMTP(t.port)
    s.reply(stalled.cmd("STARTTLS"), 220, "2.0.0", "STARTTLS of the stalled client")
    silent = socket.create_connection(("127.0.0.1", t.smtps_port), timeout=10)
    try:
        for i in range(3):
            c = starttls(s, t.port)
            try:
                s.reply(c.cmd("EHLO busy.test"), 250, what="EHLO")
                deliver(s, c, "user@tern.test", f"delivery {i} beside a stalled handshake")
                s.reply(c.cmd("QUIT"), 221, what="QUIT")
            finally:
                c.close()
        s.check(stalled.closed(timeout=25), "stalled STARTTLS client closed at smtpd_timeout")
        silent.settimeout(25)
        try:
            s.eq(silent.recv(100), b"", "silent smtps client: closed without a byte")
        except (socket.timeout, TimeoutError):
            s.check(False, "silent smtps client not closed at smtpd_timeout")
        s.check(t.wait_log(r"SSL_accept error from unknown\[127\.0\.0\.1\]: Connection timed out",
                           mark), "timeout log line")
        s.check(t.wait_log(r"lost connection after STARTTLS from unknown\[127\.0\.0\.1\]", mark),
                "lost connection after STARTTLS")
    finally:
        stalled.close()
        silent.close()


def test_garbage_handshake(s, t):
    mark = t.log_mark()
    c = RawSMTP(t.port)
    s.reply(c.cmd("STARTTLS"), 220, "2.0.0", "STARTTLS")
    c.send(b"GET / HTTP/1.0\r\nHost: x\r\n\r\nMAIL FROM:<a@b>\r\n")
    s.check(c.closed(timeout=10), "connection closed after a garbage handshake")
    c.close()
    s.check(t.wait_log(r"SSL_accept error from unknown\[127\.0\.0\.1\]: \S", mark),
            "SSL_accept error logged")
    # a ClientHello cut in the middle
    c = RawSMTP(t.port)
    s.reply(c.cmd("STARTTLS"), 220, "2.0.0", "STARTTLS")
    c.send(bytes.fromhex("160301020001") + b"\x00" * 10)
    c.sock.shutdown(socket.SHUT_WR)
    s.check(c.closed(timeout=10), "connection closed after half a ClientHello")
    c.close()
    rc, out = swaks(["--server", f"127.0.0.1:{t.port}", "--tls", "--from", "a@example.org",
                     "--to", "user@tern.test"])
    s.eq(rc, 0, f"a good client after the garbage ({out[-300:]})")


def test_reload_new_certificate(s, t):
    before = starttls(s, t.port)
    try:
        s.reply(before.cmd("EHLO before.test"), 250, what="EHLO before the reload")
        s.eq(fingerprint(before), t.fp_a, "certificate before the reload")
        mark = t.log_mark()
        # the same file names, new contents (a renewal), as root-only as before
        shutil.copy(t.cert_b, t.cert_a_path)
        shutil.copy(t.key_b, t.key_a_path)
        os.chmod(t.key_a_path, 0o600)
        os.kill(t.master_pid, signal.SIGHUP)
        fp = ":".join(t.fp_b[i:i + 2] for i in range(0, 64, 2)).upper()
        s.check(t.wait_log(rf"TLS certificate for the smtp listener: sha256 {fp}", mark, 10),
                "smtpd took the new certificate")
        s.check(t.wait_log(r"tern/smtpd\[\d+\]: reload: configuration", mark, 10), "smtpd reloaded")
        s.eq(s_client_fingerprint(t.port, True), t.fp_b, "STARTTLS certificate after the reload")
        s.eq(s_client_fingerprint(t.smtps_port, False), t.fp_b, "smtps certificate after the reload")
        # the session from before goes on, with the certificate it had
        deliver(s, before, "user@tern.test", "session open across the reload")
        s.reply(before.cmd("QUIT"), 221, what="QUIT across the reload")
    finally:
        before.close()


def test_reload_bad_certificate(s, t):
    # A certificate file broken on disk: the reload is refused as a whole,
    # and the certificate in force goes on serving.
    before = s_client_fingerprint(t.port, True)
    mark = t.log_mark()
    with open(t.cert_a_path, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    os.kill(t.master_pid, signal.SIGHUP)
    s.check(t.wait_log(r"tern/master\[\d+\]: (error: )?reload: configuration has errors",
                       mark, 10), "reload refused")
    s.check(t.wait_log(r"tern/master\[\d+\]: .*tern\.conf:\d+: smtpd_tls_cert_file "
                       + re.escape(t.cert_a_path), mark, 10), "FILE:LINE of the certificate")
    s.eq(s_client_fingerprint(t.port, True), before, "certificate in force after the refusal")
    shutil.copy(t.cert_b, t.cert_a_path)


def test_root_only_key(s, t):
    st = os.stat(t.key_a_path)
    s.check(st.st_uid == 0 and (st.st_mode & 0o077) == 0, f"key is root-only: {oct(st.st_mode)}")
    pid = t.smtpd_pid()
    if not s.check(pid, "smtpd child found"):
        return
    with open(f"/proc/{pid}/status") as f:
        ids = {line.split(":")[0]: line.split()[1] for line in f
               if line.startswith(("Uid:", "Gid:"))}
    s.check(ids["Uid"] != "0", f"smtpd runs unprivileged (uid {ids['Uid']})")
    # and it could not have opened the key itself
    r = subprocess.run(["setpriv", f"--reuid={ids['Uid']}", f"--regid={ids['Gid']}",
                        "--clear-groups", "cat", t.key_a_path], capture_output=True, timeout=10)
    s.check(r.returncode != 0, "mail_owner cannot read the key file")
    c = smtps(t.smtps_port)
    try:
        s.reply(c.reply(), 220, what="smtps greeting with a root-only key")
    finally:
        c.close()


def test_check_rejects(s, t):
    """ternd -n: FILE:LINE for configurations that cannot work."""
    rows = [
        ("encrypt without a certificate", ["smtpd_tls_security_level = encrypt"],
         "smtpd_tls_security_level = encrypt needs smtpd_tls_cert_file"),
        ("smtps without a certificate", [f"smtps_listen = 127.0.0.1:{t.smtps_port}"],
         "smtps_listen needs smtpd_tls_cert_file"),
        ("certificate file missing", ["smtpd_tls_security_level = may",
                                      f"smtpd_tls_cert_file = {KEYDIR}/none.crt"],
         "none.crt: No such file or directory"),
        ("key of another certificate", ["smtpd_tls_security_level = may",
                                        f"smtpd_tls_cert_file = {t.cert_b}",
                                        f"smtpd_tls_key_file = {t.key_c}"],
         "the private key does not match the certificate"),
    ]
    for name, lines, says in rows:
        conf = os.path.join(t.dir, "check.conf")
        base = [f"queue_directory = {t.spool}", "mail_owner = tern", "myhostname = tern.test",
                f"smtpd_listen = 127.0.0.1:{t.port}", "submission_listen ="]
        with open(conf, "w") as f:
            f.write("\n".join(base + lines) + "\n")
        r = subprocess.run([ternlib.TERND, "-n", "-c", conf], capture_output=True, text=True,
                           timeout=30)
        s.eq(r.returncode, 1, f"{name}: ternd -n exit status")
        line = len(base) + 1 if "without" in name else len(base) + 2
        s.check(re.search(rf"^{re.escape(conf)}:{line}: .*{re.escape(says)}", r.stderr, re.M),
                f"{name}: want {conf}:{line}: ...{says}; got {r.stderr!r}")


def main():
    suite = ternlib.Suite("smtpd_tls")
    cert_a, key_a, fp_a = make_cert("a", "a.tern.test")
    cert_b, key_b, fp_b = make_cert("b", "b.tern.test")
    _, key_c, _ = make_cert("c", "c.tern.test")
    # The daemon's own files: copies that the reload case overwrites.
    live_crt, live_key = os.path.join(KEYDIR, "live.crt"), os.path.join(KEYDIR, "live.key")
    shutil.copy(cert_a, live_crt)
    shutil.copy(key_a, live_key)
    os.chmod(live_key, 0o600)
    smtps_port = ternlib.free_ports(1)[0]
    params = {
        "smtpd_tls_cert_file": live_crt,
        "smtpd_tls_key_file": live_key,
        "smtpd_tls_security_level": "may",
        "submission_smtpd_tls_security_level": "encrypt",
        "smtps_listen": f"127.0.0.1:{smtps_port}",
        "smtpd_timeout": "8s",
    }

    def attach(fn):
        def case(s, t):
            t.smtps_port, t.fp_a, t.fp_b = smtps_port, fp_a, fp_b
            t.cert_a_path, t.key_a_path = live_crt, live_key
            t.cert_b, t.key_b, t.key_c = cert_b, key_b, key_c
            fn(s, t)
        return case

    try:
        suite.group("tls", params, [
            ("STARTTLS, then a delivery: ESMTPS and the log line", attach(test_starttls_delivery)),
            ("openssl s_client -starttls smtp, and plain text still works",
             attach(test_s_client_and_plain)),
            ("encrypt level on submission: 530 5.7.0 before STARTTLS", attach(test_encrypt_level)),
            ("smtps: implicit TLS on its own port", attach(test_smtps)),
            ("CVE-2011-0411: plain text behind STARTTLS is discarded", attach(test_injection)),
            ("a stalled handshake stalls nobody, and times out", attach(test_stalled_handshake)),
            ("garbage instead of a handshake", attach(test_garbage_handshake)),
            ("root-only key: read by the master, smtpd unprivileged", attach(test_root_only_key)),
            ("reload with a new certificate", attach(test_reload_new_certificate)),
            ("reload with a broken certificate is refused", attach(test_reload_bad_certificate)),
            ("ternd -n: FILE:LINE for unusable TLS settings", attach(test_check_rejects)),
        ])
    finally:
        shutil.rmtree(KEYDIR, ignore_errors=True)
    suite.finish()


if __name__ == "__main__":
    main()
