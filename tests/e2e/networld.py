"""networld: a private loopback-only network with its own DNS, for tern's
end-to-end tests of outbound delivery.

A test file does, before anything else (before it starts threads):

    import networld
    networld.enter_private_netns()          # root only; see below
    dns = networld.DnsWorld({
        "two.test":     {"MX": [(10, "mx1.two.test"), (20, "mx2.two.test")]},
        "mx1.two.test": {"A": "127.0.0.2"},
        "mx2.two.test": {"A": "127.0.0.3", "AAAA": "::1"},
        "null.test":    {"MX": [(0, ".")]},          # RFC 7505 null MX
        "alias.test":   {"CNAME": "mx1.two.test"},
        "broken.test":  "SERVFAIL",                  # the name and below
    })
    dns.start()
    ...                                              # ternd with dns_servers = 127.0.0.53
    dns.stop()

The namespace: enter_private_netns() calls unshare(CLONE_NEWNET) through
ctypes (Python 3.11 has no os.unshare), in this very process, then brings
`lo` up. Why not re-exec under `unshare --net`: an in-process unshare does
not run the script twice, keeps argv, stdin, the watchdog alarm and the
Suite object as they are, works the same when imported from any test, and
fails with a plain errno we can report. Its one trap is that a namespace
belongs to a thread, not to the process: threads that exist already stay
outside. So we refuse unless the process has exactly one thread, and we
verify afterwards that /proc/thread-self/ns/net changed. Every thread and
child started later (FakeMX threads, dnsmasq, ternd) inherits the new
namespace. Only loopback exists in it (127.0.0.0/8 and ::1): no other
interface, no route out, so nothing a test does can reach the host's
network, and port 25 and 53 are free on any 127.0.0.x.

Not root: networld raises NetworldUnavailable (a ternlib.TestFailure).
tern's e2e rule is that a missing prerequisite is a failure, never a silent
skip (ternlib's docstring; daemon_test.py counts "needs root" as a failed
case), and CTest has no SKIP_RETURN_CODE for e2e tests, so there is no
exit code 77 here.

The DNS: DnsWorld runs /usr/sbin/dnsmasq (dnsmasq-base) on 127.0.0.53:53
with a configuration file of its own (never /etc/dnsmasq.conf), no upstream
servers, no /etc/hosts, no cache, a query log, and `local=/test/` so that
unknown names under the local suffixes are NXDOMAIN. What it serves and how
(dnsmasq 2.90, checked by networld_selftest.py):

  MX (pref, host)   mx-host=NAME,HOST,PREF
  MX (0, ".")       dns-rr=NAME,15,000000 (the RFC 7505 null MX, exact bytes;
                    mx-host=NAME,.,0 gives the same answer in 2.90, but the
                    raw record does not depend on dnsmasq parsing ".")
  A / AAAA          host-record=NAME,ADDR[,TTL]
  CNAME             cname=NAME,TARGET[,TTL] (the target must be a name
                    dnsmasq knows: a record here, not an upstream one)
  TXT               dns-rr=NAME,16,HEX (exact bytes; no quoting trouble
                    with commas or quotes in the text)
  any other type    dns-rr=NAME,TYPE,HEX ({type number: rdata bytes})
  "NXDOMAIN"        address=/NAME/ (NXDOMAIN for the name and below)
  "SERVFAIL", "REFUSED", "TIMEOUT"
                    server=/NAME/127.0.0.54: dnsmasq forwards the name and
                    everything below it to RcodeServer, a small Python UDP
                    responder (a thread here) that answers with that rcode,
                    or not at all for TIMEOUT; dnsmasq passes SERVFAIL and
                    REFUSED through. A server= at an address where nothing
                    listens is NOT a way to get SERVFAIL: dnsmasq 2.90 then
                    never answers (the client times out), so that is how
                    TIMEOUT would behave anyway.

A name with an A record and no MX answers MX queries NOERROR with no
records (NODATA), as implicit MX needs. Answers for configured records
have AA set; NODATA and NXDOMAIN from dnsmasq do not, and carry no SOA.
A name outside the local suffixes that has no record answers REFUSED
(there is no upstream). TTLs are 0 unless given (ttl= sets every record's
TTL), so resolvers do not cache across reloads. Point tern at it with
dns_servers = DnsWorld.server ("127.0.0.53:53"); or pass
resolv_conf="127.0.0.53" to enter_private_netns() so that programs using
/etc/resolv.conf (glibc's getaddrinfo, swaks...) ask it too.

reload(records) = stop + start with the new data (dnsmasq reads its
options only at start); a TXT generation marker proves the new instance
answers. Every wait is bounded. dnsmasq runs under `setpriv --pdeathsig
KILL` as root (so the death signal is not cleared by a change of uid): if
the test process dies, dnsmasq dies with it. (The "parent" of pdeathsig is
the thread that started it: call start()/reload() from the main thread.)
Each test process has its own namespace, so tests using networld can even
run in parallel without sharing a port.

query(name, qtype) is a tiny DNS client (packets built with struct, no
dnspython) over UDP or TCP, decoding A, AAAA, MX, CNAME, TXT, SOA.
"""
import ctypes
import ctypes.util
import ipaddress
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ternlib import TestFailure  # noqa: E402

