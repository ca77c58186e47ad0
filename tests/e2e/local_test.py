"""End-to-end tests of the local delivery agent (the "local" role,
doc/local.md): mail to system users created for the test, delivered as
those users into a Maildir spool (mail_spool_directory ending in '/') and
an mbox spool, byte for byte; user+tag and upper case reach the user; an
unknown user bounces 5.1.1; root is delivered as default_privs; a mailbox
the user cannot write is deferred, then delivered; ORCPT gives
X-Original-To:; kill -9 of the local agent in the middle of a delivery is
survived (delivered after the restart, at least once, never torn). Aliases
through the local agent: one alias to two mailboxes, |command and /file
targets run as the alias file's owner (default_privs for root) or the
:include: file's owner, a command's exit 75 deferred and 67 bounced, and a
command target the aliases no longer give is bounced, never run.

Needs root (useradd, the agent switching users).
"""
import os
import pwd
import re
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import wait_until  # noqa: E402

suite = ternlib.Suite("local")

send = ternlib.send_message
ternctl = ternlib.ternctl_run

PID = os.getpid()
USER = f"tlu{PID}"       # the main test user
USER2 = f"tlv{PID}"      # its mailbox directory is made unwritable
USER3 = f"tlw{PID}"      # removed while its message waits: unknown user
NOBODY = pwd.getpwnam("nobody")


useradd = ternlib.useradd
userdel = ternlib.userdel


def spool_dir(prefix):
    """A world-writable, sticky directory, like a mail spool (1777)."""
    d = tempfile.mkdtemp(prefix=f"tern-e2e-localbox-{prefix}-", dir="/var/tmp")
    os.chmod(d, 0o1777)
    return d


RULES_DIR, _files = ternlib.shared_files("local-rules", {"retry_rules": "*  *  F,1h,1s\n"})
MAILDIRS = spool_dir("maildir")
MBOXES = spool_dir("mbox")

COMMON = {
    "local_transport": "local",      # ternlib's default keeps local mail queued
    "default_transport": "error:5.7.1 no relaying in this test",
    "recipient_delimiter": "+",
    "local_recipient_maps": "",      # accept every local part; the agent decides
    "retry_rules": _files["retry_rules"],
    "minimal_backoff_time": "1s",
}
MAILDIR_GROUP = dict(COMMON, mail_spool_directory=MAILDIRS + "/")
MBOX_GROUP = dict(COMMON, mail_spool_directory=MBOXES)


def maildir_new(user):
    return ternlib.maildir_new(MAILDIRS, user)


def wait_new_message(user, before, timeout=10):
    """The path of a file in user's new/ that was not in before."""
    def found():
        extra = [p for p in maildir_new(user) if p not in before]
        return extra[0] if extra else None
    return wait_until(found, timeout)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def sent_line(who, qid, what):
    return (rf"local\[\d+\]: {qid}: to=<{re.escape(who)}>, relay=local, delay=[\d.]+, "
            rf"delays=[\d.]+/0/[\d.]+/[\d.]+, dsn=2\.0\.0, status=sent \({what}\)")


def split_head(data):
    """(Return-Path and Delivered-To lines, our Received header, the rest)
    of a delivered message with LF line ends."""
    lines = data.split(b"\n")
    i = 0
    ours = []
    while i < len(lines) and not lines[i].startswith(b"Received: "):
        ours.append(lines[i])
        i += 1
    j = i + 1
    while j < len(lines) and lines[j].startswith(b"\t"):
        j += 1
    return b"\n".join(ours) + b"\n", b"\n".join(lines[i:j]) + b"\n", b"\n".join(lines[j:])


BODY = (b"line one\r\n"
        b".a line that starts with a dot\r\n"
        b"From the start, a From_ line\r\n"
        b">From quoted already\r\n"
        b"trailing spaces   \r\n"
        b"\tand a tab\r\n"
        b"\xc3\xa9t\xc3\xa9 8-bit\r\n")


def sent_content(sender, rcpt, subject, body):
    """What send_message() puts after our Received header, with LF ends."""
    return (f"From: <{sender}>\nTo: <{rcpt}>\nSubject: {subject}\n\n".encode() +
            body.replace(b"\r\n", b"\n"))


