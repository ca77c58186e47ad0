"""End-to-end tests of the anvil(8) limits in smtpd (doc/anvil.md) against
the real ternd, with clients on several loopback addresses
(ternlib.RawSMTP(source=...)): each case has addresses of its own, so the
counts of one case never reach another.

Client limits (Postfix's): simultaneous sessions (421 4.7.0, "Connection
concurrency limit exceeded"), connections, MAIL, RCPT, AUTH and new TLS
sessions per time unit (STARTTLS and smtps), each with Postfix's reply and
warning line; a per-listener override (submission_...); the exception
list (127.0.0.1 here, and empty in a group of its own, where the sendmail
socket is still never limited).

SASL-login limits (tern's): one login's MAIL and RCPT counted across two
client addresses (450 4.7.1 naming the login, a warning with
sasl_username=), from an excepted client too, and a login in
smtpd_sasl_user_rate_limit_exceptions is not limited.

Windows and reload: with anvil_rate_time_unit = 1s a refused client is
served again once its window ends (a bounded wait, no timing asserted);
a SIGHUP reload changes the limits and keeps the counts (of events, and
of sessions open across it).

The time unit is an hour in the other groups, so no window ends during a
case.
"""
import base64
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import RawSMTP, go_tls  # noqa: E402

suite = ternlib.Suite("smtpd_anvil")
SENDMAIL = os.path.join(ternlib.BUILD, "bin", "sendmail")


def b64(text):
    return base64.b64encode(text.encode()).decode()


def make_cert(d):
    """A self-signed certificate and its key (root's, mode 600) in d."""
    crt, key = os.path.join(d, "c.crt"), os.path.join(d, "c.key")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "2", "-subj", "/CN=tern.test"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise ternlib.TestFailure(f"openssl req: {r.stderr.strip()}")
    os.chmod(key, 0o600)
    os.chmod(crt, 0o644)
    return crt, key


def src(n):
    return f"127.0.0.{n}"


def warned(t, text, mark):
    return t.wait_log(r"tern/smtpd\[\d+\]: warning: " + re.escape(text) + "$", mark)


def closed_quietly(c):
    """Every reply until the close; the close itself is what is checked."""
    try:
        return c.all_until_close(10)
    except ternlib.TestFailure:
        return None


# ---- client limits -----------------------------------------------------------------


def test_connection_count(s, t):
    mark = t.log_mark()
    a = src(10)
    held = [RawSMTP(t.port, source=a) for _ in range(3)]
    try:
        for i, c in enumerate(held):
            s.reply(c.greeting, 220, what=f"session {i + 1} of 3")
        c4 = RawSMTP(t.port, source=a)
        s.eq(c4.greeting.text, "421 4.7.0 tern.test Error: too many connections from 127.0.0.10",
             "the fourth simultaneous session")
        s.check(closed_quietly(c4) == [], "closed after the 421")
        c4.close()
        s.check(warned(t, "Connection concurrency limit exceeded: 4 from unknown[127.0.0.10] "
                       "for service smtp", mark), "Postfix's warning line")
        # Another address is not affected; the same address on another
        # listener is counted apart (Postfix's "service:address").
        with RawSMTP(t.port, source=src(11)) as other:
            s.reply(other.greeting, 220, what="another client address")
        with RawSMTP(t.submission_port, source=a) as sub:
            s.reply(sub.greeting, 220, what="the same address on submission")
        # One closes: room for one more.
        held.pop().close()

        def admitted():
            c = RawSMTP(t.port, source=a)
            if c.greeting.code == 220:
                held.append(c)
                return True
            c.close()
            return False
        s.check(ternlib.wait_until(admitted, 10, 0.2), "a session ended: served again")
    finally:
        for c in held:
            c.close()


def test_connection_rate(s, t):
    mark = t.log_mark()
    a = src(20)
    for i in range(6):
        with RawSMTP(t.port, source=a) as c:
            s.reply(c.greeting, 220, what=f"connection {i + 1} of 6")
            # One at a time: the server's close ends its count (the
            # concurrency limit of 3 stays out of the way).
            s.reply(c.cmd("QUIT"), 221, what="QUIT")
            s.check(c.closed(), "closed by the server")
    with RawSMTP(t.port, source=a) as c:
        s.eq(c.greeting.text, "421 4.7.0 tern.test Error: too many connections from 127.0.0.20",
             "the seventh connection in the time unit")
    s.check(warned(t, "Connection rate limit exceeded: 7 from unknown[127.0.0.20] for "
                   "service smtp", mark), "Postfix's warning line")


