//! EchoStream WASM core: the hot paths behind `src/protocol/` (and later the jitter buffer and
//! clock estimator). No external crates; `extern "C"` exports over a few static buffers, read
//! and written by the hand-written binding in `wasm/mod.ts`, the only importer of these exports.
//!
//! Memory contract: any export may grow linear memory, so the binding re-reads
//! `memory.buffer` after each call before touching a pointer it got earlier.

pub mod frame;
pub mod varint;

use frame::{Limits, Meta, Rec, Spec};

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
    1
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
