"""dovecot: a private Dovecot LMTP server for the end-to-end tests.

    dv = dovecot.Dovecot({"alice@tern.test": None, "bob@tern.test": "1K"}).start()
    dv.socket            # the LMTP unix socket
    dv.messages("alice@tern.test")   # [bytes] of the files in its Maildir new/
    dv.stop()

Its own directory under /var/tmp, its own configuration (dovecot -c), a
passwd-file userdb (the keys are full addresses, as Dovecot looks them up;
the value is a quota such as "1K" or None), Maildirs owned by nobody
(Dovecot refuses to deliver as root), quota_full_tempfail = yes so a full
mailbox answers 452 4.2.2, recipient_delimiter "+". Only LMTP on the unix
socket: nothing else listens. Debian's dovecot-lmtpd (scripts/
install-deps.sh installs it; the package's own dovecot is never started).
"""
import os
import re
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

CONF = """\
protocols = lmtp
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
ssl = no
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:{d}/mail/%u
first_valid_uid = 100
mail_plugins = $mail_plugins quota
quota_full_tempfail = yes
recipient_delimiter = +
lmtp_save_to_detail_mailbox = no
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
service lmtp {{
  unix_listener {d}/lmtp {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
plugin {{
  quota = maildir:User quota
}}
"""



def maildir_order(name):
    """Maildir names "TIME.M<usec>P<pid>...": in delivery order by their
    numbers (as text, M99999 would sort after M123456 in the same second)."""
    m = re.match(r"(\d+)\.M(\d+)", name)
    return (int(m.group(1)), int(m.group(2)), name) if m else (0, 0, name)

class Dovecot:
    def __init__(self, users):
        self.users = dict(users)
        self.dir = tempfile.mkdtemp(prefix="tern-e2e-dovecot-", dir="/var/tmp")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "lmtp")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log = os.path.join(self.dir, "dovecot.log")
        self.proc = None
        nobody = pwd.getpwnam("nobody")
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        for sub in ("run", "state", "mail"):
            os.mkdir(os.path.join(self.dir, sub))
        os.chown(os.path.join(self.dir, "mail"), self.uid, self.gid)
        with open(self.conf, "w") as f:
            f.write(CONF.format(d=self.dir))
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            for user, quota in self.users.items():
                extra = f"userdb_quota_rule=*:storage={quota}" if quota else ""
                f.write(f"{user}:{{PLAIN}}x:{self.uid}:{self.gid}::"
                        f"{self.dir}/mail/{user}::{extra}\n")

    def start(self, timeout=10.0):
        out = open(os.path.join(self.dir, "dovecot.out"), "ab")
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=out, start_new_session=True)
        end = time.time() + timeout
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.time() > end:
                raise RuntimeError(f"dovecot did not start: {self.output()}")
            time.sleep(0.05)
        return self

    def output(self):
        text = ""
        for name in ("dovecot.out", "dovecot.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def messages(self, user):
        """The bytes of each message in user's Maildir new/, oldest first."""
        new = os.path.join(self.dir, "mail", user, "new")
        try:
            names = sorted(os.listdir(new), key=maildir_order)
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            with open(os.path.join(new, n), "rb") as f:
                out.append(f.read())
        return out

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
