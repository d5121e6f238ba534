/**
 * The clock-synchronisation protocol of one connection (issue 6 §1) and the synchronised clock
 * users see as `client.clock` (and `ctx.peer.clock` on a server).
 *
 * Each side sends PING{seq, t1} and answers the other side's PINGs with PONG{seq, t1, t2, t3}:
 * on QUIC datagrams when both ends have them, else on the control stream. t2 (and t4) are taken
 * first thing on receipt, t3 just before the PONG is sent. A PONG that matches no outstanding
 * PING (wrong seq, or a t1 that is not the one sent) is dropped and counted `unmatchedPongs`; a
 * second PONG for the same PING is counted `duplicatePongs`. Schedule: a startup burst of 8
 * PINGs 50 ms apart, then one every `intervalMs` (default 250 ms, 4 Hz; 50 ms to 10 s).
 *
 * Every accepted sample feeds a {@link ClockEstimator} (NTP clock filter, then a least-squares
 * fit of offset and skew; see `estimator.ts`). The clock keeps no state tied to one QUIC
 * connection: a reconnecting client attaches the same clock to its new connection.
 *
 * **Reference.** The server's clock is the reference: `client.clock.now()` is server time.
 * In general a `SyncedClock` estimates the clock of the *other* side of the connection, so a
 * server's `ctx.peer.clock.offsetMs` is that client's clock minus the server's.
 *
 * **Accuracy.** Any two-way method assumes equal one-way delays: a path whose one-way delays
 * differ by A biases the offset by A/2, and nothing on the wire can reveal it. `uncertaintyMs`
 * includes half the least round-trip delay for that reason (the worst case of any asymmetry),
 * and is never less than the fit's distance from the lowest-delay exchange plus that half, which
 * still holds when the asymmetry varies from exchange to exchange.
 *
 * @module
 */

import { logger } from "../observe/log.ts";
import type { FrameCodec } from "../protocol/codec.ts";
import { FrameType, type PingFrame, type PongFrame } from "../protocol/frame.ts";
import { type ClockEstimator, createClockEstimator } from "./estimator.ts";

/** A clock source: milliseconds on the Unix epoch, monotonic (never steps backwards on its own). */
export type ClockSource = () => number;

/** `performance.timeOrigin`, fixed for the life of the process (read once: the clock is per frame). */
const TIME_ORIGIN = performance.timeOrigin;

/** The default clock source: `performance.timeOrigin + performance.now()` (monotonic, sub-ms). */
export const systemClock: ClockSource = (): number => TIME_ORIGIN + performance.now();

/** How the clock-sync exchange runs. */
export interface ClockSyncOptions {
  /** Steady-state PING interval in ms, 50 to 10,000. @default {250} */
  intervalMs?: number;
  /** PINGs in the startup burst (50 ms apart). @default {8} */
  burst?: number;
  /** Clock precision ρ in ms (the least delay, and part of the error bound). @default {0.001} */
  precisionMs?: number;
  /** Estimator implementation. @default {"wasm"} */
  impl?: "wasm" | "ts";
  /**
   * `"auto"`: datagrams when both ends have them, else the control stream; `"stream"`: always
   * the control stream (for paths that drop datagrams). @default {"auto"}
   */
  transport?: "auto" | "stream";
}

/** Where PING/PONG travel. */
export type ClockTransport = "datagram" | "stream" | "none";

/** Everything a {@link SyncedClock} knows, at one instant. */
export interface ClockStats {
  /** Whether at least one valid sample has arrived. */
  synced: boolean;
  /** Other side's clock − this side's (ms) now; NaN before the first sample. */
  offsetMs: number;
  /** Error bound of `offsetMs` (ms); Infinity before the first sample. */
  uncertaintyMs: number;
  /** Skew of the other side's clock relative to this one (ppm; 0 until 8 samples). */
  skewPpm: number;
  /** Delay (round trip minus the other side's hold time) of the last sample (ms). */
  rttMs: number;
  /** Least delay among the samples in the model (ms). */
  minRttMs: number;
  /** Sample jitter (ms). */
  jitterMs: number;
  /** Valid samples. */
  samples: number;
  /** Samples the model uses. */
  accepted: number;
  /** Spikes and delay outliers dropped. */
  rejected: number;
  /** Samples refused as invalid (non-finite times, negative delay). */
  invalid: number;
  /** Clock steps detected. */
  steps: number;
  /** Samples in the regression window. */
  windowSize: number;
  /** PINGs sent. */
  pingsSent: number;
  /** PONGs that matched an outstanding PING. */
  pongsReceived: number;
  /** PONGs for no outstanding PING (unknown seq, or a t1 that was not sent). */
  unmatchedPongs: number;
  /** Second and later PONGs for the same PING. */
  duplicatePongs: number;
  /** PINGs this side answered. */
  pingsAnswered: number;
  /** PINGs sent and not answered yet (at most 16: older ones are forgotten). */
  outstandingPings: number;
  /** Where PING/PONG travel now. */
  transport: ClockTransport;
  /** PING interval in ms (steady state). */
  intervalMs: number;
}

