// One instance of a cluster, in its own process, for tests/cluster/cluster.test.ts (Bun, Deno, or Node from a bundle):
//   _instance.ts <nats|redis> <bus url> <instance id>
// Prints one JSON line {address, ca, instance}, then serves until stdin closes or it is killed.
// Its handlers let the test drive the server side of the cluster API from any client:
//   join / leave (the caller, or a peer id, into a group), broadcast, group (emit to a group),
//   call (server.peer(id).request), emitTo (server.peer(id).emit), presence, stats, whoami.

import process from "node:process";
import { type Context, handler, RpcServer } from "../../mod.ts";
import { natsCluster } from "../../src/cluster/nats.ts";
import { redisCluster } from "../../src/cluster/redis.ts";

const [kind, url, instanceId] = process.argv.slice(2);
const bus = kind === "nats" ? natsCluster({ servers: url }) : redisCluster({ url });
const server: RpcServer = RpcServer.builder()
  .bind("127.0.0.1:0")
  .name(`instance-${instanceId}`)
  .log(() => {})
  .onError(() => {})
  .authenticate((hello) => ({ user: hello.name }))
  .cluster(bus, { instanceId, heartbeatMs: 250, deadAfterMs: 1000, requestTimeoutMs: 3000 })
  .handler(handler("whoami", (ctx: Context) => ({ id: ctx.peer.id, instance: instanceId })))
  .handler(handler("join", (ctx: Context, a: { group: string; peer?: string }) => server.join(a.peer ?? ctx.peer, a.group)))
  .handler(handler("leave", (ctx: Context, a: { group: string; peer?: string }) => server.leave(a.peer ?? ctx.peer, a.group)))
  .handler(handler("broadcast", async (_ctx, a: { topic: string; payloads: unknown[] }) => {
    const results = [];
    for (const p of a.payloads) results.push(await server.broadcast(a.topic, p));
    return results;
  }))
  .handler(handler("group", (ctx: Context, a: { group: string; topic: string; payload: unknown; exceptMe?: boolean }) =>
    server.emitToGroup(a.group, a.topic, a.payload, { except: a.exceptMe ? [ctx.peer.id] : [] })
  ))
  .handler(handler("call", (_ctx, a: { peer: string; method: string; input?: unknown; timeoutMs?: number }) =>
    server.peer(a.peer).request(a.method, a.input, { timeoutMs: a.timeoutMs })
  ))
  .handler(handler("emitTo", (_ctx, a: { peer: string; topic: string; payload: unknown }) => server.peer(a.peer).emit(a.topic, a.payload)))
  .handler(handler("presence", () => server.cluster.presence()))
  .handler(handler("stats", () => ({ ...server.cluster.stats(), instances: server.cluster.instances().map((i) => i.id) })))
  .build();

await server.start();
console.log(JSON.stringify({ address: server.address, ca: server.trust.ca, instance: server.cluster.instanceId }));
// Served until stdin closes (the test's stop) or a signal.
process.stdin.on("end", () => void server.close({ graceMs: 0 }).then(() => process.exit(0)));
process.stdin.resume();
process.on("SIGTERM", () => void server.close({ graceMs: 0 }).then(() => process.exit(0)));
