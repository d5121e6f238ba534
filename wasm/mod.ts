/**
 * Hand-written binding to the EchoStream WASM core (wasm-bindgen cannot be used here). This is
 * the only module that touches the raw exports; `src/protocol/` builds the codec on top of it,
 * `src/clock/estimator.ts` the clock estimator and `src/stream/jitter.ts` the jitter buffer, all
 * on one shared instance of the module.
 *
 * The module's bytes are inlined (wasm/generated.ts), so loading needs no permission and no
 * flag on Bun, Deno or Node, and compiles synchronously on first use.
 *
 * @module
 */

import { WASM_BASE64 } from "./generated.ts";

interface RawExports {
  memory: WebAssembly.Memory;
  es_abi_version(): number;
  es_set_limits(maxFrame: number, maxName: number, maxMetaEntries: number, maxMetaBytes: number): void;
  es_input(n: number): number;
  es_status(): number;
  es_args(): number;
  es_recs(): number;
  es_metas(): number;
  es_lens(n: number): number;
  es_out(): number;
  es_out_len(): number;
  es_out_reset(): void;
  es_scan(len: number): number;
  es_decode(len: number): number;
  es_encode(ty: number, flags: number, metaCount: number, payloadLen: number): number;
  es_varint_encode(v: bigint): number;
  es_varint_decode(len: number): bigint;
}

/** ABI version this binding speaks; bumped with any change to the exports' contract. */
export const ABI_VERSION = 3;

/** f64 slots per frame record written by `scan`/`decode`. */
export const REC_SLOTS = 16;

/** Slot indexes within a frame record. */
export const Rec = {
  TYPE: 0,
  FLAGS: 1,
  START: 2,
  END: 3,
  PAYLOAD: 4,
  STR_OFF: 5,
  STR_LEN: 6,
  N1: 7,
  N2: 8,
  META_START: 9,
  META_COUNT: 10,
  T1: 11,
  T2: 12,
  T3: 13,
} as const;

const encoder = new TextEncoder();

function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Typed access to the WASM core's exports and memory. Single-threaded, not re-entrant. */
export class WasmCore {
  readonly #x: RawExports;
  #buf: ArrayBufferLike | undefined;
  #u8!: Uint8Array;
  #f64!: Float64Array;
  #u32!: Uint32Array;
  #limits = "";

  /** @param x The instance's exports. */
  constructor(x: RawExports) {
    this.#x = x;
    const abi = x.es_abi_version();
    if (abi !== ABI_VERSION) {
      throw new Error(`WASM core ABI ${abi} does not match the binding's ${ABI_VERSION}; rebuild with wasm/build.sh`);
    }
  }

