// BENCH=loss server (child process of bench/loss.ts, in network namespace A): serves, on `host`,
//   - OURS: RpcServer with an "echo" handler returning its Uint8Array input (UDP, QUIC);
//   - GRPC: @grpc/grpc-js unary /bench.Echo/Echo, plaintext HTTP/2, Buffer serializers (TCP);
//   - RAW: the runtime's QUIC stack without our adapter (Bun: node:quic, Deno: Deno.QuicEndpoint),
//     the echo server of bench/_quic_raw.ts (a stream whose first byte is "E" is echoed chunk by
//     chunk and ended when the client ends it).
// Prints {"event":"listening","ours","grpc","raw"} (ports) once up. Exits on SIGTERM/SIGINT, when
// its stdin closes, or after `maxMs` (its own watchdog). Runs on Bun and Deno:
//
//   bun bench/_loss_server.ts '{"host":"10.66.1.1","certDir":"/tmp/x","maxMs":600000}'

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import process from "node:process";
import { handler, RpcServer } from "../mod.ts";
import { G, RUNTIME, VERSION } from "./_env.ts";
import { acceptWebRaw, ALPN, type Any, noop, serveBunRaw } from "./_quic_raw.ts";
import { GRPC_ECHO } from "./_loss_common.ts";

const cfg = JSON.parse(process.argv.slice(2).find((a) => a.startsWith("{")) ?? "{}") as {
  host: string;
  certDir: string;
  maxMs?: number;
};
const cert = readFileSync(`${cfg.certDir}/cert.pem`, "utf8");
const key = readFileSync(`${cfg.certDir}/key.pem`, "utf8");
const out = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + "\n");

// --- OURS
const server = RpcServer.builder()
  .bind(`${cfg.host}:0`)
  .tls({ cert, key })
  .log(noop)
  .onError(noop)
  .maxStreams(1024)
  .handler(handler("echo", (_ctx, input: Uint8Array) => input))
  .build();
await server.start();
const oursPort = Number(server.address.slice(server.address.lastIndexOf(":") + 1));

// --- GRPC
const ident = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const gserver = new grpc.Server();
gserver.addService(
  {
    Echo: {
      path: GRPC_ECHO,
      requestStream: false,
      responseStream: false,
      requestSerialize: ident,
      requestDeserialize: ident,
      responseSerialize: ident,
      responseDeserialize: ident,
    },
  },
  { Echo: (call: Any, cb: Any) => cb(null, call.request) },
);
const grpcPort = await new Promise<number>((resolve, reject) =>
  gserver.bindAsync(`${cfg.host}:0`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)))
);

// --- RAW
let stopRaw: () => void = noop;
let rawPort: number;
if (RUNTIME === "bun") {
  const name = "node:quic";
  const q = await import(name);
  const { createPrivateKey } = await import("node:crypto");
  const ep = await q.listen(
    (session: Any) => {
      session.closed.catch(noop);
      session.onstream = (st: Any) => serveBunRaw(st);
    },
    {
      alpn: [ALPN],
      sni: { "*": { keys: [createPrivateKey(key)], certs: [new TextEncoder().encode(cert)] } },
      endpoint: { address: `${cfg.host}:0` },
      enableEarlyData: false,
      // The transport parameters OURS sets (Bun reads maxIdleTimeout in seconds).
      transportParams: {
        initialMaxStreamsBidi: 1024,
        initialMaxStreamsUni: 64,
        maxIdleTimeout: 32,
        maxDatagramFrameSize: 1350,
      },
    },
  );
  rawPort = Number(ep.address.port);
  stopRaw = () => ep.destroy?.();
} else {
  const D = G.Deno;
  const ep = new D.QuicEndpoint({ hostname: cfg.host, port: 0 });
  const listener = ep.listen({
    alpnProtocols: [ALPN],
    cert,
    key,
    maxConcurrentBidirectionalStreams: 1024,
    maxConcurrentUnidirectionalStreams: 64,
    maxIdleTimeout: 30000,
  });
  acceptWebRaw(listener);
  rawPort = Number(ep.addr.port);
  stopRaw = () => ep.close();
}

let stopping = false;
function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  try {
    stopRaw();
  } catch { /* gone */ }
  gserver.forceShutdown();
  // Bounded: whatever close() does, exit within 1.5 s.
  setTimeout(() => process.exit(code), 1500);
  server.close({ graceMs: 100 }).catch(noop).finally(() => process.exit(code));
}
process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));
process.stdin.on("end", () => stop(0));
process.stdin.on("error", () => stop(0));
process.stdin.resume();
const watchdog = setTimeout(() => {
  process.stderr.write(`_loss_server: watchdog (${cfg.maxMs} ms), exiting\n`);
  stop(3);
}, cfg.maxMs ?? 900_000);
void watchdog;

out({
  event: "listening",
  ours: oursPort,
  grpc: grpcPort,
  raw: rawPort,
  runtime: RUNTIME,
  version: VERSION,
  pid: process.pid,
});
