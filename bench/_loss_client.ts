// BENCH=loss client (child process of bench/loss.ts, in network namespace B): one connection to
// the server of bench/_loss_server.ts, `warmup` calls, then `calls` calls with `inFlight` at a
// time, each a `payload`-byte echo; prints one JSON line {"event":"result", latMs, …} (see
// ClientResult in _loss_common.ts) and exits. Bounded: the measured phase stops issuing after
// `timeLimitMs`, waits at most `graceMs` more for calls in flight, and a watchdog exits the
// process after `timeLimitMs` + warm-up limit + 30 s whatever happens. Runs on Bun and Deno:
//
//   bun bench/_loss_client.ts '{"impl":"ours","host":"10.66.1.1","port":4433,"caFile":"/tmp/x/ca.pem"}'

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import process from "node:process";
import { RpcClient } from "../mod.ts";
import { G, RUNTIME, VERSION } from "./_env.ts";
import { type ClientResult, GRPC_ECHO, type ImplName } from "./_loss_common.ts";
import { ALPN, type Any, bunRawStream, ECHO, endStream, noop, send, type Stream, webRawStream } from "./_quic_raw.ts";

const cfg = {
  inFlight: 64,
  payload: 64,
  warmup: 500,
  calls: 5000,
  timeLimitMs: 120_000,
  warmupLimitMs: 60_000,
  graceMs: 15_000,
  ...JSON.parse(process.argv.slice(2).find((a) => a.startsWith("{")) ?? "{}"),
} as {
  impl: ImplName;
  host: string;
  port: number;
  caFile: string;
  inFlight: number;
  payload: number;
  warmup: number;
  calls: number;
  timeLimitMs: number;
  warmupLimitMs: number;
  graceMs: number;
};
const ca = readFileSync(cfg.caFile, "utf8");
const now = () => performance.now();

const hardStop = setTimeout(() => {
  process.stderr.write(`_loss_client ${cfg.impl}: watchdog, exiting\n`);
  process.exit(4);
}, cfg.timeLimitMs + cfg.warmupLimitMs + 30_000);
void hardStop;

