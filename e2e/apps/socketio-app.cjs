// A Socket.IO 4 chat, as an app developer would write it: the server and its own page (the client
// script is the one Socket.IO serves at /socket.io/socket.io.js). The page stays on HTTP long polling
// for its first POLLING_MS (as it would behind a proxy that does not pass WebSockets, or until an
// upgrade is allowed), then reconnects and upgrades to a WebSocket, as Socket.IO does by default.
//
//   node socketio-app.cjs PORT [PING_INTERVAL_MS] [POLLING_MS]
// prints "listening on PORT" once it accepts connections, then its own log, one JSON line each:
//   log {"at": UNIX_MS, "event": "connect" | "disconnect", "id": SOCKET_ID, "why": REASON}
// The page keeps its own in window.events ({at, event, why, transport}): what the browser saw, for the
// tests; a chat says the transport it arrived on, and each packet that reaches it on a WebSocket is a
// "frame" (before the upgrade, messages come as letters).
const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 8080);
const pingInterval = Number(process.argv[3] || 25000);
const pollingMs = Number(process.argv[4] || 0);

const page = () => `<!doctype html>
<meta charset="utf-8">
<title>Socket.IO chat</title>
<h1>Socket.IO chat</h1>
<p id="state">connecting…</p>
<ul id="log"></ul>
<script>
  // Every message that reaches the page on a WebSocket (the upgrade's probe too), as the browser saw
  // it: what a phone call delivers. Installed before the client library takes the constructor.
  window.events = [];
  window.WebSocket = class extends WebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", () => {
        window.events.push({ at: Date.now(), event: "frame", transport: "websocket" });
      });
    }
  };
</script>
<script src="/socket.io/socket.io.js"></script>
<script>
  const POLLING_MS = ${pollingMs};
  const state = document.getElementById("state");
  const log = document.getElementById("log");
  const socket = io({ reconnectionDelayMax: 2000, upgrade: POLLING_MS === 0 });
  if (POLLING_MS > 0) {
    setTimeout(() => { socket.io.opts.upgrade = true; socket.io.engine.close(); }, POLLING_MS);
  }
  window.transports = [];
  window.connects = 0;
  window.chats = 0;
  socket.on("connect", () => {
    window.connects += 1;
    window.events.push({ at: Date.now(), event: "connect" });
    state.textContent = "connected (" + socket.io.engine.transport.name + ")";
    socket.io.engine.on("upgrade", (t) => { state.textContent = "connected (" + t.name + ")"; window.transports.push(t.name); });
    socket.emit("chat", "hello from the page");
  });
  socket.on("disconnect", (why) => {
    window.events.push({ at: Date.now(), event: "disconnect", why });
    state.textContent = "disconnected: " + why;
  });
  socket.on("chat", (text) => {
    window.chats += 1;
    window.events.push({ at: Date.now(), event: "chat", transport: socket.io.engine.transport.name });
    const item = document.createElement("li");
    item.textContent = text;
    log.appendChild(item);
  });
  setInterval(() => socket.connected && socket.emit("chat", "tick " + new Date().toISOString()), 3000);
</script>`;

const server = http.createServer((req, res) => {
  if (req.url === "/" || req.url === "/index.html") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(page());
  } else {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  }
});
const io = new Server(server, { pingInterval, pingTimeout: 5000 });
const log = (entry) => console.log("log " + JSON.stringify({ at: Date.now(), ...entry }));
io.on("connection", (socket) => {
  log({ event: "connect", id: socket.id, transport: socket.conn.transport.name });
  socket.on("chat", (text) => io.emit("chat", String(text).slice(0, 200)));
  socket.on("disconnect", (why) => log({ event: "disconnect", id: socket.id, why }));
});
server.listen(port, "127.0.0.1", () => console.log(`listening on ${server.address().port}`));
