// Reconciles what the soak's clients report with what the server saw, and sums up latency,
// throughput, memory and counters. Every mismatch becomes a line in `violations`.

import { isIdle, type LiveCounts } from "./_soak_common.ts";
import { addInto, slope, type Summary, summarize } from "./_soak_harness.ts";
import type { Sample, SoakOptions } from "./_soak_run.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

export interface SoakReport {
  options: Omit<SoakOptions, "log">;
  wallMs: number;
  violations: string[];
  /** Failure codes by kind ("work:DEADLINE_EXCEEDED": n), summed over clients. */
  codes: Record<string, number>;
  totals: Record<string, number>;
  latencyMs: Record<string, Summary>;
  throughputPerS: Record<string, number>;
  packets: { seen: number[]; dropped: number[]; rcvbufErrors: number[]; lossIn: number; lossOut: number };
  memory: { serverRssMiB: number[]; clientRssMeanMiB: number[]; sampleTimesS: number[]; serverSlopeMiBPerMin: number; clientSlopeMiBPerMin: number };
  counts: { peak: Record<string, number>; final: LiveCounts };
  /** CPU time used (user + system), as a share of one core over the soak's duration. */
  cpu: { serverCorePct: number; clientMeanCorePct: number };
  exitCodes: number[];
}

interface Input {
  options: SoakOptions;
  wallMs: number;
  lastStartMs: number;
  results: Any[];
  exitCodes: number[];
  idle: LiveCounts;
  server: { counts: LiveCounts; clients: Record<string, Any>; handlerErrors: number; cpuMs: number };
  serverStderr: string;
  samples: Sample[];
  packets: { seen: number[]; dropped: number[]; rcvbufErrors: number[] };
  leftRules: string[];
}

const MiB = 1024 * 1024;

