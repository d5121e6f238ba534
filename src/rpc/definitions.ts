/**
 * Declaring what a peer serves: `handler`, `listener` and `streamHandler`, each usable as a
 * function (`handler("user.get", fn)`) or as a standard (TC39) method decorator
 * (`@handler("user.get")`) on a class registered with `.service(instance)`.
 *
 * @module
 */

import type { Context } from "./context.ts";
import type { EchoStream } from "../stream/echo_stream.ts";
import type { RpcApi, UntypedApi } from "./api.ts";

/**
 * A Standard Schema validator (zod, valibot, arktype, …): only the `~standard.validate` entry
 * point is used at run time, so no validator library is a dependency. `T` is what validation
 * yields (the handler's input); `In` what it accepts (what a typed client must send), read from
 * the schema's `types` when it declares them.
 */
export interface StandardSchema<T = unknown, In = T> {
  /** The Standard Schema v1 interface (https://standardschema.dev). */
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    /** The schema's input and output types (type-level only; most libraries declare them). */
    readonly types?: { readonly input: In; readonly output: T } | undefined;
    validate(
      value: unknown,
    ):
      | { value: T; issues?: undefined }
      | { issues: ReadonlyArray<{ message: string; path?: ReadonlyArray<unknown> }> }
      | Promise<
        | { value: T; issues?: undefined }
        | { issues: ReadonlyArray<{ message: string; path?: ReadonlyArray<unknown> }> }
      >;
  };
}

/** Options for a handler. `I` is the handler's input, `W` what callers send (they differ when the schema transforms). */
export interface HandlerOptions<I = unknown, W = I> {
  /** Validates (and may transform) the input; bad input answers `INVALID_ARGUMENT`. */
  input?: StandardSchema<I, W>;
  /**
   * Safe to run twice. On a server with `.earlyData()`, only idempotent handlers may run on 0-RTT
   * early data (which an attacker can replay); a request for any other handler that arrives early
   * waits until the TLS handshake has completed (docs/SECURITY.md, "0-RTT replay safety").
   * @default {false}
   */
  idempotent?: boolean;
  /** What the handler does, for reflection (`REFLECTION_METHOD`) and tools such as the CLI. */
  description?: string;
}

/**
 * A request handler: returns the response. `P` is the API of the peer it serves (what
 * `ctx.peer` may call); annotate the context as `Context<ClientApi>` to type it.
 */
// deno-lint-ignore no-explicit-any
export type HandlerFn<I = any, O = unknown, P extends RpcApi = UntypedApi> = (ctx: Context<P>, input: I) => O | Promise<O>;
/** An event listener. */
// deno-lint-ignore no-explicit-any
export type ListenerFn<I = any, P extends RpcApi = UntypedApi> = (ctx: Context<P>, payload: I) => void | Promise<void>;
/** A stream handler: runs for the stream's life. */
export type StreamHandlerFn<P extends RpcApi = UntypedApi> = (ctx: Context<P>, stream: EchoStream) => void | Promise<void>;

/**
 * A registered request handler. Its type keeps everything a typed client needs: the name `N` as
 * a literal, the input `I` the handler receives, what callers send `W` (the schema's input type;
 * `I` without a transforming schema) and the output `O`. `P` is the API of the peer it serves.
 */
// deno-lint-ignore no-explicit-any
export interface HandlerDefinition<I = unknown, O = unknown, N extends string = string, P extends RpcApi = any, W = I> {
  /** Which kind of definition. */
  readonly kind: "handler";
  /** The method name callers use. */
  readonly name: N;
  /** The handler. */
  readonly fn: HandlerFn<I, O, P>;
  /** Validation and idempotency. */
  readonly options: HandlerOptions<I, W>;
}
/**
 * A registered event listener: topic `N`, payload `I` as the listener receives it, `W` as
 * emitters send it (the schema's input type; `I` without a transforming schema), serving a peer
 * with API `P`.
 */
