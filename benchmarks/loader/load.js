'use strict';
// Load generator for the realtime benchmark harness.
//
// Speaks raw Engine.IO v4 / Socket.IO v5 frames over `ws` (or plain text
// frames for the raw WebSocket targets) and raw HTTP for long-polling, so
// that the per-message cost on the loader side stays small.
//
// Usage: node load.js '<json config>'   -> prints one JSON object on stdout.
//
// Every loop is bounded by a message/round count AND by time; a hard
// deadline ends the process whatever state it is in.

const http = require('http');
const fs = require('fs');
const { performance } = require('perf_hooks');
const net = require('net');
const crypto = require('crypto');
const WebSocket = require('ws');

const cfg = JSON.parse(process.argv[2] || '{}');
const HOST = cfg.host || '127.0.0.1';
const PORT = cfg.port;
// Several servers of one cluster (scenario fanout-redis): client i connects to
// PORTS[i % PORTS.length], so connection 0, the sender, is on the first.
const PORTS = cfg.ports || [PORT];
const PROTO = cfg.proto || 'sio'; // 'sio' | 'raw'
const WS_PATH = cfg.ws_path || (PROTO === 'sio' ? '/socket.io/' : '/ws');
const PAYLOAD = 'x'.repeat(cfg.payload_bytes || 32);
const HARD_DEADLINE_S = cfg.deadline_s || 60;
const CLK_TCK = cfg.clk_tck || 100;
const CLIENT = cfg.client || 'fast'; // 'fast' | 'ws'
// Behind a balancer (benchmarks/balancer.py): with client_header, client i
// sends `X-Bench-Client: i` on every request (what a sticky balancer hashes to
// pin a client to a node, as an affinity cookie would be), and every response
// names the node that served it in an X-Upstream header, which is how the
// loader counts the requests that landed on a node other than their owner.
const CLIENT_HEADER = !!cfg.client_header;
const clientHeaders = (i) => (CLIENT_HEADER ? { 'X-Bench-Client': String(i) } : {});
// Echo over WebSocket reached by upgrading a polling session (through a
// balancer, the WebSocket lands on any node, not necessarily the one that made
// the session). upgrade "early": as socket.io-client does by default, the
// probe starts right after the handshake, while `40` is on its way; "late":
// the upgrade starts only once `40{..}` came back over polling.
const UPGRADE = cfg.upgrade || null; // null | 'early' | 'late'

const now = () => performance.now(); // ms, monotonic

// --------------------------------------------------------------- utilities
function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

class Samples {
  constructor(cap) {
    this.buf = new Float64Array(cap);
    this.n = 0;
    this.dropped = 0;
  }
  add(v) {
    if (this.n < this.buf.length) this.buf[this.n++] = v;
    else this.dropped++;
  }
  summary() {
    const a = this.buf.subarray(0, this.n).slice().sort();
    const q = (p) => (a.length ? a[Math.min(a.length - 1, Math.floor(p * a.length))] : null);
    return { n: a.length, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: a.length ? a[a.length - 1] : null };
  }
}

// CPU ticks of the server, summed over its processes (cfg.server_pids for a cluster).
function serverCpuTicks() {
  const pids = cfg.server_pids || [cfg.server_pid];
  let sum = 0;
  for (const pid of pids) {
    const t = procCpuTicks(pid);
    if (t == null) return null;
    sum += t;
  }
  return sum;
}

function procCpuTicks(pid) {
  if (!pid) return null;
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
  } catch (e) {
    return null;
  }
}

function procRssKiB(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(s);
    return m ? Number(m[1]) : null;
  } catch (e) {
    return null;
  }
}

// The server's CPU line in /proc/stat: [busy ticks, steal ticks].
function cpuLineTicks(cpu) {
  if (cpu == null) return null;
  try {
    const line = fs
      .readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`cpu${cpu} `));
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return [f[0] + f[1] + f[2] + f[5] + f[6] + f[7], f[7]];
  } catch (e) {
    return null;
  }
}

