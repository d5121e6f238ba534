// Test support: fast-check arbitraries for frames, and helpers shared by the protocol tests.

import fc from "fast-check";
import { type Frame, FrameType, type Metadata } from "../../src/protocol/mod.ts";

const name = fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" }).filter((s) => new TextEncoder().encode(s).length <= 256);
const anyString = fc.string({ maxLength: 60, unit: "grapheme" });
const u53 = fc.oneof(fc.nat({ max: 63 }), fc.nat({ max: 20000 }), fc.maxSafeNat());
const payload = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 100, maxLength: 3000 }));
const finite = fc.double({ noNaN: true, noDefaultInfinity: true });
const metadata: fc.Arbitrary<Metadata> = fc
  .uniqueArray(fc.tuple(name, anyString), { maxLength: 6, selector: (kv) => kv[0] })
  .map((pairs) => {
    const m: Metadata = Object.create(null);
    for (const [k, v] of pairs) m[k] = v;
    return m;
  });
const raw = fc.constantFrom(0, 1);

/** Any valid frame, as the decoder returns it (DATA presence flags set). */
export const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ type: fc.constant(FrameType.HELLO), flags: raw, version: u53, name: anyString, payload }),
  fc.record({ type: fc.constant(FrameType.WELCOME), flags: raw, version: u53, name: anyString, payload }),
  fc.record({ type: fc.constant(FrameType.GOAWAY), flags: raw, code: u53, reason: anyString, payload }),
  fc.record({
    type: fc.constant(FrameType.REQUEST),
    flags: fc.nat({ max: 15 }),
    method: name,
    deadlineMs: u53,
    metadata,
    payload,
  }),
  fc.record({ type: fc.constant(FrameType.RESPONSE), flags: raw, metadata, payload }),
  fc.record({ type: fc.constant(FrameType.ERROR), flags: raw, code: u53, message: anyString, payload }),
  fc.record({ type: fc.constant(FrameType.EVENT), flags: raw, topic: name, metadata, payload }),
  fc.record({ type: fc.constant(FrameType.OPEN), flags: raw, name, metadata, payload }),
  fc
    .record(
      { type: fc.constant(FrameType.DATA), flags: fc.constantFrom(0, 1, 16, 17), streamId: u53, seq: u53, timestamp: finite, payload },
      { requiredKeys: ["type", "flags", "payload"] },
    )
    .map((f) => ({ ...f, flags: f.flags | (f.streamId !== undefined ? 8 : 0) | (f.seq !== undefined ? 2 : 0) | (f.timestamp !== undefined ? 4 : 0) })),
  fc.record({ type: fc.constant(FrameType.PING), flags: fc.constant(0), seq: u53, t1: finite }),
  fc.record({ type: fc.constant(FrameType.PONG), flags: fc.constant(0), seq: u53, t1: finite, t2: finite, t3: finite }),
  fc.record({ type: fc.constant(FrameType.WINDOW), flags: fc.constant(0), increment: u53 }),
) as fc.Arbitrary<Frame>;

/** A frame as plain data, for deep equality that ignores prototypes and buffer identity. */
export function plain(f: Frame): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f)) {
    if (v instanceof Uint8Array) out[k] = Array.from(v);
    else if (k === "metadata") out[k] = { ...(v as Metadata) };
    else if (typeof v === "number" && Object.is(v, -0)) out[k] = "-0";
    else out[k] = v;
  }
  return out;
}

/** Hex helpers. */
export const hex = {
  decode(s: string): Uint8Array {
    const out = new Uint8Array(s.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
    return out;
  },
  encode(b: Uint8Array): string {
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  },
};

/** Runs `fn`, returning either its result or the error's name, code and offset. */
export function outcome<T>(fn: () => T): { ok: T } | { error: string; code?: string; offset?: number } {
  try {
    return { ok: fn() };
  } catch (e) {
    const err = e as { name: string; code?: string; offset?: number };
    return { error: err.name, code: err.code, offset: err.offset };
  }
}