interface Conn {
  call(req: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

async function connect(): Promise<Conn> {
  switch (cfg.impl) {
    case "ours":
    case "fresh": {
      // FRESH: reuse off, one new stream per call (the design before issue 15).
      const limits = cfg.impl === "fresh" ? { maxIdleRequestStreams: 0 } : undefined;
      const client = await RpcClient.connect(`${cfg.host}:${cfg.port}`, {
        ca,
        serverName: "localhost",
        onError: noop,
        limits,
        timeoutMs: 15_000,
      });
      return {
        call: async (req) => (await client.request<Uint8Array>("echo", req)).length,
        close: () => client.close(),
      };
    }
    case "grpc": {
      const ident = (
        b: Uint8Array,
      ): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      // One HTTP/2 connection (a subchannel of this client alone).
      const client = new grpc.Client(`${cfg.host}:${cfg.port}`, grpc.credentials.createInsecure(), {
        "grpc.use_local_subchannel_pool": 1,
      });
      await new Promise<void>((resolve, reject) =>
        client.waitForReady(Date.now() + 15_000, (e) => (e ? reject(e) : resolve()))
      );
      return {
        call: (req) =>
          new Promise<number>((resolve, reject) =>
            client.makeUnaryRequest<Uint8Array, Buffer>(
              GRPC_ECHO,
              ident,
              ident,
              req,
              (e, res) => (e ? reject(e) : resolve(res!.length)),
            )
          ),
        close: () => Promise.resolve(client.close()),
      };
    }
    case "raw":
    case "rawOpen": {
      let open: () => Promise<Stream>;
      let close: () => Promise<void>;
      if (RUNTIME === "bun") {
        const name = "node:quic";
        const q = await import(name);
        const s = await q.connect(`${cfg.host}:${cfg.port}`, {
          alpn: ALPN,
          servername: "localhost",
          // As src/transport/bun.ts does: left to Bun, the client's endpoint cannot reach a server
          // over a non-loopback address in a network namespace (the handshake times out).
          endpoint: { address: "0.0.0.0:0" },
          ca: [new TextEncoder().encode(ca)],
          transportParams: { maxDatagramFrameSize: 1350, maxIdleTimeout: 32, initialMaxStreamsBidi: 1024 },
        });
        s.closed.catch(noop);
        await s.opened;
        open = async () => bunRawStream(await s.createBidirectionalStream());
        close = async () => {
          await s.close({ code: 0n, type: "application", reason: "" }).catch(noop);
        };
      } else {
        const c = await G.Deno.connectQuic({
          hostname: cfg.host,
          port: cfg.port,
          serverName: "localhost",
          alpnProtocols: [ALPN],
          caCerts: [ca],
          maxIdleTimeout: 30000,
        });
        open = async () => webRawStream(await c.createBidirectionalStream({ waitUntilAvailable: true }));
        close = async () => {
          try {
            c.close({ closeCode: 0, reason: "" });
          } catch { /* closed */ }
          await c.closed.catch(noop);
        };
      }
      if (cfg.impl === "raw") {
        // One new bidirectional stream per call: write, FIN, read to FIN.
        return {
          async call(req) {
            const s = await open();
            await send(s, req);
            await endStream(s);
            return await s.readAll();
          },
          close,
        };
      }
      // RAW_OPEN: streams kept open and reused, one call per stream at a time (the reuse ceiling).
      const idle: Stream[] = [];
      return {
        async call(req) {
          const s = idle.pop() ?? (await open());
          await send(s, req);
          const n = await s.readN(req.length);
          idle.push(s);
          return n;
        },
        close,
      };
    }
  }
}

const PING = new Uint8Array(cfg.payload);
for (let i = 0; i < PING.length; i++) PING[i] = (i * 31 + 7) & 0xff;
PING[0] = ECHO;

/** `total` calls, `cfg.inFlight` at a time, until `limitMs`; per-call latency of the successful ones. */
async function phase(c: Conn, total: number, limitMs: number) {
  const lat: number[] = [];
  const errors: Record<string, number> = {};
  let issued = 0;
  let completed = 0;
  let timedOut = false;
  const t0 = now();
  const deadline = t0 + limitMs;
  const workers = Promise.all(Array.from({ length: cfg.inFlight }, async () => {
    while (issued < total) {
      if (now() > deadline) {
        timedOut = true;
        return;
      }
      issued++;
      const t = now();
      try {
        const got = await c.call(PING);
        const dt = now() - t;
        if (got !== cfg.payload) errors[`echo of ${got} bytes`] = (errors[`echo of ${got} bytes`] ?? 0) + 1;
        else {
          lat.push(Math.round(dt * 1000) / 1000);
          completed++;
        }
      } catch (e) {
        const k = String((e as Any)?.code ?? "") + " " + String((e as Error)?.message ?? e).slice(0, 80);
        errors[k] = (errors[k] ?? 0) + 1;
      }
    }
  }));
  let grace: Any;
  const settled = await Promise.race([
    workers.then(() => true),
    new Promise<boolean>((r) => (grace = setTimeout(() => r(false), limitMs + cfg.graceMs))),
  ]);
  clearTimeout(grace);
  const elapsedMs = now() - t0;
  const failed = Object.values(errors).reduce((a, b) => a + b, 0);
  return {
    lat,
    errors,
    issued,
    completed,
    stuck: settled ? 0 : issued - completed - failed,
    timedOut: timedOut || !settled,
    elapsedMs,
  };
}

const tc = now();
const conn = await connect();
const connectMs = now() - tc;
const warm = await phase(conn, cfg.warmup, cfg.warmupLimitMs);
if (warm.stuck || warm.timedOut) process.stderr.write(`warm-up: ${warm.stuck} stuck, timedOut ${warm.timedOut}\n`);
const m = await phase(conn, cfg.calls, cfg.timeLimitMs);
const result: ClientResult = {
  event: "result",
  impl: cfg.impl,
  runtime: RUNTIME,
  version: VERSION,
  latMs: m.lat,
  elapsedMs: m.elapsedMs,
  connectMs,
  issued: m.issued,
  completed: m.completed,
  errors: m.errors,
  stuck: m.stuck,
  timedOut: m.timedOut,
};
await new Promise<void>((r) => process.stdout.write(JSON.stringify(result) + "\n", () => r()));
await Promise.race([conn.close().catch(noop), new Promise((r) => setTimeout(r, 3000))]);
process.exit(0);