// Measures loader CPU (this process), server CPU, and what else ran on the
// server's core (other processes, steal) over a window.
class CpuWindow {
  start() {
    this.t0 = now();
    this.c0 = process.cpuUsage();
    this.s0 = serverCpuTicks();
    this.k0 = cpuLineTicks(cfg.server_cpu_id);
    this.r0 = procCpuTicks(cfg.redis_pid);
    this.w0 = Object.fromEntries(Object.entries(cfg.watch_pids || {}).map(([k, p]) => [k, procCpuTicks(p)]));
  }
  stop() {
    const wall = (now() - this.t0) / 1000;
    const c = process.cpuUsage(this.c0);
    const s1 = serverCpuTicks();
    const k1 = cpuLineTicks(cfg.server_cpu_id);
    const r1 = procCpuTicks(cfg.redis_pid);
    // the Redis server a cluster meets on (not pinned): its own CPU over the window
    const redis = this.r0 != null && r1 != null ? (r1 - this.r0) / CLK_TCK / wall : null;
    const server = this.s0 != null && s1 != null ? (s1 - this.s0) / CLK_TCK / wall : null;
    let other = null;
    let steal = null;
    if (this.k0 && k1 && server != null) {
      other = Math.max(0, (k1[0] - this.k0[0]) / CLK_TCK / wall - server);
      steal = (k1[1] - this.k0[1]) / CLK_TCK / wall;
    }
    // other processes of the setup (a balancer): each one's CPU over the window
    const watched = {};
    for (const [k, p] of Object.entries(cfg.watch_pids || {})) {
      const t1 = procCpuTicks(p);
      watched[k] = this.w0[k] != null && t1 != null ? (t1 - this.w0[k]) / CLK_TCK / wall : null;
    }
    return {
      cpu_of: watched,
      loader_cpu: (c.user + c.system) / 1e6 / wall,
      server_cpu: server,
      server_core_other: other,
      server_core_steal: steal,
      redis_cpu: redis,
    };
  }
}

// Read the integer that starts at the first digit at or after `from`.
function intAt(buf, from) {
  let i = from;
  const n = buf.length;
  while (i < n && (buf[i] < 48 || buf[i] > 57)) i++;
  let v = 0;
  while (i < n && buf[i] >= 48 && buf[i] <= 57) v = v * 10 + (buf[i++] - 48);
  return v;
}

// ---------------------------------------------------------- minimal client
// A deliberately small WebSocket client (RFC 6455) on `net`: text frames out
// (masked with an all-zero key, which is valid framing and makes masking a
// copy), frames in parsed straight from the socket's chunks and handed over
// as zero-copy Buffer views. Per message it costs a fraction of what `ws`
// costs, which keeps the loader off its core's ceiling. `client: "ws"` in
// the config switches back to the `ws` package for cross-checking.
class FastWs {
  constructor(host, port, path, extraHeaders = {}) {
    this.onopen = null;
    this.head = null;
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
    this.closed = false;
    this.closeSent = false;
    this.upgraded = false;
    this.buf = null;
    this.frags = null;
    const sock = (this.sock = net.connect({ host, port }));
    const extra = Object.entries(extraHeaders)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    sock.setNoDelay(true);
    const key = crypto.randomBytes(16).toString('base64');
    sock.on('connect', () => {
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
      );
    });
    sock.on('data', (chunk) => this._data(chunk));
    sock.on('error', (e) => {
      if (this.onerror) this.onerror(e);
    });
    sock.on('close', () => {
      this.closed = true;
      if (this.onclose) this.onclose();
    });
  }

  _data(chunk) {
    let buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = null;
    if (!this.upgraded) {
      const idx = buf.indexOf('\r\n\r\n');
      if (idx < 0) {
        if (buf.length > 16384) this.sock.destroy(new Error('bad upgrade response'));
        else this.buf = buf;
        return;
      }
      const head = buf.toString('latin1', 0, idx);
      if (!/^HTTP\/1\.1 101/.test(head)) {
        this.sock.destroy(new Error('upgrade refused: ' + head.split('\r\n')[0]));
        return;
      }
      this.upgraded = true;
      this.head = head;
      if (this.onopen) this.onopen();
      if (buf.length === idx + 4) return;
      buf = buf.subarray(idx + 4);
    }
    const n = buf.length;
    let off = 0;
    while (n - off >= 2) {
      const b0 = buf[off];
      const b1 = buf[off + 1];
      let len = b1 & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (n - off < 4) break;
        len = buf.readUInt16BE(off + 2);
        hdr = 4;
      } else if (len === 127) {
        if (n - off < 10) break;
        len = Number(buf.readBigUInt64BE(off + 2));
        hdr = 10;
      }
      const masked = b1 & 0x80;
      if (masked) hdr += 4;
      if (n - off < hdr + len) break;
      let payload = buf.subarray(off + hdr, off + hdr + len);
      if (masked) {
        payload = Buffer.from(payload);
        for (let i = 0; i < len; i++) payload[i] ^= buf[off + hdr - 4 + (i & 3)];
      }
      off += hdr + len;
      this._frame(b0 & 0x0f, b0 & 0x80, payload);
    }
    if (off < n) this.buf = Buffer.from(buf.subarray(off)); // copy: chunk may be reused
  }

  _frame(opcode, fin, payload) {
    if (opcode === 1 || opcode === 2 || opcode === 0) {
      if (!fin || this.frags) {
        (this.frags || (this.frags = [])).push(Buffer.from(payload));
        if (!fin) return;
        payload = Buffer.concat(this.frags);
        this.frags = null;
      }
      if (this.onmessage) this.onmessage(payload);
    } else if (opcode === 8) {
      if (!this.closeSent) this._control(0x88, payload.subarray(0, 2));
      this.closeSent = true;
      this.sock.end();
    } else if (opcode === 9) {
      this._control(0x8a, payload);
    }
  }

  _control(b0, payload) {
    const out = Buffer.alloc(6 + payload.length);
    out[0] = b0;
    out[1] = 0x80 | payload.length;
    payload.copy(out, 6);
    if (!this.sock.destroyed) this.sock.write(out);
  }

  send(str) {
    const len = Buffer.byteLength(str);
    const hdr = len < 126 ? 6 : len < 65536 ? 8 : 14;
    const out = Buffer.allocUnsafe(hdr + len);
    out[0] = 0x81;
    if (len < 126) out[1] = 0x80 | len;
    else if (len < 65536) {
      out[1] = 0x80 | 126;
      out.writeUInt16BE(len, 2);
    } else {
      out[1] = 0x80 | 127;
      out.writeBigUInt64BE(BigInt(len), 2);
    }
    out.writeUInt32BE(0, hdr - 4); // all-zero masking key
    out.write(str, hdr, 'utf8');
    this.sock.write(out);
  }

  close() {
    if (this.closed) return;
    if (!this.closeSent && this.upgraded) {
      this.closeSent = true;
      this._control(0x88, Buffer.from([0x03, 0xe8]));
    } else if (!this.upgraded) this.sock.destroy();
  }

  terminate() {
    this.sock.destroy();
  }
}

