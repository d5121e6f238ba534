/**
 * Transport adapter for Deno's native QUIC (quinn): `Deno.QuicEndpoint` and `Deno.connectQuic`,
 * which need `--unstable-net`. A thin mapping: native errors become {@link TransportError}s here.
 *
 * Stack facts (measured, docs/TRANSPORT.md): Deno cannot send an application code with a
 * stream reset (an aborted writer sends FIN), nor STOP_SENDING with a code; it exposes no
 * connection statistics; opening a stream past the peer's limit throws unless told to wait
 * (`waitUntilAvailable`), and that wait cannot be cancelled, so opens queue in
 * `_deno_open_queue.ts`; quinn keeps a stream (and its slot) until its receiving side is read
 * to the end or stopped, and returns slots in batches of an eighth of the advertised limit, so
 * incoming streams pass a gate (`_stream_gate.ts`).
 *
 * @module
 */

import type {
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
import { advertisedStreams, StreamGate } from "./_stream_gate.ts";
import { OpenQueue } from "./_deno_open_queue.ts";
import { ConnectionSet, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_BIDI_STREAMS, DEFAULT_MAX_UNI_STREAMS, lowerIdle } from "./_connections.ts";
import { handshakeDeadline } from "./_handshake.ts";
import { checkFirstHandle } from "./_incoming.ts";
import { forEachValue, WebHalves } from "./_web_stream.ts";
import { flushBeforeClose, type WriteClock } from "./_flush.ts";
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

function deno(): Any {
  const d = (globalThis as Any).Deno;
  if (!d?.QuicEndpoint) {
    throw new TransportError(E.UNSUPPORTED, "Deno QUIC is not available: run Deno 2.2+ with --unstable-net");
  }
  return d;
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** First and largest read size of a stream (bytes): see DenoStream's iterator. */
const READ_MIN = 2048;
const READ_MAX = 64 * 1024;

class DenoStream implements BidiStream {
  readonly #h: WebHalves;
  readonly #wrote: WriteClock;
  // Which halves are finished, for `onDone` (a half this stream lacks counts as finished).
  #sendDone: boolean;
  #recvDone: boolean;
  #onDone: (() => void) | undefined;

  /**
   * @param wrote The connection's record of its last write.
   * @param onDone Called once both halves are finished: quinn frees the stream's slot then.
   */
  constructor(wrote: WriteClock, readable?: ReadableStream<Uint8Array>, writable?: WritableStream<Uint8Array>, onDone?: () => void) {
    this.#h = new WebHalves(readable, writable);
    this.#wrote = wrote;
    this.#recvDone = !readable;
    this.#sendDone = !writable;
    this.#onDone = onDone;
  }

  #finished(half: "send" | "recv"): void {
    if (half === "send") this.#sendDone = true;
    else this.#recvDone = true;
    if (this.#sendDone && this.#recvDone && this.#onDone) {
      const done = this.#onDone;
      this.#onDone = undefined;
      done();
    }
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#wrote.at = performance.now();
    try {
      await this.#h.writer.write(chunk);
    } catch (e) {
      // Stopped by the peer: quinn keeps the send half until it is reset, which nothing else does.
      this.reset(0);
      throw new TransportError(E.STOP_SENDING, `stream write failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async end(): Promise<void> {
    this.#wrote.at = performance.now();
    try {
      await this.#h.writer.close();
      this.#finished("send");
    } catch (e) {
      this.reset(0);
      throw new TransportError(E.CLOSED, `could not end the stream: ${(e as Error).message}`, { cause: e });
    }
  }

  reset(code: number): void {
    // Deno sends FIN here, not RESET_STREAM(code): a limitation of the stack.
    this.#h.abort(code);
    this.#finished("send");
  }

  stopSending(code: number): void {
    // The iteration's reader while it holds the lock; the stream itself once it let go.
    this.#h.cancel(code);
    this.#finished("recv");
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    // Reads into buffers of our own size (BYOB): a plain read makes Deno hold a 64 KiB buffer
    // while it waits, ~50 KB per idle stream (measured: 77 KB per stream with one pending plain
    // read, 34 KB with a 1 KiB BYOB read). Reads start small and double, up to 64 KiB, while
    // they come back full (and halve while they come back mostly empty), so a bulk transfer
    // still reads in large chunks.
    const reader = this.#h.byobReader();
    let size = READ_MIN;
    // A read that came back less than half full is copied out at its own size, and its buffer
    // serves the next read: every payload cut from a chunk keeps the chunk's whole buffer alive,
    // so without the copy each small frame a receiver keeps (a jitter buffer holds hundreds of
    // ms of them per stream) would pin a read buffer of 2 KiB or more (measured: 12.7× the
    // payload bytes with frames of 160 B; tests/stream/read_buffer.test.ts).
    let spare: ArrayBuffer | undefined;
    const read = () => {
      const buf = spare !== undefined && spare.byteLength === size ? new Uint8Array(spare) : new Uint8Array(size);
      spare = undefined;
      return reader.read(buf);
    };
    let finished = false;
    const ended = () => this.#finished("recv");
    try {
      let ahead: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
      while (true) {
        const { value, done } = await (ahead ?? read());
        ahead = undefined;
        if (done || !value) {
          finished = true;
          return;
        }
        // Full: the sender is ahead, read bigger. Mostly empty: smaller (each read allocates it).
        if (value.byteLength === size) size = Math.min(READ_MAX, size * 2);
        else if (value.byteLength < size >> 2) size = Math.max(READ_MIN, size >> 1);
        let chunk = value;
        if (value.byteLength * 2 < value.buffer.byteLength) {
          chunk = value.slice();
          spare = value.buffer as ArrayBuffer;
        }
        if (this.#onDone) {
          // A stream the peer opened reads one chunk ahead, so its end is seen (and its slot in
          // the gate freed, as quinn frees it) even when the application stops asking after
          // its last frame. Only those: a read costs a few µs, and ours need no gate.
          ahead = read();
          ahead.then((r) => r.done && ended(), ended);
        }
        yield chunk;
      }
    } catch (e) {
      finished = true;
      const msg = String((e as Error)?.message ?? e);
      const reset = /reset/i.test(msg);
      const m = /(?:error|code) (\d+)/.exec(msg);
      throw new TransportError(reset ? E.STREAM_RESET : E.CLOSED, `stream read failed: ${msg}`, {
        cause: e,
        appCode: reset && m ? Number(m[1]) : undefined,
      });
    } finally {
      this.#h.unlock();
      // Leaving early stops reading: quinn keeps a stream, and its slot in the peer's limit,
      // until its receiving side is read to the end or stopped. (Releasing the lock instead
      // left it unread for good; a later stopSending() then had no reader to cancel.)
      if (!finished) reader.cancel(0).catch(() => {});
      this.#finished("recv");
    }
  }
}

class DenoConnection implements Connection {
  /** Recorded for the RPC layer's HELLO/WELCOME; quinn negotiates the smaller value itself. */
  idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS;
  lowerIdleTimeout(ms: number): void {
    this.idleTimeoutMs = lowerIdle(this.idleTimeoutMs, ms);
  }
  readonly #c: Any;
  readonly #maxBidi: number;
  readonly #opens: OpenQueue;
  readonly #wrote: WriteClock = { at: -Infinity };
  #gate: StreamGate<Any> | undefined;
  readonly closed: Promise<CloseInfo>;
  #local = false;
  #handlers: IncomingHandlers | undefined;
  readonly handshake: Promise<HandshakeInfo>;
  /** Deno's QUIC server can neither request nor see client certificates. */
  readonly peerCertificate: PeerCertificate | undefined = undefined;

  /**
   * @param conn The native connection.
   * @param maxBidiStreams Incoming bidirectional streams served at once (the gate's size).
   * @param handshake Resolves when the handshake is done (later than `conn` under 0-RTT).
   */
  constructor(conn: Any, maxBidiStreams: number, handshake: Promise<HandshakeInfo> = Promise.resolve({ resumed: false, earlyDataAccepted: false })) {
    this.#c = conn;
    this.#maxBidi = maxBidiStreams;
    this.#opens = new OpenQueue(conn);
    this.handshake = handshake;
    handshake.catch(() => {});
    this.closed = conn.closed.then(
      (i: Any) => ({ code: Number(i?.closeCode ?? 0), reason: String(i?.reason ?? ""), local: this.#local }),
      (e: Any) => ({ code: 0, reason: String(e?.message ?? e), local: this.#local }),
    );
  }

  get remote(): { host: string; port: number } {
    const a = this.#c.remoteAddr;
    return { host: String(a?.hostname ?? ""), port: Number(a?.port ?? 0) };
  }

  get alpn(): string {
    return String(this.#c.protocol ?? "");
  }

  get maxDatagramSize(): number {
    return Number(this.#c.maxDatagramSize ?? 0);
  }

  handle(h: IncomingHandlers): void {
    // No queue of early streams: Deno's own incoming-stream readables hold them until read.
    checkFirstHandle(this.#handlers);
    this.#handlers = h;
    const gate = (this.#gate = new StreamGate<Any>(this.#maxBidi, (b, done) => h.bidi!(new DenoStream(this.#wrote, b.readable, b.writable, done))));
    this.closed.then(() => gate.clear());
    forEachValue(this.#c.incomingBidirectionalStreams, (b: Any) => {
      if (h.bidi) gate.push(b);
      else b.readable.cancel(0).catch(() => {});
    });
    forEachValue(this.#c.incomingUnidirectionalStreams, (r: Any) => {
      if (h.uni) h.uni(new DenoStream(this.#wrote, r, undefined));
      else r.cancel(0).catch(() => {});
    });
    if (h.datagram) {
      (async () => {
        try {
          while (true) h.datagram!(await this.#c.readDatagram());
        } catch { /* connection closed */ }
      })();
    }
  }

  async openBidi(options?: OpenStreamOptions): Promise<BidiStream> {
    try {
      const b = await this.#opens.open(options?.signal);
      return new DenoStream(this.#wrote, b.readable, b.writable);
    } catch (e) {
      if (e instanceof TransportError) throw e;
      throw new TransportError(E.CLOSED, `cannot open a stream: ${(e as Error).message}`, { cause: e });
    }
  }

  async openUni(): Promise<SendStream> {
    try {
      const w = await this.#c.createUnidirectionalStream({ waitUntilAvailable: true });
      return new DenoStream(this.#wrote, undefined, w);
    } catch (e) {
      throw new TransportError(E.CLOSED, `cannot open a stream: ${(e as Error).message}`, { cause: e });
    }
  }

  async sendDatagram(data: Uint8Array): Promise<void> {
    checkDatagram(data.length, this.maxDatagramSize);
    await this.#c.sendDatagram(data);
  }

  async close(code = 0, reason = ""): Promise<void> {
    this.#local = true;
    // Let quinn send what streams wrote just now: its close discards unsent data.
    await flushBeforeClose(this.#wrote);
    try {
      this.#c.close({ closeCode: code, reason });
    } catch { /* already closed */ }
    await this.closed;
  }

  stats(): ConnectionStats {
    // Deno's QuicConn offers no statistics; the gate's counts are ours.
    return { incomingStreams: this.#gate?.live ?? 0, waitingStreams: this.#gate?.waiting ?? 0 };
  }
}

/**
 * The client endpoints (IPv4, IPv6) for connections that ask for 0-RTT: quinn keeps session
 * tickets per endpoint, so resumption only works through the endpoint that saw the first
 * handshake. One per family: an IPv4 socket cannot reach an IPv6 server ("invalid remote address").
 */
const zeroRttEndpoints: [Any, Any] = [undefined, undefined];
/** The shared client endpoints (IPv4, IPv6) of connections without 0-RTT: see `connect`. */
const clientEndpoints: [Any, Any] = [undefined, undefined];

/** The Deno `Deno.QuicEndpoint` transport. */
export const denoTransport: Transport = {
  name: "deno",

  async listen(o: ListenOptions, onConnection: (c: Connection) => void): Promise<Listener> {
    const D = deno();
    const { tls, trust } = await serverTls(o);
    if (tls.clientCa) {
      throw new TransportError(E.UNSUPPORTED, "client certificates (clientCa) are not supported by Deno's QUIC server; authenticate clients in HELLO");
    }
    let ep: Any;
    try {
      ep = new D.QuicEndpoint({ hostname: o.host, port: o.port });
    } catch (e) {
      throw listenError(o.host, o.port, e);
    }
    const listener = ep.listen({
      alpnProtocols: [o.alpn],
      cert: tls.cert,
      key: tls.key,
      maxConcurrentBidirectionalStreams: advertisedStreams(o.maxBidiStreams ?? DEFAULT_MAX_BIDI_STREAMS),
      maxConcurrentUnidirectionalStreams: o.maxUniStreams ?? DEFAULT_MAX_UNI_STREAMS,
      maxIdleTimeout: o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      keepAliveInterval: keepAliveMs(o.idleTimeoutMs),
    });
    const conns = new ConnectionSet<DenoConnection>();
    const accepted = (conn: Any) => {
      // Accepted with 0-RTT on, the connection arrives before its handshake completes: until
      // then, what the client sends is replayable early data (the RPC layer holds it).
      // Deno's QuicConn.handshake also *resolves* when the connection is lost before its
      // handshake completed (quinn's ZeroRttAccepted yields false and Deno drops the value): a
      // withheld-and-replayed flight would then look confirmed. So it counts only if the
      // connection is still up a macrotask later (the close settles in between).
      let lost = false;
      if (o.earlyData) Promise.resolve(conn?.closed).then(() => (lost = true), () => (lost = true));
      const handshake = o.earlyData && conn?.handshake
        ? Promise.resolve(conn.handshake)
          .then(() => new Promise((r) => setTimeout(r, 0)))
          .then((): HandshakeInfo => {
            if (lost) throw new TransportError(E.CLOSED, "the connection closed before its handshake completed");
            return { resumed: false, earlyDataAccepted: undefined };
          })
        : undefined;
      const c = new DenoConnection(conn, o.maxBidiStreams ?? DEFAULT_MAX_BIDI_STREAMS, handshake);
      c.idleTimeoutMs = o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
      conns.add(c, c.closed);
      onConnection(c);
    };
    (async () => {
      try {
        for await (const incoming of listener) {
          try {
            // No address: reading incoming.remoteAddr consumes the attempt on Deno 2.9
            // (tests/security/deno_incoming_repro.ts); per-address limits apply after the handshake.
            if (o.admit && !o.admit(undefined)) {
              incoming.refuse(); // before any TLS work: a CONNECTION_REFUSED close
              continue;
            }
            // With early data on, accept({ zeroRtt }) hands the connection over at once.
            const r = incoming.accept(o.earlyData ? { zeroRtt: true } : undefined);
            // A failed handshake rejects accept(); it must not end the accept loop.
            if (typeof r?.then === "function") r.then(accepted, () => {});
            else accepted(r);
          } catch { /* refused during the handshake */ }
        }
      } catch { /* listener stopped */ }
    })();
    return {
      address: { host: String(ep.addr.hostname), port: Number(ep.addr.port) },
      trust,
      async close(code = 0, reason = "") {
        await conns.closeAll((c) => c.close(code, reason));
        try {
          listener.stop?.();
        } catch { /* already stopped */ }
        ep.close();
      },
    };
  },

  async connect(o: ConnectOptions): Promise<Connection> {
    const D = deno();
    const { ca, fingerprint: fp, serverName, insecure } = clientTrust(o.tls, o.host);
    if (!!o.tls.cert !== !!o.tls.key) throw new TransportError(E.INVALID_ARGUMENT, "a client certificate needs both cert and key");
    // Without 0-RTT too, a shared client endpoint per address family: the one connectQuic makes
    // by itself for each connection stays open after the connection closes, one UDP socket per
    // connection for the life of the process (tests/transport/socket_release).
    const v6 = o.host.includes(":");
    const endpoints = o.zeroRtt ? zeroRttEndpoints : clientEndpoints;
    const endpoint = endpoints[v6 ? 1 : 0] ??= new D.QuicEndpoint({ hostname: v6 ? "::" : "0.0.0.0", port: 0 });
    const pending = D.connectQuic({
      hostname: o.host,
      port: o.port,
      serverName,
      alpnProtocols: [o.alpn],
      caCerts: ca,
      serverCertificateHashes: fp && !ca ? [{ algorithm: "sha-256", value: hexToBytes(fp).buffer }] : undefined,
      ...(o.tls.cert ? { cert: o.tls.cert, key: o.tls.key } : {}),
      ...(o.zeroRtt ? { zeroRtt: true } : {}),
      endpoint,
      maxIdleTimeout: o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      keepAliveInterval: keepAliveMs(o.idleTimeoutMs),
      maxConcurrentBidirectionalStreams: advertisedStreams(o.maxBidiStreams ?? DEFAULT_MAX_BIDI_STREAMS),
    });
    if (typeof pending?.then !== "function") {
      // A connection handed back synchronously is a resumed one sending 0-RTT data; Deno does
      // not say whether the server accepted the early data.
      const done = Promise.resolve(typeof pending.handshake === "function" ? pending.handshake() : pending.handshake).then(
        () => ({ resumed: true, earlyDataAccepted: undefined }),
        (e: unknown) => {
          throw handshakeError(e);
        },
      );
      return Object.assign(new DenoConnection(pending, o.maxBidiStreams ?? DEFAULT_MAX_BIDI_STREAMS, done), { idleTimeoutMs: o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS });
    }
    const deadline = handshakeDeadline(`${o.host}:${o.port}`, o.handshakeTimeoutMs, () => {
      // Close the connection should the handshake finish after we gave up.
      Promise.resolve(pending).then((c: Any) => c.close({ closeCode: 0, reason: "handshake timeout" }), () => {});
    });
    try {
      return Object.assign(new DenoConnection(await deadline.race(pending), o.maxBidiStreams ?? DEFAULT_MAX_BIDI_STREAMS), { idleTimeoutMs: o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS });
    } catch (e) {
      const err = handshakeError(e);
      // With no CA and no pin, Deno checked the system roots: it cannot skip verification per connection.
      if (insecure && err.code === E.TLS_VERIFICATION) {
        throw new TransportError(E.TLS_VERIFICATION, `${err.message} (insecureSkipVerify: Deno's QUIC client always verifies; run Deno with --unsafely-ignore-certificate-errors to connect anyway)`, { cause: e });
      }
      throw err;
    } finally {
      deadline.clear();
    }
  },
};
