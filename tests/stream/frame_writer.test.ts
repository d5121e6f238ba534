// FrameWriter (src/wire/frame_writer.ts), the batching writer under every EchoStream, over fake
// send streams: frames keep their order whichever way they go, frames written while the stack is
// busy go together in one write, a stalled stack makes the caller wait past the high-water mark,
// large payloads go by reference (never copied) and are waited for, a failed write fails what
// waits and what follows, and a stack that takes bytes synchronously is used that way (small
// frames batched to the end of the turn, a packet's worth at once).

import { expect, test } from "bun:test";
import { createFrameCodec } from "../../src/protocol/codec.ts";
import { type Frame, FrameFlag, FrameType } from "../../src/protocol/frame.ts";
import type { SendStream } from "../../src/transport/types.ts";
import { FrameWriter, SYNC_WRITE_AT } from "../../src/wire/frame_writer.ts";

const codec = createFrameCodec();

/** A send stream whose writes stay pending until `release()`; records each chunk (copied). */
class SlowStream implements SendStream {
  chunks: Uint8Array[] = [];
  /** The chunks as handed over (not copied), to tell a reference from a copy. */
  handed: Uint8Array[] = [];
  #pending: { ok: () => void; fail: (e: unknown) => void }[] = [];
  get inFlight(): number {
    return this.#pending.length;
  }
  write(chunk: Uint8Array): Promise<void> {
    this.handed.push(chunk);
    return new Promise((ok, fail) =>
      this.#pending.push({
        ok: () => {
          this.chunks.push(chunk.slice()); // what the stack took, at the moment it took it
          ok();
        },
        fail,
      })
    );
  }
  /** Completes the oldest pending write. */
  release(): void {
    this.#pending.shift()!.ok();
  }
  failNext(e: unknown): void {
    this.#pending.shift()!.fail(e);
  }
  end(): Promise<void> {
    return Promise.resolve();
  }
  reset(): void {}
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const data = (i: number, size = 16): Frame => {
  const payload = new Uint8Array(size).fill(i & 0xff);
  if (size >= 4) new DataView(payload.buffer).setUint32(0, i);
  return { type: FrameType.DATA, flags: FrameFlag.RAW, payload };
};
/** The DATA frames' indices in what the stack took, in order. */
function decoded(chunks: Uint8Array[]): number[] {
  const sp = codec.splitter();
  const out: number[] = [];
  for (const c of chunks) {
    for (const f of sp.push(c)) {
      if (f.type === FrameType.DATA) out.push(new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0));
      else out.push(-1); // a WINDOW frame
    }
  }
  sp.end();
  return out;
}

test("frames written while the stack is busy go as one write, in order", async () => {
  const s = new SlowStream();
  const w = new FrameWriter(s, codec);
  for (let i = 0; i < 50; i++) expect(w.write(data(i))).toBeUndefined(); // copied: no wait
  expect(w.write({ type: FrameType.WINDOW, flags: 0, increment: 1000 })).toBeUndefined();
  for (let i = 50; i < 60; i++) w.write(data(i));
  expect(s.inFlight).toBe(1); // the first frame went at once; the rest wait for it
  expect(s.handed.length).toBe(1);
  s.release();
  await tick();
  expect(s.handed.length).toBe(2); // everything queued meanwhile: one write
  s.release();
  await tick();
  expect(s.inFlight).toBe(0);
  expect(decoded(s.chunks)).toEqual([...Array.from({ length: 50 }, (_, i) => i), -1, ...Array.from({ length: 10 }, (_, i) => 50 + i)]);
  expect(w.backlog).toBe(0);
});

test("a writer's arena starts small and grows while chunks cut from the old ones are still being written", async () => {
  const s = new SlowStream();
  const w = new FrameWriter(s, codec);
  // Sizes from 4 B to 3 KiB, each turn's batch in flight while the next one is built: every
  // arena is outgrown (512 B first, doubling to 64 KiB) with bytes of the last still pending.
  const sizes = [4, 40, 400, 3000, 17, 1200, 600, 2048, 9, 333];
  let n = 0;
  for (let round = 0; round < 40; round++) {
    for (let k = 0; k <= round; k++) w.write(data(n++, sizes[(n + round) % sizes.length]));
    if (round % 3 === 2) {
      while (s.inFlight > 0) {
        s.release();
        await tick();
      }
    }
  }
  while (s.inFlight > 0 || w.backlog > 0) {
    s.release();
    await tick();
  }
  expect(decoded(s.chunks)).toEqual(Array.from({ length: n }, (_, i) => i));
  expect(w.backlog).toBe(0);
});

