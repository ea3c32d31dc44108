#!/usr/bin/env bash
# What the app proxy (--upstream) costs a phone call, against nginx as the proxy, in one run. A Switchboard
# server plays the app (the ticker at 10 events/s); 1,000 WebSocket clients (loadgen) receive it three
# ways in turn: direct, through Switchboard's app proxy, and through nginx with the shipped configuration.
# The delay figures are each client's (server timestamp to arrival); the CPU is the proxy's own process
# (Switchboard's, or nginx's one worker), so "CPU per message" compares the two proxies. One run each way
# swings by ±20 % on a shared two-core machine (1.03× to 1.46× over the last builds): to compare the proxies'
# CPU, or two builds, use proxy-cpu-split.sh, which alternates rounds and splits user and kernel time.
#
#   loadgen/bench/through-app-proxy.sh                  # 1,000 clients, 20 s each
#   CLIENTS=500 DURATION=10 loadgen/bench/through-app-proxy.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=${CLIENTS:-1000}
DURATION=${DURATION:-20}
PORT=${PORT:-8200}
OUT=${OUT:-$PWD/target/bench-app-proxy}
rm -rf "$OUT"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"
cargo build --release --locked -q -p switchboard-loadgen -p switchboard-server
APP=$PORT SWITCHBOARD=$((PORT + 1)) PROXY=$((PORT + 2)) NGINX=$((PORT + 3))
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT

./target/release/switchboard-server --addr "127.0.0.1:$APP" --traffic steady --load-ms 0 --ticker-ms 100 \
  --max-connections-per-client 0 >"$OUT/app.log" 2>&1 &
pids+=($!)
./target/release/switchboard-server --addr "127.0.0.1:$SWITCHBOARD" --load-ms 0 --ticker-ms 0 \
  --upstream "http://127.0.0.1:$APP" --proxy-addr "127.0.0.1:$PROXY" --max-connections-per-client 0 \
  >"$OUT/switchboard.log" 2>&1 &
pids+=($!)
PROXY_PID=$!
sed -e "s|@LISTEN@|127.0.0.1:$NGINX|" -e "s|@UPSTREAMS@|server 127.0.0.1:$APP;|" -e "s|@RUNTIME@|$OUT|g" \
  deploy/nginx/switchboard.conf >"$OUT/nginx.conf"
nginx -p "$OUT" -e "$OUT/error.log" -c "$OUT/nginx.conf" -g 'daemon off;' >"$OUT/nginx.out" 2>&1 &
pids+=($!)
for port in "$APP" "$PROXY" "$NGINX"; do
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done
NGINX_WORKER=$(pgrep -P "$(cat "$OUT/nginx.pid")" | head -1)
APP_PID=${pids[0]}

echo "$CLIENTS WebSocket clients, 10 events/s, $DURATION s each way; reports in $OUT"
printf 'way\tdeliveries/s\tp50 ms\tp99 ms\tmissed\tproxy CPU %%\tproxy CPU µs per message\tload generator CPU %%\n'
for way in direct switchboard nginx; do
  case $way in
    direct) url="http://127.0.0.1:$APP" pid=$APP_PID ;;
    switchboard) url="http://127.0.0.1:$PROXY" pid=$PROXY_PID ;;
    nginx) url="http://127.0.0.1:$NGINX" pid=$NGINX_WORKER ;;
  esac
  ./target/release/loadgen --url "$url" --lane ws --clients "$CLIENTS" --ramp 1000 --duration "$DURATION" \
    --server-pid "$pid" --quiet --json "$OUT/$way.json" >"$OUT/$way.txt"
  jq -r --arg way "$way" '
    [$way, (.deliveries_per_sec | round), (.delay_ms.p50 | . * 100 | round / 100),
     (.delay_ms.p99 | . * 100 | round / 100), .missed,
     (if $way == "direct" then "–" else (.server.cpu_percent | . * 10 | round / 10) end),
     (if $way == "direct" then "–" else (.server.cpu_percent * 10000 / .deliveries_per_sec | . * 10 | round / 10) end),
     (.load_generator_cpu_percent | . * 10 | round / 10)] | @tsv' "$OUT/$way.json"
done
