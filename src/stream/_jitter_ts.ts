/**
 * Plain-TS reference of the jitter buffer in `wasm/src/jitter.rs`: the same operations in the
 * same order, so both give bit-identical results on the same trace (the parity test). See the
 * Rust module's header for the algorithm; keep the two in step.
 *
 * @module
 */

/** Seqs remembered below the highest seen (duplicate and loss window). */
export const SEQ_WINDOW = 4096;
const SEQ_WORDS = SEQ_WINDOW / 32;
/** Largest seq: 2^53 − 1. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** Histogram weight kept per sample (time constant 333 samples, 6.7 s at 50 fps). */
export const FORGET = 0.997;
/** Weight kept per sample while the histogram's tail is stale (time constant 33 samples). */
export const FAST_FORGET = 0.97;
/** Samples per block of the stale-tail check (the largest transit of the last one to two blocks). */
export const TAIL_BLOCK = 50;
/** The tail is stale when that largest transit plus max(this, TAIL_GAP_FRACTION of it) is below the quantile (ms). */
export const TAIL_GAP_MIN_MS = 2;
/** See TAIL_GAP_MIN_MS. */
export const TAIL_GAP_FRACTION = 0.25;
/** Samples before the histogram replaces the initial latency. */
export const MIN_SAMPLES = 50;
/** Most histogram buckets. */
export const MAX_BUCKETS = 1536;
/** Fewest histogram buckets held once there is a sample (it grows by doubling as transit needs). */
export const MIN_HIST_BUCKETS = 32;
/** Slowest decrease of the playout delay while above its target, ms per ms of local time (5 ms/s). */
export const SLEW = 0.005;
/** Fastest decrease of the playout delay, ms per ms of local time (50 ms/s). */
export const MAX_SLEW = 0.05;
/** Time constant of the playout delay's fall towards its target between SLEW and MAX_SLEW (ms). */
export const RELAX_MS = 2000;
/** A frame due more than this long before its arrival is wild (ms). */
export const JUMP_LATE_MS = 1000;
/** A frame due more than max(maxLatency, D) plus this after its arrival is wild (ms). */
export const JUMP_EARLY_MS = 1000;
/** Consecutive wild (or, when rebased, clock-consistent) frames that change the timeline. */
export const JUMP_RUN = 3;
/** …spanning at least this much arrival time (ms). */
export const JUMP_SPAN_MS = 50;
/** Wild frames continue a run only while their arrival − mapped ts stays this close (ms). */
export const JUMP_AGREE_MS = 1000;
const RENORM_AT = 1.6069380442589903e60; // 2^200
const RENORM_BY = 6.223015277861142e-61; // 2^-200

/** `push` results, shared with the WASM core. */
export const PUSH_INVALID = -1;
/** Held for playout. */
export const PUSH_BUFFERED = 0;
/** Seen before: dropped. */
export const PUSH_DUPLICATE = 1;
/** After its playout time (or behind a released frame), dropped. */
export const PUSH_LATE = 2;
/** Late, held for immediate delivery (`latePolicy: "deliver"`). */
export const PUSH_LATE_DELIVER = 3;
/** Accepted, and the oldest frame was evicted. */
export const PUSH_OVERFLOW = 4;

/** Statistic slots written by `writeStats`, in order (shared with the WASM core). */
export const STAT_KEYS = [
  "received",
  "delivered",
  "late",
  "belated",
  "lateDelivered",
  "lost",
  "duplicates",
  "reordered",
  "overflowDrops",
  "discontinuities",
  "invalid",
  "flushed",
  "latencyMs",
  "targetLatencyMs",
  "minLatencyMs",
  "maxLatencyMs",
  "transitP50Ms",
  "transitP99Ms",
  "jitterMs",
  "bufferedFrames",
  "bufferedSpanMs",
  "pendingDiscards",
  "rebaseMs",
  "samples",
] as const;
/** Number of statistic slots. */
export const STATS_LEN = STAT_KEYS.length;
/** Slots written by `pop`: seq, ts, alignedTime, deliver (0/1), late (0/1), lateByMs. */
export const POP_LEN = 6;

