/**
 * Clock offset and skew estimation from PING/PONG exchanges (issue 6 §1), pure math: the caller
 * supplies every timestamp, so the estimator has no clock of its own.
 *
 * Per exchange (RFC 5905 §8): offset θ = ((t2 − t1) + (t3 − t4)) / 2, delay
 * δ = max((t4 − t1) − (t3 − t2), precision). With fewer than 8 samples the NTP clock filter
 * (offset of the lowest-delay sample among the last 8, popcorn gate at 3× jitter, never two
 * drops in a row; it keeps gating until 16 samples) gives the
 * offset; from 8 samples on, a least-squares fit of θ against centred local time over up to 512
 * samples gives offset and skew (clamped to ±2000 ppm). The fit is delay-weighted: a sample whose
 * delay exceeds the window's least δ_min by e counts 1 / (1 + 2·e/ē)² (ē the window's mean excess),
 * since the slower exchanges are the ones a busy host skews one way; the skew has a 100 ppm prior,
 * which holds the slope while the window spans only seconds. A chrony-style delay-outlier gate
 * ((δ − δ_min)/2 > 10·jitter + precision is dropped). Three consecutive samples that agree with
 * each other (within 3√2·jitter) but lie over max(10·jitter, 1 ms) from the model are a clock
 * step: the estimator restarts from them and counts a step. A lone spike never does.
 *
 * `uncertainty(at)` = the larger of δ_min/2 + 3·standard error of the offset at `at` (from the
 * weighted residuals) + precision,
 * and the fit's distance from the window's lowest-delay exchange + δ_min/2 + precision (+ 3·the
 * skew's standard error·the time since that exchange). The δ_min/2 term bounds a constant bias
 * from path asymmetry, which no two-way method can observe (one-way delays that differ by A bias
 * the offset by A/2); the second bound holds when the asymmetry varies, since the fastest
 * exchange's offset ± δ_min/2 holds the truth whatever the asymmetry.
 *
 * The default implementation runs in the WASM core (`wasm/src/clock.rs`); `impl: "ts"` selects
 * the plain-TS reference, which gives bit-identical results.
 *
 * @example
 * ```ts
 * import { createClockEstimator } from "./estimator.ts";
 * const est = createClockEstimator();
 * // One PING/PONG, all in ms: sent at t1 and answered at t4 (local clock), received at t2 and
 * // answered at t3 (server clock, here 500 ms ahead; 10 ms each way).
 * const [t1, t2, t3, t4] = [1_000, 1_510, 1_511, 1_021];
 * est.add(t1, t2, t3, t4);
 * const localNow = 1_030;
 * const serverTime = localNow + est.offset(localNow); // ≈ 1530
 * console.log(serverTime, est.skewPpm(), est.uncertainty(localNow), est.rttMs);
 * est.free();
 * ```
 *
 * @module
 */

import { type ClockCore, clockCore, ClockStat } from "../../wasm/mod.ts";
import { ADD_INVALID, ADD_STEP, TsClockEstimator } from "./_estimator_ts.ts";

/** What `add` did with a sample. */
export type ClockSampleResult = "accepted" | "rejected" | "step";

/** Options of {@link createClockEstimator}. */
export interface ClockEstimatorOptions {
  /** `"wasm"` (default) or the plain-TS reference `"ts"`. */
  impl?: "wasm" | "ts";
  /** Clock precision ρ in ms (default 0.001): the least delay, and part of the error bound. */
  precisionMs?: number;
}

/** A clock offset/skew estimator. Times are in ms; offsets are server − local. */
export interface ClockEstimator {
  /**
   * Adds one exchange: t1 client send, t2 server receive, t3 server send, t4 client receive.
   * @throws RangeError on a non-finite time, t4 < t1, t3 < t2, a delay below −(2ρ + 1 ms), or a
   * sample older than the previous one; the estimator's state is not changed (only `invalid`).
   */
  add(t1: number, t2: number, t3: number, t4: number): ClockSampleResult;
  /** Estimated offset at local time `at` (NaN before the first sample). */
  offset(at: number): number;
  /** Estimated skew (ppm of the server clock relative to the local one; 0 until 8 samples). */
  skewPpm(): number;
  /** Error bound of `offset(at)` in ms (Infinity before the first sample). */
  uncertainty(at: number): number;
  /** Delay (round trip minus server time) of the last valid sample; NaN before one. */
  readonly rttMs: number;
  /** Least delay among the samples in the model; NaN before one. */
  readonly minDelayMs: number;
  /** Jitter in ms (clock-filter ψ, then the fit's residual standard deviation). */
  readonly jitterMs: number;
  /** Valid samples seen. */
  readonly samples: number;
  /** Samples used by the model. */
  readonly accepted: number;
  /** Spikes and delay outliers dropped. */
  readonly rejected: number;
  /** Invalid samples refused. */
  readonly invalid: number;
  /** Clock steps detected (each restarted the estimator). */
  readonly steps: number;
  /** Samples in the current window. */
  readonly windowSize: number;
  /** Forgets samples and model (counters stay). */
  reset(): void;
  /** Releases the WASM instance slot (no-op for `"ts"`); the estimator is unusable after. */
  free(): void;
}

