// The receiving half of a time-synced stream on its own (no connection): the per-frame release
// path arms one wake-up per stream and leaves it alone while later frames queue behind it, so
// these check that a frame due earlier than the pending wake-up is still released at its time,
// that every frame comes out in order and never early on the system clock and on a custom one,
// and that the jitter buffer's slot-based pop (`popSlots`) agrees with `pop`, also after the WASM
// memory grew under it.

import { expect, test } from "bun:test";
import type { SyncedClock } from "../../src/clock/sync.ts";
import { systemClock } from "../../src/clock/sync.ts";
import { createJitterBuffer, type JitterFrame, popSlots } from "../../src/stream/jitter.ts";
import { type AlignedFrame, TimeSyncReceiver } from "../../src/stream/time_sync.ts";

/** A clock model that is always synced, with the other side `offset` ms ahead. */
function fakeClock(local: () => number, offset = 0): SyncedClock {
  return { local, synced: true, ready: Promise.resolve(), offsetAt: () => offset } as unknown as SyncedClock;
}

/** A clock model that has no sample until `sync()` is called. */
function unsyncedClock(): { clock: SyncedClock; sync(): void } {
  let synced = false;
  let ready!: () => void;
  const clock = {
    local: systemClock,
    get synced() {
      return synced;
    },
    ready: new Promise<void>((r) => (ready = r)),
    offsetAt: () => (synced ? 0 : NaN),
  } as unknown as SyncedClock;
  return {
    clock,
    sync() {
      synced = true;
      ready();
    },
  };
}

async function take(rx: TimeSyncReceiver, clock: () => number, n: number): Promise<{ f: AlignedFrame; at: number }[]> {
  const out: { f: AlignedFrame; at: number }[] = [];
  for (let i = 0; i < n; i++) {
    const f = await rx.recv();
    if (!f) break;
    out.push({ f, at: clock() });
  }
  return out;
}

