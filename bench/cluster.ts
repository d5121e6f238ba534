// BENCH=cluster: broadcast fan-out to CLIENTS (default "1000,100": each count a full run) clients over 1 and 3 server
// instances, each instance and each half of the clients in its own Bun process, through Bun's
// node:quic used directly (a JSON line written to one stream per client, no RPC: the floor for
// latency at low load; one write per message makes it no ceiling for throughput),
// EchoStream with no bus (one process, no bus hop), with the NATS adapter, with the
// Redis adapter, and socket.io 4 with its Redis adapter (WebSocket transport) doing the same
// work. Real nats-server and redis-server on loopback (tests/support/buses.ts). Two phases per
// setup: latency (100 broadcasts paced at 50/s; latency = arrival − send time, same clock) and
// throughput (200 broadcasts back to back; deliveries per second until the last arrival), with
// the CPU each instance used in the throughput phase. Writes bench/results/cluster.{json,md}.

import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { RpcClient } from "../mod.ts";
import { startNats, startRedis } from "../tests/support/buses.ts";
import { spawnServer, tool } from "../tests/support/process.ts";

const ROOT = join(import.meta.dir, "..");
const INSTANCE = join(import.meta.dir, "_cluster_instance.ts");
const CLIENTS_SCRIPT = join(import.meta.dir, "_cluster_clients.ts");
/** Client counts, one full run each: 1,000 (the figure) and 100 (a machine not saturated by clients). */
const CLIENT_COUNTS = (process.env.CLIENTS ?? "1000,100").split(",").map(Number);
const CLIENT_PROCESSES = 2;
const PACED = { count: 100, intervalMs: 20 };
const BURST = { count: 200, intervalMs: 0 };

type Mode = "raw" | "none" | "nats" | "redis" | "sio";
interface Setup {
  label: string;
  mode: Mode;
  instances: number;
}
const SETUPS: Setup[] = [
  { label: "raw node:quic, one write per message, no RPC, no bus (a latency floor at low load, not a throughput ceiling)", mode: "raw", instances: 1 },
  { label: "EchoStream, no bus", mode: "none", instances: 1 },
  { label: "EchoStream + NATS", mode: "nats", instances: 1 },
  { label: "EchoStream + NATS", mode: "nats", instances: 3 },
  { label: "EchoStream + Redis", mode: "redis", instances: 1 },
  { label: "EchoStream + Redis", mode: "redis", instances: 3 },
  { label: "socket.io + Redis adapter", mode: "sio", instances: 1 },
  { label: "socket.io + Redis adapter", mode: "sio", instances: 3 },
];

interface Report {
  received: number;
  latencies: number[];
  firstAt: number;
  lastAt: number;
}

/**
 * Line-by-line talk with a child process: `next` reads its next stdout line (within
 * `timeoutMs`), `ask` writes a line to its stdin first.
 */
