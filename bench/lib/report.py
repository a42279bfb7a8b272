#!/usr/bin/python3
"""Turn bench/results/data/results.json into bench/results/RESULTS.md and
the plots next to it (gnuplot, PNG). bench/notes.md, the analysis written
for the committed run, is appended when present."""
import json
import os
import subprocess

BENCH = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
RES = os.path.join(BENCH, "results")
DATA = os.path.join(RES, "data")


def us(v):
    if v is None:
        return "–"
    if v >= 1e6:
        return "%.2f s" % (v / 1e6)
    if v >= 1e3:
        return "%.2f ms" % (v / 1e3)
    return "%.0f µs" % v


def kib(v):
    return "%.1f MiB" % (v / 1024.0)


def verdict(ok):
    return "**met**" if ok else "**missed**"


def gnuplot(script, name):
    path = os.path.join(DATA, name + ".gp")
    with open(path, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", path], capture_output=True, text=True, cwd=DATA)
    if r.returncode != 0:
        print("report: gnuplot %s failed: %s" % (name, r.stderr.strip()))
        return False
    return True


TERM = 'set terminal pngcairo size 900,480 font "DejaVu Sans,10"\n'


def plot_offload(o):
    series = [(m, t) for m, t in (("idle", "idle (no load)"), ("pooled", "pooled, saturated"),
                                  ("inline", "inline (threads = 0), same load"),
                                  ("inline_1", "inline, one slow client"))
              if os.path.exists(os.path.join(DATA, "offload_%s.tsv" % m))]
    plots, gave_up = [], []
    for m, t in series:
        # answered probes, and probes given up (a third column), apart
        lines = [l.split() for l in open(os.path.join(DATA, "offload_%s.tsv" % m)) if l.strip()]
        for suffix, keep in (("answered", lambda c: len(c) == 2), ("gaveup", lambda c: len(c) > 2)):
            with open(os.path.join(DATA, "offload_%s.%s.tsv" % (m, suffix)), "w") as f:
                f.write("".join("%s\t%s\n" % (c[0], c[1]) for c in lines if keep(c)))
        if any(len(c) > 2 for c in lines):
            gave_up.append(m)
        if any(len(c) == 2 for c in lines):
            style = "pt 7 ps 0.5" if not m.startswith("inline") else "pt 5 ps 1.6"
            plots.append("'offload_%s.answered.tsv' using ($1/1000):($2/1000) with points %s title '%s'"
                         % (m, style, t))
    timeout_s = (o.get("inline") or {}).get("timeout_ms", 10000) // 1000
    for m in gave_up:
        plots.append("'offload_%s.gaveup.tsv' using ($1/1000):($2/1000) with points pt 9 ps 2.5 "
                     "lc rgb 'red' title 'no answer: gave up after %d s (%s)'"
                     % (m, timeout_s, "inline, same load" if m == "inline" else m))
        plots.append("'offload_%s.gaveup.tsv' using ($1/1000):($2/1000):('gave up at %d s, never answered') "
                     "with labels left offset 1.5,0 tc rgb 'red' notitle" % (m, timeout_s))
    return gnuplot(TERM + """set output '../offload_healthz.png'
set title "/healthz latency while every worker waits on /delay?ms=2000 (queue half full)\\n{/*0.85 one point per /healthz at its send time; a probe given up after %d s (red triangle) never got an answer}" enhanced
set xlabel 'time since the probe started (s)'
set ylabel 'latency (ms, log)'
set logscale y
set format y "%%g"
set yrange [*:40000]
set grid
set key top right
set xrange [-0.3:*]
plot %s
""" % ((o.get("inline") or {}).get("timeout_ms", 10000) // 1000, ", ".join(plots)), "offload")


def plot_little(l):
    with open(os.path.join(DATA, "little.dat"), "w") as f:
        f.write("# threads ideal50 ideal_measured fetchd fetchd_min fetchd_max\n")
        for r in l["rows"]:
            f.write("%d %.1f %.1f %.1f %.1f %.1f\n" % (r["threads"], r["ideal_rps"], r["ideal_measured_rps"],
                                                       r["rps"], r.get("min_rps", r["rps"]),
                                                       r.get("max_rps", r["rps"])))
    return gnuplot(TERM + """set output '../littles_law.png'
set title "Little's law: fetches/s against threads / upstream latency (50 ms)\\n{/*0.85 fetchd: median of %d runs, the whisker is their min–max; log axis: the thread counts are 8x apart}" enhanced
set ylabel 'fetches/s (log)'
set xlabel 'worker threads'
set logscale y
set format y "%%.0f"
set yrange [50:10000]
set grid ytics
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set key top left
plot 'little.dat' using 2:2:2:xtic(1) title 'threads / 50 ms', \\
     '' using 3:3:3 title 'threads / measured upstream latency', \\
     '' using 4:5:6 title 'fetchd, measured', \\
     '' using ($0+0.27):4:(sprintf('%%.0f', $4)) with labels offset 0,1.2 notitle
""" % l.get("rounds", 1), "little")


def bar_data(name, rows):
    """rows: (label, median, min, max)."""
    with open(os.path.join(DATA, name + ".dat"), "w") as f:
        for label, v, lo, hi in rows:
            f.write('"%s" %.3f %.3f %.3f\n' % (label, v, lo, hi))


def bars(name, ylabel, rows, log=False, fmt="%.0f", color="#4477aa"):
    """The plot command for median bars with min-max whiskers and the
    median written above each bar (plain numbers, never 2.9e+04)."""
    bar_data(name, rows)
    return """set ylabel '%s'
%s
set format y "%s"
set grid ytics
set style data histograms
set style histogram errorbars gap 1 lw 1.5
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -20
unset key
plot '%s.dat' using 2:3:4:xtic(1) lc rgb '%s', '' using 0:4:(sprintf('%s', $2)) with labels offset 0,0.8
""" % (ylabel, "set logscale y" if log else "set yrange [0:*]", fmt, name, color, fmt)


def plot_bars(name, title, ylabel, rows, log=False, fmt="%.0f"):
    return gnuplot(TERM + "set output '../%s.png'\nset title \"%s\" enhanced\n" % (name, title)
                   + bars(name, ylabel, rows, log, fmt), name)


def plot_large(lb):
    rows = lb["rows"]
    n = lb.get("rounds", 1)
    bar_data("large_rps", [("%s %s" % (r["size"], r["kind"]), r["rps"], r.get("min_rps", r["rps"]),
                            r.get("max_rps", r["rps"])) for r in rows])
    with open(os.path.join(DATA, "large_direct.dat"), "w") as f:
        for r in rows:
            f.write('"%s %s" %.3f\n' % (r["size"], r["kind"], r["direct_rps"]))
    cpu = bars("large_loop_cpu", "% of one core",
               [("%s %s" % (r["size"], r["kind"]), r["loop_core_pct"], r.get("loop_core_min", r["loop_core_pct"]),
                 r.get("loop_core_max", r["loop_core_pct"])) for r in rows])
    return gnuplot(TERM.replace("900,480", "1100,480") + """set output '../large_loop_cpu.png'
set multiplot layout 1,2 title "Large bodies, 4 connections: median of %d runs each, whiskers min–max"
set title "the loop thread's CPU (%% of one core)"
set yrange [0:100]
""" % n + cpu.replace("set yrange [0:*]\n", "") + """
set title "fetches/s, and the upstream straight from wrk (once)"
set yrange [0:*]
set key top right
set ylabel 'fetches/s'
set format y "%.0f"
set style histogram errorbars gap 1 lw 1.5
plot 'large_rps.dat' using 2:3:4:xtic(1) lc rgb '#4477aa' title 'fetchd (whole document)', \\
     'large_direct.dat' using 2:2:2 lc rgb '#bbbbbb' title 'upstream direct', \\
     'large_rps.dat' using ($0-0.17):4:(sprintf('%.0f', $2)) with labels offset 0,0.8 notitle
unset multiplot
""", "large_loop_cpu")


def plot_overhead():
    for n in ("direct", "fetchd"):
        p = os.path.join(DATA, "overhead_%s.txt" % n)
        v = sorted(float(x) for x in open(p))
        with open(os.path.join(DATA, "overhead_%s.cdf" % n), "w") as f:
            for i, x in enumerate(v):
                f.write("%.1f %.5f\n" % (x, (i + 1) / len(v)))
    return gnuplot(TERM + """set output '../overhead_cdf.png'
set title 'One client, sequential GET /json: curl straight to the upstream vs through fetchd'
set xlabel 'latency per request (µs, log)'
set ylabel 'fraction of requests'
set logscale x
set grid
set key bottom right
plot 'overhead_direct.cdf' using 1:2 with lines lw 2 title 'curl -> upstream', \\
     'overhead_fetchd.cdf' using 1:2 with lines lw 2 title 'curl -> fetchd -> upstream'
""", "overhead")


# The figures of the previous Python reference (the idiom as usually written),
# from the last run that measured it (RESULTS.md of 2026-12-03 17:59:17 UTC,
# small responses, 64 connections, 8 s, one run each).
OLD_PYREF = (
    "**The previous Python reference was a strawman**, and these figures replace its: it called "
    "`functools.partial(requests.request, …)` (a new Session, so a new upstream connection, per "
    "fetch) and built the response on the event loop after the await. In the last run that "
    "measured it (2026-12-03, one 8 s run each, same machine) it made 765/s with asyncio "
    "(p50 84.62 ms, p99 117.14 ms) and 823/s with uvloop (p50 76.28 ms, p99 123.13 ms), against "
    "fetchd's 29186/s in the same run: 35.5x. Keep-alive and work moved off the loop change "
    "little for Python here: every field is still built under the GIL, and what dominates is "
    "the interpreter's CPU per fetch (requests, urllib3, `apparent_encoding`'s charset "
    "detection, json), not where it runs.")


# sections of RESULTS.md kept by hand (figures measured outside bench/run),
# and whether each goes before or after notes.md's analysis
HAND_SECTIONS = {"## Parse cost of big requests": "before",
                 "## Memory that returns (issue 10)": "after"}


def hand_sections(where):
    """Those sections, carried over from the previous RESULTS.md."""
    path = os.path.join(RES, "RESULTS.md")
    if not os.path.exists(path):
        return []
    out, keep = [], False
    for line in open(path).read().split("\n"):
        if line.startswith("## "):
            keep = HAND_SECTIONS.get(line.strip()) == where
        if keep:
            out.append(line)
    while out and out[-1] == "":
        out.pop()
    if not out:
        return []
    return out + [""] if where == "before" else [""] + out


def measured_apart(sc, default=""):
    """The line saying when an opt-in scenario ran (not in the full run
    whose date heads the report)."""
    m = sc.get("measured")
    if not m:
        return sc.get("note", default)
    return ("Measured separately (`%s`), on %s, load average %s at its start, %s at its end.%s"
            % (m.get("command", "bench/run"), m["date"], " ".join(m["loadavg_at_start"]),
               " ".join(m["loadavg_at_end"]), " " + sc["note"] if sc.get("note") else ""))


def noisy_summary(cfg):
    """One per_host_limit config of the noisy scenario over its rounds:
    latencies the median of the rounds, rates their mean."""
    def med(phase, key):
        v = sorted(r["fast"][key] for r in cfg["runs"] if r["phase"] == phase)
        if not v:
            return None
        k = (len(v) - 1) / 2.0
        return (v[int(k)] + v[min(int(k) + 1, len(v) - 1)]) / 2.0 if k != int(k) else v[int(k)]

    def mean(phase, key):
        v = [r["fast"][key] for r in cfg["runs"] if r["phase"] == phase]
        return sum(v) / len(v) if v else None
    loaded = [r for r in cfg["runs"] if r["phase"] == "loaded"]
    return {"p50_alone": med("alone", "p50_us"), "p99_alone": med("alone", "p99_us"),
            "p99_loaded": med("loaded", "p99_us"), "p50_loaded": med("loaded", "p50_us"),
            "rps_alone": mean("alone", "rps"), "rps_loaded": mean("loaded", "rps"),
            "fast_loaded_n": sum(r["fast"]["n"] for r in loaded),
            "slow_done": sum(r["slow"]["requests"] for r in loaded),
            "slow_s": sum(r["slow"]["duration_us"] for r in loaded) / 1e6,
            "rounds": len(loaded), "rise": cfg["loaded_p99_us"] / cfg["alone_p99_us"] - 1}


def main():
    with open(os.path.join(DATA, "results.json")) as f:
        R = json.load(f)
    S = R["scenarios"]
    env = R.get("environment", {})
    md = []
    acc = []
    w = md.append

    w("# fetchd benchmark results\n")
    w("Produced by `bench/run` on %s in %s s of measurement (everything on 127.0.0.1)."
      % (env.get("date", "?"), R.get("total_s", "?")))
    w("Machine: %s CPUs (%s), Linux %s; load average %s at the start, %s at the end. "
      "fetchd, the upstream, the references and the load generators all share these cores, "
      "so every figure includes the client's and the upstream's CPU use; other jobs on the "
      "machine add noise, which is why each figure has its reference measured in the same run."
      % (env.get("cpus"), env.get("cpu_model"), env.get("kernel"),
         " ".join(env.get("loadavg_at_start", [])), " ".join(env.get("loadavg_at_end", []))))
    w("")
    w("Versions: %s; %s; %s; %s; %s.\n" % (env.get("fetchd"), env.get("wrk"), env.get("nginx"),
                                           env.get("curl"), env.get("python")))

    # ---------------------------------------------------------- acceptance
    o, l, s, ov = S.get("offload", {}), S.get("little", {}), S.get("small", {}), S.get("overhead", {})
    m, lb, b = S.get("memory", {}), S.get("large", {}), S.get("bulkhead", {})
    if "pooled" in o:
        acc.append(("Offload: pooled /healthz p99 < 1 ms while saturated",
                    "p99 %s (p50 %s, max %s; idle p99 %s)" % (us(o["pooled"]["p99_us"]), us(o["pooled"]["p50_us"]),
                                                             us(o["pooled"]["max_us"]), us(o["idle"]["p99_us"])),
                    verdict(o["pooled"]["p99_us"] < 1000)))
        inl = o.get("inline", {})
        acc.append(("Offload: inline shows the stall",
                    "inline p50 %s, max %s%s" % (us(inl.get("p50_us")), us(inl.get("max_us")),
                                                  " (%d of %d probes gave up after %d s)" % (
                                                      inl["timeouts"], inl["n"], inl["timeout_ms"] // 1000)
                                                  if inl.get("timeouts") else ""),
                    verdict(inl.get("p50_us", 0) > 100000)))
    if "rows" in l:
        for r in l["rows"]:
            acc.append(("Little's law: efficiency >= 0.95 at %d threads" % r["threads"],
                        "%.3f of threads/50 ms; %.3f of threads/%.2f ms (the upstream's measured latency)"
                        % (r["efficiency"], r["efficiency_measured"], r["upstream_latency_ms"]),
                        "%s (nominal) / %s (measured)" % (verdict(r["efficiency"] >= 0.95),
                                                          verdict(r["efficiency_measured"] >= 0.95))))
    if "rows" in s:
        rows = s["rows"]
        f_ = rows["fetchd"]["rps"]
        ng = rows["nginx"]["rps"]
        py = max(rows["python asyncio"]["rps"], rows["python uvloop"]["rps"])
        acc.append(("Small responses: fetchd >= 0.7x nginx", "%.0f/s vs %.0f/s = %.2fx" % (f_, ng, f_ / ng),
                    verdict(f_ / ng >= 0.7)))
        acc.append(("Small responses: fetchd >= 25x the Python reference (best of asyncio/uvloop)",
                    "%.0f/s vs %.0f/s = %.1fx" % (f_, py, f_ / py), verdict(f_ / py >= 25)))
    if "added_p50_us" in ov:
        acc.append(("Overhead: added p50 < 100 µs", "+%.0f µs (p99 +%.0f µs)" % (ov["added_p50_us"], ov["added_p99_us"]),
                    verdict(ov["added_p50_us"] < 100)))
    if "idle_16_kb" in m:
        acc.append(("Memory: idle RSS with 16 threads < 16 MB", kib(m["idle_16_kb"]),
                    verdict(m["idle_16_kb"] < 16 * 1024)))
        acc.append(("Memory: < 4 KB per queued request",
                    "%.0f bytes each on its own connection; %.0f bytes each from one batch"
                    % (m["bytes_per_queued"], m.get("batch_bytes_per_queued", 0)),
                    "%s (connections) / %s (batch)" % (verdict(m["bytes_per_queued"] < 4096),
                                                       verdict(m.get("batch_bytes_per_queued", 1e9) < 4096))))
    if "rows" in lb:
        worst = max(r["loop_core_pct"] for r in lb["rows"])
        acc.append(("Large bodies: the loop stays almost idle (no numeric target)",
                    "loop thread at most %.1f%% of a core" % worst, "see table"))
    if b.get("skipped"):
        acc.append(("Bulkhead: fast p99 rises < 20%", "skipped: " + b["skipped"], "not run"))
    elif "runs" in b:
        alone = [r["fast"]["p99_us"] for r in b["runs"] if r["label"] == "named pool, fast alone"]
        loaded = [r["fast"]["p99_us"] for r in b["runs"] if r["label"] == "named pool, slow load"]
        a, ld = sum(alone) / len(alone), sum(loaded) / len(loaded)
        b["rise"] = ld / a - 1
        acc.append(("Bulkhead: fast p99 rises < 20%",
                    "p99 %s alone, %s under slow load: %+.0f%%" % (us(a), us(ld), 100 * b["rise"]),
                    verdict(b["rise"] < 0.20)))

    nz = S.get("noisy", {})
    nzc = {c["per_host_limit"]: c for c in nz.get("configs", [])}
    if nz.get("skipped"):
        acc.append(("Noisy neighbour: fast p99 rises < 20% with per_host_limit",
                    "skipped: " + nz["skipped"], "not run"))
    elif nzc:
        for lim, c in sorted(nzc.items(), reverse=True):
            sm = noisy_summary(c)
            if lim:
                acc.append(("Noisy neighbour: fast p99 rises < 20%% with `per_host_limit = %d` "
                            "(`bench/run noisy`)" % lim,
                            "p99 %s alone, %s with 200 fetches to a 2 s host: %+.0f%%"
                            % (us(sm["p99_alone"]), us(sm["p99_loaded"]), 100 * sm["rise"]),
                            verdict(sm["rise"] < 0.20) + " in this run (the spread over "
                            "runs: bench/notes.md, Noisy neighbour)"))
            else:
                acc.append(("Noisy neighbour: without the limit the fast host's p99 explodes",
                            "p99 %s alone, %s with the slow host's 200 fetches queued (%.0fx)"
                            % (us(sm["p99_alone"]), us(sm["p99_loaded"]), 1 + sm["rise"]),
                            "shown" if sm["rise"] > 10 else "**not shown**"))

    el = (S.get("elastic") or {}).get("runs", {})
    if el.get("elastic") and el.get("fixed"):
        e, f = el["elastic"], el["fixed"]
        n = S["elastic"]["n"]
        idle = S["elastic"].get("idle_timeout_s", 2)
        cold = e.get("busy95_s")
        acc.append(("Elastic pool (N = %d, `bench/run elastic`): a cold start reaches the fixed "
                    "pool's throughput within 1 s" % n,
                    "busy >= 95%% of N after %s (fixed: %s); %.0f vs %.0f fetches/s"
                    % ("%.2f s" % cold if cold is not None else "never",
                       "%.2f s" % f["busy95_s"] if f.get("busy95_s") is not None else "never",
                       e.get("rps", 0), f.get("rps", 0)),
                    verdict(cold is not None and cold <= 1.0)))
        back = e.get("shrink_s")
        acc.append(("Elastic pool: back to <= 32 threads within thread_idle_timeout + 1 s",
                    "%s after the load (thread_idle_timeout = %.0f s)"
                    % ("%.2f s" % back if back is not None else "never", idle),
                    verdict(back is not None and back <= idle + 1)))

    h = S.get("https", {})
    if "ratio" in h:
        fh, nh = h["fetchd"], h["nginx"]
        acc.append(("HTTPS small responses: fetchd >= 0.9x nginx (median of %d each)" % h["rounds"],
                    "%.0f/s (%.0f–%.0f) vs %.0f/s (%.0f–%.0f) = %.2fx"
                    % (fh["median_rps"], fh["min_rps"], fh["max_rps"], nh["median_rps"], nh["min_rps"],
                       nh["max_rps"], h["ratio"]), verdict(h["ratio"] >= 0.9)))
        t, n = h["fetchd"], h["nginx"]
        acc.append(("HTTPS: fetchd's full handshakes <= 1 per worker in warm-up, none after",
                    "warm-up at most %d full (%d threads); measured runs %d full, %d resumed "
                    "(nginx, for reference: warm-up at most %d full, runs %d full, %d resumed)"
                    % (t["warmup_full_max"], t["workers"], t["run_full_total"], t["run_resumed_total"],
                       n["warmup_full_max"], n["run_full_total"], n["run_resumed_total"]),
                    verdict(t["warmup_full_max"] <= t["workers"] and t["run_full_total"] == 0)))

    w("## Acceptance figures\n")
    w("| target | measured | |")
    w("|---|---|---|")
    for t, v, ok in acc:
        w("| %s | %s | %s |" % (t, v, ok))
    w("")

    # ---------------------------------------------------------- offload
    if "pooled" in o:
        plot_offload(o)
        w("## Offload: /healthz while every worker is blocked\n")
        w("fetchd with `threads = %d`, `queue_limit = %d`; %d wrk connections POST fetches of "
          "`/delay?ms=2000`, so all %d workers wait and the queue holds %d (half full: /v1/stats "
          "said busy %s, queued %s of %s). Meanwhile `bench/lib/probe.c` sends `GET /healthz` every "
          "10 ms on one keep-alive connection. The reference is the same fetchd idle, and the "
          "same load on `threads = 0` (inline: the fetch runs on the loop thread)."
          % (o["threads"], o["queue_limit"], o["clients"], o["threads"], o["clients"] - o["threads"],
             o.get("pooled_stats", {}).get("busy"), o.get("pooled_stats", {}).get("queued"),
             o.get("pooled_stats", {}).get("queue_limit")))
        w("")
        w("| fetchd | probes | /healthz p50 | p99 | max | fetches done |")
        w("|---|---|---|---|---|---|")
        for k, t in (("idle", "idle (reference)"), ("pooled", "pooled, saturated"),
                     ("inline", "inline, same %d clients" % o["clients"]), ("inline_1", "inline, 1 client")):
            if k not in o:
                continue
            r = o[k]
            done = o.get(k + "_load", {}).get("requests", "–")
            note = " (%d gave up at %d s)" % (r["timeouts"], r["timeout_ms"] // 1000) if r.get("timeouts") else ""
            w("| %s | %d%s | %s | %s | %s | %s |" % (t, r["n"], note, us(r["p50_us"]), us(r["p99_us"]),
                                                 us(r["max_us"]), done))
        w("\n![/healthz latency over time](offload_healthz.png)\n")

    # ---------------------------------------------------------- little
    if "rows" in l:
        plot_little(l)
        w("## Pool limit (Little's law)\n")
        w("Upstream `/delay?ms=50`; fetchd with 8, 64 and 256 threads and `queue_limit = 4096`, driven "
          "by wrk with twice as many connections as threads (the queue never runs dry), %d s per "
          "run after a 1 s warm-up. The ideal is threads / latency. The upstream's timers overshoot, so "
          "the reference measured in the same run is the upstream straight from wrk with as many "
          "connections as threads: its mean latency is the real W. The upstream ran at nice %d here "
          "(it stands in for a remote host with its own CPU). fetchd: %d runs back to back per "
          "thread count, the median in the efficiency columns."
          % (l["duration_s"], l.get("upstream_nice", 0), l.get("rounds", 1)))
        w("")
        w("| threads | ideal (threads/50 ms) | upstream latency, measured | ideal (threads/W) | upstream direct | fetchd (median) | fetchd spread (min–max) | efficiency vs 50 ms | vs W | errors |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for r in l["rows"]:
            w("| %d | %.0f/s | %.2f ms | %.0f/s | %.0f/s | %.0f/s | %.0f–%.0f/s | %.3f | %.3f | %d |"
              % (r["threads"], r["ideal_rps"], r["upstream_latency_ms"], r["ideal_measured_rps"],
                 r["direct_rps"], r["rps"], r.get("min_rps", r["rps"]), r.get("max_rps", r["rps"]),
                 r["efficiency"], r["efficiency_measured"], r["errors"]))
        w("\n![Little's law](littles_law.png)\n")

    # ---------------------------------------------------------- small
    if "rows" in s:
        rows = s["rows"]
        n = s.get("rounds", 1)
        docsize = rows["fetchd"]["bytes"] / max(1, rows["fetchd"]["requests"])
        plot_bars("small_responses",
                  "/text?n=64, keep-alive, 64 connections: requests/s, median of %d runs (whiskers: min–max)\\n"
                  "{/*0.85 nginx and the upstream pass the 64 bytes through; fetchd and the Python reference "
                  "build a full JSON document (%.0f bytes) for each}" % (n, docsize),
                  "requests/s", [(k, v["rps"], v.get("min_rps", v["rps"]), v.get("max_rps", v["rps"]))
                                 for k, v in rows.items()])
        w("## Small responses\n")
        w("`/text?n=64` through each server, keep-alive, %d connections, wrk -t2, %d s after a 1 s "
          "warm-up; %d runs of each, interleaved (upstream, fetchd, fetchd with `fields`, nginx, "
          "Python asyncio, Python uvloop, then again), each server started afresh for each run; "
          "the table gives the median run and the spread of all. fetchd (16 threads) answers the "
          "full document (every field, %.0f bytes here) unless `fields` says otherwise; nginx (%d "
          "worker processes, upstream keep-alive) passes the 64 bytes through; the Python reference "
          "(`bench/reference/run_in_executor.py`, ThreadPoolExecutor(16)) builds the same fields as "
          "fetchd, the idiom done right: a `requests.Session` per worker thread (keep-alive to the "
          "upstream), and every field and the JSON bytes made inside the executor call."
          % (s["connections"], s["duration_s"], n, docsize, env.get("cpus") or 2))
        w("")
        w("| server | requests/s (median) | spread (min–max) | p50 | p99 | errors | vs fetchd |")
        w("|---|---|---|---|---|---|---|")
        for k, v in rows.items():
            w("| %s | %.0f | %.0f–%.0f | %s | %s | %d | %.3fx |" % (
                k, v["rps"], v.get("min_rps", v["rps"]), v.get("max_rps", v["rps"]), us(v["p50_us"]),
                us(v["p99_us"]), v["errors"], v["rps"] / rows["fetchd"]["rps"]))
        w("")
        w(OLD_PYREF)
        w("\n![small responses](small_responses.png)\n")

    # ---------------------------------------------------------- overhead
    if "direct" in ov:
        plot_overhead()
        w("## Overhead\n")
        w("One curl process, %d sequential keep-alive GETs of `/json` (after %d warm-up requests): "
          "straight to the upstream, then through fetchd (`GET /v1/fetch?url=…`, full document)."
          % (ov["requests"], ov["warmup"]))
        w("")
        w("| path | p50 | p90 | p99 | max | non-200 |")
        w("|---|---|---|---|---|---|")
        for k, t in (("direct", "curl -> upstream"), ("fetchd", "curl -> fetchd -> upstream")):
            r = ov[k]
            w("| %s | %s | %s | %s | %s | %d |" % (t, us(r["p50_us"]), us(r["p90_us"]), us(r["p99_us"]),
                                                  us(r["max_us"]), r["non200"]))
        w("| **added by fetchd** | **+%s** | | **+%s** | | |" % (us(ov["added_p50_us"]), us(ov["added_p99_us"])))
        w("\n![overhead](overhead_cdf.png)\n")

    # ---------------------------------------------------------- large
    if "rows" in lb:
        plot_large(lb)
        w("## Large bodies\n")
        w("fetchd with %d threads, %d wrk connections, %d s per run, %d runs per case interleaved "
          "(1 MB text, 1 MB binary, 8 MB text, 8 MB binary, then again; medians, and the spread of "
          "fetches/s and of the loop's CPU). Text bodies come back as `text`, "
          "binary ones as `content_base64`. CPU per thread from `/proc/PID/task/*/stat` (utime + stime, "
          "%d ticks/s) before and after; the loop thread is the main thread (tid == pid). The reference "
          "is wrk fetching the same body straight from the upstream."
          % (lb["threads"], lb["connections"], lb["duration_s"], lb.get("rounds", 1), lb["clk_tck"]))
        w("")
        w("| body | fetchd fetches/s (min–max) | upstream direct | document | loop thread, % of a core (min–max) | loop share of fetchd's CPU | workers (% of a core) | p99 | errors |")
        w("|---|---|---|---|---|---|---|---|---|")
        for r in lb["rows"]:
            w("| %s %s | %.1f (%.1f–%.1f) | %.1f | %.1f MB | %.1f%% (%.1f–%.1f) | %.1f%% | %.0f%% | %s | %d |"
              % (r["size"], r["kind"], r["rps"], r.get("min_rps", r["rps"]), r.get("max_rps", r["rps"]),
                 r["direct_rps"], r["doc_bytes"] / 1e6, r["loop_core_pct"],
                 r.get("loop_core_min", r["loop_core_pct"]), r.get("loop_core_max", r["loop_core_pct"]),
                 100 * r["loop_share"], r["workers_core_pct"], us(r["p99_us"]), r["errors"]))
        w("\n![loop CPU and fetches/s](large_loop_cpu.png)\n")

    # ---------------------------------------------------------- memory
    if "idle_16_kb" in m:
        w("## Memory\n")
        w("RSS from `/proc/PID/status` (VmRSS). Queued: 16 workers held by the upstream (`/hold`), "
          "then %d more fetches, each on its own client connection (wrk), waiting in the queue; "
          "and the same from one `/v1/batch` of 10 000 items (the task without its connection). "
          "Bytes per queued request = RSS growth / queued." % (m["connections"] - 16))
        w("")
        w("| state | RSS | queued | per queued request |")
        w("|---|---|---|---|")
        w("| idle, 16 threads | %s | | |" % kib(m["idle_16_kb"]))
        w("| idle, 256 threads | %s | | |" % kib(m["idle_256_kb"]))
        w("| 16 threads, before the queue | %s | | |" % kib(m["queue_base_kb"]))
        w("| 10 000 queued, one connection each | %s | %s | %.0f bytes |" % (kib(m["queue_kb"]), m["queued"],
                                                                            m["bytes_per_queued"]))
        if "batch_kb" in m:
            w("| 10 000 from one batch | %s (from %s) | %s | %.0f bytes |" % (
                kib(m["batch_kb"]), kib(m["batch_base_kb"]), m["batch_queued"], m["batch_bytes_per_queued"]))
        w("")

    # ---------------------------------------------------------- bulkhead
    if b:
        w("## Bulkhead\n")
        if b.get("skipped"):
            w("Skipped: %s\n" % b["skipped"])
        elif "runs" in b:
            conds = []
            for r in b["runs"]:
                if r["label"] not in conds:
                    conds.append(r["label"])
            brows = []
            for c in conds:
                v = [r["fast"]["p99_us"] / 1000 for r in b["runs"] if r["label"] == c]
                brows.append(("%s (%d runs)" % (c, len(v)), sorted(v)[(len(v) - 1) // 2], min(v), max(v)))
            plot_bars("bulkhead", "Fast host p99 (8 connections, /text?n=64) under each condition\\n"
                      "{/*0.85 median of the runs, whiskers min–max; log axis: 2000 ms is a fetch queued behind the slow ones}",
                      "p99 latency (ms, log)", brows, log=True, fmt="%g")
            w("fetchd with the default pool (16 threads) and `[pool.slow]` (threads %d, queue_limit %d, "
              "`hosts = localhost`). Fast host: `http://127.0.0.1:PORT/text?n=64`, 8 wrk connections, %d s. "
              "Slow host: `http://localhost:PORT/delay?ms=1000` (same upstream, the other name), %d "
              "connections started 1.5 s before. Alone, loaded and the reference without the named pool "
              "(a fresh fetchd with only the default pool, same slow load) alternate three times."
              % (b["slow_pool"]["threads"], b["slow_pool"]["queue_limit"], b["duration_s"], b["slow_connections"]))
            w("")
            w("| run | fast fetches/s | fast p50 | fast p99 | slow fetches/s | pools during the run (busy/queued) |")
            w("|---|---|---|---|---|---|")
            for i, r in enumerate(b["runs"]):
                pools = ", ".join("%s %s/%s" % (k, v.get("busy"), v.get("queued")) for k, v in r["pools"].items())
                w("| %d. %s | %.0f | %s | %s | %s | %s |" % (
                    i + 1, r["label"], r["fast"]["rps"], us(r["fast"]["p50_us"]), us(r["fast"]["p99_us"]),
                    "%.1f" % r["slow"]["rps"] if r["slow"] else "–", pools))
            w("\nFast p99 under slow load vs alone (named pool, mean of the runs): %+.0f%%.\n" % (100 * b["rise"]))
            w("![bulkhead](bulkhead.png)\n")

    # ---------------------------------------------------------- https
    if "runs" in h:
        w("## HTTPS small responses\n")
        w("`bench/run https` (alone; also part of the full run), on %s, load average %s at its start, "
          "%s at its end. The origin is the test upstream in TLS mode (`build/tests/upstream --tls`, "
          "HTTP/1.1 over TLS 1.3, a leaf for 127.0.0.1/localhost from a private CA made at bench time "
          "by `tests/tls/mkcerts.sh`), serving `%s`; it counts full and resumed handshakes "
          "(`/tls-stats`, read before and after each warm-up and each run). fetchd (`threads = %d`, "
          "`[fetch] ca_file` = the CA) gets `POST /v1/fetch` of `https://127.0.0.1:PORT%s` and answers the "
          "full document; nginx (%d worker processes, `bench/nginx-https.conf.in`: `proxy_pass https://` "
          "to an upstream block with `keepalive 64`, `proxy_ssl_verify on` with the CA, "
          "`proxy_ssl_session_reuse on`, `keepalive_requests` raised from its default 1000, "
          "TLS 1.2–1.3) gets the GET. wrk -t2, %d connections, "
          "keep-alive; each server started afresh for each run, %d s warm-up then %d s measured; "
          "%d runs each, interleaved (fetchd, nginx, fetchd, …). The origin sets `TCP_NODELAY` "
          "on its sockets: without it every reply waits ~40 ms for a delayed ACK and both servers "
          "measure only that."
          % (h.get("date", "?"), " ".join(h.get("loadavg_at_start", [])), " ".join(h.get("loadavg_at_end", [])),
             h["path"], h["fetchd_threads"], h["path"], h["nginx_workers"], h["connections"],
             h["warmup_s"], h["duration_s"], h["rounds"]))
        w("")
        w("| target | median req/s | spread (min–max) | vs nginx |")
        w("|---|---|---|---|")
        for k in ("fetchd", "nginx"):
            t = h[k]
            w("| %s | %.0f | %.0f–%.0f | %.2fx |" % (k, t["median_rps"], t["min_rps"], t["max_rps"],
                                                   t["median_rps"] / h["nginx"]["median_rps"]))
        if "origin_direct" in h:
            od = h["origin_direct"]
            w("| (origin direct, wrk over HTTPS, once) | %.0f | | %.2fx |" % (od["rps"], od["rps"] / h["nginx"]["median_rps"]))
        w("")
        w("| run | target | req/s | p50 | p99 | errors | handshakes in warm-up (full / resumed) | in the measured run (full / resumed) |")
        w("|---|---|---|---|---|---|---|---|")
        for i, r in enumerate(h["runs"]):
            w("| %d | %s | %.0f | %s | %s | %d | %d / %d | %d / %d |"
              % (i + 1, r["target"], r["rps"], us(r["wrk"]["p50_us"]), us(r["wrk"]["p99_us"]), r["errors"],
                 r["warmup_tls"]["full"], r["warmup_tls"]["resumed"], r["run_tls"]["full"], r["run_tls"]["resumed"]))
        hist = R.get("https_history", [])
        if len(hist) > 1:
            w("")
            w("The last %d runs of this scenario (kept in `results.json` across bench runs; the last row is "
              "the one above):" % len(hist))
            w("")
            w("| date | load at start | fetchd median (min–max) | nginx median (min–max) | fetchd/nginx | fetchd full handshakes: warm-up max / runs |")
            w("|---|---|---|---|---|---|")
            for e in hist:
                f_, n_ = e["fetchd"], e["nginx"]
                w("| %s | %s | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | %.2fx | %d / %d |"
                  % (e["date"], " ".join(e["loadavg_at_start"]), f_["median_rps"], f_["min_rps"], f_["max_rps"],
                     n_["median_rps"], n_["min_rps"], n_["max_rps"], e["ratio"],
                     f_["warmup_full_max"], f_["run_full_total"]))
        w("")

    # ---------------------------------------------------------- noisy (opt-in)
    if nzc:
        w("## Noisy neighbour (`bench/run noisy`, issue 15)\n")
        w(measured_apart(nz) + "\n")
        w("Two hosts on loopback, each the test upstream on its own address: a slow host on "
          "127.0.0.2 (`/delay?ms=%d`) and a fast host on 127.0.0.3 (`%s`). fetchd with "
          "`threads = %d`, `queue_limit = %d`, `[security] allow = 127.0.0.0/8`, once with "
          "`per_host_limit = 0` (off) and once with `per_host_limit = 4`. The fast host's "
          "latency: %d keep-alive connections (`bench/lib/probe.c`), each sending "
          "`GET /v1/fetch?url=…` every %d µs (the next at once if an answer is late) for %d s; "
          "a fetch still in flight at the end is waited for (at most 30 s), so a fetch stuck in "
          "the queue is counted with its wait, not left out. The noisy neighbour: wrk with %d "
          "connections, each POSTing `{\"url\": slow, \"timeout\": 60}` again as soon as it is "
          "answered, so %d fetches to the slow host are in flight or queued (the fast run starts "
          "once /v1/stats counts them all) to the fast run's end (then wrk is interrupted, its "
          "fetches cancelled, and fetchd left "
          "until /v1/stats shows it empty). Phases per config: alone, with the neighbour "
          "(alternating, %s), then alone again. In the first table the latencies of a config "
          "are the medians of its rounds (p99 on these shared cores moves 2-5x between runs of "
          "the same thing; one bad round must not decide), the rates their means."
          % (nz["slow_delay_ms"], nz["fast_path"], nz["threads"], nz["queue_limit"],
             nz["fast_connections"], nz["fast_interval_us"], nz["duration_s"],
             nz["slow_connections"], nz["slow_connections"],
             ", ".join("%d round%s with `per_host_limit = %d`" % (
                 noisy_summary(c)["rounds"], "s" if noisy_summary(c)["rounds"] > 1 else "", l)
                 for l, c in sorted(nzc.items()))))
        w("")
        w("| config | fast p50 alone | fast p99 alone | fast p99 with the noisy neighbour | rise | "
          "fast fetches/s alone / with it | slow fetches completed |")
        w("|---|---|---|---|---|---|---|")
        rate = lambda v: "%.0f" % v if v >= 10 else "%.2f" % v
        rise = lambda r: "%+.0f%%" % (100 * r) if r < 9 else "%.0fx" % (1 + r)
        for lim, c in sorted(nzc.items()):
            sm = noisy_summary(c)
            w("| `per_host_limit = %d`%s | %s | %s | %s%s | %s | %s / %s | %d in %.0f s (%.1f/s) |"
              % (lim, " (off)" if lim == 0 else "", us(sm["p50_alone"]), us(sm["p99_alone"]),
                 us(sm["p99_loaded"]),
                 " (%d fetches)" % sm["fast_loaded_n"] if sm["fast_loaded_n"] < 100 else "",
                 rise(sm["rise"]), rate(sm["rps_alone"]), rate(sm["rps_loaded"]),
                 sm["slow_done"], sm["slow_s"], sm["slow_done"] / max(sm["slow_s"], 1e-3)))
        off = nzc.get(0)
        if off:
            r0 = [r for r in off["runs"] if r["phase"] == "loaded" and r.get("pool_at_start")]
            if r0:
                q = r0[0]["pool_at_start"]
                w("")
                w("Without the limit the slow host takes every worker (busy %s, queued %s when the "
                  "fast run began) and a fast fetch waits in the one FIFO behind the queued slow "
                  "ones: %s of them drain at %d workers / %.0f s = %.0f/s, about %.0f s, which is "
                  "the %s measured. With `per_host_limit = 4` the slow host holds 4 workers, its "
                  "other fetches wait at the host's limit without one (the third figure of the "
                  "last column), and the fast host's fetches go straight to one of the 12 others. "
                  "fetchd's CPU per fast fetch is its threads' CPU over the run divided by the fast "
                  "fetches (loaded runs include the few slow fetches that end in it; left out "
                  "where 4 fast fetches sat beside 192 slow ones): when it is the same alone and "
                  "loaded, a p99 that differs comes from the shared cores, not from more work."
                  % (q["busy"], q["queued"], q["queued"], nz["threads"], nz["slow_delay_ms"] / 1000,
                     nz["threads"] / (nz["slow_delay_ms"] / 1000),
                     q["queued"] / (nz["threads"] / (nz["slow_delay_ms"] / 1000)),
                     us(noisy_summary(off)["p99_loaded"])))
        w("")
        w("| config | run | fast fetches | fast fetches/s | p50 | p99 | max | fetchd CPU per fast fetch "
          "(all threads) | slow fetches done | "
          "fetchd at the start of the fast run (busy / queued / held at the host limit) |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for lim, c in sorted(nzc.items()):
            for r in c["runs"]:
                f_ = r["fast"]
                pool = r.get("pool_at_start")
                w("| %d | %s #%d | %d%s | %s | %s | %s | %s | %s | %s | %s |"
                  % (lim, r["phase"], r["round"], f_["n"],
                     " (%d given up)" % f_["timeouts"] if f_.get("timeouts") else "",
                     rate(f_["rps"]), us(f_["p50_us"]), us(f_["p99_us"]), us(f_["max_us"]),
                     us(f_["cpu_us_per_fetch"]) if "cpu_us_per_fetch" in f_ and f_["n"] >= 100 else "–",
                     "%d in %.1f s" % (r["slow"]["requests"], r["slow"]["duration_us"] / 1e6)
                     if r.get("slow") else "–",
                     "%s / %s / %s" % (pool["busy"], pool["queued"], pool["waiting"]) if pool else "–"))
        nrows = []
        for lim, c in sorted(nzc.items()):
            for ph, t in (("alone", "alone"), ("loaded", "with the neighbour")):
                v = [r["fast"]["p99_us"] / 1000 for r in c["runs"] if r["phase"] == ph]
                v.sort()
                nrows.append(("limit %d, %s" % (lim, t), (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2,
                              min(v), max(v)))
        plot_bars("noisy", "Fast host p99 through fetchd, alone and with 200 fetches to a 2 s host\\n"
                  "{/*0.85 median of the rounds, whiskers min–max; log axis: without the limit a fast "
                  "fetch waits behind the slow host's queue}", "p99 latency (ms, log)", nrows,
                  log=True, fmt="%g")
        w("\n![noisy neighbour](noisy.png)\n")

    # ---------------------------------------------------------- scale (opt-in)
    sc = S.get("scale") or {}
    if sc.get("rows"):
        w("## Scale: thousands in flight (`bench/run scale`, issue 14)\n")
        if sc.get("measured") or sc.get("note"):
            w(measured_apart(sc) + "\n")
        w("N wrk connections POST fetches of `/delay?ms=%d` for %d s; fetchd with `threads = N`, "
          "`queue_limit = N`; the reference is `bench/reference/multi_async.c` (libcurl multi on a "
          "libevent loop, one thread). fetches/s against Little's law over the window where "
          "fetches can complete (N / 2 s x (d - 2) / d); RSS per in-flight fetch is VmHWM above "
          "the same server idle (fetchd with 16 threads); /healthz p99 from a probe every 10 ms "
          "while all N are blocked. Targets (issue 14): efficiency >= 0.95, p99 <= 1.1x the "
          "upstream's 2 s, <= 32 KiB per in-flight fetch and within 1.5x of the reference, "
          "/healthz p99 <= 2 ms.\n" % (sc.get("delay_ms", 2000), sc.get("duration_s", 0)))
        w("| server | N | fetches/s | of (window) | efficiency | p99 | errors | VmHWM | KiB per in-flight | threads | /healthz p99 |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sc["rows"] + sc.get("reference_rows", []):
            if r.get("refused"):
                w("| %s | %d | refused: %s | | | | | | | | |"
                  % (r.get("server", "fetchd"), r["n"], r["refused"].split(": ", 1)[-1]))
                continue
            w("| %s | %d | %.0f | %.0f | %.3f | %.0f ms | %d | %s | %.1f | %d | %.2f ms |"
              % (r.get("server", "fetchd"), r["n"], r["rps"], r["window_rps"], r["efficiency"],
                 r["p99_ms"], r["errors"], kib(r["hwm_kb"]), r["kb_per_inflight"], r["threads"],
                 (r["healthz"]["p99_us"] or 0) / 1000.0))
        w("")

    # ---------------------------------------------------------- elastic (opt-in)
    el = S.get("elastic") or {}
    if el.get("runs"):
        w("## Elastic pool: cold start and shrink (`bench/run elastic`, issue 14)\n")
        if el.get("measured"):
            w(measured_apart(el) + "\n")
        w("N = %d wrk connections POST fetches of `/delay?ms=%d` for %.0f s into a fresh fetchd "
          "with `threads = N`: a fixed pool, and an elastic one (`min_threads = 16`, "
          "`thread_idle_timeout = %.0fs`); /v1/stats sampled every 50 ms. On a 1 s upstream the "
          "pool's throughput is its busy workers per second (Little's law), so the cold start is "
          "when busy workers reach 95%% of N. Targets (issue 14): the elastic pool's throughput "
          "reaches the fixed pool's within 1 s, and it is back to <= 32 threads within "
          "thread_idle_timeout + 1 s after the load.\n"
          % (el["n"], el.get("delay_ms", 1000), el.get("load_s", 0), el.get("idle_timeout_s", 2)))
        w("| pool | busy >= 95% of N after | peak live threads | <= 32 threads after the load | fetches/s | errors |")
        w("|---|---|---|---|---|---|")
        for label in ("fixed", "elastic"):
            r = el["runs"].get(label)
            if not r:
                continue
            w("| %s | %s | %d | %s | %.0f | %d |"
              % (label, "%.2f s" % r["busy95_s"] if r.get("busy95_s") is not None else "never",
                 r.get("peak_live", 0),
                 ("%.2f s" % r["shrink_s"]) if r.get("shrink_s") is not None else "never",
                 r.get("rps", 0), r.get("errors", 0)))
        w("")

    failed = [k for k, v in S.items() if isinstance(v, dict) and v.get("failed")]
    for k in failed:
        w("**Scenario %s failed:** %s\n" % (k, S[k]["failed"]))
    for n in R.get("notes", []):
        w("Note: %s\n" % n)

    # sections kept by hand: carried over, so a new report does not drop them
    md.extend(hand_sections("before"))
    notes = os.path.join(BENCH, "notes.md")
    if os.path.exists(notes):
        w(open(notes).read())
    md.extend(hand_sections("after"))

    with open(os.path.join(RES, "RESULTS.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
