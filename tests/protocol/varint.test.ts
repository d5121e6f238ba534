import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import vectors from "../vectors/frames.json" with { type: "json" };
import { decodeVarint, encodeVarint, VARINT_MAX, varintLength } from "../../src/protocol/mod.ts";
import { wasmCore } from "../../wasm/mod.ts";
import { hex } from "../support/frames.ts";

describe("QUIC varints (RFC 9000 §16)", () => {
  test.each(vectors.varints.map((v) => [v.hex, v] as const))("vector %s", (_h, v) => {
    const bytes = hex.decode(v.hex);
    const value = BigInt(v.value);
    expect(decodeVarint(bytes)).toEqual({ value, length: bytes.length });
    expect(wasmCore().varintDecode(bytes)).toEqual({ value, length: bytes.length });
    if (v.canonical) {
      expect(hex.encode(encodeVarint(value))).toBe(v.hex);
      expect(hex.encode(wasmCore().varintEncode(value)!)).toBe(v.hex);
    }
  });

  test("RFC 9000 Appendix A.1 samples are among the vectors", () => {
    const hexes = vectors.varints.map((v) => v.hex);
    for (const h of ["c2197c5eff14e88c", "9d7f3e7d", "7bbd", "25", "4025"]) expect(hexes).toContain(h);
  });

  test("round trip, TS and WASM agree, any value up to 2^62-1", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: VARINT_MAX }), (v) => {
        const enc = encodeVarint(v);
        expect(enc.length).toBe(varintLength(v));
        expect(wasmCore().varintEncode(v)).toEqual(enc);
        expect(decodeVarint(enc)).toEqual({ value: v, length: enc.length });
        expect(wasmCore().varintDecode(enc)).toEqual({ value: v, length: enc.length });
        // A prefix is reported as too short, never misread.
        expect(decodeVarint(enc.subarray(0, enc.length - 1))).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });

  test("out-of-range values are refused", () => {
    expect(() => encodeVarint(VARINT_MAX + 1n)).toThrow(RangeError);
    expect(() => encodeVarint(-1)).toThrow(RangeError);
    expect(() => encodeVarint(1.5)).toThrow(RangeError);
    expect(wasmCore().varintEncode(VARINT_MAX + 1n)).toBeUndefined();
  });
});
