// Shared by the Deno and Node adapters, whose stacks hand out QUIC streams as web streams: the
// two halves of one stream, the writer taken on first use, the reader an iteration holds; and
// a loop that hands each value of a ReadableStream to a callback.

const noop = () => {};

/**
 * The web-stream halves of one QUIC stream. STOP_SENDING and RESET_STREAM are a cancel of the
 * readable and an abort of the writable; the adapter chooses the reason it passes (Deno: the
 * code; @matrixai/quic: an object its `reasonToCode` reads).
 */
export class WebHalves {
  readonly readable: ReadableStream<Uint8Array> | undefined;
  readonly writable: WritableStream<Uint8Array> | undefined;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader | undefined;

  /** A half left out is one this stream does not have (a unidirectional stream). */
  constructor(readable: ReadableStream<Uint8Array> | undefined, writable: WritableStream<Uint8Array> | undefined) {
    this.readable = readable;
    this.writable = writable;
  }

  /**
   * The writer, taken on first use: @matrixai/quic trips an internal assertion when the
   * writable of an incoming unidirectional stream is locked.
   */
  get writer(): WritableStreamDefaultWriter<Uint8Array> {
    return (this.#writer ??= this.writable!.getWriter());
  }

  /** Abandons the sending half with `reason`; nothing when the stream has none. */
  abort(reason: unknown): void {
    if (this.writable) this.writer.abort(reason).catch(noop);
  }

  /**
   * Stops the receiving half with `reason`: through the iteration's reader while one holds the
   * lock, else the readable itself; nothing when the stream has none.
   */
  cancel(reason: unknown): void {
    (this.#reader ?? this.readable)?.cancel(reason).catch(noop);
  }

  /** Locks the readable for an iteration with a default reader; {@link unlock} when it ends. */
  reader(): ReadableStreamDefaultReader<Uint8Array> {
    return (this.#reader = this.readable!.getReader());
  }

  /** Locks the readable for an iteration with a BYOB reader; {@link unlock} when it ends. */
  byobReader(): ReadableStreamBYOBReader {
    return (this.#reader = this.readable!.getReader({ mode: "byob" }));
  }

  /** The iteration is over: `cancel` goes to the readable again. The lock itself stays as left. */
  unlock(): void {
    this.#reader = undefined;
  }
}

/**
 * Hands each value of `stream` to `fn` until it ends or fails (the connection closed); never
 * rejects.
 */
export async function forEachValue<T>(stream: ReadableStream<T>, fn: (value: T) => void): Promise<void> {
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      fn(value);
    }
  } catch { /* connection closed */ }
}
