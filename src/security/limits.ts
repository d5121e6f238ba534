/**
 * Resource limits and flood defences: how much one peer, one address and all peers together may
 * hold of a server. Safe defaults; every one configurable with `RpcServerBuilder.limits()` (and
 * the per-connection ones with the client's `limits` option). docs/SECURITY.md explains each.
 *
 * @example Tighter limits for a public server
 * ```ts
 * import { RpcServer } from "@echostream/core";
 *
 * const server = RpcServer.builder()
 *   .limits({ maxConnectionsPerAddress: 16, maxConcurrentHandlers: 64, streamIdleTimeoutMs: 60_000 })
 *   .build();
 * ```
 *
 * @module
 */

import { DEFAULT_LIMITS, type ProtocolLimits } from "../protocol/limits.ts";

/** Limits that hold per connection, on either side. */
export interface PeerLimits {
  /**
   * Requests this side runs at once for one connection. A handler keeps its slot until it
   * returns, even after its call was cancelled (QUIC gives the peer its stream back on a reset, so
   * the stream limit alone would let open-and-cancel start handlers without bound). Requests past
   * it wait for a slot, counted in `rejected.handlerWaits`.
   * @default {256}
   */
  maxConcurrentHandlers: number;
  /**
   * Bytes one connection may hold in incomplete incoming frames, over all its streams. A frame's
   * buffer is its whole declared size, made when its header arrives: without this bound, a peer
   * could announce a `maxFrameSize` frame on every stream it may open and send nothing more. A
   * stream whose frame would go over it is refused with `RESOURCE_EXHAUSTED`
   * (`rejected.bufferFull`). Keep it at least `maxFrameSize`.
   * @default {67108864} (64 MiB)
   */
  maxBufferedBytes: number;
  /**
   * Listener calls of one connection started and not yet finished (async listeners). Past it,
   * further events of that connection are dropped and counted (`rejected.eventQueueFull`).
   * @default {1024}
   */
  maxQueuedEvents: number;
  /**
   * Bytes of events queued toward the peer and not yet taken by its transport. A peer that stops
   * reading (a subscriber that never reads broadcasts) is disconnected with close code 0x108 once
   * this is exceeded, never buffered without bound (`rejected.slowConsumer`).
   * @default {8388608} (8 MiB)
   */
  maxOutgoingBytes: number;
  /**
   * Non-productive streams the peer may open per `resetWindowMs`: streams cancelled or reset
   * before they are answered, and streams whose first frame did not arrive within
   * `firstFrameTimeoutMs`. Past it the connection is closed with a GOAWAY `RESOURCE_EXHAUSTED`
   * and close code 0x107 (the HTTP/2 "rapid reset" defence; `rejected.tooManyResets`). Cancels
   * after the call's deadline do not count.
   * @default {1000} (nghttp2 allows a burst of 1,000 RST_STREAM; the handler slots, not this, are
   *   what bound the work a reset flood starts: this only ends a connection that keeps trying)
   */
  maxResets: number;
  /** The window `maxResets` is counted over. @default {10000} */
  resetWindowMs: number;
  /**
   * How long an incoming stream may take to deliver its whole first frame (REQUEST or OPEN).
   * Streams opened and left silent, or trickled a byte at a time, are ended and counted
   * (`rejected.firstFrameTimeout`).
   * @default {10000}
   */
  firstFrameTimeoutMs: number;
  /**
   * End an EchoStream after this long with no frame in either direction (`rejected.streamIdle`;
   * both ends see `DEADLINE_EXCEEDED`). 0 turns it off: an idle stream costs one stream slot
   * and no memory growth, and long-quiet streams (a command channel) are legitimate.
   * @default {0}
   */
  streamIdleTimeoutMs: number;
  /**
   * Request streams this side keeps open after their call for its next calls (the stream-reuse
   * lane: a call takes an idle stream instead of opening one, which costs less on every QUIC
   * stack; still one call per stream at a time, so a lost packet delays only its own call). 0
   * turns reuse off: one new stream per call. Used only when the other side announces it can
   * take reused streams (every version since the REUSE flag).
   * @default {64}
   */
  maxIdleRequestStreams: number;
  /** How long an idle request stream is kept for reuse before this side ends it. @default {5000} */
  requestStreamIdleMs: number;
  /**
   * Frames of unreliable streams (`unreliable()`) this side packs into one QUIC datagram: frames
   * sent in the same event-loop turn share datagrams up to the connection's datagram size, since
   * each datagram costs the QUIC stack a packet (on Bun, 1,000 streams at 50 fps went from under a
   * quarter of the frames arriving to 82%, and from 31% late to none). Used only when the other side announces it
   * takes several frames per datagram. 1 sends each frame alone: a lost packet then loses one
   * frame, not several at once.
   * @default {64}
   */
  maxFramesPerDatagram: number;
  /**
   * QUIC datagrams of unreliable streams this side hands to the stack per second, through a token
   * bucket holding 5 ms of them (100 at the default); the rest wait in order, up to 4,096, and past
   * that the oldest is shed (`stats().datagramsShed`). Both stacks drop datagrams handed to them
   * faster than they send, silently: 800 in one turn, 128 arrived on Bun and 662 on Deno, and Bun
   * delivered about 20,000-25,000 a second here in any pattern (docs/TRANSPORT.md "Datagram
   * bursts"). Raise it where the stack and path carry more.
   * @default {20000}
   */
  maxDatagramsPerSecond: number;
}

