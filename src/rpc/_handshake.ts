// The HELLO/WELCOME handshake on the control stream, and routing of everything else the other
// side opens, for both roles.

import { logger } from "../observe/log.ts";
import { formatAddress } from "./_options.ts";
import type { HelloInfo } from "./context.ts";
import type { FrameCodec } from "../protocol/codec.ts";
import { type Frame, FrameType, type HelloFrame } from "../protocol/frame.ts";
import type { PeerLimits } from "../security/limits.ts";
import { after } from "./_deadline.ts";
import type { GuardInit } from "./_guard.ts";
import type { Who } from "../security/access.ts";
import type { PayloadCodec } from "../protocol/payload_codec.ts";
import { ErrorCode, errorCodeFromNumber, errorCodeNumber, RpcError } from "../protocol/rpc_error.ts";
import { CloseCode, PROTOCOL_VERSION } from "../protocol/version.ts";
import type { BidiStream, Connection } from "../transport/types.ts";
import { TransportError } from "../transport/transport_error.ts";
import { FrameReader, type ReceiveBudget } from "../wire/frame_reader.ts";
import { goAwayAndClose } from "../wire/frame_writer.ts";
import { decodePayload } from "../wire/payload.ts";
import { closeError, toRpcError } from "../wire/errors.ts";
import { type ClockSource, type ClockSyncOptions, SyncedClock } from "../clock/sync.ts";
import { Peer } from "./peer.ts";
import type { Registry } from "./registry.ts";

const EMPTY: Uint8Array = new Uint8Array(0);

/** Shared by both roles. */
export interface PeerSetup {
  frames: FrameCodec;
  payload: PayloadCodec;
  registry: Registry;
  /** This side's name. */
  name: string;
  onError: (error: unknown, where: string) => void;
  /** This side's clock source. */
  clock: ClockSource;
  /** Clock-sync settings, or false to not ping (PINGs from the other side are still answered). */
  clockSync: ClockSyncOptions | false;
  /** Per-connection limits (first-frame timeout, handler slots, reset budget, …). */
  limits: PeerLimits;
}

/** What each side announces in HELLO/WELCOME. */
interface Caps {
  /** Largest datagram this side's connection can send now (0: none). */
  dgram?: number;
  /** This side's idle timeout (ms). */
  idle?: number;
  /** 1: this side serves REQUESTs flagged REUSE (the next call on the same stream). */
  reuse?: number;
  /** 1: this side takes datagrams carrying several frames back to back. */
  dgb?: number;
}

function localCaps(conn: Connection): Caps {
  return { dgram: conn.maxDatagramSize, idle: conn.idleTimeoutMs, reuse: 1, dgb: 1 };
}

/**
 * Both ends time a quiet connection out at the smaller of their idle timeouts (RFC 9000 §10.1):
 * without this, a server kept a killed client's state for its own 30 s whatever the client asked.
 */
function agreeIdle(conn: Connection, caps: Caps): void {
  if (typeof caps.idle === "number" && Number.isFinite(caps.idle)) conn.lowerIdleTimeout(caps.idle);
}

function remoteCaps(body: unknown): Caps {
  const caps = (body as { caps?: unknown } | undefined)?.caps;
  return caps && typeof caps === "object" ? caps as Caps : {};
}

/**
 * Agrees with the other side's caps (the idle timeout; datagrams when both ends have them; request
 * streams reused when the other side serves them), then starts the peer: its keep-alive and
 * clock exchange.
 */
function startPeer(peer: Peer, conn: Connection, setup: PeerSetup, caps: Caps): void {
  agreeIdle(conn, caps);
  const dgram = typeof caps.dgram === "number" && caps.dgram > 0 && conn.maxDatagramSize > 0;
  peer.start(dgram, setup.clockSync, caps.reuse === 1, caps.dgb === 1);
}

