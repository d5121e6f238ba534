// Shared by the fault tests: certificates on disk (child servers read them, so a restarted
// server presents the same ones), starting the fault server, and bounded waits.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDevCertificates } from "../../src/security/dev_cert.ts";
import { type Child, spawnPiped, tool } from "../support/netns.ts";
import type { LiveCounts } from "./_soak_common.ts";
import { ask } from "./_soak_harness.ts";

export const HERE: string = import.meta.dirname ?? new URL(".", import.meta.url).pathname;

/** A temporary folder with cert.pem, key.pem and ca.pem. */
export interface CertDir {
  dir: string;
  ca: string;
  cleanup(): void;
}

export async function certDir(): Promise<CertDir> {
  const dir = mkdtempSync(join(tmpdir(), "echostream-faults-"));
  const certs = await createDevCertificates();
  writeFileSync(join(dir, "cert.pem"), certs.cert);
  writeFileSync(join(dir, "key.pem"), certs.key);
  writeFileSync(join(dir, "ca.pem"), certs.ca);
  return { dir, ca: certs.ca, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** What the fault server answers to "counts". */
export type FaultCounts = LiveCounts & { running: number; signals: number; events: number; handlerErrors: number; rss: number };

/** Starts tests/reliability/_fault_server.ts (in namespace `ns`, or here) and waits until it listens. */
export async function startFaultServer(
  o: { ns?: string; bind: string; certs: CertDir; gen?: number; handshakeTimeoutMs?: number; idleTimeoutMs?: number },
): Promise<{ child: Child; port: number }> {
  const cfg = { bind: o.bind, certDir: o.certs.dir, gen: o.gen, handshakeTimeoutMs: o.handshakeTimeoutMs, idleTimeoutMs: o.idleTimeoutMs };
  const child = spawnPiped(o.ns, [tool("bun"), join(HERE, "_fault_server.ts"), JSON.stringify(cfg)]);
  try {
    const { port } = await child.waitEvent<{ port: number }>("listening", 30_000);
    return { child, port };
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
}

export function counts(child: Child): Promise<FaultCounts> {
  return ask<FaultCounts>(child, "counts");
}

/** Polls `probe` until `ok` holds or `timeoutMs` passes; returns the last value either way. */
export async function pollUntil<T>(probe: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs: number, everyMs = 100): Promise<T> {
  const until = performance.now() + timeoutMs;
  let v = await probe();
  while (!ok(v) && performance.now() < until) {
    await new Promise((r) => setTimeout(r, everyMs));
    v = await probe();
  }
  return v;
}

/** The outcome of a promise within `ms`: its value, its error's code, or "hung". */
export async function settleWithin<T>(p: Promise<T>, ms: number): Promise<{ value?: T; code?: string; message?: string; hung?: true }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<{ hung: true }>((r) => (timer = setTimeout(() => r({ hung: true }), ms)));
  try {
    return await Promise.race([
      p.then((value) => ({ value }), (e) => ({ code: (e as { code?: string }).code ?? String(e), message: (e as Error).message })),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export { idleWith, live } from "./_soak_common.ts";
