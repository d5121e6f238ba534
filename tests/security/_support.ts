// Shared by the security tests: servers and clients on loopback (Bun), closed after each test.

import { afterEach } from "bun:test";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer, type RpcServerBuilder } from "../../src/rpc/server.ts";
import { RpcError } from "../../src/protocol/rpc_error.ts";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!().catch(() => {});
});

/** Polls `cond` every 5 ms; throws after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** A started server on 127.0.0.1, quiet, closed after the test. */
export async function start(configure: (b: RpcServerBuilder) => RpcServerBuilder): Promise<RpcServer> {
  const server = configure(RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {})).build();
  await server.start();
  cleanup.push(() => server.close({ graceMs: 0 }));
  return server;
}

/** A client of `server`, closed after the test. */
export async function connect(server: RpcServer, options: Parameters<typeof RpcClient.connect>[1] = {}): Promise<RpcClient> {
  const c = await RpcClient.connect(server.address, { ca: server.trust.ca, ...options });
  cleanup.push(() => c.close());
  return c;
}

/** The RpcError `p` fails with (anything else, or success, fails the test). */
export async function failure(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RpcError) return e;
    throw e;
  }
  throw new Error("expected a failure");
}
