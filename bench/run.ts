// `npm run bench`: runs each benchmark on Bun and on Deno (the transport one on Node too, from
// a bundle) in separate processes, writes bench/results/<name>.json and .md, and refreshes the
// matching table in README.md. BENCH=codec, BENCH=transport, BENCH=rpc, BENCH=realtime or
// BENCH=discovery runs only that one. The reliability benchmarks (BENCH=credit, churn, soak,
// fuzz, idle, abuse, loss) and the cluster one (BENCH=cluster: NATS, Redis, socket.io) run only
// when named. The real-time benchmark (about 9 minutes) has a
// smoke-test mode: QUICK=1 (about 1.5). The discovery one needs root (network namespaces).
// BENCH_README=0 leaves README.md alone (only bench/results/ is written); BENCH_SOURCE names the
// code measured when this tree is not a git checkout (e.g. a copy of one).

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { bundleForNode, runtimeCommand } from "../tests/support/process.ts";

const ROOT = join(import.meta.dir, "..");
const bin = (name: string) => {
  const local = join(ROOT, "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
};
const ONLY = process.env.BENCH ?? "";
/**
 * Reliability benchmarks: each is its own script that runs its processes and writes
 * bench/results/<name>.{json,md} itself; run only when asked for by name (they take minutes).
 */
const SCRIPTS: Record<string, string> = {
  credit: "bench/credit.ts",
  churn: "bench/churn.ts",
  soak: "bench/soak.ts",
  fuzz: "bench/fuzz.ts",
  idle: "bench/idle.ts",
  abuse: "bench/abuse.ts",
  loss: "bench/loss.ts",
  cluster: "bench/cluster.ts",
};
const NAMES = ["codec", "transport", "rpc", "realtime", "discovery", ...Object.keys(SCRIPTS)];
if (ONLY && !NAMES.includes(ONLY)) {
  console.error(`BENCH=${ONLY}: expected one of ${NAMES.map((n) => `"${n}"`).join(", ")}`);
  process.exit(2);
}
const DATE = new Date().toISOString();
const MACHINE = `${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}`;

/** Replaces the README section between `<!-- bench:<name>:start -->` and `…:end -->`. */
function updateReadme(name: string, table: string): void {
  if (process.env.BENCH_README === "0") {
    console.log(`README.md ${name} table not updated (BENCH_README=0)`);
    return;
  }
  const readme = join(ROOT, "README.md");
  const text = readFileSync(readme, "utf8");
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) {
    writeFileSync(readme, text.slice(0, a + start.length) + "\n" + table + "\n" + text.slice(b));
    console.log(`README.md ${name} table updated`);
  } else {
    console.log(`README.md has no ${start} … ${end} section; not updated`);
  }
}

// ---------------------------------------------------------------------------------------------
// Codec

interface CodecRun {
  runtime: string;
  version: string;
  inputBytes: number;
  frames: number;
  results: Record<"wasm" | "ts", Record<string, number>>;
}

