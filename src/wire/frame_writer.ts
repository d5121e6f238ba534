// Writing frames on a transport stream: large payloads go as their own write (never copied), and
// the GOAWAY-then-close a connection ends with when the other side broke a rule.

import type { FrameCodec } from "../protocol/codec.ts";
import { type Frame, FrameType } from "../protocol/frame.ts";
import { errorCodeNumber, type RpcError } from "../protocol/rpc_error.ts";
import type { Connection, SendStream } from "../transport/types.ts";

/** Payloads above this many bytes are written apart from their header instead of copied into one buffer. */
const LARGE = 4096;

/**
 * Encodes a frame for writing: one buffer, or header and payload apart when the payload is
 * large (so it is not copied). Throws what the codec throws, before anything is written.
 */
export function encodeFrame(codec: FrameCodec, frame: Frame): Uint8Array[] {
  const payload = "payload" in frame ? frame.payload : undefined;
  return payload && payload.length > LARGE ? [codec.encodeHeader(frame), payload] : [codec.encode(frame)];
}

/** Writes the parts `encodeFrame` made, in order. */
export async function writeParts(s: SendStream, parts: Uint8Array[]): Promise<void> {
  for (const part of parts) await s.write(part);
}

/** Writes one frame; large payloads go as a separate write so they are not copied. */
export function writeFrame(s: SendStream, codec: FrameCodec, frame: Frame): Promise<void> {
  return writeParts(s, encodeFrame(codec, frame));
}

/**
 * Tells the peer why on stream `s` (a GOAWAY with `err`'s code and message; `end` ends the stream
 * after it), then closes the connection with `closeCode` once the frame had a moment to arrive (a
 * close sent at once could overtake it), or after 1 s if the write is held by flow control (a peer
 * that does not read its control stream must not keep its connection that way). Resolves once the
 * GOAWAY is written or cannot be.
 */
export async function goAwayAndClose(frames: FrameCodec, conn: Connection, s: SendStream, err: RpcError, closeCode: number, end: boolean): Promise<void> {
  const close = () => void conn.close(closeCode, err.message).catch(() => {});
  const stuck = setTimeout(close, 1000);
  try {
    await s.write(frames.encode({ type: FrameType.GOAWAY, flags: 0, code: errorCodeNumber(err.code), reason: err.message, payload: new Uint8Array(0) }));
    if (end) await s.end();
  } catch { /* gone */ }
  clearTimeout(stuck);
  setTimeout(close, 50);
}

/**
 * Bytes of a writer's first batch arena. Each new arena doubles the last, up to {@link ARENA}, or
 * fits the backlog if that is larger: a stream that sends a frame now and then keeps a small one,
 * a busy one reaches 64 KiB within a few arenas. (A 64 KiB arena from the start cost 64 KiB per
 * stream and direction: with 10,000 streams, 1.3 GB of fresh pages touched while opening them and
 * 1.2 GB of heap; issue 15.)
 */
const FIRST_ARENA = 512;
/** The largest arena a writer grows to for its batches (a larger backlog gets one that fits it). */
const ARENA = 64 * 1024;
/**
 * Backlog (bytes queued, not yet taken by the stack) past which `FrameWriter.write` asks its caller
 * to wait. One EchoStream window (`STREAM_WINDOW`): DATA is bounded by the peer's credit anyway, and
 * a whole window handed over in one write per event-loop turn beat 64 KiB by about 3% on Bun's
 * 1 KiB streaming (issue 15).
 */
const HIGH_WATER = 256 * 1024;
/**
 * On a stack that takes bytes synchronously, a backlog of this many bytes is handed over at once
 * rather than at the end of the event-loop turn. Bun, 1 KiB streaming, ours against a same-process
 * alternation of both (issue 15): +4% messages/s at the median of eight paired runs (−1% to +8%),
 * because the stack then sends while the loop still encodes. Smaller frames keep their batching.
 */
export const SYNC_WRITE_AT = 1024;
const EMPTY_BYTES = new Uint8Array(0);

/**
 * Writes one stream's frames in order, batching them: small frames are encoded into one buffer
 * and go to the stack as one write, taken together while the stack is still busy with the
 * previous one, or (a stack that takes bytes synchronously, `SendStream.writeSync`: Bun) at the
 * end of the event-loop turn, so a burst of small sends is one native write, not one per frame.
 * On such a stack a batch that reaches {@link SYNC_WRITE_AT} bytes goes at once instead: the
 * stack starts sending while the caller is still producing.
 * A payload above {@link LARGE} bytes is never copied: it goes as its own write, by reference,
 * and its `write` resolves only once the stack has taken it, so the caller may then reuse it.
 *
 * A failed write fails the writer: that write's waiters and every later write reject with the
 * stack's error (frames accepted into the batch before it are lost with the stream).
 */
