#!/usr/bin/env bash
# HTTP scales through caches, phone calls do not — in numbers. Starts `./dev cluster` (nginx with the
# shipped configuration in front of two instances on Redis, ticker at 10 events/s), runs 1,000 clients
# of each lane through nginx, and compares the requests the clients made with the requests the instances
# behind it answered (each instance's own /api/stats, read directly, before and after).
#
#   loadgen/bench/through-nginx.sh            # 1,000 clients per lane, 20 s each
#   CLIENTS=500 DURATION=10 loadgen/bench/through-nginx.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=${CLIENTS:-1000}
DURATION=${DURATION:-20}
PORT=${PORT:-8100}
OUT=${OUT:-$PWD/target/bench-nginx}
mkdir -p "$OUT"
cargo build --release --locked -q -p switchboard-loadgen

setsid ./dev cluster --port "$PORT" -- --traffic steady --load-ms 0 --ticker-ms 100 \
  --max-connections-per-client 0 >"$OUT/cluster.log" 2>&1 &
CLUSTER=$!
trap 'kill -INT -- -$CLUSTER 2>/dev/null || true; wait $CLUSTER 2>/dev/null || true' EXIT
for _ in $(seq 1 1200); do
  grep -q "Switchboard cluster is running" "$OUT/cluster.log" && break
  kill -0 "$CLUSTER" 2>/dev/null || { tail -20 "$OUT/cluster.log" >&2; exit 1; }
  sleep 0.5
done

# Requests the instances answered on a lane, both together.
origin() {
  local total=0 count
  for instance in $((PORT + 1)) $((PORT + 2)); do
    count=$(curl -sf "http://127.0.0.1:$instance/api/stats" | jq ".lanes.$1.requests")
    total=$((total + count))
  done
  echo "$total"
}

echo "$CLIENTS clients per lane through nginx on :$PORT, 10 events/s, $DURATION s each; reports in $OUT"
printf 'lane\tclient requests/s\torigin requests/s\tabsorbed by nginx\tdeliveries/s\tp50 ms\tp99 ms\tmissed\n'
for lane in poll longpoll sse ws; do
  before=$(origin "$lane")
  started=$(date +%s.%N)
  ./target/release/loadgen --url "http://127.0.0.1:$PORT" --lane "$lane" --clients "$CLIENTS" \
    --ramp 1000 --duration "$DURATION" --quiet --json "$OUT/$lane.json" >"$OUT/$lane.txt"
  seconds=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
  after=$(origin "$lane")
  jq -r --arg lane "$lane" --argjson origin "$((after - before))" --argjson seconds "$seconds" '
    (.client_requests / $seconds) as $asked | ($origin / $seconds) as $answered |
    [$lane, ($asked | round), ($answered | round),
     (if $asked > 0 then ((1 - $answered / $asked) * 1000 | round / 10 | tostring) + " %" else "–" end),
     (.deliveries_per_sec | round), (.delay_ms.p50 | . * 10 | round / 10),
     (.delay_ms.p99 | . * 10 | round / 10), .missed] | @tsv' "$OUT/$lane.json"
done
