// One IoT device, its own process: authenticates with its token, streams a temperature reading
// every `intervalMs`, answers its own commands (cmd.<id>.blink, cmd.<id>.interval) and lets the
// controller call nothing else. Prints one JSON line per thing that happens.
//
//   bun examples/iot/device.ts <address> <id> <token> <seconds>     (the CA, PEM, as one JSON line on stdin)

import process from "node:process";
import { createInterface } from "node:readline";
import { handler, RpcClient, RpcError } from "../../mod.ts";

const [address, id, token, seconds] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
const say = (o: Record<string, unknown>) => console.log(JSON.stringify({ id, ...o }));

const ca = await new Promise<string>((resolve) => {
  const rl = createInterface({ input: process.stdin });
  rl.once("line", (l) => {
    rl.close();
    resolve(JSON.parse(l));
  });
});

let intervalMs = 100;
let blinks = 0;
const client = await RpcClient.connect(address, {
  ca,
  auth: token,
  name: `device-${id}`,
  // The controller may call this device's own commands, nothing else.
  accessControl: { defaultDeny: true, permissions: { request: [`cmd.${id}.*`] } },
  onError: () => {},
});
client.handle(
  handler(`cmd.${id}.blink`, (_ctx, n: number) => {
    blinks += n;
    say({ event: "blink", n });
    return `blinked ${n} times`;
  }),
  handler(`cmd.${id}.interval`, (_ctx, ms: number) => {
    if (!Number.isInteger(ms) || ms < 10) throw new RpcError("INVALID_ARGUMENT", "interval: an integer ≥ 10 ms");
    intervalMs = ms;
    say({ event: "interval", ms });
    return ms;
  }),
);
say({ event: "connected" });

// What the access policy refuses a device: the operators' fleet.list.
const denied = await client.request("fleet.list").then(() => "allowed", (e: RpcError) => e.code);
say({ event: "fleet.list", result: denied });

const stream = await client.createStream("telemetry");
const until = performance.now() + Number(seconds) * 1000;
let sent = 0;
let temp = 20 + (id.charCodeAt(id.length - 1) % 5);
while (performance.now() < until) {
  temp += (Math.random() - 0.5) * 0.2;
  await stream.send(new TextEncoder().encode(JSON.stringify({ tempC: Math.round(temp * 100) / 100, at: Date.now() })));
  sent++;
  await new Promise((r) => setTimeout(r, intervalMs));
}
await stream.end();
say({ event: "done", sent, blinks });
await client.close();
process.exit(0);
