// BENCH=loss: head-of-line blocking under packet loss (issue 15 §1). A server process in network
// namespace A (bench/_loss_server.ts: OURS, grpc-js and the raw QUIC stack), one client process
// per measurement in namespace B (bench/_loss_client.ts), joined by a veth pair. Each client makes
// LOSS_WARMUP warm-up calls, then LOSS_CALLS 64-byte echo calls with 64 in flight on one
// connection, and reports every call's latency. Implementations, all in the same run, order
// alternating round by round:
//   ours     RpcClient, request streams reused (the default since issue 15)
//   fresh    RpcClient with limits.maxIdleRequestStreams 0: one new QUIC stream per call
//   grpc     @grpc/grpc-js unary, one plaintext HTTP/2 connection (TCP)
//   raw      the runtime's QUIC stack without our adapter, one new stream per call
//   rawOpen  the same with streams kept open and reused (the reuse ceiling)
// Conditions: no loss, and LOSS_P (default 2%) of the packets dropped each way: iptables in each
// namespace drops UDP and TCP at random on INPUT of its veth, so each direction is dropped once,
// on arrival (a drop on OUTPUT fails the sender's own send call, which TCP answers by re-queuing,
// not as a loss on the wire). GSO is limited to one segment per packet on both veths, so a drop
// is one wire-sized packet for TCP as for QUIC. The loss actually applied is read from the rules'
// counters. Runtimes: Bun server + Bun clients, then Deno server + Deno clients (LOSS_RUNTIMES).
// Writes bench/results/loss.{json,md} and prints the table. Needs root (namespaces, iptables).
//
//   bun bench/loss.ts                         (4 rounds, Bun and Deno: about 6 minutes)
//   LOSS_ROUNDS=3 LOSS_P=0.05 LOSS_RUNTIMES=bun LOSS_IMPLS=ours,fresh,grpc bun bench/loss.ts
//
// Bounded: a fixed count of calls per measurement with a time limit (LOSS_LIMIT_S, default 120 s)
// in the client, a per-client wait after which it is killed, a watchdog over the whole run
// (LOSS_WATCHDOG_S, default 1800 s); namespaces and rules are removed on every exit path
// (destroy(), and tests/support/netns.ts's exit hook).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createDevCertificates } from "../src/security/dev_cert.ts";
import {
  createNetnsPair,
  dropPackets,
  type DropRules,
  iptablesUnavailableReason,
  listOwnRules,
  type NetnsPair,
  ROOT,
  runIn,
  spawnIn,
  spawnPiped,
  tool,
} from "../tests/support/netns.ts";
import { type ClientResult, type ImplName, summarize, type Summary } from "./_loss_common.ts";

const HERE = join(ROOT, "bench");
const envNum = (k: string, d: number) => {
  const v = Number(process.env[k] ?? d);
  return Number.isFinite(v) ? v : d;
};
const P = {
  loss: envNum("LOSS_P", 0.02),
  calls: Math.max(100, Math.round(envNum("LOSS_CALLS", 5000))),
  warmup: Math.max(0, Math.round(envNum("LOSS_WARMUP", 500))),
  inFlight: 64,
  payload: 64,
  rounds: Math.max(1, Math.min(10, Math.round(envNum("LOSS_ROUNDS", 4)))),
  runtimes: (process.env.LOSS_RUNTIMES ?? "bun,deno").split(",").map((s) => s.trim()).filter(
    Boolean,
  ) as ("bun" | "deno")[],
  impls: (process.env.LOSS_IMPLS ?? "ours,fresh,grpc,raw,rawOpen").split(",").map((s) => s.trim()).filter(
    Boolean,
  ) as ImplName[],
  timeLimitMs: envNum("LOSS_LIMIT_S", 120) * 1000,
  warmupLimitMs: 60_000,
  watchdogMs: envNum("LOSS_WATCHDOG_S", 1800) * 1000,
};
const IMPL_LABEL: Record<ImplName, string> = {
  ours: "ours (reuse)",
  fresh: "ours fresh",
  grpc: "grpc-js",
  raw: "raw",
  rawOpen: "raw open",
};
for (const i of P.impls) if (!(i in IMPL_LABEL)) throw new Error(`LOSS_IMPLS: unknown ${i}`);
for (const r of P.runtimes) if (r !== "bun" && r !== "deno") throw new Error(`LOSS_RUNTIMES: unknown ${r}`);
if (!(P.loss > 0 && P.loss < 1)) throw new Error(`LOSS_P must be in (0, 1), received ${P.loss}`);

