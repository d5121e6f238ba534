// The first datagrams of an unreliable stream's handler can overtake its answer to the open: the
// opener keeps them (bounded) until the answer, then hands them to the stream. Found with the
// OpenTelemetry datagram counters: a handler sending at once lost every frame at the opener.
// Real QUIC on Bun, both directions of opening.

import { expect, test } from "bun:test";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { streamHandler } from "../../src/rpc/definitions.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { inspectPeer } from "../../src/rpc/peer.ts";
import { FrameType } from "../../src/protocol/frame.ts";
import { waitFor } from "../support/wait.ts";

/** A handler that sends `n` frames (byte i) in the turn it starts, then waits for the end. */
const talker = (n: number) =>
  streamHandler("talk", async (_ctx, s: EchoStream) => {
    for (let i = 0; i < n; i++) void s.send(new Uint8Array(32).fill(i));
    for await (const _ of s) { /* until the opener ends */ }
  });

async function collect(s: EchoStream, into: number[]): Promise<void> {
  for await (const f of s) into.push(f[0]);
}

async function setup(n: number) {
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {}).streamHandler(talker(n)).build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  client.handle(talker(n));
  return { server, client, close: async () => (await client.close(), await server.close({ graceMs: 0 })) };
}

test("a handler's frames sent at once all reach the opener, in order, whichever side opened", async () => {
  const { server, client, close } = await setup(10);
  try {
    // Client opens, the server's handler talks.
    const got: number[] = [];
    const a = await client.createStream("talk").unreliable().build();
    const reading = collect(a, got);
    await waitFor(() => got.length === 10, "ten frames at the client", { timeoutMs: 3000 });
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(client.stats().droppedDatagrams).toBe(0);
    await a.end();
    await reading;
    // The server opens, the client's handler talks.
    const peer = server.peers[0];
    const back: number[] = [];
    const b = await peer.createStream("talk").unreliable().build();
    const readingBack = collect(b, back);
    await waitFor(() => back.length === 10, "ten frames at the server", { timeoutMs: 3000 });
    expect(back).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(peer.stats.droppedDatagrams).toBe(0);
    await b.end();
    await readingBack;
  } finally {
    await close();
  }
}, 15_000);

test("ahead of the answer the opener keeps at most 64 frames of an opening stream; the rest are dropped and counted", async () => {
  // The server's middleware holds the answer to the open while 100 datagrams for the stream
  // arrive at the client: 64 wait for the stream, 36 are dropped.
  let admit!: () => void;
  const gate = new Promise<void>((r) => (admit = r));
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {})
    .use(async (ctx, next) => {
      if (ctx.kind === "stream") await gate;
      return next();
    })
    .streamHandler(talker(0))
    .build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  try {
    const opening = client.createStream("talk").unreliable().build();
    await waitFor(() => server.stats().openStreams === 1, "the open at the server");
    // The client's first unreliable stream has datagram id 0 (even ids from clients).
    const peer = client.peer;
    const codec = inspectPeer(peer).frames;
    const before = peer.stats.droppedDatagrams;
    for (let i = 0; i < 100; i++) peer.receiveDatagram(codec.encode({ type: FrameType.DATA, flags: 0, streamId: 0, payload: new Uint8Array(16).fill(i) }), performance.now());
    // A datagram for an id this side never opened is dropped as before.
    peer.receiveDatagram(codec.encode({ type: FrameType.DATA, flags: 0, streamId: 98, payload: new Uint8Array(16) }), performance.now());
    expect(peer.stats.droppedDatagrams - before).toBe(37);
    admit();
    const s = await opening;
    const got: number[] = [];
    const reading = collect(s, got);
    await waitFor(() => got.length === 64, "the 64 kept frames");
    expect(got).toEqual(Array.from({ length: 64 }, (_, i) => i));
    await s.end();
    await reading;
    expect(got.length).toBe(64);
  } finally {
    await client.close();
    await server.close({ graceMs: 0 });
  }
}, 15_000);
