// Client scenarios against a live server: the socket.io reference in-process by default,
// or our Python server when REALTIME_SERVER_CMD is set (see README.md).
import { describe, it, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { io, Manager } from "../dist/index.mjs";
import { startServer, next, sleep, scenarioServers } from "./harness.mjs";

const bytes = (...b) => Buffer.from(b);

for (const spec of scenarioServers()) describe(`client scenarios (${spec.name} server)`, () => {
  let srv;
  const open = [];
  const client = (path = "", opts = {}) => {
    const s = io(srv.url + path, { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 400, ...opts });
    open.push(s);
    return s;
  };

  before(async () => {
    srv = await startServer(spec);
  });
  after(async () => {
    await srv.stop();
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.io.disconnect();
  });

  it("handshakes on polling and upgrades to websocket without losing or reordering packets", async () => {
    const s = client();
    const got = [];
    const N = 60;
    const done = new Promise((res) =>
      s.on("message-back", (n) => {
        got.push(n);
        if (got.length === N) res();
      }),
    );
    // The engine opens on polling; its upgrade may finish before or after the
    // Socket.IO CONNECT reply arrives (both are legal), so watch from the open.
    let openedOn;
    let upgraded;
    s.io.once("open", () => {
      openedOn = s.io.engine.transport.name;
      upgraded = next(s.io.engine, "upgrade");
    });
    await next(s, "connect");
    assert.equal(openedOn, "polling");
    // emitted while the upgrade is in progress (or just after it)
    for (let i = 0; i < N; i++) {
      s.emit("message", i);
      if (i % 10 === 0) await sleep(1);
    }
    await upgraded;
    await done;
    await sleep(100);
    assert.deepEqual(got, Array.from({ length: N }, (_, i) => i));
    assert.equal(s.io.engine.transport.name, "websocket");
    assert.equal(await s.emitWithAck("get-transport"), "websocket");
    assert.ok(s.id);
  });

  it("connects with websocket only (ws passed as option)", async () => {
    const s = client("", { transports: ["websocket"], WebSocket });
    await next(s, "connect");
    assert.equal(s.io.engine.transport.name, "websocket");
    assert.deepEqual(await new Promise((r) => s.emit("echo", 1, "two", { three: [3] }, (...a) => r(a))), [1, "two", { three: [3] }]);
    assert.equal(await s.emitWithAck("get-transport"), "websocket");
  });

  it("connects with websocket only (ws loaded on demand)", async () => {
    const s = client("", { transports: ["websocket"] });
    await next(s, "connect");
    assert.equal(await s.emitWithAck("echo", "hi"), "hi");
  });

  it("works on polling only and keeps the session alive through heartbeats", async () => {
    const s = client("", { transports: ["polling"] });
    await next(s, "connect");
    let pings = 0;
    s.io.on("ping", () => pings++);
    let disconnected = false;
    s.on("disconnect", () => (disconnected = true));
    await sleep(3500);
    assert.equal(disconnected, false);
    assert.ok(pings >= 2, `pings: ${pings}`);
    assert.equal(s.io.engine.transport.name, "polling");
    assert.equal(await s.emitWithAck("get-transport"), "polling");
    s.emit("message", "é€😀", { a: [1, null, true] });
    assert.deepEqual(await next(s, "message-back"), ["é€😀", { a: [1, null, true] }]);
  });

  it("multiplexes namespaces over one connection", async () => {
    const m = new Manager(srv.url, { reconnectionDelay: 100 });
    const a = m.socket("/");
    const b = m.socket("/custom");
    open.push(a, b);
    await Promise.all([next(a, "connect"), next(b, "connect")]);
    assert.equal(a.io, b.io);
    assert.notEqual(a.id, b.id);
    assert.equal(await b.emitWithAck("whoami"), "/custom");
    assert.equal(await b.emitWithAck("echo", "from custom"), "from custom");
    assert.equal(await a.emitWithAck("echo", "from main"), "from main");
    b.disconnect();
    assert.equal(m.readyState, "open", "still open for the other namespace");
    assert.equal(await a.emitWithAck("echo", 1), 1);
  });

  it("io() shares one Manager per host, unless forceNew or multiplex: false", async () => {
    const a = io(srv.url);
    const b = io(srv.url + "/custom");
    const c = io(srv.url + "/custom", { multiplex: false });
    open.push(a, b, c);
    assert.equal(a.io, b.io);
    assert.notEqual(b.io, c.io);
    await Promise.all([next(a, "connect"), next(b, "connect"), next(c, "connect")]);
    assert.equal(await c.emitWithAck("whoami"), "/custom");
  });

  it("sends the auth object and reports connect_error with the server's data", async () => {
    const s = client("", { auth: { token: "abc", n: 1 } });
    await next(s, "connect");
    assert.deepEqual(await s.emitWithAck("get-auth"), { token: "abc", n: 1 });

    const r = client("", { auth: { token: "reject" }, transports: ["websocket"] });
    const [err] = await next(r, "connect_error");
    assert.equal(err.message, "unauthorized");
    assert.deepEqual(err.data, { reason: "bad token" });
    assert.equal(r.connected, false);
    assert.equal(r.active, false);
  });

  for (const transports of [["polling"], ["websocket"]]) {
    it(`sends and receives binary both ways (${transports[0]})`, async () => {
      const s = client("", { transports });
      await next(s, "connect");
      const ab = new Uint8Array([9, 8, 7]).buffer;
      const res = await new Promise((r) =>
        s.emit("echo", bytes(1, 2, 3), { nested: new Uint8Array([4, 5]), list: [ab, "text"] }, (...a) => r(a)),
      );
      assert.ok(Buffer.isBuffer(res[0]));
      assert.deepEqual([...res[0]], [1, 2, 3]);
      assert.deepEqual([...res[1].nested], [4, 5]);
      assert.deepEqual([...res[1].list[0]], [9, 8, 7]);
      assert.equal(res[1].list[1], "text");
      s.emit("message", bytes(0, 255), "plain");
      const [b, t] = await next(s, "message-back");
      assert.deepEqual([...b], [0, 255]);
      assert.equal(t, "plain");
      // empty buffer
      const [e] = await new Promise((r) => s.emit("echo", Buffer.alloc(0), (...a) => r(a)));
      assert.equal(e.length, 0);
    });
  }

  it("acks both ways, with timeouts", async () => {
    const s = client();
    await next(s, "connect");
    // client -> server
    assert.deepEqual(await new Promise((r) => s.emit("echo", 1, "a", (...a) => r(a))), [1, "a"]);
    assert.equal(await s.timeout(2000).emitWithAck("echo", "x"), "x");
    const [err, v] = await new Promise((r) => s.timeout(2000).emit("echo", "y", (...a) => r(a)));
    assert.equal(err, null);
    assert.equal(v, "y");
    const t0 = Date.now();
    const [terr] = await new Promise((r) => s.timeout(200).emit("ignore", (...a) => r(a)));
    assert.ok(terr instanceof Error);
    assert.equal(terr.message, "operation has timed out");
    assert.ok(Date.now() - t0 >= 190);
    await assert.rejects(s.timeout(150).emitWithAck("ignore"), /timed out/);
    // server -> client
    s.on("server-ask", (a, b, ack) => ack(a + 1, b + "!"));
    s.emit("request-ack", { event: "server-ask", args: [1, "two"], timeout: 2000 });
    assert.deepEqual(await next(s, "ack-result"), [{ error: false, args: [2, "two!"] }]);
    s.on("server-ask-ignored", () => {});
    s.emit("request-ack", { event: "server-ask-ignored", args: [], timeout: 200 });
    assert.deepEqual(await next(s, "ack-result"), [{ error: true, args: [] }]);
  });

  it("reports disconnect reasons", async () => {
    const s = client();
    await next(s, "connect");
    s.emit("server-disconnect");
    assert.equal((await next(s, "disconnect"))[0], "io server disconnect");
    assert.equal(s.active, false);
    const c = client();
    await next(c, "connect");
    const d = next(c, "disconnect");
    c.disconnect();
    assert.equal((await d)[0], "io client disconnect");
  });

  it("supports onAny, prependAny, offAny and onAnyOutgoing", async () => {
    const s = client();
    const seen = [];
    const any = (ev, ...a) => seen.push(["any", ev, ...a]);
    s.onAny(any);
    s.prependAny((ev) => seen.push(["first", ev]));
    const out = [];
    s.onAnyOutgoing((ev, ...a) => out.push([ev, ...a]));
    await next(s, "connect");
    s.emit("message", 1);
    await next(s, "message-back");
    assert.deepEqual(seen, [["first", "message-back"], ["any", "message-back", 1]]);
    assert.deepEqual(out, [["message", 1]]);
    s.offAny();
    s.emit("message", 2);
    await next(s, "message-back");
    assert.equal(seen.length, 2);
  });

  it("buffers emits made before connecting and drops volatile ones", async () => {
    const s = client("", { autoConnect: false });
    const got = [];
    s.on("message-back", (v) => got.push(v));
    s.volatile.emit("message", "volatile");
    s.emit("message", "buffered-1");
    s.emit("message", "buffered-2");
    s.connect();
    await next(s, "connect");
    await sleep(300);
    assert.deepEqual(got, ["buffered-1", "buffered-2"]);
    s.volatile.emit("message", "volatile-connected");
    await sleep(300);
    assert.deepEqual(got.slice(2), ["volatile-connected"]);
  });

  it("reconnects after the server is stopped and restarted, flushing the offline buffer", async () => {
    let authCalls = 0;
    const s = client("", {
      auth: (cb) => cb({ token: "t", call: ++authCalls }),
      reconnectionDelay: 100,
      reconnectionDelayMax: 300,
    });
    await next(s, "connect");
    assert.deepEqual(await s.emitWithAck("get-auth"), { token: "t", call: 1 });
    const firstId = s.id;
    const disc = next(s, "disconnect", 10000);
    await srv.stop();
    const [reason] = await disc;
    assert.ok(["transport close", "transport error", "ping timeout"].includes(reason), reason);
    assert.equal(s.connected, false);
    const attempts = [];
    s.io.on("reconnect_attempt", (n) => attempts.push(n));
    // emitted while offline: buffered, flushed after reconnection
    s.emit("message", "while-offline-1");
    s.emit("message", "while-offline-2");
    s.volatile.emit("message", "volatile-offline");
    const got = [];
    s.on("message-back", (v) => got.push(v));
    await sleep(600);
    const reconnected = next(s, "connect", 20000);
    await srv.restart();
    await reconnected;
    assert.notEqual(s.id, firstId);
    assert.ok(attempts.length >= 1);
    await sleep(300);
    assert.deepEqual(got, ["while-offline-1", "while-offline-2"]);
    assert.ok(authCalls >= 2);
    assert.deepEqual(await s.emitWithAck("get-auth"), { token: "t", call: authCalls });
  });

  it("retries until acknowledged (at-least-once) and gives up after `retries`", async () => {
    const s = client("", { retries: 3, ackTimeout: 250 });
    await next(s, "connect");
    const key = "k" + Math.random();
    const [err, n] = await new Promise((r) => s.emit("flaky", key, (...a) => r(a)));
    assert.equal(err, null);
    assert.equal(n, 3);
    // later emits are delivered in order after the retried one
    assert.equal(await s.emitWithAck("echo", "after"), "after");

    const g = client("", { retries: 1, ackTimeout: 150 });
    await next(g, "connect");
    const [gerr] = await new Promise((r) => g.emit("flaky", "g" + Math.random(), (...a) => r(a)));
    assert.ok(gerr instanceof Error);
  });

  it("emits connect_error when the server is unreachable and gives up after reconnectionAttempts", async () => {
    const { freePort } = await import("./harness.mjs");
    const port = await freePort();
    const s = io(`http://127.0.0.1:${port}`, {
      forceNew: true,
      reconnectionAttempts: 2,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
    });
    open.push(s);
    let errors = 0;
    s.on("connect_error", () => errors++);
    await next(s.io, "reconnect_failed", 10000);
    assert.equal(errors, 3);
  });
});
