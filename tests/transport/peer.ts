// Interop peer, run in its own process under Bun (`bun peer.ts …`), Deno
// (`deno run --unstable-net -A peer.ts …`) or Node (bundled first: `bun build peer.ts --target=node
// --format=esm --packages=external --outdir <dir inside the repo, so @matrixai/quic resolves>`,
// then `node <dir>/peer.js …`), using the runtime's own transport adapter.
//
//   peer.ts server <certDir>                 prints {"port":N}, then serves until stdin closes
//   peer.ts client <certDir> <port> <checks>  runs each comma-separated check, one JSON line each
//
// Checks: echo[:N] (100 concurrent streams of 0 B, 1 B, 64 KiB, 4 MiB; with N only the first N of
// the 25 4 MiB streams are 4 MiB, the rest 64 KiB), perf, datagram, reset, close, wrong-ca,
// fingerprint, dead-port.
//
// Server behaviour per bidi stream: echo everything back, then FIN. A stream whose first bytes
// are "RESET <code>" is reset with that code instead; "CLOSE <code>" closes the connection.
// Datagrams are echoed.

import { defaultTransport } from "../../src/transport/mod.ts";
import type { BidiStream, Connection } from "../../src/transport/mod.ts";

const [mode, certDir, portArg, checks] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const { readFileSync } = await import("node:fs");
const read = (f: string) => readFileSync(`${certDir}/${f}`, "utf8");
const ALPN = "echostream/1";
const t = await defaultTransport();
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Deterministic bytes, so both sides know what to expect without sending hashes. */
function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function readAll(s: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of s) {
    parts.push(c);
    n += c.length;
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function serveStream(conn: Connection, s: BidiStream): Promise<void> {
  try {
    let first = true;
    for await (const chunk of s) {
      if (first) {
        first = false;
        const head = dec.decode(chunk.subarray(0, 16));
        const m = /^(RESET|CLOSE) (\d+)/.exec(head);
        if (m?.[1] === "RESET") return s.reset(Number(m[2]));
        if (m?.[1] === "CLOSE") return void conn.close(Number(m[2]), "closing as asked");
      }
      await s.write(chunk);
    }
    await s.end();
  } catch { /* the client went away */ }
}

if (mode === "server") {
  const listener = await t.listen(
    { host: "127.0.0.1", port: 0, alpn: ALPN, tls: { cert: read("cert.pem"), key: read("key.pem") } },
    (conn) => {
      conn.handle({
        bidi: (s) => void serveStream(conn, s),
        datagram: (d) => void conn.sendDatagram(d).catch(() => {}),
      });
    },
  );
  console.log(JSON.stringify({ port: listener.address.port, runtime: t.name }));
  // Serve until the parent closes stdin (or kills us).
  const { stdin } = await import("node:process");
  stdin.resume();
  stdin.on("end", async () => {
    await listener.close();
    (globalThis as unknown as { process: { exit(c: number): void } }).process.exit(0);
  });
} else {
  const port = Number(portArg);
  // A generous handshake timeout: under a loaded CI machine a slow stack (Node) must still get
  // to the TLS verdict rather than time out. The dead-port check uses 3 s on purpose.
  const connect = (tls: { ca?: string; fingerprint?: string; insecureSkipVerify?: boolean }, p = port, handshakeTimeoutMs = 15_000) =>
    t.connect({ host: "127.0.0.1", port: p, alpn: ALPN, tls, handshakeTimeoutMs });
  for (const [check, arg] of checks.split(",").map((c) => c.split(":"))) {
    const result: Record<string, unknown> = { runtime: t.name, check };
    try {
      if (check === "echo") {
        const conn = await connect({ ca: read("ca.pem") });
        const sizes = [0, 1, 64 * 1024, 4 * 1024 * 1024];
        const big = (result.big = arg === undefined ? 25 : Number(arg));
        const t0 = performance.now();
        const outcomes = await Promise.all(
          Array.from({ length: 100 }, async (_, i) => {
            const size = i % 4 === 3 && i >> 2 >= big ? sizes[2] : sizes[i % 4];
            const data = pattern(size, i + 1);
            const s = await conn.openBidi();
            const back = readAll(s);
            for (let at = 0; at < size; at += 256 * 1024) await s.write(data.subarray(at, at + 256 * 1024));
            await s.end();
            const got = await back;
            return got.length === size && got.every((b, k) => b === data[k]);
          }),
        );
        result.exact = outcomes.filter(Boolean).length;
        result.ms = Math.round(performance.now() - t0);
        result.alpn = conn.alpn;
        await conn.close();
      } else if (check === "perf") {
        // Sequential 64 B echoes on a new stream each (p50), then one 4 MiB echo.
        const conn = await connect({ ca: read("ca.pem") });
        const echo = async (data: Uint8Array) => {
          const s = await conn.openBidi();
          const back = readAll(s);
          for (let at = 0; at < data.length; at += 256 * 1024) await s.write(data.subarray(at, at + 256 * 1024));
          await s.end();
          if ((await back).length !== data.length) throw new Error("short echo");
        };
        const small = pattern(64, 1);
        const times: number[] = [];
        for (let i = 0; i < 120; i++) {
          const t0 = performance.now();
          await echo(small);
          if (i >= 20) times.push(performance.now() - t0);
        }
        result.p50Ms = Number(times.sort((a, b) => a - b)[times.length >> 1].toFixed(2));
        const t0 = performance.now();
        await echo(pattern(4 * 1024 * 1024, 2));
        result.mib4Ms = Math.round(performance.now() - t0);
        await conn.close();
      } else if (check === "datagram") {
        const conn = await connect({ ca: read("ca.pem") });
        const got = new Promise<Uint8Array>((r) => conn.handle({ datagram: r }));
        result.maxDatagramSize = conn.maxDatagramSize;
        if (conn.maxDatagramSize === 0) {
          // This end or the peer has no datagrams (Node's stack): sending must say so.
          try {
            await conn.sendDatagram(enc.encode("dgram"));
            result.unsupported = "sent";
          } catch (e) {
            result.unsupported = (e as { code?: string }).code;
          }
        } else {
          await conn.sendDatagram(enc.encode("dgram"));
          result.echo = dec.decode(
            await Promise.race([got, new Promise<Uint8Array>((r) => setTimeout(() => r(enc.encode("timeout")), 2000))]),
          );
          try {
            await conn.sendDatagram(new Uint8Array(conn.maxDatagramSize + 1));
          } catch (e) {
            result.tooLarge = (e as { code?: string }).code;
          }
        }
        await conn.close();
      } else if (check === "reset") {
        const conn = await connect({ ca: read("ca.pem") });
        const s = await conn.openBidi();
        await s.write(enc.encode("RESET 66"));
        try {
          await readAll(s);
          result.outcome = "clean end";
        } catch (e) {
          result.outcome = (e as { code?: string }).code;
          result.appCode = (e as { appCode?: number }).appCode;
        }
        await conn.close();
      } else if (check === "close") {
        const conn = await connect({ ca: read("ca.pem") });
        const s = await conn.openBidi();
        await s.write(enc.encode("CLOSE 4242"));
        result.closed = await conn.closed;
      } else if (check === "wrong-ca") {
        try {
          await connect({ ca: read("other-ca.pem") });
          result.outcome = "connected";
        } catch (e) {
          result.outcome = (e as { code?: string }).code;
          result.message = (e as Error).message;
        }
      } else if (check === "fingerprint") {
        const conn = await connect({ fingerprint: read("fingerprint.txt").trim() });
        const s = await conn.openBidi();
        await s.write(enc.encode("pinned"));
        await s.end();
        result.echo = dec.decode(await readAll(s));
        await conn.close();
        try {
          await connect({ fingerprint: "00".repeat(32) });
          result.wrongPin = "connected";
        } catch (e) {
          result.wrongPin = (e as { code?: string }).code;
        }
        // No CA, no pin: connects on Bun and Node; Deno's client always verifies, and says how to proceed.
        try {
          const c = await connect({ insecureSkipVerify: true });
          const s2 = await c.openBidi();
          await s2.write(enc.encode("insecure"));
          await s2.end();
          result.insecure = dec.decode(await readAll(s2));
          await c.close();
        } catch (e) {
          result.insecure = (e as { code?: string }).code;
          result.insecureMessage = (e as Error).message;
        }
      } else if (check === "dead-port") {
        const t0 = performance.now();
        try {
          await connect({ ca: read("ca.pem") }, Number(read("dead-port.txt")), 3000);
          result.outcome = "connected";
        } catch (e) {
          result.outcome = (e as { code?: string }).code;
        }
        result.ms = Math.round(performance.now() - t0);
      }
    } catch (e) {
      result.error = String((e as Error)?.stack ?? e);
    }
    console.log(JSON.stringify(result));
  }
  (globalThis as unknown as { process: { exit(c: number): void } }).process.exit(0);
}
