/**
 * The NATS cluster adapter: `RpcServer.builder().cluster(natsCluster({ servers }))`. Core NATS
 * publish/subscribe through `@nats-io/transport-node` (a peer dependency: install it next to
 * `@echostream/core`; it runs on Bun, Deno and Node). Core NATS is at-most-once and keeps each
 * publisher's order; docs/CLUSTER.md has the guarantees.
 *
 * @example
 * ```ts
 * import { RpcServer } from "@echostream/core";
 * import { natsCluster } from "@echostream/core/cluster/nats";
 *
 * const server = RpcServer.builder()
 *   .cluster(natsCluster({ servers: ["nats://10.0.0.5:4222", "nats://10.0.0.6:4222"] }))
 *   .build();
 * await server.start();
 * ```
 *
 * @module
 */

import { connect, type ConnectionOptions, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { ClusterAdapter, ClusterBusEvents } from "./types.ts";

/**
 * Options of {@link natsCluster}. The adapter reconnects forever (`maxReconnectAttempts: -1`)
 * every 250 ms (`reconnectTimeWait`) and does not receive its own messages (`noEcho`); `connect`
 * overrides those and adds any other option of `@nats-io/transport-node`'s `connect()`.
 */
export interface NatsClusterOptions {
  /** NATS server URLs, `nats://host:port` (several: the seeds of a NATS cluster). @default {"nats://127.0.0.1:4222"} */
  servers?: string | string[];
  /** User and password, when the server requires them. */
  user?: string;
  /** The user's password. */
  pass?: string;
  /** An authentication token, when the server requires one. */
  token?: string;
  /** TLS to the NATS server (PEM text or files), as `@nats-io/transport-node` takes it. */
  tls?: { ca?: string; cert?: string; key?: string; caFile?: string; certFile?: string; keyFile?: string; handshakeFirst?: boolean };
  /** More `connect()` options, passed as they are. */
  connect?: { [option: string]: unknown };
}

/** A {@link ClusterAdapter} over NATS. */
export function natsCluster(options: NatsClusterOptions = {}): ClusterAdapter {
  return new NatsBus(options);
}

class NatsBus implements ClusterAdapter {
  readonly kind = "nats";
  readonly #options: NatsClusterOptions;
  #nc: NatsConnection | undefined;
  readonly #subs = new Map<string, Subscription>();
  #events: ClusterBusEvents | undefined;

  constructor(options: NatsClusterOptions) {
    this.#options = options;
  }

  async connect(events: ClusterBusEvents): Promise<void> {
    this.#events = events;
    const { connect: more, ...basic } = this.#options;
    const nc = await connect({ maxReconnectAttempts: -1, reconnectTimeWait: 250, noEcho: true, name: "echostream", ...basic, ...more } as ConnectionOptions);
    this.#nc = nc;
    void (async () => {
      // The client resubscribes by itself after a reconnect: "reconnect" means ready again.
      for await (const s of nc.status()) {
        if (s.type === "disconnect") events.state(false, `disconnected from ${s.server}`);
        else if (s.type === "reconnect") events.state(true, `reconnected to ${s.server}`);
      }
    })().catch(() => {});
    void nc.closed().then((err) => {
      if (err) events.state(false, `connection closed: ${err.message}`);
    });
  }

  subscribe(subject: string): Promise<void> {
    const nc = this.#connection();
    if (!this.#subs.has(subject)) {
      const events = this.#events!;
      // The callback form: messages are handed over synchronously, in arrival order.
      this.#subs.set(subject, nc.subscribe(subject, { callback: (err, msg) => void (err ? undefined : events.message(msg.subject, msg.data)) }));
    }
    return Promise.resolve();
  }

  unsubscribe(subject: string): Promise<void> {
    this.#subs.get(subject)?.unsubscribe();
    this.#subs.delete(subject);
    return Promise.resolve();
  }

  publish(subject: string, data: Uint8Array): Promise<void> {
    try {
      // Queued synchronously: publish order is send order.
      this.#connection().publish(subject, data);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async close(): Promise<void> {
    const nc = this.#nc;
    this.#nc = undefined;
    this.#subs.clear();
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }

  #connection(): NatsConnection {
    if (!this.#nc || this.#nc.isClosed()) throw new Error("the NATS connection is closed");
    return this.#nc;
  }
}
