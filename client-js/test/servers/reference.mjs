// Scenario server on the Node socket.io@4.8 reference implementation.
// The Python counterpart (examples/client_scenarios_server.py) implements the same
// events and namespaces; see test/README.md.
// Usage: node test/servers/reference.mjs --port N [--recovery]   (or import { startReference }).
import { createServer } from "node:http";
import { Server } from "socket.io";
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";

export const SERVER_OPTIONS = { pingInterval: 1000, pingTimeout: 2000, maxHttpBufferSize: 1e6 };
/** Added to SERVER_OPTIONS by `--recovery` (the recovery scenarios' server). */
export const RECOVERY_OPTIONS = { connectionStateRecovery: { maxDisconnectionDuration: 120000, skipMiddlewares: true } };

export function setupScenarios(io) {
  const flaky = new Map();

  io.use((socket, next) => {
    const auth = socket.handshake.auth || {};
    if (auth.token === "reject") {
      const err = new Error("unauthorized");
      err.data = { reason: "bad token" };
      return next(err);
    }
    next();
  });

  io.on("connection", (socket) => {
    socket.on("echo", (...args) => {
      const ack = args.pop();
      if (typeof ack === "function") ack(...args);
    });
    socket.on("message", (...args) => socket.emit("message-back", ...args));
    socket.on("get-auth", (ack) => ack(socket.handshake.auth));
    socket.on("get-transport", (ack) => ack(socket.conn.transport.name));
    socket.on("server-disconnect", () => socket.disconnect());
    socket.on("ignore", () => {});
    socket.on("request-ack", ({ event, args, timeout }) => {
      socket.timeout(timeout).emit(event, ...(args || []), (err, ...resp) => {
        socket.emit("ack-result", { error: !!err, args: err ? [] : resp });
      });
    });
    socket.on("flaky", (key, ack) => {
      const n = (flaky.get(key) || 0) + 1;
      flaky.set(key, n);
      if (n >= 3) ack(n);
    });
    // connection state recovery
    socket.on("join", (room, ack) => {
      socket.join(room);
      ack();
    });
    socket.on("to-room", (room, ...args) => {
      const ack = args.pop();
      io.to(room).emit("room-event", ...args);
      ack();
    });
    socket.on("to-all", (...args) => {
      const ack = args.pop();
      io.emit("all-event", ...args);
      ack();
    });
    socket.on("count-in", async (room, ack) => ack((await io.in(room).fetchSockets()).length));
    socket.on("get-state", (ack) =>
      ack({ recovered: socket.recovered, rooms: [...socket.rooms].filter((r) => r !== socket.id).sort() }),
    );
  });

  io.of("/custom").on("connection", (socket) => {
    socket.on("echo", (...args) => {
      const ack = args.pop();
      if (typeof ack === "function") ack(...args);
    });
    socket.on("whoami", (ack) => ack(socket.nsp.name));
    socket.on("message", (...args) => socket.emit("message-back", ...args));
  });
}

/** Starts the reference scenario server on 127.0.0.1:port (0 = any free port). */
export function startReference(port = 0, extra = {}) {
  return new Promise((res, rej) => {
    const http = createServer();
    const io = new Server(http, { ...SERVER_OPTIONS, ...extra });
    setupScenarios(io);
    http.once("error", rej);
    http.listen(port, "127.0.0.1", () => {
      const p = http.address().port;
      res({
        port: p,
        io,
        http,
        stop: () =>
          new Promise((done) => {
            io.close(() => done());
            http.closeAllConnections();
          }),
      });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--port");
  const port = i > 0 ? +process.argv[i + 1] : 3000;
  const s = await startReference(port, process.argv.includes("--recovery") ? RECOVERY_OPTIONS : {});
  console.log(`reference scenario server on http://127.0.0.1:${s.port}`);
}
