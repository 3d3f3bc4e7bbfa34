// Connection state recovery across a cluster on Redis Streams, with the official
// socket.io-client (or client-js, CLIENT=realtime), for tests/live/test_cluster_recovery.py. Nodes run
// examples/cluster/node.py --recovery or cluster/node-twin.mjs --recovery (hello
// carries the node's name and socket.recovered; join, to-room as in node.py).
//
//   node cluster_recovery.mjs move <from-url> <to-url> <sender-url> <redis-url>
//     a client in room "r" loses its connection on one node; events reach the room
//     meanwhile; it comes back on another node.
//   node cluster_recovery.mjs crash <victim-url> <victim-pid> <witness-url> <other-url> <redis-url>
//                                   <clients> <back-url> <live|quiet>
//     clients of the victim node sit in rooms "ra"/"rb" while senders on the two
//     other nodes keep sending to those rooms; the victim is killed (SIGKILL); each
//     client comes back on the node at <back-url>, while the senders go on ("live")
//     or once they have stopped ("quiet"). Witnesses on <witness-url> see every event.
// Prints one JSON line with what the clients saw.
import { io as officialIo } from "socket.io-client";
import { createClient } from "redis";
import { decode } from "@msgpack/msgpack";

const [scenario, ...args] = process.argv.slice(2);
// CLIENT=realtime: the clients are this project's client-js (its built dist) instead.
const io =
  process.env.CLIENT === "realtime" ? (await import("../../client-js/dist/index.mjs")).io : officialIo;
const WAIT = 15000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const waitFor = (socket, event, pred = () => true) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), WAIT);
    const fn = (...a) => {
      if (!pred(...a)) return;
      clearTimeout(timer);
      socket.off(event, fn);
      resolve(a);
    };
    socket.on(event, fn);
  });

const until = async (check, what) => {
  const deadline = Date.now() + WAIT;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await sleep(20);
  }
};

// A client that records every event as its listeners see it (offset last).
const client = async (url, name) => {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  socket.seen = [];
  socket.onAny((event, ...a) => socket.seen.push([event, ...a]));
  const hello = waitFor(socket, "hello");
  socket.name = name;
  socket.hello = await hello;
  return socket;
};
const texts = (socket) => socket.seen.filter(([e]) => e === "room-message").map(([, text]) => text);

// The session a node keeps for this client, once it has the client in ``room``.
const redis = createClient({ url: scenario === "move" ? args[3] : args[4] });
await redis.connect();
const sessionHas = (socket, room) => async () => {
  const raw = await redis.get(`sio:session:${socket._pid}`);
  return raw !== null && decode(Buffer.from(raw, "base64")).rooms.includes(room);
};

// Back on another node: the same Manager, pointed at ``url``, sends pid and offset.
const comeBack = async (socket, url) => {
  socket.io.uri = url;
  const hello = waitFor(socket, "hello");
  socket.connect();
  await waitFor(socket, "connect");
  return { recovered: socket.recovered, hello: (await hello).slice(0, 2) };
};

const out = {};
if (scenario === "move") {
  const [from, to, sender] = args;
  const x = await client(from, "x");
  const y = await client(sender, "y");
  out.first = x.hello.slice(0, 2);
  const sid = x.id;
  await x.timeout(WAIT).emitWithAck("join", "r");
  await y.timeout(WAIT).emitWithAck("join", "r");
  const send = async (text) => {
    const seen = waitFor(y, "room-message", (t) => t === text);
    y.emit("to-room", "r", text);
    await seen;
  };
  await send("before");
  await until(() => texts(x).includes("before"), "before at x");
  const gone = waitFor(x, "disconnect");
  x.io.engine.close();
  out.reason = (await gone)[0];
  await until(sessionHas(x, "r"), "the session kept");
  for (const text of ["gap-1", "gap-2", "gap-3"]) await send(text);
  out.back = await comeBack(x, to);
  out.sameId = x.id === sid;
  await send("after");
  await until(() => texts(x).includes("after"), "after at x");
  out.texts = texts(x);
  out.lastArgs = x.seen.filter(([e]) => e === "room-message").map((e) => e.length);
} else if (scenario === "crash") {
  const [victim, victimPid, witnessUrl, other, , count, backUrl, mode] = args;
  const rooms = ["ra", "rb"];
  const xs = [];
  for (let i = 0; i < Number(count); i++) {
    const x = await client(victim, `x${i}`);
    await x.timeout(WAIT).emitWithAck("join", rooms[i % 2]);
    xs.push(x);
  }
  const witnesses = {};
  for (const room of rooms) {
    witnesses[room] = await client(witnessUrl, `w-${room}`);
    await witnesses[room].timeout(WAIT).emitWithAck("join", room);
  }
  for (const [i, x] of xs.entries()) await until(sessionHas(x, rooms[i % 2]), `session of x${i}`);
  const senders = [await client(witnessUrl, "s1"), await client(other, "s2")];
  let sending = true;
  const last = Object.fromEntries(rooms.map((room) => [room, []])); // per room, per sender
  const loops = senders.map(async (s, k) => {
    for (let n = 0; sending; n++) {
      for (const room of rooms) s.emit("to-room", room, (last[room][k] = `s${k + 1}-${room}-${n}`));
      await sleep(15);
    }
  });
  const stop = async () => {
    sending = false;
    await Promise.all(loops);
    const done = (room) => last[room].every((t) => texts(witnesses[room]).includes(t));
    await until(() => rooms.every(done), "the senders' last events");
  };
  await until(() => xs.every((x) => texts(x).length >= 6), "events flowing");
  const gone = xs.map((x) => waitFor(x, "disconnect"));
  process.kill(Number(victimPid), "SIGKILL");
  out.reasons = (await Promise.all(gone)).map(([reason]) => reason);
  await sleep(300); // events keep reaching the rooms while the clients are away
  if (mode === "quiet") await stop();
  out.back = [];
  out.gaps = []; // how many events each client's room got while it was away
  for (const [i, x] of xs.entries()) {
    out.gaps.push(texts(witnesses[rooms[i % 2]]).length - texts(x).length);
    out.back.push(await comeBack(x, backUrl));
  }
  if (mode !== "quiet") {
    const more = texts(witnesses.ra).length + 40;
    await until(() => texts(witnesses.ra).length >= more, "more events after recovery");
    await stop();
  }
  // One closing event per sender, one after the other, that every client must get.
  for (const [k, s] of senders.entries()) {
    for (const room of rooms) s.emit("to-room", room, `end-${k}`);
    for (const x of [...xs, ...Object.values(witnesses)]) {
      await until(() => texts(x).includes(`end-${k}`), `end-${k} at ${x.name}`);
    }
  }
  out.clients = xs.map((x, i) => ({ room: rooms[i % 2], texts: texts(x) }));
  out.witness = Object.fromEntries(rooms.map((r) => [r, texts(witnesses[r])]));
}
console.log(JSON.stringify(out));
await redis.quit();
process.exit(0);