/** Detail of a `clockstep` event. */
export interface ClockStepDetail {
  /** Offset before the step (ms). */
  fromMs: number;
  /** Offset after the step (ms). */
  toMs: number;
  /** Local time the step was detected. */
  at: number;
}

/**
 * Validates clock-sync options.
 * @throws RangeError naming the bad option.
 */
export function checkClockSyncOptions(options: ClockSyncOptions): { intervalMs: number; burst: number } {
  if (typeof options !== "object" || options === null) throw new RangeError("clock sync options must be an object or false");
  const intervalMs = options.intervalMs ?? 250;
  if (!(Number.isFinite(intervalMs) && intervalMs >= 50 && intervalMs <= 10_000)) {
    throw new RangeError(`clock sync intervalMs must be within 50..10000, received ${intervalMs}`);
  }
  if (options.transport !== undefined && options.transport !== "auto" && options.transport !== "stream") {
    throw new RangeError(`clock sync transport must be "auto" or "stream", received ${String(options.transport)}`);
  }
  const burst = options.burst ?? 8;
  if (!(Number.isInteger(burst) && burst >= 1 && burst <= 64)) throw new RangeError(`clock sync burst must be an integer within 1..64, received ${burst}`);
  if (options.impl !== undefined && options.impl !== "wasm" && options.impl !== "ts") throw new RangeError(`clock sync impl must be "wasm" or "ts", received ${String(options.impl)}`);
  const p = options.precisionMs;
  if (p !== undefined && !(Number.isFinite(p) && p > 0)) throw new RangeError(`clock sync precisionMs must be finite and > 0, received ${p}`);
  return { intervalMs, burst };
}

/**
 * What an estimator knew at local time `at`, frozen: a constant model that outlives the
 * estimator it was read from (so a closed connection's clock stays readable).
 */
function frozen(e: ClockEstimator, at: number): ClockEstimator {
  const offset = e.offset(at), skew = e.skewPpm(), uncertainty = e.uncertainty(at);
  const { rttMs, minDelayMs, jitterMs, samples, accepted, rejected, invalid, steps, windowSize } = e;
  return {
    add: () => {
      throw new Error("clock estimator has been freed");
    },
    offset: () => offset,
    skewPpm: () => skew,
    uncertainty: () => uncertainty,
    rttMs,
    minDelayMs,
    jitterMs,
    samples,
    accepted,
    rejected,
    invalid,
    steps,
    windowSize,
    reset: () => {},
    free: () => {},
  };
}

/** @internal One way to carry PING/PONG: a datagram sender or the control stream. */
export interface ClockChannel {
  transport: "datagram" | "stream";
  /** Sends one encoded PING or PONG frame; failures are swallowed by the caller. */
  send(frame: Uint8Array): Promise<void> | void;
}

const OUTSTANDING = 16;
/**
 * A PING on the control stream this often, whatever else runs: Bun's QUIC closes a connection
 * that carried no stream data for 60 s ("lack of progress"), even while datagrams and QUIC
 * keep-alives flow. Its PONG is a clock sample like any other.
 */
export const KEEPALIVE_MS = 20_000;

/** A WASM estimator, or the bit-identical TS one when the WASM pool is exhausted. */
function estimator(options: ClockSyncOptions): ClockEstimator {
  const impl = options.impl ?? "wasm";
  try {
    return createClockEstimator({ impl, precisionMs: options.precisionMs });
  } catch (e) {
    if (impl === "wasm" && e instanceof RangeError && /pool/.test(e.message)) {
      return createClockEstimator({ impl: "ts", precisionMs: options.precisionMs });
    }
    throw e;
  }
}
const BURST_GAP_MS = 50;
/** A PING this late past its time is sent from the receive path (see SyncedClock.#catchUp). */
const OVERDUE_MS = 100;

/**
 * The other side's clock, as estimated from PING/PONG exchanges. Dispatches a `clockstep`
 * event (a `CustomEvent<ClockStepDetail>`) when the other clock jumps.
 *
 * @example Reading the server's time on a client
 * ```ts
 * import { readFile } from "node:fs/promises";
 * import { type ClockStepDetail, RpcClient } from "@echostream/core";
 *
 * const client = await RpcClient.connect("127.0.0.1:5000", { ca: await readFile("ca.pem", "utf8") });
 * await client.clock.ready; // first sample (a round trip after connecting)
 * console.log(client.clock.now(), client.clock.offsetMs, client.clock.uncertaintyMs);
 * client.clock.addEventListener("clockstep", (e) => console.log((e as CustomEvent<ClockStepDetail>).detail));
 * ```
 */
