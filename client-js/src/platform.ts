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

/** Runs `fn` after the current task, so an exception it throws surfaces on its own. */
export const defer = (fn: () => void): void => {
  g.queueMicrotask ? g.queueMicrotask(fn) : Promise.resolve().then(fn);
};

/**
 * The subset of XMLHttpRequest the polling transport uses, over `fetch`: for runtimes
 * without XMLHttpRequest (service workers, Deno, Bun).
 */
class FetchXHR {
  readyState = 0;
  status = 0;
  responseText = "";
  withCredentials = false;
  onreadystatechange: null | (() => void) = null;
  private _a = new g.AbortController();
  private _m = "";
  private _u = "";
  private _h: Record<string, string> = {};

  open(m: string, u: string): void {
    this._m = m;
    this._u = u;
  }

  setRequestHeader(k: string, v: string): void {
    this._h[k] = v;
  }

  send(body: string | null): void {
    const end = (status: number, text: string) => {
      this.status = status;
      this.responseText = text;
      this.readyState = 4;
      if (this.onreadystatechange) this.onreadystatechange();
    };
    g.fetch(this._u, {
      method: this._m,
      headers: this._h,
      body,
      credentials: this.withCredentials ? "include" : "same-origin",
      signal: this._a.signal,
    }).then(
      (r: any) => r.text().then((t: string) => end(r.status, t)),
      () => end(0, ""),
    );
  }

  abort(): void {
    this.onreadystatechange = null;
    this._a.abort();
  }
}

export function newXHR(opts: any): any {
  const X = opts.XMLHttpRequest || g.XMLHttpRequest;
  return X ? new X() : new FetchXHR();
}

export function wsCtor(opts: any): any {
  return opts.WebSocket || g.WebSocket;
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
