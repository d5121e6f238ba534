/**
 * Finding EchoStream servers on the local network: `discover` (a one-shot lookup) and `browse` (a live
 * view with up/down events). Both send DNS-SD PTR queries for the service name's subtype over multicast
 * DNS with `dns-packet` on `node:dgram`, on Bun, Deno and Node.
 *
 * @module
 */

import { DiscoveryError } from "./discovery_error.ts";
import type { CommonBrowseOptions } from "./_session.ts";
import { Session } from "./_session.ts";
import type { DiscoveryStats } from "./limits.ts";
import type { BrowseEvent, DiscoveredService } from "./types.ts";

export type { CommonBrowseOptions };

/** Options for {@link discover}. */
export interface DiscoverOptions extends CommonBrowseOptions {
  /**
   * The longest `discover` waits; with no answer it resolves `[]` at this point.
   * @default {3000}
   */
  timeoutMs?: number;
  /**
   * Once a service is found, how long without new answers before `discover` resolves.
   * @default {300}
   */
  settleMs?: number;
  /** Receives the counters (received, dropped by reason, sent) when `discover` ends. */
  onStats?: (stats: DiscoveryStats) => void;
}

/** Options for {@link browse}. */
export interface BrowseOptions extends CommonBrowseOptions {
  /**
   * Longest interval between browse queries (they start at 1 s and double up to this). Each query is also
   * a liveness check; at least 1000 (responders answer the same record at most once a second).
   * @default {10000}
   */
  requeryMs?: number;
  /**
   * A service that misses this many queries in a row is reported `down` (a killed server sends no goodbye).
   * @default {2}
   */
  maxMissed?: number;
}

/** The live view {@link browse} returns: an async iterable of events that also shows the current state. */
export interface ServiceBrowser extends AsyncIterableIterator<BrowseEvent>, AsyncDisposable {
  /** Resolves once the sockets are bound and the first query is out; rejects like the first `next()`. */
  readonly ready: Promise<void>;
  /** Services currently up. */
  services(): DiscoveredService[];
  /** Counters: received, dropped by reason, sent. */
  stats(): DiscoveryStats;
  /** Stops browsing and closes the sockets; pending and later `next()` calls end the iteration. */
  close(): Promise<void>;
}

function checkMs(name: string, v: number | undefined, min: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
    throw new DiscoveryError("INVALID_ARGUMENT", `${name} must be a number ≥ ${min}, received ${String(v)}`);
  }
  return v;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("discovery aborted", "AbortError");
}

/**
 * Looks for servers advertising `name` and resolves with what answered: deduplicated by instance, IPv4 and
 * IPv6 addresses together, loopback addresses dropped unless `includeLoopback`. Resolves `settleMs` after
 * the last new answer (not the full timeout), or `[]` at `timeoutMs` when nothing answers. Only services that
 * answered during this call are returned: nothing stale from a cache.
 *
 * @param name The service name given to `advertise` / `enableDiscovery`.
 * @param opts Timeouts, interfaces, limits.
 * @returns The services found, sorted by instance name.
 * @throws {DiscoveryError} `UNAVAILABLE` when multicast cannot work here, `INVALID_ARGUMENT` for bad options.
 *
 * @example Find every AudioService on the LAN
 * ```ts
 * import { discover } from "@echostream/core/discovery";
 *
 * const found = await discover("AudioService", { timeoutMs: 2000 });
 * for (const s of found) console.log(s.instance, s.addresses, s.port, s.fingerprint);
 * ```
 */
