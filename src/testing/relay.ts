/**
 * Network impairment test bed: a userspace UDP relay between one QUIC (or any UDP) client and a
 * server, adding per-direction delay, jitter (uniform or normal), loss, duplication and
 * reordering. Seeded and reproducible; it logs what it did to every packet (the ground truth
 * tests compare against) and its own scheduling error. Uses `node:dgram`, so it runs under Bun,
 * Deno and Node. Kernel `tc netem` is not needed.
 *
 * @example Put 20 ms ± 5 ms and 2% loss in front of a server
 * ```ts
 * import { startRelay } from "@echostream/core/testing";
 *
 * const relay = await startRelay({
 *   target: { host: "127.0.0.1", port: 4433 },
 *   seed: 1,
 *   toServer: { delayMs: 20, jitterMs: 5, loss: 0.02 },
 *   toClient: { delayMs: 20, jitterMs: 5, loss: 0.02 },
 * });
 * console.log(`connect to ${relay.address.host}:${relay.address.port}`);
 * await relay.close();
 * console.log(relay.stats());
 * ```
 *
 * @module
 */

import dgram from "node:dgram";
import { seededRandom } from "./random.ts";

/** What the relay does to the packets of one direction. Probabilities are in [0, 1]. */
export interface Impairment {
  /** Base one-way delay added, ms. @default {0} */
  delayMs?: number;
  /** Uniform: delay drawn from [delayMs − jitterMs, delayMs + jitterMs]; normal: std dev. @default {0} */
  jitterMs?: number;
  /** Distribution of the jitter: uniform over ±`jitterMs`, or normal with `jitterMs` as std dev. @default {"uniform"} */
  jitter?: "uniform" | "normal";
  /** Probability a packet is dropped. @default {0} */
  loss?: number;
  /** Probability a (kept) packet is sent twice, each copy with its own jitter. @default {0} */
  duplicate?: number;
  /** Probability a packet is held back an extra `reorderDelayMs`. @default {0} */
  reorder?: number;
  /** Extra delay, ms, of a packet held back by `reorder` (so later packets overtake it). @default {10} */
  reorderDelayMs?: number;
}

/** Options for {@link startRelay}. */
export interface RelayOptions {
  /** The server packets are forwarded to. */
  target: { host: string; port: number };
  /** Where clients connect. @default {{ host: "127.0.0.1", port: 0 }} */
  listen?: { host?: string; port?: number };
  /** PRNG seed; the same seed gives the same fates and delays per direction. @default {1} */
  seed?: number;
  /** Impairment of client → server packets; left out, they pass untouched. */
  toServer?: Impairment;
  /** Impairment of server → client packets; left out, they pass untouched. */
  toClient?: Impairment;
  /** Most records kept in the log (counters go on). @default {1000000} */
  maxPackets?: number;
}

/** Packet direction. */
export type Direction = "toServer" | "toClient";

/**
 * What happened to one packet. Times are `performance.now()` ms. Copy i (two when duplicated)
 * was due at `receivedAt + delayMs[i]` and sent at `sentAt[i]`.
 */
export interface PacketRecord {
  /** Per-direction sequence number from 0: the n-th packet of that direction. */
  seq: number;
  /** Which way the packet was going. */
  direction: Direction;
  /** UDP payload size, bytes. */
  bytes: number;
  /** When the relay received it (`performance.now()`, ms). */
  receivedAt: number;
  /** Whether it was sent once, dropped, or sent twice. */
  fate: "forwarded" | "dropped" | "duplicated";
  /** When the first copy was due. */
  scheduledAt?: number;
  /** When each copy was sent (filled in as they go). */
  sentAt?: number[];
  /** Delay drawn for each copy, ms (≥ 0, includes any reorder hold-back). */
  delayMs?: number[];
  /** The packet was held back by `reorderDelayMs`. */
  heldBack?: boolean;
}

