#!/usr/bin/python3
"""SMTP sessions against a real ternd: replies, spool contents, log lines.

Three daemons, one after the other: default settings; small limits; and
smtpd_forbid_bare_newline = reject. Clients are smtplib and raw sockets
(where the exact bytes matter: dot-stuffing, pipelining, smuggling, BDAT).
"""
import os
import random
import re
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import QUEUED_RE, QUEUE_ID_RE, TestFailure, dot_stuff, send_raw_message  # noqa: E402

DEFAULT_SIZE_LIMIT = 10240000
LOG_PREFIX = r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ tern/smtpd\[\d+\]: "


def new_ids(t, before):
    """Envelopes in the queue now whose ids are not in before (a set)."""
    return {e["id"]: e for e in t.queue() if e.get("id") not in before}


def queued_id(s, reply, what):
    m = QUEUED_RE.search(reply.text if hasattr(reply, "text") else reply)
    s.check(m, f"{what}: no 'queued as QUEUEID' in {reply!r}")
    return m.group(1) if m else None


def check_spooled(s, t, qid, content, sender=None, rcpts=None, helo=None):
    """qid is in the spool with content byte for byte after our Received."""
    if not s.check(qid and QUEUE_ID_RE.match(qid), f"queue id {qid!r} is 14 upper-case hex"):
        return
    q = t.queue_by_id()
    env = q.get(qid)
    if not s.check(env is not None, f"{qid} listed by ternctl queue --json"):
        return
    path = os.path.join(t.msg_dir(), qid)
    if not s.check(os.path.exists(path), f"{path} exists"):
        return
    data = t.msg_bytes(qid)
    received, got = ternlib.split_received(data)
    s.check(b"tern.test" in received, f"Received header names tern.test: {received[:200]!r}")
    if got != content:
        i = next((k for k in range(min(len(got), len(content))) if got[k] != content[k]),
                 min(len(got), len(content)))
        s.check(False, f"{qid}: stored content differs at byte {i} (stored {len(got)} bytes, "
                       f"sent {len(content)}): stored {got[max(0, i - 20):i + 40]!r}, "
                       f"sent {content[max(0, i - 20):i + 40]!r}")
    if sender is not None:
        s.eq(env.get("sender"), sender, f"{qid} envelope sender")
    if rcpts is not None:
        s.eq(sorted(env.get("recipients") or []), sorted(rcpts), f"{qid} envelope recipients")
    if helo is not None:
        s.eq(env.get("helo"), helo, f"{qid} envelope helo")
    s.eq(env.get("client_addr"), "127.0.0.1", f"{qid} envelope client_addr")
    s.check(env.get("size") in (len(data), len(content)),
            f"{qid} envelope size {env.get('size')!r} is the file's ({len(data)}) "
            f"or the content's ({len(content)})")
    s.check(isinstance(env.get("arrival"), (int, float, str)) and env.get("arrival") != "",
            f"{qid} envelope arrival {env.get('arrival')!r}")


# A message whose bytes test the transparency of DATA.
EXACT = (b"From: <a@tern.test>\r\n"
         b"To: <b@tern.test>\r\n"
         b"Subject: byte for byte\r\n"
         b"Message-ID: <exact.1@client.test>\r\n"
         b"\r\n"
         b".leading dot\r\n"
         b"..two leading dots\r\n"
         b".\r\n"
         b"the line above was a lone dot; next a dot and a space\r\n"
         b". \r\n"
         b"...\r\n"
         b"8-bit: " + bytes(range(0x80, 0x100)) + b"\r\n"
         b"UTF-8: \xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa6\r\n"
         b"trailing spaces   \r\n"
         b"\ttab first\r\n"
         b"\r\n"
         b"\r\n"
         b"From the start of a line\r\n"
         b"last line\r\n")


def big_body(nbytes, seed=7):
    rng = random.Random(seed)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    lines = [b"Subject: two megabytes", b"MIME-Version: 1.0", b""]
    size = 0
    n = 0
    while size < nbytes:
        n += 1
        if n % 97 == 0:
            line = b"." + bytes(rng.choice(alphabet) for _ in range(40))
        elif n % 101 == 0:
            line = b""
        elif n % 89 == 0:
            line = bytes(rng.randrange(0x80, 0x100) for _ in range(60))
        else:
            line = bytes(rng.choice(alphabet) for _ in range(76))
        lines.append(line)
        size += len(line) + 2
    return b"\r\n".join(lines) + b"\r\n"


