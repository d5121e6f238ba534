/**
 * The receiving half of a time-synced stream: sender timestamps mapped onto this side's clock
 * through the connection's clock model, a jitter buffer (WASM) that schedules each frame's
 * playout at mapped timestamp + latency, and release at that time, in timestamp order, never
 * early. Payload bytes stay here; the jitter buffer sees sequence numbers and times only.
 *
 * @module
 */

import { logger } from "../observe/log.ts";
import { observeJitter } from "../observe/otel.ts";
import { ErrorCode, RpcError } from "../protocol/rpc_error.ts";
import { type SyncedClock, systemClock } from "../clock/sync.ts";
import { dueAfter, type JitterBuffer, jitterBufferMaker, type JitterStats, popSlots, zeroJitterStats } from "./jitter.ts";
import { Wakeup } from "./_playout.ts";
import { PayloadRing } from "./_payload_ring.ts";
// A stream's first frames, until its jitter buffer's own histogram takes over, take the
// connection's estimate as their floor.
import { MIN_SAMPLES as YOUNG_FRAMES } from "./_jitter_ts.ts";
import type { LatencyPrior } from "./latency_prior.ts";

/** `performance.timeOrigin`: the system clock is this plus `performance.now()`. */
const TIME_ORIGIN = performance.timeOrigin;

/** Options of `createStream(name).withTimeSync(options)`. They apply to both directions. */
export interface TimeSyncOptions {
  /** Fixed playout latency in ms (synchronised playout across receivers). @default {adaptive} */
  latencyMs?: number;
  /** Least adaptive latency. @default {0} */
  minLatencyMs?: number;
  /** Greatest adaptive latency. @default {1000} */
  maxLatencyMs?: number;
  /**
   * A frame arriving after its playout time: `"drop"` counts it as `late`; `"deliver"` hands it
   * over at once with `late: true`. @default {"drop"}
   */
  latePolicy?: "drop" | "deliver";
  /** Most frames held (buffered plus released but not yet taken); beyond it the oldest are dropped and counted. @default {4096} */
  maxFrames?: number;
  /** First sequence number this side sends (0 to 2^53 − 1). @default {0} */
  initialSeq?: number;
  /** How long `recvAligned()` waits for the first clock sample before failing. @default {5000} */
  syncTimeoutMs?: number;
}

/** One frame as `recvAligned()` releases it. */
export interface AlignedFrame {
  /**
   * The payload. On Bun a payload of up to 1 KiB waits in the receiver's own store and is copied
   * out for each frame, the taker's own (no view of a transport buffer is held for the playout
   * delay); otherwise it is the view the frame arrived in. Either way nothing else writes to it.
   */
  data: Uint8Array;
  /** The sender's sequence number. */
  seq: number;
  /** The sender's timestamp (ms, on the sender's clock). */
  timestamp: number;
  /** When it was due, on this side's clock: mapped timestamp + latency. */
  alignedTime: number;
  /**
   * When it arrived, on this side's clock (ms, the clock `alignedTime` is given in). Through the
   * clock model, `arrivedAt − (timestamp − offset)` is its transit and `alignedTime − arrivedAt`
   * the time it waited in the jitter buffer.
   */
  arrivedAt: number;
  /** Set when the frame arrived after `alignedTime` and `latePolicy` is `"deliver"`. */
  late?: boolean;
  /** How late (ms) such a frame was. */
  lateByMs?: number;
}

/** Counters and latencies of a stream (`stream.stats()`). */
export interface StreamStats extends JitterStats {
  /** Frames sent by this side. */
  sent: number;
  /** Frames dropped because `maxFrames` released frames were waiting to be taken. */
  readyDrops: number;
  /** Frames that arrived before the clock had its first sample (held, then scheduled). */
  heldForSync: number;
}

const DEFAULT_SYNC_TIMEOUT = 5000;
/** The estimate is handed to the buffer again once it moved by this much (ms): not on every frame. */
const FOLLOW_STEP_MS = 1;

/** Stats of a stream that is not time-synced: its counts, every jitter-buffer field 0. */
export function plainStreamStats(counts: Partial<StreamStats>): StreamStats {
  return { ...zeroJitterStats(), sent: 0, readyDrops: 0, heldForSync: 0, ...counts };
}

