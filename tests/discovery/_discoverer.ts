// Test fixture, run under Bun or Deno inside a namespace.
//   _discoverer.ts discover '{"name":"AudioService","timeoutMs":3000}'  → one {"event":"found",...} line
//   _discoverer.ts browse '{"name":"AudioService","requeryMs":1000}'    → {"event":"up"|"down",...} lines until SIGTERM

import process from "node:process";
import { browse, discover, type DiscoveryStats } from "../../src/discovery/mod.ts";

const [mode, json] = process.argv.slice(2);
const { name, ...opts } = JSON.parse(json ?? "{}");
const print = (o: Record<string, unknown>) => console.log(JSON.stringify(o));

if (mode === "discover") {
  const t0 = performance.now();
  let stats: DiscoveryStats | undefined;
  try {
    const services = await discover(name, { ...opts, onStats: (s) => (stats = s) });
    print({ event: "found", services, ms: performance.now() - t0, stats });
  } catch (e) {
    print({ event: "error", code: (e as { code?: string }).code, message: (e as Error).message });
  }
} else {
  const browser = browse(name, opts);
  await browser.ready;
  print({ event: "ready" });
  process.once("SIGTERM", () => void browser.close());
  for await (const e of browser) print({ event: e.type, service: e.service, at: Date.now() });
  print({ event: "end", stats: browser.stats() });
}