# ---- default settings -------------------------------------------------------------------

def test_master_log(s, t):
    m = t.wait_log(r"tern/master\[(\d+)\]: daemon started -- version \S+, configuration ", 0, 5)
    if s.check(m, "master logs 'daemon started -- version ..., configuration ...'"):
        s.eq(int(m.group(1)), t.master_pid, "pid in the master's log line")
    s.check(t.smtpd_pid() is not None, "an smtpd child (--role=smtpd) of the master")


def test_ehlo(s, t, size=DEFAULT_SIZE_LIMIT):
    with t.raw() as c:
        s.check(c.greeting.lines[-1].startswith("220 "), f"greeting {c.greeting}")
        s.check("tern.test" in c.greeting.text, f"greeting names myhostname: {c.greeting}")
        r = c.cmd("EHLO client.test")
        s.reply(r, 250, what="EHLO")
        kws = {ln[4:].split(" ")[0].upper(): ln[4:] for ln in r.lines[1:]}
        for k in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN",
                  "CHUNKING"):
            s.check(k in kws, f"EHLO advertises {k}: {r.lines}")
        s.eq(kws.get("SIZE"), f"SIZE {size}", "EHLO SIZE keyword")
        s.check(r.lines[0].startswith("250-tern.test"), f"first EHLO line {r.lines[0]!r}")
        r = c.cmd("QUIT")
        s.reply(r, 221, "2.0.0", "QUIT")
        s.check(c.closed(), "connection closed after QUIT")


def test_exact_raw(s, t):
    r, qid = send_raw_message(t, "a@tern.test", ["b@tern.test"], dot_stuff(EXACT),
                              mail_params=" BODY=8BITMIME")
    s.reply(r, 250, "2.0.0", "end of DATA")
    check_spooled(s, t, qid, EXACT, "a@tern.test", ["b@tern.test"], "client.test")


def test_exact_smtplib(s, t):
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="lib.client.test", timeout=10) as c:
        code, _ = c.ehlo()
        s.eq(code, 250, "EHLO")
        code, _ = c.mail("a@tern.test", ["BODY=8BITMIME"])
        s.eq(code, 250, "MAIL BODY=8BITMIME")
        code, _ = c.rcpt("c@tern.test")
        s.eq(code, 250, "RCPT")
        code, resp = c.data(EXACT)
        s.eq(code, 250, "end of DATA")
        qid = queued_id(s, resp.decode(), "DATA reply")
    check_spooled(s, t, qid, EXACT, "a@tern.test", ["c@tern.test"], "lib.client.test")


def test_long_body(s, t):
    body = big_body(2 * 1024 * 1024)
    r, qid = send_raw_message(t, "big@tern.test", ["b@tern.test"], dot_stuff(body),
                              mail_params=f" SIZE={len(body)} BODY=8BITMIME")
    s.reply(r, 250, "2.0.0", "end of DATA for 2 MB")
    check_spooled(s, t, qid, body, "big@tern.test", ["b@tern.test"])


def test_several_in_session(s, t):
    sent = []
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="multi.client.test", timeout=10) as c:
        c.ehlo()
        for i in range(4):
            content = (f"Subject: number {i}\r\n\r\nmessage {i} of one session\r\n"
                       f".dot {i}\r\n").encode()
            rcpts = [f"r{i}-{k}@tern.test" for k in range(i + 1)]
            s.eq(c.mail(f"s{i}@tern.test")[0], 250, f"MAIL #{i}")
            for rc in rcpts:
                s.eq(c.rcpt(rc)[0], 250, f"RCPT {rc}")
            code, resp = c.data(content)
            s.eq(code, 250, f"DATA #{i}")
            sent.append((queued_id(s, resp.decode(), f"DATA #{i}"), content, f"s{i}@tern.test",
                         rcpts))
        s.eq(c.rset()[0], 250, "RSET")
        s.eq(c.noop()[0], 250, "NOOP")
    ids = [x[0] for x in sent]
    s.eq(len(set(ids)), 4, f"four distinct queue ids {ids}")
    for qid, content, snd, rcpts in sent:
        check_spooled(s, t, qid, content, snd, rcpts, "multi.client.test")


