// A client connection gives back its UDP socket when it closes, on every adapter, each on its
// own runtime (socket_release_check.ts; Node runs a bundle of it). Bun's adapter once bound a
// fresh endpoint per connection and never closed it: one file descriptor (and the endpoint and
// session objects, about 15 KB of heap) left behind per connection, for as long as the process
// lived.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { bundleForNode, runForJson, runtimeCommand } from "../support/process.ts";

const CHECK = join(import.meta.dir, "socket_release_check.ts");

let node: { dir: string; cleanup: () => void } | undefined;
beforeAll(async () => {
  node = await bundleForNode([CHECK]);
}, 60_000);
afterAll(() => node?.cleanup());

for (const rt of ["bun", "deno", "node"] as const) {
  describe(`${rt} adapter`, () => {
    test("30 connections opened and closed leave no file descriptor behind", async () => {
      const r = await runForJson<{ cycles: number; fdsPerConnection: number }>(runtimeCommand(rt, CHECK, [], node?.dir), null, 60_000);
      expect(r.cycles).toBe(30);
      // A leak is one (or more) per connection; allow a stray descriptor across the whole run.
      expect(r.fdsPerConnection).toBeLessThan(0.1);
    }, 70_000);
  });
}