function childLines(proc: { stdin: { write(s: string): unknown; flush(): unknown }; stdout: ReadableStream<Uint8Array> }, what: string) {
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const next = async (timeoutMs = 30_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    while (!buf.includes("\n")) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: no answer in time`);
      const r = await Promise.race([reader.read(), new Promise<{ done: true; value: undefined }>((res) => setTimeout(() => res({ done: true, value: undefined }), left))]);
      if (r.done) throw new Error(`${what} ended`);
      buf += decoder.decode(r.value, { stream: true });
    }
    const i = buf.indexOf("\n");
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    return line;
  };
  const ask = (line: string, timeoutMs?: number): Promise<string> => {
    proc.stdin.write(line + "\n");
    proc.stdin.flush();
    return next(timeoutMs);
  };
  return { next, ask, release: () => reader.releaseLock() };
}

/** A client process: connects, then answers "count" and "report" lines. */
async function startClients(mode: Mode, n: number, addresses: { address: string; ca?: string }[]) {
  const proc = Bun.spawn([tool("bun"), CLIENTS_SCRIPT, mode === "sio" || mode === "raw" ? mode : "ours", String(n)], { cwd: ROOT, stdin: "pipe", stdout: "pipe", stderr: "ignore" });
  const lines = childLines(proc, "client process");
  await lines.ask(JSON.stringify({ addresses }), 120_000); // answered with {"ready": n}
  return {
    count: async (): Promise<number> => JSON.parse(await lines.ask("count")).received,
    report: async (): Promise<Report> => JSON.parse(await lines.ask("report")),
    stop: async () => {
      proc.stdin.end();
      const t = setTimeout(() => proc.kill(), 5000);
      await proc.exited;
      clearTimeout(t);
    },
  };
}

/** The driver's control connection to instance 0: fanout and CPU readings. */
async function control(mode: Mode, addresses: { address: string; ca?: string }[], procs: ReturnType<typeof Bun.spawn>[]) {
  if (mode === "raw") {
    // stdin/stdout lines of the one raw instance process.
    const lines = childLines(procs[0] as Parameters<typeof childLines>[0], "raw instance");
    const ask = async (line: string, timeoutMs?: number) => JSON.parse(await lines.ask(line, timeoutMs));
    return {
      fanout: async (a: { count: number; intervalMs: number }) => (await ask(`fanout ${a.count} ${a.intervalMs}`, 120_000)).ms as number,
      cpu: async () => [await ask("cpu")] as { cpuUs: number; wallMs: number; slowConsumers?: number }[],
      close: () => lines.release(),
    };
  }
  if (mode === "sio") {
    const { io } = await import("socket.io-client");
    const sockets = await Promise.all(addresses.map(async (a) => {
      const s = io(`http://${a.address}`, { transports: ["websocket"], reconnection: false, forceNew: true });
      await new Promise<void>((r) => s.once("connect", () => r()));
      return s;
    }));
    return {
      fanout: (a: { count: number; intervalMs: number }) => new Promise<number>((r) => sockets[0].emit("fanout", a, r)),
      cpu: () => Promise.all(sockets.map((s) => new Promise<{ cpuUs: number; wallMs: number; slowConsumers?: number }>((r) => s.emit("cpu", r)))),
      close: () => sockets.forEach((s) => s.close()),
    };
  }
  const clients = await Promise.all(addresses.map((a) => RpcClient.connect(a.address, { ca: a.ca, clockSync: false, reconnect: false })));
  return {
    fanout: (a: { count: number; intervalMs: number }) => clients[0].request<number>("fanout", a, { timeoutMs: 120_000 }),
    cpu: () => Promise.all(clients.map((c) => c.request<{ cpuUs: number; wallMs: number }>("cpu"))),
    close: () => Promise.all(clients.map((c) => c.close())),
  };
}

/** `nats-server v2.9.10`, `Redis server v=7.0.15`: what the binary says of itself. */
const version = (bin: string) => {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8", env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin` } });
  return (r.stdout || bin).trim().split(" sha=")[0];
};
/** Waits until the clients got `expected` ticks, or their count stopped growing for 3 s. */
async function settle(procs: { count: () => Promise<number> }[], expected: number): Promise<void> {
  let last = -1;
  let since = performance.now();
  while (true) {
    const n = (await Promise.all(procs.map((p) => p.count()))).reduce((a, b) => a + b, 0);
    if (n >= expected) return;
    if (n !== last) [last, since] = [n, performance.now()];
    else if (performance.now() - since > 3000) return;
    await Bun.sleep(100);
  }
}
const q = (sorted: number[], p: number) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN;
const merge = (rs: Report[]) => ({
  received: rs.reduce((s, r) => s + r.received, 0),
  latencies: rs.flatMap((r) => r.latencies).sort((a, b) => a - b),
  lastAt: Math.max(...rs.map((r) => r.lastAt)),
});

