// Deno's built-in OpenTelemetry: with OTEL_DENO=true, Deno registers its own tracer and meter
// providers into @opentelemetry/api, so EchoStream's spans and metrics are exported (OTLP to
// localhost:4318 by default) with no SDK and no code. To print them instead:
//
//   OTEL_DENO=true OTEL_EXPORTER_OTLP_PROTOCOL=console deno run --unstable-net -A examples/observability/deno_otel.ts
//
// Each call shows as a Client span and a Server span of one trace, plus rpc.client.call.duration
// and rpc.server.call.duration. The echostream.server.* instruments are observed at each export
// (OTEL_METRIC_EXPORT_INTERVAL, 60 s by default) while the server runs; this script ends first.

import { handler, RpcClient, RpcServer } from "../../mod.ts";

const server = RpcServer.builder()
  .log(() => {})
  .handler(handler("math.add", (_ctx, [a, b]: [number, number]) => a + b))
  .build();
await server.start();
const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
console.log(`math.add(1, 2) = ${await client.request("math.add", [1, 2])}`);
await client.close();
await server.close();
