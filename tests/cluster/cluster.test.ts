// Scale-out, as it runs in production: three server instances in their own processes (Bun,
// Node, Deno) behind one real bus (Debian's nats-server, then redis-server, on loopback),
// two clients connected to each, over real QUIC. Broadcast reaches every client exactly once and
// in order; a group emit reaches its members wherever they are; a call goes to a peer connected
// to another instance; presence follows clients and instances coming and going; an instance
// that dies leaves presence within its deadline (heartbeat 250 ms, dead after 1000 ms here);
// while the bus is down local traffic works and cross-instance calls fail with UNAVAILABLE, and
// once it is back everything works again.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { listener, RpcClient, RpcError, handler } from "../../mod.ts";
import { type Bus, startNats, startRedis } from "../support/buses.ts";
import { bundleForNode, runtimeCommand, spawnServer } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";

const INSTANCE = join(import.meta.dir, "_instance.ts");
const RUNTIMES = ["bun", "node", "deno"] as const;

interface Instance {
  info: { address: string; ca: string; instance: string };
  proc: ReturnType<typeof Bun.spawn>;
  stop: () => Promise<void>;
}

interface Client {
  c: RpcClient;
  id: string;
  at: number;
  events: { topic: string; payload: unknown }[];
}

let nodeBundle: Awaited<ReturnType<typeof bundleForNode>> | undefined;

async function startInstance(rt: "bun" | "deno" | "node", bus: Bus, id: string): Promise<Instance> {
  if (rt === "node") nodeBundle ??= await bundleForNode([INSTANCE]);
  return await spawnServer(runtimeCommand(rt, INSTANCE, [bus.kind, bus.url, id], nodeBundle?.dir), 30_000);
}
afterAll(() => nodeBundle?.cleanup());

async function connectClient(inst: Instance, at: number, n: number): Promise<Client> {
  const events: Client["events"] = [];
  const c = await RpcClient.connect(inst.info.address, { ca: inst.info.ca, name: `client-${at}-${n}`, reconnect: false });
  for (const topic of ["news", "room", "direct"]) c.handle(listener(topic, (_ctx, payload: unknown) => void events.push({ topic, payload })));
  c.handle(handler("whoami", () => `client-${at}-${n}`));
  c.handle(handler("slow", () => new Promise(() => {}))); // never answers: a call in flight when its instance dies
  const me = await c.request<{ id: string }>("whoami");
  return { c, id: me.id, at, events };
}

/** A cluster message as src/cluster/node.ts frames it: u32 header length, header JSON, payload. */
function frame(header: Record<string, unknown>, payload = new Uint8Array(0)): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(4 + h.length + payload.length);
  new DataView(out.buffer).setUint32(0, h.length);
  out.set(h, 4);
  out.set(payload, 4 + h.length);
  return out;
}

/** Publishes each message to each subject with the bus's own client, as a stranger would. */
async function publishRaw(kind: "nats" | "redis", url: string, subjects: string[], messages: Uint8Array[]): Promise<void> {
  if (kind === "nats") {
    const { connect } = await import("@nats-io/transport-node");
    const nc = await connect({ servers: url });
    for (const s of subjects) for (const m of messages) nc.publish(s, m);
    await nc.drain();
  } else {
    const { Redis } = await import("ioredis");
    const r = new Redis(url);
    for (const s of subjects) for (const m of messages) await r.publish(s, Buffer.from(m));
    await r.quit();
  }
}

const presenceIds = async (c: Client) => (await c.c.request<{ id: string }[]>("presence")).map((p) => p.id).sort();

