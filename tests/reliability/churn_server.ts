// Churn server, in its own process under Bun or Deno (`--unstable-net -A`): prints one JSON line
// {"address","ca","runtime"}, then serves until stdin closes. Used by churn.test.ts and
// bench/churn.ts.
//
//   echo   (request) returns its input
//   slow   (request) waits up to `ms` for the call to be cancelled; counts how each call ended
//   runtime (request) "bun" or "deno"
//   stats  (request) this connection's peer and transport counters, the slow-call counts, the RSS
//   echo   (stream)  sends every frame back, then ends

import { handler, streamHandler } from "../../src/rpc/definitions.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { inspectPeer } from "../../src/rpc/peer.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { rss, runtime, stdinClosed } from "./churn_common.ts";

/** How "slow" calls ended: cancelled by the caller (per code) or ran out their time. */
const slow = { cancelled: {} as Record<string, number>, completed: 0 };

const server = RpcServer.builder()
  .bind("127.0.0.1:0")
  .log(() => {})
  .onError(() => {})
  // The churn client cancels 1 call in 10 a few ms after sending it, thousands per second in
  // BENCH=churn: past the default rapid-reset budget (1,000 per 10 s), which would rightly end
  // its connection. This test is about state returning to baseline under churn, so it lifts it.
  .limits({ maxResets: 1_000_000 })
  // A wave holds 1,000 streams at once. The client's idle request streams (reused by its calls,
  // issue 15) hold slots too, and Bun's stack gives closed streams' credit back only in batches
  // of half its window: at the default 1,024 a bun → bun wave stalled about one run in two
  // (docs/TRANSPORT.md "Stream limits and credit"). Room for the wave and the idle streams.
  .maxStreams(2048)
  .handler(handler("echo", (_ctx, v: unknown) => v))
  .handler(handler("runtime", () => runtime))
  .handler(handler("slow", async (ctx, ms: number) => {
    const signal = ctx.signal;
    await new Promise<void>((done) => {
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        done();
      }, { once: true });
    });
    if (signal.aborted) {
      const code = String((signal.reason as { code?: string })?.code ?? "unknown");
      slow.cancelled[code] = (slow.cancelled[code] ?? 0) + 1;
    } else slow.completed++;
    return "done";
  }))
  .handler(handler("stats", (ctx) => {
    // The transport's own count of the client's streams being served (this call's included).
    const t = inspectPeer(ctx.peer).conn.stats();
    return { peer: { ...ctx.peer.stats }, transport: { incoming: t.incomingStreams, waiting: t.waitingStreams }, slow, rss: rss() };
  }))
  .streamHandler(streamHandler("echo", async (_ctx, s: EchoStream) => {
    for await (const f of s) await s.send(f);
    await s.end();
  }))
  .build();
await server.start();
console.log(JSON.stringify({ address: server.address, ca: server.trust.ca, runtime }));
await stdinClosed();
await server.close({ graceMs: 500 });
(globalThis as unknown as { process: { exit(c: number): void } }).process.exit(0);
