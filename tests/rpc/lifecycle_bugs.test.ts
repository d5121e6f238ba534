// Lifecycle bugs of issue 11 §1, each pinned by a test that failed before its fix:
// 1. the connect deadline covers HELLO→WELCOME, and the server's handshake timeout covers
//    `authenticate`; 2. close() cancels a reconnect backoff or dial; 3. start() is idempotent
//    under concurrency and sane around close(). Real QUIC (Bun's stack, in this process).

import { afterEach, expect, test } from "bun:test";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { RpcError } from "../../src/protocol/rpc_error.ts";
import { ALPN, CloseCode } from "../../src/protocol/version.ts";
import { bunTransport } from "../../src/transport/bun.ts";
import type { Connection, Listener, Transport } from "../../src/transport/types.ts";
import { createDevCertificates } from "../../src/security/dev_cert.ts";
import { deferred, quietFor, waitFor } from "../support/wait.ts";

const quiet = () => RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {});

/** Cleanups registered by a test, run after it even when it fails (so nothing outlives it). */
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve().then(c).catch(() => {});
});

const TIMEOUT = Symbol("timeout");

/** Settles `p` (value or RpcError) or gives TIMEOUT after `ms`: every wait here is bounded. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | unknown | typeof TIMEOUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<typeof TIMEOUT>((r) => (timer = setTimeout(() => r(TIMEOUT), ms)));
  try {
    return await Promise.race([p.catch((e) => e), late]);
  } finally {
    clearTimeout(timer);
  }
}


/**
 * Bun's transport, recording every listener (and whether it was closed) and every accepted
 * connection; `listen` can fail on its first call or wait for a gate.
 */
function recording(opts: { failFirst?: boolean; gate?: Promise<void>; listening?: () => void } = {}) {
  const listeners: { listener: Listener; closed: boolean }[] = [];
  const conns: Connection[] = [];
  let calls = 0;
  const transport: Transport = {
    name: "bun",
    connect: (o) => bunTransport.connect(o),
    async listen(o, onConnection) {
      calls++;
      opts.listening?.();
      if (opts.failFirst && calls === 1) throw new Error("listen failed on purpose");
      await opts.gate;
      const l = await bunTransport.listen(o, (c) => {
        conns.push(c);
        onConnection(c);
      });
      const rec = { listener: l, closed: false };
      listeners.push(rec);
      cleanups.push(() => l.close());
      return {
        get address() {
          return l.address;
        },
        get trust() {
          return l.trust;
        },
        close: (code, reason) => {
          rec.closed = true;
          return l.close(code, reason);
        },
      };
    },
  };
  return { transport, listeners, conns, calls: () => calls };
}

// --- 1. handshake deadlines ---------------------------------------------------------------

test("connect's timeoutMs bounds HELLO→WELCOME: a server that never answers fails it with UNAVAILABLE and the connection is closed", async () => {
  const accepted = deferred<Connection>();
  const raw = await bunTransport.listen({ host: "127.0.0.1", port: 0, alpn: ALPN, log: () => {} }, (conn) => {
    conn.handle({ bidi: (s) => void (async () => { for await (const _ of s) { /* read HELLO, never answer */ } })().catch(() => {}) });
    accepted.resolve(conn);
  });
  cleanups.push(() => raw.close());
  const e = await within(RpcClient.connect(`127.0.0.1:${raw.address.port}`, { ca: raw.trust.ca, timeoutMs: 500 }), 3000);
  expect(e).toBeInstanceOf(RpcError);
  expect((e as RpcError).code).toBe("UNAVAILABLE");
  expect((e as RpcError).message).toMatch(/no WELCOME .*within the 500 ms connect timeout/);
  // The client closed its connection: the server side sees it end with the handshake-timeout code.
  const conn = await within(accepted.promise, 1000) as Connection;
  const info = await within(conn.closed, 3000);
  expect(info).toMatchObject({ code: CloseCode.HANDSHAKE_TIMEOUT, local: false });
});

test("the server's handshake timeout covers authenticate: a hung one is refused with GOAWAY, its late result ignored", async () => {
  const errors: unknown[] = [];
  const gate = deferred<string>();
  let lateReturned = false;
  const server = quiet()
    .handshakeTimeout(300)
    .onError((e) => errors.push(e))
    .authenticate(() => gate.promise.then((p) => ((lateReturned = true), p)))
    .build();
  await server.start();
  cleanups.push(() => server.close({ graceMs: 0 }));
  const e = await within(RpcClient.connect(server.address, { ca: server.trust.ca, timeoutMs: 5000 }), 3000);
  expect(e).toBeInstanceOf(RpcError);
  expect((e as RpcError).code).toBe("UNAVAILABLE");
  expect((e as RpcError).message).toBe("server refused the connection: authentication did not complete within the handshake timeout (300 ms)");
  expect(errors.map((x) => (x as Error).message)).toContain("authentication did not complete within the handshake timeout (300 ms)");
  gate.resolve("too-late");
  await waitFor(() => lateReturned, "the hung authenticate to return");
  await quietFor(20); // negative check: a peer made from the late principal would show up by now
  expect(lateReturned).toBe(true);
  expect(server.peers.length).toBe(0); // no peer made from the late answer
});

test("a QUIC client that never sends HELLO is closed at the server's handshake timeout", async () => {
  const server = quiet().handshakeTimeout(300).build();
  await server.start();
  cleanups.push(() => server.close({ graceMs: 0 }));
  const conn = await bunTransport.connect({ host: "127.0.0.1", port: Number(server.address.split(":")[1]), alpn: ALPN, tls: { ca: server.trust.ca } });
  cleanups.push(() => conn.close());
  expect(await within(conn.closed, 3000)).toMatchObject({ code: CloseCode.HANDSHAKE_TIMEOUT, local: false });
});

