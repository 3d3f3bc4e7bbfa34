// The Admin UI's protocol with the official socket.io-client, as the UI speaks it.
// Usage: node admin_scenario.mjs <scenario> <url> <username> <password> [second node url]
// Prints one JSON line with what the clients observed; exits non-zero on failure.
import { io } from "socket.io-client";

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
    const gone = until(a, "socket_disconnected", (n, id) => id === carolId, 15000);
    const carolReason = once(carol, "disconnect", 15000);
    a.emit("_disconnect", "/", false, carolId);
    const [[, , reason], [clientReason]] = await Promise.all([gone, carolReason]);
    return { servers: [...servers].sort(), listed, reason, clientReason, earlier };
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