const t0 = performance.now();
const log = (m: string) => console.error(`[loss ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}`);
const load = () => loadavg().map((x) => Number(x.toFixed(2)));

/** Command line for a child script on `rt`. */
function command(rt: "bun" | "deno", script: string, arg: unknown): string[] {
  const file = join(HERE, script);
  const a = JSON.stringify(arg);
  return rt === "bun"
    ? [tool("bun"), file, a]
    : [tool("deno"), "run", "--unstable-net", "-A", "--config", join(ROOT, "deno.json"), file, a];
}

/** Kernel counters of a namespace: UDP receive-buffer drops, TCP retransmissions, RTOs, tail loss probes. */
async function kernel(ns: string): Promise<Record<string, number>> {
  const r = await runIn(ns, ["cat", "/proc/net/snmp", "/proc/net/netstat"], { timeoutMs: 5000 });
  const lines = r.stdout.split("\n");
  const get = (prefix: string, field: string) => {
    const rows = lines.filter((l) => l.startsWith(prefix + ":"));
    for (let i = 0; i + 1 < rows.length; i += 2) {
      const names = rows[i].trim().split(/\s+/);
      const values = rows[i + 1].trim().split(/\s+/);
      const k = names.indexOf(field);
      if (k > 0) return Number(values[k]);
    }
    return NaN;
  };
  return {
    udpRcvbufErrors: get("Udp", "RcvbufErrors"),
    tcpRetransSegs: get("Tcp", "RetransSegs"),
    tcpTimeouts: get("TcpExt", "TCPTimeouts"),
    tcpLossProbes: get("TcpExt", "TCPLossProbes"),
  };
}
const diff = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(Object.keys(b).map((k) => [k, b[k] - a[k]]));

/** The drop rules of one condition: UDP and TCP, INPUT of the veth in each namespace. */
interface LossRules {
  udp: [DropRules, DropRules];
  tcp: [DropRules, DropRules];
}
async function applyLoss(pair: NetnsPair, p: number): Promise<LossRules> {
  const made: DropRules[] = [];
  try {
    const one = async (side: "a" | "b", protocol: "udp" | "tcp") => {
      const ns = pair[side];
      const r = await dropPackets(ns.name, { probability: p, iface: ns.links[0].veth, protocol, chains: ["INPUT"] });
      made.push(r);
      return r;
    };
    return { udp: [await one("a", "udp"), await one("b", "udp")], tcp: [await one("a", "tcp"), await one("b", "tcp")] };
  } catch (e) {
    for (const r of made) await r.remove().catch(() => {});
    throw e;
  }
}
async function removeLoss(r: LossRules | undefined): Promise<void> {
  if (!r) return;
  for (const x of [...r.udp, ...r.tcp]) await x.remove().catch(() => {});
}
/** [to the server (A's INPUT), to the client (B's INPUT)] of one protocol: { seen, dropped }. */
async function lossCounters(rules: [DropRules, DropRules]): Promise<{ seen: number; dropped: number }[]> {
  const out = [];
  for (const r of rules) {
    const c = await r.counters();
    out.push({ seen: c.seen[0], dropped: c.dropped[0] });
  }
  return out;
}

interface Measurement {
  runtime: string;
  version?: string;
  condition: string;
  loss: number;
  round: number;
  position: number;
  impl: ImplName;
  summary?: Summary;
  reqPerS?: number;
  elapsedMs?: number;
  connectMs?: number;
  issued?: number;
  completed?: number;
  errors?: Record<string, number>;
  stuck?: number;
  timedOut?: boolean;
  /** Packets of the implementation's protocol seen / dropped by the rules: [to server, to client]. */
  applied?: { seen: number; dropped: number }[];
  /** Kernel counter deltas over the measurement: [server namespace, client namespace]. */
  kernel?: Record<string, number>[];
  exitCode?: number;
  failure?: string;
  loadBefore: number[];
}

const measurements: Measurement[] = [];
const latencies = new Map<string, number[]>(); // `${runtime}|${condition}|${impl}` → pooled ms
const servers: Record<string, string> = {};
let pair: NetnsPair | undefined;
let rules: LossRules | undefined;
let certDir: string | undefined;
const loadStart = load();
let finished = false;

async function cleanup(): Promise<void> {
  await removeLoss(rules).catch(() => {});
  rules = undefined;
  await pair?.destroy().catch(() => {});
  if (certDir) rmSync(certDir, { recursive: true, force: true });
}

