"""End-to-end tests of outbound routing by the real smtp agent, in a private
network namespace (networld.py) with fake MX servers (fakemx.py):
relayhost as [name]:port (no MX lookup) and as an address literal, an MX
that points back at us (5.4.6), an MX host reached through a CNAME, an
IPv6-only MX host on ::1, a 5xx greeting from the only host (bounced),
smtp_mx_address_limit, the smtp agent killed in the middle of a delivery
(the recipients are tried again by the next agent), client AUTH with
smtp_sasl_password_maps (over TLS; refused in plain text by the default
security options; a wrong password defers), and a server's recipient
limit (452 4.5.3: the rest go in further transactions on the connection).
"""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import networld  # noqa: E402

networld.enter_private_netns()  # before any thread

import fakemx  # noqa: E402
import ternlib  # noqa: E402
from ternlib import TestFailure, wait_until  # noqa: E402

suite = ternlib.Suite("smtp_routing")

RULES_DIR, _files = ternlib.shared_files("route-rules", {
    "retry_rules": "*  *  F,1h,2s\n",
    "transport": ("# transport_maps for the test\n"
                  "mapped.test      smtp:[relay.test]:2526\n"
                  ".sub.mapped.test smtp:[127.0.0.49]:2527\n"
                  "refused.test     error:5.7.1 no mail for refused.test\n"
                  "tlsauth.test     smtp:[auth.test]:2528\n"
                  "plainauth.test   smtp:[plain.auth.test]:2529\n"
                  "badauth.test     smtp:[bad.auth.test]:2530\n"),
    # by next hop as written, by host name, by next hop
    "sasl_passwd": ("[auth.test]:2528     joe:s3cret:with:colons\n"
                    "plain.auth.test      joe:s3cret:with:colons\n"
                    "[bad.auth.test]:2530 joe:wrong\n"),
})
RULES, TRANSPORT = _files["retry_rules"], _files["transport"]
SASL_PASSWD = _files["sasl_passwd"]
AUTH_USERS = {"joe": "s3cret:with:colons"}

ZONES = {
    "relay.test": {"A": "127.0.0.40"},
    "relayed.test": {"MX": [(10, "unused.relayed.test")]},
    "unused.relayed.test": {"A": "127.0.0.41"},
    "loop.test": {"MX": [(10, "tern.test"), (20, "other.loop.test")]},
    "other.loop.test": {"A": "127.0.0.42"},
    "cname.test": {"MX": [(10, "alias.cname.test")]},
    "alias.cname.test": {"CNAME": "real.cname.test"},
    "real.cname.test": {"A": "127.0.0.43"},
    "six.test": {"MX": [(10, "mx.six.test")]},
    "mx.six.test": {"AAAA": "::1"},
    "nope.test": {"MX": [(10, "mx.nope.test")]},
    "mx.nope.test": {"A": "127.0.0.44"},            # 554 greeting
    "many.test": {"MX": [(10, "a.many.test"), (20, "b.many.test"), (30, "c.many.test")]},
    "a.many.test": {"A": "127.0.0.45"},             # nothing listens
    "b.many.test": {"A": "127.0.0.46"},             # nothing listens
    "c.many.test": {"A": "127.0.0.47"},             # would accept: beyond the limit
    "slow.test": {"MX": [(10, "mx.slow.test")]},
    "mx.slow.test": {"A": "127.0.0.48"},            # holds the end of data
    "auth.test": {"A": "127.0.0.50"},               # STARTTLS + AUTH
    "plain.auth.test": {"A": "127.0.0.51"},         # AUTH without TLS
    "bad.auth.test": {"A": "127.0.0.52"},           # STARTTLS + AUTH, we have a wrong password
    "limit.test": {"MX": [(10, "mx.limit.test")]},
    "mx.limit.test": {"A": "127.0.0.53"},           # two recipients per transaction
    "limit1.test": {"MX": [(10, "mx.limit1.test")]},
    "mx.limit1.test": {"A": "127.0.0.54"},          # the same without PIPELINING
}