async function runOn(cmd: string[]): Promise<CodecRun> {
  const p = Bun.spawn(cmd, { cwd: ROOT, stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error(`${cmd.join(" ")} failed`);
  return JSON.parse(out.trim().split("\n").pop()!);
}

const OPS: [string, string][] = [
  ["encodeMBps", "encode, one frame per call"],
  ["encodeManyMBps", "encode, one batch"],
  ["decodeMBps", "decode, one frame per call"],
  ["split1200MBps", "split, 1200 B chunks"],
  ["split64kMBps", "split, 64 KiB chunks"],
];

async function codec(): Promise<void> {
  console.log("codec benchmark: 1 MiB of mixed small frames, WASM core vs plain-TS reference");
  const runs = [
    await runOn([bin("bun"), "bench/codec.ts"]),
    await runOn([bin("deno"), "run", "--no-prompt", "bench/codec.ts"]),
  ];

  const rows: string[] = [];
  for (const r of runs) {
    for (const [key, label] of OPS) {
      const w = r.results.wasm[key];
      const t = r.results.ts[key];
      rows.push(
        `| ${r.runtime} ${r.version} | ${label} | ${w.toFixed(0)} | ${t.toFixed(0)} | ${(w / t).toFixed(2)}× |`,
      );
    }
  }
  const table = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}; ` +
    `${runs[0].inputBytes} bytes in ${runs[0].frames} frames; MB/s, median of 7 runs; ratio = WASM ÷ TS.`,
    "",
    "| runtime | operation | WASM MB/s | TS MB/s | WASM ÷ TS |",
    "|---|---|---|---|---|",
    ...rows,
  ].join("\n");
  console.log(table);

  writeFileSync(
    join(ROOT, "bench/results/codec.json"),
    JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, runs }, null, 2) + "\n",
  );
  writeFileSync(join(ROOT, "bench/results/codec.md"), table + "\n");
  updateReadme("codec", table);
}

// ---------------------------------------------------------------------------------------------
// Transport

interface TransportRun {
  runtime: string;
  version: string;
  params: Params;
  results: Record<"raw" | "ours" | "tcp", Record<string, number>>;
  ratios: Record<string, number>;
  errors: string[];
  elapsedMs: number;
  exitCode?: number;
}

type Params = Record<string, number>;
const mib = (bytes: number) => `${Number((bytes / (1024 * 1024)).toFixed(2))} MiB`;
const count = (x: number) => x.toLocaleString("en-US");

/**
 * [key, label from the run's params (the counts and sizes it actually used: Node runs smaller
 * ones), "lower" is better (latency, time) or "higher" (throughput)].
 */
const METRICS: [string, (p: Params) => string, "lower" | "higher"][] = [
  ["echoOneStreamP50Us", () => "64 B echo, one stream, p50 µs", "lower"],
  ["echoOneStreamP99Us", () => "64 B echo, one stream, p99 µs", "lower"],
  ["echoNewStreamP50Us", () => "64 B echo, new stream each, p50 µs", "lower"],
  ["echoNewStreamP99Us", () => "64 B echo, new stream each, p99 µs", "lower"],
  ["bulkOneWayMBps", (p) => `${mib(p.bulkBytes)} one way, one stream, MB/s`, "higher"],
  ["bulkEchoMBps", (p) => `${mib(p.echoBytes)} echo, one stream, MB/s`, "higher"],
  // The key keeps its historical name; the label says how many streams the run really opened.
  ["streams1000Ms", (p) => `${count(p.concurrent)} concurrent streams × 64 B echo, ms`, "lower"],
  ["handshakeMs", () => "handshake (connect until ready), median ms", "lower"],
  ["firstEchoFreshMs", () => "connect + first 64 B echo, full handshake, median ms", "lower"],
  ["firstEchoResumedMs", () => "connect + first 64 B echo, resumed with 0-RTT, median ms", "lower"],
  ["resumedPct", () => "connections that resumed when asked for 0-RTT, %", "higher"],
];
/** The issue's target: ours ÷ raw ≤ 1.3 where lower is better, ≥ 0.77 where higher is. */
const meets = (ratio: number, better: "lower" | "higher") => (better === "lower" ? ratio <= 1.3 : ratio >= 0.77);

/** Runs bench/transport.ts; a partial report (watchdog, failed metric) is kept, marked by its exit code. */
async function runTransportOn(cmd: string[], limitMs = 300_000): Promise<TransportRun> {
  const p = Bun.spawn(cmd, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const kill = setTimeout(() => p.kill(9), limitMs);
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  const code = await p.exited;
  clearTimeout(kill);
  // Bun prints an ExperimentalWarning for node:quic on every run; pass on everything else.
  const noise = /ExperimentalWarning: quic|bun --trace-warnings/;
  const rest = err.split("\n").filter((l) => l.trim() && !noise.test(l));
  if (rest.length) console.error(rest.join("\n"));
  const last = out.trim().split("\n").pop() ?? "";
  let run: TransportRun;
  try {
    run = JSON.parse(last);
  } catch {
    throw new Error(
      `${cmd.join(" ")} exited ${code} without a result${p.signalCode ? ` (killed: ${p.signalCode})` : ""}`,
    );
  }
  if (code !== 0) run.exitCode = code;
  return run;
}

function cell(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return "–";
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function gitState(): string {
  if (process.env.BENCH_SOURCE) return process.env.BENCH_SOURCE;
  const git = (...args: string[]) => {
    const r = Bun.spawnSync(["git", ...args], { cwd: ROOT, stdout: "pipe", stderr: "ignore" });
    return r.exitCode === 0 ? r.stdout.toString().trim() : "";
  };
  const head = git("rev-parse", "--short", "HEAD");
  const dirty = git("status", "--porcelain", "src/transport");
  return head ? `${head}${dirty ? " + uncommitted src/transport changes" : ""}` : "";
}

async function transport(): Promise<boolean> {
  console.log("transport benchmark: RAW native QUIC vs OURS (adapter) vs plain TCP, one process, loopback");
  const runs: TransportRun[] = [];
  const failures: string[] = [];
  // Node cannot run .ts: bundle bench/transport.ts into node_modules/.cache (so its bare
  // `@matrixai/quic` import resolves) and run the bundle with `node`.
  let node: { dir: string; cleanup: () => void } | undefined;
  try {
    node = await bundleForNode([join(ROOT, "bench/transport.ts")]);
  } catch (e) {
    failures.push(`node: ${(e as Error).message}`);
  }
  try {
    const cmds = [
      [bin("bun"), "bench/transport.ts"],
      [bin("deno"), "run", "--no-prompt", "--unstable-net", "-A", "bench/transport.ts"],
      ...(node ? [runtimeCommand("node", "bench/transport.ts", [], node.dir)] : []),
    ];
    for (const cmd of cmds) {
      const t0 = performance.now();
      try {
        const run = await runTransportOn(cmd);
        runs.push(run);
        console.log(`  ${run.runtime} ${run.version}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        if (run.exitCode || run.errors.length) {
          failures.push(`${run.runtime}: exit ${run.exitCode ?? 0}; ${run.errors.join("; ")}`);
        }
      } catch (e) {
        failures.push(String((e as Error).message));
      }
    }
  } finally {
    node?.cleanup();
  }
  if (runs.length === 0) {
    console.error(failures.join("\n"));
    return false;
  }

  const rows: string[] = [];
  const missed: string[] = [];
  for (const r of runs) {
    for (const [key, labelOf, better] of METRICS) {
      const label = labelOf(r.params);
      const raw = r.results.raw[key];
      const ours = r.results.ours[key];
      const ratio = r.ratios[key];
      if (raw === undefined && ours === undefined) continue;
      const ok = ratio === undefined ? true : meets(ratio, better);
      if (!ok) missed.push(`${r.runtime} ${label} (${ratio.toFixed(2)}×)`);
      const ratioCell = ratio === undefined ? "–" : `${ratio.toFixed(2)}×${ok ? "" : " ✗"}`;
      rows.push(
        `| ${r.runtime} ${r.version} | ${label} | ${cell(raw)} | ${cell(ours)} | ${
          cell(r.results.tcp[key])
        } | ${ratioCell} |`,
      );
    }
  }
  /** "a on bun and deno, b on node": one value per group of runs that share it. */
  const per = (f: (p: Params) => string): string => {
    const groups = new Map<string, string[]>();
    for (const r of runs) {
      const v = f(r.params);
      groups.set(v, [...(groups.get(v) ?? []), r.runtime]);
    }
    if (groups.size === 1) return [...groups.keys()][0];
    return [...groups].map(([v, rts]) => `${v} on ${rts.join(" and ")}`).join(", ");
  };
  const state = gitState();
  const hasNode = runs.some((r) => r.runtime === "node");
  const table = [
    `Measured ${DATE.slice(0, 10)} on ${MACHINE}${state ? ` (${state})` : ""}; client and server in one process on ` +
    `127.0.0.1; QUIC with TLS 1.3 (dev certificates, ALPN echostream/1). RAW = the runtime's QUIC API used directly` +
    `${hasNode ? " (on Node, which has none, the npm package `@matrixai/quic` that our Node adapter wraps, with the adapter's settings)" : ""}, ` +
    `OURS = the same through \`defaultTransport()\`, TCP = plain TCP on the same runtime (no TLS; one connection per ` +
    `stream, so no stream metrics). ${per((p) => String(p.rounds))} rounds alternating RAW/OURS order; echo latencies pool ` +
    `${per((p) => `${p.oneStream} (one stream) and ${p.newStream} (new stream each) round trips`)} per round after ` +
    `warm-up; MB/s = 10⁶ B/s, median of ${per((p) => String(p.bulkRuns))} runs per round; concurrent streams: median of ` +
    `${per((p) => String(p.concurrentRuns))} per round; handshake: median of ${per((p) => String(p.handshakes))} per round.` +
    `${hasNode ? " Node's stack is slow, so its runs use smaller counts and sizes (its labels say which); it has no 0-RTT, so it has no 0-RTT rows." : ""}` +
    ` p99 values move by up to 2× from run to run on this machine; read them as rough. ✗ = misses the target (ours ÷ raw ≤ 1.3 for latency and time, ≥ 0.77 for throughput).`,
    "",
    "| runtime | metric | raw | ours | tcp | ours ÷ raw |",
    "|---|---|---|---|---|---|",
    ...rows,
    "",
    missed.length ? `Target missed on: ${missed.join("; ")}.` : "Every ours ÷ raw ratio meets the target.",
  ].join("\n");
  console.log(table);
  if (failures.length) console.error(`transport benchmark problems:\n  ${failures.join("\n  ")}`);

  writeFileSync(
    join(ROOT, "bench/results/transport.json"),
    JSON.stringify({ date: DATE, cpus: cpus().length, machine: MACHINE, source: state, runs }, null, 2) + "\n",
  );
  writeFileSync(join(ROOT, "bench/results/transport.md"), table + "\n");
  updateReadme("transport", table);
  return failures.length === 0;
}

