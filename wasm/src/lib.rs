//! EchoStream WASM core: the hot paths behind `src/protocol/` (frame codec), `src/clock/` (clock
//! estimator) and `src/stream/jitter.ts` (jitter buffers), all in one instance. No external
//! crates; `extern "C"` exports over a few static buffers, read and written by the hand-written
//! binding in `wasm/mod.ts`, the only importer of these exports.
//!
//! Memory contract: any export may grow linear memory, so the binding re-reads
//! `memory.buffer` after each call before touching a pointer it got earlier.

pub mod clock;
pub mod frame;
pub mod jitter;
pub mod varint;
#[cfg(test)]
mod test_rng;

use frame::{Limits, Meta, Rec, Spec};

/// The linear memory grows in doublings, not a page (64 KiB) at a time. The standard allocator
/// grows it by what each allocation needs, and every grow makes a new `ArrayBuffer` that
/// JavaScriptCore counts as newly allocated memory until its next collection: 1,000 jitter
/// buffers taking their first frame grew it 122 times for 8 MB and were counted as about 90 MB,
/// enough to start full collections while a server's streams were opening. So when an
/// allocation has grown the memory, this allocator at once allocates and frees a block as large
/// as the memory now is (at most `TOP_UP_MAX`): the block is grown in one step and stays free for
/// the allocations that follow. (Measured: 3,000 buffers, 455 grows before, a handful after.)
#[cfg(target_arch = "wasm32")]
mod doubling {
    use core::arch::wasm32::memory_size;
    use std::alloc::{GlobalAlloc, Layout, System};

    /// Largest single top-up (bytes).
    const TOP_UP_MAX: usize = 64 << 20;

    pub struct Doubling;

    impl Doubling {
        /// After an allocation: when it grew the memory, top the free space up in one step.
        #[inline]
        fn after(&self, pages_before: usize) {
            let pages = memory_size(0);
            if pages > pages_before {
                let n = (pages << 16).min(TOP_UP_MAX);
                if let Ok(l) = Layout::from_size_align(n, 16) {
                    // SAFETY: a non-zero layout; the block is freed with the layout it was made with.
                    unsafe {
                        let p = System.alloc(l);
                        if !p.is_null() {
                            System.dealloc(p, l);
                        }
                    }
                }
            }
        }
    }

    // SAFETY: every call is forwarded to `System` with its own arguments; `after` only adds an
    // allocation that is freed again before it returns.
    unsafe impl GlobalAlloc for Doubling {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            let before = memory_size(0);
            let p = System.alloc(l);
            self.after(before);
            p
        }

        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            let before = memory_size(0);
            let p = System.alloc_zeroed(l);
            self.after(before);
            p
        }

        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            System.dealloc(p, l)
        }

        unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
            let before = memory_size(0);
            let q = System.realloc(p, l, new_size);
            self.after(before);
            q
        }
    }

    #[global_allocator]
    static ALLOCATOR: Doubling = Doubling;
}

/// f64 slots per record in the record table (see `write_rec`).
pub const REC_SLOTS: usize = 16;

struct State {
    input: Vec<u8>,
    recs: Vec<Rec>,
    metas: Vec<Meta>,
    rec_out: Vec<f64>,
    meta_out: Vec<u32>,
    out: Vec<u8>,
    lens: Vec<u32>,
    args: [f64; 8],
    status: [f64; 4],
    limits: Limits,
}

static mut STATE: State = State {
    input: Vec::new(),
    recs: Vec::new(),
    metas: Vec::new(),
    rec_out: Vec::new(),
    meta_out: Vec::new(),
    out: Vec::new(),
    lens: Vec::new(),
    args: [0.0; 8],
    status: [0.0; 4],
    limits: Limits { max_frame: 16 << 20, max_name: 256, max_meta_entries: 64, max_meta_bytes: 8192 },
};

fn st() -> &'static mut State {
    // SAFETY: wasm32-unknown-unknown runs one thread, and no export re-enters another.
    unsafe { &mut *core::ptr::addr_of_mut!(STATE) }
}

fn reserve(v: &mut Vec<u8>, n: usize) {
    if v.len() < n {
        v.resize(n, 0);
    }
}

#[no_mangle]
pub extern "C" fn es_abi_version() -> u32 {
    3
}

