// Soak client (child process): runs the traffic mix against the soak server for `durationMs`,
// checking every answer as it comes, then prints one {"event":"result"} line for the harness.
//   requests without a deadline ("echo": payload echoed, seq checked), requests with one ("work":
//   the handler sleeps ms; past the deadline it must fail DEADLINE_EXCEEDED, never answer),
//   numbered events both ways, byte-pattern echo streams, time-synced datagram echo streams.
//
//   _soak_client.ts '{"addr":"10.66.1.1:4433","caFile":"/tmp/x/ca.pem","id":3,"durationMs":15000}'

import { readFileSync } from "node:fs";
import process from "node:process";
import { listener, RpcClient } from "../../mod.ts";
import { RpcError } from "../../src/protocol/rpc_error.ts";
import { seededRandom } from "../../src/testing/random.ts";
import { args, clientCounts, emit, pattern, patternMismatches, sleep } from "./_soak_common.ts";
import { runMedia } from "./_soak_media.ts";

const cfg = JSON.parse(args()[0]) as { addr: string; caFile: string; id: number; durationMs: number; seed?: number; pace?: number; parts?: string[]; mediaFps?: number };
// Pauses between operations are multiplied by `pace` (1 = the rates below; 50 clients on two
// cores need a slower pace, or the soak measures CPU starvation instead of the library).
const PACE = cfg.pace ?? 1;
const id = cfg.id;
const c = `c${id}`;
const rand = seededRandom((cfg.seed ?? 1) * 7919 + id);
const between = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const ms2 = (x: number) => Math.round(x * 100) / 100;
const now = () => performance.now();

const violations: string[] = [];
const violate = (m: string) => violations.length < 50 && violations.push(`${c}: ${m}`);
const codes: Record<string, number> = {};
const failed = (kind: string, e: unknown) => {
  const code = e instanceof RpcError ? e.code : `non-RpcError ${String(e)}`;
  codes[`${kind}:${code}`] = (codes[`${kind}:${code}`] ?? 0) + 1;
  return code;
};

const t0 = now();
const client = await RpcClient.connect(cfg.addr, { ca: readFileSync(cfg.caFile, "utf8"), serverName: "localhost", name: c, timeoutMs: 15_000 });
// Ticks from the server: numbered per connection, so exactly once and in order means s = 0,1,2…
// (registered before "start" turns the ticker on).
const ticks = { received: 0, outOfOrder: 0, latencyMs: [] as number[] };
client.handle(listener("tick", (_ctx, t: { s: number; t: number }) => {
  if (t.s !== ticks.received) ticks.outOfOrder++;
  ticks.received++;
  ticks.latencyMs.push(ms2(client.clock.now() - t.t)); // server's clock (the reference) now − then
}));
await client.request("start", null, { timeoutMs: 15_000 });
const connectMs = now() - t0;
const endAt = now() + cfg.durationMs;
const running = () => now() < endAt && client.connected;

const echo = { sent: 0, ok: 0, latencyMs: [] as number[] };
async function echoLoop() {
  for (let s = 0; running(); s++) {
    const p = crypto.getRandomValues(new Uint8Array(between(0, 1024)));
    echo.sent++;
    const t = now();
    try {
      const r = await client.request<{ c: string; s: number; p?: Uint8Array }>("echo", { c, s, p });
      echo.latencyMs.push(ms2(now() - t));
      const back = r.p ?? new Uint8Array(0);
      if (r.c !== c || r.s !== s || back.length !== p.length || back.some((b, i) => b !== p[i])) violate(`echo ${s}: wrong reply ${JSON.stringify({ c: r.c, s: r.s })}`);
      else echo.ok++;
    } catch (e) {
      violate(`echo ${s} (no deadline) failed: ${failed("echo", e)} ${(e as Error).message}`);
    }
    await sleep(between(50, 150) * PACE);
  }
}

const TIMEOUT = 250;
const work = { sent: 0, ok: 0, deadline: 0, lateDeadline: 0, overheadMs: [] as number[] };
async function workLoop() {
  for (let s = 0; running(); s++) {
    // A third of the calls ask for more than the deadline: those must fail, never answer.
    const ms = between(0, 360);
    work.sent++;
    const t = now();
    try {
      const r = await client.request<{ c: string; s: number }>("work", { c, s, ms }, { timeoutMs: TIMEOUT });
      if (r.c !== c || r.s !== s) violate(`work ${s}: wrong reply`);
      else if (ms > TIMEOUT) violate(`work ${s}: answered although the handler took ${ms} ms > the ${TIMEOUT} ms deadline`);
      else work.ok++;
      work.overheadMs.push(ms2(now() - t - ms));
    } catch (e) {
      const code = failed("work", e);
      if (code !== "DEADLINE_EXCEEDED") violate(`work ${s} failed with ${code}: ${(e as Error).message}`);
      else {
        work.deadline++;
        if (now() - t < TIMEOUT - 1) violate(`work ${s}: DEADLINE_EXCEEDED after ${now() - t} ms, before the ${TIMEOUT} ms deadline`);
        if (ms < TIMEOUT - 100) work.lateDeadline++; // loss or a busy CPU made a short call miss
      }
    }
    await sleep(between(50, 150) * PACE);
  }
}

