"""The master process: configuration check, privilege drop, supervision,
reload without dropping sessions, one master per spool, and a full disk
answered with 452 4.3.1 without losing what was accepted."""
import os
import re
import signal
import subprocess
import time

import ternlib
from ternlib import TERND, TestFailure, send_raw_message, wait_until

suite = ternlib.Suite("daemon")


def test_check_config(s, t):
    r = subprocess.run([TERND, "-n", "-c", t.conf], capture_output=True, text=True, timeout=30)
    s.eq(r.returncode, 0, "ternd -n on a valid file")
    bad = os.path.join(t.dir, "bad.conf")
    with open(bad, "w") as f:
        f.write("myhostname = a.test\nmyhostnme = b\nmessage_size_limit = lots\n"
                "smtpd_recipient_restrictions = permit_mynetworks, rejct\n"
                "submission_default_rbl_reply = $rbl_code ${rbl_reason?; $rbl_resaon}\n")
    r = subprocess.run([TERND, "-n", "-c", bad], capture_output=True, text=True, timeout=30)
    s.eq(r.returncode, 1, "ternd -n on a bad file")
    lines = r.stderr.strip().splitlines()
    s.check(any(re.match(re.escape(bad) + r":2: .*myhostname", l) for l in lines),
            f"line 2 names the closest parameter: {r.stderr!r}")
    s.check(any(l.startswith(bad + ":3: ") for l in lines), f"line 3 reported: {r.stderr!r}")
    s.check(any(l.startswith(bad + ":4: ") and "reject" in l for l in lines),
            f"line 4 reported: {r.stderr!r}")
    s.check(bad + ':5: submission_default_rbl_reply: unknown name "rbl_resaon"' in lines,
            f"a bad reply template is caught by ternd -n: {r.stderr!r}")
    r = subprocess.run([TERND, "-c", bad, "-f"], capture_output=True, text=True, timeout=30)
    s.eq(r.returncode, 78, "ternd refuses to start on a bad file (EX_CONFIG)")
    # A malformed retry_rules file is a FILE:LINE: error too.
    rules = os.path.join(t.dir, "retry.rules")
    with open(rules, "w") as f:
        f.write("*  *  F,2h,15m\nexample.org  rcpt_4x5  F,1h,10m\n")
    conf = os.path.join(t.dir, "rules.conf")
    with open(conf, "w") as f:
        f.write(f"retry_rules = {rules}\n")
    r = subprocess.run([TERND, "-n", "-c", conf], capture_output=True, text=True, timeout=30)
    s.eq(r.returncode, 1, "ternd -n with a bad retry_rules file")
    s.check(r.stderr.startswith(rules + ":2: "), f"the rules file's line 2 is named: {r.stderr!r}")


def status_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split()[1:]
    return None


def test_privileges(s, t):
    pid = t.smtpd_pid()
    s.check(pid is not None, "an smtpd child runs")
    if pid is None:
        return
    if os.geteuid() == 0:
        import pwd
        tern = pwd.getpwnam("tern")
        uids = status_field(pid, "Uid")
        gids = status_field(pid, "Gid")
        s.eq(set(uids), {str(tern.pw_uid)}, "smtpd real/effective/saved/fs uid")
        s.eq(set(gids), {str(tern.pw_gid)}, "smtpd gids")
        s.eq(status_field(pid, "Groups"), [str(tern.pw_gid)], "smtpd supplementary groups")
        s.eq(status_field(t.master_pid, "Uid")[0], "0", "the master keeps root")


def test_restart_after_kill(s, t):
    old = t.smtpd_pid()
    mark = t.log_mark()
    os.kill(old, signal.SIGKILL)
    s.check(t.wait_log(rf"warning: process smtpd pid {old} killed by signal 9", mark, 5),
            "the death is logged")
    new = wait_until(lambda: (p := t.smtpd_pid(0.2)) and p != old and p, 10)
    s.check(bool(new), "a new smtpd runs")
    s.check(t.wait_greeting(10), "and answers")


