//! Jitter buffer (research notes §4.2). Pure math: no clock, no randomness, no I/O; every call
//! takes the local times it needs (ms, f64), so `src/stream/_jitter_ts.ts` (the same operations
//! in the same order) gives bit-identical results on the same trace. Payloads stay in JS: a frame
//! here is just (seq, ts).
//!
//! Schedule: base = (ts − offset) + rebase, playout = base + D. Frames leave `pop` in playout
//! order (ties by seq), never before their playout time.
//!
//! * Adaptive D: a forgetting histogram of transit = arrival − base, 1 ms buckets over
//!   [0, maxLatency] (bucket width doubles while that needs more than `MAX_BUCKETS` buckets;
//!   transit outside the range lands in the end buckets). Forgetting: the n-th sample weighs
//!   FORGET^−n (the increment grows instead of every bucket shrinking) and all weights are scaled
//!   by 2^−200 (exact) once the increment passes 2^200. Stale tail: while the largest transit of
//!   the last one to two blocks of `TAIL_BLOCK` samples, plus max(2 ms, a quarter of it), stays
//!   below the q-quantile (the tail is left over from a spike that has ended: a start-up burst, a
//!   congested minute), samples weigh FAST_FORGET^−n instead, so D* comes back down in seconds
//!   rather than the tens of seconds FORGET takes. The q-quantile is tracked by a cursor
//!   that moves a bucket or two per sample (interpolated within its bucket). D* = clamp(Q_q +
//!   margin, min, max), at least the initial latency until `MIN_SAMPLES` samples (more when the
//!   first samples need it). D rises to D* at once; it falls towards D* at (D − D*) / `RELAX_MS`
//!   ms per ms of local time, kept between `SLEW` and `MAX_SLEW` (far above D* it comes down at
//!   `MAX_SLEW`, then relaxes with a time constant of `RELAX_MS`, the last few ms at `SLEW`).
//!   Only frames that arrive feed
//!   the histogram (loss never raises D); late ones do. The initial latency may be replaced
//!   (`set_initial`: a connection's transit estimate while the stream is young). The first sample
//!   since creation or a reset is observed before its frame is judged, so an adaptive D covers it:
//!   a stream's first frame starts its timeline and is never late.
//! * Sequence window: one bit per seq over the last `SEQ_WINDOW` seqs below the highest seen.
//!   A seen seq is a duplicate. When a frame is released (or evicted), the unseen seqs between
//!   it and the previous release are counted lost; one of those arriving later is late and
//!   `belated`, and `lost` goes back down.
//! * Discontinuity: a frame is wild when its playout lies over `JUMP_LATE_MS` before its arrival
//!   or over max(maxLatency, D) + `JUMP_EARLY_MS` after it. `JUMP_RUN` wild frames in a row that
//!   agree (arrival − mapped ts within `JUMP_AGREE_MS` of the first's) and span at least
//!   `JUMP_SPAN_MS` of arrival time (so a burst after a network stall does not qualify) flush the buffer (deliver: false) and rebase the stream so that the frame's
//!   transit equals the transit median; wild frames before that are dropped (late) and feed
//!   nothing. While rebased, `JUMP_RUN` frames in a row over `JUMP_SPAN_MS` that fit the
//!   un-rebased timeline (the clock model) switch back to it, shifting buffered frames.

use std::collections::VecDeque;

/// Seqs remembered below the highest seen (duplicate and loss window).
pub const SEQ_WINDOW: u64 = 4096;
const SEQ_WORDS: usize = (SEQ_WINDOW / 32) as usize;
/// Largest seq (2^53 − 1: every integer up to it is exact in f64).
pub const MAX_SEQ: f64 = 9007199254740991.0;
/// Histogram weight kept per sample: time constant 333 samples (6.7 s at 50 fps). The notes'
/// 0.9993 is too slow for JB-3 (simulated over 20 seeds: D* reaches the new P99 in up to 11 s,
/// and D is not back within 60 s); 0.997 takes ≤ 4.3 s and ≤ 29 s, with the same JB-1/JB-2
/// late rates and mean D.
pub const FORGET: f64 = 0.997;
/// Weight kept per sample while the histogram's tail is stale (time constant 33 samples).
pub const FAST_FORGET: f64 = 0.97;
/// Samples per block of the stale-tail check, which looks at the largest transit of the last one
/// to two blocks.
pub const TAIL_BLOCK: u32 = 50;
/// The tail is stale when that largest transit plus max(`TAIL_GAP_MIN_MS`, `TAIL_GAP_FRACTION`
/// of it) is still below the quantile.
pub const TAIL_GAP_MIN_MS: f64 = 2.0;
/// See `TAIL_GAP_MIN_MS`.
pub const TAIL_GAP_FRACTION: f64 = 0.25;
/// Samples before the histogram replaces the initial latency.
pub const MIN_SAMPLES: f64 = 50.0;
/// Fewest histogram buckets held once there is a sample (it grows by doubling as transit needs).
pub const MIN_HIST_BUCKETS: usize = 32;
/// Most histogram buckets (12 KiB of f64).
pub const MAX_BUCKETS: f64 = 1536.0;
/// Slowest decrease of D while above D*, ms per ms of local time (5 ms/s).
pub const SLEW: f64 = 0.005;
/// Fastest decrease of D, ms per ms of local time (50 ms/s: output spacing shrinks by at most
/// 5%). With `SLEW` alone a start-up spike to 440 ms took 80 s to come back to a 45 ms D*.
pub const MAX_SLEW: f64 = 0.05;
/// Time constant of D's fall towards D* between `SLEW` and `MAX_SLEW` (ms).
pub const RELAX_MS: f64 = 2000.0;
/// A frame due more than this long before its arrival is wild (ms).
pub const JUMP_LATE_MS: f64 = 1000.0;
/// A frame due more than max(maxLatency, D) plus this after its arrival is wild (ms).
pub const JUMP_EARLY_MS: f64 = 1000.0;
/// Consecutive wild (or, when rebased, clock-consistent) frames that change the timeline.
pub const JUMP_RUN: u32 = 3;
/// …spanning at least this much arrival time (ms).
pub const JUMP_SPAN_MS: f64 = 50.0;
/// Wild frames continue a run only while their arrival − mapped ts stays this close (ms).
pub const JUMP_AGREE_MS: f64 = 1000.0;
const RENORM_AT: f64 = 1.6069380442589903e60; // 2^200
const RENORM_BY: f64 = 6.223015277861142e-61; // 2^-200

