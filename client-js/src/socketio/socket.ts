import { Emitter, Listener, on } from "../emitter.js";
import type { Manager } from "./manager.js";
import { Packet, PacketType } from "./parser.js";
import type {
  AllButLast,
  DecorateAcknowledgements,
  DefaultEventsMap,
  EventNames,
  EventNamesWithAck,
  EventParams,
  EventsMap,
  FirstNonErrorArg,
  Last,
  ReservedOrUserEventNames,
  ReservedOrUserListener,
} from "../typed-events.js";

export type DisconnectReason =
  | "io server disconnect"
  | "io client disconnect"
  | "ping timeout"
  | "transport close"
  | "transport error"
  | "parse error";

export interface SocketReservedEvents {
  connect: () => void;
  connect_error: (err: Error & { data?: any }) => void;
  disconnect: (reason: DisconnectReason, description?: any) => void;
}

type Names<L extends EventsMap> = ReservedOrUserEventNames<SocketReservedEvents, L>;
type ListenerOf<L extends EventsMap, Ev extends Names<L>> = ReservedOrUserListener<SocketReservedEvents, L, Ev>;

/** Typed listener methods (declarations only; the implementation is the Emitter's). */
export interface Socket<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents> {
  on<Ev extends Names<ListenEvents>>(ev: Ev, listener: ListenerOf<ListenEvents, Ev>): this;
  once<Ev extends Names<ListenEvents>>(ev: Ev, listener: ListenerOf<ListenEvents, Ev>): this;
  off<Ev extends Names<ListenEvents>>(ev?: Ev, listener?: ListenerOf<ListenEvents, Ev>): this;
  removeListener<Ev extends Names<ListenEvents>>(ev?: Ev, listener?: ListenerOf<ListenEvents, Ev>): this;
  removeAllListeners<Ev extends Names<ListenEvents>>(ev?: Ev): this;
  listeners<Ev extends Names<ListenEvents>>(ev: Ev): ListenerOf<ListenEvents, Ev>[];
  hasListeners<Ev extends Names<ListenEvents>>(ev: Ev): boolean;
}

export interface SocketOptions {
  /** Credentials sent in the CONNECT packet; a function is called on every (re)connection. */
  auth?: Record<string, any> | ((cb: (data: Record<string, any>) => void) => void);
  /** Maximum number of retries for a packet (at-least-once delivery). */
  retries?: number;
  /** Default acknowledgement timeout in ms. */
  ackTimeout?: number;
}

const RESERVED = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

interface Flags {
  compress?: boolean;
  volatile?: boolean;
  timeout?: number;
  fromQueue?: boolean;
}

interface Queued {
  id: number;
  tryCount: number;
  pending: boolean;
  args: any[];
  flags: Flags;
}

/**
 * A namespace connection, multiplexed over a Manager. Typed like socket.io-client's:
 * `Socket<ServerToClientEvents, ClientToServerEvents>`.
 */
