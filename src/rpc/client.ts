/**
 * `RpcClient`: connects to an EchoStream server. A client is a full peer: it calls the server,
 * and serves the server's calls back with handlers of its own.
 *
 * @module
 */

import type { ApiOf, EmitArgs, EventName, RequestArgs, RequestName, RequestOutput, RpcApi, StreamName, UntypedApi } from "./api.ts";
import type { Metadata } from "../protocol/frame.ts";
import type { ProtocolLimits } from "../protocol/limits.ts";
import { type AccessPolicy, compileAccess, validateAccessPolicy } from "../security/access.ts";
import { type PeerLimits, resolveResourceLimits } from "../security/limits.ts";
import type { PayloadCodec } from "../protocol/payload_codec.ts";
import { ErrorCode, RpcError } from "../protocol/rpc_error.ts";
import { ALPN } from "../protocol/version.ts";
import { defaultTransport } from "../transport/select.ts";
import { TransportError } from "../transport/transport_error.ts";
import { toRpcError } from "../wire/errors.ts";
import { logger } from "../observe/log.ts";
import { observeConnections } from "../observe/otel.ts";
import type { CloseInfo, Transport } from "../transport/types.ts";
import { type Definition, serviceDefinitions } from "./definitions.ts";
import { connectPeer } from "./_handshake.ts";
import type { GuardInit } from "./_guard.ts";
import type { Who } from "../security/access.ts";
import { codecs, defaultOnError, formatAddress, parseAddress } from "./_options.ts";
import { type EmitOptions, inspectPeer, type Peer, type RequestOptions } from "./peer.ts";
import { type Middleware, Registry } from "./registry.ts";
import { type ClientStats, StatsTotals } from "./stats.ts";
import type { StreamBuilder } from "./stream_builder.ts";
import { browse, type BrowseOptions, discover, type DiscoverOptions, type ServiceBrowser } from "../discovery/browse.ts";
import type { DiscoveredService } from "../discovery/types.ts";
import { type ClockSource, type ClockSyncOptions, SyncedClock, systemClock } from "../clock/sync.ts";

const log = logger("rpc");

