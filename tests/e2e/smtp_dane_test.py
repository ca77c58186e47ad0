#!/usr/bin/python3
"""smtp_dane_test: outbound DANE (RFC 7672) and smtp_tls_policy_maps, end to
end, in a private network namespace (networld).

The DNS is a small authoritative server written here (standard library
only), on 127.0.0.53:53: it serves MX, A, CNAME and TLSA records, sets the
AD bit on the answers of "secure" names when the query asked for DNSSEC
(DO or AD, RFC 6840 section 5.7) and clears it for the names marked
insecure, answers SERVFAIL for the names marked so, NXDOMAIN for unknown
names. It records each question with its DO and AD bits. dnsmasq cannot
set AD by name, hence not networld.DnsWorld.

Certificates are made with the openssl command: a self-signed EE
certificate per server (fakemx.make_certificate), and a CA with a server
certificate it signed for DANE-TA. The destinations are fakemx servers on
127.0.0.x:25 with STARTTLS.

Group "dane" (smtp_tls_security_level = dane, smtp_dns_support_level =
dnssec, and a policy map):
  DANE-EE(3) SPKI SHA2-256 matches     -> "Verified TLS connection", sent;
                                          SNI is the TLSA base domain
  DANE-EE digest of another key        -> "server certificate verification
                                          failed", deferred 4.7.5, not sent
  DANE-TA(2) Cert SHA2-256 of the CA   -> verified, sent
  DANE-TA(2), certificate for another name -> deferred 4.7.5
  TLSA at the CNAME target of the MX host -> verified
  MX RRset insecure (AD=0)             -> "may": Untrusted TLS, sent; no
                                          TLSA query
  only PKIX-EE(1) records              -> "encrypt": Untrusted TLS, sent
  TLSA lookup SERVFAIL                 -> deferred 4.7.5 "TLSA lookup error"
  policy dane-only, no TLSA            -> deferred 4.7.5 "no TLSA records found"
  policy encrypt, no STARTTLS          -> deferred 4.7.4
  policy none                          -> plain text to a STARTTLS server
  policy ".parent.test may"            -> a subdomain gets "may" (its bad
                                          TLSA is not looked at)
  policy with an unknown attribute     -> deferred 4.7.5, a warning names it
  policy protocols=TLSv1.3, a TLS 1.2 server -> handshake failure, deferred
  policy verify match=hostname:nexthop -> a certificate for the domain is
                                          Verified; plain verify refuses it
Group "no-dnssec" (smtp_dns_support_level = enabled): dane degrades to
"may" with Postfix's warning; queries carry neither DO nor AD.
"""
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import networld  # noqa: E402

networld.enter_private_netns()  # before any thread

import fakemx  # noqa: E402
import ternlib  # noqa: E402

suite = ternlib.Suite("smtp_dane")
OPENSSL = "/usr/bin/openssl"
DNS_ADDR = "127.0.0.53"

# ---- certificates ---------------------------------------------------------------

CERT_DIR = tempfile.mkdtemp(prefix="tern-e2e-dane-certs-")


