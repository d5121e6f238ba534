// The payload store of a time-synced receiver (src/stream/_payload_ring.ts): it behaves like the
// Map it replaced (set, take once, replace, clear) for sequence numbers near each other, far
// apart (the ring grows), colliding past its largest size (the overflow map), and near 2^32;
// and against a Map under a random mix of operations, nothing is lost or mixed up. Small payloads
// are copied in (the transport's chunk is not held for the playout delay), large ones kept; a
// ring that does not copy (the default on V8) keeps every payload as given.

import { expect, test } from "bun:test";
import { COPY_SMALL_BY_DEFAULT, PayloadRing, SLAB_MAX } from "../../src/stream/_payload_ring.ts";
import { seededRandom } from "../../src/testing/random.ts";

const bytes = (n: number) => new Uint8Array([n & 255, (n >> 8) & 255, (n >> 16) & 255]);

test("a window of nearby sequence numbers: each payload is taken once, in any order, without growing", () => {
  const r = new PayloadRing();
  for (let seq = 1000; seq < 1016; seq++) r.set(seq, bytes(seq));
  expect(r.slots).toBe(16);
  expect(r.size).toBe(16);
  for (const seq of [1003, 1000, 1015, 1007]) {
    expect(r.take(seq)).toEqual(bytes(seq));
    expect(r.take(seq)).toBeUndefined();
  }
  expect(r.take(999)).toBeUndefined();
  expect(r.take(1016)).toBeUndefined(); // same slot as 1000, never set
  expect(r.size).toBe(12);
  // A running stream: the slots are reused as the window moves on.
  for (let seq = 1016; seq < 5000; seq++) {
    r.set(seq, bytes(seq));
    const old = seq - 15;
    if (old !== 1003 && old !== 1000 && old !== 1015 && old !== 1007) expect(r.take(old)).toEqual(bytes(old));
  }
  expect(r.slots).toBe(16);
});

test("setting a sequence number again replaces its payload", () => {
  const r = new PayloadRing();
  r.set(7, bytes(1));
  r.set(7, bytes(2));
  expect(r.size).toBe(1);
  expect(r.take(7)).toEqual(bytes(2));
  expect(r.size).toBe(0);
});

test("live frames far apart grow the ring and keep every payload", () => {
  const r = new PayloadRing();
  const seqs = [5, 5 + 16, 5 + 32, 5 + 1024, 77, 77 + 2048];
  for (const s of seqs) r.set(s, bytes(s));
  expect(r.slots).toBeGreaterThan(16);
  expect(r.size).toBe(seqs.length);
  for (const s of seqs.toReversed()) expect(r.take(s)).toEqual(bytes(s));
  expect(r.size).toBe(0);
});

test("collisions past the largest ring go to the overflow map, and replacing one there leaves one copy", () => {
  const r = new PayloadRing();
  const seqs = [3, 3 + 4096, 3 + 2 * 4096, 3 + 3 * 4096];
  for (const s of seqs) r.set(s, bytes(s));
  expect(r.slots).toBe(4096);
  expect(r.size).toBe(4);
  r.set(3 + 4096, bytes(9)); // in the overflow map: replaced there
  expect(r.size).toBe(4);
  expect(r.take(3)).toEqual(bytes(3));
  r.set(3 + 2 * 4096, bytes(10)); // now fits the freed slot: moved out of the overflow map
  expect(r.size).toBe(3);
  expect(r.take(3 + 2 * 4096)).toEqual(bytes(10));
  expect(r.take(3 + 2 * 4096)).toBeUndefined();
  expect(r.take(3 + 4096)).toEqual(bytes(9));
  expect(r.take(3 + 3 * 4096)).toEqual(bytes(3 + 3 * 4096));
  expect(r.size).toBe(0);
});

test("sequence numbers near 2^32 and 2^31 index like any other", () => {
  const r = new PayloadRing();
  const seqs = [2 ** 32 - 2, 2 ** 32 - 1, 2 ** 31 - 1, 2 ** 31, 0];
  for (const s of seqs) r.set(s, bytes(s));
  for (const s of seqs) expect(r.take(s)).toEqual(bytes(s));
});

test("clear drops everything", () => {
  const r = new PayloadRing();
  for (let s = 0; s < 40; s++) r.set(s * 4096 + 1, bytes(s));
  r.clear();
  expect(r.size).toBe(0);
  expect(r.take(1)).toBeUndefined();
  expect(r.take(4097)).toBeUndefined();
});

for (const copy of [true, false]) {
  test(`against a Map, 200,000 random operations on a moving window with stragglers agree (${copy ? "copying" : "views"})`, () => {
    const rnd = seededRandom(11);
    const r = new PayloadRing(copy);
    const m = new Map<number, Uint8Array>();
    let head = 0;
    for (let i = 0; i < 200_000; i++) {
      const x = rnd();
      if (x < 0.5) {
        // new frames near the head, sometimes far ahead or behind (a gap, a straggler)
        const y = rnd();
        const seq = y < 0.02
          ? head + Math.floor(rnd() * 20_000)
          : y < 0.04
          ? Math.max(0, head - Math.floor(rnd() * 5000))
          : head + Math.floor(rnd() * 8);
        const v = bytes(i);
        r.set(seq, v);
        m.set(seq, v);
        head++;
      } else {
        const seq = Math.max(0, head - Math.floor(rnd() * 24));
        expect(r.take(seq)).toEqual(m.get(seq));
        m.delete(seq);
      }
    }
    expect(r.size).toBe(m.size);
    for (const [seq, v] of m) expect(r.take(seq)).toEqual(v);
    expect(r.size).toBe(0);
  });
}

