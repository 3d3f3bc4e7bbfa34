// Runs the real @socket.io/redis-adapter 8.3 with in-memory stand-ins for its Redis
// clients and prints, as JSON lines, every message it publishes: the byte vectors
// tests/unit/test_redis_wire.py checks the Python encoder against.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { RedisAdapter } = require("@socket.io/redis-adapter");
const msgpack = require("notepack.io");

const published = [];
const fakeClient = () => ({
  psubscribe() {}, subscribe() {}, on() {}, off() {},
  publish(channel, msg) { published.push({ channel, msg: Buffer.from(msg) }); return Promise.resolve(1); },
});
const nsp = { name: "/", sockets: new Map(), _ids: 0, server: { encoder: { encode: (p) => [JSON.stringify(p)] } },
  _onServerSideEmit(data) { const cb = data[data.length - 1]; if (typeof cb === "function") cb("node-a"); } };
const adapter = new RedisAdapter(nsp, fakeClient(), fakeClient(), { key: "socket.io" });
adapter.uid = "nodeAA";
adapter.serverCount = async () => 2;

// one local socket, in room "r1", with handshake and data as a Node server has them
const acks = new Map();
const sock = { id: "sidA", rooms: new Set(["sidA", "r1"]), data: { name: "ann" }, acks,
  handshake: { headers: { host: "h" }, time: "T", address: "127.0.0.1", xdomain: false, secure: false,
    issued: 1700000000000, url: "/socket.io/?EIO=4", query: { EIO: "4" }, auth: { token: "x" } },
  client: { writeToEngine() {} } };
nsp.sockets.set("sidA", sock);
adapter.addAll("sidA", new Set(["sidA", "r1"]));

const out = [];
const take = (name, extra = {}) => {
  for (const { channel, msg } of published.splice(0)) out.push({ name, channel, hex: msg.toString("hex"), ...extra });
};
const date = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));

adapter.broadcast({ type: 2, data: ["ev", 1, -2, "é", Buffer.from([1, 2, 3]), null, { a: true }, 1.5, [300, 70000]] },
  { rooms: new Set(), except: new Set(), flags: {} });
take("broadcast_all");
adapter.broadcast({ type: 2, data: ["ev", "x"] }, { rooms: new Set(["r1"]), except: new Set(["r2"]), flags: { volatile: true } });
take("broadcast_room");
adapter.broadcast({ type: 2, data: ["when", date] }, { rooms: new Set(), except: new Set(), flags: {} });
take("broadcast_date");
adapter.broadcastWithAck({ type: 2, data: ["question", 7] }, { rooms: new Set(), except: new Set(), flags: { timeout: 2000 } }, () => {}, () => {});
take("broadcast_ack_request");
adapter.allRooms().catch(() => {});
await new Promise((r) => setTimeout(r, 10));
take("all_rooms_request");
adapter.fetchSockets({ rooms: new Set(["r1"]), except: new Set(["r2"]) }).catch(() => {});
await new Promise((r) => setTimeout(r, 10));
take("fetch_request");
adapter.addSockets({ rooms: new Set(["r1"]), except: new Set() }, new Set(["r9"]));
take("join_request");
adapter.delSockets({ rooms: new Set(), except: new Set(["r2"]) }, new Set(["r9"]));
take("leave_request");
adapter.disconnectSockets({ rooms: new Set(["r1"]), except: new Set() }, true);
take("disconnect_request");
adapter.serverSideEmit(["hello", 1, "two"]);
take("server_side_emit_request");
adapter.serverSideEmit(["who", () => {}]);
await new Promise((r) => setTimeout(r, 10));
take("server_side_emit_ack_request");

// answers to requests from a peer "peerBB"
const req = (obj) => adapter.onrequest("socket.io-request#/#", Buffer.from(JSON.stringify(obj)));
await req({ uid: "peerBB", requestId: "rqALLR", type: 1 });
take("rooms_response");
await req({ uid: "peerBB", requestId: "rqFETC", type: 5, opts: { rooms: ["r1"], except: [] } });
take("fetch_response");
await req({ uid: "peerBB", requestId: "rqSOCK", type: 0, rooms: ["r1"] });
take("sockets_response");
await req({ uid: "peerBB", requestId: "rqSSEA", type: 6, data: ["who"] });
take("server_side_emit_response");
await adapter.onrequest("socket.io-request#/#", msgpack.encode({ uid: "peerBB", requestId: "rqBACK", type: 7,
  packet: { type: 2, data: ["question"], nsp: "/" }, opts: { rooms: [], except: [], flags: { timeout: 2000 } } }));
take("client_count_response");
[...acks.values()].pop()({ answer: Buffer.from([9]), n: null });
take("broadcast_ack_response");
console.log(JSON.stringify(out));