// ------------------------------------------------------------ WS connection
// Resolves with {send(str), close(), terminate(), onframe} once usable: for
// 'raw' on open, for 'sio' after `0{..}` open, `40` sent and `40{"sid"..}`
// received. Engine.IO pings (`2`) are answered with `3` transparently; other
// frames go to conn.onframe(Buffer).
// With `sid` (an upgrade of a polling session): `2probe` -> `3probe`, then,
// once `paused` resolves (as engine.io-client pauses polling: the POST in
// flight and the pending GET done), `5`, and the connection is ready;
// conn.upstream is then the X-Upstream of the 101 response (the node it landed on).
function openWs(timeoutMs, port = PORT, index = 0, sid = null, paused = null) {
  return new Promise((resolve, reject) => {
    let path = PROTO === 'sio' ? `${WS_PATH}?EIO=4&transport=websocket` : WS_PATH;
    if (sid) path += `&sid=${sid}`;
    const conn = { onframe: null, ready: false, closed: false, upstream: null };
    let ws;
    let onMessage;
    if (CLIENT === 'ws') {
      ws = new WebSocket(`ws://${HOST}:${port}${path}`, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        headers: clientHeaders(index),
      });
      ws.on('upgrade', (res) => (conn.upstream = res.headers['x-upstream'] || null));
      ws.on('open', () => opened());
      ws.on('message', (data) => onMessage(data));
      ws.on('error', (e) => failed(e));
      ws.on('close', () => (conn.closed = true));
    } else {
      ws = new FastWs(HOST, port, path, clientHeaders(index));
      ws.onopen = () => {
        const m = /\r\nx-upstream:\s*([^\r]*)/i.exec(ws.head || '');
        conn.upstream = m ? m[1].trim() : null;
        opened();
      };
      ws.onmessage = (data) => onMessage(data);
      ws.onerror = (e) => failed(e);
      ws.onclose = () => {
        conn.closed = true;
        if (!conn.ready) failed(new Error('closed during connect'));
      };
    }
    conn.send = (s) => ws.send(s);
    conn.close = () => ws.close();
    conn.terminate = () => ws.terminate();
    const timer = setTimeout(() => failed(new Error('connect timeout')), timeoutMs);
    let settled = false;
    function failed(e) {
      if (conn.ready || settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(e);
    }
    function ready() {
      settled = true;
      clearTimeout(timer);
      conn.ready = true;
      resolve(conn);
    }
    // sio: 0 waiting engine open, 1 waiting sio connect, 2 ready, 3 waiting 3probe
    let state = sid ? 3 : 0;
    function opened() {
      if (PROTO === 'raw') ready();
      else if (sid) {
        conn.probedAt = now();
        ws.send('2probe');
      }
    }
    onMessage = (data) => {
      if (PROTO === 'raw') {
        if (conn.onframe) conn.onframe(data);
        return;
      }
      // Engine.IO packet type is the first byte.
      if (data.length === 1 && data[0] === 0x32) {
        ws.send('3');
        return;
      }
      if (state === 2) {
        if (conn.onframe) conn.onframe(data);
        return;
      }
      const s = data.toString();
      if (state === 3 && s === '3probe') {
        state = 4; // pausing polling
        Promise.resolve(paused).then(
          () => {
            if (settled) return;
            ws.send('5');
            state = 2;
            ready();
          },
          (e) => failed(e),
        );
      } else if (state === 0 && s[0] === '0') {
        state = 1;
        ws.send('40');
      } else if (state === 1 && s.startsWith('40')) {
        state = 2;
        ready();
      } else if (state === 1 && s.startsWith('44')) {
        failed(new Error('connect_error ' + s));
      }
    };
  });
}

