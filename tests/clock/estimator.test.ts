// Clock estimator: WASM vs plain-TS parity on seeded synthetic traces, accuracy against the
// injected truth, clock-step handling, and bad input.
//
// Trace: 1,000 exchanges 1 s apart; server clock = local + 37.5 ms + 100 ppm·(t − T0), plus
// 200 ms from exchange 300 on; one-way delays U(10,30) ms each direction plus 1 ms RMS jitter
// (uniform ±√3); 2% of exchanges get 50 ms extra on one direction. At 1 s spacing the 512-sample
// window spans 512 s: the two-way offset noise here is ≈ 4.2 ms RMS, which over a 128 s window
// (512 samples at 4 Hz) would leave ≈ 4.8 ppm of skew standard error, too close to 5 ppm.

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { type ClockEstimator, createClockEstimator } from "../../src/clock/estimator.ts";
import { seededRandom } from "../../src/testing/random.ts";
import { jitterCore } from "../../wasm/mod.ts";

const T0 = 1.7e12;
const OFFSET = 37.5;
const SKEW = 100e-6;
const STEP_AT = 300;
const STEP = 200;


interface Exchange {
  t: [number, number, number, number];
  spike: boolean;
}

function trueOffset(at: number, i: number, step: boolean): number {
  return OFFSET + SKEW * (at - T0) + (step && i >= STEP_AT ? STEP : 0);
}

function trace(seed: number, opts: { n?: number; step?: boolean; spikes?: boolean } = {}): Exchange[] {
  const rnd = seededRandom(seed);
  const n = opts.n ?? 1000;
  const out: Exchange[] = [];
  for (let i = 0; i < n; i++) {
    const t1 = T0 + i * 1000 + rnd() * 10;
    const jit = () => (rnd() * 2 - 1) * Math.sqrt(3);
    let df = 10 + 20 * rnd() + jit();
    let db = 10 + 20 * rnd() + jit();
    const spike = opts.spikes !== false && rnd() < 0.02;
    if (spike) {
      if (rnd() < 0.5) df += 50;
      else db += 50;
    }
    const server = (u: number) => u + trueOffset(u, i, opts.step !== false);
    const hold = 0.05 + rnd() * 0.5;
    const t2 = server(t1 + df);
    const t3 = server(t1 + df + hold);
    out.push({ t: [t1, t2, t3, t1 + df + hold + db], spike });
  }
  return out;
}

interface Obs {
  code: string;
  offset: number;
  ahead: number;
  skew: number;
  unc: number;
  counts: number[];
}

function run(est: ClockEstimator, xs: Exchange[]): Obs[] {
  return xs.map(({ t }) => {
    const code = est.add(t[0], t[1], t[2], t[3]);
    return {
      code,
      offset: est.offset(t[3]),
      ahead: est.offset(t[3] + 500),
      skew: est.skewPpm(),
      unc: est.uncertainty(t[3]),
      counts: [
        est.samples,
        est.accepted,
        est.rejected,
        est.invalid,
        est.steps,
        est.windowSize,
        est.rttMs,
        est.minDelayMs,
        est.jitterMs,
      ],
    };
  });
}