// ---------------------------------------------------------------------------------------------
// RPC: OURS (RpcServer/RpcClient) vs RAW (a new QUIC stream per call) vs @grpc/grpc-js unary

interface RpcRun {
  runtime: string;
  version: string;
  params: Params;
  results: Record<"ours" | "raw" | "grpc" | "secured" | "traced" | "untraced" | "rawOpen" | "fresh", Record<string, number>>;
  ratios: Record<"oursOverRaw" | "oursOverGrpc" | "securedOverOurs" | "tracedOverOurs" | "oursOverRawOpen" | "freshOverRaw", Record<string, number>>;
  /** What the traced children's exporters received: spans and histogram recordings, for the calls made. */
  otel?: { calls: number; spansExported: number; spansPerCall: number; histogramCounts: Record<string, number> };
  errors: string[];
  elapsedMs: number;
  exitCode?: number;
}

/** [key, label, "lower" or "higher" is better]. */
const RPC_METRICS: [string, (p: Params) => string, "lower" | "higher"][] = [
  ["unaryP50Us", (p) => `unary ${p.payload} B, sequential, p50 µs`, "lower"],
  ["unaryP99Us", (p) => `unary ${p.payload} B, sequential, p99 µs`, "lower"],
  ["reqPerSec", (p) => `unary ${p.payload} B, ${p.inFlight} in flight, req/s`, "higher"],
  ["streamMsgPerSec", (p) => `server streaming ${p.streamSize / 1024} KiB messages, msg/s`, "higher"],
  ["streamAfterCallsMsgPerSec", (p) => `server streaming ${p.streamSize / 1024} KiB messages beside ${p.inFlight} idle request streams (OURS's pool; RAW OPEN's kept streams), msg/s`, "higher"],
  ["memRssMBPer1000", () => "memory per 1,000 open streams, RSS MB", "lower"],
  ["memHeapMBPer1000", () => "memory per 1,000 open streams, JS heap MB", "lower"],
  ["connectMs", () => "cold connect, median ms", "lower"],
];

/** Formats a ratio; `target` marks the issue's targets (✓/✗) where there is one. */
function ratioCell(x: number | undefined, target?: (x: number) => boolean): string {
  if (x === undefined || !Number.isFinite(x)) return "–";
  return `${x.toFixed(2)}×${target ? (target(x) ? " ✓" : " ✗") : ""}`;
}

