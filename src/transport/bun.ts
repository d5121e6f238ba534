/**
 * Transport adapter for Bun's native `node:quic` (Bun ≥ 1.4). A thin mapping: native errors
 * become {@link TransportError}s here, and nowhere above.
 *
 * Stack facts this adapter works around (measured, docs/TRANSPORT.md): `await writer.write()`
 * throws when the send buffer is full instead of waiting, so writes use `writeSync` and the
 * writer's drain hook; `handshakeTimeout` is ignored, so the handshake has its own timer; each
 * read yields an array of chunks; stream slots come back in batches of half the advertised limit,
 * so incoming streams pass a gate (`_stream_gate.ts`); a stream opened past the peer's limit is
 * handed out "pending", so `openBidi` waits until it has a slot; an endpoint made per client
 * connection stays open after its session closes, so client connections share pooled endpoints.
 *
 * @module
 */

import type {
  BatchReads,
  BidiStream,
  CloseInfo,
  Connection,
  ConnectionStats,
  ConnectOptions,
  HandshakeInfo,
  IncomingHandlers,
  Listener,
  ListenOptions,
  OpenStreamOptions,
  PeerCertificate,
  SendStream,
  Transport,
} from "./types.ts";

/** The transport interface types this adapter implements, so this entry point documents itself. */
export type * from "./types.ts";
import { serverTls } from "./_server_tls.ts";
import { advertisedStreams, slotGivenUp, StreamGate } from "./_stream_gate.ts";
import { PendingOpens } from "./_bun_slots.ts";
import { ConnectionSet, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_BIDI_STREAMS, DEFAULT_MAX_UNI_STREAMS, lowerIdle } from "./_connections.ts";
import { handshakeDeadline } from "./_handshake.ts";
import { Incoming } from "./_incoming.ts";
import {
  checkDatagram,
  clientTrust,
  handshakeError,
  keepAliveMs,
  listenError,
  TransportError,
  TransportErrorCode as E,
} from "./transport_error.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const DRAIN = Symbol.for("Stream.drainableProtocol");
const RESOLVED: Promise<void> = Promise.resolve();

let quicModule: Promise<Any> | undefined;
function quic(): Promise<Any> {
  // A variable specifier keeps type checkers on other runtimes from resolving node:quic.
  const name = "node:quic";
  return (quicModule ??= import(name));
}

/**
 * Initial flow-control windows, set explicitly: with Bun's defaults a Deno (quinn) peer could not
 * send on streams either side opened toward it (measured: a server-initiated stream between Bun
 * and Deno carried no data in either direction), while Bun peers were unaffected.
 */
const FLOW_WINDOWS = {
  initialMaxStreamDataBidiLocal: 1 << 20,
  initialMaxStreamDataBidiRemote: 1 << 20,
  initialMaxStreamDataUni: 1 << 20,
  initialMaxData: 16 << 20,
};

/** Bun takes `maxIdleTimeout` in seconds (measured); keep the stack's above our watchdog's. */
function stackIdleSeconds(idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS): number {
  return Math.ceil(idleTimeoutMs / 1000) + 2;
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The application code in a Bun read error ("…reset by the peer with error code 77"). */
function codeFrom(e: Any): number | undefined {
  if (typeof e?.errorCode === "bigint") return Number(e.errorCode);
  const m = /error code (\d+)/.exec(String(e?.message ?? ""));
  return m ? Number(m[1]) : undefined;
}

/** How long a graceful session close may take before the session is destroyed. */
const CLOSE_GRACE_MS = 1000;

/**
 * Closes a session, destroying it when the graceful close does not finish in time. Measured on
 * Bun 1.4.5: after `end()` on a unidirectional stream the peer had stopped (STOP_SENDING),
 * `session.close()` never completes (found by the state-machine fuzzer; see docs/TRANSPORT.md).
 */
async function closeSession(session: Any, code: number, reason: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), CLOSE_GRACE_MS)));
  try {
    const closing = Promise.resolve(session.close({ code: BigInt(code), type: "application", reason }));
    closing.catch(() => {});
    // A graceful close waits for every stream; one the peer never reads holds it open. Then
    // destroy, with the same code and reason (without them the peer sees a bare code 0).
    if ((await Promise.race([closing, late])) === "late") session.destroy?.(undefined, { code: BigInt(code), type: "application", reason });
  } catch { /* already closed */ } finally {
    clearTimeout(timer);
  }
}

