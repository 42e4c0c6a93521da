# SPDX-License-Identifier: Apache-2.0
"""Shared pieces of the integration tests: root/BTF gate, free ports, process handling,
the agent under test, nginx with a generated config, and event reading.

Every process a test starts is tracked by PID and killed at the end; nothing else is touched.
"""
import collections
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "pylib"))
from loopback import NGINX_MAIN, NGINX_TEMP_PATHS, Procs, free_port, wait_port  # noqa: E402,F401
SKIP = 77  # ctest SKIP_RETURN_CODE


def require_bpf():
    """Skips (exit 77) when BPF cannot run here, unless REDTAP_REQUIRE_BPF=1 makes it a failure."""
    why = None
    if os.geteuid() != 0:
        why = "needs root"
    elif not os.path.exists("/sys/kernel/btf/vmlinux"):
        why = "needs kernel BTF (/sys/kernel/btf/vmlinux)"
    if why is None:
        return
    if os.environ.get("REDTAP_REQUIRE_BPF") == "1":
        print(f"FAIL: bpf test cannot run ({why}) but REDTAP_REQUIRE_BPF=1", file=sys.stderr)
        sys.exit(1)
    print(f"SKIP: {why}", file=sys.stderr)
    sys.exit(SKIP)


class Agent:
    """redtap run, events to a file, /ready polled before traffic starts."""

    def __init__(self, binary, workdir, procs, extra_args=()):
        self.binary = binary
        self.events = os.path.join(workdir, "events.ndjson")
        self.log = os.path.join(workdir, "agent.log")
        self.http_port = free_port()
        self.procs = procs
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self):
        self.logf = open(self.log, "w")
        self.proc = self.procs.start(
            [self.binary, "run", "--events", self.events,
             "--http", f"127.0.0.1:{self.http_port}"] + self.extra_args,
            stderr=self.logf)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}: {self.read_log()}")
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.http_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            time.sleep(0.05)
        raise RuntimeError("agent not ready after 20s: " + self.read_log())

    def stop(self):
        """SIGTERM; returns (exit code, seconds it took)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=10)
        self.logf.close()
        return rc, time.monotonic() - t0

    def read_log(self):
        with open(self.log) as f:
            return f.read()

    def read_events(self, type_="http"):
        """Events of one `type` ("http" transactions, "tcp" moments; None: all)."""
        out = []
        with open(self.events) as f:
            for line in f:
                e = json.loads(line)
                if type_ is None or e.get("type") == type_:
                    out.append(e)
        return out


NGINX_CONF = (
    NGINX_MAIN
    + """http {{
  access_log off;
  sendfile on;
  keepalive_requests 100000;
"""
    + NGINX_TEMP_PATHS
    + """  upstream backend {{ server 127.0.0.1:{backend}; keepalive 4; }}
  server {{
    listen 127.0.0.1:{port};
    listen [::1]:{port};
    root {dir}/www;
    location = /ok {{ return 200 "ok\\n"; }}
    location = /created {{ return 201 "created\\n"; }}
    location = /teapot {{ return 418; }}
    location = /fail {{ return 500; }}
    location /static/ {{ alias {dir}/www/; etag on; }}
    location /proxy/ {{
      proxy_pass http://backend/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""
)


class Nginx:
    def __init__(self, workdir, procs, backend_port):
        self.dir = workdir
        self.port = free_port()
        self.procs = procs
        # nginx workers run unprivileged: they must be able to read the static files.
        os.chmod(workdir, 0o755)
        os.makedirs(os.path.join(workdir, "www"), exist_ok=True)
        os.chmod(os.path.join(workdir, "www"), 0o755)
        with open(os.path.join(workdir, "www", "2k.html"), "wb") as f:
            f.write(b"x" * 2048)
        with open(os.path.join(workdir, "www", "big.bin"), "wb") as f:
            f.write(os.urandom(300 * 1024))
        for name in ("2k.html", "big.bin"):
            os.chmod(os.path.join(workdir, "www", name), 0o644)
        self.conf = os.path.join(workdir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(dir=workdir, port=self.port, backend=backend_port))

    def start(self):
        self.proc = self.procs.start(["nginx", "-c", self.conf, "-e", os.path.join(self.dir, "nginx-error.log")])
        wait_port(self.port)
        wait_port(self.port, "::1")


class Scenario(unittest.TestCase):
    """A test class whose traffic runs once in setUpClass (`_run`), in a temporary folder,
    with every process it starts stopped afterwards; the test methods then read the results.
    `expect`/`via_nginx` build the multiset of events the clients' own actions imply."""

    PREFIX = "redtap-it-"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=cls.PREFIX)
        os.chmod(cls.tmp, 0o755)  # nginx workers run unprivileged
        cls.procs = Procs()
        cls.expected = collections.Counter()
        try:
            cls._run()
        finally:
            cls.procs.stop_all()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def _run(cls):
        raise NotImplementedError

    CONFIG = None  # YAML for the agent's --config, or None: the embedded default

    @classmethod
    def start_agent(cls, binary):
        """cls.agent: `binary run`, with the scenario's CONFIG when it sets one; ready."""
        args = []
        if cls.CONFIG:
            path = os.path.join(cls.tmp, "agent.yaml")
            with open(path, "w") as f:
                f.write(cls.CONFIG)
            args = ["--config", path]
        cls.agent = Agent(binary, cls.tmp, cls.procs, args)
        cls.agent.start()

    @classmethod
    def expect(cls, kind, port, method, path, status, n=1):
        cls.expected[(kind, port, method, path, status)] += n

    def ours(self):
        """The events of this scenario's servers (subclasses say which)."""
        raise NotImplementedError

    def assert_counts(self):
        """Exactness: the events of ours(), counted per (kind, server port, method, path,
        status), equal what the scenario's clients did (expect())."""
        got = collections.Counter(
            (e["kind"], e["server.port"], e["http.request.method"], e.get("url.path"),
             e.get("http.response.status_code")) for e in self.ours())
        missing = self.expected - got
        extra = got - self.expected
        self.assertEqual((dict(missing), dict(extra)), ({}, {}),
                         f"missing (expected, not seen) / extra (seen, not expected); "
                         f"agent log:\n{self.log}")

    @classmethod
    def via_nginx(cls, method, path, status, n=1):
        """A request from a client to nginx (cls.ng): its client and server events, plus the
        proxied hop (nginx as client, the backend cls.be as server) for /proxy/ paths."""
        cls.expect("client", cls.ng, method, path, status, n)
        cls.expect("server", cls.ng, method, path, status, n)
        if path.startswith("/proxy/"):
            bpath = path[len("/proxy"):]
            cls.expect("client", cls.be, method, bpath, status, n)
            cls.expect("server", cls.be, method, bpath, status, n)

    @classmethod
    def start_nginx(cls):
        """backend.py (cls.be), then nginx in front of it on a free port (cls.ng)."""
        cls.start_backend()
        nginx = Nginx(cls.tmp, cls.procs, cls.be)
        cls.ng = nginx.port
        nginx.start()

    @classmethod
    def start_backend(cls, *extra):
        """backend.py on a free port (cls.be)."""
        cls.be = free_port()
        cls.procs.start([sys.executable, os.path.join(HERE, "backend.py"), str(cls.be), *extra])
        wait_port(cls.be)


def wait_for(pred, timeout=10.0, step=0.1):
    """Polls `pred` until it returns something true (returned) or `timeout` s pass (its
    last value is returned)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def bpf_ids_held(pid):
    """The BPF program and link ids process `pid` holds open (from /proc/PID/fdinfo)."""
    held = {"prog": set(), "link": set()}
    base = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(base):
        try:
            with open(os.path.join(base, fd)) as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key in ("prog_id", "link_id"):
                held[key[:-3]].add(int(value))
    return held


def bpf_live_ids(kind):
    """Ids of the BPF objects of `kind` ("prog", "link") the kernel has now."""
    import subprocess  # noqa: PLC0415 (only the tests that need it pay the import)
    text = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True,
                          check=True).stdout
    return {o["id"] for o in json.loads(text or "[]")}


def take_arg(flag, default=None):
    """The value of `flag VALUE` on the command line (removed from sys.argv, so unittest
    never sees it), else `default`."""
    for i, a in enumerate(sys.argv):
        if a == flag and i + 1 < len(sys.argv):
            value = sys.argv[i + 1]
            del sys.argv[i:i + 2]
            return value
    return default


def find_redtap():
    return take_arg("--redtap") or os.environ.get(
        "REDTAP_BIN", os.path.join(HERE, "..", "..", "build", "redtap"))