export function reconcile(i: Input): SoakReport {
  const v: string[] = [];
  const { log: _log, ...options } = i.options;
  const codes: Record<string, number> = {};
  const totals: Record<string, number> = {};
  const lat: Record<string, number[]> = { request: [], requestWithDeadline: [], eventToServer: [], eventToClient: [], streamFrameRtt: [], streamRound: [], datagramTransitP50: [], datagramTransitP99: [] };
  const push = (k: string, xs: number[] | undefined) => {
    for (const x of xs ?? []) lat[k].push(x);
  };
  for (const r of i.results) {
    v.push(...(r.violations ?? []));
    if (!r.echo) continue; // no result: already a violation
    addInto(codes, r.codes);
    const s = i.server.clients[r.c];
    if (!s) {
      v.push(`${r.c}: the server has no record of this client`);
      continue;
    }
    // Requests: each answered exactly once (sequence numbers checked by the client), and the
    // server saw each (client, seq) at most once.
    if (s.echoDuplicates || s.workDuplicates) v.push(`${r.c}: server ran a request twice (echo ${s.echoDuplicates}, work ${s.workDuplicates})`);
    if (s.echoSeen !== r.echo.sent) v.push(`${r.c}: sent ${r.echo.sent} echo requests, the server saw ${s.echoSeen}`);
    if (s.workSeen > r.work.sent || s.workSeen < r.work.ok) v.push(`${r.c}: work: server saw ${s.workSeen}, client sent ${r.work.sent} with ${r.work.ok} answered`);
    // Events, client → server: all arrived, once each, in order.
    if (s.events !== r.events.emitted) v.push(`${r.c}: emitted ${r.events.emitted} events, the server received ${s.events}`);
    if (s.eventsOutOfOrder) v.push(`${r.c}: ${s.eventsOutOfOrder} events out of order or repeated at the server`);
    if (s.ticksFailed) v.push(`${r.c}: ${s.ticksFailed} ticks failed to send`);
    // Streams: every byte the server read matched the pattern.
    if (s.streamMismatches) v.push(`${r.c}: ${s.streamMismatches} stream bytes differed at the server`);
    if (s.streamBytes < r.streams.bytes) v.push(`${r.c}: server read ${s.streamBytes} stream bytes, the client had ${r.streams.bytes} echoed`);
    if (s.mediaBadFrames) v.push(`${r.c}: ${s.mediaBadFrames} datagram frames corrupted at the server`);
    for (const e of s.mediaErrors ?? []) v.push(`${r.c}: server's media stream failed: ${e}`);
    const media: Record<string, number> = {};
    for (const m of s.media) addInto(media, m);
    if (media.duplicates) v.push(`${r.c}: ${media.duplicates} duplicate datagram frames at the server`);
    if ((media.received ?? 0) > r.media.sent) v.push(`${r.c}: server received ${media.received} datagram frames, client sent ${r.media.sent}`);
    addInto(totals, {
      clients: 1,
      requests: r.echo.sent,
      requestsOk: r.echo.ok,
      deadlineRequests: r.work.sent,
      deadlineOk: r.work.ok,
      deadlineExceeded: r.work.deadline,
      deadlineExceededShortCalls: r.work.lateDeadline,
      eventsToServer: r.events.emitted,
      eventsToClient: r.ticks.received,
      streams: r.streams.opened,
      streamsOk: r.streams.ok,
      streamBytes: r.streams.bytes,
      mediaStreams: r.media.streams,
      datagramsSent: r.media.sent,
      datagramsReceivedByServer: media.received ?? 0,
      datagramsLostAtServer: media.lost ?? 0,
      datagramsLateAtServer: media.late ?? 0,
      echoDatagramsReceived: r.media.echoesReceived,
      clientCpuMs: Math.round(r.cpuMs),
    });
    push("request", r.echo.latencyMs);
    push("requestWithDeadline", r.work.overheadMs);
    push("eventToServer", s.eventLatencyMs);
    push("eventToClient", r.ticks.latencyMs);
    push("streamFrameRtt", r.streams.frameRttMs);
    push("streamRound", r.streams.roundMs);
    push("datagramTransitP50", r.media.transitP50Ms);
    push("datagramTransitP99", r.media.transitP99Ms);
  }
  if (i.results.length !== i.options.clients) v.push(`${i.results.length} results for ${i.options.clients} clients`);
  i.exitCodes.forEach((c, k) => c !== 0 && v.push(`c${k}: exit code ${c}`));
  if (i.server.handlerErrors) v.push(`server: ${i.server.handlerErrors} handler errors: ${i.serverStderr.slice(0, 500)}`);
  if (!isIdle(i.idle, 0)) v.push(`server still holds state after every client left: ${JSON.stringify(i.idle)}`);
  if (i.leftRules.length) v.push(`iptables rules left behind: ${i.leftRules.join("; ")}`);

  const secs = i.options.durationMs / 1000;
  const [dIn, dOut] = i.packets.dropped;
  const [sIn, sOut] = i.packets.seen;
  const peak: Record<string, number> = {};
  for (const s of i.samples) {
    for (const [k, x] of Object.entries(s.counts)) if (typeof x === "number") peak[k] = Math.max(peak[k] ?? 0, x);
  }
  const warm = i.samples.filter((s) => s.t >= i.lastStartMs + (i.options.warmupMs ?? 20_000) && s.clientRss.length === i.options.clients);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    options,
    wallMs: i.wallMs,
    violations: v,
    codes,
    totals,
    latencyMs: Object.fromEntries(Object.entries(lat).map(([k, xs]) => [k, summarize(xs)])),
    throughputPerS: {
      requests: (totals.requests + totals.deadlineRequests) / secs,
      eventsToServer: totals.eventsToServer / secs,
      eventsToClient: totals.eventsToClient / secs,
      streamMiBps: totals.streamBytes / MiB / secs,
      datagramsSent: totals.datagramsSent / secs,
    },
    packets: { ...i.packets, lossIn: dIn / sIn, lossOut: dOut / sOut },
    memory: {
      sampleTimesS: i.samples.map((s) => Math.round(s.t / 100) / 10),
      serverRssMiB: i.samples.map((s) => Math.round((s.serverRss / MiB) * 10) / 10),
      clientRssMeanMiB: i.samples.map((s) => (s.clientRss.length ? Math.round((mean(s.clientRss) / MiB) * 10) / 10 : NaN)),
      serverSlopeMiBPerMin: Math.round(slope(warm.map((s) => ({ x: s.t / 60_000, y: s.serverRss / MiB }))) * 100) / 100,
      clientSlopeMiBPerMin: Math.round(slope(warm.map((s) => ({ x: s.t / 60_000, y: mean(s.clientRss) / MiB }))) * 100) / 100,
    },
    counts: { peak, final: i.idle },
    cpu: {
      serverCorePct: Math.round((i.server.cpuMs / i.wallMs) * 1000) / 10,
      clientMeanCorePct: Math.round((totals.clientCpuMs / (totals.clients || 1) / i.options.durationMs) * 1000) / 10,
    },
    exitCodes: i.exitCodes,
  };
}
