// A mixed cluster: one official socket.io-client per node (Python nodes running
// examples/cluster/node.py handlers, Node nodes running cluster/node-twin.mjs),
// every reference operation started from each node in turn. Prints JSON.
// Usage: node mixed_scenario.mjs <url> <url> [<url>...]
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

const clients = await Promise.all(urls.map(async (url) => {
  const socket = io(url, { transports: ["websocket"], reconnection: false });
  const [name] = await waitFor(socket, "hello");
  socket.on("question", (cb) => cb(name));
  return { socket, name };
}));
out.names = clients.map((c) => c.name);
const ack = (s, ...args) => s.timeout(WAIT).emitWithAck(...args);

out.perNode = [];
for (const [i, { socket, name }] of clients.entries()) {
  const row = { from: name };
  row.count = await ack(socket, "count");
  // a broadcast from this node reaches every client, binary intact
  const tag = `all-from-${name}`;
  const got = clients.map((c) => waitFor(c.socket, "broadcast", (x) => x === tag));
  socket.emit("broadcast", tag, Buffer.from([i, 255]), { n: i, none: null });
  row.broadcast = (await Promise.all(got)).map(([t, buf, obj]) => [t, [...buf], obj]);
  // the next client joins a room; this node sends to it
  const member = clients[(i + 1) % clients.length];
  const room = `room-${name}`;
  row.join = await ack(member.socket, "join", room);
  const roomGot = waitFor(member.socket, "room-message", (x) => x === room);
  socket.emit("to-room", room, room, i);
  row.room = [member.name, ...(await roomGot)];
  row.askServers = (await ack(socket, "ask-servers")).sort();
  row.askClients = (await ack(socket, "ask-clients")).sort();
  out.perNode.push(row);
}

for (const c of clients) c.socket.close();
console.log(JSON.stringify(out));
process.exit(0);
