// Time-synced streams across runtimes: a Bun server (this process) and a Deno or Bun client in
// its own process (rt_client.ts) whose clock is 3 s behind, exchanging aligned frames both ways
// on QUIC datagrams.

import { expect, test } from "bun:test";
import { join } from "node:path";
import { RpcServer } from "../../src/rpc/server.ts";
import { streamHandler } from "../../src/rpc/definitions.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import type { StreamStats } from "../../src/stream/time_sync.ts";
import type { ClockStats } from "../../src/clock/sync.ts";
import { runForJson, runtimeCommand } from "../support/process.ts";

const CLIENT = join(import.meta.dir, "rt_client.ts");

/** What rt_client.ts prints. */
interface ClientResult {
  runtime: string;
  clock: ClockStats;
  got: { seq: number; alignedTime: number; timestamp: number; releasedAt: number }[];
  stats: StreamStats;
}

for (const rt of ["deno", "bun"] as const) {
  test(`${rt} client ⇄ Bun server: clock offset found, frames aligned and echoed back aligned`, async () => {
    const seen: { seq: number; timestamp: number; alignedTime: number; releasedAt: number }[] = [];
    let serverStats!: StreamStats;
    const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {})
      .streamHandler(streamHandler("rt.echo", async (_ctx, s: EchoStream) => {
        for (let f = await s.recvAligned(); f; f = await s.recvAligned()) {
          seen.push({ seq: f.seq, timestamp: f.timestamp, alignedTime: f.alignedTime, releasedAt: s.now() });
          await s.sendWithTimestamp(f.data, s.now());
        }
        serverStats = s.stats();
        await s.end();
      }))
      .build();
    await server.start();
    try {
      const r = await runForJson<ClientResult>(runtimeCommand(rt, CLIENT, [server.address]), { ca: server.trust.ca }, 40_000);
      expect(r.runtime).toBe(rt);
      // The client's clock is 3 s behind: the server's is 3000 ms ahead of it.
      expect(r.clock.transport).toBe("datagram");
      expect(Math.abs(r.clock.offsetMs - 3000)).toBeLessThan(2);
      // Server side: all 50 frames, in order, never early, at client ts + 3000 + 80 ms.
      expect(seen.map((f) => f.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      for (const f of seen) {
        expect(f.releasedAt).toBeGreaterThanOrEqual(f.alignedTime);
        expect(Math.abs(f.alignedTime - (f.timestamp + 3000 + 80))).toBeLessThan(2);
      }
      expect(serverStats.lost + serverStats.late).toBe(0);
      // Client side: the echoes, stamped on the server's clock, aligned 3000 ms back + 80 ms.
      expect(r.got.length).toBe(50);
      for (const f of r.got) {
        expect(f.releasedAt).toBeGreaterThanOrEqual(f.alignedTime);
        expect(Math.abs(f.alignedTime - (f.timestamp - 3000 + 80))).toBeLessThan(2);
      }
      expect(r.stats.delivered).toBe(50);
    } finally {
      await server.close();
    }
  }, 60_000);
}
