// Resource limits and flood defences, over real QUIC (Bun): handler slots that outlive
// cancelled calls, the rapid-reset breaker, slow consumers, slowloris, idle streams, queued
// events and connection admission. Each asserts what the attacker sees and the counter.

import { describe, expect, test } from "bun:test";
import { handler, listener, streamHandler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import type { RpcError } from "../../src/protocol/rpc_error.ts";
import { CloseCode } from "../../src/protocol/version.ts";
import { FrameType } from "../../src/protocol/frame.ts";
import { createFrameCodec } from "../../src/protocol/codec.ts";
import { inspectPeer } from "../../src/rpc/peer.ts";
import { defaultTransport } from "../../src/transport/select.ts";
import type { Transport } from "../../src/transport/types.ts";
import { connect, failure, start, until } from "./_support.ts";

describe("handler slots and rapid reset", () => {
  test("cancelled calls keep their handler slot until the handler returns: running handlers never exceed the limit", async () => {
    let running = 0;
    let peak = 0;
    let finished = 0;
    const server = await start((b) =>
      b.limits({ maxConcurrentHandlers: 4, maxResets: 10_000 })
        .handler(handler("stubborn", async () => {
          // Ignores ctx.signal on purpose: a handler that keeps working after its call ended.
          peak = Math.max(peak, ++running);
          await Bun.sleep(100);
          running--;
          finished++;
        }))
    );
    const client = await connect(server);
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 24; i++) {
      const ac = new AbortController();
      calls.push(client.request("stubborn", undefined, { signal: ac.signal }).catch((e) => e));
      await Bun.sleep(1);
      ac.abort();
    }
    for (const e of await Promise.all(calls)) expect((e as RpcError).code).toBe("CANCELLED");
    await until(() => finished === 24 || server.stats().inFlight === 0 && running === 0 && finished > 0, "the handlers to drain", 10_000);
    expect(peak).toBe(4);
    expect(server.stats().rejected.handlerWaits).toBeGreaterThan(0);
    expect(client.connected).toBe(true);
  });

  test("open-and-cancel past maxResets in the window closes the connection with 0x107 (GOAWAY first)", async () => {
    const server = await start((b) => b.limits({ maxResets: 20, resetWindowMs: 10_000 }).handler(handler("slow", () => Bun.sleep(1000))));
    const client = await connect(server);
    const closed = client.peer.closed;
    for (let i = 0; i < 60 && !client.peer.isClosed; i++) {
      const ac = new AbortController();
      const call = client.request("slow", undefined, { signal: ac.signal }).catch(() => {});
      await Bun.sleep(2);
      ac.abort();
      await call;
    }
    const info = await Promise.race([closed, Bun.sleep(3000).then(() => undefined)]);
    expect(info?.code).toBe(CloseCode.TOO_MANY_RESETS);
    expect(client.peer.goingAway?.code).toBe("RESOURCE_EXHAUSTED");
    expect(server.stats().rejected.tooManyResets).toBe(1);
  });

  test("cancels after the call's deadline are honest timeouts and do not count", async () => {
    const server = await start((b) => b.limits({ maxResets: 5 }).handler(handler("slow", () => Bun.sleep(200))));
    const client = await connect(server);
    for (let i = 0; i < 15; i++) expect((await failure(client.request("slow", undefined, { timeoutMs: 20 }))).code).toBe("DEADLINE_EXCEEDED");
    await Bun.sleep(50); // negative check: a close for too many resets would have come by now
    expect(client.connected).toBe(true);
    expect(server.stats().rejected.tooManyResets).toBe(0);
  });
});

