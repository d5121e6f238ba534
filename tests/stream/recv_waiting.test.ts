// A reader that waits with nothing queued (src/stream/echo_stream.ts, the direct hand-over: the
// next frame, the end or the failure settles its promise from the pump). Frames pushed one at a
// time reach a waiting `recv()` and a waiting iterator in order; two waiting readers get the
// next two frames in call order; and a waiting reader is settled by the peer's end marker, the
// peer's abort and a local abort as the queued path settles it (frames first, then the failure).
// The stream runs over an in-memory transport stream fed chunk by chunk.

import { expect, test } from "bun:test";
import { EchoStream } from "../../src/stream/echo_stream.ts";
import { FrameReader } from "../../src/wire/frame_reader.ts";
import { createFrameCodec } from "../../src/protocol/codec.ts";
import { FrameFlag, FrameType } from "../../src/protocol/frame.ts";
import { ErrorCode, errorCodeNumber, RpcError } from "../../src/protocol/rpc_error.ts";
import type { BidiStream } from "../../src/transport/types.ts";
import { within } from "../support/wait.ts";

const codec = createFrameCodec();

/** An in-memory transport stream: `feed` delivers a chunk to the reader; writes are kept. */
function memoryStream(): { s: BidiStream; feed: (c: Uint8Array | null) => void; written: Uint8Array[] } {
  const chunks: (Uint8Array | null)[] = [];
  let wake: (() => void) | undefined;
  const written: Uint8Array[] = [];
  const s: BidiStream = {
    writeSync: (c) => (written.push(c.slice()), true),
    write: (c) => (written.push(c.slice()), Promise.resolve()),
    end: () => Promise.resolve(),
    reset() {},
    stopSending() {},
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (chunks.length === 0) await new Promise<void>((r) => (wake = r));
        const c = chunks.shift()!;
        if (c === null) return;
        yield c;
      }
    },
  };
  return {
    s,
    written,
    feed(c) {
      chunks.push(c);
      const w = wake;
      wake = undefined;
      w?.();
    },
  };
}

function open(): { es: EchoStream; feed: (c: Uint8Array | null) => void; written: Uint8Array[] } {
  const m = memoryStream();
  const es = new EchoStream("t", {}, m.s, new FrameReader(m.s, codec), codec);
  return { es, feed: m.feed, written: m.written };
}

const data = (n: number) => codec.encode({ type: FrameType.DATA, flags: FrameFlag.RAW, payload: new Uint8Array([n]) });
const fin = () => codec.encode({ type: FrameType.DATA, flags: FrameFlag.RAW | FrameFlag.FIN, payload: new Uint8Array(0) });
const peerAbort = () =>
  codec.encode({ type: FrameType.ERROR, flags: 0, code: errorCodeNumber(ErrorCode.PERMISSION_DENIED), message: "no", payload: new Uint8Array(0) });
const turn = () => new Promise((r) => setTimeout(r, 2));

test("a waiting recv() gets frames fed one at a time, in order, then undefined at the end marker", async () => {
  const { es, feed } = open();
  for (let i = 0; i < 50; i++) {
    const p = es.recv(); // nothing queued: waits
    await turn();
    feed(data(i));
    expect(await within(p, `frame ${i}`)).toEqual(new Uint8Array([i]));
  }
  const end = es.recv();
  await turn();
  feed(fin());
  expect(await within(end, "the end")).toBeUndefined();
  expect(await es.recv()).toBeUndefined();
});

test("a waiting iterator gets frames fed one at a time, in order, and finishes at the end marker", async () => {
  const { es, feed } = open();
  const got: number[] = [];
  const loop = (async () => {
    for await (const f of es) got.push(f[0]);
  })();
  for (let i = 0; i < 50; i++) {
    feed(data(i));
    await turn();
  }
  feed(fin());
  await within(loop, "the loop");
  expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i));
});

test("two readers waiting at once get the next two frames in call order", async () => {
  const { es, feed } = open();
  const a = es.recv();
  const b = es.recv();
  const it = es[Symbol.asyncIterator]();
  const c = it.next();
  await turn();
  feed(data(1));
  await turn();
  feed(data(2));
  await turn();
  feed(data(3));
  expect(await within(a, "a")).toEqual(new Uint8Array([1]));
  expect(await within(b, "b")).toEqual(new Uint8Array([2]));
  expect(await within(c, "c")).toEqual({ done: false, value: new Uint8Array([3]) });
});

