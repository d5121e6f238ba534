// A received payload is a view of the chunk the stack read it from, so what a kept payload holds
// in memory is that chunk's buffer. Small frames read one at a time must not each pin a large
// read buffer: a time-synced receiver keeps hundreds of ms of frames per stream, on thousands of
// streams (issue 15: Deno's RSS at 1,000 streams). A Bun server (this process) sends; a Deno or
// Bun client (read_buffer_client.ts) keeps every payload and reports what they pin; then the same
// client keeps datagram payloads and reports whether any changed.

import { expect, test } from "bun:test";
import { join } from "node:path";
import { RpcServer } from "../../src/rpc/server.ts";
import { streamHandler } from "../../src/rpc/definitions.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { runForJson, runtimeCommand } from "../support/process.ts";

const CLIENT = join(import.meta.dir, "read_buffer_client.ts");
const PACED = 200;
const SMALL = 160;
const BULK = 2000;
const DATAGRAMS = 300;

interface Run {
  frames: number;
  bytes: number;
  pinned: number;
  intact: boolean;
}

for (const rt of ["deno", "bun"] as const) {
  test(`${rt} receiver: kept small payloads pin about their own size, not a read buffer each; kept datagram payloads stay intact`, async () => {
    const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {})
      .streamHandler(streamHandler("paced", async (_ctx, s: EchoStream) => {
        for (let i = 0; i < PACED; i++) {
          await s.send(new Uint8Array(SMALL).fill(i & 0xff));
          await new Promise((r) => setTimeout(r, 2)); // one frame per read
        }
      }))
      .streamHandler(streamHandler("bulk", async (_ctx, s: EchoStream) => {
        for (let i = 0; i < BULK; i++) await s.send(new Uint8Array(1024).fill(i & 0xff));
      }))
      .streamHandler(streamHandler("dg", async (_ctx, s: EchoStream) => {
        // An unreliable stream: DATAGRAMS frames of 900 B, one per datagram, 20 every 2 ms.
        for (let i = 0; i < DATAGRAMS; i++) {
          const f = new Uint8Array(900).fill(i & 0xff);
          new DataView(f.buffer).setUint32(0, i);
          await s.send(f);
          if (i % 20 === 19) await new Promise((r) => setTimeout(r, 2));
        }
        await new Promise((r) => setTimeout(r, 50)); // the last datagrams before the end marker
      }))
      .build();
    await server.start();
    try {
      const r = await runForJson<{ runtime: string; paced: Run; bulk: Run; dg: { frames: number; intact: boolean } }>(
        runtimeCommand(rt, CLIENT, [server.address]),
        { ca: server.trust.ca },
        25_000,
      );
      expect(r.runtime).toBe(rt);
      expect(r.paced).toMatchObject({ frames: PACED, bytes: PACED * SMALL, intact: true });
      expect(r.bulk).toMatchObject({ frames: BULK, bytes: BULK * 1024, intact: true });
      // Small reads: at most twice the payload bytes (a frame header and the odd shared chunk).
      expect(r.paced.pinned).toBeLessThanOrEqual(2 * PACED * SMALL);
      // Bulk reads fill their buffers: what is pinned stays close to what was received.
      expect(r.bulk.pinned).toBeLessThanOrEqual(2 * BULK * 1024);
      // Datagram payloads kept while hundreds more arrive are unchanged: the stack hands a new
      // buffer per datagram (kept frames of a stream being opened, and the jitter buffer's, rely
      // on it). Most arrive; loss is allowed.
      expect(r.dg.frames).toBeGreaterThan(DATAGRAMS / 2);
      expect(r.dg.intact).toBe(true);
    } finally {
      await server.close({ graceMs: 0 });
    }
  }, 30_000);
}
