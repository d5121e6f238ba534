// The short soak (issue 11 §3): 10 client processes × 15 s against one server, 2% of UDP packets
// dropped each way by iptables in the server's network namespace. Every request answers exactly
// once (or fails with the code it must), every event arrives once and in order, every stream is
// byte-exact, and once the clients are gone the server holds nothing. The long version (50
// clients × 2 min, with latency and memory figures) is bench/soak.ts. Needs root: without it the
// test fails and says why, it does not pass silently.

import { expect, test } from "bun:test";
import { iptablesUnavailableReason, listOwnNamespaces } from "../support/netns.ts";
import { runSoak } from "./_soak_run.ts";
import { idleWith, live } from "./_fault_harness.ts";

const CLIENTS = 10;

test(`soak: ${CLIENTS} clients × 15 s at 2% loss each way: exactly once, in order, byte-exact, nothing held after`, async () => {
  const why = iptablesUnavailableReason();
  if (why) throw new Error(`the soak needs network namespaces and iptables: ${why}`);
  // Half pace and 25 fps: every part of the mix still runs on every client, at about half the CPU.
  const r = await runSoak({ clients: CLIENTS, durationMs: 15_000, loss: 0.02, pace: 2, mediaFps: 25, sampleEveryMs: 3000, warmupMs: 5000 });
  const t = r.totals;
  console.log(
    `soak: ${t.requests + t.deadlineRequests} requests (${t.deadlineExceeded} past their deadline), ${t.eventsToServer}+${t.eventsToClient} events, ` +
      `${t.streamsOk} streams (${(t.streamBytes / 2 ** 20).toFixed(1)} MiB), ${t.datagramsSent} datagrams (${t.datagramsLostAtServer} lost); ` +
      `loss in/out ${(r.packets.lossIn * 100).toFixed(2)}%/${(r.packets.lossOut * 100).toFixed(2)}%; request p50/p99 ${r.latencyMs.request.p50}/${r.latencyMs.request.p99} ms; ` +
      `failure codes ${JSON.stringify(r.codes)}; ${(r.wallMs / 1000).toFixed(1)} s`,
  );
  expect(r.violations).toEqual([]);
  // The loss was real, at about the rate asked for, on both directions.
  expect(r.packets.dropped[0]).toBeGreaterThan(0);
  expect(r.packets.dropped[1]).toBeGreaterThan(0);
  expect(r.packets.lossIn).toBeGreaterThan(0.01);
  expect(r.packets.lossIn).toBeLessThan(0.03);
  // Every part of the mix ran, on every client.
  expect(t.clients).toBe(CLIENTS);
  expect(t.requestsOk).toBe(t.requests);
  expect(t.deadlineOk + t.deadlineExceeded).toBe(t.deadlineRequests);
  expect(t.deadlineExceeded).toBeGreaterThan(0);
  expect(t.eventsToServer).toBeGreaterThan(0);
  expect(t.eventsToClient).toBeGreaterThan(0);
  expect(t.streamsOk).toBe(t.streams);
  expect(t.streams).toBeGreaterThanOrEqual(CLIENTS);
  expect(t.mediaStreams).toBeGreaterThanOrEqual(CLIENTS);
  expect(t.datagramsReceivedByServer).toBeGreaterThan(0);
  // Back to zero once every client left; every client exited cleanly; no namespace left.
  expect(live(r.counts.final)).toEqual(idleWith(0));
  expect(r.exitCodes).toEqual(Array(CLIENTS).fill(0));
  expect(await listOwnNamespaces()).toEqual([]);
}, 150_000);
