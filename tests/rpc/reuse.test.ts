// The stream-reuse lane for requests (issue 15 §1): a call takes an idle request stream of its
// connection or opens one; one call per stream at a time; cancels and deadlines still work in-band;
// idle streams are bounded and closed after a while; a reused stream the other side has ended is
// replaced without running the call twice.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { handler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { inspectPeer } from "../../src/rpc/peer.ts";
import { createFrameCodec } from "../../src/protocol/codec.ts";
import { type Frame, FrameFlag, FrameType } from "../../src/protocol/frame.ts";
import { RpcError } from "../../src/protocol/rpc_error.ts";
import type { BidiStream, Connection } from "../../src/transport/types.ts";
import { deferred, waitFor } from "../support/wait.ts";

const codec = createFrameCodec();
let server: RpcServer;
let runs = 0;
const held: { release: () => void; started: number } = { release: () => {}, started: 0 };
let gate = deferred<void>();
const aborted: string[] = [];

beforeAll(async () => {
  server = RpcServer.builder()
    .bind("127.0.0.1:0")
    .log(() => {})
    .onError(() => {})
    .limits({ maxFrameSize: 64 * 1024 })
    .handler(handler("echo", (_ctx, v: unknown) => v))
    .handler(handler("count", () => ++runs))
    .handler(handler("fail", () => {
      throw new RpcError("NOT_FOUND", "no such thing", { id: 7 });
    }))
    .handler(handler("hold", async (ctx) => {
      held.started++;
      await new Promise<void>((resolve, reject) => {
        gate.promise.then(resolve);
        ctx.signal.addEventListener("abort", () => {
          aborted.push((ctx.signal.reason as RpcError).code);
          reject(ctx.signal.reason);
        });
      });
      return "released";
    }))
    .build();
  await server.start();
});

afterAll(async () => {
  await server.close({ graceMs: 100 });
});

/** A client whose stream opens are counted. */
async function counted(limits?: Record<string, number>): Promise<{ client: RpcClient; opens: () => number; conn: Connection }> {
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, limits });
  const conn = inspectPeer(client.peer).conn;
  let opens = 0;
  const open = conn.openBidi.bind(conn);
  conn.openBidi = (...a: Parameters<Connection["openBidi"]>) => {
    opens++;
    return open(...a);
  };
  return { client, opens: () => opens, conn };
}

/** Reads frames off a raw stream until `n` have come or the stream ends. */
async function frames(s: BidiStream, n: number): Promise<Frame[]> {
  const splitter = codec.splitter();
  const out: Frame[] = [];
  const it = s[Symbol.asyncIterator]();
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(...splitter.push(r.value));
  }
  return out;
}

const request = (method: string, flags: number, payload = new Uint8Array([1, 2, 3])) =>
  codec.encode({ type: FrameType.REQUEST, flags: FrameFlag.RAW | flags, method, deadlineMs: 0, metadata: {}, payload });