def run_openssl(*args, data=None):
    r = subprocess.run([OPENSSL, *args], input=data, capture_output=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout


def ee_cert(name):
    d = os.path.join(CERT_DIR, name)
    os.mkdir(d)
    return fakemx.make_certificate(d, hostname=name)


def spki_sha256(certfile):
    pub = run_openssl("x509", "-in", certfile, "-pubkey", "-noout")
    der = run_openssl("pkey", "-pubin", "-outform", "DER", data=pub)
    return hashlib.sha256(der).digest()


def cert_sha256(certfile):
    return hashlib.sha256(run_openssl("x509", "-in", certfile, "-outform", "DER")).digest()


def ca_and_leaf(leaf_name):
    """A CA and a leaf for leaf_name signed by it; (chainfile, keyfile, cafile)."""
    d = os.path.join(CERT_DIR, "ca-" + leaf_name)
    os.mkdir(d)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    run_openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "7",
                "-subj", "/CN=Tern Test DANE-TA CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run_openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", p("leaf.key"), "-out", p("leaf.csr"), "-subj", f"/CN={leaf_name}")
    with open(p("ext.cnf"), "w") as f:
        f.write(f"subjectAltName=DNS:{leaf_name}\nbasicConstraints=CA:FALSE\n")
    run_openssl("x509", "-req", "-in", p("leaf.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
                "-CAcreateserial", "-out", p("leaf.pem"), "-days", "7", "-extfile", p("ext.cnf"))
    with open(p("chain.pem"), "w") as out:
        for n in ("leaf.pem", "ca.pem"):
            with open(p(n)) as f:
                out.write(f.read())
    return p("chain.pem"), p("leaf.key"), p("ca.pem")


EE = ee_cert("mx.ee.test")
OTHER = ee_cert("mx.bad.test")
CNAMED = ee_cert("real.cname.test")
TA_CHAIN, TA_KEY, TA_CA = ca_and_leaf("mx.ta.test")
# The same CA's certificate for a name that is neither the MX host nor the domain.
TA2_CHAIN, TA2_KEY, TA2_CA = ca_and_leaf("elsewhere.example")
PLAIN = ee_cert("mx.plainish.test")
# Named after the next-hop domain, not the MX host; trusted through the CA file.
VFY = ee_cert("vfy.test")
VFYHOST = ee_cert("vfyhost.test")

# ---- the DNS ----------------------------------------------------------------------

T_A, T_CNAME, T_MX, T_OPT, T_TLSA = 1, 5, 15, 41, 52


def tlsa(usage, selector, mtype, data):
    return bytes([usage, selector, mtype]) + data


WRONG = hashlib.sha256(b"not the key of anything").digest()
ZONES = {
    "ee.test": {"MX": [(10, "mx.ee.test")]},
    "mx.ee.test": {"A": "127.0.0.31"},
    "_25._tcp.mx.ee.test": {"TLSA": [tlsa(3, 1, 1, spki_sha256(EE[0]))]},
    "bad.test": {"MX": [(10, "mx.bad.test")]},
    "mx.bad.test": {"A": "127.0.0.32"},
    "_25._tcp.mx.bad.test": {"TLSA": [tlsa(3, 1, 1, WRONG)]},
    "ta.test": {"MX": [(10, "mx.ta.test")]},
    "mx.ta.test": {"A": "127.0.0.33"},
    "_25._tcp.mx.ta.test": {"TLSA": [tlsa(2, 0, 1, cert_sha256(TA_CA))]},
    "taname.test": {"MX": [(10, "mx.taname.test")]},
    "mx.taname.test": {"A": "127.0.0.34"},
    "_25._tcp.mx.taname.test": {"TLSA": [tlsa(2, 0, 1, cert_sha256(TA2_CA))]},
    "cname.test": {"MX": [(10, "mx.cname.test")]},
    "mx.cname.test": {"CNAME": "real.cname.test"},
    "real.cname.test": {"A": "127.0.0.35"},
    "_25._tcp.real.cname.test": {"TLSA": [tlsa(3, 1, 1, spki_sha256(CNAMED[0]))]},
    "insecure.test": {"MX": [(10, "mx.insecure.test")], "insecure": True},
    "mx.insecure.test": {"A": "127.0.0.36"},
    "_25._tcp.mx.insecure.test": {"TLSA": [tlsa(3, 1, 1, WRONG)]},
    "pkix.test": {"MX": [(10, "mx.pkix.test")]},
    "mx.pkix.test": {"A": "127.0.0.37"},
    "_25._tcp.mx.pkix.test": {"TLSA": [tlsa(1, 1, 1, WRONG)]},
    "servfail.test": {"MX": [(10, "mx.servfail.test")]},
    "mx.servfail.test": {"A": "127.0.0.38"},
    "_25._tcp.mx.servfail.test": "SERVFAIL",
    "daneonly.test": {"MX": [(10, "mx.daneonly.test")]},
    "mx.daneonly.test": {"A": "127.0.0.39"},
    "encrypt.test": {"MX": [(10, "mx.encrypt.test")]},
    "mx.encrypt.test": {"A": "127.0.0.40"},
    "none.test": {"MX": [(10, "mx.none.test")]},
    "mx.none.test": {"A": "127.0.0.41"},
    "a.parent.test": {"MX": [(10, "mx.parent.test")]},
    "mx.parent.test": {"A": "127.0.0.42"},
    "_25._tcp.mx.parent.test": {"TLSA": [tlsa(3, 1, 1, WRONG)]},
    "bogus.test": {"MX": [(10, "mx.ee.test")]},
    "proto.test": {"MX": [(10, "mx.proto.test")]},
    "mx.proto.test": {"A": "127.0.0.43"},
    "vfy.test": {"MX": [(10, "mx.vfy.test")], "insecure": True},
    "mx.vfy.test": {"A": "127.0.0.44"},
    "vfyhost.test": {"MX": [(10, "mx.vfyhost.test")], "insecure": True},
    "mx.vfyhost.test": {"A": "127.0.0.45"},
}

POLICY = ("daneonly.test dane-only\n"
          "encrypt.test encrypt\n"
          "none.test none\n"
          ".parent.test may\n"
          "bogus.test encrypt foo=bar\n"
          "proto.test encrypt protocols=TLSv1.3 ciphers=high\n"
          "vfy.test verify match=hostname:nexthop ciphers=high\n"
          "vfyhost.test verify\n")


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


class FakeDNS:
    """Authoritative answers with the AD bit set per name (module comment)."""

    def __init__(self, zones, addr=DNS_ADDR, port=53):
        self.zones = {k.lower(): v for k, v in zones.items()}
        self.addr, self.port = addr, port
        self.lock = threading.Lock()
        self.log = []           # (name, qtype, do, ad)
        self.sock = None
        self.thread = None

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.addr, self.port))
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.running = False
        if self.thread:
            self.thread.join(5)
        if self.sock:
            self.sock.close()

    def questions(self):
        with self.lock:
            return list(self.log)

    def _run(self):
        while self.running:
            try:
                msg, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                reply = self.answer(msg)
            except (ValueError, IndexError, struct.error):
                continue
            if reply is not None:
                self.sock.sendto(reply, peer)

    @staticmethod
    def _question(msg):
        qid, flags, qd, an, ns, ar = struct.unpack("!6H", msg[:12])
        name, pos = networld.decode_name(msg, 12)
        qtype, qclass = struct.unpack("!HH", msg[pos:pos + 4])
        end = pos + 4
        do = False
        if ar:      # the OPT record: root name, type 41, class, TTL(ext, ver, flags)
            o = end
            if msg[o] == 0 and struct.unpack("!H", msg[o + 1:o + 3])[0] == T_OPT:
                do = bool(struct.unpack("!H", msg[o + 7:o + 9])[0] & 0x8000)
        return qid, flags, name.lower().rstrip("."), qtype, msg[12:end], do

    def answer(self, msg):
        qid, qflags, name, qtype, question, do = self._question(msg)
        ad_asked = bool(qflags & 0x0020)
        with self.lock:
            self.log.append((name, qtype, do, ad_asked))
        rcode, secure, rrs = 0, True, []
        cur = name
        for _ in range(8):
            z = self.zones.get(cur)
            if z == "SERVFAIL":
                rcode, rrs = 2, []
                break
            if z is None:
                rcode = 3
                break
            if z.get("insecure"):
                secure = False
            if "CNAME" in z and qtype != T_CNAME:
                rrs.append((cur, T_CNAME, encode_name(z["CNAME"])))
                cur = z["CNAME"].lower()
                continue
            if qtype == T_MX:
                for pref, host in z.get("MX", []):
                    rrs.append((cur, T_MX, struct.pack("!H", pref) + encode_name(host)))
            elif qtype == T_A and "A" in z:
                rrs.append((cur, T_A, socket.inet_aton(z["A"])))
            elif qtype == T_TLSA:
                for rd in z.get("TLSA", []):
                    rrs.append((cur, T_TLSA, rd))
            break
        flags = 0x8000 | 0x0400 | (qflags & 0x0100) | rcode     # QR, AA, RD copied
        if rcode != 2 and secure and (do or ad_asked):
            flags |= 0x0020
        body = b"".join(encode_name(n) + struct.pack("!HHIH", t, 1, 0, len(rd)) + rd
                        for n, t, rd in rrs)
        return struct.pack("!6H", qid, flags, 1, len(rrs), 0, 0) + question + body