// deno-lint-ignore no-explicit-any
export interface ListenerDefinition<I = unknown, N extends string = string, P extends RpcApi = any, W = I> {
  /** Which kind of definition. */
  readonly kind: "listener";
  /** The topic. */
  readonly name: N;
  /** The listener. */
  readonly fn: ListenerFn<I, P>;
  /** Validation. */
  readonly options: ListenerOptions<I, W>;
}
/** Options for a listener. */
export interface ListenerOptions<I = unknown, W = I> {
  /** Validates (and may transform) the payload; bad events are counted and dropped. */
  input?: StandardSchema<I, W>;
  /** What the event means, for reflection (`REFLECTION_METHOD`). */
  description?: string;
}
/** Options for a stream handler. */
export interface StreamHandlerOptions {
  /** What the stream carries, for reflection (`REFLECTION_METHOD`). */
  description?: string;
}
/** A registered stream handler: stream name `N`, serving a peer with API `P`. */
// deno-lint-ignore no-explicit-any
export interface StreamHandlerDefinition<N extends string = string, P extends RpcApi = any> {
  /** Which kind of definition. */
  readonly kind: "stream";
  /** The stream name. */
  readonly name: N;
  /** The stream handler. */
  readonly fn: StreamHandlerFn<P>;
  /** Its description. */
  readonly options: StreamHandlerOptions;
}
/** Any definition. */
// deno-lint-ignore no-explicit-any
export type Definition = HandlerDefinition<any, any, string, any, any> | ListenerDefinition<any, string, any, any> | StreamHandlerDefinition<string, any>;

// deno-lint-ignore no-explicit-any
type AnyFn = (...args: any[]) => any;
type Marked = { kind: Definition["kind"]; name: string; options: Record<string, unknown> };

/** Methods marked by a decorator, found again by `serviceDefinitions`. */
const marks = new WeakMap<AnyFn, Marked>();

function checkName(kind: string, name: unknown): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError(`${kind} name must be a non-empty string, received ${typeof name === "string" ? '""' : typeof name}`);
  }
  return name;
}

/** A decorator usable both as TC39 (`(value, context)`) and legacy TypeScript (`(target, key, desc)`). */
function decorator(mark: Marked): (value: unknown, context: unknown, desc?: PropertyDescriptor) => void {
  return (value, context, desc) => {
    const fn = (desc?.value ?? value) as AnyFn;
    if (typeof fn !== "function") throw new TypeError(`@${mark.kind === "stream" ? "streamHandler" : mark.kind}("${mark.name}") must decorate a method`);
    if (typeof context === "object" && context !== null && (context as { kind?: string }).kind !== "method") {
      throw new TypeError(`@${mark.kind}("${mark.name}") must decorate a method`);
    }
    marks.set(fn, mark);
  };
}

/**
 * Declares a request handler, or (with no function) returns a method decorator.
 *
 * @example Function style
 * ```ts
 * import { handler } from "@echostream/core";
 * export const play = handler("audio.play", async (_ctx, file: string) => ({ playing: file }));
 * ```
 *
 * @example Decorator style
 * ```ts
 * import { handler, RpcServer } from "@echostream/core";
 * class Audio {
 *   @handler("audio.play")
 *   play(_ctx: unknown, file: string) { return { playing: file }; }
 * }
 * const server = RpcServer.builder().service(new Audio()).build();
 * await server.start();
 * await server.close();
 * ```
 *
 * @param name The method name callers use.
 * @param fn The handler; omit it to get a decorator.
 * @param options Input validation and idempotency.
 * @returns A definition to register, or a decorator.
 */
// deno-lint-ignore no-explicit-any
export function handler<I = any, O = unknown, N extends string = string, P extends RpcApi = UntypedApi, W = I>(
  name: N,
  fn: HandlerFn<I, O, P>,
  options?: HandlerOptions<I, W>,
): HandlerDefinition<I, O, N, P, W>;
/**
 * Returns a method decorator declaring a request handler (`@handler("audio.play")`) on a class
 * registered with `.service(instance)`.
 *
 * @param name The method name callers use.
 * @param options Input validation and idempotency.
 * @returns The decorator.
 */
export function handler(name: string, options?: HandlerOptions): (value: unknown, context: unknown) => void;
export function handler(name: string, fnOrOptions?: unknown, options?: HandlerOptions): unknown {
  checkName("handler", name);
  if (typeof fnOrOptions === "function") {
    return Object.freeze({ kind: "handler", name, fn: fnOrOptions as HandlerFn, options: { ...options } });
  }
  return decorator({ kind: "handler", name, options: { ...(fnOrOptions as HandlerOptions) } });
}