#[no_mangle]
pub extern "C" fn es_set_limits(max_frame: f64, max_name: f64, max_meta_entries: f64, max_meta_bytes: f64) {
    st().limits = Limits {
        max_frame: max_frame as u64,
        max_name: max_name as u64,
        max_meta_entries: max_meta_entries as u64,
        max_meta_bytes: max_meta_bytes as u64,
    };
}

/// Makes the input buffer at least `n` bytes long and returns its address.
#[no_mangle]
pub extern "C" fn es_input(n: u32) -> *mut u8 {
    let s = st();
    reserve(&mut s.input, n as usize);
    s.input.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn es_status() -> *const f64 {
    st().status.as_ptr()
}

#[no_mangle]
pub extern "C" fn es_args() -> *mut f64 {
    st().args.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn es_recs() -> *const f64 {
    st().rec_out.as_ptr()
}

#[no_mangle]
pub extern "C" fn es_metas() -> *const u32 {
    st().meta_out.as_ptr()
}

/// Makes the u32 length table at least `n` entries long and returns its address.
#[no_mangle]
pub extern "C" fn es_lens(n: u32) -> *mut u32 {
    let s = st();
    if s.lens.len() < n as usize {
        s.lens.resize(n as usize, 0);
    }
    s.lens.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn es_out() -> *mut u8 {
    st().out.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn es_out_len() -> u32 {
    st().out.len() as u32
}

#[no_mangle]
pub extern "C" fn es_out_reset() {
    st().out.clear();
}

fn publish(s: &mut State) {
    s.rec_out.clear();
    s.rec_out.reserve(s.recs.len() * REC_SLOTS);
    for r in s.recs.iter() {
        s.rec_out.extend_from_slice(&[
            r.ty as f64,
            r.flags as f64,
            r.start as f64,
            r.end as f64,
            r.payload as f64,
            r.str_off as f64,
            r.str_len as f64,
            r.n1 as f64,
            r.n2 as f64,
            r.meta_start as f64,
            r.meta_count as f64,
            r.t[0],
            r.t[1],
            r.t[2],
            0.0,
            0.0,
        ]);
    }
    s.meta_out.clear();
    for m in s.metas.iter() {
        s.meta_out.extend_from_slice(&[m.koff as u32, m.klen as u32, m.voff as u32, m.vlen as u32]);
    }
}

fn fail(s: &mut State, e: frame::Error) -> i32 {
    s.status[2] = e.code as f64;
    s.status[3] = e.offset as f64;
    -1
}

/// Scans `input[0..len]` for complete frames. Returns the number found (records in `es_recs`,
/// metadata entries in `es_metas`) with `status = [consumed, need, 0, 0]`, or -1 with
/// `status[2..4] = [error code, offset]`.
#[no_mangle]
pub extern "C" fn es_scan(len: u32) -> i32 {
    let s = st();
    s.recs.clear();
    s.metas.clear();
    let r = frame::scan(&s.input[..len as usize], &s.limits, &mut s.recs, &mut s.metas);
    match r {
        Ok(scan) => {
            publish(s);
            s.status[0] = scan.consumed as f64;
            s.status[1] = if scan.need == u64::MAX { -1.0 } else { scan.need as f64 };
            s.recs.len() as i32
        }
        Err(e) => fail(s, e),
    }
}

/// Decodes exactly one frame occupying `input[0..len]`: 1, or -1 as for `es_scan`.
#[no_mangle]
pub extern "C" fn es_decode(len: u32) -> i32 {
    let s = st();
    s.recs.clear();
    s.metas.clear();
    match frame::decode_one(&s.input[..len as usize], &s.limits, &mut s.metas) {
        Ok(r) => {
            s.recs.push(r);
            publish(s);
            1
        }
        Err(e) => fail(s, e),
    }
}

/// Appends a frame header to the output buffer. Numbers come from `es_args` (n1, n2, t1, t2,
/// t3); the string and metadata bytes lie back to back in the input buffer, their lengths in
/// `es_lens` (string, then key, value, key, value…). Returns the output offset where the
/// `payload_len` payload bytes go (the output is already grown to hold them), or -1.
#[no_mangle]
pub extern "C" fn es_encode(ty: u32, flags: u32, meta_count: u32, payload_len: u32) -> i32 {
    let s = st();
    let n = 1 + 2 * meta_count as usize;
    if s.lens.len() < n {
        return fail(s, frame::Error { code: frame::E_INVALID_VALUE, offset: 0 });
    }
    let mut pos = s.lens[0] as usize;
    let str_end = pos;
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::with_capacity(meta_count as usize);
    for i in 0..meta_count as usize {
        let kl = s.lens[1 + 2 * i] as usize;
        let vl = s.lens[2 + 2 * i] as usize;
        if pos + kl + vl > s.input.len() {
            return fail(s, frame::Error { code: frame::E_TRUNCATED, offset: pos });
        }
        pairs.push((&s.input[pos..pos + kl], &s.input[pos + kl..pos + kl + vl]));
        pos += kl + vl;
    }
    if str_end > s.input.len() {
        return fail(s, frame::Error { code: frame::E_TRUNCATED, offset: 0 });
    }
    let a = s.args;
    let spec = Spec {
        ty: ty as u64,
        flags: flags as u64,
        n1: a[0] as u64,
        n2: a[1] as u64,
        t: [a[2], a[3], a[4]],
        s: &s.input[..str_end],
        meta: &pairs,
        payload_len: payload_len as usize,
    };
    let mut out = core::mem::take(&mut s.out);
    let r = frame::encode_header(&spec, &s.limits, &mut out);
    drop(pairs);
    let at = out.len();
    s.out = out;
    match r {
        Ok(()) => {
            reserve(&mut s.out, at + payload_len as usize);
            at as i32
        }
        Err(e) => fail(s, e),
    }
}

/// Encodes `v` as a varint into the output buffer (after clearing it); returns its length, or
/// 0 when `v` exceeds 2^62 - 1.
#[no_mangle]
pub extern "C" fn es_varint_encode(v: u64) -> u32 {
    let s = st();
    s.out.clear();
    if varint::write(&mut s.out, v) {
        s.out.len() as u32
    } else {
        0
    }
}

/// Reads a varint from `input[0..len]`; `status[0]` = bytes taken, or 0 when `len` is too short.
#[no_mangle]
pub extern "C" fn es_varint_decode(len: u32) -> u64 {
    let s = st();
    match varint::read(&s.input[..len as usize]) {
        varint::Read::Value(v, n) => {
            s.status[0] = n as f64;
            v
        }
        varint::Read::Short(_) => {
            s.status[0] = 0.0;
            0
        }
    }
}

// ---- Clock estimator (crate module `clock`): a growable pool of instances addressed by index. ----

/// Clock estimator instances available at once (about 14.5 KiB each): one per connection side.
pub const CLOCK_POOL: usize = 65536;

static mut CLOCKS: Vec<Option<Box<clock::Estimator>>> = Vec::new();

fn clocks() -> &'static mut Vec<Option<Box<clock::Estimator>>> {
    // SAFETY: as for `st()`.
    unsafe { &mut *core::ptr::addr_of_mut!(CLOCKS) }
}

fn clock_at(id: i32) -> Option<&'static mut clock::Estimator> {
    if id < 0 {
        return None;
    }
    match clocks().get_mut(id as usize) {
        Some(Some(e)) => Some(&mut **e),
        _ => None,
    }
}

/// Creates an estimator with clock precision `precision` ms (finite, > 0). Returns its id, or
/// -1 when the precision is invalid or `CLOCK_POOL` estimators are live.
#[no_mangle]
pub extern "C" fn es_clock_new(precision: f64) -> i32 {
    if !(precision.is_finite() && precision > 0.0) {
        return -1;
    }
    let pool = clocks();
    for (i, slot) in pool.iter_mut().enumerate() {
        if slot.is_none() {
            *slot = Some(Box::new(clock::Estimator::new(precision)));
            return i as i32;
        }
    }
    if pool.len() >= CLOCK_POOL {
        return -1;
    }
    pool.push(Some(Box::new(clock::Estimator::new(precision))));
    (pool.len() - 1) as i32
}

/// Releases an estimator (no-op for a free or unknown id).
#[no_mangle]
pub extern "C" fn es_clock_free(id: i32) {
    if id >= 0 {
        if let Some(slot) = clocks().get_mut(id as usize) {
            *slot = None;
        }
    }
}

/// Forgets the samples and the model of an estimator (counters stay).
#[no_mangle]
pub extern "C" fn es_clock_reset(id: i32) {
    if let Some(e) = clock_at(id) {
        e.reset();
    }
}

/// Adds one exchange: 0 accepted, 1 rejected, 2 clock step (reset), -1 invalid input, -2 bad id.
#[no_mangle]
pub extern "C" fn es_clock_add(id: i32, t1: f64, t2: f64, t3: f64, t4: f64) -> i32 {
    match clock_at(id) {
        Some(e) => e.add(t1, t2, t3, t4),
        None => -2,
    }
}

/// Offset (server − local, ms) at local time `at`; NaN before any sample or for a bad id.
#[no_mangle]
pub extern "C" fn es_clock_offset(id: i32, at: f64) -> f64 {
    clock_at(id).map_or(f64::NAN, |e| e.offset(at))
}

/// Skew in ppm; NaN for a bad id.
#[no_mangle]
pub extern "C" fn es_clock_skew(id: i32) -> f64 {
    clock_at(id).map_or(f64::NAN, |e| e.skew_ppm())
}

/// Error bound (ms) of `es_clock_offset(id, at)`; +inf before any sample, NaN for a bad id.
#[no_mangle]
pub extern "C" fn es_clock_uncertainty(id: i32, at: f64) -> f64 {
    clock_at(id).map_or(f64::NAN, |e| e.uncertainty(at))
}

/// Statistics by key: 0 samples, 1 accepted, 2 rejected, 3 invalid, 4 steps, 5 window length,
/// 6 last delay, 7 least delay in the window, 8 jitter. NaN for a bad id or key.
#[no_mangle]
pub extern "C" fn es_clock_stat(id: i32, key: u32) -> f64 {
    match clock_at(id) {
        Some(e) => match key {
            0 => e.total,
            1 => e.accepted,
            2 => e.rejected,
            3 => e.invalid,
            4 => e.steps,
            5 => e.window_len() as f64,
            6 => e.last_rtt,
            7 => e.min_delay(),
            8 => e.jitter(),
            _ => f64::NAN,
        },
        None => f64::NAN,
    }
}

// ---- Jitter buffers (crate module `jitter`): a growable pool with a free list, so a server can
// hold one per stream (tens of thousands) and pay only for those alive. ----

static mut JBS: Vec<Option<Box<jitter::Buffer>>> = Vec::new();
static mut JB_FREE: Vec<u32> = Vec::new();
static mut JB_LIVE: u32 = 0;
/// Results of `es_jb_pop` (`jitter::POP_LEN` slots) and `es_jb_stats` (`jitter::STATS_LEN`).
static mut JB_OUT: [f64; jitter::STATS_LEN] = [0.0; jitter::STATS_LEN];

fn jbs() -> &'static mut Vec<Option<Box<jitter::Buffer>>> {
    // SAFETY: as for `st()`.
    unsafe { &mut *core::ptr::addr_of_mut!(JBS) }
}

fn jb_out() -> &'static mut [f64; jitter::STATS_LEN] {
    // SAFETY: as for `st()`.
    unsafe { &mut *core::ptr::addr_of_mut!(JB_OUT) }
}

