// The examples stay runnable: each runs in its own process on Bun and on Deno.

import { expect, test } from "bun:test";
import { join } from "node:path";
import { run, runtimeCommand } from "../support/process.ts";

const EXAMPLES = join(import.meta.dir, "..", "..", "examples");

for (const rt of ["bun", "deno"] as const) {
  test(`quic_echo.ts on ${rt}`, async () => {
    const r = await run(runtimeCommand(rt, join(EXAMPLES, "quic_echo.ts"), []), { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('[client] echoed: "hello over QUIC"');
  }, 40_000);

  test(`demo.ts on ${rt}`, async () => {
    const r = await run(runtimeCommand(rt, join(EXAMPLES, "demo.ts"), []), { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('REQUEST demo.reverse("olleh") -> RESPONSE "hello"');
    expect(r.stdout).toContain("zeroRtt connect #2: resumed=true");
    expect(r.stdout).toContain('audio.play("intro.ogg") -> {"playing":"intro.ogg"}');
    expect(r.stdout).toContain("audio.stream ended after 10 frames, 1600 bytes");
    expect(r.stdout).toContain('job.run("backup") -> job backup done');
    expect(r.stdout).toContain("chat.post -> delivered to 3 peers");
    expect(r.stdout.trim().endsWith("demo ok")).toBe(true);
  }, 70_000);
}
