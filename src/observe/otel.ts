// OpenTelemetry through `@opentelemetry/api` only: spans and call-duration histograms per the
// RPC semantic conventions (rpc.system.name = "echostream", rpc.method, rpc.status_code,
// error.type, server.address/port, network.peer.address/port), W3C trace context carried in
// request, event and stream-open metadata. With no SDK registered nothing is recorded and a call
// costs two provider checks. docs/OBSERVABILITY.md lists the instruments.

import {
  type Attributes,
  type BatchObservableResult,
  type Counter,
  context,
  type Context as OtelContext,
  createNoopMeter,
  type Histogram,
  type Meter,
  metrics,
  propagation,
  ProxyTracerProvider,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";

const SCOPE = "@echostream/core";
const VERSION = "0.1.0";
/** `rpc.system.name` of every span and measurement. */
export const RPC_SYSTEM = "echostream";
/** The semantic conventions' suggested buckets for call durations, in seconds. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();
const NOOP_METER = createNoopMeter().constructor;

interface Instruments {
  serverDuration: Histogram;
  clientDuration: Histogram;
  opened: Counter;
  closed: Counter;
  resumed: Counter;
  frames: Counter;
  resets: Counter;
  latency: Histogram;
  discovery: Counter;
}
let meterProvider: unknown;
let instruments: Instruments | undefined;
let tracerOf: unknown;
let tracer: Tracer | undefined;

/**
 * Where `@opentelemetry/api` 1.x keeps what SDKs register (`trace`, `metrics`, …): one object on
 * `globalThis` shared by every copy of the API. Reading it is the fast path of every call: while
 * nothing is registered (no SDK, the common case) nothing else is looked up.
 */
const API_GLOBAL = Symbol.for("opentelemetry.js.api.1");
function nothingRegistered(): boolean {
  const g = (globalThis as Record<symbol, { trace?: unknown; metrics?: unknown } | undefined>)[API_GLOBAL];
  return g === undefined || (g.trace === undefined && g.metrics === undefined);
}

/** Our meter on the global meter provider; undefined while that is the API's no-op one. */
function liveMeter(provider = metrics.getMeterProvider()): Meter | undefined {
  const meter = provider.getMeter(SCOPE, VERSION);
  return meter.constructor === NOOP_METER ? undefined : meter;
}

/** The duration histograms, made again when the global meter provider changes; undefined when it is the no-op one. */
function meters(): Instruments | undefined {
  const mp = metrics.getMeterProvider();
  if (mp !== meterProvider) {
    meterProvider = mp;
    const meter = liveMeter(mp);
    instruments = !meter ? undefined : {
      serverDuration: meter.createHistogram("rpc.server.call.duration", {
        description: "Duration of the calls this side served (request in to response out)",
        unit: "s",
        advice: { explicitBucketBoundaries: DURATION_BUCKETS },
      }),
      clientDuration: meter.createHistogram("rpc.client.call.duration", {
        description: "Duration of the calls this side made (request out to response in)",
        unit: "s",
        advice: { explicitBucketBoundaries: DURATION_BUCKETS },
      }),
      opened: meter.createCounter("echostream.connections.opened", {
        description: "Connections that completed the HELLO/WELCOME handshake, by side",
        unit: "{connection}",
      }),
      closed: meter.createCounter("echostream.connections.closed", {
        description: "Connections that ended, by side, close code (hex, docs/PROTOCOL.md) and who closed",
        unit: "{connection}",
      }),
      resumed: meter.createCounter("echostream.connections.resumed", {
        description: "Resumed TLS sessions, by whether the 0-RTT early data was accepted",
        unit: "{connection}",
      }),
      frames: meter.createCounter("echostream.stream.frames", { description: "Frames of time-synced streams, by outcome at the receiver", unit: "{frame}" }),
      resets: meter.createCounter("echostream.stream.resets", { description: "Jitter-buffer resets (a timestamp or sequence discontinuity)", unit: "{reset}" }),
      latency: meter.createHistogram("echostream.stream.latency", { description: "Playout latency a time-synced stream ended with", unit: "s" }),
      discovery: meter.createCounter("echostream.discovery.events", {
        description: "Services seen coming up (or changing) and going down while browsing",
        unit: "{event}",
      }),
    };
  }
  return instruments;
}

/** The tracer, or undefined while no SDK has registered a tracer provider. */
function tracing(): Tracer | undefined {
  const tp = trace.getTracerProvider();
  const provider = tp instanceof ProxyTracerProvider ? tp.getDelegate() : tp;
  if (provider === NOOP_TRACER_PROVIDER) return undefined;
  // A tracer of the provider registered now (one registered later, after trace.disable(), gets its own).
  if (provider !== tracerOf) {
    tracerOf = provider;
    tracer = provider.getTracer(SCOPE, VERSION);
  }
  return tracer;
}

/**
 * Where a call goes or comes from, for `server.*` / `network.peer.*` attributes. Passed as a
 * function: reading a connection's address is not free on every stack (Deno asks the runtime),
 * so it is read only for a span that records.
 */
export interface CallEnds {
  /** The server's address (the remote on a client, this side on a server). */
  server?: { host: string; port: number };
  /** The other side's address. */
  peer: { host: string; port: number };
}

/** One call being observed (undefined when nothing records: no SDK): end it once with its outcome. */
export interface ObservedCall {
  /** The metadata to send when it differs from the caller's: theirs plus `traceparent`/`tracestate`. */
  readonly metadata?: Record<string, string>;
  /** Runs `fn` with this call's span as the active context (handlers: nested calls are children). */
  run<T>(fn: () => T): T;
  /** Ends the span and records the duration; `code` is "OK" or an RpcError code. */
  end(code: string, error?: unknown): void;
}

function baseAttributes(method: string, ends: CallEnds): Attributes {
  const a: Attributes = { "rpc.system.name": RPC_SYSTEM, "rpc.method": method };
  if (ends.server) {
    a["server.address"] = ends.server.host;
    a["server.port"] = ends.server.port;
  }
  a["network.peer.address"] = ends.peer.host;
  a["network.peer.port"] = ends.peer.port;
  return a;
}

function observe(
  kind: SpanKind,
  name: string,
  method: string,
  ends: () => CallEnds,
  metadata: Record<string, string> | undefined,
  parent: OtelContext,
  duration: ((m: Instruments) => Histogram) | undefined,
): ObservedCall | undefined {
  if (nothingRegistered()) return undefined;
  const tr = tracing();
  const m = duration ? meters() : undefined;
  if (!tr && !m) return undefined;
  const start = performance.now();
  const span: Span | undefined = tr?.startSpan(name, { kind, attributes: baseAttributes(method, ends()) }, parent);
  const active = span ? trace.setSpan(parent, span) : parent;
  let sent: Record<string, string> | undefined;
  if (span && (kind === SpanKind.CLIENT || kind === SpanKind.PRODUCER)) {
    const carrier: Record<string, string> = {};
    propagation.inject(active, carrier);
    if (Object.keys(carrier).length > 0) sent = { ...metadata, ...carrier };
  }
  let ended = false;
  return {
    metadata: sent,
    run: (fn) => context.with(active, fn),
    end(code, error) {
      if (ended) return;
      ended = true;
      if (span) {
        span.setAttribute("rpc.status_code", code);
        if (code !== "OK") {
          span.setAttribute("error.type", code);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error | undefined)?.message });
        }
        span.end();
      }
      if (m && duration) {
        const attrs: Attributes = { "rpc.system.name": RPC_SYSTEM, "rpc.method": method, "rpc.status_code": code };
        if (code !== "OK") attrs["error.type"] = code;
        duration(m).record((performance.now() - start) / 1000, attrs);
      }
    },
  };
}

