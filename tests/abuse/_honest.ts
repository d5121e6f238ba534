// The honest client, in its own process (Bun or Deno): one RpcClient that keeps calling "echo"
// with a timeout, one call at a time (at most one per `paceMs`), and samples the server's "stats"
// every `statsEveryMs`, while an attacker works on the same server. It also subscribes to the
// "bcast" topic, as a subscriber that reads would.
//
// stdin: one JSON line (HonestConfig); closing stdin stops it. stdout: {"ready":…} once connected
// and warmed up, then, at the end, one JSON line (HonestResult). Every call is recorded with its
// wall-clock start (Date.now(), shared with the orchestrator) so phases can be cut afterwards.

import { listener } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import type { RpcError } from "../../src/protocol/rpc_error.ts";
import type { CloseInfo } from "../../src/transport/types.ts";
import { exit, runtime } from "../reliability/churn_common.ts";
import type { ServerSnapshot } from "./_config.ts";

export interface HonestConfig {
  address: string;
  ca: string;
  /** Each echo call's timeout. */
  timeoutMs: number;
  /** At most one call per this many ms (0: back to back). */
  paceMs: number;
  statsEveryMs: number;
  /** Echo calls made before "ready" (not recorded). */
  warmup: number;
}

/** One server sample: when, RSS, and the counters the tests read. */
export interface Sample {
  t: number;
  rss: number;
  connections: number;
  handshaking: number;
  inFlight: number;
  openStreams: number;
  rejected: Record<string, number>;
}

export interface HonestResult {
  runtime: string;
  /** [start (Date.now()), latency ms, 1 ok / 0 failed] per echo call. */
  calls: [number, number, number][];
  /** The first failures, in detail. */
  failures: { t: number; code: string; message: string }[];
  failureCount: number;
  statsFailures: number;
  samples: Sample[];
  /** The last full snapshot, taken when told to stop. */
  final: ServerSnapshot | { error: string };
  /** The honest connection's end, if it ended before we closed it (it must not). */
  disconnected: CloseInfo | null;
  /** Broadcast events received. */
  broadcasts: number;
  /** A fresh connection and call once stopped (the server still admits and serves newcomers). */
  fresh: { ok: boolean; ms: number; error?: string };
}

const proc = (globalThis as unknown as { process: { stdin: AsyncIterable<Uint8Array | string> } }).process;
const lines = (async function* () {
  const dec = new TextDecoder();
  let buf = "";
  for await (const c of proc.stdin) {
    buf += typeof c === "string" ? c : dec.decode(c, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
})();
const first = await lines.next();
const cfg = JSON.parse(String(first.value)) as HonestConfig;
let stopping = false;
const stopped = (async () => {
  for await (const _ of lines) { /* only the end matters */ }
  stopping = true;
})();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const codeOf = (e: unknown) => String((e as RpcError)?.code ?? (e as Error)?.name ?? "unknown");

let broadcasts = 0;
const client = await RpcClient.connect(cfg.address, { ca: cfg.ca, timeoutMs: 5000 });
client.handle(listener("bcast", () => void broadcasts++));
let disconnected: CloseInfo | null = null;
client.peer.closed.then((info) => (disconnected = info));

for (let i = 0; i < cfg.warmup; i++) await client.request("echo", i, { timeoutMs: cfg.timeoutMs });

const calls: HonestResult["calls"] = [];
const failures: HonestResult["failures"] = [];
let failureCount = 0;
let statsFailures = 0;
const samples: Sample[] = [];

const sample = async (): Promise<ServerSnapshot> => {
  const t = Date.now();
  const s = await client.request<ServerSnapshot>("stats", undefined, { timeoutMs: cfg.timeoutMs });
  const st = s.stats;
  samples.push({
    t,
    rss: s.rss,
    connections: st.connections,
    handshaking: st.handshaking,
    inFlight: st.inFlight,
    openStreams: st.openStreams,
    rejected: st.rejected,
  });
  return s;
};
await sample();
console.log(JSON.stringify({ ready: true, runtime }));

const sampler = (async () => {
  while (!stopping) {
    await sleep(cfg.statsEveryMs);
    if (stopping) break;
    try {
      await sample();
    } catch (e) {
      statsFailures++;
      failureCount++;
      if (failures.length < 20) {
        failures.push({ t: Date.now(), code: codeOf(e), message: `stats: ${(e as Error).message}` });
      }
    }
  }
})();

for (let i = 0; !stopping; i++) {
  const t = Date.now();
  const t0 = performance.now();
  let ok = 0;
  try {
    const v = await client.request("echo", i, { timeoutMs: cfg.timeoutMs });
    if (v === i) ok = 1;
    else throw new Error(`echo answered ${JSON.stringify(v)} for ${i}`);
  } catch (e) {
    failureCount++;
    if (failures.length < 20) failures.push({ t, code: codeOf(e), message: (e as Error).message });
  }
  const ms = performance.now() - t0;
  calls.push([t, Math.round(ms * 1000) / 1000, ok]);
  if (cfg.paceMs > ms) await sleep(cfg.paceMs - ms);
}
await stopped;
await sampler;

let final: HonestResult["final"];
try {
  final = await sample();
} catch (e) {
  statsFailures++;
  failureCount++;
  final = { error: `${codeOf(e)}: ${(e as Error).message}` };
}
const early = disconnected;
await client.close().catch(() => {});

const f0 = performance.now();
let fresh: HonestResult["fresh"];
try {
  const c = await RpcClient.connect(cfg.address, { ca: cfg.ca, timeoutMs: 5000, clockSync: false });
  const v = await c.request("echo", "fresh", { timeoutMs: cfg.timeoutMs });
  await c.close();
  fresh = v === "fresh"
    ? { ok: true, ms: performance.now() - f0 }
    : { ok: false, ms: performance.now() - f0, error: `answered ${JSON.stringify(v)}` };
} catch (e) {
  fresh = { ok: false, ms: performance.now() - f0, error: `${codeOf(e)}: ${(e as Error).message}` };
}

const result: HonestResult = {
  runtime,
  calls,
  failures,
  failureCount,
  statsFailures,
  samples,
  final,
  disconnected: early,
  broadcasts,
  fresh,
};
console.log(JSON.stringify(result));
exit(0);
