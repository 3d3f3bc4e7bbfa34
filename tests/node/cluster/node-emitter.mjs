// Emit into a socket.io cluster from the command line with @socket.io/redis-emitter 5.
//
//   node node-emitter.mjs [--redis URL] [--key KEY] [--nsp /chat] [--to ROOM]... [--except ROOM]...
//                         [--volatile] [--compress] <command> [JSON]...
//
//   emit EVENT [ARG]...           every ARG is JSON; {"$bin": "<hex>"} is a Buffer
//   sockets-join ROOM...
//   sockets-leave ROOM...
//   disconnect-sockets [true|false]
//   server-side-emit EVENT [ARG]...
//
// With --ops FILE it runs a JSON list of such operations instead (tests/unit
// uses it to record the emitter's bytes), each
// {"nsp", "to", "except", "flags", "op", "event", "args", "rooms", "close"}.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    key: { type: "string", default: "socket.io" },
    nsp: { type: "string", default: "/" },
    to: { type: "string", multiple: true, default: [] },
    except: { type: "string", multiple: true, default: [] },
    volatile: { type: "boolean", default: false },
    compress: { type: "boolean" },
    ops: { type: "string" },
  },
});

// JSON values with {"$bin": "<hex>"} standing for a Buffer.
function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string" && Object.keys(value).length === 1) {
      return Buffer.from(value.$bin, "hex");
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
  }
  return value;
}

function run(emitter, op) {
  let target = emitter.of(op.nsp ?? "/");
  const flags = op.flags ?? {};
  if (flags.volatile) target = target.volatile;
  if (flags.compress !== undefined) target = target.compress(flags.compress);
  for (const room of op.to ?? []) target = target.to(room);
  for (const room of op.except ?? []) target = target.except(room);
  const args = revive(op.args ?? []);
  switch (op.op) {
    case "emit":
      return target.emit(op.event, ...args);
    case "sockets-join":
      return target.socketsJoin(op.rooms);
    case "sockets-leave":
      return target.socketsLeave(op.rooms);
    case "disconnect-sockets":
      return target.disconnectSockets(op.close ?? false);
    case "server-side-emit":
      // the emitter's serverSideEmit is on Emitter only, namespace-wide
      return emitter.of(op.nsp ?? "/").serverSideEmit(op.event, ...args);
    default:
      throw new Error(`unknown operation ${op.op}`);
  }
}

function fromCommandLine() {
  const [command, ...rest] = positionals;
  const flags = {};
  if (opts.volatile) flags.volatile = true;
  if (opts.compress !== undefined) flags.compress = opts.compress;
  const op = { op: command, nsp: opts.nsp, to: opts.to, except: opts.except, flags };
  if (command === "emit" || command === "server-side-emit") {
    op.event = rest[0];
    op.args = rest.slice(1).map((text) => JSON.parse(text));
  } else if (command === "sockets-join" || command === "sockets-leave") {
    op.rooms = rest;
  } else if (command === "disconnect-sockets") {
    op.close = rest[0] === "true";
  }
  return [op];
}

const client = createClient({ url: opts.redis });
client.on("error", (err) => console.error(`redis error: ${err.message}`));
await client.connect();
const emitter = new Emitter(client, { key: opts.key });
const ops = opts.ops ? JSON.parse(readFileSync(opts.ops, "utf8")) : fromCommandLine();
for (const op of ops) run(emitter, op);
// node-redis sends commands in order: once PING answers, every PUBLISH was sent and answered
await client.ping();
await client.quit();
