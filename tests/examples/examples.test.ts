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
    expect(r.stdout).toMatch(/\[cyd-lossy\] \d+ snapshots over \d+ ticks/);
    expect(r.stdout).toMatch(/\[viewer\] \d+ frames, [\d.]+ MB\/s; input -> screen/);
    expect(r.stdout).toContain("[controller] 3 of 3 devices offline at the end");
    expect(r.stdout).toMatch(/echostream call 127\.0\.0\.1:\d+ audio\.play '"cli\.ogg"' --ca … --json -> \{"playing":"cli\.ogg"\} \(exit 0\)/);
    expect(r.stdout).toContain(`node bin/echostream.mjs call … '"node.ogg"' --json -> {"playing":"node.ogg"} (exit 0)`);
    expect(r.stdout).toContain("bob received: news: hello from east | room.message: bob: hi lobby");
    expect(r.stdout).toContain("zeroRtt connect #2: resumed=true");
    expect(r.stdout).toContain('audio.play("intro.ogg") -> {"playing":"intro.ogg"}');
    expect(r.stdout).toContain("audio.stream ended after 10 frames, 1600 bytes");
    expect(r.stdout).toContain('job.run("backup") -> job backup done');
    expect(r.stdout).toContain("chat.post -> delivered to 3 peers");
    expect(r.stdout).toMatch(/client\.clock: offset 1234\.\d+ ms ± [\d.]+ \(error -?\d+ µs\), .* via datagram/);
    expect(r.stdout).toMatch(/played \d+ frames of 20 ms audio: late \d+, lost \d+, release error p99/);
    // The second time-synced stream of a connection starts from the first's transit (loopback:
    // a few ms), the first from the fixed 80 ms.
    const start = /latency after 10 frames ([\d.]+) ms on the first stream \(nothing known yet\), ([\d.]+) ms on the second/.exec(r.stdout);
    expect(start).not.toBeNull();
    expect(Number(start![1])).toBe(80);
    expect(Number(start![2])).toBeLessThan(30);
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

  test(`game: 30 Hz server, datagram snapshots, events, voice, a player behind a lossy relay, on ${rt}`, async () => {
    const r = await run(runtimeCommand(rt, join(EXAMPLES, "game", "main.ts"), ["2"]), { timeoutMs: 40_000 });
    expect(r.code).toBe(0);
    const player = (name: string) => {
      const m = new RegExp(`\\[${name}\\] (\\d+) snapshots over (\\d+) ticks .*input -> snapshot p50 ([\\d.]+) ms .*events: (\\d+) joins, (\\d+) leader updates`).exec(r.stdout);
      expect(m).not.toBeNull();
      return { got: Number(m![1]), span: Number(m![2]), p50: Number(m![3]), joins: Number(m![4]), leaders: Number(m![5]) };
    };
    const voice = (name: string) => {
      const m = new RegExp(`voice from ${name}: (\\d+) of (\\d+) frames played, (\\d+) late \\(dropped\\), (\\d+) lost`).exec(r.stdout);
      expect(m).not.toBeNull();
      return { played: Number(m![1]), sent: Number(m![2]), late: Number(m![3]), lost: Number(m![4]) };
    };
    const [ann, bob, cyd] = [player("ann"), player("bob"), player("cyd-lossy")];
    for (const p of [ann, bob]) expect(p.got / p.span).toBeGreaterThan(0.9); // loopback: (nearly) every tick
    expect(cyd.got).toBeLessThan(cyd.span); // 10% of packets lost: some snapshots never arrive…
    expect(cyd.got / cyd.span).toBeGreaterThan(0.6); // …but most do, without waiting for the lost ones
    expect(cyd.p50).toBeGreaterThan(ann.p50); // the relay's 2 × 20 ms
    for (const p of [ann, bob, cyd]) {
      expect(p.joins).toBeGreaterThanOrEqual(1); // reliable events: at least its own join
      expect(p.leaders).toBeGreaterThanOrEqual(1);
    }
    for (const name of ["ann", "bob", "cyd-lossy"]) {
      const v = voice(name);
      expect(v.sent).toBeGreaterThan(50);
      expect(v.lost).toBe(0); // a reliable stream: every frame arrives, played or late
      expect(v.played + v.late).toBe(v.sent);
    }
    expect(r.stdout).toMatch(/\[relay\] dropped [1-9]\d* of \d+ packets up, [1-9]\d* of \d+ down/);
  }, 50_000);

  test(`remote_desktop: screen with backpressure, input down, audio up, one connection, on ${rt}`, async () => {
    const r = await run(runtimeCommand(rt, join(EXAMPLES, "remote_desktop", "main.ts"), ["3"]), { timeoutMs: 40_000 });
    expect(r.code).toBe(0);
    const host = /\[host\] captured (\d+) frames, sent (\d+), skipped (\d+) .*; (\d+) input events applied; (\d+) audio frames sent/.exec(r.stdout);
    const view = /\[viewer\] (\d+) frames, [\d.]+ MB\/s; input -> screen p50 ([\d.]+) ms/.exec(r.stdout);
    const audio = /\[viewer\] audio: (\d+) frames played, (\d+) late/.exec(r.stdout);
    expect([host, view, audio].every(Boolean)).toBe(true);
    const [captured, sent, skipped, inputs, audioSent] = host!.slice(1).map(Number);
    expect(Number(view![1])).toBe(sent); // every frame sent arrived
    expect(skipped).toBeGreaterThan(0); // the busy third: captures replaced, not queued
    expect(captured - sent - skipped).toBeGreaterThanOrEqual(0);
    expect(captured - sent - skipped).toBeLessThanOrEqual(1); // at most the last capture unsent
    expect(inputs).toBeGreaterThan(20);
    expect(Number(view![2])).toBeLessThan(500); // input -> screen, median
    expect(Number(audio![1]) + Number(audio![2])).toBe(audioSent); // every audio frame arrived
  }, 50_000);

  test(`cluster: two instances over a real NATS and Redis, a client on each, on ${rt}`, async () => {
    for (const bus of ["nats", "redis"]) {
      const r = await run(runtimeCommand(rt, join(EXAMPLES, "cluster", "main.ts"), [bus]), { timeoutMs: 40_000 });
      expect({ bus, code: r.code, err: r.code ? r.stderr : "" }).toEqual({ bus, code: 0, err: "" });
      expect(r.stdout).toContain("presence seen from east: alice@east, bob@west");
      expect(r.stdout).toContain('east.broadcast("news"): 1 local delivery, published to the other instances: true');
      expect(r.stdout).toMatch(/east\.peer\(<bob's id>\)\.request\("whereami"\) -> bob, connected to \w+…/);
      for (const who of ["alice", "bob"]) expect(r.stdout).toContain(`${who} received: news: hello from east | room.message: bob: hi lobby`);
      expect(r.stdout).toContain(`"bus":"${bus}","connected":true,"instances":2,"peers":2`);
    }
  }, 90_000);

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