def test_message_rate(s, t):
    mark = t.log_mark()
    with RawSMTP(t.port, source=src(30)) as c:
        s.reply(c.cmd("EHLO c.test"), 250, what="EHLO")
        for i in range(3):
            s.reply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0", f"MAIL {i + 1} of 3")
            s.reply(c.cmd("RSET"), 250, what="RSET")
        r = c.cmd("MAIL FROM:<a@example.org>")
        s.eq(r.text, "450 4.7.1 Error: too much mail from 127.0.0.30", "the fourth MAIL")
        s.reply(c.cmd("RCPT TO:<b@tern.test>"), 503, "5.5.1", "no transaction after it")
    s.check(warned(t, "Message delivery request rate limit exceeded: 4 from "
                   "unknown[127.0.0.30] for service smtp", mark), "Postfix's warning line")
    # A new session does not reset the count.
    with RawSMTP(t.port, source=src(30)) as c:
        s.reply(c.cmd("MAIL FROM:<a@example.org>"), 450, "4.7.1", "still over in a new session")


def test_message_rate_listener(s, t):
    # submission_smtpd_client_message_rate_limit = 1 overrides the 3.
    mark = t.log_mark()
    with RawSMTP(t.submission_port, source=src(31)) as c:
        s.reply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0", "first MAIL on submission")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        r = c.cmd("MAIL FROM:<a@example.org>")
        s.eq(r.text, "450 4.7.1 Error: too much mail from 127.0.0.31", "second MAIL on submission")
    s.check(warned(t, "Message delivery request rate limit exceeded: 2 from "
                   "unknown[127.0.0.31] for service submission", mark), "for service submission")
    with RawSMTP(t.port, source=src(31)) as c:
        s.reply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0", "port 25 counts apart")


def test_recipient_rate(s, t):
    mark = t.log_mark()
    with RawSMTP(t.port, source=src(40)) as c:
        s.reply(c.cmd("MAIL FROM:<a@example.org>"), 250, what="MAIL")
        for i in range(3):
            s.reply(c.cmd(f"RCPT TO:<u{i}@tern.test>"), 250, "2.1.5", f"RCPT {i + 1} of 3")
        r = c.cmd("RCPT TO:<u9@tern.test>")
        s.eq(r.text, "450 4.7.1 Error: too many recipients from 127.0.0.40", "the fourth RCPT")
        s.reply(c.cmd("DATA"), 354, what="the accepted recipients still get their mail")
        c.send("Subject: x\r\n\r\nx\r\n.\r\n")
        s.reply(c.reply(), 250, "2.0.0", "queued")
    s.check(warned(t, "Recipient address rate limit exceeded: 4 from unknown[127.0.0.40] for "
                   "service smtp", mark), "Postfix's warning line")


def test_auth_rate(s, t):
    mark = t.log_mark()
    bad = b64("\0alice@tern.test\0wrong")
    with RawSMTP(t.submission_port, source=src(50), timeout=30) as c:
        s.reply(c.cmd("EHLO c.test"), 250, what="EHLO")
        s.reply(c.cmd(f"AUTH PLAIN {bad}"), 535, "5.7.8", "AUTH 1 of 2")
        s.reply(c.cmd(f"AUTH PLAIN {bad}"), 535, "5.7.8", "AUTH 2 of 2")
        r = c.cmd(f"AUTH PLAIN {b64(chr(0) + 'alice@tern.test' + chr(0) + 'secret')}")
        s.eq(r.text, "450 4.7.1 Error: too many AUTH commands from 127.0.0.50",
             "the third AUTH, even with the right password")
    s.check(warned(t, "AUTH command rate limit exceeded: 3 from unknown[127.0.0.50] for "
                   "service submission", mark), "the warning line")


def test_starttls_rate(s, t):
    mark = t.log_mark()
    a = src(60)
    for i in range(2):
        with RawSMTP(t.port, source=a) as c:
            s.reply(c.cmd("STARTTLS"), 220, "2.0.0", f"STARTTLS {i + 1}")
            go_tls(c)
            s.reply(c.cmd("EHLO c.test"), 250, what=f"EHLO inside TLS session {i + 1}")
    with RawSMTP(t.port, source=a) as c:
        s.reply(c.cmd("STARTTLS"), 220, "2.0.0", "STARTTLS 3: not refused before the handshake")
        go_tls(c)
        r = c.reply()
        s.eq(r.text, "421 4.7.0 tern.test Error: too many new TLS sessions from "
             "unknown[127.0.0.60]", "421 inside TLS after the third new session")
    s.check(warned(t, "New TLS session rate limit exceeded: 3 from unknown[127.0.0.60] for "
                   "service smtp", mark), "Postfix's warning line")
    with RawSMTP(t.port, source=a) as c:
        r = c.cmd("STARTTLS")
        s.eq(r.text, "454 4.7.0 Error: too many new TLS sessions from unknown[127.0.0.60]",
             "the next STARTTLS is refused before the handshake")
        s.reply(c.cmd("EHLO c.test"), 250, what="the session goes on in plain text")
    s.check(warned(t, "Refusing STARTTLS request from unknown[127.0.0.60] for service smtp",
                   mark), "Postfix's refusal line")


