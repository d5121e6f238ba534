/**
 * `RpcServer`: accepts EchoStream connections and serves handlers, listeners and stream
 * handlers to every connected peer.
 *
 * @module
 */

import { logger } from "../observe/log.ts";
import { observeConnections, observeHandshake, observeServer } from "../observe/otel.ts";
import type { ProtocolLimits } from "../protocol/limits.ts";
import type { FrameCodec } from "../protocol/codec.ts";
import type { PayloadCodec } from "../protocol/payload_codec.ts";
import { ErrorCode, errorCodeNumber, RpcError } from "../protocol/rpc_error.ts";
import { ALPN, CloseCode } from "../protocol/version.ts";
import { defaultTransport } from "../transport/select.ts";
import type { Connection, Listener, ServerTls, Transport } from "../transport/types.ts";
import { type Definition, handler, serviceDefinitions } from "./definitions.ts";
import { describeRegistry, REFLECTION_METHOD } from "./reflection.ts";
import { acceptPeer } from "./_handshake.ts";
import type { HelloInfo } from "./context.ts";
import { codecs, defaultOnError, formatAddress, parseAddress } from "./_options.ts";
import { inspectPeer, type Peer, prepareEvent, type PreparedEvent } from "./peer.ts";
import type { DefinitionsApi, EmitArgs, EventName, RequestArgs, RequestName, RequestOutput, RpcApi, UntypedApi } from "./api.ts";
import { type Middleware, Registry } from "./registry.ts";
import { type ServerStats, StatsTotals } from "./stats.ts";
import { FrameType } from "../protocol/frame.ts";
import { type AccessPolicy, compileAccess, validateAccessPolicy, type Who } from "../security/access.ts";
import { RateLimiter, type RateLimitRule, validateRateLimitRule } from "../security/rate_limit.ts";
import {
  type AdmissionLimits,
  DEFAULT_CONNECTION_LIMITS,
  DEFAULT_PEER_LIMITS,
  type PeerLimits,
  resolveResourceLimits,
  type ServerLimits,
} from "../security/limits.ts";
import { type Rejections, zeroRejections } from "./stats.ts";
import type { GuardInit } from "./_guard.ts";
import type { Advertisement, AdvertiseOptions } from "../discovery/advertise.ts";
import { checkClockSyncOptions, type ClockSource, type ClockSyncOptions, systemClock } from "../clock/sync.ts";
import { ClusterNode, type EmitResult } from "../cluster/node.ts";
import type { ClusterAdapter, ClusterEmitOptions, ClusterOptions, ClusterView, PresenceEntry } from "../cluster/types.ts";
import type { Metadata } from "../protocol/frame.ts";
import { toRpcError } from "../wire/errors.ts";

const log = logger("rpc");

/** Everything the builder collects. */
interface ServerConfig {
  bind: { host: string; port: number };
  tls?: ServerTls;
  registry: Registry;
  authenticate?: (hello: HelloInfo) => unknown | Promise<unknown>;
  payloadCodec?: PayloadCodec;
  /** Frame limits (what the codec enforces). */
  limits?: Partial<ProtocolLimits>;
  peerLimits: PeerLimits;
  connectionLimits: AdmissionLimits;
  access?: AccessPolicy;
  rateLimits: RateLimitRule[];
  transport?: Transport;
  name: string;
  onError: (error: unknown, where: string) => void;
  /** Set by `.log(fn)`; unset, notices are logged (the development certificate's is also printed when logging is not configured). */
  log?: (message: string) => void;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  maxStreams: number;
  earlyData: boolean;
  clock: ClockSource;
  clockSync: ClockSyncOptions | false;
  discovery?: DiscoveryOptions & { name: string };
  /** Set by `.reflection()`; unset, on exactly when the server makes a development certificate. */
  reflection?: boolean;
  /** Set by `.cluster()`. */
  cluster?: { adapter: ClusterAdapter; options: ClusterOptions };
}

/**
 * Options of {@link RpcServerBuilder.enableDiscovery}: which interfaces to advertise on, extra
 * TXT entries, IPv6. The port, bound address and certificate fingerprint come from the server.
 */
export type DiscoveryOptions = Omit<AdvertiseOptions, "name" | "port" | "fingerprint" | "host">;

/**
 * Builds an {@link RpcServer}.
 *
 * @example A server with a handler
 * ```ts
 * import { handler, RpcServer } from "@echostream/core";
 *
 * const server = RpcServer.builder()
 *   .bind("127.0.0.1:0")
 *   .handler(handler("math.add", (_ctx, [a, b]: [number, number]) => a + b))
 *   .build();
 * await server.start();
 * console.log(server.address, server.trust.fingerprint);
 * await server.close();
 * ```
 *
 * Typed: the builder's type remembers every definition registered with `handler`, `listener`
 * and `streamHandler` (`D`), so the server it builds has a typed API: `ApiOf<typeof server>`
 * is what a typed client (`RpcClient.connect<typeof server>(…)`) may call. `P` is the API the
 * clients serve (see `RpcServer.builder<P>()`), for `broadcast` and `peers`.
 */
