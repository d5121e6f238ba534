// Datagrams of unreliable streams go to the stack through a token bucket (`maxDatagramsPerSecond`,
// 5 ms of them at once); the rest wait in order and, past 4,096 waiting, the oldest is shed. Both
// stacks drop a burst handed over in one turn past a few hundred, silently (Bun's node:quic kept
// 128 of 800; docs/TRANSPORT.md "Datagram bursts"). Real QUIC on Bun.

import { expect, test } from "bun:test";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { streamHandler } from "../../src/rpc/definitions.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { resolveResourceLimits } from "../../src/security/limits.ts";
import { waitFor } from "../support/wait.ts";

/** 5,000 a second: 5 a millisecond, 25 at once; slow enough for any stack to carry them all. */
const RATE = 5000;

async function setup(maxDatagramsPerSecond = RATE) {
  const got: number[] = [];
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {})
    .streamHandler(streamHandler("sink", async (_ctx, s: EchoStream) => {
      for await (const f of s) got.push(new DataView(f.buffer, f.byteOffset, 4).getUint32(0));
    }))
    .build();
  await server.start();
  // One frame per datagram, so frames are datagrams.
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, limits: { maxFramesPerDatagram: 1, maxDatagramsPerSecond } });
  const s = await client.createStream("sink").unreliable().build();
  const close = async () => {
    await client.close();
    await server.close({ graceMs: 0 });
  };
  return { got, client, s, close };
}

/** Sends `n` 900-byte frames numbered from 0, all in this turn. */
function burst(s: EchoStream, n: number): void {
  for (let i = 0; i < n; i++) {
    const f = new Uint8Array(900);
    new DataView(f.buffer).setUint32(0, i);
    void s.send(f);
  }
}

test("800 datagrams sent in one turn go at the bucket's rate and all arrive, in order", async () => {
  const { got, client, s, close } = await setup();
  try {
    const t0 = performance.now();
    burst(s, 800);
    // At most 5 ms of tokens, plus those the loop's own time refilled, went at once; the rest
    // wait for theirs.
    expect(client.stats().datagramsSent).toBeLessThanOrEqual(25 + Math.ceil(5 * (performance.now() - t0)));
    await waitFor(() => got.length === 800, "all 800 at the server", { timeoutMs: 5000 });
    expect(performance.now() - t0).toBeGreaterThan((800 - 25) / 5); // ≥ 155 ms at 5 per ms
    expect(got).toEqual(Array.from({ length: 800 }, (_, i) => i));
    expect(client.stats()).toMatchObject({ datagramsSent: 800, datagramFramesSent: 800, datagramsShed: 0 });
  } finally {
    await close();
  }
}, 15_000);

test("past 4,096 waiting, the oldest waiting datagrams are shed and counted; every other one arrives in order", async () => {
  const { got, client, s, close } = await setup();
  try {
    burst(s, 5000);
    const now = client.stats().datagramsSent; // went at once
    const shed = client.stats().datagramsShed;
    expect(now).toBeGreaterThan(0);
    expect(now + shed + 4096).toBe(5000);
    await waitFor(() => got.length === 5000 - shed, "the rest at the server", { timeoutMs: 5000 });
    // Shed: the oldest waiting, frames now .. now + shed - 1.
    expect(got).toEqual([...Array.from({ length: now }, (_, i) => i), ...Array.from({ length: 4096 }, (_, i) => now + shed + i)]);
    expect(client.stats().datagramsSent).toBe(5000 - shed);
  } finally {
    await close();
  }
}, 15_000);

test("maxDatagramsPerSecond: 20,000 by default; a positive integer", () => {
  expect(resolveResourceLimits(undefined, false).peer.maxDatagramsPerSecond).toBe(20_000);
  expect(resolveResourceLimits({ maxDatagramsPerSecond: 100_000 }, false).peer.maxDatagramsPerSecond).toBe(100_000);
  expect(() => resolveResourceLimits({ maxDatagramsPerSecond: 0 }, false)).toThrow("maxDatagramsPerSecond must be an integer from 1");
  expect(() => resolveResourceLimits({ maxDatagramsPerSecond: 1.5 }, true)).toThrow("maxDatagramsPerSecond must be an integer from 1");
});
