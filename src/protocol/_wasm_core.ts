// The frame core backed by the Rust/WASM crate: WASM parses and validates headers and writes
// a record table; payloads are never copied out of the caller's bytes.

import { DecodeError, DECODE_ERROR_BY_NUMBER } from "./decode_error.ts";
import { EMPTY_PAYLOAD, encodeError, type FrameCore, frameFields, makeFrame, type ScanResult } from "./_frame_core.ts";
import { type Frame, type Metadata, wireFlags } from "./frame.ts";
import type { ProtocolLimits } from "./limits.ts";
import { copyBytes, EMPTY_METADATA, utf8Decode } from "./_utf8.ts";
import { Rec, REC_SLOTS, type WasmCore, wasmCore } from "../../wasm/mod.ts";

export class WasmFrameCore implements FrameCore {
  readonly impl = "wasm" as const;
  readonly #w: WasmCore;

  constructor(readonly limits: Readonly<ProtocolLimits>) {
    this.#w = wasmCore();
  }

  #limits(): void {
    const l = this.limits;
    this.#w.setLimits(l.maxFrameSize, l.maxNameLength, l.maxMetadataEntries, l.maxMetadataBytes);
  }

  #fail(): never {
    const st = this.#w.status();
    throw new DecodeError(DECODE_ERROR_BY_NUMBER[st[2]] ?? "INVALID_VALUE", st[3]);
  }

  #frames(buf: Uint8Array, count: number, out: Frame[]): void {
    if (count === 0) return;
    const recs = this.#w.records(count);
    let metas: Uint32Array | undefined;
    for (let i = 0; i < count; i++) {
      const r = i * REC_SLOTS;
      const metaCount = recs[r + Rec.META_COUNT];
      let metadata: Metadata = EMPTY_METADATA;
      if (metaCount > 0) {
        metas ??= this.#w.metadata();
        metadata = Object.create(null);
        for (let m = recs[r + Rec.META_START] * 4, e = m + metaCount * 4; m < e; m += 4) {
          metadata[utf8Decode(buf, metas[m], metas[m + 1])] = utf8Decode(buf, metas[m + 2], metas[m + 3]);
        }
      }
      const p = recs[r + Rec.PAYLOAD];
      const end = recs[r + Rec.END];
      out.push(makeFrame(
        recs[r + Rec.TYPE],
        recs[r + Rec.FLAGS],
        utf8Decode(buf, recs[r + Rec.STR_OFF], recs[r + Rec.STR_LEN]),
        recs[r + Rec.N1],
        recs[r + Rec.N2],
        recs[r + Rec.T1],
        recs[r + Rec.T2],
        recs[r + Rec.T3],
        metadata,
        p === end ? EMPTY_PAYLOAD : buf.subarray(p, end),
      ));
    }
  }

  scan(buf: Uint8Array, out: Frame[]): ScanResult {
    this.#limits();
    const n = this.#w.scan(buf);
    if (n < 0) this.#fail();
    const st = this.#w.status();
    const consumed = st[0];
    const need = st[1];
    this.#frames(buf, n, out);
    return { consumed, need };
  }

  decode(buf: Uint8Array): Frame {
    this.#limits();
    if (this.#w.decode(buf) < 0) this.#fail();
    const out: Frame[] = [];
    this.#frames(buf, 1, out);
    return out[0];
  }

  /**
   * Appends `frame`'s header (and payload when `withPayload`) to the WASM output buffer.
   * @returns The output offset where the payload starts.
   */
  #append(frame: Frame, withPayload: boolean): number {
    const f = frameFields(frame);
    const strings = [f.str];
    for (const k in f.metadata) strings.push(k, f.metadata[k]);
    const at = this.#w.encodeHeader(frame.type, wireFlags(frame), f.n1, f.n2, f.t1, f.t2, f.t3, strings, f.payload.length);
    if (at < 0) {
      throw encodeError(DECODE_ERROR_BY_NUMBER[this.#w.status()[2]] ?? "INVALID_VALUE", frame);
    }
    if (withPayload) this.#w.output().set(f.payload, at);
    return at;
  }

  encodeHeader(frame: Frame): Uint8Array {
    this.#limits();
    this.#w.resetOutput();
    const at = this.#append(frame, false);
    return copyBytes(this.#w.output().subarray(0, at));
  }

  encode(frame: Frame): Uint8Array {
    this.#limits();
    this.#w.resetOutput();
    this.#append(frame, true);
    return copyBytes(this.#w.output());
  }

  encodeMany(frames: readonly Frame[]): Uint8Array {
    this.#limits();
    this.#w.resetOutput();
    try {
      for (const frame of frames) this.#append(frame, true);
      return this.#w.output().slice();
    } finally {
      this.#w.resetOutput();
    }
  }
}