dns = FakeDNS(ZONES).start()

MX = {
    "ee": fakemx.FakeMX("127.0.0.31", mode="starttls", hostname="mx.ee.test", cert=EE),
    "bad": fakemx.FakeMX("127.0.0.32", mode="starttls", hostname="mx.bad.test", cert=OTHER),
    "ta": fakemx.FakeMX("127.0.0.33", mode="starttls", hostname="mx.ta.test",
                        cert=(TA_CHAIN, TA_KEY)),
    "taname": fakemx.FakeMX("127.0.0.34", mode="starttls", hostname="mx.taname.test",
                            cert=(TA2_CHAIN, TA2_KEY)),
    "cname": fakemx.FakeMX("127.0.0.35", mode="starttls", hostname="real.cname.test",
                           cert=CNAMED),
    "insecure": fakemx.FakeMX("127.0.0.36", mode="starttls", hostname="mx.insecure.test",
                              cert=PLAIN),
    "pkix": fakemx.FakeMX("127.0.0.37", mode="starttls", hostname="mx.pkix.test", cert=PLAIN),
    "servfail": fakemx.FakeMX("127.0.0.38", mode="starttls", hostname="mx.servfail.test",
                              cert=PLAIN),
    "daneonly": fakemx.FakeMX("127.0.0.39", mode="starttls", hostname="mx.daneonly.test",
                              cert=PLAIN),
    "encrypt": fakemx.FakeMX("127.0.0.40", hostname="mx.encrypt.test"),
    "none": fakemx.FakeMX("127.0.0.41", mode="starttls", hostname="mx.none.test", cert=PLAIN),
    "parent": fakemx.FakeMX("127.0.0.42", mode="starttls", hostname="mx.parent.test",
                            cert=PLAIN),
    "proto": fakemx.FakeMX("127.0.0.43", mode="starttls", hostname="mx.proto.test", cert=PLAIN,
                           tls_max="TLSv1.2"),
    "vfy": fakemx.FakeMX("127.0.0.44", mode="starttls", hostname="mx.vfy.test", cert=VFY),
    "vfyhost": fakemx.FakeMX("127.0.0.45", mode="starttls", hostname="mx.vfyhost.test",
                             cert=VFYHOST),
}
for m in MX.values():
    m.start()


