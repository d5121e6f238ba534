// Stream and request churn on one long-lived connection, for every Bun/Deno client × server pair
// (separate processes: churn_server.ts, churn_client.ts). Waves of up to the stream limit
// (1,000 EchoStreams open at once against the default 1,024), interleaved with requests, some cut
// by their deadline and some cancelled: no stall, every frame and reply accounted for, and every
// live counter back to baseline after each wave. These waves stalled on Bun and Deno (issue 11 §2).
//
// Size (environment): CHURN_STREAMS (default 3000), CHURN_REQUESTS (3000), CHURN_WAVE (1000),
// CHURN_FRAMES (frames echoed per stream, 3). The long run (100,000 each) is bench/churn.ts.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChurnResult, runChurnClient, startChurnServer } from "./churn_pair.ts";

const env = (k: string, d: number) => {
  const v = Number(process.env[k] ?? d);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${k} must be a positive integer, received ${process.env[k]}`);
  return v;
};
const STREAMS = env("CHURN_STREAMS", 3000);
const REQUESTS = env("CHURN_REQUESTS", 3000);
const WAVE = env("CHURN_WAVE", 1000);
const FRAMES = env("CHURN_FRAMES", 3);
const WAVES = Math.ceil(STREAMS / WAVE);
/** A wave that takes longer has stalled (measured here: 1–9 s for a wave of 1,000). */
const WAVE_TIMEOUT_MS = 30_000;
const PAIR_TIMEOUT_MS = WAVES * WAVE_TIMEOUT_MS + 20_000;
// Request i is cancelled by its signal when i % 10 == 3 and cut by its deadline when i % 10 == 7.
const count = (rem: number) => Math.floor(REQUESTS / 10) + (REQUESTS % 10 > rem ? 1 : 0);
const CANCELLED = count(3);
const DEADLINE = count(7);

for (const serverRt of ["bun", "deno"] as const) {
  for (const clientRt of ["bun", "deno"] as const) {
    describe(`${clientRt} client → ${serverRt} server: ${STREAMS} streams in waves of ${WAVE}, ${REQUESTS} requests`, () => {
      let server: Awaited<ReturnType<typeof startChurnServer>>;
      let r: ChurnResult;
      beforeAll(async () => {
        server = await startChurnServer(serverRt);
        r = await runChurnClient(clientRt, server, { streams: STREAMS, requests: REQUESTS, wave: WAVE, frames: FRAMES, waveTimeoutMs: WAVE_TIMEOUT_MS }, PAIR_TIMEOUT_MS);
      }, PAIR_TIMEOUT_MS + 10_000);
      afterAll(async () => await server?.stop());

      test("every wave ran, with all its streams open at once; none stalled", () => {
        expect([r.runtime, r.serverRuntime]).toEqual([clientRt, serverRt]);
        expect(r.waves.map((w) => w.stalled ?? "ok")).toEqual(Array(WAVES).fill("ok"));
        expect(r.waves.map((w) => w.opened)).toEqual(r.waves.map((w) => w.streams));
        expect(r.waves.map((w) => w.peakOpen)).toEqual(r.waves.map((w) => w.streams));
        expect(r.waves.reduce((n, w) => n + w.opened, 0)).toBe(STREAMS);
      });

      test("every frame echoed back intact", () => {
        const sent = r.waves.reduce((n, w) => n + w.framesSent, 0);
        expect(sent).toBe(STREAMS * FRAMES);
        expect(r.waves.reduce((n, w) => n + w.framesEchoed, 0)).toBe(sent);
        expect(r.waves.reduce((n, w) => n + w.badFrames, 0)).toBe(0);
      });

      test("every request answered as expected: echoes intact, deadlines and cancellations as such", () => {
        const sum = (k: "sent" | "ok" | "bad" | "deadline" | "cancelled") => r.waves.reduce((n, w) => n + w.requests[k], 0);
        expect(r.waves.flatMap((w) => w.errors)).toEqual([]);
        expect(r.waves.map((w) => w.requests.other)).toEqual(Array(WAVES).fill({}));
        expect({ sent: sum("sent"), ok: sum("ok"), bad: sum("bad"), deadline: sum("deadline"), cancelled: sum("cancelled") })
          .toEqual({ sent: REQUESTS, ok: REQUESTS - CANCELLED - DEADLINE, bad: 0, deadline: DEADLINE, cancelled: CANCELLED });
        // Every cancelled call that reached a handler stopped it (none ran its 3 s out).
        expect(r.slow.completed).toBe(0);
      });

      test("after each wave every live counter is back to baseline, on both sides", () => {
        const zero = { openStreams: 0, pendingRequests: 0, inFlight: 0, incoming: 0, waiting: 0 };
        expect(r.waves.map((w) => ({ client: w.client, server: w.server }))).toEqual(Array(WAVES).fill({ client: zero, server: zero }));
      });
    });
  }
}