/** A call this side makes (request): a CLIENT span, context injected into its metadata. */
export function clientCall(method: string, ends: () => CallEnds, metadata: Record<string, string> | undefined): ObservedCall | undefined {
  return observe(SpanKind.CLIENT, method, method, ends, metadata, context.active(), (m) => m.clientDuration);
}

/** A call this side serves: a SERVER span whose parent comes from the request's metadata. */
export function serverCall(method: string, ends: () => CallEnds, metadata: Record<string, string> | undefined): ObservedCall | undefined {
  if (nothingRegistered()) return undefined;
  const parent = tracing() && hasTraceContext(metadata) ? propagation.extract(context.active(), metadata) : context.active();
  return observe(SpanKind.SERVER, method, method, ends, metadata, parent, (m) => m.serverDuration);
}

/**
 * Whether an OpenTelemetry SDK is registered (tracer or meter provider): then every event sent
 * gets its own PRODUCER span, and one encoding cannot be shared by many peers.
 */
export function telemetryRegistered(): boolean {
  return !nothingRegistered();
}

/** An event or stream open this side sends: a PRODUCER span, context injected into its metadata. */
export function produce(name: string, ends: () => CallEnds, metadata: Record<string, string> | undefined): ObservedCall | undefined {
  return observe(SpanKind.PRODUCER, name, name, ends, metadata, context.active(), undefined);
}

/** An event or stream this side receives: a CONSUMER span under the sender's. */
export function consume(name: string, ends: () => CallEnds, metadata: Record<string, string> | undefined): ObservedCall | undefined {
  if (nothingRegistered()) return undefined;
  const parent = tracing() && hasTraceContext(metadata) ? propagation.extract(context.active(), metadata) : context.active();
  return observe(SpanKind.CONSUMER, name, name, ends, metadata, parent, undefined);
}

