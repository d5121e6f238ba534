/**
 * What a peer serves: handlers, listeners and stream handlers by name, and the middleware chain
 * around them.
 *
 * @module
 */

import type { Context } from "./context.ts";
import { assertDefinition, type Definition, type HandlerDefinition, type ListenerDefinition, type StreamHandlerDefinition } from "./definitions.ts";
import { RESERVED_PREFIX } from "./reflection.ts";

/**
 * Middleware runs around every request, event and stream open (`ctx.kind` tells which). Call
 * `next()` to go on (its result is the handler's); throw an RpcError to refuse.
 *
 * @example Logging every call
 * ```ts
 * import type { Middleware } from "@echostream/core";
 * export const log: Middleware = async (ctx, next) => {
 *   const t0 = performance.now();
 *   try { return await next(); } finally { console.log(ctx.kind, ctx.name, performance.now() - t0); }
 * };
 * ```
 */
export type Middleware = (ctx: Context, next: () => Promise<unknown>) => Promise<unknown>;

/** Definitions by kind and name. Names come off the wire, so lookups use Maps, never objects. */
export class Registry {
  readonly handlers: Map<string, HandlerDefinition<unknown, unknown>> = new Map();
  readonly listeners: Map<string, ListenerDefinition<unknown>> = new Map();
  readonly streams: Map<string, StreamHandlerDefinition> = new Map();
  readonly middleware: Middleware[] = [];

  /**
   * Adds a definition.
   * @param reserved Allows a name under the reserved `$echostream.` prefix (the server's own).
   * @throws {TypeError} When it is not a definition, its name is taken for that kind, or reserved.
   */
  add(def: Definition, reserved = false): void {
    assertDefinition(def);
    if (!reserved && def.name.startsWith(RESERVED_PREFIX)) throw new TypeError(`"${def.name}": names starting with "${RESERVED_PREFIX}" are reserved`);
    const map = (def.kind === "handler" ? this.handlers : def.kind === "listener" ? this.listeners : this.streams) as Map<string, Definition>;
    if (map.has(def.name)) throw new TypeError(`a ${def.kind} named "${def.name}" is already registered`);
    map.set(def.name, def);
  }

  /** Adds middleware (runs in the order added). */
  use(mw: Middleware): void {
    if (typeof mw !== "function") throw new TypeError(`middleware must be a function, received ${typeof mw}`);
    this.middleware.push(mw);
  }

  /** Runs the middleware chain around `final`. */
  run(ctx: Context, final: () => Promise<unknown>): Promise<unknown> {
    const mw = this.middleware;
    if (mw.length === 0) return final();
    const at = (i: number): Promise<unknown> => (i === mw.length ? final() : mw[i](ctx, () => at(i + 1)));
    return at(0);
  }
}
