// The audio_sync example in one process: a receiver (server) and a sender (client) on loopback,
// optionally through the impairment relay (`--relay`: 10–30 ms one-way delay, uniform, plus 1%
// loss each way), printing aligned playout, the clock offset and jitter-buffer stats.
//
//   bun examples/audio_sync/run.ts [--relay] [--unreliable] [--seconds N]
//   deno run --unstable-net -A examples/audio_sync/run.ts --relay

import { startRelay } from "../../src/testing/mod.ts";
import { type ReceiverReport, startReceiver } from "./receiver.ts";
import { sendAudio } from "./sender.ts";

const args = typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2);
const useRelay = args.includes("--relay");
const unreliable = args.includes("--unreliable");
const seconds = Number(args[args.indexOf("--seconds") + 1]) || 3;

let report!: (r: ReceiverReport) => void;
const done = new Promise<ReceiverReport>((r) => (report = r));
const server = await startReceiver({ onDone: report });
let address = server.address;
const relay = useRelay
  ? await startRelay({
    target: { host: "127.0.0.1", port: Number(server.address.split(":")[1]) },
    seed: 42,
    toServer: { delayMs: 20, jitterMs: 10, loss: 0.01 },
    toClient: { delayMs: 20, jitterMs: 10, loss: 0.01 },
  })
  : undefined;
if (relay) address = `127.0.0.1:${relay.address.port}`;
console.log(
  `[audio_sync] receiver on ${server.address}${
    relay ? `, sender goes through the relay at ${address} (20±10 ms each way, 1% loss)` : ""
  }`,
);
await sendAudio(address, server.trust, { seconds, unreliable });
const r = await done;
if (r.error) console.log(`[audio_sync] the stream failed before its end: ${r.error}`);
console.log(
  `[audio_sync] played ${r.frames} frames, late ${r.stats.late}, lost ${r.stats.lost}, release error p99 ${
    r.releaseErrorP99Ms.toFixed(2)
  } ms,` +
    ` latency ${r.stats.latencyMs.toFixed(1)} ms, transit p50/p99 ${r.stats.transitP50Ms.toFixed(1)}/${
      r.stats.transitP99Ms.toFixed(1)
    } ms, jitter ${r.stats.jitterMs.toFixed(2)} ms`,
);
await server.close();
await relay?.close();
console.log("audio_sync ok");
