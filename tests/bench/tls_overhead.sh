#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Throughput of a TLS server under `ab -k` without the agent, with it (its probes on emulated
# instructions where the disassembly allows: tls.emulated_sites, the default), and with the
# older placement (tls.emulated_sites: false: OpenSSL's entry + uretprobe, Go's Read on its
# single-stepped `ret`s), side by side in each round; prints per-round req/s and the median
# ratios, then each capture program's own cost per run (kernel.bpf_stats_enabled, one more run
# with the default placement; the uprobe's trap is not in it).
#   tests/bench/tls_overhead.sh [--server nginx|go] [--redtap BIN] [--gotls BIN]
#                               [--rounds N] [--requests N]
# --server nginx (default): nginx with OpenSSL, 1 worker; ab's OpenSSL is probed too.
# --server go: tests/integration/go/gotls.go (net/http over crypto/tls), GOMAXPROCS=1.
# Root; loopback only; the server pinned to CPU 1, ab to CPU 0 on a 2-CPU box.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REDTAP="$ROOT/build/redtap"; GOTLS="$ROOT/build/tests/gotls"; SERVER=nginx; ROUNDS=5; N=20000
usage() {
  echo "usage: $0 [--server nginx|go] [--redtap BIN] [--gotls BIN] [--rounds N] [--requests N]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --server) SERVER=$2; shift 2 ;;
    --redtap) REDTAP=$2; shift 2 ;;
    --gotls) GOTLS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --requests) N=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ "$SERVER" = nginx ] || [ "$SERVER" = go ] || usage
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (BPF)" >&2; exit 1; }
if [ "$SERVER" = go ] && [ ! -x "$GOTLS" ]; then
  echo "$0: $GOTLS missing (built by CMake with golang-go)" >&2; exit 1
fi
work=$(mktemp -d /tmp/redtap-tlsbench.XXXXXX)
port=18543; http=19481
pids=()
agent=
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  sysctl -qw kernel.bpf_stats_enabled="$stats_before" || true
  [ -n "$agent" ] && kill -TERM "$agent" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 1 -subj /CN=localhost 2>/dev/null
chmod 755 "$work"; chmod 644 "$work/key.pem"
if [ "$SERVER" = nginx ]; then
  cat > "$work/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity 10;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
  access_log off; keepalive_requests 1000000;
  client_body_temp_path $work/b; proxy_temp_path $work/p; fastcgi_temp_path $work/f;
  uwsgi_temp_path $work/u; scgi_temp_path $work/s;
  server { listen 127.0.0.1:$port ssl; ssl_certificate $work/cert.pem;
           ssl_certificate_key $work/key.pem; location / { return 200 "ok\n"; } }
}
CONF
  nginx -c "$work/nginx.conf" -e "$work/error.log" & pids+=($!)
else
  GOMAXPROCS=1 taskset -c 1 "$GOTLS" server "127.0.0.1:$port" "$work/cert.pem" \
    "$work/key.pem" >/dev/null 2>&1 & pids+=($!)
fi
for _ in $(seq 100); do curl -sfk -o /dev/null "https://127.0.0.1:$port/" && break; sleep 0.05; done
rps() {
  taskset -c 0 ab -q -n "$N" -c 16 -k "https://127.0.0.1:$port/" 2>/dev/null |
    awk '/Requests per second/ {print $4}'
}
cat > "$work/stepped.yaml" <<YAML
tls:
  emulated_sites: false
YAML
start_agent() {  # start_agent [run args...]; fails when the agent exits before it is ready
  "$REDTAP" run --http "127.0.0.1:$http" "$@" 2>"$work/agent.log" & agent=$!
  until curl -sf "http://127.0.0.1:$http/ready" >/dev/null; do
    if ! kill -0 "$agent" 2>/dev/null; then
      echo "$0: the agent exited before it was ready:" >&2; tail -5 "$work/agent.log" >&2
      agent=; exit 1
    fi
    sleep 0.05
  done
}
stop_agent() { kill -TERM "$agent"; wait "$agent" || true; agent=; }
with_agent() { start_agent "$@"; rps; stop_agent; }
base=(); with=(); ratios=(); old=(); oratios=()
for r in $(seq 1 "$ROUNDS"); do
  a=$(rps)
  b=$(with_agent)
  c=$(with_agent --config "$work/stepped.yaml")
  ratio=$(echo "scale=3; $b / $a" | bc)
  oratio=$(echo "scale=3; $c / $a" | bc)
  base+=("$a"); with+=("$b"); ratios+=("$ratio"); old+=("$c"); oratios+=("$oratio")
  echo "round $r: without $a req/s, emulated sites $b (ratio $ratio), emulated_sites false $c (ratio $oratio)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
range() { echo "min $(printf '%s\n' "$@" | sort -n | head -1), max $(printf '%s\n' "$@" | sort -n | tail -1)"; }
echo "TLS $SERVER, ab -n $N -c 16 -k: median without $(median "${base[@]}") req/s"
echo "  emulated sites (default): $(median "${with[@]}") req/s, median ratio $(median "${ratios[@]}") ($(range "${ratios[@]}"))"
echo "  tls.emulated_sites false: $(median "${old[@]}") req/s, median ratio $(median "${oratios[@]}") ($(range "${oratios[@]}"))"
# Per run of each program: one more run with the kernel's counters on (default placement).
sysctl -qw kernel.bpf_stats_enabled=1
start_agent; rps >/dev/null
echo "programs, per run (default placement; the trap not included):"
bpftool prog show 2>/dev/null | awk '
  / name (go_tls_[a-z_]+|ssl_[a-z_]+|read_exit|write_exit|read_enter|write_enter) / {
    for (i = 1; i <= NF; i++) {
      if ($i == "name") name = $(i + 1)
      if ($i == "run_time_ns") t = $(i + 1)
      if ($i == "run_cnt") c = $(i + 1)
    }
    if (c > 0) printf "  %-26s %9d runs %7.0f ns per run\n", name, c, t / c
    t = 0; c = 0
  }'
stop_agent
