// Plain-TypeScript frame encoder: one pass into a reusable scratch buffer. The body is written
// after room for the longest prefix, then the prefix is written just before it, so no separate
// measuring pass is needed.

import { DecodeErrorCode as E } from "./decode_error.ts";
import { EMPTY_PAYLOAD, encodeError, frameFields } from "./_frame_core.ts";
import { ALLOWED_FLAGS, type Frame, FrameType as T, type Metadata, wireFlags } from "./frame.ts";
import type { ProtocolLimits } from "./limits.ts";
import { copyBytes, EMPTY_METADATA, utf8Encoder } from "./_utf8.ts";

const TWO32 = 0x100000000;
/** Room reserved for the prefix: type and flags (1 byte each here) and an 8-byte length. */
const PREFIX_ROOM = 10;

/** WASM and the wire are little-endian; so is every platform these runtimes ship on, but check. */
export const LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const f64buf = new Float64Array(1);
const f64bytes = new Uint8Array(f64buf.buffer);

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

export class Writer {
  #b = new Uint8Array(4096);
  #p = 0;
  #frame: Frame | undefined;

  constructor(readonly lim: Readonly<ProtocolLimits>) {}

  #room(n: number): void {
    if (this.#p + n > this.#b.length) {
      const next = new Uint8Array(Math.max(this.#b.length * 2, this.#p + n));
      next.set(this.#b.subarray(0, this.#p));
      this.#b = next;
    }
  }

  #varint(v: number): void {
    this.#room(8);
    this.#p = writeVarint(this.#b, this.#p, v);
  }

  #f64(v: number): void {
    if (!Number.isFinite(v)) throw encodeError(E.INVALID_VALUE, this.#frame!);
    this.#room(8);
    f64buf[0] = v;
    const b = this.#b;
    const p = this.#p;
    for (let i = 0; i < 8; i++) b[p + i] = f64bytes[LITTLE_ENDIAN ? i : 7 - i];
    this.#p += 8;
  }

  /** Writes a length-prefixed UTF-8 string; returns its byte length. */
  #str(s: string, max: number, nonEmpty: boolean): number {
    const cap = s.length * 3;
    this.#room(cap + 8);
    const b = this.#b;
    // Assume a 1-byte length for short strings (the usual case); move the bytes if wrong.
    const lenRoom = cap < 0x40 ? 1 : varintLen(cap);
    const at = this.#p + lenRoom;
    let n = 0;
    for (; n < s.length; n++) {
      const c = s.charCodeAt(n);
      if (c >= 0x80) break;
      b[at + n] = c;
    }
    if (n < s.length) n = utf8Encoder.encodeInto(s, b.subarray(at, at + cap)).written;
    if (n > max) throw encodeError(E.NAME_TOO_LONG, this.#frame!);
    if (nonEmpty && n === 0) throw encodeError(E.INVALID_VALUE, this.#frame!);
    const need = varintLen(n);
    if (need !== lenRoom) b.copyWithin(this.#p + need, at, at + n);
    this.#p = writeVarint(b, this.#p, n) + n;
    return n;
  }

  #meta(m: Metadata): void {
    if (m === EMPTY_METADATA) {
      this.#varint(0);
      return;
    }
    const keys = Object.keys(m);
    if (keys.length > this.lim.maxMetadataEntries) throw encodeError(E.METADATA_LIMIT, this.#frame!);
    this.#varint(keys.length);
    let total = 0;
    for (let i = 0; i < keys.length; i++) {
      total += this.#str(keys[i], this.lim.maxNameLength, true);
      total += this.#str(m[keys[i]], this.lim.maxMetadataBytes, false);
    }
    if (total > this.lim.maxMetadataBytes) throw encodeError(E.METADATA_LIMIT, this.#frame!);
  }

  /** Appends one frame (header, and the payload when `withPayload`); returns [start, headerEnd]. */
  #append(frame: Frame, withPayload: boolean): [number, number] {
    this.#frame = frame;
    const f = frameFields(frame);
    const ty = frame.type;
    const flags = wireFlags(frame);
    const allowed = ALLOWED_FLAGS[ty];
    if (allowed === undefined) throw encodeError(E.UNKNOWN_TYPE, frame);
    if (!Number.isInteger(flags) || flags < 0 || (flags & ~allowed) !== 0) throw encodeError(E.UNKNOWN_FLAGS, frame);
    const lim = this.lim;
    const base = this.#p;
    this.#room(PREFIX_ROOM);
    this.#p += PREFIX_ROOM;
    const body = this.#p;
    switch (ty) {
      case T.HELLO:
      case T.WELCOME:
        this.#varint(f.n1);
        this.#str(f.str, lim.maxNameLength, false);
        break;
      case T.GOAWAY:
      case T.ERROR:
        this.#varint(f.n1);
        this.#str(f.str, lim.maxFrameSize, false);
        break;
      case T.REQUEST:
        this.#str(f.str, lim.maxNameLength, true);
        this.#varint(f.n1);
        this.#meta(f.metadata);
        break;
      case T.RESPONSE:
        this.#meta(f.metadata);
        break;
      case T.EVENT:
      case T.OPEN:
        this.#str(f.str, lim.maxNameLength, true);
        this.#meta(f.metadata);
        break;
      case T.DATA:
        if (flags & 0x08) this.#varint(f.n1);
        if (flags & 0x02) this.#varint(f.n2);
        if (flags & 0x04) this.#f64(f.t1);
        break;
      case T.PING:
        this.#varint(f.n1);
        this.#f64(f.t1);
        break;
      case T.WINDOW:
        this.#varint(f.n1);
        break;
      default:
        this.#varint(f.n1);
        this.#f64(f.t1);
        this.#f64(f.t2);
        this.#f64(f.t3);
    }
    const payload = f.payload;
    if ((ty === T.PING || ty === T.PONG || ty === T.WINDOW) && payload.length !== 0) throw encodeError(E.TRAILING_BYTES, frame);
    const bodyLen = this.#p - body + payload.length;
    if (bodyLen > lim.maxFrameSize) throw encodeError(E.FRAME_TOO_LARGE, frame);
    // The prefix goes right before the body; type and flags are < 64 here, so 1 byte each.
    const start = body - 2 - varintLen(bodyLen);
    writeVarint(this.#b, writeVarint(this.#b, writeVarint(this.#b, start, ty), flags), bodyLen);
    const headerEnd = this.#p;
    if (withPayload && payload.length > 0) {
      this.#room(payload.length);
      this.#b.set(payload, this.#p);
      this.#p += payload.length;
    }
    if (start !== base && base !== 0) {
      // Within a batch, close the gap an unused part of the prefix room left.
      const shift = start - base;
      this.#b.copyWithin(base, start, this.#p);
      this.#p -= shift;
      return [base, headerEnd - shift];
    }
    return [start, headerEnd];
  }

  header(frame: Frame): Uint8Array {
    this.#p = 0;
    try {
      const [start, end] = this.#append(frame, false);
      return copyBytes(this.#b.subarray(start, end));
    } finally {
      this.#p = 0;
    }
  }

  frame(frame: Frame): Uint8Array {
    this.#p = 0;
    try {
      const payload = "payload" in frame && frame.payload instanceof Uint8Array ? frame.payload : EMPTY_PAYLOAD;
      // Large payloads: copy once into the result, not twice through the scratch buffer.
      if (payload.length > 4096) {
        const [start, end] = this.#append(frame, false);
        const out = new Uint8Array(end - start + payload.length);
        out.set(this.#b.subarray(start, end));
        out.set(payload, end - start);
        return out;
      }
      const [start] = this.#append(frame, true);
      return copyBytes(this.#b.subarray(start, this.#p));
    } finally {
      this.#p = 0;
    }
  }

  many(frames: readonly Frame[]): Uint8Array {
    this.#p = 0;
    try {
      let start = -1;
      for (const frame of frames) {
        const [s] = this.#append(frame, true);
        if (start < 0) start = s;
      }
      return start < 0 ? new Uint8Array(0) : this.#b.slice(start, this.#p);
    } finally {
      this.#p = 0;
    }
  }
}