fn jb_at(id: i32) -> Option<&'static mut jitter::Buffer> {
    if id < 0 {
        return None;
    }
    match jbs().get_mut(id as usize) {
        Some(Some(b)) => Some(b),
        _ => None,
    }
}

/// Creates a jitter buffer (`latency` NaN = adaptive; `deliver_late` 0/1). Returns its id, or -1
/// when the options are invalid.
#[no_mangle]
pub extern "C" fn es_jb_new(
    latency: f64,
    min: f64,
    max: f64,
    deliver_late: u32,
    max_frames: f64,
    initial: f64,
    margin: f64,
    quantile: f64,
) -> i32 {
    let o = jitter::Options { latency, min, max, deliver_late: deliver_late != 0, max_frames, initial, margin, quantile };
    if !o.valid() {
        return -1;
    }
    let b = Some(Box::new(jitter::Buffer::new(o)));
    // SAFETY: as for `st()`.
    let (free, live) = unsafe { (&mut *core::ptr::addr_of_mut!(JB_FREE), &mut *core::ptr::addr_of_mut!(JB_LIVE)) };
    *live += 1;
    match free.pop() {
        Some(id) => {
            jbs()[id as usize] = b;
            id as i32
        }
        None => {
            jbs().push(b);
            (jbs().len() - 1) as i32
        }
    }
}

