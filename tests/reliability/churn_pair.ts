// Runs one churn pair: a churn_server.ts child on one runtime and a churn_client.ts child on
// another, separate processes on loopback. Shared by churn.test.ts and bench/churn.ts.

import { join } from "node:path";
import { runForJson, runtimeCommand, spawnServer } from "../support/process.ts";
import type { ChurnConfig, ChurnResult } from "./churn_client.ts";

export type { ChurnConfig, ChurnResult, WaveResult } from "./churn_client.ts";

const SERVER = join(import.meta.dir, "churn_server.ts");
const CLIENT = join(import.meta.dir, "churn_client.ts");

/** Starts a churn server on `rt`; `stop()` closes its stdin and kills it if it lingers. */
export async function startChurnServer(rt: "bun" | "deno"): Promise<{ address: string; ca: string; stop: () => Promise<void> }> {
  const { info, stop } = await spawnServer<{ address: string; ca: string }>(runtimeCommand(rt, SERVER, []));
  return { ...info, stop };
}

/** Runs a churn client on `rt` against `server`; rejects if it prints no result in `timeoutMs`. */
export function runChurnClient(rt: "bun" | "deno", server: { address: string; ca: string }, cfg: Omit<ChurnConfig, "ca">, timeoutMs: number): Promise<ChurnResult> {
  return runForJson<ChurnResult>(runtimeCommand(rt, CLIENT, [server.address]), { ...cfg, ca: server.ca }, timeoutMs);
}