const watchdog = setTimeout(async () => {
  log(`watchdog: ${P.watchdogMs / 1000} s passed, writing what was measured and exiting`);
  try {
    writeResults(true);
  } catch (e) {
    log(`could not write results: ${e}`);
  }
  await cleanup();
  process.exit(1);
}, P.watchdogMs);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

async function measureOne(
  rt: "bun" | "deno",
  port: { ours: number; grpc: number; raw: number },
  m: Measurement,
): Promise<void> {
  const a = pair!.a;
  const b = pair!.b;
  const proto = m.impl === "grpc" ? "tcp" : "udp";
  const portOf = m.impl === "grpc" ? port.grpc : m.impl === "raw" || m.impl === "rawOpen" ? port.raw : port.ours;
  const before = rules ? await lossCounters(rules[proto]) : undefined;
  const kBefore = [await kernel(a.name), await kernel(b.name)];
  const cfg = {
    impl: m.impl,
    host: a.links[0].ipv4,
    port: portOf,
    caFile: join(certDir!, "ca.pem"),
    inFlight: P.inFlight,
    payload: P.payload,
    warmup: P.warmup,
    calls: P.calls,
    timeLimitMs: P.timeLimitMs,
    warmupLimitMs: P.warmupLimitMs,
  };
  const child = spawnIn(b.name, command(rt, "_loss_client.ts", cfg));
  try {
    const r = await child.waitEvent<ClientResult>("result", P.timeLimitMs + P.warmupLimitMs + 45_000);
    const s = summarize(r.latMs);
    m.version = r.version;
    m.summary = s;
    m.reqPerS = r.completed / (r.elapsedMs / 1000);
    m.elapsedMs = r.elapsedMs;
    m.connectMs = r.connectMs;
    m.issued = r.issued;
    m.completed = r.completed;
    m.errors = r.errors;
    m.stuck = r.stuck;
    m.timedOut = r.timedOut;
    const key = `${rt}|${m.condition}|${m.impl}`;
    latencies.set(key, [...(latencies.get(key) ?? []), ...r.latMs]);
  } catch (e) {
    m.failure = String(e).slice(0, 2000);
  }
  m.exitCode = await Promise.race([child.exited, new Promise<number>((r) => setTimeout(() => r(NaN), 8000))]);
  if (Number.isNaN(m.exitCode)) m.exitCode = await child.stop(1000);
  if (m.exitCode !== 0 && !m.failure) m.failure = `client exited ${m.exitCode}: ${child.stderr.slice(-1000)}`;
  if (rules && before) {
    const after = await lossCounters(rules[proto]);
    m.applied = after.map((x, i) => ({ seen: x.seen - before[i].seen, dropped: x.dropped - before[i].dropped }));
  }
  const kAfter = [await kernel(a.name), await kernel(b.name)];
  m.kernel = [diff(kBefore[0], kAfter[0]), diff(kBefore[1], kAfter[1])];
}

// ---------------------------------------------------------------------------------------------
// Report

const f = (x: number | undefined, d = 2) => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : "–");
const pct = (d: number, s: number) => (s > 0 ? `${((d / s) * 100).toFixed(2)}%` : "–");

interface Row {
  runtime: string;
  condition: string;
  impl: ImplName;
  pooled: Summary;
  reqPerS: number;
  p99ByRound: number[];
  applied?: { seen: number; dropped: number }[];
  failures: number;
  errors: number;
  stuck: number;
  p99OverGrpc?: number;
  p99OverFresh?: number;
  /** Lossy rows: this p99 ÷ the same implementation's p99 without loss. */
  p99OverNoLoss?: number;
  /** Calls that took STALL_MS or more (pooled). */
  stalled: number;
}

/** A call this slow waited for a loss to be recovered by a timeout (TCP's minimum RTO is 200 ms). */
const STALL_MS = 100;

