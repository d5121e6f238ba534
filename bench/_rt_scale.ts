// Real-time benchmark, scale part (a child of bench/realtime.ts; server and client each in their
// own process, Bun or Deno): N streams on one connection, each carrying `size`-byte frames at
// `fps`, paced in 20 staggered groups so sends spread over the frame period.
//
//   ours: EchoStream time-synced streams (`withTimeSync()`, default adaptive latency; reliable
//         QUIC streams, or datagrams with `unreliable`); the server takes released frames with
//         `forEachAligned()` (RT_SCALE_RECV=await: a `recvAligned()` loop): late %, release
//         error from each stream's `stats()`, and transit = `arrivedAt` − sender timestamp of
//         every frame (the same measure as raw's), pooled and per stream.
//   raw:  Bun's node:quic used directly, one bidirectional stream per sender; each frame starts
//         with the send time (f64, ms) and the server measures transit = arrival − send time.
//   grpc: @grpc/grpc-js, one bidi-streaming call per sender on one HTTP/2 connection; same
//         frames and transit measurement as raw.
//
// Protocol with the orchestrator: the server prints {"ready":true,"address","ca"}; the client
// (given them) connects, opens the streams, starts sending, prints {"phase":"start"} after the
// warm-up and {"phase":"stop",...its own numbers} after the measured window; the orchestrator
// passes "start"/"stop" to the server's stdin, and the server prints its numbers at "stop".
//
// Pacing is an absolute schedule: tick k of group g is due at t0 + k·period/20 (performance.now()
// time), and every frame is stamped with that scheduled time (on the system clock, which is
// also `stream.now()` of a default EchoStream peer), not with the time it went out: a sender
// that misses its ticks shows up as transit and late frames, as it would for a user. Two windows
// are reported: the warmed-up one (between "start" and "stop") and "from the first frame" (the
// whole run, warm-up included: late %, transit and send → release from the first frame on).

import { Buffer } from "node:buffer";
import process from "node:process";
import {
  type Any,
  config,
  CpuMeter,
  emit,
  exit,
  Hist,
  PerStreamTransit,
  mean,
  noop,
  pct,
  r3,
  rssMB,
  RUNTIME,
  sleep,
  stdinLines,
  sys,
  VERSION,
  watchdog,
  within,
} from "./_rt_util.ts";

interface Cfg {
  role: "server" | "client";
  impl: "ours" | "raw" | "grpc";
  n: number;
  fps: number;
  size: number;
  warmupS: number;
  measureS: number;
  unreliable?: boolean;
  address?: string;
  ca?: string;
  /** Streams opened concurrently while setting up. */
  openBatch?: number;
}

const c = config<Cfg>();
/**
 * How OURS's server takes frames: `forEachAligned` (each, the default: the release calls it) or a
 * `recvAligned()` loop (await). RT_SCALE_RECV=await selects the loop.
 */
const RECV = process.env.RT_SCALE_RECV === "await" ? "await" : "each";
const GROUPS = 20;
const ALPN = "echostream/1";
watchdog((c.warmupS + c.measureS + 240) * 1000, `scale ${c.role} ${c.impl} n=${c.n}`);

// ---------------------------------------------------------------------------------------------
// Server side

interface ServerImpl {
  address: string;
  ca: string;
  /** Counters at this instant (cumulative). */
  counters(): { frames: number; late: number; lost: number; received: number };
  /** Transit histogram (arrival − send time) filled while `measuring`. */
  transit?: Hist;
  /** Transit histogram from the first frame on. */
  transitAll?: Hist;
  /** Transit per stream while `measuring` (each stream's own p99, then over streams). */
  perStreamTransit: PerStreamTransit;
  /** Send → release histogram (ours) from the first frame on. */
  e2eAll?: Hist;
  /** Per-stream latency and transit p99 every second (ours, a sample of streams), and that second's transit p99. */
  trace?: [number, number, number, number, number][];
  /** Release error histogram (ours) filled while `measuring`. */
  release?: Hist;
  /** Send → release histogram (ours) filled while `measuring`. */
  e2e?: Hist;
  /** Per-stream figures at the end (ours). */
  perStream?(): Record<string, unknown>;
  streams(): number;
  stop(): Promise<void>;
}

