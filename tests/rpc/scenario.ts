// Cross-runtime RPC scenario, run in its own process under Bun or Deno (`--unstable-net -A`).
//
//   scenario.ts server            prints {"address","ca"}; serves until stdin closes
//   scenario.ts client <address>  reads the CA from stdin's first line (JSON), runs every check,
//                                 prints one JSON line of results

import { handler, listener, type StandardSchema, streamHandler } from "../../src/rpc/definitions.ts";
import { REFLECTION_METHOD, type ServiceDescription } from "../../src/rpc/reflection.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { inspectPeer } from "../../src/rpc/peer.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { RpcError } from "../../src/protocol/rpc_error.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { waitFor } from "../support/wait.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const proc = (globalThis as unknown as { process: { exit(c: number): void; stdin: NodeJS.ReadableStream } }).process;

// Per connection, since one server serves several clients in the test.
const aborts = new WeakMap<object, string[]>();
const slowStarted = new WeakMap<object, number[]>();
const events = new WeakMap<object, number[]>();
const list = <T>(m: WeakMap<object, T[]>, k: object): T[] => {
  let v = m.get(k);
  if (!v) m.set(k, (v = []));
  return v;
};

async function readLine(): Promise<string> {
  let buf = "";
  for await (const chunk of proc.stdin) {
    buf += String(chunk);
    if (buf.includes("\n")) break;
  }
  return buf.split("\n")[0];
}

/** A decorated service: standard (TC39) decorators must work on every runtime. */
class Greeter {
  greeting = "hello";
  @handler("greet")
  greet(_ctx: unknown, name: string) {
    return `${this.greeting} ${name}`;
  }
  @streamHandler("one")
  async one(_ctx: unknown, s: EchoStream) {
    const f = await s.recv();
    if (f) await s.send(f);
  }
}

