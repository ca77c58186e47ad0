"""ternframe: tern's inter-process frames (common/frame.h, queue/agent_proto.h)
in Python, for end-to-end tests that play a delivery agent or a ternctl
client against the real qmgr over queue_directory/private/qmgr.

A frame is an 8-byte header (type u16, reserved u16 = 0, payload length
u32, big-endian) and fields: kind 1 = u64 (8 bytes BE), kind 2 = bytes
(u32 BE length, then the bytes). The field order of each message is the
one documented at the top of queue/agent_proto.c; MESSAGES below is the
same list, and encode()/decode() walk it.

    fs = FrameSocket.connect(path)
    fs.send(HELLO, {"transport": "smtp", "slots": 1, "pid": os.getpid()})
    t, job = fs.recv(timeout=10)          # t == DELIVER
    fs.send(RESULT, result(job["job_id"], rcpt["index"], TEMPFAIL, ...))
    fs.send(DONE, {"job_id": job["job_id"]})

Strings are str (UTF-8, undecodable bytes kept with surrogateescape);
envid and orcpt are None when empty. Standard library only; runs with
/usr/bin/python3. `python3 ternframe.py --selftest` checks itself.
"""
import select
import socket
import struct
import sys
import threading

HEADER = struct.Struct(">HHI")
PAYLOAD_MAX = 4 * 1024 * 1024
KIND_U64, KIND_BYTES = 1, 2

# enum frame_type
QUEUE_NEW = 32
HELLO, DELIVER, RESULT, DONE = 48, 49, 50, 51
COMMAND, REPLY, STATS = 64, 65, 66

PROTO_VERSION = 1
DELIVERED, TEMPFAIL, PERMFAIL = 0, 1, 2
VERBS = {"flush": 1, "hold": 2, "release": 3, "delete": 4, "requeue": 5, "stats": 6}
NOTIFY_NEVER, NOTIFY_SUCCESS, NOTIFY_FAILURE, NOTIFY_DELAY = 1, 2, 4, 8

# Field kinds of MESSAGES: "u" u64, "i" signed 64 (two's complement),
# "b" bool (0/1), "s" string, "o" optional string (None <-> ""), and
# (name, [fields]) for a u64 count followed by that many groups
# (a group of one "s" field decodes as a plain list of str).
MESSAGES = {
    QUEUE_NEW: [("queue_id", "s")],
    HELLO: [("version", "u"), ("transport", "s"), ("slots", "u"), ("pid", "u")],
    DELIVER: [("job_id", "u"), ("queue_id", "s"), ("transport", "s"), ("nexthop", "s"),
              ("sender", "s"), ("envid", "o"), ("ret", "u"), ("body", "u"),
              ("smtputf8", "b"), ("size", "u"), ("arrival", "i"),
              ("client_name", "s"), ("client_addr", "s"), ("client_helo", "s"),
              ("client_proto", "s"), ("local_source", "b"), ("to_filter", "b"),
              ("rcpts", [("index", "u"), ("addr", "s"), ("orcpt", "o"), ("notify", "u"),
                         ("target", "o")])],
    RESULT: [("job_id", "u"), ("index", "u"), ("status", "u"), ("err_class", "s"),
             ("smtp_code", "u"), ("enh", "s"), ("text", "s"), ("relay", "s"),
             ("host", "s"), ("relayed", "u"),
             ("delay_a", "i"), ("delay_b", "i"), ("delay_c", "i"), ("delay_d", "i")],
    DONE: [("job_id", "u")],
    COMMAND: [("verb", "u"), ("selectors", [("selector", "s")])],
    REPLY: [("status", "u"), ("count", "u"), ("text", "s")],
    STATS: [("started", "i"), ("received", "u"), ("delivered", "u"), ("deferred", "u"),
            ("bounced", "u"), ("active", "u"), ("incoming", "u"), ("deferred_messages", "u"),
            ("hold", "u"), ("dests_total", "u"),
            ("dests", [("transport", "s"), ("nexthop", "s"), ("waiting", "u"), ("ready", "u"),
                       ("active", "u"), ("jobs", "u"), ("suspended_until", "i")])],
}

# What a message that leaves a field out gets.
DEFAULTS = {"u": 0, "i": 0, "b": False, "s": "", "o": None}


# ---- fields and headers ------------------------------------------------------


def encode_header(ftype, payload_len):
    return HEADER.pack(ftype, 0, payload_len)


def decode_header(data):
    """(type, payload length) from the first 8 bytes; ValueError if bad."""
    ftype, reserved, plen = HEADER.unpack_from(data)
    if reserved != 0 or plen > PAYLOAD_MAX:
        raise ValueError("bad frame header %r" % bytes(data[:8]))
    return ftype, plen


