// The plain-TypeScript frame core: the reference the WASM core is checked against, and the
// fallback behind the same interface where it is faster.

import { DecodeError, DecodeErrorCode as E } from "./decode_error.ts";
import { EMPTY_PAYLOAD, type FrameCore, makeFrame, type ScanResult } from "./_frame_core.ts";
import { ALLOWED_FLAGS, type Frame, FrameFlag, FrameType as T, type Metadata } from "./frame.ts";
import type { ProtocolLimits } from "./limits.ts";
import { EMPTY_METADATA, utf8Decode, utf8Invalid } from "./_utf8.ts";
import { LITTLE_ENDIAN, Writer } from "./_ts_writer.ts";

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** DATA flags that add no field: a frame with only these takes the fast path of `scan`. */
const DATA_FLAGS_PLAIN = FrameFlag.RAW | FrameFlag.FIN;
const TWO32 = 0x100000000;

/** Reads a varint's value as a number (exact up to 2^53; larger values come out inexact but > MAX_SAFE). */
function readVarint(b: Uint8Array, p: number, end: number): number {
  if (p >= end) return -1;
  const first = b[p];
  const len = 1 << (first >> 6);
  if (p + len > end) return -1;
  if (len === 1) return first & 0x3f;
  if (len === 2) return ((first & 0x3f) << 8) | b[p + 1];
  if (len === 4) return (((first & 0x3f) << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  const hi = (((first & 0x3f) << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  const lo = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
  return hi * TWO32 + lo;
}

const f64buf = new Float64Array(1);
const f64bytes = new Uint8Array(f64buf.buffer);

function readF64(b: Uint8Array, p: number): number {
  if (LITTLE_ENDIAN) {
    for (let i = 0; i < 8; i++) f64bytes[i] = b[p + i];
  } else {
    for (let i = 0; i < 8; i++) f64bytes[i] = b[p + 7 - i];
  }
  return f64buf[0];
}

/** Cursor state for one decode; `p` advances, every read is bounded by `end`. */
class Reader {
  b: Uint8Array = EMPTY_PAYLOAD;
  p = 0;
  end = 0;
  constructor(readonly lim: Readonly<ProtocolLimits>) {}

  varint(): number {
    const v = readVarint(this.b, this.p, this.end);
    if (v < 0) throw new DecodeError(E.TRUNCATED, this.end);
    this.p += 1 << (this.b[this.p] >> 6);
    return v;
  }

  number(): number {
    const at = this.p;
    const v = this.varint();
    if (v > MAX_SAFE) throw new DecodeError(E.VALUE_RANGE, at);
    return v;
  }

  f64(): number {
    if (this.end - this.p < 8) throw new DecodeError(E.TRUNCATED, this.end);
    const v = readF64(this.b, this.p);
    if (!Number.isFinite(v)) throw new DecodeError(E.INVALID_VALUE, this.p);
    this.p += 8;
    return v;
  }

  /** Validates a string and returns its length; its bytes start at `this.p - len`. */
  string(max: number, nonEmpty: boolean): number {
    const at = this.p;
    const len = this.varint();
    if (len > max) throw new DecodeError(E.NAME_TOO_LONG, at);
    if (nonEmpty && len === 0) throw new DecodeError(E.INVALID_VALUE, at);
    if (this.end - this.p < len) throw new DecodeError(E.TRUNCATED, this.end);
    const bad = utf8Invalid(this.b, this.p, len);
    if (bad >= 0) throw new DecodeError(E.INVALID_UTF8, bad);
    this.p += len;
    return len;
  }

  str(max: number, nonEmpty: boolean): string {
    const len = this.string(max, nonEmpty);
    return utf8Decode(this.b, this.p - len, len);
  }

  metadata(): Metadata {
    const at = this.p;
    const count = this.varint();
    if (count > this.lim.maxMetadataEntries) throw new DecodeError(E.METADATA_LIMIT, at);
    if (count === 0) return EMPTY_METADATA;
    const out: Metadata = Object.create(null);
    let total = 0;
    for (let i = 0; i < count; i++) {
      const kat = this.p;
      const klen = this.string(this.lim.maxNameLength, true);
      const key = utf8Decode(this.b, this.p - klen, klen);
      if (key in out) throw new DecodeError(E.INVALID_VALUE, kat, `duplicate metadata key "${key}"`);
      const vlen = this.string(this.lim.maxMetadataBytes, false);
      total += klen + vlen;
      if (total > this.lim.maxMetadataBytes) throw new DecodeError(E.METADATA_LIMIT, kat);
      out[key] = utf8Decode(this.b, this.p - vlen, vlen);
    }
    return out;
  }
}

export class TsCore implements FrameCore {
  readonly impl = "ts" as const;
  readonly #r: Reader;
  readonly #w: Writer;

  constructor(readonly limits: Readonly<ProtocolLimits>) {
    this.#r = new Reader(limits);
    this.#w = new Writer(limits);
  }

  /** Parses a prefix at `p`: `[type, flags, bodyStart, bodyLen]`, or undefined if incomplete. */
  #prefix(b: Uint8Array, p: number): [number, number, number, number] | undefined {
    const at = p;
    const ty = readVarint(b, p, b.length);
    if (ty < 0) return undefined;
    const allowed = ALLOWED_FLAGS[ty];
    if (allowed === undefined) throw new DecodeError(E.UNKNOWN_TYPE, at);
    p += 1 << (b[p] >> 6);
    const flags = readVarint(b, p, b.length);
    if (flags < 0) return undefined;
    if (flags > 0xff || (flags & ~allowed) !== 0) throw new DecodeError(E.UNKNOWN_FLAGS, p);
    p += 1 << (b[p] >> 6);
    const len = readVarint(b, p, b.length);
    if (len < 0) return undefined;
    if (len > this.limits.maxFrameSize) throw new DecodeError(E.FRAME_TOO_LARGE, p);
    p += 1 << (b[p] >> 6);
    return [ty, flags, p, len];
  }

  #body(b: Uint8Array, ty: number, flags: number, start: number, end: number): Frame {
    const r = this.#r;
    r.b = b;
    r.p = start;
    r.end = end;
    const lim = this.limits;
    let str = "";
    let n1 = 0;
    let n2 = 0;
    let t1 = 0;
    let t2 = 0;
    let t3 = 0;
    let metadata = EMPTY_METADATA;
    switch (ty) {
      case T.HELLO:
      case T.WELCOME:
        n1 = r.number();
        str = r.str(lim.maxNameLength, false);
        break;
      case T.GOAWAY:
      case T.ERROR:
        n1 = r.number();
        str = r.str(lim.maxFrameSize, false);
        break;
      case T.REQUEST:
        str = r.str(lim.maxNameLength, true);
        n1 = r.number();
        metadata = r.metadata();
        break;
      case T.RESPONSE:
        metadata = r.metadata();
        break;
      case T.EVENT:
      case T.OPEN:
        str = r.str(lim.maxNameLength, true);
        metadata = r.metadata();
        break;
      case T.DATA:
        if (flags & 0x08) n1 = r.number();
        if (flags & 0x02) n2 = r.number();
        if (flags & 0x04) t1 = r.f64();
        break;
      case T.PING:
        n1 = r.number();
        t1 = r.f64();
        break;
      case T.WINDOW:
        n1 = r.number();
        break;
      default: // PONG
        n1 = r.number();
        t1 = r.f64();
        t2 = r.f64();
        t3 = r.f64();
    }
    if ((ty === T.PING || ty === T.PONG || ty === T.WINDOW) && r.p !== end) throw new DecodeError(E.TRAILING_BYTES, r.p);
    const payload = r.p === end ? EMPTY_PAYLOAD : b.subarray(r.p, end);
    r.b = EMPTY_PAYLOAD;
    return makeFrame(ty, flags, str, n1, n2, t1, t2, t3, metadata, payload);
  }

  scan(buf: Uint8Array, out: Frame[]): ScanResult {
    let p = 0;
    const n = buf.length;
    const max = this.limits.maxFrameSize;
    while (p < n) {
      // A DATA frame with none of the optional fields (what a plain stream carries): type and
      // flags are one byte each, so it needs no prefix tuple and no field reader.
      if (buf[p] === T.DATA && p + 2 < n && (buf[p + 1] & ~DATA_FLAGS_PLAIN) === 0) {
        const len = readVarint(buf, p + 2, n);
        if (len >= 0 && len <= max) {
          const start = p + 2 + (1 << (buf[p + 2] >> 6));
          const end = start + len;
          if (end > n) return { consumed: p, need: end - p };
          out.push({ type: T.DATA, flags: buf[p + 1], payload: end === start ? EMPTY_PAYLOAD : buf.subarray(start, end) });
          p = end;
          continue;
        }
      }
      const pre = this.#prefix(buf, p);
      if (!pre) return { consumed: p, need: -1 };
      const end = pre[2] + pre[3];
      if (end > buf.length) return { consumed: p, need: end - p };
      out.push(this.#body(buf, pre[0], pre[1], pre[2], end));
      p = end;
    }
    return { consumed: p, need: 0 };
  }

  decode(buf: Uint8Array): Frame {
    const pre = this.#prefix(buf, 0);
    if (!pre) throw new DecodeError(E.TRUNCATED, buf.length);
    const end = pre[2] + pre[3];
    if (end > buf.length) throw new DecodeError(E.TRUNCATED, buf.length);
    if (end < buf.length) throw new DecodeError(E.TRAILING_BYTES, end);
    return this.#body(buf, pre[0], pre[1], pre[2], end);
  }

  encodeHeader(frame: Frame): Uint8Array {
    return this.#w.header(frame);
  }

  encode(frame: Frame): Uint8Array {
    return this.#w.frame(frame);
  }

  encodeMany(frames: readonly Frame[]): Uint8Array {
    return this.#w.many(frames);
  }
}