def test_pipelining(s, t):
    c1 = b"Subject: pipelined 1\r\n\r\nfirst\r\n"
    c2 = b"Subject: pipelined 2\r\n\r\nsecond\r\n..dot\r\n"
    with t.raw() as c:
        s.reply(c.cmd("EHLO pipe.client.test"), 250, what="EHLO")
        c.send(b"MAIL FROM:<p@tern.test>\r\nRCPT TO:<x@tern.test>\r\n"
               b"RCPT TO:<a@@bad.test>\r\nRCPT TO:<y@tern.test>\r\nDATA\r\n")
        rs = c.replies(5)
        s.eq([r.code for r in rs], [250, 250, 501, 250, 354],
             f"replies to MAIL RCPT RCPT(bad) RCPT DATA in one write: {rs}")
        s.eq(rs[2].enh(), "5.1.3", f"bad RCPT enhanced code ({rs[2]})")
        # The end of data, the next transaction and DATA in one write.
        c.send(dot_stuff(c1) + b".\r\nMAIL FROM:<q@tern.test>\r\n"
               b"RCPT TO:<z@tern.test>\r\nDATA\r\n")
        rs = c.replies(4)
        s.eq([r.code for r in rs], [250, 250, 250, 354],
             f"replies to .CRLF MAIL RCPT DATA in one write: {rs}")
        id1 = queued_id(s, rs[0], "first message")
        c.send(dot_stuff(c2) + b".\r\nQUIT\r\n")
        rs = c.replies(2)
        s.eq([r.code for r in rs], [250, 221], f"replies to .CRLF QUIT in one write: {rs}")
        id2 = queued_id(s, rs[0], "second message")
        s.check(c.closed(), "closed after QUIT")
    check_spooled(s, t, id1, c1, "p@tern.test", ["x@tern.test", "y@tern.test"],
                  "pipe.client.test")
    check_spooled(s, t, id2, c2, "q@tern.test", ["z@tern.test"], "pipe.client.test")


def test_pipelined_session_start(s, t):
    """EHLO, MAIL, RCPT and DATA in the very first write after the greeting."""
    content = b"Subject: all at once\r\n\r\nbody\r\n"
    with t.raw() as c:
        c.send(b"EHLO fast.client.test\r\nMAIL FROM:<f@tern.test>\r\n"
               b"RCPT TO:<g@tern.test>\r\nDATA\r\n")
        rs = c.replies(4)
        s.eq([r.code for r in rs], [250, 250, 250, 354], f"replies {rs}")
        c.send(dot_stuff(content) + b".\r\nQUIT\r\n")
        rs = c.replies(2)
        s.eq([r.code for r in rs], [250, 221], f"replies {rs}")
    check_spooled(s, t, queued_id(s, rs[0], "DATA"), content, "f@tern.test", ["g@tern.test"])


def test_sequence_errors(s, t):
    with t.raw() as c:
        s.reply(c.cmd("EHLO client.test"), 250, what="EHLO")
        s.reply(c.cmd("RCPT TO:<b@tern.test>"), 503, "5.5.1", "RCPT before MAIL")
        s.reply(c.cmd("DATA"), 503, "5.5.1", "DATA before MAIL")
        s.reply(c.cmd("MAIL FROM:<a@tern.test>"), 250, what="MAIL")
        s.reply(c.cmd("MAIL FROM:<a@tern.test>"), 503, "5.5.1", "nested MAIL")
        s.reply(c.cmd("DATA"), 503, "5.5.1", "DATA without RCPT")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        s.reply(c.cmd("RCPT TO:<b@tern.test>"), 503, "5.5.1", "RCPT after RSET")
        s.reply(c.cmd("QUIT"), 221, "2.0.0", "QUIT")