export class FrameWriter {
  readonly #s: SendStream;
  readonly #codec: FrameCodec;
  readonly #sync: boolean;
  /** The batch being built is `#arena[#start, #end)`; bytes before `#start` were handed out. */
  #arena: Uint8Array = EMPTY_BYTES;
  /** The last view of the arena's start handed to `writeSync`, reused while the size repeats. */
  #view: Uint8Array = EMPTY_BYTES;
  #viewOf: Uint8Array = EMPTY_BYTES;
  #start = 0;
  #end = 0;
  /** Chunks cut from the batch or written by reference, waiting for the stack, in order. */
  readonly #queue: Uint8Array[] = [];
  #queueHead = 0;
  /** A write the stack has not finished taking. */
  #busy = false;
  /** A flush is scheduled for the end of this event-loop turn (stacks with `writeSync`). */
  #soon = false;
  readonly #flush = (): void => {
    this.#soon = false;
    if (!this.#busy) this.#pump();
  };
  #failed: unknown;
  #hasFailed = false;
  /** Bytes ever queued, and ever taken by the stack: a write is done once `#taken` passes its mark. */
  #queued = 0;
  #taken = 0;
  readonly #waiters: { mark: number; ok: () => void; fail: (e: unknown) => void }[] = [];
  #waitersHead = 0;
  /** The last plain DATA header encoded, by flags and payload length (headers repeat). */
  #hdrFlags = -1;
  #hdrLen = -1;
  #hdr: Uint8Array = EMPTY_BYTES;

  constructor(s: SendStream, codec: FrameCodec) {
    this.#s = s;
    this.#codec = codec;
    this.#sync = typeof s.writeSync === "function";
  }

  /** Bytes accepted but not yet taken by the stack. */
  get backlog(): number {
    return this.#queued - this.#taken;
  }

