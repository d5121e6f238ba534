//! Frame header codec: the byte layout of docs/PROTOCOL.md.
//!
//! A frame is `type:varint flags:varint length:varint body[length]`. The body starts with the
//! type's header fields; whatever follows them is the payload, which this module never copies:
//! it reports offsets, and the caller slices its own bytes.

use crate::varint;

pub const T_HELLO: u64 = 0x01;
pub const T_WELCOME: u64 = 0x02;
pub const T_GOAWAY: u64 = 0x03;
pub const T_REQUEST: u64 = 0x04;
pub const T_RESPONSE: u64 = 0x05;
pub const T_ERROR: u64 = 0x06;
pub const T_EVENT: u64 = 0x07;
pub const T_OPEN: u64 = 0x08;
pub const T_DATA: u64 = 0x09;
pub const T_PING: u64 = 0x0a;
pub const T_PONG: u64 = 0x0b;
/// Flow-control credit for an EchoStream: the receiver grants `increment` more payload bytes.
pub const T_WINDOW: u64 = 0x0c;

/// Payload bytes are raw (not codec-encoded). Valid on every type that has a payload.
pub const F_RAW: u64 = 0x01;
/// REQUEST: the call is idempotent and may travel in 0-RTT early data.
pub const F_IDEMPOTENT: u64 = 0x02;
/// REQUEST: the caller may cancel; it keeps its half open, and ending it early means cancel.
/// Without the flag the caller ends its half right after the REQUEST.
pub const F_CANCELLABLE: u64 = 0x04;
/// REQUEST: the caller keeps the stream for its next call; the callee answers without ending
/// its half and reads the next REQUEST after it.
pub const F_REUSE: u64 = 0x08;
/// DATA: a sequence number follows.
pub const F_SEQ: u64 = 0x02;
/// DATA: a sender timestamp (f64, ms) follows.
pub const F_TS: u64 = 0x04;
/// DATA: a stream id leads the header (datagram mode).
pub const F_STREAM_ID: u64 = 0x08;
/// DATA: the last frame of this direction of an EchoStream (its payload may be empty).
pub const F_FIN: u64 = 0x10;

/// Largest integer a JavaScript number holds exactly; numeric fields above it are refused.
pub const MAX_SAFE: u64 = (1u64 << 53) - 1;

// Error codes, mirrored by DecodeErrorCode in src/protocol/errors.ts.
pub const E_FRAME_TOO_LARGE: u32 = 1;
pub const E_UNKNOWN_TYPE: u32 = 2;
pub const E_UNKNOWN_FLAGS: u32 = 3;
pub const E_TRUNCATED: u32 = 4;
pub const E_NAME_TOO_LONG: u32 = 5;
pub const E_METADATA_LIMIT: u32 = 6;
pub const E_INVALID_UTF8: u32 = 7;
pub const E_INVALID_VALUE: u32 = 8;
pub const E_TRAILING_BYTES: u32 = 9;
pub const E_VALUE_RANGE: u32 = 10;

/// Receive-side limits. Defaults live in src/protocol/limits.ts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_frame: u64,
    pub max_name: u64,
    pub max_meta_entries: u64,
    pub max_meta_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frame: 16 << 20, max_name: 256, max_meta_entries: 64, max_meta_bytes: 8192 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: u32,
    /// Offset of the offending byte, counted from the start of the input.
    pub offset: usize,
}

fn err<T>(code: u32, offset: usize) -> Result<T, Error> {
    Err(Error { code, offset })
}

/// One decoded frame header; offsets are absolute within the scanned input.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rec {
    pub ty: u64,
    pub flags: u64,
    pub start: usize,
    pub end: usize,
    pub payload: usize,
    /// The type's one string (method, topic, name, reason, message); `str_len` 0 when none.
    pub str_off: usize,
    pub str_len: usize,
    /// version, deadline, code, stream id or ping seq.
    pub n1: u64,
    /// DATA sequence number.
    pub n2: u64,
    pub meta_start: usize,
    pub meta_count: usize,
    pub t: [f64; 3],
}