def read(path):
    with open(path) as f:
        return f.read()


FILES_DIR, FILES = ternlib.shared_files("dane", {"tls_policy": POLICY,
                                                 "ca.pem": read(VFY[0]) + read(VFYHOST[0])})

PARAMS = {
    "dns_servers": f"{DNS_ADDR}:53",
    "default_transport": "smtp",
    "local_transport": "retry:4.3.0 mailbox not ready",
    "smtp_connect_timeout": "2s",
    "smtp_helo_timeout": "5s",
    "smtp_tls_security_level": "dane",
    "smtp_dns_support_level": "dnssec",
    "smtp_tls_policy_maps": f"texthash:{FILES['tls_policy']}",
    "smtp_connection_cache_time_limit": "0",
    "smtp_tls_CAfile": FILES["ca.pem"],
}

send = ternlib.send_message


def relay(host, addr):
    return rf"{host.replace('.', '[.]')}\[{addr.replace('.', '[.]')}\]:25"


def tls_line(trust, host, addr):
    return rf"{trust} TLS connection established to {relay(host, addr)}: TLSv1\.[23] with cipher"


def sent(s, t, qid, rcpt, host, addr, mark, what):
    return s.check(t.wait_log(rf"{qid}: to=<{rcpt}>, relay={relay(host, addr)}, .*"
                              r"dsn=2\.0\.0, status=sent", mark), what)


def deferred(s, t, qid, rcpt, dsn, text, mark, what):
    ok = s.check(t.wait_log(rf"{qid}: to=<{rcpt}>, .*dsn={dsn.replace('.', '[.]')}, "
                            rf"status=deferred \({text}", mark), what)
    ternlib.ternctl_run(t, "queue", "delete", qid)
    return ok


def verified_and_sent(s, t, rcpt, host, addr, what):
    """Send to rcpt: "Verified TLS connection" to host, then sent; the qid."""
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", [rcpt], subject=what)
    s.check(t.wait_log(tls_line("Verified", host, addr), mark), what)
    sent(s, t, qid, rcpt, host, addr, mark, "sent")
    return qid


def not_verified(s, t, rcpt, mx, host, addr, why, trust, what):
    """Send to rcpt: Postfix's verification failure (why), the connection
    logged as trust, deferred 4.7.5, nothing at mx."""
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", [rcpt], subject=what)
    s.check(t.wait_log(r"server certificate verification failed for " + relay(host, addr)
                       + ": " + why, mark), what)
    s.check(t.wait_log(tls_line(trust, host, addr), mark), f"the connection logged {trust}")
    deferred(s, t, qid, rcpt, "4.7.5", r"Server certificate not verified", mark,
             "deferred 4.7.5")
    s.eq(len(MX[mx].messages()), 0, "nothing sent")


