// Remote desktop on one connection: screen frames (reliable, with backpressure), input events
// down, audio as a time-synced stream the host opens to the viewer.
//
//   bun examples/remote_desktop/main.ts [seconds=3]
//   deno run -A --unstable-net examples/remote_desktop/main.ts [seconds]

import process from "node:process";
import { startHost } from "./host.ts";
import { runViewer } from "./viewer.ts";

/** Runs a session; returns both sides' reports (and prints them through `log`). */
export async function remoteDesktopExample(seconds = 3, log: (line: string) => void = console.log) {
  const host = await startHost({ log });
  const viewer = await runViewer(host.server.address, host.server.trust.ca!, seconds);
  // The host notices the viewer's end a moment later.
  await new Promise((r) => setTimeout(r, 200));
  const h = host.report();
  log(`[host] captured ${h.captured} frames, sent ${h.sent}, skipped ${h.skipped} (a newer capture replaced them while the viewer was busy); ${h.inputs} input events applied; ${h.audioSent} audio frames sent`);
  log(`[viewer] ${viewer.frames} frames, ${viewer.mbPerSec.toFixed(1)} MB/s; input -> screen p50 ${viewer.inputToScreenMs.p50.toFixed(1)} ms p95 ${viewer.inputToScreenMs.p95.toFixed(1)} ms`);
  log(`[viewer] audio: ${viewer.audioPlayed} frames played, ${viewer.audioLate} late, latency ${viewer.audioLatencyMs.toFixed(1)} ms`);
  await host.close();
  return { host: h, viewer };
}

if (import.meta.main) {
  const [s] = ((globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2)).map(Number);
  await remoteDesktopExample(s || 3);
  process.exit(0);
}