/// A metadata entry: key and value ranges within the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub koff: usize,
    pub klen: usize,
    pub voff: usize,
    pub vlen: usize,
}

fn allowed_flags(ty: u64) -> Option<u64> {
    match ty {
        T_HELLO | T_WELCOME | T_GOAWAY | T_RESPONSE | T_ERROR | T_EVENT | T_OPEN => Some(F_RAW),
        T_REQUEST => Some(F_RAW | F_IDEMPOTENT | F_CANCELLABLE | F_REUSE),
        T_DATA => Some(F_RAW | F_SEQ | F_TS | F_STREAM_ID | F_FIN),
        T_PING | T_PONG | T_WINDOW => Some(0),
        _ => None,
    }
}

/// A parsed frame prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub ty: u64,
    pub flags: u64,
    /// Bytes taken by the prefix itself.
    pub len: usize,
    pub body_len: u64,
}

/// Reads a frame prefix at `buf[at..]`. `Ok(None)` means more bytes are needed. Type, flags and
/// the size limit are checked here, so an oversize or foreign frame is refused before any of its
/// body is buffered.
pub fn read_prefix(buf: &[u8], at: usize, lim: &Limits) -> Result<Option<Prefix>, Error> {
    let mut p = at;
    let ty = match varint::read(&buf[p..]) {
        varint::Read::Value(v, n) => {
            p += n;
            v
        }
        varint::Read::Short(_) => return Ok(None),
    };
    let allowed = match allowed_flags(ty) {
        Some(a) => a,
        None => return err(E_UNKNOWN_TYPE, at),
    };
    let flags_at = p;
    let flags = match varint::read(&buf[p..]) {
        varint::Read::Value(v, n) => {
            p += n;
            v
        }
        varint::Read::Short(_) => return Ok(None),
    };
    if flags & !allowed != 0 {
        return err(E_UNKNOWN_FLAGS, flags_at);
    }
    let len_at = p;
    let body_len = match varint::read(&buf[p..]) {
        varint::Read::Value(v, n) => {
            p += n;
            v
        }
        varint::Read::Short(_) => return Ok(None),
    };
    if body_len > lim.max_frame {
        return err(E_FRAME_TOO_LARGE, len_at);
    }
    Ok(Some(Prefix { ty, flags, len: p - at, body_len }))
}

/// Cursor over one frame body; every read is bounded by the body's end.
struct Body<'a> {
    buf: &'a [u8],
    p: usize,
    end: usize,
}

impl<'a> Body<'a> {
    fn varint(&mut self) -> Result<u64, Error> {
        match varint::read(&self.buf[self.p..self.end]) {
            varint::Read::Value(v, n) => {
                self.p += n;
                Ok(v)
            }
            varint::Read::Short(_) => err(E_TRUNCATED, self.end),
        }
    }

    fn number(&mut self) -> Result<u64, Error> {
        let at = self.p;
        let v = self.varint()?;
        if v > MAX_SAFE {
            return err(E_VALUE_RANGE, at);
        }
        Ok(v)
    }

    fn f64(&mut self) -> Result<f64, Error> {
        if self.end - self.p < 8 {
            return err(E_TRUNCATED, self.end);
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[self.p..self.p + 8]);
        let v = f64::from_le_bytes(b);
        if !v.is_finite() {
            return err(E_INVALID_VALUE, self.p);
        }
        self.p += 8;
        Ok(v)
    }

    /// A length-prefixed UTF-8 string of at most `max` bytes; `(offset, len)`.
    fn string(&mut self, max: u64, non_empty: bool) -> Result<(usize, usize), Error> {
        let at = self.p;
        let len = self.varint()?;
        if len > max {
            return err(E_NAME_TOO_LONG, at);
        }
        if non_empty && len == 0 {
            return err(E_INVALID_VALUE, at);
        }
        let len = len as usize;
        if self.end - self.p < len {
            return err(E_TRUNCATED, self.end);
        }
        let off = self.p;
        if let Err(e) = core::str::from_utf8(&self.buf[off..off + len]) {
            return err(E_INVALID_UTF8, off + e.valid_up_to());
        }
        self.p += len;
        Ok((off, len))
    }

