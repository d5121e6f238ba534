// Development certificates: checked by OpenSSL, node:crypto, a real QUIC handshake on Bun
// (node:quic) and on Deno (separate process), and generated on Deno and Node 20 too.

import { afterAll, expect, test } from "bun:test";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  certificateFingerprint,
  createDevCertificates,
  type DevCertificateOptions,
  formatFingerprint,
} from "../../src/security/dev_cert.ts";
import { decodePem, parseIPv6, time } from "../../src/security/_der.ts";
import { run, tool } from "../support/process.ts";

const ALPN = "echostream/1";
const dir = mkdtempSync(join(tmpdir(), "echostream-devcert-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const dev = await createDevCertificates();
const leafPem = dev.cert.slice(0, dev.cert.indexOf("-----END CERTIFICATE-----") + 26);
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const caFile = file("ca.pem", dev.ca);
const leafFile = file("leaf.pem", leafPem);
file("cert.pem", dev.cert);
const keyFile = file("key.pem", dev.key);
const caKeyFile = file("ca-key.pem", dev.caKey);

async function openssl(...args: string[]): Promise<string> {
  const r = await run(["openssl", ...args], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

test("openssl verifies the leaf against the CA (strict, server and client purpose)", async () => {
  expect(await openssl("verify", "-CAfile", caFile, leafFile)).toContain(": OK");
  expect(await openssl("verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", caFile, leafFile)).toContain(
    ": OK",
  );
  expect(await openssl("verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", caFile, leafFile)).toContain(
    ": OK",
  );
  expect(await openssl("verify", "-x509_strict", "-CAfile", caFile, caFile)).toContain(": OK");
});

test("openssl shows the SANs, CA:FALSE on the leaf and CA:TRUE on the CA", async () => {
  const leaf = await openssl("x509", "-in", leafFile, "-noout", "-text");
  expect(leaf).toContain("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
  expect(leaf).toContain("CA:FALSE");
  expect(leaf).toContain("Version: 3 (0x2)");
  expect(leaf).toContain("ecdsa-with-SHA256");
  expect(leaf).toContain("Digital Signature");
  expect(leaf).toContain("TLS Web Server Authentication, TLS Web Client Authentication");
  expect(leaf).toContain("Subject: CN = localhost");
  expect(leaf).toContain("Issuer: CN = EchoStream development CA, O = EchoStream");
  const ca = await openssl("x509", "-in", caFile, "-noout", "-text");
  expect(ca).toContain("CA:TRUE, pathlen:0");
  expect(ca).toContain("Certificate Sign, CRL Sign");
  expect(ca).toContain("Subject: CN = EchoStream development CA, O = EchoStream");
  // The leaf's authority key id is the CA's subject key id.
  const ski = ca.match(/Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/)?.[1];
  const aki = leaf.match(/Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/)?.[1];
  expect(ski).toMatch(/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
  expect(aki).toBe(ski);
});

test("custom hosts: DNS names, IPv4 and compressed IPv6 literals", async () => {
  const d = await createDevCertificates({
    hosts: ["api.example.test", "*.dev.test", "10.1.2.3", "fe80::1:2", "2001:db8::", "::ffff:192.0.2.1"],
    commonName: "Custom CA",
    validityDays: 1,
  });
  const text = await openssl("x509", "-noout", "-text", "-in", file("custom.pem", d.cert));
  expect(text).toContain(
    "DNS:api.example.test, DNS:*.dev.test, IP Address:10.1.2.3, IP Address:FE80:0:0:0:0:0:1:2, " +
      "IP Address:2001:DB8:0:0:0:0:0:0, IP Address:0:0:0:0:0:FFFF:C000:201",
  );
  expect(text).toContain("Subject: CN = api.example.test");
  expect(text).toContain("Issuer: CN = Custom CA, O = EchoStream");
  expect(d.hosts).toEqual([
    "api.example.test",
    "*.dev.test",
    "10.1.2.3",
    "fe80::1:2",
    "2001:db8::",
    "::ffff:192.0.2.1",
  ]);
  expect(Math.abs(d.notAfter.getTime() - Date.now() - 86_400_000)).toBeLessThan(60_000);
  expect(new Date(new X509Certificate(d.cert).validTo).getTime()).toBe(d.notAfter.getTime());
  expect(new Date(new X509Certificate(d.ca).validTo).getTime()).toBe(d.notAfter.getTime() + 86_400_000);
});

test("IPv6 parsing and the UTCTime/GeneralizedTime switch", () => {
  expect(parseIPv6("::")).toEqual(new Array(16).fill(0));
  expect(parseIPv6("::1")).toEqual([...new Array(15).fill(0), 1]);
  expect(parseIPv6("1:2:3:4:5:6:7:8")).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
  for (const bad of ["1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4::5:6:7:8", "12345::", "::g", ":1"]) {
    expect(parseIPv6(bad)).toBeUndefined();
  }
  expect(time(new Date("2049-12-31T23:59:59Z"))[0]).toBe(0x17);
  expect(new TextDecoder().decode(time(new Date("2049-12-31T23:59:59Z")).subarray(2))).toBe("491231235959Z");
  expect(time(new Date("2050-01-01T00:00:00Z"))[0]).toBe(0x18);
  expect(new TextDecoder().decode(time(new Date("2050-01-01T00:00:00Z")).subarray(2))).toBe("20500101000000Z");
});

test("fingerprints equal openssl's SHA-256 fingerprints", async () => {
  const norm = (s: string) => s.trim().split("=")[1].replaceAll(":", "").toLowerCase();
  expect(dev.fingerprint).toBe(norm(await openssl("x509", "-in", leafFile, "-noout", "-fingerprint", "-sha256")));
  expect(dev.caFingerprint).toBe(norm(await openssl("x509", "-in", caFile, "-noout", "-fingerprint", "-sha256")));
  expect(await certificateFingerprint(dev.cert)).toBe(dev.fingerprint);
  expect(await certificateFingerprint(dev.ca)).toBe(dev.caFingerprint);
  const colon = (await openssl("x509", "-in", leafFile, "-noout", "-fingerprint", "-sha256")).trim().split("=")[1];
  expect(formatFingerprint(dev.fingerprint)).toBe(colon);
  expect(formatFingerprint("ab01ff")).toBe("AB:01:FF");
  expect(dev.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  expect(decodePem(dev.cert)).toHaveLength(2);
  expect(dev.cert.endsWith(dev.ca)).toBe(true);
  for (const line of dev.cert.split("\n")) expect(line.length).toBeLessThanOrEqual(64);
});

test("the key PEMs parse with openssl pkey and match the certificates' public keys", async () => {
  expect(dev.key.startsWith("-----BEGIN PRIVATE KEY-----\n")).toBe(true);
  expect(await openssl("pkey", "-in", keyFile, "-pubout")).toBe(
    await openssl("x509", "-in", leafFile, "-noout", "-pubkey"),
  );
  expect(await openssl("pkey", "-in", caKeyFile, "-pubout")).toBe(
    await openssl("x509", "-in", caFile, "-noout", "-pubkey"),
  );
  expect(await openssl("pkey", "-in", keyFile, "-pubout")).not.toBe(await openssl("pkey", "-in", caKeyFile, "-pubout"));
});

test("node:crypto X509Certificate parses both, and the leaf is issued and signed by the CA", () => {
  const ca = new X509Certificate(dev.ca);
  const leaf = new X509Certificate(dev.cert);
  expect(ca.ca).toBe(true);
  expect(leaf.ca).toBe(false);
  expect(leaf.verify(ca.publicKey)).toBe(true);
  expect(leaf.checkIssued(ca)).toBe(true);
  expect(ca.verify(ca.publicKey)).toBe(true);
  expect(leaf.checkHost("localhost")).toBe("localhost");
  expect(leaf.checkIP("127.0.0.1")).toBe("127.0.0.1");
  expect(leaf.checkIP("::1")).toBe("::1");
  expect(leaf.checkPrivateKey(createPrivateKey(dev.key))).toBe(true);
  expect(leaf.publicKey.export({ type: "spki", format: "pem" })).toBe(
    createPublicKey(createPrivateKey(dev.key)).export({ type: "spki", format: "pem" }),
  );
  for (const c of [ca, leaf]) {
    expect(c.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/i);
    expect(/^0+$/.test(c.serialNumber)).toBe(false);
  }
  expect(ca.serialNumber).not.toBe(leaf.serialNumber);
});

test("invalid options throw a clear TypeError or RangeError", async () => {
  const bad: [unknown, ErrorConstructor, RegExp][] = [
    [{ hosts: [] }, TypeError, /^hosts: expected a non-empty array .* received an array$/],
    [{ hosts: "localhost" }, TypeError, /^hosts: expected .* received "localhost"$/],
    [{ hosts: ["localhost", ""] }, TypeError, /^hosts: expected .* received ""$/],
    [{ hosts: [42] }, TypeError, /^hosts: expected .* received 42$/],
    [{ hosts: ["bad host"] }, TypeError, /^hosts: expected DNS names or IP literals, received "bad host"$/],
    [{ hosts: ["1.2.3.999"] }, TypeError, /received "1\.2\.3\.999"$/],
    [{ hosts: ["::g"] }, TypeError, /received "::g"$/],
    [{ hosts: ["[::1]"] }, TypeError, /received "\[::1\]"$/],
    [{ validityDays: 0 }, RangeError, /^validityDays: expected a positive number up to 3650, received 0$/],
    [{ validityDays: -1 }, RangeError, /received -1$/],
    [{ validityDays: 3651 }, RangeError, /received 3651$/],
    [{ validityDays: Number.NaN }, RangeError, /received NaN$/],
    [{ validityDays: "30" }, TypeError, /^validityDays: expected a number, received "30"$/],
    [{ commonName: "" }, TypeError, /^commonName: expected a non-empty string, received ""$/],
    [null, TypeError, /^options: expected an object, received/],
  ];
  for (const [opts, type, message] of bad) {
    const err = await createDevCertificates(opts as DevCertificateOptions).then(() => null, (e: Error) => e);
    expect(err).toBeInstanceOf(type);
    expect(err!.message).toMatch(message);
  }
  expect(() => formatFingerprint("abc")).toThrow(/^expected an even-length hex string, received "abc"$/);
  await expect(certificateFingerprint("no pem here")).rejects.toThrow(/^expected PEM text with a CERTIFICATE block/);
  const ok = await createDevCertificates({ validityDays: 0.5, hosts: ["127.0.0.1"] });
  expect(new X509Certificate(ok.cert).subject).toBe("CN=127.0.0.1");
});

test("Bun node:quic: TLS handshake and echo with the chain; a different CA is rejected", async () => {
  const { listen, connect } = await import("node:quic");
  const serverErrors: unknown[] = [];
  const ep = await listen(
    (session) => {
      session.closed.catch(() => {});
      session.onstream = async (stream) => {
        stream.closed.catch(() => {});
        try {
          for await (const batch of stream) for (const chunk of batch) stream.writer.writeSync(chunk);
          await stream.writer.end();
        } catch (e) {
          serverErrors.push(e);
        }
      };
    },
    {
      alpn: [ALPN],
      sni: { "*": { keys: [createPrivateKey(dev.key)], certs: [Buffer.from(dev.cert)] } },
      endpoint: { address: "127.0.0.1:0" },
    } as Parameters<typeof listen>[1],
  );
  try {
    const port = (ep.address as unknown as { port: number }).port;
    const s = await connect(`127.0.0.1:${port}`, { alpn: ALPN, ca: [Buffer.from(dev.ca)], servername: "localhost" });
    s.closed.catch(() => {});
    const info = await s.opened;
    expect(info.protocol).toBe(ALPN);
    const stream = await s.createBidirectionalStream();
    stream.closed.catch(() => {});
    const payload = crypto.getRandomValues(new Uint8Array(20_000));
    stream.writer.writeSync(payload);
    await stream.writer.end();
    const parts: Uint8Array[] = [];
    for await (const batch of stream) for (const chunk of batch) parts.push(chunk);
    expect(Buffer.concat(parts).equals(Buffer.from(payload))).toBe(true);
    await s.close();

    const other = await createDevCertificates({ commonName: "Some other CA" });
    const bad = await connect(`127.0.0.1:${port}`, {
      alpn: ALPN,
      ca: [Buffer.from(other.ca)],
      servername: "localhost",
    });
    bad.closed.catch(() => {});
    const err = await bad.opened.then(() => null, (e: Error & { reason?: string }) => e);
    expect(err).not.toBeNull();
    expect(`${err!.message} ${err!.reason ?? ""}`).toMatch(/certificate validation/i);
    expect(serverErrors).toEqual([]);
  } finally {
    await Promise.race([ep.close(), new Promise((r) => setTimeout(r, 2000))]);
    if (!ep.destroyed) ep.destroy();
  }
}, 60_000);

test("Deno QUIC (separate process): handshake via the CA and via the pinned leaf fingerprint", async () => {
  const script = join(import.meta.dir, "deno_quic_check.ts");
  const r = await run([tool("deno"), "run", "--unstable-net", "--allow-net", "--allow-read", script, dir], {
    timeoutMs: 60_000,
  });
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.fingerprint).toBe(dev.fingerprint);
  expect(out.viaCa).toEqual({ ok: true });
  expect(out.viaPin).toEqual({ ok: true });
  expect(out.wrongPin.ok).toBe(false);
  expect(out.wrongPin.error).toMatch(/certificate/i);
}, 60_000);

test("Deno (no permissions) and Node 20 generate certificates openssl accepts", async () => {
  const entry = file(
    "gen_check.ts",
    `import { certificateFingerprint, createDevCertificates } from ${
      JSON.stringify(join(import.meta.dir, "..", "..", "src", "security", "dev_cert.ts"))
    };
const d = await createDevCertificates({ hosts: ["localhost", "::1"] });
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
console.log(JSON.stringify({ runtime, ...d, pinned: (await certificateFingerprint(d.cert)) === d.fingerprint }));
`,
  );
  const bundle = join(dir, "gen_check.mjs");
  const b = await run([tool("bun"), "build", entry, "--target=node", "--outfile", bundle], { timeoutMs: 60_000 });
  expect(b.stderr).toBe("");
  expect(b.code).toBe(0);
  const runs = {
    deno: await run([tool("deno"), "run", "--no-prompt", "--no-config", entry], { timeoutMs: 60_000 }),
    node: await run(["node", bundle], { timeoutMs: 60_000 }),
  };
  for (const [runtime, r] of Object.entries(runs)) {
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.runtime).toBe(runtime);
    expect(d.pinned).toBe(true);
    const ca = file(`${runtime}-ca.pem`, d.ca);
    const leaf = file(`${runtime}-cert.pem`, d.cert);
    expect(await openssl("verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", ca, leaf)).toContain(": OK");
    expect(await openssl("pkey", "-in", file(`${runtime}-key.pem`, d.key), "-pubout")).toBe(
      await openssl("x509", "-in", leaf, "-noout", "-pubkey"),
    );
  }
}, 90_000);
