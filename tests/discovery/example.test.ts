// examples/discovery: devices advertise in one namespace, a controller in the other finds and calls
// every one of them over QUIC. Needs root; skipped otherwise.

import { describe, expect, test } from "bun:test";
import { netnsUnavailableReason, spawnIn, tool } from "../support/netns.ts";
import { usePair } from "./_pair.ts";

const reason = netnsUnavailableReason();
if (reason) console.log(`skipping tests/discovery/example.test.ts: ${reason}`);

const DENO_DEVICE = [
  tool("deno"),
  "run",
  "--unstable-net",
  "--allow-net",
  "--allow-env",
  "--allow-sys=networkInterfaces",
];
const DENO_CONTROLLER = [tool("deno"), "run", "--unstable-net", "--allow-net", "--allow-sys=networkInterfaces"];

describe.skipIf(!!reason)("examples/discovery", () => {
  const net = usePair();

  test("a Bun device and a Deno device; the controller finds and toggles both", async () => {
    const bunDevice = spawnIn(net.pair.a.name, [tool("bun"), "examples/discovery/device.ts"]);
    await bunDevice.waitLine((l) => l.includes("advertised"), 15_000);
    const denoDevice = spawnIn(net.pair.a.name, [...DENO_DEVICE, "examples/discovery/device.ts"]);
    await denoDevice.waitLine((l) => l.includes("advertised"), 15_000);
    // A Deno controller here (tests/discovery/rpc.test.ts covers every Bun/Deno pair).
    const controller = spawnIn(net.pair.b.name, [...DENO_CONTROLLER, "examples/discovery/controller.ts"]);
    expect(await controller.exited).toBe(0);
    const lines = controller.lines.filter((l) => l.startsWith("[controller]"));
    expect(lines).toHaveLength(2);
    expect(lines.some((l) => l.includes("SmartLamp (lamp) at 10.66.1.1:") && l.endsWith("on=false -> on=true"))).toBe(
      true,
    );
    expect(lines.some((l) => l.includes("SmartLamp (2) (lamp) at 10.66.1.1:"))).toBe(true);
    for (const d of [bunDevice, denoDevice]) {
      d.kill("SIGTERM");
      await d.waitLine((l) => l.includes("goodbye sent"), 5000);
      expect(await d.exited).toBe(0);
    }
  }, 45_000);
});
