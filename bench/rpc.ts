// RPC benchmark: EchoStream's RpcServer/RpcClient (OURS: request streams reused from a pool per
// connection, issue 15) beside the runtime's raw QUIC stack with one new bidirectional stream per
// call (RAW, the ceiling for a stream-per-call design, DESIGN §4), the raw stack with streams kept
// open and reused the same way (RAW_OPEN: the stack's own cost of a message on an open stream,
// the ceiling for reuse; per-call metrics only), OURS with reuse turned off (FRESH, one stream per
// call; per-call metrics only) and @grpc/grpc-js (GRPC: plaintext HTTP/2, a generic service with
// raw Buffer serializers, no protobuf). Client and server share this one process on 127.0.0.1. Prints
// one JSON line. Driven by bench/run.ts (`npm run bench`, or `BENCH=rpc`); also runs alone:
//
//   bun bench/rpc.ts
//   deno run --unstable-net -A bench/rpc.ts
//
// Metrics, per implementation:
//   - unary 64 B echo latency, sequential: p50/p99 µs, after the rounds, interleaved (a
//     connection each, warm-up calls, then 100 timed calls of each implementation in turn);
//   - requests/s with 64 calls in flight on one connection;
//   - server streaming: 1 KiB messages/s on a connection of its own (OURS: a streamHandler
//     sending DATA frames on an EchoStream the client opened; RAW: one stream of
//     u32-length-prefixed messages; GRPC: a server-streaming method); and, for OURS and RAW OPEN,
//     the same on a connection after 64 calls in flight, with the 64 idle streams they keep. These
//     run after the rounds, interleaved: warm-up streams on every connection, then one measured
//     stream of each implementation in turn, so machine drift hits them alike;
//   - memory per 1,000 open streams (OURS: EchoStreams; RAW: QUIC streams with one echo done;
//     GRPC: server-streaming calls with one message received), RSS and JS heap delta after GC,
//     each measured in a fresh child process of this script so earlier metrics do not skew it;
//   - cold connect, median ms (OURS: QUIC handshake + HELLO/WELCOME; RAW: QUIC handshake;
//     GRPC: TCP + HTTP/2 until the channel is READY).
//   - OpenTelemetry: unary latency and req/s of OURS in two child processes of this script with
//     the same single server and client, one with an OpenTelemetry SDK registered (TRACED: tracer
//     provider with a BatchSpanProcessor to an exporter that drops the spans, a MeterProvider with
//     a periodic reader to an exporter that drops the data, the W3C propagator and the
//     AsyncLocalStorage context manager) and one without (UNTRACED), alternating which goes first
//     round by round. The registration is global, so it never happens in this process, where the
//     other implementations are measured.
// Ratios: ours ÷ raw and ours ÷ grpc per metric (lower is better for latency, memory and connect
// time; higher for throughput); secured ÷ ours (same process and rounds); traced ÷ untraced
// (reported as tracedOverOurs). Every loop is bounded in count; every metric has a time limit;
// a 240 s watchdog prints what was measured and exits non-zero. BENCH_RPC_OTEL_ROUNDS (default 2,
// 0 skips), BENCH_RPC_STEPS and BENCH_RPC_OTEL_SDK are described where they are read.

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { type EchoStream, handler, RpcClient, RpcServer, streamHandler } from "../mod.ts";
import { createDevCertificates } from "../src/security/mod.ts";
import {
  type Any,
  bunRaw,
  type Client as RawClient,
  denoRaw,
  ECHO,
  endStream,
  genRequest,
  HOST,
  type Impl as RawImpl,
  noop,
  send,
  type Stream as RawStream,
} from "./_quic_raw.ts";

import { env, G, RUNTIME, VERSION } from "./_env.ts";

// ---------------------------------------------------------------------------------------------
// Parameters. Every count is fixed; BENCH_RPC_SCALE (0 < s ≤ 1) shrinks them for a quick run.

const SCALE = Math.min(1, Math.max(0.01, Number(env("BENCH_RPC_SCALE") ?? 1) || 1));
const n = (x: number) => Math.max(1, Math.round(x * SCALE));
const P = {
  rounds: Math.max(1, Math.min(6, Number(env("BENCH_RPC_ROUNDS") ?? 2) || 2)),
  payload: 64,
  unaryWarmup: n(300),
  unary: n(3000),
  inFlight: 64,
  throughputWarmup: n(2000),
  throughputCalls: n(20_000),
  streamMessages: n(20_000),
  streamSize: 1024,
  /** Measured streams per implementation and connection, interleaved across implementations. */
  streamRuns: 9,
  /** Streams run on each connection before any is measured (the JIT and the stack warm up). */
  streamWarmupRuns: 3,
  openStreams: n(1000),
  connects: n(20),
  connectWarmup: 2,
  metricTimeoutMs: 60_000,
  memTimeoutMs: 60_000,
  watchdogMs: Number(env("BENCH_RPC_WATCHDOG_MS") ?? 240_000),
  /** OTel children (one untraced and one traced process per round); 0 skips them. */
  otelRounds: Math.max(0, Math.min(6, Number(env("BENCH_RPC_OTEL_ROUNDS") ?? 2))),
  childTimeoutMs: 150_000,
};
/**
 * Which steps `measure` runs, e.g. BENCH_RPC_STEPS=unary,throughput for a quick per-call check;
 * default all (unary, throughput, stream, connect).
 */
