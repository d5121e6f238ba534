// The cluster API on a server with no bus (the default): groups, peers by id, presence and its
// watch work inside the one process; nothing needs NATS or Redis.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { type Context, handler, listener, type PresenceEvent, RpcClient, RpcError, RpcServer } from "../../mod.ts";
import { waitFor } from "../support/wait.ts";

const server: RpcServer = RpcServer.builder()
  .bind("127.0.0.1:0")
  .log(() => {})
  .onError(() => {})
  .authenticate((hello) => ({ user: hello.name }))
  .handler(handler("whoami", (ctx: Context) => ctx.peer.id))
  .handler(handler("room.join", (ctx: Context, room: string) => server.join(ctx.peer, room)))
  .handler(handler("room.say", (ctx: Context, m: { room: string; text: string }) => server.emitToGroup(m.room, "room.message", m.text, { except: [ctx.peer.id] })))
  .build();

interface C {
  c: RpcClient;
  id: string;
  got: unknown[];
}
const clients: C[] = [];
const watched: PresenceEvent[] = [];
const stopWatch = new AbortController();

beforeAll(async () => {
  await server.start();
  void (async () => {
    for await (const e of server.cluster.watch(stopWatch.signal)) watched.push(e);
  })();
  for (const name of ["ann", "bob", "cyd"]) {
    const got: unknown[] = [];
    const c = await RpcClient.connect(server.address, { ca: server.trust.ca, name, reconnect: false });
    c.handle(listener("room.message", (_ctx, text: string) => void got.push(text)));
    c.handle(handler("ping", (_ctx, n: number) => n + 1));
    clients.push({ c, id: await c.request<string>("whoami"), got });
  }
}, 20_000);

afterAll(async () => {
  stopWatch.abort();
  for (const { c } of clients) await c.close();
  await server.close({ graceMs: 0 });
});

test("presence and instances describe this one server; stats say there is no bus", () => {
  const p = server.cluster.presence();
  expect(p.map((e) => e.name).sort()).toEqual(["ann", "bob", "cyd"]);
  for (const e of p) {
    expect(e).toMatchObject({ instance: server.cluster.instanceId, principal: { user: e.name }, groups: [] });
    expect(e.remote).toMatch(/^127\.0\.0\.1:\d+$/);
  }
  expect(server.peers.map((peer) => peer.id).sort()).toEqual(clients.map((c) => c.id).sort());
  expect(server.cluster.instances()).toEqual([{ id: server.cluster.instanceId, self: true, peers: 3, lastSeenMs: 0 }]);
  expect(server.cluster.stats()).toMatchObject({ bus: "none", connected: true, instances: 1, peers: 3, published: 0 });
  expect(watched.filter((e) => e.type === "up").map((e) => e.peer.name)).toEqual(["ann", "bob", "cyd"]);
});

test("groups: members get the group's events, the sender is skipped with except, a leaver gets nothing", async () => {
  const [ann, bob, cyd] = clients;
  await ann.c.request("room.join", "lobby");
  await bob.c.request("room.join", "lobby");
  expect(server.cluster.presence().find((e) => e.id === ann.id)?.groups).toEqual(["lobby"]);
  await ann.c.request("room.say", { room: "lobby", text: "hi" });
  await waitFor(() => bob.got.length === 1, "bob to get ann's message");
  const r = await server.emitToGroup("lobby", "room.message", "from the server");
  expect(r).toEqual({ delivered: 2, failed: 0, published: false });
  await waitFor(() => ann.got.length === 1 && bob.got.length === 2, "both members to get the server's message");
  await server.leave(bob.id, "lobby");
  await server.emitToGroup("lobby", "room.message", "after bob left");
  await waitFor(() => ann.got.length === 2, "ann to get the third");
  await Bun.sleep(50);
  expect({ ann: ann.got, bob: bob.got, cyd: cyd.got }).toEqual({ ann: ["from the server", "after bob left"], bob: ["hi", "from the server"], cyd: [] });
  expect((await server.emitToGroup("nobody-here", "room.message", "x")).delivered).toBe(0);
}, 10_000);

