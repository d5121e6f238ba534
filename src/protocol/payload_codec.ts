/**
 * Payload codecs: how application values (call arguments, results, event payloads, error
 * details) become bytes. Raw `Uint8Array` payloads bypass the codec; everything else goes
 * through {@link defaultPayloadCodec}, chosen by measurement (`bench/results/payload.md`).
 *
 * @example
 * ```ts
 * import { defaultPayloadCodec } from "@echostream/core/protocol";
 * const codec = defaultPayloadCodec();
 * codec.decode(codec.encode({ user: "alice", n: 42 })); // { user: "alice", n: 42 }
 * ```
 *
 * @module
 */

// "cbor-x/encode" is the pure-JS build: the native cbor-extract that "cbor-x" loads is compiled
// against the V8 C++ API here, and aborts Bun and kills Deno on some malformed input.
import { Encoder } from "cbor-x/encode";
// "msgpackr/pack" resolves to the pure-JS build on every runtime; the package root loads a native
// add-on and reads the environment at import (a permission prompt on Deno).
import { Packr } from "msgpackr/pack";

/** Encodes application values (not raw bytes: those bypass the codec) for the wire. */
export interface PayloadCodec {
  /** Short format name, e.g. `"msgpack"`. */
  readonly name: string;
  /** Encodes one value; throws `TypeError` on a value the format cannot represent. */
  encode(value: unknown): Uint8Array;
  /** Decodes exactly one value; throws {@link PayloadDecodeError} on malformed bytes. */
  decode(bytes: Uint8Array): unknown;
}

/**
 * Bytes that are not exactly one well-formed value of the codec's format.
 *
 * @example
 * ```ts
 * import { jsonCodec, PayloadDecodeError } from "@echostream/core/protocol";
 * try { jsonCodec.decode(new Uint8Array([0x7b])); } catch (e) { e instanceof PayloadDecodeError; } // true
 * ```
 */
export class PayloadDecodeError extends TypeError {
  /** Always `"PayloadDecodeError"`. */
  override name = "PayloadDecodeError";
  /** The codec's name. */
  readonly codec: string;
  /**
   * Makes the error a codec throws from `decode`.
   *
   * @param codec The codec's name (`"msgpack"`, `"json"`, …).
   * @param reason What is wrong with the bytes; never the decoded data itself.
   * @param cause The underlying library's error.
   */
  constructor(codec: string, reason: string, cause?: unknown) {
    super(`malformed ${codec} payload: expected exactly one complete ${codec} value (${reason})`, { cause });
    this.codec = codec;
  }
}

function reason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  if (/call stack|too much recursion/i.test(m)) return "nested too deeply";
  if (/end of buffer not reached|trailing/i.test(m)) return "trailing bytes after the value";
  if (/unexpected end/i.test(m)) return "truncated";
  return m.toLowerCase().slice(0, 80); // never echo decoded data
}

function encodeError(codec: string, e: unknown): TypeError {
  if (e instanceof TypeError && e.message.startsWith("cannot encode")) return e;
  const m = e instanceof Error ? e.message : String(e);
  const what = /unknown type: (\w+)/i.exec(m)?.[1] ??
    (/call stack|cyclic|circular/i.test(m) ? "cyclic or too deeply nested value" : /big ?int|too large/i.test(m) ? "bigint out of range" : "value");
  return new TypeError(`cannot encode a ${what} in a ${codec} payload: ${m.toLowerCase().slice(0, 80)}`, { cause: e });
}

const noFunctions = (codec: string) => () => {
  throw new TypeError(`cannot encode a function in a ${codec} payload`);
};

function wrap(name: string, enc: (v: unknown) => Uint8Array, dec: (b: Uint8Array) => unknown): PayloadCodec {
  return {
    name,
    encode(value) {
      try {
        return enc(value);
      } catch (e) {
        throw encodeError(name, e);
      }
    },
    decode(bytes) {
      if (!(bytes instanceof Uint8Array)) throw new TypeError(`${name} decode expected a Uint8Array`);
      try {
        return dec(bytes);
      } catch (e) {
        throw e instanceof PayloadDecodeError ? e : new PayloadDecodeError(name, reason(e), e);
      }
    },
  };
}