# ---- Maildir in mail_spool_directory -----------------------------------------------------


def test_maildir_exact(s, t):
    before = maildir_new(USER)
    mark = t.log_mark()
    rcpt = f"{USER}@tern.test"
    qid = send(t, "sender@example.org", [rcpt], body=BODY, subject="exact",
               mail_params=" BODY=8BITMIME")
    s.check(t.wait_log(sent_line(rcpt, qid, "delivered to maildir"), mark, 10),
            "Postfix's log line, relay=local, delivered to maildir")
    path = wait_new_message(USER, before)
    if not s.check(path, f"a new file in {MAILDIRS}/{USER}/new/"):
        return
    data = read(path)
    ours, received, rest = split_head(data)
    s.eq(ours, f"Return-Path: <sender@example.org>\nDelivered-To: {rcpt}\n".encode(),
         "Return-Path and Delivered-To first, nothing else")
    s.check(received.startswith(b"Received: from client.test") and qid.encode() in received,
            f"then our Received header: {received[:120]!r}")
    s.eq(rest, sent_content("sender@example.org", rcpt, "exact", BODY),
         "then the message byte for byte, LF line ends, no >From quoting")
    st = os.stat(path)
    uid = pwd.getpwnam(USER).pw_uid
    s.eq(st.st_uid, uid, "the file belongs to the recipient")
    s.eq(oct(st.st_mode & 0o777), "0o600", "mode 0600")
    s.eq(os.stat(os.path.join(MAILDIRS, USER)).st_uid, uid, "so does the Maildir")
    s.check(path.endswith(f",S={len(data)}"), f"S= is the size: {os.path.basename(path)}")
    s.check(re.match(r"^\d+\.M\d+P\d+Q\d+\.", os.path.basename(path)),
            f"TIME.M<usec>P<pid>Q<seq>.HOST: {os.path.basename(path)}")
    s.check(t.wait_log(rf"{qid}: removed", mark), "the message left the queue")


def test_maildir_extension(s, t):
    for rcpt in (f"{USER}+tag@tern.test", f"{USER.upper()}@TERN.test"):
        before = maildir_new(USER)
        mark = t.log_mark()
        qid = send(t, "sender@example.org", [rcpt], subject="tagged")
        s.check(t.wait_log(sent_line(rcpt, qid, "delivered to maildir"), mark, 10),
                f"{rcpt} delivered")
        path = wait_new_message(USER, before)
        if s.check(path, f"{rcpt}: in {USER}'s Maildir"):
            s.check(f"\nDelivered-To: {rcpt}\n".encode() in read(path),
                    f"Delivered-To keeps the address as given: {rcpt}")


def test_orcpt(s, t):
    before = maildir_new(USER)
    mark = t.log_mark()
    rcpt = f"{USER}@tern.test"
    qid = send(t, "sender@example.org", [rcpt], rcpt_params=" ORCPT=rfc822;list+2Bx@tern.test")
    s.check(t.wait_log(sent_line(rcpt, qid, "delivered to maildir"), mark, 10), "delivered")
    path = wait_new_message(USER, before)
    if s.check(path, "in the Maildir"):
        s.check(read(path).startswith(
            f"Return-Path: <sender@example.org>\nX-Original-To: list+x@tern.test\n"
            f"Delivered-To: {rcpt}\n".encode()), "X-Original-To from the ORCPT (xtext decoded)")


def test_unknown_user(s, t):
    # smtpd refuses a user the password database does not know (the
    # address resolver), so the user goes away while the message waits:
    # its first delivery is deferred by a mailbox it cannot write.
    box = os.path.join(MAILDIRS, USER3)
    useradd(USER3)
    os.makedirs(box, exist_ok=True)
    os.chmod(box, 0o755)
    before = maildir_new(USER)
    mark = t.log_mark()
    qid = send(t, f"{USER}@tern.test", [f"{USER3}@tern.test"], subject="to nobody")
    s.check(t.wait_log(rf"{qid}: to=<{USER3}@tern\.test>, relay=local, .*status=deferred", mark,
                       10), "deferred first")
    userdel(USER3)
    ternctl(t, "queue", "flush", qid)
    s.check(t.wait_log(rf"local\[\d+\]: {qid}: to=<{USER3}@tern\.test>, relay=local, "
                       rf"delay=[\d.]+, delays=[\d./]+, dsn=5\.1\.1, status=bounced "
                       rf"\(unknown user: \"{USER3}\"\)", mark, 10),
            "bounced 5.1.1 with Postfix's text")
    s.check(t.wait_log(rf"{qid}: sender non-delivery notification: ", mark), "a DSN is sent")
    path = wait_new_message(USER, before)
    if s.check(path, "the DSN reached the sender's Maildir"):
        dsn = read(path)
        s.check(b"Return-Path: <>\n" in dsn, "from <>")
        s.check(b"Status: 5.1.1" in dsn and b"unknown user" in dsn, "5.1.1 unknown user in it")


