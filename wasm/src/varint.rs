//! QUIC variable-length integers (RFC 9000 §16).
//!
//! The two most significant bits of the first byte give the length (1, 2, 4 or 8 bytes); the
//! remaining bits carry the value in network byte order. Encoding always uses the shortest form;
//! decoding accepts any form, as the RFC requires (its own sample `0x4025` is 37).

/// Largest value a varint can carry: 2^62 - 1.
pub const MAX: u64 = (1u64 << 62) - 1;

/// Number of bytes the shortest encoding of `v` takes, or 0 when `v` exceeds [`MAX`].
pub fn encoded_len(v: u64) -> usize {
    if v < (1 << 6) {
        1
    } else if v < (1 << 14) {
        2
    } else if v < (1 << 30) {
        4
    } else if v <= MAX {
        8
    } else {
        0
    }
}

/// Appends the shortest encoding of `v` to `out`. Returns false (writing nothing) when `v`
/// exceeds [`MAX`].
pub fn write(out: &mut Vec<u8>, v: u64) -> bool {
    match encoded_len(v) {
        1 => out.push(v as u8),
        2 => out.extend_from_slice(&((v as u16) | 0x4000).to_be_bytes()),
        4 => out.extend_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes()),
        8 => out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes()),
        _ => return false,
    }
    true
}

/// Outcome of reading a varint from a byte slice.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Read {
    /// The value and the number of bytes it took.
    Value(u64, usize),
    /// The slice ends before the varint does; `needed` is its full length.
    Short(usize),
}

/// Reads one varint at the start of `buf`.
pub fn read(buf: &[u8]) -> Read {
    if buf.is_empty() {
        return Read::Short(1);
    }
    let first = buf[0];
    let len = 1usize << (first >> 6);
    if buf.len() < len {
        return Read::Short(len);
    }
    let mut v = (first & 0x3f) as u64;
    let mut i = 1;
    while i < len {
        v = (v << 8) | buf[i] as u64;
        i += 1;
    }
    Read::Value(v, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9000_samples() {
        // RFC 9000 Appendix A.1 sample encodings.
        let cases: [(&[u8], u64); 5] = [
            (&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c], 151_288_809_941_952_652),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
            (&[0x40, 0x25], 37),
        ];
        for (bytes, value) in cases.iter() {
            assert_eq!(read(bytes), Read::Value(*value, bytes.len()));
        }
        // Shortest-form encodings match the RFC (all but the deliberately long 0x4025).
        for (bytes, value) in cases.iter().take(4) {
            let mut out = Vec::new();
            assert!(write(&mut out, *value));
            assert_eq!(&out[..], *bytes);
        }
    }

    #[test]
    fn boundaries() {
        for &(v, n) in [(0u64, 1usize), (63, 1), (64, 2), (16383, 2), (16384, 4), ((1 << 30) - 1, 4), (1 << 30, 8), (MAX, 8)].iter() {
            let mut out = Vec::new();
            assert!(write(&mut out, v));
            assert_eq!(out.len(), n);
            assert_eq!(read(&out), Read::Value(v, n));
            assert_eq!(read(&out[..n - 1]), Read::Short(n));
        }
        let mut out = Vec::new();
        assert!(!write(&mut out, MAX + 1));
        assert!(out.is_empty());
    }
}
