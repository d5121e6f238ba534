// A real QUIC connection through the impairment relay: 10 ms ± 5 ms and 2% loss each way; QUIC
// must recover every lost packet (byte-exact echoes) while the relay's log shows it dropped some.

import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDevCertificates } from "../../src/security/mod.ts";
import { startRelay } from "../../src/testing/relay.ts";
import { defaultTransport } from "../../src/transport/mod.ts";
import type { BidiStream } from "../../src/transport/mod.ts";
import { run, tool } from "../support/process.ts";

const ALPN = "echostream/1";
const IMP = { delayMs: 10, jitterMs: 5, loss: 0.02 };

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) out[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return out;
}

async function readAll(s: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of s) parts.push(c);
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

async function echoServer() {
  const certs = await createDevCertificates();
  const t = await defaultTransport();
  const serve = async (s: BidiStream) => {
    try {
      for await (const c of s) await s.write(c);
      await s.end();
    } catch { /* client went away */ }
  };
  const listener = await t.listen(
    { host: "127.0.0.1", port: 0, alpn: ALPN, tls: { cert: certs.cert, key: certs.key } },
    (conn) => conn.handle({ bidi: (s) => void serve(s) }),
  );
  return { certs, listener };
}

test("20 streams × 64 KiB echo byte-exact through 10±5 ms, 2% loss each way", async () => {
  const { certs, listener } = await echoServer();
  const relay = await startRelay({ target: listener.address, seed: 2024, toServer: IMP, toClient: IMP });
  try {
    const t = await defaultTransport();
    const conn = await t.connect({
      host: relay.address.host,
      port: relay.address.port,
      alpn: ALPN,
      tls: { ca: certs.ca, serverName: "localhost" },
      handshakeTimeoutMs: 5000,
    });
    const ok = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const data = pattern(64 * 1024, i + 1);
      const s = await conn.openBidi();
      const back = readAll(s);
      await s.write(data);
      await s.end();
      const got = await back;
      return got.length === data.length && got.every((b, k) => b === data[k]);
    }));
    await conn.close();
    expect(ok.filter(Boolean).length).toBe(20);
    const st = relay.stats();
    expect(st.toServer.dropped + st.toClient.dropped).toBeGreaterThan(0);
    expect(st.toServer.dropped).toBe(
      relay.log.filter((r) => r.direction === "toServer" && r.fate === "dropped").length,
    );
    console.log(
      JSON.stringify({ toServer: st.toServer, toClient: st.toClient, schedulingErrorMs: st.schedulingErrorMs }),
    );
  } finally {
    await relay.close();
    await listener.close();
  }
}, 30_000);

test("Deno client through the relay (relay and client in a Deno process, Bun server)", async () => {
  const { certs, listener } = await echoServer();
  const d = mkdtempSync(join(tmpdir(), "relay-quic-deno-"));
  try {
    const src = join(import.meta.dir, "..", "..", "src");
    writeFileSync(join(d, "ca.pem"), certs.ca);
    writeFileSync(
      join(d, "client.ts"),
      `
import { startRelay } from ${JSON.stringify(join(src, "testing", "relay.ts"))};
import { defaultTransport } from ${JSON.stringify(join(src, "transport", "mod.ts"))};
const IMP = ${JSON.stringify(IMP)};
const relay = await startRelay({ target: { host: "127.0.0.1", port: ${listener.address.port} }, seed: 9, toServer: IMP, toClient: IMP });
const t = await defaultTransport();
const conn = await t.connect({ host: relay.address.host, port: relay.address.port, alpn: "${ALPN}",
  tls: { ca: Deno.readTextFileSync(${
        JSON.stringify(join(d, "ca.pem"))
      }), serverName: "localhost" }, handshakeTimeoutMs: 5000 });
const ok = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
  const data = new Uint8Array(64 * 1024).map((_, k) => (k * 31 + i) & 255);
  const s = await conn.openBidi();
  const chunks = [];
  const back = (async () => { for await (const c of s) chunks.push(c); })();
  await s.write(data);
  await s.end();
  await back;
  const got = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of chunks) { got.set(c, at); at += c.length; }
  return got.length === data.length && got.every((b, k) => b === data[k]);
}));
await conn.close();
await relay.close();
const st = relay.stats();
console.log(JSON.stringify({ runtime: t.name, exact: ok.filter(Boolean).length, dropped: st.toServer.dropped + st.toClient.dropped }));
Deno.exit(0);
`,
    );
    // The script lives outside the repo: the repo's deno.json maps the library's npm imports.
    const config = join(import.meta.dir, "..", "..", "deno.json");
    const out = await run([tool("deno"), "run", "--config", config, "--unstable-net", "-A", join(d, "client.ts")], { timeoutMs: 40_000 });
    expect(out.stderr + out.stdout).toContain('"exact"');
    const r = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
    expect(r).toMatchObject({ runtime: "deno", exact: 20 });
    expect(r.dropped).toBeGreaterThan(0);
  } finally {
    rmSync(d, { recursive: true, force: true });
    await listener.close();
  }
}, 50_000);
