// Run in its own process under Bun or Deno (`--unstable-net -A`) by features.test.ts:
// development certificates by default, 0-RTT resumption, and mutual TLS, on this runtime's
// own stack. Prints one JSON line.

import { createDevCertificates } from "../../src/security/mod.ts";
import { defaultTransport } from "../../src/transport/mod.ts";
import type { Connection, Transport } from "../../src/transport/mod.ts";

const t: Transport = await defaultTransport();
const ALPN = "echostream/1";
const enc = new TextEncoder();
const dec = new TextDecoder();
const out: Record<string, unknown> = { runtime: t.name };

function echoServer(conn: Connection): void {
  conn.handle({
    bidi: async (s) => {
      for await (const c of s) await s.write(c);
      await s.end();
    },
  });
}

async function roundTrip(conn: Connection, text: string): Promise<string> {
  const s = await conn.openBidi();
  await s.write(enc.encode(text));
  await s.end();
  let got = "";
  for await (const c of s) got += dec.decode(c);
  return got;
}

// 1. No tls given: a development certificate, a log line, and listener.trust.
{
  const logs: string[] = [];
  const l = await t.listen({ host: "127.0.0.1", port: 0, alpn: ALPN, log: (m) => logs.push(m) }, echoServer);
  const byCa = await t.connect({ host: "127.0.0.1", port: l.address.port, alpn: ALPN, tls: { ca: l.trust.ca } });
  const byPin = await t.connect({ host: "127.0.0.1", port: l.address.port, alpn: ALPN, tls: { fingerprint: l.trust.fingerprint } });
  out.devCert = {
    hasCa: typeof l.trust.ca === "string" && l.trust.ca.includes("BEGIN CERTIFICATE"),
    logged: logs.length === 1 && logs[0].includes(l.trust.fingerprint.slice(0, 2).toUpperCase()) && /development/.test(logs[0]),
    byCa: await roundTrip(byCa, "ca"),
    byPin: await roundTrip(byPin, "pin"),
  };
  await byCa.close();
  await byPin.close();
  await l.close();
}

// 2. 0-RTT: the second and third connections resume and carry a request as early data.
{
  const certs = await createDevCertificates();
  const l = await t.listen({ host: "127.0.0.1", port: 0, alpn: ALPN, tls: certs, earlyData: true }, echoServer);
  const rounds = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const c = await t.connect({ host: "127.0.0.1", port: l.address.port, alpn: ALPN, tls: { ca: certs.ca }, zeroRtt: true });
    const echo = await roundTrip(c, `early ${i}`);
    const ms = performance.now() - t0;
    rounds.push({ ...(await c.handshake), echo, ms: Math.round(ms * 10) / 10 });
    await c.close();
    await new Promise((r) => setTimeout(r, 50)); // let the ticket arrive before the next connect
  }
  out.zeroRtt = rounds;
  await l.close();
}

// 2b. 0-RTT to an IPv6 server after the IPv4 one above: a client endpoint of the right family.
{
  const certs = await createDevCertificates();
  const l = await t.listen({ host: "::1", port: 0, alpn: ALPN, tls: certs, earlyData: true }, echoServer);
  const rounds = [];
  for (let i = 0; i < 2; i++) {
    try {
      const c = await t.connect({ host: "::1", port: l.address.port, alpn: ALPN, tls: { ca: certs.ca }, zeroRtt: true, handshakeTimeoutMs: 3000 });
      const echo = await Promise.race([roundTrip(c, `v6 ${i}`), new Promise<string>((r) => setTimeout(() => r("timed out"), 3000))]);
      rounds.push({ resumed: (await c.handshake).resumed, echo });
      await c.close();
    } catch (e) {
      rounds.push({ error: String((e as Error).message ?? e) });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  out.zeroRttV6 = rounds;
  await l.close();
}

// 3. Mutual TLS: the server requires a client certificate from its client CA.
{
  const server = await createDevCertificates();
  const client = await createDevCertificates({ hosts: ["client-1"], commonName: "EchoStream client CA" });
  try {
    let seen!: (peer: unknown) => void;
    const peer = new Promise((r) => (seen = r));
    const l = await t.listen(
      { host: "127.0.0.1", port: 0, alpn: ALPN, tls: { cert: server.cert, key: server.key, clientCa: client.ca } },
      (conn) => {
        seen(conn.peerCertificate);
        echoServer(conn);
      },
    );
    const ok = await t.connect({
      host: "127.0.0.1",
      port: l.address.port,
      alpn: ALPN,
      tls: { ca: server.ca, cert: client.cert, key: client.key },
    });
    out.mtlsWithCert = await roundTrip(ok, "mtls");
    out.mtlsPeer = await peer;
    out.clientFingerprint = client.fingerprint;
    await ok.close();
    try {
      const anon = await t.connect({ host: "127.0.0.1", port: l.address.port, alpn: ALPN, tls: { ca: server.ca } });
      out.mtlsWithoutCert = await roundTrip(anon, "anon").then(() => "served", (e) => e.code);
    } catch (e) {
      out.mtlsWithoutCert = (e as { code?: string }).code;
    }
    await l.close();
  } catch (e) {
    out.mtls = (e as { code?: string }).code;
  }
}

console.log(JSON.stringify(out));
(globalThis as unknown as { process: { exit(c: number): void } }).process.exit(0);
