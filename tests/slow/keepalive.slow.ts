// The slow suite: tests that must let real time pass and have no clock to inject. Not run by
// `npm test` (bun test only picks up *.test.ts); `npm run test:slow` runs it, and so does CI
// (.ci/run, after npm test). See docs/TESTING.md.

import { expect, test } from "bun:test";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { handler } from "../../src/rpc/definitions.ts";
import { elapse } from "../support/wait.ts";

test("an idle connection outlives Bun's 60 s no-stream-progress limit (keep-alive PING on the control stream)", async () => {
  // Clock sync on datagrams only would not count as progress for Bun's stack; neither would none.
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {}).handler(handler("ping", () => "pong")).build();
  await server.start();
  const a = await RpcClient.connect(server.address, { ca: server.trust.ca });
  const b = await RpcClient.connect(server.address, { ca: server.trust.ca, clockSync: false });
  try {
    // Idle on purpose, past Bun's limit: the time is what is tested, and neither Bun's limit nor
    // the 20 s keep-alive interval (KEEPALIVE_MS) can be injected.
    await elapse(65_000);
    expect(a.connected).toBe(true);
    expect(b.connected).toBe(true);
    expect(await a.request("ping")).toBe("pong");
    expect(await b.request("ping")).toBe("pong");
    expect(a.clock.stats().transport).toBe("datagram");
    expect(b.clock.stats().transport).toBe("none");
  } finally {
    await a.close();
    await b.close();
    await server.close();
  }
  // What the clocks knew stays readable after close.
  expect(Number.isFinite(a.clock.stats().offsetMs)).toBe(true);
  expect(a.clock.stats().samples).toBeGreaterThan(200);
}, 80_000);
