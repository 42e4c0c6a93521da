#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# HTTP transactions per second: `redtap pcap FILE` vs `tshark -r FILE -Y http.response`, on a
# large loopback capture of nginx under wrk (generated when missing; kept under /tmp, never
# committed). Prints the figures of redtap with the summary table and with events, tshark's,
# and both ratios.
#
#   tests/bench/pcap_vs_tshark.sh [--small] [--redtap BIN] [--pcap FILE] [--mb N] [--no-tshark]
#
# The default capture (/tmp/redtap-bench/http-lo.pcap, 120 MB) mixes small answers, 1.5 KB
# pages and 404s. --small makes and uses /tmp/redtap-bench/http-small.pcap instead (50 MB):
# nginx answering `return 200 "ok"` (a 2-byte body) to wrk -c16 over keep-alive, the
# smallest transactions there are, where the per-transaction costs dominate.
# BIN defaults to build/redtap (its `pcap` subcommand).
# Generating the capture needs root (tcpdump on lo), nginx and wrk.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PCAP=""
MB=""
SMALL=0
REDTAP=""
RUN_TSHARK=1
while [ $# -gt 0 ]; do
  case "$1" in
    --small) SMALL=1; shift ;;
    --redtap) REDTAP=$2; shift 2 ;;
    --pcap) PCAP=$2; shift 2 ;;
    --mb) MB=$2; shift 2 ;;
    --no-tshark) RUN_TSHARK=0; shift ;;
    *) echo "usage: $0 [--small] [--redtap BIN] [--pcap FILE] [--mb N] [--no-tshark]" >&2
       exit 2 ;;
  esac
done
if [ "$SMALL" = 1 ]; then
  PCAP=${PCAP:-/tmp/redtap-bench/http-small.pcap}
  MB=${MB:-50}
else
  PCAP=${PCAP:-/tmp/redtap-bench/http-lo.pcap}
  MB=${MB:-120}
fi
if [ -z "$REDTAP" ]; then
  if [ -x "$ROOT/build/redtap" ] && "$ROOT/build/redtap" pcap --help >/dev/null 2>&1; then
    REDTAP="$ROOT/build/redtap"
  fi
fi
[ -n "$REDTAP" ] || { echo "no redtap binary with a pcap subcommand found" >&2; exit 1; }

# Benchmark-only tools (not needed by the tests, so not in scripts/setup).
need=()
for p in wrk bc tcpdump curl; do command -v "$p" >/dev/null 2>&1 || need+=("$p"); done
[ "$RUN_TSHARK" = 1 ] && ! command -v tshark >/dev/null 2>&1 && need+=(tshark)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

generate() {
  local dir; dir=$(dirname "$PCAP"); mkdir -p "$dir"
  local work; work=$(mktemp -d /tmp/redtap-bench-nginx.XXXXXX)
  # nginx started by root runs its worker as nobody: the files must be readable by it (a
  # mktemp directory is 0700, which makes every file a 403).
  chmod 755 "$work"
  local port=18093
  mkdir -p "$work/www"
  printf 'ok' > "$work/www/ok"
  head -c 1500 /dev/zero | tr '\0' 'a' > "$work/www/1k.html"
  cat > "$work/nginx.conf" <<CONF
daemon off; worker_processes 1; pid $work/nginx.pid; error_log $work/error.log warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $work/b; proxy_temp_path $work/p; fastcgi_temp_path $work/f;
  uwsgi_temp_path $work/u; scgi_temp_path $work/s;
  server { listen 127.0.0.1:$port; root $work/www;
    location = /ok { return 200 "ok"; }
    location = /api/items { return 201 "created"; }
    location = /missing { return 404; } } }
