// The serving side of a peer: requests (REQUEST → RESPONSE | ERROR), stream opens (OPEN →
// RESPONSE then DATA, or ERROR) and events (EVENT frames on the peer's event lane).

import { type CallEnds, consume, type ObservedCall, serverCall } from "../observe/otel.ts";
import { type ErrorFrame, type EventFrame, type Frame, FrameFlag, FrameType, type OpenFrame, type RequestFrame } from "../protocol/frame.ts";
import { ErrorCode, errorCodeNumber, RpcError } from "../protocol/rpc_error.ts";
import type { FrameCodec } from "../protocol/codec.ts";
import type { PayloadCodec } from "../protocol/payload_codec.ts";
import type { BidiStream, RecvStream } from "../transport/types.ts";
import { EchoStream, type StreamMode } from "../stream/echo_stream.ts";
import { checkTimeSyncOptions, type TimeSyncOptions } from "../stream/time_sync.ts";
import { FrameReader, type ReceiveBudget } from "../wire/frame_reader.ts";
import { encodeFrame, writeFrame, writeParts } from "../wire/frame_writer.ts";
import { decodePayload, encodePayload } from "../wire/payload.ts";
import type { Context } from "./context.ts";
import type { HandlerDefinition, StandardSchema } from "./definitions.ts";
import type { Peer, PeerStats } from "./peer.ts";
import type { PeerGuard, Verdict } from "./_guard.ts";
import type { Registry } from "./registry.ts";
import { TransportError } from "../transport/transport_error.ts";

const EMPTY: Uint8Array = new Uint8Array(0);
const DEADLINE_CODE = errorCodeNumber(ErrorCode.DEADLINE_EXCEEDED);
/** The longest delay timers honour (2^31 - 1 ms); they fire after 1 ms for anything longer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * What the serving code uses of its peer. The Peer makes one and keeps its own state private:
 * this is the whole of what serving may read (codecs, registry, defences, counters) and change
 * (the reset budget, stream tracking and datagram routes).
 */
export interface PeerLink {
  /** The peer itself, as handlers see it (`ctx.peer`). */
  readonly peer: Peer;
  /** The connection's ends, for telemetry (read only when a span records). */
  readonly ends: () => CallEnds;
  readonly frames: FrameCodec;
  readonly payload: PayloadCodec;
  readonly registry: Registry;
  /** This connection's defences: what the other side may do, and how much. */
  readonly guard: PeerGuard;
  /** The peer's counters (`peer.stats`), counted here as the work is done. */
  readonly stats: PeerStats;
  /** Aborted when the connection ends, with the error its calls then fail with. */
  readonly signal: AbortSignal;
  /** Whether both ends of the connection carry QUIC datagrams (unreliable streams need them). */
  hasDatagrams(): boolean;
  /** Reports a failure of this side's code (a handler's, a listener's) to the application. */
  onError(error: unknown, where: string): void;
  /** The other side gave up on a stream before its answer: one more toward its reset budget. */
  countReset(): void;
  /** The mode of a stream (time-synced and/or on datagram id `dg`); undefined for a plain one. */
  streamMode(timeSync: TimeSyncOptions | undefined, dg: number | undefined): StreamMode | undefined;
  /** Counts a new EchoStream as live; the returned callback counts it out. */
  trackStream(): () => void;
}

/**
 * A handler's context. A class (one shape, `signal` a getter on the prototype) rather than a
 * literal with a property defined per call, which profiles showed on every request.
 */
class CallContext implements Context {
  readonly principal: unknown;
  readonly remote: Context["remote"];
  readonly #source: AbortSignal | { readonly signal: AbortSignal };
  constructor(
    readonly peer: Peer,
    readonly kind: Context["kind"],
    readonly name: string,
    readonly metadata: Context["metadata"],
    source: AbortSignal | { readonly signal: AbortSignal },
    readonly deadline: number | undefined,
  ) {
    this.principal = peer.principal;
    this.remote = peer.remote;
    this.#source = source;
  }

