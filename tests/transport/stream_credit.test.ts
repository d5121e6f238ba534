// Stream credit through the Bun and Deno adapters (no RPC), each runtime in its own process
// (stream_credit_repro.ts suite): slots of closed streams come back even while most of the limit
// is held open; incoming streams past the limit wait instead of being served; an open waiting
// for a slot can be given up without wasting the slot.

import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runForJson, runtimeCommand } from "../support/process.ts";

const REPRO = join(import.meta.dir, "stream_credit_repro.ts");

interface Suite {
  runtime: string;
  hold: { held: number; churn: number; completed: number };
  gate: { limit: number; opened: number; maxServed: number; completed: number };
  wait: { limit: number; held: number; aborted: string; reopened: string; seen: number };
  clean: { completed: number[] };
  "client-reset": { completed: number[] };
  "client-stop": { completed: number[] };
}

for (const rt of ["bun", "deno"] as const) {
  describe(`${rt} adapter`, () => {
    let r: Suite;
    test("runs the credit suite", async () => {
      r = await runForJson<Suite>(runtimeCommand(rt, REPRO, ["suite"]), null, 60_000);
      expect(r.runtime).toBe(rt);
    }, 70_000);

    test("62 of 64 streams held open: 200 more open and close one after another", () => {
      // Raw stacks stopped after 2: Bun returns slots once 32 closed, quinn once 8 did.
      expect(r.hold).toEqual({ held: 62, churn: 200, completed: 200 });
    });

    test("16 streams opened at once with a limit of 8: 8 served at a time, all 16 complete", () => {
      expect(r.gate).toEqual({ limit: 8, opened: 16, maxServed: 8, completed: 16 });
    });

    test("an open past every slot is given up by its signal; the slot is not lost", () => {
      // The stack grants twice the limit; 4 opens given up, then all but one slot freed.
      expect(r.wait).toEqual({ limit: 4, held: 8, aborted: "STREAM_LIMIT", reopened: "ok", seen: 9 });
    });

    test("streams closed cleanly, by a client reset or by the client stopping the reply: no stall", () => {
      for (const p of ["clean", "client-reset", "client-stop"] as const) expect([p, r[p].completed]).toEqual([p, [60, 60, 60]]);
    });
  });
}
