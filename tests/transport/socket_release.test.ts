// A client connection gives back its UDP socket when it closes, on every adapter, each on its
// own runtime (socket_release_check.ts; Node runs a bundle of it, made for its case only). Bun's
// and Deno's adapters once let the stack make an endpoint per connection, which it never closed:
// one file descriptor (and, on Bun, the endpoint and session objects) left behind per
// connection, for as long as the process lived.

import { expect, test } from "bun:test";
import { join } from "node:path";
import { bundleForNode, runForJson, runtimeCommand } from "../support/process.ts";

const CHECK = join(import.meta.dir, "socket_release_check.ts");

for (const rt of ["bun", "deno", "node"] as const) {
  test(`${rt} adapter: 30 connections opened and closed leave no file descriptor behind`, async () => {
    const bundle = rt === "node" ? await bundleForNode([CHECK]) : undefined;
    try {
      const r = await runForJson<{ cycles: number; fdsPerConnection: number }>(runtimeCommand(rt, CHECK, [], bundle?.dir), null, 60_000);
      expect(r.cycles).toBe(30);
      // A leak is one (or more) per connection; allow a stray descriptor across the whole run.
      expect(r.fdsPerConnection).toBeLessThan(0.1);
    } finally {
      bundle?.cleanup();
    }
  }, 120_000);
}