dns = networld.DnsWorld(ZONES)
dns.start()
MX = {
    "relay": fakemx.FakeMX("127.0.0.40", port=2526),
    "literal": fakemx.FakeMX("127.0.0.49", port=2527),
    "other.loop": fakemx.FakeMX("127.0.0.42"),
    "cname": fakemx.FakeMX("127.0.0.43"),
    "nope": fakemx.FakeMX("127.0.0.44", mode="greet_5xx"),
    "c.many": fakemx.FakeMX("127.0.0.47"),
    "slow": fakemx.FakeMX("127.0.0.48", script={"DATA_END": ["hang", "250 2.0.0 ok"]}),
    "auth": fakemx.FakeMX("127.0.0.50", port=2528, mode="starttls", auth=True,
                          auth_users=AUTH_USERS),
    "plain.auth": fakemx.FakeMX("127.0.0.51", port=2529, auth=True, auth_users=AUTH_USERS),
    "bad.auth": fakemx.FakeMX("127.0.0.52", port=2530, mode="starttls", auth=True,
                              auth_users=AUTH_USERS),
    "limit": fakemx.FakeMX("127.0.0.53", max_rcpts=2),
    "limit1": fakemx.FakeMX("127.0.0.54", mode="no_pipelining", max_rcpts=2),
}
if networld.has_ipv6():
    MX["six"] = fakemx.FakeMX("::1")
for m in MX.values():
    m.start()

BASE = {
    "dns_servers": dns.server,
    "default_transport": "smtp",
    "local_transport": "retry:4.3.0 mailbox not ready",
    "retry_rules": RULES,
    "smtp_connect_timeout": "2s",
    "smtp_helo_timeout": "2s",
}


send = ternlib.send_message
ternctl = ternlib.ternctl_run


# ---- relayhost ----


def test_relayhost_name(s, t):
    mark = t.log_mark()
    qid = send(t, "amy@tern.test", ["bo@relayed.test"])
    s.check(t.wait_log(rf"{qid}: to=<bo@relayed.test>, relay=relay\.test\[127\.0\.0\.40\]:2526"
                       r".*status=sent", mark), "sent through the relayhost, not the MX")
    s.check(not any(q[1] == "relayed.test" and q[0] == "MX" for q in dns.queries()),
            "no MX lookup for the recipient's domain")


def test_relayhost_literal(s, t):
    mark = t.log_mark()
    qid = send(t, "amy@tern.test", ["cy@relayed.test"])
    s.check(t.wait_log(rf"{qid}: to=<cy@relayed.test>, relay=127\.0\.0\.49\[127\.0\.0\.49\]:2527"
                       r".*status=sent", mark), "sent to the address literal")


# ---- transport_maps ----


def test_transport_maps(s, t):
    mark = t.log_mark()
    q1 = send(t, "amy@tern.test", ["lee@mapped.test"])
    q2 = send(t, "amy@tern.test", ["max@a.sub.mapped.test"])
    q3 = send(t, "amy@tern.test", ["ned@refused.test"])
    s.check(t.wait_log(rf"{q1}: to=<lee@mapped.test>, relay=relay\.test\[127\.0\.0\.40\]:2526"
                       r".*status=sent", mark), "domain entry: smtp:[relay.test]:2526")
    s.check(t.wait_log(rf"{q2}: to=<max@a.sub.mapped.test>, relay=127\.0\.0\.49\[127\.0\.0\.49\]"
                       r":2527.*status=sent", mark), ".parent entry matches a subdomain")
    s.check(t.wait_log(rf"{q3}: to=<ned@refused.test>.*dsn=5\.7\.1, status=bounced \(no mail "
                       r"for refused\.test\)", mark), "error: transport from the map")


def test_transport_maps_lmdb(s, t):
    r = subprocess.run([ternlib.TERNCTL, "map", "build", TRANSPORT], capture_output=True,
                       text=True, timeout=30)
    s.eq(r.returncode, 0, f"ternctl map build: {r.stderr}")
    os.chmod(TRANSPORT + ".lmdb", 0o644)
    with open(t.conf, "a") as f:
        f.write(f"transport_maps = lmdb:{TRANSPORT}\n")
    mark = t.log_mark()
    os.kill(t.master_pid, signal.SIGHUP)
    s.check(t.wait_log(r"qmgr\[\d+\]: reload: configuration", mark), "qmgr reloaded")
    qid = send(t, "amy@tern.test", ["oli@mapped.test"])
    s.check(t.wait_log(rf"{qid}: to=<oli@mapped.test>, relay=relay\.test\[127\.0\.0\.40\]:2526"
                       r".*status=sent", mark), "routed through the lmdb map")


# ---- MX cases ----


