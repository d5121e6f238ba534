/**
 * Plain-TS reference of the clock estimator in `wasm/src/clock.rs`: the same operations in the
 * same order, so both give bit-identical results on a recorded trace (the parity test). See the
 * Rust module's header for the algorithm; keep the two in step.
 *
 * @module
 */

/** Regression window (samples). */
export const WINDOW = 512;
/** Samples needed before the least-squares fit replaces the clock filter. */
export const MIN_FIT = 8;
/** Samples needed before the fit (rather than the clock filter) gates new samples. */
export const GATE_MIN = 16;
/** NTP clock filter stages. */
export const FILTER = 8;
/** Skew bound (2000 ppm as ms per ms). */
export const MAX_SKEW = 2e-3;
/** chrony's default `maxdelaydevratio`. */
export const DELAY_DEV_RATIO = 10;
/**
 * Delay weighting of the fit: an exchange whose delay exceeds δ_min by e counts with weight
 * 1 / (1 + DELAY_WEIGHT·e/ē)², ē = the window's mean excess (at least ρ).
 */
export const DELAY_WEIGHT = 2;
/**
 * Standard deviation of the skew's prior (100 ppm: ordinary crystals are within it). It matters
 * only while the window is short: its weight σ_w²/σ_p² against Sxx.
 */
export const SKEW_PRIOR = 1e-4;
/** Smallest mean residual (ms) that counts as a clock step. */
export const STEP_MIN_MS = 1;
/** Accepted samples averaged into one block of the long-term skew estimate. */
export const BLOCK = 16;
/** Blocks kept for the long-term skew estimate. */
export const LONG = 128;
/** Blocks needed before the long-term skew may replace the window's own slope. */
export const LONG_MIN = 8;

/** `add` results, shared with the WASM core. */
export const ADD_INVALID = -1;
/** The sample entered the model. */
export const ADD_ACCEPTED = 0;
/** Spike, delay outlier, or held as a step candidate. */
export const ADD_REJECTED = 1;
/** A clock step: the estimator restarted from the three agreeing samples. */
export const ADD_STEP = 2;

/** `s` within ±`MAX_SKEW` (`clamp_skew` in clock.rs). */
function clampSkew(s: number): number {
  return s > MAX_SKEW ? MAX_SKEW : s < -MAX_SKEW ? -MAX_SKEW : s;
}

/** Least-squares sums of y against x centred on the last point's x (`base`) and the mean. */
interface Line {
  base: number;
  xm: number;
  ym: number;
  sxx: number;
  sxy: number;
}

/**
 * A ring of points: point i is (buf[k], buf[k + 1]) with k = ((head + i) % cap) * stride. Plain
 * numbers rather than an accessor closure: closures halved the TS estimator's speed on Bun.
 */
interface Ring {
  buf: Float64Array;
  head: number;
  cap: number;
  stride: number;
}

/** Fits the first `n` (≥ 1) points of `g` (the same operations as `Line::fit` in clock.rs). */
function fitLine(g: Ring, n: number): Line {
  const { buf, head, cap, stride } = g;
  const base = buf[((head + n - 1) % cap) * stride];
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    const k = ((head + i) % cap) * stride;
    sx += buf[k] - base;
    sy += buf[k + 1];
  }
  const xm = sx / n;
  const ym = sy / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const k = ((head + i) % cap) * stride;
    const x = (buf[k] - base) - xm;
    sxx += x * x;
    sxy += x * (buf[k + 1] - ym);
  }
  return { base, xm, ym, sxx, sxy };
}

/** Sum of squared residuals about the line with slope `s` through the means. */
function lineSse(l: Line, g: Ring, n: number, s: number): number {
  const { buf, head, cap, stride } = g;
  let sse = 0;
  for (let i = 0; i < n; i++) {
    const k = ((head + i) % cap) * stride;
    const x = (buf[k] - l.base) - l.xm;
    const e = (buf[k + 1] - l.ym) - s * x;
    sse += e * e;
  }
  return sse;
}

