// Encoding refuses what the peer would refuse, with the same error class from both cores.

import { describe, expect, test } from "bun:test";
import { createFrameCodec, type Frame, FrameType } from "../../src/protocol/mod.ts";

const bad: [string, unknown, ErrorConstructor][] = [
  ["unknown type", { type: 0x3f, flags: 0, payload: new Uint8Array() }, TypeError],
  ["undefined flag bit", { type: FrameType.PING, flags: 4, seq: 1, t1: 0 }, RangeError],
  ["empty method", { type: FrameType.REQUEST, flags: 0, method: "", deadlineMs: 0, metadata: {}, payload: new Uint8Array() }, RangeError],
  ["method over 256 bytes", { type: FrameType.REQUEST, flags: 0, method: "é".repeat(129), deadlineMs: 0, metadata: {}, payload: new Uint8Array() }, RangeError],
  ["negative deadline", { type: FrameType.REQUEST, flags: 0, method: "m", deadlineMs: -1, metadata: {}, payload: new Uint8Array() }, RangeError],
  ["fractional seq", { type: FrameType.DATA, flags: 1, seq: 1.5, payload: new Uint8Array() }, RangeError],
  ["seq above 2^53-1", { type: FrameType.DATA, flags: 1, seq: 2 ** 53, payload: new Uint8Array() }, RangeError],
  ["NaN timestamp", { type: FrameType.DATA, flags: 1, timestamp: NaN, payload: new Uint8Array() }, RangeError],
  ["infinite pong time", { type: FrameType.PONG, flags: 0, seq: 1, t1: 0, t2: Infinity, t3: 0 }, RangeError],
  ["65 metadata entries", { type: FrameType.EVENT, flags: 0, topic: "t", metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, ""])), payload: new Uint8Array() }, RangeError],
  ["metadata over 8 KiB", { type: FrameType.EVENT, flags: 0, topic: "t", metadata: { a: "x".repeat(8192) }, payload: new Uint8Array() }, RangeError],
  ["empty metadata key", { type: FrameType.EVENT, flags: 0, topic: "t", metadata: { "": "v" }, payload: new Uint8Array() }, RangeError],
  ["non-string metadata value", { type: FrameType.EVENT, flags: 0, topic: "t", metadata: { a: 1 }, payload: new Uint8Array() }, TypeError],
  ["payload not bytes", { type: FrameType.EVENT, flags: 0, topic: "t", metadata: {}, payload: "x" }, TypeError],
  ["method not a string", { type: FrameType.REQUEST, flags: 0, method: 7, deadlineMs: 0, metadata: {}, payload: new Uint8Array() }, TypeError],
];

for (const impl of ["wasm", "ts"] as const) {
  describe(`encoding errors (${impl})`, () => {
    const codec = createFrameCodec({ impl });
    test.each(bad)("%s", (_name, frame, kind) => {
      expect(() => codec.encode(frame as Frame)).toThrow(kind);
      expect(() => codec.encodeHeader(frame as Frame)).toThrow(kind);
    });

    test("a failed frame in encodeMany leaves the next call clean", () => {
      const ok: Frame = { type: FrameType.PING, flags: 0, seq: 1, t1: 1 };
      expect(() => codec.encodeMany([ok, bad[1][1] as Frame])).toThrow(RangeError);
      expect(codec.encodeMany([ok])).toEqual(codec.encode(ok));
    });

    test("unicode strings: lone surrogates encode as U+FFFD", () => {
      const f: Frame = { type: FrameType.EVENT, flags: 0, topic: "a\ud800b", metadata: { "k\udc00": "😀" }, payload: new Uint8Array() };
      const back = codec.decode(codec.encode(f));
      expect(back).toMatchObject({ topic: "a\ufffdb", metadata: { "k\ufffd": "😀" } });
    });
  });
}
