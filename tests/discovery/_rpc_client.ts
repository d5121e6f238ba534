// The client half of tests/discovery/rpc.test.ts: RpcClient.discover(name), then
// RpcClient.connect(service, { fingerprint }) (explicit TOFU), a request, and RpcClient.browse
// until the service goes down. Prints one JSON line per step.
// Usage: _rpc_client.ts <name>

import process from "node:process";
import { RpcClient } from "../../mod.ts";

const [name] = process.argv.slice(2);
const t0 = performance.now();
const found = await RpcClient.discover(name, { timeoutMs: 5000 });
console.log(`found ${JSON.stringify({ ms: Math.round(performance.now() - t0), found })}`);
const svc = found[0];
if (svc) {
  const client = await RpcClient.connect(svc, { fingerprint: svc.fingerprint, name: "ns-client" });
  const who = await client.request("who", null, { timeoutMs: 3000 });
  console.log(`called ${JSON.stringify({ who, remote: client.peer.remote })}`);
  await client.close();
  const browser = RpcClient.browse(name, { requeryMs: 1000 });
  for await (const ev of browser) {
    console.log(`event ${JSON.stringify({ type: ev.type, instance: ev.service.instance })}`);
    if (ev.type === "down") break;
  }
}
process.exit(0);