    fn metadata(&mut self, lim: &Limits, metas: &mut Vec<Meta>) -> Result<(usize, usize), Error> {
        let at = self.p;
        let count = self.varint()?;
        if count > lim.max_meta_entries {
            return err(E_METADATA_LIMIT, at);
        }
        let start = metas.len();
        let mut total = 0u64;
        for _ in 0..count {
            let kat = self.p;
            let (koff, klen) = self.string(lim.max_name, true)?;
            let key = &self.buf[koff..koff + klen];
            if metas[start..].iter().any(|m| &self.buf[m.koff..m.koff + m.klen] == key) {
                return err(E_INVALID_VALUE, kat);
            }
            let (voff, vlen) = self.string(lim.max_meta_bytes, false)?;
            total += (klen + vlen) as u64;
            if total > lim.max_meta_bytes {
                return err(E_METADATA_LIMIT, kat);
            }
            metas.push(Meta { koff, klen, voff, vlen });
        }
        Ok((start, count as usize))
    }
}

/// Decodes the header fields of a frame whose prefix `pre` starts at `start` and whose body is
/// entirely inside `buf`. Metadata entries are appended to `metas`.
pub fn decode_body(buf: &[u8], start: usize, pre: &Prefix, lim: &Limits, metas: &mut Vec<Meta>) -> Result<Rec, Error> {
    let body = start + pre.len;
    let end = body + pre.body_len as usize;
    let mut b = Body { buf, p: body, end };
    let mut r = Rec { ty: pre.ty, flags: pre.flags, start, end, meta_start: metas.len(), ..Rec::default() };
    let (mut s_off, mut s_len) = (0usize, 0usize);
    let (mut m_start, mut m_count) = (metas.len(), 0usize);
    let result: Result<(), Error> = (|| {
        match pre.ty {
            T_HELLO | T_WELCOME => {
                r.n1 = b.number()?;
                let s = b.string(lim.max_name, false)?;
                s_off = s.0;
                s_len = s.1;
            }
            T_GOAWAY | T_ERROR => {
                r.n1 = b.number()?;
                let s = b.string(lim.max_frame, false)?;
                s_off = s.0;
                s_len = s.1;
            }
            T_REQUEST => {
                let s = b.string(lim.max_name, true)?;
                s_off = s.0;
                s_len = s.1;
                r.n1 = b.number()?;
                let m = b.metadata(lim, metas)?;
                m_start = m.0;
                m_count = m.1;
            }
            T_RESPONSE => {
                let m = b.metadata(lim, metas)?;
                m_start = m.0;
                m_count = m.1;
            }
            T_EVENT | T_OPEN => {
                let s = b.string(lim.max_name, true)?;
                s_off = s.0;
                s_len = s.1;
                let m = b.metadata(lim, metas)?;
                m_start = m.0;
                m_count = m.1;
            }
            T_DATA => {
                if pre.flags & F_STREAM_ID != 0 {
                    r.n1 = b.number()?;
                }
                if pre.flags & F_SEQ != 0 {
                    r.n2 = b.number()?;
                }
                if pre.flags & F_TS != 0 {
                    r.t[0] = b.f64()?;
                }
            }
            T_PING => {
                r.n1 = b.number()?;
                r.t[0] = b.f64()?;
            }
            T_PONG => {
                r.n1 = b.number()?;
                r.t[0] = b.f64()?;
                r.t[1] = b.f64()?;
                r.t[2] = b.f64()?;
            }
            T_WINDOW => {
                r.n1 = b.number()?;
            }
            _ => return err(E_UNKNOWN_TYPE, start),
        }
        Ok(())
    })();
    if let Err(e) = result {
        metas.truncate(r.meta_start);
        return Err(e);
    }
    if (pre.ty == T_PING || pre.ty == T_PONG || pre.ty == T_WINDOW) && b.p != end {
        return err(E_TRAILING_BYTES, b.p);
    }
    r.str_off = s_off;
    r.str_len = s_len;
    r.meta_start = m_start;
    r.meta_count = m_count;
    r.payload = b.p;
    Ok(r)
}