async function rpc(): Promise<boolean> {
  console.log("rpc benchmark: OURS (RpcClient/RpcServer) vs RAW (QUIC stream per call) vs RAW on open streams vs grpc-js, one process, loopback");
  const runs: RpcRun[] = [];
  const failures: string[] = [];
  const cmds = [
    [bin("bun"), "bench/rpc.ts"],
    [bin("deno"), "run", "--no-prompt", "--unstable-net", "-A", "bench/rpc.ts"],
  ];
  for (const cmd of cmds) {
    const t0 = performance.now();
    try {
      // Same runner as the transport benchmark: one JSON line, partial results kept.
      const run = (await runTransportOn(cmd, 280_000)) as unknown as RpcRun;
      runs.push(run);
      console.log(`  ${run.runtime} ${run.version}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      if (run.exitCode || run.errors.length) {
        failures.push(`${run.runtime}: exit ${run.exitCode ?? 0}; ${run.errors.join("; ")}`);
      }
    } catch (e) {
      failures.push(String((e as Error).message));
    }
  }
  if (runs.length === 0) {
    console.error(failures.join("\n"));
    return false;
  }
  // Issue 15's targets: unary p50 at or below raw per-call p50 and 2.5× faster than grpc-js; req/s
  // at least raw per-call's (and 2× grpc-js); streaming at least 0.9× raw. p99 keeps issue 4's 1.25×.
  const rawTarget: Record<string, (x: number) => boolean> = {
    unaryP50Us: (x) => x <= 1,
    unaryP99Us: (x) => x <= 1.25,
    reqPerSec: (x) => x >= 1,
    streamMsgPerSec: (x) => x >= 0.9,
  };
  // Streaming beside idle request streams: against the raw stack holding the same idle streams.
  const openTarget: Record<string, (x: number) => boolean> = { streamAfterCallsMsgPerSec: (x) => x >= 0.9 };
  const grpcTarget: Record<string, (x: number) => boolean> = {
    unaryP50Us: (x) => x <= 0.4,
    reqPerSec: (x) => x >= 2,
  };
  const rows: string[] = [];
  const missed: string[] = [];
  for (const r of runs) {
    for (const [key, labelOf, _better] of RPC_METRICS) {
      const ours = r.results.ours?.[key];
      const raw = r.results.raw?.[key];
      const grpc = r.results.grpc?.[key];
      if (ours === undefined && raw === undefined && grpc === undefined) continue;
      const label = labelOf(r.params);
      const vr = r.ratios.oursOverRaw?.[key];
      const vg = r.ratios.oursOverGrpc?.[key];
      if (vr !== undefined && rawTarget[key] && !rawTarget[key](vr)) missed.push(`${r.runtime} ${label} vs raw (${vr.toFixed(2)}×)`);
      if (vg !== undefined && grpcTarget[key] && !grpcTarget[key](vg)) missed.push(`${r.runtime} ${label} vs grpc-js (${vg.toFixed(2)}×)`);
      const vo = r.ratios.oursOverRawOpen?.[key];
      if (vo !== undefined && openTarget[key] && !openTarget[key](vo)) missed.push(`${r.runtime} ${label} vs raw open (${vo.toFixed(2)}×)`);
      rows.push(
        `| ${r.runtime} ${r.version} | ${label} | ${cell(ours)} | ${cell(raw)} | ${cell(r.results.rawOpen?.[key])} | ${cell(grpc)} | ${ratioCell(vr, rawTarget[key])} | ${
          ratioCell(vo, openTarget[key])
        } | ${ratioCell(vg, grpcTarget[key])} |`,
      );
    }
  }
  const p = runs[0].params;
  const table = [
    `Measured ${DATE.slice(0, 10)} on ${MACHINE}; client and server in one process on 127.0.0.1. OURS = ` +
    "`RpcServer`/`RpcClient` with a handler returning its `Uint8Array` input (raw bytes, no payload codec); a call " +
    "takes an idle request stream of the connection or opens one, one call per stream at a time (issue 15); RAW = " +
    "the runtime's QUIC API used directly, one new bidirectional stream per call (the ceiling for a stream-per-call " +
    "design, DESIGN §4); RAW OPEN = the same API with streams kept open and reused the same way as OURS (the stack's " +
    "own cost of a message on an open stream: the ceiling for reuse; per-call rows and the streaming row beside " +
    "its idle streams); grpc-js = `@grpc/grpc-js` " +
    "unary and server streaming over plaintext " +
    `HTTP/2 with Buffer serializers. ${p.rounds} rounds alternating the order; latency pools ${count(p.unary * p.rounds)} ` +
    `sequential calls after ${count(p.unaryWarmup)} warm-up, the implementations interleaved 100 calls at a time; ` +
    `req/s: ${count(p.throughputCalls)} calls, ` +
    `${p.inFlight} in flight on one connection; streaming: ${count(p.streamMessages)} messages of ` +
    `${p.streamSize} B on one stream of a connection of its own, median of ${p.streamRuns} after ` +
    `${p.streamWarmupRuns ?? 1} warm-up streams, the implementations interleaved stream by stream (the ` +
    "\"beside idle request streams\" row: the same on a connection after 64 calls in flight, OURS with its reuse pool " +
    "of 64 idle streams, RAW OPEN with the 64 streams it keeps; each idle stream has a read pending in the stack); " +
    `memory: ${count(p.openStreams)} ` +
    "streams (OURS: EchoStreams; RAW: QUIC streams after one echo; grpc-js: server-streaming calls after one " +
    "message) held open on a fresh connection, RSS and heap delta after GC per 1,000 streams, client and server " +
    "sides together, each in a fresh child process; cold connect: median of " +
    `${p.connects} (OURS: QUIC handshake + HELLO/WELCOME; RAW: QUIC handshake; grpc-js: TCP + HTTP/2 until ` +
    "READY). Ratios are ours ÷ other (lower is better for µs, ms and MB; higher for req/s and msg/s); ✓/✗ mark " +
    "issue 15's targets: unary p50 at or below raw and at most 0.4× grpc-js (2.5× faster), p99 within 1.25× of raw, " +
    "req/s at least 1.0× raw and 2× grpc-js, streaming at least 0.9× raw (beside idle streams: 0.9× raw open). p99 values move by up to 2× from run to " +
    "run on this machine.",
    "",
    "| runtime | metric | ours | raw | raw open | grpc-js | ours ÷ raw | ours ÷ raw open | ours ÷ grpc-js |",
    "|---|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    missed.length ? `Targets missed: ${missed.join("; ")}.` : "Every target is met.",
  ].join("\n");
  console.log(table);
  if (failures.length) console.error(`rpc benchmark problems:\n  ${failures.join("\n  ")}`);
  // The security layer's cost per call: the same server with a policy, rate limits and limits.
  const secRows: string[] = [];
  const secMissed: string[] = [];
  const secTarget: Record<string, (x: number) => boolean> = { unaryP50Us: (x) => x <= 1.05, reqPerSec: (x) => x >= 0.95 };
  for (const r of runs) {
    for (const [key, labelOf] of RPC_METRICS.filter(([k]) => ["unaryP50Us", "unaryP99Us", "reqPerSec"].includes(k))) {
      const plain = r.results.ours?.[key];
      const sec = r.results.secured?.[key];
      if (plain === undefined || sec === undefined) continue;
      const v = r.ratios.securedOverOurs?.[key];
      if (v !== undefined && secTarget[key] && !secTarget[key](v)) secMissed.push(`${r.runtime} ${labelOf(r.params)} (${v.toFixed(2)}×)`);
      secRows.push(`| ${r.runtime} ${r.version} | ${labelOf(r.params)} | ${cell(plain)} | ${cell(sec)} | ${ratioCell(v, secTarget[key])} |`);
    }
  }
  const secTable = secRows.length
    ? [
      "",
      "### Security layer overhead",
      "",
      "The same server and client with an access policy (allow/deny patterns per kind, per-peer rules), a " +
      "per-address rate limit on another name, a per-principal rate limit every call passes, `authenticate` and " +
      "explicit limits, beside OURS with none, in the same process and rounds. Target (issue 12): unary p50 and " +
      "req/s within 5% of none configured.",
      "",
      "| runtime | metric | none | policy + limits | ratio |",
      "|---|---|---|---|---|",
      ...secRows,
      "",
      secMissed.length ? `Missed: ${secMissed.join("; ")}.` : "Within 5% everywhere.",
    ].join("\n")
    : "";
  if (secTable) console.log(secTable);
  // OpenTelemetry's cost per call: OURS with an SDK registered vs without, each in a child process.
  const otelRows: string[] = [];
  const otelSeen: string[] = [];
  for (const r of runs) {
    for (const [key, labelOf] of RPC_METRICS.filter(([k]) => ["unaryP50Us", "unaryP99Us", "reqPerSec"].includes(k))) {
      const plain = r.results.untraced?.[key];
      const traced = r.results.traced?.[key];
      if (plain === undefined || traced === undefined) continue;
      const v = r.ratios.tracedOverOurs?.[key];
      otelRows.push(`| ${r.runtime} ${r.version} | ${labelOf(r.params)} | ${cell(plain)} | ${cell(traced)} | ${ratioCell(v)} |`);
    }
    if (r.otel) {
      const h = Object.entries(r.otel.histogramCounts).map(([n, c]) => `${count(c)} in \`${n}\``).join(", ");
      otelSeen.push(
        `${r.runtime}: ${count(r.otel.calls)} calls made, ${count(r.otel.spansExported)} spans exported ` +
          `(${r.otel.spansPerCall.toFixed(2)} per call)${h ? `, ${h}` : ""}`,
      );
    }
  }
  const otelRounds = runs[0].params.otelRounds ?? 0;
  const otelTable = otelRows.length
    ? [
      "",
      "### OpenTelemetry overhead",
      "",
      `OURS alone (one server, one client, the same unary and req/s loops) in child processes of the benchmark, ${otelRounds} ` +
      "rounds of two, alternating which goes first: one with no OpenTelemetry SDK registered, one with an SDK registered " +
      "as an application would (a `BasicTracerProvider`, default parent-based always-on sampling, `BatchSpanProcessor` " +
      "with its defaults to an exporter that drops the spans; a `MeterProvider` with a `PeriodicExportingMetricReader` " +
      "every 1 s to an exporter that drops the data; the W3C trace-context propagator; the `AsyncLocalStorage` context " +
      "manager). Registered, every call makes a CLIENT and a SERVER span, carries `traceparent` in its metadata and " +
      "records both call-duration histograms. The registration is global, so it happens only in its own child process, " +
      "never where the other rows are measured; the no-SDK column is its paired child, not the OURS column above. " +
      "No target: this is the cost of recording.",
      "",
      "| runtime | metric | no SDK | SDK registered | ratio |",
      "|---|---|---|---|---|",
      ...otelRows,
      "",
      otelSeen.length ? `Recorded: ${otelSeen.join("; ")}.` : "",
    ].join("\n")
    : "";
  if (otelTable) console.log(otelTable);

  writeFileSync(
    join(ROOT, "bench/results/rpc.json"),
    JSON.stringify({ date: DATE, cpus: cpus().length, machine: MACHINE, source: gitState(), runs }, null, 2) + "\n",
  );
  writeFileSync(
    join(ROOT, "bench/results/rpc.md"),
    table + "\n" + (secTable ? secTable + "\n" : "") + (otelTable ? otelTable + "\n" : ""),
  );
  updateReadme("rpc", table);
  return failures.length === 0;
}

// ---------------------------------------------------------------------------------------------
// Real-time: clock sync vs injected truth, jitter buffer through the relay, scale vs raw and
// grpc-js, WASM vs TS operation counts (bench/realtime.ts schedules the child processes)

// deno-lint-ignore no-explicit-any
type Rt = any;

const mark = (ok: boolean | undefined) => (ok === undefined ? "" : ok ? " ✓" : " ✗");
const num = (x: number | undefined | null, d = 2) => (x === undefined || x === null || !Number.isFinite(x) ? "–" : x.toFixed(d));

/** The operation counts as one table (bench/realtime_ops.ts: { op: { wasmOpsPerSec, tsOpsPerSec, ratio } }). */
function opsTable(ops: Rt): string[] {
  if (!ops || ops.missing) return [`Not measured${ops?.missing ? `: ${ops.missing}` : ""}.`];
  const rows: string[] = [];
  const other: string[] = [];
  const ops2 = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0));
  for (const [rt, run] of Object.entries(ops) as [string, Rt][]) {
    const res = run?.result;
    if (!res || typeof res !== "object") continue;
    for (const [op, v] of Object.entries(res) as [string, Rt][]) {
      if (v && typeof v.wasmOpsPerSec === "number" && typeof v.tsOpsPerSec === "number") {
        rows.push(`| ${rt} ${run.version ?? ""} | ${op} | ${ops2(v.wasmOpsPerSec)} | ${ops2(v.tsOpsPerSec)} | ${(v.wasmOpsPerSec / v.tsOpsPerSec).toFixed(2)}× |`);
      } else other.push(`${rt} ${op}: \`${JSON.stringify(v)}\``);
    }
  }
  const out = rows.length ? ["| runtime | hot path | WASM ops/s | TS ops/s | WASM ÷ TS |", "|---|---|---|---|---|", ...rows] : [];
  if (other.length) out.push("", ...other);
  return out;
}

