/**
 * The builder `createStream()` returns: await it directly, or configure it first.
 *
 * @module
 */

import type { Metadata } from "../protocol/frame.ts";
import type { EchoStream } from "../stream/echo_stream.ts";

/** Options gathered by the builder. */
export interface StreamOpenOptions {
  metadata: Metadata;
}

/**
 * A thenable builder for an EchoStream: `await peer.createStream("x")` opens it at once;
 * `peer.createStream("x").withMetadata({...}).build()` configures it first.
 */
export class StreamBuilder implements PromiseLike<EchoStream> {
  readonly #name: string;
  readonly #open: (opts: StreamOpenOptions) => Promise<EchoStream>;
  readonly #opts: StreamOpenOptions = { metadata: {} };
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

  /** Opens the stream (once; later calls return the same promise). */
  build(): Promise<EchoStream> {
    return (this.#built ??= this.#open(this.#opts));
  }

  then<A = EchoStream, B = never>(
    onfulfilled?: ((value: EchoStream) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.build().then(onfulfilled, onrejected);
  }
}