/** Routes the other side's streams once `ready` gives the peer; queued until then. */
function route(conn: Connection, setup: PeerSetup, ready: Promise<Peer>, onHello?: (s: BidiStream, r: FrameReader, f: HelloFrame) => void): void {
  let helloSeen = false;
  let current: Peer | undefined; // once ready, skip the await (a hop per incoming stream)
  ready.then((p) => (current = p), () => {});
  const firstFrameMs = setup.limits.firstFrameTimeoutMs;
  // One budget for the incomplete frames of every stream the other side opens on this connection.
  let refusedEarly = 0; // counted on the peer once it exists
  const budget: ReceiveBudget = {
    used: 0,
    max: setup.limits.maxBufferedBytes,
    onRefused: () => (current ? current.countRejected("bufferFull") : refusedEarly++),
  };
  ready.then((p) => p.countRejected("bufferFull", refusedEarly), () => {});
  conn.handle({
    bidi: async (s) => {
      const reader = new FrameReader(s, setup.frames, budget);
      // Slowloris: a stream whose first frame is not complete in time is ended and counted (a
      // silent stream would otherwise hold its slot for as long as the connection lives).
      let abandoned = false;
      const unguard = after(firstFrameMs, () => {
        abandoned = true;
        if (current) {
          // Being closed for abuse already: the close ends this stream with the rest. Tearing
          // down a thousand silent streams one by one in one timer tick cost the honest peers'
          // latency for nothing.
          if (current.isClosing) return;
          current.countRejected("firstFrameTimeout");
          // A silent stream is non-productive like a reset one, and the stack may keep its state
          // until the peer resets it (quinn does): it counts toward the reset budget.
          current.countReset();
        }
        s.stopSending(errorCodeNumber(ErrorCode.DEADLINE_EXCEEDED));
        s.reset(errorCodeNumber(ErrorCode.DEADLINE_EXCEEDED));
        reader.cancel().catch(() => {});
      });
      let first: Frame | undefined;
      try {
        first = await reader.next();
      } catch (e) {
        unguard();
        if (abandoned) return;
        // Reset before its first frame: counted toward the peer's reset budget, like a cancel.
        if (e instanceof TransportError && e.code === "STREAM_RESET" && current) current.countReset();
        return refuseStream(setup, s, e, current);
      }
      unguard();
      if (abandoned) return;
      try {
        if (!first) return void s.end().catch(() => {});
        if (first.type === FrameType.HELLO && onHello && !helloSeen) {
          helloSeen = true;
          return onHello(s, reader, first);
        }
        const peer = current ?? (await ready);
        await peer.serve(s, reader, first);
      } catch (e) {
        await refuseStream(setup, s, e, current);
      }
    },
    uni: (r) => {
      ready.then((peer) => peer.serveEvents(r, budget), () => r.stopSending(0));
    },
    datagram: (d) => {
      const t = setup.clock(); // first thing: the receive time of a PING or PONG
      if (current) current.receiveDatagram(d, t);
    },
  });
}

/**
 * Ends an incoming stream that failed before it was served, telling the peer why when it can: the
 * RpcError its first frame earned, or INTERNAL (never the cause's text) for a failure of ours.
 */
async function refuseStream(setup: PeerSetup, s: BidiStream, e: unknown, peer: Peer | undefined): Promise<void> {
  let why: RpcError | undefined;
  if (e instanceof RpcError) {
    if (peer && !peer.isClosing) peer.countRefusedFrame(e);
    why = e; // an oversize or malformed first frame
  } else if (!(e instanceof TransportError)) {
    setup.onError(e, "incoming stream");
    why = new RpcError(ErrorCode.INTERNAL, "internal error while setting up the stream");
  }
  if (why) {
    const f = setup.frames.encode({ type: FrameType.ERROR, flags: 0, code: errorCodeNumber(why.code), message: why.message, payload: EMPTY });
    await s.write(f).catch(() => {});
  }
  s.stopSending(errorCodeNumber(ErrorCode.CANCELLED));
  s.end().catch(() => {});
}

/**
 * Server side: waits for HELLO, checks version and credentials, answers WELCOME. One deadline,
 * `handshakeTimeoutMs`, covers the whole of it, `authenticate` included: a hung auth backend must
 * not hold connections open (each one costs the server state until it ends).
 */
