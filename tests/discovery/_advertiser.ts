// Test fixture, run under Bun or Deno inside a namespace: advertises one service, prints JSON lines,
// and on SIGTERM closes the advertisement and then lets the process end by itself (no process.exit):
// a leaked socket or timer would keep it alive, which the tests catch.
// Usage: _advertiser.ts '{"name":"AudioService","port":5000,"fingerprint":"..","interfaces":["eth0"]}'

import process from "node:process";
import { advertise, type AdvertiseOptions } from "../../src/discovery/mod.ts";

const opts = JSON.parse(process.argv[2] ?? "{}") as AdvertiseOptions;
const startAt = Date.now();
const t0 = performance.now();
const ad = await advertise(opts);
const print = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
print({
  event: "ready",
  instanceName: ad.instanceName,
  subtype: ad.subtype,
  interfaces: ad.interfaces,
  ms: performance.now() - t0,
  startAt,
});
process.once("SIGTERM", async () => {
  const t = performance.now();
  const closeAt = Date.now();
  await ad.close();
  print({ event: "closed", instanceName: ad.instanceName, ms: performance.now() - t, closeAt, at: Date.now() });
});
