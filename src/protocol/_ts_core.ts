// The plain-TypeScript frame core: the reference the WASM core is checked against, and the
// fallback behind the same interface where it is faster.

import { DecodeError, DecodeErrorCode as E } from "./decode_error.ts";
import {
  EMPTY_PAYLOAD,
  encodeError,
  type FrameCore,
  type FrameFields,
  frameFields,
  makeFrame,
  type ScanResult,
} from "./_frame_core.ts";
import { ALLOWED_FLAGS, type Frame, FrameType as T, type Metadata, wireFlags } from "./frame.ts";
import type { ProtocolLimits } from "./limits.ts";
import { EMPTY_METADATA, utf8Decode, utf8Encoder, utf8Invalid } from "./_utf8.ts";

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
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

function varintLen(v: number): number {
  return v < 0x40 ? 1 : v < 0x4000 ? 2 : v < 0x40000000 ? 4 : 8;
}

function writeVarint(b: Uint8Array, p: number, v: number): number {
  if (v < 0x40) {
    b[p] = v;
    return p + 1;
  }
  if (v < 0x4000) {
    b[p] = 0x40 | (v >> 8);
    b[p + 1] = v & 0xff;
    return p + 2;
  }
  if (v < 0x40000000) {
    b[p] = 0x80 | (v >>> 24);
    b[p + 1] = (v >>> 16) & 0xff;
    b[p + 2] = (v >>> 8) & 0xff;
    b[p + 3] = v & 0xff;
    return p + 4;
  }
  const hi = Math.floor(v / TWO32);
  const lo = v >>> 0;
  b[p] = 0xc0 | (hi >>> 24);
  b[p + 1] = (hi >>> 16) & 0xff;
  b[p + 2] = (hi >>> 8) & 0xff;
  b[p + 3] = hi & 0xff;
  b[p + 4] = lo >>> 24;
  b[p + 5] = (lo >>> 16) & 0xff;
  b[p + 6] = (lo >>> 8) & 0xff;
  b[p + 7] = lo & 0xff;
  return p + 8;
}

const f64buf = new Float64Array(1);
const f64bytes = new Uint8Array(f64buf.buffer);
// WASM and the wire are little-endian; so is every platform these runtimes ship on, but check.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function readF64(b: Uint8Array, p: number): number {
  if (LITTLE_ENDIAN) {
    for (let i = 0; i < 8; i++) f64bytes[i] = b[p + i];
  } else {
    for (let i = 0; i < 8; i++) f64bytes[i] = b[p + 7 - i];
  }
  return f64buf[0];
}

function writeF64(b: Uint8Array, p: number, v: number): number {
  f64buf[0] = v;
  if (LITTLE_ENDIAN) {
    for (let i = 0; i < 8; i++) b[p + i] = f64bytes[i];
  } else {
    for (let i = 0; i < 8; i++) b[p + i] = f64bytes[7 - i];
  }
  return p + 8;
}

function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2;
      i++;
    } else n += 2; // BMP char, or a lone surrogate that encodes as U+FFFD (3 bytes)
  }
  return n;
}

