// `npm run bench`: runs each benchmark on Bun and on Deno (the transport one on Node too, from
// a bundle) in separate processes, writes bench/results/<name>.json and .md, and refreshes the
// matching table in README.md. BENCH=codec, BENCH=transport or BENCH=rpc runs only that one.

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
if (ONLY && ONLY !== "codec" && ONLY !== "transport" && ONLY !== "rpc") {
  console.error(`BENCH=${ONLY}: expected "codec", "transport" or "rpc"`);
  process.exit(2);
}
const DATE = new Date().toISOString();
const MACHINE = `${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}`;

/** Replaces the README section between `<!-- bench:<name>:start -->` and `…:end -->`. */
function updateReadme(name: string, table: string): void {
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
  results: Record<"ours" | "raw" | "grpc", Record<string, number>>;
  ratios: Record<"oursOverRaw" | "oursOverGrpc", Record<string, number>>;
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
  console.log("rpc benchmark: OURS (RpcClient/RpcServer) vs RAW (QUIC stream per call) vs grpc-js, one process, loopback");
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
  // The issue's targets: within 1.25× of raw everywhere; 2× grpc-js on latency and req/s.
  const rawTarget: Record<string, (x: number) => boolean> = {
    unaryP50Us: (x) => x <= 1.25,
    unaryP99Us: (x) => x <= 1.25,
    reqPerSec: (x) => x >= 0.8,
    streamMsgPerSec: (x) => x >= 0.8,
  };
  const grpcTarget: Record<string, (x: number) => boolean> = {
    unaryP50Us: (x) => x <= 0.5,
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
      rows.push(
        `| ${r.runtime} ${r.version} | ${label} | ${cell(ours)} | ${cell(raw)} | ${cell(grpc)} | ${ratioCell(vr, rawTarget[key])} | ${
          ratioCell(vg, grpcTarget[key])
        } |`,
      );
    }
  }
  const p = runs[0].params;
  const table = [
    `Measured ${DATE.slice(0, 10)} on ${MACHINE}; client and server in one process on 127.0.0.1. OURS = ` +
    "`RpcServer`/`RpcClient` with a handler returning its `Uint8Array` input (raw bytes, no payload codec), one " +
    "QUIC stream per call; RAW = the runtime's QUIC API used directly, one new bidirectional stream per call " +
    "(the ceiling for that design, DESIGN §4); grpc-js = `@grpc/grpc-js` unary and server streaming over plaintext " +
    `HTTP/2 with Buffer serializers. ${p.rounds} rounds alternating the order; latency pools ${count(p.unary)} ` +
    `sequential calls per round after ${count(p.unaryWarmup)} warm-up; req/s: ${count(p.throughputCalls)} calls, ` +
    `${p.inFlight} in flight on one connection; streaming: ${count(p.streamMessages)} messages of ` +
    `${p.streamSize} B on one stream, median of ${p.streamRuns} per round; memory: ${count(p.openStreams)} ` +
    "streams (OURS: EchoStreams; RAW: QUIC streams after one echo; grpc-js: server-streaming calls after one " +
    "message) held open on a fresh connection, RSS and heap delta after GC per 1,000 streams, client and server " +
    "sides together, each in a fresh child process; cold connect: median of " +
    `${p.connects} (OURS: QUIC handshake + HELLO/WELCOME; RAW: QUIC handshake; grpc-js: TCP + HTTP/2 until ` +
    "READY). Ratios are ours ÷ other (lower is better for µs, ms and MB; higher for req/s and msg/s); ✓/✗ mark the " +
    "issue's targets: within 1.25× of raw (≥ 0.8× for throughput) and 2× grpc-js on latency and req/s. p99 values " +
    "move by up to 2× from run to run on this machine.",
    "",
    "| runtime | metric | ours | raw | grpc-js | ours ÷ raw | ours ÷ grpc-js |",
    "|---|---|---|---|---|---|---|",
    ...rows,
    "",
    missed.length ? `Targets missed: ${missed.join("; ")}.` : "Every target is met.",
  ].join("\n");
  console.log(table);
  if (failures.length) console.error(`rpc benchmark problems:\n  ${failures.join("\n  ")}`);

  writeFileSync(
    join(ROOT, "bench/results/rpc.json"),
    JSON.stringify({ date: DATE, cpus: cpus().length, machine: MACHINE, source: gitState(), runs }, null, 2) + "\n",
  );
  writeFileSync(join(ROOT, "bench/results/rpc.md"), table + "\n");
  updateReadme("rpc", table);
  return failures.length === 0;
}

let ok = true;
if (!ONLY || ONLY === "codec") await codec();
if (!ONLY || ONLY === "transport") ok = (await transport()) && ok;
if (!ONLY || ONLY === "rpc") ok = (await rpc()) && ok;
if (!ok) process.exit(1);
