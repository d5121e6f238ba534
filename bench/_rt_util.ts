// Shared by the real-time benchmark's child scripts (bench/_rt_*.ts), which run under Bun and
// Deno: arguments, stdin lines, CPU and memory, a fixed-bucket histogram, percentiles, exit.

import process from "node:process";
import { G, RUNTIME, VERSION } from "./_env.ts";

export { RUNTIME, VERSION };
// deno-lint-ignore no-explicit-any
export type Any = any;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** The default clock of every EchoStream peer: ms on the Unix epoch, monotonic, sub-ms. */
export const sys = () => performance.timeOrigin + performance.now();
export const noop = () => {};

/** The child's configuration: a JSON object in the first command-line argument. */
export function config<T>(): T {
  const args: string[] = RUNTIME === "deno" ? G.Deno.args : process.argv.slice(2);
  return JSON.parse(args[0] ?? "{}") as T;
}

export function exit(code: number): never {
  if (RUNTIME === "deno") G.Deno.exit(code);
  process.exit(code);
  throw new Error("unreachable");
}

/** Prints one JSON line on stdout (the orchestrator reads lines starting with "{"). */
export function emit(x: unknown): void {
  console.log(JSON.stringify(x));
}

/** Lines from stdin, as they come. */
export async function* stdinLines(): AsyncGenerator<string> {
  const src: AsyncIterable<Uint8Array> = RUNTIME === "deno" ? G.Deno.stdin.readable : process.stdin;
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of src) {
    buf += typeof chunk === "string" ? chunk : dec.decode(chunk, { stream: true });
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) yield line;
    }
  }
}

/** CPU time used by this process so far, ms (user + system). */
export function cpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

/** Resident set size, MB. */
export function rssMB(): number {
  return process.memoryUsage().rss / 1e6;
}

/** A run's CPU: percent of one core between `start()` and `stop()`. */
export class CpuMeter {
  #c0 = 0;
  #t0 = 0;
  #pct = NaN;
  start(): void {
    this.#c0 = cpuMs();
    this.#t0 = performance.now();
  }
  stop(): number {
    this.#pct = (100 * (cpuMs() - this.#c0)) / (performance.now() - this.#t0);
    return this.#pct;
  }
  get pct(): number {
    return this.#pct;
  }
}

/**
 * Histogram of non-negative values (ms): 0.01 ms buckets to 100 ms, 1 ms buckets to 10 s, then
 * one overflow bucket. Negative values count in the first bucket (and in `negative`).
 */
export class Hist {
  readonly fine = new Float64Array(10_000);
  readonly coarse = new Float64Array(9_900);
  over = 0;
  count = 0;
  sum = 0;
  max = -Infinity;
  min = Infinity;
  negative = 0;
  add(x: number): void {
    if (!Number.isFinite(x)) return;
    this.count++;
    this.sum += x;
    if (x > this.max) this.max = x;
    if (x < this.min) this.min = x;
    if (x < 0) {
      this.negative++;
      this.fine[0]++;
    } else if (x < 100) this.fine[Math.floor(x * 100)]++;
    else if (x < 10_000) this.coarse[Math.floor(x) - 100]++;
    else this.over++;
  }
  /** Upper edge of the bucket holding quantile q. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const want = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.fine.length; i++) {
      seen += this.fine[i];
      if (seen >= want) return Math.min((i + 1) / 100, this.max);
    }
    for (let i = 0; i < this.coarse.length; i++) {
      seen += this.coarse[i];
      if (seen >= want) return Math.min(i + 101, this.max);
    }
    return this.max;
  }
  /** Fraction of values above `x` (x ≥ 0; resolution of the bucket holding x). */
  fractionAbove(x: number): number {
    if (this.count === 0) return NaN;
    let below = 0;
    const fineEnd = Math.min(this.fine.length, Math.floor(x * 100));
    for (let i = 0; i < fineEnd; i++) below += this.fine[i];
    if (x >= 100) {
      const coarseEnd = Math.min(this.coarse.length, Math.floor(x) - 100);
      for (let i = 0; i < coarseEnd; i++) below += this.coarse[i];
    }
    return (this.count - below) / this.count;
  }
  get mean(): number {
    return this.count ? this.sum / this.count : NaN;
  }
  reset(): void {
    this.fine.fill(0);
    this.coarse.fill(0);
    this.over =
      this.count =
      this.sum =
      this.negative =
        0;
    this.max = -Infinity;
    this.min = Infinity;
  }
  summary(): { count: number; p50: number; p99: number; max: number; mean: number } {
    return {
      count: this.count,
      p50: r3(this.quantile(0.5)),
      p99: r3(this.quantile(0.99)),
      max: r3(this.max),
      mean: r3(this.mean),
    };
  }
}

/**
 * Transit of the measured window, kept per stream: each stream's own p99 (nearest rank over its
 * frames), then the median, p90 and max of those over the streams. The same for every stack, so
 * "per-stream transit p99" compares like for like (the pooled p99 over all frames is `Hist`'s).
 */
export class PerStreamTransit {
  readonly #streams: { v: Float32Array; n: number }[] = [];
  /** A recorder for one stream's frames (the caller records only while measuring). */
  stream(): (x: number) => void {
    const s = { v: new Float32Array(64), n: 0 };
    this.#streams.push(s);
    return (x: number) => {
      if (s.n === s.v.length) {
        const v = new Float32Array(s.v.length * 2);
        v.set(s.v);
        s.v = v;
      }
      s.v[s.n++] = x;
    };
  }
  reset(): void {
    for (const s of this.#streams) s.n = 0;
  }
  /** Quantiles over the streams that had frames in the window of their own p99. */
  summary(): { streams: number; p50OfStreams: number; p90OfStreams: number; maxOfStreams: number } {
    const p99: number[] = [];
    for (const s of this.#streams) {
      if (s.n === 0) continue;
      const v = s.v.subarray(0, s.n).sort();
      p99.push(v[Math.min(s.n - 1, Math.ceil(0.99 * s.n) - 1)]);
    }
    return { streams: p99.length, p50OfStreams: r3(pct(p99, 0.5)), p90OfStreams: r3(pct(p99, 0.9)), maxOfStreams: r3(pct(p99, 1)) };
  }
}

/** The q-quantile of `xs` (nearest rank); NaN for none. */
export function pct(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
export const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
/** Rounds to `d` decimals (NaN and ±Infinity kept as null in JSON anyway). */
export const r3 = (x: number, d = 3) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);

/** Rejects if `p` has not settled in `ms`. */
export function within<T>(p: Promise<T>, ms: number, label: string): Promise<T> {
  let t: Any;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${label}: no result within ${ms} ms`)), ms);
    }),
  ]);
}

/** Exits with a JSON error line if the child is still running after `ms` (a hung stack). */
export function watchdog(ms: number, what: string): void {
  const t = setTimeout(() => {
    emit({ error: `${what}: watchdog after ${ms} ms` });
    exit(3);
  }, ms);
  if (RUNTIME === "deno") G.Deno.unrefTimer(t);
  else (t as Any)?.unref?.();
}