describe("reuse", () => {
  test("sequential calls share one stream; answers and errors keep it", async () => {
    const { client, opens } = await counted();
    for (let i = 0; i < 50; i++) expect(await client.request<number>("echo", i)).toBe(i);
    const e = (await client.request("fail").catch((x) => x)) as RpcError;
    expect(e).toBeInstanceOf(RpcError);
    expect(e.code).toBe("NOT_FOUND");
    expect(e.details).toEqual({ id: 7 });
    expect(await client.request("echo", "after")).toBe("after");
    // 52 calls on the one stream the first call opened.
    expect(opens()).toBe(1);
    await client.close();
  });

  test("concurrent calls never share a stream; a held call does not delay the others", async () => {
    const { client, opens } = await counted();
    gate = deferred();
    held.started = 0;
    const slow = client.request("hold");
    await waitFor(() => held.started === 1, "the held call to start");
    // While "hold" has its stream, 8 concurrent calls take 8 others, and all answer.
    const batch = await Promise.all(Array.from({ length: 8 }, (_, i) => client.request<number>("echo", i)));
    expect(batch).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(opens()).toBe(9);
    // The 8 streams are idle again: 8 more concurrent calls open none.
    await Promise.all(Array.from({ length: 8 }, (_, i) => client.request("echo", i)));
    expect(opens()).toBe(9);
    gate.resolve();
    expect(await slow).toBe("released");
    await client.close();
  });

  test("idle streams are bounded by maxIdleRequestStreams", async () => {
    const { client, opens } = await counted({ maxIdleRequestStreams: 2 });
    await Promise.all(Array.from({ length: 6 }, (_, i) => client.request("echo", i)));
    expect(opens()).toBe(6);
    // Only 2 were kept: 6 concurrent calls now open 4.
    await Promise.all(Array.from({ length: 6 }, (_, i) => client.request("echo", i)));
    expect(opens()).toBe(10);
    await client.close();
  });

  test("maxIdleRequestStreams 0: one new stream per call", async () => {
    const { client, opens } = await counted({ maxIdleRequestStreams: 0 });
    for (let i = 0; i < 5; i++) await client.request("echo", i);
    expect(opens()).toBe(5);
    await client.close();
  });

  test("an idle stream is ended after requestStreamIdleMs, and the server's side ends with it", async () => {
    const { client, opens } = await counted({ requestStreamIdleMs: 50 });
    await client.request("echo", 1);
    expect(opens()).toBe(1);
    await waitFor(() => server.peers.length === 1, "the earlier tests' clients to be gone");
    const peer = server.peers[0];
    const serving = () => inspectPeer(peer).conn.stats().incomingStreams;
    expect(serving()).toBe(2); // the control stream, and the idle request stream kept open
    await waitFor(() => serving() === 1, "the idle stream to end on the server");
    await client.request("echo", 2);
    expect(opens()).toBe(2);
    await client.close();
  });

  test("a cancelled call's stream is not reused; the next call works", async () => {
    const { client, opens } = await counted();
    gate = deferred();
    aborted.length = 0;
    held.started = 0;
    await client.request("echo", 0); // one idle stream
    const ac = new AbortController();
    const call = client.request("hold", null, { signal: ac.signal }).catch((e) => e) as Promise<RpcError>;
    await waitFor(() => held.started === 1, "the held call to start");
    ac.abort();
    expect((await call).code).toBe("CANCELLED");
    await waitFor(() => aborted.length === 1, "the handler's signal to fire");
    expect(aborted).toEqual(["CANCELLED"]);
    // The cancelled call used the idle stream; it is dropped, so the next call opens a new one.
    expect(await client.request("echo", "next")).toBe("next");
    expect(opens()).toBe(2);
    const late = (await client.request("hold", null, { timeoutMs: 100 }).catch((e) => e)) as RpcError;
    expect(late.code).toBe("DEADLINE_EXCEEDED");
    expect(await client.request("echo", "after deadline")).toBe("after deadline");
    gate.resolve();
    await client.close();
  });

  test("a reused stream the server ended is replaced: the call runs once, on a new stream", async () => {
    const { client, opens } = await counted();
    const before = await client.request<number>("count");
    // Over the server's 64 KiB frame limit on the idle stream: refused (RESOURCE_EXHAUSTED) and the
    // server ends that stream; the client still holds it as idle.
    const big = (await client.request("echo", new Uint8Array(100 * 1024)).catch((e) => e)) as RpcError;
    expect(big.code).toBe("RESOURCE_EXHAUSTED");
    const after = await client.request<number>("count");
    expect(after).toBe(before + 1); // ran exactly once
    expect(opens()).toBe(2);
    await client.close();
  });
});

describe("REUSE on the wire", () => {
  test("two requests in turn on one stream, each answered; the caller's FIN ends the stream", async () => {
    const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
    const s = await inspectPeer(client.peer).conn.openBidi();
    await s.write(request("echo", FrameFlag.REUSE, new Uint8Array([1])));
    const it = s[Symbol.asyncIterator]();
    const splitter = codec.splitter();
    const next = async () => {
      const out: Frame[] = [];
      while (!out.length) {
        const r = await it.next();
        if (r.done) return undefined;
        out.push(...splitter.push(r.value));
      }
      return out[0];
    };
    const a = await next();
    expect(a?.type).toBe(FrameType.RESPONSE);
    await s.write(request("echo", FrameFlag.REUSE, new Uint8Array([2])));
    const b = await next();
    expect(b?.type).toBe(FrameType.RESPONSE);
    expect(b && "payload" in b ? [...b.payload] : []).toEqual([2]);
    await s.end();
    expect(await next()).toBeUndefined(); // the server ended its half after ours
    await client.close();
  });

  test("a REQUEST sent before the answer is not run: the stream is refused", async () => {
    const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
    gate = deferred();
    held.started = 0;
    aborted.length = 0;
    const before = await client.request<number>("count");
    const s = await inspectPeer(client.peer).conn.openBidi();
    await s.write(request("hold", FrameFlag.REUSE));
    await waitFor(() => held.started === 1, "the held call to start");
    await s.write(request("count", FrameFlag.REUSE)); // pipelined: breaks one-call-at-a-time
    await waitFor(() => aborted.length === 1, "the held call to be cancelled");
    gate.resolve();
    const got = await frames(s, 1);
    expect(got.every((f) => f.type !== FrameType.RESPONSE)).toBe(true);
    expect(await client.request<number>("count")).toBe(before + 1); // "count" never ran on that stream
    await client.close();
  });

  test("without REUSE the server ends its half after the answer (one stream per call, as before)", async () => {
    const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
    const s = await inspectPeer(client.peer).conn.openBidi();
    await s.write(request("echo", FrameFlag.CANCELLABLE));
    const got = await frames(s, 2); // the answer, then the end
    expect(got.map((f) => f.type)).toEqual([FrameType.RESPONSE]);
    await client.close();
  });
});
