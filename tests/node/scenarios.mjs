// Scenarios for the official socket.io-client against a realtime server.
// Usage: node scenarios.mjs <scenario> <url> [transports]
// Prints one JSON line with what the client observed; exits non-zero on failure.
import { io, Manager } from "socket.io-client";

const [scenario, url, transportsArg] = process.argv.slice(2);
const transports = transportsArg ? transportsArg.split(",") : ["polling", "websocket"];

const once = (emitter, event, ms = 4000) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });

const connect = (nsp = "/", opts = {}) => {
  const socket = io(url + nsp, { transports, forceNew: true, reconnection: false, ...opts });
  // Listen before connecting: the server emits "welcome" right after CONNECT.
  socket.welcome = once(socket, "welcome");
  socket.welcome.catch(() => {});
  return socket;
};

const connected = async (socket) => {
  if (!socket.connected) await once(socket, "connect");
  return socket;
};

const bytes = (value) => (value instanceof ArrayBuffer || ArrayBuffer.isView(value) ? Array.from(new Uint8Array(value.buffer ?? value, value.byteOffset ?? 0, value.byteLength)) : value);

const scenarios = {
  // Connect, exchange, and report which transport carried it all.
  async basic() {
    const socket = await connected(connect("/", { auth: { token: "abc" } }));
    const engine = socket.io.engine;
    if (transports.length > 1 && transports[0] === "polling" && engine.transport.name !== "websocket") {
      await once(engine, "upgrade");
    }
    const [auth] = await socket.welcome;
    const echoed = once(socket, "echo");
    socket.emit("echo", 1, "two", { three: [true, null] });
    const [echoArgs] = [await echoed];
    const ack = await socket.timeout(3000).emitWithAck("with-ack", "a", 2);
    const multi = await new Promise((resolve, reject) =>
      socket.timeout(3000).emit("multi-ack", (err, ...args) => (err ? reject(err) : resolve(args)))
    );
    const transport = engine.transport.name;
    socket.disconnect();
    return { id: typeof socket.id, auth, echoArgs, ack, multi, transport };
  },

  async binary() {
    const socket = await connected(connect("/"));
    await socket.welcome;
    const echoed = once(socket, "echo");
    socket.emit("echo", "file", Buffer.from([1, 2, 3]), { nested: [Buffer.from([4, 5])] });
    const echoArgs = await echoed;
    const ack = await socket.timeout(3000).emitWithAck("with-ack", Buffer.from([9, 8]));
    // The server asks us and we answer with binary; it reports what it received.
    socket.on("question", (value, callback) => callback(value, Buffer.from([7, 7, 7])));
    const [answer] = await Promise.all([once(socket, "answer"), socket.emit("ask-me", Buffer.from([6]))]);
    const transport = socket.io.engine.transport.name;
    socket.disconnect();
    return {
      echo: [echoArgs[0], bytes(echoArgs[1]), bytes(echoArgs[2].nested[0])],
      ack: bytes(ack[0]),
      answer: answer[0],
      transport,
    };
  },

  // The server emits with an ack and awaits the client's answer.
  async serverAck() {
    const socket = await connected(connect("/"));
    await socket.welcome;
    socket.on("question", (value, callback) => callback(value * 2, "ok"));
    const [answer] = await Promise.all([once(socket, "answer"), socket.emit("ask-me", 21)]);
    socket.disconnect();
    return { answer: answer[0] };
  },

  // Several namespaces over one Engine.IO connection.
  async namespaces() {
    const manager = new Manager(url, { transports, reconnection: false });
    const main = manager.socket("/");
    const a = manager.socket("/a", { auth: { who: "a" } });
    await Promise.all([connected(main), connected(a)]);
    const sameEngine = main.io === a.io && main.io.engine.id === a.io.engine.id;
    const [fromA] = await Promise.all([once(a, "where"), a.emit("where")]);
    const [fromMain] = await Promise.all([once(main, "where"), main.emit("where")]);
    const [dyn] = await (async () => {
      const d = manager.socket("/dyn-42");
      await connected(d);
      const r = await Promise.all([once(d, "where"), d.emit("where")]);
      d.disconnect();
      return r;
    })();
    a.disconnect();
    // The main namespace still works after /a left.
    const [again] = await Promise.all([once(main, "where"), main.emit("where")]);
    main.disconnect();
    return { sameEngine, fromA, fromMain, dyn, again };
  },

  async connectError() {
    const refused = io(url + "/private", { transports, reconnection: false, auth: { token: "wrong" } });
    const [err] = await once(refused, "connect_error");
    refused.close();
    const unknown = io(url + "/nowhere", { transports, reconnection: false });
    const [err2] = await once(unknown, "connect_error");
    unknown.close();
    const allowed = io(url + "/private", { transports, reconnection: false, auth: { token: "secret" } });
    await connected(allowed);
    const ok = allowed.connected;
    allowed.close();
    return { message: err.message, data: err.data, unknown: err2.message, ok };
  },

  // Four clients; rooms decide who hears what.
  async rooms() {
    const names = ["c1", "c2", "c3", "c4"];
    const sockets = await Promise.all(
      names.map((name) => connected(connect("/", { auth: { name } })))
    );
    await Promise.all(sockets.map((s) => s.welcome));
    const heard = Object.fromEntries(names.map((n) => [n, []]));
    sockets.forEach((s, i) => s.on("news", (from, text) => heard[names[i]].push(`${from}:${text}`)));
    // c1, c2, c3 join "red"; c3 also "vip"; c4 nowhere.
    await Promise.all(
      sockets.slice(0, 3).map((s) => s.timeout(3000).emitWithAck("join", "red"))
    );
    await sockets[2].timeout(3000).emitWithAck("join", "vip");
    // c1 -> socket.to("red"): c2, c3 (not the sender).
    await sockets[0].timeout(3000).emitWithAck("to-room", "red", "one");
    // c4 -> server-wide sio.to("red").except_("vip"): c1, c2.
    await sockets[3].timeout(3000).emitWithAck("server-to-room-except", "red", "vip", "two");
    // c2 -> socket.broadcast: everyone but c2.
    await sockets[1].timeout(3000).emitWithAck("broadcast", "three");
    // Broadcast with acks from every socket in "red".
    sockets.forEach((s, i) => s.on("poll", (cb) => cb(names[i])));
    const answers = await sockets[3].timeout(4000).emitWithAck("poll-room", "red");
    await new Promise((r) => setTimeout(r, 200));
    sockets.forEach((s) => s.disconnect());
    for (const n of names) heard[n].sort();
    return { heard, answers: answers.sort() };
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