const STEPS = new Set((env("BENCH_RPC_STEPS") ?? "unary,throughput,stream,connect").split(",").map((x) => x.trim()));

type Name = "ours" | "raw" | "grpc" | "secured" | "traced" | "untraced" | "rawOpen" | "fresh";
const NAMES: Name[] = ["ours", "raw", "grpc", "secured", "traced", "untraced", "rawOpen", "fresh"];
/** Variants compared on the per-call metrics only (unary latency and req/s). */
const PER_CALL_ONLY = new Set<Name>(["secured", "traced", "untraced", "rawOpen", "fresh"]);
const now = () => performance.now();
const GRPC_EXTRA = { "grpc.use_local_subchannel_pool": 1 }; // a fresh connection per client

// ---------------------------------------------------------------------------------------------
// Watchdog and exit

const started = now();
const report: Any = {
  runtime: RUNTIME,
  version: VERSION,
  params: P,
  results: { ours: {}, raw: {}, grpc: {}, secured: {}, traced: {}, untraced: {}, rawOpen: {}, fresh: {} },
  ratios: { oursOverRaw: {}, oursOverGrpc: {}, securedOverOurs: {}, tracedOverOurs: {}, oursOverRawOpen: {}, freshOverRaw: {} },
  errors: [] as string[],
  /** Wall time per step (ms, summed over rounds): where a slow run spent its time. */
  stepMs: {} as Record<string, number>,
};

function exit(code: number): never {
  if (RUNTIME === "deno") G.Deno.exit(code);
  G.process.exit(code);
  throw new Error("unreachable");
}
function unref(t: Any): void {
  if (RUNTIME === "deno") G.Deno.unrefTimer(t);
  else t?.unref?.();
}

