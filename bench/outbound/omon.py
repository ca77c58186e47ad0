#!/usr/bin/python3
"""bench/outbound/omon.py: log, /proc and sink probes for bench/outbound/run.sh.

Every wait is bounded; every command prints `key=value` lines on stdout
(run.sh appends them, prefixed, to its results) and exits 1 when it gave up.

  omon.py deliveries LOG OFFSET AGENT NRCPT NMSG TIMEOUT STALL SINKPORT [CGROUP]
      Follow LOG from byte OFFSET until NRCPT recipients have a result
      (status=sent, bounced or deferred) logged by the delivery agent or
      qmgr, then (bounded) until NMSG messages are "removed". AGENT is the
      agent's log tag ("tern/smtp[", "postfix/smtp["). Gives up after
      TIMEOUT seconds in all, or STALL seconds without a new result line.
      Meanwhile, every half second: established connections to SINKPORT
      (their peak), and, with CGROUP, the processes in that cgroup (how many
      distinct ones, the largest VmHWM of one, the peak of their summed Pss).
      Prints the counts, the wall-clock
      time (CLOCK_REALTIME ns, as observed) of the first and last sent line
      and of the last "removed" line, and the sample figures.
  omon.py count LOG OFFSET TEXT N TIMEOUT
      Wait until N lines containing TEXT were written after OFFSET.
  omon.py proc PID
      CPU (utime and stime, us, all threads) and memory (VmRSS, VmHWM, kB).
  omon.py cgcpu DIR
      A cgroup v2 directory's cpu.stat: usage, user and system (us).
  omon.py sink FILE
      The last counters smtp-sink -c wrote: sessions (connections),
      QUITs and messages.
  omon.py report RESULTS OUT
      Turn the key=value lines of a run into bench/results/outbound-DATE.txt
      (per case figures, ratios tern/Postfix, a summary); prints it.
"""
import os
import re
import statistics
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def die(msg):
    print(f"omon: {msg}", file=sys.stderr)
    sys.exit(1)


# ---- /proc ----------------------------------------------------------------


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()


def cpu_split_us(pid):
    r = stat_fields(pid)
    return int(r[11]) * 1000000 // HZ, int(r[12]) * 1000000 // HZ


def mem_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmd_proc(pid):
    u, s = cpu_split_us(pid)
    m = mem_kb(pid)
    print(f"cpu_us={u + s}")
    print(f"user_us={u}")
    print(f"sys_us={s}")
    print(f"rss_kb={m.get('VmRSS', 0)}")
    print(f"hwm_kb={m.get('VmHWM', 0)}")
    print(f"pss_kb={pss_kb(pid)}")
    return 0


def cgroup_cpu(d):
    out = {}
    with open(os.path.join(d, "cpu.stat")) as f:
        for line in f:
            k, v = line.split()
            out[k] = int(v)
    return out


def cmd_cgcpu(d):
    c = cgroup_cpu(d)
    print(f"cpu_us={c.get('usage_usec', 0)}")
    print(f"user_us={c.get('user_usec', 0)}")
    print(f"sys_us={c.get('system_usec', 0)}")
    return 0


SINK_RE = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")


def cmd_sink(path):
    with open(path, "rb") as f:
        data = f.read()
    m = None
    for m in SINK_RE.finditer(data):
        pass
    if m is None:
        print("sessions=0\nquits=0\nmessages=0")
        return 0
    print(f"sessions={int(m.group(1))}")
    print(f"quits={int(m.group(2))}")
    print(f"messages={int(m.group(3))}")
    return 0


# ---- the log --------------------------------------------------------------


class Tail:
    """Lines appended to a file after an offset (complete lines only)."""

    def __init__(self, path, offset):
        self.path, self.pos, self.part = path, offset, b""

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return []
        self.pos += len(data)
        data = self.part + data
        *full, self.part = data.split(b"\n")
        return full


def cmd_count(log, offset, text, n, timeout):
    t = Tail(log, int(offset))
    text, n, timeout = text.encode(), int(n), float(timeout)
    t0 = time.monotonic()
    count = 0
    while True:
        for line in t.lines():
            if text in line:
                count += 1
        el = time.monotonic() - t0
        if count >= n:
            print(f"count={count}")
            print(f"seconds={el:.3f}")
            return 0
        if el > timeout:
            print(f"count={count}")
            die(f"{log}: {count} of {n} lines with {text.decode()!r} after {timeout:.0f} s")
        time.sleep(0.05)


def sink_connections(port):
    """Established TCP connections whose local port is the sink's."""
    try:
        r = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                           capture_output=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return sum(1 for line in r.stdout.splitlines() if line.strip())


