// close() right after emit() and a stream's end(): what those calls resolved for reaches the
// other side, on every client runtime (a Deno client lost it: quinn drops unsent stream data
// when the connection closes, and emit() resolves once the bytes are queued, not sent).

import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { listener, streamHandler } from "../../src/rpc/definitions.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { bundleForNode, run, runtimeCommand } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";

const got: number[] = [];
const frames: number[][] = [];
const server = RpcServer.builder()
  .bind("127.0.0.1:0")
  .log(() => {})
  .onError(() => {})
  .listener(listener("counted", (_ctx, n: number) => void got.push(n)))
  .streamHandler(streamHandler("sink", async (_ctx, s: EchoStream) => {
    for await (const f of s) frames.push(Array.from(f));
  }))
  .build();
let node: Awaited<ReturnType<typeof bundleForNode>>;
beforeAll(async () => {
  await server.start();
  node = await bundleForNode([join(import.meta.dir, "_emit_then_close.ts")]);
}, 60_000);
afterAll(async () => {
  await server.close({ graceMs: 0 });
  node?.cleanup();
});

for (const rt of ["bun", "deno", "node"] as const) {
  test(`${rt} client: events emitted and a stream's last frame before close() arrive`, async () => {
    got.length = 0;
    frames.length = 0;
    const r = await run(runtimeCommand(rt, join(import.meta.dir, "_emit_then_close.ts"), [server.address], node.dir), {
      stdin: JSON.stringify(server.trust.ca) + "\n",
      timeoutMs: 20_000,
    });
    expect(r.stdout).toContain('{"ok":true}');
    await waitFor(() => got.length === 3 && frames.length === 1, "the 3 events and the frame", { timeoutMs: 3000 }).catch(() => {});
    expect(got).toEqual([0, 1, 2]);
    expect(frames).toEqual([[7, 7, 7]]);
  }, 30_000);
}
