/**
 * `Peer`: one side of an EchoStream connection. Both sides are peers: each can `request`,
 * `emit` and `createStream` toward the other, and serve what its registry holds.
 *
 * @module
 */

import { logger } from "../observe/log.ts";
import { formatAddress } from "./_options.ts";
import { type CallEnds, clientCall, observeConnection, produce, telemetryRegistered } from "../observe/otel.ts";
import type { FrameCodec } from "../protocol/codec.ts";
import { type DataFrame, type Frame, FrameFlag, FrameType, type Metadata } from "../protocol/frame.ts";
import type { PayloadCodec } from "../protocol/payload_codec.ts";
import { ErrorCode, errorCodeFromNumber, errorCodeNumber, RpcError } from "../protocol/rpc_error.ts";
import type { BidiStream, CloseInfo, Connection, PeerCertificate, RecvStream, SendStream, SocketAddress } from "../transport/types.ts";
import { type DatagramLink, EchoStream, type StreamMode } from "../stream/echo_stream.ts";
import { type TimeSyncOptions, wireTimeSyncOptions } from "../stream/time_sync.ts";
import { FrameReader, type ReceiveBudget } from "../wire/frame_reader.ts";
import { encodeFrame, goAwayAndClose, writeParts } from "../wire/frame_writer.ts";
import { decodePayload, encodePayload } from "../wire/payload.ts";
import { closeError, toRpcError } from "../wire/errors.ts";
import { TransportError } from "../transport/transport_error.ts";
import type { Registry } from "./registry.ts";
import { type PeerLink, serveEvents, serveStream } from "./_serve.ts";
import { StreamBuilder, type StreamOpenOptions } from "./stream_builder.ts";
import type { EmitArgs, EventName, RequestArgs, RequestName, RequestOutput, RpcApi, StreamName, UntypedApi } from "./api.ts";
import { acceptedWithin, after, openWithin } from "./_deadline.ts";
import type { ClockSyncOptions, SyncedClock } from "../clock/sync.ts";
import { type Rejections, zeroPeerStats } from "./stats.ts";
import { type GuardInit, PeerGuard } from "./_guard.ts";
import { DEFAULT_PEER_LIMITS } from "../security/limits.ts";
import { CloseCode } from "../protocol/version.ts";
import { LatencyPrior } from "../stream/latency_prior.ts";
import { DatagramPacer } from "./_datagram_pacer.ts";

/** Options for one request. */
export interface RequestOptions {
  /** Give up after this long: the call fails with `DEADLINE_EXCEEDED` and the handler's signal fires. */
  timeoutMs?: number;
  /** Cancels the call: it fails with `CANCELLED` and the handler's signal fires. */
  signal?: AbortSignal;
  /** Key/value strings sent with the request; the handler reads them as `ctx.metadata`. */
  metadata?: Metadata;
  /** Mark the call safe to replay (required to travel in 0-RTT early data). */
  idempotent?: boolean;
}

/** Options for one event. */
export interface EmitOptions {
  /** Key/value strings sent with the event; the listener reads them as `ctx.metadata`. */
  metadata?: Metadata;
}

/** Counters a peer keeps. */
export interface PeerStats {
  /** Requests this side sent (answered or not). */
  requestsSent: number;
  /** Requests this side's handlers answered. */
  requestsServed: number;
  /** Events this side wrote. */
  eventsSent: number;
  /** Events that arrived (whether a listener took them or not). */
  eventsReceived: number;
  /** Events for a topic nobody listens to (counted, never fatal). */
  unhandledEvents: number;
  /** Events whose payload failed to decode or validate. */
  droppedEvents: number;
  /** Streams this side opened. */
  streamsOpened: number;
  /** Streams the other side opened that a stream handler took. */
  streamsAccepted: number;
  /** Requests this side is serving right now. */
  inFlight: number;
  /** Datagrams that were not frames, or frames no datagram may carry (counted, never fatal). */
  droppedDatagrams: number;
  /**
   * QUIC datagrams this side sent for unreliable streams, and the frames they carried: when the
   * other side takes several frames per datagram, the frames sent in one event-loop turn share
   * datagrams, so the second count can exceed the first.
   */
  datagramsSent: number;
  /** Frames of unreliable streams this side sent (see `datagramsSent`). */
  datagramFramesSent: number;
  /**
   * Datagrams of unreliable streams this side discarded before the stack: `maxDatagramsPerSecond`
   * go to it and 4,096 wait; past that the oldest waiting one is shed (the streams send faster than
   * the connection takes datagrams).
   */
  datagramsShed: number;
  /** EchoStreams on this connection not yet finished in both directions (live state). */
  openStreams: number;
  /** Unreliable streams whose datagrams are routed on this connection now (live state). */
  datagramRoutes: number;
  /** Requests this side sent and is still waiting on (live state). */
  pendingRequests: number;
  /**
   * Handlers that had not returned when their call ended (deadline, cancel, lost connection):
   * the call was answered and freed then, and whatever the handler returns later is dropped.
   * A handler that never honours `ctx.signal` keeps running; this count is how to find it.
   */
  overrunHandlers: number;
  /** What this connection's defences refused, by reason (see docs/SECURITY.md). */
  rejected: Rejections;
}

/** @internal An EVENT frame encoded once, to be sent to many peers with `sendPrepared`. */
export interface PreparedEvent {
  readonly topic: string;
  readonly parts: Uint8Array[];
}

