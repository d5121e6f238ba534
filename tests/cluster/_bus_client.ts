// The two bus client libraries on one runtime (Bun, Deno, or Node from a bundle), for
// tests/cluster/buses.test.ts:   _bus_client.ts <nats url> <redis url>
// Over each bus: one subscription, 100 messages published to it, all received in order.
// Prints one JSON line {ok, runtime, nats, redis} (counts received in order) and exits 0 when
// both got all 100; otherwise prints {ok: false, error} and exits 1.

import process from "node:process";
import { connect } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { runtimeName } from "../../src/transport/select.ts";

const N = 100;
const [natsUrl, redisUrl] = process.argv.slice(2);
const runtime = runtimeName();

// A hung client must fail the run with a reason, not leave the test waiting for its timeout.
const deadline = setTimeout(() => fail(new Error("timed out after 15000 ms")), 15_000);

function fail(e: unknown): never {
  console.log(JSON.stringify({ ok: false, runtime, error: String((e as Error)?.stack ?? e) }));
  process.exit(1);
}

/** How many of `got` match 0, 1, 2… from the start (N when all arrived in order). */
const inOrder = (got: string[]) => {
  let i = 0;
  while (i < got.length && got[i] === String(i)) i++;
  return i;
};

async function overNats(): Promise<number> {
  const nc = await connect({ servers: natsUrl, name: `bus-client-${runtime}` });
  const subject = `echostream.test.${runtime}`;
  const sub = nc.subscribe(subject, { max: N });
  // The subscription reaches the server before the publishes: same connection, in order.
  for (let i = 0; i < N; i++) nc.publish(subject, String(i));
  await nc.flush();
  const got: string[] = [];
  for await (const m of sub) got.push(m.string());
  await nc.close();
  return inOrder(got);
}

async function overRedis(): Promise<number> {
  // Subscribing puts a connection in subscriber mode: publishing needs a second one.
  const sub = new Redis(redisUrl, { lazyConnect: true });
  const pub = new Redis(redisUrl, { lazyConnect: true });
  await Promise.all([sub.connect(), pub.connect()]);
  const channel = `echostream.test.${runtime}`;
  const got: string[] = [];
  const all = new Promise<void>((resolve) => {
    sub.on("message", (ch: string, message: string) => {
      if (ch === channel && got.push(message) === N) resolve();
    });
  });
  await sub.subscribe(channel);
  for (let i = 0; i < N; i++) await pub.publish(channel, String(i));
  await all;
  await Promise.all([sub.quit(), pub.quit()]);
  return inOrder(got);
}

try {
  const nats = await overNats();
  const redis = await overRedis();
  clearTimeout(deadline);
  console.log(JSON.stringify({ ok: nats === N && redis === N, runtime, nats, redis }));
  process.exit(nats === N && redis === N ? 0 : 1);
} catch (e) {
  fail(e);
}
