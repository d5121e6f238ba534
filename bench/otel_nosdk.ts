// The cost of the OpenTelemetry hooks with no SDK registered: OURS' unary latency and req/s on
// this working tree beside a commit from before the instrumentation (default fa41d44: logs, no
// src/observe/otel.ts), run interleaved on the same machine (issue 14 goal: within 3%).
//
//   bun bench/otel_nosdk.ts                      # 6 rounds, Bun and Deno
//   REV=fa41d44 ROUNDS=4 RUNTIMES=bun bun bench/otel_nosdk.ts
//
// It checks the commit out into a throwaway git worktree (WORKTREE, default /tmp/wt-before; the
// main working tree is not touched), links node_modules into it, copies this tree's bench/rpc.ts
// over the old one (the same measuring code on both sides). The "after" side is a copy of this
// working tree taken at the start (SNAPSHOT, default /tmp/wt-after; SNAPSHOT=0 runs in place),
// so edits made to src/ while it runs do not change what is measured. Per round it runs
//
//   BENCH_RPC_ONLY=ours BENCH_RPC_STEPS=unary,throughput BENCH_RPC_MEMORY=0 BENCH_RPC_OTEL_ROUNDS=0 \
//     <runtime> bench/rpc.ts
//
// once in each tree, alternating which goes first. Each run is one process: 2 rounds (BENCH_RPC_ROUNDS)
// of 3,000 sequential 64 B calls after 300 warm-up (p50, p99 pooled) and 20,000 calls with 64 in
// flight (req/s, median). Reports the median over runs of each tree and after ÷ before, and writes
// bench/results/otel_nosdk.{json,md}. The worktree is removed at the end (KEEP=1 keeps it).

import { cpus, loadavg } from "node:os";
import { copyFileSync, existsSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const REV = process.env.REV ?? "fa41d44";
const WT = process.env.WORKTREE ?? "/tmp/wt-before";
const SNAP = process.env.SNAPSHOT === "0" ? undefined : (process.env.SNAPSHOT ?? "/tmp/wt-after");
const ROUNDS = Math.max(1, Number(process.env.ROUNDS ?? 6) || 6);
const RUNTIMES = (process.env.RUNTIMES ?? "bun,deno").split(",").map((x) => x.trim()).filter(Boolean);
const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);

