// Official socket.io-client clients driven over stdin/stdout, one JSON object a line,
// so a Python test can keep clients connected while it acts on the cluster.
//
// stdin:  {"cmd": "connect", "id", "url", "nsp"}
//         {"cmd": "emit", "id", "event", "args", "tag"}   tag set: wait for an ack (5 s)
//         {"cmd": "close", "id"}
// stdout: {"id", "type": "connected", "sid"} | {"id", "type": "connect_error", "message"}
//         {"id", "type": "event", "event", "args"} | {"id", "type": "ack", "tag", "args"}
//         {"id", "type": "disconnect", "reason"}
// Bytes travel as {"$bin": "<hex>"} both ways. Every client answers "question" with its id.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const sockets = new Map();
const write = (message) => process.stdout.write(JSON.stringify(message) + "\n");

function toJSON(value) {
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("hex") };
  if (ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") };
  }
  if (Array.isArray(value)) return value.map(toJSON);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJSON(v)]));
  }
  return value;
}

function fromJSON(value) {
  if (Array.isArray(value)) return value.map(fromJSON);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string" && Object.keys(value).length === 1) {
      return Buffer.from(value.$bin, "hex");
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromJSON(v)]));
  }
  return value;
}

function connect({ id, url, nsp = "/" }) {
  const socket = io(url + nsp, { transports: ["websocket"], forceNew: true, reconnection: false });
  sockets.set(id, socket);
  socket.on("connect", () => write({ id, type: "connected", sid: socket.id }));
  socket.on("connect_error", (err) => write({ id, type: "connect_error", message: err.message }));
  socket.on("disconnect", (reason) => write({ id, type: "disconnect", reason }));
  socket.on("question", (ack) => ack(id));
  socket.onAny((event, ...args) => {
    const data = args.filter((arg) => typeof arg !== "function");
    write({ id, type: "event", event, args: toJSON(data) });
  });
}

async function emit({ id, event, args = [], tag }) {
  const socket = sockets.get(id);
  if (tag === undefined) {
    socket.emit(event, ...fromJSON(args));
    return;
  }
  try {
    const answer = await socket.timeout(5000).emitWithAck(event, ...fromJSON(args));
    write({ id, type: "ack", tag, args: toJSON([answer]) });
  } catch (err) {
    write({ id, type: "ack", tag, error: err.message });
  }
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const command = JSON.parse(line);
  if (command.cmd === "connect") connect(command);
  else if (command.cmd === "emit") emit(command);
  else if (command.cmd === "close") sockets.get(command.id)?.disconnect();
});
lines.on("close", () => {
  for (const socket of sockets.values()) socket.disconnect();
  process.exit(0);
});