function close(a: number, b: number): boolean {
  if (Object.is(a, b)) return true;
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

describe("parity: WASM and TS agree on every query", () => {
  for (const seed of [1, 2, 3, 42, 2024]) {
    test(`seed ${seed}`, () => {
      const xs = trace(seed);
      const w = createClockEstimator({ impl: "wasm" });
      const s = createClockEstimator({ impl: "ts" });
      const a = run(w, xs);
      const b = run(s, xs);
      let mismatches = 0;
      for (let i = 0; i < a.length; i++) {
        const x = a[i], y = b[i];
        const ok = x.code === y.code && close(x.offset, y.offset) && close(x.ahead, y.ahead) &&
          close(x.skew, y.skew) && close(x.unc, y.unc) && x.counts.every((v, k) => close(v, y.counts[k]));
        if (!ok) mismatches++;
      }
      expect(mismatches).toBe(0);
      w.free();
    });
  }
});

for (const impl of ["wasm", "ts"] as const) {
  describe(`accuracy (${impl})`, () => {
    test("offset, skew, step and coverage on the full trace", () => {
      const xs = trace(7);
      const est = createClockEstimator({ impl });
      const codes: string[] = [];
      let covered = 0, queries = 0;
      let maxErrAfterConverge = 0;
      for (let i = 0; i < xs.length; i++) {
        const [t1, t2, t3, t4] = xs[i].t;
        codes.push(est.add(t1, t2, t3, t4));
        const err = Math.abs(est.offset(t4) - trueOffset(t4, i, true));
        if (i >= 8) {
          queries++;
          if (err <= est.uncertainty(t4)) covered++;
        }
        if (i >= STEP_AT + 50) maxErrAfterConverge = Math.max(maxErrAfterConverge, err);
      }
      const last = xs[xs.length - 1].t[3];
      const endErr = Math.abs(est.offset(last) - trueOffset(last, xs.length - 1, true));
      expect(endErr).toBeLessThan(1);
      expect(Math.abs(est.skewPpm() - 100)).toBeLessThan(5);
      expect(est.steps).toBe(1);
      expect(codes.indexOf("step")).toBe(STEP_AT + 2);
      expect(codes.filter((c) => c === "step").length).toBe(1);
      expect(maxErrAfterConverge).toBeLessThan(5);
      expect(covered / queries).toBeGreaterThanOrEqual(0.95);
      expect(xs.filter((x) => x.spike).length).toBeGreaterThan(5);
      est.free();
    });

    test("spikes alone never trigger a step", () => {
      for (const seed of [11, 12, 13]) {
        const xs = trace(seed, { step: false });
        const est = createClockEstimator({ impl });
        for (const { t } of xs) est.add(t[0], t[1], t[2], t[3]);
        expect(est.steps).toBe(0);
        expect(est.rejected).toBeGreaterThan(0);
        const last = xs[xs.length - 1].t[3];
        expect(Math.abs(est.offset(last) - trueOffset(last, 0, false))).toBeLessThan(1);
        expect(Math.abs(est.skewPpm() - 100)).toBeLessThan(5);
        est.free();
      }
    });

    test("long-term skew: 100 ppm within 5 ppm after 300 s at 4 Hz through U(10,30) ms, over 20 seeds", () => {
      // The 512-sample window spans only 128 s at 4 Hz; the block history (2048 samples) must
      // carry the skew estimate beyond it. Without it the worst seed is ~11 ppm off.
      let worst = 0;
      for (let seed = 1; seed <= 20; seed++) {
        const rnd = seededRandom(1000 + seed);
        const est = createClockEstimator({ impl });
        let t = T0;
        const off = (at: number) => 37.5 + 100e-6 * (at - T0);
        for (let i = 0; i < 1200; i++) {
          const df = 10 + 20 * rnd(), db = 10 + 20 * rnd();
          const t2 = t + df + off(t + df);
          est.add(t, t2, t2 + 0.05, t + df + 0.05 + db);
          t += 250;
        }
        worst = Math.max(worst, Math.abs(est.skewPpm() - 100));
        expect(Math.abs(est.offset(t) - off(t))).toBeLessThan(1.5);
        est.free();
      }
      expect(worst).toBeLessThan(5);
    });

    test("a single 50 ms spike after convergence is rejected", () => {
      const xs = trace(5, { n: 200, step: false, spikes: false });
      const est = createClockEstimator({ impl });
      for (let i = 0; i < 100; i++) est.add(...xs[i].t);
      const [t1, t2, t3, t4] = xs[100].t;
      // 50 ms more on the way back: θ moves by −25 ms, δ by +50 ms.
      expect(est.add(t1, t2, t3, t4 + 50)).toBe("rejected");
      for (let i = 101; i < 200; i++) est.add(...xs[i].t);
      expect(est.steps).toBe(0);
      est.free();
    });

    test("bad input throws RangeError and leaves the state intact", () => {
      const xs = trace(9, { n: 50, step: false });
      const est = createClockEstimator({ impl });
      for (const { t } of xs) est.add(t[0], t[1], t[2], t[3]);
      const at = xs[49].t[3] + 100;
      const state = () => [est.offset(at), est.skewPpm(), est.uncertainty(at), est.samples, est.accepted, est.rejected, est.windowSize];
      const before = state();
      const [t1, t2, t3, t4] = xs[49].t;
      const bad: [number, number, number, number][] = [
        [NaN, t2, t3, t4 + 1000],
        [t1 + 1000, Infinity, t3, t4 + 1000],
        [t1 + 1000, t2, -Infinity, t4 + 1000],
        [t1 + 1000, t2 + 1000, t3 + 1000, t1 + 999], // t4 < t1
        [t1 + 1000, t2 + 1000, t2 + 999, t4 + 1000], // t3 < t2
        [t1 - 1000, t2 - 1000, t3 - 1000, t4 - 1000], // older than the last sample
      ];
      for (const b of bad) expect(() => est.add(...b)).toThrow(RangeError);
      expect(state()).toEqual(before);
      expect(est.invalid).toBe(bad.length);
      expect(est.add(t1 + 1000, t2 + 1000, t3 + 1000, t4 + 1000)).not.toBe("step");
      est.free();
    });

    test("empty estimator and options", () => {
      const est = createClockEstimator({ impl });
      expect(est.offset(0)).toBeNaN();
      expect(est.uncertainty(0)).toBe(Infinity);
      expect(est.skewPpm()).toBe(0);
      expect(() => createClockEstimator({ impl, precisionMs: 0 })).toThrow(RangeError);
      expect(() => createClockEstimator({ impl, precisionMs: NaN })).toThrow(RangeError);
      est.free();
    });
  });
}

test("WASM pool: grows past 64 live estimators (one per connection side), slots are reused after free", () => {
  const made: ClockEstimator[] = [];
  for (let i = 0; i < 2000; i++) made.push(createClockEstimator());
  for (const [i, e] of made.entries()) e.add(1000 + i, 1001 + i, 1001 + i, 1002 + i);
  expect(made.every((e, i) => e.offset(0) === 0 && e.samples === 1 && i >= 0)).toBe(true);
  for (const e of made) e.free();
  // Freed slots are taken again: further rounds do not grow the module's memory.
  const round = () => {
    const again: ClockEstimator[] = [];
    for (let i = 0; i < 2000; i++) again.push(createClockEstimator());
    expect(again[0].offset(0)).toBeNaN();
    for (const e of again) e.free();
    return again;
  };
  round();
  const before = jitterCore().memoryBytes();
  const last = round();
  expect(jitterCore().memoryBytes()).toBe(before);
  expect(() => last[0].add(1, 2, 3, 4)).toThrow(Error);
});

/**
 * Loopback under load (docs/REALTIME.md "Uncertainty"): PINGs leave when a timer wakes the loop,
 * PONGs while the PING is handled, so the outbound leg is slower in most exchanges. Out
 * 0.05 + k·u² ms (u uniform), back 0.05–0.13 ms, 4 Hz for 60 s; the worst error from exchange 21
 * on, whether the bound held at every query, and the bound at the end.
 */
function slowerLeg(impl: "wasm" | "ts", k: number): { worst: number; held: boolean; final: number } {
  const est = createClockEstimator({ impl });
  const rnd = seededRandom(77);
  const truth = 1234.5;
  let worst = 0;
  let held = true;
  for (let i = 0; i < 240; i++) {
    const t1 = T0 + i * 250;
    const u = rnd();
    const t2 = t1 + 0.05 + k * u * u + truth;
    const t3 = t2 + 0.01;
    const t4 = t3 - truth + 0.05 + 0.08 * rnd();
    est.add(t1, t2, t3, t4);
    if (i >= 20) {
      const at = t4 + 1;
      const err = Math.abs(est.offset(at) - truth);
      worst = Math.max(worst, err);
      if (err > est.uncertainty(at)) held = false;
    }
  }
  return { worst, held, final: est.uncertainty(T0 + 60_000) };
}

/** Exchanges recorded on a loaded loopback connection (tests/clock/fixtures). */
const recorded = (name: string) =>
  JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")) as {
    truthMs: number;
    exchanges: [number, number, number, number][];
  };

