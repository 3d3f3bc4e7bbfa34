import { newXHR } from "../platform.js";
import { Packet, decodePayload, encodePayload } from "./parser.js";
import { Transport } from "./transport.js";

/** HTTP long-polling over XMLHttpRequest. */
export class Polling extends Transport {
  readonly name = "polling";
  private _polling = false;
  private _reqs: any[] = [];

  protected doOpen(): void {
    this._poll();
  }

  pause(onPause: () => void): void {
    this.readyState = "pausing";
    const paused = () => {
      this.readyState = "paused";
      onPause();
    };
    let total = 0;
    const done = () => {
      if (!--total) paused();
    };
    if (this._polling) {
      total++;
      this.once("pollComplete", done);
    }
    if (!this.writable) {
      total++;
      this.once("drain", done);
    }
    if (!total) paused();
  }

  private _poll(): void {
    this._polling = true;
    this._req("GET", null, (data) => this._onPoll(data));
    this.emitReserved("poll");
  }

  private _onPoll(data: string): void {
    for (const p of decodePayload(data)) {
      if (this.readyState === "opening" && p.type === "open") this.onOpen();
      if (p.type === "close") {
        this.onClose({ description: "transport closed by the server" });
        return;
      }
      this.onPacket(p);
    }
    if (this.readyState !== "closed") {
      this._polling = false;
      this.emitReserved("pollComplete");
      if (this.readyState === "open") this._poll();
    }
  }

  protected doClose(): void {
    const close = () => this.write([{ type: "close" }]);
    if (this.readyState === "open") close();
    else this.once("open", close);
    // pending GET is aborted; the close POST is sent with a fresh request
    const rs = this._reqs.slice();
    setTimeout(() => rs.forEach((x) => x.m === "GET" && x.abort()), 0);
  }

  protected write(packets: Packet[]): void {
    this.writable = false;
    encodePayload(packets, (data) =>
      this._req("POST", data, () => {
        this.writable = true;
        this.emitReserved("drain");
      }),
    );
  }

  private _req(method: string, data: string | null, onLoad: (s: string) => void): void {
    const o = this.opts;
    const xhr = newXHR(o);
    const entry = { m: method, abort: () => done(true) };
    let finished = false;
    const done = (abort?: boolean) => {
      if (finished) return;
      finished = true;
      xhr.onreadystatechange = null;
      this._reqs.splice(this._reqs.indexOf(entry), 1);
      if (abort) {
        try {
          xhr.abort();
        } catch (e) {}
      }
    };
    this._reqs.push(entry);
    try {
      xhr.open(method, this.uri("http", o.timestampRequests !== false), true);
      const h = o.extraHeaders;
      if (h) for (const k in h) xhr.setRequestHeader(k, h[k]);
      if (method === "POST") xhr.setRequestHeader("Content-Type", "text/plain;charset=UTF-8");
      xhr.withCredentials = !!o.withCredentials;
      xhr.onreadystatechange = () => {
        if (xhr.readyState !== 4) return;
        const status = xhr.status;
        done();
        if (status === 200 || status === 1223) onLoad(xhr.responseText);
        else
          // deferred so the status-0 case of an aborted page does not race with unload
          setTimeout(() => this._fail(status, xhr), 0);
      };
      xhr.send(data);
    } catch (e) {
      done();
      setTimeout(() => this._fail(e, xhr), 0);
    }
  }

  private _fail(desc: any, ctx: any): void {
    if (this.readyState === "closed") return;
    this.onError("xhr poll error", desc, ctx);
  }
}
