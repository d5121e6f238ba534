// The process-wide playout timer (src/stream/_playout.ts): every wake-up is called once, never
// before its time and soon after it, whether it is alone (polled last millisecond) or one of
// thousands (plain timers); re-arming replaces the earlier time, cancelling means never, a
// callback may re-arm itself, and a time already past fires at once, also when armed from
// inside another wake-up's callback.

import { expect, test } from "bun:test";
import { Wakeup } from "../../src/stream/_playout.ts";
import { seededRandom } from "../../src/testing/random.ts";

/** A wake-up that records when it was called (`performance.now()`). */
function recorder(): { w: Wakeup; calls: number[] } {
  const calls: number[] = [];
  const w = new Wakeup(() => calls.push(performance.now()));
  return { w, calls };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("one wake-up is called once, at its time (the last millisecond polled)", async () => {
  const { w, calls } = recorder();
  const at = performance.now() + 30;
  w.at(at);
  await sleep(80);
  expect(calls.length).toBe(1);
  expect(calls[0]).toBeGreaterThanOrEqual(at);
  expect(calls[0] - at).toBeLessThan(15); // loose: a loaded machine delays timers
});

test("2,000 wake-ups at random times over 300 ms: each called once, none early, in time order within a millisecond", async () => {
  const rnd = seededRandom(5);
  const t0 = performance.now();
  const order: { at: number; called: number }[] = [];
  const ws = Array.from({ length: 2000 }, () => {
    const at = t0 + 5 + rnd() * 300;
    const rec = { at, called: -1 };
    const w = new Wakeup(() => {
      expect(rec.called).toBe(-1);
      rec.called = performance.now();
      order.push(rec);
    });
    w.at(at);
    return rec;
  });
  await sleep(400);
  for (const r of ws) {
    expect(r.called).toBeGreaterThanOrEqual(r.at);
    expect(r.called - r.at).toBeLessThan(50);
  }
  expect(order.length).toBe(2000);
  // Called in order of their times, except within one bucket (a millisecond).
  for (let i = 1; i < order.length; i++) expect(order[i].at).toBeGreaterThan(order[i - 1].at - 1);
});

test("re-arming replaces the earlier time, earlier or later; cancelling means never", async () => {
  const a = recorder();
  const b = recorder();
  const c = recorder();
  const now = performance.now();
  a.w.at(now + 10);
  a.w.at(now + 40); // later: nothing at 10
  b.w.at(now + 60);
  b.w.at(now + 20); // earlier: nothing at 60
  c.w.at(now + 15);
  c.w.cancel();
  await sleep(100);
  expect(a.calls.length).toBe(1);
  expect(a.calls[0]).toBeGreaterThanOrEqual(now + 40);
  expect(b.calls.length).toBe(1);
  expect(b.calls[0]).toBeGreaterThanOrEqual(now + 20);
  expect(b.calls[0]).toBeLessThan(now + 60);
  expect(c.calls.length).toBe(0);
});

test("a callback re-arming itself every 3 ms runs 30 times, each at or after its time; a past time fires at once", async () => {
  const times: number[] = [];
  let due = performance.now() + 3;
  const dues: number[] = [];
  const w: Wakeup = new Wakeup(() => {
    times.push(performance.now());
    dues.push(due);
    if (times.length < 30) w.at((due += 3));
  });
  w.at(due);
  await sleep(250);
  expect(times.length).toBe(30);
  for (let i = 0; i < 30; i++) expect(times[i]).toBeGreaterThanOrEqual(dues[i]);
  const past = recorder();
  past.w.at(performance.now() - 500);
  await sleep(20);
  expect(past.calls.length).toBe(1);
});

test("a wake-up armed from inside another's callback for a time already past is called in the same pass", async () => {
  const second = recorder();
  const first = new Wakeup(() => second.w.at(performance.now() - 1));
  first.at(performance.now() + 5);
  await sleep(40);
  expect(second.calls.length).toBe(1);
});

test("beyond the wheel's 2,048 ms: called at its time, never early; cancelled never; re-armed nearer, called then", async () => {
  const far = recorder();
  const cancelled = recorder();
  const nearer = recorder();
  const t0 = performance.now();
  far.w.at(t0 + 2300);
  cancelled.w.at(t0 + 2200);
  nearer.w.at(t0 + 5000);
  await sleep(10);
  cancelled.w.cancel();
  nearer.w.at(t0 + 40); // from the far list back into the wheel
  await sleep(100);
  expect(nearer.calls.length).toBe(1);
  expect(nearer.calls[0]).toBeGreaterThanOrEqual(t0 + 40);
  expect(far.calls.length).toBe(0);
  await sleep(2400);
  expect(far.calls.length).toBe(1);
  expect(far.calls[0]).toBeGreaterThanOrEqual(t0 + 2300);
  expect(far.calls[0] - (t0 + 2300)).toBeLessThan(50);
  expect(cancelled.calls.length).toBe(0);
}, 10_000);

test("10,000 wake-ups each re-arming itself every 7 ms for 300 ms: none early, none lost, none twice", async () => {
  const n = 10_000, period = 7, rounds = 40;
  const t0 = performance.now() + 5;
  let early = 0;
  const counts = new Array(n).fill(0);
  const ws: Wakeup[] = [];
  for (let i = 0; i < n; i++) {
    let due = t0 + (i % period);
    const w = new Wakeup(() => {
      if (performance.now() < due) early++;
      if (++counts[i] < rounds) w.at((due += period));
    });
    ws.push(w);
    w.at(due);
  }
  await sleep(rounds * period + 400);
  expect(early).toBe(0);
  expect(counts.filter((c) => c !== rounds).length).toBe(0);
}, 10_000);

test("a NaN time means at once, not never", async () => {
  const r = recorder();
  r.w.at(NaN);
  await sleep(20);
  expect(r.calls.length).toBe(1);
});