/** Connection state the streams consult: set once the connection is known to be lost. */
interface Liveness {
  lost?: TransportError;
}

class BunStream implements BidiStream {
  #s: Any;
  /** Cached: node:quic's `writer` getter is costly enough to show in profiles. */
  #w: Any;
  #live: Liveness;

  constructor(s: Any, live: Liveness) {
    this.#s = s;
    this.#live = live;
    s.closed?.catch?.(() => {});
    // No onreset handler: setting it costs ~3% of a request's CPU in node:quic, and the read
    // error carries the peer's code anyway ("…reset by the peer with error code N").
  }

  /** node:quic copies the bytes in `writeSync` (measured), so the caller may reuse them at once. */
  writeSync(chunk: Uint8Array): boolean {
    return (this.#w ??= this.#s.writer).writeSync(chunk);
  }

  write(chunk: Uint8Array): Promise<void> {
    // Not async: a write the stack takes at once costs no promise of its own.
    try {
      return (this.#w ??= this.#s.writer).writeSync(chunk) ? RESOLVED : this.#writeWhenDrained(chunk);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async #writeWhenDrained(chunk: Uint8Array): Promise<void> {
    const w = this.#w;
    while (!w.writeSync(chunk)) {
      if (w.desiredSize === null) {
        throw new TransportError(E.STOP_SENDING, "the peer stopped this stream");
      }
      const wait = w[DRAIN]?.();
      await (wait ?? new Promise((r) => setTimeout(r, 1)));
    }
  }

  async end(): Promise<void> {
    try {
      await (this.#w ??= this.#s.writer).end();
    } catch (e) {
      throw new TransportError(E.STREAM_RESET, `could not end the stream: ${(e as Error).message}`, { cause: e, appCode: codeFrom(e) });
    }
  }

  reset(code: number): void {
    try {
      if (typeof this.#s.resetStream === "function") this.#s.resetStream(BigInt(code));
      else this.#s.destroy();
    } catch { /* already gone */ }
  }

  stopSending(code: number): void {
    try {
      if (typeof this.#s.stopSending === "function") this.#s.stopSending(BigInt(code));
      else this.#s.destroy();
    } catch { /* already gone */ }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    try {
      for await (const batch of this.#s) {
        for (const chunk of batch as Uint8Array[]) yield chunk;
      }
    } catch (e) {
      throw this.#readError(e);
    }
    // Bun ends the iteration this way too when the connection dies; that is no FIN.
    if (this.#live.lost) throw this.#live.lost;
  }

  batches(): BatchReads {
    const src = this.#s[Symbol.asyncIterator]();
    const live = this.#live;
    return {
      next: () => src.next(),
      // Bun ends the iteration this way too when the connection dies; that is no FIN.
      ended: () => live.lost,
      error: (e: unknown) => this.#readError(e),
      return: (v?: unknown) => (src.return ? src.return(v) : Promise.resolve({ done: true as const, value: undefined })),
    };
  }

  /** What a failed read means: the lost connection, a reset by the peer (with its code), or a closed stream. */
  #readError(e: unknown): Error {
    if (this.#live.lost) return this.#live.lost;
    const code = codeFrom(e);
    const msg = String((e as Error)?.message ?? e);
    if (/reset/i.test(msg) || code !== undefined) {
      return new TransportError(E.STREAM_RESET, `the peer reset the stream${code !== undefined ? ` with code ${code}` : ""}`, { cause: e, appCode: code });
    }
    return new TransportError(E.CLOSED, `stream read failed: ${msg}`, { cause: e });
  }
}

class BunConnection implements Connection {
  readonly #s: Any;
  #info: Any;
  readonly #gate: StreamGate<Any>;
  readonly #pendingOpens: PendingOpens;
  readonly closed: Promise<CloseInfo>;
  /** The peer's streams, held until handle() (which may be called once). */
  readonly #incoming = new Incoming<Any>((stream, h) => {
    if (stream.direction === "uni") h.uni ? h.uni(new BunStream(stream, this.#live)) : stream.destroy();
    else h.bidi ? this.#gate.push(stream) : stream.destroy();
  });
  #localClose = false;
  readonly #live: Liveness = {};
  readonly handshake: Promise<HandshakeInfo>;
  #settle!: { ok: (i: HandshakeInfo) => void; fail: (e: unknown) => void };

  /**
   * @param session The native session.
   * @param info The handshake result, when already known.
   * @param idleTimeoutMs Our liveness watchdog's timeout.
   * @param maxBidiStreams Incoming bidirectional streams served at once (the gate's size).
   */
  constructor(session: Any, info: Any, idleTimeoutMs: number, maxBidiStreams: number) {
    this.#s = session;
    this.#pendingOpens = new PendingOpens(session);
    // A slot is back once the stack has closed the stream both ways (`closed` settles).
    this.#gate = new StreamGate<Any>(maxBidiStreams, (stream, done) => {
      stream.closed.then(done, done);
      this.#incoming.handlers!.bidi!(new BunStream(stream, this.#live));
    });
    this.handshake = new Promise<HandshakeInfo>((ok, fail) => (this.#settle = { ok, fail }));
    this.handshake.catch(() => {});
    if (info) this.opened(info);
    this.#watch(idleTimeoutMs);
    this.closed = session.closed.then(
      () => ({ code: 0, reason: "", local: this.#localClose }),
      (e: Any) => ({ code: codeFrom(e) ?? 0, reason: String(e?.reason ?? e?.message ?? ""), local: this.#localClose }),
    );
    session.onstream = (stream: Any) => this.#incoming.push(stream);
    session.closed.finally(() => {
      for (const s of this.#gate.clear()) s.destroy();
      this.#pendingOpens.poll();
    }).catch(() => {});
    session.ondatagram = (data: Uint8Array) => this.#incoming.handlers?.datagram?.(data);
  }

  /**
   * Liveness watchdog. Bun ends stream reads as if FIN had arrived when a connection idles out,
   * and resolves `closed` as if cleanly closed, so a vanished peer would look like a finished
   * one. Both ends send keep-alive PINGs (a third of the idle timeout), so a live peer always
   * ACKs something; when no packet arrives for the idle timeout, the peer is gone and the
   * session is destroyed with an error, which fails pending reads and writes.
   */
  #watch(idleTimeoutMs: number): void {
    this.idleTimeoutMs = idleTimeoutMs;
    let last = -1;
    let quietSince = Date.now();
    const tick = Math.max(50, Math.min(1000, idleTimeoutMs / 4));
    const timer = setInterval(() => {
      const recv = Number(this.#s.stats?.pktRecv ?? -1);
      const limit = this.idleTimeoutMs; // lowered by the peer's value after the handshake
      if (recv !== last) {
        last = recv;
        quietSince = Date.now();
      } else if (Date.now() - quietSince >= limit) {
        clearInterval(timer);
        this.#live.lost = new TransportError(E.CLOSED, `connection lost: no packet from the peer for ${limit} ms`);
        this.#s.destroy(this.#live.lost);
      }
    }, tick);
    this.#watchTimer = timer;
    (timer as { unref?: () => void }).unref?.();
    this.#s.closed.finally(() => clearInterval(timer)).catch(() => {});
  }

  idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS;
  #watchTimer: ReturnType<typeof setInterval> | undefined;

  lowerIdleTimeout(ms: number): void {
    if (lowerIdle(this.idleTimeoutMs, ms) === this.idleTimeoutMs) return;
    this.idleTimeoutMs = ms;
    // Watch at the new pace: the old tick may be up to 1 s, a quarter of a 4 s limit.
    if (this.#watchTimer !== undefined) {
      clearInterval(this.#watchTimer);
      this.#watch(ms);
    }
  }

  /** Records the handshake result (the server, and a 0-RTT client, learn it later). */
  opened(info: Any): this {
    this.#info = info;
    this.#settle.ok({ resumed: info?.earlyDataAttempted === true, earlyDataAccepted: info?.earlyDataAccepted === true });
    return this;
  }

  /** The handshake failed after the connection was handed out (0-RTT). */
  failed(e: unknown): void {
    this.#settle.fail(handshakeError(e));
  }

  get peerCertificate(): PeerCertificate | undefined {
    const c = this.#s.peerCertificate;
    if (!c || this.#isClient) return undefined;
    return { subject: String(c.subject ?? ""), fingerprint: String(c.fingerprint256 ?? "").replace(/:/g, "").toLowerCase() };
  }

  #isClient = false;

  /** Marks this end as the client (its peer certificate is the server's, not a client's). */
  asClient(): this {
    this.#isClient = true;
    return this;
  }

  get remote(): { host: string; port: number } {
    const r = this.#info?.remote ?? this.#s.path?.remote;
    return { host: String(r?.address ?? ""), port: Number(r?.port ?? 0) };
  }

  get alpn(): string {
    return String(this.#info?.protocol ?? "");
  }

  get maxDatagramSize(): number {
    return Number(this.#s.maxDatagramSize ?? 0);
  }

  handle(handlers: IncomingHandlers): void {
    this.#incoming.handle(handlers);
  }

  async openBidi(options?: OpenStreamOptions): Promise<BidiStream> {
    const signal = options?.signal;
    if (signal?.aborted) throw slotGivenUp();
    let stream: Any = this.#pendingOpens.spare();
    try {
      stream ??= await this.#s.createBidirectionalStream();
    } catch (e) {
      throw new TransportError(E.CLOSED, `cannot open a stream: ${(e as Error).message}`, { cause: e });
    }
    // Past the peer's limit Bun hands out a "pending" stream that gets its slot later.
    if (stream.pending) await this.#pendingOpens.wait(stream, signal);
    return new BunStream(stream, this.#live);
  }

  async openUni(): Promise<SendStream> {
    try {
      return new BunStream(await this.#s.createUnidirectionalStream(), this.#live);
    } catch (e) {
      throw new TransportError(E.CLOSED, `cannot open a stream: ${(e as Error).message}`, { cause: e });
    }
  }

  async sendDatagram(data: Uint8Array): Promise<void> {
    checkDatagram(data.length, this.maxDatagramSize);
    await this.#s.sendDatagram(data);
  }

  async close(code = 0, reason = ""): Promise<void> {
    this.#localClose = true;
    await closeSession(this.#s, code, reason);
    await this.closed;
  }

  stats(): ConnectionStats {
    const s = this.#s.stats;
    if (!s) return { incomingStreams: this.#gate.live, waitingStreams: this.#gate.waiting };
    const ms = (ns: unknown) => (typeof ns === "bigint" ? Number(ns) / 1e6 : undefined);
    return {
      rttMs: ms(s.smoothedRtt),
      minRttMs: ms(s.minRtt),
      bytesSent: s.bytesSent !== undefined ? Number(s.bytesSent) : undefined,
      bytesReceived: s.bytesReceived !== undefined ? Number(s.bytesReceived) : undefined,
      packetsLost: s.pktLost !== undefined ? Number(s.pktLost) : undefined,
      incomingStreams: this.#gate.live,
      waitingStreams: this.#gate.waiting,
    };
  }
}

/** The Bun `node:quic` transport. */

/** Session tickets from servers this process has talked to, for 0-RTT resumption. */
const tickets = new Map<string, Any>();

/** Sessions a client endpoint carries at once before another endpoint is used (see `connect`). */
const SESSIONS_PER_ENDPOINT = 8;
/** Client endpoints by address family (IPv4, IPv6), each with the sessions it carries now. */
const clientEndpoints: [{ ep: Any; sessions: number }[], { ep: Any; sessions: number }[]] = [[], []];

/**
 * A client endpoint with room for one more session: an existing one (endpoints are kept and
 * reused, never destroyed: see `connect`), or a new one. Call the returned `done` once, when the
 * session is over.
 */
function clientEndpoint(q: Any, v6: boolean): { endpoint: Any; done: () => void } {
  const pool = clientEndpoints[v6 ? 1 : 0];
  let slot = pool.find((x) => x.sessions < SESSIONS_PER_ENDPOINT && !x.ep.destroyed);
  if (!slot) {
    const ep = new q.QuicEndpoint({ address: v6 ? "[::]:0" : "0.0.0.0:0" });
    ep.closed?.catch?.(() => {});
    slot = { ep, sessions: 0 };
    pool.push(slot);
  }
  const s = slot;
  s.sessions++;
  return { endpoint: s.ep, done: () => void s.sessions-- };
}
const MAX_TICKETS = 256;

/** The Bun `node:quic` transport. */
export const bunTransport: Transport = {
  name: "bun",

  async listen(o: ListenOptions, onConnection: (c: Connection) => void): Promise<Listener> {
    const q = await quic();
    const { createPrivateKey } = await import("node:crypto");
    const { tls, trust } = await serverTls(o);
    const enc = new TextEncoder();
    const sessions = new ConnectionSet<Any>();
    // An endpoint of our own, so its `closed` promise has a handler: node:quic rejects it when the
    // bind fails, and the endpoint listen() makes by itself leaves that rejection unhandled, which
    // ended the process after start() had already failed (docs/TRANSPORT.md, "Bun: a failed bind").
    const endpoint = new q.QuicEndpoint({ address: hostPort(o.host, o.port) });
    let bindError: Any;
    endpoint.closed.catch((e: Any) => void (bindError = e));
    const ep = await q.listen(
      (session: Any) => {
        session.closed.catch(() => {});
        sessions.add(session, session.closed);
        // Register handlers synchronously so no early stream is missed; surface it once open.
        const c = new BunConnection(session, undefined, o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, o.maxBidiStreams ?? DEFAULT_MAX_BIDI_STREAMS);
        session.opened.then(
          (info: Any) => onConnection(c.opened(info)),
          () => {},
        );
      },
      {
        alpn: [o.alpn],
        sni: { "*": { keys: [createPrivateKey(tls.key)], certs: [enc.encode(tls.cert)] } },
        endpoint,
        enableEarlyData: o.earlyData ?? false,
        ...(tls.clientCa ? { verifyClient: true, ca: [enc.encode(tls.clientCa)] } : {}),
        transportParams: {
          ...FLOW_WINDOWS,
          initialMaxStreamsBidi: advertisedStreams(o.maxBidiStreams ?? DEFAULT_MAX_BIDI_STREAMS),
          initialMaxStreamsUni: o.maxUniStreams ?? DEFAULT_MAX_UNI_STREAMS,
          maxIdleTimeout: stackIdleSeconds(o.idleTimeoutMs),
          maxDatagramFrameSize: 1350,
        },
        keepAlive: keepAliveMs(o.idleTimeoutMs),
      },
    );
    // A failed bind does not throw here: listen() returns the endpoint, already destroyed.
    await Promise.resolve();
    const addr = ep.address;
    if (bindError || ep.destroyed || !addr) {
      throw listenError(o.host, o.port, bindError);
    }
    return {
      address: { host: String(addr.address ?? o.host), port: Number(addr.port) },
      trust,
      async close(code = 0, reason = "") {
        await sessions.closeAll((s) => closeSession(s, code, reason));
        await ep.close?.().catch?.(() => {});
        ep.destroy?.();
      },
    };
  },

  async connect(o: ConnectOptions): Promise<Connection> {
    const q = await quic();
    const { ca, fingerprint: fp, serverName, insecure } = clientTrust(o.tls, o.host);
    const enc = new TextEncoder();
    const key = `${hostPort(o.host, o.port)}/${serverName}`;
    const ticket = o.zeroRtt ? tickets.get(key) : undefined;
    let clientCert = {};
    if (o.tls.cert || o.tls.key) {
      if (!o.tls.cert || !o.tls.key) throw new TransportError(E.INVALID_ARGUMENT, "a client certificate needs both cert and key");
      const { createPrivateKey } = await import("node:crypto");
      // Only the leaf: Bun's server reports the last certificate of a client's chain as the
      // peer's, and the server holds the client CA anyway.
      const leaf = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(o.tls.cert)?.[0] ?? o.tls.cert;
      clientCert = { keys: [createPrivateKey(o.tls.key)], certs: [enc.encode(leaf + "\n")] };
    }
    // An explicit wildcard endpoint: left to Bun, the client's endpoint cannot reach a server
    // over a non-loopback address in some set-ups (network namespaces, a 0.0.0.0 server). Taken
    // from a pool and given back when the session ends: node:quic leaves a connection's own
    // endpoint open after its session closes (one UDP socket per connection for the life of the
    // process), destroying it holds the process's exit back by a second per endpoint, and one
    // endpoint for every connection failed a burst of 1,000 handshakes (QUIC INTERNAL_ERROR on
    // some), so each endpoint carries up to 8 sessions at once (tests/transport/socket_release).
    const { endpoint, done } = clientEndpoint(q, o.host.includes(":"));
    let session: Any;
    try {
      session = await q.connect(hostPort(o.host, o.port), {
        endpoint,
        alpn: o.alpn,
        servername: serverName,
        ca: ca?.map((p) => enc.encode(p)),
        // "manual": the stack leaves the certificate to us (a pin below, or nothing when insecure).
        verifyPeer: insecure || (fp && !ca) ? "manual" : undefined,
        ...clientCert,
        ...(ticket ? { sessionTicket: ticket, enableEarlyData: true } : {}),
        onsessionticket: o.zeroRtt
          ? (t: Any) => {
            if (tickets.size >= MAX_TICKETS && !tickets.has(key)) tickets.delete(tickets.keys().next().value!);
            tickets.set(key, t);
          }
          : undefined,
        transportParams: {
          ...FLOW_WINDOWS,
          maxDatagramFrameSize: 1350,
          maxIdleTimeout: stackIdleSeconds(o.idleTimeoutMs),
          initialMaxStreamsBidi: advertisedStreams(o.maxBidiStreams ?? DEFAULT_MAX_BIDI_STREAMS),
          initialMaxStreamsUni: DEFAULT_MAX_UNI_STREAMS,
        },
        keepAlive: keepAliveMs(o.idleTimeoutMs),
      });
    } catch (e) {
      done();
      throw e;
    }
    session.closed.catch(() => {}).finally(done);
    const deadline = handshakeDeadline(hostPort(o.host, o.port), o.handshakeTimeoutMs, (e) => session.destroy(e));
    const checkPin = () => {
      if (!fp) return;
      const got = String(session.peerCertificate?.fingerprint256 ?? "").replace(/:/g, "").toLowerCase();
      if (got !== fp) {
        const e = new TransportError(E.TLS_VERIFICATION, `server certificate verification failed: fingerprint ${got || "(none)"} does not match the pinned ${fp}`);
        session.destroy(e);
        throw e;
      }
    };
    if (ticket) {
      // 0-RTT: hand the connection out now so streams opened at once go as early data.
      const c = new BunConnection(session, undefined, o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, o.maxBidiStreams ?? DEFAULT_MAX_BIDI_STREAMS).asClient();
      session.opened.then(
        (info: Any) => {
          deadline.clear();
          try {
            checkPin();
            c.opened(info);
          } catch (e) {
            c.failed(e);
          }
        },
        (e: unknown) => {
          deadline.clear();
          c.failed(e);
        },
      );
      return c;
    }
    let info: Any;
    try {
      info = await session.opened;
    } catch (e) {
      throw handshakeError(e);
    } finally {
      deadline.clear();
    }
    checkPin();
    return new BunConnection(session, info, o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, o.maxBidiStreams ?? DEFAULT_MAX_BIDI_STREAMS).asClient();
  },
};