/// `push` results.
pub const PUSH_INVALID: i32 = -1;
pub const PUSH_BUFFERED: i32 = 0;
pub const PUSH_DUPLICATE: i32 = 1;
pub const PUSH_LATE: i32 = 2;
pub const PUSH_LATE_DELIVER: i32 = 3;
pub const PUSH_OVERFLOW: i32 = 4;

/// Slots written by `write_stats`, in this order.
pub const STATS_LEN: usize = 24;
/// Slots written by `pop`: seq, ts, alignedTime, deliver, late, lateByMs.
pub const POP_LEN: usize = 6;
/// The slot after them: `next_due()` as it stands once a push or pop has returned, so the caller
/// can schedule its next wake-up (and tell whether another frame is due) without a second call.
pub const DUE_SLOT: usize = POP_LEN;

/// Construction options (validated by `Options::valid`).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Fixed latency (ms); NaN selects the adaptive mode.
    pub latency: f64,
    pub min: f64,
    pub max: f64,
    pub deliver_late: bool,
    pub max_frames: f64,
    pub initial: f64,
    pub margin: f64,
    pub quantile: f64,
}

impl Options {
    pub fn valid(&self) -> bool {
        let fin = |x: f64| x.is_finite() && x >= 0.0;
        (self.latency.is_nan() || fin(self.latency))
            && fin(self.min)
            && fin(self.max)
            && self.max >= self.min
            && fin(self.max_frames)
            && self.max_frames >= 1.0
            && self.max_frames <= 1048576.0
            && self.max_frames.floor() == self.max_frames
            && fin(self.initial)
            && fin(self.margin)
            && self.quantile > 0.0
            && self.quantile <= 1.0
    }
}

#[derive(Clone, Copy)]
struct Entry {
    seq: f64,
    ts: f64,
    /// main: base; late: due time; discard: unused.
    key: f64,
    aligned: f64,
    late_by: f64,
}

/// One popped frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Popped {
    pub seq: f64,
    pub ts: f64,
    pub aligned: f64,
    pub deliver: bool,
    pub late: bool,
    pub late_by: f64,
}

pub struct Buffer {
    o: Options,
    fixed: bool,
    main: VecDeque<Entry>,
    late_q: VecDeque<Entry>,
    discard: VecDeque<Entry>,
    // Sequence state.
    has_hi: bool,
    hi: f64,
    seen: [u32; SEQ_WORDS],
    has_rel: bool,
    rel: f64,
    loss_base: f64,
    // Timeline.
    rebase: f64,
    wild_run: u32,
    wild_start: f64,
    wild_ref: f64,
    agree_run: u32,
    agree_start: f64,
    // Playout delay.
    d: f64,
    target: f64,
    has_t: bool,
    last_t: f64,
    // Histogram (allocated on the first sample).
    hist: Vec<f64>,
    nb: usize,
    width: f64,
    inc: f64,
    total: f64,
    below: f64,
    cursor: usize,
    samples: f64,
    // Stale-tail check: the largest transit of the current block and of the previous one (NaN
    // before the first full block), and the quantile the last sample gave (NaN before).
    blk_max: f64,
    prev_max: f64,
    blk_n: u32,
    q_last: f64,
    // RFC 3550 jitter.
    has_prev: bool,
    prev_transit: f64,
    jitter: f64,
    // Counters.
    pub received: f64,
    pub delivered: f64,
    pub late: f64,
    pub belated: f64,
    pub late_delivered: f64,
    pub lost: f64,
    pub duplicates: f64,
    pub reordered: f64,
    pub overflow_drops: f64,
    pub discontinuities: f64,
    pub invalid: f64,
    pub flushed: f64,
}

fn bit(seq: f64) -> (usize, u32) {
    let i = (seq as u64 % SEQ_WINDOW) as usize;
    (i >> 5, 1u32 << (i & 31))
}

impl Buffer {
    /// A new buffer; `o` must be valid (`Options::valid`).
    pub fn new(o: Options) -> Buffer {
        let fixed = !o.latency.is_nan();
        let range = if fixed && o.latency > o.max {
            o.latency
        } else {
            o.max
        };
        let mut width = 1.0;
        while range / width > MAX_BUCKETS - 1.0 {
            width *= 2.0;
        }
        let nb = (range / width).floor() as usize + 1;
        let mut b = Buffer {
            o,
            fixed,
            main: VecDeque::new(),
            late_q: VecDeque::new(),
            discard: VecDeque::new(),
            has_hi: false,
            hi: 0.0,
            seen: [0; SEQ_WORDS],
            has_rel: false,
            rel: 0.0,
            loss_base: 0.0,
            rebase: 0.0,
            wild_run: 0,
            wild_start: 0.0,
            wild_ref: 0.0,
            agree_run: 0,
            agree_start: 0.0,
            d: 0.0,
            target: 0.0,
            has_t: false,
            last_t: 0.0,
            hist: Vec::new(),
            nb,
            width,
            inc: 1.0,
            total: 0.0,
            below: 0.0,
            cursor: 0,
            samples: 0.0,
            blk_max: f64::NEG_INFINITY,
            prev_max: f64::NAN,
            blk_n: 0,
            q_last: f64::NAN,
            has_prev: false,
            prev_transit: 0.0,
            jitter: 0.0,
            received: 0.0,
            delivered: 0.0,
            late: 0.0,
            belated: 0.0,
            late_delivered: 0.0,
            lost: 0.0,
            duplicates: 0.0,
            reordered: 0.0,
            overflow_drops: 0.0,
            discontinuities: 0.0,
            invalid: 0.0,
            flushed: 0.0,
        };
        b.restart();
        b
    }