def test_unknown_and_long(s, t):
    with t.raw() as c:
        s.reply(c.cmd("XYZZY plugh"), 500, "5.5.2", "unknown command")
        r = c.cmd("")
        s.check(500 <= r.code <= 501, f"empty command line: {r}")
        s.reply(c.cmd("NOOP"), 250, what="NOOP after errors")
    with t.raw() as c:
        # line_length_limit counts the CRLF: 2046 + 2 fits, 2047 + 2 does not.
        r = c.cmd("NOOP " + "a" * 2041)
        s.check(r.code != 500, f"a 2048-octet line is not refused as too long: {r}")
        s.reply(c.cmd("NOOP " + "a" * 3000), 500, "5.5.2", "a 3007-octet command line")
        try:
            r = c.cmd("NOOP")
            s.reply(r, 250, what="NOOP after the over-long line (session goes on)")
        except (EOFError, ConnectionResetError):
            pass  # closing the session after an over-long line is allowed
    with t.raw() as c:
        s.reply(c.cmd("EHLO client.test"), 250, what="EHLO")
        s.reply(c.cmd("MAIL FROM:<" + "a" * 5000 + "@tern.test>"), 500, "5.5.2",
                "a 5000-octet MAIL line")


def test_bad_addresses(s, t):
    with t.raw() as c:
        s.reply(c.cmd("EHLO client.test"), 250, what="EHLO")
        for bad in ("a@@tern.test", "a@tern..test", "a@-tern.test", "@tern.test"):
            s.reply(c.cmd(f"MAIL FROM:<{bad}>"), 501, "5.1.7", f"MAIL FROM:<{bad}>")
        s.reply(c.cmd("MAIL FROM:<>"), 250, what="null sender")
        for bad in ("a@@tern.test", "x@tern..test", "x@-tern.test", "@tern.test"):
            s.reply(c.cmd(f"RCPT TO:<{bad}>"), 501, "5.1.3", f"RCPT TO:<{bad}>")
        s.reply(c.cmd("RCPT TO:<ok@tern.test>"), 250, what="good RCPT after bad ones")
        s.reply(c.cmd("QUIT"), 221, "2.0.0", "QUIT")


def test_quit(s, t):
    with t.raw() as c:
        r = c.cmd("QUIT")
        s.reply(r, 221, "2.0.0", "QUIT right after the greeting")
        s.check(c.closed(), "closed after QUIT")


def test_vrfy_enabled(s, t):
    with t.raw() as c:
        r = c.cmd("VRFY postmaster")
        s.check(r.code != 502, f"VRFY is not refused with 502 by default: {r}")


SMUGGLE_SEPS = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\r\r\n",
                b"\n..\n", b"\r\n\x00.\r\n"]


def smuggle_attempt(t, sep, n):
    """One DATA with a smuggled second transaction behind sep. Returns
    (first reply after the end of data, later replies until close, new
    envelopes, marker)."""
    marker = f"Smuggled-Marker-{n}".encode()
    before = {e["id"] for e in t.queue()}
    data = (b"Subject: smuggling " + str(n).encode() + b"\r\n\r\nbefore" + sep +
            b"MAIL FROM:<evil@x>\r\nRCPT TO:<a@tern.test>\r\nDATA\r\n" +
            b"From: evil@x\r\n\r\n" + marker + b"\r\n" + sep +
            b"after\r\n")
    with t.raw() as c:
        c.cmd("EHLO smuggler.test")
        c.cmd("MAIL FROM:<legit@tern.test>")
        c.cmd("RCPT TO:<victim@tern.test>")
        r = c.cmd("DATA")
        if r.code != 354:
            raise TestFailure(f"DATA: {r}")
        c.send(data + b".\r\n")
        first = c.reply()
        c.send(b"QUIT\r\n")
        rest = c.all_until_close()
    return first, rest, new_ids(t, before), marker


def test_smuggling(s, t, reject=False):
    for n, sep in enumerate(SMUGGLE_SEPS):
        first, rest, new, marker = smuggle_attempt(t, sep, n)
        what = f"separator {sep!r}"
        evil = [e for e in new.values() if e.get("sender") == "evil@x"]
        s.check(not evil, f"{what}: an envelope from evil@x was queued: {evil}")
        s.eq([r.code for r in rest], [221], f"{what}: replies after the end of data "
                                             f"(extra replies = smuggled commands)")
        if reject:
            s.check(first.code in (250, 550), f"{what}: end of data reply {first}")
            s.check(len(new) <= 1, f"{what}: {len(new)} new messages")
            if first.code == 550:
                s.eq(len(new), 0, f"{what}: messages queued after a 550")
            continue
        s.reply(first, 250, "2.0.0", f"{what}: end of data")
        if not s.eq(len(new), 1, f"{what}: new messages in the queue"):
            continue
        (qid, env), = new.items()
        s.eq(env.get("sender"), "legit@tern.test", f"{what}: sender")
        s.eq(env.get("recipients"), ["victim@tern.test"], f"{what}: recipients")
        body = t.msg_content(qid)
        s.check(marker in body and b"MAIL FROM:<evil@x>" in body and b"after\r\n" in body,
                f"{what}: the smuggled text is in the one message's body: {body!r}")
        s.check(body.endswith(b"after\r\n"), f"{what}: body ends with the last line: {body!r}")