DNSMASQ = "/usr/sbin/dnsmasq"
SETPRIV = "/usr/bin/setpriv"
IP = "/usr/sbin/ip"

DNS_ADDR = "127.0.0.53"      # where DnsWorld's dnsmasq listens (port 53)
RCODE_ADDR = "127.0.0.54"    # where its RcodeServer listens (port 53)

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_BIND = 0x1000

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
         "AAAA": 28, "SRV": 33, "TLSA": 52, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4,
          "REFUSED": 5}
RCODE_NAMES = {v: k for k, v in RCODES.items()}


class NetworldUnavailable(TestFailure):
    """The private network cannot be set up here (not root, no unshare...)."""


class NetworldError(TestFailure):
    """Something in the test network went wrong (dnsmasq would not start...)."""


# ---- the namespace ------------------------------------------------------------------

_entered = {"ns": None, "ipv6": False, "resolv_conf": None}


def _netns_inode():
    return os.stat("/proc/thread-self/ns/net").st_ino


def _threads():
    return len(os.listdir("/proc/self/task"))


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def in_private_netns():
    """True when enter_private_netns() succeeded in this process."""
    return _entered["ns"] is not None and _entered["ns"] == _netns_inode()


def has_ipv6():
    """True when ::1 is usable in the private namespace."""
    return _entered["ipv6"]


def enter_private_netns(resolv_conf=None):
    """Move this (single-threaded) process into a new network namespace
    holding only loopback, up, with 127.0.0.0/8 and (if the kernel allows)
    ::1. Idempotent. resolv_conf="127.0.0.53" also unshares the mount
    namespace (made private first, so nothing propagates back) and binds a
    resolv.conf naming that server over /etc/resolv.conf, for programs that
    use the system resolver. Raises NetworldUnavailable when not root or when
    unshare is refused."""
    if in_private_netns():
        return
    if os.geteuid() != 0:
        raise NetworldUnavailable(
            "networld needs root (unshare(CLONE_NEWNET), dnsmasq on port 53, fake MX on "
            "port 25); run the test as root")
    n = _threads()
    if n != 1:
        raise NetworldUnavailable(
            f"enter_private_netns() must run before any thread starts ({n} threads now): "
            f"a network namespace belongs to a thread, the others would stay outside")
    before = _netns_inode()
    flags = CLONE_NEWNET | (CLONE_NEWNS if resolv_conf else 0)
    libc = _libc()
    if libc.unshare(ctypes.c_int(flags)) != 0:
        e = ctypes.get_errno()
        raise NetworldUnavailable(f"unshare(CLONE_NEWNET) failed: {os.strerror(e)} "
                                  f"(a container without CAP_SYS_ADMIN?)")
    after = _netns_inode()
    if after == before:
        raise NetworldUnavailable("unshare() returned 0 but the network namespace is the same")
    # From here on every command acts on the new, empty namespace only.
    _entered["ns"] = after
    links = _ip("-o", "link", "show")
    names = [l.split(":")[1].strip().split("@")[0] for l in links.splitlines() if l.strip()]
    if names != ["lo"]:
        raise NetworldError(f"new namespace has unexpected links {names}; refusing to go on")
    _ip("link", "set", "lo", "up")
    v4 = _ip("-4", "-o", "addr", "show", "dev", "lo")
    if "127.0.0.1/8" not in v4:
        raise NetworldError(f"lo has no 127.0.0.1/8 after 'ip link set lo up': {v4!r}")
    v6 = _ip("-6", "-o", "addr", "show", "dev", "lo", check=False)
    if "::1/128" not in v6:
        _ip("-6", "addr", "add", "::1/128", "dev", "lo", check=False)
        v6 = _ip("-6", "-o", "addr", "show", "dev", "lo", check=False)
    _entered["ipv6"] = "::1/128" in v6 and _can_bind_v6()
    if resolv_conf:
        _private_resolv_conf(libc, resolv_conf)


