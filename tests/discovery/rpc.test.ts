// Discovery through the RPC API over real multicast between two network namespaces:
// `RpcServer.builder().enableDiscovery(name)` in one, `RpcClient.discover` + `connect(service)`
// + `browse` in the other, on Bun and Deno. Needs root; skipped with a reason otherwise.

import { describe, expect, test } from "bun:test";
import { netnsUnavailableReason, spawnIn, tool } from "../support/netns.ts";
import { usePair } from "./_pair.ts";

const reason = netnsUnavailableReason();
if (reason) console.log(`skipping tests/discovery/rpc.test.ts: ${reason}`);

const cmd = (rt: "bun" | "deno", script: string) =>
  rt === "bun" ? [tool("bun"), script] : [tool("deno"), "run", "--unstable-net", "--allow-net", "--allow-env", "--allow-sys=networkInterfaces", script];

describe.skipIf(!!reason)("enableDiscovery / RpcClient.discover / connect(service) / browse", () => {
  const net = usePair();

  for (const [server, client] of [["bun", "deno"], ["deno", "bun"], ["deno", "deno"], ["bun", "bun"]] as const) {
    test(`${server} server advertises, ${client} client discovers, calls, and sees it leave`, async () => {
      const name = `Rpc-${server}-${client}`;
      const bind = "0.0.0.0:0";
      const srv = spawnIn(net.pair.a.name, [...cmd(server, "tests/discovery/_rpc_server.ts"), name, bind]);
      const ready = await srv.waitLine((l) => l.startsWith("ready "), 15_000);
      const info = JSON.parse(ready.slice(6));
      expect(info.instance).toBe(name);
      const cli = spawnIn(net.pair.b.name, [...cmd(client, "tests/discovery/_rpc_client.ts"), name]);
      const found = JSON.parse((await cli.waitLine((l) => l.startsWith("found "), 15_000)).slice(6));
      expect(found.found).toHaveLength(1);
      const svc = found.found[0];
      expect(svc).toMatchObject({ name, instance: name, port: Number(info.address.split(":").pop()), fingerprint: info.fingerprint, version: 1 });
      expect(svc.addresses[0]).toBe(net.pair.a.links[0].ipv4);
      expect(svc.addresses.some((a: string) => a.startsWith("127.") || a === "::1")).toBe(false);
      expect(svc.txt).toMatchObject({ alpn: "echostream/1", svc: name });
      const called = JSON.parse((await cli.waitLine((l) => l.startsWith("called "), 15_000)).slice(7));
      expect(called.who).toEqual({ name, runtime: server, client: "ns-client" });
      await cli.waitLine((l) => l.includes('"type":"up"'), 10_000);
      srv.kill("SIGTERM");
      await srv.waitLine((l) => l === "closed", 10_000);
      await cli.waitLine((l) => l.includes('"type":"down"'), 10_000);
      expect(await cli.exited).toBe(0);
    }, 60_000);
  }
});
