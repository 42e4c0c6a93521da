#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Throughput of a Go crypto/tls HTTP/1.1 server (tests/integration/go/gotls.go, GOMAXPROCS=1,
# pinned to CPU 1) under `ab -k` (pinned to CPU 0) without the agent and with it, side by side
# in each round; then the cost per call of each Go TLS program (kernel.bpf_stats_enabled:
# run_time_ns / run_cnt, the program only: the uprobe's trap is not in it).
#   tests/bench/go_tls_overhead.sh [--redtap BIN] [--gotls BIN] [--rounds N] [--requests N]
# Root; loopback only.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REDTAP="$ROOT/build/redtap"; GOTLS="$ROOT/build/tests/gotls"; ROUNDS=5; N=20000
while [ $# -gt 0 ]; do
  case "$1" in
    --redtap) REDTAP=$2; shift 2 ;;
    --gotls) GOTLS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --requests) N=$2; shift 2 ;;
    *) echo "usage: $0 [--redtap BIN] [--gotls BIN] [--rounds N] [--requests N]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (BPF)" >&2; exit 1; }
[ -x "$GOTLS" ] || { echo "$0: $GOTLS missing (built by CMake with golang-go)" >&2; exit 1; }
work=$(mktemp -d /tmp/redtap-gotlsbench.XXXXXX)
port=18643; http=19482
pids=()
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  sysctl -qw kernel.bpf_stats_enabled="$stats_before" || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 1 -subj /CN=localhost 2>/dev/null
GOMAXPROCS=1 taskset -c 1 "$GOTLS" server "127.0.0.1:$port" "$work/cert.pem" "$work/key.pem" \
  >/dev/null 2>&1 & pids+=($!)
until curl -sfk -o /dev/null "https://127.0.0.1:$port/"; do sleep 0.05; done
rps() {
  taskset -c 0 ab -q -n "$N" -c 16 -k "https://127.0.0.1:$port/" 2>/dev/null |
    awk '/Requests per second/ {print $4}'
}
start_agent() {
  "$REDTAP" run --http "127.0.0.1:$http" 2>"$work/agent.log" & agent=$!
  until curl -sf "http://127.0.0.1:$http/ready" >/dev/null; do sleep 0.05; done
}
stop_agent() { kill -TERM "$agent"; wait "$agent" || true; }
base=(); with=(); ratios=()
for r in $(seq 1 "$ROUNDS"); do
  b=$(rps)
  start_agent; w=$(rps); stop_agent
  base+=("$b"); with+=("$w")
  ratio=$(awk -v a="$w" -v b="$b" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$ratio")
  echo "round $r: without ${b} req/s, with ${w} req/s, ratio ${ratio}"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median ratio $(median "${ratios[@]}") (min $(printf '%s\n' "${ratios[@]}" | sort -g | head -1))"
# Per call: the programs' own time, one more run with the kernel's counters on.
sysctl -qw kernel.bpf_stats_enabled=1
start_agent; rps >/dev/null
bpftool prog show 2>/dev/null | awk '
  / name (go_tls_[a-z_]+|read_exit|write_exit) / {
    for (i = 1; i <= NF; i++) {
      if ($i == "name") name = $(i + 1)
      if ($i == "run_time_ns") t = $(i + 1)
      if ($i == "run_cnt") c = $(i + 1)
    }
    if (c > 0) printf "%-26s %9d runs %7.0f ns per run\n", name, c, t / c
    t = 0; c = 0
  }'
stop_agent
