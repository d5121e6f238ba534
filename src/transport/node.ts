/**
 * Transport adapter for Node (20+) over `@matrixai/quic` (quiche through N-API; streams are web
 * streams). A thin mapping: native errors become {@link TransportError}s here, and nowhere above.
 *
 * Stack facts (measured, docs/TRANSPORT.md): no datagram API (`maxDatagramSize` 0, `sendDatagram`
 * throws `UNSUPPORTED`); no 0-RTT or mutual TLS here (`UNSUPPORTED` for client certificates); no
 * fingerprint pinning, so a pin is checked in `verifyCallback`; no handshake timeout, so the
 * handshake has our timer; stream codes travel only through `reasonToCode`/`codeToReason`;
 * ALPN and statistics come from the native connection; the default logger prints everything;
 * opening past the peer's stream limit throws, so the adapter retries. It is slow (~1–2 ms per
 * new stream) and its 1200-byte default UDP payload costs ~3–8× throughput, so packets carry up
 * to {@link UDP_PAYLOAD} bytes: fine on loopback; a 1500-byte path fragments them at the IP layer.
 *
 * @module
 */

import { errors, events, QUICClient, QUICServer } from "@matrixai/quic";
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
  PeerCertificate,
  SendStream,
  Transport,
} from "./types.ts";

/** The transport interface types this adapter implements, so this entry point documents itself. */
export type * from "./types.ts";
import {
  checkDatagram,
  clientTrust,
  keepAliveMs,
  listenError,
  TransportError,
  TransportErrorCode as E,
} from "./transport_error.ts";
import { serverTls } from "./_server_tls.ts";
import { ConnectionSet, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_BIDI_STREAMS, DEFAULT_MAX_UNI_STREAMS, lowerIdle } from "./_connections.ts";
import { handshakeDeadline } from "./_handshake.ts";
import { Incoming } from "./_incoming.ts";
import { flushBeforeClose, type WriteClock } from "./_flush.ts";
import { WebHalves } from "./_web_stream.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/** Largest UDP payload sent, and the receive size (the library's default of 1200 is ~3–8× slower). */
export const UDP_PAYLOAD = 8192;

const CODE = Symbol("appCode");
const enc = new TextEncoder();
const dec = new TextDecoder();
const noop = () => {};
const silent: Any = { info: noop, debug: noop, warn: noop, error: noop, getChild: () => silent };
const codecs = {
  reasonToCode: (_t: string, r: Any) => (typeof r?.[CODE] === "number" ? r[CODE] : 0),
  codeToReason: (t: string, code: number) => Object.assign(new Error(`peer ${t === "read" ? "reset" : "stopped"} the stream with code ${code}`), { [CODE]: code }),
  logger: silent,
};

function common(alpn: string, idleTimeoutMs: number | undefined, bidi: number | undefined) {
  return {
    applicationProtos: [alpn],
    maxIdleTimeout: idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    keepAliveIntervalTime: keepAliveMs(idleTimeoutMs),
    initialMaxStreamsBidi: bidi ?? DEFAULT_MAX_BIDI_STREAMS,
    maxSendUdpPayloadSize: UDP_PAYLOAD,
    maxRecvUdpPayloadSize: 65527,
    readableChunkSize: 64 * 1024,
  };
}

const hostOf = (h: unknown) => String(h ?? "").replace(/^::ffff:(?=\d+\.)/, "");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// A 4 MiB receive buffer (capped by net.core.rmem_max): with 208 KiB a bulk echo lost ~1/3 of
// its packets on loopback and recovery sometimes stalled until the idle timeout; 4 MiB lost none.
function growBuffers(owner: Any): void {
  try {
    owner.socket.socket.setRecvBufferSize(4 * 1024 * 1024);
  } catch { /* private field moved: keep the default */ }
}
const why = (e: Any) => String(e?.message || e?.name || e);

class NodeStream implements BidiStream {
  readonly #h: WebHalves;
  readonly #wrote: WriteClock;

  constructor(wrote: WriteClock, s: Any) {
    this.#wrote = wrote;
    this.#h = new WebHalves(s.readable, s.writable);
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#wrote.at = performance.now();
    try {
      await this.#h.writer.write(chunk);
    } catch (e) {
      const code = (e as Any)?.[CODE];
      if (code !== undefined) throw new TransportError(E.STOP_SENDING, `the peer stopped this stream with code ${code}`, { cause: e, appCode: code });
      throw new TransportError(E.CLOSED, `stream write failed: ${why(e)}`, { cause: e });
    }
  }

  async end(): Promise<void> {
    this.#wrote.at = performance.now();
    try {
      await this.#h.writer.close();
    } catch (e) {
      throw new TransportError(E.CLOSED, `could not end the stream: ${why(e)}`, { cause: e, appCode: (e as Any)?.[CODE] });
    }
  }

  reset(code: number): void {
    this.#h.abort({ [CODE]: code });
  }

