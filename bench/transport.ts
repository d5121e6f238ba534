// Transport benchmark: the runtime's QUIC stack used directly (RAW), the same through our
// adapter (OURS, `defaultTransport()`), and plain TCP on the same runtime (TCP, a reference).
// Client and server live in this one process on 127.0.0.1; QUIC uses TLS 1.3 with certificates
// from createDevCertificates() and ALPN "echostream/1". Prints one JSON line. Driven by
// bench/run.ts (`npm run bench`); also runs alone:
//
//   bun bench/transport.ts
//   deno run --unstable-net -A bench/transport.ts
//   node <bundle>/transport.js   (Node cannot run .ts: bench/run.ts bundles it with bundleForNode())
//
// Every loop is bounded in count; each metric has its own time limit and a global watchdog
// prints what was measured and exits non-zero if anything hangs.
//
// The server picks its behaviour from the first byte a stream carries: "E" echoes every chunk
// back, "S" counts the bytes and answers with the count (8 bytes) once the client ends the
// stream. The client-side loops are shared by all three implementations; each implementation
// only supplies open/write/end/read in its stack's own idiom (RAW: Bun `writeSync` + batched
// async iteration, Deno and Node (`@matrixai/quic`) web streams without awaiting each write;
// OURS: the Transport interface, awaiting each write as its contract asks).
//
// Node's stack is far slower (~1–2 ms per new-stream echo, a few MB/s bulk), so on Node the
// counts and sizes are smaller (see P); the report's params carry the values actually used.

import { defaultTransport } from "../src/transport/mod.ts";
import type { BidiStream, Connection, Transport } from "../src/transport/mod.ts";
import { createDevCertificates } from "../src/security/mod.ts";
import {
  ALPN,
  type Any,
  bunRaw,
  chunkReads,
  type Client,
  denoRaw,
  ECHO,
  endStream,
  HOST,
  type Impl,
  nodeRaw,
  noop,
  send,
  SINK,
  type Stream,
  take,
  u64,
} from "./_quic_raw.ts";
import { env, G, RUNTIME, VERSION } from "./_env.ts";

// ---------------------------------------------------------------------------------------------
// Parameters. Every count is fixed; BENCH_TRANSPORT_SCALE (0 < s ≤ 1) shrinks them for a quick run.

const SCALE = Math.min(1, Math.max(0.01, Number(env("BENCH_TRANSPORT_SCALE") ?? 1) || 1));
const n = (x: number) => Math.max(1, Math.round(x * SCALE));
const MiB = 1024 * 1024;
/** Node (`@matrixai/quic`) runs smaller counts and sizes so a run stays within a few minutes. */
const NODE = RUNTIME === "node";
const P = {
  rounds: Math.max(1, Math.min(8, Number(env("BENCH_TRANSPORT_ROUNDS") ?? 4) || 4)),
  payload: 64,
  oneStreamWarmup: n(NODE ? 30 : 300),
  oneStream: n(NODE ? 300 : 3000),
  newStreamWarmup: n(NODE ? 20 : 200),
  newStream: n(NODE ? 200 : 2000),
  bulkBytes: n(NODE ? 8 : 64) * MiB,
  bulkWarmupBytes: (NODE ? 2 : 8) * MiB,
  bulkChunk: 64 * 1024,
  bulkRuns: 2,
  echoBytes: n(NODE ? 4 : 16) * MiB,
  echoWarmupBytes: (NODE ? 1 : 4) * MiB,
  echoRuns: 2,
  concurrent: n(NODE ? 200 : 1000),
  concurrentRuns: 3,
  handshakes: n(20),
  handshakeWarmup: 2,
  metricTimeoutMs: 45_000,
  watchdogMs: Number(env("BENCH_TRANSPORT_WATCHDOG_MS") ?? 240_000),
};

const now = () => performance.now();

// ---------------------------------------------------------------------------------------------
// Watchdog and exit

