"""End-to-end tests of SMTP AUTH in the listener (RFC 4954) against the
real ternd.

Cyrus: a sasldb made with saslpasswd2 in the test's own directory and a
sasl config directory with smtpd.conf (pwcheck_method: auxprop,
auxprop_plugin: sasldb, sasldb_path: ...), found through
cyrus_sasl_config_path. AUTH is enabled on the submission listener only:
swaks --auth PLAIN and LOGIN succeed there (235, sasl_method= and
sasl_username= on the client= line, "with ESMTPA" in Received), a wrong password gets 535 5.7.8 and counts
as an error (auth=0/1 on the disconnect line, 421 at the hard limit), a
second AUTH gets 503, and the smtp listener does not offer AUTH at all.

Dovecot: a private Dovecot (dovecot.py with auth=True) serving its auth
socket, smtpd_sasl_type = dovecot: PLAIN and LOGIN succeed, a wrong
password is 535, and after Dovecot stops AUTH answers 454 4.7.0 (the
session is not hurt), and after it starts again AUTH works again.

The last Cyrus group runs with TLS (a self-signed certificate): AUTH is
offered only after STARTTLS, swaks --tls --auth works, the Received header
says ESMTPSA, and STARTTLS after a plain-text AUTH forgets the identity.
The other groups run without TLS (smtpd_tls_auth_only = no); the tests of the
TLS listener cover AUTH over TLS.
"""
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovecot  # noqa: E402
import ternlib  # noqa: E402

suite = ternlib.Suite("smtpd_auth")


def b64(text):
    return base64.b64encode(text.encode()).decode()


def make_sasldb():
    """alice@tern.test (secret), PLAIN and LOGIN."""
    return ternlib.make_sasldb(["alice"])


def swaks(port, *args):
    return subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port),
                           "--from", "a@tern.test", "--to", "b@tern.test", "--helo", "c.test",
                           "--timeout", "20", *args],
                          capture_output=True, text=True, timeout=60)


def check_auth_message(s, t, r, mech, user, mark):
    s.check(r.returncode == 0, f"swaks {mech} exit {r.returncode}: {r.stdout[-800:]}")
    s.check(re.search(r"<[-~] +235 2\.7\.0 Authentication successful", r.stdout),
            f"{mech}: 235 2.7.0")
    m = ternlib.QUEUED_RE.search(r.stdout)
    if not s.check(m, f"{mech}: queued"):
        return
    qid = m.group(1)
    s.check(t.wait_log(rf"smtpd\[\d+\]: {qid}: client=unknown\[127\.0\.0\.1\], "
                       rf"sasl_method={mech}, sasl_username={re.escape(user)}$", mark),
            f"{mech}: client= line with sasl_method and sasl_username")
    received, _ = ternlib.split_received(t.msg_bytes(qid))
    s.check(b"with ESMTPA id " + qid.encode() in received, f"{mech}: Received says ESMTPA")


def test_plain(s, t):
    mark = t.log_mark()
    r = swaks(t.submission_port, "--auth", "PLAIN", "--auth-user", "alice@tern.test",
              "--auth-password", "secret")
    check_auth_message(s, t, r, "PLAIN", "alice@tern.test", mark)


def test_login(s, t):
    mark = t.log_mark()
    r = swaks(t.submission_port, "--auth", "LOGIN", "--auth-user", "alice@tern.test",
              "--auth-password", "secret")
    check_auth_message(s, t, r, "LOGIN", "alice@tern.test", mark)


def test_wrong_password(s, t):
    mark = t.log_mark()
    r = swaks(t.submission_port, "--auth", "PLAIN", "--auth-user", "alice@tern.test",
              "--auth-password", "wrong")
    s.check(r.returncode != 0, "swaks fails")
    s.check("535 5.7.8 Error: authentication failed:" in r.stdout, f"535 5.7.8: {r.stdout[-400:]}")
    s.check(t.wait_log(r"warning: unknown\[127\.0\.0\.1\]: SASL PLAIN authentication failed: ",
                       mark), "failure logged as Postfix does")
    s.check(t.wait_log(r"disconnect from unknown\[127\.0\.0\.1\].* auth=0/1", mark),
            "auth=0/1 on the disconnect line")


