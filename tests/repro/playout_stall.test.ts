// Regression tests for the "lost playout wake-up" of issue 11 §6 (docs/REALTIME.md, "Playout
// stalls: the microtask spin"). No wake-up was lost: once the connection's clock was freed,
// recvAligned() awaited a promise that was already settled, again and again, until
// syncTimeoutMs ran out. That microtask loop kept the event loop from running any timer or
// immediate (ours, the test's, Bun's own), so every stream in the process froze for 5 s.
// Both tests force that interleaving; neither measures time.

import { expect, test } from "bun:test";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { streamHandler } from "../../src/rpc/definitions.ts";
import { RpcError } from "../../src/protocol/rpc_error.ts";
import type { SyncedClock } from "../../src/clock/sync.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { TimeSyncReceiver } from "../../src/stream/time_sync.ts";
import { waitFor } from "../support/wait.ts";

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

test("a recv() waiting for clock sync leaves the event loop free, even when clock.ready has already settled", async () => {
  // The state a freed clock used to be in: `ready` settled, `synced` false.
  const clock = { synced: false, ready: Promise.resolve(), local: () => performance.now(), offsetAt: () => 0 };
  const r = new TimeSyncReceiver(clock as unknown as SyncedClock, { syncTimeoutMs: 2000 }, true);
  let settled = false;
  const pending = r.recv().then(() => {}, () => {}).finally(() => (settled = true));
  await nextTurn();
  // A spinning recv() would have run to its deadline (and failed) before this immediate ran.
  expect(settled).toBe(false);
  r.free();
  await pending;
  expect(settled).toBe(true);
});

test("frames buffered when the connection is lost are all released when recvAligned() is first called after the clock was freed", async () => {
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {})
    .streamHandler(streamHandler("rt.burst", async (ctx, s: EchoStream) => {
      for (let i = 0; i < 10; i++) await s.sendWithTimestamp(new Uint8Array([i]), s.now());
      await ctx.peer.closed; // the test closes the connection
    })).build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  try {
    await client.clock.ready;
    // A fixed latency far above the time the close takes: nothing is due before it.
    const s = await client.createStream("rt.burst").withTimeSync({ latencyMs: 1000 }).build();
    await waitFor(() => s.stats().received >= 10, "the 10 frames to reach the client");
    await [...server.peers][0].close(0, "server gone"); // all 10 frames are in the client's buffer
    await client.closed; // the connection is gone and its clock freed: the interleaving that spun
    const got: number[] = [];
    let error: unknown;
    try {
      for (let f = await s.recvAligned(); f; f = await s.recvAligned()) got.push(f.seq);
    } catch (e) {
      error = e;
    }
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(error).toBeInstanceOf(RpcError);
    expect((error as RpcError).code).toBe("UNAVAILABLE");
    expect((error as RpcError).message).not.toMatch(/no clock sync/);
  } finally {
    await client.close();
    await server.close();
  }
});
