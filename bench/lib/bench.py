#!/usr/bin/python3
"""fetchd benchmark orchestrator, started by bench/run (which installs the
packages and builds the binaries first).

Every process it starts listens on 127.0.0.1 only; every PID is written to
$BENCH_PIDFILE so that bench/run's trap can end them if this script dies, and
each is ended here by PID when its scenario is over. Load is bounded: every
wrk run has a short -d and every wait a timeout.

Raw results go to bench/results/data/ (one JSON file, results.json, plus the
/healthz series); bench/lib/report.py turns them into RESULTS.md and plots.
"""
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "bench")
BUILD = os.environ.get("BENCH_BUILD", os.path.join(ROOT, "build"))
FETCHD = os.path.join(BUILD, "fetchd")
UPSTREAM = os.path.join(BUILD, "tests", "upstream")
PROBE = os.environ["BENCH_PROBE"]
WORK = os.environ["BENCH_WORK"]
PIDFILE = os.environ["BENCH_PIDFILE"]
DATA = os.path.join(BENCH, "results", "data")
PYTHON = "/usr/bin/python3"     # Debian's, where python3-aiohttp & co. live
QUICK = os.environ.get("BENCH_QUICK") == "1"   # shorter runs, for trying the script

RESULTS = {"scenarios": {}, "notes": []}
CHILDREN = {}


def log(msg):
    print("bench: " + msg, flush=True)


