// A time-synced client in its own process (run under Deno or Bun by cross_runtime.test.ts): its
// clock is 3 s behind the system clock; it opens an unreliable time-synced stream to "rt.echo",
// sends 50 frames at 50 fps, receives the server's frames aligned, and prints one JSON line.
// Usage: rt_client.ts <host:port>, with {"ca": "..."} on stdin.

import { RpcClient } from "../../mod.ts";
import { systemClock } from "../../src/clock/sync.ts";
import { waitFor } from "../support/wait.ts";
import { childInput, childRuntime } from "../support/child.ts";

const { args: [address], input: { ca } } = await childInput<{ ca: string }>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const client = await RpcClient.connect(address, { ca, clock: () => systemClock() - 3000, clockSync: { intervalMs: 100 } });
// Past the startup burst: the clock model has converged before frames flow.
await waitFor(() => client.clock.stats().samples >= 10, "10 clock samples");
const s = await client.createStream("rt.echo").withTimeSync({ latencyMs: 80 }).unreliable().build();
const got: { seq: number; alignedTime: number; timestamp: number; releasedAt: number }[] = [];
const reading = (async () => {
  for (let f = await s.recvAligned(); f; f = await s.recvAligned()) {
    got.push({ seq: f.seq, alignedTime: f.alignedTime, timestamp: f.timestamp, releasedAt: s.now() });
  }
})();
const t0 = performance.now(); // 50 fps: paced on purpose
for (let i = 0; i < 50; i++) {
  const wait = t0 + i * 20 - performance.now();
  if (wait > 0) await sleep(wait);
  await s.sendWithTimestamp(new Uint8Array(160).fill(i), s.now());
}
// Every echo is back (80 ms after its timestamp) before the end marker goes.
await waitFor(() => got.length >= 50, "the 50 echoed frames", { timeoutMs: 3000 });
await s.end();
await reading;
const runtime = childRuntime;
console.log(JSON.stringify({ runtime, clock: client.clock.stats(), got, stats: s.stats() }));
await client.close();
