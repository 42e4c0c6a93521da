#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration (label bpf): what deploy/ ships, run for real.

- the systemd unit installed as its header says, `systemd-analyze verify`;
- the Kubernetes manifest: its documents, probes, and capabilities `doctor` knows;
- the image built by scripts/image, run with podman exactly as the DaemonSet runs it (its
  capabilities, hostPID, host network, seccomp and mounts are read from the manifest): doctor
  passes, a request to a host nginx becomes an event and a metric, SIGTERM leaves nothing;
- container metadata: a process in a podman container carries its container id and name; a
  process in a cgroup laid out as a kubelet lays it out (kubepods/burstable/pod<uid>/<id>)
  carries its pod uid and container id, and, with a kubelet /pods answer (recorded from the
  Kubernetes docs: tests/unit/metadata/testdata/kubelet_pods.json) served on loopback, its
  pod name, namespace and Deployment, which also names the service.
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request
import uuid

import yaml

import harness
from harness import wait_for

REDTAP = harness.find_redtap()
ROOT = os.path.abspath(os.path.join(harness.HERE, "..", ".."))
MANIFEST = os.path.join(ROOT, "deploy", "kubernetes", "redtap.yaml")
UNIT = os.path.join(ROOT, "deploy", "systemd", "redtap.service")
PODS_JSON = os.path.join(ROOT, "tests", "unit", "metadata", "testdata", "kubelet_pods.json")
ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(ROOT, "deploy", "container", "containers.conf"))


def podman(*args, check=True, timeout=120):
    r = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=ENV)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: rc={r.returncode}\n{r.stderr[-2000:]}")
    return r


def manifest_docs():
    with open(MANIFEST) as f:
        return {d["kind"]: d for d in yaml.safe_load_all(f) if d}