def test_bare_lf_normalized(s, t):
    sent = b"Subject: bare LF\r\n\r\nline one\nline two\r\nline three\n"
    r, qid = send_raw_message(t, "lf@tern.test", ["b@tern.test"], sent + b"\r\n")
    s.reply(r, 250, "2.0.0", "message with bare LFs (normalize)")
    if qid:
        want = b"Subject: bare LF\r\n\r\nline one\r\nline two\r\nline three\r\n\r\n"
        check_spooled(s, t, qid, want, "lf@tern.test", ["b@tern.test"])


def bdat_session(t, chunks, pipeline=False):
    """Send chunks with BDAT (the last with LAST, or an extra BDAT 0 LAST
    when chunks ends with None). Returns the list of replies."""
    with t.raw() as c:
        c.cmd("EHLO chunky.test")
        r1 = c.cmd("MAIL FROM:<bdat@tern.test>")
        r2 = c.cmd("RCPT TO:<b@tern.test>")
        out = [r1, r2]
        real = [x for x in chunks if x is not None]
        cmds = []
        for i, ch in enumerate(real):
            last = (i == len(real) - 1 and chunks[-1] is not None)
            cmds.append(f"BDAT {len(ch)}{' LAST' if last else ''}\r\n".encode() + ch)
        if chunks[-1] is None:
            cmds.append(b"BDAT 0 LAST\r\n")
        if pipeline:
            c.send(b"".join(cmds))
            out += c.replies(len(cmds))
        else:
            for x in cmds:
                c.send(x)
                out.append(c.reply())
        out.append(c.cmd("QUIT"))
    return out


def test_bdat(s, t):
    chunks = [b"Subject: chunks\r\n\r\nline one\r\n.dot line stays\r",
              b"\nline two with a dot line next\r\n.\r\nMAIL FROM:<evil@x>\r\n",
              b"8-bit \xff\xfe\r\n", None]
    rs = bdat_session(t, chunks)
    s.eq([r.code for r in rs], [250, 250, 250, 250, 250, 250, 221], f"replies {rs}")
    qid = queued_id(s, rs[-2], "BDAT 0 LAST")
    check_spooled(s, t, qid, b"".join(chunks[:-1]), "bdat@tern.test", ["b@tern.test"],
                  "chunky.test")
    # LAST on a chunk with data, everything pipelined in one write.
    chunks = [b"Subject: pipelined chunks\r\n\r\n", b"one\r\n", b"two\r\n.\r\n"]
    rs = bdat_session(t, chunks, pipeline=True)
    s.eq([r.code for r in rs], [250, 250, 250, 250, 250, 221], f"pipelined replies {rs}")
    qid = queued_id(s, rs[-2], "BDAT n LAST")
    check_spooled(s, t, qid, b"".join(chunks), "bdat@tern.test", ["b@tern.test"])


def test_bdat_data_mix(s, t):
    before = {e["id"] for e in t.queue()}
    with t.raw() as c:
        c.cmd("EHLO mix.test")
        c.cmd("MAIL FROM:<mix@tern.test>")
        c.cmd("RCPT TO:<b@tern.test>")
        c.send(b"BDAT 7\r\nSubject")
        s.reply(c.reply(), 250, what="BDAT 7")
        s.reply(c.cmd("DATA"), 503, what="DATA after BDAT")
        s.reply(c.cmd("NOOP"), 250, what="NOOP after the refused DATA")
        s.reply(c.cmd("RSET"), 250, what="RSET")
        s.reply(c.cmd("QUIT"), 221, "2.0.0", "QUIT")
    s.eq(new_ids(t, before), {}, "messages queued by a DATA/BDAT mix")