let measuring = false;

async function oursServer(): Promise<ServerImpl> {
  const { RpcServer, streamHandler } = await import("../mod.ts");
  const release = new Hist();
  const e2e = new Hist();
  const e2eAll = new Hist();
  const transit = new Hist();
  const transitAll = new Hist();
  const transitSecond = new Hist(); // this second's frames, for the trace
  const perStreamTransit = new PerStreamTransit();
  const open = new Set<Any>();
  let frames = 0;
  const server = RpcServer.builder()
    .bind("127.0.0.1:0")
    .log(noop)
    .onError(noop)
    .maxStreams(c.n + 64)
    .streamHandler(streamHandler("conf", async (_ctx, s: Any) => {
      open.add(s);
      const rec = perStreamTransit.stream();
      const take = (f: Any) => {
        frames++;
        const t = s.now();
        // Send → release and arrival − send: both processes run on the system clock of this
        // machine (the stream's clock here), so no clock model is involved.
        const x = f.arrivedAt - f.timestamp;
        transitAll.add(x);
        transitSecond.add(x);
        e2eAll.add(t - f.timestamp);
        if (measuring) {
          transit.add(x);
          rec(x);
          release.add(t - f.alignedTime);
          e2e.add(t - f.timestamp);
        }
      };
      try {
        if (RECV === "each") await s.forEachAligned(take);
        else for (let f = await s.recvAligned(); f; f = await s.recvAligned()) take(f);
      } catch { /* the client went away */ }
    }))
    .build();
  await server.start();
  // Every second: mean playout latency D, median transit p99 and late % in that second, over
  // (up to) 200 streams, and the p99 of arrival − send time over every frame of that second.
  const trace: [number, number, number, number, number][] = [];
  const tt = performance.now();
  let lastLate = 0, lastReceived = 0;
  const traceTimer = setInterval(() => {
    if (open.size === 0) return;
    const D: number[] = [];
    const p99: number[] = [];
    let k = 0, late = 0, received = 0;
    const step = Math.max(1, Math.floor(open.size / 200));
    for (const s of open) {
      if (k++ % step) continue;
      const st = s.stats();
      D.push(st.latencyMs);
      if (Number.isFinite(st.transitP99Ms)) p99.push(st.transitP99Ms); // NaN: no frame yet
      late += st.late;
      received += st.received;
    }
    const latePct = (100 * (late - lastLate)) / Math.max(1, received - lastReceived);
    lastLate = late;
    lastReceived = received;
    trace.push([
      Math.round((performance.now() - tt) / 1000),
      r3(mean(D), 1),
      r3(pct(p99, 0.5), 1),
      r3(latePct, 2),
      r3(transitSecond.quantile(0.99), 1),
    ]);
    transitSecond.reset();
  }, 1000);
  return {
    address: server.address,
    ca: server.trust.ca as string,
    release,
    e2e,
    e2eAll,
    transit,
    transitAll,
    perStreamTransit,
    trace,
    counters() {
      let late = 0, lost = 0, received = 0;
      for (const s of open) {
        const st = s.stats();
        late += st.late;
        lost += st.lost;
        received += st.received;
      }
      return { frames, late, lost, received };
    },
    perStream() {
      const p99: number[] = [];
      const D: number[] = [];
      let heldForSync = 0;
      for (const s of open) {
        const st = s.stats();
        if (Number.isFinite(st.transitP99Ms)) p99.push(st.transitP99Ms); // NaN: no frame yet
        D.push(st.latencyMs);
        heldForSync += st.heldForSync;
      }
      return {
        heldForSync,
        transitP99MsMedianOfStreams: r3(pct(p99, 0.5)),
        transitP99MsP90OfStreams: r3(pct(p99, 0.9)),
        transitP99MsMaxOfStreams: r3(Math.max(...p99)),
        streamsWithoutFrames: open.size - p99.length,
        latencyMsMean: r3(mean(D)),
        latencyMsMax: r3(Math.max(...D)),
      };
    },
    streams: () => open.size,
    stop: () => {
      clearInterval(traceTimer);
      return server.close({ graceMs: 100 });
    },
  };
}