    /// Heap bytes held besides the struct itself (histogram and queues).
    pub fn heap_bytes(&self) -> usize {
        let e = core::mem::size_of::<Entry>();
        self.hist.capacity() * 8
            + (self.main.capacity() + self.late_q.capacity() + self.discard.capacity()) * e
    }

    fn initial_latency(&self) -> f64 {
        if self.fixed {
            return self.o.latency;
        }
        let mut x = self.o.initial;
        if x < self.o.min {
            x = self.o.min;
        }
        if x > self.o.max {
            x = self.o.max;
        }
        x
    }

    fn reset_seq(&mut self) {
        self.has_hi = false;
        self.hi = 0.0;
        self.seen = [0; SEQ_WORDS];
        self.has_rel = false;
        self.rel = 0.0;
        self.loss_base = 0.0;
    }

    /// Adaptation, sequence and timeline state back to the start (counters and frames stay).
    fn restart(&mut self) {
        self.reset_seq();
        self.rebase = 0.0;
        self.wild_run = 0;
        self.agree_run = 0;
        self.d = self.initial_latency();
        self.target = self.d;
        self.has_t = false;
        self.last_t = 0.0;
        self.hist = Vec::new();
        self.inc = 1.0;
        self.total = 0.0;
        self.below = 0.0;
        self.cursor = 0;
        self.samples = 0.0;
        self.blk_max = f64::NEG_INFINITY;
        self.prev_max = f64::NAN;
        self.blk_n = 0;
        self.q_last = f64::NAN;
        self.has_prev = false;
        self.prev_transit = 0.0;
        self.jitter = 0.0;
    }

    /// Moves every buffered frame to the discard queue (deliver: false).
    fn flush(&mut self) {
        while let Some(mut e) = self.main.pop_front() {
            e.aligned = e.key + self.d;
            self.discard.push_back(e);
            self.flushed += 1.0;
        }
        while let Some(e) = self.late_q.pop_front() {
            self.discard.push_back(e);
            self.flushed += 1.0;
        }
    }

    /// A new initial latency (ms, finite and >= 0): the floor of D* until `MIN_SAMPLES` samples.
    /// A connection refreshes it from what its other streams see while this one is young. Before
    /// the first sample D starts from it at once; after, D follows D* as usual (up at once, down
    /// slewed) from the next sample. No effect on a fixed latency; false (nothing changes) for a
    /// bad value.
    pub fn set_initial(&mut self, initial: f64) -> bool {
        if !(initial.is_finite() && initial >= 0.0) {
            return false;
        }
        self.o.initial = initial;
        if !self.fixed && self.samples == 0.0 {
            self.d = self.initial_latency();
            self.target = self.d;
        }
        true
    }

    /// Forgets frames (they leave `pop` with deliver: false) and adaptation; counters stay.
    pub fn reset(&mut self) {
        self.flush();
        self.restart();
    }

    fn slew(&mut self, t: f64) {
        if !self.has_t {
            self.has_t = true;
            self.last_t = t;
            return;
        }
        if t > self.last_t {
            let el = t - self.last_t;
            self.last_t = t;
            if self.d > self.target {
                let r = (self.d - self.target) / RELAX_MS;
                let rate = if r > MAX_SLEW { MAX_SLEW } else if r < SLEW { SLEW } else { r };
                let nd = self.d - el * rate;
                self.d = if nd < self.target { self.target } else { nd };
            }
        }
    }

    fn is_seen(&self, seq: f64) -> bool {
        let (w, m) = bit(seq);
        self.seen[w] & m != 0
    }

    fn in_window(&self, seq: f64) -> bool {
        self.has_hi && seq <= self.hi && self.hi - seq < SEQ_WINDOW as f64
    }

    fn mark(&mut self, seq: f64) {
        if !self.has_hi {
            self.has_hi = true;
            self.hi = seq;
            self.seen = [0; SEQ_WORDS];
        } else if seq > self.hi {
            if seq - self.hi >= SEQ_WINDOW as f64 {
                self.seen = [0; SEQ_WORDS];
            } else {
                let mut x = self.hi + 1.0;
                while x <= seq {
                    let (w, m) = bit(x);
                    self.seen[w] &= !m;
                    x += 1.0;
                }
            }
            self.hi = seq;
        }
        let (w, m) = bit(seq);
        self.seen[w] |= m;
    }

    fn is_duplicate(&self, seq: f64) -> bool {
        if !self.has_hi || seq > self.hi {
            return false;
        }
        if self.hi - seq < SEQ_WINDOW as f64 {
            return self.is_seen(seq);
        }
        // Below the window: only a frame still held can be recognised.
        self.main.iter().any(|e| e.seq == seq) || self.late_q.iter().any(|e| e.seq == seq)
    }

