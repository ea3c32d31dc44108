// A Socket.IO 4 client, as an app's own Node client (or a test of it) would use it: connects to the
// chat at URL over a WebSocket (transports: ["websocket"]), says "tick" every TICK_MS while connected,
// and reconnects as Socket.IO does by default (delays capped at 2 s here, as the chat's page does).
//
//   node socketio-client.cjs URL [TICK_MS] [TRANSPORTS]
//   (TICK_MS 0: it says nothing, only heartbeats pass; TRANSPORTS "polling,websocket" starts on long
//   polling and upgrades, as a browser's client does — "websocket" unless told)
// prints its own log, one JSON line each, as the app does:
//   log {"at": UNIX_MS, "event": "connect" | "upgrade" | "disconnect" | "chat" | "connect_error", "why": ...}
const { io } = require("socket.io-client");

const url = process.argv[2];
const tickMs = Number(process.argv[3] ?? 1000);
const log = (entry) => console.log("log " + JSON.stringify({ at: Date.now(), ...entry }));
const transports = (process.argv[4] || "websocket").split(",");
const socket = io(url, { transports, reconnectionDelayMax: 2000 });
socket.io.on("open", () => socket.io.engine.on("upgrade", (t) => log({ event: "upgrade", transport: t.name })));
socket.on("connect", () => log({ event: "connect", id: socket.id, transport: socket.io.engine.transport.name }));
socket.on("disconnect", (why) => log({ event: "disconnect", why }));
socket.on("connect_error", (err) => log({ event: "connect_error", why: String(err.message) }));
socket.on("chat", (text) => log({ event: "chat", text }));
if (tickMs > 0) setInterval(() => socket.connected && socket.emit("chat", "tick " + Date.now()), tickMs);
console.log("started");
