// A real Prometheus scrape (issue 14 §3): examples/observability/prometheus.ts registers the
// OpenTelemetry SDK with the Prometheus exporter, serves /metrics over HTTP, makes calls and
// scrapes once; run in its own process on Bun and on Deno, its output is parsed and checked.

import { expect, test } from "bun:test";
import { join } from "node:path";
import { run, runtimeCommand } from "../support/process.ts";

const EXAMPLE = join(import.meta.dir, "..", "..", "examples", "observability", "prometheus.ts");

/** Prometheus text lines "name{labels} value" as name -> [labels, value][]. */
function parse(text: string): Map<string, { labels: Record<string, string>; value: number }[]> {
  const out = new Map<string, { labels: Record<string, string>; value: number }[]>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line.trim());
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    const list = out.get(m[1]) ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.set(m[1], list);
  }
  return out;
}

for (const rt of ["bun", "deno"] as const) {
  test(`a /metrics scrape has the call durations and the server's instruments (${rt})`, async () => {
    const r = await run(runtimeCommand(rt, EXAMPLE, []), { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    const m = parse(r.stdout);
    const one = (name: string, labels: Record<string, string> = {}) =>
      m.get(name)?.find((p) => Object.entries(labels).every(([k, v]) => p.labels[k] === v))?.value;
    expect(one("rpc_server_call_duration_count", { rpc_system_name: "echostream", rpc_method: "math.add", rpc_status_code: "OK" })).toBe(10);
    expect(one("rpc_client_call_duration_count", { rpc_method: "math.add", rpc_status_code: "OK" })).toBe(10);
    expect(one("rpc_client_call_duration_count", { rpc_method: "admin.wipe", error_type: "PERMISSION_DENIED" })).toBe(1);
    expect(one("rpc_server_call_duration_sum", { rpc_method: "math.add" })).toBeLessThan(5); // seconds
    expect(one("echostream_server_connections")).toBe(1);
    expect(one("echostream_server_requests_total")).toBe(10);
    expect(one("echostream_server_rejections_total", { echostream_rejection_reason: "permissionDenied" })).toBe(1);
    expect(one("echostream_server_rejections_total", { echostream_rejection_reason: "rateLimited" })).toBe(0);
  }, 40_000);
}

test("Deno's built-in OpenTelemetry (OTEL_DENO=true) exports our spans and metrics with no SDK", async () => {
  const script = join(import.meta.dir, "..", "..", "examples", "observability", "deno_otel.ts");
  const env = { OTEL_DENO: "true", OTEL_EXPORTER_OTLP_PROTOCOL: "console", NO_COLOR: "1" };
  const r = await run(runtimeCommand("deno", script, []), { timeoutMs: 30_000, env });
  expect(r.code).toBe(0);
  const out = r.stdout + r.stderr;
  expect(out).toContain("math.add(1, 2) = 3");
  const spans = [...out.matchAll(/SPAN math\.add \[([0-9a-f]{32})\/[0-9a-f]{16}\] (Client|Server)/g)];
  expect(spans.map((m) => m[2]).sort()).toEqual(["Client", "Server"]);
  expect(new Set(spans.map((m) => m[1])).size).toBe(1); // one trace: the server span is the client's child
  expect(out).toContain("rpc.server.call.duration");
  expect(out).toContain("rpc.client.call.duration");
}, 40_000);
