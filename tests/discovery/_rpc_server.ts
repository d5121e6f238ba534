// A discoverable RpcServer for tests/discovery/rpc.test.ts: `enableDiscovery(name)`, a handler
// answering its instance name, and a clean close on SIGTERM (goodbye packets).
// Usage: _rpc_server.ts <name> <bind host:port>

import process from "node:process";
import { handler, RpcServer } from "../../mod.ts";

const [name, bind] = process.argv.slice(2);
const server = RpcServer.builder()
  .bind(bind)
  .handler(handler("who", (ctx) => ({ name, runtime: "Deno" in globalThis ? "deno" : "bun", client: ctx.peer.name })))
  .enableDiscovery(name)
  .log((m) => console.log(`[log] ${m}`))
  .build();
await server.start();
console.log(`ready ${JSON.stringify({ instance: server.discovery?.instanceName, address: server.address, fingerprint: server.trust.fingerprint })}`);
process.once("SIGTERM", async () => {
  await server.close();
  console.log("closed");
  process.exit(0);
});
