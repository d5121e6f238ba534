// Shared by the benchmark scripts: which runtime runs them, its version, and environment lookups
// that work on every runtime (and never throw without Deno's --allow-env).

// deno-lint-ignore no-explicit-any
export const G = globalThis as any;
export const RUNTIME: "bun" | "deno" | "node" = "Deno" in G ? "deno" : "Bun" in G ? "bun" : "node";
export const VERSION: string = RUNTIME === "deno" ? G.Deno.version.deno : RUNTIME === "bun" ? G.Bun.version : G.process.version;
export const env = (k: string): string | undefined => {
  try {
    return RUNTIME === "deno" ? G.Deno.env.get(k) : G.process.env[k];
  } catch {
    return undefined;
  }
};