def test_log_lines(s, t):
    mark = t.log_mark()
    content = b"Subject: logged\r\n\r\nhello\r\n"
    with t.raw() as c:
        c.cmd("EHLO logger.test")
        c.cmd("MAIL FROM:<log@tern.test>")
        c.cmd("RCPT TO:<b@tern.test>")
        c.cmd("DATA")
        c.send(content + b".\r\n")
        r = c.reply()
        c.cmd("QUIT")
    qid = queued_id(s, r, "DATA")
    # This session's own line: an earlier session may end after mark.
    m = t.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 "
                   r"quit=1 commands=5$", mark, 5)
    s.check(m, "a disconnect line within 5 s")
    text = t.log_since(mark)
    lines = text.splitlines()
    connect = [ln for ln in lines if re.search(LOG_PREFIX + r"connect from unknown\[127\.0\.0\.1\]$", ln)]
    s.eq(len(connect), 1, f"'connect from unknown[127.0.0.1]' lines in {lines}")
    if qid:
        client = [ln for ln in lines if re.search(LOG_PREFIX + qid + r": client=unknown\[127\.0\.0\.1\]$", ln)]
        s.eq(len(client), 1, f"'{qid}: client=unknown[127.0.0.1]' lines in {lines}")
    disc = [ln for ln in lines if re.search(
        LOG_PREFIX + r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 "
                     r"quit=1 commands=5$", ln)]
    s.eq(len(disc), 1, f"'disconnect ... ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5' in {lines}")
    pids = {re.search(r"tern/smtpd\[(\d+)\]", ln).group(1) for ln in connect + disc}
    s.eq(pids, {str(t.smtpd_pid())}, "the smtpd child's pid in its log lines")


def test_vanishing_client(s, t):
    before_ids = {e["id"] for e in t.queue()}
    before_files = t.msg_files()
    with t.raw() as c:
        c.cmd("EHLO vanish.test")
        c.cmd("MAIL FROM:<gone@tern.test>")
        c.cmd("RCPT TO:<b@tern.test>")
        s.reply(c.cmd("DATA"), 354, what="DATA")
        c.send(b"Subject: half a message\r\n\r\n" + b"x" * 100000 + b"\r\n")
    # The server notices the close, discards the partial file and goes on.
    s.check(t.wait_greeting(5), "server still greets")
    s.eq(new_ids(t, before_ids), {}, "envelopes after a client vanished in DATA")
    left = ternlib.wait_until(lambda: t.msg_files() == before_files, 5)
    s.check(left, f"partial message file removed within 5 s: {t.msg_files() - before_files}")


def test_ternctl_plain(s, t):
    import subprocess
    r = subprocess.run([ternlib.TERNCTL, "-c", t.conf, "queue"], capture_output=True,
                       text=True, timeout=60)
    s.eq(r.returncode, 0, f"ternctl queue exit status ({r.stderr.strip()})")
    ids = {e["id"] for e in t.queue()}
    missing = [i for i in ids if i not in r.stdout]
    s.eq(missing, [], "queue ids missing from the plain listing")


def after_stop_defaults(s, t):
    """ternctl reads the spool without a daemon; nothing lost at stop."""
    q = t.queue()
    s.check(len(q) >= 20, f"{len(q)} envelopes listed with ternd stopped")
    files = t.msg_files()
    ids = {e["id"] for e in q}
    s.eq(sorted(ids - files), [], "envelopes without a message file")
    s.eq(sorted(files - ids), [], "message files without an envelope (after a clean stop)")


# ---- small limits --------------------------------------------------------------------------

LIMITS = {
    "message_size_limit": "10000",
    "smtpd_recipient_limit": "3",
    "smtpd_timeout": "3s",
    "smtpd_hard_error_limit": "4",
    "smtpd_soft_error_limit": "10",
    "smtpd_helo_required": "yes",
    "disable_vrfy_command": "yes",
}


def test_size_at_mail(s, t):
    with t.raw() as c:
        r = c.cmd("EHLO client.test")
        s.check("250-SIZE 10000" in r.lines or "250 SIZE 10000" in r.lines,
                f"EHLO advertises SIZE 10000: {r.lines}")
        s.reply(c.cmd("MAIL FROM:<a@tern.test> SIZE=10001"), 552, "5.3.4", "MAIL SIZE=10001")
        s.reply(c.cmd("MAIL FROM:<a@tern.test> SIZE=9000"), 250, what="MAIL SIZE=9000")
        s.reply(c.cmd("QUIT"), 221, "2.0.0", "QUIT")