test("each payload keeps its arrival time: read by take(), through growth and the overflow map", () => {
  const r = new PayloadRing();
  // nearby (ring), far apart (grows), colliding at the largest ring (overflow map)
  const seqs = [10, 11, 10 + 1024, 10 + 4096, 10 + 2 * 4096, 12];
  seqs.forEach((s, i) => r.set(s, bytes(s), 1000.5 + i));
  r.set(11, bytes(99), 2000.25); // replaced: the newer time
  seqs.forEach((s, i) => {
    expect(r.take(s)).toEqual(s === 11 ? bytes(99) : bytes(s));
    expect(r.arrival).toBe(s === 11 ? 2000.25 : 1000.5 + i);
  });
  expect(r.take(10)).toBeUndefined();
});

test("a small payload is copied in: the chunk it was a view of is not retained, and each take is the caller's own", () => {
  const r = new PayloadRing(true);
  const chunk = new Uint8Array(64).map((_, i) => i);
  r.set(5, chunk.subarray(8, 24)); // a frame's payload, a view into the transport's chunk
  r.set(6, chunk.subarray(24, 24)); // an empty payload
  chunk.fill(0xee); // the chunk reused or written again after the frame was held
  const p = r.take(5)!;
  expect(p).toEqual(new Uint8Array(16).map((_, i) => i + 8));
  expect(p.buffer).not.toBe(chunk.buffer);
  expect(p.byteOffset).toBe(0);
  expect(p.buffer.byteLength).toBe(16); // its own buffer, not a view of the ring's slab
  expect(r.take(6)).toEqual(new Uint8Array(0));
  // What the caller does with a taken payload does not reach the next one in the same slot.
  r.set(5 + 16, new Uint8Array([1, 2, 3]));
  p.fill(0);
  expect(r.take(5 + 16)).toEqual(new Uint8Array([1, 2, 3]));
});

test("payloads of growing size widen the slab's cells and keep what is held; large ones are kept as given", () => {
  const r = new PayloadRing(true);
  const of = (n: number, k: number) => new Uint8Array(n).map((_, i) => (i * 7 + k) & 255);
  r.set(1, of(10, 1));
  expect(r.cellBytes).toBe(64);
  r.set(2, of(100, 2));
  expect(r.cellBytes).toBe(128);
  r.set(3, of(SLAB_MAX, 3));
  expect(r.cellBytes).toBe(SLAB_MAX);
  const big = of(SLAB_MAX + 1, 4);
  r.set(4, big);
  expect(r.cellBytes).toBe(SLAB_MAX); // not copied
  r.set(1 + 16, of(5, 5)); // collides with 1: the ring grows, the slab with it
  expect(r.slots).toBe(32);
  expect(r.take(4)).toBe(big);
  expect(r.take(1)).toEqual(of(10, 1));
  expect(r.take(2)).toEqual(of(100, 2));
  expect(r.take(3)).toEqual(of(SLAB_MAX, 3));
  expect(r.take(1 + 16)).toEqual(of(5, 5));
  expect(r.size).toBe(0);
});

test("a payload in the overflow map is a copy too", () => {
  const r = new PayloadRing(true);
  const seqs = [3, 3 + 4096, 3 + 2 * 4096];
  const src = new Uint8Array([9, 9, 9]);
  for (const s of seqs) r.set(s, s === 3 + 2 * 4096 ? src : bytes(s));
  src.fill(0);
  expect(r.take(3 + 2 * 4096)).toEqual(new Uint8Array([9, 9, 9]));
});

test("a ring that does not copy keeps every payload as given; rings copy by default on Bun only", () => {
  expect(COPY_SMALL_BY_DEFAULT).toBe("Bun" in globalThis);
  const r = new PayloadRing(false);
  const chunk = new Uint8Array(64);
  const small = chunk.subarray(8, 24);
  r.set(5, small);
  r.set(5 + 16, bytes(1)); // grows the ring: views move with it
  expect(r.cellBytes).toBe(0); // no slab made
  expect(r.take(5)).toBe(small);
  expect(r.take(5 + 16)).toEqual(bytes(1));
});

test("the slab holds as many cells as payloads are held at once, not one per slot", () => {
  const r = new PayloadRing(true);
  // A low-rate stream: one frame held at a time, thousands of frames through.
  for (let seq = 0; seq < 5000; seq++) {
    r.set(seq, bytes(seq));
    expect(r.take(seq)).toEqual(bytes(seq));
  }
  expect(r.cellCount).toBe(2);
  // Forty held at once (a slow path): cells double to hold them, and every payload comes back.
  for (let seq = 5000; seq < 5040; seq++) r.set(seq, bytes(seq));
  expect(r.cellCount).toBe(64);
  expect(r.slots).toBe(64);
  for (let seq = 5000; seq < 5040; seq++) expect(r.take(seq)).toEqual(bytes(seq));
  // Replacing a held payload reuses its cell.
  r.set(7000, bytes(1));
  for (let k = 0; k < 100; k++) r.set(7000, bytes(k));
  expect(r.take(7000)).toEqual(bytes(99));
  expect(r.cellCount).toBe(64);
});
