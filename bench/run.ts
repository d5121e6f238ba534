// `npm run bench`: runs each benchmark on Bun and on Deno in separate processes, writes
// bench/results/<name>.json and .md, and refreshes the matching table in README.md.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const bin = (name: string) => {
  const local = join(ROOT, "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
};

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
    rows.push(`| ${r.runtime} ${r.version} | ${label} | ${w.toFixed(0)} | ${t.toFixed(0)} | ${(w / t).toFixed(2)}× |`);
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

writeFileSync(join(ROOT, "bench/results/codec.json"), JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, runs }, null, 2) + "\n");
writeFileSync(join(ROOT, "bench/results/codec.md"), table + "\n");

const readme = join(ROOT, "README.md");
const text = readFileSync(readme, "utf8");
const start = "<!-- bench:codec:start -->";
const end = "<!-- bench:codec:end -->";
const a = text.indexOf(start);
const b = text.indexOf(end);
if (a >= 0 && b > a) {
  writeFileSync(readme, text.slice(0, a + start.length) + "\n" + table + "\n" + text.slice(b));
  console.log("README.md table updated");
}