export async function discover(name: string, opts: DiscoverOptions = {}): Promise<DiscoveredService[]> {
  const timeoutMs = checkMs("timeoutMs", opts.timeoutMs, 0, 3000);
  const settleMs = checkMs("settleMs", opts.settleMs, 0, 300);
  opts.signal?.throwIfAborted();
  let settle: () => void = () => {};
  const session = await Session.open(name, opts, () => settle());
  const start = performance.now();
  try {
    return await new Promise<DiscoveredService[]>((resolve, reject) => {
      let settleTimer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => finish(abortReason(opts.signal!));
      const finish = (err?: unknown) => {
        clearTimeout(settleTimer);
        clearTimeout(deadline);
        opts.signal?.removeEventListener("abort", onAbort);
        if (err !== undefined) reject(err);
        else resolve(session.services());
      };
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      const deadline = setTimeout(finish, timeoutMs);
      // Every change restarts the quiet period; it ends the call only once something is up.
      settle = () => {
        clearTimeout(settleTimer);
        settleTimer = setTimeout(() => session.services().length > 0 && finish(), settleMs);
      };
      // RFC 6762 §5.2: repeat after 1 s, then double.
      const ask = (delay: number) => {
        void session.query();
        if (performance.now() - start + delay < timeoutMs) session.after(delay, () => ask(delay * 2));
      };
      ask(1000);
    });
  } finally {
    await session.close();
    opts.onStats?.({ ...session.stats });
  }
}

/**
 * Follows the servers advertising `name`: an `up` event when one appears (and again when its port,
 * addresses or TXT change), a `down` event when it says goodbye, its records expire, or it misses
 * `maxMissed` queries in a row. `return()` / `close()` (or `break` in a `for await`) closes the sockets.
 *
 * @param name The service name given to `advertise` / `enableDiscovery`.
 * @param opts Query interval, liveness, interfaces, limits.
 * @returns The live view; iterate it for events.
 *
 * @example Watch AudioService instances come and go
 * ```ts
 * import { browse } from "@echostream/core/discovery";
 *
 * const browser = browse("AudioService", { requeryMs: 5000 });
 * setTimeout(() => browser.close(), 30_000);
 * for await (const e of browser) console.log(e.type, e.service.instance, e.service.addresses);
 * ```
 */
export function browse(name: string, opts: BrowseOptions = {}): ServiceBrowser {
  const requeryMs = checkMs("requeryMs", opts.requeryMs, 1000, 10_000);
  const maxMissed = checkMs("maxMissed", opts.maxMissed, 1, 2);
  const queue: BrowseEvent[] = [];
  const waiters: { resolve: (r: IteratorResult<BrowseEvent>) => void; reject: (e: unknown) => void }[] = [];
  let session: Session | undefined;
  let failure: unknown;
  let done = false;
  let maxQueued = Infinity;
  let dropped = 0;

  const push = (e: BrowseEvent) => {
    const w = waiters.shift();
    if (w) return w.resolve({ value: e, done: false });
    if (queue.length >= maxQueued) {
      queue.shift();
      dropped++;
    }
    queue.push(e);
  };
  const finish = (err?: unknown) => {
    if (done) return;
    done = true;
    if (err !== undefined) failure = err;
    for (const w of waiters.splice(0)) {
      if (failure !== undefined) w.reject(failure);
      else w.resolve({ value: undefined, done: true });
    }
  };

  const ready = (async () => {
    opts.signal?.throwIfAborted();
    maxQueued = opts.limits?.maxQueuedEvents ?? 1024;
    const s = await Session.open(name, opts, push);
    if (done) {
      await s.close();
      return;
    }
    session = s;
    const ask = (delay: number) => {
      s.table.liveness(maxMissed);
      void s.query();
      s.after(delay, () => ask(Math.min(delay * 2, requeryMs)));
    };
    ask(Math.min(1000, requeryMs));
    const sweep = () => {
      s.table.sweep();
      s.after(1000, sweep);
    };
    s.after(1000, sweep);
    opts.signal?.addEventListener("abort", () => void close(), { once: true });
  })();
  ready.catch((e) => finish(e));

  const close = async () => {
    finish();
    await ready.catch(() => {});
    await session?.close();
  };

  const it: ServiceBrowser = {
    ready,
    next() {
      const e = queue.shift();
      if (e) return Promise.resolve({ value: e, done: false });
      if (done) {
        return failure !== undefined ? Promise.reject(failure) : Promise.resolve({ value: undefined, done: true });
      }
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    async return() {
      await close();
      return { value: undefined, done: true };
    },
    services: () => session?.services() ?? [],
    stats: () => ({
      ...(session?.stats ?? {} as DiscoveryStats),
      eventsDropped: (session?.stats.eventsDropped ?? 0) + dropped,
    }),
    close,
    [Symbol.asyncIterator]() {
      return it;
    },
    [Symbol.asyncDispose]: close,
  };
  return it;
}