test("server.peer(id): calls and events to a local peer; an unknown id is NOT_FOUND; bad group names are INVALID_ARGUMENT", async () => {
  const bob = clients[1];
  const ref = server.peer(bob.id);
  expect(ref.location?.name).toBe("bob");
  expect(await ref.request("ping", 41)).toBe(42);
  await ref.emit("room.message", "direct");
  await waitFor(() => bob.got.includes("direct"), "the direct event");
  const missing = server.peer("no-such-id");
  expect(missing.location).toBeUndefined();
  for (const p of [missing.request("ping", 1), missing.emit("room.message", "x"), missing.join("g"), server.join("no-such-id", "g")]) {
    const e = await p.catch((err) => err);
    expect(e).toBeInstanceOf(RpcError);
    expect((e as RpcError).code).toBe("NOT_FOUND");
  }
  for (const bad of ["", "x".repeat(257)]) {
    expect(((await server.join(bob.id, bad).catch((e) => e)) as RpcError).code).toBe("INVALID_ARGUMENT");
    expect(((await server.emitToGroup(bad, "t", 1).catch((e) => e)) as RpcError).code).toBe("INVALID_ARGUMENT");
  }
  expect(() => server.peer("")).toThrow(TypeError);
}, 10_000);

test("a peer that disconnects leaves presence and its groups; watch reports it", async () => {
  const cyd = clients[2];
  await server.join(cyd.id, "lobby");
  await cyd.c.close();
  await waitFor(() => !server.cluster.presence().some((e) => e.id === cyd.id), "cyd to leave presence");
  expect(watched.at(-1)).toMatchObject({ type: "down", peer: { id: cyd.id, name: "cyd" } });
  const r = await server.emitToGroup("lobby", "room.message", "after cyd left");
  expect(r.delivered).toBe(1); // ann only
}, 10_000);

test("a server whose listener cannot start (its port is taken) leaves the cluster it had joined", async () => {
  const { startNats } = await import("../support/buses.ts");
  const { natsCluster } = await import("../../src/cluster/nats.ts");
  const bus = await startNats();
  const watcher = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).cluster(natsCluster({ servers: bus.url }), { heartbeatMs: 100 }).build();
  // The same UDP port as a running server: binding fails after the cluster was joined.
  const taken = server.address.split(":").pop();
  const failing = RpcServer.builder().bind(`127.0.0.1:${taken}`).log(() => {}).cluster(natsCluster({ servers: bus.url }), { heartbeatMs: 100 }).build();
  try {
    await watcher.start();
    const err = await failing.start().catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    // It said goodbye: the other instance does not keep it.
    await waitFor(() => watcher.cluster.instances().length === 1, "the failed instance to be gone", { timeoutMs: 3000 });
    expect(failing.cluster.connected).toBe(false);
  } finally {
    await failing.close({ graceMs: 0 });
    await watcher.close({ graceMs: 0 });
    await bus.stop();
  }
}, 20_000);

test("a watcher that stops reading is bounded: past 4,096 unread events it fails with RESOURCE_EXHAUSTED; a reading watcher misses nothing", async () => {
  const ann = clients[0];
  const before = server.cluster.stats().watchersDropped;
  const stalled = server.cluster.watch()[Symbol.asyncIterator]();
  const seen: PresenceEvent[] = [];
  const stop = new AbortController();
  const reading = (async () => {
    for await (const e of server.cluster.watch(stop.signal)) seen.push(e);
  })();
  // 2 × 2,100 group changes of one peer: 4,200 "up" events.
  for (let i = 0; i < 2100; i++) {
    await server.join(ann.id, "churn");
    await server.leave(ann.id, "churn");
  }
  expect(server.cluster.stats().watchersDropped).toBe(before + 1);
  const err = await stalled.next().catch((e) => e);
  expect(err).toBeInstanceOf(RpcError);
  expect(err.code).toBe("RESOURCE_EXHAUSTED");
  expect(err.message).toContain("read presence() and watch again");
  expect((await stalled.next()).done).toBe(true); // ended for good
  await waitFor(() => seen.length === 4200, "the reading watcher to see all 4,200");
  expect(seen.every((e) => e.type === "up" && e.peer.id === ann.id)).toBe(true);
  expect(seen.filter((e) => e.peer.groups.includes("churn")).length).toBe(2100);
  stop.abort();
  await reading;
  expect(server.cluster.stats().watchersDropped).toBe(before + 1);
}, 20_000);
