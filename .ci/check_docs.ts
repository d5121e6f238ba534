/**
 * Type-checks the TypeScript examples in README.md and docs/*.md.
 *
 * Every fenced block opened with ```ts (or ```typescript) is written to its own module in a
 * temporary directory and all of them are checked with one `deno check`, using this repository's
 * deno.json, where `@echostream/core` and its subpaths (`@echostream/core/testing`, …) resolve to
 * the files in this checkout (`jsr:@echostream/core…` is rewritten to the same). Failures are
 * reported as `file.md:line:column`.
 *
 * A block that is a deliberate fragment opts out with a marker on the line before its fence:
 *
 *     <!-- not-checked: why -->
 *
 * A block another block of the same Markdown file imports (`import type { Api } from "./server.ts"`)
 * is named with `<!-- file: server.ts -->` on the line before its fence.
 *
 * Run from anywhere: `deno run --allow-read --allow-write --allow-run .ci/check_docs.ts`
 * (exits 1 when a block fails, or when a marker has no reason).
 *
 * @module
 */

const root = new URL("..", import.meta.url).pathname;
const files = [
  "README.md",
  ...[...Deno.readDirSync(`${root}docs`)].map((e) => `docs/${e.name}`).filter((f) => f.endsWith(".md")).sort(),
];
const OPT_OUT = /^<!--\s*not-checked:(.*)-->$/;
const NAMED = /^<!--\s*file:\s*([\w.-]+\.ts)\s*-->$/;

interface Block {
  file: string;
  /** Line of the first line of code (1-based). */
  line: number;
  code: string;
  /** Where the block is written: a directory per Markdown file, `blockN.ts` unless named. */
  path: string;
}

const dir = Deno.makeTempDirSync({ prefix: "check_docs_" });
const blocks: Block[] = [];
const skipped: string[] = [];
let bad = false;
for (const [f, file] of files.entries()) {
  Deno.mkdirSync(`${dir}/${f}`);
  const lines = Deno.readTextFileSync(root + file).split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i])) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith("```"));
    if (end < 0) throw new Error(`${file}:${i + 1}: unterminated code block`);
    let prev = i - 1;
    while (prev >= 0 && lines[prev].trim() === "") prev--;
    const marker = prev >= 0 ? lines[prev].trim() : "";
    const optOut = OPT_OUT.exec(marker);
    if (optOut) {
      const reason = optOut[1].trim();
      if (!reason) bad = true;
      skipped.push(`${file}:${i + 1}: not checked: ${reason || "(no reason given: say why)"}`);
    } else {
      const path = `${dir}/${f}/${NAMED.exec(marker)?.[1] ?? `block${blocks.length}.ts`}`;
      if (blocks.some((b) => b.path === path)) throw new Error(`${file}:${i + 1}: a second block named ${marker}`);
      blocks.push({ file, line: i + 2, code: lines.slice(i + 1, end).join("\n"), path });
    }
    i = end;
  }
}

for (const b of blocks) {
  // Each block is its own module (`export {}`), so names do not collide between blocks.
  Deno.writeTextFileSync(b.path, `${b.code.replaceAll('"jsr:@echostream/core', '"@echostream/core')}\nexport {};\n`);
}

const out = await new Deno.Command(Deno.execPath(), {
  args: ["check", "--quiet", "--config", `${root}deno.json`, ...blocks.map((b) => b.path)],
  env: { NO_COLOR: "1" },
  stdout: "piped",
  stderr: "piped",
}).output();
Deno.removeSync(dir, { recursive: true });

// Point diagnostics at the Markdown: file:///tmp/…/0/block7.ts:3:5 → README.md:98:5.
const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
const failing = new Set<Block>();
const report = text.replace(/file:\/\/(\S+?\.ts)(?::(\d+))?(?::(\d+))?/g, (m, path, l, c) => {
  const b = blocks.find((b) => b.path === path);
  if (!b) return m;
  failing.add(b);
  return `${b.file}:${b.line + Number(l ?? 1) - 1}${c ? `:${c}` : ""}`;
});

for (const s of skipped) console.log(s);
console.log(`checked ${blocks.length} blocks in ${files.length} files, ${skipped.length} opted out`);
if (!out.success) {
  console.error(report.trim());
  for (const b of blocks.filter((b) => failing.has(b))) console.error(`FAILED ${b.file}:${b.line - 1}`);
  Deno.exit(1);
}
if (bad) Deno.exit(1);
