//! Runs the shared test vectors (tests/vectors/frames.json, also read by the TypeScript tests)
//! against the Rust codec. The JSON reader below is deliberately tiny: the crate takes no
//! external crates, and the file is ours.

use echostream_wasm::frame::{self, Limits, Spec};
use echostream_wasm::varint;

#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn get(&self, k: &str) -> Option<&J> {
        match self {
            J::Obj(v) => v.iter().find(|(key, _)| key == k).map(|(_, v)| v),
            _ => None,
        }
    }
    fn s(&self) -> &str {
        match self {
            J::Str(s) => s,
            _ => panic!("not a string: {:?}", self),
        }
    }
    fn n(&self) -> f64 {
        match self {
            J::Num(n) => *n,
            _ => panic!("not a number: {:?}", self),
        }
    }
    fn arr(&self) -> &Vec<J> {
        match self {
            J::Arr(a) => a,
            _ => panic!("not an array: {:?}", self),
        }
    }
    fn b(&self) -> bool {
        matches!(self, J::Bool(true))
    }
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> P<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] as char).is_whitespace() {
            self.i += 1;
        }
    }
    fn value(&mut self) -> J {
        self.ws();
        let c = self.s[self.i];
        match c {
            b'{' => {
                self.i += 1;
                let mut v = Vec::new();
                loop {
                    self.ws();
                    if self.s[self.i] == b'}' {
                        self.i += 1;
                        return J::Obj(v);
                    }
                    let k = match self.value() {
                        J::Str(s) => s,
                        other => panic!("bad key {:?}", other),
                    };
                    self.ws();
                    assert_eq!(self.s[self.i], b':');
                    self.i += 1;
                    let val = self.value();
                    v.push((k, val));
                    self.ws();
                    if self.s[self.i] == b',' {
                        self.i += 1;
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut v = Vec::new();
                loop {
                    self.ws();
                    if self.s[self.i] == b']' {
                        self.i += 1;
                        return J::Arr(v);
                    }
                    v.push(self.value());
                    self.ws();
                    if self.s[self.i] == b',' {
                        self.i += 1;
                    }
                }
            }
            b'"' => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    let start = self.i;
                    while self.s[self.i] != b'"' && self.s[self.i] != b'\\' {
                        self.i += 1;
                    }
                    out.push_str(std::str::from_utf8(&self.s[start..self.i]).unwrap());
                    if self.s[self.i] == b'"' {
                        self.i += 1;
                        return J::Str(out);
                    }
                    self.i += 1;
                    let e = self.s[self.i];
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let h = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
                            self.i += 4;
                            out.push(char::from_u32(u32::from_str_radix(h, 16).unwrap()).unwrap());
                        }
                        _ => panic!("escape {}", e),
                    }
                }
            }
            b't' => {
                self.i += 4;
                J::Bool(true)
            }
            b'f' => {
                self.i += 5;
                J::Bool(false)
            }
            b'n' => {
                self.i += 4;
                J::Null
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && b"+-0123456789.eE".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                J::Num(std::str::from_utf8(&self.s[start..self.i]).unwrap().parse().unwrap())
            }
        }
    }
}

