/**
 * QUIC variable-length integers (RFC 9000 §16), in plain TypeScript. The frame codec uses the
 * WASM core; these functions serve tools and tests and are the reference it is checked against.
 *
 * @module
 */

/** Largest value a varint carries: 2^62 - 1. */
export const VARINT_MAX: bigint = (1n << 62n) - 1n;

/**
 * Bytes the shortest encoding of `value` takes.
 *
 * @param value A non-negative integer up to 2^62 - 1.
 * @returns 1, 2, 4 or 8.
 * @throws {RangeError} When `value` is negative, not an integer, or above 2^62 - 1.
 */
export function varintLength(value: number | bigint): 1 | 2 | 4 | 8 {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`varint value must be a non-negative safe integer, received ${value}`);
    }
    if (value < 0x40) return 1;
    if (value < 0x4000) return 2;
    if (value < 0x40000000) return 4;
    return 8;
  }
  if (value < 0n || value > VARINT_MAX) {
    throw new RangeError(`varint value must be between 0 and 2^62 - 1, received ${value}`);
  }
  return varintLength(value < 0x40000000n ? Number(value) : 0x40000000);
}

/**
 * Encodes `value` in its shortest form.
 *
 * @example Encoding the RFC 9000 sample 15293
 * ```ts
 * import { encodeVarint } from "@echostream/core/protocol";
 * console.log(encodeVarint(15293)); // Uint8Array [ 123, 189 ] (0x7bbd)
 * ```
 *
 * @param value A non-negative integer up to 2^62 - 1.
 * @returns The encoded bytes.
 * @throws {RangeError} When `value` is out of range.
 */
export function encodeVarint(value: number | bigint): Uint8Array {
  const len = varintLength(value);
  const out = new Uint8Array(len);
  let v = BigInt(value);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  out[0] |= [0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0][len];
  return out;
}

/**
 * Decodes the varint at `bytes[offset]`, accepting non-shortest forms as the RFC requires.
 *
 * @param bytes The input.
 * @param offset Where the varint starts.
 * @returns The value (a bigint, since 62 bits exceed a number) and the bytes it took, or
 *   `undefined` when `bytes` ends first.
 */
export function decodeVarint(
  bytes: Uint8Array,
  offset = 0,
): { value: bigint; length: number } | undefined {
  if (offset >= bytes.length) return undefined;
  const length = 1 << (bytes[offset] >> 6);
  if (offset + length > bytes.length) return undefined;
  let value = BigInt(bytes[offset] & 0x3f);
  for (let i = 1; i < length; i++) value = (value << 8n) | BigInt(bytes[offset + i]);
  return { value, length };
}
