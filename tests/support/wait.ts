// Waiting on events, not on time (issue 13 §4). A test that needs "until X happened" waits for X
// with a deadline and, when X never comes, fails saying what it waited for. Plain time passing
// is for what is about time itself (a timeout, a refill, an idle timer: `elapse`) and for
// negative checks ("nothing more arrives": `quietFor`); both say so at the call site.
// Runtime neutral (Bun, Deno, Node), so child scripts can use it too.

/** A promise with its resolve and reject, for a callback or handler to signal a test. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
  /** Whether resolve or reject was called. */
  readonly settled: boolean;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  let settled = false;
  const promise = new Promise<T>((res, rej) => {
    resolve = (v) => ((settled = true), res(v));
    reject = (e) => ((settled = true), rej(e));
  });
  return {
    promise,
    resolve,
    reject,
    get settled() {
      return settled;
    },
  };
}

export interface WaitOptions {
  /**
   * Fail after this long. Default 4000 ms: far above what loopback needs, and below bun test's
   * per-test timeout (5 s: bun 1.4 ignores bunfig.toml's `timeout`), so the failure names what
   * it waited for instead of only "timed out".
   */
  timeoutMs?: number;
  /** Poll interval (default 5 ms). */
  everyMs?: number;
}

const tick = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Resolves once `cond()` is true (checked at once, then every `everyMs`); throws
 * `timed out after N ms waiting for <what>` after `timeoutMs`. For state with no event to
 * listen to: counters, stats, flags a handler sets; `cond` may be async (a query to a peer).
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, o: WaitOptions = {}): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 4000;
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await tick(o.everyMs ?? 5);
  }
}

/** `p`'s value, or a failure naming `what` if it has not settled within `timeoutMs`. */
export async function within<T>(p: Promise<T>, what: string, timeoutMs = 4000): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs))),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/** The next `type` event dispatched on `target`, within `timeoutMs`. */
export function once<E extends Event = Event>(target: EventTarget, type: string, timeoutMs = 4000): Promise<E> {
  let listener!: EventListener;
  const fired = new Promise<E>((r) => (listener = (e) => r(e as E)));
  target.addEventListener(type, listener, { once: true });
  return within(fired, `a "${type}" event`, timeoutMs).finally(() => target.removeEventListener(type, listener));
}

/**
 * Lets `ms` pass on purpose: what is tested is about time (a deadline, a rate refill, an idle
 * timer, traffic paced at a rate). Not for "until X happened": use waitFor / within / once.
 */
export const elapse = (ms: number): Promise<void> => tick(ms);

/**
 * A negative check's bounded wait: gives something that must NOT happen `ms` to show up (a
 * straggler, a second event, a sender that should stay blocked). Assert after it.
 */
export const quietFor = (ms: number): Promise<void> => tick(ms);
