// Shared by the soak and fault child scripts and their harnesses: the byte pattern reliable
// streams carry, the server's live-state counters, stdin commands, and small helpers. Runtime
// neutral (node: modules only), so the children can run under Bun or Deno.

import process from "node:process";
import { createInterface } from "node:readline";
import type { RpcServer } from "../../src/rpc/server.ts";
import type { RpcClient } from "../../src/rpc/client.ts";

/** Resolves after `ms`, or rejects at once with the signal's reason when it fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Byte `i` of stream `seed`'s pattern: a multiplicative hash of the absolute offset, so a chunk
 * that is lost, repeated, reordered or shifted by one byte no longer matches.
 */
export function patternByte(seed: number, i: number): number {
  const x = Math.imul(i ^ seed, 0x9e3779b1) ^ (i >>> 11);
  return (x ^ (x >>> 16)) & 0xff;
}

/** `length` bytes of stream `seed`'s pattern from absolute offset `offset`. */
export function pattern(seed: number, offset: number, length: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let k = 0; k < length; k++) b[k] = patternByte(seed, offset + k);
  return b;
}

/** How many bytes of `chunk` (at absolute `offset`) differ from the pattern. */
export function patternMismatches(seed: number, offset: number, chunk: Uint8Array): number {
  let bad = 0;
  for (let k = 0; k < chunk.length; k++) if (chunk[k] !== patternByte(seed, offset + k)) bad++;
  return bad;
}

/** The live state a server or client holds: the numbers a leak check wants back at zero. */
export interface LiveCounts {
  connections: number;
  /** Connections accepted whose HELLO/WELCOME has not finished (server; 0 on a client). */
  handshaking: number;
  openStreams: number;
  datagramRoutes: number;
  pendingRequests: number;
  inFlight: number;
}

/** `server.stats()`, cut down to its live counts. */
export function serverCounts(server: RpcServer): LiveCounts {
  const s = server.stats();
  return { connections: s.connections, handshaking: s.handshaking, openStreams: s.openStreams, datagramRoutes: s.datagramRoutes, pendingRequests: s.pendingRequests, inFlight: s.inFlight };
}

/** `client.stats()`, cut down to its live counts (`connections`: 1 while connected). */
export function clientCounts(client: RpcClient): LiveCounts {
  const s = client.stats();
  return { connections: s.connected ? 1 : 0, handshaking: 0, openStreams: s.openStreams, datagramRoutes: s.datagramRoutes, pendingRequests: s.pendingRequests, inFlight: s.inFlight };
}

/** Whether every live count is zero except `connections`, which must equal `connections`. */
export function isIdle(c: LiveCounts, connections = 0): boolean {
  return c.connections === connections && c.handshaking === 0 && c.openStreams === 0 && c.datagramRoutes === 0 && c.pendingRequests === 0 && c.inFlight === 0;
}

/** The live counts only, from anything that has them (for readable assertion failures). */
export function live(c: LiveCounts): LiveCounts {
  const { connections, handshaking, openStreams, datagramRoutes, pendingRequests, inFlight } = c;
  return { connections, handshaking, openStreams, datagramRoutes, pendingRequests, inFlight };
}

/** Live counts of a side holding `connections` idle connections and nothing else. */
export function idleWith(connections: number): LiveCounts {
  return { connections, handshaking: 0, openStreams: 0, datagramRoutes: 0, pendingRequests: 0, inFlight: 0 };
}

/** Prints one JSON line (the harness parses stdout line by line). */
export function emit(event: string, body: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ event, ...body }) + "\n");
}

/** Calls `onCommand` for each line on stdin (commands from the harness); exits when stdin closes. */
export function commands(onCommand: (line: string) => void | Promise<void>): void {
  const rl = createInterface({ input: process.stdin });
  rl.on("line", (l) => void Promise.resolve(onCommand(l.trim())).catch((e) => emit("error", { where: l, message: String(e) })));
  // The harness went away (crashed or was killed): do not linger as an orphan.
  rl.on("close", () => process.exit(0));
}

/** The process's command-line arguments (after the script), on Bun, Deno and Node. */
export function args(): string[] {
  return process.argv.slice(2);
}

/** p-quantile (0..1) of `xs` (sorted in place), NaN when empty. */
export function quantile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  xs.sort((a, b) => a - b);
  return xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];
}
