// The raw QUIC stacks used directly, without our adapter: Bun's `node:quic`, Deno's
// `Deno.QuicEndpoint`/`Deno.connectQuic`, and on Node the npm package `@matrixai/quic` with the
// settings our Node adapter uses. Shared by bench/transport.ts (RAW vs OURS vs TCP) and
// bench/rpc.ts (RAW, the ceiling for one stream per call).
//
// The server picks its behaviour from the first byte a stream carries: "E" echoes every chunk
// back; "S" counts the bytes and answers with the count (8 bytes) once the client ends the
// stream; "G" + u32 count + u32 size (9 bytes) answers with `count` messages, each a u32 length
// prefix and `size` bytes, then ends the stream (server streaming).

// deno-lint-ignore no-explicit-any
export type Any = any;

export const HOST = "127.0.0.1";
export const ALPN = "echostream/1";
export const ECHO = 0x45; // "E"
export const SINK = 0x53; // "S"
export const GEN = 0x47; // "G"
export const noop = () => {};
const G = globalThis as Any;

// ---------------------------------------------------------------------------------------------
// The shape every implementation provides

export interface Stream {
  /** Queue a chunk; a returned promise means "wait before writing more". */
  write(chunk: Uint8Array): void | Promise<void>;
  /** Send FIN. */
  end(): void | Promise<void>;
  /** Read until at least `want` bytes have arrived; copies them into `into` when given. */
  readN(want: number, into?: Uint8Array): Promise<number>;
  /** Read until FIN; returns the byte count. */
  readAll(): Promise<number>;
  /** Read until FIN, handing each chunk to `onChunk`; returns the byte count (RAW streams only). */
  readChunks?(onChunk: (c: Uint8Array) => void): Promise<number>;
  /** Drop the stream (after an error). */
  abort(): void;
}

export interface Client {
  open(): Promise<Stream>;
  close(): Promise<void>;
  /** Whether the handshake resumed a session (OURS only). */
  resumed?(): Promise<boolean>;
}

export interface Impl {
  name: "raw" | "ours" | "tcp";
  /** Whether a connection carries many streams (TCP: one connection = one stream). */
  multiStream: boolean;
  /** `zeroRtt`: resume with a session ticket and send early data (OURS only). */
  connect(zeroRtt?: boolean): Promise<Client>;
  /** Measure "connect + first echo" with a full handshake (OURS only). */
  firstEcho?: boolean;
  /** Supports `connect(true)` (OURS on Bun and Deno; Node's stack has no 0-RTT). */
  resumable?: boolean;
  stop(): Promise<void>;
}

export function u64(x: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(x));
  return b;
}

/** Copies `c` into `into` at `at` if there is an `into`. */
export function take(into: Uint8Array | undefined, at: number, c: Uint8Array): void {
  if (into && at < into.length) into.set(c.subarray(0, into.length - at), at);
}

/** The "G" request: answer with `count` messages of `size` bytes, each with a u32 length prefix. */
/** Writes a chunk, awaiting only when the stream's write is asynchronous. */
export async function send(s: Stream, c: Uint8Array): Promise<void> {
  const r = s.write(c);
  if (r) await r;
}

/** Ends a stream's sending half, awaiting only when that is asynchronous. */
export async function endStream(s: Stream): Promise<void> {
  const r = s.end();
  if (r) await r;
}

/** The read side of a Stream over a source yielding one chunk per `next()` (web streams, our adapter). */
export function chunkReads(
  next: () => Promise<{ done?: boolean; value?: Uint8Array }>,
): Pick<Stream, "readN" | "readAll" | "readChunks"> {
  return {
    async readN(want, into) {
      let got = 0;
      while (got < want) {
        const r = await next();
        if (r.done) throw new Error(`stream ended after ${got} of ${want} bytes`);
        take(into, got, r.value!);
        got += r.value!.length;
      }
      return got;
    },
    async readAll() {
      let got = 0;
      while (true) {
        const r = await next();
        if (r.done) return got;
        got += r.value!.length;
      }
    },
    async readChunks(onChunk) {
      let got = 0;
      while (true) {
        const r = await next();
        if (r.done) return got;
        onChunk(r.value!);
        got += r.value!.length;
      }
    },
  };
}

export function genRequest(count: number, size: number): Uint8Array {
  const b = new Uint8Array(9);
  const v = new DataView(b.buffer);
  b[0] = GEN;
  v.setUint32(1, count);
  v.setUint32(5, size);
  return b;
}

