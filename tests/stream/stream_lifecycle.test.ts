// EchoStream's send/receive state machine over real QUIC (Bun): end() behind pending sends,
// credit handed to blocked senders in call order, and one place that frees a stream's state on
// both sides (datagram routes, live-stream counts).

import { afterAll, beforeAll, expect, test } from "bun:test";
import { streamHandler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { STREAM_WINDOW } from "../../src/stream/echo_stream.ts";
import type { Peer } from "../../src/rpc/peer.ts";
import { waitFor } from "../support/wait.ts";

let server: RpcServer;
let client: RpcClient;
let gate: Promise<void> = Promise.resolve();
let openGate: () => void = () => {};

function closeGate(): void {
  gate = new Promise<void>((r) => (openGate = r));
}

const serverPeer = (): Peer => server.peers[0];

beforeAll(async () => {
  server = RpcServer.builder()
    .bind("127.0.0.1:0")
    .log(() => {})
    .onError(() => {})
    // Reads nothing until the test opens the gate, then counts every byte and checks order.
    .streamHandler(streamHandler("sink", async (_ctx, s) => {
      await gate;
      let bytes = 0;
      let frames = 0;
      let inOrder = true;
      for await (const f of s) {
        if (f.length >= 4 && new DataView(f.buffer, f.byteOffset).getUint32(0) !== frames) inOrder = false;
        bytes += f.length;
        frames++;
      }
      await s.send(new TextEncoder().encode(JSON.stringify({ bytes, frames, inOrder })));
    }))
    // Sends one frame and returns without waiting for the opener to end.
    .streamHandler(streamHandler("once", async (_ctx, s) => {
      await s.send(frame(7, 16));
    }))
    // Echoes every frame, then ends when the peer does.
    .streamHandler(streamHandler("echo", async (_ctx, s) => {
      for await (const f of s) await s.send(f);
    }))
    .build();
  await server.start();
  client = await RpcClient.connect(server.address, { ca: server.trust.ca });
});

afterAll(async () => {
  await client?.close();
  await server?.close({ graceMs: 0 });
});

function frame(i: number, size: number): Uint8Array {
  const f = new Uint8Array(size);
  new DataView(f.buffer).setUint32(0, i);
  return f;
}

test("end() while sends wait for credit: every pending frame is delivered before the end marker", async () => {
  closeGate();
  const s = await client.createStream("sink");
  const size = 16 * 1024;
  const count = STREAM_WINDOW / size + 1; // one frame more than the window: it must wait for credit
  const sends = Array.from({ length: count }, (_, i) => s.send(frame(i, size)));
  const ended = s.end(); // called while the last send still waits for credit
  await waitFor(() => s.counts.sent === count - 1, "the window's frames to go out (the last waits for credit)");
  openGate();
  await Promise.all(sends);
  await ended;
  const reply = JSON.parse(new TextDecoder().decode((await s.recv())!));
  expect(reply).toEqual({ bytes: count * size, frames: count, inOrder: true });
  expect(await s.recv()).toBeUndefined();
});

test("send() after end() is refused with FAILED_PRECONDITION, even while end() waits", async () => {
  closeGate();
  const s = await client.createStream("sink");
  const pending = Array.from({ length: STREAM_WINDOW / 8192 + 2 }, (_, i) => s.send(frame(i, 8192)));
  const ended = s.end();
  const late = await s.send(frame(999, 8192)).catch((e) => e);
  expect(late.code).toBe("FAILED_PRECONDITION");
  openGate();
  await Promise.all(pending);
  await ended;
  const reply = JSON.parse(new TextDecoder().decode((await s.recv())!));
  expect(reply.frames).toBe(pending.length);
  expect(reply.inOrder).toBe(true);
});

test("2,000 senders blocked on credit go out in call order once the consumer reads", async () => {
  closeGate();
  const s = await client.createStream("sink");
  const n = 2000;
  const sends = Array.from({ length: n }, (_, i) => s.send(frame(i, 1024)));
  await waitFor(() => s.counts.sent === STREAM_WINDOW / 1024, "a window's frames to go out (the rest wait for credit)");
  openGate();
  await Promise.all(sends);
  await s.end();
  const reply = JSON.parse(new TextDecoder().decode((await s.recv())!));
  expect(reply).toEqual({ bytes: n * 1024, frames: n, inOrder: true });
});

test("a finished stream frees its state on both sides: live-stream counts back to zero", async () => {
  for (let i = 0; i < 20; i++) {
    const s = await client.createStream("echo");
    await s.send(frame(i, 64));
    await s.end();
    expect((await s.recv())!.length).toBe(64);
    expect(await s.recv()).toBeUndefined();
  }
  await waitFor(() => client.peer.stats.openStreams === 0 && serverPeer().stats.openStreams === 0, "openStreams to return to 0");
  expect(client.peer.stats.streamsOpened).toBeGreaterThanOrEqual(20);
});

test("unreliable streams: the opener removes its datagram route too (50 of 50, both sides)", async () => {
  expect(client.peer.datagrams).toBe(true);
  for (let i = 0; i < 50; i++) {
    const s = await client.createStream("echo").unreliable().build();
    await s.send(frame(i, 32));
    await s.recv(); // the echo (a datagram; loopback does not lose it)
    await s.end();
    expect(await s.recv()).toBeUndefined();
  }
  await waitFor(() => client.peer.stats.datagramRoutes === 0 && serverPeer().stats.datagramRoutes === 0, "datagram routes to be removed");
  await waitFor(() => client.peer.stats.openStreams === 0 && serverPeer().stats.openStreams === 0, "openStreams to return to 0");
});

test("an aborted stream frees its state on both sides", async () => {
  const s = await client.createStream("echo").unreliable().build();
  await s.send(frame(0, 32));
  await s.recv();
  await s.abort("done here");
  await waitFor(() => client.peer.stats.datagramRoutes === 0 && serverPeer().stats.datagramRoutes === 0, "datagram routes to be removed");
  await waitFor(() => client.peer.stats.openStreams === 0 && serverPeer().stats.openStreams === 0, "openStreams to return to 0");
});

test("an opener that reads the handler's end but never calls end(): the stream is freed once the handler returned", async () => {
  const streams = [];
  for (let i = 0; i < 40; i++) {
    const s = await client.createStream("once");
    expect((await s.recv())!.length).toBe(16);
    expect(await s.recv()).toBeUndefined();
    streams.push(s); // kept referenced, never ended
  }
  await waitFor(() => client.peer.stats.openStreams === 0 && serverPeer().stats.openStreams === 0, "openStreams to return to 0");
  // The handler released the stream: sending on it now fails clearly instead of vanishing.
  const late = await streams[0].send(frame(0, 8)).catch((e) => e);
  expect(late.code).toBe("FAILED_PRECONDITION");
  await streams[1].end(); // ending a released stream is a no-op, not an error
});
