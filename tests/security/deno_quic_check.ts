// Run by tests/security/dev_cert.test.ts:
//   deno run --unstable-net --allow-net --allow-read deno_quic_check.ts <dir>
// <dir> holds ca.pem, cert.pem (leaf + CA) and key.pem from createDevCertificates. Starts a Deno
// QUIC echo server with them, then connects three times: trusting the CA, pinning the leaf's
// SHA-256 (serverCertificateHashes, no CA), and pinning a wrong hash (must fail). Prints one JSON line.

import { certificateFingerprint } from "../../src/security/dev_cert.ts";

const ALPN = "echostream/1";
const dir = Deno.args[0];
const read = (f: string) => Deno.readTextFileSync(`${dir}/${f}`);
const ca = read("ca.pem");
const cert = read("cert.pem");
const key = read("key.pem");
const serverErrors: string[] = [];

const endpoint = new Deno.QuicEndpoint({ hostname: "127.0.0.1", port: 0 });
const listener = endpoint.listen({ alpnProtocols: [ALPN], cert, key });
(async () => {
  for await (const incoming of listener) {
    let conn: Deno.QuicConn;
    try {
      conn = await incoming.accept();
    } catch (e) {
      serverErrors.push(String(e)); // a client that rejects the certificate aborts the handshake
      continue;
    }
    (async () => {
      for await (const { readable, writable } of conn.incomingBidirectionalStreams) {
        readable.pipeTo(writable).catch((e) => serverErrors.push(String(e)));
      }
    })().catch(() => {});
  }
})().catch(() => {});

type PinnedOptions = Deno.ConnectQuicOptions<false> & {
  serverCertificateHashes?: { algorithm: "sha-256"; value: ArrayBuffer }[];
};

const payload = crypto.getRandomValues(new Uint8Array(4096));

async function echo(extra: Partial<PinnedOptions>): Promise<{ ok: boolean; error?: string }> {
  const options: PinnedOptions = {
    hostname: "127.0.0.1",
    port: endpoint.addr.port,
    serverName: "localhost",
    alpnProtocols: [ALPN],
    maxIdleTimeout: 10_000,
    ...extra,
  };
  try {
    const conn = await Deno.connectQuic(options);
    const { readable, writable } = await conn.createBidirectionalStream();
    const writer = writable.getWriter();
    await writer.write(payload);
    await writer.close();
    const chunks: Uint8Array[] = [];
    for await (const chunk of readable) chunks.push(chunk);
    const got = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let off = 0;
    for (const c of chunks) got.set(c, off), off += c.length;
    conn.close({ closeCode: 0, reason: "done" });
    const ok = got.length === payload.length && got.every((b, i) => b === payload[i]);
    return ok ? { ok } : { ok, error: `echo mismatch: ${got.length} bytes` };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
}

const fingerprint = await certificateFingerprint(cert);
const hashBytes = new Uint8Array(fingerprint.match(/../g)!.map((h) => parseInt(h, 16)));
const viaCa = await echo({ caCerts: [ca] });
const viaPin = await echo({ serverCertificateHashes: [{ algorithm: "sha-256", value: hashBytes.buffer }] });
const wrongPin = await echo({ serverCertificateHashes: [{ algorithm: "sha-256", value: new ArrayBuffer(32) }] });

console.log(JSON.stringify({ fingerprint, viaCa, viaPin, wrongPin, serverErrors }));
endpoint.close();
Deno.exit(0);
