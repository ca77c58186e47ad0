#!/usr/bin/python3
"""bench/relay/rmon.py: machine sampler and report for bench/relay/run.sh.

  rmon.py sample OUT CGROUP LIMIT
      Every 0.25 s until SIGTERM (or LIMIT seconds), append one line to OUT:
      CLOCK_REALTIME ns, the machine's busy CPU time (us: user, nice,
      system, irq, softirq of /proc/stat's cpu line), its steal time (us),
      the usage_usec of the cgroup directory CGROUP (-1 while it does not
      exist: bench/outbound makes it once started) and the 1-minute load
      average. run.sh starts one per bench/outbound run, with that run's
      cgroup (everything the bench starts: both mail systems, smtp-source,
      smtp-sink), so "busy - cgroup" is the CPU the rest of the machine
      used meanwhile (other people's work, and the bench's own Python
      monitors, which are not in the cgroup).
  rmon.py report LIST OUT
      LIST has one line per bench/outbound run: CASE ROUND ORDER RC
      RESULTS RAW SAMPLES (ORDER is "tern,postfix" or "postfix,tern";
      RESULTS the outbound-DATE.txt it wrote, RAW its key=value working
      file, SAMPLES the sampler's file). Writes OUT (key = value lines,
      then a # Summary with a table, medians over the rounds, the ratios
      tern/Postfix and the targets) and prints it. Exits 2 when a sink did
      not get exactly the messages sent (or a run failed), else 0.
"""
import os
import signal
import statistics
import sys
import time

CK = os.sysconf("SC_CLK_TCK")
CASE_TAG = "live.c20.r1"  # the only bench/outbound case run.sh asks for
TARGET_RATIO = 4.0  # issue 4: tern >= 4x Postfix's end-to-end messages/s
TARGET_CPU_MS = 1.5  # issue 4: < 1.5 ms of CPU per relayed 1 KiB message


def die(msg):
    print(f"rmon: {msg}", file=sys.stderr)
    sys.exit(1)


# ---- the sampler ------------------------------------------------------------


def machine_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    steal = v[7] if len(v) > 7 else 0
    return busy * 1000000 // CK, steal * 1000000 // CK


def cg_usage(d):
    try:
        with open(os.path.join(d, "cpu.stat")) as f:
            for line in f:
                k, v = line.split()
                if k == "usage_usec":
                    return int(v)
    except OSError:
        pass
    return -1


def cmd_sample(out, cgroup, limit):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    end = time.monotonic() + float(limit)
    with open(out, "a", buffering=1) as f:
        while not stop and time.monotonic() < end:
            busy, steal = machine_cpu()
            with open("/proc/loadavg") as la:
                load = la.read().split()[0]
            f.write(f"{time.time_ns()} {busy} {steal} {cg_usage(cgroup)} {load}\n")
            time.sleep(0.25)
    return 0


# ---- the report -------------------------------------------------------------


def read_kv(path, sep):
    kv = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#"):
                    continue
                k, s, v = line.rstrip("\n").partition(sep)
                if s:
                    kv[k.strip()] = v.strip()
    except OSError:
        pass
    return kv


def read_samples(path):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 5:
                    rows.append((int(p[0]), int(p[1]), int(p[2]), int(p[3]), float(p[4])))
    except OSError:
        pass
    return rows


def window(samples, t0, t1):
    """Machine figures between t0 and t1 (ns): the first sample at or after
    t0 and the last at or before t1 (0.25 s apart)."""
    inside = [s for s in samples if t0 <= s[0] <= t1]
    if len(inside) < 2:
        return {}
    a, b = inside[0], inside[-1]
    sec = (b[0] - a[0]) / 1e9
    if sec <= 0:
        return {}
    w = {"busy_cores": (b[1] - a[1]) / 1e6 / sec, "steal_cores": (b[2] - a[2]) / 1e6 / sec,
         "load_max": max(s[4] for s in inside), "load_start": a[4], "load_end": b[4]}
    if a[3] >= 0 and b[3] >= 0:
        w["bench_cores"] = (b[3] - a[3]) / 1e6 / sec
        w["other_cores"] = max(0.0, w["busy_cores"] - w["bench_cores"])
    return w


