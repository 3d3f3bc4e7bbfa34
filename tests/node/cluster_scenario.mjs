// Drives a cluster of nodes (tests/live/cluster_node.py) with official socket.io-client
// clients, one per node, and prints one JSON object of observations.
// Usage: node cluster_scenario.mjs <url> <url> [<url>...]
import { io } from "socket.io-client";

const urls = process.argv.slice(2);
const WAIT = 8000;
const out = {};

function waitFor(socket, event, pred = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), WAIT);
    const fn = (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      socket.off(event, fn);
      resolve(args);
    };
    socket.on(event, fn);
  });
}

// record every event of every client, in order
const logs = [];
const clients = await Promise.all(urls.map(async (url, i) => {
  const socket = io(url, { transports: ["websocket"], reconnection: false });
  const log = [];
  logs[i] = log;
  socket.onAny((event, ...args) => log.push([event, ...args]));
  const [name] = await waitFor(socket, "hello");
  socket.on("question", (cb) => cb(name));
  return { socket, name };
}));
out.names = clients.map((c) => c.name);
const [a, b] = clients.map((c) => c.socket);
const ack = (s, ...args) => s.timeout(WAIT).emitWithAck(...args);

// A remote join travels on the request channel and a room broadcast on the room's own channel;
// on a Redis Cluster the two may reach a node in either order (as with Node's adapter), so wait
// until the cluster reports the join before sending to the room. Bounded: 80 x 100 ms.
async function untilInRoom(room, count) {
  for (let i = 0; i < 80; i++) {
    const sockets = await ack(a, "details");
    if (sockets.filter((d) => d.rooms.includes(room)).length >= count) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the cluster never reported ${count} sockets in ${room}`);
}

out.count = await ack(a, "count");
out.localCount = await ack(a, "local-count");

// broadcast from a: every client of the cluster, binary included
const got = clients.map((c) => waitFor(c.socket, "broadcast", (x) => x === "all"));
a.emit("broadcast", "all", 42, Buffer.from([1, 2, 3]), { k: null });
out.broadcast = (await Promise.all(got)).map(([tag, n, buf, obj]) => [tag, n, [...buf], obj]);

// rooms: b joins "r"; a sends to "r"; then a marker to all: only b saw the room message
out.join = await ack(b, "join", "r");
const roomGot = waitFor(b, "room-message");
a.emit("to-room", "r", "hi");
out.roomMessage = await roomGot;
const marks = clients.map((c) => waitFor(c.socket, "broadcast", (x) => x === "mark1"));
a.emit("broadcast", "mark1");
await Promise.all(marks);
out.roomSeenBy = logs.map((log) => log.filter((e) => e[0] === "room-message").length);

// server-side emit with acks, broadcast with acks across nodes
out.askServers = (await ack(a, "ask-servers")).sort();
out.askClients = (await ack(a, "ask-clients")).sort();

// fetch sockets details: remote ones carry rooms, data and handshake
out.details = await ack(a, "details");
out.allRooms = await ack(a, "all-rooms");

// sockets_join from a for everyone in "r" (b, remote) into "r2"; then to-room r2 reaches b
out.socketsJoin = await ack(a, "sockets-join", "r", "r2");
await untilInRoom("r2", 1);
const r2 = waitFor(b, "room-message", (x) => x === "to-r2");
a.emit("to-room", "r2", "to-r2");
out.r2 = await r2;
out.socketsLeave = await ack(a, "sockets-leave", "r", "r2");
out.allRoomsAfterLeave = await ack(a, "all-rooms");

// remote socket objects: emit and join through the cluster
const remoteGot = clients.slice(1).map((c) => waitFor(c.socket, "direct"));
out.remoteEmit = await ack(a, "remote-emit", "direct", "to-you");
out.remoteEmitGot = await Promise.all(remoteGot);
out.remoteJoin = await ack(a, "remote-join", "r3");
await untilInRoom("r3", clients.length - 1);
const r3 = clients.slice(1).map((c) => waitFor(c.socket, "room-message", (x) => x === "to-r3"));
a.emit("to-room", "r3", "to-r3");
out.r3 = await Promise.all(r3);

// local broadcast stays on a's node: a marker to all comes after, and b never saw it
const marks2 = clients.map((c) => waitFor(c.socket, "broadcast", (x) => x === "mark2"));
a.emit("local-broadcast", "local-only");
a.emit("broadcast", "mark2");
await Promise.all(marks2);
out.localSeenBy = logs.map((log) => log.filter((e) => e[0] === "broadcast" && e[1] === "local-only").length);

// disconnect_sockets across nodes: everyone in r3 (the remote clients) is disconnected
const gone = clients.slice(1).map((c) => waitFor(c.socket, "disconnect"));
out.disconnectRoom = await ack(a, "disconnect-room", "r3");
out.disconnectReasons = (await Promise.all(gone)).map(([reason]) => reason);
out.countAfter = await ack(a, "count");

for (const c of clients) c.socket.close();
console.log(JSON.stringify(out));
process.exit(0);