/**
 * Transit of frames that carry their send time (raw and grpc-js): arrival − send time pooled from
 * the first frame, and pooled and per stream while `measuring`. One per server.
 */
class SentTimeTransit {
  readonly transit = new Hist();
  readonly transitAll = new Hist();
  readonly perStreamTransit = new PerStreamTransit();
  frames = 0;

  /** A recorder for one stream, called with each frame's send time. */
  stream(): (sentAt: number) => void {
    const rec = this.perStreamTransit.stream();
    return (sentAt) => {
      this.frames++;
      const x = sys() - sentAt;
      this.transitAll.add(x);
      if (measuring) {
        this.transit.add(x);
        rec(x);
      }
    };
  }

  /** The server's figures for `ServerImpl` (no jitter buffer: nothing late or lost). */
  figures(): Pick<ServerImpl, "transit" | "transitAll" | "perStreamTransit" | "counters"> {
    return {
      transit: this.transit,
      transitAll: this.transitAll,
      perStreamTransit: this.perStreamTransit,
      counters: () => ({ frames: this.frames, late: 0, lost: 0, received: this.frames }),
    };
  }
}

/** Counts `size`-byte frames across chunks; each starts with the f64 send time. */
function frameParser(size: number, onFrame: (sentAt: number) => void) {
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  let have = 0;
  return (chunk: Uint8Array) => {
    let i = 0;
    while (i < chunk.length) {
      const k = Math.min(size - have, chunk.length - i);
      if (have < 8) buf.set(chunk.subarray(i, i + Math.min(k, 8 - have)), have);
      have += k;
      i += k;
      if (have === size) {
        onFrame(view.getFloat64(0));
        have = 0;
      }
    }
  };
}

/** Deno's QUIC API used directly (Deno.QuicEndpoint), the same measurement as Bun's raw. */
async function rawDenoServer(): Promise<ServerImpl> {
  const D = (globalThis as Any).Deno;
  const { createDevCertificates } = await import("../src/security/mod.ts");
  const certs = await createDevCertificates({ hosts: ["localhost", "127.0.0.1"] });
  let streams = 0;
  const conns = new Set<Any>();
  const tt = new SentTimeTransit();
  const ep = new D.QuicEndpoint({ hostname: "127.0.0.1", port: 0 });
  const listener = ep.listen({
    alpnProtocols: [ALPN],
    cert: certs.cert,
    key: certs.key,
    maxConcurrentBidirectionalStreams: c.n + 64,
    maxConcurrentUnidirectionalStreams: 64,
    maxIdleTimeout: 30000,
  });
  (async () => {
    try {
      for await (const incoming of listener) {
        const conn = await incoming.accept();
        conns.add(conn);
        (async () => {
          const r = conn.incomingBidirectionalStreams.getReader();
          try {
            while (true) {
              const { value, done } = await r.read();
              if (done) return;
              streams++;
              const parse = frameParser(c.size, tt.stream());
              (async () => {
                const sr = value.readable.getReader();
                try {
                  while (true) {
                    const x = await sr.read();
                    if (x.done) return;
                    parse(x.value);
                  }
                } catch { /* reset */ }
              })();
            }
          } catch { /* closed */ }
        })();
      }
    } catch { /* stopped */ }
  })();
  return {
    address: `127.0.0.1:${Number(ep.addr.port)}`,
    ca: certs.ca,
    ...tt.figures(),
    streams: () => streams,
    stop() {
      for (const conn of conns) {
        try {
          conn.close({ closeCode: 0, reason: "" });
        } catch { /* closed */ }
      }
      try {
        ep.close();
      } catch { /* closed */ }
      return Promise.resolve();
    },
  };
}