export class RpcServerBuilder<D = never, P extends RpcApi = UntypedApi> {
  readonly #c: ServerConfig = {
    bind: { host: "127.0.0.1", port: 0 },
    registry: new Registry(),
    name: "echostream-server",
    onError: defaultOnError,
    handshakeTimeoutMs: 10_000,
    idleTimeoutMs: 30_000,
    maxStreams: 1024,
    earlyData: false,
    clock: systemClock,
    clockSync: {},
    peerLimits: { ...DEFAULT_PEER_LIMITS },
    connectionLimits: { ...DEFAULT_CONNECTION_LIMITS },
    rateLimits: [],
  };

  /** Where to listen: "host:port" (port 0 = any free port). @default {"127.0.0.1:0"} */
  bind(address: string): this {
    this.#c.bind = parseAddress(address, "bind");
    return this;
  }
  /** Registers a request handler made by `handler()`; its name and types join the server's API. */
  handler<X extends Definition>(def: X): RpcServerBuilder<D | X, P> {
    this.#c.registry.add(def);
    return this as RpcServerBuilder<never, P> as RpcServerBuilder<D | X, P>;
  }
  /** Registers an event listener made by `listener()`; its topic and payload type join the server's API. */
  listener<X extends Definition>(def: X): RpcServerBuilder<D | X, P> {
    this.#c.registry.add(def);
    return this as RpcServerBuilder<never, P> as RpcServerBuilder<D | X, P>;
  }
  /** Registers a stream handler made by `streamHandler()`; its name joins the server's API. */
  streamHandler<X extends Definition>(def: X): RpcServerBuilder<D | X, P> {
    this.#c.registry.add(def);
    return this as RpcServerBuilder<never, P> as RpcServerBuilder<D | X, P>;
  }
  /**
   * Registers every `@handler`/`@listener`/`@streamHandler` method of a class instance. Decorators
   * cannot change types, so these names stay untyped in the server's API (any name is accepted
   * besides the typed ones); register `handler()` definitions to type them.
   */
  service(instance: object): RpcServerBuilder<D | Definition, P> {
    for (const def of serviceDefinitions(instance)) this.#c.registry.add(def);
    return this as RpcServerBuilder<never, P> as RpcServerBuilder<D | Definition, P>;
  }
  /** Adds middleware around every request, event and stream open. */
  use(mw: Middleware): this {
    this.#c.registry.use(mw);
    return this;
  }
  /** The certificate chain and key (PEM); without it a development certificate is made. */
  tls(tls: ServerTls): this {
    this.#c.tls = tls;
    return this;
  }
  /**
   * Checks each client's HELLO (its `auth` credentials, address, certificate): return the
   * principal handlers see as `ctx.principal`, or throw (an RpcError, or anything for
   * `UNAUTHENTICATED`) to refuse the connection.
   */
  authenticate(fn: (hello: HelloInfo) => unknown | Promise<unknown>): this {
    this.#c.authenticate = fn;
    return this;
  }
  /** The payload codec (both sides must use the same). @default {msgpack} */
  payloadCodec(codec: PayloadCodec): this {
    this.#c.payloadCodec = codec;
    return this;
  }
  /**
   * Limits, each with a safe default (docs/SECURITY.md explains them): frame limits
   * (`maxFrameSize`, `maxNameLength`, `maxMetadataEntries`, `maxMetadataBytes`), per-connection
   * limits ({@link PeerLimits}: handler slots, queued events, outgoing bytes, the reset budget,
   * first-frame and stream-idle timeouts) and connection admission ({@link AdmissionLimits}:
   * total, per address, pending handshakes). Keys left out keep their defaults.
   * @throws {TypeError} For an unknown key or a value out of range (never silently ignored).
   * @example A public server: few connections per address, short slowloris window
   * ```ts
   * const server = RpcServer.builder()
   *   .limits({ maxConnectionsPerAddress: 8, firstFrameTimeoutMs: 2000, maxResets: 50 })
   *   .build();
   * ```
   */
  limits(limits: Partial<ServerLimits>): this {
    const { frames, peer, connections } = resolveResourceLimits(limits, true);
    const given = new Set(Object.keys(limits));
    this.#c.limits = { ...this.#c.limits, ...frames };
    for (const k of Object.keys(peer) as (keyof PeerLimits)[]) if (given.has(k)) this.#c.peerLimits[k] = peer[k];
    for (const k of Object.keys(connections) as (keyof AdmissionLimits)[]) if (given.has(k)) this.#c.connectionLimits[k] = connections[k];
    return this;
  }
  /**
   * Who may call, emit to and open streams on what: checked for every request, event and stream
   * open before any handler code or payload decoding runs. A denied request or stream open
   * answers `PERMISSION_DENIED`; a denied event is dropped; each is counted
   * (`stats().rejected.permissionDenied`) and the connection stays open.
   *
   * `policy` is rules (NATS-style `*`/`>` name patterns per kind, deny before allow, optional
   * default-deny, per-peer rules computed once per connection from the principal and client
   * certificate, and a final `check` hook) or one function deciding every access.
   * @throws {TypeError} At once, for an unknown field or a malformed pattern (never a silent allow).
   * @example IoT devices: each may emit only its own telemetry
   * ```ts
   * const server = RpcServer.builder()
   *   .authenticate(({ auth }) => ({ id: String(auth) }))
   *   .accessControl({
   *     permissions: { request: ["time.now"], stream: [] },
   *     perPeer: ({ principal }) => ({ event: [`telemetry.${(principal as { id: string }).id}.>`] }),
   *   })
   *   .build();
   * ```
   */
  accessControl(policy: AccessPolicy): this {
    validateAccessPolicy(policy);
    this.#c.access = policy;
    return this;
  }
  /**
   * Adds a rate limit (repeatable: every rule covering an operation must admit it). Keyed per
   * connection, principal, remote address or a function; limited to some names and kinds;
   * GCRA with a burst, memory bounded per rule. A limited request or stream open answers
   * `RESOURCE_EXHAUSTED` with `details.retryAfterMs`; a limited event is dropped; counted in
   * `stats().rejected.rateLimited`. A `bytesPerSecond` rule slows a stream's sender by holding
   * back flow-control credit instead (nothing is dropped).
   * @throws {TypeError} At once, for an invalid rule.
   * @example Logins 5/s per address, and 1,000 operations/s per principal
   * ```ts
   * const server = RpcServer.builder()
   *   .rateLimit({ key: "address", names: ["user.login"], perSecond: 5 })
   *   .rateLimit({ key: "principal", perSecond: 1000, burst: 200 })
   *   .build();
   * ```
   */
  rateLimit(rule: RateLimitRule): this {
    validateRateLimitRule(rule);
    this.#c.rateLimits.push(rule);
    return this;
  }
  /** The QUIC transport. @default {the runtime's own} */
  transport(transport: Transport): this {
    this.#c.transport = transport;
    return this;
  }
  /** This server's name, sent in WELCOME. */
  name(name: string): this {
    this.#c.name = name;
    return this;
  }
  /**
   * Where handler failures are reported (never sent to clients). By default they are logged:
   * category `["echostream", "rpc"]`, level error, with the error and its stack (docs/OBSERVABILITY.md).
   */
  onError(fn: (error: unknown, where: string) => void): this {
    this.#c.onError = fn;
    return this;
  }
  /**
   * Where notices go (the development certificate's fingerprint, a feature off on this runtime).
   * By default they are logged at warning level (categories `["echostream", …]`); the
   * development certificate's notice is printed with `console.warn` when LogTape is not configured.
   */
  log(fn: (message: string) => void): this {
    this.#c.log = fn;
    return this;
  }
  /**
   * How long an accepted QUIC connection may take to reach WELCOME: the client's HELLO and the
   * `authenticate` hook together. When it passes, the connection is closed with code `0x105`
   * (a hung `authenticate` is refused with a GOAWAY `UNAVAILABLE` first, and its late answer
   * ignored), so slow or silent clients cannot pile up half-open connections.
   * @param ms 1 to 2147483647.
   * @default {10000}
   * @example
   * ```ts
   * const server = RpcServer.builder().handshakeTimeout(2000).build();
   * ```
   */
  handshakeTimeout(ms: number): this {
    if (typeof ms !== "number" || !(ms >= 1 && ms <= 2 ** 31 - 1)) {
      throw new TypeError(`handshakeTimeout must be a number of ms from 1 to 2147483647, received ${typeof ms === "number" ? ms : JSON.stringify(ms)}`);
    }
    this.#c.handshakeTimeoutMs = ms;
    return this;
  }
  /**
   * How long a connection may go without a packet from the client before the server declares it
   * dead and frees everything it held for it (streams, calls, datagram routes). Keep-alives are
   * sent at a third of it, so a live but quiet client is never dropped. A client that vanishes
   * without closing (killed, unplugged, its close packet lost) costs the server its state for
   * this long.
   * @param ms 1,000 to 2147483647.
   * @default {30000}
   * @example
   * ```ts
   * const server = RpcServer.builder().idleTimeout(10_000).build();
   * ```
   */
  idleTimeout(ms: number): this {
    if (typeof ms !== "number" || !(ms >= 1000 && ms <= 2 ** 31 - 1)) {
      throw new TypeError(`idleTimeout must be a number of ms from 1000 to 2147483647, received ${typeof ms === "number" ? ms : JSON.stringify(ms)}`);
    }
    this.#c.idleTimeoutMs = ms;
    return this;
  }
  /** Most concurrent streams per connection. @default {1024} */
  maxStreams(n: number): this {
    if (!Number.isInteger(n) || n < 1) throw new TypeError(`maxStreams must be a positive integer, received ${n}`);
    this.#c.maxStreams = n;
    return this;
  }
  /**
   * Accept 0-RTT early data on resumed connections: handlers declared `idempotent` may run on it;
   * other requests, stream opens and events wait until the handshake has completed (a replayed
   * flight never completes one). Not available on Bun, whose QUIC stack cannot tell when early
   * data is confirmed: there it is left off, with a notice (docs/SECURITY.md).
   * @default {false}
   */
  earlyData(on = true): this {
    this.#c.earlyData = on;
    return this;
  }
  /**
   * The server's clock source, the reference every client synchronises to: ms on the Unix
   * epoch. Tests shift it on purpose. @default {performance.timeOrigin + performance.now()}
   */
  clock(fn: ClockSource): this {
    if (typeof fn !== "function") throw new TypeError("clock must be a function returning ms");
    this.#c.clock = fn;
    return this;
  }
  /**
   * How this server estimates each client's clock (`ctx.peer.clock`): `intervalMs` between its
   * PINGs (50–10,000, default 250), or `false` to send none but the keep-alive PING every 20 s on
   * the control stream (clients' PINGs are still answered).
   */
  clockSync(options: ClockSyncOptions | false): this {
    if (options !== false) checkClockSyncOptions(options);
    this.#c.clockSync = options;
    return this;
  }
  /**
   * Advertises the running server on the local network as a DNS-SD service (`_echostream._udp`,
   * instance `name`, renamed "name (2)" on a conflict) over mDNS, with TXT `v`, `alpn`, `svc` and
   * `fp` (the fingerprint of the certificate clients must trust). Advertising starts once the
   * QUIC listener is up and says goodbye on `close()`. Clients find it with
   * `RpcClient.discover(name)` or `RpcClient.browse(name)`; see docs/DISCOVERY.md.
   *
   * @example
   * ```ts
   * const server = RpcServer.builder().bind("0.0.0.0:0").enableDiscovery("AudioService").build();
   * await server.start();
   * console.log(server.discovery?.instanceName);
   * ```
   */
  enableDiscovery(name: string, options: DiscoveryOptions = {}): this {
    if (typeof name !== "string" || name.length === 0) throw new TypeError("enableDiscovery: name must be a non-empty string");
    this.#c.discovery = { ...options, name };
    return this;
  }
  /**
   * Joins this server to a cluster of instances over a message bus, so that `broadcast`,
   * `emitToGroup`, `peer(id)` and `cluster.presence()` reach the peers of every instance, not
   * only this one's. `start()` connects to the bus (and fails when it cannot); `close()` says
   * goodbye. Without it a server is one instance alone and needs no bus. The adapters are their
   * own exports: `natsCluster` (`@echostream/core/cluster/nats`) and `redisCluster`
   * (`@echostream/core/cluster/redis`). Semantics (at-most-once, order per sender, failure
   * detection) are in docs/CLUSTER.md.
   *
   * @example Three processes behind one NATS server
   * ```ts
   * import { RpcServer } from "@echostream/core";
   * import { natsCluster } from "@echostream/core/cluster/nats";
   * const server = RpcServer.builder()
   *   .bind("0.0.0.0:4433")
   *   .cluster(natsCluster({ servers: "nats://127.0.0.1:4222" }), { namespace: "chat" })
   *   .build();
   * await server.start();
   * await server.broadcast("news", "reaches every client of every instance");
   * ```
   *
   * @param adapter The bus.
   * @param options Namespace, heartbeat and failure-detection times, the default call deadline.
   */
  cluster(adapter: ClusterAdapter, options: ClusterOptions = {}): this {
    if (!adapter || typeof adapter.publish !== "function" || typeof adapter.subscribe !== "function") {
      throw new TypeError("cluster: expected a cluster adapter (natsCluster(...), redisCluster(...))");
    }
    this.#c.cluster = { adapter, options: { ...options } };
    return this;
  }
  /**
   * Answers {@link REFLECTION_METHOD} with what this server serves (a `ServiceDescription`:
   * handlers, listeners and stream handlers with their descriptions, idempotency and input JSON
   * Schemas), for tools such as the `echostream` CLI. Access control, rate limits and middleware
   * apply to it like to any method: a policy that allows only named methods must allow
   * `"$echostream.reflect"` too.
   *
   * @param on `false` turns it off. @default {true} when called; without a call, on exactly
   *   when the server makes a development certificate (no `.tls()`).
   */
  reflection(on = true): this {
    if (typeof on !== "boolean") throw new TypeError(`reflection: expected a boolean, received ${typeof on}`);
    this.#c.reflection = on;
    return this;
  }
  /** The server, not yet listening: call `start()` or `run()`. */
  build(): RpcServer<DefinitionsApi<D>, P> {
    if (this.#c.reflection ?? !this.#c.tls) {
      const registry = this.#c.registry;
      if (!registry.handlers.has(REFLECTION_METHOD)) {
        let answer: unknown;
        const name = () => this.#c.name;
        registry.add(
          handler(REFLECTION_METHOD, () => (answer ??= describeRegistry(registry, name())), {
            idempotent: true,
            description: "What this server serves: handlers, listeners and stream handlers",
          }),
          true,
        );
      }
    }
    return new RpcServer({ ...this.#c, peerLimits: { ...this.#c.peerLimits }, connectionLimits: { ...this.#c.connectionLimits }, rateLimits: [...this.#c.rateLimits] });
  }
}

/**
 * A running (or ready to run) EchoStream server. `A` is the API it serves (inferred by the
 * builder; read it with `ApiOf<typeof server>`), `P` the API its clients serve.
 */
export class RpcServer<A extends RpcApi = UntypedApi, P extends RpcApi = UntypedApi> {
  /** Type-level only (never set): the API this server serves, for `ApiOf<typeof server>`. */
  declare readonly "~api"?: A;
  readonly #c: ServerConfig;
  #listener: Listener | undefined;
  /** The connected peers, by id (`peer.id`: what the cluster node and `server.peer(id)` use). */
  readonly #peers = new Map<string, Peer>();
  readonly #totals = new StatsTotals();
  #handshaking = 0;
  /** Connections per remote host (open and handshaking), for `maxConnectionsPerAddress`. */
  readonly #perAddress = new Map<string, number>();
  /** Refusals counted before a peer exists (connection admission, handshake). */
  readonly #rejected: Rejections = zeroRejections();
  #advert: Advertisement | undefined;
  #unobserve: () => void = () => {};
  /** Connections past the handshake so far, and those that ended, by close code (hex). */
  #opened = 0;
  readonly #closedByCode: Record<string, number> = {};
  /** The one start in progress or done; cleared when it fails, so start() can be retried. */
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #closed!: () => void;
  readonly #done = new Promise<void>((r) => (this.#closed = r));
  readonly #node: ClusterNode;
  /** The frame and payload codecs, shared by every connection and the cluster node. */
  readonly #codecs: { frames: FrameCodec; payload: PayloadCodec };

  /** @internal Use `RpcServer.builder()`. */
  constructor(config: ServerConfig) {
    this.#c = config;
    this.#codecs = codecs(config);
    const { frames } = this.#codecs;
    this.#node = new ClusterNode(config.cluster?.adapter, config.cluster?.options ?? {}, this.#codecs.payload, {
      emit: (id, topic, payload, metadata) => this.#peers.get(id)?.emit(topic, payload, { metadata }),
      prepare: (topic, encoded, metadata) => prepareEvent(frames, topic, encoded, metadata),
      emitPrepared: (id, prepared) => this.#peers.get(id)?.sendPrepared(prepared as PreparedEvent),
      request: (id, method, input, o) => this.#peers.get(id)?.request(method, input, o),
    });
  }

  /**
   * Starts building a server. `P`, optional, is the API its clients serve (e.g.
   * `ApiOf<typeof clientDefinitions>`): it types `server.broadcast` and `server.peers`.
   */
  static builder<P extends RpcApi = UntypedApi>(): RpcServerBuilder<never, P> {
    return new RpcServerBuilder<never, P>();
  }

  /**
   * Starts listening; resolves once the server accepts connections. Idempotent, even while a
   * first call is still starting: every call shares that one start and its one listener. A start
   * that failed can be retried.
   * @throws {RpcError} `FAILED_PRECONDITION` once `close()` has been called; `UNAVAILABLE` when
   *   `.cluster()` was set and its bus cannot be reached.
   * @throws {TransportError} `LISTEN_FAILED` when the address cannot be bound (in use, or not
   *   this machine's).
   */
  start(): Promise<void> {
    if (this.#closing) return Promise.reject(new RpcError(ErrorCode.FAILED_PRECONDITION, "cannot start: the server is closed"));
    return (this.#starting ??= this.#listen().catch(async (e) => {
      // A cluster joined before the listener failed is left again: a retry starts from scratch.
      await this.#node.abortStart().catch(() => {});
      this.#starting = undefined;
      throw e;
    }));
  }

  async #listen(): Promise<void> {
    const t = this.#c.transport ?? (await defaultTransport());
    // Bun's node:quic reports a 0-RTT connection's handshake as complete when the ClientHello is
    // processed, before the client's Finished, and does not reject replays: early data cannot be
    // held safely there, so an RPC server on Bun never accepts it (docs/SECURITY.md).
    const earlyData = this.#c.earlyData && t.name !== "bun";
    if (this.#c.earlyData && !earlyData) {
      this.#notice("echostream: earlyData() is off on Bun: node:quic cannot tell when 0-RTT data is confirmed, so replayed early requests could not be held (docs/SECURITY.md)");
    }
    if (this.#c.cluster) {
      try {
        await this.#node.start();
      } catch (e) {
        throw new RpcError(ErrorCode.UNAVAILABLE, `cannot start: the ${this.#c.cluster.adapter.kind} cluster bus is unreachable: ${(e as Error)?.message ?? e}`, undefined, { cause: e });
      }
    }
    const { frames, payload } = this.#codecs;
    const setup = { frames, payload, registry: this.#c.registry, name: this.#c.name, onError: this.#c.onError, clock: this.#c.clock, clockSync: this.#c.clockSync, limits: this.#c.peerLimits };
    const handshakeOpts = {
      authenticate: this.#c.authenticate,
      handshakeTimeoutMs: this.#c.handshakeTimeoutMs,
      guard: this.#guardFor(),
      earlyData,
      onRefused: (why: "handshakeTimeout" | "unauthenticated") => void this.#rejected[why]++,
    };
    this.#listener = await t.listen(
      {
        host: this.#c.bind.host,
        port: this.#c.bind.port,
        alpn: ALPN,
        tls: this.#c.tls,
        log: this.#c.log,
        maxBidiStreams: this.#c.maxStreams,
        earlyData: earlyData,
        idleTimeoutMs: this.#c.idleTimeoutMs,
        admit: (remote) => {
          const refused = this.#refusal(remote?.host);
          if (refused) {
            this.#rejected[refused.why]++;
            log.info("refused a connection from {remote} before its handshake: {reason}", { remote: remote ? formatAddress(remote) : "unknown", reason: refused.message, why: refused.why });
          }
          return !refused;
        },
      },
      (conn) => {
        if (this.#closing) return void conn.close(CloseCode.GOING_AWAY, "server shutting down").catch(() => {});
        if (!this.#admit(conn)) return;
        this.#handshaking++;
        const remote = formatAddress(conn.remote);
        observeHandshake("server", conn.handshake);
        acceptPeer(conn, setup, handshakeOpts).then(
          (peer) => {
            this.#handshaking--;
            this.#peers.set(peer.id, peer);
            this.#node.peerUp({ id: peer.id, name: peer.name, principal: peer.principal, remote, connectedAt: Date.now() });
            this.#opened++;
            log.info("connection from {remote} accepted: peer {peer}", { remote, peer: peer.name, principal: peer.principal });
            peer.closed.then((info) => {
              this.#peers.delete(peer.id);
              this.#node.peerDown(peer.id);
              this.#totals.retire(peer);
              const code = `0x${info.code.toString(16)}`;
              this.#closedByCode[code] = (this.#closedByCode[code] ?? 0) + 1;
              const by = info.local ? "by this server" : "by the peer";
              log.info("connection from {remote} closed {by}: {reason} (close code {code})", { remote, peer: peer.name, by, reason: info.reason || "no reason given", code: `0x${info.code.toString(16)}` });
            });
          },
          (e: RpcError) => {
            this.#handshaking--;
            log.info("handshake with {remote} failed: {code} {message}", { remote, code: e?.code, message: e?.message });
          },
        );
      },
    );
    // The server's own instruments, when an OpenTelemetry meter provider is registered (read from stats() at each collection).
    const unobserveServer = observeServer(() => this.stats());
    const unobserveClocks = observeConnections("server", () => [...this.#peers.values()].map((p) => ({ remote: p.remote, clock: p.clock, bytes: () => inspectPeer(p).conn.stats() })));
    this.#unobserve = () => (unobserveServer(), unobserveClocks());
    const d = this.#c.discovery;
    if (d && !this.#closing) {
      // After the listener is up; a network without multicast must not stop the server.
      try {
        const { advertise } = await import("../discovery/advertise.ts");
        const { name, ...rest } = d;
        this.#advert = await advertise({ ...rest, name, port: this.#listener.address.port, fingerprint: this.#listener.trust.fingerprint, host: this.#c.bind.host });
      } catch (e) {
        this.#notice(`echostream: discovery for "${d.name}" is not advertised: ${(e as Error).message}`);
      }
    }
  }

  /**
   * Connection admission: refuses (close code 0x106, counted by reason) a connection past the
   * total, per-address or pending-handshake limit; else counts it against its address until it
   * closes.
   */
  #admit(conn: Connection): boolean {
    const host = conn.remote.host;
    const refused = this.#refusal(host);
    if (refused) {
      this.#rejected[refused.why]++;
      log.info("refused a connection from {remote}: {reason} (close code 0x106)", { remote: formatAddress(conn.remote), reason: refused.message, why: refused.why });
      conn.close(CloseCode.CONNECTION_LIMIT, refused.message).catch(() => {});
      return false;
    }
    this.#perAddress.set(host, (this.#perAddress.get(host) ?? 0) + 1);
    conn.closed.then(() => {
      const n = (this.#perAddress.get(host) ?? 1) - 1;
      if (n <= 0) this.#perAddress.delete(host);
      else this.#perAddress.set(host, n);
    });
    return true;
  }

  /** Which admission limit a new connection from `host` (when known) would break, if any. */
  #refusal(host: string | undefined): { why: "connectionLimit" | "handshakeLimit" | "addressLimit"; message: string } | undefined {
    const lim = this.#c.connectionLimits;
    if (this.#peers.size + this.#handshaking >= lim.maxConnections) {
      return { why: "connectionLimit", message: `server at its connection limit (${lim.maxConnections})` };
    }
    if (this.#handshaking >= lim.maxPendingHandshakes) {
      return { why: "handshakeLimit", message: `server at its limit of pending handshakes (${lim.maxPendingHandshakes})` };
    }
    if (host !== undefined && (this.#perAddress.get(host) ?? 0) >= lim.maxConnectionsPerAddress) {
      return { why: "addressLimit", message: `too many connections from ${host} (limit ${lim.maxConnectionsPerAddress})` };
    }
    return undefined;
  }

  /** A notice for the operator: to `.log(fn)` when set, else logged at warning level. */
  #notice(message: string): void {
    if (this.#c.log) this.#c.log(message);
    else log.warn("{notice}", { notice: message });
  }

  /** What each accepted connection's defences are computed from, once per connection. */
  #guardFor(): (who: Who) => GuardInit {
    const { access, peerLimits: limits, rateLimits } = this.#c;
    const limiter = rateLimits.length > 0 ? new RateLimiter(rateLimits) : undefined;
    const onHookError = (e: unknown) => this.#c.onError(e, "accessControl check");
    return (who) => ({
      limits,
      access: access ? compileAccess(access, who, onHookError) : undefined,
      rate: limiter?.forConnection(who),
    });
  }

  /**
   * The mDNS advertisement (`instanceName` is the name actually published), when
   * `enableDiscovery` was used and advertising works here; undefined otherwise.
   */
  get discovery(): Advertisement | undefined {
    return this.#advert;
  }

  /** Starts, then resolves when `close()` has finished. */
  async run(): Promise<void> {
    await this.start();
    await this.#done;
  }

  /** The bound address, "host:port" (the real port when 0 was asked for). */
  get address(): string {
    if (!this.#listener) throw new RpcError(ErrorCode.FAILED_PRECONDITION, "the server is not started");
    return formatAddress(this.#listener.address);
  }

  /** What a client needs to trust this server: `{ ca, fingerprint }` (`ca` for development certificates). */
  get trust(): { ca: string | undefined; fingerprint: string } {
    if (!this.#listener) throw new RpcError(ErrorCode.FAILED_PRECONDITION, "the server is not started");
    return this.#listener.trust;
  }

  /**
   * A plain snapshot of the server's counters over every connection it has served: connections
   * open and still handshaking, calls, events and streams done, and live state (`openStreams`,
   * `inFlight`, `datagramRoutes`, `pendingRequests`), which returns to zero once traffic stops.
   *
   * @example Checking that nothing is held after clients leave
   * ```ts
   * const server = RpcServer.builder().build();
   * await server.start();
   * const { connections, openStreams, inFlight } = server.stats();
   * console.log(connections, openStreams, inFlight); // 0 0 0
   * await server.close();
   * ```
   */
  stats(): ServerStats {
    const totals = this.#totals.snapshot(this.#peers.values());
    const rejected = { ...totals.rejected };
    for (const k of Object.keys(rejected) as (keyof Rejections)[]) rejected[k] += this.#rejected[k];
    return {
      connections: this.#peers.size,
      handshaking: this.#handshaking,
      connectionsOpened: this.#opened,
      connectionsClosed: { ...this.#closedByCode },
      ...totals,
      rejected,
    };
  }

  /** The connected peers. */
  get peers(): Peer<P>[] {
    return [...this.#peers.values()];
  }

  /**
   * Emits an event to every connected peer; with `.cluster()`, to every peer of every instance
   * (published once on the bus; each instance delivers to its own peers). A bus that is down is
   * logged and the event still reaches this instance's peers.
   * @returns How many of this instance's peers it reached and how many failed, and whether it
   *   was published to the other instances.
   * @throws {RpcError} `INVALID_ARGUMENT` for a payload the codec cannot encode.
   */
  broadcast<N extends EventName<P>>(topic: N, ...args: EmitArgs<P, N, ClusterEmitOptions>): Promise<EmitResult>;
  broadcast(topic: string, payload?: unknown, options?: ClusterEmitOptions): Promise<EmitResult> {
    return this.#node.broadcast(topic, payload, options).catch((e) => {
      throw toRpcError(e);
    });
  }

  /**
   * Emits an event to every member of `group`, wherever it is connected (with `.cluster()`, the
   * bus carries it only to instances that have members). Peers join with {@link join}.
   * @returns Deliveries on this instance, and whether it was published to the others.
   * @throws {RpcError} `INVALID_ARGUMENT` for a bad group name or a payload the codec cannot encode.
   *
   * @example A chat room
   * ```ts
   * import { handler, RpcServer, type Context } from "@echostream/core";
   * const server = RpcServer.builder()
   *   .handler(handler("room.join", async (ctx: Context, room: string) => void (await server.join(ctx.peer, room))))
   *   .handler(handler("room.say", async (ctx: Context, m: { room: string; text: string }) => {
   *     await server.emitToGroup(m.room, "room.message", { from: ctx.peer.name, text: m.text }, { except: [ctx.peer.id] });
   *   }))
   *   .build();
   * ```
   */
  emitToGroup<N extends EventName<P>>(group: string, topic: N, ...args: EmitArgs<P, N, ClusterEmitOptions>): Promise<EmitResult>;
  emitToGroup(group: string, topic: string, payload?: unknown, options?: ClusterEmitOptions): Promise<EmitResult> {
    return this.#node.emitToGroup(group, topic, payload, options).catch((e) => {
      throw toRpcError(e);
    });
  }

  /**
   * Puts a peer in `group` (created on first join, gone when its last member leaves or
   * disconnects). `peer` is a connected `Peer` or a peer id, which may be connected to another
   * instance of the cluster (then the join is routed to it).
   * @throws {RpcError} `NOT_FOUND` for an id no instance has; `UNAVAILABLE` when the bus is down.
   */
  join(peer: Peer | string, group: string): Promise<void> {
    return this.#node.join(typeof peer === "string" ? peer : peer.id, group);
  }

  /** Takes a peer (a `Peer` or an id, anywhere in the cluster) out of `group`. */
  leave(peer: Peer | string, group: string): Promise<void> {
    return this.#node.leave(typeof peer === "string" ? peer : peer.id, group);
  }

  /**
   * A handle on peer `id` wherever it is connected: `request`, `emit`, `join` and `leave` go to
   * it directly when it is connected here, through the bus when it is on another instance.
   * Nothing is looked up until a call: a peer that is nowhere fails that call with `NOT_FOUND`.
   *
   * @example Calling a device by id from any instance
   * ```ts
   * import type { RpcServer } from "@echostream/core";
   * export async function reboot(server: RpcServer, deviceId: string): Promise<unknown> {
   *   return await server.peer(deviceId).request("device.reboot", { delayMs: 100 }, { timeoutMs: 5000 });
   * }
   * ```
   */
  peer(id: string): PeerRef<P> {
    if (typeof id !== "string" || id.length === 0) throw new TypeError("peer: expected a peer id (peer.id)");
    return new PeerRef<P>(id, this.#node);
  }

  /**
   * The cluster as this instance sees it: presence (every peer of every instance, with its
   * principal and groups), the live instances, a watch of peers coming and going, and traffic
   * counters. Without `.cluster()` it describes this instance alone (`bus` is `"none"`).
   */
  get cluster(): ClusterView {
    return this.#node;
  }

  /**
   * Shuts down gracefully: refuses new connections, tells peers it is going away, lets
   * in-flight requests finish for up to `graceMs`, then closes every connection. Called while
   * `start()` is in progress, it waits for the listener to be up, then closes it (that start
   * still resolves). Afterwards `start()` is refused.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    return (this.#closing ??= this.#shutdown(options.graceMs ?? 5000));
  }

  async #shutdown(graceMs: number): Promise<void> {
    await this.#starting?.catch(() => {}); // a listener still coming up is closed below, not leaked
    this.#unobserve();
    // Goodbye to the cluster first: the other instances drop this one's peers at once.
    await this.#node.close();
    // Goodbye packets first, so browsers see the service leave before connections drop.
    await this.#advert?.close().catch(() => {});
    const { frames } = this.#codecs;
    await Promise.allSettled(this.peers.map((p) => p.announceGoAway(frames.encode({
      type: FrameType.GOAWAY,
      flags: 0,
      code: errorCodeNumber(ErrorCode.UNAVAILABLE),
      reason: "server shutting down",
      payload: new Uint8Array(0),
    }))));
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && this.peers.some((p) => p.stats.inFlight > 0)) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.#listener?.close(CloseCode.GOING_AWAY, "server shutting down");
    this.#closed();
  }
}

/**
 * A peer by id, wherever it is connected in the cluster (from `server.peer(id)`). `P` is the API
 * the peer serves, as for `Peer<P>`.
 */
export class PeerRef<P extends RpcApi = UntypedApi> {
  /** The peer's id. */
  readonly id: string;
  readonly #node: ClusterNode;

  /** @internal Use `server.peer(id)`. */
  constructor(id: string, node: ClusterNode) {
    this.id = id;
    this.#node = node;
  }

  /** Where the peer is connected now (its presence entry), or undefined when nowhere. */
  get location(): PresenceEntry | undefined {
    const e = this.#node.locate(this.id);
    return e && { ...e, groups: [...e.groups] };
  }

  /**
   * Calls the peer's handler `method`, through the bus when it is on another instance.
   * @throws {RpcError} The handler's code; `NOT_FOUND` when the peer is connected nowhere;
   *   `DEADLINE_EXCEEDED` past `timeoutMs` (default: the cluster's `requestTimeoutMs`);
   *   `UNAVAILABLE` when the bus is down or the peer's instance dies during the call.
   */
  request<T = unknown, N extends RequestName<P> = RequestName<P>>(method: N, ...args: RequestArgs<P, N, { timeoutMs?: number; metadata?: Metadata }>): Promise<RequestOutput<P, N, T>>;
  async request(method: string, input?: unknown, options: { timeoutMs?: number; metadata?: Metadata } = {}): Promise<unknown> {
    try {
      return await this.#node.request(this.id, method, input, options);
    } catch (e) {
      throw toRpcError(e);
    }
  }

  /**
   * Emits an event to the peer (at most once when it crosses the bus).
   * @throws {RpcError} `NOT_FOUND` when the peer is connected nowhere; `UNAVAILABLE` when the bus is down.
   */
  emit<N extends EventName<P>>(topic: N, ...args: EmitArgs<P, N, { metadata?: Metadata }>): Promise<void>;
  async emit(topic: string, payload?: unknown, options: { metadata?: Metadata } = {}): Promise<void> {
    try {
      await this.#node.emitTo(this.id, topic, payload, options.metadata);
    } catch (e) {
      throw toRpcError(e);
    }
  }

  /** Puts the peer in `group` (see `RpcServer.join`). */
  join(group: string): Promise<void> {
    return this.#node.join(this.id, group);
  }

  /** Takes the peer out of `group`. */
  leave(group: string): Promise<void> {
    return this.#node.leave(this.id, group);
  }
}
