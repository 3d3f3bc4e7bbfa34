import { Emitter } from "../emitter.js";
import { defaultURI, global as g, storeGet, storeSet } from "../platform.js";
import { Packet, byteSize } from "./parser.js";
import { Polling } from "./polling.js";
import { Transport } from "./transport.js";
import { WS } from "./websocket.js";

export interface EngineOptions {
  /** Transports to use, in order. Default: ["polling", "websocket"]. */
  transports?: Array<"polling" | "websocket">;
  /** Upgrade from polling to WebSocket when the server offers it. Default: true. */
  upgrade?: boolean;
  /** Start directly with WebSocket if it worked before in this session. Default: false. */
  rememberUpgrade?: boolean;
  /** When a transport cannot open, try the next one in the list. Default: true. */
  tryAllTransports?: boolean;
  /** Request path. Default: "/engine.io/" (the socket layer uses "/socket.io/"). */
  path?: string;
  /** Extra query parameters. */
  query?: Record<string, any> | string;
  /** Send cookies on cross-origin polling requests. Default: false. */
  withCredentials?: boolean;
  /** Extra HTTP headers (Node, and polling in browsers). */
  extraHeaders?: Record<string, string>;
  /** Add a cache-busting parameter to polling requests. Default: true. */
  timestampRequests?: boolean;
  /** WebSocket constructor to use (for example the `ws` package in Node). */
  WebSocket?: any;
  /** XMLHttpRequest constructor to use instead of the built-in one. */
  XMLHttpRequest?: any;
  /** Close the engine when the page unloads. Default: false. */
  closeOnBeforeunload?: boolean;
  /** Host (and port) to connect to, instead of the URI's. */
  host?: string;
  /** Use https/wss, instead of the URI's scheme. */
  secure?: boolean;
  /** WebSocket sub-protocols. */
  protocols?: string | string[];
  /** Node: do not keep the process alive for the heartbeat and reconnection timers. */
  autoUnref?: boolean;
  /** Node: http(s).Agent for polling and (through `ws`) WebSocket. */
  agent?: unknown;
  /** Node, TLS: as in `https.request` (through `ws` for WebSocket). */
  pfx?: unknown;
  key?: unknown;
  passphrase?: string;
  cert?: unknown;
  ca?: unknown;
  ciphers?: string;
  rejectUnauthorized?: boolean;
  /** Node, `ws` only: permessage-deflate options. */
  perMessageDeflate?: unknown;
}

const CTORS: Record<string, any> = { polling: Polling, websocket: WS };

function parseQuery(q: any): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof q === "string") {
    q.replace(/^\?/, "")
      .split("&")
      .forEach((kv) => {
        if (!kv) return;
        const i = kv.indexOf("=");
        out[decodeURIComponent(i < 0 ? kv : kv.slice(0, i))] = i < 0 ? "" : decodeURIComponent(kv.slice(i + 1));
      });
  } else if (q) {
    for (const k in q) if (q[k] !== undefined) out[k] = String(q[k]);
  }
  return out;
}

/**
 * Closers of the open sockets, called on the browser's `offline` event (as engine.io-client
 * does: the connection is lost at once, not at the next ping timeout). One listener added
 * when the module is evaluated, as a service worker requires.
 */
const offline: Array<() => void> = [];
if (typeof g.addEventListener === "function") g.addEventListener("offline", () => offline.slice().forEach((f) => f()), false);

/**
 * Engine.IO v4 client socket: handshake, heartbeat watchdog, buffered writes and
 * polling -> WebSocket upgrade.
 */
export class Engine extends Emitter {
  id: string | null = null;
  transport!: Transport;
  readyState: "opening" | "open" | "closing" | "closed" = "opening";
  writeBuffer: Packet[] = [];
  upgrades: string[] = [];
  pingInterval = 0;
  pingTimeout = 0;
  maxPayload = 0;
  upgrading = false;
  transports: string[];
  opts: EngineOptions & { host: string; secure: boolean; path: string; query: Record<string, string> };
  private _prev = 0;
  private _pingTimer: any;
  private _deadline = 0;
  private _unload: any;
  private _offline?: () => void;

