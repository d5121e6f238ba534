// Soak server (child process): echo handlers that record every (client, seq) they see, a
// listener that checks each sender's events arrive exactly once and in order, a ticker that
// emits numbered events back to each client, a byte-pattern echo stream and a time-synced
// datagram echo stream. Prints {"event":"listening","port"} once up; answers stdin commands:
//   counts <tag> → {"event":"counts", tag, live counts, rss}   report <tag> → {"event":"report", tag, per client}
//
//   _soak_server.ts '{"bind":"10.66.1.1:0","certDir":"/tmp/x"}'

import { readFileSync } from "node:fs";
import process from "node:process";
import { handler, listener, RpcServer, streamHandler } from "../../mod.ts";
import type { Peer } from "../../src/rpc/peer.ts";
import { systemClock } from "../../src/clock/sync.ts";
import { args, commands, emit, patternMismatches, serverCounts, sleep } from "./_soak_common.ts";

const cfg = JSON.parse(args()[0]) as { bind: string; certDir: string; tickMs?: number; idleTimeoutMs?: number };
const TICK_MS = cfg.tickMs ?? 100;

/** What the server saw from one client (keyed by the HELLO name). */
class ClientLog {
  echoSeen = new Set<number>();
  echoDuplicates = 0;
  workSeen = new Set<number>();
  workDuplicates = 0;
  workCancelled = 0;
  events = 0;
  nextEvent = 0;
  eventsOutOfOrder = 0;
  eventLatencyMs: number[] = [];
  ticksSent = 0;
  ticksFailed = 0;
  streams = 0;
  streamBytes = 0;
  streamMismatches = 0;
  media: Record<string, number>[] = [];
  mediaErrors: string[] = [];
  mediaBadFrames = 0;
}

const logs = new Map<string, ClientLog>();
const log = (name: string) => {
  let l = logs.get(name);
  if (!l) logs.set(name, (l = new ClientLog()));
  return l;
};
const tickers = new Map<Peer, { stop: () => Promise<void> }>();
let handlerErrors = 0;

/** Emits tick {s, t} to `peer` every TICK_MS until stopped; stop() waits for the last emit. */
function startTicker(peer: Peer, l: ClientLog) {
  let last: Promise<unknown> = Promise.resolve();
  let s = 0;
  const timer = setInterval(() => {
    if (peer.isClosed) return clearInterval(timer);
    last = peer.emit("tick", { s: s++, t: systemClock() }).then(() => l.ticksSent++, () => l.ticksFailed++);
  }, TICK_MS);
  peer.closed.then(() => clearInterval(timer));
  return {
    stop: async () => {
      clearInterval(timer);
      await last; // the lane is in order: once the last emit settled, all have
    },
  };
}

type Req = { c: string; s: number };