def encode_fields(fields):
    """Fields as given: an int is a u64, str or bytes a bytes field."""
    out = bytearray()
    for f in fields:
        if isinstance(f, int):
            out += struct.pack(">BQ", KIND_U64, int(f) & 0xFFFFFFFFFFFFFFFF)
        else:
            b = f.encode("utf-8", "surrogateescape") if isinstance(f, str) else bytes(f)
            out += struct.pack(">BI", KIND_BYTES, len(b)) + b
    return bytes(out)


def decode_fields(payload):
    """The payload as a list of int (u64) and bytes; ValueError if bad."""
    fields, pos = [], 0
    while pos < len(payload):
        kind = payload[pos]
        if kind == KIND_U64 and pos + 9 <= len(payload):
            fields.append(struct.unpack_from(">Q", payload, pos + 1)[0])
            pos += 9
        elif kind == KIND_BYTES and pos + 5 <= len(payload):
            n = struct.unpack_from(">I", payload, pos + 1)[0]
            if pos + 5 + n > len(payload):
                raise ValueError("bytes field runs past the payload")
            fields.append(bytes(payload[pos + 5:pos + 5 + n]))
            pos += 5 + n
        else:
            raise ValueError("bad field at offset %d" % pos)
    return fields


def encode_frame(ftype, fields):
    payload = encode_fields(fields)
    if len(payload) > PAYLOAD_MAX:
        raise ValueError("payload of %d bytes" % len(payload))
    return encode_header(ftype, len(payload)) + payload


# ---- messages: dicts <-> field lists -------------------------------------------


def _flatten(spec, msg, out):
    for name, kind in spec:
        v = msg.get(name, [] if isinstance(kind, list) else DEFAULTS[kind])
        if isinstance(kind, list):
            out.append(len(v))
            for item in v:
                _flatten(kind, item if isinstance(item, dict) else {kind[0][0]: item}, out)
        elif kind == "o":
            out.append(v or "")
        elif kind in "ib":
            out.append(int(v))
        else:
            out.append(v)


def encode(ftype, msg):
    """A whole frame of type ftype from a dict (missing fields: defaults;
    HELLO's version defaults to PROTO_VERSION)."""
    if ftype == HELLO:
        msg = dict({"version": PROTO_VERSION}, **msg)
    fields = []
    _flatten(MESSAGES[ftype], msg, fields)
    return encode_frame(ftype, fields)


def _take(fields, want, what):
    if not fields:
        raise ValueError("%s missing" % what)
    v = fields.pop(0)
    if not isinstance(v, want):
        raise ValueError("%s has the wrong kind" % what)
    return v


def _unflatten(spec, fields):
    msg = {}
    for name, kind in spec:
        if isinstance(kind, list):
            n = _take(fields, int, name)
            items = [_unflatten(kind, fields) for _ in range(n)]
            msg[name] = [i[kind[0][0]] for i in items] if len(kind) == 1 else items
        elif kind in "so":
            s = _take(fields, bytes, name).decode("utf-8", "surrogateescape")
            msg[name] = None if kind == "o" and s == "" else s
        else:
            v = _take(fields, int, name)
            if kind == "i" and v >= 1 << 63:
                v -= 1 << 64
            elif kind == "b":
                if v > 1:
                    raise ValueError("%s is not 0 or 1" % name)
                v = bool(v)
            msg[name] = v
    return msg


def decode(ftype, payload_fields):
    """A dict from the fields of a frame (decode_fields); ValueError when
    a field is missing, of the wrong kind, or left over."""
    fields = list(payload_fields)
    msg = _unflatten(MESSAGES[ftype], fields)
    if fields:
        raise ValueError("%d fields left over" % len(fields))
    return msg


def result(job_id, index, status, text="", smtp_code=0, enh="", err_class="",
           relay="none", host="", relayed=0, delays=(0, 0, 0, 0)):
    """A RESULT dict with the usual defaults."""
    msg = {"job_id": job_id, "index": index, "status": status, "err_class": err_class,
           "smtp_code": smtp_code, "enh": enh, "text": text, "relay": relay,
           "host": host, "relayed": int(relayed)}
    for k, d in zip("abcd", delays):
        msg["delay_" + k] = d
    return msg


def command(verb, selectors):
    """A COMMAND dict: verb by name ("flush") or number."""
    return {"verb": VERBS.get(verb, verb), "selectors": list(selectors)}


# ---- a connected socket ------------------------------------------------------------


