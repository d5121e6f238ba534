// A failure inside the server while it sets a stream up (after the first frame, before any
// handler runs: a bug of ours, not the peer's input) is answered: the opener gets INTERNAL at
// once, the server's onError hears the cause, and the connection keeps serving. Before, the
// stream was ended with no answer and the opener saw only "no answer to the open".

import { expect, test } from "bun:test";
import { handler, streamHandler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { Peer } from "../../src/rpc/peer.ts";
import { ErrorCode, RpcError } from "../../src/protocol/rpc_error.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";

test("a stream whose setup throws inside the server gets INTERNAL, and the connection goes on", async () => {
  const errors: unknown[] = [];
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError((e) => errors.push(e))
    .handler(handler("echo", (_ctx, x: number) => x))
    .streamHandler(streamHandler("s", async (_ctx, s: EchoStream) => {
      for await (const m of s) await s.send(m);
    }))
    .build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  const serve = Peer.prototype.serve;
  try {
    // The next stream the server serves fails inside it, as a bug would (not an RpcError).
    Peer.prototype.serve = function () {
      Peer.prototype.serve = serve;
      throw new TypeError("setup bug");
    };
    const t0 = performance.now();
    const err = await client.createStream("s").build().then(() => undefined, (e) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(ErrorCode.INTERNAL);
    expect((err as RpcError).message).not.toContain("setup bug"); // never the cause's text
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(errors.some((e) => e instanceof TypeError && e.message === "setup bug")).toBe(true);
    // The connection still serves streams and calls.
    const s = await client.createStream("s").build();
    await s.send(new Uint8Array([7]));
    expect(await s.recv()).toEqual(new Uint8Array([7]));
    await s.end();
    expect(await client.request("echo", 5)).toBe(5);
  } finally {
    Peer.prototype.serve = serve;
    await client.close();
    await server.close();
  }
});
