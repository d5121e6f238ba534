// Unit tests of the browse side's wire handling and service table: no network, deterministic time.

import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { ServiceTable } from "../../src/discovery/_table.ts";
import { readResponse } from "../../src/discovery/_wire.ts";
import { checkServiceName, parseTxt, subtypeLabel } from "../../src/discovery/_names.ts";
import {
  advertise,
  type BrowseEvent,
  DEFAULT_DISCOVERY_LIMITS,
  DiscoveryError,
  emptyStats,
  resolveDiscoveryLimits,
  subtypeFor,
} from "../../src/discovery/mod.ts";
import { response, serviceRecords } from "./_packets.ts";

function setup(opts: { includeLoopback?: boolean; limits?: object } = {}) {
  let t = 1000;
  const events: BrowseEvent[] = [];
  const stats = emptyStats();
  const limits = resolveDiscoveryLimits(opts.limits);
  const table = new ServiceTable({
    name: "AudioService",
    includeLoopback: !!opts.includeLoopback,
    limits,
    stats,
    onEvent: (e) => events.push(e),
    now: () => t,
  });
  const feed = (buf: Uint8Array, port = 5353, iface?: string) => {
    const recs = readResponse(buf, port, limits, stats);
    if (recs) table.apply(recs, iface);
  };
  return { table, events, stats, feed, advance: (ms: number) => (t += ms) };
}

describe("subtype and names", () => {
  test("subtype is _es- plus 16 hex digits of sha256(NFC lower-case name)", () => {
    const hex = createHash("sha256").update("audioservice").digest("hex").slice(0, 16);
    expect(subtypeFor("AudioService")).toBe(`_es-${hex}`);
    expect(subtypeFor("AUDIOSERVICE")).toBe(subtypeFor("audioservice"));
    expect(subtypeLabel("Cafe\u0301")).toBe(subtypeLabel("Caf\u00e9")); // NFC
    expect(subtypeFor("Überwachung")).toMatch(/^_es-[0-9a-f]{16}$/);
  });

  test("service names must fit one DNS label", () => {
    expect(() => checkServiceName("")).toThrow(DiscoveryError);
    expect(() => checkServiceName("a.b")).toThrow(/dots/);
    expect(() => checkServiceName("x".repeat(64))).toThrow(/63 UTF-8 bytes/);
    expect(() => checkServiceName("é".repeat(32))).toThrow(/63/);
    expect(checkServiceName("Audio Service (kitchen)")).toBe("Audio Service (kitchen)");
  });

  test("advertise refuses bad options before touching the network", async () => {
    await expect(advertise({ name: "ok", port: 0 })).rejects.toThrow(/port/);
    await expect(advertise({ name: "ok", port: 5000, fingerprint: "xyz" })).rejects.toThrow(/fingerprint/);
    await expect(advertise({ name: "ok", port: 5000, txt: { fp: "1" } })).rejects.toThrow(/reserved/);
    await expect(advertise({ name: "ok", port: 5000, txt: { "a=b": "1" } })).rejects.toThrow(/TXT key/);
    await expect(advertise({ name: "ok", port: 5000, interfaces: ["no-such-if0"] })).rejects.toThrow(/no-such-if0/);
    await expect(advertise({ name: "ok", port: 5000, host: "203.0.113.9" })).rejects.toThrow(/belongs to no interface/);
  });

  test("TXT parsing: lower-case keys, first wins, boolean keys, limits", () => {
    const b = (s: string) => new TextEncoder().encode(s);
    const txt = parseTxt([b("V=1"), b("v=2"), b("flag"), b("fp=")], DEFAULT_DISCOVERY_LIMITS)!;
    expect({ ...txt }).toEqual({ v: "1", flag: "", fp: "" });
    expect(Object.getPrototypeOf(txt)).toBe(null);
    expect(parseTxt([b("=x")], DEFAULT_DISCOVERY_LIMITS)).toBeUndefined();
    expect(parseTxt([b("k\u0001=x")], DEFAULT_DISCOVERY_LIMITS)).toBeUndefined();
    expect(parseTxt(Array.from({ length: 65 }, (_, i) => b(`k${i}=1`)), DEFAULT_DISCOVERY_LIMITS)).toBeUndefined();
    expect(parseTxt(Array.from({ length: 10 }, () => b("x".repeat(250))), DEFAULT_DISCOVERY_LIMITS)).toBeUndefined();
  });
});