def fnum(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def r(v, n=1):
    if v is None:
        return None
    v = round(v, n)
    return int(v) if float(v).is_integer() else v


def fmt(v, n=1, thousands=False):
    if v is None:
        return "-"
    v = round(v, n)
    if thousands:
        return f"{v:,.{n}f}" if n else f"{v:,.0f}"
    return f"{v:.{n}f}"


def cmd_report(listing, out):
    runs = []
    with open(listing) as f:
        for line in f:
            p = line.split()
            if len(p) == 7:
                runs.append(dict(zip(("case", "round", "order", "rc", "results", "raw", "samples"), p)))
    if not runs:
        die(f"{listing}: no runs")
    head = {}
    res = []
    figs = {}  # (case, round, sys) -> dict
    failures = []
    for run in runs:
        kv = read_kv(run["results"], " = ")
        raw = read_kv(run["raw"], "=")
        samples = read_samples(run["samples"])
        case, rnd = run["case"], int(run["round"])
        if int(run["rc"]) not in (0, 2):
            failures.append(f"{case} round {rnd}: bench/outbound exited {run['rc']}")
        for k in ("host", "kernel", "cpus", "tern_build_type", "tern_commit", "tern_binary_time",
                  "tern_version", "postfix_version", "inject_sessions"):
            if k in kv:
                head.setdefault(k, kv[k])
        res.append(f"{case}.round{rnd}.order = {run['order'].replace(',', ' ')}")
        res.append(f"{case}.round{rnd}.outbound_exit = {run['rc']}")
        res.append(f"{case}.round{rnd}.messages = {kv.get('messages', '?')}")
        res.append(f"{case}.round{rnd}.message_bytes = {kv.get('message_bytes', '?')}")
        res.append(f"{case}.round{rnd}.load_before = {kv.get('load_before', '?')}")
        for sys_ in run["order"].split(","):
            p = f"{sys_}.{CASE_TAG}."
            if p + "messages" not in raw:
                failures.append(f"{case} round {rnd} {sys_}: no figures (the run stopped early)")
                continue
            n = fnum(raw.get(p + "messages"))
            f = {
                "messages": n,
                "msgs_per_s": fnum(kv.get(p + "msgs_per_s")),
                "wall_s": fnum(kv.get(p + "wall_s")),
                "inject_s": fnum(kv.get(p + "inject_s")),
                "system_ms_per_msg": (fnum(kv.get(p + "system_cpu_us_per_msg")) or 0) / 1000
                if kv.get(p + "system_cpu_us_per_msg") else None,
                "system_user_ms_per_msg": (fnum(kv.get(p + "system_user_us_per_msg")) or 0) / 1000
                if kv.get(p + "system_user_us_per_msg") else None,
                "agent_ms_per_msg": (fnum(kv.get(p + "agent_cpu_us_per_msg")) or 0) / 1000
                if kv.get(p + "agent_cpu_us_per_msg") else None,
                "qmgr_ms_per_msg": (fnum(kv.get(p + "qmgr_cpu_us_per_msg")) or 0) / 1000
                if kv.get(p + "qmgr_cpu_us_per_msg") else None,
                "sink_ms_per_msg": (fnum(kv.get(p + "sink_cpu_us_per_msg")) or 0) / 1000
                if kv.get(p + "sink_cpu_us_per_msg") else None,
                "sink_messages": fnum(kv.get(p + "sink_messages")),
                "sink_connections": fnum(kv.get(p + "sink_connections")),
                "sent": fnum(kv.get(p + "sent")),
                "deferred": fnum(kv.get(p + "deferred")),
                "bounced": fnum(kv.get(p + "bounced")),
                "complete": kv.get(p + "complete", "NO"),
            }
            t0, t1 = fnum(raw.get(p + "t0_ns")), fnum(raw.get(p + "wait.last_sent_ns"))
            if t0 and t1:
                w = window(samples, t0, t1)
                f.update({k: v for k, v in w.items()})
            if f["complete"] != "yes":
                def i(v):
                    return "?" if v is None else f"{v:.0f}"
                problem = raw.get(p + "wait.problem")
                failures.append(
                    f"{case} round {rnd} {sys_}: {i(n)} messages sent; the sink received "
                    f"{i(f['sink_messages'])}, the log says {i(f['sent'])} sent, "
                    f"{i(f['deferred'])} deferred, {i(f['bounced'])} bounced"
                    + (f" (first problem: {problem})" if problem else ""))
            figs[(case, rnd, sys_)] = f
            for k, v in f.items():
                if v is None:
                    continue
                if isinstance(v, float):
                    v = r(v, 3 if k.endswith("_ms_per_msg") or k.endswith("_cores") else 2)
                res.append(f"{case}.round{rnd}.{sys_}.{k} = {v}")

    # medians over the rounds, ratios
    cases = []
    for run in runs:
        if run["case"] not in cases:
            cases.append(run["case"])
    summ = {}
    for case in cases:
        rounds = sorted({k[1] for k in figs if k[0] == case})
        m = {}
        for sys_ in ("tern", "postfix"):
            fs = [figs[(case, rd, sys_)] for rd in rounds if (case, rd, sys_) in figs]
            m[sys_] = {k: med([f.get(k) for f in fs]) for k in
                       ("msgs_per_s", "wall_s", "inject_s", "system_ms_per_msg",
                        "system_user_ms_per_msg", "agent_ms_per_msg", "qmgr_ms_per_msg",
                        "sink_ms_per_msg", "other_cores", "bench_cores", "busy_cores", "steal_cores",
                        "load_max", "messages")}
            m[sys_]["runs"] = len(fs)
            for k, v in m[sys_].items():
                if v is not None:
                    res.append(f"{case}.median.{sys_}.{k} = {r(v, 3)}")
        per_round_tp, per_round_cpu = [], []
        for rd in rounds:
            a, b = figs.get((case, rd, "tern")), figs.get((case, rd, "postfix"))
            if a and b and a.get("msgs_per_s") and b.get("msgs_per_s"):
                per_round_tp.append(a["msgs_per_s"] / b["msgs_per_s"])
            if a and b and a.get("system_ms_per_msg") and b.get("system_ms_per_msg"):
                per_round_cpu.append(a["system_ms_per_msg"] / b["system_ms_per_msg"])
        t, p = m["tern"], m["postfix"]
        q = {
            "throughput": t["msgs_per_s"] / p["msgs_per_s"]
            if t["msgs_per_s"] and p["msgs_per_s"] else None,
            "system_cpu_per_msg": t["system_ms_per_msg"] / p["system_ms_per_msg"]
            if t["system_ms_per_msg"] and p["system_ms_per_msg"] else None,
            "throughput_rounds": per_round_tp,
            "cpu_rounds": per_round_cpu,
        }
        summ[case] = (m, q)
        if q["throughput"] is not None:
            res.append(f"{case}.ratio.throughput_tern_postfix = {r(q['throughput'], 2)}")
        if q["system_cpu_per_msg"] is not None:
            res.append(f"{case}.ratio.system_cpu_per_msg_tern_postfix = "
                       f"{r(q['system_cpu_per_msg'], 3)}")
        if per_round_tp:
            res.append(f"{case}.ratio.throughput_per_round = "
                       + " ".join(f"{x:.2f}" for x in per_round_tp))
        if per_round_cpu:
            res.append(f"{case}.ratio.system_cpu_per_round = "
                       + " ".join(f"{x:.3f}" for x in per_round_cpu))
    res.append(f"sink_check = {'OK' if not failures else 'MISMATCH'}")

    # the summary
    s = ["", "# Summary", ""]
    s.append(f"# live relay: smtp-source ({head.get('inject_sessions', '?')} sessions, N messages "
             f"in all) -> system -> smtp-sink (relayhost = [127.0.0.1]:PORT, concurrency 20); "
             f"msgs/s from the first injection to the last status=sent; CPU = the whole mail "
             f"system's cgroup (ms per message = s per 1,000 messages); medians of "
             f"{max(len(q['throughput_rounds']) for _, q in summ.values()) if summ else 0} "
             f"round(s), tern and Postfix alternating within each")
    s.append(f"# tern {head.get('tern_version', '?')} at {head.get('tern_commit', '?')} "
             f"({head.get('tern_build_type', '?')}), Postfix {head.get('postfix_version', '?')}, "
             f"{head.get('cpus', '?')} CPUs; fsync left on in both")
    s.append("#")
    s.append("# | case | system | msgs/s | CPU ms/msg | agent | qmgr | sink | bench cores | "
             "other cores |")
    s.append("# |---|---|---|---|---|---|---|---|---|")
    for case, (m, q) in summ.items():
        for sys_ in ("tern", "postfix"):
            x = m[sys_]
            s.append(f"# | {case} | {sys_} | {fmt(x['msgs_per_s'], 0, True)} | "
                     f"{fmt(x['system_ms_per_msg'], 3)} | {fmt(x['agent_ms_per_msg'], 3)} | "
                     f"{fmt(x['qmgr_ms_per_msg'], 3)} | {fmt(x['sink_ms_per_msg'], 3)} | "
                     f"{fmt(x['bench_cores'], 2)} | {fmt(x['other_cores'], 2)} |")
        s.append(f"# | {case} | tern/Postfix | x{fmt(q['throughput'], 2)} | "
                 f"x{fmt(q['system_cpu_per_msg'], 3)} | | | | | |")
    s.append("# (agent, qmgr, sink: ms per message; bench cores: the CPU the bench's cgroup (both "
             "systems' processes, smtp-source, smtp-sink) used during the measured window; other "
             "cores: the rest of the machine meanwhile)")
    s.append("#")
    for case, (m, q) in summ.items():
        tp = " ".join(f"x{x:.2f}" for x in q["throughput_rounds"])
        cp = " ".join(f"x{x:.3f}" for x in q["cpu_rounds"])
        s.append(f"# {case}: per round, throughput {tp or '-'}, CPU per message {cp or '-'}; "
                 f"tern {fmt(m['tern']['wall_s'], 2)} s (injection {fmt(m['tern']['inject_s'], 2)} s), "
                 f"Postfix {fmt(m['postfix']['wall_s'], 2)} s (injection "
                 f"{fmt(m['postfix']['inject_s'], 2)} s); machine busy {fmt(m['tern']['busy_cores'], 2)}"
                 f" / {fmt(m['postfix']['busy_cores'], 2)} cores, of which outside the bench "
                 f"{fmt(m['tern']['other_cores'], 2)} / {fmt(m['postfix']['other_cores'], 2)}; "
                 f"peak load average {fmt(m['tern']['load_max'], 2)} / "
                 f"{fmt(m['postfix']['load_max'], 2)} (tern / Postfix windows)")
    first = cases[0] if cases else None
    if first:
        m, q = summ[first]
        tp_ok = q["throughput"] is not None and q["throughput"] >= TARGET_RATIO
        cpu_ok = m["tern"]["system_ms_per_msg"] is not None and \
            m["tern"]["system_ms_per_msg"] < TARGET_CPU_MS
        s.append(f"# targets ({first}): throughput >= x{TARGET_RATIO:g} Postfix: "
                 f"x{fmt(q['throughput'], 2)} {'met' if tp_ok else 'NOT met'}; "
                 f"< {TARGET_CPU_MS} ms CPU per message: {fmt(m['tern']['system_ms_per_msg'], 3)} ms "
                 f"{'met' if cpu_ok else 'NOT met'}")
        res.append(f"target.throughput_x{TARGET_RATIO:g} = {'met' if tp_ok else 'not met'}")
        res.append(f"target.cpu_under_{TARGET_CPU_MS}ms = {'met' if cpu_ok else 'not met'}")
    if failures:
        s.append("# !!! MISMATCH or failure: not every message reached the sink exactly once:")
        s += [f"# !!! {x}" for x in failures]
    else:
        s.append("# sink check: in every run each sink received exactly the messages sent, "
                 "and every recipient was logged status=sent once (none deferred or bounced)")
    lines = [f"{k} = {v}" for k, v in head.items()] + res
    text = "\n".join(lines + s) + "\n"
    with open(out, "a") as f:
        f.write(text)
    sys.stdout.write(text)
    return 2 if failures else 0


def main(argv):
    if len(argv) < 2:
        die(__doc__)
    cmd, args = argv[1], argv[2:]
    try:
        if cmd == "sample" and len(args) == 3:
            return cmd_sample(*args)
        if cmd == "report" and len(args) == 2:
            return cmd_report(*args)
    except (OSError, ValueError) as e:
        die(f"{cmd}: {e}")
    die(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