/** The reference estimator (same contract as the WASM instance behind `es_clock_*`). */
export class TsClockEstimator {
  readonly precision: number;
  #ring = new Float64Array(WINDOW * 3);
  #head = 0;
  #len = 0;
  #cand = new Float64Array(12);
  #candLen = 0;
  #lastDropped = false;
  #lastTau = 0;
  #hasLast = false;
  #fitted = false;
  #a = 0;
  #s = 0;
  #tRef = 0;
  /** Residual standard deviation about the model line (unweighted): the jitter J's base. */
  #sigma = 0;
  /** Residual standard deviation per unit weight (an exchange at δ_min), and the weights' sum. */
  #sigmaW = 0;
  #wsum = 0;
  /** ē of the weights (ms). */
  #wscale = 0;
  /** What `#residuals` leaves: the weighted and unweighted sums of squared residuals. */
  #sseW = 0;
  #sse = 0;
  /** Variance of the slope in use: σ_w²/(Sxx_w + σ_w²/SKEW_PRIOR²), or the long-term fit's. */
  #varS = 0;
  #blocks = new Float64Array(LONG * 2);
  #bhead = 0;
  #blen = 0;
  #pfirst = 0;
  #pdt = 0;
  #pth = 0;
  #pcount = 0;
  #dmin = 0;
  /** Local time and offset of the lowest-delay sample in the window (`#dmin`'s). */
  #bestTau = 0;
  #bestTheta = 0;
  #dsel = 0;
  /** Valid samples seen. */
  total = 0;
  /** Samples that entered the model. */
  accepted = 0;
  /** Spikes and delay outliers. */
  rejected = 0;
  /** Invalid inputs. */
  invalid = 0;
  /** Clock steps detected. */
  steps = 0;
  /** Delay of the last valid sample (ms). */
  lastRtt = NaN;

  /** @param precision Clock precision ρ in ms (finite, > 0). */
  constructor(precision: number) {
    if (!(Number.isFinite(precision) && precision > 0)) throw new RangeError("precision must be finite and > 0");
    this.precision = precision;
  }

  /** Forgets all samples and the model; counters stay. */
  reset(): void {
    this.#head = 0;
    this.#len = 0;
    this.#candLen = 0;
    this.#lastDropped = false;
    this.#hasLast = false;
    this.#fitted = false;
    this.#clearBlocks();
  }

