// Shared by the Bun and Deno adapters: the incoming-stream gate that keeps stream credit flowing.
//
// Both stacks return stream slots to the opener (QUIC MAX_STREAMS) in batches, not as streams
// close: Bun's node:quic once half the advertised limit has closed since its last update, quinn
// once an eighth has (measured; docs/TRANSPORT.md "Stream limits and credit"). A peer holding
// more than the rest of the limit open never gets the slots of the streams it closes back, so
// it stalls for good. The adapters therefore advertise twice the limit to the stack and serve
// at most `limit` streams at once through this gate: whenever the opener is out of slots with
// no more than `limit` streams live, at least half the advertised limit has closed, so both
// stacks have sent the update. Streams past `limit` wait here, in arrival order.

import { TransportError, TransportErrorCode as E } from "./transport_error.ts";

/** The error for an open given up while waiting for a stream slot. */
export function slotGivenUp(): TransportError {
  return new TransportError(E.STREAM_LIMIT, "cannot open a stream: the peer's limit on concurrent streams is reached, and no slot came before the wait was given up");
}

/** The concurrent-stream limit to advertise to the stack when serving `limit` at once. */
export function advertisedStreams(limit: number): number {
  return 2 * limit;
}

/**
 * Delivers incoming streams, at most `limit` live at once; the rest wait in arrival order.
 * `deliver` gets a `done` callback to call (once or more) when the stream has finished both
 * ways, which lets the next waiting stream in.
 */
export class StreamGate<T> {
  readonly #limit: number;
  readonly #deliver: (stream: T, done: () => void) => void;
  #live = 0;
  #queue: (T | undefined)[] = [];
  #head = 0;

  constructor(limit: number, deliver: (stream: T, done: () => void) => void) {
    this.#limit = limit;
    this.#deliver = deliver;
  }

  /** Streams delivered and not yet done. */
  get live(): number {
    return this.#live;
  }

  /** Streams waiting for a slot. */
  get waiting(): number {
    return this.#queue.length - this.#head;
  }

  /** A stream the peer opened: delivered now, or once a live one is done. */
  push(stream: T): void {
    if (this.#live < this.#limit && this.waiting === 0) this.#start(stream);
    else this.#queue.push(stream);
  }

  /** Drops every waiting stream (the connection ended); returns them. */
  clear(): T[] {
    const rest = this.#queue.slice(this.#head) as T[];
    this.#queue = [];
    this.#head = 0;
    return rest;
  }

  #start(stream: T): void {
    this.#live++;
    let freed = false;
    this.#deliver(stream, () => {
      if (freed) return;
      freed = true;
      this.#live--;
      this.#next();
    });
  }

  #next(): void {
    while (this.#live < this.#limit && this.#head < this.#queue.length) {
      const s = this.#queue[this.#head] as T;
      this.#queue[this.#head++] = undefined;
      this.#start(s);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}
