// Codec, engine and backoff behaviour, with scripted fake servers where needed.
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { io, Engine } from "../dist/index.mjs";
import { startReference } from "./servers/reference.mjs";
import { next, sleep } from "./harness.mjs";

/**
 * A scripted Engine.IO polling server: answers the handshake, records POSTed payloads,
 * and holds GETs until `push()` queues packets. Tracks concurrent GETs and POSTs.
 */
function fakeServer({ pingInterval = 100, pingTimeout = 100, maxPayload = 1e6, onPacket } = {}) {
  const queue = [];
  let held = null;
  const stats = { gets: 0, posts: 0, maxGets: 0, maxPosts: 0, bodies: [] };
  const flush = () => {
    if (held && queue.length) {
      const res = held;
      held = null;
      stats.gets--;
      res.end(queue.splice(0).join("\x1e"));
    }
  };
  const srv = createServer((req, res) => {
    const u = new URL(req.url, "http://x");
    if (!u.searchParams.get("sid")) {
      res.end("0" + JSON.stringify({ sid: "fake", upgrades: [], pingInterval, pingTimeout, maxPayload }));
      return;
    }
    if (req.method === "POST") {
      stats.posts++;
      stats.maxPosts = Math.max(stats.maxPosts, stats.posts);
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        stats.bodies.push(body);
        for (const p of body.split("\x1e")) if (onPacket) onPacket(p, push);
        setTimeout(() => {
          stats.posts--;
          res.end("ok");
        }, 5);
      });
      return;
    }
    stats.gets++;
    stats.maxGets = Math.max(stats.maxGets, stats.gets);
    held = res;
    req.on("close", () => {
      if (held === res) {
        held = null;
        stats.gets--;
      }
    });
    flush();
  });
  const push = (...packets) => {
    queue.push(...packets);
    flush();
  };
  return new Promise((r) =>
    srv.listen(0, "127.0.0.1", () =>
      r({
        url: `http://127.0.0.1:${srv.address().port}`,
        push,
        stats,
        close: () => {
          if (held) held.end("6");
          srv.closeAllConnections();
          srv.close();
        },
      }),
    ),
  );
}

const connectReply = (p, push) => {
  if (p.startsWith("40")) push('40{"sid":"nsp-sid"}');
};

describe("engine", () => {
  it("closes with 'ping timeout' when the server stops pinging", async () => {
    const f = await fakeServer({ onPacket: connectReply });
    const s = io(f.url, { forceNew: true, reconnection: false, transports: ["polling"] });
    await next(s, "connect");
    const t0 = Date.now();
    const [reason] = await next(s, "disconnect", 3000);
    assert.equal(reason, "ping timeout");
    assert.ok(Date.now() - t0 >= 150);
    f.close();
  });

  it("notices an expired heartbeat on emit and buffers the packet", async () => {
    const f = await fakeServer({ pingInterval: 5000, pingTimeout: 5000, onPacket: connectReply });
    const s = io(f.url, { forceNew: true, reconnection: false, transports: ["polling"] });
    await next(s, "connect");
    const reasons = [];
    s.on("disconnect", (r) => reasons.push(r));
    const real = Date.now;
    Date.now = () => real() + 60000;
    try {
      s.emit("late", 1);
    } finally {
      Date.now = real;
    }
    assert.deepEqual(reasons, ["ping timeout"]);
    assert.equal(s.sendBuffer.length, 1);
    f.close();
  });

  it("answers pings and stays connected", async () => {
    let pongs = 0;
    const f = await fakeServer({
      pingInterval: 100,
      pingTimeout: 200,
      onPacket: (p, push) => {
        connectReply(p, push);
        if (p === "3") pongs++;
      },
    });
    const s = io(f.url, { forceNew: true, reconnection: false, transports: ["polling"] });
    await next(s, "connect");
    let closed = false;
    s.on("disconnect", () => (closed = true));
    for (let i = 0; i < 5; i++) {
      f.push("2");
      await sleep(100);
    }
    assert.equal(closed, false);
    assert.ok(pongs >= 4, `pongs ${pongs}`);
    assert.equal(f.stats.maxGets, 1, "never more than one GET at a time");
    assert.equal(f.stats.maxPosts, 1, "never more than one POST at a time");
    s.disconnect();
    f.close();
  });

  it("closes with 'parse error' on an invalid Socket.IO packet", async () => {
    const f = await fakeServer({ pingInterval: 5000, onPacket: connectReply });
    const s = io(f.url, { forceNew: true, reconnection: false, transports: ["polling"] });
    await next(s, "connect");
    f.push("42not json[");
    assert.equal((await next(s, "disconnect"))[0], "parse error");
    f.close();
  });

  it("splits writes into payloads no larger than maxPayload, in order", async () => {
    const f = await fakeServer({ pingInterval: 5000, maxPayload: 120, onPacket: connectReply });
    const s = io(f.url, { forceNew: true, reconnection: false, transports: ["polling"] });
    await next(s, "connect");
    for (let i = 0; i < 12; i++) s.emit("m", "x".repeat(20) + i);
    await sleep(300);
    const events = f.stats.bodies.flatMap((b) => b.split("\x1e")).filter((p) => p.startsWith("42"));
    assert.deepEqual(
      events.map((p) => JSON.parse(p.slice(2))[1]),
      Array.from({ length: 12 }, (_, i) => "x".repeat(20) + i),
    );
    for (const b of f.stats.bodies) assert.ok(Buffer.byteLength(b) <= 120, `body of ${Buffer.byteLength(b)} bytes`);
    assert.ok(f.stats.bodies.length > 2);
    s.disconnect();
    f.close();
  });

  it("encodes binary as base64 with a 'b' prefix on polling", async () => {
    const f = await fakeServer({ pingInterval: 5000, onPacket: connectReply });
    const s = io(f.url, { forceNew: true, reconnection: false, transports: ["polling"] });
    await next(s, "connect");
    s.emit("bin", Buffer.from([1, 2, 3, 4]));
    await sleep(100);
    const all = f.stats.bodies.join("\x1e").split("\x1e");
    const i = all.findIndex((p) => p.startsWith("451-"));
    assert.equal(all[i], '451-["bin",{"_placeholder":true,"num":0}]');
    assert.equal(all[i + 1], "bAQIDBA==");
    // and decodes it from the server
    f.push('451-["bin-back",{"_placeholder":true,"num":0}]', "bAQIDBA==");
    const [b] = await next(s, "bin-back");
    assert.deepEqual([...b], [1, 2, 3, 4]);
    s.disconnect();
    f.close();
  });
});

