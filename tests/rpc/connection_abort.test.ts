// Every stream handler and every call whose handler reads ctx.signal waits on its connection's
// end through one shared listener per connection (_serve.ts `whenAborted`: EventTarget's
// addEventListener is linear in the listeners already there, so one per stream made opening n
// streams cost O(n²)). What must hold: when the connection goes, the signal of every stream and
// call still being served aborts, once; a stream or call that finished before is not touched. (A
// handler that is reading its stream sees the read fail first, usually before the signal.)

import { expect, test } from "bun:test";
import { handler, streamHandler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { waitFor } from "../support/wait.ts";

test("400 live streams and 20 calls see the connection's end on their signal; 100 finished streams do not", async () => {
  const aborted = new Map<string, number>();
  const returned = new Set<string>();
  const seen = (name: string) => aborted.set(name, (aborted.get(name) ?? 0) + 1);
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {}).maxStreams(1024)
    .streamHandler(streamHandler("hold", async (ctx, s: EchoStream) => {
      const i = Number(ctx.metadata.i);
      const name = `s${i}`;
      ctx.signal.addEventListener("abort", () => seen(name));
      if (i < 100) {
        for await (const _ of s) { /* until the client ends its side */ }
      } else {
        // Not reading: only the connection's end (through the signal) ends this handler.
        await new Promise((r) => ctx.signal.addEventListener("abort", r));
      }
      returned.add(name);
    }))
    .handler(handler("wait", (ctx, i: number) =>
      new Promise((resolve) => ctx.signal.addEventListener("abort", () => (seen(`c${i}`), resolve(i))))))
    .build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, onError: () => {} });
  try {
    const streams = await Promise.all(Array.from({ length: 500 }, (_, i) => client.createStream("hold").withMetadata({ i: String(i) }).build()));
    const calls = Array.from({ length: 20 }, (_, i) => client.request("wait", i).catch(() => undefined));
    // The first 100 end normally: their handlers return before the connection goes.
    await Promise.all(streams.slice(0, 100).map((s) => s.end()));
    await waitFor(() => returned.size === 100, "100 handlers to return");
    await waitFor(() => server.stats().inFlight === 20, "20 calls in flight");
    await client.close();
    await Promise.all(calls);
    await waitFor(() => aborted.size === 420, `420 signals aborted (${aborted.size})`);
    for (let i = 0; i < 500; i++) expect(aborted.get(`s${i}`)).toBe(i < 100 ? undefined : 1);
    for (let i = 0; i < 20; i++) expect(aborted.get(`c${i}`)).toBe(1);
  } finally {
    await client.close();
    await server.close();
  }
}, 30_000);