function hasTraceContext(metadata: Record<string, string> | undefined): metadata is Record<string, string> {
  return metadata !== undefined && "traceparent" in metadata;
}

/** The counters a server's observable instruments read (what `server.stats()` returns). */
export interface ObservedServerStats {
  connections: number;
  handshaking: number;
  openStreams: number;
  inFlight: number;
  eventsReceived: number;
  eventsSent: number;
  unhandledEvents: number;
  droppedEvents: number;
  requestsServed: number;
  streamsAccepted: number;
  datagramsSent: number;
  datagramFramesSent: number;
  droppedDatagrams: number;
  datagramsShed: number;
  rejected: object;
}

/**
 * Registers a server's own instruments on the global meter provider (when one is registered),
 * read from `stats()` at each collection, so they cost nothing between scrapes. Returns what
 * unregisters them (at close).
 */
export function observeServer(stats: () => ObservedServerStats): () => void {
  const meter = liveMeter();
  if (!meter) return () => {};
  const connections = meter.createObservableUpDownCounter("echostream.server.connections", { description: "Connections past the handshake, open now", unit: "{connection}" });
  const handshakes = meter.createObservableUpDownCounter("echostream.server.handshakes", { description: "Connections in their HELLO/WELCOME handshake now", unit: "{connection}" });
  const streams = meter.createObservableUpDownCounter("echostream.server.streams.active", { description: "EchoStreams open now", unit: "{stream}" });
  const inFlight = meter.createObservableUpDownCounter("echostream.server.requests.in_flight", { description: "Requests being served now", unit: "{request}" });
  const served = meter.createObservableCounter("echostream.server.requests", { description: "Requests answered", unit: "{request}" });
  const accepted = meter.createObservableCounter("echostream.server.streams", { description: "Streams accepted by a stream handler", unit: "{stream}" });
  const events = meter.createObservableCounter("echostream.server.events", {
    description: "Events received, by outcome (handled: a listener took it; unhandled: no listener; dropped: undecodable or invalid)",
    unit: "{event}",
  });
  const rejections = meter.createObservableCounter("echostream.server.rejections", {
    description: "What the server refused, by reason (the keys of stats().rejected: permissionDenied, rateLimited, addressLimit, ...)",
    unit: "{rejection}",
  });
  const sent = meter.createObservableCounter("echostream.server.events.sent", { description: "Events this server emitted (broadcast included)", unit: "{event}" });
  const datagrams = meter.createObservableCounter("echostream.server.datagrams", {
    description: "QUIC datagrams of unreliable streams, by outcome (sent; shed: discarded before the stack, more waiting than the connection sends; dropped: received but not a frame, or naming no open stream)",
    unit: "{datagram}",
  });
  const datagramFrames = meter.createObservableCounter("echostream.server.datagram_frames.sent", {
    description: "Frames of unreliable streams sent (several share a datagram when the peer takes bundles)",
    unit: "{frame}",
  });
  const all = [connections, handshakes, streams, inFlight, served, accepted, events, sent, rejections, datagrams, datagramFrames];
  const callback = (r: BatchObservableResult) => {
    const s = stats();
    r.observe(connections, s.connections);
    r.observe(handshakes, s.handshaking);
    r.observe(streams, s.openStreams);
    r.observe(inFlight, s.inFlight);
    r.observe(served, s.requestsServed);
    r.observe(accepted, s.streamsAccepted);
    r.observe(events, s.eventsReceived - s.unhandledEvents - s.droppedEvents, { "echostream.event.outcome": "handled" });
    r.observe(events, s.unhandledEvents, { "echostream.event.outcome": "unhandled" });
    r.observe(events, s.droppedEvents, { "echostream.event.outcome": "dropped" });
    r.observe(sent, s.eventsSent);
    r.observe(datagrams, s.datagramsSent, { "echostream.datagram.outcome": "sent" });
    r.observe(datagrams, s.droppedDatagrams, { "echostream.datagram.outcome": "dropped" });
    r.observe(datagrams, s.datagramsShed, { "echostream.datagram.outcome": "shed" });
    r.observe(datagramFrames, s.datagramFramesSent);
    for (const [reason, n] of Object.entries(s.rejected) as [string, number][]) r.observe(rejections, n, { "echostream.rejection.reason": reason });
  };
  meter.addBatchObservableCallback(callback, all);
  return () => meter.removeBatchObservableCallback(callback, all);
}

/**
 * Counts a connection past its handshake, and its end once `closed` settles, on
 * `echostream.connections.opened`/`.closed` (attributes `echostream.side`, and on close
 * `echostream.close.code` and `echostream.close.local`). Nothing without a meter provider.
 */
