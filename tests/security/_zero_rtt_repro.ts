// Minimal reproductions, through our transport adapters, of the two stack behaviours that made
// zero_rtt.test.ts fail before the fixes (docs/SECURITY.md "0-RTT replay safety"). [1] on Bun
// still shows node:quic settling the handshake ~300 ms before the client's Finished can exist
// (why an RpcServer on Bun never accepts early data); [2] on Deno showed "resolved" before the
// adapter learnt to check that the connection is still up, and now shows "rejected".
// Run on each runtime:
//   bun tests/security/_zero_rtt_repro.ts
//   deno run --unstable-net -A tests/security/_zero_rtt_repro.ts
//
// A server listens with `earlyData: true`; a UDP relay between it and the client can hold
// server→client datagrams back and drop client→server ones.
// 1. (Both) A resumed 0-RTT client, with the relay holding server→client datagrams back 300 ms:
//    the client cannot send its Finished before it hears the server. When does the server's
//    `Connection.handshake` settle? Bun: ~300 ms before the client's Finished can exist.
// 2. (Both) A client whose handshake cannot complete (the relay passes its first datagram only):
//    how does the server's `Connection.handshake` settle when the server gives the connection up?
//    Deno: it resolves, as if the handshake had completed.

import dgram from "node:dgram";
import { createDevCertificates } from "../../src/security/mod.ts";
import { defaultTransport } from "../../src/transport/select.ts";
import type { Connection } from "../../src/transport/types.ts";

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t = await defaultTransport();
const certs = await createDevCertificates();
const seen: { at: number; handshake?: string; closedAt?: number }[] = [];
const listener = await t.listen(
  { host: "127.0.0.1", port: 0, alpn: "repro", tls: certs, earlyData: true, idleTimeoutMs: 1000, log: () => {} },
  (c: Connection) => {
    const s: (typeof seen)[number] = { at: now() };
    seen.push(s);
    c.handshake.then(
      () => (s.handshake = `resolved at ${Math.round(now() - s.at)} ms`),
      () => (s.handshake = `rejected at ${Math.round(now() - s.at)} ms`),
    );
    c.closed.then(() => (s.closedAt = now()));
    c.handle({
      bidi: (st) =>
        void (async () => {
          for await (const _ of st) { /* drain */ }
        })().catch(() => {}),
    });
  },
);

/** Relay: holds server→client `holdMs`; passes only the first `pass` client→server datagrams. */
async function relay(holdMs: number, pass = Infinity) {
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  const up = new Map<string, dgram.Socket>();
  const r = {
    port: sock.address().port,
    holdMs,
    firstToClient: 0,
    sent: 0,
    closed: false,
    close: () => ((r.closed = true), sock.close(), up.forEach((u) => u.close())),
  };
  sock.on("message", (m: Uint8Array, from: { address: string; port: number }) => {
    if (r.sent++ >= pass) return;
    const key = `${from.address}:${from.port}`;
    let u = up.get(key);
    if (!u) {
      const nu = (u = dgram.createSocket("udp4"));
      up.set(key, nu);
      nu.bind(0, "127.0.0.1");
      nu.on("message", (b: Uint8Array) =>
        setTimeout(() => {
          if (r.closed) return;
          r.firstToClient ||= now();
          sock.send(b, from.port, from.address);
        }, r.holdMs));
    }
    u.send(m, listener.address.port, "127.0.0.1");
  });
  return r;
}

const opts = (port: number) => ({ host: "127.0.0.1", port, alpn: "repro", tls: { ca: certs.ca }, zeroRtt: true });

// 1. When does the server's handshake settle for a 0-RTT client?
{
  const r = await relay(0);
  const first = await t.connect(opts(r.port)); // full handshake: a ticket
  await sleep(150);
  await first.close();
  await sleep(50);
  r.holdMs = 300;
  r.firstToClient = 0;
  const c = await t.connect(opts(r.port)); // resumed: returned before its handshake completes
  const s = await c.openBidi();
  await s.write(new Uint8Array([1, 2, 3]));
  await c.handshake;
  await sleep(50);
  const server = seen[seen.length - 1];
  console.log(
    `[1] ${t.name}: server got the 0-RTT connection ${
      Math.round(r.firstToClient - server.at)
    } ms before the client heard anything; ` +
      `its handshake ${server.handshake} (the client's Finished cannot arrive before ~${
        Math.round(r.firstToClient - server.at)
      } ms)`,
  );
  await c.close();
  r.close();
}

// 2. A handshake that never completes: how does the server's handshake settle?
{
  const r = await relay(0, 1); // only the client's first datagram (its Initial) gets through
  const before = seen.length;
  t.connect({ ...opts(r.port), zeroRtt: false, handshakeTimeoutMs: 3000 }).then((c) => c.close(), () => {});
  for (let i = 0; i < 50 && !(seen.length > before && seen[before].closedAt); i++) await sleep(100);
  await sleep(50);
  const server = seen[before];
  console.log(
    server
      ? `[2] ${t.name}: the connection was handed over, closed after ${
        Math.round((server.closedAt ?? NaN) - server.at)
      } ms; its handshake ${server.handshake ?? "never settled"}`
      : `[2] ${t.name}: the server never handed this connection over (nothing can run on it)`,
  );
  r.close();
}

await listener.close();
(globalThis as unknown as { process: { exit(c: number): void } }).process.exit(0);
