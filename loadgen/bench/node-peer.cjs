// The peer of the side-by-side benchmark (loadgen/bench/vs-node.sh): Node's `ws` serving the phone
// call's wire format, so the same load generator can measure both servers in the same run.
//
// It does what Switchboard's phone call does for a load client and nothing more: a hello on connect,
// a ticker event of the same shape and size to every client at the same rate (serialized once and sent
// as the same buffer to all, the way `ws` recommends broadcasting), an app-level heartbeat and a
// protocol ping every 2 s, and `GET /api/stats` with the few figures the load generator reads. It keeps
// no history and no per-client bookkeeping, so any difference in its favour is an upper bound.
//
//   NODE_PATH=.tools/node_modules node loadgen/bench/node-peer.cjs PORT EVERY_MS

// `ws` is installed into .tools/ by the bench script and found through NODE_PATH.
const http = require("node:http");
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2] ?? 3992);
const everyMs = Number(process.argv[3] ?? 100);
const heartbeatMs = 2000;
const epoch = Date.now();
const started = Date.now();
let seq = 0;
let opened = 0;
let sent = 0;

// The same random walk over the same five symbols as the server's ticker: one to three quotes an event.
const prices = { ACME: 182.3, GLOBEX: 95.9, INITECH: 41.2, UMBRELLA: 231.2, WAYNE: 511.0 };
const symbols = Object.keys(prices);
function quotes() {
  const count = 1 + Math.floor(Math.random() * 3);
  return Array.from({ length: count }, () => {
    const symbol = symbols[Math.floor(Math.random() * symbols.length)];
    const change = (Math.random() - 0.5) * 0.01;
    prices[symbol] = Math.round(prices[symbol] * (1 + change) * 100) / 100;
    return { symbol, price: prices[symbol], change_pct: Math.round(change * 10000) / 100 };
  });
}

function counters() {
  return {
    connections_open: wss.clients.size,
    connections_total: opened,
    requests: opened,
    empty_replies: 0,
    messages: sent,
    frames_in: 0,
    errors: 0,
    bytes_in: 0,
    bytes_out: 0,
  };
}

const server = http.createServer((request, response) => {
  if (request.url === "/api/stats") {
    const stats = {
      instance: "node-ws",
      epoch,
      uptime_ms: Date.now() - started,
      head: seq,
      oldest: seq > 0 ? 1 : null,
      history_len: 0,
      history_capacity: 0,
      lanes: { ws: counters() },
      other: { ...counters(), connections_open: 0 },
    };
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify(stats));
  } else {
    response.writeHead(404);
    response.end();
  }
});

const wss = new WebSocketServer({ server, path: "/ws", perMessageDeflate: false, maxPayload: 64 * 1024 });
wss.on("connection", (socket) => {
  opened += 1;
  socket.on("error", () => {});
  socket.send(
    JSON.stringify({
      type: "hello",
      epoch,
      head: seq,
      oldest: seq > 0 ? 1 : null,
      resumed_after: null,
      heartbeat_ms: heartbeatMs,
      instance: "node-ws",
      server_ms: Date.now(),
    }),
  );
});

function broadcast(text) {
  const frame = Buffer.from(text);
  for (const socket of wss.clients) {
    if (socket.readyState === 1) {
      socket.send(frame, { binary: false });
      sent += 1;
    }
  }
}

// Each event is due at a fixed multiple of `everyMs` from the start, as the server's ticker is: a plain
// `setInterval` counts each interval from when the last callback ran, so a sweep of 5,000 sends made it
// drift to 9.5 events a second and the peer was measured at 5 % less load than the server it is set
// beside.
const tickerStart = Date.now();
function tick() {
  seq += 1;
  broadcast(JSON.stringify({ type: "event", seq, ts_ms: Date.now(), kind: "ticker", data: { quotes: quotes() } }));
  setTimeout(tick, Math.max(0, tickerStart + (seq + 1) * everyMs - Date.now()));
}
setTimeout(tick, everyMs);

setInterval(() => {
  broadcast(JSON.stringify({ type: "heartbeat", server_ms: Date.now(), head: seq }));
  for (const socket of wss.clients) {
    if (socket.readyState === 1) socket.ping();
  }
}, heartbeatMs);

server.listen(port, "127.0.0.1", () => {
  console.log(`node-ws peer on http://127.0.0.1:${port}/ (an event every ${everyMs} ms)`);
});
