// A server whose address is taken: start() rejects with TransportError LISTEN_FAILED, naming the
// address, and the process lives on (on Bun, node:quic's failed bind used to leave an unhandled
// rejection that ended the process after start() had failed). Bun, Deno and Node, each in its own process.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { bundleForNode, run, runtimeCommand } from "../support/process.ts";

let node: Awaited<ReturnType<typeof bundleForNode>>;
beforeAll(async () => void (node = await bundleForNode([join(import.meta.dir, "_bind_twice.ts")])), 60_000);
afterAll(() => node?.cleanup());

for (const rt of ["bun", "deno", "node"] as const) {
  test(`${rt}: listening on a taken port rejects with LISTEN_FAILED and does not end the process`, async () => {
    const r = await run(runtimeCommand(rt, join(import.meta.dir, "_bind_twice.ts"), [], node.dir), { timeoutMs: 20_000 });
    expect({ code: r.code, stderr: r.code ? r.stderr.slice(-500) : "" }).toEqual({ code: 0, stderr: "" });
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(out).toMatchObject({ code: "LISTEN_FAILED", alive: true });
    expect(out.message).toMatch(/^cannot listen on 127\.0\.0\.1:\d+: /);
  }, 30_000);
}