def test_smtps_rate(s, t):
    mark = t.log_mark()
    a = src(61)
    for i in range(2):
        with go_tls(RawSMTP(t.smtps_port, source=a, greeting=False)) as c:
            s.reply(c.reply(), 220, what=f"smtps session {i + 1}")
    with go_tls(RawSMTP(t.smtps_port, source=a, greeting=False)) as c:
        s.eq(c.reply().text, "421 4.7.0 tern.test Error: too many new TLS sessions from "
             "unknown[127.0.0.61]", "the third new TLS session on smtps")
    c = RawSMTP(t.smtps_port, source=a, greeting=False)
    try:
        try:
            go_tls(c)
            refused = False
        except (ssl.SSLError, OSError):
            refused = True
        s.check(refused, "the fourth: closed before any handshake")
    finally:
        c.close()
    s.check(warned(t, "Refusing TLS service request from unknown[127.0.0.61] for service smtps",
                   mark), "Postfix's refusal line")


def test_exception(s, t):
    # 127.0.0.1 is in smtpd_client_event_limit_exceptions.
    with RawSMTP(t.port, source="127.0.0.1") as c:
        for i in range(5):
            s.reply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0", f"excepted MAIL {i + 1}")
            s.reply(c.cmd("RSET"), 250, what="RSET")
    held = [RawSMTP(t.port, source="127.0.0.1") for _ in range(5)]
    try:
        s.check(all(c.greeting.code == 220 for c in held), "five sessions at once: excepted")
    finally:
        for c in held:
            c.close()


def after_client_limits(s, t):
    # anvil(8)'s peaks, logged when smtpd stops: the MAILs of .30 (four
    # and the one of its second session), the RCPTs of .40, the four
    # sessions .10 held at once.
    date = r"at \w{3} [ \d]\d \d\d:\d\d:\d\d$"
    log = t.log_text()
    for line in (r"max message rate 5/3600s for \(smtp:127\.0\.0\.30\) ",
                 r"max recipient rate 4/3600s for \(smtp:127\.0\.0\.40\) ",
                 r"max connection count 4 for \(smtp:127\.0\.0\.10\) ",
                 r"max connection rate \d+/3600s for \(smtp:127\.0\.0\.\d+\) ",
                 r"max cache size \d+ "):
        s.check(re.search(r"(?m)tern/smtpd\[\d+\]: statistics: " + line + date, log),
                f"statistics line: {line}")


# ---- no exceptions; the sendmail socket --------------------------------------------


def test_no_exceptions(s, t):
    mark = t.log_mark()
    with RawSMTP(t.port, source="127.0.0.1") as c:
        s.reply(c.cmd("MAIL FROM:<a@example.org>"), 250, what="MAIL 1")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        s.reply(c.cmd("MAIL FROM:<a@example.org>"), 450, "4.7.1",
                "127.0.0.1 is limited with an empty exception list")
    s.check(warned(t, "Message delivery request rate limit exceeded: 2 from unknown[127.0.0.1] "
                   "for service smtp", mark), "warning")
    for i in range(3):
        r = subprocess.run([SENDMAIL, "-t", "-i"], capture_output=True, timeout=60,
                           env=dict(os.environ, TERN_CONFIG=t.conf), cwd="/",
                           input=b"From: root@tern.test\nTo: u@tern.test\nSubject: s\n\nbody\n")
        s.eq(r.returncode, 0, f"sendmail {i + 1} of 3 is never limited ({r.stderr!r})")


# ---- SASL logins ---------------------------------------------------------------------


def auth(s, c, user):
    s.reply(c.cmd("EHLO c.test"), 250, what="EHLO")
    s.reply(c.cmd(f"AUTH PLAIN {b64(chr(0) + user + chr(0) + 'secret')}"), 235, "2.7.0",
            f"AUTH as {user}")


