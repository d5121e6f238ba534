// Metrics for Prometheus: the application registers the OpenTelemetry SDK with the Prometheus
// exporter (EchoStream depends on @opentelemetry/api only) and serves /metrics; a scrape then
// shows EchoStream's call durations and its own instruments. Run: bun examples/observability/prometheus.ts
// (or deno run --unstable-net -A examples/observability/prometheus.ts).

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { metrics } from "@opentelemetry/api";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { handler, RpcClient, RpcServer } from "../../mod.ts";

/** Runs a server with a few calls, scrapes /metrics once and returns the scrape's text. */
export async function prometheusExample(): Promise<string> {
  // The exporter is a metric reader; here it answers on our own HTTP server (any port).
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider); // before the server starts: its instruments register at start()
  const http = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const metricsUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/metrics`;

  const server = RpcServer.builder()
    .log(() => {})
    .accessControl({ permissions: { request: { deny: ["admin.>"] } } })
    .handler(handler("math.add", (_ctx, [a, b]: [number, number]) => a + b))
    .build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  for (let i = 0; i < 10; i++) await client.request("math.add", [i, 1]);
  await client.request("admin.wipe").catch(() => {}); // PERMISSION_DENIED: counted as a rejection
  const scrape = await (await fetch(metricsUrl)).text();

  await client.close();
  await server.close();
  await new Promise((r) => http.close(r));
  await provider.shutdown();
  metrics.disable();
  return scrape;
}

if (import.meta.main) {
  const text = await prometheusExample();
  console.log(text.split("\n").filter((l) => /^(rpc_|echostream_)/.test(l) && !/_bucket\{/.test(l)).join("\n"));
}
