// BENCH=soak: 50 client processes × 2 minutes against one server, 2% of UDP packets dropped each
// way by iptables in the server's network namespace (tests/reliability/_soak_run.ts has the
// set-up and the why). Checks exactly-once / in-order / byte-exact delivery like the short soak
// in `npm test`, and measures latency per kind of traffic, throughput, RSS over time and live
// counts. Writes bench/results/soak.md. Needs root. Bun.
//
//   bun bench/soak.ts                                    (50 × 120 s, 2%: about 3 minutes)
//   SOAK_CLIENTS=10 SOAK_SECONDS=30 SOAK_LOSS=0.05 SOAK_PACE=1 SOAK_FPS=50 bun bench/soak.ts

import { writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { runSoak, type SoakReport } from "../tests/reliability/_soak_run.ts";

const ROOT = join(import.meta.dirname ?? ".", "..");
const clients = Number(process.env.SOAK_CLIENTS ?? 50);
const seconds = Number(process.env.SOAK_SECONDS ?? 120);
const loss = Number(process.env.SOAK_LOSS ?? 0.02);
// Receiving a 50 fps time-synced stream costs about 5% of a core here; 50 clients at full pace and
// 50 fps would need over two cores on this two-core machine, so the long run is slowed down.
const pace = Number(process.env.SOAK_PACE ?? 3);
const mediaFps = Number(process.env.SOAK_FPS ?? 10);
const t0 = performance.now();
const loadBefore = loadavg()[0];
const log = (m: string) => console.error(`[soak ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}`);

const r = await runSoak({ clients, durationMs: seconds * 1000, loss, pace, mediaFps, sampleEveryMs: 5000, warmupMs: 30_000, log });
const loadAfter = loadavg()[0];
const md = render(r);
writeFileSync(join(ROOT, "bench/results/soak.md"), md);
console.log(md);
if (r.violations.length) process.exitCode = 1;

/** Violations grouped by their text with client ids, numbers and JSON taken out. */
function byKind(violations: string[]): string {
  const kinds = new Map<string, number>();
  for (const v of violations) {
    const k = v.replace(/^c\d+: /, "").replace(/[{].*$/, "").replace(/\d+/g, "N").slice(0, 120);
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  return [...kinds].map(([k, n]) => `${n} × "${k.trim()}"`).join("; ");
}

function render(r: SoakReport): string {
  const t = r.totals;
  const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "–");
  const pct = (x: number) => `${f(x * 100)}%`;
  const LABELS: Record<string, string> = {
    request: "request, no deadline (echo, 0–1 KiB)",
    requestWithDeadline: "request with 250 ms deadline, answered (minus handler time)",
    eventToServer: "event client → server (one-way, clock-mapped)",
    eventToClient: "event server → client (one-way, clock-mapped)",
    streamFrameRtt: "reliable stream frame echo (1 B–16 KiB frames)",
    streamRound: "reliable stream round (16–256 KiB there and back)",
    datagramTransitP50: "datagram transit p50 per stream (jitter buffer)",
    datagramTransitP99: "datagram transit p99 per stream (jitter buffer)",
  };
  const lat = Object.entries(r.latencyMs).map(([k, s]) => `| ${LABELS[k] ?? k} | ${s.n} | ${f(s.p50)} | ${f(s.p99)} | ${f(s.p999)} | ${f(s.max)} |`);
  const m = r.memory;
  const step = Math.max(1, Math.round(m.sampleTimesS.length / 14));
  const mem = m.sampleTimesS.map((s, i) => [s, m.serverRssMiB[i], m.clientRssMeanMiB[i]]).filter((_, i) => i % step === 0 || i === m.sampleTimesS.length - 1)
    .map(([s, a, b]) => `| ${f(s, 0)} | ${f(a, 1)} | ${f(b, 1)} |`);
  const lines = [
    `# Soak: ${r.options.clients} clients × ${r.options.durationMs / 1000} s at ${pct(r.options.loss)} loss each way`,
    "",
    `${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Bun ${process.versions.bun ?? "?"} (server and clients). ` +
    `Wall time ${f(r.wallMs / 1000, 0)} s. Load average (1 min) ${f(loadBefore, 1)} before, ${f(loadAfter, 1)} after: the machine is shared with other work, ` +
    "so the latency tails include CPU contention.",
    "",
    "Set-up: the server in network namespace A, each client its own Bun process in namespace B, joined by a veth pair; " +
    "iptables in A drops UDP on the veth at random (`-m statistic --mode random`) on INPUT and OUTPUT, so each direction crosses one rule once. " +
    `Measured drop rate: ${pct(r.packets.lossIn)} to the server (${r.packets.dropped[0]} of ${r.packets.seen[0]} packets), ${pct(r.packets.lossOut)} from it (${r.packets.dropped[1]} of ${r.packets.seen[1]}). ` +
    `UDP receive-buffer overflows (kernel drops on top of those): ${r.packets.rcvbufErrors[0]} in the server's namespace, ${r.packets.rcvbufErrors[1]} in the clients'.`,
    "",
    `Per client, pace ${r.options.pace ?? 1} (pauses between operations × ${r.options.pace ?? 1}): echo requests without a deadline (~${f(10 / (r.options.pace ?? 1), 1)}/s), ` +
    `requests with a 250 ms deadline to a handler that sleeps 0–360 ms (~${f(10 / (r.options.pace ?? 1), 1)}/s; those over 250 ms must fail DEADLINE_EXCEEDED), ` +
    `numbered events both ways (~${f(20 / (r.options.pace ?? 1), 1)}/s up with bursts of 10, 10/s down), reliable byte-pattern echo streams (16–256 KiB) one after another, ` +
    `and time-synced datagram streams (\`withTimeSync().unreliable()\`, 160 B at ${r.options.mediaFps ?? 50} fps for 3–8 s, echoed back).`,
    "",
    `## Verdict: ${r.violations.length === 0 ? "no violation" : `${r.violations.length} violation(s)`}`,
    "",
    ...(r.violations.length ? [`By kind: ${byKind(r.violations)}.`, "", ...r.violations.slice(0, 20).map((v) => `- ${v}`), r.violations.length > 20 ? `- … and ${r.violations.length - 20} more` : "", ""] : []),
    `Failure codes seen by clients: ${Object.keys(r.codes).length ? Object.entries(r.codes).map(([k, n]) => `${k} × ${n}`).join(", ") : "none"}.`,
    "",
    "| counter | value |",
    "|---|---|",
    ...Object.entries(t).map(([k, v]) => `| ${k} | ${v} |`),
    "",
    "## Latency (ms)",
    "",
    "| kind | n | p50 | p99 | p99.9 | max |",
    "|---|---|---|---|---|---|",
    ...lat,
    "",
    "## Throughput (whole run, all clients)",
    "",
    `requests ${f(r.throughputPerS.requests, 0)}/s, events to the server ${f(r.throughputPerS.eventsToServer, 0)}/s, events to clients ${f(r.throughputPerS.eventsToClient, 0)}/s, ` +
    `reliable stream payload ${f(r.throughputPerS.streamMiBps)} MiB/s each way, datagrams ${f(r.throughputPerS.datagramsSent, 0)}/s sent by clients.`,
    "",
    "## Memory (RSS, sampled every 5 s from /proc)",
    "",
    `Slope after warm-up (30 s after the last client started, least squares): server ${f(m.serverSlopeMiBPerMin)} MiB/min, mean client ${f(m.clientSlopeMiBPerMin)} MiB/min.`,
    "",
    "| t (s) | server MiB | mean client MiB |",
    "|---|---|---|",
    ...mem,
    "",
    `CPU (user + system over the run): server ${f(r.cpu.serverCorePct, 1)}% of a core, mean client ${f(r.cpu.clientMeanCorePct, 1)}%.`,
    "",
    "## Live counts on the server",
    "",
    `Peak while running: ${Object.entries(r.counts.peak).filter(([k]) => ["connections", "handshaking", "openStreams", "datagramRoutes", "pendingRequests", "inFlight"].includes(k)).map(([k, v]) => `${k} ${v}`).join(", ")}. ` +
    `After every client left: ${Object.entries(r.counts.final).map(([k, v]) => `${k} ${v}`).join(", ")}.`,
    "",
  ];
  return lines.join("\n");
}