// A session opened over polling, then upgraded with its sid while a GET is
// held (the server releases that GET with NOOP): `40` POSTed, and the upgrade
// probe started at once (UPGRADE "early"; `5` only once that POST is answered,
// as engine.io-client does) or after `40{..}` was polled ("late");
// ready once `40{..}` came, over polling or on the WebSocket. conn.owner is
// the X-Upstream of the handshake (the node that made the session),
// conn.elsewhere whether the WebSocket landed on another node (then the
// session is relayed to its owner, or has moved to that node).
async function openUpgraded(timeoutMs, port, index) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  agent.index = index;
  const by = now() + timeoutMs;
  let connected = false;
  try {
    const base = `${WS_PATH}?EIO=4&transport=polling`;
    const open = await httpCall(agent, 'GET', base, null, timeoutMs, port);
    const m = /"sid":"([^"]+)"/.exec(open.text);
    if (!m) throw new Error('bad handshake ' + open.text.slice(0, 80));
    const sid = m[1];
    const q = `${base}&sid=${sid}`;
    const opened = now();
    // as socket.io-client: `40` goes out while the probe starts, not before it
    const posted = httpCall(agent, 'POST', q, '40', timeoutMs, port);
    if (UPGRADE === 'late') await posted;
    while (UPGRADE === 'late' && !connected && now() < by) {
      connected = (await httpCall(agent, 'GET', q, null, timeoutMs, port)).text.includes('40{');
    }
    const held = httpCall(agent, 'GET', q, null, timeoutMs, port).then(
      (r) => (connected = connected || r.text.includes('40{')),
      (e) => e, // a 400 once upgraded: polling is over either way
    );
    const conn = await openWs(timeoutMs, port, index, sid, Promise.all([posted, held]));
    conn.onframe = (buf) => (connected = connected || buf.toString().startsWith('40'));
    conn.probeDelay = conn.probedAt - opened; // from the handshake's answer to `2probe`
    await posted;
    await held;
    while (!connected && now() < by) await sleep(2);
    conn.onframe = null;
    if (!connected) throw new Error('no CONNECT reply after the upgrade');
    conn.owner = open.upstream;
    conn.elsewhere = open.upstream != null && conn.upstream != null && open.upstream !== conn.upstream;
    return conn;
  } finally {
    agent.destroy();
  }
}

function probeDelays(conns) {
  const d = new Samples(conns.length);
  for (const c of conns) d.add(c.probeDelay);
  const limit = cfg.upgrade_wait_ms;
  const late = limit == null ? null : conns.filter((c) => c.probeDelay > limit);
  return {
    ...d.summary(),
    later_than_wait: late ? late.length : null,
    later_than_wait_elsewhere: late ? late.filter((c) => c.elsewhere).length : null,
  };
}

async function openMany(n, concurrency, deadlineAt, onConnected) {
  const conns = new Array(n);
  const lat = new Samples(n);
  let next = 0;
  let failures = 0;
  let firstError = null;
  async function worker() {
    while (next < n && now() < deadlineAt) {
      const i = next++;
      const t = now();
      try {
        const timeoutMs = Math.max(1000, Math.min(15000, deadlineAt - now()));
        const port = PORTS[i % PORTS.length];
        conns[i] = await (UPGRADE ? openUpgraded(timeoutMs, port, i) : openWs(timeoutMs, port, i));
        lat.add(now() - t);
        if (onConnected) onConnected(conns[i], i);
      } catch (e) {
        failures++;
        if (!firstError) firstError = String(e && e.message ? e.message : e);
        conns[i] = null;
        if (failures > Math.max(10, n / 100)) throw new Error(`too many connect failures: ${firstError}`);
      }
    }
  }
  const workers = [];
  for (let w = 0; w < Math.min(concurrency, n); w++) workers.push(worker());
  await Promise.all(workers);
  const ok = conns.filter((c) => c);
  if (ok.length < n) throw new Error(`connected ${ok.length}/${n} (${firstError || 'deadline'})`);
  return { conns: ok, lat, failures };
}

