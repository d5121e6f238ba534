// Runs one soak: a server in namespace A, `clients` client processes in namespace B, iptables in
// A dropping `loss` of the UDP packets on the veth each way. Why a namespace pair and not
// loopback: on `lo` a packet crosses OUTPUT and INPUT of the same namespace, so rules on both
// chains would drop ~2p per direction; across the veth each direction crosses A's chains once,
// so the drop rate each way is exactly `loss`, and a partition is one rule pair in A.
// Used by tests/reliability/soak.test.ts (short) and bench/soak.ts (50 clients × 2 min).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDevCertificates } from "../../src/security/dev_cert.ts";
import {
  type Child,
  createNetnsPair,
  dropUdp,
  type DropRules,
  iptablesUnavailableReason,
  listOwnRules,
  rssOf,
  runIn,
  spawnIn,
  spawnPiped,
  tool,
} from "../support/netns.ts";
import type { LiveCounts } from "./_soak_common.ts";
import { ask, waitIdle } from "./_soak_harness.ts";
import { reconcile, type SoakReport } from "./_soak_check.ts";

export type { SoakReport };

export interface SoakOptions {
  clients: number;
  durationMs: number;
  /** Drop probability each way (0 = no rules). */
  loss: number;
  seed?: number;
  /** RSS and counts sampling period. @default {5000} */
  sampleEveryMs?: number;
  /** Samples before this (ms after the last client started) are left out of the RSS slope. @default {20000} */
  warmupMs?: number;
  /** Multiplies the clients' pauses between operations (see _soak_client.ts). @default {1} */
  pace?: number;
  /**
   * Frame rate of the time-synced datagram streams. Measured here, receiving one 50 fps
   * time-synced stream costs about 5% of a core (each side), so 50 clients at 50 fps would need
   * more than the two cores of the machine. @default {50}
   */
  mediaFps?: number;
  /** Parts of the client mix to run ("echo", "work", "events", "streams", "media"). @default {all} */
  parts?: string[];
  /** Delay between client starts (starting 50 Bun processes at once starves a 2-core box). @default {150} */
  staggerMs?: number;
  log?: (m: string) => void;
}

const HERE = import.meta.dirname ?? new URL(".", import.meta.url).pathname;

/** A sample taken while the soak runs. */
export interface Sample {
  t: number;
  serverRss: number;
  clientRss: number[];
  counts: LiveCounts;
}

async function udpRcvbufErrors(ns: string): Promise<number> {
  const rows = (await runIn(ns, ["cat", "/proc/net/snmp"], { timeoutMs: 5000 })).stdout.split("\n").filter((l) => l.startsWith("Udp:"));
  const [names, values] = rows.map((l) => l.trim().split(/\s+/));
  return Number(values?.[names?.indexOf("RcvbufErrors") ?? -1] ?? NaN);
}

/** Runs the soak; throws (with the reason) when namespaces or iptables are unavailable. */
export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const why = iptablesUnavailableReason();
  if (why) throw new Error(`the soak needs network namespaces and iptables: ${why}`);
  const log = o.log ?? (() => {});
  const every = o.sampleEveryMs ?? 5000;
  const t0 = performance.now();
  const at = () => Math.round(performance.now() - t0);
  const dir = mkdtempSync(join(tmpdir(), "echostream-soak-"));
  const certs = await createDevCertificates();
  writeFileSync(join(dir, "cert.pem"), certs.cert);
  writeFileSync(join(dir, "key.pem"), certs.key);
  writeFileSync(join(dir, "ca.pem"), certs.ca);
  const pair = await createNetnsPair();
  let rules: DropRules | undefined;
  try {
    const a = pair.a.links[0];
    if (o.loss > 0) rules = await dropUdp(pair.a.name, { probability: o.loss, iface: a.veth });
    const server = spawnPiped(pair.a.name, [tool("bun"), join(HERE, "_soak_server.ts"), JSON.stringify({ bind: `${a.ipv4}:0`, certDir: dir })]);
    const { port } = await server.waitEvent<{ port: number }>("listening", 30_000);
    log(`server up on ${a.ipv4}:${port} in ${pair.a.name}; starting ${o.clients} clients`);

    const clients: Child[] = [];
    const samples: Sample[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const counts = await ask<LiveCounts>(server, "counts").catch(() => undefined);
        const serverRss = rssOf(server.proc.pid!);
        const clientRss = clients.map((c) => rssOf(c.proc.pid!)).filter((x): x is number => x !== undefined);
        if (counts && serverRss !== undefined) samples.push({ t: at(), serverRss, clientRss, counts });
        for (let waited = 0; sampling && waited < every; waited += 100) await new Promise((r) => setTimeout(r, 100));
      }
    })();

    for (let i = 0; i < o.clients; i++) {
      const cfg = { addr: `${a.ipv4}:${port}`, caFile: join(dir, "ca.pem"), id: i, durationMs: o.durationMs, seed: o.seed ?? 1, pace: o.pace ?? 1, parts: o.parts, mediaFps: o.mediaFps };
      clients.push(spawnIn(pair.b.name, [tool("bun"), join(HERE, "_soak_client.ts"), JSON.stringify(cfg)]));
      await new Promise((r) => setTimeout(r, o.staggerMs ?? 150));
    }
    const lastStart = at();
    log(`all clients started at ${lastStart} ms`);
    const results = await Promise.all(clients.map(async (c, i) => {
      try {
        return await c.waitEvent("result", o.durationMs + 120_000);
      } catch (e) {
        return { c: `c${i}`, violations: [`c${i}: no result (exit ${await Promise.race([c.exited, Promise.resolve("running")])}): ${String(e).slice(0, 1500)}`] };
      }
    }));
    await Promise.all(clients.map((c) => Promise.race([c.exited, new Promise((r) => setTimeout(r, 15_000))])));
    for (const c of clients) c.kill("SIGKILL"); // any still running after their result is a bug shown by exit codes
    const exitCodes = await Promise.all(clients.map((c) => c.exited));
    log(`clients done at ${at()} ms; waiting for the server to go idle`);
    // Everything the clients had must be freed once they are gone: connections included.
    const idle = await waitIdle(server, 0, 20_000);
    sampling = false;
    await sampler;
    const report = await ask<{ counts: LiveCounts; clients: Record<string, Record<string, unknown>>; rss: number; handlerErrors: number; cpuMs: number }>(server, "report", 30_000);
    const packets = {
      ...(rules ? await rules.counters() : { seen: [NaN, NaN], dropped: [0, 0] }),
      // Datagrams the kernel dropped because a socket's receive buffer was full: loss on top of
      // the rules', when a process falls behind (server's namespace, clients' namespace).
      rcvbufErrors: [await udpRcvbufErrors(pair.a.name), await udpRcvbufErrors(pair.b.name)],
    };
    await server.stop();
    await rules?.remove();
    const leftRules = await listOwnRules(pair.a.name);
    return reconcile({ options: o, wallMs: at(), lastStartMs: lastStart, results, exitCodes, idle, server: report, serverStderr: server.stderr, samples, packets, leftRules });
  } finally {
    await rules?.remove().catch(() => {});
    await pair.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
