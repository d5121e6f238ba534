// Scale-out: two server instances behind one NATS server (or Redis), a client on each. A
// broadcast from one instance reaches the other's client; a chat room spans both; one instance
// calls a client connected to the other by its id; presence lists everyone, wherever they are.
// Needs Debian's nats-server or redis-server (apt-get install nats-server redis-server); this
// script starts a throwaway one on a free loopback port.
//
//   bun examples/cluster/main.ts [nats|redis]
//   deno run -A --unstable-net examples/cluster/main.ts [nats|redis]

import process from "node:process";
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { connect, createServer } from "node:net";
import { type ClusterAdapter, type Context, handler, listener, RpcClient, RpcServer } from "../../mod.ts";
import { natsCluster } from "../../src/cluster/nats.ts";
import { redisCluster } from "../../src/cluster/redis.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where a Debian binary is (nats-server lives in /usr/sbin, not always on PATH). */
function which(bin: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/local/bin"]) {
    if (!dir) continue;
    try {
      accessSync(`${dir}/${bin}`, constants.X_OK);
      return `${dir}/${bin}`;
    } catch { /* not here */ }
  }
  return undefined;
}

/** A throwaway nats-server or redis-server on a free loopback port, and the adapter for it. */
async function startBus(kind: "nats" | "redis"): Promise<{ adapter: () => ClusterAdapter; stop: () => void }> {
  const bin = which(kind === "nats" ? "nats-server" : "redis-server");
  if (!bin) throw new Error(`${kind === "nats" ? "nats-server" : "redis-server"} is not installed: apt-get install nats-server redis-server`);
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const args = kind === "nats" ? ["-a", "127.0.0.1", "-p", String(port)] : ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const child = spawn(bin, args, { stdio: "ignore" });
  // Ready once it accepts a TCP connection.
  for (let tries = 0; ; tries++) {
    const up = await new Promise<boolean>((resolve) => {
      const sock = connect(port, "127.0.0.1", () => (sock.end(), resolve(true)));
      sock.once("error", () => resolve(false));
    });
    if (up) break;
    if (tries > 250) throw new Error(`${bin} did not start on port ${port}`);
    await sleep(20);
  }
  const url = `${kind}://127.0.0.1:${port}`;
  return { adapter: () => (kind === "nats" ? natsCluster({ servers: url }) : redisCluster({ url })), stop: () => void child.kill() };
}

/** Runs the example; resolves with what each client saw (and prints it through `log`). */
export async function clusterExample(kind: "nats" | "redis" = "nats", log: (line: string) => void = console.log) {
  const bus = await startBus(kind);
  const instances: RpcServer[] = [];
  const clients: RpcClient[] = [];
  const seen: Record<string, string[]> = { alice: [], bob: [] };
  try {
    for (const name of ["east", "west"]) {
      const server: RpcServer = RpcServer.builder()
        .bind("127.0.0.1:0")
        .name(name)
        .log(() => {})
        .cluster(bus.adapter(), { namespace: "example", heartbeatMs: 500 })
        .handler(handler("room.join", (ctx: Context, room: string) => server.join(ctx.peer, room)))
        .handler(handler("room.say", (ctx: Context, m: { room: string; text: string }) =>
          server.emitToGroup(m.room, "room.message", `${ctx.peer.name}: ${m.text}`)
        ))
        .build();
      await server.start();
      instances.push(server);
    }
    for (const [i, name] of ["alice", "bob"].entries()) {
      const c = await RpcClient.connect(instances[i].address, { ca: instances[i].trust.ca, name });
      for (const topic of ["news", "room.message"]) c.handle(listener(topic, (_ctx, text: string) => void seen[name].push(`${topic}: ${text}`)));
      c.handle(handler("whereami", () => `${name}, connected to ${instances[i].cluster.instanceId.slice(0, 6)}…`));
      clients.push(c);
    }
    const [east, west] = instances;
    while (east.cluster.presence().length < 2 || west.cluster.presence().length < 2) await sleep(20);
    log(`presence seen from east: ${east.cluster.presence().map((p) => `${p.name}@${p.instance === east.cluster.instanceId ? "east" : "west"}`).join(", ")}`);

    const b = await east.broadcast("news", "hello from east");
    log(`east.broadcast("news"): ${b.delivered} local delivery, published to the other instances: ${b.published}`);
    await clients[0].request("room.join", "lobby");
    await clients[1].request("room.join", "lobby");
    await sleep(100); // membership reaches the other instance
    await clients[1].request("room.say", { room: "lobby", text: "hi lobby" });
    const bob = west.peers[0].id;
    log(`east.peer(<bob's id>).request("whereami") -> ${await east.peer(bob).request("whereami")}`);
    await sleep(200);
    for (const [name, lines] of Object.entries(seen)) log(`${name} received: ${lines.join(" | ")}`);
    log(`east's cluster stats: ${JSON.stringify(east.cluster.stats())}`);
    return seen;
  } finally {
    for (const c of clients) await c.close();
    for (const s of instances) await s.close({ graceMs: 0 });
    bus.stop();
  }
}

if (import.meta.main) {
  const kind = process.argv[2] === "redis" ? "redis" : "nats";
  await clusterExample(kind);
  process.exit(0);
}
