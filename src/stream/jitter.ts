/**
 * Jitter buffer for time-synced streams: releases each frame at
 * `alignedTime = (ts − offsetMs) + latency` on the local clock, in playout order, never early.
 * Pure bookkeeping: the caller passes every time (ms) and keeps the payloads; the buffer tracks
 * seq and timestamps only.
 *
 * - Latency: fixed (`latencyMs`) or adaptive: the `quantile` (0.99) of transit (arrival − mapped
 *   ts) from a histogram with 1 ms buckets that forgets (weight 0.997 per sample, ≈ 6.7 s at
 *   50 fps), plus `marginMs`, clamped to [`minLatencyMs`, `maxLatencyMs`]; at least
 *   `initialLatencyMs` (which `setInitialLatency` may change) until 50 frames have arrived.
 *   Rises at once; falls towards its target at (D − target) / 2 s per second, between 5 and
 *   50 ms per second, so output spacing shrinks by at most 5%. Lost frames never raise it; late
 *   ones do. The first frame (after creation or `reset`) is measured before it is judged, so an
 *   adaptive latency has risen to cover it: it starts the timeline and is never late.
 * - Frames arriving after their playout time (or behind an already released seq: `belated`)
 *   are dropped and counted (`latePolicy: "drop"`) or returned at once with `late: true`.
 * - Lost = seqs skipped when a later frame was released and that never arrived; a skipped frame
 *   that turns up late is counted late, not lost. Duplicates are recognised over the last 4096
 *   seqs. Seqs are integers up to 2^53 − 1.
 * - A sender timestamp jump (3 agreeing frames in a row over ≥ 50 ms, each due over 1 s before its
 *   arrival or over maxLatency + 1 s after it) flushes the buffer and rebases the stream (`discontinuities`);
 *   once frames fit the clock model again for as long, the rebase is undone.
 * - At most `maxFrames` frames wait; beyond that the oldest is evicted (`overflowDrops`).
 *
 * Every frame `push` accepts leaves `pop` exactly once: `deliver: false` marks one discarded
 * (evicted, flushed or reset), so the caller can free its payload.
 *
 * The default implementation runs in the WASM core (`wasm/src/jitter.rs`): with the default
 * options a buffer holds 1.7 KiB until its first frame, then its histogram as well: one f64 per
 * ms up to the largest transit seen (from 32 buckets, doubling as the path needs, at most
 * `maxLatencyMs`: 8 KiB at the default; at most 1536 buckets, wider ones beyond 1535 ms), plus the
 * frames waiting; buffers live in a growable pool with a free list.
 * `impl: "ts"` selects the plain-TS reference (`_jitter_ts.ts`), which gives bit-identical
 * results.
 *
 * @example Receive loop
 * ```ts
 * import { createJitterBuffer } from "./jitter.ts";
 * const jb = createJitterBuffer({ maxLatencyMs: 500 });
 * const payloads = new Map<number, Uint8Array>();
 * const now = () => performance.timeOrigin + performance.now();
 * function onFrame(seq: number, ts: number, data: Uint8Array, offsetMs: number) {
 *   const r = jb.push(seq, ts, offsetMs, now());
 *   if (r === "buffered" || r === "late-deliver" || r === "overflow") payloads.set(seq, data);
 * }
 * setInterval(() => {
 *   for (let f = jb.pop(now()); f; f = jb.pop(now())) {
 *     const data = payloads.get(f.seq);
 *     payloads.delete(f.seq);
 *     if (f.deliver && data) console.log("play", f.seq, "at", f.alignedTime, data.length);
 *   }
 * }, 5);
 * ```
 *
 * @module
 */

import { type JitterCore, jitterCore } from "../../wasm/mod.ts";
import { MAX_SEQ, PUSH_INVALID, type RawJitterOptions, STAT_KEYS, STATS_LEN, TsJitterBuffer } from "./_jitter_ts.ts";

/**
 * Options of {@link createJitterBuffer}.
 *
 * @example Fixed latency for synchronised playout on several receivers
 * ```ts
 * const options: JitterBufferOptions = { latencyMs: 120, latePolicy: "deliver" };
 * ```
 */