  get signal(): AbortSignal {
    const s = this.#source;
    return s instanceof AbortSignal ? s : s.signal;
  }

  get certificate(): Context["certificate"] {
    return this.peer.certificate;
  }
}

function context(
  link: PeerLink,
  kind: Context["kind"],
  name: string,
  metadata: Frame & { metadata: Context["metadata"] },
  signal: AbortSignal | { readonly signal: AbortSignal },
  deadline?: number,
): Context {
  return new CallContext(link.peer, kind, name, metadata.metadata, signal, deadline);
}

/** Validates `value` with a Standard Schema; returns the (possibly transformed) value. */
async function validate(schema: StandardSchema | undefined, value: unknown, what: string): Promise<unknown> {
  if (!schema) return value;
  const r = await schema["~standard"].validate(value);
  if (r.issues) {
    const issues = r.issues.map((i) => ({ message: i.message, path: i.path?.map((p) => (typeof p === "object" && p !== null && "key" in p ? (p as { key: unknown }).key : p)) }));
    throw new RpcError(ErrorCode.INVALID_ARGUMENT, `invalid input for "${what}": ${issues.map((i) => i.message).join("; ")}`, { issues });
  }
  return r.value;
}

function errorFrame(err: RpcError, link: PeerLink): ErrorFrame {
  let details = EMPTY;
  let flags = 0;
  if (err.details !== undefined) {
    try {
      const p = encodePayload(err.details, link.payload);
      details = p.payload;
      flags = p.flags;
    } catch { /* details that cannot be encoded are dropped, the code and message still go */ }
  }
  return { type: FrameType.ERROR, flags, code: errorCodeNumber(err.code), message: err.message, payload: details };
}

/** What the peer sees of a handler failure: its RpcError, or a generic INTERNAL (never the stack). */
function publicError(e: unknown, link: PeerLink, where: string): RpcError {
  if (e instanceof RpcError) return e;
  link.onError(e, where);
  return new RpcError(ErrorCode.INTERNAL, `internal error in "${where}"`);
}

/**
 * Stops reading what is left of a stream this side is done with. Without it a peer could keep
 * sending on a stream nobody reads, and Bun's QUIC receiver, which buffers without
 * backpressure, would hold every byte until the connection ends (quinn would hold the stream).
 */
function stopReading(s: BidiStream, reader: FrameReader): void {
  s.stopSending(errorCodeNumber(ErrorCode.DATA_LOSS));
  reader.cancel().catch(() => {});
}

export async function serveStream(link: PeerLink, s: BidiStream, reader: FrameReader, first: Frame): Promise<void> {
  if (first.type === FrameType.REQUEST) {
    // A reused stream carries one call after another: each answer is followed by the next REQUEST.
    for (let req: RequestFrame | undefined = first; req;) req = await serveRequest(link, s, reader, req);
    return;
  }
  if (first.type === FrameType.OPEN) return serveOpen(link, s, reader, first);
  stopReading(s, reader);
  await writeFrame(s, link.frames, errorFrame(new RpcError(ErrorCode.DATA_LOSS, `unexpected first frame type ${first.type}`), link)).catch(() => {});
  await s.end().catch(() => {});
}

/** Per connection signal, what runs when it aborts (see `whenAborted`). */
const onAbortOf = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Runs `fn` when `signal` aborts (never if it already has); returns the way to take it back. One
 * listener per signal however many streams and calls wait on it: `addEventListener` scans the
 * listeners already there (a signal with 10,000 took 11 µs per add on Bun and 25 µs on Deno), so
 * a listener per stream made opening n streams on one connection cost O(n²).
 */
function whenAborted(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) return () => {};
  let set = onAbortOf.get(signal);
  if (!set) {
    const fns = (set = new Set());
    onAbortOf.set(signal, fns);
    signal.addEventListener("abort", () => {
      for (const f of fns) f();
      fns.clear();
    }, { once: true });
  }
  const fns = set;
  fns.add(fn);
  return () => void fns.delete(fn);
}