export function observeConnection(side: "client" | "server", closed: Promise<{ code: number; local: boolean }>): void {
  const m = nothingRegistered() ? undefined : meters();
  if (!m) return;
  m.opened.add(1, { "echostream.side": side });
  closed.then((info) => {
    meters()?.closed.add(1, { "echostream.side": side, "echostream.close.code": `0x${info.code.toString(16)}`, "echostream.close.local": info.local });
  });
}

/** What the per-connection instruments read of one connection. */
export interface ObservedClock {
  /** The other side's address. */
  remote: { host: string; port: number };
  /** Its clock model (`peer.clock`). */
  clock: { offsetMs: number; rttMs: number; uncertaintyMs: number };
  /** The QUIC stack's byte counts, where it reports them. */
  bytes?: () => { bytesSent?: number; bytesReceived?: number };
}

/**
 * Registers per-connection instruments: clock gauges (`echostream.clock.offset`, `.rtt`,
 * `.uncertainty`, in seconds) and `echostream.connection.bytes`, with attributes
 * `echostream.side` and `network.peer.*`, read from `clocks()` at each collection. Returns what
 * unregisters them.
 */
export function observeConnections(side: "client" | "server", clocks: () => Iterable<ObservedClock>): () => void {
  const meter = liveMeter();
  if (!meter) return () => {};
  const offset = meter.createObservableGauge("echostream.clock.offset", { description: "The other side's clock minus this side's (on a client: the server's, the reference)", unit: "s" });
  const rtt = meter.createObservableGauge("echostream.clock.rtt", { description: "Round-trip time of the clock exchange", unit: "s" });
  const uncertainty = meter.createObservableGauge("echostream.clock.uncertainty", { description: "Bound the true offset error stays within", unit: "s" });
  const bytes = meter.createObservableCounter("echostream.connection.bytes", {
    description: "Bytes of one connection, by direction (as the QUIC stack counts them: Bun and Deno report them)",
    unit: "By",
  });
  const all = [offset, rtt, uncertainty, bytes];
  const callback = (r: BatchObservableResult) => {
    for (const { remote, clock, bytes: count } of clocks()) {
      const a = { "echostream.side": side, "network.peer.address": remote.host, "network.peer.port": remote.port };
      const b = count?.();
      if (b?.bytesSent !== undefined) r.observe(bytes, b.bytesSent, { ...a, "echostream.direction": "sent" });
      if (b?.bytesReceived !== undefined) r.observe(bytes, b.bytesReceived, { ...a, "echostream.direction": "received" });
      if (Number.isNaN(clock.offsetMs)) continue; // no estimate yet
      r.observe(offset, clock.offsetMs / 1000, a);
      r.observe(rtt, clock.rttMs / 1000, a);
      r.observe(uncertainty, clock.uncertaintyMs / 1000, a);
    }
  };
  meter.addBatchObservableCallback(callback, all);
  return () => meter.removeBatchObservableCallback(callback, all);
}

/**
 * Counts a resumed connection's 0-RTT outcome once its handshake completes:
 * `echostream.connections.resumed` with `echostream.early_data.accepted`.
 */
export function observeHandshake(side: "client" | "server", handshake: Promise<{ resumed: boolean; earlyDataAccepted?: boolean }>): void {
  if (!meters()) return;
  handshake.then((h) => {
    if (h.resumed) meters()?.resumed.add(1, { "echostream.side": side, "echostream.early_data.accepted": h.earlyDataAccepted === true });
  }, () => {});
}

/** What a time-synced stream's jitter buffer counted over its life. */
export interface ObservedJitter {
  delivered: number;
  late: number;
  lost: number;
  duplicates: number;
  discontinuities: number;
  targetLatencyMs: number;
}

/**
 * Adds a finished time-synced stream's frame outcomes to `echostream.stream.frames` (attribute
 * `echostream.frame.outcome`: delivered, late, lost, duplicate), its jitter-buffer resets to
 * `echostream.stream.resets`, and its final playout latency to the
 * `echostream.stream.latency` histogram (s).
 */
export function observeJitter(j: ObservedJitter): void {
  const frames = meters();
  if (!frames) return;
  frames.frames.add(j.delivered, { "echostream.frame.outcome": "delivered" });
  frames.frames.add(j.late, { "echostream.frame.outcome": "late" });
  frames.frames.add(j.lost, { "echostream.frame.outcome": "lost" });
  frames.frames.add(j.duplicates, { "echostream.frame.outcome": "duplicate" });
  frames.resets.add(j.discontinuities);
  frames.latency.record(j.targetLatencyMs / 1000);
}

/** Counts a discovery browse event: `echostream.discovery.events` by `echostream.discovery.event` (up, down). */
export function observeDiscovery(type: "up" | "down"): void {
  meters()?.discovery.add(1, { "echostream.discovery.event": type });
}
