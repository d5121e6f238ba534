// Jitter buffer rules, each checked on both implementations (WASM core and plain-TS reference):
// playout order and never early, fixed latency, late policies, loss accounting, duplicates,
// reordering, seqs across 2^32, timestamp jumps, overflow, adaptation, bad input, options,
// reset/free, and the WASM pool under 10,000 buffers.

import { describe, expect, test } from "bun:test";
import {
  createJitterBuffer,
  type JitterBuffer,
  type JitterBufferOptions,
  type JitterFrame,
} from "../../src/stream/jitter.ts";
import { seededRandom } from "../../src/testing/random.ts";
import { jitterCore } from "../../wasm/mod.ts";

const T0 = 1.7e12; // local clock
const OFF = 3_600_000; // sender clock − local clock

function drain(jb: JitterBuffer, now: number): JitterFrame[] {
  const out: JitterFrame[] = [];
  for (let f = jb.pop(now); f; f = jb.pop(now)) out.push(f);
  return out;
}

/** Pushes frames every 20 ms with transit from `delay(i)` (undefined = lost), popping as it goes. */
function stream(
  jb: JitterBuffer,
  from: number,
  to: number,
  delay: (i: number) => number | undefined,
  onStep?: (i: number, out: JitterFrame[]) => void,
): JitterFrame[] {
  const all: JitterFrame[] = [];
  for (let i = from; i < to; i++) {
    const sent = T0 + i * 20;
    const d = delay(i);
    if (d !== undefined) jb.push(i, sent + OFF, OFF, sent + d);
    const out = drain(jb, sent + 19.9);
    all.push(...out);
    onStep?.(i, out);
  }
  return all;
}

