// Many official socket.io-client clients against a server whose requests may land on any
// worker or host (tests/live/test_sticky_free.py). Prints one JSON summary on stdout.
//
//   node sticky_free.mjs --url http://127.0.0.1:8000 [--clients 200] [--messages 20]
//        [--broadcasters 5] [--broadcasts 8] [--transports polling|default]
//        [--probes 40] [--spread 1000] [--timeout 45000] [--kill]
//
// Every HTTP request of every client goes out on a NEW TCP connection: each client has its
// own http.Agent without keep-alive (so Node sends `Connection: close`), which counts the
// requests and connections it makes and reads the `x-worker` header (the pid of the worker
// that took the request; tests/live/sticky_free_app.py adds it) from each response. So the
// summary shows that requests were spread and which workers took a client's requests.
//
// Traffic: each client sends `messages` acknowledged `msg` events (a few per POST, with
// short pauses in between); the server acks `{seq, pid, prev}` where `prev` is the last seq
// it had seen from that socket, so the server's receive order is checked too. Then
// `broadcasters` clients each ask the server to broadcast `broadcasts` payloads
// `{from, seq}`, one after the other (the next once the previous is acked); every client
// must receive each exactly once, in order per sender.
//
// --kill: after everyone is connected, print one line `{"ready": ...}` with the owner pid
// of each client, then keep every client sending acked messages until stdin says
// `killed <pid>` (the test SIGKILLed that process); then go on until every client that was
// on it has reconnected and had `after` more messages acked (or the timeout), and report
// the clients of the killed process and the others apart.
//
// Every wait is bounded: a missing ack, connect, upgrade or broadcast ends as a count in
// the summary, never as a hang; the whole run ends by --timeout.
import http from "node:http";
import readline from "node:readline";
import { io } from "socket.io-client";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => {
    if (arg.startsWith("--")) {
      const next = all[i + 1];
      pairs.push([arg.slice(2), next === undefined || next.startsWith("--") ? "true" : next]);
    }
    return pairs;
  }, []),
);
const URL_ = args.url;
const CLIENTS = Number(args.clients ?? 200);
const MESSAGES = Number(args.messages ?? 20);
const BROADCASTERS = Math.min(Number(args.broadcasters ?? 5), CLIENTS);
const BROADCASTS = Number(args.broadcasts ?? 8);
const TRANSPORTS = args.transports === "polling" ? ["polling"] : ["polling", "websocket"];
const PROBES = Number(args.probes ?? 40);
const TIMEOUT = Number(args.timeout ?? 45000);
const KILL = args.kill === "true";
const AFTER = Number(args.after ?? 3); // --kill: acks each reconnected client must get
const ACK_WAIT = Number(args["ack-wait"] ?? 15000);
const SPREAD = Number(args.spread ?? 1000); // ms over which the clients connect
const started = Date.now();
const left = () => Math.max(0, TIMEOUT - (Date.now() - started));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An Agent that never reuses a connection, counting requests, connections and workers. */
class CountingAgent extends http.Agent {
  constructor() {
    super({ keepAlive: false });
    this.requests = 0;
    this.connections = 0;
    this.workers = new Map(); // pid -> requests it took
  }
  addRequest(req, options) {
    this.requests++;
    return super.addRequest(req, options);
  }
  createConnection(options, callback) {
    const socket = super.createConnection(options, callback);
    this.connections++;
    let head = "";
    const onData = (chunk) => {
      head += chunk.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0 && head.length < 16384) return;
      socket.off("data", onData);
      const m = /\r\nx-worker: *(\d+)/i.exec(head.slice(0, end < 0 ? undefined : end));
      if (m) this.workers.set(m[1], (this.workers.get(m[1]) ?? 0) + 1);
    };
    socket.on("data", onData);
    return socket;
  }
}

