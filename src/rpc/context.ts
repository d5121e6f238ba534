/**
 * The context every handler, listener and stream handler receives.
 *
 * @module
 */

import type { Metadata } from "../protocol/frame.ts";
import type { PeerCertificate, SocketAddress } from "../transport/types.ts";
import type { Peer } from "./peer.ts";
import type { RpcApi, UntypedApi } from "./api.ts";

/**
 * What a handler knows about the call it serves. `P` is the API of the other side: annotate a
 * handler's context as `Context<ClientApi>` and `ctx.peer.request`/`emit`/`createStream` accept
 * only what that peer serves, with its types.
 *
 * @example Calling back into a typed client
 * ```ts
 * import { type ApiOf, type Context, handler, listener } from "@echostream/core";
 *
 * // What the client serves (it registers these with client.handle(...)).
 * const clientDefs = [listener("job.progress", (_ctx, _percent: number) => {})];
 * type ClientApi = ApiOf<typeof clientDefs>;
 *
 * export const run = handler("job.run", async (ctx: Context<ClientApi>, steps: number) => {
 *   for (let i = 1; i <= steps; i++) await ctx.peer.emit("job.progress", (100 * i) / steps);
 *   return "done";
 * });
 * ```
 */
export interface Context<P extends RpcApi = UntypedApi> {
  /** The other side: call back into it with `request`, `emit` and `createStream`. */
  readonly peer: Peer<P>;
  /** The method, topic or stream name. */
  readonly name: string;
  /** What is being served. */
  readonly kind: "request" | "event" | "stream";
  /** Metadata the caller attached. */
  readonly metadata: Metadata;
  /** Fires when the caller cancels, the deadline passes or the connection ends. */
  readonly signal: AbortSignal;
  /** The caller's address. */
  readonly remote: SocketAddress;
  /** Who the peer authenticated as (what the server's `authenticate` returned), if anyone. */
  readonly principal: unknown;
  /**
   * What TLS proved about the peer: its client certificate (subject and SHA-256 fingerprint)
   * when it presented one under mutual TLS; undefined otherwise.
   */
  readonly certificate: PeerCertificate | undefined;
  /** Absolute deadline (ms, `Date.now()` clock), when the caller set one. */
  readonly deadline: number | undefined;
}

/** What a server's `authenticate` hook sees: the client's HELLO and what TLS proved. */
export interface HelloInfo {
  /** The name the client gave. */
  name: string;
  /** The credentials the client sent (`auth` in `RpcClient.connect` options). */
  auth: unknown;
  /** The client's address. */
  remote: SocketAddress;
  /** The client certificate (subject and SHA-256 fingerprint) under mutual TLS, when the transport offers it. */
  certificate: PeerCertificate | undefined;
}