for (const kind of ["nats", "redis"] as const) {
  describe(`cluster over ${kind}: 3 instances (Bun, Node, Deno), 6 clients`, () => {
    let bus: Bus;
    const instances: Instance[] = [];
    const clients: Client[] = [];
    const allIds = () => clients.map((c) => c.id).sort();

    beforeAll(async () => {
      bus = kind === "nats" ? await startNats() : await startRedis();
      instances.push(...(await Promise.all(RUNTIMES.map((rt, i) => startInstance(rt, bus, `${kind}${i}`)))));
      for (let i = 0; i < 3; i++) for (let n = 0; n < 2; n++) clients.push(await connectClient(instances[i], i, n));
      // Every instance sees every client (presence syncs through the bus).
      for (const c of clients) await waitFor(async () => (await presenceIds(c)).join() === allIds().join(), `instance ${c.at} to see all 6 clients`, { timeoutMs: 10_000, everyMs: 50 });
    }, 60_000);

    afterAll(async () => {
      for (const c of clients) await c.c.close().catch(() => {});
      for (const i of instances) await i.stop().catch(() => {});
      await bus?.stop();
    }, 30_000);

    test("presence: every client, with its instance, name and principal, seen from every instance", async () => {
      const seen = await clients[0].c.request<{ id: string; instance: string; name: string; principal: unknown }[]>("presence");
      for (const c of clients) {
        const e = seen.find((p) => p.id === c.id);
        expect(e).toMatchObject({ instance: `${kind}${c.at}`, name: `client-${c.at}-${c.id === clients[c.at * 2].id ? 0 : 1}`, principal: { user: e?.name } });
      }
      const stats = await clients[5].c.request<{ instances: string[]; connected: boolean; bus: string }>("stats");
      expect({ bus: stats.bus, connected: stats.connected, instances: [...stats.instances].sort() }).toEqual({ bus: kind, connected: true, instances: [`${kind}0`, `${kind}1`, `${kind}2`] });
    }, 20_000);

    test("broadcast from one instance reaches every client of every instance exactly once, in order", async () => {
      for (const c of clients) c.events.length = 0;
      const payloads = Array.from({ length: 50 }, (_, i) => ({ n: i }));
      const results = await clients[2].c.request<{ delivered: number; published: boolean }[]>("broadcast", { topic: "news", payloads });
      expect(results.every((r) => r.delivered === 2 && r.published)).toBe(true);
      for (const c of clients) await waitFor(() => c.events.length >= 50, `client ${c.id} to get 50 broadcasts`, { timeoutMs: 10_000 });
      await Bun.sleep(300); // a duplicate would arrive by now
      for (const c of clients) expect(c.events.map((e) => (e.payload as { n: number }).n)).toEqual(payloads.map((p) => p.n));
    }, 30_000);

    test("a group emit reaches its members on any instance, and only them; except skips the sender", async () => {
      for (const c of clients) c.events.length = 0;
      const [a, b, d] = [clients[0], clients[3], clients[5]]; // on instances 0, 1, 2
      await a.c.request("join", { group: "room/42 ü" });
      await b.c.request("join", { group: "room/42 ü" });
      // A peer on another instance put in the group by id: routed to its instance.
      await clients[1].c.request("join", { group: "room/42 ü", peer: d.id });
      await waitFor(async () => ((await presenceIds(a)).length === 6) && (await a.c.request<{ id: string; groups: string[] }[]>("presence")).filter((p) => p.groups.includes("room/42 ü")).length === 3, "the 3 members in presence", { timeoutMs: 5000, everyMs: 50 });
      const r = await clients[4].c.request<{ delivered: number; published: boolean }>("group", { group: "room/42 ü", topic: "room", payload: "hello room" });
      expect(r).toMatchObject({ delivered: 1, published: true }); // d is the one member on instance 2
      await waitFor(() => [a, b, d].every((c) => c.events.length === 1), "the 3 members to get it", { timeoutMs: 5000 });
      await a.c.request("group", { group: "room/42 ü", topic: "room", payload: "from a", exceptMe: true });
      await waitFor(() => b.events.length === 2 && d.events.length === 2, "b and d to get a's message", { timeoutMs: 5000 });
      await Bun.sleep(300);
      expect(a.events.map((e) => e.payload)).toEqual(["hello room"]);
      for (const c of [clients[1], clients[2], clients[4]]) expect(c.events).toEqual([]);
      await b.c.request("leave", { group: "room/42 ü" });
      await a.c.request("group", { group: "room/42 ü", topic: "room", payload: "after b left" });
      await waitFor(() => d.events.length === 3, "d to get the third", { timeoutMs: 5000 });
      await Bun.sleep(200);
      expect(b.events.length).toBe(2);
    }, 30_000);

    test("a call and an event to a peer on another instance; a peer that is nowhere is NOT_FOUND", async () => {
      const target = clients[4]; // instance 2 (Deno)
      expect(await clients[0].c.request("call", { peer: target.id, method: "whoami" })).toBe("client-2-0");
      target.events.length = 0;
      await clients[0].c.request("emitTo", { peer: target.id, topic: "direct", payload: { hi: 1 } });
      await waitFor(() => target.events.length === 1, "the direct event", { timeoutMs: 5000 });
      expect(target.events[0]).toEqual({ topic: "direct", payload: { hi: 1 } });
      const nobody = await clients[0].c.request("call", { peer: "no-such-peer", method: "whoami" }).catch((e) => e);
      expect(nobody).toBeInstanceOf(RpcError);
      expect((nobody as RpcError).code).toBe("NOT_FOUND");
      const deadline = await clients[0].c.request("call", { peer: target.id, method: "slow", timeoutMs: 300 }).catch((e) => e);
      expect((deadline as RpcError).code).toBe("DEADLINE_EXCEEDED");
    }, 30_000);

    test("garbage on the bus (not ours, truncated, another version, unknown type) is counted and dropped; the cluster goes on", async () => {
      const before = await clients[0].c.request<{ malformed: number }>("stats");
      const junk = [
        new TextEncoder().encode("hello, not a cluster message"),
        new Uint8Array([0, 0, 0, 200, 123]), // a header longer than the message
        frame({ v: 99, t: "b", o: "x" }),
        frame({ v: 1, t: "nonsense", o: "x" }),
        frame({ v: 1, t: "b", o: "x", topic: "news", f: 0 }, new Uint8Array([0xc1])), // a payload msgpack cannot decode
      ];
      await publishRaw(kind, bus.url, ["echostream.default.all", "echostream.default.hb", "echostream.default.n.nats0", "echostream.default.n.redis0"], junk);
      await waitFor(async () => (await clients[0].c.request<{ malformed: number }>("stats")).malformed >= before.malformed + 4, "instance 0 to count the junk", { timeoutMs: 5000, everyMs: 50 });
      for (const c of clients) c.events.length = 0;
      await clients[3].c.request("broadcast", { topic: "news", payloads: ["still fine"] });
      for (const c of clients) await waitFor(() => c.events.length === 1, `client ${c.id} to get the broadcast after the junk`, { timeoutMs: 5000 });
    }, 20_000);

    test("a client that leaves leaves presence everywhere", async () => {
      const extra = await connectClient(instances[1], 1, 9);
      await waitFor(async () => (await presenceIds(clients[0])).includes(extra.id), "the new client to appear", { timeoutMs: 5000, everyMs: 50 });
      await extra.c.close();
      await waitFor(async () => !(await presenceIds(clients[5])).includes(extra.id), "the client to disappear", { timeoutMs: 5000, everyMs: 50 });
    }, 20_000);

    test("the bus goes down: local traffic works, cross-instance calls fail UNAVAILABLE; back up, all works again", async () => {
      await bus.stop();
      await waitFor(async () => !(await clients[0].c.request<{ connected: boolean }>("stats")).connected, "instance 0 to see the bus down", { timeoutMs: 10_000, everyMs: 50 });
      for (const c of clients) c.events.length = 0;
      const local = await clients[0].c.request<{ delivered: number; published: boolean }[]>("broadcast", { topic: "news", payloads: ["local only"] });
      expect(local[0]).toMatchObject({ delivered: 2, published: false });
      await waitFor(() => clients[0].events.length === 1 && clients[1].events.length === 1, "the local clients to get it", { timeoutMs: 5000 });
      const call = await clients[0].c.request("call", { peer: clients[4].id, method: "whoami" }).catch((e) => e);
      expect((call as RpcError).code).toBe("UNAVAILABLE");
      // Calls inside one instance do not need the bus.
      expect(await clients[0].c.request("call", { peer: clients[1].id, method: "whoami" })).toBe("client-0-1");

      await bus.restart();
      for (const c of clients) await waitFor(async () => (await presenceIds(c)).join() === allIds().join() && (await c.c.request<{ connected: boolean }>("stats")).connected, `instance ${c.at} to resync`, { timeoutMs: 15_000, everyMs: 100 });
      expect(await clients[0].c.request("call", { peer: clients[4].id, method: "whoami" })).toBe("client-2-0");
      for (const c of clients) c.events.length = 0;
      await clients[4].c.request("broadcast", { topic: "news", payloads: ["after the outage"] });
      for (const c of clients) await waitFor(() => c.events.length === 1, `client ${c.id} to get the broadcast`, { timeoutMs: 5000 });
    }, 60_000);

    test("an instance that dies: a call in flight to it fails UNAVAILABLE, its clients leave presence within the deadline", async () => {
      const victim = clients[4]; // instance 2
      // Counted from here: the bus outage before may have expired instances too (if it outlasted deadAfterMs).
      const expiredBefore = (await clients[0].c.request<{ instancesExpired: number }>("stats")).instancesExpired;
      const inFlight = clients[0].c.request("call", { peer: victim.id, method: "slow", timeoutMs: 20_000 }).catch((e) => e);
      await Bun.sleep(200);
      const killedAt = performance.now();
      instances[2].proc.kill("SIGKILL");
      const err = await inFlight;
      expect((err as RpcError).code).toBe("UNAVAILABLE");
      await waitFor(async () => !(await presenceIds(clients[0])).includes(victim.id), "instance 2's clients to leave", { timeoutMs: 5000, everyMs: 50 });
      // deadAfterMs 1000 plus one heartbeat check (250): the stated bound, with scheduling slack.
      expect(performance.now() - killedAt).toBeLessThan(3000);
      const stats = await clients[0].c.request<{ instances: string[]; instancesExpired: number }>("stats");
      expect([...stats.instances].sort()).toEqual([`${kind}0`, `${kind}1`]);
      expect(stats.instancesExpired).toBe(expiredBefore + 1);
      const gone = await clients[0].c.request("call", { peer: victim.id, method: "whoami" }).catch((e) => e);
      expect((gone as RpcError).code).toBe("NOT_FOUND");
    }, 30_000);
  });
}