  #views(): void {
    const buf = this.#x.memory.buffer;
    if (buf !== this.#buf) {
      this.#buf = buf;
      this.#u8 = new Uint8Array(buf);
      this.#f64 = new Float64Array(buf);
      this.#u32 = new Uint32Array(buf);
    }
  }

  /** Sets the decode/encode limits (cheap when unchanged). */
  setLimits(maxFrame: number, maxName: number, maxMetaEntries: number, maxMetaBytes: number): void {
    const key = `${maxFrame},${maxName},${maxMetaEntries},${maxMetaBytes}`;
    if (key === this.#limits) return;
    this.#x.es_set_limits(maxFrame, maxName, maxMetaEntries, maxMetaBytes);
    this.#limits = key;
  }

  /** Copies `bytes` into the input buffer. */
  #load(bytes: Uint8Array): void {
    const ptr = this.#x.es_input(bytes.length);
    this.#views();
    this.#u8.set(bytes, ptr);
  }

  /**
   * Scans `bytes` for complete frames.
   * @returns The number of frames, or -1 on a decode error (see `status`).
   */
  scan(bytes: Uint8Array): number {
    this.#load(bytes);
    const n = this.#x.es_scan(bytes.length);
    this.#views();
    return n;
  }

  /** Decodes exactly one frame: 1, or -1 on a decode error. */
  decode(bytes: Uint8Array): number {
    this.#load(bytes);
    const n = this.#x.es_decode(bytes.length);
    this.#views();
    return n;
  }

  /** `[consumed, need, errorCode, errorOffset]` of the last call. */
  status(): Float64Array {
    const p = this.#x.es_status() / 8;
    return this.#f64.subarray(p, p + 4);
  }

  /** The record table of the last scan/decode (`count * REC_SLOTS` numbers). */
  records(count: number): Float64Array {
    const p = this.#x.es_recs() / 8;
    return this.#f64.subarray(p, p + count * REC_SLOTS);
  }

  /** The metadata table of the last scan/decode: `[keyOff, keyLen, valOff, valLen]` per entry. */
  metadata(): Uint32Array {
    const p = this.#x.es_metas() / 4;
    return this.#u32.subarray(p);
  }

  /**
   * Appends a frame header to the output buffer.
   * @param strings The type's string field, then metadata keys and values alternating.
   * @returns The output offset where the payload goes (space already reserved), or -1.
   */
  encodeHeader(
    ty: number,
    flags: number,
    n1: number,
    n2: number,
    t1: number,
    t2: number,
    t3: number,
    strings: readonly string[],
    payloadLen: number,
  ): number {
    let cap = 0;
    for (let i = 0; i < strings.length; i++) cap += strings[i].length * 3;
    const lensPtr = this.#x.es_lens(strings.length) / 4;
    const inPtr = this.#x.es_input(cap);
    this.#views();
    let at = inPtr;
    for (let i = 0; i < strings.length; i++) {
      const s = strings[i];
      let n = 0;
      if (s.length <= 32) {
        // ASCII fast path: most names and keys.
        for (; n < s.length; n++) {
          const c = s.charCodeAt(n);
          if (c >= 0x80) break;
          this.#u8[at + n] = c;
        }
      }
      if (n < s.length) n = encoder.encodeInto(s, this.#u8.subarray(at, at + s.length * 3)).written;
      this.#u32[lensPtr + i] = n;
      at += n;
    }
    const args = this.#x.es_args() / 8;
    this.#f64[args] = n1;
    this.#f64[args + 1] = n2;
    this.#f64[args + 2] = t1;
    this.#f64[args + 3] = t2;
    this.#f64[args + 4] = t3;
    const r = this.#x.es_encode(ty, flags, (strings.length - 1) / 2, payloadLen);
    this.#views();
    return r;
  }

  /** The output buffer's current contents (a view; copy before the next call). */
  output(): Uint8Array {
    const p = this.#x.es_out();
    this.#views();
    return this.#u8.subarray(p, p + this.#x.es_out_len());
  }

  /** Empties the output buffer. */
  resetOutput(): void {
    this.#x.es_out_reset();
  }

  /** Encodes a varint (shortest form); undefined when above 2^62 - 1. */
  varintEncode(value: bigint): Uint8Array | undefined {
    const n = this.#x.es_varint_encode(BigInt.asUintN(64, value));
    if (n === 0) return undefined;
    return this.output().slice();
  }

  /** Decodes a varint at the start of `bytes`; undefined when `bytes` is too short. */
  varintDecode(bytes: Uint8Array): { value: bigint; length: number } | undefined {
    this.#load(bytes);
    const v = this.#x.es_varint_decode(bytes.length);
    this.#views();
    const length = this.status()[0];
    return length === 0 ? undefined : { value: BigInt.asUintN(64, v), length };
  }
}

let exports: RawExports & ClockExports & JitterExports | undefined;

/**
 * The one instance of the module behind every binding (codec, clock, jitter), compiled and
 * instantiated on first use, synchronously (the module is about 80 KB). One instance means one
 * linear memory and one allocator for all of them.
 */
function instanceExports(): RawExports & ClockExports & JitterExports {
  if (!exports) {
    const module = new WebAssembly.Module(base64ToBytes(WASM_BASE64) as BufferSource);
    const instance = new WebAssembly.Instance(module, {});
    exports = instance.exports as unknown as RawExports & ClockExports & JitterExports;
  }
  return exports;
}

