// Opt-in reconnection: calls in flight and calls while disconnected fail with UNAVAILABLE
// (never hang); the client reconnects with backoff and its handlers serve again.

import { expect, test } from "bun:test";
import { handler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { createDevCertificates } from "../../src/security/dev_cert.ts";
import type { RpcError } from "../../src/protocol/rpc_error.ts";
import { waitFor } from "../support/wait.ts";

test("a client with reconnect survives a server restart on the same address", async () => {
  const certs = await createDevCertificates();
  const build = (port: number, gen: number) =>
    RpcServer.builder()
      .bind(`127.0.0.1:${port}`)
      .tls({ cert: certs.cert, key: certs.key })
      .log(() => {})
      .onError(() => {})
      .handler(handler("gen", () => gen))
      .handler(handler("hang", () => new Promise(() => {})))
      .handler(handler("ask-client", (ctx) => ctx.peer.request("client.name")))
      .build();
  const first = build(0, 1);
  await first.start();
  const port = Number(first.address.split(":")[1]);
  const reconnects: number[] = [];
  const client = await RpcClient.connect(first.address, {
    ca: certs.ca,
    reconnect: { minDelayMs: 50, maxDelayMs: 200, onReconnect: (n) => reconnects.push(n) },
  });
  client.handle(handler("client.name", () => "me"));
  expect(await client.request("gen")).toBe(1);

  const inFlight = client.request("hang").catch((e) => e) as Promise<RpcError>;
  await waitFor(() => first.stats().inFlight === 1, "the server to run the call"); // in flight at the close
  await first.close({ graceMs: 0 });
  expect((await inFlight).code).toBe("UNAVAILABLE");
  expect(client.connected).toBe(false);
  const t0 = performance.now();
  expect(((await client.request("gen").catch((e) => e)) as RpcError).code).toBe("UNAVAILABLE");
  expect(performance.now() - t0).toBeLessThan(100); // fails at once while disconnected

  const second = build(port, 2);
  await second.start();
  await waitFor(() => client.connected, "the client to reconnect");
  expect(client.connected).toBe(true);
  expect(reconnects.length).toBe(1);
  expect(await client.request("gen")).toBe(2);
  expect(await client.request("ask-client")).toBe("me"); // its handlers serve the new connection

  await client.close();
  expect((await client.closed).local).toBe(true);
  await second.close({ graceMs: 0 });
}, 30_000);

test("without reconnect, the client stays closed and closed settles", async () => {
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  await server.close({ graceMs: 0 });
  const info = await client.closed;
  expect(info.local).toBe(false);
  expect(client.connected).toBe(false);
});

test("reconnect gives up after maxAttempts and closed settles", async () => {
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, timeoutMs: 300, reconnect: { minDelayMs: 20, maxAttempts: 2 } });
  await server.close({ graceMs: 0 });
  const info = await client.closed;
  expect(info.local).toBe(false);
}, 15_000);
