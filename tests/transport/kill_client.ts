// Fault-test client, run in its own process under Bun or Deno: connects with a 1.5 s idle
// timeout, gets one echo, prints "ready", then keeps reading while the test kills the server.
// Prints one JSON line: how the read ended, how long it took, and what `closed` said.
//
//   kill_client.ts <caFile> <port>

import { defaultTransport } from "../../src/transport/mod.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const { readFileSync } = await import("node:fs");
const t = await defaultTransport();
const conn = await t.connect({
  host: "127.0.0.1",
  port: Number(args[1]),
  alpn: "echostream/1",
  tls: { ca: readFileSync(args[0], "utf8") },
  idleTimeoutMs: 1500,
});
const s = await conn.openBidi();
await s.write(new Uint8Array(1000));
const it = s[Symbol.asyncIterator]();
await it.next();
console.log("ready");
const t0 = performance.now();
const result: Record<string, unknown> = { runtime: t.name };
try {
  while (!(await it.next()).done) { /* keep reading */ }
  result.outcome = "clean end";
} catch (e) {
  result.outcome = (e as { code?: string }).code ?? String(e);
  result.message = (e as Error).message;
}
result.ms = Math.round(performance.now() - t0);
result.closed = await conn.closed;
console.log(JSON.stringify(result));
(globalThis as unknown as { process: { exit(c: number): void } }).process.exit(0);