/**
 * A request's cancellation state. The AbortSignal handlers see is made only when a handler
 * reads `ctx.signal` (most never do): an AbortController and a listener on the connection per
 * call showed in profiles.
 */
class CallSignal {
  #ac: AbortController | undefined;
  #unlisten: (() => void) | undefined;
  reason: unknown;

  /** @param connection Aborted when the connection ends. */
  constructor(private readonly connection: AbortSignal) {}

  get aborted(): boolean {
    return this.reason !== undefined || this.connection.aborted;
  }

  /** @internal Told when the call is aborted (set while a handler's promise is awaited). */
  onAbort: ((reason: unknown) => void) | undefined;

  abort(reason: unknown): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.#ac?.abort(reason);
    this.onAbort?.(reason);
  }

  get signal(): AbortSignal {
    if (!this.#ac) {
      const ac = (this.#ac = new AbortController());
      const conn = this.connection;
      if (this.reason !== undefined) ac.abort(this.reason);
      else if (conn.aborted) ac.abort(conn.reason);
      else this.#unlisten = whenAborted(conn, () => ac.abort(conn.reason));
    }
    return this.#ac.signal;
  }

  dispose(): void {
    this.#unlisten?.();
  }
}

/**
 * The handler's result, or the call's abort reason as soon as the call ends without it
 * (deadline, cancel, lost connection). A handler that ignores its signal then runs on alone:
 * the call's stream, its `inFlight` count and its answer are freed now, the handler's late
 * result is dropped, and `peer.stats.overrunHandlers` counts it.
 */
function untilAborted<T>(link: PeerLink, call: CallSignal, work: T | PromiseLike<T>): T | Promise<T> {
  if (typeof (work as PromiseLike<T> | undefined)?.then !== "function") return work as T;
  if (call.aborted) call.abort(call.reason ?? link.signal.reason);
  // A lost connection ends the call (one listener per connection, shared: `whenAborted`).
  const unlisten = whenAborted(link.signal, () => call.abort(link.signal.reason));
  return new Promise<T>((resolve, reject) => {
    let done = false;
    call.onAbort = (reason) => {
      if (done) return;
      done = true;
      link.stats.overrunHandlers++;
      reject(reason);
    };
    if (call.reason !== undefined) call.onAbort(call.reason);
    (work as PromiseLike<T>).then(
      (v) => void (done || ((done = true), resolve(v))),
      (e) => void (done || ((done = true), reject(e))),
    );
  }).finally(() => {
    unlisten();
    call.onAbort = undefined;
  });
}

/**
 * Answers a request or stream open refused before any of it was decoded or run. The stream is
 * then done, unless it is a reused request stream (`reuse`): the refused call is answered and the
 * stream kept for the caller's next REQUEST, which is returned.
 */
async function refuse(link: PeerLink, s: BidiStream, reader: FrameReader, v: Refused, what: string, reuse = false): Promise<RequestFrame | undefined> {
  const err = v.why === "permissionDenied"
    ? new RpcError(ErrorCode.PERMISSION_DENIED, `${what}: permission denied`)
    : new RpcError(ErrorCode.RESOURCE_EXHAUSTED, `${what}: rate limit exceeded, retry after ${v.retryAfterMs} ms`, { retryAfterMs: v.retryAfterMs });
  if (!reuse) stopReading(s, reader);
  if (link.signal.aborted) return undefined;
  const written = await writeFrame(s, link.frames, errorFrame(err, link)).then(() => true, () => false);
  if (reuse && written) return nextRequest(link, s, reader);
  if (!reuse) s.end().catch(() => {});
  return undefined;
}

/**
 * What follows the answer on a reused request stream: the next REQUEST, or undefined once the
 * caller ended its half (then ours is ended too). Anything else breaks the protocol: the stream
 * is refused (stopReading) and ended.
 */
