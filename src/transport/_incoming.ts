// Shared by the adapters: Connection.handle(), called once, and the streams the peer opened
// before it was called (queued in arrival order, not lost; delivered first).

import type { IncomingHandlers } from "./types.ts";
import { TransportError, TransportErrorCode as E } from "./transport_error.ts";

/**
 * The error for a second `handle()` on one connection (types.ts: "Call it once per connection").
 * @param handlers What the connection's `handle()` set so far.
 * @throws {TransportError} `INVALID_ARGUMENT` when `handlers` is set.
 */
export function checkFirstHandle(handlers: IncomingHandlers | undefined): void {
  if (handlers) throw new TransportError(E.INVALID_ARGUMENT, "handle() may be called once per connection");
}

/**
 * One connection's incoming streams: held until `handle()` gives the handlers, then each goes
 * to `deliver` with them, earlier ones first. For stacks that hand streams over as events (Bun,
 * Node); Deno's queue them natively until read, so its adapter only needs {@link checkFirstHandle}.
 */
export class Incoming<T> {
  readonly #deliver: (stream: T, handlers: IncomingHandlers) => void;
  #handlers: IncomingHandlers | undefined;
  #early: T[] = [];

  /** @param deliver Hands one stream to the handlers (or refuses it when there is none for its kind). */
  constructor(deliver: (stream: T, handlers: IncomingHandlers) => void) {
    this.#deliver = deliver;
  }

  /** The handlers `handle()` set; undefined before. */
  get handlers(): IncomingHandlers | undefined {
    return this.#handlers;
  }

  /** A stream the peer opened: delivered now, or once `handle()` is called. */
  push(stream: T): void {
    if (this.#handlers) this.#deliver(stream, this.#handlers);
    else this.#early.push(stream);
  }

  /**
   * Sets the handlers and delivers the streams that came before, in arrival order.
   * @throws {TransportError} `INVALID_ARGUMENT` on a second call; the first handlers stay.
   */
  handle(handlers: IncomingHandlers): void {
    checkFirstHandle(this.#handlers);
    this.#handlers = handlers;
    for (const s of this.#early.splice(0)) this.#deliver(s, handlers);
  }
}
