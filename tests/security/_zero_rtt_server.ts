// The 0-RTT replay test's server (zero_rtt.test.ts), run in its own process on Bun or Deno
// (`--unstable-net -A`): an RpcServer with early data on and a counter.
//
//   counter.inc  not idempotent: increments the counter, answers its new value
//   counter.get  idempotent: answers the counter
//   stats        idempotent: every call seen (when it ran, from which client port), the counter,
//                server.stats().rejected.earlyDataHeld, and the transport connections seen
//
// Prints one JSON line, {"port","ca"}, once listening; runs until stdin closes.
//
// `--bypass` is the mutation check: the transport is wrapped so every connection reports its
// handshake as complete at once (what src/transport/deno.ts did before it passed quinn's
// handshake on), so the RPC layer cannot tell early data from confirmed data and runs
// non-idempotent requests on it. The test must fail against it.

import { createDevCertificates } from "../../src/security/mod.ts";
import { handler } from "../../src/rpc/definitions.ts";
import type { Context } from "../../src/rpc/context.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { inspectPeer } from "../../src/rpc/peer.ts";
import { defaultTransport } from "../../src/transport/select.ts";
import type { Connection, HandshakeInfo, Transport } from "../../src/transport/types.ts";

const argv = (globalThis as unknown as { process: { argv: string[] } }).process.argv;
const bypass = argv.includes("--bypass");
/** For measurement: a server without `.earlyData()`. */
const earlyData = !argv.includes("--no-early-data");
const now = () => performance.timeOrigin + performance.now();

export interface Call {
  method: string;
  /** Epoch ms (sub-ms), same clock as the client process's relay. */
  at: number;
  port: number;
  /** What the RPC layer believed: its guard had not seen the handshake complete. */
  guardEarly: boolean;
  /** The value it answered. */
  value: number;
}
interface ConnSeen {
  port: number;
  /** When the transport handed the connection to the RPC layer. */
  at: number;
  /** When the transport's own handshake promise settled (undefined: not yet). */
  handshakeAt?: number;
  handshakeFailed?: boolean;
  closedAt?: number;
}

let counter = 0;
const calls: Call[] = [];
const conns: ConnSeen[] = [];

function record(method: string, ctx: Context, value: number): number {
  const guard = inspectPeer(ctx.peer).guard;
  calls.push({ method, at: now(), port: ctx.remote.port, guardEarly: !guard.handshakeDone, value });
  return value;
}

/** The runtime's transport, watched (and under --bypass, changed). */
function watched(t: Transport): Transport {
  return {
    ...t,
    listen: (o, onConnection) =>
      t.listen(o, (c: Connection) => {
        const seen: ConnSeen = { port: c.remote.port, at: now() };
        conns.push(seen);
        c.handshake.then(() => (seen.handshakeAt = now()), () => (seen.handshakeFailed = true));
        c.closed.then(() => (seen.closedAt = now()));
        if (!bypass) return onConnection(c);
        const h: Promise<HandshakeInfo> = Promise.resolve({ resumed: false, earlyDataAccepted: undefined });
        onConnection(
          new Proxy(c, {
            get(target, key) {
              if (key === "handshake") return h;
              const v = Reflect.get(target, key, target);
              return typeof v === "function" ? v.bind(target) : v;
            },
          }),
        );
      }),
  };
}

const certs = await createDevCertificates();
const server: RpcServer = RpcServer.builder()
  .bind("127.0.0.1:0")
  .tls(certs)
  .transport(watched(await defaultTransport()))
  .earlyData(earlyData)
  .idleTimeout(2000)
  .handshakeTimeout(3000)
  .log(() => {})
  .onError(() => {})
  .handler(handler("counter.inc", (ctx: Context) => record("counter.inc", ctx, ++counter)))
  .handler(handler("counter.get", (ctx: Context) => record("counter.get", ctx, counter), { idempotent: true }))
  .handler(
    handler(
      "stats",
      (): Record<string, unknown> => ({
        counter,
        calls,
        conns,
        earlyDataHeld: server.stats().rejected.earlyDataHeld,
        bypass,
      }),
      {
        idempotent: true,
      },
    ),
  )
  .build();
await server.start();
console.log(JSON.stringify({ port: Number(server.address.split(":").pop()), ca: certs.ca }));

// Run until the test closes stdin (or kills us).
const stdin = (globalThis as unknown as { process: { stdin: AsyncIterable<unknown> } }).process.stdin;
for await (const _ of stdin) { /* nothing is sent */ }
await server.close({ graceMs: 0 });
(globalThis as unknown as { process: { exit(c: number): void } }).process.exit(0);