/** Plain GETs of /pid, one connection each: which workers the kernel or balancer picks. */
async function probe() {
  const agent = new CountingAgent();
  const pids = {};
  for (let i = 0; i < PROBES; i++) {
    const body = await new Promise((resolve, reject) => {
      const req = http.get(`${URL_}/pid`, { agent, timeout: 5000 }, (res) => {
        let data = "";
        res.on("data", (c) => (data += c));
        res.on("end", () => resolve(data));
      });
      req.on("timeout", () => req.destroy(new Error("probe timeout")));
      req.on("error", reject);
    });
    const { pid } = JSON.parse(body);
    pids[pid] = (pids[pid] ?? 0) + 1;
  }
  return { requests: agent.requests, connections: agent.connections, pids };
}

function makeClient(index) {
  const agent = new CountingAgent();
  const c = {
    index,
    agent,
    socket: io(URL_, { transports: TRANSPORTS, forceNew: true, agent, timeout: 20000, autoConnect: false }),
    connects: 0,
    disconnects: [], // reasons
    connectErrors: [],
    reconnectAttempts: 0,
    sids: [], // engine sids, one per connection
    owners: [], // pid of the owner, from `hello`, one per connection
    acked: 0,
    timeouts: 0, // acks (of messages or broadcasts) that did not come in time
    lostSeqs: [], // the messages whose ack did not come in time
    ackOutOfOrder: 0, // acks that arrived before an earlier message's ack
    serverOutOfOrder: 0, // acks whose `prev` was not the previous seq (server order)
    lastAckSeq: -1,
    seq: 0,
    bcast: new Map(), // from -> next expected seq
    bcastReceived: 0,
    bcastDup: 0,
    bcastOutOfOrder: 0,
    upgrades: 0,
    killedAt: null,
    ackedAfterReconnect: 0,
  };
  const s = c.socket;
  c.connected = new Promise((resolve) => {
    s.on("connect", () => {
      c.connects++;
      c.sids.push(s.io.engine.id);
      c.lastAckSeq = -1;
      resolve();
    });
  });
  c.hello = new Promise((resolve) =>
    s.on("hello", (identity) => {
      c.owners.push(String(identity.pid));
      resolve();
    }),
  );
  s.on("disconnect", (reason, details) =>
    c.disconnects.push({ reason, at: Date.now() - started, sid: c.sids.at(-1), detail: describe(details) }),
  );
  s.on("connect_error", (err) => c.connectErrors.push(String(err.message)));
  s.io.on("reconnect_attempt", () => c.reconnectAttempts++);
  s.io.on("open", () => s.io.engine.on("upgrade", () => c.upgrades++));
  s.on("bcast", ({ from, seq }) => {
    c.bcastReceived++;
    const expected = c.bcast.get(from) ?? 0;
    if (seq === expected) c.bcast.set(from, expected + 1);
    else if (seq < expected) c.bcastDup++;
    else {
      c.bcastOutOfOrder++;
      c.bcast.set(from, seq + 1);
    }
  });
  // Clients start at random moments: in lockstep, a round-robin balancer would send each
  // client's every request to the same node whenever the client count is a multiple of theirs.
  setTimeout(() => s.connect(), Math.random() * SPREAD);
  return c;
}

/** A disconnect's details: which request failed, its status and the server's answer. */
function describe(details) {
  if (!details) return undefined;
  const d = details.description;
  const what = [details.message, d?.message ?? d?.code ?? d];
  const body = details.context?.responseText;
  if (typeof body === "string" && body.startsWith("{")) what.push(body.slice(0, 120)); // ours, not nginx's page
  return what.filter((x) => x !== undefined && x !== "").join(" ");
}

/** One acked message; the server's `prev` says whether it saw the previous one just before. */
async function send(c) {
  const seq = c.seq++;
  try {
    const ack = await c.socket.timeout(ACK_WAIT).emitWithAck("msg", seq);
    if (ack.seq !== seq) c.ackOutOfOrder++;
    if (ack.seq < c.lastAckSeq) c.ackOutOfOrder++;
    c.lastAckSeq = Math.max(c.lastAckSeq, ack.seq);
    if (ack.prev !== null && ack.prev !== seq - 1 && c.connects === 1) c.serverOutOfOrder++;
    c.acked++;
    if (c.killedAt !== null && c.connects > 1) c.ackedAfterReconnect++;
    return true;
  } catch {
    c.timeouts++;
    c.lostSeqs.push(seq);
    return false;
  }
}

