/**
 * The one transport interface EchoStream's upper layers use. It knows nothing of RPC: a
 * connection opens and accepts QUIC streams, carries datagrams, and closes with a code. One
 * adapter per QUIC stack maps a native connection onto it (`./bun.ts`, `./deno.ts`).
 *
 * @module
 */

/** A host and port. */
export interface SocketAddress {
  /** IPv4 or IPv6 address (or a host name, where one is accepted). */
  host: string;
  /** UDP port. */
  port: number;
}

/** TLS material for a listener. PEM strings. */
export interface ServerTls {
  /** Certificate chain the server presents: leaf first, then intermediates/CA. */
  cert: string;
  /** The leaf's private key (PKCS#8 PEM). */
  key: string;
  /**
   * Require client certificates (mutual TLS) issued by this CA (PEM). Bun only: Deno's QUIC
   * server can neither request nor see client certificates, so listening with this on Deno
   * fails with `UNSUPPORTED` rather than silently accepting anyone.
   */
  clientCa?: string;
}

/**
 * How a client decides to trust the server. Verification is always on: give a CA, or pin the
 * SHA-256 fingerprint of the server's leaf certificate.
 */
export interface ClientTls {
  /** CA certificate(s), PEM, that the server's chain must lead to. */
  ca?: string | string[];
  /** Lowercase hex SHA-256 of the server's leaf certificate (DER); colons allowed. */
  fingerprint?: string;
  /** The name the certificate must carry. @default {the host connected to, or "localhost" for an IP} */
  serverName?: string;
  /** Client certificate chain (PEM) for mutual TLS, with `key`. */
  cert?: string;
  /** The client certificate's private key (PKCS#8 PEM). */
  key?: string;
  /**
   * Accept any server certificate: no CA, no pin, so anyone on the path can impersonate the
   * server. For development tools only (the CLI's `--insecure-skip-verify`). Bun and Node skip
   * verification; Deno's QUIC client always verifies, so on Deno this connects only in a process
   * started with `--unsafely-ignore-certificate-errors`.
   */
  insecureSkipVerify?: boolean;
}

/** Options for {@link Transport.listen}. */
export interface ListenOptions {
  /** Address to bind, e.g. `"0.0.0.0"` or `"127.0.0.1"`. */
  host: string;
  /** UDP port to bind; 0 picks a free one (read it from `listener.address`). */
  port: number;
  /** ALPN protocol id both ends must speak. */
  alpn: string;
  /**
   * Certificate and key. Left out, a development CA and leaf are made for localhost and the bind
   * address, the CA's fingerprint is logged, and `listener.trust` tells clients what to trust.
   */
  tls?: ServerTls;
  /**
   * Where the development-certificate notice goes. By default it is logged (category
   * `["echostream", "transport"]`, warning) when LogTape is configured, else printed with `console.warn`.
   */
  log?: (message: string) => void;
  /**
   * Most bidirectional streams of a peer served at once; more wait, in arrival order, until one
   * finishes (the stack is told twice this, so stream slots keep coming back: docs/TRANSPORT.md).
   * @default {1024}
   */
  maxBidiStreams?: number;
  /** Most unidirectional streams a peer may have open at once. @default {64} */
  maxUniStreams?: number;
  /**
   * Close a connection idle this long.
   * @default {30000}
   */
  idleTimeoutMs?: number;
  /** Accept 0-RTT early data on resumed connections. @default {false} */
  earlyData?: boolean;
  /**
   * Asked about each connection attempt before the QUIC handshake, where the stack allows it
   * (Deno: `QuicIncoming.refuse()`, no TLS work spent); false refuses it. `remote` is undefined
   * where the address cannot be read first (Deno 2.9: reading `QuicIncoming.remoteAddr` makes the
   * attempt unusable, tests/security/deno_incoming_repro.ts). Stacks that cannot ask first (Bun,
   * Node) hand the connection over and the caller closes it after the handshake.
   */
  admit?: (remote: SocketAddress | undefined) => boolean;
}

