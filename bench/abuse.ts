// BENCH=abuse: what each attack costs an honest client, on a Bun server and on a Deno server. The
// same children as tests/abuse/abuse.test.ts: a fresh production-shaped server (_server.ts) per
// row, the honest client (_honest.ts, one "echo" call at a time, at most one per 2 ms, 2 s
// timeout) in its own process, and the attacker scripts, each re-run back to back (a new process
// and connection each time) so that the attack lasts ATTACK_MS. First a row with no attack: the
// reference for the p99 ratio. Server RSS: idle = after warm-up, before the attack; peak = the
// largest sample (every 200 ms) from the attack on. Writes bench/results/abuse.{json,md}.
//
//   bun bench/abuse.ts                 (ATTACK_MS=5000 BASELINE_MS=2000)

import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { CLOSE } from "../tests/abuse/_config.ts";
import { type AttackName, ATTACKS, runScenario, type ScenarioResult } from "../tests/abuse/_harness.ts";

const ROOT = join(import.meta.dirname ?? ".", "..");
const ATTACK_MS = Number(process.env.ATTACK_MS ?? 5000);
const BASELINE_MS = Number(process.env.BASELINE_MS ?? 2000);
/** The goals reported against. */
const P99_GOAL = 3;
const RSS_GOAL = 2;

const LABELS: Record<AttackName | "none", string> = {
  none: "no attack",
  connectBurst: "(1) 1,000-connection burst + 100 HELLOs",
  silentStreams: "(2) max streams, never a frame",
  rapidReset: "(3) rapid reset",
  eventFlood: "(4) 100,000-event flood",
  garbage: "(5) oversize + garbage frames",
  slowloris: "(6) slowloris",
  slowReader: "(7) subscriber never reads",
  denied: "(8) denied names",
};

// deno-lint-ignore no-explicit-any -- an attacker's JSON result, read field by field
type A = Record<string, any>;
const sum = (xs: A[], f: (a: A) => number) => xs.reduce((n, a) => n + (Number(f(a)) || 0), 0);
/** The close codes the attacker runs saw, as "0x107 ×3". */
function closeCodes(xs: Record<string, unknown>[]): string {
  const by = new Map<string, number>();
  for (const a of xs) {
    const c = (a.close as { code?: number } | null)?.code;
    const k = c === undefined ? "not closed" : `0x${c.toString(16)}`;
    by.set(k, (by.get(k) ?? 0) + 1);
  }
  return [...by].map(([k, n]) => `${k} ×${n}`).join(", ");
}

const count = (x: number) => x.toLocaleString("en-US");
const hex = (c: number | undefined) => (c === undefined ? "none" : `0x${c.toString(16)}`);
const codes = (xs: A[]) => {
  const m = new Map<string, number>();
  for (const a of xs) m.set(hex(a.close?.code), (m.get(hex(a.close?.code)) ?? 0) + 1);
  return [...m].map(([k, v]) => `${k} ×${v}`).join(", ");
};

