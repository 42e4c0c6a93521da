# SPDX-License-Identifier: Apache-2.0
"""The pieces bench.py measures with: host and process probes (/proc), the nginx and agent
it starts (and only those it signals), the agent's /metrics counters, and the load generators
(wrk, ab) with their output parsed."""

import glob
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PATHS = {"tiny": "/bench/tiny", "2k": "/bench/2k.html"}
HZ = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- process accounting

def proc_stat_busy():
    """(busy ticks, total ticks) of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    total = sum(v[:8])
    return total - idle, total


def task_cpu_ns(pid):
    """CPU ns of every thread of `pid` (schedstat: exact), 0 when gone."""
    total = 0
    for p in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(p) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def foreign_tracers(own_pid):
    """PIDs of other redtap agents on the box: they trace every process, our baseline too."""
    out = []
    for d in glob.glob("/proc/[0-9]*/comm"):
        try:
            with open(d) as f:
                if f.read().strip() != "redtap":
                    continue
            pid = int(d.split("/")[2])
            if pid != own_pid and b"run" in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0"):
                out.append(pid)
        except (OSError, ValueError):
            pass
    return out


def wait_idle(max_wait, threshold=0.05):
    """Waits until the machine is < threshold busy over 1 s (other users of the box), at most
    max_wait s. Returns the busy fraction seen last."""
    t0 = time.time()
    frac = 1.0
    while True:
        b0, t0t = proc_stat_busy()
        time.sleep(1.0)
        b1, t1t = proc_stat_busy()
        frac = (b1 - b0) / max(1, t1t - t0t)
        if frac < threshold or time.time() - t0 > max_wait:
            return frac


# ---------------------------------------------------------------- nginx

class Nginx:
    def __init__(self, workdir, port):
        self.dir = os.path.join(workdir, "nginx")
        self.port = port
        os.makedirs(os.path.join(self.dir, "www", "bench"), exist_ok=True)
        with open(os.path.join(HERE, "nginx.conf.in")) as f:
            conf = f.read().replace("@DIR@", self.dir).replace("@PORT@", str(port))
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        # 2048 bytes of printable text (the file PERF-FLOOR.md measured).
        import random
        rnd = random.Random(1)
        body = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(2048 - 27))
        with open(os.path.join(self.dir, "www", "bench", "2k.html"), "w") as f:
            f.write("<html><body>" + body + "</body></html>\n")
        self.proc = None
        self.worker = None

    def start(self, cpu):
        self.proc = subprocess.Popen(["taskset", "-c", str(cpu), "nginx", "-c", self.conf,
                                      "-p", self.dir + "/"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        for _ in range(100):
            time.sleep(0.05)
            kids = self.children()
            if kids:
                self.worker = kids[0]
                break
        if not self.worker:
            raise SystemExit("bench: nginx did not start (see %s/error.log)" % self.dir)
        url = f"http://127.0.0.1:{self.port}{PATHS['tiny']}"
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("bench: nginx does not answer on port %d" % self.port)
        # Both bodies must be real 200 answers of the expected size (a 403 from an unreadable
        # file would be measured as a small body: earlier tables had that bug).
        for name, want in (("tiny", 2), ("2k", 2048)):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{PATHS[name]}",
                                            timeout=2) as r:
                    got = len(r.read())
                    ok = r.status == 200 and got == want
            except OSError as e:
                ok, got = False, str(e)
            if not ok:
                raise SystemExit(f"bench: {PATHS[name]} did not answer 200 with {want} bytes "
                                 f"(got {got}; see {self.dir}/error.log)")

    def children(self):
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------- agent

class Agent:
    def __init__(self, binary, http_port, workdir, events_file=None, config=None):
        self.binary = binary
        self.config = config
        self.http = f"127.0.0.1:{http_port}"
        self.workdir = workdir
        self.events_file = events_file
        self.proc = None
        self.log = os.path.join(workdir, "agent.log")

    def start(self):
        args = [self.binary, "run", "--http", self.http, "--log-level", "warn"]
        if self.config:
            args += ["--config", self.config]
        if self.events_file:
            if os.path.exists(self.events_file):
                os.unlink(self.events_file)
            args += ["--events", self.events_file]
        t0 = time.time()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "a"), start_new_session=True)
        while time.time() - t0 < 60:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: the agent exited with {self.proc.returncode} "
                                 f"(see {self.log})")
            try:
                with urllib.request.urlopen(f"http://{self.http}/ready", timeout=1) as r:
                    if r.status == 200:
                        self.startup_s = time.time() - t0
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("bench: the agent was not ready within 60 s")

    def metrics(self):
        with urllib.request.urlopen(f"http://{self.http}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
        return out

    def cpu_ns(self):
        return task_cpu_ns(self.proc.pid)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def counter(m, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for k, v in m.items():
        if not (k == name or k.startswith(name + "{")):
            continue
        if all(f'{lk}="{lv}"' in k for lk, lv in labels.items()):
            total += v
    return total


def agent_snapshot(agent, port, route):
    m = agent.metrics()
    return {
        "records": counter(m, "redtap_agent_records_total"),
        "transactions": counter(m, "redtap_agent_transactions_total"),
        # Only nginx's answers on our route (other nginx instances may run on this box).
        "server": counter(m, "http_server_request_duration_seconds_count",
                          service_name="nginx", http_route=route),
        "client": counter(m, "http_client_request_duration_seconds_count",
                          server_port=str(port), http_route=route),
        "kernel_drops": {k.split('reason="')[1].rstrip('"}'): v for k, v in m.items()
                         if k.startswith("redtap_agent_kernel_drops_total{")},
        "user_drops": {k.split('reason="')[1].rstrip('"}'): v for k, v in m.items()
                       if k.startswith("redtap_agent_userspace_drops_total{")},
        "cpu_ns": agent.cpu_ns(),
    }


def delta(a, b):
    out = {}
    for k in b:
        if isinstance(b[k], dict):
            out[k] = {r: b[k][r] - a[k].get(r, 0) for r in b[k]}
        else:
            out[k] = b[k] - a[k]
    return out


# ---------------------------------------------------------------- load tools

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def to_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)$", s)
    return float(m.group(1)) * UNIT[m.group(2)] if m else float("nan")


def run_wrk(url, dur, conns, cpu, script=None):
    args = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{conns}", f"-d{dur}s", "--latency"]
    if script:
        args += ["-s", script]
    args.append(url)
    t0 = time.time()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = p.communicate(timeout=dur + 60)
    res = {"wall_s": time.time() - t0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    for q in ("50", "99"):
        m = re.search(rf"^\s+{q}%\s+(\S+)", out, re.M)
        res[f"p{q}_ms"] = to_ms(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    res["socket_errors"] = m.group(1) if m else ""
    return res


def run_ab(url, n, c, cpu):
    out = subprocess.run(["taskset", "-c", str(cpu), "ab", "-q", "-n", str(n), "-c", str(c),
                          "-k", url], capture_output=True, text=True, timeout=300).stdout
    get = lambda pat: int(re.search(pat, out).group(1)) if re.search(pat, out) else -1
    return {"complete": get(r"Complete requests:\s+(\d+)"),
            "failed": get(r"Failed requests:\s+(\d+)"),
            "non2xx": max(0, get(r"Non-2xx responses:\s+(\d+)"))}


# ---------------------------------------------------------------- one measured run
