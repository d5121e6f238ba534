// Reading frames off a transport stream: a reader that yields whole frames from a RecvStream,
// and the connection-wide budget for the incomplete frames all its readers hold.

import type { FrameCodec } from "../protocol/codec.ts";
import { DecodeError } from "../protocol/decode_error.ts";
import type { Frame } from "../protocol/frame.ts";
import { ErrorCode, RpcError } from "../protocol/rpc_error.ts";
import type { BatchReads, RecvStream } from "../transport/types.ts";

/**
 * Bytes a connection may hold in incomplete frames over all its incoming streams at once. The
 * splitter allocates a frame's whole declared size when its header arrives, so without this a
 * peer could announce a maximum-size frame on every stream it may open and send none of it.
 */
export interface ReceiveBudget {
  used: number;
  readonly max: number;
  /** Told when a stream is refused for going over it. */
  onRefused?: () => void;
}

const NO_FRAMES: Frame[] = [];

/** Yields whole frames from a stream; `undefined` at a clean end on a frame boundary. */
export class FrameReader {
  /** The stack's reads: its own batches of chunks when it offers them (`RecvStream.batches`), else one chunk each. */
  readonly #it: { next(): Promise<IteratorResult<Uint8Array | Uint8Array[]>>; return?(): Promise<unknown> };
  /** The same reads when they are the stack's batches (`#it` itself): their results need converting. */
  readonly #batches: BatchReads | undefined;
  readonly #splitter;
  #queue: Frame[] = [];
  #head = 0;
  #done = false;
  readonly #budget: ReceiveBudget | undefined;
  /** What this reader holds of the budget now. */
  #held = 0;

  constructor(stream: RecvStream, codec: FrameCodec, budget?: ReceiveBudget) {
    this.#batches = stream.batches?.();
    this.#it = this.#batches ?? stream[Symbol.asyncIterator]();
    this.#splitter = codec.splitter();
    this.#budget = budget;
  }

  /** Gives back what this reader holds of the budget. */
  #release(): void {
    if (this.#budget && this.#held) {
      this.#budget.used -= this.#held;
      this.#held = 0;
    }
  }

  /**
   * The next frame.
   * @throws {RpcError} `DATA_LOSS` for bytes that are not frames or a stream cut inside a frame;
   *   `RESOURCE_EXHAUSTED` for a frame over the size limit or the receive budget.
   * @throws {TransportError} The transport's own error when the stream fails (unconverted: callers
   *   tell a reset from a closed connection; `toRpcError` converts it for the application).
   */
  async next(): Promise<Frame | undefined> {
    while (this.#head >= this.#queue.length) {
      if (this.#done) return undefined;
      let r: IteratorResult<Uint8Array | Uint8Array[]>;
      try {
        // Awaited here, not through a then(): one promise fewer per request-path read.
        r = await this.#it.next();
      } catch (e) {
        return this.fail(e); // gives back the budget, rethrows (converted)
      }
      const frames = this.accept(r);
      if (frames === undefined) return undefined;
      this.#queue = frames;
      this.#head = 0;
    }
    return this.#queue[this.#head++];
  }

  /**
   * For a loop that reads a stream to its end a chunk at a time (a stream's pump), with one
   * promise per read, the stack's own: `queued()` first (frames `next()` already split off), else
   * await `pull()` and hand its result to `accept()` or its rejection to `fail()`. On thousands of
   * streams each carrying a frame per chunk this spends less per frame than `next()` (an async
   * function around the transport's own await).
   * @returns The frames already split off, without waiting; `undefined` when none are.
   */
  queued(): Frame[] | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const rest = this.#head === 0 ? this.#queue : this.#queue.slice(this.#head);
    this.#queue = NO_FRAMES;
    this.#head = 0;
    return rest;
  }

  /** The stack's next read, unconverted (see `queued()`); `undefined` once the stream is done. */
  pull(): Promise<IteratorResult<Uint8Array | Uint8Array[]>> | undefined {
    return this.#done ? undefined : this.#it.next();
  }

  /**
   * Fails with what a rejected `pull()` means.
   * @throws The transport's error, converted as `next()` throws it.
   */
  fail(e: unknown): never {
    this.#release(); // the stream failed: nothing of it is held any more
    throw this.#batches ? this.#batches.error(e) : e;
  }

  /**
   * The frames split off a read `pull()` gave (possibly none); `undefined` at a clean end on a
   * frame boundary.
   * @throws {RpcError} `DATA_LOSS` for bytes that are not frames or a stream cut inside a frame;
   *   `RESOURCE_EXHAUSTED` for a frame over the size limit or the receive budget; and, after a
   *   `done` read that was no FIN, the transport's error for the lost connection.
   */
  accept(r: IteratorResult<Uint8Array | Uint8Array[]>): Frame[] | undefined {
    try {
      if (r.done) {
        const lost = this.#batches?.ended();
        if (lost) throw lost; // not a FIN: the connection went (released below)
        this.#done = true;
        this.#release();
        this.#splitter.end();
        return undefined;
      }
      const v = r.value;
      let frames = NO_FRAMES;
      if (v instanceof Uint8Array) frames = this.#splitter.push(v);
      else {
        for (const chunk of v) {
          const more = this.#splitter.push(chunk);
          if (frames.length === 0) frames = more; // NO_FRAMES itself is never appended to
          else for (const f of more) frames.push(f);
        }
      }
      const b = this.#budget;
      if (b) {
        const now = this.#splitter.reserved;
        b.used += now - this.#held;
        this.#held = now;
        if (b.used > b.max && now > 0) {
          const held = b.used;
          this.#release();
          this.#done = true;
          b.onRefused?.();
          throw new RpcError(ErrorCode.RESOURCE_EXHAUSTED, `frame refused: the connection would hold ${held} bytes of incomplete frames (limit ${b.max}, maxBufferedBytes)`, { maxBufferedBytes: b.max });
        }
      }
      return frames;
    } catch (e) {
      this.#release();
      if (e instanceof DecodeError) {
        // Too large is a limit, not corruption: tell the sender so (it cannot know our limits).
        const code = e.code === "FRAME_TOO_LARGE" ? ErrorCode.RESOURCE_EXHAUSTED : ErrorCode.DATA_LOSS;
        throw new RpcError(code, `${code === ErrorCode.DATA_LOSS ? "malformed frame from the peer" : "frame refused"}: ${e.message}`, undefined, { cause: e });
      }
      throw e;
    }
  }

  /**
   * The next frame when one is already split off a chunk read earlier, without waiting;
   * `undefined` when `next()` has to read (or the stream is done).
   */
  take(): Frame | undefined {
    return this.#head < this.#queue.length ? this.#queue[this.#head++] : undefined;
  }

  /** Whether the stream has been read to its end (or reading was stopped). */
  get finished(): boolean {
    return this.#done;
  }

  /** Stops reading (releases the iterator). */
  async cancel(): Promise<void> {
    this.#done = true;
    this.#release();
    await this.#it.return?.();
  }
}
