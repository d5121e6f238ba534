// Real-time benchmark, jitter-buffer part (a child of bench/realtime.ts, Bun): a server (clock
// shifted by θ) receiving one time-synced stream with the default adaptive latency, a client
// sending 500 B frames at 50 fps stamped with its clock, and the impairment relay between them
// (the same impairment both ways). The relay's log is the ground truth for one-way transit.
// Scenarios: "uniform" U(10,30) ms, "normal" N(20,10) ms, "jump" U(10,30) → U(10,80) → U(10,30).
// Prints one JSON line.

import { type EchoStream, handler, RpcClient, RpcServer, streamHandler } from "../mod.ts";
import { type Impairment, startRelay } from "../src/testing/relay.ts";
import { config, emit, exit, mean, noop, pct, r3, RUNTIME, sleep, sys, VERSION, watchdog } from "./_rt_util.ts";

interface Cfg {
  scenario: "uniform" | "normal" | "jump";
  /** Clock sync runs this long before the stream opens. */
  clockWarmupS: number;
  /** uniform/normal: warm-up, then the measured window. */
  warmupS: number;
  measureS: number;
  /** jump: when the jitter rises and falls back, and the end (stream seconds). */
  jumpAtS: number;
  backAtS: number;
  endS: number;
  reliable?: boolean;
  thetaMs: number;
  seed: number;
}

const c = config<Cfg>();
const total = c.scenario === "jump" ? c.endS : c.warmupS + c.measureS;
watchdog((c.clockWarmupS + total + 60) * 1000, `jitter ${c.scenario}`);

const FPS = 50;
const SIZE = 500;
const U1030: Impairment = { delayMs: 20, jitterMs: 10, jitter: "uniform" };
const U1080: Impairment = { delayMs: 45, jitterMs: 35, jitter: "uniform" };
const N2010: Impairment = { delayMs: 20, jitterMs: 10, jitter: "normal" };
const base = c.scenario === "normal" ? N2010 : U1030;

interface Release {
  at: number; // performance.now()
  errMs: number;
}
const releases: Release[] = [];
let rx: EchoStream | undefined;
let rxDone!: () => void;
const rxFinished = new Promise<void>((r) => (rxDone = r));

const server = RpcServer.builder()
  .bind("127.0.0.1:0")
  .log(noop)
  .onError(noop)
  .clock(() => sys() + c.thetaMs)
  .handler(handler("ka", () => 0))
  .streamHandler(streamHandler("jb", async (_ctx, s: EchoStream) => {
    rx = s;
    try {
      for (let f = await s.recvAligned(); f; f = await s.recvAligned()) {
        releases.push({ at: performance.now(), errMs: s.now() - f.alignedTime });
      }
    } finally {
      rxDone();
    }
  }))
  .build();
await server.start();
const relay = await startRelay({
  target: { host: "127.0.0.1", port: Number(server.address.split(":")[1]) },
  seed: c.seed,
  toServer: base,
  toClient: base,
});
const client = await RpcClient.connect(`127.0.0.1:${relay.address.port}`, {
  ca: server.trust.ca,
  serverName: "localhost",
  onError: noop,
});
// One small request every 10 s: Bun's QUIC stack closes a connection that has carried no stream
// data for 60 s ("connection timed out due to lack of progress"), and the frames go as datagrams.
const keepAlive = setInterval(() => client.request("ka", 0).catch(noop), 10_000);
const connectedAt = performance.now();
let closedAtS: number | undefined;
client.closed.then(() => (closedAtS ??= (performance.now() - connectedAt) / 1000));
await client.clock.ready;
while (!server.peers[0]) await sleep(10);
await server.peers[0].clock.ready;
await sleep(c.clockWarmupS * 1000);

let builder = client.createStream("jb").withTimeSync();
if (!c.reliable) builder = builder.unreliable();
const tx = await builder.build();

// Samples of the receiver's state every 250 ms (100 ms in the jump run, which times D's moves).
interface Sample {
  t: number;
  D: number;
  target: number;
  transitP99: number;
  received: number;
  late: number;
  lost: number;
  clockErrMs: number;
}
const samples: Sample[] = [];
const t0 = performance.now();
const secs = () => (performance.now() - t0) / 1000;
const sampler = setInterval(() => {
  if (!rx) return;
  const st = rx.stats();
  const peer = server.peers[0];
  // The server's estimate of the client's clock (client − server); the truth is −θ.
  const clockErrMs = peer ? peer.clock.offsetMs + c.thetaMs : NaN;
  samples.push({
    t: secs(),
    D: st.latencyMs,
    target: st.targetLatencyMs,
    transitP99: st.transitP99Ms,
    received: st.received,
    late: st.late,
    lost: st.lost,
    clockErrMs,
  });
}, c.scenario === "jump" ? 100 : 250);

// 50 fps, stamped with the client's clock at sending time.
let sent = 0;
let sendErrors = 0;
const payload = new Uint8Array(SIZE).fill(7);
const switches: { at: number; to: string }[] = [];
for (let k = 0; secs() < total; k++) {
  const due = t0 + (k * 1000) / FPS;
  const wait = due - performance.now();
  if (wait > 0) await sleep(wait);
  if (c.scenario === "jump") {
    const t = secs();
    if (switches.length === 0 && t >= c.jumpAtS) {
      relay.setImpairment("toServer", U1080);
      relay.setImpairment("toClient", U1080);
      switches.push({ at: t, to: "U(10,80)" });
    } else if (switches.length === 1 && t >= c.backAtS) {
      relay.setImpairment("toServer", U1030);
      relay.setImpairment("toClient", U1030);
      switches.push({ at: t, to: "U(10,30)" });
    }
  }
  tx.sendWithTimestamp(payload, tx.now()).then(() => sent++, () => sendErrors++);
}
const endAt = performance.now();
await sleep(500);
clearInterval(sampler);
const finalStats = rx?.stats();
await tx.end().catch(noop);
await Promise.race([rxFinished, sleep(3000)]);