/** Validated construction options (`latency` NaN selects the adaptive mode). */
export interface RawJitterOptions {
  latency: number;
  min: number;
  max: number;
  deliverLate: boolean;
  maxFrames: number;
  initial: number;
  margin: number;
  quantile: number;
}

interface Entry {
  seq: number;
  ts: number;
  /** main: base; late: due time; discard: unused. */
  key: number;
  aligned: number;
  lateBy: number;
}

function insertSorted(q: Entry[], e: Entry): void {
  let i = q.length;
  while (i > 0) {
    const p = q[i - 1];
    if (p.key < e.key || (p.key === e.key && p.seq < e.seq)) break;
    i -= 1;
  }
  if (i === q.length) q.push(e);
  else q.splice(i, 0, e);
}

/** The reference jitter buffer (same contract as the WASM instance behind `es_jb_*`). */
export class TsJitterBuffer {
  readonly #o: RawJitterOptions;
  readonly #fixed: boolean;
  #main: Entry[] = [];
  #lateQ: Entry[] = [];
  #discard: Entry[] = [];
  #hasHi = false;
  #hi = 0;
  #seen = new Uint32Array(SEQ_WORDS);
  #hasRel = false;
  #rel = 0;
  #lossBase = 0;
  #rebase = 0;
  #wildRun = 0;
  #wildStart = 0;
  #wildRef = 0;
  #agreeRun = 0;
  #agreeStart = 0;
  #d = 0;
  #target = 0;
  #hasT = false;
  #lastT = 0;
  #hist: Float64Array | undefined;
  readonly #nb: number;
  readonly #width: number;
  #inc = 1;
  #total = 0;
  #below = 0;
  #cursor = 0;
  #samples = 0;
  #blkMax = -Infinity;
  #prevMax = NaN;
  #blkN = 0;
  #qLast = NaN;
  #hasPrev = false;
  #prevTransit = 0;
  #jitter = 0;
  received = 0;
  delivered = 0;
  late = 0;
  belated = 0;
  lateDelivered = 0;
  lost = 0;
  duplicates = 0;
  reordered = 0;
  overflowDrops = 0;
  discontinuities = 0;
  invalid = 0;
  flushed = 0;

  /** @param o Options, already validated by the facade. */
  constructor(o: RawJitterOptions) {
    this.#o = { ...o };
    this.#fixed = !Number.isNaN(o.latency);
    const range = this.#fixed && o.latency > o.max ? o.latency : o.max;
    let width = 1;
    while (range / width > MAX_BUCKETS - 1) width *= 2;
    this.#width = width;
    this.#nb = Math.floor(range / width) + 1;
    this.#restart();
  }

  #initialLatency(): number {
    if (this.#fixed) return this.#o.latency;
    let x = this.#o.initial;
    if (x < this.#o.min) x = this.#o.min;
    if (x > this.#o.max) x = this.#o.max;
    return x;
  }

  #resetSeq(): void {
    this.#hasHi = false;
    this.#hi = 0;
    this.#seen.fill(0);
    this.#hasRel = false;
    this.#rel = 0;
    this.#lossBase = 0;
  }

  #restart(): void {
    this.#resetSeq();
    this.#rebase = 0;
    this.#wildRun = 0;
    this.#agreeRun = 0;
    this.#d = this.#initialLatency();
    this.#target = this.#d;
    this.#hasT = false;
    this.#lastT = 0;
    this.#hist = undefined;
    this.#inc = 1;
    this.#total = 0;
    this.#below = 0;
    this.#cursor = 0;
    this.#samples = 0;
    this.#blkMax = -Infinity;
    this.#prevMax = NaN;
    this.#blkN = 0;
    this.#qLast = NaN;
    this.#hasPrev = false;
    this.#prevTransit = 0;
    this.#jitter = 0;
  }