for (const impl of ["wasm", "ts"] as const) {
  const make = (o: JitterBufferOptions = {}) => createJitterBuffer({ impl, ...o });

  describe(`jitter buffer (${impl})`, () => {
    test("the first frame starts the timeline: adaptive D rises to cover it; later frames are judged against the D they found", () => {
      const jb = make(); // initial latency 80 ms
      expect(jb.push(0, T0 + OFF, OFF, T0 + 300)).toBe("buffered"); // 300 ms in transit
      expect(jb.stats().latencyMs).toBeGreaterThanOrEqual(300);
      expect(jb.stats().late).toBe(0);
      // After a reset the next frame is a first frame again.
      jb.reset();
      drain(jb, Infinity);
      expect(jb.push(1, T0 + OFF + 20, OFF, T0 + 20 + 500)).toBe("buffered");
      // Not the first: a frame beyond the D it found is late.
      const d = jb.stats().latencyMs;
      expect(jb.push(2, T0 + OFF + 40, OFF, T0 + 40 + d + 50)).toBe("late");
      // A fixed latency is what it is: a first frame beyond it is late.
      const fixed = make({ latencyMs: 40 });
      expect(fixed.push(0, T0 + OFF, OFF, T0 + 300)).toBe("late");
      jb.free();
      fixed.free();
    });

    test("setInitialLatency: the floor until 50 frames; at once before the first; bad values refused", () => {
      const jb = make({ maxLatencyMs: 400 });
      expect(jb.stats().latencyMs).toBe(80);
      jb.setInitialLatency(250);
      expect(jb.stats().latencyMs).toBe(250); // no frame yet: D starts from it
      for (const bad of [NaN, Infinity, -1]) expect(() => jb.setInitialLatency(bad)).toThrow(RangeError);
      stream(jb, 0, 10, () => 5);
      expect(jb.stats().targetLatencyMs).toBe(250);
      jb.setInitialLatency(900); // clamped to maxLatencyMs, from the next frame, up at once
      stream(jb, 10, 11, () => 5);
      expect(jb.stats().latencyMs).toBe(400);
      stream(jb, 11, 60, () => 5); // 50 frames of its own: they govern
      expect(jb.stats().targetLatencyMs).toBeLessThan(10);
      const fixed = make({ latencyMs: 40 });
      fixed.setInitialLatency(300);
      expect(fixed.stats().latencyMs).toBe(40);
      jb.free();
      fixed.free();
      expect(() => jb.setInitialLatency(10)).toThrow(/freed/);
    });

    test("playout order, never early, nextDue exact", () => {
      const rnd = seededRandom(5);
      const jb = make({ latencyMs: 50 });
      const frames = Array.from(
        { length: 200 },
        (_, i) => ({ seq: i, ts: T0 + OFF + i * 20, at: T0 + i * 20 + rnd() * 45 }),
      );
      frames.sort((a, b) => a.at - b.at);
      const out: JitterFrame[] = [];
      let k = 0;
      for (let now = T0; now < T0 + 5000; now += 0.5) {
        while (k < frames.length && frames[k].at <= now) {
          const f = frames[k++];
          expect(jb.push(f.seq, f.ts, OFF, f.at)).toBe("buffered");
        }
        const due = jb.nextDue();
        const got = drain(jb, now);
        for (const f of got) expect(f.alignedTime).toBeLessThanOrEqual(now);
        if (got.length > 0) expect(got[0].alignedTime).toBe(due);
        else expect(due).toBeGreaterThan(now);
        out.push(...got);
      }
      expect(out.map((f) => f.seq)).toEqual(frames.map((_, i) => i));
      expect(jb.pop(Infinity)).toBeUndefined();
      expect(jb.nextDue()).toBe(Infinity);
      jb.free();
    });

    test("start phase: a path slower than the initial 80 ms raises D from the first frames (1 fps, 300 ms transit)", () => {
      const jb = make();
      let late = 0;
      for (let i = 0; i < 10; i++) {
        const ts = T0 + OFF + i * 1000;
        const at = T0 + i * 1000 + 300 + ((i * 7) % 10); // 300–309 ms

        if (jb.push(i, ts, OFF, at) === "late") late++;
        drain(jb, at + 1000);
      }
      // The first frame is never late (it starts the timeline); the next, with one sample known,
      // may be; D follows the path at once instead of holding 80 ms for 50 frames (50 s at 1 fps:
      // every frame late).
      expect(late).toBeLessThanOrEqual(1);
      expect(jb.stats().latencyMs).toBeGreaterThan(300);
      expect(jb.stats().latencyMs).toBeLessThan(320);
      jb.free();
    });

    test("fixed latency is exact: alignedTime = (ts − offset) + latency", () => {
      const rnd = seededRandom(6);
      const jb = make({ latencyMs: 120 });
      const offsets: number[] = [];
      const out = stream(jb, 0, 500, (i) => {
        offsets[i] = OFF;
        return 10 + 20 * rnd();
      });
      out.push(...drain(jb, Infinity));
      expect(out.length).toBe(500);
      for (const f of out) expect(f.alignedTime).toBe((f.ts - OFF) + 120);
      const s = jb.stats();
      expect([s.late, s.lost, s.latencyMs, s.targetLatencyMs, s.delivered]).toEqual([0, 0, 120, 120, 500]);
      jb.free();
    });

    test("late policy drop: counted, never delivered", () => {
      const jb = make({ latencyMs: 20 });
      expect(jb.push(0, 100, 0, 110)).toBe("buffered");
      expect(jb.push(1, 120, 0, 150)).toBe("late"); // due at 140
      expect(drain(jb, 200).map((f) => f.seq)).toEqual([0]);
      const s = jb.stats();
      expect([s.late, s.lateDelivered, s.delivered, s.lost]).toEqual([1, 0, 1, 0]);
      jb.free();
    });

    test("late policy deliver: at once, late:true, exact lateByMs (fixed 20 ms, U(10,30))", () => {
      const rnd = seededRandom(8);
      const jb = make({ latencyMs: 20, latePolicy: "deliver" });
      const transit: number[] = [];
      const arrival: number[] = [];
      const out = stream(jb, 0, 1000, (i) => {
        transit[i] = 10 + 20 * rnd();
        arrival[i] = T0 + i * 20 + transit[i];
        return transit[i];
      });
      out.push(...drain(jb, Infinity));
      expect(out.length).toBe(1000);
      let late = 0;
      for (const f of out) {
        expect(f.alignedTime).toBe(f.ts - OFF + 20);
        expect(f.late).toBe(arrival[f.seq] > f.alignedTime);
        if (f.late) {
          late++;
          expect(f.lateByMs).toBe(arrival[f.seq] - f.alignedTime);
        } else expect(f.lateByMs).toBe(0);
      }
      expect(late).toBeGreaterThan(400);
      expect(late).toBeLessThan(600);
      const s = jb.stats();
      expect(s.late).toBe(0);
      expect(s.lateDelivered).toBe(late);
      expect(s.delivered).toBe(1000);
      jb.free();
    });

    test("lost counts skipped seqs; one turning up later is late/belated instead", () => {
      for (const policy of ["drop", "deliver"] as const) {
        const jb = make({ latencyMs: 50, latePolicy: policy });
        for (const s of [0, 1, 4, 5]) jb.push(s, s * 20, 0, s * 20 + 10);
        drain(jb, 200);
        expect(jb.stats().lost).toBe(2);
        expect(jb.push(2, 40, 0, 205)).toBe(policy === "drop" ? "late" : "late-deliver");
        let s = jb.stats();
        expect([s.lost, s.belated]).toEqual([1, 1]);
        expect(policy === "drop" ? s.late : s.lateDelivered).toBe(1);
        jb.push(3, 60, 0, 206);
        s = jb.stats();
        expect([s.lost, s.belated]).toEqual([0, 2]);
        const out = drain(jb, 206);
        expect(out.map((f) => [f.seq, f.late])).toEqual(policy === "drop" ? [] : [[2, true], [3, true]]);
        jb.free();
      }
    });

    test("duplicates of held and released frames are dropped and counted", () => {
      const jb = make({ latencyMs: 40 });
      expect(jb.push(0, 0, 0, 10)).toBe("buffered");
      expect(jb.push(0, 0, 0, 11)).toBe("duplicate"); // held
      expect(drain(jb, 40).map((f) => f.seq)).toEqual([0]);
      expect(jb.push(0, 0, 0, 41)).toBe("duplicate"); // released
      expect(jb.push(1, 20, 0, 42)).toBe("buffered");
      expect(jb.push(1, 20, 0, 43)).toBe("duplicate");
      expect(drain(jb, Infinity).map((f) => f.seq)).toEqual([1]);
      const s = jb.stats();
      expect([s.duplicates, s.delivered, s.late, s.received]).toEqual([3, 2, 0, 5]);
      jb.free();
    });

    test("reordered arrivals are counted and released in seq order", () => {
      const jb = make({ latencyMs: 60 });
      for (const [seq, at] of [[0, 10], [2, 50], [1, 52], [3, 70], [5, 110], [4, 111]]) jb.push(seq, seq * 20, 0, at);
      expect(drain(jb, Infinity).map((f) => f.seq)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(jb.stats().reordered).toBe(2);
      expect(jb.stats().lost).toBe(0);
      jb.free();
    });

    test("seqs crossing 2^32 are seamless", () => {
      const rnd = seededRandom(9);
      const jb = make();
      const s0 = 2 ** 32 - 100;
      const out: number[] = [];
      for (let i = 0; i < 300; i++) {
        const ts = i * 20;
        const at = ts + 10 + 20 * rnd();
        expect(jb.push(s0 + i, ts + OFF, OFF, at)).toBe("buffered");
        out.push(...drain(jb, at).map((f) => f.seq));
      }
      out.push(...drain(jb, Infinity).map((f) => f.seq));
      expect(out).toEqual(Array.from({ length: 300 }, (_, i) => s0 + i));
      const s = jb.stats();
      expect([s.lost, s.late, s.duplicates, s.reordered, s.discontinuities]).toEqual([0, 0, 0, 0, 0]);
      expect(jb.push(2 ** 53 - 1, 300 * 20 + OFF, OFF, 6020)).toBe("buffered");
      jb.free();
    });

    test("sender timestamp jump: flush (deliver:false), rebase, resume within D + 200 ms", () => {
      for (const jump of [10_000, -10_000]) {
        const D = 200;
        const jb = make({ latencyMs: D });
        const discarded: number[] = [];
        let firstAfter = Infinity;
        const JUMP_AT = 100;
        for (let i = 0; i < 300; i++) {
          const sent = T0 + i * 20;
          const ts = sent + OFF + (i >= JUMP_AT ? jump : 0);
          jb.push(i, ts, OFF, sent + 20);
          for (const f of drain(jb, sent + 20)) {
            if (!f.deliver) discarded.push(f.seq);
            else if (f.seq >= JUMP_AT) firstAfter = Math.min(firstAfter, sent + 20);
            if (f.deliver) expect(f.alignedTime).toBeLessThanOrEqual(sent + 20);
          }
        }
        const s = jb.stats();
        expect(s.discontinuities).toBe(1);
        expect(s.flushed).toBe(discarded.length);
        expect(discarded.every((q) => q < JUMP_AT)).toBe(true);
        const firstPostJumpArrival = T0 + JUMP_AT * 20 + 20;
        expect(firstAfter - firstPostJumpArrival).toBeLessThanOrEqual(D + 200);
        expect(discarded.length + s.late).toBeLessThanOrEqual(D / 20 + 3);
        expect(s.rebaseMs).toBeCloseTo(-jump, -1);
        jb.free();
      }
    });

    test("a single wild frame, or a burst after a stall, is no discontinuity", () => {
      const jb = make({ latencyMs: 50 });
      stream(jb, 0, 100, (i) => (i === 50 ? 5000 : 20)); // frame 50 arrives 5 s late
      expect(jb.stats().discontinuities).toBe(0);
      expect(jb.push(1000, T0 + OFF + 1e6, OFF, T0 + 2010)).toBe("late"); // one from the far future
      // a 1.5 s stall: 75 frames arrive back to back (0.2 ms apart), then the stream goes on
      stream(jb, 100, 300, (i) => (i < 175 ? 3520 + (i - 100) * 0.2 - i * 20 : 20));
      const s = jb.stats();
      expect(s.discontinuities).toBe(0);
      expect(s.rebaseMs).toBe(0);
      expect(s.late).toBeGreaterThan(50);
      jb.free();
      // 10 fps: two agreeing wild frames are not yet a jump; a third is
      const slow = make({ latencyMs: 50 });
      const at = (i: number) => T0 + i * 100 + 20;
      for (let i = 0; i < 10; i++) slow.push(i, T0 + OFF + i * 100 + (i === 5 || i === 6 ? 10_000 : 0), OFF, at(i));
      expect(slow.stats().discontinuities).toBe(0);
      for (let i = 10; i < 13; i++) slow.push(i, T0 + OFF + i * 100 + 10_000, OFF, at(i));
      expect(slow.stats().discontinuities).toBe(1);
      slow.free();
    });

    test("overflow: at most maxFrames wait, the oldest leaves as deliver:false", () => {
      const jb = make({ latencyMs: 1000, maxFrames: 8 });
      const results: string[] = [];
      for (let i = 0; i < 100; i++) {
        results.push(jb.push(i, i * 5, 0, i * 5));
        expect(jb.stats().bufferedFrames).toBeLessThanOrEqual(8);
      }
      expect(results.filter((r) => r === "overflow").length).toBe(92);
      const out = drain(jb, Infinity);
      expect(out.filter((f) => !f.deliver).map((f) => f.seq)).toEqual(Array.from({ length: 92 }, (_, i) => i));
      expect(out.filter((f) => f.deliver).map((f) => f.seq)).toEqual(Array.from({ length: 8 }, (_, i) => 92 + i));
      const s = jb.stats();
      expect([s.overflowDrops, s.lost, s.delivered]).toEqual([92, 0, 8]);
      jb.free();
    });

    test("every accepted frame leaves pop exactly once", () => {
      const rnd = seededRandom(10);
      const jb = make({ maxFrames: 4, latePolicy: "deliver" });
      const accepted = new Map<number, number>();
      let t = T0;
      for (let i = 0; i < 3000; i++) {
        t += rnd() * 20;
        const seq = Math.floor(i - rnd() * 5);
        if (seq < 0) continue;
        const r = jb.push(seq, seq * 20 + OFF + T0, OFF, t);
        if (r === "buffered" || r === "late-deliver" || r === "overflow") {
          accepted.set(seq, (accepted.get(seq) ?? 0) + 1);
        }
        if (i === 1500) jb.reset();
        for (const f of drain(jb, t)) accepted.set(f.seq, accepted.get(f.seq)! - 1);
      }
      for (const f of drain(jb, Infinity)) accepted.set(f.seq, accepted.get(f.seq)! - 1);
      expect([...accepted.values()].every((v) => v === 0)).toBe(true);
      jb.free();
    });

    test("adaptive D: up at once, down slewed ≤ 50 ms/s, back after jitter falls (JB-3)", () => {
      const rnd = seededRandom(11);
      const jb = make();
      let prev = jb.stats();
      let prevT = T0;
      let now = T0;
      let maxFall = 0;
      let upAt = Infinity;
      let lowD = NaN;
      const SWITCH_UP = 30 * 50, SWITCH_DOWN = 90 * 50, END = 150 * 50;
      for (let i = 0; i < END; i++) {
        const sent = T0 + i * 20;
        const at = sent + 10 + (i >= SWITCH_UP && i < SWITCH_DOWN ? 70 : 20) * rnd();
        jb.push(i, sent + OFF, OFF, at);
        drain(jb, sent + 19.9);
        now = Math.max(now, at, sent + 19.9); // the latest local time the buffer has seen
        const s = jb.stats();
        if (s.targetLatencyMs > prev.latencyMs) expect(s.latencyMs).toBe(s.targetLatencyMs); // up at once
        if (now > prevT) maxFall = Math.max(maxFall, (prev.latencyMs - s.latencyMs) / (now - prevT));
        if (i === SWITCH_UP - 1) lowD = s.latencyMs;
        if (i >= SWITCH_UP && upAt === Infinity && s.targetLatencyMs >= 79.3) upAt = (i - SWITCH_UP) * 20;
        prev = s;
        prevT = now;
      }
      expect(lowD).toBeGreaterThan(29);
      expect(lowD).toBeLessThan(33);
      expect(upAt).toBeLessThanOrEqual(5000);
      expect(Math.abs(prev.latencyMs - lowD)).toBeLessThanOrEqual(5);
      expect(maxFall).toBeGreaterThan(0.004);
      expect(maxFall).toBeLessThanOrEqual(0.05 + 1e-9);
      jb.free();
    });

    test("adaptive D follows its target down after a start-up spike, at most 50 ms/s", () => {
      // The first second's frames take 300-440 ms (a sender warming up, streams still being set
      // up), then 10-30 ms. The histogram's tail is stale once a block of frames stays far below
      // it, and is forgotten fast: the target is back within seconds (FORGET alone took ~18 s).
      // D follows at up to 50 ms/s (5 ms/s alone took 80 s from 440 ms).
      const rnd = seededRandom(14);
      const jb = make();
      let targetBackAt = Infinity, dBackAt = Infinity, peak = 0, maxFall = 0;
      let secD = NaN; // D a second ago (50 frames)
      stream(jb, 0, 90 * 50, (i) => (i < 50 ? 300 + 140 * rnd() : 10 + 20 * rnd()), (i) => {
        const s = jb.stats();
        peak = Math.max(peak, s.latencyMs);
        if (i > 50 && targetBackAt === Infinity && s.targetLatencyMs < 40) targetBackAt = i * 20;
        if (i > 50 && dBackAt === Infinity && s.latencyMs < 40) dBackAt = i * 20;
        if (i % 50 === 0) {
          // Falls per second (the buffer's local time moves with arrivals and pops, ±30 ms here).
          if (secD > s.latencyMs) {
            const fall = (secD - s.latencyMs) / 1000;
            maxFall = Math.max(maxFall, fall);
          }
          secD = s.latencyMs;
        }
      });
      expect(peak).toBeGreaterThan(400);
      expect(targetBackAt).toBeLessThan(8_000); // FORGET alone: ~18 s
      // 400 ms at 50 ms/s is 8 s, then the last ms relax more slowly; 5 ms/s alone: > 60 s.
      expect(dBackAt - targetBackAt).toBeLessThanOrEqual(12_000);
      expect(dBackAt).toBeLessThan(20_000);
      expect(maxFall).toBeGreaterThan(0.045);
      expect(maxFall).toBeLessThanOrEqual(0.05 * 1.04); // the second may span up to 40 ms more
      const end = jb.stats();
      expect(end.latencyMs).toBeLessThan(40);
      jb.free();
    });

    test("adaptive D comes back down within 60 s of jitter falling", () => {
      const rnd = seededRandom(12);
      const jb = make();
      let back = Infinity;
      let lowD = NaN;
      stream(jb, 0, 100 * 50, (i) => 10 + (i >= 20 * 50 && i < 40 * 50 ? 70 : 20) * rnd(), (i) => {
        const d = jb.stats().latencyMs;
        if (i === 20 * 50 - 1) lowD = d;
        if (i >= 40 * 50 && back === Infinity && Math.abs(d - lowD) <= 5) back = (i - 40 * 50) * 20;
      });
      expect(back).toBeLessThanOrEqual(60_000);
      expect(back).toBeGreaterThan(5_000); // it does take the forgetting and the slew
      jb.free();
    });

    test("loss does not raise D; late frames do", () => {
      const run = (lossy: boolean, spikes: boolean) => {
        const rnd = seededRandom(13);
        const jb = make();
        stream(jb, 0, 3000, (i) => {
          const d = 10 + 20 * rnd();
          if (lossy && i > 500 && i % 3 === 0) return undefined;
          return spikes && i > 500 && i % 20 === 0 ? d + 100 : d;
        });
        const s = jb.stats();
        jb.free();
        return s;
      };
      const clean = run(false, false);
      const lossy = run(true, false);
      const spiky = run(false, true);
      expect(lossy.lost).toBeGreaterThan(800);
      expect(Math.abs(lossy.latencyMs - clean.latencyMs)).toBeLessThan(1);
      expect(spiky.latencyMs).toBeGreaterThan(clean.latencyMs + 50);
    });

    test("bad input throws RangeError and changes nothing but invalid", () => {
      const jb = make();
      stream(jb, 0, 60, () => 15);
      const before = jb.stats();
      const bad: [number, number, number, number][] = [
        [NaN, 0, 0, 0],
        [-1, 0, 0, 0],
        [1.5, 0, 0, 0],
        [2 ** 53, 0, 0, 0],
        [Infinity, 0, 0, 0],
        [100, NaN, 0, 0],
        [100, -1, 0, 0],
        [100, Infinity, 0, 0],
        [100, 0, NaN, 0],
        [100, 0, 0, Infinity],
      ];
      for (const b of bad) expect(() => jb.push(...b)).toThrow(RangeError);
      expect(() => jb.push(-1, 0, 0, 0)).toThrow(/^invalid jitter buffer frame: seq must be/);
      expect(jb.stats()).toEqual({ ...before, invalid: bad.length + 1 });
      jb.free();
    });

    test("options are validated", () => {
      const bad: JitterBufferOptions[] = [
        { latencyMs: -1 },
        { latencyMs: NaN },
        { minLatencyMs: -1 },
        { minLatencyMs: 100, maxLatencyMs: 50 },
        { maxLatencyMs: Infinity },
        { maxFrames: 0 },
        { maxFrames: 1.5 },
        { maxFrames: 2 ** 21 },
        { initialLatencyMs: -5 },
        { marginMs: NaN },
        { quantile: 0 },
        { quantile: 1.01 },
        { latePolicy: "keep" as "drop" },
        { impl: "js" as "ts" },
      ];
      for (const o of bad) expect(() => createJitterBuffer({ impl, ...o })).toThrow(RangeError);
      expect(() => make({ maxFrames: 0 })).toThrow(/^jitter buffer option maxFrames must be an integer/);
      const jb = make({ minLatencyMs: 20, maxLatencyMs: 50, initialLatencyMs: 80 });
      const s = jb.stats();
      expect([s.latencyMs, s.minLatencyMs, s.maxLatencyMs]).toEqual([50, 20, 50]); // initial clamped
      expect(s.transitP50Ms).toBeNaN();
      jb.free();
    });

    test("reset discards frames and adaptation, keeps counters; free ends use", () => {
      const jb = make();
      stream(jb, 0, 200, (i) => (i % 2 ? 15 : 25));
      const before = jb.stats();
      expect(before.latencyMs).toBeLessThan(80);
      jb.push(200, T0 + OFF + 4000, OFF, T0 + 4015);
      jb.push(201, T0 + OFF + 4020, OFF, T0 + 4035);
      const held = jb.stats().bufferedFrames;
      expect(held).toBeGreaterThanOrEqual(2);
      jb.reset();
      expect(jb.nextDue()).toBe(-Infinity);
      const out = drain(jb, -Infinity);
      expect(out.length).toBe(held);
      expect(out.every((f) => !f.deliver)).toBe(true);
      expect(out.slice(-2).map((f) => f.seq)).toEqual([200, 201]);
      const s = jb.stats();
      expect([s.latencyMs, s.samples, s.flushed, s.received]).toEqual([80, 0, held, before.received + 2]);
      expect(jb.push(200, T0 + OFF + 4000, OFF, T0 + 4016)).toBe("buffered"); // seq state forgotten too
      jb.free();
      jb.free();
      expect(() => jb.push(1, 0, 0, 0)).toThrow(/freed/);
      expect(() => jb.pop(0)).toThrow(/freed/);
      expect(() => jb.stats()).toThrow(/freed/);
    });
  });
}

test("WASM memory grows in doublings, not a page at a time: 3,000 new buffers with a frame each", () => {
  // Every grown buffer counts as new memory to JavaScriptCore until its next collection: page by
  // page, 1,000 buffers made 122 grows, counted as about 90 MB for 8 MB of growth, and started
  // full collections while a server's streams were opening (docs/PERFORMANCE.md).
  const core = jitterCore();
  const before = core.memoryBytes();
  let grows = 0;
  let last = before;
  const ids: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const id = core.create(NaN, 0, 1000, false, 4096, 80, 2, 0.99);
    core.push(id, 0, 5, 0, 905); // a 900 ms transit: a histogram of every bucket (1,001)
    ids.push(id);
    const m = core.memoryBytes();
    if (m !== last) {
      grows++;
      last = m;
    }
  }
  const held = ids.reduce((n, id) => n + core.bytes(id), 0);
  for (const id of ids) core.free(id);
  expect(held).toBeGreaterThan(3000 * 8000); // the buffers did need memory
  expect(grows).toBeLessThanOrEqual(12); // page by page: about 360
  // At most twice what was needed, plus what was there (each step at most doubles the memory).
  expect(last - before).toBeLessThanOrEqual(2 * (held + before));
});

