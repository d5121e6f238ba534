// Many clients in one Bun process for BENCH=cluster:
//   _cluster_clients.ts <ours|sio|raw> <n> ; stdin: one JSON line {addresses: [{address, ca}], phases: [count, ...]}
// Connects n clients round-robin over the instances, prints {"ready": n}, then records every
// tick: latency = arrival − the tick's send time (same machine, same clock). After each line
// "report" on stdin it prints {received, latencies (µs, sorted sample), firstAt, lastAt} for the
// ticks since the previous report, and resets; after "count", just {received} so far.

import process from "node:process";
import { createInterface } from "node:readline";
import { listener, RpcClient } from "../mod.ts";

const [mode, nArg] = process.argv.slice(2);
const n = Number(nArg);
const now = () => performance.timeOrigin + performance.now();
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const setup = JSON.parse((await lines.next()).value as string) as { addresses: { address: string; ca?: string }[] };

let received = 0;
let latencies: number[] = [];
let firstAt = 0;
let lastAt = 0;
const onTick = (tick: { seq: number; t: number }) => {
  const at = now();
  if (received === 0) firstAt = at;
  lastAt = at;
  received++;
  latencies.push(Math.round((at - tick.t) * 1000));
};

const closers: (() => Promise<unknown> | void)[] = [];
const BATCH = 50;
for (let i = 0; i < n; i += BATCH) {
  await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, async (_, k) => {
    const a = setup.addresses[(i + k) % setup.addresses.length];
    if (mode === "raw") {
      const q = await import("node:quic" as string);
      const session = await q.connect(a.address, { alpn: "echostream/1", servername: "localhost", ca: [new TextEncoder().encode(a.ca!)], transportParams: { maxIdleTimeout: 32 } });
      session.closed.catch(() => {});
      await session.opened;
      const st = await session.createBidirectionalStream();
      st.writer.writeSync(new Uint8Array([0x46]));
      void (async () => {
        const dec = new TextDecoder();
        let text = "";
        for await (const batch of st) {
          for (const c of batch as Uint8Array[]) {
            text += dec.decode(c, { stream: true });
            let i;
            while ((i = text.indexOf("\n")) >= 0) {
              onTick(JSON.parse(text.slice(0, i)));
              text = text.slice(i + 1);
            }
          }
        }
      })().catch(() => {});
      closers.push(() => session.close().catch(() => {}));
    } else if (mode === "sio") {
      const { io } = await import("socket.io-client");
      const s = io(`http://${a.address}`, { transports: ["websocket"], reconnection: false, forceNew: true });
      s.on("tick", onTick);
      await new Promise<void>((resolve, reject) => {
        s.once("connect", () => resolve());
        s.once("connect_error", reject);
      });
      closers.push(() => void s.close());
    } else {
      const c = await RpcClient.connect(a.address, { ca: a.ca, clockSync: false, reconnect: false, name: `bench-${i + k}` });
      c.handle(listener("tick", (_ctx, tick: { seq: number; t: number }) => onTick(tick)));
      closers.push(() => c.close());
    }
  }));
}
console.log(JSON.stringify({ ready: n }));

for await (const line of { [Symbol.asyncIterator]: () => lines }) {
  if (line === "count") {
    console.log(JSON.stringify({ received }));
    continue;
  }
  if (line !== "report") break;
  latencies.sort((a, b) => a - b);
  // A sorted sample of at most 20,000 keeps the line small; quantiles survive it.
  const step = Math.max(1, Math.floor(latencies.length / 20_000));
  console.log(JSON.stringify({ received, latencies: latencies.filter((_, i) => i % step === 0), firstAt, lastAt }));
  received = 0;
  latencies = [];
}
await Promise.all(closers.map((c) => c()));
process.exit(0);