function rows(): Row[] {
  const out: Row[] = [];
  for (const rt of P.runtimes) {
    for (const cond of ["0%", `${P.loss * 100}%`]) {
      const group: Row[] = [];
      for (const impl of P.impls) {
        const ms = measurements.filter((m) => m.runtime === rt && m.condition === cond && m.impl === impl);
        if (!ms.length) continue;
        const ok = ms.filter((m) => m.summary);
        const applied = ms.some((m) => m.applied)
          ? [0, 1].map((i) => ({
            seen: ms.reduce((a, m) => a + (m.applied?.[i].seen ?? 0), 0),
            dropped: ms.reduce((a, m) => a + (m.applied?.[i].dropped ?? 0), 0),
          }))
          : undefined;
        const completed = ok.reduce((a, m) => a + (m.completed ?? 0), 0);
        const elapsed = ok.reduce((a, m) => a + (m.elapsedMs ?? 0), 0);
        group.push({
          runtime: rt,
          condition: cond,
          impl,
          pooled: summarize(latencies.get(`${rt}|${cond}|${impl}`) ?? []),
          stalled: (latencies.get(`${rt}|${cond}|${impl}`) ?? []).filter((x) => x >= STALL_MS).length,
          reqPerS: elapsed > 0 ? completed / (elapsed / 1000) : NaN,
          p99ByRound: ms.map((m) => m.summary?.p99 ?? NaN),
          applied,
          failures: ms.filter((m) => m.failure).length,
          errors: ok.reduce((a, m) => a + Object.values(m.errors ?? {}).reduce((x, y) => x + y, 0), 0),
          stuck: ok.reduce((a, m) => a + (m.stuck ?? 0), 0),
        });
      }
      const grpc = group.find((r) => r.impl === "grpc")?.pooled.p99;
      const fresh = group.find((r) => r.impl === "fresh")?.pooled.p99;
      for (const r of group) {
        r.p99OverGrpc = grpc ? r.pooled.p99 / grpc : undefined;
        r.p99OverFresh = fresh ? r.pooled.p99 / fresh : undefined;
        const clean = cond === "0%"
          ? undefined
          : out.find((x) => x.runtime === rt && x.condition === "0%" && x.impl === r.impl);
        r.p99OverNoLoss = clean ? r.pooled.p99 / clean.pooled.p99 : undefined;
      }
      out.push(...group);
    }
  }
  return out;
}

