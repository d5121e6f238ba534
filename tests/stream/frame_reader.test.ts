// FrameReader (src/wire/frame_reader.ts), both ways of reading: `next()` a frame at a time and
// a chunk's frames at a time, the EchoStream pump's way (`queued()`, else `pull()` then
// `accept()` or `fail()`; `read()` below is one such step). That hands over what `next()` had
// already split off first, then each chunk's frames (none for a partial frame), then undefined
// at a clean end; a stream cut inside a frame, bytes that are not frames, a frame over the
// connection's receive budget and the transport's own failure all reject as `next()` does, and
// the budget is given back every time.

import { expect, test } from "bun:test";
import { FrameReader, type ReceiveBudget } from "../../src/wire/frame_reader.ts";
import { createFrameCodec } from "../../src/protocol/codec.ts";
import { type Frame, FrameFlag, FrameType } from "../../src/protocol/frame.ts";
import { ErrorCode, RpcError } from "../../src/protocol/rpc_error.ts";
import type { RecvStream } from "../../src/transport/types.ts";

const codec = createFrameCodec();
const data = (n: number, size = 1) => codec.encode({ type: FrameType.DATA, flags: FrameFlag.RAW, payload: new Uint8Array(size).fill(n) });
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
};

/** A transport stream yielding `chunks`, then ending (or failing with `fail`). */
function stream(chunks: Uint8Array[], fail?: Error): RecvStream {
  return {
    stopSending() {},
    async *[Symbol.asyncIterator]() {
      for (const c of chunks) yield c;
      if (fail) throw fail;
    },
  };
}

/** The first byte of each DATA frame's payload. */
const payloads = (fs: Frame[] | undefined) => fs?.map((f) => (f.type === FrameType.DATA ? f.payload[0] : -1));
const first = (f: Frame | undefined) => (f?.type === FrameType.DATA ? f.payload[0] : -1);

/** One step of the pump's way of reading: the frames already split off, else the next read's. */
async function read(r: FrameReader): Promise<Frame[] | undefined> {
  const queued = r.queued();
  if (queued !== undefined) return queued;
  const p = r.pull();
  if (p === undefined) return undefined;
  let res;
  try {
    res = await p;
  } catch (e) {
    r.fail(e);
  }
  return r.accept(res!);
}

test("read(): the frames next() already split off first, then a chunk's frames each, none for a partial frame, then undefined", async () => {
  const two = data(2);
  const r = new FrameReader(stream([cat(data(0), data(1), data(9)), cat(two.subarray(0, 2)), cat(two.subarray(2), data(3), data(4))]), codec);
  expect((await r.next())!.type).toBe(FrameType.DATA); // frame 0; 1 and 9 stay split off
  expect(payloads(await read(r))).toEqual([1, 9]);
  expect(payloads(await read(r))).toEqual([]); // the first bytes of frame 2
  expect(payloads(await read(r))).toEqual([2, 3, 4]);
  expect(await read(r)).toBeUndefined();
  expect(await read(r)).toBeUndefined();
  expect(r.finished).toBe(true);
});

test("read() after reading everything with next() and take() ends cleanly", async () => {
  const r = new FrameReader(stream([cat(data(5), data(6))]), codec);
  expect(first(await r.next())).toBe(5);
  expect(first(r.take())).toBe(6);
  expect(r.take()).toBeUndefined();
  expect(await read(r)).toBeUndefined();
});

test("read(): a stream cut inside a frame and bytes that are not frames are DATA_LOSS", async () => {
  const cut = new FrameReader(stream([data(1, 10).subarray(0, 5)]), codec);
  expect(payloads(await read(cut))).toEqual([]);
  const e1 = await read(cut).catch((e) => e);
  expect(e1).toBeInstanceOf(RpcError);
  expect((e1 as RpcError).code).toBe(ErrorCode.DATA_LOSS);

  // Bytes that are not frames: refused at once or, as an unfinished prefix, at the end.
  const junk = new FrameReader(stream([new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])]), codec);
  let e2: unknown;
  for (let i = 0; i < 3 && e2 === undefined; i++) {
    await read(junk).then((fs) => expect(fs).toEqual([]), (e) => (e2 = e));
  }
  expect((e2 as RpcError).code).toBe(ErrorCode.DATA_LOSS);
});

test("read(): a frame over the receive budget is RESOURCE_EXHAUSTED and gives the budget back; a transport failure passes through unconverted and gives it back", async () => {
  const budget: ReceiveBudget = { used: 0, max: 100 };
  let refused = 0;
  budget.onRefused = () => refused++;
  const big = data(7, 1000);
  const r = new FrameReader(stream([big.subarray(0, 10)]), codec, budget);
  const e = await read(r).catch((x) => x);
  expect((e as RpcError).code).toBe(ErrorCode.RESOURCE_EXHAUSTED);
  expect(refused).toBe(1);
  expect(budget.used).toBe(0);
  expect(r.finished).toBe(true);

  const boom = new Error("transport failed");
  const ok = new FrameReader(stream([big.subarray(0, 10)], boom), codec, { used: 0, max: 1 << 20 });
  expect(payloads(await read(ok))).toEqual([]);
  const b2: ReceiveBudget = { used: 0, max: 1 << 20 };
  const failing = new FrameReader(stream([big.subarray(0, 10)], boom), codec, b2);
  expect(payloads(await read(failing))).toEqual([]);
  expect(b2.used).toBeGreaterThan(0); // the partial frame is held
  expect(await read(failing).catch((x) => x)).toBe(boom);
  expect(b2.used).toBe(0);
});