    /// A frame with `seq` leaves (released or evicted): counts the unseen seqs since the last.
    fn release_seq(&mut self, s: f64) {
        if !self.has_rel {
            self.has_rel = true;
            self.rel = s;
            self.loss_base = s;
            return;
        }
        if s <= self.rel {
            return;
        }
        let mut lo = self.rel + 1.0;
        let mut missing = 0.0;
        let win_lo = self.hi - SEQ_WINDOW as f64 + 1.0;
        if lo < win_lo {
            let end = if win_lo < s { win_lo } else { s };
            missing += end - lo;
            lo = end;
        }
        while lo < s {
            if !self.is_seen(lo) {
                missing += 1.0;
            }
            lo += 1.0;
        }
        self.lost += missing;
        self.rel = s;
    }

    // ---- Histogram ----

    /// Makes room for bucket `b`: the histogram holds the buckets up to the largest transit seen,
    /// in powers of two from `MIN_HIST_BUCKETS` up to `nb` (the buckets past its end count as
    /// empty). A stream on a short path keeps a few hundred bytes, not `nb` × 8 (8 KiB at the
    /// default `maxLatencyMs`): thousands of streams open at once each touched fresh memory.
    fn grow_hist(&mut self, b: usize) {
        let mut len = if self.hist.is_empty() {
            MIN_HIST_BUCKETS
        } else {
            self.hist.len()
        };
        while len <= b {
            len *= 2;
        }
        if len > self.nb {
            len = self.nb;
        }
        self.hist.reserve_exact(len - self.hist.len());
        self.hist.resize(len, 0.0);
    }

    /// Bucket `k`'s weight (0 past the histogram's end).
    #[inline]
    fn bucket(&self, k: usize) -> f64 {
        if k < self.hist.len() {
            self.hist[k]
        } else {
            0.0
        }
    }

    fn add_sample(&mut self, transit: f64) {
        let x = (transit / self.width).floor();
        let b = if !(x >= 0.0) {
            0
        } else if x >= self.nb as f64 {
            self.nb - 1
        } else {
            x as usize
        };
        if b >= self.hist.len() {
            self.grow_hist(b);
        }
        self.hist[b] += self.inc;
        self.total += self.inc;
        if b < self.cursor {
            self.below += self.inc;
        }
        self.samples += 1.0;
        // Stale tail: nothing in the last one to two blocks came near the quantile (a spike
        // that is over, such as a start-up burst), so forget faster until something does.
        if transit > self.blk_max {
            self.blk_max = transit;
        }
        self.blk_n += 1;
        if self.blk_n == TAIL_BLOCK {
            self.prev_max = self.blk_max;
            self.blk_max = f64::NEG_INFINITY;
            self.blk_n = 0;
        }
        let recent = if self.blk_max > self.prev_max {
            self.blk_max
        } else {
            self.prev_max
        };
        let mut gap = recent * TAIL_GAP_FRACTION;
        if !(gap >= TAIL_GAP_MIN_MS) {
            gap = TAIL_GAP_MIN_MS;
        }
        if recent + gap < self.q_last {
            self.inc /= FAST_FORGET;
        } else {
            self.inc /= FORGET;
        }
        if self.inc > RENORM_AT {
            self.inc *= RENORM_BY;
            self.total *= RENORM_BY;
            let mut below = 0.0;
            for k in 0..self.hist.len() {
                self.hist[k] *= RENORM_BY;
                if k < self.cursor {
                    below += self.hist[k];
                }
            }
            self.below = below;
        }
    }

    /// The `quantile` option's quantile, moving the cursor (amortised O(1) per sample).
    fn cursor_quantile(&mut self) -> f64 {
        let goal = self.o.quantile * self.total;
        while self.cursor + 1 < self.nb && self.below + self.bucket(self.cursor) < goal {
            self.below += self.bucket(self.cursor);
            self.cursor += 1;
        }
        while self.cursor > 0 && self.below >= goal {
            self.cursor -= 1;
            self.below -= self.bucket(self.cursor);
        }
        if self.cursor == 0 {
            self.below = 0.0;
        }
        let h = self.bucket(self.cursor);
        let mut frac = if h > 0.0 {
            (goal - self.below) / h
        } else {
            0.0
        };
        if frac < 0.0 {
            frac = 0.0;
        } else if frac > 1.0 {
            frac = 1.0;
        }
        (self.cursor as f64 + frac) * self.width
    }

    /// Any quantile by a full scan (stats and rebasing only); NaN with no samples.
    pub fn quantile(&self, p: f64) -> f64 {
        if self.samples == 0.0 {
            return f64::NAN;
        }
        let goal = p * self.total;
        let mut acc = 0.0;
        for k in 0..self.hist.len() {
            let h = self.hist[k];
            if h > 0.0 && acc + h >= goal {
                let mut frac = (goal - acc) / h;
                if frac < 0.0 {
                    frac = 0.0;
                } else if frac > 1.0 {
                    frac = 1.0;
                }
                return (k as f64 + frac) * self.width;
            }
            acc += h;
        }
        self.nb as f64 * self.width
    }

    fn update_target(&mut self) {
        if self.fixed {
            return;
        }
        let mut t = if self.samples < MIN_SAMPLES {
            // Start: the initial latency, but never below what the few samples so far need.
            let q = self.quantile(self.o.quantile) + self.o.margin;
            if q > self.o.initial {
                q
            } else {
                self.o.initial
            }
        } else {
            let q = self.cursor_quantile();
            self.q_last = q;
            q + self.o.margin
        };
        if t < self.o.min {
            t = self.o.min;
        }
        if t > self.o.max {
            t = self.o.max;
        }
        self.target = t;
        if t > self.d {
            self.d = t;
        }
    }