describe("service table", () => {
  test("one response makes a complete service; loopback dropped; IPv6 canonical; zone added", () => {
    const { feed, events, table } = setup();
    feed(
      response(
        serviceRecords({
          name: "AudioService",
          addresses: ["127.0.0.1", "10.0.0.7", "fe80::1", "fd66::1:0:0:0:1", "::1"],
        }),
      ),
      5353,
      "eth0",
    );
    expect(events.map((e) => e.type)).toEqual(["up"]);
    const s = table.services()[0];
    expect(s).toMatchObject({
      name: "AudioService",
      instance: "AudioService",
      host: "AudioService.local",
      port: 5000,
      version: 1,
    });
    expect(s.addresses).toEqual(["10.0.0.7", "fd66:0:0:1::1", "fe80::1%eth0"]);
    expect(s.fingerprint).toBe("ab".repeat(32));
    expect(s.txt.alpn).toBe("echostream/1");
  });

  test("loopback kept with includeLoopback; a loopback-only service is not returned without it", () => {
    const a = setup({ includeLoopback: true });
    a.feed(response(serviceRecords({ name: "AudioService", addresses: ["127.0.0.1"] })));
    expect(a.table.services()[0].addresses).toEqual(["127.0.0.1"]);
    const b = setup();
    b.feed(response(serviceRecords({ name: "AudioService", addresses: ["127.0.0.1"] })));
    expect(b.table.services()).toEqual([]);
  });

  test("records in any order: additionals before the PTR still resolve", () => {
    const { feed, table } = setup();
    const recs = serviceRecords({ name: "AudioService" });
    feed(response(recs.slice().reverse()));
    expect(table.services()).toHaveLength(1);
  });

  test("other service names and foreign svc are not returned; renamed instances are", () => {
    const { feed, table } = setup();
    feed(response(serviceRecords({ name: "Other" })));
    feed(response(serviceRecords({ name: "AudioService", instance: "AudioService (2)", host: "h2.local" })));
    // svc mismatch behind our subtype (a hash collision or a liar): ignored
    feed(response(serviceRecords({ name: "AudioService", instance: "Liar", txt: ["svc=Nope"] })));
    // no svc: the instance name decides
    feed(
      response(serviceRecords({ name: "AudioService", instance: "audioservice (3)", host: "h3.local", txt: ["v=1"] })),
    );
    expect(table.services().map((s) => s.instance)).toEqual(["AudioService (2)", "audioservice (3)"]);
  });

  test("change: a new port is a new up; goodbye (TTL 0) is down", () => {
    const { feed, events, table } = setup();
    feed(response(serviceRecords({ name: "AudioService" })));
    feed(response(serviceRecords({ name: "AudioService" }))); // same data: no event
    feed(response(serviceRecords({ name: "AudioService", port: 6000 })));
    expect(events.map((e) => [e.type, e.service.port])).toEqual([["up", 5000], ["up", 6000]]);
    feed(response(serviceRecords({ name: "AudioService", ttl: 0 })));
    expect(events.at(-1)).toMatchObject({ type: "down", service: { port: 6000 } });
    expect(table.services()).toEqual([]);
  });

  test("TTL expiry takes a service down", () => {
    const { feed, events, advance, table } = setup();
    feed(response(serviceRecords({ name: "AudioService", ttl: 2 })));
    advance(1500);
    table.sweep();
    expect(events).toHaveLength(1);
    advance(600);
    table.sweep();
    expect(events.map((e) => e.type)).toEqual(["up", "down"]);
  });

  test("liveness: maxMissed queries without an answer → down; an answer resets the count", () => {
    const { feed, events, advance, table } = setup();
    table.liveness(2); // query 0
    feed(response(serviceRecords({ name: "AudioService" })));
    advance(1000);
    table.liveness(2); // query 1: seen since query 0
    advance(1000);
    table.liveness(2); // query 2: missed once
    feed(response(serviceRecords({ name: "AudioService" })));
    advance(1000);
    table.liveness(2); // answered: reset
    advance(1000);
    table.liveness(2); // miss 1
    expect(events.map((e) => e.type)).toEqual(["up"]);
    advance(1000);
    table.liveness(2); // miss 2 → down
    expect(events.map((e) => e.type)).toEqual(["up", "down"]);
  });

  test("follow-up questions for missing SRV/TXT and addresses, throttled", () => {
    const { feed, table, advance } = setup();
    const recs = serviceRecords({ name: "AudioService" });
    feed(response([recs[0]]));
    expect(table.followUps().map((q) => q.type)).toEqual(["SRV", "TXT"]);
    expect(table.followUps()).toEqual([]);
    feed(response([recs[2], recs[3]]));
    advance(1000);
    expect(table.followUps().map((q) => q.type)).toEqual(["A", "AAAA"]);
  });
});