function writeUtf8(b: Uint8Array, p: number, s: string, len: number): number {
  if (len === s.length) {
    for (let i = 0; i < len; i++) b[p + i] = s.charCodeAt(i);
    return p + len;
  }
  utf8Encoder.encodeInto(s, b.subarray(p, p + len));
  return p + len;
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

  constructor(readonly limits: Readonly<ProtocolLimits>) {
    this.#r = new Reader(limits);
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
      default: // PONG
        n1 = r.number();
        t1 = r.f64();
        t2 = r.f64();
        t3 = r.f64();
    }
    if ((ty === T.PING || ty === T.PONG) && r.p !== end) throw new DecodeError(E.TRAILING_BYTES, r.p);
    const payload = r.p === end ? EMPTY_PAYLOAD : b.subarray(r.p, end);
    r.b = EMPTY_PAYLOAD;
    return makeFrame(ty, flags, str, n1, n2, t1, t2, t3, metadata, payload);
  }

  scan(buf: Uint8Array, out: Frame[]): ScanResult {
    let p = 0;
    while (p < buf.length) {
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

  /** Header size and the UTF-8 lengths it needs, after the same checks the WASM core makes. */
  #measure(frame: Frame, f: FrameFields, flags: number): { head: number; lens: number[] } {
    const ty = frame.type;
    const lim = this.limits;
    const allowed = ALLOWED_FLAGS[ty];
    if (allowed === undefined) throw encodeError(E.UNKNOWN_TYPE, frame);
    if (!Number.isInteger(flags) || flags < 0 || (flags & ~allowed) !== 0) throw encodeError(E.UNKNOWN_FLAGS, frame);
    const lens: number[] = [];
    const name = (nonEmpty: boolean): number => {
      const n = utf8Length(f.str);
      if (n > lim.maxNameLength) throw encodeError(E.NAME_TOO_LONG, frame);
      if (nonEmpty && n === 0) throw encodeError(E.INVALID_VALUE, frame);
      lens.push(n);
      return varintLen(n) + n;
    };
    const meta = (): number => {
      const keys = Object.keys(f.metadata);
      if (keys.length > lim.maxMetadataEntries) throw encodeError(E.METADATA_LIMIT, frame);
      let size = varintLen(keys.length);
      let total = 0;
      for (const k of keys) {
        const kl = utf8Length(k);
        const vl = utf8Length(f.metadata[k]);
        if (kl > lim.maxNameLength) throw encodeError(E.NAME_TOO_LONG, frame);
        if (kl === 0) throw encodeError(E.INVALID_VALUE, frame);
        total += kl + vl;
        size += varintLen(kl) + kl + varintLen(vl) + vl;
        lens.push(kl, vl);
      }
      if (total > lim.maxMetadataBytes) throw encodeError(E.METADATA_LIMIT, frame);
      return size;
    };
    const ts = (n: number): number => {
      for (const t of [f.t1, f.t2, f.t3].slice(0, n)) {
        if (!Number.isFinite(t)) throw encodeError(E.INVALID_VALUE, frame);
      }
      return 8 * n;
    };
    let head: number;
    switch (ty) {
      case T.HELLO:
      case T.WELCOME:
        head = varintLen(f.n1) + name(false);
        break;
      case T.GOAWAY:
      case T.ERROR: {
        const n = utf8Length(f.str);
        lens.push(n);
        head = varintLen(f.n1) + varintLen(n) + n;
        break;
      }
      case T.REQUEST:
        head = name(true) + varintLen(f.n1) + meta();
        break;
      case T.RESPONSE:
        head = meta();
        break;
      case T.EVENT:
      case T.OPEN:
        head = name(true) + meta();
        break;
      case T.DATA:
        head = (flags & 0x08 ? varintLen(f.n1) : 0) + (flags & 0x02 ? varintLen(f.n2) : 0) + (flags & 0x04 ? ts(1) : 0);
        break;
      case T.PING:
        head = varintLen(f.n1) + ts(1);
        break;
      default:
        head = varintLen(f.n1) + ts(3);
    }
    if ((ty === T.PING || ty === T.PONG) && f.payload.length !== 0) throw encodeError(E.TRAILING_BYTES, frame);
    if (head + f.payload.length > lim.maxFrameSize) throw encodeError(E.FRAME_TOO_LARGE, frame);
    return { head, lens };
  }

  /** Writes the header at `b[p]`; returns the end offset. */
  #write(b: Uint8Array, p: number, frame: Frame, f: FrameFields, flags: number, lens: number[], head: number): number {
    const ty = frame.type;
    p = writeVarint(b, p, ty);
    p = writeVarint(b, p, flags);
    p = writeVarint(b, p, head + f.payload.length);
    let li = 0;
    const str = (s: string): void => {
      const n = lens[li++];
      p = writeVarint(b, p, n);
      p = writeUtf8(b, p, s, n);
    };
    const meta = (): void => {
      const keys = Object.keys(f.metadata);
      p = writeVarint(b, p, keys.length);
      for (const k of keys) {
        str(k);
        str(f.metadata[k]);
      }
    };
    switch (ty) {
      case T.HELLO:
      case T.WELCOME:
      case T.GOAWAY:
      case T.ERROR:
        p = writeVarint(b, p, f.n1);
        str(f.str);
        break;
      case T.REQUEST:
        str(f.str);
        p = writeVarint(b, p, f.n1);
        meta();
        break;
      case T.RESPONSE:
        meta();
        break;
      case T.EVENT:
      case T.OPEN:
        str(f.str);
        meta();
        break;
      case T.DATA:
        if (flags & 0x08) p = writeVarint(b, p, f.n1);
        if (flags & 0x02) p = writeVarint(b, p, f.n2);
        if (flags & 0x04) p = writeF64(b, p, f.t1);
        break;
      case T.PING:
        p = writeVarint(b, p, f.n1);
        p = writeF64(b, p, f.t1);
        break;
      default:
        p = writeVarint(b, p, f.n1);
        p = writeF64(b, p, f.t1);
        p = writeF64(b, p, f.t2);
        p = writeF64(b, p, f.t3);
    }
    return p;
  }

  #prepare(frame: Frame) {
    const f = frameFields(frame);
    const flags = wireFlags(frame);
    const { head, lens } = this.#measure(frame, f, flags);
    const size = varintLen(frame.type) + varintLen(flags) + varintLen(head + f.payload.length) + head;
    return { f, flags, head, lens, size };
  }

  encodeHeader(frame: Frame): Uint8Array {
    const { f, flags, head, lens, size } = this.#prepare(frame);
    const out = new Uint8Array(size);
    this.#write(out, 0, frame, f, flags, lens, head);
    return out;
  }

  encode(frame: Frame): Uint8Array {
    const { f, flags, head, lens, size } = this.#prepare(frame);
    const out = new Uint8Array(size + f.payload.length);
    out.set(f.payload, this.#write(out, 0, frame, f, flags, lens, head));
    return out;
  }

  encodeMany(frames: readonly Frame[]): Uint8Array {
    const prepared = frames.map((fr) => this.#prepare(fr));
    let total = 0;
    for (const p of prepared) total += p.size + p.f.payload.length;
    const out = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < frames.length; i++) {
      const { f, flags, head, lens } = prepared[i];
      at = this.#write(out, at, frames[i], f, flags, lens, head);
      out.set(f.payload, at);
      at += f.payload.length;
    }
    return out;
  }
}