def _ip(*args, check=True):
    r = subprocess.run([IP, *args], capture_output=True, text=True, timeout=10)
    if check and r.returncode != 0:
        raise NetworldError(f"ip {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def _can_bind_v6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _private_resolv_conf(libc, server):
    """Bind a private resolv.conf over /etc/resolv.conf in our own mount ns."""
    if libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) != 0:
        raise NetworldError(f"mount --make-rprivate /: {os.strerror(ctypes.get_errno())}")
    d = tempfile.mkdtemp(prefix="tern-e2e-resolv-", dir="/var/tmp")
    path = os.path.join(d, "resolv.conf")
    with open(path, "w") as f:
        f.write(f"# networld private resolver\nnameserver {server}\noptions timeout:2 attempts:1\n")
    os.chmod(d, 0o755)
    os.chmod(path, 0o644)
    if libc.mount(path.encode(), b"/etc/resolv.conf", None, ctypes.c_ulong(MS_BIND), None) != 0:
        err = os.strerror(ctypes.get_errno())
        shutil.rmtree(d, ignore_errors=True)
        raise NetworldError(f"bind mount of resolv.conf: {err}")
    # The mount holds the file: the temporary name can go at once.
    os.unlink(path)
    os.rmdir(d)
    _entered["resolv_conf"] = server


def require_private_netns():
    if not in_private_netns():
        raise NetworldError("call networld.enter_private_netns() first: networld never "
                            "binds port 53/25 in the host's namespace")


# ---- a tiny DNS client ------------------------------------------------------------------


def encode_name(name):
    out = b""
    name = name.rstrip(".")
    if name:
        for label in name.split("."):
            raw = label.encode("idna") if not label.isascii() else label.encode()
            if not 0 < len(raw) < 64:
                raise ValueError(f"bad label in {name!r}")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def decode_name(msg, pos):
    """(name, position after the name in place) with compression pointers."""
    labels = []
    end = None
    for _ in range(128):  # bounded: no pointer loops
        ln = msg[pos]
        if ln & 0xC0 == 0xC0:
            if end is None:
                end = pos + 2
            pos = ((ln & 0x3F) << 8) | msg[pos + 1]
            continue
        pos += 1
        if ln == 0:
            break
        labels.append(msg[pos:pos + ln].decode("ascii", "replace"))
        pos += ln
    else:
        raise ValueError("DNS name: too many labels or a pointer loop")
    return (".".join(labels) or "."), (end if end is not None else pos)


class RR:
    """One resource record: name, rtype (int), type (str), ttl, data (raw
    rdata bytes) and value: A/AAAA "addr", MX (pref, "host"), CNAME/NS/PTR
    "name", TXT tuple of str, SOA tuple, else the raw bytes."""

    def __init__(self, name, rtype, ttl, data, value):
        self.name, self.rtype, self.ttl, self.data, self.value = name, rtype, ttl, data, value
        self.type = TYPE_NAMES.get(rtype, str(rtype))

    def __repr__(self):
        return f"RR({self.name} {self.ttl} {self.type} {self.value!r})"