fn vectors() -> J {
    let text = include_str!("../../tests/vectors/frames.json");
    P { s: text.as_bytes(), i: 0 }.value()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn limits(v: &J) -> Limits {
    let l = v.get("limits").unwrap();
    Limits {
        max_frame: l.get("maxFrameSize").unwrap().n() as u64,
        max_name: l.get("maxNameLength").unwrap().n() as u64,
        max_meta_entries: l.get("maxMetadataEntries").unwrap().n() as u64,
        max_meta_bytes: l.get("maxMetadataBytes").unwrap().n() as u64,
    }
}

fn type_code(name: &str) -> u64 {
    match name {
        "HELLO" => frame::T_HELLO,
        "WELCOME" => frame::T_WELCOME,
        "GOAWAY" => frame::T_GOAWAY,
        "REQUEST" => frame::T_REQUEST,
        "RESPONSE" => frame::T_RESPONSE,
        "ERROR" => frame::T_ERROR,
        "EVENT" => frame::T_EVENT,
        "OPEN" => frame::T_OPEN,
        "DATA" => frame::T_DATA,
        "PING" => frame::T_PING,
        "PONG" => frame::T_PONG,
        "WINDOW" => frame::T_WINDOW,
        _ => panic!("type {}", name),
    }
}

fn error_code(name: &str) -> u32 {
    match name {
        "FRAME_TOO_LARGE" => frame::E_FRAME_TOO_LARGE,
        "UNKNOWN_TYPE" => frame::E_UNKNOWN_TYPE,
        "UNKNOWN_FLAGS" => frame::E_UNKNOWN_FLAGS,
        "TRUNCATED" => frame::E_TRUNCATED,
        "NAME_TOO_LONG" => frame::E_NAME_TOO_LONG,
        "METADATA_LIMIT" => frame::E_METADATA_LIMIT,
        "INVALID_UTF8" => frame::E_INVALID_UTF8,
        "INVALID_VALUE" => frame::E_INVALID_VALUE,
        "TRAILING_BYTES" => frame::E_TRAILING_BYTES,
        "VALUE_RANGE" => frame::E_VALUE_RANGE,
        _ => panic!("code {}", name),
    }
}

/// The frame's one string field, its first and second numeric fields, and its timestamps.
fn fields(f: &J) -> (String, u64, u64, [f64; 3], u64) {
    let ty = f.get("type").unwrap().s();
    let s = ["method", "topic", "name", "reason", "message"].iter().find_map(|k| f.get(k)).map(|v| v.s().to_string()).unwrap_or_default();
    let num = |k: &str| f.get(k).map(|v| v.n() as u64).unwrap_or(0);
    let (n1, n2) = match ty {
        "HELLO" | "WELCOME" => (num("version"), 0),
        "GOAWAY" | "ERROR" => (num("code"), 0),
        "REQUEST" => (num("deadlineMs"), 0),
        "DATA" => (num("streamId"), num("seq")),
        "PING" | "PONG" => (num("seq"), 0),
        "WINDOW" => (num("increment"), 0),
        _ => (0, 0),
    };
    let t = |k: &str| f.get(k).map(|v| v.n()).unwrap_or(0.0);
    let ts = if ty == "DATA" { [t("timestamp"), 0.0, 0.0] } else { [t("t1"), t("t2"), t("t3")] };
    let mut flags = num("flags");
    if ty == "DATA" {
        flags |= if f.get("streamId").is_some() { frame::F_STREAM_ID } else { 0 };
        flags |= if f.get("seq").is_some() { frame::F_SEQ } else { 0 };
        flags |= if f.get("timestamp").is_some() { frame::F_TS } else { 0 };
    }
    (s, n1, n2, ts, flags)
}

#[test]
fn varints_match_vectors() {
    let v = vectors();
    for c in v.get("varints").unwrap().arr() {
        let bytes = hex(c.get("hex").unwrap().s());
        let value: u64 = c.get("value").unwrap().s().parse().unwrap();
        assert_eq!(varint::read(&bytes), varint::Read::Value(value, bytes.len()));
        if c.get("canonical").unwrap().b() {
            let mut out = Vec::new();
            assert!(varint::write(&mut out, value));
            assert_eq!(out, bytes);
        }
    }
}

#[test]
fn frames_decode_and_encode_to_vectors() {
    let v = vectors();
    let lim = limits(&v);
    for c in v.get("frames").unwrap().arr() {
        let name = c.get("name").unwrap().s();
        let bytes = hex(c.get("hex").unwrap().s());
        let f = c.get("frame").unwrap();
        let (s, n1, n2, t, flags) = fields(f);
        let payload = hex(f.get("payload").map(|p| p.s()).unwrap_or(""));
        let meta: Vec<(Vec<u8>, Vec<u8>)> = f
            .get("metadata")
            .map(|m| m.arr().iter().map(|kv| (kv.arr()[0].s().as_bytes().to_vec(), kv.arr()[1].s().as_bytes().to_vec())).collect())
            .unwrap_or_default();

        let mut metas = Vec::new();
        let r = frame::decode_one(&bytes, &lim, &mut metas).unwrap_or_else(|e| panic!("{}: {:?}", name, e));
        assert_eq!(r.ty, type_code(f.get("type").unwrap().s()), "{}", name);
        assert_eq!(r.flags, flags, "{}", name);
        assert_eq!(&bytes[r.str_off..r.str_off + r.str_len], s.as_bytes(), "{}", name);
        assert_eq!((r.n1, r.n2), (n1, n2), "{}", name);
        assert_eq!(r.t, t, "{}", name);
        assert_eq!(&bytes[r.payload..r.end], &payload[..], "{}", name);
        assert_eq!(r.meta_count, meta.len(), "{}", name);
        for (m, (k, val)) in metas.iter().zip(meta.iter()) {
            assert_eq!(&bytes[m.koff..m.koff + m.klen], &k[..]);
            assert_eq!(&bytes[m.voff..m.voff + m.vlen], &val[..]);
        }

        let pairs: Vec<(&[u8], &[u8])> = meta.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        let spec = Spec { ty: r.ty, flags, n1, n2, t, s: s.as_bytes(), meta: &pairs, payload_len: payload.len() };
        let mut out = Vec::new();
        frame::encode_header(&spec, &lim, &mut out).unwrap();
        out.extend_from_slice(&payload);
        assert_eq!(out, bytes, "{}: encode", name);
    }
}

#[test]
fn invalid_vectors_give_the_listed_error() {
    let v = vectors();
    let lim = limits(&v);
    for c in v.get("invalid").unwrap().arr() {
        let name = c.get("name").unwrap().s();
        let bytes = hex(c.get("hex").unwrap().s());
        let want = frame::Error { code: error_code(c.get("code").unwrap().s()), offset: c.get("offset").unwrap().n() as usize };
        let mut metas = Vec::new();
        assert_eq!(frame::decode_one(&bytes, &lim, &mut metas).unwrap_err(), want, "{}", name);
        if !c.get("wholeFrameOnly").unwrap().b() {
            let mut recs = Vec::new();
            assert_eq!(frame::scan(&bytes, &lim, &mut recs, &mut metas).unwrap_err(), want, "{} (scan)", name);
        }
    }
}

#[test]
fn scan_handles_every_split_point() {
    let v = vectors();
    let lim = limits(&v);
    let mut all = Vec::new();
    let mut count = 0;
    for c in v.get("frames").unwrap().arr() {
        all.extend(hex(c.get("hex").unwrap().s()));
        count += 1;
    }
    // Feed the stream as a prefix that grows one byte at a time, as a splitter would see it.
    let mut recs = Vec::new();
    let mut metas = Vec::new();
    let mut done = 0usize;
    let mut found = 0usize;
    for end in 1..=all.len() {
        recs.clear();
        let r = frame::scan(&all[done..end], &lim, &mut recs, &mut metas).unwrap();
        found += recs.len();
        done += r.consumed;
    }
    assert_eq!(found, count);
    assert_eq!(done, all.len());
}
