// The payload store of a time-synced receiver (src/stream/_payload_ring.ts): it behaves like the
// Map it replaced (set, take once, replace, clear) for sequence numbers near each other, far
// apart (the ring grows), colliding past its largest size (the overflow map), and near 2^32;
// and against a Map under a random mix of operations, nothing is lost or mixed up.

import { expect, test } from "bun:test";
import { PayloadRing } from "../../src/stream/_payload_ring.ts";
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

test("against a Map, 200,000 random operations on a moving window with stragglers agree", () => {
  const rnd = seededRandom(11);
  const r = new PayloadRing();
  const m = new Map<number, Uint8Array>();
  let head = 0;
  for (let i = 0; i < 200_000; i++) {
    const x = rnd();
    if (x < 0.5) {
      // new frames near the head, sometimes far ahead or behind (a gap, a straggler)
      const y = rnd();
      const seq = y < 0.02 ? head + Math.floor(rnd() * 20_000) : y < 0.04 ? Math.max(0, head - Math.floor(rnd() * 5000)) : head + Math.floor(rnd() * 8);
      const v = bytes(i);
      r.set(seq, v);
      m.set(seq, v);
      head++;
    } else {
      const seq = Math.max(0, head - Math.floor(rnd() * 24));
      expect(r.take(seq)).toBe(m.get(seq));
      m.delete(seq);
    }
  }
  expect(r.size).toBe(m.size);
  for (const [seq, v] of m) expect(r.take(seq)).toBe(v);
  expect(r.size).toBe(0);
});

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
