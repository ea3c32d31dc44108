#!/usr/bin/env bash
# Side by side, in one run on this machine: Switchboard's phone call (WebSocket) and a Node `ws` server
# speaking the same wire format (loadgen/bench/node-peer.cjs), each measured by the same load generator
# with the same clients, rate and payload. Prints one table row per server and writes the JSON reports.
#
#   loadgen/bench/vs-node.sh                 # 10,000 clients, 10 events/s, 30 s
#   CLIENTS=5000 EVERY_MS=50 DURATION=20 loadgen/bench/vs-node.sh
#   CLIENTS=5000 DURATION=20 ROUNDS=4 loadgen/bench/vs-node.sh   # four pairs, then medians
#
# Adjacent runs on a shared two-core machine differ by up to ten points of CPU, more than the servers do
# at equal load: with ROUNDS the pair is repeated, the server that goes first alternating (so a drift of
# the machine favours neither), and a last table gives each server's medians and in how many rounds
# Switchboard was at or under Node.
#
# On two cores the load generator competes with the server: its own CPU is in the table, and it is the
# same load generator for both, so the ratios are what to read.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CLIENTS=${CLIENTS:-10000}
EVERY_MS=${EVERY_MS:-100}
DURATION=${DURATION:-30}
ROUNDS=${ROUNDS:-1}
OUT=${OUT:-$ROOT/target/bench-vs-node}
WS_VERSION=8.23.0
mkdir -p "$OUT"

if [ ! -f "$ROOT/.tools/node_modules/ws/package.json" ] \
  || [ "$(jq -r .version "$ROOT/.tools/node_modules/ws/package.json")" != "$WS_VERSION" ]; then
  echo "installing ws $WS_VERSION (npm) into .tools/"
  npm install --prefix "$ROOT/.tools" --no-audit --no-fund --silent "ws@$WS_VERSION"
fi
cargo build --release --locked -q -p switchboard-server -p switchboard-loadgen

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

wait_up() {
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$1/api/stats" >/dev/null && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1" >&2
  return 1
}

# measure NAME PORT PID REPORT: runs the load generator against the server on PORT, writes its JSON
# report to REPORT and prints its row.
measure() {
  local name=$1 port=$2 pid=$3 report=$4 idle_kib
  wait_up "$port"
  idle_kib=$(rss_kib "$pid")
  ./target/release/loadgen --url "http://127.0.0.1:$port" --lane ws --clients "$CLIENTS" --ramp 2000 \
    --duration "$DURATION" --server-pid "$pid" --quiet --json "$report" >"${report%.json}.txt"
  jq -r --arg name "$name" --argjson idle "$idle_kib" --argjson clients "$CLIENTS" '
    [$name, .connected, (.deliveries_per_sec | round), (.delay_ms.p50 | . * 10 | round / 10),
     (.delay_ms.p99 | . * 10 | round / 10), .missed, .errors, (.server.cpu_percent | round),
     (.load_generator_cpu_percent | round),
     ((.server.peak_rss_bytes / 1024 - $idle) / $clients | . * 10 | round / 10)]
    | @tsv' "$report"
}

echo "$CLIENTS clients, an event every $EVERY_MS ms, $DURATION s measured; reports in $OUT"
printf 'server\tconnected\tdeliveries/s\tp50 ms\tp99 ms\tmissed\terrors\tserver CPU %%\tloadgen CPU %%\tKB/connection\n'

SERVER=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null || true' EXIT

# report NAME: the report file of this round (the first round's names are those of a single run).
report() { if [ "$ROUNDS" -eq 1 ]; then echo "$OUT/$1.json"; else echo "$OUT/$1-$round.json"; fi; }

run_switchboard() {
  ./target/release/switchboard-server --addr 127.0.0.1:3991 --traffic steady --load-ms 0 \
    --ticker-ms "$EVERY_MS" --max-connections-per-client 0 >"$OUT/switchboard.log" 2>&1 &
  SERVER=$!
  measure switchboard 3991 "$SERVER" "$(report switchboard)"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
  SERVER=
}

run_node() {
  NODE_PATH="$ROOT/.tools/node_modules" node loadgen/bench/node-peer.cjs 3992 "$EVERY_MS" \
    >"$OUT/node.log" 2>&1 &
  SERVER=$!
  measure node-ws 3992 "$SERVER" "$(report node-ws)"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
  SERVER=
}

for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then run_switchboard; run_node; else run_node; run_switchboard; fi
done

if [ "$ROUNDS" -gt 1 ]; then
  echo
  reports=()
  for name in switchboard node-ws; do
    for r in $(seq 1 "$ROUNDS"); do reports+=("$OUT/$name-$r.json"); done
  done
  echo "over $ROUNDS rounds (medians; rounds where Switchboard was at or under Node):"
  jq -rs --argjson rounds "$ROUNDS" '
    def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                        else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    (.[:$rounds]) as $ours | (.[$rounds:]) as $node
    | ["server CPU %", ($ours | map(.server.cpu_percent) | median | round),
       ($node | map(.server.cpu_percent) | median | round),
       ([range($rounds)] | map(select($ours[.].server.cpu_percent <= $node[.].server.cpu_percent))
        | length)],
      ["p99 ms", ($ours | map(.delay_ms.p99) | median | . * 10 | round / 10),
       ($node | map(.delay_ms.p99) | median | . * 10 | round / 10),
       ([range($rounds)] | map(select($ours[.].delay_ms.p99 <= $node[.].delay_ms.p99)) | length)]
    | @tsv' "${reports[@]}" \
    | { printf '\tSwitchboard\tNode ws\tat or under\n'; cat; }
fi
