// Datagrams of unreliable streams go to the stack at most 32 per millisecond: a burst handed
// over in one turn would otherwise be dropped silently past a few hundred (Bun's node:quic keeps
// about 180-380 of them, quinn about 400; docs/TRANSPORT.md "Datagram bursts"). Real QUIC on Bun.

import { expect, test } from "bun:test";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { streamHandler } from "../../src/rpc/definitions.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { waitFor } from "../support/wait.ts";

async function setup() {
  const got: number[] = [];
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {})
    .streamHandler(streamHandler("sink", async (_ctx, s: EchoStream) => {
      for await (const f of s) got.push(new DataView(f.buffer, f.byteOffset, 4).getUint32(0));
    }))
    .build();
  await server.start();
  // One frame per datagram, so frames are datagrams.
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, limits: { maxFramesPerDatagram: 1 } });
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

test("800 datagrams sent in one turn all arrive, in order (the stack alone kept about 190)", async () => {
  const { got, client, s, close } = await setup();
  try {
    burst(s, 800);
    // 32 went at once; the other 768 wait for their milliseconds.
    expect(client.stats().datagramsSent).toBe(32);
    await waitFor(() => got.length === 800, "all 800 at the server", { timeoutMs: 5000 });
    expect(got).toEqual(Array.from({ length: 800 }, (_, i) => i));
    expect(client.stats()).toMatchObject({ datagramsSent: 800, datagramFramesSent: 800, datagramsShed: 0 });
  } finally {
    await close();
  }
}, 15_000);

test("past 4,096 waiting, the oldest waiting datagrams are shed and counted; none of them arrives", async () => {
  const { got, client, s, close } = await setup();
  try {
    burst(s, 5000);
    // 32 handed over at once, 4,096 waiting: frames 32..903 were shed as newer ones came.
    expect(client.stats().datagramsShed).toBe(872);
    await waitFor(() => client.stats().datagramsSent === 5000 - 872, "the rest handed to the stack", { timeoutMs: 5000 });
    await waitFor(() => got.length === 5000 - 872, "the rest at the server", { timeoutMs: 3000 });
    expect(got).toEqual([...Array.from({ length: 32 }, (_, i) => i), ...Array.from({ length: 4096 }, (_, i) => 904 + i)]);
  } finally {
    await close();
  }
}, 15_000);
