#!/usr/bin/python3
"""bench/queue/qmon.py: log and /proc probes for bench/queue/run.sh.

Every wait is bounded; every command prints `key=value` lines on stdout
(run.sh appends them to its results) and exits 1 when it gave up.

  qmon.py count LOG OFFSET TEXT N TIMEOUT
      Wait until N lines containing TEXT were written to LOG after byte
      OFFSET. Prints count= and seconds=.
  qmon.py startup LOG OFFSET T0_NS TIMEOUT SETTLE
      Wait for tern's "queue loaded: ..." line after OFFSET (ternd was
      exec'd at T0_NS, CLOCK_REALTIME ns). Prints what the line says, the
      wall-clock times from ternd's exec and from the qmgr process's start
      to the moment the line appeared, then, SETTLE seconds later, qmgr's
      CPU time and memory.
  qmon.py proc PID [PREFIX]
      CPU time (utime+stime, us) and memory (VmRSS, RssAnon, RssFile, kB).
  qmon.py settle PID QUIET TIMEOUT
      Wait until PID used no CPU for QUIET seconds (Postfix's qmgr after its
      start-up scan of the deferred queue). Prints cpu_us= and seconds=.
  qmon.py report RESULTS OUT
      Turn the key=value lines of a run into bench/results/queue-DATE.txt
      (computed figures, ratios, targets, a short summary); prints it.
"""
import os
import re
import statistics
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def die(msg):
    print(f"qmon: {msg}", file=sys.stderr)
    sys.exit(1)


# ---- /proc ----------------------------------------------------------------


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    # Fields after the command name; rest[0] is field 3 (state).
    return s[s.rindex(")") + 2:].split()


def cpu_us(pid):
    r = stat_fields(pid)
    return (int(r[11]) + int(r[12])) * 1000000 // HZ


def start_realtime(pid):
    """When pid started, CLOCK_REALTIME seconds (clock-tick resolution)."""
    r = stat_fields(pid)
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return time.time() - (up - int(r[19]) / HZ)


def mem_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def print_proc(pid, prefix=""):
    m = mem_kb(pid)
    print(f"{prefix}cpu_us={cpu_us(pid)}")
    print(f"{prefix}rss_kb={m.get('VmRSS', 0)}")
    print(f"{prefix}anon_kb={m.get('RssAnon', 0)}")
    print(f"{prefix}file_kb={m.get('RssFile', 0)}")


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


LOADED_RE = re.compile(rb"tern/qmgr\[(\d+)\]: queue loaded: (\d+) messages, (\d+) recipients "
                       rb"\((\d+) deferred\), (\d+) held, (\d+) destinations in (\d+) ms")
TROUBLE_RE = re.compile(rb"panic:|fatal:|FATAL")


def cmd_startup(log, offset, t0_ns, timeout, settle):
    t = Tail(log, int(offset))
    t0 = int(t0_ns) / 1e9
    deadline = time.monotonic() + float(timeout)
    while True:
        for line in t.lines():
            if TROUBLE_RE.search(line):
                die(f"tern logged trouble while starting: {line.decode(errors='replace')}")
            m = LOADED_RE.search(line)
            if m:
                seen = time.time()
                pid = int(m.group(1))
                try:
                    qstart = start_realtime(pid)
                except OSError:
                    die(f"qmgr {pid} is gone")
                print(f"qmgr_pid={pid}")
                for k, g in (("messages", 2), ("recipients", 3), ("deferred", 4),
                             ("held", 5), ("destinations", 6), ("load_ms", 7)):
                    print(f"{k}={int(m.group(g))}")
                print(f"daemon_wall_ms={(seen - t0) * 1000:.0f}")
                print(f"qmgr_wall_ms={(seen - qstart) * 1000:.0f}")
                time.sleep(float(settle))
                print_proc(pid)
                return 0
        if time.monotonic() > deadline:
            die(f"no 'queue loaded' line in {log} within {timeout} s")
        time.sleep(0.005)


