/**
 * The frame codec: encode frames, decode one frame, and split a byte stream into frames.
 *
 * Two implementations sit behind one interface: the Rust/WASM core (wasm/) and a plain
 * TypeScript reference. Both give identical results on every input (a parity test checks
 * it); `npm run bench` compares their speed, and `impl: "auto"` picks per operation the one
 * that measured faster (see {@link AUTO_CHOICE}: today the TypeScript core for all three).
 *
 * @module
 */

import { DecodeError, DecodeErrorCode } from "./decode_error.ts";
import type { Frame } from "./frame.ts";
import { type ProtocolLimits, resolveLimits } from "./limits.ts";
import type { FrameCore } from "./_frame_core.ts";
import { TsCore } from "./_ts_core.ts";
import { WasmFrameCore } from "./_wasm_core.ts";
import { allocBytes } from "./_utf8.ts";

/** Which implementation a codec uses. */
export type CodecImpl = "wasm" | "ts" | "auto";

/** Options for {@link createFrameCodec}. */
export interface FrameCodecOptions {
  /**
   * The implementation. `"auto"` takes, per operation, the one `npm run bench` measured faster.
   * @default {"auto"}
   */
  impl?: CodecImpl;
  /** Receive-side limits; missing fields keep {@link DEFAULT_LIMITS}. */
  limits?: Partial<ProtocolLimits>;
}

/**
 * Which core `impl: "auto"` uses for each operation, from `npm run bench` on Bun and Deno
 * (bench/results/codec.json). Kept as data so a new measurement changes one line.
 *
 * Measured 2026-11-26: the TypeScript core was faster in 9 of 10 cases (WASM ÷ TS from 0.26×
 * to 0.90×); WASM won only splitting 64 KiB chunks on Bun (1.21×) and lost the same on Deno
 * (0.90×) and with 1200-byte chunks on both. Every frame must become a JS object with JS
 * strings either way, and the WASM path adds a copy in and a boundary crossing, so the
 * reference is the default for all three.
 */
export const AUTO_CHOICE: Readonly<{ encode: "wasm" | "ts"; decode: "wasm" | "ts"; split: "wasm" | "ts" }> = Object
  .freeze({
    encode: "ts",
    decode: "ts",
    split: "ts",
  });

/** Encodes and decodes EchoStream frames. */
export interface FrameCodec {
  /** The implementation asked for. */
  readonly impl: CodecImpl;
  /** The limits in force. */
  readonly limits: Readonly<ProtocolLimits>;
  /**
   * Encodes a frame with its payload into one new buffer.
   * @throws {RangeError} When the frame breaks a limit or the layout; {TypeError} for wrong field types.
   */
  encode(frame: Frame): Uint8Array;
  /** Encodes only the header (its length field counts the payload), for a vectored write. */
  encodeHeader(frame: Frame): Uint8Array;
  /** Encodes many frames back to back into one new buffer. */
  encodeMany(frames: readonly Frame[]): Uint8Array;
  /**
   * Decodes exactly one frame (a datagram, say). The payload is a view into `bytes`.
   * @throws {DecodeError} When `bytes` is not exactly one valid frame.
   */
  decode(bytes: Uint8Array): Frame;
  /**
   * Decodes frames laid back to back that fill `bytes` exactly (a datagram carrying several,
   * say). Payloads are views into `bytes`; nothing is allocated for a frame that is cut short.
   * @throws {DecodeError} When `bytes` is not a whole number of valid frames (`TRUNCATED` for a
   *   frame cut short).
   *
   * @example
   * ```ts
   * import { createFrameCodec, FrameType } from "@echostream/core/protocol";
   *
   * const codec = createFrameCodec();
   * const ping = { type: FrameType.PING, flags: 0, seq: 1, t1: 2 } as const;
   * const frames = codec.decodeAll(codec.encodeMany([ping, { ...ping, seq: 2 }]));
   * console.log(frames.length); // 2
   * ```
   */
  decodeAll(bytes: Uint8Array): Frame[];
  /** A new splitter for one byte stream. */
  splitter(): FrameSplitter;
}

