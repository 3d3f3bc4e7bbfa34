// Differential scenarios: each one runs with the official socket.io-client 4.8 and with ours,
// against the Node socket.io 4.8 server and against our Python server, and the two traces
// (events in order, disconnect reasons, ack results, what the server echoed back) must be
// equal. A difference fails unless the scenario names it and it is a row of the
// differences table in client-js/README.md.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import * as official from "socket.io-client";
import * as ours from "../dist/index.mjs";
import { startServer, next, scenarioServers, waitFor, DOCUMENTED } from "./harness.mjs";

const CLIENTS = { official, ours };

/** A JSON-comparable form: binary keeps its kind and bytes, errors their message. */
function norm(v) {
  if (v instanceof Error) return { Error: v.message, ...(v.data !== undefined ? { data: norm(v.data) } : {}) };
  if (Buffer.isBuffer(v)) return { Buffer: [...v] };
  if (v instanceof ArrayBuffer) return { ArrayBuffer: [...new Uint8Array(v)] };
  if (ArrayBuffer.isView(v)) return { [v.constructor.name]: [...new Uint8Array(v.buffer, v.byteOffset, v.byteLength)] };
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  return v;
}

const settle = (p) => p.then((v) => ["resolved", v], (e) => ["rejected", e.message]);

/**
 * Runs `scenario` with one client library; returns its trace. Exceptions that escape to
 * the process (from the app's listeners) are recorded in the trace instead of failing.
 */
async function run(lib, url, scenario, srv) {
  const trace = [];
  const t = (...entry) => trace.push(norm(entry));
  const sockets = [];
  const client = (path = "", opts = {}) => {
    const s = lib.io(url + path, { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200, ...opts });
    sockets.push(s);
    return s;
  };
  const saved = process.listeners("uncaughtException");
  process.removeAllListeners("uncaughtException");
  const uncaught = (e) => t("uncaught", e.message);
  process.on("uncaughtException", uncaught);
  try {
    await scenario.run({ t, client, lib, url, srv, sockets });
  } finally {
    process.off("uncaughtException", uncaught);
    for (const l of saved) process.on("uncaughtException", l);
    for (const s of sockets) s.io.disconnect();
  }
  return trace;
}

const connected = async (s) => {
  await next(s, "connect", 10000);
  return s;
};

