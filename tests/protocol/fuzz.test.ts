// Fuzzing the decoders: random and mutated bytes may only raise DecodeError, both cores agree
// on every input (same frame, or same error code and offset), and each stays usable after.

import { expect, test } from "bun:test";
import fc from "fast-check";
import { createFrameCodec, DecodeError, FrameType } from "../../src/protocol/mod.ts";
import { frameArb, outcome, plain } from "../support/frames.ts";

const wasm = createFrameCodec({ impl: "wasm", limits: { maxFrameSize: 4096 } });
const ts = createFrameCodec({ impl: "ts", limits: { maxFrameSize: 4096 } });
const probe = { type: FrameType.PING, flags: 0, seq: 1, t1: 2 } as const;
const probeBytes = ts.encode(probe);

function check(bytes: Uint8Array): void {
  const a = outcome(() => plain(wasm.decode(bytes)));
  const b = outcome(() => plain(ts.decode(bytes)));
  expect(a).toEqual(b);
  if ("error" in a) expect(a.error).toBe("DecodeError");
  // Splitters: same frames or same error, and only DecodeError.
  const sa = wasm.splitter();
  const sb = ts.splitter();
  const ra = outcome(() => sa.push(bytes).map(plain));
  const rb = outcome(() => sb.push(bytes).map(plain));
  expect(ra).toEqual(rb);
  if ("error" in ra) expect(ra.error).toBe("DecodeError");
  // Still usable: a valid frame decodes afterwards.
  expect(plain(wasm.decode(probeBytes))).toEqual(plain(probe));
  expect(plain(ts.decode(probeBytes))).toEqual(plain(probe));
}

test("random bytes", () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => check(bytes)), { numRuns: 5000 });
});

test("random bytes with a plausible frame prefix", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 11 }), fc.integer({ min: 0, max: 15 }), fc.uint8Array({ maxLength: 120 }), (ty, flags, body) => {
      const bytes = new Uint8Array(3 + body.length);
      bytes.set([ty, flags, Math.min(body.length, 63)]);
      bytes.set(body, 3);
      check(bytes);
      check(bytes.subarray(0, 3 + Math.min(body.length, 63)));
    }),
    { numRuns: 5000 },
  );
});

test("mutated valid frames", () => {
  fc.assert(
    fc.property(
      fc.array(frameArb, { minLength: 1, maxLength: 3 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      fc.nat(),
      (frames, flips, cutAt) => {
        let bytes: Uint8Array;
        try {
          bytes = ts.encodeMany(frames);
        } catch {
          return; // a generated frame above the small test limit
        }
        for (const [at, value] of flips) bytes[at % bytes.length] = value;
        check(bytes);
        check(bytes.subarray(0, cutAt % (bytes.length + 1)));
      },
    ),
    { numRuns: 3000 },
  );
});

test("only DecodeError escapes, and it carries a code and an in-range offset", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
      try {
        wasm.decode(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        const err = e as DecodeError;
        expect(typeof err.code).toBe("string");
        expect(err.offset).toBeGreaterThanOrEqual(0);
        expect(err.offset).toBeLessThanOrEqual(bytes.length);
      }
    }),
    { numRuns: 3000 },
  );
});
