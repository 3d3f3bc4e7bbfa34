// The package as users get it: the typed app compiles with tsc --strict under
// moduleResolution nodenext (ESM and CommonJS) and bundler; bundling for the browser pulls in
// no node: module; import and require both load it in Node; and the browser build, run in
// Node (no XMLHttpRequest), polls over fetch.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { startReference } from "./servers/reference.mjs";
import { next } from "./harness.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = join(root, "node_modules/typescript/bin/tsc");

describe("packaging", () => {
  let dir;
  before(() => {
    // an app directory with the package installed under its name
    dir = mkdtempSync(join(tmpdir(), "realtime-app-"));
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(root, join(dir, "node_modules", "realtime-client"), "dir");
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "app", private: true }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const compile = (name, compilerOptions, files) => {
    const app = join(root, "test/fixtures/typed-app.ts");
    for (const f of files) copyFileSync(app, join(dir, f));
    const config = join(dir, `tsconfig.${name}.json`);
    const opts = { strict: true, noEmit: true, lib: ["ES2020"], types: [], skipLibCheck: false, ...compilerOptions };
    writeFileSync(config, JSON.stringify({ compilerOptions: opts, files }));
    try {
      execFileSync(process.execPath, [tsc, "-p", config], { cwd: dir, stdio: "pipe" });
    } catch (e) {
      assert.fail(`tsc (${name}) failed:\n${e.stdout}${e.stderr}`);
    }
  };

  it("a typed app compiles with tsc --strict under moduleResolution nodenext (ESM and CommonJS)", () => {
    compile("nodenext", { module: "nodenext", moduleResolution: "nodenext" }, ["app.mts", "app.cts"]);
  });

  it("a typed app compiles with tsc --strict under moduleResolution bundler", () => {
    compile("bundler", { module: "esnext", moduleResolution: "bundler", lib: ["ES2020", "DOM"] }, ["app.ts"]);
  });

  for (const [kind, source] of [
    ["import", 'import { io } from "realtime-client";\nio("/").emit("hi");\n'],
    ["require", 'const { io } = require("realtime-client");\nio("/").emit("hi");\n'],
  ]) {
    it(`bundling for the browser (${kind}) pulls in no node: module`, async () => {
      const entry = join(dir, `entry-${kind}.js`);
      writeFileSync(entry, source);
      const out = await esbuild.build({
        entryPoints: [entry],
        bundle: true,
        write: false,
        platform: "browser",
        format: "esm",
        metafile: true,
        logLevel: "silent",
        absWorkingDir: dir,
      });
      const inputs = Object.keys(out.metafile.inputs);
      assert.ok(inputs.some((i) => i.includes("index.browser")), inputs.join(", "));
      assert.deepEqual(inputs.filter((i) => i.startsWith("node:") || /platform-node|\/index\.m?js$/.test(i)), []);
      assert.doesNotMatch(out.outputFiles[0].text, /node:|require\(["'](http|https)["']\)/);
    });
  }

  it("loads in Node with import and with require", () => {
    const esm = 'import { io, Manager } from "realtime-client"; console.log(typeof io, typeof Manager);';
    const cjs = 'const { io, Manager } = require("realtime-client"); console.log(typeof io, typeof Manager);';
    const run = (args) => execFileSync(process.execPath, args, { cwd: dir, encoding: "utf8" }).trim();
    assert.equal(run(["--input-type=module", "-e", esm]), "function function");
    assert.equal(run(["-e", cjs]), "function function");
  });

  it("the browser build polls over fetch where XMLHttpRequest is absent", async () => {
    assert.equal(typeof globalThis.XMLHttpRequest, "undefined");
    const ref = await startReference(0);
    const requests = [];
    ref.http.prependListener("request", (req) => requests.push(req.headers["user-agent"] || ""));
    const { io } = await import("../dist/index.browser.mjs");
    const s = io(`http://127.0.0.1:${ref.port}`, { forceNew: true, transports: ["polling"] });
    try {
      await next(s, "connect");
      const [a, b] = await new Promise((r) => s.emit("echo", new Uint8Array([1, 2, 3]), "text", (...x) => r(x)));
      assert.ok(a instanceof ArrayBuffer);
      assert.deepEqual([...new Uint8Array(a)], [1, 2, 3]);
      assert.equal(b, "text");
      assert.equal(s.io.engine.transport.name, "polling");
      // Node's fetch sends the user agent "node"; the http module (our Node build) sends none
      assert.ok(requests.length >= 3 && requests.every((ua) => ua === "node"), requests.join(", "));
    } finally {
      s.disconnect();
      await ref.stop();
    }
  });
});
