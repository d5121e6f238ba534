// How a connection hands the datagrams of its unreliable streams to the QUIC stack: at a set rate,
// the rest waiting in order. Both stacks drop datagrams handed to them faster than they send,
// silently (docs/TRANSPORT.md "Datagram bursts").

import { Gcra } from "../security/rate_limit.ts";

/** Most datagrams waiting for the rate; past it the oldest is shed. */
export const DATAGRAM_QUEUE = 4096;

const EMPTY: Uint8Array = new Uint8Array(0);
const RESOLVED: Promise<void> = Promise.resolve();
/** The one key of the pacer's GCRA. */
const KEY = "";

/** The counters a pacer keeps (a connection's `stats`). */
export interface PacerStats {
  /** Datagrams handed to the stack. */
  datagramsSent: number;
  /** Datagrams discarded before the stack: the oldest waiting, past DATAGRAM_QUEUE. */
  datagramsShed: number;
}

/**
 * Hands datagrams to `send` at `perSecond`, 5 ms of them at once (a GCRA, refilled by the clock,
 * so an event loop that ran late catches up at once), one millisecond's worth on a new connection
 * (a new connection's stack takes less at once); the rest wait in order, re-tried every
 * millisecond, and past DATAGRAM_QUEUE waiting the oldest is shed.
 */
export class DatagramPacer {
  readonly #gcra: Gcra;
  readonly #send: (d: Uint8Array) => Promise<void>;
  readonly #stats: PacerStats;
  #wait: Uint8Array[] = [];
  #head = 0;
  #tick: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * @param perSecond Datagrams per second (`maxDatagramsPerSecond`, >= 1).
   * @param send The stack's `sendDatagram`.
   * @param stats Where `datagramsSent` and `datagramsShed` are counted.
   */
  constructor(perSecond: number, send: (d: Uint8Array) => Promise<void>, stats: PacerStats) {
    const burst = Math.max(1, perSecond / 200);
    this.#gcra = new Gcra({ ratePerSecond: perSecond, burst, maxKeys: 1 });
    this.#gcra.reserve(KEY, burst - Math.min(burst, Math.max(1, perSecond / 1000)));
    this.#send = send;
    this.#stats = stats;
  }

  /**
   * Hands `d` to the stack now when the rate allows and nothing waits (resolving as the stack's
   * send does), else queues it (resolving at once: like any datagram, it may be lost).
   */
  send(d: Uint8Array): Promise<void> {
    const q = this.#wait;
    if (this.#head === q.length && this.#gcra.take(KEY) === 0) {
      this.#stats.datagramsSent++;
      return this.#send(d);
    }
    if (q.length - this.#head >= DATAGRAM_QUEUE) {
      q[this.#head++] = EMPTY; // the oldest: stale first
      this.#stats.datagramsShed++;
      if (this.#head > 1024 && this.#head * 2 > q.length) {
        q.splice(0, this.#head);
        this.#head = 0;
      }
    }
    q.push(d);
    this.#tick ??= setTimeout(this.#onTick, 1);
    return RESOLVED;
  }

  /** The connection is closing: what waits is dropped, and nothing more is sent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#tick);
    this.#tick = undefined;
    this.#wait = [];
    this.#head = 0;
  }

  readonly #onTick = (): void => {
    this.#tick = undefined;
    if (this.#closed) return;
    const q = this.#wait;
    while (this.#head < q.length && this.#gcra.take(KEY) === 0) {
      const d = q[this.#head];
      q[this.#head++] = EMPTY;
      this.#stats.datagramsSent++;
      this.#send(d).catch(() => {});
    }
    if (this.#head === q.length) {
      this.#wait = [];
      this.#head = 0;
    } else this.#tick = setTimeout(this.#onTick, 1);
  };
}