async function nextRequest(link: PeerLink, s: BidiStream, reader: FrameReader): Promise<RequestFrame | undefined> {
  let f: Frame | RpcError | undefined;
  try {
    f = await reader.next();
  } catch (e) {
    f = e instanceof RpcError ? e : undefined; // a refused frame, or the stream was reset
  }
  return afterAnswer(link, s, reader, f);
}

/**
 * Acts on what followed an answer on a reused stream (`f`): the next REQUEST is returned; a
 * frame the reader refused (malformed, oversize) is counted and answered with its error, then
 * the stream is ended; any other frame is refused; the end of the caller's half ends ours.
 */
async function afterAnswer(link: PeerLink, s: BidiStream, reader: FrameReader, f: Frame | RpcError | undefined): Promise<RequestFrame | undefined> {
  if (f && !(f instanceof RpcError) && f.type === FrameType.REQUEST) return f;
  if (f instanceof RpcError) {
    link.peer.countRefusedFrame(f);
    await writeFrame(s, link.frames, errorFrame(f, link)).catch(() => {});
  }
  if (f) stopReading(s, reader);
  s.end().catch(() => {});
  return undefined;
}

type Refused = Exclude<Verdict, { ok: true }>;

/** Runs a handler: directly when there is no schema and no middleware (each await is a hop per call). */
function invoke(registry: Registry, def: HandlerDefinition, ctx: Context, input: unknown, method: string): unknown {
  const schema = def.options.input;
  if (registry.middleware.length === 0 && !schema) return def.fn(ctx, input);
  return registry.run(ctx, async () => await def.fn(ctx, schema ? await validate(schema, input, method) : input));
}

/**
 * Serves one REQUEST. Resolves with the next REQUEST when the caller reuses the stream (REUSE)
 * and sent one after our answer; undefined once the stream is done.
 */