def daemonset_container(docs):
    return docs["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def metric_value(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        lbl = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line.split("}")[0]))
        if all(lbl.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else None


def cgroup2_mount():
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, path, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return path
    return None


class Deploy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = manifest_docs()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="redtap-deploy-")
        os.chmod(self.tmp, 0o755)  # nginx workers run unprivileged
        self.procs = harness.Procs()
        self.cleanups = []

    def tearDown(self):
        for c in reversed(self.cleanups):
            try:
                c()
            except Exception as e:  # keep cleaning
                print(f"cleanup: {e}", file=sys.stderr)
        self.procs.stop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def get_200s(self, agent, port, n):
        """n GET /status/200 to the backend on `port`; its n server events, once all are in."""
        for _ in range(n):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status/200", timeout=5) as r:
                self.assertEqual(r.status, 200)

        def server_events():
            evs = [e for e in agent.read_events() if e.get("kind") == "server"
                   and e.get("server.port") == port]
            return evs if len(evs) >= n else None
        evs = wait_for(server_events, 15) or []
        self.assertEqual(len(evs), n)
        return evs

    def assert_nginx_counted(self, nginx_port, agent_port, n):
        """n GET /ok to nginx: the agent on `agent_port` counts exactly n in its metrics."""
        for _ in range(n):
            with urllib.request.urlopen(f"http://127.0.0.1:{nginx_port}/ok", timeout=5) as resp:
                self.assertEqual(resp.status, 200)

        def served():
            text = get(f"http://127.0.0.1:{agent_port}/metrics")[1]
            v = metric_value(text, "http_server_request_duration_seconds_count",
                             service_name="nginx", http_route="/ok")
            return v if v == n else None
        self.assertEqual(wait_for(served, 15), n)

    def manifest_caps(self):
        return daemonset_container(self.docs)["securityContext"]["capabilities"]["add"]

    # ---- systemd ----

    def test_systemd_unit_installs_and_verifies(self):
        # The install steps of the unit's header, into a scratch root.
        root = os.path.join(self.tmp, "root")
        for d in ("usr/local/bin", "etc/redtap", "etc/systemd/system", "usr/lib/systemd"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        shutil.copy2(REDTAP, os.path.join(root, "usr/local/bin/redtap"))
        shutil.copy2(os.path.join(ROOT, "config", "redtap.yaml"), os.path.join(root, "etc/redtap"))
        shutil.copy2(UNIT, os.path.join(root, "etc/systemd/system"))
        # The host's units (targets the unit orders itself after), copied as they are.
        subprocess.run(["cp", "-a", "/usr/lib/systemd/system", os.path.join(root, "usr/lib/systemd/")],
                       check=True)
        r = subprocess.run(["systemd-analyze", "verify", f"--root={root}",
                            os.path.join(root, "etc/systemd/system/redtap.service")],
                           capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        self.assertNotIn("redtap.service", out, "systemd-analyze complains about the unit")
        with open(UNIT) as f:
            unit = f.read()
        # ExecStartPre's check-config passes on the installed config.
        pre = re.search(r"^ExecStartPre=(\S+) (.*)$", unit, re.M)
        self.assertIsNotNone(pre)
        args = pre.group(2).replace("/etc/redtap/", os.path.join(root, "etc/redtap/"))
        r = subprocess.run([REDTAP, *args.split()], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Hardening the issue asks for, and the same capabilities as the DaemonSet.
        for key in ("ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                    "NoNewPrivileges=yes", "Restart=on-failure"):
            self.assertIn(key, unit)
        bounding = re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split()
        self.assertEqual(sorted(bounding), sorted("CAP_" + c for c in self.manifest_caps()))

    # ---- the manifest ----

    def test_manifest_documents_and_capabilities(self):
        for kind in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                     "ConfigMap", "DaemonSet"):
            self.assertIn(kind, self.docs)
        ds = self.docs["DaemonSet"]["spec"]
        pod = ds["template"]["spec"]
        self.assertTrue(pod["hostPID"])
        self.assertTrue(pod["hostNetwork"])
        self.assertEqual(ds["updateStrategy"]["type"], "RollingUpdate")
        c = daemonset_container(self.docs)
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/ready")
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/health")
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        for m in ("/sys/kernel/tracing", "/sys/kernel/btf", "/sys/fs/cgroup"):
            self.assertIn(m, mounts)
        self.assertIn("limits", c["resources"])
        ann = self.docs["DaemonSet"]["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(ann["prometheus.io/scrape"], "true")
        # The scrape port is the one the ConfigMap's config listens on.
        cfg = yaml.safe_load(self.docs["ConfigMap"]["data"]["redtap.yaml"])
        self.assertTrue(cfg["http"]["listen"].endswith(":" + ann["prometheus.io/port"]))
        # Every capability the DaemonSet adds is one doctor checks and names.
        doctor = subprocess.run([REDTAP, "doctor"], capture_output=True, text=True, timeout=120)
        known = set(re.findall(r"CAP_([A-Z_]+)=", doctor.stdout + doctor.stderr))
        self.assertTrue(known, doctor.stdout)
        for cap in self.manifest_caps():
            self.assertIn(cap, known, f"doctor does not know CAP_{cap}")
        # The ConfigMap's config is valid.
        path = os.path.join(self.tmp, "cm.yaml")
        with open(path, "w") as f:
            f.write(self.docs["ConfigMap"]["data"]["redtap.yaml"])
        r = subprocess.run([REDTAP, "check-config", "--config", path], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    # ---- the image, run as the DaemonSet runs it ----

    def build_image(self):
        tag = f"localhost/redtap-test:{os.getpid()}"
        r = subprocess.run([os.path.join(ROOT, "scripts", "image"), "--binary", REDTAP, "--tag", tag],
                           capture_output=True, text=True, timeout=300, env=ENV)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip().splitlines()[-1], tag)
        self.cleanups.append(lambda: podman("rmi", "-f", tag, check=False))
        return tag

    def daemonset_podman_args(self, config_dir):
        """podman run arguments equivalent to the DaemonSet's pod spec."""
        pod = self.docs["DaemonSet"]["spec"]["template"]["spec"]
        c = daemonset_container(self.docs)
        sc = c["securityContext"]
        args = []
        if pod.get("hostPID"):
            args.append("--pid=host")
        if pod.get("hostNetwork"):
            args.append("--network=host")
        if sc.get("privileged"):
            args.append("--privileged")
        caps = sc.get("capabilities", {})
        for d in caps.get("drop", []):
            args.append(f"--cap-drop={d.lower()}")
        for a in caps.get("add", []):
            args.append(f"--cap-add={a}")
        if sc.get("seccompProfile", {}).get("type") == "Unconfined":
            args += ["--security-opt", "seccomp=unconfined"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        for m in c["volumeMounts"]:
            v = volumes[m["name"]]
            if "hostPath" in v:
                src = v["hostPath"]["path"]
            elif "configMap" in v:
                src = config_dir
            else:
                self.fail(f"volume kind of {v} not handled")
            args += ["-v", f"{src}:{m['mountPath']}" + (":ro" if m.get("readOnly") else "")]
        for e in c.get("env", []):
            # Downward API values as the node would give them.
            args += ["-e", f"{e['name']}=" + {"NODE_NAME": "test-node", "NODE_IP": "127.0.0.1"}.get(e["name"], "")]
        mem = c["resources"]["limits"]["memory"]
        args += ["--memory", mem.replace("Mi", "m").replace("Gi", "g")]
        return args, c["args"]

    def test_image_runs_as_the_daemonset(self):
        tag = self.build_image()
        # The ConfigMap's config, listening on a free loopback port instead of 0.0.0.0:9464
        # (the only change: the test must not take a port another agent may hold).
        cfg = yaml.safe_load(self.docs["ConfigMap"]["data"]["redtap.yaml"])
        port = harness.free_port()
        cfg["http"]["listen"] = f"127.0.0.1:{port}"
        config_dir = os.path.join(self.tmp, "config")
        os.makedirs(config_dir)
        with open(os.path.join(config_dir, "redtap.yaml"), "w") as f:
            yaml.safe_dump(cfg, f)
        args, cmd = self.daemonset_podman_args(config_dir)

        r = podman("run", "--rm", *args, tag, "doctor", check=False, timeout=180)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("capture: can run on this host", r.stdout)

        backend = harness.free_port()  # nginx's upstream: unused here
        ng = harness.Nginx(self.tmp, self.procs, backend)
        ng.start()
        name = f"redtap-test-ds-{os.getpid()}"
        self.cleanups.append(lambda: podman("rm", "-f", "-t", "5", name, check=False))
        podman("run", "-d", "--name", name, *args, tag, *cmd)
        c = daemonset_container(self.docs)
        ready = c["readinessProbe"]["httpGet"]["path"]
        live = c["livenessProbe"]["httpGet"]["path"]

        def is_ready():
            try:
                return get(f"http://127.0.0.1:{port}{ready}", 1)[0] == 200
            except Exception:
                return False
        if not wait_for(is_ready, 60):
            self.fail("agent in the container not ready: " + podman("logs", name, check=False).stderr[-3000:])
        self.assertEqual(get(f"http://127.0.0.1:{port}{live}")[0], 200)
        pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip())
        held = harness.bpf_ids_held(pid)  # the container's agent is a host process (hostPID)
        self.assertTrue(held["prog"] and held["link"], held)

        n = 12
        self.assert_nginx_counted(ng.port, port, n)
        # Events go to the container's stdout (events.path: "-"), as a log shipper reads them.
        def events():
            out = podman("logs", name, check=False).stdout
            evs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
            evs = [e for e in evs if e.get("type") == "http" and e.get("kind") == "server"
                   and e.get("server.port") == ng.port and e.get("url.path") == "/ok"]
            return evs if len(evs) >= n else None
        evs = wait_for(events, 10) or []
        self.assertEqual(len(evs), n)
        self.assertTrue(all(e.get("service.name") == "nginx" for e in evs))
        self.assertTrue(all(e.get("http.response.status_code") == 200 for e in evs))

        # SIGTERM (what Kubernetes sends) detaches everything; the agent exits 0.
        podman("stop", "-t", "30", name, timeout=60)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        self.assertEqual(code, "0", podman("logs", name, check=False).stderr[-2000:])
        self.assertEqual(held["prog"] & harness.bpf_live_ids("prog"), set(), "programs left behind")
        self.assertEqual(held["link"] & harness.bpf_live_ids("link"), set(), "links left behind")

    def test_least_privilege_per_feature(self):
        """Each capability dropped in turn: doctor names what is missing, and the agent runs
        with what the rest allows (plaintext capture without CAP_SYS_ADMIN: no TLS)."""
        tag = self.build_image()
        config_dir = os.path.join(self.tmp, "config")
        os.makedirs(config_dir)
        port = harness.free_port()
        with open(os.path.join(config_dir, "redtap.yaml"), "w") as f:
            f.write(f'http:\n  listen: "127.0.0.1:{port}"\nevents:\n  path: "-"\n')
        args, cmd = self.daemonset_podman_args(config_dir)
        caps = self.manifest_caps()

        def without(*dropped, seccomp=True):
            a = [x for x in args if x not in {f"--cap-add={c}" for c in dropped}]
            if not seccomp:
                i = a.index("seccomp=unconfined")
                a = a[:i - 1] + a[i + 1:]
            return a

        r = podman("run", "--rm", *without("SYS_ADMIN"), tag, "doctor", check=False, timeout=180)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)  # capture still works
        self.assertRegex(r.stdout, r"no   hook uprobe .*missing CAP_SYS_ADMIN")
        # CAP_SYS_ADMIN covers CAP_PERFMON: both dropped.
        r = podman("run", "--rm", *without("PERFMON", "SYS_ADMIN"), tag, "doctor", check=False,
                   timeout=180)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"FAIL hook tracepoint \(syscalls\) .*missing CAP_PERFMON")
        # The runtime's default seccomp profile without CAP_SYS_ADMIN: named as the cause.
        r = podman("run", "--rm", *without("SYS_ADMIN", seccomp=False), tag, "doctor",
                   check=False, timeout=180)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"FAIL hook tracepoint \(syscalls\) .*seccomp")
        self.assertIn("SYS_ADMIN", caps)

        # Without CAP_SYS_ADMIN the agent runs: plaintext HTTP is captured, TLS is not.
        ng = harness.Nginx(self.tmp, self.procs, harness.free_port())
        ng.start()
        name = f"redtap-test-nosysadmin-{os.getpid()}"
        self.cleanups.append(lambda: podman("rm", "-f", "-t", "5", name, check=False))
        podman("run", "-d", "--name", name, *without("SYS_ADMIN"), tag, "run", "--config",
               "/etc/redtap/redtap.yaml")

        def is_ready():
            try:
                return get(f"http://127.0.0.1:{port}/ready", 1)[0] == 200
            except Exception:
                return False
        if not wait_for(is_ready, 60):
            self.fail("not ready: " + podman("logs", name, check=False).stderr[-3000:])
        n = 6
        self.assert_nginx_counted(ng.port, port, n)
        self.assertIn("cannot attach OpenSSL probes", podman("logs", name, check=False).stderr)
        podman("stop", "-t", "30", name, timeout=60)

    # ---- container and pod metadata ----

    def host_usr_image(self):
        """An image of nothing but merged-/usr symlinks: run with the host's /usr mounted
        read-only, it runs the host's python3 in a container of its own."""
        ctx = os.path.join(self.tmp, "img")
        os.makedirs(os.path.join(ctx, "rootfs", "usr"))
        os.makedirs(os.path.join(ctx, "rootfs", "tmp"))
        for link in ("bin", "lib", "lib64", "sbin"):
            os.symlink(f"usr/{link}", os.path.join(ctx, "rootfs", link))
        with open(os.path.join(ctx, "Containerfile"), "w") as f:
            f.write("FROM scratch\nCOPY rootfs/ /\n")
        tag = f"localhost/redtap-test-usr:{os.getpid()}"
        podman("build", "--quiet", "-t", tag, ctx)
        self.cleanups.append(lambda: podman("rmi", "-f", tag, check=False))
        return tag

    def test_process_in_a_podman_container_carries_its_id_and_name(self):
        image = self.host_usr_image()
        agent = harness.Agent(REDTAP, self.tmp, self.procs)
        agent.start()
        port = harness.free_port()
        name = f"redtap-test-shop-{os.getpid()}"
        self.cleanups.append(lambda: podman("rm", "-f", "-t", "2", name, check=False))
        cid = podman("run", "-d", "--name", name, "--network=host", "-v", "/usr:/usr:ro",
                     "-v", f"{harness.HERE}:/t:ro", image,
                     "/usr/bin/python3", "/t/backend.py", str(port)).stdout.strip()
        self.assertRegex(cid, r"^[0-9a-f]{64}$")
        harness.wait_port(port)
        n = 7

        evs = self.get_200s(agent, port, n)
        for e in evs:
            self.assertEqual(e.get("container.id"), cid)
            self.assertEqual(e.get("container.name"), name)
            self.assertEqual(e.get("service.name"), name)  # the container's name, not "python3"
            self.assertNotIn("k8s.pod.uid", e)
        # The client (urllib, on the host) is in no container.
        clients = [e for e in agent.read_events() if e.get("kind") == "client"
                   and e.get("server.port") == port]
        self.assertEqual(len(clients), n)
        self.assertTrue(all("container.id" not in e for e in clients))
        text = get(f"http://127.0.0.1:{agent.http_port}/metrics")[1]
        self.assertEqual(metric_value(text, "http_server_request_duration_seconds_count",
                                      service_name=name, container_id=cid,
                                      container_name=name), n)

    def test_kubelet_cgroup_layout_and_pod_list(self):
        mount = cgroup2_mount()
        self.assertIsNotNone(mount, "no cgroup2 hierarchy mounted")
        pod_uid = str(uuid.uuid4())
        cid = secrets.token_hex(32)
        pod_dir = os.path.join(mount, "kubepods", "burstable", f"pod{pod_uid}")
        ctr_dir = os.path.join(pod_dir, cid)
        os.makedirs(ctr_dir)

        def remove_cgroups():
            for d in (ctr_dir, pod_dir, os.path.dirname(pod_dir), os.path.join(mount, "kubepods")):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        self.cleanups.append(remove_cgroups)

        # The recorded kubelet answer, its Deployment pod given this pod's uid and container id.
        with open(PODS_JSON) as f:
            pods = json.load(f)
        pod = next(p for p in pods["items"] if p["metadata"]["name"].startswith("nginx-deployment-"))
        pod["metadata"]["uid"] = pod_uid
        pod["status"]["containerStatuses"][0]["containerID"] = "containerd://" + cid
        pods_dir = os.path.join(self.tmp, "kubelet")
        os.makedirs(pods_dir)
        with open(os.path.join(pods_dir, "pods"), "w") as f:
            json.dump(pods, f)
        kubelet = harness.free_port()
        self.procs.start([sys.executable, "-m", "http.server", str(kubelet), "--bind", "127.0.0.1",
                          "--directory", pods_dir], stderr=subprocess.DEVNULL)
        harness.wait_port(kubelet)

        # The "pod": backend.py moved into the container's cgroup as a kubelet would place it.
        be = harness.free_port()
        proc = self.procs.start([sys.executable, os.path.join(harness.HERE, "backend.py"), str(be)])
        harness.wait_port(be)
        with open(os.path.join(ctr_dir, "cgroup.procs"), "w") as f:
            f.write(str(proc.pid))

        def leave_cgroup():
            if proc.poll() is None:
                with open(os.path.join(mount, "cgroup.procs"), "w") as f:
                    f.write(str(proc.pid))
        self.cleanups.append(leave_cgroup)
        with open(f"/proc/{proc.pid}/cgroup") as f:
            self.assertIn(f"/kubepods/burstable/pod{pod_uid}/{cid}", f.read())

        config = os.path.join(self.tmp, "k8s.yaml")
        with open(config, "w") as f:
            f.write("kubernetes:\n  metadata: true\n"
                    f"  pods_url: http://127.0.0.1:{kubelet}/pods\n  refresh_interval: 1s\n")
        agent = harness.Agent(REDTAP, self.tmp, self.procs, ["--config", config])
        agent.start()

        def pod_list_read():
            text = get(f"http://127.0.0.1:{agent.http_port}/metrics")[1]
            ok = metric_value(text, "redtap_agent_kubernetes_refreshes_total", outcome="ok")
            return ok is not None and ok >= 1 and \
                metric_value(text, "redtap_agent_kubernetes_pods") == len(pods["items"])
        self.assertTrue(wait_for(pod_list_read, 15), agent.read_log()[-2000:])

        n = 9
        evs = self.get_200s(agent, be, n)
        for e in evs:
            self.assertEqual(e.get("container.id"), cid)
            self.assertEqual(e.get("k8s.pod.uid"), pod_uid)
            self.assertEqual(e.get("k8s.pod.name"), pod["metadata"]["name"])
            self.assertEqual(e.get("k8s.namespace.name"), pod["metadata"]["namespace"])
            self.assertEqual(e.get("k8s.deployment.name"), "nginx-deployment")
            self.assertEqual(e.get("container.name"), "nginx")
            self.assertEqual(e.get("service.name"), "nginx-deployment")
        text = get(f"http://127.0.0.1:{agent.http_port}/metrics")[1]
        self.assertEqual(metric_value(
            text, "http_server_request_duration_seconds_count", service_name="nginx-deployment",
            container_id=cid, k8s_pod_uid=pod_uid, k8s_pod_name=pod["metadata"]["name"],
            k8s_namespace_name="default", k8s_deployment_name="nginx-deployment"), n)
        # The TCP sampler names the listener the same way (the pod list is read before it starts).
        def tcp_named():
            t = get(f"http://127.0.0.1:{agent.http_port}/metrics")[1]
            return metric_value(t, "redtap_tcp_listen_backlog_max",
                                service_name="nginx-deployment", server_port=str(be)) is not None
        self.assertTrue(wait_for(tcp_named, 15), "no TCP listener series named nginx-deployment")


if __name__ == "__main__":
    harness.require_bpf()
    for tool in ("podman", "runc", "systemd-analyze"):
        if shutil.which(tool) is None:
            print(f"FAIL: {tool} is missing (scripts/setup installs it)", file=sys.stderr)
            sys.exit(1)
    unittest.main(verbosity=2)
