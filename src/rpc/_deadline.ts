// Deadlines and cancellation for the waits before a call or stream is under way: a stream slot
// (the peer's concurrent-stream limit) and, for streams, the peer accepting the open.

import { ErrorCode, RpcError } from "../protocol/rpc_error.ts";
import type { BidiStream, Connection } from "../transport/types.ts";

/** What a wait is for, in messages: `"user.get"` or `stream "audio"`. */
type What = string;

/** A deadline waiting in {@link deadlines}. */
interface Due {
  at: number;
  fire: () => void;
}

/**
 * One timer for every bounded wait in the process. Nearly every wait ends long before its
 * deadline, and a timer set and cleared per call costs ~4 µs on Deno (~0.3 µs on Bun): here a
 * wait costs a Set insertion, and the timer is re-armed only for an earlier deadline.
 */
const deadlines = {
  waits: new Set<Due>(),
  timer: undefined as ReturnType<typeof setTimeout> | undefined,
  timerAt: Infinity,
  add(ms: number, fire: () => void): Due {
    const due = { at: performance.now() + ms, fire };
    this.waits.add(due);
    if (due.at < this.timerAt) this.arm(due.at);
    return due;
  },
  arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    // Timers turn a delay past 2^31 - 1 ms into 1 ms: wake at the limit and re-arm from there.
    this.timer = setTimeout(() => this.tick(), Math.min(2 ** 31 - 1, Math.max(0, Math.ceil(at - performance.now()))));
    // Connections keep a process alive, not a deadline left over from a finished wait.
    const t = this.timer as unknown as { unref?: () => void };
    if (typeof t === "number") (globalThis as { Deno?: { unrefTimer(id: number): void } }).Deno?.unrefTimer(t);
    else t.unref?.();
  },
  tick(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const due of this.waits) {
      if (due.at <= now) {
        this.waits.delete(due);
        due.fire();
      } else next = Math.min(next, due.at);
    }
    if (next < Infinity) this.arm(next);
  },
};

/**
 * Runs `wait(signal)` until it settles, `timeoutMs` passes or `signal` aborts; in the last two
 * cases the signal given to `wait` aborts and the returned promise rejects with `onTimeout()` /
 * `onCancel()` (whatever `wait` then throws is ignored).
 */
async function bounded<T>(
  wait: (signal: AbortSignal) => Promise<T>,
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
  onTimeout: () => RpcError,
  onCancel: () => RpcError,
): Promise<T> {
  const ac = new AbortController();
  let why: RpcError | undefined;
  let fail!: (e: RpcError) => void;
  const stopped = new Promise<never>((_, reject) => (fail = reject));
  const stop = (e: RpcError) => {
    if (why) return;
    why = e;
    ac.abort(e);
    fail(e);
  };
  const due = timeoutMs === undefined ? undefined : deadlines.add(timeoutMs, () => stop(onTimeout()));
  const onAbort = () => stop(onCancel());
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const work = wait(ac.signal);
    work.catch(() => {}); // its failure after we stopped waiting is not news
    return await Promise.race([work, stopped]);
  } catch (e) {
    throw why ?? e;
  } finally {
    if (due) deadlines.waits.delete(due);
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Opens a stream for `what`, waiting for a slot at most `timeoutMs` and until `signal` aborts.
 * @throws {RpcError} `DEADLINE_EXCEEDED` or `CANCELLED` naming the peer's stream limit.
 * @throws {TransportError} When the connection fails.
 */
export function openWithin(conn: Connection, what: What, timeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<BidiStream> {
  const limit = "the peer's limit on concurrent streams is reached (QUIC MAX_STREAMS)";
  return bounded(
    (s) => conn.openBidi({ signal: s }),
    timeoutMs,
    signal,
    () => new RpcError(ErrorCode.DEADLINE_EXCEEDED, `${what} got no stream within ${timeoutMs} ms: ${limit}`),
    () => new RpcError(ErrorCode.CANCELLED, `${what} cancelled while waiting for a stream: ${limit}`, signal?.reason),
  );
}

/**
 * Waits for the answer to a stream's OPEN at most `timeoutMs` and until `signal` aborts.
 * @throws {RpcError} `DEADLINE_EXCEEDED` or `CANCELLED`.
 */
export function acceptedWithin<T>(answer: Promise<T>, what: What, timeoutMs: number | undefined, totalMs: number | undefined, signal: AbortSignal | undefined): Promise<T> {
  return bounded(
    () => answer,
    timeoutMs,
    signal,
    () =>
      new RpcError(
        ErrorCode.DEADLINE_EXCEEDED,
        `${what} did not open within ${totalMs} ms: the peer did not accept it in time (it serves a limited number of streams at once)`,
      ),
    () => new RpcError(ErrorCode.CANCELLED, `${what} cancelled before the peer accepted it`, signal?.reason),
  );
}

/**
 * Calls `fire` after `ms` unless the returned function is called first. Shares the one deadline
 * timer: a guard set on every incoming stream (and nearly always cleared microseconds later)
 * costs a Set insertion, not a timer.
 */
export function after(ms: number, fire: () => void): () => void {
  const due = deadlines.add(ms, fire);
  return () => void deadlines.waits.delete(due);
}