async function rawServer(): Promise<ServerImpl> {
  if (RUNTIME === "deno") return await rawDenoServer();
  const name = "node:quic";
  const q: Any = await import(name);
  const { createPrivateKey } = await import("node:crypto");
  const { createDevCertificates } = await import("../src/security/mod.ts");
  const certs = await createDevCertificates({ hosts: ["localhost", "127.0.0.1"] });
  const te = new TextEncoder();
  let streams = 0;
  const sessions = new Set<Any>();
  const tt = new SentTimeTransit();
  const ep = await q.listen((session: Any) => {
    session.closed.catch(noop);
    sessions.add(session);
    session.onstream = async (st: Any) => {
      st.closed?.catch?.(noop);
      streams++;
      const parse = frameParser(c.size, tt.stream());
      try {
        for await (const batch of st) for (const chunk of batch as Uint8Array[]) parse(chunk);
      } catch { /* reset */ }
    };
  }, {
    alpn: [ALPN],
    sni: { "*": { keys: [createPrivateKey(certs.key)], certs: [te.encode(certs.cert)] } },
    endpoint: { address: "127.0.0.1:0" },
    enableEarlyData: false,
    transportParams: {
      initialMaxStreamsBidi: c.n + 64,
      initialMaxStreamsUni: 64,
      maxIdleTimeout: 32,
      maxDatagramFrameSize: 1350,
    },
  });
  return {
    address: `127.0.0.1:${Number(ep.address.port)}`,
    ca: certs.ca,
    ...tt.figures(),
    streams: () => streams,
    async stop() {
      await Promise.all([...sessions].map((s) => s.close({ code: 0n, type: "application", reason: "" }).catch(noop)));
      ep.destroy?.();
    },
  };
}

const ident = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const PIPE = {
  path: "/bench.Rt/Pipe",
  requestStream: true,
  responseStream: true,
  requestSerialize: ident,
  requestDeserialize: ident,
  responseSerialize: ident,
  responseDeserialize: ident,
};

async function grpcServer(): Promise<ServerImpl> {
  const grpc: Any = await import("@grpc/grpc-js");
  let streams = 0;
  const tt = new SentTimeTransit();
  const server = new grpc.Server({ "grpc.max_concurrent_streams": c.n + 64 });
  server.addService({ Pipe: PIPE }, {
    Pipe: (call: Any) => {
      streams++;
      const onFrame = tt.stream();
      call.on("data", (b: Buffer) => onFrame(b.readDoubleBE(0)));
      call.on("end", () => call.end());
      call.on("error", noop);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e: Any, p: number) => (e ? reject(e) : resolve(p)),
    )
  );
  return {
    address: `127.0.0.1:${port}`,
    ca: "",
    ...tt.figures(),
    streams: () => streams,
    stop: () => Promise.resolve(server.forceShutdown()),
  };
}