def test_user_messages(s, t):
    mark = t.log_mark()
    with RawSMTP(t.submission_port, source=src(70), timeout=30) as c:
        auth(s, c, "alice@tern.test")
        for i in range(2):
            s.reply(c.cmd("MAIL FROM:<alice@tern.test>"), 250, "2.1.0", f"MAIL {i + 1} from .70")
            s.reply(c.cmd("RSET"), 250, what="RSET")
    with RawSMTP(t.submission_port, source=src(71), timeout=30) as c:
        auth(s, c, "alice@tern.test")
        r = c.cmd("MAIL FROM:<alice@tern.test>")
        s.eq(r.text, "450 4.7.1 Error: too much mail from user alice@tern.test",
             "the third MAIL of the login, from another address")
    s.check(warned(t, "SASL user message rate limit exceeded: 3 from unknown[127.0.0.71] for "
                   "service submission, sasl_username=alice@tern.test", mark),
            "warning with sasl_username=")
    # Unauthenticated, the same address is a client like any other.
    with RawSMTP(t.submission_port, source=src(71)) as c:
        s.reply(c.cmd("MAIL FROM:<x@example.org>"), 250, "2.1.0", "no login: not counted")


def test_user_recipients(s, t):
    mark = t.log_mark()
    with RawSMTP(t.submission_port, source=src(72), timeout=30) as c:
        auth(s, c, "bob@tern.test")
        s.reply(c.cmd("MAIL FROM:<bob@tern.test>"), 250, what="MAIL")
        for i in range(2):
            s.reply(c.cmd(f"RCPT TO:<r{i}@tern.test>"), 250, "2.1.5", f"RCPT {i + 1} from .72")
    with RawSMTP(t.submission_port, source=src(73), timeout=30) as c:
        auth(s, c, "bob@tern.test")
        s.reply(c.cmd("MAIL FROM:<bob@tern.test>"), 250, what="MAIL")
        s.reply(c.cmd("RCPT TO:<r3@tern.test>"), 250, "2.1.5", "RCPT 3 from .73")
        r = c.cmd("RCPT TO:<r4@tern.test>")
        s.eq(r.text, "450 4.7.1 Error: too many recipients from user bob@tern.test",
             "the fourth RCPT of the login")
    s.check(warned(t, "SASL user recipient rate limit exceeded: 4 from unknown[127.0.0.73] for "
                   "service submission, sasl_username=bob@tern.test", mark),
            "warning with sasl_username=")


def test_user_from_excepted_client(s, t):
    # A webmail on 127.0.0.1 (an excepted client) with a stolen password.
    with RawSMTP(t.submission_port, source="127.0.0.1", timeout=30) as c:
        auth(s, c, "dave@tern.test")
        for i in range(2):
            s.reply(c.cmd("MAIL FROM:<dave@tern.test>"), 250, "2.1.0", f"MAIL {i + 1}")
            s.reply(c.cmd("RSET"), 250, what="RSET")
        s.reply(c.cmd("MAIL FROM:<dave@tern.test>"), 450, "4.7.1",
                "limited though the client is excepted")


def test_user_exception(s, t):
    with RawSMTP(t.submission_port, source=src(74), timeout=30) as c:
        auth(s, c, "carol@tern.test")
        for i in range(4):
            s.reply(c.cmd("MAIL FROM:<carol@tern.test>"), 250, "2.1.0", f"excepted MAIL {i + 1}")
            s.reply(c.cmd("RSET"), 250, what="RSET")


# ---- windows and reload -------------------------------------------------------------


def test_window_ends(s, t):
    mark = t.log_mark()
    with RawSMTP(t.port, source=src(90), timeout=30) as c:
        s.reply(c.cmd("MAIL FROM:<a@example.org>"), 250, what="MAIL 1")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        s.reply(c.cmd("MAIL FROM:<a@example.org>"), 450, "4.7.1", "MAIL 2 in the same second")

        def served():
            r = c.cmd("MAIL FROM:<a@example.org>")
            if r.code == 250:
                return True
            c.cmd("RSET")
            return False
        s.check(ternlib.wait_until(served, 10, 0.3), "served again in a later window")
    s.check(warned(t, "Message delivery request rate limit exceeded: 2 from "
                   "unknown[127.0.0.90] for service smtp", mark), "warning")


def reload(s, t, line):
    with open(t.conf, "a") as f:
        f.write(line + "\n")
    mark = t.log_mark()
    os.kill(t.master_pid, signal.SIGHUP)
    s.check(t.wait_log(r"tern/smtpd\[\d+\]: reload: configuration", mark, 10), "smtpd reloaded")


