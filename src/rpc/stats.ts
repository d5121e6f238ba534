/**
 * Plain snapshots of what a server or client holds and has done: `server.stats()` and
 * `client.stats()`.
 *
 * @module
 */

import type { Peer, PeerStats } from "./peer.ts";

/**
 * Counters that describe state held now, not things done: they go back to zero once the work
 * ends, so a value that stays up after traffic stops is a leak.
 */
export const LIVE_STATS = ["openStreams", "datagramRoutes", "pendingRequests", "inFlight"] as const;

/**
 * Everything refused, by reason: what each abuse defence and policy turned away (docs/SECURITY.md
 * has what the peer sees for each). Per connection in `peer.stats.rejected`; summed, plus the
 * connection-level reasons, in `server.stats().rejected`.
 */
export interface Rejections {
  /** Requests, events and stream opens the access policy denied (`PERMISSION_DENIED`; events dropped). */
  permissionDenied: number;
  /** Requests, events and stream opens over a rate limit (`RESOURCE_EXHAUSTED` with `retryAfterMs`; events dropped). */
  rateLimited: number;
  /** Events not delivered because the connection's queue of running listeners was full. */
  eventQueueFull: number;
  /** Requests that waited for a handler slot (`maxConcurrentHandlers` running): delayed, not refused. */
  handlerWaits: number;
  /** Incoming streams ended because their first frame did not complete within `firstFrameTimeoutMs` (slowloris). */
  firstFrameTimeout: number;
  /** EchoStreams ended after `streamIdleTimeoutMs` with no frame either way. */
  streamIdle: number;
  /** Frames refused as larger than `maxFrameSize` (`RESOURCE_EXHAUSTED`). */
  oversizeFrames: number;
  /** Streams refused for bytes that are not valid frames (`DATA_LOSS`). */
  malformedFrames: number;
  /** Incoming streams refused because the connection held `maxBufferedBytes` of incomplete frames (`RESOURCE_EXHAUSTED`). */
  bufferFull: number;
  /** Connections closed for cancelling or resetting too many streams in a window (rapid reset; close code 0x107). */
  tooManyResets: number;
  /** Connections closed because the peer did not read what was queued for it (close code 0x108). */
  slowConsumer: number;
  /** Requests that arrived in 0-RTT early data for a handler not marked idempotent: held until the handshake completed. */
  earlyDataHeld: number;
  /** Connections refused: `maxConnections` reached (close code 0x106). Server level. */
  connectionLimit: number;
  /** Connections refused: `maxConnectionsPerAddress` reached for the remote address (close code 0x106). Server level. */
  addressLimit: number;
  /** Connections refused: `maxPendingHandshakes` reached (close code 0x106). Server level. */
  handshakeLimit: number;
  /** Connections closed for not completing HELLO/WELCOME within the handshake timeout (close code 0x105). Server level. */
  handshakeTimeout: number;
  /** Connections refused by `authenticate`, or whose per-peer access rules failed to compute (close code 0x103). Server level. */
  unauthenticated: number;
}

/** A Rejections with every count at zero. */
export function zeroRejections(): Rejections {
  return {
    permissionDenied: 0,
    rateLimited: 0,
    eventQueueFull: 0,
    handlerWaits: 0,
    firstFrameTimeout: 0,
    streamIdle: 0,
    oversizeFrames: 0,
    malformedFrames: 0,
    bufferFull: 0,
    tooManyResets: 0,
    slowConsumer: 0,
    earlyDataHeld: 0,
    connectionLimit: 0,
    addressLimit: 0,
    handshakeLimit: 0,
    handshakeTimeout: 0,
    unauthenticated: 0,
  };
}

/** What `server.stats()` returns: every counter of {@link PeerStats}, over all connections. */
export interface ServerStats extends PeerStats {
  /** Connections past the handshake, open now. */
  connections: number;
  /** Connections accepted whose HELLO/WELCOME handshake has not finished yet. */
  handshaking: number;
  /** Connections that completed the handshake since the server started. */
  connectionsOpened: number;
  /**
   * Connections that ended since the server started, by close code in hex (`"0x0"` normal,
   * `"0x107"` too many resets, …: docs/PROTOCOL.md), for users without OpenTelemetry.
   */
  connectionsClosed: Record<string, number>;
}

/** What `client.stats()` returns: every counter of {@link PeerStats}, over all its connections. */
export interface ClientStats extends PeerStats {
  /** Whether the client has a live connection now. */
  connected: boolean;
  /** Successful reconnections so far. */
  reconnects: number;
}

/** A PeerStats with every counter at zero. */
export function zeroPeerStats(): PeerStats {
  return {
    requestsSent: 0,
    requestsServed: 0,
    eventsSent: 0,
    eventsReceived: 0,
    unhandledEvents: 0,
    droppedEvents: 0,
    streamsOpened: 0,
    streamsAccepted: 0,
    inFlight: 0,
    droppedDatagrams: 0,
    datagramsSent: 0,
    datagramFramesSent: 0,
    datagramsShed: 0,
    openStreams: 0,
    datagramRoutes: 0,
    pendingRequests: 0,
    overrunHandlers: 0,
    rejected: zeroRejections(),
  };
}

type Counts = { [k: string]: number | Counts };

/** Adds every count of `from` into `into` (nested objects such as `rejected` too). */
function add(into: Counts, from: Counts): void {
  for (const k of Object.keys(into)) {
    const v = from[k];
    if (typeof v === "number") (into[k] as number) += v;
    else add(into[k] as Counts, v);
  }
}

/** A deep copy of a stats object. */
function copy(s: PeerStats): PeerStats {
  return { ...s, rejected: { ...s.rejected } };
}

function idle(s: PeerStats): boolean {
  return LIVE_STATS.every((k) => s[k] === 0);
}

/**
 * @internal Totals over a changing set of peers. A closed peer's counters are folded into the
 * totals once its live state is back to zero, and the peer is then let go; until then it is
 * still summed as it is, so a stream or call that outlives its connection shows up instead of
 * vanishing from the count. Folding happens at every close and every snapshot: closed peers used
 * to wait for the next `stats()` call, so a server nobody asked kept every peer it had served.
 */
export class StatsTotals {
  readonly #retired = zeroPeerStats();
  readonly #closing = new Set<Peer>();
  readonly #folded = new WeakSet<Peer>();

  /** Counts `peer` out of the live set once it closes (the caller drops it from its own set). */
  retire(peer: Peer): void {
    if (!this.#folded.has(peer)) this.#closing.add(peer);
    this.#fold();
  }

  /** Closed peers still held because they hold live state (a call or stream past the close). */
  get held(): number {
    return this.#closing.size;
  }

  /** Folds every closed peer whose live state is back to zero into the totals, and lets it go. */
  #fold(): void {
    for (const p of this.#closing) {
      if (idle(p.stats)) {
        add(this.#retired as unknown as Counts, p.stats as unknown as Counts);
        this.#closing.delete(p);
        this.#folded.add(p);
      }
    }
  }

  /** The totals over `live` peers, retired ones, and closed ones still holding state. */
  snapshot(live: Iterable<Peer>): PeerStats {
    this.#fold();
    const out = copy(this.#retired);
    for (const p of this.#closing) add(out as unknown as Counts, p.stats as unknown as Counts);
    for (const p of live) add(out as unknown as Counts, p.stats as unknown as Counts);
    return out;
  }
}
