// RpcClient.connect(service) with a discovered service (no multicast needed): addresses tried in
// order, happy-eyeballs style, the first handshake wins; clear errors when none works.

import { expect, test } from "bun:test";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { handler } from "../../src/rpc/definitions.ts";
import { RpcError } from "../../src/protocol/rpc_error.ts";
import type { DiscoveredService } from "../../src/discovery/types.ts";

async function server() {
  const s = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).handler(handler("who", () => "me")).build();
  await s.start();
  return s;
}

const service = (port: number, addresses: string[], fingerprint?: string): DiscoveredService => ({
  name: "Svc",
  instance: "Svc",
  host: "Svc.local",
  port,
  addresses,
  fingerprint,
  version: 1,
  txt: {},
});

test("the first address that answers wins; a dead one first only delays by the stagger", async () => {
  const s = await server();
  try {
    const port = Number(s.address.split(":")[1]);
    // 127.0.0.2 has no listener: its attempt cannot complete, so the second one (started 250 ms
    // later, or at once if the first fails fast) must be the one that connects.
    const t0 = performance.now();
    const c = await RpcClient.connect(service(port, ["127.0.0.2", "127.0.0.1"]), { fingerprint: s.trust.fingerprint, timeoutMs: 3000 });
    expect(performance.now() - t0).toBeLessThan(2500);
    expect(c.peer.remote.host).toBe("127.0.0.1");
    expect(await c.request("who")).toBe("me");
    await c.close();
  } finally {
    await s.close();
  }
});

test("no address works: UNAVAILABLE naming every address tried; no address at all: INVALID_ARGUMENT", async () => {
  const s = await server();
  const port = Number(s.address.split(":")[1]);
  await s.close();
  const e = await RpcClient.connect(service(port, ["127.0.0.1", "127.0.0.3"]), { timeoutMs: 800, fingerprint: "00".repeat(32) }).catch((x) => x);
  expect(e).toBeInstanceOf(RpcError);
  expect(e.code).toBe("UNAVAILABLE");
  expect(e.message).toContain(`127.0.0.1:${port}`);
  expect(e.message).toContain(`127.0.0.3:${port}`);
  const e2 = await RpcClient.connect(service(port, []), {}).catch((x) => x);
  expect(e2.code).toBe("INVALID_ARGUMENT");
  expect(e2.message).toMatch(/no address/);
});

test("a wrong pinned fingerprint is refused (trust is the caller's explicit choice)", async () => {
  const s = await server();
  try {
    const port = Number(s.address.split(":")[1]);
    const e = await RpcClient.connect(service(port, ["127.0.0.1"], "ab".repeat(32)), { fingerprint: "ab".repeat(32), timeoutMs: 2000 }).catch((x) => x);
    expect(e).toBeInstanceOf(RpcError);
    expect(e.code).toBe("UNAUTHENTICATED");
    // Without ca or fingerprint the advertised one is NOT used silently.
    const e2 = await RpcClient.connect(service(port, ["127.0.0.1"], s.trust.fingerprint), { timeoutMs: 2000 }).catch((x) => x);
    expect(e2).toBeInstanceOf(RpcError);
  } finally {
    await s.close();
  }
});
