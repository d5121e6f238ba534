// Bench fixture (bench/discovery.ts), run under Bun or Deno inside a namespace: an RpcServer with
// `enableDiscovery(name)` on 0.0.0.0. Prints {"event":"ready","startAt"} with the wall-clock time
// `server.start()` was called, and {"event":"closed","closeAt"} with the time `server.close()`
// was called (on SIGTERM).
//   _rpc_advertiser.ts '{"name":"AudioService"}'

import process from "node:process";
import { RpcServer } from "../../mod.ts";

const { name } = JSON.parse(process.argv[2] ?? "{}");
const print = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
const server = RpcServer.builder().bind("0.0.0.0:0").enableDiscovery(name).log(() => {}).build();
const startAt = performance.timeOrigin + performance.now();
await server.start();
print({ event: "ready", startAt, instance: server.discovery?.instanceName });
process.once("SIGTERM", async () => {
  const closeAt = performance.timeOrigin + performance.now();
  await server.close();
  print({ event: "closed", closeAt });
  process.exit(0);
});