/** Per-direction counters; `received = forwarded + dropped + duplicated`. */
export interface DirectionStats {
  /** Packets that arrived at the relay. */
  received: number;
  /** Packets sent on once. */
  forwarded: number;
  /** Packets dropped by `loss`. */
  dropped: number;
  /** Packets sent twice by `duplicate`. */
  duplicated: number;
  /** Packets held back by the reorder impairment. */
  reordered: number;
  /** Datagrams actually sent so far (duplicates count twice). */
  sent: number;
}

/** What {@link Relay.stats} returns. */
export interface RelayStats {
  /** Client → server counters. */
  toServer: DirectionStats;
  /** Server → client counters. */
  toClient: DirectionStats;
  /** sentAt − due time over the logged copies sent, ms. */
  schedulingErrorMs: { count: number; p50: number; p99: number; max: number };
}

/** A running relay. */
export interface Relay {
  /** Where clients send (the bound address). */
  readonly address: { host: string; port: number };
  /** What happened to each packet, in receipt order per direction, at most `maxPackets`. */
  readonly log: readonly PacketRecord[];
  /** Counters per direction and the relay's own scheduling error, now. */
  stats(): RelayStats;
  /** Replaces one direction's impairment from the next packet on. */
  setImpairment(direction: Direction, impairment: Impairment): void;
  /** Closes both sockets and cancels pending sends. */
  close(): Promise<void>;
}


function check(imp: Impairment): Required<Impairment> {
  const out = {
    delayMs: imp.delayMs ?? 0,
    jitterMs: imp.jitterMs ?? 0,
    jitter: imp.jitter ?? "uniform",
    loss: imp.loss ?? 0,
    duplicate: imp.duplicate ?? 0,
    reorder: imp.reorder ?? 0,
    reorderDelayMs: imp.reorderDelayMs ?? 10,
  } as const;
  for (const k of ["delayMs", "jitterMs", "reorderDelayMs"] as const) {
    if (!(out[k] >= 0 && out[k] < 3_600_000)) throw new RangeError(`${k} must be in [0, 3600000): ${out[k]}`);
  }
  for (const k of ["loss", "duplicate", "reorder"] as const) {
    if (!(out[k] >= 0 && out[k] <= 1)) throw new RangeError(`${k} must be in [0, 1]: ${out[k]}`);
  }
  if (out.jitter !== "uniform" && out.jitter !== "normal") throw new RangeError(`bad jitter: ${out.jitter}`);
  return out;
}