  #clearBlocks(): void {
    this.#bhead = 0;
    this.#blen = 0;
    this.#pcount = 0;
    this.#pdt = 0;
    this.#pth = 0;
  }

  #blockAt(i: number): number {
    return ((this.#bhead + i) % LONG) * 2;
  }

  #longSlope(windowSpan: number): [number, number] | undefined {
    const m = this.#blen;
    if (m < LONG_MIN) return undefined;
    const b = this.#blocks;
    const first = b[this.#blockAt(0)];
    const base = b[this.#blockAt(m - 1)];
    if (base - first <= 1.5 * windowSpan) return undefined;
    const g: Ring = { buf: b, head: this.#bhead, cap: LONG, stride: 2 };
    const line = fitLine(g, m);
    if (!(line.sxx > 0)) return undefined;
    const sl = line.sxy / line.sxx;
    return [sl, lineSse(line, g, m, sl) / (m - 2) / line.sxx];
  }

  /** Samples in the window. */
  get windowLength(): number {
    return this.#len;
  }

  #at(i: number): number {
    return ((this.#head + i) % WINDOW) * 3;
  }

  #push(tau: number, theta: number, delta: number): void {
    if (this.#len === WINDOW) {
      this.#head = (this.#head + 1) % WINDOW;
      this.#len -= 1;
    }
    const k = this.#at(this.#len);
    this.#ring[k] = tau;
    this.#ring[k + 1] = theta;
    this.#ring[k + 2] = delta;
    this.#len += 1;
    this.accepted += 1;
    if (this.#pcount === 0) this.#pfirst = tau;
    this.#pdt += tau - this.#pfirst;
    this.#pth += theta;
    this.#pcount += 1;
    if (this.#pcount === BLOCK) {
      if (this.#blen === LONG) {
        this.#bhead = (this.#bhead + 1) % LONG;
        this.#blen -= 1;
      }
      const b = this.#blockAt(this.#blen);
      this.#blocks[b] = this.#pfirst + this.#pdt / BLOCK;
      this.#blocks[b + 1] = this.#pth / BLOCK;
      this.#blen += 1;
      this.#pcount = 0;
      this.#pdt = 0;
      this.#pth = 0;
    }
  }

  #filter(): [number, number] {
    const r = this.#ring;
    const m = this.#len < FILTER ? this.#len : FILTER;
    const first = this.#len - m;
    let sel = first;
    for (let i = first + 1; i < this.#len; i++) {
      if (r[this.#at(i) + 2] < r[this.#at(sel) + 2]) sel = i;
    }
    let psi = this.precision;
    if (m >= 2) {
      const ts = r[this.#at(sel) + 1];
      let sum = 0;
      for (let i = first; i < this.#len; i++) {
        if (i !== sel) {
          const d = ts - r[this.#at(i) + 1];
          sum += d * d;
        }
      }
      psi = Math.sqrt(sum / (m - 1));
      if (psi < this.precision) psi = this.precision;
    }
    return [sel, psi];
  }

  #refit(): void {
    const r = this.#ring;
    const n = this.#len;
    if (n === 0) {
      this.#fitted = false;
      return;
    }
    let dmin = r[this.#at(0) + 2];
    let best = this.#at(0);
    for (let i = 1; i < n; i++) {
      const d = r[this.#at(i) + 2];
      if (d < dmin) {
        dmin = d;
        best = this.#at(i);
      }
    }
    this.#dmin = dmin;
    this.#bestTau = r[best];
    this.#bestTheta = r[best + 1];
    if (n < MIN_FIT) {
      const [sel, psi] = this.#filter();
      const k = this.#at(sel);
      this.#fitted = false;
      this.#a = r[k + 1];
      this.#tRef = r[k];
      this.#dsel = r[k + 2];
      this.#s = 0;
      this.#sigma = psi;
      this.#varS = 0;
      return;
    }
    // Weights from each exchange's delay excess over δ_min, relative to the mean excess (see
    // clock.rs): an exchange's offset is off the truth by at most δ/2.
    let ex = 0;
    for (let i = 0; i < n; i++) ex += r[this.#at(i) + 2] - dmin;
    ex /= n;
    this.#wscale = ex > this.precision ? ex : this.precision;
    const base = r[this.#at(n - 1)];
    let wsum = 0;
    let sx = 0;
    let sy = 0;
    for (let i = 0; i < n; i++) {
      const k = this.#at(i);
      const w = this.#weight(r[k + 2]);
      wsum += w;
      sx += w * (r[k] - base);
      sy += w * r[k + 1];
    }
    const xm = sx / wsum;
    const ym = sy / wsum;
    let sxx = 0;
    let sxy = 0;
    for (let i = 0; i < n; i++) {
      const k = this.#at(i);
      const w = this.#weight(r[k + 2]);
      const x = (r[k] - base) - xm;
      sxx += w * x * x;
      sxy += w * x * (r[k + 1] - ym);
    }
    const s0 = clampSkew(sxx > 0 ? sxy / sxx : 0);
    // The skew's prior: Sxx + σ_w²/σ_p² in place of Sxx (σ_w² from the unshrunk slope's
    // residuals; see clock.rs).
    this.#residuals(n, base, xm, ym, s0);
    const sxxp = sxx + this.#sseW / (n - 2) / (SKEW_PRIOR * SKEW_PRIOR);
    let s = clampSkew(sxxp > 0 ? sxy / sxxp : 0);
    this.#residuals(n, base, xm, ym, s);
    let sseW = this.#sseW;
    let sse = this.#sse;
    let varS = sxxp > 0 ? sseW / (n - 2) / sxxp : 0;
    const span = r[this.#at(n - 1)] - r[this.#at(0)];
    const long = this.#longSlope(span);
    if (long !== undefined) {
      const [sl, vl] = long;
      if (vl < varS && sl <= MAX_SKEW && sl >= -MAX_SKEW) {
        s = sl;
        varS = vl;
        this.#residuals(n, base, xm, ym, s);
        sseW = this.#sseW;
        sse = this.#sse;
      }
    }
    this.#fitted = true;
    this.#a = ym;
    this.#s = s;
    this.#tRef = base + xm;
    this.#sigma = Math.sqrt(sse / (n - 2));
    this.#sigmaW = Math.sqrt(sseW / (n - 2));
    this.#wsum = wsum;
    this.#varS = varS;
  }

  /** The fit's weight of an exchange with delay `delta` (1 at δ_min). */
  #weight(delta: number): number {
    const f = 1 + DELAY_WEIGHT * (delta - this.#dmin) / this.#wscale;
    return 1 / (f * f);
  }

  /**
   * Weighted and unweighted sums of squared residuals of the window about the line through
   * (xm, ym) (x relative to `base`) with slope `s`, into `#sseW` and `#sse`.
   */
  #residuals(n: number, base: number, xm: number, ym: number, s: number): void {
    const r = this.#ring;
    let sseW = 0;
    let sse = 0;
    for (let i = 0; i < n; i++) {
      const k = this.#at(i);
      const x = (r[k] - base) - xm;
      const e = (r[k + 1] - ym) - s * x;
      sseW += this.#weight(r[k + 2]) * e * e;
      sse += e * e;
    }
    this.#sseW = sseW;
    this.#sse = sse;
  }

  /**
   * Adds one PING/PONG exchange (ms): t1 client send, t2 server receive, t3 server send, t4
   * client receive. Returns an `ADD_*` code; an invalid sample is counted and changes nothing else.
   */
  add(t1: number, t2: number, t3: number, t4: number): number {
    if (
      !(Number.isFinite(t1) && Number.isFinite(t2) && Number.isFinite(t3) && Number.isFinite(t4)) || t4 < t1 ||
      t3 < t2
    ) {
      this.invalid += 1;
      return ADD_INVALID;
    }
    const p = this.precision;
    const theta = ((t2 - t1) + (t3 - t4)) / 2;
    const raw = (t4 - t1) - (t3 - t2);
    const tau = (t1 + t4) / 2;
    if (raw < -(2 * p + 1) || (this.#hasLast && tau < this.#lastTau)) {
      this.invalid += 1;
      return ADD_INVALID;
    }
    const delta = raw > p ? raw : p;
    this.#hasLast = true;
    this.#lastTau = tau;
    this.lastRtt = delta;
    this.total += 1;

    if (!this.#fitted || this.#len < GATE_MIN) {
      if (this.#len >= 4) {
        const [sel, psi] = this.#filter();
        const ts = this.#ring[this.#at(sel) + 1];
        if (Math.abs(theta - ts) > 3 * psi && !this.#lastDropped) {
          this.#lastDropped = true;
          this.rejected += 1;
          return ADD_REJECTED;
        }
      }
      this.#lastDropped = false;
      this.#push(tau, theta, delta);
      this.#refit();
      return ADD_ACCEPTED;
    }

    const d = tau - this.#tRef;
    const jp = Math.sqrt(this.#sigma * this.#sigma * (1 + 1 / this.#len) + d * d * this.#varS);
    const j = jp > p ? jp : p;
    if ((delta - this.#dmin) / 2 > DELAY_DEV_RATIO * j + p) {
      this.rejected += 1;
      return ADD_REJECTED;
    }
    const r = theta - (this.#a + this.#s * (tau - this.#tRef));
    if (Math.abs(r) <= 3 * j) {
      this.#candLen = 0;
      this.#push(tau, theta, delta);
      this.#refit();
      return ADD_ACCEPTED;
    }
    const cand = this.#cand;
    if (this.#candLen === 3) {
      cand.copyWithin(0, 4, 12);
      this.#candLen = 2;
    }
    const c = this.#candLen * 4;
    cand[c] = tau;
    cand[c + 1] = theta;
    cand[c + 2] = delta;
    cand[c + 3] = r;
    this.#candLen += 1;
    if (this.#candLen === 3) {
      const r0 = cand[3], r1 = cand[7], r2 = cand[11];
      const lo = Math.min(Math.min(r0, r1), r2);
      const hi = Math.max(Math.max(r0, r1), r2);
      if (hi - lo <= 3 * Math.SQRT2 * j) {
        const mean = (r0 + r1 + r2) / 3;
        const thr = 10 * j > STEP_MIN_MS ? 10 * j : STEP_MIN_MS;
        const step = Math.abs(mean) > thr;
        if (step) {
          this.#head = 0;
          this.#len = 0;
          this.#clearBlocks();
          this.steps += 1;
        }
        // The two earlier candidates were counted as rejected; they are used after all.
        this.rejected -= 2;
        for (let k = 0; k < 3; k++) this.#push(cand[k * 4], cand[k * 4 + 1], cand[k * 4 + 2]);
        this.#candLen = 0;
        this.#lastDropped = false;
        this.#refit();
        return step ? ADD_STEP : ADD_ACCEPTED;
      }
    }
    this.rejected += 1;
    return ADD_REJECTED;
  }

  /** Offset (server − local, ms) at local time `at`; NaN with no samples. */
  offset(at: number): number {
    if (this.#len === 0) return NaN;
    return this.#a + this.#s * (at - this.#tRef);
  }

  /** Skew in ppm (0 until the fit starts). */
  skewPpm(): number {
    return this.#fitted ? this.#s * 1e6 : 0;
  }

  /** Error bound (ms) of `offset(at)`; Infinity with no samples. */
  uncertainty(at: number): number {
    if (this.#len === 0) return Infinity;
    if (!this.#fitted) return this.#dsel / 2 + this.precision + Math.abs(at - this.#tRef) * MAX_SKEW;
    const d = at - this.#tRef;
    const se = Math.sqrt(this.#sigmaW * this.#sigmaW / this.#wsum + d * d * this.#varS);
    const spread = this.#dmin / 2 + 3 * se + this.precision;
    // The lowest-delay exchange's interval (its offset ± δ_min/2) holds the truth at its time. A
    // fit over exchanges whose one leg is mostly the slower one sits off that interval by a bias
    // its residuals do not show, so the bound is also at least the fit's distance from it,
    // carried to `at` with the skew's own uncertainty.
    const off = this.#a + this.#s * (this.#bestTau - this.#tRef) - this.#bestTheta;
    const anchored = Math.abs(off) + this.#dmin / 2 + this.precision + 3 * Math.sqrt(this.#varS) * Math.abs(at - this.#bestTau);
    return anchored > spread ? anchored : spread;
  }

  /** Jitter (ms): clock-filter ψ or the fit's residual standard deviation; NaN with no samples. */
  jitter(): number {
    return this.#len === 0 ? NaN : this.#sigma;
  }

  /** Least delay in the window (ms); NaN with no samples. */
  minDelay(): number {
    return this.#len === 0 ? NaN : this.#dmin;
  }
}