describe("queues toward and from one peer", () => {
  test("a peer that does not take its events past maxOutgoingBytes is disconnected with 0x108, never buffered without bound", async () => {
    let emitted = 0;
    const server = await start((b) =>
      b.limits({ maxOutgoingBytes: 256 * 1024 }).handler(handler("flood", (ctx) => {
        // Fire and forget: nothing waits for the peer to take them.
        for (let i = 0; i < 200; i++) ctx.peer.emit("news", new Uint8Array(16 * 1024)).then(() => emitted++, () => {});
        return "sent";
      }))
    );
    const client = await connect(server);
    client.handle(listener("news", () => {}));
    expect(await client.request("flood")).toBe("sent");
    const info = await Promise.race([client.peer.closed, Bun.sleep(3000).then(() => undefined)]);
    expect(info?.code).toBe(CloseCode.SLOW_CONSUMER);
    expect(server.stats().rejected.slowConsumer).toBe(1);
    expect(emitted).toBeLessThan(200);
  });

  test("listener calls still running past maxQueuedEvents: further events are dropped and counted", async () => {
    let started = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const server = await start((b) => b.limits({ maxQueuedEvents: 5 }).listener(listener("job", async () => (started++, await gate))));
    const client = await connect(server);
    for (let i = 0; i < 20; i++) await client.emit("job", i);
    await until(() => server.stats().eventsReceived === 20, "all events read");
    expect(started).toBe(5);
    expect(server.stats().rejected.eventQueueFull).toBe(15);
    release();
    // The 5 listener calls return and free their slots; nothing public counts running listeners,
    // so this waits a little (they finish within a few microtasks of release()).
    await Bun.sleep(20);
    await client.emit("job", 99);
    await until(() => started === 6, "a slot to free up");
  });
});

describe("slow and silent streams", () => {
  test("slowloris: a first frame not complete within firstFrameTimeoutMs ends the stream and is counted", async () => {
    const server = await start((b) => b.limits({ firstFrameTimeoutMs: 300 }).handler(handler("echo", (_c, x: unknown) => x)));
    const client = await connect(server);
    const conn = inspectPeer(client.peer).conn;
    const frame = createFrameCodec().encode({ type: FrameType.REQUEST, flags: 0, method: "echo", deadlineMs: 0, metadata: {}, payload: new Uint8Array(8) });
    const s = await conn.openBidi();
    await s.write(frame.subarray(0, 3)); // a third of the header, then nothing
    const ended = (async () => {
      try {
        for await (const _ of s) { /* nothing comes */ }
        return "ended";
      } catch {
        return "reset";
      }
    })();
    const t0 = performance.now();
    const how = await Promise.race([ended, Bun.sleep(3000).then(() => "still open")]);
    expect(how).not.toBe("still open");
    expect(performance.now() - t0).toBeGreaterThan(200);
    await until(() => server.stats().rejected.firstFrameTimeout === 1, "the count");
    expect(await client.request("echo", 7)).toBe(7); // the connection is fine
  });

  test("streamIdleTimeoutMs ends an EchoStream silent both ways with DEADLINE_EXCEEDED", async () => {
    const server = await start((b) =>
      b.limits({ streamIdleTimeoutMs: 300 }).streamHandler(streamHandler("quiet", async (_c, s) => {
        for await (const _ of s) { /* reads, never answers */ }
      }))
    );
    const client = await connect(server);
    const s = await client.createStream("quiet").build();
    await s.send(new Uint8Array(1)); // activity resets the idle clock
    const e = await failure(s.recv());
    expect(e.code).toBe("DEADLINE_EXCEEDED");
    expect(e.message).toContain("idle");
    expect(server.stats().rejected.streamIdle).toBe(1);
  });
});