def test_mx_loop(s, t):
    mark = t.log_mark()
    qid = send(t, "dee@tern.test", ["eli@loop.test"])
    s.check(t.wait_log(rf"{qid}: to=<eli@loop.test>, relay=none.*dsn=5\.4\.6, status=bounced "
                       r"\(mail for loop\.test loops back to myself\)", mark),
            "an MX list with us first bounces 5.4.6")
    s.eq(len(MX["other.loop"].messages()), 0, "the worse MX is not tried")


def test_cname_mx(s, t):
    mark = t.log_mark()
    qid = send(t, "dee@tern.test", ["fox@cname.test"])
    s.check(t.wait_log(rf"{qid}: to=<fox@cname.test>, relay=alias\.cname\.test\[127\.0\.0\.43\]"
                       r":25.*status=sent", mark), "the MX host's CNAME followed")


def test_ipv6_mx(s, t):
    if "six" not in MX:
        raise TestFailure("::1 is not usable in the namespace")
    mark = t.log_mark()
    qid = send(t, "dee@tern.test", ["gil@six.test"])
    s.check(t.wait_log(rf"{qid}: to=<gil@six.test>, relay=mx\.six\.test\[::1\]:25.*status=sent",
                       mark), "delivered over IPv6")


def test_greeting_5xx_bounces(s, t):
    mark = t.log_mark()
    qid = send(t, "dee@tern.test", ["hy@nope.test"])
    s.check(t.wait_log(rf"{qid}: to=<hy@nope.test>.*dsn=5\.\d\.\d+, status=bounced \(host "
                       r"mx\.nope\.test\[127\.0\.0\.44\] refused to talk to me: 554", mark),
            "a 5xx greeting from the last host bounces")


def test_address_limit(s, t):
    mark = t.log_mark()
    qid = send(t, "dee@tern.test", ["ivo@many.test"])
    s.check(t.wait_log(rf"{qid}: to=<ivo@many.test>.*status=deferred \(connect to "
                       r"b\.many\.test\[127\.0\.0\.46\]:25: Connection refused\)", mark),
            "deferred after two refused addresses (smtp_mx_address_limit = 2)")
    s.eq(len(MX["c.many"].sessions()), 0, "the third host is not tried")
    ternctl(t, "queue", "delete", qid)


def test_agent_killed(s, t):
    mark = t.log_mark()
    qid = send(t, "jo@tern.test", ["kay@slow.test"])
    # The first session hangs at the end of data; kill the agent then.
    s.check(wait_until(lambda: MX["slow"].sessions(), 10), "a session reached the slow MX")
    time.sleep(0.5)
    pids = [p for p in ternlib.pids_with_arg("--role=smtp")
            if t.conf.encode() in ternlib.cmdline(p)]
    s.check(pids, "smtp agent running")
    for p in pids:
        os.kill(p, signal.SIGKILL)
    s.check(t.wait_log(rf"{qid}: to=<kay@slow.test>.*status=sent", mark, timeout=25),
            "delivered by the restarted agent (at least once)")
    s.check(wait_until(lambda: qid not in t.queue_by_id(), 10), "removed")


# ---- client AUTH ----


def test_auth_over_tls(s, t):
    mark = t.log_mark()
    qid = send(t, "amy@tern.test", ["pat@tlsauth.test"])
    s.check(t.wait_log(rf"{qid}: to=<pat@tlsauth.test>, relay=auth\.test\[127\.0\.0\.50\]:2528"
                       r".*status=sent", mark), "delivered to the server that wants AUTH")
    sess = [x for x in MX["auth"].sessions() if x.auth]
    s.check(sess, "an authenticated session")
    s.check(sess and sess[-1].tls, "over TLS")
    s.eq(sess[-1].auth if sess else None, ("PLAIN", "joe", "s3cret:with:colons"),
         "authenticated with PLAIN, the password split at the first ':'")


def test_auth_plain_text_refused(s, t):
    mark = t.log_mark()
    qid = send(t, "amy@tern.test", ["quin@plainauth.test"])
    s.check(t.wait_log(rf"{qid}: to=<quin@plainauth.test>.*status=deferred \(SASL authentication "
                       r"failed; cannot authenticate to server plain\.auth\.test\[127\.0\.0\.51\]: "
                       r"no mechanism available\)", mark),
            "no password in plain text (smtp_sasl_security_options = noplaintext)")
    s.check(not any(x.auth for x in MX["plain.auth"].sessions()), "no AUTH was sent")
    s.eq(len(MX["plain.auth"].messages()), 0, "nothing delivered unauthenticated")
    ternctl(t, "queue", "delete", qid)


