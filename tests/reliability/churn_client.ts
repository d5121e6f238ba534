// Churn client, in its own process under Bun or Deno (`--unstable-net -A`):
//   churn_client.ts <host:port>   with a ChurnConfig as JSON on stdin
// On one connection, waves of up to `wave` EchoStreams open at once (each echoes `frames`
// frames, content-checked, then ends), interleaved with requests: echoes (content-checked),
// calls cut by `timeoutMs` and calls cancelled by an AbortSignal. After each wave both sides'
// live counters must come back to their baseline. Prints one JSON line (ChurnResult).

import { RpcClient } from "../../src/rpc/client.ts";
import { RpcError } from "../../src/protocol/rpc_error.ts";
import { inspectPeer, type PeerStats } from "../../src/rpc/peer.ts";
import { args, exit, rss, runtime, stdinJson } from "./churn_common.ts";

/** What the parent sends on stdin. */
export interface ChurnConfig {
  ca: string;
  /** EchoStreams in total. */
  streams: number;
  /** Requests in total, spread evenly over the waves. */
  requests: number;
  /** EchoStreams open at once in a wave (the server allows 1,024 streams, one is the control stream). */
  wave: number;
  /** Frames each stream echoes. */
  frames: number;
  /** A wave that has not finished in this time has stalled. */
  waveTimeoutMs: number;
}

/** One wave's outcome. */
export interface WaveResult {
  streams: number;
  opened: number;
  /** Most EchoStreams open at the same time during the wave. */
  peakOpen: number;
  framesSent: number;
  framesEchoed: number;
  badFrames: number;
  /** Requests by outcome: ok, DEADLINE_EXCEEDED, CANCELLED, or any other code (a failure). */
  requests: { sent: number; ok: number; bad: number; deadline: number; cancelled: number; other: Record<string, number> };
  ms: number;
  /** This client's RSS (MiB) before and after the wave; the server's after it. */
  rssBefore: number;
  rssAfter: number;
  serverRssAfter: number;
  /**
   * Live counters once the wave was over, and whether they came back to baseline: EchoStreams,
   * requests awaited and served, and the transport's incoming streams (served beside the control
   * stream, and waiting for a slot).
   */
  client: Live;
  server: Live;
  baseline: boolean;
  /** Set when the wave did not finish within waveTimeoutMs: what was still pending. */
  stalled?: string;
  errors: string[];
}

/** What this script prints. */
export interface ChurnResult {
  runtime: string;
  serverRuntime: string;
  waves: WaveResult[];
  ms: number;
  /** The server's count of "slow" calls: cancelled (by code) and completed (never cancelled). */
  slow: { cancelled: Record<string, number>; completed: number };
  serverRss: { before: number; after: number };
}

const [address] = args;
const cfg = await stdinJson<ChurnConfig>();
// Request streams are reused during a wave (issue 15) and kept idle for requestStreamIdleMs after
// it: swept after 20 ms here, so "back to baseline" also checks that the sweep ends them on both
// sides (the server's incoming streams count them until then).
const client = await RpcClient.connect(address, { ca: cfg.ca, limits: { requestStreamIdleMs: 20 } });