def test_reload(s, t):
    # A session open across the reload keeps working, new sessions see the
    # new banner.
    c = t.raw()
    s.reply(c.cmd("EHLO before.test"), 250, what="EHLO before reload")
    with open(t.conf, "a") as f:
        f.write("smtpd_banner = $myhostname ESMTP reloaded\n")
    mark = t.log_mark()
    os.kill(t.master_pid, signal.SIGHUP)
    s.check(t.wait_log(r"tern/smtpd\[\d+\]: reload: configuration", mark, 5), "smtpd reloaded")
    s.reply(c.cmd("MAIL FROM:<a@tern.test>"), 250, "2.1.0", "MAIL on the old session")
    s.reply(c.cmd("RCPT TO:<b@tern.test>"), 250, "2.1.5", "RCPT on the old session")
    s.reply(c.cmd("DATA"), 354, what="DATA on the old session")
    c.send(b"Subject: across reload\r\n\r\nbody\r\n.\r\n")
    s.reply(c.reply(), 250, "2.0.0", "message across the reload")
    c.cmd("QUIT")
    c.close()
    with t.raw() as c2:
        s.check("reloaded" in c2.greeting.text, f"new banner: {c2.greeting.text!r}")
    # A broken file is reported and the old one stays in force.
    with open(t.conf, "a") as f:
        f.write("smtpd_timeout = forever\n")
    mark = t.log_mark()
    os.kill(t.master_pid, signal.SIGHUP)
    s.check(t.wait_log(r"error: .*tern.conf:\d+: .*smtpd_timeout", mark, 5),
            "the bad line is logged with FILE:LINE")
    s.check(t.wait_log(r"keeping the one in force", mark, 5), "the old configuration stays")
    with t.raw() as c3:
        s.check("reloaded" in c3.greeting.text, "still serving with the last good file")
    with open(t.conf) as f:
        lines = [l for l in f if not l.startswith("smtpd_timeout")]
    with open(t.conf, "w") as f:
        f.writelines(lines)


def test_reload_moves_listener(s, t):
    old_port = t.port
    new_port = ternlib.free_ports(1)[0]
    c = t.raw()
    s.reply(c.cmd("EHLO before.test"), 250, what="EHLO on the old port")
    with open(t.conf) as f:
        text = f.read()
    with open(t.conf, "w") as f:
        f.write(text.replace(f"smtpd_listen = 127.0.0.1:{old_port}",
                             f"smtpd_listen = 127.0.0.1:{new_port}"))
    mark = t.log_mark()
    os.kill(t.master_pid, signal.SIGHUP)
    s.check(t.wait_log(r"reload: now listening on 3 sockets", mark, 5),
            "smtpd took the new sockets (smtp, submission, the sendmail socket)")
    t.port = new_port
    s.check(t.wait_greeting(5), "the new port answers")
    try:
        with ternlib.RawSMTP(old_port, timeout=2):
            s.check(False, "the old port still accepts connections")
    except (OSError, EOFError, TestFailure):
        pass
    s.reply(c.cmd("MAIL FROM:<a@tern.test>"), 250, "2.1.0", "the open session goes on")
    s.reply(c.cmd("QUIT"), 221, what="QUIT on the open session")
    c.close()


def test_one_master_per_spool(s, t):
    r = subprocess.run([TERND, "-f", "-c", t.conf], capture_output=True, text=True, timeout=30)
    s.check(r.returncode != 0, "a second ternd on the same spool refuses to run")
    s.check("already running" in (r.stderr + t.log_text()),
            f"and says why: {r.stderr.strip()!r}")


suite.group("master", {}, [
    ("ternd -n: valid, invalid with FILE:LINE, EX_CONFIG", test_check_config),
    ("smtpd runs as mail_owner, master as root", test_privileges),
    ("a killed smtpd is logged and restarted", test_restart_after_kill),
    ("SIGHUP reload keeps sessions; a bad file keeps the old one", test_reload),
    ("a reload that moves the listener keeps open sessions", test_reload_moves_listener),
    ("one master per spool", test_one_master_per_spool),
])


# ---- a full disk: 452 4.3.1, and nothing accepted is lost -------------------

def test_disk_full(s, t):
    accepted = []
    body = b"Subject: fill\r\n\r\n" + (b"x" * 76 + b"\r\n") * 400  # about 31 KiB
    final = None
    for i in range(400):
        final, qid = send_raw_message(t, "a@tern.test", ["b@tern.test"],
                                      body.replace(b"fill", b"fill %d" % i))
        if final.code != 250:
            break
        accepted.append(qid)
    s.check(len(accepted) > 5, f"some messages fit first ({len(accepted)})")
    s.check(final is not None and final.code in (452, 451) and final.code == 452,
            f"a full disk answers 452 4.3.1: {final}")
    s.eq(final.enh(), "4.3.1", "enhanced code")
    q = t.queue_by_id()
    s.check(all(qid in q for qid in accepted), "every accepted message is in the queue")
    msg = os.path.join(t.params["queue_directory"], "msg")
    s.eq(len(os.listdir(msg)), len(q), "no partial message file is left behind")


def disk_full_group():
    if os.geteuid() != 0:
        suite._count("disk full", ["needs root to mount a small tmpfs"])
        return
    spool = "/var/tmp/tern-e2e-diskfull-spool"
    os.makedirs(spool, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=755", "tmpfs", spool], check=True)
    try:
        suite.group("disk full", {"queue_directory": spool, "spool_map_size": "256k"},
                    [("452 4.3.1 when the spool's disk is full", test_disk_full)])
    finally:
        subprocess.run(["umount", "-l", spool])
        os.rmdir(spool)


disk_full_group()
suite.finish()