test("handshakeTimeout and timeoutMs are validated", async () => {
  for (const bad of [0, -1, NaN, Infinity, 2 ** 31, "5" as unknown as number]) {
    expect(() => RpcServer.builder().handshakeTimeout(bad)).toThrow(/handshakeTimeout must be a number of ms from 1 to 2147483647, received/);
    const e = await within(RpcClient.connect("127.0.0.1:9", { fingerprint: "ab".repeat(32), timeoutMs: bad }), 3000);
    expect(e).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect((e as Error).message).toMatch(/timeoutMs must be a number of ms from 1 to 2147483647, received/);
  }
});

// --- 2. close() while reconnecting --------------------------------------------------------

test("close() during reconnect backoff resolves at once and closed settles", async () => {
  const server = quiet().build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, reconnect: { minDelayMs: 30_000, maxDelayMs: 30_000 } });
  cleanups.push(() => client.close());
  await server.close({ graceMs: 0 });
  await waitFor(() => !client.connected, "the client to see the server close", { timeoutMs: 3000 });
  expect(client.connected).toBe(false); // now sleeping in a 24-36 s backoff
  const closing = client.close(7, "bye").then(() => "closed");
  expect(await within(closing, 3000)).toBe("closed");
  expect(await within(client.closed, 100)).toMatchObject({ code: 7, reason: "bye", local: true });
});

test("close() during a reconnect dial resolves at once; the dial's connection is closed, never adopted", async () => {
  const certs = await createDevCertificates();
  const first = quiet().tls({ cert: certs.cert, key: certs.key }).build();
  await first.start();
  const port = Number(first.address.split(":")[1]);
  const reconnects: number[] = [];
  const client = await RpcClient.connect(first.address, {
    ca: certs.ca,
    timeoutMs: 10_000,
    reconnect: { minDelayMs: 20, maxDelayMs: 20, onReconnect: (n) => reconnects.push(n) },
  });
  cleanups.push(() => client.close());
  await first.close({ graceMs: 0 });
  // The next server holds every HELLO in authenticate: the client's dial is in progress.
  const rec = recording();
  const authStarted = deferred();
  const gate = deferred();
  const second = quiet().bind(`127.0.0.1:${port}`).tls({ cert: certs.cert, key: certs.key }).transport(rec.transport)
    .authenticate(() => (authStarted.resolve(), gate.promise))
    .build();
  await second.start();
  cleanups.push(() => second.close({ graceMs: 0 }));
  expect(await within(authStarted.promise, 5000)).not.toBe(TIMEOUT);
  const closing = client.close().then(() => "closed");
  expect(await within(closing, 3000)).toBe("closed");
  gate.resolve(); // the server now answers WELCOME (if the connection still stands)
  expect(rec.conns.length).toBeGreaterThan(0);
  for (const c of rec.conns) expect(await within(c.closed, 3000)).not.toBe(TIMEOUT);
  await quietFor(50); // negative check: an adopted dial would show up as a reconnect or a peer by now
  expect(reconnects).toEqual([]);
  expect(client.connected).toBe(false);
  expect(second.peers.length).toBe(0);
});

// --- 3. start() and close() ---------------------------------------------------------------

test("two concurrent start() calls bind one listener, and close() closes it", async () => {
  const rec = recording();
  const server = quiet().transport(rec.transport).build();
  cleanups.push(() => server.close({ graceMs: 0 }));
  await Promise.all([server.start(), server.start()]);
  await server.start(); // and again once started
  expect(rec.calls()).toBe(1);
  expect(rec.listeners.length).toBe(1);
  await server.close({ graceMs: 0 });
  expect(rec.listeners.map((l) => l.closed)).toEqual([true]);
});

test("a failed start() can be retried", async () => {
  const rec = recording({ failFirst: true });
  const server = quiet().transport(rec.transport).build();
  cleanups.push(() => server.close({ graceMs: 0 }));
  const e = await within(server.start(), 3000);
  expect((e as Error).message).toBe("listen failed on purpose");
  await server.start();
  expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(rec.listeners.length).toBe(1);
  await server.close({ graceMs: 0 });
  expect(rec.listeners.map((l) => l.closed)).toEqual([true]);
});

test("start() after close() is refused and binds nothing", async () => {
  const rec = recording();
  const server = quiet().transport(rec.transport).build();
  await server.close({ graceMs: 0 });
  const e = await within(server.start(), 3000);
  expect(e).toBeInstanceOf(RpcError);
  expect((e as RpcError).code).toBe("FAILED_PRECONDITION");
  expect((e as RpcError).message).toBe("cannot start: the server is closed");
  expect(rec.calls()).toBe(0);
});

test("close() during start() waits for the listener and closes it", async () => {
  const gate = deferred();
  const listening = deferred();
  const rec = recording({ gate: gate.promise, listening: listening.resolve });
  const server = quiet().transport(rec.transport).build();
  const starting = server.start().then(() => "started");
  expect(await within(listening.promise, 3000)).not.toBe(TIMEOUT);
  const closing = server.close({ graceMs: 0 }).then(() => "closed");
  gate.resolve();
  expect(await within(starting, 3000)).toBe("started");
  expect(await within(closing, 3000)).toBe("closed");
  expect(rec.listeners.map((l) => l.closed)).toEqual([true]);
  expect(await within(server.run(), 3000)).toMatchObject({ code: "FAILED_PRECONDITION" });
});
