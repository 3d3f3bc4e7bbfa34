'use strict';
// Fixed-count loader for benchmarks/instructions.py (server instructions per message).
//
// Unlike load.js, which runs for a time window, this does a fixed amount of work
// so that the server's instruction count depends on what it was asked to do,
// not on how fast it (or anything else on the machine) was:
//
//   setup (connect clients) -> warm-up (W units) -> barrier "start"
//   -> measured part (N units) -> barrier "stop" -> teardown
//
// At each barrier it prints {"barrier": name} and waits for one line on stdin:
// the driver zeroes or dumps the server's counters meanwhile. The last stdout
// line is the JSON result. Every loop is bounded by count, each phase by a
// timeout, and the whole process by a hard deadline.
//
// Usage: node count.js '<json config>'   (same connection fields as load.js)

const readline = require('readline');
const http = require('http');
const { cfg, now, sleep, intAt, openWs, openMany, httpReq } = require('./load.js');

const PAYLOAD = 'x'.repeat(cfg.payload_bytes || 32);
const PHASE_TIMEOUT_MS = (cfg.phase_timeout_s || 300) * 1000;
const HARD_DEADLINE_S = cfg.deadline_s || 900;

// ------------------------------------------------------------------ barrier
const lines = readline.createInterface({ input: process.stdin });
const waiting = [];
lines.on('line', () => {
  const next = waiting.shift();
  if (next) next();
});
lines.on('close', () => {
  for (const next of waiting.splice(0)) next(new Error('driver went away'));
});

function barrier(name) {
  return new Promise((resolve, reject) => {
    waiting.push((err) => (err ? reject(err) : resolve()));
    process.stdout.write(JSON.stringify({ barrier: name }) + '\n');
  });
}

// A promise settled by `done()` or failed after the phase timeout.
function phase(what) {
  let resolve;
  let reject;
  const p = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(() => reject(new Error(`${what}: timed out`)), PHASE_TIMEOUT_MS);
  p.done = () => {
    clearTimeout(timer);
    resolve();
  };
  p.fail = (e) => {
    clearTimeout(timer);
    reject(e);
  };
  return p;
}

// Close every connection and wait (bounded) until the server has closed each.
async function closeAllWait(conns) {
  for (const c of conns) if (c && !c.closed) c.close();
  const until = now() + PHASE_TIMEOUT_MS;
  while (now() < until && conns.some((c) => c && !c.closed)) await sleep(20);
  const open = conns.filter((c) => c && !c.closed).length;
  for (const c of conns) if (c && !c.closed) c.terminate();
  if (open) throw new Error(`${open} connections not closed by the server in time`);
}

// ------------------------------------------------------------------- echo
// `conns` x `inflight` closed loop of plain (`42["echo",..]`) or acknowledged
// (`42<id>["ack",..]` -> `43<id>[..]`) events; one unit = one round trip.
function echoScenario() {
  const ack = !!cfg.ack;
  let seq = 0;
  let conns = [];
  return {
    unit: 'message',
    async setup() {
      conns = (await openMany(cfg.conns, 50, now() + PHASE_TIMEOUT_MS)).conns;
    },
    run(total) {
      const p = phase(`echo ${total}`);
      let sent = 0;
      let received = 0;
      const sendOne = (c) => {
        const s = seq++;
        sent++;
        c.send(ack ? `42${s}["ack",${s},"${PAYLOAD}"]` : `42["echo",${s},"${PAYLOAD}"]`);
      };
      for (const c of conns) {
        c.onframe = (buf) => {
          if (buf[0] !== 0x34 || buf[1] !== (ack ? 0x33 : 0x32)) return; // "43" / "42"
          if (++received === total) p.done();
          else if (sent < total) sendOne(c);
        };
      }
      for (let j = 0; j < cfg.inflight && sent < total; j++) {
        for (const c of conns) if (sent < total) sendOne(c);
      }
      return p;
    },
    teardown: () => closeAllWait(conns),
  };
}

// ---------------------------------------------------------------- fan-out
// One connection sends `42["bcast",<round>,..]`, the server emits it to every
// socket (the sender included); the next round starts when all have it. One
// unit = one delivery, so a run of R rounds is R x conns units.
function fanoutScenario() {
  let conns = [];
  let round = 0;
  const n = cfg.conns;
  return {
    unit: 'delivery',
    perUnit: n,
    async setup() {
      conns = (await openMany(n, 50, now() + PHASE_TIMEOUT_MS)).conns;
    },
    async run(deliveries) {
      const rounds = Math.ceil(deliveries / n);
      for (let i = 0; i < rounds; i++) {
        const r = round++;
        const p = phase(`fan-out round ${r}`);
        let got = 0;
        for (const c of conns) {
          c.onframe = (buf) => {
            if (buf[0] !== 0x34 || buf[1] !== 0x32 || intAt(buf, 9) !== r) return;
            if (++got === n) p.done();
          };
        }
        conns[0].send(`42["bcast",${r},"${PAYLOAD}"]`);
        await p;
      }
      return rounds * n;
    },
    teardown: () => closeAllWait(conns),
  };
}