  /**
   * Queues `frame` behind every earlier one and starts writing.
   * @param untilTaken Wait until the stack has taken this frame even when it was copied.
   * @returns `undefined` when the caller need not wait (the frame's bytes were taken by the
   *   stack, or copied into the batch and the backlog is small); else a promise that settles
   *   once the stack has taken the frame. Rejects (never throws) with what the codec throws or
   *   the stack's write error.
   */
  write(frame: Frame, untilTaken = false): Promise<void> | undefined {
    if (this.#hasFailed) return Promise.reject(this.#failed);
    let byRef: Uint8Array | undefined;
    try {
      byRef = this.#encode(frame);
    } catch (e) {
      return Promise.reject(e);
    }
    if (byRef) {
      this.#cut();
      this.#queue.push(byRef);
      this.#queued += byRef.length;
    }
    const mark = this.#queued;
    if (this.#sync) {
      // The stack takes bytes synchronously: hand over what this turn of the event loop queued
      // as one write (one native call and one view, not one per frame) at its end, or at once
      // when it is already a packet's worth.
      if (!this.#busy && this.#queued - this.#taken >= SYNC_WRITE_AT) this.#pump();
      else if (!this.#busy && !this.#soon) {
        this.#soon = true;
        setImmediate(this.#flush);
      }
    } else if (!this.#busy) this.#pump();
    if (this.#taken >= mark) return undefined;
    if (this.#hasFailed) return Promise.reject(this.#failed);
    if (!byRef && !untilTaken && this.#queued - this.#taken <= HIGH_WATER) return undefined;
    return new Promise((ok, fail) => this.#waiters.push({ mark, ok, fail }));
  }

  /** Settles (never rejects) once every frame queued so far was taken by the stack, or writing failed. */
  idle(): Promise<void> {
    if (this.#taken >= this.#queued || this.#hasFailed) return Promise.resolve();
    return new Promise((ok) => this.#waiters.push({ mark: this.#queued, ok, fail: () => ok() }));
  }

  /** Appends the frame's bytes to the batch; returns its payload when that goes by reference. */
  #encode(frame: Frame): Uint8Array | undefined {
    const payload = "payload" in frame ? frame.payload : undefined;
    if (payload && payload.length > LARGE) {
      this.#append(this.#codec.encodeHeader(frame));
      return payload;
    }
    if (payload && frame.type === FrameType.DATA && frame.seq === undefined && frame.timestamp === undefined && frame.streamId === undefined) {
      // A plain DATA header depends only on the flags and the payload length.
      if (frame.flags !== this.#hdrFlags || payload.length !== this.#hdrLen) {
        this.#hdr = this.#codec.encodeHeader(frame);
        this.#hdrFlags = frame.flags;
        this.#hdrLen = payload.length;
      }
      this.#append(this.#hdr, payload);
      return undefined;
    }
    this.#append(this.#codec.encode(frame));
    return undefined;
  }

  #append(a: Uint8Array, b: Uint8Array = EMPTY_BYTES): void {
    const n = a.length + b.length;
    if (this.#end + n > this.#arena.length) {
      // A new arena: what was handed out stays with the old one (the stack may still read it).
      const pending = this.#end - this.#start;
      const size = this.#arena.length === 0 ? FIRST_ARENA : Math.min(ARENA, 2 * this.#arena.length);
      const next = new Uint8Array(Math.max(size, 2 * (pending + n)));
      if (pending > 0) next.set(this.#arena.subarray(this.#start, this.#end));
      this.#arena = next;
      this.#start = 0;
      this.#end = pending;
    }
    const arena = this.#arena;
    const at = this.#end;
    // A header is a few bytes: a loop beats `set`'s per-call cost (measured on Bun).
    if (a.length <= 16) for (let i = 0; i < a.length; i++) arena[at + i] = a[i];
    else arena.set(a, at);
    if (b.length > 0) arena.set(b, at + a.length);
    this.#end += n;
    this.#queued += n;
  }

  /** Closes the batch being built into a chunk of the queue. */
  #cut(): void {
    if (this.#end > this.#start) {
      this.#queue.push(this.#arena.subarray(this.#start, this.#end));
      this.#start = this.#end;
    }
  }

  /** Hands queued chunks to the stack, one write at a time, until it is busy or none is left. */
  #pump(): void {
    if (this.#sync && this.#queueHead === this.#queue.length) {
      // The usual case on a stack that takes bytes synchronously: only the batch waits. It goes
      // without passing through the queue, and its view is reused while its size repeats (the
      // stack copies in `writeSync`, so the arena is free again once it returns true).
      if (this.#hasFailed) return;
      const n = this.#end - this.#start;
      if (n === 0) {
        this.#start = this.#end = 0;
        return;
      }
      let chunk = this.#view;
      if (this.#start !== 0 || chunk.length !== n || this.#viewOf !== this.#arena) {
        chunk = this.#arena.subarray(this.#start, this.#end);
        if (this.#start === 0) {
          this.#view = chunk;
          this.#viewOf = this.#arena;
        }
      }
      this.#start = this.#end;
      let took: boolean;
      try {
        took = this.#s.writeSync!(chunk);
      } catch (e) {
        return this.#fail(e);
      }
      if (!took) return this.#writeAsync(chunk);
      this.#start = this.#end = 0;
      return this.#done(n);
    }
    const q = this.#queue;
    // Bounded: each round hands over one chunk, and no more are queued meanwhile.
    for (let round = 0; round <= q.length + 1 && !this.#hasFailed; round++) {
      this.#cut();
      if (this.#queueHead === q.length) {
        if (q.length !== 0) q.length = 0;
        this.#queueHead = 0;
        // Everything was taken: the arena is free again from its start.
        this.#start = this.#end = 0;
        return;
      }
      const chunk = q[this.#queueHead]!;
      q[this.#queueHead++] = EMPTY_BYTES;
      if (this.#sync) {
        let took: boolean;
        try {
          took = this.#s.writeSync!(chunk);
        } catch (e) {
          return this.#fail(e);
        }
        if (took) {
          this.#done(chunk.length);
          continue;
        }
      }
      return this.#writeAsync(chunk);
    }
  }

  /** Hands `chunk` to the stack's waiting write; the writer is busy until it is taken. */
  #writeAsync(chunk: Uint8Array): void {
    this.#busy = true;
    this.#s.write(chunk).then(
      () => {
        this.#busy = false;
        this.#done(chunk.length);
        this.#pump();
      },
      (e) => this.#fail(e),
    );
  }

  #done(bytes: number): void {
    this.#taken += bytes;
    const w = this.#waiters;
    while (this.#waitersHead < w.length && w[this.#waitersHead]!.mark <= this.#taken) {
      const x = w[this.#waitersHead]!;
      w[this.#waitersHead++] = undefined!;
      x.ok();
    }
    if (this.#waitersHead === w.length && w.length !== 0) {
      w.length = 0;
      this.#waitersHead = 0;
    }
  }

  #fail(e: unknown): void {
    this.#busy = false;
    this.#hasFailed = true;
    this.#failed = e;
    this.#queue.length = 0;
    this.#queueHead = 0;
    const w = this.#waiters;
    for (let i = this.#waitersHead; i < w.length; i++) w[i]!.fail(e);
    w.length = 0;
    this.#waitersHead = 0;
  }
}