function render(rs: Row[], partial: boolean): string {
  const versions = [...new Set(measurements.filter((m) => m.version).map((m) => `${m.runtime} ${m.version}`))].join(
    ", ",
  );
  const table = rs.map((r) =>
    `| ${r.runtime} | ${r.condition} | ${IMPL_LABEL[r.impl]} | ${f(r.pooled.p50)} | ${f(r.pooled.p99)} | ${
      f(r.pooled.p999)
    } | ${f(r.pooled.max)} | ${f(r.reqPerS, 0)} | ` +
    `${f(r.p99OverGrpc)} | ${f(r.p99OverFresh)} | ${f(r.p99OverNoLoss)} | ${pct(r.stalled, r.pooled.n)} | ${
      r.p99ByRound.map((x) => f(x, 1)).join(" / ")
    } | ` +
    `${
      r.applied
        ? `${pct(r.applied[0].dropped, r.applied[0].seen)} / ${pct(r.applied[1].dropped, r.applied[1].seen)}`
        : "–"
    } | ` +
    `${r.pooled.n}${
      r.errors || r.stuck || r.failures ? ` (${r.errors} errors, ${r.stuck} stuck, ${r.failures} failed runs)` : ""
    } |`
  );
  const appliedAll = (proto: "udp" | "tcp") => {
    const ms = measurements.filter((m) => m.applied && (proto === "tcp") === (m.impl === "grpc"));
    const s = [0, 1].map((i) => ms.reduce((a, m) => a + m.applied![i].seen, 0));
    const d = [0, 1].map((i) => ms.reduce((a, m) => a + m.applied![i].dropped, 0));
    return `${pct(d[0], s[0])} to the server (${d[0]} of ${s[0]}), ${pct(d[1], s[1])} to the client (${d[1]} of ${
      s[1]
    })`;
  };
  const k = (field: string, side: number, lossy: boolean, pred: (m: Measurement) => boolean) =>
    measurements.filter((m) => m.kernel && (m.loss > 0) === lossy && pred(m)).reduce(
      (a, m) => a + (m.kernel![side][field] ?? 0),
      0,
    );
  const perCall = (tcp: boolean) => {
    const ms = measurements.filter((m) => m.applied && m.issued && (m.impl === "grpc") === tcp);
    const packets = ms.reduce((a, m) => a + m.applied![0].seen + m.applied![1].seen, 0);
    return packets / ms.reduce((a, m) => a + m.issued! + P.warmup, 0);
  };
  const grpcOnly = (m: Measurement) => m.impl === "grpc";
  const quic = (m: Measurement) => m.impl !== "grpc";
  return [
    `# Loss: head-of-line blocking under ${P.loss * 100}% packet loss each way${
      partial ? " (INCOMPLETE: the run stopped early, see its log)" : ""
    }`,
    "",
    `${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${
      (totalmem() / 2 ** 30).toFixed(0)
    } GiB; ${versions}. ` +
    `Load average (1, 5, 15 min) ${loadStart.join(", ")} at the start, ${
      load().join(", ")
    } at the end: the machine is shared, so tails include CPU contention.`,
    "",
    "Method: a server process in network namespace A (OURS: RpcServer with an `echo` handler; grpc-js: unary Echo, plaintext HTTP/2, " +
    "Buffer serializers; RAW: the runtime's QUIC stack, echo server of bench/_quic_raw.ts), and for each measurement a new client " +
    "process in namespace B of the same runtime, joined by a veth pair. Each client opens one connection, makes " +
    `${P.warmup} warm-up calls, then ${P.calls} calls of ${P.payload} bytes with ${P.inFlight} in flight, recording each call's latency. ` +
    "Implementations: ours (request streams reused, the default), ours fresh (`limits: { maxIdleRequestStreams: 0 }`: one new stream per call), " +
    "grpc-js (one HTTP/2 connection over TCP), raw (the QUIC stack without our adapter, one new stream per call) and raw open (streams kept open and reused). " +
    `Loss: iptables drops UDP and TCP at random (\`-m statistic --mode random --probability ${P.loss}\`) on INPUT of the veth in both namespaces, ` +
    "so each direction is dropped once, on arrival, unseen by the sender (a drop on OUTPUT would fail the sender's own send call, which TCP answers by re-queuing); " +
    "GSO on both veths is limited to one segment (`gso_max_segs 1`), so a TCP drop is one wire-sized segment, as a UDP drop is one QUIC packet. " +
    `${P.rounds} rounds; in each round both conditions (which goes first alternates), and within a condition the implementations one after another, the order reversed every other round. ` +
    "Latencies are pooled over the rounds (p99 per round shown); req/s is calls completed ÷ measured wall time, over the rounds. " +
    `Loss actually applied (rule counters, lossy condition): QUIC ${appliedAll("udp")}; TCP ${appliedAll("tcp")}; ` +
    `packets per call, both ways, ACKs included: QUIC ${f(perCall(false), 2)}, TCP ${
      f(perCall(true), 2)
    } (QUIC packs many calls' frames into one packet, ` +
    "so one lost QUIC packet delays several calls at once; that is loss, not head-of-line blocking). " +
    `Under loss, TCP retransmitted ${
      k("tcpRetransSegs", 0, true, grpcOnly) + k("tcpRetransSegs", 1, true, grpcOnly)
    } segments ` +
    `(${k("tcpTimeouts", 0, true, grpcOnly) + k("tcpTimeouts", 1, true, grpcOnly)} retransmission timeouts, ${
      k("tcpLossProbes", 0, true, grpcOnly) + k("tcpLossProbes", 1, true, grpcOnly)
    } tail loss probes); ` +
    `UDP receive-buffer drops (on top of the rules'): ${
      k("udpRcvbufErrors", 0, false, quic) + k("udpRcvbufErrors", 0, true, quic)
    } server side, ${k("udpRcvbufErrors", 1, false, quic) + k("udpRcvbufErrors", 1, true, quic)} client side.`,
    "",
    "Latency in ms. Ratios compare pooled p99 within the same runtime and condition (below 1: lower tail than the reference); " +
    '"p99 ÷ own p99 at 0%" is what the loss costs each implementation\'s tail; "calls ≥ 100 ms" counts calls that waited for a timeout-driven recovery ' +
    "(a TCP retransmission timeout is 200 ms at least) or a long CPU stall. Loss applied: to the server / to the client, this implementation's protocol, over its runs.",
    "",
    "| runtime | condition | impl | p50 | p99 | p99.9 | max | req/s | p99 ÷ grpc-js p99 | p99 ÷ ours-fresh p99 | p99 ÷ own p99 at 0% | calls ≥ 100 ms | p99 by round | loss applied | n |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...table,
    "",
    ...measurements.filter((m) => m.failure).map((m) =>
      `- ${m.runtime} ${m.condition} round ${m.round} ${m.impl}: ${m.failure!.split("\n")[0].slice(0, 300)}`
    ),
  ].join("\n");
}