export interface JitterBufferOptions {
  /** `"wasm"` or the plain-TS reference `"ts"`. @default "wasm" */
  impl?: "wasm" | "ts";
  /** Fixed playout latency D (ms); when set there is no adaptation. @default undefined (adaptive) */
  latencyMs?: number;
  /** Least adaptive latency (ms). @default 0 */
  minLatencyMs?: number;
  /** Greatest adaptive latency (ms). @default 1000 */
  maxLatencyMs?: number;
  /** What happens to a frame arriving after its playout time. @default "drop" */
  latePolicy?: "drop" | "deliver";
  /** Most frames waiting (an integer in [1, 2^20]); beyond it the oldest is evicted. @default 4096 */
  maxFrames?: number;
  /** Adaptive latency until 50 frames have arrived (ms), clamped to [min, max]. @default 80 */
  initialLatencyMs?: number;
  /** Added to the transit quantile (ms). @default 2 */
  marginMs?: number;
  /** Transit quantile the adaptive latency covers, in (0, 1]. @default 0.99 */
  quantile?: number;
}

/**
 * What `push` did with a frame: held (`"buffered"`), dropped as already seen (`"duplicate"`) or
 * as late (`"late"`), held for immediate delivery with `late: true` (`"late-deliver"`), or held
 * while the oldest waiting frame was evicted (`"overflow"`).
 *
 * @example
 * ```ts
 * const jb = createJitterBuffer({ latencyMs: 100 });
 * const r: JitterPushResult = jb.push(0, 5_000, 4_000, 1_020); // seq 0, sent at 5000 ms on a clock 4000 ms ahead
 * const keep = r === "buffered" || r === "late-deliver" || r === "overflow"; // else free the payload now
 * console.log(r, keep); // "buffered" true
 * jb.free();
 * ```
 */
export type JitterPushResult = "buffered" | "duplicate" | "late" | "late-deliver" | "overflow";

/**
 * A frame leaving the buffer.
 *
 * @example
 * ```ts
 * const payloads = new Map<number, Uint8Array>([[0, new Uint8Array(160)]]);
 * const jb = createJitterBuffer({ latencyMs: 100 });
 * jb.push(0, 1_000, 0, 1_020);
 * const f: JitterFrame | undefined = jb.pop(1_100);
 * if (f && !f.deliver) payloads.delete(f.seq); // discarded: evicted, flushed or reset
 * jb.free();
 * ```
 */
export interface JitterFrame {
  /** The frame's sequence number. */
  seq: number;
  /** The sender's timestamp (ms, sender clock). */
  ts: number;
  /** Playout time on the local clock (ms); never after the `now` it was popped at. */
  alignedTime: number;
  /** false: discarded, not to be played; free its payload. */
  deliver: boolean;
  /** true for a late frame delivered under `latePolicy: "deliver"`. */
  late: boolean;
  /** How far past its playout time a late frame arrived (ms; 0 otherwise). */
  lateByMs: number;
}

/**
 * Counters and gauges of a jitter buffer (all numbers).
 *
 * @example
 * ```ts
 * const jb = createJitterBuffer();
 * const s: JitterStats = jb.stats();
 * console.log(`D=${s.latencyMs} ms (target ${s.targetLatencyMs}), late ${s.late}, lost ${s.lost}`);
 * jb.free();
 * ```
 */