  constructor(uri?: string | EngineOptions, opts: EngineOptions = {}) {
    super();
    if (uri && typeof uri === "object") {
      opts = uri;
      uri = undefined;
    }
    const u = new URL((uri as string) || defaultURI() || "", defaultURI());
    const secure = u.protocol === "https:" || u.protocol === "wss:";
    const o: any = {};
    for (const k in opts) o[k] = (opts as any)[k];
    o.host = opts.host || u.host;
    o.secure = opts.secure != null ? opts.secure : secure;
    o.path = (opts.path || "/engine.io").replace(/\/$/, "") + "/";
    const q = parseQuery(u.search);
    const extra = parseQuery(opts.query);
    for (const k in extra) q[k] = extra[k];
    q.EIO = "4";
    o.query = q;
    this.opts = o;
    this.transports = (opts.transports || ["polling", "websocket"]).map((t: any) => (typeof t === "string" ? t : t.name)).filter((t: string) => CTORS[t]);
    if (opts.rememberUpgrade && storeGet() && this.transports.indexOf("websocket") > 0) {
      this.transports = ["websocket"].concat(this.transports.filter((t) => t !== "websocket"));
    }
    if (opts.closeOnBeforeunload && typeof g.addEventListener === "function") {
      this._unload = () => {
        if (this.transport) {
          this.transport.off();
          this.transport.close();
        }
      };
      g.addEventListener("beforeunload", this._unload, false);
    }
    // as engine.io-client: not for localhost, whose connections survive the network's loss
    if (typeof g.addEventListener === "function" && !/^localhost(:|$)/.test(o.host)) {
      offline.push((this._offline = () => this._onClose("transport close", { description: "network connection lost" })));
    }
    this._open();
  }

  /** Remembers whether WebSocket worked, only when asked to (rememberUpgrade). */
  private _store(ws: boolean): void {
    if (this.opts.rememberUpgrade) storeSet(ws);
  }

  private _create(name: string): Transport {
    const q: Record<string, string> = {};
    for (const k in this.opts.query) q[k] = this.opts.query[k];
    q.transport = name;
    if (this.id) q.sid = this.id;
    const o: any = {};
    for (const k in this.opts) o[k] = (this.opts as any)[k];
    o.query = q;
    return new CTORS[name](o);
  }

  private _open(): void {
    if (!this.transports.length) {
      setTimeout(() => this.emitReserved("error", new Error("No transports available")), 0);
      return;
    }
    this.readyState = "opening";
    const t = this._create(this.transports[0]);
    t.open();
    this._setTransport(t);
  }

  private _setTransport(t: Transport): void {
    if (this.transport) this.transport.off();
    this.transport = t;
    t.on("drain", () => this._onDrain())
      .on("packet", (p: Packet) => this._onPacket(p))
      .on("error", (e: any) => this._onError(e))
      .on("close", (d: any) => this._onClose("transport close", d));
  }

  private _onOpen(): void {
    this.readyState = "open";
    this._store(this.transport.name === "websocket");
    this.emitReserved("open");
    this.flush();
    if (this.opts.upgrade !== false && this.transport.name === "polling") {
      for (const u of this.upgrades) this._probe(u);
    }
  }

  private _probe(name: string): void {
    let t: Transport | null = this._create(name);
    let failed = false;
    this._store(false);
    const onOpen = () => {
      if (failed || !t) return;
      t.send([{ type: "ping", data: "probe" }]);
      t.once("packet", (msg: Packet) => {
        if (failed || !t) return;
        if (msg.type === "pong" && msg.data === "probe") {
          this.upgrading = true;
          this.emitReserved("upgrading", t);
          this._store(true);
          this.transport.pause(() => {
            if (failed || !t) return;
            if (this.readyState === "closed") return;
            cleanup();
            this._setTransport(t);
            t.send([{ type: "upgrade" }]);
            this.emitReserved("upgrade", t);
            t = null;
            this.upgrading = false;
            this.flush();
          });
        } else {
          const err: any = new Error("probe error");
          err.transport = t.name;
          this.emitReserved("upgradeError", err);
          freeze();
        }
      });
    };
    const freeze = () => {
      if (failed) return;
      failed = true;
      cleanup();
      if (t) t.close();
      t = null;
    };
    const onError = (e: any) => {
      const err: any = new Error("probe error: " + e);
      err.transport = t && t.name;
      freeze();
      this.emitReserved("upgradeError", err);
    };
    const onTClose = () => onError("transport closed");
    const onClose = () => onError("socket closed");
    const onUpgrade = (to: Transport) => {
      if (t && to.name !== t.name) freeze();
    };
    const cleanup = () => {
      if (!t) return;
      t.off("open", onOpen);
      t.off("error", onError);
      t.off("close", onTClose);
      this.off("close", onClose);
      this.off("upgrading", onUpgrade);
    };
    t.once("open", onOpen);
    t.once("error", onError);
    t.once("close", onTClose);
    this.once("close", onClose);
    this.once("upgrading", onUpgrade);
    t.open();
  }

  private _onPacket(p: Packet): void {
    if (this.readyState === "closed") return;
    this.emitReserved("packet", p);
    this.emitReserved("heartbeat");
    switch (p.type) {
      case "open":
        this._onHandshake(JSON.parse(p.data));
        break;
      case "ping":
        this._resetPing();
        this.sendPacket("pong");
        this.emitReserved("ping");
        this.emitReserved("pong");
        break;
      case "error": {
        const err: any = new Error("server error");
        err.code = p.data;
        this._onError(err);
        break;
      }
      case "message":
        this.emitReserved("data", p.data);
        this.emitReserved("message", p.data);
        break;
    }
  }