/**
 * Splits a byte stream, arriving in chunks cut anywhere, into frames. Each complete frame is
 * returned once; a frame's payload is a view into the chunk it arrived in when it arrived
 * whole, else into a buffer assembled for it (for frames up to 4 KiB, a part of a 64 KiB slab
 * shared with other small buffers the codec makes, so keeping the payload keeps the slab, as a
 * payload within a chunk keeps the chunk; copy with `slice()` to keep only its bytes). A frame
 * larger than `maxFrameSize` is refused from its length prefix, before any of its body is
 * buffered.
 *
 * After a {@link DecodeError} the splitter drops what it had buffered and starts afresh at the
 * next chunk: the stream that produced the error is corrupt and should be reset, but the
 * splitter itself stays usable.
 *
 * @example Splitting chunks cut at arbitrary points
 * ```ts
 * import { createFrameCodec, FrameType } from "@echostream/core/protocol";
 *
 * const codec = createFrameCodec();
 * const bytes = codec.encodeMany([
 *   { type: FrameType.EVENT, flags: 1, topic: "a", metadata: {}, payload: new Uint8Array([1]) },
 *   { type: FrameType.EVENT, flags: 1, topic: "b", metadata: {}, payload: new Uint8Array([2]) },
 * ]);
 * const splitter = codec.splitter();
 * const frames = [...splitter.push(bytes.subarray(0, 5)), ...splitter.push(bytes.subarray(5))];
 * console.log(frames.length); // 2
 * splitter.end(); // throws if a partial frame were left
 * ```
 */
export class FrameSplitter {
  readonly #core: FrameCore;
  /** Bytes of an incomplete prefix carried to the next chunk (fewer than 25). */
  #tail: Uint8Array | undefined;
  /** Buffer for a frame whose size is known but whose bytes span chunks. */
  #acc: Uint8Array | undefined;
  #filled = 0;
  /** Stream offset of the next byte not yet part of a complete frame. */
  #position = 0;

  /**
   * Makes a splitter over one core. Get one from {@link FrameCodec.splitter} rather than
   * constructing it: the core type is internal.
   *
   * @param core The implementation that scans chunks.
   */
  constructor(core: FrameCore) {
    this.#core = core;
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.#acc ? this.#filled : (this.#tail?.length ?? 0);
  }

  /**
   * Bytes allocated for the incomplete frame now held: the whole declared size once its header
   * has arrived (the buffer is made at once), else the carried prefix.
   */
  get reserved(): number {
    return this.#acc ? this.#acc.length : (this.#tail?.length ?? 0);
  }

  /** Total bytes of complete frames returned so far (the stream offset of the next frame). */
  get position(): number {
    return this.#position;
  }

