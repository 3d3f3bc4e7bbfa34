// The reference server for the Admin UI scenarios: Node's socket.io 4.8 instrumented with
// @socket.io/admin-ui, with the handlers of tests/live/test_admin_ui.py's make_server.
// Usage: node admin_reference_server.mjs <username> <bcrypt hash> --port <port>
// Listens on 127.0.0.1 until killed.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { instrument } from "@socket.io/admin-ui";

const [username, password, , port] = process.argv.slice(2);
const httpServer = createServer();
const io = new Server(httpServer);

io.on("connection", (socket) => {
  socket.data.room = String(socket.handshake.auth.room ?? "lobby");
  socket.join(socket.data.room);
  socket.on("shout", () => {});
  socket.on("echo", (...args) => {
    const ack = args.pop();
    ack(...args);
  });
  socket.on("shout-room", (room, text, ack) => {
    io.to(room).emit("news", text);
    ack("ok");
  });
  socket.on("enter", (room) => {
    socket.leave(socket.data.room);
    socket.join(room);
    socket.data.room = room;
  });
});

instrument(io, { auth: { type: "basic", username, password }, mode: "development" });
httpServer.listen(Number(port), "127.0.0.1");