async function runServer(): Promise<void> {
  const rss0 = rssMB();
  const s = c.impl === "ours" ? await oursServer() : c.impl === "raw" ? await rawServer() : await grpcServer();
  emit({ ready: true, address: s.address, ca: s.ca });
  // Memory every second (RSS and JS heap, MB): shows whether it levels off or keeps growing.
  const memTrace: [number, number, number][] = [];
  const tm = performance.now();
  const memTimer = setInterval(() => {
    const m = process.memoryUsage();
    memTrace.push([Math.round((performance.now() - tm) / 1000), Math.round(m.rss / 1e6), Math.round(m.heapUsed / 1e6)]);
  }, 1000);
  const cpu = new CpuMeter();
  let c0 = s.counters();
  let t0 = 0;
  for await (const line of stdinLines()) {
    if (line === "start") {
      c0 = s.counters();
      s.transit?.reset();
      s.perStreamTransit.reset();
      s.release?.reset();
      s.e2e?.reset();
      measuring = true;
      t0 = performance.now();
      cpu.start();
    } else if (line === "stop") {
      measuring = false;
      const cpuPct = cpu.stop();
      const seconds = (performance.now() - t0) / 1000;
      const c1 = s.counters();
      const frames = c1.frames - c0.frames;
      const received = c1.received - c0.received;
      const late = c1.late - c0.late;
      const lost = c1.lost - c0.lost;
      const out: Record<string, unknown> = {
        role: "server",
        runtime: RUNTIME,
        version: VERSION,
        streams: s.streams(),
        seconds: r3(seconds, 2),
        framesPerSec: r3(frames / seconds, 0),
        received,
        late,
        lost,
        latePct: r3((100 * late) / Math.max(1, received)),
        lostPct: r3((100 * lost) / Math.max(1, received + lost)),
        cpuPct: r3(cpuPct, 1),
        rssMB: r3(rssMB(), 1),
        rssDeltaMB: r3(rssMB() - rss0, 1),
      };
      if (s.transit) {
        out.transit = s.transit.summary();
        out.transitOver50Pct = r3(100 * s.transit.fractionAbove(50));
      }
      if (s.e2e) out.sendToRelease = s.e2e.summary();
      if (s.release) {
        out.release = s.release.summary();
        out.earlyReleases = s.release.negative;
      }
      if (s.perStream) Object.assign(out, s.perStream());
      out.perStreamTransit = s.perStreamTransit.summary();
      // From the first frame: every counter since the streams opened, warm-up included.
      out.fromFirstFrame = {
        received: c1.received,
        late: c1.late,
        lost: c1.lost,
        latePct: r3((100 * c1.late) / Math.max(1, c1.received)),
        lostPct: r3((100 * c1.lost) / Math.max(1, c1.received + c1.lost)),
        ...(s.transitAll
          ? { transit: s.transitAll.summary(), transitOver50Pct: r3(100 * s.transitAll.fractionAbove(50)) }
          : {}),
        ...(s.e2eAll ? { sendToRelease: s.e2eAll.summary() } : {}),
      };
      if (s.trace) out.latencyTrace = s.trace; // [s, mean D ms, median transit p99 ms, late % that second, transit p99 of that second's frames] every second
      clearInterval(memTimer);
      out.memTrace = memTrace;
      emit(out);
      await within(s.stop(), 5000, "server stop").catch(noop);
      exit(0);
    }
  }
  exit(0);
}

// ---------------------------------------------------------------------------------------------
// Client side

interface Sender {
  /** Sends one frame on stream i, stamped `ts` (ms on the system clock: its scheduled time). */
  send(i: number, frame: Uint8Array, ts: number): void;
  close(): Promise<void>;
  errors(): number;
  /** OURS: the connection's datagram counters (handed to the stack, frames, shed before it). */
  datagrams?(): { sent: number; frames: number; shed: number };
}

async function inBatches(n: number, batch: number, open: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, k) => open(i + k)));
  }
}

async function oursClient(): Promise<Sender> {
  const { RpcClient } = await import("../mod.ts");
  const client = await RpcClient.connect(c.address!, { ca: c.ca, serverName: "localhost", onError: noop });
  await client.clock.ready;
  const streams: Any[] = new Array(c.n);
  await inBatches(c.n, c.openBatch ?? 100, async (i) => {
    let b = client.createStream("conf").withTimeSync();
    if (c.unreliable) b = b.unreliable();
    streams[i] = await b.build();
  });
  let errors = 0;
  const fail = () => errors++;
  return {
    send(i, frame, ts) {
      // `ts` is on the system clock, which is this side's `stream.now()` clock.
      streams[i].sendWithTimestamp(frame, ts).catch(fail);
    },
    async close() {
      await client.close();
    },
    errors: () => errors,
    datagrams: () => {
      const st = client.stats();
      return { sent: st.datagramsSent, frames: st.datagramFramesSent, shed: st.datagramsShed };
    },
  };
}