/**
 * @internal Frames an event once for many peers from its already encoded payload (what
 * `encodePayload` made; the cluster's bus carries the same bytes); undefined when it cannot be
 * shared: an OpenTelemetry SDK is registered (each peer's event gets its own span and trace
 * context), or the frame does not encode (each peer's `emit` then reports it).
 */
export function prepareEvent(frames: FrameCodec, topic: string, encoded: { flags: number; payload: Uint8Array }, metadata: Metadata): PreparedEvent | undefined {
  if (telemetryRegistered()) return undefined;
  try {
    return { topic, parts: encodeFrame(frames, { type: FrameType.EVENT, flags: encoded.flags, topic, metadata, payload: encoded.payload }) };
  } catch {
    return undefined;
  }
}

/** @internal What a Peer is built from (by RpcServer and RpcClient). */
export interface PeerInit {
  conn: Connection;
  role: "client" | "server";
  frames: FrameCodec;
  payload: PayloadCodec;
  registry: Registry;
  /** The other side's name from HELLO/WELCOME. */
  remoteName: string;
  principal: unknown;
  onError: (error: unknown, where: string) => void;
  /** The other side's clock, as this side estimates it. */
  clock: SyncedClock;
  /** This connection's defences (limits, access policy, rate limits); defaults when left out. */
  guard?: GuardInit;
  /** The control stream (HELLO/WELCOME, then GOAWAY and clock pings). */
  control: BidiStream;
}

const EMPTY: Uint8Array = new Uint8Array(0);
const RESOLVED: Promise<void> = Promise.resolve();
/** The longest delay timers honour. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Most frames, and bytes, of an unreliable stream being opened kept until the other side's answer. */
const PENDING_DATAGRAM_FRAMES = 64;
const PENDING_DATAGRAM_BYTES = 64 * 1024;

/** A request stream and its reader, held by one call at a time; `at`: when it went idle. */
interface Lease {
  s: BidiStream;
  reader: FrameReader;
  at: number;
}

/** Whether `f` is a whole answer to a call (after it the stream is in step for the next call). */
function answered(f: Frame | undefined): boolean {
  return f !== undefined && (f.type === FrameType.RESPONSE || f.type === FrameType.ERROR);
}

/**
 * Ends a request stream this side is done with: our FIN (the other side then ends its half),
 * reading on to the other side's FIN so every stack frees the stream.
 */
function endLease(lease: Lease): void {
  lease.s.end().catch(() => {});
  lease.reader.next().then(
    (f) => void (f && lease.reader.cancel().catch(() => {})),
    () => {},
  );
}

/** What {@link inspectPeer} shows. */
interface PeerInternals {
  conn: Connection;
  frames: FrameCodec;
  guard: PeerGuard;
}

/** Set by Peer's static block: the one reader of its private state outside the class. */
let inspect: (peer: Peer) => PeerInternals;

/**
 * One side of a connection. Made by `RpcServer` (one per client) and `RpcClient`. `A` is the API
 * of the other side (see `ApiOf`): with one, `request`, `emit` and `createStream` accept only
 * the names it serves, with its input and output types; `UntypedApi` (the default) accepts any.
 */
