// Real-time hot paths, WASM core vs plain-TS twin, in operations per second:
//   jitter: one push of a 50 fps frame plus the pops it makes due (U(10,30) ms transit, 2% loss),
//           over a 3,000-frame trace, on a fresh buffer per pass;
//   clock:  one clock estimator add() of a 4 Hz PING/PONG trace (U(10,30) ms each way, 100 ppm
//           skew), 600 exchanges per pass, so most adds run the 512-sample regression.
// Bun or Deno, no permissions. `bun bench/realtime_ops.ts` prints one JSON line; bench/_rt_ops.ts
// calls `realtimeOps()` for `npm run bench`.

import { createJitterBuffer } from "../src/stream/jitter.ts";
import { createClockEstimator } from "../src/clock/estimator.ts";
import { seededRandom } from "../src/testing/random.ts";

/** One implementation's rate against the other's. */
export interface OpsComparison {
  wasmOpsPerSec: number;
  tsOpsPerSec: number;
  /** wasm ÷ ts. */
  ratio: number;
}

const T0 = 1.7e12;

function jitterTrace(n: number): Float64Array {
  const rnd = seededRandom(42);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const sent = T0 + i * 20;
    if (rnd() < 0.02) continue;
    out.push(i, sent + 3.6e6, 3.6e6, sent + 10 + 20 * rnd());
  }
  // Arrival order (reordering included, as on the wire).
  const rows = Array.from({ length: out.length / 4 }, (_, k) => out.slice(k * 4, k * 4 + 4));
  rows.sort((a, b) => a[3] - b[3]);
  return Float64Array.from(rows.flat());
}

function clockTrace(n: number): Float64Array {
  const rnd = seededRandom(7);
  const out = new Float64Array(n * 4);
  for (let i = 0; i < n; i++) {
    const t1 = T0 + i * 250;
    const srv = (u: number) => u + 37.5 + 100e-6 * (u - T0);
    const df = 10 + 20 * rnd(), db = 10 + 20 * rnd();
    out.set([t1, srv(t1 + df), srv(t1 + df + 0.2), t1 + df + 0.2 + db], i * 4);
  }
  return out;
}

/** Median ops/s of `pass` (which returns the ops it did) over `runs` timed runs of ≥ `minMs`. */
function measure(pass: () => number, runs: number, minMs: number): number {
  const t0 = performance.now();
  while (performance.now() - t0 < minMs) pass(); // warm-up: let the JIT settle
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    let ops = 0;
    const start = performance.now();
    let now = start;
    while (now - start < minMs) {
      ops += pass();
      now = performance.now();
    }
    rates.push((ops * 1000) / (now - start));
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)];
}

function compare(op: (impl: "wasm" | "ts") => () => number, runs: number, minMs: number): OpsComparison {
  const wasmOpsPerSec = measure(op("wasm"), runs, minMs);
  const tsOpsPerSec = measure(op("ts"), runs, minMs);
  return { wasmOpsPerSec, tsOpsPerSec, ratio: wasmOpsPerSec / tsOpsPerSec };
}

/**
 * Measures the WASM jitter buffer and clock estimator against their plain-TS twins.
 *
 * @example
 * ```ts
 * const r = await realtimeOps({ quick: true });
 * console.log(r.jitter.ratio, r.clock.ratio);
 * ```
 * @param options `quick`: fewer, shorter runs (a smoke test, not the real figures).
 * @returns Operations per second of each implementation and their ratio, per hot path.
 */
export function realtimeOps(
  options: { quick?: boolean } = {},
): Promise<{ jitter: OpsComparison; clock: OpsComparison } & Record<string, unknown>> {
  const runs = options.quick ? 3 : 7;
  const minMs = options.quick ? 50 : 200;
  const jt = jitterTrace(3000);
  const ct = clockTrace(600);

  const jitter = compare(
    (impl) => () => {
      const jb = createJitterBuffer({ impl });
      for (let k = 0; k < jt.length; k += 4) {
        const at = jt[k + 3];
        jb.push(jt[k], jt[k + 1], jt[k + 2], at);
        while (jb.pop(at)) { /* released */ }
      }
      jb.free();
      return jt.length / 4;
    },
    runs,
    minMs,
  );

  const clock = compare(
    (impl) => () => {
      const est = createClockEstimator({ impl });
      for (let k = 0; k < ct.length; k += 4) est.add(ct[k], ct[k + 1], ct[k + 2], ct[k + 3]);
      est.free();
      return ct.length / 4;
    },
    runs,
    minMs,
  );

  return Promise.resolve({ jitter, clock });
}

if (import.meta.main) {
  console.log(JSON.stringify(await realtimeOps()));
}
