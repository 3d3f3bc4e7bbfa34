export type Listener = (...args: any[]) => void;

/** Minimal event emitter shared by the engine and socket layers. */
export class Emitter {
  private _l: Record<string, Listener[]> = {};

  on(ev: string, fn: Listener): this {
    (this._l[ev] = this._l[ev] || []).push(fn);
    return this;
  }

  once(ev: string, fn: Listener): this {
    const w: any = (...args: any[]) => {
      this.off(ev, w);
      fn.apply(this, args);
    };
    w.fn = fn;
    return this.on(ev, w);
  }

  off(ev?: string, fn?: Listener): this {
    if (ev === undefined) {
      this._l = {};
    } else if (!fn) {
      delete this._l[ev];
    } else {
      const list = this._l[ev];
      if (list) {
        for (let i = 0; i < list.length; i++) {
          if (list[i] === fn || (list[i] as any).fn === fn) {
            list.splice(i, 1);
            break;
          }
        }
        if (!list.length) delete this._l[ev];
      }
    }
    return this;
  }

  removeListener(ev?: string, fn?: Listener): this {
    return this.off(ev, fn);
  }

  removeAllListeners(ev?: string): this {
    return this.off(ev);
  }

  emit(ev: string, ...args: any[]): any {
    const list = this._l[ev];
    if (list) for (const fn of list.slice()) fn.apply(this, args);
    return this;
  }

  /** Emits an event that cannot be overridden by subclasses (reserved events). */
  emitReserved(ev: string, ...args: any[]): this {
    Emitter.prototype.emit.apply(this, [ev, ...args]);
    return this;
  }

  listeners(ev: string): Listener[] {
    return (this._l[ev] || []).slice();
  }

  hasListeners(ev: string): boolean {
    return !!(this._l[ev] && this._l[ev].length);
  }
}

/** Subscribes and returns an unsubscribe function. */
export function on(obj: Emitter, ev: string, fn: Listener): () => void {
  obj.on(ev, fn);
  return () => obj.off(ev, fn);
}
