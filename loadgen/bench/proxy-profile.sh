#!/usr/bin/env bash
# Where the app proxy's CPU goes, per build: each proxy binary given is profiled in turn with `perf record`
# (no call graphs: the share of each symbol is what compares builds) under the load proxy-cpu-split.sh
# uses — a Switchboard server as the app (the ticker at 10 events/s), 1,000 WebSocket clients (loadgen)
# through the proxy — and the symbols that a relayed message touches are printed with their share of
# the samples. Alternating CPU rounds move ±15 % on a shared two-core machine; two profiles under the
# same load say which symbol a change moved. For call graphs, build with
# RUSTFLAGS="-C force-frame-pointers=yes" and add -g to the perf line.
#
#   loadgen/bench/proxy-profile.sh old-build/switchboard-server target/release/switchboard-server
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v perf >/dev/null || { echo "perf is needed (Debian: linux-perf)" >&2; exit 1; }
PORT=${PORT:-8900}
SECONDS_PROFILED=${SECONDS_PROFILED:-10}
OUT=${OUT:-$PWD/target/bench-proxy-profile}
SYMBOLS=${SYMBOLS:-'Track::message|Gate::woken|TryJoin|ReadSide|Figures::with|json_signature|transition_to_notified|poll_readiness|TrackedFuture'}
rm -rf "$OUT"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"
cargo build --release --locked -q -p switchboard-loadgen -p switchboard-server
[ $# -gt 0 ] || set -- ./target/release/switchboard-server
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
./target/release/switchboard-server --addr "127.0.0.1:$PORT" --traffic steady --load-ms 0 --ticker-ms 100 \
  --max-connections-per-client 0 >"$OUT/app.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
n=0
for binary in "$@"; do
  n=$((n + 1))
  dashboard=$((PORT + 10 + 2 * n)) proxy=$((PORT + 11 + 2 * n))
  "$binary" --addr "127.0.0.1:$dashboard" --load-ms 0 --ticker-ms 0 --upstream "http://127.0.0.1:$PORT" \
    --proxy-addr "127.0.0.1:$proxy" --max-connections-per-client 0 >"$OUT/proxy-$n.log" 2>&1 &
  proxy_pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$proxy/healthz" >/dev/null && break; sleep 0.1; done
  ./target/release/loadgen --url "http://127.0.0.1:$proxy" --lane ws --clients 1000 --ramp 1000 \
    --duration $((SECONDS_PROFILED + 8)) --quiet --json "$OUT/run-$n.json" >/dev/null &
  loadgen=$!
  sleep 5
  perf record -F 1999 -p "$proxy_pid" -o "$OUT/perf-$n.data" -- sleep "$SECONDS_PROFILED" 2>/dev/null
  wait "$loadgen" || true
  kill "$proxy_pid"
  wait "$proxy_pid" 2>/dev/null || true
  echo "== $n: $binary"
  perf report -i "$OUT/perf-$n.data" --no-children --sort dso --stdio 2>/dev/null | grep '%' | grep -v '^#' | head -3
  perf report -i "$OUT/perf-$n.data" --no-children --sort symbol --stdio 2>/dev/null | grep -v '^#' \
    | grep -E "$SYMBOLS" | sed 's/  */ /g' | cut -c1-120
done
