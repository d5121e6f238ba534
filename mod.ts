/**
 * EchoStream: asynchronous, bidirectional RPC and real-time streaming over QUIC, for Deno and
 * Bun (Node supported).
 *
 * Both sides are peers: each can make requests, emit events and open streams. A server is
 * built with `RpcServer.builder()`; a client connects with `RpcClient.connect()`.
 *
 * @example A server and a client
 * ```ts
 * import { handler, listener, RpcClient, RpcServer } from "@echostream/core";
 *
 * const server = RpcServer.builder()
 *   .bind("127.0.0.1:0")
 *   .handler(handler("user.login", (_ctx, name: string) => ({ user: name, token: "t-1" })))
 *   .listener(listener("audio.stopped", () => console.log("stopped")))
 *   .build();
 * await server.start();
 *
 * const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
 * const session = await client.request("user.login", "alice", { timeoutMs: 2000 });
 * await client.emit("audio.stopped", null);
 * await client.close();
 * await server.close();
 * ```
 *
 * @module
 */

export { PeerRef, RpcServer, RpcServerBuilder } from "./src/rpc/server.ts";
export type { EmitResult } from "./src/cluster/node.ts";
export type {
  ClusterAdapter,
  ClusterBusEvents,
  ClusterEmitOptions,
  ClusterInstance,
  ClusterOptions,
  ClusterStats,
  ClusterView,
  PresenceEntry,
  PresenceEvent,
} from "./src/cluster/types.ts";
export { type ClientOptions, type ReconnectOptions, RpcClient } from "./src/rpc/client.ts";
export {
  type Definition,
  handler,
  type HandlerDefinition,
  type HandlerFn,
  type HandlerOptions,
  listener,
  type ListenerDefinition,
  type ListenerFn,
  type ListenerOptions,
  type StandardSchema,
  streamHandler,
  type StreamHandlerDefinition,
  type StreamHandlerFn,
  type StreamHandlerOptions,
} from "./src/rpc/definitions.ts";
export { type MethodDescription, REFLECTION_METHOD, type ServiceDescription } from "./src/rpc/reflection.ts";
export type { Context, HelloInfo } from "./src/rpc/context.ts";
export type {
  AnyDefinition,
  ApiOf,
  DefinitionsApi,
  EmitArgs,
  EventName,
  EventPayload,
  RequestArgs,
  RequestInput,
  RequestName,
  RequestOutput,
  RpcApi,
  StreamName,
  UntypedApi,
} from "./src/rpc/api.ts";
export { type EmitOptions, Peer, type PeerStats, type RequestOptions } from "./src/rpc/peer.ts";
export { type ClientStats, LIVE_STATS, type Rejections, type ServerStats } from "./src/rpc/stats.ts";
export type { Middleware } from "./src/rpc/registry.ts";
export { StreamBuilder } from "./src/rpc/stream_builder.ts";
export { EchoStream } from "./src/stream/echo_stream.ts";
export type { DiscoveryOptions } from "./src/rpc/server.ts";
export type { BrowseEvent, DiscoveredService } from "./src/discovery/types.ts";
export { DiscoveryError } from "./src/discovery/discovery_error.ts";
export type { AlignedFrame, StreamStats, TimeSyncOptions } from "./src/stream/time_sync.ts";
export {
  type ClockSource,
  type ClockStats,
  type ClockStepDetail,
  type ClockSyncOptions,
  type ClockTransport,
  SyncedClock,
  systemClock,
} from "./src/clock/sync.ts";
export { ErrorCode, RpcError } from "./src/protocol/rpc_error.ts";
export { defaultPayloadCodec, jsonCodec, msgpackCodec, type PayloadCodec } from "./src/protocol/payload_codec.ts";
export { ALPN, CloseCode, PROTOCOL_VERSION } from "./src/protocol/version.ts";
export type { Metadata } from "./src/protocol/frame.ts";
export { createDevCertificates } from "./src/security/dev_cert.ts";
export type { Access, AccessHook, AccessKind, AccessPolicy, AccessRules, NameRules, Permissions, Who } from "./src/security/access.ts";
export type { LimitSubject, RateLimitRule } from "./src/security/rate_limit.ts";
export type { AdmissionLimits, PeerLimits, ServerLimits } from "./src/security/limits.ts";
export type { ProtocolLimits } from "./src/protocol/limits.ts";
// The transport interface (for `.transport()` and `ClientOptions.transport`) and the types it uses.
export type * from "./src/transport/types.ts";
export type { JitterStats } from "./src/stream/jitter.ts";
export { DiscoveryErrorCode } from "./src/discovery/discovery_error.ts";
export type { DevCertificateOptions, DevCertificates } from "./src/security/dev_cert.ts";
export type { Advertisement, AdvertiseOptions } from "./src/discovery/advertise.ts";
