// One server instance for BENCH=cluster (bench/cluster.ts), in its own Bun process:
//   _cluster_instance.ts <nats|redis|none|sio|raw> <bus url> <id>
// ours (nats, redis, none = no bus): an RpcServer; sio: socket.io on HTTP with the Redis adapter;
// raw: Bun's node:quic used directly, no RPC and no bus (the ceiling).
// Prints one JSON line {address} first. Control, from the bench driver:
//   fanout {count, intervalMs}: broadcasts `count` ticks {seq, t} (t: send time, ms since the
//   epoch, sub-millisecond), one every intervalMs (0: back to back), and answers when done;
//   cpu: this process's CPU time so far (µs) and the wall clock (ms), for CPU per instance.

// deno-lint-ignore-file no-explicit-any
import process from "node:process";
import { handler, RpcServer } from "../mod.ts";
import { natsCluster } from "../src/cluster/nats.ts";
import { redisCluster } from "../src/cluster/redis.ts";

const [mode, url, id] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const cpu = () => {
  const u = process.cpuUsage();
  return { cpuUs: u.user + u.system, wallMs: performance.now() };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function fanout(emit: (tick: { seq: number; t: number }) => Promise<unknown> | void, count: number, intervalMs: number): Promise<number> {
  const start = performance.now();
  for (let seq = 0; seq < count; seq++) {
    if (intervalMs > 0) {
      const due = start + seq * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
    }
    await emit({ seq, t: now() });
  }
  return performance.now() - start;
}

if (mode === "raw") {
  // The ceiling: Bun's node:quic used directly. Each client opens one bidirectional stream and
  // sends one byte; a tick is one JSON line written to every such stream. Controlled through
  // stdin lines ("fanout <count> <intervalMs>", "cpu"), answered with one JSON line each.
  const q = await import("node:quic" as string);
  const { createPrivateKey } = await import("node:crypto");
  const { createDevCertificates } = await import("../src/security/dev_cert.ts");
  const { createInterface } = await import("node:readline");
  const certs = await createDevCertificates();
  const te = new TextEncoder();
  const { bunDrainWrite } = await import("./_quic_raw.ts");
  // Per stream: its writer's backlog. A writer that refuses a write (full) is drained in order.
  const writers = new Map<any, { queue: Uint8Array[]; draining: boolean }>();
  const write = (w: any, bytes: Uint8Array) => {
    const sub = writers.get(w);
    if (!sub) return;
    if (!sub.draining && w.writeSync(bytes)) return;
    sub.queue.push(bytes);
    if (sub.draining) return;
    sub.draining = true;
    void (async () => {
      while (sub.queue.length) await bunDrainWrite(w, sub.queue.shift()!).catch(() => void (sub.queue.length = 0));
      sub.draining = false;
    })();
  };
  const ep = await q.listen((session: any) => {
    session.closed.catch(() => {});
    session.onstream = async (st: any) => {
      st.closed?.catch?.(() => {});
      const w = st.writer;
      writers.set(w, { queue: [], draining: false });
      try {
        for await (const _ of st) { /* the subscribe byte, then nothing until FIN */ }
      } catch { /* gone */ }
      writers.delete(w);
    };
  }, {
    alpn: ["echostream/1"],
    sni: { "*": { keys: [createPrivateKey(certs.key)], certs: [te.encode(certs.cert)] } },
    endpoint: { address: "127.0.0.1:0" },
    transportParams: { initialMaxStreamsBidi: 16, maxIdleTimeout: 32 },
  });
  console.log(JSON.stringify({ address: `127.0.0.1:${ep.address.port}`, ca: certs.ca }));
  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd, a, b] = line.split(" ");
    if (cmd === "cpu") console.log(JSON.stringify(cpu()));
    else if (cmd === "fanout") {
      const ms = await fanout((tick) => {
        const bytes = te.encode(JSON.stringify(tick) + "\n");
        for (const w of writers.keys()) write(w, bytes);
      }, Number(a), Number(b));
      console.log(JSON.stringify({ ms }));
    }
  }
  process.exit(0);
} else if (mode === "sio") {
  const { createServer } = await import("node:http");
  const { Server } = await import("socket.io");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const { Redis } = await import("ioredis");
  const pub = new Redis(url);
  const sub = pub.duplicate();
  const http = createServer();
  const io = new Server(http, { adapter: createAdapter(pub, sub), transports: ["websocket"] });
  io.on("connection", (socket) => {
    socket.on("fanout", async (a: { count: number; intervalMs: number }, ack: (ms: number) => void) => ack(await fanout((tick) => void io.emit("tick", tick), a.count, a.intervalMs)));
    socket.on("cpu", (ack: (c: ReturnType<typeof cpu>) => void) => ack(cpu()));
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const port = (http.address() as { port: number }).port;
  console.log(JSON.stringify({ address: `127.0.0.1:${port}` }));
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
} else {
  const builder = RpcServer.builder()
    .bind("127.0.0.1:0")
    .log(() => {})
    .onError(() => {})
    .clockSync(false)
    .limits({ maxConnectionsPerAddress: 2000 });
  if (mode === "nats") builder.cluster(natsCluster({ servers: url }), { instanceId: id });
  if (mode === "redis") builder.cluster(redisCluster({ url }), { instanceId: id });
  const server: RpcServer = builder
    .handler(handler("fanout", (_ctx, a: { count: number; intervalMs: number }) => fanout((tick) => server.broadcast("tick", tick), a.count, a.intervalMs)))
    .handler(handler("cpu", () => ({ ...cpu(), slowConsumers: server.stats().rejected.slowConsumer })))
    .build();
  await server.start();
  console.log(JSON.stringify({ address: server.address, ca: server.trust.ca }));
  process.stdin.on("end", () => void server.close({ graceMs: 0 }).then(() => process.exit(0)));
  process.stdin.resume();
}