def test_error_limit(s, t):
    bad = b64("\0alice@tern.test\0wrong")
    with ternlib.RawSMTP(t.submission_port, timeout=30) as c:
        s.reply(c.cmd("EHLO c.test"), 250, what="EHLO")
        # smtpd_hard_error_limit = 3 in this group.
        s.reply(c.cmd(f"AUTH PLAIN {bad}"), 535, "5.7.8", "first failure")
        s.reply(c.cmd(f"AUTH PLAIN {bad}"), 535, "5.7.8", "second failure")
        c.send(f"AUTH PLAIN {bad}\r\n")
        replies = c.all_until_close(30)
        s.check([r.code for r in replies] == [535, 421], f"third failure, then 421: {replies}")


def test_second_auth_and_state(s, t):
    good = b64("\0alice@tern.test\0secret")
    with ternlib.RawSMTP(t.submission_port, timeout=30) as c:
        r = c.cmd("EHLO c.test")
        s.check("AUTH PLAIN LOGIN" in r.text, f"EHLO offers AUTH PLAIN LOGIN: {r.text}")
        s.reply(c.cmd("MAIL FROM:<a@tern.test>"), 250, what="MAIL")
        s.reply(c.cmd(f"AUTH PLAIN {good}"), 503, "5.5.1", "AUTH in a transaction")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        s.reply(c.cmd("AUTH PLAIN"), 334, what="AUTH without initial response")
        s.reply(c.cmd("*"), 501, "5.7.0", "cancelled")
        s.reply(c.cmd(f"AUTH PLAIN {good}"), 235, "2.7.0", "AUTH")
        s.reply(c.cmd(f"AUTH PLAIN {good}"), 503, "5.5.1", "second AUTH")
        # That was the third error: smtpd_hard_error_limit = 3 ends it.
        s.check([r.code for r in c.all_until_close(10)] == [421], "421 at the hard limit")


def test_not_offered_on_smtp(s, t):
    with t.raw() as c:
        r = c.cmd("EHLO c.test")
        s.check("AUTH" not in r.text, f"no AUTH on the smtp listener: {r.text}")
        s.reply(c.cmd(f"AUTH PLAIN {b64(chr(0) + 'alice@tern.test' + chr(0) + 'secret')}"),
                503, "5.5.1", "authentication not enabled")


def test_tls_only(s, t):
    with ternlib.RawSMTP(t.submission_port) as c:
        r = c.cmd("EHLO c.test")
        s.check("AUTH" not in r.text, f"no AUTH without TLS: {r.text}")
        s.reply(c.cmd("AUTH PLAIN"), 504, "5.5.4", "encryption required")


def make_cert():
    """A self-signed certificate and key for the TLS group (the key owned by
    root, mode 600: the master reads it)."""
    d = tempfile.mkdtemp(prefix="tern-e2e-auth-tls-", dir="/var/tmp")
    os.chmod(d, 0o755)
    crt, key = os.path.join(d, "c.crt"), os.path.join(d, "c.key")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", crt, "-days", "2", "-subj", "/CN=tern.test"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise ternlib.TestFailure(f"openssl req: {r.stderr.strip()}")
    os.chmod(key, 0o600)
    os.chmod(crt, 0o644)
    return d, crt, key


def test_tls_then_auth(s, t):
    mark = t.log_mark()
    with ternlib.RawSMTP(t.submission_port) as c:
        r = c.cmd("EHLO c.test")
        s.check("AUTH" not in r.text and "STARTTLS" in r.text,
                f"before TLS: STARTTLS, no AUTH: {r.text}")
    r = swaks(t.submission_port, "--tls", "--auth", "PLAIN", "--auth-user", "alice@tern.test",
              "--auth-password", "secret")
    s.check(r.returncode == 0, f"swaks --tls --auth exit {r.returncode}: {r.stdout[-800:]}")
    m = ternlib.QUEUED_RE.search(r.stdout)
    if s.check(m, "queued"):
        received, _ = ternlib.split_received(t.msg_bytes(m.group(1)))
        s.check(b"with ESMTPSA id " + m.group(1).encode() in received,
                f"Received says ESMTPSA: {received[:200]!r}")
        s.check(t.wait_log(rf"{m.group(1)}: client=unknown\[127\.0\.0\.1\], "
                           r"sasl_method=PLAIN, sasl_username=alice@tern\.test$", mark),
                "sasl_username on the client= line")


