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

/** What `server.stats()` returns: every counter of {@link PeerStats}, over all connections. */
export interface ServerStats extends PeerStats {
  /** Connections past the handshake, open now. */
  connections: number;
  /** Connections accepted whose HELLO/WELCOME handshake has not finished yet. */
  handshaking: number;
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
    openStreams: 0,
    datagramRoutes: 0,
    pendingRequests: 0,
    overrunHandlers: 0,
  };
}

function add(into: PeerStats, from: PeerStats): void {
  for (const k of Object.keys(into) as (keyof PeerStats)[]) into[k] += from[k];
}

function idle(s: PeerStats): boolean {
  return LIVE_STATS.every((k) => s[k] === 0);
}

/**
 * @internal Totals over a changing set of peers. A closed peer's counters are folded into the
 * totals once its live state is back to zero; until then it is still summed as it is, so a
 * stream or call that outlives its connection shows up instead of vanishing from the count.
 */
export class StatsTotals {
  readonly #retired = zeroPeerStats();
  readonly #closing = new Set<Peer>();
  readonly #folded = new WeakSet<Peer>();

  /** Counts `peer` out of the live set once it closes (the caller drops it from its own set). */
  retire(peer: Peer): void {
    if (!this.#folded.has(peer)) this.#closing.add(peer);
  }

  /** The totals over `live` peers, retired ones, and closed ones still holding state. */
  snapshot(live: Iterable<Peer>): PeerStats {
    for (const p of this.#closing) {
      if (idle(p.stats)) {
        add(this.#retired, p.stats);
        this.#closing.delete(p);
        this.#folded.add(p);
      }
    }
    const out = { ...this.#retired };
    for (const p of this.#closing) add(out, p.stats);
    for (const p of live) add(out, p.stats);
    return out;
  }
}
