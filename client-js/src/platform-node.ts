// Node.js platform: XMLHttpRequest-like requests over the http/https modules,
// WebSocket from an option, the global, or the optional `ws` package.
import * as http from "node:http";
import * as https from "node:https";

export const isNode = true;
export const global: any = globalThis;

export function defaultURI(): string | undefined {
  return undefined;
}

/** The subset of XMLHttpRequest used by the polling transport. */
class NodeXHR {
  readyState = 0;
  status = 0;
  responseText = "";
  withCredentials = false;
  onreadystatechange: null | (() => void) = null;
  private _m = "GET";
  private _u = "";
  private _h: Record<string, string> = {};
  private _r: http.ClientRequest | null = null;
  private _done = false;

  constructor(private _o: any) {}

  open(method: string, url: string): void {
    this._m = method;
    this._u = url;
    this.readyState = 1;
  }

  setRequestHeader(k: string, v: string): void {
    this._h[k] = v;
  }

  private _end(status: number, text: string): void {
    if (this._done) return;
    this._done = true;
    this.status = status;
    this.responseText = text;
    this.readyState = 4;
    if (this.onreadystatechange) this.onreadystatechange();
  }

  send(body?: string | null): void {
    const u = new URL(this._u);
    const mod: any = u.protocol === "https:" ? https : http;
    const o = this._o || {};
    const opts: any = { method: this._m, headers: this._h };
    if (o.agent !== undefined) opts.agent = o.agent;
    for (const k of ["pfx", "key", "passphrase", "cert", "ca", "ciphers", "rejectUnauthorized"]) {
      if (o[k] !== undefined) opts[k] = o[k];
    }
    if (body != null) opts.headers["Content-Length"] = Buffer.byteLength(body);
    const req: http.ClientRequest = mod.request(u, opts, (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => this._end(res.statusCode || 0, Buffer.concat(chunks).toString("utf8")));
      res.on("error", () => this._end(0, ""));
    });
    req.on("error", () => this._end(0, ""));
    this._r = req;
    req.end(body == null ? undefined : body);
  }

  abort(): void {
    this._done = true;
    if (this._r) this._r.destroy();
  }
}

export function newXHR(opts: any): any {
  return opts.XMLHttpRequest ? new opts.XMLHttpRequest() : new NodeXHR(opts);
}

export const defer = (fn: () => void): void => process.nextTick(fn);

const WS_OPTIONS = ["agent", "pfx", "key", "passphrase", "cert", "ca", "ciphers", "rejectUnauthorized", "perMessageDeflate"];

/**
 * The WebSocket constructor: the `WebSocket` option, else the global one (Node 22+) unless
 * options only the `ws` package supports are given (headers, agent, TLS), else `ws`.
 * Resolves to undefined when none is available.
 */
export function wsCtor(opts: any): any {
  if (opts.WebSocket) return opts.WebSocket;
  const G = (globalThis as any).WebSocket;
  if (G && !opts.extraHeaders && !WS_OPTIONS.some((k) => opts[k] !== undefined)) return G;
  const name = "ws";
  return import(name).then(
    (m: any) => m.default || m.WebSocket || m,
    () => {
      if (G) throw new Error("extraHeaders, agent and TLS options on WebSocket need the ws package (npm install ws)");
    },
  );
}

export function newWS(C: any, uri: string, opts: any): any {
  const h = opts.extraHeaders;
  const o: any = {};
  for (const k of WS_OPTIONS) {
    if (opts[k] !== undefined) o[k] = opts[k];
  }
  if (h) o.headers = h;
  // `ws` accepts (url, protocols, options); the standard constructor ignores the third argument.
  return new C(uri, opts.protocols || [], o);
}

export function toBinary(data: any): any {
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}

export function fromBase64(s: string): Buffer {
  return Buffer.from(s, "base64");
}

export function toBase64(data: any, cb: (s: string) => void): void {
  if (typeof Blob !== "undefined" && data instanceof Blob) {
    data.arrayBuffer().then((ab) => cb(Buffer.from(ab).toString("base64")));
    return;
  }
  const b =
    data instanceof ArrayBuffer ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  cb(b.toString("base64"));
}

export function rawBinary(data: any): any {
  return data;
}

let prior = false;

export function storeGet(): boolean {
  return prior;
}

export function storeSet(v: boolean): void {
  prior = v;
}