/** Validates time-sync options; throws RangeError naming the bad one. */
export function checkTimeSyncOptions(o: TimeSyncOptions): void {
  if (typeof o !== "object" || o === null) throw new RangeError("withTimeSync options must be an object");
  const num = (k: keyof TimeSyncOptions, min: number, max = Infinity) => {
    const v = o[k];
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && v >= min && v <= max)) {
      throw new RangeError(`withTimeSync: ${k} must be a finite number within ${min}..${max}, received ${String(v)}`);
    }
  };
  num("latencyMs", 0, 60_000);
  num("minLatencyMs", 0, 60_000);
  num("maxLatencyMs", 0, 60_000);
  num("maxFrames", 1, 1 << 20);
  num("initialSeq", 0, Number.MAX_SAFE_INTEGER);
  num("syncTimeoutMs", 0, 3_600_000);
  if (o.initialSeq !== undefined && !Number.isInteger(o.initialSeq)) throw new RangeError("withTimeSync: initialSeq must be an integer");
  if (o.latePolicy !== undefined && o.latePolicy !== "drop" && o.latePolicy !== "deliver") {
    throw new RangeError(`withTimeSync: latePolicy must be "drop" or "deliver", received ${String(o.latePolicy)}`);
  }
  if ((o.minLatencyMs ?? 0) > (o.maxLatencyMs ?? 1000)) throw new RangeError("withTimeSync: minLatencyMs must not exceed maxLatencyMs");
}

/** The options worth sending to the other side in OPEN (the rest are local). */
export function wireTimeSyncOptions(o: TimeSyncOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ["latencyMs", "minLatencyMs", "maxLatencyMs", "latePolicy", "maxFrames", "syncTimeoutMs"] as const) {
    if (o[k] !== undefined) out[k] = o[k];
  }
  return out;
}

/** `recv`/`forEach` on a side with clock sync disabled. */
function syncDisabled(): RpcError {
  return new RpcError(ErrorCode.FAILED_PRECONDITION, "time-synced streams need clock sync, which is disabled on this side (clockSync: false)");
}

/** `recv`/`forEach` when no clock sample came within `syncTimeoutMs`. */
function noSyncWithin(ms: number): RpcError {
  return new RpcError(ErrorCode.UNAVAILABLE, `no clock sync with the peer within ${ms} ms: cannot align frames`);
}

/** A `forEach` consumer and its promise. */
interface Sink {
  fn: (frame: AlignedFrame) => void;
  resolve: () => void;
  reject: (e: unknown) => void;
  /** The sync timeout, while the clock model has no sample. */
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** @internal The receiving side of one time-synced stream. */
export class TimeSyncReceiver {
  readonly #clock: SyncedClock;
  /**
   * The jitter buffer, made at the first frame (or the first `stats()`): a side that only sends on
   * a time-synced stream never holds one (about 2 KiB and a WASM allocation per stream).
   */
  #jbOrNone: JitterBuffer | undefined;
  readonly #makeJb: () => JitterBuffer;
  readonly #payloads = new PayloadRing();
  readonly #ready: AlignedFrame[] = [];
  #readyHead = 0;
  readonly #maxFrames: number;
  readonly #syncTimeoutMs: number;
  readonly #wakeup: Wakeup;
  /** Local-clock time the pending wake-up was armed for (Infinity: none pending). */
  #armedDue = Infinity;
  /** The clock is the system clock: local time − performance.now() is the constant time origin. */
  readonly #systemClock: boolean;
  #held: { seq: number; ts: number; data: Uint8Array; arrival: number }[] = [];
  #heldCount = 0;
  #readyDrops = 0;
  #ended = false;
  #failed: RpcError | undefined;
  #waiter: (() => void) | undefined;
  /**
   * The one `recv()` waiting on the fast path (clock synced, nothing ready, stream live): the
   * next release hands it the frame directly. Anything else that wakes it runs the full `recv`.
   */
  #direct: ((f: AlignedFrame | undefined | Promise<AlignedFrame | undefined>) => void) | undefined;
  /**
   * The consumer `forEach` hands each released frame to, in place of `recv()`: called from the
   * release itself, so a frame costs no promise and no resumed async function.
   */
  #sink: Sink | undefined;
  /** The clock model was seen synced (it stays so: the estimator never drops back to no model). */
  #syncedSeen = false;
  readonly #syncEnabled: boolean;
  #freed = false;
  #final: JitterStats | undefined;
  /** The connection's transit estimate: fed by every frame, and the buffer's floor while young. */
  readonly #prior: LatencyPrior | undefined;
  /**
   * Frames left during which the buffer's initial latency follows the connection's estimate (0:
   * no longer, or never: a fixed latency or no estimate). Until its own 50 frames a stream knows
   * its path less well than the connection does: at 1 frame/s that is 50 seconds.
   */
  #young: number;
  /** The initial latency last given to the jitter buffer (NaN: its default). */
  #initial: number;