/** Counters that must return to zero once a wave is over. */
export interface Live {
  openStreams: number;
  pendingRequests: number;
  inFlight: number;
  /** Incoming QUIC streams served, the control stream not counted. */
  incoming: number;
  /** Incoming QUIC streams waiting for a slot. */
  waiting: number;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const live = (s: PeerStats, t: { incoming?: number; waiting?: number }): Live => ({
  openStreams: s.openStreams,
  pendingRequests: s.pendingRequests,
  inFlight: s.inFlight,
  incoming: t.incoming ?? 0,
  waiting: t.waiting ?? 0,
});
const clientLive = () => {
  const t = inspectPeer(client.peer).conn.stats();
  return live(client.peer.stats, { incoming: t.incomingStreams, waiting: t.waitingStreams });
};
interface ServerStats {
  peer: PeerStats;
  transport: { incoming?: number; waiting?: number };
  slow: ChurnResult["slow"];
  rss: number;
}
const serverStats = () => client.request<ServerStats>("stats", null, { timeoutMs: 5000 });
/** The server's counters without the control stream and the "stats" call that reads them. */
const serverLive = (s: ServerStats): Live => {
  const l = live(s.peer, s.transport);
  return { ...l, inFlight: l.inFlight - 1, incoming: l.incoming - 2 };
};
const isBaseline = (l: Live) => Object.values(l).every((v) => v === 0);

/** Frame `f` of stream `id`: its length and bytes both derive from (id, f). */
function frame(id: number, f: number): Uint8Array {
  const n = 1 + ((id * 31 + f * 7) % 200);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (id + f * 13 + i) & 0xff;
  return out;
}
const same = (a: Uint8Array | undefined, b: Uint8Array) => !!a && a.length === b.length && a.every((v, i) => v === b[i]);

async function wave(first: number, nStreams: number, firstReq: number, nReq: number): Promise<WaveResult> {
  const w: WaveResult = {
    streams: nStreams, opened: 0, peakOpen: 0, framesSent: 0, framesEchoed: 0, badFrames: 0,
    requests: { sent: 0, ok: 0, bad: 0, deadline: 0, cancelled: 0, other: {} },
    ms: 0, rssBefore: rss(), rssAfter: 0, serverRssAfter: 0, client: clientLive(), server: clientLive(), baseline: false, errors: [],
  };
  const t0 = performance.now();
  const note = (e: unknown) => void (w.errors.length < 5 && w.errors.push(String((e as Error)?.message ?? e)));
  // Every stream holds its slot until all of the wave's streams have opened (or failed to).
  let settled = 0;
  let allOpen!: () => void;
  const barrier = new Promise<void>((r) => (allOpen = r));
  const settle = () => void (++settled === nStreams && allOpen());
  let open = 0;
  const streams = Array.from({ length: nStreams }, async (_, k) => {
    const id = first + k;
    let s;
    try {
      s = await client.createStream("echo");
    } catch (e) {
      settle();
      throw e;
    }
    w.opened++;
    w.peakOpen = Math.max(w.peakOpen, ++open);
    settle();
    try {
      for (let f = 0; f < cfg.frames; f++) {
        const out = frame(id, f);
        await s.send(out);
        w.framesSent++;
        if (same(await s.recv(), out)) w.framesEchoed++;
        else w.badFrames++;
        if (f === 0) await barrier;
      }
      await s.end();
      if ((await s.recv()) !== undefined) w.badFrames++;
    } finally {
      open--;
    }
  });
  // Requests: 8 in 10 echo (checked), 1 cut by its deadline, 1 cancelled by its signal.
  let next = 0;
  const worker = async () => {
    while (next < nReq) {
      const i = firstReq + next++;
      w.requests.sent++;
      try {
        if (i % 10 === 3) {
          const ac = new AbortController();
          setTimeout(() => ac.abort(), 5);
          await client.request("slow", 3000, { signal: ac.signal });
          w.requests.bad++;
        } else if (i % 10 === 7) {
          await client.request("slow", 3000, { timeoutMs: 15 });
          w.requests.bad++;
        } else {
          const input = i % 2 ? { i, s: "x".repeat(i % 40) } : frame(i, 0);
          const got = await client.request("echo", input);
          const ok = input instanceof Uint8Array ? same(got as Uint8Array, input) : JSON.stringify(got) === JSON.stringify(input);
          if (ok) w.requests.ok++;
          else w.requests.bad++;
        }
      } catch (e) {
        const code = e instanceof RpcError ? e.code : "NOT_RPC_ERROR";
        if (code === "DEADLINE_EXCEEDED" && i % 10 === 7) w.requests.deadline++;
        else if (code === "CANCELLED" && i % 10 === 3) w.requests.cancelled++;
        else {
          w.requests.other[code] = (w.requests.other[code] ?? 0) + 1;
          note(e);
        }
      }
    }
  };
  const all = Promise.allSettled([...streams, ...Array.from({ length: Math.min(32, nReq) }, worker)]).then((rs) => {
    for (const r of rs) if (r.status === "rejected") note(r.reason);
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), cfg.waveTimeoutMs)))]);
  clearTimeout(timer);
  w.ms = Math.round(performance.now() - t0);
  if (stalled) {
    w.stalled = `after ${cfg.waveTimeoutMs} ms: ${w.opened}/${nStreams} streams opened, ${open} still open, ${w.requests.sent - w.requests.ok - w.requests.bad - w.requests.deadline - w.requests.cancelled} requests unanswered`;
    w.client = clientLive();
    return w;
  }
  // Back to baseline: the server may finish its halves a moment after ours.
  for (let i = 0; i < 100; i++) {
    w.client = clientLive();
    const st = await serverStats();
    w.server = serverLive(st);
    w.serverRssAfter = st.rss;
    w.baseline = isBaseline(w.client) && isBaseline(w.server);
    if (w.baseline) break;
    await sleep(50);
  }
  w.rssAfter = rss();
  return w;
}

const t0 = performance.now();
const before = await serverStats();
const waves: WaveResult[] = [];
const nWaves = Math.ceil(cfg.streams / cfg.wave);
for (let i = 0; i < nWaves; i++) {
  const first = i * cfg.wave;
  const firstReq = Math.floor((cfg.requests * i) / nWaves);
  const lastReq = Math.floor((cfg.requests * (i + 1)) / nWaves);
  const w = await wave(first, Math.min(cfg.wave, cfg.streams - first), firstReq, lastReq - firstReq);
  waves.push(w);
  // Progress, and what a stall looked like (the parent shows stderr when there is no result).
  console.error(`wave ${i}: ${w.stalled ? JSON.stringify(w) : `${w.ms} ms, baseline ${w.baseline}`}`);
  if (w.stalled) break;
}
const ms = Math.round(performance.now() - t0);
const after = await serverStats().catch(() => before);
const result: ChurnResult = { runtime, serverRuntime: "", waves, ms, slow: after.slow, serverRss: { before: before.rss, after: after.rss } };
result.serverRuntime = await client.request<string>("runtime", null, { timeoutMs: 5000 }).catch(() => "?");
console.log(JSON.stringify(result));
await Promise.race([client.close(), sleep(1000)]);
exit(0);