describe("transport selection", () => {
  let ref;
  after(async () => ref && (await ref.stop()));

  it("falls back to the next transport when the first cannot open (tryAllTransports)", async () => {
    ref = await startReference(0, { transports: ["polling"] });
    const url = `http://127.0.0.1:${ref.port}`;
    const s = io(url, { forceNew: true, transports: ["websocket", "polling"] });
    await next(s, "connect");
    assert.equal(s.io.engine.transport.name, "polling");
    s.disconnect();

    const n = io(url, { forceNew: true, transports: ["websocket", "polling"], tryAllTransports: false, reconnection: false });
    await next(n, "connect_error");
    n.disconnect();
  });

  it("starts on websocket after a successful upgrade when rememberUpgrade is set", async () => {
    const r = await startReference(0);
    const url = `http://127.0.0.1:${r.port}`;
    const a = io(url, { forceNew: true, rememberUpgrade: true });
    await next(a.io.engine, "upgrade");
    a.disconnect();
    const b = io(url, { forceNew: true, rememberUpgrade: true });
    await next(b, "connect");
    assert.equal(b.io.engine.transport.name, "websocket");
    b.disconnect();
    const c = io(url, { forceNew: true });
    await next(c, "connect");
    assert.equal(c.io.engine.transport.name, "polling");
    c.disconnect();
    await r.stop();
  });

  it("exposes the engine for raw Engine.IO use", async () => {
    const r = await startReference(0);
    const e = new Engine(`http://127.0.0.1:${r.port}`, { path: "/socket.io/" });
    await next(e, "open");
    assert.ok(e.id);
    assert.equal(e.pingInterval, 1000);
    e.close();
    await r.stop();
  });
});

describe("backoff", async () => {
  const { Manager } = await import("../dist/index.mjs");
  it("doubles up to the cap, then applies full jitter", () => {
    const m = new Manager("http://127.0.0.1:1", { autoConnect: false, reconnectionDelay: 100, reconnectionDelayMax: 1000 });
    const b = m.backoff;
    b.jitter = 0;
    assert.deepEqual([0, 1, 2, 3, 4, 5].map(() => b.duration()), [100, 200, 400, 800, 1000, 1000]);
    b.reset();
    b.jitter = 1;
    const capped = [];
    for (let i = 0; i < 200; i++) {
      const d = b.duration();
      assert.ok(d >= 0 && d <= Math.min(1000, 100 * 2 ** i), `${i}: ${d}`);
      if (i >= 4) capped.push(d);
    }
    // the delays actually vary, over the whole [0, cap] range
    assert.ok(new Set(capped).size > 50, `only ${new Set(capped).size} distinct delays`);
    assert.ok(capped.some((d) => d < 250) && capped.some((d) => d > 750), "spread over [0, 1000]");
  });
});

describe("bundle", () => {
  it("realtime/static/client.js matches a fresh build", () => {
    const script = fileURLToPath(new URL("../scripts/check-stale.mjs", import.meta.url));
    execFileSync(process.execPath, [script], { stdio: "pipe" });
  });
});
