// Interop matrix over real QUIC and real TLS: every server runtime × every client runtime
// (Bun, Deno), each peer in its own process, using the runtimes' own QUIC stacks through our
// adapters. Node is not in the matrix yet: its @matrixai/quic adapter is not built.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDevCertificates } from "../../src/security/dev_cert.ts";
import { run, tool } from "../support/process.ts";

const PEER = join(import.meta.dir, "peer.ts");
const RUNTIMES = ["bun", "deno"] as const;
type Runtime = (typeof RUNTIMES)[number];
const cmd = (rt: Runtime, ...args: string[]) =>
  rt === "bun" ? [tool("bun"), PEER, ...args] : [tool("deno"), "run", "--unstable-net", "-A", PEER, ...args];

let dir: string;
const servers: Partial<Record<Runtime, { port: number; proc: ReturnType<typeof Bun.spawn> }>> = {};

/** A UDP port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "echostream-interop-"));
  const certs = await createDevCertificates();
  const other = await createDevCertificates({ commonName: "Some other CA" });
  writeFileSync(join(dir, "cert.pem"), certs.cert);
  writeFileSync(join(dir, "key.pem"), certs.key);
  writeFileSync(join(dir, "ca.pem"), certs.ca);
  writeFileSync(join(dir, "other-ca.pem"), other.ca);
  writeFileSync(join(dir, "fingerprint.txt"), certs.fingerprint);
  writeFileSync(join(dir, "dead-port.txt"), String(await deadPort()));
  for (const rt of RUNTIMES) {
    const proc = Bun.spawn(cmd(rt, "server", dir), { stdin: "pipe", stdout: "pipe", stderr: "ignore" });
    const reader = proc.stdout.getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    servers[rt] = { port: JSON.parse(new TextDecoder().decode(value)).port, proc };
  }
}, 30_000);

afterAll(async () => {
  for (const s of Object.values(servers)) {
    s.proc.stdin.end();
    const exited = await Promise.race([s.proc.exited, new Promise((r) => setTimeout(() => r("timeout"), 3000))]);
    if (exited === "timeout") s.proc.kill();
  }
  rmSync(dir, { recursive: true, force: true });
});

for (const server of RUNTIMES) {
  for (const client of RUNTIMES) {
    describe(`${client} client → ${server} server`, () => {
      let results: Record<string, Record<string, unknown>> = {};
      beforeAll(async () => {
        const r = await run(cmd(client, "client", dir, String(servers[server]!.port), "echo,datagram,reset,close,wrong-ca,fingerprint"), {
          timeoutMs: 90_000,
        });
        results = Object.fromEntries(
          r.stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => {
            const o = JSON.parse(l);
            return [o.check, o];
          }),
        );
      }, 100_000);

      test("100 streams echo 0 B, 1 B, 64 KiB and 4 MiB byte-exact, ALPN negotiated", () => {
        expect(results.echo).toMatchObject({ runtime: client, exact: 100, alpn: "echostream/1" });
      });

      test("datagrams echo; one over the limit is refused with DATAGRAM_TOO_LARGE", () => {
        expect(results.datagram).toMatchObject({ echo: "dgram", tooLarge: "DATAGRAM_TOO_LARGE" });
        expect(results.datagram.maxDatagramSize as number).toBeGreaterThan(1000);
      });

      test(server === "deno" ? "reset: Deno sends FIN, not RESET_STREAM (stack limitation)" : "reset code 66 arrives intact", () => {
        if (server === "deno") expect(results.reset).toMatchObject({ outcome: "clean end" });
        else expect(results.reset).toMatchObject({ outcome: "STREAM_RESET", appCode: 66 });
      });

      test("close code 4242 and reason arrive intact", () => {
        expect(results.close).toMatchObject({ closed: { code: 4242, reason: "closing as asked", local: false } });
      });

      test("a wrong CA fails the handshake with an error naming verification", () => {
        expect(results["wrong-ca"]).toMatchObject({ outcome: "TLS_VERIFICATION" });
        expect(String(results["wrong-ca"].message)).toMatch(/verification failed/);
      });

      test("a pinned leaf fingerprint connects; a wrong pin is refused", () => {
        expect(results.fingerprint).toMatchObject({ echo: "pinned", wrongPin: "TLS_VERIFICATION" });
      });
    });
  }
}

for (const client of RUNTIMES) {
  test(`${client}: connecting to a port with nothing listening fails with HANDSHAKE_TIMEOUT`, async () => {
    const r = await run(cmd(client, "client", dir, "0", "dead-port"), { timeoutMs: 30_000 });
    const o = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(o.outcome).toBe("HANDSHAKE_TIMEOUT");
    expect(o.ms).toBeLessThan(10_000); // our 3 s handshake timer, not the stack's 10–30 s default
  }, 40_000);
}