def test_root(s, t):
    before = maildir_new("root")
    mark = t.log_mark()
    qid = send(t, "sender@example.org", ["root@tern.test"], subject="for root")
    s.check(t.wait_log(sent_line("root@tern.test", qid, "delivered to maildir"), mark, 10),
            "delivered")
    path = wait_new_message("root", before)
    if s.check(path, f"in {MAILDIRS}/root/new/"):
        s.eq(os.stat(path).st_uid, NOBODY.pw_uid, "written as default_privs (nobody), not root")
        s.eq(os.stat(path).st_gid, NOBODY.pw_gid, "with its group")


def test_unwritable(s, t):
    box = os.path.join(MAILDIRS, USER2)
    os.makedirs(box, exist_ok=True)
    os.chown(box, 0, 0)
    os.chmod(box, 0o755)
    mark = t.log_mark()
    rcpt = f"{USER2}@tern.test"
    qid = send(t, "sender@example.org", [rcpt], subject="later")
    s.check(t.wait_log(rf"local\[\d+\]: {qid}: to=<{rcpt}>, relay=local, .*dsn=4\.2\.0, "
                       rf"status=deferred \(maildir delivery failed: .*Permission denied\)",
                       mark, 10), "deferred 4.2.0: the user cannot write there")
    s.check(qid in t.queue_by_id(), "still in the queue")
    u = pwd.getpwnam(USER2)
    os.chown(box, u.pw_uid, u.pw_gid)
    ternctl(t, "queue", "flush", qid)
    s.check(t.wait_log(sent_line(rcpt, qid, "delivered to maildir"), mark, 15),
            "delivered once the directory is the user's")
    s.check(wait_new_message(USER2, []), "in the Maildir")


# ---- mbox in mail_spool_directory ---------------------------------------------------------


def mbox_path(user):
    return os.path.join(MBOXES, user)


def test_mbox(s, t):
    mark = t.log_mark()
    rcpt = f"{USER}@tern.test"
    path = mbox_path(USER)
    size = os.path.getsize(path) if os.path.exists(path) else 0
    qid = send(t, "sender@example.org", [rcpt], body=BODY, subject="mbox")
    s.check(t.wait_log(sent_line(rcpt, qid, "delivered to mailbox"), mark, 10),
            "delivered to mailbox")
    if not s.check(os.path.exists(path), f"{path} exists"):
        return
    with open(path, "rb") as f:
        f.seek(size)
        data = f.read()
    first, _, data = data.partition(b"\n")
    s.check(re.match(rb"^From sender@example\.org  \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$",
                     first), f"From_ line with two spaces before the date: {first!r}")
    ours, received, rest = split_head(data)
    s.eq(ours, f"Return-Path: <sender@example.org>\nDelivered-To: {rcpt}\n".encode(),
         "then Return-Path and Delivered-To")
    s.check(received.startswith(b"Received: from client.test"), "then our Received header")
    want = sent_content("sender@example.org", rcpt, "mbox", BODY)
    want = want.replace(b"\nFrom the start", b"\n>From the start") + b"\n"
    s.eq(rest, want, "the message with >From quoting (only of 'From '), and a blank line")
    st = os.stat(path)
    s.eq(st.st_uid, pwd.getpwnam(USER).pw_uid, "the mbox belongs to the recipient")
    s.eq(oct(st.st_mode & 0o777), "0o600", "mode 0600")


