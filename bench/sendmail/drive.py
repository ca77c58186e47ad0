"""bench/sendmail/drive.py N OUT CMD...: run CMD N times one after the
other, each with one small message on standard input (what PHP's mail()
hands to `sendmail -t -i`), the way a web server's PHP workers do. Writes
key = value lines to OUT: seconds, invocations per second, failures and
the first failure's status and stderr. Standard library only."""
import subprocess
import sys
import time

N, OUT, CMD = int(sys.argv[1]), sys.argv[2], sys.argv[3:]

MESSAGE = (
    "To: user{i}@sink.test\n"
    "Subject: order {i} confirmed\n"
    "X-PHP-Originating-Script: 33:order.php\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=UTF-8\n"
    "\n"
    "Hello,\n\nyour order {i} is confirmed and ships tomorrow.\n"
    "Thank you for shopping with us.\n\n-- \nThe shop\n")

failures, first = 0, ""
t0 = time.monotonic()
for i in range(N):
    try:
        r = subprocess.run(CMD, input=MESSAGE.format(i=i).encode(), capture_output=True,
                           timeout=60)
        rc, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired:
        rc, err = "timeout", b""
    if rc != 0:
        failures += 1
        if not first:
            first = f"status {rc}: {err.decode(errors='replace').strip()[:300]}"
elapsed = time.monotonic() - t0
with open(OUT, "w") as f:
    f.write(f"invocations = {N}\nseconds = {elapsed:.3f}\n"
            f"per_second = {N / elapsed:.1f}\nms_each = {1000 * elapsed / N:.3f}\n"
            f"failures = {failures}\nfirst_failure = {first}\n")