  stopSending(code: number): void {
    this.#h.cancel({ [CODE]: code });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    // The reader stays registered after its lock is released below (no unlock()), as before the
    // shared WebHalves: a later stopSending() cancels the released reader, which does nothing.
    const reader = this.#h.reader();
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) return;
        yield value;
      }
    } catch (e) {
      const code = (e as Any)?.[CODE];
      if (code !== undefined) throw new TransportError(E.STREAM_RESET, `the peer reset the stream with code ${code}`, { cause: e, appCode: code });
      throw new TransportError(E.CLOSED, `stream read failed: ${why(e)}`, { cause: e });
    } finally {
      reader.releaseLock();
    }
  }
}

class NodeConnection implements Connection {
  /** Recorded for the RPC layer's HELLO/WELCOME; quiche negotiates the smaller value itself. */
  idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS;
  lowerIdleTimeout(ms: number): void {
    this.idleTimeoutMs = lowerIdle(this.idleTimeoutMs, ms);
  }
  readonly #c: Any;
  readonly #stop: (code: number, reason: string) => Promise<void>;
  readonly #wrote: WriteClock = { at: -Infinity };
  readonly closed: Promise<CloseInfo>;
  readonly maxDatagramSize = 0; // @matrixai/quic has no datagram API.
  /** Always a full handshake: 0-RTT is not wired up on this stack. */
  readonly handshake: Promise<HandshakeInfo> = Promise.resolve({ resumed: false, earlyDataAccepted: false });
  /** Mutual TLS is not offered on this stack. */
  readonly peerCertificate: PeerCertificate | undefined = undefined;
  /** The peer's streams, held until handle() (which may be called once). */
  readonly #incoming = new Incoming<Any>((stream, h) => {
    const fn = stream.type === "uni" ? h.uni : h.bidi;
    if (fn) fn(new NodeStream(this.#wrote, stream));
    else stream.cancel({ [CODE]: 0 });
  });
  #local = false;