/// Result of scanning a buffer for complete frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scan {
    /// Bytes taken by the complete frames found; the next frame starts here.
    pub consumed: usize,
    /// 0 when the input ended on a frame boundary; the total size of the next frame when its
    /// prefix is complete; `u64::MAX` when even its prefix is incomplete.
    pub need: u64,
}

/// Finds every complete frame in `buf`, appending its header to `recs`.
pub fn scan(buf: &[u8], lim: &Limits, recs: &mut Vec<Rec>, metas: &mut Vec<Meta>) -> Result<Scan, Error> {
    let mut p = 0usize;
    while p < buf.len() {
        let pre = match read_prefix(buf, p, lim)? {
            Some(pre) => pre,
            None => return Ok(Scan { consumed: p, need: u64::MAX }),
        };
        let total = pre.len as u64 + pre.body_len;
        if ((buf.len() - p) as u64) < total {
            return Ok(Scan { consumed: p, need: total });
        }
        let r = decode_body(buf, p, &pre, lim, metas)?;
        recs.push(r);
        p = r.end;
    }
    Ok(Scan { consumed: p, need: 0 })
}

/// Decodes exactly one frame spanning all of `buf`.
pub fn decode_one(buf: &[u8], lim: &Limits, metas: &mut Vec<Meta>) -> Result<Rec, Error> {
    let pre = match read_prefix(buf, 0, lim)? {
        Some(pre) => pre,
        None => return err(E_TRUNCATED, buf.len()),
    };
    let total = pre.len as u64 + pre.body_len;
    if (buf.len() as u64) < total {
        return err(E_TRUNCATED, buf.len());
    }
    if (buf.len() as u64) > total {
        return err(E_TRAILING_BYTES, total as usize);
    }
    decode_body(buf, 0, &pre, lim, metas)
}

/// What to encode. Strings are raw UTF-8 (the caller encodes them); `meta` holds key/value pairs.
pub struct Spec<'a> {
    pub ty: u64,
    pub flags: u64,
    pub n1: u64,
    pub n2: u64,
    pub t: [f64; 3],
    pub s: &'a [u8],
    pub meta: &'a [(&'a [u8], &'a [u8])],
    pub payload_len: usize,
}

fn str_len(s: &[u8]) -> u64 {
    varint::encoded_len(s.len() as u64) as u64 + s.len() as u64
}