/** Options for {@link Transport.connect}. */
export interface ConnectOptions {
  /** Server address or host name. */
  host: string;
  /** Server UDP port. */
  port: number;
  /** ALPN protocol id both ends must speak. */
  alpn: string;
  /** How to trust the server (a CA or a pinned fingerprint), and the client certificate for mutual TLS. */
  tls: ClientTls;
  /**
   * Give up on a handshake that has not finished in this time (there is no "connection
   * refused" in QUIC: a silent port looks the same as a slow one).
   * @default {5000}
   */
  handshakeTimeoutMs?: number;
  /** Close the connection when idle this long, ms. @default {30000} */
  idleTimeoutMs?: number;
  /** Most bidirectional streams the server may have open toward this client at once; as for {@link ListenOptions.maxBidiStreams}. @default {1024} */
  maxBidiStreams?: number;
  /**
   * Resume a previous session with this server when the transport holds a ticket for it, and
   * let streams opened at once travel as 0-RTT early data. `connect` then returns before the
   * handshake completes; `connection.handshake` tells whether resumption and early data
   * worked. Early data can be replayed by an attacker: send only idempotent requests in it.
   * @default {false}
   */
  zeroRtt?: boolean;
}

/** Options for {@link Connection.openBidi}. */
export interface OpenStreamOptions {
  /** Gives up waiting for a stream slot when it aborts. */
  signal?: AbortSignal;
}

/** What the handshake established. */
export interface HandshakeInfo {
  /** The session was resumed from a ticket (0-RTT was attempted). */
  resumed: boolean;
  /** The server accepted early data; `undefined` where the stack does not say (Deno). */
  earlyDataAccepted: boolean | undefined;
}

/** The certificate a peer presented (mutual TLS, on the server side). */
export interface PeerCertificate {
  /** The certificate's subject distinguished name, as the stack formats it. */
  subject: string;
  /** Lowercase hex SHA-256 of the certificate. */
  fingerprint: string;
}

/** What ended a connection. */
export interface CloseInfo {
  /** Application close code (0 for a clean close or a transport-level end). */
  code: number;
  /** The reason string sent with the close (may be empty). */
  reason: string;
  /** Whether this side closed it. */
  local: boolean;
}

/** What a stack reports about a connection; absent fields are not offered by that stack. */
export interface ConnectionStats {
  /** Smoothed round-trip time, ms. */
  rttMs?: number;
  /** Least round-trip time seen, ms. */
  minRttMs?: number;
  /** Bytes sent on the connection (UDP payload). */
  bytesSent?: number;
  /** Bytes received on the connection (UDP payload). */
  bytesReceived?: number;
  /** Packets the stack declared lost. */
  packetsLost?: number;
  /** Bidirectional streams the peer opened that are being served now (not yet closed both ways). */
  incomingStreams?: number;
  /** Bidirectional streams the peer opened that wait for one of those to finish (see `maxBidiStreams`). */
  waitingStreams?: number;
}

/** The sending half of a stream. */
export interface SendStream {
  /**
   * Queues `chunk`; resolves once the stack has room for more (flow credit), so a writer that
   * awaits each write keeps memory bounded however slow the reader is.
   */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Optional fast path: writes `chunk` at once when the stack has room, having taken (copied)
   * its bytes before returning, so the caller may reuse them; `false` means nothing was written
   * (call `write`, which waits for room). Stacks that cannot take bytes synchronously leave it out.
   */
  writeSync?(chunk: Uint8Array): boolean;
  /** Ends the stream cleanly (FIN) once everything written is sent. */
  end(): Promise<void>;
  /**
   * Abandons the stream with an application error code (RESET_STREAM). On stacks that cannot
   * send a code (Deno), the peer sees the stream end; see docs/TRANSPORT.md.
   */
  reset(code: number): void;
}

/** The receiving half of a stream: an async iterable of chunks, ending at FIN. */
export interface RecvStream extends AsyncIterable<Uint8Array> {
  /** Asks the peer to stop sending, with a code (STOP_SENDING). */
  stopSending(code: number): void;
  /**
   * Optional fast path: the same bytes as the iteration, in the stack's own batches (each read
   * hands over an array of chunks), with the same errors once converted (see {@link BatchReads});
   * one await per read instead of one per chunk through a generator. Stacks that read chunk by
   * chunk leave it out. Use one or the other.
   */
  batches?(): BatchReads;
}

/**
 * A stream's reads as the stack makes them (`RecvStream.batches`). `next()` is the stack's own
 * promise, not wrapped: the reader converts after its await instead of through a `then` per read
 * (on thousands of streams each read carries about one frame, and each promise is garbage the
 * engine must collect). A rejection goes through `error()`; a `done` result through `ended()`.
 */
