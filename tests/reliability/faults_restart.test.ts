// The server process is SIGKILLed mid-traffic and restarted on the same port (issue 11 §4):
// a client with `reconnect` comes back; every call in flight fails with UNAVAILABLE (none
// hangs); streams fail the same way; a time-synced datagram stream can be reopened afterwards
// and the clock model is the same object, its estimate kept across the gap.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { RpcClient } from "../../src/rpc/client.ts";
import type { Child } from "../support/netns.ts";
import { type CertDir, certDir, counts, idleWith, live, pollUntil, settleWithin, startFaultServer } from "./_fault_harness.ts";
import { clientCounts, isIdle, sleep } from "./_soak_common.ts";

let certs: CertDir;
beforeAll(async () => void (certs = await certDir()));
afterAll(() => certs?.cleanup());

/** Opens a time-synced datagram stream, sends `n` frames, and returns how many echoes came back. */
async function syncedRoundTrip(client: RpcClient, n: number): Promise<number> {
  const s = await client.createStream("sync").withTimeSync().unreliable().build();
  let got = 0;
  const reader = (async () => {
    for (let f = await s.recvAligned(); f; f = await s.recvAligned()) got++;
  })();
  for (let i = 0; i < n; i++) {
    await s.sendWithTimestamp(new Uint8Array(100).fill(i), s.now());
    await sleep(20);
  }
  await s.end();
  await settleWithin(reader, 10_000);
  return got;
}

test("server SIGKILLed and restarted on the same port: in-flight calls fail UNAVAILABLE, the client reconnects, the clock model survives", async () => {
  const servers: Child[] = [];
  let client: RpcClient | undefined;
  try {
    const first = await startFaultServer({ bind: "127.0.0.1:0", certs, gen: 1 });
    servers.push(first.child);
    const reconnects: number[] = [];
    // idleTimeoutMs bounds how long a dead server goes unnoticed: a SIGKILLed process sends no
    // close, and the new process cannot reset the old connection (it lacks its reset key).
    client = await RpcClient.connect(`127.0.0.1:${first.port}`, {
      ca: certs.ca,
      idleTimeoutMs: 2000,
      timeoutMs: 5000,
      reconnect: { minDelayMs: 50, maxDelayMs: 500, onReconnect: (n) => reconnects.push(n) },
    });
    const clock = client.clock;
    await clock.ready;
    expect(await syncedRoundTrip(client, 20)).toBeGreaterThan(0);
    await pollUntil(() => clock.stats().samples, (n) => n >= 8, 5000); // past the startup burst
    const before = clock.stats();
    expect(before.synced).toBe(true);

    // Traffic in flight at the kill: calls without deadlines (one whose handler never answers,
    // one that would answer in 60 s, a stream of echo calls), events, a reliable stream mid-echo
    // and a time-synced datagram stream.
    const c = client;
    const hang = settleWithin(c.request("hang"), 15_000);
    const slow = settleWithin(c.request("sleep", 60_000), 15_000);
    let echoes = 0;
    const echoLoop = settleWithin((async () => {
      for (;;) {
        await c.request("echo", echoes);
        echoes++;
      }
    })(), 15_000);
    const emits = settleWithin((async () => {
      for (;;) {
        await c.emit("ev", 1);
        await sleep(5);
      }
    })(), 15_000);
    const reliable = await c.createStream("echo");
    await reliable.send(new Uint8Array(1000));
    expect((await reliable.recv())?.length).toBe(1000);
    const streamRead = settleWithin(reliable.recv(), 15_000);
    const synced = await c.createStream("sync").withTimeSync().unreliable().build();
    const syncedRead = settleWithin((async () => {
      for (;;) {
        await synced.sendWithTimestamp(new Uint8Array(50), synced.now());
        await sleep(20);
      }
    })(), 15_000);
    await pollUntil(() => echoes, (n) => n >= 20, 5000);
    expect(c.stats().pendingRequests).toBeGreaterThanOrEqual(2);

    first.child.kill("SIGKILL");
    await first.child.exited;
    const second = await startFaultServer({ bind: `127.0.0.1:${first.port}`, certs, gen: 2 });
    servers.push(second.child);

    const outcomes = { hang: await hang, slow: await slow, echoLoop: await echoLoop, emits: await emits, streamRead: await streamRead, syncedRead: await syncedRead };
    for (const [what, o] of Object.entries(outcomes)) expect({ what, code: o.code }).toEqual({ what, code: "UNAVAILABLE" });

    await pollUntil(() => c.connected, (up) => up, 15_000);
    expect(c.connected).toBe(true);
    expect(reconnects).toEqual([1]);
    expect(await c.request("gen", null, { timeoutMs: 5000 })).toBe(2);

    // The clock is the same object and kept its model through the gap (synced, every sample
    // still counted), rather than starting over with the new connection.
    expect(c.clock).toBe(clock);
    const after = clock.stats();
    expect(after.synced).toBe(true);
    expect(after.samples).toBeGreaterThanOrEqual(before.samples);
    expect(Number.isFinite(after.offsetMs)).toBe(true);
    // A time-synced datagram stream opens again and flows.
    expect(await syncedRoundTrip(c, 20)).toBeGreaterThan(0);
    expect(clock.stats().samples).toBeGreaterThan(before.samples); // and the new connection feeds it

    // Nothing is left over on either side.
    expect(live(clientCounts(c))).toEqual(idleWith(1));
    const s = await pollUntil(() => counts(second.child), (x) => isIdle(x, 1), 5000);
    expect(live(s)).toEqual(idleWith(1));
    await c.close();
    expect(live(await pollUntil(() => counts(second.child), (x) => isIdle(x, 0), 5000))).toEqual(idleWith(0));
  } finally {
    await client?.close().catch(() => {});
    for (const s of servers) s.kill("SIGKILL");
    await Promise.all(servers.map((s) => s.exited));
  }
}, 60_000);
