// Bun adapter: opening a stream past the peer's limit. Bun's node:quic hands out a "pending"
// stream that gets its slot when the peer sends MAX_STREAMS, with no event for it, so waits
// poll; and a destroyed pending stream still takes a slot when credit comes (measured: four
// destroyed, and the next open stayed pending for good; docs/TRANSPORT.md), so a stream whose
// opener gave up is kept for the next open instead.

import { TransportError, TransportErrorCode as E } from "./transport_error.ts";
import { slotGivenUp } from "./_stream_gate.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/** How often waits look again: Bun has no event for a pending stream getting its slot. */
const POLL_MS = 2;

interface Wait {
  stream: Any;
  ok: () => void;
  fail: (e: TransportError) => void;
}

/** Pending streams of one session: waits for their slots, and spares from given-up waits. */
export class PendingOpens {
  readonly #session: Any;
  #waits: Wait[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Streams whose opener gave up waiting, for the next opens, oldest first. */
  #spares: Any[] = [];

  constructor(session: Any) {
    this.#session = session;
  }

  /** A stream an earlier opener gave up on (pending or not), if any. */
  spare(): Any | undefined {
    while (this.#spares.length > 0) {
      const s = this.#spares.shift();
      if (!s.destroyed) return s;
    }
    return undefined;
  }

  /** Waits until pending `stream` has a slot; on abort keeps it as a spare and rejects. */
  wait(stream: Any, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waits.indexOf(wait);
        if (i < 0) return;
        this.#waits.splice(i, 1);
        this.#spares.push(stream);
        reject(slotGivenUp());
      };
      const wait: Wait = {
        stream,
        ok: () => (signal?.removeEventListener("abort", onAbort), resolve()),
        fail: (e) => (signal?.removeEventListener("abort", onAbort), reject(e)),
      };
      this.#waits.push(wait);
      this.#timer ??= setInterval(() => this.poll(), POLL_MS);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Settles the waits whose stream got a slot (in opening order) or whose session ended. */
  poll(): void {
    const waits = this.#waits;
    let i = 0;
    for (; i < waits.length; i++) {
      const w = waits[i];
      if (w.stream.destroyed || this.#session.destroyed) w.fail(new TransportError(E.CLOSED, "cannot open a stream: the connection is closed"));
      else if (!w.stream.pending) w.ok();
      else break; // slots are granted in opening order
    }
    if (i > 0) waits.splice(0, i);
    if (waits.length === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
