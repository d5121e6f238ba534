// Access control and rate limits end to end, over real QUIC (Bun): what a peer sees when it is
// denied or limited, that nothing of a refused call runs, and what the counters say.

import { describe, expect, test } from "bun:test";
import { handler, listener, streamHandler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import type { RpcError } from "../../src/protocol/rpc_error.ts";
import type { Context } from "../../src/rpc/context.ts";
import { connect, failure, start, until } from "./_support.ts";

describe("access control", () => {
  test("deny before allow, per kind; denied requests answer PERMISSION_DENIED and never run; the connection stays", async () => {
    const ran: string[] = [];
    const events: string[] = [];
    const h = (name: string) => handler(name, (ctx: Context) => (ran.push(ctx.name), "ok"));
    const server = await start((b) =>
      b.handler(h("user.get")).handler(h("user.delete")).handler(h("admin.secret")).handler(h("admin.stats"))
        .listener(listener("chat.room1", (_c, m: string) => void events.push(m)))
        .listener(listener("chat.admin", (_c, m: string) => void events.push(`admin:${m}`)))
        .streamHandler(streamHandler("files.upload", async (_c, s) => void (await s.recv())))
        .accessControl({
          permissions: {
            request: { allow: ["user.*", "admin.>"], deny: ["user.delete", "admin.secret"] },
            event: { deny: ["chat.admin"] },
            stream: [],
          },
        })
    );
    const client = await connect(server);
    expect(await client.request("user.get")).toBe("ok");
    expect(await client.request("admin.stats")).toBe("ok");
    for (const m of ["user.delete", "admin.secret", "other.thing", "nope"]) {
      const e = await failure(client.request(m, { big: "payload" }));
      expect([m, e.code]).toEqual([m, "PERMISSION_DENIED"]);
    }
    // A denied name answers the same whether or not it exists: nothing is leaked.
    expect((await failure(client.request("nope"))).message).not.toContain("no handler");
    expect(ran).toEqual(["user.get", "admin.stats"]);
    // Events: a denied topic is dropped (no reply exists), allowed ones arrive in order.
    await client.emit("chat.admin", "x");
    await client.emit("chat.room1", "hello");
    await until(() => events.length === 1, "the allowed event");
    expect(events).toEqual(["hello"]);
    // Streams: an empty allow list denies every open.
    expect((await failure(client.createStream("files.upload").build())).code).toBe("PERMISSION_DENIED");
    expect(client.connected).toBe(true);
    expect(await client.request("user.get")).toBe("ok");
    expect(server.stats().rejected.permissionDenied).toBe(4 + 1 + 1 + 1);
    expect(server.peers[0].stats.rejected.permissionDenied).toBe(7); // counted per connection too
  });

  test("per-peer rules from the principal, computed once per connection (IoT: each device its own names)", async () => {
    let computed = 0;
    const got: string[] = [];
    const server = await start((b) =>
      b.authenticate(({ auth }) => ({ id: String(auth) }))
        .listener(listener("telemetry.d42.temp", (ctx) => void got.push(`${(ctx.principal as { id: string }).id}:${ctx.name}`)))
        .listener(listener("telemetry.d43.temp", (ctx) => void got.push(`${(ctx.principal as { id: string }).id}:${ctx.name}`)))
        .handler(handler("time.now", () => 1))
        .accessControl({
          defaultDeny: true,
          permissions: { request: ["time.now"] },
          perPeer: ({ principal }) => {
            computed++;
            return { event: [`telemetry.${(principal as { id: string }).id}.>`] };
          },
        })
    );
    const d42 = await connect(server, { auth: "d42" });
    const d43 = await connect(server, { auth: "d43" });
    for (let i = 0; i < 5; i++) {
      await d42.emit("telemetry.d42.temp", i);
      await d42.emit("telemetry.d43.temp", i); // another device's name: dropped
      await d43.emit("telemetry.d43.temp", i);
    }
    expect(await d42.request("time.now")).toBe(1);
    await until(() => got.length === 10, "the allowed events");
    expect(got.filter((g) => g.startsWith("d42:"))).toEqual(Array(5).fill("d42:telemetry.d42.temp"));
    expect(got.filter((g) => g.startsWith("d43:"))).toEqual(Array(5).fill("d43:telemetry.d43.temp"));
    expect(computed).toBe(2);
    // defaultDeny: a kind with no allow list (streams) is denied.
    expect((await failure(d42.createStream("anything").build())).code).toBe("PERMISSION_DENIED");
    expect(server.stats().rejected.permissionDenied).toBe(6);
  });

  test("a function policy sees principal, kind, name and remote; an async hook works; a throwing one denies", async () => {
    const seen: string[] = [];
    const server = await start((b) =>
      b.authenticate(() => "alice")
        .handler(handler("a", () => "A"))
        .handler(handler("b", () => "B"))
        .handler(handler("boom", () => "never"))
        .accessControl(async (access) => {
          seen.push(`${access.principal}/${access.kind}/${access.name}/${access.remote.host}`);
          if (access.name === "boom") throw new Error("policy backend down");
          await Bun.sleep(1);
          return access.name === "a";
        })
    );
    const client = await connect(server);
    expect(await client.request("a")).toBe("A");
    expect((await failure(client.request("b"))).code).toBe("PERMISSION_DENIED");
    expect((await failure(client.request("boom"))).code).toBe("PERMISSION_DENIED");
    expect(seen).toEqual(["alice/request/a/127.0.0.1", "alice/request/b/127.0.0.1", "alice/request/boom/127.0.0.1"]);
  });

  test("a per-peer rule that throws refuses the connection (fail closed); an invalid policy fails at build", async () => {
    const server = await start((b) => b.accessControl({ perPeer: () => ({ request: "x" as unknown as string[] }) }));
    const e = await failure(RpcClient.connect(server.address, { ca: server.trust.ca }));
    expect(e.code).toBe("PERMISSION_DENIED");
    await until(() => server.stats().rejected.unauthenticated === 1, "the refusal to be counted");
    expect(() => RpcServer.builder().accessControl({ permissions: { requests: ["a"] } } as never)).toThrow(/requests/);
    expect(() => RpcServer.builder().accessControl({ permissions: { request: ["a.>.b"] } })).toThrow(/may only be the last token/);
    expect(() => RpcServer.builder().accessControl({ deny: ["a"] } as never)).toThrow(/deny/);
  });

  test("both directions: a client limits what the server may call on it", async () => {
    let reply: unknown;
    const server = await start((b) =>
      b.handler(handler("probe", async (ctx: Context) => {
        const ok = await ctx.peer.request("cmd.d42.ping");
        const denied = await failure(ctx.peer.request("cmd.d43.ping"));
        const wipe = await failure(ctx.peer.request("device.wipe"));
        return (reply = [ok, denied.code, wipe.code]);
      }))
    );
    const client = await connect(server, { accessControl: { permissions: { request: ["cmd.d42.*"] } } });
    client.handle(handler("cmd.d42.ping", () => "pong"), handler("cmd.d43.ping", () => "wrong"), handler("device.wipe", () => "wiped"));
    expect(await client.request("probe")).toEqual(["pong", "PERMISSION_DENIED", "PERMISSION_DENIED"]);
    expect(reply).toEqual(["pong", "PERMISSION_DENIED", "PERMISSION_DENIED"]);
    expect(client.stats().rejected.permissionDenied).toBe(2);
  });
});

describe("rate limits", () => {
  test("per address on one name, per principal on everything: RESOURCE_EXHAUSTED with retryAfterMs; others unaffected", async () => {
    let logins = 0;
    const server = await start((b) =>
      b.authenticate(({ auth }) => String(auth))
        .handler(handler("user.login", () => ++logins))
        .handler(handler("echo", (_c, x: unknown) => x))
        .rateLimit({ key: "address", names: ["user.login"], perSecond: 5 })
        .rateLimit({ key: "principal", perSecond: 20, burst: 20 })
    );
    const alice = await connect(server, { auth: "alice" });
    for (let i = 0; i < 5; i++) await alice.request("user.login");
    const e = await failure(alice.request("user.login"));
    expect(e.code).toBe("RESOURCE_EXHAUSTED");
    const retry = (e.details as { retryAfterMs: number }).retryAfterMs;
    expect(retry).toBeGreaterThan(100); // one emission interval is 200 ms
    expect(retry).toBeLessThanOrEqual(200);
    expect(logins).toBe(5); // the refused call never ran
    // Another name is not limited by the login rule.
    expect(await alice.request("echo", 1)).toBe(1);
    // The per-principal rule: bob (same address, but logins are exhausted anyway) can echo on.
    const bob = await connect(server, { auth: "bob" });
    for (let i = 0; i < 10; i++) expect(await bob.request("echo", i)).toBe(i);
    // alice burns her principal budget across two connections.
    const alice2 = await connect(server, { auth: "alice" });
    let limited = 0;
    for (let i = 0; i < 30; i++) await alice2.request("echo", i).catch((e) => (e as RpcError).code === "RESOURCE_EXHAUSTED" && limited++);
    expect(limited).toBeGreaterThanOrEqual(10);
    expect(server.stats().rejected.rateLimited).toBe(1 + limited);
  });

  test("the client retries a rate-limited call after retryAfterMs when opted in, within its deadline", async () => {
    let runs = 0;
    const server = await start((b) => b.handler(handler("op", () => ++runs)).rateLimit({ key: "connection", perSecond: 10, burst: 1 }));
    const plain = await connect(server);
    const patient = await connect(server, { retryRateLimited: 3 });
    expect(await plain.request("op")).toBe(1);
    expect((await failure(plain.request("op"))).code).toBe("RESOURCE_EXHAUSTED");
    expect(await patient.request("op")).toBe(2);
    const t0 = performance.now();
    expect(await patient.request("op")).toBe(3); // refused once, retried after ~100 ms
    expect(performance.now() - t0).toBeGreaterThanOrEqual(50);
    // A deadline shorter than the retry delay: the refusal is the answer, not a late retry.
    expect((await failure(patient.request("op", undefined, { timeoutMs: 20 }))).code).toBe("RESOURCE_EXHAUSTED");
    expect(runs).toBe(3);
  });

  test("events over the limit are dropped and counted; stream opens refused with RESOURCE_EXHAUSTED", async () => {
    let got = 0;
    const server = await start((b) =>
      b.listener(listener("tick", () => void got++))
        .streamHandler(streamHandler("s", async (_c, s) => void (await s.recv())))
        .rateLimit({ key: "connection", kinds: ["event"], perSecond: 1, burst: 10 })
        .rateLimit({ key: "connection", kinds: ["stream"], perSecond: 1, burst: 1 })
    );
    const client = await connect(server);
    for (let i = 0; i < 50; i++) await client.emit("tick", i);
    await until(() => server.stats().eventsReceived === 50, "all events read");
    await Bun.sleep(20); // negative check: listener calls past the 10 allowed would have run by now
    expect(got).toBe(10);
    const s1 = await client.createStream("s").build();
    const e = await failure(client.createStream("s").build());
    expect(e.code).toBe("RESOURCE_EXHAUSTED");
    expect((e as RpcError).message).toContain("retry after");
    await s1.end();
    expect(server.stats().rejected.rateLimited).toBe(40 + 1);
  });

  test("bytesPerSecond on a stream slows the sender through flow-control credit; nothing is lost", async () => {
    let received = 0;
    const server = await start((b) =>
      b.streamHandler(streamHandler("upload", async (_c, s) => {
        for await (const f of s) received += f.length;
      })).rateLimit({ key: "connection", kinds: ["stream"], bytesPerSecond: 2 * 1024 * 1024, burst: 256 * 1024 })
    );
    const client = await connect(server);
    const s = await client.createStream("upload").build();
    const chunk = new Uint8Array(16 * 1024);
    const total = 2 * 1024 * 1024;
    const t0 = performance.now();
    for (let sent = 0; sent < total; sent += chunk.length) await s.send(chunk);
    await s.end();
    await until(() => received === total, "every byte", 10_000);
    const seconds = (performance.now() - t0) / 1000;
    // 2 MiB at 2 MiB/s with a 256 KiB burst and one window in flight: at least ~0.6 s; unlimited it takes ~20 ms.
    expect(seconds).toBeGreaterThan(0.5);
    expect(received).toBe(total);
  });
});