const events = { emitted: 0, failed: 0 };
async function eventLoop() {
  let s = 0;
  while (running()) {
    // Mostly one at a time, sometimes a burst of 10 emitted without waiting in between.
    const n = rand() < 0.1 ? 10 : 1;
    const batch: Promise<void>[] = [];
    for (let k = 0; k < n; k++) {
      batch.push(client.emit("ev", { c, s: s++, t: client.clock.local() }).then(() => void events.emitted++, (e) => {
        events.failed++;
        violate(`emit failed: ${failed("emit", e)}`);
      }));
    }
    await Promise.all(batch);
    await sleep(between(20, 80) * PACE);
  }
}

const streams = { opened: 0, ok: 0, bytes: 0, frameRttMs: [] as number[], roundMs: [] as number[] };
async function streamRound(k: number) {
  const seed = id * 1_000_003 + k;
  const total = between(16 * 1024, 256 * 1024);
  const s = await client.createStream("bytes").withMetadata({ c, seed: String(seed) }).build();
  streams.opened++;
  const t = now();
  const sentAt: number[] = [];
  const sender = (async () => {
    for (let off = 0; off < total;) {
      const n = Math.min(total - off, between(1, 16 * 1024));
      sentAt.push(now());
      await s.send(pattern(seed, off, n));
      off += n;
    }
    await s.end();
  })();
  let got = 0;
  let bad = 0;
  let frames = 0;
  for await (const chunk of s) {
    bad += patternMismatches(seed, got, chunk);
    got += chunk.length;
    streams.frameRttMs.push(ms2(now() - sentAt[frames++]));
  }
  await sender;
  streams.roundMs.push(ms2(now() - t));
  if (bad || got !== total) violate(`stream ${k}: ${got}/${total} bytes back, ${bad} differ`);
  else {
    streams.ok++;
    streams.bytes += total;
  }
}
async function streamLoop() {
  for (let k = 0; running(); k++) {
    try {
      await withTimeout(streamRound(k), 60_000, `stream ${k}`);
    } catch (e) {
      violate(`stream ${k} failed: ${failed("stream", e)} ${(e as Error).message}`);
    }
    await sleep(between(200, 1000) * PACE);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<T>((_, no) => (timer = setTimeout(() => no(new Error(`${what}: no end within ${ms} ms`)), ms)))])
    .finally(() => clearTimeout(timer));
}

// `parts` leaves parts of the mix out (for measuring what each costs); all by default.
const on = (part: string) => !cfg.parts || cfg.parts.includes(part);
const idleUntilEnd = async () => {
  while (running()) await sleep(100);
};
const noMedia: Awaited<ReturnType<typeof runMedia>> = { streams: 0, sent: 0, echoesReceived: 0, echoesDelivered: 0, echoesLost: 0, echoesLate: 0, echoesDuplicates: 0, badEchoes: 0, transitP50Ms: [], transitP99Ms: [] };
const media = await Promise.all([
  on("echo") ? echoLoop() : idleUntilEnd(),
  on("work") ? workLoop() : undefined,
  on("events") ? eventLoop() : undefined,
  on("streams") ? streamLoop() : undefined,
  on("media") ? runMedia(client, id, rand, running, violate, failed, PACE, cfg.mediaFps) : noMedia,
]).then((r) => r[4]);

// Stop the ticker; its answer says how many ticks it emitted, all of which must arrive.
let ticksSent = -1;
try {
  ticksSent = (await client.request<{ ticksSent: number }>("finish", null, { timeoutMs: 15_000 })).ticksSent;
  for (let i = 0; i < 300 && ticks.received < ticksSent; i++) await sleep(50);
  if (ticks.received !== ticksSent) violate(`ticks: ${ticks.received} received, server sent ${ticksSent}`);
} catch (e) {
  violate(`finish failed: ${failed("finish", e)}`);
}
if (ticks.outOfOrder) violate(`ticks: ${ticks.outOfOrder} out of order or repeated`);
const before = clientCounts(client);
if (!client.connected) violate("the connection dropped during the soak");

emit("result", {
  c,
  connectMs: ms2(connectMs),
  violations,
  codes,
  echo,
  work,
  events,
  ticks: { ...ticks, sent: ticksSent },
  streams,
  media,
  clock: { offsetMs: client.clock.offsetMs, uncertaintyMs: client.clock.uncertaintyMs, rttMs: client.clock.rttMs },
  countsBeforeClose: before,
  rss: process.memoryUsage().rss,
  cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
});
await client.close();
process.exit(0);
