// The abuse server, in its own process under Bun or Deno (`--unstable-net -A`): configured as a
// production server would be (access policy, an event rate limit, tightened limits from
// _config.ts). Prints one JSON line {"address","ca","runtime","pid"}, then serves until stdin
// closes. Used by abuse.test.ts and bench/abuse.ts.
//
//   echo        (request) returns its input
//   slow        (request) waits `ms` or until the call is cancelled; counts starts, peak, cancels
//   stats       (request) ServerSnapshot: server.stats(), the RSS, the handlers' own counters
//   bcast.start (request) {ms, everyMs, bytes}: broadcasts `bytes` to every peer every `everyMs`
//                         for `ms` (topic "bcast"); bcast.stop ends it
//   gc          (request) a full garbage collection, where the runtime allows it
//   secret.key  (request), secret.tick (event), secret.stream (stream): denied by the policy;
//                         they count if they ever run (they must not)
//   tick        (event)   counted
//   echo        (stream)  sends every frame back

import { handler, listener, streamHandler } from "../../src/rpc/definitions.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { runtime, stdinClosed } from "../reliability/churn_common.ts";
import { EVENT_RATE, LIMITS, POLICY, type ServerSnapshot } from "./_config.ts";

const proc =
  (globalThis as unknown as { process: { pid: number; memoryUsage(): { rss: number }; exit(c: number): never } })
    .process;
type Mem = { rss: number; heapTotal: number; heapUsed: number; external: number };
const memory = (): Mem => {
  const deno = (globalThis as { Deno?: { memoryUsage(): Mem } }).Deno;
  return deno ? deno.memoryUsage() : (proc.memoryUsage() as Mem);
};

const app: ServerSnapshot["app"] = {
  echo: 0,
  ticks: 0,
  secretCalls: 0,
  secretEvents: 0,
  secretStreams: 0,
  slow: { started: 0, running: 0, peak: 0, completed: 0, cancelled: 0 },
  bcast: { sent: 0, failed: 0, active: false },
  errors: {},
  lastErrors: [],
};
let bcastTimer: ReturnType<typeof setInterval> | undefined;
let bcastEnd: ReturnType<typeof setTimeout> | undefined;
const stopBroadcast = () => {
  clearInterval(bcastTimer);
  clearTimeout(bcastEnd);
  bcastTimer = undefined;
  app.bcast.active = false;
};

const server: RpcServer = RpcServer.builder()
  .bind("127.0.0.1:0")
  .log(() => {})
  .onError((e, where) => {
    // Expected under attack: refused handshakes, transport errors. Counted by place, kept short.
    const key = where.replace(/ with [\d.:]+$/, "");
    app.errors[key] = (app.errors[key] ?? 0) + 1;
    if (app.lastErrors.length < 20) {
      app.lastErrors.push(`${where}: ${String((e as Error)?.message ?? e).slice(0, 200)}`);
    }
  })
  .handshakeTimeout(LIMITS.handshakeTimeoutMs)
  .limits({
    maxFrameSize: LIMITS.maxFrameSize,
    firstFrameTimeoutMs: LIMITS.firstFrameTimeoutMs,
    maxOutgoingBytes: LIMITS.maxOutgoingBytes,
    maxResets: LIMITS.maxResets,
    resetWindowMs: LIMITS.resetWindowMs,
    maxConnectionsPerAddress: LIMITS.maxConnectionsPerAddress,
    maxPendingHandshakes: LIMITS.maxPendingHandshakes,
  })
  .accessControl({
    permissions: {
      request: { allow: [...POLICY.request.allow], deny: [...POLICY.request.deny] },
      event: { allow: [...POLICY.event.allow], deny: [...POLICY.event.deny] },
      stream: { allow: [...POLICY.stream.allow], deny: [...POLICY.stream.deny] },
    },
    defaultDeny: true,
  })
  .rateLimit({ key: "connection", kinds: ["event"], perSecond: EVENT_RATE.perSecond, burst: EVENT_RATE.burst })
  .handler(handler("echo", (_ctx, v: unknown) => (app.echo++, v)))
  .handler(handler("slow", async (ctx, ms: number) => {
    app.slow.started++;
    app.slow.peak = Math.max(app.slow.peak, ++app.slow.running);
    const signal = ctx.signal;
    try {
      await new Promise<void>((done) => {
        const timer = setTimeout(done, typeof ms === "number" ? ms : 0);
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          done();
        }, { once: true });
      });
    } finally {
      app.slow.running--;
    }
    if (signal.aborted) app.slow.cancelled++;
    else app.slow.completed++;
    return "done";
  }))
  .handler(handler("stats", (): ServerSnapshot => {
    const m = memory();
    return {
      runtime,
      rss: m.rss,
      heapUsed: m.heapUsed,
      external: m.external,
      stats: server.stats() as unknown as ServerSnapshot["stats"],
      app,
    };
  }))
  .handler(handler("bcast.start", (_ctx, o: { ms: number; everyMs: number; bytes: number }) => {
    stopBroadcast();
    const payload = new Uint8Array(o.bytes).fill(0x42);
    app.bcast.active = true;
    bcastTimer = setInterval(() => {
      // Not awaited: a peer that does not read must not hold up the others (nor this timer).
      server.broadcast("bcast", payload).then((r) => {
        app.bcast.sent += r.delivered;
        app.bcast.failed += r.failed;
      });
    }, o.everyMs);
    bcastEnd = setTimeout(stopBroadcast, o.ms);
    return true;
  }))
  .handler(handler("bcast.stop", () => (stopBroadcast(), true)))
  // A full garbage collection where the runtime offers one (Bun; Deno with --v8-flags=--expose-gc),
  // so retained memory can be told from garbage not collected yet. Answers whether it ran.
  .handler(handler("gc", () => {
    const g = globalThis as { Bun?: { gc(full: boolean): void }; gc?: () => void };
    if (g.Bun) g.Bun.gc(true);
    else if (typeof g.gc === "function") g.gc();
    else return false;
    return true;
  }))
  .handler(handler("secret.key", () => (app.secretCalls++, "the secret")))
  .listener(listener("tick", () => void app.ticks++))
  .listener(listener("secret.tick", () => void app.secretEvents++))
  .streamHandler(streamHandler("echo", async (_ctx, s: EchoStream) => {
    for await (const f of s) await s.send(f);
    await s.end();
  }))
  .streamHandler(streamHandler("secret.stream", async (_ctx, s: EchoStream) => {
    app.secretStreams++;
    await s.end();
  }))
  .build();

await server.start();
console.log(JSON.stringify({ address: server.address, ca: server.trust.ca, runtime, pid: proc.pid }));
await stdinClosed();
stopBroadcast();
await server.close({ graceMs: 200 });
proc.exit(0);
