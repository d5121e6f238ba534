// A network partition (issue 11 §4): iptables drops every UDP packet on the server's side of a
// veth pair for 5 s, then the rules go. Calls with deadlines fail on time with
// DEADLINE_EXCEEDED; a connection whose idle timeout is longer than the partition rides it out
// (a call without a deadline is answered afterwards, events all arrive); one with a shorter idle
// timeout is declared dead within it and reconnects; the server holds nothing extra afterwards.
// Needs root (namespaces, iptables): without it the test fails and says why.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { type Child, createNetnsPair, dropUdp, iptablesUnavailableReason, listOwnNamespaces, type NetnsPair, spawnPiped, tool } from "../support/netns.ts";
import { type CertDir, certDir, counts, HERE, idleWith, live, pollUntil, startFaultServer } from "./_fault_harness.ts";
import { isIdle } from "./_soak_common.ts";

const why = iptablesUnavailableReason();
const PARTITION_MS = 5000;
let certs: CertDir;
let pair: NetnsPair | undefined;

beforeAll(async () => {
  certs = await certDir();
  if (!why) pair = await createNetnsPair();
});
afterAll(async () => {
  await pair?.destroy();
  certs?.cleanup();
  if (!why) expect(await listOwnNamespaces()).toEqual([]);
});

test("a 5 s partition: deadlines fail on time, a long idle timeout rides it out, a short one reconnects, nothing leaks", async () => {
  if (why || !pair) throw new Error(`this test needs network namespaces and iptables: ${why}`);
  const a = pair.a.links[0];
  // The server's own idle timeout (8 s) outlasts the partition, so the steady client survives on
  // both ends, and the fragile client's dead connection is dropped by the server soon after.
  const server = await startFaultServer({ ns: pair.a.name, bind: `${a.ipv4}:0`, certs, idleTimeoutMs: 8000 });
  let client: Child | undefined;
  try {
    client = spawnPiped(pair.b.name, [tool("bun"), join(HERE, "_fault_partition_client.ts"), `${a.ipv4}:${server.port}`, join(certs.dir, "ca.pem")]);
    await client.waitEvent("ready", 20_000);
    expect(live(await counts(server.child))).toEqual(idleWith(2));
    const eventsBefore = (await counts(server.child)).events;

    const rules = await dropUdp(pair.a.name, { probability: 1, iface: a.veth });
    client.proc.stdin!.write("partitioned\n");
    await client.waitEvent("started", 5000);
    await new Promise((r) => setTimeout(r, PARTITION_MS));
    const { dropped } = await rules.counters();
    await rules.remove();
    client.proc.stdin!.write("healed\n");
    // deno-lint-ignore no-explicit-any
    const r = await client.waitEvent<any>("result", 30_000);
    expect(dropped[0]).toBeGreaterThan(0); // the partition was real: packets from the client were dropped
    const ms = (x: number) => Math.round(x);
    console.log(`partition: dropped ${dropped.join("/")} packets in/out; deadline calls failed after ${r.deadline.map((d: { ms: number }) => ms(d.ms)).join(", ")} ms; fragile declared dead after ${ms(r.fragileDeadAfterMs)} ms; no-deadline call answered after ${ms(r.across.ms)} ms`);

    // Each deadline call failed with DEADLINE_EXCEEDED, not before its deadline and not long
    // after (the bound is the behaviour under test: "on time", with slack for a shared CPU).
    for (const call of r.deadline) {
      expect(call.code).toBe("DEADLINE_EXCEEDED");
      expect(call.ms).toBeGreaterThanOrEqual(r.deadlineMs - 1);
      expect(call.ms).toBeLessThan(r.deadlineMs + 1000);
    }
    // The steady connection rode it out: the call without a deadline was answered exactly once,
    // every event arrived, no reconnection happened.
    expect(r.across).toMatchObject({ ok: true, value: "across" });
    expect(r.emitted).toBe(20);
    expect(r.emitFailures).toBe(0);
    expect(r.steady).toMatchObject({ connected: true, reconnects: 0, after: { ok: true, value: "steady after" } });
    expect(live(r.steady.counts)).toEqual(idleWith(1));
    const s = await pollUntil(() => counts(server.child), (c) => c.events - eventsBefore >= 20, 5000);
    expect(s.events - eventsBefore).toBe(20);

    // The fragile connection was declared dead within its 2 s idle timeout (+ the watchdog's
    // 0.5 s tick, + slack for a shared CPU), its call failed UNAVAILABLE, and it came back on a
    // new connection.
    expect(r.fragileDeadAfterMs).not.toBeNull();
    expect(r.fragileDeadAfterMs).toBeGreaterThanOrEqual(2000 - 500);
    expect(r.fragileDeadAfterMs).toBeLessThan(2000 + 1500);
    expect(r.lost.code).toBe("UNAVAILABLE");
    expect(r.fragile).toMatchObject({ connected: true, reconnects: 1, after: { ok: true, value: "fragile after" } });
    expect(live(r.fragile.counts)).toEqual(idleWith(1));

    // The server dropped the fragile client's dead connection and holds nothing else.
    expect(live(await pollUntil(() => counts(server.child), (c) => isIdle(c, 2), 15_000))).toEqual(idleWith(2));
    client.proc.stdin!.write("close\n");
    await client.waitEvent("closed", 10_000);
    expect(live(await pollUntil(() => counts(server.child), (c) => isIdle(c, 0), 10_000))).toEqual(idleWith(0));
  } finally {
    client?.kill("SIGKILL");
    server.child.kill("SIGKILL");
    await Promise.all([client?.exited, server.child.exited]);
  }
}, 90_000);
