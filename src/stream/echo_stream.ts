/**
 * `EchoStream`: an ordered, reliable byte-frame stream between two peers, on its own QUIC
 * stream (no head-of-line blocking between streams). Either side sends frames, ends its
 * direction, or aborts the whole stream.
 *
 * @module
 */

import type { FrameCodec } from "../protocol/codec.ts";
import { type DataFrame, type Frame, FrameFlag, FrameType, type Metadata } from "../protocol/frame.ts";
import { ErrorCode, errorCodeFromNumber, errorCodeNumber, RpcError } from "../protocol/rpc_error.ts";
import type { BidiStream } from "../transport/types.ts";
import { TransportError } from "../transport/transport_error.ts";
import type { FrameReader } from "../wire/frame_reader.ts";
import { FrameWriter } from "../wire/frame_writer.ts";
import { toRpcError } from "../wire/errors.ts";
import { type SyncedClock, systemClock } from "../clock/sync.ts";
import { type AlignedFrame, plainStreamStats, type StreamStats, TimeSyncReceiver, type TimeSyncOptions } from "./time_sync.ts";
import type { LatencyPrior } from "./latency_prior.ts";

/** Datagram frames an unreliable stream queues for `recv()` before dropping new ones. */
const MAX_DATAGRAM_QUEUE = 4096;
const EMPTY: Uint8Array = new Uint8Array(0);
const RESOLVED: Promise<void> = Promise.resolve();
const DONE: IteratorResult<Uint8Array> = Object.freeze({ done: true, value: undefined });

/** A reader waiting for the next frame (`undefined`: the peer ended its direction). */
interface DirectReader {
  ok: (f: Uint8Array | undefined) => void;
  fail: (e: RpcError) => void;
}

/** @internal How an unreliable stream reaches the connection's datagrams. */
export interface DatagramLink {
  /** The stream's datagram id (chosen by the opener; even from clients, odd from servers). */
  id: number;
  /** Largest datagram the connection carries now. */
  maxSize(): number;
  send(bytes: Uint8Array): Promise<void>;
  /**
   * Routes this id's datagrams to `stream` (and hands it any that came early). Called by the
   * stream's constructor before it reads a frame: frames already read may end the stream at once,
   * and its end unregisters the route, so the route must exist by then.
   */
  register(stream: EchoStream): void;
  /** Stops routing this id's datagrams to the stream. */
  unregister(): void;
}

/** @internal What makes a stream time-synced and/or unreliable. */
export interface StreamMode {
  /** The other side's clock, for mapping its timestamps (time-synced streams). */
  clock: SyncedClock;
  /** Whether this side runs clock sync (PINGs); time-synced receiving needs it. */
  syncEnabled: boolean;
  timeSync?: TimeSyncOptions;
  /** The connection's transit estimate, shared by its time-synced streams (new ones start from it). */
  latencyPrior?: LatencyPrior;
  datagram?: DatagramLink;
  /** Datagram frames this stream dropped (bad, or queue full); added to the peer's count. */
  onDroppedDatagram?: () => void;
}

/** Defences a receiver applies to one stream (set by the serving side from its limits). */
export interface StreamGuard {
  /**
   * A byte rate limit: given bytes just consumed, how long (ms) to wait before granting the peer
   * credit for them. The sender slows down; nothing is dropped.
   */
  creditDelay?: (bytes: number) => number;
  /** End the stream after this long with no frame in either direction (0 or absent: never). */
  idleMs?: number;
  /** Told when the stream is ended for being idle (for the counters). */
  onIdle?: () => void;
}

/** Bytes of DATA payload a receiver buffers before the sender must wait (per direction). */
export const STREAM_WINDOW = 256 * 1024;

/** Credit is granted back in batches of this many consumed bytes. */
const GRANT_BATCH = STREAM_WINDOW / 4;
/** Streams made in this process: the k-th one's first grant comes at its own point (below). */
let streamsMade = 0;
/** The golden ratio's fractional part: k × this mod 1 spreads any run of k evenly over [0, 1). */
const GOLDEN = 0.6180339887498949;

/**
 * Consumed bytes before a new stream's first WINDOW: somewhere in (0, GRANT_BATCH], a different
 * point for each stream made. Streams opened together and fed at one rate (a fan-in of
 * time-synced streams) would otherwise all reach a batch at the same frame and write their WINDOW
 * frames in the same turn, every batch: at 1,000 streams × 160 B × 50 fps, a thousand writes every
 * 8.2 s, a stall that every stream's frames waited behind (docs/PERFORMANCE.md, "The 8-second
 * spike was credit"). Spread once, they stay spread: after the first, every stream grants each
 * GRANT_BATCH. The increment is always what was consumed, so the credit outstanding is unchanged.
 */
