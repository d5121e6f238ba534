/**
 * Picks the transport adapter for the running runtime, loading only that one.
 *
 * @module
 */

import type { Transport } from "./types.ts";
import { TransportError, TransportErrorCode } from "./transport_error.ts";

/** The runtime this code runs on. */
export function runtimeName(): "bun" | "deno" | "node" {
  if ("Bun" in globalThis) return "bun";
  if ("Deno" in globalThis) return "deno";
  return "node";
}

/**
 * The transport for this runtime: Bun's `node:quic`, or Deno's QUIC (needs `--unstable-net`).
 *
 * @param name Override the runtime's choice.
 * @returns The adapter.
 * @throws {TransportError} `UNSUPPORTED` on Node (the `@matrixai/quic` adapter is not built yet).
 */
export async function defaultTransport(name: "bun" | "deno" | "node" = runtimeName()): Promise<Transport> {
  if (name === "bun") return (await import("./bun.ts")).bunTransport;
  if (name === "deno") return (await import("./deno.ts")).denoTransport;
  throw new TransportError(TransportErrorCode.UNSUPPORTED, "no QUIC transport for Node yet: the @matrixai/quic adapter is not built");
}