/** Options for {@link RpcClient.connect}. */
export interface ClientOptions {
  /** CA certificate(s) (PEM) the server's certificate must chain to (`server.trust.ca`). */
  ca?: string | string[];
  /** Or: the pinned SHA-256 of the server's leaf certificate (`server.trust.fingerprint`). */
  fingerprint?: string;
  /** The name the server certificate must carry. @default {the host, or "localhost" for an IP} */
  serverName?: string;
  /** Client certificate and key (PEM) for mutual TLS. */
  cert?: string;
  /** The private key (PEM) of `cert`. */
  key?: string;
  /**
   * Accept any server certificate (no `ca`, no `fingerprint`): anyone on the path can then
   * impersonate the server. For development tools only, such as the CLI's
   * `--insecure-skip-verify`. Bun and Node skip verification; Deno's QUIC client always
   * verifies, so on Deno this connects only in a process started with
   * `--unsafely-ignore-certificate-errors` (the error says so). @default {false}
   */
  insecureSkipVerify?: boolean;
  /** Credentials sent in HELLO for the server's `authenticate`. */
  auth?: unknown;
  /** This client's name, sent in HELLO. @default {"echostream-client"} */
  name?: string;
  /**
   * Give up connecting after this long (1 to 2147483647 ms). It bounds the whole of `connect()`,
   * the QUIC handshake and then HELLO → WELCOME (the server's `authenticate` included), and so
   * each reconnection attempt too. When it passes, the connection is closed and `connect()`
   * rejects with `UNAVAILABLE`, the same code as a server that does not answer at all, so one
   * retry rule covers both.
   * @default {5000}
   */
  timeoutMs?: number;
  /** Resume with 0-RTT when a session ticket is held. @default {false} */
  zeroRtt?: boolean;
  /** The QUIC transport. @default {the runtime's own} */
  transport?: Transport;
  /** The payload codec (must match the server's). @default {msgpack} */
  payloadCodec?: PayloadCodec;
  /**
   * Frame limits and per-connection limits ({@link PeerLimits}) on what the server may make this
   * client do: handler slots, queued events, outgoing bytes, the reset budget, first-frame and
   * stream-idle timeouts.
   * @throws {TypeError} From `connect()`, for an unknown key or a value out of range.
   */
  limits?: Partial<ProtocolLimits & PeerLimits>;
  /**
   * What the server may call, emit to and open on this client, in the same shape as the server's
   * `accessControl` (the `principal` of an access is undefined here; `peerName` is the server's
   * name). A denied server call answers `PERMISSION_DENIED`.
   * @example Only the device's own commands may be called on it
   * ```ts
   * import { readFile } from "node:fs/promises";
   * import { RpcClient } from "@echostream/core";
   * const ca = await readFile("ca.pem", "utf8");
   * await RpcClient.connect("127.0.0.1:5000", { ca, accessControl: { permissions: { request: ["cmd.d42.*"], event: [], stream: [] } } });
   * ```
   */
  accessControl?: AccessPolicy;
  /**
   * Retry requests the server refused as rate-limited (`RESOURCE_EXHAUSTED` with
   * `details.retryAfterMs`) after the delay it asked for, within the call's own deadline (opt-in;
   * a number is the most attempts after the first). Nothing else is retried: a call the server
   * may have run is never repeated behind the caller's back.
   * @default {0}
   */
  retryRateLimited?: number;
  /** Where failures of this client's own handlers are reported. By default they are logged (category `["echostream", "rpc"]`, level error). */
  onError?: (error: unknown, where: string) => void;
  /** Close the connection after this long without traffic (keep-alives are sent meanwhile). @default {30000} */
  idleTimeoutMs?: number;
  /**
   * Reconnect when the connection is lost (opt-in). Calls made while disconnected fail at once
   * with `UNAVAILABLE`; calls in flight when the connection drops fail with `UNAVAILABLE` too.
   * `true` takes the defaults.
   */
  reconnect?: boolean | ReconnectOptions;
  /**
   * This client's clock source: ms on the Unix epoch. Tests shift it on purpose.
   * @default {performance.timeOrigin + performance.now()}
   */
  clock?: ClockSource;
  /**
   * Clock-sync settings (`intervalMs`, 50–10,000, default 250), or `false` to send no sync PINGs
   * (a keep-alive PING still goes on the control stream every 20 s: Bun's QUIC closes connections
   * that carry no stream data for 60 s).
   */
  clockSync?: ClockSyncOptions | false;
}

/** How {@link RpcClient} reconnects. */
export interface ReconnectOptions {
  /** First delay. @default {100} */
  minDelayMs?: number;
  /** Longest delay (the delay doubles after each failed attempt, with ±20% jitter). @default {5000} */
  maxDelayMs?: number;
  /** Give up after this many failed attempts in a row. @default {Infinity} */
  maxAttempts?: number;
  /** Called after each successful reconnection. */
  onReconnect?: (attempt: number) => void;
}

/**
 * A connection to an EchoStream server. `A` is the server's API (see `ApiOf`); without one
 * (`UntypedApi`) any name and input is accepted and `request<T>()` casts its result.
 *
 * @example Calling a server
 * ```ts
 * import { readFile } from "node:fs/promises";
 * import { RpcClient } from "@echostream/core";
 *
 * const ca = await readFile("ca.pem", "utf8"); // the server's CA certificate: server.trust.ca
 *
 * const client = await RpcClient.connect("127.0.0.1:5000", { ca });
 * const sum = await client.request<number>("math.add", [1, 2], { timeoutMs: 2000 });
 * await client.close();
 * ```
 *
 * @example Typed by the server's API: names, inputs and results checked at compile time
 * ```ts
 * import { type ApiOf, handler, RpcClient, RpcServer } from "@echostream/core";
 *
 * const server = RpcServer.builder().handler(handler("math.add", (_ctx, [a, b]: [number, number]) => a + b)).build();
 * await server.start();
 * const client = await RpcClient.connect<ApiOf<typeof server>>(server.address, { ca: server.trust.ca });
 * const sum: number = await client.request("math.add", [1, 2]); // "math.ad" or ["1", 2] would not compile
 * await client.close();
 * await server.close();
 * ```
 */
