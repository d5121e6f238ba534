// Jitter buffer: the WASM core and the plain-TS reference give bit-identical results (every
// push result, popped frame, nextDue and statistic compared with Object.is) on seeded traces:
// 50 fps, uniform or normal delays, loss, duplicates, reordering, a sender timestamp jump, seqs
// crossing 2^32, resets, small buffers (overflow), both late policies and both latency modes.

import { describe, expect, test } from "bun:test";
import { createJitterBuffer, dueAfter, type JitterBuffer, type JitterBufferOptions, popSlots } from "../../src/stream/jitter.ts";
import { seededRandom } from "../../src/testing/random.ts";

interface Arrival {
  seq: number;
  ts: number;
  offset: number;
  at: number;
}

interface TraceOptions {
  n: number;
  delay: "uniform" | "normal";
  loss: number;
  dup: number;
  reorder: number;
  jumpAt?: number;
  jumpMs?: number;
  seq0?: number;
  /** Extra delay (ms) rising linearly to this at the middle of the trace and back to 0. */
  ramp?: number;
}

const LOCAL0 = 1.7e12;

/** Frames every 20 ms; offset drifts at 100 ppm; returned in arrival order. */
function trace(seed: number, o: TraceOptions): Arrival[] {
  const rnd = seededRandom(seed);
  const normal = () => {
    const u = 1 - rnd(), v = rnd();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const out: Arrival[] = [];
  for (let i = 0; i < o.n; i++) {
    const sent = LOCAL0 + i * 20 + rnd() * 0.5;
    const offset = 3.6e6 + 1e-4 * (sent - LOCAL0) + 0.3 * (rnd() - 0.5); // the clock model's estimate
    let ts = sent + 3.6e6 + 1e-4 * (sent - LOCAL0);
    if (o.jumpAt !== undefined && i >= o.jumpAt) ts += o.jumpMs ?? 10_000;
    const seq = (o.seq0 ?? 0) + i;
    if (rnd() < o.loss) continue;
    const delay = () => o.delay === "uniform" ? 10 + 20 * rnd() : Math.max(0, 20 + 10 * normal());
    let at = sent + delay();
    if (o.ramp) at += o.ramp * (1 - Math.abs(2 * i / o.n - 1));
    if (rnd() < o.reorder) at += 15;
    out.push({ seq, ts, offset, at });
    if (rnd() < o.dup) out.push({ seq, ts, offset, at: at + rnd() * 60 });
  }
  return out.sort((a, b) => a.at - b.at);
}

/** Runs a trace, popping at every arrival and at every nextDue before the next one. */
function run(jb: JitterBuffer, xs: Arrival[], resetEvery = 0, follow = false): number[] {
  const log: number[] = [];
  const drain = (now: number) => {
    for (let f = jb.pop(now); f; f = jb.pop(now)) {
      log.push(f.seq, f.ts, f.alignedTime, +f.deliver, +f.late, f.lateByMs);
    }
    log.push(jb.nextDue());
  };
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    // A young stream's floor following its connection's estimate (time_sync.ts), every 5th frame.
    if (follow && i % 5 === 0) jb.setInitialLatency((i * 37) % 300);
    const r = jb.push(x.seq, x.ts, x.offset, x.at);
    log.push(r.length, r.charCodeAt(5) || 0);
    drain(x.at);
    const next = i + 1 < xs.length ? xs[i + 1].at : x.at + 2000;
    for (let due = jb.nextDue(); due < next; due = jb.nextDue()) {
      drain(Math.max(due, x.at) + 0.25);
    }
    if (i % 97 === 0) log.push(...Object.values(jb.stats()));
    if (resetEvery > 0 && i % resetEvery === resetEvery - 1) jb.reset();
  }
  drain(Infinity);
  log.push(...Object.values(jb.stats()));
  return log;
}

function compare(options: JitterBufferOptions, xs: Arrival[], resetEvery = 0, follow = false): { n: number; mismatch: number } {
  const w = createJitterBuffer({ ...options, impl: "wasm" });
  const t = createJitterBuffer({ ...options, impl: "ts" });
  const a = run(w, xs, resetEvery, follow);
  const b = run(t, xs, resetEvery, follow);
  w.free();
  let mismatch = a.length === b.length ? -1 : 0;
  for (let i = 0; i < Math.min(a.length, b.length) && mismatch < 0; i++) if (!Object.is(a[i], b[i])) mismatch = i;
  return { n: a.length, mismatch };
}