let core: WasmCore | undefined;

/** The process-wide WASM core (frame codec), on the shared instance. */
export function wasmCore(): WasmCore {
  core ??= new WasmCore(instanceExports());
  return core;
}

/** The clock estimator exports (crate module `clock`). */
interface ClockExports {
  es_clock_new(precision: number): number;
  es_clock_free(id: number): void;
  es_clock_reset(id: number): void;
  es_clock_add(id: number, t1: number, t2: number, t3: number, t4: number): number;
  es_clock_offset(id: number, at: number): number;
  es_clock_skew(id: number): number;
  es_clock_uncertainty(id: number, at: number): number;
  es_clock_stat(id: number, key: number): number;
}

/** Keys of `ClockCore.stat`. */
export const ClockStat = {
  SAMPLES: 0,
  ACCEPTED: 1,
  REJECTED: 2,
  INVALID: 3,
  STEPS: 4,
  WINDOW: 5,
  LAST_DELAY: 6,
  MIN_DELAY: 7,
  JITTER: 8,
} as const;

/**
 * Typed access to the WASM clock estimators: a fixed pool of 64 instances addressed by id.
 * Only scalars cross the boundary, so no memory views are involved.
 */
export class ClockCore {
  readonly #x: ClockExports;

  /** @param x The instance's exports. */
  constructor(x: ClockExports) {
    this.#x = x;
  }

  /** A new estimator's id, or -1 when the pool is full or `precision` is not finite and > 0. */
  create(precision: number): number {
    return this.#x.es_clock_new(precision);
  }

  /** Releases an estimator. */
  free(id: number): void {
    this.#x.es_clock_free(id);
  }

  /** Forgets an estimator's samples and model (counters stay). */
  reset(id: number): void {
    this.#x.es_clock_reset(id);
  }

  /** Adds one exchange: 0 accepted, 1 rejected, 2 clock step, -1 invalid input, -2 bad id. */
  add(id: number, t1: number, t2: number, t3: number, t4: number): number {
    return this.#x.es_clock_add(id, t1, t2, t3, t4);
  }

  /** Offset (server − local, ms) at local time `at`. */
  offset(id: number, at: number): number {
    return this.#x.es_clock_offset(id, at);
  }

  /** Skew in ppm. */
  skewPpm(id: number): number {
    return this.#x.es_clock_skew(id);
  }

  /** Error bound (ms) of `offset(id, at)`. */
  uncertainty(id: number, at: number): number {
    return this.#x.es_clock_uncertainty(id, at);
  }

  /** A statistic by `ClockStat` key. */
  stat(id: number, key: number): number {
    return this.#x.es_clock_stat(id, key);
  }
}

let clock: ClockCore | undefined;

/** The process-wide clock estimator pool, on the shared instance (see `wasmCore`). */
export function clockCore(): ClockCore {
  if (!clock) {
    wasmCore(); // checks the ABI version once
    clock = new ClockCore(instanceExports());
  }
  return clock;
}

/** f64 result slots of the jitter exports (`jitter::STATS_LEN`; a pop uses the first 6). */
export const JITTER_SLOTS = 24;
/** The result slot where `es_jb_push` and `es_jb_pop` leave the buffer's next due time. */
export const JITTER_DUE_SLOT = 6;

/** The jitter buffer exports (crate module `jitter`). */
interface JitterExports {
  memory: WebAssembly.Memory;
  es_jb_new(
    latency: number,
    min: number,
    max: number,
    deliverLate: number,
    maxFrames: number,
    initial: number,
    margin: number,
    quantile: number,
  ): number;
  es_jb_free(id: number): void;
  es_jb_live(): number;
  es_jb_bytes(id: number): number;
  es_jb_reset(id: number): void;
  es_jb_set_initial(id: number, initial: number): number;
  es_jb_push(id: number, seq: number, ts: number, offset: number, arrival: number): number;
  es_jb_next_due(id: number): number;
  es_jb_pop(id: number, now: number): number;
  es_jb_stats(id: number): number;
  es_jb_out(): number;
}

