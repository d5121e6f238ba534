// Structured logs (issue 14 §1) over real QUIC (Bun): with LogTape unconfigured nothing is
// printed except the development-certificate notice; configured, the operator sees connections
// accepted, refused and closed, handshake and auth failures, handler errors with their stack,
// policy denials and rate limits (debug), abuse closes, and nothing per request at info level.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { handler, RpcClient, RpcServer } from "../../mod.ts";
import { createDevCertificates } from "../../src/security/dev_cert.ts";
import { waitFor } from "../support/wait.ts";

type Method = "log" | "info" | "warn" | "error" | "debug";
/** Runs `fn` with console.* captured; returns what was printed. */
async function capturingConsole(fn: () => Promise<void>): Promise<string[]> {
  const printed: string[] = [];
  const saved = new Map<Method, (...a: unknown[]) => void>();
  for (const m of ["log", "info", "warn", "error", "debug"] as Method[]) {
    saved.set(m, console[m]);
    console[m] = (...a: unknown[]) => void printed.push(`${m}: ${a.map(String).join(" ")}`);
  }
  try {
    await fn();
  } finally {
    for (const [m, f] of saved) console[m] = f;
  }
  return printed;
}

describe("LogTape not configured", () => {
  test("a failing handler, a refused client and closes print nothing", async () => {
    const certs = await createDevCertificates();
    const printed = await capturingConsole(async () => {
      const server = RpcServer.builder()
        .tls({ cert: certs.cert, key: certs.key })
        .authenticate(({ auth }) => {
          if (auth !== "ok") throw new Error("bad token");
          return "user";
        })
        .handler(handler("boom", () => {
          throw new Error("secret detail");
        }))
        .build();
      await server.start();
      const client = await RpcClient.connect(server.address, { ca: certs.ca, auth: "ok" });
      await expect(client.request("boom")).rejects.toMatchObject({ code: "INTERNAL" });
      await expect(RpcClient.connect(server.address, { ca: certs.ca, auth: "bad" })).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
      await client.close();
      await server.close();
    });
    expect(printed).toEqual([]);
  });

  test("a development certificate is still announced, once, with how clients trust it", async () => {
    const printed = await capturingConsole(async () => {
      const server = RpcServer.builder().build();
      await server.start();
      await server.close();
    });
    expect(printed.length).toBe(1);
    expect(printed[0]).toMatch(/^warn: echostream: no TLS certificate given; serving a development certificate/);
    expect(printed[0]).toMatch(/pin its fingerprint/);
  });
});

