import { fromBase64, toBase64, toBinary, global } from "../platform.js";

export const TYPES = ["open", "close", "ping", "pong", "message", "upgrade", "noop"];
export const SEPARATOR = "\x1e";

export type PacketType = "open" | "close" | "ping" | "pong" | "message" | "upgrade" | "noop" | "error";

export interface Packet {
  type: PacketType;
  data?: any;
  options?: { compress?: boolean };
}

export function isBinary(d: any): boolean {
  return (
    d != null &&
    typeof d === "object" &&
    (d instanceof ArrayBuffer || ArrayBuffer.isView(d) || (!!global.Blob && d instanceof global.Blob))
  );
}

/**
 * Encodes one packet. Binary data stays raw when the transport supports it
 * (WebSocket) and is base64-encoded with a `b` prefix otherwise (polling).
 */
export function encodePacket(p: Packet, binary: boolean, cb: (enc: any) => void): void {
  const d = p.data;
  if (isBinary(d)) {
    if (binary) cb(d);
    else toBase64(d, (s) => cb("b" + s));
    return;
  }
  cb(TYPES.indexOf(p.type) + (d != null ? String(d) : ""));
}

export function decodePacket(enc: any): Packet {
  if (typeof enc !== "string") return { type: "message", data: toBinary(enc) };
  const c = enc.charAt(0);
  if (c === "b") return { type: "message", data: fromBase64(enc.slice(1)) };
  const type = TYPES[+c] as PacketType;
  if (!type || c === "") return { type: "error", data: "parser error" };
  return enc.length > 1 ? { type, data: enc.slice(1) } : { type };
}

export function encodePayload(packets: Packet[], cb: (s: string) => void): void {
  const out: string[] = [];
  let n = 0;
  packets.forEach((p, i) =>
    encodePacket(p, false, (e) => {
      out[i] = e;
      if (++n === packets.length) cb(out.join(SEPARATOR));
    }),
  );
}

export function decodePayload(s: string): Packet[] {
  const out: Packet[] = [];
  for (const part of s.split(SEPARATOR)) {
    const p = decodePacket(part);
    out.push(p);
    if (p.type === "error") break;
  }
  return out;
}

/** Approximate wire size (UTF-8 bytes) of a packet, used for payload chunking. */
export function byteSize(p: Packet): number {
  const d = p.data;
  if (d == null) return 1;
  if (typeof d === "string") {
    let n = 1;
    for (let i = 0; i < d.length; i++) {
      const c = d.charCodeAt(i);
      n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? (i++, 4) : 3;
    }
    return n;
  }
  return Math.ceil((d.byteLength || d.size || 0) / 3) * 4 + 1;
}