async function closeAll(conns) {
  for (const c of conns) {
    if (c && !c.closed) {
      try {
        c.close();
      } catch (e) {
        /* ignore */
      }
    }
  }
  const until = now() + 2000;
  while (now() < until && conns.some((c) => c && !c.closed)) await sleep(20);
  for (const c of conns) if (c && !c.closed) c.terminate();
}

// ------------------------------------------------------------------ echo
// conns x inflight closed loop. Plain: 42["echo",<seq>,"<payload>"] ->
// 42["echo",<seq>,...]. Ack: 42<seq>["ack",<seq>,"<payload>"] -> 43<seq>[...].
// Raw: the plain frame, echoed verbatim.
async function scenarioEcho() {
  const n = cfg.conns;
  const k = cfg.inflight;
  const ack = !!cfg.ack && PROTO === 'sio';
  const warmMs = cfg.warmup_s * 1000;
  const durMs = cfg.duration_s * 1000;
  const maxMsgs = cfg.max_msgs;
  const deadlineAt = now() + HARD_DEADLINE_S * 1000 - 3000;
  const { conns } = await openMany(n, cfg.connect_concurrency || 50, deadlineAt);

  const RING = 1 << 16;
  const sentAt = new Float64Array(RING);
  const samples = new Samples(cfg.max_samples || 2000000);
  // with upgrades through a balancer: round trips of WebSockets that landed
  // elsewhere than their session's node, and of the others, apart
  const split = { true: new Samples(UPGRADE ? 1000000 : 0), false: new Samples(UPGRADE ? 1000000 : 0) };
  let seq = 0;
  let sent = 0;
  let received = 0;
  let inWindow = 0;
  let elsewhereInWindow = 0;
  let sending = true;
  let outstanding = 0;
  let tStart = 0;
  let tMeasure = 0;
  let tEnd = 0;
  const cpu = new CpuWindow();

  const sendOne = (c) => {
    const s = seq++;
    sentAt[s & (RING - 1)] = now();
    sent++;
    outstanding++;
    c.send(ack ? `42${s}["ack",${s},"${PAYLOAD}"]` : `42["echo",${s},"${PAYLOAD}"]`);
  };
  for (const c of conns) {
    c.onframe = (buf) => {
      let s;
      if (ack) {
        if (buf[0] !== 0x34 || buf[1] !== 0x33) return; // not "43"
        s = intAt(buf, 2);
      } else {
        if (buf[0] !== 0x34 || buf[1] !== 0x32) return; // not "42"
        s = intAt(buf, 9);
      }
      const t = now();
      outstanding--;
      received++;
      if (t >= tMeasure && t <= tEnd) {
        inWindow++;
        if (c.elsewhere) elsewhereInWindow++;
        const st = sentAt[s & (RING - 1)];
        if (st >= tMeasure) {
          samples.add(t - st);
          if (UPGRADE) split[!!c.elsewhere].add(t - st);
        }
      }
      if (sending && sent < maxMsgs) sendOne(c);
    };
  }
  tStart = now();
  tMeasure = tStart + warmMs;
  tEnd = tMeasure + durMs;
  for (let j = 0; j < k; j++) for (const c of conns) sendOne(c);
  await sleep(warmMs);
  cpu.start();
  // Stop early if the message budget runs out.
  while (now() < tEnd && sent < maxMsgs) await sleep(Math.min(50, tEnd - now()));
  const actualEnd = Math.min(now(), tEnd);
  const usage = cpu.stop();
  sending = false;
  const drainUntil = now() + 2000;
  while (outstanding > 0 && now() < drainUntil) await sleep(10);
  const measured = (actualEnd - tMeasure) / 1000;
  await closeAll(conns);
  const known = conns.every((c) => c.upstream != null && c.owner != null);
  return {
    throughput: inWindow / measured,
    unit: 'msg/s',
    ...samples.summary(),
    sent,
    received,
    lost_or_late: outstanding,
    // Through a balancer, with upgrades: the messages (round trips) whose
    // WebSocket landed on a node other than the one that made the session, and
    // those clients.
    requests_in_window: inWindow,
    elsewhere_in_window: UPGRADE && known ? elsewhereInWindow : null,
    elsewhere_conns: UPGRADE && known ? conns.filter((c) => c.elsewhere).length : null,
    elsewhere_latency: UPGRADE && known ? split[true].summary() : null,
    // from each handshake's answer to its `2probe`: a session can only move to
    // the node its WebSocket reached if the probe comes within the server's
    // relay_upgrade_wait (cfg.upgrade_wait_ms); the later ones stay where made
    probe_delay: UPGRADE ? probeDelays(conns) : null,
    direct_latency: UPGRADE && known ? split[false].summary() : null,
    measured_s: measured,
    ...usage,
  };
}

