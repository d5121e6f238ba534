// The real buses the cluster tests run on (tests/support/buses.ts: Debian's nats-server and
// redis-server on loopback), and the two client libraries the cluster adapters use, on every
// runtime: @nats-io/transport-node and ioredis, each in a Bun, Deno and Node process
// (_bus_client.ts), 100 messages in order over each bus. Then a bus restarted under a
// connected client: NATS and ioredis both reconnect on their own, with their subscriptions.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { type Bus, startNats, startRedis } from "../support/buses.ts";
import { bundleForNode, run, type Runtime, runtimeCommand, tool } from "../support/process.ts";
import { deferred, waitFor, within } from "../support/wait.ts";

const ROOT = join(import.meta.dir, "..", "..");
const CLIENT = join(import.meta.dir, "_bus_client.ts");

/** Whether something accepts TCP connections on 127.0.0.1:`port` right now. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: "127.0.0.1", port });
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

describe("tests/support/buses.ts", () => {
  for (const [kind, start] of [["nats", startNats], ["redis", startRedis]] as const) {
    test(`${kind}: a free loopback port; restart on the same port; stop frees it; stop then restart`, async () => {
      const bus = await start();
      try {
        expect(bus.kind).toBe(kind);
        expect(bus.url).toBe(`${kind}://127.0.0.1:${bus.port}`);
        expect(await listening(bus.port)).toBe(true);
        await bus.restart();
        expect(await listening(bus.port)).toBe(true);
        // A second server on a taken port fails at once, saying so (it must not take the
        // first one's answer to its readiness probe for its own).
        await expect(start({ port: bus.port })).rejects.toThrow(`port ${bus.port} on 127.0.0.1 is already in use`);
        await bus.stop();
        expect(await listening(bus.port)).toBe(false);
        // Stopped, then brought back (what a test of a bus outage does).
        await bus.restart();
        expect(await listening(bus.port)).toBe(true);
      } finally {
        await bus.stop();
      }
      expect(await listening(bus.port)).toBe(false);
    }, 20_000);
  }

  test("servers a test process leaves running die when it exits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "echostream-buses-"));
    try {
      const script = join(dir, "leak.ts");
      writeFileSync(
        script,
        `import { startNats, startRedis } from ${JSON.stringify(join(ROOT, "tests", "support", "buses.ts"))};\n` +
          `const n = await startNats(); const r = await startRedis();\n` +
          `console.log(JSON.stringify({ nats: n.port, redis: r.port }));\n` +
          `process.exit(0);\n`,
      );
      const r = await run([tool("bun"), script], { timeoutMs: 15_000 });
      expect(r.code).toBe(0);
      const ports = JSON.parse(r.stdout.trim().split("\n").pop()!) as { nats: number; redis: number };
      await waitFor(
        async () => !(await listening(ports.nats)) && !(await listening(ports.redis)),
        "the leaked servers to be gone",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);
});

describe("bus clients on Bun, Deno and Node: 100 messages in order over NATS and Redis", () => {
  let nats: Bus;
  let redis: Bus;
  let node: { dir: string; cleanup: () => void };

  beforeAll(async () => {
    [nats, redis, node] = await Promise.all([startNats(), startRedis(), bundleForNode([CLIENT])]);
  }, 30_000);

  afterAll(async () => {
    node?.cleanup();
    await Promise.all([nats?.stop(), redis?.stop()]);
  }, 10_000);

  for (const rt of ["bun", "deno", "node"] as Runtime[]) {
    test(rt, async () => {
      // Deno with the repo's config: its import map is what resolves the two bare imports.
      const cmd = rt === "deno"
        ? [tool("deno"), "run", "-A", "--config", join(ROOT, "deno.json"), CLIENT, nats.url, redis.url]
        : runtimeCommand(rt, CLIENT, [nats.url, redis.url], node.dir);
      const r = await run(cmd, { timeoutMs: 25_000 });
      const line = r.stdout.trim().split("\n").pop() ?? "";
      if (!line.startsWith("{")) {
        throw new Error(`${cmd.join(" ")} printed no result (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
      }
      expect(JSON.parse(line)).toEqual({ ok: true, runtime: rt, nats: 100, redis: 100 });
      expect(r.code).toBe(0);
    }, 30_000);
  }
});

describe("a bus restarted under a connected client", () => {
  // How long after the server accepted connections again the client was usable: printed once.
  const timings: string[] = [];
  afterAll(() => {
    if (timings.length) console.log(`bus restart, client usable again: ${timings.join(", ")}`);
  });

  test("NATS: the client reconnects, resubscribes, and a publish after the restart is received", async () => {
    const bus = await startNats();
    let nc: NatsConnection | undefined;
    try {
      const c = (nc = await connect({ servers: bus.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 }));
      const reconnected = deferred();
      void (async () => {
        for await (const s of c.status()) if (s.type === "reconnect") reconnected.resolve();
      })();
      const got: string[] = [];
      const after = deferred();
      const sub = c.subscribe("restart.test");
      void (async () => {
        for await (const m of sub) if (got.push(m.string()) && m.string() === "after") after.resolve();
      })();
      c.publish("restart.test", "before");
      await c.flush();
      await waitFor(() => got.length === 1, "the message before the restart");

      const t0 = performance.now();
      await bus.restart();
      const up = performance.now();
      await within(reconnected.promise, "the NATS client's reconnect", 8000);
      const back = performance.now();
      c.publish("restart.test", "after");
      await within(after.promise, "the message published after the restart", 4000);
      const done = performance.now();
      const [restart, reconnect, roundTrip] = [up - t0, back - up, done - up].map(Math.round);
      timings.push(`nats ${reconnect} ms to reconnect, ${roundTrip} ms to a round trip (restart itself ${restart} ms)`);
      expect(got).toEqual(["before", "after"]);
    } finally {
      await nc?.close();
      await bus.stop();
    }
  }, 20_000);

  test("Redis: ioredis reconnects both connections and restores the subscription", async () => {
    const bus = await startRedis();
    const sub = new Redis(bus.url);
    const pub = new Redis(bus.url);
    // While the server is down both report ECONNREFUSED: expected here, not worth a log line.
    for (const c of [sub, pub]) c.on("error", () => {});
    try {
      const got: string[] = [];
      sub.on("message", (_ch: string, m: string) => void got.push(m));
      await sub.subscribe("restart.test");
      expect(await pub.publish("restart.test", "before")).toBe(1);
      await waitFor(() => got.length === 1, "the message before the restart");

      const t0 = performance.now();
      await bus.restart();
      const up = performance.now();
      // PUBLISH answers how many subscribers got it: 1 once the subscriber has resubscribed
      // (the publisher's own reconnect comes first: its commands wait in the offline queue).
      let n = 0;
      await waitFor(
        async () => (await pub.publish("restart.test", `after-${++n}`)) === 1,
        "a publish that reaches the resubscribed subscriber",
        { timeoutMs: 8000, everyMs: 10 },
      );
      const back = performance.now();
      await waitFor(() => got.includes(`after-${n}`), "the message published after the restart");
      const done = performance.now();
      const [restart, reached, delivered] = [up - t0, back - up, done - up].map(Math.round);
      timings.push(
        `redis ${reached} ms to a publish that reached the subscriber (${n} tries), ${delivered} ms to its delivery (restart itself ${restart} ms)`,
      );
      expect(got[0]).toBe("before");
      expect(got.at(-1)).toBe(`after-${n}`);
      // Publishes made before the resubscribe reached nobody, and none arrived twice.
      expect(got.slice(1)).toEqual([`after-${n}`]);
    } finally {
      sub.disconnect();
      pub.disconnect();
      await bus.stop();
    }
  }, 20_000);
});