const started = now();
const report: Any = {
  runtime: RUNTIME,
  version: VERSION,
  params: P,
  results: { raw: {}, ours: {}, tcp: {} },
  ratios: {},
  errors: [] as string[],
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

const watchdog = setTimeout(() => {
  report.errors.push(`watchdog: still running after ${P.watchdogMs} ms; results are partial`);
  finish();
  console.log(JSON.stringify(report));
  exit(3);
}, P.watchdogMs);

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
// TCP: node:net (Bun and Node) and Deno.listen / Deno.connect (Deno). The RAW QUIC
// implementations live in bench/_quic_raw.ts (shared with bench/rpc.ts).

/** A pull reader over a node:net socket's 'data' events. */
function netReader(sock: Any) {
  const queue: Uint8Array[] = [];
  let ended = false;
  let failed: Error | undefined;
  let wake: (() => void) | undefined;
  const kick = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  sock.on("data", (c: Uint8Array) => {
    queue.push(c);
    kick();
  });
  sock.on("end", () => {
    ended = true;
    kick();
  });
  sock.on("error", (e: Error) => {
    failed = e;
    kick();
  });
  return async function next(): Promise<Uint8Array | null> {
    while (queue.length === 0) {
      if (failed) throw failed;
      if (ended) return null;
      await new Promise<void>((r) => (wake = r));
    }
    return queue.shift()!;
  };
}

async function netTcp(): Promise<Impl> {
  const net: Any = await import("node:net");
  const socks = new Set<Any>();
  const server = net.createServer({ noDelay: true }, (sock: Any) => {
    socks.add(sock);
    sock.setNoDelay(true);
    let mode = 0;
    let count = 0;
    sock.on("data", (c: Uint8Array) => {
      if (mode === 0 && c.length > 0) mode = c[0];
      if (mode === SINK) count += c.length;
      else if (!sock.write(c)) {
        sock.pause();
        sock.once("drain", () => sock.resume());
      }
    });
    sock.on("end", () => (mode === SINK ? sock.end(u64(count)) : sock.end()));
    sock.on("error", noop);
    sock.on("close", () => socks.delete(sock));
  });
  await new Promise<void>((r) => server.listen(0, HOST, () => r()));
  const port = server.address().port;
  return {
    name: "tcp",
    multiStream: false,
    async connect() {
      const sock = net.connect({ host: HOST, port, noDelay: true });
      await new Promise<void>((res, rej) => {
        sock.once("connect", () => res());
        sock.once("error", rej);
      });
      sock.setNoDelay(true);
      const next = netReader(sock);
      let drained: Promise<void> | undefined;
      const stream: Stream = {
        write(c) {
          if (sock.write(c)) return;
          return (drained ??= new Promise<void>((r) =>
            sock.once("drain", () => {
              drained = undefined;
              r();
            })
          ));
        },
        end: () => {
          sock.end();
        },
        async readN(want, into) {
          let got = 0;
          while (got < want) {
            const c = await next();
            if (!c) throw new Error(`socket ended after ${got} of ${want} bytes`);
            take(into, got, c);
            got += c.length;
          }
          return got;
        },
        async readAll() {
          let got = 0;
          for (let c = await next(); c; c = await next()) got += c.length;
          return got;
        },
        abort: () => sock.destroy(),
      };
      let opened = false;
      return {
        open() {
          if (opened) throw new Error("a TCP connection carries one stream");
          opened = true;
          return Promise.resolve(stream);
        },
        async close() {
          if (sock.destroyed) return;
          const closed = new Promise<void>((r) => sock.once("close", () => r()));
          sock.destroy();
          await closed;
        },
      };
    },
    async stop() {
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function denoWriteAll(conn: Any, c: Uint8Array): Promise<void> {
  for (let off = 0; off < c.length;) off += await conn.write(off === 0 ? c : c.subarray(off));
}

async function serveDenoTcp(conn: Any): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  let mode = 0;
  let count = 0;
  try {
    conn.setNoDelay(true);
    for (let k = await conn.read(buf); k !== null; k = await conn.read(buf)) {
      if (mode === 0 && k > 0) mode = buf[0];
      if (mode === SINK) count += k;
      else await denoWriteAll(conn, buf.subarray(0, k));
    }
    if (mode === SINK) await denoWriteAll(conn, u64(count));
    await conn.closeWrite();
  } catch { /* peer gone */ }
  try {
    conn.close();
  } catch { /* closed */ }
}

function denoTcp(): Impl {
  const D = G.Deno;
  const listener = D.listen({ hostname: HOST, port: 0 });
  const conns = new Set<Any>();
  (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        serveDenoTcp(conn).finally(() => conns.delete(conn));
      }
    } catch { /* closed */ }
  })();
  const port = Number(listener.addr.port);
  return {
    name: "tcp",
    multiStream: false,
    async connect() {
      const conn = await D.connect({ hostname: HOST, port });
      conn.setNoDelay(true);
      const buf = new Uint8Array(64 * 1024);
      let closed = false;
      const stream: Stream = {
        write: (c) => denoWriteAll(conn, c),
        end: () => conn.closeWrite(),
        async readN(want, into) {
          let got = 0;
          while (got < want) {
            const k = await conn.read(buf);
            if (k === null) throw new Error(`socket ended after ${got} of ${want} bytes`);
            take(into, got, buf.subarray(0, k));
            got += k;
          }
          return got;
        },
        async readAll() {
          let got = 0;
          for (let k = await conn.read(buf); k !== null; k = await conn.read(buf)) got += k;
          return got;
        },
        abort: () => {
          if (!closed) conn.close();
          closed = true;
        },
      };
      let opened = false;
      return {
        open() {
          if (opened) throw new Error("a TCP connection carries one stream");
          opened = true;
          return Promise.resolve(stream);
        },
        close() {
          if (!closed) conn.close();
          closed = true;
          return Promise.resolve();
        },
      };
    },
    stop() {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      listener.close();
      return Promise.resolve();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// OURS: the Transport interface (any runtime)

function oursStream(s: BidiStream): Stream {
  const it = s[Symbol.asyncIterator]();
  return {
    write: (c) => s.write(c),
    end: () => s.end(),
    ...chunkReads(() => it.next()),
    abort: () => s.reset(1),
  };
}

async function serveOurs(s: BidiStream): Promise<void> {
  let mode = 0;
  let count = 0;
  try {
    for await (const c of s) {
      if (mode === 0 && c.length > 0) mode = c[0];
      if (mode === SINK) count += c.length;
      else await s.write(c);
    }
    if (mode === SINK) await s.write(u64(count));
    await s.end();
  } catch {
    s.reset(1);
  }
}

async function ours(certs: Any): Promise<Impl> {
  // BENCH_TRANSPORT_ADAPTER=/path/to/mod.ts measures a candidate adapter (a copy of
  // src/transport/ with changes) as OURS instead of the one in this tree.
  const alt = env("BENCH_TRANSPORT_ADAPTER");
  const t: Transport = alt ? await (await import(alt)).defaultTransport() : await defaultTransport();
  const listener = await t.listen(
    { host: HOST, port: 0, alpn: ALPN, tls: { cert: certs.cert, key: certs.key }, earlyData: true },
    (conn: Connection) => conn.handle({ bidi: (s) => void serveOurs(s) }),
  );
  const port = listener.address.port;
  return {
    name: "ours",
    multiStream: true,
    async connect(zeroRtt = false) {
      const c = await t.connect({ host: HOST, port, alpn: ALPN, tls: { ca: certs.ca }, zeroRtt });
      return {
        open: async () => oursStream(await c.openBidi()),
        close: () => c.close(),
        resumed: async () => (await c.handshake).resumed,
      };
    },
    firstEcho: true,
    // Node's adapter has no 0-RTT (it falls back to a full handshake): nothing to measure there.
    resumable: !NODE,
    stop: () => listener.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Metrics: the same client loops for every implementation

function payload(mode: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
  b[0] = mode;
  return b;
}
const PING = payload(ECHO, P.payload);

/** Byte-exact echo of `size` bytes on a fresh stream (a sanity check before timing anything). */
async function checkEcho(client: Client, size: number): Promise<void> {
  const data = payload(ECHO, size);
  const s = await client.open();
  const back = new Uint8Array(size);
  const reading = s.readN(size, back);
  for (let o = 0; o < size; o += P.bulkChunk) await send(s, data.subarray(o, o + P.bulkChunk));
  await reading;
  await endStream(s);
  await s.readAll();
  for (let i = 0; i < size; i++) if (back[i] !== data[i]) throw new Error(`echo differs at byte ${i}`);
}

/** 64 B ping-pong on one long-lived stream; µs per round trip. */
async function echoOneStream(client: Client): Promise<number[]> {
  const s = await client.open();
  const out: number[] = [];
  try {
    for (let i = 0; i < P.oneStreamWarmup + P.oneStream; i++) {
      const t = now();
      await send(s, PING);
      await s.readN(P.payload);
      if (i >= P.oneStreamWarmup) out.push((now() - t) * 1000);
    }
    await endStream(s);
    await s.readAll();
  } catch (e) {
    s.abort();
    throw e;
  }
  return out;
}

/** 64 B echo on a new bidirectional stream each time (request per stream); µs per echo. */
async function echoNewStream(client: Client): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < P.newStreamWarmup + P.newStream; i++) {
    const t = now();
    const s = await client.open();
    await send(s, PING);
    await endStream(s);
    const got = await s.readAll();
    if (got !== P.payload) throw new Error(`new-stream echo returned ${got} bytes`);
    if (i >= P.newStreamWarmup) out.push((now() - t) * 1000);
  }
  return out;
}

/** Sends `bytes` one way on one stream; the receiver counts them. MB/s (10^6 B/s). */
async function bulkOneWay(client: Client, bytes: number): Promise<number> {
  const chunk = payload(SINK, P.bulkChunk);
  const s = await client.open();
  const t = now();
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    const r = s.write(chunk);
    if (r) await r;
  }
  await endStream(s);
  const reply = new Uint8Array(8);
  await s.readN(8, reply);
  const dt = now() - t;
  const counted = Number(new DataView(reply.buffer).getBigUint64(0));
  if (counted !== bytes) throw new Error(`receiver counted ${counted} of ${bytes} bytes`);
  await s.readAll();
  return bytes / 1e6 / (dt / 1000);
}

/** Echoes `bytes` on one stream, writing and reading at once. MB/s of payload (one way). */
async function bulkEcho(client: Client, bytes: number): Promise<number> {
  const chunk = payload(ECHO, P.bulkChunk);
  const s = await client.open();
  const t = now();
  const reading = s.readN(bytes);
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    const r = s.write(chunk);
    if (r) await r;
  }
  await reading;
  const dt = now() - t;
  await endStream(s);
  await s.readAll();
  return bytes / 1e6 / (dt / 1000);
}

/** Opens `count` streams at once and echoes 64 B on each; ms until all are back. */
async function concurrentStreams(client: Client, count: number): Promise<number> {
  const t = now();
  await Promise.all(
    Array.from({ length: count }, async () => {
      const s = await client.open();
      await send(s, PING);
      await endStream(s);
      const got = await s.readAll();
      if (got !== P.payload) throw new Error(`concurrent echo returned ${got} bytes`);
    }),
  );
  return now() - t;
}

/** Connect until the handshake is done; ms each (connections closed in between, untimed). */
async function handshakes(impl: Impl): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < P.handshakeWarmup + P.handshakes; i++) {
    const t = now();
    const c = await impl.connect();
    const dt = now() - t;
    await within(c.close(), 5000, "close after handshake");
    if (i >= P.handshakeWarmup) out.push(dt);
  }
  return out;
}