class Answer:
    """A parsed DNS reply: rcode (int), rcode_name, aa, tc, ra, answers,
    authority, additional (lists of RR). values(type) lists the values of
    the answer records of that type."""

    def __init__(self, msg):
        self.raw = msg
        (self.id, flags, qd, an, ns, ar) = struct.unpack(">HHHHHH", msg[:12])
        self.qr = bool(flags & 0x8000)
        self.aa = bool(flags & 0x0400)
        self.tc = bool(flags & 0x0200)
        self.ra = bool(flags & 0x0080)
        self.rcode = flags & 0xF
        self.rcode_name = RCODE_NAMES.get(self.rcode, str(self.rcode))
        pos = 12
        for _ in range(qd):
            _, pos = decode_name(msg, pos)
            pos += 4
        self.answers, pos = self._rrs(msg, pos, an)
        self.authority, pos = self._rrs(msg, pos, ns)
        self.additional, pos = self._rrs(msg, pos, ar)

    @staticmethod
    def _rrs(msg, pos, n):
        out = []
        for _ in range(n):
            name, pos = decode_name(msg, pos)
            rtype, _cls, ttl, rdlen = struct.unpack(">HHIH", msg[pos:pos + 10])
            pos += 10
            rd = msg[pos:pos + rdlen]
            out.append(RR(name, rtype, ttl, rd, Answer._value(msg, pos, rtype, rd)))
            pos += rdlen
        return out, pos

    @staticmethod
    def _value(msg, pos, rtype, rd):
        if rtype == 1 and len(rd) == 4:
            return str(ipaddress.IPv4Address(rd))
        if rtype == 28 and len(rd) == 16:
            return str(ipaddress.IPv6Address(rd))
        if rtype == 15:
            return (struct.unpack(">H", rd[:2])[0], decode_name(msg, pos + 2)[0])
        if rtype in (2, 5, 12):
            return decode_name(msg, pos)[0]
        if rtype == 16:
            out, i = [], 0
            while i < len(rd):
                out.append(rd[i + 1:i + 1 + rd[i]].decode("utf-8", "replace"))
                i += 1 + rd[i]
            return tuple(out)
        if rtype == 6:
            mname, p = decode_name(msg, pos)
            rname, p = decode_name(msg, p)
            return (mname, rname) + struct.unpack(">IIIII", msg[p:p + 20])
        return rd

    def values(self, rtype):
        if isinstance(rtype, str):
            rtype = TYPES[rtype]
        return [r.value for r in self.answers if r.rtype == rtype]

    def __repr__(self):
        return (f"Answer({self.rcode_name} aa={int(self.aa)} an={self.answers} "
                f"ns={self.authority})")


def build_query(name, qtype, qid=None, rd=True):
    if isinstance(qtype, str):
        qtype = TYPES[qtype]
    qid = random.randrange(65536) if qid is None else qid
    return struct.pack(">HHHHHH", qid, 0x0100 if rd else 0, 1, 0, 0, 0) + \
        encode_name(name) + struct.pack(">HH", qtype, 1)


def query(name, qtype, server=DNS_ADDR, port=53, timeout=2.0, tcp=False):
    """Ask server one question; an Answer, or None when no reply came
    within timeout (UDP: one datagram, no retry)."""
    pkt = build_query(name, qtype)
    qid = struct.unpack(">H", pkt[:2])[0]
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    deadline = time.monotonic() + timeout
    if tcp:
        try:
            with socket.create_connection((server, port), timeout=timeout) as s:
                s.settimeout(timeout)
                s.sendall(struct.pack(">H", len(pkt)) + pkt)
                buf = b""
                while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
                    if time.monotonic() > deadline:
                        return None
                    chunk = s.recv(65536)
                    if not chunk:
                        return None
                    buf += chunk
                return Answer(buf[2:2 + struct.unpack(">H", buf[:2])[0]])
        except (socket.timeout, TimeoutError):
            return None
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.sendto(pkt, (server, port))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            s.settimeout(left)
            try:
                data, _ = s.recvfrom(65535)
            except (socket.timeout, TimeoutError):
                return None
            except ConnectionRefusedError:
                return None
            if len(data) >= 12 and data[:2] == pkt[:2]:
                a = Answer(data)
                if a.id == qid:
                    return a


# ---- a responder with a fixed rcode -------------------------------------------------------