async function serveRequest(link: PeerLink, s: BidiStream, reader: FrameReader, req: RequestFrame): Promise<RequestFrame | undefined> {
  const { registry, frames, payload } = link;
  const guard = link.guard;
  // Access policy and rate limits first: nothing of a refused call is decoded or run.
  const checked = guard.check("request", req.method);
  const verdict = "then" in checked ? await checked : checked;
  const reuse = (req.flags & FrameFlag.REUSE) !== 0;
  if (!verdict.ok) return refuse(link, s, reader, verdict, `"${req.method}"`, reuse);
  const def = registry.handlers.get(req.method);
  // Data sent as 0-RTT early data can be replayed by an attacker: only idempotent handlers may
  // run on it; anything else waits for the handshake (a replay never completes one).
  const early = def?.options.idempotent ? undefined : guard.holdEarly();
  if (early) await early;
  const call = new CallSignal(link.signal);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = req.deadlineMs > 0 ? Date.now() + req.deadlineMs : undefined;
  // Set when the deadline fires: the caller is then told so (it may not have a timer of its own).
  let expired: RpcError | undefined;
  // Timers clamp a delay above MAX_TIMER_MS to 1 ms: such a deadline (over 24 days) would fire
  // at once, so it gets no timer; ctx.deadline still tells the handler.
  if (req.deadlineMs > 0 && req.deadlineMs <= MAX_TIMER_MS) {
    timer = setTimeout(() => {
      expired = new RpcError(ErrorCode.DEADLINE_EXCEEDED, `"${req.method}" passed its ${req.deadlineMs} ms deadline`);
      call.abort(expired);
    }, req.deadlineMs);
  }
  let answered = false;
  // A CANCELLABLE caller keeps its half open until it has the answer: an ERROR frame or the end
  // of its half before that means it cancelled. Otherwise its FIN came with the request (read
  // anyway: quinn frees a stream only once its receiving side is read to the end). What may
  // follow a REQUEST is its FIN, or an ERROR then the FIN; anything more is no part of the call
  // and the rest of the stream is refused (stopReading), never left to pile up unread. A REUSE
  // caller keeps its half open too; after our answer it sends its next REQUEST on the stream, or
  // ends its half.
  const cancellable = (req.flags & (FrameFlag.CANCELLABLE | FrameFlag.REUSE)) !== 0;
  // A cancel before the answer (and before the deadline: a timed-out caller cancels honestly)
  // counts toward the peer's reset budget, the rapid-reset defence.
  const arrived = Date.now();
  const cancel = (why: string, reset: boolean, code?: number) => {
    if (answered || !(cancellable || reset)) return;
    // A caller whose own timer fired cancels with DEADLINE_EXCEEDED, often a little before our
    // copy of the deadline (its clock started first): honest if at least half of it had passed.
    const timedOut = deadline !== undefined && code === DEADLINE_CODE && Date.now() - arrived >= req.deadlineMs / 2;
    if (!expired && !timedOut && !(deadline !== undefined && Date.now() >= deadline) && !link.signal.aborted) link.countReset();
    if (cancellable) call.abort(new RpcError(ErrorCode.CANCELLED, `"${req.method}" cancelled: ${why}`));
  };
  // What follows the request on the stream: the next call's REQUEST (reused, after our answer),
  // else undefined.
  const following = (async (): Promise<Frame | RpcError | undefined> => {
    let f = await reader.next();
    if (reuse && answered && f?.type === FrameType.REQUEST) return f;
    cancel(f?.type === FrameType.ERROR ? f.message : "the caller went away", false, f?.type === FrameType.ERROR ? f.code : undefined);
    if (f?.type === FrameType.ERROR) f = await reader.next();
    if (f) stopReading(s, reader);
    return undefined;
  })().catch((e) => {
    cancel("the caller reset the stream", !(e instanceof TransportError && e.code === "CLOSED"));
    return e instanceof RpcError ? e : undefined; // a frame the reader refused is answered below
  });
  link.stats.inFlight++;
  // A handler slot, held until the handler returns, even past the end of its call: QUIC gives
  // a reset stream's slot back at once, so only this bounds the handlers one peer can start.
  const slot = guard.acquireHandler();
  if (slot) await slot;
  let released = false;
  let started = false;
  const release = () => {
    if (released) return;
    released = true;
    guard.releaseHandler();
  };
  let reply: Frame;
  let encoded: Uint8Array[] | undefined;
  // A SERVER span (child of the caller's, from the request's trace context) and the duration
  // histogram, when an OpenTelemetry SDK is registered.
  const obs = serverCall(req.method, link.ends, req.metadata);
  let outcome: RpcError | undefined;
  try {
    if (call.aborted) throw call.reason ?? link.signal.reason;
    if (!def) throw new RpcError(ErrorCode.NOT_FOUND, `no handler for "${req.method}"`);
    let input: unknown;
    try {
      input = decodePayload(req.flags, req.payload, payload);
    } catch (e) {
      throw new RpcError(ErrorCode.INVALID_ARGUMENT, `"${req.method}": cannot decode the input: ${(e as Error).message}`);
    }
    const ctx = context(link, "request", req.method, req, call, deadline);
    // Traced: the handler runs in its span's context (no closure on the untraced path).
    const work = obs ? obs.run(() => invoke(registry, def, ctx, input, req.method)) : invoke(registry, def, ctx, input, req.method);
    started = true;
    if (typeof (work as PromiseLike<unknown> | undefined)?.then === "function") (work as PromiseLike<unknown>).then(release, release);
    else release();
    const result = await untilAborted(link, call, work);
    const p = encodePayload(result, payload);
    reply = { type: FrameType.RESPONSE, flags: p.flags, metadata: {}, payload: p.payload };
    encoded = encodeFrame(frames, reply); // a result too large or unencodable becomes an error below
  } catch (e) {
    outcome = publicError(e, link, req.method);
    reply = errorFrame(outcome, link);
    encoded = undefined;
  } finally {
    if (!started) release(); // the handler never ran (or threw at once): its slot is free now
    obs?.end(expired ? expired.code : outcome ? outcome.code : "OK", outcome);
    clearTimeout(timer);
    link.stats.inFlight--;
    call.dispose();
  }
  answered = true;
  link.stats.requestsServed++;
  // Cancelled, or the connection is gone: nobody is waiting for the answer. Past the deadline the
  // caller may still be waiting (a raw caller, or one whose own timer has not fired yet): it is
  // told DEADLINE_EXCEEDED rather than left with a bare FIN.
  if (link.signal.aborted) return undefined; // the connection is gone: nothing can be written
  if (call.aborted && !(expired && call.reason === expired)) return void s.end().catch(() => {});
  if (expired) {
    reply = errorFrame(expired, link);
    encoded = undefined;
  }
  try {
    const parts = encoded ?? encodeFrame(frames, reply);
    // One part and a stack that takes it at once (Bun): no async write and its turns.
    if (!(parts.length === 1 && s.writeSync?.(parts[0]))) await writeParts(s, parts);
  } catch {
    return undefined; // the caller went away
  }
  if (!reuse) return void s.end().catch(() => {}); // nobody waits on our FIN
  return afterAnswer(link, s, reader, await following);
}