for (
  const [name, local] of [
    ["system clock", systemClock],
    ["custom clock", () => systemClock() + 5_000_000],
  ] as const
) {
  test(`${name}: a frame due before the pending wake-up is released at its own time, not with the later one`, async () => {
    const clock = fakeClock(local, 1234);
    const rx = new TimeSyncReceiver(clock, { latencyMs: 30 }, true);
    const t = local() + 1234; // the sender's clock
    // seq 1 first (due in ~1.5 s: its wake-up is armed), then seq 0, due in ~30 ms.
    rx.push(1, t + 1500, new Uint8Array([1]), local());
    rx.push(0, t, new Uint8Array([0]), local());
    const [a] = await take(rx, local, 1);
    expect(a.f.seq).toBe(0);
    expect(a.at).toBeGreaterThanOrEqual(a.f.alignedTime); // never early
    // Released long before seq 1 was due: the earlier wake-up replaced the later one.
    expect(a.at).toBeLessThan(a.f.alignedTime + 1000);
    rx.free();
  });

  test(`${name}: frames queued behind the first are all released in order and never early`, async () => {
    const clock = fakeClock(local, -250);
    const rx = new TimeSyncReceiver(clock, { latencyMs: 20 }, true);
    const t = local() - 250;
    for (let i = 0; i < 20; i++) rx.push(i, t + 2 * i, new Uint8Array([i]), local());
    rx.end();
    const got = await take(rx, local, 100);
    expect(got.map((g) => g.f.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const g of got) {
      expect(g.at).toBeGreaterThanOrEqual(g.f.alignedTime);
      expect(g.f.data[0]).toBe(g.f.seq);
      expect(g.f.timestamp).toBe(t + 2 * g.f.seq);
    }
    expect(await rx.recv()).toBeUndefined();
    expect(rx.stats(0).delivered).toBe(20);
  });
}

test("late frames under latePolicy deliver keep their flags through the slot-based release", async () => {
  const rx = new TimeSyncReceiver(fakeClock(systemClock), { latencyMs: 10, latePolicy: "deliver" }, true);
  const now = systemClock();
  rx.push(0, now - 100, new Uint8Array([7]), now); // due 90 ms ago
  const f = await rx.recv();
  expect(f?.seq).toBe(0);
  expect(f?.late).toBe(true);
  expect(f?.lateByMs).toBeCloseTo(90, 0);
  expect(f?.data[0]).toBe(7);
  rx.free();
});

for (const impl of ["wasm", "ts"] as const) {
  test(`${impl}: popSlots returns what pop returns, also after the WASM memory grew`, () => {
    const trace = (popper: (jb: ReturnType<typeof createJitterBuffer>, now: number) => JitterFrame | undefined) => {
      const jb = createJitterBuffer({ impl, maxLatencyMs: 300, maxFrames: 8 });
      const out: JitterFrame[] = [];
      for (let i = 0; i < 400; i++) {
        const seq = i % 7 === 3 ? i + 1 : i % 7 === 4 ? i - 1 : i; // some reordering
        if (i % 11 !== 5) jb.push(seq, 1000 + 20 * seq, 0, 1010 + 20 * i + (i % 5) * 3);
        if (i === 200) {
          // Many buffers at once: the shared WASM memory grows (its old buffer is detached).
          const many = Array.from({ length: 600 }, () => createJitterBuffer({ impl, maxLatencyMs: 5000 }));
          for (const [k, b] of many.entries()) b.push(0, 1, 0, 2 + k);
          for (const b of many) b.free();
        }
        for (let f = popper(jb, 1000 + 20 * i); f; f = popper(jb, 1000 + 20 * i)) out.push(f);
      }
      for (let f = popper(jb, Infinity); f; f = popper(jb, Infinity)) out.push(f);
      jb.free();
      return out;
    };
    const viaPop = trace((jb, now) => jb.pop(now));
    const viaSlots = trace((jb, now) => {
      const s = popSlots(jb, now);
      return s && { seq: s[0], ts: s[1], alignedTime: s[2], deliver: s[3] === 1, late: s[4] === 1, lateByMs: s[5] };
    });
    expect(viaPop.length).toBeGreaterThan(300);
    expect(viaSlots).toEqual(viaPop);
  });
}

test("every released frame carries the local time it arrived (arrivedAt): queued, handed over directly, late, and held for sync", async () => {
  const rx = new TimeSyncReceiver(fakeClock(systemClock), { latencyMs: 15, latePolicy: "deliver" }, true);
  const now = systemClock();
  const direct = rx.recv(); // waiting: the release hands this one over directly
  rx.push(0, now, new Uint8Array([0]), now - 3.25);
  rx.push(1, now + 1, new Uint8Array([1]), now - 1.5);
  rx.push(2, now - 100, new Uint8Array([2]), now + 0.75); // due long ago: delivered late at once
  const got = [await direct, await rx.recv(), await rx.recv()];
  const bySeq = new Map(got.map((f) => [f!.seq, f!]));
  expect(bySeq.get(0)?.arrivedAt).toBe(now - 3.25);
  expect(bySeq.get(1)?.arrivedAt).toBe(now - 1.5);
  expect(bySeq.get(2)?.arrivedAt).toBe(now + 0.75);
  expect(bySeq.get(2)?.late).toBe(true);
  rx.free();

  const u = unsyncedClock();
  const held = new TimeSyncReceiver(u.clock, { latencyMs: 10 }, true);
  const t = systemClock();
  held.push(0, t, new Uint8Array([5]), t - 2.5); // held: no model yet
  u.sync();
  const h = await held.recv();
  expect(h?.arrivedAt).toBe(t - 2.5);
  held.free();
});

test("recv waiting on a live stream: two callers get frames in call order; end then resolves undefined", async () => {
  const rx = new TimeSyncReceiver(fakeClock(systemClock), { latencyMs: 5 }, true);
  const a = rx.recv(); // waits for the next release
  const b = rx.recv(); // a second caller, queued behind it
  const now = systemClock();
  rx.push(0, now, new Uint8Array([0]), now);
  rx.push(1, now + 1, new Uint8Array([1]), now);
  expect((await a)?.seq).toBe(0);
  expect((await b)?.seq).toBe(1);
  const c = rx.recv();
  rx.end();
  expect(await c).toBeUndefined();
  expect(await rx.recv()).toBeUndefined();
});

test("recv waiting on a live stream: a failure still releases what was buffered, then rejects", async () => {
  const rx = new TimeSyncReceiver(fakeClock(systemClock), { latencyMs: 20 }, true);
  const now = systemClock();
  const first = rx.recv();
  rx.push(0, now, new Uint8Array([9]), now);
  const { RpcError, ErrorCode } = await import("../../src/protocol/rpc_error.ts");
  rx.fail(new RpcError(ErrorCode.UNAVAILABLE, "gone"));
  const f = await first;
  expect(f?.seq).toBe(0);
  expect(systemClock()).toBeGreaterThanOrEqual(f!.alignedTime);
  await expect(rx.recv()).rejects.toThrow("gone");
});

test("recv waiting on a live stream resolves undefined when the receiver is freed", async () => {
  const rx = new TimeSyncReceiver(fakeClock(systemClock), {}, true);
  const p = rx.recv();
  rx.free();
  expect(await p).toBeUndefined();
});

test("recv before the clock has a model waits for it, then releases what was held", async () => {
  const u = unsyncedClock();
  const rx = new TimeSyncReceiver(u.clock, { latencyMs: 10 }, true);
  const p = rx.recv();
  const now = systemClock();
  rx.push(0, now, new Uint8Array([3]), now); // held: no model yet
  expect(rx.stats(0).heldForSync).toBe(1);
  u.sync();
  const f = await p;
  expect(f?.seq).toBe(0);
  expect(f?.data[0]).toBe(3);
  rx.free();
});

// forEach (EchoStream.forEachAligned): the release hands each frame to a callback.

test("forEach: frames released before it and after, in order and never early; the end resolves it", async () => {
  const rx = new TimeSyncReceiver(fakeClock(systemClock), { latencyMs: 5 }, true);
  const now = systemClock();
  rx.push(0, now - 50, new Uint8Array([0]), now - 50); // due already
  rx.push(1, now - 40, new Uint8Array([1]), now - 40);
  await new Promise((r) => setTimeout(r, 5)); // released into the queue before forEach
  const got: { seq: number; at: number; aligned: number }[] = [];
  let inCall = true;
  const done = rx.forEach((f) => {
    expect(inCall).toBe(false); // never called from inside forEach()
    got.push({ seq: f.seq, at: systemClock(), aligned: f.alignedTime });
  });
  inCall = false;
  for (let i = 2; i < 12; i++) rx.push(i, systemClock() + (i - 2), new Uint8Array([i]), systemClock());
  rx.end();
  await done;
  expect(got.map((g) => g.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  for (const g of got) expect(g.at).toBeGreaterThanOrEqual(g.aligned);
  // Over: the receiver was freed, and recv says so.
  expect(await rx.recv()).toBeUndefined();
});

test("forEach: a failure rejects it after the frames buffered before it; what the callback throws rejects it and the rest stays for recv", async () => {
  const { RpcError, ErrorCode } = await import("../../src/protocol/rpc_error.ts");
  const rx = new TimeSyncReceiver(fakeClock(systemClock), { latencyMs: 20 }, true);
  const seen: number[] = [];
  const done = rx.forEach((f) => void seen.push(f.seq));
  const now = systemClock();
  rx.push(0, now, new Uint8Array([0]), now);
  rx.fail(new RpcError(ErrorCode.UNAVAILABLE, "gone"));
  await expect(done).rejects.toThrow("gone");
  expect(seen).toEqual([0]);

  const ry = new TimeSyncReceiver(fakeClock(systemClock), { latencyMs: 5 }, true);
  const t = systemClock();
  for (let i = 0; i < 4; i++) ry.push(i, t + i * 10, new Uint8Array([i]), t);
  const boom = new Error("consumer bug");
  const thrown = ry.forEach((f) => {
    if (f.seq === 1) throw boom;
  });
  await expect(thrown).rejects.toBe(boom);
  expect((await ry.recv())?.seq).toBe(2); // the frames after it, for recv
  expect((await ry.recv())?.seq).toBe(3);
  ry.free();
});

test("forEach: one reader at a time, and not without clock sync", async () => {
  const rx = new TimeSyncReceiver(fakeClock(systemClock), {}, true);
  const waiting = rx.recv();
  await expect(rx.forEach(() => {})).rejects.toThrow(/already being read/);
  rx.free();
  expect(await waiting).toBeUndefined();
  const ry = new TimeSyncReceiver(fakeClock(systemClock), {}, true);
  const each = ry.forEach(() => {});
  await expect(ry.recv()).rejects.toThrow(/read by forEachAligned/);
  await expect(ry.forEach(() => {})).rejects.toThrow(/already being read/);
  ry.end();
  await each;
  const off = new TimeSyncReceiver(fakeClock(systemClock), {}, false);
  await expect(off.forEach(() => {})).rejects.toThrow(/clock sync/);
  off.free();
});

test("forEach before the clock has a model: it waits for it, then hands over what was held; without one in syncTimeoutMs it rejects UNAVAILABLE", async () => {
  const u = unsyncedClock();
  const rx = new TimeSyncReceiver(u.clock, { latencyMs: 10 }, true);
  const seen: number[] = [];
  const done = rx.forEach((f) => void seen.push(f.data[0]));
  const now = systemClock();
  rx.push(0, now, new Uint8Array([3]), now); // held: no model yet
  u.sync();
  await new Promise((r) => setTimeout(r, 40));
  expect(seen).toEqual([3]);
  rx.end();
  await done;

  const never = unsyncedClock();
  const ry = new TimeSyncReceiver(never.clock, { syncTimeoutMs: 30 }, true);
  const t0 = performance.now();
  await expect(ry.forEach(() => {})).rejects.toThrow(/no clock sync with the peer within 30 ms/);
  expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
  ry.free();
});

test("a receiver makes its jitter buffer at its first frame: a side that only sends holds none; stats() before the first frame reports the initial latency", async () => {
  const { jitterCore } = await import("../../wasm/mod.ts");
  const core = jitterCore();
  const base = core.live();
  const clock = fakeClock(systemClock);
  const rxs = Array.from({ length: 50 }, () => new TimeSyncReceiver(clock, { latencyMs: 30 }, true));
  expect(core.live()).toBe(base); // fifty receivers, no buffer yet
  const now = systemClock();
  rxs[0].push(0, now, new Uint8Array([1]), now + 1);
  expect(core.live()).toBe(base + 1); // the first frame made one
  expect(rxs[1].stats(0).latencyMs).toBe(30); // as a fresh buffer reports it
  expect(core.live()).toBe(base + 2);
  const got = await take(rxs[0], systemClock, 1);
  expect(got[0].f.data).toEqual(new Uint8Array([1]));
  expect(got[0].at).toBeGreaterThanOrEqual(got[0].f.alignedTime);
  for (const rx of rxs) rx.free();
  expect(core.live()).toBe(base); // every buffer made was freed
  expect(rxs[2].stats(0).latencyMs).toBe(30); // a receiver freed before its first frame still reports
  expect(() => new TimeSyncReceiver(clock, { maxFrames: 10.5 }, true)).toThrow(RangeError); // options still checked at once
});