// ---------------------------------------------------------------- fan-out
// One connection sends 42["bcast",<round>,"<payload>"]; the server emits it
// to every connected socket (the sender included). Rounds are sequential:
// the next broadcast is triggered when the last recipient has the previous.
async function scenarioFanout() {
  const n = cfg.conns;
  const warmRounds = cfg.warmup_rounds;
  const maxRounds = cfg.max_rounds;
  const durMs = cfg.duration_s * 1000;
  const roundTimeoutMs = cfg.round_timeout_s * 1000;
  const deadlineAt = now() + HARD_DEADLINE_S * 1000 - 3000;
  const { conns } = await openMany(n, 50, deadlineAt);
  await sleep(cfg.settle_ms || 200);

  const lastLat = new Samples(maxRounds + warmRounds + 1);
  const perDelivery = new Samples(Math.min(4000000, (maxRounds + warmRounds + 1) * n));
  let round = -1;
  let got = 0;
  let t0 = 0;
  let resolveRound = null;
  let duplicates = 0;
  for (const c of conns) {
    c.lastRound = -1;
    c.onframe = (buf) => {
      if (buf[0] !== 0x34 || buf[1] !== 0x32) return;
      const r = intAt(buf, 9);
      if (r !== round) return; // late frame from a timed-out round
      // a round counts each recipient once (a cluster that delivered twice would
      // otherwise finish its rounds early)
      if (c.lastRound === r) {
        duplicates++;
        return;
      }
      c.lastRound = r;
      const t = now();
      if (round >= warmRounds) perDelivery.add(t - t0);
      if (++got === n) {
        if (round >= warmRounds) lastLat.add(t - t0);
        const f = resolveRound;
        resolveRound = null;
        if (f) f(true);
      }
    };
  }
  const runRound = (r) =>
    new Promise((resolve) => {
      round = r;
      got = 0;
      resolveRound = resolve;
      const timer = setTimeout(() => {
        if (resolveRound === resolve) {
          resolveRound = null;
          resolve(false);
        }
      }, roundTimeoutMs);
      t0 = now();
      conns[0].send(`42["bcast",${r},"${PAYLOAD}"]`);
    }).then((ok) => ok);

  let r = 0;
  let timeouts = 0;
  for (; r < warmRounds; r++) if (!(await runRound(r))) timeouts++;
  const cpu = new CpuWindow();
  cpu.start();
  const tm = now();
  const endAt = tm + durMs;
  let measuredRounds = 0;
  let delivered = 0;
  while (measuredRounds < maxRounds && now() < endAt && now() < deadlineAt) {
    const ok = await runRound(r++);
    measuredRounds++;
    delivered += ok ? n : got;
    if (!ok) {
      timeouts++;
      if (timeouts > 3) break;
    }
  }
  const measured = (now() - tm) / 1000;
  const usage = cpu.stop();
  await closeAll(conns);
  const last = lastLat.summary();
  const per = perDelivery.summary();
  return {
    throughput: delivered / measured,
    unit: 'deliveries/s',
    p50_ms: last.p50_ms,
    p99_ms: last.p99_ms,
    max_ms: last.max_ms,
    n: last.n,
    delivery_p50_ms: per.p50_ms,
    delivery_p99_ms: per.p99_ms,
    rounds: measuredRounds,
    round_timeouts: timeouts,
    duplicates,
    measured_s: measured,
    ...usage,
  };
}