/** What the server did to the attacker, from the attackers' own view and the server's counters. */
function verdict(r: ScenarioResult): string {
  const xs = r.attackers as A[];
  const d = r.rejectedDelta;
  const runs = `${xs.length} run${xs.length === 1 ? "" : "s"}`;
  const failed = xs.filter((a) => !a.ok).length;
  const fail = failed
    ? `; ${failed} attacker run(s) failed: ${String(xs.find((a) => !a.ok)?.error).slice(0, 120)}`
    : "";
  switch (r.attack) {
    case "none":
      return "–";
    case "connectBurst":
      return `${runs}: of ${count(sum(xs, (a) => a.attempts))} attempts, ${
        count(sum(xs, (a) => a.refused))
      } refused (0x106 or QUIC CONNECTION_REFUSED; server counted ${
        count(d.addressLimit + d.handshakeLimit + d.connectionLimit)
      }: per address ${count(d.addressLimit)}, pending handshakes ${count(d.handshakeLimit)}), ${
        count(sum(xs, (a) => a.timedOut))
      } closed 0x105 at the handshake timeout, ${
        count(sum(xs, (a) => a.welcomed))
      } admitted; at most ${r.maxDuring.handshaking} handshaking and ${r.maxDuring.connections} connections at once${fail}`;
    case "silentStreams":
      return `${runs}: ${count(sum(xs, (a) => a.ended))} of ${count(sum(xs, (a) => a.opened))} streams ended at ${
        xs[0]?.firstEndedMs
      }–${xs[0]?.lastEndedMs} ms (firstFrameTimeout +${
        count(d.firstFrameTimeout)
      }); closed ${closeCodes(xs)} once past maxResets silent streams (tooManyResets +${count(d.tooManyResets)})${fail}`;
    case "rapidReset":
      return `${runs}: closed ${codes(xs)} (GOAWAY RESOURCE_EXHAUSTED) after ${Math.min(...xs.map((a) => a.sent))}–${
        Math.max(...xs.map((a) => a.sent))
      } resets, ${Math.min(...xs.map((a) => a.closedAtMs))}–${
        Math.max(...xs.map((a) => a.closedAtMs))
      } ms; tooManyResets +${d.tooManyResets}${fail}`;
    case "eventFlood":
      return `${runs}: ${count(sum(xs, (a) => a.written))} events written; the server read ${
        count(sum(xs, (a) => a.received))
      } (about ${
        count(Math.round(sum(xs, (a) => a.readPerSecond) / Math.max(1, xs.length)))
      }/s: it pauses reading a flooding lane), delivered ${count(sum(xs, (a) => a.ticks))} and dropped ${
        count(sum(xs, (a) => a.rateLimited))
      } (rateLimited +${count(d.rateLimited)}); connection kept${fail}`;
    case "garbage":
      return `${runs}: ${
        count(sum(xs, (a) => a.oversize?.RESOURCE_EXHAUSTED ?? 0))
      } oversize frames refused RESOURCE_EXHAUSTED (oversizeFrames +${d.oversizeFrames}), ${
        count(sum(xs, (a) => a.garbage?.DATA_LOSS ?? 0))
      } garbage streams DATA_LOSS (malformedFrames +${d.malformedFrames}; ${
        count(sum(xs, (a) => a.uniWritten))
      } garbage event lanes: +${
        count(sum(xs, (a) => a.countedFor?.uniGarbage?.malformedFrames ?? 0))
      }); connection kept${fail}`;
    case "slowloris":
      return `${runs}: ${count(sum(xs, (a) => a.endedCount))} trickled streams ended at ${
        Math.min(...xs.map((a) => a.endedMinMs))
      }–${
        Math.max(...xs.map((a) => a.endedMaxMs))
      } ms (firstFrameTimeout +${d.firstFrameTimeout}); handler never ran; connection kept${fail}`;
    case "slowReader":
      return `${runs}: disconnected ${codes(xs)} after ${Math.min(...xs.map((a) => a.closedAfterMs ?? Infinity))}–${
        Math.max(...xs.map((a) => a.closedAfterMs ?? 0))
      } ms (GOAWAY RESOURCE_EXHAUSTED; slowConsumer +${d.slowConsumer}; 0x108 expected: ${
        hex(CLOSE.SLOW_CONSUMER)
      })${fail}`;
    case "denied":
      return `${runs}: ${count(sum(xs, (a) => a.calls?.PERMISSION_DENIED ?? 0))} calls and ${
        count(sum(xs, (a) => a.streams?.PERMISSION_DENIED ?? 0))
      } stream opens PERMISSION_DENIED, ${count(sum(xs, (a) => a.emitted))} events dropped (permissionDenied +${
        count(d.permissionDenied)
      }); connection kept, allowed calls ${sum(xs, (a) => a.allowed?.ok)}/${sum(xs, (a) => a.allowed?.made)} ok${fail}`;
  }
}

const t0 = performance.now();
const results: ScenarioResult[] = [];
for (const rt of ["bun", "deno"] as const) {
  for (const attack of ["none", ...Object.keys(ATTACKS)] as (AttackName | "none")[]) {
    const t = performance.now();
    try {
      const r = await runScenario(rt, attack, {
        baselineMs: BASELINE_MS,
        afterMs: 1000,
        noAttackMs: ATTACK_MS,
        repeatUntilMs: ATTACK_MS,
      });
      results.push(r);
      const p = r.phases.attack; // for "none": the same window with no attacker
      console.error(
        `[abuse] ${rt} ${attack}: ${
          r.attackers.length || "–"
        } run(s), honest p50/p99 ${p.p50}/${p.p99} ms, ${p.reqPerSec} req/s, ${r.honest.failureCount} failed; RSS ${r.rss.idleMB} → ${r.rss.peakMB} MB (${
          ((performance.now() - t) / 1000).toFixed(1)
        } s)`,
      );
    } catch (e) {
      console.error(`[abuse] ${rt} ${attack}: ${(e as Error).message}`);
    }
  }
}