  /**
   * Feeds one chunk.
   * @param chunk The next bytes of the stream.
   * @returns The frames completed by this chunk, in order (possibly none).
   * @throws {DecodeError} With `offset` counted from the start of the stream.
   */
  push(chunk: Uint8Array): Frame[] {
    const out: Frame[] = [];
    let off = 0;
    try {
      if (this.#acc) {
        const acc = this.#acc;
        const take = Math.min(acc.length - this.#filled, chunk.length);
        acc.set(take === chunk.length ? chunk : chunk.subarray(0, take), this.#filled);
        this.#filled += take;
        off = take;
        if (this.#filled < acc.length) return out;
        this.#acc = undefined;
        this.#filled = 0;
        // Exactly one frame, whose prefix was read already: scanned, so a plain DATA frame takes
        // the same short path as frames within a chunk.
        this.#core.scan(acc, out);
        this.#position += acc.length;
      }
      let buf = off === 0 ? chunk : chunk.subarray(off);
      if (this.#tail) {
        const joined = new Uint8Array(this.#tail.length + buf.length);
        joined.set(this.#tail);
        joined.set(buf, this.#tail.length);
        buf = joined;
        this.#tail = undefined;
      }
      if (buf.length === 0) return out;
      const { consumed, need } = this.#core.scan(buf, out);
      this.#position += consumed;
      if (need === -1) {
        this.#tail = buf.slice(consumed);
      } else if (need > 0) {
        this.#acc = allocBytes(need); // a frame up to 4 KiB: a view of the shared slab
        this.#acc.set(buf.subarray(consumed));
        this.#filled = buf.length - consumed;
      }
      return out;
    } catch (e) {
      this.#tail = undefined;
      this.#acc = undefined;
      this.#filled = 0;
      if (e instanceof DecodeError) {
        const at = this.#position + e.offset;
        this.#position += chunk.length - off;
        throw new DecodeError(e.code, at);
      }
      throw e;
    }
  }

  /**
   * Declares the end of the stream.
   * @throws {DecodeError} `TRUNCATED` when a partial frame is still buffered.
   */
  end(): void {
    const held = this.buffered;
    this.#tail = undefined;
    this.#acc = undefined;
    this.#filled = 0;
    if (held > 0) throw new DecodeError(DecodeErrorCode.TRUNCATED, this.#position + held, "stream ended inside a frame");
  }
}

class Codec implements FrameCodec {
  readonly #enc: FrameCore;
  readonly #dec: FrameCore;
  readonly #split: FrameCore;

  constructor(readonly impl: CodecImpl, readonly limits: Readonly<ProtocolLimits>) {
    const cores: Record<"wasm" | "ts", FrameCore | undefined> = { wasm: undefined, ts: undefined };
    const core = (which: "wasm" | "ts"): FrameCore =>
      (cores[which] ??= which === "wasm" ? new WasmFrameCore(limits) : new TsCore(limits));
    const pick = (op: keyof typeof AUTO_CHOICE) => core(impl === "auto" ? AUTO_CHOICE[op] : impl);
    this.#enc = pick("encode");
    this.#dec = pick("decode");
    this.#split = pick("split");
  }

  encode(frame: Frame): Uint8Array {
    return this.#enc.encode(frame);
  }
  encodeHeader(frame: Frame): Uint8Array {
    return this.#enc.encodeHeader(frame);
  }
  encodeMany(frames: readonly Frame[]): Uint8Array {
    return this.#enc.encodeMany(frames);
  }
  decode(bytes: Uint8Array): Frame {
    return this.#dec.decode(bytes);
  }
  decodeAll(bytes: Uint8Array): Frame[] {
    const out: Frame[] = [];
    // The scan reports a frame cut short instead of buffering it (`need`): nothing is allocated
    // for a length prefix the bytes do not back.
    const { consumed, need } = this.#split.scan(bytes, out);
    if (need !== 0 || consumed !== bytes.length) {
      throw new DecodeError(DecodeErrorCode.TRUNCATED, bytes.length, "bytes end inside a frame");
    }
    return out;
  }
  splitter(): FrameSplitter {
    return new FrameSplitter(this.#split);
  }
}

/**
 * Creates a frame codec.
 *
 * @example A round trip
 * ```ts
 * import { createFrameCodec, FrameType } from "@echostream/core/protocol";
 *
 * const codec = createFrameCodec();
 * const bytes = codec.encode({
 *   type: FrameType.REQUEST, flags: 0, method: "user.get", deadlineMs: 2000,
 *   metadata: { trace: "t-1" }, payload: new Uint8Array([0x81]),
 * });
 * const frame = codec.decode(bytes);
 * if (frame.type === FrameType.REQUEST) console.log(frame.method, frame.deadlineMs); // user.get 2000
 * ```
 *
 * @param options Implementation and limits.
 * @returns A codec; cheap to create, safe to share within one thread.
 * @throws {RangeError} When a limit is invalid.
 */
export function createFrameCodec(options: FrameCodecOptions = {}): FrameCodec {
  const impl = options.impl ?? "auto";
  if (impl !== "wasm" && impl !== "ts" && impl !== "auto") {
    throw new RangeError(`impl must be "wasm", "ts" or "auto", received ${String(impl)}`);
  }
  return new Codec(impl, resolveLimits(options.limits));
}