const cases: [string, TraceOptions, JitterBufferOptions, number?, boolean?][] = [
  ["uniform, adaptive", { n: 4000, delay: "uniform", loss: 0.02, dup: 0.05, reorder: 0.05 }, {}],
  ["normal, adaptive, deliver", { n: 4000, delay: "normal", loss: 0.02, dup: 0.05, reorder: 0.05 }, {
    latePolicy: "deliver",
  }],
  ["normal, fixed 20 ms, deliver", { n: 3000, delay: "normal", loss: 0.05, dup: 0.02, reorder: 0.1 }, {
    latencyMs: 20,
    latePolicy: "deliver",
  }],
  ["jump +10 s", { n: 3000, delay: "uniform", loss: 0.02, dup: 0.05, reorder: 0.05, jumpAt: 1500 }, {}],
  ["jump +10 s, fixed 200 ms", { n: 3000, delay: "uniform", loss: 0.02, dup: 0.05, reorder: 0.05, jumpAt: 1500 }, {
    latencyMs: 200,
  }],
  ["jump −10 s, deliver", {
    n: 3000,
    delay: "normal",
    loss: 0.02,
    dup: 0.05,
    reorder: 0.05,
    jumpAt: 1200,
    jumpMs: -10_000,
  }, { latePolicy: "deliver" }],
  ["seqs across 2^32, fixed", { n: 3000, delay: "uniform", loss: 0.1, dup: 0.1, reorder: 0.2, seq0: 2 ** 32 - 1500 }, {
    latencyMs: 45,
  }],
  ["overflow, tight bounds", { n: 3000, delay: "normal", loss: 0.02, dup: 0.05, reorder: 0.05 }, {
    maxFrames: 3,
    minLatencyMs: 5,
    maxLatencyMs: 60,
    initialLatencyMs: 200,
    marginMs: 0.5,
    quantile: 0.95,
  }],
  ["resets, wide histogram", { n: 3000, delay: "uniform", loss: 0.02, dup: 0.05, reorder: 0.05 }, {
    maxLatencyMs: 5000,
  }, 700],
  // The histogram grows (32, 64, … 1,001 buckets) as the path slows, and the cursor walks into it.
  ["a path slowing to 700 ms and back", { n: 3000, delay: "normal", loss: 0.02, dup: 0.05, reorder: 0.05, ramp: 700 }, {}],
  ["a path slowing past maxLatencyMs, quantile 1", { n: 3000, delay: "uniform", loss: 0.02, dup: 0.05, reorder: 0.05, ramp: 1300 }, {
    quantile: 1,
  }],
  ["initial latency refreshed while young, resets", { n: 3000, delay: "normal", loss: 0.02, dup: 0.05, reorder: 0.05 }, {
    maxLatencyMs: 250,
  }, 400, true],
];

describe("parity: WASM and TS give bit-identical output", () => {
  for (const [name, t, o, resetEvery, follow] of cases) {
    for (const seed of [1, 7, 2024]) {
      test(`${name}, seed ${seed}`, () => {
        const xs = trace(seed, t);
        const { n, mismatch } = compare(o, xs, resetEvery, follow);
        expect(n).toBeGreaterThan(xs.length * 5);
        expect(mismatch).toBe(-1);
      });
    }
  }

  test("the traces exercise every rule", () => {
    const jb = createJitterBuffer({ impl: "ts", latePolicy: "deliver" });
    run(jb, trace(1, { n: 3000, delay: "normal", loss: 0.02, dup: 0.05, reorder: 0.05, jumpAt: 1500 }));
    const s = jb.stats();
    for (const k of ["lost", "duplicates", "reordered", "lateDelivered", "discontinuities"] as const) {
      expect(s[k]).toBeGreaterThan(0);
    }
    const fixed = createJitterBuffer({ impl: "ts", latencyMs: 200 });
    run(fixed, trace(1, { n: 3000, delay: "uniform", loss: 0.02, dup: 0.05, reorder: 0.05, jumpAt: 1500 }));
    expect(fixed.stats().flushed).toBeGreaterThan(0);
    const tight = createJitterBuffer({ impl: "ts", latencyMs: 20, latePolicy: "deliver" });
    run(tight, trace(1, { n: 3000, delay: "normal", loss: 0.05, dup: 0.02, reorder: 0.1 }));
    expect(tight.stats().belated).toBeGreaterThan(0);
    const small = createJitterBuffer({ impl: "ts", maxFrames: 3 });
    run(small, trace(2, { n: 1000, delay: "normal", loss: 0, dup: 0, reorder: 0 }));
    expect(small.stats().overflowDrops).toBeGreaterThan(0);
  });

  test("a one-ulp difference is detected", () => {
    const xs = trace(3, { n: 500, delay: "uniform", loss: 0, dup: 0, reorder: 0 });
    const w = createJitterBuffer({ impl: "wasm" });
    const t = createJitterBuffer({ impl: "ts" });
    const a = run(w, xs);
    const b = run(t, xs.map((x, i) => i === 250 ? { ...x, at: x.at + x.at * Number.EPSILON } : x));
    w.free();
    expect(a.some((v, i) => !Object.is(v, b[i]))).toBe(true);
  });
});

describe("the due time a push or pop leaves is nextDue() at that moment", () => {
  // The release path reads it instead of calling nextDue() (issue 15: fewer WASM crossings per
  // frame), and stops popping once it is past `now`; both must match what the calls would say.
  for (const impl of ["wasm", "ts"] as const) {
    for (const [name, t, o] of [cases[1], cases[3], cases[7]]) {
      test(`${impl}: ${name}`, () => {
        const jb = createJitterBuffer({ ...o, impl });
        const other = createJitterBuffer({ ...o, impl }); // calls on it in between must not matter
        let checks = 0;
        let stoppedEarly = 0;
        for (const x of trace(11, t)) {
          jb.push(x.seq, x.ts, x.offset, x.at);
          expect(dueAfter(jb)).toBe(jb.nextDue());
          for (const now of [x.at, x.at + 25]) {
            for (;;) {
              const s = popSlots(jb, now);
              const due = dueAfter(jb);
              other.push(x.seq, x.ts, x.offset, x.at); // another buffer's call after reading
              expect(due).toBe(jb.nextDue());
              checks++;
              if (!s) break;
              if (due > now) {
                // Nothing more is due: a further pop at the same time finds nothing.
                expect(popSlots(jb, now)).toBeUndefined();
                stoppedEarly++;
                break;
              }
            }
          }
        }
        jb.free();
        other.free();
        expect(checks).toBeGreaterThan(3000);
        expect(stoppedEarly).toBeGreaterThan(500);
      });
    }
  }
});
