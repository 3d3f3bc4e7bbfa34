// Behaviour the official socket.io-client 4.8 has and apps rely on (issue 14), each checked
// on our client alone against the reference server. test/differential.test.mjs compares
// whole traces with the official client.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { io } from "../dist/index.mjs";
import { startReference } from "./servers/reference.mjs";
import { next, catchUncaught } from "./harness.mjs";

describe("parity with socket.io-client", { timeout: 20000 }, () => {
  let ref, url;
  const open = [];
  const client = (opts = {}, path = "") => {
    const s = io(url + path, { forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100, ...opts });
    open.push(s);
    return s;
  };
  before(async () => {
    ref = await startReference(0);
    url = `http://127.0.0.1:${ref.port}`;
  });
  after(async () => {
    for (const s of open) s.io.disconnect();
    await ref.stop();
  });

  it("an exception thrown by an event listener surfaces and keeps the connection", async () => {
    const s = client();
    await next(s, "connect");
    const reasons = [];
    s.on("disconnect", (r) => reasons.push(r));
    const errors = await catchUncaught(async () => {
      s.once("message-back", () => {
        throw new Error("listener boom");
      });
      s.emit("message", 1);
      assert.equal(await s.emitWithAck("echo", "still here"), "still here");
    });
    assert.deepEqual(errors.map((e) => e.message), ["listener boom"]);
    assert.deepEqual(reasons, []);
    assert.equal(s.connected, true);
  });

  it("an exception thrown by a connect listener surfaces and does not reconnect", async () => {
    let connections = 0;
    const counter = (sock) => connections++;
    ref.io.on("connection", counter);
    try {
      const s = client({ transports: ["websocket"] });
      const reasons = [];
      s.on("disconnect", (r) => reasons.push(r));
      const errors = await catchUncaught(async () => {
        const connected = next(s, "connect");
        s.once("connect", () => {
          throw new Error("connect boom");
        });
        await connected;
        assert.equal(await s.emitWithAck("echo", 1), 1);
      });
      assert.deepEqual(errors.map((e) => e.message), ["connect boom"]);
      assert.deepEqual(reasons, []);
      assert.equal(connections, 1);
    } finally {
      ref.io.off("connection", counter);
    }
  });

  it("emitWithAck() without a timeout rejects on disconnect and drops the pending ack", async () => {
    const s = client();
    await next(s, "connect");
    const pending = s.emitWithAck("ignore");
    s.emit("server-disconnect");
    await assert.rejects(pending, { message: "socket has been disconnected" });
    assert.deepEqual(Object.keys(s._acks), []);
  });

  it("with retries, an emit made in the connect listener reaches the server once", async () => {
    const s = client({ retries: 2, ackTimeout: 2000 }, "");
    const got = [];
    s.on("message-back", (v) => got.push(v));
    s.once("connect", () => s.emit("echo", "once", () => s.emit("message", "done")));
    let received = 0;
    const count = (sock) => sock.on("echo", () => received++);
    ref.io.on("connection", count);
    try {
      await next(s, "message-back");
      assert.equal(received, 1);
    } finally {
      ref.io.off("connection", count);
    }
  });

  it("closeOnBeforeunload defaults to false", async () => {
    const added = [];
    globalThis.addEventListener = (ev) => added.push(ev);
    globalThis.removeEventListener = () => {};
    try {
      const s = client({ transports: ["websocket"], WebSocket });
      await next(s, "connect");
      assert.deepEqual(added, []);
      const t = client({ transports: ["websocket"], WebSocket, closeOnBeforeunload: true });
      await next(t, "connect");
      assert.deepEqual(added, ["beforeunload"]);
      t.io.disconnect();
    } finally {
      delete globalThis.addEventListener;
      delete globalThis.removeEventListener;
    }
  });

  it("extraHeaders reach the server on WebSocket even when a standard global WebSocket exists", async () => {
    // A standard WebSocket constructor (like Node 22's global) takes no headers.
    class StandardWebSocket extends WebSocket {
      constructor(url, protocols) {
        super(url, protocols);
      }
    }
    const headers = [];
    const record = (sock) => headers.push(sock.handshake.headers["x-extra"]);
    ref.io.on("connection", record);
    globalThis.WebSocket = StandardWebSocket;
    try {
      const s = client({ transports: ["websocket"], extraHeaders: { "x-extra": "yes" } });
      await next(s, "connect");
      assert.equal(s.io.engine.transport.name, "websocket");
      assert.deepEqual(headers, ["yes"]);
    } finally {
      delete globalThis.WebSocket;
      ref.io.off("connection", record);
    }
  });

  it('transports: ["websocket"] with no WebSocket fails clearly and does not retry', async () => {
    // the Node build loaded from a directory where the `ws` package cannot be resolved
    const dir = mkdtempSync(join(tmpdir(), "realtime-nows-"));
    try {
      copyFileSync(new URL("../dist/index.mjs", import.meta.url), join(dir, "index.mjs"));
      const mod = await import(join(dir, "index.mjs"));
      const s = mod.io(url, { forceNew: true, transports: ["websocket"], reconnectionDelay: 10, reconnectionDelayMax: 20 });
      open.push(s);
      let attempts = 0;
      s.io.on("reconnect_attempt", () => attempts++);
      const [err] = await next(s, "connect_error");
      assert.match(err.message, /WebSocket/);
      assert.doesNotMatch(err.message, /is not a constructor|undefined/);
      // the Manager decides on a reconnection right after the error
      await new Promise((r) => setImmediate(r));
      assert.equal(s.io._reconnecting, false, "no reconnection scheduled");
      assert.equal(attempts, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