def local_agent_pid(t, timeout=5):
    def find():
        for c in ternlib.children(t.master_pid):
            if b"--role=local" in ternlib.cmdline(c):
                return c
        return None
    return wait_until(find, timeout)


def test_kill_mid_delivery(s, t):
    rcpt = f"{USER}@tern.test"
    path = mbox_path(USER)
    lock = path + ".lock"
    agent = local_agent_pid(t)
    if not s.check(agent, "a local agent runs"):
        return
    # A dotlock the recipient cannot remove: the delivery waits for it
    # (20 attempts, 1 s apart).
    with open(lock, "w"):
        pass
    os.chmod(lock, 0o644)
    mark = t.log_mark()
    procs = []
    try:
        qid = send(t, "sender@example.org", [rcpt], subject=f"survives {PID}")
        workers = wait_until(lambda: ternlib.children(agent), 10) or []
        s.check(workers, "a delivery process runs for the job")
        time.sleep(1.5)
        procs = workers + [g for w in workers for g in ternlib.children(w)]
        s.check(not re.search(rf"{qid}: to=", t.log_since(mark)), "no result yet (locked)")
        os.kill(agent, signal.SIGKILL)
        s.check(t.wait_log(rf"warning: process local pid {agent} killed by signal 9", mark, 5),
                "the master saw the agent die")
        s.check(t.wait_log(rf"{qid}: lost the delivery agent local\[{agent}\]", mark, 5),
                "qmgr gives the recipient back")
        s.check(t.wait_log(r"agent local\[\d+\] connected", mark, 10), "a new agent connects")
    finally:
        os.unlink(lock)
    ternctl(t, "queue", "flush", qid)
    new = t.wait_log(r"local\[(\d+)\]: " + qid + r": to=<" + re.escape(rcpt) +
                     r">, relay=local, .*status=sent \(delivered to mailbox\)", mark, 30)
    s.check(new and int(new.group(1)) != agent, "delivered by the new agent")
    s.check(wait_until(lambda: qid not in t.queue_by_id(), 10), "and removed from the queue")
    # The old agent's delivery in hand runs to its end (a second copy).
    s.check(wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in procs), 25),
            "the old agent's delivery processes ended")
    data = read(path)
    copies = data.count(f"Subject: survives {PID}\n".encode())
    s.check(copies >= 1, f"in the mbox ({copies} copies: at least once)")
    ternlib.log(f"    {copies} copies in the mbox (the orphaned delivery may finish too)")
    # Every copy is whole: each From_ line starts a message ending in the body.
    msgs = re.split(rb"(?m)^From sender@example\.org  ", data)
    whole = [m for m in msgs if f"Subject: survives {PID}\n".encode() in m]
    s.check(all(m.endswith(b"\nhello\n\n") for m in whole), "no torn copy")



# ---- aliases: two mailboxes, commands and files ---------------------------------------------

OUT = spool_dir("alias-out")           # commands and files write here (1777)
ALIAS_DIR = tempfile.mkdtemp(prefix="tern-e2e-alias-", dir="/var/tmp")
os.chmod(ALIAS_DIR, 0o755)
ALIASES = os.path.join(ALIAS_DIR, "aliases")
INCLUDE = os.path.join(ALIAS_DIR, "include")
EMPTY = os.path.join(ALIAS_DIR, "empty")


def write_aliases(changing_target):
    with open(ALIASES, "w") as f:
        f.write(f"""# aliases(5), owned by root: commands and files run as default_privs
two: {USER},
\t{USER2}
piped: "|/usr/bin/tee {OUT}/piped.out > /dev/null; /usr/bin/id -u > {OUT}/piped.uid"
filed: {OUT}/filed.mbox
mixed: {USER}, "|/usr/bin/id -u > {OUT}/mixed.uid"
included: :include:{INCLUDE}
later: "|exit 75"
nouser: "|exit 67"
changing: {changing_target}
empty: :include:{EMPTY}
""")
    os.chmod(ALIASES, 0o644)


def alias_setup():
    write_aliases('"|exit 75"')
    with open(EMPTY, "w") as f:
        f.write("# nobody on this list yet\n")
    os.chmod(EMPTY, 0o644)
    with open(INCLUDE, "w") as f:
        f.write(f'"|/usr/bin/id -u > {OUT}/included.uid"\n')
    u = pwd.getpwnam(USER)
    os.chown(INCLUDE, u.pw_uid, u.pw_gid)
    os.chmod(INCLUDE, 0o644)


