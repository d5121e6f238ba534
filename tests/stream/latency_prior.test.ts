// A connection's transit estimate (src/stream/latency_prior.ts): the frugal 0.99 quantile
// settles where it should, follows a rise at once and a fall steadily, is not used before 100
// samples or after 30 s without one; and a receiver created on a connection that knows its path
// starts its jitter buffer from it instead of the fixed 80 ms, while feeding it.

import { expect, test } from "bun:test";
import type { SyncedClock } from "../../src/clock/sync.ts";
import { systemClock } from "../../src/clock/sync.ts";
import { LatencyPrior } from "../../src/stream/latency_prior.ts";
import { TimeSyncReceiver } from "../../src/stream/time_sync.ts";
import { seededRandom } from "../../src/testing/random.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { streamHandler } from "../../src/rpc/definitions.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { waitFor } from "../support/wait.ts";

test("settles at the 0.99 quantile of U(10, 30) ms (29.8), follows a rise at once and a fall steadily", () => {
  const rnd = seededRandom(3);
  const p = new LatencyPrior();
  expect(p.quantileMs).toBeNaN();
  let t = 0;
  for (let i = 0; i < 20_000; i++) p.observe(10 + 20 * rnd(), (t += 1));
  expect(p.quantileMs).toBeGreaterThan(28.5);
  expect(p.quantileMs).toBeLessThan(31);
  expect(p.initialLatencyMs(t)).toBeCloseTo(p.quantileMs + 2, 9);
  // The path slows to U(50, 80): above its 79.7 within a few hundred samples.
  let n = 0;
  while (p.quantileMs < 78 && n < 100_000) p.observe(50 + 30 * rnd(), (t += 1)), n++;
  expect(n).toBeLessThan(400);
  // Back to U(10, 30): down by about 0.5 ms per hundred samples, so within 12,000.
  n = 0;
  while (p.quantileMs > 31 && n < 100_000) p.observe(10 + 20 * rnd(), (t += 1)), n++;
  expect(n).toBeGreaterThan(5_000);
  expect(n).toBeLessThan(12_000);
});

test("a slow path: steps of 1% of the estimate settle within 2% and follow a start-up burst back down in seconds", () => {
  const rnd = seededRandom(5);
  const p = new LatencyPrior();
  let t = 0;
  // 10,000 streams at 1 fps on a saturated receiver: transit U(100, 600) ms, 0.99 quantile 595.
  for (let i = 0; i < 50_000; i++) p.observe(100 + 500 * rnd(), (t += 0.1));
  expect(Math.abs(p.quantileMs - 595) / 595).toBeLessThan(0.02);
  // A burst of 1,000-1,500 ms (streams opening): followed up within a few hundred samples...
  let n = 0;
  while (p.quantileMs < 1400 && n < 100_000) p.observe(1000 + 500 * rnd(), (t += 0.1)), n++;
  expect(n).toBeLessThan(500);
  // ...and back under 620 ms within 20,000 samples (2 s at 10,000 frames/s; fixed 0.5 ms steps
  // take about 150,000).
  n = 0;
  while (p.quantileMs > 620 && n < 200_000) p.observe(100 + 500 * rnd(), (t += 0.1)), n++;
  expect(n).toBeLessThan(20_000);
});

test("not used before 100 samples, nor once 30 s passed without one; bad samples are ignored", () => {
  const p = new LatencyPrior();
  for (let i = 0; i < 99; i++) p.observe(12, i);
  expect(p.initialLatencyMs(99)).toBeUndefined();
  p.observe(NaN, 100);
  p.observe(Infinity, 100);
  expect(p.samples).toBe(99);
  p.observe(12, 100);
  expect(p.initialLatencyMs(100)).toBe(14);
  expect(p.initialLatencyMs(100 + 30_000)).toBe(14);
  expect(p.initialLatencyMs(100 + 30_001)).toBeUndefined();
  // A negative transit (the clock model a little off) never gives a negative latency.
  const q = new LatencyPrior();
  for (let i = 0; i < 200; i++) q.observe(-5, i);
  expect(q.initialLatencyMs(200)).toBe(0);
});

/** A clock model that is always synced, with the other side `offset` ms ahead. */
function fakeClock(offset: number): SyncedClock {
  return { local: systemClock, synced: true, ready: Promise.resolve(), offsetAt: () => offset } as unknown as SyncedClock;
}

