// One idle client for BENCH=idle (run by bench/idle.ts under Bun or Deno): connects, makes a
// call, stays idle for IDLE_MS, then calls and round-trips a stream again. Reads { ca } as JSON on
// stdin; prints one JSON line with what worked and what the idle connection cost.
//
//   _idle_client.ts <address> <idleMs> <sync|nosync>

import { RpcClient } from "../src/rpc/client.ts";
import { inspectPeer } from "../src/rpc/peer.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const [address, idleArg, mode] = args;
const idleMs = Number(idleArg);
const { default: proc } = await import("node:process");
let line = "";
for await (const chunk of proc.stdin) {
  line += String(chunk);
  if (line.includes("\n")) break;
}
const { ca } = JSON.parse(line.split("\n")[0]);

const runtime = (globalThis as { Deno?: unknown }).Deno ? "deno" : "bun";
const client = await RpcClient.connect(address, { ca, clockSync: mode === "sync" ? {} : false });
const conn = inspectPeer(client.peer).conn;
const before = await client.request("echo", "before");
const s0 = conn.stats();
const t0 = performance.now();
await new Promise((r) => setTimeout(r, idleMs));
const idleFor = performance.now() - t0;
const s1 = conn.stats();
const connectedAfterIdle = client.connected;
let after: unknown;
let streamOk = false;
let error: string | undefined;
try {
  after = await client.request("echo", "after", { timeoutMs: 5000 });
  const st = await client.createStream("one");
  await st.send(new Uint8Array([1, 2, 3]));
  const back = await st.recv();
  await st.end();
  streamOk = back?.length === 3;
} catch (e) {
  error = String(e);
}
const diff = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : b - a);
const minutes = idleFor / 60_000;
const sent = diff(s0.bytesSent, s1.bytesSent);
const received = diff(s0.bytesReceived, s1.bytesReceived);
console.log(JSON.stringify({
  runtime,
  mode,
  idleMs: Math.round(idleFor),
  before,
  after,
  connectedAfterIdle,
  streamOk,
  error,
  bytesSent: sent,
  bytesReceived: received,
  bytesPerMinute: sent === undefined || received === undefined ? undefined : Math.round((sent + received) / minutes),
  reconnects: client.stats().reconnects,
}));
await client.close();
(globalThis as { Deno?: { exit(c: number): void } }).Deno?.exit(0);