function realtimeTable(r: Rt): { table: string; missed: string[] } {
  const missed: string[] = [];
  const check = (what: string, ok: boolean | undefined) => {
    if (ok === false) missed.push(what);
    return mark(ok);
  };
  const p = r.params;
  const out: string[] = [];
  const quick = r.quick ? " **QUICK=1 smoke run: short durations and small N; not the real figures.**" : "";
  out.push(
    `Measured ${DATE.slice(0, 10)} on ${MACHINE}${r.source ? ` (${r.source})` : ""}; every part in its own child process, ` +
      `127.0.0.1. Phase 1 ran concurrently (the clock runs, the three jitter-buffer runs, then the operation counts); ` +
      `the scale runs came after it, one at a time. Injected truth: the server's clock = system clock + θ + s·(t − t0), ` +
      `θ = +${p.thetaMs} ms, s = +${p.skewPpm} ppm; the client runs on the system clock. Relay = \`startRelay\` ` +
      `(src/testing/relay.ts) with the same impairment each way; its log (actual forward time − arrival) is the ground ` +
      `truth for one-way transit. Clock sync at its default 4 Hz. Single runs (one seed each), not the 20-seed ` +
      `statistics of docs/research; p99 figures move between runs.${
        r.loadAvg1m ? ` Machine load (1-min average) during the run: mean ${r.loadAvg1m.mean}, max ${r.loadAvg1m.max}.` : ""
      }${quick}`,
    "",
  );

  // Clock
  out.push("**Clock offset and skew** (client's estimate of the server clock, sampled every 1 s)", "");
  out.push("| runtime | condition | metric | result | target |", "|---|---|---|---|---|");
  for (const c of Object.values(r.clock ?? {}) as Rt[]) {
    if (!c) continue;
    const key = `clock ${c.mode} (${c.runtime})`;
    const rt = `${c.runtime} ${c.version}`;
    const s = c.params.seconds;
    if (c.mode === "loopback") {
      const cond = `loopback, ${s} s`;
      const e = c.errorMs;
      out.push(
        `| ${rt} | ${cond} | \\|offset error\\| p50 / p95 / p99 after ${c.fromS} s | ${num(e.p50 * 1000, 1)} / ${num(e.p95 * 1000, 1)} / ${
          num(e.p99 * 1000, 1)
        } µs | p99 ≤ 100 µs${check(`${key} offset p99`, e.p99 <= 0.1)} |`,
      );
      const sk = c.skewErrorPpm[String(s)];
      out.push(`| ${rt} | ${cond} | skew error at ${s} s | ${num(sk, 2)} ppm | ≤ 1 ppm${check(`${key} skew`, Math.abs(sk) <= 1)} |`);
      out.push(
        `| ${rt} | ${cond} | \\|error\\| ≤ uncertaintyMs (median ${num(c.uncertaintyMsMedian * 1000, 0)} µs) | ${num(c.coveragePct, 1)}% | ≥ 95%${
          check(`${key} coverage`, c.coveragePct >= 95)
        } |`,
      );
    } else {
      const rel = c.params.relay;
      const cond = `relay ${rel.jitter === "normal" ? "N" : "U"}(${rel.delayMs - rel.jitterMs},${rel.delayMs + rel.jitterMs}) ms each way, ${s} s`;
      const e = c.errorMs;
      out.push(
        `| ${rt} | ${cond} | \\|offset error\\| p50 / p95 / p99 after ${c.fromS} s | ${num(e.p50, 3)} / ${num(e.p95, 3)} / ${num(e.p99, 3)} ms | p95 ≤ 1 ms${
          check(`${key} offset p95`, e.p95 <= 1)
        } |`,
      );
      const ats = Object.keys(c.skewErrorPpm).map(Number).sort((a, b) => a - b);
      const last = ats.at(-1)!;
      const early = ats.slice(0, -1).map((t) => `${num(c.skewErrorPpm[t], 1)} ppm at ${t} s`).join(", ");
      out.push(
        `| ${rt} | ${cond} | skew error at ${last} s${early ? ` (${early})` : ""} | ${num(c.skewErrorPpm[last], 2)} ppm | ≤ 5 ppm${
          check(`${key} skew`, Math.abs(c.skewErrorPpm[last]) <= 5)
        } |`,
      );
      out.push(
        `| ${rt} | ${cond} | \\|error\\| ≤ uncertaintyMs (median ${num(c.uncertaintyMsMedian, 1)} ms) | ${num(c.coveragePct, 1)}% after ${c.fromS} s, ${
          num(c.coverageFrom10sPct, 1)
        }% after 10 s | ≥ 95%${check(`${key} coverage`, c.coveragePct >= 95 && c.coverageFrom10sPct >= 95)} |`,
      );
      if (c.relay) {
        out.push(
          `| ${rt} | ${cond} | relay truth: one-way mean to server / to client; bias (asymmetry/2); scheduling error p50 / p99 | ` +
            `${num(c.relay.oneWayMs.toServer.mean)} / ${num(c.relay.oneWayMs.toClient.mean)} ms; ${num(c.relay.asymmetryBiasMs, 3)} ms; ` +
            `${num(c.relay.schedulingErrorMs.p50)} / ${num(c.relay.schedulingErrorMs.p99)} ms | – |`,
        );
      }
    }
  }
  out.push("");

  // Jitter buffer
  out.push(
    `**Jitter buffer** (one time-synced stream, 50 fps, 500 B frames, default adaptive latency, ${
      r.jitter?.uniform?.mode ?? "datagram"
    } mode (\`.unreliable()\`), client → server through the relay; clock sync ran ${p.jbClockWarmupS} s before the stream opened; ` +
      `D = \`stats().latencyMs\` sampled every 250 ms (100 ms in the jump run); release error = \`stream.now()\` at release − \`alignedTime\`; the clock-model ` +
      "error is the server's estimate of the client's clock minus the truth, which shifts the transit the buffer sees. The clock " +
      "and jitter runs make one small request every 10 s: Bun's QUIC stack closes a connection after 60 s without stream data, " +
      "even while datagrams flow)",
    "",
  );
  out.push("| condition | metric | result | target |", "|---|---|---|---|");
  for (const [key, label] of [["uniform", "U(10,30) ms"], ["normal", "N(20,10) ms"]] as const) {
    const j = r.jitter?.[key];
    if (!j?.window) continue;
    const w = j.window;
    const cond = `${label}, ${w.toS - w.fromS} s after ${w.fromS} s`;
    const key2 = `jitter ${label}`;
    out.push(`| ${cond} | late (lost) | ${num(w.latePct, 2)}% (${w.lost} lost of ${w.received}) | ≤ 1%${check(`${key2} late`, w.latePct <= 1)} |`);
    out.push(
      `| ${cond} | mean D vs p99 one-way transit (relay log) + 3 ms (clock-model error in the window ${num(w.clockErrMeanMs, 2)} ms) | ${num(w.meanDMs, 1)} vs ${
        num(w.transitP99Ms, 1)
      } + 3 ms | mean D ≤ p99 + 3${
        check(`${key2} mean D`, w.meanDMs <= w.transitP99Ms + 3)
      } |`,
    );
    out.push(
      `| ${cond} | release error p50 / p99 / max | ${num(w.releaseErrorP50Ms)} / ${num(w.releaseErrorP99Ms)} / ${num(w.releaseErrorMaxMs)} ms | p99 ≤ 2 ms${
        check(`${key2} release error`, w.releaseErrorP99Ms <= 2)
      } |`,
    );
  }
  const jj = r.jitter?.jump?.jump;
  if (jj) {
    const pj = r.jitter.jump.params;
    const cond = `U(10,30) → U(10,80) at ${pj.jumpAtS} s → U(10,30) at ${pj.backAtS} s, to ${pj.endS} s`;
    out.push(
      `| ${cond} | time until D ≥ new p99 transit (${num(jj.newTransitP99Ms, 1)} ms) | ${jj.upS === null ? "never" : `${num(jj.upS, 2)} s`} | ≤ 5 s${
        check("jitter jump: D up", jj.upS !== null && jj.upS <= 5)
      } |`,
    );
    out.push(
      `| ${cond} | time until D within 5 ms of its pre-jump value (${num(jj.preDMs, 1)} ms) | ${
        jj.downS === null ? `not within ${pj.endS - pj.backAtS} s (D ${num(jj.DAtEndMs, 1)} ms at the end)` : `${num(jj.downS, 2)} s`
      } | ≤ 60 s${check("jitter jump: D back down", jj.downS !== null && jj.downS <= 60)} |`,
    );
    out.push(
      `| ${cond} | late before / during / after the jump | ${num(jj.before.latePct, 2)}% / ${num(jj.during.latePct, 2)}% / ${num(jj.after.latePct, 2)}% | – |`,
    );
  }
  out.push("");

  // Scale
  const sp = r.params;
  out.push(
    `**Scale on one connection** (client and server in separate processes on the same runtime; 160 B frames on every stream, ` +
      `paced in 20 staggered groups on an absolute schedule, each frame stamped with its scheduled time (a sender that falls behind ` +
      `shows as transit and late frames, for ours and raw alike); ${sp.scaleWarmupS} s warm-up, then ` +
      `${sp.scaleMeasureS} s measured. OURS = time-synced EchoStreams (\`withTimeSync()\`, default adaptive latency; reliable QUIC ` +
      "streams unless marked datagrams), the server taking every frame with `forEachAligned()` (called by the release; RT_SCALE_RECV=await for a `recvAligned()` loop). Transit p99 = the p99 over every " +
      "frame of the measured window of arrival − send time, the same for every stack (both processes on this machine's clock; OURS: " +
      "`arrivedAt` − sender timestamp of each released frame; RAW and grpc-js: arrival − the send time carried in the frame). " +
      "Per-stream p99 = each stream's own p99 of the same arrival − send time over the window, the median over streams (the issue's " +
      "measure; every stack alike; the jitter buffer's own estimate, `stats().transitP99Ms`, is in the notes). Send → release = release time − sender timestamp, which " +
      "includes the playout delay D. RAW = the runtime's QUIC API used directly (Bun `node:quic`, Deno `Deno.QuicEndpoint`), one " +
      "bidirectional stream per sender; grpc-js = one bidi-streaming call per sender on one HTTP/2 connection (Bun). Late % is given for the measured window and from the first frame " +
      "(warm-up included). Holds = late ≤ 1% (both ways of counting), lost ≤ 1%, the sender kept ≥ 95% of the nominal " +
      "rate and the receiver got ≥ 95% of what was sent. CPU = % of one core over the measured window.)",
    "",
  );
  out.push(
    "| runtime | stack | streams × rate | late % (window / from the first frame) | lost % | release error p99 ms | transit p99 ms | per-stream p99 ms | send → release p50 / p99 ms | transit > 50 ms | sent % of nominal | CPU server / client % | RSS server / client MB | holds |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const run of r.scale?.runs ?? []) {
    const stack = run.impl === "ours" ? `ours${run.unreliable ? " (datagrams)" : ""}` : run.impl === "raw" ? `raw ${run.rt === "bun" ? "node:quic" : "Deno.QuicEndpoint"}` : "grpc-js";
    const rate = `${count(run.n)} × ${run.fps} fps`;
    if (!run.server) {
      out.push(`| ${run.rt} | ${stack} | ${rate} | failed: ${String(run.failed ?? "").slice(0, 200).replaceAll("|", "/")} | | | | | | | | | | no |`);
      continue;
    }
    const s = run.server;
    const c = run.client;
    const ours = run.impl === "ours";
    out.push(
      `| ${run.rt} ${s.version} | ${stack} | ${rate} | ${ours ? `${num(s.latePct, 2)} / ${num(s.fromFirstFrame?.latePct, 2)}` : "–"} | ${ours ? num(s.lostPct, 2) : "–"} | ${ours ? num(s.release?.p99, 1) : "–"} | ${num(s.transit?.p99, 1)} | ${
        num(s.perStreamTransit?.p50OfStreams, 1)
      } | ${ours ? `${num(s.sendToRelease?.p50, 0)} / ${num(s.sendToRelease?.p99, 0)}` : "–"} | ${s.transitOver50Pct === undefined ? "–" : `${num(s.transitOver50Pct, 2)}%`} | ${num(c.sentPctOfNominal, 1)} | ${num(s.cpuPct, 0)} / ${num(c.cpuPct, 0)} | ${num(s.rssMB, 0)} / ${
        num(c.rssMB, 0)
      } | ${run.holds ? "yes" : `no (${Object.entries(run.checks ?? {}).filter(([, v]) => !v).map(([k]) => k).join(", ")})`} |`,
    );
  }
  out.push("");
  const runs: Rt[] = r.scale?.runs ?? [];
  const find = (f: (x: Rt) => boolean) => runs.find((x) => x.server && f(x));
  const N = sp.scaleN;
  const notes: string[] = [];
  for (const rt of ["bun", "deno"]) {
    const o = find((x) => x.impl === "ours" && x.rt === rt && x.n === N && x.fps === 50 && !x.unreliable);
    const raw = find((x) => x.impl === "raw" && x.rt === rt && x.n === N);
    const g = find((x) => x.impl === "grpc" && x.rt === rt && x.n === N);
    if (!o) continue;
    const t = o.server.transit?.p99 ?? NaN;
    // With several alternating pairs (`scale.pairs`), the target is judged on their median ratio.
    const pairs: Rt | undefined = r.scale?.pairs?.[rt];
    const many = pairs && pairs.pairs.length > 1 && pairs.medianPerStreamRatio !== undefined;
    // Judged on the issue's measure, per-stream transit p99 (each stream's own p99 of arrival −
    // send over the window, the median over streams, the same for both stacks); the pooled p99
    // over every frame, where one stall of the whole process counts in full, is given beside it.
    const ps = (x: Rt) => x?.server?.perStreamTransit?.p50OfStreams;
    const psRatio = raw ? ps(o) / ps(raw) : NaN;
    const jb = `the jitter buffer's own estimate for the median stream ${num(o.server.transitP99MsMedianOfStreams, 1)} ms`;
    const vs = [
      raw && many
        ? `per-stream transit p99 ours ÷ raw, median of ${pairs.pairs.length} alternating pairs ${num(pairs.medianPerStreamRatio, 2)}×${
          check(`scale ${rt} ${N} transit p99 vs raw`, pairs.medianPerStreamRatio <= 2)
        } (pairs: ${
          pairs.pairs.map((x: Rt) => x.perStreamRatio === undefined ? "failed" : `${num(x.ours.perStreamP99, 1)} vs ${num(x.raw.perStreamP99, 1)} ms, ${num(x.perStreamRatio, 2)}×`).join("; ")
        }); pooled p99 over every frame, median of the pairs ${num(pairs.medianRatio, 2)}× (pairs: ${
          pairs.pairs.map((x: Rt) => x.ratio === undefined ? "failed" : `${num(x.ours.transitP99, 1)} vs ${num(x.raw.transitP99, 1)} ms, ${num(x.ratio, 2)}×`).join("; ")
        }); the table's pair is the first; ${jb}`
        : raw
        ? `per-stream transit p99 ours ÷ raw ${num(psRatio, 2)}×${check(`scale ${rt} ${N} transit p99 vs raw`, psRatio <= 2)} (${num(ps(o), 1)} vs ${num(ps(raw), 1)} ms); pooled p99 ${
          num(t / raw.server.transit.p99, 2)
        }× (${num(t, 1)} vs ${num(raw.server.transit.p99, 1)} ms); ${jb}`
        : "",
      g ? `ours ÷ grpc-js ${num(t / g.server.transit.p99, 2)}× (${num(g.server.transit.p99, 1)} ms)` : "",
    ].filter(Boolean).join(", ");
    notes.push(
      `${count(N)} streams on ${rt === "bun" ? "Bun" : "Deno"}: late ${num(o.server.latePct, 2)}%${check(`scale ${rt} ${N} late`, o.server.latePct <= 1)}, ` +
        `release error p99 ${num(o.server.release?.p99, 1)} ms, send → release p99 ${num(o.server.sendToRelease?.p99, 0)} ms, CPU ${num(o.server.cpuPct, 0)}% + ` +
        `${num(o.client.cpuPct, 0)}% of a core, RSS ${num(o.server.rssMB, 0)} + ${num(o.client.rssMB, 0)} MB${vs ? `; ${vs}` : ""}`,
    );
  }
  const searched = (r.scale?.searched ?? []).map((x: Rt) => `${count(x.n)} ${x.holds ? "✓" : "✗"}`).join(", ");
  notes.push(`largest stream count holding late ≤ 1% (ours, Bun, reliable, 50 fps): **${count(r.scale?.largestHoldingN ?? 0)}** (tried ${searched})`);
  const low = find((x) => x.fps === 1 && x.impl === "ours");
  const lowRaw = find((x) => x.fps === 1 && x.impl === "raw");
  if (low) {
    notes.push(
      `${count(low.n)} open streams at 1 frame/s on one connection (Bun): ${low.holds ? "works" : "does not hold"}; opened in ${num(low.client.openMs / 1000, 1)} s, ` +
        `late ${num(low.server.latePct, 2)}%, transit p99 ${num(low.server.transit?.p99, 1)} ms (median per-stream p99 ${num(low.server.perStreamTransit?.p50OfStreams, 1)} ms), RSS ${num(low.server.rssMB, 0)} MB server / ${num(low.client.rssMB, 0)} MB client, CPU ${num(low.server.cpuPct, 0)}% / ${
          num(low.client.cpuPct, 0)
        }% (the server is saturated, and the raw stack's own transit p99 at this count is the next line)`,
    );
  }
  if (lowRaw) {
    notes.push(
      `raw node:quic with ${count(lowRaw.n)} streams at 1 frame/s: transit p50 / p99 ${num(lowRaw.server.transit.p50, 1)} / ${num(lowRaw.server.transit.p99, 1)} ms, ` +
        `CPU ${num(lowRaw.server.cpuPct, 0)}% / ${num(lowRaw.client.cpuPct, 0)}%: the stack's own per-stream cost`,
    );
  }
  out.push(...notes.map((x) => `- ${x}`), "");

  out.push(
    "**WASM vs plain TS** (`bench/realtime_ops.ts`, median of timed runs: jitter = one push of a 50 fps frame plus the pops it " +
      "makes due, over a 3,000-frame trace; clock = one estimator `add()` of a 4 Hz exchange, most of them refitting the 512-sample regression)",
    "",
    ...opsTable(r.ops),
    "",
  );
  if (r.errors?.length) out.push(`Problems during the run: ${r.errors.join("; ")}.`, "");
  out.push(missed.length ? `Targets missed: ${missed.join("; ")}.` : "Every target is met.");
  return { table: out.join("\n"), missed };
}