export class SyncedClock extends EventTarget {
  /** This side's clock source. */
  readonly local: ClockSource;
  #est: ClockEstimator;
  readonly #frames: FrameCodec;
  readonly #intervalMs: number;
  readonly #burst: number;
  #channel: ClockChannel | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the next PING is due (performance.now()); Infinity when none is scheduled. */
  #dueAt = Infinity;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  #seq = 0;
  #sentInBurst = 0;
  readonly #outstanding = new Map<number, number>(); // seq → t1
  readonly #answered: number[] = []; // recently answered seqs (duplicate detection)
  #readyResolve!: () => void;
  #freed = false;
  /** Settles at the first valid sample. */
  readonly ready: Promise<void>;
  #pingsSent = 0;
  #pongs = 0;
  #unmatched = 0;
  #duplicates = 0;
  #answeredPings = 0;

  /** @internal Made by the RPC layer, one per connection (kept across a client's reconnects). */
  constructor(local: ClockSource, frames: FrameCodec, options: ClockSyncOptions = {}) {
    super();
    if (typeof local !== "function") throw new TypeError("clock must be a function returning ms");
    const { intervalMs, burst } = checkClockSyncOptions(options);
    this.local = local;
    this.#frames = frames;
    this.#intervalMs = intervalMs;
    this.#burst = burst;
    this.#est = estimator(options);
    this.ready = new Promise((r) => (this.#readyResolve = r));
  }

  /** The other side's clock now (for a client: the server's, the reference), in ms. */
  now(): number {
    const t = this.local();
    const o = this.#est.offset(t);
    return Number.isNaN(o) ? t : t + o;
  }

  /** Other side's clock − this side's clock (ms), now; NaN before the first sample. */
  get offsetMs(): number {
    return this.#est.offset(this.local());
  }

  /** Round-trip delay of the last exchange (ms); NaN before one. */
  get rttMs(): number {
    return this.#est.rttMs;
  }

  /** A bound the true offset error stays within (ms); Infinity before the first sample. */
  get uncertaintyMs(): number {
    return this.#est.uncertainty(this.local());
  }

  /** Skew of the other side's clock relative to this one, in ppm. */
  get skewPpm(): number {
    return this.#est.skewPpm();
  }

  /** Whether at least one valid sample has arrived. */
  get synced(): boolean {
    return this.#est.samples > 0 && !Number.isNaN(this.#est.offset(this.local()));
  }

  /**
   * Maps a time on the other side's clock to this side's clock (one fixed-point step, enough
   * for skews up to thousands of ppm). NaN before the first sample.
   */
  toLocal(remoteMs: number): number {
    const guess = remoteMs - this.#est.offset(this.local());
    return remoteMs - this.#est.offset(guess);
  }

  /** Maps a time on this side's clock to the other side's. NaN before the first sample. */
  toRemote(localMs: number): number {
    return localMs + this.#est.offset(localMs);
  }

  /** @internal Offset (other − this) at local time `at`. */
  offsetAt(at: number): number {
    return this.#est.offset(at);
  }

  /** A snapshot of everything the clock knows. */
  stats(): ClockStats {
    const t = this.local();
    const e = this.#est;
    return {
      synced: this.synced,
      offsetMs: e.offset(t),
      uncertaintyMs: e.uncertainty(t),
      skewPpm: e.skewPpm(),
      rttMs: e.rttMs,
      minRttMs: e.minDelayMs,
      jitterMs: e.jitterMs,
      samples: e.samples,
      accepted: e.accepted,
      rejected: e.rejected,
      invalid: e.invalid,
      steps: e.steps,
      windowSize: e.windowSize,
      pingsSent: this.#pingsSent,
      pongsReceived: this.#pongs,
      unmatchedPongs: this.#unmatched,
      duplicatePongs: this.#duplicates,
      pingsAnswered: this.#answeredPings,
      outstandingPings: this.#outstanding.size,
      transport: this.#channel?.transport ?? "none",
      intervalMs: this.#intervalMs,
    };
  }

  /** @internal Starts pinging over `channel` (a startup burst, then the steady interval). */
  attach(channel: ClockChannel): void {
    clearTimeout(this.#timer); // the keep-alive, if any, stays
    if (this.#freed) return;
    this.#channel = channel;
    this.#outstanding.clear();
    this.#sentInBurst = 0;
    this.#tick(); // the first PING now, not from a timer (see #catchUp)
  }

  /**
   * @internal Sends a PING on `control` every {@link KEEPALIVE_MS} until `detach()`, also when
   * clock sync is off (see KEEPALIVE_MS).
   */
  keepAlive(control: ClockChannel): void {
    clearInterval(this.#keepAlive);
    this.#keepAlive = setInterval(() => this.#ping(control), KEEPALIVE_MS);
  }

  /** @internal Stops pinging (the connection ended); samples and counters stay. */
  detach(): void {
    clearTimeout(this.#timer);
    clearInterval(this.#keepAlive);
    this.#timer = undefined;
    this.#dueAt = Infinity;
    this.#keepAlive = undefined;
    this.#channel = undefined;
  }

  /** @internal Stops for good and releases the estimator; what it knew stays readable (frozen). */
  free(): void {
    if (this.#freed) return;
    this.detach();
    const last = frozen(this.#est, this.local());
    this.#est.free();
    this.#est = last;
    this.#freed = true;
  }

  /** Sends the due PING and schedules the next (burst gap, then the steady interval). */
  #tick(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#dueAt = Infinity;
    if (!this.#channel) return;
    this.#ping();
    const delay = ++this.#sentInBurst < this.#burst ? BURST_GAP_MS : this.#intervalMs;
    this.#dueAt = performance.now() + delay;
    this.#timer = setTimeout(() => this.#tick(), delay);
  }

  /**
   * Sends a PING whose timer is overdue. Measured on Bun: while a UDP socket has a receive
   * backlog, timers fire seconds late (a 10 ms interval ran 10–20 times in 3 s) although I/O
   * callbacks keep running, so a busy server's clocks sent 0–3 PINGs in 5 s and time-synced
   * streams failed for want of a sample. Called on every PING and PONG received: traffic from
   * the other side (which pings too) keeps this side's schedule going when timers do not.
   */
  #catchUp(): void {
    if (performance.now() - this.#dueAt > OVERDUE_MS) this.#tick();
  }

  #ping(channel?: ClockChannel): void {
    const ch = channel ?? this.#channel;
    if (!ch || this.#freed) return;
    const seq = this.#seq++;
    if (this.#outstanding.size >= OUTSTANDING) {
      // Unanswered PINGs age out oldest first: memory stays bounded when the other side is mute.
      this.#outstanding.delete(this.#outstanding.keys().next().value as number);
    }
    let t1: number;
    let frame: Uint8Array;
    try {
      t1 = this.local();
      if (!Number.isFinite(t1)) return;
      frame = this.#frames.encode({ type: FrameType.PING, flags: 0, seq, t1 } as PingFrame);
    } catch {
      return;
    }
    this.#outstanding.set(seq, t1);
    this.#pingsSent++;
    try {
      const r = ch.send(frame);
      if (r) r.catch(() => {});
    } catch { /* the connection is going away */ }
  }

  /**
   * @internal Answers the other side's PING. `t2` is the local time taken when it arrived.
   * @returns The encoded PONG (t3 taken just before encoding), or undefined for a bad PING.
   */
  answer(ping: PingFrame, t2: number, send: (frame: Uint8Array) => Promise<void> | void): void {
    if (!Number.isFinite(ping.t1)) return;
    const t3 = this.local();
    let frame: Uint8Array;
    try {
      frame = this.#frames.encode({ type: FrameType.PONG, flags: 0, seq: ping.seq, t1: ping.t1, t2, t3 } as PongFrame);
    } catch {
      return;
    }
    this.#answeredPings++;
    try {
      const r = send(frame);
      if (r) r.catch(() => {});
    } catch { /* gone */ }
    this.#catchUp();
  }

  /** @internal A PONG arrived; `t4` is the local time taken when it arrived. */
  receive(pong: PongFrame, t4: number): void {
    if (this.#freed) return;
    this.#catchUp(); // t4 was taken on arrival: sending first delays nothing measured
    const t1 = this.#outstanding.get(pong.seq);
    if (t1 === undefined || !Object.is(t1, pong.t1)) {
      if (this.#answered.includes(pong.seq)) this.#duplicates++;
      else this.#unmatched++;
      return;
    }
    this.#outstanding.delete(pong.seq);
    this.#answered.push(pong.seq);
    if (this.#answered.length > OUTSTANDING) this.#answered.shift();
    this.#pongs++;
    const before = this.#est.offset(t4);
    let r;
    try {
      r = this.#est.add(t1, pong.t2, pong.t3, t4);
    } catch {
      return; // counted `invalid` by the estimator
    }
    if (!Number.isNaN(this.#est.offset(t4))) this.#readyResolve();
    if (r === "step") {
      const detail: ClockStepDetail = { fromMs: before, toMs: this.#est.offset(t4), at: t4 };
      logger("clock").info("clock step: offset {fromMs} ms -> {toMs} ms", { ...detail });
      this.dispatchEvent(new CustomEvent("clockstep", { detail }));
    }
  }
}