export class RpcClient<A extends RpcApi = UntypedApi> {
  #peer: Peer;
  /**
   * The server's clock (the reference), kept in sync over this connection and its reconnections:
   * `now()`, `offsetMs` (reference − local), `rttMs`, `uncertaintyMs`, `skewPpm`, `stats()`,
   * and a `clockstep` event.
   */
  readonly clock: SyncedClock;
  readonly #registry: Registry;
  readonly #dial: (signal?: AbortSignal) => Promise<Peer>;
  readonly #reconnect: Required<Omit<ReconnectOptions, "onReconnect">> & Pick<ReconnectOptions, "onReconnect"> | undefined;
  /** Aborted by `close()`: cancels a reconnection's backoff sleep or dial. */
  readonly #stop = new AbortController();
  readonly #totals = new StatsTotals();
  #reconnects = 0;
  #closeInfo: CloseInfo | undefined;
  #final!: (info: CloseInfo) => void;
  /** Settles when the client is closed for good (by `close()`, or when reconnecting gives up). */
  readonly closed: Promise<CloseInfo> = new Promise((r) => (this.#final = r));

  readonly #retries: number;

  private constructor(peer: Peer, registry: Registry, dial: (signal?: AbortSignal) => Promise<Peer>, reconnect: ClientOptions["reconnect"], retries: number) {
    this.#peer = peer;
    this.#retries = retries;
    this.clock = peer.clock;
    this.closed.then(() => this.clock.free());
    this.#registry = registry;
    this.#dial = dial;
    this.#reconnect = reconnect
      ? {
        minDelayMs: 100,
        maxDelayMs: 5000,
        maxAttempts: Infinity,
        ...(typeof reconnect === "object" ? reconnect : {}),
      }
      : undefined;
    this.#watch(peer);
    // The server's clock as this client sees it, as gauges, when an OpenTelemetry meter provider is registered.
    const unobserve = observeConnections("client", () => {
      const p = this.#peer;
      return this.connected ? [{ remote: p.remote, clock: this.clock, bytes: () => inspectPeer(p).conn.stats() }] : [];
    });
    this.closed.then(unobserve);
  }

  /** The current connection's peer: the server side, as this client sees it. */
  get peer(): Peer<A> {
    return this.#peer;
  }

  /**
   * A plain snapshot of this client's counters over all its connections (reconnections
   * included): calls, events and streams done, live state (`openStreams`, `pendingRequests`,
   * `inFlight`, `datagramRoutes`: back to zero once traffic stops), `connected` and `reconnects`.
   *
   * @example
   * ```ts
   * import type { RpcClient } from "@echostream/core";
   * export function leaks(client: RpcClient): boolean {
   *   const { pendingRequests, openStreams } = client.stats();
   *   return pendingRequests > 0 || openStreams > 0;
   * }
   * ```
   */
  stats(): ClientStats {
    const live = this.#peer.isClosed ? [] : [this.#peer];
    if (this.#peer.isClosed) this.#totals.retire(this.#peer);
    return { connected: this.connected, reconnects: this.#reconnects, ...this.#totals.snapshot(live) };
  }

  /** Whether the client has a live connection now. */
  get connected(): boolean {
    return !this.#peer.isClosed;
  }

  #watch(peer: Peer): void {
    peer.closed.then(async (info) => {
      const signal = this.#stop.signal;
      const server = formatAddress(peer.remote);
      if (!info.local) {
        log.info("connection to {server} closed by the server: {reason} (close code {code})", { server, peer: peer.name, reason: info.reason || "no reason given", code: `0x${info.code.toString(16)}` });
      }
      if (signal.aborted || !this.#reconnect) return this.#final(info);
      const r = this.#reconnect;
      let delay = r.minDelayMs;
      for (let attempt = 1; attempt <= r.maxAttempts && !signal.aborted; attempt++) {
        await sleep(delay * (0.8 + 0.4 * Math.random()), signal);
        if (signal.aborted) break;
        // close() must not wait for a dial (its QUIC handshake cannot be cancelled): stop
        // waiting at once, and close whatever the dial still brings.
        const dialing = this.#dial(signal);
        try {
          const next = await unlessAborted(dialing, signal);
          if (!next || signal.aborted) {
            dialing.then((p) => p.close().catch(() => {}), () => {});
            break;
          }
          this.#totals.retire(this.#peer);
          this.#reconnects++;
          this.#peer = next;
          this.#watch(next);
          log.info("reconnected to {server} (attempt {attempt})", { server, attempt });
          r.onReconnect?.(attempt);
          return;
        } catch (e) {
          log.debug("reconnect attempt {attempt} to {server} failed: {error}", { server, attempt, error: e });
          delay = Math.min(delay * 2, r.maxDelayMs);
        }
      }
      if (!signal.aborted) log.warn("gave up reconnecting to {server} after {attempts} attempts", { server, attempts: r.maxAttempts });
      this.#final(signal.aborted ? this.#closeInfo ?? info : info);
    });
  }

  /**
   * Connects and completes the HELLO/WELCOME handshake.
   *
   * `S`, optional, types the client by the server's API: a server (`typeof server`), a builder,
   * definitions (an array or object of them), or an `RpcApi` written by hand
   * (docs/TYPED_API.md). It exists only at compile time.
   *
   * @param address "host:port" or `{ host, port }`.
   * @param options Trust (`ca` or `fingerprint`), credentials, codecs, reconnection.
   * @throws {RpcError} `UNAVAILABLE` (nothing answered, connection failed, or no WELCOME
   *   within `timeoutMs`; the connection is then closed), `UNAUTHENTICATED`
   *   (refused by the server, or its certificate is not trusted: see `cause`),
   *   `FAILED_PRECONDITION` (protocol version mismatch), `INVALID_ARGUMENT` (bad options).
   */
  static async connect<S = UntypedApi>(
    address: string | { host: string; port: number } | DiscoveredService,
    options: ClientOptions = {},
  ): Promise<RpcClient<ApiOf<S>>> {
    const timeoutMs = options.timeoutMs ?? 5000;
    if (typeof timeoutMs !== "number" || !(timeoutMs >= 1 && timeoutMs <= 2 ** 31 - 1)) {
      const got = typeof timeoutMs === "number" ? timeoutMs : JSON.stringify(timeoutMs);
      throw new RpcError(ErrorCode.INVALID_ARGUMENT, `timeoutMs must be a number of ms from 1 to 2147483647, received ${got}`);
    }
    if (isDiscovered(address)) return connectDiscovered(address, options);
    const { host, port } = parseAddress(address, "connect");
    const registry = new Registry();
    let resolved: ReturnType<typeof resolveResourceLimits>;
    try {
      resolved = resolveResourceLimits(options.limits, false);
      if (options.accessControl !== undefined) validateAccessPolicy(options.accessControl);
    } catch (e) {
      throw new RpcError(ErrorCode.INVALID_ARGUMENT, (e as Error).message, undefined, { cause: e });
    }
    const retries = options.retryRateLimited ?? 0;
    if (!Number.isInteger(retries) || retries < 0) throw new RpcError(ErrorCode.INVALID_ARGUMENT, `retryRateLimited must be a non-negative integer, received ${retries}`);
    const { frames, payload } = codecs({ payloadCodec: options.payloadCodec, limits: resolved.frames });
    const access = options.accessControl;
    const onHookError = (e: unknown) => (options.onError ?? defaultOnError)(e, "accessControl check");
    const guardFor = (who: Who): GuardInit => ({ limits: resolved.peer, access: access ? compileAccess(access, who, onHookError) : undefined });
    const localClock = options.clock ?? systemClock;
    if (typeof localClock !== "function") throw new RpcError(ErrorCode.INVALID_ARGUMENT, "clock must be a function returning ms");
    let clock: SyncedClock;
    try {
      clock = new SyncedClock(localClock, frames, options.clockSync || {});
    } catch (e) {
      throw new RpcError(ErrorCode.INVALID_ARGUMENT, (e as Error).message, undefined, { cause: e });
    }
    const dial = async (signal?: AbortSignal): Promise<Peer> => {
      const deadline = performance.now() + timeoutMs; // one deadline for QUIC and HELLO/WELCOME
      const t = options.transport ?? (await defaultTransport());
      let conn;
      try {
        conn = await t.connect({
          host,
          port,
          alpn: ALPN,
          tls: {
            ca: options.ca,
            fingerprint: options.fingerprint,
            serverName: options.serverName,
            cert: options.cert,
            key: options.key,
            insecureSkipVerify: options.insecureSkipVerify,
          },
          handshakeTimeoutMs: timeoutMs,
          idleTimeoutMs: options.idleTimeoutMs,
          zeroRtt: options.zeroRtt,
        });
      } catch (e) {
        // A transport failure becomes an RpcError; anything else (a custom transport's own error) passes as it is.
        throw e instanceof TransportError ? toRpcError(e, `cannot connect to ${host}:${port}`) : e;
      }
      const setup = {
        frames,
        payload,
        registry,
        name: options.name ?? "echostream-client",
        onError: options.onError ?? defaultOnError,
        clock: localClock,
        clockSync: options.clockSync ?? {},
        limits: resolved.peer,
      };
      return await connectPeer(conn, setup, options.auth, clock, { deadline, timeoutMs, signal }, guardFor);
    };
    try {
      return new RpcClient(await dial(), registry, dial, options.reconnect, retries);
    } catch (e) {
      clock.free();
      throw e;
    }
  }

  /**
   * Finds EchoStream servers advertising `name` on the local network (DNS-SD over mDNS). Resolves
   * as soon as answers settle (`[]` when nothing answers within `timeoutMs`, default 3000).
   * Loopback addresses are left out unless `includeLoopback`.
   *
   * The advertised `fingerprint` comes from an unauthenticated multicast answer: trusting it is
   * trust on first use, so it is never used by default. Pass it explicitly if you accept that:
   *
   * @example
   * ```ts
   * const [svc] = await RpcClient.discover("AudioService", { timeoutMs: 2000 });
   * if (svc) {
   *   const client = await RpcClient.connect(svc, { fingerprint: svc.fingerprint }); // TOFU, explicit
   *   await client.close();
   * }
   * ```
   * @throws {DiscoveryError} `UNAVAILABLE` when multicast cannot work here at all.
   */
  static discover(name: string, options?: DiscoverOptions): Promise<DiscoveredService[]> {
    return discover(name, options);
  }

  /**
   * Follows servers advertising `name` as they come up, change and go (goodbyes, and a liveness
   * re-query for servers that vanish without one): an async iterable of `{ type, service }`.
   * Stop with `return()` / `close()` (it closes its socket).
   *
   * @example
   * ```ts
   * const browser = RpcClient.browse("AudioService");
   * for await (const { type, service } of browser) {
   *   console.log(type, service.instance, service.addresses);
   *   break; // closes the browser
   * }
   * ```
   */
  static browse(name: string, options?: BrowseOptions): ServiceBrowser {
    return browse(name, options);
  }

  /**
   * Calls a server handler. See {@link Peer.request}. With `retryRateLimited` set, a call the
   * server refused as rate-limited is sent again after its `retryAfterMs`, as long as that fits
   * in the call's `timeoutMs` and its signal has not fired.
   */
  request<T = unknown, N extends RequestName<A> = RequestName<A>>(method: N, ...args: RequestArgs<A, N, RequestOptions>): Promise<RequestOutput<A, N, T>>;
  request<T>(method: string, input?: unknown, options?: RequestOptions): Promise<T> {
    if (this.#retries === 0) return this.#peer.request<T>(method, input, options);
    return this.#withRetries<T>(method, input, options ?? {});
  }

  async #withRetries<T>(method: string, input: unknown, options: RequestOptions): Promise<T> {
    const start = performance.now();
    for (let attempt = 0;; attempt++) {
      const left = options.timeoutMs === undefined ? undefined : options.timeoutMs - (performance.now() - start);
      try {
        return await this.#peer.request<T>(method, input, left === undefined ? options : { ...options, timeoutMs: Math.max(1, left) });
      } catch (e) {
        const wait = retryAfter(e);
        if (wait === undefined || attempt >= this.#retries) throw e;
        const remaining = options.timeoutMs === undefined ? Infinity : options.timeoutMs - (performance.now() - start);
        if (wait >= remaining) throw e; // the retry could not finish in time: the refusal is the answer
        await sleep(wait, options.signal ?? this.#stop.signal);
        if (options.signal?.aborted) throw new RpcError(ErrorCode.CANCELLED, `call to "${method}" cancelled`, options.signal.reason);
      }
    }
  }

  /** Emits an event to the server. See {@link Peer.emit}. */
  emit<N extends EventName<A>>(topic: N, ...args: EmitArgs<A, N, EmitOptions>): Promise<void>;
  emit(topic: string, payload?: unknown, options?: EmitOptions): Promise<void> {
    return this.#peer.emit(topic, payload, options);
  }

  /** Opens a stream to a server stream handler. See {@link Peer.createStream}. */
  createStream(name: StreamName<A>): StreamBuilder {
    return this.#peer.createStream(name);
  }

  /** Serves the server's calls back: registers a `handler`, `listener` or `streamHandler`. */
  handle(...defs: Definition[]): this {
    for (const def of defs) this.#registry.add(def);
    return this;
  }

  /** Registers every decorated method of a class instance. */
  service(instance: object): this {
    for (const def of serviceDefinitions(instance)) this.#registry.add(def);
    return this;
  }

  /** Adds middleware around what this client serves. */
  use(mw: Middleware): this {
    this.#registry.use(mw);
    return this;
  }

  /** Closes the connection (and stops reconnecting); calls in flight fail with `UNAVAILABLE`. */
  async close(code = 0, reason = ""): Promise<void> {
    if (!this.#stop.signal.aborted) {
      // What `closed` settles with when no connection is up (closed during a reconnect backoff).
      this.#closeInfo = { code, reason, local: true };
      this.#stop.abort();
    }
    await this.#peer.close(code, reason);
    await this.closed;
  }
}

export type { Metadata };

/** The server's `retryAfterMs` when `e` is a rate-limit refusal, else undefined. */
function retryAfter(e: unknown): number | undefined {
  if (!(e instanceof RpcError) || e.code !== ErrorCode.RESOURCE_EXHAUSTED) return undefined;
  const ms = (e.details as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
  return typeof ms === "number" && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** Waits `ms`, or less if `signal` aborts first (the timer is cleared: nothing stays pending). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Settles like `p`, or with undefined as soon as `signal` aborts. */
function unlessAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function isDiscovered(a: unknown): a is DiscoveredService {
  return typeof a === "object" && a !== null && Array.isArray((a as DiscoveredService).addresses) && typeof (a as DiscoveredService).instance === "string";
}

/**
 * Connects to a discovered service, trying its addresses in order, happy-eyeballs style: the
 * next address starts 250 ms after the previous one unless that one already failed; the first
 * to complete the handshake wins and the others are closed.
 */
async function connectDiscovered(svc: DiscoveredService, options: ClientOptions): Promise<RpcClient> {
  const addresses = svc.addresses.filter((a) => typeof a === "string" && a.length > 0);
  if (addresses.length === 0) throw new RpcError(ErrorCode.INVALID_ARGUMENT, `service "${svc.instance}" has no address to connect to`);
  // The certificate carries the server's name or address; an address from mDNS needs the name.
  const opts: ClientOptions = { serverName: options.serverName ?? "localhost", ...options };
  const errors: unknown[] = [];
  let winner: RpcClient | undefined;
  await new Promise<void>((resolve) => {
    let pending = addresses.length;
    let started = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const startNext = () => {
      clearTimeout(timer);
      if (winner || started >= addresses.length) return;
      const host = addresses[started++];
      RpcClient.connect({ host, port: svc.port }, opts).then(
        (c) => {
          if (winner) {
            c.close().catch(() => {});
            return undefined;
          }
          winner = c;
          clearTimeout(timer);
          resolve();
          return c;
        },
        (e) => {
          errors.push(e);
          if (--pending === 0) resolve();
          else startNext(); // failed fast: do not wait out the delay
          return undefined;
        },
      );
      timer = setTimeout(startNext, 250);
    };
    startNext();
  });
  if (winner) return winner;
  const first = errors[0];
  throw new RpcError(
    first instanceof RpcError ? first.code : ErrorCode.UNAVAILABLE,
    `cannot connect to "${svc.instance}" at any of ${addresses.map((a) => (a.includes(":") ? `[${a}]` : a) + ":" + svc.port).join(", ")}: ${errors.map((e) => (e as Error).message).join("; ")}`,
    undefined,
    { cause: first },
  );
}