def test_ee_match(s, t):
    verified_and_sent(s, t, "bob@ee.test", "mx.ee.test", "127.0.0.31",
                      "DANE-EE: Postfix's line, Verified TLS connection")
    msgs = MX["ee"].messages()
    s.eq(len(msgs), 1, "one message at mx.ee.test")
    if msgs:
        s.check(msgs[0].tls, "over TLS")
    sess = [x for x in MX["ee"].sessions() if x.tls]
    s.check(sess and sess[0].tls_sni == "mx.ee.test", "SNI is the TLSA base domain")
    qs = dns.questions()
    s.check(("_25._tcp.mx.ee.test", T_TLSA, True, True) in qs,
            f"TLSA asked with DO and AD: {[q for q in qs if q[1] == T_TLSA][:3]}")
    s.check(all(q[2] and q[3] for q in qs), "every query asks for DNSSEC")


def test_ee_mismatch(s, t):
    not_verified(s, t, "bob@bad.test", "bad", "mx.bad.test", "127.0.0.32",
                 r"num=65:no matching DANE TLSA records", "Untrusted",
                 "DANE-EE digest of another key: Postfix's verification failure line")


def test_ta(s, t):
    verified_and_sent(s, t, "tia@ta.test", "mx.ta.test", "127.0.0.33",
                      "DANE-TA: the chain to the CA in the TLSA record, the name matched")


def test_ta_name(s, t):
    not_verified(s, t, "tom@taname.test", "taname", "mx.taname.test", "127.0.0.34",
                 r"num=62:hostname mismatch", "Untrusted",
                 "DANE-TA checks names: elsewhere.example is not the MX host or the domain")


def test_cname(s, t):
    verified_and_sent(s, t, "cy@cname.test", "mx.cname.test", "127.0.0.35",
                      "TLSA at the CNAME target (RFC 7672 section 2.2.2)")
    sess = [x for x in MX["cname"].sessions() if x.tls]
    s.check(sess and sess[0].tls_sni == "real.cname.test", "SNI: the base domain, the target")


def test_insecure_mx(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["ida@insecure.test"], subject="insecure")
    s.check(t.wait_log(tls_line("Untrusted", "mx.insecure.test", "127.0.0.36"), mark),
            "insecure MX RRset: opportunistic TLS")
    sent(s, t, qid, "ida@insecure.test", "mx.insecure.test", "127.0.0.36", mark, "sent")
    s.check(not [q for q in dns.questions() if q[0] == "_25._tcp.mx.insecure.test"],
            "no TLSA lookup for an insecure MX")


def test_pkix_only(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["pat@pkix.test"], subject="pkix")
    s.check(t.wait_log(r"unsupported certificate usage 1 in RR: _25\._tcp\.mx\.pkix\.test IN "
                       r"TLSA 1 1 1", mark), "PKIX-EE(1) is unusable for SMTP (warning)")
    s.check(t.wait_log(tls_line("Untrusted", "mx.pkix.test", "127.0.0.37"), mark),
            "TLSA records unusable: encrypt, unauthenticated")
    sent(s, t, qid, "pat@pkix.test", "mx.pkix.test", "127.0.0.37", mark, "sent")


def test_tlsa_servfail(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["sam@servfail.test"], subject="servfail")
    s.check(t.wait_log(r"warning: DANE TLSA lookup problem: ", mark), "Postfix's warning")
    deferred(s, t, qid, "sam@servfail.test", "4.7.5",
             r"TLSA lookup error for mx\.servfail\.test:25\)", mark, "deferred 4.7.5")
    s.eq(MX["servfail"].sessions(), [], "no connection made")


def test_dane_only_no_tlsa(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["dan@daneonly.test"], subject="dane-only")
    deferred(s, t, qid, "dan@daneonly.test", "4.7.5", r"no TLSA records found\)", mark,
             "policy map dane-only: no TLSA, deferred")
    s.eq(MX["daneonly"].sessions(), [], "no connection made")


def test_policy_encrypt(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["eve@encrypt.test"], subject="encrypt")
    deferred(s, t, qid, "eve@encrypt.test", "4.7.4",
             r"TLS is required, but was not offered by host mx\.encrypt\.test", mark,
             "policy map encrypt, no STARTTLS: deferred")
    s.eq(len(MX["encrypt"].messages()), 0, "nothing sent in plain text")


def test_policy_none(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["nan@none.test"], subject="none")
    sent(s, t, qid, "nan@none.test", "mx.none.test", "127.0.0.41", mark, "sent")
    msgs = MX["none"].messages()
    s.check(msgs and not msgs[0].tls, "policy map none: plain text, STARTTLS offered or not")