/** `n` messages, pipelined in small bursts so several travel in one POST. */
async function burst(c, n) {
  const pending = [];
  for (let i = 0; i < n; i++) {
    pending.push(send(c));
    if (i % 4 === 3) await sleep(5 + Math.random() * 20);
  }
  await Promise.all(pending);
}

async function broadcaster(c, from) {
  for (let seq = 0; seq < BROADCASTS && left() > 0; seq++) {
    try {
      await c.socket.timeout(ACK_WAIT).emitWithAck("broadcast", { from, seq });
    } catch {
      c.timeouts++;
    }
  }
}

async function bounded(promise, ms) {
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function counts(values) {
  const out = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

function summarize(clients) {
  const sum = (f) => clients.reduce((t, c) => t + f(c), 0);
  const expectedBcast = BROADCASTERS * BROADCASTS;
  return {
    clients: clients.length,
    connected: clients.filter((c) => c.connects > 0).length,
    reconnected: clients.filter((c) => c.connects > 1).length,
    disconnects: sum((c) => c.disconnects.length),
    disconnectReasons: counts(clients.flatMap((c) => c.disconnects.map((d) => `${d.reason}: ${d.detail ?? ""}`))),
    reconnectAttempts: sum((c) => c.reconnectAttempts),
    connectErrors: sum((c) => c.connectErrors.length),
    connectErrorMessages: counts(clients.flatMap((c) => c.connectErrors)),
    acked: sum((c) => c.acked),
    ackLost: sum((c) => c.seq - c.acked), // timed out, or still unanswered at the end
    ackTimeouts: sum((c) => c.timeouts),
    ackOutOfOrder: sum((c) => c.ackOutOfOrder),
    serverOutOfOrder: sum((c) => c.serverOutOfOrder),
    bcastExpected: KILL ? 0 : expectedBcast * clients.length,
    bcastReceived: sum((c) => c.bcastReceived),
    bcastLost: KILL ? 0 : sum((c) => expectedBcast - [...c.bcast.values()].reduce((a, b) => a + b, 0)),
    bcastDup: sum((c) => c.bcastDup),
    bcastOutOfOrder: sum((c) => c.bcastOutOfOrder),
    transports: counts(clients.map((c) => (c.socket.connected ? c.socket.io.engine.transport.name : "none"))),
    upgrades: sum((c) => c.upgrades),
    owners: counts(clients.map((c) => c.owners[0] ?? "none")),
    requests: sum((c) => c.agent.requests),
    connections: sum((c) => c.agent.connections),
    // how many distinct workers took the requests of one client: > 1 means forwarding
    workersPerClient: counts(clients.map((c) => c.agent.workers.size)),
    requestsByWorker: clients.reduce((all, c) => {
      for (const [pid, n] of c.agent.workers) all[pid] = (all[pid] ?? 0) + n;
      return all;
    }, {}),
  };
}

async function main() {
  const report = { url: URL_, mode: TRANSPORTS.join(","), clients: CLIENTS, messages: MESSAGES };
  report.probe = PROBES > 0 ? await probe() : null;
  const clients = Array.from({ length: CLIENTS }, (_, i) => makeClient(i));
  const ready = await bounded(
    Promise.all(clients.map((c) => Promise.all([c.connected, c.hello]))),
    Math.min(left(), 30000),
  );
  report.connectTimedOut = ready === "timeout";
  const phases = (report.phasesMs = { connect: Date.now() - started });
  const mark = (name) => (phases[name] = Date.now() - started - Object.values(phases).reduce((a, b) => a + b, 0));
  if (!KILL) {
    // Start traffic at once: with the default transports, upgrades happen during it.
    await bounded(Promise.all(clients.map((c) => burst(c, MESSAGES))), left());
    mark("messages");
    const bcastDone = Promise.all(clients.slice(0, BROADCASTERS).map((c, i) => broadcaster(c, i)));
    await bounded(bcastDone, left());
    const all = BROADCASTERS * BROADCASTS;
    const complete = () => clients.every((c) => [...c.bcast.values()].reduce((a, b) => a + b, 0) >= all);
    while (!complete() && left() > 0) await sleep(50);
    mark("broadcasts");
    await waitUpgraded(clients);
    Object.assign(report, summarize(clients));
  } else {
    Object.assign(report, await killRun(clients));
  }
  report.elapsedMs = Date.now() - started;
  const summary = JSON.stringify(report); // before our own disconnects add to it
  for (const c of clients) c.socket.disconnect();
  process.stdout.write(summary + "\n");
}

/** With the default transports, a bounded wait for every connected client to upgrade. */
async function waitUpgraded(clients) {
  if (TRANSPORTS.length < 2) return;
  const upgraded = () =>
    clients.every((c) => !c.socket.connected || c.socket.io.engine.transport.name === "websocket");
  const until = Date.now() + Math.min(left(), 10000);
  while (!upgraded() && Date.now() < until) await sleep(50);
}

/** --kill: traffic until stdin names the killed pid, then until its clients are back. */
async function killRun(clients) {
  let stop = false;
  const pending = [];
  // Not waiting for each ack: a client whose node died keeps sending (socket.io-client
  // buffers while disconnected) and its earlier messages time out on their own.
  const loops = clients.map(async (c) => {
    while (!stop && left() > 0) {
      pending.push(send(c));
      await sleep(100 + Math.random() * 200);
    }
  });
  await bounded(Promise.all(clients.map((c) => send(c))), Math.min(left(), 20000));
  await waitUpgraded(clients);
  const owners = Object.fromEntries(clients.map((c) => [c.index, c.owners[0] ?? null]));
  process.stdout.write(JSON.stringify({ ready: true, owners, sids: clients.map((c) => c.sids[0]) }) + "\n");
  const killed = await bounded(
    new Promise((resolve) => {
      const lines = readline.createInterface({ input: process.stdin });
      lines.on("line", (line) => {
        const [word, pid] = line.trim().split(/\s+/);
        if (word === "killed") {
          lines.close();
          resolve(pid);
        }
      });
    }),
    left(),
  );
  const killedAt = Date.now();
  for (const c of clients) c.killedAt = killedAt;
  const victims = clients.filter((c) => c.owners[0] === killed);
  const others = clients.filter((c) => c.owners[0] !== killed);
  const back = () => victims.every((c) => c.connects > 1 && c.ackedAfterReconnect >= AFTER);
  while (!back() && left() > 0) await sleep(50);
  const recoveredAt = Date.now();
  // the others go on for a while longer: a late disconnect would show
  const until = Date.now() + Math.min(left(), 3000);
  while (Date.now() < until) await sleep(50);
  stop = true;
  await bounded(Promise.all(loops), 1000);
  await bounded(Promise.all(pending), Math.min(left() + 1000, ACK_WAIT + 1000));
  const detail = (c) => ({
    index: c.index,
    sids: c.sids,
    owners: c.owners,
    disconnects: c.disconnects,
    connectErrors: c.connectErrors,
    ackLost: c.seq - c.acked,
    ackTimeouts: c.timeouts,
    lostSeqs: c.lostSeqs,
  });
  return {
    killed,
    recoverMs: recoveredAt - killedAt,
    victims: summarize(victims),
    others: summarize(others),
    victimsReconnectMs: victims
      .map((c) => (c.disconnects[0] ? c.disconnects[0].at - (killedAt - started) : null))
      .filter((x) => x !== null),
    victimsNewOwners: counts(victims.map((c) => c.owners[1] ?? "none")),
    victimsDetail: victims.map((c) => ({ index: c.index, sids: c.sids })),
    victimsBackDetail: victims.filter((c) => !(c.connects > 1 && c.ackedAfterReconnect >= AFTER)).map(detail),
    othersDisturbed: others
      .filter((c) => c.disconnects.length || c.seq > c.acked || c.connectErrors.length)
      .map(detail),
  };
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stdout.write(JSON.stringify({ error: String(err?.stack ?? err) }) + "\n");
    process.exit(1);
  },
);
