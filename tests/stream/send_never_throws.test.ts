// EchoStream.send is not an `async` function (issue 15: no promise of its own per message), so
// every failure must still come back as a rejection, never a synchronous throw: wrong input, a
// closed stream, and a stack whose write throws instead of rejecting.

import { expect, test } from "bun:test";
import { createFrameCodec } from "../../src/protocol/codec.ts";
import { EchoStream } from "../../src/stream/echo_stream.ts";
import { FrameReader } from "../../src/wire/frame_reader.ts";
import type { BidiStream } from "../../src/transport/types.ts";

/** A stream the peer never answers on, whose write throws synchronously (a misbehaving stack). */
function throwingStream(): BidiStream {
  return {
    [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<Uint8Array>>(() => {}) }),
    write: () => {
      throw new Error("stack write blew up");
    },
    end: () => Promise.resolve(),
    reset: () => {},
    stopSending: () => {},
  };
}

/** Calls `send` and returns its promise, or the error it threw synchronously. */
function call(send: () => Promise<void>): Promise<void> | { threw: unknown } {
  try {
    return send();
  } catch (e) {
    return { threw: e };
  }
}

test("send() rejects, never throws: bad input, a stack write that throws, after end()", async () => {
  const codec = createFrameCodec();
  const raw = throwingStream();
  const s = new EchoStream("t", {}, raw, new FrameReader(raw, codec), codec);
  const cases: [() => Promise<void>, RegExp][] = [
    [() => s.send("nope" as unknown as Uint8Array), /must be Uint8Array/],
    // Bun's writer batches to the end of the turn; a stack without writeSync is written at once.
    [() => s.send(new Uint8Array(8)), /stack write blew up/],
  ];
  for (const [send, why] of cases) {
    const r = call(send);
    expect(r).toBeInstanceOf(Promise);
    await expect(r as Promise<void>).rejects.toThrow(why);
  }
  void s.end().catch(() => {});
  const after = call(() => s.send(new Uint8Array(8)));
  expect(after).toBeInstanceOf(Promise);
  await expect(after as Promise<void>).rejects.toThrow();
});