def cmd_settle(pid, quiet, timeout):
    quiet, timeout = float(quiet), float(timeout)
    t0 = time.monotonic()
    last, since = cpu_us(pid), time.monotonic()
    while True:
        time.sleep(0.1)
        c = cpu_us(pid)
        now = time.monotonic()
        if c != last:
            last, since = c, now
        elif now - since >= quiet:
            print(f"cpu_us={c}")
            print(f"seconds={since - t0:.3f}")
            return 0
        if now - t0 > timeout:
            print(f"cpu_us={c}")
            die(f"process {pid} still busy after {timeout:.0f} s")


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
            return float(v) if v is not None else None
        except ValueError:
            return None

    def med(k):
        vs = [float(v) for v in multi.get(k, [])]
        return statistics.median(vs) if vs else None

    def ratio(a, b):
        return round(a / b, 3) if a is not None and b else None

    res = {}
    keep = ("date", "host", "kernel", "cpus", "load_before", "tern_build_type", "tern_commit",
            "tern_version",
            "postfix_version", "messages", "domains", "sched_messages", "qrun_messages", "repeat",
            "message_bytes")
    for k in keep:
        if k in kv:
            res[k] = kv[k]

    n = int(kv.get("messages", "0") or 0)
    sched_n = int(kv.get("sched_messages", "0") or 0)
    qrun_n = int(kv.get("qrun_messages", "0") or 0)
    notes = []

    # tern: start-up (repeated) and memory.
    if "tern.start.load_ms" in multi:
        res["tern_startup_runs"] = len(multi["tern.start.load_ms"])
        res["tern_startup_load_ms_all"] = " ".join(multi["tern.start.load_ms"])
        res["tern_startup_qmgr_wall_ms_all"] = " ".join(multi["tern.start.qmgr_wall_ms"])
        res["tern_startup_daemon_wall_ms_all"] = " ".join(multi["tern.start.daemon_wall_ms"])
        res["tern_startup_load_ms"] = med("tern.start.load_ms")
        res["tern_startup_qmgr_wall_ms"] = med("tern.start.qmgr_wall_ms")
        res["tern_startup_daemon_wall_ms"] = med("tern.start.daemon_wall_ms")
        res["tern_startup_qmgr_cpu_ms"] = round(med("tern.start.cpu_us") / 1000)
        res["tern_startup_destinations"] = kv.get("tern.start.destinations")
        res["tern_startup_messages"] = kv.get("tern.start.messages")
        res["tern_qmgr_rss_kb_queued"] = med("tern.start.rss_kb")
        res["tern_qmgr_anon_kb_queued"] = med("tern.start.anon_kb")
        res["tern_qmgr_file_kb_queued"] = med("tern.start.file_kb")
    if "tern.empty.rss_kb" in kv:
        res["tern_startup_empty_load_ms"] = num("tern.empty.load_ms")
        res["tern_startup_empty_daemon_wall_ms"] = num("tern.empty.daemon_wall_ms")
        res["tern_qmgr_rss_kb_empty"] = num("tern.empty.rss_kb")
        res["tern_qmgr_anon_kb_empty"] = num("tern.empty.anon_kb")
        res["tern_qmgr_file_kb_empty"] = num("tern.empty.file_kb")
    if n and "tern_qmgr_rss_kb_queued" in res and "tern_qmgr_rss_kb_empty" in res:
        res["tern_qmgr_rss_bytes_per_rcpt"] = round(
            (res["tern_qmgr_rss_kb_queued"] - res["tern_qmgr_rss_kb_empty"]) * 1024 / n)
        res["tern_qmgr_anon_bytes_per_rcpt"] = round(
            (res["tern_qmgr_anon_kb_queued"] - res["tern_qmgr_anon_kb_empty"]) * 1024 / n)
        res["tern_qmgr_file_bytes_per_rcpt"] = round(
            (res["tern_qmgr_file_kb_queued"] - res["tern_qmgr_file_kb_empty"]) * 1024 / n)
    if "tern.index_kb" in kv:
        res["tern_spool_index_kb"] = kv["tern.index_kb"]

    # tern: the fill, chunk by chunk (CPU per deferred message as the queue grows).
    chunks = multi.get("tern.fill.chunk", [])
    if chunks:
        per = []
        for c in chunks:
            qlen, msgs, cpu = (int(x) for x in c.split())
            per.append((qlen, round(cpu / msgs, 1)))
        res["tern_fill_cpu_us_per_msg_by_queue_size"] = " ".join(f"{q}:{u}" for q, u in per)
        res["tern_fill_cpu_ratio_last_first"] = ratio(per[-1][1], per[0][1])
        res["tern_fill_seconds"] = kv.get("tern.fill.seconds")

    # tern: scheduling cost.
    for cond in ("empty", "queued"):
        c = med(f"tern.sched.{cond}.cpu_us")
        if c is not None and sched_n:
            res[f"tern_sched_cpu_us_per_msg_{cond}_all"] = " ".join(
                f"{int(x) / sched_n:.1f}" for x in multi[f"tern.sched.{cond}.cpu_us"])
            res[f"tern_sched_cpu_us_per_msg_{cond}"] = round(c / sched_n, 1)
            res[f"tern_sched_seconds_{cond}_all"] = " ".join(multi[f"tern.sched.{cond}.seconds"])
            u, v = med(f"tern.sched.{cond}.user_us"), med(f"tern.sched.{cond}.ctxsw")
            if u is not None:
                res[f"tern_sched_user_us_per_msg_{cond}_all"] = " ".join(
                    f"{int(x) / sched_n:.1f}" for x in multi[f"tern.sched.{cond}.user_us"])
                res[f"tern_sched_user_us_per_msg_{cond}"] = round(u / sched_n, 1)
                res[f"tern_sched_sys_us_per_msg_{cond}"] = round(
                    med(f"tern.sched.{cond}.sys_us") / sched_n, 1)
                res[f"tern_sched_ctxsw_per_msg_{cond}"] = round(v / sched_n, 2)
    res["tern_sched_ratio_queued_empty"] = ratio(res.get("tern_sched_cpu_us_per_msg_queued"),
                                                 res.get("tern_sched_cpu_us_per_msg_empty"))
    res["tern_sched_user_ratio_queued_empty"] = ratio(
        res.get("tern_sched_user_us_per_msg_queued"), res.get("tern_sched_user_us_per_msg_empty"))
    if "tern.list.text_ms" in multi:
        res["tern_list_text_ms"] = med("tern.list.text_ms")
    if "tern.list.json_ms" in multi:
        res["tern_list_json_ms"] = med("tern.list.json_ms")

    # Postfix.
    if "postfix.start.greeting_ms" in multi:
        res["postfix_start_greeting_ms_all"] = " ".join(multi["postfix.start.greeting_ms"])
        res["postfix_start_greeting_ms"] = med("postfix.start.greeting_ms")
        res["postfix_qmgr_startup_cpu_ms"] = round(med("postfix.start.cpu_us") / 1000)
        res["postfix_qmgr_startup_busy_s"] = med("postfix.start.settle_s")
        res["postfix_qmgr_rss_kb_queued"] = med("postfix.start.rss_kb")
        res["postfix_qmgr_anon_kb_queued"] = med("postfix.start.anon_kb")
    if "postfix.empty.rss_kb" in kv:
        res["postfix_start_greeting_ms_empty"] = num("postfix.empty.greeting_ms")
        res["postfix_qmgr_rss_kb_empty"] = num("postfix.empty.rss_kb")
        res["postfix_qmgr_anon_kb_empty"] = num("postfix.empty.anon_kb")
    if n and "postfix_qmgr_rss_kb_queued" in res and "postfix_qmgr_rss_kb_empty" in res:
        res["postfix_qmgr_rss_bytes_per_rcpt"] = round(
            (res["postfix_qmgr_rss_kb_queued"] - res["postfix_qmgr_rss_kb_empty"]) * 1024 / n)
        res["postfix_qmgr_anon_bytes_per_rcpt"] = round(
            (res["postfix_qmgr_anon_kb_queued"] - res["postfix_qmgr_anon_kb_empty"]) * 1024 / n)
    if "postfix.deferred_files" in kv:
        res["postfix_deferred_files"] = kv["postfix.deferred_files"]
    for cond in ("empty", "queued"):
        c = num(f"postfix.sched.{cond}.cpu_us")
        if c is not None and sched_n:
            res[f"postfix_sched_cpu_us_per_msg_{cond}"] = round(c / sched_n, 1)
            if num(f"postfix.sched.{cond}.user_us") is not None:
                res[f"postfix_sched_user_us_per_msg_{cond}"] = round(
                    num(f"postfix.sched.{cond}.user_us") / sched_n, 1)
            res[f"postfix_sched_seconds_{cond}"] = kv.get(f"postfix.sched.{cond}.seconds")
    res["postfix_sched_ratio_queued_empty"] = ratio(
        res.get("postfix_sched_cpu_us_per_msg_queued"), res.get("postfix_sched_cpu_us_per_msg_empty"))
    if "postfix.list_ms" in multi:
        res["postfix_list_ms"] = med("postfix.list_ms")
    res["postfix_fill_seconds"] = kv.get("postfix.fill.seconds")

    # Queue runs (flush ALL / postqueue -f): the first qrun_n deferred again, then all n.
    for sys_ in ("tern", "postfix"):
        c1, c2 = num(f"{sys_}.qrun.first.cpu_us"), num(f"{sys_}.qrun.all.cpu_us")
        if c1 is None or not qrun_n or not n:
            continue
        ms1, ms2 = num(f"{sys_}.qrun.first.ms"), num(f"{sys_}.qrun.all.ms")
        res[f"{sys_}_qrun_first_ms"] = ms1
        res[f"{sys_}_qrun_first_cpu_us_per_msg"] = round(c1 / qrun_n, 1)
        res[f"{sys_}_qrun_all_ms"] = ms2
        res[f"{sys_}_qrun_all_msgs_per_s"] = round(n / (ms2 / 1000)) if ms2 else None
        res[f"{sys_}_qrun_all_cpu_us_per_msg"] = round(c2 / n, 1)
        res[f"{sys_}_qrun_qmgr_rss_kb_before"] = num(f"{sys_}.qrun.before.rss_kb")
        res[f"{sys_}_qrun_qmgr_hwm_kb"] = num(f"{sys_}.qrun.hwm_kb")
        res[f"{sys_}_qrun_qmgr_anon_kb_after"] = num(f"{sys_}.qrun.after.anon_kb")
        res[f"{sys_}_qrun_command_rc"] = kv.get(f"{sys_}.qrun.cmd_rc")
        res[f"{sys_}_qrun_command_ms"] = num(f"{sys_}.qrun.cmd_ms")

    # tern / Postfix, where the two measure the same thing.
    res["ratio_qmgr_rss_queued_tern_postfix"] = ratio(res.get("tern_qmgr_rss_kb_queued"),
                                                      res.get("postfix_qmgr_rss_kb_queued"))
    res["ratio_qmgr_cpu_per_msg_empty_tern_postfix"] = ratio(
        res.get("tern_sched_cpu_us_per_msg_empty"), res.get("postfix_sched_cpu_us_per_msg_empty"))
    res["ratio_qmgr_cpu_per_msg_queued_tern_postfix"] = ratio(
        res.get("tern_sched_cpu_us_per_msg_queued"), res.get("postfix_sched_cpu_us_per_msg_queued"))
    res["ratio_list_text_tern_postfix"] = ratio(res.get("tern_list_text_ms"),
                                                res.get("postfix_list_ms"))
    res["ratio_qrun_all_time_tern_postfix"] = ratio(res.get("tern_qrun_all_ms"),
                                                    res.get("postfix_qrun_all_ms"))
    res["ratio_qrun_all_qmgr_cpu_per_msg_tern_postfix"] = ratio(
        res.get("tern_qrun_all_cpu_us_per_msg"), res.get("postfix_qrun_all_cpu_us_per_msg"))

    # Issue 3's targets.
    def verdict(ok):
        return None if ok is None else ("met" if ok else "NOT met")
    w = res.get("tern_startup_daemon_wall_ms")
    q = res.get("tern_startup_qmgr_wall_ms")
    res["target_startup_2s_qmgr"] = verdict(None if q is None else q < 2000)
    res["target_startup_2s_daemon"] = verdict(None if w is None else w < 2000)
    b = res.get("tern_qmgr_rss_bytes_per_rcpt")
    a = res.get("tern_qmgr_anon_bytes_per_rcpt")
    res["target_300B_per_rcpt_vmrss"] = verdict(None if b is None else b < 300)
    res["target_300B_per_rcpt_anon"] = verdict(None if a is None else a < 300)
    r = res.get("tern_sched_ratio_queued_empty")
    res["target_flat_sched_cost"] = verdict(None if r is None else r < 1.25)
    r = res.get("tern_sched_user_ratio_queued_empty")
    res["target_flat_sched_cost_user"] = verdict(None if r is None else r < 1.25)

    res = {k: v for k, v in res.items() if v is not None}
    lines = [f"{k} = {v}" for k, v in res.items()]

    # The human summary.
    g = res.get
    s = ["", "# Summary", ""]
    s.append(f"# {g('messages')} messages (one recipient each) over {g('domains')} destinations "
             f"in the queue; {g('cpus')} CPUs; tern {g('tern_version', '?')} "
             f"({g('tern_build_type', '?')}), Postfix {g('postfix_version', '-')}")
    if "tern_startup_load_ms" in res:
        s.append(f"# tern start-up (median of {g('tern_startup_runs')}): qmgr loads the queue in "
                 f"{g('tern_startup_load_ms'):.0f} ms (its log), {g('tern_startup_qmgr_wall_ms'):.0f}"
                 f" ms from qmgr's start, {g('tern_startup_daemon_wall_ms'):.0f} ms from ternd's "
                 f"exec (spool recovery included); qmgr CPU {g('tern_startup_qmgr_cpu_ms')} ms")
    if "tern_qmgr_rss_bytes_per_rcpt" in res:
        s.append(f"# tern qmgr memory: VmRSS {g('tern_qmgr_rss_kb_empty'):.0f} kB empty, "
                 f"{g('tern_qmgr_rss_kb_queued'):.0f} kB with the queue = "
                 f"{g('tern_qmgr_rss_bytes_per_rcpt')} B/recipient; of which anonymous (heap) "
                 f"{g('tern_qmgr_anon_bytes_per_rcpt')} B/recipient and file-backed (LMDB map "
                 f"pages touched by the load) {g('tern_qmgr_file_bytes_per_rcpt')} B/recipient")
    if "tern_sched_cpu_us_per_msg_empty" in res:
        s.append(f"# tern qmgr CPU per scheduled message ({sched_n} local messages, discard; "
                 f"median): {g('tern_sched_cpu_us_per_msg_empty')} us with an empty queue "
                 f"({g('tern_sched_cpu_us_per_msg_empty_all')}), "
                 f"{g('tern_sched_cpu_us_per_msg_queued', '-')} us with {n} queued "
                 f"({g('tern_sched_cpu_us_per_msg_queued_all', '-')}); ratio "
                 f"{g('tern_sched_ratio_queued_empty', '-')}. User time alone: "
                 f"{g('tern_sched_user_us_per_msg_empty', '-')} us empty "
                 f"({g('tern_sched_user_us_per_msg_empty_all', '-')}), "
                 f"{g('tern_sched_user_us_per_msg_queued', '-')} us queued "
                 f"({g('tern_sched_user_us_per_msg_queued_all', '-')}); ratio "
                 f"{g('tern_sched_user_ratio_queued_empty', '-')}; "
                 f"{g('tern_sched_ctxsw_per_msg_empty', '-')} / "
                 f"{g('tern_sched_ctxsw_per_msg_queued', '-')} context switches per message")
    if "tern_fill_cpu_us_per_msg_by_queue_size" in res:
        s.append(f"# tern qmgr CPU per deferred message while the queue fills (queue size:us): "
                 f"{g('tern_fill_cpu_us_per_msg_by_queue_size')}")
    if "tern_list_text_ms" in res:
        pl = f"{g('postfix_list_ms'):.0f} ms" if "postfix_list_ms" in res else "-"
        s.append(f"# listing {n} messages: ternctl queue {g('tern_list_text_ms'):.0f} ms, "
                 f"--json {g('tern_list_json_ms', 0):.0f} ms; postqueue -p {pl}")
    for sys_, cmd in (("tern", "ternctl queue flush ALL"), ("postfix", "postqueue -f")):
        if f"{sys_}_qrun_all_ms" in res:
            s.append(f"# {sys_} queue run ({cmd}, answered in {g(sys_ + '_qrun_command_ms', 0):.0f} ms, "
                     f"exit {g(sys_ + '_qrun_command_rc', '?')}): the first {qrun_n} deferred again "
                     f"after {g(sys_ + '_qrun_first_ms'):.0f} ms, qmgr CPU "
                     f"{g(sys_ + '_qrun_first_cpu_us_per_msg')} us/msg; all {n} after "
                     f"{g(sys_ + '_qrun_all_ms'):.0f} ms ({g(sys_ + '_qrun_all_msgs_per_s')} msgs/s), "
                     f"qmgr CPU {g(sys_ + '_qrun_all_cpu_us_per_msg')} us/msg; qmgr VmRSS "
                     f"{g(sys_ + '_qrun_qmgr_rss_kb_before'):.0f} kB before, peak "
                     f"{g(sys_ + '_qrun_qmgr_hwm_kb'):.0f} kB, anonymous "
                     f"{g(sys_ + '_qrun_qmgr_anon_kb_after'):.0f} kB after")
    if "postfix_qmgr_rss_kb_queued" in res:
        s.append(f"# Postfix qmgr: VmRSS {g('postfix_qmgr_rss_kb_empty', 0):.0f} kB empty, "
                 f"{g('postfix_qmgr_rss_kb_queued'):.0f} kB with {g('postfix_deferred_files', '?')}"
                 f" deferred files ({g('postfix_qmgr_rss_bytes_per_rcpt', '?')} B/recipient: it "
                 f"keeps deferred mail on disk); its start-up scan of the deferred queue took "
                 f"{g('postfix_qmgr_startup_cpu_ms')} ms CPU; postfix start -> 220 in "
                 f"{g('postfix_start_greeting_ms'):.0f} ms")
    if "postfix_sched_cpu_us_per_msg_empty" in res:
        s.append(f"# Postfix qmgr CPU per scheduled message: "
                 f"{g('postfix_sched_cpu_us_per_msg_empty')} us empty, "
                 f"{g('postfix_sched_cpu_us_per_msg_queued', '-')} us with the queue; ratio "
                 f"{g('postfix_sched_ratio_queued_empty', '-')}")
    if "ratio_qmgr_cpu_per_msg_queued_tern_postfix" in res or "ratio_qmgr_rss_queued_tern_postfix" in res:
        s.append(f"# tern/Postfix: qmgr CPU per message x{g('ratio_qmgr_cpu_per_msg_empty_tern_postfix', '-')}"
                 f" (empty), x{g('ratio_qmgr_cpu_per_msg_queued_tern_postfix', '-')} (queued); "
                 f"qmgr VmRSS with the queue x{g('ratio_qmgr_rss_queued_tern_postfix', '-')}; "
                 f"listing time x{g('ratio_list_text_tern_postfix', '-')}; queue run time "
                 f"x{g('ratio_qrun_all_time_tern_postfix', '-')}, its qmgr CPU per message "
                 f"x{g('ratio_qrun_all_qmgr_cpu_per_msg_tern_postfix', '-')}")
    s.append("# Not compared: start-up time (Postfix's qmgr does not load deferred mail; it "
             "reads it back from disk every queue_run_delay) and memory per queued recipient "
             "(Postfix's is ~0 by design); qmgr CPU covers different work in the two (tern's "
             "qmgr also commits to LMDB and runs discard itself; Postfix splits the work over "
             "qmgr, trivial-rewrite, discard and cleanup).")
    s.append(f"# Targets (issue 3): start-up < 2 s: {g('target_startup_2s_qmgr', '-')} for qmgr, "
             f"{g('target_startup_2s_daemon', '-')} from ternd's exec; < 300 B/recipient: "
             f"{g('target_300B_per_rcpt_vmrss', '-')} by VmRSS, "
             f"{g('target_300B_per_rcpt_anon', '-')} by anonymous RSS; flat scheduling cost "
             f"(ratio < 1.25): {g('target_flat_sched_cost', '-')} by total CPU, "
             f"{g('target_flat_sched_cost_user', '-')} by user CPU")
    text = "\n".join(lines + s + notes) + "\n"
    with open(out, "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


def main(argv):
    if len(argv) < 2:
        die(__doc__)
    cmd, args = argv[1], argv[2:]
    try:
        if cmd == "count" and len(args) == 5:
            return cmd_count(*args)
        if cmd == "startup" and len(args) == 5:
            return cmd_startup(*args)
        if cmd == "proc" and len(args) in (1, 2):
            print_proc(int(args[0]), args[1] if len(args) == 2 else "")
            return 0
        if cmd == "settle" and len(args) == 3:
            return cmd_settle(int(args[0]), args[1], args[2])
        if cmd == "report" and len(args) == 2:
            return cmd_report(*args)
    except (OSError, ValueError) as e:
        die(f"{cmd}: {e}")
    die(f"bad command line: {' '.join(argv[1:])}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