console.log(`cluster benchmark: broadcast to ${CLIENT_COUNTS.join(" and ")} clients over 1 and 3 instances`);
const nats = await startNats();
const redis = await startRedis();
const rows: Record<string, unknown>[] = [];
for (const CLIENTS of CLIENT_COUNTS) for (const setup of SETUPS) {
  const url = setup.mode === "nats" ? nats.url : redis.url;
  const instances = await Promise.all(Array.from({ length: setup.instances }, (_, i) => spawnServer<{ address: string; ca?: string }>([tool("bun"), INSTANCE, setup.mode, url, `i${i}`], 30_000)));
  const addresses = instances.map((i) => i.info);
  let clientProcs: Awaited<ReturnType<typeof startClients>>[] = [];
  let ctl: Awaited<ReturnType<typeof control>> | undefined;
  try {
    clientProcs = await Promise.all(Array.from({ length: CLIENT_PROCESSES }, () => startClients(setup.mode, CLIENTS / CLIENT_PROCESSES, addresses)));
    ctl = await control(setup.mode, addresses, instances.map((i) => i.proc));
    await Bun.sleep(setup.instances > 1 ? 1500 : 300); // presence settles; nothing is measured yet
    await Promise.all(clientProcs.map((c) => c.report())); // reset
    // Latency: paced.
    await ctl.fanout(PACED);
    await settle(clientProcs, CLIENTS * PACED.count);
    const paced = merge(await Promise.all(clientProcs.map((c) => c.report())));
    // Throughput: back to back, with CPU per instance.
    const cpu0 = await ctl.cpu();
    const start = performance.timeOrigin + performance.now();
    await ctl.fanout(BURST);
    await settle(clientProcs, CLIENTS * BURST.count);
    const cpu1 = await ctl.cpu();
    const burst = merge(await Promise.all(clientProcs.map((c) => c.report())));
    const seconds = (burst.lastAt - start) / 1000;
    // CPU over the burst itself (from its start to the last arrival), not the settling wait.
    const slowConsumers = cpu1.reduce((n, c) => n + (c.slowConsumers ?? 0), 0);
    const cpuPct = cpu1.map((c, i) => Math.round((100 * (c.cpuUs - cpu0[i].cpuUs)) / 1000 / (burst.lastAt - start)));
    const row = {
      setup: setup.label,
      mode: setup.mode,
      instances: setup.instances,
      clients: CLIENTS,
      pacedDelivered: paced.received / (CLIENTS * PACED.count),
      p50Ms: q(paced.latencies, 0.5) / 1000,
      p99Ms: q(paced.latencies, 0.99) / 1000,
      burstDelivered: burst.received / (CLIENTS * BURST.count),
      deliveriesPerSec: Math.round(burst.received / seconds),
      cpuPctPerInstance: cpuPct,
      slowConsumers,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  } catch (e) {
    rows.push({ setup: setup.label, mode: setup.mode, instances: setup.instances, clients: CLIENTS, error: String(e).slice(0, 300) });
    console.log(`${setup.label} × ${setup.instances}: failed: ${e}`);
  } finally {
    await ctl?.close();
    await Promise.all(clientProcs.map((c) => c.stop()));
    await Promise.all(instances.map((i) => i.stop()));
  }
}
await nats.stop();
await redis.stop();

const sio = (clients: number, n: number) => rows.find((r) => r.mode === "sio" && r.clients === clients && r.instances === n && !r.error) as { p50Ms: number; p99Ms: number; deliveriesPerSec: number } | undefined;
const fmt = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "–");
const table = [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}, Bun ${Bun.version}; every instance and each half of the clients in its own process, all on this machine (so every process shares 2 cores: read the ratios, not the absolute numbers); ${version("nats-server")} and ${version("redis-server")} on loopback. Broadcasts sent from instance 0. Latency: ${PACED.count} broadcasts paced at ${1000 / PACED.intervalMs}/s, arrival − send time, all deliveries. Throughput: ${BURST.count} broadcasts back to back, deliveries per second until the last arrived; CPU: % of one core per instance, from the burst's start to its last arrival. Ratios: ÷ socket.io with the same clients and instances (latency: lower is better; deliveries/s: higher is better). Slow-consumer disconnects: clients an EchoStream instance cut off for not reading (maxOutgoingBytes).`,
  "",
  "| clients | setup | instances | delivered (paced / burst) | latency p50 ms | p99 ms | deliveries/s | CPU % per instance | slow-consumer disconnects | p50 vs socket.io | deliveries/s vs socket.io |",
  "|---|---|---|---|---|---|---|---|---|---|---|",
  ...rows.map((r) => {
    if (r.error) return `| ${r.clients} | ${r.setup} | ${r.instances} | failed: ${r.error} | | | | | | | |`;
    const x = r as { clients: number; setup: string; instances: number; pacedDelivered: number; burstDelivered: number; p50Ms: number; p99Ms: number; deliveriesPerSec: number; cpuPctPerInstance: number[]; mode: string; slowConsumers: number };
    const s = sio(x.clients, x.instances);
    const vsLat = s && x.mode !== "sio" ? `${fmt(x.p50Ms / s.p50Ms, 2)}×` : "–";
    const vsTput = s && x.mode !== "sio" ? `${fmt(x.deliveriesPerSec / s.deliveriesPerSec, 2)}×` : "–";
    const slow = x.mode === "sio" || x.mode === "raw" ? "–" : String(x.slowConsumers);
    return `| ${x.clients.toLocaleString("en-US")} | ${x.setup} | ${x.instances} | ${(100 * x.pacedDelivered).toFixed(1)}% / ${(100 * x.burstDelivered).toFixed(1)}% | ${fmt(x.p50Ms)} | ${fmt(x.p99Ms)} | ${x.deliveriesPerSec.toLocaleString("en-US")} | ${x.cpuPctPerInstance.join(" / ")} | ${slow} | ${vsLat} | ${vsTput} |`;
  }),
].join("\n");
console.log(table);
writeFileSync(join(ROOT, "bench/results/cluster.json"), JSON.stringify({ date: new Date().toISOString(), clientCounts: CLIENT_COUNTS, paced: PACED, burst: BURST, rows }, null, 2) + "\n");
writeFileSync(join(ROOT, "bench/results/cluster.md"), table + "\n");