/** Collects the 9-byte "G" header across chunks; yields { count, message } once complete. */
class GenHeader {
  #buf = new Uint8Array(9);
  #have = 0;
  /** Feeds a chunk; returns the plan the first time the header is complete. */
  push(c: Uint8Array): { count: number; message: Uint8Array } | undefined {
    if (this.#have >= 9) return undefined;
    const k = Math.min(9 - this.#have, c.length);
    this.#buf.set(c.subarray(0, k), this.#have);
    this.#have += k;
    if (this.#have < 9) return undefined;
    const v = new DataView(this.#buf.buffer);
    const count = Math.min(v.getUint32(1), 10_000_000);
    const size = Math.min(v.getUint32(5), 1 << 20);
    const message = new Uint8Array(4 + size);
    new DataView(message.buffer).setUint32(0, size);
    for (let i = 4; i < message.length; i++) message[i] = i & 0xff;
    return { count, message };
  }
}

// ---------------------------------------------------------------------------------------------
// Bun: node:quic

const DRAIN = Symbol.for("Stream.drainableProtocol");

export async function bunDrainWrite(w: Any, c: Uint8Array): Promise<void> {
  for (let i = 0; !w.writeSync(c); i++) {
    if (w.desiredSize === null) throw new Error("stream closed for writing");
    if (i > 1_000_000) throw new Error("writer never drained");
    await (w[DRAIN]?.() ?? new Promise((r) => setTimeout(r, 1)));
  }
}

export function bunRawStream(st: Any): Stream {
  st.closed?.catch?.(noop);
  const w = st.writer;
  const it = st[Symbol.asyncIterator]();
  return {
    write: (c) => (w.writeSync(c) ? undefined : bunDrainWrite(w, c)),
    end: () => {
      w.endSync();
    },
    async readN(want, into) {
      let got = 0;
      while (got < want) {
        const r = await it.next();
        if (r.done) throw new Error(`stream ended after ${got} of ${want} bytes`);
        for (const c of r.value as Uint8Array[]) {
          take(into, got, c);
          got += c.length;
        }
      }
      return got;
    },
    async readAll() {
      let got = 0;
      while (true) {
        const r = await it.next();
        if (r.done) return got;
        for (const c of r.value as Uint8Array[]) got += c.length;
      }
    },
    async readChunks(onChunk) {
      let got = 0;
      while (true) {
        const r = await it.next();
        if (r.done) return got;
        for (const c of r.value as Uint8Array[]) {
          onChunk(c);
          got += c.length;
        }
      }
    },
    abort: () => {
      try {
        st.destroy();
      } catch { /* gone */ }
    },
  };
}

export async function serveBunRaw(st: Any): Promise<void> {
  st.closed?.catch?.(noop);
  const w = st.writer;
  let mode = 0;
  let count = 0;
  const gen = new GenHeader();
  try {
    for await (const batch of st) {
      for (const c of batch as Uint8Array[]) {
        if (mode === 0 && c.length > 0) mode = c[0];
        if (mode === SINK) count += c.length;
        else if (mode === GEN) {
          const plan = gen.push(c);
          if (plan) {
            for (let i = 0; i < plan.count; i++) {
              if (!w.writeSync(plan.message)) await bunDrainWrite(w, plan.message);
            }
          }
        } else if (!w.writeSync(c)) await bunDrainWrite(w, c);
      }
    }
    if (mode === SINK) w.writeSync(u64(count));
    w.endSync();
  } catch {
    try {
      st.destroy();
    } catch { /* gone */ }
  }
}

export async function bunRaw(certs: Any): Promise<Impl> {
  const name = "node:quic";
  const q = await import(name);
  const { createPrivateKey } = await import("node:crypto");
  const te = new TextEncoder();
  const sessions = new Set<Any>();
  // The same transport parameters OURS sets (Bun reads maxIdleTimeout in seconds).
  const params = {
    initialMaxStreamsBidi: 1024,
    initialMaxStreamsUni: 64,
    maxIdleTimeout: 32,
    maxDatagramFrameSize: 1350,
  };
  const ep = await q.listen(
    (session: Any) => {
      session.closed.catch(noop);
      sessions.add(session);
      session.closed.finally(() => sessions.delete(session)).catch(noop);
      session.onstream = (st: Any) => serveBunRaw(st);
    },
    {
      alpn: [ALPN],
      sni: { "*": { keys: [createPrivateKey(certs.key)], certs: [te.encode(certs.cert)] } },
      endpoint: { address: `${HOST}:0` },
      enableEarlyData: false,
      transportParams: params,
    },
  );
  const port = Number(ep.address.port);
  const ca = [te.encode(certs.ca)];
  return {
    name: "raw",
    multiStream: true,
    async connect() {
      const s = await q.connect(`${HOST}:${port}`, {
        alpn: ALPN,
        servername: "localhost",
        ca,
        transportParams: { maxDatagramFrameSize: 1350, maxIdleTimeout: 32, initialMaxStreamsBidi: 1024 },
      });
      s.closed.catch(noop);
      await s.opened;
      return {
        open: async () => bunRawStream(await s.createBidirectionalStream()),
        async close() {
          await s.close({ code: 0n, type: "application", reason: "" }).catch(noop);
          await s.closed.catch(noop);
        },
      };
    },
    async stop() {
      await Promise.all([...sessions].map((s) => s.close({ code: 0n, type: "application", reason: "" }).catch(noop)));
      await ep.close?.()?.catch?.(noop);
      ep.destroy?.();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Deno: Deno.QuicEndpoint / Deno.connectQuic

/** A client stream over a web-streams bidi stream ({ readable, writable }): Deno and Node RAW. */
export function webRawStream(b: Any): Stream {
  const w = b.writable.getWriter();
  const reader = b.readable.getReader();
  let failed: unknown;
  const onError = (e: unknown) => (failed ??= e);
  return {
    write(c) {
      if (failed) throw failed;
      if ((w.desiredSize ?? 0) > 0) {
        w.write(c).catch(onError);
        return;
      }
      return w.ready.then(() => {
        w.write(c).catch(onError);
      });
    },
    end: () => {
      w.close().catch(onError);
    },
    ...chunkReads(() => reader.read()),
    abort: () => {
      w.abort().catch(noop);
      reader.cancel().catch(noop);
    },
  };
}

/** The echo/sink/generate server over a web-streams bidi stream: Deno and Node RAW. */
export async function serveWebRaw(b: Any): Promise<void> {
  const w = b.writable.getWriter();
  const reader = b.readable.getReader();
  let mode = 0;
  let count = 0;
  const gen = new GenHeader();
  try {
    while (true) {
      const r = await reader.read();
      if (r.done) break;
      const c = r.value as Uint8Array;
      if (mode === 0 && c.length > 0) mode = c[0];
      if (mode === SINK) count += c.length;
      else if (mode === GEN) {
        const plan = gen.push(c);
        if (plan) {
          for (let i = 0; i < plan.count; i++) {
            if ((w.desiredSize ?? 0) <= 0) await w.ready;
            w.write(plan.message).catch(noop);
          }
        }
      } else {
        if ((w.desiredSize ?? 0) <= 0) await w.ready;
        w.write(c).catch(noop);
      }
    }
    if (mode === SINK) w.write(u64(count)).catch(noop);
    await w.close();
  } catch {
    w.abort().catch(noop);
    reader.cancel().catch(noop);
  }
}

/**
 * Accepts every connection of a Deno QUIC listener and serves each bidirectional stream with
 * {@link serveWebRaw}; `onConn` sees each accepted connection. Runs until the listener stops.
 */
export function acceptWebRaw(listener: Any, onConn?: (conn: Any) => void): void {
  (async () => {
    try {
      for await (const incoming of listener) {
        incoming.accept().then((conn: Any) => {
          onConn?.(conn);
          (async () => {
            const r = conn.incomingBidirectionalStreams.getReader();
            try {
              while (true) {
                const { value, done } = await r.read();
                if (done) return;
                serveWebRaw(value);
              }
            } catch { /* connection closed */ }
          })();
        }, noop);
      }
    } catch { /* listener stopped */ }
  })();
}

export function denoRaw(certs: Any): Impl {
  const D = G.Deno;
  const ep = new D.QuicEndpoint({ hostname: HOST, port: 0 });
  const listener = ep.listen({
    alpnProtocols: [ALPN],
    cert: certs.cert,
    key: certs.key,
    maxConcurrentBidirectionalStreams: 1024,
    maxConcurrentUnidirectionalStreams: 64,
    maxIdleTimeout: 30000,
  });
  const conns = new Set<Any>();
  acceptWebRaw(listener, (conn) => {
    conns.add(conn);
    conn.closed.then(() => conns.delete(conn), noop);
  });
  const port = Number(ep.addr.port);
  return {
    name: "raw",
    multiStream: true,
    async connect() {
      const c = await D.connectQuic({
        hostname: HOST,
        port,
        serverName: "localhost",
        alpnProtocols: [ALPN],
        caCerts: [certs.ca],
        maxIdleTimeout: 30000,
      });
      return {
        // waitUntilAvailable: past the peer's stream limit, wait instead of throwing RangeError
        // (OURS asks for the same).
        open: async () => webRawStream(await c.createBidirectionalStream({ waitUntilAvailable: true })),
        async close() {
          try {
            c.close({ closeCode: 0, reason: "" });
          } catch { /* closed */ }
          await c.closed.catch(noop);
        },
      };
    },
    async stop() {
      for (const c of conns) {
        try {
          c.close({ closeCode: 0, reason: "" });
        } catch { /* closed */ }
      }
      await Promise.all([...conns].map((c) => c.closed.catch(noop)));
      try {
        listener.stop?.();
      } catch { /* stopped */ }
      ep.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Node: `@matrixai/quic` used directly

/**
 * `@matrixai/quic` without our adapter, configured as src/transport/node.ts configures it (the
 * values are copied here, not the adapter's code), so RAW ÷ OURS isolates the adapter's own
 * cost: 8192-byte UDP payloads sent, 65527 received, 64 KiB readable chunks, a 4 MiB socket
 * receive buffer, 1024 bidi / 64 uni streams, 30 s idle timeout with a 10 s keep-alive, a
 * silent logger (the default one prints every event), the same server crypto ops.
 */
export async function nodeRaw(certs: Any): Promise<Impl> {
  const name = "@matrixai/quic"; // a variable, so Bun and Deno never load it
  const q: Any = await import(name);
  const silent: Any = { info: noop, debug: noop, warn: noop, error: noop, getChild: () => silent };
  const config = {
    applicationProtos: [ALPN],
    maxIdleTimeout: 30000,
    keepAliveIntervalTime: 10000,
    initialMaxStreamsBidi: 1024,
    maxSendUdpPayloadSize: 8192,
    maxRecvUdpPayloadSize: 65527,
    readableChunkSize: 64 * 1024,
  };
  const grow = (owner: Any) => {
    try {
      owner.socket.socket.setRecvBufferSize(4 * 1024 * 1024);
    } catch { /* private field moved: keep the default */ }
  };
  const stop = { isApp: true, errorCode: 0, reason: new Uint8Array(0), force: true };
  const key = crypto.getRandomValues(new Uint8Array(32)).buffer;
  const hmac = crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  const server = new q.QUICServer({
    crypto: {
      key,
      ops: {
        sign: async (_k: ArrayBuffer, data: ArrayBuffer) => crypto.subtle.sign("HMAC", await hmac, data),
        verify: async (_k: ArrayBuffer, data: ArrayBuffer, sig: ArrayBuffer) =>
          crypto.subtle.verify("HMAC", await hmac, sig, data),
      },
    },
    config: {
      ...config,
      key: certs.key,
      cert: certs.cert,
      verifyPeer: false,
      initialMaxStreamsUni: 64,
      enableEarlyData: true, // as OURS listens (earlyData: true)
    },
    logger: silent,
  });
  const conns = new Set<Any>();
  server.addEventListener(q.events.EventQUICServerConnection.name, (e: Any) => {
    const conn = e.detail;
    conns.add(conn);
    Promise.resolve(conn.closedP).finally(() => conns.delete(conn)).catch(noop);
  });
  // Stream events bubble from the connections up to the server.
  server.addEventListener(q.events.EventQUICConnectionStream.name, (e: Any) => void serveWebRaw(e.detail));
  server.addEventListener(q.events.EventQUICServerError.name, noop);
  await server.start({ host: HOST, port: 0 });
  grow(server);
  const port = Number(server.port);
  return {
    name: "raw",
    multiStream: true,
    async connect() {
      const client = await q.QUICClient.createQUICClient({
        host: HOST,
        port,
        serverName: "localhost",
        crypto: {
          ops: { randomBytes: (b: ArrayBuffer) => Promise.resolve(void crypto.getRandomValues(new Uint8Array(b))) },
        },
        config: { ...config, ca: [certs.ca], verifyPeer: true, enableEarlyData: false },
        logger: silent,
      });
      grow(client);
      const conn = client.connection;
      return {
        async open() {
          // Past the peer's stream limit newStream() throws; wait for more (OURS does the same).
          for (let i = 0;; i++) {
            try {
              return webRawStream(conn.newStream("bidi"));
            } catch (e) {
              if (!(e instanceof q.errors.ErrorQUICStreamLimit) || i > 10_000) throw e;
              await new Promise((r) => setTimeout(r, 2));
            }
          }
        },
        async close() {
          await client.destroy(stop).catch(noop);
          await Promise.resolve(conn.closedP).catch(noop);
        },
      };
    },
    async stop() {
      await Promise.all([...conns].map((c) => c.stop(stop).catch(noop)));
      await server.stop(stop).catch(noop);
    },
  };
}
