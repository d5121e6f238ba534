// Real multicast DNS between two network namespaces joined by two veth pairs: advertisers and
// discoverers run as separate Bun and Deno processes (`ip netns exec`). Needs root; skipped otherwise.

import { describe, expect, test } from "bun:test";
import { type Child, netnsUnavailableReason, ROOT, spawnIn, tool } from "../support/netns.ts";
import { usePair } from "./_pair.ts";
import type { DiscoveredService } from "../../src/discovery/mod.ts";
import { advertiserCmd, discovererCmd, type Rt } from "./_runtimes.ts";

const reason = netnsUnavailableReason();
if (reason) console.log(`skipping tests/discovery/multicast.test.ts: ${reason}`);

const FP = "3f".repeat(32);
type Found = { services: DiscoveredService[]; ms: number; stats: Record<string, number> };

describe.skipIf(!!reason)("mDNS between namespaces", () => {
  const net = usePair({ links: 2 });

  const startAdvertiser = async (rt: Rt, opts: Record<string, unknown>, ns = net.pair.a.name) => {
    const c = spawnIn(ns, advertiserCmd(rt, opts));
    const ready = await c.waitEvent<{ instanceName: string }>("ready", 15_000);
    return { child: c, ready };
  };
  /** SIGTERM: the fixture closes the advertisement; it must then exit by itself, promptly. */
  const closeAdvertiser = async (c: Child) => {
    c.kill("SIGTERM");
    const closed = await c.waitEvent<{ at: number }>("closed", 5000);
    const code = await Promise.race([c.exited, new Promise((r) => setTimeout(() => r("still running"), 5000))]);
    expect(code).toBe(0);
    return closed;
  };
  const discoverFrom = async (rt: Rt, opts: Record<string, unknown>, ns = net.pair.b.name) => {
    const c = spawnIn(ns, discovererCmd(rt, "discover", opts));
    const out = await c.waitEvent<Found>("found", 15_000);
    expect(await c.exited).toBe(0);
    return out;
  };

  for (const [adv, disc] of [["bun", "bun"], ["deno", "deno"], ["bun", "deno"], ["deno", "bun"]] as const) {
    test(`${adv} advertiser, ${disc} discoverer: port, addresses, TXT, fingerprint`, async () => {
      const { child } = await startAdvertiser(adv, { name: "AudioService", port: 5000, fingerprint: FP });
      try {
        const { services, ms } = await discoverFrom(disc, { name: "AudioService", timeoutMs: 4000 });
        expect(services).toHaveLength(1);
        const s = services[0];
        expect(s).toMatchObject({
          name: "AudioService",
          instance: "AudioService",
          port: 5000,
          fingerprint: FP,
          version: 1,
        });
        expect(s.txt).toMatchObject({ v: "1", alpn: "echostream/1", svc: "AudioService", fp: FP });
        // both links' IPv4 first, then ULA IPv6, then link-local with a zone; never loopback
        expect(s.addresses.slice(0, 4)).toEqual(["10.66.1.1", "10.66.2.1", "fd66:0:0:1::1", "fd66:0:0:2::1"]);
        expect(s.addresses.some((a) => a.startsWith("127.") || a === "::1")).toBe(false);
        expect(s.addresses.filter((a) => a.startsWith("fe80:")).every((a) => /%e/.test(a))).toBe(true);
        expect(ms).toBeLessThan(2500); // settles, does not wait the full timeout
      } finally {
        await closeAdvertiser(child);
      }
    }, 30_000);
  }

  test("discover returns [] within timeoutMs when nothing answers", async () => {
    const { services, ms } = await discoverFrom("bun", { name: "NobodyHere", timeoutMs: 1200 });
    expect(services).toEqual([]);
    expect(ms).toBeGreaterThanOrEqual(1150);
    expect(ms).toBeLessThan(2000);
  }, 15_000);

  test("two servers with the same name: both found, one renamed per RFC 6762 probing", async () => {
    const one = await startAdvertiser("bun", { name: "Twin", port: 5001 });
    const two = await startAdvertiser("deno", { name: "Twin", port: 5002 });
    try {
      expect([one.ready.instanceName, two.ready.instanceName].sort()).toEqual(["Twin", "Twin (2)"]);
      const { services } = await discoverFrom("bun", { name: "Twin", timeoutMs: 4000 });
      expect(services.map((s) => [s.instance, s.port]).sort()).toEqual(
        [[one.ready.instanceName, 5001], [two.ready.instanceName, 5002]].sort(),
      );
      expect(services.every((s) => s.name === "Twin")).toBe(true);
    } finally {
      await Promise.all([closeAdvertiser(one.child), closeAdvertiser(two.child)]);
    }
  }, 30_000);

  for (const rt of ["bun", "deno"] as const) {
    test(`browse (${rt}): up, down on goodbye at close, down by liveness after SIGKILL`, async () => {
      const browser = spawnIn(
        net.pair.b.name,
        discovererCmd(rt, "browse", { name: "Watched", requeryMs: 1000, maxMissed: 2 }),
      );
      await browser.waitEvent("ready", 10_000);
      const a = await startAdvertiser("bun", { name: "Watched", port: 6001 });
      const up = await browser.waitEvent<{ service: DiscoveredService }>("up", 5000);
      expect(up.service.port).toBe(6001);
      const closed = await closeAdvertiser(a.child);
      const down = await browser.waitEvent<{ at: number; service: DiscoveredService }>("down", 3000);
      expect(down.service.instance).toBe("Watched");
      expect(down.at - closed.at).toBeLessThan(1000);

      // a killed server sends no goodbye: the browser's own re-queries must notice
      const b = await startAdvertiser("bun", { name: "Watched", port: 6002 });
      await browser.waitLine((l) => l.includes('"up"') && l.includes("6002"), 5000);
      const killedAt = Date.now();
      b.child.kill("SIGKILL");
      await b.child.exited;
      const gone = await browser.waitLine((l) => l.includes('"down"') && l.includes("6002"), 8000);
      expect(JSON.parse(gone).at - killedAt).toBeLessThan(6000);
      browser.kill("SIGTERM");
      const end = await browser.waitEvent<{ stats: Record<string, number> }>("end", 5000);
      expect(end.stats.sent).toBeGreaterThan(0);
      expect(await browser.exited).toBe(0);
    }, 40_000);
  }

  test("interface restriction and a bound address, on both sides", async () => {
    const [a1, a2] = net.pair.a.links;
    const [b1, b2] = net.pair.b.links;
    const restricted = await startAdvertiser("bun", { name: "OnLink2", port: 7002, interfaces: [a2.veth] });
    const bound = await startAdvertiser("bun", { name: "Bound", port: 7001, host: a1.ipv4 });
    try {
      const all = await discoverFrom("bun", { name: "OnLink2", timeoutMs: 3000 });
      expect(all.services).toHaveLength(1);
      expect(all.services[0].addresses.filter((a) => !a.startsWith("fe80"))).toEqual([a2.ipv4, a2.ipv6]);

      const viaLink1 = await discoverFrom("bun", { name: "OnLink2", timeoutMs: 1500, interfaces: [b1.veth] });
      expect(viaLink1.services).toEqual([]);
      const viaLink2 = await discoverFrom("deno", { name: "OnLink2", timeoutMs: 3000, interfaces: [b2.ipv4] });
      expect(viaLink2.services.map((s) => s.port)).toEqual([7002]);

      const b = await discoverFrom("bun", { name: "Bound", timeoutMs: 3000 });
      expect(b.services.map((s) => s.addresses)).toEqual([[a1.ipv4]]);
    } finally {
      await Promise.all([closeAdvertiser(restricted.child), closeAdvertiser(bound.child)]);
    }
  }, 40_000);

  test(
    "malformed and hostile packets from a raw socket are dropped and counted; the browser keeps working",
    async () => {
      const browser = spawnIn(
        net.pair.b.name,
        discovererCmd("bun", "browse", { name: "Target", requeryMs: 1000, limits: { maxServices: 16 } }),
      );
      await browser.waitEvent("ready", 10_000);
      const inject = spawnIn(net.pair.a.name, [tool("bun"), `${ROOT}tests/discovery/_inject.ts`, "Target"]);
      const sent = await inject.waitEvent<{ counts: Record<string, number> }>("sent", 10_000);
      expect(await inject.exited).toBe(0);
      const a = await startAdvertiser("bun", { name: "Target", port: 8000 });
      try {
        const up = await browser.waitLine((l) => l.includes('"up"') && l.includes('"port":8000'), 5000);
        expect(JSON.parse(up).service.instance).toBe("Target");
      } finally {
        await closeAdvertiser(a.child);
      }
      browser.kill("SIGTERM");
      const { stats } = await browser.waitEvent<{ stats: Record<string, number> }>("end", 5000);
      expect(await browser.exited).toBe(0);
      expect(stats.malformed).toBeGreaterThanOrEqual(sent.counts.malformed);
      expect(stats.oversized).toBeGreaterThanOrEqual(sent.counts.oversized);
      expect(stats.nonCompliant).toBeGreaterThanOrEqual(sent.counts.wrongPort);
      expect(stats.tooManyRecords).toBeGreaterThanOrEqual(sent.counts.tooManyRecords);
      expect(stats.invalidRecords).toBeGreaterThanOrEqual(sent.counts.invalid);
      expect(stats.servicesDropped).toBeGreaterThan(0);
      // the flood's fake services were never complete enough to be reported, and memory stayed capped
      const ups = browser.events<{ event: string; service?: DiscoveredService }>().filter((e) => e.event === "up");
      expect(ups.every((e) => e.service!.instance === "Target" || e.service!.instance.startsWith("Flood"))).toBe(true);
      expect(ups.filter((e) => e.service!.instance.startsWith("Flood")).length).toBeLessThanOrEqual(16);
    },
    40_000,
  );
});
