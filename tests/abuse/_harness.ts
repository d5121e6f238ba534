// Runs one abuse scenario: a fresh _server.ts child on one runtime, the honest client (_honest.ts)
// in its own process calling "echo" throughout, and one attacker script in its own process.
// Phases, on the wall clock shared by the processes: `baselineMs` of honest traffic alone, the
// attack, `afterMs` of settling; then the honest client stops, takes a last snapshot of the
// server and checks that a fresh connection is served. Shared by abuse.test.ts and bench/abuse.ts.

import { join } from "node:path";
import { runForJson, runtimeCommand, spawnServer } from "../support/process.ts";
import type { ServerSnapshot } from "./_config.ts";
import type { HonestConfig, HonestResult, Sample } from "./_honest.ts";

export type Rt = "bun" | "deno";

const DIR = import.meta.dir;
const HONEST = join(DIR, "_honest.ts");

/** The attacks: script, the runtime the attacker runs on, and its parameters. */
export const ATTACKS = {
  /** (1) 1,000 QUIC connections in a burst, half of them never sending HELLO. */
  connectBurst: {
    script: "_attack_connect_burst.ts",
    rt: "bun",
    params: { count: 1000, helloEvery: 2, concurrency: 250, holdMs: 3000, helloWave: 100 },
  },
  /** (2) Streams opened up to the server's limit, never a complete frame. */
  silentStreams: { script: "_attack_silent_streams.ts", rt: "bun", params: { streams: 2048, runMs: 5000 } },
  /** (3) h2 rapid reset: REQUEST then an immediate reset, thousands of times. */
  rapidReset: { script: "_attack_rapid_reset.ts", rt: "bun", params: { count: 5000, slowMs: 2000 } },
  /** (4) 100,000 events as fast as possible. */
  eventFlood: {
    script: "_attack_event_flood.ts",
    rt: "bun",
    params: { count: 100_000, batch: 1000, readWaitMs: 5000 },
  },
  /** (5) Oversize frames and garbage bytes on new streams. */
  garbage: { script: "_attack_garbage.ts", rt: "bun", params: { oversize: 50, garbage: 50, uniGarbage: 10 } },
  /** (6) Slowloris: REQUEST frames trickled a byte at a time. */
  slowloris: { script: "_attack_slowloris.ts", rt: "bun", params: { streams: 20, byteEveryMs: 100 } },
  /**
   * (7) A subscriber that never reads its broadcasts. On Deno: Bun's QUIC receiver grants credit
   * whether or not the application reads (docs/TRANSPORT.md), so a Bun process cannot stall it.
   */
  slowReader: {
    script: "_attack_slow_reader.ts",
    rt: "deno",
    params: { bcastMs: 6000, everyMs: 5, bytes: 16 * 1024, waitMs: 7000 },
  },
  /** (8) Calls, events and stream opens the policy denies, mixed with allowed calls. */
  denied: {
    script: "_attack_denied.ts",
    rt: "bun",
    params: { calls: 300, events: 200, streams: 50, allowedEvery: 10 },
  },
} as const;
export type AttackName = keyof typeof ATTACKS;

export interface ScenarioOptions {
  baselineMs?: number;
  afterMs?: number;
  /** Honest echo timeout. */
  timeoutMs?: number;
  paceMs?: number;
  statsEveryMs?: number;
  /** Overrides of the attack's parameters. */
  params?: Record<string, unknown>;
  /** The attacker is killed after this long. */
  attackTimeoutMs?: number;
  /**
   * Keep the attack going: run the attacker again (a new process, a new connection) until this
   * long has passed since the attack began. At least once. @default {0}
   */
  repeatUntilMs?: number;
}

export interface Phase {
  calls: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
  reqPerSec: number;
}

