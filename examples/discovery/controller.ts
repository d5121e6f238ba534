// A controller: finds every device advertising a service name on the LAN (device.ts) and calls each.
//
// Run:  bun examples/discovery/controller.ts [ServiceName]
//       deno run --unstable-net --allow-net --allow-sys=networkInterfaces examples/discovery/controller.ts
//
// Trust: the advertised fingerprint comes from unauthenticated multicast. Pinning it, as below, is
// trust on first use: fine on a LAN you control, not against an attacker on it. Keep the fingerprints
// you accepted and compare them next time, or distribute a CA (`{ ca }`) instead.

import process from "node:process";
import { RpcClient } from "../../mod.ts";
import { DiscoveryError } from "../../src/discovery/mod.ts";

/** Discovers `name` and toggles every device found; returns one line per device. */
export async function controlAll(name = "SmartLamp", log: (line: string) => void = console.log): Promise<string[]> {
  const found = await RpcClient.discover(name, { timeoutMs: 3000 });
  if (found.length === 0) log(`[controller] no "${name}" answered on this network`);
  const lines: string[] = [];
  for (const s of found) {
    if (!s.fingerprint) {
      log(`[controller] ${s.instance} advertises no fingerprint: skipped (no trust anchor)`);
      continue;
    }
    // connect() tries the addresses in turn (IPv4 first, happy eyeballs).
    const host = s.addresses[0];
    const client = await RpcClient.connect(s, { fingerprint: s.fingerprint }); // TOFU, explicit
    try {
      const info = await client.request<{ kind: string; on: boolean }>("device.info", null, { timeoutMs: 2000 });
      const on = await client.request<boolean>("device.toggle", null, { timeoutMs: 2000 });
      const line = `[controller] ${s.instance} (${info.kind}) at ${host}:${s.port}: on=${info.on} -> on=${on}`;
      log(line);
      lines.push(line);
    } finally {
      await client.close();
    }
  }
  return lines;
}

if (import.meta.main) {
  try {
    await controlAll(process.argv[2]);
  } catch (e) {
    if (e instanceof DiscoveryError && e.code === "UNAVAILABLE") {
      console.log(`[controller] multicast is not available here: ${e.message}`);
    } else throw e;
  }
}
