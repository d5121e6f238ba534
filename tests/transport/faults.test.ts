// Faults over real QUIC, each peer in its own process: a server killed mid-stream, and a
// reader that stops reading.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDevCertificates, type DevCertificates } from "../../src/security/mod.ts";
import { bunTransport } from "../../src/transport/bun.ts";
import { bundleForNode, type Runtime, runtimeCommand } from "../support/process.ts";

const RUNTIMES: Runtime[] = ["bun", "deno", "node"];
const SCRIPTS = ["peer.ts", "kill_client.ts", "stall_server.ts"].map((f) => join(import.meta.dir, f));
let node: { dir: string; cleanup: () => void };
const script = (rt: Runtime, file: string, ...args: string[]) =>
  runtimeCommand(rt, join(import.meta.dir, file), args, node?.dir);

let dir: string;
let certs: DevCertificates;
beforeAll(async () => {
  node = await bundleForNode(SCRIPTS);
  dir = mkdtempSync(join(tmpdir(), "echostream-faults-"));
  certs = await createDevCertificates();
  writeFileSync(join(dir, "cert.pem"), certs.cert);
  writeFileSync(join(dir, "key.pem"), certs.key);
  writeFileSync(join(dir, "ca.pem"), certs.ca);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  node?.cleanup();
});

/** Reads lines from a child's stdout. */
function lines(proc: { stdout: ReadableStream<Uint8Array> }): () => Promise<string> {
  const reader = proc.stdout.getReader();
  let buf = "";
  return async () => {
    while (!buf.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`child ended; partial output: ${buf}`);
      buf += new TextDecoder().decode(value);
    }
    const i = buf.indexOf("\n");
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    return line;
  };
}

describe("server killed mid-stream", () => {
  for (const server of RUNTIMES) {
    for (const client of RUNTIMES) {
      test(`${client} client, ${server} server: the read fails with CLOSED within the 1.5 s idle timeout`, async () => {
        const srv = Bun.spawn(script(server, "peer.ts", "server", dir), {
          stdin: "pipe",
          stdout: "pipe",
          stderr: "ignore",
        });
        try {
          const { port } = JSON.parse(await lines(srv)());
          const c = Bun.spawn(script(client, "kill_client.ts", join(dir, "ca.pem"), String(port)), {
            stdout: "pipe",
            stderr: "ignore",
          });
          try {
            const next = lines(c);
            expect(await next()).toBe("ready");
            srv.kill("SIGKILL");
            const r = JSON.parse(await next());
            expect(r.outcome).toBe("CLOSED");
            expect(r.ms).toBeLessThan(5000);
            expect(r.closed.local).toBe(false);
          } finally {
            c.kill();
          }
        } finally {
          srv.kill("SIGKILL");
        }
      }, 30_000);
    }
  }
});

describe("a reader that stops reading", () => {
  async function writeFor(port: number, ms: number): Promise<{ written: number; rssGrowth: number }> {
    const conn = await bunTransport.connect({ host: "127.0.0.1", port, alpn: "echostream/1", tls: { ca: certs.ca } });
    const s = await conn.openBidi();
    const chunk = new Uint8Array(64 * 1024);
    let written = 0;
    Bun.gc(true);
    const rss0 = process.memoryUsage().rss;
    const deadline = performance.now() + ms;
    const loop = (async () => {
      while (performance.now() < deadline) {
        await s.write(chunk);
        written += chunk.length;
      }
    })();
    await Promise.race([loop, new Promise((r) => setTimeout(r, ms + 500))]);
    Bun.gc(true);
    const rssGrowth = process.memoryUsage().rss - rss0;
    conn.close().catch(() => {});
    return { written, rssGrowth };
  }

  for (const receiver of ["deno", "node"] as const) {
    test(`${receiver} receiver: flow control stops the writer (end-to-end backpressure)`, async () => {
      const srv = Bun.spawn(script(receiver, "stall_server.ts", dir), { stdout: "pipe", stderr: "ignore" });
      try {
        const { port } = JSON.parse(await lines(srv)());
        const { written } = await writeFor(port, 1500);
        // quinn's windows are a few MiB; an unthrottled loop moves hundreds of MiB in 1.5 s.
        expect(written).toBeGreaterThan(0);
        expect(written).toBeLessThan(32 * 1024 * 1024);
      } finally {
        srv.kill("SIGKILL");
      }
    }, 20_000);
  }

  test("bun receiver: the writer's memory stays bounded (Bun's receiver buffers: see docs/TRANSPORT.md)", async () => {
    const srv = Bun.spawn(script("bun", "stall_server.ts", dir), { stdout: "pipe", stderr: "ignore" });
    try {
      const { port } = JSON.parse(await lines(srv)());
      const { written, rssGrowth } = await writeFor(port, 1500);
      // Bun's node:quic keeps granting credit while its application does not read, so the
      // bytes flow (into the receiver's memory); the writer holds only what it awaits.
      expect(written).toBeGreaterThan(0);
      expect(rssGrowth).toBeLessThan(Math.max(96 * 1024 * 1024, written / 4));
    } finally {
      srv.kill("SIGKILL");
    }
  }, 20_000);
});