if (args[0] === "server") {
  const server = RpcServer.builder()
    .service(new Greeter())
    .maxStreams(2048)
    .bind("127.0.0.1:0")
    .log(() => {})
    .onError(() => {})
    .handler(handler("echo", (_ctx, v: unknown) => v))
    .handler(handler("runtime", () => runtime))
    .handler(handler("throws", () => {
      throw new Error("secret-detail");
    }))
    .handler(handler("not-found", () => {
      throw new RpcError("NOT_FOUND", "no item", { id: 1 });
    }))
    .handler(handler("len", (_ctx, s: string) => s.length, {
      description: "Length of a string",
      idempotent: true,
      input: {
        "~standard": {
          version: 1,
          vendor: "t",
          validate: (v) => (typeof v === "string" ? { value: v } : { issues: [{ message: "expected a string" }] }),
          // Standard JSON Schema: what reflection reports as the input schema.
          jsonSchema: { input: () => ({ type: "string" }) },
        } as StandardSchema<string>["~standard"],
      },
    }))
    .handler(handler("slow", (ctx) =>
      new Promise((r) => {
        list(slowStarted, ctx.peer).push(1);
        const t = setTimeout(() => r("done"), 3000);
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(t);
          list(aborts, ctx.peer).push((ctx.signal.reason as RpcError).code);
          r("aborted");
        });
      })))
    .handler(handler("aborts", (ctx) => list(aborts, ctx.peer)))
    .handler(handler("slowStarted", (ctx) => list(slowStarted, ctx.peer).length))
    .handler(handler("events", (ctx) => list(events, ctx.peer)))
    .handler(handler("callback", (ctx, n: number) => ctx.peer.request("client.double", n)))
    .listener(listener("tick", (ctx, n: number) => void list(events, ctx.peer).push(n), { description: "A counter tick" }))
    .streamHandler(streamHandler("echo", async (_ctx, s: EchoStream) => {
      for await (const f of s) await s.send(f);
    }))
    .streamHandler(streamHandler("abort", async (_ctx, s: EchoStream) => {
      await s.recv();
      await s.abort(new RpcError("RESOURCE_EXHAUSTED", "quota"));
    }))
    .build();
  await server.start();
  console.log(JSON.stringify({ address: server.address, ca: server.trust.ca }));
  proc.stdin.on("end", () => server.close({ graceMs: 0 }).then(() => proc.exit(0)));
  proc.stdin.resume();
} else {
  const { ca } = JSON.parse(await readLine());
  const client = await RpcClient.connect(args[1], { ca });
  client.handle(handler("client.double", (_ctx, n: number) => n * 2));
  const r: Record<string, unknown> = { runtime };
  const step = (name: string) => console.error(`step ${name}`);
  const code = (p: Promise<unknown>) => p.then(() => "ok", (e) => (e instanceof RpcError ? e.code : String(e)));
  step("serverRuntime");
  r.serverRuntime = await client.request("runtime");
  step("echo");
  r.echo = await client.request("echo", { a: [1, "two", null], b: 1.5 });
  const bytes = await client.request<Uint8Array>("echo", new Uint8Array([9, 8, 7]));
  r.bytes = bytes instanceof Uint8Array ? Array.from(bytes) : "not bytes";
  step("notFound");
  r.notFound = await code(client.request("missing"));
  const internal = (await client.request("throws").catch((e) => e)) as RpcError;
  r.internal = { code: internal.code, leaked: String(internal.message).includes("secret-detail") };
  const nf = (await client.request("not-found").catch((e) => e)) as RpcError;
  r.details = { code: nf.code, details: nf.details };
  r.invalid = await code(client.request("len", 5));
  r.valid = await client.request("len", "abcd");
  step("deadline");
  r.deadline = await code(client.request("slow", null, { timeoutMs: 150 }));
  const ac = new AbortController();
  const cancelled = code(client.request("slow", null, { signal: ac.signal }));
  // The second slow call runs on the server before it is cancelled (the first hit its deadline).
  await waitFor(async () => (await client.request<number>("slowStarted")) >= 2, "the server to start the second slow call");
  ac.abort();
  step("cancel");
  r.cancel = await cancelled;
  step("handlerAborts");
  let handlerAborts: string[] = [];
  await waitFor(async () => (handlerAborts = await client.request<string[]>("aborts")).length >= 2, "both slow handlers' signals to fire");
  r.handlerAborts = handlerAborts;
  for (let i = 0; i < 200; i++) client.emit("tick", i);
  await client.emit("nobody", 0);
  let evs: number[] = [];
  await waitFor(async () => (evs = await client.request<number[]>("events")).length >= 200, "the server to run the 200 tick listeners");
  r.eventsInOrder = evs.length === 200 && evs.every((v, i) => v === i);
  const s = await client.createStream("echo");
  for (let i = 0; i < 50; i++) await s.send(new Uint8Array(1000).fill(i));
  let okFrames = 0;
  for (let i = 0; i < 50; i++) if ((await s.recv())?.[999] === i) okFrames++;
  await s.end();
  step("streamEcho");
  r.streamEcho = { okFrames, endSeen: (await s.recv()) === undefined };
  const a = await client.createStream("abort");
  await a.send(new Uint8Array([1]));
  step("streamAbort");
  r.streamAbort = await code(a.recv());
  step("callback");
  r.callback = await client.request("callback", 21);
  step("reuse");
  {
    // Stream reuse across runtimes: sequential calls share a stream; a second concurrent batch
    // finds the first batch's streams idle and opens none.
    const conn = inspectPeer(client.peer).conn;
    let opens = 0;
    const open = conn.openBidi.bind(conn);
    conn.openBidi = (...a: Parameters<typeof conn.openBidi>) => (opens++, open(...a));
    let ok = 0;
    for (let i = 0; i < 20; i++) if ((await client.request("echo", i)) === i) ok++;
    const sequential = opens;
    await Promise.all(Array.from({ length: 8 }, (_, i) => client.request("echo", i)));
    const first = opens - sequential;
    await Promise.all(Array.from({ length: 8 }, (_, i) => client.request("echo", i)));
    r.reuse = { ok, sequential, first, second: opens - sequential - first };
    conn.openBidi = open;
  }
  const many = await Promise.all(Array.from({ length: 1000 }, (_, i) => client.request("echo", i)));
  step("reflection");
  {
    // Reflection (on by default with a development certificate) across runtimes.
    const d = await client.request<ServiceDescription>(REFLECTION_METHOD);
    const len = d.handlers.find((h) => h.name === "len");
    r.reflection = {
      handlers: d.handlers.map((h) => h.name),
      listeners: d.listeners.map((h) => h.name),
      streams: d.streams.map((h) => h.name),
      len,
      tick: d.listeners.find((h) => h.name === "tick"),
      protocol: d.protocol,
    };
  }
  step("decorators");
  r.decorators = await client.request("greet", "deno-or-bun");
  step("streams10k");
  const t10k = performance.now();
  const okStreams = await Promise.all(Array.from({ length: 10_000 }, async (_, i) => {
    const st = await client.createStream("one");
    await st.send(new Uint8Array([i & 0xff, i >> 8]));
    const back = await st.recv();
    await st.end();
    return back?.[0] === (i & 0xff) && back?.[1] === i >> 8;
  }));
  r.streams10k = { ok: okStreams.filter(Boolean).length, ms: Math.round(performance.now() - t10k) };
  step("concurrent");
  r.concurrent = many.every((v, i) => v === i);
  await client.close();
  console.log(JSON.stringify(r));
  proc.exit(0);
}