function git(cwd: string, ...args: string[]): string {
  const r = Bun.spawnSync(["git", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString().trim();
}

/** HEAD plus a hash of the uncommitted library diff: what "after" measured. */
function sourceState(): string {
  const head = git(ROOT, "rev-parse", "--short", "HEAD");
  const diff = git(ROOT, "diff", "HEAD", "--", "src", "mod.ts", "wasm");
  return diff ? `${head} + uncommitted (${Bun.hash(diff).toString(16)})` : head;
}

interface One {
  unaryP50Us: number;
  unaryP99Us: number;
  reqPerSec: number;
  load1m: number;
  errors: string[];
}

async function runOnce(tree: string, runtime: string): Promise<One> {
  const cmd = runtime === "bun"
    ? [bin("bun"), "bench/rpc.ts"]
    : [bin("deno"), "run", "--no-prompt", "--unstable-net", "-A", "bench/rpc.ts"];
  const p = Bun.spawn(cmd, {
    cwd: tree,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      ...process.env,
      BENCH_RPC_ONLY: "ours",
      BENCH_RPC_STEPS: "unary,throughput",
      BENCH_RPC_MEMORY: "0",
      BENCH_RPC_OTEL_ROUNDS: "0",
    },
  });
  const kill = setTimeout(() => p.kill(9), 180_000);
  const [out] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  await p.exited;
  clearTimeout(kill);
  const r = JSON.parse(out.trim().split("\n").pop() ?? "{}");
  const o = r.results?.ours ?? {};
  if (o.unaryP50Us === undefined || o.reqPerSec === undefined) throw new Error(`${tree} ${runtime}: no result (${r.errors ?? out.slice(-300)})`);
  return { unaryP50Us: o.unaryP50Us, unaryP99Us: o.unaryP99Us, reqPerSec: o.reqPerSec, load1m: loadavg()[0], errors: r.errors ?? [] };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// The "before" tree.
if (!existsSync(WT)) git(ROOT, "worktree", "add", "--detach", WT, REV);
if (existsSync(join(WT, "src/observe/otel.ts"))) throw new Error(`${WT} has src/observe/otel.ts: not a tree from before the instrumentation`);
if (!existsSync(join(WT, "node_modules"))) symlinkSync(join(ROOT, "node_modules"), join(WT, "node_modules"));
copyFileSync(join(ROOT, "bench/rpc.ts"), join(WT, "bench/rpc.ts"));
const beforeRev = git(WT, "rev-parse", "--short", "HEAD");

const sourceAtStart = sourceState();
// The "after" tree: this working tree as it is now (HEAD and uncommitted changes), node_modules linked.
let AFTER = ROOT;
if (SNAP) {
  Bun.spawnSync(["rm", "-rf", SNAP]);
  Bun.spawnSync(["mkdir", "-p", SNAP]);
  const tar = Bun.spawnSync(["bash", "-c", `tar -C "${ROOT}" --exclude=./.git --exclude=./node_modules -cf - . | tar -C "${SNAP}" -xf -`]);
  if (tar.exitCode !== 0) throw new Error(`snapshot: ${tar.stderr.toString()}`);
  symlinkSync(join(ROOT, "node_modules"), join(SNAP, "node_modules"));
  AFTER = SNAP;
}
const runs: Record<string, { before: One[]; after: One[] }> = {};
const t0 = performance.now();
try {
  for (const rt of RUNTIMES) {
    runs[rt] = { before: [], after: [] };
    for (let i = 0; i < ROUNDS; i++) {
      const order: ("before" | "after")[] = i % 2 === 0 ? ["before", "after"] : ["after", "before"];
      for (const side of order) {
        const one = await runOnce(side === "before" ? WT : AFTER, rt);
        runs[rt][side].push(one);
        console.error(
          `${rt} round ${i + 1} ${side}: p50 ${one.unaryP50Us} µs, p99 ${one.unaryP99Us} µs, ${one.reqPerSec} req/s (load ${one.load1m.toFixed(2)})`,
        );
      }
    }
  }
} finally {
  if (process.env.KEEP !== "1") {
    git(ROOT, "worktree", "remove", "--force", WT);
    if (SNAP) Bun.spawnSync(["rm", "-rf", SNAP]);
  }
}
// In place, the tree may have changed between runs; a snapshot is what it was at the start.
const sourceAtEnd = SNAP ? sourceAtStart : sourceState();

const summary: Record<string, Record<string, { before: number; after: number; ratio: number; pairRatios: number[] }>> = {};
for (const [rt, r] of Object.entries(runs)) {
  summary[rt] = {};
  for (const k of ["unaryP50Us", "unaryP99Us", "reqPerSec"] as const) {
    const b = median(r.before.map((x) => x[k]));
    const a = median(r.after.map((x) => x[k]));
    const pairRatios = r.after.map((x, i) => Number((x[k] / r.before[i][k]).toFixed(3)));
    const d = k === "reqPerSec" ? 0 : 1;
    summary[rt][k] = { before: Number(b.toFixed(d)), after: Number(a.toFixed(d)), ratio: Number((a / b).toFixed(3)), pairRatios };
  }
}

const DATE = new Date().toISOString();
const MACHINE = `${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}`;
const source = sourceAtStart === sourceAtEnd ? sourceAtStart : `${sourceAtStart}, changed to ${sourceAtEnd} during the run`;
const labels = { unaryP50Us: "unary 64 B, sequential, p50 µs", unaryP99Us: "unary 64 B, sequential, p99 µs", reqPerSec: "unary 64 B, 64 in flight, req/s" };
const target: Record<string, (x: number) => boolean> = { unaryP50Us: (x) => x <= 1.03, reqPerSec: (x) => x >= 0.97 };
const rows: string[] = [];
for (const [rt, s] of Object.entries(summary)) {
  for (const [k, v] of Object.entries(s)) {
    const t = target[k];
    rows.push(
      `| ${rt} | ${labels[k as keyof typeof labels]} | ${v.before} | ${v.after} | ${v.ratio.toFixed(3)}×${t ? (t(v.ratio) ? " ✓" : " ✗") : ""} | ${
        v.pairRatios.map((x) => x.toFixed(2)).join(", ")
      } |`,
    );
  }
}
const md = [
  `Measured ${DATE.slice(0, 10)} on ${MACHINE}: OURS (bench/rpc.ts, \`BENCH_RPC_ONLY=ours BENCH_RPC_STEPS=unary,throughput\`) with no ` +
  `OpenTelemetry SDK registered, before the instrumentation (${beforeRev}) and after (${source}${SNAP ? ", a copy taken at the start" : ""}), ` +
  `${ROUNDS} runs each per runtime, ` +
  "interleaved (alternating which goes first), the same bench/rpc.ts on both sides. Each run: one process, 2 rounds of 3,000 sequential " +
  "calls (p50/p99 pooled) and of 20,000 calls with 64 in flight (req/s, median). Columns: median over runs; after ÷ before of the " +
  "medians (✓/✗: the goal, within 3% on p50 and req/s); after ÷ before per interleaved pair.",
  "",
  "| runtime | metric | before | after | after ÷ before | per pair |",
  "|---|---|---|---|---|---|",
  ...rows,
].join("\n");
console.log(md);
console.error(`${((performance.now() - t0) / 1000).toFixed(0)} s`);
writeFileSync(
  join(ROOT, "bench/results/otel_nosdk.json"),
  JSON.stringify({ date: DATE, machine: MACHINE, before: `${REV} (${beforeRev})`, after: source, rounds: ROUNDS, summary, runs }, null, 2) + "\n",
);
writeFileSync(join(ROOT, "bench/results/otel_nosdk.md"), md + "\n");
