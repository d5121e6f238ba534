// Avahi interop both ways, over real multicast between two namespaces: avahi-browse resolves our
// advertisement (address, port, TXT, subtype), and discover finds an avahi-publish-service one.
// Needs root and the Debian packages avahi-daemon avahi-utils dbus; skipped with a reason otherwise.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  createNetnsPair,
  listOwnNamespaces,
  type NetnsPair,
  netnsUnavailableReason,
  spawnIn,
} from "../support/netns.ts";
import type { DiscoveredService } from "../../src/discovery/mod.ts";
import { subtypeFor } from "../../src/discovery/mod.ts";
import { type Avahi, avahiBrowse, avahiUnavailableReason, startAvahi } from "./_avahi.ts";
import { advertiserCmd, discovererCmd } from "./_runtimes.ts";

const reason = netnsUnavailableReason() ?? avahiUnavailableReason();
if (reason) console.log(`skipping tests/discovery/avahi.test.ts: ${reason}`);

const FP = "c0".repeat(32);

describe.skipIf(!!reason)("Avahi interop", () => {
  let pair: NetnsPair;
  let avahi: Avahi;
  beforeAll(async () => {
    pair = await createNetnsPair();
    avahi = await startAvahi(pair.b.name, pair.b.links[0].veth, "esd-avahi");
  }, 20_000);
  afterAll(async () => {
    await avahi?.stop();
    await pair?.destroy();
    expect(await listOwnNamespaces()).toEqual([]);
  });

  test("avahi-browse -rpt _echostream._udp resolves our advertisement, and its subtype", async () => {
    const adv = spawnIn(pair.a.name, advertiserCmd("bun", { name: "AudioService", port: 5000, fingerprint: FP }));
    await adv.waitEvent("ready", 15_000);
    try {
      let rows: string[][] = [];
      for (let i = 0; i < 10 && rows.filter((r) => r[2] === "IPv4").length === 0; i++) {
        rows = await avahiBrowse(pair.b.name, avahi.env, "_echostream._udp");
      }
      // =;iface;IPv4;name;type;domain;host;address;port;txt
      const v4 = rows.find((r) => r[2] === "IPv4")!;
      expect(v4).toBeDefined();
      expect(v4.slice(3, 9)).toEqual([
        "AudioService",
        "_echostream._udp",
        "local",
        "AudioService.local",
        pair.a.links[0].ipv4,
        "5000",
      ]);
      const txt = v4[9];
      for (const kv of ["v=1", "alpn=echostream/1", "svc=AudioService", `fp=${FP}`]) expect(txt).toContain(`"${kv}"`);
      // the subtype browse finds it too (what discover asks for)
      const sub = await avahiBrowse(pair.b.name, avahi.env, `${subtypeFor("AudioService")}._sub._echostream._udp`);
      expect(sub.some((r) => r[3] === "AudioService" && r[8] === "5000")).toBe(true);
    } finally {
      adv.kill("SIGTERM");
      await adv.waitEvent("closed", 5000);
      expect(await adv.exited).toBe(0);
    }
  }, 40_000);

  for (const rt of ["bun", "deno"] as const) {
    test(`discover (${rt}) finds an avahi-publish-service service`, async () => {
      const name = `AvahiThing${rt}`;
      const pub = spawnIn(pair.b.name, [
        "avahi-publish-service",
        `--subtype=${subtypeFor(name)}._sub._echostream._udp`,
        name,
        "_echostream._udp",
        "9000",
        "v=1",
        "alpn=echostream/1",
        `svc=${name}`,
        `fp=${FP}`,
      ], { env: avahi.env });
      try {
        // "Established under name …" goes to stderr
        for (let i = 0; i < 200 && !pub.stderr.includes("Established"); i++) {
          await new Promise((r) => setTimeout(r, 25));
        }
        expect(pub.stderr).toContain("Established");
        const d = spawnIn(pair.a.name, discovererCmd(rt, "discover", { name, timeoutMs: 4000 }));
        const { services } = await d.waitEvent<{ services: DiscoveredService[] }>("found", 15_000);
        expect(await d.exited).toBe(0);
        expect(services).toHaveLength(1);
        expect(services[0]).toMatchObject({
          name,
          instance: name,
          host: "esd-avahi.local",
          port: 9000,
          fingerprint: FP,
          version: 1,
        });
        expect(services[0].addresses[0]).toBe(pair.b.links[0].ipv4);
      } finally {
        await pub.stop();
      }
    }, 40_000);
  }
});