test("a stalled stack makes the writer ask its caller to wait past the high-water mark", async () => {
  const s = new SlowStream();
  const w = new FrameWriter(s, codec);
  let waits: Promise<void> | undefined;
  let n = 0;
  for (; n < 1000 && !waits; n++) waits = w.write(data(n, 1024));
  expect(waits).toBeDefined(); // bounded: not every frame is accepted without a wait
  expect(n).toBeGreaterThan(250); // but a window's worth is (256 KiB, STREAM_WINDOW)
  expect(n).toBeLessThan(260);
  let done = false;
  waits!.then(() => (done = true));
  await tick();
  expect(done).toBe(false);
  s.release(); // the first frame's write
  await tick();
  expect(done).toBe(false); // the batch holding the waiting frame is being written now
  s.release();
  await tick();
  expect(done).toBe(true);
  expect(decoded(s.chunks)).toEqual(Array.from({ length: n }, (_, i) => i));
});

test("a large payload goes by reference, not copied, and is waited for until taken", async () => {
  const s = new SlowStream();
  const w = new FrameWriter(s, codec);
  w.write(data(0)); // keeps the stack busy
  const big = new Uint8Array(64 * 1024).fill(9);
  new DataView(big.buffer).setUint32(0, 1);
  const p = w.write({ type: FrameType.DATA, flags: FrameFlag.RAW, payload: big });
  expect(p).toBeDefined();
  let taken = false;
  p!.then(() => (taken = true));
  w.write(data(2));
  s.release();
  await tick();
  s.release(); // the big frame's header
  await tick();
  expect(taken).toBe(false);
  expect(s.handed).toContain(big); // the caller's own buffer, handed to the stack as is
  s.release(); // the payload
  await tick();
  expect(taken).toBe(true);
  s.release();
  await tick();
  expect(decoded(s.chunks)).toEqual([0, 1, 2]);
});

test("a failed write fails the frames waiting on it and every later write", async () => {
  const s = new SlowStream();
  const w = new FrameWriter(s, codec);
  w.write(data(0));
  const waiting = w.write(data(1), true)!;
  const err = new Error("stream reset");
  s.failNext(err);
  await expect(waiting).rejects.toBe(err);
  await expect(w.write(data(2))!).rejects.toBe(err);
  await w.idle(); // settles, never rejects
});

test("a frame the codec refuses rejects without disturbing the others", async () => {
  const s = new SlowStream();
  const w = new FrameWriter(s, createFrameCodec({ limits: { maxFrameSize: 1024 } }));
  w.write(data(0));
  await expect(w.write(data(1, 2000))!).rejects.toThrow();
  w.write(data(2));
  s.release();
  await tick();
  s.release();
  await tick();
  expect(decoded(s.chunks)).toEqual([0, 2]);
});

test("a stack that takes bytes synchronously gets a turn's small frames as one write at its end, and a packet's worth at once", async () => {
  const took: Uint8Array[] = [];
  let refuse = false;
  const s: SendStream = {
    writeSync(chunk) {
      if (refuse) return false;
      took.push(chunk.slice()); // the stack copies
      return true;
    },
    write(chunk) {
      took.push(chunk.slice());
      return Promise.resolve();
    },
    end: () => Promise.resolve(),
    reset() {},
  };
  const w = new FrameWriter(s, codec);
  // Small frames below SYNC_WRITE_AT together: batched until the end of this event-loop turn.
  const small = Math.floor(SYNC_WRITE_AT / 64) - 2; // their backlog stays under SYNC_WRITE_AT
  for (let i = 0; i < small; i++) expect(w.write(data(i, 60))).toBeUndefined();
  expect(took.length).toBe(0);
  expect(w.backlog).toBeGreaterThan(0);
  expect(w.backlog).toBeLessThan(SYNC_WRITE_AT);
  await new Promise((r) => setImmediate(r));
  expect(took.length).toBe(1); // those frames, one native write
  expect(w.backlog).toBe(0);
  // A frame that makes a packet's worth goes at once, within write(), with what is queued before it.
  expect(w.write(data(small, 60))).toBeUndefined();
  expect(took.length).toBe(1);
  expect(w.write(data(small + 1, 1024))).toBeUndefined();
  expect(took.length).toBe(2);
  expect(w.backlog).toBe(0);
  for (let i = small + 2; i < small + 6; i++) expect(w.write(data(i, 1024))).toBeUndefined();
  expect(took.length).toBe(6); // one write each, none left for the end of the turn
  await new Promise((r) => setImmediate(r));
  expect(took.length).toBe(6);
  refuse = true; // full: the writer falls back to the waiting write
  const big = data(small + 6, 8192);
  const p = w.write(big);
  expect(p).toBeDefined();
  await p;
  // A copied batch the stack refuses goes by the waiting write too, and frames queued behind it
  // while it waits follow it in order.
  const copied = w.write(data(small + 7, 2048), true);
  expect(copied).toBeDefined();
  refuse = false;
  expect(w.write(data(small + 8, 60))).toBeUndefined();
  await copied;
  await new Promise((r) => setImmediate(r));
  expect(w.backlog).toBe(0);
  expect(decoded(took)).toEqual(Array.from({ length: small + 9 }, (_, i) => i));
});
