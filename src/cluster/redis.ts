/**
 * The Redis cluster adapter: `RpcServer.builder().cluster(redisCluster({ url }))`. Redis
 * pub/sub (PUBLISH/SUBSCRIBE) through `ioredis` (a peer dependency: install it next to
 * `@echostream/core`), on two connections, one publishing and one subscribed, as pub/sub
 * requires. Redis pub/sub is at-most-once ("fire and forget": a subscriber that is disconnected
 * misses what is published meanwhile) and keeps each publisher's order; docs/CLUSTER.md has the
 * guarantees.
 *
 * @example
 * ```ts
 * import { RpcServer } from "@echostream/core";
 * import { redisCluster } from "@echostream/core/cluster/redis";
 *
 * const server = RpcServer.builder().cluster(redisCluster({ url: "redis://10.0.0.5:6379" })).build();
 * await server.start();
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { Redis, type RedisOptions } from "ioredis";
import type { ClusterAdapter, ClusterBusEvents } from "./types.ts";

/** Options of {@link redisCluster}. */
export interface RedisClusterOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). @default {"redis://127.0.0.1:6379"} */
  url?: string;
  /**
   * More `ioredis` options (credentials, TLS, timeouts), for both connections. The adapter's
   * defaults: reconnect forever, at most every 1 s (`retryStrategy`), fail commands at once while
   * disconnected instead of queueing them (`enableOfflineQueue: false`; the cluster then counts
   * the publish as failed), resubscribe after a reconnect (`autoResubscribe`).
   */
  redis?: { [option: string]: unknown };
}

/** A {@link ClusterAdapter} over Redis pub/sub. */
export function redisCluster(options: RedisClusterOptions = {}): ClusterAdapter {
  return new RedisBus(options);
}

class RedisBus implements ClusterAdapter {
  readonly kind = "redis";
  readonly #options: RedisClusterOptions;
  #pub: Redis | undefined;
  #sub: Redis | undefined;
  #closing = false;

  constructor(options: RedisClusterOptions) {
    this.#options = options;
  }

  async connect(events: ClusterBusEvents): Promise<void> {
    this.#closing = false;
    const opts: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResubscribe: true,
      maxRetriesPerRequest: 0,
      retryStrategy: (times: number) => Math.min(50 * times, 1000),
      ...(this.#options.redis as RedisOptions),
    };
    const url = this.#options.url ?? "redis://127.0.0.1:6379";
    const pub = (this.#pub = new Redis(url, opts));
    const sub = (this.#sub = new Redis(url, { ...opts, enableOfflineQueue: true }));
    // ioredis logs "[ioredis] Unhandled error event" for errors nobody listens to; the state
    // changes below are what the cluster reports.
    for (const c of [pub, sub]) c.on("error", () => {});
    let up = false;
    const update = () => {
      if (this.#closing) return;
      const now = pub.status === "ready" && sub.status === "ready";
      if (now !== up) {
        up = now;
        events.state(now, now ? "connected" : `publisher ${pub.status}, subscriber ${sub.status}`);
      }
    };
    await Promise.all([pub.connect(), sub.connect()]);
    up = true;
    // "ready" on the subscriber comes after its channels are subscribed again.
    for (const c of [pub, sub]) for (const ev of ["ready", "close", "end", "reconnecting"]) c.on(ev, update);
    sub.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      events.message(channel.toString(), new Uint8Array(message.buffer, message.byteOffset, message.byteLength));
    });
  }

  async subscribe(subject: string): Promise<void> {
    await this.#subscriber().subscribe(subject);
  }

  async unsubscribe(subject: string): Promise<void> {
    await this.#subscriber().unsubscribe(subject);
  }

  publish(subject: string, data: Uint8Array): Promise<void> {
    const pub = this.#pub;
    if (!pub) return Promise.reject(new Error("the Redis connection is closed"));
    if (pub.status !== "ready") return Promise.reject(new Error(`the Redis publisher is ${pub.status}`));
    // Queued on the one publishing connection, in call order, and not awaited: waiting for each
    // PUBLISH's reply would serialise a burst of broadcasts on Redis round trips (measured: 13×
    // fewer deliveries per second than NATS, whose publish only queues too). A PUBLISH that fails
    // after this means the connection dropped, which the state events report.
    pub.publish(subject, Buffer.from(data.buffer, data.byteOffset, data.byteLength)).catch(() => {});
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.#closing = true;
    const conns = [this.#pub, this.#sub];
    this.#pub = this.#sub = undefined;
    await Promise.all(conns.map((c) => c?.quit().catch(() => c.disconnect())));
  }

  #subscriber(): Redis {
    if (!this.#sub) throw new Error("the Redis connection is closed");
    return this.#sub;
  }
}
