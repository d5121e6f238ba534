// Property tests: encode/decode round trips and splitting at arbitrary chunk boundaries.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createFrameCodec, DecodeError, type Frame, FrameType } from "../../src/protocol/mod.ts";
import { frameArb, plain } from "../support/frames.ts";

/** Cuts `bytes` at the given (sorted, deduplicated) offsets. */
function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...at, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

for (const impl of ["wasm", "ts", "auto"] as const) {
  describe(`frame codec (${impl})`, () => {
    const codec = createFrameCodec({ impl });

    test("encode/decode round trip for any frame", () => {
      fc.assert(
        fc.property(frameArb, (frame) => {
          const bytes = codec.encode(frame);
          expect(plain(codec.decode(bytes))).toEqual(plain(frame));
          const header = codec.encodeHeader(frame);
          const payload = "payload" in frame ? frame.payload : new Uint8Array(0);
          expect(header.length + payload.length).toBe(bytes.length);
          expect(Array.from(bytes.subarray(0, header.length))).toEqual(Array.from(header));
        }),
        { numRuns: 1500 },
      );
    });

    test("frames split at arbitrary points come out once each, in order", () => {
      fc.assert(
        fc.property(
          fc.array(frameArb, { minLength: 1, maxLength: 25 }),
          fc.array(fc.nat(), { maxLength: 40 }),
          (frames, points) => {
            const bytes = codec.encodeMany(frames);
            const splitter = codec.splitter();
            const got: Frame[] = [];
            for (const chunk of cut(bytes, points)) got.push(...splitter.push(chunk));
            splitter.end();
            expect(got.map(plain)).toEqual(frames.map(plain));
            expect(splitter.buffered).toBe(0);
            expect(splitter.position).toBe(bytes.length);
          },
        ),
        { numRuns: 600 },
      );
    });

    test("frames that span chunks on several splitters at once keep their own bytes (the shared slab)", () => {
      // Two streams' splitters fed alternately, every frame cut across chunks; payloads of 1 B to
      // 6 KiB (some above the slab's per-frame limit), all kept and checked only at the end.
      const sizes = [1, 700, 1024, 4095, 4096, 4097, 6000, 333, 16 * 1024 - 5];
      const mk = (stream: number, i: number): Frame => {
        const n = sizes[i % sizes.length];
        const payload = new Uint8Array(n).map((_, k) => (k * 31 + i * 7 + stream * 101) & 0xff);
        return { type: FrameType.DATA, flags: 1, payload };
      };
      const streams = [0, 1].map((st) => {
        const frames = Array.from({ length: 120 }, (_, i) => mk(st, i));
        const bytes = codec.encodeMany(frames);
        const chunks: Uint8Array[] = [];
        for (let o = 0, k = 0; o < bytes.length; k++) {
          const len = 257 + ((k * 389 + st * 53) % 1500);
          chunks.push(bytes.slice(o, o + len)); // copies: the stack hands out fresh chunks
          o += len;
        }
        return { frames, chunks, splitter: codec.splitter(), got: [] as Frame[] };
      });
      for (let k = 0; streams.some((x) => k < x.chunks.length); k++) {
        for (const x of streams) if (k < x.chunks.length) x.got.push(...x.splitter.push(x.chunks[k]));
      }
      for (const x of streams) {
        x.splitter.end();
        expect(x.got.length).toBe(x.frames.length);
        expect(x.got.map(plain)).toEqual(x.frames.map(plain));
      }
    });

    test("a large frame spread over many chunks, among small ones in one chunk", () => {
      const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i * 7);
      const frames: Frame[] = [
        { type: FrameType.EVENT, flags: 1, topic: "t", metadata: {}, payload: new Uint8Array([1]) },
        { type: FrameType.DATA, flags: 1 | 2, seq: 2 ** 32 + 5, payload: big },
        ...Array.from({ length: 500 }, (_, i): Frame => ({ type: FrameType.PING, flags: 0, seq: i, t1: i / 3 })),
      ];
      const bytes = codec.encodeMany(frames);
      const splitter = codec.splitter();
      const got: Frame[] = [];
      for (let i = 0; i < bytes.length; i += 65536) got.push(...splitter.push(bytes.subarray(i, i + 65536)));
      expect(got.length).toBe(frames.length);
      const [, data, ...rest] = got;
      expect(data.type === FrameType.DATA && data.seq).toBe(2 ** 32 + 5);
      expect(Buffer.compare((data as { payload: Uint8Array }).payload, big)).toBe(0);
      expect([got[0], ...rest].map(plain)).toEqual([frames[0], ...frames.slice(2)].map(plain));
    });

    test("an oversize frame is refused from its length prefix, before its body is buffered", () => {
      const small = createFrameCodec({ impl, limits: { maxFrameSize: 1000 } });
      const splitter = small.splitter();
      // DATA, flags RAW, length 2^30-1: only the prefix is sent.
      expect(() => splitter.push(new Uint8Array([0x09, 0x01, 0xbf, 0xff, 0xff, 0xff]))).toThrow(DecodeError);
      expect(splitter.buffered).toBe(0);
      // The prefix alone, arriving one byte at a time, is refused as soon as the length is read.
      const s2 = small.splitter();
      s2.push(new Uint8Array([0x09]));
      s2.push(new Uint8Array([0x01]));
      s2.push(new Uint8Array([0x43]));
      expect(() => s2.push(new Uint8Array([0xe9]))).toThrow(/larger than the maximum frame size at byte 2/);
      // Encoding refuses it too.
      expect(() => small.encode({ type: FrameType.DATA, flags: 1, payload: new Uint8Array(1001) })).toThrow(RangeError);
    });

    test("plain DATA frames (the scan's fast path) at every length-prefix size, cut anywhere", () => {
      // Lengths around the 1-, 2- and 4-byte varint boundaries; flags none, RAW, FIN, RAW|FIN.
      const lengths = [0, 1, 63, 64, 1024, 16383, 16384, 70000];
      const frames: Frame[] = lengths.flatMap((n, i) =>
        [0, 1, 0x10, 0x11].map((flags): Frame => ({ type: FrameType.DATA, flags, payload: new Uint8Array(n).fill(i + flags) }))
      );
      const bytes = codec.encodeMany(frames);
      for (const step of [1, 2, 3, 1027, 65536, bytes.length]) {
        const splitter = codec.splitter();
        const got: Frame[] = [];
        for (let i = 0; i < bytes.length; i += step) got.push(...splitter.push(bytes.subarray(i, i + step)));
        splitter.end();
        expect(got.map(plain)).toEqual(frames.map(plain));
        // The same object shape as the general decoder: no optional field appears.
        for (const f of got) expect(Object.keys(f).sort()).toEqual(["flags", "payload", "type"]);
      }
    });

    test("decodeAll: frames back to back that fill the bytes exactly; a cut frame is TRUNCATED without buffering", () => {
      fc.assert(
        fc.property(fc.array(frameArb, { maxLength: 8 }), (frames) => {
          const bytes = codec.encodeMany(frames);
          expect(codec.decodeAll(bytes).map(plain)).toEqual(frames.map(plain));
          if (bytes.length > 0) expect(() => codec.decodeAll(bytes.subarray(0, bytes.length - 1))).toThrow(DecodeError);
        }),
        { numRuns: 300 },
      );
      // A length prefix the bytes do not back (a 1 MiB frame announced in 6 bytes) is refused as
      // cut short, not allocated.
      expect(() => codec.decodeAll(new Uint8Array([0x09, 0x01, 0x80, 0x10, 0x00, 0x00]))).toThrow(/bytes end inside a frame/);
      expect(codec.decodeAll(new Uint8Array(0))).toEqual([]);
    });

    test("end() inside a frame is TRUNCATED; the splitter stays usable after an error", () => {
      const ping = codec.encode({ type: FrameType.PING, flags: 0, seq: 9, t1: 1 });
      const splitter = codec.splitter();
      splitter.push(ping.subarray(0, 5));
      expect(splitter.buffered).toBe(5);
      expect(() => splitter.end()).toThrow(DecodeError);
      expect(() => splitter.push(new Uint8Array([0x3f, 0, 0]))).toThrow(DecodeError);
      expect(splitter.push(ping).map(plain)).toEqual([plain(codec.decode(ping))]);
    });
  });
}

test("WASM and TS splitters give identical frames for the same chunks", () => {
  const wasm = createFrameCodec({ impl: "wasm" });
  const ts = createFrameCodec({ impl: "ts" });
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 20 }), (frames, points) => {
      const bytes = ts.encodeMany(frames);
      expect(Array.from(wasm.encodeMany(frames))).toEqual(Array.from(bytes));
      const a = wasm.splitter();
      const b = ts.splitter();
      for (const chunk of cut(bytes, points)) expect(a.push(chunk).map(plain)).toEqual(b.push(chunk).map(plain));
    }),
    { numRuns: 300 },
  );
});