def secs(n):
    return max(1, n // 2) if QUICK else n


# ---------------------------------------------------------------- processes

def _register():
    with open(PIDFILE, "w") as f:
        f.write("".join("%d\n" % pid for pid in CHILDREN))


def spawn(args, name, env=None, stdout=None, stderr=None, preexec=None):
    out = open(os.path.join(WORK, name + ".out"), "w") if stdout is None else stdout
    err = open(os.path.join(WORK, name + ".err"), "w") if stderr is None else stderr
    p = subprocess.Popen(args, env=env, stdout=out, stderr=err, preexec_fn=preexec)
    CHILDREN[p.pid] = (name, p)
    _register()
    return p


def stop(p, timeout=3.0):
    """End one of our children by PID: SIGTERM, then SIGKILL."""
    if p is None or p.pid not in CHILDREN:
        return
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    del CHILDREN[p.pid]
    _register()


def stop_all():
    for pid, (name, p) in list(CHILDREN.items()):
        stop(p, 2.0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=5.0, host="127.0.0.1"):
    with urllib.request.urlopen("http://%s:%d%s" % (host, port, path), timeout=timeout) as r:
        return r.status, r.read()


def wait_http(port, path="/healthz", timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        try:
            http_get(port, path, timeout=1.0)
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("nothing answers on 127.0.0.1:%d%s" % (port, path))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def task_ticks(pid):
    """utime + stime (clock ticks) of every thread of pid, by tid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        out[int(tid)] = int(fields[11]) + int(fields[12])
    return out


# ---------------------------------------------------------------- servers

class Upstream:
    """The test upstream; with tls=(cert, key, ca) it serves HTTPS only and
    counts handshakes at /tls-stats (its own queries of it left out)."""

    def __init__(self, tls=None, name="upstream", bind="127.0.0.1"):
        args, env = [UPSTREAM], None
        if bind != "127.0.0.1":           # another loopback address: a host of its own
            args += ["--bind", bind]
        self.host = bind
        self.scheme, self.ctx = "http", None
        if tls is not None:
            args += ["--tls", tls[0], tls[1]]
            self.scheme, self.ctx = "https", ssl.create_default_context(cafile=tls[2])
        self.p = spawn(args, name, env=env, stdout=subprocess.PIPE)
        line = self.p.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise RuntimeError("upstream did not start: %r" % line)
        self.port = int(line.split()[1])

    def url(self, path, host=None):
        return "%s://%s:%d%s" % (self.scheme, host or self.host, self.port, path)

    def tls_stats(self):
        """{"full": n, "resumed": m} since the upstream started."""
        with urllib.request.urlopen(self.url("/tls-stats"), timeout=5.0, context=self.ctx) as r:
            return json.loads(r.read())

    def stop(self):
        stop(self.p)

    def nice(self, n):
        """Scheduling priority of the (single-threaded) upstream; False if not allowed."""
        try:
            os.setpriority(os.PRIO_PROCESS, self.p.pid, n)
            return True
        except OSError:
            return False


# fetchd runs as the packaged units run it: glibc's per-thread caches
# limited to small blocks (systemd/fetchd.service.in, fetchd(8))
FETCHD_ENV = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.tcache_max=256")


def fetchd_conf(port, threads=16, queue_limit=1024, extra_server="", extra="", extra_pool=""):
    return ("[server]\nlisten = 127.0.0.1:%d\nshutdown_timeout = 1s\n%s\n"
            "[pool]\nthreads = %d\nqueue_limit = %d\n%s\n"
            "[log]\nlevel = warn\naccess_log = false\n\n%s"
            % (port, extra_server, threads, queue_limit, extra_pool, extra))


def fetchd_check(conf_text, name):
    path = os.path.join(WORK, name + ".conf")
    with open(path, "w") as f:
        f.write(conf_text)
    r = subprocess.run([FETCHD, "-t", "-c", path], capture_output=True, text=True, timeout=10)
    return r.returncode == 0, (r.stdout + r.stderr).strip(), path


class Fetchd:
    def __init__(self, name, **kw):
        self.port = free_port()
        ok, msg, path = fetchd_check(fetchd_conf(self.port, **kw), name)
        if not ok:
            raise RuntimeError("fetchd rejects %s: %s" % (name, msg))
        self.p = spawn([FETCHD, "-c", path, "--allow", "127.0.0.1/32"], "fetchd-" + name,
                       env=FETCHD_ENV)
        self.pid = self.p.pid
        wait_http(self.port, proc=self.p)

    @classmethod
    def from_conf(cls, name, conf_fn, allow="127.0.0.1/32"):
        """allow=None: no --allow, the config's [security] allow decides."""
        self = cls.__new__(cls)
        self.port = free_port()
        ok, msg, path = fetchd_check(conf_fn(self.port), name)
        if not ok:
            raise RuntimeError(msg)
        self.p = spawn([FETCHD, "-c", path] + (["--allow", allow] if allow else []),
                       "fetchd-" + name, env=FETCHD_ENV)
        self.pid = self.p.pid
        wait_http(self.port, proc=self.p)
        return self

    def url(self):
        return "http://127.0.0.1:%d/v1/fetch" % self.port

    def stats(self):
        return json.loads(http_get(self.port, "/v1/stats")[1])

    def stop(self):
        stop(self.p)


class Nginx:
    """nginx from a template in bench/ (@DIR@, @WORKERS@, @UPSTREAM_PORT@,
    @PORT@, and any other @KEY@ given in subs)."""

    def __init__(self, upstream_port, template="nginx.conf.in", subs=None):
        self.port = free_port()
        self.workers = os.cpu_count()
        self.dir = tempfile.mkdtemp(prefix="nginx.", dir=WORK)
        os.chmod(WORK, 0o711)             # nobody must reach its own directory
        os.chmod(self.dir, 0o755)
        with open(os.path.join(BENCH, template)) as f:
            conf = f.read()
        conf = (conf.replace("@DIR@", self.dir).replace("@WORKERS@", str(self.workers))
                .replace("@UPSTREAM_PORT@", str(upstream_port)).replace("@PORT@", str(self.port)))
        for k, v in (subs or {}).items():
            conf = conf.replace("@%s@" % k, v)
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(conf)
        args = ["nginx", "-e", "stderr", "-p", self.dir, "-c", os.path.join(self.dir, "nginx.conf")]
        if os.getuid() == 0:      # never as root: drop to nobody for the whole process tree
            for d, _, files in os.walk(self.dir):
                os.chown(d, 65534, 65534)
                for fn in files:
                    os.chown(os.path.join(d, fn), 65534, 65534)
            args = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + args
        self.p = spawn(args, "nginx")
        wait_http(self.port, "/json", proc=self.p)

    def stop(self):
        stop(self.p)


class PyRef:
    def __init__(self, uvloop, threads=16):
        self.port = free_port()
        args = [PYTHON, os.path.join(BENCH, "reference", "run_in_executor.py"),
                "--port", str(self.port), "--threads", str(threads)]
        if uvloop:
            args.append("--uvloop")
        self.p = spawn(args, "pyref-" + ("uvloop" if uvloop else "asyncio"))
        wait_http(self.port, proc=self.p)

    def url(self):
        return "http://127.0.0.1:%d/v1/fetch" % self.port

    def stop(self):
        stop(self.p)


# ---------------------------------------------------------------- load

def _wrk_args(url, conns, seconds, threads, body, timeout):
    lua = os.path.join(BENCH, "lua", "fetch.lua" if body is not None else "get.lua")
    args = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds,
            "--timeout", "%ds" % timeout, "-s", lua, url]
    env = dict(os.environ)
    if body is not None:
        env["FETCH_BODY"] = json.dumps(body)
    return args, env


def _wrk_parse(text):
    for line in text.splitlines():
        if line.startswith("WRKJSON "):
            r = json.loads(line[8:])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["errors"] = (r["err_connect"] + r["err_read"] + r["err_write"] + r["err_status"]
                           + r["err_timeout"])
            return r
    raise RuntimeError("no WRKJSON line in wrk output:\n" + text)


def wrk(url, conns, seconds, threads=1, body=None, timeout=10):
    args, env = _wrk_args(url, conns, seconds, threads, body, timeout)
    p = spawn(args, "wrk", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=seconds + timeout + 30)
    finally:
        stop(p)
    return _wrk_parse(out.decode(errors="replace"))


class WrkBg:
    """wrk in the background; result() waits for it."""

    def __init__(self, url, conns, seconds, threads=1, body=None, timeout=10):
        args, env = _wrk_args(url, conns, seconds, threads, body, timeout)
        self.limit = seconds + timeout + 30
        self.p = spawn(args, "wrk-bg", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def result(self):
        try:
            out, _ = self.p.communicate(timeout=self.limit)
        finally:
            stop(self.p)
        return _wrk_parse(out.decode(errors="replace"))

    def cancel(self):
        stop(self.p, 1.0)

    def interrupt(self):
        """End the run now (SIGINT: wrk stops and prints its summary) and
        return its figures."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        return self.result()


def fetch_body(url, **kw):
    d = {"url": url}
    d.update(kw)
    return d


def pct(values, q):
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summarize(runs):
    """Median run of several wrk results (by rps), with the spread of all:
    the median run's own figures plus runs_rps, min_rps, max_rps, and the
    errors of every run."""
    rps = [r["rps"] for r in runs]
    med = sorted(runs, key=lambda r: r["rps"])[(len(runs) - 1) // 2]
    out = dict(med)
    out.update({"rps": pct(rps, 50), "runs_rps": rps, "min_rps": min(rps), "max_rps": max(rps),
                "errors": sum(r["errors"] for r in runs), "runs": len(runs)})
    return out


def probe(port, path, interval_us, duration_ms, out_path, timeout_ms=30000):
    """Latency series of one keep-alive client; a request given up after
    timeout_ms counts with the time waited (a lower bound)."""
    with open(out_path, "w") as out:
        p = spawn([PROBE, str(port), path, str(interval_us), str(duration_ms), str(timeout_ms)],
                  "probe", stdout=out)
        try:
            p.wait(timeout=duration_ms / 1000 + timeout_ms / 1000 + 10)
        finally:
            stop(p)
    lats, timeouts = [], 0
    with open(out_path) as f:
        for line in f:
            cols = line.split()
            lats.append(float(cols[1]))
            timeouts += len(cols) > 2
    return {"n": len(lats), "timeouts": timeouts, "timeout_ms": timeout_ms,
            "p50_us": pct(lats, 50), "p99_us": pct(lats, 99), "max_us": max(lats) if lats else 0}


# ---------------------------------------------------------------- scenarios

def scenario_offload(up):
    """Every worker on /delay 2000 ms, queue half full; /healthz from a probe."""
    threads, queue_limit = 8, 16
    conns = threads + queue_limit // 2
    dur = secs(10)
    out = {"threads": threads, "queue_limit": queue_limit, "clients": conns,
           "delay_ms": 2000, "duration_s": dur}
    # reference: the same fetchd, idle
    fd = Fetchd("offload-idle", threads=threads, queue_limit=queue_limit)
    out["idle"] = probe(fd.port, "/healthz", 10000, 2000, os.path.join(DATA, "offload_idle.tsv"))
    fd.stop()
    # inline_1: one client only, so each stall is one fetch long
    for mode, t, c in (("pooled", threads, conns), ("inline", 0, conns), ("inline_1", 0, 1)):
        fd = Fetchd("offload-" + mode, threads=t, queue_limit=queue_limit)
        load = WrkBg(fd.url(), c, dur, body=fetch_body(up.url("/delay?ms=2000")), timeout=30)
        time.sleep(1.0)
        if mode == "pooled":
            st = fd.stats()["pools"]["default"]
            out["pooled_stats"] = {k: st.get(k) for k in ("threads", "busy", "queued", "queue_limit")}
        r = probe(fd.port, "/healthz", 10000, (dur - 2) * 1000,
                  os.path.join(DATA, "offload_%s.tsv" % mode), timeout_ms=10000)
        out[mode] = r
        out[mode + "_load"] = load.result()
        fd.stop()
        log("offload %s: /healthz p50 %.0f us p99 %.0f us max %.0f us (%d samples, %d timeouts)"
            % (mode, r["p50_us"] or 0, r["p99_us"] or 0, r["max_us"], r["n"], r["timeouts"]))
    return out


def scenario_little(up):
    """Upstream latency 50 ms; throughput against threads / latency."""
    rows = []
    dur, rounds = secs(2), 3
    # Here the upstream stands in for a remote host with a CPU of its own: at
    # nice -10 it does not queue behind fetchd's 256 threads on these shared
    # cores (CFS shares CPU per thread), so its 50 ms stay 50 ms. Only here:
    # elsewhere the CPU it takes is part of what is measured.
    niced = up.nice(-10)
    for threads in (8, 64, 256):
        # reference: the upstream straight, `threads` clients: its real latency
        direct = wrk(up.url("/delay?ms=50"), threads, max(2, dur // 2), threads=2)
        fd = Fetchd("little-%d" % threads, threads=threads, queue_limit=4096)
        body = fetch_body(up.url("/delay?ms=50"), fields=["status", "size"])
        wrk(fd.url(), 2 * threads, 1, threads=2, body=body)          # warm: connections up
        r = summarize([wrk(fd.url(), 2 * threads, dur, threads=2, body=body)
                       for _ in range(rounds)])
        st = fd.stats()
        fd.stop()
        ideal = threads / 0.050
        w_up = direct["mean_us"] / 1e6
        rows.append({"threads": threads, "clients": 2 * threads, "ideal_rps": ideal,
                     "rps": r["rps"], "efficiency": r["rps"] / ideal, "wrk": r,
                     "direct_rps": direct["rps"], "upstream_latency_ms": w_up * 1000,
                     "ideal_measured_rps": threads / w_up,
                     "efficiency_measured": r["rps"] / (threads / w_up),
                     "errors": r["errors"], "min_rps": r["min_rps"], "max_rps": r["max_rps"],
                     "runs_rps": r["runs_rps"]})
        log("little threads=%d: %.0f/s of %.0f ideal (%.3f); upstream really takes %.2f ms: %.3f"
            % (threads, r["rps"], ideal, rows[-1]["efficiency"], w_up * 1000,
               rows[-1]["efficiency_measured"]))
    up.nice(0)
    return {"delay_ms": 50, "duration_s": dur, "rounds": rounds, "rows": rows, "upstream_nice": -10 if niced else 0}


def scenario_small(up):
    """/text?n=64, keep-alive, 64 connections; every target ROUNDS times,
    interleaved (each server started afresh for each run): median and
    min-max."""
    dur, rounds, conns = secs(3), 3, 64
    target = up.url("/text?n=64")
    out = {"connections": conns, "duration_s": dur, "wrk_threads": 2, "rounds": rounds, "rows": {}}
    runs = {}

    def start(name):
        if name == "upstream direct":
            return None, target, None
        if name.startswith("fetchd"):
            srv = Fetchd("small", threads=16)
            body = fetch_body(target) if name == "fetchd" else \
                fetch_body(target, fields=["status", "text"])
            return srv, srv.url(), body
        if name == "nginx":
            srv = Nginx(up.port)
            return srv, "http://127.0.0.1:%d/text?n=64" % srv.port, None
        srv = PyRef(name == "python uvloop", threads=16)
        return srv, srv.url(), fetch_body(target)

    names = ("upstream direct", "fetchd", "fetchd fields=status,text", "nginx",
             "python asyncio", "python uvloop")
    for i in range(rounds):
        for name in names:
            srv, url, body = start(name)
            try:
                wrk(url, conns, 1, threads=2, body=body)           # warm-up
                r = wrk(url, conns, dur, threads=2, body=body)
            finally:
                if srv is not None:
                    srv.stop()
            runs.setdefault(name, []).append(r)
            log("small %s #%d: %.0f/s p50 %.0f us p99 %.0f us errors %d"
                % (name, i + 1, r["rps"], r["p50_us"], r["p99_us"], r["errors"]))
    for name in names:
        out["rows"][name] = summarize(runs[name])
    return out


def curl_times(urls, name):
    cfg = os.path.join(WORK, name + ".curlrc")
    with open(cfg, "w") as f:
        for u in urls:
            f.write('url = "%s"\noutput = "/dev/null"\n' % u)
    p = spawn(["curl", "-s", "-K", cfg, "-w", "%{http_code} %{time_total}\\n"], "curl-" + name,
              stdout=subprocess.PIPE)
    try:
        out, _ = p.communicate(timeout=120)
    finally:
        stop(p)
    times, bad = [], 0
    for line in out.decode().splitlines():
        code, t = line.split()
        if code != "200":
            bad += 1
        times.append(float(t) * 1e6)
    return times, bad


def scenario_overhead(up):
    """One client, sequential: curl through fetchd vs curl straight to the upstream."""
    n = 1000 if QUICK else 4000
    warm = 100
    fd = Fetchd("overhead", threads=16)
    direct_url = up.url("/json")
    via_url = "http://127.0.0.1:%d/v1/fetch?url=%s" % (fd.port, urllib.parse.quote(direct_url, safe=""))
    out = {"requests": n, "warmup": warm, "path": "/json"}
    for name, u in (("direct", direct_url), ("fetchd", via_url)):
        times, bad = curl_times([u] * (n + warm), "overhead-" + name)
        times = times[warm:]
        out[name] = {"p50_us": pct(times, 50), "p90_us": pct(times, 90), "p99_us": pct(times, 99),
                     "max_us": max(times), "mean_us": sum(times) / len(times), "non200": bad}
        with open(os.path.join(DATA, "overhead_%s.txt" % name), "w") as f:
            f.write("".join("%.1f\n" % t for t in times))
    fd.stop()
    out["added_p50_us"] = out["fetchd"]["p50_us"] - out["direct"]["p50_us"]
    out["added_p99_us"] = out["fetchd"]["p99_us"] - out["direct"]["p99_us"]
    log("overhead: direct p50 %.0f us, via fetchd p50 %.0f us: +%.0f us (p99 +%.0f us)"
        % (out["direct"]["p50_us"], out["fetchd"]["p50_us"], out["added_p50_us"], out["added_p99_us"]))
    return out


def scenario_large(up):
    """1 MB and 8 MB, text and binary: fetches/s and the loop thread's CPU,
    each case ROUNDS times, interleaved (1 MB text, 1 MB binary, 8 MB text,
    8 MB binary, then again): median and min-max."""
    dur, rounds = secs(2), 3
    conns = 4
    fd = Fetchd("large", threads=4, queue_limit=64)
    clk = os.sysconf("SC_CLK_TCK")
    cases = []
    for size, label in ((1 << 20, "1 MB"), (8 << 20, "8 MB")):
        for kind in ("text", "bytes"):
            target = up.url("/%s?n=%d" % (kind, size))
            cases.append({"label": label, "kind": kind, "body": fetch_body(target),
                          "direct": wrk(target, conns, dur, threads=1), "runs": []})
    for i in range(rounds):
        for c in cases:
            if i == 0:
                wrk(fd.url(), conns, 1, threads=1, body=c["body"], timeout=20)   # warm-up
            before, t0 = task_ticks(fd.pid), time.monotonic()
            r = wrk(fd.url(), conns, dur, threads=1, body=c["body"], timeout=20)
            after, t1 = task_ticks(fd.pid), time.monotonic()
            delta = {tid: after[tid] - before.get(tid, 0) for tid in after}
            loop = delta.get(fd.pid, 0)
            total = sum(delta.values())
            wall = t1 - t0
            r.update({"loop_cpu_s": loop / clk, "process_cpu_s": total / clk, "wall_s": wall,
                      "loop_share": loop / total if total else 0.0,
                      "loop_core_pct": 100.0 * loop / clk / wall,
                      "workers_core_pct": 100.0 * (total - loop) / clk / wall})
            c["runs"].append(r)
            log("large %s %s #%d: %.1f/s (direct %.1f/s); loop %.1f%% of a core, %.1f%% of fetchd's CPU"
                % (c["label"], c["kind"], i + 1, r["rps"], c["direct"]["rps"], r["loop_core_pct"],
                   100 * r["loop_share"]))
    fd.stop()
    rows = []
    for c in cases:
        runs = c["runs"]
        sm = summarize(runs)
        loop_pct = [r["loop_core_pct"] for r in runs]
        row = {"size": c["label"], "kind": "text" if c["kind"] == "text" else "binary",
               "body_mode": "text" if c["kind"] == "text" else "content_base64",
               "rps": sm["rps"], "min_rps": sm["min_rps"], "max_rps": sm["max_rps"],
               "runs_rps": sm["runs_rps"], "direct_rps": c["direct"]["rps"],
               "doc_bytes": sum(r["bytes"] for r in runs) / max(1, sum(r["requests"] for r in runs)),
               "errors": sm["errors"], "p50_us": sm["p50_us"], "p99_us": sm["p99_us"],
               "loop_core_pct": pct(loop_pct, 50), "loop_core_min": min(loop_pct),
               "loop_core_max": max(loop_pct), "runs_loop_core_pct": loop_pct,
               "loop_share": pct([r["loop_share"] for r in runs], 50),
               "workers_core_pct": pct([r["workers_core_pct"] for r in runs], 50)}
        rows.append(row)
    return {"connections": conns, "threads": 4, "duration_s": dur, "rounds": rounds,
            "clk_tck": clk, "rows": rows}


def scenario_memory(up):
    out = {}
    for threads in (16, 256):
        fd = Fetchd("mem-idle-%d" % threads, threads=threads)
        time.sleep(0.5)
        out["idle_%d_kb" % threads] = rss_kb(fd.pid)
        fd.stop()
        log("memory: idle RSS with %d threads: %d KiB" % (threads, out["idle_%d_kb" % threads]))
    # 10 000 queued requests, each on its own client connection: the 16
    # workers are held by the upstream (/hold), everything else waits.
    n_q, threads = 10000, 16
    extra = "max_connections = 16384\n"
    ok, _, _ = fetchd_check(fetchd_conf(free_port(), extra_server=extra), "mem-probe")
    if not ok:
        extra = ""
        RESULTS["notes"].append("fetchd rejects [server] max_connections; memory runs use its default")
    fd = Fetchd("mem-queue", threads=threads, queue_limit=n_q + 100, extra_server=extra)
    time.sleep(0.5)
    base = rss_kb(fd.pid)
    body = fetch_body(up.url("/hold?key=mem"), timeout=120)
    load = WrkBg(fd.url(), n_q + threads, secs(20), threads=2, body=body, timeout=60)
    queued, deadline, st = 0, time.monotonic() + 20, {}
    while time.monotonic() < deadline:
        time.sleep(0.25)
        try:
            st = fd.stats()["pools"]["default"]
        except Exception:
            continue
        queued = st.get("queued", 0)
        if queued >= n_q:
            break
    time.sleep(0.5)
    st = fd.stats()["pools"]["default"]
    rss = rss_kb(fd.pid)
    load.cancel()
    fd.stop()
    http_get(up.port, "/release?key=mem")
    out.update({"queue_base_kb": base, "queue_kb": rss, "queued": st.get("queued"),
                "busy": st.get("busy"), "connections": n_q + threads,
                "bytes_per_queued": (rss - base) * 1024.0 / max(1, st.get("queued") or 1)})
    log("memory: %s queued on connections: RSS %d -> %d KiB, %.0f bytes each"
        % (st.get("queued"), base, rss, out["bytes_per_queued"]))
    # The same queue from one batch: the cost of a task without its connection.
    fd = Fetchd("mem-batch", threads=threads, queue_limit=n_q + 100,
                extra_server="max_batch = 10000\nmax_request_bytes = 4M\n")
    time.sleep(0.5)
    base = rss_kb(fd.pid)
    items = [fetch_body(up.url("/hold?key=memb"), timeout=120) for _ in range(n_q)]
    payload = json.dumps({"requests": items}).encode()
    sock = socket.create_connection(("127.0.0.1", fd.port))
    sock.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
    deadline, st = time.monotonic() + 15, {}
    while time.monotonic() < deadline:
        time.sleep(0.25)
        st = fd.stats()["pools"]["default"]
        if st.get("queued", 0) >= n_q - threads:
            break
    time.sleep(0.5)
    st = fd.stats()["pools"]["default"]
    rss = rss_kb(fd.pid)
    sock.close()
    fd.stop()
    http_get(up.port, "/release?key=memb")
    out.update({"batch_base_kb": base, "batch_kb": rss, "batch_queued": st.get("queued"),
                "batch_bytes_per_queued": (rss - base) * 1024.0 / max(1, st.get("queued") or 1)})
    log("memory: %s queued from one batch: RSS %d -> %d KiB, %.0f bytes each"
        % (st.get("queued"), base, rss, out["batch_bytes_per_queued"]))
    return out


def scenario_bulkhead(up):
    """A named pool for the slow host; the fast host's p99 with and without slow load."""
    slow_threads, slow_queue = 4, 64
    slow_conns = 32
    dur = secs(3)
    pool_conf = lambda port: fetchd_conf(
        port, threads=16,
        extra="[pool.slow]\nthreads = %d\nqueue_limit = %d\nhosts = localhost\n"
        % (slow_threads, slow_queue))
    ok, msg, _ = fetchd_check(pool_conf(free_port()), "bulkhead-check")
    if not ok:
        log("bulkhead: SKIPPED, fetchd rejects [pool.slow]: " + msg)
        return {"skipped": "fetchd rejects the [pool.slow] configuration: " + msg}
    fast = fetch_body(up.url("/text?n=64"), fields=["status", "text"])
    slow = fetch_body(up.url("/delay?ms=1000", host="localhost"), fields=["status"])
    out = {"fast_connections": 8, "slow_connections": slow_conns, "slow_delay_ms": 1000,
           "slow_pool": {"threads": slow_threads, "queue_limit": slow_queue, "hosts": "localhost"},
           "default_threads": 16, "duration_s": dur, "runs": []}

    def fast_run(fd, label, with_slow):
        load = None
        if with_slow:
            load = WrkBg(fd.url(), slow_conns, dur + 2, body=slow, timeout=30)
            time.sleep(1.5)
        r = wrk(fd.url(), 8, dur, threads=1, body=fast)
        st = fd.stats()["pools"]
        sl = None
        if load is not None:
            sl = load.result()
        out["runs"].append({"label": label, "slow_load": with_slow, "fast": r, "slow": sl,
                            "pools": {k: {kk: v.get(kk) for kk in ("threads", "busy", "queued")}
                                      for k, v in st.items()}})
        log("bulkhead %s: fast %.0f/s p99 %.0f us%s" % (
            label, r["rps"], r["p99_us"],
            "; slow %.1f/s, %d errors" % (sl["rps"], sl["errors"]) if sl else ""))

    fd = Fetchd.from_conf("bulkhead", pool_conf)
    for i in range(3):                     # interleaved, three times: this box is shared
        fast_run(fd, "named pool, fast alone", False)
        fast_run(fd, "named pool, slow load", True)
        nf = Fetchd("bulkhead-nopool", threads=16)
        fast_run(nf, "no named pool, slow load", True)
        nf.stop()
    fd.stop()
    return out


def fast_probes(port, url, conns, interval_us, duration_ms, name, timeout_ms=30000):
    """conns probe processes, each one keep-alive connection sending
    GET /v1/fetch?url=URL every interval_us (back to back when an answer is
    late) for duration_ms; a fetch in flight at the end is waited for (at
    most timeout_ms), so a fetch stuck in the queue is measured, not left
    out. Latencies of all, merged."""
    path = "/v1/fetch?url=%s" % urllib.parse.quote(url, safe="")
    procs, files = [], []
    for i in range(conns):
        fn = os.path.join(DATA, "noisy_%s_%d.tsv" % (name, i))
        out = open(fn, "w")
        files.append((fn, out))
        procs.append(spawn([PROBE, str(port), path, str(interval_us), str(duration_ms),
                            str(timeout_ms)], "probe-%d" % i, stdout=out))
    t0 = time.monotonic()
    try:
        for p in procs:
            p.wait(timeout=max(1.0, duration_ms / 1000 + timeout_ms / 1000 + 10
                               - (time.monotonic() - t0)))
    finally:
        for p in procs:
            stop(p)
    elapsed = time.monotonic() - t0
    lats, timeouts = [], 0
    for fn, out in files:
        out.close()
        with open(fn) as f:
            for line in f:
                cols = line.split()
                lats.append(float(cols[1]))
                timeouts += len(cols) > 2
        os.unlink(fn)
    return {"n": len(lats), "timeouts": timeouts, "timeout_ms": timeout_ms,
            "elapsed_s": elapsed, "rps": (len(lats) - timeouts) / max(elapsed, 1e-3),
            "p50_us": pct(lats, 50), "p99_us": pct(lats, 99), "max_us": max(lats) if lats else 0}


def scenario_noisy(up_unused):
    """Issue 15 item 5, noisy neighbour: two hosts on loopback, a 2 s one on
    127.0.0.2 and a fast one on 127.0.0.3; the fast host's latency through
    fetchd (threads = 16) alone, while 200 fetches to the slow host are in
    flight or queued, and alone again, with per_host_limit = 0 and 4."""
    threads, queue_limit, slow_conns, slow_ms = 16, 1024, 200, 2000
    conns, interval_us = 4, 1000           # 4 fast connections, one fetch per ms each
    dur = secs(4)
    limits = [0, 4]
    # with the limit, alone and loaded alternate five times (p99 on these
    # shared cores moves 2-5x between runs of the same thing: the medians
    # of the rounds are compared); without it once (its loaded run lasts
    # as long as a fast fetch waits behind the slow host, ~22 s)
    rounds = {0: 1, 4: 5}
    allow = "[security]\nallow = 127.0.0.0/8\n"
    conf = lambda limit: (lambda port: fetchd_conf(
        port, threads=threads, queue_limit=queue_limit, extra=allow,
        extra_pool="per_host_limit = %d\n" % limit))
    ok, msg, _ = fetchd_check(conf(4)(free_port()), "noisy-check")
    if not ok:
        log("noisy: SKIPPED, fetchd rejects per_host_limit: " + msg)
        return {"skipped": "fetchd rejects [pool] per_host_limit: " + msg}
    slow_up = Upstream(name="upstream-slow", bind="127.0.0.2")
    fast_up = Upstream(name="upstream-fast", bind="127.0.0.3")
    fast_url = fast_up.url("/json")
    slow_body = fetch_body(slow_up.url("/delay?ms=%d" % slow_ms), timeout=60, fields=["status"])
    out = {"threads": threads, "queue_limit": queue_limit, "slow_connections": slow_conns,
           "slow_delay_ms": slow_ms, "fast_connections": conns, "fast_interval_us": interval_us,
           "duration_s": dur, "fast_path": "/json", "configs": []}

    def per_host(fd):
        st = fd.stats()["pools"]["default"]
        ph = st.get("per_host") or {}
        return {"busy": st.get("busy"), "queued": st.get("queued"),
                "at_limit": ph.get("at_limit"), "waiting": ph.get("waiting")}

    try:
        for limit in limits:
            fd = Fetchd.from_conf("noisy-%d" % limit, conf(limit), allow=None)
            try:
                doc = json.loads(http_get(fd.port, "/v1/fetch?url=%s"
                                          % urllib.parse.quote(fast_url, safe=""))[1])
                if doc.get("status") != 200:
                    raise RuntimeError("the fast host through fetchd: %r" % doc)
                cfg = {"per_host_limit": limit, "runs": []}
                clk = os.sysconf("SC_CLK_TCK")

                def probes(label):
                    # with fetchd's CPU over the run (every thread), per fast
                    # fetch: is a loaded run's p99 fetchd working more?
                    t0 = sum(task_ticks(fd.pid).values())
                    r = fast_probes(fd.port, fast_url, conns, interval_us, dur * 1000,
                                    "%d_%s" % (limit, label))
                    r["fetchd_cpu_s"] = (sum(task_ticks(fd.pid).values()) - t0) / float(clk)
                    r["cpu_us_per_fetch"] = r["fetchd_cpu_s"] * 1e6 / max(1, r["n"])
                    return r
                for i in range(rounds[limit]):
                    r = probes("alone")
                    cfg["runs"].append({"phase": "alone", "round": i + 1, "fast": r})
                    log("noisy limit %d #%d alone: fast %.0f/s p50 %.0f us p99 %.0f us, "
                        "fetchd %.0f us CPU per fetch"
                        % (limit, i + 1, r["rps"], r["p50_us"], r["p99_us"], r["cpu_us_per_fetch"]))
                    # the neighbour: 200 connections, each POSTing the slow
                    # fetch again as soon as it is answered, so 200 are in
                    # flight or queued until it is interrupted
                    load = WrkBg(fd.url(), slow_conns, 120, body=slow_body, timeout=70)
                    end = time.monotonic() + 5.0
                    time.sleep(0.5)
                    while True:            # all 200 in fetchd: running or queued
                        during = per_host(fd)
                        if (during["busy"] + during["queued"] >= slow_conns
                                or time.monotonic() > end):
                            break
                        time.sleep(0.1)
                    r = probes("loaded")
                    during_end = per_host(fd)
                    sl = load.interrupt()
                    cfg["runs"].append({"phase": "loaded", "round": i + 1, "fast": r,
                                        "slow": {k: sl[k] for k in ("requests", "duration_us",
                                                                     "errors", "rps")},
                                        "pool_at_start": during, "pool_at_end": during_end})
                    log("noisy limit %d #%d loaded: fast %.0f/s p50 %.0f us p99 %.0f us, "
                        "fetchd %.0f us CPU per fetch "
                        "(%d fetches, %d given up); slow %d done in %.1f s; pool %s"
                        % (limit, i + 1, r["rps"], r["p50_us"], r["p99_us"], r["cpu_us_per_fetch"],
                           r["n"],
                           r["timeouts"], sl["requests"], sl["duration_us"] / 1e6, during))
                    end = time.monotonic() + 5.0
                    while time.monotonic() < end:   # the slow fetches leave fetchd
                        st = per_host(fd)
                        if st["busy"] == 0 and st["queued"] == 0:
                            break
                        time.sleep(0.1)
                    time.sleep(0.2)
                r = probes("after")
                cfg["runs"].append({"phase": "after", "round": rounds[limit], "fast": r})
                log("noisy limit %d after: fast %.0f/s p50 %.0f us p99 %.0f us"
                    % (limit, r["rps"], r["p50_us"], r["p99_us"]))
                out["configs"].append(cfg)
            finally:
                fd.stop()
    finally:
        slow_up.stop()
        fast_up.stop()
    for cfg in out["configs"]:             # medians of the rounds
        alone = [r["fast"]["p99_us"] for r in cfg["runs"] if r["phase"] == "alone"]
        loaded = [r["fast"]["p99_us"] for r in cfg["runs"] if r["phase"] == "loaded"]
        cfg["alone_p99_us"] = pct(alone, 50)
        cfg["loaded_p99_us"] = pct(loaded, 50)
        cfg["rise"] = cfg["loaded_p99_us"] / cfg["alone_p99_us"] - 1
        log("noisy limit %d: fast p99 %.0f us alone, %.0f us loaded: %+.0f%%"
            % (cfg["per_host_limit"], cfg["alone_p99_us"], cfg["loaded_p99_us"], 100 * cfg["rise"]))
    return out


def scenario_https(up):
    """/text?n=64 from an HTTPS origin (the test upstream with --tls), 64
    keep-alive connections: fetchd vs nginx as an HTTPS reverse proxy, each
    started afresh for every run, runs interleaved (f, n, f, n, f, n); the
    origin's full and resumed handshakes counted per run, warm-up and
    measurement apart."""
    dur, warm, rounds, conns, threads = secs(7), 1, 3, 64, 8
    certs = os.path.join(WORK, "tls")
    subprocess.run(["sh", os.path.join(ROOT, "tests", "tls", "mkcerts.sh"), certs],
                   check=True, capture_output=True, timeout=60)
    ca = os.path.join(certs, "ca.pem")
    os.chmod(certs, 0o755)                # nginx runs as nobody and reads ca.pem
    os.chmod(ca, 0o644)
    origin = Upstream(tls=(os.path.join(certs, "leaf.pem"), os.path.join(certs, "leaf.key"), ca),
                      name="upstream-tls")
    target = origin.url("/text?n=64")
    out = {"connections": conns, "duration_s": dur, "warmup_s": warm, "wrk_threads": 2,
           "fetchd_threads": threads, "nginx_workers": os.cpu_count(), "rounds": rounds,
           "path": "/text?n=64", "runs": [],
           "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
           "loadavg_at_start": open("/proc/loadavg").read().split()[:3]}

    def delta(a, b):
        return {k: b[k] - a[k] for k in ("full", "resumed")}

    def start(name):
        if name == "fetchd":
            srv = Fetchd("https", threads=threads, extra="[fetch]\nca_file = %s\n" % ca)
            return srv, srv.url(), fetch_body(target)
        srv = Nginx(origin.port, template="nginx-https.conf.in", subs={"CA": ca})
        return srv, "http://127.0.0.1:%d/text?n=64" % srv.port, None

    try:
        # reference: wrk straight to the origin over HTTPS (its own 64
        # connections, kept alive), what the origin serves on these cores
        wrk(target, conns, warm, threads=2)
        out["origin_direct"] = wrk(target, conns, max(2, dur // 2), threads=2)
        log("https origin direct: %.0f/s p50 %.0f us" % (out["origin_direct"]["rps"],
                                                         out["origin_direct"]["p50_us"]))
        for i in range(rounds):
            for name in ("fetchd", "nginx"):
                t0 = origin.tls_stats()
                srv, url, body = start(name)
                try:
                    wrk(url, conns, warm, threads=2, body=body)          # warm-up
                    t1 = origin.tls_stats()
                    r = wrk(url, conns, dur, threads=2, body=body)
                    t2 = origin.tls_stats()
                finally:
                    srv.stop()
                run = {"target": name, "round": i + 1, "wrk": r, "rps": r["rps"],
                       "errors": r["errors"], "warmup_tls": delta(t0, t1), "run_tls": delta(t1, t2)}
                out["runs"].append(run)
                log("https %s #%d: %.0f/s p50 %.0f us p99 %.0f us errors %d; handshakes "
                    "warm-up %d full %d resumed, run %d full %d resumed"
                    % (name, i + 1, r["rps"], r["p50_us"], r["p99_us"], r["errors"],
                       run["warmup_tls"]["full"], run["warmup_tls"]["resumed"],
                       run["run_tls"]["full"], run["run_tls"]["resumed"]))
    finally:
        origin.stop()
    for name in ("fetchd", "nginx"):
        rps = [r["rps"] for r in out["runs"] if r["target"] == name]
        out[name] = {"median_rps": pct(rps, 50), "min_rps": min(rps), "max_rps": max(rps),
                     "workers": threads if name == "fetchd" else os.cpu_count(),
                     "warmup_full_max": max(r["warmup_tls"]["full"] for r in out["runs"]
                                            if r["target"] == name),
                     "run_full_total": sum(r["run_tls"]["full"] for r in out["runs"]
                                           if r["target"] == name),
                     "run_resumed_total": sum(r["run_tls"]["resumed"] for r in out["runs"]
                                              if r["target"] == name)}
    out["ratio"] = out["fetchd"]["median_rps"] / out["nginx"]["median_rps"]
    out["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    log("https: fetchd median %.0f/s (%.0f-%.0f), nginx median %.0f/s (%.0f-%.0f): %.2fx"
        % (out["fetchd"]["median_rps"], out["fetchd"]["min_rps"], out["fetchd"]["max_rps"],
           out["nginx"]["median_rps"], out["nginx"]["min_rps"], out["nginx"]["max_rps"], out["ratio"]))
    # the last few runs of this scenario, kept across bench runs (RESULTS.md
    # shows them: one run of it says little on a shared machine)
    hist = RESULTS.setdefault("https_history", [])
    hist.append({"date": out["date"], "loadavg_at_start": out["loadavg_at_start"],
                 "ratio": out["ratio"],
                 "fetchd": out["fetchd"], "nginx": out["nginx"]})
    del hist[:-5]
    return out


class AsyncRef:
    """bench/reference/multi_async.c: libcurl multi on a libevent loop."""

    def __init__(self):
        self.port = free_port()
        self.p = spawn([os.environ["BENCH_MULTI_ASYNC"], "--port", str(self.port)], "multi-async")
        self.pid = self.p.pid
        wait_http(self.port, proc=self.p)

    def url(self):
        return "http://127.0.0.1:%d/v1/fetch" % self.port

    def stop(self):
        stop(self.p)


def proc_status(pid, key):
    """A kB or count field of /proc/PID/status (VmHWM, VmRSS, Threads)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def scale_run(srv, n, dur, up, idle_kb, label):
    """wrk -c n on a 2 s upstream through srv (stopped here); its figures."""
    row = {}
    start_kb = rss_kb(srv.pid)
    body = fetch_body(up.url("/delay?ms=2000"), fields=["status"])
    load = WrkBg(srv.url(), n, dur, threads=2, body=body, timeout=30)
    time.sleep(4.0)
    row["threads"] = proc_status(srv.pid, "Threads")
    row["healthz"] = probe(srv.port, "/healthz", 10000, max(1, dur - 6) * 1000,
                           os.path.join(DATA, "scale_healthz_%s_%d.tsv" % (label, n)),
                           timeout_ms=10000)
    r = load.result()
    row["hwm_kb"] = proc_status(srv.pid, "VmHWM")
    srv.stop()
    # wrk counts what completed within dur: the first 2 s complete nothing,
    # so N / 2 s over dur - 2 of dur seconds is the most
    window = n / 2.0 * (dur - 2.0) / dur
    row.update({"rps": r["rps"], "efficiency": r["rps"] / window, "window_rps": window,
                "p99_ms": r.get("p99_us", 0) / 1000.0, "errors": r["errors"],
                "start_kb": start_kb, "idle_kb": idle_kb,
                "kb_per_inflight": (row["hwm_kb"] - idle_kb) / float(n)})
    log("scale %s N=%d: %.0f fetches/s of %.0f in the window (%.3f), p99 %.0f ms, %d errors; "
        "VmHWM %d KiB (%.1f KiB per in-flight fetch above idle %d KiB); %d threads; "
        "/healthz p99 %.2f ms"
        % (label, n, r["rps"], window, row["efficiency"], row["p99_ms"], r["errors"],
           row["hwm_kb"], row["kb_per_inflight"], idle_kb, row["threads"],
           (row["healthz"]["p99_us"] or 0) / 1000.0))
    return row


def scenario_scale(up):
    """Issue 14: N clients (wrk -c N) on a 2 s upstream through fetchd with
    threads = N, for N = 1024, 4096, 8192 (BENCH_SCALE_N overrides):
    fetches/s against Little's law (N / 2 s), p99, VmHWM and RSS per
    in-flight fetch above an idle 16-thread fetchd, threads, and /healthz
    p99 from a probe while all N are blocked. Opt-in: bench/run scale."""
    ns = [int(x) for x in os.environ.get("BENCH_SCALE_N", "1024 4096 8192").split()]
    dur = secs(12)
    fd = Fetchd("scale-idle", threads=16)
    time.sleep(0.5)
    idle_kb = rss_kb(fd.pid)
    fd.stop()
    rows, ref_rows = [], []
    for n in ns:
        row = {"n": n, "ideal_rps": n / 2.0, "server": "fetchd"}
        extra = "max_connections = %d\n" % (n + 256)
        ok, msg, _ = fetchd_check(fetchd_conf(free_port(), threads=n, queue_limit=n,
                                              extra_server=extra), "scale-check-%d" % n)
        if not ok:
            row["refused"] = msg
            rows.append(row)
            log("scale N=%d: fetchd refuses the configuration: %s" % (n, msg))
            continue
        fd = Fetchd("scale-%d" % n, threads=n, queue_limit=n, extra_server=extra)
        row.update(scale_run(fd, n, dur, up, idle_kb, "fetchd"))
        rows.append(row)
    if "BENCH_MULTI_ASYNC" in os.environ:
        ref = AsyncRef()
        time.sleep(0.5)
        ref_idle_kb = rss_kb(ref.pid)
        ref.stop()
        for n in ns:
            ref = AsyncRef()
            row = {"n": n, "ideal_rps": n / 2.0, "server": "multi_async"}
            row.update(scale_run(ref, n, dur, up, ref_idle_kb, "multi_async"))
            ref_rows.append(row)
    return {"delay_ms": 2000, "duration_s": dur, "rows": rows, "reference_rows": ref_rows}


def elastic_run(n, pool, up, label, load_s, idle_s):
    """A cold start: n wrk clients on a 1 s upstream for load_s through a
    fresh fetchd with threads = n and the [pool] lines pool; /v1/stats
    sampled every 50 ms from the first request to idle_s + 3 s after the
    load ends. Returns the samples (t from the start, live, busy,
    completed) and when the load ended."""
    extra = "max_connections = %d\n" % (n + 256)
    fd = Fetchd("elastic-" + label, threads=n, queue_limit=n, extra_server=extra,
                extra_pool=pool)
    body = fetch_body(up.url("/delay?ms=1000"), fields=["status"])
    samples = []
    t0 = time.time()
    load = WrkBg(fd.url(), n, load_s, threads=2, body=body, timeout=10)
    end = None
    while True:
        t = time.time() - t0
        if end is None and load.p.poll() is not None:
            end = t
        if end is not None and t > end + idle_s + 3:
            break
        if t > load_s + idle_s + 40:
            break
        try:
            st = fd.stats()["pools"]["default"]
            samples.append((t, st["live"], st["busy"], st["completed"]))
        except Exception:
            pass
        time.sleep(0.05)
    r = load.result()
    fd.stop()
    return {"samples": samples, "load_end_s": end, "rps": r["rps"], "errors": r["errors"]}


def scenario_elastic(up):
    """Issue 14's elastic pool: the same cold start through a fixed pool
    (threads = N) and an elastic one (min_threads = 16, threads = N,
    thread_idle_timeout = 2s): when busy workers reach 95% of N (the fixed
    pool's throughput, by Little's law, on a 1 s upstream), and how long
    after the load the elastic pool is back to <= 32 threads (target:
    thread_idle_timeout + 1 s). N = 1024 (BENCH_ELASTIC_N): this
    container's descriptor limit bounds it. Opt-in: bench/run elastic."""
    n = int(os.environ.get("BENCH_ELASTIC_N", "1024"))
    idle_s = 2.0
    load_s = secs(6)
    out = {"n": n, "idle_timeout_s": idle_s, "load_s": load_s, "delay_ms": 1000, "runs": {}}
    for label, pool in (("fixed", ""),
                        ("elastic", "min_threads = 16\nthread_idle_timeout = 2s\n")):
        run = elastic_run(n, pool, up, label, load_s, idle_s)
        smp = run["samples"]
        warm = next((t for t, live, busy, done in smp if busy >= 0.95 * n), None)
        shrink = None
        if run["load_end_s"] is not None:
            shrink = next((t - run["load_end_s"] for t, live, busy, done in smp
                           if t >= run["load_end_s"] and live <= 32), None)
        run.update({"busy95_s": warm, "shrink_s": shrink,
                    "peak_live": max((live for t, live, busy, done in smp), default=0)})
        with open(os.path.join(DATA, "elastic_%s.tsv" % label), "w") as f:
            for t, live, busy, done in smp:
                f.write("%.3f\t%d\t%d\t%d\n" % (t, live, busy, done))
        del run["samples"]
        out["runs"][label] = run
        log("elastic %s N=%d: busy >= 95%% of N after %s s; peak %d live threads; "
            "<= 32 threads %s s after the load; %.0f fetches/s, %d errors"
            % (label, n, "%.2f" % warm if warm is not None else "never", run["peak_live"],
               "%.2f" % shrink if shrink is not None else "never", run["rps"],
               run["errors"]))
    return out


# scale is not part of a full run (over a minute, and it needs a high fd
# limit): bench/run scale
# noisy is not either (about 100 s: without per_host_limit a fast fetch
# waits ~22 s behind the slow host's queue, and that wait is the point):
# bench/run noisy
# elastic is not either (two cold starts of 1024 clients, about 30 s):
# bench/run elastic
OPT_IN = {"scale": scenario_scale, "noisy": scenario_noisy, "elastic": scenario_elastic}

SCENARIOS = [
    ("offload", scenario_offload),
    ("little", scenario_little),
    ("small", scenario_small),
    ("overhead", scenario_overhead),
    ("large", scenario_large),
    ("memory", scenario_memory),
    ("bulkhead", scenario_bulkhead),
    ("https", scenario_https),
]


def environment():
    def cmd(args):
        try:
            r = subprocess.run(args, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except Exception as e:
            return "unavailable (%s)" % e
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "kernel": os.uname().release,
            "cpus": os.cpu_count(), "cpu_model": model, "loadavg_at_start": load,
            "fetchd": cmd([FETCHD, "--version"]), "wrk": cmd(["wrk", "-v"]),
            "nginx": cmd(["nginx", "-v"]), "curl": cmd(["curl", "--version"]),
            "python": cmd([PYTHON, "-c",
                           "import sys,aiohttp,requests,uvloop;print('python',sys.version.split()[0],"
                           "'aiohttp',aiohttp.__version__,'requests',requests.__version__,"
                           "'uvloop',uvloop.__version__)"])}


def main():
    only = sys.argv[1:]
    os.makedirs(DATA, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    t0 = time.monotonic()
    path = os.path.join(DATA, "results.json")
    if os.path.exists(path):
        with open(path) as f:
            last = json.load(f)
        if only:                           # a partial run updates the last full one
            RESULTS.update(last)
        else:                              # a full run keeps only the HTTPS history,
            RESULTS["https_history"] = last.get("https_history", [])
            for k in OPT_IN:               # and what it does not run (measured separately)
                if k in last.get("scenarios", {}):
                    RESULTS["scenarios"][k] = last["scenarios"][k]
    env = environment()
    if not only or "environment" not in RESULTS:
        RESULTS["environment"] = env
    # else: the header of the report stays the full run's; each scenario
    # run here carries its own date and load (report.py: "measured
    # separately")
    up = Upstream()
    try:
        for name, fn in SCENARIOS + [(k, v) for k, v in OPT_IN.items() if k in only]:
            if only and name not in only:
                continue
            s0 = time.monotonic()
            load0 = open("/proc/loadavg").read().split()[:3]
            try:
                RESULTS["scenarios"][name] = fn(up)
            except Exception as e:            # one broken scenario must not hide the others
                log("%s FAILED: %s" % (name, e))
                RESULTS["scenarios"][name] = {"failed": str(e)}
            RESULTS["scenarios"][name]["elapsed_s"] = round(time.monotonic() - s0, 1)
            if only:
                RESULTS["scenarios"][name]["measured"] = {
                    "date": env["date"], "loadavg_at_start": load0,
                    "loadavg_at_end": open("/proc/loadavg").read().split()[:3],
                    "command": "bench/run " + " ".join(only)}
            with open(os.path.join(DATA, "results.json"), "w") as f:
                json.dump(RESULTS, f, indent=1)
    finally:
        stop_all()
    if not only or "total_s" not in RESULTS:
        RESULTS["total_s"] = round(time.monotonic() - t0, 1)
        RESULTS["environment"]["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    with open(os.path.join(DATA, "results.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)
    log("measured in %.0f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
