// The Admin UI's protocol with the official socket.io-client, as the UI speaks it.
// Usage: node admin_scenario.mjs <scenario> <url> <username> <password> [second node url]
// Prints one JSON line with what the clients observed; exits non-zero on failure.
import { io } from "socket.io-client";
import WebSocket from "ws";

const [scenario, url, username, password] = process.argv.slice(2);

const once = (emitter, event, ms = 8000) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });

/** Resolves with the first `event` whose arguments satisfy `test`. */
const until = (emitter, event, test, ms = 8000) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
    const listener = (...args) => {
      if (!test(...args)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args);
    };
    emitter.on(event, listener);
  });

const open = (nsp, auth) => io(url + nsp, { forceNew: true, reconnection: false, auth });

/** An admin connection that records what the server sends before "connect" is seen. */
const admin = (auth) => {
  const socket = open("/admin", auth);
  socket.got = {};
  for (const event of ["session", "config", "all_sockets", "server_stats"]) {
    socket.got[event] = once(socket, event);
    socket.got[event].catch(() => {});
  }
  return socket;
};

/** Resolves once `condition()` holds (checked every 20 ms). */
const waitFor = (condition, what, ms = 8000) =>
  new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const check = () => {
      if (condition()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timeout waiting for ${what}`));
      setTimeout(check, 20);
    };
    check();
  });

/**
 * Count, on a client's engine, what the reference server counts on its own for the
 * charts: each Engine.IO packet with data (its "packetCreate" and "packet" events),
 * `Buffer.byteLength(data)` bytes. What this client receives is what the server sent
 * (`out`), what it creates is what the server receives (`in`). `beforeStats` runs as
 * each `server_stats` packet arrives, before it is counted.
 */
const tally = (socket, counts, beforeStats) => {
  const engine = socket.io.engine;
  engine.on("packet", ({ type, data }) => {
    // The open packet is created before the reference server listens: never counted.
    if (type === "open" || !data) return;
    if (beforeStats && typeof data === "string" && data.startsWith('2/admin,["server_stats"')) {
      beforeStats();
    }
    counts.out.packets += 1;
    counts.out.bytes += Buffer.byteLength(data);
  });
  engine.on("packetCreate", ({ data }) => {
    if (!data) return;
    counts.in.packets += 1;
    counts.in.bytes += Buffer.byteLength(data);
  });
};

const user = async (room) => {
  const socket = open("/", { room });
  await once(socket, "connect");
  return socket;
};

const scenarios = {
  // Log in, list the sockets, watch an event, disconnect a user, log in again by session.
  async login() {
    const alice = await user("kitchen");
    const aliceId = alice.id; // socket.id is unset once disconnected
    const a = admin({ username, password });
    const [[session], [config], [sockets], [stats]] = await Promise.all(
      ["session", "config", "all_sockets", "server_stats"].map((e) => a.got[e]),
    );
    const listed = sockets.find((s) => s.id === alice.id);
    const received = until(a, "event_received", (nsp, id) => id === alice.id);
    alice.emit("shout", "hello", 42);
    const [nsp, , args] = await received;
    const joined = until(a, "room_joined", (n, room, id) => id === alice.id && room === "attic");
    a.emit("join", "/", "attic", alice.id);
    await joined;
    const gone = until(a, "socket_disconnected", (n, id) => id === aliceId);
    const aliceReason = once(alice, "disconnect");
    a.emit("_disconnect", "/", false, alice.id);
    const [[, , reason], [clientReason]] = await Promise.all([gone, aliceReason]);
    a.close();
    const again = admin({ sessionId: session });
    await once(again, "connect");
    again.close();
    return {
      session,
      features: config.supportedFeatures,
      listed,
      stats,
      event: { nsp, args },
      reason,
      clientReason,
      sessionLogin: true,
    };
  },

  async "wrong-password"() {
    const a = admin({ username, password: password + "x" });
    const [err] = await once(a, "connect_error");
    const b = admin({ username: username + "x", password });
    const [err2] = await once(b, "connect_error");
    const c = admin({ sessionId: "0123456789abcdef" });
    const [err3] = await once(c, "connect_error");
    return { errors: [err.message, err2.message, err3.message] };
  },

  // Read-only: the actions are not offered, and sent anyway they do nothing.
  async "read-only"() {
    const bob = await user("hall");
    const a = admin({ username, password });
    const [[config]] = await Promise.all([a.got.config]);
    a.emit("join", "/", "attic", bob.id);
    a.emit("_disconnect", "/", true, bob.id);
    a.emit("emit", "/", bob.id, "boo");
    let booed = false;
    bob.on("boo", () => (booed = true));
    // Two stats ticks later, the actions would have taken effect had the server run them.
    await once(a, "server_stats");
    await once(a, "server_stats");
    const b = admin({ username, password });
    const [[sockets]] = await Promise.all([b.got.all_sockets]);
    const listed = sockets.find((s) => s.id === bob.id);
    return { features: config.supportedFeatures, connected: bob.connected, rooms: listed.rooms, booed };
  },

  // The charts' packets and bytes, in and out, against what the clients counted: from
  // one stats tick after login to the second tick after two users came and went.
  async traffic() {
    const counts = { out: { packets: 0, bytes: 0 }, in: { packets: 0, bytes: 0 } };
    const checkpoints = []; // counts as each server_stats arrived, before it
    const stats = [];
    const a = admin({ username, password });
    tally(a, counts, () => checkpoints.push(structuredClone(counts)));
    a.on("server_stats", (s) => stats.push(s));
    await a.got.server_stats;
    await until(a, "server_stats", () => true, 15000);
    const first = stats.length - 1;

    const options = { forceNew: true, reconnection: false, auth: { room: "kitchen" } };
    const ws = io(url, { ...options, transports: ["websocket"] });
    const polling = io(url, { ...options, transports: ["polling"] });
    tally(ws, counts);
    tally(polling, counts);
    await Promise.all([once(ws, "connect"), once(polling, "connect")]);
    const ids = [ws.id, polling.id];
    // Characters of two, three and four UTF-8 bytes, binary both ways, acks, and a
    // room broadcast (one packet for two recipients).
    await ws.emitWithAck("echo", "héllo wörld ✓ 🎉", Buffer.from([0, 1, 2, 250, 255]));
    await polling.emitWithAck("echo", "ünïcödé", Buffer.from("binary over polling"));
    await ws.emitWithAck("echo", "", Buffer.alloc(0));
    const news = [once(ws, "news"), once(polling, "news")];
    await polling.emitWithAck("shout-room", "kitchen", "ça va? 👋");
    await Promise.all(news);
    const gone = ids.map((sid) => until(a, "socket_disconnected", (n, id) => id === sid, 15000));
    ws.disconnect();
    polling.disconnect();
    await Promise.all(gone);
    // The second tick from here counts nothing of theirs that the first did not.
    await until(a, "server_stats", () => true, 15000);
    await until(a, "server_stats", () => true, 15000);
    const last = stats.length - 1;
    const reported = {};
    for (const s of stats.slice(first + 1, last + 1)) {
      for (const e of s.aggregatedEvents) reported[e.type] = (reported[e.type] || 0) + e.count;
    }
    const diff = (k) => ({
      packets: checkpoints[last][k].packets - checkpoints[first][k].packets,
      bytes: checkpoints[last][k].bytes - checkpoints[first][k].bytes,
    });
    a.close();
    return { reported, expected: { out: diff("out"), in: diff("in") }, ticks: last - first };
  },

  // What happens to a socket reaches the UI as it happens, with no stats tick between
  // (the server's stats_interval is an hour): its rooms, its transport upgrade (made
  // by hand over raw Engine.IO, after the UI listed it on polling), its data.
  async "live-updates"() {
    const a = admin({ username, password });
    await a.got.server_stats;
    let ticks = 0;
    a.on("server_stats", () => (ticks += 1));
    const log = [];
    const kinds = ["socket_connected", "socket_updated", "socket_disconnected", "room_joined"];
    for (const kind of [...kinds, "room_left", "event_received", "event_sent"]) {
      a.on(kind, (...args) => log.push([kind, ...args]));
    }

    const base = `${url}/socket.io/?EIO=4&transport=polling`;
    const { sid } = JSON.parse((await (await fetch(base)).text()).slice(1));
    const session = `${base}&sid=${sid}`;
    await fetch(session, { method: "POST", body: "40" });
    const reply = (await (await fetch(session)).text()).split("\x1e")[0];
    const id = JSON.parse(reply.slice(2)).sid;
    const about = (e) =>
      ["socket_connected", "socket_updated"].includes(e[0]) ? e[1].id === id
      : ["socket_disconnected", "event_received", "event_sent"].includes(e[0]) ? e[2] === id
      : e[3] === id;
    const seen = (test, what) => waitFor(() => log.some((e) => about(e) && test(e)), what);
    await seen((e) => e[0] === "socket_connected", "socket_connected");

    const ws = new WebSocket(`${session.replace(/^http/, "ws").replace("polling", "websocket")}`);
    const frames = [];
    ws.on("message", (data) => frames.push(data.toString()));
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    ws.send("2probe");
    await waitFor(() => frames.includes("3probe"), "3probe");
    ws.send("5");
    await seen((e) => e[0] === "socket_updated" && e[1].transport === "websocket", "upgrade");

    ws.send('42["enter","attic"]');
    await seen((e) => e[0] === "socket_updated" && e[1].data, "data update");
    a.emit("join", "/", "roof", id);
    await seen((e) => e[0] === "room_joined" && e[2] === "roof", "room_joined roof");
    a.emit("leave", "/", "roof", id);
    await seen((e) => e[0] === "room_left" && e[2] === "roof", "room_left roof");
    ws.close();
    const left = () => log.filter((e) => about(e) && e[0] === "room_left").length;
    await waitFor(() => left() === 4, "the rooms left on disconnect");
    a.close();
    // Each event without its timestamp, in the order the UI got them.
    const shape = (e) => {
      switch (e[0]) {
        case "socket_connected":
          return [e[0], { transport: e[1].transport, rooms: [...e[1].rooms].sort(), clientId: e[1].clientId }];
        case "socket_updated": {
          const { id: _, nsp, ...rest } = e[1];
          return [e[0], rest];
        }
        case "socket_disconnected":
          return [e[0], e[3]];
        case "event_received":
        case "event_sent":
          return [e[0], e[3]];
        default:
          return [e[0], e[2] === id ? "<own>" : e[2]];
      }
    };
    return { id, clientId: sid.slice(0, 12), ticks, events: log.filter(about).map(shape) };
  },

  // Two nodes (the second node's url comes last):
  // a UI on the first sees both servers, a user of the second, and disconnects it.
  async cluster() {
    const other = process.argv[6];
    const servers = new Set();
    // Connected to node B before the UI logs in to node A: listed all the same.
    const dave = io(other, { forceNew: true, reconnection: false, transports: ["websocket"] });
    await once(dave, "connect");
    const a = admin({ username, password });
    const [allSockets] = await a.got.all_sockets;
    const earlier = allSockets.find((s) => s.id === dave.id);
    dave.disconnect();
    const both = until(a, "server_stats", (stats) => servers.add(stats.serverId).size >= 2, 15000);
    if (!a.connected) await once(a, "connect");
    await both;
    const carol = io(other, { forceNew: true, reconnection: false, auth: { room: "roof" } });
    const seen = until(a, "socket_connected", (s) => s.nsp === "/", 15000);
    await once(carol, "connect");
    const carolId = carol.id;
    const [listed] = await seen;
    // The UI on node A makes carol (on node B) join a room: node B reports it.
    const joined = until(a, "room_joined", (n, room, id) => id === carolId && room === "attic", 15000);
    a.emit("join", "/", "attic", carolId);
    const [, joinedRoom] = await joined;
    const gone = until(a, "socket_disconnected", (n, id) => id === carolId, 15000);
    const carolReason = once(carol, "disconnect", 15000);
    a.emit("_disconnect", "/", false, carolId);
    const [[, , reason], [clientReason]] = await Promise.all([gone, carolReason]);
    return { servers: [...servers].sort(), listed, joinedRoom, reason, clientReason, earlier };
  },
};

try {
  const result = await scenarios[scenario]();
  console.log(JSON.stringify(result));
  process.exit(0);
} catch (e) {
  console.error(e);
  process.exit(1);
}
