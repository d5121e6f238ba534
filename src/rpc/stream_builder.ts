/**
 * The builder `createStream()` returns: await it directly, or configure it first.
 *
 * @module
 */

import type { Metadata } from "../protocol/frame.ts";
import { ErrorCode, RpcError } from "../protocol/rpc_error.ts";
import type { EchoStream } from "../stream/echo_stream.ts";
import { checkTimeSyncOptions, type TimeSyncOptions } from "../stream/time_sync.ts";

/** Options gathered by the builder. */
export interface StreamOpenOptions {
  metadata: Metadata;
  /** Set by `withTimeSync()`. */
  timeSync?: TimeSyncOptions;
  /** Set by `unreliable()`. */
  unreliable: boolean;
  /** Set by `timeout()`: how long opening may take, waiting for a stream slot included. */
  timeoutMs?: number;
  /** Set by `signal()`: cancels opening. */
  signal?: AbortSignal;
}

/**
 * A thenable builder for an EchoStream: `await peer.createStream("x")` opens it at once;
 * `peer.createStream("x").withMetadata({...}).build()` configures it first.
 */
export class StreamBuilder implements PromiseLike<EchoStream> {
  readonly #name: string;
  readonly #open: (opts: StreamOpenOptions) => Promise<EchoStream>;
  readonly #opts: StreamOpenOptions = { metadata: {}, unreliable: false };
  #built: Promise<EchoStream> | undefined;

  /** @internal */
  constructor(name: string, open: (opts: StreamOpenOptions) => Promise<EchoStream>) {
    if (typeof name !== "string" || name.length === 0) throw new TypeError("stream name must be a non-empty string");
    this.#name = name;
    this.#open = open;
  }

  /** The stream's name. */
  get name(): string {
    return this.#name;
  }

  /** Attaches metadata the stream handler sees in `ctx.metadata` and `stream.metadata`. */
  withMetadata(metadata: Metadata): this {
    this.#opts.metadata = { ...this.#opts.metadata, ...metadata };
    return this;
  }

  /**
   * Makes the stream time-synced, in both directions: `sendWithTimestamp(data, ts)` stamps each
   * frame with a time on the sender's clock, and the receiver's `recvAligned()` releases it at
   * that time mapped onto the receiver's clock plus a playout latency (adaptive by default,
   * fixed with `latencyMs`), in timestamp order, never early. The options apply to both sides.
   *
   * @example
   * ```ts
   * import type { RpcClient } from "@echostream/core";
   * export async function sendSynced(client: RpcClient, frame: Uint8Array): Promise<void> {
   *   const synced = await client.createStream("audio.sync").withTimeSync({ latencyMs: 120 }).build();
   *   await synced.sendWithTimestamp(frame, synced.now()); // ms on this side's clock
   *   await synced.end();
   * }
   * ```
   * @throws {RangeError} For an option out of range.
   */
  withTimeSync(options: TimeSyncOptions = {}): this {
    checkTimeSyncOptions(options);
    this.#opts.timeSync = { ...options };
    return this;
  }

  /**
   * Carries the stream's frames as QUIC datagrams: no retransmission and no ordering, for media
   * where a late frame is worthless. A frame larger than one datagram is refused with
   * `INVALID_ARGUMENT`; opening fails with `FAILED_PRECONDITION` when either end lacks datagrams
   * (no silent fallback). Combine with `withTimeSync()` to have losses counted and frames
   * reordered by the jitter buffer.
   */
  unreliable(): this {
    this.#opts.unreliable = true;
    return this;
  }

  /**
   * Gives opening at most `ms`: waiting for a stream slot when the peer's concurrent-stream limit
   * is reached, then for the peer to accept the stream. Past it, opening fails with
   * `DEADLINE_EXCEEDED` (naming the limit when no slot came) and nothing is left open. Without
   * it, opening waits as long as the connection lives. The stream itself has no deadline.
   *
   * @example
   * ```ts
   * import type { EchoStream, RpcClient } from "@echostream/core";
   * export function open(client: RpcClient): Promise<EchoStream> {
   *   return client.createStream("audio.stream").timeout(2000).build(); // DEADLINE_EXCEEDED after 2 s without a slot
   * }
   * ```
   * @param ms Milliseconds, a positive number.
   * @throws {RpcError} `INVALID_ARGUMENT` for anything but a positive finite number.
   */
  timeout(ms: number): this {
    if (typeof ms !== "number" || !(Number.isFinite(ms) && ms > 0)) {
      throw new RpcError(ErrorCode.INVALID_ARGUMENT, `timeout must be a positive number of ms, received ${String(ms)}`);
    }
    this.#opts.timeoutMs = ms;
    return this;
  }

  /**
   * Cancels opening when `signal` aborts (before the stream is open): opening fails with
   * `CANCELLED` and nothing is left open. Once open, the stream is not tied to the signal: end
   * or abort it as usual.
   *
   * @example
   * ```ts
   * import type { EchoStream, RpcClient } from "@echostream/core";
   * export function open(client: RpcClient, ac: AbortController): Promise<EchoStream> {
   *   return client.createStream("audio.stream").signal(ac.signal).build(); // ac.abort() cancels opening
   * }
   * ```
   */
  signal(signal: AbortSignal): this {
    this.#opts.signal = signal;
    return this;
  }

  /** Opens the stream (once; later calls return the same promise). */
  build(): Promise<EchoStream> {
    return (this.#built ??= this.#open(this.#opts));
  }

  /** Makes the builder awaitable: `await client.createStream(name)` is `build()`. */
  then<A = EchoStream, B = never>(
    onfulfilled?: ((value: EchoStream) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.build().then(onfulfilled, onrejected);
  }
}
