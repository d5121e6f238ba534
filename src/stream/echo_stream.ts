/**
 * `EchoStream`: an ordered, reliable byte-frame stream between two peers, on its own QUIC
 * stream (no head-of-line blocking between streams). Either side sends frames, ends its
 * direction, or aborts the whole stream.
 *
 * @module
 */

import type { FrameCodec } from "../protocol/codec.ts";
import { type Frame, FrameFlag, FrameType, type Metadata } from "../protocol/frame.ts";
import { ErrorCode, errorCodeFromNumber, errorCodeNumber, RpcError } from "../protocol/rpc_error.ts";
import type { BidiStream } from "../transport/types.ts";
import { TransportError } from "../transport/transport_error.ts";
import type { FrameReader } from "../rpc/_frames.ts";

const LARGE = 4096;

/** Writes one frame; large payloads go as a separate write so they are not copied. */
export async function writeFrame(s: BidiStream, codec: FrameCodec, frame: Frame): Promise<void> {
  const payload = "payload" in frame ? frame.payload : undefined;
  if (payload && payload.length > LARGE) {
    await s.write(codec.encodeHeader(frame));
    await s.write(payload);
  } else {
    await s.write(codec.encode(frame));
  }
}

/** Converts what a stream read or write threw into an RpcError. */
export function streamError(e: unknown): RpcError {
  if (e instanceof RpcError) return e;
  if (e instanceof TransportError) {
    const code = e.code === "STREAM_RESET" || e.code === "STOP_SENDING" ? ErrorCode.CANCELLED : ErrorCode.UNAVAILABLE;
    return new RpcError(code, e.message, undefined, { cause: e });
  }
  return RpcError.from(e, ErrorCode.INTERNAL);
}

/**
 * One EchoStream. Iterate it (`for await (const frame of stream)`) or call `recv()`; `send()`
 * waits for flow credit, so a slow receiver bounds the sender's memory.
 *
 * @example Sending and receiving
 * ```ts
 * // const stream = await client.createStream("audio.stream");
 * // await stream.send(new Uint8Array([1, 2, 3]));
 * // await stream.end();
 * // for await (const frame of stream) console.log(frame);
 * ```
 */
export class EchoStream implements AsyncIterable<Uint8Array> {
  /** The stream's name. */
  readonly name: string;
  /** Metadata the opener attached. */
  readonly metadata: Metadata;
  readonly #s: BidiStream;
  readonly #reader: FrameReader;
  readonly #codec: FrameCodec;
  #ended = false;
  #aborted: RpcError | undefined;
  #received = 0;
  #sent = 0;

  /** @internal Made by `createStream` and for stream handlers. */
  constructor(name: string, metadata: Metadata, s: BidiStream, reader: FrameReader, codec: FrameCodec) {
    this.name = name;
    this.metadata = metadata;
    this.#s = s;
    this.#reader = reader;
    this.#codec = codec;
  }

  /** Frames sent and received so far. */
  get counts(): { sent: number; received: number } {
    return { sent: this.#sent, received: this.#received };
  }

  /**
   * Sends one frame.
   * @throws {TypeError} When `data` is not a Uint8Array.
   * @throws {RpcError} `FAILED_PRECONDITION` after `end()`/`abort()`; `CANCELLED` when the peer
   *   aborted; `UNAVAILABLE` when the connection is gone.
   */
  async send(data: Uint8Array): Promise<void> {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(`stream frames must be Uint8Array, received ${data === null ? "null" : typeof data}`);
    }
    if (this.#aborted) throw this.#aborted;
    if (this.#ended) throw new RpcError(ErrorCode.FAILED_PRECONDITION, `stream "${this.name}" was ended; cannot send`);
    try {
      await writeFrame(this.#s, this.#codec, { type: FrameType.DATA, flags: FrameFlag.RAW, payload: data });
      this.#sent++;
    } catch (e) {
      throw streamError(e);
    }
  }

  /**
   * The next frame, or `undefined` once the peer ended its direction.
   * @throws {RpcError} The peer's abort reason (`CANCELLED` by default), or `UNAVAILABLE`.
   */
  async recv(): Promise<Uint8Array | undefined> {
    if (this.#aborted) throw this.#aborted;
    let f: Frame | undefined;
    try {
      f = await this.#reader.next();
    } catch (e) {
      throw (this.#aborted ??= streamError(e));
    }
    if (!f) return undefined;
    if (f.type === FrameType.DATA) {
      this.#received++;
      return f.payload;
    }
    if (f.type === FrameType.ERROR) {
      this.#aborted = new RpcError(errorCodeFromNumber(f.code), f.message || `stream "${this.name}" aborted by the peer`);
      throw this.#aborted;
    }
    throw (this.#aborted = new RpcError(ErrorCode.DATA_LOSS, `unexpected frame type ${f.type} on stream "${this.name}"`));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    while (true) {
      const f = await this.recv();
      if (f === undefined) return;
      yield f;
    }
  }

  /** Ends this side's direction (the peer's iteration finishes); receiving continues. */
  async end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    try {
      await this.#s.end();
    } catch (e) {
      throw streamError(e);
    }
  }

  /**
   * @internal Called when the stream handler has returned: stops receiving what the peer may
   * still send, so the QUIC stream is released (quinn keeps a stream, and its slot in the
   * concurrent-stream limit, until its receiving side is read to the end or stopped).
   */
  async release(): Promise<void> {
    if (this.#reader.finished) return;
    this.#s.stopSending(0);
    await this.#reader.cancel().catch(() => {});
  }

  /**
   * Aborts the stream in both directions: the peer's next `recv()` throws this reason.
   * @param reason An RpcError, or a message for a `CANCELLED` one.
   */
  async abort(reason: RpcError | string = "stream aborted"): Promise<void> {
    if (this.#aborted) return;
    const err = typeof reason === "string" ? new RpcError(ErrorCode.CANCELLED, reason) : reason;
    this.#aborted = err;
    if (!this.#ended) {
      this.#ended = true;
      // An ERROR frame then FIN, not a bare reset: Deno cannot send reset codes, and the frame
      // tells the peer why on every stack.
      try {
        await this.#s.write(this.#codec.encode({
          type: FrameType.ERROR,
          flags: 0,
          code: errorCodeNumber(err.code),
          message: err.message,
          payload: new Uint8Array(0),
        }));
        await this.#s.end();
      } catch { /* the peer is gone already */ }
    }
    this.#s.stopSending(errorCodeNumber(err.code));
    await this.#reader.cancel().catch(() => {});
  }
}