  /**
   * @param prior The connection's transit estimate (one per connection, shared by its streams):
   *   an adaptive stream starts from it instead of the buffer's fixed initial latency, and feeds it.
   */
  constructor(clock: SyncedClock, options: TimeSyncOptions, syncEnabled: boolean, prior?: LatencyPrior) {
    this.#clock = clock;
    this.#systemClock = clock.local === systemClock;
    this.#syncEnabled = syncEnabled;
    this.#maxFrames = options.maxFrames ?? 4096;
    this.#syncTimeoutMs = options.syncTimeoutMs ?? DEFAULT_SYNC_TIMEOUT;
    this.#prior = prior;
    const adaptive = options.latencyMs === undefined;
    const initial = adaptive ? prior?.initialLatencyMs(clock.local()) : undefined;
    this.#young = prior && adaptive ? YOUNG_FRAMES : 0;
    this.#initial = initial ?? NaN;
    // The options are checked now; the buffer itself is made when it is first needed.
    this.#makeJb = jitterBufferMaker({
      latencyMs: options.latencyMs,
      minLatencyMs: options.minLatencyMs,
      maxLatencyMs: options.maxLatencyMs,
      latePolicy: options.latePolicy,
      maxFrames: options.maxFrames,
      initialLatencyMs: initial,
    });
    this.#wakeup = new Wakeup((t) => this.#release(t));
    if (!clock.synced) {
      // At the first clock sample: schedule what was held, and wake a recv() waiting for sync.
      clock.ready.then(() => {
        this.#flushHeld();
        this.#notify();
      });
    }
  }

  /** The jitter buffer, made now if it was not yet. */
  get #jb(): JitterBuffer {
    return (this.#jbOrNone ??= this.#makeJb());
  }

  /**
   * A time-stamped frame arrived at local time `arrival`.
   * @returns false when the frame was refused (invalid seq or timestamp), counted as `invalid`.
   */
  push(seq: number, ts: number, data: Uint8Array, arrival: number): void {
    if (this.#freed) return;
    if (this.#held.length === 0) {
      // The usual case, one clock-model lookup per frame: a NaN offset means no model yet.
      const offset = this.#clock.offsetAt(arrival);
      if (!Number.isNaN(offset)) return this.#add(seq, ts, data, arrival, offset);
    }
    if (!this.#clock.synced) {
      // No clock model yet: hold the frame (bounded) and schedule it at the first sample.
      if (this.#held.length >= this.#maxFrames) this.#held.shift();
      this.#held.push({ seq, ts, data, arrival });
      this.#heldCount++;
      return;
    }
    this.#add(seq, ts, data, arrival, this.#clock.offsetAt(arrival));
  }

  #add(seq: number, ts: number, data: Uint8Array, arrival: number, offset: number): void {
    if (this.#freed) return; // held frames flushed after the end: no buffer is made for them
    // Transit as the jitter buffer measures it: arrival − the timestamp mapped onto this clock.
    this.#prior?.observe(arrival - (ts - offset), arrival);
    if (this.#young > 0) this.#followPrior(arrival);
    let r;
    try {
      r = this.#jb.push(seq, ts, offset, arrival);
    } catch {
      return; // counted `invalid` by the buffer
    }
    const due = dueAfter(this.#jb); // read before any other call on the buffer
    if (r === "buffered" || r === "late-deliver" || r === "overflow") this.#payloads.set(seq, data, arrival);
    this.#arm(due);
  }

  /**
   * A young stream's floor follows the connection's estimate (a stream opened before the
   * connection knew its path, or whose path got slower meanwhile); the buffer is told only when
   * the estimate moved by a millisecond or more.
   */
  #followPrior(now: number): void {
    this.#young--;
    const init = this.#prior!.initialLatencyMs(now);
    if (init === undefined || Math.abs(init - this.#initial) < FOLLOW_STEP_MS) return;
    this.#initial = init;
    this.#jb.setInitialLatency(init);
  }

  #flushHeld(): void {
    const held = this.#held;
    this.#held = [];
    for (const h of held) this.#add(h.seq, h.ts, h.data, h.arrival, this.#clock.offsetAt(h.arrival));
  }

  /**
   * Releases everything due now into the ready queue, then re-arms the wake-up.
   * @param t The playout timer's `performance.now()` reading for this pass: on the system clock
   *   that is this side's time already (one clock reading for every stream released together).
   */
  #release(t: number): void {
    this.#armedDue = Infinity; // the wake-up fired (or was never needed)
    if (this.#freed) return;
    const now = this.#systemClock ? TIME_ORIGIN + t : this.#clock.local();
    let woke = false;
    let due: number;
    // The pop's result slots (seq, ts, alignedTime, deliver, late, lateByMs): no object per pop.
    // Each pop also leaves the next due time, so the loop stops without a final empty pop.
    do {
      const s = popSlots(this.#jb, now);
      due = dueAfter(this.#jb);
      if (!s) break;
      const seq = s[0];
      const p = this.#payloads.take(seq);
      if (s[3] !== 1 || !p) continue; // discarded: its payload is freed, nothing to hand over
      const frame: AlignedFrame = { data: p, seq, timestamp: s[1], alignedTime: s[2], arrivedAt: this.#payloads.arrival };
      if (s[4] === 1) {
        frame.late = true;
        frame.lateByMs = s[5];
      }
      if (this.#ready.length - this.#readyHead >= this.#maxFrames) {
        this.#readyHead++;
        this.#readyDrops++;
      }
      this.#ready.push(frame);
      woke = true;
    } while (due <= now);
    if (woke) this.#notify();
    this.#arm(due);
  }

  /** Schedules the wake-up for `due` (default: the buffer's next due time, asked for). */
  #arm(next?: number): void {
    if (this.#freed) return;
    const due = next ?? this.#jbOrNone?.nextDue() ?? Infinity;
    if (due === Infinity) {
      this.#wakeup.cancel();
      this.#armedDue = Infinity;
      if (this.#ended || this.#failed) this.#notify();
      return;
    }
    // A wake-up at or before `due` is pending: it releases what is due then and re-arms. (A
    // frame pushed behind the first waiting one, the usual case, leaves the playout timer alone.)
    if (due >= this.#armedDue) return;
    this.#armedDue = due;
    // Due on this side's clock → a performance.now() time (the playout timer fires what is past at once).
    this.#wakeup.at(
      this.#systemClock
        ? Math.max(0, due - TIME_ORIGIN)
        : performance.now() + Math.max(0, due - this.#clock.local()),
    );
  }

  #notify(): void {
    const sink = this.#sink;
    if (sink) {
      // In release order: the frames queued before the sink came, then the new ones.
      while (this.#sink === sink && this.#readyHead < this.#ready.length) this.#deliver(sink, this.#take());
      if (this.#sink === sink) this.#settleSink(sink);
    }
    const d = this.#direct;
    if (d) {
      this.#direct = undefined;
      d(this.#readyHead < this.#ready.length ? this.#take() : this.#recv());
    }
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** The sending side ended: `recv` returns undefined once everything buffered is released. */
  end(): void {
    this.#ended = true;
    this.#arm();
    this.#notify();
  }

  /**
   * The stream failed (connection lost, peer aborted): frames already buffered are still
   * released at their time; after them `recv` throws `err`.
   */
  fail(err: RpcError): void {
    this.#failed ??= err;
    this.#held = [];
    this.#arm();
    this.#notify();
  }

  /** Nothing more will arrive (end marker, or the stream failed) and nothing is left to release. */
  get #drained(): boolean {
    if (this.#freed) return true;
    return (this.#ended || this.#failed !== undefined) && (this.#jbOrNone?.nextDue() ?? Infinity) === Infinity && this.#held.length === 0;
  }

  /**
   * Hands every frame to `fn` as it is released, until the stream ends (resolves) or fails
   * (rejects, after the frames buffered before the failure); rejects with what `fn` throws (the
   * frames after it stay for `recv`). One reader at a time: not while a `recv()` waits.
   */
  forEach(fn: (frame: AlignedFrame) => void): Promise<void> {
    if (!this.#syncEnabled) {
      return Promise.reject(syncDisabled());
    }
    if (this.#sink || this.#direct || this.#waiter) {
      return Promise.reject(new RpcError(ErrorCode.FAILED_PRECONDITION, "this time-synced stream is already being read (recvAligned or forEachAligned)"));
    }
    return new Promise<void>((resolve, reject) => {
      const sink: Sink = { fn, resolve, reject, timer: undefined };
      this.#sink = sink;
      if (!this.#clock.synced) {
        const ms = this.#syncTimeoutMs;
        sink.timer = setTimeout(() => {
          if (this.#sink !== sink || this.#clock.synced) return;
          this.#sink = undefined;
          reject(noSyncWithin(ms));
        }, ms);
      }
      // What was released before, and an end that came already: handed over from a microtask,
      // never inside this call.
      queueMicrotask(() => {
        if (this.#sink === sink) this.#notify();
      });
    });
  }

  /** One frame to the sink; a throw detaches it and rejects its promise. */
  #deliver(sink: Sink, f: AlignedFrame): void {
    try {
      sink.fn(f);
    } catch (e) {
      if (this.#sink === sink) this.#sink = undefined;
      clearTimeout(sink.timer);
      sink.reject(e);
    }
  }

  /** Settles the sink's promise once nothing more can come (the end, or the failure after its frames). */
  #settleSink(sink: Sink): void {
    if (sink.timer !== undefined && this.#clock.synced) {
      clearTimeout(sink.timer);
      sink.timer = undefined;
    }
    if (!(this.#freed || this.#drained)) return;
    this.#sink = undefined;
    clearTimeout(sink.timer);
    this.free(); // the jitter buffer goes back to its pool now
    if (this.#failed) sink.reject(this.#failed);
    else sink.resolve();
  }

  /** The next aligned frame, or undefined once the stream ended and everything was released. */
  recv(): Promise<AlignedFrame | undefined> {
    if (this.#sink) {
      return Promise.reject(new RpcError(ErrorCode.FAILED_PRECONDITION, "this time-synced stream is read by forEachAligned: recvAligned cannot take frames too"));
    }
    // Fast path, once per frame: a live, synced stream with nothing ready waits for the next
    // release, which resolves this promise with the frame (no waiter chain, no loop).
    if (
      this.#direct === undefined && this.#waiter === undefined && this.#syncEnabled && !this.#freed &&
      !this.#ended && this.#failed === undefined && this.#readyHead >= this.#ready.length &&
      (this.#syncedSeen || (this.#syncedSeen = this.#clock.synced))
    ) {
      return new Promise((resolve) => (this.#direct = resolve));
    }
    return this.#recv();
  }

  async #recv(): Promise<AlignedFrame | undefined> {
    if (!this.#syncEnabled) {
      throw syncDisabled();
    }
    let deadline: number | undefined;
    while (this.#readyHead >= this.#ready.length) {
      // Frames that arrived before a failure are still released on time; then the error.
      if (this.#freed || this.#drained) {
        this.free(); // nothing more can come: the jitter buffer goes back to its pool now
        if (this.#failed) throw this.#failed;
        return undefined;
      }
      if (!this.#clock.synced) {
        deadline ??= performance.now() + this.#syncTimeoutMs;
        const left = deadline - performance.now();
        if (left <= 0) {
          throw noSyncWithin(this.#syncTimeoutMs);
        }
        await this.#wait(left);
        continue;
      }
      await this.#wait();
    }
    return this.#take();
  }

  /** The first ready frame (there is one). */
  #take(): AlignedFrame {
    const f = this.#ready[this.#readyHead];
    this.#ready[this.#readyHead++] = undefined as unknown as AlignedFrame;
    if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
      this.#ready.splice(0, this.#readyHead);
      this.#readyHead = 0;
    }
    return f;
  }

  #wait(timeoutMs?: number): Promise<void> {
    return new Promise((resolve) => {
      let t: ReturnType<typeof setTimeout> | undefined;
      const prev = this.#waiter;
      this.#waiter = () => {
        clearTimeout(t);
        prev?.();
        resolve();
      };
      if (timeoutMs !== undefined) t = setTimeout(() => this.#notify(), timeoutMs);
    });
  }

  stats(sent: number): StreamStats {
    return { ...(this.#final ?? this.#jbStats()), sent, readyDrops: this.#readyDrops, heldForSync: this.#heldCount };
  }

  /** The buffer's stats; after `free()` on a receiver that never made one, a fresh buffer's. */
  #jbStats(): JitterStats {
    if (!this.#freed) return this.#jb.stats();
    const jb = this.#makeJb();
    this.#final = jb.stats(); // kept, as a buffer's are at free()
    jb.free();
    return this.#final;
  }

  /** Releases the jitter buffer; pending frames are dropped. */
  free(): void {
    if (this.#freed) return;
    // A receiver that never made a buffer received nothing: no outcome to count.
    const jb = this.#jbOrNone;
    if (jb) {
      this.#final = jb.stats();
      observeJitter(this.#final);
      if (this.#final.discontinuities > 0) {
        logger("stream").info("time-synced stream ended after {discontinuities} jitter-buffer resets", { discontinuities: this.#final.discontinuities, late: this.#final.late, lost: this.#final.lost });
      }
    }
    this.#freed = true;
    this.#wakeup.cancel();
    this.#armedDue = Infinity;
    this.#payloads.clear();
    jb?.free();
    this.#notify();
  }
}
