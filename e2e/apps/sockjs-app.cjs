// A SockJS app, as an app developer would write it: the `sockjs` server (0.3) at /sockjs, and its own
// page that loads the sockjs-client browser build (from the package, served at /sockjs-client.js).
// Every connection gets a data message every second, {"n": N, "at": UNIX_MS} as a JSON string (n
// counts per connection), and what the client sends is echoed back. The page picks its transport from
// its query, ?transport=websocket | xhr-streaming | xhr-polling (none: SockJS's own choice), and as
// SockJS does not reconnect by itself, the page reconnects 500 ms after a close, as apps do.
//
//   node sockjs-app.cjs PORT [HEARTBEAT_MS]
// prints "listening on PORT" once it accepts connections, then its own log, one JSON line each:
//   log {"at": UNIX_MS, "event": "connect" | "disconnect", "id": CONNECTION_ID, "transport": PROTOCOL}
// (PROTOCOL as SockJS names it: websocket, xhr-streaming, xhr-polling…). HEARTBEAT_MS (25000 unless
// told) is SockJS's heartbeat_delay: an "h" frame after that long (on a WebSocket, a ping). The page
// keeps its own in window.events ({at, event: "open" | "close" | "message", transport, code}: what the
// browser saw, for the tests; a close's transport is the one it was open on, null if it never opened),
// counts the data messages in window.messages and keeps its socket in window.sock.
const http = require("http");
const fs = require("fs");
const path = require("path");
const sockjs = require("sockjs");

const port = Number(process.argv[2] || 8080);
const heartbeat = Number(process.argv[3] || 25000);
const log = (entry) => console.log("log " + JSON.stringify({ at: Date.now(), ...entry }));

const page = `<!doctype html>
<meta charset="utf-8">
<title>SockJS ticks</title>
<h1>SockJS ticks</h1>
<p id="state">connecting…</p>
<p id="last"></p>
<script src="/sockjs-client.js"></script>
<script>
  window.events = [];
  window.messages = 0;
  const state = document.getElementById("state");
  const last = document.getElementById("last");
  const chosen = new URLSearchParams(location.search).get("transport");
  function connect() {
    const sock = chosen ? new SockJS("/sockjs", null, { transports: [chosen] }) : new SockJS("/sockjs");
    window.sock = sock;
    let opened = null; // sock.transport is null again by the close
    sock.onopen = () => {
      opened = sock.transport;
      window.events.push({ at: Date.now(), event: "open", transport: sock.transport });
      state.textContent = "open (" + sock.transport + ")";
    };
    sock.onmessage = (message) => {
      window.messages += 1;
      window.events.push({ at: Date.now(), event: "message", transport: sock.transport });
      last.textContent = message.data;
    };
    sock.onclose = (close) => {
      window.events.push({ at: Date.now(), event: "close", transport: opened, code: close.code });
      state.textContent = "closed: " + close.code;
      setTimeout(connect, 500);
    };
  }
  connect();
</script>`;

const browserBuild = path.join(path.dirname(require.resolve("sockjs-client/package.json")), "dist", "sockjs.min.js");
const server = http.createServer((req, res) => {
  const pathname = new URL(req.url, "http://app").pathname;
  if (pathname === "/" || pathname === "/index.html") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(page);
  } else if (pathname === "/sockjs-client.js") {
    res.writeHead(200, { "content-type": "application/javascript" });
    fs.createReadStream(browserBuild).pipe(res);
  } else {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  }
});

const service = sockjs.createServer({
  heartbeat_delay: heartbeat,
  log: (severity, line) => { if (severity === "error") console.error(line); },
});
service.on("connection", (conn) => {
  const transport = conn.protocol;
  log({ event: "connect", id: conn.id, transport });
  let n = 0;
  const ticks = setInterval(() => {
    n += 1;
    conn.write(JSON.stringify({ n, at: Date.now() }));
  }, 1000);
  conn.on("data", (data) => conn.write(data));
  conn.on("close", () => {
    clearInterval(ticks);
    log({ event: "disconnect", id: conn.id, transport });
  });
});
service.installHandlers(server, { prefix: "/sockjs" });

server.listen(port, "127.0.0.1", () => console.log(`listening on ${server.address().port}`));
