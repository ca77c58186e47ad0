#!/usr/bin/python3
"""Hold N idle SMTP sessions open: idle_sessions.py PORT N [HOLD_SECONDS].

Opens N connections to 127.0.0.1:PORT, reads each greeting (a "220" line),
then prints "holding N" on stdout and keeps every connection open, idle,
until stdin reaches end of file or HOLD_SECONDS (default 120) pass. Exits 1
with a message when fewer than N sessions could be opened within 120 s.
The caller must have raised the open file limit (ulimit -n) above N.
"""
import selectors
import socket
import sys
import time

BATCH = 256  # connections in flight at once


def main():
    port, want = int(sys.argv[1]), int(sys.argv[2])
    hold = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
    sel = selectors.DefaultSelector()
    pending = {}  # socket -> bytes received so far
    held = []
    deadline = time.monotonic() + 120
    started = 0
    while len(held) < want:
        if time.monotonic() > deadline:
            print(f"idle_sessions: only {len(held)} of {want} sessions after 120 s",
                  file=sys.stderr)
            return 1
        while started < want and len(pending) < BATCH:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            except OSError as e:
                print(f"idle_sessions: connect #{started}: {e}", file=sys.stderr)
                return 1
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
            started += 1
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError as e:
                print(f"idle_sessions: session {len(held)}: {e}", file=sys.stderr)
                return 1
            if not data:
                print(f"idle_sessions: server closed session {len(held)} "
                      f"before its greeting: {pending[s]!r}", file=sys.stderr)
                return 1
            pending[s] += data
            if b"\n" in pending[s]:
                if not pending[s].startswith(b"220"):
                    print(f"idle_sessions: greeting {pending[s]!r}", file=sys.stderr)
                    return 1
                sel.unregister(s)
                del pending[s]
                held.append(s)
    print(f"holding {len(held)}", flush=True)
    sel.register(sys.stdin, selectors.EVENT_READ)
    end = time.monotonic() + hold
    while time.monotonic() < end:
        ready = sel.select(timeout=max(0.0, min(1.0, end - time.monotonic())))
        if ready and not sys.stdin.buffer.read1(4096):
            break
    for s in held:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