/// Releases a jitter buffer and its memory (no-op for a free or unknown id).
#[no_mangle]
pub extern "C" fn es_jb_free(id: i32) {
    if jb_at(id).is_some() {
        jbs()[id as usize] = None;
        // SAFETY: as for `st()`.
        unsafe {
            (*core::ptr::addr_of_mut!(JB_FREE)).push(id as u32);
            *core::ptr::addr_of_mut!(JB_LIVE) -= 1;
        }
    }
}

/// Live jitter buffers.
#[no_mangle]
pub extern "C" fn es_jb_live() -> u32 {
    // SAFETY: as for `st()`.
    unsafe { *core::ptr::addr_of!(JB_LIVE) }
}

/// Bytes a jitter buffer holds (its struct plus heap); NaN for a bad id.
#[no_mangle]
pub extern "C" fn es_jb_bytes(id: i32) -> f64 {
    jb_at(id).map_or(f64::NAN, |b| (core::mem::size_of::<jitter::Buffer>() + b.heap_bytes()) as f64)
}

/// Forgets frames (they leave `es_jb_pop` as discarded) and adaptation; counters stay.
#[no_mangle]
pub extern "C" fn es_jb_reset(id: i32) {
    if let Some(b) = jb_at(id) {
        b.reset();
    }
}

