/**
 * What a cluster adapter is: plain publish/subscribe on exact subjects over a message bus
 * (NATS, Redis). The cross-instance protocol (presence, broadcast, groups, peer calls) is the
 * core's own, in `node.ts`, the same over every bus; an adapter only moves bytes. See
 * docs/CLUSTER.md.
 *
 * @module
 */

import type { Metadata } from "../protocol/frame.ts";

/** What an adapter tells the cluster about its bus. */
export interface ClusterBusEvents {
  /** A message arrived on a subject this instance subscribed to. */
  message(subject: string, data: Uint8Array): void;
  /**
   * The bus connection went down (`up: false`) or came back with every subscription in place
   * (`up: true`). Messages published while it was down are lost (at-most-once).
   */
  state(up: boolean, detail?: string): void;
}

/**
 * A message bus, as the cluster uses it: `RpcServer.builder().cluster(natsCluster(...))`.
 * `natsCluster` (`@echostream/core/cluster/nats`) and `redisCluster`
 * (`@echostream/core/cluster/redis`) are the two shipped; any bus with publish/subscribe in
 * publish order per connection can implement it.
 */
export interface ClusterAdapter {
  /** The bus, for logs and stats (`"nats"`, `"redis"`). */
  readonly kind: string;
  /**
   * Connects. Resolves once publishing and subscribing work; rejects when the bus cannot be
   * reached at all (the server's `start()` then fails).
   */
  connect(events: ClusterBusEvents): Promise<void>;
  /** Receives `subject` from now on (exact match; subjects are `[A-Za-z0-9_.-]`). */
  subscribe(subject: string): Promise<void>;
  /** Stops receiving `subject`. */
  unsubscribe(subject: string): Promise<void>;
  /**
   * Publishes to every subscriber of `subject`. Messages one instance publishes reach each
   * subscriber in publish order. Rejects while the bus is down.
   */
  publish(subject: string, data: Uint8Array): Promise<void>;
  /** Disconnects (after flushing what was published). */
  close(): Promise<void>;
}

/** Options of {@link ClusterAdapter} use: `RpcServer.builder().cluster(adapter, options)`. */
export interface ClusterOptions {
  /**
   * Separates clusters sharing one bus: only servers with the same namespace see each other.
   * `[A-Za-z0-9_-]+`. @default {"default"}
   */
  namespace?: string;
  /** How often each instance announces itself (ms). @default {2000} */
  heartbeatMs?: number;
  /**
   * After how long without a heartbeat an instance counts as dead: its peers leave the
   * presence view and calls waiting on it fail with `UNAVAILABLE` (ms). @default {3 × heartbeatMs}
   */
  deadAfterMs?: number;
  /** Deadline of a call to a peer on another instance when the caller sets none (ms). @default {10000} */
  requestTimeoutMs?: number;
  /** This instance's id in the cluster. @default {a random id} */
  instanceId?: string;
}

/** One connected peer, wherever it is connected. */
export interface PresenceEntry {
  /** The peer's id (`peer.id`), unique in the cluster. */
  id: string;
  /** The instance it is connected to. */
  instance: string;
  /** The name the client gave in its HELLO. */
  name: string;
  /**
   * Who it authenticated as (what `authenticate` returned), as JSON carries it; undefined when
   * there is none or it is not JSON.
   */
  principal: unknown;
  /** Its address, `host:port`. */
  remote: string;
  /** When it connected (ms since the epoch, on its instance's clock). */
  connectedAt: number;
  /** The groups it is in. */
  groups: string[];
}

/** An instance of the cluster, as this one sees it. */
export interface ClusterInstance {
  /** Its id. */
  id: string;
  /** This instance. */
  self: boolean;
  /** Its connected peers. */
  peers: number;
  /** Milliseconds since its last heartbeat (0 for this instance). */
  lastSeenMs: number;
}

/** A change in presence, as {@link ClusterView.watch} reports it. */
export interface PresenceEvent {
  /** `up`: the peer connected, or its entry changed (it joined or left a group); `down`: it left. */
  type: "up" | "down";
  /** The peer's entry (its last one, for `down`). */
  peer: PresenceEntry;
}

/** Counters of the cross-instance traffic. */
export interface ClusterStats {
  /** The bus kind, or `"none"` for a server without a cluster. */
  bus: string;
  /** Whether the bus is connected now. */
  connected: boolean;
  /** Instances alive, this one included. */
  instances: number;
  /** Peers in the presence view, every instance's. */
  peers: number;
  /** Messages this instance published on the bus. */
  published: number;
  /** Messages it received from other instances. */
  received: number;
  /** Publishes that failed (the bus was down): broadcasts and group emits that reached only local peers. */
  publishFailed: number;
  /** Messages that could not be decoded (another version, or not ours), dropped. */
  malformed: number;
  /** Instances removed for missing heartbeats. */
  instancesExpired: number;
  /** `watch()` iterators ended for falling behind (more than 4,096 presence events unread). */
  watchersDropped: number;
}

/** Where an event reaches: every peer, a group's, or one peer's. */
export interface ClusterEmitOptions {
  /** Metadata the listeners see in `ctx.metadata`. */
  metadata?: Metadata;
  /** Peer ids not to deliver to (e.g. the sender). */
  except?: readonly string[];
}

/** The cluster as a server sees it: `server.cluster`. */
export interface ClusterView {
  /** This instance's id. */
  readonly instanceId: string;
  /** The bus kind, or `"none"` without a cluster. */
  readonly bus: string;
  /** Whether the bus is connected now (always true without a bus). */
  readonly connected: boolean;
  /** Every connected peer of every live instance (eventually consistent: see docs/CLUSTER.md). */
  presence(): PresenceEntry[];
  /** The live instances, this one first. */
  instances(): ClusterInstance[];
  /**
   * Peers coming and going anywhere in the cluster, until the signal aborts or the server closes.
   * Each watcher holds at most 4,096 unread events: a consumer that falls further behind gets an
   * `RpcError` `RESOURCE_EXHAUSTED` from the iterator (counted in `stats().watchersDropped`), and
   * should read `presence()` again and start a new watch.
   */
  watch(signal?: AbortSignal): AsyncIterable<PresenceEvent>;
  /** Traffic counters. */
  stats(): ClusterStats;
}