export function acceptPeer(
  conn: Connection,
  setup: PeerSetup,
  opts: {
    authenticate?: (hello: HelloInfo) => unknown | Promise<unknown>;
    handshakeTimeoutMs: number;
    /** This connection's defences, computed once from who the peer turned out to be; throws to refuse it. */
    guard?: (who: Who) => GuardInit;
    /** Whether 0-RTT early data is accepted: then requests may arrive before the TLS handshake completes. */
    earlyData?: boolean;
    /** Told why a connection was refused, for the server's counters. */
    onRefused?: (why: "handshakeTimeout" | "unauthenticated") => void;
  },
): Promise<Peer> {
  let resolve!: (p: Peer) => void;
  let reject!: (e: unknown) => void;
  const ready = new Promise<Peer>((a, b) => ((resolve = a), (reject = b)));
  ready.catch(() => {});
  let control: BidiStream | undefined; // set once HELLO has arrived
  let done = false; // WELCOME sent or the connection refused: later outcomes are ignored
  const timer = setTimeout(() => {
    if (done) return;
    if (control) {
      const ms = opts.handshakeTimeoutMs;
      opts.onRefused?.("handshakeTimeout");
      return void refuse(control, new RpcError(ErrorCode.UNAVAILABLE, `authentication did not complete within the handshake timeout (${ms} ms)`), CloseCode.HANDSHAKE_TIMEOUT);
    }
    done = true;
    opts.onRefused?.("handshakeTimeout");
    reject(new RpcError(ErrorCode.DEADLINE_EXCEEDED, "no HELLO within the handshake timeout"));
    conn.close(CloseCode.HANDSHAKE_TIMEOUT, "no HELLO within the handshake timeout").catch(() => {});
  }, opts.handshakeTimeoutMs);
  conn.closed.then(() => {
    clearTimeout(timer);
    // Gone before the handshake finished: settle it, so the server counts it out and streams
    // queued for the peer are released.
    if (!done) {
      done = true;
      reject(new RpcError(ErrorCode.UNAVAILABLE, "the connection closed during the handshake"));
    }
  });
  const refuse = async (s: BidiStream, err: RpcError, close: number) => {
    done = true;
    clearTimeout(timer);
    reject(err);
    setup.onError(err, `handshake with ${conn.remote.host}:${conn.remote.port}`);
    await goAwayAndClose(setup.frames, conn, s, err, close, true);
  };
  route(conn, setup, ready, async (s, reader, hello) => {
    if (done) return void s.end().catch(() => {}); // HELLO after the timeout closed the connection
    control = s;
    if (hello.version !== PROTOCOL_VERSION) {
      return refuse(s, new RpcError(ErrorCode.FAILED_PRECONDITION, `protocol version mismatch: server speaks ${PROTOCOL_VERSION}, client sent ${hello.version}`), CloseCode.VERSION_MISMATCH);
    }
    let principal: unknown;
    let caps: Caps = {};
    let body: { auth?: unknown } | undefined;
    try {
      body = decodePayload(hello.flags, hello.payload, setup.payload) as { auth?: unknown } | undefined;
    } catch (e) {
      // Not the application's authenticate failing: a malformed HELLO, refused as such.
      return refuse(s, new RpcError(ErrorCode.DATA_LOSS, `malformed HELLO body: ${(e as Error).message}`), CloseCode.PROTOCOL_ERROR);
    }
    try {
      caps = remoteCaps(body);
      principal = opts.authenticate
        ? await opts.authenticate({ name: hello.name, auth: body?.auth, remote: conn.remote, certificate: conn.peerCertificate })
        : undefined;
    } catch (e) {
      if (done) return; // refused at the timeout already
      const err = e instanceof RpcError ? e : new RpcError(ErrorCode.UNAUTHENTICATED, "authentication failed");
      if (!(e instanceof RpcError)) setup.onError(e, "authenticate");
      opts.onRefused?.("unauthenticated");
      logger("security").info("authentication refused for {remote} ({name}): {message}", { remote: formatAddress(conn.remote), name: hello.name, message: err.message });
      return refuse(s, err, CloseCode.UNAUTHENTICATED);
    }
    if (done) return; // a late answer: the connection was refused at the timeout
    let guard: GuardInit | undefined;
    try {
      guard = opts.guard?.({ principal, certificate: conn.peerCertificate, remote: conn.remote, peerName: hello.name });
      // Until the handshake completes, what arrives came as replayable 0-RTT early data.
      if (guard && opts.earlyData) guard = { ...guard, handshake: conn.handshake };
    } catch (e) {
      // Per-peer access rules that cannot be computed fail closed: the connection is refused.
      setup.onError(e, "accessControl perPeer");
      opts.onRefused?.("unauthenticated");
      return refuse(s, new RpcError(ErrorCode.PERMISSION_DENIED, "access rules for this peer could not be computed"), CloseCode.UNAUTHENTICATED);
    }
    done = true;
    clearTimeout(timer);
    const clock = new SyncedClock(setup.clock, setup.frames, setup.clockSync || {});
    const peer = new Peer({ conn, role: "server", frames: setup.frames, payload: setup.payload, registry: setup.registry, remoteName: hello.name, principal, onError: setup.onError, clock, guard, control: s });
    peer.closed.then(() => clock.free());
    try {
      await s.write(setup.frames.encode({ type: FrameType.WELCOME, flags: 0, version: PROTOCOL_VERSION, name: setup.name, payload: setup.payload.encode({ caps: localCaps(conn) }) }));
    } catch (e) {
      return reject(toRpcError(e));
    }
    resolve(peer);
    watchControl(peer, conn, s, reader, setup);
    startPeer(peer, conn, setup, caps);
  });
  return ready;
}

