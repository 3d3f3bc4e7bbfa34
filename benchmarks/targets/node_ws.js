'use strict';
// Reference target: a raw Node `ws` server. Echoes every text frame; a frame
// starting with 42["bcast" is sent to every connected client instead.
const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[process.argv.indexOf('--port') + 1]);
const server = http.createServer();
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });
const BCAST = Buffer.from('42["bcast"');

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (data.length >= BCAST.length && data.compare(BCAST, 0, BCAST.length, 0, BCAST.length) === 0) {
      for (const c of wss.clients) c.send(data, { binary: isBinary });
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
});

server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