  private _onHandshake(d: any): void {
    this.emitReserved("handshake", d);
    this.id = d.sid;
    this.transport.query.sid = d.sid;
    this.upgrades = (d.upgrades || []).filter((u: string) => this.transports.indexOf(u) !== -1 && u !== this.transport.name);
    this.pingInterval = d.pingInterval;
    this.pingTimeout = d.pingTimeout;
    this.maxPayload = d.maxPayload;
    this._onOpen();
    if (this.readyState === "closed") return;
    this._resetPing();
  }

  /**
   * True (and the connection closed with "ping timeout") when the heartbeat deadline has
   * passed, which timers may not have noticed yet (throttled timers, sleeping device).
   */
  pingExpired(): boolean {
    if (this._deadline && this.readyState === "open" && Date.now() > this._deadline) {
      this._onClose("ping timeout");
      return true;
    }
    return false;
  }

  private _resetPing(): void {
    clearTimeout(this._pingTimer);
    const delay = this.pingInterval + this.pingTimeout;
    this._deadline = Date.now() + delay;
    this._pingTimer = setTimeout(() => this._onClose("ping timeout"), delay);
    if (this.opts.autoUnref && this._pingTimer.unref) this._pingTimer.unref();
  }

  private _onDrain(): void {
    this.writeBuffer.splice(0, this._prev);
    this._prev = 0;
    if (!this.writeBuffer.length) this.emitReserved("drain");
    else this.flush();
  }

  flush(): void {
    if (this.readyState !== "closed" && this.transport.writable && !this.upgrading && this.writeBuffer.length) {
      const packets = this._chunk();
      this.transport.send(packets);
      this._prev = packets.length;
      this.emitReserved("flush");
    }
  }

  private _chunk(): Packet[] {
    const b = this.writeBuffer;
    if (!this.maxPayload || this.transport.name !== "polling" || b.length === 1) return b.slice();
    let size = 1;
    for (let i = 0; i < b.length; i++) {
      size += byteSize(b[i]) + (i ? 1 : 0);
      if (i > 0 && size > this.maxPayload) return b.slice(0, i);
    }
    return b.slice();
  }

  /** Sends a message. */
  write(msg: any, options?: { compress?: boolean }, fn?: () => void): this {
    this.sendPacket("message", msg, options, fn);
    return this;
  }

  send(msg: any, options?: { compress?: boolean }, fn?: () => void): this {
    return this.write(msg, options, fn);
  }

  sendPacket(type: Packet["type"], data?: any, options?: { compress?: boolean }, fn?: () => void): void {
    if (this.readyState === "closing" || this.readyState === "closed") return;
    const p: Packet = { type, data, options: { compress: !options || options.compress !== false } };
    this.emitReserved("packetCreate", p);
    this.writeBuffer.push(p);
    if (fn) this.once("flush", fn);
    this.flush();
  }

  /** Closes the connection, after pending writes are flushed. */
  close(): this {
    const close = () => {
      this._onClose("forced close");
      this.transport.close();
    };
    const cleanupAndClose = () => {
      this.off("upgrade", cleanupAndClose);
      this.off("upgradeError", cleanupAndClose);
      close();
    };
    const waitForUpgrade = () => {
      this.once("upgrade", cleanupAndClose);
      this.once("upgradeError", cleanupAndClose);
    };
    if (this.readyState === "opening" || this.readyState === "open") {
      this.readyState = "closing";
      if (this.writeBuffer.length) {
        this.once("drain", () => (this.upgrading ? waitForUpgrade() : close()));
      } else if (this.upgrading) waitForUpgrade();
      else close();
    }
    return this;
  }

  private _onError(err: any): void {
    if (this.readyState === "opening" && this.opts.tryAllTransports !== false && this.transports.length > 1) {
      if (this.transport.name === "websocket") this._store(false);
      this.transport.off();
      this.transport.close();
      this.transports.shift();
      this._open();
      return;
    }
    this.emitReserved("error", err);
    this._onClose("transport error", err);
  }

  private _onClose(reason: string, desc?: any): void {
    if (this.readyState === "opening" || this.readyState === "open" || this.readyState === "closing") {
      clearTimeout(this._pingTimer);
      this.transport.off("close");
      this.transport.close();
      this.transport.off();
      if (this._unload) g.removeEventListener("beforeunload", this._unload, false);
      const i = offline.indexOf(this._offline as any);
      if (i !== -1) offline.splice(i, 1);
      this.readyState = "closed";
      this.id = null;
      this.emitReserved("close", reason, desc);
      this.writeBuffer = [];
      this._prev = 0;
    }
  }
}