class RcodeServer:
    """A UDP DNS responder (a thread) answering every question under its
    zones with a fixed rcode ("SERVFAIL", "REFUSED") or never ("TIMEOUT").
    dnsmasq forwards those zones here with server=/zone/ADDR. Questions are
    counted in .queries [(name, type, action)]."""

    def __init__(self, zones, addr=RCODE_ADDR, port=53):
        self.zones = {z.lower().rstrip("."): a.upper() for z, a in zones.items()}
        self.addr, self.port = addr, port
        self.queries = []
        self.lock = threading.Lock()
        self.sock = None
        self.thread = None
        self.stopping = False

    def action(self, name):
        name = name.lower().rstrip(".")
        best = None
        for z, a in self.zones.items():
            if (name == z or name.endswith("." + z)) and (best is None or len(z) > len(best[0])):
                best = (z, a)
        return best[1] if best else "REFUSED"

    def start(self):
        fam = socket.AF_INET6 if ":" in self.addr else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.bind((self.addr, self.port))
        self.thread = threading.Thread(target=self._run, name="networld-rcode", daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            r, _, _ = select.select([self.sock], [], [], 0.2)
            if not r:
                continue
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                continue
            if len(data) < 17:
                continue
            try:
                name, pos = decode_name(data, 12)
                qtype = struct.unpack(">H", data[pos:pos + 2])[0]
            except (ValueError, IndexError, struct.error):
                continue
            act = self.action(name)
            with self.lock:
                self.queries.append((name, TYPE_NAMES.get(qtype, str(qtype)), act))
            if act == "TIMEOUT":
                continue
            qid, flags = struct.unpack(">HH", data[:4])
            rcode = RCODES.get(act, 2)
            reply = struct.pack(">HHHHHH", qid, 0x8000 | (flags & 0x0100) | 0x0080 | rcode,
                                1, 0, 0, 0) + data[12:pos + 4]
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        if self.thread is not None:
            self.thread.join(2)
        if self.sock is not None:
            self.sock.close()
        self.thread = self.sock = None


# ---- the DNS world ----------------------------------------------------------------------


def _hexs(b):
    return b.hex() if b else ""


def _txt_rdata(strings):
    out = b""
    for s in strings:
        raw = s.encode() if isinstance(s, str) else bytes(s)
        if len(raw) > 255:
            raise ValueError("a TXT character-string is at most 255 bytes; split it")
        out += bytes([len(raw)]) + raw
    return out


def _as_list(v):
    return list(v) if isinstance(v, (list, tuple)) else [v]


class DnsWorld:
    """A private dnsmasq answering from python data.

    records: {name: {"MX": [(pref, host), ...], "A": addr or [addrs],
    "AAAA": addr or [addrs], "CNAME": target, "TXT": [str or (str, str...)],
    type number: rdata bytes or [rdata bytes]}} or {name: "SERVFAIL" |
    "REFUSED" | "TIMEOUT" | "NXDOMAIN"} for the name and everything below it.
    local: suffixes whose unknown names are NXDOMAIN (never forwarded).
    Needs enter_private_netns() first."""

    def __init__(self, records, local=("test",), addr=DNS_ADDR, port=53, ttl=0,
                 extra_listen=(), rcode_addr=RCODE_ADDR):
        self.records = dict(records)
        self.local = tuple(local)
        self.addr, self.port, self.ttl = addr, port, ttl
        self.extra_listen = tuple(extra_listen)
        self.rcode_addr = rcode_addr
        self.dir = None
        self.proc = None
        self.rcode = None
        self.generation = 0
        self.conf = self.logfile = self.pidfile = None

    # -- configuration

    def _lines(self):
        t = self.ttl
        out = ["# networld DnsWorld, generated", "no-resolv", "no-hosts", "no-poll",
               "keep-in-foreground", "bind-interfaces", f"listen-address={self.addr}",
               *[f"listen-address={a}" for a in self.extra_listen],
               f"port={self.port}", "cache-size=0", "no-negcache", "log-queries",
               f"log-facility={self.logfile}", f"pid-file={self.pidfile}",
               f"dhcp-leasefile={os.path.join(self.dir, 'leases')}", "leasefile-ro",
               "user=root", "group=root", f"local-ttl={t}",
               f"txt-record=networld-generation.invalid,{self.generation}"]
        for suffix in self.local:
            out.append(f"local=/{suffix}/")
        rcode_zones = {}
        for name, spec in self.records.items():
            name = name.rstrip(".")
            if isinstance(spec, str):
                what = spec.upper()
                if what == "NXDOMAIN":
                    out.append(f"address=/{name}/")
                elif what in ("SERVFAIL", "REFUSED", "TIMEOUT"):
                    rcode_zones[name] = what
                    out.append(f"server=/{name}/{self.rcode_addr}")
                else:
                    raise ValueError(f"{name}: unknown special answer {spec!r}")
                continue
            for rtype, val in spec.items():
                key = rtype.upper() if isinstance(rtype, str) else rtype
                if key == "MX":
                    for pref, host in _as_list(val):
                        host = host.rstrip(".")
                        if host == "":  # null MX: pref and the root name, exact bytes
                            out.append(f"dns-rr={name},15,{_hexs(struct.pack('>H', pref))}00")
                        else:
                            out.append(f"mx-host={name},{host},{pref}")
                elif key in ("A", "AAAA"):
                    for a in _as_list(val):
                        ip = ipaddress.ip_address(a)
                        if (key == "A") != (ip.version == 4):
                            raise ValueError(f"{name}: {a} is not an {key} address")
                        out.append(f"host-record={name},{ip},{t}" if t else
                                   f"host-record={name},{ip}")
                elif key == "CNAME":
                    out.append(f"cname={name},{val.rstrip('.')},{t}" if t else
                               f"cname={name},{val.rstrip('.')}")
                elif key == "TXT":
                    for rec in _as_list(val):
                        strings = [rec] if isinstance(rec, (str, bytes)) else list(rec)
                        out.append(f"dns-rr={name},16,{_hexs(_txt_rdata(strings))}")
                elif isinstance(key, int) or (isinstance(key, str) and key in TYPES):
                    num = key if isinstance(key, int) else TYPES[key]
                    for rd in _as_list(val):
                        out.append(f"dns-rr={name},{num},{_hexs(bytes(rd))}")
                else:
                    raise ValueError(f"{name}: unsupported record type {rtype!r}")
        return out, rcode_zones

    # -- life cycle

    def start(self, timeout=5.0):
        require_private_netns()
        for p in (DNSMASQ, SETPRIV):
            if not os.access(p, os.X_OK):
                raise NetworldUnavailable(f"{p} is missing (apt-get install dnsmasq-base "
                                          f"util-linux)")
        if self.proc is not None:
            raise NetworldError("DnsWorld.start: already running")
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="tern-e2e-dns-", dir="/var/tmp")
            os.chmod(self.dir, 0o755)
            self.conf = os.path.join(self.dir, "dnsmasq.conf")
            self.logfile = os.path.join(self.dir, "dnsmasq.log")
            self.pidfile = os.path.join(self.dir, "dnsmasq.pid")
        self.generation += 1
        lines, rcode_zones = self._lines()
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        if rcode_zones:
            self.rcode = RcodeServer(rcode_zones, addr=self.rcode_addr, port=53)
            self.rcode.start()
        out = open(os.path.join(self.dir, "dnsmasq.out"), "ab")
        self.proc = subprocess.Popen(
            [SETPRIV, "--pdeathsig", "KILL", "--", DNSMASQ, f"--conf-file={self.conf}"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        out.close()
        if not self._wait_ready(timeout):
            rc = self.proc.poll()
            text = self.output()
            self.stop()
            raise NetworldError(f"dnsmasq did not answer on {self.addr}:{self.port} within "
                                f"{timeout} s (exit status {rc}): {text[-1500:]}")
        return self

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        want = (str(self.generation),)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            a = query("networld-generation.invalid", "TXT", self.addr, self.port, timeout=0.2)
            if a is not None and want in a.values("TXT"):
                return True
            time.sleep(0.05)
        return False

    def reload(self, records=None, timeout=5.0):
        """Restart dnsmasq with new records (or the same); the query log goes on."""
        if records is not None:
            self.records = dict(records)
        self._stop_proc()
        return self.start(timeout)

    def _stop_proc(self, timeout=5.0):
        if self.rcode is not None:
            self.rcode.stop()
            self.rcode = None
        p, self.proc = self.proc, None
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            raise NetworldError(f"dnsmasq (pid {p.pid}) ignored SIGTERM for {timeout} s; killed")

    def stop(self):
        """Stop dnsmasq (SIGTERM, bounded wait, then SIGKILL) and remove the
        directory (kept when TERN_E2E_KEEP=1)."""
        try:
            self._stop_proc()
        finally:
            if self.dir and not os.environ.get("TERN_E2E_KEEP"):
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    # -- what happened

    def output(self):
        text = ""
        for n in ("dnsmasq.out", "dnsmasq.log"):
            try:
                with open(os.path.join(self.dir, n), "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except (OSError, TypeError):
                pass
        return text

    QUERY_RE = re.compile(r"query\[(\w+)\] (\S+) from (\S+)")

    def queries(self):
        """[(type, name, client)] of every question dnsmasq logged, oldest first
        (the probes of start/reload left out)."""
        try:
            with open(self.logfile, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return []
        return [m.groups() for m in self.QUERY_RE.finditer(text)
                if m.group(2) != "networld-generation.invalid"]

    def query(self, name, qtype, timeout=2.0, tcp=False):
        return query(name, qtype, self.addr, self.port, timeout, tcp)

    @property
    def server(self):
        """For tern's dns_servers parameter."""
        return f"{self.addr}:{self.port}"
