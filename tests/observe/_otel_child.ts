// Run under Deno (or Bun) by otel.test.ts: registers the OpenTelemetry SDK with in-memory
// exporters, makes a call whose handler calls back into the client, and prints one JSON line:
// the finished spans (name, kind, ids, parent, attributes) and the duration histograms' counts.

import { context, metrics, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { type Histogram, MeterProvider } from "@opentelemetry/sdk-metrics";
import { TestReader } from "./_sdk.ts";
import { handler, RpcClient, RpcServer } from "../../mod.ts";

const spans = new InMemorySpanExporter();
const reader = new TestReader();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

const server = RpcServer.builder()
  .log(() => {})
  .handler(handler("job.run", async (ctx, job: string) => ((await ctx.peer.request<boolean>("ui.confirm", job)) ? "done" : "skipped")))
  .build();
await server.start();
const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
client.handle(handler("ui.confirm", () => true));
const result = await client.request("job.run", "backup");
for (let i = 0; i < 200 && spans.getFinishedSpans().length < 4; i++) await new Promise((r) => setTimeout(r, 5));
const { resourceMetrics } = await reader.collect();
const durations: Record<string, number> = {};
for (const m of resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)) {
  if (!m.descriptor.name.endsWith(".call.duration")) continue;
  for (const p of m.dataPoints) durations[`${m.descriptor.name} ${p.attributes["rpc.method"]}`] = (p.value as Histogram).count;
}
await client.close();
await server.close();
console.log(JSON.stringify({
  result,
  spans: spans.getFinishedSpans().map((s) => ({
    name: s.name,
    kind: s.kind,
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    parent: s.parentSpanContext?.spanId,
    status: s.attributes["rpc.status_code"],
  })),
  durations,
}));