test("WASM pool: 10,000 buffers created and freed, memory stays bounded", () => {
  const core = jitterCore();
  const live0 = core.live();
  const mem0 = core.memoryBytes();
  const round = () => {
    const bufs = Array.from({ length: 10_000 }, () => createJitterBuffer());
    for (let i = 0; i < bufs.length; i++) bufs[i].push(i, 5, 0, 10 + (i % 7)); // allocates the histogram
    expect(core.live()).toBe(live0 + 10_000);
    for (const b of bufs) b.free();
    expect(core.live()).toBe(live0);
  };
  round();
  round(); // the pool's own slot and free lists reach their size
  const settled = core.memoryBytes();
  expect((settled - mem0) / 10_000).toBeLessThanOrEqual(16 * 1024); // ≤ 16 KiB per live buffer
  for (let r = 0; r < 3; r++) round();
  expect(core.memoryBytes()).toBe(settled);
  // One buffer in use: struct + histogram + queues. On a 15–19 ms path the histogram holds 32
  // 1 ms buckets (256 B), not all 1,001 of the default maxLatencyMs.
  const id = core.create(NaN, 0, 1000, false, 4096, 80, 2, 0.99);
  const fresh = core.bytes(id);
  for (let i = 0; i < 200; i++) {
    core.push(id, i, i * 20, 0, i * 20 + 15 + (i % 5));
    while (core.pop(id, i * 20 + 20)) { /* drain */ }
  }
  const short = core.bytes(id);
  expect(short - fresh).toBeGreaterThanOrEqual(32 * 8);
  expect(short - fresh).toBeLessThan(1024);
  // The path slows to 700 ms: the histogram grows (doubling) to cover it, at most to 1,001 buckets.
  for (let i = 200; i < 260; i++) {
    core.push(id, i, i * 20, 0, i * 20 + 700);
    while (core.pop(id, i * 20 + 20)) { /* drain */ }
  }
  const slow = core.bytes(id);
  expect(slow - fresh).toBeGreaterThanOrEqual(1024 * 8 - 1024); // 1,001 or 1,024 buckets' worth, queues aside
  expect(slow).toBeLessThanOrEqual(16 * 1024);
  core.free(id);
  expect(core.bytes(id)).toBeNaN();
});