test("the peer's abort settles a waiting recv() and a waiting iterator with its reason, after the frames before it", async () => {
  const { es, feed } = open();
  const first = es.recv();
  await turn();
  // One chunk: a frame, then the abort. The frame is handed over first.
  const both = new Uint8Array([...data(7), ...peerAbort()]);
  feed(both);
  expect(await within(first, "the frame")).toEqual(new Uint8Array([7]));
  const err = await es.recv().catch((e) => e);
  expect(err).toBeInstanceOf(RpcError);
  expect((err as RpcError).code).toBe(ErrorCode.PERMISSION_DENIED);

  const o = open();
  const it = o.es[Symbol.asyncIterator]();
  const waiting = it.next().catch((e) => e);
  await turn();
  o.feed(peerAbort());
  const e2 = await within(waiting, "the iterator");
  expect((e2 as RpcError).code).toBe(ErrorCode.PERMISSION_DENIED);
  expect(await it.next()).toEqual({ done: true, value: undefined }); // it stays done
});

test("a local abort settles a waiting recv() and a waiting iterator with CANCELLED", async () => {
  const { es, feed } = open();
  const p = es.recv().catch((e) => e);
  const it = es[Symbol.asyncIterator]();
  const q = it.next().catch((e) => e);
  await turn();
  const aborted = es.abort(); // settles once the reader is cancelled: the memory stream's read ends below
  expect(((await within(p, "recv")) as RpcError).code).toBe(ErrorCode.CANCELLED);
  expect(((await within(q, "next")) as RpcError).code).toBe(ErrorCode.CANCELLED);
  feed(null);
  await within(aborted, "abort");
});

test("a transport stream that ends without the end marker fails a waiting reader with UNAVAILABLE", async () => {
  const { es, feed } = open();
  const p = es.recv();
  await turn();
  feed(data(1));
  expect(await within(p, "frame")).toEqual(new Uint8Array([1]));
  const q = es.recv().catch((e) => e);
  await turn();
  feed(null);
  expect(((await within(q, "recv")) as RpcError).code).toBe(ErrorCode.UNAVAILABLE);
});

test("frames handed to a waiting reader are credited back: 70 KiB taken one frame at a time grant the sender a WINDOW", async () => {
  const { es, feed, written } = open();
  const kib = codec.encode({ type: FrameType.DATA, flags: FrameFlag.RAW, payload: new Uint8Array(1024) });
  for (let i = 0; i < 70; i++) {
    const p = es.recv();
    await turn();
    feed(kib);
    expect((await within(p, `frame ${i}`))!.length).toBe(1024);
  }
  await new Promise((r) => setTimeout(r, 10)); // the writer hands its batch over at the end of a turn
  const frames = written.flatMap((c) => codec.splitter().push(c));
  const windows = frames.filter((f) => f.type === FrameType.WINDOW) as { increment: number }[];
  // The first grant comes somewhere in the first quarter-window (each stream at its own point,
  // below), then one every quarter-window: 70 KiB make one or two, together no more than taken.
  expect(windows.length).toBeGreaterThanOrEqual(1);
  expect(windows.length).toBeLessThanOrEqual(2);
  const total = windows.reduce((a, w) => a + w.increment, 0);
  expect(total).toBeLessThanOrEqual(70 * 1024);
  expect(total).toBeGreaterThan(70 * 1024 - 64 * 1024);
  expect(total % 1024).toBe(0);
});

test("streams fed in lockstep grant credit at different points, not all in the same turn", async () => {
  // Many streams opened together and carrying frames at one rate (a time-synced fan-in) each
  // grant their peer credit every quarter-window: at the same frame, every stream would write its
  // WINDOW in the same turn, a burst of writes that stalls the loop (on Bun each write costs more
  // the more streams are open) every ~8 s at 160 B × 50 fps.
  const n = 40;
  const streams = Array.from({ length: n }, () => open());
  const kib = codec.encode({ type: FrameType.DATA, flags: FrameFlag.RAW, payload: new Uint8Array(1024) });
  const firstAt: number[] = new Array(n).fill(-1);
  const countWindows = (w: Uint8Array[]) => w.flatMap((c) => codec.splitter().push(c)).filter((f) => f.type === FrameType.WINDOW).length;
  for (let round = 0; round < 64; round++) {
    const ps = streams.map(({ es }) => es.recv());
    await turn();
    for (const { feed } of streams) feed(kib);
    await Promise.all(ps);
    await new Promise((r) => setTimeout(r, 1)); // the writers hand their batches over
    streams.forEach(({ written }, i) => {
      if (firstAt[i] < 0 && countWindows(written) > 0) firstAt[i] = round;
    });
  }
  // Every stream granted within the first quarter-window (64 KiB)...
  expect(firstAt.every((r) => r >= 0)).toBe(true);
  // ...spread over it: no round holds more than a few of the 40 first grants.
  const perRound = new Map<number, number>();
  for (const r of firstAt) perRound.set(r, (perRound.get(r) ?? 0) + 1);
  expect(Math.max(...perRound.values())).toBeLessThanOrEqual(3);
  expect(perRound.size).toBeGreaterThanOrEqual(25);
});
