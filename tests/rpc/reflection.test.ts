// Server reflection: the reserved "$echostream.reflect" request, on by default with a development
// certificate and off with the application's own, answering what the server serves; access
// control applies to it like to any method; reserved names cannot be registered. Real QUIC on
// loopback (the cross-runtime scenario checks it between Bun and Deno processes).

import { afterEach, describe, expect, test } from "bun:test";
import { handler, listener, type StandardSchema, streamHandler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { REFLECTION_METHOD, type ServiceDescription } from "../../src/rpc/reflection.ts";
import { RpcServer, type RpcServerBuilder } from "../../src/rpc/server.ts";
import { RpcError } from "../../src/protocol/rpc_error.ts";
import { createDevCertificates } from "../../src/security/dev_cert.ts";

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c().catch(() => {})));
});

/** A Standard Schema for strings; `json` is its Standard JSON Schema converter (none if undefined). */
function stringSchema(json?: () => unknown): StandardSchema<string> {
  const std: Record<string, unknown> = {
    version: 1,
    vendor: "test",
    validate: (v: unknown) => (typeof v === "string" ? { value: v } : { issues: [{ message: "expected a string" }] }),
  };
  if (json) std.jsonSchema = { input: json, output: json };
  return { "~standard": std } as unknown as StandardSchema<string>;
}

// deno-lint-ignore no-explicit-any
function quiet(b: RpcServerBuilder<any, any> = RpcServer.builder()) {
  return b.bind("127.0.0.1:0").log(() => {}).onError(() => {});
}

// deno-lint-ignore no-explicit-any
async function serve(b: RpcServerBuilder<any, any>, ca?: string) {
  const server = b.build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: ca ?? server.trust.ca, onError: () => {} });
  closers.push(() => client.close(), () => server.close({ graceMs: 0 }));
  return { server, client };
}

const code = (p: Promise<unknown>) => p.then(() => "ok", (e) => (e instanceof RpcError ? e.code : String(e)));

describe("reflection", () => {
  test("a development-certificate server answers it: every kind, sorted, with descriptions, idempotency and input schemas", async () => {
    let seen: unknown;
    const b = quiet()
      .name("catalog")
      .handler(handler("user.get", (_ctx, id: string) => ({ id }), {
        description: "One user by id",
        idempotent: true,
        input: stringSchema((...a: unknown[]) => (seen = a[0], { type: "string", minLength: 1 })),
      }))
      .handler(handler("a.plain", () => 1))
      .handler(handler("no.json", (_ctx, s: string) => s, { input: stringSchema() }))
      .handler(handler("json.throws", (_ctx, s: string) => s, {
        input: stringSchema(() => {
          throw new Error("cannot express this type");
        }),
      }))
      .listener(listener("user.joined", () => {}, { description: "Someone joined" }))
      .streamHandler(streamHandler("audio", async () => {}, { description: "Opus frames, 20 ms" }))
      .streamHandler(streamHandler("bare", async () => {}));
    const { client } = await serve(b);
    const d = await client.request<ServiceDescription>(REFLECTION_METHOD);
    expect(d.server).toBe("catalog");
    expect(d.protocol).toBe(1);
    expect(d.handlers).toEqual([
      { name: "a.plain", idempotent: false },
      { name: "json.throws", idempotent: false },
      { name: "no.json", idempotent: false },
      { name: "user.get", description: "One user by id", idempotent: true, inputSchema: { type: "string", minLength: 1 } },
    ]);
    expect(seen).toEqual({ target: "draft-2020-12" });
    expect(d.listeners).toEqual([{ name: "user.joined", description: "Someone joined" }]);
    expect(d.streams).toEqual([{ name: "audio", description: "Opus frames, 20 ms" }, { name: "bare" }]);
    // The answer is what the server serves; the methods it names work.
    expect(await client.request("user.get", "u1")).toEqual({ id: "u1" });
    // A client's own handlers follow the same rule: reserved names are refused.
    expect(() => client.handle(handler("$echostream.y", () => 1))).toThrow(/reserved/);
  });

  test("decorated services carry descriptions too", async () => {
    class Svc {
      @handler("svc.ping", { description: "Answers pong", idempotent: true })
      ping() {
        return "pong";
      }
      @streamHandler("svc.feed", { description: "A feed" })
      async feed() {}
    }
    const { client } = await serve(quiet().service(new Svc()));
    const d = await client.request<ServiceDescription>(REFLECTION_METHOD);
    expect(d.handlers).toEqual([{ name: "svc.ping", description: "Answers pong", idempotent: true }]);
    expect(d.streams).toEqual([{ name: "svc.feed", description: "A feed" }]);
  });

  test("off by default with the application's own certificate; .reflection() turns it on, .reflection(false) off", async () => {
    const certs = await createDevCertificates();
    const tls = { cert: certs.cert, key: certs.key };
    const mk = () => quiet().tls(tls).handler(handler("x", () => 1));
    const off = await serve(mk(), certs.ca);
    expect(await code(off.client.request(REFLECTION_METHOD))).toBe("NOT_FOUND");
    expect(await off.client.request("x")).toBe(1);
    const on = await serve(mk().reflection(), certs.ca);
    expect((await on.client.request<ServiceDescription>(REFLECTION_METHOD)).handlers.map((h) => h.name)).toEqual(["x"]);
    const devOff = await serve(quiet().reflection(false).handler(handler("x", () => 1)));
    expect(await code(devOff.client.request(REFLECTION_METHOD))).toBe("NOT_FOUND");
  });

  test("access control applies to it like any method", async () => {
    const denied = await serve(quiet().accessControl({ permissions: { request: ["user.>"] } }).handler(handler("user.get", () => 1)));
    expect(await code(denied.client.request(REFLECTION_METHOD))).toBe("PERMISSION_DENIED");
    expect(await denied.client.request("user.get")).toBe(1);
    const allowed = await serve(
      quiet().accessControl({ permissions: { request: ["user.>", REFLECTION_METHOD] } }).handler(handler("user.get", () => 1)),
    );
    expect((await allowed.client.request<ServiceDescription>(REFLECTION_METHOD)).handlers.map((h) => h.name)).toEqual(["user.get"]);
  });

  test("names under $echostream. are reserved; bad arguments are TypeErrors", () => {
    expect(() => RpcServer.builder().handler(handler(REFLECTION_METHOD, () => 1))).toThrow(/reserved/);
    expect(() => RpcServer.builder().listener(listener("$echostream.x", () => {}))).toThrow(/reserved/);
    // deno-lint-ignore no-explicit-any
    expect(() => RpcServer.builder().reflection("yes" as any)).toThrow(TypeError);
  });
});
