#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sampling cost of the TCP monitor with many open connections (issue #4: < 1 % of one core
# with 10,000 connections). Opens N loopback connections (2N sockets: the client ends in
# redtap_saturation_bench, the server ends in a child), lets the monitor sample for S seconds
# and prints the sampler thread's CPU time per second of sampling. Root (loads BPF).
#
#   tests/bench/saturation_bench.sh [build-dir] [connections] [seconds]
set -euo pipefail
build=${1:-$(dirname "$0")/../../build}
n=${2:-10000}
secs=${3:-30}
tool="$build/tests/bench/redtap_saturation_bench"
if [ ! -x "$tool" ]; then
  echo "saturation_bench: $tool not built" \
       "(cmake --build $build --target redtap_saturation_bench)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "saturation_bench: needs root (loads BPF programs)" >&2
  exit 1
fi
# Each process holds n sockets: RLIMIT_NOFILE must allow that.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "saturation_bench: $n connections, ${secs}s of sampling"
exec "$tool" --connections "$n" --seconds "$secs"
