// The shared test vectors (tests/vectors/frames.json, also run by `cargo test`) against both
// codec implementations.

import { describe, expect, test } from "bun:test";
import vectors from "../vectors/frames.json" with { type: "json" };
import { createFrameCodec, DecodeError, type Frame, FrameType, type ProtocolLimits } from "../../src/protocol/mod.ts";
import { hex, plain } from "../support/frames.ts";

const limits = vectors.limits as ProtocolLimits;

/** The vector's frame object as the decoder returns it. */
function expected(v: Record<string, unknown>): Record<string, unknown> {
  const type = FrameType[v.type as keyof typeof FrameType];
  const f: Record<string, unknown> = { ...v, type };
  if ("payload" in v || type <= FrameType.DATA) f.payload = Array.from(hex.decode((v.payload as string) ?? ""));
  if (Array.isArray(v.metadata)) f.metadata = Object.fromEntries(v.metadata as [string, string][]);
  if (type === FrameType.DATA) {
    f.flags = (v.flags as number) | ("streamId" in v ? 8 : 0) | ("seq" in v ? 2 : 0) | ("timestamp" in v ? 4 : 0);
  }
  return f;
}

function toFrame(v: Record<string, unknown>): Frame {
  const e = expected(v);
  if (Array.isArray(e.payload)) e.payload = new Uint8Array(e.payload as number[]);
  return e as unknown as Frame;
}

for (const impl of ["wasm", "ts"] as const) {
  describe(`frame vectors (${impl})`, () => {
    const codec = createFrameCodec({ impl, limits });

    test.each(vectors.frames.map((v) => [v.name, v] as const))("decodes and encodes %s", (_name, v) => {
      const bytes = hex.decode(v.hex);
      expect(plain(codec.decode(bytes))).toEqual(expected(v.frame));
      expect(hex.encode(codec.encode(toFrame(v.frame)))).toBe(v.hex);
      const header = codec.encodeHeader(toFrame(v.frame));
      expect(hex.encode(header)).toBe(v.hex.slice(0, v.hex.length - ((v.frame as { payload?: string }).payload?.length ?? 0)));
    });

    test.each(vectors.invalid.map((v) => [v.name, v] as const))("refuses %s", (_name, v) => {
      const bytes = hex.decode(v.hex);
      let err: unknown;
      try {
        codec.decode(bytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DecodeError);
      expect({ code: (err as DecodeError).code as string, offset: (err as DecodeError).offset }).toEqual({ code: v.code, offset: v.offset });
      if (!v.wholeFrameOnly) {
        const splitter = codec.splitter();
        splitter.push(hex.decode(vectors.frames[0].hex)); // a valid frame first: offsets count from the stream start
        const base = hex.decode(vectors.frames[0].hex).length;
        let serr: unknown;
        try {
          splitter.push(bytes);
        } catch (e) {
          serr = e;
        }
        expect(serr).toBeInstanceOf(DecodeError);
        expect({ code: (serr as DecodeError).code as string, offset: (serr as DecodeError).offset }).toEqual({ code: v.code, offset: base + v.offset });
      }
    });

    test("all vectors concatenated split one byte at a time", () => {
      const all = vectors.frames.map((v) => hex.decode(v.hex));
      const stream = new Uint8Array(all.reduce((n, b) => n + b.length, 0));
      let at = 0;
      for (const b of all) {
        stream.set(b, at);
        at += b.length;
      }
      const splitter = codec.splitter();
      const got: Frame[] = [];
      for (let i = 0; i < stream.length; i++) got.push(...splitter.push(stream.subarray(i, i + 1)));
      splitter.end();
      expect(got.map(plain)).toEqual(vectors.frames.map((v) => expected(v.frame)));
      expect(splitter.position).toBe(stream.length);
    });
  });
}