CONF
  nginx -c "$work/nginx.conf" -p "$work" & local ngx=$!
  sleep 0.5
  # The answers must be what we think they are before anything is measured.
  local u code
  for u in ok 1k.html; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/$u" || true)
    if [ "$code" != 200 ]; then
      echo "nginx answers $code to /$u (expected 200)" >&2
      kill -TERM "$ngx"; wait "$ngx" || true
      rm -rf "$work"
      exit 1
    fi
  done
  tcpdump -i lo -s 0 -B 262144 -U -w "$PCAP" "tcp port $port" 2>/dev/null & local td=$!
  sleep 1
  while [ "$(stat -c %s "$PCAP" 2>/dev/null || echo 0)" -lt $((MB * 1024 * 1024)) ]; do
    if [ "$SMALL" = 1 ]; then
      # Only 2-byte answers, 16 keep-alive connections.
      wrk -t1 -c16 -d2s "http://127.0.0.1:$port/ok" >/dev/null
    else
      # Mixed traffic: small responses (the /ok of PERF-FLOOR §4.6), 1.5 KB pages, 404s.
      wrk -t1 -c32 -d3s "http://127.0.0.1:$port/ok" >/dev/null
      wrk -t1 -c8 -d1s "http://127.0.0.1:$port/1k.html" >/dev/null
      wrk -t1 -c4 -d1s "http://127.0.0.1:$port/missing" >/dev/null
    fi
  done
  sleep 1
  kill -INT "$td"; wait "$td" || true
  kill -TERM "$ngx"; wait "$ngx" || true
  rm -rf "$work"
}

if [ ! -s "$PCAP" ]; then
  echo "generating $PCAP (~${MB} MB of loopback HTTP$([ "$SMALL" = 1 ] && echo ', 2-byte answers'))..." >&2
  generate
fi
size_mb=$(( $(stat -c %s "$PCAP") / 1024 / 1024 ))
echo "capture: $PCAP (${size_mb} MB)"

now() { date +%s.%N; }
# Best of 3 wall-clock runs of a command; sets BEST (seconds).
best_of_3() {
  BEST=""
  for _ in 1 2 3; do
    local t0 t1 d
    t0=$(now)
    "$@" >/dev/null 2>&1
    t1=$(now)
    d=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$BEST" ] || [ "$(echo "$d < $BEST" | bc -l)" = 1 ]; then BEST=$d; fi
  done
}
# Transactions in the capture, as redtap counts them (the statistics line on stderr).
txns=$("$REDTAP" pcap "$PCAP" 2>&1 >/dev/null | sed -n 's/.* \([0-9][0-9]*\) transactions (.*/\1/p' | tail -1)
[ -n "$txns" ] || { echo "could not read the transaction count from $REDTAP" >&2; exit 1; }

# (a) decode + per-endpoint summary table (what metrics and `--summary` need).
best_of_3 "$REDTAP" pcap "$PCAP" --summary -q
redtap_rate=$(echo "$txns / $BEST" | bc -l)
printf 'redtap pcap --summary:      %d transactions in %.3f s = %.0f transactions/s\n' \
  "$txns" "$BEST" "$redtap_rate"
# (b) plus one NDJSON event per transaction (userspace/export formatting), to /dev/null.
best_of_3 "$REDTAP" pcap "$PCAP" --events /dev/null -q
events_rate=$(echo "$txns / $BEST" | bc -l)
printf 'redtap pcap --events FILE:  %d transactions in %.3f s = %.0f transactions/s\n' \
  "$txns" "$BEST" "$events_rate"

if [ "$RUN_TSHARK" = 1 ]; then
  t0=$(now)
  tt=$(tshark -r "$PCAP" -Y http.response -T fields -e http.response.code -e http.time 2>/dev/null | wc -l)
  t1=$(now)
  td=$(echo "$t1 - $t0" | bc -l)
  tshark_rate=$(echo "$tt / $td" | bc -l)
  printf 'tshark -Y http.response:    %d responses in %.3f s = %.0f transactions/s\n' "$tt" "$td" "$tshark_rate"
  printf 'ratio --summary / tshark:   %.1fx (goal >= 30x)\n' "$(echo "$redtap_rate / $tshark_rate" | bc -l)"
  printf 'ratio --events / tshark:    %.1fx (goal >= 30x)\n' "$(echo "$events_rate / $tshark_rate" | bc -l)"
fi