class FrameSocket:
    """Frames over a connected unix stream socket (blocking with timeouts)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    @classmethod
    def connect(cls, path, timeout=10.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        return cls(s)

    def close(self):
        self.sock.close()

    def send_frame(self, ftype, fields):
        self.sock.sendall(encode_frame(ftype, fields))

    def send(self, ftype, msg):
        self.sock.sendall(encode(ftype, msg))

    def recv_frame(self, timeout=10.0):
        """(type, fields) of the next frame. TimeoutError when none came in
        time, EOFError when the peer closed (mid-frame or not)."""
        while True:
            if len(self.buf) >= HEADER.size:
                ftype, plen = decode_header(self.buf)
                end = HEADER.size + plen
                if len(self.buf) >= end:
                    payload = bytes(self.buf[HEADER.size:end])
                    del self.buf[:end]
                    return ftype, decode_fields(payload)
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                raise TimeoutError("no frame within %.1f s" % timeout)
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed" + (" mid-frame" if self.buf else ""))
            self.buf += data

    def recv(self, timeout=10.0):
        """(type, dict) of the next frame, decoded by MESSAGES."""
        ftype, fields = self.recv_frame(timeout)
        if ftype not in MESSAGES:
            raise ValueError("unknown frame type %d" % ftype)
        return ftype, decode(ftype, fields)


# ---- self test ----------------------------------------------------------------------


def _selftest():
    samples = {
        HELLO: {"version": 1, "transport": "smtp", "slots": 4, "pid": 1234},
        DELIVER: {"job_id": 2**64 - 1, "queue_id": "0123456789ABCD", "transport": "smtp",
                  "nexthop": "[10.0.0.5]:25", "sender": "", "envid": None, "ret": 2,
                  "body": 2, "smtputf8": True, "size": 10, "arrival": -5,
                  "client_name": "mx.example", "client_addr": "192.0.2.1",
                  "client_helo": "mx.example", "client_proto": "ESMTP", "local_source": False,
                  "to_filter": True,
                  "rcpts": [{"index": 0, "addr": "a@b", "orcpt": "rfc822;a@b", "notify": 6,
                             "target": None},
                            {"index": 9, "addr": "ü@b", "orcpt": None, "notify": 0,
                             "target": "|/bin/cat"}]},
        RESULT: result(7, 1, TEMPFAIL, "452 4.5.3 no", 452, "4.5.3", "rcpt_452",
                       "mx[192.0.2.1]:25", "mx", True, (-1, -(2**63), 2**63 - 1, 0)),
        DONE: {"job_id": 7},
        COMMAND: command("requeue", ["ALL", "@example.org"]),
        REPLY: {"status": 75, "count": 3, "text": "done"},
        STATS: {"started": 1700000000, "received": 3, "delivered": 2, "deferred": 1,
                "bounced": 1, "active": 0, "incoming": 0, "deferred_messages": 1, "hold": 0,
                "dests_total": 1,
                "dests": [{"transport": "smtp", "nexthop": "example.org", "waiting": 1,
                           "ready": 0, "active": 0, "jobs": 0, "suspended_until": 0}]},
        QUEUE_NEW: {"queue_id": "0123456789ABCD"},
    }
    a, b = socket.socketpair()
    fa, fb = FrameSocket(a), FrameSocket(b)
    for ftype, msg in samples.items():
        frame = encode(ftype, msg)
        t, plen = decode_header(frame)
        assert t == ftype and plen == len(frame) - HEADER.size
        assert decode(ftype, decode_fields(frame[HEADER.size:])) == msg, ftype
        for cut in range(HEADER.size, len(frame)):  # every shorter payload fails
            try:
                decode(ftype, decode_fields(frame[HEADER.size:cut]))
            except ValueError:
                continue
            raise AssertionError("prefix %d of type %d decoded" % (cut, ftype))
        # One byte at a time through a socket, from a thread: each send
        # takes a kernel buffer of its own, so a long frame would fill the
        # socket before the reader starts.
        sender = threading.Thread(
            target=lambda f=frame: [fa.sock.sendall(bytes([byte])) for byte in f])
        sender.start()
        assert fb.recv(timeout=10) == (ftype, msg)
        sender.join(10)
    try:
        decode(DONE, [7, 8])
        raise AssertionError("trailing field accepted")
    except ValueError:
        pass
    fa.send(COMMAND, command("flush", []))
    assert fb.recv(timeout=2) == (COMMAND, {"verb": 1, "selectors": []})
    fa.close()
    try:
        fb.recv(timeout=2)
        raise AssertionError("no EOF")
    except EOFError:
        pass
    fb.close()
    print("ternframe selftest: ok")


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        _selftest()
    else:
        sys.exit("usage: ternframe.py --selftest")
