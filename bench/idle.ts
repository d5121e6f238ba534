// BENCH=idle: is a connection that stayed idle for IDLE_MS (default 10 minutes) still usable, and
// what does keeping it alive cost? Every Bun/Deno client × server pair, each in its own process,
// with clock sync on (PINGs every 250 ms by default) and off (only the 20 s keep-alive PING on
// the control stream). Writes bench/results/idle.{json,md}.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runForJson, runtimeCommand, spawnServer } from "../tests/support/process.ts";

const ROOT = join(import.meta.dir, "..");
const SCENARIO = join(ROOT, "tests/rpc/scenario.ts");
const CLIENT = join(import.meta.dir, "_idle_client.ts");
const IDLE_MS = Number(process.env.IDLE_MS ?? 600_000);
const RUNTIMES = ["bun", "deno"] as const;

const servers: Record<string, { address: string; ca: string; stop: () => Promise<void> }> = {};
for (const rt of RUNTIMES) {
  const { info, stop } = await spawnServer<{ address: string; ca: string }>(runtimeCommand(rt, SCENARIO, ["server"]));
  servers[rt] = { ...info, stop };
}
console.log(`idle benchmark: ${IDLE_MS / 1000} s idle, 4 pairs × clock sync on/off, all at once`);
const runs: Promise<Record<string, unknown>>[] = [];
for (const server of RUNTIMES) {
  for (const client of RUNTIMES) {
    for (const mode of ["sync", "nosync"]) {
      runs.push(
        runForJson(runtimeCommand(client, CLIENT, [servers[server].address, String(IDLE_MS), mode]), { ca: servers[server].ca }, IDLE_MS + 60_000)
          .then((r) => ({ server, ...r }), (e) => ({ server, client, mode, error: String(e).slice(0, 300) })),
      );
    }
  }
}
const results = await Promise.all(runs);
await Promise.all(Object.values(servers).map((s) => s.stop()));
const kb = (b: unknown) => (typeof b === "number" ? (b / 1024).toFixed(1) : "n/a (Deno has no connection stats)");
const table = [
  `Measured ${new Date().toISOString().slice(0, 10)}; each client in its own process, idle ${(IDLE_MS / 60_000).toFixed(1)} min after one call, then a call and a stream round trip. Cost: QUIC bytes both ways during the idle time, per minute, as the client's stack counts them.`,
  "",
  "| client → server | client clock sync (server pings as usual) | usable after idle | reconnects | KiB/min |",
  "|---|---|---|---|---|",
  ...results.map((r) =>
    `| ${r.runtime ?? r.client} → ${r.server} | ${r.mode === "sync" ? "on (250 ms)" : "off (20 s keep-alive)"} | ${r.after === "after" && r.streamOk ? "yes" : `**no**: ${r.error ?? "stream failed"}`} | ${r.reconnects ?? "?"} | ${kb(r.bytesPerMinute)} |`
  ),
].join("\n");
console.log(table);
writeFileSync(join(ROOT, "bench/results/idle.json"), JSON.stringify({ date: new Date().toISOString(), idleMs: IDLE_MS, results }, null, 2) + "\n");
writeFileSync(join(ROOT, "bench/results/idle.md"), table + "\n");
const ok = results.every((r) => r.after === "after" && r.streamOk);
process.exit(ok ? 0 : 1);
