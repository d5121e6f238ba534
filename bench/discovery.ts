// Discovery benchmark: inside two network namespaces joined by a veth pair (real multicast), for Bun
// and Deno as advertiser and browser (separate processes):
//   - startToUpMs: from `server.start()` of an RpcServer with `enableDiscovery(name)` being called to
//     a browsing process's `up` event (dominated by RFC 6762 probing: 3 probes 250 ms apart, then
//     the announcement);
//   - discoverMs: one discover() call against a service already up (answer + settle time);
//   - closeToDownMs: from `server.close()` being called to the browser's `down` event (goodbye packets).
// Needs root (ip netns); returns { skipped } otherwise. Exported for bench/run.ts; run alone with
// `bun bench/discovery.ts`.

import { createNetnsPair, netnsUnavailableReason, ROOT, spawnIn, tool } from "../tests/support/netns.ts";
import { DENO_ADVERTISE_PERMS, discovererCmd, type Rt } from "../tests/discovery/_runtimes.ts";

const RPC_ADVERTISER = `${ROOT}tests/discovery/_rpc_advertiser.ts`;
const rpcAdvertiserCmd = (rt: Rt, name: string) =>
  rt === "bun"
    ? [tool("bun"), RPC_ADVERTISER, JSON.stringify({ name })]
    : [tool("deno"), "run", "--no-prompt", "--unstable-net", ...DENO_ADVERTISE_PERMS, RPC_ADVERTISER, JSON.stringify({ name })];

interface Summary {
  n: number;
  min: number;
  median: number;
  max: number;
}

const summary = (xs: number[]): Summary => {
  const s = [...xs].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { n: s.length, min: r(s[0]), median: r(s[s.length >> 1]), max: r(s[s.length - 1]) };
};

/** Result of {@link discoveryBench}. */
export interface DiscoveryBenchResult {
  name: "discovery";
  skipped?: string;
  iterations: number;
  results: Record<string, { startToUpMs: Summary; discoverMs: Summary; closeToDownMs: Summary }>;
}

/**
 * Measures server.start() → first discovery and server.close() → down, per runtime, `iterations`
 * times each.
 * @returns Per runtime, min/median/max in milliseconds.
 */
export async function discoveryBench(iterations = 3): Promise<DiscoveryBenchResult> {
  const reason = netnsUnavailableReason();
  if (reason) return { name: "discovery", skipped: reason, iterations: 0, results: {} };
  const pair = await createNetnsPair();
  const results: DiscoveryBenchResult["results"] = {};
  try {
    for (const rt of ["bun", "deno"] as Rt[]) {
      const up: number[] = [];
      const disc: number[] = [];
      const down: number[] = [];
      for (let i = 0; i < iterations; i++) {
        const name = `Bench${rt}${i}`;
        const browser = spawnIn(pair.b.name, discovererCmd(rt, "browse", { name, requeryMs: 1000 }));
        await browser.waitEvent("ready", 15_000);
        const adv = spawnIn(pair.a.name, rpcAdvertiserCmd(rt, name));
        const ready = await adv.waitEvent<{ startAt: number }>("ready", 15_000);
        const seen = await browser.waitEvent<{ at: number }>("up", 10_000);
        up.push(seen.at - ready.startAt);
        const d = spawnIn(pair.b.name, discovererCmd(rt, "discover", { name, timeoutMs: 3000 }));
        disc.push((await d.waitEvent<{ ms: number }>("found", 15_000)).ms);
        await d.exited;
        adv.kill("SIGTERM");
        const closed = await adv.waitEvent<{ closeAt: number }>("closed", 5000);
        const gone = await browser.waitEvent<{ at: number }>("down", 5000);
        down.push(gone.at - closed.closeAt);
        await adv.exited;
        await browser.stop();
      }
      results[rt] = { startToUpMs: summary(up), discoverMs: summary(disc), closeToDownMs: summary(down) };
    }
  } finally {
    await pair.destroy();
  }
  return { name: "discovery", iterations, results };
}

if (import.meta.main) console.log(JSON.stringify(await discoveryBench(), null, 2));