/**
 * Declares an event listener, or (with no function) returns a method decorator.
 *
 * @example Listening to an event
 * ```ts
 * import { listener } from "@echostream/core";
 * export const onStopped = listener("audio.stopped", (_ctx, _payload: null) => console.log("stopped"));
 * ```
 *
 * @param name The topic.
 * @param fn The listener; omit it to get a decorator.
 * @param options Input validation (bad events are counted and dropped).
 * @returns A definition to register, or a decorator.
 */
// deno-lint-ignore no-explicit-any
export function listener<I = any, N extends string = string, P extends RpcApi = UntypedApi, W = I>(
  name: N,
  fn: ListenerFn<I, P>,
  options?: ListenerOptions<I, W>,
): ListenerDefinition<I, N, P, W>;
/**
 * Returns a method decorator declaring an event listener (`@listener("audio.stopped")`) on a
 * class registered with `.service(instance)`.
 *
 * @param name The topic.
 * @param options Input validation (bad events are counted and dropped).
 * @returns The decorator.
 */
export function listener(name: string, options?: ListenerOptions): (value: unknown, context: unknown) => void;
export function listener(name: string, fnOrOptions?: unknown, options?: ListenerOptions): unknown {
  checkName("listener", name);
  if (typeof fnOrOptions === "function") {
    return Object.freeze({ kind: "listener", name, fn: fnOrOptions as ListenerFn, options: { ...options } });
  }
  return decorator({ kind: "listener", name, options: { ...(fnOrOptions as object) } });
}

/**
 * Declares a stream handler, or (with no function) returns a method decorator.
 *
 * @example Receiving a stream of frames
 * ```ts
 * import { streamHandler } from "@echostream/core";
 * export const onAudio = streamHandler("audio.stream", async (_ctx, stream) => {
 *   for await (const frame of stream) console.log(frame.length);
 * });
 * ```
 *
 * @param name The stream name.
 * @param fn The handler; omit it to get a decorator.
 * @param options Its description.
 * @returns A definition to register, or a decorator.
 */
export function streamHandler<N extends string = string, P extends RpcApi = UntypedApi>(
  name: N,
  fn: StreamHandlerFn<P>,
  options?: StreamHandlerOptions,
): StreamHandlerDefinition<N, P>;
/**
 * Returns a method decorator declaring a stream handler (`@streamHandler("audio.stream")`) on a
 * class registered with `.service(instance)`.
 *
 * @param name The stream name.
 * @param options Its description.
 * @returns The decorator.
 */
export function streamHandler(name: string, options?: StreamHandlerOptions): (value: unknown, context: unknown) => void;
export function streamHandler(name: string, fnOrOptions?: unknown, options?: StreamHandlerOptions): unknown {
  checkName("streamHandler", name);
  if (typeof fnOrOptions === "function") return Object.freeze({ kind: "stream", name, fn: fnOrOptions as StreamHandlerFn, options: { ...options } });
  return decorator({ kind: "stream", name, options: { ...(fnOrOptions as StreamHandlerOptions) } });
}

/**
 * The definitions of every decorated method of `instance` (its class and base classes), bound
 * to the instance.
 *
 * @throws {TypeError} When the instance has no decorated method.
 */
export function serviceDefinitions(instance: object): Definition[] {
  const out: Definition[] = [];
  const seen = new Set<string>();
  for (let proto = Object.getPrototypeOf(instance); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === "constructor" || seen.has(key)) continue;
      const fn = Object.getOwnPropertyDescriptor(proto, key)?.value;
      const mark = typeof fn === "function" ? marks.get(fn) : undefined;
      if (!mark) continue;
      seen.add(key);
      const bound = (fn as AnyFn).bind(instance);
      out.push(Object.freeze({ kind: mark.kind, name: mark.name, fn: bound, options: mark.options }) as Definition);
    }
  }
  if (out.length === 0) {
    throw new TypeError(`service(): ${instance.constructor?.name ?? "the object"} has no @handler, @listener or @streamHandler method`);
  }
  return out;
}

/** Checks a value is a definition made by `handler`, `listener` or `streamHandler`. */
export function assertDefinition(def: unknown): asserts def is Definition {
  const d = def as Definition;
  if (!d || (d.kind !== "handler" && d.kind !== "listener" && d.kind !== "stream") || typeof d.fn !== "function") {
    throw new TypeError("expected a definition made by handler(), listener() or streamHandler()");
  }
}
