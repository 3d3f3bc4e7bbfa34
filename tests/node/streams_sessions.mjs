// A socket.io 4.8 server with @socket.io/redis-streams-adapter 0.3 and recovery on,
// on a real Redis, for tests/live/test_redis_streams_recovery.py: it writes a session
// and events the Python adapter restores, or restores a session Python wrote.
//
// KEY is the stream name, the channel prefix and, with ":session:", the session key prefix.
//   node streams_sessions.mjs <redis-url> <key> write <pid>
//     persists {sid: "node-sid", pid, rooms: ["node-sid", "r"], data: {from: "node"}}
//     as a disconnecting socket would, then emits to "r", to all and to "other".
//   node streams_sessions.mjs <redis-url> <key> restore <pid> <offset>
//     prints the session restoreSession gives back (with its missedPackets).
// Prints one JSON line.
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";

const [url, key, mode, pid, offset] = process.argv.slice(2);
const client = createClient({ url });
await client.connect();
const io = new Server({
  adapter: createAdapter(client, { streamName: key, channelPrefix: key, sessionKeyPrefix: `${key}:session:` }),
  connectionStateRecovery: { maxDisconnectionDuration: 120000 },
});
const adapter = io.of("/").adapter;
let out;
if (mode === "write") {
  adapter.persistSession({ sid: "node-sid", pid, rooms: ["node-sid", "r"], data: { from: "node" } });
  io.to("r").emit("from-node", 1, Buffer.from([7]));
  io.emit("from-node", 2);
  io.to("other").emit("from-node", 3);
  await new Promise((r) => setTimeout(r, 300)); // the XADDs are not awaited by emit
  out = { ok: true };
} else {
  try {
    const session = await adapter.restoreSession(pid, offset);
    session.missedPackets = session.missedPackets.map((args) =>
      args.map((a) => (a instanceof Uint8Array ? { bytes: [...a] } : a)));
    out = { session };
  } catch (err) {
    out = { error: String(err) };
  }
}
console.log(JSON.stringify(out));

await client.quit().catch(() => {});
process.exit(0);
