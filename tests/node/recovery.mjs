// Connection state recovery with the official socket.io-client against a server
// with recovery on (tests/live/test_recovery.py serves it).
// Usage: node recovery.mjs <scenario> <url> [transports]
// Prints one JSON line with what the clients observed; exits non-zero on failure.
import { io } from "socket.io-client";

const [scenario, url, transportsArg] = process.argv.slice(2);
const transports = transportsArg ? transportsArg.split(",") : ["polling", "websocket"];

const once = (emitter, event, ms = 5000) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A client that records every event it is shown, exactly as its listeners see it.
const client = async (name) => {
  const socket = io(url, { transports, forceNew: true, reconnection: false, auth: { name } });
  socket.seen = [];
  socket.onAny((event, ...args) => socket.seen.push([event, ...args]));
  await once(socket, "connect");
  return socket;
};

// Lose the connection as a network cut does (the client's engine closes, the
// server sees the transport close); the client then connects again by itself.
const lose = async (socket) => {
  const gone = once(socket, "disconnect");
  socket.io.engine.close();
  const [reason] = await gone;
  return reason;
};
const back = async (socket) => {
  socket.connect();
  await once(socket, "connect");
  await sleep(200); // what the server sends after CONNECT
  return { recovered: socket.recovered, id: socket.id };
};

// Client a in room "r" has been sent one event there ("before") by client b.
const inRoomWithOneEvent = async () => {
  const a = await client("a");
  const b = await client("b");
  await a.emitWithAck("join", "r");
  await b.emitWithAck("to-room", "r", "before");
  await sleep(200);
  return [a, b];
};

const scenarios = {
  // Events to the client's room, to everyone and to its socket alone while it
  // was away reach it on return, once, in order, after those it had seen.
  async missed() {
    const [a, b] = await inRoomWithOneEvent();
    const idBefore = a.id;
    const reason = await lose(a);
    await b.emitWithAck("to-room", "r", "gap-1");
    await b.emitWithAck("to-all", "gap-2");
    await b.emitWithAck("poke", "a", "gap-3");
    await b.emitWithAck("to-room", "r", "gap-4");
    const result = await back(a);
    await b.emitWithAck("to-room", "r", "after");
    await sleep(200);
    const rooms = await a.emitWithAck("rooms");
    a.disconnect();
    b.disconnect();
    return { reason, idBefore, ...result, seen: a.seen, rooms, data: await Promise.resolve(null) };
  },

  // A client that had received no event when it lost the connection (so it has no
  // offset to bring back) still recovers, and gets what it missed.
  async noEventYet() {
    const a = await client("quiet");
    const b = await client("b");
    await a.emitWithAck("join", "q");
    const reason = await lose(a);
    await b.emitWithAck("to-room", "q", "gap");
    const result = await back(a);
    a.disconnect();
    b.disconnect();
    return { reason, ...result, seen: a.seen };
  },

  // The session is taken up over a new connection while the server still holds
  // the old one (a network cut it has not noticed yet): the old socket is
  // closed first, and its cleanup leaves the recovered socket's rooms alone.
  async takeover() {
    const [a, b] = await inRoomWithOneEvent();
    const idBefore = a.id;
    const oldGone = once(a, "disconnect");
    const c = io(url, {
      transports,
      forceNew: true,
      reconnection: false,
      auth: { name: "a", pid: a._pid, offset: a._lastOffset },
    });
    c.seen = [];
    c.onAny((event, ...args) => c.seen.push([event, ...args]));
    await once(c, "connect");
    const [oldReason] = await oldGone;
    await b.emitWithAck("to-room", "r", "after");
    await sleep(200);
    const rooms = await c.emitWithAck("rooms");
    const result = { idMatches: c.id === idBefore, oldReason, rooms, seenByNew: c.seen, seenByOld: a.seen };
    a.disconnect();
    b.disconnect();
    c.disconnect();
    return result;
  },

  // A client that left on purpose gets a new session.
  async leftOnPurpose() {
    const a = await client("a");
    const idBefore = a.id;
    a.disconnect();
    await sleep(100);
    const result = await back(a);
    a.disconnect();
    return { idBefore, ...result };
  },

  // Past max_disconnection_duration the session is gone: a new one, no replay.
  async expired() {
    const a = await client("a");
    const b = await client("b");
    await a.emitWithAck("join", "r");
    const idBefore = a.id;
    await lose(a);
    await b.emitWithAck("to-room", "r", "gap");
    await sleep(Number(process.env.WAIT_MS ?? 1500));
    const result = await back(a);
    a.disconnect();
    b.disconnect();
    return { idBefore, ...result, seen: a.seen };
  },
};

const fn = scenarios[scenario];
if (!fn) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
const timer = setTimeout(() => {
  console.error("scenario timed out");
  process.exit(3);
}, 20000);
try {
  console.log(JSON.stringify(await fn()));
  clearTimeout(timer);
  process.exit(0);
} catch (err) {
  console.error(err?.stack ?? String(err));
  process.exit(1);
}
