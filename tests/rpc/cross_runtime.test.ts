// The RPC core across runtimes: a Bun or Deno server and a Bun or Deno client, each in its own
// process (scenario.ts), over real QUIC.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runForJson, runtimeCommand, spawnServer } from "../support/process.ts";

const SCENARIO = join(import.meta.dir, "scenario.ts");
const RUNTIMES = ["bun", "deno"] as const;
const servers: Record<string, { address: string; ca: string; stop: () => Promise<void> }> = {};

beforeAll(async () => {
  for (const rt of RUNTIMES) {
    const { info, stop } = await spawnServer<{ address: string; ca: string }>(runtimeCommand(rt, SCENARIO, ["server"]));
    servers[rt] = { ...info, stop };
  }
}, 30_000);

afterAll(async () => {
  await Promise.all(Object.values(servers).map((s) => s.stop()));
});

for (const server of RUNTIMES) {
  for (const client of RUNTIMES) {
    describe(`${client} client → ${server} server`, () => {
      let r: Record<string, unknown>;
      beforeAll(async () => {
        r = await runForJson(runtimeCommand(client, SCENARIO, ["client", servers[server].address]), { ca: servers[server].ca }, 50_000);
      }, 60_000);

      test("requests: values, bytes, NOT_FOUND, INTERNAL without leaks, error details, validation", () => {
        expect(r).toMatchObject({
          runtime: client,
          serverRuntime: server,
          echo: { a: [1, "two", null], b: 1.5 },
          bytes: [9, 8, 7],
          notFound: "NOT_FOUND",
          internal: { code: "INTERNAL", leaked: false },
          details: { code: "NOT_FOUND", details: { id: 1 } },
          invalid: "INVALID_ARGUMENT",
          valid: 4,
        });
      });

      test("request streams are reused: sequential calls share one, a second concurrent batch opens none", () => {
        const reuse = r.reuse as { ok: number; sequential: number; first: number; second: number };
        expect(reuse.ok).toBe(20);
        expect(reuse.sequential).toBeLessThanOrEqual(1); // earlier calls may have left one idle
        expect(reuse.first).toBeLessThanOrEqual(8);
        expect(reuse.second).toBe(0);
      });

      test("reflection lists what the server serves, with descriptions and input JSON Schemas", () => {
        const d = r.reflection as Record<string, unknown>;
        expect(d.handlers).toEqual(["aborts", "callback", "echo", "events", "greet", "len", "not-found", "runtime", "slow", "slowStarted", "throws"]);
        expect(d.listeners).toEqual(["tick"]);
        expect(d.streams).toEqual(["abort", "echo", "one"]);
        expect(d.len).toEqual({ name: "len", description: "Length of a string", idempotent: true, inputSchema: { type: "string" } });
        expect(d.tick).toEqual({ name: "tick", description: "A counter tick" });
        expect(d.protocol).toBe(1);
      });

      test("deadline and cancellation reach the handler's signal", () => {
        expect(r.deadline).toBe("DEADLINE_EXCEEDED");
        expect(r.cancel).toBe("CANCELLED");
        const aborts = r.handlerAborts as string[];
        expect(aborts.length).toBe(2);
        expect(aborts[1]).toBe("CANCELLED");
      });

      test("TC39 decorators register a service; 10,000 concurrent streams on one connection", () => {
        expect(r.decorators).toBe("hello deno-or-bun");
        expect((r.streams10k as { ok: number }).ok).toBe(10_000);
      });

      test("events in order; streams echo, end and abort; callbacks; 1,000 concurrent requests", () => {
        expect(r).toMatchObject({
          eventsInOrder: true,
          streamEcho: { okFrames: 50, endSeen: true },
          streamAbort: "RESOURCE_EXHAUSTED",
          callback: 42,
          concurrent: true,
        });
      });
    });
  }
}
