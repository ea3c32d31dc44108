// One app, three ways a page keeps up with a server, as apps commonly do it without a framework: each
// page is a small real client of one transport, gets a data message every second and (but for the
// poll) a heartbeat every BEAT_MS.
//
//   node ticks-app.cjs PORT [BEAT_MS]
//   GET /ws      a page whose WebSocket connects to /live (`ws`, no compression): {"n": N, "at": UNIX_MS}
//                every second (n counts per connection), a ping frame every BEAT_MS (the browser
//                answers it itself); the page reconnects 500 ms after a close
//   GET /sse     a page with an EventSource on /events: "retry: 500" first, then "id: N" and
//                {"n": N, "at": UNIX_MS} every second (n counts per stream), a ": ping" comment every
//                BEAT_MS; EventSource reconnects by itself
//   GET /poll    a page that fetches /state every second (cache: "no-cache", so the browser revalidates
//                with If-None-Match): {"version": V} with ETag "V", V = floor(UNIX_MS / 5000); a
//                matching If-None-Match gets a 304 with no body. No heartbeat.
// prints "listening on PORT" once it accepts connections (PORT 0: any free one; BEAT_MS: 2000 unless
// told), then its own log, one JSON line each:
//   log {"at": UNIX_MS, "event": "connect" | "disconnect", "transport": "ws" | "sse"}
//   log {"at": UNIX_MS, "event": "poll", "status": 200 | 304}
// Each page keeps what the browser saw in window.events ({at, event: "open" | "close" | "message" |
// "error", ...}: a close has its code, a poll's message the status fetch reported, which is 200 for a
// 304 revalidated into the cached answer), counts its data messages in window.messages and shows its
// state in <p id="state"> ("open", "closed: CODE", "error").
const http = require("http");
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2] || 0);
const beat = Number(process.argv[3] || 2000);
const log = (entry) => console.log("log " + JSON.stringify({ at: Date.now(), ...entry }));

const page = (title, script) => `<!doctype html>
<meta charset="utf-8">
<title>${title}</title>
<h1>${title}</h1>
<p id="state">connecting…</p>
<p id="last"></p>
<script>
  window.events = [];
  window.messages = 0;
  const state = document.getElementById("state");
  const last = document.getElementById("last");
${script}
</script>`;

const pages = {
  "/ws": page("WebSocket ticks", `
  function connect() {
    const socket = new WebSocket("ws://" + location.host + "/live");
    window.socket = socket;
    socket.onopen = () => {
      window.events.push({ at: Date.now(), event: "open" });
      state.textContent = "open";
    };
    socket.onmessage = (message) => {
      window.messages += 1;
      window.events.push({ at: Date.now(), event: "message" });
      last.textContent = message.data;
    };
    socket.onerror = () => {
      window.events.push({ at: Date.now(), event: "error" });
      state.textContent = "error";
    };
    socket.onclose = (close) => {
      window.events.push({ at: Date.now(), event: "close", code: close.code });
      state.textContent = "closed: " + close.code;
      setTimeout(connect, 500);
    };
  }
  connect();`),
  "/sse": page("EventSource ticks", `
  const source = new EventSource("/events");
  window.source = source;
  source.onopen = () => {
    window.events.push({ at: Date.now(), event: "open" });
    state.textContent = "open";
  };
  source.onmessage = (message) => {
    window.messages += 1;
    window.events.push({ at: Date.now(), event: "message", id: message.lastEventId });
    last.textContent = message.data;
  };
  source.onerror = () => {
    // EventSource reconnects by itself (after the stream's "retry"), unless it gave up (CLOSED).
    window.events.push({ at: Date.now(), event: "error", readyState: source.readyState });
    state.textContent = "error";
  };`),
  "/poll": page("Polling ticks", `
  async function poll() {
    try {
      const answer = await fetch("/state", { cache: "no-cache" });
      const body = await answer.json();
      window.messages += 1;
      window.events.push({ at: Date.now(), event: "message", status: answer.status });
      state.textContent = "open";
      last.textContent = JSON.stringify(body);
    } catch (error) {
      window.events.push({ at: Date.now(), event: "error", why: String(error) });
      state.textContent = "error";
    }
  }
  poll();
  setInterval(poll, 1000);`),
};

const server = http.createServer((req, res) => {
  const pathname = new URL(req.url, "http://app").pathname;
  if (req.method === "GET" && pages[pathname]) {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(pages[pathname]);
  } else if (req.method === "GET" && pathname === "/events") {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write("retry: 500\n\n");
    log({ event: "connect", transport: "sse" });
    let n = 0;
    const ticks = setInterval(() => {
      n += 1;
      res.write(`id: ${n}\ndata: ${JSON.stringify({ n, at: Date.now() })}\n\n`);
    }, 1000);
    const pings = setInterval(() => res.write(": ping\n\n"), beat);
    res.on("close", () => {
      clearInterval(ticks);
      clearInterval(pings);
      log({ event: "disconnect", transport: "sse" });
    });
  } else if (req.method === "GET" && pathname === "/state") {
    const version = Math.floor(Date.now() / 5000);
    const etag = `"${version}"`;
    if (req.headers["if-none-match"] === etag) {
      log({ event: "poll", status: 304 });
      res.writeHead(304, { etag });
      res.end();
    } else {
      log({ event: "poll", status: 200 });
      res.writeHead(200, { "content-type": "application/json", etag });
      res.end(JSON.stringify({ version }));
    }
  } else {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  }
});

const wss = new WebSocketServer({ server, path: "/live", perMessageDeflate: false });
wss.on("connection", (socket) => {
  log({ event: "connect", transport: "ws" });
  let n = 0;
  const ticks = setInterval(() => {
    n += 1;
    socket.send(JSON.stringify({ n, at: Date.now() }));
  }, 1000);
  const pings = setInterval(() => socket.ping(), beat);
  socket.on("error", () => {}); // a peer that vanishes: its close follows
  socket.on("close", () => {
    clearInterval(ticks);
    clearInterval(pings);
    log({ event: "disconnect", transport: "ws" });
  });
});

server.listen(port, "127.0.0.1", () => console.log(`listening on ${server.address().port}`));