// ---------------------------------------------------------- long-polling
// Engine.IO over HTTP only: handshake GET, POST `40`, GET `40{..}`; then
// each client keeps one GET outstanding and POSTs 42["echo",<seq>,..] with
// one message in flight. Payloads are split on \x1e (record separator).
// Resolves {text, upstream}: the body of a 200 answer and the node that served
// it (the balancer's X-Upstream header; null without a balancer).
function httpCall(agent, method, path, body, timeoutMs, port = PORT) {
  return new Promise((resolve, reject) => {
    const headers = clientHeaders(agent.index || 0);
    if (body != null) {
      headers['Content-Type'] = 'text/plain;charset=UTF-8';
      headers['Content-Length'] = Buffer.byteLength(body);
    }
    const req = http.request({ host: HOST, port, method, path, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) reject(new Error(`${method} ${res.statusCode} ${text.slice(0, 80)}`));
        else resolve({ text, upstream: res.headers['x-upstream'] || null });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} timeout`)));
    req.on('error', reject);
    if (body != null) req.write(body);
    req.end();
  });
}

// Every HTTP request of the polling scenario: counts those completed in the
// measurement window, and those a node other than the session's owner took.
const httpCount = { inWindow: 0, elsewhere: 0, known: true, from: Infinity, to: Infinity };
async function httpReq(agent, method, path, body, timeoutMs, owner = null) {
  const { text, upstream } = await httpCall(agent, method, path, body, timeoutMs);
  const t = now();
  if (owner !== null && t >= httpCount.from && t <= httpCount.to) {
    httpCount.inWindow++;
    if (upstream == null || owner.upstream == null) httpCount.known = false;
    else if (upstream !== owner.upstream) httpCount.elsewhere++;
  }
  return text;
}

async function scenarioPolling() {
  const n = cfg.conns;
  const warmMs = cfg.warmup_s * 1000;
  const durMs = cfg.duration_s * 1000;
  const maxMsgs = cfg.max_msgs;
  const base = cfg.ws_path || '/socket.io/';
  const samples = new Samples(cfg.max_samples || 2000000);
  let seq = 0;
  let sent = 0;
  let inWindow = 0;
  let received = 0;
  let running = true;
  let errors = 0;
  let firstError = null;
  let tMeasure = Infinity;
  let tEnd = Infinity;
  const clients = [];

  function makeClient(index) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    agent.index = index; // whose requests these are (X-Bench-Client)
    const c = { agent, sid: null, queue: [], posting: false, sentAt: 0, ready: false, done: false, upstream: null };
    c.q = () => `${base}?EIO=4&transport=polling&sid=${c.sid}`;
    c.flush = () => {
      if (c.posting || c.queue.length === 0 || c.done) return;
      const body = c.queue.join('\x1e');
      c.queue.length = 0;
      c.posting = true;
      httpReq(agent, 'POST', c.q(), body, 10000, c).then(
        () => {
          c.posting = false;
          c.flush();
        },
        (e) => {
          c.posting = false;
          errors++;
          if (!firstError) firstError = String(e.message);
        },
      );
    };
    c.push = (pkt) => {
      c.queue.push(pkt);
      c.flush();
    };
    c.sendEcho = () => {
      const s = seq++;
      sent++;
      c.sentAt = now();
      c.push(`42["echo",${s},"${PAYLOAD}"]`);
    };
    c.onPacket = (p) => {
      if (p === '2') {
        c.push('3');
      } else if (p.startsWith('42')) {
        const t = now();
        received++;
        if (t >= tMeasure && t <= tEnd) {
          inWindow++;
          if (c.sentAt >= tMeasure) samples.add(t - c.sentAt);
        }
        if (running && sent < maxMsgs) c.sendEcho();
      } else if (p.startsWith('40')) {
        c.ready = true;
      }
    };
    c.pollLoop = async () => {
      while (!c.done) {
        let text;
        try {
          text = await httpReq(agent, 'GET', c.q(), null, 40000, c);
        } catch (e) {
          if (c.done) return;
          errors++;
          if (!firstError) firstError = String(e.message);
          return;
        }
        for (const p of text.split('\x1e')) {
          if (p === '1' || p === '6') continue;
          c.onPacket(p);
        }
      }
    };
    return c;
  }

  const deadlineAt = now() + HARD_DEADLINE_S * 1000 - 3000;
  // Handshakes, 10 at a time.
  let nextIdx = 0;
  async function hsWorker() {
    while (nextIdx < n && now() < deadlineAt) {
      const c = makeClient(nextIdx++);
      const hs = await httpCall(c.agent, 'GET', `${base}?EIO=4&transport=polling`, null, 10000);
      const open = hs.text;
      c.upstream = hs.upstream; // the node that owns the session
      const m = /"sid":"([^"]+)"/.exec(open);
      if (!m) throw new Error('bad handshake ' + open.slice(0, 80));
      c.sid = m[1];
      await httpReq(c.agent, 'POST', c.q(), '40', 10000);
      clients.push(c);
      c.loop = c.pollLoop();
    }
  }
  await Promise.all(Array.from({ length: Math.min(10, n) }, hsWorker));
  const readyBy = now() + 10000;
  while (clients.some((c) => !c.ready) && now() < readyBy) await sleep(20);
  if (clients.some((c) => !c.ready)) throw new Error(`polling connect: ${firstError || 'timeout'}`);

  const tStart = now();
  tMeasure = tStart + warmMs;
  tEnd = tMeasure + durMs;
  httpCount.from = tMeasure;
  httpCount.to = tEnd;
  for (const c of clients) c.sendEcho();
  await sleep(warmMs);
  const cpu = new CpuWindow();
  cpu.start();
  while (now() < tEnd && sent < maxMsgs) await sleep(Math.min(50, Math.max(1, tEnd - now())));
  const actualEnd = Math.min(now(), tEnd);
  const usage = cpu.stop();
  running = false;
  const measured = (actualEnd - tMeasure) / 1000;
  await sleep(200);
  // Close: send Engine.IO close packet, then drop the agents.
  for (const c of clients) {
    c.done = true;
    try {
      await httpReq(c.agent, 'POST', c.q(), '1', 2000);
    } catch (e) {
      /* the server may already have ended the session */
    }
  }
  await Promise.race([Promise.allSettled(clients.map((c) => c.loop)), sleep(2000)]);
  for (const c of clients) c.agent.destroy();
  return {
    throughput: inWindow / measured,
    unit: 'msg/s',
    ...samples.summary(),
    sent,
    received,
    http_errors: errors,
    first_error: firstError,
    // HTTP requests (POSTs and GETs) completed in the window, and those that
    // landed on a node other than their session's owner (null: no X-Upstream)
    requests_in_window: httpCount.inWindow,
    elsewhere_in_window: httpCount.known ? httpCount.elsewhere : null,
    measured_s: measured,
    ...usage,
  };
}

// ---------------------------------------------------------------- connect
// Opens N WebSocket clients (Socket.IO: through `40{"sid"..}`), `concurrency`
// handshakes at a time; reports connections/s and the server's VmRSS growth
// per idle connection.
async function scenarioConnect() {
  const n = cfg.conns;
  const deadlineAt = now() + HARD_DEADLINE_S * 1000 - 5000;
  // Warm the server's code paths, then take the baseline.
  const warm = await openMany(Math.min(20, n), 10, deadlineAt);
  await closeAll(warm.conns);
  await sleep(500);
  const rssBefore = procRssKiB(cfg.server_pid);
  const cpu = new CpuWindow();
  cpu.start();
  const t0 = now();
  const { conns, lat, failures } = await openMany(n, cfg.concurrency || 100, deadlineAt);
  const elapsed = (now() - t0) / 1000;
  const usage = cpu.stop();
  await sleep((cfg.settle_s || 1) * 1000);
  const rssAfter = procRssKiB(cfg.server_pid);
  const s = lat.summary();
  await closeAll(conns);
  return {
    throughput: conns.length / elapsed,
    unit: 'conn/s',
    p50_ms: s.p50_ms,
    p99_ms: s.p99_ms,
    max_ms: s.max_ms,
    connected: conns.length,
    connect_failures: failures,
    rss_before_kib: rssBefore,
    rss_after_kib: rssAfter,
    kib_per_conn: rssBefore != null && rssAfter != null ? (rssAfter - rssBefore) / conns.length : null,
    measured_s: elapsed,
    ...usage,
  };
}

// ------------------------------------------------------------------- main
const SCENARIOS = { echo: scenarioEcho, fanout: scenarioFanout, polling: scenarioPolling, connect: scenarioConnect };

// count.js (the instruction-count driver's loader) reuses the clients above.
module.exports = { cfg, now, sleep, intAt, openWs, openMany, httpReq };

if (require.main === module) {
  const hard = setTimeout(() => {
    process.stdout.write(JSON.stringify({ ok: false, error: `loader hard deadline ${HARD_DEADLINE_S}s` }) + '\n');
    process.exit(2);
  }, HARD_DEADLINE_S * 1000);

  (async () => {
    const fn = SCENARIOS[cfg.scenario];
    if (!fn) throw new Error(`unknown scenario ${cfg.scenario}`);
    const res = await fn();
    clearTimeout(hard);
    process.stdout.write(JSON.stringify({ ok: true, ...res }) + '\n');
    process.exit(0);
  })().catch((e) => {
    clearTimeout(hard);
    process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e) }) + '\n');
    process.exit(1);
  });
}
