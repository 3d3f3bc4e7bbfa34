// The browser bundle on its own in Chromium against the reference scenario server:
// binary (ArrayBuffer, typed arrays, Blob) both ways on each transport, acks with timeouts.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { chromiumSkip, launch, repo } from "./helpers.mjs";
import { startReference } from "../servers/reference.mjs";

const skip = chromiumSkip();

describe("browser bundle in Chromium", { skip }, () => {
  let browser, ref, url;

  before(async () => {
    ref = await startReference(0);
    const bundle = readFileSync(resolve(repo, "realtime/static/client.js"));
    ref.http.on("request", (req, res) => {
      if (req.url === "/client.js") {
        res.writeHead(200, { "Content-Type": "text/javascript" });
        res.end(bundle);
      } else if (req.url === "/") {
        res.writeHead(200, { "Content-Type": "text/html" });
        res.end('<!doctype html><script src="/client.js"></script>');
      }
    });
    url = `http://127.0.0.1:${ref.port}/`;
    browser = await launch();
  });
  after(async () => {
    if (browser) await browser.close();
    if (ref) await ref.stop();
  });

  for (const transport of ["polling", "websocket"]) {
    it(`exchanges Blob, ArrayBuffer and typed arrays (${transport})`, async () => {
      const p = await browser.newPage();
      await p.goto(url);
      const out = await p.evaluate(async (transport) => {
        const s = io({ transports: [transport], forceNew: true });
        await new Promise((r) => s.on("connect", r));
        const res = await new Promise((r) =>
          s.emit("echo", new Blob([new Uint8Array([1, 2, 3])]), { t: new Uint16Array([258]), ab: new Uint8Array([7]).buffer }, (...a) => r(a)),
        );
        const kinds = [res[0] instanceof ArrayBuffer, res[1].t instanceof ArrayBuffer, res[1].ab instanceof ArrayBuffer];
        const bytes = [[...new Uint8Array(res[0])], [...new Uint8Array(res[1].t)], [...new Uint8Array(res[1].ab)]];
        let timedOut = null;
        try {
          await s.timeout(100).emitWithAck("ignore");
        } catch (e) {
          timedOut = e.message;
        }
        const name = s.io.engine.transport.name;
        s.disconnect();
        return { kinds, bytes, timedOut, name };
      }, transport);
      assert.deepEqual(out.kinds, [true, true, true]);
      assert.deepEqual(out.bytes, [[1, 2, 3], [2, 1], [7]]);
      assert.equal(out.timedOut, "operation has timed out");
      assert.equal(out.name, transport);
      await p.close();
    });
  }
});
