// OpenTelemetry (issue 14 §2) over real QUIC (Bun), with the SDK's in-memory exporters: a CLIENT
// and a SERVER span per call with the RPC semantic-convention attributes, the server span the
// child of the client's (W3C trace context in the request metadata), a server-to-client callback
// nested under its handler, errors with their status code, and the call-duration histograms.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { context, metrics, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { type Histogram, MeterProvider } from "@opentelemetry/sdk-metrics";
import { TestReader } from "./_sdk.ts";
import { handler, listener, RpcClient, RpcError, RpcServer, streamHandler } from "../../mod.ts";
import { join } from "node:path";
import { run, runtimeCommand } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";

const spans = new InMemorySpanExporter();
const reader = new TestReader();
const contextManager = new AsyncLocalStorageContextManager();
let server: RpcServer;
let client: RpcClient;

beforeAll(async () => {
  context.setGlobalContextManager(contextManager.enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  server = RpcServer.builder()
    .log(() => {})
    .onError(() => {})
    .handler(handler("math.add", (_ctx, [a, b]: [number, number]) => a + b))
    .handler(handler("fails", () => {
      throw new RpcError("NOT_FOUND", "no such user");
    }))
    .listener(listener("audio.stopped", () => {}))
    .streamHandler(streamHandler("audio.sync", async (_ctx, stream) => {
      for (let f = await stream.recvAligned(); f; f = await stream.recvAligned()) { /* played */ }
    }))
    .streamHandler(streamHandler("audio.stream", async (_ctx, stream) => {
      for await (const _ of stream) { /* drain */ }
    }))
    .streamHandler(streamHandler("telemetry.push", async (_ctx, stream) => {
      // An unreliable stream: these six frames leave in one turn, so they share datagrams.
      for (let i = 0; i < 6; i++) void stream.send(new Uint8Array(40).fill(i));
      for await (const _ of stream) { /* until the client ends */ }
    }))
    .handler(handler("job.run", async (ctx, job: string) => {
      const ok = await ctx.peer.request<boolean>("ui.confirm", job);
      return ok ? "done" : "skipped";
    }))
    .build();
  await server.start();
  client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  client.handle(handler("ui.confirm", () => true));
});

afterAll(async () => {
  await client?.close();
  await server?.close();
  trace.disable();
  metrics.disable();
  propagation.disable();
  context.disable();
});

const byName = (name: string, kind: SpanKind) => spans.getFinishedSpans().filter((s) => s.name === name && s.kind === kind);
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

test("a call makes a CLIENT span and a SERVER span under it, with the RPC attributes", async () => {
  spans.reset();
  expect(await client.request("math.add", [2, 3])).toBe(5);
  const [c] = byName("math.add", SpanKind.CLIENT);
  await waitForSpan("math.add", SpanKind.SERVER);
  const [s] = byName("math.add", SpanKind.SERVER);
  expect(c.attributes).toMatchObject({ "rpc.system.name": "echostream", "rpc.method": "math.add", "rpc.status_code": "OK", "server.address": "127.0.0.1" });
  expect(c.attributes["server.port"]).toBe(Number(server.address.split(":")[1]));
  expect(s.attributes).toMatchObject({ "rpc.system.name": "echostream", "rpc.method": "math.add", "rpc.status_code": "OK", "network.peer.address": "127.0.0.1" });
  expect(s.spanContext().traceId).toBe(c.spanContext().traceId);
  expect(parentOf(s)).toBe(c.spanContext().spanId);
});

test("an error sets the status code, error.type and ERROR status on both sides", async () => {
  spans.reset();
  await expect(client.request("fails")).rejects.toMatchObject({ code: "NOT_FOUND" });
  await waitForSpan("fails", SpanKind.SERVER);
  for (const s of [...byName("fails", SpanKind.CLIENT), ...byName("fails", SpanKind.SERVER)]) {
    expect(s.attributes).toMatchObject({ "rpc.status_code": "NOT_FOUND", "error.type": "NOT_FOUND" });
    expect(s.status.code).toBe(SpanStatusCode.ERROR);
  }
  expect(byName("fails", SpanKind.CLIENT).length).toBe(1);
});

test("a callback from a handler to the client nests under the handler's span", async () => {
  spans.reset();
  const parent = trace.getTracer("test").startSpan("user action");
  const out = await context.with(trace.setSpan(context.active(), parent), () => client.request("job.run", "backup"));
  parent.end();
  expect(out).toBe("done");
  await waitForSpan("ui.confirm", SpanKind.SERVER);
  const [runClient] = byName("job.run", SpanKind.CLIENT);
  const [runServer] = byName("job.run", SpanKind.SERVER);
  const [confirmClient] = byName("ui.confirm", SpanKind.CLIENT); // made by the server's handler
  const [confirmServer] = byName("ui.confirm", SpanKind.SERVER); // served by the client
  expect(parentOf(runClient)).toBe(parent.spanContext().spanId);
  expect(parentOf(runServer)).toBe(runClient.spanContext().spanId);
  expect(parentOf(confirmClient)).toBe(runServer.spanContext().spanId);
  expect(parentOf(confirmServer)).toBe(confirmClient.spanContext().spanId);
  const traceIds = new Set([runClient, runServer, confirmClient, confirmServer].map((s) => s.spanContext().traceId));
  expect([...traceIds]).toEqual([parent.spanContext().traceId]);
});

test("an event and a stream open carry the trace context: CONSUMER spans under PRODUCER spans", async () => {
  spans.reset();
  await client.emit("audio.stopped", null);
  const stream = await client.createStream("audio.stream");
  await stream.send(new Uint8Array(4));
  await stream.end();
  await waitForSpan("audio.stopped", SpanKind.CONSUMER);
  await waitForSpan("audio.stream", SpanKind.CONSUMER);
  for (const name of ["audio.stopped", "audio.stream"]) {
    const [p] = byName(name, SpanKind.PRODUCER);
    const [c] = byName(name, SpanKind.CONSUMER);
    expect(parentOf(c)).toBe(p.spanContext().spanId);
    expect(c.attributes).toMatchObject({ "rpc.system.name": "echostream", "rpc.method": name, "rpc.status_code": "OK" });
  }
});

test("a broadcast with an SDK registered: each peer's event gets its own PRODUCER span (the shared encoding is skipped)", async () => {
  spans.reset();
  client.handle(listener("news.flash", () => {}));
  const r = await server.broadcast("news.flash", "to all");
  expect(r.delivered).toBe(server.peers.length);
  await waitForSpan("news.flash", SpanKind.CONSUMER);
  expect(byName("news.flash", SpanKind.PRODUCER).length).toBe(server.peers.length);
  const [p] = byName("news.flash", SpanKind.PRODUCER);
  const [c] = byName("news.flash", SpanKind.CONSUMER);
  expect(parentOf(c)).toBe(p.spanContext().spanId);
});

test("call durations: rpc.server.call.duration and rpc.client.call.duration in seconds, by method and status", async () => {
  const { resourceMetrics } = await reader.collect();
  const all = resourceMetrics.scopeMetrics.filter((s) => s.scope.name === "@echostream/core").flatMap((s) => s.metrics);
  for (const name of ["rpc.server.call.duration", "rpc.client.call.duration"]) {
    const m = all.find((x) => x.descriptor.name === name);
    expect(m?.descriptor.unit).toBe("s");
    const points = m!.dataPoints;
    const add = points.find((p) => p.attributes["rpc.method"] === "math.add" && p.attributes["rpc.status_code"] === "OK");
    expect(add?.attributes["rpc.system.name"]).toBe("echostream");
    expect((add!.value as Histogram).count).toBeGreaterThanOrEqual(1);
    expect((add!.value as Histogram).sum).toBeLessThan(5); // seconds, not ms
    const failed = points.find((p) => p.attributes["rpc.method"] === "fails");
    expect(failed?.attributes["error.type"]).toBe("NOT_FOUND");
  }
});

test("connections opened and closed are counted by side, with the close code", async () => {
  const extra = await RpcClient.connect(server.address, { ca: server.trust.ca });
  await extra.close();
  const sum = async (name: string, attrs: Record<string, unknown>) => {
    const { resourceMetrics } = await reader.collect();
    const m = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((x) => x.descriptor.name === name);
    return (m?.dataPoints ?? []).filter((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)).reduce((n, p) => n + (p.value as number), 0);
  };
  expect(await sum("echostream.connections.opened", { "echostream.side": "client" })).toBe(2);
  expect(await sum("echostream.connections.opened", { "echostream.side": "server" })).toBe(2);
  for (let i = 0; i < 400 && (await sum("echostream.connections.closed", { "echostream.side": "server" })) < 1; i++) await Bun.sleep(5);
  expect(await sum("echostream.connections.closed", { "echostream.side": "client", "echostream.close.code": "0x0", "echostream.close.local": true })).toBe(1);
  expect(await sum("echostream.connections.closed", { "echostream.side": "server", "echostream.close.code": "0x0" })).toBe(1);
});

async function waitForSpan(name: string, kind: SpanKind): Promise<void> {
  for (let i = 0; i < 400 && byName(name, kind).length === 0; i++) await Bun.sleep(5);
  expect(byName(name, kind).length).toBeGreaterThanOrEqual(1);
}

test("clock gauges per connection on both sides, events sent, and a time-synced stream's frame outcomes", async () => {
  await client.clock.ready;
  await server.peers[0].clock.ready;
  await server.broadcast("any.topic", 1);
  const synced = await client.createStream("audio.sync").withTimeSync({ latencyMs: 20 }).build();
  for (let i = 0; i < 5; i++) await synced.sendWithTimestamp(new Uint8Array(8), synced.now());
  await synced.end();
  await waitFor(async () => (await points("echostream.stream.frames")).some((p) => p.attributes["echostream.frame.outcome"] === "delivered" && (p.value as number) >= 5), "the stream's frames counted");
  const offsets = await points("echostream.clock.offset");
  expect(offsets.map((p) => p.attributes["echostream.side"]).sort()).toEqual(["client", "server"]);
  for (const p of offsets) expect(Math.abs(p.value as number)).toBeLessThan(0.1); // seconds; loopback, one clock
  expect((await points("echostream.clock.rtt")).every((p) => (p.value as number) >= 0 && (p.value as number) < 1)).toBe(true);
  expect((await points("echostream.server.events.sent"))[0].value).toBeGreaterThanOrEqual(1);
  const bytes = await points("echostream.connection.bytes");
  for (const side of ["client", "server"]) {
    for (const direction of ["sent", "received"]) {
      const p = bytes.find((x) => x.attributes["echostream.side"] === side && x.attributes["echostream.direction"] === direction);
      expect(p?.value).toBeGreaterThan(0);
    }
  }
  expect((await points("echostream.stream.latency")).length).toBe(1);
});

async function points(name: string) {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((x) => x.descriptor.name === name)?.dataPoints ?? [];
}

test("on Deno too (its own process): the call, its callback, one trace, parent links and histograms", async () => {
  const r = await run(runtimeCommand("deno", join(import.meta.dir, "_otel_child.ts"), []), { timeoutMs: 30_000 });
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
    result: string;
    spans: { name: string; kind: number; traceId: string; spanId: string; parent?: string; status: string }[];
    durations: Record<string, number>;
  };
  expect(out.result).toBe("done");
  const span = (name: string, kind: SpanKind) => out.spans.find((s) => s.name === name && s.kind === kind)!;
  const runClient = span("job.run", SpanKind.CLIENT);
  const runServer = span("job.run", SpanKind.SERVER);
  const confirmClient = span("ui.confirm", SpanKind.CLIENT);
  const confirmServer = span("ui.confirm", SpanKind.SERVER);
  expect(runServer.parent).toBe(runClient.spanId);
  expect(confirmClient.parent).toBe(runServer.spanId);
  expect(confirmServer.parent).toBe(confirmClient.spanId);
  expect(new Set(out.spans.map((s) => s.traceId)).size).toBe(1);
  expect(out.durations["rpc.server.call.duration job.run"]).toBe(1);
  expect(out.durations["rpc.client.call.duration ui.confirm"]).toBe(1);
}, 40_000);

