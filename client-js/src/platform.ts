// Browser platform. The Node build swaps this module for platform-node.ts.
declare const self: any;
declare const window: any;

const g: any =
  typeof globalThis !== "undefined" ? globalThis : typeof self !== "undefined" ? self : window;

export const isNode = false;
export const global = g;

export function defaultURI(): string | undefined {
  const l = g.location;
  return l ? l.protocol + "//" + l.host : undefined;
}

export function newXHR(_opts: any): any {
  return new g.XMLHttpRequest();
}

export function wsCtor(opts: any): any {
  return opts.WebSocket || g.WebSocket || g.MozWebSocket;
}

export function newWS(C: any, uri: string, _opts: any): any {
  return new C(uri);
}

/** Wraps binary data received from the network. */
export function toBinary(data: any): any {
  return data;
}

export function fromBase64(s: string): ArrayBuffer {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function bytes(d: any): Uint8Array {
  return d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

export function toBase64(data: any, cb: (s: string) => void): void {
  if (g.Blob && data instanceof g.Blob) {
    const r = new g.FileReader();
    r.onload = () => cb((r.result as string).split(",")[1] || "");
    r.readAsDataURL(data);
    return;
  }
  const b = bytes(data);
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000) as any);
  }
  cb(btoa(s));
}

/** Raw form for a WebSocket frame. */
export function rawBinary(data: any): any {
  return data;
}

const KEY = "realtime:ws";

export function storeGet(): boolean {
  try {
    return g.sessionStorage.getItem(KEY) === "1";
  } catch (e) {
    return false;
  }
}

export function storeSet(v: boolean): void {
  try {
    g.sessionStorage.setItem(KEY, v ? "1" : "0");
  } catch (e) {}
}
