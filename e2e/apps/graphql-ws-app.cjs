// A GraphQL-over-WebSocket app (graphql-ws 6, the protocol Apollo and urql speak) with its own page: a
// subscription that ticks every second, served with `ws`; the page loads graphql-ws's own browser
// build (from the package, at /graphql-ws.js) and subscribes, retrying for ever as an app that must
// stay live would.
//
//   node graphql-ws-app.cjs PORT
// prints "listening on PORT" once it accepts connections, then its own log, one JSON line each:
//   log {"at": UNIX_MS, "event": "connect" | "disconnect", "code": CLOSE_CODE}
// The page keeps its own in window.events ({at, event}) and counts window.ticks.
const http = require("http");
const fs = require("fs");
const path = require("path");
const { WebSocketServer } = require("ws");
const { useServer } = require("graphql-ws/use/ws");
const { buildSchema } = require("graphql");

const port = Number(process.argv[2] || 8080);
const log = (entry) => console.log("log " + JSON.stringify({ at: Date.now(), ...entry }));

const schema = buildSchema(`
  type Query { hello: String }
  type Subscription { tick: Int }
`);
const roots = {
  query: { hello: () => "hello" },
  subscription: {
    tick: async function* () {
      for (let n = 1; ; n += 1) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        yield { tick: n };
      }
    },
  },
};

const page = `<!doctype html>
<meta charset="utf-8">
<title>graphql-ws ticks</title>
<h1>graphql-ws ticks</h1>
<p id="state">connecting…</p>
<script src="/graphql-ws.js"></script>
<script>
  window.events = [];
  window.ticks = 0;
  const state = document.getElementById("state");
  // ?keepalive=MS: the client pings every MS (graphql-ws's keepAlive), the server answers pong.
  const keepAlive = Number(new URLSearchParams(location.search).get("keepalive") || 0);
  const client = graphqlWs.createClient({
    url: "ws://" + location.host + "/graphql",
    keepAlive,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    on: {
      connected: () => { window.events.push({ at: Date.now(), event: "connect" }); state.textContent = "connected"; },
      closed: () => { window.events.push({ at: Date.now(), event: "disconnect" }); state.textContent = "closed"; },
    },
  });
  client.subscribe({ query: "subscription { tick }" }, {
    next: (value) => { window.ticks += 1; state.textContent = "tick " + value.data.tick; },
    error: (err) => { state.textContent = "error: " + err; },
    complete: () => {},
  });
</script>`;

const browserBuild = path.join(path.dirname(require.resolve("graphql-ws/package.json")), "umd", "graphql-ws.min.js");
const server = http.createServer((req, res) => {
  const pathname = req.url.split("?")[0];
  if (pathname === "/" || pathname === "/index.html") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(page);
  } else if (req.url === "/graphql-ws.js") {
    res.writeHead(200, { "content-type": "text/javascript" });
    fs.createReadStream(browserBuild).pipe(res);
  } else {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  }
});
const wss = new WebSocketServer({ server, path: "/graphql" });
useServer(
  {
    schema,
    roots,
    onConnect: () => { log({ event: "connect" }); },
    onClose: (_ctx, code) => { log({ event: "disconnect", code }); },
  },
  wss,
);
server.listen(port, "127.0.0.1", () => console.log(`listening on ${server.address().port}`));