export interface ScenarioResult {
  server: Rt;
  attack: AttackName | "none";
  attackerRt: Rt | null;
  /** The (first) attacker's result. */
  attacker: Record<string, unknown> & { ok?: boolean; error?: string };
  /** Every attacker run's result, when the attack was repeated (`repeatUntilMs`). */
  attackers: (Record<string, unknown> & { ok?: boolean; error?: string })[];
  honest: Omit<HonestResult, "calls" | "samples"> & { totalCalls: number };
  /** The honest client's calls before the attack, during it, and after it. */
  phases: { baseline: Phase; attack: Phase; after: Phase; all: Phase };
  /** Server RSS, MB: idle (the last sample before the attack), peak from then on, last. */
  rss: { idleMB: number; peakMB: number; lastMB: number };
  /** The largest live counts the server reported from the attack on. */
  maxDuring: { connections: number; handshaking: number; inFlight: number; openStreams: number };
  /** Counters just before the attack, and at the end. */
  before: Sample;
  final: ServerSnapshot | { error: string };
  /** `final.stats.rejected` minus `before.rejected`. */
  rejectedDelta: Record<string, number>;
  /** Whether the server process was still running when told to stop. */
  serverAlive: boolean;
  serverExit: number | null;
  attackMs: number;
  totalMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = (b: number) => Math.round(b / 1e5) / 10;

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export function phaseOf(calls: [number, number, number][], from: number, to: number): Phase {
  const inside = calls.filter(([t]) => t >= from && t < to);
  const lat = inside.map(([, ms]) => ms).sort((a, b) => a - b);
  const seconds = Math.max(1e-3, (to - from) / 1000);
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    calls: inside.length,
    failed: inside.filter(([, , ok]) => !ok).length,
    p50: r(quantile(lat, 0.5)),
    p99: r(quantile(lat, 0.99)),
    max: r(lat[lat.length - 1] ?? NaN),
    reqPerSec: r(inside.length / seconds),
  };
}

/** Starts the honest client and waits for its "ready" line. */
async function startHonest(cfg: HonestConfig) {
  const proc = Bun.spawn(runtimeCommand("bun", HONEST, []), {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    cwd: join(DIR, "..", ".."),
  });
  proc.stdin.write(JSON.stringify(cfg) + "\n");
  proc.stdin.flush();
  const reader = proc.stdout.getReader();
  const dec = new TextDecoder();
  let text = "";
  const kill = setTimeout(() => proc.kill(9), 20_000);
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) {
        throw new Error(
          `the honest client exited before it was ready: ${text} ${await new Response(proc.stderr).text()}`,
        );
      }
      text += dec.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(kill);
  }
  const rest = (async () => {
    let out = text.slice(text.indexOf("\n") + 1);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += dec.decode(value, { stream: true });
    }
    return out;
  })();
  const stderr = new Response(proc.stderr).text();
  return {
    async finish(timeoutMs = 20_000): Promise<HonestResult> {
      proc.stdin.end();
      const kill2 = setTimeout(() => proc.kill(9), timeoutMs);
      const out = await rest;
      await proc.exited;
      clearTimeout(kill2);
      const line = out.trim().split("\n").pop() ?? "";
      if (!line.startsWith("{")) {
        throw new Error(
          `the honest client printed no result (exit ${proc.exitCode}): ${out.slice(-2000)} ${
            (await stderr).slice(-2000)
          }`,
        );
      }
      return JSON.parse(line) as HonestResult;
    },
    kill: () => proc.kill(9),
  };
}