async function rawDenoClient(): Promise<Sender> {
  const D = (globalThis as Any).Deno;
  const [host, port] = c.address!.split(":");
  const conn = await D.connectQuic({
    hostname: host,
    port: Number(port),
    serverName: "localhost",
    alpnProtocols: [ALPN],
    caCerts: [c.ca],
    maxIdleTimeout: 30000,
  });
  const writers: Any[] = new Array(c.n);
  await inBatches(c.n, c.openBatch ?? 100, async (i) => {
    const b = await conn.createBidirectionalStream({ waitUntilAvailable: true });
    writers[i] = b.writable.getWriter();
  });
  let errors = 0;
  const fail = () => errors++;
  return {
    send(i, frame) {
      writers[i].write(frame.slice()).catch(fail);
    },
    close() {
      try {
        conn.close({ closeCode: 0, reason: "" });
      } catch { /* closed */ }
      return Promise.resolve();
    },
    errors: () => errors,
  };
}

async function rawClient(): Promise<Sender> {
  if (RUNTIME === "deno") return await rawDenoClient();
  const name = "node:quic";
  const q: Any = await import(name);
  const { bunDrainWrite } = await import("./_quic_raw.ts");
  const te = new TextEncoder();
  const session = await q.connect(c.address, {
    alpn: ALPN,
    servername: "localhost",
    ca: [te.encode(c.ca!)],
    transportParams: { maxDatagramFrameSize: 1350, maxIdleTimeout: 32, initialMaxStreamsBidi: 1024 },
  });
  session.closed.catch(noop);
  await session.opened;
  const writers: Any[] = new Array(c.n);
  await inBatches(c.n, c.openBatch ?? 100, async (i) => {
    const st = await session.createBidirectionalStream();
    st.closed?.catch?.(noop);
    writers[i] = st.writer;
  });
  let errors = 0;
  return {
    send(i, frame) {
      const w = writers[i];
      const b = frame.slice(); // the pacer reuses its buffer; the stack may keep this one
      try {
        if (!w.writeSync(b)) bunDrainWrite(w, b).catch(() => errors++);
      } catch {
        errors++;
      }
    },
    async close() {
      await session.close({ code: 0n, type: "application", reason: "" }).catch(noop);
    },
    errors: () => errors,
  };
}

async function grpcClient(): Promise<Sender> {
  const grpc: Any = await import("@grpc/grpc-js");
  const client = new grpc.Client(c.address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 5000, (e: Any) => (e ? reject(e) : resolve()))
  );
  const calls: Any[] = [];
  let errors = 0;
  for (let i = 0; i < c.n; i++) {
    const call = client.makeBidiStreamRequest(PIPE.path, ident, ident);
    call.on("error", (e: Any) => {
      if (e?.code !== grpc.status.CANCELLED) errors++;
    });
    call.on("data", noop);
    calls.push(call);
  }
  return {
    send(i, frame) {
      // Each call keeps its own buffer: write() copies nothing, so give it a fresh one.
      calls[i].write(Buffer.from(frame));
    },
    close() {
      for (const call of calls) call.cancel();
      client.close();
      return Promise.resolve();
    },
    errors: () => errors,
  };
}