/**
 * Typed access to the WASM jitter buffers: a growable pool (free list) addressed by id. Seqs
 * and times cross as f64; results come back in a fixed block of f64 slots.
 */
export class JitterCore {
  readonly #x: JitterExports;
  readonly #outPtr: number;
  #buf: ArrayBufferLike | undefined;
  #out: Float64Array | undefined;

  /** @param x The instance's exports. */
  constructor(x: JitterExports) {
    this.#x = x;
    this.#outPtr = x.es_jb_out() / 8;
  }

  /** The result slots (re-viewed when memory has grown). */
  #slots(): Float64Array {
    // Growing the memory detaches its old buffer, whose views then read length 0: only then is
    // `memory.buffer` (a slow getter on JavaScriptCore, once per pop) read again.
    const out = this.#out;
    if (out !== undefined && out.length !== 0) return out;
    const buf = this.#x.memory.buffer;
    if (buf !== this.#buf || out === undefined) {
      this.#buf = buf;
      return (this.#out = new Float64Array(buf, this.#outPtr * 8, JITTER_SLOTS));
    }
    return out;
  }

  /** A new buffer's id (`latency` NaN = adaptive), or -1 when the options are invalid. */
  create(
    latency: number,
    min: number,
    max: number,
    deliverLate: boolean,
    maxFrames: number,
    initial: number,
    margin: number,
    quantile: number,
  ): number {
    return this.#x.es_jb_new(latency, min, max, deliverLate ? 1 : 0, maxFrames, initial, margin, quantile);
  }

  /** Releases a buffer and its memory. */
  free(id: number): void {
    this.#x.es_jb_free(id);
  }

  /** Live buffers in the pool. */
  live(): number {
    return this.#x.es_jb_live();
  }

  /** Bytes one buffer holds (struct plus heap), NaN for a bad id. */
  bytes(id: number): number {
    return this.#x.es_jb_bytes(id);
  }

  /** Size of the module's linear memory (it grows, never shrinks). */
  memoryBytes(): number {
    return this.#x.memory.buffer.byteLength;
  }

  /** Forgets frames (they leave `pop` discarded) and adaptation; counters stay. */
  reset(id: number): void {
    this.#x.es_jb_reset(id);
  }

  /** A new initial latency (ms): 0, -1 for a bad value (nothing changes), -2 for a bad id. */
  setInitial(id: number, initial: number): number {
    return this.#x.es_jb_set_initial(id, initial);
  }

  /** A frame arrived: a push code (-1 invalid input, -2 bad id). */
  push(id: number, seq: number, ts: number, offset: number, arrival: number): number {
    return this.#x.es_jb_push(id, seq, ts, offset, arrival);
  }

  /**
   * The next due time of the buffer the last `push` or `pop` (of any buffer: the slots are
   * shared) was made on, as it stood when that call returned: `nextDue` without a call into the
   * module. Read it before the next call.
   */
  lastDue(): number {
    return this.#slots()[JITTER_DUE_SLOT];
  }

  /** Local time of the next `pop` result (NaN for a bad id). */
  nextDue(id: number): number {
    return this.#x.es_jb_next_due(id);
  }

  /**
   * The next frame due at `now`: its slots (seq, ts, alignedTime, deliver, late, lateByMs; valid
   * until the next call), undefined when none, null for a bad id.
   */
  pop(id: number, now: number): Float64Array | undefined | null {
    const r = this.#x.es_jb_pop(id, now);
    if (r === 1) return this.#slots();
    return r === 0 ? undefined : null;
  }

  /** The statistics slots (valid until the next call), or null for a bad id. */
  stats(id: number): Float64Array | null {
    return this.#x.es_jb_stats(id) === 0 ? this.#slots() : null;
  }
}

let jitter: JitterCore | undefined;

/** The process-wide jitter buffer pool, on the shared instance (see `wasmCore`). */
export function jitterCore(): JitterCore {
  if (!jitter) {
    wasmCore(); // checks the ABI version once
    jitter = new JitterCore(instanceExports());
  }
  return jitter;
}