export interface JitterStats {
  /** Valid frames pushed. */
  received: number;
  /** Frames popped with `deliver: true` (late-delivered ones included). */
  delivered: number;
  /** Late frames dropped (`latePolicy: "drop"`), and wild frames before a discontinuity. */
  late: number;
  /** Late frames whose seq was below one already released (also in `late` or `lateDelivered`). */
  belated: number;
  /** Late frames delivered (`latePolicy: "deliver"`). */
  lateDelivered: number;
  /** Seqs skipped by a release that never arrived. */
  lost: number;
  /** Frames already seen, dropped. */
  duplicates: number;
  /** Frames arriving with a seq below the highest seen. */
  reordered: number;
  /** Frames evicted because more than `maxFrames` waited. */
  overflowDrops: number;
  /** Timeline changes: sender timestamp jumps, and returns to the clock model. */
  discontinuities: number;
  /** Pushes refused as invalid (RangeError). */
  invalid: number;
  /** Frames discarded by a discontinuity or `reset()`. */
  flushed: number;
  /** Current playout latency D (ms). */
  latencyMs: number;
  /** Target latency D* (ms). */
  targetLatencyMs: number;
  /** Configured least adaptive latency (ms). */
  minLatencyMs: number;
  /** Configured greatest adaptive latency (ms). */
  maxLatencyMs: number;
  /** Median transit (ms; NaN before the first frame). */
  transitP50Ms: number;
  /** 0.99 quantile of transit (ms; NaN before the first frame). */
  transitP99Ms: number;
  /** RFC 3550 interarrival jitter in arrival order (ms); reported only, never drives D. */
  jitterMs: number;
  /** Frames waiting for their playout time. */
  bufferedFrames: number;
  /** Playout span between the first and last waiting frame (ms). */
  bufferedSpanMs: number;
  /** Discarded frames not yet popped. */
  pendingDiscards: number;
  /** Offset added to mapped timestamps since a discontinuity (ms; 0 on the clock model). */
  rebaseMs: number;
  /** Transit samples in the histogram since creation or `reset()`. */
  samples: number;
}

/**
 * A jitter buffer. Times are in ms; `offsetMs` = sender clock − local clock.
 *
 * @example
 * ```ts
 * const jb = createJitterBuffer({ latencyMs: 100 });
 * jb.push(0, 5_000, 4_000, 1_020); // mapped ts 1000, due at 1100
 * jb.pop(1_099); // undefined: never early
 * jb.pop(1_100); // { seq: 0, ts: 5000, alignedTime: 1100, deliver: true, late: false, lateByMs: 0 }
 * jb.free();
 * ```
 */
export interface JitterBuffer {
  /**
   * A frame arrived.
   * @param seq Sequence number, an integer in [0, 2^53 − 1].
   * @param ts Sender timestamp (ms on the sender's clock, finite, ≥ 0).
   * @param offsetMs Sender clock − local clock (ms): the mapped local time is `ts − offsetMs`.
   * @param arrival Arrival time on the local clock (ms).
   * @returns What happened to the frame.
   * @throws RangeError on invalid input; nothing changes but `invalid`.
   */
  push(seq: number, ts: number, offsetMs: number, arrival: number): JitterPushResult;
  /**
   * Local time at which `pop` will next return something: +Infinity when empty, −Infinity while
   * discarded frames wait (they are always due at once).
   */
  nextDue(): number;
  /**
   * The next frame whose playout time is ≤ `now`, in playout order (ties by seq); discarded
   * frames first, whatever `now`. `pop(Infinity)` drains everything.
   */
  pop(now: number): JitterFrame | undefined;
  /** Counters and gauges. */
  stats(): JitterStats;
  /**
   * Replaces `initialLatencyMs`: the least adaptive latency (ms, clamped to [min, max] as at
   * creation) until 50 frames have arrived. Before the first frame the latency starts from it at
   * once; after, from the next frame (up at once, down gradually). A time-synced stream refreshes
   * it from its connection's transit estimate while it is young. No effect with a fixed `latencyMs`.
   * @throws RangeError for a value that is not finite and ≥ 0.
   */
  setInitialLatency(ms: number): void;
  /** Forgets the frames (they leave `pop` with `deliver: false`) and the adaptation; counters stay. */
  reset(): void;
  /** Releases the WASM slot (frames still held are dropped); the buffer is unusable after. */
  free(): void;
}

const PUSH_RESULTS: readonly JitterPushResult[] = ["buffered", "duplicate", "late", "late-deliver", "overflow"];

function badPush(seq: number, ts: number, offsetMs: number, arrival: number): RangeError {
  let what: string;
  if (!(seq >= 0 && seq <= MAX_SEQ && Math.floor(seq) === seq)) {
    what = `seq must be an integer in [0, 2^53 - 1], received ${seq}`;
  } else if (!(Number.isFinite(ts) && ts >= 0)) what = `ts must be finite and >= 0, received ${ts}`;
  else if (!Number.isFinite(offsetMs)) what = `offsetMs must be finite, received ${offsetMs}`;
  else what = `arrival must be finite, received ${arrival}`;
  return new RangeError(`invalid jitter buffer frame: ${what}`);
}

function badInitial(ms: number): RangeError {
  return new RangeError(`invalid initial latency: must be finite and >= 0, received ${ms}`);
}

