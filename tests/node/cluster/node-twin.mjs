// The Node twin of examples/cluster/node.py: one socket.io 4.8 node of a cluster
// joined through @socket.io/redis-adapter 8.3 (or, with --adapter streams,
// @socket.io/redis-streams-adapter 0.3: KEY is then its stream name and channel
// prefix), with the reference handlers on "/". --recovery turns connection state
// recovery on (120 s, skipMiddlewares) with the streams adapter; "hello" then
// carries the name and socket.recovered.
//
//   node node-twin.mjs --port N --redis URL --name NAME [--key KEY] [--namespace /chat]...
//                      [--adapter redis|streams] [--recovery]
//
// Handlers on "/": broadcast, join, to-room, count, ask-servers, ask-clients (as
// node.py), plus test helpers "notes" (the server-side "note" events this node
// got) and "rooms" (the socket's rooms). Each --namespace (default /chat) only
// greets with "hello". Prints "ready" once it listens and its adapters have
// subscribed to Redis; cluster requests time out after 3 s.
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";

const { values: opts } = parseArgs({
  options: {
    port: { type: "string" },
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    name: { type: "string", default: "node-twin" },
    key: { type: "string", default: "socket.io" },
    // extra namespaces with the same connect greeting, for per-namespace tests
    namespace: { type: "string", multiple: true, default: ["/chat"] },
    adapter: { type: "string", default: "redis" },
    recovery: { type: "boolean", default: false },
  },
});
const NAME = opts.name;
const STREAMS = opts.adapter === "streams" || opts.recovery;
// Named connections: the streams adapter's reader is found by name in CLIENT LIST.
const CLIENT_NAME = `twin-${NAME}-${process.pid}`;

const pubClient = createClient({ url: opts.redis, name: CLIENT_NAME });
const subClient = pubClient.duplicate();
for (const client of [pubClient, subClient]) {
  client.on("error", (err) => console.error(`${NAME}: redis error: ${err.message}`));
}
await Promise.all([pubClient.connect(), subClient.connect()]);

const httpServer = createServer();
const io = new Server(httpServer, {
  adapter: STREAMS
    ? createStreamsAdapter(pubClient, { streamName: opts.key, channelPrefix: opts.key })
    : createAdapter(pubClient, subClient, { key: opts.key, requestsTimeout: 3000 }),
  ...(opts.recovery
    ? { connectionStateRecovery: { maxDisconnectionDuration: 120000, skipMiddlewares: true } }
    : {}),
});

// Server-side events from other nodes or from an emitter.
io.on("who", (ack) => {
  if (typeof ack === "function") ack(NAME);
});
const notes = [];
io.on("note", (...args) => notes.push(args));

io.on("connection", (socket) => {
  if (opts.recovery) socket.emit("hello", NAME, socket.recovered);
  else socket.emit("hello", NAME);
  socket.on("broadcast", (...args) => io.emit("broadcast", ...args));
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack(true);
  });
  socket.on("to-room", (room, ...args) => io.to(room).emit("room-message", ...args));
  socket.on("count", async (ack) => ack((await io.fetchSockets()).length));
  socket.on("ask-servers", async (ack) => {
    try {
      ack(await io.serverSideEmitWithAck("who"));
    } catch (err) {
      ack({ error: err.message });
    }
  });
  socket.on("ask-clients", async (ack) => {
    try {
      ack(await io.timeout(2000).emitWithAck("question"));
    } catch (err) {
      ack({ error: err.message });
    }
  });
  // test helpers: this node's record of server-side "note" events, and a socket's rooms
  socket.on("notes", (ack) => ack(notes));
  socket.on("rooms", (ack) => ack([...socket.rooms]));
});

for (const name of opts.namespace) {
  io.of(name).on("connection", (socket) => socket.emit("hello", NAME));
}

// The adapters subscribe without telling when Redis confirmed. Redis answers a
// connection's commands in order, so once one more subscription on the same
// connection is confirmed, theirs are too. The streams adapter uses connections
// of its own: wait until its private channel has a subscriber and its reader
// blocks in XREAD (entries added before that would not reach it).
if (STREAMS) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const channel = `${opts.key}#/#${io.of("/").adapter.uid}#`;
  for (;;) {
    const [, subscribers] = await pubClient.sendCommand(["PUBSUB", "NUMSUB", channel]);
    const clients = await pubClient.sendCommand(["CLIENT", "LIST"]);
    const reading = clients.split("\n").some((l) => l.includes(`name=${CLIENT_NAME} `) && l.includes("cmd=xread"));
    if (Number(subscribers) > 0 && reading) break;
    await sleep(20);
  }
} else {
  await subClient.subscribe(`${opts.key}-ready#${NAME}#`, () => {});
}
httpServer.listen(Number(opts.port), "127.0.0.1", () => console.log("ready"));

function shutdown() {
  io.close();
  Promise.allSettled([pubClient.quit(), subClient.quit()]).then(() => process.exit(0));
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