function writeResults(partial: boolean): void {
  const rs = rows();
  const md = render(rs, partial);
  const json = {
    date: new Date().toISOString(),
    partial,
    machine: `${cpus().length} × ${cpus()[0]?.model.trim()}`,
    params: P,
    load: { start: loadStart, end: load() },
    servers,
    rows: rs,
    measurements,
  };
  writeFileSync(join(ROOT, "bench/results/loss.json"), JSON.stringify(json, null, 1) + "\n");
  writeFileSync(join(ROOT, "bench/results/loss.md"), md + "\n");
  console.log(md);
}

// ---------------------------------------------------------------------------------------------
// Run

const why = iptablesUnavailableReason();
if (why) {
  console.error(`BENCH=loss needs network namespaces and iptables: ${why}`);
  process.exit(2);
}
try {
  pair = await createNetnsPair();
  for (const side of [pair.a, pair.b]) {
    await runIn(side.name, ["ip", "link", "set", "dev", side.links[0].veth, "gso_max_segs", "1"], { timeoutMs: 5000 })
      .then((r) => {
        if (r.code !== 0) log(`gso_max_segs 1 on ${side.links[0].veth}: ${r.stderr.trim()} (left as is)`);
      });
  }
  certDir = mkdtempSync(join(tmpdir(), "echostream-loss-"));
  const certs = await createDevCertificates({ hosts: ["localhost", pair.a.links[0].ipv4] });
  writeFileSync(join(certDir, "cert.pem"), certs.cert);
  writeFileSync(join(certDir, "key.pem"), certs.key);
  writeFileSync(join(certDir, "ca.pem"), certs.ca);
  const lossy = `${P.loss * 100}%`;
  log(
    `${P.runtimes.join(", ")} × ${P.rounds} rounds × {0%, ${lossy}} × ${
      P.impls.join(", ")
    }; ${P.calls} calls after ${P.warmup}, ${P.inFlight} in flight; load ${load().join(", ")}`,
  );
  for (const rt of P.runtimes) {
    const server = spawnPiped(
      pair.a.name,
      command(rt, "_loss_server.ts", { host: pair.a.links[0].ipv4, certDir, maxMs: P.watchdogMs }),
    );
    const port = await server.waitEvent<{ ours: number; grpc: number; raw: number; version: string }>(
      "listening",
      60_000,
    );
    servers[rt] = `${rt} ${port.version}`;
    log(`${rt} server up: ours :${port.ours}, grpc :${port.grpc}, raw :${port.raw}`);
    try {
      for (let round = 0; round < P.rounds; round++) {
        const conditions = round % 2 === 0 ? [0, P.loss] : [P.loss, 0];
        for (const loss of conditions) {
          if (loss > 0) rules = await applyLoss(pair, loss);
          try {
            // within a condition, the order is reversed every other round
            const order = round % 2 === 0 ? P.impls : [...P.impls].reverse();
            for (const [position, impl] of order.entries()) {
              const m: Measurement = {
                runtime: rt,
                condition: loss > 0 ? lossy : "0%",
                loss,
                round,
                position,
                impl,
                loadBefore: load(),
              };
              await measureOne(rt, port, m);
              measurements.push(m);
              log(
                `${rt} round ${round} ${m.condition} ${impl}: ` +
                  (m.summary
                    ? `p50 ${f(m.summary.p50)} p99 ${f(m.summary.p99)} p99.9 ${f(m.summary.p999)} max ${
                      f(m.summary.max)
                    } ms, ${f(m.reqPerS, 0)} req/s` +
                      (m.applied
                        ? `, dropped ${pct(m.applied[0].dropped, m.applied[0].seen)} / ${
                          pct(m.applied[1].dropped, m.applied[1].seen)
                        }`
                        : "") +
                      (m.stuck || Object.keys(m.errors ?? {}).length
                        ? `, errors ${JSON.stringify(m.errors)}, stuck ${m.stuck}`
                        : "")
                    : `FAILED ${m.failure?.slice(0, 500)}`) +
                  `; load ${m.loadBefore[0]}`,
              );
            }
          } finally {
            await removeLoss(rules);
            rules = undefined;
          }
        }
      }
    } finally {
      await server.stop(3000);
    }
    const left = [...await listOwnRules(pair.a.name), ...await listOwnRules(pair.b.name)];
    if (left.length) throw new Error(`drop rules left behind: ${left.join("; ")}`);
  }
  finished = true;
} catch (e) {
  log(`error: ${e instanceof Error ? e.stack : e}`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await cleanup();
}
writeResults(!finished);
if (measurements.some((m) => m.failure)) process.exitCode = 1;
