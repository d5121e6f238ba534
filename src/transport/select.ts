/**
 * Picks the transport adapter for the running runtime, loading only that one.
 *
 * @module
 */

import type { Transport } from "./types.ts";

/** The runtime this code runs on. */
export function runtimeName(): "bun" | "deno" | "node" {
  if ("Bun" in globalThis) return "bun";
  if ("Deno" in globalThis) return "deno";
  return "node";
}

/**
 * The transport for this runtime: Bun's `node:quic`, Deno's QUIC (needs `--unstable-net`), or
 * `@matrixai/quic` on Node (no datagrams; see docs/TRANSPORT.md).
 *
 * @param name Override the runtime's choice.
 * @returns The adapter.
 */
export async function defaultTransport(name: "bun" | "deno" | "node" = runtimeName()): Promise<Transport> {
  if (name === "bun") return (await import("./bun.ts")).bunTransport;
  if (name === "deno") return (await import("./deno.ts")).denoTransport;
  return (await import("./node.ts")).nodeTransport;
}