/** How long the client's side of the handshake may take, and what cancels it. */
export interface ConnectLimit {
  /** When to give up, on the `performance.now()` clock. */
  deadline: number;
  /** The whole connect timeout, for the error message. */
  timeoutMs: number;
  /** Cancels the handshake (the client was closed while reconnecting). */
  signal?: AbortSignal;
}

/**
 * Client side: sends HELLO on a new control stream and waits for WELCOME, until `limit.deadline`
 * (then `UNAVAILABLE`, like a QUIC handshake that timed out) or `limit.signal` (`CANCELLED`).
 * On any failure the connection is closed.
 */
export async function connectPeer(
  conn: Connection,
  setup: PeerSetup,
  auth: unknown,
  clock: SyncedClock,
  limit: ConnectLimit,
  guardFor?: (who: Who) => GuardInit,
): Promise<Peer> {
  let resolve!: (p: Peer) => void;
  let reject!: (e: unknown) => void;
  const ready = new Promise<Peer>((a, b) => ((resolve = a), (reject = b)));
  ready.catch(() => {});
  route(conn, setup, ready);
  // Every await below races `stop`, so a server that never answers (or a close()) cannot hold it.
  let closeCode: number = CloseCode.PROTOCOL_ERROR;
  const onAbort = () => stopWith(CloseCode.NORMAL, new RpcError(ErrorCode.CANCELLED, "connect cancelled: the client was closed"));
  let stopWith!: (code: number, e: RpcError) => void;
  const stop = new Promise<never>((_, fail) => {
    stopWith = (code, e) => {
      closeCode = code;
      fail(e);
    };
  });
  stop.catch(() => {});
  const timer = setTimeout(() => {
    const where = `${conn.remote.host}:${conn.remote.port}`;
    stopWith(CloseCode.HANDSHAKE_TIMEOUT, new RpcError(ErrorCode.UNAVAILABLE, `cannot connect to ${where}: no WELCOME within the ${limit.timeoutMs} ms connect timeout`));
  }, Math.max(0, limit.deadline - performance.now()));
  if (limit.signal?.aborted) onAbort();
  limit.signal?.addEventListener("abort", onAbort, { once: true });
  const bounded = <T>(p: Promise<T>): Promise<T> => Promise.race([p, stop]);
  // A transport failure while opening, writing or reading the control stream is explained by
  // the server's close when there is one: a refusal at a connection limit can land before the
  // stream is even open (under load), and must read the same as one met by the first read.
  const explained = async (e: unknown): Promise<never> => {
    throw e instanceof RpcError ? e : (await closedBy(conn)) ?? e;
  };
  try {
    const s = await bounded(conn.openBidi()).catch(explained);
    const reader = new FrameReader(s, setup.frames);
    await bounded(s.write(setup.frames.encode({ type: FrameType.HELLO, flags: 0, version: PROTOCOL_VERSION, name: setup.name, payload: setup.payload.encode({ auth, caps: localCaps(conn) }) })))
      .catch(explained);
    const f: Frame | undefined = await bounded(reader.next()).catch(explained);
    if (f?.type === FrameType.GOAWAY) throw new RpcError(errorCodeFromNumber(f.code), `server refused the connection: ${f.reason}`);
    if (!f) throw (await closedBy(conn)) ?? new RpcError(ErrorCode.UNAVAILABLE, "the server did not answer HELLO");
    if (f.type !== FrameType.WELCOME) throw new RpcError(ErrorCode.UNAVAILABLE, "the server did not answer HELLO");
    if (f.version !== PROTOCOL_VERSION) {
      closeCode = CloseCode.VERSION_MISMATCH;
      throw new RpcError(ErrorCode.FAILED_PRECONDITION, `protocol version mismatch: client speaks ${PROTOCOL_VERSION}, server answered ${f.version}`);
    }
    let caps: Caps = {};
    try {
      caps = remoteCaps(decodePayload(f.flags, f.payload, setup.payload));
    } catch { /* no caps: no datagrams */ }
    // No await from here on: a peer is made only while neither deadline nor cancel has fired.
    let guard: GuardInit | undefined;
    try {
      guard = guardFor?.({ principal: undefined, certificate: undefined, remote: conn.remote, peerName: f.name });
    } catch (e) {
      throw new RpcError(ErrorCode.PERMISSION_DENIED, `access rules for the server could not be computed: ${(e as Error)?.message ?? e}`, undefined, { cause: e });
    }
    const peer = new Peer({ conn, role: "client", frames: setup.frames, payload: setup.payload, registry: setup.registry, remoteName: f.name, principal: undefined, onError: setup.onError, clock, guard, control: s });
    resolve(peer);
    watchControl(peer, conn, s, reader, setup);
    startPeer(peer, conn, setup, caps);
    return peer;
  } catch (e) {
    const err = toRpcError(e);
    reject(err);
    conn.close(closeCode, err.message).catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
    limit.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Why the server ended the handshake by closing the connection (its close code and reason), when
 * it did: a server at a connection limit closes with 0x106 before reading HELLO, which reads
 * as `RESOURCE_EXHAUSTED` (try later or elsewhere); other closes as `UNAVAILABLE`.
 */
async function closedBy(conn: Connection): Promise<RpcError | undefined> {
  const info = await Promise.race([conn.closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 200))]);
  if (!info || info.local) return undefined;
  return closeError(info, "the server closed the connection during the handshake");
}

/**
 * Keeps reading the control stream after the handshake: GOAWAY marks the peer as going away;
 * PING is answered and PONG feeds the clock (the stream fallback of clock sync).
 */
function watchControl(peer: Peer, conn: Connection, control: BidiStream, reader: FrameReader, setup: PeerSetup): void {
  /** The control stream broke the protocol: say why on it, then close the connection. */
  const violation = (message: string) => {
    if (peer.isClosed) return;
    goAwayAndClose(setup.frames, conn, control, new RpcError(ErrorCode.DATA_LOSS, message), CloseCode.PROTOCOL_ERROR, false);
  };
  const closingSoon = () => Promise.race([peer.closed, new Promise((r) => setTimeout(r, 100))]);
  (async () => {
    for (let f = await reader.next(); f; f = await reader.next()) {
      if (!peer.receiveControl(f, setup.clock())) return violation(`unexpected frame type ${f.type} on the control stream`);
    }
    // The control stream lives as long as the connection: its end is no clean goodbye (unless
    // the connection is closing, which some stacks show as an end of every stream first).
    await closingSoon();
    violation("the control stream ended");
  })().catch(async (e) => {
    await closingSoon();
    violation(`the control stream failed: ${(e as Error)?.message ?? String(e)}`);
  });
}