test("a stack that reads in batches (RecvStream.batches): frames across the chunks of a batch and across batches, empty batches, the end", async () => {
  const two = data(2);
  const batches: Uint8Array[][] = [[data(0)], [cat(data(1), two.subarray(0, 1)), two.subarray(1, 3)], [], [two.subarray(3), data(3)], [data(4), data(5)]];
  let chunkReads = 0;
  const s: RecvStream = {
    stopSending() {},
    async *[Symbol.asyncIterator]() {
      chunkReads++;
      yield* [];
    },
    batches() {
      const it = batches[Symbol.iterator]();
      return { next: () => Promise.resolve(it.next()), ended: () => undefined, error: (e: unknown) => e as Error };
    },
  };
  const r = new FrameReader(s, codec);
  expect(payloads(await read(r))).toEqual([0]);
  expect(payloads(await read(r))).toEqual([1]);
  expect(payloads(await read(r))).toEqual([]);
  expect(first(await r.next())).toBe(2); // next() reads batches too
  expect(first(r.take())).toBe(3);
  expect(payloads(await read(r))).toEqual([4, 5]);
  expect(await read(r)).toBeUndefined();
  expect(chunkReads).toBe(0); // the chunk iteration was never used
});

/**
 * A batch-reading stack (`RecvStream.batches`) whose reads are `batches`, then the end (`lost`:
 * the connection went, which the stack shows as a `done` read) or a rejection with `raw`. Its
 * `error()` wraps what it is given, so a test sees whether the reader converted a rejection.
 */
function batchStream(batches: Uint8Array[][], end: { lost?: Error; raw?: unknown } = {}): RecvStream {
  return {
    stopSending() {},
    async *[Symbol.asyncIterator]() {},
    batches() {
      let i = 0;
      return {
        next: () => {
          if (i < batches.length) return Promise.resolve({ value: batches[i++], done: false as const });
          return end.raw !== undefined ? Promise.reject(end.raw) : Promise.resolve({ value: undefined, done: true as const });
        },
        ended: () => end.lost,
        error: (e: unknown) => new Error(`converted: ${String(e)}`),
      };
    },
  };
}

/** Reads a stream to its end the way the EchoStream pump does, a chunk's frames at a time. */
async function pump(r: FrameReader): Promise<number[]> {
  const got: number[] = [];
  for (let fs = await read(r); fs; fs = await read(r)) got.push(...payloads(fs)!);
  return got;
}

/** Reads `r` to its end a frame or a chunk at a time; what it threw (undefined if nothing). */
async function readFails(r: FrameReader, how: "next" | "pump"): Promise<unknown> {
  try {
    if (how === "next") while (await r.next());
    else await pump(r);
  } catch (e) {
    return e;
  }
  return undefined;
}

test("queued() / pull() / accept() to the end: frames next() split off first, then each chunk's, then the clean end", async () => {
  const two = data(2);
  const r = new FrameReader(batchStream([[cat(data(0), data(1))], [two.subarray(0, 2)], [two.subarray(2), data(3)]]), codec);
  expect(first(await r.next())).toBe(0); // leaves frame 1 split off
  expect(await pump(r)).toEqual([1, 2, 3]);
  expect(r.finished).toBe(true);
  expect(r.pull()).toBeUndefined();
  expect(r.queued()).toBeUndefined();
});

test("batches: a `done` read that ended() calls a lost connection throws that error (no clean end) and gives the budget back, both ways of reading", async () => {
  const lost = new Error("connection lost");
  const half = data(9, 100).subarray(0, 50);
  for (const how of ["next", "pump"] as const) {
    const budget: ReceiveBudget = { used: 0, max: 1 << 20 };
    const r = new FrameReader(batchStream([[data(1)], [half]], { lost }), codec, budget);
    const err = await readFails(r, how);
    expect(err).toBe(lost);
    expect(budget.used).toBe(0);
  }
  // Without a loss, the same `done` read is the clean end.
  expect(await pump(new FrameReader(batchStream([[data(1)]]), codec))).toEqual([1]);
});

test("batches: a rejected read is converted by the stack's error() both ways of reading, and gives the budget back", async () => {
  for (const how of ["next", "pump"] as const) {
    const budget: ReceiveBudget = { used: 0, max: 1 << 20 };
    const r = new FrameReader(batchStream([[data(1), data(2, 100).subarray(0, 10)]], { raw: "reset 7" }), codec, budget);
    const err = await readFails(r, how);
    expect((err as Error).message).toBe("converted: reset 7");
    expect(budget.used).toBe(0);
  }
});
