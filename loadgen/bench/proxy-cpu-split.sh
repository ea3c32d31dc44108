#!/usr/bin/env bash
# The app proxy's CPU per message split into user and kernel time, against nginx's, in alternating
# rounds — for comparing builds of the proxy on a noisy two-core machine, where one run each way (as
# `through-app-proxy.sh` does) moves by ±10 %. A Switchboard server plays the app (the ticker at 10
# events/s); 1,000 WebSocket clients (loadgen) receive it through each proxy binary given, then through
# nginx, ROUNDS times. The CPU is read from /proc over the middle 8 s of each DURATION-second run.
#
#   loadgen/bench/proxy-cpu-split.sh                          # this tree's release build
#   ROUNDS=5 loadgen/bench/proxy-cpu-split.sh old-build/switchboard-server target/release/switchboard-server
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15}
PORT=${PORT:-8600}
OUT=${OUT:-$PWD/target/bench-proxy-cpu}
rm -rf "$OUT"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"
cargo build --release --locked -q -p switchboard-loadgen -p switchboard-server
[ $# -gt 0 ] || set -- ./target/release/switchboard-server
APP=$PORT NGINX=$((PORT + 1))
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
./target/release/switchboard-server --addr "127.0.0.1:$APP" --traffic steady --load-ms 0 --ticker-ms 100 \
  --max-connections-per-client 0 >"$OUT/app.log" 2>&1 &
pids+=($!)
sed -e "s|@LISTEN@|127.0.0.1:$NGINX|" -e "s|@UPSTREAMS@|server 127.0.0.1:$APP;|" -e "s|@RUNTIME@|$OUT|g" \
  deploy/nginx/switchboard.conf >"$OUT/nginx.conf"
nginx -p "$OUT" -e "$OUT/error.log" -c "$OUT/nginx.conf" -g 'daemon off;' >"$OUT/nginx.out" 2>&1 &
pids+=($!)
for port in "$APP" "$NGINX"; do
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done
NGINX_WORKER=$(pgrep -P "$(cat "$OUT/nginx.pid")" | head -1)
HZ=$(getconf CLK_TCK)

# One run through `url` (the proxy's process `pid`): µs of user and kernel CPU per delivered message.
measure() {
  local name=$1 url=$2 pid=$3
  ./target/release/loadgen --url "$url" --lane ws --clients 1000 --ramp 1000 --duration "$DURATION" \
    --server-pid "$pid" --quiet --json "$OUT/run.json" >/dev/null &
  local loadgen=$!
  sleep 4
  read -r user0 sys0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  sleep 8
  read -r user1 sys1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  wait "$loadgen"
  jq -r --arg name "$name" --argjson user "$((user1 - user0))" --argjson sys "$((sys1 - sys0))" \
    --argjson hz "$HZ" '
    (.deliveries_per_sec * 8) as $messages
    | [$name, ($user / $hz * 1e6 / $messages | . * 100 | round / 100),
       ($sys / $hz * 1e6 / $messages | . * 100 | round / 100),
       (($user + $sys) / $hz * 1e6 / $messages | . * 100 | round / 100),
       (.delay_ms.p99 | . * 10 | round / 10), .missed] | @tsv' "$OUT/run.json"
}

printf 'proxy\tuser µs/message\tkernel µs/message\ttotal\tp99 ms\tmissed\n'
for _ in $(seq 1 "$ROUNDS"); do
  n=0
  for binary in "$@"; do
    n=$((n + 1))
    dashboard=$((PORT + 10 + 2 * n)) proxy=$((PORT + 11 + 2 * n))
    "$binary" --addr "127.0.0.1:$dashboard" --load-ms 0 --ticker-ms 0 --upstream "http://127.0.0.1:$APP" \
      --proxy-addr "127.0.0.1:$proxy" --max-connections-per-client 0 >"$OUT/proxy-$n.log" 2>&1 &
    proxy_pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$proxy/healthz" >/dev/null && break; sleep 0.1; done
    measure "$n: $binary" "http://127.0.0.1:$proxy" "$proxy_pid"
    kill "$proxy_pid"
    wait "$proxy_pid" 2>/dev/null || true
  done
  measure nginx "http://127.0.0.1:$NGINX" "$NGINX_WORKER"
done