def read_when(path, timeout=10):
    return wait_until(lambda: os.path.exists(path) and os.path.getsize(path) > 0 and read(path),
                      timeout)


def test_alias_two_mailboxes(s, t):
    before = {u: maildir_new(u) for u in (USER, USER2)}
    mark = t.log_mark()
    qid = send(t, "sender@example.org", ["two@tern.test"], subject="to two")
    for u in (USER, USER2):
        s.check(t.wait_log(sent_line(f"{u}@tern.test", qid, "delivered to maildir"), mark, 10),
                f"{u} delivered through the local agent")
        path = wait_new_message(u, before[u])
        if s.check(path, f"in {u}'s Maildir"):
            s.check(b"\nX-Original-To: two@tern.test\n" in read(path),
                    "X-Original-To: the alias the sender used")
            s.eq(os.stat(path).st_uid, pwd.getpwnam(u).pw_uid, f"written as {u}")


def test_alias_command(s, t):
    mark = t.log_mark()
    qid = send(t, "sender@example.org", ["piped@tern.test"], subject="to a command")
    s.check(t.wait_log(rf"local\[\d+\]: {qid}: to=<piped@tern\.test>, relay=local, .*"
                       rf"dsn=2\.0\.0, status=sent \(delivered to command: /usr/bin/tee ", mark,
                       10), "Postfix's log line: delivered to command")
    data = read_when(os.path.join(OUT, "piped.out"))
    if s.check(data, "the command got the message"):
        s.check(data.startswith(b"Return-Path: <sender@example.org>\n") and
                b"Subject: to a command\n" in data, "Return-Path first, then the message")
    uid = read_when(os.path.join(OUT, "piped.uid"))
    s.eq(uid and int(uid), NOBODY.pw_uid, "run as default_privs: the alias file is root's")


def test_alias_file(s, t):
    mark = t.log_mark()
    path = os.path.join(OUT, "filed.mbox")
    qid = send(t, "sender@example.org", ["filed@tern.test"], subject="to a file")
    s.check(t.wait_log(rf"{qid}: to=<filed@tern\.test>, relay=local, .*status=sent "
                       rf"\(delivered to file: {re.escape(path)}\)", mark, 10),
            "delivered to file")
    data = read_when(path)
    if s.check(data, f"{path} written"):
        s.check(data.startswith(b"From sender@example.org  ") and b"Subject: to a file\n" in data,
                "mbox format: From_ line, then the message")
        s.eq(os.stat(path).st_uid, NOBODY.pw_uid, "created by default_privs")


def test_alias_mixed_and_include(s, t):
    # Two RCPTs, three recipients: smtpd_recipient_limit = 2 counts the
    # RCPT commands, as Postfix's does (send() fails on anything but 250).
    before = maildir_new(USER)
    mark = t.log_mark()
    qid = send(t, "sender@example.org", ["mixed@tern.test", "included@tern.test"],
               subject="mixed")
    s.check(t.wait_log(sent_line(f"{USER}@tern.test", qid, "delivered to maildir"), mark, 10),
            "the address member delivered")
    s.check(wait_new_message(USER, before), "into the Maildir")
    uid = read_when(os.path.join(OUT, "mixed.uid"))
    s.eq(uid and int(uid), NOBODY.pw_uid, "the command member ran as default_privs")
    uid = read_when(os.path.join(OUT, "included.uid"))
    s.eq(uid and int(uid), pwd.getpwnam(USER).pw_uid,
         "a command from an :include: file runs as the file's owner")
    s.check(t.wait_log(rf"{qid}: removed", mark, 10), "all three done")


def test_alias_empty_include(s, t):
    mark = t.log_mark()
    qid = send(t, "sender@example.org", ["empty@tern.test"], subject="to no one")
    s.check(t.wait_log(rf"{qid}: discarded: no recipient left after alias expansion", mark, 10),
            "250, then discarded: an empty :include: file delivers to no one (Postfix: success)")
    s.check(qid not in t.queue_by_id(), "nothing left in the queue")


