// A caller's buffer passed to send() is its own again once send() resolves, on every stack:
// small payloads are copied into the writer's batch, large ones go to the stack by reference
// and send() waits until the stack has taken them. A Bun server (this process) checks every
// frame a Deno or Bun client (send_buffer_client.ts) sent while overwriting its one buffer.

import { expect, test } from "bun:test";
import { join } from "node:path";
import { RpcServer } from "../../src/rpc/server.ts";
import { streamHandler } from "../../src/rpc/definitions.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { runForJson, runtimeCommand } from "../support/process.ts";

const CLIENT = join(import.meta.dir, "send_buffer_client.ts");

for (const rt of ["deno", "bun"] as const) {
  test(`${rt} sender: a reused buffer is never seen overwritten by the receiver`, async () => {
    const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {})
      .streamHandler(streamHandler("check", async (_ctx, s: EchoStream) => {
        let frames = 0;
        let bad = 0;
        for await (const f of s) {
          const want = frames & 0xff;
          if (f.some((b) => b !== want)) bad++;
          frames++;
        }
        await s.send(new TextEncoder().encode(JSON.stringify({ frames, bad })));
      }))
      .build();
    await server.start();
    try {
      const r = await runForJson<{ runtime: string; sent: number; frames: number; bad: number }>(
        runtimeCommand(rt, CLIENT, [server.address]),
        { ca: server.trust.ca },
        20_000,
      );
      expect(r.runtime).toBe(rt);
      expect(r.frames).toBe(r.sent);
      expect(r.bad).toBe(0);
    } finally {
      await server.close({ graceMs: 0 });
    }
  }, 25_000);
}
