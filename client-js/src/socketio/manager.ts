import { Emitter, on } from "../emitter.js";
import { defer } from "../platform.js";
import { Engine, EngineOptions } from "../engine/socket.js";
import { Decoder, Packet, encode } from "./parser.js";
import { Socket, SocketOptions } from "./socket.js";

export interface ManagerOptions extends EngineOptions {
  /** Reconnect automatically. Default: true. */
  reconnection?: boolean;
  /** Attempts before giving up. Default: Infinity. */
  reconnectionAttempts?: number;
  /** Base delay in ms (doubled on each attempt). Default: 1000. */
  reconnectionDelay?: number;
  /** Cap of the delay in ms, applied before jitter. Default: 5000. */
  reconnectionDelayMax?: number;
  /** Jitter as a fraction of the capped delay: 1 = full jitter (default), 0 = none. */
  randomizationFactor?: number;
  /** Connection timeout in ms. Default: 20000. */
  timeout?: number | false;
  /** Connect as soon as a socket is created. Default: true. */
  autoConnect?: boolean;
}

/**
 * Exponential backoff with jitter applied after the cap:
 * delay = capped - random * factor * capped, capped = min(max, base * 2^attempt).
 */
export class Backoff {
  attempts = 0;
  constructor(
    public ms = 1000,
    public max = 5000,
    public jitter = 1,
  ) {}
  duration(): number {
    const capped = Math.min(this.max, this.ms * Math.pow(2, this.attempts++));
    return Math.floor(capped - Math.random() * Math.min(1, Math.max(0, this.jitter)) * capped);
  }
  reset(): void {
    this.attempts = 0;
  }
}

/** One Engine.IO connection, multiplexing any number of namespaces. */
export class Manager extends Emitter {
  engine!: Engine;
  readyState: "opening" | "open" | "closed" = "closed";
  nsps: Record<string, Socket> = {};
  backoff: Backoff;
  opts: ManagerOptions;
  uri?: string;
  _reconnecting = false;
  private _skip = false;
  private _subs: Array<() => void> = [];
  private _decoder = new Decoder();

  constructor(uri?: string | ManagerOptions, opts?: ManagerOptions) {
    super();
    if (uri && typeof uri === "object") {
      opts = uri;
      uri = undefined;
    }
    const o: ManagerOptions = {};
    for (const k in opts || {}) (o as any)[k] = (opts as any)[k];
    o.path = o.path || "/socket.io";
    this.opts = o;
    this.uri = uri as string | undefined;
    this.backoff = new Backoff(o.reconnectionDelay ?? 1000, o.reconnectionDelayMax ?? 5000, o.randomizationFactor ?? 1);
    // deferred, so that an exception thrown by an app's listener surfaces as such instead
    // of being taken for a parse error (as socket.io-client does)
    this._decoder.on("decoded", (p: Packet) => defer(() => this.emitReserved("packet", p)));
    if (o.autoConnect !== false) this.open();
  }

  reconnection(v?: boolean): any {
    if (v === undefined) return this.opts.reconnection !== false;
    this.opts.reconnection = v;
    if (!v) this._skip = true;
    return this;
  }

  reconnectionAttempts(v?: number): any {
    if (v === undefined) return this.opts.reconnectionAttempts ?? Infinity;
    this.opts.reconnectionAttempts = v;
    return this;
  }

  reconnectionDelay(v?: number): any {
    if (v === undefined) return this.backoff.ms;
    this.opts.reconnectionDelay = this.backoff.ms = v;
    return this;
  }

  reconnectionDelayMax(v?: number): any {
    if (v === undefined) return this.backoff.max;
    this.opts.reconnectionDelayMax = this.backoff.max = v;
    return this;
  }

  randomizationFactor(v?: number): any {
    if (v === undefined) return this.backoff.jitter;
    this.opts.randomizationFactor = this.backoff.jitter = v;
    return this;
  }

  timeout(v?: number | false): any {
    if (v === undefined) return this.opts.timeout ?? 20000;
    this.opts.timeout = v;
    return this;
  }