def cgroup_pids(d):
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


STATUS_RE = re.compile(rb"status=(sent|deferred|bounced) ")
RELAY_RE = re.compile(rb"relay=([^,]*),")


def cmd_deliveries(log, offset, agent, nrcpt, nmsg, timeout, stall, port, cgroup=None):
    t = Tail(log, int(offset))
    agent = agent.encode()
    nrcpt, nmsg, timeout, stall = int(nrcpt), int(nmsg), float(timeout), float(stall)
    t0 = time.monotonic()
    last_news = t0
    counts = {b"sent": 0, b"deferred": 0, b"bounced": 0}
    by_agent = 0
    removed = 0
    first_sent = last_sent = last_removed = 0
    first_problem = ""
    relays = {}
    peak_conn = 0
    pids, peak_hwm, peak_pss = set(), 0, 0
    next_sample = 0.0
    results_done = None
    rc = 0
    while True:
        now_rt = time.time_ns()
        for line in t.lines():
            m = STATUS_RE.search(line)
            if m:
                st = m.group(1)
                counts[st] += 1
                last_news = time.monotonic()
                if agent in line:
                    by_agent += 1
                if st == b"sent":
                    if not first_sent:
                        first_sent = now_rt
                    last_sent = now_rt
                    r = RELAY_RE.search(line)
                    if r:
                        relays[r.group(1)] = relays.get(r.group(1), 0) + 1
                elif not first_problem:
                    first_problem = line.decode("utf-8", "replace")
            elif line.endswith(b": removed"):
                removed += 1
                last_removed = now_rt
        mono = time.monotonic()
        if mono >= next_sample:
            next_sample = mono + 0.5
            c = sink_connections(port)
            if c is not None and c > peak_conn:
                peak_conn = c
            if cgroup:
                pss = 0
                for p in cgroup_pids(cgroup):
                    pids.add(p)
                    try:
                        h = mem_kb(p).get("VmHWM", 0)
                    except OSError:
                        continue
                    peak_hwm = max(peak_hwm, h)
                    pss += pss_kb(p)
                peak_pss = max(peak_pss, pss)
        done = sum(counts.values())
        if done >= nrcpt and results_done is None:
            results_done = mono
        if results_done is not None and (removed >= nmsg or mono - results_done > 10):
            break
        if mono - t0 > timeout:
            first_problem = first_problem or f"timed out after {timeout:.0f} s"
            rc = 1
            break
        if mono - last_news > stall:
            first_problem = first_problem or f"no new result line for {stall:.0f} s"
            rc = 1
            break
        time.sleep(0.02)
    print(f"sent={counts[b'sent']}")
    print(f"deferred={counts[b'deferred']}")
    print(f"bounced={counts[b'bounced']}")
    print(f"results_by_agent={by_agent}")
    print(f"removed={removed}")
    print(f"first_sent_ns={first_sent}")
    print(f"last_sent_ns={last_sent}")
    print(f"last_removed_ns={last_removed}")
    print(f"sink_peak_connections={peak_conn}")
    print(f"relays={' '.join(f'{k.decode()}:{v}' for k, v in relays.items())}")
    if cgroup:
        print(f"agent_processes={len(pids)}")
        print(f"agent_peak_hwm_kb={peak_hwm}")
        print(f"agent_peak_pss_sum_kb={peak_pss}")
    if first_problem:
        print(f"problem={first_problem.strip()}")
    if rc:
        die(f"{log}: {done} of {nrcpt} results, {removed} of {nmsg} removed: {first_problem}")
    return 0


# ---- the report -----------------------------------------------------------


