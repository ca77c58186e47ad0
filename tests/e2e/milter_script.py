"""A scripted test milter for milter_test.py, on Debian's pymilter (built on
sendmail's libmilter): what it does is decided by the SMTP conversation.

  HELO reject-helo.test          -> reject at HELO
  MAIL FROM:<reject-mail@...>    -> reject at MAIL; <tempfail-mail@...> tempfail
  RCPT TO:<reject-rcpt@...>      -> 550 5.7.1 custom reply at RCPT
  MAIL FROM:<reject-data@...>    -> reject at DATA
  Subject: reject | tempfail | discard | replycode | headers | rcpts |
           sender | body | quarantine | macros  -> that at end of message

Usage: milter_script.py SOCKET (inet:PORT@127.0.0.1 or unix:/path).
"""
import sys

import Milter

MACROS = ("i", "j", "_", "{daemon_name}", "{client_addr}", "{client_name}", "{auth_type}",
          "{auth_authen}", "{mail_addr}", "{rcpt_addr}", "v")


class ScriptMilter(Milter.Base):
    def __init__(self):
        self.subject = ""
        self.sender = ""
        self.seen = {}

    def _note(self):
        for m in MACROS:
            v = self.getsymval(m)
            if v is not None:
                self.seen[m] = v

    def connect(self, hostname, family, hostaddr):
        self._note()
        return Milter.CONTINUE

    def hello(self, name):
        self._note()
        if name == "reject-helo.test":
            return Milter.REJECT
        return Milter.CONTINUE

    def envfrom(self, mailfrom, *params):
        self._note()
        self.subject = ""
        self.sender = mailfrom
        self.params = " ".join(params)
        if mailfrom.startswith("<reject-mail@"):
            return Milter.REJECT
        if mailfrom.startswith("<tempfail-mail@"):
            return Milter.TEMPFAIL
        return Milter.CONTINUE

    def envrcpt(self, to, *params):
        self._note()
        if to.startswith("<reject-rcpt@"):
            self.setreply("550", "5.7.1", "recipient refused by the test milter")
            return Milter.REJECT
        return Milter.CONTINUE

    def data(self):
        self._note()
        if self.sender.startswith("<reject-data@"):
            return Milter.REJECT
        return Milter.CONTINUE

    def header(self, name, value):
        if name.lower() == "subject":
            self.subject = value.strip()
        return Milter.CONTINUE

    def eom(self):
        self._note()
        act = self.subject
        if act == "reject":
            return Milter.REJECT
        if act == "tempfail":
            return Milter.TEMPFAIL
        if act == "discard":
            return Milter.DISCARD
        if act == "replycode":
            self.setreply("554", "5.7.9", "first line of the refusal", "second line")
            return Milter.REJECT
        if act == "headers":
            self.addheader("X-Added", "added by the milter")
            self.addheader("X-Inserted", "inserted at the top", 0)
            self.chgheader("X-Change", 2, "changed second")
            self.chgheader("X-Delete", 1, None)
        elif act == "rcpts":
            self.addrcpt("<added@tern.test>")
            self.delrcpt("<removed@tern.test>")
        elif act == "sender":
            self.chgfrom("<new-sender@tern.test>")
        elif act == "body":
            self.replacebody(b"replaced body line 1\r\nreplaced line 2\r\n")
        elif act == "quarantine":
            self.quarantine("held by the test milter")
        elif act == "macros":
            self.addheader("X-Macros", " ".join(f"{k}={v}" for k, v in sorted(self.seen.items())))
            self.addheader("X-Mail-Params", self.params or "-")
        return Milter.ACCEPT


def main():
    Milter.factory = ScriptMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.ADDRCPT | Milter.DELRCPT |
                     Milter.CHGBODY | Milter.QUARANTINE | Milter.CHGFROM)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    Milter.runmilter("ternscript", sys.argv[1], 60)


if __name__ == "__main__":
    main()
