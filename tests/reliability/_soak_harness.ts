// Harness-side helpers for the soak and fault tests: asking a child server for its counts,
// waiting for a server to go idle, and the statistics the soak report is made of.

import type { Child } from "../support/netns.ts";
import { isIdle, live, type LiveCounts, quantile } from "./_soak_common.ts";

let tags = 0;

/** Sends `cmd <tag>` to a child server and resolves with its tagged answer. */
export async function ask<T = Record<string, unknown>>(child: Child, cmd: string, timeoutMs = 10_000): Promise<T> {
  const tag = String(++tags);
  child.proc.stdin!.write(`${cmd} ${tag}\n`);
  const line = await child.waitLine((l) => l.startsWith("{") && l.includes(`"tag":"${tag}"`), timeoutMs);
  return JSON.parse(line) as T;
}

/**
 * Polls the child server's counts until everything is back to zero with `connections` left, or
 * `timeoutMs` passes; returns the last counts either way (the caller asserts on them).
 */
export async function waitIdle(child: Child, connections: number, timeoutMs: number): Promise<LiveCounts> {
  const until = performance.now() + timeoutMs;
  let c = await ask<LiveCounts>(child, "counts");
  while (!isIdle(c, connections) && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    c = await ask<LiveCounts>(child, "counts");
  }
  return live(c);
}

/** p50 / p99 / p99.9 and count of a sample (ms). */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export function summarize(xs: number[]): Summary {
  const s = xs.filter(Number.isFinite);
  return { n: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99), p999: quantile(s, 0.999), max: s.length ? s[s.length - 1] : NaN };
}

/** Least-squares slope of y against x (units of y per unit of x); NaN with fewer than 2 points. */
export function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/** Adds `b`'s numeric fields into `a` (for totals over clients). */
export function addInto(a: Record<string, number>, b: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(b)) if (typeof v === "number") a[k] = (a[k] ?? 0) + v;
}