function firstGrantAt(): number {
  const f = (streamsMade++ * GOLDEN) % 1;
  return Math.max(1, Math.ceil(GRANT_BATCH * (1 - f)));
}

/**
 * One EchoStream. Iterate it (`for await (const frame of stream)`) or call `recv()`.
 *
 * Flow control is EchoStream's own, on every stack: the receiver grants credit (WINDOW frames)
 * as the application consumes frames, and `send()` waits while the sender has none, so a slow
 * or stalled consumer bounds memory on both sides to about {@link STREAM_WINDOW} bytes (QUIC's
 * own flow control does not do this on Bun, whose receiver buffers without limit). Ending a
 * direction is a DATA frame with the FIN flag, not the QUIC FIN, so credit can still flow back
 * after it; the QUIC stream ends once both directions have ended.
 *
 * @example Sending and receiving
 * ```ts
 * import { readFile } from "node:fs/promises";
 * import { RpcClient } from "@echostream/core";
 *
 * const client = await RpcClient.connect("127.0.0.1:5000", { ca: await readFile("ca.pem", "utf8") });
 * const stream = await client.createStream("audio.stream");
 * await stream.send(new Uint8Array([1, 2, 3]));
 * await stream.end(); // this side is done; the peer's frames still arrive
 * for await (const frame of stream) console.log(frame);
 * await client.close();
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
  /**
   * The send half: `open`; `ending` once `end()` is called (no new sends; sends queued before it
   * still go, then the FIN marker); `done` once the marker is written or cannot be.
   */
  #send: "open" | "ending" | "done" = "open";
  /** The send half was closed because the peer released the stream, not by `end()`. */
  #released = false;
  /** The receive half: `open` until the peer's FIN marker (or a failure) arrives. */
  #recvDone = false;
  /** The peer sent its FIN marker. */
  #eof = false;
  #quicEnded = false;
  #aborted: RpcError | undefined;
  /** Set once, when both halves are done: the one place a stream's connection state is freed. */
  #finished = false;
  readonly #onFinish: (() => void) | undefined;
  #received = 0;
  #sent = 0;
  // Receiving: frames not yet taken by recv(), their bytes, and bytes consumed but not yet granted.
  readonly #queue: Uint8Array[] = [];
  #queueHead = 0;
  #queued = 0;
  #consumed = 0;
  /** Consumed bytes at which the next WINDOW goes out: GRANT_BATCH after the first (firstGrantAt). */
  #grantAt = firstGrantAt();
  // Sending: credit the peer granted, and the sends (and the FIN marker) waiting for it, in call
  // order. A WINDOW frame wakes only the waiters its credit covers, from the head.
  #credit = STREAM_WINDOW;
  readonly #blocked: ({ bytes: number; go: () => void; fail: (e: RpcError) => void } | undefined)[] = [];
  #blockedHead = 0;
  // Receiving: wakes recv() when a frame, the end or a failure arrives.
  #wake: (() => void) | undefined;
  /**
   * The one reader waiting with nothing queued on a live stream (`recv()` or the iterator): the
   * next frame, the end or the failure settles it directly from `#notify`, with no async
   * function, wake-up chain or `.then` in between (one promise per frame when frames arrive one
   * at a time, as on thousands of streams). Other concurrent readers take the `#recvWait` path.
   */
  #direct: DirectReader | undefined;
  /** The holder `recv()` uses for `#direct` (free whenever `#direct` is not it). */
  readonly #recvDirect: DirectReader = { ok: () => {}, fail: () => {} };
  /** Writes this stream's frames in order, batching them (WINDOW frames go in between DATA). */
  readonly #writer: FrameWriter;
  readonly #mode: StreamMode | undefined;
  readonly #rt: TimeSyncReceiver | undefined;
  #seq = 0;
  #datagramDrops = 0;
  readonly #guard: StreamGuard | undefined;
  /** When a frame last went either way (`performance.now()`), for the idle limit. */
  #active = 0;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  /** @internal Made by `createStream` and for stream handlers. */
  constructor(
    name: string,
    metadata: Metadata,
    s: BidiStream,
    reader: FrameReader,
    codec: FrameCodec,
    mode?: StreamMode,
    onFinish?: () => void,
    guard?: StreamGuard,
  ) {
    this.name = name;
    this.metadata = metadata;
    this.#s = s;
    this.#writer = new FrameWriter(s, codec);
    this.#reader = reader;
    this.#codec = codec;
    this.#mode = mode;
    this.#onFinish = onFinish;
    if (mode?.timeSync) {
      this.#rt = new TimeSyncReceiver(mode.clock, mode.timeSync, mode.syncEnabled, mode.latencyPrior);
      this.#seq = mode.timeSync.initialSeq ?? 0;
    }
    this.#guard = guard;
    if (guard?.idleMs) {
      this.#active = performance.now();
      this.#armIdle(guard.idleMs);
    }
    // Before the pump: it may handle frames already read (an end marker among them) right away.
    mode?.datagram?.register(this);
    this.#pump();
  }

  /** Checks for idleness `ms` after the last activity; one timer per stream, re-armed lazily. */
  #armIdle(ms: number): void {
    const t = (this.#idleTimer = setTimeout(() => {
      if (this.#finished || this.#aborted) return;
      const quiet = performance.now() - this.#active;
      if (quiet < ms) return this.#armIdle(ms - quiet);
      this.#guard?.onIdle?.();
      this.abort(new RpcError(ErrorCode.DEADLINE_EXCEEDED, `stream "${this.name}" ended: no frame either way for ${ms} ms (stream idle limit)`)).catch(() => {});
    }, ms));
    (t as { unref?: () => void }).unref?.();
  }

  /** Whether frames carry sender timestamps and are released by `recvAligned()`. */
  get timeSynced(): boolean {
    return this.#rt !== undefined;
  }

  /** Whether frames travel as QUIC datagrams (no retransmission, no ordering). */
  get unreliable(): boolean {
    return this.#mode?.datagram !== undefined;
  }

  /**
   * This side's clock (ms): the clock `sendWithTimestamp` timestamps are on, and the one
   * `alignedTime` is given in.
   */
  now(): number {
    return this.#mode ? this.#mode.clock.local() : systemClock();
  }

  /** Frames sent and received so far. */
  get counts(): { sent: number; received: number } {
    return { sent: this.#sent, received: this.#received };
  }

  /** Bytes received but not yet taken by `recv()` (at most about the window). */
  get buffered(): number {
    return this.#queued;
  }

  #notify(): void {
    const d = this.#direct;
    if (d !== undefined) {
      // As `#recvWait` decides: a queued frame first, then the failure, then the end.
      if (this.#queueHead < this.#queue.length) {
        this.#direct = undefined;
        d.ok(this.#take());
      } else if (this.#aborted) {
        this.#direct = undefined;
        d.fail(this.#aborted);
      } else if (this.#eof) {
        this.#direct = undefined;
        d.ok(undefined);
      }
    }
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #waitChange(): Promise<void> {
    return new Promise((r) => {
      const prev = this.#wake;
      this.#wake = () => {
        prev?.();
        r();
      };
    });
  }

  /** Reads the peer's frames as they come: data is queued, credit and aborts take effect. */
  async #pump(): Promise<void> {
    let byPeer = false; // the peer aborted (ERROR frame), as opposed to a violation found here
    try {
      // One await per chunk read, not per frame: its frames are handled in a plain loop (on
      // thousands of streams each read carries about one frame, and the awaits were its cost).
      // The await is on the stack's own promise (`pull()`), converted here, not through a `then`
      // per read: on Bun each read's promises were garbage that filled the heap (docs/PERFORMANCE.md).
      const rd = this.#reader;
      chunks: for (;;) {
        let fs = rd.queued();
        if (fs === undefined) {
          const p = rd.pull();
          if (p === undefined) break;
          let r;
          try {
            r = await p;
          } catch (e) {
            rd.fail(e); // throws the transport's error
          }
          fs = rd.accept(r!);
          if (fs === undefined) break;
        }
        if (this.#idleTimer !== undefined) this.#active = performance.now();
        // One clock reading per chunk, taken when a time-synced frame needs it: its frames arrived together.
        let arrival = NaN;
        for (let i = 0; i < fs.length; i++) {
          const f = fs[i];
          if (f.type === FrameType.DATA) {
            if (this.#eof) throw new RpcError(ErrorCode.DATA_LOSS, `stream "${this.name}": the peer sent data after its end marker`);
            if (this.#rt && f.seq !== undefined && f.timestamp !== undefined && !(f.flags & FrameFlag.FIN)) {
              if (Number.isNaN(arrival)) arrival = this.#mode!.clock.local();
              this.#rt.push(f.seq, f.timestamp, f.payload, arrival);
              this.#received++;
              this.#grant(f.payload.length); // held by the jitter buffer, which bounds itself
            } else if (f.payload.length > 0 || !(f.flags & FrameFlag.FIN)) {
              this.#received++;
              const d = this.#direct;
              if (d !== undefined && this.#queueHead === this.#queue.length) {
                // A reader is waiting and nothing is queued: hand the frame over without queueing it.
                this.#direct = undefined;
                this.#delivered(f.payload.length);
                d.ok(f.payload);
              } else {
                this.#queue.push(f.payload);
                this.#queued += f.payload.length;
                if (this.#queued > 2 * STREAM_WINDOW + this.#codec.limits.maxFrameSize) {
                  throw new RpcError(ErrorCode.RESOURCE_EXHAUSTED, `stream "${this.name}": the peer sent past its flow-control window`);
                }
              }
            }
            if (f.flags & FrameFlag.FIN) {
              this.#eof = true;
              this.#rt?.end();
              this.#maybeFinishQuic();
              // Datagrams after the end marker are dropped: stop routing them now.
              this.#mode?.datagram?.unregister();
            }
          } else if (f.type === FrameType.WINDOW) {
            // Capped: a peer granting absurd credit must not push the count past exact integers.
            this.#credit = Math.min(this.#credit + f.increment, Number.MAX_SAFE_INTEGER);
            this.#wakeSenders();
            continue;
          } else if (f.type === FrameType.ERROR) {
            this.#aborted ??= new RpcError(errorCodeFromNumber(f.code), f.message || `stream "${this.name}" aborted by the peer`);
            byPeer = true;
            break chunks;
          } else {
            throw new RpcError(ErrorCode.DATA_LOSS, `unexpected frame type ${f.type} on stream "${this.name}"`);
          }
          this.#notify();
        }
      }
      if (!this.#eof && !this.#aborted) {
        this.#aborted = new RpcError(ErrorCode.UNAVAILABLE, `stream "${this.name}" ended without its end marker`);
      }
    } catch (e) {
      this.#aborted ??= toRpcError(e);
    }
    if (this.#aborted) {
      const err = this.#aborted;
      if (!byPeer && !this.#quicEnded) {
        // A protocol violation found here: tell the peer why before ending our half.
        this.#quicEnded = true;
        this.#write({ type: FrameType.ERROR, flags: 0, code: errorCodeNumber(err.code), message: err.message, payload: EMPTY })
          .then(() => this.#s.end()).catch(() => {});
      } else this.#s.end().catch(() => {});
      // Stop reading what the peer may still send: nobody will take it, and Bun's receiver
      // would buffer it without limit.
      if (!this.#reader.finished) {
        this.#s.stopSending(errorCodeNumber(err.code));
        this.#reader.cancel().catch(() => {});
      }
      this.#rt?.fail(err);
      this.#failSenders(err);
    } else if (this.#send === "open") {
      // The peer ended its QUIC stream after its end marker while ours is still open: its side is
      // gone (a stream handler that returned stops reading), so nothing sent now could arrive.
      // Close our half too, or the stream and its slot are held for the connection's life.
      this.#send = "done";
      this.#released = true;
      this.#failSenders(new RpcError(ErrorCode.FAILED_PRECONDITION, `stream "${this.name}" was released by the peer; cannot send`));
      this.#maybeFinishQuic();
    }
    this.#recvDone = true;
    this.#notify();
    this.#maybeFinish();
  }

  /**
   * Waits until the peer's credit covers `bytes` (at most one window) and takes it. Callers are
   * served in call order; the FIN marker queues here with 0 bytes, so it goes after every send
   * called before `end()`.
   */
  #acquire(bytes: number): Promise<void> | undefined {
    if (this.#blockedHead === this.#blocked.length && this.#credit >= Math.min(bytes, STREAM_WINDOW)) {
      this.#credit -= bytes;
      return undefined;
    }
    return new Promise((go, fail) => this.#blocked.push({ bytes, go, fail }));
  }

  /** Hands credit to the blocked senders it covers, oldest first; the rest keep waiting. */
  #wakeSenders(): void {
    const q = this.#blocked;
    while (this.#blockedHead < q.length) {
      const w = q[this.#blockedHead]!;
      if (this.#credit < Math.min(w.bytes, STREAM_WINDOW)) break;
      q[this.#blockedHead++] = undefined;
      this.#credit -= w.bytes;
      w.go();
    }
    if (this.#blockedHead === q.length) {
      q.length = 0;
      this.#blockedHead = 0;
    }
  }

  #failSenders(err: RpcError): void {
    const q = this.#blocked;
    for (let i = this.#blockedHead; i < q.length; i++) q[i]!.fail(err);
    q.length = 0;
    this.#blockedHead = 0;
  }

  /**
   * Frees what the connection holds for this stream once both halves are done (or it was
   * aborted): the datagram route and the peer's live-stream count. Runs once, on either side,
   * however the stream ended.
   */
  #maybeFinish(): void {
    if (this.#finished) return;
    if (!this.#aborted && !(this.#send === "done" && this.#recvDone)) return;
    this.#finished = true;
    clearTimeout(this.#idleTimer);
    this.#mode?.datagram?.unregister();
    this.#onFinish?.();
  }

  /** Grants the peer credit for `n` consumed bytes, in batches. */
  #grant(n: number): void {
    this.#consumed += n;
    if (this.#consumed >= this.#grantAt && !this.#eof && !this.#aborted) {
      const increment = this.#consumed;
      this.#consumed = 0;
      this.#grantAt = GRANT_BATCH;
      const delay = this.#guard?.creditDelay?.(increment) ?? 0;
      const send = () => {
        if (!this.#eof && !this.#aborted) this.#write({ type: FrameType.WINDOW, flags: 0, increment }).catch(() => {});
      };
      if (delay > 0) setTimeout(send, Math.min(delay, 2 ** 31 - 1));
      else send();
    }
  }

  /** @internal A DATA frame that came as a datagram, at local time `t`. */
  receiveDatagram(f: Frame, t: number): void {
    if (f.type !== FrameType.DATA || this.#aborted) return this.#dropDatagram();
    if (this.#rt) {
      if (f.seq === undefined || f.timestamp === undefined) return this.#dropDatagram();
      this.#received++;
      this.#rt.push(f.seq, f.timestamp, f.payload, t);
      return;
    }
    if (this.#eof || this.#queue.length - this.#queueHead >= MAX_DATAGRAM_QUEUE) return this.#dropDatagram();
    this.#queue.push(f.payload);
    this.#queued += f.payload.length;
    this.#received++;
    this.#notify();
  }

  #dropDatagram(): void {
    this.#datagramDrops++;
    this.#mode?.onDroppedDatagram?.();
  }

  /** Queues a frame behind every earlier one; settles once the stack has taken it. */
  #write(frame: Frame): Promise<void> {
    if (this.#idleTimer !== undefined) this.#active = performance.now();
    return this.#writer.write(frame, true) ?? RESOLVED;
  }

  #maybeFinishQuic(): void {
    if (this.#send === "done" && this.#eof && !this.#quicEnded) {
      this.#quicEnded = true;
      this.#writer.idle().then(() => this.#s.end()).catch(() => {});
    }
  }

  /**
   * Sends one frame; waits while the peer has granted no credit. Once it resolves, `data` is
   * the caller's again (it may be overwritten): a payload of up to 4 KiB was copied into the
   * stream's write batch, a larger one was handed to the stack by reference and waited for.
   * @throws {TypeError} When `data` is not a Uint8Array.
   * @throws {RpcError} `FAILED_PRECONDITION` after `end()`/`abort()`; the peer's abort reason
   *   (`CANCELLED` by default); `UNAVAILABLE` when the connection is gone.
   */
  send(data: Uint8Array): Promise<void> {
    // Not `async`: called once per message, and a frame the writer took at once needs no promise
    // of its own (the shared resolved one). Every failure is still a rejection, never a throw.
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(new TypeError(`stream frames must be Uint8Array, received ${data === null ? "null" : typeof data}`));
    }
    if (this.#send !== "open") return Promise.reject(this.#sendClosed());
    try {
      if (this.#rt) return this.sendWithTimestamp(data, this.now());
      if (this.#mode?.datagram) return this.#sendDatagram({ type: FrameType.DATA, flags: FrameFlag.RAW, streamId: this.#mode.datagram.id, seq: this.#seq++, payload: data });
      return this.#sendReliable({ type: FrameType.DATA, flags: FrameFlag.RAW, payload: data }) ?? RESOLVED;
    } catch (e) {
      return Promise.reject(e); // a stack's write that threw instead of rejecting
    }
  }

  #sendClosed(): RpcError {
    const why = this.#released ? "was released by the peer (its handler returned)" : "was ended";
    return new RpcError(ErrorCode.FAILED_PRECONDITION, `stream "${this.name}" ${why}; cannot send`);
  }

  /**
   * Writes a DATA frame on the stream once the peer has granted credit for its payload. No
   * promise when it needs no wait: credit was there and the writer took the frame (a small
   * payload is copied into its batch; a large one goes by reference, and is waited for until
   * the stack has taken it, so the caller may reuse its buffer once this settles).
   */
  #sendReliable(frame: DataFrame): Promise<void> | undefined {
    if (this.#aborted) return Promise.reject(this.#aborted);
    const wait = this.#acquire(frame.payload.length);
    return wait ? wait.then(() => this.#put(frame)) : this.#put(frame);
  }

  /** Hands a DATA frame whose credit is taken to the writer. */
  #put(frame: DataFrame): Promise<void> | undefined {
    if (this.#aborted) return Promise.reject(this.#aborted);
    if (this.#idleTimer !== undefined) this.#active = performance.now();
    const w = this.#writer.write(frame);
    if (!w) {
      this.#sent++;
      return undefined;
    }
    return w.then(() => void this.#sent++, (e) => {
      throw (this.#aborted ??= toRpcError(e));
    });
  }

  async #sendDatagram(frame: Frame): Promise<void> {
    if (this.#aborted) throw this.#aborted;
    const link = this.#mode!.datagram!;
    let bytes: Uint8Array;
    try {
      bytes = this.#codec.encode(frame);
    } catch (e) {
      throw new RpcError(ErrorCode.INVALID_ARGUMENT, `stream "${this.name}": ${(e as Error).message}`, undefined, { cause: e });
    }
    const max = link.maxSize();
    if (bytes.length > max) {
      throw new RpcError(
        ErrorCode.INVALID_ARGUMENT,
        `stream "${this.name}" is unreliable: a frame of ${bytes.length} bytes (payload ${"payload" in frame ? frame.payload.length : 0} + header) exceeds the connection's datagram limit of ${max} bytes`,
        { size: bytes.length, max },
      );
    }
    try {
      await link.send(bytes);
      this.#sent++;
    } catch (e) {
      throw toRpcError(e);
    }
  }

  /**
   * Sends one frame stamped with `timestampMs`, a time on this side's clock (see `now()`); the
   * receiver releases it at that time mapped onto its own clock plus its playout latency.
   *
   * @example
   * ```ts
   * import { readFile } from "node:fs/promises";
   * import { RpcClient } from "@echostream/core";
   *
   * const client = await RpcClient.connect("127.0.0.1:5000", { ca: await readFile("ca.pem", "utf8") });
   * const synced = await client.createStream("audio.sync").withTimeSync().build();
   * const frame = new Uint8Array(160); // 20 ms of 8 kHz audio
   * await synced.sendWithTimestamp(frame, synced.now());
   * ```
   * @throws {RpcError} `FAILED_PRECONDITION` on a stream not built `withTimeSync()`, or after
   *   `end()`; `INVALID_ARGUMENT` for a timestamp that is not a finite number ≥ 0, or (unreliable
   *   streams) a frame larger than one datagram; `UNAVAILABLE` when the connection is gone.
   * @throws {TypeError} When `data` is not a Uint8Array.
   */
  sendWithTimestamp(data: Uint8Array, timestampMs: number): Promise<void> {
    // Not `async`: once per frame per stream, and a frame the writer took at once needs no
    // promise of its own (the shared resolved one). Every failure is still a rejection.
    try {
      if (!(data instanceof Uint8Array)) {
        throw new TypeError(`stream frames must be Uint8Array, received ${data === null ? "null" : typeof data}`);
      }
      if (!this.#rt) throw this.#notTimeSynced();
      if (typeof timestampMs !== "number" || !Number.isFinite(timestampMs) || timestampMs < 0) {
        throw new RpcError(ErrorCode.INVALID_ARGUMENT, `stream "${this.name}": timestamp must be a finite number of ms >= 0, received ${String(timestampMs)}`);
      }
      if (this.#send !== "open") throw this.#sendClosed();
      if (this.#seq > Number.MAX_SAFE_INTEGER) throw new RpcError(ErrorCode.OUT_OF_RANGE, `stream "${this.name}": sequence numbers exhausted`);
      const seq = this.#seq++;
      const frame: DataFrame = { type: FrameType.DATA, flags: FrameFlag.RAW, seq, timestamp: timestampMs, payload: data };
      if (this.#mode?.datagram) {
        frame.streamId = this.#mode.datagram.id;
        return this.#sendDatagram(frame);
      }
      return this.#sendReliable(frame) ?? RESOLVED;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * The next frame of a time-synced stream, released when this side's clock reaches its
   * `alignedTime` (never early), in timestamp order; `undefined` once the peer ended and every
   * buffered frame was released.
   *
   * @example
   * ```ts
   * import { streamHandler } from "@echostream/core";
   *
   * function play(data: Uint8Array, atMs: number): void {
   *   console.log(`play ${data.length} bytes at ${atMs}`); // hand the frame to the audio device
   * }
   *
   * export const audioSync = streamHandler("audio.sync", async (_ctx, synced) => {
   *   for (let f = await synced.recvAligned(); f; f = await synced.recvAligned()) play(f.data, f.alignedTime);
   * });
   * ```
   * @throws {RpcError} `FAILED_PRECONDITION` on a stream not built `withTimeSync()` (or with
   *   clock sync disabled); `UNAVAILABLE` when no clock sample arrived within `syncTimeoutMs`,
   *   or the connection is gone; the peer's abort reason.
   */
  recvAligned(): Promise<AlignedFrame | undefined> {
    if (!this.#rt) return Promise.reject(this.#notTimeSynced());
    return this.#rt.recv();
  }

  /**
   * Hands every frame of a time-synced stream to `fn` at its release (when this side's clock
   * reaches its `alignedTime`, in timestamp order, as {@link recvAligned} would return it),
   * called from the release itself: no promise and no resumed `async` function per frame, for
   * receivers of many streams. `fn` is not awaited: keep it short, or hand the work off. The
   * promise resolves once the peer ended and every buffered frame was handed over, and rejects
   * with the stream's failure (after the frames buffered before it) or with what `fn` threw (the
   * frames after that stay for `recvAligned`). One reader at a time: not beside a waiting
   * `recvAligned()`, which itself refuses while this runs.
   *
   * @example
   * ```ts
   * import { streamHandler } from "@echostream/core";
   *
   * function play(data: Uint8Array, atMs: number): void {
   *   console.log(`play ${data.length} bytes at ${atMs}`); // hand the frame to the audio device
   * }
   *
   * export const audioSync = streamHandler("audio.sync", (_ctx, synced) =>
   *   synced.forEachAligned((f) => play(f.data, f.alignedTime)));
   * ```
   * @throws {RpcError} (as rejections) `FAILED_PRECONDITION` on a stream not built
   *   `withTimeSync()` (or with clock sync disabled) or one already being read; `UNAVAILABLE`
   *   when no clock sample arrived within `syncTimeoutMs`, or the connection is gone; the peer's
   *   abort reason.
   */
  forEachAligned(fn: (frame: AlignedFrame) => void): Promise<void> {
    if (!this.#rt) return Promise.reject(this.#notTimeSynced());
    return this.#rt.forEach(fn);
  }

  /** What the time-synced calls throw on a stream not built `withTimeSync()`. */
  #notTimeSynced(): RpcError {
    return new RpcError(ErrorCode.FAILED_PRECONDITION, `stream "${this.name}" is not time-synced: build it with withTimeSync()`);
  }

  /**
   * Counters and latencies: `received`, `delivered`, `late`, `lost`, `duplicates`, `reordered`,
   * `latencyMs`, `targetLatencyMs`, `jitterMs`, `transitP50Ms`, `transitP99Ms`,
   * `bufferedFrames` and more (see {@link StreamStats}). A stream that is not time-synced counts
   * only what it sent and received.
   */
  stats(): StreamStats {
    if (this.#rt) return this.#rt.stats(this.#sent);
    const buffered = this.#queue.length - this.#queueHead;
    return plainStreamStats({
      received: this.#received,
      delivered: this.#received - buffered,
      overflowDrops: this.#datagramDrops,
      bufferedFrames: buffered,
      sent: this.#sent,
    });
  }

  /**
   * The next frame, or `undefined` once the peer ended its direction.
   * @throws {RpcError} The peer's abort reason (`CANCELLED` by default), or `UNAVAILABLE`.
   */
  recv(): Promise<Uint8Array | undefined> {
    // A frame already queued costs one resolved promise, not an async function's ticks.
    if (this.#queueHead < this.#queue.length) return Promise.resolve(this.#take());
    if (this.#direct === undefined && !this.#aborted && !this.#eof) {
      const d = this.#recvDirect;
      return new Promise((ok, fail) => {
        d.ok = ok;
        d.fail = fail;
        this.#direct = d;
      });
    }
    return this.#recvWait();
  }

  async #recvWait(): Promise<Uint8Array | undefined> {
    while (this.#queueHead >= this.#queue.length) {
      if (this.#aborted) throw this.#aborted;
      if (this.#eof) return undefined;
      await this.#waitChange();
    }
    return this.#take();
  }

  /** Takes the oldest queued frame (there is one) and grants its credit back. */
  #take(): Uint8Array {
    const f = this.#queue[this.#queueHead];
    this.#queue[this.#queueHead++] = EMPTY;
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#queueHead);
      this.#queueHead = 0;
    }
    this.#queued -= f.length;
    this.#delivered(f.length);
    return f;
  }

  /** A frame of `bytes` went to the application: grant its credit back, in batches (datagrams used none). */
  #delivered(bytes: number): void {
    if (!this.#mode?.datagram) this.#grant(bytes);
  }

  /**
   * Iterates the frames the peer sends, as `recv()` returns them, until it ends its direction
   * (the loop then finishes); an abort by the peer or a lost connection throws, as from `recv()`.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    // A plain iterator rather than an async generator: a queued frame is handed over with one
    // resolved promise. Once it has ended, thrown or been returned, it stays done.
    let over = false;
    const got = (f: Uint8Array | undefined): IteratorResult<Uint8Array> => {
      if (f !== undefined) return { done: false, value: f };
      over = true;
      return DONE;
    };
    const failed = (e: unknown): never => {
      over = true;
      throw e;
    };
    // The direct reader (see `#direct`), made once per iterator; each wait sets its promise's ends.
    let settle: (r: IteratorResult<Uint8Array>) => void = () => {};
    let reject: (e: unknown) => void = () => {};
    const direct: DirectReader = {
      ok: (f) => settle(got(f)),
      fail: (e) => {
        over = true;
        reject(e);
      },
    };
    const it: AsyncIterableIterator<Uint8Array> = {
      next: () => {
        if (over) return Promise.resolve(DONE);
        if (this.#queueHead < this.#queue.length) return Promise.resolve({ done: false, value: this.#take() });
        if (this.#direct === undefined && !this.#aborted && !this.#eof) {
          return new Promise<IteratorResult<Uint8Array>>((ok, fail) => {
            settle = ok;
            reject = fail;
            this.#direct = direct;
          });
        }
        return this.#recvWait().then(got, failed);
      },
      return: () => {
        over = true;
        return Promise.resolve(DONE);
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /**
   * Ends this side's direction (the peer's iteration finishes); receiving continues. Sends
   * called before `end()` still go first, in order: `end()` resolves once the end marker follows
   * them (it waits for the peer's credit as they do); sends called after it fail.
   */
  async end(): Promise<void> {
    if (this.#send !== "open" || this.#aborted) return;
    this.#send = "ending";
    try {
      const wait = this.#acquire(0);
      if (wait) await wait;
      if (this.#aborted) return;
      await this.#write({ type: FrameType.DATA, flags: FrameFlag.RAW | FrameFlag.FIN, payload: EMPTY });
    } catch (e) {
      // The peer stopped reading (its handler returned): nothing is left to end.
      if (e instanceof TransportError && e.code === "STOP_SENDING") return;
      if (e === this.#aborted) return;
      throw toRpcError(e);
    } finally {
      this.#send = "done";
      this.#maybeFinish();
    }
    this.#maybeFinishQuic();
  }

  /** Fails blocked senders, stops datagram routing and frees the jitter buffer. */
  #dispose(): void {
    this.#failSenders(this.#aborted ?? new RpcError(ErrorCode.CANCELLED, `stream "${this.name}" was released`));
    this.#mode?.datagram?.unregister();
    this.#rt?.free();
  }

  /**
   * @internal Called when the stream handler has returned: ends this direction and stops
   * receiving, so the QUIC stream is released (quinn keeps a stream, and its slot in the
   * concurrent-stream limit, until its receiving side is read to the end or stopped).
   */
  async release(): Promise<void> {
    this.#dispose();
    await this.end().catch(() => {});
    if (!this.#quicEnded) {
      this.#quicEnded = true;
      await this.#writer.idle();
      await this.#s.end().catch(() => {});
    }
    if (!this.#reader.finished) {
      this.#s.stopSending(0);
      await this.#reader.cancel().catch(() => {});
    }
    this.#recvDone = true;
    this.#send = "done";
    this.#maybeFinish();
  }

  /**
   * Aborts the stream in both directions: the peer's next `recv()` throws this reason.
   * @param reason An RpcError, or a message for a `CANCELLED` one.
   */
  async abort(reason: RpcError | string = "stream aborted"): Promise<void> {
    if (this.#aborted) return;
    const err = typeof reason === "string" ? new RpcError(ErrorCode.CANCELLED, reason) : reason;
    this.#aborted = err;
    this.#rt?.fail(err);
    this.#dispose();
    this.#notify();
    this.#maybeFinish();
    if (!this.#quicEnded) {
      this.#quicEnded = true;
      // An ERROR frame then FIN, not a bare reset: Deno cannot send reset codes, and the frame
      // tells the peer why on every stack.
      try {
        await this.#write({ type: FrameType.ERROR, flags: 0, code: errorCodeNumber(err.code), message: err.message, payload: EMPTY });
        await this.#s.end();
      } catch { /* the peer is gone already */ }
    }
    this.#s.stopSending(errorCodeNumber(err.code));
    await this.#reader.cancel().catch(() => {});
  }
}