/**
 * Time from connect() to the first 64 B echo's reply, with a full handshake or resuming with a
 * session ticket (0-RTT: the request travels as early data). ms each.
 */
async function firstEcho(impl: Impl, zeroRtt: boolean): Promise<number[]> {
  const out: number[] = [];
  let resumed = 0;
  for (let i = 0; i < P.handshakeWarmup + P.handshakes; i++) {
    const t = now();
    const c = await impl.connect(zeroRtt);
    const s = await c.open();
    await send(s, PING);
    await endStream(s);
    const got = await s.readAll();
    const dt = now() - t;
    if (got !== P.payload) throw new Error(`first echo returned ${got} bytes`);
    const wasResumed = zeroRtt && (await c.resumed?.());
    await within(c.close(), 5000, "close after first echo");
    await new Promise((r) => setTimeout(r, 20)); // the server's ticket arrives after the handshake
    if (i < P.handshakeWarmup) continue;
    if (wasResumed) resumed++;
    // Time only what the metric names: resumed connections when asking for 0-RTT.
    if (!zeroRtt || wasResumed) out.push(dt);
  }
  if (zeroRtt) add(impl.name, "resumedShare", [resumed / P.handshakes]);
  if (zeroRtt && resumed === 0) throw new Error("no connection resumed");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Statistics and the run

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
const median = (xs: number[]) => pct(xs, 50);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

type Name = "raw" | "ours" | "tcp";
/** Pooled raw samples per implementation and metric. */
const samples: Record<Name, Record<string, number[]>> = { raw: {}, ours: {}, tcp: {} };
const add = (impl: Name, key: string, xs: number[]): void => {
  (samples[impl][key] ??= []).push(...xs);
};

/** Turns the pooled samples into the reported numbers (also used for a partial report). */
function finish(): void {
  for (const name of ["raw", "ours", "tcp"] as Name[]) {
    const s = samples[name];
    const r: Record<string, number> = {};
    const round = (x: number, d = 1) => Number(x.toFixed(d));
    if (s.oneStream?.length) {
      r.echoOneStreamP50Us = round(pct(s.oneStream, 50));
      r.echoOneStreamP99Us = round(pct(s.oneStream, 99));
      r.echoOneStreamMeanUs = round(mean(s.oneStream));
    }
    if (s.newStream?.length) {
      r.echoNewStreamP50Us = round(pct(s.newStream, 50));
      r.echoNewStreamP99Us = round(pct(s.newStream, 99));
      r.echoNewStreamMeanUs = round(mean(s.newStream));
    }
    if (s.bulk?.length) r.bulkOneWayMBps = round(median(s.bulk));
    if (s.echo?.length) r.bulkEchoMBps = round(median(s.echo));
    if (s.concurrent?.length) r.streams1000Ms = round(median(s.concurrent));
    if (s.handshake?.length) r.handshakeMs = round(median(s.handshake), 2);
    if (s.firstEchoFresh?.length) r.firstEchoFreshMs = round(median(s.firstEchoFresh), 2);
    if (s.firstEchoResumed?.length) r.firstEchoResumedMs = round(median(s.firstEchoResumed), 2);
    if (s.resumedShare?.length) r.resumedPct = round(100 * mean(s.resumedShare), 0);
    report.results[name] = r;
  }
  const raw = report.results.raw;
  const our = report.results.ours;
  for (const k of Object.keys(raw)) {
    if (our[k] !== undefined && raw[k] > 0) report.ratios[k] = Number((our[k] / raw[k]).toFixed(3));
  }
  report.elapsedMs = Math.round(now() - started);
}

async function step(impl: Impl, label: string, fn: () => Promise<void>): Promise<void> {
  try {
    await within(fn(), P.metricTimeoutMs, `${impl.name} ${label}`);
  } catch (e) {
    report.errors.push(`${impl.name} ${label}: ${(e as Error)?.message ?? e}`);
  }
  G.Bun?.gc?.(true);
}

async function measure(impl: Impl): Promise<void> {
  const name = impl.name;
  let client: Client | undefined;
  try {
    await step(impl, "connect", async () => {
      client = await impl.connect();
    });
    if (!client) return;
    const c = client;
    if (impl.multiStream) {
      await step(impl, "check", () => checkEcho(c, 1 << 20));
      await step(impl, "echo one stream", async () => add(name, "oneStream", await echoOneStream(c)));
      await step(impl, "echo new stream", async () => add(name, "newStream", await echoNewStream(c)));
      await step(impl, "bulk one way", async () => {
        await bulkOneWay(c, P.bulkWarmupBytes); // warm-up
        for (let i = 0; i < P.bulkRuns; i++) add(name, "bulk", [await bulkOneWay(c, P.bulkBytes)]);
      });
      await step(impl, "bulk echo", async () => {
        await bulkEcho(c, P.echoWarmupBytes); // warm-up
        for (let i = 0; i < P.echoRuns; i++) add(name, "echo", [await bulkEcho(c, P.echoBytes)]);
      });
      await step(impl, `${P.concurrent} streams`, async () => {
        await concurrentStreams(c, Math.min(100, P.concurrent)); // warm-up
        for (let i = 0; i < P.concurrentRuns; i++) add(name, "concurrent", [await concurrentStreams(c, P.concurrent)]);
      });
    } else {
      // TCP: one connection is one stream, so each metric gets its own connection.
      await step(impl, "check", () => checkEcho(c, 1 << 20));
      const fresh = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
        const k = await impl.connect();
        try {
          return await fn(k);
        } finally {
          await k.close();
        }
      };
      await step(impl, "echo one stream", async () => add(name, "oneStream", await fresh(echoOneStream)));
      await step(impl, "bulk one way", async () => {
        await fresh((k) => bulkOneWay(k, P.bulkWarmupBytes));
        for (let i = 0; i < P.bulkRuns; i++) add(name, "bulk", [await fresh((k) => bulkOneWay(k, P.bulkBytes))]);
      });
      await step(impl, "bulk echo", async () => {
        await fresh((k) => bulkEcho(k, P.echoWarmupBytes));
        for (let i = 0; i < P.echoRuns; i++) add(name, "echo", [await fresh((k) => bulkEcho(k, P.echoBytes))]);
      });
    }
    await step(impl, "handshake", async () => add(name, "handshake", await handshakes(impl)));
    if (impl.firstEcho) {
      await step(impl, "first echo, fresh", async () => add(name, "firstEchoFresh", await firstEcho(impl, false)));
    }
    if (impl.resumable) {
      await step(impl, "first echo, 0-RTT", async () => add(name, "firstEchoResumed", await firstEcho(impl, true)));
    }
  } finally {
    if (client) {
      await within(client.close(), 5000, `${name} close`).catch((e) => report.errors.push(String(e?.message ?? e)));
    }
  }
}