export interface BatchReads {
  /** The stack's next read. */
  next(): Promise<IteratorResult<Uint8Array[]>>;
  /** After a `done` read: the error it means (the connection was lost, no FIN), else undefined. */
  ended(): Error | undefined;
  /** The transport error (a {@link TransportError}) a rejected read means. */
  error(e: unknown): Error;
  /** Stops reading. */
  return?(): Promise<unknown>;
}

/** A bidirectional stream. */
export interface BidiStream extends SendStream, RecvStream {}

/** Callbacks for what the peer opens or sends. */
export interface IncomingHandlers {
  /** Called with each bidirectional stream the peer opens; left out, they are cancelled. */
  bidi?: (stream: BidiStream) => void;
  /** Called with each unidirectional stream the peer opens; left out, they are cancelled. */
  uni?: (stream: RecvStream) => void;
  /** Called with each datagram's payload; left out, datagrams are dropped. */
  datagram?: (data: Uint8Array) => void;
}

/** One QUIC connection. */
export interface Connection {
  /** The peer's address. */
  readonly remote: SocketAddress;
  /** The negotiated ALPN id. */
  readonly alpn: string;
  /** Largest datagram payload the peer accepts now; 0 when datagrams are unavailable. */
  readonly maxDatagramSize: number;
  /** Settles when the handshake completes (already settled unless 0-RTT was used). */
  readonly handshake: Promise<HandshakeInfo>;
  /** The client's certificate under mutual TLS (server side, Bun); undefined otherwise. */
  readonly peerCertificate: PeerCertificate | undefined;
  /** Settles when the connection has ended, never rejects. */
  readonly closed: Promise<CloseInfo>;
  /** The idle timeout this side uses now (ms): no packet for this long ends the connection. */
  readonly idleTimeoutMs: number;
  /**
   * Lowers the idle timeout to `ms` (a larger value is ignored): RFC 9000 §10.1 has both ends
   * use the smaller of the two, and the RPC layer learns the peer's in HELLO/WELCOME. Stacks that
   * negotiate it themselves (quinn) only record it.
   */
  lowerIdleTimeout(ms: number): void;
  /**
   * Opens a bidirectional stream. While the peer's concurrent-stream limit is reached it waits
   * for a slot; with `options.signal`, aborting gives up the wait, rejecting with
   * `STREAM_LIMIT` (the abandoned stream never reaches the peer).
   */
  openBidi(options?: OpenStreamOptions): Promise<BidiStream>;
  /** Opens a unidirectional (send-only) stream. */
  openUni(): Promise<SendStream>;
  /**
   * Starts delivering what the peer opens; streams that arrived earlier are delivered first.
   * Call it once per connection (a second call throws `INVALID_ARGUMENT`).
   */
  handle(handlers: IncomingHandlers): void;
  /**
   * Sends one unreliable QUIC datagram of at most `maxDatagramSize` bytes.
   * @throws {TransportError} `DATAGRAM_TOO_LARGE` or `UNSUPPORTED`.
   */
  sendDatagram(data: Uint8Array): Promise<void>;
  /** Closes the connection with an application close code (default 0) and reason; resolves once closed. */
  close(code?: number, reason?: string): Promise<void>;
  /** What the stack reports about the connection now. */
  stats(): ConnectionStats;
}

/** A listening endpoint. */
export interface Listener {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: SocketAddress;
  /**
   * What a client needs to trust this server: the CA (when known: always for development
   * certificates) and the SHA-256 fingerprint of the leaf certificate, for pinning.
   */
  readonly trust: { ca: string | undefined; fingerprint: string };
  /** Stops accepting and closes every connection with `code`. */
  close(code?: number, reason?: string): Promise<void>;
}

/** A QUIC stack behind one interface. */
export interface Transport {
  /** Which stack this is. */
  readonly name: "bun" | "deno" | "node";
  /**
   * Binds a listener; `onConnection` gets each accepted connection (with early data, before its
   * handshake completes: see `connection.handshake`).
   * @throws {TransportError} `INVALID_ARGUMENT` for bad options, `UNSUPPORTED` for a feature the
   *   stack lacks (e.g. `clientCa` on Deno).
   */
  listen(options: ListenOptions, onConnection: (connection: Connection) => void): Promise<Listener>;
  /**
   * Connects to a server.
   * @throws {TransportError} `HANDSHAKE_TIMEOUT`, `TLS_VERIFICATION` or `CONNECT_FAILED`.
   */
  connect(options: ConnectOptions): Promise<Connection>;
}
