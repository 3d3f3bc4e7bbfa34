// Starts the scenario server: the in-process socket.io reference by default, or the
// command in REALTIME_SERVER_CMD (given `--port N`), e.g.
//   REALTIME_SERVER_CMD="python examples/client_scenarios_server.py" npm test
import { spawn } from "node:child_process";
import { createServer, get } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startReference, RECOVERY_OPTIONS } from "./servers/reference.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

function pythonCommand() {
  const script = resolve(repo, "examples/client_scenarios_server.py");
  const py = process.env.REALTIME_PYTHON || resolve(repo, ".venv/bin/python");
  return existsSync(script) && existsSync(py) ? `'${py}' '${script}'` : "";
}

/**
 * The servers the scenarios run against: always the in-process reference, plus the
 * command in REALTIME_SERVER_CMD, or by default our Python scenario server when the
 * project's virtualenv exists (REALTIME_SERVER_CMD=none turns that off).
 */
export function scenarioServers() {
  const env = process.env.REALTIME_SERVER_CMD;
  const cmd = env === "none" ? "" : env || pythonCommand();
  const list = [{ name: "reference", cmd: "" }];
  if (cmd) list.push({ name: env ? "external: " + env : "python", cmd });
  else if (env !== "none" && process.env.CI === "true")
    // like every other missing dependency under CI: fail rather than test one server only
    throw new Error("the Python scenario server is required under CI=true (no .venv/bin/python or REALTIME_PYTHON)");
  return list;
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function probe(port) {
  return new Promise((res) => {
    const req = get({ host: "127.0.0.1", port, path: "/socket.io/?EIO=4&transport=polling", timeout: 1000 }, (r) => {
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

async function startExternal(cmd, port) {
  const child = spawn("sh", ["-c", `exec ${cmd} --port ${port}`], {
    stdio: ["ignore", "inherit", "inherit"],
    detached: true,
  });
  let exited = false;
  const exit = new Promise((r) => child.once("exit", () => ((exited = true), r())));
  const deadline = Date.now() + 30000;
  while (!(await probe(port))) {
    if (exited) throw new Error(`server command exited early: ${cmd}`);
    if (Date.now() > deadline) {
      process.kill(-child.pid, "SIGKILL");
      throw new Error(`server did not answer on port ${port}`);
    }
    await sleep(100);
  }
  return {
    stop: async () => {
      if (exited) return;
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch (e) {}
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch (e) {}
      }, 5000);
      await exit;
      clearTimeout(t);
    },
  };
}

/**
 * Starts a scenario server. Returns { url, port, stop(), restart() }; restart() starts it
 * again on the same port after stop(). `recovery`: with connection state recovery on
 * (the reference's RECOVERY_OPTIONS; `--recovery` appended to a command).
 */
export async function startServer(spec = { cmd: "" }, { recovery = false } = {}) {
  const port = await freePort();
  const srv = { port, url: `http://127.0.0.1:${port}`, _h: null };
  const boot = async () => {
    srv._h = spec.cmd
      ? await startExternal(spec.cmd + (recovery ? " --recovery" : ""), port)
      : await startReference(port, recovery ? RECOVERY_OPTIONS : {});
  };
  srv.stop = async () => {
    if (srv._h) await srv._h.stop();
    srv._h = null;
  };
  srv.restart = boot;
  await boot();
  return srv;
}

/** Resolves with the arguments of the next `ev` emitted by `emitter`, or rejects after `ms`. */
export function next(emitter, ev, ms = 5000) {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`timeout waiting for "${ev}"`)), ms);
    emitter.once(ev, (...args) => {
      clearTimeout(t);
      res(args);
    });
  });
}

export { sleep };

/**
 * Runs `fn` with the process's uncaughtException listeners replaced by a collector
 * (the test runner's own would fail the test), and returns what was thrown.
 */
export async function catchUncaught(fn) {
  const saved = process.listeners("uncaughtException");
  process.removeAllListeners("uncaughtException");
  const errors = [];
  const collect = (e) => errors.push(e);
  process.on("uncaughtException", collect);
  try {
    await fn(errors);
  } finally {
    process.off("uncaughtException", collect);
    for (const l of saved) process.on("uncaughtException", l);
  }
  return errors;
}

/** Resolves once `cond()` is true (checked every 20 ms), or rejects after `ms`. */
export async function waitFor(cond, what = "condition", ms = 10000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await sleep(20);
  }
}

/** Ids of the documented differences from socket.io-client: rows of client-js/README.md's table. */
export const DOCUMENTED = new Set(
  [...readFileSync(resolve(repo, "client-js/README.md"), "utf8").matchAll(/^\| `([a-z0-9-]+)` \|/gm)].map((m) => m[1]),
);
