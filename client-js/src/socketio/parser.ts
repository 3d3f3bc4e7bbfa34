import { Emitter } from "../emitter.js";
import { isBinary } from "../engine/parser.js";

export const protocol = 5;

export const enum PacketType {
  CONNECT = 0,
  DISCONNECT = 1,
  EVENT = 2,
  ACK = 3,
  CONNECT_ERROR = 4,
  BINARY_EVENT = 5,
  BINARY_ACK = 6,
}

export interface Packet {
  type: PacketType;
  nsp: string;
  data?: any;
  id?: number;
  attachments?: number;
  options?: { compress?: boolean };
}

const RESERVED = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

export function hasBinary(obj: any, toJSON?: boolean): boolean {
  if (!obj || typeof obj !== "object") return false;
  if (isBinary(obj)) return true;
  if (Array.isArray(obj)) {
    for (const v of obj) if (hasBinary(v)) return true;
    return false;
  }
  if (obj.toJSON && typeof obj.toJSON === "function" && !toJSON) return hasBinary(obj.toJSON(), true);
  for (const k in obj) if (Object.prototype.hasOwnProperty.call(obj, k) && hasBinary(obj[k])) return true;
  return false;
}

function deconstruct(d: any, bufs: any[]): any {
  if (isBinary(d)) {
    bufs.push(d);
    return { _placeholder: true, num: bufs.length - 1 };
  }
  if (Array.isArray(d)) return d.map((v) => deconstruct(v, bufs));
  if (d && typeof d === "object" && !(d instanceof Date)) {
    if (typeof d.toJSON === "function") return deconstruct(d.toJSON(), bufs);
    const o: any = {};
    for (const k in d) if (Object.prototype.hasOwnProperty.call(d, k)) o[k] = deconstruct(d[k], bufs);
    return o;
  }
  return d;
}

function reconstruct(d: any, bufs: any[]): any {
  if (!d || typeof d !== "object") return d;
  if (d._placeholder === true) {
    if (typeof d.num === "number" && d.num >= 0 && d.num < bufs.length) return bufs[d.num];
    throw new Error("illegal attachments");
  }
  if (Array.isArray(d)) {
    for (let i = 0; i < d.length; i++) d[i] = reconstruct(d[i], bufs);
  } else {
    for (const k in d) if (Object.prototype.hasOwnProperty.call(d, k)) d[k] = reconstruct(d[k], bufs);
  }
  return d;
}

/** Encodes a packet into a string followed by its binary attachments, if any. */
export function encode(p: Packet): any[] {
  let type = p.type;
  let data = p.data;
  const bufs: any[] = [];
  if ((type === PacketType.EVENT || type === PacketType.ACK) && hasBinary(data)) {
    type = type === PacketType.EVENT ? PacketType.BINARY_EVENT : PacketType.BINARY_ACK;
    data = deconstruct(data, bufs);
  }
  let s = "" + type;
  if (type === PacketType.BINARY_EVENT || type === PacketType.BINARY_ACK) s += bufs.length + "-";
  if (p.nsp && p.nsp !== "/") s += p.nsp + ",";
  if (p.id != null) s += p.id;
  if (data !== undefined) s += JSON.stringify(data);
  return [s].concat(bufs);
}

function validPayload(type: number, d: any): boolean {
  switch (type) {
    case PacketType.CONNECT:
      return d === undefined || (d !== null && typeof d === "object");
    case PacketType.DISCONNECT:
      return d === undefined;
    case PacketType.CONNECT_ERROR:
      return typeof d === "string" || (d !== null && typeof d === "object");
    case PacketType.EVENT:
    case PacketType.BINARY_EVENT:
      return (
        Array.isArray(d) &&
        (typeof d[0] === "number" || (typeof d[0] === "string" && RESERVED.indexOf(d[0]) === -1))
      );
    case PacketType.ACK:
    case PacketType.BINARY_ACK:
      return Array.isArray(d);
  }
  return false;
}

export function decodeString(s: string): Packet {
  const type = +s.charAt(0);
  if (!(type >= 0 && type <= 6) || s.charAt(0) === "") throw new Error("unknown packet type");
  const p: Packet = { type, nsp: "/" };
  let rest = s.slice(1);
  let m: RegExpExecArray | null;
  if (type === PacketType.BINARY_EVENT || type === PacketType.BINARY_ACK) {
    m = /^(\d+)-/.exec(rest);
    if (!m) throw new Error("illegal attachments");
    p.attachments = +m[1];
    rest = rest.slice(m[0].length);
  }
  if (rest.charAt(0) === "/") {
    const j = rest.indexOf(",");
    p.nsp = j < 0 ? rest : rest.slice(0, j);
    rest = j < 0 ? "" : rest.slice(j + 1);
  }
  m = /^\d+/.exec(rest);
  if (m) {
    p.id = +m[0];
    rest = rest.slice(m[0].length);
  }
  if (rest) {
    try {
      p.data = JSON.parse(rest);
    } catch (e) {
      throw new Error("invalid payload");
    }
  }
  if (!validPayload(type, p.data)) throw new Error("invalid payload");
  return p;
}

/** Incremental decoder: emits `decoded` once a packet and all its attachments arrived. */
export class Decoder extends Emitter {
  private _p: Packet | null = null;
  private _bufs: any[] = [];

  add(obj: any): void {
    if (typeof obj === "string") {
      if (this._p) throw new Error("got plaintext data when reconstructing a packet");
      const p = decodeString(obj);
      if (p.attachments) {
        this._p = p;
        this._bufs = [];
      } else this.emitReserved("decoded", p);
    } else if (isBinary(obj)) {
      if (!this._p) throw new Error("got binary data when not reconstructing a packet");
      this._bufs.push(obj);
      if (this._bufs.length === this._p.attachments) {
        const p = this._p;
        p.data = reconstruct(p.data, this._bufs);
        delete p.attachments;
        this._p = null;
        this._bufs = [];
        this.emitReserved("decoded", p);
      }
    } else throw new Error("Unknown type: " + obj);
  }

  destroy(): void {
    this._p = null;
    this._bufs = [];
  }
}