    fn observe(&mut self, transit: f64) {
        if self.has_prev {
            let mut dd = transit - self.prev_transit;
            if dd < 0.0 {
                dd = -dd;
            }
            self.jitter += (dd - self.jitter) / 16.0;
        }
        self.has_prev = true;
        self.prev_transit = transit;
        self.add_sample(transit);
        self.update_target();
    }

    // ---- Frames ----

    fn insert_main(&mut self, e: Entry) {
        let mut i = self.main.len();
        while i > 0 {
            let p = self.main[i - 1];
            if p.key < e.key || (p.key == e.key && p.seq < e.seq) {
                break;
            }
            i -= 1;
        }
        self.main.insert(i, e);
    }

    fn insert_late(&mut self, e: Entry) {
        let mut i = self.late_q.len();
        while i > 0 {
            let p = self.late_q[i - 1];
            if p.key < e.key || (p.key == e.key && p.seq < e.seq) {
                break;
            }
            i -= 1;
        }
        self.late_q.insert(i, e);
    }

    /// Evicts the oldest frame when more than `max_frames` wait; true when it did.
    fn bound(&mut self) -> bool {
        if (self.main.len() + self.late_q.len()) as f64 <= self.o.max_frames {
            return false;
        }
        let e = match self.main.pop_front() {
            Some(mut e) => {
                e.aligned = e.key + self.d;
                e
            }
            None => match self.late_q.pop_front() {
                Some(e) => e,
                None => return false,
            },
        };
        self.overflow_drops += 1.0;
        self.release_seq(e.seq);
        self.discard.push_back(e);
        true
    }

    fn wild(&self, e: f64) -> bool {
        let hold = if self.d > self.o.max {
            self.d
        } else {
            self.o.max
        };
        e > hold + JUMP_EARLY_MS || e < -JUMP_LATE_MS
    }

    /// A frame arrived: `seq`, sender timestamp `ts`, `off` = sender clock − local clock, local
    /// `arrival`. Returns a `PUSH_*` code; invalid input changes nothing but `invalid`.
    pub fn push(&mut self, seq: f64, ts: f64, off: f64, arrival: f64) -> i32 {
        if !(seq >= 0.0 && seq <= MAX_SEQ && seq.floor() == seq)
            || !(ts.is_finite() && ts >= 0.0)
            || !off.is_finite()
            || !arrival.is_finite()
        {
            self.invalid += 1.0;
            return PUSH_INVALID;
        }
        self.received += 1.0;
        self.slew(arrival);
        let mapped = ts - off;

        // Timeline: jumps of the sender's timestamps, and the way back to the clock model.
        let wild = self.wild(mapped + self.rebase + self.d - arrival);
        if wild {
            let rel = arrival - mapped;
            let mut dv = rel - self.wild_ref;
            if dv < 0.0 {
                dv = -dv;
            }
            if self.wild_run == 0 || dv > JUMP_AGREE_MS {
                self.wild_start = arrival;
                self.wild_ref = rel;
                self.wild_run = 0;
            }
            self.wild_run += 1;
        } else {
            self.wild_run = 0;
        }
        let mut sane0 = false;
        if self.rebase != 0.0 {
            sane0 = !self.wild(mapped + self.d - arrival);
            if sane0 && !wild {
                if self.agree_run == 0 {
                    self.agree_start = arrival;
                }
                self.agree_run += 1;
            } else {
                self.agree_run = 0;
            }
        }
        let mut wild_late = false;
        if wild {
            if self.wild_run >= JUMP_RUN && arrival - self.wild_start >= JUMP_SPAN_MS {
                let r = if sane0 {
                    0.0
                } else {
                    let m = self.quantile(0.5);
                    (arrival - mapped) - (if m == m { m } else { 0.0 })
                };
                self.discontinuities += 1.0;
                self.flush();
                self.reset_seq();
                self.rebase = r;
                self.wild_run = 0;
                self.agree_run = 0;
                self.has_prev = false;
            } else if mapped + self.rebase + self.d - arrival > 0.0 {
                self.late += 1.0;
                return PUSH_LATE;
            } else {
                wild_late = true;
            }
        } else if self.agree_run >= JUMP_RUN && arrival - self.agree_start >= JUMP_SPAN_MS {
            let r = self.rebase;
            for e in self.main.iter_mut() {
                e.key -= r;
            }
            self.discontinuities += 1.0;
            self.rebase = 0.0;
            self.wild_run = 0;
            self.agree_run = 0;
            self.has_prev = false;
        }

        if self.is_duplicate(seq) {
            self.duplicates += 1.0;
            return PUSH_DUPLICATE;
        }
        if self.has_hi && seq < self.hi {
            self.reordered += 1.0;
        }
        let belated = self.has_rel && seq < self.rel;
        if belated && seq > self.loss_base && self.in_window(seq) {
            // Counted lost when a later frame left; it did arrive after all.
            self.lost -= 1.0;
        }
        self.mark(seq);
        let base = mapped + self.rebase;
        // The first sample (since creation or a reset) starts the timeline: it is observed before
        // it is judged, so D has risen to cover it (adaptive mode) and a stream's first frame is
        // not dropped for want of history. Every later frame is judged against the D it found.
        let first = self.samples == 0.0 && !wild_late;
        if first {
            self.observe(arrival - base);
        }
        let playout = base + self.d;
        let is_late = belated || arrival > playout;
        if !wild_late && !first {
            self.observe(arrival - base);
        }
        if is_late {
            if belated {
                self.belated += 1.0;
            }
            if !self.o.deliver_late {
                self.late += 1.0;
                return PUSH_LATE;
            }
            self.late_delivered += 1.0;
            let late_by = arrival - playout;
            let due = if playout > arrival { playout } else { arrival };
            self.insert_late(Entry {
                seq,
                ts,
                key: due,
                aligned: playout,
                late_by: if late_by > 0.0 { late_by } else { 0.0 },
            });
            return if self.bound() {
                PUSH_OVERFLOW
            } else {
                PUSH_LATE_DELIVER
            };
        }
        self.insert_main(Entry {
            seq,
            ts,
            key: base,
            aligned: 0.0,
            late_by: 0.0,
        });
        if self.bound() {
            PUSH_OVERFLOW
        } else {
            PUSH_BUFFERED
        }
    }

