import { io, Manager, Socket, Engine, protocol } from "./index.js";

declare const self: any;
declare const window: any;

const g: any = typeof self !== "undefined" ? self : window;
g.io = Object.assign(io, { io, connect: io, Manager, Socket, Engine, protocol });
