// Opening past the peer's stream limit, at the RPC level, on Bun and on Deno (each in its own
// process: churn_limits_check.ts). A call or stream open with a deadline or a signal must fail
// within it, clearly, and leave nothing behind; once streams end, everything works again.

import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runForJson, runtimeCommand } from "../support/process.ts";

const CHECK = join(import.meta.dir, "churn_limits_check.ts");

interface Outcome {
  code: string;
  message: string;
  ms: number;
}
interface Result {
  runtime: string;
  waitsAtServer: Outcome;
  requestDeadline: Outcome;
  requestCancel: Outcome;
  streamDeadline: Outcome;
  streamCancel: Outcome;
  reachedServer: number;
  queuedServed: string[];
  afterwards: Outcome;
  baseline: {
    client: { openStreams: number; pendingRequests: number };
    server: { openStreams: number; inFlight: number; incomingStreams: number; waitingStreams: number };
  };
}

for (const rt of ["bun", "deno"] as const) {
  describe(`${rt}: opening past the stream limit`, () => {
    let r: Result;
    test("runs", async () => {
      r = await runForJson<Result>(runtimeCommand(rt, CHECK, []), null, 60_000);
      expect(r.runtime).toBe(rt);
    }, 70_000);

    test("a request with timeoutMs fails DEADLINE_EXCEEDED, naming the limit, not before its deadline", () => {
      expect(r.requestDeadline.code).toBe("DEADLINE_EXCEEDED");
      expect(r.requestDeadline.message).toContain("limit on concurrent streams");
      expect(r.requestDeadline.ms).toBeGreaterThanOrEqual(295); // 300 ms, timer granularity aside
    });

    test("a request whose signal aborts fails CANCELLED, naming the limit", () => {
      expect(r.requestCancel.code).toBe("CANCELLED");
      expect(r.requestCancel.message).toContain("limit on concurrent streams");
    });

    test("createStream().timeout() and .signal() bound the wait for a slot the same way", () => {
      expect(r.streamDeadline.code).toBe("DEADLINE_EXCEEDED");
      expect(r.streamDeadline.message).toContain("limit on concurrent streams");
      expect(r.streamCancel.code).toBe("CANCELLED");
      expect(r.streamCancel.message).toContain("limit on concurrent streams");
    });

    test("a stream the server does not accept in time fails DEADLINE_EXCEEDED", () => {
      expect(r.waitsAtServer.code).toBe("DEADLINE_EXCEEDED");
      expect(r.waitsAtServer.message).toContain("did not accept it");
    });

    test("calls given up while waiting for a slot never reach the server", () => {
      expect(r.reachedServer).toBe(0);
    });

    test("once streams end, waiting streams are served, calls go through, counters are back to baseline", () => {
      expect(r.queuedServed).toEqual(["ok", "ok", "ok"]);
      expect(r.afterwards.code).toBe("ok");
      expect(r.baseline).toEqual({
        client: { openStreams: 0, pendingRequests: 0 },
        // The control stream is the one incoming stream left.
        server: { openStreams: 0, inFlight: 0, incomingStreams: 1, waitingStreams: 0 },
      });
    });
  });
}
