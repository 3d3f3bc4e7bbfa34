'use strict';
// Reference target: the Node `socket.io` server (version pinned in
// benchmarks/package.json), same events as the Python Socket.IO targets.
const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[process.argv.indexOf('--port') + 1]);
const server = http.createServer();
const io = new Server(server, { serveClient: false });

io.on('connection', (socket) => {
  socket.on('echo', (...args) => socket.emit('echo', ...args));
  socket.on('ack', (...args) => {
    const cb = args.pop();
    if (typeof cb === 'function') cb(...args);
  });
  socket.on('bcast', (...args) => io.emit('bcast', ...args));
});

server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
