#!/usr/bin/python3
"""bench/lmtp/lmon.py: the report of bench/lmtp/run.sh.

  lmon.py report RESULTS SAMPLES OUT
      RESULTS holds run.sh's key=value lines (per run: CASE.rROUND.SYSTEM.*),
      SAMPLES bench/relay/rmon.py's machine samples for the whole run.
      Writes OUT (key = value lines per case, round and system, the medians
      over the rounds, the ratios tern/Postfix and issue 5's target, then a
      # Summary with a table) and prints it. Exits 2 when a run is
      incomplete (a mailbox without exactly the messages sent to it,
      Dovecot's count or the system's log not N x R deliveries, a deferral
      or bounce), else 0.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "relay"))
from rmon import fmt, med, r, read_samples, window  # noqa: E402

TARGET_RATIO = 1.5  # issue 5: tern >= 1.5x Postfix's messages/s over LMTP
PARTS = ("system", "agent", "qmgr", "dovecot", "client")


def die(msg):
    print(f"lmon: {msg}", file=sys.stderr)
    sys.exit(1)


def fnum(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def read_results(path):
    kv = {}
    with open(path) as f:
        for line in f:
            k, sep, v = line.rstrip("\n").partition("=")
            if sep:
                kv[k] = v
    return kv


def run_figures(kv, p, samples):
    """The figures of one run (prefix p = CASE.rROUND.SYSTEM.), and its
    problems (an empty list when complete)."""
    g = kv.get
    n, nr = fnum(g(p + "messages")), fnum(g(p + "rcpts")) or 1
    f = {"messages": n, "rcpts": nr, "message_bytes": fnum(g(p + "message_bytes")),
         "mailboxes": fnum(g(p + "mailboxes"))}
    t0, t1 = fnum(g(p + "t0_ns")), fnum(g(p + "wait.last_sent_ns"))
    inj = fnum(g(p + "inject_end_ns"))
    if t0 and t1 and t1 > t0 and n:
        wall = (t1 - t0) / 1e9
        f["wall_s"] = wall
        f["msgs_per_s"] = n / wall
        f["deliveries_per_s"] = n * nr / wall
        f.update(window(samples, t0, t1))
    if t0 and inj and n:
        f["inject_s"] = (inj - t0) / 1e9
    for part in PARTS:
        cpu = fnum(g(p + f"{part}.cpu_us"))
        if cpu is not None and n:
            f[f"{part}_ms_per_msg"] = cpu / n / 1000
            u = fnum(g(p + f"{part}.user_us"))
            if u is not None:
                f[f"{part}_user_ms_per_msg"] = u / n / 1000
    for k in ("agent.processes", "dovecot_connections", "maildir_files", "maildir_wrong_boxes",
              "maildir_tmp_files", "dovecot_saved", "dovecot_errors", "wait.sent",
              "wait.deferred", "wait.bounced", "wait.removed"):
        f[k.replace(".", "_")] = fnum(g(p + k))
    want = n * nr if n else None
    problems = []
    if want is None:
        problems.append("no figures (the run stopped early)")
    else:
        if f["maildir_files"] != want or f["maildir_wrong_boxes"] != 0:
            problems.append(f"the Maildirs hold {f['maildir_files']} messages ({want:.0f} sent), "
                            f"{f['maildir_wrong_boxes']} mailbox(es) with a wrong count")
        if f["maildir_tmp_files"]:
            problems.append(f"{f['maildir_tmp_files']} file(s) left in a Maildir's tmp/")
        if f["dovecot_saved"] != want:
            problems.append(f"Dovecot logged {f['dovecot_saved']} saves ({want:.0f} sent)")
        if f["wait_sent"] != want or f["wait_deferred"] or f["wait_bounced"]:
            problems.append(f"the log says {f['wait_sent']} sent, {f['wait_deferred']} deferred, "
                            f"{f['wait_bounced']} bounced ({want:.0f} recipients)"
                            + (f"; first problem: {g(p + 'wait.problem')}"
                               if g(p + "wait.problem") else ""))
        if "msgs_per_s" not in f:
            problems.append("no status=sent line")
    f["complete"] = "yes" if not problems else "NO"
    return f, problems


def cmd_report(results, samples_path, out):
    kv = read_results(results)
    samples = read_samples(samples_path)
    runs = []  # (case, round, sys) in the order run
    for k in kv:
        m = re.match(r"^(\w+)\.r(\d+)\.(tern|postfix)\.messages$", k)
        if m:
            runs.append((m.group(1), int(m.group(2)), m.group(3)))
    if not runs:
        die(f"{results}: no runs")
    head = {k: kv[k] for k in ("date", "host", "kernel", "cpus", "load_before", "rounds", "cases",
                               "inject_sessions", "concurrency", "dovecot_version", "sched_autogroup",
                               "cpu_group",
                               "tern_build_type", "tern_commit", "tern_version",
                               "postfix_version", "postfix_extra_conf", "run_seconds",
                               "load_after") if k in kv}
    res = []
    figs, failures = {}, []
    for case, rnd, sys_ in runs:
        f, problems = run_figures(kv, f"{case}.r{rnd}.{sys_}.", samples)
        figs[(case, rnd, sys_)] = f
        failures += [f"{case} round {rnd} {sys_}: {x}" for x in problems]
        for k, v in f.items():
            if v is None:
                continue
            if isinstance(v, float):
                v = r(v, 3 if k.endswith("_ms_per_msg") or k.endswith("_cores") else 2)
            res.append(f"{case}.round{rnd}.{sys_}.{k} = {v}")

    cases = []
    for case, _, _ in runs:
        if case not in cases:
            cases.append(case)
    keys = ("msgs_per_s", "deliveries_per_s", "wall_s", "inject_s", "busy_cores", "bench_cores",
            "other_cores", "load_max", "messages", "rcpts", "message_bytes", "mailboxes",
            "agent_processes", "dovecot_connections") + \
        tuple(f"{p}_ms_per_msg" for p in PARTS) + tuple(f"{p}_user_ms_per_msg" for p in PARTS)
    summ = {}
    for case in cases:
        rounds = sorted({k[1] for k in figs if k[0] == case})
        m = {}
        for sys_ in ("tern", "postfix"):
            fs = [figs[(case, rd, sys_)] for rd in rounds if (case, rd, sys_) in figs]
            m[sys_] = {k: med([x.get(k) for x in fs]) for k in keys}
            m[sys_]["runs"] = len(fs)
            m[sys_]["range"] = (min((x["msgs_per_s"] for x in fs if x.get("msgs_per_s")),
                                    default=None),
                                max((x["msgs_per_s"] for x in fs if x.get("msgs_per_s")),
                                    default=None))
            for k, v in m[sys_].items():
                if v is not None and not isinstance(v, tuple):
                    res.append(f"{case}.median.{sys_}.{k} = {r(v, 3)}")
        t, p = m["tern"], m["postfix"]
        per_round = []
        for rd in rounds:
            a, b = figs.get((case, rd, "tern")), figs.get((case, rd, "postfix"))
            if a and b and a.get("msgs_per_s") and b.get("msgs_per_s"):
                per_round.append(a["msgs_per_s"] / b["msgs_per_s"])
        q = {"throughput": t["msgs_per_s"] / p["msgs_per_s"]
             if t["msgs_per_s"] and p["msgs_per_s"] else None,
             "system_cpu": t["system_ms_per_msg"] / p["system_ms_per_msg"]
             if t["system_ms_per_msg"] and p["system_ms_per_msg"] else None,
             "rounds": per_round}
        summ[case] = (m, q)
        if q["throughput"] is not None:
            res.append(f"{case}.ratio.throughput_tern_postfix = {r(q['throughput'], 2)}")
            ok = q["throughput"] >= TARGET_RATIO
            res.append(f"{case}.target.throughput_x{TARGET_RATIO:g} = {'met' if ok else 'not met'}")
        if q["system_cpu"] is not None:
            res.append(f"{case}.ratio.system_cpu_per_msg_tern_postfix = {r(q['system_cpu'], 3)}")
        if per_round:
            res.append(f"{case}.ratio.throughput_per_round = "
                       + " ".join(f"{x:.2f}" for x in per_round))
    res.append(f"delivery_check = {'OK' if not failures else 'MISMATCH'}")

    s = ["", "# Summary", ""]
    s.append(f"# smtp-source ({head.get('inject_sessions', '?')} processes, one session each, "
             f"process k to mailbox mK@lmtp.test, with R recipients also 2mK@ .. RmK@) -> "
             f"system -> Dovecot "
             f"{head.get('dovecot_version', '?')} LMTP on a unix socket (concurrency "
             f"{head.get('concurrency', '?')}); msgs/s from the first injection to the last "
             f"status=sent; CPU from cgroup v2 cpu.stat over that window, ms per message; "
             f"medians of {head.get('rounds', '?')} round(s), tern and Postfix alternating")
    s.append(f"# tern {head.get('tern_version', '?')} at {head.get('tern_commit', '?')} "
             f"({head.get('tern_build_type', '?')}), Postfix {head.get('postfix_version', '?')}, "
             f"{head.get('cpus', '?')} CPUs; fsync as each does by default (Dovecot: "
             f"mail_fsync = optimized); load average {head.get('load_before', '?')} before, "
             f"{head.get('load_after', '?')} after; {head.get('run_seconds', '?')} s")
    s.append("#")
    s.append("# | case | system | msgs/s (range) | deliveries/s | system CPU ms/msg | agent | "
             "qmgr | Dovecot | client | bench cores | other cores |")
    s.append("# |---|---|---|---|---|---|---|---|---|---|---|")
    for case, (m, q) in summ.items():
        for sys_ in ("tern", "postfix"):
            x = m[sys_]
            lo, hi = x["range"]
            s.append(f"# | {case} | {sys_} | {fmt(x['msgs_per_s'], 0, True)} "
                     f"({fmt(lo, 0, True)}-{fmt(hi, 0, True)}) | "
                     f"{fmt(x['deliveries_per_s'], 0, True)} | "
                     f"{fmt(x['system_ms_per_msg'], 3)} | {fmt(x['agent_ms_per_msg'], 3)} | "
                     f"{fmt(x['qmgr_ms_per_msg'], 3)} | {fmt(x['dovecot_ms_per_msg'], 3)} | "
                     f"{fmt(x['client_ms_per_msg'], 3)} | {fmt(x['bench_cores'], 2)} | "
                     f"{fmt(x['other_cores'], 2)} |")
        s.append(f"# | {case} | tern/Postfix | x{fmt(q['throughput'], 2)} | | "
                 f"x{fmt(q['system_cpu'], 3)} | | | | | | |")
    s.append("# (agent = tern's lmtp process / Postfix's lmtp processes; Dovecot = all its "
             "processes; client = the smtp-source processes; bench cores: what the bench's "
             "cgroup used in the window; other cores: the rest of the machine meanwhile)")
    s.append("#")
    for case, (m, q) in summ.items():
        t, p = m["tern"], m["postfix"]
        s.append(f"# {case}: {fmt(t['messages'], 0, True)} messages of "
                 f"{fmt(t['message_bytes'], 0, True)} bytes, {fmt(t['rcpts'], 0)} recipient(s) "
                 f"each, {fmt(t['mailboxes'], 0)} mailboxes; per round x"
                 + " x".join(f"{x:.2f}" for x in q["rounds"])
                 + f"; tern {fmt(t['wall_s'], 2)} s (injection {fmt(t['inject_s'], 2)} s), "
                 f"Postfix {fmt(p['wall_s'], 2)} s (injection {fmt(p['inject_s'], 2)} s); "
                 f"LMTP connections tern / Postfix {fmt(t['dovecot_connections'], 0)} / "
                 f"{fmt(p['dovecot_connections'], 0)}; Postfix lmtp processes "
                 f"{fmt(p['agent_processes'], 0)}; peak load {fmt(t['load_max'], 2)} / "
                 f"{fmt(p['load_max'], 2)}")
        ok = q["throughput"] is not None and q["throughput"] >= TARGET_RATIO
        s.append(f"# {case}: target tern >= x{TARGET_RATIO:g} Postfix's msgs/s: "
                 f"x{fmt(q['throughput'], 2)} {'met' if ok else 'NOT met'}")
    if failures:
        s.append("# !!! MISMATCH or failure: not every message reached its Maildir exactly once:")
        s += [f"# !!! {x}" for x in failures]
    else:
        s.append("# delivery check: in every run each of the mailboxes held exactly the messages "
                 "sent to it, Dovecot logged one save per recipient, and every recipient was "
                 "logged status=sent once (none deferred or bounced)")
    lines = [f"{k} = {v}" for k, v in head.items()] + res
    text = "\n".join(lines + s) + "\n"
    with open(out, "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 2 if failures else 0


def main(argv):
    if len(argv) == 5 and argv[1] == "report":
        try:
            return cmd_report(*argv[2:])
        except (OSError, ValueError) as e:
            die(f"report: {e}")
    die(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