def test_policy_parent(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["pam@a.parent.test"], subject="parent")
    s.check(t.wait_log(tls_line("Untrusted", "mx.parent.test", "127.0.0.42"), mark),
            "\".parent.test may\" applies to a.parent.test")
    sent(s, t, qid, "pam@a.parent.test", "mx.parent.test", "127.0.0.42", mark, "sent")


def test_policy_bad_attribute(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["bo@bogus.test"], subject="bogus")
    s.check(t.wait_log(r"warning: smtp_tls_policy_maps, next-hop destination \"bogus\.test\": "
                       r"invalid attribute name: \"foo\"", mark), "a warning names the entry")
    deferred(s, t, qid, "bo@bogus.test", "4.7.5", r"client TLS configuration problem\)", mark,
             "deferred 4.7.5")


def test_policy_protocols(s, t):
    mark = t.log_mark()
    qid = send(t, "ann@tern.test", ["pro@proto.test"], subject="protocols")
    s.check(t.wait_log(r"SSL_connect error to " + relay("mx.proto.test", "127.0.0.43"), mark),
            "protocols=TLSv1.3 against a TLS 1.2 server: no handshake")
    deferred(s, t, qid, "pro@proto.test", "4.7.5", r"Cannot start TLS: handshake failure", mark,
             "deferred")


def test_policy_verify_match(s, t):
    verified_and_sent(s, t, "val@vfy.test", "mx.vfy.test", "127.0.0.44",
                      "match=hostname:nexthop: the certificate names the next-hop domain")


def test_policy_verify_default(s, t):
    not_verified(s, t, "vic@vfyhost.test", "vfyhost", "mx.vfyhost.test", "127.0.0.45",
                 r"server certificate name does not match mx\.vfyhost\.test", "Trusted",
                 "verify without match=: the MX host's name only, the chain is trusted")


def test_no_dnssec(s, t):
    mark = t.log_mark()
    before = len(dns.questions())
    qid = send(t, "ann@tern.test", ["ned@ee.test"], subject="no dnssec")
    s.check(t.wait_log(r"warning: ee\.test: dane configured with dnssec lookups disabled", mark),
            "Postfix's warning")
    s.check(t.wait_log(tls_line("Untrusted", "mx.ee.test", "127.0.0.31"), mark),
            "dane degrades to may")
    sent(s, t, qid, "ned@ee.test", "mx.ee.test", "127.0.0.31", mark, "sent")
    qs = dns.questions()[before:]
    s.check(qs and not any(q[2] or q[3] for q in qs), f"no DO, no AD: {qs[:3]}")
    s.check(not [q for q in qs if q[1] == T_TLSA], "no TLSA lookup")


try:
    suite.group("dane", dict(PARAMS), [
        ("DANE-EE match: Verified, sent", test_ee_match),
        ("DANE-EE mismatch: deferred 4.7.5, not sent", test_ee_mismatch),
        ("DANE-TA: Verified, sent", test_ta),
        ("DANE-TA, certificate for another name: deferred", test_ta_name),
        ("TLSA at the MX host's CNAME target", test_cname),
        ("insecure MX: may", test_insecure_mx),
        ("only unusable TLSA records: encrypt", test_pkix_only),
        ("TLSA SERVFAIL: deferred", test_tlsa_servfail),
        ("policy dane-only without TLSA: deferred", test_dane_only_no_tlsa),
        ("policy encrypt, no STARTTLS: deferred", test_policy_encrypt),
        ("policy none: plain text", test_policy_none),
        ("policy .parent: subdomains", test_policy_parent),
        ("policy with an unknown attribute: deferred", test_policy_bad_attribute),
        ("policy protocols=TLSv1.3: no TLS 1.2", test_policy_protocols),
        ("policy verify match=hostname:nexthop: Verified", test_policy_verify_match),
        ("policy verify (hostname): another name is refused", test_policy_verify_default),
    ])
    suite.group("no-dnssec", dict(PARAMS, smtp_dns_support_level="enabled"), [
        ("dane without DNSSEC lookups: may, with a warning", test_no_dnssec),
    ])
finally:
    for m in MX.values():
        m.stop()
    dns.stop()
    if not os.environ.get("TERN_E2E_KEEP"):
        shutil.rmtree(FILES_DIR, ignore_errors=True)
        shutil.rmtree(CERT_DIR, ignore_errors=True)
suite.finish()