async function serveOpen(link: PeerLink, s: BidiStream, reader: FrameReader, open: OpenFrame): Promise<void> {
  const { registry, frames } = link;
  const guard = link.guard;
  const checked = guard.check("stream", open.name);
  const verdict = "then" in checked ? await checked : checked;
  if (!verdict.ok) return void await refuse(link, s, reader, verdict, `stream "${open.name}"`);
  // Opened in 0-RTT early data, which an attacker can replay: wait for the handshake.
  const early = guard.holdEarly();
  if (early) await early;
  const def = registry.streams.get(open.name);
  const ac = new AbortController();
  const unlisten = whenAborted(link.signal, () => ac.abort(link.signal.reason));
  let mode: StreamMode | undefined;
  let modeError: RpcError | undefined;
  let dg: number | undefined;
  try {
    if (open.payload.length > 0) {
      const o = link.payload.decode(open.payload) as { ts?: TimeSyncOptions; dg?: number } | undefined;
      const ts = o?.ts;
      if (ts !== undefined) checkTimeSyncOptions(ts);
      if (o?.dg !== undefined) {
        if (!Number.isSafeInteger(o.dg) || o.dg < 0) throw new RangeError(`bad datagram id ${String(o.dg)}`);
        if (!link.hasDatagrams()) throw new RpcError(ErrorCode.FAILED_PRECONDITION, `stream "${open.name}": unreliable streams need QUIC datagrams, which this connection does not have`);
        dg = o.dg;
      }
      mode = link.streamMode(ts, dg);
    }
  } catch (e) {
    modeError = e instanceof RpcError ? e : new RpcError(ErrorCode.INVALID_ARGUMENT, `stream "${open.name}": bad stream options: ${(e as Error).message}`);
  }
  const idleMs = guard.limits.streamIdleTimeoutMs;
  const creditDelay = guard.streamBytes(open.name);
  const streamGuard = idleMs > 0 || creditDelay ? { idleMs, creditDelay, onIdle: () => void link.stats.rejected.streamIdle++ } : undefined;
  // Registered for its datagrams by its constructor (DatagramLink.register).
  const stream = new EchoStream(open.name, open.metadata, s, reader, frames, modeError ? undefined : mode, link.trackStream(), streamGuard);
  let obs: ObservedCall | undefined;
  try {
    const ctx = context(link, "stream", open.name, open, ac.signal);
    // A CONSUMER span for the stream's life under the opener's, when an SDK records.
    obs = consume(open.name, link.ends, open.metadata);
    const run = () =>
      registry.run(ctx, async () => {
        if (modeError) throw modeError;
        if (!def) throw new RpcError(ErrorCode.NOT_FOUND, `no stream handler for "${open.name}"`);
        await writeFrame(s, frames, { type: FrameType.RESPONSE, flags: FrameFlag.RAW, metadata: {}, payload: EMPTY });
        link.stats.streamsAccepted++;
        await def.fn(ctx, stream);
      });
    await (obs ? obs.run(run) : run());
    obs?.end("OK");
    await stream.release();
  } catch (e) {
    const err = publicError(e, link, open.name);
    obs?.end(err.code, err);
    await stream.abort(err);
  } finally {
    unlisten();
  }
}

