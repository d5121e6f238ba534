// Shared by bench/loss.ts and its child processes (bench/_loss_server.ts, bench/_loss_client.ts).

/** The grpc-js unary echo method. */
export const GRPC_ECHO = "/bench.Echo/Echo";

/** What the client measures: OURS (stream reuse, the default), FRESH (reuse off), GRPC, RAW, RAW_OPEN. */
export type ImplName = "ours" | "fresh" | "grpc" | "raw" | "rawOpen";

/** One client run's answer, the last stdout line of bench/_loss_client.ts. */
export interface ClientResult {
  event: "result";
  impl: ImplName;
  runtime: string;
  version: string;
  /** Latency of each measured call that succeeded, ms (in completion order). */
  latMs: number[];
  /** Wall time of the measured phase, ms (first call issued to last settled). */
  elapsedMs: number;
  /** Connect time (ready to call), ms. */
  connectMs: number;
  issued: number;
  completed: number;
  /** Failed calls by error code / message head. */
  errors: Record<string, number>;
  /** Calls still outstanding when the time limit (plus grace) ran out. */
  stuck: number;
  /** The measured phase hit its time limit. */
  timedOut: boolean;
}

/** Nearest-rank quantile of an ascending array. */
export function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export function summarize(xs: number[]): Summary {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return {
    n: s.length,
    p50: quantile(s, 0.5),
    p99: quantile(s, 0.99),
    p999: quantile(s, 0.999),
    max: s.length ? s[s.length - 1] : NaN,
  };
}
