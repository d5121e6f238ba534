// Long run of the protocol state-machine fuzzer (tests/fuzz/): the same cases and checks as
// `npm test` runs, for many more cases, and writes bench/results/fuzz.md. Bun only (the raw peer
// is the Bun transport). Environment:
//
//   FUZZ_RUNS=2000      cases per mode (default 2000)
//   FUZZ_SECONDS=600    stop starting new cases after this long, per mode (default 600)
//   FUZZ_SEED=123       seed (default: random, printed and recorded)
//   FUZZ_MODE=server    "server", "client" or "both" (default both)
//   FUZZ_PATH=12:0:3    replay one failing case (seed and path as printed; writes no report)
//   FUZZ_STRICT=1       tracked bugs (tests/fuzz/_known.ts) fail the run too
//
//   bun bench/fuzz.ts
//   FUZZ_SEED=20261203 FUZZ_MODE=server FUZZ_PATH=43:0:0 bun bench/fuzz.ts   # replay

import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { fuzz, type FuzzReport } from "../tests/fuzz/_fuzz.ts";
import { FIXED, KNOWN } from "../tests/fuzz/_known.ts";

const env = process.env;
const runs = Number(env.FUZZ_RUNS ?? 2000);
const seconds = Number(env.FUZZ_SECONDS ?? 600);
const seed = Number(env.FUZZ_SEED ?? (Date.now() ^ (Math.random() * 2 ** 31)) >>> 0);
const modes: ("server" | "client")[] = env.FUZZ_MODE === "server" || env.FUZZ_MODE === "client" ? [env.FUZZ_MODE] : ["server", "client"];
const replay = env.FUZZ_PATH;

const reports: FuzzReport[] = [];
for (const mode of modes) {
  console.log(`fuzz ${mode}: seed ${seed}, up to ${runs} cases / ${seconds} s${replay ? `, replaying path ${replay}` : ""}`);
  const r = await fuzz({ mode, seed, runs: replay ? 1 : runs, timeLimitMs: seconds * 1000, strict: env.FUZZ_STRICT === "1", path: replay, debug: !!replay });
  console.log(`  ${r.cases} cases in ${(r.ms / 1000).toFixed(1)} s: ${r.failed ? `FAILED (path ${r.path})` : "no new finding"}`);
  if (r.failed) console.log(r.counterexample + "\n" + r.findings.map((f) => `  ${f.kind}: ${f.detail}`).join("\n"));
  for (const [t, k] of Object.entries(r.known)) console.log(`  tracked bug seen ${k.count}×: ${t}`);
  reports.push(r);
}

// A replay reproduces one case; it leaves the long run's report alone.
if (replay) process.exit(reports.some((r) => r.failed) ? 1 : 0);

const fence = (s: string) => "```\n" + s + "\n```";
const lines = [
  "# Protocol fuzzer: long run",
  "",
  `Run ${new Date().toISOString()} on ${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}, Bun ${process.versions.bun}, by \`bun bench/fuzz.ts\`` +
  ` (FUZZ_RUNS=${runs}, FUZZ_SECONDS=${seconds}, FUZZ_SEED=${seed}${replay ? `, FUZZ_PATH=${replay}` : ""}).`,
  "What the fuzzer does and checks: docs/TESTING.md (\"Protocol fuzzer\"). Replay a failure with the same seed and",
  "`FUZZ_PATH=<path> FUZZ_MODE=<mode>`.",
  "",
  "| mode | seed | cases | seconds | result | tracked bugs seen |",
  "|---|---|---|---|---|---|",
  ...reports.map((r) =>
    `| ${r.mode} | ${r.seed} | ${r.cases} | ${(r.ms / 1000).toFixed(1)} | ${r.failed ? `new finding, path \`${r.path}\`` : "no new finding"} | ${Object.values(r.known).reduce((a, k) => a + k.count, 0)} |`
  ),
  "",
];
for (const r of reports.filter((r) => r.failed)) {
  lines.push(`## New finding (${r.mode}, seed ${r.seed}, path ${r.path})`, "", fence(r.counterexample ?? ""), "");
  for (const f of r.findings) lines.push(`- ${f.kind}: ${f.detail.split("\n")[0]}`);
  lines.push("");
}
lines.push("## Tracked bugs (fix outside the fuzzer's files; regression tests fail until fixed)", "");
for (const k of KNOWN) {
  const seen = reports.map((r) => r.known[k.test]).find((x) => x);
  lines.push(`- **${k.test}** (tests/fuzz/regressions.test.ts): seen ${reports.reduce((a, r) => a + (r.known[k.test]?.count ?? 0), 0)}× this run`);
  if (seen) lines.push("", fence(seen.example.split("\n").slice(0, 14).join("\n")), "");
}
lines.push("", "## Fixed (regression tests pass)", "");
for (const f of FIXED) lines.push(`- **${f.test}**: ${f.where}; found by ${f.foundBy}`);
const out = fileURLToPath(new URL("./results/fuzz.md", import.meta.url));
writeFileSync(out, lines.join("\n") + "\n");
console.log(`wrote ${out}`);
process.exit(reports.some((r) => r.failed) ? 1 : 0);