test("a tracer provider registered later (after trace.disable()) gets the spans, not the first one", async () => {
  trace.disable();
  const later = new InMemorySpanExporter();
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(later)] }));
  spans.reset();
  await client.request("math.add", [1, 1]);
  for (let i = 0; i < 400 && later.getFinishedSpans().length < 2; i++) await Bun.sleep(5);
  expect(later.getFinishedSpans().map((s) => s.name)).toEqual(["math.add", "math.add"]);
  expect(spans.getFinishedSpans().length).toBe(0);
});

test("datagrams of unreliable streams: sent and dropped by outcome, and the frames they carried", async () => {
  const before = server.stats();
  const s = await client.createStream("telemetry.push").unreliable().build();
  const got: Uint8Array[] = [];
  const reading = (async () => {
    for await (const f of s) got.push(f);
  })();
  await waitFor(() => got.length === 6, "the six frames at the client");
  await s.end();
  await reading;
  const after = server.stats();
  expect(after.datagramFramesSent - before.datagramFramesSent).toBe(6);
  expect(after.datagramsSent - before.datagramsSent).toBeGreaterThanOrEqual(1);
  expect(after.datagramsSent - before.datagramsSent).toBeLessThan(6); // bundled: the client takes several per datagram
  const dg = await points("echostream.server.datagrams");
  expect(dg.find((p) => p.attributes["echostream.datagram.outcome"] === "sent")?.value).toBe(after.datagramsSent);
  expect(dg.find((p) => p.attributes["echostream.datagram.outcome"] === "dropped")?.value).toBe(after.droppedDatagrams);
  expect(dg.find((p) => p.attributes["echostream.datagram.outcome"] === "shed")?.value).toBe(after.datagramsShed);
  expect((await points("echostream.server.datagram_frames.sent"))[0].value).toBe(after.datagramFramesSent);
});