describe("connection admission", () => {
  test("maxConnectionsPerAddress and maxConnections refuse with 0x106 and count; others keep working", async () => {
    const server = await start((b) => b.limits({ maxConnectionsPerAddress: 2 }).handler(handler("ping", () => "pong")));
    const a = await connect(server);
    const b2 = await connect(server);
    const e = await failure(RpcClient.connect(server.address, { ca: server.trust.ca, timeoutMs: 2000 }));
    expect(e.code).toBe("RESOURCE_EXHAUSTED");
    expect(e.message).toMatch(/too many connections from 127\.0\.0\.1/);
    expect(server.stats().rejected.addressLimit).toBe(1);
    expect(await a.request("ping")).toBe("pong");
    await b2.close();
    await until(() => server.stats().connections === 1, "the slot to free");
    const c = await connect(server); // a closed connection gives its slot back
    expect(await c.request("ping")).toBe("pong");

    const one = await start((b) => b.limits({ maxConnections: 1 }));
    await connect(one);
    expect((await failure(RpcClient.connect(one.address, { ca: one.trust.ca, timeoutMs: 2000 }))).message).toMatch(/connection limit/);
    expect(one.stats().rejected.connectionLimit).toBe(1);
  });

  test("a refusal that lands before the client opens its control stream still reads as RESOURCE_EXHAUSTED", async () => {
    // Under load the server's 0x106 close can arrive before the client has opened its control
    // stream; opening then fails, and that failure must be explained by the close, as a failed
    // read is. Made deterministic by a transport whose openBidi waits for the connection to close.
    const server = await start((b) => b.limits({ maxConnectionsPerAddress: 1 }));
    await connect(server);
    const real = await defaultTransport();
    const late: Transport = {
      ...real,
      connect: async (options) => {
        const conn = await real.connect(options);
        return new Proxy(conn, {
          get(target, key) {
            if (key === "openBidi") return async () => (await target.closed, target.openBidi());
            const v = Reflect.get(target, key, target);
            return typeof v === "function" ? v.bind(target) : v;
          },
        });
      },
    };
    const e = await failure(RpcClient.connect(server.address, { ca: server.trust.ca, timeoutMs: 2000, transport: late }));
    expect(e.code).toBe("RESOURCE_EXHAUSTED");
    expect(e.message).toMatch(/too many connections from 127\.0\.0\.1/);
  });

  test("refused handshakes are counted: unauthenticated and handshake timeout", async () => {
    const server = await start((b) => b.handshakeTimeout(200).authenticate(({ auth }) => {
      if (auth === "hang") return new Promise(() => {});
      if (auth !== "ok") throw new Error("no");
      return "ok";
    }));
    await failure(RpcClient.connect(server.address, { ca: server.trust.ca, auth: "bad" }));
    await failure(RpcClient.connect(server.address, { ca: server.trust.ca, auth: "hang", timeoutMs: 2000 }));
    await until(() => server.stats().rejected.handshakeTimeout === 1, "the timeout count");
    expect(server.stats().rejected.unauthenticated).toBe(1);
  });

  test("limits are validated: unknown keys and bad values are clear errors, never ignored", () => {
    expect(() => RpcServer.builder().limits({ maxConection: 5 } as never)).toThrow(/unknown limit "maxConection"/);
    expect(() => RpcServer.builder().limits({ maxResets: 0 })).toThrow(/maxResets must be an integer from 1/);
    expect(() => RpcServer.builder().limits({ streamIdleTimeoutMs: -1 })).toThrow(/streamIdleTimeoutMs/);
    expect(() => RpcServer.builder().limits({ maxFrameSize: 1024, streamIdleTimeoutMs: 0 })).not.toThrow();
  });

  test("a client's limits reject server-only keys", async () => {
    const e = await failure(RpcClient.connect("127.0.0.1:9", { limits: { maxConnections: 5 } as never }));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toContain("maxConnections");
  });
});

describe("receive buffers", () => {
  test("announced-but-withheld frames: past maxBufferedBytes a stream is refused with RESOURCE_EXHAUSTED; memory stays bounded", async () => {
    const server = await start((b) => b.limits({ maxFrameSize: 1 << 20, maxBufferedBytes: 4 << 20 }).handler(handler("echo", (_c, x: unknown) => x)));
    const client = await connect(server);
    const conn = inspectPeer(client.peer).conn;
    const codec = createFrameCodec({ limits: { maxFrameSize: 1 << 20 } });
    // Ten streams each announcing a 1 MiB REQUEST and sending only its first 64 KiB.
    const big = codec.encode({ type: FrameType.REQUEST, flags: 0, method: "echo", deadlineMs: 0, metadata: {}, payload: new Uint8Array((1 << 20) - 64) });
    const answers: Promise<string>[] = [];
    for (let i = 0; i < 10; i++) {
      const s = await conn.openBidi();
      await s.write(big.subarray(0, 64 * 1024));
      answers.push((async () => {
        try {
          for await (const chunk of s) return new TextDecoder().decode(chunk);
          return "ended";
        } catch {
          return "reset";
        }
      })());
    }
    await until(() => server.stats().rejected.bufferFull >= 6, "streams past the budget to be refused");
    // Four fit (4 MiB), the rest are refused and told why.
    expect(server.stats().rejected.bufferFull).toBe(6);
    const told = await Promise.race([Promise.any(answers), Bun.sleep(2000).then(() => "")]);
    expect(told).toContain("maxBufferedBytes");
    expect(await client.request("echo", 5)).toBe(5); // the connection still serves
  });
});