export class Peer<A extends RpcApi = UntypedApi> {
  /**
   * This connection's id: random, unique in a cluster; what `server.peer(id)` and the presence
   * view (`server.cluster.presence()`) know it by.
   */
  readonly id: string = crypto.randomUUID();
  /** The other side's name, as it introduced itself. */
  readonly name: string;
  /** Who the other side authenticated as (server side: what `authenticate` returned). */
  readonly principal: unknown;
  /** Settles when the connection has ended. */
  readonly closed: Promise<CloseInfo>;
  /** Counters. */
  readonly stats: PeerStats = zeroPeerStats();
  /**
   * The other side's clock, kept in sync by PING/PONG. On a client this is the server's clock,
   * the reference (`client.clock`); on a server, `ctx.peer.clock.offsetMs` is that client's
   * clock minus the server's.
   */
  readonly clock: SyncedClock;
  /** Whether both ends can carry QUIC datagrams: told by the handshake (`start`). */
  #datagrams = false;
  /** The other side takes several frames per datagram: unreliable streams' frames are bundled. */
  #bundle = false;
  /** The datagram being filled: encoded frames, their total size; flushed at the end of the turn. */
  #dgParts: Uint8Array[] = [];
  #dgBytes = 0;
  #dgSoon = false;
  /** Hands the datagrams of unreliable streams to the stack at `maxDatagramsPerSecond`. */
  readonly #pacer: DatagramPacer;
  readonly #dgFlushLater = (): void => {
    this.#dgSoon = false;
    this.#flushDatagram();
  };
  /** Whether this side sends clock PINGs (time-synced receiving needs the samples). */
  #clockSync = true;
  readonly #dgStreams = new Map<number, EchoStream>();
  /**
   * Unreliable streams this side is opening, by datagram id, until the other side's answer: the
   * handler may send at once, and its first datagrams can overtake the answer on the stream.
   * They wait here (bounded: PENDING_DATAGRAM_FRAMES frames, PENDING_DATAGRAM_BYTES bytes) and
   * go to the stream as it is made; a refused open drops them.
   */
  readonly #dgPending = new Map<number, { frames: Frame[]; at: number[]; bytes: number }>();
  #nextDatagramId = 0;
  readonly #init: PeerInit;
  #lane: Promise<SendStream> | undefined;
  /** Whether request streams are reused (the other side serves REUSE and reuse is not turned off). */
  #reuse = false;
  /** Idle request streams, oldest first; a call takes the newest. */
  readonly #idle: Lease[] = [];
  /** What this connection's time-synced streams see of transit: new ones start from it. */
  readonly #latencyPrior = new LatencyPrior();
  /** Cancels the sweep of idle request streams, when one is due. */
  #unsweep: (() => void) | undefined;
  #laneTail: Promise<unknown> = Promise.resolve();
  #closing: CloseInfo | undefined;
  readonly #pending = new Set<(e: RpcError) => void>();
  #goingAway: { code: string; reason: string } | undefined;
  /** Aborts every handler this peer runs when the connection ends. */
  readonly #connectionSignal: AbortSignal;
  /** This connection's defences: what the other side may do, and how much. */
  readonly #guard: PeerGuard;
  /** What the serving code (`_serve.ts`) uses of this peer: all it may read and change. */
  readonly #link: PeerLink;

  /** @internal */
  constructor(init: PeerInit) {
    this.#init = init;
    this.name = init.remoteName;
    this.principal = init.principal;
    this.clock = init.clock;
    this.#guard = new PeerGuard(init.guard ?? { limits: DEFAULT_PEER_LIMITS }, this.stats.rejected);
    this.#pacer = new DatagramPacer(this.#guard.limits.maxDatagramsPerSecond, (d) => init.conn.sendDatagram(d), this.stats);
    const ac = new AbortController();
    this.#connectionSignal = ac.signal;
    this.#link = this.#makeLink();
    this.closed = init.conn.closed.then((info) => {
      this.#closing = info;
      this.#dropIdle();
      this.#pacer.close();
      const err = closeError(info, "connection closed");
      ac.abort(err);
      for (const reject of this.#pending) reject(err);
      this.#pending.clear();
      this.#guard.releaseAll();
      return info;
    });
    observeConnection(init.role, this.closed);
  }

  #makeLink(): PeerLink {
    const { frames, payload, registry, onError } = this.#init;
    return {
      peer: this as Peer,
      ends: () => ({ peer: this.#init.conn.remote }),
      frames,
      payload,
      registry,
      guard: this.#guard,
      stats: this.stats,
      signal: this.#connectionSignal,
      hasDatagrams: () => this.#datagrams,
      onError,
      countReset: () => this.countReset(),
      streamMode: (timeSync, dg) => this.#streamMode(timeSync, dg),
      trackStream: () => this.#trackStream(),
    };
  }

  /** Whether both ends of this connection can carry QUIC datagrams (unreliable streams need it). */
  get datagrams(): boolean {
    return this.#datagrams;
  }

  /** Set when the other side announced it is going away (GOAWAY on the control stream). */
  get goingAway(): { code: string; reason: string } | undefined {
    return this.#goingAway;
  }

  /** The other side's address. */
  get remote(): SocketAddress {
    return this.#init.conn.remote;
  }

  /** The certificate the other side presented under mutual TLS (server side), if any. */
  get certificate(): PeerCertificate | undefined {
    if (this.#cert === undefined) this.#cert = this.#init.conn.peerCertificate ?? null;
    return this.#cert ?? undefined;
  }

  #cert: PeerCertificate | null | undefined;

  /** Whether the connection has ended. */
  get isClosed(): boolean {
    return this.#closing !== undefined;
  }

  #unavailable(): RpcError {
    return new RpcError(ErrorCode.UNAVAILABLE, `connection to ${this.name || "the peer"} is closed`);
  }

  /**
   * Calls `method` on the other side.
   *
   * @example A call with a deadline
   * ```ts
   * import type { Peer } from "@echostream/core";
   * type Session = { user: string; token: string };
   * export async function login(peer: Peer): Promise<Session> {
   *   return await peer.request<Session>("user.login", "alice", { timeoutMs: 2000 });
   * }
   * ```
   *
   * On a typed peer (`Peer<Api>`) the name must be one `Api` serves, the input must have its
   * type, and the result is typed without a cast.
   *
   * @param method The handler's name.
   * @param input Any value the payload codec encodes; a Uint8Array passes untouched.
   * @param options Deadline, cancellation, metadata.
   * @returns The handler's result.
   * @throws {RpcError} With the handler's code, or `DEADLINE_EXCEEDED`, `CANCELLED`,
   *   `UNAVAILABLE` (connection lost), `INVALID_ARGUMENT` (input the codec cannot encode).
   */
  request<T = unknown, N extends RequestName<A> = RequestName<A>>(method: N, ...args: RequestArgs<A, N, RequestOptions>): Promise<RequestOutput<A, N, T>>;
  request<T>(method: string, input?: unknown, options: RequestOptions = {}): Promise<T> {
    // Observed (a CLIENT span, the call-duration histogram) only when an OpenTelemetry SDK is registered.
    const obs = typeof method === "string" ? clientCall(method, this.#ends, options?.metadata) : undefined;
    if (!obs) return this.#request<T>(method, input, options);
    const p = this.#request<T>(method, input, obs.metadata ? { ...options, metadata: obs.metadata } : options);
    p.then(() => obs.end("OK"), (e) => obs.end(e instanceof RpcError ? e.code : ErrorCode.INTERNAL, e));
    return p;
  }

  /** Both ends of this connection, for telemetry: the server is the remote end on a client. */
  readonly #ends = (): CallEnds => {
    const peer = this.#init.conn.remote;
    return this.#init.role === "client" ? { server: peer, peer } : { peer };
  };

  async #request<T>(method: string, input?: unknown, options: RequestOptions = {}): Promise<T> {
    if (typeof method !== "string" || method.length === 0) {
      throw new RpcError(ErrorCode.INVALID_ARGUMENT, `method must be a non-empty string, received ${typeof method}`);
    }
    const { timeoutMs, signal, metadata = {}, idempotent = false } = options;
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      throw new RpcError(ErrorCode.INVALID_ARGUMENT, `timeoutMs must be a positive number, received ${timeoutMs}`);
    }
    if (signal?.aborted) throw new RpcError(ErrorCode.CANCELLED, `call to "${method}" cancelled before it started`);
    if (this.#closing) throw this.#unavailable();
    const reuse = this.#reuse && !this.#goingAway;
    let frame: Uint8Array;
    try {
      const { flags, payload } = encodePayload(input, this.#init.payload);
      const cancellable = timeoutMs !== undefined || signal !== undefined;
      frame = this.#init.frames.encode({
        type: FrameType.REQUEST,
        // REUSE keeps our half open after the request, as CANCELLABLE does, so it covers both.
        flags: flags | (idempotent ? FrameFlag.IDEMPOTENT : 0) | (reuse ? FrameFlag.REUSE : cancellable ? FrameFlag.CANCELLABLE : 0),
        method,
        deadlineMs: timeoutMs === undefined ? 0 : Math.ceil(timeoutMs),
        metadata,
        payload,
      });
    } catch (e) {
      throw new RpcError(ErrorCode.INVALID_ARGUMENT, `cannot send "${method}": ${(e as Error).message}`, undefined, { cause: e });
    }
    // An idle request stream when there is one (the REUSE lane), else a new one. The deadline and
    // the signal cover the wait for a stream slot too (the peer's limit).
    const started = timeoutMs === undefined ? 0 : performance.now(); // the deadline counts from here
    const open = () => this.#openLease(method, timeoutMs, signal, started);
    const pooled = this.#idle.pop();
    let lease = pooled ?? (await open());
    this.stats.requestsSent++;
    this.stats.pendingRequests++;
    if (timeoutMs === undefined && !signal) {
      // Nothing can cancel this call: no timer, listener or race is set up. Without reuse the
      // request goes with our FIN (not CANCELLABLE). A lost connection still ends the read.
      let f: Frame | undefined;
      try {
        [lease, f] = await this.#exchange(lease, frame, reuse, pooled !== undefined, open);
      } catch (e) {
        throw toRpcError(e);
      } finally {
        this.stats.pendingRequests--;
      }
      if (reuse) this.#done(lease, answered(f));
      try {
        return this.#answer<T>(method, f);
      } catch (e) {
        throw toRpcError(e); // a payload the codec cannot decode: INTERNAL, with the cause
      }
    }
    let settled = false;
    let cancelled = false;
    let complete = false;
    let stopTimer: (() => void) | undefined;
    let onAbort: (() => void) | undefined;
    let rejectCall!: (e: RpcError) => void;
    const cancel = (err: RpcError) => {
      if (settled) return;
      cancelled = true;
      rejectCall(err);
      // Tell the handler: an ERROR frame, then FIN (portable: Deno cannot send reset codes). The
      // stream is not reused: its answer may still be on the way.
      const f = this.#init.frames.encode({ type: FrameType.ERROR, flags: 0, code: errorCodeNumber(err.code), message: err.message, payload: EMPTY });
      const { s } = lease;
      s.write(f).then(() => s.end()).catch(() => {});
      s.stopSending(errorCodeNumber(err.code));
    };
    const outcome = new Promise<T>((resolve, reject) => {
      rejectCall = reject;
      this.#pending.add(reject);
      // Timers turn a delay past 2^31 - 1 ms (about 24.8 days) into 1 ms: such a deadline gets
      // no timer here (the callee still sees it in the request).
      if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
        // The shared deadline timer (_deadline.ts) never fires early: timers may truncate a
        // fractional delay (5.9 fired after 5.1), which failed calls before their deadline.
        const left = Math.max(0, timeoutMs - (performance.now() - started));
        stopTimer = after(left, () => cancel(new RpcError(ErrorCode.DEADLINE_EXCEEDED, `"${method}" did not answer within ${timeoutMs} ms`)));
      }
      if (signal) {
        onAbort = () => cancel(new RpcError(ErrorCode.CANCELLED, `call to "${method}" cancelled`, signal.reason));
        signal.addEventListener("abort", onAbort, { once: true });
      }
      (async () => {
        let f: Frame | undefined;
        [lease, f] = await this.#exchange(lease, frame, reuse, pooled !== undefined, open, () => cancelled);
        complete = answered(f);
        resolve(this.#answer<T>(method, f));
      })().catch((e) => reject(toRpcError(e)));
    });
    try {
      return await outcome;
    } finally {
      settled = true;
      this.stats.pendingRequests--;
      this.#pending.delete(rejectCall);
      stopTimer?.();
      if (onAbort) signal!.removeEventListener("abort", onAbort);
      // Our half: after a response it tells the handler's side no cancel will come (or, reused,
      // the stream waits for the next call); after a cancel, cancel() ends it once its ERROR
      // frame is written.
      if (!cancelled) this.#done(lease, reuse && complete);
    }
  }

  /** A new request stream (the deadline and the signal bound the wait for a slot). */
  async #openLease(method: string, timeoutMs: number | undefined, signal: AbortSignal | undefined, started: number): Promise<Lease> {
    const conn = this.#init.conn;
    let s: BidiStream;
    try {
      const left = timeoutMs === undefined ? undefined : Math.max(1, timeoutMs - (performance.now() - started));
      s = await (left === undefined && !signal ? conn.openBidi() : openWithin(conn, `"${method}"`, left, signal));
    } catch (e) {
      throw toRpcError(e);
    }
    return { s, reader: new FrameReader(s, this.#init.frames), at: 0 };
  }

  /**
   * Writes a request on `lease` and reads what answers it. An idle stream taken from the set
   * (`pooled`) that turns out ended by the other side before any answer (a clean end, or a
   * stream error: the other side ends idle or broken reused streams only between calls, so it
   * never ran this request) is replaced by a new stream, once. Returns the stream the call
   * finally used and the frame read (undefined: the stream ended without an answer).
   */
  async #exchange(lease: Lease, frame: Uint8Array, reuse: boolean, pooled: boolean, open: () => Promise<Lease>, stopped?: () => boolean): Promise<[Lease, Frame | undefined]> {
    try {
      // A stack that takes the bytes at once (Bun) needs no await for them.
      if (!lease.s.writeSync?.(frame)) await lease.s.write(frame);
      if (!reuse) lease.s.end().catch(() => {});
      const f = await lease.reader.next();
      if (f !== undefined || !pooled) return [lease, f];
    } catch (e) {
      if (!pooled || !(e instanceof TransportError)) throw e;
    }
    endLease(lease);
    if (stopped?.() || this.#closing) throw this.#unavailable();
    const fresh = await open();
    if (stopped?.()) {
      endLease(fresh);
      throw this.#unavailable();
    }
    await fresh.s.write(frame);
    const f = await fresh.reader.next();
    if (stopped?.()) endLease(fresh); // cancelled meanwhile: the cancel went to the old stream
    return [fresh, f];
  }

  /**
   * A call on `lease` is over: its stream goes back to the idle set when `reusable` (the call had
   * its whole answer and the other side keeps the stream), there is room, and the connection is
   * not going away; otherwise it is ended.
   */
  #done(lease: Lease, reusable: boolean): void {
    const idle = this.#idle;
    if (reusable && idle.length < this.#guard.limits.maxIdleRequestStreams && !this.#closing && !this.#goingAway) {
      lease.at = performance.now();
      idle.push(lease);
      this.#unsweep ??= after(this.#guard.limits.requestStreamIdleMs, this.#sweep);
      return;
    }
    endLease(lease);
  }

  /** Ends the request streams idle for `requestStreamIdleMs` (oldest first), and re-arms for the rest. */
  readonly #sweep = (): void => {
    this.#unsweep = undefined;
    const idle = this.#idle;
    const keep = this.#guard.limits.requestStreamIdleMs;
    const now = performance.now();
    let n = 0;
    while (n < idle.length && now - idle[n].at >= keep) endLease(idle[n++]);
    if (n) idle.splice(0, n);
    if (idle.length) this.#unsweep = after(Math.max(1, idle[0].at + keep - now), this.#sweep);
  };

  /** Ends every idle request stream (the other side is going away, or the connection closed). */
  #dropIdle(): void {
    for (const lease of this.#idle) endLease(lease);
    this.#idle.length = 0;
    this.#unsweep?.();
    this.#unsweep = undefined;
  }

  /** The value of a response frame, or the error it carries. */
  #answer<T>(method: string, f: Frame | undefined): T {
    if (!f) throw new RpcError(ErrorCode.UNAVAILABLE, `"${method}": the stream ended without a response`);
    if (f.type === FrameType.RESPONSE) return decodePayload(f.flags, f.payload, this.#init.payload) as T;
    if (f.type === FrameType.ERROR) {
      const details = f.payload.length ? decodePayload(f.flags, f.payload, this.#init.payload) : undefined;
      throw new RpcError(errorCodeFromNumber(f.code), f.message, details);
    }
    throw new RpcError(ErrorCode.DATA_LOSS, `"${method}": unexpected frame type ${f.type} in a response`);
  }

  /**
   * Sends an event to the other side. Events arrive in order; a topic nobody listens to is
   * counted there, never an error here.
   *
   * @param topic The listener's name.
   * @param payload Any value the payload codec encodes; a Uint8Array passes untouched.
   * @param options Metadata.
   * @throws {RpcError} `UNAVAILABLE` when the connection is closed, `INVALID_ARGUMENT` for a
   *   payload the codec cannot encode.
   */
  emit<N extends EventName<A>>(topic: N, ...args: EmitArgs<A, N, EmitOptions>): Promise<void>;
  emit(topic: string, payload?: unknown, options: EmitOptions = {}): Promise<void> {
    if (this.#closing) return Promise.reject(this.#unavailable());
    // A PRODUCER span whose context travels in the event's metadata, when an SDK records.
    const obs = produce(topic, this.#ends, options.metadata);
    let parts: Uint8Array[];
    try {
      const p = encodePayload(payload, this.#init.payload);
      // Encoded now (it validates too), written later in lane order.
      parts = encodeFrame(this.#init.frames, { type: FrameType.EVENT, flags: p.flags, topic, metadata: obs?.metadata ?? options.metadata ?? {}, payload: p.payload });
      obs?.end("OK");
    } catch (e) {
      obs?.end(ErrorCode.INVALID_ARGUMENT, e);
      return Promise.reject(new RpcError(ErrorCode.INVALID_ARGUMENT, `cannot emit "${topic}": ${(e as Error).message}`, undefined, { cause: e }));
    }
    return this.#sendEvent(topic, parts);
  }

  /**
   * @internal Sends an EVENT frame encoded once for many peers ({@link prepareEvent}: the
   * server's broadcasts and group emits) on this connection's event lane, as `emit` would.
   */
  sendPrepared(event: PreparedEvent): Promise<void> {
    if (this.#closing) return Promise.reject(this.#unavailable());
    return this.#sendEvent(event.topic, event.parts);
  }

  /** Queues an encoded EVENT frame on the event lane (one frame at a time, in call order). */
  #sendEvent(topic: string, parts: Uint8Array[]): Promise<void> {
    this.#lane ??= this.#init.conn.openUni();
    const lane = this.#lane;
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    if (this.#guard.queueOutgoing(bytes)) {
      // The other side is not reading what is queued for it: disconnect it rather than buffer
      // without bound (a subscriber that never reads its broadcasts).
      this.#guard.sentOutgoing(bytes);
      const limit = this.#guard.limits.maxOutgoingBytes;
      this.#abuse("slowConsumer", CloseCode.SLOW_CONSUMER, `slow consumer: more than ${limit} bytes of events queued and not read`);
      return Promise.reject(new RpcError(ErrorCode.UNAVAILABLE, `cannot emit "${topic}": the peer does not read its events (over ${limit} bytes queued); it is being disconnected`));
    }
    // One frame at a time on the lane, in call order.
    const done = this.#laneTail.then(async () => {
      try {
        const s = await lane;
        await writeParts(s, parts);
      } finally {
        this.#guard.sentOutgoing(bytes);
      }
      this.stats.eventsSent++;
    });
    this.#laneTail = done.catch(() => {});
    return done.catch((e) => {
      throw toRpcError(e);
    });
  }

  /**
   * Opens an EchoStream to the other side's stream handler `name`. Await the builder (or call
   * `.build()`) to get the open stream.
   *
   * @example Opening a stream
   * ```ts
   * import type { Peer } from "@echostream/core";
   * export async function sendAudio(peer: Peer, frame: Uint8Array): Promise<void> {
   *   const stream = await peer.createStream("audio.stream");
   *   await stream.send(frame);
   *   await stream.end();
   * }
   * ```
   */
  createStream(name: StreamName<A>): StreamBuilder {
    return new StreamBuilder(name, (opts) => this.#open(name, opts));
  }

  /**
   * The mode of a stream: time-synced and/or on datagrams (`dg` = its datagram id). The stream
   * registers its datagram route when it is built and unregisters it when it finishes.
   */
  #streamMode(timeSync: TimeSyncOptions | undefined, dg: number | undefined): StreamMode | undefined {
    if (!timeSync && dg === undefined) return undefined;
    let datagram: DatagramLink | undefined;
    if (dg !== undefined) {
      const conn = this.#init.conn;
      const routes = this.#dgStreams;
      datagram = {
        id: dg,
        maxSize: () => conn.maxDatagramSize,
        send: (b) => this.#sendStreamDatagram(b),
        register: (stream) => this.#routeDatagrams(dg, stream),
        unregister: () => {
          if (routes.delete(dg)) this.stats.datagramRoutes = routes.size;
        },
      };
    }
    return {
      clock: this.clock,
      syncEnabled: this.#clockSync,
      timeSync,
      latencyPrior: this.#latencyPrior,
      datagram,
      onDroppedDatagram: () => this.stats.droppedDatagrams++,
    };
  }

  /**
   * Counts a new EchoStream as live; the returned callback (run once by the stream when both
   * halves are done) counts it out.
   */
  #trackStream(): () => void {
    this.stats.openStreams++;
    return () => void this.stats.openStreams--;
  }

  /**
   * Sends one encoded frame of an unreliable stream. When the other side takes several frames per
   * datagram, frames sent in the same event-loop turn share datagrams up to the size limit (one
   * QUIC datagram costs the stack a packet: at 50,000 frames/s that, not the bytes, is the limit),
   * and the send resolves once the frame is queued: the datagram goes when full or at the end of
   * the turn, and like any datagram it may be lost.
   */
  #sendStreamDatagram(b: Uint8Array): Promise<void> {
    const conn = this.#init.conn;
    this.stats.datagramFramesSent++;
    if (this.#closing) return conn.sendDatagram(b); // refused by the stack: the caller hears why
    if (!this.#bundle) return this.#pacer.send(b);
    if (this.#dgBytes + b.length > conn.maxDatagramSize || this.#dgParts.length >= this.#guard.limits.maxFramesPerDatagram) {
      this.#flushDatagram();
    }
    this.#dgParts.push(b);
    this.#dgBytes += b.length;
    if (!this.#dgSoon) {
      this.#dgSoon = true;
      setImmediate(this.#dgFlushLater);
    }
    return RESOLVED;
  }

  /** Sends the datagram being filled, if any (its frames back to back). */
  #flushDatagram(): void {
    const parts = this.#dgParts;
    if (parts.length === 0) return;
    let d = parts[0];
    if (parts.length > 1) {
      d = new Uint8Array(this.#dgBytes);
      let at = 0;
      for (const p of parts) {
        d.set(p, at);
        at += p.length;
      }
    }
    this.#dgParts = [];
    this.#dgBytes = 0;
    // Unreliable: a datagram the stack refuses (the connection is closing) is lost like any other.
    this.#pacer.send(d).catch(() => {});
  }

  /** Routes datagram id `id` to `stream`, handing it what arrived while it was being opened. */
  #routeDatagrams(id: number, stream: EchoStream): void {
    this.#dgStreams.set(id, stream);
    this.stats.datagramRoutes = this.#dgStreams.size;
    const early = this.#dgPending.get(id);
    if (!early) return;
    this.#dgPending.delete(id);
    for (let i = 0; i < early.frames.length; i++) stream.receiveDatagram(early.frames[i], early.at[i]);
  }

  /**
   * A DATA datagram for no routed stream: kept when it names a stream this side is opening (the
   * handler's first frames, ahead of its answer) and there is room; otherwise dropped and counted
   * (a stream that ended, or never was).
   */
  #holdDatagram(f: DataFrame, t: number): void {
    const early = this.#dgPending.get(f.streamId!);
    const n = f.payload.length;
    if (!early || early.frames.length >= PENDING_DATAGRAM_FRAMES || early.bytes + n > PENDING_DATAGRAM_BYTES) {
      this.stats.droppedDatagrams++;
      return;
    }
    early.frames.push(f);
    early.at.push(t);
    early.bytes += n;
  }

  /** An unreliable stream's open failed: what arrived for it while opening is dropped and counted. */
  #dropPending(id: number): void {
    const early = this.#dgPending.get(id);
    if (!early) return;
    this.#dgPending.delete(id);
    this.stats.droppedDatagrams += early.frames.length;
  }

  async #open(name: string, opts: StreamOpenOptions): Promise<EchoStream> {
    // A PRODUCER span for the open, its context carried in the OPEN frame's metadata.
    const obs = produce(name, this.#ends, opts.metadata);
    obs?.end("OK");
    const metadata = obs?.metadata ?? opts.metadata;
    if (this.#closing) throw this.#unavailable();
    let dg: number | undefined;
    if (opts.unreliable) {
      if (!this.#datagrams) {
        throw new RpcError(ErrorCode.FAILED_PRECONDITION, `stream "${name}": unreliable streams need QUIC datagrams, which this connection does not have (one end's transport lacks them)`);
      }
      // Even ids from clients, odd from servers: the two sides never pick the same one.
      dg = this.#nextDatagramId++ * 2 + (this.#init.role === "server" ? 1 : 0);
    }
    let optionBytes = EMPTY;
    if (opts.timeSync || dg !== undefined) {
      optionBytes = this.#init.payload.encode({ ts: opts.timeSync ? wireTimeSyncOptions(opts.timeSync) : undefined, dg });
    }
    const { timeoutMs, signal } = opts;
    if (signal?.aborted) throw new RpcError(ErrorCode.CANCELLED, `stream "${name}" cancelled before it opened`, signal.reason);
    const bounded = timeoutMs !== undefined || signal !== undefined;
    const started = bounded ? performance.now() : 0;
    let s: BidiStream;
    try {
      s = await (bounded ? openWithin(this.#init.conn, `stream "${name}"`, timeoutMs, signal) : this.#init.conn.openBidi());
    } catch (e) {
      throw toRpcError(e);
    }
    const reader = new FrameReader(s, this.#init.frames);
    if (dg !== undefined) this.#dgPending.set(dg, { frames: [], at: [], bytes: 0 });
    try {
      await s.write(this.#init.frames.encode({ type: FrameType.OPEN, flags: 0, name, metadata, payload: optionBytes }));
      // The rest of the deadline covers the peer accepting it (it may be at its own limit).
      const left = timeoutMs === undefined ? undefined : Math.max(0, timeoutMs - (performance.now() - started));
      const f = await (bounded ? acceptedWithin(reader.next(), `stream "${name}"`, left, timeoutMs, signal) : reader.next());
      if (f?.type === FrameType.RESPONSE) {
        this.stats.streamsOpened++;
        // Registered for its datagrams by its constructor (DatagramLink.register).
        return new EchoStream(name, metadata, s, reader, this.#init.frames, this.#streamMode(opts.timeSync, dg), this.#trackStream());
      }
      if (f?.type === FrameType.ERROR) throw new RpcError(errorCodeFromNumber(f.code), f.message);
      throw new RpcError(ErrorCode.UNAVAILABLE, `stream "${name}": no answer to the open`);
    } catch (e) {
      if (dg !== undefined) this.#dropPending(dg);
      const err = toRpcError(e);
      // Tell the handler's side why (an ERROR frame, then FIN): it may accept the open later.
      const f = this.#init.frames.encode({ type: FrameType.ERROR, flags: 0, code: errorCodeNumber(err.code), message: err.message, payload: EMPTY });
      s.write(f).then(() => s.end()).catch(() => s.end().catch(() => {}));
      s.stopSending(errorCodeNumber(ErrorCode.CANCELLED));
      throw err;
    }
  }

  /**
   * Closes the connection.
   * @param code Application close code (0 = normal).
   * @param reason Told to the other side.
   */
  async close(code = 0, reason = ""): Promise<void> {
    await this.#init.conn.close(code, reason);
  }

  /**
   * The other side abused the connection: count it under `reason`, tell it why (a GOAWAY
   * `RESOURCE_EXHAUSTED` on the control stream), and close with `closeCode` a moment later (a
   * close sent at once could overtake the GOAWAY). Once per connection.
   */
  #abuse(reason: keyof Rejections, closeCode: number, message: string): void {
    if (this.#closing || this.#abused) return;
    this.#abused = true;
    this.stats.rejected[reason]++;
    logger("security").warn("closing the connection to {peer} at {remote}: {message}", { peer: this.name, remote: formatAddress(this.#init.conn.remote), reason, message, code: `0x${closeCode.toString(16)}` });
    goAwayAndClose(this.#init.frames, this.#init.conn, this.#init.control, new RpcError(ErrorCode.RESOURCE_EXHAUSTED, message), closeCode, false);
  }

  #abused = false;

  /** @internal Whether the connection has ended or is being closed for abuse (what fails now is its fallout). */
  get isClosing(): boolean {
    return this.#abused || this.#closing !== undefined;
  }

  /**
   * @internal The other side gave up on a stream before its answer (a cancel or reset): one more
   * toward its reset budget; past it the connection is closed (the rapid-reset defence).
   */
  countReset(): void {
    if (this.#guard.countReset()) {
      const { maxResets, resetWindowMs } = this.#guard.limits;
      this.#abuse("tooManyResets", CloseCode.TOO_MANY_RESETS, `too many streams cancelled or reset: more than ${maxResets} in ${resetWindowMs} ms`);
    }
  }

  /** @internal Sends an encoded GOAWAY on the control stream. */
  async announceGoAway(frame: Uint8Array): Promise<void> {
    await this.#init.control.write(frame);
  }

  /**
   * @internal A datagram arrived at local time `t` (taken first thing): PING is answered on
   * datagrams, PONG feeds the clock. Anything else is dropped and counted.
   */
  receiveDatagram(d: Uint8Array, t: number): void {
    // One frame, or several back to back (a peer bundling its unreliable streams' frames).
    let frames: Frame[];
    try {
      frames = this.#init.frames.decodeAll(d);
    } catch {
      this.stats.droppedDatagrams++;
      return;
    }
    if (frames.length === 0) this.stats.droppedDatagrams++;
    for (const f of frames) {
      if (f.type === FrameType.DATA && f.streamId !== undefined) {
        const stream = this.#dgStreams.get(f.streamId);
        if (stream) stream.receiveDatagram(f, t);
        else this.#holdDatagram(f, t);
      } else if (f.type === FrameType.PING) this.clock.answer(f, t, (b) => this.#init.conn.sendDatagram(b));
      else if (f.type === FrameType.PONG) this.clock.receive(f, t);
      else this.stats.droppedDatagrams++;
    }
  }

  /** @internal Serves an incoming bidirectional stream whose first frame is `first`. */
  serve(s: BidiStream, reader: FrameReader, first: Frame): Promise<void> {
    return serveStream(this.#link, s, reader, first);
  }

  /** @internal Serves an event lane the other side opened (`budget`: the connection's receive budget). */
  serveEvents(r: RecvStream, budget?: ReceiveBudget): Promise<void> {
    return serveEvents(this.#link, r, budget);
  }

  /**
   * @internal The handshake is done and agreed on `datagrams` (both ends carry them) and this
   * side's clock sync: keeps the connection alive on the control stream and starts the clock
   * exchange, on datagrams when both ends have them, else on the control stream. `reuse`: the
   * other side serves REQUESTs flagged REUSE (then request streams are reused unless this side's
   * `maxIdleRequestStreams` is 0).
   */
  start(datagrams: boolean, clockSync: ClockSyncOptions | false, reuse = false, bundle = false): void {
    const { conn, control } = this.#init;
    const clock = this.clock;
    this.#datagrams = datagrams;
    this.#bundle = datagrams && bundle && this.#guard.limits.maxFramesPerDatagram > 1;
    this.#reuse = reuse && this.#guard.limits.maxIdleRequestStreams > 0;
    this.#clockSync = clockSync !== false;
    clock.keepAlive({ transport: "stream", send: (f) => control.write(f) });
    this.closed.then(() => clock.detach());
    if (clockSync === false) return;
    const useDatagrams = datagrams && clockSync.transport !== "stream";
    clock.attach(
      useDatagrams
        ? { transport: "datagram", send: (f) => conn.sendDatagram(f) }
        : { transport: "stream", send: (f) => control.write(f) },
    );
  }

  /**
   * @internal A frame arrived on the control stream after the handshake, at local time `t`:
   * PING is answered and PONG feeds the clock (the stream fallback of clock sync), GOAWAY marks
   * the other side as going away. False for any other frame (a protocol violation).
   */
  receiveControl(f: Frame, t: number): boolean {
    if (f.type === FrameType.PING) this.clock.answer(f, t, (b) => this.#init.control.write(b));
    else if (f.type === FrameType.PONG) this.clock.receive(f, t);
    else if (f.type === FrameType.GOAWAY) {
      this.#goingAway = { code: errorCodeFromNumber(f.code), reason: f.reason };
      this.#dropIdle();
    }
    else return false;
    return true;
  }

  /** @internal Counts `n` refusals under `reason` (what the stream router refuses before serving). */
  countRejected(reason: keyof Rejections, n = 1): void {
    this.stats.rejected[reason] += n;
  }

  /**
   * @internal Counts a frame the other side sent that was refused (malformed or oversize); false
   * when `e` is no such refusal (then it is an error of this side's, or the transport's).
   */
  countRefusedFrame(e: unknown): boolean {
    return this.#guard.countRefusedFrame(e);
  }

  static {
    inspect = (p) => ({ conn: p.#init.conn, frames: p.#init.frames, guard: p.#guard });
  }
}

/**
 * @internal For tests and benchmarks only (not exported by the package): the transport connection,
 * frame codec and defences under a peer, which the peer otherwise keeps to itself.
 */
export function inspectPeer(peer: Peer): PeerInternals {
  return inspect(peer);
}