describe("hostile input is dropped and counted", () => {
  test("malformed, oversized, queries, wrong port, too many records", () => {
    const { feed, stats, table } = setup();
    feed(new Uint8Array([1, 2, 3]));
    feed(new Uint8Array(9001));
    feed(response(serviceRecords({ name: "AudioService" })), 40000);
    const many = Array.from({ length: 200 }, (_, i) => ({ type: "A", name: `h${i}.local`, ttl: 1, data: "10.0.0.1" }));
    feed(response(many));
    expect(stats).toMatchObject({ malformed: 1, oversized: 1, nonCompliant: 1, tooManyRecords: 1, responses: 0 });
    expect(table.services()).toEqual([]);
  });

  test("huge TXT, bad class and wrong-typed records for our names are invalid", () => {
    const { feed, stats, table } = setup();
    const big = Array.from({ length: 20 }, (_, i) => `k${i}=${"x".repeat(200)}`);
    feed(response(serviceRecords({ name: "AudioService", txt: big })));
    expect(stats.invalidRecords).toBe(1);
    expect(table.services()).toEqual([]);
    const recs = serviceRecords({ name: "AudioService", instance: "B" });
    recs[0].class = "CH";
    feed(response([recs[0]]));
    expect(stats.invalidRecords).toBe(2);
    // a PTR under our subtype that points outside our type
    feed(response([{ type: "PTR", name: recs[0].name, ttl: 10, data: "evil.example.com" }]));
    expect(stats.invalidRecords).toBe(3);
  });

  test("a flood of instances is capped at maxServices", () => {
    const { feed, stats, table } = setup({ limits: { maxServices: 8 } });
    for (let i = 0; i < 100; i++) {
      feed(response(serviceRecords({ name: "AudioService", instance: `S${i}`, host: `h${i}.local` })));
    }
    expect(table.services()).toHaveLength(8);
    expect(stats.servicesDropped).toBeGreaterThanOrEqual(92); // one per refused PTR (type and subtype)
  });

  test("addresses per host are capped", () => {
    const { feed, stats, table } = setup({ limits: { maxAddressesPerHost: 4 } });
    const addresses = Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}`);
    feed(response(serviceRecords({ name: "AudioService", addresses })));
    expect(table.services()[0].addresses).toHaveLength(4);
    expect(stats.addressesDropped).toBe(6);
  });

  test("fuzz: random and mutated packets never throw and leave the table usable", () => {
    const { feed, table } = setup();
    const valid = response(serviceRecords({ name: "AudioService", instance: "Fuzz" }));
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        (rand, muts) => {
          feed(rand);
          const m = valid.slice();
          for (const [i, v] of muts) m[i % m.length] = v;
          feed(m);
          feed(m.subarray(0, m.length >> 1));
        },
      ),
      { numRuns: 2000, seed: 7 },
    );
    expect(table.services().length).toBeLessThanOrEqual(DEFAULT_DISCOVERY_LIMITS.maxServices);
    feed(response(serviceRecords({ name: "AudioService", instance: "After", host: "after.local" })));
    expect(table.services().some((s) => s.instance === "After")).toBe(true);
  });
});
