// Access control and rate limits for an IoT fleet: each device authenticates with a token, may
// emit only its own telemetry and call a few shared methods; logins are rate limited per
// address; and each device limits what the server may call on it (its own commands only).
// Run: bun examples/secure_iot.ts (or deno run --unstable-net -A examples/secure_iot.ts)

import { handler, listener, RpcClient, RpcError, RpcServer } from "../mod.ts";

const TOKENS: Record<string, string> = { "tok-42": "d42", "tok-43": "d43" };

/** Runs the example; prints what each side saw. */
export async function secureIotExample(log: (line: string) => void = console.log): Promise<void> {
  const readings: string[] = [];
  const server = RpcServer.builder()
    .bind("127.0.0.1:0")
    .log(() => {})
    .onError((e, where) => log(`[server] refused in ${where.replace(/:\d+$/, "")}: ${(e as Error).message}`))
    .authenticate(({ auth }) => {
      const id = TOKENS[String(auth)];
      if (!id) throw new RpcError("UNAUTHENTICATED", "unknown device token");
      return { id };
    })
    .listener(listener("telemetry.d42.temp", (ctx, c: number) => void readings.push(`${(ctx.principal as { id: string }).id} ${ctx.name} ${c}`)))
    .listener(listener("telemetry.d43.temp", (ctx, c: number) => void readings.push(`${(ctx.principal as { id: string }).id} ${ctx.name} ${c}`)))
    .handler(handler("time.now", () => Date.now()))
    .handler(handler("fleet.login", (ctx) => `welcome ${(ctx.principal as { id: string }).id}`))
    .handler(handler("admin.wipe", () => "wiped"))
    .handler(handler("probe", async (ctx) => {
      // The server calls back into the device: its own command works, another device's does not.
      const own = await ctx.peer.request(`cmd.${(ctx.principal as { id: string }).id}.reboot`);
      const other = await ctx.peer.request("cmd.d43.reboot").catch((e: RpcError) => e.code);
      return `own command -> ${own}; another device's -> ${other}`;
    }))
    .accessControl({
      defaultDeny: true,
      permissions: { request: { allow: ["time.now", "fleet.login", "probe", "admin.>"], deny: ["admin.>"] } },
      // Computed once per connection, from who authenticated.
      perPeer: ({ principal }) => ({ event: [`telemetry.${(principal as { id: string }).id}.>`] }),
    })
    .rateLimit({ key: "address", names: ["fleet.login"], perSecond: 2, burst: 2 })
    .rateLimit({ key: "principal", perSecond: 1000, burst: 100 })
    .limits({ maxConnectionsPerAddress: 64, maxConcurrentHandlers: 32 })
    .build();
  await server.start();

  const device = await RpcClient.connect(server.address, {
    ca: server.trust.ca,
    auth: "tok-42",
    // What the server may call on this device: its own commands, nothing else.
    accessControl: { permissions: { request: ["cmd.d42.*"], event: [], stream: [] } },
  });
  device.handle(handler("cmd.d42.reboot", () => "rebooting"), handler("cmd.d43.reboot", () => "should never run"));

  await device.emit("telemetry.d42.temp", 21.5);
  await device.emit("telemetry.d43.temp", 99); // another device's name: dropped, counted
  log(`[d42] time.now -> ${typeof (await device.request("time.now"))}`);
  log(`[d42] admin.wipe -> ${await device.request("admin.wipe").catch((e: RpcError) => e.code)}`);
  for (let i = 1; i <= 3; i++) {
    const r = await device.request("fleet.login").catch((e: RpcError) => `${e.code} (retry after ${(e.details as { retryAfterMs: number }).retryAfterMs} ms)`);
    log(`[d42] fleet.login #${i} -> ${r}`);
  }
  log(`[d42] probe -> ${await device.request("probe")}`);
  const bad = await RpcClient.connect(server.address, { ca: server.trust.ca, auth: "stolen" }).catch((e: RpcError) => e);
  log(`[intruder] connect with a bad token -> ${(bad as RpcError).code}`);
  await new Promise((r) => setTimeout(r, 50));
  log(`[server] telemetry received: ${JSON.stringify(readings)}`);
  const rejected = Object.entries(server.stats().rejected).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(", ");
  log(`[server] rejected: ${rejected}`);
  log(`[d42] calls it refused from the server: ${device.stats().rejected.permissionDenied}`);
  await device.close();
  await server.close();
}

if (import.meta.main) await secureIotExample();