def test_size_at_end(s, t):
    before = {e["id"] for e in t.queue()}
    body = b"Subject: too big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 300
    with t.raw() as c:
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<big@tern.test>")
        c.cmd("RCPT TO:<b@tern.test>")
        s.reply(c.cmd("DATA"), 354, what="DATA")
        c.send(body + b".\r\n")
        s.reply(c.reply(), 552, "5.3.4", f"end of a {len(body)}-byte DATA")
        s.reply(c.cmd("QUIT"), 221, "2.0.0", "QUIT")
    s.eq(new_ids(t, before), {}, "queued messages")
    # The same by BDAT.
    with t.raw() as c:
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<big@tern.test>")
        c.cmd("RCPT TO:<b@tern.test>")
        c.send(f"BDAT {len(body)} LAST\r\n".encode() + body)
        s.reply(c.reply(), 552, "5.3.4", f"BDAT of {len(body)} bytes")
    s.eq(new_ids(t, before), {}, "queued messages after BDAT")
    # Under the limit is fine.
    small = b"Subject: small\r\n\r\nsmall\r\n"
    r, qid = send_raw_message(t, "small@tern.test", ["b@tern.test"], small)
    s.reply(r, 250, "2.0.0", "a small message")
    check_spooled(s, t, qid, small)


def test_recipient_limit(s, t):
    content = b"Subject: three recipients\r\n\r\nbody\r\n"
    with t.raw() as c:
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<many@tern.test>")
        for i in range(3):
            s.reply(c.cmd(f"RCPT TO:<r{i}@tern.test>"), 250, what=f"RCPT #{i + 1}")
        s.reply(c.cmd("RCPT TO:<r3@tern.test>"), 452, "4.5.3", "RCPT #4 over the limit of 3")
        s.reply(c.cmd("DATA"), 354, what="DATA")
        c.send(content + b".\r\n")
        r = c.reply()
        s.reply(r, 250, "2.0.0", "end of DATA")
        c.cmd("QUIT")
    check_spooled(s, t, queued_id(s, r, "DATA"), content, "many@tern.test",
                  ["r0@tern.test", "r1@tern.test", "r2@tern.test"])


def test_helo_required(s, t):
    with t.raw() as c:
        s.reply(c.cmd("MAIL FROM:<a@tern.test>"), 503, "5.5.1", "MAIL without HELO")
        s.reply(c.cmd("HELO client.test"), 250, what="HELO")
        s.reply(c.cmd("MAIL FROM:<a@tern.test>"), 250, what="MAIL after HELO")
        s.reply(c.cmd("QUIT"), 221, "2.0.0", "QUIT")


def test_vrfy_disabled(s, t):
    with t.raw() as c:
        s.reply(c.cmd("VRFY postmaster"), 502, "5.5.1", "VRFY with disable_vrfy_command")


def test_idle_timeout(s, t):
    with t.raw(timeout=15) as c:
        s.reply(c.cmd("EHLO client.test"), 250, what="EHLO")
        t0 = time.monotonic()
        try:
            r = c.reply()
        except (EOFError, ConnectionResetError) as e:
            s.check(False, f"closed without a 421 reply: {e}")
            return
        took = time.monotonic() - t0
        s.reply(r, 421, "4.4.2", "reply after idling past smtpd_timeout=3s")
        s.check(2.5 <= took <= 10, f"timeout after {took:.1f} s (smtpd_timeout = 3s)")
        s.check(c.closed(), "closed after the 421")
    # The timeout also applies in the middle of DATA.
    with t.raw(timeout=15) as c:
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<slow@tern.test>")
        c.cmd("RCPT TO:<b@tern.test>")
        c.cmd("DATA")
        c.send(b"Subject: stalled\r\n\r\nhalf")
        try:
            r = c.reply()
            s.reply(r, 421, "4.4.2", "reply after stalling in DATA")
        except (EOFError, ConnectionResetError):
            s.check(False, "closed without 421 in DATA")
        s.check(c.closed(), "closed after the 421 in DATA")


