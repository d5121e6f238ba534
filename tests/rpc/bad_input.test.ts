// Bad input from a misbehaving peer: malformed frames, oversize frames, frames of the wrong
// type, garbage payloads. The server answers or resets that stream, never crashes, and keeps
// serving the connection's other calls.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { handler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { createFrameCodec } from "../../src/protocol/codec.ts";
import { type Frame, FrameType } from "../../src/protocol/frame.ts";
import { PROTOCOL_VERSION } from "../../src/protocol/version.ts";
import type { RpcError } from "../../src/protocol/rpc_error.ts";
import { defaultPayloadCodec } from "../../src/protocol/payload_codec.ts";
import { bunTransport } from "../../src/transport/bun.ts";
import type { Connection } from "../../src/transport/types.ts";
import { waitFor } from "../support/wait.ts";

const codec = createFrameCodec();
const errors: unknown[] = [];
let server: RpcServer;
let conn: Connection;

async function exchange(bytes: Uint8Array, end = true): Promise<Frame[]> {
  const s = await conn.openBidi();
  await s.write(bytes);
  if (end) await s.end();
  const splitter = codec.splitter();
  const frames: Frame[] = [];
  try {
    for await (const c of s) frames.push(...splitter.push(c));
  } catch { /* reset by the server: also an acceptable answer */ }
  return frames;
}

beforeAll(async () => {
  server = RpcServer.builder()
    .bind("127.0.0.1:0")
    .log(() => {})
    .onError((e) => errors.push(e))
    .limits({ maxFrameSize: 64 * 1024 })
    .handler(handler("echo", (_ctx, v: unknown) => v))
    .build();
  await server.start();
  const [host, port] = server.address.split(":");
  conn = await bunTransport.connect({ host, port: Number(port), alpn: "echostream/1", tls: { ca: server.trust.ca } });
  conn.handle({});
  const control = await conn.openBidi();
  await control.write(codec.encode({ type: FrameType.HELLO, flags: 0, version: PROTOCOL_VERSION, name: "raw", payload: defaultPayloadCodec().encode({}) }));
  const it = control[Symbol.asyncIterator]();
  await it.next(); // WELCOME
});

afterAll(async () => {
  await conn?.close();
  await server?.close({ graceMs: 0 });
});

async function stillServes(): Promise<void> {
  const p = defaultPayloadCodec();
  const frames = await exchange(codec.encode({ type: FrameType.REQUEST, flags: 0, method: "echo", deadlineMs: 0, metadata: {}, payload: p.encode("ok") }), false);
  expect(frames[0]?.type).toBe(FrameType.RESPONSE);
  expect(p.decode((frames[0] as { payload: Uint8Array }).payload)).toBe("ok");
}

test("garbage bytes on a new stream", async () => {
  await exchange(new Uint8Array([0x3f, 0xff, 0x00, 0x12, 0x34]));
  await stillServes();
});

test("a frame claiming more than maxFrameSize is refused from its prefix", async () => {
  // DATA, RAW, length 2^30 - 1: only the prefix is sent.
  await exchange(new Uint8Array([0x09, 0x01, 0xbf, 0xff, 0xff, 0xff]));
  await stillServes();
});

test("a stream that starts with a frame of the wrong type gets an ERROR", async () => {
  const frames = await exchange(codec.encode({ type: FrameType.PING, flags: 0, seq: 1, t1: 0 }));
  expect(frames[0]?.type).toBe(FrameType.ERROR);
  await stillServes();
});

test("a request whose payload is not valid MessagePack answers INVALID_ARGUMENT", async () => {
  const frames = await exchange(codec.encode({ type: FrameType.REQUEST, flags: 0, method: "echo", deadlineMs: 0, metadata: {}, payload: new Uint8Array([0xc1]) }), false);
  expect(frames[0]).toMatchObject({ type: FrameType.ERROR, code: 3 });
  await stillServes();
});

test("a stream cut inside a frame, and an empty stream", async () => {
  const full = codec.encode({ type: FrameType.REQUEST, flags: 0, method: "echo", deadlineMs: 0, metadata: {}, payload: new Uint8Array(100) });
  await exchange(full.subarray(0, 10));
  await exchange(new Uint8Array(0));
  await stillServes();
});

test("garbage on the event lane stops that lane, not the server", async () => {
  const malformed = server.stats().rejected.malformedFrames;
  const lane = await conn.openUni();
  await lane.write(new Uint8Array([0xff, 0xff, 0xff]));
  await lane.end().catch(() => {});
  await waitFor(() => server.stats().rejected.malformedFrames > malformed, "the server to refuse the lane's bytes");
  await stillServes();
});

test("a normal client still connects and calls after all of that", async () => {
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  expect(await client.request("echo", [1, 2])).toEqual([1, 2]);
  // Over the server's 64 KiB limit (the client's own is 16 MiB): refused from the frame prefix,
  // and the caller is told why.
  const e = (await client.request("echo", new Uint8Array(100 * 1024)).catch((e) => e)) as RpcError;
  expect(e.code).toBe("RESOURCE_EXHAUSTED");
  expect(e.message).toMatch(/larger than the maximum frame size/);
  // Over the client's own limit: refused before anything is sent.
  const small = await RpcClient.connect(server.address, { ca: server.trust.ca, limits: { maxFrameSize: 1024 } });
  expect(((await small.request("echo", new Uint8Array(2048)).catch((e) => e)) as RpcError).code).toBe("INVALID_ARGUMENT");
  await small.close();
  await client.close();
});
