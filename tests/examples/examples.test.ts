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
    expect(r.stdout).toContain("reflection ($echostream.reflect): handlers audio.play; listeners audio.stopped; streams audio.stream");
    expect(r.stdout).toContain("[operator] fleet.list: 3 of 3 online");
    expect(r.stdout).toContain("[controller] 3 of 3 devices offline at the end");
    expect(r.stdout).toMatch(/echostream call 127\.0\.0\.1:\d+ audio\.play '"cli\.ogg"' --ca … --json -> \{"playing":"cli\.ogg"\} \(exit 0\)/);
    expect(r.stdout).toContain("zeroRtt connect #2: resumed=true");
    expect(r.stdout).toContain('audio.play("intro.ogg") -> {"playing":"intro.ogg"}');
    expect(r.stdout).toContain("audio.stream ended after 10 frames, 1600 bytes");
    expect(r.stdout).toContain('job.run("backup") -> job backup done');
    expect(r.stdout).toContain("chat.post -> delivered to 3 peers");
    expect(r.stdout).toMatch(/client\.clock: offset 1234\.\d+ ms ± [\d.]+ \(error -?\d+ µs\), .* via datagram/);
    expect(r.stdout).toMatch(/played \d+ frames of 20 ms audio: late \d+, lost \d+, release error p99/);
    // Discovery: found over the LAN and called, or a plain statement that multicast is missing.
    expect(r.stdout).toMatch(/demo\.where -> "hello from EchoDemo-\d+, reached by discovery"|multicast is not available here|multicast does not loop back/);
    expect(r.stdout).toContain("[d42] admin.wipe -> PERMISSION_DENIED");
    expect(r.stdout).toMatch(/\[d42\] fleet\.login #3 -> RESOURCE_EXHAUSTED \(retry after \d+ ms\)/);
    expect(r.stdout).toContain("another device's -> PERMISSION_DENIED");
    expect(r.stdout).toContain('[server] telemetry received: ["d42 telemetry.d42.temp 21.5"]');
    expect(r.stdout).toContain("[server] rejected: permissionDenied 2, rateLimited 1, unauthenticated 1");
    // Structured logs (LogTape's text formatter quotes strings with ' on Bun, " on Deno).
    expect(r.stdout).toMatch(/\[ERR\] echostream·rpc: error in ['"]report['"]: Error: disk full/);
    expect(r.stdout).toMatch(/\[DBG\] echostream·security: denied ['"]request['"] ['"]admin\.wipe['"]: access policy/);
    expect(r.stdout.trim().endsWith("demo ok")).toBe(true);
  }, 70_000);

  test(`iot: a controller and 4 device processes on ${rt}`, async () => {
    const r = await run(runtimeCommand(rt, join(EXAMPLES, "iot", "main.ts"), ["4", "2"]), { timeoutMs: 40_000 });
    expect(r.code).toBe(0);
    for (let i = 1; i <= 4; i++) {
      expect(r.stdout).toContain(`[controller] d${i} online`);
      expect(r.stdout).toContain(`[controller] cmd.d${i}.blink -> blinked 2 times`);
      expect(r.stdout).toContain(`[controller] cmd.not-d${i}.blink on d${i} -> PERMISSION_DENIED`);
      // Every reading a device sent reached the controller, the last ones included.
      const sent = Number(new RegExp(`\\[d${i}\\] sent (\\d+) readings, blinked 2, fleet.list -> PERMISSION_DENIED`).exec(r.stdout)?.[1]);
      expect(sent).toBeGreaterThan(5);
      expect(r.stdout).toContain(`[controller] d${i} offline after ${sent} readings`);
    }
    expect(r.stdout).toContain("[operator] fleet.list: 4 of 4 online");
    expect(r.stdout).toContain("[controller] 4 of 4 devices offline at the end");
  }, 50_000);

  test(`audio_sync through the relay on ${rt}`, async () => {
    const r = await run(runtimeCommand(rt, join(EXAMPLES, "audio_sync", "run.ts"), ["--relay", "--unreliable", "--seconds", "2"]), { timeoutMs: 40_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[sender\] server clock offset -?[\d.]+ ms ± [\d.]+, rtt [\d.]+ ms, via datagram/);
    expect(r.stdout).toMatch(/\[receiver\] frame  50 play at [\d.]+ \(\+[\d.]+ ms\) \| sender clock offset/);
    expect(r.stdout).toContain("[sender] sent 100 frames (QUIC datagrams)");
    const m = r.stdout.match(/played (\d+) frames, late (\d+), lost (\d+)/);
    expect(m).not.toBeNull();
    // 1% loss each way on datagrams: what was not played was counted late or lost.
    expect(Number(m![1]) + Number(m![2]) + Number(m![3])).toBeGreaterThanOrEqual(98);
    expect(r.stdout.trim().endsWith("audio_sync ok")).toBe(true);
  }, 50_000);
}
