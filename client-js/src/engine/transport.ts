import { Emitter } from "../emitter.js";
import { Packet, decodePacket } from "./parser.js";

export class TransportError extends Error {
  readonly type = "TransportError";
  constructor(reason: string, public description?: any, public context?: any) {
    super(reason);
  }
}

let seq = 0;

/** Base transport: emits `open`, `packet`, `drain`, `error`, `close`. */
export abstract class Transport extends Emitter {
  abstract readonly name: string;
  readyState: "" | "opening" | "open" | "closed" | "pausing" | "paused" = "";
  writable = false;
  query: Record<string, string>;

  constructor(public opts: any) {
    super();
    this.query = opts.query;
  }

  onError(reason: string, description?: any, context?: any): this {
    this.emitReserved("error", new TransportError(reason, description, context));
    return this;
  }

  open(): this {
    this.readyState = "opening";
    this.doOpen();
    return this;
  }

  close(): this {
    if (this.readyState === "opening" || this.readyState === "open") {
      this.doClose();
      this.onClose();
    }
    return this;
  }

  send(packets: Packet[]): void {
    if (this.readyState === "open") this.write(packets);
  }

  protected onOpen(): void {
    this.readyState = "open";
    this.writable = true;
    this.emitReserved("open");
  }

  protected onData(data: any): void {
    this.onPacket(decodePacket(data));
  }

  protected onPacket(p: Packet): void {
    this.emitReserved("packet", p);
  }

  protected onClose(details?: any): void {
    this.readyState = "closed";
    this.emitReserved("close", details);
  }

  pause(onPause: () => void): void {
    onPause();
  }

  protected uri(schema: string, stamp?: boolean): string {
    const o = this.opts;
    const q: Record<string, string> = {};
    for (const k in this.query) q[k] = this.query[k];
    if (stamp) q.t = Date.now().toString(36) + "." + (seq++).toString(36);
    const qs = Object.keys(q)
      .map((k) => encodeURIComponent(k) + "=" + encodeURIComponent(q[k]))
      .join("&");
    return schema + (o.secure ? "s" : "") + "://" + o.host + o.path + (qs ? "?" + qs : "");
  }

  protected abstract doOpen(): void;
  protected abstract doClose(): void;
  protected abstract write(packets: Packet[]): void;
}