describe("LogTape configured for [\"echostream\"]", () => {
  const records: LogRecord[] = [];
  beforeAll(async () => {
    await configure({
      reset: true,
      sinks: { memory: (r) => void records.push(r) },
      loggers: [
        { category: ["echostream"], lowestLevel: "debug", sinks: ["memory"] },
        { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
      ],
    });
  });
  afterAll(async () => {
    await reset();
  });

  const find = (category: string, pattern: RegExp) =>
    records.filter((r) => r.category[1] === category && pattern.test(r.rawMessage as string));
  const render = (r: LogRecord) => r.message.map(String).join("");

  test("connections: accepted, handler error with its stack, denials, auth refusal, closed", async () => {
    const certs = await createDevCertificates();
    const server = RpcServer.builder()
      .tls({ cert: certs.cert, key: certs.key })
      .authenticate(({ auth }) => {
        if (auth !== "ok") throw new Error("bad token");
        return "user-1";
      })
      .accessControl({ permissions: { request: { deny: ["admin.>"] } } })
      .rateLimit({ key: "connection", names: ["limited"], perSecond: 1, burst: 1 })
      .handler(handler("boom", () => {
        throw new Error("secret detail");
      }))
      .handler(handler("admin.wipe", () => "wiped"))
      .handler(handler("limited", () => "ok"))
      .handler(handler("ping", () => "pong"))
      .build();
    await server.start();
    const client = await RpcClient.connect(server.address, { ca: certs.ca, auth: "ok", name: "probe" });
    await waitFor(() => find("rpc", /accepted/).length === 1, "the accepted log");
    const accepted = find("rpc", /accepted/)[0];
    expect(accepted.level).toBe("info");
    expect(accepted.properties).toMatchObject({ peer: "probe", principal: "user-1" });
    expect(String(accepted.properties.remote)).toMatch(/^127\.0\.0\.1:\d+$/);

    await expect(client.request("boom")).rejects.toMatchObject({ code: "INTERNAL" });
    const failed = find("rpc", /^error in \{where\}/);
    expect(failed.length).toBe(1);
    expect(failed[0].level).toBe("error");
    expect(failed[0].properties.where).toBe("boom");
    expect((failed[0].properties.error as Error).message).toBe("secret detail");
    expect((failed[0].properties.error as Error).stack).toMatch(/logs\.test\.ts/);

    await expect(client.request("admin.wipe")).rejects.toMatchObject({ code: "PERMISSION_DENIED" });
    const denied = find("security", /^denied/);
    expect(denied.map((r) => [r.level, r.properties.kind, r.properties.name])).toEqual([["debug", "request", "admin.wipe"]]);

    await client.request("limited");
    await expect(client.request("limited")).rejects.toMatchObject({ code: "RESOURCE_EXHAUSTED" });
    const limited = find("security", /^rate limited/);
    expect(limited.length).toBe(1);
    expect(limited[0].level).toBe("debug");
    expect(limited[0].properties.retryAfterMs).toBeGreaterThan(0);

    // Nothing per request at info level or above: 50 good calls add no such record.
    const loud = () => records.filter((r) => r.level !== "debug" && r.level !== "trace").length;
    const before = loud();
    for (let i = 0; i < 50; i++) await client.request("ping");
    expect(loud()).toBe(before);

    await expect(RpcClient.connect(server.address, { ca: certs.ca, auth: "bad" })).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
    const refused = find("security", /^authentication refused/);
    expect(refused.length).toBe(1);
    expect(refused[0].level).toBe("info");
    expect(render(refused[0])).toMatch(/authentication failed/);
    await waitFor(() => find("rpc", /^handshake with/).length === 1, "the handshake-failed log");
    expect(find("rpc", /^handshake with/)[0].properties.code).toBe("UNAUTHENTICATED");

    await client.close();
    await waitFor(() => find("rpc", /closed \{by\}/).length === 1, "the closed log");
    const closed = find("rpc", /closed \{by\}/)[0];
    expect(closed.properties).toMatchObject({ peer: "probe", by: "by the peer", code: "0x0" });
    await server.close();
  });

  test("admission refusals say why, with the close code", async () => {
    const server = RpcServer.builder().limits({ maxConnectionsPerAddress: 1 }).log(() => {}).build();
    await server.start();
    const first = await RpcClient.connect(server.address, { ca: server.trust.ca });
    await expect(RpcClient.connect(server.address, { ca: server.trust.ca })).rejects.toMatchObject({ code: "RESOURCE_EXHAUSTED" });
    const refused = find("rpc", /^refused a connection/);
    expect(refused.length).toBe(1);
    expect(refused[0].properties.why).toBe("addressLimit");
    expect(render(refused[0])).toMatch(/too many connections from 127\.0\.0\.1 \(limit 1\)/);
    await first.close();
    await server.close();
  });

  test("the development-certificate notice goes to the log instead of the console", async () => {
    const printed = await capturingConsole(async () => {
      const server = RpcServer.builder().build();
      await server.start();
      await server.close();
    });
    expect(printed).toEqual([]);
    const notice = find("transport", /\{notice\}/);
    expect(notice.length).toBeGreaterThanOrEqual(1);
    expect(notice.at(-1)!.level).toBe("warning");
    expect(String(notice.at(-1)!.properties.notice)).toMatch(/development certificate/);
  });
});
