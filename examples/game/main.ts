// A match: an authoritative 30 Hz server and three players, one of them behind the impairment
// relay (20 ± 10 ms each way, 10% of packets lost). Prints what each player saw.
//
//   bun examples/game/main.ts [seconds=3]
//   deno run -A --unstable-net examples/game/main.ts [seconds]

import process from "node:process";
import { startRelay } from "../../src/testing/mod.ts";
import { startGameServer } from "./server.ts";
import { type PlayerReport, runPlayer } from "./player.ts";

/** Runs a match; returns every player's report (and prints them through `log`). */
export async function gameExample(seconds = 3, log: (line: string) => void = console.log) {
  const game = await startGameServer({ log });
  const ca = game.server.trust.ca!;
  const port = Number(game.server.address.split(":").pop());
  const lossy = { delayMs: 20, jitterMs: 10, loss: 0.1 };
  const relay = await startRelay({ target: { host: "127.0.0.1", port }, toServer: lossy, toClient: lossy, seed: 7 });
  const reports: PlayerReport[] = await Promise.all([
    runPlayer(game.server.address, ca, "ann", seconds),
    runPlayer(game.server.address, ca, "bob", seconds),
    runPlayer(`127.0.0.1:${relay.address.port}`, ca, "cyd-lossy", seconds),
  ]);
  await new Promise((r) => setTimeout(r, 300)); // the voice streams' last frames play out
  for (const r of reports) {
    log(
      `[${r.name}] ${r.snapshots} snapshots over ${r.span} ticks (${((100 * r.snapshots) / r.span).toFixed(1)}%), longest gap ${r.longestGap} ticks, ` +
        `input -> snapshot p50 ${r.inputDelayMs.p50.toFixed(1)} ms p95 ${r.inputDelayMs.p95.toFixed(1)} ms, events: ${r.events.filter((e) => e.startsWith("join")).length} joins, ${r.events.filter((e) => e.startsWith("leader")).length} leader updates`,
    );
  }
  for (const v of game.voice) {
    const sent = reports.find((r) => r.name === v.name)?.voiceSent;
    log(`[server] voice from ${v.name}: ${v.frames} of ${sent} frames played, ${v.late} late (dropped), ${v.lost} lost, latency ${v.latencyMs.toFixed(1)} ms`);
  }
  const s = relay.stats();
  log(`[relay] dropped ${s.toServer.dropped} of ${s.toServer.received} packets up, ${s.toClient.dropped} of ${s.toClient.received} down`);
  await relay.close();
  await game.close();
  return { reports, voice: game.voice };
}

if (import.meta.main) {
  const [s] = ((globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2)).map(Number);
  await gameExample(s || 3);
  process.exit(0);
}