async function main(): Promise<void> {
  const certs = await createDevCertificates({ hosts: ["localhost", "127.0.0.1"] });
  const impls: Impl[] = RUNTIME === "bun"
    ? [await bunRaw(certs), await ours(certs), await netTcp()]
    : RUNTIME === "deno"
    ? [denoRaw(certs), await ours(certs), denoTcp()]
    : [await nodeRaw(certs), await ours(certs), await netTcp()];
  if (impls.length === 0) throw new Error(`no QUIC stack to benchmark on ${RUNTIME}`);
  const only = env("BENCH_TRANSPORT_ONLY"); // e.g. "raw,ours" while profiling
  const chosen = only ? impls.filter((i) => only.split(",").includes(i.name)) : impls;
  for (let round = 0; round < P.rounds; round++) {
    // Alternate the order of RAW and OURS so neither always runs on a warmer (or hotter) process.
    const order = round % 2 === 0 ? chosen : [...chosen].reverse();
    for (const impl of order) await measure(impl);
  }
  for (const impl of impls) {
    await within(impl.stop(), 10_000, `${impl.name} stop`).catch((e) => report.errors.push(String(e?.message ?? e)));
  }
}

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
if (code) exit(code);
// Everything is closed, so the process should end by itself; if a stack keeps a handle open,
// say so and leave anyway (an unref'd timer does not keep the process alive).
unref(setTimeout(() => {
  console.error("transport bench: a handle stayed open after everything was closed; exiting");
  exit(0);
}, 5000));
