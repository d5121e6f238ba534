// Connection.handle() is called once per connection (types.ts): a second call throws
// INVALID_ARGUMENT and leaves the first call's handlers in place, on every adapter, each on its
// own runtime (handle_once_check.ts; Node runs a bundle of it).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { bundleForNode, runForJson, runtimeCommand } from "../support/process.ts";

const CHECK = join(import.meta.dir, "handle_once_check.ts");
const ONCE = { code: "INVALID_ARGUMENT", message: "handle() may be called once per connection" };

let node: { dir: string; cleanup: () => void } | undefined;
beforeAll(async () => {
  node = await bundleForNode([CHECK]);
}, 60_000);
afterAll(() => node?.cleanup());

for (const rt of ["bun", "deno", "node"] as const) {
  describe(`${rt} adapter`, () => {
    test("a second handle() throws INVALID_ARGUMENT; the first handlers keep serving", async () => {
      const r = await runForJson(runtimeCommand(rt, CHECK, [], node?.dir), null, 40_000);
      expect(r).toEqual({
        runtime: rt,
        server: { second: ONCE, served: "first" },
        client: { second: ONCE, served: "client first" },
      });
    }, 50_000);
  });
}