function frame(s: Float64Array): JitterFrame {
  return { seq: s[0], ts: s[1], alignedTime: s[2], deliver: s[3] === 1, late: s[4] === 1, lateByMs: s[5] };
}

function statsOf(s: Float64Array): JitterStats {
  const out = {} as Record<string, number>;
  for (let i = 0; i < STATS_LEN; i++) out[STAT_KEYS[i]] = s[i];
  return out as unknown as JitterStats;
}

/**
 * Statistics with every field 0, for a stream that has no jitter buffer.
 *
 * @example
 * ```ts
 * const s = zeroJitterStats(); // s.late === 0, s.latencyMs === 0
 * ```
 */
export function zeroJitterStats(): JitterStats {
  return statsOf(new Float64Array(STATS_LEN));
}

function freed(): never {
  throw new Error("jitter buffer has been freed");
}

class TsJitter implements JitterBuffer {
  #b: TsJitterBuffer | undefined;
  readonly #out = new Float64Array(STATS_LEN);
  constructor(o: RawJitterOptions) {
    this.#b = new TsJitterBuffer(o);
  }
  push(seq: number, ts: number, offsetMs: number, arrival: number): JitterPushResult {
    const r = (this.#b ?? freed()).push(seq, ts, offsetMs, arrival);
    if (r === PUSH_INVALID) throw badPush(seq, ts, offsetMs, arrival);
    return PUSH_RESULTS[r];
  }
  nextDue(): number {
    return (this.#b ?? freed()).nextDue();
  }
  pop(now: number): JitterFrame | undefined {
    return (this.#b ?? freed()).pop(now, this.#out) ? frame(this.#out) : undefined;
  }
  popSlots(now: number): Float64Array | undefined {
    return (this.#b ?? freed()).pop(now, this.#out) ? this.#out : undefined;
  }
  dueAfter(): number {
    return (this.#b ?? freed()).nextDue();
  }
  stats(): JitterStats {
    (this.#b ?? freed()).writeStats(this.#out);
    return statsOf(this.#out);
  }
  setInitialLatency(ms: number): void {
    if (!(this.#b ?? freed()).setInitial(ms)) throw badInitial(ms);
  }
  reset(): void {
    (this.#b ?? freed()).reset();
  }
  free(): void {
    this.#b = undefined;
  }
}

const slots = new FinalizationRegistry<number>((id) => jitterCore().free(id));

class WasmJitter implements JitterBuffer {
  readonly #c: JitterCore;
  #id: number;
  constructor(o: RawJitterOptions) {
    this.#c = jitterCore();
    this.#id = this.#c.create(o.latency, o.min, o.max, o.deliverLate, o.maxFrames, o.initial, o.margin, o.quantile);
    if (this.#id < 0) throw new RangeError("invalid jitter buffer options");
    slots.register(this, this.#id, this);
  }
  push(seq: number, ts: number, offsetMs: number, arrival: number): JitterPushResult {
    const r = this.#c.push(this.#id, seq, ts, offsetMs, arrival);
    if (r >= 0) return PUSH_RESULTS[r];
    if (r === PUSH_INVALID) throw badPush(seq, ts, offsetMs, arrival);
    return freed();
  }
  nextDue(): number {
    if (this.#id < 0) freed();
    return this.#c.nextDue(this.#id);
  }
  pop(now: number): JitterFrame | undefined {
    const s = this.#c.pop(this.#id, now);
    if (s === null) freed();
    return s ? frame(s) : undefined;
  }
  popSlots(now: number): Float64Array | undefined {
    const s = this.#c.pop(this.#id, now);
    if (s === null) freed();
    return s;
  }
  dueAfter(): number {
    return this.#c.lastDue();
  }
  stats(): JitterStats {
    return statsOf(this.#c.stats(this.#id) ?? freed());
  }
  setInitialLatency(ms: number): void {
    const r = this.#c.setInitial(this.#id, ms);
    if (r === -2) freed();
    if (r !== 0) throw badInitial(ms);
  }
  reset(): void {
    if (this.#id < 0) freed();
    this.#c.reset(this.#id);
  }
  free(): void {
    if (this.#id < 0) return;
    slots.unregister(this);
    this.#c.free(this.#id);
    this.#id = -1;
  }
}

/**
 * @internal `jb.pop(now)` without the `JitterFrame` object: the result slots (seq, ts,
 * alignedTime, deliver 1/0, late 1/0, lateByMs), valid until the buffer's next call; undefined
 * when nothing is due. For buffers made by `createJitterBuffer` (the per-frame release path).
 */
export function popSlots(jb: JitterBuffer, now: number): Float64Array | undefined {
  return (jb as WasmJitter | TsJitter).popSlots(now);
}

/**
 * @internal `jb.nextDue()` right after a `push` or `popSlots` on `jb` that did not throw, with no
 * other jitter-buffer call in between: the WASM core left it in its result slots, so reading it
 * costs no call into the module (one frame's push and release then cross twice, not five times).
 */
export function dueAfter(jb: JitterBuffer): number {
  return (jb as WasmJitter | TsJitter).dueAfter();
}

function num(
  o: JitterBufferOptions,
  key: keyof JitterBufferOptions,
  dflt: number,
  ok: (v: number) => boolean,
  want: string,
): number {
  const v = o[key] ?? dflt;
  if (typeof v !== "number" || !ok(v)) {
    throw new RangeError(`jitter buffer option ${key} must be ${want}, received ${String(v)}`);
  }
  return v;
}

const finiteNonNeg = (v: number) => Number.isFinite(v) && v >= 0;

/**
 * Creates a jitter buffer.
 *
 * @example Adaptive latency between 20 and 300 ms
 * ```ts
 * const jb = createJitterBuffer({ minLatencyMs: 20, maxLatencyMs: 300 });
 * const now = performance.timeOrigin + performance.now();
 * jb.push(1, now - 30, 0, now); // seq 1, stamped 30 ms ago by a sender whose clock agrees with ours
 * ```
 * @param options See {@link JitterBufferOptions}.
 * @returns A new buffer; call `free()` when done (the WASM slot is also reclaimed on GC).
 * @throws RangeError when an option is out of range.
 */
export function createJitterBuffer(options: JitterBufferOptions = {}): JitterBuffer {
  return jitterBufferMaker(options)();
}

/**
 * @internal Checks `options` now and returns what makes a buffer with them later (a time-synced
 * stream's receiver makes its buffer at its first frame: a side that only sends never needs one).
 * @throws RangeError when an option is out of range (at once, not when the buffer is made).
 */
export function jitterBufferMaker(options: JitterBufferOptions = {}): () => JitterBuffer {
  if (typeof options !== "object" || options === null) {
    throw new RangeError(`jitter buffer options must be an object, received ${String(options)}`);
  }
  const impl = options.impl ?? "wasm";
  if (impl !== "wasm" && impl !== "ts") {
    throw new RangeError(`jitter buffer option impl must be "wasm" or "ts", received ${String(impl)}`);
  }
  const policy = options.latePolicy ?? "drop";
  if (policy !== "drop" && policy !== "deliver") {
    throw new RangeError(`jitter buffer option latePolicy must be "drop" or "deliver", received ${String(policy)}`);
  }
  const latency = options.latencyMs === undefined
    ? NaN
    : num(options, "latencyMs", 0, finiteNonNeg, "a finite number >= 0");
  const min = num(options, "minLatencyMs", 0, finiteNonNeg, "a finite number >= 0");
  const max = num(
    options,
    "maxLatencyMs",
    1000,
    (v) => Number.isFinite(v) && v >= min,
    `a finite number >= minLatencyMs (${min})`,
  );
  const o: RawJitterOptions = {
    latency,
    min,
    max,
    deliverLate: policy === "deliver",
    maxFrames: num(
      options,
      "maxFrames",
      4096,
      (v) => Number.isInteger(v) && v >= 1 && v <= 1048576,
      "an integer in [1, 1048576]",
    ),
    initial: num(options, "initialLatencyMs", 80, finiteNonNeg, "a finite number >= 0"),
    margin: num(options, "marginMs", 2, finiteNonNeg, "a finite number >= 0"),
    quantile: num(options, "quantile", 0.99, (v) => v > 0 && v <= 1, "in (0, 1]"),
  };
  return impl === "ts" ? () => new TsJitter(o) : () => new WasmJitter(o);
}
