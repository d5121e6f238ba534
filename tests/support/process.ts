// Test support: run a command in its own process and collect its output.

import { existsSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

/** Path of a runtime installed by `npm install` (bun, deno), falling back to PATH. */
export function tool(name: "bun" | "deno"): string {
  const local = join(ROOT, "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
}

/** Runs `cmd` to completion (killed after `timeoutMs`), with `stdin` as its input if given. */
export async function run(
  cmd: string[],
  opts: { timeoutMs?: number; env?: Record<string, string>; cwd?: string; stdin?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: "1", ...opts.env },
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 50_000,
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/**
 * Runs a child that prints its result as one JSON object on its last stdout line (with `input`
 * on stdin); throws, with everything it printed, when there is no such line.
 */
export async function runForJson<T = Record<string, unknown>>(cmd: string[], input: unknown, timeoutMs: number): Promise<T> {
  const r = await run(cmd, { stdin: JSON.stringify(input) + "\n", timeoutMs });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  if (!line.startsWith("{")) throw new Error(`${cmd.join(" ")} produced no result (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  return JSON.parse(line) as T;
}

export type Runtime = "bun" | "deno" | "node";

/**
 * Bundles TypeScript entry points for Node (which cannot run .ts) into a folder inside the repo,
 * so the bundles' bare imports (`@matrixai/quic`) resolve from node_modules.
 * @returns The folder and a cleanup function.
 */
export async function bundleForNode(entries: string[]): Promise<{ dir: string; cleanup: () => void }> {
  const { mkdirSync, mkdtempSync, rmSync } = await import("node:fs");
  mkdirSync(join(ROOT, "node_modules", ".cache"), { recursive: true });
  const dir = mkdtempSync(join(ROOT, "node_modules", ".cache", "echostream-node-"));
  const built = await run([
    tool("bun"),
    "build",
    ...entries,
    "--target=node",
    "--format=esm",
    "--packages=external",
    "--outdir",
    dir,
  ]);
  if (built.code !== 0) throw new Error(`bundling for node failed: ${built.stderr}`);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The command that runs `script` (a .ts file) on `rt`; for Node, its bundle in `nodeDir`
 * (from {@link bundleForNode}). Deno gets `--unstable-net -A`.
 */
export function runtimeCommand(rt: Runtime, script: string, args: string[], nodeDir?: string): string[] {
  if (rt === "bun") return [tool("bun"), script, ...args];
  if (rt === "deno") return [tool("deno"), "run", "--unstable-net", "-A", script, ...args];
  if (!nodeDir) throw new Error("runtimeCommand: node needs the bundle folder");
  const base = script.split("/").pop()!.replace(/\.ts$/, ".js");
  return [Bun.which("node") ?? "node", join(nodeDir, base), ...args];
}

/**
 * Starts a server child that prints one JSON line about itself (its address, CA…) first and
 * serves until its stdin closes. `stop()` closes stdin and kills it if it lingers.
 * @throws {Error} When it exits, or prints nothing within `timeoutMs`, before that line.
 */
export async function spawnServer<T = Record<string, unknown>>(
  cmd: string[],
  timeoutMs = 20_000,
): Promise<{ info: T; proc: ReturnType<typeof Bun.spawn>; stop: () => Promise<void> }> {
  const proc = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe", stderr: "ignore", cwd: ROOT });
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = setTimeout(() => proc.kill(), timeoutMs);
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${cmd.join(" ")} exited before printing its first line: ${text}`);
      text += new TextDecoder().decode(value);
    }
  } finally {
    clearTimeout(deadline);
    reader.releaseLock();
  }
  const stop = async () => {
    proc.stdin.end();
    const t = setTimeout(() => proc.kill(), 2000);
    await proc.exited;
    clearTimeout(t);
  };
  return { info: JSON.parse(text.split("\n")[0]) as T, proc, stop };
}
