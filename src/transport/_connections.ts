// Shared by the adapters: the option defaults every adapter applies, the recorded idle timeout,
// and a listener's set of live connections, closed together by `Listener.close()`.

/** `idleTimeoutMs` when left out (listen and connect). */
export const DEFAULT_IDLE_TIMEOUT_MS = 30000;
/** `maxBidiStreams` when left out (listen and connect). */
export const DEFAULT_MAX_BIDI_STREAMS = 1024;
/** `ListenOptions.maxUniStreams` when left out. */
export const DEFAULT_MAX_UNI_STREAMS = 64;

/**
 * `Connection.lowerIdleTimeout(ms)`: the new idle timeout, `ms` when it is at least a second and
 * lower than `current`, else `current`.
 */
export function lowerIdle(current: number, ms: number): number {
  return ms >= 1000 && ms < current ? ms : current;
}

/**
 * What a listener has open: each entry leaves once its `closed` settles (either way); `closeAll`
 * closes the rest at once.
 */
export class ConnectionSet<T> {
  readonly #live = new Set<T>();

  /** Tracks `entry` until `closed` settles. */
  add(entry: T, closed: PromiseLike<unknown>): void {
    this.#live.add(entry);
    const drop = () => void this.#live.delete(entry);
    closed.then(drop, drop);
  }

  /** How many are open. */
  get size(): number {
    return this.#live.size;
  }

  /** Closes every open entry with `close`, concurrently; resolves when all have. */
  async closeAll(close: (entry: T) => Promise<void>): Promise<void> {
    await Promise.all([...this.#live].map(close));
  }
}
