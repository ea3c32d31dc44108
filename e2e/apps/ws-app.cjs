// A plain `ws` server, as many apps run one: it echoes every message as it came (text or binary),
// answers "close:CODE:REASON" by closing with that code, pings every PING_MS (0: never) and says
// "pong-seen" when the browser's pong to it arrives.
//
//   node ws-app.cjs PORT [PING_MS]
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2] || 8081);
const pingMs = Number(process.argv[3] || 0);
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: true });
wss.on("connection", (socket, request) => {
  socket.send(JSON.stringify({
    type: "welcome",
    protocol: socket.protocol,
    extensions: socket.extensions,
    origin: request.headers.origin || null,
    host: request.headers.host,
    forwarded_for: request.headers["x-forwarded-for"] || null,
  }));
  socket.on("message", (data, binary) => {
    const text = binary ? null : data.toString();
    const close = text && text.match(/^close:(\d+):(.*)$/);
    if (close) return socket.close(Number(close[1]), close[2]);
    socket.send(data, { binary });
  });
  socket.on("ping", (data) => socket.send(`ping-seen:${data.toString()}`));
  socket.on("pong", (data) => socket.send(`pong-seen:${data.toString()}`));
  socket.on("close", (code, reason) => console.log(`closed ${code} ${reason}`));
  if (pingMs > 0) {
    const timer = setInterval(() => socket.ping("beat"), pingMs);
    socket.on("close", () => clearInterval(timer));
  }
});
wss.on("listening", () => console.log(`listening on ${wss.address().port}`));