/** Runs `attack` (or "none": honest traffic only, for `noAttackMs`) against a fresh server on `server`. */
export async function runScenario(
  server: Rt,
  attack: AttackName | "none",
  o: ScenarioOptions & { noAttackMs?: number } = {},
): Promise<ScenarioResult> {
  const t0 = performance.now();
  const baselineMs = o.baselineMs ?? 1000;
  const afterMs = o.afterMs ?? 1000;
  const srv = await spawnServer<{ address: string; ca: string; runtime: string }>(
    runtimeCommand(server, join(DIR, "_server.ts"), []),
  );
  let honest: Awaited<ReturnType<typeof startHonest>> | undefined;
  try {
    honest = await startHonest({
      address: srv.info.address,
      ca: srv.info.ca,
      timeoutMs: o.timeoutMs ?? 2000,
      paceMs: o.paceMs ?? 2,
      statsEveryMs: o.statsEveryMs ?? 200,
      warmup: 200,
    });
    const tBase = Date.now();
    await sleep(baselineMs);
    const tAttack = Date.now();
    const attackers: ScenarioResult["attackers"] = [];
    let attackerRt: Rt | null = null;
    if (attack === "none") {
      await sleep(o.noAttackMs ?? 3000);
    } else {
      const a = ATTACKS[attack];
      attackerRt = a.rt;
      const input = { address: srv.info.address, ca: srv.info.ca, params: { ...a.params, ...o.params } };
      do {
        try {
          attackers.push(
            await runForJson(runtimeCommand(a.rt, join(DIR, a.script), []), input, o.attackTimeoutMs ?? 30_000),
          );
        } catch (e) {
          attackers.push({ ok: false, error: String((e as Error).message).slice(0, 3000) });
        }
      } while (Date.now() - tAttack < (o.repeatUntilMs ?? 0));
    }
    const attacker = attackers[0] ?? { ok: true };
    const tAfter = Date.now();
    await sleep(afterMs);
    const tEnd = Date.now();
    const serverAlive = srv.proc.exitCode === null && srv.proc.signalCode === null;
    const h = await honest.finish();
    honest = undefined;
    const before = [...h.samples].reverse().find((s) => s.t < tAttack) ?? h.samples[0];
    const fromAttack = h.samples.filter((s) => s.t >= tAttack);
    const final = h.final;
    const finalRss = "rss" in final ? final.rss : NaN;
    const rejectedDelta: Record<string, number> = {};
    if ("stats" in final) {
      for (const [k, v] of Object.entries(final.stats.rejected)) rejectedDelta[k] = v - (before.rejected[k] ?? 0);
    }
    const { calls, samples: _s, ...rest } = h;
    await srv.stop();
    return {
      server,
      attack,
      attackerRt,
      attacker,
      attackers,
      honest: { ...rest, totalCalls: calls.length },
      phases: {
        baseline: phaseOf(calls, tBase, tAttack),
        attack: phaseOf(calls, tAttack, tAfter),
        after: phaseOf(calls, tAfter, tEnd),
        all: phaseOf(calls, tBase, tEnd),
      },
      rss: {
        idleMB: MB(before.rss),
        peakMB: MB(Math.max(...fromAttack.map((s) => s.rss), finalRss)),
        lastMB: MB(finalRss),
      },
      maxDuring: {
        connections: Math.max(...fromAttack.map((s) => s.connections)),
        handshaking: Math.max(...fromAttack.map((s) => s.handshaking)),
        inFlight: Math.max(...fromAttack.map((s) => s.inFlight)),
        openStreams: Math.max(...fromAttack.map((s) => s.openStreams)),
      },
      before,
      final,
      rejectedDelta,
      serverAlive,
      serverExit: srv.proc.exitCode,
      attackMs: tAfter - tAttack,
      totalMs: Math.round(performance.now() - t0),
    };
  } finally {
    honest?.kill();
    if (srv.proc.exitCode === null) await srv.stop();
  }
}

/** A one-line summary of a scenario, for logs. */
export function summary(r: ScenarioResult): string {
  const d = Object.entries(r.rejectedDelta).filter(([, v]) => v !== 0).map(([k, v]) => `${k}+${v}`).join(" ");
  const a = r.phases.attack;
  const b = r.phases.baseline;
  return `${r.server} server, ${r.attack}: honest ${r.honest.totalCalls} calls, ${r.honest.failureCount} failed; ` +
    `p50/p99 ${b.p50}/${b.p99} ms before, ${a.p50}/${a.p99} ms during (${a.calls} calls, ${a.reqPerSec}/s); ` +
    `RSS ${r.rss.idleMB} → peak ${r.rss.peakMB} MB; rejected ${
      d || "none"
    }; attack ${r.attackMs} ms, total ${r.totalMs} ms`;
}