    /// Local time at which `pop` next returns a frame: −∞ with discarded frames waiting, +∞
    /// when empty.
    pub fn next_due(&self) -> f64 {
        if !self.discard.is_empty() {
            return f64::NEG_INFINITY;
        }
        let mut t = f64::INFINITY;
        if let Some(e) = self.main.front() {
            t = e.key + self.d;
        }
        if let Some(e) = self.late_q.front() {
            if e.key < t {
                t = e.key;
            }
        }
        t
    }

    /// The next frame due at local time `now`, if any.
    pub fn pop(&mut self, now: f64) -> Option<Popped> {
        if let Some(e) = self.discard.pop_front() {
            return Some(Popped {
                seq: e.seq,
                ts: e.ts,
                aligned: e.aligned,
                deliver: false,
                late: false,
                late_by: 0.0,
            });
        }
        if now.is_nan() {
            return None;
        }
        if now.is_finite() {
            self.slew(now);
        }
        let m = match self.main.front() {
            Some(e) if e.key + self.d <= now => Some((e.seq, e.key + self.d)),
            _ => None,
        };
        let l = match self.late_q.front() {
            Some(e) if e.key <= now => Some((e.seq, e.aligned)),
            _ => None,
        };
        let take_late = match (m, l) {
            (None, None) => return None,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some((ms, ma)), Some((ls, la))) => la < ma || (la == ma && ls < ms),
        };
        self.delivered += 1.0;
        if take_late {
            let e = self.late_q.pop_front().unwrap();
            self.release_seq(e.seq);
            Some(Popped {
                seq: e.seq,
                ts: e.ts,
                aligned: e.aligned,
                deliver: true,
                late: true,
                late_by: e.late_by,
            })
        } else {
            let e = self.main.pop_front().unwrap();
            let aligned = e.key + self.d;
            self.release_seq(e.seq);
            Some(Popped {
                seq: e.seq,
                ts: e.ts,
                aligned,
                deliver: true,
                late: false,
                late_by: 0.0,
            })
        }
    }

    /// Writes the statistics (`STATS_LEN` slots, order as in `src/stream/_jitter_ts.ts`).
    pub fn write_stats(&self, out: &mut [f64]) {
        let span = match (self.main.front(), self.main.back()) {
            (Some(a), Some(b)) => b.key - a.key,
            _ => 0.0,
        };
        let s = [
            self.received,
            self.delivered,
            self.late,
            self.belated,
            self.late_delivered,
            self.lost,
            self.duplicates,
            self.reordered,
            self.overflow_drops,
            self.discontinuities,
            self.invalid,
            self.flushed,
            self.d,
            self.target,
            self.o.min,
            self.o.max,
            self.quantile(0.5),
            self.quantile(0.99),
            self.jitter,
            (self.main.len() + self.late_q.len()) as f64,
            span,
            self.discard.len() as f64,
            self.rebase,
            self.samples,
        ];
        out[..STATS_LEN].copy_from_slice(&s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            latency: f64::NAN,
            min: 0.0,
            max: 1000.0,
            deliver_late: false,
            max_frames: 4096.0,
            initial: 80.0,
            margin: 2.0,
            quantile: 0.99,
        }
    }

    fn fixed(latency: f64) -> Options {
        Options { latency, ..opts() }
    }

    use crate::test_rng::Rng;

    fn drain(b: &mut Buffer, now: f64) -> Vec<Popped> {
        let mut v = vec![];
        while let Some(p) = b.pop(now) {
            v.push(p);
        }
        v
    }

    fn stats(b: &Buffer) -> [f64; STATS_LEN] {
        let mut s = [0.0; STATS_LEN];
        b.write_stats(&mut s);
        s
    }

    #[test]
    fn options_are_checked() {
        assert!(opts().valid());
        assert!(fixed(120.0).valid());
        assert!(!Options {
            min: 10.0,
            max: 5.0,
            ..opts()
        }
        .valid());
        assert!(!Options {
            quantile: 0.0,
            ..opts()
        }
        .valid());
        assert!(!Options {
            max_frames: 0.5,
            ..opts()
        }
        .valid());
        assert!(!Options {
            margin: f64::INFINITY,
            ..opts()
        }
        .valid());
        assert!(!fixed(-1.0).valid());
    }

    #[test]
    fn fixed_latency_is_exact_and_never_early() {
        let mut b = Buffer::new(fixed(120.0));
        let off = 5000.0;
        for i in 0..50 {
            let ts = 1000.0 + i as f64 * 20.0;
            let arrival = ts - off + 10.0 + (i % 5) as f64 * 4.0;
            assert_eq!(b.push(i as f64, ts, off, arrival), PUSH_BUFFERED);
        }
        let first = 1000.0 - off + 120.0;
        assert_eq!(b.next_due(), first);
        assert!(b.pop(first - 0.001).is_none());
        let mut n = 0;
        let mut t = first;
        while n < 50 {
            for p in drain(&mut b, t) {
                assert_eq!(p.aligned, (p.ts - off) + 120.0);
                assert!(p.aligned <= t && p.deliver && !p.late);
                assert_eq!(p.seq, n as f64);
                n += 1;
            }
            t += 1.0;
        }
        assert_eq!(b.next_due(), f64::INFINITY);
        assert_eq!(b.delivered, 50.0);
        assert_eq!(b.lost, 0.0);
    }

    #[test]
    fn late_frames_are_dropped_or_delivered() {
        for &deliver in &[false, true] {
            let mut b = Buffer::new(Options {
                deliver_late: deliver,
                ..fixed(20.0)
            });
            assert_eq!(b.push(0.0, 100.0, 0.0, 110.0), PUSH_BUFFERED);
            let r = b.push(1.0, 120.0, 0.0, 150.0); // due at 140
            assert_eq!(
                r,
                if deliver {
                    PUSH_LATE_DELIVER
                } else {
                    PUSH_LATE
                }
            );
            let out = drain(&mut b, 150.0);
            if deliver {
                assert_eq!(out.len(), 2);
                assert_eq!(
                    out[1],
                    Popped {
                        seq: 1.0,
                        ts: 120.0,
                        aligned: 140.0,
                        deliver: true,
                        late: true,
                        late_by: 10.0
                    }
                );
                assert_eq!((b.late, b.late_delivered), (0.0, 1.0));
            } else {
                assert_eq!(out.len(), 1);
                assert_eq!((b.late, b.late_delivered), (1.0, 0.0));
            }
        }
    }

    #[test]
    fn lost_is_reconciled_when_a_frame_turns_up() {
        let mut b = Buffer::new(fixed(50.0));
        for &s in &[0.0, 1.0, 4.0] {
            b.push(s, s * 20.0, 0.0, s * 20.0 + 10.0);
        }
        drain(&mut b, 200.0);
        assert_eq!(b.lost, 2.0);
        assert_eq!(b.push(2.0, 40.0, 0.0, 205.0), PUSH_LATE);
        assert_eq!((b.lost, b.late, b.belated), (1.0, 1.0, 1.0));
        assert_eq!(b.push(2.0, 40.0, 0.0, 206.0), PUSH_DUPLICATE);
        assert_eq!(b.duplicates, 1.0);
    }

    #[test]
    fn seq_crossing_2_pow_32_is_seamless() {
        let mut b = Buffer::new(fixed(40.0));
        let s0 = 4294967296.0 - 100.0;
        let mut last = -1.0;
        for i in 0..200 {
            let ts = i as f64 * 20.0;
            assert_eq!(b.push(s0 + i as f64, ts, 0.0, ts + 15.0), PUSH_BUFFERED);
            for p in drain(&mut b, ts + 15.0) {
                assert!(p.seq > last);
                last = p.seq;
            }
        }
        let s = stats(&b);
        assert_eq!(
            (b.lost, b.late, b.duplicates, b.reordered),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!(s[9], 0.0);
    }

    #[test]
    fn adaptive_delay_rises_at_once_and_falls_slewed() {
        let mut b = Buffer::new(opts());
        let mut rng = Rng(3);
        let mut t = 0.0;
        let mut seq = 0.0;
        let mut max_fall_rate: f64 = 0.0;
        let mut run = |b: &mut Buffer, secs: f64, lo: f64, hi: f64| {
            let end = t + secs * 1000.0;
            while t < end {
                let (d0, t0) = (b.d, b.last_t);
                let transit = lo + (hi - lo) * rng.next();
                b.push(seq, t, 0.0, t + transit);
                drain(b, t + transit);
                if b.d < d0 {
                    max_fall_rate = max_fall_rate.max((d0 - b.d) / (b.last_t - t0));
                }
                seq += 1.0;
                t += 20.0;
            }
        };
        run(&mut b, 20.0, 10.0, 30.0);
        let d_low = b.d;
        assert!(d_low > 29.0 && d_low < 33.0, "{}", d_low);
        run(&mut b, 5.0, 10.0, 80.0);
        assert!(b.target >= 79.0 && b.d >= b.target, "{}", b.target);
        run(&mut b, 60.0, 10.0, 30.0);
        assert!((b.d - d_low).abs() < 5.0, "{} vs {}", b.d, d_low);
        assert!(
            max_fall_rate > 0.004 && max_fall_rate <= MAX_SLEW + 1e-12,
            "{}",
            max_fall_rate
        );
    }

    #[test]
    fn the_first_frame_starts_the_timeline() {
        let mut b = Buffer::new(opts()); // initial 80 ms
        assert_eq!(b.push(0.0, 0.0, 0.0, 300.0), PUSH_BUFFERED);
        assert!(b.d >= 300.0 && b.late == 0.0, "{} {}", b.d, b.late);
        let d = b.d;
        assert_eq!(b.push(1.0, 20.0, 0.0, 20.0 + d + 50.0), PUSH_LATE);
        let mut f = Buffer::new(fixed(40.0));
        assert_eq!(f.push(0.0, 0.0, 0.0, 300.0), PUSH_LATE);
    }

    #[test]
    fn initial_latency_can_be_refreshed_while_young() {
        let mut b = Buffer::new(opts());
        assert_eq!(b.d, 80.0);
        // Before the first sample D starts from the new value at once.
        assert!(b.set_initial(300.0));
        assert_eq!((b.d, b.target), (300.0, 300.0));
        // Bad values change nothing.
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            assert!(!b.set_initial(bad));
        }
        assert_eq!(b.o.initial, 300.0);
        // Young (under MIN_SAMPLES): D* is at least the initial latency, whatever the samples say.
        let mut t = 0.0;
        for seq in 0..10 {
            b.push(seq as f64, t, 0.0, t + 5.0);
            drain(&mut b, t + 5.0);
            t += 20.0;
        }
        assert_eq!(b.target, 300.0);
        assert!(b.set_initial(450.0));
        b.push(10.0, t, 0.0, t + 5.0);
        assert_eq!((b.target, b.d), (450.0, 450.0)); // up at once
        // Past MIN_SAMPLES its own samples govern: the initial latency no longer matters.
        for seq in 11..60 {
            t += 20.0;
            b.push(seq as f64, t, 0.0, t + 5.0);
            drain(&mut b, t + 5.0);
        }
        assert!(b.target < 10.0, "{}", b.target);
        assert!(b.set_initial(900.0));
        t += 20.0;
        b.push(60.0, t, 0.0, t + 5.0);
        assert!(b.target < 10.0, "{}", b.target);
        // A fixed latency ignores it.
        let mut f = Buffer::new(fixed(40.0));
        assert!(f.set_initial(300.0));
        assert_eq!(f.d, 40.0);
    }

    #[test]
    fn a_spike_that_is_over_is_forgotten_in_seconds() {
        // A start-up burst (2 s of 300-500 ms transit, as when a thousand streams open at once),
        // then U(10,30) ms: the burst's tail stops counting within seconds, not tens of seconds.
        let mut b = Buffer::new(opts());
        let mut rng = Rng(5);
        let mut seq = 0.0;
        let mut frames = |b: &mut Buffer, n: u32, lo: f64, hi: f64| {
            for _ in 0..n {
                let ts = seq * 20.0;
                let transit = lo + (hi - lo) * rng.next();
                b.push(seq, ts, 0.0, ts + transit);
                drain(b, ts + transit);
                seq += 1.0;
            }
        };
        frames(&mut b, 100, 300.0, 500.0);
        assert!(b.target > 400.0, "{}", b.target);
        frames(&mut b, 400, 10.0, 30.0); // 8 s
        assert!(b.target < 35.0, "D* {} 8 s after the burst", b.target);
        frames(&mut b, 600, 10.0, 30.0); // 12 s more: D follows at up to 50 ms/s
        assert!(b.d < 35.0, "D {} 20 s after the burst", b.d);
        // The same steady U(10,30) never looks stale: D* stays at its P99 + margin.
        frames(&mut b, 3000, 10.0, 30.0);
        assert!(b.target > 30.0 && b.target < 33.0, "{}", b.target);
    }

    #[test]
    fn loss_does_not_raise_delay() {
        let mut b = Buffer::new(opts());
        let mut rng = Rng(9);
        for i in 0..3000 {
            let ts = i as f64 * 20.0;
            if i > 1000 && i % 3 == 0 {
                continue; // a third of the frames lost
            }
            let tr = 10.0 + 20.0 * rng.next();
            b.push(i as f64, ts, 0.0, ts + tr);
            drain(&mut b, ts + tr);
        }
        assert!(b.d < 33.0, "{}", b.d);
        assert!(b.lost > 600.0);
    }

    #[test]
    fn jump_flushes_and_rebases_once() {
        let mut b = Buffer::new(fixed(100.0));
        let mut discarded = 0;
        let mut delivered_after = 0;
        for i in 0..200 {
            let t = i as f64 * 20.0;
            let ts = if i >= 100 { t + 10000.0 } else { t };
            b.push(i as f64, ts, 0.0, t + 20.0);
            for p in drain(&mut b, t + 20.0) {
                if !p.deliver {
                    discarded += 1;
                } else if p.seq >= 100.0 {
                    delivered_after += 1;
                }
            }
        }
        assert_eq!(b.discontinuities, 1.0);
        assert!(discarded >= 1 && discarded <= 5, "{}", discarded);
        assert!(delivered_after >= 90);
        assert_eq!(b.late, 3.0);
    }

    #[test]
    fn overflow_evicts_the_oldest() {
        let mut b = Buffer::new(Options {
            max_frames: 4.0,
            ..fixed(500.0)
        });
        for i in 0..6 {
            let r = b.push(i as f64, i as f64, 0.0, i as f64);
            assert_eq!(r, if i < 4 { PUSH_BUFFERED } else { PUSH_OVERFLOW });
        }
        let out = drain(&mut b, 0.0);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|p| !p.deliver));
        assert_eq!((out[0].seq, out[1].seq), (0.0, 1.0));
        assert_eq!(b.overflow_drops, 2.0);
        assert_eq!(b.lost, 0.0);
    }

    #[test]
    fn bad_input_changes_nothing() {
        let mut b = Buffer::new(opts());
        for &(s, ts) in &[
            (-1.0, 0.0),
            (0.5, 0.0),
            (9007199254740992.0, 0.0),
            (f64::NAN, 0.0),
            (0.0, -1.0),
            (0.0, f64::INFINITY),
        ] {
            assert_eq!(b.push(s, ts, 0.0, 0.0), PUSH_INVALID);
        }
        assert_eq!(b.push(0.0, 0.0, f64::NAN, 0.0), PUSH_INVALID);
        assert_eq!((b.invalid, b.received), (7.0, 0.0));
        assert_eq!(b.next_due(), f64::INFINITY);
    }

    #[test]
    fn renormalisation_keeps_the_quantile() {
        let mut b = Buffer::new(opts());
        for i in 0..120000 {
            let ts = i as f64 * 20.0;
            b.push(i as f64, ts, 0.0, ts + 10.0 + (i % 20) as f64);
            drain(&mut b, ts + 40.0);
        }
        assert!(b.inc < RENORM_AT && b.total.is_finite());
        let q = b.quantile(0.99);
        assert!(q > 29.0 && q <= 30.0, "{}", q);
        assert!((b.target - (q + 2.0)).abs() < 0.5, "{}", b.target);
    }
}