def test_reload_keeps_counts(s, t):
    # smtpd_client_message_rate_limit = 2, smtpd_client_connection_count_limit = 2.
    a, b = src(80), src(81)
    c = RawSMTP(t.port, source=a)
    held = [RawSMTP(t.port, source=b) for _ in range(2)]
    try:
        for i in range(2):
            s.reply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0", f"MAIL {i + 1} of 2")
            s.reply(c.cmd("RSET"), 250, what="RSET")
        s.check(all(h.greeting.code == 220 for h in held), "two sessions from .81")
        reload(s, t, "smtpd_client_message_rate_limit = 3\n"
                     "smtpd_client_connection_count_limit = 1")
        s.reply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0",
                "the third MAIL under the new limit of 3 (same session, across the reload)")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        s.reply(c.cmd("MAIL FROM:<a@example.org>"), 450, "4.7.1",
                "the fourth: the two from before the reload still count")
        with RawSMTP(t.port, source=b) as late:
            s.reply(late.greeting, 421, "4.7.0",
                    "the sessions open across the reload count against the new limit of 1")
    finally:
        c.close()
        for h in held:
            h.close()


# ---- groups ----------------------------------------------------------------------------


def main():
    sasl_dir = ternlib.make_sasldb(["alice", "bob", "carol", "dave"], "PLAIN")
    crt, key = make_cert(sasl_dir)
    smtps_port = ternlib.free_ports(1)[0]
    base = {
        "anvil_rate_time_unit": "1h",
        "smtpd_client_event_limit_exceptions": "127.0.0.1/32",
        "submission_smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "cyrus",
        "smtpd_sasl_path": "smtpd",
        "cyrus_sasl_config_path": sasl_dir,
        "smtpd_tls_auth_only": "no",
        "smtpd_tls_security_level": "may",
        "smtpd_tls_cert_file": crt,
        "smtpd_tls_key_file": key,
        "smtpd_hard_error_limit": "50",
        "smtpd_soft_error_limit": "40",
    }

    def with_smtps(fn):
        def case(s, t):
            t.smtps_port = smtps_port
            fn(s, t)
        return case

    try:
        suite.group("client limits", dict(
            base,
            smtps_listen=f"127.0.0.1:{smtps_port}",
            smtpd_client_connection_count_limit="3",
            smtpd_client_connection_rate_limit="6",
            smtpd_client_message_rate_limit="3",
            submission_smtpd_client_message_rate_limit="1",
            smtpd_client_recipient_rate_limit="3",
            smtpd_client_auth_rate_limit="2",
            smtpd_client_new_tls_session_rate_limit="2",
        ), [
            ("simultaneous sessions per client: 421 4.7.0", test_connection_count),
            ("connections per time unit: 421 4.7.0", test_connection_rate),
            ("MAIL per time unit: 450 4.7.1", test_message_rate),
            ("submission_smtpd_client_message_rate_limit overrides", test_message_rate_listener),
            ("RCPT per time unit: 450 4.7.1", test_recipient_rate),
            ("AUTH per time unit: 450 4.7.1", test_auth_rate),
            ("new TLS sessions per time unit: STARTTLS", test_starttls_rate),
            ("new TLS sessions per time unit: smtps", with_smtps(test_smtps_rate)),
            ("smtpd_client_event_limit_exceptions", test_exception),
        ], after_stop=after_client_limits)
        suite.group("no exceptions", dict(
            base, smtpd_client_event_limit_exceptions="", smtpd_client_message_rate_limit="1",
        ), [("127.0.0.1 limited; sendmail never", test_no_exceptions)])
        suite.group("SASL logins", dict(
            base,
            smtpd_sasl_user_message_rate_limit="2",
            smtpd_sasl_user_recipient_rate_limit="3",
            smtpd_sasl_user_rate_limit_exceptions="Carol@tern.test",
        ), [
            ("one login's MAIL across two addresses", test_user_messages),
            ("one login's RCPT across two addresses", test_user_recipients),
            ("a login from an excepted client is limited", test_user_from_excepted_client),
            ("smtpd_sasl_user_rate_limit_exceptions", test_user_exception),
        ])
        suite.group("one-second windows", dict(
            base, anvil_rate_time_unit="1s", smtpd_client_message_rate_limit="1",
        ), [("a new window serves the client again", test_window_ends)])
        suite.group("reload", dict(
            base, smtpd_client_message_rate_limit="2", smtpd_client_connection_count_limit="2",
        ), [("SIGHUP changes the limits and keeps the counts", test_reload_keeps_counts)])
    finally:
        shutil.rmtree(sasl_dir, ignore_errors=True)
    suite.finish()


if __name__ == "__main__":
    main()
