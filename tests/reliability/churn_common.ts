// Shared by the churn child scripts: runtime name, RSS, stdin helpers (Bun and Deno alike).

interface NodeProcess {
  argv: string[];
  stdin: AsyncIterable<Uint8Array | string>;
  memoryUsage(): { rss: number };
  exit(code: number): never;
}
const proc = (globalThis as unknown as { process: NodeProcess }).process;

/** The runtime this child runs on. */
export const runtime: "bun" | "deno" = "Deno" in globalThis ? "deno" : "bun";

/** Command-line arguments after the script. */
export const args: string[] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? proc.argv.slice(2);

/** Resident set size of this process, MiB (one decimal). */
export function rss(): number {
  return Math.round(proc.memoryUsage().rss / 1e5) / 10;
}

/** Resolves once stdin has closed (the parent's signal to stop). */
export async function stdinClosed(): Promise<void> {
  for await (const _ of proc.stdin) { /* drain */ }
}

/** Reads stdin to its end and parses it as JSON. */
export async function stdinJson<T>(): Promise<T> {
  let text = "";
  const dec = new TextDecoder();
  for await (const c of proc.stdin) text += typeof c === "string" ? c : dec.decode(c, { stream: true });
  return JSON.parse(text) as T;
}

/** Ends this process. */
export function exit(code: number): never {
  return proc.exit(code);
}