export class Socket<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
> extends Emitter {
  readonly io: Manager;
  readonly nsp: string;
  id: string | undefined;
  connected = false;
  /**
   * Whether the last connection recovered the previous session (connection state
   * recovery): same id, rooms and data, and the events missed meanwhile delivered.
   */
  recovered = false;
  auth: SocketOptions["auth"];
  receiveBuffer: any[][] = [];
  sendBuffer: Packet[] = [];
  private _queue: Queued[] = [];
  private _queueSeq = 0;
  private _ids = 0;
  private _acks: Record<number, any> = {};
  private _flags: Flags = {};
  private _subs?: Array<() => void>;
  private _opts: SocketOptions;
  private _any: Listener[] = [];
  private _anyOut: Listener[] = [];
  /** The session's private id, given by a server with recovery on. */
  private _pid?: string;
  /** The offset of the last recoverable event processed (its last, string, argument). */
  private _lastOffset?: string;

  constructor(io: Manager, nsp: string, opts?: Partial<SocketOptions>) {
    super();
    this.io = io;
    this.nsp = nsp;
    this._opts = opts || {};
    this.auth = this._opts.auth;
    if (io.opts.autoConnect !== false) this.open();
  }

  get disconnected(): boolean {
    return !this.connected;
  }

  get active(): boolean {
    return !!this._subs;
  }

  private _subEvents(): void {
    if (this._subs) return;
    const io = this.io;
    this._subs = [
      on(io, "open", () => this._onOpen()),
      on(io, "packet", (p: Packet) => this._onPacket(p)),
      on(io, "error", (e: any) => {
        if (!this.connected) this.emitReserved("connect_error", e);
      }),
      on(io, "close", (r: string, d: any) => this._onClose(r, d)),
    ];
  }

  /** Opens the namespace connection (and the Manager's connection if needed). */
  connect(): this {
    if (this.connected) return this;
    this._subEvents();
    if (!this.io._reconnecting) this.io.open();
    if (this.io.readyState === "open") this._onOpen();
    return this;
  }

  open(): this {
    return this.connect();
  }

  send(...args: EventParams<EmitEvents, "message">): this {
    return (this as any).emit("message", ...args);
  }

  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...a: EventParams<EmitEvents, Ev>): this {
    const args: any[] = a;
    if (RESERVED.indexOf(ev as string) !== -1) throw new Error('"' + String(ev) + '" is a reserved event name');
    args.unshift(ev);
    const flags = this._flags;
    if (this._opts.retries && !flags.fromQueue && !flags.volatile) {
      this._addToQueue(args);
      return this;
    }
    const p: Packet = { type: PacketType.EVENT, nsp: this.nsp, data: args, options: { compress: flags.compress !== false } };
    if (typeof args[args.length - 1] === "function") {
      const id = this._ids++;
      const ack = args.pop();
      this._registerAck(id, ack);
      p.id = id;
    }
    const e = this.io.engine;
    if (this.connected && e) e.pingExpired();
    const writable = !!(e && e.transport && e.transport.writable);
    if (flags.volatile && (!writable || !this.connected)) {
      // dropped
    } else if (this.connected) {
      this._notifyOut(p);
      this.packet(p);
    } else {
      this.sendBuffer.push(p);
    }
    this._flags = {};
    return this;
  }

  private _registerAck(id: number, ack: any): void {
    const timeout = this._flags.timeout ?? this._opts.ackTimeout;
    if (timeout === undefined) {
      this._acks[id] = ack;
      return;
    }
    const timer = setTimeout(() => {
      delete this._acks[id];
      for (let i = 0; i < this.sendBuffer.length; i++) {
        if (this.sendBuffer[i].id === id) this.sendBuffer.splice(i, 1);
      }
      ack.call(this, new Error("operation has timed out"));
    }, timeout);
    const fn: any = (...args: any[]) => {
      clearTimeout(timer);
      ack.apply(this, args);
    };
    fn.withError = true;
    this._acks[id] = fn;
  }

  /**
   * Emits and resolves with the acknowledgement; rejects on timeout (when one is set) and
   * with "socket has been disconnected" when the connection is lost first.
   */
  emitWithAck<Ev extends EventNamesWithAck<EmitEvents>>(
    ev: Ev,
    ...a: AllButLast<EventParams<EmitEvents, Ev>>
  ): Promise<FirstNonErrorArg<Last<EventParams<EmitEvents, Ev>>>> {
    const args: any[] = a;
    return new Promise((resolve, reject) => {
      const fn: any = (a: any, b: any) => (a ? reject(a) : resolve(b));
      fn.withError = true;
      args.push(fn);
      (this as any).emit(ev, ...args);
    });
  }

  private _addToQueue(args: any[]): void {
    let ack: any;
    if (typeof args[args.length - 1] === "function") ack = args.pop();
    const item: Queued = {
      id: this._queueSeq++,
      tryCount: 0,
      pending: false,
      args,
      flags: Object.assign({ fromQueue: true }, this._flags),
    };
    args.push((err: any, ...resp: any[]) => {
      if (item !== this._queue[0]) return;
      if (err != null) {
        if (item.tryCount > (this._opts.retries as number)) {
          this._queue.shift();
          if (ack) ack(err);
        }
      } else {
        this._queue.shift();
        if (ack) ack(null, ...resp);
      }
      item.pending = false;
      this._drainQueue();
    });
    this._queue.push(item);
    this._flags = {};
    this._drainQueue();
  }

  private _drainQueue(force?: boolean): void {
    if (!this.connected || !this._queue.length) return;
    const item = this._queue[0];
    if (item.pending && !force) return;
    item.pending = true;
    item.tryCount++;
    this._flags = item.flags;
    (this as any).emit(...item.args);
  }

  /** Sends a raw packet. */
  packet(p: Packet): void {
    p.nsp = this.nsp;
    this.io._packet(p);
  }

  private _onOpen(): void {
    if (typeof this.auth === "function") this.auth((d) => this._sendConnect(d));
    else this._sendConnect(this.auth);
  }

  private _sendConnect(data: any): void {
    // with a pid, ask to recover the session from the last offset seen
    if (this._pid) data = Object.assign({ pid: this._pid, offset: this._lastOffset }, data);
    this.packet({ type: PacketType.CONNECT, nsp: this.nsp, data });
  }

  private _onClose(reason: string, desc?: any): void {
    this.connected = false;
    this.id = undefined;
    this.emitReserved("disconnect", reason, desc);
    this._clearAcks();
  }

  private _clearAcks(): void {
    for (const k in this._acks) {
      const id = +k;
      if (!this.sendBuffer.some((p) => p.id === id)) {
        const ack = this._acks[id];
        delete this._acks[id];
        if (ack.withError) ack.call(this, new Error("socket has been disconnected"));
      }
    }
  }

  private _onPacket(p: Packet): void {
    if (p.nsp !== this.nsp) return;
    switch (p.type) {
      case PacketType.CONNECT:
        if (p.data && p.data.sid) this._onConnect(p.data.sid, p.data.pid);
        else this.emitReserved("connect_error", new Error("invalid CONNECT packet"));
        break;
      case PacketType.EVENT:
      case PacketType.BINARY_EVENT:
        this._onEvent(p);
        break;
      case PacketType.ACK:
      case PacketType.BINARY_ACK:
        this._onAck(p);
        break;
      case PacketType.DISCONNECT:
        this._destroy();
        this._onClose("io server disconnect");
        break;
      case PacketType.CONNECT_ERROR: {
        this._destroy();
        const d = p.data || {};
        const err: any = new Error(typeof d === "string" ? d : d.message);
        err.data = d.data;
        this.emitReserved("connect_error", err);
        break;
      }
    }
  }

  private _onEvent(p: Packet): void {
    const args: any[] = p.data || [];
    if (p.id != null) args.push(this._ack(p.id));
    if (this.connected) this._emitEvent(args);
    else this.receiveBuffer.push(args);
  }

  private _emitEvent(args: any[]): void {
    for (const fn of this._any.slice()) fn.apply(this, args);
    super.emit.apply(this, args as any);
    // a recoverable event's offset is its last argument, left there as socket.io-client
    // does; recorded once the listeners have run
    const last = args[args.length - 1];
    if (this._pid && typeof last === "string") this._lastOffset = last;
  }

  private _ack(id: number): (...args: any[]) => void {
    let sent = false;
    return (...args: any[]) => {
      if (sent) return;
      sent = true;
      this.packet({ type: PacketType.ACK, nsp: this.nsp, id, data: args });
    };
  }

  private _onAck(p: Packet): void {
    const ack = this._acks[p.id as number];
    if (typeof ack !== "function") return;
    delete this._acks[p.id as number];
    const args = p.data || [];
    if (ack.withError) args.unshift(null);
    ack.apply(this, args);
  }

  private _onConnect(id: string, pid?: string): void {
    this.id = id;
    this.recovered = !!pid && this._pid === pid;
    this._pid = pid;
    this.connected = true;
    this.receiveBuffer.forEach((a) => this._emitEvent(a));
    this.receiveBuffer = [];
    this.sendBuffer.forEach((p) => {
      this._notifyOut(p);
      this.packet(p);
    });
    this.sendBuffer = [];
    // before `connect`, so an emit made by a connect listener is not sent twice
    this._drainQueue(true);
    this.emitReserved("connect");
  }

  private _destroy(): void {
    if (this._subs) {
      this._subs.forEach((f) => f());
      this._subs = undefined;
    }
    this.io._destroy(this);
  }

  /** Disconnects this namespace; the Manager's connection closes when no namespace is left. */
  disconnect(): this {
    if (this.connected) this.packet({ type: PacketType.DISCONNECT, nsp: this.nsp });
    this._destroy();
    if (this.connected) this._onClose("io client disconnect");
    return this;
  }

  close(): this {
    return this.disconnect();
  }

  compress(c: boolean): this {
    this._flags.compress = c;
    return this;
  }

  /** The next emit is dropped if it cannot be sent right away. */
  get volatile(): this {
    this._flags.volatile = true;
    return this;
  }

  /** The next emit's acknowledgement gets an error as first argument after `ms`. */
  timeout(ms: number): Socket<ListenEvents, DecorateAcknowledgements<EmitEvents>> {
    this._flags.timeout = ms;
    return this as any;
  }

  onAny(fn: Listener): this {
    this._any.push(fn);
    return this;
  }

  prependAny(fn: Listener): this {
    this._any.unshift(fn);
    return this;
  }

  offAny(fn?: Listener): this {
    rm(this._any, fn);
    return this;
  }

  listenersAny(): Listener[] {
    return this._any.slice();
  }

  onAnyOutgoing(fn: Listener): this {
    this._anyOut.push(fn);
    return this;
  }

  prependAnyOutgoing(fn: Listener): this {
    this._anyOut.unshift(fn);
    return this;
  }

  offAnyOutgoing(fn?: Listener): this {
    rm(this._anyOut, fn);
    return this;
  }

  listenersAnyOutgoing(): Listener[] {
    return this._anyOut.slice();
  }

  private _notifyOut(p: Packet): void {
    if (this._anyOut.length && p.type === PacketType.EVENT) {
      for (const fn of this._anyOut.slice()) fn.apply(this, p.data);
    }
  }
}

function rm(list: Listener[], fn?: Listener): void {
  if (!fn) list.length = 0;
  else {
    const i = list.indexOf(fn);
    if (i !== -1) list.splice(i, 1);
  }
}
