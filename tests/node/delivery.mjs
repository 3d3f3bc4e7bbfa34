// Delivery scenarios for the official socket.io-client, run by tests/live/test_delivery.py.
// Usage: node delivery.mjs <scenario> <url> <transports>
// Prints one JSON line with what the clients observed; exits non-zero on failure.
//
// Every scenario waits for something the server must send while one of its
// handlers is still running, and only then lets that handler finish: a server
// that holds a client's output until its handler returns never gets there, and
// the scenario fails on its bounded wait (WAIT ms) instead of hanging.
import { io } from "socket.io-client";

const [scenario, url, transportsArg] = process.argv.slice(2);
const transports = transportsArg.split(",");
const WAIT = 10000;

const deadline = (what, ms = WAIT) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timeout waiting for ${what}`)), ms).unref());

const bounded = (what, promise) => Promise.race([promise, deadline(what)]);

const once = (socket, event) => bounded(event, new Promise((resolve) => socket.once(event, (...args) => resolve(args))));

const unique = (prefix) => `${prefix}-${Math.random().toString(36).slice(2, 10)}`;

const connect = async (prefix) => {
  const name = unique(prefix);
  const socket = io(url, { transports, forceNew: true, reconnection: false, auth: { name } });
  socket.name = name;
  await once(socket, "connect");
  const engine = socket.io.engine;
  if (transports.length > 1 && engine.transport.name !== "websocket") await once(engine, "upgrade");
  return socket;
};

const call = (socket, event, ...args) =>
  socket
    .timeout(WAIT)
    .emitWithAck(event, ...args)
    .catch(() => {
      throw new Error(`no ack for ${event} within ${WAIT} ms`);
    });

// A handler that stays busy until we release it: its ack may take longer than one wait.
const busy = (socket, log) =>
  socket
    .timeout(3 * WAIT)
    .emitWithAck("busy")
    .then((ack) => log.push(`ack ${ack}`));

const scenarios = {
  // The handler emits tick 1, then waits until we answer "continue" (another
  // handler); then tick 2, the same; then tick 3 and its own ack at once.
  async ticks() {
    const socket = await connect("ticks");
    const log = [];
    socket.on("tick", (i) => {
      log.push(`tick ${i}`);
      if (i < 3) socket.emit("continue", i);
    });
    const ack = await call(socket, "ticks", 3).catch((err) => {
      throw new Error(`${err.message}; received only ${JSON.stringify(log)}`);
    });
    log.push(`ack ${ack}`);
    const transport = socket.io.engine.transport.name;
    socket.disconnect();
    return { log, transport };
  },

  // The handler asks its own client and returns the answer as its ack.
  async askSelf() {
    const socket = await connect("self");
    socket.on("question", (value, callback) => callback({ doubled: value * 2 }));
    const result = await call(socket, "ask-self", 21);
    socket.disconnect();
    return { result };
  },

  // A's handler asks B while B is idle; then, with B's handler waiting on A's
  // answer, A's handler asks B again (B answers while its own handler runs).
  async askOther() {
    const [a, b] = await Promise.all([connect("a"), connect("b")]);
    b.on("question", (value, callback) => callback(`b saw ${value}`));
    const idle = await call(a, "ask-other", b.name, "one");
    a.on("question", async (value, callback) => {
      const inner = await call(a, "ask-other", b.name, "two");
      callback({ outer: value, inner });
    });
    const nested = await call(b, "ask-other", a.name, "three");
    a.disconnect();
    b.disconnect();
    return { idle, nested };
  },

  // B's handler is busy until B says so; A broadcasts meanwhile; B must hear it
  // while its handler still runs, and only then releases the handler.
  async broadcastToBusy() {
    const [a, b] = await Promise.all([connect("a"), connect("b")]);
    const log = [];
    const text = unique("news");
    const news = new Promise((resolve) =>
      b.on("news", (value) => {
        if (value !== text) return; // another test's broadcast
        log.push("news");
        resolve();
      })
    );
    const released = busy(b, log);
    const sent = await call(a, "broadcast-to-busy", b.name, text);
    await bounded("news", news);
    b.emit("release");
    await released;
    a.disconnect();
    b.disconnect();
    return { sent, log };
  },

  // B's handler is busy; an HTTP route emits to B (and starts a background task
  // that emits too): both arrive while the handler runs.
  async notifyBusy() {
    const b = await connect("b");
    const log = [];
    const notices = new Promise((resolve) =>
      b.on("notice", (value) => {
        log.push(value);
        if (log.length === 2) resolve();
      })
    );
    const released = busy(b, log);
    const response = await bounded("POST", fetch(`${url}/notify/${b.name}`, { method: "POST" }));
    const body = await response.json();
    await bounded("notices", notices);
    b.emit("release");
    await released;
    b.disconnect();
    return { status: response.status, body, log };
  },
};

try {
  const result = await scenarios[scenario]();
  console.log(JSON.stringify(result));
  process.exit(0);
} catch (err) {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
}