/** Rejects if `p` has not settled in `ms`. */
function within<T>(p: Promise<T>, ms: number, label: string): Promise<T> {
  let t: Any;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${label}: no result within ${ms} ms`)), ms);
    }),
  ]);
}

// ---------------------------------------------------------------------------------------------
// The shape every implementation provides

interface Conn {
  /** One 64 B unary echo; resolves with the reply's length. */
  call(req: Uint8Array): Promise<number>;
  /** Asks for `count` messages of `size` bytes on one server stream; resolves with how many came. */
  serverStream(count: number, size: number): Promise<number>;
  /** Opens `count` streams and keeps them open (each known to both sides); returns the closer. */
  hold(count: number): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

interface Impl {
  name: Name;
  connect(): Promise<Conn>;
  stop(): Promise<void>;
  /** OURS: a client with these limits, against the same server (FRESH). */
  connectWith?(limits: Record<string, number> | undefined): Promise<Conn>;
}

/**
 * A variant measured against another implementation's server (FRESH on OURS's, RAW OPEN on RAW's):
 * one more QUIC endpoint in this process made every connect slower (cold connect went from about
 * 6 to 10-30 ms on Bun), so variants add clients, never servers.
 */
function variant(name: Name, connect: () => Promise<Conn>): Impl {
  return { name, connect, stop: () => Promise.resolve() };
}

function pattern(size: number, first = 0): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
  b[0] = first;
  return b;
}
const PING = pattern(P.payload, ECHO);

// ---------------------------------------------------------------------------------------------
// OURS: RpcServer / RpcClient

function u32pair(a: number, b: number): Uint8Array {
  const x = new Uint8Array(8);
  const v = new DataView(x.buffer);
  v.setUint32(0, a);
  v.setUint32(4, b);
  return x;
}

/**
 * OURS, or (`secured`) the same server with an access policy, two rate limits and explicit
 * limits configured, as a production server would run: the cost of the security layer per call.
 * `traced` and `untraced` are OURS unchanged, under another name (the OTel child processes).
 */
async function ours(variant: "ours" | "secured" | "traced" | "untraced" = "ours"): Promise<Impl> {
  const secured = variant === "secured";
  const builder = RpcServer.builder();
  if (secured) {
    builder
      .authenticate(() => ({ id: "bench" }))
      .accessControl({ permissions: { request: { allow: ["echo", "user.>"], deny: ["admin.>"] }, stream: ["gen", "hold"] }, perPeer: () => ({ event: ["telemetry.bench.>"] }) })
      .rateLimit({ key: "address", names: ["user.login"], perSecond: 5 })
      .rateLimit({ key: "principal", perSecond: 10_000_000, burst: 10_000_000 })
      .limits({ maxConcurrentHandlers: 512, maxConnectionsPerAddress: 64, firstFrameTimeoutMs: 5000 });
  }
  const server = builder
    .bind(`${HOST}:0`)
    .log(noop)
    .onError(noop)
    .maxStreams(1024)
    .handler(handler("echo", (_ctx, input: Uint8Array) => input))
    .streamHandler(streamHandler("gen", async (_ctx, s: EchoStream) => {
      const req = await s.recv();
      if (!req || req.length < 8) return;
      const v = new DataView(req.buffer, req.byteOffset, 8);
      const count = Math.min(v.getUint32(0), 10_000_000);
      const msg = pattern(Math.min(v.getUint32(4), 1 << 20));
      for (let i = 0; i < count; i++) await s.send(msg);
    }))
    .streamHandler(streamHandler("hold", async (_ctx, s: EchoStream) => {
      for await (const _ of s) { /* held until the client ends its side */ }
    }))
    .build();
  await server.start();
  const address = server.address;
  const ca = server.trust.ca;
  const impl: Impl = {
    name: variant,
    connect: () => impl.connectWith!(undefined),
    async connectWith(limits) {
      const client = await RpcClient.connect(address, { ca, onError: noop, limits });
      return {
        async call(req) {
          const r = await client.request<Uint8Array>("echo", req);
          return r.length;
        },
        async serverStream(count, size) {
          const s = await client.createStream("gen");
          await s.send(u32pair(count, size));
          await s.end();
          let got = 0;
          for await (const f of s) if (f.length === size) got++;
          return got;
        },
        async hold(count) {
          const held: EchoStream[] = await Promise.all(
            Array.from({ length: count }, () => client.createStream("hold").build()),
          );
          return async () => {
            await Promise.all(held.map(async (s) => {
              await s.end();
              while ((await s.recv()) !== undefined) { /* drain */ }
            }));
          };
        },
        close: () => client.close(),
      };
    },
    stop: () => server.close({ graceMs: 100 }),
  };
  return impl;
}

// ---------------------------------------------------------------------------------------------
// RAW: the runtime's QUIC API directly, one new bidirectional stream per call (bench/_quic_raw.ts)

/** Counts u32-length-prefixed messages of `size` bytes across chunks (the parsing a client would do). */
async function readMessages(s: RawStream, size: number): Promise<number> {
  let messages = 0;
  let need = 4; // bytes still missing of the current prefix or body
  let inBody = false;
  const hdr = new Uint8Array(4);
  const hdrView = new DataView(hdr.buffer);
  const total = await s.readChunks!((c) => {
    let i = 0;
    while (i < c.length) {
      const k = Math.min(need, c.length - i);
      if (!inBody) hdr.set(c.subarray(i, i + k), 4 - need);
      i += k;
      need -= k;
      if (need > 0) continue;
      if (inBody) {
        messages++;
        inBody = false;
        need = 4;
      } else {
        const len = hdrView.getUint32(0);
        if (len !== size) throw new Error(`raw stream: message of ${len} bytes, expected ${size}`);
        inBody = true;
        need = len;
      }
    }
  });
  if (need !== 4 || inBody) throw new Error(`raw stream: ended inside a message after ${total} bytes`);
  return messages;
}

function raw(r: RawImpl): Impl {
  return {
    name: "raw",
    async connect() {
      const c: RawClient = await r.connect();
      return {
        async call(req) {
          const s = await c.open();
          await send(s, req);
          await endStream(s);
          return await s.readAll();
        },
        async serverStream(count, size) {
          const s = await c.open();
          await send(s, genRequest(count, size));
          await endStream(s);
          return await readMessages(s, size);
        },
        async hold(count) {
          const held = await Promise.all(Array.from({ length: count }, async () => {
            const s = await c.open();
            await send(s, PING);
            await s.readN(P.payload);
            return s;
          }));
          return async () => {
            await Promise.all(held.map(async (s) => {
              await endStream(s);
              await s.readAll();
            }));
          };
        },
        close: () => c.close(),
      };
    },
    stop: () => r.stop(),
  };
}

/**
 * RAW_OPEN: the runtime's QUIC API with streams kept open: a call takes an idle stream (or opens
 * one when none is idle), echoes its 64 B on it and gives it back, one call per stream at a time.
 * The stack's own cost of a message on an open stream: the second ceiling, for stream reuse.
 */
function rawOpen(r: RawImpl): Impl {
  return variant("rawOpen", async () => {
    const c: RawClient = await r.connect();
    const idle: RawStream[] = [];
    return {
      async call(req) {
        const s = idle.pop() ?? (await c.open());
        await send(s, req);
        const n = await s.readN(req.length);
        idle.push(s);
        return n;
      },
      // On the calls' connection, its idle streams open: the stack's cost of streaming beside
      // the streams a reuse pool keeps (compared with OURS's pooled connection).
      async serverStream(count, size) {
        const s = await c.open();
        await send(s, genRequest(count, size));
        await endStream(s);
        return await readMessages(s, size);
      },
      hold: () => Promise.reject(new Error("per-call only")),
      async close() {
        await Promise.all(idle.splice(0).map(async (s) => {
          await endStream(s);
          await s.readAll();
        }));
        await c.close();
      },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// GRPC: @grpc/grpc-js, plaintext, raw Buffer serializers

const ident = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const method = (name: string, responseStream: boolean) => ({
  path: `/bench.Echo/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: ident,
  requestDeserialize: ident,
  responseSerialize: ident,
  responseDeserialize: ident,
});
const SERVICE: grpc.ServiceDefinition = {
  Echo: method("Echo", false),
  Gen: method("Gen", true),
  Hold: method("Hold", true),
};