/** msgpackr's marker for the never-used byte 0xc1 (not in its typings, so obtained by decoding it). */
const C1: unknown = new Packr({ useRecords: false }).unpack(new Uint8Array([0xc1]));

function hasC1(v: unknown): boolean {
  if (v === C1) return true;
  if (v === null || typeof v !== "object" || ArrayBuffer.isView(v)) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (hasC1(v[i])) return true;
  } else if (v instanceof Map) {
    for (const [k, x] of v) if (hasC1(k) || hasC1(x)) return true;
  } else {
    for (const k in v) if (hasC1((v as Record<string, unknown>)[k])) return true;
  }
  return false;
}

/**
 * Standard MessagePack via msgpackr: objects as plain maps (`useRecords: false`), so any
 * MessagePack implementation can read the bytes and no structure state is shared between
 * peers. Byte strings decode as views into the input bytes (a `Uint8Array`; a Node `Buffer`
 * where one exists), not copies: copying cost up to 5× the decode time on Deno.
 * Lossy, as in the format: `Map` decodes as an object, `Set` as an array, `-0` as `0`.
 *
 * @example
 * ```ts
 * import { msgpackCodec } from "@echostream/core/protocol";
 * const mp = msgpackCodec();
 * mp.decode(mp.encode(["alice", 42, true])); // ["alice", 42, true]
 * ```
 */
export function msgpackCodec(): PayloadCodec {
  const packr = new Packr({ useRecords: false, writeFunction: noFunctions("msgpack") });
  return wrap("msgpack", (v) => packr.pack(v), (b) => {
    const v = packr.unpack(b);
    // 0xc1 is never valid MessagePack; msgpackr returns a marker object for it.
    if (b.indexOf(0xc1) !== -1 && hasC1(v)) throw new PayloadDecodeError("msgpack", "reserved byte 0xc1");
    return v;
  });
}

/**
 * CBOR (RFC 8949) via cbor-x, without its records extension; `Uint8Array` as a plain byte
 * string (decoded as a view, like {@link msgpackCodec}). Keeps `Map`, `Set`, `Date`, `bigint`
 * and `undefined` through a round trip.
 *
 * @example
 * ```ts
 * import { cborCodec } from "@echostream/core/protocol";
 * const cbor = cborCodec();
 * cbor.decode(cbor.encode({ blob: new Uint8Array([1, 2]) })); // { blob: Uint8Array [1, 2] }
 * ```
 */
export function cborCodec(): PayloadCodec {
  const enc = new Encoder({ useRecords: false, tagUint8Array: false });
  return wrap("cbor", (v) => enc.encode(v), (b) => enc.decode(b));
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

function jsonReplacer(_key: string, v: unknown): unknown {
  const t = typeof v;
  if (t === "function" || t === "symbol" || t === "bigint") throw new TypeError(`cannot encode a ${t} in a json payload`);
  if (t === "object" && v !== null && (ArrayBuffer.isView(v) || v instanceof ArrayBuffer || v instanceof Map || v instanceof Set)) {
    throw new TypeError(`cannot encode a ${(v as object).constructor.name} in a json payload`);
  }
  return v;
}

/**
 * UTF-8 JSON. Refuses functions, symbols, bigints, binary data, `Map` and `Set` rather than
 * dropping or mangling them; `undefined` properties are omitted and `Date`s become strings,
 * as `JSON.stringify` does.
 *
 * @example
 * ```ts
 * import { jsonCodec } from "@echostream/core/protocol";
 * new TextDecoder().decode(jsonCodec.encode({ a: 1 })); // '{"a":1}'
 * ```
 */
export const jsonCodec: PayloadCodec = wrap("json", (v) => {
  const s = JSON.stringify(v, jsonReplacer);
  if (s === undefined) throw new TypeError("cannot encode undefined in a json payload");
  return utf8Encoder.encode(s);
}, (b) => JSON.parse(utf8Decoder.decode(b)));

/**
 * The measured winner (see `bench/results/payload.md`): standard MessagePack, {@link msgpackCodec}.
 *
 * @example
 * ```ts
 * import { defaultPayloadCodec } from "@echostream/core/protocol";
 * defaultPayloadCodec().name; // "msgpack"
 * ```
 */
export function defaultPayloadCodec(): PayloadCodec {
  return msgpackCodec();
}
