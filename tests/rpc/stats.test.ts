// server.stats() and client.stats(): totals over every connection, and live state that returns
// to zero once traffic stops (real QUIC, Bun).

import { expect, test } from "bun:test";
import { handler, streamHandler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { LIVE_STATS } from "../../src/rpc/stats.ts";
import { createDevCertificates } from "../../src/security/dev_cert.ts";

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

test("stats: live counts while work is held, back to zero after; totals survive disconnects", async () => {
  let unblock: () => void = () => {};
  const server = RpcServer.builder()
    .bind("127.0.0.1:0")
    .log(() => {})
    .handler(handler("add", (_ctx, [a, b]: [number, number]) => a + b))
    .handler(handler("block", () => new Promise<void>((r) => (unblock = r))))
    .streamHandler(streamHandler("echo", async (_ctx, s) => {
      for await (const f of s) await s.send(f);
    }))
    .build();
  await server.start();
  try {
    const idle = server.stats();
    expect(idle.connections).toBe(0);
    for (const k of LIVE_STATS) expect(idle[k]).toBe(0);

    const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
    expect(await client.request("add", [2, 3])).toBe(5);
    const blocked = client.request("block");
    const s = await client.createStream("echo").unreliable().build();
    await until(() => server.stats().inFlight === 1 && server.stats().openStreams === 1, "the call and the stream to be held");
    expect(server.stats()).toMatchObject({ connections: 1, handshaking: 0, inFlight: 1, openStreams: 1, datagramRoutes: 1, requestsServed: 1 });
    expect(client.stats()).toMatchObject({ connected: true, reconnects: 0, pendingRequests: 1, openStreams: 1, datagramRoutes: 1, requestsSent: 2, streamsOpened: 1 });

    unblock();
    await blocked;
    await s.end();
    expect(await s.recv()).toBeUndefined();
    await until(() => server.stats().openStreams === 0 && client.stats().openStreams === 0, "streams to finish");
    for (const k of LIVE_STATS) expect([k, client.stats()[k]]).toEqual([k, 0]);

    await client.close();
    await until(() => server.stats().connections === 0, "the connection to close");
    const after = server.stats();
    for (const k of LIVE_STATS) expect([k, after[k]]).toEqual([k, 0]);
    // What the closed connection did is still counted.
    expect(after.requestsServed).toBe(2);
    expect(after.streamsAccepted).toBe(1);
    expect(client.stats()).toMatchObject({ connected: false, requestsSent: 2 });
  } finally {
    await server.close({ graceMs: 0 });
  }
});

test("stats: a client's totals carry across a reconnection", async () => {
  const certs = await createDevCertificates();
  const make = (port: number) =>
    RpcServer.builder().bind(`127.0.0.1:${port}`).tls({ cert: certs.cert, key: certs.key }).log(() => {})
      .handler(handler("ping", () => "pong")).build();
  const first = make(0);
  await first.start();
  const port = Number(first.address.split(":").pop());
  const client = await RpcClient.connect(first.address, { ca: certs.ca, reconnect: { minDelayMs: 50, maxDelayMs: 200 } });
  const second = make(port);
  try {
    expect(await client.request("ping")).toBe("pong");
    await first.close({ graceMs: 0 });
    await until(() => !client.connected, "the client to see the close");
    expect(client.stats()).toMatchObject({ connected: false, reconnects: 0, requestsSent: 1, pendingRequests: 0 });
    await second.start();
    await until(() => client.connected, "the client to reconnect");
    expect(await client.request("ping")).toBe("pong");
    expect(client.stats()).toMatchObject({ connected: true, reconnects: 1, requestsSent: 2, pendingRequests: 0 });
  } finally {
    await client.close();
    await second.close({ graceMs: 0 });
  }
}, 20_000);

test("stats: connections opened and closed by close code, for users without OpenTelemetry", async () => {
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).build();
  await server.start();
  const a = await RpcClient.connect(server.address, { ca: server.trust.ca });
  const b = await RpcClient.connect(server.address, { ca: server.trust.ca });
  await a.close();
  await b.close(0x1234, "custom");
  await until(() => server.stats().connections === 0, "both connections to end");
  expect(server.stats()).toMatchObject({ connectionsOpened: 2, connectionsClosed: { "0x0": 1, "0x1234": 1 } });
  await server.close();
});