for (const impl of ["wasm", "ts"] as const) {
  test(`${impl}: the uncertainty bounds the error when one leg is slower in most exchanges`, () => {
    // Out 0.05 + 2·u² ms (mean 0.72 ms): an unweighted fit carries about 0.4 ms of the asymmetry
    // and even the delay-weighted one about 0.15 ms, while δ_min/2 is 0.055 ms and the fit's
    // standard error small: the bound must come from the fastest exchange, whose interval holds
    // the truth.
    const r = slowerLeg(impl, 2);
    expect(r.held).toBe(true);
    expect(r.worst).toBeGreaterThan(0.1); // the bias is really there
    // The bound stays near the error: the bias plus δ_min/2 and a little, not the round trip.
    expect(r.final).toBeLessThan(0.3);
  });

  test(`${impl}: the fit leans on the fastest exchanges (delay-weighted)`, () => {
    // Out 0.05 + 0.8·u² ms (mean 0.32 ms): an unweighted least-squares fit is off by about half
    // the mean asymmetry (0.15 ms); weighting each exchange by its delay excess keeps it near the
    // fast exchanges' offset.
    const r = slowerLeg(impl, 0.8);
    expect(r.held).toBe(true);
    expect(r.worst).toBeLessThan(0.08);
  });

  for (const [name, count] of [["loaded_loopback.json", 18], ["loaded_loopback_server.json", 17]] as const) {
    test(`${impl}: a real loopback trace under load (${name}): from the fit's first exchange on, within 0.3 ms and the bound`, () => {
      // Recorded with both cores busy: a third of the exchanges took 2–10 ms with almost all of
      // it on one leg. The unweighted fit that replaced the clock filter at exchange 8 was up to
      // 1.8 ms off (above its own bound once), which failed tests/clock/sync.test.ts in CI; the
      // weighted one still 1.45 ms at exchange 9 on the server's trace, where two slow exchanges
      // came after the start-up burst and tilted the line by 2000 ppm (the skew's prior holds it).
      // The exchanges at δ_min agree within 0.2 ms.
      const trace = recorded(name);
      const est = createClockEstimator({ impl });
      let worst = 0;
      trace.exchanges.forEach(([t1, t2, t3, t4], i) => {
        est.add(t1, t2, t3, t4);
        if (i + 1 < 8) return;
        const err = Math.abs(est.offset(t4) - trace.truthMs);
        worst = Math.max(worst, err);
        expect(err).toBeLessThanOrEqual(est.uncertainty(t4));
      });
      expect(trace.exchanges.length).toBe(count);
      expect(worst).toBeLessThan(0.3);
    });
  }
}

for (const impl of ["wasm", "ts"] as const) {
  test(`${impl}: exchanges all at one instant (a frozen clock) keep the estimate finite`, () => {
    // τ may repeat (only going back is invalid): with no spread in time the skew has no data,
    // and identical exchanges leave no residual either (no prior weight to fall back on).
    const est = createClockEstimator({ impl });
    for (let i = 0; i < 20; i++) est.add(T0, T0 + 5, T0 + 5.01, T0 + 0.2);
    expect(est.offset(T0)).toBeCloseTo(4.905, 3);
    expect(Number.isFinite(est.uncertainty(T0 + 1000))).toBe(true);
    expect(est.skewPpm()).toBe(0);
  });
}