  private _maybeReconnectOnOpen(): void {
    if (!this._reconnecting && this.reconnection() && this.backoff.attempts === 0) this._reconnect();
  }

  /** Opens the connection (also `connect`). */
  open(fn?: (err?: any) => void): this {
    if (this.readyState === "opening" || this.readyState === "open") return this;
    const engine = (this.engine = new Engine(this.uri, this.opts));
    this.readyState = "opening";
    this._skip = false;
    const openSub = on(engine, "open", () => {
      this._onOpen();
      if (fn) fn();
    });
    const onError = (err: any) => {
      this._cleanup();
      // a configuration error (no WebSocket implementation): retrying cannot help
      if (err && err.fatal) this._skip = true;
      this.readyState = "closed";
      this.emitReserved("error", err);
      if (fn) fn(err);
      else this._maybeReconnectOnOpen();
    };
    const errorSub = on(engine, "error", onError);
    const t = this.timeout();
    if (t !== false) {
      const timer = setTimeout(() => {
        openSub();
        onError(new Error("timeout"));
        engine.close();
      }, t);
      this._subs.push(() => clearTimeout(timer));
    }
    this._subs.push(openSub, errorSub);
    return this;
  }

  connect(fn?: (err?: any) => void): this {
    return this.open(fn);
  }

  private _onOpen(): void {
    this._cleanup();
    this.readyState = "open";
    this.emitReserved("open");
    const e = this.engine;
    this._subs.push(
      on(e, "ping", () => this.emitReserved("ping")),
      on(e, "data", (d: any) => {
        try {
          this._decoder.add(d);
        } catch (err) {
          this._onClose("parse error", err);
        }
      }),
      on(e, "error", (err: any) => this.emitReserved("error", err)),
      on(e, "close", (r: string, d: any) => this._onClose(r, d)),
    );
  }

  /** Returns the socket for a namespace, creating it if needed. */
  socket(nsp: string, opts?: Partial<SocketOptions>): Socket {
    let s = this.nsps[nsp];
    if (!s) {
      s = new Socket(this, nsp, opts);
      this.nsps[nsp] = s;
    } else if (this.opts.autoConnect !== false && !s.active) {
      s.connect();
    }
    return s;
  }

  /** Called by a socket when it disconnects; closes the connection once no namespace is active. */
  _destroy(socket: Socket): void {
    for (const k in this.nsps) if (this.nsps[k].active) return;
    this._close();
  }

  _packet(p: Packet): void {
    const parts = encode(p);
    for (const part of parts) this.engine.write(part, p.options);
  }

  private _cleanup(): void {
    this._subs.forEach((f) => f());
    this._subs.length = 0;
    this._decoder.destroy();
  }

  _close(): void {
    this._skip = true;
    this._reconnecting = false;
    this._onClose("forced close");
  }

  disconnect(): void {
    this._close();
  }

  private _onClose(reason: string, desc?: any): void {
    this._cleanup();
    if (this.engine) this.engine.close();
    this.backoff.reset();
    this.readyState = "closed";
    this.emitReserved("close", reason, desc);
    if (this.reconnection() && !this._skip) this._reconnect();
  }

  private _reconnect(): void {
    if (this._reconnecting || this._skip) return;
    if (this.backoff.attempts >= this.reconnectionAttempts()) {
      this.backoff.reset();
      this.emitReserved("reconnect_failed");
      this._reconnecting = false;
      return;
    }
    const delay = this.backoff.duration();
    this._reconnecting = true;
    const timer = setTimeout(() => {
      if (this._skip) return;
      this.emitReserved("reconnect_attempt", this.backoff.attempts);
      if (this._skip) return;
      this.open((err) => {
        if (err) {
          this._reconnecting = false;
          this._reconnect();
          this.emitReserved("reconnect_error", err);
        } else {
          const attempt = this.backoff.attempts;
          this._reconnecting = false;
          this.backoff.reset();
          this.emitReserved("reconnect", attempt);
        }
      });
    }, delay);
    if (this.opts.autoUnref && timer.unref) timer.unref();
    this._subs.push(() => clearTimeout(timer));
  }
}
