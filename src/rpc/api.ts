/**
 * Typed end to end: the types that let a client know what a server serves (and a server what
 * its clients serve) at compile time, with no code generation and no runtime cost.
 *
 * An API is a type with three maps: `requests` (name → `{ input, output }`), `events`
 * (name → payload) and `streams` (name → `true`). `ApiOf` derives one from a server, a builder,
 * or definitions; `RpcClient.connect<typeof server>(…)` (or `<Api>`) then types `request`, `emit`
 * and `createStream`, and a handler whose context is annotated `Context<ClientApi>` gets a typed
 * `ctx.peer`. Without a type argument everything stays untyped (`UntypedApi`): any name, any
 * payload, and `request<T>()` casts its result as before.
 *
 * @example Sharing a server's API with its clients
 * ```ts
 * import { ApiOf, handler, listener, RpcClient, RpcServer } from "@echostream/core";
 *
 * const server = RpcServer.builder()
 *   .handler(handler("math.add", (_ctx, [a, b]: [number, number]) => a + b))
 *   .listener(listener("audio.stopped", (_ctx, _payload: null) => {}))
 *   .build();
 * export type MathApi = ApiOf<typeof server>; // import type { MathApi } in the client's code
 *
 * await server.start();
 * const client = await RpcClient.connect<MathApi>(server.address, { ca: server.trust.ca });
 * const sum: number = await client.request("math.add", [1, 2]); // typed: no cast
 * await client.emit("audio.stopped", null);
 * await client.close();
 * await server.close();
 * ```
 *
 * @module
 */

import type { HandlerDefinition, ListenerDefinition, StreamHandlerDefinition } from "./definitions.ts";
import type { RpcServer, RpcServerBuilder } from "./server.ts";

/**
 * The shape of an API: what one side serves, as types. Usually derived with {@link ApiOf};
 * it can also be written by hand (an interface extending `RpcApi`), e.g. for a peer written in
 * another language.
 */
export interface RpcApi {
  /** Request handlers by name: what the caller sends (`input`) and gets back (`output`). */
  readonly requests: { readonly [name: string]: { readonly input: unknown; readonly output: unknown } };
  /** Event listeners by topic: the payload type. */
  readonly events: { readonly [topic: string]: unknown };
  /** Stream handlers by name (the value is unused: streams carry bytes). */
  readonly streams: { readonly [name: string]: unknown };
}

/**
 * The API of a peer nothing is known about: any name, any input; a request's result is what
 * `request<T>()` says. The default everywhere, so untyped code works unchanged. It is `any`
 * rather than an index-signature type so that a typed `Peer<Api>` (or `Context<Api>`) is still
 * usable wherever a plain `Peer` (or `Context`) is expected.
 */
// deno-lint-ignore no-explicit-any
export type UntypedApi = any;

/**
 * The API a union of definitions serves (what `RpcServerBuilder` accumulates). Definitions made
 * without a literal name (decorated services) add index signatures: those names stay untyped
 * while the literal ones keep their types.
 */
export type DefinitionsApi<D> = {
  readonly requests: {
    // deno-lint-ignore no-explicit-any
    readonly [K in D as K extends HandlerDefinition<any, any, infer N, any, any> ? N : never]: K extends HandlerDefinition<any, infer O, any, any, infer W> ? { readonly input: W; readonly output: O }
      : never;
  };
  readonly events: {
    // deno-lint-ignore no-explicit-any
    readonly [K in D as K extends ListenerDefinition<any, infer N, any, any> ? N : never]: K extends ListenerDefinition<any, any, any, infer W> ? W : never;
  };
  readonly streams: {
    // deno-lint-ignore no-explicit-any
    readonly [K in D as K extends StreamHandlerDefinition<infer N, any> ? N : never]: true;
  };
};

/**
 * The API of a server, a server builder, definitions (one, an array, or an object whose values
 * are definitions) or an API type itself (returned unchanged).
 *
 * @example
 * ```ts
 * import { type ApiOf, handler } from "@echostream/core";
 * const defs = [handler("user.get", (_ctx, id: number) => ({ id, name: "ada" }))];
 * type UserApi = ApiOf<typeof defs>;
 * const output: UserApi["requests"]["user.get"]["output"] = { id: 1, name: "ada" };
 * ```
 */
export type ApiOf<T> = 0 extends 1 & T ? UntypedApi
  // deno-lint-ignore no-explicit-any
  : [T] extends [RpcServer<infer A, any>] ? A
  // deno-lint-ignore no-explicit-any
  : [T] extends [RpcServerBuilder<infer D, any>] ? DefinitionsApi<D>
  : [T] extends [RpcApi] ? T
  : [T] extends [ReadonlyArray<infer E>] ? DefinitionsApi<E>
  : [T] extends [AnyDefinition] ? DefinitionsApi<T>
  : [T] extends [{ readonly [key: string]: infer E }] ? DefinitionsApi<E>
  : never;

/** Any definition, whatever its types (what `ApiOf` accepts as a single definition). */
// deno-lint-ignore no-explicit-any
export type AnyDefinition = HandlerDefinition<any, any, string, any, any> | ListenerDefinition<any, string, any, any> | StreamHandlerDefinition<string, any>;

/** The method names an API serves. */
export type RequestName<A extends RpcApi> = keyof A["requests"] & string;
/** What a request to method `N` of `A` sends. */
export type RequestInput<A extends RpcApi, N extends string> = N extends keyof A["requests"] ? A["requests"][N]["input"] : never;
/**
 * What a request to method `N` of `A` resolves to; for an untyped API (`UntypedApi`, or an
 * index signature), `T`: the caller's `request<T>()`, `unknown` by default.
 */
export type RequestOutput<A extends RpcApi, N extends string, T = unknown> = 0 extends 1 & A ? T
  : string extends N ? T
  : N extends keyof A["requests"] ? A["requests"][N]["output"]
  : T;
/** The arguments after the method name: the input (optional when it may be undefined) and options. */
export type RequestArgs<A extends RpcApi, N extends string, O> = undefined extends RequestInput<A, N> ? [input?: RequestInput<A, N>, options?: O]
  : [input: RequestInput<A, N>, options?: O];

/** The event topics an API listens to. */
export type EventName<A extends RpcApi> = keyof A["events"] & string;
/** The payload of event `N` of `A`. */
export type EventPayload<A extends RpcApi, N extends string> = N extends keyof A["events"] ? A["events"][N] : never;
/** The arguments after the topic: the payload (optional when it may be undefined) and options. */
export type EmitArgs<A extends RpcApi, N extends string, O> = undefined extends EventPayload<A, N> ? [payload?: EventPayload<A, N>, options?: O]
  : [payload: EventPayload<A, N>, options?: O];

/** The stream names an API serves. */
export type StreamName<A extends RpcApi> = keyof A["streams"] & string;