  #flush(): void {
    for (const e of this.#main) {
      e.aligned = e.key + this.#d;
      this.#discard.push(e);
      this.flushed += 1;
    }
    this.#main = [];
    for (const e of this.#lateQ) {
      this.#discard.push(e);
      this.flushed += 1;
    }
    this.#lateQ = [];
  }

  /**
   * A new initial latency (ms, finite and >= 0): the floor of D* until MIN_SAMPLES samples; before
   * the first sample D starts from it at once. No effect on a fixed latency; false (nothing
   * changes) for a bad value. (`jitter::Buffer::set_initial`.)
   */
  setInitial(initial: number): boolean {
    if (!(Number.isFinite(initial) && initial >= 0)) return false;
    this.#o.initial = initial;
    if (!this.#fixed && this.#samples === 0) {
      this.#d = this.#initialLatency();
      this.#target = this.#d;
    }
    return true;
  }

  /** Forgets frames (they leave `pop` with deliver: false) and adaptation; counters stay. */
  reset(): void {
    this.#flush();
    this.#restart();
  }

  #slew(t: number): void {
    if (!this.#hasT) {
      this.#hasT = true;
      this.#lastT = t;
      return;
    }
    if (t > this.#lastT) {
      const el = t - this.#lastT;
      this.#lastT = t;
      if (this.#d > this.#target) {
        const r = (this.#d - this.#target) / RELAX_MS;
        const rate = r > MAX_SLEW ? MAX_SLEW : r < SLEW ? SLEW : r;
        const nd = this.#d - el * rate;
        this.#d = nd < this.#target ? this.#target : nd;
      }
    }
  }

  #isSeen(seq: number): boolean {
    const i = seq % SEQ_WINDOW;
    return (this.#seen[i >>> 5] & (1 << (i & 31))) !== 0;
  }

  #inWindow(seq: number): boolean {
    return this.#hasHi && seq <= this.#hi && this.#hi - seq < SEQ_WINDOW;
  }

  #mark(seq: number): void {
    const seen = this.#seen;
    if (!this.#hasHi) {
      this.#hasHi = true;
      this.#hi = seq;
      seen.fill(0);
    } else if (seq > this.#hi) {
      if (seq - this.#hi >= SEQ_WINDOW) {
        seen.fill(0);
      } else {
        for (let x = this.#hi + 1; x <= seq; x += 1) {
          const i = x % SEQ_WINDOW;
          seen[i >>> 5] &= ~(1 << (i & 31));
        }
      }
      this.#hi = seq;
    }
    const i = seq % SEQ_WINDOW;
    seen[i >>> 5] |= 1 << (i & 31);
  }

  #isDuplicate(seq: number): boolean {
    if (!this.#hasHi || seq > this.#hi) return false;
    if (this.#hi - seq < SEQ_WINDOW) return this.#isSeen(seq);
    // Below the window: only a frame still held can be recognised.
    return this.#main.some((e) => e.seq === seq) || this.#lateQ.some((e) => e.seq === seq);
  }

  #releaseSeq(s: number): void {
    if (!this.#hasRel) {
      this.#hasRel = true;
      this.#rel = s;
      this.#lossBase = s;
      return;
    }
    if (s <= this.#rel) return;
    let lo = this.#rel + 1;
    let missing = 0;
    const winLo = this.#hi - SEQ_WINDOW + 1;
    if (lo < winLo) {
      const end = winLo < s ? winLo : s;
      missing += end - lo;
      lo = end;
    }
    while (lo < s) {
      if (!this.#isSeen(lo)) missing += 1;
      lo += 1;
    }
    this.lost += missing;
    this.#rel = s;
  }

  #addSample(transit: number): void {
    const nb = this.#nb;
    const x = Math.floor(transit / this.#width);
    const b = !(x >= 0) ? 0 : x >= nb ? nb - 1 : x;
    let hist = this.#hist;
    if (hist === undefined || b >= hist.length) hist = this.#growHist(b);
    hist[b] += this.#inc;
    this.#total += this.#inc;
    if (b < this.#cursor) this.#below += this.#inc;
    this.#samples += 1;
    // Stale tail: nothing in the last one to two blocks came near the quantile (a spike that is
    // over), so forget faster until something does.
    if (transit > this.#blkMax) this.#blkMax = transit;
    this.#blkN += 1;
    if (this.#blkN === TAIL_BLOCK) {
      this.#prevMax = this.#blkMax;
      this.#blkMax = -Infinity;
      this.#blkN = 0;
    }
    const recent = this.#blkMax > this.#prevMax ? this.#blkMax : this.#prevMax;
    let gap = recent * TAIL_GAP_FRACTION;
    if (!(gap >= TAIL_GAP_MIN_MS)) gap = TAIL_GAP_MIN_MS;
    if (recent + gap < this.#qLast) this.#inc /= FAST_FORGET;
    else this.#inc /= FORGET;
    if (this.#inc > RENORM_AT) {
      this.#inc *= RENORM_BY;
      this.#total *= RENORM_BY;
      let below = 0;
      for (let k = 0; k < hist.length; k++) {
        hist[k] *= RENORM_BY;
        if (k < this.#cursor) below += hist[k];
      }
      this.#below = below;
    }
  }

  /**
   * Makes room for bucket `b`: the histogram holds the buckets up to the largest transit seen, in
   * powers of two from MIN_HIST_BUCKETS up to nb (those past its end count as empty), as the
   * WASM core does.
   */
  #growHist(b: number): Float64Array {
    const old = this.#hist;
    let len = old === undefined ? MIN_HIST_BUCKETS : old.length;
    while (len <= b) len *= 2;
    if (len > this.#nb) len = this.#nb;
    const hist = new Float64Array(len);
    if (old !== undefined) hist.set(old);
    return (this.#hist = hist);
  }

  /** Bucket `k`'s weight (0 past the histogram's end). */
  #bucket(k: number): number {
    const hist = this.#hist!;
    return k < hist.length ? hist[k] : 0;
  }

  #cursorQuantile(): number {
    const goal = this.#o.quantile * this.#total;
    while (this.#cursor + 1 < this.#nb && this.#below + this.#bucket(this.#cursor) < goal) {
      this.#below += this.#bucket(this.#cursor);
      this.#cursor += 1;
    }
    while (this.#cursor > 0 && this.#below >= goal) {
      this.#cursor -= 1;
      this.#below -= this.#bucket(this.#cursor);
    }
    if (this.#cursor === 0) this.#below = 0;
    const h = this.#bucket(this.#cursor);
    let frac = h > 0 ? (goal - this.#below) / h : 0;
    if (frac < 0) frac = 0;
    else if (frac > 1) frac = 1;
    return (this.#cursor + frac) * this.#width;
  }

  /** Any quantile of transit by a full scan (stats and rebasing only); NaN with no samples. */
  quantile(p: number): number {
    if (this.#samples === 0) return NaN;
    const hist = this.#hist!;
    const goal = p * this.#total;
    let acc = 0;
    for (let k = 0; k < hist.length; k++) {
      const h = hist[k];
      if (h > 0 && acc + h >= goal) {
        let frac = (goal - acc) / h;
        if (frac < 0) frac = 0;
        else if (frac > 1) frac = 1;
        return (k + frac) * this.#width;
      }
      acc += h;
    }
    return this.#nb * this.#width;
  }

  #updateTarget(): void {
    if (this.#fixed) return;
    let t: number;
    if (this.#samples < MIN_SAMPLES) {
      // Start: the initial latency, but never below what the few samples so far need, so a path
      // slower than it (or a low frame rate, 50 frames taking 50 s at 1 fps) is not late meanwhile.
      const q = this.quantile(this.#o.quantile) + this.#o.margin;
      t = q > this.#o.initial ? q : this.#o.initial;
    } else {
      const q = this.#cursorQuantile();
      this.#qLast = q;
      t = q + this.#o.margin;
    }
    if (t < this.#o.min) t = this.#o.min;
    if (t > this.#o.max) t = this.#o.max;
    this.#target = t;
    if (t > this.#d) this.#d = t;
  }

  #observe(transit: number): void {
    if (this.#hasPrev) {
      let dd = transit - this.#prevTransit;
      if (dd < 0) dd = -dd;
      this.#jitter += (dd - this.#jitter) / 16;
    }
    this.#hasPrev = true;
    this.#prevTransit = transit;
    this.#addSample(transit);
    this.#updateTarget();
  }

  #bound(): boolean {
    if (this.#main.length + this.#lateQ.length <= this.#o.maxFrames) return false;
    let e = this.#main.shift();
    if (e) e.aligned = e.key + this.#d;
    else e = this.#lateQ.shift();
    if (!e) return false;
    this.overflowDrops += 1;
    this.#releaseSeq(e.seq);
    this.#discard.push(e);
    return true;
  }

  #wild(e: number): boolean {
    const hold = this.#d > this.#o.max ? this.#d : this.#o.max;
    return e > hold + JUMP_EARLY_MS || e < -JUMP_LATE_MS;
  }

  /**
   * A frame arrived: `seq`, sender timestamp `ts`, `off` = sender clock − local clock, local
   * `arrival`. Returns a `PUSH_*` code; invalid input changes nothing but `invalid`.
   */
  push(seq: number, ts: number, off: number, arrival: number): number {
    if (
      !(seq >= 0 && seq <= MAX_SEQ && Math.floor(seq) === seq) || !(Number.isFinite(ts) && ts >= 0) ||
      !Number.isFinite(off) || !Number.isFinite(arrival)
    ) {
      this.invalid += 1;
      return PUSH_INVALID;
    }
    this.received += 1;
    this.#slew(arrival);
    const mapped = ts - off;

    // Timeline: jumps of the sender's timestamps, and the way back to the clock model.
    const wild = this.#wild(mapped + this.#rebase + this.#d - arrival);
    if (wild) {
      const rel = arrival - mapped;
      let dv = rel - this.#wildRef;
      if (dv < 0) dv = -dv;
      if (this.#wildRun === 0 || dv > JUMP_AGREE_MS) {
        this.#wildStart = arrival;
        this.#wildRef = rel;
        this.#wildRun = 0;
      }
      this.#wildRun += 1;
    } else {
      this.#wildRun = 0;
    }
    let sane0 = false;
    if (this.#rebase !== 0) {
      sane0 = !this.#wild(mapped + this.#d - arrival);
      if (sane0 && !wild) {
        if (this.#agreeRun === 0) this.#agreeStart = arrival;
        this.#agreeRun += 1;
      } else {
        this.#agreeRun = 0;
      }
    }
    let wildLate = false;
    if (wild) {
      if (this.#wildRun >= JUMP_RUN && arrival - this.#wildStart >= JUMP_SPAN_MS) {
        let r = 0;
        if (!sane0) {
          const m = this.quantile(0.5);
          r = (arrival - mapped) - (m === m ? m : 0);
        }
        this.discontinuities += 1;
        this.#flush();
        this.#resetSeq();
        this.#rebase = r;
        this.#wildRun = 0;
        this.#agreeRun = 0;
        this.#hasPrev = false;
      } else if (mapped + this.#rebase + this.#d - arrival > 0) {
        this.late += 1;
        return PUSH_LATE;
      } else {
        wildLate = true;
      }
    } else if (this.#agreeRun >= JUMP_RUN && arrival - this.#agreeStart >= JUMP_SPAN_MS) {
      const r = this.#rebase;
      for (const e of this.#main) e.key -= r;
      this.discontinuities += 1;
      this.#rebase = 0;
      this.#wildRun = 0;
      this.#agreeRun = 0;
      this.#hasPrev = false;
    }

    if (this.#isDuplicate(seq)) {
      this.duplicates += 1;
      return PUSH_DUPLICATE;
    }
    if (this.#hasHi && seq < this.#hi) this.reordered += 1;
    const belated = this.#hasRel && seq < this.#rel;
    // Counted lost when a later frame left; it did arrive after all.
    if (belated && seq > this.#lossBase && this.#inWindow(seq)) this.lost -= 1;
    this.#mark(seq);
    const base = mapped + this.#rebase;
    // The first sample (since creation or a reset) starts the timeline: observed before it is
    // judged, so D has risen to cover it (adaptive mode). Later frames are judged against the D
    // they found. (jitter.rs)
    const first = this.#samples === 0 && !wildLate;
    if (first) this.#observe(arrival - base);
    const playout = base + this.#d;
    const isLate = belated || arrival > playout;
    if (!wildLate && !first) this.#observe(arrival - base);
    if (isLate) {
      if (belated) this.belated += 1;
      if (!this.#o.deliverLate) {
        this.late += 1;
        return PUSH_LATE;
      }
      this.lateDelivered += 1;
      const lateBy = arrival - playout;
      const due = playout > arrival ? playout : arrival;
      insertSorted(this.#lateQ, { seq, ts, key: due, aligned: playout, lateBy: lateBy > 0 ? lateBy : 0 });
      return this.#bound() ? PUSH_OVERFLOW : PUSH_LATE_DELIVER;
    }
    insertSorted(this.#main, { seq, ts, key: base, aligned: 0, lateBy: 0 });
    return this.#bound() ? PUSH_OVERFLOW : PUSH_BUFFERED;
  }

  /** Local time at which `pop` next returns a frame: −∞ with discards waiting, +∞ when empty. */
  nextDue(): number {
    if (this.#discard.length > 0) return -Infinity;
    let t = Infinity;
    if (this.#main.length > 0) t = this.#main[0].key + this.#d;
    if (this.#lateQ.length > 0 && this.#lateQ[0].key < t) t = this.#lateQ[0].key;
    return t;
  }

  /**
   * The next frame due at local time `now`: writes `POP_LEN` slots into `out` and returns true,
   * or returns false.
   */
  pop(now: number, out: Float64Array): boolean {
    const x = this.#discard.shift();
    if (x) return write(out, x.seq, x.ts, x.aligned, 0, 0, 0);
    if (Number.isNaN(now)) return false;
    if (Number.isFinite(now)) this.#slew(now);
    const m = this.#main.length > 0 && this.#main[0].key + this.#d <= now ? this.#main[0] : undefined;
    const l = this.#lateQ.length > 0 && this.#lateQ[0].key <= now ? this.#lateQ[0] : undefined;
    if (!m && !l) return false;
    let takeLate: boolean;
    if (!m) takeLate = true;
    else if (!l) takeLate = false;
    else {
      const ma = m.key + this.#d;
      takeLate = l.aligned < ma || (l.aligned === ma && l.seq < m.seq);
    }
    this.delivered += 1;
    if (takeLate) {
      const e = this.#lateQ.shift()!;
      this.#releaseSeq(e.seq);
      return write(out, e.seq, e.ts, e.aligned, 1, 1, e.lateBy);
    }
    const e = this.#main.shift()!;
    const aligned = e.key + this.#d;
    this.#releaseSeq(e.seq);
    return write(out, e.seq, e.ts, aligned, 1, 0, 0);
  }

  /** Writes the statistics (`STATS_LEN` slots in `STAT_KEYS` order). */
  writeStats(out: Float64Array): void {
    const main = this.#main;
    out[0] = this.received;
    out[1] = this.delivered;
    out[2] = this.late;
    out[3] = this.belated;
    out[4] = this.lateDelivered;
    out[5] = this.lost;
    out[6] = this.duplicates;
    out[7] = this.reordered;
    out[8] = this.overflowDrops;
    out[9] = this.discontinuities;
    out[10] = this.invalid;
    out[11] = this.flushed;
    out[12] = this.#d;
    out[13] = this.#target;
    out[14] = this.#o.min;
    out[15] = this.#o.max;
    out[16] = this.quantile(0.5);
    out[17] = this.quantile(0.99);
    out[18] = this.#jitter;
    out[19] = main.length + this.#lateQ.length;
    out[20] = main.length > 0 ? main[main.length - 1].key - main[0].key : 0;
    out[21] = this.#discard.length;
    out[22] = this.#rebase;
    out[23] = this.#samples;
  }
}

function write(
  out: Float64Array,
  seq: number,
  ts: number,
  aligned: number,
  deliver: number,
  late: number,
  lateBy: number,
): true {
  out[0] = seq;
  out[1] = ts;
  out[2] = aligned;
  out[3] = deliver;
  out[4] = late;
  out[5] = lateBy;
  return true;
}