/** Limits only a server has: admission of connections. */
export interface AdmissionLimits {
  /** Connections open (past the handshake) plus handshaking, in total. @default {10000} */
  maxConnections: number;
  /**
   * Connections from one remote address (host). Clients behind one NAT share an address: raise
   * it for such deployments. @default {256}
   */
  maxConnectionsPerAddress: number;
  /** Connections accepted whose HELLO/WELCOME handshake is still going on. @default {1000} */
  maxPendingHandshakes: number;
}

/** Everything `RpcServerBuilder.limits()` takes. */
export type ServerLimits = ProtocolLimits & PeerLimits & AdmissionLimits;

/** The defaults of {@link PeerLimits}. */
export const DEFAULT_PEER_LIMITS: Readonly<PeerLimits> = Object.freeze({
  maxConcurrentHandlers: 256,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxQueuedEvents: 1024,
  maxOutgoingBytes: 8 * 1024 * 1024,
  maxResets: 1000,
  resetWindowMs: 10_000,
  firstFrameTimeoutMs: 10_000,
  streamIdleTimeoutMs: 0,
  maxIdleRequestStreams: 64,
  requestStreamIdleMs: 5000,
  maxFramesPerDatagram: 64,
  maxDatagramsPerSecond: 20_000,
});

/** The defaults of {@link AdmissionLimits}. */
export const DEFAULT_CONNECTION_LIMITS: Readonly<AdmissionLimits> = Object.freeze({
  maxConnections: 10_000,
  maxConnectionsPerAddress: 256,
  maxPendingHandshakes: 1000,
});

/** Limits that may be 0 (meaning off). */
const ZERO_OK = new Set(["streamIdleTimeoutMs", "maxIdleRequestStreams"]);
/** Limits that are timer delays. */
const TIMERS = new Set(["resetWindowMs", "firstFrameTimeoutMs", "streamIdleTimeoutMs", "requestStreamIdleMs"]);

/**
 * Splits `limits` into frame limits and the rest, with defaults, checking every key and value.
 *
 * @param limits What the user gave.
 * @param server Whether connection-admission limits are allowed (false on a client).
 * @throws {TypeError} For an unknown key or a value that is not a positive integer (0 where
 *   allowed), so a typo never silently leaves a default in force.
 */
export function resolveResourceLimits(
  limits: Partial<ServerLimits> | undefined,
  server: boolean,
): { frames: Partial<ProtocolLimits>; peer: PeerLimits; connections: AdmissionLimits } {
  const frames: Partial<ProtocolLimits> = {};
  const peer: PeerLimits = { ...DEFAULT_PEER_LIMITS };
  const connections: AdmissionLimits = { ...DEFAULT_CONNECTION_LIMITS };
  if (limits === undefined) return { frames, peer, connections };
  if (typeof limits !== "object" || limits === null || Array.isArray(limits)) throw new TypeError("limits must be an object");
  const where = server ? "limits" : "limits (client)";
  for (const [key, value] of Object.entries(limits)) {
    const target = key in DEFAULT_LIMITS ? frames : key in DEFAULT_PEER_LIMITS ? peer : server && key in DEFAULT_CONNECTION_LIMITS ? connections : undefined;
    if (!target) {
      const known = [...Object.keys(DEFAULT_LIMITS), ...Object.keys(DEFAULT_PEER_LIMITS), ...(server ? Object.keys(DEFAULT_CONNECTION_LIMITS) : [])];
      throw new TypeError(`${where}: unknown limit "${key}" (known: ${known.join(", ")})`);
    }
    if (value === undefined) continue;
    const min = ZERO_OK.has(key) ? 0 : 1;
    const max = TIMERS.has(key) ? 2 ** 31 - 1 : Number.MAX_SAFE_INTEGER;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      throw new TypeError(`${where}: ${key} must be an integer from ${min} to ${max}, received ${typeof value === "number" ? value : JSON.stringify(value)}`);
    }
    (target as Record<string, number>)[key] = value;
  }
  return { frames, peer, connections };
}