def test_starttls_forgets_auth(s, t):
    # smtpd_tls_auth_only = no in this group: AUTH in plain text, then
    # STARTTLS; RFC 3207 section 4.2: the identity is forgotten.
    import ssl
    good = b64("\0alice@tern.test\0secret")
    with ternlib.RawSMTP(t.submission_port, timeout=30) as c:
        s.reply(c.cmd("EHLO c.test"), 250, what="EHLO")
        s.reply(c.cmd(f"AUTH PLAIN {good}"), 235, "2.7.0", "AUTH in plain text")
        s.reply(c.cmd("STARTTLS"), 220, what="STARTTLS")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.sock = ctx.wrap_socket(c.sock)
        s.reply(c.cmd("EHLO c.test"), 250, what="EHLO inside TLS")
        s.reply(c.cmd(f"AUTH PLAIN {good}"), 235, "2.7.0",
                "AUTH again inside TLS: the first identity was forgotten (no 503)")



def swaks_from(port, source, sender, rcpt, *args):
    return subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port),
                           "--local-interface", source, "--from", sender, "--to", rcpt,
                           "--helo", "c.test", "--timeout", "20", "--quit-after", "RCPT",
                           *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60)


ALICE = ("--tls", "--auth", "PLAIN", "--auth-user", "alice@tern.test", "--auth-password",
         "secret")


def test_submission_policy(s, t):
    # A stranger (127.0.0.50, not in mynetworks) may not relay.
    r = swaks_from(t.submission_port, "127.0.0.50", "someone@else.example", "x@remote.example",
                   "--tls")
    s.check("554 5.7.1 <x@remote.example>: Relay access denied" in r.stdout,
            f"no AUTH: relay denied: {r.stdout[-1500:]}")
    # Nor use alice's address without logging in (Postfix's "not logged in").
    r = swaks_from(t.submission_port, "127.0.0.50", "alice@tern.test", "y@tern.test", "--tls")
    s.check("553 5.7.1 <alice@tern.test>: Sender address rejected: not logged in" in r.stdout,
            f"alice@ without AUTH: not logged in: {r.stdout[-1500:]}")
    # Authenticated, with her own address: relayed.
    r = swaks_from(t.submission_port, "127.0.0.50", "alice@tern.test", "x@remote.example",
                   *ALICE)
    s.check(re.search(r"<[-~] +250 2\.1\.5", r.stdout) and r.returncode == 0,
            f"alice as alice@: RCPT accepted: {r.stdout[-1500:]}")
    # Authenticated, with someone else's address: refused.
    r = swaks_from(t.submission_port, "127.0.0.50", "bob@tern.test", "x@remote.example",
                   *ALICE)
    s.check(re.search(r"553 5\.7\.1 <bob@tern\.test>: Sender address rejected: not owned by "
                      r"user alice@tern\.test", r.stdout),
            f"alice as bob@: 553 5.7.1 not owned: {r.stdout[-500:]}")


