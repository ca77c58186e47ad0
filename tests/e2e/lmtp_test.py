"""End-to-end tests of the lmtp agent against a real Dovecot LMTP server
(dovecot.py: its own configuration, a passwd-file userdb, Maildirs in the
test directory, a unix socket): one message to three recipients of which
Dovecot refuses one (the others delivered, the refused one bounced with
Dovecot's reply in the DSN), an over-quota mailbox (deferred, class
quota), Maildir content byte-exact with the Return-Path and Delivered-To
Dovecot adds, and Dovecot down then up (deferred, then delivered). With
virtual domains: an unknown virtual user refused at RCPT (550 5.1.1), a
virtual alias that expands to two mailboxes, a catch-all @domain, and
user+tag@ delivered to user's mailbox.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovecot  # noqa: E402
import ternlib  # noqa: E402
from ternlib import wait_until  # noqa: E402

suite = ternlib.Suite("lmtp")

RULES_DIR, _files = ternlib.shared_files("lmtp-rules", {
    "retry_rules": "*  *  F,1h,1s\n",
    "vmailbox": "alice@virt.test  ok\ncarol@virt.test  ok\n",
    "virtual": ("alias.test             anything\n"
                "team@virt.test         alice@virt.test, carol@virt.test\n"
                "@alias.test            carol@virt.test\n"),
})

DV = dovecot.Dovecot({
    "alice@tern.test": None,
    "carol@tern.test": None,
    "bob@tern.test": "1K",          # over quota with any real message
    "alice@virt.test": None,
    "carol@virt.test": None,
})
DV.start()

BASE = {
    "local_transport": f"lmtp:unix:{DV.socket}",
    "default_transport": "error:5.7.1 no relaying in this test",
    "retry_rules": _files["retry_rules"],
    "minimal_backoff_time": "1s",
}
RELAY = re.escape(f"tern.test[{DV.socket}]")

send = ternlib.send_message
ternctl = ternlib.ternctl_run


def delivery(t, qid):
    e = t.queue_by_id().get(qid)
    if e is None:
        return None
    return {d["address"]: d for d in e.get("delivery", [])}


def test_one_refused(s, t):
    mark = t.log_mark()
    qid = send(t, "alice@tern.test", ["alice@tern.test", "carol@tern.test", "nobody@tern.test"],
               subject="three")
    for who in ("alice", "carol"):
        s.check(t.wait_log(rf"lmtp\[\d+\]: {qid}: to=<{who}@tern\.test>, relay={RELAY}, "
                           r"delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 "
                           rf"<{who}@tern\.test> \S+ Saved\)", mark), f"{who} delivered")
    s.check(t.wait_log(rf"{qid}: to=<nobody@tern\.test>, relay={RELAY}.*dsn=5\.1\.1, "
                       r"status=bounced \(host tern\.test\[.*\] said: 550 5\.1\.1 "
                       r"<nobody@tern\.test> User doesn't exist: nobody@tern\.test \(in reply to "
                       r"RCPT TO command\)\)", mark), "nobody bounced with Dovecot's reply")
    # The bounce goes to alice, through Dovecot too.
    s.check(wait_until(lambda: len(DV.messages("alice@tern.test")) >= 2, 10),
            "the bounce reached alice's Maildir")
    bounce = [m for m in DV.messages("alice@tern.test") if b"multipart/report" in m]
    s.check(bounce, "a DSN (multipart/report)")
    s.check(bounce and b"550 5.1.1 <nobody@tern.test> User doesn't exist" in bounce[0],
            "Dovecot's reply in the DSN")
    s.check(bounce and re.search(rb"Final-Recipient: rfc822; ?nobody@tern\.test", bounce[0]),
            "Final-Recipient")


def test_over_quota(s, t):
    mark = t.log_mark()
    qid = send(t, "alice@tern.test", ["bob@tern.test"], body=(b"x" * 70 + b"\r\n") * 60)
    s.check(t.wait_log(rf"{qid}: to=<bob@tern\.test>, relay={RELAY}.*dsn=4\.2\.2, "
                       r"status=deferred \(host .* said: 452 4\.2\.2 <bob@tern\.test> Quota "
                       r"exceeded \(mailbox for user is full\) \(in reply to end of DATA "
                       r"command\)\)", mark), "deferred with Dovecot's 452 4.2.2")
    st = {}
    wait_until(lambda: st.update((delivery(t, qid) or {}).get("bob@tern.test") or {}) or
               st.get("state") not in (None, "pending"), 5)
    s.eq(st.get("error_class"), "quota", "retry class quota")
    ternctl(t, "queue", "delete", qid)


def test_byte_exact(s, t):
    body = (b"line one\r\n"
            b".a line that starts with a dot\r\n"
            b"From the start, a From_ line\r\n"
            b"trailing spaces   \r\n"
            b"\tand a tab\r\n"
            b"\xc3\xa9t\xc3\xa9 8-bit\r\n")
    before = len(DV.messages("carol@tern.test"))
    mark = t.log_mark()
    qid = send(t, "sender@tern.test", ["carol+news@tern.test"], body=body, subject="exact",
               mail_params=" BODY=8BITMIME")
    s.check(t.wait_log(rf"{qid}: to=<carol\+news@tern\.test>, relay={RELAY}.*status=sent",
                       mark), "delivered")
    s.check(wait_until(lambda: len(DV.messages("carol@tern.test")) > before, 5), "in the Maildir")
    msg = DV.messages("carol@tern.test")[-1]
    head, _, got = msg.partition(b"\n\n")
    s.check(head.startswith(b"Return-Path: <sender@tern.test>\n"), "Return-Path first")
    s.check(b"\nDelivered-To: carol+news@tern.test\n" in head, "Delivered-To with the extension")
    s.check(head.endswith(b"\nFrom: <sender@tern.test>\nTo: <carol+news@tern.test>\n"
                          b"Subject: exact"), "our headers, last")
    s.eq(got, body.replace(b"\r\n", b"\n"), "the body byte for byte (Dovecot stores LF)")


def test_connection_reuse(s, t):
    connects = DV.output().count("Connect from local")
    mark = t.log_mark()
    # One after the other, each delivered before the next is sent: sent in
    # a burst, a second message may find the first one's connection busy
    # and rightly open another (the concurrency limit allows it).
    for i in range(3):
        q = send(t, "alice@tern.test", ["carol@tern.test"], subject=f"in a row {i}")
        s.check(t.wait_log(rf"{q}: to=<carol@tern\.test>, relay={RELAY}.*status=sent", mark),
                f"{q} delivered")
    # At most one: the previous case's connection may still be cached.
    s.check(DV.output().count("Connect from local") - connects <= 1,
            "three messages over one LMTP connection (the connection cache)")


def test_dovecot_down(s, t):
    DV.stop()
    mark = t.log_mark()
    try:
        qid = send(t, "alice@tern.test", ["carol@tern.test"], subject="later")
        s.check(t.wait_log(rf"{qid}: to=<carol@tern\.test>, relay={RELAY}.*status=deferred "
                           rf"\(connect to {RELAY}: (No such file or directory|Connection "
                           r"refused)\)", mark), "deferred while Dovecot is down")
    finally:
        DV.start()
    before = len(DV.messages("carol@tern.test"))
    ternctl(t, "queue", "flush", qid)
    s.check(t.wait_log(rf"{qid}: to=<carol@tern\.test>, relay={RELAY}.*status=sent", mark,
                       timeout=10), "delivered once Dovecot is back")
    s.check(wait_until(lambda: len(DV.messages("carol@tern.test")) > before, 5), "in the Maildir")


def rcpt_reply(t, addr):
    with t.raw() as c:
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<sender@tern.test>")
        r = c.cmd(f"RCPT TO:<{addr}>")
        c.cmd("QUIT")
    return r


def test_unknown_virtual_user(s, t):
    r = rcpt_reply(t, "ghost@virt.test")
    s.eq(r.code, 550, "RCPT refused")
    s.check("5.1.1 <ghost@virt.test>: Recipient address rejected: User unknown in virtual "
            "mailbox table" in r.text, f"Postfix's words: {r.text}")
    r = rcpt_reply(t, "alice@virt.test")
    s.eq(r.code, 250, "a listed user is accepted")


def test_unknown_local_user(s, t):
    r = rcpt_reply(t, "no-such-user@tern.test")
    s.eq(r.code, 550, "RCPT refused")
    s.check("5.1.1 <no-such-user@tern.test>: Recipient address rejected: User unknown in local "
            "recipient table" in r.text, f"Postfix's words: {r.text}")
    s.eq(rcpt_reply(t, "root@tern.test").code, 250, "a system user is accepted")
    mark = t.log_mark()
    rcpt_reply(t, "no-such-user@tern.test")
    s.check(t.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 550 5\.1\.1 "
                       r"<no-such-user@tern\.test>", mark), "the NOQUEUE line")


def test_virtual_alias_two(s, t):
    before = {u: len(DV.messages(u)) for u in ("alice@virt.test", "carol@virt.test")}
    mark = t.log_mark()
    qid = send(t, "sender@tern.test", ["Team@Virt.test"], subject="to the team")
    for u in before:
        s.check(t.wait_log(rf"{qid}: to=<{re.escape(u)}>, relay={RELAY}.*status=sent", mark),
                f"{u} delivered")
        s.check(wait_until(lambda: len(DV.messages(u)) > before[u], 5), f"in {u}'s Maildir")
    msg = DV.messages("carol@virt.test")[-1]
    s.check(b"\nSubject: to the team" in msg, "the message")


def test_catch_all(s, t):
    before = len(DV.messages("carol@virt.test"))
    mark = t.log_mark()
    qid = send(t, "sender@tern.test", ["whoever@alias.test"], subject="catch-all")
    s.check(t.wait_log(rf"{qid}: to=<carol@virt\.test>, relay={RELAY}.*status=sent", mark),
            "the catch-all @alias.test delivered to carol")
    s.check(wait_until(lambda: len(DV.messages("carol@virt.test")) > before, 5), "in the Maildir")


def test_extension(s, t):
    before = len(DV.messages("alice@virt.test"))
    mark = t.log_mark()
    qid = send(t, "sender@tern.test", ["alice+lists@virt.test"], subject="tagged")
    s.check(t.wait_log(rf"{qid}: to=<alice\+lists@virt\.test>, relay={RELAY}.*status=sent",
                       mark), "user+tag accepted (virtual_mailbox_maps finds user) and delivered")
    s.check(wait_until(lambda: len(DV.messages("alice@virt.test")) > before, 5),
            "in alice's Maildir")
    msg = DV.messages("alice@virt.test")[-1]
    s.check(b"\nDelivered-To: alice+lists@virt.test\n" in msg, "the tag kept")


VIRTUAL = dict(BASE, virtual_mailbox_domains="virt.test",
               virtual_mailbox_maps=f"texthash:{_files['vmailbox']}",
               virtual_alias_maps=f"texthash:{_files['virtual']}",
               virtual_transport=f"lmtp:unix:{DV.socket}",
               recipient_delimiter="+", local_recipient_maps="unix:passwd.byname")

try:
    suite.group("virtual", VIRTUAL, [
        ("unknown virtual user: 550 5.1.1 at RCPT", test_unknown_virtual_user),
        ("unknown local user: 550 5.1.1 at RCPT (local_recipient_maps)", test_unknown_local_user),
        ("a virtual alias to two mailboxes", test_virtual_alias_two),
        ("a catch-all @domain", test_catch_all),
        ("user+tag@ to user's mailbox, the tag kept", test_extension),
    ])
    suite.group("lmtp", BASE, [
        ("three recipients, Dovecot refuses one: two delivered, one bounced", test_one_refused),
        ("over quota: 452 4.2.2 deferred, class quota", test_over_quota),
        ("Maildir content byte-exact, Return-Path and Delivered-To", test_byte_exact),
        ("three messages in a row: one connection", test_connection_reuse),
        ("Dovecot down: deferred, then delivered", test_dovecot_down),
    ])
finally:
    DV.remove()
    import shutil
    shutil.rmtree(RULES_DIR, ignore_errors=True)
suite.finish()