  constructor(conn: Any, stop: (code: number, reason: string) => Promise<void>) {
    this.#c = conn;
    this.#stop = stop;
    this.closed = Promise.resolve(conn.closedP).then(() => {
      const err = conn.getConnectionError?.();
      const reason = err?.reason?.length ? dec.decode(err.reason) : "";
      return { code: err?.isApp ? Number(err.errorCode) : 0, reason, local: this.#local };
    }, () => ({ code: 0, reason: "", local: this.#local }));
  }

  incoming(stream: Any): void {
    this.#incoming.push(stream);
  }

  get remote(): { host: string; port: number } {
    return { host: hostOf(this.#c.remoteHost), port: Number(this.#c.remotePort ?? 0) };
  }

  get alpn(): string {
    try {
      return dec.decode(this.#c.conn.applicationProto());
    } catch {
      return "";
    }
  }

  handle(handlers: IncomingHandlers): void {
    this.#incoming.handle(handlers);
  }

  async #open(type: "bidi" | "uni"): Promise<NodeStream> {
    while (true) {
      try {
        return new NodeStream(this.#wrote, this.#c.newStream(type));
      } catch (e) {
        // Past the peer's stream limit: wait for more, as on Bun and Deno.
        if (e instanceof errors.ErrorQUICStreamLimit && !this.#c.closed) {
          await sleep(2);
          continue;
        }
        throw new TransportError(E.CLOSED, `cannot open a stream: ${why(e)}`, { cause: e });
      }
    }
  }

  openBidi(): Promise<BidiStream> {
    return this.#open("bidi");
  }

  openUni(): Promise<SendStream> {
    return this.#open("uni");
  }

  sendDatagram(data: Uint8Array): Promise<void> {
    checkDatagram(data.length, this.maxDatagramSize);
    return Promise.resolve();
  }

  async close(code = 0, reason = ""): Promise<void> {
    this.#local = true;
    // Let what streams wrote just now reach the peer, and its accept loop take the streams.
    await flushBeforeClose(this.#wrote);
    await this.#stop(code, reason).catch(noop);
    await this.closed;
  }

  stats(): ConnectionStats {
    try {
      const s = this.#c.conn.stats();
      const p = [...this.#c.conn.pathStats()][0];
      return {
        rttMs: p ? Number(p.rtt) : undefined, // whole milliseconds
        bytesSent: Number(s.sentBytes),
        bytesReceived: Number(s.recvBytes),
        packetsLost: Number(s.lost),
      };
    } catch {
      return {};
    }
  }
}

const app = (code: number, reason: string) => ({ isApp: true as const, errorCode: code, reason: enc.encode(reason), force: true });

/** The Node `@matrixai/quic` transport. */
export const nodeTransport: Transport = {
  name: "node",

  async listen(o: ListenOptions, onConnection: (c: Connection) => void): Promise<Listener> {
    const { tls, trust } = await serverTls(o);
    if (tls.clientCa) throw new TransportError(E.UNSUPPORTED, "client certificates (clientCa) are not supported on Node; authenticate clients in HELLO");
    const key = crypto.getRandomValues(new Uint8Array(32)).buffer;
    const hmac = crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    const server = new QUICServer({
      crypto: {
        key,
        ops: {
          sign: async (_k: ArrayBuffer, data: ArrayBuffer) => crypto.subtle.sign("HMAC", await hmac, data),
          verify: async (_k: ArrayBuffer, data: ArrayBuffer, sig: ArrayBuffer) => crypto.subtle.verify("HMAC", await hmac, sig, data),
        },
      },
      config: {
        ...common(o.alpn, o.idleTimeoutMs, o.maxBidiStreams),
        key: tls.key,
        cert: tls.cert,
        verifyPeer: false,
        initialMaxStreamsUni: o.maxUniStreams ?? DEFAULT_MAX_UNI_STREAMS,
        enableEarlyData: o.earlyData ?? false,
      },
      ...codecs,
    });
    const conns = new WeakMap<object, NodeConnection>();
    const open = new ConnectionSet<NodeConnection>();
    const wrap = (conn: Any) => {
      let c = conns.get(conn);
      if (!c) {
        conns.set(conn, (c = Object.assign(new NodeConnection(conn, (code, reason) => conn.stop(app(code, reason))), { idleTimeoutMs: o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS })));
        open.add(c, c.closed);
      }
      return c;
    };
    // Streams re-dispatched on the server include those that beat the connection event.
    server.addEventListener(events.EventQUICConnectionStream.name, (e: Any) => wrap(e.detail.connection).incoming(e.detail));
    server.addEventListener(events.EventQUICServerConnection.name, (e: Any) => onConnection(wrap(e.detail)));
    server.addEventListener(events.EventQUICServerError.name, noop);
    try {
      await server.start({ host: o.host, port: o.port });
    } catch (e) {
      throw listenError(o.host, o.port, e);
    }
    growBuffers(server);
    return {
      trust,
      address: { host: hostOf(server.host), port: Number(server.port) },
      async close(code = 0, reason = "") {
        await open.closeAll((c) => c.close(code, reason));
        await server.stop(app(code, reason)).catch(noop);
      },
    };
  },

  async connect(o: ConnectOptions): Promise<Connection> {
    const { ca, fingerprint: fp, serverName, insecure } = clientTrust(o.tls, o.host);
    if (o.tls.cert || o.tls.key) throw new TransportError(E.UNSUPPORTED, "client certificates are not supported on Node");
    let pinError = "";
    const verifyCallback = async (certs: Uint8Array[]) => {
      const got = certs[0] ? [...new Uint8Array(await crypto.subtle.digest("SHA-256", certs[0] as BufferSource))] : [];
      const hex = got.map((b) => b.toString(16).padStart(2, "0")).join("");
      if (hex === fp) return undefined;
      pinError = `fingerprint ${hex || "(none)"} does not match the pinned ${fp}`;
      return 298; // TLS alert bad_certificate
    };
    const abort = new AbortController();
    const deadline = handshakeDeadline(`${o.host}:${o.port}`, o.handshakeTimeoutMs, () => abort.abort(new Error("handshake timeout")));
    let client: Any;
    try {
      client = await QUICClient.createQUICClient({
        host: o.host,
        port: o.port,
        serverName,
        crypto: { ops: { randomBytes: (b: ArrayBuffer) => Promise.resolve(void crypto.getRandomValues(new Uint8Array(b))) } },
        config: {
          ...common(o.alpn, o.idleTimeoutMs, o.maxBidiStreams),
          ca,
          verifyPeer: !insecure,
          // A callback replaces the library's chain check: pin this way only without a CA.
          verifyCallback: fp && !ca ? verifyCallback : undefined,
          enableEarlyData: false,
        },
        ...codecs,
      }, { signal: abort.signal });
    } catch (e) {
      if (abort.signal.aborted) throw deadline.error(e);
      const data = (e as Any)?.data;
      const detail = pinError || `${why(e)}${data?.errorCode ? ` (TLS alert ${data.errorCode - 256})` : ""}`;
      if (e instanceof errors.ErrorQUICConnectionLocalTLS) {
        throw new TransportError(E.TLS_VERIFICATION, `server certificate verification failed: ${detail}`, { cause: e });
      }
      throw new TransportError(E.CONNECT_FAILED, `connect failed: ${detail}`, { cause: e });
    } finally {
      deadline.clear();
    }
    growBuffers(client);
    const conn = client.connection;
    const c = Object.assign(new NodeConnection(conn, (code, reason) => client.destroy(app(code, reason))), { idleTimeoutMs: o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS });
    conn.addEventListener(events.EventQUICConnectionStream.name, (e: Any) => c.incoming(e.detail));
    if (fp && ca) {
      // A CA and a pin: the library checked the chain; check the leaf too.
      await verifyCallback(conn.getRemoteCertsChain());
      if (pinError) {
        await client.destroy(app(0, "")).catch(noop);
        throw new TransportError(E.TLS_VERIFICATION, `server certificate verification failed: ${pinError}`);
      }
    }
    return c;
  },
};
