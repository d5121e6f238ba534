// Deno adapter: opening a stream past the peer's limit. `createBidirectionalStream()` throws a
// RangeError at the limit; with `waitUntilAvailable` it waits, but that wait cannot be
// cancelled. So opens past the limit wait in line here, with one native wait running for the
// head of the line; a stream it yields after its opener gave up goes to the next in line (or is
// kept as the spare for the next open): never opened and thrown away.

import { slotGivenUp } from "./_stream_gate.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

interface Wait {
  ok: (b: Any) => void;
  fail: (e: unknown) => void;
}

/** The opens of one connection that wait for a slot. */
export class OpenQueue {
  readonly #conn: Any;
  /** In call order; `undefined` where the opener gave up. */
  #waits: (Wait | undefined)[] = [];
  #waiting = false;
  #spare: Any;

  constructor(conn: Any) {
    this.#conn = conn;
  }

  /**
   * A native bidirectional stream: at once when a slot is free and nobody waits, else in line.
   * @throws {TransportError} `STREAM_LIMIT` when `signal` aborts first; the native error when
   *   the connection fails.
   */
  async open(signal: AbortSignal | undefined): Promise<Any> {
    if (signal?.aborted) throw slotGivenUp();
    const spare = this.#spare;
    this.#spare = undefined;
    if (spare) return spare;
    if (this.#waits.length === 0) {
      try {
        return await this.#conn.createBidirectionalStream();
      } catch (e) {
        if (!(e instanceof RangeError)) throw e; // a RangeError: the peer's limit is reached
      }
    }
    return await this.#inLine(signal);
  }

  #inLine(signal: AbortSignal | undefined): Promise<Any> {
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waits.indexOf(wait);
        if (i >= 0) this.#waits[i] = undefined;
        reject(slotGivenUp());
      };
      const wait: Wait = {
        ok: (b) => (signal?.removeEventListener("abort", onAbort), resolve(b)),
        fail: (e) => (signal?.removeEventListener("abort", onAbort), reject(e)),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waits.push(wait);
      this.#next();
    });
  }

  #dropGivenUp(): void {
    while (this.#waits.length > 0 && this.#waits[0] === undefined) this.#waits.shift();
  }

  #next(): void {
    this.#dropGivenUp();
    if (this.#waiting || this.#waits.length === 0) return;
    this.#waiting = true;
    this.#conn.createBidirectionalStream({ waitUntilAvailable: true }).then(
      (b: Any) => {
        this.#waiting = false;
        this.#dropGivenUp();
        const w = this.#waits.shift();
        if (w) w.ok(b);
        else this.#spare = b;
        this.#next();
      },
      (e: unknown) => {
        this.#waiting = false;
        for (const w of this.#waits.splice(0)) w?.fail(e);
      },
    );
  }
}