def cmd_report(results, out):
    kv, multi = {}, {}
    with open(results) as f:
        for line in f:
            k, sep, v = line.rstrip("\n").partition("=")
            if not sep:
                continue
            kv[k] = v
            multi.setdefault(k, []).append(v)

    def num(k):
        v = kv.get(k)
        try:
            return float(v) if v not in (None, "") else None
        except ValueError:
            return None

    def ratio(a, b):
        return round(a / b, 3) if a is not None and b else None

    res = {}
    keep = ("date", "host", "kernel", "cpus", "load_before", "tern_build_type", "tern_commit",
            "tern_binary_time", "tern_version", "postfix_version", "postfix_extra_conf", "messages", "message_bytes",
            "inject_sessions",
            "rcpts", "concurrency", "modes", "cases", "sink", "run_seconds", "load_after")
    for k in keep:
        if k in kv:
            res[k] = kv[k]
    cases = []
    for k in kv:
        m = re.match(r"^(tern|postfix)\.(\w+)\.c(\d+)\.r(\d+)\.messages$", k)
        if m:
            cases.append((m.group(1), m.group(2), int(m.group(3)), int(m.group(4))))

    mismatches = []
    figs = {}
    for sys_, mode, c, r in cases:
        p = f"{sys_}.{mode}.c{c}.r{r}."
        n = num(p + "messages")
        nr = n * r
        t0, t_flush = num(p + "t0_ns"), num(p + "flush_ns")
        start = t_flush if mode == "backlog" else t0
        last = num(p + "wait.last_sent_ns")
        f = {}
        if start and last:
            wall = (last - start) / 1e9
            f["wall_s"] = round(wall, 2)
            f["msgs_per_s"] = round(n / wall, 1) if wall > 0 else None
            f["rcpts_per_s"] = round(nr / wall, 1) if wall > 0 else None
        inj = num(p + "inject_end_ns")
        if inj and t0:
            f["inject_s"] = round((inj - t0) / 1e9, 2)
            f["inject_msgs_per_s"] = round(n / ((inj - t0) / 1e9), 1)
        if mode == "backlog" and t_flush and num(p + "deferred_ns"):
            f["defer_all_s"] = round((num(p + "deferred_ns") - t0) / 1e9, 2)
        for part in ("agent", "qmgr", "system", "sink"):
            cpu = num(p + f"{part}.cpu_us")
            if cpu is not None:
                f[f"{part}_cpu_us_per_msg"] = round(cpu / n, 1)
                if r > 1:
                    f[f"{part}_cpu_us_per_rcpt"] = round(cpu / nr, 1)
                u = num(p + f"{part}.user_us")
                if u is not None:
                    f[f"{part}_user_us_per_msg"] = round(u / n, 1)
                    f[f"{part}_sys_us_per_msg"] = round((cpu - u) / n, 1)
        f["agent_peak_rss_kb"] = num(p + "agent.hwm_kb")
        f["agent_peak_pss_sum_kb"] = num(p + "agent.pss_sum_kb")
        f["agent_processes"] = num(p + "agent.processes")
        sent = num(p + "wait.sent")
        f["sent"] = sent
        f["deferred"] = num(p + "wait.deferred")
        f["bounced"] = num(p + "wait.bounced")
        f["removed"] = num(p + "wait.removed")
        sm, ss = num(p + "sink.messages"), num(p + "sink.sessions")
        if ss is not None:
            ss -= num(p + "sink.probe_sessions") or 0  # our greeting probe
        f["sink_messages"] = sm
        f["sink_connections"] = ss
        f["sink_peak_concurrent_connections"] = num(p + "wait.sink_peak_connections")
        if sm and ss:
            f["msgs_per_connection"] = round(sm / ss, 2)
        ok = sm == n and sent == nr and not f["deferred"] and not f["bounced"]
        f["complete"] = "yes" if ok else "NO"
        if not ok:
            def i(v):
                return "?" if v is None else f"{v:.0f}"
            mismatches.append(f"{sys_} {mode} c{c} r{r}: sent {n:.0f} messages x {r} recipients; "
                              f"the sink received {i(sm)} messages; the log says {i(sent)} sent, "
                              f"{i(f['deferred'])} deferred, {i(f['bounced'])} bounced"
                              + (f" (first: {kv.get(p + 'wait.problem')})"
                                 if kv.get(p + "wait.problem") else ""))
        f = {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in f.items()}
        figs[(sys_, mode, c, r)] = f
        for k, v in f.items():
            if v is not None:
                res[f"{sys_}.{mode}.c{c}.r{r}.{k}"] = v if not isinstance(v, float) or \
                    not v.is_integer() else int(v)

    # Ratios tern/Postfix for each case both ran.
    ratios = {}
    for (sys_, mode, c, r), f in figs.items():
        if sys_ != "tern" or ("postfix", mode, c, r) not in figs:
            continue
        g = figs[("postfix", mode, c, r)]
        q = {
            "throughput": ratio(f.get("msgs_per_s"), g.get("msgs_per_s")),
            "agent_cpu_per_msg": ratio(f.get("agent_cpu_us_per_msg"), g.get("agent_cpu_us_per_msg")),
            "qmgr_cpu_per_msg": ratio(f.get("qmgr_cpu_us_per_msg"), g.get("qmgr_cpu_us_per_msg")),
            "system_cpu_per_msg": ratio(f.get("system_cpu_us_per_msg"),
                                        g.get("system_cpu_us_per_msg")),
            "sink_cpu_per_msg": ratio(f.get("sink_cpu_us_per_msg"), g.get("sink_cpu_us_per_msg")),
            "agent_memory": ratio(f.get("agent_peak_rss_kb"), g.get("agent_peak_pss_sum_kb")),
        }
        ratios[(mode, c, r)] = q
        for k, v in q.items():
            if v is not None:
                res[f"ratio.{mode}.c{c}.r{r}.{k}_tern_postfix"] = v
    res["sink_check"] = "OK" if not mismatches else "MISMATCH"

    lines = [f"{k} = {v}" for k, v in res.items()]
    g = res.get
    s = ["", "# Summary", ""]
    s.append(f"# {g('messages')} messages of ~{g('message_bytes')} bytes per case, injected by "
             f"smtp-source over {g('inject_sessions')} sessions; relayhost = [127.0.0.1]:PORT "
             f"(smtp-sink); {g('cpus')} CPUs; tern {g('tern_version', '?')} at "
             f"{g('tern_commit', '?')} ({g('tern_build_type', '?')}), Postfix "
             f"{g('postfix_version', '-')}; the run took {g('run_seconds', '?')} s, load "
             f"average {g('load_before', '?')} before, {g('load_after', '?')} after")
    s.append("# live: delivery while injecting, from the first injection to the last "
             "status=sent; backlog: the messages queued (sink down, all deferred), then a "
             "flush, from the flush to the last status=sent")
    s.append("# agent = tern's smtp process / Postfix's smtp processes (summed, a cgroup); "
             "system = every process of the mail system (smtpd, cleanup, qmgr, agents, ...)")
    for key in sorted(figs, key=lambda k: (k[1] != "live", k[2], k[3], k[0] != "tern")):
        sys_, mode, c, r = key
        f = figs[key]
        if sys_ == "tern":
            mem = f"agent peak RSS {f.get('agent_peak_rss_kb', '-')} kB (one process)"
        else:
            mem = (f"{f.get('agent_processes', '-')} smtp processes, peak RSS of one "
                   f"{f.get('agent_peak_rss_kb', '-')} kB, peak PSS of all "
                   f"{f.get('agent_peak_pss_sum_kb', '-')} kB")
        s.append(f"# {sys_:7} {mode:7} conc {c:3} rcpts {r}: {f.get('msgs_per_s', '-')} msgs/s "
                 f"({f.get('wall_s', '-')} s); agent CPU {f.get('agent_cpu_us_per_msg', '-')} "
                 f"us/msg, qmgr {f.get('qmgr_cpu_us_per_msg', '-')} us/msg, system "
                 f"{f.get('system_cpu_us_per_msg', '-')} us/msg, sink "
                 f"{f.get('sink_cpu_us_per_msg', '-')} us/msg; {mem}; sink: "
                 f"{f.get('sink_messages', '-')} messages over {f.get('sink_connections', '-')} "
                 f"connections ({f.get('msgs_per_connection', '-')} per connection, peak "
                 f"{f.get('sink_peak_concurrent_connections', '-')} at once); complete: "
                 f"{f['complete']}")
    for (mode, c, r), q in sorted(ratios.items(), key=lambda k: (k[0][0] != "live", k[0][1:])):
        s.append(f"# tern/Postfix {mode} conc {c} rcpts {r}: throughput x{q['throughput']}, "
                 f"agent CPU per message x{q['agent_cpu_per_msg']}, qmgr CPU per message "
                 f"x{q['qmgr_cpu_per_msg']}, whole system CPU per message "
                 f"x{q['system_cpu_per_msg']}, the sink's CPU per message "
                 f"x{q['sink_cpu_per_msg']}, agent memory x{q['agent_memory']} (tern's peak "
                 f"RSS / the peak PSS of Postfix's smtp processes together)")
    if mismatches:
        s.append("# !!! MISMATCH: not every message reached the sink exactly once:")
        s += [f"# !!! {m}" for m in mismatches]
    else:
        s.append("# sink check: every sink received exactly the messages sent, every recipient "
                 "was logged status=sent once")
    text = "\n".join(lines + s) + "\n"
    with open(out, "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0 if not mismatches else 2


def main(argv):
    if len(argv) < 2:
        die(__doc__)
    cmd, args = argv[1], argv[2:]
    try:
        if cmd == "deliveries" and len(args) in (8, 9):
            return cmd_deliveries(*args)
        if cmd == "count" and len(args) == 5:
            return cmd_count(*args)
        if cmd == "proc" and len(args) == 1:
            return cmd_proc(int(args[0]))
        if cmd == "cgcpu" and len(args) == 1:
            return cmd_cgcpu(args[0])
        if cmd == "sink" and len(args) == 1:
            return cmd_sink(args[0])
        if cmd == "report" and len(args) == 2:
            return cmd_report(*args)
    except (OSError, ValueError) as e:
        die(f"{cmd}: {e}")
    die(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
