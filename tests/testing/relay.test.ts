// The impairment relay over plain UDP: every check compares what endpoints saw with the relay's
// log (the ground truth). Bounded: every wait has a deadline.

import { afterEach, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Impairment, type PacketRecord, type Relay, startRelay } from "../../src/testing/relay.ts";
import { run, tool } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function socket(onMessage?: (msg: Buffer, rinfo: dgram.RemoteInfo, s: dgram.Socket) => void) {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  if (onMessage) s.on("message", (m, ri) => onMessage(m, ri, s));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

/** Target that records (index, arrival time) of each 4-byte-indexed packet; echoes when asked. */
async function target(echo: boolean) {
  const got: { i: number; at: number }[] = [];
  const s = await socket((m, ri, s) => {
    got.push({ i: m.readUInt32BE(0), at: performance.now() });
    if (echo) s.send(m, ri.port, ri.address);
  });
  return { got, port: s.address().port };
}

async function relayTo(port: number, seed: number, toServer: Impairment, toClient: Impairment = {}): Promise<Relay> {
  const relay = await startRelay({ target: { host: "127.0.0.1", port }, seed, toServer, toClient });
  cleanups.push(() => relay.close());
  return relay;
}

/** Sends packets 0..n-1 to the relay, `gapMs` apart; returns send times and what came back. */
async function client(relay: Relay, n: number, gapMs = 0) {
  const back: number[] = [];
  const sentAt: number[] = [];
  const s = await socket((m) => back.push(m.readUInt32BE(0)));
  for (let i = 0; i < n; i++) {
    const b = Buffer.alloc(32);
    b.writeUInt32BE(i, 0);
    sentAt.push(performance.now());
    s.send(b, relay.address.port, relay.address.host);
    if (gapMs) await sleep(gapMs);
    else if (i % 20 === 19) await sleep(1);
  }
  return { back, sentAt };
}

/** Waits until every copy the log promises has been sent and `done()` holds (≤ 3 s). */
async function settle(relay: Relay, done: () => boolean = () => true) {
  const pending = () => relay.log.some((r) => r.delayMs && r.sentAt!.length < r.delayMs.length);
  const t0 = performance.now();
  while (performance.now() - t0 < 3000) {
    await sleep(20);
    if (!pending() && done()) break;
  }
  await sleep(30); // negative check: stragglers would show up as a mismatch
}

const dir = (relay: Relay, d: PacketRecord["direction"]) => relay.log.filter((r) => r.direction === d);
const copies = (r: PacketRecord) => (r.fate === "dropped" ? 0 : r.fate === "duplicated" ? 2 : 1);
const sorted = (a: number[]) => [...a].sort((x, y) => x - y);

describe("relay over UDP", () => {
  test("30% loss each way: endpoints see exactly what the log forwarded; stats match the log", async () => {
    const server = await target(true);
    const relay = await relayTo(server.port, 42, { loss: 0.3, duplicate: 0.1 }, { loss: 0.3, duplicate: 0.1 });
    const c = await client(relay, 300);
    const up = dir(relay, "toServer");
    await settle(relay, () => dir(relay, "toClient").length === server.got.length);
    expect(up.length).toBe(300);
    expect(up.map((r) => r.seq)).toEqual([...Array(300).keys()]);
    // Client sends in order, so toServer seq n carries index n.
    expect(sorted(server.got.map((g) => g.i))).toEqual(up.flatMap((r) => Array(copies(r)).fill(r.seq)));
    // The server echoes in arrival order, so toClient seq k carries the k-th index it got.
    const down = dir(relay, "toClient");
    expect(down.length).toBe(server.got.length);
    expect(sorted(c.back)).toEqual(sorted(down.flatMap((r) => Array(copies(r)).fill(server.got[r.seq].i))));
    const st = relay.stats();
    for (const d of ["toServer", "toClient"] as const) {
      const recs = dir(relay, d);
      const n = (f: string) => recs.filter((r) => r.fate === f).length;
      expect(st[d]).toEqual({
        received: recs.length,
        forwarded: n("forwarded"),
        dropped: n("dropped"),
        duplicated: n("duplicated"),
        reordered: recs.filter((r) => r.heldBack).length,
        sent: recs.reduce((a, r) => a + copies(r), 0),
      });
      expect(st[d].dropped / st[d].received).toBeGreaterThan(0.15);
      expect(st[d].dropped / st[d].received).toBeLessThan(0.45);
    }
    expect(st.schedulingErrorMs.count).toBe(st.toServer.sent + st.toClient.sent);
    expect(st.schedulingErrorMs.p50).toBeGreaterThanOrEqual(-1);
  });

  test("same seed, same fates and delays; another seed differs", async () => {
    const imp = { loss: 0.2, duplicate: 0.2, reorder: 0.2, delayMs: 3, jitterMs: 2, jitter: "normal" } as const;
    const runOnce = async (seed: number) => {
      const sink = await target(false);
      const relay = await relayTo(sink.port, seed, imp);
      await client(relay, 100);
      await settle(relay);
      return relay.log.map((r) => [r.seq, r.fate, r.heldBack ?? false, r.delayMs ?? []]);
    };
    const a = await runOnce(7);
    expect(a.length).toBe(100);
    expect(await runOnce(7)).toEqual(a);
    expect(await runOnce(8)).not.toEqual(a);
  });

  test("20 ms ± 5 uniform: drawn delays in [15, 25], measured one-way delays close", async () => {
    const sink = await target(false);
    const relay = await relayTo(sink.port, 3, { delayMs: 20, jitterMs: 5 });
    const c = await client(relay, 100, 1);
    await settle(relay, () => sink.got.length >= 100);
    expect(sink.got.length).toBe(100);
    const delays = relay.log.map((r) => r.delayMs![0]);
    for (const d of delays) expect(d >= 15 && d <= 25).toBe(true);
    expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(5); // jitter is really there
    for (const g of sink.got) {
      const oneWay = g.at - c.sentAt[g.i];
      const drawn = relay.log[g.i].delayMs![0];
      expect(oneWay).toBeGreaterThanOrEqual(drawn - 1); // timers may fire ≤ 1 ms early (ms rounding)
      expect(oneWay).toBeLessThan(drawn + 25); // scheduling slack on a busy machine
    }
  });

  test("duplicate 0.2: the receiver sees duplicates exactly as logged", async () => {
    const sink = await target(false);
    const relay = await relayTo(sink.port, 11, { duplicate: 0.2 });
    await client(relay, 200);
    await settle(relay);
    const dups = relay.log.filter((r) => r.fate === "duplicated").map((r) => r.seq);
    expect(dups.length).toBeGreaterThan(20);
    const seen = new Map<number, number>();
    for (const g of sink.got) seen.set(g.i, (seen.get(g.i) ?? 0) + 1);
    expect(sorted([...seen].filter(([, n]) => n === 2).map(([i]) => i))).toEqual(dups);
    expect(sink.got.length).toBe(200 + dups.length);
  });

  test("reorder: arrival order is the log's send order, and it is out of order", async () => {
    const sink = await target(false);
    const relay = await relayTo(sink.port, 5, { reorder: 0.3, reorderDelayMs: 15 });
    await client(relay, 60, 2);
    await settle(relay, () => sink.got.length >= 60);
    const bySend = [...relay.log].sort((a, b) => a.sentAt![0] - b.sentAt![0] || a.seq - b.seq).map((r) => r.seq);
    const arrival = sink.got.map((g) => g.i);
    expect(arrival).toEqual(bySend);
    expect(arrival).not.toEqual([...Array(60).keys()]);
    expect(relay.stats().toServer.reordered).toBe(relay.log.filter((r) => r.heldBack).length);
    // Reordering is exactly "a packet's delay exceeds its successor's" (given the send gaps).
    expect(relay.log.some((r, k) => k + 1 < 60 && r.delayMs![0] > relay.log[k + 1].delayMs![0])).toBe(true);
  });

  test("setImpairment changes the next packets; bad input is refused; maxPackets bounds the log", async () => {
    const sink = await target(false);
    const relay = await startRelay({ target: { host: "127.0.0.1", port: sink.port }, maxPackets: 10 });
    cleanups.push(() => relay.close());
    relay.setImpairment("toServer", { loss: 1 });
    await client(relay, 20);
    await settle(relay);
    expect(relay.log.length).toBe(10);
    expect(relay.stats().toServer.received).toBe(20);
    expect(relay.stats().toServer.dropped).toBe(20);
    expect(sink.got.length).toBe(0);
    expect(() => relay.setImpairment("toServer", { loss: 2 })).toThrow(RangeError);
    expect(() => relay.setImpairment("toClient", { delayMs: -1 })).toThrow(RangeError);
    expect(() => relay.setImpairment("toClient", { jitterMs: NaN })).toThrow(RangeError);
    await expect(startRelay({ target: { host: "127.0.0.1", port: 1 }, toServer: { loss: -0.1 } })).rejects.toThrow(
      RangeError,
    );
  });

  test("close() cancels pending sends", async () => {
    const sink = await target(false);
    const relay = await startRelay({ target: { host: "127.0.0.1", port: sink.port }, toServer: { delayMs: 60_000 } });
    await client(relay, 5);
    await waitFor(() => relay.log.length >= 5, "the relay to receive the 5 packets");
    expect(relay.log.length).toBe(5);
    await relay.close();
    await relay.close(); // idempotent
    expect(sink.got.length).toBe(0);
  });
});

describe("relay under other runtimes", () => {
  const script = `
import dgram from "node:dgram";
import { startRelay } from ${JSON.stringify(join(import.meta.dir, "..", "..", "src", "testing", "relay.ts"))};
const echo = dgram.createSocket("udp4");
await new Promise((r) => echo.bind(0, "127.0.0.1", r));
echo.on("message", (m, ri) => echo.send(m, ri.port, ri.address));
const relay = await startRelay({ target: { host: "127.0.0.1", port: echo.address().port }, seed: 1, toServer: { delayMs: 5, jitterMs: 2 } });
const c = dgram.createSocket("udp4");
await new Promise((r) => c.bind(0, "127.0.0.1", r));
const back = [];
c.on("message", (m) => back.push(m[0]));
for (let i = 0; i < 10; i++) c.send(new Uint8Array([i]), relay.address.port, relay.address.host);
for (let t = 0; t < 100 && back.length < 10; t++) await new Promise((r) => setTimeout(r, 20));
await relay.close();
c.close();
echo.close();
console.log(JSON.stringify({ back: back.sort((a, b) => a - b), stats: relay.stats().toServer }));
`;
  const check = (out: { code: number; stdout: string; stderr: string }) => {
    expect(out.stderr + out.stdout).toContain('"back"');
    expect(out.code).toBe(0);
    const r = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
    expect(r.back).toEqual([...Array(10).keys()]);
    expect(r.stats.sent).toBe(10);
  };

  test("Deno: 10 packets round-trip and the process exits", async () => {
    const d = mkdtempSync(join(tmpdir(), "relay-deno-"));
    cleanups.push(() => rmSync(d, { recursive: true, force: true }));
    writeFileSync(join(d, "rt.ts"), script);
    check(await run([tool("deno"), "run", "--unstable-net", "-A", join(d, "rt.ts")], { timeoutMs: 30_000 }));
  }, 40_000);

  test("Node: 10 packets round-trip and the process exits", async () => {
    const d = mkdtempSync(join(tmpdir(), "relay-node-"));
    cleanups.push(() => rmSync(d, { recursive: true, force: true }));
    writeFileSync(join(d, "rt.ts"), script);
    const out = join(d, "rt.mjs");
    const built = await run([
      tool("bun"),
      "build",
      join(d, "rt.ts"),
      "--target=node",
      "--format=esm",
      "--outfile",
      out,
    ]);
    expect(built.code).toBe(0);
    check(await run([Bun.which("node") ?? "node", out], { timeoutMs: 30_000 }));
  }, 40_000);
});
