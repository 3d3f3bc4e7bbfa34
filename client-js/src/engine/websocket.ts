import { defer, newWS, rawBinary, wsCtor } from "../platform.js";
import { Packet, encodePacket } from "./parser.js";
import { Transport, TransportError } from "./transport.js";

/** WebSocket transport (browser global, an option-provided constructor, or `ws` in Node). */
export class WS extends Transport {
  readonly name = "websocket";
  private _ws: any = null;

  protected doOpen(): void {
    Promise.resolve(wsCtor(this.opts)).then(
      (C) => {
        if (this.readyState !== "opening") return;
        if (!C) return this._unavailable("no WebSocket implementation: pass the WebSocket option (in Node: npm install ws)");
        let ws: any;
        try {
          ws = this._ws = newWS(C, this.uri("ws"), this.opts);
        } catch (e) {
          this.emitReserved("error", e);
          return;
        }
        ws.binaryType = "arraybuffer";
        ws.onopen = () => this.onOpen();
        ws.onclose = (ev: any) => this.onClose({ description: "websocket connection closed", context: ev });
        ws.onmessage = (ev: any) => this.onData(ev.data);
        ws.onerror = (e: any) => this.onError("websocket error", e);
      },
      (e) => this._unavailable(e.message),
    );
  }

  /** A configuration error: retrying cannot help, so the Manager does not reconnect. */
  private _unavailable(msg: string): void {
    const err: any = new TransportError("WebSocket unavailable: " + msg);
    err.fatal = true;
    this.emitReserved("error", err);
  }

  protected write(packets: Packet[]): void {
    this.writable = false;
    packets.forEach((p, i) => {
      const last = i === packets.length - 1;
      encodePacket(p, true, (data) => {
        try {
          const d = typeof data === "string" ? data : rawBinary(data);
          if (p.options && p.options.compress === false && this._ws.on) this._ws.send(d, { compress: false });
          else this._ws.send(d);
        } catch (e) {}
        if (last)
          // on the next tick, as socket.io-client does: volatile emits right after a
          // write are dropped the same way
          defer(() => {
            this.writable = true;
            this.emitReserved("drain");
          });
      });
    });
  }

  protected doClose(): void {
    const ws = this._ws;
    if (ws) {
      ws.onerror = () => {};
      ws.onclose = ws.onmessage = ws.onopen = null;
      try {
        ws.close();
      } catch (e) {}
      this._ws = null;
    }
  }
}