function result(code: number, t: readonly number[]): ClockSampleResult {
  if (code === ADD_INVALID) throw new RangeError(`invalid clock sample (t1..t4 = ${t.join(", ")})`);
  if (code < 0) throw new Error("clock estimator has been freed");
  return code === ADD_STEP ? "step" : code === 0 ? "accepted" : "rejected";
}

class TsEstimator implements ClockEstimator {
  readonly #e: TsClockEstimator;
  constructor(precision: number) {
    this.#e = new TsClockEstimator(precision);
  }
  add(t1: number, t2: number, t3: number, t4: number): ClockSampleResult {
    return result(this.#e.add(t1, t2, t3, t4), [t1, t2, t3, t4]);
  }
  offset(at: number): number {
    return this.#e.offset(at);
  }
  skewPpm(): number {
    return this.#e.skewPpm();
  }
  uncertainty(at: number): number {
    return this.#e.uncertainty(at);
  }
  get rttMs(): number {
    return this.#e.lastRtt;
  }
  get minDelayMs(): number {
    return this.#e.minDelay();
  }
  get jitterMs(): number {
    return this.#e.jitter();
  }
  get samples(): number {
    return this.#e.total;
  }
  get accepted(): number {
    return this.#e.accepted;
  }
  get rejected(): number {
    return this.#e.rejected;
  }
  get invalid(): number {
    return this.#e.invalid;
  }
  get steps(): number {
    return this.#e.steps;
  }
  get windowSize(): number {
    return this.#e.windowLength;
  }
  reset(): void {
    this.#e.reset();
  }
  free(): void {}
}

const slots = new FinalizationRegistry<number>((id) => clockCore().free(id));

class WasmEstimator implements ClockEstimator {
  readonly #c: ClockCore;
  #id: number;
  constructor(precision: number) {
    this.#c = clockCore();
    this.#id = this.#c.create(precision);
    if (this.#id < 0) throw new RangeError("clock estimator pool is full (65,536 live), or precision is not finite and > 0");
    slots.register(this, this.#id, this);
  }
  add(t1: number, t2: number, t3: number, t4: number): ClockSampleResult {
    return result(this.#c.add(this.#id, t1, t2, t3, t4), [t1, t2, t3, t4]);
  }
  offset(at: number): number {
    return this.#c.offset(this.#id, at);
  }
  skewPpm(): number {
    return this.#c.skewPpm(this.#id);
  }
  uncertainty(at: number): number {
    return this.#c.uncertainty(this.#id, at);
  }
  get rttMs(): number {
    return this.#c.stat(this.#id, ClockStat.LAST_DELAY);
  }
  get minDelayMs(): number {
    return this.#c.stat(this.#id, ClockStat.MIN_DELAY);
  }
  get jitterMs(): number {
    return this.#c.stat(this.#id, ClockStat.JITTER);
  }
  get samples(): number {
    return this.#c.stat(this.#id, ClockStat.SAMPLES);
  }
  get accepted(): number {
    return this.#c.stat(this.#id, ClockStat.ACCEPTED);
  }
  get rejected(): number {
    return this.#c.stat(this.#id, ClockStat.REJECTED);
  }
  get invalid(): number {
    return this.#c.stat(this.#id, ClockStat.INVALID);
  }
  get steps(): number {
    return this.#c.stat(this.#id, ClockStat.STEPS);
  }
  get windowSize(): number {
    return this.#c.stat(this.#id, ClockStat.WINDOW);
  }
  reset(): void {
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
 * Creates a clock offset/skew estimator.
 *
 * @example
 * ```ts
 * const est = createClockEstimator({ impl: "ts", precisionMs: 0.005 });
 * const [t1, t2, t3, t4] = [1_000, 1_510, 1_511, 1_021]; // one PING/PONG (ms; t2, t3 on the server's clock)
 * if (est.add(t1, t2, t3, t4) === "step") console.log("server clock stepped");
 * est.free();
 * ```
 * @throws RangeError when `precisionMs` is not finite and > 0, or the WASM pool (65,536 live estimators) is full.
 */
export function createClockEstimator(options: ClockEstimatorOptions = {}): ClockEstimator {
  const precision = options.precisionMs ?? 0.001;
  if (!(Number.isFinite(precision) && precision > 0)) throw new RangeError("precisionMs must be finite and > 0");
  const impl = options.impl ?? "wasm";
  if (impl === "ts") return new TsEstimator(precision);
  if (impl === "wasm") return new WasmEstimator(precision);
  throw new RangeError(`unknown clock estimator impl: ${String(impl)}`);
}
