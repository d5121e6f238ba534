// The protocol state-machine fuzzer, bounded for `npm test`: random well-formed frame sequences
// from a raw QUIC peer against a live RpcServer (mode "server") and a live RpcClient (mode
// "client"), 60 cases each with a fixed seed. Each mode runs in a child Bun process, because
// `bun test` takes unhandled rejections for itself and the fuzzer must tie each one to its case.
// Long runs: bench/fuzz.ts (docs/TESTING.md). FUZZ_SEED / FUZZ_RUNS / FUZZ_STRICT=1 apply here too.

import { expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FuzzOptions, FuzzReport } from "./_fuzz.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const SEEDS = { server: 20261203, client: 20261204 };

/** Runs the fuzzer in a child of this same Bun (killed after 55 s); its last line is the report. */
function fuzzInChild(o: FuzzOptions): Promise<FuzzReport> {
  const main = fileURLToPath(new URL("./_main.ts", import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [main, JSON.stringify(o)], { timeout: 55_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const line = stdout.trim().split("\n").pop() ?? "";
      if (!line.startsWith("{")) return reject(new Error(`the fuzzer produced no report (${err?.message ?? "no error"}):\n${stdout}\n${stderr}`));
      resolve(JSON.parse(line) as FuzzReport);
    });
  });
}

function describe(r: FuzzReport): string {
  const known = Object.entries(r.known).map(([t, k]) => `  tracked (${k.count}×): ${t}`);
  const head = `fuzz ${r.mode}: ${r.cases} cases, seed ${r.seed}, ${r.ms} ms${r.failed ? `, FAILED at path ${r.path}` : ""}`;
  const found = r.failed ? [`counterexample:\n${r.counterexample}`, ...r.findings.map((f) => `  ${f.kind}: ${f.detail}`)] : [];
  return [head, ...known, ...found].join("\n");
}

// The property "no unhandled rejection, no uncaught exception" is only as good as the collector:
// check, in the same kind of child process, that it sees both.
test("the fuzzer's collector sees unhandled rejections and uncaught exceptions in its process", async () => {
  const check = fileURLToPath(new URL("./_check.ts", import.meta.url));
  const code = `import { Collector } from ${JSON.stringify(check)}; const c = new Collector(); c.install();
    Promise.reject(new Error("r")); setTimeout(() => { throw new Error("x"); }, 1);
    setTimeout(() => console.log(JSON.stringify(c.since(0).map((f) => f.detail.split("\\n")[0]))), 50);`;
  const out = await new Promise<string>((resolve) => execFile(process.execPath, ["-e", code], { timeout: 10_000 }, (_e, stdout) => resolve(stdout)));
  expect(JSON.parse(out.trim() || "[]")).toEqual(["unhandled rejection: Error: r", "uncaught exception: Error: x"]);
}, 15_000);

for (const mode of ["server", "client"] as const) {
  test(`protocol fuzz against a live ${mode === "server" ? "RpcServer" : "RpcClient"}: no crash, hang, leak or unanswered violation`, async () => {
    const seed = Number(process.env.FUZZ_SEED ?? SEEDS[mode]);
    // No shrinking here (a failure prints the case and its path; replay it with bench/fuzz.ts).
    const report = await fuzzInChild({ mode, seed, runs: RUNS, shrink: false, strict: process.env.FUZZ_STRICT === "1" });
    console.log(describe(report));
    expect(report.failed ? describe(report) : "").toBe("");
    expect(report.cases).toBeGreaterThanOrEqual(RUNS);
  }, 60_000);
}
