// Browser test helpers: Debian's Chromium through playwright-core, the chat demo server,
// and a proxy that refuses WebSocket upgrades.
import { existsSync } from "node:fs";
import { spawn } from "node:child_process";
import { createServer, request, get } from "node:http";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, sleep } from "../harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "../../..");

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Skip reason when Chromium is missing, or throws under CI=true (where it must be present). */
export function chromiumSkip() {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === "true") throw new Error(`Chromium not found at ${CHROMIUM} (required under CI=true)`);
  return `Chromium not found at ${CHROMIUM}`;
}

export async function launch() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

function python() {
  if (process.env.REALTIME_PYTHON) return process.env.REALTIME_PYTHON;
  const venv = resolve(repo, ".venv/bin/python");
  return existsSync(venv) ? venv : "python3";
}

function ok(url) {
  return new Promise((res) => {
    const req = get(url, { timeout: 1000 }, (r) => {
      r.resume();
      res(r.statusCode === 200);
    });
    req.on("error", () => res(false));
    req.on("timeout", () => {
      req.destroy();
      res(false);
    });
  });
}

/** The chat demo (examples/chat/app.py) on a free port; restart() reuses the port.
 * `args` runs another example the same way (e.g. ["-m", "examples.starlette_app.app"]). */
export async function startChat(args = [resolve(repo, "examples/chat/app.py")]) {
  const port = await freePort();
  const srv = { port, url: `http://127.0.0.1:${port}`, child: null };
  srv.start = async () => {
    const child = spawn(python(), [...args, "--port", String(port)], {
      cwd: repo,
      stdio: ["ignore", "inherit", "inherit"],
      detached: true,
    });
    srv.child = child;
    srv.exited = new Promise((r) => child.once("exit", r));
    const deadline = Date.now() + 30000;
    while (!(await ok(srv.url + "/socket.io/client.js"))) {
      if (child.exitCode !== null) throw new Error("chat server exited");
      if (Date.now() > deadline) throw new Error("chat server did not start");
      await sleep(100);
    }
  };
  srv.stop = async () => {
    const child = srv.child;
    if (!child || child.exitCode !== null) return;
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch (e) {}
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch (e) {}
    }, 5000);
    await srv.exited;
    clearTimeout(t);
  };
  await srv.start();
  return srv;
}

/** An HTTP proxy to `target` that refuses every WebSocket upgrade. */
export async function startNoWsProxy(target) {
  const t = new URL(target);
  let refused = 0;
  const server = createServer((req, res) => {
    const up = request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  server.on("upgrade", (req, socket) => {
    refused++;
    socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${port}`,
    refused: () => refused,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