const quantile = (sorted: number[], q: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0;

/**
 * Starts a relay: clients send to `relay.address`; packets go on to `target` from a second
 * socket, and the server's replies go back to the last client address seen.
 *
 * Each packet draws exactly seven numbers from its direction's PRNG (seeded from `seed`), so
 * the n-th packet of a direction gets the same fate and delays for the same seed and settings,
 * whatever the other direction does.
 *
 * @example
 * ```ts
 * import { startRelay } from "@echostream/core/testing";
 * const relay = await startRelay({ target: { host: "127.0.0.1", port: 9 }, toServer: { loss: 0.1 } });
 * await relay.close();
 * ```
 */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const seed = options.seed ?? 1;
  const maxPackets = options.maxPackets ?? 1_000_000;
  const imp = { toServer: check(options.toServer ?? {}), toClient: check(options.toClient ?? {}) };
  const rng = { toServer: seededRandom(seed ^ 0x5eed0001), toClient: seededRandom(seed ^ 0x5eed0002) };
  const seqs = { toServer: 0, toClient: 0 };
  const zero = (): DirectionStats => ({ received: 0, forwarded: 0, dropped: 0, duplicated: 0, reordered: 0, sent: 0 });
  const counts = { toServer: zero(), toClient: zero() };
  const log: PacketRecord[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let client: { address: string; port: number } | undefined;
  let closed = false;

  const type = (h: string) => (h.includes(":") ? "udp6" : "udp4");
  const listenHost = options.listen?.host ?? "127.0.0.1";
  const front = dgram.createSocket(type(listenHost));
  const back = dgram.createSocket(type(options.target.host));
  const bind = (s: dgram.Socket, port: number, host: string) =>
    new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.bind(port, host, () => {
        s.off("error", reject);
        s.on("error", () => {}); // ICMP unreachable and the like: UDP is lossy anyway.
        resolve();
      });
    });
  await bind(front, options.listen?.port ?? 0, listenHost);
  await bind(back, 0, type(options.target.host) === "udp6" ? "::1" : "127.0.0.1").catch(async (e) => {
    await new Promise<void>((r) => front.close(() => r()));
    throw e;
  });

  const jitter = (i: Required<Impairment>, u1: number, u2: number) =>
    i.jitter === "normal"
      ? i.jitterMs * Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2)
      : i.jitterMs * (2 * u1 - 1);

  function handle(dir: Direction, data: Uint8Array, send: (d: Uint8Array) => void): void {
    const receivedAt = performance.now();
    const i = imp[dir];
    const r = rng[dir];
    const u = [r(), r(), r(), r(), r(), r(), r()]; // loss, dup, reorder, jitter ×2 per copy
    const c = counts[dir];
    c.received++;
    const rec: PacketRecord = { seq: seqs[dir]++, direction: dir, bytes: data.length, receivedAt, fate: "forwarded" };
    if (log.length < maxPackets) log.push(rec);
    if (u[0] < i.loss) {
      rec.fate = "dropped";
      c.dropped++;
      return;
    }
    const copies = u[1] < i.duplicate ? 2 : 1;
    if (copies === 2) rec.fate = "duplicated";
    c[copies === 2 ? "duplicated" : "forwarded"]++;
    const hold = u[2] < i.reorder ? i.reorderDelayMs : 0;
    if (hold) {
      rec.heldBack = true;
      c.reordered++;
    }
    rec.delayMs = [];
    rec.sentAt = [];
    const copy = Uint8Array.from(data); // the socket may reuse its buffer
    for (let k = 0; k < copies; k++) {
      const d = Math.max(0, i.delayMs + jitter(i, u[3 + 2 * k], u[4 + 2 * k]) + hold);
      rec.delayMs.push(d);
      const t = setTimeout(() => {
        timers.delete(t);
        if (closed) return;
        rec.sentAt!.push(performance.now());
        c.sent++;
        send(copy);
      }, d);
      timers.add(t);
    }
    rec.scheduledAt = receivedAt + rec.delayMs[0];
  }

  const { host, port } = options.target;
  front.on("message", (msg, rinfo) => {
    client = { address: rinfo.address, port: rinfo.port };
    handle("toServer", msg, (d) => back.send(d, port, host, () => {}));
  });
  back.on("message", (msg, rinfo) => {
    if (rinfo.port !== port || !client) return; // only the target's replies, once a client spoke
    const to = client;
    handle("toClient", msg, (d) => front.send(d, to.port, to.address, () => {}));
  });

  const addr = front.address();
  return {
    address: { host: addr.address, port: addr.port },
    log,
    stats(): RelayStats {
      const errs: number[] = [];
      for (const rec of log) {
        rec.sentAt?.forEach((s, k) => errs.push(s - (rec.receivedAt + rec.delayMs![k])));
      }
      errs.sort((a, b) => a - b);
      return {
        toServer: { ...counts.toServer },
        toClient: { ...counts.toClient },
        schedulingErrorMs: {
          count: errs.length,
          p50: quantile(errs, 0.5),
          p99: quantile(errs, 0.99),
          max: errs.at(-1) ?? 0,
        },
      };
    },
    setImpairment(direction: Direction, impairment: Impairment): void {
      if (direction !== "toServer" && direction !== "toClient") throw new RangeError(`bad direction: ${direction}`);
      imp[direction] = check(impairment);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all([front, back].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
