// A plain Node app of the kind that polls and streams without a framework: an EventSource feed, a
// status endpoint a page fetches every few seconds, a long poll, and a large download.
//
//   node http-app.cjs PORT
//   GET  /events           text/event-stream: "tick" events every EVENT_MS (query ?every=MS, default
//                          1000), a ": ping" comment every ?ping=MS (0: none)
//   GET  /ticker           text/plain, chunked, never ending: "tick N" lines every ?every=MS (300)
//   GET  /status           JSON that changes only every tenth request
//   GET  /wait?ms=N        answers after N ms
//   GET  /big?mb=N         N MB of bytes, written as the reader takes them
//   POST /echo             the body back
//   GET  /headers          the request's headers as JSON
//   GET  /packed?enc=E     JSON that changes every tenth request, compressed (E: gzip, deflate or br)
const http = require("http");
const zlib = require("zlib");

const port = Number(process.argv[2] || 8082);
let statusCalls = 0;
let packedCalls = 0;
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/events") {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write("retry: 1000\n\n");
    let id = 0;
    const every = Number(url.searchParams.get("every") || 1000);
    const ping = Number(url.searchParams.get("ping") || 0);
    const ticks = setInterval(() => { id += 1; res.write(`id: ${id}\nevent: tick\ndata: {"n":${id},"at":${Date.now()}}\n\n`); }, every);
    const pings = ping > 0 ? setInterval(() => res.write(": ping\n\n"), ping) : null;
    req.on("close", () => { clearInterval(ticks); if (pings) clearInterval(pings); });
  } else if (url.pathname === "/ticker") {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    let n = 0;
    const ticks = setInterval(() => { n += 1; res.write(`tick ${n}\n`); }, Number(url.searchParams.get("every") || 300));
    req.on("close", () => clearInterval(ticks));
  } else if (url.pathname === "/status") {
    statusCalls += 1;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ version: Math.floor((statusCalls - 1) / 10), ok: true }));
  } else if (url.pathname === "/wait") {
    setTimeout(() => { res.writeHead(200, { "content-type": "application/json" }); res.end('{"waited":true}'); }, Number(url.searchParams.get("ms") || 1000));
  } else if (url.pathname === "/big") {
    const total = Number(url.searchParams.get("mb") || 1) * 1024 * 1024;
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(total) });
    const chunk = Buffer.alloc(64 * 1024, 120);
    let sent = 0;
    const more = () => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return res.once("drain", more);
      }
      res.end();
    };
    more();
  } else if (url.pathname === "/echo" && req.method === "POST") {
    const parts = [];
    req.on("data", (part) => parts.push(part));
    req.on("end", () => { res.writeHead(200, { "content-type": req.headers["content-type"] || "application/octet-stream" }); res.end(Buffer.concat(parts)); });
  } else if (url.pathname === "/packed") {
    packedCalls += 1;
    const enc = url.searchParams.get("enc") || "gzip";
    const body = Buffer.from(JSON.stringify({ version: Math.floor((packedCalls - 1) / 10), items: [] }));
    const packed = enc === "br" ? zlib.brotliCompressSync(body) : enc === "deflate" ? zlib.deflateSync(body) : zlib.gzipSync(body);
    res.writeHead(200, { "content-type": "application/json", "content-encoding": enc, "content-length": String(packed.length) });
    res.end(packed);
  } else if (url.pathname === "/headers") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(req.headers));
  } else {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  }
});
server.listen(port, "127.0.0.1", () => console.log(`listening on ${server.address().port}`));
