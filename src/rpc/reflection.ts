/**
 * Server reflection: a reserved request, {@link REFLECTION_METHOD}, answered with what the server
 * serves (handlers, listeners and stream handlers, each with its description, whether it is
 * idempotent, and an input JSON Schema where the validator can give one). Opt-in per server with
 * `RpcServerBuilder.reflection()`: on by default for a development certificate, off otherwise.
 * It is an ordinary handler to the rest of the server, so access control, rate limits and
 * middleware apply to it like to any method.
 *
 * @example Listing what a server serves
 * ```ts
 * import { handler, REFLECTION_METHOD, RpcClient, RpcServer, type ServiceDescription } from "@echostream/core";
 * const server = RpcServer.builder()
 *   .handler(handler("user.get", (_ctx, id: string) => ({ id }), { description: "One user by id", idempotent: true }))
 *   .build();
 * await server.start();
 * const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
 * const api = await client.request<ServiceDescription>(REFLECTION_METHOD);
 * console.log(api.handlers.map((h) => h.name)); // ["user.get"]
 * await client.close();
 * await server.close();
 * ```
 *
 * @module
 */

import type { Definition, StandardSchema } from "./definitions.ts";
import type { Registry } from "./registry.ts";
import { PROTOCOL_VERSION } from "../protocol/version.ts";

/**
 * The reserved request name that answers a {@link ServiceDescription}. Names starting with
 * `$echostream.` are reserved: registering one throws.
 */
export const REFLECTION_METHOD = "$echostream.reflect";
/** The prefix of reserved names. */
export const RESERVED_PREFIX = "$echostream.";

/** One handler, listener or stream handler, as reflection describes it. */
export interface MethodDescription {
  /** The method name, topic or stream name. */
  name: string;
  /** What it does, from the definition's `description` option. */
  description?: string;
  /** Handlers only: safe to run twice (may run on 0-RTT early data). */
  idempotent?: boolean;
  /**
   * The input's JSON Schema (draft 2020-12), when its validator implements Standard JSON Schema
   * (`~standard.jsonSchema.input`) and can express it.
   */
  inputSchema?: Record<string, unknown>;
}

/** The answer to {@link REFLECTION_METHOD}: what a server serves, each list sorted by name. */
export interface ServiceDescription {
  /** The server's name (`RpcServerBuilder.name`). */
  server: string;
  /** The EchoStream protocol version it speaks. */
  protocol: number;
  /** Request handlers, the reflection method itself excluded. */
  handlers: MethodDescription[];
  /** Event listeners. */
  listeners: MethodDescription[];
  /** Stream handlers. */
  streams: MethodDescription[];
}

/** A validator's input JSON Schema through Standard JSON Schema, or undefined when it has none or fails. */
function inputSchemaOf(schema: StandardSchema | undefined): Record<string, unknown> | undefined {
  const conv = (schema?.["~standard"] as { jsonSchema?: { input?: unknown } } | undefined)?.jsonSchema;
  if (!conv || typeof conv.input !== "function") return undefined;
  try {
    const out = (conv.input as (o: { target: string }) => unknown).call(conv, { target: "draft-2020-12" });
    // Only a plain JSON object travels; anything else (or a throw: a type JSON Schema cannot express) is left out.
    return out !== null && typeof out === "object" && !Array.isArray(out) ? JSON.parse(JSON.stringify(out)) : undefined;
  } catch {
    return undefined;
  }
}

function describeOne(def: Definition): MethodDescription {
  const out: MethodDescription = { name: def.name };
  const o = def.options as { description?: unknown; idempotent?: unknown; input?: StandardSchema };
  if (typeof o.description === "string") out.description = o.description;
  if (def.kind === "handler") out.idempotent = o.idempotent === true;
  const schema = inputSchemaOf(o.input);
  if (schema) out.inputSchema = schema;
  return out;
}

function byName(a: MethodDescription, b: MethodDescription): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Describes what `registry` serves. The server computes it at the first reflection request and
 * keeps it: definitions are fixed once the server is built.
 */
export function describeRegistry(registry: Registry, server: string): ServiceDescription {
  const list = (m: Map<string, Definition>) => [...m.values()].filter((d) => d.name !== REFLECTION_METHOD).map(describeOne).sort(byName);
  return {
    server,
    protocol: PROTOCOL_VERSION,
    handlers: list(registry.handlers as Map<string, Definition>),
    listeners: list(registry.listeners as Map<string, Definition>),
    streams: list(registry.streams as Map<string, Definition>),
  };
}
