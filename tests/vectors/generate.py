#!/usr/bin/env python3
"""Writes frames.json: the test vectors shared by `cargo test` (wasm/tests/vectors.rs) and the
TypeScript tests. This is a third, independent implementation of docs/PROTOCOL.md (Python,
written from the document, not from the Rust or TypeScript code), so the vectors check both
implementations against the spec rather than against each other.

Run: python3 tests/vectors/generate.py > tests/vectors/frames.json
"""
import json
import struct

TYPES = {"HELLO": 1, "WELCOME": 2, "GOAWAY": 3, "REQUEST": 4, "RESPONSE": 5, "ERROR": 6,
         "EVENT": 7, "OPEN": 8, "DATA": 9, "PING": 10, "PONG": 11, "WINDOW": 12}


def varint(v):
    if v < 1 << 6:
        return bytes([v])
    if v < 1 << 14:
        return struct.pack(">H", v | 0x4000)
    if v < 1 << 30:
        return struct.pack(">I", v | 0x80000000)
    assert v < 1 << 62
    return struct.pack(">Q", v | 0xC000000000000000)


def string(s):
    b = s.encode("utf-8")
    return varint(len(b)) + b


def meta(pairs):
    return varint(len(pairs)) + b"".join(string(k) + string(v) for k, v in pairs)


def f64(x):
    return struct.pack("<d", x)


def body(f):
    t = f["type"]
    if t in ("HELLO", "WELCOME"):
        return varint(f["version"]) + string(f["name"])
    if t == "GOAWAY":
        return varint(f["code"]) + string(f["reason"])
    if t == "ERROR":
        return varint(f["code"]) + string(f["message"])
    if t == "REQUEST":
        return string(f["method"]) + varint(f["deadlineMs"]) + meta(f["metadata"])
    if t == "RESPONSE":
        return meta(f["metadata"])
    if t == "EVENT":
        return string(f["topic"]) + meta(f["metadata"])
    if t == "OPEN":
        return string(f["name"]) + meta(f["metadata"])
    if t == "DATA":
        out = b""
        if "streamId" in f:
            out += varint(f["streamId"])
        if "seq" in f:
            out += varint(f["seq"])
        if "timestamp" in f:
            out += f64(f["timestamp"])
        return out
    if t == "PING":
        return varint(f["seq"]) + f64(f["t1"])
    if t == "WINDOW":
        return varint(f["increment"])
    if t == "PONG":
        return varint(f["seq"]) + f64(f["t1"]) + f64(f["t2"]) + f64(f["t3"])
    raise ValueError(t)


def frame_flags(f):
    flags = f.get("flags", 0)
    if f["type"] == "DATA":
        flags |= (0x08 if "streamId" in f else 0) | (0x02 if "seq" in f else 0) | (0x04 if "timestamp" in f else 0)
    return flags


def encode(f):
    b = body(f) + bytes.fromhex(f.get("payload", ""))
    return varint(TYPES[f["type"]]) + varint(frame_flags(f)) + varint(len(b)) + b


FRAMES = [
    ("hello", {"type": "HELLO", "flags": 0, "version": 1, "name": "client-1", "payload": "80"}),
    ("welcome", {"type": "WELCOME", "flags": 0, "version": 1, "name": "", "payload": ""}),
    ("goaway", {"type": "GOAWAY", "flags": 0, "code": 14, "reason": "server shutting down"}),
    ("request raw with metadata", {"type": "REQUEST", "flags": 1, "method": "audio.play", "deadlineMs": 2000,
                                   "metadata": [["authorization", "Bearer x"], ["trace", "t-1"]], "payload": "00ff10"}),
    ("request cancellable", {"type": "REQUEST", "flags": 5, "method": "job.run", "deadlineMs": 500,
                             "metadata": [], "payload": "c0"}),
    ("request reusable stream", {"type": "REQUEST", "flags": 9, "method": "kv.get", "deadlineMs": 0,
                                 "metadata": [], "payload": "6b"}),
    ("request idempotent, no deadline", {"type": "REQUEST", "flags": 2, "method": "user.get", "deadlineMs": 0,
                                         "metadata": [], "payload": "a161616131"}),
    ("request unicode method", {"type": "REQUEST", "flags": 0, "method": "größe.测试", "deadlineMs": 16383,
                                "metadata": [["ключ", "значение"]], "payload": ""}),
    ("response", {"type": "RESPONSE", "flags": 1, "metadata": [], "payload": "68656c6c6f"}),
    ("response with trailers", {"type": "RESPONSE", "flags": 0, "metadata": [["x", ""]], "payload": "c0"}),
    ("error", {"type": "ERROR", "flags": 0, "code": 5, "message": "method \"x\" not found", "payload": ""}),
    ("error with details", {"type": "ERROR", "flags": 0, "code": 3, "message": "bad", "payload": "81a1660a"}),
    ("event", {"type": "EVENT", "flags": 0, "topic": "audio.stopped", "metadata": [], "payload": "c0"}),
    ("open", {"type": "OPEN", "flags": 0, "name": "audio.stream", "metadata": [["codec", "opus"]], "payload": "80"}),
    ("data bare", {"type": "DATA", "flags": 1, "payload": "0102030405"}),
    ("data empty", {"type": "DATA", "flags": 1, "payload": ""}),
    ("data end of direction", {"type": "DATA", "flags": 17, "payload": ""}),
    ("data seq+ts", {"type": "DATA", "flags": 1, "seq": 4294967296, "timestamp": 1732611111123.25, "payload": "aa"}),
    ("data datagram", {"type": "DATA", "flags": 1, "streamId": 7, "seq": 63, "timestamp": -0.5, "payload": "bb"}),
    ("data max safe seq", {"type": "DATA", "flags": 1, "seq": 9007199254740991, "payload": ""}),
    ("ping", {"type": "PING", "flags": 0, "seq": 1, "t1": 1000.125}),
    ("pong", {"type": "PONG", "flags": 0, "seq": 65, "t1": 1000.125, "t2": 1003.5, "t3": 1003.75}),
    ("window", {"type": "WINDOW", "flags": 0, "increment": 262144}),
]

