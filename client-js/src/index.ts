import { defaultURI } from "./platform.js";
import { Manager, ManagerOptions } from "./socketio/manager.js";
import { Socket, SocketOptions } from "./socketio/socket.js";
import type { DisconnectReason, SocketReservedEvents } from "./socketio/socket.js";
import type { EngineOptions } from "./engine/socket.js";
import type { DefaultEventsMap, EventsMap } from "./typed-events.js";
import { protocol } from "./socketio/parser.js";
import { Engine } from "./engine/socket.js";

export interface Options extends ManagerOptions, SocketOptions {
  /** Always create a new Manager (connection). Default: false. */
  forceNew?: boolean;
  /** Share the Manager between sockets to the same host. Default: true. */
  multiplex?: boolean;
}

const cache: Record<string, Manager> = {};

/**
 * Creates a socket for the namespace in `uri` (default "/"), sharing one connection
 * per host unless `forceNew` or `multiplex: false` is given.
 */
function lookup(uri?: string | Partial<Options>, opts?: Partial<Options>): Socket {
  if (typeof uri === "object") {
    opts = uri;
    uri = undefined;
  }
  opts = opts || {};
  const u = new URL((uri as string) || defaultURI() || "", defaultURI());
  const id = u.protocol + "//" + u.host + "|" + (opts.path || "/socket.io");
  const nsp = u.pathname || "/";
  const source = u.protocol + "//" + u.host + u.search;
  const same = cache[id] && nsp in cache[id].nsps;
  let io: Manager;
  if (opts.forceNew || (opts as any)["force new connection"] || opts.multiplex === false || same) {
    io = new Manager(source, opts);
  } else {
    io = cache[id] = cache[id] || new Manager(source, opts);
  }
  return io.socket(nsp, opts);
}

export { lookup as io, lookup as connect, Manager, Socket, Engine, protocol };
export type { ManagerOptions, SocketOptions, EngineOptions, DisconnectReason, SocketReservedEvents, EventsMap, DefaultEventsMap };
export default lookup;
