// BENCH=churn: stream and request churn on one long-lived connection, for every Bun/Deno client ×
// server pair (separate processes; the same children as tests/reliability/churn.test.ts): waves
// of 1,000 EchoStreams open at once (the server allows 1,024) with requests interleaved, some cut
// by their deadline and some cancelled. Writes bench/results/churn.{json,md}: per pair the wall
// time, streams/s, requests/s, whether every wave came back to baseline, and RSS around each wave.
//
//   bun bench/churn.ts                    (100,000 streams and 100,000 requests per pair)
//   CHURN_STREAMS=20000 CHURN_REQUESTS=20000 CHURN_WAVE=1000 CHURN_FRAMES=3 bun bench/churn.ts

import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type ChurnResult, runChurnClient, startChurnServer } from "../tests/reliability/churn_pair.ts";

const ROOT = join(import.meta.dirname ?? ".", "..");
const num = (k: string, d: number) => Number(process.env[k] ?? d);
const cfg = {
  streams: num("CHURN_STREAMS", 100_000),
  requests: num("CHURN_REQUESTS", 100_000),
  wave: num("CHURN_WAVE", 1000),
  frames: num("CHURN_FRAMES", 3),
  waveTimeoutMs: 60_000,
};
const waves = Math.ceil(cfg.streams / cfg.wave);

interface Row {
  pair: string;
  result?: ChurnResult;
  error?: string;
  wallMs: number;
}
const rows: Row[] = [];
for (const serverRt of ["bun", "deno"] as const) {
  for (const clientRt of ["bun", "deno"] as const) {
    const pair = `${clientRt} → ${serverRt}`;
    console.error(`[churn] ${pair}: ${cfg.streams} streams in waves of ${cfg.wave}, ${cfg.requests} requests`);
    const t0 = performance.now();
    const server = await startChurnServer(serverRt);
    try {
      const result = await runChurnClient(clientRt, server, cfg, waves * cfg.waveTimeoutMs + 60_000);
      rows.push({ pair, result, wallMs: performance.now() - t0 });
    } catch (e) {
      rows.push({ pair, error: String((e as Error).message ?? e).slice(0, 2000), wallMs: performance.now() - t0 });
    } finally {
      await server.stop();
    }
  }
}

writeFileSync(join(ROOT, "bench/results/churn.json"), JSON.stringify({ date: new Date().toISOString(), cfg, pairs: rows.map(summary) }, null, 1) + "\n");
const md = render();
writeFileSync(join(ROOT, "bench/results/churn.md"), md);
console.log(md);
if (rows.some((r) => !ok(r))) process.exitCode = 1;

/** A pair's result for the JSON file: totals, and per wave [ms, client RSS before, after, server RSS after]. */
function summary(r: Row) {
  const w = r.result?.waves ?? [];
  const sum = (f: (x: (typeof w)[number]) => number) => w.reduce((n, x) => n + f(x), 0);
  return {
    pair: r.pair,
    ok: ok(r),
    error: r.error,
    wallMs: Math.round(r.wallMs),
    clientMs: r.result?.ms,
    streams: sum((x) => x.opened),
    framesSent: sum((x) => x.framesSent),
    framesEchoed: sum((x) => x.framesEchoed),
    requests: sum((x) => x.requests.sent),
    answered: sum((x) => x.requests.ok),
    deadline: sum((x) => x.requests.deadline),
    cancelled: sum((x) => x.requests.cancelled),
    slow: r.result?.slow,
    stalled: w.find((x) => x.stalled)?.stalled,
    waves: w.map((x) => [x.ms, x.rssBefore, x.rssAfter, x.serverRssAfter, x.baseline ? 1 : 0]),
  };
}

function ok(r: Row): boolean {
  const w = r.result?.waves ?? [];
  return !r.error && w.length === waves && w.every((x) => !x.stalled && x.baseline && x.badFrames === 0 && x.requests.bad === 0 && Object.keys(x.requests.other).length === 0);
}

function render(): string {
  const mib = (n: number) => n.toFixed(0);
  const out = [
    "# Churn benchmark",
    "",
    `${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"} (shared), loopback. Per pair: one connection, ` +
    `${cfg.streams.toLocaleString("en")} EchoStreams in waves of ${cfg.wave} open at once (${cfg.frames} frames echoed each, content-checked), ` +
    `${cfg.requests.toLocaleString("en")} requests interleaved (8 in 10 echoes, 1 cut by a 15 ms deadline, 1 cancelled by its signal after 5 ms). ` +
    "Rates are over the client's run (both kinds at once, so each rate undercounts what it would reach alone). " +
    "Baseline: after every wave, EchoStreams, pending and served requests and the transport's incoming streams back to zero on both sides. " +
    "`bun bench/churn.ts` (`BENCH=churn`); sizes: CHURN_STREAMS, CHURN_REQUESTS, CHURN_WAVE, CHURN_FRAMES.",
    "",
    "| client → server | result | waves | wall time | streams/s | requests/s | client RSS MiB first → last wave | server RSS MiB start → last wave |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const res = r.result;
    if (!res) {
      out.push(`| ${r.pair} | **failed**: ${r.error?.split("\n")[0].slice(0, 200)} | | ${(r.wallMs / 1000).toFixed(1)} s | | | | |`);
      continue;
    }
    const w = res.waves;
    const streams = w.reduce((n, x) => n + x.opened, 0);
    const reqs = w.reduce((n, x) => n + x.requests.sent, 0);
    const s = res.ms / 1000;
    const stall = w.find((x) => x.stalled)?.stalled;
    out.push(
      `| ${r.pair} | ${ok(r) ? "ok" : `**failed**${stall ? `: stalled ${stall}` : ""}`} | ${w.length}/${waves} | ${s.toFixed(1)} s | ${(streams / s).toFixed(0)} | ${(reqs / s).toFixed(0)} | ` +
        `${mib(w[0]?.rssBefore ?? 0)} → ${mib(w.at(-1)?.rssAfter ?? 0)} | ${mib(res.serverRss.before)} → ${mib(w.at(-1)?.serverRssAfter ?? 0)} |`,
    );
  }
  out.push("", "## RSS around each wave (MiB)", "");
  for (const r of rows) {
    if (!r.result) continue;
    out.push(`<details><summary>${r.pair}</summary>`, "", "| wave | ms | client before | client after | server after | baseline |", "|---|---|---|---|---|---|");
    r.result.waves.forEach((x, i) => out.push(`| ${i + 1} | ${x.ms} | ${mib(x.rssBefore)} | ${mib(x.rssAfter)} | ${mib(x.serverRssAfter)} | ${x.baseline ? "yes" : "**no**"} |`));
    out.push("", "</details>", "");
  }
  return out.join("\n") + "\n";
}