const SCENARIOS = [
  {
    name: "an event listener that throws",
    async run({ t, client }) {
      const s = await connected(client());
      s.on("disconnect", (r) => t("disconnect", r));
      s.once("message-back", (v) => {
        t("message-back", v);
        throw new Error("listener boom");
      });
      s.on("message-back", (v) => t("second listener", v));
      s.emit("message", 1);
      t("echo", await s.emitWithAck("echo", "after"));
      s.emit("message", 2);
      t("echo", await s.emitWithAck("echo", "after 2"));
      t("connected", s.connected);
    },
  },
  {
    name: "a connect listener that throws",
    async run({ t, client }) {
      const s = client("", { transports: ["websocket"] });
      s.on("disconnect", (r) => t("disconnect", r));
      const c = next(s, "connect");
      s.once("connect", () => {
        t("connect");
        throw new Error("connect boom");
      });
      await c;
      t("echo", await s.emitWithAck("echo", 1));
      t("connected", s.connected, s.io.engine.transport.name);
    },
  },
  {
    name: "acks settle on disconnect",
    async run({ t, client }) {
      const s = await connected(client());
      const plain = [];
      const p = [
        settle(s.emitWithAck("ignore")),
        settle(s.timeout(10000).emitWithAck("ignore")),
        new Promise((r) => s.timeout(10000).emit("ignore", (err) => r(err))),
      ];
      s.emit("ignore", (...a) => plain.push(a));
      s.emit("server-disconnect");
      t("disconnect", (await next(s, "disconnect"))[0]);
      t("acks", await Promise.all(p), plain);
      const c = await connected(client());
      const q = settle(c.emitWithAck("ignore"));
      c.disconnect();
      t("client disconnect", await q);
    },
  },
  {
    name: "retries",
    async run({ t, client }) {
      const s = client("", { retries: 3, ackTimeout: 300 });
      await connected(s);
      const key = "k" + Math.random();
      t("flaky", await new Promise((res) => s.emit("flaky", key, (...a) => res(a))));
      t("after", await s.emitWithAck("echo", "after"));
      // gives up after `retries`
      const g = await connected(client("", { retries: 1, ackTimeout: 200 }));
      t("gave up", await new Promise((res) => g.emit("ignore", (...a) => res(a))));
      // emitted in the connect listener: sent once (its retry is due 5 s later). A volatile
      // probe bypasses the queue; whatever the server received before it came back first.
      const r = client("", { retries: 1, ackTimeout: 5000, transports: ["websocket"] });
      const got = [];
      const probed = new Promise((res) =>
        r.on("message-back", (v) => {
          got.push(v);
          if (got.length === 1) r.volatile.emit("echo", "probe", (...a) => res(a));
        }),
      );
      r.once("connect", () => r.emit("message", "from connect"));
      t("probe", await probed, "received before it", got.slice());
    },
  },
  {
    name: "offline buffer",
    async run({ t, client }) {
      const s = client("", { autoConnect: false });
      const got = [];
      s.on("message-back", (v) => got.push(v));
      s.volatile.emit("message", "volatile before connect");
      s.emit("message", "buffered 1");
      s.emit("message", "buffered 2", { nested: [Buffer.from([1])] });
      const ack = settle(s.emitWithAck("echo", "buffered ack"));
      s.connect();
      await connected(s);
      t("ack", await ack);
      t("echo", await s.emitWithAck("echo", "flush"));
      t("received", got);
    },
  },
  {
    name: "volatile",
    async run({ t, client }) {
      const s = await connected(client("", { transports: ["websocket"] }));
      const got = [];
      s.on("message-back", (v) => got.push(v));
      for (let i = 0; i < 3; i++) s.volatile.emit("message", i);
      t("echo", await s.emitWithAck("echo", "flush"));
      t("received", got);
    },
  },
  {
    name: "server restart",
    timeout: 60000,
    differences: ["volatile-offline"],
    async run({ t, client, srv }) {
      let calls = 0;
      const s = client("", { auth: (cb) => cb({ token: "t", call: ++calls }) });
      // stopped once on WebSocket: a stop during the upgrade races with the probe
      const upgraded = next(s.io.engine, "upgrade");
      await connected(s);
      await upgraded;
      t("auth", await s.emitWithAck("get-auth"));
      const d = next(s, "disconnect", 10000);
      await srv.stop();
      t("disconnect", (await d)[0], s.connected);
      const got = [];
      s.on("message-back", (v) => got.push(v));
      s.emit("message", "offline 1");
      s.emit("message", "offline 2");
      s.volatile.emit("message", "volatile offline");
      const ack = settle(s.emitWithAck("echo", "offline ack"));
      const again = next(s, "connect", 30000);
      await srv.restart();
      await again;
      t("reconnected");
      t("ack", await ack);
      t("echo", await s.emitWithAck("echo", "flush"));
      t("received", got);
      t("auth", await s.emitWithAck("get-auth"), calls);
    },
  },
  ...["polling", "websocket"].map((transport) => ({
    name: `binary of every kind (${transport})`,
    async run({ t, client }) {
      const s = await connected(client("", { transports: [transport] }));
      const base = new Uint8Array([0, 1, 2, 254, 255, 7, 8, 9]);
      const values = [
        base.buffer.slice(0),
        new Uint8Array([1, 2, 3]),
        new Uint8Array(base.buffer, 2, 3),
        new Int8Array([-1, 2]),
        new Uint16Array([258, 65535]),
        new Float64Array([1.5]),
        new DataView(base.buffer, 1, 2),
        Buffer.from([4, 5, 6]),
        Buffer.alloc(0),
        { nested: { deep: [new Uint8Array([9]), "text", Buffer.from("é")] } },
      ];
      for (const v of values) t("echo", await new Promise((r) => s.emit("echo", v, (...a) => r(a))));
      t("echo several", await new Promise((r) => s.emit("echo", values[1], values[7], values[9], (...a) => r(a))));
      s.emit("message", Buffer.from([1, 2]), "plain");
      t("message-back", await next(s, "message-back"));
      s.on("server-ask", (a, ack) => ack(a, Buffer.from([42])));
      s.emit("request-ack", { event: "server-ask", args: [Buffer.from([3])], timeout: 5000 });
      t("ack-result", await next(s, "ack-result"));
    },
  })),
  {
    name: "auth as a function",
    async run({ t, client }) {
      let calls = 0;
      const s = await connected(client("", { auth: (cb) => cb({ token: "fn", n: ++calls }) }));
      t("auth", await s.emitWithAck("get-auth"), calls);
      const r = client("", { auth: (cb) => cb({ token: "reject" }) });
      const [err] = await next(r, "connect_error");
      t("connect_error", err, r.connected, r.active);
      const a = client("", { auth: { token: "object" } });
      await connected(a);
      t("auth object", await a.emitWithAck("get-auth"));
    },
  },
  {
    name: "namespaces multiplexed",
    async run({ t, lib, url, sockets }) {
      const m = new lib.Manager(url, { reconnectionDelay: 100 });
      const a = m.socket("/");
      const b = m.socket("/custom");
      sockets.push(a, b);
      await Promise.all([connected(a), connected(b)]);
      t("shared", a.io === b.io, a.id !== b.id);
      t("whoami", await b.emitWithAck("whoami"));
      t("echo", await b.emitWithAck("echo", "custom"), await a.emitWithAck("echo", "main"));
      b.emit("message", "to custom");
      t("custom message-back", await next(b, "message-back"));
      const d = next(b, "disconnect");
      b.disconnect();
      t("disconnect", (await d)[0], m.engine.readyState);
      t("echo", await a.emitWithAck("echo", "main still"));
      b.connect();
      await connected(b);
      t("whoami again", await b.emitWithAck("whoami"));
    },
  },
  {
    name: "upgrade under traffic",
    async run({ t, client }) {
      const s = client();
      const upgraded = next(s.io.engine, "upgrade");
      await connected(s);
      const got = [];
      const N = 60;
      const all = new Promise((r) =>
        s.on("message-back", (v) => {
          got.push(v);
          if (got.length === N) r();
        }),
      );
      for (let i = 0; i < N; i++) {
        s.emit("message", i);
        if (i % 10 === 0) await new Promise((r) => setImmediate(r));
      }
      await upgraded;
      await all;
      t("in order", got.every((v, i) => v === i), got.length);
      t("transport", s.io.engine.transport.name, await s.emitWithAck("get-transport"));
    },
  },
  {
    name: "recovered, from a server without recovery",
    differences: ["recovered-boolean"],
    async run({ t, client }) {
      const s = client("");
      t("before", s.recovered);
      await connected(s);
      t("connected", s.recovered);
    },
  },
  ...["polling", "websocket"].map((transport) => ({
    name: `connection state recovery (${transport})`,
    recovery: true,
    async run({ t, client }) {
      const s = client("", { transports: [transport] });
      const { got, offsets } = recordEvents(s);
      await connected(s);
      t("first connect", s.recovered, await s.emitWithAck("get-state"));
      const other = await connected(client("", { transports: ["websocket"] }));
      await s.emitWithAck("join", "r1");
      await other.emitWithAck("join", "r1");
      await other.emitWithAck("to-room", "r1", { n: "before 1" });
      await other.emitWithAck("to-all", { n: "before 2" }, 2);
      await waitFor(() => got.length === 2, "the first events");
      const id = s.id;
      await drop(t, s, other, "r1", 1);
      // meanwhile: to a room of the socket, to everyone, to its own id, and elsewhere
      await other.emitWithAck("to-room", "r1", { n: "missed 1" });
      await other.emitWithAck("to-all", { n: "missed 2" }, Buffer.from([1, 2]));
      await other.emitWithAck("to-room", id, { n: "missed 3" });
      await other.emitWithAck("to-room", "elsewhere", { n: "not for it" });
      const lastSeen = offsets[offsets.length - 1];
      await reconnect(s);
      t("reconnected", s.recovered, s.id === id, s.connected);
      const auth = await s.emitWithAck("get-auth");
      t("sent", typeof auth.pid, auth.offset === lastSeen);
      t("state", await s.emitWithAck("get-state"));
      await other.emitWithAck("to-all", { n: "after" });
      await waitFor(() => got.some((e) => e[1].n === "after"), "the event after recovering");
      t("received", got);
      t("offsets distinct", new Set(offsets).size === offsets.length, offsets.length);
    },
    check(trace) {
      const entry = (k) => trace.find((e) => e[0] === k);
      assert.deepEqual(entry("reconnected"), ["reconnected", true, true, true]);
      assert.deepEqual(entry("state")[1], { recovered: true, rooms: ["r1"] });
      // every missed event once, in order, each with its offset last
      const received = entry("received")[1];
      assert.deepEqual(
        received.map((e) => e[1].n),
        ["before 1", "before 2", "missed 1", "missed 2", "missed 3", "after"],
      );
      assert.ok(received.every((e) => e[e.length - 1] === OFFSET));
    },
  })),
  {
    // the reference server cannot recover a client that has no offset yet; ours can
    name: "connection state recovery before any event",
    recovery: true,
    async run({ t, client }) {
      const s = client("", { transports: ["websocket"] });
      const { got } = recordEvents(s);
      await connected(s);
      const other = await connected(client("", { transports: ["websocket"] }));
      await s.emitWithAck("join", "r2");
      const id = s.id;
      await drop(t, s, other, "r2", 0);
      await other.emitWithAck("to-room", "r2", { n: "missed" });
      await other.emitWithAck("to-room", id, { n: "missed (own room)" });
      await reconnect(s);
      t("reconnected", s.recovered, s.id === id, await s.emitWithAck("get-state"));
      t("echo", await s.emitWithAck("echo", "flush")); // after any replay
      t("received", got);
    },
    check(trace, server) {
      const entry = (k) => trace.find((e) => e[0] === k);
      if (server === "reference") {
        assert.deepEqual(entry("reconnected"), ["reconnected", false, false, { recovered: false, rooms: [] }]);
        assert.deepEqual(entry("received")[1], []);
      } else {
        assert.deepEqual(entry("reconnected"), ["reconnected", true, true, { recovered: true, rooms: ["r2"] }]);
        assert.deepEqual(
          entry("received")[1].map((e) => e[1].n),
          ["missed", "missed (own room)"],
        );
      }
    },
  },
];