clearInterval(keepAlive);
if (closedAtS !== undefined) {
  emit({
    error: `jitter ${c.scenario}: the connection closed ${
      closedAtS.toFixed(1)
    } s after connecting, before the run ended`,
  });
  exit(1);
}

// Ground truth: the relay's actual forwarding delay of the data packets (≥ 400 B; the clock's
// PING/PONG and QUIC acknowledgements are far smaller).
const data = relay.log.filter((p) => p.direction === "toServer" && p.bytes >= 400 && p.sentAt?.length);
const transitIn = (a: number, b: number) =>
  data.filter((p) => p.receivedAt >= t0 + a * 1000 && p.receivedAt < t0 + b * 1000).map((p) =>
    p.sentAt![0] - p.receivedAt
  );
const sampleAt = (t: number) => samples.find((x) => x.t >= t) ?? samples[samples.length - 1];
const window = (a: number, b: number) => {
  const s0 = sampleAt(a);
  const s1 = sampleAt(b);
  const received = s1.received - s0.received;
  const late = s1.late - s0.late;
  const lost = s1.lost - s0.lost;
  const Ds = samples.filter((x) => x.t >= a && x.t < b).map((x) => x.D);
  const rel = releases.filter((x) => x.at >= t0 + a * 1000 && x.at < t0 + b * 1000).map((x) => x.errMs);
  const tr = transitIn(a, b);
  return {
    fromS: a,
    toS: b,
    received,
    late,
    lost,
    latePct: r3((100 * late) / Math.max(1, received)),
    meanDMs: r3(mean(Ds)),
    maxDMs: r3(Math.max(...Ds)),
    transitP50Ms: r3(pct(tr, 0.5)),
    transitP99Ms: r3(pct(tr, 0.99)),
    releaseErrorP50Ms: r3(pct(rel, 0.5)),
    releaseErrorP99Ms: r3(pct(rel, 0.99)),
    releaseErrorMaxMs: r3(Math.max(...rel)),
    earlyReleases: rel.filter((x) => x < 0).length,
    clockErrMeanMs: r3(mean(samples.filter((x) => x.t >= a && x.t < b).map((x) => x.clockErrMs))),
  };
};

const out: Record<string, unknown> = {
  runtime: RUNTIME,
  version: VERSION,
  scenario: c.scenario,
  mode: c.reliable ? "reliable" : "datagram",
  params: c,
  sent,
  sendErrors,
  sendSeconds: r3((endAt - t0) / 1000),
  relaySchedulingErrorMs: (() => {
    const st = relay.stats().schedulingErrorMs;
    return { p50: r3(st.p50), p99: r3(st.p99), max: r3(st.max) };
  })(),
  final: finalStats && {
    received: finalStats.received,
    delivered: finalStats.delivered,
    late: finalStats.late,
    lost: finalStats.lost,
    duplicates: finalStats.duplicates,
    reordered: finalStats.reordered,
    latencyMs: r3(finalStats.latencyMs),
    targetLatencyMs: r3(finalStats.targetLatencyMs),
    transitP99Ms: r3(finalStats.transitP99Ms),
    jitterMs: r3(finalStats.jitterMs),
  },
  dataPackets: data.length,
};

if (c.scenario === "jump") {
  const pre = samples.filter((x) => x.t >= c.jumpAtS - 10 && x.t < c.jumpAtS).map((x) => x.D);
  const preD = mean(pre);
  const newP99 = pct(transitIn(c.jumpAtS, c.backAtS), 0.99);
  const up = samples.find((x) => x.t >= c.jumpAtS && x.D >= newP99);
  const down = samples.find((x) => x.t >= c.backAtS && x.D <= preD + 5);
  const downStays = samples.findIndex((x, i) => x.t >= c.backAtS && samples.slice(i).every((y) => y.D <= preD + 5));
  out.jump = {
    switches,
    preDMs: r3(preD),
    newTransitP99Ms: r3(newP99),
    upS: up ? r3(up.t - c.jumpAtS, 2) : null,
    DAtEndOfJumpMs: r3(sampleAt(c.backAtS - 0.01).D),
    downS: down ? r3(down.t - c.backAtS, 2) : null,
    downStaysS: downStays >= 0 ? r3(samples[downStays].t - c.backAtS, 2) : null,
    DAtEndMs: r3(samples[samples.length - 1].D),
    before: window(Math.max(0, c.jumpAtS - 20), c.jumpAtS),
    during: window(c.jumpAtS, c.backAtS),
    after: window(c.backAtS, c.endS),
  };
  out.trace = samples.filter((_, i) => i % 5 === 0).map((
    x,
  ) => [r3(x.t, 2), r3(x.D, 2), r3(x.target, 2), r3(x.transitP99, 2)]);
} else {
  out.window = window(c.warmupS, c.warmupS + c.measureS);
  out.trace = samples.filter((_, i) => i % 4 === 0).map((
    x,
  ) => [r3(x.t, 2), r3(x.D, 2), r3(x.target, 2), r3(x.transitP99, 2)]);
}
emit(out);

await client.close().catch(noop);
await server.close({ graceMs: 100 }).catch(noop);
await relay.close();
exit(0);