def test_hard_error_limit(s, t):
    with t.raw() as c:
        replies = []
        try:
            for _ in range(8):
                replies.append(c.cmd("XYZZY"))
                if replies[-1].code == 421:
                    break
        except (EOFError, ConnectionResetError):
            pass
        codes = [r.code for r in replies]
        s.check(codes and codes[-1] == 421, f"a 421 after repeated errors: {replies}")
        if codes and codes[-1] == 421:
            s.eq(replies[-1].enh(), "4.7.0", f"enhanced code of {replies[-1]}")
            s.check(len(codes) <= 5, f"421 comes by the 5th command with a limit of 4: {codes}")
            s.check(all(x == 500 for x in codes[:-1]), f"500 before the 421: {codes}")
        s.check(c.closed(), "closed after the 421")


# ---- bare LF rejected -----------------------------------------------------------------------

def test_bare_lf_rejected(s, t):
    before = {e["id"] for e in t.queue()}
    for n, sent in enumerate([b"Subject: bare LF\r\n\r\nline one\nline two\r\n",
                              b"Subject: bare LF at the end\r\n\r\nlast\n\r\n",
                              b"Subject: bare LF in headers\nX: y\r\n\r\nbody\r\n"]):
        with t.raw() as c:
            c.cmd("EHLO client.test")
            c.cmd("MAIL FROM:<lf@tern.test>")
            c.cmd("RCPT TO:<b@tern.test>")
            s.reply(c.cmd("DATA"), 354, what="DATA")
            c.send(sent + b".\r\n")
            s.reply(c.reply(), 550, "5.5.2", f"bare LF #{n} with smtpd_forbid_bare_newline=reject")
            try:
                c.cmd("QUIT")
            except (EOFError, ConnectionResetError):
                pass
    s.eq(new_ids(t, before), {}, "messages queued")
    ok = b"Subject: clean\r\n\r\nCRLF only\r\n"
    r, qid = send_raw_message(t, "ok@tern.test", ["b@tern.test"], ok)
    s.reply(r, 250, "2.0.0", "a clean message")
    check_spooled(s, t, qid, ok)


def main():
    suite = ternlib.Suite("smtp_session")
    suite.group("defaults", {}, [
        ("master log line and smtpd child", test_master_log),
        ("EHLO keywords", test_ehlo),
        ("byte-exact message (raw, BODY=8BITMIME)", test_exact_raw),
        ("byte-exact message (smtplib)", test_exact_smtplib),
        ("2 MB body byte-exact", test_long_body),
        ("several messages in one session", test_several_in_session),
        ("pipelined MAIL/RCPT/RCPT/DATA in one write", test_pipelining),
        ("whole transaction pipelined after the greeting", test_pipelined_session_start),
        ("503 5.5.1 for commands out of order", test_sequence_errors),
        ("500 5.5.2 unknown command and over-long line", test_unknown_and_long),
        ("501 5.1.7 / 5.1.3 bad addresses", test_bad_addresses),
        ("QUIT 221 2.0.0", test_quit),
        ("VRFY allowed by default", test_vrfy_enabled),
        ("smuggling: one message per end of data", test_smuggling),
        ("bare LF normalized to CRLF", test_bare_lf_normalized),
        ("BDAT chunks, BDAT 0 LAST, pipelined BDAT", test_bdat),
        ("DATA after BDAT refused with 503", test_bdat_data_mix),
        ("log lines connect, client=, disconnect with counts", test_log_lines),
        ("client vanishing in DATA", test_vanishing_client),
        ("ternctl queue (plain)", test_ternctl_plain),
    ], after_stop=after_stop_defaults)
    suite.group("limits", LIMITS, [
        ("EHLO keywords with SIZE 10000", lambda s, t: test_ehlo(s, t, 10000)),
        ("552 5.3.4 at MAIL SIZE=", test_size_at_mail),
        ("552 5.3.4 at the end of data", test_size_at_end),
        ("452 4.5.3 too many recipients", test_recipient_limit),
        ("503 5.5.1 MAIL without HELO", test_helo_required),
        ("502 5.5.1 VRFY disabled", test_vrfy_disabled),
        ("421 4.4.2 idle timeout", test_idle_timeout),
        ("421 4.7.0 too many errors", test_hard_error_limit),
    ])
    suite.group("bare-lf-reject", {"smtpd_forbid_bare_newline": "reject"}, [
        ("550 5.5.2 for bare LF", test_bare_lf_rejected),
        ("smuggling with reject: never a second message",
         lambda s, t: test_smuggling(s, t, reject=True)),
    ])
    suite.finish()


if __name__ == "__main__":
    main()