async function realtime(): Promise<boolean> {
  const quick = process.env.QUICK === "1";
  console.log(`realtime benchmark${quick ? " (QUICK=1)" : ""}: clock sync, jitter buffer, scale, WASM vs TS; child processes, loopback`);
  const t0 = performance.now();
  // The library under test: HEAD plus uncommitted changes, at the start and at the end (a change in
  // between means the child processes did not all run the same code).
  const sourceState = () => {
    const git = (...args: string[]) => {
      const x = Bun.spawnSync(["git", ...args], { cwd: ROOT, stdout: "pipe", stderr: "ignore" });
      return x.exitCode === 0 ? x.stdout.toString().trim() : "";
    };
    const head = git("rev-parse", "--short", "HEAD");
    const dirty = git("status", "--porcelain", "src", "wasm", "mod.ts");
    return head ? `${head}${dirty ? ` + uncommitted changes (${git("diff", "HEAD", "--", "src", "wasm", "mod.ts").length} B of diff)` : ""}` : "";
  };
  const sourceBefore = sourceState();
  const p = Bun.spawn([bin("bun"), "bench/realtime.ts"], { cwd: ROOT, stdout: "pipe", stderr: "inherit" });
  const kill = setTimeout(() => p.kill(9), (quick ? 10 : 35) * 60_000);
  const out = await new Response(p.stdout).text();
  const code = await p.exited;
  clearTimeout(kill);
  let r: Rt;
  try {
    r = JSON.parse(out.trim().split("\n").pop() ?? "");
  } catch {
    console.error(`bench/realtime.ts exited ${code} without a result${p.signalCode ? ` (killed: ${p.signalCode})` : ""}`);
    return false;
  }
  console.log(`  ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const sourceAfter = sourceState();
  r.source = sourceBefore === sourceAfter ? sourceBefore : `${sourceBefore}, changed to ${sourceAfter} during the run`;
  const { table } = realtimeTable(r);
  console.log(table);
  writeFileSync(
    join(ROOT, "bench/results/realtime.json"),
    JSON.stringify({ date: DATE, cpus: cpus().length, machine: MACHINE, ...r }, null, 2) + "\n",
  );
  writeFileSync(join(ROOT, "bench/results/realtime.md"), table + "\n");
  updateReadme("realtime", table);
  return code === 0;
}

// ---------------------------------------------------------------------------------------------
// Discovery: RpcServer.start() with enableDiscovery -> first discovery by another process, and
// close() -> down, between two network namespaces (real multicast; needs root).

async function discoveryPart(): Promise<boolean> {
  console.log("discovery benchmark: two network namespaces joined by a veth pair, Bun and Deno");
  const { discoveryBench } = await import("./discovery.ts");
  const r = await discoveryBench(5);
  if (r.skipped) {
    console.log(`  skipped: ${r.skipped}`);
    return true;
  }
  const rows = Object.entries(r.results).map(([rt, x]) => {
    const f = (s: { min: number; median: number; max: number }) => `${s.median} (${s.min}–${s.max})`;
    return `| ${rt} | ${f(x.startToUpMs)} | ${f(x.discoverMs)} | ${f(x.closeToDownMs)} |`;
  });
  const table = [
    `Measured ${DATE.slice(0, 10)} on ${MACHINE}; server and browser in separate processes of the same runtime, in two network namespaces joined by a veth pair (real multicast); ${r.iterations} runs each, median (min–max) in ms. start → up: from \`server.start()\` of an RpcServer with \`enableDiscovery(name)\` to a browsing process's \`up\` event (RFC 6762 probing takes ~750 ms of it); discover: one \`discover()\` call (what \`RpcClient.discover\` runs) against a running service (includes its 300 ms settle time); close → down: from \`server.close()\` to the browser's \`down\` (goodbye packets).`,
    "",
    "| runtime | start → up ms | discover ms | close → down ms |",
    "|---|---|---|---|",
    ...rows,
  ].join("\n");
  console.log(table);
  writeFileSync(join(ROOT, "bench/results/discovery.json"), JSON.stringify({ date: DATE, machine: MACHINE, ...r }, null, 2) + "\n");
  writeFileSync(join(ROOT, "bench/results/discovery.md"), table + "\n");
  updateReadme("discovery", table);
  return true;
}

/** Runs a reliability benchmark script under Bun, passing its output through. */
async function scriptPart(name: string): Promise<boolean> {
  console.log(`${name} benchmark: ${SCRIPTS[name]}`);
  const p = Bun.spawn([process.execPath, join(ROOT, SCRIPTS[name])], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  const code = await p.exited;
  if (code !== 0) console.error(`${SCRIPTS[name]} exited ${code}`);
  return code === 0;
}

let ok = true;
if (ONLY && ONLY in SCRIPTS) ok = await scriptPart(ONLY);
if (!ONLY || ONLY === "codec") await codec();
if (!ONLY || ONLY === "transport") ok = (await transport()) && ok;
if (!ONLY || ONLY === "rpc") ok = (await rpc()) && ok;
if (!ONLY || ONLY === "realtime") ok = (await realtime()) && ok;
if (!ONLY || ONLY === "discovery") ok = (await discoveryPart()) && ok;
if (!ok) process.exit(1);
