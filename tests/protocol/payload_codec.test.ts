// Payload codecs: round trips over the benchmark's shapes, decode of random bytes raises only
// PayloadDecodeError (never a crash or hang), and encode refuses what the format cannot carry.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { same, shapes } from "../../bench/payload.ts";
import {
  cborCodec,
  defaultPayloadCodec,
  jsonCodec,
  msgpackCodec,
  type PayloadCodec,
  PayloadDecodeError,
} from "../../src/protocol/payload_codec.ts";

const codecs: PayloadCodec[] = [msgpackCodec(), cborCodec(), jsonCodec];
const binary = codecs.filter((c) => c !== jsonCodec);

test("the default codec is standard MessagePack", () => {
  expect(defaultPayloadCodec().name).toBe("msgpack");
});

for (const codec of codecs) {
  describe(`${codec.name} codec`, () => {
    const inputs = Object.entries(shapes()).filter(([name]) => codec !== jsonCodec || !name.startsWith("f "));
    test.each(inputs)("round trip: %s", (_name, value) => {
      expect(same(codec.decode(codec.encode(value)), value)).toBe(true);
    });

    test("refuses functions and symbols with a TypeError, never drops them", () => {
      for (const v of [() => 1, { a: 1, f: () => 1 }, [1, () => 1], Symbol("s"), { s: Symbol("s") }]) {
        expect(() => codec.encode(v)).toThrow(TypeError);
        expect(() => codec.encode(v)).toThrow(/^cannot encode a (function|symbol) in a \w+ payload/);
      }
    });

    test("refuses cyclic values with a TypeError", () => {
      const cyc: Record<string, unknown> = { a: 1 };
      cyc.self = cyc;
      expect(() => codec.encode(cyc)).toThrow(TypeError);
    });

    test("malformed bytes raise PayloadDecodeError with a lower-case message", () => {
      for (const b of [[], [0x92, 0x01], [0x01, 0x02], [0xdd, 0xff, 0xff, 0xff, 0xff], [0x7b, 0x22], [0xff, 0xfe]]) {
        let err: unknown;
        try {
          codec.decode(new Uint8Array(b));
        } catch (e) {
          err = e;
        }
        // Some of these are valid in one format (e.g. 0x92 0x01 0x02); only check those that fail.
        if (err === undefined) continue;
        expect(err).toBeInstanceOf(PayloadDecodeError);
        expect(err).toBeInstanceOf(TypeError);
        expect((err as Error).message).toStartWith(`malformed ${codec.name} payload: expected exactly one complete`);
        expect((err as Error).message).toBe((err as Error).message.toLowerCase());
      }
      expect(() => codec.decode(new Uint8Array())).toThrow(PayloadDecodeError);
      expect(() => codec.decode("x" as unknown as Uint8Array)).toThrow(TypeError);
    });

    test("deep nesting is a decode error, not a crash", () => {
      const open = codec.name === "msgpack" ? 0x91 : codec.name === "cbor" ? 0x81 : 0x5b; // [ x1
      const bytes = new Uint8Array(200_000).fill(open);
      expect(() => codec.decode(bytes)).toThrow(PayloadDecodeError);
      expect(codec.decode(codec.encode([1]))).toEqual([1]); // still usable
    });

    test("fuzz: random bytes decode or raise PayloadDecodeError only", () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
          try {
            codec.decode(bytes);
          } catch (e) {
            if (!(e instanceof PayloadDecodeError)) throw e;
          }
        }),
        { numRuns: 3000 },
      );
    });

    test("fuzz: mutated valid payloads decode or raise PayloadDecodeError only", () => {
      const valid = inputs.map(([, v]) => codec.encode(v));
      fc.assert(
        fc.property(fc.nat(valid.length - 1), fc.nat(), fc.nat(255), fc.nat(), (i, at, byte, cut) => {
          const b = valid[i].slice(0, 1 + (cut % valid[i].length));
          b[at % b.length] = byte;
          try {
            codec.decode(b);
          } catch (e) {
            if (!(e instanceof PayloadDecodeError)) throw e;
          }
        }),
        { numRuns: 3000 },
      );
    });
  });
}

describe("binary codecs", () => {
  test.each(binary.map((c) => [c.name, c] as const))("%s: Uint8Array inside objects survives", (_n, codec) => {
    const value = { a: new Uint8Array([1, 2, 3]), nested: { list: [new Uint8Array(0), new Uint8Array(300).fill(7)] } };
    const back = codec.decode(codec.encode(value)) as typeof value;
    expect(back.a).toBeInstanceOf(Uint8Array);
    expect(same(back, value)).toBe(true);
  });

  test("msgpack: the reserved byte 0xc1 is malformed, at the top and nested", () => {
    const mp = msgpackCodec();
    expect(() => mp.decode(new Uint8Array([0xc1]))).toThrow(PayloadDecodeError);
    expect(() => mp.decode(new Uint8Array([0x92, 0x01, 0xc1]))).toThrow(/reserved byte 0xc1/);
    expect(() => mp.decode(new Uint8Array([0x81, 0xa1, 0x61, 0xc1]))).toThrow(PayloadDecodeError);
    expect(mp.decode(new Uint8Array([0xcb, 0xc1, 0, 0, 0, 0, 0, 0, 0]))).toBe(-(2 ** 17)); // 0xc1 inside a float is fine
  });

  test("msgpack refuses a bigint beyond 64 bits; cbor carries it", () => {
    expect(() => msgpackCodec().encode(2n ** 70n)).toThrow(TypeError);
    expect(cborCodec().decode(cborCodec().encode(2n ** 70n))).toBe(2n ** 70n);
  });

  test("cbor keeps Map, Set, Date and undefined", () => {
    const cbor = cborCodec();
    const v = { m: new Map([["k", 1]]), s: new Set([1]), d: new Date(5), u: undefined };
    expect(same(cbor.decode(cbor.encode(v)), v)).toBe(true);
  });
});

describe("json codec", () => {
  test("refuses binary data, Map, Set, bigint and a bare undefined", () => {
    for (const v of [new Uint8Array(1), { b: new Uint8Array(1) }, new Map(), new Set(), 1n, undefined, new ArrayBuffer(1)]) {
      expect(() => jsonCodec.encode(v)).toThrow(TypeError);
    }
  });

  test("invalid UTF-8 is a decode error", () => {
    expect(() => jsonCodec.decode(new Uint8Array([0x22, 0xff, 0x22]))).toThrow(PayloadDecodeError);
  });
});
