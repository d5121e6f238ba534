// Handshake, decorators, shutdown and failure paths of the RPC core over real QUIC (Bun).

import { expect, test } from "bun:test";
import { handler, listener, streamHandler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { RpcError } from "../../src/protocol/rpc_error.ts";
import { createFrameCodec } from "../../src/protocol/codec.ts";
import { FrameType } from "../../src/protocol/frame.ts";
import { bunTransport } from "../../src/transport/bun.ts";
import type { Context } from "../../src/rpc/context.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { waitFor } from "../support/wait.ts";

const quiet = (b: ReturnType<typeof RpcServer.builder>) => b.bind("127.0.0.1:0").log(() => {}).onError(() => {});

test("standard (TC39) decorators register a class's methods with service()", async () => {
  class Audio {
    volume = 7;
    played: string[] = [];
    @handler("audio.volume")
    getVolume(_ctx: Context) {
      return this.volume; // bound to the instance
    }
    @listener("audio.play")
    onPlay(_ctx: Context, file: string) {
      this.played.push(file);
    }
    @streamHandler("audio.stream")
    async stream(_ctx: Context, s: EchoStream) {
      for await (const f of s) await s.send(f.reverse());
    }
  }
  const audio = new Audio();
  const server = quiet(RpcServer.builder()).service(audio).build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  expect(await client.request("audio.volume")).toBe(7);
  await client.emit("audio.play", "a.ogg");
  const s = await client.createStream("audio.stream");
  await s.send(new Uint8Array([1, 2, 3]));
  expect(Array.from((await s.recv())!)).toEqual([3, 2, 1]);
  await s.end();
  await waitFor(() => audio.played.length > 0, "the audio.play listener to run");
  expect(audio.played).toEqual(["a.ogg"]);
  // A client serves a decorated class too.
  class Device {
    @handler("device.ping")
    ping() {
      return "pong";
    }
  }
  client.service(new Device());
  expect(await server.peers[0].request("device.ping")).toBe("pong");
  await client.close();
  await server.close({ graceMs: 0 });
  expect(() => RpcServer.builder().service({})).toThrow(TypeError);
});

test("duplicate names and bad definitions are refused at registration", () => {
  const h = handler("x", () => 1);
  expect(() => RpcServer.builder().handler(h).handler(handler("x", () => 2))).toThrow(/already registered/);
  expect(() => RpcServer.builder().handler({} as never)).toThrow(TypeError);
  expect(() => handler("", () => 1)).toThrow(TypeError);
});

test("a HELLO with another protocol version is refused with a clear error on both sides", async () => {
  const errors: unknown[] = [];
  const server = quiet(RpcServer.builder()).onError((e) => errors.push(e)).build();
  await server.start();
  const [host, port] = [server.address.split(":")[0], Number(server.address.split(":")[1])];
  const conn = await bunTransport.connect({ host, port, alpn: "echostream/1", tls: { ca: server.trust.ca } });
  const codec = createFrameCodec();
  const s = await conn.openBidi();
  await s.write(codec.encode({ type: FrameType.HELLO, flags: 0, version: 99, name: "future", payload: new Uint8Array() }));
  const splitter = codec.splitter();
  const frames = [];
  for await (const c of s) frames.push(...splitter.push(c));
  expect(frames[0]).toMatchObject({ type: FrameType.GOAWAY, reason: "protocol version mismatch: server speaks 1, client sent 99" });
  const closed = await conn.closed;
  expect(closed.code).toBe(0x102);
  await server.close({ graceMs: 0 });
});

test("graceful shutdown: in-flight calls finish, new connections are refused, clients see the close", async () => {
  let release!: () => void;
  const server = quiet(RpcServer.builder())
    .handler(handler("wait", () => new Promise((r) => (release = () => r("finished")))))
    .build();
  await server.start();
  const address = server.address;
  const ca = server.trust.ca;
  const client = await RpcClient.connect(address, { ca });
  const call = client.request("wait");
  await waitFor(() => server.stats().inFlight === 1, "the server to run the call");
  const closing = server.close({ graceMs: 2000 });
  await waitFor(() => client.peer.goingAway !== undefined, "the client to receive GOAWAY");
  expect(client.peer.goingAway?.reason).toBe("server shutting down");
  const late = await RpcClient.connect(address, { ca, timeoutMs: 1000 }).catch((e) => e);
  expect(late).toBeInstanceOf(RpcError);
  release();
  expect(await call).toBe("finished");
  await closing;
  const info = await client.closed;
  expect(info.local).toBe(false);
  await expect(client.request("wait")).rejects.toMatchObject({ code: "UNAVAILABLE" });
});

test("a connection lost mid-call fails the call with UNAVAILABLE, never hangs", async () => {
  const server = quiet(RpcServer.builder()).handler(handler("forever", () => new Promise(() => {}))).build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  const call = client.request("forever").catch((e) => e); // it rejects while the server closes
  await waitFor(() => server.stats().inFlight === 1, "the server to run the call"); // mid-call, not before it
  await server.close({ graceMs: 0 });
  const e = (await call) as RpcError;
  expect(e).toBeInstanceOf(RpcError);
  expect(e.code).toBe("UNAVAILABLE");
});

test("connecting to a port with nothing listening fails with UNAVAILABLE", async () => {
  const e = await RpcClient.connect("127.0.0.1:9", { fingerprint: "ab".repeat(32), timeoutMs: 500 }).catch((e) => e);
  expect(e.code).toBe("UNAVAILABLE");
  expect(e.message).toMatch(/no QUIC handshake/);
});

test("10,000 concurrent streams on one connection", async () => {
  const server = quiet(RpcServer.builder())
    .maxStreams(2048)
    .streamHandler(streamHandler("one", async (_ctx, s: EchoStream) => {
      const f = await s.recv();
      await s.send(f!);
    }))
    .build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  const N = 10_000;
  const results = await Promise.all(Array.from({ length: N }, async (_, i) => {
    const s = await client.createStream("one");
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, i);
    await s.send(b);
    const back = await s.recv();
    await s.end();
    return new DataView(back!.buffer, back!.byteOffset).getUint32(0) === i;
  }));
  expect(results.filter(Boolean).length).toBe(N);
  await client.close();
  await server.close({ graceMs: 0 });
}, 60_000);

test("run() starts the server and resolves once close() has finished", async () => {
  const server = quiet(RpcServer.builder()).handler(handler("ping", () => "pong")).build();
  let finished = false;
  const running = server.run().then(() => (finished = true));
  const address = () => {
    try {
      return server.address;
    } catch {
      return "";
    }
  };
  await waitFor(() => address() !== "", "run() to bind the server");
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  expect(await client.request("ping")).toBe("pong");
  expect(finished).toBe(false);
  await client.close();
  await server.close({ graceMs: 0 });
  await running;
  expect(finished).toBe(true);
});