def test_alias_command_status(s, t):
    # The sender is an alias too: qmgr's bounce goes through the aliases.
    before = {u: maildir_new(u) for u in (USER, USER2)}
    mark = t.log_mark()
    qid = send(t, "two@tern.test", ["later@tern.test", "nouser@tern.test"], subject="codes")
    s.check(t.wait_log(rf"{qid}: to=<later@tern\.test>, relay=local, .*dsn=4\.3\.0, "
                       rf"status=deferred", mark, 10), "exit 75: deferred 4.3.0")
    s.check(t.wait_log(rf"{qid}: to=<nouser@tern\.test>, relay=local, .*dsn=5\.1\.1, "
                       rf"status=bounced", mark, 10), "exit 67: bounced 5.1.1")
    for u in (USER, USER2):
        path = wait_new_message(u, before[u])
        if s.check(path, f"the bounce to the sender alias two@ reached {u}"):
            data = read(path)
            s.check(b"Return-Path: <>\n" in data and b"\nX-Original-To: two@tern.test\n" in data
                    and b"Status: 5.1.1" in data, "a DSN, with the alias as X-Original-To")
    ternctl(t, "queue", "delete", qid)


def test_alias_changed(s, t):
    before = maildir_new(USER)
    mark = t.log_mark()
    qid = send(t, f"{USER}@tern.test", ["changing@tern.test"], subject="changing")
    s.check(t.wait_log(rf"{qid}: to=<changing@tern\.test>, relay=local, .*status=deferred",
                       mark, 10), "deferred by exit 75")
    write_aliases(f"{USER}")        # the command is gone from the aliases
    ternctl(t, "queue", "flush", qid)
    s.check(t.wait_log(rf"{qid}: to=<changing@tern\.test>, relay=local, .*dsn=5\.3\.0, "
                       rf"status=bounced \(alias changing@tern\.test no longer delivers to "
                       rf"command \"exit 75\"\)", mark, 10),
            "the agent finds the command no more in the aliases: bounced, not run")
    path = wait_new_message(USER, before)
    s.check(path and b"no longer delivers" in read(path), "the sender got the DSN")
    write_aliases('"|exit 75"')


ALIAS_GROUP = dict(MAILDIR_GROUP, alias_maps=f"texthash:{ALIASES}", allow_mail_to_commands="yes",
                   allow_mail_to_files="yes", smtpd_recipient_limit="2")

try:
    if os.geteuid() != 0:
        suite._count("local agent", ["needs root (useradd, deliveries as other users)"])
    else:
        useradd(USER)
        useradd(USER2)
        suite.group("maildir", MAILDIR_GROUP, [
            ("Maildir byte-exact, as the recipient, Postfix's log line", test_maildir_exact),
            ("user+tag and upper case reach the user; Delivered-To as given",
             test_maildir_extension),
            ("ORCPT gives X-Original-To:", test_orcpt),
            ("unknown user: bounced 5.1.1, the DSN delivered locally", test_unknown_user),
            ("root is delivered as default_privs", test_root),
            ("a mailbox directory the user cannot write: deferred, then delivered",
             test_unwritable),
        ])
        alias_setup()
        suite.group("aliases", ALIAS_GROUP, [
            ("an alias to two local mailboxes", test_alias_two_mailboxes),
            ("|command as default_privs, with the message on stdin", test_alias_command),
            ("/file: mbox format, as default_privs", test_alias_file),
            ("address and command members; :include: runs as the file's owner",
             test_alias_mixed_and_include),
            ("a command's exit 75 defers, 67 bounces 5.1.1", test_alias_command_status),
            ("an empty :include: list: accepted and discarded", test_alias_empty_include),
            ("a command the aliases no longer give is bounced, not run", test_alias_changed),
        ])
        suite.group("mbox", MBOX_GROUP, [
            ("mbox: From_ line, >From quoting, as the recipient", test_mbox),
            ("kill -9 of the local agent mid-delivery: delivered after the restart",
             test_kill_mid_delivery),
        ])
finally:
    for u in (USER, USER2, USER3):
        userdel(u)
    for d in (RULES_DIR, MAILDIRS, MBOXES, OUT, ALIAS_DIR):
        shutil.rmtree(d, ignore_errors=True)
suite.finish()
