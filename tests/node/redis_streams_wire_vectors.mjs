// Runs the real @socket.io/redis-streams-adapter 0.3 with an in-memory stand-in for its
// (ioredis-shaped) Redis client and prints, as JSON, every stream entry it adds, every
// message it publishes and the session it persists: the vectors
// tests/unit/test_redis_streams_wire.py checks the Python encoder against.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { createAdapter } = require("@socket.io/redis-streams-adapter");
const { hashCode } = require("@socket.io/redis-streams-adapter/dist/util.js");
const msgpack = require("@msgpack/msgpack");

const out = [];
let current = "";
const fakeClient = () => ({
  options: {},
  on() {},
  duplicate() { return fakeClient(); },
  disconnect() {},
  subscribe() {},
  xread() { return new Promise(() => {}); },
  xadd(args) {
    const [stream, , , maxLen, id, ...kv] = args;
    const fields = [];
    for (let i = 0; i < kv.length; i += 2) fields.push([kv[i], kv[i + 1]]);
    out.push({ name: current, kind: "xadd", stream, maxLen, id, fields });
    return Promise.resolve("1700000000000-0");
  },
  publish(channel, payload) {
    out.push({ name: current, kind: "publish", channel, hex: Buffer.from(payload).toString("hex") });
    return Promise.resolve(1);
  },
  set(key, value, px, ms) {
    out.push({ name: current, kind: "set", key, value, px, ms });
    return Promise.resolve("OK");
  },
  send_command(cmd, args, cb) { cb(null, [args[1], 2]); },
});

const nsp = {
  name: "/",
  sockets: new Map(),
  _ids: 0,
  server: { encoder: { encode: (p) => [JSON.stringify(p)] }, opts: { connectionStateRecovery: { maxDisconnectionDuration: 120000 } } },
  _onServerSideEmit(data) { const cb = data[data.length - 1]; if (typeof cb === "function") cb("node-a"); },
};
const adapter = createAdapter(fakeClient(), { streamName: "sio-stream", channelPrefix: "sio-ch", maxLen: 500 })(nsp);
adapter.uid = "nodeAA";

const acks = new Map();
const sock = { id: "sidA", rooms: new Set(["sidA", "r1"]), data: { name: "ann" }, acks,
  handshake: { headers: { host: "h" }, time: "T", address: "127.0.0.1", xdomain: false, secure: false,
    issued: 1700000000000, url: "/socket.io/?EIO=4", query: { EIO: "4" }, auth: { token: "x" } },
  client: { writeToEngine() {} }, join() {}, leave() {}, disconnect() {} };
nsp.sockets.set("sidA", sock);
adapter.addAll("sidA", new Set(["sidA", "r1"]));

const tick = () => new Promise((r) => setTimeout(r, 10));
const step = async (name, fn) => { current = name; await fn(); await tick(); };
const none = { rooms: new Set(), except: new Set(), flags: {} };

await step("broadcast_json", () => adapter.broadcast({ type: 2, data: ["ev", 1, -2, "é", null, { a: true }, 1.5, [300, 70000]] }, none));
await step("broadcast_binary", () => adapter.broadcast({ type: 2, data: ["bin", Buffer.from([1, 2, 3]), { n: 1 }] },
  { rooms: new Set(["r1"]), except: new Set(["r2"]), flags: {} }));
await step("broadcast_volatile", () => adapter.broadcast({ type: 2, data: ["v"] },
  { rooms: new Set(["r1"]), except: new Set(), flags: { volatile: true } }));
await step("sockets_join", () => adapter.addSockets({ rooms: new Set(["r1"]), except: new Set(), flags: {} }, ["r9"]));
await step("sockets_leave", () => adapter.delSockets({ rooms: new Set(), except: new Set(["r2"]), flags: {} }, ["r9"]));
await step("disconnect_sockets", () => adapter.disconnectSockets({ rooms: new Set(["r1"]), except: new Set(), flags: {} }, true));
await step("broadcast_ack", () => adapter.broadcastWithAck({ type: 2, data: ["question", 7] },
  { rooms: new Set(), except: new Set(), flags: { timeout: 2000 } }, () => {}, () => {}));
await step("fetch_sockets", () => { adapter.fetchSockets({ rooms: new Set(["r1"]), except: new Set(["r2"]), flags: {} }).catch(() => {}); });
await step("server_side_emit", () => adapter.serverSideEmit(["hello", 1, "two"]));
await step("server_side_emit_ack", () => { adapter.serverSideEmit(["who", () => {}]); });
await step("persist_session", () => adapter.persistSession({ sid: "sidA", pid: "pidA", rooms: ["sidA", "r1"], data: { name: "ann", n: 3 } }));

// answers to requests from a peer "peerBB"
const request = (type, data) => adapter.onMessage({ uid: "peerBB", nsp: "/", type, data });
await step("fetch_sockets_response", () => request(7, { opts: { rooms: ["r1"], except: [], flags: {} }, requestId: "rqFETC" }));
await step("server_side_emit_response", () => request(9, { requestId: "rqSSEA", packet: ["who"] }));
await step("client_count_response", () => request(3, { requestId: "rqBACK", packet: { type: 2, data: ["question"] },
  opts: { rooms: [], except: [], flags: { timeout: 2000 } } }));
await step("broadcast_ack_response", () => [...acks.values()].pop()({ answer: Buffer.from([9]), n: null }));

const hashes = Object.fromEntries(["/", "/chat", "/admin", "é/ü", "/a-much-longer-namespace-name-0123456789", "/orders", "/😀", "/notifications"].map((n) => [n, hashCode(n)]));
// a session as Node writes it, and an entry a Node reader decodes back
const session = Buffer.from(msgpack.encode({ sid: "s", pid: "p", rooms: ["s"], data: {} })).toString("base64");
console.log(JSON.stringify({ out, hashes, session }));
process.exit(0);