async function runClient(): Promise<void> {
  const rss0 = rssMB();
  const t = performance.now();
  let sender: Sender;
  try {
    sender = await within(
      c.impl === "ours" ? oursClient() : c.impl === "raw" ? rawClient() : grpcClient(),
      120_000,
      `opening ${c.n} streams`,
    );
  } catch (e) {
    emit({ role: "client", error: String((e as Error)?.message ?? e) });
    exit(1);
  }
  const openMs = performance.now() - t;
  const rssOpen = rssMB();

  // Pacing: stream i belongs to group i % 20; group g sends at t0 + k·period + g·period/20, an
  // absolute schedule; each frame carries its scheduled time, not the time it left.
  const period = 1000 / c.fps;
  const tick = period / GROUPS;
  const frame = new Uint8Array(c.size);
  for (let i = 8; i < c.size; i++) frame[i] = i & 0xff;
  const view = new DataView(frame.buffer);
  const lag = new Hist();
  const lagAll = new Hist();
  const lagSecond = new Hist(); // this second's ticks, for the trace
  let sent = 0;
  let running = true;
  const t0 = performance.now();
  // Every second: [s since the first tick, p99 and max of that second's tick lag (ms)]: tells a
  // sender that fell behind from a receiver that did (the server's latencyTrace, same seconds).
  const lagTrace: [number, number, number][] = [];
  const lagTimer = setInterval(() => {
    lagTrace.push([Math.round((performance.now() - t0) / 1000), r3(lagSecond.quantile(0.99), 1), r3(lagSecond.max, 1)]);
    lagSecond.reset();
  }, 1000);
  const pacing = (async () => {
    for (let k = 0; running; k++) {
      const due = t0 + k * tick;
      const wait = due - performance.now();
      if (wait >= 1) await sleep(wait);
      else if (k % 64 === 0) await new Promise((r) => setTimeout(r, 0)); // let I/O run when behind
      const late = Math.max(0, performance.now() - due);
      lag.add(late);
      lagAll.add(late);
      lagSecond.add(late);
      const ts = performance.timeOrigin + due; // the scheduled time on the system clock
      view.setFloat64(0, ts);
      for (let i = k % GROUPS; i < c.n; i += GROUPS) {
        sender.send(i, frame, ts);
        sent++;
      }
    }
  })();

  await sleep(c.warmupS * 1000);
  const cpu = new CpuMeter();
  const s0 = sent;
  lag.reset();
  const w0 = performance.now();
  cpu.start();
  emit({ phase: "start" });
  await sleep(c.measureS * 1000);
  const cpuPct = cpu.stop();
  const seconds = (performance.now() - w0) / 1000;
  const nominal = c.n * c.fps * seconds;
  emit({
    phase: "stop",
    role: "client",
    runtime: RUNTIME,
    version: VERSION,
    openMs: r3(openMs, 0),
    seconds: r3(seconds, 2),
    sent: sent - s0,
    sentPctOfNominal: r3((100 * (sent - s0)) / nominal, 1),
    lagP99Ms: r3(lag.quantile(0.99)),
    lagMaxMs: r3(lag.max),
    // From the first frame (warm-up included): how far behind its schedule the sender ran.
    fromFirstFrame: {
      sent,
      sentPctOfNominal: r3((100 * sent) / (c.n * c.fps * ((performance.now() - t0) / 1000)), 1),
      lagP50Ms: r3(lagAll.quantile(0.5)),
      lagP99Ms: r3(lagAll.quantile(0.99)),
      lagMaxMs: r3(lagAll.max),
      ticksOver5MsLatePct: r3(100 * lagAll.fractionAbove(5)),
    },
    lagTrace,
    sendErrors: sender.errors(),
    ...(c.unreliable && sender.datagrams ? { datagrams: sender.datagrams() } : {}),
    cpuPct: r3(cpuPct, 1),
    rssMB: r3(rssMB(), 1),
    rssOpenDeltaMB: r3(rssOpen - rss0, 1),
  });
  // Keep sending while the server takes its snapshot, then leave.
  await sleep(1000);
  running = false;
  clearInterval(lagTimer);
  await pacing;
  await within(sender.close(), 5000, "client close").catch(noop);
  exit(0);
}

if (c.role === "server") await runServer();
else await runClient();