// ---------------------------------------------------------------- polling
// Engine.IO clients on long-polling only, one GET always outstanding, one echo
// in flight each (POST per message); one unit = one round trip.
function pollingScenario() {
  const base = cfg.ws_path || '/socket.io/';
  const clients = [];
  let seq = 0;
  let onEcho = null;
  let onFailure = null;
  let failure = null;
  const failed = (e) => {
    failure = failure || e;
    if (onFailure) onFailure(failure);
  };

  function makeClient() {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    const c = { agent, sid: null, queue: [], posting: false, ready: false, done: false };
    c.q = () => `${base}?EIO=4&transport=polling&sid=${c.sid}`;
    c.flush = () => {
      if (c.posting || c.queue.length === 0 || c.done) return;
      const body = c.queue.join('\x1e');
      c.queue.length = 0;
      c.posting = true;
      httpReq(agent, 'POST', c.q(), body, PHASE_TIMEOUT_MS).then(
        () => {
          c.posting = false;
          c.flush();
        },
        (e) => failed(e),
      );
    };
    c.push = (pkt) => {
      c.queue.push(pkt);
      c.flush();
    };
    c.poll = async () => {
      while (!c.done) {
        let text;
        try {
          text = await httpReq(agent, 'GET', c.q(), null, PHASE_TIMEOUT_MS);
        } catch (e) {
          if (!c.done) failed(e);
          return;
        }
        for (const p of text.split('\x1e')) {
          if (p === '2') c.push('3');
          else if (p.startsWith('40')) c.ready = true;
          else if (p.startsWith('42') && onEcho) onEcho(c);
        }
      }
    };
    return c;
  }

  return {
    unit: 'message',
    async setup() {
      for (let i = 0; i < cfg.conns; i++) {
        const c = makeClient();
        const open = await httpReq(c.agent, 'GET', `${base}?EIO=4&transport=polling`, null, PHASE_TIMEOUT_MS);
        const m = /"sid":"([^"]+)"/.exec(open);
        if (!m) throw new Error('bad handshake ' + open.slice(0, 80));
        c.sid = m[1];
        await httpReq(c.agent, 'POST', c.q(), '40', PHASE_TIMEOUT_MS);
        clients.push(c);
        c.loop = c.poll();
      }
      const until = now() + PHASE_TIMEOUT_MS;
      while (clients.some((c) => !c.ready) && now() < until && !failure) await sleep(20);
      if (failure || clients.some((c) => !c.ready)) throw new Error(`polling connect: ${failure || 'timeout'}`);
    },
    run(total) {
      const p = phase(`polling echo ${total}`);
      let sent = 0;
      let received = 0;
      const sendOne = (c) => {
        sent++;
        c.push(`42["echo",${seq++},"${PAYLOAD}"]`);
      };
      onEcho = (c) => {
        if (++received === total) p.done();
        else if (sent < total) sendOne(c);
      };
      onFailure = (e) => p.fail(e);
      for (const c of clients) if (sent < total) sendOne(c);
      return p;
    },
    async teardown() {
      for (const c of clients) {
        c.done = true;
        await httpReq(c.agent, 'POST', c.q(), '1', PHASE_TIMEOUT_MS).catch(() => {});
      }
      // A GET the server does not answer after the close is not waited for long:
      // the counting is over, and the agents' sockets are destroyed anyway.
      await Promise.race([Promise.allSettled(clients.map((c) => c.loop)), sleep(5000)]);
      for (const c of clients) c.agent.destroy();
    },
  };
}

// ---------------------------------------------------------------- connect
// Open WebSocket clients (through the Socket.IO CONNECT reply), `concurrency`
// handshakes at a time, then close them all and wait until the server has
// closed each; one unit = one connection opened and closed.
function connectScenario() {
  return {
    unit: 'connection',
    async setup() {},
    async run(total) {
      const { conns } = await openMany(total, cfg.concurrency || 20, now() + PHASE_TIMEOUT_MS);
      await closeAllWait(conns);
    },
    async teardown() {},
  };
}

// ------------------------------------------------------------------- main
const SCENARIOS = { echo: echoScenario, fanout: fanoutScenario, polling: pollingScenario, connect: connectScenario };

const hard = setTimeout(() => {
  process.stdout.write(JSON.stringify({ ok: false, error: `loader hard deadline ${HARD_DEADLINE_S}s` }) + '\n');
  process.exit(2);
}, HARD_DEADLINE_S * 1000);

(async () => {
  const make = SCENARIOS[cfg.scenario];
  if (!make) throw new Error(`unknown scenario ${cfg.scenario}`);
  const s = make();
  const t0 = now();
  await s.setup();
  const warm = (await s.run(cfg.warmup)) || cfg.warmup;
  await barrier('start');
  const t1 = now();
  const units = (await s.run(cfg.measure)) || cfg.measure;
  const measuredS = (now() - t1) / 1000;
  await barrier('stop');
  await s.teardown();
  clearTimeout(hard);
  const res = { ok: true, unit: s.unit, warmup_units: warm, units, measured_s: measuredS, total_s: (now() - t0) / 1000 };
  process.stdout.write(JSON.stringify(res) + '\n');
  lines.close();
  process.exit(0);
})().catch((e) => {
  clearTimeout(hard);
  process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e) }) + '\n');
  process.exit(1);
});