test("a receiver on a connection that knows its path starts from it; without, from 80 ms", () => {
  const clock = fakeClock(500);
  const prior = new LatencyPrior();
  // The first stream sees frames 5 ms in transit: it feeds the prior.
  const first = new TimeSyncReceiver(clock, {}, true, prior);
  const now = systemClock();
  for (let i = 0; i < 150; i++) first.push(i, now + 500 - 5 - (150 - i) * 20, new Uint8Array(1), now - (150 - i) * 20);
  expect(prior.samples).toBe(150);
  expect(prior.quantileMs).toBeGreaterThan(4);
  expect(prior.quantileMs).toBeLessThan(6);
  // A second stream on the same connection: its buffer starts at about 5 + 2 ms, not 80.
  const second = new TimeSyncReceiver(clock, {}, true, prior);
  second.push(0, systemClock() + 500 - 5, new Uint8Array(1), systemClock());
  expect(second.stats(0).latencyMs).toBeGreaterThan(5);
  expect(second.stats(0).latencyMs).toBeLessThan(9);
  // Without a prior (or with a fixed latency) nothing changes.
  const alone = new TimeSyncReceiver(clock, {}, true);
  alone.push(0, systemClock() + 500 - 5, new Uint8Array(1), systemClock());
  expect(alone.stats(0).latencyMs).toBe(80);
  const fixed = new TimeSyncReceiver(clock, { latencyMs: 40 }, true, prior);
  fixed.push(0, systemClock() + 500 - 5, new Uint8Array(1), systemClock());
  expect(fixed.stats(0).latencyMs).toBe(40);
  for (const rx of [first, second, alone, fixed]) rx.free();
});

test("a stream opened before the connection knew its path takes the estimate up while it is young (under 50 frames)", () => {
  const clock = fakeClock(500);
  const prior = new LatencyPrior();
  const t0 = systemClock();
  // Opened together at the start: the prior has no samples yet, so this stream starts at 80 ms.
  const young = new TimeSyncReceiver(clock, {}, true, prior);
  young.push(0, t0 + 500 - 5, new Uint8Array(1), t0);
  expect(young.stats(0).latencyMs).toBe(80);
  // The connection's other streams then see 300 ms of transit (10,000 streams at 1 fps on a
  // saturated receiver): its own frames, 5 ms in transit, are too few to know better.
  for (let i = 0; i < 1000; i++) prior.observe(300, t0 + i);
  expect(prior.quantileMs).toBeGreaterThanOrEqual(300);
  expect(prior.quantileMs).toBeLessThan(305);
  young.push(1, t0 + 500 - 5 + 20, new Uint8Array(1), t0 + 20);
  expect(young.stats(0).latencyMs).toBeGreaterThanOrEqual(300);
  // Opened early but silent until the estimate was known: its first frame starts from it.
  const later = new LatencyPrior();
  const opened = new TimeSyncReceiver(clock, {}, true, later);
  for (let i = 0; i < 300; i++) later.observe(300, t0 + i);
  opened.push(0, t0 + 500 - 5, new Uint8Array(1), t0 + 300);
  expect(opened.stats(0).latencyMs).toBeGreaterThanOrEqual(300);
  // Past 50 frames of its own, its own frames govern (the estimate no longer holds it up).
  for (let i = 2; i < 60; i++) young.push(i, t0 + 500 - 5 + 20 * i, new Uint8Array(1), t0 + 20 * i);
  expect(young.stats(0).targetLatencyMs).toBeLessThan(20);
  // A fixed latency never follows it.
  const fixed = new TimeSyncReceiver(clock, { latencyMs: 40 }, true, prior);
  fixed.push(0, t0 + 500 - 5, new Uint8Array(1), t0);
  expect(fixed.stats(0).latencyMs).toBe(40);
  for (const rx of [young, opened, fixed]) rx.free();
});

test("over QUIC: the second time-synced stream of a connection starts from what the first saw", async () => {
  // D after each stream's 10th frame, by stream name (before 50 frames D is the initial latency).
  const early = new Map<string, number>();
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {})
    .streamHandler(streamHandler("rt", async (ctx, s: EchoStream) => {
      let n = 0;
      for (let f = await s.recvAligned(); f; f = await s.recvAligned()) {
        if (++n === 10) early.set(ctx.metadata.name, s.stats().latencyMs);
      }
    }))
    .build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, clockSync: { intervalMs: 100 } });
  try {
    const serverClock = [...server.peers][0].clock;
    await waitFor(() => client.clock.stats().samples >= 10 && serverClock.stats().samples >= 8, "clock samples on both sides", { timeoutMs: 8000 });
    for (const [name, frames] of [["first", 150], ["second", 12]] as const) {
      const s = await client.createStream("rt").withMetadata({ name }).withTimeSync().build();
      for (let i = 0; i < frames; i++) {
        await s.send(new Uint8Array(8));
        await new Promise((r) => setTimeout(r, 2));
      }
      await s.end();
      await waitFor(() => early.has(name), `${name}: 10 frames released`, { timeoutMs: 5000 });
    }
    // The first starts from the fixed guess; the second from the loopback's transit (~1 ms) + 2.
    expect(early.get("first")).toBe(80);
    expect(early.get("second")!).toBeLessThan(30);
  } finally {
    await client.close();
    await server.close();
  }
}, 20_000);
