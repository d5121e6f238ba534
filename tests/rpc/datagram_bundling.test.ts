// Unreliable streams pack the frames sent in one event-loop turn into shared QUIC datagrams when
// the other side takes several frames per datagram (HELLO/WELCOME cap `dgb`); `maxFramesPerDatagram`
// bounds it and 1 turns it off. A receiver takes one frame or several per datagram, routes each to
// its stream, and drops (and counts) a datagram that is not a whole number of frames.

import { expect, test } from "bun:test";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { inspectPeer } from "../../src/rpc/peer.ts";
import { streamHandler } from "../../src/rpc/definitions.ts";
import { FrameFlag, FrameType } from "../../src/protocol/frame.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { waitFor } from "../support/wait.ts";

const STREAMS = 20;
const FRAMES = 10;
const SIZE = 100;

/** A server whose "sink" streams count the frames they get, by stream; a client with `limits`. */
async function setup(limits?: { maxFramesPerDatagram: number }) {
  const got = new Map<string, number[]>();
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {})
    .streamHandler(streamHandler("sink", async (ctx, s: EchoStream) => {
      const seen: number[] = [];
      got.set(ctx.metadata.id, seen);
      for await (const f of s) seen.push(f[0]);
    }))
    .build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, limits });
  const close = async () => {
    await client.close();
    await server.close({ graceMs: 0 });
  };
  return { server, client, got, close };
}

/** Opens STREAMS unreliable streams, then sends FRAMES frames on each, all in one turn. */
async function burst(client: RpcClient) {
  const streams = await Promise.all(
    Array.from({ length: STREAMS }, (_, i) => client.createStream("sink").withMetadata({ id: String(i) }).unreliable().build()),
  );
  const before = { ...client.stats() };
  for (let k = 0; k < FRAMES; k++) {
    for (const s of streams) await s.send(new Uint8Array(SIZE).fill(k)); // resolves at once: no turn passes
  }
  const after = client.stats();
  return { streams, frames: after.datagramFramesSent - before.datagramFramesSent, before };
}

test("frames sent in one turn share datagrams; every one arrives on its own stream, in order", async () => {
  const { client, got, close } = await setup();
  try {
    const { streams, frames, before } = await burst(client);
    expect(frames).toBe(STREAMS * FRAMES);
    // The last datagram goes at the end of the turn.
    await waitFor(() => [...got.values()].reduce((n, a) => n + a.length, 0) === STREAMS * FRAMES, "every frame at the server", { timeoutMs: 5000 });
    const datagrams = client.stats().datagramsSent - before.datagramsSent;
    // 200 frames of about 110 bytes, about 10 per datagram of ~1,150 bytes.
    expect(datagrams).toBeLessThanOrEqual(Math.ceil(frames / 5));
    expect(datagrams).toBeGreaterThanOrEqual(Math.ceil(frames / 64));
    for (const [, seen] of got) expect(seen).toEqual(Array.from({ length: FRAMES }, (_, k) => k));
    await Promise.all(streams.map((s) => s.end()));
  } finally {
    await close();
  }
});

test("maxFramesPerDatagram: 1 sends every frame in its own datagram", async () => {
  const { client, got, close } = await setup({ maxFramesPerDatagram: 1 });
  try {
    const { streams, frames, before } = await burst(client);
    // One datagram per frame, handed to the stack at maxDatagramsPerSecond (docs/TRANSPORT.md
    // "Datagram bursts"; tests/rpc/datagram_pacing.test.ts checks what arrives).
    await waitFor(() => client.stats().datagramsSent - before.datagramsSent === frames, "every frame handed over in its own datagram");
    await waitFor(() => [...got.values()].some((a) => a.length > 0), "frames at the server", { timeoutMs: 5000 });
    await Promise.all(streams.map((s) => s.end()));
  } finally {
    await close();
  }
}, 15_000);

test("a receiver routes each frame of a bundled datagram, and drops one that ends inside a frame", async () => {
  const { server, client, got, close } = await setup();
  try {
    const a = await client.createStream("sink").withMetadata({ id: "a" }).unreliable().build();
    const b = await client.createStream("sink").withMetadata({ id: "b" }).unreliable().build();
    await waitFor(() => got.has("a") && got.has("b"), "both streams at the server");
    const peer = [...server.peers][0];
    const { frames } = inspectPeer(peer);
    // The datagram ids the server routes: the streams' own, read off frames they send.
    const ids: number[] = [];
    const orig = peer.receiveDatagram.bind(peer);
    peer.receiveDatagram = (d: Uint8Array, t: number) => {
      for (const f of frames.decodeAll(d)) if (f.type === FrameType.DATA && f.streamId !== undefined) ids.push(f.streamId);
      orig(d, t);
    };
    await a.send(new Uint8Array([100]));
    await waitFor(() => got.get("a")!.length === 1, "a's first frame");
    await b.send(new Uint8Array([200]));
    await waitFor(() => got.get("b")!.length === 1, "b's first frame");
    const [idA, idB] = ids;
    const data = (streamId: number, seq: number, byte: number) =>
      frames.encode({ type: FrameType.DATA, flags: FrameFlag.RAW, streamId, seq, payload: new Uint8Array([byte]) });
    const bundle = new Uint8Array([...data(idA, 1, 101), ...data(idB, 1, 201), ...data(idA, 2, 102)]);
    const dropped = peer.stats.droppedDatagrams;
    orig(bundle, 0);
    await waitFor(() => got.get("a")!.length === 3 && got.get("b")!.length === 2, "the bundled frames on their streams");
    expect(got.get("a")).toEqual([100, 101, 102]);
    expect(got.get("b")).toEqual([200, 201]);
    // Cut inside its last frame: the whole datagram is dropped and counted, nothing delivered.
    orig(bundle.subarray(0, bundle.length - 1), 0);
    orig(new Uint8Array(0), 0);
    expect(peer.stats.droppedDatagrams).toBe(dropped + 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(got.get("a")).toEqual([100, 101, 102]);
    await Promise.all([a.end(), b.end()]);
  } finally {
    await close();
  }
});
