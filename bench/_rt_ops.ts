// Real-time benchmark, operation counts (a child of bench/realtime.ts; Bun or Deno): calls
// `realtimeOps()` from bench/realtime_ops.ts (the WASM jitter buffer and clock estimator against
// their plain-TS twins) and prints its result as one JSON line.

import { config, emit, exit, RUNTIME, VERSION } from "./_rt_util.ts";

const c = config<{ quick?: boolean }>();
try {
  const path = "./realtime_ops.ts"; // written separately; a variable so type checks pass without it
  const mod = await import(path);
  const result = await mod.realtimeOps({ quick: c.quick });
  emit({ runtime: RUNTIME, version: VERSION, result });
  exit(0);
} catch (e) {
  emit({ error: String((e as Error)?.stack ?? e) });
  exit(1);
}