/** An offset as the trace shows it (they are random ids). */
const OFFSET = "<offset>";

/**
 * Records the `room-event` and `all-event` arguments as the listeners see them, the
 * offset (a string, last) replaced with OFFSET in `got`, and kept as is in `offsets`.
 */
function recordEvents(s) {
  const got = [];
  const offsets = [];
  for (const ev of ["room-event", "all-event"]) {
    s.on(ev, (...args) => {
      const last = args[args.length - 1];
      if (typeof last === "string") offsets.push(last);
      got.push([ev, ...args.slice(0, -1), typeof last === "string" ? OFFSET : last]);
    });
  }
  return { got, offsets };
}

/**
 * Drops `s`'s transport from the client side, its reconnection held back until
 * `reconnect`, and waits until the server has seen it (`room` down to `left` sockets).
 */
async function drop(t, s, other, room, left) {
  s.io.reconnection(false);
  const d = next(s, "disconnect");
  s.io.engine.close();
  t("disconnect", (await d)[0], s.connected);
  await waitFor(async () => (await other.emitWithAck("count-in", room)) === left, "the server to see it");
}

async function reconnect(s) {
  s.io.reconnection(true);
  const c = next(s, "connect");
  s.connect();
  await c;
}

/** Known differences, by the README row they document: a check of the exact difference. */
const KNOWN = {
  // socket.io-client checks the writable flag of the closed transport, so a volatile emit
  // made while disconnected may be buffered and sent after reconnecting; ours drops it.
  "volatile-offline": (a, b) => {
    const strip = (trace) =>
      trace.map((e) => (e[0] === "received" ? [e[0], e[1].filter((v) => v !== "volatile offline")] : e));
    assert.deepEqual(strip(b), b, "ours never delivers a volatile emit made while disconnected");
    return [strip(a), b];
  },
  // socket.io-client sets `recovered` to `pid && ...`: undefined when the server sends no pid
  "recovered-boolean": (a, b) => {
    assert.deepEqual(b, [["before", false], ["connected", false]]);
    const entry = a.find((e) => e[0] === "connected");
    assert.equal(entry[1], undefined, "socket.io-client's recovered is undefined");
    return [a.map((e) => (e === entry ? ["connected", false] : e)), b];
  },
};

for (const spec of scenarioServers()) {
  describe(`differential: socket.io-client vs ours (${spec.name} server)`, () => {
    let srv, recovering;
    before(async () => {
      srv = await startServer(spec);
      recovering = await startServer(spec, { recovery: true });
    });
    after(async () => {
      await srv.stop();
      await recovering.stop();
    });
    for (const scenario of SCENARIOS) {
      it(scenario.name, { timeout: scenario.timeout || 30000 }, async () => {
        const server = scenario.recovery ? recovering : srv;
        const traces = {};
        for (const [name, lib] of Object.entries(CLIENTS)) traces[name] = await run(lib, server.url, scenario, server);
        // what each client must show, beyond being alike
        if (scenario.check) for (const trace of Object.values(traces)) scenario.check(trace, spec.name);
        const ids = scenario.differences || [];
        for (const id of ids) assert.ok(DOCUMENTED.has(id), `difference ${id} is not in the README's table`);
        let { official: a, ours: b } = traces;
        for (const id of ids) [a, b] = KNOWN[id](a, b);
        assert.deepEqual(b, a, "our trace (actual) differs from socket.io-client's (expected)");
        assert.ok(traces.ours.length > 0);
      });
    }
  });
}