/// Sets a jitter buffer's initial latency (`jitter::Buffer::set_initial`): 0, -1 for a bad
/// value (nothing changes), -2 for a bad id.
#[no_mangle]
pub extern "C" fn es_jb_set_initial(id: i32, initial: f64) -> i32 {
    match jb_at(id) {
        Some(b) => {
            if b.set_initial(initial) {
                0
            } else {
                -1
            }
        }
        None => -2,
    }
}

/// A frame arrived: a `jitter::PUSH_*` code (-1 invalid input), or -2 for a bad id. With a
/// valid id, `es_jb_out[DUE_SLOT]` then holds the buffer's next due time.
#[no_mangle]
pub extern "C" fn es_jb_push(id: i32, seq: f64, ts: f64, offset: f64, arrival: f64) -> i32 {
    match jb_at(id) {
        Some(b) => {
            let r = b.push(seq, ts, offset, arrival);
            jb_out()[jitter::DUE_SLOT] = b.next_due();
            r
        }
        None => -2,
    }
}

/// Local time at which `es_jb_pop` next returns a frame; NaN for a bad id.
#[no_mangle]
pub extern "C" fn es_jb_next_due(id: i32) -> f64 {
    jb_at(id).map_or(f64::NAN, |b| b.next_due())
}

/// 1 with the frame in `es_jb_out` (seq, ts, alignedTime, deliver, late, lateByMs), 0 when
/// nothing is due at `now`, -2 for a bad id. With a valid id, `es_jb_out[DUE_SLOT]` then holds
/// the buffer's next due time (a frame was popped and the next one is due by `now` exactly when
/// it is <= `now`, so the caller needs no final empty pop).
#[no_mangle]
pub extern "C" fn es_jb_pop(id: i32, now: f64) -> i32 {
    match jb_at(id) {
        Some(b) => {
            let popped = b.pop(now);
            let o = jb_out();
            o[jitter::DUE_SLOT] = b.next_due();
            match popped {
                Some(p) => {
                    o[0] = p.seq;
                    o[1] = p.ts;
                    o[2] = p.aligned;
                    o[3] = if p.deliver { 1.0 } else { 0.0 };
                    o[4] = if p.late { 1.0 } else { 0.0 };
                    o[5] = p.late_by;
                    1
                }
                None => 0,
            }
        }
        None => -2,
    }
}

/// Writes the statistics into `es_jb_out` (`jitter::STATS_LEN` slots): 0, or -2 for a bad id.
#[no_mangle]
pub extern "C" fn es_jb_stats(id: i32) -> i32 {
    match jb_at(id) {
        Some(b) => {
            b.write_stats(jb_out());
            0
        }
        None => -2,
    }
}

/// Address of the jitter result slots (fixed for the module's life).
#[no_mangle]
pub extern "C" fn es_jb_out() -> *const f64 {
    jb_out().as_ptr()
}
