// The WASM core loads with no permissions and no flags on Deno and Node 20 (Bun: every other
// test). Each runtime runs in its own process.

import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import vectors from "../vectors/frames.json" with { type: "json" };
import { WASM_SOURCE_HASH } from "../../wasm/generated.ts";
import { run, tool } from "../support/process.ts";

const script = join(import.meta.dir, "load_check.ts");
const want = { roundTrips: 2 * vectors.frames.length, sourceHash: WASM_SOURCE_HASH };

test("Deno loads the WASM core with no permission flags", async () => {
  // The package's own deno.json supplies the import map (as JSR does for users); no permission flag.
  const r = await run([tool("deno"), "run", "--no-prompt", script]);
  expect(r.stderr).not.toContain("error");
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ runtime: "deno", ...want });
}, 60_000);

test("Node 20 loads the WASM core with no flags", async () => {
  const dir = mkdtempSync(join(tmpdir(), "echostream-node-"));
  try {
    const out = join(dir, "load_check.mjs");
    const b = await run([tool("bun"), "build", script, "--target=node", "--outfile", out]);
    expect(b.code).toBe(0);
    const r = await run(["node", out]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ runtime: "node", ...want });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