/// Appends the frame's prefix and header fields to `out`; the caller appends `payload_len`
/// payload bytes after them. The same limits as decoding apply, so a frame the peer would
/// refuse is refused here first. On error `out` is left as it was.
pub fn encode_header(spec: &Spec, lim: &Limits, out: &mut Vec<u8>) -> Result<(), Error> {
    let allowed = match allowed_flags(spec.ty) {
        Some(a) => a,
        None => return err(E_UNKNOWN_TYPE, 0),
    };
    if spec.flags & !allowed != 0 {
        return err(E_UNKNOWN_FLAGS, 0);
    }
    let name_max = lim.max_name;
    let check_num = |v: u64| if v > MAX_SAFE { err(E_VALUE_RANGE, 0) } else { Ok(()) };
    let check_name = |s: &[u8], non_empty: bool| {
        if s.len() as u64 > name_max {
            err(E_NAME_TOO_LONG, 0)
        } else if non_empty && s.is_empty() {
            err(E_INVALID_VALUE, 0)
        } else {
            Ok(())
        }
    };
    let meta_len = || -> Result<u64, Error> {
        if spec.meta.len() as u64 > lim.max_meta_entries {
            return err(E_METADATA_LIMIT, 0);
        }
        let mut n = varint::encoded_len(spec.meta.len() as u64) as u64;
        let mut total = 0u64;
        for (k, v) in spec.meta.iter() {
            check_name(k, true)?;
            total += (k.len() + v.len()) as u64;
            n += str_len(k) + str_len(v);
        }
        if total > lim.max_meta_bytes {
            return err(E_METADATA_LIMIT, 0);
        }
        Ok(n)
    };
    let ts = |n: usize| -> Result<u64, Error> {
        for t in spec.t.iter().take(n) {
            if !t.is_finite() {
                return err(E_INVALID_VALUE, 0);
            }
        }
        Ok(8 * n as u64)
    };
    let vlen = |v: u64| varint::encoded_len(v) as u64;
    let head: u64 = match spec.ty {
        T_HELLO | T_WELCOME => {
            check_num(spec.n1)?;
            check_name(spec.s, false)?;
            vlen(spec.n1) + str_len(spec.s)
        }
        T_GOAWAY | T_ERROR => {
            check_num(spec.n1)?;
            vlen(spec.n1) + str_len(spec.s)
        }
        T_REQUEST => {
            check_name(spec.s, true)?;
            check_num(spec.n1)?;
            str_len(spec.s) + vlen(spec.n1) + meta_len()?
        }
        T_RESPONSE => meta_len()?,
        T_EVENT | T_OPEN => {
            check_name(spec.s, true)?;
            str_len(spec.s) + meta_len()?
        }
        T_DATA => {
            let mut n = 0;
            if spec.flags & F_STREAM_ID != 0 {
                check_num(spec.n1)?;
                n += vlen(spec.n1);
            }
            if spec.flags & F_SEQ != 0 {
                check_num(spec.n2)?;
                n += vlen(spec.n2);
            }
            if spec.flags & F_TS != 0 {
                n += ts(1)?;
            }
            n
        }
        T_PING => {
            check_num(spec.n1)?;
            vlen(spec.n1) + ts(1)?
        }
        T_PONG => {
            check_num(spec.n1)?;
            vlen(spec.n1) + ts(3)?
        }
        T_WINDOW => {
            check_num(spec.n1)?;
            vlen(spec.n1)
        }
        _ => return err(E_UNKNOWN_TYPE, 0),
    };
    if (spec.ty == T_PING || spec.ty == T_PONG || spec.ty == T_WINDOW) && spec.payload_len != 0 {
        return err(E_TRAILING_BYTES, 0);
    }
    let body_len = head + spec.payload_len as u64;
    if body_len > lim.max_frame {
        return err(E_FRAME_TOO_LARGE, 0);
    }
    out.reserve((head + 24) as usize);
    varint::write(out, spec.ty);
    varint::write(out, spec.flags);
    varint::write(out, body_len);
    let put_str = |out: &mut Vec<u8>, s: &[u8]| {
        varint::write(out, s.len() as u64);
        out.extend_from_slice(s);
    };
    let put_meta = |out: &mut Vec<u8>| {
        varint::write(out, spec.meta.len() as u64);
        for (k, v) in spec.meta.iter() {
            put_str(out, k);
            put_str(out, v);
        }
    };
    match spec.ty {
        T_HELLO | T_WELCOME | T_GOAWAY | T_ERROR => {
            varint::write(out, spec.n1);
            put_str(out, spec.s);
        }
        T_REQUEST => {
            put_str(out, spec.s);
            varint::write(out, spec.n1);
            put_meta(out);
        }
        T_RESPONSE => put_meta(out),
        T_EVENT | T_OPEN => {
            put_str(out, spec.s);
            put_meta(out);
        }
        T_DATA => {
            if spec.flags & F_STREAM_ID != 0 {
                varint::write(out, spec.n1);
            }
            if spec.flags & F_SEQ != 0 {
                varint::write(out, spec.n2);
            }
            if spec.flags & F_TS != 0 {
                out.extend_from_slice(&spec.t[0].to_le_bytes());
            }
        }
        T_PING => {
            varint::write(out, spec.n1);
            out.extend_from_slice(&spec.t[0].to_le_bytes());
        }
        T_WINDOW => {
            varint::write(out, spec.n1);
        }
        _ => {
            varint::write(out, spec.n1);
            for t in spec.t.iter() {
                out.extend_from_slice(&t.to_le_bytes());
            }
        }
    }
    Ok(())
}
