// EchoStream flow control over real QUIC (Bun: its receiver buffers without QUIC backpressure,
// so EchoStream's own credit is what bounds memory).

import { afterAll, beforeAll, expect, test } from "bun:test";
import { streamHandler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { type EchoStream, STREAM_WINDOW } from "../../src/stream/echo_stream.ts";
import { quietFor, waitFor } from "../support/wait.ts";

let server: RpcServer;
let client: RpcClient;
let stalled: EchoStream | undefined;
let release: (() => void) | undefined;

beforeAll(async () => {
  server = RpcServer.builder()
    .bind("127.0.0.1:0")
    .log(() => {})
    .streamHandler(streamHandler("stall", async (_ctx, s) => {
      stalled = s;
      await new Promise<void>((r) => (release = r)); // never reads until released
      let n = 0;
      for await (const f of s) n += f.length;
      await s.send(new TextEncoder().encode(String(n)));
    }))
    .streamHandler(streamHandler("firehose", async (_ctx, s) => {
      await s.recv(); // the request
      for (let i = 0; i < 200; i++) await s.send(new Uint8Array(16 * 1024).fill(i & 0xff));
    }))
    .build();
  await server.start();
  client = await RpcClient.connect(server.address, { ca: server.trust.ca });
});
afterAll(async () => {
  await client?.close();
  await server?.close({ graceMs: 0 });
});

test("a consumer that does not read stops the sender after about one window; nothing is lost", async () => {
  const s = await client.createStream("stall");
  const chunk = new Uint8Array(16 * 1024);
  let sent = 0;
  let stop = false;
  const writer = (async () => {
    while (!stop) {
      await s.send(chunk);
      sent += chunk.length;
    }
  })();
  // The sender has used up the window, toward a handler that does not read.
  await waitFor(() => sent >= STREAM_WINDOW && stalled !== undefined, "the sender to use up the stream window");
  // Negative check: the writer, still trying, must stay blocked (unbounded, it would send
  // megabytes in this time on loopback).
  await quietFor(300);
  stop = true;
  // Blocked: at most one window (plus the frame that found the credit) went out.
  expect(sent).toBeGreaterThan(0);
  expect(sent).toBeLessThanOrEqual(STREAM_WINDOW + chunk.length);
  expect(stalled!.buffered).toBeLessThanOrEqual(STREAM_WINDOW + chunk.length);
  release!();
  await writer; // credit flows again once the handler reads
  await s.end();
  const total = Number(new TextDecoder().decode((await s.recv())!));
  expect(total).toBe(sent);
}, 20_000);

test("credit keeps flowing to the peer after this side ended its direction", async () => {
  const s = await client.createStream("firehose");
  await s.send(new Uint8Array([1]));
  await s.end(); // half-closed: the server still sends 200 × 16 KiB = 12.5 windows
  let frames = 0;
  let ordered = true;
  for await (const f of s) {
    if (f[0] !== (frames & 0xff)) ordered = false;
    frames++;
  }
  expect(frames).toBe(200);
  expect(ordered).toBe(true);
}, 20_000);
