// Real-time benchmark, clock part (a child of bench/realtime.ts; Bun or Deno): a server whose
// clock is the system clock + θ + s·(t − t0) (the injected truth), a client on the system clock,
// on loopback or through the impairment relay. Every second the client's estimate of the
// server's clock (`client.clock`) is compared with the truth. Prints one JSON line.
//
//   bun bench/_rt_clock.ts '{"mode":"loopback","seconds":60,"thetaMs":1234.567,"skewPpm":100}'

import { handler, RpcClient, RpcServer } from "../mod.ts";
import { startRelay } from "../src/testing/relay.ts";
import { type Any, config, emit, exit, mean, noop, pct, r3, RUNTIME, sys, VERSION, watchdog } from "./_rt_util.ts";

interface Cfg {
  mode: "loopback" | "relay";
  seconds: number;
  thetaMs: number;
  skewPpm: number;
  intervalMs?: number;
  /** Statistics over the samples from this second on. */
  fromS: number;
  /** Seconds at which the skew error is reported (the last one is the headline). */
  skewAtS: number[];
  relay?: { delayMs: number; jitterMs: number; jitter: "uniform" | "normal" };
  seed?: number;
}

const c = config<Cfg>();
watchdog((c.seconds + 60) * 1000, `clock ${c.mode}`);

const t0 = sys();
const s = c.skewPpm * 1e-6;
/** Server clock − client (system) clock at system time t: the offset the client should find. */
const truth = (t: number) => c.thetaMs + s * (t - t0);

const server = RpcServer.builder()
  .bind("127.0.0.1:0")
  .log(noop)
  .onError(noop)
  .clock(() => {
    const t = sys();
    return t + c.thetaMs + s * (t - t0);
  })
  .clockSync({ intervalMs: c.intervalMs ?? 250 })
  .handler(handler("ka", () => 0))
  .build();
await server.start();
const port = Number(server.address.split(":")[1]);
const relay = c.mode === "relay"
  ? await startRelay({
    target: { host: "127.0.0.1", port },
    seed: c.seed ?? 1,
    toServer: { ...c.relay },
    toClient: { ...c.relay },
  })
  : undefined;
const address = relay ? `127.0.0.1:${relay.address.port}` : server.address;
const client = await RpcClient.connect(address, {
  ca: server.trust.ca,
  serverName: "localhost",
  clockSync: { intervalMs: c.intervalMs ?? 250 },
  onError: noop,
});
const connectedAt = performance.now();
// One small request every 10 s: Bun's QUIC stack closes a connection that has carried no stream
// data for 60 s ("connection timed out due to lack of progress"), whatever datagrams and
// keep-alives flow, and clock sync runs on datagrams.
const keepAlive = setInterval(() => client.request("ka", 0).catch(noop), 10_000);
let closedAtS: number | undefined;
client.closed.then(() => (closedAtS ??= (performance.now() - connectedAt) / 1000));

interface Sample {
  t: number;
  errMs: number;
  uncMs: number;
  skewPpm: number;
  serverErrMs: number;
  serverUncMs: number;
}
const samples: Sample[] = [];
await new Promise<void>((resolve) => {
  let k = 1;
  const tick = () => {
    const st = client.clock.stats();
    const t = sys();
    const peer = server.peers[0];
    const ps = peer?.clock.stats();
    const ts = sys();
    samples.push({
      t: k,
      errMs: st.offsetMs - truth(t),
      uncMs: st.uncertaintyMs,
      skewPpm: st.skewPpm,
      // The server's estimate of the client's clock: client − server = −truth.
      serverErrMs: ps ? ps.offsetMs + truth(ts) : NaN,
      serverUncMs: ps ? ps.uncertaintyMs : NaN,
    });
    if (k >= c.seconds) return resolve();
    k++;
    setTimeout(tick, Math.max(0, connectedAt + k * 1000 - performance.now()));
  };
  setTimeout(tick, 1000);
});

clearInterval(keepAlive);
if (closedAtS !== undefined) {
  emit({ error: `clock ${c.mode}: the connection closed after ${closedAtS.toFixed(1)} s, before the run ended` });
  exit(1);
}
const final = client.clock.stats();
const after = samples.filter((x) => x.t >= c.fromS && Number.isFinite(x.errMs));
const abs = after.map((x) => Math.abs(x.errMs));
const covered = after.filter((x) => Math.abs(x.errMs) <= x.uncMs).length;
const after10 = samples.filter((x) => x.t >= 10 && Number.isFinite(x.errMs));
const covered10 = after10.filter((x) => Math.abs(x.errMs) <= x.uncMs).length;
const sAbs = after.map((x) => Math.abs(x.serverErrMs)).filter(Number.isFinite);
const skewAt: Record<string, number> = {};
for (const at of c.skewAtS) {
  const x = samples.find((y) => y.t === at);
  if (x) skewAt[String(at)] = r3(x.skewPpm - c.skewPpm);
}

let relayInfo: Any;
if (relay) {
  const oneWay = (dir: "toServer" | "toClient") =>
    relay.log.filter((p) => p.direction === dir && p.sentAt?.length).map((p) => p.sentAt![0] - p.receivedAt);
  const up = oneWay("toServer");
  const down = oneWay("toClient");
  const st = relay.stats();
  relayInfo = {
    packets: { toServer: up.length, toClient: down.length },
    oneWayMs: {
      toServer: { mean: r3(mean(up)), p50: r3(pct(up, 0.5)), p99: r3(pct(up, 0.99)) },
      toClient: { mean: r3(mean(down)), p50: r3(pct(down, 0.5)), p99: r3(pct(down, 0.99)) },
    },
    /** (mean to-server − mean to-client)/2: the offset bias any two-way method inherits. */
    asymmetryBiasMs: r3((mean(up) - mean(down)) / 2),
    schedulingErrorMs: {
      p50: r3(st.schedulingErrorMs.p50),
      p99: r3(st.schedulingErrorMs.p99),
      max: r3(st.schedulingErrorMs.max),
    },
  };
}

emit({
  runtime: RUNTIME,
  version: VERSION,
  mode: c.mode,
  params: c,
  samples: samples.length,
  fromS: c.fromS,
  errorMs: {
    p50: r3(pct(abs, 0.5), 4),
    p95: r3(pct(abs, 0.95), 4),
    p99: r3(pct(abs, 0.99), 4),
    max: r3(Math.max(...abs), 4),
    meanSigned: r3(mean(after.map((x) => x.errMs)), 4),
  },
  coveragePct: r3((100 * covered) / Math.max(1, after.length), 1),
  coverageFrom10sPct: r3((100 * covered10) / Math.max(1, after10.length), 1),
  uncertaintyMsMedian: r3(pct(after.map((x) => x.uncMs), 0.5), 4),
  skewErrorPpm: skewAt,
  serverSideErrorMs: { p50: r3(pct(sAbs, 0.5), 4), p95: r3(pct(sAbs, 0.95), 4), p99: r3(pct(sAbs, 0.99), 4) },
  clock: {
    transport: final.transport,
    samples: final.samples,
    accepted: final.accepted,
    rejected: final.rejected,
    steps: final.steps,
    windowSize: final.windowSize,
    minRttMs: r3(final.minRttMs, 4),
    jitterMs: r3(final.jitterMs, 4),
  },
  relay: relayInfo,
  trace: samples.map((x) => [x.t, r3(x.errMs, 4), r3(x.uncMs, 4), r3(x.skewPpm, 3)]),
});

await client.close().catch(noop);
await server.close({ graceMs: 100 }).catch(noop);
await relay?.close();
exit(0);