/** Rate-limited events in a row that make a flood: the lane then pauses (FLOOD_PAUSE_*). */
const FLOOD_RUN = 256;
const FLOOD_PAUSE_MIN_MS = 50;
const FLOOD_PAUSE_MAX_MS = 250;

/** Reads the peer's event lane: EVENT frames, dispatched in order. */
export async function serveEvents(link: PeerLink, r: RecvStream, budget?: ReceiveBudget): Promise<void> {
  const reader = new FrameReader(r, link.frames, budget);
  try {
    // Events are never replay-safe: the lane waits for the handshake (counted once per lane).
    const early = link.guard.holdEarly();
    if (early) await early;
    let limitedRun = 0;
    for (let f = await reader.next(); f; f = await reader.next()) {
      if (f.type !== FrameType.EVENT) throw new RpcError(ErrorCode.DATA_LOSS, `unexpected frame type ${f.type} on the event lane`);
      link.stats.eventsReceived++;
      // Access policy and rate limits before anything is decoded; a refused event is dropped
      // and counted (events have no reply).
      const checked = link.guard.check("event", f.topic);
      const verdict = "then" in checked ? await checked : checked;
      if (verdict.ok) {
        limitedRun = 0;
        dispatchEvent(link, f);
      } else if (verdict.why === "rateLimited" && ++limitedRun >= FLOOD_RUN) {
        // A flood: every event over the rate is still dropped and counted, but the lane is not
        // read for a moment, so QUIC flow control holds the sender instead of this side paying
        // a frame decode and a check for each event it drops.
        limitedRun = 0;
        await new Promise((r) => setTimeout(r, Math.min(FLOOD_PAUSE_MAX_MS, Math.max(FLOOD_PAUSE_MIN_MS, verdict.retryAfterMs))));
      }
    }
  } catch (e) {
    // The peer's bytes, not our failure: counted like a refused stream, not reported as an error
    // (a peer sending garbage lanes must not flood the application's error sink).
    if (!link.guard.countRefusedFrame(e) && !link.peer.isClosed && !(e instanceof TransportError)) link.onError(e, "event lane");
    r.stopSending(errorCodeNumber(ErrorCode.DATA_LOSS));
  }
}

/** Listeners start in arrival order; an async listener's work is not awaited before the next. */
function dispatchEvent(link: PeerLink, ev: EventFrame): void {
  const def = link.registry.listeners.get(ev.topic);
  if (!def) {
    link.stats.unhandledEvents++;
    return;
  }
  let value: unknown;
  try {
    value = decodePayload(ev.flags, ev.payload, link.payload);
  } catch {
    link.stats.droppedEvents++;
    return;
  }
  if (!link.guard.startListener()) return; // too many listener calls still running: dropped, counted
  const ctx = context(link, "event", ev.topic, ev, link.signal);
  // A CONSUMER span under the emitter's (trace context in the event's metadata), when an SDK records.
  const obs = consume(ev.topic, link.ends, ev.metadata);
  const run = () => link.registry.run(ctx, async () => {
    let v: unknown;
    try {
      v = await validate(def.options.input, value, ev.topic);
    } catch {
      link.stats.droppedEvents++;
      return;
    }
    await def.fn(ctx, v);
  });
  (obs ? obs.run(run) : run())
    .then(() => obs?.end("OK"), (e) => {
      obs?.end(e instanceof RpcError ? e.code : ErrorCode.INTERNAL, e);
      link.onError(e, ev.topic);
    })
    .finally(() => link.guard.endListener());
}