interface Row {
  runtime: string;
  attack: AttackName | "none";
  label: string;
  runs: number;
  honest: { p50: number; p99: number; max: number; reqPerSec: number; calls: number; failed: number };
  p99Ratio: number;
  rss: { idleMB: number; peakMB: number; ratio: number };
  meetsP99: boolean;
  meetsRss: boolean;
  server: string;
}
const rows: Row[] = results.map((r) => {
  const none = results.find((x) => x.server === r.server && x.attack === "none");
  const p = r.phases.attack;
  const ref = none?.phases.attack.p99 ?? NaN;
  const p99Ratio = p.p99 / ref;
  const ratio = r.rss.peakMB / r.rss.idleMB;
  return {
    runtime: r.server,
    attack: r.attack,
    label: LABELS[r.attack],
    runs: r.attackers.length,
    honest: {
      p50: p.p50,
      p99: p.p99,
      max: p.max,
      reqPerSec: p.reqPerSec,
      calls: p.calls,
      failed: r.honest.failureCount,
    },
    p99Ratio: Math.round(p99Ratio * 100) / 100,
    rss: { idleMB: r.rss.idleMB, peakMB: r.rss.peakMB, ratio: Math.round(ratio * 100) / 100 },
    meetsP99: p99Ratio <= P99_GOAL,
    meetsRss: ratio < RSS_GOAL,
    server: verdict(r),
  };
});

const MACHINE = `${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}`;
const mark = (ok: boolean) => (ok ? "" : " ✗");
const md = [
  `Measured ${
    new Date().toISOString().slice(0, 10)
  } on ${MACHINE}; every process on this machine, loopback. Per row a fresh server (tests/abuse/_server.ts: ` +
  "access policy, 2,000 events/s per connection, firstFrameTimeoutMs 1500, maxOutgoingBytes 1 MiB, maxResets 100 per 10 s, " +
  "64 connections per address, 32 pending handshakes, handshake timeout 2 s, maxFrameSize 64 KiB), the honest client in its own Bun process " +
  "(one `echo` call at a time, at most one per 2 ms, 2 s timeout), and the attacker (tests/abuse/_attack_*.ts; Bun, the slow reader on Deno) " +
  `re-run back to back for ${
    ATTACK_MS / 1000
  } s. Honest latency and req/s over the attack window; ratio = p99 ÷ the same runtime's no-attack p99. ` +
  `RSS: the server's, idle = after warm-up and before the attack, peak = largest sample (every 200 ms) from the attack on. Goal: p99 within ${P99_GOAL}× and RSS under ${RSS_GOAL}× idle (✗ = missed).`,
  "",
  "| server | attack | honest p50 ms | p99 ms | req/s | p99 ÷ no attack | server RSS MB (idle → peak) | RSS ÷ idle | what the server did to the attacker |",
  "|---|---|---|---|---|---|---|---|---|",
  ...rows.map((r) =>
    `| ${r.runtime} | ${r.label} | ${r.honest.p50} | ${r.honest.p99} | ${r.honest.reqPerSec} | ${
      r.attack === "none" ? "1" : `${r.p99Ratio}×${mark(r.meetsP99)}`
    } | ${r.rss.idleMB} → ${r.rss.peakMB} | ${r.rss.ratio}×${mark(r.meetsRss)} | ${r.server.replaceAll("|", "/")} |`
  ),
  "",
  `Honest calls failed: ${results.reduce((n, r) => n + r.honest.failureCount, 0)} of ${
    count(results.reduce((n, r) => n + r.honest.totalCalls, 0))
  }.` +
  ` Goals missed: ${
    rows.filter((r) => r.attack !== "none" && (!r.meetsP99 || !r.meetsRss)).map((r) =>
      `${r.runtime} ${r.attack} (${
        [!r.meetsP99 && `p99 ${r.p99Ratio}×`, !r.meetsRss && `RSS ${r.rss.ratio}×`].filter(Boolean).join(", ")
      })`
    ).join("; ") || "none"
  }.`,
].join("\n");

writeFileSync(
  join(ROOT, "bench/results/abuse.json"),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      machine: MACHINE,
      attackMs: ATTACK_MS,
      baselineMs: BASELINE_MS,
      rows,
      scenarios: results,
    },
    null,
    1,
  ) + "\n",
);
writeFileSync(join(ROOT, "bench/results/abuse.md"), md + "\n");
console.log(md);
console.error(`[abuse] ${((performance.now() - t0) / 1000).toFixed(0)} s`);
if (results.some((r) => r.honest.failureCount > 0 || !r.serverAlive)) process.exitCode = 1;
