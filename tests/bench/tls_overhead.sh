#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Throughput of a TLS nginx under `ab -k` without the agent, with it (its OpenSSL uprobes on
# emulated instructions where the disassembly allows: tls.emulated_sites, the default), and
# with entry + uretprobe everywhere (tls.emulated_sites: false), side by side in each round;
# prints per-round req/s and the median ratios.
#   tests/bench/tls_overhead.sh [--redtap BIN] [--rounds N] [--requests N]
# Root; loopback only; nginx pinned to CPU 1, ab to CPU 0 on a 2-CPU box.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REDTAP="$ROOT/build/redtap"; ROUNDS=5; N=20000
while [ $# -gt 0 ]; do
  case "$1" in
    --redtap) REDTAP=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --requests) N=$2; shift 2 ;;
    *) echo "usage: $0 [--redtap BIN] [--rounds N] [--requests N]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (BPF)" >&2; exit 1; }
work=$(mktemp -d /tmp/redtap-tlsbench.XXXXXX)
port=18543; http=19481
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 1 -subj /CN=localhost 2>/dev/null
chmod 755 "$work"; chmod 644 "$work/key.pem"
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
sleep 0.5
rps() {
  taskset -c 0 ab -q -n "$N" -c 16 -k "https://127.0.0.1:$port/" 2>/dev/null |
    awk '/Requests per second/ {print $4}'
}
cat > "$work/uretprobes.yaml" <<YAML
tls:
  emulated_sites: false
YAML
with_agent() {  # with_agent [run args...]: req/s with the agent running
  "$REDTAP" run --http "127.0.0.1:$http" "$@" 2>"$work/agent.log" & agent=$!
  until curl -sf "http://127.0.0.1:$http/ready" >/dev/null; do sleep 0.05; done
  rps
  kill -TERM "$agent"; wait "$agent" || true
}
base=(); with=(); ratios=(); uret=(); uratios=()
for r in $(seq 1 "$ROUNDS"); do
  a=$(rps)
  b=$(with_agent)
  c=$(with_agent --config "$work/uretprobes.yaml")
  ratio=$(echo "scale=3; $b / $a" | bc)
  uratio=$(echo "scale=3; $c / $a" | bc)
  base+=("$a"); with+=("$b"); ratios+=("$ratio"); uret+=("$c"); uratios+=("$uratio")
  echo "round $r: without $a req/s, emulated sites $b (ratio $ratio), entry+uretprobe $c (ratio $uratio)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
range() { echo "min $(printf '%s\n' "$@" | sort -n | head -1), max $(printf '%s\n' "$@" | sort -n | tail -1)"; }
echo "TLS nginx, ab -n $N -c 16 -k: median without $(median "${base[@]}") req/s"
echo "  emulated sites (default): $(median "${with[@]}") req/s, median ratio $(median "${ratios[@]}") ($(range "${ratios[@]}"))"
echo "  entry + uretprobe:        $(median "${uret[@]}") req/s, median ratio $(median "${uratios[@]}") ($(range "${uratios[@]}"))"