SASL_DIR = None
TLS_DIR = None
DV = None
try:
    SASL_DIR = make_sasldb()
    CYRUS = {
        "submission_smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "cyrus",
        "smtpd_sasl_path": "smtpd",
        "cyrus_sasl_config_path": SASL_DIR,
        "smtpd_tls_auth_only": "no",
        "smtpd_hard_error_limit": "3",
        "smtpd_error_sleep_time": "1s",
    }
    suite.group("cyrus sasldb", CYRUS, [
        ("PLAIN through swaks", test_plain),
        ("LOGIN through swaks", test_login),
        ("wrong password: 535, counted", test_wrong_password),
        ("hard error limit", test_error_limit),
        ("503 in a transaction and after AUTH; * cancels", test_second_auth_and_state),
        ("smtp listener does not offer AUTH", test_not_offered_on_smtp),
    ])
    suite.group("cyrus, smtpd_tls_auth_only = yes", dict(CYRUS, smtpd_tls_auth_only="yes"), [
        ("no AUTH without TLS", test_tls_only),
    ])
    TLS_DIR, CRT, KEY = make_cert()
    TLS = dict(CYRUS, smtpd_tls_security_level="may", smtpd_tls_cert_file=CRT,
               smtpd_tls_key_file=KEY)
    suite.group("cyrus with TLS", dict(TLS, smtpd_tls_auth_only="yes"), [
        ("AUTH only after STARTTLS; ESMTPSA", test_tls_then_auth),
    ])
    LOGINS, _ = ternlib.shared_files("auth-logins", {
        "logins": "alice@tern.test alice@tern.test\nbob@tern.test bob@tern.test\n"})
    suite.group("submission policy: TLS, AUTH, sender login maps", dict(
        TLS, smtpd_tls_auth_only="yes", mynetworks="127.0.0.1/32",
        smtpd_sender_login_maps=f"texthash:{LOGINS}/logins",
        submission_smtpd_sender_restrictions="reject_sender_login_mismatch",
        submission_smtpd_relay_restrictions="permit_mynetworks, permit_sasl_authenticated, "
                                            "reject_unauth_destination"), [
        ("strangers may not relay; alice relays as herself, not as bob",
         test_submission_policy),
    ])
    shutil.rmtree(LOGINS, ignore_errors=True)
    suite.group("cyrus with TLS, smtpd_tls_auth_only = no", TLS, [
        ("STARTTLS forgets a plain-text AUTH", test_starttls_forgets_auth),
    ])

    DV = dovecot.Dovecot({"alice@tern.test": None}, auth=True).start()

    def test_dovecot_plain(s, t):
        mark = t.log_mark()
        r = swaks(t.submission_port, "--auth", "PLAIN", "--auth-user", "alice@tern.test",
                  "--auth-password", "x")
        check_auth_message(s, t, r, "PLAIN", "alice@tern.test", mark)

    def test_dovecot_login(s, t):
        mark = t.log_mark()
        r = swaks(t.submission_port, "--auth", "LOGIN", "--auth-user", "alice@tern.test",
                  "--auth-password", "x")
        check_auth_message(s, t, r, "LOGIN", "alice@tern.test", mark)

    def test_dovecot_wrong(s, t):
        with ternlib.RawSMTP(t.submission_port, timeout=30) as c:
            c.cmd("EHLO c.test")
            r = c.cmd(f"AUTH PLAIN {b64(chr(0) + 'alice@tern.test' + chr(0) + 'nope')}")
            s.reply(r, 535, "5.7.8", "wrong password through Dovecot")

    def test_dovecot_down_and_up(s, t):
        good = b64("\0alice@tern.test\0x")
        DV.stop()
        with ternlib.RawSMTP(t.submission_port, timeout=30) as c:
            c.cmd("EHLO c.test")
            s.reply(c.cmd(f"AUTH PLAIN {good}"), 454, "4.7.0", "Dovecot down: 454")
            s.reply(c.cmd("NOOP"), 250, what="the session goes on")
        DV.start()

        def auth_socket_up():
            import socket
            with socket.socket(socket.AF_UNIX) as so:
                try:
                    so.connect(DV.auth_socket)
                    return True
                except OSError:
                    return False
        s.check(ternlib.wait_until(auth_socket_up, 10), "Dovecot's auth socket is back")
        with ternlib.RawSMTP(t.submission_port, timeout=30) as c:
            c.cmd("EHLO c.test")
            s.reply(c.cmd(f"AUTH PLAIN {good}"), 235, "2.7.0", "Dovecot back: 235")

    suite.group("dovecot", {
        "submission_smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": DV.auth_socket,
        "smtpd_tls_auth_only": "no",
    }, [
        ("PLAIN through Dovecot", test_dovecot_plain),
        ("LOGIN through Dovecot", test_dovecot_login),
        ("wrong password through Dovecot", test_dovecot_wrong),
        ("Dovecot stops, then starts again", test_dovecot_down_and_up),
    ])
finally:
    if DV is not None:
        DV.remove()
    if SASL_DIR is not None:
        shutil.rmtree(SASL_DIR, ignore_errors=True)
    if TLS_DIR is not None:
        shutil.rmtree(TLS_DIR, ignore_errors=True)
suite.finish()