// A client that exits right after close() may have its CONNECTION_CLOSE dropped (2% here), and
// then only the idle timeout frees its connection: short, for the end-of-soak leak check.
const server = RpcServer.builder()
  .bind(cfg.bind)
  .idleTimeout(cfg.idleTimeoutMs ?? 5000)
  .tls({ cert: readFileSync(`${cfg.certDir}/cert.pem`, "utf8"), key: readFileSync(`${cfg.certDir}/key.pem`, "utf8") })
  .log(() => {})
  .onError((e, where) => {
    handlerErrors++;
    process.stderr.write(`handler error in ${where}: ${String(e)}\n`);
  })
  .handler(handler("start", (ctx) => {
    const l = log(ctx.peer.name);
    if (!tickers.has(ctx.peer)) tickers.set(ctx.peer, startTicker(ctx.peer, l));
    ctx.peer.closed.then(() => tickers.delete(ctx.peer));
    return { ok: true };
  }))
  .handler(handler("echo", (ctx, r: Req & { p?: Uint8Array }) => {
    const l = log(ctx.peer.name);
    if (l.echoSeen.has(r.s)) l.echoDuplicates++;
    l.echoSeen.add(r.s);
    return { c: r.c, s: r.s, p: r.p };
  }))
  .handler(handler("work", async (ctx, r: Req & { ms: number }) => {
    const l = log(ctx.peer.name);
    if (l.workSeen.has(r.s)) l.workDuplicates++;
    l.workSeen.add(r.s);
    try {
      await sleep(r.ms, ctx.signal); // honours the deadline: stops when the caller gives up
    } catch (e) {
      l.workCancelled++;
      throw e;
    }
    return { c: r.c, s: r.s };
  }))
  .handler(handler("finish", async (ctx) => {
    const l = log(ctx.peer.name);
    await tickers.get(ctx.peer)?.stop();
    tickers.delete(ctx.peer);
    return { ticksSent: l.ticksSent, ticksFailed: l.ticksFailed };
  }))
  .listener(listener("ev", (ctx, e: Req & { t: number }) => {
    const l = log(ctx.peer.name);
    l.events++;
    if (e.s !== l.nextEvent) l.eventsOutOfOrder++;
    l.nextEvent = e.s + 1;
    // Sender's clock → ours through the connection's clock model (same host: offset ≈ 0).
    l.eventLatencyMs.push(Math.round((ctx.peer.clock.now() - e.t) * 100) / 100);
  }))
  .streamHandler(streamHandler("bytes", async (ctx, stream) => {
    const l = log(ctx.peer.name);
    const seed = Number(stream.metadata.seed);
    l.streams++;
    let offset = 0;
    for await (const chunk of stream) {
      l.streamMismatches += patternMismatches(seed, offset, chunk);
      offset += chunk.length;
      await stream.send(chunk);
    }
    l.streamBytes += offset;
    await stream.end();
  }))
  .streamHandler(streamHandler("media", async (ctx, stream) => {
    const l = log(ctx.peer.name);
    const me = Number(stream.metadata.c);
    try {
      for (let f = await stream.recvAligned(); f; f = await stream.recvAligned()) {
        const v = new DataView(f.data.buffer, f.data.byteOffset, f.data.byteLength);
        if (f.data.length < 8 || v.getUint32(0) !== me || v.getUint32(4) !== f.seq || patternMismatches(me, 8, f.data.subarray(8)) > 0) l.mediaBadFrames++;
        stream.sendWithTimestamp(f.data, stream.now()).catch(() => {}); // datagrams: best effort
      }
    } catch (e) {
      // Recorded with this side's clock state (the client sees the same error as the abort reason).
      const { synced, samples, pingsSent, pongsReceived, outstandingPings, transport } = ctx.peer.clock.stats();
      l.mediaErrors.push(`${String(e)}; server clock of this client ${JSON.stringify({ synced, samples, pingsSent, pongsReceived, outstandingPings, transport })}`);
      throw e;
    }
    const st = stream.stats();
    l.media.push({ received: st.received, delivered: st.delivered, late: st.late, lost: st.lost, duplicates: st.duplicates, reordered: st.reordered, transitP50Ms: st.transitP50Ms, transitP99Ms: st.transitP99Ms, latencyMs: st.latencyMs });
    await stream.end();
  }))
  .build();

await server.start();
emit("listening", { port: Number(server.address.split(":").pop()) });

const memory = () => ({ rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed, cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000 });

commands((line) => {
  const [cmd, tag] = line.split(" "); // the tag comes back in the answer, to pair it with the ask
  if (cmd === "counts") return emit("counts", { tag, ...serverCounts(server), ...memory(), handlerErrors });
  if (cmd === "report") {
    const clients: Record<string, unknown> = {};
    for (const [name, l] of logs) {
      clients[name] = {
        echoSeen: l.echoSeen.size,
        echoDuplicates: l.echoDuplicates,
        workSeen: l.workSeen.size,
        workDuplicates: l.workDuplicates,
        workCancelled: l.workCancelled,
        events: l.events,
        eventsOutOfOrder: l.eventsOutOfOrder,
        eventLatencyMs: l.eventLatencyMs,
        ticksSent: l.ticksSent,
        ticksFailed: l.ticksFailed,
        streams: l.streams,
        streamBytes: l.streamBytes,
        streamMismatches: l.streamMismatches,
        media: l.media,
        mediaBadFrames: l.mediaBadFrames,
        mediaErrors: l.mediaErrors,
      };
    }
    return emit("report", { tag, counts: serverCounts(server), ...memory(), handlerErrors, clients });
  }
  emit("error", { message: `unknown command ${cmd}` });
});
