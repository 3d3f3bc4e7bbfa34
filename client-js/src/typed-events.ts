// Type-level helpers for typed events, as in socket.io-client (no runtime code).

/** A map of event names to listener signatures. */
export interface EventsMap {
  [event: string]: any;
}

/** The default: any event with any arguments. */
export interface DefaultEventsMap {
  [event: string]: (...args: any[]) => void;
}

export type EventNames<Map extends EventsMap> = keyof Map & (string | symbol);

export type EventParams<Map extends EventsMap, Ev extends EventNames<Map>> = Parameters<Map[Ev]>;

export type ReservedOrUserEventNames<Reserved extends EventsMap, User extends EventsMap> =
  | EventNames<Reserved>
  | EventNames<User>;

type FallbackToUntypedListener<T> = [T] extends [never] ? (...args: any[]) => void | Promise<void> : T;

export type ReservedOrUserListener<
  Reserved extends EventsMap,
  User extends EventsMap,
  Ev extends ReservedOrUserEventNames<Reserved, User>,
> = FallbackToUntypedListener<
  Ev extends EventNames<Reserved> ? Reserved[Ev] : Ev extends EventNames<User> ? User[Ev] : never
>;

type IfAny<T, Y, N> = 0 extends 1 & T ? Y : N;

export type Last<T extends any[]> = T extends [...infer _H, infer L] ? L : any;

export type AllButLast<T extends any[]> = T extends [...infer H, infer _L] ? H : any[];

export type FirstNonErrorArg<T> = T extends (...args: infer Params) => any
  ? Params[0] extends Error
    ? Params[1]
    : Params[0]
  : any;

/** Events whose last parameter is an acknowledgement callback. */
export type EventNamesWithAck<Map extends EventsMap, K extends EventNames<Map> = EventNames<Map>> = IfAny<
  Last<Parameters<Map[K]>> | Map[K],
  K,
  K extends (Last<Parameters<Map[K]>> extends (...args: any[]) => any ? K : never) ? K : never
>;

type PrependTimeoutError<T extends any[]> = {
  [K in keyof T]: T[K] extends (...args: infer Params) => infer Result
    ? Params[0] extends Error
      ? T[K]
      : (err: Error, ...args: Params) => Result
    : T[K];
};

/** The events of `E` with an Error first argument added to each acknowledgement (timeout). */
export type DecorateAcknowledgements<E> = {
  [K in keyof E]: E[K] extends (...args: infer Params) => infer Result
    ? (...args: PrependTimeoutError<Params>) => Result
    : E[K];
};