# Varints: RFC 9000 Appendix A.1 samples plus boundaries. `canonical` marks the shortest form.
VARINTS = [
    ("c2197c5eff14e88c", "151288809941952652", True),
    ("9d7f3e7d", "494878333", True),
    ("7bbd", "15293", True),
    ("25", "37", True),
    ("4025", "37", False),
    ("00", "0", True),
    ("3f", "63", True),
    ("4040", "64", True),
    ("7fff", "16383", True),
    ("80004000", "16384", True),
    ("bfffffff", "1073741823", True),
    ("c000000040000000", "1073741824", True),
    ("ffffffffffffffff", "4611686018427387903", True),
]


def invalid():
    req = encode(FRAMES[3][1])
    v = []
    v.append(("unknown type", "3f0000", "UNKNOWN_TYPE", 0))
    v.append(("unknown flag on request", "0410" + "04" + "016b0000", "UNKNOWN_FLAGS", 1))
    v.append(("unknown flag on ping", "0a01" + "09" + "01" + f64(1.0).hex(), "UNKNOWN_FLAGS", 1))
    v.append(("frame larger than the limit", "0901" + varint(1 << 24 + 1).hex(), "FRAME_TOO_LARGE", 2))
    v.append(("body shorter than its header fields", "0400" + "02" + "05" + "61", "TRUNCATED", 5))
    v.append(("empty method", "0400" + "03" + "00" + "00" + "00", "INVALID_VALUE", 3))
    v.append(("method longer than max name", "0400" + varint(2 + 257 + 2).hex() + varint(257).hex() + "61" * 257 + "0000",
              "NAME_TOO_LONG", 4))
    v.append(("invalid utf-8 in topic", "0700" + "04" + "02" + "c328" + "00", "INVALID_UTF8", 4))
    v.append(("metadata over the entry limit", "0500" + "02" + "4041", "METADATA_LIMIT", 3))
    v.append(("duplicate metadata key", "0500" + "07" + "02" + "0161" + "00" + "0161" + "00", "INVALID_VALUE", 7))
    v.append(("non-finite timestamp", "0904" + "08" + f64(float("nan")).hex(), "INVALID_VALUE", 3))
    v.append(("infinite ping time", "0a00" + "09" + "00" + f64(float("inf")).hex(), "INVALID_VALUE", 4))
    v.append(("sequence above 2^53-1", "0902" + "08" + varint(1 << 53).hex(), "VALUE_RANGE", 3))
    v.append(("bytes after a window", "0c00" + "02" + "01" + "00", "TRAILING_BYTES", 4))
    v.append(("bytes after a pong", "0b00" + "1a" + "00" + f64(0).hex() * 3 + "00", "TRAILING_BYTES", 28))
    # The last three only make sense for one whole frame: a splitter waits for more bytes.
    v.append(("truncated frame", req[:-1].hex(), "TRUNCATED", len(req) - 1))
    v.append(("trailing bytes after one frame", (req + b"\x00").hex(), "TRAILING_BYTES", len(req)))
    v.append(("empty input", "", "TRUNCATED", 0))
    return v


def main():
    out = {
        "comment": "Generated by tests/vectors/generate.py from docs/PROTOCOL.md; shared by cargo test and bun test.",
        "limits": {"maxFrameSize": 16777216, "maxNameLength": 256, "maxMetadataEntries": 64, "maxMetadataBytes": 8192},
        "varints": [{"hex": h, "value": val, "canonical": c} for h, val, c in VARINTS],
        "frames": [{"name": n, "hex": encode(f).hex(), "frame": f} for n, f in FRAMES],
        "invalid": [{"name": n, "hex": h, "code": c, "offset": o, "wholeFrameOnly": i >= len(invalid()) - 3}
                    for i, (n, h, c, o) in enumerate(invalid())],
    }
    print(json.dumps(out, indent=1, ensure_ascii=False))


main()