async function grpcImpl(): Promise<Impl> {
  const server = new grpc.Server();
  const held = new Set<Any>();
  server.addService(SERVICE, {
    Echo: (call: Any, cb: Any) => cb(null, call.request),
    Gen: async (call: Any) => {
      const req: Buffer = call.request;
      const count = Math.min(req.readUInt32BE(0), 10_000_000);
      const msg = Buffer.from(pattern(Math.min(req.readUInt32BE(4), 1 << 20)));
      let cancelled = false;
      call.on("cancelled", () => (cancelled = true));
      for (let i = 0; i < count && !cancelled; i++) {
        if (!call.write(msg)) await new Promise((r) => call.once("drain", r));
      }
      call.end();
    },
    Hold: (call: Any) => {
      held.add(call);
      call.on("cancelled", () => held.delete(call));
      call.write(Buffer.from(PING));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${HOST}:0`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)))
  );
  const target = `${HOST}:${port}`;
  return {
    name: "grpc",
    async connect() {
      const client = new grpc.Client(target, grpc.credentials.createInsecure(), GRPC_EXTRA);
      await new Promise<void>((resolve, reject) =>
        client.waitForReady(Date.now() + 5000, (e) => (e ? reject(e) : resolve()))
      );
      const P_ECHO = SERVICE.Echo;
      return {
        call(req) {
          return new Promise<number>((resolve, reject) =>
            client.makeUnaryRequest<Uint8Array, Buffer>(
              P_ECHO.path,
              ident,
              ident,
              req,
              (e, res) => (e ? reject(e) : resolve(res!.length)),
            )
          );
        },
        serverStream(count, size) {
          return new Promise<number>((resolve, reject) => {
            const call = client.makeServerStreamRequest<Uint8Array, Buffer>(
              SERVICE.Gen.path,
              ident,
              ident,
              u32pair(count, size),
            );
            let got = 0;
            call.on("data", (m: Buffer) => {
              if (m.length === size) got++;
            });
            call.on("error", reject);
            call.on("end", () => resolve(got));
          });
        },
        async hold(count) {
          const calls = await Promise.all(Array.from({ length: count }, () =>
            new Promise<Any>((resolve, reject) => {
              const call = client.makeServerStreamRequest<Uint8Array, Buffer>(SERVICE.Hold.path, ident, ident, PING);
              call.once("data", () => resolve(call));
              call.on("error", (e: Any) => {
                if (e?.code !== grpc.status.CANCELLED) reject(e);
              });
            })));
          return async () => {
            await Promise.all(calls.map((call: Any) =>
              new Promise<void>((resolve) => {
                call.on("status", () => resolve());
                call.cancel();
              })
            ));
          };
        },
        close() {
          client.close();
          return Promise.resolve();
        },
      };
    },
    async stop() {
      for (const c of held) {
        try {
          c.end();
        } catch { /* gone */ }
      }
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      server.forceShutdown();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Metrics: the same loops for every implementation

/** Sequential 64 B calls; µs each after warm-up. */
async function unary(c: Conn, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = now();
    const got = await c.call(PING);
    const dt = now() - t;
    if (got !== P.payload) throw new Error(`echo returned ${got} bytes`);
    out.push(dt * 1000);
  }
  return out;
}

/** Sequential calls per implementation in each turn of the interleaved unary step. */
const UNARY_BATCH = 100;

/**
 * Unary latency, the implementations interleaved: a connection each, `P.unaryWarmup` calls on
 * each, then `UNARY_BATCH` timed calls of each in turn (order rotated every pass) until each has
 * `P.unary × P.rounds`, pooled. Drift of the machine then hits every implementation alike, as in
 * the streaming step; the ratios are what the targets compare.
 */
async function unaryInterleaved(impls: Impl[]): Promise<void> {
  const lanes: { name: Name; c: Conn }[] = [];
  const t0 = now();
  try {
    for (const impl of impls) {
      await step(impl.name, "unary", async () => {
        const c = await impl.connect();
        lanes.push({ name: impl.name, c });
        await unary(c, P.unaryWarmup);
      });
    }
    const passes = Math.ceil((P.unary * P.rounds) / UNARY_BATCH);
    const failed = new Set<Name>();
    for (let pass = 0; pass < passes; pass++) {
      for (let j = 0; j < lanes.length; j++) {
        const l = lanes[(j + pass) % lanes.length];
        if (failed.has(l.name)) continue;
        try {
          add(l.name, "unary", await within(unary(l.c, UNARY_BATCH), P.metricTimeoutMs, `${l.name} unary`));
        } catch (e) {
          failed.add(l.name);
          report.errors.push(`${l.name} unary: ${(e as Error)?.message ?? e}`);
        }
      }
    }
  } finally {
    for (const l of lanes) await within(l.c.close(), 5000, `${l.name} close`).catch((e) => report.errors.push(String(e?.message ?? e)));
  }
  report.stepMs["unary (interleaved)"] = Math.round(now() - t0);
  gcNow();
}

/** `total` calls, `P.inFlight` at a time on one connection; requests/s. */
async function throughput(c: Conn, total: number): Promise<number> {
  let issued = 0;
  let bad = 0;
  const t = now();
  await Promise.all(Array.from({ length: P.inFlight }, async () => {
    while (issued < total) {
      issued++;
      if ((await c.call(PING)) !== P.payload) bad++;
    }
  }));
  const dt = now() - t;
  if (bad) throw new Error(`${bad} echoes came back wrong`);
  return total / (dt / 1000);
}

/**
 * Server streaming, the implementations interleaved: each gets its connections, streams run on
 * each before any is measured, then one measured stream per connection in turn (the order
 * rotated every pass), `P.streamRuns` passes. Machine drift, large on a shared 2-core VM
 * (the same code measured 0.6× to 1.05× raw in blocks of one implementation at a time), then
 * hits every implementation alike. Lanes:
 * - `stream`: a connection of its own, the same for every implementation (not the per-call-only
 *   variants): one stream's throughput, nothing else on the connection;
 * - `streamAfterCalls` (OURS and RAW OPEN): a connection after 64 calls in flight, so it holds
 *   64 idle request streams (OURS's pool; RAW OPEN's kept streams), each with a read pending in
 *   the stack.
 */
async function streamingInterleaved(impls: Impl[]): Promise<void> {
  const lanes: { name: Name; key: string; label: string; c: Conn }[] = [];
  try {
    for (const impl of impls) {
      const name = impl.name;
      if (!PER_CALL_ONLY.has(name)) {
        await step(name, "server streaming", async () => {
          lanes.push({ name, key: "stream", label: "server streaming", c: await impl.connect() });
        });
      }
      if (name === "ours" || name === "rawOpen") {
        await step(name, "server streaming after calls", async () => {
          const c = await impl.connect();
          lanes.push({ name, key: "streamAfterCalls", label: "server streaming after calls", c });
          await throughput(c, P.throughputWarmup); // 64 in flight: leaves 64 idle request streams
        });
      }
    }
    for (const l of lanes) {
      await step(l.name, l.label, async () => {
        for (let i = 0; i < P.streamWarmupRuns; i++) await l.c.serverStream(P.streamMessages, P.streamSize);
      });
    }
    for (let pass = 0; pass < P.streamRuns; pass++) {
      for (let j = 0; j < lanes.length; j++) {
        const l = lanes[(j + pass) % lanes.length];
        await step(l.name, l.label, async () => add(l.name, l.key, [await streaming(l.c)]));
      }
    }
  } finally {
    for (const l of lanes) await within(l.c.close(), 5000, `${l.name} close`).catch((e) => report.errors.push(String(e?.message ?? e)));
  }
}

/** One server stream of `P.streamMessages` × 1 KiB; messages/s. */
async function streaming(c: Conn): Promise<number> {
  const t = now();
  const got = await c.serverStream(P.streamMessages, P.streamSize);
  const dt = now() - t;
  if (got !== P.streamMessages) throw new Error(`server stream delivered ${got} of ${P.streamMessages} messages`);
  return got / (dt / 1000);
}

/** Connect (ready to call) and close, `P.connects` times; ms each (close untimed). */
async function connects(impl: Impl): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < P.connectWarmup + P.connects; i++) {
    const t = now();
    const c = await impl.connect();
    const dt = now() - t;
    await within(c.close(), 5000, "close after connect");
    if (i >= P.connectWarmup) out.push(dt);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Memory per 1,000 open streams: one child process of this script per implementation

function gcNow(): void {
  if (G.Bun) G.Bun.gc(true);
  else G.gc?.();
}
function memory(): { rss: number; heap: number } {
  const m = RUNTIME === "deno" ? G.Deno.memoryUsage() : G.process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}
async function settle(): Promise<{ rss: number; heap: number }> {
  for (let i = 0; i < 3; i++) {
    gcNow();
    await new Promise((r) => setTimeout(r, 30));
  }
  return memory();
}

/**
 * The child's work: a warm-up on a connection of its own (code paths, the stacks' lazy
 * allocations), then a fresh connection, a baseline, and `P.openStreams` streams held open;
 * MB per 1,000. A fresh connection, because Bun's stack (ngtcp2) announces the stream credit of
 * closed streams only once half the window (512 of 1024) has been returned: after a warm-up of
 * 200 streams, 1,000 more would stall at 823 on the same connection.
 */
async function memChild(name: Name): Promise<void> {
  const certs = await createDevCertificates({ hosts: ["localhost", "127.0.0.1"] });
  const rawServer = () => (RUNTIME === "bun" ? bunRaw(certs) : Promise.resolve(denoRaw(certs)));
  const impl = name === "raw" ? raw(await rawServer()) : name === "grpc" ? await grpcImpl() : await ours(name as "ours");
  const out: Any = { name, gc: Boolean(G.Bun || G.gc) };
  let c: Conn | undefined;
  try {
    const w = await impl.connect();
    for (let i = 0; i < 2; i++) await within((await w.hold(Math.min(100, P.openStreams)))(), 20_000, "warm-up");
    await within(w.close(), 5000, "close warm-up");
    c = await impl.connect();
    const before = await settle();
    const release = await within(c.hold(P.openStreams), P.memTimeoutMs, `${name} hold`);
    const after = await settle();
    const per = 1000 / P.openStreams / 1e6;
    out.rssMB = Number(((after.rss - before.rss) * per).toFixed(2));
    out.heapMB = Number(((after.heap - before.heap) * per).toFixed(2));
    await within(release(), 20_000, `${name} release`);
  } catch (e) {
    out.error = String((e as Error)?.message ?? e);
  }
  if (c) await within(c.close(), 5000, "close").catch(noop);
  await within(impl.stop(), 10_000, "stop").catch(noop);
  console.log(JSON.stringify(out));
  exit(0);
}

function memInChild(name: Name): Promise<{ rssMB?: number; heapMB?: number; gc?: boolean; error?: string }> {
  return inChild({ BENCH_RPC_MEM: name }, `memory child for ${name}`, P.memTimeoutMs + 30_000);
}

/** Runs this script in a child process with `extra` in its environment; its last stdout line, parsed. */
async function inChild(extra: Record<string, string>, label: string, limitMs: number): Promise<Any> {
  const { spawn } = await import("node:child_process");
  const script = new URL(import.meta.url).pathname;
  const cmd = RUNTIME === "deno"
    ? [G.Deno.execPath(), "run", "--no-prompt", "--unstable-net", "-A", "--v8-flags=--expose-gc", script]
    : [G.process.execPath, script];
  return await new Promise((resolve, reject) => {
    const p = spawn(cmd[0], cmd.slice(1), {
      env: { ...(RUNTIME === "deno" ? G.Deno.env.toObject() : G.process.env), ...extra },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Uint8Array) => (out += String(d)));
    p.stderr.on("data", (d: Uint8Array) => (err += String(d)));
    const kill = setTimeout(() => p.kill("SIGKILL"), limitMs);
    p.on("error", reject);
    p.on("close", (code: number | null) => {
      clearTimeout(kill);
      const line = out.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(line));
      } catch {
        const why = err.split("\n").filter((l) => l.trim() && !/ExperimentalWarning|trace-warnings/.test(l)).slice(-3);
        reject(new Error(`${label} exited ${code} without a result: ${why.join(" | ")}`));
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Statistics and the run

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
const median = (xs: number[]) => pct(xs, 50);

const samples = Object.fromEntries(NAMES.map((x) => [x, {}])) as Record<Name, Record<string, number[]>>;
const add = (impl: Name, key: string, xs: number[]): void => {
  (samples[impl][key] ??= []).push(...xs);
};

/** Metric key → "lower" or "higher" is better. */
const BETTER: Record<string, "lower" | "higher"> = {
  unaryP50Us: "lower",
  unaryP99Us: "lower",
  reqPerSec: "higher",
  streamMsgPerSec: "higher",
  streamAfterCallsMsgPerSec: "higher",
  memRssMBPer1000: "lower",
  memHeapMBPer1000: "lower",
  connectMs: "lower",
};

/** Turns the pooled samples into the reported numbers (also used for a partial report). */
function finish(): void {
  const round = (x: number, d = 1) => Number(x.toFixed(d));
  for (const name of NAMES) {
    const s = samples[name];
    const r: Record<string, number> = report.results[name];
    if (s.unary?.length) {
      r.unaryP50Us = round(pct(s.unary, 50));
      r.unaryP99Us = round(pct(s.unary, 99));
    }
    if (s.rps?.length) r.reqPerSec = round(median(s.rps), 0);
    if (s.stream?.length) r.streamMsgPerSec = round(median(s.stream), 0);
    if (s.streamAfterCalls?.length) r.streamAfterCallsMsgPerSec = round(median(s.streamAfterCalls), 0);
    if (s.connect?.length) r.connectMs = round(median(s.connect), 2);
  }
  const our = report.results.ours;
  for (const [other, key] of [["raw", "oursOverRaw"], ["grpc", "oursOverGrpc"]] as const) {
    const o = report.results[other];
    for (const k of Object.keys(BETTER)) {
      if (our[k] !== undefined && o[k] !== undefined && o[k] !== 0) {
        report.ratios[key][k] = Number((our[k] / o[k]).toFixed(3));
      }
    }
  }
  for (const k of ["unaryP50Us", "unaryP99Us", "reqPerSec", "streamAfterCallsMsgPerSec"]) {
    const open = report.results.rawOpen[k];
    if (our[k] !== undefined && open) report.ratios.oursOverRawOpen[k] = Number((our[k] / open).toFixed(3));
    const fresh = report.results.fresh[k];
    const raw = report.results.raw[k];
    if (fresh !== undefined && raw) report.ratios.freshOverRaw[k] = Number((fresh / raw).toFixed(3));
  }
  const sec = report.results.secured;
  const traced = report.results.traced;
  const untraced = report.results.untraced;
  for (const k of ["unaryP50Us", "unaryP99Us", "reqPerSec"]) {
    if (sec[k] !== undefined && our[k] !== undefined && our[k] !== 0) report.ratios.securedOverOurs[k] = Number((sec[k] / our[k]).toFixed(3));
    // Both sides measured the same way (child processes with one server), only the SDK differs.
    if (traced[k] !== undefined && untraced[k] !== undefined && untraced[k] !== 0) {
      report.ratios.tracedOverOurs[k] = Number((traced[k] / untraced[k]).toFixed(3));
    }
  }
  report.better = BETTER;
  report.elapsedMs = Math.round(now() - started);
}

async function step(name: Name, label: string, fn: () => Promise<void>): Promise<void> {
  const t = now();
  try {
    await within(fn(), P.metricTimeoutMs, `${name} ${label}`);
  } catch (e) {
    report.errors.push(`${name} ${label}: ${(e as Error)?.message ?? e}`);
  }
  const key = `${name} ${label}`;
  report.stepMs[key] = Math.round((report.stepMs[key] ?? 0) + now() - t);
  gcNow();
}

async function measure(impl: Impl): Promise<void> {
  const name = impl.name;
  let c: Conn | undefined;
  try {
    await step(name, "connect", async () => {
      c = await impl.connect();
    });
    if (!c) return;
    const k = c;
    if (STEPS.has("throughput")) {
      await step(name, "throughput", async () => {
        await throughput(k, P.throughputWarmup);
        add(name, "rps", [await throughput(k, P.throughputCalls)]);
      });
    }
    if (PER_CALL_ONLY.has(name)) return; // only the per-call overhead is compared
    if (STEPS.has("connect")) await step(name, "cold connect", async () => add(name, "connect", await connects(impl)));
  } finally {
    if (c) await within(c.close(), 5000, `${name} close`).catch((e) => report.errors.push(String(e?.message ?? e)));
  }
}

async function main(): Promise<void> {
  const certs = await createDevCertificates({ hosts: ["localhost", "127.0.0.1"] });
  const oursImpl = await ours();
  const rawServer: RawImpl = RUNTIME === "bun" ? await bunRaw(certs) : denoRaw(certs);
  const impls: Impl[] = [
    oursImpl,
    raw(rawServer),
    await grpcImpl(),
    await ours("secured"),
    rawOpen(rawServer),
    // FRESH: OURS's server, a client with reuse turned off: one new stream per call (before issue 15).
    variant("fresh", () => oursImpl.connectWith!({ maxIdleRequestStreams: 0 })),
  ];
  const only = env("BENCH_RPC_ONLY"); // e.g. "ours,raw" while profiling
  const chosen = only ? impls.filter((i) => only.split(",").includes(i.name)) : impls;
  for (let round = 0; round < P.rounds; round++) {
    // Alternate the order so no implementation always runs on a warmer (or hotter) process.
    const order = round % 2 === 0 ? chosen : [...chosen].reverse();
    for (const impl of order) await measure(impl);
  }
  if (STEPS.has("unary")) await unaryInterleaved(chosen);
  if (STEPS.has("stream")) await streamingInterleaved(chosen);
  for (const impl of impls) {
    const t = now();
    await within(impl.stop(), 10_000, `${impl.name} stop`).catch((e) => report.errors.push(String(e?.message ?? e)));
    report.stepMs[`${impl.name} stop`] = Math.round(now() - t);
  }
  if (!only || only.split(",").includes("traced")) await otelPairs();
  if (env("BENCH_RPC_MEMORY") !== "0") {
    for (const impl of chosen) {
      if (PER_CALL_ONLY.has(impl.name)) continue;
      const t = now();
      try {
        const m = await memInChild(impl.name);
        if (m.error) throw new Error(m.error);
        if (!m.gc) report.errors.push(`${impl.name} memory: no GC available in the child; numbers are rough`);
        report.results[impl.name].memRssMBPer1000 = m.rssMB;
        report.results[impl.name].memHeapMBPer1000 = m.heapMB;
      } catch (e) {
        report.errors.push(`${impl.name} memory: ${(e as Error)?.message ?? e}`);
      }
      report.stepMs[`${impl.name} memory`] = Math.round(now() - t);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// OpenTelemetry: OURS with an SDK registered (TRACED) vs without (UNTRACED), each in a child
// process of its own. The SDK registration is global (tracer and meter providers, propagator,
// context manager): done in a child, it cannot reach the other implementations' measurements.

/** What the traced child's exporters saw: to check spans and histograms really were recorded. */
interface OtelSeen {
  spansExported: number;
  histogramCounts: Record<string, number>;
  calls: number;
}

/**
 * Registers an OpenTelemetry SDK the way an application would; `finish` flushes and reports.
 * BENCH_RPC_OTEL_SDK (comma list of traces, metrics, propagator, context; default all four)
 * registers only some parts, to see where the cost is.
 */
async function registerOtel(): Promise<{ finish(calls: number): Promise<OtelSeen> }> {
  const parts = new Set((env("BENCH_RPC_OTEL_SDK") ?? "traces,metrics,propagator,context").split(",").map((x) => x.trim()));
  const api = await import("@opentelemetry/api");
  const { AsyncLocalStorageContextManager } = await import("@opentelemetry/context-async-hooks");
  const { ExportResultCode, W3CTraceContextPropagator } = await import("@opentelemetry/core");
  const { BasicTracerProvider, BatchSpanProcessor } = await import("@opentelemetry/sdk-trace-base");
  const { MeterProvider, PeriodicExportingMetricReader } = await import("@opentelemetry/sdk-metrics");
  let spansExported = 0;
  const histogramCounts: Record<string, number> = {};
  const ok = { code: ExportResultCode.SUCCESS };
  // An exporter that drops what it gets (counting it): the SDK's work, without a collector's.
  const spanExporter = {
    export(spans: unknown[], done: (r: typeof ok) => void) {
      spansExported += spans.length;
      done(ok);
    },
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
  const metricExporter = {
    export(m: Any, done: (r: typeof ok) => void) {
      for (const sm of m.scopeMetrics ?? []) {
        for (const x of sm.metrics ?? []) {
          // Cumulative: the last export has the totals.
          const points: Any[] = x.dataPoints ?? [];
          if (!points.some((d) => typeof d.value?.count === "number")) continue; // not a histogram
          histogramCounts[x.descriptor.name] = points.reduce((a: number, d: Any) => a + d.value.count, 0);
        }
      }
      done(ok);
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  // Default batch settings (queue 2,048, batches of 512, every 5 s) and sampler (parent-based, always on).
  const spanProcessor = new BatchSpanProcessor(spanExporter as Any);
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [spanProcessor] });
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter as Any, exportIntervalMillis: 1000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  if (parts.has("context")) api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  if (parts.has("propagator")) api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  if (parts.has("traces")) api.trace.setGlobalTracerProvider(tracerProvider);
  if (parts.has("metrics")) api.metrics.setGlobalMeterProvider(meterProvider);
  return {
    async finish(calls) {
      await tracerProvider.forceFlush();
      await meterProvider.forceFlush();
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
      return { spansExported, histogramCounts, calls };
    },
  };
}

/** The child's work: OURS alone, one round of the per-call metrics, with or without the SDK. */
async function otelChild(name: "traced" | "untraced"): Promise<void> {
  const out: Any = { name };
  try {
    const sdk = name === "traced" ? await registerOtel() : undefined;
    const impl = await ours(name);
    await measure(impl);
    await within(impl.stop(), 10_000, `${name} stop`).catch((e) => report.errors.push(String(e?.message ?? e)));
    const s = samples[name];
    out.unary = (s.unary ?? []).map((x) => Math.round(x * 10) / 10);
    out.rps = s.rps ?? [];
    const calls = (STEPS.has("unary") ? P.unaryWarmup + P.unary : 0) +
      (STEPS.has("throughput") ? P.throughputWarmup + P.throughputCalls : 0);
    if (sdk) out.otel = await within(sdk.finish(calls), 10_000, "OTel flush");
  } catch (e) {
    report.errors.push(String((e as Error)?.stack ?? e));
  }
  out.errors = report.errors;
  out.stepMs = report.stepMs;
  console.log(JSON.stringify(out));
  exit(0);
}

/** `P.otelRounds` rounds of an untraced and a traced child, alternating which goes first. */
async function otelPairs(): Promise<void> {
  const seen: OtelSeen[] = [];
  for (let round = 0; round < P.otelRounds; round++) {
    const order: ("traced" | "untraced")[] = round % 2 === 0 ? ["untraced", "traced"] : ["traced", "untraced"];
    for (const name of order) {
      const t = now();
      try {
        const r = await inChild({ BENCH_RPC_OTEL: name }, `${name} child`, P.childTimeoutMs);
        for (const e of r.errors ?? []) report.errors.push(`${name} child: ${e}`);
        if (r.unary?.length) add(name, "unary", r.unary);
        if (r.rps?.length) add(name, "rps", r.rps);
        if (r.otel) seen.push(r.otel);
      } catch (e) {
        report.errors.push(`${name}: ${(e as Error)?.message ?? e}`);
      }
      const key = `${name} child`;
      report.stepMs[key] = Math.round((report.stepMs[key] ?? 0) + now() - t);
    }
  }
  if (seen.length) {
    const sum = (f: (o: OtelSeen) => number | undefined) => seen.reduce((a, o) => a + (f(o) ?? 0), 0);
    const calls = sum((o) => o.calls);
    const names = [...new Set(seen.flatMap((o) => Object.keys(o.histogramCounts)))];
    report.otel = {
      calls,
      spansExported: sum((o) => o.spansExported),
      // 2 (CLIENT + SERVER) unless the batch processor's queue overflowed and dropped some.
      spansPerCall: Number((sum((o) => o.spansExported) / calls).toFixed(3)),
      histogramCounts: Object.fromEntries(names.map((n) => [n, sum((o) => o.histogramCounts[n])])),
    };
  }
}

const OTEL_CHILD = env("BENCH_RPC_OTEL") as "traced" | "untraced" | undefined;
if (OTEL_CHILD) {
  unref(setTimeout(() => {
    console.log(JSON.stringify({ name: OTEL_CHILD, errors: ["OTel child timed out"] }));
    exit(3);
  }, P.childTimeoutMs - 10_000));
  await otelChild(OTEL_CHILD);
}

const MEM_CHILD = env("BENCH_RPC_MEM") as Name | undefined;
if (MEM_CHILD) {
  unref(setTimeout(() => {
    console.log(JSON.stringify({ name: MEM_CHILD, error: "memory child timed out" }));
    exit(3);
  }, P.memTimeoutMs + 20_000));
  await memChild(MEM_CHILD);
}

const watchdog = setTimeout(() => {
  report.errors.push(`watchdog: still running after ${P.watchdogMs} ms; results are partial`);
  finish();
  console.log(JSON.stringify(report));
  exit(3);
}, P.watchdogMs);

let code = 0;
try {
  await main();
} catch (e) {
  report.errors.push(`fatal: ${(e as Error)?.stack ?? e}`);
  code = 1;
}
clearTimeout(watchdog);
finish();
if (report.errors.length) code ||= 2;
console.log(JSON.stringify(report));
// grpc-js and the QUIC stacks may keep a handle or two; everything is closed, so leave.
exit(code);