def test_auth_wrong_password(s, t):
    mark = t.log_mark()
    qid = send(t, "amy@tern.test", ["rex@badauth.test"])
    s.check(t.wait_log(rf"{qid}: to=<rex@badauth.test>.*status=deferred \(SASL authentication "
                       r"failed; server bad\.auth\.test\[127\.0\.0\.52\] said: 535 5\.7\.8 ",
                       mark), "535 defers (soft bounce)")
    s.eq(len(MX["bad.auth"].messages()), 0, "nothing delivered")
    ternctl(t, "queue", "delete", qid)


def test_auth_plain_text_allowed(s, t):
    with open(t.conf, "a") as f:
        f.write("smtp_sasl_security_options = noanonymous\n")
    mark = t.log_mark()
    os.kill(t.master_pid, signal.SIGHUP)
    s.check(t.wait_log(r"smtp\[\d+\]: reload: configuration", mark), "smtp agent reloaded")
    qid = send(t, "amy@tern.test", ["sue@plainauth.test"])
    s.check(t.wait_log(rf"{qid}: to=<sue@plainauth.test>.*status=sent", mark),
            "delivered once plain text is allowed")
    sess = [x for x in MX["plain.auth"].sessions() if x.auth]
    s.check(sess and sess[-1].auth[1:] == ("joe", "s3cret:with:colons"), "authenticated")


# ---- the server's recipient limit ----


def limit_case(s, t, name, domain):
    mark = t.log_mark()
    rcpts = [f"u{i}@{domain}" for i in range(5)]
    qid = send(t, "amy@tern.test", rcpts)
    for r in rcpts:
        s.check(t.wait_log(rf"{qid}: to=<{r}>.*status=sent", mark), f"{r} sent")
    txns = [x for x in MX[name].transactions() if x.status == "accepted"]
    s.eq(sorted(len(x.recipients) for x in txns), [1, 2, 2], "three transactions: 2 + 2 + 1")
    s.eq(len({x.session_id for x in txns}), 1, "on one connection")
    s.check(not any(x.violations for x in MX[name].sessions()), "no protocol violation")


def test_recipient_limit(s, t):
    limit_case(s, t, "limit", "limit.test")


def test_recipient_limit_no_pipelining(s, t):
    limit_case(s, t, "limit1", "limit1.test")


try:
    suite.group("relayhost", dict(BASE, relayhost="[relay.test]:2526"), [
        ("relayhost = [relay.test]:2526: no MX lookup", test_relayhost_name),
    ])
    suite.group("literal", dict(BASE, relayhost="[127.0.0.49]:2527"), [
        ("relayhost = [127.0.0.49]:2527", test_relayhost_literal),
    ])
    suite.group("maps", dict(BASE, transport_maps=f"texthash:{TRANSPORT}"), [
        ("transport_maps (texthash): domain, .parent, error:", test_transport_maps),
        ("transport_maps = lmdb: built by ternctl map build, on reload", test_transport_maps_lmdb),
    ])
    suite.group("mx", dict(BASE, smtp_mx_address_limit="2"), [
        ("MX pointing at ourselves (5.4.6)", test_mx_loop),
        ("MX host behind a CNAME", test_cname_mx),
        ("IPv6-only MX host", test_ipv6_mx),
        ("5xx greeting from the only host bounces", test_greeting_5xx_bounces),
        ("smtp_mx_address_limit", test_address_limit),
        ("kill -9 of the smtp agent mid-delivery", test_agent_killed),
        ("452 4.5.3 too many recipients: more transactions", test_recipient_limit),
        ("the same without PIPELINING", test_recipient_limit_no_pipelining),
    ])
    suite.group("auth", dict(BASE, transport_maps=f"texthash:{TRANSPORT}",
                             smtp_sasl_auth_enable="yes",
                             smtp_sasl_password_maps=f"texthash:{SASL_PASSWD}"), [
        ("AUTH PLAIN over TLS, password from the map", test_auth_over_tls),
        ("no AUTH in plain text by default: deferred", test_auth_plain_text_refused),
        ("535 to AUTH: deferred", test_auth_wrong_password),
        ("smtp_sasl_security_options = noanonymous: plain text allowed",
         test_auth_plain_text_allowed),
    ])
finally:
    for m in MX.values():
        m.stop()
    dns.stop()
shutil.rmtree(RULES_DIR, ignore_errors=True)
suite.finish()
